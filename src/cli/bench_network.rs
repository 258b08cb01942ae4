//! `miv bench network`: the BY-cell busyring of `tests/reference/neuron-arbor/README.md` ("Benchmark network") through the
//! whole runtime (NeuroH5 files written by `miv gen`, read by `miv run`), in child processes for 1 rank x 1
//! thread, 1 rank x 2 threads and 2 MPI ranks, beside NEURON and Arbor run by the reference scripts in the
//! same session. Prints a table: run time, us per cell per ms, ns per compartment step, peak memory and its
//! growth per cell, and the ratios to NEURON and to tuned Arbor.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Args;

use super::{CliError, CliResult};

#[derive(Debug, Args)]
pub struct NetworkBenchArgs {
    /// Network sizes.
    #[arg(long, num_args = 1.., default_values_t = [1000u64, 4000])]
    pub n: Vec<u64>,
    /// Rounds: each runs every configuration once, interleaved (medians and per-round ratios are reported).
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Simulated time (ms).
    #[arg(long, default_value_t = 200.0)]
    pub tstop: f64,
    /// Also run NEURON and Arbor (tests/reference/neuron-arbor/scripts with the Python of --python).
    #[arg(long)]
    pub reference: bool,
    /// Python with neuron==9.0.2 and arbor==0.12.2 (scripts/setup --bench makes .venv-ref).
    #[arg(long, default_value = ".venv-ref/bin/python")]
    pub python: PathBuf,
    /// Where the generated networks go.
    #[arg(long, default_value = "target/bench/network")]
    pub dir: PathBuf,
}

#[derive(Debug, Clone)]
struct Measure {
    config: String,
    n: u64,
    spikes: u64,
    /// Run time of every round (s).
    runs: Vec<f64>,
    rss_mib: f64,
}

impl Measure {
    fn run_s(&self) -> f64 {
        median(self.runs.clone())
    }
}

/// Median and range of the per-round ratios `num[r] / den[r]`, as "median [min..max]".
fn ratio_text(num: &[f64], den: &[f64]) -> String {
    let r: Vec<f64> = num.iter().zip(den).map(|(n, d)| n / d).collect();
    if r.is_empty() {
        return "-".into();
    }
    let lo = r.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if r.len() == 1 {
        format!("{:.2}", r[0])
    } else {
        format!("{:.2} [{lo:.2}..{hi:.2}]", median(r))
    }
}

/// One configuration's measurement: (spikes, seconds, peak MiB) or why it failed.
type MeasureFn = dyn Fn() -> Result<(u64, f64, f64), String>;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn run_json(cmd: &mut Command) -> Result<serde_json::Value, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("RESULT ").or_else(|| l.trim_start().starts_with('{').then_some(l)))
        .ok_or_else(|| format!("{cmd:?}: no JSON result in its output:\n{text}"))?;
    serde_json::from_str(line).map_err(|e| format!("{cmd:?}: bad JSON {line:?}: {e}"))
}

pub(super) fn mpirun(n: usize) -> Command {
    let mut c = Command::new("mpirun");
    c.args(["--allow-run-as-root", "--oversubscribe", "-n", &n.to_string()]);
    c.env("OMPI_ALLOW_RUN_AS_ROOT", "1").env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    c
}

fn ours(exp: &Path, ranks: usize, threads: usize) -> Result<(u64, f64, f64), String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = if ranks > 1 {
        let mut c = mpirun(ranks);
        c.arg(&me);
        c
    } else {
        Command::new(&me)
    };
    cmd.args(["-q", "run", exp.to_str().unwrap(), "--json", "--threads", &threads.to_string()]);
    let j = run_json(&mut cmd)?;
    Ok((
        j["spikes"].as_u64().unwrap_or(0),
        j["run_s"].as_f64().unwrap_or(f64::NAN),
        j["peak_rss_mib_max"].as_f64().unwrap_or(f64::NAN),
    ))
}

fn reference(
    a: &NetworkBenchArgs,
    script: &str,
    n: u64,
    extra: &[&str],
    ranks: usize,
) -> Result<(u64, f64, f64), String> {
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/neuron-arbor/scripts");
    // One process: /usr/bin/time -v gives its peak RSS (as the reference README measures it), where installed.
    let time = Path::new("/usr/bin/time");
    let mut cmd = if ranks > 1 {
        let mut c = mpirun(ranks);
        c.arg(&a.python);
        c
    } else if time.exists() {
        let mut c = Command::new(time);
        c.arg("-v").arg(&a.python);
        c
    } else {
        Command::new(&a.python)
    };
    cmd.arg(scripts.join(script)).arg(n.to_string()).args(["--tstop", &a.tstop.to_string()]).args(extra);
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line =
        text.lines().find_map(|l| l.strip_prefix("RESULT ")).ok_or_else(|| format!("{script}: no RESULT line"))?;
    let j: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    // Peak RSS: /usr/bin/time's figure for one process (as the reference README), the largest rank's for MPI.
    let err = String::from_utf8_lossy(&out.stderr);
    let rss = err
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes): "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .or_else(|| j["peak_rss_MiB_max_rank"].as_f64())
        .unwrap_or(f64::NAN);
    Ok((j["spikes"].as_u64().unwrap_or(0), j["run_s"].as_f64().unwrap_or(f64::NAN), rss))
}

