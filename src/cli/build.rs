//! `miv build NETWORK.yaml`: run the construction chain (h5 types → architecture → distances → forests →
//! synapses → connections → graph) into a job store and print the paths of `cells.h5` and `connections.h5`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use miv_config::NetworkConfig;
use miv_jobs::{Executor, InProcess, IoOptions, MpirunOptions, SlurmOptions, Status, Store};
use miv_partition::Communicator;

use super::{CliError, CliResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExecutorKind {
    /// In this process (on the ranks it was started with).
    Local,
    /// Each job as `mpirun -n RANKS miv jobs exec ...`.
    Mpirun,
    /// Each job as a Slurm batch job (`sbatch`), after the jobs it uses.
    Slurm,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The network YAML (see docs/network-yaml.md).
    pub network: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print what would run (with `--executor slurm`: the batch scripts) without running it.
    #[arg(long)]
    pub dry_run: bool,
    /// Cells per write block.
    #[arg(long, default_value_t = 10_000)]
    pub write_size: u64,
}

/// Where jobs are stored and how they run (shared by `miv build` and `miv jobs`).
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The job store directory.
    #[arg(long, default_value = ".miv-store", env = "MIV_STORE")]
    pub store: PathBuf,
    /// Where each job runs.
    #[arg(long, value_enum, default_value_t = ExecutorKind::Local)]
    pub executor: ExecutorKind,
    /// Ranks per job (mpirun) or tasks per job (Slurm).
    #[arg(long, default_value_t = 1)]
    pub ranks: usize,
    /// The MPI launcher of the mpirun executor.
    #[arg(long, default_value = "mpirun")]
    pub mpirun: String,
    /// Extra launcher arguments (repeat), e.g. --mpirun-arg=--oversubscribe.
    #[arg(long = "mpirun-arg", allow_hyphen_values = true)]
    pub mpirun_args: Vec<String>,
    #[command(flatten)]
    pub slurm: SlurmArgs,
}

/// How a Slurm batch job is laid out and submitted (shared by `miv build`, `miv jobs` and `miv run`).
#[derive(Debug, Args)]
pub struct SlurmArgs {
    /// Slurm: nodes per job.
    #[arg(long, default_value_t = 1)]
    pub nodes: u32,
    /// Slurm: wall time per job.
    #[arg(long, default_value = "01:00:00")]
    pub time: String,
    /// Slurm: partition (queue) of the jobs.
    #[arg(long)]
    pub partition: Option<String>,
    /// Slurm: account charged for the jobs.
    #[arg(long)]
    pub account: Option<String>,
    /// Slurm: environment module to load (repeat).
    #[arg(long = "module")]
    pub modules: Vec<String>,
    /// Slurm: how the batch script starts the ranks.
    #[arg(long, default_value = "srun")]
    pub launcher: String,
    /// Slurm: a batch script template instead of the shipped one.
    #[arg(long)]
    pub template: Option<PathBuf>,
    /// Slurm: the submit command.
    #[arg(long, default_value = "sbatch")]
    pub sbatch: String,
}

impl SlurmArgs {
    /// Slurm options for `ntasks` ranks running this `miv` binary.
    pub fn options(&self, ntasks: usize, dry_run: bool) -> CliResult<SlurmOptions> {
        let program =
            std::env::current_exe().map_err(|e| CliError::local(format!("cannot find the miv binary: {e}")))?;
        let mut s = SlurmOptions::new(program);
        s.nodes = self.nodes;
        s.ntasks = ntasks as u32;
        s.time = self.time.clone();
        s.partition = self.partition.clone();
        s.account = self.account.clone();
        s.modules = self.modules.clone();
        s.launcher = self.launcher.clone();
        s.template = self.template.clone();
        s.sbatch = self.sbatch.clone();
        s.dry_run = dry_run;
        s.validate().map_err(|e| CliError::local(e.to_string()))?;
        Ok(s)
    }
}

impl StoreArgs {
    pub fn executor(&self, dry_run: bool) -> CliResult<Box<dyn Executor>> {
        let program =
            std::env::current_exe().map_err(|e| CliError::local(format!("cannot find the miv binary: {e}")))?;
        if self.ranks == 0 {
            return Err(CliError::local("--ranks: expected at least 1"));
        }
        Ok(match self.executor {
            ExecutorKind::Local => Box::new(InProcess),
            ExecutorKind::Mpirun => {
                let mut m = MpirunOptions::new(self.ranks, program);
                m.mpirun = self.mpirun.clone();
                m.args = self.mpirun_args.clone();
                Box::new(m)
            }
            ExecutorKind::Slurm => Box::new(self.slurm.options(self.ranks, dry_run)?),
        })
    }

    pub fn open<'c>(&self, comm: &'c dyn Communicator, dry_run: bool) -> CliResult<Store<'c>> {
        Ok(Store::with_comm(&self.store, comm).executor(self.executor(dry_run)?))
    }
}

/// Turn a job error into a CLI error (collective when every rank holds it).
pub fn job_error(e: miv_jobs::JobError) -> CliError {
    CliError { collective: e.is_collective(), message: e.to_string() }
}

pub fn run(comm: &dyn Communicator, args: BuildArgs) -> CliResult {
    let loaded = NetworkConfig::load(&args.network);
    let net = comm.agreed(loaded)?;
    let io = IoOptions { write_size: args.write_size.max(1), ..IoOptions::default() };
    if args.dry_run && args.store.executor != ExecutorKind::Slurm {
        return plan(comm, &net, &args.store, &io);
    }
    let store = args.store.open(comm, args.dry_run)?;
    let network = miv_jobs::build(&net, &store, &io).map_err(job_error)?;
    if comm.rank() == 0 {
        let files = network.graph.files();
        match &network.graph.status {
            Status::Complete => {}
            Status::Submitted { job_id } => {
                let id = job_id.clone().unwrap_or_else(|| "(dry run)".into());
                eprintln!("submitted: the files appear when Slurm job {id} completes");
            }
            Status::Incomplete => {}
        }
        println!("cells: {}", files.cells.display());
        println!("connections: {}", files.connections.display());
    }
    Ok(())
}

/// `--dry-run` without Slurm: the jobs the build would launch, with their identities and whether they are
/// cached.
fn plan(comm: &dyn Communicator, net: &NetworkConfig, store_args: &StoreArgs, io: &IoOptions) -> CliResult {
    let jobs = miv_jobs::build::plan(net, io).map_err(job_error)?;
    if comm.rank() == 0 {
        let store = Store::open(&store_args.store);
        for j in jobs {
            let state = if store.is_complete(&j) { "cached" } else { "would run" };
            println!("{:<24} {}  {state}", j.kind, j.id);
        }
    }
    Ok(())
}
