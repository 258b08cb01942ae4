//! MiV's synapse mechanisms (mechanisms/miv/*.mod, compiled from NMODL at run time): LinExp2Syn is Exp2Syn
//! with weight·g_unit, and LinExp2SynNMDA adds the magnesium unblock 1/(1 + exp(-gamma (v + vshift)) mg/Kd).

use miv_engine::mechanisms::catalogue;
use miv_solvers::{
    CableCell, CellDescription, CellGroup, Event, Location, Morphology, ProbeSpec, Section, SimOptions, Spike,
};

fn cell(mech: &str, params: &[(&str, f64)]) -> CellDescription {
    let morph = Morphology::new(vec![
        Section::cylinder("soma", 1, 12.6157, 12.6157),
        Section::cylinder("dend", 3, 200.0, 1.0).on(0, 1.0),
    ]);
    let mut c = CableCell::new(morph).unwrap();
    c.nseg = vec![1, 11];
    c.ra = vec![100.0, 100.0];
    c.insert(0, "hh", &[]);
    c.insert(1, "pas", &[("g", 0.001), ("e", -65.0)]);
    c.place(Location::new(1, 0.5), mech, params);
    c.detect(Location::new(0, 0.5), 10.0);
    c.into()
}

/// Run 60 ms with events at 5 and 30 ms; return (v soma, g, extra variable, spikes).
fn run(
    mech: &str,
    params: &[(&str, f64)],
    weights: &[f64],
    extra: Option<&str>,
) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let cat = catalogue(None).unwrap();
    let mut g = CellGroup::new(&[cell(mech, params)], &cat, SimOptions::default()).unwrap();
    let t = g.target(0, 0).unwrap();
    let c = g.connect(t, weights, 0).unwrap();
    let pv = g.probe(&ProbeSpec::Voltage { cell: 0, location: Location::new(0, 0.5) }).unwrap();
    let pg = g.probe(&ProbeSpec::TargetState { cell: 0, target: 0, variable: "g".into() }).unwrap();
    let px = extra.map(|v| g.probe(&ProbeSpec::TargetState { cell: 0, target: 0, variable: v.into() }).unwrap());
    let pd = g.probe(&ProbeSpec::Voltage { cell: 0, location: Location::new(1, 0.5) }).unwrap();
    g.initialize(-65.0).unwrap();
    g.enqueue(&[Event { time: 5.0, connection: c }, Event { time: 30.0, connection: c }]);
    let (mut v, mut gs, mut xs, mut vd) = (vec![], vec![], vec![], vec![]);
    let mut spikes: Vec<Spike> = vec![];
    let mut none = vec![];
    for k in 1..=2400 {
        g.advance(k as f64 * 0.025, &mut none, &mut spikes).unwrap();
        v.push(g.read(&pv));
        gs.push(g.read(&pg));
        vd.push(g.read(&pd));
        if let Some(p) = &px {
            xs.push(g.read(p));
        }
    }
    let _ = v;
    (vd, gs, xs, spikes.iter().map(|s| s.time).collect())
}

#[test]
fn linexp2syn_is_exp2syn_with_weight_times_g_unit() {
    let (vl, gl, _, sl) = run("LinExp2Syn", &[("tau_rise", 0.5), ("tau_decay", 2.0), ("e", 0.0)], &[2.0, 0.005], None);
    let (ve, ge, _, se) = run("Exp2Syn", &[("tau1", 0.5), ("tau2", 2.0), ("e", 0.0)], &[0.01], None);
    assert_eq!(sl.len(), se.len());
    assert!(!sl.is_empty(), "0.01 uS at the dendrite makes the soma fire");
    for (a, b) in sl.iter().zip(&se) {
        assert!((a - b).abs() < 1e-9);
    }
    let dv = vl.iter().zip(&ve).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(dv < 1e-9, "dv {dv}");
    // (The built-in kernel updates its `g` at another point of the step, so the readouts are compared by peak.)
    let peak_e = ge[..800].iter().cloned().fold(0.0, f64::max);
    // One event peaks at weight * g_unit.
    let peak = gl[..800].iter().cloned().fold(0.0, f64::max);
    assert!((peak - 0.01).abs() < 2e-5, "peak {peak}");
    assert!((peak - peak_e).abs() < 1e-12, "peak {peak} vs Exp2Syn {peak_e}");
}

#[test]
fn nmda_unblock_follows_the_magnesium_formula() {
    let p = [
        ("tau_rise", 10.0),
        ("tau_decay", 35.0),
        ("e", 0.0),
        ("mg", 1.0),
        ("Kd", 3.57),
        ("gamma", 0.062),
        ("vshift", 0.0),
    ];
    let (vd, g, pn, _) = run("LinExp2SynNMDA", &p, &[1.0, 0.002], Some("pnmda"));
    // pnmda is evaluated from v at the start of each step, i.e. the previous sample's v.
    for k in 1..vd.len() {
        let expect = 1.0 / (1.0 + (-0.062 * vd[k - 1]).exp() * 1.0 / 3.57);
        assert!((pn[k] - expect).abs() < 1e-12, "step {k}: {} vs {expect}", pn[k]);
    }
    let peak = g[..1190].iter().cloned().fold(0.0, f64::max);
    assert!(peak > 0.0019 && peak < 0.0021, "peak {peak}");
}
