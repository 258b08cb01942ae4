//! `miv gen` + `miv run`: networks read from NeuroH5 files, simulated in one process and under mpirun, against
//! NEURON's spike times for the 10-cell ring (tests/reference/ring, made by bench/neuron/ring.py).

mod common;
use common::*;
use std::path::{Path, PathBuf};
#[cfg(feature = "mpi")]
use std::time::Duration;

fn read_spikes(path: &Path) -> Vec<(u64, f64)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .skip(1)
        .map(|l| {
            let (g, t) = l.split_once(',').unwrap();
            (g.parse().unwrap(), t.parse().unwrap())
        })
        .collect()
}

fn gen(name: &str, args: &[&str]) -> PathBuf {
    let dir = scratch(name);
    let out = dir.join("net");
    let mut a: Vec<&str> = args.to_vec();
    let o = out.to_str().unwrap().to_string();
    a.extend(["--out", &o]);
    miv(&a).expect_ok("miv gen");
    out.join("experiment.yaml")
}

#[test]
fn ring_from_neuroh5_matches_neuron() {
    for (delay, file) in [("5", "neuron_N10_d5_exact.csv"), ("1", "neuron_N10_d1_exact.csv")] {
        let exp = gen(&format!("ring_d{delay}"), &["gen", "ring", "--n", "10", "--delay", delay]);
        miv(&["-q", "run", exp.to_str().unwrap()]).expect_ok("miv run");
        let ours = read_spikes(&exp.with_file_name("spikes.csv"));
        let neuron = read_spikes(&repo_root().join("tests/reference/ring").join(file));
        assert_eq!(ours.len(), neuron.len(), "delay {delay}");
        for (a, b) in ours.iter().zip(&neuron) {
            assert_eq!(a.0, b.0, "delay {delay}: gid order");
            assert!((a.1 - b.1).abs() < 1e-9, "delay {delay}: gid {} at {} vs NEURON {}", a.0, a.1, b.1);
        }
    }
}

#[cfg(feature = "mpi")]
#[test]
fn ring_output_is_identical_for_1_to_4_ranks_and_2_threads() {
    let exp = gen("ring_ranks", &["gen", "ring", "--n", "10", "--delay", "1"]);
    // An electrode next to gid 0's dendrite (every cell overlaps there, as MiV's cells at the origin).
    rewrite(&exp, "output:", "lfp:\n  - {label: e, position: [100, 20, 0], dt_lfp: 0.1, fdst: 1.0}\noutput:");
    let e = exp.to_str().unwrap();
    let csv = exp.with_file_name("spikes.csv");
    let h5 = exp.with_file_name("results.h5");
    miv(&["-q", "run", e]).expect_ok("one process");
    let base = std::fs::read(&csv).unwrap();
    let base_h5 = h5_dump(&h5);
    for n in [1, 2, 3, 4] {
        mpirun(n, &["-q", "run", e], Duration::from_secs(300)).expect_ok("mpirun miv run");
        assert_eq!(std::fs::read(&csv).unwrap(), base, "{n} ranks: spikes differ");
        assert_eq!(h5_dump(&h5), base_h5, "{n} ranks: results.h5 differs");
    }
    miv(&["-q", "run", e, "--threads", "2"]).expect_ok("two threads");
    assert_eq!(std::fs::read(&csv).unwrap(), base, "2 threads: spikes differ");
    mpirun(2, &["-q", "run", e, "--threads", "2"], Duration::from_secs(300)).expect_ok("2 ranks x 2 threads");
    assert_eq!(std::fs::read(&csv).unwrap(), base, "2 ranks x 2 threads: spikes differ");
}

/// The spike namespace and the LFP of a results file, read back with the io crate and HDF5.
#[cfg(feature = "mpi")]
fn h5_dump(path: &Path) -> String {
    let h = hdf5::File::open(path).expect("open results");
    let v: Vec<f32> = h.dataset("Local Field Potential e/v").expect("LFP v").read_raw().unwrap();
    let t: Vec<f32> = h.dataset("Local Field Potential e/t").expect("LFP t").read_raw().unwrap();
    assert_eq!(t.len(), 1001, "LFP samples every 0.1 ms from 0 to 100 ms");
    assert!(v.iter().any(|x| *x != 0.0) && v.iter().all(|x| x.is_finite()));
    drop(h);
    let comm = miv::partition::SerialComm;
    let f = miv::io::NeuroH5File::open(path, &comm).expect("open results");
    let a = f.read_cell_attributes("BS", "Spike Events", &miv::io::Selection::All, None).expect("read Spike Events");
    let mut out = String::new();
    for name in a.names() {
        for g in a.gids() {
            out.push_str(&format!("{name} {g} {:?}\n", a.attribute(&name).unwrap().get_values(g)));
        }
    }
    assert!(out.contains("t 0 "), "gid 0 spiked: {out}");
    format!("{out}{v:?}")
}

