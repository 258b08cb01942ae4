//! Cell models in YAML: the biophysics schema shared by single-cell models (`miv cell`, docs/cell-yaml.md)
//! and network cell templates (`miv run`, docs/templates.md).
//!
//! Both describe a cable cell's biophysics the same way: discretisation, passive properties, density
//! mechanisms, ions, point processes and spike detectors, each applied to regions of sections (section types or
//! names). A single-cell model adds a morphology, the simulation settings and probes; a template is applied to
//! the morphology of every cell of a population (read from NeuroH5 `Trees`), replacing MiV's hoc templates.
//! Every error names the file and the YAML key at fault.

use crate::config::{default_celsius, default_dt, default_v_init, DeliveryRuleName, MethodName, SpikeRuleName};
use std::collections::BTreeMap;
use std::path::Path;

use miv_solvers::cell::{DensityPlacement, IonSetting, PointPlacement};
use miv_solvers::compartments::{nseg_d_lambda, Compartments};
use miv_solvers::morphology::swc;
use miv_solvers::{
    CableCell, Catalogue, Location, MechanismKind, Morphology, MorphologyError, Point3, ProbeSpec, Section, SimOptions,
    TreePoint, Values,
};
use serde::Deserialize;

use crate::expr::Expr;

/// A model error: the file, the YAML key and what was expected.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {key}: {message}")]
pub struct ModelError {
    pub file: String,
    pub key: String,
    pub message: String,
}

