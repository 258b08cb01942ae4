//! miv against MiV-Simulator/NEURON itself on the small network of `tests/reference/miv` (docs/fidelity.md):
//! `miv run experiment-miv.yaml` (MiV's templates, the Cases' mechanisms) builds the network with `miv build`,
//! checks that it is the network the reference was made from, runs 100 ms and requires MiV/NEURON's spikes
//! (same cells, times within 1e-6 of a step), soma voltages within 1e-3 mV and the LFP (`miv_compat`) within
//! 1e-5 of its range, from `neuron-cases/`, the output of `bench/miv-reference/run_rc.py`.
//! Local only: MIV_CASES_MECHANISMS names the Cases' `3-interface-api/simulation/mechanisms` folder (not in this
//! repository); without it the test says that it skipped.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::cell::{read_csv, read_json};
use common::*;

fn population(gid: u64) -> &'static str {
    match gid {
        0..=63 => "STIM",
        64..=87 => "PYR",
        88..=97 => "PVBC",
        _ => "OLM",
    }
}

type Spikes = Vec<(u64, f64)>;

fn spikes(path: &Path) -> Spikes {
    let c = read_csv(path);
    c["gid"].iter().zip(&c["t_ms"]).map(|(&g, &t)| (g as u64, t)).collect()
}

#[test]
fn small_network_agrees_with_miv_simulator_and_neuron() {
    let Ok(mechanisms) = std::env::var("MIV_CASES_MECHANISMS") else {
        eprintln!("skipped: set MIV_CASES_MECHANISMS to MiV-Simulator-Cases' 3-interface-api/simulation/mechanisms");
        return;
    };
    assert!(Path::new(&mechanisms).is_dir(), "MIV_CASES_MECHANISMS={mechanisms} is not a folder");
    let root = repo_root();
    let refdir = root.join("tests/reference/miv");
    let dir = scratch("miv_reference");
    let examples = root.join("examples");
    let morph = morphology_dir();
    let net = std::fs::read_to_string(refdir.join("network.yaml")).unwrap();
    let net = net
        .replace("morphology: ../../../examples/morphology", &format!("morphology: {}", morph.display()))
        .replace("../../../examples", &examples.display().to_string());
    std::fs::write(dir.join("network.yaml"), net).unwrap();
    let exp = std::fs::read_to_string(refdir.join("experiment-miv.yaml")).unwrap();
    let exp = exp
        .replace("../../../examples", &examples.display().to_string())
        .replace("out/", &format!("{}/", dir.display()));
    std::fs::write(dir.join("experiment.yaml"), exp).unwrap();

    miv(&["-q", "run", dir.join("experiment.yaml").to_str().unwrap()]).expect_ok("miv run of the small network");

    // The same network: the construction job the reference was made from, with the same edges.
    let prov = read_json(&refdir.join("neuron-cases/provenance.json"));
    let job = prov["network"]["neuroh5_graph_job"].as_str().unwrap();
    let conns = dir.join(".miv-store/neuroh5_graph").join(job).join("connections.h5");
    assert!(conns.is_file(), "miv build no longer builds job {job} (the network of the reference)");
    let ls = miv(&["h5", "ls", conns.to_str().unwrap(), "--json"]).expect_ok("h5 ls");
    let ls: serde_json::Value = serde_json::from_str(&ls.stdout).unwrap();
    for p in ls["projections"].as_array().unwrap() {
        let key = format!("{}->{}", p["source"].as_str().unwrap(), p["destination"].as_str().unwrap());
        assert_eq!(p["edges"], prov["network"]["edges"][&key], "{key}");
    }

    let n_spikes = spikes(&refdir.join("neuron-cases/spikes.csv"));
    let m_spikes = spikes(&dir.join("spikes.csv"));
    // End-time convention: NEURON records the spikes of events due at exactly t_end; miv's run ends before them.
    let t_end = 100.0;
    let (mut before, at_end): (Spikes, Spikes) = n_spikes.iter().partition(|x| x.1 < t_end);
    assert!(at_end.iter().all(|x| x.1 == t_end), "{at_end:?}");
    let mut mine = m_spikes.clone();
    let key = |a: &(u64, f64), b: &(u64, f64)| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1));
    before.sort_by(key);
    mine.sort_by(key);
    let count = |s: &[(u64, f64)]| {
        let mut c: BTreeMap<&str, usize> = BTreeMap::new();
        s.iter().for_each(|x| *c.entry(population(x.0)).or_default() += 1);
        c
    };
    eprintln!("spikes per population before t_end: NEURON {:?}, miv {:?}", count(&before), count(&mine));
    assert_eq!(count(&mine), count(&before), "spikes per population");
    let dt = 0.025;
    for (a, b) in before.iter().zip(&mine) {
        assert_eq!(a.0, b.0, "spike of gid {} at {} ms vs gid {} at {} ms", a.0, a.1, b.0, b.1);
        assert!((a.1 - b.1).abs() <= 1e-6 * dt, "gid {}: NEURON {} ms, miv {} ms", a.0, a.1, b.1);
    }

    // Soma voltages over 0-20 ms (PYR 64, 70; PVBC 88, 92; OLM 98, 101), through their first spikes.
    let nv = read_csv(&refdir.join("neuron-cases/probes.csv"));
    let mv = read_csv(&dir.join("probes.csv"));
    for gid in [64, 70, 88, 92, 98, 101] {
        let a = &nv[&format!("v{gid}")];
        let b = &mv[&format!("v@{gid}:soma(0.5)")];
        let d = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        eprintln!("gid {gid}: max |dV| over 0-20 ms {d:.3e} mV");
        assert!(d <= 1e-3, "gid {gid}: max |dV| {d} mV over 0-20 ms");
    }

    // The LFP with miv_compat: NEURON's first sample is stdinit's (t = 0), then finitialize's.
    let nl = read_csv(&refdir.join("neuron-cases/lfp.csv"));
    let a: Vec<f64> = nl["v"][1..].to_vec();
    let h = hdf5::File::open(dir.join("results.h5")).unwrap();
    let b: Vec<f32> = h.dataset("Local Field Potential ReadoutElectrode/v").unwrap().read_raw().unwrap();
    assert_eq!(a.len(), b.len(), "samples every 0.1 ms from 0 to t_end");
    let scale = a.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let d = a.iter().zip(&b).map(|(x, &y)| (x - y as f64).abs()).fold(0.0, f64::max);
    eprintln!("LFP 0-100 ms: max difference {:.3e} of the range {scale:.3}", d / scale);
    // miv writes float32, as MiV's run_network does.
    assert!(d <= 1e-5 * scale, "LFP: max difference {d} (range {scale})");
}
