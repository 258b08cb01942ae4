//! miv's files as `miv build` writes them by default (Fletcher-32 on every chunked dataset) read by neuroh5's
//! own Python readers: the small network of `tests/reference/miv` (0-based trees, `tree_base: 0`, what neuroh5
//! 4937699 reads) is built, h5py confirms the checksum filter on every chunked dataset, and
//! `tests/reference/neuroh5/crosscheck.py` reads `cells.h5` (cell attributes, trees) and `connections.h5` (every
//! projection with `Synapses` and `Connections`) with neuroh5 and compares them value by value with
//! `miv h5 selftest export` (docs/io.md, "Compatibility with neuroh5").
//! Local only: MIV_NEUROH5_PYTHON names a Python with `neuroh5.io`, h5py and mpi4py (the venv of
//! `bench/miv-reference/install.sh`, e.g. /work/miv-ref/venv/bin/python); without it the test says that it
//! skipped. It takes minutes (millions of values and 608,713 edges compared in Python).

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// Run `python ARGS`; panic with its output unless it exits 0. Returns stdout.
fn python(py: &str, args: &[&str]) -> String {
    let out = Command::new(py).args(args).output().unwrap_or_else(|e| panic!("{py}: {e}"));
    let (so, se) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{py} {args:?} failed:\nstdout:\n{so}\nstderr:\n{se}");
    so.into_owned()
}

/// Every chunked dataset of `file` outside `/H5Types` carries Fletcher-32 (h5py); returns how many there are.
/// The small `/H5Types` tables are written by one rank of a parallel file, which filters forbid
/// (docs/reliability.md).
fn checksummed_datasets(py: &str, file: &Path) -> usize {
    let script = "import sys, h5py\n\
        n, bad = 0, []\n\
        def visit(name, obj):\n\
        \x20   global n\n\
        \x20   if isinstance(obj, h5py.Dataset) and obj.chunks is not None and not name.startswith('H5Types/'):\n\
        \x20       n += 1\n\
        \x20       if not obj.fletcher32: bad.append(name)\n\
        h5py.File(sys.argv[1], 'r').visititems(visit)\n\
        print(n, len(bad), bad[:5])\n";
    let out = python(py, &["-c", script, file.to_str().unwrap()]);
    let mut words = out.split_whitespace();
    let n: usize = words.next().unwrap().parse().unwrap();
    assert_eq!(words.next(), Some("0"), "{}: chunked datasets without Fletcher-32: {out}", file.display());
    n
}

#[test]
fn neuroh5_reads_checksummed_files_miv_builds() {
    let Ok(py) = std::env::var("MIV_NEUROH5_PYTHON") else {
        eprintln!("skipped: set MIV_NEUROH5_PYTHON to a Python with neuroh5.io (bench/miv-reference/install.sh)");
        return;
    };
    let dir = scratch("io_neuroh5_reads_miv");
    let examples = repo_root().join("examples").display().to_string();
    let net = std::fs::read_to_string(repo_root().join("tests/reference/miv/network.yaml")).unwrap();
    std::fs::write(dir.join("network.yaml"), net.replace("../../../examples", &examples)).unwrap();
    let store = dir.join("store");
    miv(&["-q", "build", dir.join("network.yaml").to_str().unwrap(), "--store", store.to_str().unwrap()])
        .expect_ok("miv build of the small network");
    let graph = std::fs::read_dir(store.join("neuroh5_graph"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("connections.h5").is_file())
        .expect("the neuroh5_graph job of the build");
    let crosscheck = repo_root().join("tests/reference/neuroh5/crosscheck.py");
    for file in [graph.join("cells.h5"), graph.join("connections.h5")] {
        let n = checksummed_datasets(&py, &file);
        assert!(n > 0, "{}: no chunked datasets", file.display());
        let f = file.to_str().unwrap();
        let export = miv(&["h5", "selftest", "export", f, "--mode", "all"]).expect_ok("selftest export");
        let json = dir.join(format!("{}.miv.json", file.file_name().unwrap().to_str().unwrap()));
        std::fs::write(&json, export.stdout).unwrap();
        let out = python(&py, &[crosscheck.to_str().unwrap(), json.to_str().unwrap(), f]);
        eprintln!("{n} chunked datasets, all with Fletcher-32\n{out}");
        assert!(out.trim_end().ends_with("agree"), "{}: neuroh5 read something else:\n{out}", file.display());
        assert!(!out.contains("DIFFERENT"), "{out}");
    }
}
