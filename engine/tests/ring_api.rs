//! The 10-cell ball-and-stick ring of `tests/reference/neuron-arbor/README.md` (d), built through the Rust API in one
//! process, against NEURON's spike times (tests/reference/ring, made by bench/neuron/ring.py).

use miv_engine::{NetCon, Network, RunOptions};
use miv_partition::SerialComm;
use miv_solvers::{CableCell, Catalogue, CellDescription, Location, Morphology, Section};

fn bs_cell() -> CellDescription {
    let morph = Morphology::new(vec![
        Section::cylinder("soma", 1, 12.6157, 12.6157),
        Section::cylinder("dend", 3, 200.0, 1.0).on(0, 1.0),
    ]);
    let mut c = CableCell::new(morph).unwrap();
    c.nseg = vec![1, 11];
    c.ra = vec![100.0, 100.0];
    c.cm = vec![1.0, 1.0];
    c.insert(0, "hh", &[("gnabar", 0.12), ("gkbar", 0.036), ("gl", 0.0003), ("el", -54.3)]);
    c.insert(1, "pas", &[("g", 0.001), ("e", -65.0)]);
    c.set_erev(0, "na", 50.0);
    c.set_erev(0, "k", -77.0);
    c.place(Location::new(1, 0.5), "Exp2Syn", &[("tau1", 0.5), ("tau2", 2.0), ("e", 0.0)]);
    c.detect(Location::new(0, 0.5), 10.0);
    c.into()
}

fn run_ring(n: u64, delay: f64, cells_per_group: usize, threads: usize) -> Vec<(u64, f64)> {
    let comm = SerialComm;
    let mut opts = RunOptions { cells_per_group, threads, ..RunOptions::default() };
    opts.sim.celsius = 6.3;
    opts.sim.dt = 0.025;
    let mut net = Network::new(&comm, Catalogue::builtin(), opts);
    for gid in 0..n {
        net.add_cell(gid, 0, bs_cell()).unwrap();
    }
    for gid in 0..n {
        net.connect(NetCon { source: (gid + n - 1) % n, target_gid: gid, target: 0, weights: vec![0.01], delay })
            .unwrap();
    }
    net.add_event(0, 0, 5.005, vec![0.01]).unwrap();
    net.finitialize(-65.0).unwrap();
    net.psolve(100.0).unwrap();
    net.gather_spikes().unwrap().iter().map(|s| (s.gid, s.t)).collect()
}

fn reference(name: &str) -> Vec<(u64, f64)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/reference/ring").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .skip(1)
        .map(|l| {
            let (g, t) = l.split_once(',').unwrap();
            (g.parse().unwrap(), t.parse().unwrap())
        })
        .collect()
}

#[test]
fn ring_matches_neuron_spike_sequence_and_times() {
    for (delay, file) in [(5.0, "neuron_N10_d5_exact.csv"), (1.0, "neuron_N10_d1_exact.csv")] {
        let ours = run_ring(10, delay, 0, 1);
        let neuron = reference(file);
        assert_eq!(ours.len(), neuron.len(), "delay {delay}: spike count");
        for (a, b) in ours.iter().zip(&neuron) {
            assert_eq!(a.0, b.0, "delay {delay}: gid sequence");
            // NEURON's spike times sit on the 0.025 ms grid; with NEURON's rules ours must be the same grid time.
            assert!((a.1 - b.1).abs() < 1e-9, "delay {delay}: gid {} at {} vs NEURON {}", a.0, a.1, b.1);
        }
    }
}

#[test]
fn ring_is_identical_for_any_grouping_and_thread_count() {
    let base = run_ring(10, 1.0, 0, 1);
    for (per, threads) in [(1, 1), (3, 2), (10, 2), (4, 1), (1, 3), (2, 4)] {
        let other = run_ring(10, 1.0, per, threads);
        assert_eq!(base.len(), other.len());
        for (a, b) in base.iter().zip(&other) {
            assert_eq!(a.0, b.0);
            assert_eq!(a.1.to_bits(), b.1.to_bits(), "{per} cells per group, {threads} threads");
        }
    }
}

#[test]
fn a_delay_below_dt_is_rejected_with_the_connection_named() {
    let comm = SerialComm;
    let mut net = Network::new(&comm, Catalogue::builtin(), RunOptions::default());
    net.add_cell(0, 0, bs_cell()).unwrap();
    net.add_cell(1, 0, bs_cell()).unwrap();
    let e = net.connect(NetCon { source: 0, target_gid: 1, target: 0, weights: vec![0.01], delay: 0.01 }).unwrap_err();
    assert!(e.to_string().contains("0 -> 1") && e.to_string().contains("below the time step"), "{e}");
}

