//! `miv mech`: NEURON `.mod` files as miv reads them.
//!
//! * `miv mech check DIR [--run] [--json]`: compile every `.mod` file below DIR and list each mechanism with
//!   its kind, ions and parameters; with `--run`, also insert each one into a one-compartment cell and run it.
//! * `miv mech bench`: time the NMODL `hh` (from `mechanisms/standard/hh.mod`) against the hand-written `hh`
//!   kernel, per instance and time step, through the same cell-group interface.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand};
use miv_nmodl::adapter::{register, ModMechanism};
use miv_nmodl::{Library, MechKind, Mechanism, MechanismInfo};
use miv_partition::Communicator;
use miv_solvers::ion::IonData;
use miv_solvers::mechanism::{Cx, Hh, Outbox, Site};
use miv_solvers::{
    ArtificialCell, CableCell, Catalogue, CellDescription, CellGroup, Event, Location, Mechanism as _, Morphology,
    Section, SimOptions, Spike,
};
use serde_json::json;

use super::{CliError, CliResult};

#[derive(Debug, Args)]
pub struct MechArgs {
    #[command(subcommand)]
    pub command: MechCommand,
}

#[derive(Debug, Subcommand)]
pub enum MechCommand {
    /// Compile every .mod file below DIR and list each mechanism (kind, ions, parameters).
    Check {
        /// Folder searched recursively for `.mod` files.
        dir: PathBuf,
        /// Also insert each mechanism into a one-compartment cell and run it.
        #[arg(long)]
        run: bool,
        /// Run length (ms) for --run.
        #[arg(long, default_value_t = 50.0)]
        tstop: f64,
        /// One JSON object per file instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Time NMODL hh against the hand-written hh (ns per instance and step).
    Bench {
        #[arg(long, default_value_t = 20_000)]
        instances: usize,
        #[arg(long, default_value_t = 400)]
        steps: usize,
        /// Repetitions; the fastest is reported.
        #[arg(long, default_value_t = 5)]
        repeats: usize,
        /// Time only one kernel (`hand` or `nmodl`), e.g. under `perf stat`.
        #[arg(long)]
        only: Option<String>,
        /// Run the NMODL kernels in the VM's baseline variant: no native code, no AVX2/AVX-512 VM
        /// loops (the hand-written kernels keep their SIMD variants). `MIV_NMODL_JIT=off` keeps the
        /// SIMD VM but no native code.
        #[arg(long)]
        no_simd: bool,
    },
}

pub fn run(comm: &dyn Communicator, args: MechArgs) -> CliResult {
    if comm.size() > 1 {
        return Err(CliError {
            message: "miv mech runs in one process; run it without mpirun".into(),
            collective: true,
        });
    }
    match args.command {
        MechCommand::Check { dir, run, tstop, json } => check(&dir, run, tstop, json),
        MechCommand::Bench { instances, steps, repeats, only, no_simd } => {
            miv_nmodl::vm::set_simd(!no_simd);
            bench(instances, steps, repeats, only.as_deref())
        }
    }
}

fn ion_names(ion: &miv_nmodl::IonInfo, written: bool) -> Vec<&str> {
    ion.fields.iter().filter(|f| if written { f.written } else { f.read }).map(|f| f.name.as_str()).collect()
}

fn ion_text(info: &MechanismInfo) -> String {
    info.ions
        .iter()
        .map(|ion| {
            let mut t = format!("{}(z={}", ion.name, ion.valence);
            for (what, names) in [("read", ion_names(ion, false)), ("write", ion_names(ion, true))] {
                if !names.is_empty() {
                    t += &format!(" {what} {}", names.join(","));
                }
            }
            t + ")"
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn describe(info: &MechanismInfo) -> serde_json::Value {
    json!({
        "name": info.name,
        "file": info.file,
        "kind": info.kind.name(),
        "ions": info.ions.iter().map(|ion| json!({
            "ion": ion.name,
            "valence": ion.valence,
            "read": ion_names(ion, false),
            "write": ion_names(ion, true),
        })).collect::<Vec<_>>(),
        "parameters": info.parameters.iter().map(|p| json!({
            "name": p.name, "default": p.default, "units": p.units, "range": p.per_instance,
        })).collect::<Vec<_>>(),
        "states": info.states,
        "net_receive_args": info.net_receive_args,
        "warnings": info.warnings,
    })
}

/// What a short run of one mechanism in a one-compartment cell gave.
struct RunResult {
    v_min: f64,
    v_max: f64,
    v_end: f64,
    spikes: usize,
}

/// Insert `m` into a soma (L = diam = 20 um, celsius 34, a 0.05 nA step from 10 to 30 ms, passive leak);
/// point processes get an event every 5 ms, artificial cells fire into a synapse on the soma.
fn run_one(m: &Mechanism, catalogue: &Catalogue, tstop: f64) -> Result<RunResult, String> {
    let info = m.info();
    let soma = Morphology::new(vec![Section::cylinder("soma", 1, 20.0, 20.0)]);
    let mut cell = CableCell::new(soma).map_err(|e| e.to_string())?;
    cell.insert(0, "pas", &[("g", 1e-4), ("e", -65.0)]);
    cell.place(Location::new(0, 0.5), "IClamp", &[("del", 10.0), ("dur", 20.0), ("amp", 0.05)]);
    cell.detect(Location::new(0, 0.5), 0.0);
    let mut cells = Vec::new();
    let mut target = None;
    match info.kind {
        MechKind::Density => cell.insert(0, &info.name, &[]),
        MechKind::Point => target = Some(cell.place(Location::new(0, 0.5), &info.name, &[])),
        MechKind::Artificial => {}
    }
    cells.push(CellDescription::Cable(cell));
    if info.kind == MechKind::Artificial {
        let mut a = ArtificialCell::new(&info.name, &[]);
        if m.plays_vectors() {
            a.arrays.push(("times".into(), vec![2.0, 7.0, 12.5]));
        }
        cells.push(CellDescription::Artificial(a));
    }
    let opts = SimOptions { celsius: 34.0, ..SimOptions::default() };
    let mut g = CellGroup::new(&cells, catalogue, opts).map_err(|e| e.to_string())?;
    let mut events = Vec::new();
    if let (Some(t), Some(n)) = (target, info.net_receive_args) {
        let syn = g.target(0, t).ok_or("no target for the point process")?;
        let c = g.connect(syn, &vec![0.005; n.max(1)], 0).map_err(|e| e.to_string())?;
        events
            .extend((1..).map(|k| k as f64 * 5.0).take_while(|&t| t < tstop).map(|time| Event { time, connection: c }));
    }
    let probe = g
        .probe(&miv_solvers::ProbeSpec::Voltage { cell: 0, location: Location::new(0, 0.5) })
        .map_err(|e| e.to_string())?;
    g.initialize(miv_config::DEFAULT_V_INIT).map_err(|e| e.to_string())?;
    g.enqueue(&events);
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut spikes: Vec<Spike> = Vec::new();
    let dt = SimOptions::DEFAULT_DT;
    let steps = (tstop / dt).round() as usize;
    for k in 1..=steps {
        g.advance(k as f64 * dt, &mut Vec::new(), &mut spikes).map_err(|e| e.to_string())?;
        let v = g.read(&probe);
        lo = lo.min(v);
        hi = hi.max(v);
        if !v.is_finite() {
            return Err(format!("v is {v} at t = {} ms", g.time()));
        }
    }
    Ok(RunResult { v_min: lo, v_max: hi, v_end: g.read(&probe), spikes: spikes.len() })
}

fn check(dir: &Path, run: bool, tstop: f64, as_json: bool) -> CliResult {
    let results = Library::check_dir(dir).map_err(|e| CliError::local(e.to_string()))?;
    if results.is_empty() {
        return Err(CliError::local(format!("{}: no .mod files below this folder", dir.display())));
    }
    // The folder's mechanisms replace built-in kernels of the same name (as a user's mechanisms_path).
    let mut lib = Library::standard().map_err(|e| CliError::local(e.to_string()))?;
    let mut mine = Library::default();
    let mut failed = Vec::new();
    let mut compiled = Vec::new();
    for (path, r) in results {
        match r {
            Ok(m) => {
                let m = std::sync::Arc::new(m);
                if let Err(e) = mine.insert(m.clone()) {
                    failed.push(e.to_string());
                }
                compiled.push(m);
            }
            Err(e) => {
                if as_json {
                    println!("{}", json!({"file": path.display().to_string(), "error": e.to_string()}));
                } else {
                    println!("ERROR {e}");
                }
                failed.push(e.to_string());
            }
        }
    }
    lib.overlay(mine);
    let mut catalogue = Catalogue::builtin();
    register(&mut catalogue, &lib);
    for m in &compiled {
        let info = m.info();
        let outcome = run.then(|| run_one(m, &catalogue, tstop));
        if let Some(Err(e)) = &outcome {
            failed.push(format!("{}: run: {e}", info.name));
        }
        if as_json {
            let mut j = describe(info);
            if let Some(o) = &outcome {
                j["run"] = match o {
                    Ok(r) => {
                        json!({"ok": true, "v_min": r.v_min, "v_max": r.v_max, "v_end": r.v_end, "spikes": r.spikes})
                    }
                    Err(e) => json!({"ok": false, "error": e}),
                };
            }
            println!("{j}");
        } else {
            let params: Vec<String> = info
                .parameters
                .iter()
                .map(|p| format!("{}{}={}", p.name, if p.per_instance { "" } else { "(global)" }, p.default))
                .collect();
            let ions = if info.ions.is_empty() { "no ions".to_string() } else { ion_text(info) };
            println!("{:<16} {:<10} {}  [{}]  {}", info.name, info.kind.name(), ions, params.join(" "), info.file);
            for w in &info.warnings {
                println!("  warning: {w}");
            }
            match &outcome {
                Some(Ok(r)) => println!(
                    "  run {tstop} ms: v in [{:.3}, {:.3}] mV, v(end) {:.3} mV, {} spike(s)",
                    r.v_min, r.v_max, r.v_end, r.spikes
                ),
                Some(Err(e)) => println!("  run FAILED: {e}"),
                None => {}
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::local(format!("{} problem(s):\n  {}", failed.len(), failed.join("\n  "))))
    }
}

/// Time `current` + `update_state` of `mech` over `n` instances on `n` nodes for `steps` steps.
fn time_kernel(mech: &mut dyn miv_solvers::Mechanism, n: usize, steps: usize) -> f64 {
    let steps = steps.max(1);
    let mut ions = vec![IonData::new("na"), IonData::new("k")];
    for i in 0..n {
        ions[0].push(i as u32, 50.0, 10.0, 140.0);
        ions[1].push(i as u32, -77.0, 54.4, 2.5);
    }
    let params = mech.info().defaults();
    for i in 0..n {
        let site = Site { node: i as u32, scale: 1.0, ions: vec![i as u32, i as u32], cell: 0, area: 100.0, diam: 1.0 };
        mech.add_instance(&site, &params);
    }
    let mut v: Vec<f64> = (0..n).map(|i| -70.0 + 40.0 * (i as f64 / n as f64)).collect();
    let (mut rhs, mut d) = (vec![0.0; n], vec![0.0; n]);
    let mut out = Outbox::default();
    let ion_ids = [0usize, 1];
    let cx = |v: &[f64],
              rhs: &mut [f64],
              d: &mut [f64],
              ions: &mut [IonData],
              out: &mut Outbox,
              f: &mut dyn FnMut(&mut Cx) -> Result<(), String>| {
        let mut c = Cx {
            t: 0.0,
            dt: SimOptions::DEFAULT_DT,
            celsius: SimOptions::DEFAULT_CELSIUS,
            second_order: false,
            v,
            rhs,
            d,
            electrode: None,
            ions,
            ion_ids: &ion_ids,
            out,
        };
        f(&mut c).expect("kernel call");
    };
    cx(&v, &mut rhs, &mut d, &mut ions, &mut out, &mut |c| mech.initialize(c));
    let mut times = Vec::with_capacity(steps);
    for s in 0..steps {
        let start = Instant::now();
        for (k, x) in v.iter_mut().enumerate() {
            *x = -70.0 + 40.0 * (((k + s) % n) as f64 / n as f64);
        }
        for ion in ions.iter_mut() {
            ion.begin_currents(SimOptions::DEFAULT_CELSIUS);
        }
        cx(&v, &mut rhs, &mut d, &mut ions, &mut out, &mut |c| mech.current(c));
        cx(&v, &mut rhs, &mut d, &mut ions, &mut out, &mut |c| mech.update_state(c));
        times.push(start.elapsed().as_secs_f64());
    }
    // The median step: steps during which the process was descheduled (the machine is shared)
    // do not count.
    times.sort_by(f64::total_cmp);
    times[steps / 2] * 1e9 / n as f64
}

fn bench(n: usize, steps: usize, repeats: usize, only: Option<&str>) -> CliResult {
    let lib = Library::standard().map_err(|e| CliError::local(e.to_string()))?;
    let hh = lib.get("hh").ok_or_else(|| CliError::local("no standard hh"))?.clone();
    println!("hh, {n} instances, {steps} steps (current + state), median step of the fastest of {repeats} runs; ns per instance-step");
    let native = match (miv_nmodl::vm::simd_enabled(), miv_nmodl::jit::active()) {
        (true, Some(isa)) => format!("native code ({isa:?})"),
        _ => "the VM".into(),
    };
    println!("NMODL kernels without tables run as {native}");
    println!("{:<10} {:>14} {:>14} {:>8}", "usetable", "hand-written", "NMODL", "ratio");
    for usetable in [0.0, 1.0] {
        let mut best = [f64::INFINITY; 2];
        for _ in 0..repeats {
            if only != Some("nmodl") {
                let mut hand = Hh::default();
                hand.set_global(0, usetable);
                best[0] = best[0].min(time_kernel(&mut hand, n, steps));
            }
            if only != Some("hand") {
                let mut nm = ModMechanism::new(&hh);
                let k =
                    nm.info().global_index("usetable").ok_or_else(|| CliError::local("NMODL hh has no usetable"))?;
                nm.set_global(k, usetable);
                best[1] = best[1].min(time_kernel(&mut nm, n, steps));
            }
        }
        println!("{:<10} {:>14.2} {:>14.2} {:>8.3}", usetable, best[0], best[1], best[1] / best[0]);
    }
    Ok(())
}
