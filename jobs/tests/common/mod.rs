//! Helpers for the construction-job tests (here and, through `#[path]`, the root's end-to-end jobs tests):
//! small networks made from the rc example, and paths into the repository.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Paths into the repository, for the tests of this crate (the root's tests have their own in `tests/common`).
pub mod paths {
    use std::path::{Path, PathBuf};

    /// The repository root (the workspace directory holding `Cargo.lock`), whichever crate's tests include this.
    pub fn workspace_root() -> PathBuf {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        here.ancestors().find(|d| d.join("Cargo.lock").exists()).unwrap_or(here).to_path_buf()
    }

    /// The SWC morphologies shipped with the examples (MiV-Simulator's PYR, PVBC and OLM).
    pub fn morphology_dir() -> PathBuf {
        workspace_root().join("examples").join("morphology")
    }

    /// A fresh, empty scratch directory under the target directory for one test.
    pub fn scratch(name: &str) -> PathBuf {
        let d = workspace_root().join("target").join("test-scratch").join(name);
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("create scratch dir");
        d
    }
}

pub fn example_dir() -> PathBuf {
    paths::workspace_root().join("examples").join("rc-network")
}

/// A network YAML in `dir`: the rc example with other cell counts (`{STIM: {SP: 16}, ...}` as YAML) and seed.
pub fn network_yaml(dir: &Path, distributions: &str, seed: u64) -> PathBuf {
    let ex = example_dir();
    let example = std::fs::read_to_string(ex.join("network.yaml")).unwrap();
    let mut out = String::new();
    let mut skip = false;
    for line in example.lines() {
        // Replace the example's cell_distributions block; keep everything else.
        if line.starts_with("cell_distributions:") {
            out.push_str(&format!("cell_distributions: {distributions}\n"));
            skip = true;
            continue;
        }
        if skip && line.starts_with("  ") {
            continue;
        }
        skip = false;
        let line = match line {
            l if l.starts_with("seed:") => format!("seed: {seed}"),
            l if l.starts_with("cell_types:") => format!("cell_types: {}", ex.join("cell_types.yml").display()),
            l if l.starts_with("synapses:") => format!("synapses: {}", ex.join("synapses.yml").display()),
            l if l.starts_with("morphology:") => format!("morphology: {}", paths::morphology_dir().display()),
            l => l.to_string(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    let p = dir.join("network.yaml");
    std::fs::write(&p, out).unwrap();
    p
}

/// A small network that builds in a second or two: 16 STIM, 8 PYR, 10 PVBC, 12 OLM.
pub const SMALL: &str = "{STIM: {SP: 16}, PYR: {SP: 8}, PVBC: {SO: 4, SP: 4, SR: 2}, OLM: {SO: 12}}";
