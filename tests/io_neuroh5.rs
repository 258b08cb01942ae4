//! Files written by the real neuroh5 library (`tests/reference/neuroh5/`, made by `make_fixtures.py` with
//! neuroh5's Python API on 1 and on 2 ranks) read through miv's io crate, on one rank and under `mpirun -n
//! 2`, and shown by `miv h5 ls/dump/edges`. Every value is compared with what neuroh5's own readers returned
//! for the same file (`expected.json`, `expected_2ranks.json`, written by `dump_fixtures.py`).

mod common;
#[path = "../io/tests/common/mod.rs"]
mod io_common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use io_common::no_file_locking;
use serde_json::{json, Map, Value};

const FIXTURES: [&str; 2] = ["nh5_np1.h5", "nh5_np2.h5"];

fn reference_dir() -> PathBuf {
    repo_root().join("tests/reference/neuroh5")
}

fn read_json(name: &str) -> Value {
    let p = reference_dir().join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// What neuroh5 read from one fixture on one rank.
fn expected(file: &str) -> Value {
    read_json("expected.json")["files"][file].clone()
}

/// Decompress the fixtures into a fresh scratch directory.
fn unpack(test: &str) -> PathBuf {
    let dir = scratch(test);
    for f in FIXTURES {
        let gz = reference_dir().join(format!("{f}.gz"));
        let out = Command::new("gzip").arg("-dc").arg(&gz).output().expect("run gzip");
        assert!(out.status.success(), "gzip -dc {}: {}", gz.display(), String::from_utf8_lossy(&out.stderr));
        std::fs::write(dir.join(f), out.stdout).expect("write fixture");
    }
    dir
}

/// Exact comparison with a path in the message. Integers must be integers and floats floats on both sides
/// (neuroh5's float32 values were widened to float64 by Python, ours by Rust).
fn same(ours: &Value, theirs: &Value, path: &str) -> Result<(), String> {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            let (mut ka, mut kb): (Vec<_>, Vec<_>) = (a.keys().collect(), b.keys().collect());
            ka.sort();
            kb.sort();
            if ka != kb {
                return Err(format!("{path}: keys {ka:?}, neuroh5 has {kb:?}"));
            }
            a.iter().try_for_each(|(k, v)| same(v, &b[k], &format!("{path}/{k}")))
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                return Err(format!("{path}: {} values, neuroh5 has {}: {ours} vs {theirs}", a.len(), b.len()));
            }
            a.iter().zip(b).enumerate().try_for_each(|(i, (x, y))| same(x, y, &format!("{path}[{i}]")))
        }
        (Value::Number(a), Value::Number(b)) => {
            let ok = if a.is_f64() || b.is_f64() {
                a.is_f64() && b.is_f64() && a.as_f64() == b.as_f64()
            } else {
                a.as_i64() == b.as_i64() && a.as_u64() == b.as_u64()
            };
            if ok {
                Ok(())
            } else {
                Err(format!("{path}: {a}, neuroh5 read {b}"))
            }
        }
        _ if ours == theirs => Ok(()),
        _ => Err(format!("{path}: {ours}, neuroh5 read {theirs}")),
    }
}

fn assert_same(ours: &Value, theirs: &Value, path: &str) {
    if let Err(e) = same(ours, theirs, path) {
        panic!("{e}");
    }
}

/// Merge the per-rank `selftest export` lines: the union of what the ranks received (no gid on two ranks)
/// and, per dataset ("POP/NS", "POP/Trees", "SRC:DST"), the rank each gid went to.
fn merge(lines: &[Value]) -> (Value, BTreeMap<String, BTreeMap<String, u64>>) {
    let mut all = json!({"cell_attributes": {}, "trees": {}, "projections": {}});
    let mut owners: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut take = |key: String, rank: u64, from: &Map<String, Value>, into: &mut Map<String, Value>| {
        for (g, v) in from {
            assert!(into.insert(g.clone(), v.clone()).is_none(), "{key}: gid {g} received by two ranks");
            owners.entry(key.clone()).or_default().insert(g.clone(), rank);
        }
    };
    for l in lines {
        let rank = l["rank"].as_u64().expect("rank");
        for (pop, nss) in l["cell_attributes"].as_object().expect("cell_attributes") {
            for (ns, d) in nss.as_object().expect("namespaces") {
                let slot = &mut all["cell_attributes"][pop.as_str()][ns.as_str()];
                if slot.is_null() {
                    *slot = json!({"dtypes": d["dtypes"], "cells": {}});
                }
                let into = slot["cells"].as_object_mut().expect("cells");
                take(format!("{pop}/{ns}"), rank, d["cells"].as_object().expect("cells"), into);
            }
        }
        for (pop, t) in l["trees"].as_object().expect("trees") {
            let slot = &mut all["trees"][pop.as_str()];
            if slot.is_null() {
                *slot = json!({});
            }
            take(format!("{pop}/Trees"), rank, t.as_object().expect("trees"), slot.as_object_mut().expect("trees"));
        }
        for (prj, d) in l["projections"].as_object().expect("projections") {
            let slot = &mut all["projections"][prj.as_str()];
            if slot.is_null() {
                *slot = json!({"dtypes": d["dtypes"], "edges": {}});
            }
            let into = slot["edges"].as_object_mut().expect("edges");
            take(prj.clone(), rank, d["edges"].as_object().expect("edges"), into);
        }
    }
    (all, owners)
}

