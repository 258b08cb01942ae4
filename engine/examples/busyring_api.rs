//! Quick timing of the BY-cell busyring through the API (the real benchmark is `miv bench busyring`).
use miv_engine::{NetCon, Network, RunOptions};
use miv_partition::rng::splitmix64;
use miv_partition::SerialComm;
use miv_solvers::{CableCell, Catalogue, CellDescription, Location, Morphology, Section};

fn by_cell() -> CellDescription {
    let morph = Morphology::new(vec![
        Section::cylinder("soma", 1, 12.6157, 12.6157),
        Section::cylinder("d0", 3, 100.0, 2.0).on(0, 1.0),
        Section::cylinder("d1", 3, 100.0, 1.0).on(1, 1.0),
        Section::cylinder("d2", 3, 100.0, 1.0).on(1, 1.0),
    ]);
    let mut c = CableCell::new(morph).unwrap();
    c.nseg = vec![1, 11, 11, 11];
    c.ra = vec![100.0; 4];
    c.cm = vec![1.0; 4];
    c.insert(0, "hh", &[("gnabar", 0.12), ("gkbar", 0.036), ("gl", 0.0003), ("el", -54.3)]);
    for s in 1..4 {
        c.insert(s, "pas", &[("g", 0.001), ("e", -65.0)]);
    }
    c.place(Location::new(2, 0.5), "Exp2Syn", &[("tau1", 0.5), ("tau2", 2.0), ("e", 0.0)]);
    c.detect(Location::new(0, 0.5), 10.0);
    c.into()
}

fn rss() -> String {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM"))
        .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
        .collect::<Vec<_>>()
        .join("/")
}

fn main() {
    let n: u64 = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(1000);
    let threads: usize = std::env::args().nth(2).map(|s| s.parse().unwrap()).unwrap_or(1);
    let per: usize = std::env::args().nth(3).map(|s| s.parse().unwrap()).unwrap_or(0);
    let comm = SerialComm;
    let mut opts = RunOptions { threads, cells_per_group: per, ..RunOptions::default() };
    opts.sim.celsius = 6.3;
    let t0 = std::time::Instant::now();
    let mut net = Network::new(&comm, Catalogue::builtin(), opts);
    for gid in 0..n {
        net.add_cell(gid, 0, by_cell()).unwrap();
    }
    for gid in 0..n {
        net.connect(NetCon { source: (gid + n - 1) % n, target_gid: gid, target: 0, weights: vec![0.01], delay: 5.0 })
            .unwrap();
        for k in 0..10 {
            let src = (gid + 1 + splitmix64(gid * 10 + k) % (n - 1)) % n;
            net.connect(NetCon { source: src, target_gid: gid, target: 0, weights: vec![0.0], delay: 5.0 }).unwrap();
        }
        if gid % 10 == 0 {
            net.add_event(gid, 0, 1.005, vec![0.01]).unwrap();
        }
    }
    eprintln!("after build descriptions: rss/hwm kB {}", rss());
    net.finitialize(-65.0).unwrap();
    eprintln!("after finitialize: rss/hwm kB {}", rss());
    let t1 = std::time::Instant::now();
    net.psolve(200.0).unwrap();
    let run = t1.elapsed().as_secs_f64();
    eprintln!("after run: rss/hwm kB {}", rss());
    let spikes = net.gather_spikes().unwrap();
    println!(
        "N={n} threads={threads} build+init {:.3}s run {:.3}s spikes {} -> {:.2} us/(cell ms), {:.2} ns/(comp step)",
        (t1 - t0).as_secs_f64(),
        run,
        spikes.len(),
        1e6 * run / (n as f64 * 200.0),
        1e9 * run / (n as f64 * 34.0 * 8000.0)
    );
}
