//! `miv run EXPERIMENT.yaml`: the imperative flow of MiV's `rc.py` driven by one YAML file (schema in
//! docs/run-yaml.md): load cells and connections, add stimulus and LFP electrodes, initialise, run, and write
//! the results file on root. The same file runs in one process or under `mpirun`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use miv_config::{self as config, CellTypes, ConfigError, Synapses};
use miv_io::atomic::AtomicFile;
use miv_partition::Communicator;
use miv_solvers::Catalogue;
use serde::Deserialize;

use crate::env::{default_synapse_rules, ExecutionEnvironment, Partitioning, SynapseRule};
use crate::error::EngineError;
use crate::lfp::LfpConfig;
use crate::network::{steps_of, ProbeRequest, RunOptions};
use crate::spikes::Spike;
use miv_config::options::{default_dt, default_v_init};
use miv_config::{DeliveryRuleName, MethodName, SpikeRuleName};

/// A YAML value that is either given inline or as a path to a YAML file (relative to the experiment file).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum InlineOrPath<T> {
    Path(PathBuf),
    Inline(T),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// A network YAML (docs/network-yaml.md): `miv run` builds it through the cached construction jobs (a
    /// no-op when the store already has it) and takes `cells` and `connections` from the result.
    #[serde(default)]
    pub network: Option<PathBuf>,
    /// Job store for `network` (default `.miv-store` beside the experiment file).
    #[serde(default)]
    pub store: Option<PathBuf>,
    /// cells.h5 (NeuroH5: H5Types, Trees, Synapse Attributes); required without `network`.
    #[serde(default)]
    pub cells: PathBuf,
    /// connections.h5 (NeuroH5 projections); optional for networks without connections.
    #[serde(default)]
    pub connections: Option<PathBuf>,
    pub cell_types: InlineOrPath<CellTypes>,
    #[serde(default)]
    pub synapses: Option<InlineOrPath<Synapses>>,
    /// Folder with one `<template>.yaml` per template name of cell_types.
    #[serde(default = "default_templates")]
    pub templates: PathBuf,
    /// Folder of NEURON .mod files, compiled at run time (MiV's `mechanisms_path`).
    #[serde(default)]
    pub mechanisms: Option<PathBuf>,
    #[serde(default)]
    pub seed: u64,
    pub t_end: f64,
    #[serde(default = "default_dt")]
    pub dt: f64,
    #[serde(default)]
    pub method: MethodName,
    #[serde(default = "default_v_init")]
    pub v_init: f64,
    /// Temperature (degC); the templates' `celsius` when absent (6.3 if they say nothing).
    #[serde(default)]
    pub celsius: Option<f64>,
    #[serde(default)]
    pub spike_rule: SpikeRuleName,
    #[serde(default)]
    pub delivery_rule: DeliveryRuleName,
    /// Conduction velocity (um/ms) turning `Connections/distance` into delays.
    #[serde(default = "default_velocity")]
    pub velocity: f64,
    /// Floor of connection delays (ms); MiV's `max(distance / velocity, 2 dt)` when absent. A delay below
    /// dt is an error.
    #[serde(default)]
    pub min_delay: Option<f64>,
    /// Longest interval between spike exchanges (ms).
    #[serde(default = "default_max_step")]
    pub max_step: f64,
    /// NEURON's `nrn_netrec_state_adjust`, which MiV-Simulator's `configure_hoc` sets: NET_RECEIVE jumps of
    /// cnexp STATEs applied as their change by t + dt/2 (docs/fidelity.md). Off by default, as in NEURON.
    #[serde(default)]
    pub netrec_state_adjust: bool,
    /// Clip synapse locations into [0.05, 0.95] before placing them (MiV-Simulator since 65b9515, 2024);
    /// `false` places them at their own location as the MiV-Simulator of MiV-Simulator-Cases (d2f14d4) does.
    #[serde(default = "default_true")]
    pub clip_synapse_locations: bool,
    /// Run although the connections file lacks a projection that synapses.yml declares between two
    /// populations of the cells file (an error by default: a damaged file would load as 0 connections).
    #[serde(default)]
    pub allow_missing_projections: bool,
    /// Mechanism and weight rule per synapse label of synapses.yml (MiV's defaults when absent).
    #[serde(default)]
    pub synapse_mechanisms: Option<BTreeMap<String, SynapseRule>>,
    /// Mechanism globals, e.g. `{hh: {usetable: 1}}`.
    #[serde(default)]
    pub globals: BTreeMap<String, BTreeMap<String, f64>>,
    #[serde(default)]
    pub partition: PartitionConfig,
    #[serde(default)]
    pub stimulus: Vec<Stimulus>,
    #[serde(default)]
    pub lfp: Vec<LfpConfig>,
    #[serde(default)]
    pub probes: Vec<ProbeConfig>,
    #[serde(default)]
    pub output: OutputConfig,
}

