//! The YAML schema of cell models and templates (docs/cell-yaml.md, docs/templates.md). Unknown keys are errors.

use super::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ModelYaml {
    /// A folder of NEURON .mod files (read recursively, relative to the YAML file); its mechanisms join the
    /// catalogue and replace built-in ones of the same name.
    #[serde(default)]
    pub(super) mechanisms_path: Option<String>,
    pub(super) simulation: SimulationYaml,
    pub(super) morphology: MorphologyYaml,
    #[serde(default)]
    pub(super) discretization: Option<DiscretizationSpec>,
    #[serde(default)]
    pub(super) properties: Vec<PropertiesYaml>,
    #[serde(default)]
    pub(super) mechanisms: Vec<DensityYaml>,
    #[serde(default)]
    pub(super) ions: Vec<IonYaml>,
    #[serde(default)]
    pub(super) point_processes: Vec<PointYaml>,
    #[serde(default)]
    pub(super) detectors: Vec<DetectorYaml>,
    #[serde(default)]
    pub(super) probes: Vec<ProbeYaml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SimulationYaml {
    pub(super) tstop: f64,
    #[serde(default = "default_dt")]
    pub(super) dt: f64,
    #[serde(default)]
    pub(super) method: MethodName,
    #[serde(default = "default_celsius")]
    pub(super) celsius: f64,
    #[serde(default = "default_v_init")]
    pub(super) v_init: f64,
    #[serde(default)]
    pub(super) spike_rule: SpikeRuleName,
    #[serde(default)]
    pub(super) delivery_rule: DeliveryRuleName,
    #[serde(default)]
    pub(super) record_dt: Option<f64>,
    #[serde(default)]
    pub(super) globals: BTreeMap<String, BTreeMap<String, f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MorphologyYaml {
    #[serde(default)]
    pub(super) swc: Option<String>,
    #[serde(default)]
    pub(super) sections: Option<Vec<SectionYaml>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum TypeYaml {
    Number(i32),
    Name(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SectionYaml {
    pub(super) name: String,
    #[serde(rename = "type", default)]
    pub(super) kind: Option<TypeYaml>,
    #[serde(rename = "L", default)]
    pub(super) length: Option<f64>,
    #[serde(default)]
    pub(super) diam: Option<f64>,
    #[serde(default)]
    pub(super) points: Option<Vec<[f64; 4]>>,
    #[serde(default)]
    pub(super) parent: Option<String>,
    #[serde(default)]
    pub(super) parent_x: Option<f64>,
    #[serde(default)]
    pub(super) nseg: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DiscretizationYaml {
    /// Sections the rule applies to (default: all).
    #[serde(default)]
    pub(super) region: Option<RegionYaml>,
    #[serde(default)]
    pub(super) nseg: Option<usize>,
    #[serde(default)]
    pub(super) d_lambda: Option<f64>,
    #[serde(default = "default_frequency")]
    pub(super) frequency: f64,
    /// Axial resistivity and capacitance the d_lambda rule uses instead of the sections' own (MiV's PVBC and
    /// OLM templates call `set_nseg` before setting Ra and cm, i.e. with NEURON's defaults 35.4 and 1).
    #[serde(rename = "Ra", default)]
    pub(super) ra: Option<f64>,
    #[serde(default)]
    pub(super) cm: Option<f64>,
}

/// One rule for every section, or a list of rules applied in order.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum DiscretizationSpec {
    One(DiscretizationYaml),
    Many(Vec<DiscretizationYaml>),
}

impl DiscretizationSpec {
    pub(super) fn rules(&self) -> Vec<(String, &DiscretizationYaml)> {
        match self {
            DiscretizationSpec::One(d) => vec![("discretization".into(), d)],
            DiscretizationSpec::Many(v) => {
                v.iter().enumerate().map(|(i, d)| (format!("discretization[{i}]"), d)).collect()
            }
        }
    }
}

pub(super) fn default_frequency() -> f64 {
    100.0
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub(super) enum RegionYaml {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PropertiesYaml {
    pub(super) region: RegionYaml,
    #[serde(rename = "Ra", default)]
    pub(super) ra: Option<f64>,
    #[serde(default)]
    pub(super) cm: Option<f64>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub(super) enum ValueYaml {
    Number(f64),
    Expression(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DensityYaml {
    pub(super) region: RegionYaml,
    /// Insert only in sections where this holds (variables `diam`, `L`, `distance` at the section's middle).
    #[serde(rename = "if", default)]
    pub(super) condition: Option<String>,
    pub(super) mechanism: String,
    #[serde(default)]
    pub(super) params: BTreeMap<String, ValueYaml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IonYaml {
    pub(super) region: RegionYaml,
    pub(super) ion: String,
    #[serde(default)]
    pub(super) erev: Option<f64>,
    #[serde(default)]
    pub(super) conc_in: Option<f64>,
    #[serde(default)]
    pub(super) conc_out: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum WeightsYaml {
    One(f64),
    Many(Vec<f64>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EventsYaml {
    pub(super) weights: WeightsYaml,
    pub(super) times: Vec<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PointYaml {
    pub(super) name: String,
    pub(super) mechanism: String,
    pub(super) at: String,
    #[serde(default)]
    pub(super) params: BTreeMap<String, f64>,
    #[serde(default)]
    pub(super) events: Vec<EventsYaml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DetectorYaml {
    #[serde(default)]
    pub(super) name: Option<String>,
    pub(super) at: String,
    #[serde(default = "default_threshold")]
    pub(super) threshold: f64,
}

pub(super) fn default_threshold() -> f64 {
    10.0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProbeYaml {
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) at: Option<String>,
    #[serde(default = "default_variable")]
    pub(super) variable: String,
}

pub(super) fn default_variable() -> String {
    "v".into()
}
