//! The networks of `tests/reference/miv` (the small network) and `tests/reference/miv-full` (the full seed
//! network) against MiV-Simulator/NEURON runs of them kept in those folders (`bench/miv-reference/run_rc.py`'s
//! output; docs/fidelity.md): build and run them with `miv`, check that each is the network its reference was
//! made from, compare spikes, soma voltages and the LFP.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::cell::{read_csv, read_json};
use super::{miv, miv_timeout, repo_root, scratch};

/// `tests/reference/miv` (the small network).
pub fn reference() -> PathBuf {
    repo_root().join("tests/reference/miv")
}

/// `tests/reference/miv-full` (the full seed network).
pub fn reference_full() -> PathBuf {
    repo_root().join("tests/reference/miv-full")
}

/// The first gid of each population of the small network (STIM 0-63, PYR 64-87, PVBC 88-97, OLM 98-105).
pub const SMALL: &[(&str, u64)] = &[("STIM", 0), ("PYR", 64), ("PVBC", 88), ("OLM", 98)];

/// The first gid of each population of the full seed network (STIM 0-63, PYR 64-286, PVBC 287-379, OLM
/// 380-400).
pub const FULL: &[(&str, u64)] = &[("STIM", 0), ("PYR", 64), ("PVBC", 287), ("OLM", 380)];

/// True when `MIV_FULL_NETWORK=1` asks for the full seed network's comparisons (minutes each); otherwise says
/// that the test skipped.
pub fn full_network_requested() -> bool {
    let on = std::env::var("MIV_FULL_NETWORK").as_deref() == Ok("1");
    if !on {
        eprintln!("skipped: set MIV_FULL_NETWORK=1 to compare the full seed network (minutes on one rank)");
    }
    on
}

