//! NEURON's ion_style rules and VALENCE in cell groups, with the test mechanisms of `mechanisms/ions`. Each
//! model is one compartment whose only conductance drives v to the species' reversal potential (tau 0.1 ms),
//! so v at the end of the run is the reversal potential in force; it is compared with the Nernst potential
//! computed here from the physical constants, or with the value set in the model.

mod common;

use common::cell::read_csv;
use common::{miv, repo_root, scratch};

/// RT/(zF) ln(co/ci) in mV with NEURON 9's constants (CODATA 2018).
fn nernst(ci: f64, co: f64, z: f64, celsius: f64) -> f64 {
    let (r, f) = (8.314_462_618_153_24, 96_485.332_123_310_01);
    1000.0 * r * (celsius + 273.15) / (z * f) * (co / ci).ln()
}

/// Run a one-compartment model with `mechanisms` and `ions` (YAML flow lists) at 34 degC; v and the probes at
/// the end of 5 ms, or the error output.
fn run(
    test: &str,
    mechanisms: &str,
    ions: &str,
    probes: &str,
) -> Result<std::collections::HashMap<String, f64>, String> {
    let dir = scratch(test);
    let model = dir.join("model.yaml");
    let yaml = format!(
        "mechanisms_path: {}\n\
         simulation: {{tstop: 5, dt: 0.025, celsius: 34, v_init: -65}}\n\
         morphology: {{sections: [{{name: soma, type: soma, L: 10, diam: 10, nseg: 1}}]}}\n\
         mechanisms: {mechanisms}\n\
         ions: {ions}\n\
         probes: [{{name: v, at: soma(0.5)}}{probes}]\n",
        repo_root().join("mechanisms").join("ions").display()
    );
    std::fs::write(&model, yaml).unwrap();
    let out = dir.join("out");
    let o = miv(&["cell", model.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    if !o.ok() {
        return Err(format!("{}{}", o.stdout, o.stderr));
    }
    let p = read_csv(&out.join("probes.csv"));
    Ok(p.into_iter().map(|(k, v)| (k, *v.last().unwrap())).collect())
}

#[test]
fn reading_calcium_concentrations_makes_eca_the_nernst_potential_at_initialisation() {
    // As MiV's PVBasketCell: eca set to 170.69 mV, but ch_CavL reads cai and cao, so NEURON uses their Nernst
    // potential. Default concentrations (5e-5 / 2 mM) and set ones.
    let got =
        run("ion-style-careads", "[{region: soma, mechanism: careads}]", "[{region: soma, ion: ca, erev: 170.69}]", "")
            .expect("careads");
    let want = nernst(5e-5, 2.0, 2.0, 34.0);
    assert!((got["v"] - want).abs() < 1e-9, "v {} vs Nernst {want}", got["v"]);
    let got = run(
        "ion-style-careads-conc",
        "[{region: soma, mechanism: careads}]",
        "[{region: soma, ion: ca, erev: 170.69, conc_in: 1.0e-4, conc_out: 3}]",
        ", {name: ratio, at: soma(0.5), variable: careads.ratio}",
    )
    .expect("careads with concentrations");
    let want = nernst(1e-4, 3.0, 2.0, 34.0);
    assert!((got["v"] - want).abs() < 1e-9, "v {} vs Nernst {want}", got["v"]);
    assert!((got["ratio"] - 3e4).abs() < 1e-6, "the INITIAL block sees the set concentrations: {}", got["ratio"]);
}

#[test]
fn reading_only_eca_keeps_the_set_value_unless_a_neighbour_reads_concentrations() {
    // As MiV's ch_CavN alone: the set eca stays.
    let got =
        run("ion-style-caerev", "[{region: soma, mechanism: caerev}]", "[{region: soma, ion: ca, erev: 170.69}]", "")
            .expect("caerev");
    assert!((got["v"] - 170.69).abs() < 1e-9, "v {}", got["v"]);
    // The style belongs to the ion at the node: with careads in the same section both see the Nernst value.
    let got = run(
        "ion-style-both",
        "[{region: soma, mechanism: caerev}, {region: soma, mechanism: careads}]",
        "[{region: soma, ion: ca, erev: 170.69}]",
        "",
    )
    .expect("caerev + careads");
    let want = nernst(5e-5, 2.0, 2.0, 34.0);
    assert!((got["v"] - want).abs() < 1e-9, "v {} vs Nernst {want}", got["v"]);
}

#[test]
fn a_new_species_takes_its_charge_from_valence() {
    let got = run(
        "ion-style-valence",
        "[{region: soma, mechanism: xreads}]",
        "[{region: soma, ion: x, conc_in: 1, conc_out: 10}]",
        "",
    )
    .expect("xreads");
    let want = nernst(1.0, 10.0, 2.0, 34.0);
    assert!((got["v"] - want).abs() < 1e-9, "v {} vs Nernst with charge 2 {want}", got["v"]);
}

#[test]
fn contradicting_valences_are_refused() {
    let err = run(
        "ion-style-valence-conflict",
        "[{region: soma, mechanism: xreads}, {region: soma, mechanism: xunit}]",
        "[]",
        "",
    )
    .expect_err("two charges for x");
    assert!(err.contains("ion x") && err.contains("VALENCE 1") && err.contains("xreads"), "{err}");
}
