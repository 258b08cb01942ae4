//! The standard mechanisms compiled from their `.mod` sources (mechanisms/standard), run in cell groups
//! through the NMODL adapter: against NEURON 9.0.2 (tests/reference/neuron-arbor) and against the hand-written
//! kernels of the solvers crate.

#[path = "../../tests/common/mod.rs"]
mod common;

use common::cell::*;
use miv_nmodl::adapter::register;
use miv_nmodl::Library;
use miv_solvers::{
    ArtificialCell, CableCell, Catalogue, CellDescription, CellGroup, Event, Location, Method, Morphology, ProbeSpec,
    Section, SimOptions, Spike,
};

/// The built-in catalogue with every standard mechanism replaced by its NMODL version.
fn nmodl_catalogue() -> Catalogue {
    let mut c = Catalogue::builtin();
    register(&mut c, &Library::standard().expect("standard mechanisms compile"));
    c
}

fn options(method: Method, table: bool) -> SimOptions {
    SimOptions {
        method,
        globals: vec![("hh".into(), "usetable".into(), if table { 1.0 } else { 0.0 })],
        ..SimOptions::default()
    }
}

/// Reference case (a): soma L = diam = 18.8 um with hh and a 0.1 nA step; per-step (t, v) and grid spikes.
fn hh_soma(cat: &Catalogue, method: Method, table: bool) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let m = Morphology::new(vec![Section::cylinder("soma", 1, 18.8, 18.8)]);
    let mut c = CableCell::new(m).unwrap();
    c.ra[0] = 100.0;
    c.insert(0, "hh", &[("gnabar", 0.12), ("gkbar", 0.036), ("gl", 0.0003), ("el", -54.3)]);
    c.set_erev(0, "na", 50.0);
    c.set_erev(0, "k", -77.0);
    c.place(Location::new(0, 0.5), "IClamp", &[("del", 10.0), ("dur", 100.0), ("amp", 0.1)]);
    c.detect(Location::new(0, 0.5), 10.0);
    let mut g = CellGroup::new(&[CellDescription::Cable(c)], cat, options(method, table)).unwrap();
    let probe = g.probe(&ProbeSpec::Voltage { cell: 0, location: Location::new(0, 0.5) }).unwrap();
    g.initialize(-65.0).unwrap();
    let (mut t, mut v, mut spikes) = (vec![0.0], vec![g.read(&probe)], Vec::<Spike>::new());
    for k in 1..=4800 {
        g.advance(k as f64 * 0.025, &mut Vec::new(), &mut spikes).unwrap();
        t.push(g.time());
        v.push(g.read(&probe));
    }
    (t, v, spikes.iter().map(|s| s.time).collect())
}

#[test]
fn nmodl_hh_soma_matches_neuron() {
    let refs = read_json(&reference_file("hh_soma", "neuron_spikes.json"));
    let cat = nmodl_catalogue();
    for (run, method, table) in [
        ("be_exact", Method::BackwardEuler, false),
        ("be_tab", Method::BackwardEuler, true),
        ("cn_exact", Method::CrankNicolson, false),
        ("cn_tab", Method::CrankNicolson, true),
    ] {
        let r = &refs["runs"][run];
        let (t, v, grid) = hh_soma(&cat, method, table);
        let d = max_spike_diff(&crossings(&t, &v, 10.0), &numbers(&r["interp_cross_10mV"]), run);
        let dg = max_spike_diff(&grid, &numbers(&r["netcon_thr10"]), run);
        println!("{run}: 10 mV crossings differ from NEURON by at most {d:.2e} ms, grid spikes by {dg:.2e} ms");
        assert!(d <= 0.002 && dg <= 0.002, "{run}: {d} {dg}");
    }
}

/// Reference case (c): per-step (t, v soma) and spikes.
fn ball_and_stick(cat: &Catalogue, table: bool) -> (Vec<f64>, Vec<f64>, Vec<Spike>) {
    let mut g = CellGroup::new(&[ball_and_stick_cell().into()], cat, options(Method::BackwardEuler, table)).unwrap();
    let probe = g.probe(&ProbeSpec::Voltage { cell: 0, location: Location::new(0, 0.5) }).unwrap();
    let syn = g.target(0, 0).unwrap();
    let strong = g.connect(syn, &[0.01], 0).unwrap();
    let weak = g.connect(syn, &[0.001], 1).unwrap();
    let mut events: Vec<Event> =
        [5.005, 20.005, 24.005, 40.005].iter().map(|&time| Event { time, connection: strong }).collect();
    events.extend([55.005, 70.005, 70.505, 71.005].iter().map(|&time| Event { time, connection: weak }));
    g.initialize(-65.0).unwrap();
    g.enqueue(&events);
    let (mut t, mut v, mut spikes) = (vec![0.0], vec![g.read(&probe)], Vec::new());
    for k in 1..=4000 {
        g.advance(k as f64 * 0.025, &mut Vec::new(), &mut spikes).unwrap();
        t.push(g.time());
        v.push(g.read(&probe));
    }
    (t, v, spikes)
}

