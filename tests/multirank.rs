//! Multi-rank behaviour of the foundation under real `mpirun` (1, 2, 3 and 4 ranks, oversubscribed).
#![cfg(feature = "mpi")]

mod common;
use common::*;
use std::collections::BTreeSet;
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

#[test]
fn info_lists_every_rank() {
    for n in [1, 2, 4] {
        let o = mpirun(n, &["info", "--json"], T).expect_ok("mpirun miv info");
        let doc: serde_json::Value = serde_json::from_str(&o.stdout).expect("one JSON document from rank 0 only");
        assert_eq!(doc["size"], n);
        let ranks: Vec<u64> = doc["ranks"].as_array().unwrap().iter().map(|r| r["rank"].as_u64().unwrap()).collect();
        assert_eq!(ranks, (0..n as u64).collect::<Vec<_>>());
        if n > 1 {
            assert!(doc["transport"].as_str().unwrap().contains("MPI"), "{}", doc["transport"]);
        }
    }
}

#[test]
fn collectives_give_the_same_answers_on_every_rank_count() {
    for n in [1usize, 2, 3, 4] {
        let o = mpirun(n, &["debug", "collectives"], T).expect_ok("collectives");
        let lines = json_lines(&o.stdout);
        assert_eq!(lines.len(), n);
        // What every rank must have seen, computed here independently.
        let allg: Vec<u64> = (0..n as u64).flat_map(|r| (0..=r).map(move |i| r * 100 + i)).collect();
        let counts: Vec<u64> = (1..=n as u64).collect();
        let sum: f64 = (1..=n).map(|r| r as f64).sum();
        for (r, l) in lines.iter().enumerate() {
            assert_eq!(l["rank"], r);
            assert_eq!(l["size"], n);
            assert_eq!(l["bcast"], serde_json::json!([(n as u64 - 1) * 10, 7]));
            assert_eq!(l["bcast_str"], format!("hello from {}", n - 1));
            assert_eq!(l["allgatherv"], serde_json::json!(allg));
            assert_eq!(l["counts"], serde_json::json!(counts));
            let a2a: Vec<[u64; 2]> = (0..n as u64).map(|from| [from, r as u64]).collect();
            assert_eq!(l["alltoallv"], serde_json::json!(a2a));
            let from = |s: usize| (0..((s + r) % 3) as u32).map(move |k| [s as u32, r as u32, k]);
            let exchanged: Vec<[u32; 3]> = (0..n).flat_map(from).collect();
            assert_eq!(l["exchange"], serde_json::json!(exchanged));
            let gap = [u32::MAX; 3];
            let mut into: Vec<[u32; 3]> = (0..n).flat_map(|s| std::iter::once(gap).chain(from(s))).collect();
            into.push(gap);
            assert_eq!(l["alltoallv_into"], serde_json::json!(into));
            assert_eq!(l["sum"], sum);
            assert_eq!(l["min"], 1.0);
            assert_eq!(l["max"], n as f64);
            assert_eq!(l["sum_u64"], serde_json::json!([(0..n as u64).sum::<u64>(), n]));
            if r == 0 {
                let g: Vec<f64> = (0..n).map(|x| x as f64 + 0.5).collect();
                assert_eq!(l["gather"], serde_json::json!(g));
            } else {
                assert!(l["gather"].is_null());
            }
        }
    }
}

#[test]
fn every_gid_is_owned_and_read_exactly_once() {
    for n in [1usize, 2, 3, 4] {
        for io in [0usize, 1, 2] {
            let io_s = io.to_string();
            let o = mpirun(n, &["debug", "partition", "--start", "64", "--count", "223", "--io-size", &io_s], T)
                .expect_ok("partition");
            let lines = json_lines(&o.stdout);
            assert_eq!(lines.len(), n);
            let mut owned = BTreeSet::new();
            let mut read = Vec::new();
            for (r, l) in lines.iter().enumerate() {
                for g in l["owned"].as_array().unwrap() {
                    let g = g.as_u64().unwrap();
                    assert_eq!(g % n as u64, r as u64, "round-robin owner of {g}");
                    assert!(owned.insert(g));
                }
                for rg in l["reads"].as_array().unwrap() {
                    let (a, b) = (rg[0].as_u64().unwrap(), rg[1].as_u64().unwrap());
                    read.extend(a..b);
                }
            }
            read.sort_unstable();
            assert_eq!(owned.into_iter().collect::<Vec<_>>(), (64..287).collect::<Vec<_>>());
            assert_eq!(read, (64..287).collect::<Vec<_>>());
        }
    }
}

#[test]
fn a_failing_rank_aborts_the_job_instead_of_hanging() {
    for (n, rank, mode) in [(2, 1, "error"), (3, 2, "error"), (2, 0, "panic"), (4, 3, "panic")] {
        let o = mpirun(n, &["debug", "fail", "--rank", &rank.to_string(), "--mode", mode], Duration::from_secs(60));
        assert!(!o.timed_out, "{mode} on rank {rank} of {n} hung:\n{}", o.stderr);
        assert_ne!(o.code, Some(0), "the job must fail");
        let expected = if mode == "error" {
            format!("[rank {rank}] error: rank {rank} failed on purpose (missing file /no/such/cells.h5)")
        } else {
            format!("rank {rank} panicked on purpose")
        };
        assert!(o.stderr.contains(&expected), "stderr lacks {expected:?}:\n{}", o.stderr);
    }
}

#[test]
fn a_collective_error_stops_every_rank_with_one_message() {
    let o = mpirun(4, &["debug", "fail", "--rank", "2", "--mode", "collective"], Duration::from_secs(60));
    assert!(!o.timed_out);
    assert_eq!(o.code, Some(1));
    let msg = "error: rank 2 could not parse /tmp/bad.yaml: expected a mapping (rank 2)";
    assert_eq!(o.stderr.matches("could not parse").count(), 1, "printed once, by rank 0:\n{}", o.stderr);
    assert!(o.stderr.contains(msg), "{}", o.stderr);
}
