//! The network YAML of `miv build`: one file that holds, inline or as paths to MiV's separate files, every
//! configuration the construction chain needs. Paths are relative to the network file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::cell_types::validate_cell_types;
use super::geometry::{join, validate_layer_extents};
use super::synapses::validate_synapses;
use super::{
    from_yaml_file, from_yaml_str, from_yaml_value, AxonExtents, CellConstraints, CellDistributions, CellTypes,
    ConfigError, LayerDefinitions, LayerExtents, Origin, PopulationDefinitions, Rotation, Synapses,
};

/// Where a section of the network file came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Inline,
    File(PathBuf),
}

/// How `distribute_synapses` places synapses along a segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SynapseDistribution {
    /// Exponential inter-synapse intervals (a Poisson process along the dendrite); MiV's `poisson`.
    #[default]
    Poisson,
    /// `floor(density · L / nseg)` evenly spaced synapses per segment; MiV's `uniform`.
    Uniform,
}

/// Soma placement tuning (MiV's `network_architecture` fields that our box placement uses).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// Repulsion iterations after the low-discrepancy start.
    #[serde(default = "default_nodeiter")]
    pub nodeiter: u32,
    /// Step of each repulsion iteration, as a fraction of the mean spacing.
    #[serde(default = "default_dispersion_delta")]
    pub dispersion_delta: f64,
}

fn default_nodeiter() -> u32 {
    10
}
fn default_dispersion_delta() -> f64 {
    0.1
}

impl Default for Placement {
    fn default() -> Self {
        Placement { nodeiter: default_nodeiter(), dispersion_delta: default_dispersion_delta() }
    }
}

/// Everything `miv build` needs, resolved and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfig {
    /// The network file itself.
    pub path: PathBuf,
    /// Seed of every random stream of the build.
    pub seed: u64,
    pub population_definitions: PopulationDefinitions,
    pub layer_definitions: LayerDefinitions,
    pub cell_distributions: CellDistributions,
    pub layer_extents: LayerExtents,
    pub cell_constraints: CellConstraints,
    pub rotation: Rotation,
    pub origin: Origin,
    pub placement: Placement,
    pub axon_extents: AxonExtents,
    pub cell_types: CellTypes,
    pub synapses: Synapses,
    /// SWC file per population that gets morphologies, synapses and connections.
    pub morphology: BTreeMap<String, PathBuf>,
    pub distribution: SynapseDistribution,
    /// Build the network as MiV-Simulator d2f14d4 builds it where miv corrects MiV on purpose (synapse
    /// placement: the last-listed layer density for every layer, the carry-over past a segment's end).
    pub miv_compat: bool,
    /// Base of the `Section` node ids in the `Trees` of `cells.h5`: 1 (neuroh5 since 6f26369, the default)
    /// or 0 (neuroh5 4937699, MiV-Simulator's own files).
    pub tree_base: crate::NodeBase,
    /// Where each section came from (`inline` or a file).
    pub sources: BTreeMap<String, Source>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    #[serde(default)]
    seed: u64,
    population_definitions: serde_norway::Value,
    layer_definitions: serde_norway::Value,
    cell_distributions: serde_norway::Value,
    layer_extents: serde_norway::Value,
    #[serde(default)]
    cell_constraints: Option<serde_norway::Value>,
    #[serde(default)]
    rotation: Option<Rotation>,
    #[serde(default)]
    origin: Option<Origin>,
    #[serde(default)]
    placement: Option<Placement>,
    axon_extents: serde_norway::Value,
    cell_types: serde_norway::Value,
    synapses: serde_norway::Value,
    /// `{population: swc path}` or a directory holding `<population>.swc`.
    morphology: serde_norway::Value,
    #[serde(default)]
    distribution: SynapseDistribution,
    #[serde(default)]
    miv_compat: bool,
    #[serde(default)]
    tree_base: crate::NodeBase,
}

/// A section given inline or as a path (relative to the network file) to a YAML file of its own.
fn section<T: DeserializeOwned>(
    value: serde_norway::Value,
    key: &str,
    file: &Path,
    sources: &mut BTreeMap<String, Source>,
) -> Result<T, ConfigError> {
    match value {
        serde_norway::Value::String(p) => {
            let path = relative_to(file, &p);
            sources.insert(key.to_string(), Source::File(path.clone()));
            from_yaml_file(&path)
        }
        v => {
            sources.insert(key.to_string(), Source::Inline);
            from_yaml_value(v, file, key)
        }
    }
}

