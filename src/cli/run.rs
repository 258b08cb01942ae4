//! `miv run EXPERIMENT.yaml`: load a network from NeuroH5, simulate it and write the results (schema in
//! docs/run-yaml.md). The same command runs in one process or under `mpirun`.

use std::path::PathBuf;

use clap::Args;
use miv_config::Experiment;
use miv_engine::{run_experiment, Overrides};
use miv_partition::Communicator;

use super::{CliError, CliResult};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The experiment (YAML).
    pub experiment: PathBuf,
    /// Submit the run as a Slurm batch job (rendered from jobs/templates/run.sbatch) instead of running it.
    #[arg(long)]
    pub slurm: bool,
    /// With --slurm: MPI ranks (tasks) of the job.
    #[arg(long, default_value_t = 1)]
    pub ranks: usize,
    /// With --slurm: print the batch script instead of submitting it.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub slurm_args: super::build::SlurmArgs,
    /// Worker threads per rank (overrides partition.threads; 0 = all cores). More than the cores is capped
    /// at the cores unless --force-threads.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Keep a thread count above the number of cores.
    #[arg(long)]
    pub force_threads: bool,
    /// Simulated time (ms), replacing the experiment's `t_end`.
    #[arg(long)]
    pub t_end: Option<f64>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Draw the spike raster and LFP trace (as `miv plot`) next to the results after the run.
    #[arg(long)]
    pub plot: bool,
}

pub fn run(comm: &dyn Communicator, args: RunArgs) -> CliResult {
    if args.slurm {
        return submit(comm, &args);
    }
    if args.dry_run {
        return Err(CliError {
            message: "--dry-run prints the batch script of --slurm; give --slurm as well".into(),
            collective: true,
        });
    }
    if let Some(t) = args.t_end.filter(|t| !(t.is_finite() && *t > 0.0)) {
        // Every rank sees the same argument: a collective error.
        return Err(CliError {
            message: format!("--t-end must be a positive number of ms, not {t}"),
            collective: true,
        });
    }
    let overrides = Overrides { threads: args.threads, force_threads: args.force_threads, t_end: args.t_end };
    let (summary, _) = run_experiment(comm, &args.experiment, &overrides)
        .map_err(|err| CliError { collective: err.is_collective(), message: err.to_string() })?;
    if comm.rank() == 0 {
        if args.json {
            println!("{}", serde_json::to_string(&summary).expect("json"));
        } else {
            println!(
                "{} cells, {} compartments, {} connections on {} rank(s) x {} thread(s); {} spikes in {} ms (min delay {} ms)",
                summary.cells, summary.compartments, summary.connections, summary.ranks, summary.threads, summary.spikes, summary.t_end, summary.min_delay
            );
            println!(
                "load {:.3} s, init {:.3} s, run {:.3} s ({:.2} us per cell per ms), write {:.3} s -> {}",
                summary.load_s,
                summary.init_s,
                summary.run_s,
                1e6 * summary.run_s / (summary.cells.max(1) as f64 * summary.t_end.max(1e-9)),
                summary.write_s,
                summary.results
            );
        }
        if args.plot {
            super::plot::plot_results(std::path::Path::new(&summary.results), None)?;
        }
    }
    Ok(())
}

/// Render the run's batch script next to the experiment and submit it with sbatch (or print it).
fn submit(comm: &dyn Communicator, args: &RunArgs) -> CliResult {
    if comm.rank() != 0 {
        return Ok(());
    }
    let fail = |m: String| CliError { message: m, collective: true };
    let exp =
        std::fs::canonicalize(&args.experiment).map_err(|e| fail(format!("{}: {e}", args.experiment.display())))?;
    // Check the experiment now rather than in the queue.
    let e = Experiment::load(&exp).map_err(|e| fail(e.to_string()))?;
    e.check_outputs(&exp).map_err(|e| fail(e.to_string()))?;
    let mut s = args.slurm_args.options(args.ranks, args.dry_run)?;
    s.cpus_per_task = args.threads.filter(|&t| t > 0).map(|t| t.min(u32::MAX as usize) as u32);
    let mut extra = Vec::new();
    if let Some(t) = args.threads {
        extra.push("--threads".into());
        extra.push(t.to_string());
    }
    if args.force_threads {
        extra.push("--force-threads".into());
    }
    if args.json {
        extra.push("--json".into());
    }
    let (path, id) = s.submit_run("run", &exp, &extra).map_err(|e| fail(e.to_string()))?;
    if let Some(id) = id {
        println!("submitted {} as Slurm job {id}", path.display());
    }
    Ok(())
}
