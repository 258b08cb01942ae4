//! `cell_types.yml`: per population the cell template, its mechanism parameters and the synapse densities
//! that `distribute_synapses` places, plus the discretisation rule that decides the segments synapses are
//! drawn on.

use std::collections::BTreeMap;
use std::path::Path;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::options::{default_cm, default_frequency, default_ra, DEFAULT_CM, DEFAULT_FREQUENCY, DEFAULT_RA};
use crate::{definitions::LayerDefinitions, geometry::join, ConfigError, SwcType, SynapseType};

/// `{population: CellType}`.
pub type CellTypes = BTreeMap<String, CellType>;

/// `{swc type: {synapse type: {layer name | "default": {mean, variance}}}}`, in file order: MiV draws
/// densities walking these tables in order, so the order is part of the configuration.
pub type SynapseDensities = IndexMap<SwcType, IndexMap<SynapseType, IndexMap<String, Density>>>;

/// One population's cell type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellType {
    /// hoc template name (e.g. `PoolosPyramidalCell`) or `VecStim` for artificial input cells.
    pub template: String,
    /// Mechanism parameters: an inline mapping (often `{}`) or a path to a YAML file. Kept as YAML here; the
    /// engine interprets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mechanism: Option<serde_norway::Value>,
    #[serde(default)]
    pub synapses: CellSynapses,
    /// Input cells: where their spike trains are stored.
    #[serde(default, rename = "spike train", skip_serializing_if = "Option::is_none")]
    pub spike_train: Option<SpikeTrainSource>,
    /// How sections are cut into segments (miv extension; NEURON's default of one segment per section when
    /// absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discretization: Option<Discretization>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellSynapses {
    #[serde(default)]
    pub density: SynapseDensities,
    /// One point process per synapse instead of one per (section, segment, mechanism).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique: Option<bool>,
    /// Synaptic weight rules (namespaces + expression); interpreted by the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<serde_norway::Value>,
}

/// Synapses per µm: drawn per segment from a normal with this mean and standard deviation (MiV calls the
/// standard deviation "variance" and redraws until the value is positive).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Density {
    pub mean: f64,
    pub variance: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpikeTrainSource {
    pub namespace: String,
    pub attribute: String,
}

/// Segments per section: a fixed `nseg`, or NEURON's d_lambda rule
/// `nseg = 2·int((L / (d_lambda·λ_f) + 0.9) / 2) + 1` with λ_f the AC length constant at `frequency` Hz for
/// axial resistivity `Ra` (Ω·cm) and membrane capacitance `cm` (µF/cm²).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Discretization {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nseg: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d_lambda: Option<f64>,
    #[serde(default = "default_frequency")]
    pub frequency: f64,
    #[serde(default = "default_ra", rename = "Ra")]
    pub ra: f64,
    #[serde(default = "default_cm")]
    pub cm: f64,
}

/// The discretisation rule, resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SegmentRule {
    Fixed(u32),
    DLambda { d_lambda: f64, frequency: f64, ra: f64, cm: f64 },
}

impl Discretization {
    pub fn fixed(nseg: u32) -> Discretization {
        Discretization {
            nseg: Some(nseg),
            d_lambda: None,
            frequency: DEFAULT_FREQUENCY,
            ra: DEFAULT_RA,
            cm: DEFAULT_CM,
        }
    }

    pub fn d_lambda(d_lambda: f64) -> Discretization {
        Discretization {
            nseg: None,
            d_lambda: Some(d_lambda),
            frequency: DEFAULT_FREQUENCY,
            ra: DEFAULT_RA,
            cm: DEFAULT_CM,
        }
    }

    pub fn rule(&self) -> SegmentRule {
        match (self.nseg, self.d_lambda) {
            (Some(n), _) => SegmentRule::Fixed(n),
            (None, Some(d)) => {
                SegmentRule::DLambda { d_lambda: d, frequency: self.frequency, ra: self.ra, cm: self.cm }
            }
            (None, None) => SegmentRule::Fixed(1),
        }
    }

    fn validate(&self, file: &Path, key: &str) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::new(file, key, m.to_string()));
        match (self.nseg, self.d_lambda) {
            (Some(_), Some(_)) => bad("give either `nseg` or `d_lambda`, not both"),
            (None, None) => bad("expected `nseg: <odd count>` or `d_lambda: <fraction>`"),
            (Some(0), _) => bad("`nseg` must be at least 1"),
            (None, Some(d)) if !(d > 0.0) => bad("`d_lambda` must be positive"),
            _ if !(self.frequency > 0.0 && self.ra > 0.0 && self.cm > 0.0) => {
                bad("`frequency`, `Ra` and `cm` must be positive")
            }
            _ => Ok(()),
        }
    }
}

impl CellType {
    /// The discretisation rule (one segment per section when none is configured).
    pub fn segment_rule(&self) -> SegmentRule {
        self.discretization.map(|d| d.rule()).unwrap_or(SegmentRule::Fixed(1))
    }
}