fn default_templates() -> PathBuf {
    PathBuf::from("templates")
}
fn default_velocity() -> f64 {
    250.0
}
fn default_true() -> bool {
    true
}

fn default_max_step() -> f64 {
    10.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionConfig {
    #[serde(default)]
    pub strategy: Partitioning,
    /// Worker threads per rank (0: all cores of the rank).
    #[serde(default = "one")]
    pub threads: usize,
    /// Cells per cell group (0: automatic).
    #[serde(default)]
    pub cells_per_group: usize,
    /// Reader ranks for the NeuroH5 files (0: every rank reads its own cells).
    #[serde(default)]
    pub io_size: usize,
}

fn one() -> usize {
    1
}

impl Default for PartitionConfig {
    fn default() -> PartitionConfig {
        PartitionConfig { strategy: Partitioning::RoundRobin, threads: 1, cells_per_group: 0, io_size: 0 }
    }
}

/// Input to the network: spike trains for the artificial (VecStim) cells of a `population`, or `events`
/// delivered straight to cells' synapses (NEURON's `NetCon(None, syn).event(t)`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stimulus {
    #[serde(default)]
    pub population: Option<String>,
    /// One list of times shared out as `times[gid::slice_step]` (rc.py's `stimulus[gid::10]`), or given whole
    /// to every cell when `slice_step` is absent.
    #[serde(default)]
    pub times: Option<Vec<f64>>,
    /// A text file of times (one per line, or comma/space separated), relative to the experiment file.
    #[serde(default)]
    pub file: Option<PathBuf>,
    #[serde(default)]
    pub slice_step: Option<usize>,
    /// Trains per gid.
    #[serde(default)]
    pub per_gid: Option<BTreeMap<u64, Vec<f64>>>,
    /// A NeuroH5 cell attribute holding each cell's train (MiV's `spike train` namespace/attribute), read
    /// from `h5` (default: the cells file).
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub attribute: Option<String>,
    #[serde(default)]
    pub h5: Option<PathBuf>,
    #[serde(default)]
    pub events: Option<Vec<DirectEvent>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectEvent {
    pub gid: u64,
    /// Target index of the cell (its point processes in placement order).
    #[serde(default)]
    pub target: usize,
    pub t: f64,
    pub weights: Vec<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    pub gid: u64,
    /// `SECTION(x)`, e.g. `soma(0.5)` or `apical[3](0.2)`.
    pub at: String,
    /// `v` (default) or `i_membrane`.
    #[serde(default = "default_variable")]
    pub variable: String,
    /// Sampling interval (ms), a multiple of dt (the same for all probes).
    #[serde(default)]
    pub dt: Option<f64>,
}

fn default_variable() -> String {
    "v".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Results file (NeuroH5: Spike Events per population, Local Field Potential groups).
    #[serde(default = "default_results")]
    pub path: PathBuf,
    /// Populations whose spikes are written (all when absent).
    #[serde(default)]
    pub spikes: Option<Vec<String>>,
    /// Suffix of the namespaces (`Spike Events <id>`).
    #[serde(default)]
    pub results_id: Option<String>,
    /// Also write all spikes as `gid,t_ms` CSV here.
    #[serde(default)]
    pub spikes_csv: Option<PathBuf>,
    /// Probe traces as CSV (t_ms and one column per probe).
    #[serde(default)]
    pub probes_csv: Option<PathBuf>,
}

impl Default for OutputConfig {
    fn default() -> OutputConfig {
        OutputConfig { path: default_results(), spikes: None, results_id: None, spikes_csv: None, probes_csv: None }
    }
}

fn default_results() -> PathBuf {
    PathBuf::from("results.h5")
}

/// What a run did, for the summary line.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub ranks: usize,
    pub threads: usize,
    pub cells: u64,
    pub compartments: u64,
    pub connections: u64,
    pub spikes: u64,
    pub min_delay: f64,
    pub t_end: f64,
    pub load_s: f64,
    pub init_s: f64,
    pub run_s: f64,
    pub write_s: f64,
    /// Peak resident memory (MiB): the largest rank's and the sum over ranks.
    pub peak_rss_mib_max: f64,
    pub peak_rss_mib_sum: f64,
    /// Resident memory (MiB) at the end of the run, the steady state: the largest rank's and the sum over ranks.
    pub rss_end_mib_max: f64,
    pub rss_end_mib_sum: f64,
    /// Heap bytes of the instantiated network summed over ranks, by what holds them (`Network::memory`).
    pub heap: HeapSummary,
    pub results: String,
}

