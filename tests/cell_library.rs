//! Single-cell numerics through the solvers library, against NEURON 9.0.2 (../shared/reference).

mod common;

use common::cell::*;
use miv::solvers::{
    ArtificialCell, CableCell, Catalogue, CellDescription, CellGroup, Event, Location, Method, Morphology, ProbeSpec, Section,
    SimOptions, Spike, SpikeRule,
};

fn hh_soma(method: Method, table: bool, rule: SpikeRule) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let m = Morphology::new(vec![Section::cylinder("soma", 1, 18.8, 18.8)]);
    let mut c = CableCell::new(m).unwrap();
    c.ra[0] = 100.0;
    c.insert(0, "hh", &[("gnabar", 0.12), ("gkbar", 0.036), ("gl", 0.0003), ("el", -54.3)]);
    c.set_erev(0, "na", 50.0);
    c.set_erev(0, "k", -77.0);
    c.place(Location::new(0, 0.5), "IClamp", &[("del", 10.0), ("dur", 100.0), ("amp", 0.1)]);
    c.detect(Location::new(0, 0.5), 10.0);
    let opts = SimOptions {
        method,
        spike_rule: rule,
        globals: vec![("hh".into(), "usetable".into(), if table { 1.0 } else { 0.0 })],
        ..SimOptions::default()
    };
    let mut g = CellGroup::new(&[CellDescription::Cable(c)], &Catalogue::builtin(), opts).unwrap();
    let probe = g.probe(&ProbeSpec::Voltage { cell: 0, location: Location::new(0, 0.5) }).unwrap();
    g.initialize(-65.0);
    let (mut t, mut v, mut spikes) = (vec![0.0], vec![g.read(&probe)], Vec::<Spike>::new());
    let mut ev = Vec::new();
    for k in 1..=4800 {
        g.advance(k as f64 * 0.025, &mut ev, &mut spikes);
        t.push(g.time());
        v.push(g.read(&probe));
    }
    (t, v, spikes.iter().map(|s| s.time).collect())
}

#[test]
fn hh_soma_matches_neuron() {
    let refs = read_json(&reference_file("hh_soma", "neuron_spikes.json"));
    for (run, method, table) in [
        ("be_exact", Method::BackwardEuler, false),
        ("cn_exact", Method::CrankNicolson, false),
        ("be_tab", Method::BackwardEuler, true),
        ("cn_tab", Method::CrankNicolson, true),
    ] {
        let r = &refs["runs"][run];
        let (t, v, grid) = hh_soma(method, table, SpikeRule::Grid);
        let d_interp = max_spike_diff(&crossings(&t, &v, 10.0), &numbers(&r["interp_cross_10mV"]), run);
        let d_grid = max_spike_diff(&grid, &numbers(&r["netcon_thr10"]), run);
        let (_, _, interp) = hh_soma(method, table, SpikeRule::Interpolated);
        let d_rule = max_spike_diff(&interp, &numbers(&r["interp_cross_10mV"]), run);
        println!("{run}: interp {d_interp:.2e} grid {d_grid:.2e} rule {d_rule:.2e}");
        assert!(d_interp <= 0.002 && d_grid <= 0.002 && d_rule <= 0.002, "{run}");
    }
}

fn passive_cable(method: Method) -> (CellGroup, Vec<f64>) {
    let m = Morphology::new(vec![Section::cylinder("cable", 3, 1000.0, 1.0)]);
    let mut c = CableCell::new(m).unwrap();
    c.nseg[0] = 101;
    c.ra[0] = 100.0;
    c.insert(0, "pas", &[("g", 0.001), ("e", -65.0)]);
    c.place(Location::new(0, 0.0), "IClamp", &[("del", 5.0), ("dur", 40.0), ("amp", 0.1)]);
    let opts = SimOptions { method, ..SimOptions::default() };
    let mut g = CellGroup::new(&[CellDescription::Cable(c)], &Catalogue::builtin(), opts).unwrap();
    g.initialize(-65.0);
    g.advance(45.0, &mut Vec::new(), &mut Vec::new());
    let profile = g.voltages().to_vec();
    (g, profile)
}

#[test]
fn passive_cable_steady_state() {
    let p = read_csv(&reference_file("passive_cable", "neuron_profile.csv"));
    for (method, col) in [(Method::BackwardEuler, "v_be"), (Method::CrankNicolson, "v_cn")] {
        let (_, ours) = passive_cable(method);
        assert_eq!(ours.len(), p[col].len());
        let mut worst_neuron: f64 = 0.0;
        let mut worst_analytic: f64 = 0.0;
        for i in 0..ours.len() {
            worst_neuron = worst_neuron.max((ours[i] - p[col][i]).abs());
            if i > 0 && i + 1 < ours.len() {
                worst_analytic = worst_analytic.max((ours[i] - p["v_analytic"][i]).abs());
            }
        }
        println!("{col}: vs NEURON {worst_neuron:.2e} mV, centres vs analytic {worst_analytic:.2e} mV");
        assert!(worst_neuron <= 0.002 && worst_analytic <= 0.002, "{col}");
    }
}

