//! `miv bench memory`: the machine's memory bandwidth measured STREAM-style (copy `c = a`, triad
//! `a = b + s c` over f64 arrays of several sizes, so that the smaller ones stay in cache, median of
//! repetitions, bytes counted as STREAM does: 16 per element for copy, 24 for triad), and the busyring's step
//! set against it: the bytes its kernels read and write per compartment-step (counted from the arrays each
//! phase touches), the bytes that must come from main memory per compartment-step (a cell group's working set
//! once per exchange interval, since a group advances a whole interval at a time), and the time per
//! compartment-step each would take at the measured bandwidths, beside the measured time.

use std::hint::black_box;
use std::time::Instant;

use clap::Args;

use super::{CliError, CliResult};

#[derive(Debug, Args)]
pub struct MemoryArgs {
    /// Array sizes for the probe (bytes per array; K, M and G suffixes are KiB, MiB and GiB).
    #[arg(long, default_value = "16K,256K,4M,256M")]
    pub sizes: String,
    /// Threads of the probe (each streams its own part of the arrays).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Repetitions per kernel and size (the median is reported).
    #[arg(long, default_value_t = 10)]
    pub reps: usize,
    /// Busyring cells for the measured step time (0: probe only).
    #[arg(long, default_value_t = 1000)]
    pub cells: usize,
    /// Cells per group (the engine's unit of work).
    #[arg(long, default_value_t = 64)]
    pub group_size: usize,
    /// Simulated time (ms) of the busyring run.
    #[arg(long, default_value_t = 50.0)]
    pub tstop: f64,
}

fn fail(m: String) -> CliError {
    CliError { message: m, collective: true }
}

fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'K' | 'k' => (&s[..s.len() - 1], 1usize << 10),
        'M' | 'm' => (&s[..s.len() - 1], 1 << 20),
        'G' | 'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.trim().parse::<usize>().ok().map(|n| n * mult).filter(|&b| b >= 64)
}