/// [`Summary::heap`]: bytes over all ranks.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct HeapSummary {
    pub nodes: u64,
    pub density: u64,
    pub ions: u64,
    pub point: u64,
    pub connections: u64,
    pub events: u64,
    pub total: u64,
}

pub use miv_io::memory::{available_memory_bytes, check_memory};

/// This process's peak resident set size in bytes (VmHWM), if the OS tells.
pub fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

impl Experiment {
    /// Read and check an experiment file; relative paths are resolved against its folder.
    pub fn load(path: &Path) -> Result<Experiment, ConfigError> {
        let mut e: Experiment = config::from_yaml_file(path)?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if !e.cells.as_os_str().is_empty() {
            fix(&mut e.cells);
        }
        if let Some(c) = e.connections.as_mut() {
            fix(c);
        }
        if let Some(n) = e.network.as_mut() {
            fix(n);
        }
        let store = e.store.take().unwrap_or_else(|| PathBuf::from(".miv-store"));
        e.store = Some(if store.is_relative() { base.join(store) } else { store });
        fix(&mut e.templates);
        if let Some(m) = e.mechanisms.as_mut() {
            *m = expand_env(m).map_err(|msg| ConfigError::new(path, "mechanisms", msg))?;
            fix(m);
        }
        if let InlineOrPath::Path(p) = &mut e.cell_types {
            fix(p);
        }
        if let Some(InlineOrPath::Path(p)) = e.synapses.as_mut() {
            fix(p);
        }
        for s in &mut e.stimulus {
            if let Some(f) = s.file.as_mut() {
                fix(f);
            }
            if let Some(f) = s.h5.as_mut() {
                fix(f);
            }
        }
        fix(&mut e.output.path);
        if let Some(p) = e.output.spikes_csv.as_mut() {
            fix(p);
        }
        if let Some(p) = e.output.probes_csv.as_mut() {
            fix(p);
        }
        e.validate(path)?;
        Ok(e)
    }

    fn validate(&self, file: &Path) -> Result<(), ConfigError> {
        let bad = |k: &str, m: String| Err(ConfigError::new(file, k, m));
        if !(self.dt > 0.0 && self.dt.is_finite()) {
            return bad("dt", format!("must be a positive number of ms, got {}", self.dt));
        }
        if !(self.t_end >= 0.0 && self.t_end.is_finite()) {
            return bad("t_end", format!("must be >= 0 ms, got {}", self.t_end));
        }
        let steps = self.t_end / self.dt;
        if (steps - steps.round()).abs() > 1e-6 * steps.max(1.0) {
            return bad(
                "t_end",
                format!(
                    "{} ms is not a whole number of time steps (dt = {} ms); the nearest are {} ms and {} ms",
                    self.t_end,
                    self.dt,
                    steps.floor() * self.dt,
                    steps.ceil() * self.dt
                ),
            );
        }
        if !(self.velocity > 0.0 && self.velocity.is_finite()) {
            return bad("velocity", format!("must be a positive conduction velocity (um/ms), got {}", self.velocity));
        }
        if let Some(d) = self.min_delay {
            if !(d >= 0.0 && d.is_finite()) {
                return bad("min_delay", format!("must be a finite delay >= 0 ms, got {d}"));
            }
        }
        if !(self.max_step >= self.dt) {
            return bad("max_step", format!("must be at least dt ({}), got {}", self.dt, self.max_step));
        }
        match (&self.network, self.cells.as_os_str().is_empty()) {
            (None, true) => {
                return bad("cells", "expected the cells file (or `network`, a network YAML to build)".into())
            }
            (Some(_), false) => {
                return bad("network", "give either `network` or `cells`/`connections`, not both".into())
            }
            _ => {}
        }
        if self.network.is_some() && self.connections.is_some() {
            return bad("network", "give either `network` or `cells`/`connections`, not both".into());
        }
        if (self.connections.is_some() || self.network.is_some()) && self.synapses.is_none() {
            return bad("synapses", "connections need synapses (inline or a path to synapses.yml)".into());
        }
        for (i, l) in self.lfp.iter().enumerate() {
            if let Err(m) = l.validate() {
                return bad(&format!("lfp[{i}]"), m);
            }
        }
        for (i, source) in self.stimulus.iter().enumerate() {
            let n =
                [source.times.is_some(), source.file.is_some(), source.per_gid.is_some(), source.namespace.is_some()]
                    .iter()
                    .filter(|x| **x)
                    .count();
            match (&source.events, &source.population) {
                (Some(_), None) if n == 0 && source.slice_step.is_none() => {}
                (Some(_), _) => return bad(&format!("stimulus[{i}]"), "an events entry takes only `events`".into()),
                (None, None) => {
                    return bad(
                        &format!("stimulus[{i}]"),
                        "expected `population` (with a spike train source) or `events`".into(),
                    )
                }
                (None, Some(_)) if n != 1 => {
                    return bad(
                        &format!("stimulus[{i}]"),
                        "give exactly one of times, file, per_gid or namespace (+ attribute)".into(),
                    )
                }
                _ => {}
            }
            if source.namespace.is_some() != source.attribute.is_some() {
                return bad(&format!("stimulus[{i}]"), "namespace and attribute go together".into());
            }
            if source.slice_step == Some(0) {
                return bad(&format!("stimulus[{i}].slice_step"), "must be >= 1".into());
            }
        }
        Ok(())
    }

