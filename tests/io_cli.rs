//! `miv h5 ls/dump/edges/import-swc` on real files: the A.7 example, the synthetic network (compared with an
//! independent h5py reader), SWC import, and malformed files reported with the HDF5 path.

mod common;
#[path = "../io/tests/common/mod.rs"]
mod io_common;

use std::path::Path;

use common::*;
use io_common::*;
use serde_json::{json, Value};

fn lines(o: &Outcome) -> Vec<Value> {
    json_lines(&o.stdout)
}

fn py_lines(args: &[&str]) -> Vec<Value> {
    let script = std::fs::read_to_string(repo_root().join("tests/io_py/reconstruct.py")).expect("reconstruct.py");
    json_lines(&run_python(&script, args))
}

#[test]
fn ls_dump_and_edges_on_the_a7_example() {
    no_file_locking();
    let dir = scratch("io_cli_a7");
    let path = dir.join("a7.h5");
    write_a7(&path);
    let p = path.to_str().unwrap();
    let o = miv(&["h5", "ls", p, "--json"]).expect_ok("h5 ls");
    let doc: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(doc["populations"][0], json!({"name": "A", "index": 0, "start": 0, "count": 3, "namespaces": []}));
    let b = &doc["populations"][1];
    assert_eq!((b["name"].as_str(), b["start"].as_u64(), b["count"].as_u64()), (Some("B"), Some(3), Some(2)));
    let nss: Vec<&str> = b["namespaces"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(nss, vec!["Arc Distances", "Generated Coordinates", "Synapse Attributes", "Trees"]);
    assert_eq!(b["namespaces"][0]["group_attributes"]["Reference V Min"], -125.5);
    let syn = &b["namespaces"][2]["attributes"];
    assert_eq!(syn[0], json!({"name": "syn_ids", "dtype": "uint32", "cells": 2, "values": 5}));
    let trees = b["namespaces"][3]["attributes"].as_array().unwrap();
    let sec = trees.iter().find(|a| a["name"] == "Section").unwrap();
    assert_eq!(sec["dtype"], "uint16");
    assert_eq!(sec["values"], 20);
    assert_eq!(doc["projections"][0]["edges"], 3);
    assert_eq!(doc["projections"][0]["destinations"], 2);
    assert_eq!(doc["valid_projections"], json!([["A", "B"]]));
    let text = miv(&["h5", "ls", p]).expect_ok("h5 ls text");
    assert!(text.stdout.contains("B") && text.stdout.contains("gids 3..4 (2 cells)"), "{}", text.stdout);

    let o = miv(&["h5", "dump", p, "--population", "B", "--namespace", "Generated Coordinates", "--json"])
        .expect_ok("h5 dump");
    assert_eq!(
        lines(&o),
        vec![
            json!({"gid": 3, "attributes": {"X Coordinate": [12.5]}}),
            json!({"gid": 4, "attributes": {"X Coordinate": [80.0]}})
        ]
    );
    let o = miv(&["h5", "dump", p, "--population", "B", "--namespace", "Synapse Attributes", "--gid", "4", "--json"])
        .expect_ok("h5 dump gid");
    assert_eq!(lines(&o)[0]["attributes"]["syn_ids"], json!([0, 1]));
    // A gid outside the population is an error, not an empty listing.
    for args in [
        &["h5", "dump", p, "--population", "B", "--namespace", "Synapse Attributes", "--gid", "99999"][..],
        &["h5", "edges", p, "--projection", "A:B", "--gid", "0"][..],
    ] {
        let o = miv(args);
        assert!(!o.ok() && o.stderr.contains("not a cell of population B (gids 3..4)"), "{args:?}: {}", o.stderr);
    }
    let o = miv(&["h5", "edges", p, "--projection", "A:B", "--json"]).expect_ok("h5 edges");
    assert_eq!(
        lines(&o),
        vec![
            json!({"destination": 3, "sources": [0, 2], "attributes": {"Connections/distance": [55.0, 40.0], "Synapses/syn_id": [0, 1]}}),
            json!({"destination": 4, "sources": [1], "attributes": {"Connections/distance": [20.0], "Synapses/syn_id": [1]}}),
        ]
    );
}

#[test]
fn dump_and_edges_agree_with_an_independent_h5py_reader() {
    no_file_locking();
    let dir = scratch("io_cli_synth");
    let path = dir.join("synth.h5");
    let p = path.to_str().unwrap();
    miv(&["h5", "selftest", "write", p, "--block-size", "5"]).expect_ok("selftest write");
    for (pop, ns) in
        [("PYR", "Mixed"), ("OLM", "Mixed"), ("OLM", "Trees"), ("STIM", "Generated Coordinates"), ("STIM", "Empty")]
    {
        let ours = lines(&miv(&["h5", "dump", p, "--population", pop, "--namespace", ns, "--json"]).expect_ok("dump"));
        let theirs = py_lines(&[p, "cells", pop, ns]);
        assert_eq!(ours, theirs, "{pop}/{ns}");
        if ns != "Empty" {
            assert!(!ours.is_empty(), "{pop}/{ns} has cells");
        }
    }
    for (src, dst) in [("STIM", "PYR"), ("PYR", "PYR"), ("OLM", "PYR"), ("PYR", "OLM")] {
        let ours =
            lines(&miv(&["h5", "edges", p, "--projection", &format!("{src}:{dst}"), "--json"]).expect_ok("edges"));
        let theirs = py_lines(&[p, "edges", src, dst]);
        assert!(!ours.is_empty());
        assert_eq!(ours, theirs, "{src} -> {dst}");
    }
}

#[test]
fn import_swc_stores_a_tree_for_one_gid_or_the_whole_population() {
    no_file_locking();
    let dir = scratch("io_cli_swc");
    let a7 = dir.join("a7.h5");
    write_a7(&a7);
    let swc = morphology_dir().join("PVBC.swc");
    let one = dir.join("one.h5");
    miv(&[
        "h5",
        "import-swc",
        swc.to_str().unwrap(),
        "--file",
        one.to_str().unwrap(),
        "--h5types",
        a7.to_str().unwrap(),
        "--population",
        "B",
    ])
    .expect_ok("import one");
    let all = dir.join("all.h5");
    miv(&[
        "h5",
        "import-swc",
        swc.to_str().unwrap(),
        "--file",
        all.to_str().unwrap(),
        "--h5types",
        a7.to_str().unwrap(),
        "--population",
        "B",
        "--fill",
    ])
    .expect_ok("import fill");
    for (f, gids) in [(&one, vec![3u64]), (&all, vec![3, 4])] {
        let o = miv(&["h5", "dump", f.to_str().unwrap(), "--population", "B", "--namespace", "Trees", "--json"])
            .expect_ok("dump trees");
        let cells = lines(&o);
        assert_eq!(cells.iter().map(|c| c["gid"].as_u64().unwrap()).collect::<Vec<_>>(), gids);
        for c in &cells {
            assert_eq!(
                c["attributes"]["X Coordinate"].as_array().unwrap().len(),
                1820,
                "PVBC has 1820 points (DOMAIN D.1)"
            );
            assert_eq!(c["attributes"]["Section"][0], 5, "PVBC has 5 sections (DOMAIN D.1)");
        }
    }
    // Appending to an existing file (no --h5types) adds to its Trees.
    miv(&[
        "h5",
        "import-swc",
        swc.to_str().unwrap(),
        "--file",
        one.to_str().unwrap(),
        "--population",
        "B",
        "--gid",
        "4",
    ])
    .expect_ok("append");
    let o = miv(&["h5", "ls", one.to_str().unwrap(), "--json"]).expect_ok("ls");
    let doc: Value = serde_json::from_str(&o.stdout).unwrap();
    let trees = doc["populations"][1]["namespaces"].as_array().unwrap().iter().find(|n| n["name"] == "Trees").unwrap();
    assert!(trees["attributes"].as_array().unwrap().iter().all(|a| a["cells"] == 2));
}

fn corrupt(path: &Path, code: &str) {
    run_python(
        &format!("import sys, h5py, numpy as np\nf = h5py.File(sys.argv[1], 'a')\n{code}\nf.close()"),
        &[path.to_str().unwrap()],
    );
}

/// Run `miv` on a broken file: it must fail (not panic) with one line naming the file, the HDF5 path and
/// what was wrong.
fn fails_with(args: &[&str], needles: &[&str]) {
    let o = miv(args);
    assert_eq!(o.code, Some(1), "{args:?} should fail:\n{}\n{}", o.stdout, o.stderr);
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
    for n in needles {
        assert!(o.stderr.contains(n), "{args:?}: stderr lacks {n:?}:\n{}", o.stderr);
    }
}

#[test]
fn malformed_files_are_reported_with_the_hdf5_path() {
    no_file_locking();
    let dir = scratch("io_cli_bad");
    let good = dir.join("good.h5");
    write_a7(&good);
    let copy = |name: &str| {
        let p = dir.join(name);
        std::fs::copy(&good, &p).unwrap();
        p
    };
    let g = good.to_str().unwrap();
    fails_with(
        &["h5", "dump", g, "--population", "B", "--namespace", "No Such"],
        &["good.h5", "/Populations/B/No Such", "missing"],
    );
    fails_with(&["h5", "dump", g, "--population", "Z", "--namespace", "Trees"], &["no population named \"Z\""]);
    fails_with(&["h5", "edges", g, "--projection", "B:A"], &["/Projections/A/B", "missing"]);

    let p = copy("wrong_dtype.h5");
    corrupt(&p, "g = f['/Populations/B/Generated Coordinates/X Coordinate']\ndel g['Cell Index']\ng['Cell Index'] = np.array([0.0, 1.0], dtype=np.float32)");
    fails_with(
        &["h5", "dump", p.to_str().unwrap(), "--population", "B", "--namespace", "Generated Coordinates"],
        &["/Populations/B/Generated Coordinates/X Coordinate/Cell Index", "expected uint32, found float32"],
    );

    let p = copy("past_end.h5");
    corrupt(&p, "f['/Populations/B/Synapse Attributes/syn_ids/Attribute Pointer'][2] = 9");
    fails_with(
        &["h5", "dump", p.to_str().unwrap(), "--population", "B", "--namespace", "Synapse Attributes"],
        &["/Populations/B/Synapse Attributes/syn_ids/Attribute Pointer", "past the end"],
    );

    let p = copy("short_pointer.h5");
    corrupt(&p, "g = f['/Populations/B/Synapse Attributes/syn_secs']\ndel g['Attribute Pointer']\ng['Attribute Pointer'] = np.array([0, 3], dtype=np.uint64)");
    fails_with(
        &["h5", "dump", p.to_str().unwrap(), "--population", "B", "--namespace", "Synapse Attributes"],
        &["/Populations/B/Synapse Attributes/syn_secs/Attribute Pointer", "has 2 entries"],
    );

    let p = copy("bad_blocks.h5");
    corrupt(&p, "f['/Projections/B/A/Edges/Destination Block Pointer'][1] = 7");
    fails_with(
        &["h5", "edges", p.to_str().unwrap(), "--projection", "A:B"],
        &["/Projections/B/A/Edges/Destination Block Pointer"],
    );

    let p = copy("bad_source.h5");
    corrupt(&p, "f['/Projections/B/A/Edges/Source Index'][1] = 3");
    fails_with(
        &["h5", "edges", p.to_str().unwrap(), "--projection", "A:B"],
        &["/Projections/B/A/Edges/Source Index", "outside population A"],
    );

    let p = copy("no_types.h5");
    corrupt(&p, "del f['/H5Types/Population labels']");
    fails_with(&["h5", "ls", p.to_str().unwrap()], &["/H5Types/Population labels", "missing"]);

    let p = dir.join("truncated.h5");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    fails_with(&["h5", "ls", p.to_str().unwrap()], &["truncated.h5", "open file failed"]);
    fails_with(&["h5", "ls", dir.join("absent.h5").to_str().unwrap()], &["absent.h5", "no such file"]);
}

/// `dump --topology` shows 0-based section point lists whichever base the file stores: the A.7 example
/// (0-based, as DOMAIN A.7 states it) and the same trees written in the default base (1-based).
#[test]
fn dump_topology_shows_0_based_sections_in_either_base() {
    no_file_locking();
    let dir = scratch("io_cli_topology");
    let zero = dir.join("a7.h5");
    write_a7(&zero);
    let one = dir.join("one.h5");
    {
        let comm = miv_partition::SerialComm;
        let f = miv_io::NeuroH5File::create(&one, &comm).unwrap();
        f.write_h5types(&a7_types()).unwrap();
        let t = a7_tree();
        f.append_trees("B", [(3u64, &t), (4u64, &t)], &miv_io::WriteOptions::default()).unwrap();
        f.finish().unwrap();
    }
    for (path, base) in [(&zero, 0), (&one, 1)] {
        let p = path.to_str().unwrap();
        let raw = miv(&["h5", "dump", p, "--population", "B", "--namespace", "Trees", "--gid", "3", "--json"])
            .expect_ok("h5 dump Trees");
        let stored = &lines(&raw)[0]["attributes"]["Section"];
        assert_eq!(stored[2], json!(base), "{p}: first stored node id");
        let o = miv(&["h5", "dump", p, "--population", "B", "--namespace", "Trees", "--topology", "--json"])
            .expect_ok("h5 dump --topology");
        let want = |g: u64| json!({"gid": g, "sections": [[0, 1], [1, 2], [1, 3]], "src": [0, 0], "dst": [1, 2], "stored_base": base});
        assert_eq!(lines(&o), vec![want(3), want(4)], "{p}");
        let text = miv(&["h5", "dump", p, "--population", "B", "--namespace", "Trees", "--topology"])
            .expect_ok("h5 dump --topology text");
        assert!(text.stdout.contains("section 2: [1, 3]"), "{}", text.stdout);
    }
    let o = miv(&[
        "h5",
        "dump",
        zero.to_str().unwrap(),
        "--population",
        "B",
        "--namespace",
        "Synapse Attributes",
        "--topology",
    ]);
    assert!(!o.ok(), "--topology on a namespace other than Trees fails");
    assert!(o.stderr.contains("--namespace Trees"), "{}", o.stderr);
}
