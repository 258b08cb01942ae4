//! `miv bench` (its `network`, `scaling` and `memory` benchmarks are in their own files) and `miv bench cell`:
//! time the single-cell numerics (ns per compartment-step) on three workloads and, when the reference
//! environment exists (.venv-ref from `scripts/setup --bench`), NEURON and Arbor on the same workloads in the
//! same session: (a) one 10,000-compartment passive cable, (b) 1,000 hh somata, (c) the BY cell busyring
//! network of tests/reference/neuron-arbor (ring + 10 zero-weight fan-in connections per cell, delay 5 ms,
//! kicks at 1.005 ms) in cell groups on one thread.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use clap::{Args, Subcommand};
use miv_partition::rng::splitmix64;
use miv_partition::Communicator;
use miv_solvers::{
    CableCell, Catalogue, CellDescription, CellGroup, Event, Location, Morphology, Section, SimOptions, Spike,
};

use super::{CliError, CliResult};

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub which: BenchWhich,
}

#[derive(Debug, Subcommand)]
pub enum BenchWhich {
    /// Single-cell numerics: passive cable, hh somata, BY-cell network.
    Cell(CellBenchArgs),
    /// The BY-cell busyring through the whole runtime (NeuroH5 in, spikes out) on 1 and 2 ranks and threads.
    Network(super::bench_network::NetworkBenchArgs),
    /// Strong and weak scaling studies: Slurm scripts for 1..64 nodes, a local 1 and 2 rank run, a collector.
    Scaling(Box<super::bench_scaling::ScalingArgs>),
    /// Memory bandwidth (STREAM-like copy and triad) and the busyring's bytes per compartment-step against it.
    Memory(super::bench_memory::MemoryArgs),
    /// MiV-Simulator/NEURON and miv on the same NeuroH5 files, alternating: load, init and run ratios.
    Miv(Box<super::bench_miv::MivBenchArgs>),
    /// An experiment's divisions, exps and other arithmetic per step against this core's throughput for each.
    Floor(super::bench_floor::FloorArgs),
}

