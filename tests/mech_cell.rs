//! `miv cell` models using `.mod` mechanisms by name from `mechanisms_path`.

mod common;

use std::path::Path;

use common::cell::{numbers, read_csv, read_json, reference_file};
use common::{miv, repo_root, scratch};

fn run(test: &str, yaml: &str) -> (std::path::PathBuf, common::Outcome) {
    let dir = scratch(test);
    let model = dir.join("model.yaml");
    std::fs::write(&model, yaml).unwrap();
    let out = dir.join("out");
    let o = miv(&["cell", model.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    (out, o)
}

fn spikes(out: &Path) -> Vec<f64> {
    let text = std::fs::read_to_string(out.join("spikes.csv")).unwrap();
    text.lines().skip(1).map(|l| l.split(',').nth(1).unwrap().trim().parse().unwrap()).collect()
}

#[test]
fn hh_soma_from_the_mod_files_matches_neuron() {
    let lib = repo_root().join("mechanisms").join("standard");
    let yaml = format!(
        "mechanisms_path: {}\n\
         simulation: {{tstop: 120, dt: 0.025, celsius: 6.3, v_init: -65, globals: {{hh: {{usetable: 0}}}}}}\n\
         morphology: {{sections: [{{name: soma, type: soma, L: 18.8, diam: 18.8, nseg: 1}}]}}\n\
         properties: [{{region: all, Ra: 100, cm: 1}}]\n\
         mechanisms: [{{region: soma, mechanism: hh, params: {{gnabar: 0.12, gkbar: 0.036, gl: 0.0003, el: -54.3}}}}]\n\
         ions: [{{region: soma, ion: na, erev: 50}}, {{region: soma, ion: k, erev: -77}}]\n\
         point_processes: [{{name: stim, mechanism: IClamp, at: soma(0.5), params: {{del: 10, dur: 100, amp: 0.1}}}}]\n\
         detectors: [{{name: soma, at: soma(0.5), threshold: 10}}]\n\
         probes: [{{name: v, at: soma(0.5)}}, {{name: m, at: soma(0.5), variable: hh.m}}]\n",
        lib.display()
    );
    let (out, o) = run("mech-cell-hh", &yaml);
    o.expect_ok("miv cell with mechanisms_path");
    let refs = read_json(&reference_file("hh_soma", "neuron_spikes.json"));
    let want = numbers(&refs["runs"]["be_exact"]["netcon_thr10"]);
    let got = spikes(&out);
    assert_eq!(got.len(), want.len());
    for (a, b) in got.iter().zip(&want) {
        assert!((a - b).abs() <= 0.002, "{got:?} vs {want:?}");
    }
    let p = read_csv(&out.join("probes.csv"));
    let vref = read_csv(&reference_file("hh_soma", "neuron_v.csv"));
    let mut worst: f64 = 0.0;
    for (k, t) in vref["t_ms"].iter().enumerate() {
        let i = (t / 0.025).round() as usize;
        worst = worst.max((p["v"][i] - vref["v_be_exact"][k]).abs());
    }
    assert!(worst < 1e-4, "max |dV| vs NEURON {worst} mV");
    assert!(p["m"].iter().all(|m| (0.0..=1.0).contains(m)));
}

#[test]
fn construct_mechanisms_by_name_with_their_events() {
    let lib = repo_root().join("mechanisms").join("constructs");
    let yaml = format!(
        "mechanisms_path: {}\n\
         simulation: {{tstop: 30, dt: 0.025, celsius: 6.3}}\n\
         morphology: {{sections: [{{name: soma, type: soma, L: 20, diam: 20, nseg: 1}}]}}\n\
         mechanisms: [{{region: soma, mechanism: kexp, params: {{gbar: 0.01}}}}, {{region: soma, mechanism: pas, params: {{e: -65}}}}]\n\
         ions: [{{region: soma, ion: k, erev: -80}}]\n\
         point_processes:\n\
         - {{name: syn, mechanism: countsyn, at: soma(0.5), params: {{tau: 2}}, events: [{{weights: [0.001, 2, 0], times: [5, 10, 15, 20]}}]}}\n\
         probes: [{{name: total, variable: syn.total}}, {{name: n, at: soma(0.5), variable: kexp.n}}, {{name: v, at: soma(0.5)}}]\n",
        lib.display()
    );
    let (out, o) = run("mech-cell-constructs", &yaml);
    o.expect_ok("miv cell with construct mechanisms");
    let p = read_csv(&out.join("probes.csv"));
    let t = &p["t_ms"];
    // Four events, counted by the NET_RECEIVE block, each exciting the cell. An event at te is delivered
    // at the start of the step [t, t + dt] with te <= t + dt/2, so a sample at tk has seen it when
    // te <= tk - dt/2.
    for (k, &tk) in t.iter().enumerate() {
        let expected = [5.0, 10.0, 15.0, 20.0].iter().filter(|&&e| e <= tk - 0.0125 + 1e-9).count() as f64;
        assert_eq!(p["total"][k], expected, "t {tk}");
    }
    let vmax = p["v"].iter().cloned().fold(f64::MIN, f64::max);
    assert!(vmax > -60.0, "EPSPs: max v {vmax}");
    assert!(p["n"].iter().all(|n| (0.0..=1.0).contains(n)));
}

#[test]
fn a_bad_mod_file_is_reported_under_mechanisms_path() {
    let dir = scratch("mech-cell-bad-lib");
    std::fs::write(dir.join("oops.mod"), "NEURON { SUFFIX oops }\nBREAKPOINT { x = }\n").unwrap();
    let yaml = format!(
        "mechanisms_path: {}\nsimulation: {{tstop: 1}}\nmorphology: {{sections: [{{name: s, L: 10, diam: 10}}]}}\n",
        dir.display()
    );
    let (out, o) = run("mech-cell-bad", &yaml);
    assert_eq!(o.code, Some(1));
    let want = format!(
        "mechanisms_path: syntax error: {}:2:18: expected an expression, found '}}'",
        dir.join("oops.mod").display()
    );
    assert!(o.stderr.contains(&want), "{}", o.stderr);
    assert!(!out.exists(), "nothing written");
}
