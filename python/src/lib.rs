//! `miv._miv`: the compiled half of the Python package `miv` (python/miv/*.py is the other half, which gives
//! MiV-Simulator's names, checks arguments and turns the byte buffers returned here into numpy arrays).
//!
//! One communicator per process, made on first use: it joins an MPI that mpi4py started, starts MPI itself
//! under a launcher (finalised by [`finalize`], which the Python package registers with `atexit`), and is
//! one serial rank otherwise. Arrays cross the boundary as little-endian byte buffers (one copy).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use miv::config::{
    default_synapse_rules, CellTypes, ConfigError, LfpConfig, NetworkConfig, Partitioning, SynapseRule, Synapses,
};
use miv::engine::{EngineError, ExecutionEnvironment, RunOptions};
use miv::partition::Communicator;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

pyo3::create_exception!(
    _miv,
    MivError,
    PyRuntimeError,
    "An error of the miv engine (file, key or gid named in the message)."
);

struct World {
    comm: &'static dyn Communicator,
    owns_mpi: bool,
}

static WORLD: OnceLock<World> = OnceLock::new();

fn world() -> &'static World {
    WORLD.get_or_init(|| {
        miv::partition::install_panic_abort();
        let (comm, owns_mpi) = miv::partition::init_or_attach();
        let comm: &'static dyn Communicator = Box::leak(comm);
        World { comm, owns_mpi }
    })
}

fn comm() -> &'static dyn Communicator {
    world().comm
}

/// Engine errors as Python exceptions: configuration errors (file and key named) are `ValueError`, the
/// others `MivError`.
fn engine_err(e: EngineError) -> PyErr {
    match e {
        EngineError::Config(c) => PyValueError::new_err(c.to_string()),
        other => MivError::new_err(other.to_string()),
    }
}

fn config_err(e: ConfigError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn other_err(e: impl std::fmt::Display) -> PyErr {
    MivError::new_err(e.to_string())
}

fn bytes_f64<'py>(py: Python<'py>, v: &[f64]) -> Bound<'py, PyBytes> {
    PyBytes::new(py, bytemuck::cast_slice(v))
}

fn bytes_u64<'py>(py: Python<'py>, v: &[u64]) -> Bound<'py, PyBytes> {
    PyBytes::new(py, bytemuck::cast_slice(v))
}

/// f64 values from a byte buffer of native-endian doubles (numpy's `tobytes()`).
fn f64s(arg: &str, b: &[u8]) -> PyResult<Vec<f64>> {
    if b.len() % 8 != 0 {
        return Err(PyValueError::new_err(format!("{arg}: expected float64 values ({} bytes)", b.len())));
    }
    Ok(b.chunks_exact(8).map(|c| f64::from_ne_bytes(c.try_into().expect("8 bytes"))).collect())
}

/// Parse YAML (or JSON) text into `T`; `origin` names the argument or file in errors.
fn parse<T: serde::de::DeserializeOwned>(text: &str, origin: &str) -> PyResult<T> {
    miv::config::from_yaml_str(text, Path::new(origin)).map_err(config_err)
}

/// Rank and size of the job (initialises the communicator).
#[pyfunction]
fn rank_size() -> (usize, usize) {
    (comm().rank(), comm().size())
}

/// The communicator's transport ("serial" or the MPI library) and whether miv started MPI.
#[pyfunction]
fn mpi_state() -> (String, bool) {
    let w = world();
    (w.comm.transport(), w.owns_mpi)
}

/// Finalise MPI if miv started it (registered with `atexit`); a no-op otherwise.
#[pyfunction]
fn finalize() {
    if let Some(w) = WORLD.get() {
        if w.owns_mpi {
            miv::partition::finalize_mpi();
        }
    }
}

/// Terminate every rank with `code` when MPI runs with more than one rank (`MPI_Abort`); returns otherwise.
#[pyfunction]
fn abort(code: i32) {
    miv::partition::abort_world(code);
}

/// Collective barrier.
#[pyfunction]
fn barrier() {
    comm().barrier();
}

