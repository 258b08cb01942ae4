//! The re-runnable execution environment: one network loaded once, trials run one after another with
//! `reset` between them (new STIM trains, direct events and probes per trial), each trial's spikes, LFP and
//! probe traces bit for bit those of a fresh process running that trial alone, on 1 rank and on 2.

mod common;
use common::*;
use std::path::PathBuf;

/// A 6-cell ring driven by 3 STIM (VecStim) cells, with an LFP electrode, 40 ms.
fn network(name: &str) -> PathBuf {
    ring(name, false)
}

/// The ring; with `noise`, every ring cell also gets an Ornstein-Uhlenbeck conductance noise source
/// (`mechanisms/constructs/ounoise.mod`, normal deviates from its per-instance random stream).
fn ring(name: &str, noise: bool) -> PathBuf {
    let dir = scratch(name);
    let out = dir.join("net");
    let o = out.to_str().unwrap().to_string();
    miv(&["gen", "ring", "--n", "6", "--stim", "3", "--t-end", "40", "--out", &o]).expect_ok("miv gen");
    let exp = out.join("experiment.yaml");
    let text = std::fs::read_to_string(&exp).unwrap();
    let text = text.replace("output:", "lfp:\n  - {label: e, position: [100, 20, 0], dt_lfp: 0.5, fdst: 1.0}\noutput:");
    std::fs::write(&exp, text).unwrap();
    if noise {
        let mech = out.join("mech");
        std::fs::create_dir_all(&mech).unwrap();
        std::fs::copy(repo_root().join("mechanisms/constructs/ounoise.mod"), mech.join("ounoise.mod")).unwrap();
        let text = std::fs::read_to_string(&exp).unwrap();
        std::fs::write(&exp, format!("mechanisms: mech\n{text}")).unwrap();
        let template = out.join("templates/BallStick.yaml");
        let mut t = std::fs::read_to_string(&template).unwrap();
        t.push_str("point_processes:\n  - {name: noise, mechanism: ounoise, at: soma(0.5), params: {g0: 0, sd: 0.004, tau: 2}}\n");
        std::fs::write(&template, t).unwrap();
    }
    exp
}

fn lines(o: &Outcome) -> Vec<serde_json::Value> {
    o.stdout.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn trial_after_reset_equals_a_fresh_process_running_it_alone() {
    let exp = network("engine_reset");
    let e = exp.to_str().unwrap();
    let all = lines(&miv(&["-q", "debug", "trials", e, "--trials", "0,1,2"]).expect_ok("three trials"));
    assert_eq!(all.len(), 3);
    for (i, k) in ["0", "1", "2"].iter().enumerate() {
        let alone = lines(&miv(&["-q", "debug", "trials", e, "--trials", k]).expect_ok("one trial"));
        assert_eq!(alone.len(), 1);
        // serde_json writes f64 in shortest round-trip form: equal text is equal bits.
        assert_eq!(all[i].to_string(), alone[0].to_string(), "trial {k} after reset differs from trial {k} alone");
    }
    // The trials really differ (new trains, events and probes are taken up).
    assert_ne!(all[0]["spikes"], all[2]["spikes"]);
    assert_ne!(all[0]["lfp"], all[1]["lfp"]);
    assert_eq!(all[1]["traces"].as_array().unwrap().len(), 2, "trial 1 records v and hh.m");
    assert_eq!(all[2]["traces"].as_array().unwrap().len(), 1, "probes replaced again");
    let lfp = all[0]["lfp"][0].as_array().unwrap();
    assert_eq!(lfp.len(), 81, "LFP every 0.5 ms from 0 to 40 ms");
    assert!(all[0]["spikes"].as_array().unwrap().len() > 10);

    #[cfg(feature = "mpi")]
    {
        let d = std::time::Duration::from_secs(300);
        let two = lines(&mpirun(2, &["-q", "debug", "trials", e, "--trials", "0,1,2"], d).expect_ok("2 ranks"));
        assert_eq!(two.len(), 3);
        for i in 0..3 {
            assert_eq!(two[i].to_string(), all[i].to_string(), "trial {i} differs on 2 ranks");
        }
        let alone = lines(&mpirun(2, &["-q", "debug", "trials", e, "--trials", "2"], d).expect_ok("2 ranks, one"));
        assert_eq!(alone[0].to_string(), all[2].to_string(), "trial 2 alone on 2 ranks");
    }
}

/// Random mechanisms restart their streams on `reset`: with a noise source in every ring cell, trial k after
/// other trials equals trial k alone and the same trial repeated in one process, on 1 rank and on 2.
#[test]
fn noisy_trial_after_reset_equals_a_fresh_process_running_it_alone() {
    let exp = ring("engine_reset_noise", true);
    let e = exp.to_str().unwrap();
    let all = lines(&miv(&["-q", "debug", "trials", e, "--trials", "0,1,0"]).expect_ok("three noisy trials"));
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].to_string(), all[2].to_string(), "trial 0 repeated after trial 1 differs");
    for (i, k) in [(0, "0"), (1, "1")] {
        let alone = lines(&miv(&["-q", "debug", "trials", e, "--trials", k]).expect_ok("one noisy trial"));
        assert_eq!(all[i].to_string(), alone[0].to_string(), "noisy trial {k} after reset differs from it alone");
    }
    // The noise is there: the same trial without it records another voltage trace.
    let quiet = lines(
        &miv(&["-q", "debug", "trials", network("engine_reset_quiet").to_str().unwrap(), "--trials", "0"])
            .expect_ok("quiet"),
    );
    assert_ne!(all[0]["traces"], quiet[0]["traces"], "the noise source changes nothing");

    #[cfg(feature = "mpi")]
    {
        let d = std::time::Duration::from_secs(300);
        let two = lines(&mpirun(2, &["-q", "debug", "trials", e, "--trials", "0,1,0"], d).expect_ok("2 ranks"));
        for i in 0..3 {
            assert_eq!(two[i].to_string(), all[i].to_string(), "noisy trial {i} differs on 2 ranks");
        }
    }
}
