//! miv-config: every YAML file a miv user writes, typed, with its defaults and one loader.
//!
//! The construction jobs (`miv-jobs`) and the runtime (`miv-engine`) read the same files MiV reads
//! (`cell_distributions.yml`, `layer_extents.yml`, `axon_extents.yml`, `cell_types.yml`, `synapses.yml`, the
//! definitions of population and layer indices) and miv's own (the network YAML of `miv build`, the experiment
//! of `miv run`, cell models and templates, studies). Every file is parsed by [`from_yaml_str`] /
//! [`from_yaml_file`], so every error names the file, the key path of the bad value and what was expected
//! ([`ConfigError`]); unknown keys are errors. Maps whose order changes results (the synapse density tables are
//! walked in file order, as MiV walks Python dicts) keep the file's order. This crate depends on no other miv
//! crate; the defaults in [`options`] are the ones the solvers use too.
//!
//! | module | file | main items |
//! |---|---|---|
//! | [`definitions`] | SWC section types, synapse types, population and layer index tables, `tree_base` | [`SwcType`], [`SynapseType`], [`NodeBase`] |
//! | [`geometry`] | cell distributions, layer extents, cell constraints, axon extents, rotation, origin | [`LayerExtents`], [`Origin`] |
//! | [`cell_types`] | `cell_types.yml` (template, mechanism, synapse densities, discretisation) | [`CellTypes`], [`Discretization`] |
//! | [`synapses`] | `synapses.yml` (projections, proportions, synaptic mechanisms) | [`Synapses`], [`Projection`] |
//! | [`network`] | the network YAML of `miv build`, which holds the others inline or by path | [`NetworkConfig`] |
//! | [`experiment`] | the experiment YAML of `miv run` (docs/run-yaml.md), LFP electrodes, synapse rules | [`Experiment`], [`LfpConfig`], [`Partitioning`], [`SynapseRule`] |
//! | [`model`] | cell models (`miv cell`, docs/cell-yaml.md) and templates (docs/templates.md) | [`model::ModelYaml`], [`model::TemplateYaml`] |
//! | [`study`] | the study YAML of `miv study` (docs/api.md) | [`Study`] |
//! | [`options`] | method and rule names, the defaults (dt, v_init, celsius, Ra, cm) | [`DEFAULT_DT`], [`MethodName`] |

pub mod cell_types;
pub mod definitions;
pub mod experiment;
pub mod geometry;
pub mod model;
pub mod network;
pub mod options;
pub mod study;
pub mod synapses;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

pub use cell_types::{
    validate_cell_types, CellSynapses, CellType, CellTypes, Density, Discretization, SegmentRule, SpikeTrainSource,
    SynapseDensities,
};
pub use definitions::{LayerDefinitions, NodeBase, PopulationDefinitions, SwcType, SynapseType};
pub use experiment::{
    default_synapse_rules, DirectEvent, Experiment, InlineOrPath, LfpConfig, OutputConfig, PartitionConfig,
    Partitioning, ProbeConfig, Stimulus, SynapseRule,
};
pub use geometry::{
    total_extent, validate_layer_extents, AxonExtent, AxonExtents, CellConstraints, CellDistributions, LayerExtent,
    LayerExtents, Origin, OriginValue, Rotation,
};
pub use network::{NetworkConfig, Placement, Source, SynapseDistribution};
pub use options::{
    DeliveryRuleName, MethodName, SpikeRuleName, DEFAULT_CELSIUS, DEFAULT_CM, DEFAULT_DT, DEFAULT_FREQUENCY,
    DEFAULT_RA, DEFAULT_V_INIT,
};
pub use study::Study;
pub use synapses::{validate_synapses, MechanismParams, MechanismSite, Projection, Synapses};

/// A configuration value that could not be read or is invalid: which file, which key path inside it, and what
/// was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {}{message}", .file.display(), if .key.is_empty() { String::new() } else { format!("key `{}`: ", .key) })]
pub struct ConfigError {
    pub file: PathBuf,
    /// Dotted key path inside the file (`PYR.synapses.density.apical`), empty for the whole document.
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(file: impl Into<PathBuf>, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError { file: file.into(), key: key.into(), message: message.into() }
    }

    /// The same error with `prefix.` put in front of its key path (for a value nested in a bigger document).
    pub fn nested(mut self, prefix: &str) -> ConfigError {
        if !prefix.is_empty() {
            self.key = if self.key.is_empty() { prefix.to_string() } else { format!("{prefix}.{}", self.key) };
        }
        self
    }
}

/// Parse YAML text into `T`; `origin` names the source in errors.
pub fn from_yaml_str<T: DeserializeOwned>(text: &str, origin: &Path) -> Result<T, ConfigError> {
    let de = serde_norway::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = key_path(e.path());
        let (key, message) = prefer_yaml_path(key, e.into_inner().to_string());
        ConfigError::new(origin, key, message)
    })
}

/// Read and parse a YAML file into `T`.
pub fn from_yaml_file<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::new(path, "", format!("cannot read: {e}")))?;
    from_yaml_str(&text, path)
}

/// Convert an already parsed YAML value into `T` (used for sections of a bigger document).
pub fn from_yaml_value<T: DeserializeOwned>(
    value: serde_norway::Value,
    origin: &Path,
    key: &str,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value.clone()).map_err(|e| {
        let inner = key_path(e.path());
        let message = e.into_inner().to_string();
        if !inner.contains('?') {
            return ConfigError::new(origin, inner, message).nested(key);
        }
        // Enum-keyed maps show as `?`: parse the value again as text, whose errors carry serde_norway's key path
        // (its line numbers would refer to that text, so they are dropped).
        let text = serde_norway::to_string(&value).unwrap_or_default();
        match from_yaml_str::<T>(&text, origin) {
            Err(mut again) => {
                if let Some(i) = again.message.find(" at line ") {
                    again.message.truncate(i);
                }
                again.nested(key)
            }
            Ok(_) => ConfigError::new(origin, inner, message).nested(key),
        }
    })
}

/// A serde path as a dotted key; a map key that failed to parse shows as `?` and is dropped (the message names it).
fn key_path(p: &serde_path_to_error::Path) -> String {
    let s = p.to_string();
    let s = s.trim_end_matches(".?").trim_end_matches('?');
    if s == "." {
        String::new()
    } else {
        s.to_string()
    }
}

/// serde_norway prefixes its messages with the key path it knows (`PYR.synapses.density.apical: ...`), which
/// names enum-keyed maps that the generic path shows as `?`; use it when it is there.
fn prefer_yaml_path(key: String, message: String) -> (String, String) {
    if let Some((path, rest)) = message.split_once(": ") {
        if !path.is_empty()
            && !path.contains(' ')
            && (key.contains('?') || key.is_empty() || path.starts_with(key.as_str()))
        {
            return (path.to_string(), rest.to_string());
        }
    }
    (key, message)
}