/// `p` relative to the directory of `file`, made absolute (jobs may run in another working directory).
fn relative_to(file: &Path, p: &str) -> PathBuf {
    let p = PathBuf::from(p);
    let p = if p.is_absolute() { p } else { file.parent().unwrap_or(Path::new(".")).join(p) };
    if p.is_absolute() {
        p
    } else {
        std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
    }
}

impl NetworkConfig {
    /// Read, resolve and validate a network file.
    pub fn load(path: &Path) -> Result<NetworkConfig, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError::new(path, "", format!("cannot read: {e}")))?;
        let raw: RawNetwork = from_yaml_str(&text, path)?;
        let mut sources = BTreeMap::new();
        let s = &mut sources;
        let cell_types: CellTypes = section(raw.cell_types, "cell_types", path, s)?;
        let synapses: Synapses = section(raw.synapses, "synapses", path, s)?;
        let morphology = match raw.morphology {
            serde_norway::Value::String(dir) => {
                let dir = relative_to(path, &dir);
                synapses.keys().map(|p| (p.clone(), dir.join(format!("{p}.swc")))).collect()
            }
            v => {
                let m: BTreeMap<String, String> = from_yaml_value(v, path, "morphology")?;
                m.into_iter().map(|(k, p)| (k, relative_to(path, &p))).collect()
            }
        };
        let net = NetworkConfig {
            path: path.to_path_buf(),
            seed: raw.seed,
            population_definitions: section(raw.population_definitions, "population_definitions", path, s)?,
            layer_definitions: section(raw.layer_definitions, "layer_definitions", path, s)?,
            cell_distributions: section(raw.cell_distributions, "cell_distributions", path, s)?,
            layer_extents: section(raw.layer_extents, "layer_extents", path, s)?,
            cell_constraints: match raw.cell_constraints {
                Some(v) => section(v, "cell_constraints", path, s)?,
                None => CellConstraints::new(),
            },
            rotation: raw.rotation.unwrap_or([0.0; 3]),
            origin: raw.origin.unwrap_or_default(),
            placement: raw.placement.unwrap_or_default(),
            axon_extents: section(raw.axon_extents, "axon_extents", path, s)?,
            cell_types,
            synapses,
            morphology,
            distribution: raw.distribution,
            miv_compat: raw.miv_compat,
            tree_base: raw.tree_base,
            sources,
        };
        net.validate()?;
        Ok(net)
    }

    /// The file a section came from (the network file for inline sections).
    pub fn file_of(&self, key: &str) -> &Path {
        match self.sources.get(key) {
            Some(Source::File(p)) => p,
            _ => &self.path,
        }
    }

    /// Key prefix of a section inside its file (empty when the section has a file of its own).
    fn prefix_of<'a>(&self, key: &'a str) -> &'a str {
        match self.sources.get(key) {
            Some(Source::File(_)) => "",
            _ => key,
        }
    }

    fn err(&self, section: &str, key: &str, message: String) -> ConfigError {
        ConfigError::new(self.file_of(section), join(self.prefix_of(section), key), message)
    }

    /// Populations that get morphologies, synapses and connections: the postsynaptic populations of
    /// `synapses`, in name order.
    pub fn synaptic_populations(&self) -> Vec<String> {
        self.synapses.keys().cloned().collect()
    }

    /// Cross-file checks: every population defined and distributed, layers known, morphology and cell type for
    /// each postsynaptic population, proportions summing to one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_layer_extents(&self.layer_extents, self.file_of("layer_extents"), self.prefix_of("layer_extents"))?;
        for (pop, layers) in &self.cell_distributions {
            if !self.population_definitions.contains_key(pop) {
                return Err(self.err(
                    "cell_distributions",
                    pop,
                    format!("population `{pop}` is not in population_definitions"),
                ));
            }
            for layer in layers.keys() {
                if !self.layer_extents.contains_key(layer) {
                    return Err(self.err(
                        "cell_distributions",
                        &join(pop, layer),
                        format!("layer `{layer}` has no layer_extents entry"),
                    ));
                }
            }
        }
        for pop in self.population_definitions.keys() {
            if !self.cell_distributions.contains_key(pop) {
                return Err(self.err(
                    "population_definitions",
                    pop,
                    format!("population `{pop}` has no cell_distributions entry"),
                ));
            }
        }
        for (pop, layers) in &self.cell_constraints {
            for (layer, [lo, hi]) in layers {
                if !(lo <= hi) {
                    return Err(self.err(
                        "cell_constraints",
                        &join(pop, layer),
                        format!("expected [l_min, l_max] with l_min <= l_max, got [{lo}, {hi}]"),
                    ));
                }
            }
        }
        validate_cell_types(
            &self.cell_types,
            &self.layer_definitions,
            self.file_of("cell_types"),
            self.prefix_of("cell_types"),
        )?;
        let pops: Vec<&str> = self.population_definitions.keys().map(String::as_str).collect();
        validate_synapses(
            &self.synapses,
            &self.layer_definitions,
            &pops,
            self.file_of("synapses"),
            self.prefix_of("synapses"),
        )?;
        for (post, by_pre) in &self.synapses {
            if !self.population_definitions.contains_key(post) {
                return Err(self.err(
                    "synapses",
                    post,
                    format!("population `{post}` is not in population_definitions"),
                ));
            }
            let Some(ct) = self.cell_types.get(post) else {
                return Err(self.err("cell_types", post, format!("postsynaptic population `{post}` has no cell type")));
            };
            if ct.synapses.density.is_empty() {
                return Err(self.err(
                    "cell_types",
                    &join(post, "synapses.density"),
                    "expected synapse densities for a postsynaptic population".into(),
                ));
            }
            if !self.morphology.contains_key(post) {
                return Err(self.err("morphology", post, format!("postsynaptic population `{post}` has no SWC file")));
            }
            for pre in by_pre.keys() {
                if !self.axon_extents.contains_key(pre) {
                    return Err(self.err(
                        "axon_extents",
                        pre,
                        format!("presynaptic population `{pre}` has no axon extent"),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SwcType, SynapseType};

    fn example() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rc-network/network.yaml")
    }

    #[test]
    fn the_rc_example_loads() {
        let n = NetworkConfig::load(&example()).unwrap();
        assert_eq!(n.population_definitions["PYR"], 100);
        assert_eq!(n.cell_distributions["PVBC"].values().sum::<u32>(), 93);
        assert_eq!(n.layer_extents["SR"].min(), [0.0, 0.0, 50.0]);
        assert_eq!(n.synaptic_populations(), ["OLM", "PVBC", "PYR"]);
        assert!(n.morphology["PYR"].ends_with("morphology/PYR.swc"));
        assert_eq!(
            n.cell_types["PVBC"].synapses.density[&SwcType::Soma][&SynapseType::Excitatory]["default"].mean,
            0.40
        );
        assert!(matches!(n.sources["synapses"], Source::File(_)));
        assert_eq!(n.sources["layer_extents"], Source::Inline);
        assert!(!n.miv_compat, "corrected construction by default");
        assert_eq!(n.tree_base, crate::NodeBase::One, "neuroh5 HEAD's tree convention by default");
    }

    #[test]
    fn inline_errors_name_the_network_file_and_key() {
        let dir = std::env::temp_dir().join(format!("miv-netcfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = std::fs::read_to_string(example()).unwrap();
        let ex = example();
        let base = ex.parent().unwrap().display();
        let text = text
            .replace("cell_types.yml", &format!("{base}/cell_types.yml"))
            .replace("synapses: synapses.yml", &format!("synapses: {base}/synapses.yml"))
            .replace("morphology: ../morphology", "morphology: /nowhere");
        let bad = dir.join("bad.yaml");
        std::fs::write(&bad, text.replace("SR: [[0.0, 0.0, 50.0]", "SR: [[0.0, 0.0, 150.0]")).unwrap();
        let e = NetworkConfig::load(&bad).unwrap_err();
        assert_eq!((e.file.as_path(), e.key.as_str()), (bad.as_path(), "layer_extents.SR"), "{e}");
        std::fs::write(&bad, text.replace("PVBC: {SO: 35", "PVBX: {SO: 35")).unwrap();
        let e = NetworkConfig::load(&bad).unwrap_err();
        assert_eq!(e.key, "cell_distributions.PVBX", "{e}");
        std::fs::write(&bad, text.replace("distribution: poisson", "distribution: poisson\ncell_types:\n  P: {template: X, synapses: {density: {apical: {excitatory: {SR: {mean: 1, variance: 0.1, x: 1}}}}}}")
            .replace(&format!("cell_types: {base}/cell_types.yml"), "")).unwrap();
        let e = NetworkConfig::load(&bad).unwrap_err();
        assert_eq!(e.key, "cell_types.P.synapses.density.apical.excitatory.SR", "{e}");
        assert!(e.message.contains("unknown field `x`") && !e.message.contains(" at line "), "{e}");
        std::fs::write(&bad, text.replace("seed: 0", "seed: 0\nsed: 1")).unwrap();
        let e = NetworkConfig::load(&bad).unwrap_err();
        assert!(e.message.contains("sed"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
