//! The mechanisms every run has: the solvers' built-in kernels, MiV's synapse mechanisms (`LinExp2Syn`,
//! `LinExp2SynNMDA`, compiled from the `.mod` sources in `mechanisms/miv`, embedded in the binary) and the
//! user's `mechanisms` folder, whose mechanisms replace any of the same name.

use std::path::Path;
use std::sync::Arc;

use miv_nmodl::{Library, Mechanism};
use miv_solvers::Catalogue;

use crate::error::EngineError;

/// MiV's synapses as (file name, NMODL text).
pub const MIV_SOURCES: &[(&str, &str)] = &[
    ("LinExp2Syn.mod", include_str!("../../mechanisms/miv/LinExp2Syn.mod")),
    ("LinExp2SynNMDA.mod", include_str!("../../mechanisms/miv/LinExp2SynNMDA.mod")),
];

/// MiV's synapse mechanisms, compiled.
pub fn miv_library() -> Result<Library, EngineError> {
    let mut lib = Library::default();
    for (file, text) in MIV_SOURCES {
        let m = Mechanism::compile(text, &format!("<miv>/{file}")).map_err(|e| EngineError::Network(e.to_string()))?;
        lib.insert(Arc::new(m)).map_err(|e| EngineError::Network(e.to_string()))?;
    }
    Ok(lib)
}

/// Built-ins, MiV's synapses and, when given, every `.mod` file below `folder` (read at run time: no compile
/// step, no C compiler).
pub fn catalogue(folder: Option<&Path>) -> Result<Catalogue, EngineError> {
    let mut lib = miv_library()?;
    if let Some(dir) = folder {
        let user = Library::load_dir(dir)
            .map_err(|e| EngineError::Network(format!("mechanisms folder {}: {e}", dir.display())))?;
        lib.overlay(user);
    }
    let mut c = Catalogue::builtin();
    miv_nmodl::adapter::register(&mut c, &lib);
    Ok(c)
}
