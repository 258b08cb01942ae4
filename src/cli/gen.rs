//! `miv gen ring|busyring --n N --out DIR`: write a synthetic test network (NeuroH5 files, template,
//! cell_types, synapses and an experiment YAML) that `miv run` takes as is.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use miv_engine::synthetic::{self, Kind, Spec};
use miv_partition::Communicator;

use super::{CliError, CliResult};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Network {
    /// Ball-and-stick ring of `tests/reference/neuron-arbor/README.md` (d).
    Ring,
    /// BY-cell busyring, the reference benchmark network.
    Busyring,
}

#[derive(Debug, Args)]
pub struct GenArgs {
    pub network: Network,
    /// Number of cells.
    #[arg(long, default_value_t = 10)]
    pub n: u64,
    /// Connection delay (ms).
    #[arg(long, default_value_t = 5.0)]
    pub delay: f64,
    /// Extra weight-0 connections per cell (busyring; default 10).
    #[arg(long)]
    pub fanin: Option<u64>,
    /// Artificial (VecStim) cells of a population STIM driving the ring (cell i from STIM cell i % stim).
    #[arg(long, default_value_t = 0)]
    pub stim: u64,
    /// Simulated time written into the experiment (ms).
    #[arg(long)]
    pub t_end: Option<f64>,
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(comm: &dyn Communicator, a: GenArgs) -> CliResult {
    let (kind, fanin, t_end) = match a.network {
        Network::Ring => (Kind::Ring, a.fanin.unwrap_or(0), a.t_end.unwrap_or(100.0)),
        Network::Busyring => (Kind::Busyring, a.fanin.unwrap_or(10), a.t_end.unwrap_or(200.0)),
    };
    // At least a cell's tree, attributes and edges in memory while writing (a low estimate).
    let per_cell = 256.0 + 24.0 * (fanin + 1) as f64;
    miv_engine::experiment::check_memory(&format!("--n {}", a.n), per_cell * (a.n + a.stim) as f64)
        .map_err(|m| CliError { message: m, collective: true })?;
    let spec = Spec { kind, n: a.n, delay: a.delay, fanin, t_end, stim: a.stim };
    let r =
        if comm.rank() == 0 { synthetic::write(&a.out, &spec).map(|p| println!("{}", p.display())) } else { Ok(()) };
    comm.agree(r.map_err(|e| e.to_string())).map_err(CliError::from)
}
