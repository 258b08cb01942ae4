//! miv against MiV-Simulator/NEURON itself (docs/fidelity.md): `miv run experiment-miv.yaml` (MiV's templates,
//! the Cases' mechanisms) builds the network with `miv build`, checks that it is the network the reference was
//! made from, runs 100 ms and requires MiV/NEURON's spikes (same cells, times within 1e-6 of a step), soma
//! voltages within 1e-3 mV and the LFP (`miv_compat`) within 1e-5 of its range, from `neuron-cases/`, the output
//! of `bench/miv-reference/run_rc.py`: on the small network of `tests/reference/miv`, and on the full seed
//! network of `tests/reference/miv-full`.
//! Local only: MIV_CASES_MECHANISMS names the Cases' `3-interface-api/simulation/mechanisms` folder (not in this
//! repository); without it the tests say that they skipped. The full network takes minutes on one rank (2 on
//! the 2-core machine when quiet, 7-8 under load) and runs only with MIV_FULL_NETWORK=1 as well.
//! `tests/miv_standin.rs` runs the small network's comparison with the stand-in biophysics on every test run.

mod common;

use std::path::Path;

use common::miv_net::*;

/// Whether MIV_CASES_MECHANISMS names a folder; false (printed) when the test is to be skipped.
fn cases_mechanisms_given() -> bool {
    let Ok(mechanisms) = std::env::var("MIV_CASES_MECHANISMS") else {
        eprintln!("skipped: set MIV_CASES_MECHANISMS to MiV-Simulator-Cases' 3-interface-api/simulation/mechanisms");
        return false;
    };
    assert!(Path::new(&mechanisms).is_dir(), "MIV_CASES_MECHANISMS={mechanisms} is not a folder");
    true
}

#[test]
fn small_network_agrees_with_miv_simulator_and_neuron() {
    if !cases_mechanisms_given() {
        return;
    }
    let neuron = reference().join("neuron-cases");
    let dir = run_small_network("miv_reference", "experiment-miv.yaml");
    check_same_network(&dir, &neuron);
    compare_spikes(SMALL, &neuron.join("spikes.csv"), &dir.join("spikes.csv"), 100.0, 1e-6 * 0.025);
    // Soma voltages over 0-20 ms (PYR 64, 70; PVBC 88, 92; OLM 98, 101), through their first spikes.
    compare_probes(&neuron.join("probes.csv"), &dir.join("probes.csv"), &[64, 70, 88, 92, 98, 101], 1e-3);
    compare_lfp(&neuron.join("lfp.csv"), &dir.join("results.h5"), 1e-5);
}

#[test]
fn full_network_agrees_with_miv_simulator_and_neuron() {
    if !cases_mechanisms_given() {
        return;
    }
    if !full_network_requested() {
        return;
    }
    let neuron = reference_full().join("neuron-cases");
    let dir = run_network("miv_reference_full", &reference_full(), "experiment-miv.yaml");
    check_same_network(&dir, &neuron);
    compare_spikes(FULL, &neuron.join("spikes.csv"), &dir.join("spikes.csv"), 100.0, 1e-6 * 0.025);
    // Soma voltages (PYR 64, 70; PVBC 287, 291; OLM 380, 383).
    compare_probes(&neuron.join("probes.csv"), &dir.join("probes.csv"), &[64, 70, 287, 291, 380, 383], 1e-3);
    compare_lfp(&neuron.join("lfp.csv"), &dir.join("results.h5"), 1e-5);
}
