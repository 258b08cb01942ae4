//! The one entry for a whole run: [`run_experiment`] reads an experiment YAML, builds its network through the
//! construction jobs when it names one, makes the mechanism catalogue and simulates it. `miv run`, the
//! examples and the tests call it; a program embedding miv calls it the same way.
//!
//! The engine depends on `miv-jobs` (the construction chain), which depends on neither the engine nor the CLI,
//! so the whole run can live here.

use std::path::Path;

use miv_partition::Communicator;

use crate::error::EngineError;
use crate::experiment::{self, Summary};
use crate::spikes::Spike;
use miv_config::Experiment;

/// What the command line may change in an experiment without editing its file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Worker threads per rank (replaces `partition.threads`; 0 = all cores).
    pub threads: Option<usize>,
    /// Use more threads than this rank's cores (otherwise the count is capped at the cores, with a warning).
    pub force_threads: bool,
    /// Simulated time (ms), replacing the experiment's `t_end`.
    pub t_end: Option<f64>,
}

/// The experiment at `path` with the overrides applied, checked on every rank (collective).
pub fn load_experiment(comm: &dyn Communicator, path: &Path, overrides: &Overrides) -> Result<Experiment, EngineError> {
    let mut e = comm.agreed(Experiment::load(path))?;
    comm.agreed(e.check_outputs(path))?;
    if let Some(t) = overrides.threads {
        e.partition.threads = t;
    }
    if let Some(t) = overrides.t_end {
        if !(t.is_finite() && t > 0.0) {
            return Err(EngineError::Network(format!("t_end must be a positive number of ms, not {t}")));
        }
        e.t_end = t;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if e.partition.threads > cores && !overrides.force_threads {
        if comm.rank() == 0 {
            tracing::warn!(
                "{} threads per rank asked for, but this rank has {cores} core(s): using {cores} (--force-threads keeps the number)",
                e.partition.threads
            );
        }
        e.partition.threads = cores;
    }
    Ok(e)
}

/// Run the experiment at `path` (collective): load it, build its network (cached in the experiment's store),
/// simulate, and write its outputs on root. Returns the summary and, on root, every spike.
pub fn run_experiment(
    comm: &dyn Communicator,
    path: &Path,
    overrides: &Overrides,
) -> Result<(Summary, Option<Vec<Spike>>), EngineError> {
    let mut e = load_experiment(comm, path, overrides)?;
    build_network(comm, &mut e)?;
    // The built files are inputs too.
    comm.agreed(e.check_outputs(path))?;
    // Read by the NMODL compiler: set before any mechanism of this run is compiled.
    miv_nmodl::set_netrec_state_adjust(e.netrec_state_adjust);
    let catalogue = comm.agreed(crate::mechanisms::catalogue(e.mechanisms.as_deref()))?;
    experiment::run(comm, &e, catalogue)
}

/// The experiment at `path` loaded into an execution environment, ready for `finitialize` (collective): its
/// network built if needed (cached), catalogue compiled, cells, connections, stimulus, LFP and probes added.
pub fn load_environment<'c>(
    comm: &'c dyn Communicator,
    path: &Path,
    overrides: &Overrides,
) -> Result<(Experiment, crate::ExecutionEnvironment<'c>), EngineError> {
    let mut e = load_experiment(comm, path, overrides)?;
    build_network(comm, &mut e)?;
    miv_nmodl::set_netrec_state_adjust(e.netrec_state_adjust);
    let catalogue = comm.agreed(crate::mechanisms::catalogue(e.mechanisms.as_deref()))?;
    let env = experiment::environment(comm, &e, catalogue)?;
    Ok((e, env))
}

/// When the experiment names a network YAML: build it (or find it in the store) on this job's ranks and take
/// its `cells.h5` and `connections.h5`.
fn build_network(comm: &dyn Communicator, e: &mut Experiment) -> Result<(), EngineError> {
    let Some(net_yaml) = e.network.clone() else { return Ok(()) };
    let net = comm.agreed(miv_config::NetworkConfig::load(&net_yaml))?;
    let store = miv_jobs::Store::with_comm(e.store.clone().expect("set by load"), comm);
    let built = miv_jobs::build(&net, &store, &miv_jobs::IoOptions::default())?;
    let files = built.graph.files();
    e.cells = files.cells;
    e.connections = Some(files.connections);
    Ok(())
}
