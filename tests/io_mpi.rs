//! NeuroH5 I/O under real `mpirun`: a synthetic network (every dtype, empty cells and namespaces, appends,
//! trees, projections with several edge namespaces and small blocks) written by 1, 2 and 4 ranks gives files
//! whose contents h5py finds identical, and reading one file with 1, 2 or 3 ranks (owner reads, I/O ranks,
//! every rank everything) gives every cell to its owner with the generator's values.
#![cfg(feature = "mpi")]

mod common;
#[path = "../io/tests/common/mod.rs"]
mod io_common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::*;
use io_common::no_file_locking;

const T: Duration = Duration::from_secs(300);

fn digest(path: &Path) -> String {
    let script = std::fs::read_to_string(repo_root().join("tests/io_py/digest.py")).expect("digest.py");
    io_common::run_python(&script, &[path.to_str().unwrap()])
}

fn write(n: usize, path: &Path, extra: &[&str]) {
    let mut args = vec!["h5", "selftest", "write", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    mpirun(n, &args, T).expect_ok("selftest write");
    assert!(path.exists(), "{} was not written", path.display());
}

#[test]
fn agreement_when_every_rank_succeeds() {
    no_file_locking();
    // Regression: an all-success agree() used to abort under Open MPI (empty buffers read as MPI_IN_PLACE).
    for n in [2, 3] {
        mpirun(n, &["debug", "fail", "--mode", "collective", "--rank", "99"], T).expect_ok("agree with no failure");
    }
}

#[test]
fn files_written_by_1_2_and_4_ranks_are_identical() {
    no_file_locking();
    let dir = scratch("io_mpi_write");
    let one = dir.join("w1.h5");
    write(1, &one, &[]);
    let reference = digest(&one);
    let doc: serde_json::Value = serde_json::from_str(&reference).unwrap();
    assert!(doc["objects"].as_object().unwrap().len() > 200, "the digest covers the whole file");
    for (n, extra, name) in [
        (2, vec![], "w2.h5"),
        (4, vec![], "w4.h5"),
        (4, vec!["--io-size", "1"], "w4io1.h5"),
        (3, vec!["--io-size", "2"], "w3io2.h5"),
    ] {
        let p = dir.join(name);
        write(n, &p, &extra);
        assert_eq!(digest(&p), reference, "{name} ({n} ranks {extra:?}) differs from the 1-rank file");
    }
    // Deflate-compressed (parallel filtered writes): same contents.
    let z = dir.join("w2z.h5");
    write(2, &z, &["--deflate", "6"]);
    assert_eq!(digest(&z), reference, "compressed file differs");
}

fn read(n: usize, path: &Path, mode: &str) -> Vec<serde_json::Value> {
    let o = mpirun(n, &["h5", "selftest", "read", path.to_str().unwrap(), "--mode", mode, "--io-size", "2"], T)
        .expect_ok("selftest read");
    let lines = json_lines(&o.stdout);
    assert_eq!(lines.len(), n, "one line per rank:\n{}", o.stdout);
    lines
}

#[test]
fn reading_with_1_2_and_3_ranks_gives_every_cell_to_its_owner() {
    no_file_locking();
    let dir = scratch("io_mpi_read");
    let plain = dir.join("r.h5");
    write(2, &plain, &[]);
    let packed = dir.join("rz.h5");
    write(1, &packed, &["--deflate", "9"]);
    for path in [&plain, &packed] {
        let whole = read(1, path, "all");
        let union1 = &whole[0]["gids"];
        assert!(whole[0]["mismatches"].as_array().unwrap().is_empty(), "{}", whole[0]["mismatches"]);
        for n in [1usize, 2, 3] {
            for mode in ["owned", "io", "all", "strided"] {
                let lines = read(n, path, mode);
                let mut union: BTreeMap<String, Vec<u64>> = BTreeMap::new();
                for (r, l) in lines.iter().enumerate() {
                    assert!(
                        l["mismatches"].as_array().unwrap().is_empty(),
                        "{n} ranks {mode} rank {r}: {}",
                        l["mismatches"]
                    );
                    assert!(l["checked"].as_u64().unwrap() > 0);
                    for (key, gids) in l["gids"].as_object().unwrap() {
                        let gids: Vec<u64> = gids.as_array().unwrap().iter().map(|g| g.as_u64().unwrap()).collect();
                        if mode == "strided" {
                            let start = |g: u64| [0u64, 37, 90, 101].into_iter().filter(|s| *s <= g).max().unwrap();
                            assert!(
                                gids.iter().all(|&g| (g - start(g)) % (r as u64 + 1) == 0),
                                "{key}: rank {r} strided read {gids:?}"
                            );
                        } else if mode != "all" {
                            assert!(
                                gids.iter().all(|g| g % n as u64 == r as u64),
                                "{key}: rank {r} of {n} got gids it does not own: {gids:?}"
                            );
                            union.entry(key.clone()).or_default().extend(gids);
                        } else {
                            assert_eq!(serde_json::json!(gids), union1[key], "{key}: rank {r} of {n} reading all");
                        }
                    }
                }
                for (key, mut gids) in union {
                    gids.sort_unstable();
                    assert_eq!(
                        serde_json::json!(gids),
                        union1[&key],
                        "{key}: union over {n} ranks ({mode}) differs from one rank's read"
                    );
                }
            }
        }
    }
}

/// `miv h5 edges --json` of every projection of the synthetic network, by destination.
fn edges_json(path: &Path) -> BTreeMap<String, Vec<serde_json::Value>> {
    let mut out = BTreeMap::new();
    for (src, dst) in [("STIM", "PYR"), ("PYR", "PYR"), ("OLM", "PYR"), ("PYR", "OLM")] {
        let p = format!("{src}:{dst}");
        let o = miv(&[
            "h5",
            "edges",
            path.to_str().unwrap(),
            "--projection",
            &p,
            "--namespace",
            "Synapses",
            "--namespace",
            "Connections",
            "--json",
        ]);
        out.insert(p, json_lines(&o.expect_ok("h5 edges").stdout));
    }
    out
}

#[test]
fn projections_copied_in_blocks_keep_their_attribute_values() {
    // Regression (reported by the jobs): reading with namespaces [Synapses, Connections] -- not in sorted
    // order -- and appending the result wrote syn_id into Connections/distance and distance into
    // Synapses/syn_id, because the writer matched the agreed (sorted) attribute list to the projection's
    // attributes by position. The copy reads blocks with Selection::Gids on every rank and appends each;
    // the second pass appends to projections the file already has, so every destination appears twice.
    no_file_locking();
    let dir = scratch("io_mpi_copy");
    let src = dir.join("s.h5");
    write(2, &src, &[]);
    let original = edges_json(&src);
    assert!(original.values().map(|v| v.len()).sum::<usize>() > 50, "the network has edges");
    for n in [1usize, 2, 3] {
        let copy = dir.join(format!("c{n}.h5"));
        let (s, c) = (src.to_str().unwrap(), copy.to_str().unwrap());
        mpirun(
            n,
            &["h5", "selftest", "copy", s, c, "--namespace", "Synapses", "--namespace", "Connections", "--passes", "2"],
            T,
        )
        .expect_ok("selftest copy");
        for (p, dests) in edges_json(&copy) {
            assert_eq!(dests.len(), original[&p].len(), "{p}: destinations of the copy by {n} ranks");
            for (got, want) in dests.iter().zip(&original[&p]) {
                let twice = |v: &serde_json::Value| {
                    serde_json::json!([v.as_array().unwrap().clone(), v.as_array().unwrap().clone()].concat())
                };
                assert_eq!(got["destination"], want["destination"]);
                assert_eq!(
                    got["sources"],
                    twice(&want["sources"]),
                    "{p}: sources of {} ({n} ranks)",
                    want["destination"]
                );
                for key in ["Synapses/syn_id", "Connections/distance"] {
                    assert_eq!(
                        got["attributes"][key],
                        twice(&want["attributes"][key]),
                        "{p}: {key} of {} ({n} ranks)",
                        want["destination"]
                    );
                }
            }
        }
    }
}

/// Reads through the MPI-IO driver, independent (`MIV_IO_READ_MPIO=1`) and two-phase collective
/// (`MIV_IO_COLLECTIVE=1`), give each rank what the default POSIX-driver read gives it, in every read mode.
#[test]
fn mpio_and_collective_reads_give_what_posix_reads_give() {
    no_file_locking();
    let dir = scratch("io_mpi_read_drivers");
    let path = dir.join("r.h5");
    write(2, &path, &[]);
    let file = path.to_str().unwrap();
    for mode in ["owned", "io", "strided"] {
        let args = ["h5", "selftest", "read", file, "--mode", mode, "--io-size", "2"];
        let posix = json_lines(&mpirun(2, &args, T).expect_ok("posix read").stdout);
        assert_eq!(posix.len(), 2);
        for var in ["MIV_IO_READ_MPIO", "MIV_IO_COLLECTIVE"] {
            let other = json_lines(&mpirun_env(2, &args, &[(var, "1")], T).expect_ok(var).stdout);
            for (r, (a, b)) in posix.iter().zip(&other).enumerate() {
                assert!(b["mismatches"].as_array().unwrap().is_empty(), "{var} {mode} rank {r}: {}", b["mismatches"]);
                assert_eq!(a["gids"], b["gids"], "{var} {mode} rank {r}");
                assert_eq!(a["checked"], b["checked"], "{var} {mode} rank {r}");
            }
        }
    }
}