    /// Every file the run reads that exists (the experiment itself, cells, connections, the network YAML,
    /// cell types, synapses, stimulus files), for the output checks.
    fn inputs(&self, file: &Path) -> Vec<(String, PathBuf)> {
        let mut v = vec![("experiment".to_string(), file.to_path_buf())];
        if !self.cells.as_os_str().is_empty() {
            v.push(("cells".into(), self.cells.clone()));
        }
        if let Some(c) = &self.connections {
            v.push(("connections".into(), c.clone()));
        }
        if let Some(n) = &self.network {
            v.push(("network".into(), n.clone()));
        }
        if let InlineOrPath::Path(p) = &self.cell_types {
            v.push(("cell_types".into(), p.clone()));
        }
        if let Some(InlineOrPath::Path(p)) = &self.synapses {
            v.push(("synapses".into(), p.clone()));
        }
        for (i, s) in self.stimulus.iter().enumerate() {
            if let Some(f) = &s.file {
                v.push((format!("stimulus[{i}].file"), f.clone()));
            }
            if let Some(f) = &s.h5 {
                v.push((format!("stimulus[{i}].h5"), f.clone()));
            }
        }
        v
    }

    /// Check the outputs before any work: each goes into an existing folder, is not a folder itself, and is
    /// none of the run's inputs nor another output (compared as canonical paths, so links and `..` cannot
    /// hide an alias). `file` is the experiment file (for the messages).
    pub fn check_outputs(&self, file: &Path) -> Result<(), ConfigError> {
        let mut outputs = vec![("output.path".to_string(), self.output.path.clone())];
        if let Some(p) = &self.output.spikes_csv {
            outputs.push(("output.spikes_csv".into(), p.clone()));
        }
        if let Some(p) = &self.output.probes_csv {
            outputs.push(("output.probes_csv".into(), p.clone()));
        }
        let mut seen: Vec<(String, PathBuf)> = Vec::new();
        for (key, p) in &self.inputs(file) {
            if let Ok(c) = std::fs::canonicalize(p) {
                seen.push((key.clone(), c));
            }
        }
        for (key, p) in outputs {
            let bad = |m: String| ConfigError::new(file, key.as_str(), format!("{}: {m}", p.display()));
            let name = p.file_name().ok_or_else(|| bad("expected a file name".into()))?;
            let parent = match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let dir = std::fs::canonicalize(&parent)
                .map_err(|e| bad(format!("the folder {} cannot be used: {e}", parent.display())))?;
            if !dir.is_dir() {
                return Err(bad(format!("{} is not a folder", parent.display())));
            }
            let full = dir.join(name);
            if full.is_dir() {
                return Err(bad("is a folder; expected a file name".into()));
            }
            // A symbolic link to an input is the input.
            let full = std::fs::canonicalize(&full).unwrap_or(full);
            if let Some((other, _)) = seen.iter().find(|(_, q)| *q == full) {
                return Err(bad(format!("is also `{other}`; an output must not overwrite an input or another output")));
            }
            let meta = std::fs::metadata(&dir).map_err(|e| bad(format!("{}: {e}", dir.display())))?;
            if meta.permissions().readonly() {
                return Err(bad(format!("the folder {} is read-only", dir.display())));
            }
            seen.push((key.clone(), full));
        }
        Ok(())
    }