/// Logs through `tracing` to stderr with the rank (`verbosity` 0: rank 0 info, others warn).
#[pyfunction]
fn init_logging(verbosity: i32) {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| miv::logging::init(comm().rank(), comm().size(), verbosity));
}

/// YAML text (a file's or a string's) as JSON text, for `miv.utils.from_yaml`; `origin` names it in errors.
#[pyfunction]
fn yaml_to_json(text: &str, origin: &str) -> PyResult<String> {
    // Through the YAML value, which keeps the keys in file order (a job's identity depends on it).
    let v: serde_norway::Value = parse(text, origin)?;
    serde_json::to_string(&v).map_err(|e| PyValueError::new_err(format!("{origin}: {e}")))
}

/// Build the network of a network YAML through the cached construction jobs into `store` (collective).
/// Returns `{"cells": path, "connections": path, "jobs": [(kind, id, dir), ...]}`.
#[pyfunction]
fn build<'py>(py: Python<'py>, network: PathBuf, store: PathBuf) -> PyResult<Bound<'py, PyDict>> {
    let c = comm();
    let net = c.agreed(NetworkConfig::load(&network)).map_err(|e| PyValueError::new_err(e.to_string()))?;
    let store = miv::jobs::Store::with_comm(store, c);
    let built = miv::jobs::build(&net, &store, &miv::jobs::IoOptions::default()).map_err(other_err)?;
    let files = built.graph.files();
    let d = PyDict::new(py);
    d.set_item("cells", files.cells)?;
    d.set_item("connections", files.connections)?;
    let jobs: Vec<(String, String, PathBuf)> = built
        .jobs()
        .into_iter()
        .map(|r| {
            let dir = store.dir(&r);
            (r.kind.clone(), r.id.clone(), dir)
        })
        .collect();
    d.set_item("jobs", jobs)?;
    Ok(d)
}

/// Launch one construction job of `kind` (`h5_types`, `network_architecture`, `measure_distances`,
/// `generate_synapse_forest`, `distribute_synapses`, `generate_connections`, `neuroh5_graph`) from its
/// configuration (JSON, the job's serde form; the jobs it uses as `{kind, id}`) into `store` (collective).
/// Returns (id, directory, the job's configuration as JSON, whether the store had it complete).
#[pyfunction]
fn launch_job(kind: &str, config: &str, store: PathBuf) -> PyResult<(String, PathBuf, String, bool)> {
    use miv::jobs::*;
    fn go<J: Launch>(kind: &str, config: &str, store: &Store) -> PyResult<(String, PathBuf, String, bool)> {
        let job: J = parse(config, kind)?;
        let l = job.launch(store).map_err(other_err)?;
        let json = serde_json::to_string(&l.job).map_err(other_err)?;
        Ok((l.reference.id.clone(), l.dir.clone(), json, l.cached()))
    }
    let store = Store::with_comm(store, comm());
    match kind {
        "h5_types" => go::<H5Types>(kind, config, &store),
        "network_architecture" => go::<NetworkArchitecture>(kind, config, &store),
        "measure_distances" => go::<MeasureDistances>(kind, config, &store),
        "generate_synapse_forest" => go::<GenerateSynapseForest>(kind, config, &store),
        "distribute_synapses" => go::<DistributeSynapses>(kind, config, &store),
        "generate_connections" => go::<GenerateConnections>(kind, config, &store),
        "neuroh5_graph" => go::<NeuroH5Graph>(kind, config, &store),
        other => Err(PyValueError::new_err(format!(
            "kind: {other:?} is not a construction job (h5_types, network_architecture, measure_distances, generate_synapse_forest, distribute_synapses, generate_connections, neuroh5_graph)"
        ))),
    }
}

/// The `measure_distances` configuration of a launched `network_architecture` (MiV's
/// `network.measure_distances()`), as JSON; the architecture is found complete in `store` (no work).
#[pyfunction]
fn measure_distances_of(architecture: &str, store: PathBuf) -> PyResult<String> {
    use miv::jobs::*;
    let arch: NetworkArchitecture = parse(architecture, "network_architecture")?;
    let store = Store::with_comm(store, comm());
    let l = arch.launch(&store).map_err(other_err)?;
    serde_json::to_string(&MeasureDistances::of(&l)).map_err(other_err)
}