pub fn run(a: NetworkBenchArgs) -> CliResult {
    let fail = |m: String| CliError { message: m, collective: true };
    if a.reps == 0 || a.n.is_empty() {
        return Err(fail("need at least one size and one repetition".into()));
    }
    let mut rows: Vec<Measure> = Vec::new();
    for &n in &a.n {
        let dir = a.dir.join(format!("busyring-{n}"));
        let _ = std::fs::remove_dir_all(&dir);
        let spec = miv_engine::synthetic::Spec {
            kind: miv_engine::synthetic::Kind::Busyring,
            n,
            delay: 5.0,
            fanin: 10,
            t_end: a.tstop,
            stim: 0,
        };
        let exp = miv_engine::synthetic::write(&dir, &spec).map_err(|e| fail(e.to_string()))?;
        let mut configs: Vec<(String, Box<MeasureFn>)> = vec![
            (
                "miv 1 rank x 1 thread".into(),
                Box::new({
                    let e = exp.clone();
                    move || ours(&e, 1, 1)
                }),
            ),
            (
                "miv 1 rank x 2 threads".into(),
                Box::new({
                    let e = exp.clone();
                    move || ours(&e, 1, 2)
                }),
            ),
            (
                "miv 2 ranks (mpirun)".into(),
                Box::new({
                    let e = exp.clone();
                    move || ours(&e, 2, 1)
                }),
            ),
        ];
        if a.reference {
            let refs: [(&str, &str, Vec<&str>, usize); 4] = [
                ("NEURON 1 proc", "bench_neuron.py", vec![], 1),
                ("NEURON 2 ranks (mpirun)", "bench_neuron.py", vec!["--mpi"], 2),
                ("Arbor 1 thread, group 50", "bench_arbor.py", vec!["--threads", "1", "--group", "50"], 1),
                ("Arbor 2 threads, group 50", "bench_arbor.py", vec!["--threads", "2", "--group", "50"], 1),
            ];
            for (label, script, extra, ranks) in refs {
                let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
                let aa = NetworkBenchArgs {
                    n: vec![],
                    reps: 1,
                    tstop: a.tstop,
                    reference: true,
                    python: a.python.clone(),
                    dir: a.dir.clone(),
                };
                configs.push((
                    label.into(),
                    Box::new(move || {
                        let e: Vec<&str> = extra.iter().map(|s| s.as_str()).collect();
                        reference(&aa, script, n, &e, ranks)
                    }),
                ));
            }
        }
        // Rounds interleave the configurations (A, B, C, A, B, C, ...), so that a change in the machine's load
        // falls on all of them; ratios are taken within a round.
        let mut runs: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
        let mut rss: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
        let mut spikes = vec![0u64; configs.len()];
        for rep in 0..a.reps {
            for (c, (label, f)) in configs.iter().enumerate() {
                let (s, r, m) = f().map_err(fail)?;
                eprintln!("round {} of {}: {label} N={n}: run {r:.3} s, {s} spikes, peak {m:.1} MiB", rep + 1, a.reps);
                spikes[c] = s;
                runs[c].push(r);
                rss[c].push(m);
            }
        }
        for (c, (label, _)) in configs.iter().enumerate() {
            rows.push(Measure {
                config: label.clone(),
                n,
                spikes: spikes[c],
                runs: runs[c].clone(),
                rss_mib: median(rss[c].clone()),
            });
        }
    }
    print_table(&a, &rows);
    Ok(())
}

fn print_table(a: &NetworkBenchArgs, rows: &[Measure]) {
    println!(
        "BY-cell busyring, {} ms, dt 0.025, 34 compartments and 11 connections per cell; {} interleaved round(s), times are medians, ratios median [min..max] over rounds",
        a.tstop, a.reps
    );
    println!(
        "{:<28} {:>6} {:>7} {:>9} {:>12} {:>14} {:>10} {:>11} {:>24} {:>24}",
        "configuration",
        "N",
        "spikes",
        "run s",
        "us/(cell ms)",
        "ns/(comp step)",
        "peak MiB",
        "KiB/cell",
        "x NEURON",
        "x Arbor50"
    );
    let steps = a.tstop / 0.025;
    for r in rows {
        let us = 1e6 * r.run_s() / (r.n as f64 * a.tstop);
        let ns = 1e9 * r.run_s() / (r.n as f64 * 34.0 * steps);
        // Memory growth per cell between the smallest and largest N of the same configuration.
        let same: Vec<&Measure> = rows.iter().filter(|x| x.config == r.config).collect();
        let per_cell = match (same.first(), same.last()) {
            (Some(lo), Some(hi)) if hi.n > lo.n => {
                format!("{:.2}", (hi.rss_mib - lo.rss_mib) * 1024.0 / (hi.n - lo.n) as f64)
            }
            _ => "-".into(),
        };
        let ratio = |name: &str| {
            rows.iter()
                .find(|x| x.config == name && x.n == r.n)
                .map_or("-".to_string(), |x| ratio_text(&x.runs, &r.runs))
        };
        let expected = 27 * r.n / 10;
        let mark = if r.spikes == expected { "" } else { " (!)" };
        println!(
            "{:<28} {:>6} {:>7} {:>9.3} {:>12.2} {:>14.2} {:>10.1} {:>11} {:>24} {:>24}",
            r.config,
            r.n,
            format!("{}{mark}", r.spikes),
            r.run_s(),
            us,
            ns,
            r.rss_mib,
            per_cell,
            ratio("NEURON 1 proc"),
            ratio("Arbor 1 thread, group 50")
        );
    }
    println!("x NEURON / x Arbor50: how many times faster than NEURON 1 proc / Arbor 1 thread group 50 at the same N.");
    println!("(!) marks a spike count different from NEURON's 2.7 per cell (2700 at N = 1000, 10800 at N = 4000).");
}