/// The ball-and-stick cell of the reference (soma hh, dend pas nseg 11, Exp2Syn at dend(0.5)).
fn ball_and_stick_cell() -> CableCell {
    let m = Morphology::new(vec![
        Section::cylinder("soma", 1, 12.6157, 12.6157),
        Section::cylinder("dend", 3, 200.0, 1.0).on(0, 1.0),
    ]);
    let mut c = CableCell::new(m).unwrap();
    c.nseg = vec![1, 11];
    c.ra = vec![100.0, 100.0];
    c.insert(0, "hh", &[("gnabar", 0.12), ("gkbar", 0.036), ("gl", 0.0003), ("el", -54.3)]);
    c.set_erev(0, "na", 50.0);
    c.set_erev(0, "k", -77.0);
    c.insert(1, "pas", &[("g", 0.001), ("e", -65.0)]);
    c.place(Location::new(1, 0.5), "Exp2Syn", &[("tau1", 0.5), ("tau2", 2.0), ("e", 0.0)]);
    c.detect(Location::new(0, 0.5), 10.0);
    c
}

const STRONG: [f64; 4] = [5.005, 20.005, 24.005, 40.005];
const WEAK: [f64; 4] = [55.005, 70.005, 70.505, 71.005];

/// Run ball-and-stick cells in one group; returns per-step traces (t, soma, dend(0.5), dend(1)) of cell
/// `watch` and all spikes.
fn run_bs(cells: usize, watch: usize, table: bool, rule: SpikeRule) -> (Vec<[f64; 4]>, Vec<Spike>) {
    let descs: Vec<CellDescription> = (0..cells).map(|_| ball_and_stick_cell().into()).collect();
    let opts = SimOptions {
        spike_rule: rule,
        globals: vec![("hh".into(), "usetable".into(), if table { 1.0 } else { 0.0 })],
        ..SimOptions::default()
    };
    let mut g = CellGroup::new(&descs, &Catalogue::builtin(), opts).unwrap();
    let probes: Vec<_> = [(0, 0.5), (1, 0.5), (1, 1.0)]
        .iter()
        .map(|&(s, x)| g.probe(&ProbeSpec::Voltage { cell: watch, location: Location::new(s, x) }).unwrap())
        .collect();
    let mut events = Vec::new();
    for c in 0..cells {
        let syn = g.target(c, 0).unwrap();
        let strong = g.connect(syn, &[0.01], 0).unwrap();
        let weak = g.connect(syn, &[0.001], 1).unwrap();
        events.extend(STRONG.iter().map(|&t| Event { time: t, connection: strong }));
        events.extend(WEAK.iter().map(|&t| Event { time: t, connection: weak }));
    }
    g.initialize(-65.0);
    g.enqueue(&events);
    let mut trace = vec![[0.0, g.read(&probes[0]), g.read(&probes[1]), g.read(&probes[2])]];
    let mut spikes = Vec::new();
    for k in 1..=4000 {
        g.advance(k as f64 * 0.025, &mut Vec::new(), &mut spikes);
        trace.push([g.time(), g.read(&probes[0]), g.read(&probes[1]), g.read(&probes[2])]);
    }
    (trace, spikes)
}

#[test]
fn ball_and_stick_matches_neuron() {
    let refs = read_json(&reference_file("ball_and_stick", "neuron_spikes.json"));
    let vref = read_csv(&reference_file("ball_and_stick", "neuron_v.csv"));
    for (run, table) in [("exact", false), ("tab", true)] {
        let (trace, grid) = run_bs(1, 0, table, SpikeRule::Grid);
        let t: Vec<f64> = trace.iter().map(|r| r[0]).collect();
        let vs: Vec<f64> = trace.iter().map(|r| r[1]).collect();
        let d_interp = max_spike_diff(&crossings(&t, &vs, 10.0), &numbers(&refs[run]["interp_cross_10mV"]), run);
        let grid: Vec<f64> = grid.iter().map(|s| s.time).collect();
        let d_grid = max_spike_diff(&grid, &numbers(&refs[run]["netcon_thr10"]), run);
        let mut worst = [0.0f64; 3];
        for (k, tr) in vref["t_ms"].iter().enumerate() {
            let row = &trace[(tr / 0.025).round() as usize];
            for (j, col) in ["vsoma", "vdend05", "vdend1"].iter().enumerate() {
                worst[j] = worst[j].max((row[j + 1] - vref[&format!("{col}_{run}")][k]).abs());
            }
        }
        println!("{run}: spikes interp {d_interp:.2e} grid {d_grid:.2e}; max |dV| soma {:.2e} dend05 {:.2e} dend1 {:.2e}", worst[0], worst[1], worst[2]);
        assert!(d_interp <= 0.002 && d_grid <= 0.002, "{run}");
        assert!(worst.iter().all(|&w| w <= 0.2), "{run}: {worst:?}");
    }
}

