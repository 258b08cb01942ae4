//! The YAML schema of cell models (`miv cell`, docs/cell-yaml.md) and network cell templates (`miv run`,
//! docs/templates.md). Both describe a cable cell's biophysics the same way (discretisation, passive properties,
//! density mechanisms, ions, point processes, spike detectors, each applied to regions of sections); a model
//! adds a morphology, the simulation settings and probes. Unknown keys are errors. `miv-engine`'s `model`
//! module applies these to cells.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::options::{
    default_celsius, default_dt, default_frequency, default_v_init, DeliveryRuleName, MethodName, SpikeRuleName,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelYaml {
    /// A folder of NEURON .mod files (read recursively, relative to the YAML file); its mechanisms join the
    /// catalogue and replace built-in ones of the same name.
    #[serde(default)]
    pub mechanisms_path: Option<String>,
    pub simulation: SimulationYaml,
    pub morphology: MorphologyYaml,
    #[serde(default)]
    pub discretization: Option<DiscretizationSpec>,
    #[serde(default)]
    pub properties: Vec<PropertiesYaml>,
    #[serde(default)]
    pub mechanisms: Vec<DensityYaml>,
    #[serde(default)]
    pub ions: Vec<IonYaml>,
    #[serde(default)]
    pub point_processes: Vec<PointYaml>,
    #[serde(default)]
    pub detectors: Vec<DetectorYaml>,
    #[serde(default)]
    pub probes: Vec<ProbeYaml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulationYaml {
    pub tstop: f64,
    #[serde(default = "default_dt")]
    pub dt: f64,
    #[serde(default)]
    pub method: MethodName,
    #[serde(default = "default_celsius")]
    pub celsius: f64,
    #[serde(default = "default_v_init")]
    pub v_init: f64,
    #[serde(default)]
    pub spike_rule: SpikeRuleName,
    #[serde(default)]
    pub delivery_rule: DeliveryRuleName,
    #[serde(default)]
    pub record_dt: Option<f64>,
    #[serde(default)]
    pub globals: BTreeMap<String, BTreeMap<String, f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MorphologyYaml {
    #[serde(default)]
    pub swc: Option<String>,
    #[serde(default)]
    pub sections: Option<Vec<SectionYaml>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum TypeYaml {
    Number(i32),
    Name(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectionYaml {
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: Option<TypeYaml>,
    #[serde(rename = "L", default)]
    pub length: Option<f64>,
    #[serde(default)]
    pub diam: Option<f64>,
    #[serde(default)]
    pub points: Option<Vec<[f64; 4]>>,
    #[serde(default)]
    pub parent: Option<String>,
    #[serde(default)]
    pub parent_x: Option<f64>,
    #[serde(default)]
    pub nseg: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscretizationYaml {
    /// Sections the rule applies to (default: all).
    #[serde(default)]
    pub region: Option<RegionYaml>,
    #[serde(default)]
    pub nseg: Option<usize>,
    #[serde(default)]
    pub d_lambda: Option<f64>,
    #[serde(default = "default_frequency")]
    pub frequency: f64,
    /// Axial resistivity and capacitance the d_lambda rule uses instead of the sections' own (MiV's PVBC and
    /// OLM templates call `set_nseg` before setting Ra and cm, i.e. with NEURON's defaults 35.4 and 1).
    #[serde(rename = "Ra", default)]
    pub ra: Option<f64>,
    #[serde(default)]
    pub cm: Option<f64>,
}

/// One rule for every section, or a list of rules applied in order.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum DiscretizationSpec {
    One(DiscretizationYaml),
    Many(Vec<DiscretizationYaml>),
}

impl DiscretizationSpec {
    pub fn rules(&self) -> Vec<(String, &DiscretizationYaml)> {
        match self {
            DiscretizationSpec::One(d) => vec![("discretization".into(), d)],
            DiscretizationSpec::Many(v) => {
                v.iter().enumerate().map(|(i, d)| (format!("discretization[{i}]"), d)).collect()
            }
        }
    }
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum RegionYaml {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertiesYaml {
    pub region: RegionYaml,
    #[serde(rename = "Ra", default)]
    pub ra: Option<f64>,
    #[serde(default)]
    pub cm: Option<f64>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum ValueYaml {
    Number(f64),
    Expression(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DensityYaml {
    pub region: RegionYaml,
    /// Insert only in sections where this holds (variables `diam`, `L`, `distance` at the section's middle).
    #[serde(rename = "if", default)]
    pub condition: Option<String>,
    pub mechanism: String,
    #[serde(default)]
    pub params: BTreeMap<String, ValueYaml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IonYaml {
    pub region: RegionYaml,
    pub ion: String,
    #[serde(default)]
    pub erev: Option<f64>,
    #[serde(default)]
    pub conc_in: Option<f64>,
    #[serde(default)]
    pub conc_out: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum WeightsYaml {
    One(f64),
    Many(Vec<f64>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsYaml {
    pub weights: WeightsYaml,
    pub times: Vec<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointYaml {
    pub name: String,
    pub mechanism: String,
    pub at: String,
    #[serde(default)]
    pub params: BTreeMap<String, f64>,
    #[serde(default)]
    pub events: Vec<EventsYaml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorYaml {
    #[serde(default)]
    pub name: Option<String>,
    pub at: String,
    #[serde(default = "default_threshold")]
    pub threshold: f64,
}

fn default_threshold() -> f64 {
    10.0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeYaml {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub at: Option<String>,
    #[serde(default = "default_variable")]
    pub variable: String,
}

fn default_variable() -> String {
    "v".into()
}

/// A network cell template. Its biophysics keys are [`ModelYaml`]'s, written out again because serde's `flatten`
/// cannot be combined with `deny_unknown_fields`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateYaml {
    /// Temperature the template's cells are simulated at (MiV's templates set `celsius = 34`).
    #[serde(default)]
    pub celsius: Option<f64>,
    #[serde(default)]
    pub discretization: Option<DiscretizationSpec>,
    #[serde(default)]
    pub properties: Vec<PropertiesYaml>,
    #[serde(default)]
    pub mechanisms: Vec<DensityYaml>,
    #[serde(default)]
    pub ions: Vec<IonYaml>,
    #[serde(default)]
    pub point_processes: Vec<PointYaml>,
    /// The cell's spike source. Without it MiV's rule applies (see `miv_engine::model::CellTemplate::build`).
    #[serde(default)]
    pub detectors: Vec<DetectorYaml>,
    /// Threshold (mV) of MiV's default detector.
    #[serde(default = "default_miv_threshold")]
    pub spike_threshold: f64,
    /// Swap the x and y coordinates of every 3-D point (MiV's PoolosPyramidalCell `rotate_shape`). It moves the
    /// cell and changes nothing electrical; the LFP sees it.
    #[serde(default)]
    pub swap_xy: bool,
    /// MiV's `BiophysCell` constructor (`init_cable`): after the template, every section's nseg is reset by
    /// MiV's Python d_lambda rule (`{d_lambda: 0.1, frequency: 100}`: mean segment diam and cm under the old
    /// nseg, the section's Ra), range values copied from the old segments as NEURON does.
    #[serde(default)]
    pub miv_init_cable: Option<MivInitCable>,
    /// Place the default spike detector with the path distances MiV's `get_distance_to_node` computes (the
    /// full lengths of the section and its ancestors below the root, plus x L; docs/fidelity.md).
    #[serde(default)]
    pub miv_detector_distance: bool,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MivInitCable {
    pub d_lambda: f64,
    pub frequency: f64,
}

fn default_miv_threshold() -> f64 {
    -30.0
}