    fn run_options(&self) -> RunOptions {
        let mut o = RunOptions::default();
        o.sim.dt = self.dt;
        o.sim.method = self.method.into();
        o.sim.spike_rule = self.spike_rule.into();
        o.sim.delivery_rule = self.delivery_rule.into();
        o.sim.globals =
            self.globals.iter().flat_map(|(m, g)| g.iter().map(move |(k, v)| (m.clone(), k.clone(), *v))).collect();
        o.max_step = self.max_step;
        o.threads = if self.partition.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.partition.threads
        };
        o.cells_per_group = self.partition.cells_per_group;
        o.seed = self.seed;
        o
    }
}

/// `${NAME}` in a path replaced by the environment variable NAME (so an experiment can name a folder each user
/// provides, e.g. MiV-Simulator-Cases' mechanisms, which cannot be shipped with it).
fn expand_env(p: &Path) -> Result<PathBuf, String> {
    let text = p.to_str().ok_or_else(|| format!("{}: not valid UTF-8", p.display()))?;
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').ok_or_else(|| format!("{text:?}: unclosed ${{"))? + start;
        let name = &rest[start + 2..end];
        let value = std::env::var(name).map_err(|_| format!("{text:?}: the environment variable {name} is not set"))?;
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(PathBuf::from(out))
}

fn load_yaml<T: serde::de::DeserializeOwned + Clone>(v: &InlineOrPath<T>) -> Result<T, ConfigError> {
    match v {
        InlineOrPath::Inline(t) => Ok(t.clone()),
        InlineOrPath::Path(p) => config::from_yaml_file(p),
    }
}

/// Read a text file of spike times.
fn read_times(path: &Path) -> Result<Vec<f64>, EngineError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| EngineError::Network(format!("{}: cannot read: {e}", path.display())))?;
    let mut out = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        for tok in line.split(|c: char| c == ',' || c.is_whitespace()).filter(|t| !t.is_empty()) {
            out.push(tok.parse::<f64>().map_err(|_| {
                EngineError::Network(format!("{}:{}: {tok:?} is not a spike time (ms)", path.display(), ln + 1))
            })?);
        }
    }
    Ok(out)
}

/// Run an experiment (collective). Root writes the results and returns the summary and all spikes.
pub fn run(
    comm: &dyn Communicator,
    e: &Experiment,
    catalogue: Catalogue,
) -> Result<(Summary, Option<Vec<Spike>>), EngineError> {
    let t0 = std::time::Instant::now();
    let threads = e.run_options().threads;
    let mut env = environment(comm, e, catalogue)?;
    let load_s = t0.elapsed().as_secs_f64();

    let t1 = std::time::Instant::now();
    env.finitialize(e.v_init)?;
    let init_s = t1.elapsed().as_secs_f64();
    progress(comm, format!("initialised; min delay {} ms; running to {} ms", env.min_delay(), e.t_end));
    let t2 = std::time::Instant::now();
    // Run in chunks so long runs show progress on rank 0.
    let chunk = (e.t_end / 10.0).max(env.min_delay().min(e.max_step));
    let mut t = 0.0;
    while t < e.t_end - 1e-9 {
        t = (t + chunk).min(e.t_end);
        env.psolve(t)?;
        progress(comm, format!("t = {t:.3} ms of {} ({:.1} s)", e.t_end, t2.elapsed().as_secs_f64()));
    }
    let run_s = t2.elapsed().as_secs_f64();

    let t3 = std::time::Instant::now();
    let spikes =
        env.write_outputs(&e.output.path, e.output.spikes.as_deref(), e.output.results_id.as_deref(), e.t_end)?;
    write_csvs(&mut env, e, spikes.as_deref())?;
    let write_s = t3.elapsed().as_secs_f64();

    let mut counts = env.local_counts();
    comm.allreduce_sum_u64(&mut counts);
    let rss = peak_rss_bytes().unwrap_or(0) as f64 / (1024.0 * 1024.0);
    let rss_max = comm.allreduce_max(rss);
    let rss_sum = comm.allreduce_sum(rss);
    let rss_end = rss_bytes("VmRSS:") as f64 / (1024.0 * 1024.0);
    let m = env.memory();
    let mut heap = [m.nodes, m.density, m.ions, m.point, m.connections, m.events].map(|x| x as u64);
    comm.allreduce_sum_u64(&mut heap);
    let [nodes, density, ions, point, connections, events] = heap;
    let heap = HeapSummary { nodes, density, ions, point, connections, events, total: heap.iter().sum() };
    tracing::debug!("heap bytes (all ranks): {heap:?}");
    let summary = Summary {
        ranks: comm.size(),
        threads,
        cells: counts[0],
        compartments: counts[1],
        connections: counts[2],
        spikes: spikes.as_ref().map_or(0, |s| s.len() as u64),
        min_delay: env.min_delay(),
        t_end: e.t_end,
        load_s,
        init_s,
        run_s,
        write_s,
        peak_rss_mib_max: rss_max,
        peak_rss_mib_sum: rss_sum,
        rss_end_mib_max: comm.allreduce_max(rss_end),
        rss_end_mib_sum: comm.allreduce_sum(rss_end),
        heap,
        results: e.output.path.display().to_string(),
    };
    Ok((summary, spikes))
}

