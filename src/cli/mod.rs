//! Command-line interface: parse, start the communicator and logging, dispatch, and turn any error into
//! one readable message (printed once, on rank 0, when all ranks agreed on it; otherwise the failing rank
//! prints it and aborts the job so no rank hangs).

use clap::{Parser, Subcommand};

mod bench;
mod bench_floor;
mod bench_memory;
mod bench_miv;
mod bench_network;
mod bench_scaling;
mod build;
pub mod cell;
mod debug;
mod gen;
mod h5;
mod info;
mod jobs;
mod mech;
mod plot;
mod run;
pub mod study;

/// Errors reaching the command line. `collective` errors are known to every rank (agreed through
/// `Communicator::agree`), so every rank can exit normally and only rank 0 prints; any other error on a
/// multi-rank job aborts the job.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub collective: bool,
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl CliError {
    pub fn local(message: impl Into<String>) -> CliError {
        CliError { message: message.into(), collective: false }
    }
}

impl From<miv_partition::CollectiveError> for CliError {
    fn from(e: miv_partition::CollectiveError) -> CliError {
        CliError { message: e.to_string(), collective: true }
    }
}

pub type CliResult<T = ()> = Result<T, CliError>;

#[derive(Debug, Parser)]
#[command(name = "miv", version, about = "Large biophysical neural network simulation (NeuroH5, MPI)", long_about = None)]
pub struct Cli {
    /// More log output (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less log output (repeat for less).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub quiet: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print version, features and, for every rank, its rank/size/host (gathered on rank 0).
    Info(info::InfoArgs),
    /// Build a network (cells.h5 and connections.h5) from a network YAML through cached construction jobs.
    Build(build::BuildArgs),
    /// Inspect the job store.
    Jobs(jobs::JobsArgs),
    /// Inspect NeuroH5 files, import SWC morphologies, benchmark I/O.
    H5(h5::H5Args),
    /// Benchmarks: numerics and the busyring against NEURON and Arbor, scaling studies, memory bandwidth.
    Bench(bench::BenchArgs),
    /// Simulate one cell described in YAML (docs/cell-yaml.md); write probe traces and spikes as CSV.
    Cell(cell::CellArgs),
    /// Simulate a network from NeuroH5 files as an experiment YAML describes (docs/run-yaml.md).
    Run(run::RunArgs),
    /// Write a synthetic test network (ring or busyring) as NeuroH5 files plus an experiment.
    Gen(gen::GenArgs),
    /// Draw a results file's spike raster and LFP trace as PNG.
    Plot(plot::PlotArgs),
    /// The separation study (rc-separation.py) on one loaded network, cached per run (docs/api.md).
    Study(study::StudyArgs),
    /// NEURON .mod files: compile and list a folder (`check`), time NMODL hh (`bench`).
    Mech(mech::MechArgs),
    /// Diagnostics used by the multi-rank tests.
    #[command(hide = true)]
    Debug(debug::DebugArgs),
}

/// Run the parsed command line; returns the process exit code.
pub fn main(cli: Cli) -> i32 {
    miv_partition::install_panic_abort();
    let comm = miv_partition::init();
    let (rank, size) = (comm.rank(), comm.size());
    crate::logging::init(rank, size, cli.verbose as i32 - cli.quiet as i32);
    let result = match cli.command {
        Command::Info(a) => info::run(comm.as_ref(), a),
        Command::Debug(a) => debug::run(comm.as_ref(), a),
        Command::Build(a) => build::run(comm.as_ref(), a),
        Command::Jobs(a) => jobs::run(comm.as_ref(), a),
        Command::H5(a) => h5::run(comm.as_ref(), a),
        Command::Cell(a) => cell::run(comm.as_ref(), a),
        Command::Mech(a) => mech::run(comm.as_ref(), a),
        Command::Bench(a) => bench::run(comm.as_ref(), a),
        Command::Run(a) => run::run(comm.as_ref(), a),
        Command::Gen(a) => gen::run(comm.as_ref(), a),
        Command::Plot(a) => plot::run(comm.as_ref(), a),
        Command::Study(a) => study::run(comm.as_ref(), a),
    };
    match result {
        Ok(()) => 0,
        Err(e) if e.collective || size == 1 => {
            if rank == 0 {
                eprintln!("error: {e}");
            }
            drop(comm);
            1
        }
        Err(e) => comm.abort(&e.message, 1),
    }
}
