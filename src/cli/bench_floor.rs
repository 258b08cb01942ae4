//! `miv bench floor`: the least time one core needs per step for the arithmetic an experiment's mechanisms
//! perform, against the step it measures. Three probes measure this core's throughput over arrays in the L1
//! cache (AVX-512, AVX2 and scalar code, the fastest of the repetitions kept): f64 division, miv's `exp`
//! (`fastmath::exp`, the operations the NMODL JIT emits) and multiplication and addition (a chain long
//! enough that the arithmetic, not the loads, sets the pace). The experiment is loaded, initialised and run
//! on one thread, and each mechanism's divisions, exps and other operations per step (`MechanismCensus`,
//! counted from the kernels it runs) are set against those rates. Divisions run on the divider, beside the
//! arithmetic units that run the rest: the step needs at least the larger of the two, and their sum if they
//! do not overlap. IEEE `x / y` cannot be replaced without changing the results; what is the same for every
//! instance (a division of parameters all instances share) is computed once per call and not counted.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use miv_engine::run::load_environment;
use miv_engine::{MechanismCensus, Overrides};
use miv_partition::Communicator;
use miv_solvers::fastmath;
use serde::Serialize;

use super::{CliError, CliResult};

#[derive(Debug, Args)]
pub struct FloorArgs {
    /// The experiment YAML (its network is built if needed, as `miv run` does).
    pub experiment: PathBuf,
    /// Simulated time (ms) of the measured run, on one thread.
    #[arg(long, default_value_t = 5.0)]
    pub t_end: f64,
    /// Repetitions of each probe (the fastest is kept).
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
    /// Exps of all instances in one step times the probe's time per exp (us).
    exp_floor_us: Option<f64>,
    /// Other operations of all instances in one step times the probe's time per operation (us).
    other_floor_us: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Report {
    experiment: String,
    division_ns: f64,
    division_code: &'static str,
    exp_ns: f64,
    exp_code: &'static str,
    other_ns: f64,
    other_code: &'static str,
    dt: f64,
    steps: u64,
    measured_us_per_step: f64,
    division_floor_us_per_step: f64,
    exp_floor_us_per_step: f64,
    other_floor_us_per_step: f64,
    mechanisms: Vec<Row>,
    not_counted: Vec<String>,
}

const N: usize = 512;

/// One variant of a probe's loop over the arrays `c`, `a`, `b`.
type Kernel = fn(&mut [f64; N], &[f64; N], &[f64; N]);

#[inline(always)]
fn divide(c: &mut [f64; N], a: &[f64; N], b: &[f64; N]) {
    for i in 0..N {
        c[i] = a[i] / b[i];
    }
}

fn divide_scalar(c: &mut [f64; N], a: &[f64; N], b: &[f64; N]) {
    for i in 0..N {
        c[i] = black_box(a[i]) / b[i];
    }
}

/// `c = exp(a)` element by element, with miv's `exp` (the operations the NMODL JIT emits).
#[inline(always)]
fn exponentiate(c: &mut [f64; N], a: &[f64; N], _: &[f64; N]) {
    for i in 0..N {
        c[i] = fastmath::exp(a[i]);
    }
}

fn exponentiate_scalar(c: &mut [f64; N], a: &[f64; N], _: &[f64; N]) {
    for i in 0..N {
        c[i] = fastmath::exp(black_box(a[i]));
    }
}

/// Operations of the kind counted as "other" per element of `multiply_add`.
const MULTIPLY_ADD_OPS: f64 = 16.0;

/// `c = (...((a b + a) b + a) ...) b + a`, eight multiplications and eight additions per element: enough
/// arithmetic per load and store that the arithmetic units, not the cache, set the pace.
#[inline(always)]
fn multiply_add(c: &mut [f64; N], a: &[f64; N], b: &[f64; N]) {
    for i in 0..N {
        let (x, y) = (a[i], b[i]);
        let mut p = x;
        for _ in 0..8 {
            p = p * y + x;
        }
        c[i] = p;
    }
}

fn multiply_add_scalar(c: &mut [f64; N], a: &[f64; N], b: &[f64; N]) {
    for i in 0..N {
        let (x, y) = (black_box(a[i]), b[i]);
        let mut p = x;
        for _ in 0..8 {
            p = p * y + x;
        }
        c[i] = p;
    }
}

/// The probe's variants of `$body`: `$scalar` (its scalar form) and, where this CPU has them, `$body` compiled
/// for AVX2 and for AVX-512.
macro_rules! variants {
    ($body:ident, $scalar:ident) => {{
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        fn avx2(c: &mut [f64; N], a: &[f64; N], b: &[f64; N]) {
            $body(c, a, b)
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        fn avx512(c: &mut [f64; N], a: &[f64; N], b: &[f64; N]) {
            $body(c, a, b)
        }
        #[allow(unused_mut)] // Only the scalar variant off x86_64.
        let mut variants: Vec<(&'static str, Kernel)> = vec![("scalar", $scalar)];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked above).
                variants.push(("AVX2", |c, a, b| unsafe { avx2(c, a, b) }));
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU supports AVX-512F (checked above).
                variants.push(("AVX-512", |c, a, b| unsafe { avx512(c, a, b) }));
            }
        }
        variants
    }};
}

/// Nanoseconds per f64 division of the fastest code this CPU runs, and which code that was.
fn division_ns(reps: usize) -> (f64, &'static str) {
    fastest(variants!(divide, divide_scalar), reps)
}

/// Nanoseconds per `exp` of the fastest code this CPU runs, and which code that was.
fn exp_ns(reps: usize) -> (f64, &'static str) {
    fastest(variants!(exponentiate, exponentiate_scalar), reps)
}

/// Nanoseconds per multiplication or addition (of `multiply_add`) of the fastest code this CPU runs, and
/// which code that was.
fn other_ns(reps: usize) -> (f64, &'static str) {
    let (ns, code) = fastest(variants!(multiply_add, multiply_add_scalar), reps);
    (ns / MULTIPLY_ADD_OPS, code)
}

/// The fastest time per element of the variants, on arguments of the range the `.mod` files' rates see
/// (-2.5 to 2.5, with divisors from 1.5 to 2).
fn fastest(variants: Vec<(&'static str, Kernel)>, reps: usize) -> (f64, &'static str) {
    let mut a = [0.0; N];
    let mut b = [0.0; N];
    for i in 0..N {
        a[i] = -2.5 + 5.0 * (i as f64 + 0.5) / N as f64;
        b[i] = 1.5 + (i as f64 * 0.37) % 0.5;
    }
    let mut c = [0.0; N];
    let rounds = 20_000;
    let mut best = (f64::INFINITY, "scalar");
    for (name, f) in variants {
        for _ in 0..reps.max(1) {
            let t = Instant::now();
            for _ in 0..rounds {
                // Opaque inputs each round, so the compiler cannot hoist the work out of the loop.
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

fn row(c: &MechanismCensus, division_ns: f64, exp_ns: f64, other_ns: f64) -> Row {
    let per = |x: u64| c.counted.then(|| x as f64 / c.instances as f64);
    Row {
        mechanism: c.name.clone(),
        instances: c.instances,
        divisions_per_instance: per(c.divisions),
        exps_per_instance: per(c.exps),
        other_per_instance: per(c.other),
        implicit_solve: c.implicit,
        division_floor_us: c.counted.then(|| c.divisions as f64 * division_ns / 1000.0),
        exp_floor_us: c.counted.then(|| c.exps as f64 * exp_ns / 1000.0),
        other_floor_us: c.counted.then(|| c.other as f64 * other_ns / 1000.0),
    }
}

pub fn run(comm: &dyn Communicator, a: FloorArgs) -> CliResult {
    if !(a.t_end.is_finite() && a.t_end > 0.0) {
        return Err(fail(format!("--t-end must be a positive number of ms, not {}", a.t_end)));
    }
    let (division_ns, division_code) = division_ns(a.reps);
    let (exp_ns, exp_code) = exp_ns(a.reps);
    let (other_ns, other_code) = other_ns(a.reps);
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
    let mut rows: Vec<Row> =
        census.iter().filter(|c| c.counted).map(|c| row(c, division_ns, exp_ns, other_ns)).collect();
    rows.sort_by(|x, y| y.division_floor_us.unwrap_or(0.0).total_cmp(&x.division_floor_us.unwrap_or(0.0)));
    let not_counted: Vec<String> = census.iter().filter(|c| !c.counted).map(|c| c.name.clone()).collect();
    let report = Report {
        experiment: a.experiment.display().to_string(),
        division_ns,
        division_code,
        exp_ns,
        exp_code,
        other_ns,
        other_code,
        dt: e.dt,
        steps,
        measured_us_per_step: run_s * 1e6 / steps as f64,
        division_floor_us_per_step: rows.iter().filter_map(|r| r.division_floor_us).sum(),
        exp_floor_us_per_step: rows.iter().filter_map(|r| r.exp_floor_us).sum(),
        other_floor_us_per_step: rows.iter().filter_map(|r| r.other_floor_us).sum(),
        mechanisms: rows,
        not_counted,
    };
    if a.json {
        println!("{}", serde_json::to_string(&report).expect("json"));
        return Ok(());
    }
    println!(
        "This core, fastest of {} repetitions: {:.3} ns per f64 division ({} code), {:.3} ns per exp ({}), \
         {:.3} ns per multiplication or addition ({})",
        a.reps.max(1),
        report.division_ns,
        report.division_code,
        report.exp_ns,
        report.exp_code,
        report.other_ns,
        report.other_code
    );
    println!(
        "{:<20} {:>10} {:>9} {:>9} {:>9} {:>10} {:>10} {:>10}",
        "mechanism", "instances", "div/inst", "exp/inst", "other", "div us", "exp us", "other us"
    );
    let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.1}"));
    for r in &report.mechanisms {
        println!(
            "{:<20} {:>10} {:>9} {:>9} {:>9} {:>10} {:>10} {:>10}{}",
            r.mechanism,
            r.instances,
            f(r.divisions_per_instance),
            f(r.exps_per_instance),
            f(r.other_per_instance),
            f(r.division_floor_us),
            f(r.exp_floor_us),
            f(r.other_floor_us),
            if r.implicit_solve { "  (+ implicit solve)" } else { "" }
        );
    }
    if !report.not_counted.is_empty() {
        println!("not counted (hand-written): {}", report.not_counted.join(", "));
    }
    let divider = report.division_floor_us_per_step;
    let units = report.exp_floor_us_per_step + report.other_floor_us_per_step;
    println!(
        "per step: divisions {divider:.1} us (the divider); exps {:.1} us and other operations {:.1} us (the \
         arithmetic units, beside the divider)",
        report.exp_floor_us_per_step, report.other_floor_us_per_step
    );
    let measured = format!(
        "measured on one thread: {:.1} us per step ({} steps of {} ms)",
        report.measured_us_per_step, report.steps, report.dt
    );
    if divider + units > 0.0 {
        println!(
            "{measured}: {:.2}x the larger of the two, {:.2}x their sum",
            report.measured_us_per_step / divider.max(units),
            report.measured_us_per_step / (divider + units)
        );
    } else {
        println!("no arithmetic counted; {measured}");
    }
    Ok(())
}