/// Run an experiment YAML as `miv run` does (collective); returns the number of spikes on rank 0.
#[pyfunction]
#[pyo3(signature = (experiment, threads=None, force_threads=false))]
fn run_experiment(experiment: PathBuf, threads: Option<usize>, force_threads: bool) -> PyResult<Option<usize>> {
    let overrides = miv::engine::Overrides { threads, force_threads, t_end: None };
    let (_, spikes) = miv::engine::run_experiment(comm(), &experiment, &overrides).map_err(engine_err)?;
    Ok(spikes.map(|s| s.len()))
}

/// Run the separation study of a study YAML (`miv study`) into `out` (collective).
#[pyfunction]
#[pyo3(signature = (study, out, trials=None, t_end=None))]
fn study(study: PathBuf, out: PathBuf, trials: Option<usize>, t_end: Option<f64>) -> PyResult<()> {
    let args = miv::cli::study::StudyArgs::local(study, out, trials, t_end);
    miv::cli::study::run(comm(), args).map_err(other_err)
}

/// MiV's `ExecutionEnvironment` over `miv_engine::ExecutionEnvironment` (one per process in practice; each
/// holds its own network).
#[pyclass(unsendable, module = "miv._miv")]
struct Env {
    env: ExecutionEnvironment<'static>,
}

fn method_of(name: &str) -> PyResult<miv::solvers::Method> {
    match name {
        "backward_euler" => Ok(miv::solvers::Method::BackwardEuler),
        "crank_nicolson" => Ok(miv::solvers::Method::CrankNicolson),
        other => {
            Err(PyValueError::new_err(format!("method: expected backward_euler or crank_nicolson, got {other:?}")))
        }
    }
}

#[pymethods]
impl Env {
    #[new]
    #[pyo3(signature = (seed, dt, method, threads, max_step, mechanisms=None, netrec_state_adjust=false))]
    fn new(
        seed: u64,
        dt: f64,
        method: &str,
        threads: usize,
        max_step: f64,
        mechanisms: Option<PathBuf>,
        netrec_state_adjust: bool,
    ) -> PyResult<Env> {
        let c = comm();
        miv_nmodl::set_netrec_state_adjust(netrec_state_adjust);
        let catalogue = c.agreed(miv::engine::mechanisms::catalogue(mechanisms.as_deref())).map_err(other_err)?;
        let mut opts = RunOptions::default();
        opts.sim.dt = dt;
        opts.sim.method = method_of(method)?;
        opts.threads = threads;
        opts.max_step = max_step;
        opts.seed = seed;
        Ok(Env { env: ExecutionEnvironment::new(c, catalogue, opts) })
    }

    fn set_celsius(&mut self, celsius: f64) {
        self.env.set_celsius(celsius);
    }

    fn set_method(&mut self, method: &str) -> PyResult<()> {
        self.env.set_method(method_of(method)?).map_err(engine_err)
    }

    fn dt(&self) -> f64 {
        self.env.options().sim.dt
    }

