//! MiV's three cell templates as transcribed in `examples/rc-network/templates-miv`, built the way the network
//! engine builds cells (template applied to the SWC morphology of `examples/morphology`) with MiV-Simulator-
//! Cases' own mechanisms. Local only: MIV_CASES_MECHANISMS names the Cases' `3-interface-api/simulation/
//! mechanisms` folder (not in this repository); without it the test only says it was skipped.
//!
//! With MIV_NEURON_RESULTS also set, each `<CELL>-<name>/` folder in it holds a NEURON run of MiV's hoc
//! template on the same SWC (as MiV instantiates it: neuroh5 section topology, `define_shape`, MiV's spike
//! detector, `finitialize` twice, `secondorder = 2`): `protocol.json` (the stimulus: `iclamp` and `synapses`
//! lists, `probes`, `tstop`, `dt`, `record_dt`, `v_init`), `probes.csv` (t_ms and v at each probe) and
//! `neuron.json` (`detector` location and `spikes`). The same protocol is run here and must give the same
//! detector, the same spike times and the same traces (docs/templates.md, *Agreement with NEURON*).

#[path = "../../solvers/tests/common/mod.rs"]
mod common;

use std::path::Path;

use common::cell::{numbers, read_csv, read_json};
use miv_engine::model::{catalogue_of, morphology_from_tree, probe_spec, CellTemplate};
use miv_solvers::cell::PointPlacement;
use miv_solvers::{CableCell, Catalogue, CellDescription, CellGroup, Event, Location, Method, ProbeSpec, SimOptions};

const CELLS: [(&str, &str); 3] = [("PYR", "PoolosPyramidalCell"), ("PVBC", "PVBasketCell"), ("OLM", "OLMCell")];

fn location(cell: &CableCell, at: &str) -> Location {
    match probe_spec(&CellDescription::Cable(cell.clone()), at, "v").unwrap_or_else(|e| panic!("{at}: {e}")) {
        ProbeSpec::Voltage { location, .. } => location,
        other => panic!("{other:?}"),
    }
}

fn build(cell: &str, template: &str, catalogue: &Catalogue) -> (CableCell, f64) {
    let t =
        CellTemplate::load(&common::repo_root().join("examples/rc-network/templates-miv"), template).expect("template");
    let tree =
        miv_io::swc::read_swc(common::repo_root().join("examples").join("morphology").join(format!("{cell}.swc")))
            .expect("swc");
    let (c, _) = t.build(morphology_from_tree(&tree).expect("sections"), catalogue).expect("build");
    (c, t.celsius().expect("MiV's templates set celsius"))
}

/// Run one NEURON protocol on a template-built cell: (sample times, probe traces, spike times, detector).
fn simulate(
    mut cell: CableCell,
    celsius: f64,
    p: &serde_json::Value,
    catalogue: &Catalogue,
) -> (Vec<Vec<f64>>, Vec<f64>) {
    let f = |v: &serde_json::Value| v.as_f64().unwrap();
    let mut trains = Vec::new();
    for ic in p["iclamp"].as_array().into_iter().flatten() {
        let params = vec![("del".into(), f(&ic["del"])), ("dur".into(), f(&ic["dur"])), ("amp".into(), f(&ic["amp"]))];
        cell.points.push(PointPlacement {
            location: location(&cell, ic["at"].as_str().unwrap()),
            mechanism: "IClamp".into(),
            params,
        });
    }
    for s in p["synapses"].as_array().into_iter().flatten() {
        let params = ["tau_rise", "tau_decay", "e"].iter().map(|k| (k.to_string(), f(&s[*k]))).collect();
        let location = location(&cell, s["at"].as_str().unwrap());
        cell.points.push(PointPlacement { location, mechanism: "LinExp2Syn".into(), params });
        trains.push((cell.points.len() - 1, vec![f(&s["weight"]), f(&s["g_unit"])], numbers(&s["times"])));
    }
    let probes: Vec<Location> =
        p["probes"].as_array().unwrap().iter().map(|a| location(&cell, a.as_str().unwrap())).collect();
    let opts = SimOptions { dt: f(&p["dt"]), method: Method::CrankNicolson, celsius, ..SimOptions::default() };
    let mut g = CellGroup::new(&[CellDescription::Cable(cell)], catalogue, opts).expect("group");
    let probes: Vec<_> =
        probes.into_iter().map(|location| g.probe(&ProbeSpec::Voltage { cell: 0, location }).unwrap()).collect();
    let mut events = Vec::new();
    for (k, (target, weights, times)) in trains.iter().enumerate() {
        let c = g.connect(g.target(0, *target).unwrap(), weights, k as u64).unwrap();
        events.extend(times.iter().map(|&t| Event { time: t, connection: c }));
    }
    g.initialize(f(&p["v_init"])).unwrap();
    g.enqueue(&events);
    let (record, tstop) = (f(&p["record_dt"]), f(&p["tstop"]));
    let mut traces = vec![probes.iter().map(|q| g.read(q)).collect::<Vec<f64>>()];
    let mut spikes = Vec::new();
    for k in 1..=((tstop / record).round() as usize) {
        g.advance(k as f64 * record, &mut Vec::new(), &mut spikes).unwrap();
        traces.push(probes.iter().map(|q| g.read(q)).collect());
    }
    (traces, spikes.iter().map(|s| s.time).collect())
}