#[test]
fn nmodl_ball_and_stick_matches_neuron() {
    let refs = read_json(&reference_file("ball_and_stick", "neuron_spikes.json"));
    let cat = nmodl_catalogue();
    for (run, table) in [("exact", false), ("tab", true)] {
        let (t, v, spikes) = ball_and_stick(&cat, table);
        let want = numbers(&refs[run]["interp_cross_10mV"]);
        assert_eq!(spikes.len(), want.len(), "{run}: spike count");
        let d = max_spike_diff(&crossings(&t, &v, 10.0), &want, run);
        println!("{run}: {} spikes, within {d:.2e} ms of NEURON", spikes.len());
        assert!(d <= 0.002, "{run}: {d}");
    }
}

/// Largest |a - b| over two equally long traces.
fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

#[test]
fn nmodl_kernels_agree_with_hand_written_ones() {
    let (hand, nmodl) = (Catalogue::builtin(), nmodl_catalogue());
    for table in [false, true] {
        let (_, va, sa) = ball_and_stick(&hand, table);
        let (_, vb, sb) = ball_and_stick(&nmodl, table);
        let dv = max_abs_diff(&va, &vb);
        let ds = max_spike_diff(
            &sa.iter().map(|s| s.time).collect::<Vec<_>>(),
            &sb.iter().map(|s| s.time).collect::<Vec<_>>(),
            "b&s",
        );
        println!("ball and stick, usetable {table}: max |dV| {dv:.2e} mV, spike times {ds:.2e} ms");
        assert!(dv <= 1e-6 && ds == 0.0, "table {table}: {dv} {ds}");
        for method in [Method::BackwardEuler, Method::CrankNicolson] {
            let (_, va, _) = hh_soma(&hand, method, table);
            let (_, vb, _) = hh_soma(&nmodl, method, table);
            let dv = max_abs_diff(&va, &vb);
            println!("hh soma {method:?}, usetable {table}: max |dV| {dv:.2e} mV");
            assert!(dv <= 1e-6, "{method:?} table {table}: {dv}");
        }
    }
}

/// A soma with hh, an ExpSyn driven by a NetStim and an Exp2Syn driven by a VecStim (events routed with a
/// 1 ms delay): traces and spikes of every cell.
fn stimulated_soma(cat: &Catalogue) -> (Vec<f64>, Vec<(u32, f64)>) {
    let m = Morphology::new(vec![Section::cylinder("soma", 1, 20.0, 20.0)]);
    let mut c = CableCell::new(m).unwrap();
    c.insert(0, "hh", &[]);
    c.place(Location::new(0, 0.5), "ExpSyn", &[("tau", 3.0), ("e", 0.0)]);
    c.place(Location::new(0, 0.5), "Exp2Syn", &[("tau1", 0.4), ("tau2", 4.0), ("e", -80.0)]);
    c.place(Location::new(0, 0.5), "IClamp", &[("del", 60.0), ("dur", 5.0), ("amp", 0.3)]);
    c.detect(Location::new(0, 0.5), 0.0);
    let netstim = ArtificialCell::new("NetStim", &[("interval", 7.0), ("number", 8.0), ("start", 3.0), ("noise", 0.0)]);
    let vecstim = ArtificialCell::vecstim(vec![11.0, 11.5, 30.25, 44.0]);
    let cells = vec![CellDescription::Cable(c), netstim.into(), vecstim.into()];
    // The hand-written hh computes its rates exactly unless told otherwise; NEURON's (and the .mod's)
    // default is the table: compare like with like.
    let mut g = CellGroup::new(&cells, cat, options(Method::BackwardEuler, false)).unwrap();
    let excite = g.connect(g.target(0, 0).unwrap(), &[0.004], 0).unwrap();
    let inhibit = g.connect(g.target(0, 1).unwrap(), &[0.01], 1).unwrap();
    let probe = g.probe(&ProbeSpec::Voltage { cell: 0, location: Location::new(0, 0.5) }).unwrap();
    g.initialize(-65.0).unwrap();
    let (mut v, mut all) = (Vec::new(), Vec::new());
    let mut pending = Vec::new();
    for k in 1..=4000 {
        let mut spikes = Vec::new();
        g.advance(k as f64 * 0.025, &mut pending, &mut spikes).unwrap();
        for s in spikes {
            all.push((s.cell, s.time));
            let connection = match s.cell {
                1 => excite,
                2 => inhibit,
                _ => continue,
            };
            pending.push(Event { time: s.time + 1.0, connection });
        }
        v.push(g.read(&probe));
    }
    (v, all)
}