/// Compare the merged read of one fixture with neuroh5's: every cell attribute (values and dtypes), every
/// tree (the stored arrays), every edge with its attributes.
fn compare(ours: &Value, file: &str) {
    let want = expected(file);
    for (pop, nss) in want["cell_attributes"].as_object().expect("cell_attributes") {
        for (ns, d) in nss.as_object().expect("namespaces") {
            let o = &ours["cell_attributes"][pop.as_str()][ns.as_str()];
            let path = format!("{file}:/Populations/{pop}/{ns}");
            assert_same(&o["dtypes"], &d["dtypes"], &format!("{path} dtypes"));
            assert_same(&o["cells"], &d["cells"], &path);
        }
    }
    let nss = |v: &Value| -> Vec<String> { v.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default() };
    for (pop, d) in ours["cell_attributes"].as_object().expect("cell_attributes") {
        assert_eq!(nss(d), nss(&want["cell_attributes"][pop.as_str()]), "{file}: namespaces of {pop}");
    }
    assert_same(&ours["trees"], &want["trees"], &format!("{file}: Trees"));
    for (prj, d) in want["projections"].as_object().expect("projections") {
        let o = &ours["projections"][prj.as_str()];
        assert_same(&o["dtypes"], &d["dtypes"], &format!("{file}: {prj} dtypes"));
        assert_same(&o["edges"], &d["edges"], &format!("{file}: {prj}"));
    }
    assert_eq!(nss(&ours["projections"]), nss(&want["projections"]), "{file}: projections");
}

fn export(n: Option<usize>, file: &Path, mode: &str, io_size: usize) -> Vec<Value> {
    let (f, io) = (file.to_str().unwrap(), io_size.to_string());
    let args = ["h5", "selftest", "export", f, "--mode", mode, "--io-size", &io];
    let o = match n {
        None => miv(&args),
        Some(n) => mpirun(n, &args, std::time::Duration::from_secs(300)),
    };
    let lines = json_lines(&o.expect_ok("selftest export").stdout);
    assert_eq!(lines.len(), n.unwrap_or(1), "one line per rank");
    lines
}

#[test]
fn neuroh5_files_read_on_one_rank_like_neuroh5_reads_them() {
    no_file_locking();
    let dir = unpack("io_neuroh5_one");
    for f in FIXTURES {
        let lines = export(None, &dir.join(f), "all", 1);
        let want = expected(f);
        let ranges: Map<String, Value> = want["population_ranges"].as_object().expect("ranges").clone();
        assert_same(&lines[0]["population_ranges"], &Value::Object(ranges), &format!("{f}: population ranges"));
        let (all, _) = merge(&lines);
        compare(&all, f);
    }
}

#[cfg(feature = "mpi")]
#[test]
fn neuroh5_files_read_on_two_ranks_give_each_gid_to_its_owner() {
    no_file_locking();
    let dir = unpack("io_neuroh5_two");
    let scatter = read_json("expected_2ranks.json");
    for f in FIXTURES {
        for (mode, io_size) in [("owned", 1), ("io", 1), ("io", 2)] {
            let lines = export(Some(2), &dir.join(f), mode, io_size);
            let (all, owners) = merge(&lines);
            compare(&all, f);
            for (key, by_gid) in &owners {
                for (g, r) in by_gid {
                    assert_eq!(
                        *r,
                        g.parse::<u64>().unwrap() % 2,
                        "{f} {mode}/{io_size}: {key} gid {g} went to rank {r}"
                    );
                }
            }
            // neuroh5's scatter readers deal cells round-robin by population-relative index and edges by
            // gid; every population start here is even, so their owners are ours.
            let theirs: BTreeMap<String, BTreeMap<String, u64>> =
                serde_json::from_value(scatter["files"][f]["owners"].clone()).expect("owners");
            assert_eq!(owners, theirs, "{f} {mode}/{io_size}: owners differ from neuroh5's scatter reads");
        }
    }
}