/// The execution environment of an experiment, ready for `finitialize`: cells, connections, its stimulus, LFP
/// electrodes and probes (collective). The imperative API (docs/api.md) starts here.
pub fn environment<'c>(
    comm: &'c dyn Communicator,
    e: &Experiment,
    catalogue: Catalogue,
) -> Result<ExecutionEnvironment<'c>, EngineError> {
    let cell_types = comm.agreed(load_yaml(&e.cell_types))?;
    let synapses = comm.agreed(match &e.synapses {
        Some(s) => load_yaml(s),
        None => Ok(Synapses::new()),
    })?;
    let mut env = ExecutionEnvironment::new(comm, catalogue, e.run_options());
    if let Some(c) = e.celsius {
        env.set_celsius(c);
    }
    progress(comm, format!("loading cells from {}", e.cells.display()));
    env.load_cells(&e.cells, &cell_types, &e.templates, e.partition.strategy, e.partition.io_size)?;
    if let Some(conns) = &e.connections {
        progress(comm, format!("loading connections from {}", conns.display()));
        let rules = e.synapse_mechanisms.clone().unwrap_or_else(default_synapse_rules);
        env.clip_synapse_locations = e.clip_synapse_locations;
        env.allow_missing_projections = e.allow_missing_projections;
        env.load_connections(
            conns,
            &synapses,
            &rules,
            e.velocity,
            e.min_delay.unwrap_or(2.0 * e.dt),
            e.partition.io_size,
        )?;
        progress(comm, "connections loaded".to_string());
    }
    apply_stimulus(&mut env, e)?;
    let mut r = Ok(());
    for l in &e.lfp {
        r = r.and(env.add_lfp(l.clone()).map(|_| ()));
    }
    comm.agreed(r)?;
    let r = add_probes(&mut env, e);
    comm.agreed(r)?;
    Ok(env)
}

fn progress(comm: &dyn Communicator, msg: String) {
    if comm.rank() == 0 {
        tracing::info!("{msg}");
    }
    tracing::debug!(
        "resident memory {:.1} MiB (peak {:.1} MiB)",
        rss_bytes("VmRSS:") as f64 / 1048576.0,
        rss_bytes("VmHWM:") as f64 / 1048576.0
    );
}

fn rss_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

