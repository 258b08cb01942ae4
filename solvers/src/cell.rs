//! What one cell is, independent of how it will be simulated: a cable cell (morphology, discretisation,
//! passive properties, mechanisms placed per section or at points, ion settings, spike detectors) or an
//! artificial cell (one ARTIFICIAL_CELL mechanism). A [`crate::CellGroup`] is built from a list of these.

use crate::compartments::Compartments;
use crate::error::MorphologyError;
use crate::morphology::Morphology;

/// NEURON's default axial resistivity (ohm cm) and membrane capacitance (uF/cm2), miv-config's constants.
pub use miv_config::{DEFAULT_CM, DEFAULT_RA};

/// A point on a section: arc position `x` in 0..=1 (NEURON's `sec(x)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Location {
    pub section: usize,
    pub x: f64,
}

impl Location {
    pub fn new(section: usize, x: f64) -> Location {
        Location { section, x }
    }
}

/// The value of a density-mechanism parameter over the segments of a section.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Uniform(f64),
    /// One value per segment, segment 0 nearest the section's 0-end (length must equal the section's nseg).
    PerSegment(Vec<f64>),
}

impl Values {
    pub fn at(&self, segment: usize) -> f64 {
        match self {
            Values::Uniform(v) => *v,
            Values::PerSegment(v) => v[segment],
        }
    }
}

/// A density mechanism inserted in one section; parameters not listed keep their defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct DensityPlacement {
    pub section: usize,
    pub mechanism: String,
    pub params: Vec<(String, Values)>,
}

/// A point process at one location; it becomes a target for events (in placement order).
#[derive(Debug, Clone, PartialEq)]
pub struct PointPlacement {
    pub location: Location,
    pub mechanism: String,
    pub params: Vec<(String, f64)>,
}

/// Ion values for the nodes of one section (unset fields keep the species defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct IonSetting {
    pub section: usize,
    pub ion: String,
    pub erev: Option<f64>,
    pub conc_in: Option<f64>,
    pub conc_out: Option<f64>,
}

/// A spike detector watching v at a location (NEURON's `NetCon(sec(x)._ref_v, ...)` with a threshold).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detector {
    pub location: Location,
    pub threshold: f64,
}

/// A cell with a morphology.
#[derive(Debug, Clone, PartialEq)]
pub struct CableCell {
    pub morphology: Morphology,
    /// Segments per section.
    pub nseg: Vec<usize>,
    /// Axial resistivity per section (ohm cm).
    pub ra: Vec<f64>,
    /// Membrane capacitance per section (uF/cm2).
    pub cm: Vec<f64>,
    pub density: Vec<DensityPlacement>,
    pub points: Vec<PointPlacement>,
    pub ions: Vec<IonSetting>,
    pub detectors: Vec<Detector>,
}

impl CableCell {
    /// A cell with NEURON's defaults: nseg 1, Ra 35.4, cm 1, no mechanisms. The morphology is validated.
    pub fn new(morphology: Morphology) -> Result<CableCell, MorphologyError> {
        morphology.validate()?;
        let n = morphology.sections.len();
        Ok(CableCell {
            morphology,
            nseg: vec![1; n],
            ra: vec![DEFAULT_RA; n],
            cm: vec![DEFAULT_CM; n],
            density: vec![],
            points: vec![],
            ions: vec![],
            detectors: vec![],
        })
    }

    pub fn section_count(&self) -> usize {
        self.morphology.sections.len()
    }

    /// Indices of the sections whose SWC type is `t`.
    pub fn sections_of_type(&self, t: i32) -> Vec<usize> {
        (0..self.section_count()).filter(|&s| self.morphology.sections[s].swc_type == t).collect()
    }

    /// Change the sections' nseg as NEURON does when `nseg` is assigned after mechanisms are inserted: each new
    /// segment `i` of `n` takes the range values of old segment `floor(n_old (i + 1/2) / n)` (the one holding
    /// its centre). Point processes and detectors keep their `x`.
    pub fn change_nseg(&mut self, nseg: &[usize]) {
        assert_eq!(nseg.len(), self.nseg.len());
        for d in &mut self.density {
            let (old, new) = (self.nseg[d.section], nseg[d.section]);
            if old == new {
                continue;
            }
            for (_, v) in &mut d.params {
                if let Values::PerSegment(vals) = v {
                    *vals = (0..new)
                        .map(|i| vals[(((i as f64 + 0.5) / new as f64 * old as f64) as usize).min(old - 1)])
                        .collect();
                }
            }
        }
        self.nseg = nseg.to_vec();
    }

    /// Insert a density mechanism with uniform parameter values.
    pub fn insert(&mut self, section: usize, mechanism: &str, params: &[(&str, f64)]) {
        let params = params.iter().map(|(k, v)| (k.to_string(), Values::Uniform(*v))).collect();
        self.density.push(DensityPlacement { section, mechanism: mechanism.into(), params });
    }

    /// Place a point process; returns its target index within the cell.
    pub fn place(&mut self, location: Location, mechanism: &str, params: &[(&str, f64)]) -> usize {
        let params = params.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        self.points.push(PointPlacement { location, mechanism: mechanism.into(), params });
        self.points.len() - 1
    }

    /// Add a spike detector; returns its source index within the cell.
    pub fn detect(&mut self, location: Location, threshold: f64) -> usize {
        self.detectors.push(Detector { location, threshold });
        self.detectors.len() - 1
    }

    /// Set an ion's reversal potential in one section.
    pub fn set_erev(&mut self, section: usize, ion: &str, erev: f64) {
        self.ions.push(IonSetting { section, ion: ion.into(), erev: Some(erev), conc_in: None, conc_out: None });
    }

    /// The discretised geometry (node areas, positions, path distances), e.g. to compute per-segment values.
    pub fn compartments(&self) -> Compartments {
        Compartments::build(&self.morphology, &self.nseg, &self.ra)
    }
}

/// A cell that is one ARTIFICIAL_CELL mechanism instance (e.g. `NetStim`, `VecStim`).
#[derive(Debug, Clone, PartialEq)]
pub struct ArtificialCell {
    pub mechanism: String,
    pub params: Vec<(String, f64)>,
    /// Named arrays, e.g. ("times", spike times) for `VecStim`.
    pub arrays: Vec<(String, Vec<f64>)>,
}

impl ArtificialCell {
    pub fn new(mechanism: &str, params: &[(&str, f64)]) -> ArtificialCell {
        ArtificialCell {
            mechanism: mechanism.into(),
            params: params.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            arrays: vec![],
        }
    }

    /// A `VecStim` playing `times`.
    pub fn vecstim(times: Vec<f64>) -> ArtificialCell {
        ArtificialCell { mechanism: "VecStim".into(), params: vec![], arrays: vec![("times".into(), times)] }
    }
}

/// One cell of a group.
#[derive(Debug, Clone, PartialEq)]
pub enum CellDescription {
    Cable(CableCell),
    Artificial(ArtificialCell),
}

impl From<CableCell> for CellDescription {
    fn from(c: CableCell) -> CellDescription {
        CellDescription::Cable(c)
    }
}

impl From<ArtificialCell> for CellDescription {
    fn from(c: ArtificialCell) -> CellDescription {
        CellDescription::Artificial(c)
    }
}