/// Cell i of a mixed group: a ball-and-stick cell driven by a VecStim (cell i+1) with its own weight.
fn mixed_cells(n: usize) -> Vec<CellDescription> {
    let mut v = Vec::new();
    for i in 0..n {
        let mut c = ball_and_stick_cell();
        c.insert(0, "pas", &[("g", 1e-5 * i as f64), ("e", -70.0)]);
        v.push(c.into());
        v.push(ArtificialCell::vecstim(vec![1.0 + i as f64, 7.3, 15.0 + 0.1 * i as f64, 30.0]).into());
    }
    v
}

/// Simulate `cells` (pairs from `mixed_cells`) in one group; per pair, the soma trace and the spikes.
/// `first` is the global index of the first pair (it sets the pair's synaptic weight).
fn run_mixed(cells: &[CellDescription], first: usize) -> Vec<(Vec<f64>, Vec<(u32, f64)>)> {
    let mut g = CellGroup::new(cells, &Catalogue::builtin(), SimOptions::default()).unwrap();
    let pairs = cells.len() / 2;
    let mut probes = Vec::new();
    for p in 0..pairs {
        let syn = g.target(2 * p, 0).unwrap();
        g.connect(syn, &[0.004 + 0.002 * (first + p) as f64], (first + p) as u64).unwrap();
        probes.push(g.probe(&ProbeSpec::Voltage { cell: 2 * p, location: Location::new(0, 0.5) }).unwrap());
    }
    g.initialize(-65.0);
    let mut out: Vec<(Vec<f64>, Vec<(u32, f64)>)> = vec![(vec![], vec![]); pairs];
    let mut spikes = Vec::new();
    let mut events = Vec::new();
    for k in 1..=1600 {
        g.advance(k as f64 * 0.025, &mut events, &mut spikes);
        for s in spikes.drain(..) {
            let p = s.cell as usize / 2;
            out[p].1.push((s.cell % 2, s.time));
            if s.cell % 2 == 1 {
                // The stimulus cell drives its partner's synapse through connection p with no delay.
                events.push(Event { time: s.time, connection: miv::solvers::ConnectionId(p as u32) });
            }
        }
        for p in 0..pairs {
            out[p].0.push(g.read(&probes[p]));
        }
    }
    out
}

#[test]
fn group_results_equal_single_cell_results_bit_for_bit() {
    let n = 6;
    let all = mixed_cells(n);
    let together = run_mixed(&all, 0);
    assert!(together.iter().all(|(_, s)| s.iter().any(|x| x.0 == 0)), "every cell should spike: {together:?}");
    for p in 0..n {
        let alone = run_mixed(&all[2 * p..2 * p + 2], p);
        assert_eq!(alone[0].1, together[p].1, "spikes of pair {p}");
        assert!(alone[0].0.iter().zip(&together[p].0).all(|(a, b)| a.to_bits() == b.to_bits()), "trace of pair {p}");
    }
}

#[test]
fn exp2syn_peak_conductance_equals_weight() {
    for (tau1, tau2, w) in [(0.5, 2.0, 0.01), (0.1, 10.0, 0.003), (1.0, 1.5, 0.2)] {
        let mut c = ball_and_stick_cell();
        c.points[0].params = vec![("tau1".into(), tau1), ("tau2".into(), tau2), ("e".into(), 0.0)];
        let opts = SimOptions { dt: 0.001, ..SimOptions::default() };
        let mut g = CellGroup::new(&[c.into()], &Catalogue::builtin(), opts).unwrap();
        let syn = g.target(0, 0).unwrap();
        let conn = g.connect(syn, &[w], 0).unwrap();
        let gp = g.probe(&ProbeSpec::TargetState { cell: 0, target: 0, variable: "g".into() }).unwrap();
        g.initialize(-65.0);
        let mut peak: f64 = 0.0;
        g.enqueue(&[Event { time: 1.0, connection: conn }]);
        for k in 1..=30000 {
            g.advance(k as f64 * 0.001, &mut Vec::new(), &mut Vec::new());
            peak = peak.max(g.read(&gp));
        }
        // The analytic peak is w; on a 1 us grid the sampled maximum is within (dt/tau)^2 of it.
        assert!((peak - w).abs() <= 1e-5 * w, "tau1 {tau1} tau2 {tau2}: peak {peak} vs weight {w}");
    }
}