/// The population of `gid` given the first gid of each population (`SMALL`, `FULL`).
pub fn population(pops: &[(&'static str, u64)], gid: u64) -> &'static str {
    pops.iter().rev().find(|p| gid >= p.1).expect("gids start at 0").0
}

pub type Spikes = Vec<(u64, f64)>;

/// `gid,t_ms` rows of a spikes CSV (NEURON's `spikes.csv` or miv's `spikes_csv`).
pub fn spikes(path: &Path) -> Spikes {
    let c = read_csv(path);
    c["gid"].iter().zip(&c["t_ms"]).map(|(&g, &t)| (g as u64, t)).collect()
}

/// A scratch folder `name` with the small network's `network.yaml` and the experiment `experiment` of
/// `tests/reference/miv`, run with `miv run` (`run_network`). Returns the folder.
pub fn run_small_network(name: &str, experiment: &str) -> PathBuf {
    run_network(name, &reference(), experiment)
}

/// A scratch folder `name` with `network.yaml` and the experiment `experiment` of the reference folder `refdir`,
/// their relative paths made absolute and the outputs (`out/`) put in the folder; run it with `miv run`.
/// Returns the folder (spikes.csv, probes.csv, results.h5, .miv-store).
pub fn run_network(name: &str, refdir: &Path, experiment: &str) -> PathBuf {
    let experiment = prepare_network(name, refdir, experiment);
    let run = ["-q", "run", experiment.to_str().unwrap()];
    // The full network takes minutes on one rank (docs/fidelity.md); an hour bounds a hang.
    miv_timeout(&run, std::time::Duration::from_secs(3600)).expect_ok("miv run of the network");
    experiment.parent().unwrap().to_path_buf()
}

/// The scratch folder of [`run_network`] without the run: returns its `experiment.yaml`.
pub fn prepare_network(name: &str, refdir: &Path, experiment: &str) -> PathBuf {
    let root = repo_root();
    let dir = scratch(name);
    let examples = root.join("examples").display().to_string();
    let net = std::fs::read_to_string(refdir.join("network.yaml")).unwrap();
    std::fs::write(dir.join("network.yaml"), net.replace("../../../examples", &examples)).unwrap();
    let exp = std::fs::read_to_string(refdir.join(experiment)).unwrap();
    let exp = exp
        .replace("../../../examples", &examples)
        .replace("templates: templates-", &format!("templates: {}/templates-", refdir.display()))
        .replace("templates: ../miv/", &format!("templates: {}/", reference().display()))
        .replace("out/", &format!("{}/", dir.display()));
    std::fs::write(dir.join("experiment.yaml"), exp).unwrap();
    dir.join("experiment.yaml")
}

/// The network `miv build` made in `dir` is the reference's (`provenance.json` of `neuron`): the same
/// construction job, with the same edges per projection.
pub fn check_same_network(dir: &Path, neuron: &Path) {
    let prov = read_json(&neuron.join("provenance.json"));
    let job = prov["network"]["neuroh5_graph_job"].as_str().unwrap();
    let conns = dir.join(".miv-store/neuroh5_graph").join(job).join("connections.h5");
    assert!(conns.is_file(), "miv build no longer builds job {job} (the network of the reference)");
    let ls = miv(&["h5", "ls", conns.to_str().unwrap(), "--json"]).expect_ok("h5 ls");
    let ls: serde_json::Value = serde_json::from_str(&ls.stdout).unwrap();
    let projections = ls["projections"].as_array().unwrap();
    assert_eq!(projections.len(), prov["network"]["edges"].as_object().unwrap().len(), "projections");
    for p in projections {
        let key = format!("{}->{}", p["source"].as_str().unwrap(), p["destination"].as_str().unwrap());
        assert_eq!(p["edges"], prov["network"]["edges"][&key], "{key}");
    }
}

/// Spikes per population (`pops`: `SMALL` or `FULL`; spikes of NEURON at exactly `t_end` left out: NEURON delivers the events due at
/// t_end, miv's run ends before them, docs/fidelity.md), then every spike of the same cell with times within
/// `tol` ms.
pub fn compare_spikes(pops: &[(&'static str, u64)], neuron: &Path, mine: &Path, t_end: f64, tol: f64) {
    let (mut before, at_end): (Spikes, Spikes) = spikes(neuron).into_iter().partition(|x| x.1 < t_end);
    assert!(at_end.iter().all(|x| x.1 == t_end), "{at_end:?}");
    let mut mine = spikes(mine);
    let key = |a: &(u64, f64), b: &(u64, f64)| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1));
    before.sort_by(key);
    mine.sort_by(key);
    let count = |s: &[(u64, f64)]| {
        let mut c: BTreeMap<&str, usize> = BTreeMap::new();
        s.iter().for_each(|x| *c.entry(population(pops, x.0)).or_default() += 1);
        c
    };
    eprintln!("spikes per population before t_end: NEURON {:?}, miv {:?}", count(&before), count(&mine));
    assert_eq!(count(&mine), count(&before), "spikes per population");
    let mut worst = 0.0f64;
    for (a, b) in before.iter().zip(&mine) {
        assert_eq!(a.0, b.0, "spike of gid {} at {} ms vs gid {} at {} ms", a.0, a.1, b.0, b.1);
        assert!((a.1 - b.1).abs() <= tol, "gid {}: NEURON {} ms, miv {} ms", a.0, a.1, b.1);
        worst = worst.max((a.1 - b.1).abs());
    }
    eprintln!("{} spikes, same cells, max time difference {worst:.3e} ms", before.len());
}

/// Soma voltages of `gids` (NEURON's `vGID`, miv's `v@GID:soma(0.5)`, same sampling) within `tol` mV over the
/// samples the NEURON file has.
pub fn compare_probes(neuron: &Path, mine: &Path, gids: &[u64], tol: f64) {
    let nv = read_csv(neuron);
    let mv = read_csv(mine);
    for gid in gids {
        let a = &nv[&format!("v{gid}")];
        let b = &mv[&format!("v@{gid}:soma(0.5)")];
        assert!(b.len() >= a.len(), "gid {gid}: miv has {} samples, NEURON {}", b.len(), a.len());
        let d = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        eprintln!("gid {gid}: max |dV| {d:.3e} mV over {} samples", a.len());
        assert!(d <= tol, "gid {gid}: max |dV| {d} mV");
    }
}

/// The LFP of `ReadoutElectrode` in miv's `results.h5` against NEURON's `lfp.csv` (its first sample is
/// stdinit's, at t = 0, then finitialize's): max difference within `tol` of the range.
pub fn compare_lfp(neuron: &Path, results: &Path, tol: f64) {
    let nl = read_csv(neuron);
    let a: Vec<f64> = nl["v"][1..].to_vec();
    let h = hdf5::File::open(results).unwrap();
    let b: Vec<f32> = h.dataset("Local Field Potential ReadoutElectrode/v").unwrap().read_raw().unwrap();
    assert_eq!(a.len(), b.len(), "samples every 0.1 ms from 0 to t_end");
    let scale = a.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    assert!(scale > 0.0, "NEURON's LFP is zero");
    let d = a.iter().zip(&b).map(|(x, &y)| (x - y as f64).abs()).fold(0.0, f64::max);
    eprintln!("LFP: max difference {:.3e} of the range {scale:.3}", d / scale);
    // miv writes float32, as MiV's run_network does.
    assert!(d <= tol * scale, "LFP: max difference {d} (range {scale})");
}