// ---------------------------------------------------------------------------------------------------------
// The YAML schema (docs/cell-yaml.md). Unknown keys are errors.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelYaml {
    /// A folder of NEURON .mod files (read recursively, relative to the YAML file); its mechanisms join the
    /// catalogue and replace built-in ones of the same name.
    #[serde(default)]
    mechanisms_path: Option<String>,
    simulation: SimulationYaml,
    morphology: MorphologyYaml,
    #[serde(default)]
    discretization: Option<DiscretizationSpec>,
    #[serde(default)]
    properties: Vec<PropertiesYaml>,
    #[serde(default)]
    mechanisms: Vec<DensityYaml>,
    #[serde(default)]
    ions: Vec<IonYaml>,
    #[serde(default)]
    point_processes: Vec<PointYaml>,
    #[serde(default)]
    detectors: Vec<DetectorYaml>,
    #[serde(default)]
    probes: Vec<ProbeYaml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SimulationYaml {
    tstop: f64,
    #[serde(default = "default_dt")]
    dt: f64,
    #[serde(default)]
    method: MethodName,
    #[serde(default = "default_celsius")]
    celsius: f64,
    #[serde(default = "default_v_init")]
    v_init: f64,
    #[serde(default)]
    spike_rule: SpikeRuleName,
    #[serde(default)]
    delivery_rule: DeliveryRuleName,
    #[serde(default)]
    record_dt: Option<f64>,
    #[serde(default)]
    globals: BTreeMap<String, BTreeMap<String, f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MorphologyYaml {
    #[serde(default)]
    swc: Option<String>,
    #[serde(default)]
    sections: Option<Vec<SectionYaml>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TypeYaml {
    Number(i32),
    Name(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SectionYaml {
    name: String,
    #[serde(rename = "type", default)]
    kind: Option<TypeYaml>,
    #[serde(rename = "L", default)]
    length: Option<f64>,
    #[serde(default)]
    diam: Option<f64>,
    #[serde(default)]
    points: Option<Vec<[f64; 4]>>,
    #[serde(default)]
    parent: Option<String>,
    #[serde(default)]
    parent_x: Option<f64>,
    #[serde(default)]
    nseg: Option<usize>,
}

/// The most segments a section may have (NEURON's limit), so a typo cannot ask for terabytes.
pub const MAX_NSEG: usize = 32767;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DiscretizationYaml {
    /// Sections the rule applies to (default: all).
    #[serde(default)]
    region: Option<RegionYaml>,
    #[serde(default)]
    nseg: Option<usize>,
    #[serde(default)]
    d_lambda: Option<f64>,
    #[serde(default = "default_frequency")]
    frequency: f64,
    /// Axial resistivity and capacitance the d_lambda rule uses instead of the sections' own (MiV's PVBC and
    /// OLM templates call `set_nseg` before setting Ra and cm, i.e. with NEURON's defaults 35.4 and 1).
    #[serde(rename = "Ra", default)]
    ra: Option<f64>,
    #[serde(default)]
    cm: Option<f64>,
}

/// One rule for every section, or a list of rules applied in order.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum DiscretizationSpec {
    One(DiscretizationYaml),
    Many(Vec<DiscretizationYaml>),
}

impl DiscretizationSpec {
    fn rules(&self) -> Vec<(String, &DiscretizationYaml)> {
        match self {
            DiscretizationSpec::One(d) => vec![("discretization".into(), d)],
            DiscretizationSpec::Many(v) => {
                v.iter().enumerate().map(|(i, d)| (format!("discretization[{i}]"), d)).collect()
            }
        }
    }
}

fn default_frequency() -> f64 {
    100.0
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
enum RegionYaml {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PropertiesYaml {
    region: RegionYaml,
    #[serde(rename = "Ra", default)]
    ra: Option<f64>,
    #[serde(default)]
    cm: Option<f64>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
enum ValueYaml {
    Number(f64),
    Expression(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DensityYaml {
    region: RegionYaml,
    /// Insert only in sections where this holds (variables `diam`, `L`, `distance` at the section's middle).
    #[serde(rename = "if", default)]
    condition: Option<String>,
    mechanism: String,
    #[serde(default)]
    params: BTreeMap<String, ValueYaml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IonYaml {
    region: RegionYaml,
    ion: String,
    #[serde(default)]
    erev: Option<f64>,
    #[serde(default)]
    conc_in: Option<f64>,
    #[serde(default)]
    conc_out: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum WeightsYaml {
    One(f64),
    Many(Vec<f64>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsYaml {
    weights: WeightsYaml,
    times: Vec<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PointYaml {
    name: String,
    mechanism: String,
    at: String,
    #[serde(default)]
    params: BTreeMap<String, f64>,
    #[serde(default)]
    events: Vec<EventsYaml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DetectorYaml {
    #[serde(default)]
    name: Option<String>,
    at: String,
    #[serde(default = "default_threshold")]
    threshold: f64,
}

fn default_threshold() -> f64 {
    10.0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbeYaml {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    at: Option<String>,
    #[serde(default = "default_variable")]
    variable: String,
}

fn default_variable() -> String {
    "v".into()
}

// ---------------------------------------------------------------------------------------------------------
// The resolved model.

/// Events to deliver to one point process: its target index, weights and times.
#[derive(Debug, Clone, PartialEq)]
pub struct EventTrain {
    pub target: usize,
    pub weights: Vec<f64>,
    pub times: Vec<f64>,
}

/// A loaded, checked model.
#[derive(Debug, Clone)]
pub struct CellModel {
    pub cell: CableCell,
    pub options: SimOptions,
    pub tstop: f64,
    pub v_init: f64,
    pub record_dt: f64,
    /// (column name, probe)
    pub probes: Vec<(String, ProbeSpec)>,
    pub events: Vec<EventTrain>,
    pub detector_names: Vec<String>,
    /// Mechanisms compiled from `mechanisms_path` (empty without it).
    pub mechanisms: miv_nmodl::Library,
}

/// The built-in catalogue plus compiled .mod mechanisms (which replace built-ins of the same name).
pub fn catalogue_of(mechanisms: &miv_nmodl::Library) -> Catalogue {
    let mut c = Catalogue::builtin();
    miv_nmodl::adapter::register(&mut c, mechanisms);
    c
}

struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    fn err(&self, key: impl Into<String>, message: impl Into<String>) -> ModelError {
        ModelError { file: self.file.into(), key: key.into(), message: message.into() }
    }

    /// Parse YAML text through `miv_io::config`, whose errors name the key path (`(document)` for the whole).
    fn parse_yaml<T: serde::de::DeserializeOwned>(&self, text: &str) -> Result<T, ModelError> {
        miv_io::config::from_yaml_str(text, Path::new(self.file)).map_err(|e| {
            let key = if e.key.is_empty() { "(document)".to_string() } else { e.key };
            self.err(key, e.message)
        })
    }
}

/// Read and check a model file.
pub fn load_model(path: &Path) -> Result<CellModel, ModelError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ModelError {
        file: file.clone(),
        key: "(file)".into(),
        message: format!("cannot read: {e}"),
    })?;
    parse_model(&text, &file, path.parent().unwrap_or(Path::new(".")))
}

/// Check a model given as YAML text; `file` names it in errors, `base` resolves relative paths.
pub fn parse_model(text: &str, file: &str, base: &Path) -> Result<CellModel, ModelError> {
    let cx = Ctx { file };
    let y: ModelYaml = cx.parse_yaml(text)?;

    let mechanisms = match &y.mechanisms_path {
        Some(dir) => {
            miv_nmodl::Library::load_dir(&base.join(dir)).map_err(|e| cx.err("mechanisms_path", e.to_string()))?
        }
        None => miv_nmodl::Library::default(),
    };
    let catalogue = &catalogue_of(&mechanisms);

    // Simulation settings.
    let s = &y.simulation;
    if !(s.dt > 0.0 && s.dt.is_finite()) {
        return Err(cx.err("simulation.dt", format!("must be a positive number of ms, got {}", s.dt)));
    }
    if !(s.tstop >= 0.0 && s.tstop.is_finite()) {
        return Err(cx.err("simulation.tstop", format!("must be >= 0 ms, got {}", s.tstop)));
    }
    if !s.celsius.is_finite() {
        return Err(cx.err("simulation.celsius", "must be a number"));
    }
    let record_dt = s.record_dt.unwrap_or(s.dt);
    let ratio = record_dt / s.dt;
    if !(record_dt > 0.0) || (ratio - ratio.round()).abs() > 1e-9 || ratio.round() < 1.0 {
        return Err(
            cx.err("simulation.record_dt", format!("must be a positive multiple of dt ({}), got {record_dt}", s.dt))
        );
    }
    let mut globals = Vec::new();
    for (mech, values) in &s.globals {
        let info = catalogue.get(mech).ok_or_else(|| {
            cx.err(
                format!("simulation.globals.{mech}"),
                format!("unknown mechanism (known: {})", catalogue.names().join(", ")),
            )
        })?;
        for (g, v) in values {
            if info.global_index(g).is_none() {
                let known: Vec<&str> = info.globals.iter().map(|p| p.name.as_str()).collect();
                return Err(cx.err(
                    format!("simulation.globals.{mech}.{g}"),
                    format!("{mech} has no global {g:?} (it has: {})", known.join(", ")),
                ));
            }
            globals.push((mech.clone(), g.clone(), *v));
        }
    }

    let morphology = build_morphology(&cx, &y.morphology, base)?;
    let mut cell = CableCell::new(morphology).map_err(|e| morphology_error(&cx, &e))?;
    let names: Vec<String> = cell.morphology.sections.iter().map(|s| s.name.clone()).collect();
    let mut section_nseg = Vec::new();
    if let Some(secs) = &y.morphology.sections {
        for (i, s) in secs.iter().enumerate() {
            match s.nseg {
                Some(n) if !(1..=MAX_NSEG).contains(&n) => {
                    return Err(cx.err(
                        format!("morphology.sections[{i}].nseg"),
                        format!("must be from 1 to {MAX_NSEG} (NEURON's limit), got {n}"),
                    ))
                }
                Some(n) => section_nseg.push((i, n)),
                None => {}
            }
        }
    }
    let bio = Biophysics {
        discretization: y.discretization.as_ref(),
        properties: &y.properties,
        mechanisms: &y.mechanisms,
        ions: &y.ions,
        point_processes: &y.point_processes,
        detectors: &y.detectors,
    };
    let applied = apply_biophysics(&cx, &mut cell, &bio, catalogue, &section_nseg)?;
    let (events, point_names, detector_names) = (applied.events, applied.point_names, applied.detector_names);

    // Probes.
    let mut probes = Vec::new();
    let mut membrane_current = false;
    for (i, p) in y.probes.iter().enumerate() {
        let key = format!("probes[{i}]");
        let at = |cx: &Ctx| -> Result<Location, ModelError> {
            let a = p
                .at
                .as_deref()
                .ok_or_else(|| cx.err(format!("{key}.at"), format!("variable {:?} needs a location", p.variable)))?;
            parse_location(cx, &cell, a, &format!("{key}.at"))
        };
        let spec = match p.variable.as_str() {
            "v" => ProbeSpec::Voltage { cell: 0, location: at(&cx)? },
            "i_membrane" => {
                membrane_current = true;
                ProbeSpec::MembraneCurrent { cell: 0, location: at(&cx)? }
            }
            other => {
                let Some((owner, var)) = other.split_once('.') else {
                    return Err(cx.err(
                        format!("{key}.variable"),
                        format!(
                            "{other:?}: expected v, i_membrane, <mechanism>.<variable> or <point process>.<variable>"
                        ),
                    ));
                };
                if let Some(t) = point_names.iter().position(|n| n == owner) {
                    let info = catalogue.get(&cell.points[t].mechanism).unwrap();
                    if info.state_index(var).is_none() {
                        return Err(cx.err(
                            format!("{key}.variable"),
                            format!("{} has no variable {var:?} (it has: {})", info.name, info.states.join(", ")),
                        ));
                    }
                    ProbeSpec::TargetState { cell: 0, target: t, variable: var.into() }
                } else if let Some(info) = catalogue.get(owner).filter(|i| i.kind == MechanismKind::Density) {
                    if info.state_index(var).is_none() {
                        return Err(cx.err(
                            format!("{key}.variable"),
                            format!("{} has no variable {var:?} (it has: {})", info.name, info.states.join(", ")),
                        ));
                    }
                    let location = at(&cx)?;
                    if !cell.density.iter().any(|d| d.section == location.section && d.mechanism == owner) {
                        return Err(cx.err(
                            format!("{key}.at"),
                            format!("{owner} is not inserted in section {:?}", names[location.section]),
                        ));
                    }
                    ProbeSpec::DensityState { cell: 0, location, mechanism: owner.into(), variable: var.into() }
                } else {
                    return Err(cx.err(
                        format!("{key}.variable"),
                        format!("{owner:?} is neither a point process name nor a density mechanism"),
                    ));
                }
            }
        };
        let name = p.name.clone().unwrap_or_else(|| match &p.at {
            Some(a) => format!("{}@{a}", p.variable),
            None => p.variable.clone(),
        });
        probes.push((name, spec));
    }

    let options = SimOptions {
        dt: s.dt,
        method: s.method.into(),
        celsius: s.celsius,
        spike_rule: s.spike_rule.into(),
        delivery_rule: s.delivery_rule.into(),
        membrane_current,
        geometry: false,
        globals,
    };
    Ok(CellModel {
        cell,
        options,
        tstop: s.tstop,
        v_init: s.v_init,
        record_dt,
        probes,
        events,
        detector_names,
        mechanisms,
    })
}

/// The biophysics blocks of a model or template.
struct Biophysics<'a> {
    discretization: Option<&'a DiscretizationSpec>,
    properties: &'a [PropertiesYaml],
    mechanisms: &'a [DensityYaml],
    ions: &'a [IonYaml],
    point_processes: &'a [PointYaml],
    detectors: &'a [DetectorYaml],
}

/// What applying biophysics produced besides the cell itself.
struct Applied {
    events: Vec<EventTrain>,
    point_names: Vec<String>,
    detector_names: Vec<String>,
}

/// Variables of per-section conditions (`if`): the section's diameter at its middle (um), its length (um) and
/// the path distance of its middle from the root's 0-end (um).
const SECTION_VARIABLES: [&str; 3] = ["diam", "L", "distance"];

/// Apply properties, discretisation (then the per-section `nseg` overrides), density mechanisms, ions, point
/// processes and detectors to `cell`, in that order.
fn apply_biophysics(
    cx: &Ctx,
    cell: &mut CableCell,
    y: &Biophysics,
    catalogue: &Catalogue,
    section_nseg: &[(usize, usize)],
) -> Result<Applied, ModelError> {
    let names: Vec<String> = cell.morphology.sections.iter().map(|s| s.name.clone()).collect();
    // Passive properties, in order (later entries win).
    for (i, p) in y.properties.iter().enumerate() {
        let key = format!("properties[{i}]");
        let secs = select(cx, cell, &p.region, &format!("{key}.region"))?;
        if let Some(ra) = p.ra {
            if !(ra > 0.0 && ra.is_finite()) {
                return Err(cx.err(format!("{key}.Ra"), format!("must be positive (ohm cm), got {ra}")));
            }
            secs.iter().for_each(|&s| cell.ra[s] = ra);
        }
        if let Some(cm) = p.cm {
            if !(cm >= 0.0 && cm.is_finite()) {
                return Err(cx.err(format!("{key}.cm"), format!("must be >= 0 (uF/cm2), got {cm}")));
            }
            secs.iter().for_each(|&s| cell.cm[s] = cm);
        }
    }

    // Discretisation rules in order, then per-section nseg.
    if let Some(spec) = y.discretization {
        for (key, d) in spec.rules() {
            let secs = match &d.region {
                Some(r) => select(cx, cell, r, &format!("{key}.region"))?,
                None => (0..cell.section_count()).collect(),
            };
            match (d.nseg, d.d_lambda) {
                (Some(_), Some(_)) => return Err(cx.err(key, "give either nseg or d_lambda, not both")),
                (Some(n), None) if !(1..=MAX_NSEG).contains(&n) => {
                    return Err(cx
                        .err(format!("{key}.nseg"), format!("must be from 1 to {MAX_NSEG} (NEURON's limit), got {n}")))
                }
                (Some(n), None) => secs.iter().for_each(|&s| cell.nseg[s] = n),
                (None, Some(dl)) => {
                    if !(dl > 0.0) || !(d.frequency > 0.0) {
                        return Err(cx.err(format!("{key}.d_lambda"), "d_lambda and frequency must be positive"));
                    }
                    for (what, v) in [("Ra", d.ra), ("cm", d.cm)] {
                        if let Some(v) = v {
                            if !(v > 0.0 && v.is_finite()) {
                                return Err(cx.err(format!("{key}.{what}"), format!("must be positive, got {v}")));
                            }
                        }
                    }
                    for &s in &secs {
                        let (ra, cm) = (d.ra.unwrap_or(cell.ra[s]), d.cm.unwrap_or(cell.cm[s]));
                        cell.nseg[s] = nseg_d_lambda(&cell.morphology.sections[s], ra, cm, dl, d.frequency);
                    }
                }
                (None, None) => return Err(cx.err(key, "expected nseg or d_lambda")),
            }
        }
    }
    for &(s, n) in section_nseg {
        cell.nseg[s] = n;
    }
    let comp = cell.compartments();

    // Density mechanisms.
    for (i, m) in y.mechanisms.iter().enumerate() {
        let key = format!("mechanisms[{i}]");
        let info = mechanism_of(cx, catalogue, &m.mechanism, MechanismKind::Density, &format!("{key}.mechanism"))?;
        let mut secs = select(cx, cell, &m.region, &format!("{key}.region"))?;
        if let Some(cond) = &m.condition {
            let e =
                Expr::parse(cond, &SECTION_VARIABLES).map_err(|err| cx.err(format!("{key}.if"), err.to_string()))?;
            secs.retain(|&s| {
                let mid = section_middle(&comp, s);
                e.eval(&[comp.diam[mid], comp.sections[s].length, comp.distance[mid]]) != 0.0
            });
        }
        let mut exprs = Vec::new();
        for (p, v) in &m.params {
            if info.param_index(p).is_none() {
                return Err(cx.err(
                    format!("{key}.params.{p}"),
                    format!("{} has no parameter {p:?} (it has: {})", info.name, info.param_names()),
                ));
            }
            let value = match v {
                ValueYaml::Number(x) => Segmentwise::Constant(*x),
                ValueYaml::Expression(e) => Segmentwise::Expr(
                    Expr::parse(e, &SEGMENT_VARIABLES)
                        .map_err(|err| cx.err(format!("{key}.params.{p}"), err.to_string()))?,
                ),
            };
            exprs.push((p.clone(), value));
        }
        for &s in &secs {
            let params = exprs
                .iter()
                .map(|(p, v)| {
                    let values = match v {
                        Segmentwise::Constant(x) => Values::Uniform(*x),
                        Segmentwise::Expr(e) => Values::PerSegment(segment_values(&comp, s, e)),
                    };
                    if let Values::PerSegment(vals) = &values {
                        if let Some(bad) = vals.iter().find(|x| !x.is_finite()) {
                            return Err(cx.err(
                                format!("{key}.params.{p}"),
                                format!("evaluates to {bad} in section {:?}", names[s]),
                            ));
                        }
                    }
                    Ok((p.clone(), values))
                })
                .collect::<Result<Vec<_>, _>>()?;
            // A later entry for the same mechanism and section overrides (NEURON: insert is idempotent and the
            // last assignment wins).
            if let Some(prev) = cell.density.iter_mut().find(|d| d.section == s && d.mechanism == m.mechanism) {
                for (p, v) in params {
                    match prev.params.iter_mut().find(|(q, _)| *q == p) {
                        Some(slot) => slot.1 = v,
                        None => prev.params.push((p, v)),
                    }
                }
            } else {
                cell.density.push(DensityPlacement { section: s, mechanism: m.mechanism.clone(), params });
            }
        }
    }

    // Ions.
    for (i, ion) in y.ions.iter().enumerate() {
        let key = format!("ions[{i}]");
        if ion.ion.is_empty() || !ion.ion.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(cx.err(format!("{key}.ion"), format!("{:?} is not an ion name", ion.ion)));
        }
        for (what, v) in [("conc_in", ion.conc_in), ("conc_out", ion.conc_out)] {
            if let Some(c) = v {
                if !(c > 0.0) {
                    return Err(cx.err(format!("{key}.{what}"), format!("must be positive (mM), got {c}")));
                }
            }
        }
        for s in select(cx, cell, &ion.region, &format!("{key}.region"))? {
            cell.ions.push(IonSetting {
                section: s,
                ion: ion.ion.clone(),
                erev: ion.erev,
                conc_in: ion.conc_in,
                conc_out: ion.conc_out,
            });
        }
    }

    // Point processes and their events.
    let mut events = Vec::new();
    let mut point_names: Vec<String> = Vec::new();
    for (i, p) in y.point_processes.iter().enumerate() {
        let key = format!("point_processes[{i}]");
        if point_names.contains(&p.name) {
            return Err(cx.err(format!("{key}.name"), format!("{:?} is used by another point process", p.name)));
        }
        let info = mechanism_of(cx, catalogue, &p.mechanism, MechanismKind::Point, &format!("{key}.mechanism"))?;
        let location = parse_location(cx, cell, &p.at, &format!("{key}.at"))?;
        for k in p.params.keys() {
            if info.param_index(k).is_none() {
                return Err(cx.err(
                    format!("{key}.params.{k}"),
                    format!("{} has no parameter {k:?} (it has: {})", info.name, info.param_names()),
                ));
            }
        }
        let target = cell.points.len();
        cell.points.push(PointPlacement {
            location,
            mechanism: p.mechanism.clone(),
            params: p.params.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        });
        point_names.push(p.name.clone());
        for (j, e) in p.events.iter().enumerate() {
            let ekey = format!("{key}.events[{j}]");
            if info.weights == 0 {
                return Err(cx.err(ekey, format!("{} takes no events", info.name)));
            }
            let weights = match &e.weights {
                WeightsYaml::One(w) => vec![*w],
                WeightsYaml::Many(w) => w.clone(),
            };
            if weights.is_empty() || weights.len() > info.weights {
                return Err(cx.err(
                    format!("{ekey}.weights"),
                    format!("{} takes {} weight(s), {} given", info.name, info.weights, weights.len()),
                ));
            }
            if let Some(t) = e.times.iter().find(|t| !(t.is_finite() && **t >= 0.0)) {
                return Err(cx.err(format!("{ekey}.times"), format!("event times must be >= 0 ms, got {t}")));
            }
            events.push(EventTrain { target, weights, times: e.times.clone() });
        }
    }

    // Detectors.
    let mut detector_names = Vec::new();
    for (i, d) in y.detectors.iter().enumerate() {
        let key = format!("detectors[{i}]");
        let location = parse_location(cx, cell, &d.at, &format!("{key}.at"))?;
        if !d.threshold.is_finite() {
            return Err(cx.err(format!("{key}.threshold"), "must be a number (mV)"));
        }
        cell.detect(location, d.threshold);
        detector_names.push(d.name.clone().unwrap_or_else(|| d.at.clone()));
    }
    Ok(Applied { events, point_names, detector_names })
}

/// The node at the middle of section `s` (its centre node for odd nseg).
fn section_middle(comp: &Compartments, s: usize) -> usize {
    let sec = comp.sections[s];
    sec.first as usize + ((sec.nseg as usize) / 2).min(sec.nseg.saturating_sub(1) as usize)
}

/// Variables of parameter expressions: path distance from the root's 0-end (um), arc position in the section,
/// segment diameter (um), section length (um).
const SEGMENT_VARIABLES: [&str; 4] = ["distance", "x", "diam", "L"];

enum Segmentwise {
    Constant(f64),
    Expr(Expr),
}

fn segment_values(comp: &Compartments, section: usize, e: &Expr) -> Vec<f64> {
    let s = comp.sections[section];
    (0..s.nseg as usize)
        .map(|j| {
            let n = s.first as usize + j;
            e.eval(&[comp.distance[n], comp.x[n], comp.diam[n], s.length])
        })
        .collect()
}

fn mechanism_of<'c>(
    cx: &Ctx,
    cat: &'c Catalogue,
    name: &str,
    kind: MechanismKind,
    key: &str,
) -> Result<&'c miv_solvers::MechanismInfo, ModelError> {
    let info = cat
        .get(name)
        .ok_or_else(|| cx.err(key, format!("unknown mechanism {name:?} (known: {})", cat.names().join(", "))))?;
    if info.kind != kind {
        return Err(
            cx.err(key, format!("{name} is a {} mechanism, a {} is expected here", info.kind.as_str(), kind.as_str()))
        );
    }
    Ok(info)
}

/// Sections named by a region: `all`, a section type (`soma`, `axon`, `basal`, `apical`, `ais`, `hillock`,
/// `typeN`, or `dend` for basal + apical) or a section name; a list is the union.
fn select(cx: &Ctx, cell: &CableCell, region: &RegionYaml, key: &str) -> Result<Vec<usize>, ModelError> {
    let names = match region {
        RegionYaml::One(n) => vec![n.clone()],
        RegionYaml::Many(v) => v.clone(),
    };
    let mut out = Vec::new();
    for n in &names {
        let secs = &cell.morphology.sections;
        let hit: Vec<usize> = (0..secs.len())
            .filter(|&s| {
                let t = secs[s].swc_type;
                n == "all"
                    || secs[s].name == *n
                    || swc::type_from_name(n) == Some(t)
                    || (n == "dend" && (t == swc::BASAL || t == swc::APICAL))
            })
            .collect();
        if hit.is_empty() {
            return Err(cx.err(key, format!("{n:?} matches no section (use all, a section type or a section name)")));
        }
        out.extend(hit);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// `name(x)`, e.g. `soma(0.5)` or `apical[3](1)`.
fn parse_location(cx: &Ctx, cell: &CableCell, text: &str, key: &str) -> Result<Location, ModelError> {
    let t = text.trim();
    let bad = || cx.err(key, format!("{text:?}: expected <section>(<x>), e.g. soma(0.5)"));
    let open = t.rfind('(').ok_or_else(bad)?;
    if !t.ends_with(')') {
        return Err(bad());
    }
    let (name, x) = (t[..open].trim(), t[open + 1..t.len() - 1].trim());
    let x: f64 = x.parse().map_err(|_| bad())?;
    if !(0.0..=1.0).contains(&x) {
        return Err(cx.err(key, format!("{text:?}: x must be within 0..1")));
    }
    let s = find_section(cell, name).ok_or_else(|| cx.err(key, format!("no section named {name:?}")))?;
    Ok(Location::new(s, x))
}

/// A section by name (`apical[3]`), or by type with an index counted within that type (`soma`, i.e. `soma[0]`;
/// `axon[-1]`, the last axon section, as hoc's `soma[-1]` idiom in MiV).
fn find_section(cell: &CableCell, name: &str) -> Option<usize> {
    if let Some(s) = cell.morphology.find(name) {
        return Some(s);
    }
    let (ty, idx) = match name.split_once('[') {
        Some((t, rest)) => (t, rest.strip_suffix(']')?.trim().parse::<i64>().ok()?),
        None => (name, 0),
    };
    let t = swc::type_from_name(ty)?;
    let of_type = cell.sections_of_type(t);
    let i = if idx < 0 { of_type.len() as i64 + idx } else { idx };
    (0..of_type.len() as i64).contains(&i).then(|| of_type[i as usize])
}

fn build_morphology(cx: &Ctx, m: &MorphologyYaml, base: &Path) -> Result<Morphology, ModelError> {
    match (&m.swc, &m.sections) {
        (Some(_), Some(_)) => Err(cx.err("morphology", "give either swc or sections, not both")),
        (None, None) => Err(cx.err("morphology", "needs swc (a file) or sections (a list)")),
        (Some(path), None) => {
            let p = base.join(path);
            let tree = miv_io::swc::read_swc(&p).map_err(|e| cx.err("morphology.swc", e.to_string()))?;
            morphology_from_tree(&tree).map_err(|e| cx.err("morphology.swc", format!("{}: {e}", p.display())))
        }
        (None, Some(secs)) => {
            let mut out = Vec::with_capacity(secs.len());
            for (i, s) in secs.iter().enumerate() {
                let key = format!("morphology.sections[{i}]");
                if secs[..i].iter().any(|o| o.name == s.name) {
                    return Err(cx.err(format!("{key}.name"), format!("{:?} is used by another section", s.name)));
                }
                let swc_type = match &s.kind {
                    None => 0,
                    Some(TypeYaml::Number(n)) => *n,
                    Some(TypeYaml::Name(n)) => swc::type_from_name(n).ok_or_else(|| {
                        cx.err(
                            format!("{key}.type"),
                            format!("{n:?}: expected soma, axon, basal, apical, ais, hillock, typeN or a number"),
                        )
                    })?,
                };
                let geometry = match (s.length, s.diam, &s.points) {
                    (Some(l), Some(d), None) => {
                        if !(l > 0.0 && l.is_finite()) {
                            return Err(cx.err(format!("{key}.L"), format!("must be positive (um), got {l}")));
                        }
                        if !(d > 0.0 && d.is_finite()) {
                            return Err(cx.err(format!("{key}.diam"), format!("must be positive (um), got {d}")));
                        }
                        miv_solvers::Geometry::Cylinder { length: l, diam: d }
                    }
                    (None, None, Some(p)) => {
                        if p.len() < 2 {
                            return Err(cx.err(format!("{key}.points"), "needs at least 2 points [x, y, z, diam]"));
                        }
                        if let Some(k) = p.iter().position(|q| !(q[3] >= 0.0) || q.iter().any(|v| !v.is_finite())) {
                            return Err(cx.err(
                                format!("{key}.points[{k}]"),
                                format!("diameter must be >= 0 and all values finite, got {:?}", p[k]),
                            ));
                        }
                        miv_solvers::Geometry::Points(p.iter().map(|q| Point3::new(q[0], q[1], q[2], q[3])).collect())
                    }
                    _ => return Err(cx.err(&key, "give either L and diam, or points")),
                };
                let parent = match &s.parent {
                    None => None,
                    Some(p) => Some(
                        secs.iter()
                            .position(|o| o.name == *p)
                            .ok_or_else(|| cx.err(format!("{key}.parent"), format!("no section named {p:?}")))?,
                    ),
                };
                let parent_x = s.parent_x.unwrap_or(1.0);
                if !(0.0..=1.0).contains(&parent_x) {
                    return Err(cx.err(format!("{key}.parent_x"), format!("must be within 0..1, got {parent_x}")));
                }
                out.push(Section { name: s.name.clone(), swc_type, parent, parent_x, geometry });
            }
            let m = Morphology::new(out);
            m.validate().map_err(|e| morphology_error(cx, &e))?;
            Ok(m)
        }
    }
}

/// A NeuroH5/SWC tree as a solvers morphology, with MiV's template semantics: one section per contracted
/// section (3-D points with diameter 2 r), child `dst` connected at `arc(loc) / L` of `src`, the section type
/// that of its last point, sections named `<type>[k]`.
pub fn morphology_from_tree(tree: &miv_io::tree::Tree) -> Result<Morphology, String> {
    let topo = tree.topology().map_err(|e| e.to_string())?;
    let points: Vec<TreePoint> = (0..tree.num_points())
        .map(|i| TreePoint {
            x: tree.x[i] as f64,
            y: tree.y[i] as f64,
            z: tree.z[i] as f64,
            radius: tree.radius[i] as f64,
            swc_type: tree.swc_type[i] as i32,
        })
        .collect();
    let sections: Vec<Vec<usize>> = topo.nodes.iter().map(|s| s.iter().map(|&p| p as usize).collect()).collect();
    let edges: Vec<(usize, usize, usize)> =
        (0..topo.src.len()).map(|k| (topo.src[k] as usize, topo.dst[k] as usize, topo.loc[k] as usize)).collect();
    Morphology::from_point_sections(&points, &sections, &edges).map_err(|e| e.to_string())
}

fn morphology_error(cx: &Ctx, e: &MorphologyError) -> ModelError {
    match e {
        MorphologyError::Cycle { index, name } => cx
            .err(format!("morphology.sections[{index}].parent"), format!("section {name:?} is part of a parent cycle")),
        MorphologyError::Section { index, what, .. } => cx.err(format!("morphology.sections[{index}]"), what.clone()),
        MorphologyError::Roots(r) => {
            cx.err("morphology.sections", format!("exactly one section must have no parent; these have none: {r:?}"))
        }
        MorphologyError::Empty => cx.err("morphology.sections", "no sections"),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Network cell templates (docs/templates.md).

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateYaml {
    /// Temperature the template's cells are simulated at (MiV's templates set `celsius = 34`).
    #[serde(default)]
    celsius: Option<f64>,
    #[serde(default)]
    discretization: Option<DiscretizationSpec>,
    #[serde(default)]
    properties: Vec<PropertiesYaml>,
    #[serde(default)]
    mechanisms: Vec<DensityYaml>,
    #[serde(default)]
    ions: Vec<IonYaml>,
    #[serde(default)]
    point_processes: Vec<PointYaml>,
    /// The cell's spike source. Without it MiV's rule applies (see [`CellTemplate::build`]).
    #[serde(default)]
    detectors: Vec<DetectorYaml>,
    /// Threshold (mV) of MiV's default detector.
    #[serde(default = "default_miv_threshold")]
    spike_threshold: f64,
    /// Swap the x and y coordinates of every 3-D point (MiV's PoolosPyramidalCell `rotate_shape`). It moves the
    /// cell and changes nothing electrical; the LFP sees it.
    #[serde(default)]
    swap_xy: bool,
    /// MiV's `BiophysCell` constructor (`init_cable`): after the template, every section's nseg is reset by
    /// MiV's Python d_lambda rule (`{d_lambda: 0.1, frequency: 100}`: mean segment diam and cm under the old
    /// nseg, the section's Ra), range values copied from the old segments as NEURON does.
    #[serde(default)]
    miv_init_cable: Option<MivInitCable>,
    /// Place the default spike detector with the path distances MiV's `get_distance_to_node` computes (the
    /// full lengths of the section and its ancestors below the root, plus x L; docs/fidelity.md).
    #[serde(default)]
    miv_detector_distance: bool,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
struct MivInitCable {
    d_lambda: f64,
    frequency: f64,
}

fn default_miv_threshold() -> f64 {
    -30.0
}

/// A cell template: the biophysics of every cell of a population, applied to each cell's morphology.
#[derive(Debug)]
pub struct CellTemplate {
    pub name: String,
    file: String,
    y: TemplateYaml,
}

impl CellTemplate {
    /// Read `<dir>/<name>.yaml`.
    pub fn load(dir: &Path, name: &str) -> Result<CellTemplate, ModelError> {
        let path = dir.join(format!("{name}.yaml"));
        let file = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| ModelError {
            file: file.clone(),
            key: "(file)".into(),
            message: format!("cannot read the template of {name}: {e}"),
        })?;
        CellTemplate::parse(name, &text, &file)
    }

    pub fn parse(name: &str, text: &str, file: &str) -> Result<CellTemplate, ModelError> {
        let cx = Ctx { file };
        let y: TemplateYaml = cx.parse_yaml(text)?;
        if let Some(c) = y.celsius {
            if !c.is_finite() {
                return Err(cx.err("celsius", "must be a number (degC)"));
            }
        }
        Ok(CellTemplate { name: name.into(), file: file.into(), y })
    }

    /// The temperature the template asks for, if any.
    pub fn celsius(&self) -> Option<f64> {
        self.y.celsius
    }

    /// Build a cell of this template on `morphology`. Without `detectors`, the spike source follows MiV's
    /// `init_spike_detector`: the first axon segment at least 100 um from the root, else the last axon section's
    /// end, else `ais[0](0.5)`, else the last soma section's middle, with threshold `spike_threshold`.
    pub fn build(&self, morphology: Morphology, catalogue: &Catalogue) -> Result<(CableCell, Vec<String>), ModelError> {
        self.build_with(morphology, catalogue, None)
    }

    /// [`build`](Self::build), with the population's `cell_types.yml` discretisation used when the template
    /// has none (so synapse placement by the construction jobs and simulation see the same segments).
    pub fn build_with(
        &self,
        morphology: Morphology,
        catalogue: &Catalogue,
        fallback: Option<&miv_io::config::Discretization>,
    ) -> Result<(CableCell, Vec<String>), ModelError> {
        let cx = Ctx { file: &self.file };
        let mut morphology = morphology;
        if self.y.swap_xy {
            for sec in &mut morphology.sections {
                if let miv_solvers::Geometry::Points(points) = &mut sec.geometry {
                    points.iter_mut().for_each(|p| std::mem::swap(&mut p.x, &mut p.y));
                }
            }
        }
        let mut cell = CableCell::new(morphology).map_err(|e| cx.err("(morphology)", e.to_string()))?;
        let y = &self.y;
        let from_cell_types = fallback.map(|d| {
            DiscretizationSpec::One(DiscretizationYaml {
                region: None,
                nseg: d.nseg.map(|n| n as usize),
                d_lambda: d.d_lambda,
                frequency: d.frequency,
                ra: d.d_lambda.map(|_| d.ra),
                cm: d.d_lambda.map(|_| d.cm),
            })
        });
        let bio = Biophysics {
            discretization: y.discretization.as_ref().or(from_cell_types.as_ref()),
            properties: &y.properties,
            mechanisms: &y.mechanisms,
            ions: &y.ions,
            point_processes: &y.point_processes,
            detectors: &y.detectors,
        };
        let applied = apply_biophysics(&cx, &mut cell, &bio, catalogue, &[])?;
        if let Some(r) = y.miv_init_cable {
            if !(r.d_lambda > 0.0 && r.frequency > 0.0) {
                return Err(cx.err("miv_init_cable", "d_lambda and frequency must be positive"));
            }
            let comp = cell.compartments();
            let nseg: Vec<usize> = (0..cell.section_count())
                .map(|s| {
                    let sec = comp.sections[s];
                    let n = sec.nseg as usize;
                    let diam = (0..n).map(|j| comp.diam[sec.first as usize + j]).sum::<f64>() / n as f64;
                    let lambda =
                        1e5 * (diam / (4.0 * std::f64::consts::PI * r.frequency * cell.ra[s] * cell.cm[s])).sqrt();
                    ((sec.length / (r.d_lambda * lambda) + 0.9) / 2.0) as usize * 2 + 1
                })
                .collect();
            cell.change_nseg(&nseg);
        }
        if cell.detectors.is_empty() {
            let at = miv_detector_location_with(&cell, y.miv_detector_distance).ok_or_else(|| {
                cx.err(
                    "detectors",
                    "the cell has no axon, ais or soma section for MiV's default spike detector; give `detectors`",
                )
            })?;
            cell.detect(at, y.spike_threshold);
        }
        Ok((cell, applied.point_names))
    }
}

/// MiV's `init_spike_detector` location (see [`CellTemplate::build`]).
pub fn miv_detector_location(cell: &CableCell) -> Option<Location> {
    miv_detector_location_with(cell, false)
}

/// [`miv_detector_location`]; with `miv_distance`, distances as MiV's `get_distance_to_node` computes them:
/// `x L(s)` plus, for every section w on the path from the root to s (s included), the edge's `parent_loc`
/// times L(w), the child's length. MiV's tree stores `parent_loc` 1.0 for every edge (`connect_nodes`'
/// default), so that is `x L(s)` plus the lengths of s and of its ancestors below the root.
pub fn miv_detector_location_with(cell: &CableCell, miv_distance: bool) -> Option<Location> {
    let axons = cell.sections_of_type(swc::AXON);
    if !axons.is_empty() {
        let comp = cell.compartments();
        let secs = &cell.morphology.sections;
        let quirk = |s: usize, x: f64| {
            let mut d = x * secs[s].length();
            let mut w = s;
            while let Some(p) = secs[w].parent {
                d += secs[w].length();
                w = p;
            }
            d
        };
        for &s in &axons {
            let sec = comp.sections[s];
            for j in 0..sec.nseg as usize {
                let node = sec.first as usize + j;
                let d = if miv_distance { quirk(s, comp.x[node]) } else { comp.distance[node] };
                if d >= 100.0 {
                    return Some(Location::new(s, comp.x[node]));
                }
            }
        }
        return Some(Location::new(*axons.last().expect("non-empty"), 1.0));
    }
    if let Some(&s) = cell.sections_of_type(swc::AIS).first() {
        return Some(Location::new(s, 0.5));
    }
    cell.sections_of_type(swc::SOMA).last().map(|&s| Location::new(s, 0.5))
}

/// A probe of a cell from text: `at` is `SECTION(x)`, `variable` is `v`, `i_membrane`, `MECH.VAR` (a density
/// mechanism at that location) or `TARGET.VAR` with TARGET a point-process index (`0.g`).
pub fn probe_spec(cell: &miv_solvers::CellDescription, at: &str, variable: &str) -> Result<ProbeSpec, String> {
    let miv_solvers::CellDescription::Cable(c) = cell else {
        return match variable.split_once('.') {
            Some((_, var)) => Ok(ProbeSpec::TargetState { cell: 0, target: 0, variable: var.into() }),
            None => Err(format!("{variable:?}: an artificial cell has no membrane; probe <target>.<variable>")),
        };
    };
    let cx = Ctx { file: "probe" };
    let location = || parse_location(&cx, c, at, "at").map_err(|e| e.message);
    match variable {
        "v" => Ok(ProbeSpec::Voltage { cell: 0, location: location()? }),
        "i_membrane" => Ok(ProbeSpec::MembraneCurrent { cell: 0, location: location()? }),
        other => {
            let (owner, var) = other
                .split_once('.')
                .ok_or_else(|| format!("{other:?}: expected v, i_membrane, MECH.VAR or TARGET.VAR"))?;
            match owner.parse::<usize>() {
                Ok(t) => Ok(ProbeSpec::TargetState { cell: 0, target: t, variable: var.into() }),
                Err(_) => Ok(ProbeSpec::DensityState {
                    cell: 0,
                    location: location()?,
                    mechanism: owner.into(),
                    variable: var.into(),
                }),
            }
        }
    }
}
