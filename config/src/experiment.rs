//! The experiment YAML of `miv run` (docs/run-yaml.md): the files a run reads (a network YAML to build, or
//! cells and connections), cell types and synapses inline or by path, the simulation settings, stimulus, LFP
//! electrodes, probes and outputs. [`Experiment::load`] resolves relative paths against the experiment's
//! folder and checks what can be checked without the network; `miv-engine` runs it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::options::{default_dt, default_v_init, DeliveryRuleName, MethodName, SpikeRuleName};
use crate::{from_yaml_file, CellTypes, ConfigError, Synapses};

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

impl Experiment {
    /// Read and check an experiment file; relative paths are resolved against its folder.
    pub fn load(path: &Path) -> Result<Experiment, ConfigError> {
        let mut e: Experiment = from_yaml_file(path)?;
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

impl<T: DeserializeOwned + Clone> InlineOrPath<T> {
    /// The value: the inline one, or the file's (read and parsed).
    pub fn load(&self) -> Result<T, ConfigError> {
        match self {
            InlineOrPath::Inline(t) => Ok(t.clone()),
            InlineOrPath::Path(p) => from_yaml_file(p),
        }
    }
}

/// How gids are spread over ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Partitioning {
    /// gid % size (NEURON's and MiV's default).
    #[default]
    RoundRobin,
    /// Greedy longest-processing-time over compartment counts.
    Weighted,
}

/// The synaptic mechanism behind each label of `synapses.yml` and which of its parameters go into the
/// connection's weight vector (MiV's `Synapse Mechanisms` and `Synapse Parameter Rules`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SynapseRule {
    pub mechanism: String,
    /// Label parameters that are NET_RECEIVE weights, in weight-vector order (e.g. `[weight, g_unit]`).
    #[serde(default = "default_netcon")]
    pub netcon: Vec<String>,
}

fn default_netcon() -> Vec<String> {
    vec!["weight".into()]
}

/// MiV's defaults: AMPA, GABA_A and GABA_B are `LinExp2Syn`, NMDA is `LinExp2SynNMDA`; weights `[weight, g_unit]`.
pub fn default_synapse_rules() -> BTreeMap<String, SynapseRule> {
    let lin = |m: &str| SynapseRule { mechanism: m.into(), netcon: vec!["weight".into(), "g_unit".into()] };
    BTreeMap::from([
        ("AMPA".into(), lin("LinExp2Syn")),
        ("NMDA".into(), lin("LinExp2SynNMDA")),
        ("GABA_A".into(), lin("LinExp2Syn")),
        ("GABA_B".into(), lin("LinExp2Syn")),
    ])
}

/// An electrode, as MiV's `LFP(label, pos, rho, fdst, maxEDist, dt_lfp, seed)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LfpConfig {
    pub label: String,
    /// Electrode position (um).
    pub position: [f64; 3],
    /// Extracellular resistivity (ohm cm).
    #[serde(default = "default_rho")]
    pub rho: f64,
    /// Fraction of distal cells included.
    #[serde(default = "default_fdst")]
    pub fdst: f64,
    /// Cells with somata closer than this (um) are always included.
    #[serde(default = "default_max_e_dist", alias = "maxEDist")]
    pub max_e_dist: f64,
    /// Sampling interval (ms).
    #[serde(default = "default_dt_lfp")]
    pub dt_lfp: f64,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Reproduce what MiV-Simulator's `lfp.py` computes, quirks included (docs/fidelity.md): cells chosen by
    /// NEURON's `Random(seed + population index)` drawn in Python set order, every segment `j` of a section
    /// weighted by the coefficient of segment `j` of the last section (in the template's `all` order) that has
    /// one, each coefficient from the area of the segment at that location of the first section NEURON
    /// created (not the segment's own), from the interpolation point one node before the segment, applied to
    /// the membrane current density (mA/cm2). MiV's result depends on the rank count; this is its result on
    /// one rank.
    #[serde(default)]
    pub miv_compat: bool,
}

fn default_rho() -> f64 {
    333.0
}
fn default_fdst() -> f64 {
    0.1
}
fn default_max_e_dist() -> f64 {
    100.0
}
fn default_dt_lfp() -> f64 {
    0.5
}
fn default_seed() -> u64 {
    1
}

impl LfpConfig {
    /// Check the values; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        let bad = |k: &str, why: &str| Err(format!("lfp '{}': {k} {why}", self.label));
        if !(self.rho > 0.0) {
            return bad("rho", "must be > 0 (ohm cm)");
        }
        if !(self.fdst > 0.0 && self.fdst <= 1.0) {
            return bad("fdst", "must be in (0, 1]");
        }
        if !(self.max_e_dist >= 0.0) {
            return bad("max_e_dist", "must be >= 0 (um)");
        }
        if !(self.dt_lfp > 0.0) {
            return bad("dt_lfp", "must be > 0 (ms)");
        }
        if self.position.iter().any(|x| !x.is_finite()) {
            return bad("position", "must be three finite numbers (um)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::from_yaml_str;

    #[test]
    fn unknown_rules_are_rejected_naming_the_key() {
        let base = "cells: cells.h5\ncell_types: {}\nt_end: 1\n";
        for (line, key, allowed) in [
            ("spike_rule: arbor", "spike_rule", "`interpolated`"),
            ("delivery_rule: interpolated", "delivery_rule", "`arbor`"),
            ("method: euler", "method", "`crank_nicolson`"),
        ] {
            let e = from_yaml_str::<Experiment>(&format!("{base}{line}\n"), Path::new("exp.yaml")).unwrap_err();
            let text = e.to_string();
            assert_eq!(e.key, key, "{text}");
            assert!(text.starts_with("exp.yaml: key `") && text.contains(allowed), "{text}");
        }
        let ok: Experiment =
            from_yaml_str(&format!("{base}spike_rule: interpolated\ndelivery_rule: arbor\n"), Path::new("e")).unwrap();
        assert_eq!((ok.spike_rule, ok.delivery_rule), (SpikeRuleName::Interpolated, DeliveryRuleName::Arbor));
        assert_eq!((ok.dt, ok.v_init), (crate::DEFAULT_DT, crate::DEFAULT_V_INIT));
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
