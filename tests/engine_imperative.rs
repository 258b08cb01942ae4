//! NEURON-like imperative calls on a loaded network (one process): read and set a state, read and set
//! connection weights, add a recording after the fact, and `psolve` in steps.

mod common;
use common::*;
use miv::engine::run::load_environment;
use miv::engine::{ExecutionEnvironment, Overrides};
use miv::partition::SerialComm;
use std::path::PathBuf;

/// The 4-cell ball-and-stick ring (gids 0..4, soma = section 0, dendrite = section 1); gid 0 kicked at 5 ms.
fn ring(name: &str) -> PathBuf {
    let out = scratch(name).join("net");
    let o = out.to_str().unwrap().to_string();
    miv(&["gen", "ring", "--n", "4", "--out", &o]).expect_ok("miv gen");
    out.join("experiment.yaml")
}

fn spikes(env: &ExecutionEnvironment) -> Vec<(u64, u64)> {
    env.gather_spikes().unwrap().iter().map(|s| (s.gid, s.t.to_bits())).collect()
}

#[test]
fn psolve_in_steps_equals_one_psolve() {
    let exp = ring("imperative_steps");
    let comm = SerialComm;
    let (_, mut env) = load_environment(&comm, &exp, &Overrides::default()).unwrap();
    let label = env.record(1, 0, 0.5, "v", 1).unwrap();
    env.finitialize(-65.0).unwrap();
    for t in [3.3, 7.0, 12.345, 25.0, 40.0] {
        env.psolve(t).unwrap();
        assert!((env.time() - t).abs() < 0.025, "time {} after psolve({t})", env.time());
    }
    let stepped = (spikes(&env), env.gather_traces().unwrap(), env.gather_lfp(0).is_err());
    env.reset().unwrap();
    assert_eq!(env.time(), 0.0);
    env.psolve(40.0).unwrap();
    let whole = (spikes(&env), env.gather_traces().unwrap(), true);
    assert!(!whole.0.is_empty(), "the ring fires");
    assert_eq!(whole.1[0].0, label);
    assert_eq!(whole.1[0].1.len(), 1601, "v every step from 0 to 40 ms");
    assert_eq!(stepped.0, whole.0, "spikes differ between psolve in steps and one psolve");
    assert_eq!(stepped.1, whole.1, "traces differ between psolve in steps and one psolve");
}

#[test]
fn setting_v_and_mechanism_states_takes_effect_at_the_next_step() {
    let exp = ring("imperative_state");
    let comm = SerialComm;
    let (_, mut env) = load_environment(&comm, &exp, &Overrides::default()).unwrap();
    // Before finitialize there is nothing to read.
    assert!(env.state(2, 0, 0.5, "v").unwrap_err().to_string().contains("finitialize"));
    env.finitialize(-65.0).unwrap();
    env.psolve(2.0).unwrap();
    let v = env.state(2, 0, 0.5, "v").unwrap();
    assert!((v + 65.0).abs() < 0.5, "gid 2 rests near -65 mV: {v}");
    let m = env.state(2, 0, 0.5, "hh.m").unwrap();
    assert!(m > 0.0 && m < 0.2, "hh m at rest: {m}");
    // Depolarise gid 2's soma above the detector threshold (10 mV): it fires in the next steps, long before
    // the ring's wave (gid 0 at ~6.7 ms, gid 2 at ~20 ms) would make it.
    env.set_state(2, 0, 0.5, "v", 40.0).unwrap();
    assert_eq!(env.state(2, 0, 0.5, "v").unwrap(), 40.0);
    env.set_state(2, 0, 0.5, "hh.m", 0.9).unwrap();
    assert_eq!(env.state(2, 0, 0.5, "hh.m").unwrap(), 0.9);
    env.psolve(2.025).unwrap();
    let v1 = env.state(2, 0, 0.5, "v").unwrap();
    assert!(v1 > 10.0 && v1 < 60.0, "one step after v = 40 (with m = 0.9 the sodium current holds it up): {v1}");
    env.psolve(4.0).unwrap();
    let s = env.gather_spikes().unwrap();
    assert!(s.iter().any(|s| s.gid == 2 && s.t <= 2.1), "gid 2 fires at once: {s:?}");
    // Errors name what is wrong.
    let e = env.set_state(2, 0, 0.5, "hh.gna", 1.0).unwrap_err().to_string();
    assert!(e.contains("gna"), "{e}");
    let e = env.state(2, 0, 0.5, "nosuch.x").unwrap_err().to_string();
    assert!(e.contains("nosuch"), "{e}");
    let e = env.state(99, 0, 0.5, "v").unwrap_err().to_string();
    assert!(e.contains("gid 99"), "{e}");
}

/// Peak depolarisation of gid 1's soma above rest after gid 0 fires, with the 0 -> 1 weight set to `w`.
fn psp_peak(env: &mut ExecutionEnvironment, w: f64) -> f64 {
    env.set_netcon_weights(0, 1, 0, &[w]).unwrap();
    env.reset().unwrap();
    env.psolve(30.0).unwrap();
    let traces = env.gather_traces().unwrap();
    let v = &traces[0].1;
    v.iter().cloned().fold(f64::MIN, f64::max) - v[0]
}

#[test]
fn weights_are_read_and_set_and_a_doubled_weight_doubles_a_small_psp() {
    let exp = ring("imperative_weights");
    let comm = SerialComm;
    let (_, mut env) = load_environment(&comm, &exp, &Overrides::default()).unwrap();
    // Before instantiation: the weight from the cells file's weights namespace.
    let w = 0.01f32 as f64; // float32 in the weights namespace
    assert_eq!(env.netcon_weights(0, 1).unwrap(), vec![vec![w]]);
    assert!(env.netcon_weights(2, 1).unwrap().is_empty(), "no connection 2 -> 1");
    env.finitialize(-65.0).unwrap();
    assert_eq!(env.netcon_weights(3, 0).unwrap(), vec![vec![w]]);
    // A recording added after the first finitialize, taken up by the next reset.
    env.record(1, 0, 0.5, "v", 4).unwrap();
    let small = psp_peak(&mut env, 0.0002);
    let double = psp_peak(&mut env, 0.0004);
    assert_eq!(env.netcon_weights(0, 1).unwrap(), vec![vec![0.0004]]);
    assert!(small > 0.05, "a PSP on gid 1: {small} mV");
    let r = double / small;
    assert!((1.8..2.2).contains(&r), "doubling a small weight doubles the PSP: {small} -> {double} mV");
    let full = psp_peak(&mut env, 0.01);
    assert!(full > 50.0, "the model's weight makes gid 1 fire: {full} mV");
    let e = env.set_netcon_weights(0, 1, 1, &[0.1]).unwrap_err().to_string();
    assert!(e.contains("no connection #1 from gid 0 onto gid 1"), "{e}");
}
