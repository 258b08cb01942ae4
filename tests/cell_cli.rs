//! `miv cell` end to end: the example models of examples/cells run through the binary and are compared with
//! the NEURON 9.0.2 reference data (tests/reference/neuron-arbor); invalid models are rejected naming the YAML key.

mod common;

use common::cell::*;
use common::{miv, repo_root, scratch};
use std::collections::HashMap;
use std::path::PathBuf;

fn example(name: &str) -> PathBuf {
    repo_root().join("examples").join("cells").join(name)
}

/// Run `miv cell` on a model text (written into a scratch dir); returns (probes.csv, spikes as (detector, t)).
fn run_model(test: &str, yaml: &str) -> (HashMap<String, Vec<f64>>, Vec<(String, f64)>) {
    let dir = scratch(test);
    let model = dir.join("model.yaml");
    std::fs::write(&model, yaml).unwrap();
    let out = dir.join("out");
    miv(&["cell", model.to_str().unwrap(), "--out", out.to_str().unwrap()]).expect_ok("miv cell");
    let probes = read_csv(&out.join("probes.csv"));
    let text = std::fs::read_to_string(out.join("spikes.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("detector,t_ms"));
    let spikes = lines
        .map(|l| {
            let (d, t) = l.rsplit_once(',').unwrap();
            (d.to_string(), t.parse().unwrap())
        })
        .collect();
    (probes, spikes)
}

fn variant(file: &str, replacements: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(example(file)).unwrap();
    for (from, to) in replacements {
        assert!(text.contains(from), "{file} has no {from:?}");
        text = text.replace(from, to);
    }
    text
}

#[test]
fn hh_soma_example_matches_neuron() {
    let refs = read_json(&reference_file("hh_soma", "neuron_spikes.json"));
    let vref = read_csv(&reference_file("hh_soma", "neuron_v.csv"));
    for (run, method, table) in [
        ("be_exact", "backward_euler", "0"),
        ("cn_exact", "crank_nicolson", "0"),
        ("be_tab", "backward_euler", "1"),
        ("cn_tab", "crank_nicolson", "1"),
    ] {
        let yaml = variant(
            "hh_soma.yaml",
            &[("method: backward_euler", &format!("method: {method}")), ("usetable: 0", &format!("usetable: {table}"))],
        );
        let (p, spikes) = run_model(&format!("cell_cli_hh_{run}"), &yaml);
        let grid: Vec<f64> = spikes.iter().map(|s| s.1).collect();
        let r = &refs["runs"][run];
        let d_grid = max_spike_diff(&grid, &numbers(&r["netcon_thr10"]), run);
        let d_interp =
            max_spike_diff(&crossings(&p["t_ms"], &p["v_soma"], 10.0), &numbers(&r["interp_cross_10mV"]), run);
        // The trace every 0.1 ms against NEURON's (the reference CSV has 6 decimals).
        let col = &vref[&format!("v_{run}")];
        let worst = (0..col.len()).map(|k| (p["v_soma"][4 * k] - col[k]).abs()).fold(0.0, f64::max);
        assert!(
            d_grid <= 0.002 && d_interp <= 0.002 && worst <= 0.2,
            "{run}: spikes {d_grid} {d_interp}, trace {worst}"
        );
    }
}

#[test]
fn hh_soma_interpolated_rule_gives_the_interpolated_crossings() {
    let refs = read_json(&reference_file("hh_soma", "neuron_spikes.json"));
    let yaml = variant("hh_soma.yaml", &[("spike_rule: neuron", "spike_rule: interpolated")]);
    let (_, spikes) = run_model("cell_cli_hh_interp", &yaml);
    let t: Vec<f64> = spikes.iter().map(|s| s.1).collect();
    assert!(max_spike_diff(&t, &numbers(&refs["runs"]["be_exact"]["interp_cross_10mV"]), "interp") <= 0.002);
}

#[test]
fn passive_cable_example_matches_analytic_and_neuron() {
    let summary = read_json(&reference_file("passive_cable", "neuron_summary.json"));
    let vref = read_csv(&reference_file("passive_cable", "neuron_v.csv"));
    for (tag, method) in [("be", "backward_euler"), ("cn", "crank_nicolson")] {
        let yaml = variant("passive_cable.yaml", &[("method: backward_euler", &format!("method: {method}"))]);
        let (p, spikes) = run_model(&format!("cell_cli_cable_{tag}"), &yaml);
        assert!(spikes.is_empty());
        // Steady state at the end of the pulse (t = 45 ms, row 450 of the 0.1 ms samples).
        let k = p["t_ms"].iter().position(|&t| (t - 45.0).abs() < 1e-9).unwrap();
        let e = -65.0;
        for (col, key) in [("v1", "steady_dv_at_x1_mV"), ("v0", "steady_dv_at_x0_mV")] {
            let ours = p[col][k] - e;
            let neuron = summary[key][tag].as_f64().unwrap();
            assert!((ours - neuron).abs() <= 0.002, "{tag} {col}: {ours} vs NEURON {neuron}");
            // x = 0 carries the discretisation's I R_half artefact (see the reference README); x = 1 does not.
            if col == "v1" {
                let analytic = summary[key]["analytic"].as_f64().unwrap();
                assert!((ours - analytic).abs() <= 0.002, "{tag} {col}: {ours} vs analytic {analytic}");
            }
        }
        let mid = p["v05"][k] - e;
        let analytic = summary["steady_dv_at_x0.5_mV"]["analytic"].as_f64().unwrap();
        assert!((mid - analytic).abs() <= 0.002, "{tag} x=0.5: {mid} vs analytic {analytic}");
        // Whole traces against NEURON.
        for col in ["v0", "v05", "v1"] {
            let theirs = &vref[&format!("{col}_{tag}")];
            let worst = (0..theirs.len()).map(|i| (p[col][i] - theirs[i]).abs()).fold(0.0, f64::max);
            assert!(worst <= 0.002, "{tag} {col}: max |dV| {worst}");
        }
    }
}

#[test]
fn ball_and_stick_example_matches_neuron() {
    let refs = read_json(&reference_file("ball_and_stick", "neuron_spikes.json"));
    let vref = read_csv(&reference_file("ball_and_stick", "neuron_v.csv"));
    let (p, spikes) = run_model("cell_cli_bs", &std::fs::read_to_string(example("ball_and_stick.yaml")).unwrap());
    let t: Vec<f64> = spikes.iter().map(|s| s.1).collect();
    assert!(max_spike_diff(&t, &numbers(&refs["exact"]["netcon_thr10"]), "grid") <= 0.002);
    let interp = crossings(&p["t_ms"], &p["vsoma"], 10.0);
    assert!(max_spike_diff(&interp, &numbers(&refs["exact"]["interp_cross_10mV"]), "interp") <= 0.002);
    for col in ["vsoma", "vdend05", "vdend1"] {
        let theirs = &vref[&format!("{col}_exact")];
        let worst = (0..theirs.len()).map(|k| (p[col][4 * k] - theirs[k]).abs()).fold(0.0, f64::max);
        assert!(worst <= 0.2, "{col}: max |dV| {worst}");
    }
    // The synaptic conductance peaks at the weight (0.01 uS) after the first strong event.
    let gmax = p["g_syn"].iter().zip(&p["t_ms"]).filter(|(_, &t)| t < 10.0).map(|(g, _)| *g).fold(0.0, f64::max);
    assert!((gmax - 0.01).abs() < 1e-4, "peak g {gmax}");
}

#[test]
fn every_example_runs() {
    for entry in std::fs::read_dir(repo_root().join("examples").join("cells")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let out = scratch(&format!("cell_cli_example_{}", path.file_stem().unwrap().to_str().unwrap()));
        miv(&["cell", path.to_str().unwrap(), "--out", out.to_str().unwrap()]).expect_ok(&path.display().to_string());
        let probes = read_csv(&out.join("probes.csv"));
        assert!(
            probes["t_ms"].len() > 1 && probes.values().all(|c| c.iter().all(|v| v.is_finite())),
            "{}",
            path.display()
        );
    }
}

/// A model that must be rejected: the error names `key` and says `what`.
fn rejected(test: &str, yaml: &str, key: &str, what: &str) {
    let dir = scratch(test);
    let model = dir.join("model.yaml");
    std::fs::write(&model, yaml).unwrap();
    let out = dir.join("out");
    let o = miv(&["cell", model.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.code, Some(1), "{test}: should fail\n{}{}", o.stdout, o.stderr);
    assert!(
        o.stderr.contains(key) && o.stderr.contains(what),
        "{test}: {:?} should name {key:?} and say {what:?}",
        o.stderr
    );
    assert!(o.stderr.contains("model.yaml"), "{test}: error should name the file: {}", o.stderr);
    assert!(!out.join("probes.csv").exists());
}

#[test]
fn invalid_models_are_rejected_naming_the_key() {
    let bs = std::fs::read_to_string(example("ball_and_stick.yaml")).unwrap();
    let sub = |from: &str, to: &str| {
        assert!(bs.contains(from), "{from}");
        bs.replace(from, to)
    };
    rejected(
        "cell_cli_bad_mech",
        &sub("mechanism: pas", "mechanism: pasx"),
        "mechanisms[1].mechanism",
        "unknown mechanism \"pasx\"",
    );
    rejected("cell_cli_bad_param", &sub("gnabar: 0.12", "gnabr: 0.12"), "mechanisms[0].params.gnabr", "no parameter");
    rejected(
        "cell_cli_bad_point_param",
        &sub("tau1: 0.5", "tau3: 0.5"),
        "point_processes[0].params.tau3",
        "no parameter",
    );
    rejected(
        "cell_cli_negative_diam",
        &sub("L: 200, diam: 1,", "L: 200, diam: -1,"),
        "morphology.sections[1].diam",
        "must be positive",
    );
    rejected("cell_cli_zero_dt", &sub("dt: 0.025", "dt: 0"), "simulation.dt", "must be a positive");
    rejected("cell_cli_negative_dt", &sub("dt: 0.025", "dt: -0.1"), "simulation.dt", "must be a positive");
    rejected(
        "cell_cli_unknown_key",
        &sub("  celsius: 6.3", "  celsius: 6.3\n  temperature: 6.3"),
        "simulation",
        "unknown field `temperature`",
    );
    rejected(
        "cell_cli_wrong_kind",
        &sub("mechanism: Exp2Syn", "mechanism: hh"),
        "point_processes[0].mechanism",
        "density mechanism",
    );
    rejected(
        "cell_cli_bad_location",
        &sub("at: dend(0.5)", "at: dendrite(0.5)"),
        "point_processes[0].at",
        "no section named \"dendrite\"",
    );
    let cycle = "simulation: {tstop: 1}\nmorphology:\n  sections:\n    - {name: soma, L: 10, diam: 10}\n    \
                 - {name: a, L: 10, diam: 1, parent: b}\n    - {name: b, L: 10, diam: 1, parent: a}\n";
    rejected("cell_cli_cycle", cycle, "morphology.sections[1].parent", "cycle");
}

/// MiV's three morphologies (SWC, contracted as neuroh5 does, 3-D points, d_lambda nseg, define_shape) with
/// the biophysics of examples/cells/pvbc_swc.yaml, against NEURON 9.0.2 given the same sections
/// (tests/reference/cell/*_neuron.json, made by bench/neuron/cell_geometry.py).
#[test]
fn swc_morphologies_match_neuron() {
    for (cell, vb) in [("PVBC", "apical[0](1)"), ("OLM", "axon[0](1)"), ("PYR", "apical[0](1)")] {
        let swc = common::morphology_dir().join(format!("{cell}.swc"));
        let yaml = variant("pvbc_swc.yaml", &[("../morphology/PVBC.swc", swc.to_str().unwrap()), ("apical[0](1)", vb)]);
        let dir = scratch(&format!("cell_cli_swc_{cell}"));
        std::fs::write(dir.join("model.yaml"), yaml).unwrap();
        let out = dir.join("out");
        miv(&["cell", dir.join("model.yaml").to_str().unwrap(), "--out", out.to_str().unwrap(), "--geometry"])
            .expect_ok(cell);
        let ours = read_json(&out.join("geometry.json"));
        let theirs =
            read_json(&repo_root().join("tests/reference/cell").join(format!("{}_neuron.json", cell.to_lowercase())));
        let nseg: Vec<u64> = ours["sections"].as_array().unwrap().iter().map(|s| s["nseg"].as_u64().unwrap()).collect();
        let want: Vec<u64> = theirs["d_lambda_nseg"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
        assert_eq!(nseg, want, "{cell}: d_lambda nseg");
        for (s, p) in ours["sections"].as_array().unwrap().iter().zip(theirs["first_points"].as_array().unwrap()) {
            let (a, b) = (numbers(&s["placed_first_point"]), numbers(p));
            assert!(
                a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-3),
                "{cell} {}: define_shape {a:?} vs {b:?}",
                s["name"]
            );
        }
        let (on, tn) = (ours["nodes"].as_array().unwrap(), theirs["nodes"].as_array().unwrap());
        assert_eq!(on.len(), tn.len());
        for (k, (a, b)) in on.iter().zip(tn).enumerate() {
            for key in ["area", "ri"] {
                let (x, y) = (a[key].as_f64().unwrap(), b[key].as_f64().unwrap());
                assert!((x - y).abs() <= 1e-6 * y.abs(), "{cell} node {k} {key}: {x} vs NEURON {y}");
            }
        }
        let p = read_csv(&out.join("probes.csv"));
        for col in ["vsoma", "va", "vb"] {
            let t = numbers(&theirs["traces"][col]);
            let worst = t.iter().zip(&p[col]).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(worst <= 0.002, "{cell} {col}: max |dV| {worst} mV");
        }
        let text = std::fs::read_to_string(out.join("spikes.csv")).unwrap();
        let ours: Vec<f64> = text.lines().skip(1).map(|l| l.rsplit_once(',').unwrap().1.parse().unwrap()).collect();
        assert!(max_spike_diff(&ours, &numbers(&theirs["spikes"]), cell) <= 0.002);
    }
}

/// `miv cell` is a one-process command: under mpirun every rank agrees to refuse it, and it says why once.
#[cfg(feature = "mpi")]
#[test]
fn cell_refuses_to_run_under_mpirun() {
    let out = scratch("cell_cli_mpirun").join("out");
    let model = example("hh_soma.yaml");
    let o = common::mpirun(
        2,
        &["cell", model.to_str().unwrap(), "--out", out.to_str().unwrap()],
        std::time::Duration::from_secs(120),
    );
    assert_eq!(o.code, Some(1), "{}{}", o.stdout, o.stderr);
    assert_eq!(o.stderr.matches("without mpirun").count(), 1, "{}", o.stderr);
    assert!(!out.join("probes.csv").exists());
}