fn compare_with_neuron(cell: &str, template: &str, dir: &Path, catalogue: &Catalogue) -> usize {
    let mut runs = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let run = entry.unwrap().path();
        if !run.file_name().unwrap().to_str().unwrap().starts_with(&format!("{cell}-")) {
            continue;
        }
        let (p, nrn) = (read_json(&run.join("protocol.json")), read_json(&run.join("neuron.json")));
        let (built, celsius) = build(cell, template, catalogue);
        assert_eq!(celsius, nrn["celsius"].as_f64().unwrap(), "{}", run.display());
        let det = &built.detectors[0];
        let want = location(&built, nrn["detector"].as_str().unwrap());
        assert!(
            det.location.section == want.section && (det.location.x - want.x).abs() < 1e-9,
            "{}: detector",
            run.display()
        );
        let (traces, spikes) = simulate(built, celsius, &p, catalogue);
        let want_spikes = numbers(&nrn["spikes"]);
        let worst_spike = common::cell::max_spike_diff(&spikes, &want_spikes, &run.display().to_string());
        assert!(worst_spike < 1e-6, "{}: spike times differ by {worst_spike} ms", run.display());
        let csv = read_csv(&run.join("probes.csv"));
        let mut worst: f64 = 0.0;
        for (j, at) in p["probes"].as_array().unwrap().iter().enumerate() {
            let col = &csv[at.as_str().unwrap()];
            // NEURON's Vector.record stops one sample short of tstop.
            assert!(col.len() + 1 >= traces.len(), "{}: NEURON trace too short", run.display());
            for (k, row) in traces.iter().take(col.len()).enumerate() {
                worst = worst.max((row[j] - col[k]).abs());
            }
        }
        assert!(worst < 1e-3, "{}: max |dv| {worst} mV", run.display());
        println!("{}: {} spikes, max |dt| {worst_spike} ms, max |dv| {worst:.3e} mV", run.display(), spikes.len());
        runs += 1;
    }
    runs
}

#[test]
fn miv_templates_build_and_match_neuron_running_the_hoc_templates() {
    let Ok(mechs) = std::env::var("MIV_CASES_MECHANISMS") else {
        println!("MIV_CASES_MECHANISMS is not set: skipped");
        return;
    };
    let lib = miv_nmodl::Library::load_dir(Path::new(&mechs)).expect("MiV's mechanisms");
    let catalogue = catalogue_of(&lib);
    let neuron = std::env::var("MIV_NEURON_RESULTS").ok();
    let mut runs = 0;
    for (cell, template) in CELLS {
        let (built, celsius) = build(cell, template, &catalogue);
        assert_eq!(celsius, 34.0);
        assert!(!built.density.is_empty() && built.detectors.len() == 1, "{cell}");
        if let Some(dir) = &neuron {
            runs += compare_with_neuron(cell, template, Path::new(dir), &catalogue);
        }
    }
    match neuron {
        Some(dir) => assert!(runs > 0, "{dir}: no <CELL>-<protocol> folders"),
        None => println!("MIV_NEURON_RESULTS is not set: templates built, NEURON comparison skipped"),
    }
}

/// Without MiV's mechanisms the templates can still be checked against the template schema (unknown keys,
/// types) and for the temperature MiV's templates set.
#[test]
fn miv_templates_follow_the_template_schema() {
    for (_, template) in CELLS {
        let t = CellTemplate::load(&common::repo_root().join("examples/rc-network/templates-miv"), template)
            .expect("template");
        assert_eq!(t.celsius(), Some(34.0), "{template}");
    }
}