#[derive(Debug, Args)]
pub struct CellBenchArgs {
    /// Workloads to run: cable, hh, by (comma separated).
    #[arg(long, default_value = "cable,hh,by")]
    pub cases: String,
    /// Number of BY cells (case by) and hh somata (case hh).
    #[arg(long, default_value_t = 1000)]
    pub cells: usize,
    /// Cells per group for the BY network (the engine's unit of work).
    #[arg(long, default_value_t = 64)]
    pub group_size: usize,
    /// Simulated time (ms) of the BY network; the other cases run 100 ms.
    #[arg(long, default_value_t = 200.0)]
    pub tstop: f64,
    /// Repetitions (the table reports the fastest).
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Also time NEURON and Arbor (needs .venv-ref; see scripts/setup --bench).
    #[arg(long)]
    pub reference: bool,
    /// Python of the reference environment.
    #[arg(long, default_value = ".venv-ref/bin/python")]
    pub python: PathBuf,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(comm: &dyn Communicator, args: BenchArgs) -> CliResult {
    if comm.size() > 1 {
        return Err(CliError {
            message: "miv bench runs in one process; run it without mpirun".into(),
            collective: true,
        });
    }
    match args.which {
        BenchWhich::Cell(a) => bench_cell(a),
        BenchWhich::Network(a) => super::bench_network::run(a),
        BenchWhich::Scaling(a) => super::bench_scaling::run(*a),
        BenchWhich::Memory(a) => super::bench_memory::run(a),
        BenchWhich::Miv(a) => super::bench_miv::run(*a),
        BenchWhich::Floor(a) => super::bench_floor::run(comm, a),
    }
}

/// One measured configuration.
pub(super) struct Row {
    pub(super) case: String,
    pub(super) simulator: String,
    pub(super) compartments: usize,
    pub(super) steps: u64,
    pub(super) seconds: f64,
    pub(super) spikes: usize,
    /// Heap memory per cell held by the cell groups (connections included).
    pub(super) bytes_per_cell: Option<f64>,
}

impl Row {
    pub(super) fn ns_per_comp_step(&self) -> f64 {
        1e9 * self.seconds / (self.compartments as f64 * self.steps as f64)
    }
}

fn bench_cell(a: CellBenchArgs) -> CliResult {
    let cases: Vec<&str> = a.cases.split(',').map(str::trim).collect();
    if let Some(bad) = cases.iter().find(|c| !["cable", "hh", "by"].contains(c)) {
        return Err(CliError::local(format!("--cases: unknown case {bad:?} (cable, hh, by)")));
    }
    let mut rows = Vec::new();
    for &case in &cases {
        let ours = (0..a.reps.max(1))
            .map(|_| match case {
                "cable" => bench_cable(),
                "hh" => bench_hh(a.cells),
                _ => bench_by(a.cells, a.group_size, a.tstop),
            })
            .collect::<Result<Vec<Row>, String>>()
            .map_err(CliError::local)?;
        let memory = ours.first().and_then(|r| r.bytes_per_cell);
        let mut best = ours.into_iter().min_by(|x, y| x.seconds.total_cmp(&y.seconds)).unwrap();
        best.bytes_per_cell = memory;
        if let Some(b) = memory {
            best.simulator = format!("{}, {:.1} KiB/cell)", best.simulator.trim_end_matches(')'), b / 1024.0);
        }
        rows.push(best);
        if a.reference {
            rows.extend(reference_rows(&a, case)?);
        }
    }
    if a.json {
        for r in &rows {
            println!(
                "{}",
                serde_json::json!({"case": r.case, "simulator": r.simulator, "compartments": r.compartments, "steps": r.steps,
                    "seconds": r.seconds, "spikes": r.spikes, "ns_per_compartment_step": r.ns_per_comp_step(),
                    "bytes_per_cell": r.bytes_per_cell})
            );
        }
    } else {
        println!(
            "{:<6} {:<40} {:>12} {:>8} {:>10} {:>8} {:>14}",
            "case", "simulator", "compartments", "steps", "run s", "spikes", "ns/comp-step"
        );
        for r in &rows {
            println!(
                "{:<6} {:<40} {:>12} {:>8} {:>10.3} {:>8} {:>14.2}",
                r.case,
                r.simulator,
                r.compartments,
                r.steps,
                r.seconds,
                r.spikes,
                r.ns_per_comp_step()
            );
        }
    }
    Ok(())
}

fn catalogue() -> Catalogue {
    Catalogue::builtin()
}

/// Time `advance` over `steps` steps of `g`, feeding spikes back through `route` (events for the spikes of one
/// exchange interval of `interval` ms).
fn time_run(
    g: &mut [CellGroup],
    tstop: f64,
    interval: f64,
    mut route: impl FnMut(&[(usize, Spike)], &mut [Vec<Event>]),
) -> Result<(f64, usize), String> {
    let mut events: Vec<Vec<Event>> = vec![Vec::new(); g.len()];
    let mut spikes: Vec<Spike> = Vec::new();
    let mut all: Vec<(usize, Spike)> = Vec::new();
    let mut count = 0;
    let start = Instant::now();
    let mut t = 0.0;
    while t < tstop - 1e-9 {
        t = (t + interval).min(tstop);
        all.clear();
        for (k, grp) in g.iter_mut().enumerate() {
            grp.advance(t, &mut events[k], &mut spikes).map_err(|e| e.to_string())?;
            all.extend(spikes.drain(..).map(|s| (k, s)));
        }
        count += all.len();
        route(&all, &mut events);
    }
    Ok((start.elapsed().as_secs_f64(), count))
}

fn bench_cable() -> Result<Row, String> {
    let m = Morphology::new(vec![Section::cylinder("cable", 3, 10_000.0, 1.0)]);
    let mut c = CableCell::new(m).map_err(|e| e.to_string())?;
    c.nseg[0] = 10_000;
    c.ra[0] = 100.0;
    c.insert(0, "pas", &[("g", 0.001), ("e", -65.0)]);
    c.place(Location::new(0, 0.0), "IClamp", &[("del", 5.0), ("dur", 1e9), ("amp", 0.1)]);
    let mut g = vec![CellGroup::new(&[c.into()], &catalogue(), SimOptions::default()).map_err(|e| e.to_string())?];
    g[0].initialize(-65.0).map_err(|e| e.to_string())?;
    let tstop = 100.0;
    let (seconds, spikes) = time_run(&mut g, tstop, tstop, |_, _| {})?;
    Ok(Row {
        case: "cable".into(),
        simulator: "miv".into(),
        compartments: g[0].num_compartments(),
        steps: 4000,
        seconds,
        spikes,
        bytes_per_cell: None,
    })
}

fn bench_hh(n: usize) -> Result<Row, String> {
    let cells: Vec<CellDescription> = (0..n)
        .map(|i| {
            let m = Morphology::new(vec![Section::cylinder("soma", 1, 18.8, 18.8)]);
            let mut c = CableCell::new(m).unwrap();
            c.ra[0] = 100.0;
            c.insert(0, "hh", &[]);
            c.place(Location::new(0, 0.5), "IClamp", &[("del", 1.0 + (i % 10) as f64), ("dur", 1e9), ("amp", 0.1)]);
            c.detect(Location::new(0, 0.5), 10.0);
            c.into()
        })
        .collect();
    let mut g = vec![CellGroup::new(&cells, &catalogue(), SimOptions::default()).map_err(|e| e.to_string())?];
    g[0].initialize(-65.0).map_err(|e| e.to_string())?;
    let (seconds, spikes) = time_run(&mut g, 100.0, 100.0, |_, _| {})?;
    Ok(Row {
        case: "hh".into(),
        simulator: "miv".into(),
        compartments: g[0].num_compartments(),
        steps: 4000,
        seconds,
        spikes,
        bytes_per_cell: None,
    })
}

/// The BY cell of the reference benchmark.
pub fn by_cell() -> CableCell {
    let m = Morphology::new(vec![
        Section::cylinder("soma", 1, 12.6157, 12.6157),
        Section::cylinder("d0", 3, 100.0, 2.0).on(0, 1.0),
        Section::cylinder("d1", 3, 100.0, 1.0).on(1, 1.0),
        Section::cylinder("d2", 3, 100.0, 1.0).on(1, 1.0),
    ]);
    let mut c = CableCell::new(m).expect("valid BY morphology");
    c.nseg = vec![1, 11, 11, 11];
    c.ra = vec![100.0; 4];
    c.insert(0, "hh", &[("gnabar", 0.12), ("gkbar", 0.036), ("gl", 0.0003), ("el", -54.3)]);
    c.set_erev(0, "na", 50.0);
    c.set_erev(0, "k", -77.0);
    for s in 1..4 {
        c.insert(s, "pas", &[("g", 0.001), ("e", -65.0)]);
    }
    c.place(Location::new(2, 0.5), "Exp2Syn", &[("tau1", 0.5), ("tau2", 2.0), ("e", 0.0)]);
    c.detect(Location::new(0, 0.5), 10.0);
    c
}

const FANIN: usize = 10;
const DELAY: f64 = 5.0;

/// The busyring network: gid i sits in group i / group_size; each cell's synapse gets the ring connection
/// from gid i-1 (weight 0.01) and 10 zero-weight connections; kicks on gid % 10 == 0 at 1.005 ms.
pub(super) fn bench_by(n: usize, group_size: usize, tstop: f64) -> Result<Row, String> {
    if n < 2 {
        return Err("--cells must be >= 2 for the BY network".into());
    }
    let gs = group_size.max(1);
    let rss0 = resident_bytes();
    let mut groups = Vec::new();
    // Per source gid: its outgoing connections as (group, connection id).
    let mut out: Vec<Vec<(usize, miv_solvers::ConnectionId)>> = vec![Vec::new(); n];
    let mut kicks: Vec<Vec<Event>> = Vec::new();
    for (gi, first) in (0..n).step_by(gs).enumerate() {
        let last = (first + gs).min(n);
        let cells: Vec<CellDescription> = (first..last).map(|_| by_cell().into()).collect();
        let mut g = CellGroup::new(&cells, &catalogue(), SimOptions::default()).map_err(|e| e.to_string())?;
        let mut k = Vec::new();
        for gid in first..last {
            let syn = g.target(gid - first, 0).unwrap();
            let ring = g.connect(syn, &[0.01], ((gid + n - 1) % n) as u64 * 64).map_err(|e| e.to_string())?;
            out[(gid + n - 1) % n].push((gi, ring));
            for j in 0..FANIN {
                let src = (gid + 1 + (splitmix64((gid * FANIN + j) as u64) % (n as u64 - 1)) as usize) % n;
                let c = g.connect(syn, &[0.0], src as u64 * 64 + 1 + j as u64).map_err(|e| e.to_string())?;
                out[src].push((gi, c));
            }
            if gid % 10 == 0 {
                let kick = g.connect(syn, &[0.01], u64::MAX - 1).map_err(|e| e.to_string())?;
                k.push(Event { time: 1.005, connection: kick });
            }
        }
        g.shrink_to_fit();
        g.initialize(-65.0).map_err(|e| e.to_string())?;
        groups.push(g);
        kicks.push(k);
    }
    for (g, k) in groups.iter_mut().zip(&kicks) {
        g.enqueue(k);
    }
    let compartments = groups.iter().map(|g| g.num_compartments()).sum();
    let rss_per_cell = resident_bytes().zip(rss0).map(|(a, b)| a.saturating_sub(b) as f64 / n as f64);
    let heap_per_cell = groups.iter().map(|g| g.heap_bytes()).sum::<usize>() as f64 / n as f64;
    tracing::info!("BY groups: {heap_per_cell:.0} heap bytes per cell (resident growth {rss_per_cell:?} per cell)");
    let bytes_per_cell = Some(heap_per_cell);
    let (seconds, spikes) = time_run(&mut groups, tstop, DELAY, |spikes, events| {
        for (gi, s) in spikes {
            let gid = gi * gs + s.cell as usize;
            for &(tg, c) in &out[gid] {
                events[tg].push(Event { time: s.time + DELAY, connection: c });
            }
        }
    })?;
    let steps = (tstop / 0.025).round() as u64;
    Ok(Row {
        case: "by".into(),
        simulator: format!("miv (groups of {gs})"),
        compartments,
        steps,
        seconds,
        spikes,
        bytes_per_cell,
    })
}

/// Resident set size of this process (Linux /proc/self/statm), if available.
fn resident_bytes() -> Option<usize> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

// ---------------------------------------------------------------------------------------------------------
// NEURON and Arbor in the same session.

fn reference_rows(a: &CellBenchArgs, case: &str) -> Result<Vec<Row>, CliError> {
    if !a.python.exists() {
        return Err(CliError::local(format!(
            "--reference: {} not found; create it with scripts/setup --bench",
            a.python.display()
        )));
    }
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut rows = Vec::new();
    let mut run = |simulator: &str, script: PathBuf, extra: Vec<String>| -> Result<(), CliError> {
        let mut best: Option<Row> = None;
        for _ in 0..a.reps.max(1) {
            let o = Command::new(&a.python)
                .arg(&script)
                .args(&extra)
                .output()
                .map_err(|e| CliError::local(format!("{}: {e}", script.display())))?;
            let text = String::from_utf8_lossy(&o.stdout);
            let line = text.lines().find_map(|l| l.strip_prefix("RESULT ")).ok_or_else(|| {
                CliError::local(format!(
                    "{} printed no RESULT line:\n{}",
                    script.display(),
                    String::from_utf8_lossy(&o.stderr)
                ))
            })?;
            let v: serde_json::Value = serde_json::from_str(line).map_err(|e| CliError::local(e.to_string()))?;
            let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
            let compartments = v["compartments_total"]
                .as_f64()
                .or(v["compartments"].as_f64())
                .unwrap_or_else(|| f("n_cells") * v["cvs_per_cell_with_membrane"].as_f64().unwrap_or(34.0))
                as usize;
            let row = Row {
                case: case.to_string(),
                simulator: simulator.to_string(),
                compartments,
                steps: (f("tstop_ms") / f("dt_ms")).round() as u64,
                seconds: f("run_s"),
                spikes: v["spikes"].as_u64().unwrap_or(0) as usize,
                bytes_per_cell: None,
            };
            if best.as_ref().is_none_or(|b| row.seconds < b.seconds) {
                best = Some(row);
            }
        }
        rows.extend(best);
        Ok(())
    };
    let bench = here.join("bench");
    let scripts = here.join("tests").join("reference").join("neuron-arbor").join("scripts");
    match case {
        "cable" => run("NEURON 9.0.2", bench.join("neuron").join("cell_timing.py"), vec!["cable".into()])?,
        "hh" => {
            run("NEURON 9.0.2", bench.join("neuron").join("cell_timing.py"), vec!["hh".into(), a.cells.to_string()])?
        }
        _ => {
            let n = a.cells.to_string();
            let t = a.tstop.to_string();
            run("NEURON 9.0.2", scripts.join("bench_neuron.py"), vec![n.clone(), "--tstop".into(), t.clone()])?;
            run(
                "Arbor 0.12.2 (group 1)",
                scripts.join("bench_arbor.py"),
                vec![n.clone(), "--tstop".into(), t.clone()],
            )?;
            run(
                "Arbor 0.12.2 (group 50)",
                scripts.join("bench_arbor.py"),
                vec![n, "--tstop".into(), t, "--group".into(), "50".into()],
            )?;
        }
    }
    Ok(rows)
}
