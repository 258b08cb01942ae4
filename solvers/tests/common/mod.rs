//! Helpers for the solvers tests: paths into the repository and (in `cell`, shared with the root's end-to-end
//! tests) reading the NEURON/Arbor reference results.
#![allow(dead_code)]

pub mod cell;

use std::path::{Path, PathBuf};

/// The repository root (the workspace directory holding `Cargo.lock`).
pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().find(|d| d.join("Cargo.lock").exists()).unwrap_or(here).to_path_buf()
}

/// The NEURON 9.0.2 / Arbor 0.12.2 reference results kept in the repository.
pub fn reference_dir() -> PathBuf {
    repo_root().join("tests").join("reference").join("neuron-arbor")
}