    fn method(&self) -> &'static str {
        match self.env.options().sim.method {
            miv::solvers::Method::BackwardEuler => "backward_euler",
            miv::solvers::Method::CrankNicolson => "crank_nicolson",
        }
    }

    /// `cell_types`: YAML/JSON text; `origin` names it in errors.
    #[pyo3(signature = (cells, cell_types, origin, templates, partitioning="round-robin", io_size=0, clip_synapse_locations=true))]
    #[allow(clippy::too_many_arguments)]
    fn load_cells(
        &mut self,
        cells: PathBuf,
        cell_types: &str,
        origin: &str,
        templates: PathBuf,
        partitioning: &str,
        io_size: usize,
        clip_synapse_locations: bool,
    ) -> PyResult<()> {
        let ct: CellTypes = parse(cell_types, origin)?;
        let part: Partitioning = parse(partitioning, "partitioning")?;
        self.env.clip_synapse_locations = clip_synapse_locations;
        self.env.load_cells(&cells, &ct, &templates, part, io_size).map_err(engine_err)
    }

    /// `synapses` and `rules` (the experiment's `synapse_mechanisms`): YAML/JSON text.
    #[pyo3(signature = (connections, synapses, origin, rules=None, velocity=250.0, min_delay=None, io_size=0))]
    #[allow(clippy::too_many_arguments)]
    fn load_connections(
        &mut self,
        connections: PathBuf,
        synapses: &str,
        origin: &str,
        rules: Option<&str>,
        velocity: f64,
        min_delay: Option<f64>,
        io_size: usize,
    ) -> PyResult<()> {
        let syn: Synapses = parse(synapses, origin)?;
        let rules: BTreeMap<String, SynapseRule> = match rules {
            Some(r) => parse(r, "synapse_mechanisms")?,
            None => default_synapse_rules(),
        };
        let min_delay = min_delay.unwrap_or(2.0 * self.env.options().sim.dt);
        self.env.load_connections(&connections, &syn, &rules, velocity, min_delay, io_size).map_err(engine_err)
    }

    /// An LFP electrode from YAML/JSON text (docs/run-yaml.md `lfp`); returns its index. Collective.
    fn add_lfp(&mut self, config: &str) -> PyResult<usize> {
        let cfg: LfpConfig = parse(config, "LFP")?;
        if let Err(m) = cfg.validate() {
            return Err(PyValueError::new_err(format!("LFP {}: {m}", cfg.label)));
        }
        self.env.add_lfp(cfg).map_err(engine_err)
    }

    fn populations(&self) -> Vec<(String, u64, u64)> {
        match self.env.populations() {
            None => vec![],
            Some(p) => {
                let mut names = p.names();
                names.sort();
                names
                    .into_iter()
                    .filter_map(|n| p.get(&n).map(|r| (n.clone(), r.start, r.range().end - r.start)))
                    .collect()
            }
        }
    }

    fn artificial_cells<'py>(&self, py: Python<'py>, population: &str) -> Bound<'py, PyBytes> {
        bytes_u64(py, self.env.artificial_cells(population))
    }

    fn local_gids<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes_u64(py, &self.env.local_gids())
    }

    fn owns(&self, gid: u64) -> bool {
        self.env.owns(gid)
    }

    fn has_cell(&self, gid: u64) -> bool {
        self.env.has_cell(gid)
    }

    fn play(&mut self, gid: u64, times: &[u8]) -> PyResult<()> {
        let t = f64s("times", times)?;
        self.env.play(gid, &t).map_err(engine_err)
    }

    fn add_event(&mut self, gid: u64, target: usize, t: f64, weights: Vec<f64>) -> PyResult<()> {
        self.env.add_event(gid, target, t, weights).map_err(engine_err)
    }

    fn clear_events(&mut self) {
        self.env.clear_events();
    }

    fn record(&mut self, gid: u64, section: usize, x: f64, variable: &str, every_steps: u64) -> PyResult<String> {
        self.env.record(gid, section, x, variable, every_steps).map_err(engine_err)
    }

    fn clear_probes(&mut self) {
        self.env.clear_probes();
    }

    fn finitialize(&mut self, v_init: f64) -> PyResult<()> {
        self.env.finitialize(v_init).map_err(engine_err)
    }

    fn psolve(&mut self, t_stop: f64) -> PyResult<()> {
        self.env.psolve(t_stop).map_err(engine_err)
    }

    fn reset(&mut self) -> PyResult<()> {
        self.env.reset().map_err(engine_err)
    }

    fn time(&self) -> f64 {
        self.env.time()
    }

    fn min_delay(&self) -> f64 {
        self.env.min_delay()
    }

    fn state(&self, gid: u64, section: usize, x: f64, variable: &str) -> PyResult<f64> {
        self.env.state(gid, section, x, variable).map_err(engine_err)
    }

    fn set_state(&mut self, gid: u64, section: usize, x: f64, variable: &str, value: f64) -> PyResult<()> {
        self.env.set_state(gid, section, x, variable, value).map_err(engine_err)
    }

    fn set_cell_voltage(&mut self, gid: u64, v: f64) -> PyResult<()> {
        self.env.set_cell_voltage(gid, v).map_err(engine_err)
    }

    fn netcon_weights(&self, source: u64, target_gid: u64) -> PyResult<Vec<Vec<f64>>> {
        self.env.netcon_weights(source, target_gid).map_err(engine_err)
    }

    fn set_netcon_weights(&mut self, source: u64, target_gid: u64, k: usize, weights: Vec<f64>) -> PyResult<()> {
        self.env.set_netcon_weights(source, target_gid, k, &weights).map_err(engine_err)
    }

    /// Every spike on rank 0 as (gids u64, times f64) byte buffers sorted by (t, gid); `None` elsewhere.
    fn gather_spikes<'py>(&self, py: Python<'py>) -> Option<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let s = self.env.gather_spikes()?;
        let gids: Vec<u64> = s.iter().map(|s| s.gid).collect();
        let t: Vec<f64> = s.iter().map(|s| s.t).collect();
        Some((bytes_u64(py, &gids), bytes_f64(py, &t)))
    }

    fn lfp_labels(&self) -> Vec<String> {
        self.env.lfp_labels()
    }

    #[allow(clippy::type_complexity)]
    fn gather_lfp<'py>(
        &self,
        py: Python<'py>,
        e: usize,
    ) -> PyResult<Option<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)>> {
        let r = self.env.gather_lfp(e).map_err(engine_err)?;
        Ok(r.map(|(t, v)| (bytes_f64(py, &t), bytes_f64(py, &v))))
    }

    fn gather_traces<'py>(&mut self, py: Python<'py>) -> Option<Vec<(String, Bound<'py, PyBytes>)>> {
        let tr = self.env.gather_traces()?;
        Some(tr.into_iter().map(|(l, v)| (l, bytes_f64(py, &v))).collect())
    }

    #[pyo3(signature = (path, t_stop, populations=None, results_id=None))]
    fn write_outputs(
        &self,
        path: PathBuf,
        t_stop: f64,
        populations: Option<Vec<String>>,
        results_id: Option<String>,
    ) -> PyResult<()> {
        self.env
            .write_outputs(&path, populations.as_deref(), results_id.as_deref(), t_stop)
            .map(|_| ())
            .map_err(engine_err)
    }

    fn local_counts(&self) -> [u64; 3] {
        self.env.local_counts()
    }

    fn mechanism_counts(&self) -> Vec<(String, u64)> {
        self.env.mechanism_census().into_iter().map(|c| (c.name, c.instances)).collect()
    }
}