/// Check densities (finite mean, non-negative deviation, known layer names) and discretisation rules.
pub fn validate_cell_types(
    types: &CellTypes,
    layers: &LayerDefinitions,
    file: &Path,
    key: &str,
) -> Result<(), ConfigError> {
    for (pop, ct) in types {
        let pkey = join(key, pop);
        if let Some(d) = &ct.discretization {
            d.validate(file, &join(&pkey, "discretization"))?;
        }
        for (swc, by_type) in &ct.synapses.density {
            for (syn, by_layer) in by_type {
                for (layer, d) in by_layer {
                    let k = format!("{pkey}.synapses.density.{}.{}.{layer}", swc.name(), syn.name());
                    if layer != "default" && !layers.is_empty() && !layers.contains_key(layer) {
                        let known: Vec<&str> = layers.keys().map(String::as_str).collect();
                        return Err(ConfigError::new(
                            file,
                            k,
                            format!("unknown layer `{layer}`; expected `default` or one of {}", known.join(", ")),
                        ));
                    }
                    if !d.mean.is_finite() || !(d.variance >= 0.0) || !d.variance.is_finite() {
                        return Err(ConfigError::new(file, k, "expected a finite mean and a non-negative variance"));
                    }
                    if d.mean <= 0.0 && d.variance == 0.0 {
                        return Err(ConfigError::new(
                            file,
                            k,
                            "mean <= 0 with variance 0 never gives a positive density",
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::from_yaml_str;

    const PYR: &str = r#"
PYR:
  template: PoolosPyramidalCell
  mechanism: {}
  synapses:
    density:
      apical:
        excitatory:
          SLM: {mean: 0.90, variance: 0.1}
          SR: {mean: 3.52, variance: 0.1}
      soma:
        inhibitory:
          default: {mean: 0.20, variance: 0.1}
      ais:
        inhibitory:
          default: {mean: 0.68, variance: 0.01}
STIM:
  template: VecStim
  mechanism: {}
  synapses: {}
"#;

    #[test]
    fn densities_keep_file_order() {
        let t: CellTypes = from_yaml_str(PYR, Path::new("cell_types.yml")).unwrap();
        let d = &t["PYR"].synapses.density;
        assert_eq!(d.keys().copied().collect::<Vec<_>>(), vec![SwcType::Apical, SwcType::Soma, SwcType::Ais]);
        let layers: Vec<&String> = d[&SwcType::Apical][&SynapseType::Excitatory].keys().collect();
        assert_eq!(layers, ["SLM", "SR"]);
        assert_eq!(d[&SwcType::Ais][&SynapseType::Inhibitory]["default"].mean, 0.68);
        assert!(t["STIM"].synapses.density.is_empty());
        assert_eq!(t["PYR"].segment_rule(), SegmentRule::Fixed(1));
        let layers: LayerDefinitions =
            [("SO", 5), ("SP", 6), ("SR", 8), ("SLM", 9)].map(|(k, v)| (k.to_string(), v)).into();
        validate_cell_types(&t, &layers, Path::new("cell_types.yml"), "").unwrap();
    }

    #[test]
    fn errors_name_file_and_key() {
        let e = from_yaml_str::<CellTypes>("PYR: {template: X, synapses: {density: {apicl: {}}}}", Path::new("ct.yml"))
            .unwrap_err();
        assert_eq!(e.key, "PYR.synapses.density");
        assert!(e.message.contains("apicl"), "{e}");
        assert!(e.to_string().starts_with("ct.yml: key `PYR.synapses.density`"), "{e}");
        let t: CellTypes = from_yaml_str(
            "P: {template: X, synapses: {density: {basal: {excitatory: {SX: {mean: 1, variance: 0.1}}}}}}",
            Path::new("ct.yml"),
        )
        .unwrap();
        let layers: LayerDefinitions = [("SO".to_string(), 5)].into();
        let e = validate_cell_types(&t, &layers, Path::new("ct.yml"), "cell_types").unwrap_err();
        assert_eq!(e.key, "cell_types.P.synapses.density.basal.excitatory.SX");
    }

    #[test]
    fn discretization_rules() {
        let t: CellTypes =
            from_yaml_str("P: {template: X, discretization: {d_lambda: 0.1}}", Path::new("c.yml")).unwrap();
        assert_eq!(t["P"].segment_rule(), SegmentRule::DLambda { d_lambda: 0.1, frequency: 100.0, ra: 35.4, cm: 1.0 });
        let t: CellTypes = from_yaml_str("P: {template: X, discretization: {nseg: 3}}", Path::new("c.yml")).unwrap();
        assert_eq!(t["P"].segment_rule(), SegmentRule::Fixed(3));
        let t: CellTypes =
            from_yaml_str("P: {template: X, discretization: {nseg: 3, d_lambda: 0.1}}", Path::new("c.yml")).unwrap();
        let e = validate_cell_types(&t, &Default::default(), Path::new("c.yml"), "").unwrap_err();
        assert_eq!(e.key, "P.discretization");
    }
}
