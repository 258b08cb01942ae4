//! The re-runnable execution environment: one network loaded once, trials run one after another with
//! `reset` between them (new STIM trains, direct events and probes per trial), each trial's spikes, LFP and
//! probe traces bit for bit those of a fresh process running that trial alone, on 1 rank and on 2.

mod common;
use common::*;
use std::path::PathBuf;

/// A 6-cell ring driven by 3 STIM (VecStim) cells, with an LFP electrode, 40 ms.
fn network(name: &str) -> PathBuf {
    let dir = scratch(name);
    let out = dir.join("net");
    let o = out.to_str().unwrap().to_string();
    miv(&["gen", "ring", "--n", "6", "--stim", "3", "--t-end", "40", "--out", &o]).expect_ok("miv gen");
    let exp = out.join("experiment.yaml");
    let text = std::fs::read_to_string(&exp).unwrap();
    let text = text.replace("output:", "lfp:\n  - {label: e, position: [100, 20, 0], dt_lfp: 0.5, fdst: 1.0}\noutput:");
    std::fs::write(&exp, text).unwrap();
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
