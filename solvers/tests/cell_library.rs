//! Single-cell numerics through the solvers library, against NEURON 9.0.2 (tests/reference/neuron-arbor).

mod common;

use common::cell::*;
use miv_solvers::{
    ArtificialCell, CableCell, Catalogue, CellDescription, CellGroup, Event, Location, Method, Morphology, ProbeSpec,
    Section, SimOptions, Spike, SpikeRule,
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
    g.initialize(-65.0).unwrap();
    let (mut t, mut v, mut spikes) = (vec![0.0], vec![g.read(&probe)], Vec::<Spike>::new());
    let mut ev = Vec::new();
    for k in 1..=4800 {
        g.advance(k as f64 * 0.025, &mut ev, &mut spikes).unwrap();
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
    g.initialize(-65.0).unwrap();
    g.advance(45.0, &mut Vec::new(), &mut Vec::new()).unwrap();
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
    g.initialize(-65.0).unwrap();
    g.enqueue(&events);
    let mut trace = vec![[0.0, g.read(&probes[0]), g.read(&probes[1]), g.read(&probes[2])]];
    let mut spikes = Vec::new();
    for k in 1..=4000 {
        g.advance(k as f64 * 0.025, &mut Vec::new(), &mut spikes).unwrap();
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
        println!(
            "{run}: spikes interp {d_interp:.2e} grid {d_grid:.2e}; max |dV| soma {:.2e} dend05 {:.2e} dend1 {:.2e}",
            worst[0], worst[1], worst[2]
        );
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
    g.initialize(-65.0).unwrap();
    let mut out: Vec<(Vec<f64>, Vec<(u32, f64)>)> = vec![(vec![], vec![]); pairs];
    let mut spikes = Vec::new();
    let mut events = Vec::new();
    for k in 1..=1600 {
        g.advance(k as f64 * 0.025, &mut events, &mut spikes).unwrap();
        for s in spikes.drain(..) {
            let p = s.cell as usize / 2;
            out[p].1.push((s.cell % 2, s.time));
            if s.cell % 2 == 1 {
                // The stimulus cell drives its partner's synapse through connection p with no delay.
                events.push(Event { time: s.time, connection: miv_solvers::ConnectionId(p as u32) });
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
        g.initialize(-65.0).unwrap();
        let mut peak: f64 = 0.0;
        g.enqueue(&[Event { time: 1.0, connection: conn }]);
        for k in 1..=30000 {
            g.advance(k as f64 * 0.001, &mut Vec::new(), &mut Vec::new()).unwrap();
            peak = peak.max(g.read(&gp));
        }
        // The analytic peak is w; on a 1 us grid the sampled maximum is within (dt/tau)^2 of it.
        assert!((peak - w).abs() <= 1e-5 * w, "tau1 {tau1} tau2 {tau2}: peak {peak} vs weight {w}");
    }
}

/// A NetStim cell drives the ball-and-stick cell through a 1 ms connection, in one group; against NEURON
/// (tests/reference/cell/netstim_neuron.json, made by bench/neuron/netstim.py).
#[test]
fn netstim_drives_a_cell_as_in_neuron() {
    let refs = read_json(&common::repo_root().join("tests/reference/cell/netstim_neuron.json"));
    let stim = ArtificialCell::new("NetStim", &[("interval", 7.3), ("number", 5.0), ("start", 3.01), ("noise", 0.0)]);
    let cells = vec![stim.into(), CellDescription::Cable(ball_and_stick_cell())];
    let mut g = CellGroup::new(&cells, &Catalogue::builtin(), SimOptions::default()).unwrap();
    let conn = g.connect(g.target(1, 0).unwrap(), &[0.01], 0).unwrap();
    g.initialize(-65.0).unwrap();
    let (mut stim_t, mut cell_t, mut spikes, mut events) = (vec![], vec![], vec![], vec![]);
    // Exchange every 0.5 ms (less than the 1 ms delay), as an engine would.
    for k in 1..=120 {
        g.advance(k as f64 * 0.5, &mut events, &mut spikes).unwrap();
        for s in spikes.drain(..) {
            if s.cell == 0 {
                stim_t.push(s.time);
                events.push(Event { time: s.time + 1.0, connection: conn });
            } else {
                cell_t.push(s.time);
            }
        }
    }
    assert!(max_spike_diff(&stim_t, &numbers(&refs["netstim"]), "NetStim") <= 1e-9);
    assert!(max_spike_diff(&cell_t, &numbers(&refs["cell"]), "cell") <= 0.002);
}

/// Spike times of a noisy NetStim (noise 1: exponential intervals of mean 5 ms) keyed by `key`.
fn noisy_train(key: [u32; 4], reinitialize: bool) -> Vec<f64> {
    let stim = ArtificialCell::new("NetStim", &[("interval", 5.0), ("number", 4000.0), ("start", 0.0), ("noise", 1.0)]);
    let mut g = CellGroup::new(&[stim.into()], &Catalogue::builtin(), SimOptions::default()).unwrap();
    g.set_target_random_stream(g.target(0, 0).unwrap(), key).unwrap();
    g.initialize(-65.0).unwrap();
    let mut spikes = Vec::new();
    if reinitialize {
        g.advance(1000.0, &mut Vec::new(), &mut spikes).unwrap();
        spikes.clear();
        g.initialize(-65.0).unwrap();
    }
    g.advance(25_000.0, &mut Vec::new(), &mut spikes).unwrap();
    spikes.iter().map(|s| s.time).collect()
}

#[test]
fn noisy_netstim_streams_are_keyed_and_exponential() {
    let a = noisy_train([1, 2, 3, 4], false);
    assert_eq!(a, noisy_train([1, 2, 3, 4], true), "the stream restarts at initialisation");
    assert_ne!(a, noisy_train([1, 2, 3, 5], false), "another key gives another train");
    // 4000 exponential intervals of mean 5 ms: the sample mean is within 5 standard errors (0.4 ms) of 5.
    let isi: Vec<f64> = a.windows(2).map(|w| w[1] - w[0]).collect();
    let mean = isi.iter().sum::<f64>() / isi.len() as f64;
    let sd = (isi.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / isi.len() as f64).sqrt();
    assert_eq!(a.len(), 4000);
    assert!((mean - 5.0).abs() < 0.4 && (sd - 5.0).abs() < 0.6, "mean {mean} sd {sd}");
}

#[test]
fn expsyn_conductance_jumps_by_the_weight_and_decays_with_tau() {
    let mut c = ball_and_stick_cell();
    c.points[0] = miv_solvers::cell::PointPlacement {
        location: Location::new(1, 0.5),
        mechanism: "ExpSyn".into(),
        params: vec![("tau".into(), 3.0), ("e".into(), 0.0)],
    };
    let mut g = CellGroup::new(&[c.into()], &Catalogue::builtin(), SimOptions::default()).unwrap();
    let conn = g.connect(g.target(0, 0).unwrap(), &[0.004], 0).unwrap();
    let gp = g.probe(&ProbeSpec::TargetState { cell: 0, target: 0, variable: "g".into() }).unwrap();
    g.initialize(-65.0).unwrap();
    // Due at 2.0101 ms: delivered at the start of the step at 2.0 (2.0101 <= 2.0 + dt/2), then decays over
    // whole steps (the cnexp update is exact for g' = -g/tau).
    g.enqueue(&[Event { time: 2.0101, connection: conn }]);
    for k in 1..=400 {
        g.advance(k as f64 * 0.025, &mut Vec::new(), &mut Vec::new()).unwrap();
        let t = k as f64 * 0.025;
        let want = if k <= 80 { 0.0 } else { 0.004 * (-(t - 2.0) / 3.0).exp() };
        assert!((g.read(&gp) - want).abs() <= 1e-12 * 0.004, "t {t}: g {} vs {want}", g.read(&gp));
    }
}

/// The ball-and-stick cell with an IClamp (0.3 nA from 1 to 4 ms) and its synapse driven at 2 ms, membrane
/// current on, initialised.
fn clamped_and_driven_group(method: Method) -> CellGroup {
    let mut c = ball_and_stick_cell();
    c.place(Location::new(1, 1.0), "IClamp", &[("del", 1.0), ("dur", 3.0), ("amp", 0.3)]);
    let opts = SimOptions { method, membrane_current: true, ..SimOptions::default() };
    let mut g = CellGroup::new(&[c.into()], &Catalogue::builtin(), opts).unwrap();
    let conn = g.connect(g.target(0, 0).unwrap(), &[0.01], 0).unwrap();
    g.initialize(-65.0).unwrap();
    g.enqueue(&[Event { time: 2.0, connection: conn }]);
    g
}

#[test]
fn membrane_currents_add_up_to_the_injected_current() {
    for method in [Method::BackwardEuler, Method::CrankNicolson] {
        let mut g = clamped_and_driven_group(method);
        for k in 1..=400 {
            g.advance(k as f64 * 0.025, &mut Vec::new(), &mut Vec::new()).unwrap();
            let total: f64 = g.membrane_currents().unwrap().iter().sum();
            let tm = (k as f64 - 0.5) * 0.025;
            let injected = if (1.0..4.0).contains(&tm) { 0.3 } else { 0.0 };
            assert!(
                (total - injected).abs() < 1e-9,
                "{method:?} t {}: sum of i_membrane {total} vs {injected}",
                g.time()
            );
        }
    }
}

/// The membrane current is computed only at the last step of an `advance` call (where it is read): advancing
/// 4 steps at a time gives the bits of advancing one step at a time, for v and for the membrane currents at
/// the common times, with an electrode (IClamp) and a synapse active.
#[test]
fn membrane_currents_after_many_steps_are_those_of_single_steps() {
    for method in [Method::BackwardEuler, Method::CrankNicolson] {
        let (mut one, mut four) = (clamped_and_driven_group(method), clamped_and_driven_group(method));
        for k in 1..=400 {
            one.advance(k as f64 * 0.025, &mut Vec::new(), &mut Vec::new()).unwrap();
            if k % 4 == 0 {
                four.advance(k as f64 * 0.025, &mut Vec::new(), &mut Vec::new()).unwrap();
                let bits = |x: &[f64]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(one.voltages()), bits(four.voltages()), "{method:?} v at step {k}");
                let (a, b) = (one.membrane_currents().unwrap(), four.membrane_currents().unwrap());
                assert_eq!(bits(a), bits(b), "{method:?} membrane currents at step {k}");
            }
        }
    }
}

/// The step (index of its start time) at which an ExpSyn sees an event due at `te`.
fn delivery_step(rule: miv_solvers::DeliveryRule, te: f64) -> usize {
    let mut c = ball_and_stick_cell();
    c.points[0].mechanism = "ExpSyn".into();
    c.points[0].params = vec![("tau".into(), 3.0)];
    let opts = SimOptions { delivery_rule: rule, ..SimOptions::default() };
    let mut g = CellGroup::new(&[c.into()], &Catalogue::builtin(), opts).unwrap();
    let conn = g.connect(g.target(0, 0).unwrap(), &[0.004], 0).unwrap();
    let gp = g.probe(&ProbeSpec::TargetState { cell: 0, target: 0, variable: "g".into() }).unwrap();
    g.initialize(-65.0).unwrap();
    g.enqueue(&[Event { time: te, connection: conn }]);
    (1..=400)
        .find(|&k| {
            g.advance(k as f64 * 0.025, &mut Vec::new(), &mut Vec::new()).unwrap();
            g.read(&gp) > 0.0
        })
        .unwrap()
        - 1
}

#[test]
fn delivery_rules_round_as_documented() {
    use miv_solvers::DeliveryRule::{Floor, Nearest};
    // The reference README, section 5: NEURON delivers 5.0124 at 5.000 and 5.0126 at 5.025.
    assert_eq!(delivery_step(Nearest, 5.0124), 200);
    assert_eq!(delivery_step(Nearest, 5.0126), 201);
    // Arbor: the step containing te.
    assert_eq!(delivery_step(Floor, 5.0126), 200);
    assert_eq!(delivery_step(Floor, 5.0249), 200);
    assert_eq!(delivery_step(Floor, 5.0251), 201);
}

/// A leak written outside the crate through the public trait, the way an adapter for compiled NMODL
/// mechanisms plugs in: gather v, compute on per-instance arrays, scatter with `Cx::add_membrane`.
struct OutsideLeak {
    info: miv_solvers::MechanismInfo,
    node: Vec<u32>,
    g: Vec<f64>,
    e: Vec<f64>,
}

impl miv_solvers::Mechanism for OutsideLeak {
    fn info(&self) -> &miv_solvers::MechanismInfo {
        &self.info
    }
    fn len(&self) -> usize {
        self.node.len()
    }
    fn add_instance(&mut self, site: &miv_solvers::mechanism::Site, params: &[f64]) {
        self.node.push(site.node);
        self.g.push(params[0]);
        self.e.push(params[1]);
    }
    fn param(&self, i: usize, k: usize) -> f64 {
        [&self.g, &self.e][k][i]
    }
    fn set_param(&mut self, i: usize, k: usize, value: f64) {
        [&mut self.g, &mut self.e][k][i] = value;
    }
    fn state(&self, _: usize, _: usize) -> f64 {
        f64::NAN
    }
    fn instance_node(&self, i: usize) -> u32 {
        self.node[i]
    }
    fn initialize(&mut self, _: &mut miv_solvers::mechanism::Cx) -> miv_solvers::mechanism::KernelResult {
        Ok(())
    }
    fn current(&mut self, cx: &mut miv_solvers::mechanism::Cx) -> miv_solvers::mechanism::KernelResult {
        for i in 0..self.node.len() {
            let n = self.node[i] as usize;
            let (i1, i0) = (self.g[i] * (cx.v[n] + 0.001 - self.e[i]), self.g[i] * (cx.v[n] - self.e[i]));
            cx.add_membrane(n, i0, (i1 - i0) * (1.0 / 0.001));
        }
        Ok(())
    }
    fn update_state(&mut self, _: &mut miv_solvers::mechanism::Cx) -> miv_solvers::mechanism::KernelResult {
        Ok(())
    }
}

#[test]
fn a_mechanism_from_outside_the_crate_runs_like_the_builtin() {
    // The constructor captures its description, as one for a compiled .mod file would.
    let mut info = Catalogue::builtin().get("pas").unwrap().clone();
    info.name = "leak".into();
    let mut cat = Catalogue::builtin();
    cat.register(move || Box::new(OutsideLeak { info: info.clone(), node: vec![], g: vec![], e: vec![] }));
    let trace = |mech: &str, cat: &Catalogue| {
        let mut c = ball_and_stick_cell();
        c.density[1].mechanism = mech.into();
        let mut g = CellGroup::new(&[c.into()], cat, SimOptions::default()).unwrap();
        let conn = g.connect(g.target(0, 0).unwrap(), &[0.01], 0).unwrap();
        let p = g.probe(&ProbeSpec::Voltage { cell: 0, location: Location::new(1, 1.0) }).unwrap();
        g.initialize(-65.0).unwrap();
        g.enqueue(&[Event { time: 1.0, connection: conn }]);
        (1..=400)
            .map(|k| {
                g.advance(k as f64 * 0.025, &mut Vec::new(), &mut Vec::new()).unwrap();
                g.read(&p)
            })
            .collect::<Vec<f64>>()
    };
    let (ours, builtin) = (trace("leak", &cat), trace("pas", &cat));
    assert!(ours.iter().zip(&builtin).all(|(a, b)| a.to_bits() == b.to_bits()));
    assert!(builtin.iter().any(|v| *v > -60.0), "the event should depolarise the dendrite");
}
