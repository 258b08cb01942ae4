//! The LFP electrode against the line-source formula: a passive single-compartment cell driven by a constant
//! current loses exactly that current through its membrane at steady state, so the electrode must read
//! k·I with k = 1e-2·rho/(4π)·(1/l)∫dx/r; and the result must not depend on grouping or threads.

use miv_config::LfpConfig;
use miv_engine::lfp::line_source;
use miv_engine::{Network, RunOptions};
use miv_partition::SerialComm;
use miv_solvers::{CableCell, Catalogue, CellDescription, Location, Morphology, Section};

fn cell(amp: f64) -> CellDescription {
    let mut c = CableCell::new(Morphology::new(vec![Section::cylinder("soma", 1, 20.0, 20.0)])).unwrap();
    c.insert(0, "pas", &[("g", 0.001), ("e", -65.0)]);
    c.place(Location::new(0, 0.5), "IClamp", &[("del", 0.0), ("dur", 1e9), ("amp", amp)]);
    c.detect(Location::new(0, 0.5), 10.0);
    c.into()
}

fn electrode(fdst: f64) -> LfpConfig {
    LfpConfig {
        label: "e".into(),
        position: [10.0, 1000.0, 0.0],
        rho: 333.0,
        fdst,
        max_e_dist: 100.0,
        dt_lfp: 0.5,
        seed: 7,
        miv_compat: false,
    }
}

fn run(cells: &[(u64, f64)], per_group: usize, threads: usize, fdst: f64) -> (Vec<f64>, Vec<f64>) {
    let comm = SerialComm;
    let opts = RunOptions { cells_per_group: per_group, threads, ..RunOptions::default() };
    let mut net = Network::new(&comm, Catalogue::builtin(), opts);
    for &(gid, amp) in cells {
        net.add_cell(gid, 0, cell(amp)).unwrap();
    }
    net.add_lfp(electrode(fdst)).unwrap();
    net.finitialize(-65.0).unwrap();
    net.psolve(50.0).unwrap();
    net.gather_lfp(0).unwrap()
}

#[test]
fn steady_state_lfp_is_the_line_source_of_the_injected_current() {
    let (t, v) = run(&[(0, 0.1)], 0, 1, 1.0);
    assert_eq!(t.len(), 101, "samples at 0, 0.5, ..., 50 ms");
    assert!((t[100] - 50.0).abs() < 1e-9);
    // tau = cm/g = 1 ms: at 50 ms the membrane current equals the injected 0.1 nA.
    let e = electrode(1.0);
    let k =
        1e-2 * e.rho / (4.0 * std::f64::consts::PI) * line_source(e.position, [0.0, 0.0, 0.0], [20.0, 0.0, 0.0], 0.5);
    let expected = k * 0.1;
    assert!((v[100] / expected - 1.0).abs() < 1e-6, "lfp {} vs line source {expected}", v[100]);
    // Far away it is the point-source potential rho I / (4 pi r).
    let point = 1e-2 * 333.0 * 0.1 / (4.0 * std::f64::consts::PI * 1000.0);
    assert!((v[100] / point - 1.0).abs() < 1e-4);
}

#[test]
fn lfp_is_identical_for_any_grouping_and_threads_and_sums_over_cells() {
    let cells: Vec<(u64, f64)> = (0..7).map(|g| (g, 0.05 + 0.01 * g as f64)).collect();
    let (_, base) = run(&cells, 0, 1, 1.0);
    for (per, threads) in [(1, 1), (2, 2), (7, 1), (3, 2)] {
        let (_, v) = run(&cells, per, threads, 1.0);
        assert_eq!(
            base.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }
    // Linear in the currents: the sum of the cells' amplitudes times one cell's coefficient.
    let (_, one) = run(&[(0, 1.0)], 0, 1, 1.0);
    let total: f64 = cells.iter().map(|c| c.1).sum();
    assert!((base[100] / (one[100] * total) - 1.0).abs() < 1e-6);
}

#[test]
fn distal_cells_are_sampled_and_scaled() {
    // fdst 0.5: about half the distal cells count, each scaled by 2.
    let cells: Vec<(u64, f64)> = (0..400).map(|g| (g, 0.1)).collect();
    let (_, v) = run(&cells, 0, 1, 0.5);
    let (_, one) = run(&[(0, 0.1)], 0, 1, 1.0);
    let included = v[100] / (2.0 * one[100]);
    assert!((included - included.round()).abs() < 1e-6, "a whole number of cells: {included}");
    assert!((included - 200.0).abs() < 40.0, "about half of 400: {included}");
}
