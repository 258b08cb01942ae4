//! miv against MiV-Simulator/NEURON itself on the small network of `tests/reference/miv` (docs/fidelity.md):
//! `miv run experiment-miv.yaml` (MiV's templates, the Cases' mechanisms) builds the network with `miv build`,
//! checks that it is the network the reference was made from, runs 100 ms and requires MiV/NEURON's spikes
//! (same cells, times within 1e-6 of a step), soma voltages within 1e-3 mV and the LFP (`miv_compat`) within
//! 1e-5 of its range, from `neuron-cases/`, the output of `bench/miv-reference/run_rc.py`.
//! Local only: MIV_CASES_MECHANISMS names the Cases' `3-interface-api/simulation/mechanisms` folder (not in this
//! repository); without it the test says that it skipped. `tests/miv_standin.rs` runs the same comparison with
//! the stand-in biophysics on every test run.

mod common;

use std::path::Path;

use common::miv_net::*;

#[test]
fn small_network_agrees_with_miv_simulator_and_neuron() {
    let Ok(mechanisms) = std::env::var("MIV_CASES_MECHANISMS") else {
        eprintln!("skipped: set MIV_CASES_MECHANISMS to MiV-Simulator-Cases' 3-interface-api/simulation/mechanisms");
        return;
    };
    assert!(Path::new(&mechanisms).is_dir(), "MIV_CASES_MECHANISMS={mechanisms} is not a folder");
    let neuron = reference().join("neuron-cases");
    let dir = run_small_network("miv_reference", "experiment-miv.yaml");
    check_same_network(&dir, &neuron);
    compare_spikes(&neuron.join("spikes.csv"), &dir.join("spikes.csv"), 100.0, 1e-6 * 0.025);
    // Soma voltages over 0-20 ms (PYR 64, 70; PVBC 88, 92; OLM 98, 101), through their first spikes.
    compare_probes(&neuron.join("probes.csv"), &dir.join("probes.csv"), &[64, 70, 88, 92, 98, 101], 1e-3);
    compare_lfp(&neuron.join("lfp.csv"), &dir.join("results.h5"), 1e-5);
}