#[test]
fn nmodl_synapses_and_stimulators_agree_with_hand_written_ones() {
    let (va, sa) = stimulated_soma(&Catalogue::builtin());
    let (vb, sb) = stimulated_soma(&nmodl_catalogue());
    let netstim: Vec<f64> = sb.iter().filter(|s| s.0 == 1).map(|s| s.1).collect();
    let vecstim: Vec<f64> = sb.iter().filter(|s| s.0 == 2).map(|s| s.1).collect();
    // NetStim without noise fires `number` times every `interval` from `start`; VecStim at its times.
    let want: Vec<f64> = (0..8).map(|k| 3.0 + 7.0 * k as f64).collect();
    assert_eq!(netstim.len(), want.len());
    for (a, b) in netstim.iter().zip(&want) {
        assert!((a - b).abs() < 1e-9, "NetStim {netstim:?}");
    }
    assert_eq!(vecstim, vec![11.0, 11.5, 30.25, 44.0]);
    assert_eq!(sa.len(), sb.len(), "spikes {sa:?} vs {sb:?}");
    assert!(sb.iter().any(|s| s.0 == 0), "the soma fires");
    for (a, b) in sa.iter().zip(&sb) {
        assert_eq!(a.0, b.0);
        assert!((a.1 - b.1).abs() < 1e-9, "{a:?} vs {b:?}");
    }
    let dv = max_abs_diff(&va, &vb);
    println!("soma with ExpSyn/Exp2Syn/IClamp/NetStim/VecStim: max |dV| {dv:.2e} mV, {} spikes", sb.len());
    assert!(dv <= 1e-6, "{dv}");
}

/// One soma with construct mechanisms (derivimplicit gates, a TABLE'd procedure, a custom ion) and its own
/// stimulus amplitude.
fn construct_cell(amp: f64) -> CableCell {
    let m = Morphology::new(vec![Section::cylinder("soma", 1, 20.0, 20.0)]);
    let mut c = CableCell::new(m).unwrap();
    c.insert(0, "pas", &[("g", 1e-4), ("e", -65.0)]);
    c.insert(0, "kadi", &[]);
    c.insert(0, "kexp", &[]);
    c.insert(0, "hion", &[]);
    c.insert(0, "hh", &[]);
    c.place(Location::new(0, 0.5), "IClamp", &[("del", 2.0), ("dur", 20.0), ("amp", amp)]);
    c
}

fn construct_traces(cells: &[f64], cat: &Catalogue) -> Vec<Vec<u64>> {
    let descs: Vec<CellDescription> = cells.iter().map(|&a| construct_cell(a).into()).collect();
    let mut g = CellGroup::new(&descs, cat, options(Method::CrankNicolson, true)).unwrap();
    let probes: Vec<_> = (0..cells.len())
        .map(|c| g.probe(&ProbeSpec::Voltage { cell: c, location: Location::new(0, 0.5) }).unwrap())
        .collect();
    g.initialize(-65.0).unwrap();
    let mut traces = vec![Vec::new(); cells.len()];
    for k in 1..=1000 {
        g.advance(k as f64 * 0.025, &mut Vec::new(), &mut Vec::new()).unwrap();
        for (c, p) in probes.iter().enumerate() {
            traces[c].push(g.read(p).to_bits());
        }
    }
    traces
}

#[test]
fn nmodl_results_do_not_depend_on_how_cells_are_grouped() {
    // 70 cells span two 64-lane chunks; every cell must match its run alone, bit for bit.
    let mut cat = nmodl_catalogue();
    let constructs = Library::load_dir(&common::repo_root().join("mechanisms").join("constructs")).unwrap();
    register(&mut cat, &constructs);
    let amps: Vec<f64> = (0..70).map(|i| 0.01 * i as f64).collect();
    let together = construct_traces(&amps, &cat);
    for i in [0, 1, 63, 64, 69] {
        let alone = construct_traces(&amps[i..i + 1], &cat);
        assert!(together[i] == alone[0], "cell {i} differs when grouped");
    }
    assert!(together[0] != together[69], "the cells do differ");
}
