//! Helpers shared by the io tests (here and, through `#[path]`, the root's end-to-end io tests): the DOMAIN A.7
//! worked example built through the public API, a small deterministic generator, the h5py interpreter of
//! `.venv-test`, and paths into the repository.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use miv_io::{CellAttributes, H5Types, NeuroH5File, NodeBase, PopulationRanges, Projection, Tree, WriteOptions};
use miv_partition::SerialComm;

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

/// Call first in every test that opens HDF5 files in-process and also starts processes. HDF5 locks files
/// with flock on an fd that child processes inherit; a child started by one test thread while another
/// thread has a file open keeps that lock alive after the parent closed the file, and the next process to
/// open the file fails with "unable to lock file". The tests therefore turn HDF5 file locking off for
/// themselves and their children.
pub fn no_file_locking() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::env::set_var("HDF5_USE_FILE_LOCKING", "FALSE"));
}

/// The network of DOMAIN A.7: populations A (enum 0, 3 cells) and B (enum 1, 2 cells), projection A -> B.
pub fn a7_types() -> H5Types {
    H5Types {
        populations: PopulationRanges::from_counts(&[("A", 0, 3), ("B", 1, 2)]).unwrap(),
        projections: vec![("A".into(), "B".into())],
    }
}

/// The 4-point morphology of A.7: p0 soma (root), p1 soma, p2 and p3 basal children of p1.
pub fn a7_tree() -> Tree {
    Tree::from_points(
        vec![0.0, 0.0, 5.0, -5.0],
        vec![0.0, 10.0, 15.0, 15.0],
        vec![0.0; 4],
        vec![5.0, 5.0, 1.0, 1.0],
        vec![-1; 4],
        vec![-1, 0, 1, 1],
        vec![1, 1, 3, 3],
    )
    .unwrap()
}

/// Write the whole A.7 example with our API (one process).
pub fn write_a7(path: &Path) {
    no_file_locking();
    let comm = SerialComm;
    let f = NeuroH5File::create(path, &comm).unwrap();
    f.write_h5types(&a7_types()).unwrap();
    let opts = WriteOptions::default();
    let mut xyz = CellAttributes::new();
    xyz.push("X Coordinate", 3, &[12.5f32]).unwrap();
    xyz.push("X Coordinate", 4, &[80.0f32]).unwrap();
    f.append_cell_attributes("B", "Generated Coordinates", &xyz, &opts).unwrap();
    let mut syn = CellAttributes::new();
    syn.push("syn_ids", 3, &[0u32, 1, 2]).unwrap();
    syn.push("syn_ids", 4, &[0u32, 1]).unwrap();
    syn.push("syn_secs", 3, &[0u32, 1, 2]).unwrap();
    syn.push("syn_secs", 4, &[1u32, 2]).unwrap();
    syn.push("syn_locs", 3, &[0.5f32, 0.25, 0.75]).unwrap();
    syn.push("syn_locs", 4, &[0.5f32, 0.5]).unwrap();
    f.append_cell_attributes("B", "Synapse Attributes", &syn, &opts).unwrap();
    // Not part of A.7: Arc Distances with the group attributes measure_distances sets (A.5).
    let mut arc = CellAttributes::new();
    arc.push("U Distance", 3, &[-10.5f32]).unwrap();
    arc.push("U Distance", 4, &[30.0f32]).unwrap();
    arc.push("V Distance", 3, &[2.0f32]).unwrap();
    arc.push("V Distance", 4, &[-4.0f32]).unwrap();
    f.append_cell_attributes("B", "Arc Distances", &arc, &opts).unwrap();
    for (name, v) in [
        ("Reference U Min", -250.0),
        ("Reference U Max", 250.0),
        ("Reference V Min", -125.5),
        ("Reference V Max", 125.5),
    ] {
        f.set_namespace_attribute("B", "Arc Distances", name, v).unwrap();
    }
    let t = a7_tree();
    // DOMAIN A.7 states the 0-based `Section` encoding (MiV's files, neuroh5 4937699).
    f.append_trees_in("B", [(3u64, &t), (4u64, &t)], NodeBase::Zero, &opts).unwrap();
    let r = f.population_ranges().unwrap();
    let mut p = Projection::new(r.get("A").unwrap(), r.get("B").unwrap());
    p.push(3, &[2, 0]).unwrap();
    p.attr_mut::<u32>("Synapses", "syn_id").unwrap().extend([1, 0]);
    p.attr_mut::<f32>("Connections", "distance").unwrap().extend([40.0, 55.0]);
    p.push(4, &[1]).unwrap();
    p.attr_mut::<u32>("Synapses", "syn_id").unwrap().push(1);
    p.attr_mut::<f32>("Connections", "distance").unwrap().push(20.0);
    f.append_projection(&p, &opts).unwrap();
    f.finish().unwrap();
}

/// The Python of `.venv-test` (made by `scripts/setup --python`, which `make test` runs), or `MIV_PYTHON`.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("MIV_PYTHON") {
        return PathBuf::from(p);
    }
    let p = paths::workspace_root().join(".venv-test/bin/python");
    assert!(p.exists(), "{} is missing: run scripts/setup --python (make test does) or set MIV_PYTHON", p.display());
    p
}

/// Run a Python script (h5py available) with arguments; panics with its output unless it exits 0.
pub fn run_python(script: &str, args: &[&str]) -> String {
    no_file_locking();
    let out = Command::new(python()).arg("-c").arg(script).args(args).output().expect("run python");
    assert!(
        out.status.success(),
        "python failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A deterministic random stream for test data (the one every miv component uses).
pub fn gen(seed: u64) -> miv_partition::Stream {
    miv_partition::Stream::new(seed, miv_partition::Purpose::named("io tests"), 0)
}
