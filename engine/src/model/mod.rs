//! Cell models in YAML, built into cells: single-cell models (`miv cell`, docs/cell-yaml.md) and network cell
//! templates (`miv run`, docs/templates.md), whose schema is `miv_config::model`.
//!
//! Both describe a cable cell's biophysics the same way: discretisation, passive properties, density
//! mechanisms, ions, point processes and spike detectors, each applied to regions of sections (section types or
//! names). A single-cell model adds a morphology, the simulation settings and probes; a template is applied to
//! the morphology of every cell of a population (read from NeuroH5 `Trees`), replacing MiV's hoc templates.
//! Every error names the file and the YAML key at fault.

use std::path::Path;

use miv_solvers::cell::{DensityPlacement, IonSetting, PointPlacement};
use miv_solvers::compartments::{nseg_d_lambda, Compartments};
use miv_solvers::morphology::swc;
use miv_solvers::{
    CableCell, Catalogue, Location, MechanismKind, Morphology, MorphologyError, Point3, ProbeSpec, Section, SimOptions,
    TreePoint, Values,
};

use crate::expr::Expr;

/// A model error: the file, the YAML key and what was expected.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {key}: {message}")]
pub struct ModelError {
    pub file: String,
    pub key: String,
    pub message: String,
}

mod cell;
mod morphology;
mod paint;
mod template;

use miv_config::model::*;
use morphology::*;
use paint::*;

/// The most segments a section may have (NEURON's limit), so a typo cannot ask for terabytes.
pub const MAX_NSEG: usize = 32767;

pub use cell::{load_model, parse_model, CellModel, EventTrain};
pub use morphology::morphology_from_tree;
pub use paint::probe_spec;
pub use template::{miv_detector_location, miv_detector_location_with, CellTemplate};

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

    /// Parse YAML text with miv-config's loader, whose errors name the key path (`(document)` for the whole).
    fn parse_yaml<T: serde::de::DeserializeOwned>(&self, text: &str) -> Result<T, ModelError> {
        miv_config::from_yaml_str(text, Path::new(self.file)).map_err(|e| {
            let key = if e.key.is_empty() { "(document)".to_string() } else { e.key };
            self.err(key, e.message)
        })
    }
}
