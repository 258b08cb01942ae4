//! `miv bench miv`: MiV-Simulator/NEURON and miv on the same NeuroH5 files in one session. The experiment's
//! network is built (cached) and both simulators load its `cells.h5` and `connections.h5`, with the
//! experiment's cell types, synapses, stimulus and seed: miv through `miv run --json`, MiV through
//! `bench/miv-reference/run_rc.py` (the body of MiV-Simulator-Cases' `rc.py`, with its own templates and
//! mechanisms). Rounds alternate the two (MiV, miv, MiV, miv, ...); the table gives MiV's time over miv's for
//! loading (MiV's `load_cells` + `load_connections`, miv's load), initialisation and the run, per round and as
//! median [min..max], with the spike counts of both.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Args;
use miv_config::{Experiment, InlineOrPath};

use super::{CliError, CliResult};

#[derive(Debug, Args)]
pub struct MivBenchArgs {
    /// The experiment miv runs; MiV gets its network files, cell types, synapses, stimulus and seed.
    pub experiment: PathBuf,
    /// MiV-Simulator's hoc templates (MiV-Simulator-Cases' `3-interface-api/simulation/templates`).
    #[arg(long)]
    pub templates: PathBuf,
    /// MiV's mechanisms folder (`.mod` files; MiV compiles them with nrnivmodl into it).
    #[arg(long)]
    pub mechanisms: PathBuf,
    /// Python with MiV-Simulator, NEURON and neuroh5 (bench/miv-reference/install.sh makes it).
    #[arg(long, default_value = "/work/miv-ref/venv/bin/python")]
    pub python: PathBuf,
    /// MiV's side of the benchmark (bench/miv-reference/run_rc.py, or a script taking its arguments).
    #[arg(long, default_value = "bench/miv-reference/run_rc.py")]
    pub runner: PathBuf,
    /// Simulated time (ms); default the experiment's `t_end`.
    #[arg(long)]
    pub t_end: Option<f64>,
    /// Rounds (each runs MiV, then miv).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// MPI ranks of both (mpirun when more than one).
    #[arg(long, default_value_t = 1)]
    pub ranks: usize,
    /// Where MiV's outputs go (one folder per round).
    #[arg(long, default_value = "target/bench/miv")]
    pub out: PathBuf,
    /// Print the measurements and ratios as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One simulator's times in one round (seconds).
#[derive(Debug, Clone, Copy, serde::Serialize)]
struct Times {
    load_s: f64,
    init_s: f64,
    run_s: f64,
    spikes: u64,
}

/// The files and settings both simulators get.
struct Inputs {
    cells: PathBuf,
    connections: PathBuf,
    cell_types: PathBuf,
    synapses: PathBuf,
    stimulus: PathBuf,
    seed: u64,
    t_end: f64,
}

fn fail(message: String) -> CliError {
    CliError { message, collective: true }
}

fn path_of<T>(x: Option<&InlineOrPath<T>>, key: &str, exp: &Path) -> Result<PathBuf, CliError> {
    match x {
        Some(InlineOrPath::Path(p)) => Ok(p.clone()),
        _ => Err(fail(format!("{}: MiV's runner reads `{key}` from a file; give it as a path", exp.display()))),
    }
}

/// The experiment's inputs, its network built first (cached) when it names one.
fn inputs(a: &MivBenchArgs, me: &Path) -> Result<Inputs, CliError> {
    let exp = &a.experiment;
    let e = Experiment::load(exp).map_err(|err| fail(err.to_string()))?;
    let (cells, connections) = match &e.network {
        Some(net) => {
            let store = e.store.clone().expect("set by Experiment::load");
            let mut cmd = Command::new(me);
            cmd.arg("-q").arg("build").arg(net).arg("--store").arg(&store);
            let out = cmd.output().map_err(|err| fail(format!("{cmd:?}: {err}")))?;
            if !out.status.success() {
                return Err(fail(format!("building {}: {}", net.display(), String::from_utf8_lossy(&out.stderr))));
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let line = |k: &str| text.lines().find_map(|l| l.strip_prefix(k)).map(|p| PathBuf::from(p.trim()));
            match (line("cells:"), line("connections:")) {
                (Some(c), Some(k)) => (c, k),
                _ => return Err(fail(format!("`miv build {}` printed no file names:\n{text}", net.display()))),
            }
        }
        None => {
            let k = e
                .connections
                .clone()
                .ok_or_else(|| fail(format!("{}: MiV's runner needs `connections` (or `network`)", exp.display())))?;
            (e.cells.clone(), k)
        }
    };
    let cell_types = path_of(Some(&e.cell_types), "cell_types", exp)?;
    let synapses = path_of(e.synapses.as_ref(), "synapses", exp)?;
    let stimulus = match e.stimulus.as_slice() {
        [s] if s.slice_step == Some(10) && s.file.is_some() => s.file.clone().expect("checked"),
        _ => {
            return Err(fail(format!(
                "{}: MiV's runner plays one stimulus file as rc.py does (`file`, `slice_step: 10`)",
                exp.display()
            )))
        }
    };
    // miv writes the experiment's outputs: their folders must exist (`miv run` does not make them).
    let o = &e.output;
    for p in [Some(&o.path), o.spikes_csv.as_ref(), o.probes_csv.as_ref()].into_iter().flatten() {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|err| fail(format!("{}: {err}", dir.display())))?;
        }
    }
    let t_end = a.t_end.unwrap_or(e.t_end);
    Ok(Inputs { cells, connections, cell_types, synapses, stimulus, seed: e.seed, t_end })
}

