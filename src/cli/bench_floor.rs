//! `miv bench floor`: the least time one core needs per step for the divisions an experiment's
//! mechanisms perform, against the step it measures. Divisions are the one operation of the `.mod`
//! arithmetic that has a fixed cost whatever the code around it: IEEE `x / y` cannot be replaced
//! without changing the results, and the core's divider does a fixed number per nanosecond. The
//! probe measures that rate (f64 division over arrays in the L1 cache, AVX-512, AVX2 and scalar code,
//! the fastest kept); the experiment is loaded, initialised and run on one thread, and each mechanism's
//! divisions per step (`MechanismCensus`, counted from the kernels it runs) are set against the rate.
//! What is the same for every instance (a division of parameters all instances share) is computed
//! once per call and not counted. Exps and other operations are counted and printed, not timed: their
//! cost depends on how they are computed.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use miv_engine::run::load_environment;
use miv_engine::{MechanismCensus, Overrides};
use miv_partition::Communicator;
use serde::Serialize;

use super::{CliError, CliResult};

#[derive(Debug, Args)]
pub struct FloorArgs {
    /// The experiment YAML (its network is built if needed, as `miv run` does).
    pub experiment: PathBuf,
    /// Simulated time (ms) of the measured run, on one thread.
    #[arg(long, default_value_t = 5.0)]
    pub t_end: f64,
    /// Repetitions of the division probe (the fastest is kept).
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn fail(m: String) -> CliError {
    CliError { message: m, collective: true }
}

/// One mechanism's row: per-instance counts are averages over its instances.
#[derive(Debug, Serialize)]
struct Row {
    mechanism: String,
    instances: u64,
    divisions_per_instance: Option<f64>,
    exps_per_instance: Option<f64>,
    other_per_instance: Option<f64>,
    implicit_solve: bool,
    /// Divisions of all instances in one step times the probe's time per division (us).
    division_floor_us: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Report {
    experiment: String,
    division_ns: f64,
    division_code: &'static str,
    dt: f64,
    steps: u64,
    measured_us_per_step: f64,
    division_floor_us_per_step: f64,
    mechanisms: Vec<Row>,
    not_counted: Vec<String>,
}

const N: usize = 512;

/// One variant of the probe's loop: `c = a / b` element by element.
type Divide = fn(&mut [f64; N], &[f64; N], &[f64; N]);

#[inline(always)]
fn divide(c: &mut [f64; N], a: &[f64; N], b: &[f64; N]) {
    for i in 0..N {
        c[i] = a[i] / b[i];
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn divide_avx512(c: &mut [f64; N], a: &[f64; N], b: &[f64; N]) {
    divide(c, a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn divide_avx2(c: &mut [f64; N], a: &[f64; N], b: &[f64; N]) {
    divide(c, a, b)
}

fn divide_scalar(c: &mut [f64; N], a: &[f64; N], b: &[f64; N]) {
    for i in 0..N {
        c[i] = black_box(a[i]) / b[i];
    }
}

/// Nanoseconds per f64 division of the fastest code this CPU runs, and which code that was.
fn division_ns(reps: usize) -> (f64, &'static str) {
    let mut a = [0.0; N];
    let mut b = [0.0; N];
    for i in 0..N {
        a[i] = 1.0 + (i as f64) / N as f64;
        b[i] = 1.5 + (i as f64 * 0.37) % 0.5;
    }
    let mut c = [0.0; N];
    let mut variants: Vec<(&'static str, Divide)> = vec![("scalar", divide_scalar)];
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked above).
            variants.push(("AVX2", |c, a, b| unsafe { divide_avx2(c, a, b) }));
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked above).
            variants.push(("AVX-512", |c, a, b| unsafe { divide_avx512(c, a, b) }));
        }
    }
    let rounds = 20_000;
    let mut best = (f64::INFINITY, "scalar");
    for (name, f) in variants {
        for _ in 0..reps.max(1) {
            let t = Instant::now();
            for _ in 0..rounds {
                // Opaque inputs each round, so the compiler cannot hoist the divisions out of the loop.
                f(&mut c, black_box(&a), black_box(&b));
                black_box(&mut c);
            }
            let ns = t.elapsed().as_secs_f64() * 1e9 / (rounds * N) as f64;
            if ns < best.0 {
                best = (ns, name);
            }
        }
    }
    best
}

fn row(c: &MechanismCensus, division_ns: f64) -> Row {
    let per = |x: u64| c.counted.then(|| x as f64 / c.instances as f64);
    Row {
        mechanism: c.name.clone(),
        instances: c.instances,
        divisions_per_instance: per(c.divisions),
        exps_per_instance: per(c.exps),
        other_per_instance: per(c.other),
        implicit_solve: c.implicit,
        division_floor_us: c.counted.then(|| c.divisions as f64 * division_ns / 1000.0),
    }
}

pub fn run(comm: &dyn Communicator, a: FloorArgs) -> CliResult {
    if !(a.t_end.is_finite() && a.t_end > 0.0) {
        return Err(fail(format!("--t-end must be a positive number of ms, not {}", a.t_end)));
    }
    let (division_ns, division_code) = division_ns(a.reps);
    let overrides = Overrides { threads: Some(1), force_threads: false, t_end: Some(a.t_end) };
    let (e, mut env) = load_environment(comm, &a.experiment, &overrides).map_err(|err| fail(err.to_string()))?;
    env.finitialize(e.v_init).map_err(|err| fail(err.to_string()))?;
    // One step first: it builds the kernels specialised to shared fields, which the census counts.
    let first = e.dt.min(a.t_end);
    env.psolve(first).map_err(|err| fail(err.to_string()))?;
    let t = Instant::now();
    env.psolve(a.t_end).map_err(|err| fail(err.to_string()))?;
    let run_s = t.elapsed().as_secs_f64();
    let steps = ((a.t_end - first) / e.dt).round().max(1.0) as u64;
    let census = env.mechanism_census();
    let mut rows: Vec<Row> = census.iter().filter(|c| c.counted).map(|c| row(c, division_ns)).collect();
    rows.sort_by(|x, y| y.division_floor_us.unwrap_or(0.0).total_cmp(&x.division_floor_us.unwrap_or(0.0)));
    let not_counted: Vec<String> = census.iter().filter(|c| !c.counted).map(|c| c.name.clone()).collect();
    let report = Report {
        experiment: a.experiment.display().to_string(),
        division_ns,
        division_code,
        dt: e.dt,
        steps,
        measured_us_per_step: run_s * 1e6 / steps as f64,
        division_floor_us_per_step: rows.iter().filter_map(|r| r.division_floor_us).sum(),
        mechanisms: rows,
        not_counted,
    };
    if a.json {
        println!("{}", serde_json::to_string(&report).expect("json"));
        return Ok(());
    }
    println!(
        "This core: {:.3} ns per f64 division ({} code, fastest of {} repetitions)",
        report.division_ns,
        report.division_code,
        a.reps.max(1)
    );
    println!(
        "{:<20} {:>10} {:>9} {:>9} {:>9} {:>14}",
        "mechanism", "instances", "div/inst", "exp/inst", "other", "div floor us"
    );
    let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.1}"));
    for r in &report.mechanisms {
        println!(
            "{:<20} {:>10} {:>9} {:>9} {:>9} {:>14}{}",
            r.mechanism,
            r.instances,
            f(r.divisions_per_instance),
            f(r.exps_per_instance),
            f(r.other_per_instance),
            f(r.division_floor_us),
            if r.implicit_solve { "  (+ implicit solve)" } else { "" }
        );
    }
    if !report.not_counted.is_empty() {
        println!("not counted (hand-written): {}", report.not_counted.join(", "));
    }
    let measured = format!(
        "measured on one thread: {:.1} us per step ({} steps of {} ms)",
        report.measured_us_per_step, report.steps, report.dt
    );
    if report.division_floor_us_per_step > 0.0 {
        println!(
            "divisions alone: {:.1} us per step; {measured}, {:.2}x that floor",
            report.division_floor_us_per_step,
            report.measured_us_per_step / report.division_floor_us_per_step
        );
    } else {
        println!("no divisions counted; {measured}");
    }
    Ok(())
}
