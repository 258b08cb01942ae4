//! Sets of mechanisms by name: miv's standard ones (compiled from the `.mod` sources in
//! `mechanisms/standard`, embedded in the binary) and a user's folder of `.mod` files, read
//! recursively at run time as MiV's `mechanisms_path`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::mechanism::Mechanism;

/// The standard mechanisms, as (file name, NMODL text).
pub const STANDARD_SOURCES: &[(&str, &str)] = &[
    ("hh.mod", include_str!("../../../mechanisms/standard/hh.mod")),
    ("pas.mod", include_str!("../../../mechanisms/standard/pas.mod")),
    ("ExpSyn.mod", include_str!("../../../mechanisms/standard/ExpSyn.mod")),
    ("Exp2Syn.mod", include_str!("../../../mechanisms/standard/Exp2Syn.mod")),
    ("IClamp.mod", include_str!("../../../mechanisms/standard/IClamp.mod")),
    ("NetStim.mod", include_str!("../../../mechanisms/standard/NetStim.mod")),
    ("VecStim.mod", include_str!("../../../mechanisms/standard/VecStim.mod")),
];

#[derive(Debug, Default, Clone)]
pub struct Library {
    mechs: BTreeMap<String, Arc<Mechanism>>,
}

/// Every `.mod` file below `dir`, sorted (so loading is deterministic).
pub fn mod_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| Error::Io { path: d.display().to_string(), source: e })?;
        for e in entries {
            let p = e.map_err(|e| Error::Io { path: d.display().to_string(), source: e })?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "mod") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

impl Library {
    /// pas, hh, ExpSyn, Exp2Syn, IClamp, NetStim, VecStim.
    pub fn standard() -> Result<Library> {
        let mut lib = Library::default();
        for (file, text) in STANDARD_SOURCES {
            let m = Mechanism::compile(text, &format!("<standard>/{file}"))?;
            lib.insert(Arc::new(m))?;
        }
        Ok(lib)
    }

    /// Compile every `.mod` file below `dir`; the first error stops the load.
    pub fn load_dir(dir: &Path) -> Result<Library> {
        let mut lib = Library::default();
        for (_, m) in Self::check_dir(dir)? {
            lib.insert(Arc::new(m?))?;
        }
        Ok(lib)
    }

    /// Compile every `.mod` file below `dir` and report each one (for `miv mech check`).
    pub fn check_dir(dir: &Path) -> Result<Vec<(PathBuf, Result<Mechanism>)>> {
        Ok(mod_files(dir)?
            .into_iter()
            .map(|p| {
                let m = Mechanism::load(&p);
                (p, m)
            })
            .collect())
    }

    pub fn insert(&mut self, m: Arc<Mechanism>) -> Result<()> {
        if let Some(old) = self.mechs.get(m.name()) {
            return Err(Error::Duplicate {
                name: m.name().to_string(),
                first: old.info().file.clone(),
                second: m.info().file.clone(),
            });
        }
        self.mechs.insert(m.name().to_string(), m);
        Ok(())
    }

    /// Add `other`'s mechanisms, replacing ours of the same name (a user's folder overrides the
    /// standard set).
    pub fn overlay(&mut self, other: Library) {
        self.mechs.extend(other.mechs);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Mechanism>> {
        self.mechs.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.mechs.keys().map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Mechanism>> {
        self.mechs.values()
    }

    pub fn len(&self) -> usize {
        self.mechs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.mechs.is_empty()
    }
}