/// neuroh5's reader names for the `Trees` arrays, and the attribute groups they are stored in.
const TREE_ATTRIBUTES: [(&str, &str); 10] = [
    ("x", "X Coordinate"),
    ("y", "Y Coordinate"),
    ("z", "Z Coordinate"),
    ("radius", "Radius"),
    ("layer", "Point Layer"),
    ("parent", "Parent Point"),
    ("swc_type", "SWC Type"),
    ("sections", "Section"),
    ("src", "Source Section"),
    ("dst", "Destination Section"),
];

#[test]
fn miv_h5_ls_dump_and_edges_show_neuroh5_files() {
    no_file_locking();
    let dir = unpack("io_neuroh5_cli");
    for f in FIXTURES {
        let path = dir.join(f);
        let p = path.to_str().unwrap();
        let want = expected(f);
        let ls: Value =
            serde_json::from_str(&miv(&["h5", "ls", p, "--json"]).expect_ok("h5 ls").stdout).expect("ls json");
        let mut ranges = Map::new();
        for pop in ls["populations"].as_array().expect("populations") {
            let name = pop["name"].as_str().expect("name");
            ranges.insert(name.into(), json!([pop["start"], pop["count"]]));
            let mut listed = Vec::new();
            for ns in pop["namespaces"].as_array().expect("namespaces") {
                let nsn = ns["name"].as_str().expect("ns");
                listed.push(nsn.to_string());
                for a in ns["attributes"].as_array().expect("attributes") {
                    let an = a["name"].as_str().expect("attribute");
                    let (cells, dtype) = if nsn == "Trees" {
                        let t = want["trees"][name].as_object().expect("trees");
                        let key = TREE_ATTRIBUTES
                            .iter()
                            .find(|(_, n)| *n == an)
                            .unwrap_or_else(|| panic!("{f}: unexpected Trees attribute {an}"))
                            .0;
                        (t.len(), want["tree_dtypes"][name][key].clone())
                    } else {
                        let d = &want["cell_attributes"][name][nsn];
                        (d["cells"].as_object().expect("cells").len(), d["dtypes"][an].clone())
                    };
                    assert_eq!(a["cells"], json!(cells), "{f}: ls cells of {name}/{nsn}/{an}");
                    assert_eq!(a["dtype"], dtype, "{f}: ls dtype of {name}/{nsn}/{an}");
                }
                let lines = json_lines(
                    &miv(&["h5", "dump", p, "--population", name, "--namespace", nsn, "--json"])
                        .expect_ok("h5 dump")
                        .stdout,
                );
                let mut got = Map::new();
                for l in lines {
                    got.insert(l["gid"].to_string(), l["attributes"].clone());
                }
                let theirs = if nsn == "Trees" {
                    let mut m = Map::new();
                    for (g, t) in want["trees"][name].as_object().expect("trees") {
                        let attrs: Map<String, Value> =
                            TREE_ATTRIBUTES.iter().map(|(k, n)| (n.to_string(), t[*k].clone())).collect();
                        m.insert(g.clone(), Value::Object(attrs));
                    }
                    Value::Object(m)
                } else {
                    want["cell_attributes"][name][nsn]["cells"].clone()
                };
                assert_same(&Value::Object(got), &theirs, &format!("{f}: dump {name}/{nsn}"));
            }
            let mut theirs: Vec<String> =
                want["cell_attributes"][name].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
            if want["trees"].get(name).is_some() {
                theirs.push("Trees".into());
            }
            listed.sort();
            theirs.sort();
            assert_eq!(listed, theirs, "{f}: namespaces of {name}");
        }
        assert_same(&Value::Object(ranges), &want["population_ranges"], &format!("{f}: ls populations"));
        let mut prjs: Vec<Value> = Vec::new();
        for prj in ls["projections"].as_array().expect("projections") {
            let (s, d) = (prj["source"].as_str().unwrap(), prj["destination"].as_str().unwrap());
            prjs.push(json!([s, d]));
            let key = format!("{s}:{d}");
            let edges = want["projections"][key.as_str()]["edges"].as_object().expect("edges");
            let n: usize = edges.values().map(|e| e["sources"].as_array().unwrap().len()).sum();
            assert_eq!(prj["edges"], json!(n), "{f}: ls edges of {key}");
            assert_eq!(prj["destinations"], json!(edges.len()), "{f}: ls destinations of {key}");
            let lines =
                json_lines(&miv(&["h5", "edges", p, "--projection", &key, "--json"]).expect_ok("h5 edges").stdout);
            let mut got = Map::new();
            for l in lines {
                let mut e = l["attributes"].as_object().expect("attributes").clone();
                e.insert("sources".into(), l["sources"].clone());
                got.insert(l["destination"].to_string(), Value::Object(e));
            }
            assert_same(&Value::Object(got), &Value::Object(edges.clone()), &format!("{f}: edges {key}"));
        }
        prjs.sort_by_key(|v| v.to_string());
        let mut theirs = want["projection_names"].as_array().expect("projection names").clone();
        theirs.sort_by_key(|v| v.to_string());
        assert_eq!(prjs, theirs, "{f}: projections");
    }
}