/// Spike trains and direct events (collective: an entry that fails on any rank stops every rank).
fn apply_stimulus(env: &mut ExecutionEnvironment, e: &Experiment) -> Result<(), EngineError> {
    let comm = env.comm();
    for (i, source) in e.stimulus.iter().enumerate() {
        if let Some(events) = &source.events {
            // Checked on every rank (each event is applied only where its cell lives).
            for (j, ev) in events.iter().enumerate() {
                let key = format!("stimulus[{i}].events[{j}]");
                let known = env.populations().is_some_and(|p| p.iter().any(|p| p.contains(ev.gid)));
                let problem = if !known {
                    Some(format!("gid {} is not a cell of {}", ev.gid, e.cells.display()))
                } else if !(ev.t.is_finite() && ev.t >= 0.0) {
                    Some(format!("t = {} ms; expected a finite time >= 0", ev.t))
                } else {
                    ev.weights.iter().find(|w| !w.is_finite()).map(|w| format!("weight {w}; expected finite weights"))
                };
                if let Some(m) = problem {
                    return Ok(comm.agreed(Err(format!("{key}: {m}")))?);
                }
            }
            let mut r = Ok(());
            for ev in events {
                if env.has_cell(ev.gid) {
                    r = r.and(env.add_event(ev.gid, ev.target, ev.t, ev.weights.clone()));
                }
            }
            comm.agreed(r.map_err(|err| format!("stimulus[{i}]: {err}")))?;
            continue;
        }
        let population = source.population.as_deref().expect("validated");
        let known = env.populations().and_then(|p| p.get(population)).is_some();
        if !known {
            return Ok(comm.agreed(Err(format!(
                "stimulus[{i}].population: {population} is not a population of {}",
                e.cells.display()
            )))?);
        }
        let gids: Vec<u64> = env.artificial_cells(population).to_vec();
        if let Some(map) = &source.per_gid {
            let range = env.populations().and_then(|p| p.get(population)).map(|p| p.range());
            if let Some(g) = map.keys().find(|g| !range.as_ref().is_some_and(|r| r.contains(g))) {
                return Ok(comm.agreed(Err(format!(
                    "stimulus[{i}].per_gid: gid {g} is not a cell of population {population} in {}",
                    e.cells.display()
                )))?);
            }
        }
        let shared = match (&source.times, &source.file) {
            (Some(t), _) => Ok(Some(t.clone())),
            (None, Some(f)) => read_times(f).map(Some),
            _ => Ok(None),
        };
        let shared = comm.agreed(shared)?;
        let from_h5 = match (&source.namespace, &source.attribute) {
            (Some(ns), Some(attr)) => {
                let path = source.h5.clone().unwrap_or_else(|| e.cells.clone());
                let f = comm.agreed(miv_io::NeuroH5File::open(&path, comm))?;
                Some(comm.agreed(f.read_cell_attributes(
                    population,
                    ns,
                    &miv_io::Selection::Gids(&gids),
                    Some(&[attr.as_str()]),
                ))?)
            }
            _ => None,
        };
        let mut r = Ok(());
        for &g in &gids {
            let mut train: Vec<f64> = if let Some(times) = &shared {
                match source.slice_step {
                    Some(k) => times.iter().skip(g as usize).step_by(k).copied().collect(),
                    None => times.clone(),
                }
            } else if let Some(map) = &source.per_gid {
                map.get(&g).cloned().unwrap_or_default()
            } else if let Some(a) = &from_h5 {
                let attr = source.attribute.as_deref().unwrap_or("");
                a.get::<f32>(attr, g).map(|v| v.iter().map(|&x| x as f64).collect()).unwrap_or_default()
            } else {
                Vec::new()
            };
            train.sort_by(f64::total_cmp);
            r = r.and(env.play(g, &train));
        }
        comm.agreed(r.map_err(|err| format!("stimulus[{i}]: {err}")))?;
    }
    Ok(())
}

fn add_probes(env: &mut ExecutionEnvironment, e: &Experiment) -> Result<(), EngineError> {
    let dt = e.probes.iter().find_map(|p| p.dt).unwrap_or(e.dt);
    let every = steps_of(dt, e.dt)
        .ok_or_else(|| EngineError::Network(format!("probes: dt {dt} is not a multiple of the time step {}", e.dt)))?;
    for (i, p) in e.probes.iter().enumerate() {
        if let Some(d) = p.dt {
            if (d - dt).abs() > 1e-12 {
                return Err(EngineError::Network(format!("probes[{i}].dt: all probes share one interval ({dt} ms)")));
            }
        }
        if !env.has_cell(p.gid) {
            continue;
        }
        let spec = crate::model::probe_spec(env.cell(p.gid).expect("local"), &p.at, &p.variable)
            .map_err(|m| EngineError::Network(format!("probes[{i}]: {m}")))?;
        env.add_probe(ProbeRequest { gid: p.gid, spec, label: probe_label(p) }, every)?;
    }
    Ok(())
}

