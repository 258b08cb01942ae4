//! Logging through `tracing` with the rank in every line.
//!
//! Every line reads `LEVEL [rank r/n] target: message`. Rank 0 logs at `info` by default and the other
//! ranks at `warn`, so a 1,000-rank job does not print a thousand copies of each progress line; `-v`
//! raises every rank one level, `-q` lowers them, and `RUST_LOG` overrides both.

use std::fmt;
use std::sync::OnceLock;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

static RANK: OnceLock<(usize, usize)> = OnceLock::new();

struct RankFormat;

impl<S, N> FormatEvent<S, N> for RankFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let (rank, size) = RANK.get().copied().unwrap_or((0, 1));
        let meta = event.metadata();
        write!(writer, "{:>5} [rank {rank}/{size}] {}: ", meta.level(), meta.target())?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

fn level_name(l: i32) -> &'static str {
    match l {
        i32::MIN..=0 => "error",
        1 => "warn",
        2 => "info",
        3 => "debug",
        _ => "trace",
    }
}

/// Install the global subscriber. `verbosity` is (number of -v) − (number of -q). Logs go to stderr.
pub fn init(rank: usize, size: usize, verbosity: i32) {
    let _ = RANK.set((rank, size));
    let base = if rank == 0 { 2 } else { 1 };
    let filter = match std::env::var("RUST_LOG") {
        Ok(s) if !s.trim().is_empty() => EnvFilter::new(s),
        _ => EnvFilter::new(level_name(base + verbosity)),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .event_format(RankFormat)
        .try_init();
}

/// Log a progress line on rank 0 only (other ranks' progress is implied by the collective steps).
pub fn progress(rank: usize, message: impl fmt::Display) {
    if rank == 0 {
        tracing::event!(Level::INFO, "{message}");
    }
}