/// Regression: files written by one process allocated chunks incrementally (HDF5's serial default), and
/// neuroh5's `append_cell_attributes` into such a file (here: into a namespace without cells) failed in
/// H5Dwrite, because parallel HDF5 writes only into chunks that exist. Files written by several ranks were
/// fine (parallel HDF5 allocates early); now every dataset allocates early whatever the rank count.
#[test]
fn one_process_files_allocate_chunks_early_so_neuroh5_can_append() {
    no_file_locking();
    let dir = scratch("io_neuroh5_alloc");
    let f = dir.join("one.h5");
    miv(&["h5", "selftest", "write", f.to_str().unwrap()]).expect_ok("selftest write");
    let script = std::fs::read_to_string(repo_root().join("tests/io_py/alloc_early.py")).expect("alloc_early.py");
    let n: usize = io_common::run_python(&script, &[f.to_str().unwrap()]).trim().parse().expect("dataset count");
    assert!(n > 100, "only {n} datasets checked");
}

/// `miv h5 dump --topology` on trees written by neuroh5 (0-based `Section` ids): the sections are the stored
/// point lists, and the stored base is reported as 0.
#[test]
fn dump_topology_of_trees_written_by_neuroh5() {
    no_file_locking();
    let dir = unpack("io_neuroh5_topology");
    for f in FIXTURES {
        let want = expected(f);
        let trees = want["trees"]["OLM"].as_object().expect("OLM trees");
        let p = dir.join(f);
        let args =
            ["h5", "dump", p.to_str().unwrap(), "--population", "OLM", "--namespace", "Trees", "--topology", "--json"];
        let got = json_lines(&miv(&args).expect_ok("h5 dump --topology").stdout);
        assert_eq!(got.len(), trees.len(), "{f}: one line per tree");
        for l in got {
            let t = &trees[&l["gid"].to_string()];
            let stored: Vec<u16> = serde_json::from_value(t["sections"].clone()).expect("sections");
            let sections = miv_io::Tree::decode_sections(&stored).expect("neuroh5's encoding");
            assert_eq!(l["sections"], json!(sections), "{f}: gid {}", l["gid"]);
            assert_eq!((&l["src"], &l["dst"]), (&t["src"], &t["dst"]), "{f}: gid {}", l["gid"]);
            assert_eq!(l["stored_base"], 0, "{f}: gid {}", l["gid"]);
        }
    }
}

/// Trees with 1-based `Section` ids written by neuroh5 (4937699's `append_cell_trees`,
/// `make_trees_1based.py`): miv detects the base, and `dump --topology` shows the stored ids minus one.
#[test]
fn one_based_trees_written_by_neuroh5_read_as_0_based_sections() {
    no_file_locking();
    let dir = scratch("io_neuroh5_1based");
    let f = "nh5_trees_1based.h5";
    let gz = reference_dir().join(format!("{f}.gz"));
    let out = Command::new("gzip").arg("-dc").arg(&gz).output().expect("run gzip");
    assert!(out.status.success(), "gzip -dc {}", gz.display());
    std::fs::write(dir.join(f), out.stdout).unwrap();
    let want = read_json("nh5_trees_1based.json");
    let p = dir.join(f);
    let args =
        ["h5", "dump", p.to_str().unwrap(), "--population", "OLM", "--namespace", "Trees", "--topology", "--json"];
    let got = json_lines(&miv(&args).expect_ok("h5 dump --topology").stdout);
    assert_eq!(got.len(), want.as_object().unwrap().len(), "one line per tree");
    for l in got {
        let t = &want[&l["gid"].to_string()];
        let stored: Vec<u16> = serde_json::from_value(t["sections"].clone()).expect("sections");
        let mut sections = miv_io::Tree::decode_sections(&stored).expect("neuroh5's encoding");
        assert!(sections.iter().flatten().all(|&p| p >= 1), "the fixture is 1-based");
        sections.iter_mut().flatten().for_each(|p| *p -= 1);
        assert_eq!(l["sections"], json!(sections), "gid {}", l["gid"]);
        assert_eq!((&l["src"], &l["dst"]), (&t["src"], &t["dst"]), "gid {}", l["gid"]);
        assert_eq!(l["stored_base"], 1, "gid {}", l["gid"]);
    }
}