#[test]
fn busyring_fires_as_neuron_counts() {
    // `tests/reference/neuron-arbor/README.md`: every cell fires 2 or 3 times; 2700 spikes for N = 1000. At N = 200 the
    // same rule (kicked cells and the ring) gives 540 = 2.7 per cell.
    let exp = gen("busyring", &["gen", "busyring", "--n", "1000"]);
    let o = miv(&["run", exp.to_str().unwrap(), "--json"]).expect_ok("busyring");
    let summary: serde_json::Value = serde_json::from_str(o.stdout.trim()).expect("summary json");
    assert_eq!(summary["spikes"], 2700);
    assert_eq!(summary["cells"], 1000);
    assert_eq!(summary["compartments"], 34000);
    assert_eq!(summary["connections"], 11000);
    let spikes = read_spikes(&exp.with_file_name("spikes.csv"));
    let mut per = vec![0u32; 1000];
    spikes.iter().for_each(|s| per[s.0 as usize] += 1);
    assert!(per.iter().all(|&k| k == 2 || k == 3), "every cell fires 2 or 3 times");
}

fn rewrite(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from:?} not in {}", path.display());
    std::fs::write(path, text.replace(from, to)).unwrap();
}

/// Runs `miv run` on 1 and 2 ranks and checks that it fails with exactly one line naming `what`.
fn fails_cleanly(exp: &Path, what: &[&str]) {
    let e = exp.to_str().unwrap();
    let one = miv(&["-q", "run", e]);
    assert_eq!(one.code, Some(1), "{}", one.stderr);
    for w in what {
        assert!(one.stderr.contains(w), "missing {w:?} in:\n{}", one.stderr);
    }
    #[cfg(feature = "mpi")]
    {
        let two = mpirun(2, &["-q", "run", e], Duration::from_secs(120));
        assert!(!two.timed_out, "hung:\n{}", two.stderr);
        assert_eq!(two.code, Some(1), "{}", two.stderr);
        assert_eq!(two.stderr.matches("error:").count(), 1, "one message:\n{}", two.stderr);
        for w in what {
            assert!(two.stderr.contains(w), "missing {w:?} in:\n{}", two.stderr);
        }
    }
}

#[test]
fn bad_inputs_stop_every_rank_with_one_message() {
    // A synapse mechanism that is neither built in nor in the mechanisms folder.
    let exp = gen("bad_mech", &["gen", "ring", "--n", "4"]);
    rewrite(&exp, "AMPA: {mechanism: Exp2Syn, netcon: [weight]}", "AMPA: {mechanism: ProbAMPANMDA, netcon: [weight]}");
    fails_cleanly(&exp, &["ProbAMPANMDA", "not in the mechanisms folder"]);

    // A delay below dt (the MiV floor of 2 dt switched off, distance 2.5 um = 0.01 ms).
    let exp = gen("bad_delay", &["gen", "ring", "--n", "4", "--delay", "0.01"]);
    rewrite(&exp, "dt: 0.025\n", "dt: 0.025\nmin_delay: 0\n");
    fails_cleanly(&exp, &["delay 0.01", "below the time step"]);

    // A projection naming a population the cells file does not define.
    let exp = gen("bad_pop", &["gen", "ring", "--n", "4"]);
    let other = gen("bad_pop_other", &["gen", "busyring", "--n", "4"]);
    std::fs::copy(other.with_file_name("connections.h5"), exp.with_file_name("connections.h5")).unwrap();
    fails_cleanly(&exp, &["projection BY -> BY", "population BY", "cells.h5"]);

    // A missing cells file and a YAML typo.
    let exp = gen("bad_yaml", &["gen", "ring", "--n", "4"]);
    rewrite(&exp, "t_end: 100", "t_end: 100\nt_ned: 5");
    fails_cleanly(&exp, &["experiment.yaml", "t_ned"]);
    let exp = gen("bad_file", &["gen", "ring", "--n", "4"]);
    std::fs::remove_file(exp.with_file_name("cells.h5")).unwrap();
    fails_cleanly(&exp, &["cells.h5"]);
}