/// Noisy NetStims draw from streams keyed by (seed, gid, target): a gid's train does not depend on which
/// other cells share its rank or group, and changes with the seed.
#[test]
fn noisy_netstim_trains_depend_on_gid_and_seed_only() {
    use miv_solvers::ArtificialCell;
    let train = |gids: &[u64], per_group: usize, seed: u64| -> Vec<(u64, f64)> {
        let comm = SerialComm;
        let opts = RunOptions { cells_per_group: per_group, seed, ..RunOptions::default() };
        let mut net = Network::new(&comm, Catalogue::builtin(), opts);
        for &g in gids {
            let stim =
                ArtificialCell::new("NetStim", &[("interval", 5.0), ("number", 20.0), ("start", 1.0), ("noise", 1.0)]);
            net.add_cell(g, 0, stim.into()).unwrap();
        }
        net.finitialize(-65.0).unwrap();
        net.psolve(100.0).unwrap();
        net.gather_spikes().unwrap().iter().map(|s| (s.gid, s.t)).collect()
    };
    let all = train(&[0, 1, 2, 3, 4, 5], 0, 7);
    let grouped = train(&[0, 1, 2, 3, 4, 5], 2, 7);
    assert_eq!(all, grouped);
    // gid 3 alone (as on another rank) plays the same train as with the others.
    let alone = train(&[3], 0, 7);
    let of3: Vec<(u64, f64)> = all.iter().copied().filter(|s| s.0 == 3).collect();
    assert!(of3.len() > 5);
    assert_eq!(alone, of3);
    // Different gids and seeds give different trains.
    let of4: Vec<f64> = all.iter().filter(|s| s.0 == 4).map(|s| s.1).collect();
    assert_ne!(of3.iter().map(|s| s.1).collect::<Vec<_>>(), of4);
    assert_ne!(train(&[3], 0, 8), alone);
}

/// The rank's threads are the calling thread and helpers started per `psolve`: a network built on one thread
/// runs on another, in steps, and gives the spikes of one uninterrupted run.
#[test]
fn a_network_runs_in_steps_from_another_thread() {
    let base = run_ring(10, 1.0, 0, 1);
    for threads in [1, 2] {
        let comm = SerialComm;
        let mut opts = RunOptions { cells_per_group: 2, threads, ..RunOptions::default() };
        opts.sim.celsius = 6.3;
        opts.sim.dt = 0.025;
        let mut net = Network::new(&comm, Catalogue::builtin(), opts);
        for gid in 0..10 {
            net.add_cell(gid, 0, bs_cell()).unwrap();
        }
        for gid in 0..10 {
            let nc = NetCon { source: (gid + 9) % 10, target_gid: gid, target: 0, weights: vec![0.01], delay: 1.0 };
            net.connect(nc).unwrap();
        }
        net.add_event(0, 0, 5.005, vec![0.01]).unwrap();
        net.finitialize(-65.0).unwrap();
        std::thread::scope(|s| s.spawn(|| net.psolve(37.5).unwrap()).join().unwrap());
        net.psolve(100.0).unwrap();
        let spikes: Vec<(u64, f64)> = net.gather_spikes().unwrap().iter().map(|s| (s.gid, s.t)).collect();
        assert_eq!(spikes.len(), base.len(), "{threads} threads");
        for (a, b) in base.iter().zip(&spikes) {
            assert_eq!((a.0, a.1.to_bits()), (b.0, b.1.to_bits()), "{threads} threads");
        }
    }
}

/// Connections made in any order (here: by source, targets descending, so that every cell's connections are
/// split in several runs and a group's runs are spread over the whole list) give the spikes of the same
/// connections made target by target.
#[test]
fn connections_made_in_any_order_give_the_same_spikes() {
    let run = |by_target: bool, threads: usize| {
        let comm = SerialComm;
        let mut opts = RunOptions { cells_per_group: 3, threads, ..RunOptions::default() };
        opts.sim.celsius = 6.3;
        opts.sim.dt = 0.025;
        let mut net = Network::new(&comm, Catalogue::builtin(), opts);
        let n = 12u64;
        for gid in 0..n {
            net.add_cell(gid, 0, bs_cell()).unwrap();
        }
        // (source, target, weight, delay): the ring, and a weaker second input from three cells ahead.
        let mut ncs: Vec<(u64, u64, f64, f64)> = vec![];
        for gid in 0..n {
            ncs.push(((gid + n - 1) % n, gid, 0.01, 1.0));
            ncs.push(((gid + 3) % n, gid, 0.004, 2.5));
        }
        if by_target {
            ncs.sort_by_key(|&(s, t, _, _)| (t, s));
        } else {
            ncs.sort_by_key(|&(s, t, _, _)| (s, std::cmp::Reverse(t)));
        }
        for (source, target_gid, w, delay) in ncs {
            net.connect(NetCon { source, target_gid, target: 0, weights: vec![w], delay }).unwrap();
        }
        net.add_event(0, 0, 5.005, vec![0.01]).unwrap();
        net.finitialize(-65.0).unwrap();
        net.psolve(60.0).unwrap();
        net.gather_spikes().unwrap().iter().map(|s| (s.gid, s.t.to_bits())).collect::<Vec<_>>()
    };
    let base = run(true, 1);
    assert!(base.len() > 24, "the ring must keep firing: {} spikes", base.len());
    assert_eq!(run(false, 1), base);
    assert_eq!(run(false, 2), base);
}