/// Optional CSV outputs: all spikes (root) and probe traces (gathered on root).
fn write_csvs(env: &mut ExecutionEnvironment, e: &Experiment, spikes: Option<&[Spike]>) -> Result<(), EngineError> {
    let comm = env.comm();
    let mut res: Result<(), String> = Ok(());
    if let (Some(path), Some(spikes)) = (&e.output.spikes_csv, spikes) {
        res = write_csv(path, ["gid", "t_ms"], spikes.iter().map(|s| vec![s.gid.to_string(), s.t.to_string()]));
    }
    comm.agree(res)?;
    if let Some(path) = &e.output.probes_csv {
        // Each trace as (its probe's index in the experiment file, its length) and its values.
        let labels: Vec<String> = e.probes.iter().map(probe_label).collect();
        let traces = env.traces();
        let mut heads: Vec<u64> = Vec::with_capacity(2 * traces.len());
        let mut values: Vec<f64> = Vec::new();
        for t in &traces {
            let index = labels.iter().position(|l| *l == t.label).expect("a trace of an experiment probe");
            heads.extend([index as u64, t.values.len() as u64]);
            values.extend_from_slice(&t.values);
        }
        let heads = comm.gatherv(0, &heads);
        let values = comm.gatherv(0, &values);
        let mut res: Result<(), String> = Ok(());
        if let (Some((heads, _)), Some((values, _))) = (heads, values) {
            let mut cols: Vec<(usize, &[f64])> = Vec::with_capacity(heads.len() / 2);
            let mut start = 0;
            for h in heads.chunks_exact(2) {
                let n = h[1] as usize;
                cols.push((h[0] as usize, &values[start..start + n]));
                start += n;
            }
            // Probe order of the experiment file (gather order among equal labels).
            cols.sort_by_key(|c| c.0);
            let n = cols.iter().map(|c| c.1.len()).max().unwrap_or(0);
            let dt = e.probes.iter().find_map(|p| p.dt).unwrap_or(e.dt);
            let header = std::iter::once("t_ms").chain(cols.iter().map(|c| labels[c.0].as_str()));
            let rows = (0..n).map(|k| {
                std::iter::once((k as f64 * dt).to_string())
                    .chain(cols.iter().map(|c| c.1.get(k).map_or(String::new(), f64::to_string)))
                    .collect::<Vec<_>>()
            });
            res = write_csv(path, header, rows);
        }
        comm.agree(res)?;
    }
    Ok(())
}

/// A probe's column name: `VARIABLE@GID:AT`.
fn probe_label(p: &ProbeConfig) -> String {
    format!("{}@{}:{}", p.variable, p.gid, p.at)
}

/// Write a CSV file atomically (numbers as Rust prints them: `0.5`, `-65`, `1e-7`).
fn write_csv<H, R>(path: &Path, header: H, rows: impl Iterator<Item = R>) -> Result<(), String>
where
    H: IntoIterator,
    H::Item: AsRef<[u8]>,
    R: IntoIterator,
    R::Item: AsRef<[u8]>,
{
    let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let file = AtomicFile::create(path).map_err(|e| fail(&e))?;
    let mut w = csv::Writer::from_writer(file);
    w.write_record(header).map_err(|e| fail(&e))?;
    for r in rows {
        w.write_record(r).map_err(|e| fail(&e))?;
    }
    let file = w.into_inner().map_err(|e| fail(&e.error()))?;
    file.commit().map(|_| ()).map_err(|e| fail(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use miv_solvers::{DeliveryRule, SpikeRule};

    #[test]
    fn unknown_rules_are_rejected_naming_the_key() {
        let base = "cells: cells.h5\ncell_types: {}\nt_end: 1\n";
        for (line, key, allowed) in [
            ("spike_rule: arbor", "spike_rule", "`interpolated`"),
            ("delivery_rule: interpolated", "delivery_rule", "`arbor`"),
            ("method: euler", "method", "`crank_nicolson`"),
        ] {
            let e = config::from_yaml_str::<Experiment>(&format!("{base}{line}\n"), Path::new("exp.yaml")).unwrap_err();
            let text = e.to_string();
            assert_eq!(e.key, key, "{text}");
            assert!(text.starts_with("exp.yaml: key `") && text.contains(allowed), "{text}");
        }
        let ok: Experiment =
            config::from_yaml_str(&format!("{base}spike_rule: interpolated\ndelivery_rule: arbor\n"), Path::new("e"))
                .unwrap();
        let o = ok.run_options();
        assert_eq!((o.sim.spike_rule, o.sim.delivery_rule), (SpikeRule::Interpolated, DeliveryRule::Floor));
        assert_eq!((ok.dt, ok.v_init), (miv_config::DEFAULT_DT, miv_config::DEFAULT_V_INIT));
    }

    #[test]
    fn environment_variables_in_paths() {
        std::env::set_var("MIV_TEST_EXPAND_ENV_DIR", "/opt/cases");
        assert_eq!(
            expand_env(Path::new("${MIV_TEST_EXPAND_ENV_DIR}/mechanisms")).unwrap(),
            PathBuf::from("/opt/cases/mechanisms")
        );
        assert_eq!(expand_env(Path::new("plain/dir")).unwrap(), PathBuf::from("plain/dir"));
        let e = expand_env(Path::new("${MIV_TEST_EXPAND_ENV_UNSET}")).unwrap_err();
        assert!(e.contains("MIV_TEST_EXPAND_ENV_UNSET is not set"), "{e}");
        assert!(expand_env(Path::new("${OPEN")).unwrap_err().contains("unclosed"));
    }
}