#[pymodule]
fn _miv(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("MivError", m.py().get_type::<MivError>())?;
    m.add("mpi_feature", cfg!(feature = "mpi"))?;
    // The engine's defaults, so that `h.dt`, `h.v_init` and `finitialize()` agree with `miv run`.
    m.add("DEFAULT_DT", miv::config::DEFAULT_DT)?;
    m.add("DEFAULT_V_INIT", miv::config::DEFAULT_V_INIT)?;
    m.add_function(wrap_pyfunction!(rank_size, m)?)?;
    m.add_function(wrap_pyfunction!(mpi_state, m)?)?;
    m.add_function(wrap_pyfunction!(finalize, m)?)?;
    m.add_function(wrap_pyfunction!(abort, m)?)?;
    m.add_function(wrap_pyfunction!(barrier, m)?)?;
    m.add_function(wrap_pyfunction!(init_logging, m)?)?;
    m.add_function(wrap_pyfunction!(yaml_to_json, m)?)?;
    m.add_function(wrap_pyfunction!(build, m)?)?;
    m.add_function(wrap_pyfunction!(launch_job, m)?)?;
    m.add_function(wrap_pyfunction!(measure_distances_of, m)?)?;
    m.add_function(wrap_pyfunction!(run_experiment, m)?)?;
    m.add_function(wrap_pyfunction!(study, m)?)?;
    m.add_class::<Env>()?;
    Ok(())
}