fn human(bytes: usize) -> String {
    if bytes >= 1 << 30 {
        format!("{} GiB", bytes >> 30)
    } else if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kernel {
    Copy,
    Triad,
}

impl Kernel {
    /// Bytes counted per element (STREAM's convention: reads plus writes, no write-allocate traffic).
    fn bytes(self) -> usize {
        match self {
            Kernel::Copy => 16,
            Kernel::Triad => 24,
        }
    }
}

/// One pass of the kernel over one thread's part, `inner` times.
fn pass(k: Kernel, a: &mut [f64], b: &[f64], c: &mut [f64], inner: usize) {
    let s = 3.0;
    for _ in 0..inner {
        match k {
            Kernel::Copy => c.copy_from_slice(black_box(&*a)),
            Kernel::Triad => {
                for ((x, y), z) in a.iter_mut().zip(b).zip(c.iter()) {
                    *x = y + s * z;
                }
            }
        }
        black_box(&mut *a);
        black_box(&mut *c);
    }
}

/// Median GB/s (1e9 bytes) of kernel `k` on arrays of `bytes` each, over `threads` threads.
fn probe(k: Kernel, bytes: usize, threads: usize, reps: usize) -> f64 {
    let n = (bytes / 8).max(threads);
    let (mut a, b, mut c) = (vec![1.0f64; n], vec![2.0f64; n], vec![0.5f64; n]);
    // Small arrays: repeat the pass so one timing is long enough to read (>= 2^24 bytes counted).
    let inner = ((1usize << 24) / (n * k.bytes())).max(1);
    let chunk = n.div_ceil(threads);
    let mut rates = Vec::with_capacity(reps);
    for _ in 0..reps {
        let start = Instant::now();
        if threads == 1 {
            pass(k, &mut a, &b, &mut c, inner);
        } else {
            std::thread::scope(|s| {
                for ((a, b), c) in a.chunks_mut(chunk).zip(b.chunks(chunk)).zip(c.chunks_mut(chunk)) {
                    s.spawn(move || pass(k, a, b, c, inner));
                }
            });
        }
        let secs = start.elapsed().as_secs_f64();
        rates.push((n * k.bytes() * inner) as f64 / secs / 1e9);
    }
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// Bytes read and written per step by the busyring's kernels, per item they run over: (phase, what is
/// touched, bytes per item, items per cell). Counted from the arrays each loop indexes (f64 8 bytes, node
/// and ion indices 4 bytes; a read-modify-write counts twice; runs of consecutive nodes read no index per
/// node); the BY cell has 1 hh soma, 33 pas dendrite compartments and one Exp2Syn.
fn busyring_phases(nodes_per_cell: f64) -> Vec<(&'static str, &'static str, f64, f64)> {
    vec![
        ("step setup", "rhs = 0 (W); d = d_static (R, W)", 24.0, nodes_per_cell),
        ("pas current (by runs)", "g, e, v (R); rhs, d (R+W)", 56.0, 33.0),
        ("hh current", "node, 2 ion ids; 4 params, m, h, n, v, ena, ek (R); ina, ik, rhs, d (R+W)", 180.0, 1.0),
        ("hh state", "node; v (R); m, h, n (R+W)", 60.0, 1.0),
        ("Exp2Syn current + state", "node; params, A, B, v (R); A, B, rhs, d (R+W)", 120.0, 1.0),
        (
            "tree solve (Hines, by runs)",
            "a, b, v[i], v[p] (R); d[i], d[p], rhs[i], rhs[p] (R+W); back: b, d, rhs[p] (R); rhs, v (R+W)",
            152.0,
            nodes_per_cell,
        ),
    ]
}

pub fn run(a: MemoryArgs) -> CliResult {
    if a.reps == 0 || a.threads == 0 {
        return Err(fail("--reps and --threads must be at least 1".into()));
    }
    let sizes: Vec<usize> = a
        .sizes
        .split(',')
        .map(|s| parse_size(s).ok_or_else(|| fail(format!("--sizes: {s:?} is not a size (e.g. 16K, 4M, 1G; >= 64)"))))
        .collect::<CliResult<_>>()?;
    println!("Memory bandwidth, STREAM-style, {} thread(s), median of {} (GB/s = 1e9 bytes/s)", a.threads, a.reps);
    println!("{:>10} {:>10} {:>10}", "array", "copy", "triad");
    let mut triads = Vec::new();
    for &bytes in &sizes {
        let copy = probe(Kernel::Copy, bytes, a.threads, a.reps);
        let triad = probe(Kernel::Triad, bytes, a.threads, a.reps);
        println!("{:>10} {:>10.1} {:>10.1}", human(bytes), copy, triad);
        triads.push((bytes, triad));
    }
    if a.cells == 0 {
        return Ok(());
    }
    if a.cells < 2 {
        return Err(fail("--cells must be 0 (probe only) or >= 2".into()));
    }
    // The busyring's own numbers: layout of one group and the measured step time.
    let one = miv_solvers::CellGroup::new(
        &[super::bench::by_cell().into()],
        &miv_solvers::Catalogue::builtin(),
        miv_solvers::SimOptions::default(),
    )
    .map_err(|e| fail(e.to_string()))?;
    let nodes_per_cell = one.num_nodes() as f64;
    let comps_per_cell = one.num_compartments() as f64;
    let runs: Vec<super::bench::Row> = (0..3)
        .map(|_| super::bench::bench_by(a.cells, a.group_size, a.tstop))
        .collect::<Result<_, String>>()
        .map_err(fail)?;
    let heap_per_cell = runs[0].bytes_per_cell.unwrap_or(f64::NAN);
    let best = runs.iter().min_by(|x, y| x.seconds.total_cmp(&y.seconds)).expect("three runs");
    let ns = best.ns_per_comp_step();
    let phases = busyring_phases(nodes_per_cell);
    let touched: f64 = phases.iter().map(|p| p.2 * p.3).sum::<f64>() / comps_per_cell;
    // A group advances one exchange interval (the 5 ms delay, 200 steps) at a time: its working set comes from
    // main memory once per interval at least.
    let steps_per_interval = 5.0 / 0.025;
    let group_set = heap_per_cell * a.group_size as f64;
    let dram = heap_per_cell / comps_per_cell / steps_per_interval;
    println!();
    println!(
        "Busyring step, {} cells in groups of {}, {} ms: {:.0} nodes and {:.0} compartments per cell",
        a.cells, a.group_size, a.tstop, nodes_per_cell, comps_per_cell
    );
    println!("{:<26} {:>12} {:>10}  touched", "phase", "B per item", "items/cell");
    for (phase, what, b, items) in &phases {
        println!("{phase:<26} {b:>12.0} {items:>10.0}  {what}");
    }
    println!("bytes read+written per compartment-step: {touched:.0}");
    println!(
        "group working set: {} ({:.0} B per cell); from main memory at least once per 200-step exchange interval: {dram:.2} B per compartment-step",
        human(group_set as usize),
        heap_per_cell
    );
    let fits = triads.iter().filter(|(b, _)| (*b as f64) * 3.0 >= group_set).min_by_key(|(b, _)| *b);
    let (dram_bytes, dram_bw) = *triads.last().expect("at least one size");
    println!(
        "measured: {ns:.2} ns per compartment-step = {:.1} GB/s of kernel traffic ({:.2} us per cell per simulated ms)",
        touched / ns,
        ns * comps_per_cell * 40.0 / 1000.0
    );
    if let Some(&(bytes, bw)) = fits {
        println!(
            "if bound by the triad bandwidth at the group's size ({} arrays, {bw:.1} GB/s): {:.2} ns; measured / bound = {:.1}",
            human(bytes),
            touched / bw,
            ns / (touched / bw)
        );
    }
    println!(
        "if bound by main memory ({} arrays, {dram_bw:.1} GB/s) for the working set alone: {:.3} ns; measured / bound = {:.0}",
        human(dram_bytes),
        dram / dram_bw,
        ns / (dram / dram_bw)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes_and_reject_junk() {
        assert_eq!(parse_size("16K"), Some(16 << 10));
        assert_eq!(parse_size(" 4M"), Some(4 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("8"), None);
    }

    #[test]
    fn probe_kernels_compute_what_they_count() {
        let (mut a, b, mut c) = (vec![1.0; 100], vec![2.0; 100], vec![0.5; 100]);
        pass(Kernel::Triad, &mut a, &b, &mut c, 1);
        assert!(a.iter().all(|&x| x == 2.0 + 3.0 * 0.5));
        pass(Kernel::Copy, &mut a, &b, &mut c, 1);
        assert_eq!(a, c);
        let r = probe(Kernel::Triad, 1 << 16, 2, 3);
        assert!(r.is_finite() && r > 0.0, "{r}");
    }
}
