//! The seed's reservoir network end to end: `miv run examples/rc-network/experiment.yaml` builds the network
//! through the construction jobs (NeuroH5 written by many ranks), loads it with MiV's synapse semantics
//! (LinExp2Syn/LinExp2SynNMDA compiled from NMODL at run time), plays the stimulus and records spikes and
//! LFP, with identical results on 1 and 2 ranks.

mod common;
use common::*;
use std::path::Path;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name == ".miv-store" || name.to_string_lossy().ends_with(".h5") || name.to_string_lossy().ends_with(".csv") {
            continue;
        }
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(&name));
        } else {
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

#[test]
fn rc_network_builds_runs_and_is_the_same_on_1_and_2_ranks() {
    let dir = scratch("rc_network").join("rc");
    copy_dir(&repo_root().join("examples/rc-network"), &dir);
    // The morphologies are referenced relative to the example's place in the repository.
    let net = dir.join("network.yaml");
    let text = std::fs::read_to_string(&net).unwrap();
    let morph = morphology_dir();
    std::fs::write(&net, text.replace("morphology: ../morphology", &format!("morphology: {}", morph.display())))
        .unwrap();
    let exp = dir.join("experiment.yaml");
    let text = std::fs::read_to_string(&exp).unwrap();
    assert!(text.contains("t_end: 500"));
    std::fs::write(&exp, text.replace("t_end: 500", "t_end: 60")).unwrap();

    let o = miv(&["-q", "run", exp.to_str().unwrap(), "--json"]).expect_ok("rc network, one process");
    let s: serde_json::Value = serde_json::from_str(o.stdout.trim()).expect("summary");
    assert_eq!(s["cells"], 401, "STIM 64 + PYR 223 + PVBC 93 + OLM 21");
    assert!(s["connections"].as_u64().unwrap() > 1_000_000, "MiV's densities give millions of synapses");
    // Instances by mechanism: one VecStim per STIM cell; the stand-in's channels and both synapse types.
    let mechs = &s["mechanisms"];
    assert_eq!(mechs["VecStim"], 64, "{mechs}");
    for name in ["hh", "pas", "LinExp2Syn", "LinExp2SynNMDA"] {
        assert!(mechs[name].as_u64().is_some_and(|n| n > 0), "{name}: {mechs}");
    }
    let spikes = std::fs::read_to_string(dir.join("spikes.csv")).unwrap();
    let gids: Vec<u64> = spikes.lines().skip(1).map(|l| l.split(',').next().unwrap().parse().unwrap()).collect();
    // STIM (0..64) plays its trains; the driven pyramidal cells (64..287) fire too.
    assert!(gids.iter().any(|&g| g < 64) && gids.iter().any(|&g| (64..287).contains(&g)), "{spikes}");
    let h = hdf5::File::open(dir.join("results.h5")).unwrap();
    let v: Vec<f32> = h.dataset("Local Field Potential ReadoutElectrode/v").unwrap().read_raw().unwrap();
    assert_eq!(v.len(), 601, "LFP every 0.1 ms from 0 to 60 ms");
    drop(h);

    #[cfg(feature = "mpi")]
    {
        let one = spikes;
        let one_lfp = v;
        let o2 = mpirun(2, &["-q", "run", exp.to_str().unwrap(), "--json"], std::time::Duration::from_secs(600))
            .expect_ok("rc network, 2 ranks");
        let s2: serde_json::Value = serde_json::from_str(o2.stdout.trim()).expect("summary of 2 ranks");
        assert_eq!(s2["mechanisms"], s["mechanisms"], "instances by mechanism differ between 1 and 2 ranks");
        assert_eq!(
            std::fs::read_to_string(dir.join("spikes.csv")).unwrap(),
            one,
            "spikes differ between 1 and 2 ranks"
        );
        let h = hdf5::File::open(dir.join("results.h5")).unwrap();
        let v2: Vec<f32> = h.dataset("Local Field Potential ReadoutElectrode/v").unwrap().read_raw().unwrap();
        assert_eq!(v2, one_lfp, "LFP differs between 1 and 2 ranks");
    }
    discard_scratch("rc_network");
}