fn launcher(ranks: usize, program: &Path) -> Command {
    if ranks > 1 {
        let mut c = super::bench_network::mpirun(ranks);
        c.arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// The last line of `cmd`'s standard output that is a JSON object.
fn json_of(cmd: &mut Command) -> Result<serde_json::Value, CliError> {
    let out = cmd.output().map_err(|e| fail(format!("{cmd:?}: {e}")))?;
    if !out.status.success() {
        return Err(fail(format!("{cmd:?} failed:\n{}", String::from_utf8_lossy(&out.stderr))));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or_else(|| fail(format!("{cmd:?}: no JSON line in its output:\n{text}")))?;
    serde_json::from_str(line).map_err(|e| fail(format!("{cmd:?}: bad JSON {line:?}: {e}")))
}

fn number(j: &serde_json::Value, key: &str, who: &str) -> Result<f64, CliError> {
    j[key].as_f64().ok_or_else(|| fail(format!("{who}: no number `{key}` in {j}")))
}

fn run_miv(a: &MivBenchArgs, me: &Path, i: &Inputs) -> Result<Times, CliError> {
    let mut cmd = launcher(a.ranks, me);
    cmd.arg("-q").arg("run").arg(&a.experiment).arg("--json").args(["--t-end", &i.t_end.to_string()]);
    let j = json_of(&mut cmd)?;
    Ok(Times {
        load_s: number(&j, "load_s", "miv")?,
        init_s: number(&j, "init_s", "miv")?,
        run_s: number(&j, "run_s", "miv")?,
        spikes: j["spikes"].as_u64().unwrap_or(0),
    })
}

fn run_neuron(a: &MivBenchArgs, i: &Inputs, out: &Path) -> Result<Times, CliError> {
    std::fs::create_dir_all(out).map_err(|e| fail(format!("{}: {e}", out.display())))?;
    let mut cmd = launcher(a.ranks, &a.python);
    cmd.arg(&a.runner)
        .arg("--cells")
        .arg(&i.cells)
        .arg("--connections")
        .arg(&i.connections)
        .arg("--cell-types")
        .arg(&i.cell_types)
        .arg("--synapses")
        .arg(&i.synapses)
        .arg("--stimulus")
        .arg(&i.stimulus)
        .arg("--templates")
        .arg(&a.templates)
        .arg("--mechanisms")
        .arg(&a.mechanisms)
        .args(["--t-end", &i.t_end.to_string(), "--seed", &i.seed.to_string()])
        .arg("--out")
        .arg(out);
    // nrnivmodl is found beside the Python of the environment.
    if let Some(bin) = a.python.parent().filter(|p| !p.as_os_str().is_empty()) {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![bin.to_path_buf()];
        dirs.extend(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(dirs).map_err(|e| fail(e.to_string()))?);
    }
    let j = json_of(&mut cmd)?;
    let spikes = std::fs::read_to_string(out.join("spikes.csv"))
        .map(|s| s.lines().skip(1).filter(|l| !l.trim().is_empty()).count() as u64)
        .map_err(|e| fail(format!("{}: {e}", out.join("spikes.csv").display())))?;
    Ok(Times {
        load_s: number(&j, "load_cells_s", "MiV")? + number(&j, "load_connections_s", "MiV")?,
        init_s: number(&j, "init_s", "MiV")?,
        run_s: number(&j, "run_s", "MiV")?,
        spikes,
    })
}

/// Median and range of `v` (not empty).
fn summary(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    (s[s.len() / 2], s[0], s[s.len() - 1])
}

pub fn run(a: MivBenchArgs) -> CliResult {
    if a.rounds == 0 {
        return Err(fail("--rounds must be at least 1".into()));
    }
    for (what, p) in [("--runner", &a.runner), ("--templates", &a.templates), ("--mechanisms", &a.mechanisms)] {
        if !p.exists() {
            return Err(fail(format!("{what} {}: no such file or folder", p.display())));
        }
    }
    let me = std::env::current_exe().map_err(|e| fail(e.to_string()))?;
    let i = inputs(&a, &me)?;
    let mut rounds: Vec<(Times, Times)> = Vec::new();
    for r in 0..a.rounds {
        if !a.json {
            eprintln!("round {} of {}: MiV-Simulator/NEURON, then miv ({} ms)", r + 1, a.rounds, i.t_end);
        }
        let neuron = run_neuron(&a, &i, &a.out.join(format!("round{r}")))?;
        let ours = run_miv(&a, &me, &i)?;
        rounds.push((neuron, ours));
    }
    let ratio = |f: fn(&Times) -> f64| -> Vec<f64> { rounds.iter().map(|(n, m)| f(n) / f(m)).collect() };
    let columns: [(&str, fn(&Times) -> f64); 4] = [
        ("load", |t| t.load_s),
        ("init", |t| t.init_s),
        ("run", |t| t.run_s),
        ("total", |t| t.load_s + t.init_s + t.run_s),
    ];
    if a.json {
        let mut ratios = serde_json::Map::new();
        for (name, f) in columns {
            let v = ratio(f);
            let (med, lo, hi) = summary(&v);
            ratios.insert(name.into(), serde_json::json!({"per_round": v, "median": med, "min": lo, "max": hi}));
        }
        let json = serde_json::json!({
            "t_end_ms": i.t_end,
            "ranks": a.ranks,
            "cells": i.cells,
            "connections": i.connections,
            "rounds": rounds.iter().map(|(n, m)| serde_json::json!({"neuron": n, "miv": m})).collect::<Vec<_>>(),
            "ratios": ratios,
        });
        println!("{json}");
        return Ok(());
    }
    println!(
        "MiV-Simulator/NEURON over miv on {} and {}, {} ms, {} rank(s); {} round(s) alternating",
        i.cells.display(),
        i.connections.display(),
        i.t_end,
        a.ranks,
        a.rounds
    );
    println!("| | MiV/NEURON (median s) | miv (median s) | ratio, median [min..max] |");
    println!("|---|---|---|---|");
    for (name, f) in columns {
        let (med, lo, hi) = summary(&ratio(f));
        let n: Vec<f64> = rounds.iter().map(|(n, _)| f(n)).collect();
        let m: Vec<f64> = rounds.iter().map(|(_, m)| f(m)).collect();
        println!("| {name} | {:.3} | {:.3} | {med:.1} [{lo:.1}..{hi:.1}] |", summary(&n).0, summary(&m).0);
    }
    let counts: Vec<String> = rounds.iter().map(|(n, m)| format!("{}/{}", n.spikes, m.spikes)).collect();
    println!("spikes (MiV/miv) per round: {}", counts.join(", "));
    Ok(())
}
