//! `miv study STUDY.yaml --out DIR [--trials N] [--t-end MS]`: the separation study of MiV-Simulator-Cases'
//! `rc-separation.py` (Maass, Natschläger & Markram 2002, Fig. 2) run imperatively on one loaded network.
//!
//! Per input distance d and trial k the pair generator of `miv-analysis` gives trains (u, v) with
//! d(u, v) ≈ d (keyed by the study seed and d, the same on every rank). The network is driven by u, reset,
//! then driven by v; the state distance is |LFP_u − LFP_v|(t). For d = 0 both runs play the u of the smallest
//! positive distance's trial k, and the second run starts from another initial context (docs/api.md).
//! Every run is cached in DIR/runs by a hash of its inputs; DIR/study.json names the network the cache
//! belongs to. Outputs on root: DIR/readouts.h5, DIR/separation.csv, DIR/separation.png.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use miv_analysis::plot::Curve;
use miv_analysis::{state_distance, MeanSd, PairGenerator};
use miv_config::Study;
use miv_engine::{EngineError, ExecutionEnvironment, Overrides};
use miv_partition::{Communicator, Purpose, Stream};
use sha2::{Digest, Sha256};

use super::{CliError, CliResult};

#[derive(Debug, Args)]
pub struct StudyArgs {
    /// The study (YAML, docs/api.md).
    pub study: PathBuf,
    /// Directory for the run cache and the outputs.
    #[arg(long)]
    pub out: PathBuf,
    /// Trials per distance (replaces `trials`).
    #[arg(long)]
    pub trials: Option<usize>,
    /// Simulated time per run in ms (replaces `t_end`).
    #[arg(long)]
    pub t_end: Option<f64>,
    /// Submit the whole study as one Slurm batch job (rendered from jobs/templates/run.sbatch) instead of
    /// running it.
    #[arg(long)]
    pub slurm: bool,
    /// With --slurm: MPI ranks (tasks) of the job.
    #[arg(long, default_value_t = 1)]
    pub ranks: usize,
    /// With --slurm: print the batch script instead of submitting it.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub slurm_args: super::build::SlurmArgs,
}

impl StudyArgs {
    /// The arguments of a study run here, in this MPI job (no Slurm), as `miv study STUDY --out OUT` with the
    /// optional `--trials` and `--t-end`; for callers other than the command line (the Python package).
    pub fn local(study: PathBuf, out: PathBuf, trials: Option<usize>, t_end: Option<f64>) -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            slurm: super::build::SlurmArgs,
        }
        let slurm_args = <Defaults as clap::Parser>::parse_from(["miv"]).slurm;
        StudyArgs { study, out, trials, t_end, slurm: false, ranks: 1, dry_run: false, slurm_args }
    }
}

const CONTEXT: Purpose = Purpose::named("study initial context");

fn collective(m: impl std::fmt::Display) -> CliError {
    CliError { message: m.to_string(), collective: true }
}

fn engine(e: EngineError) -> CliError {
    CliError { collective: e.is_collective(), message: e.to_string() }
}

/// One simulation: a train played by the stimulus population from an initial context.
#[derive(Debug, Clone)]
struct RunSpec {
    train: Vec<f64>,
    context: u64,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Identity of the loaded network: the experiment file's text and the cells/connections files (path, size,
/// modification time).
fn network_identity(exp_path: &Path, e: &miv_config::Experiment) -> String {
    let mut h = Sha256::new();
    h.update(std::fs::read(exp_path).unwrap_or_default());
    for p in std::iter::once(&e.cells).chain(e.connections.as_ref()) {
        let canon = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
        h.update(canon.to_string_lossy().as_bytes());
        if let Ok(m) = std::fs::metadata(p) {
            h.update(m.len().to_le_bytes());
            if let Ok(t) =
                m.modified().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).map_err(std::io::Error::other))
            {
                h.update(t.as_nanos().to_le_bytes());
            }
        }
    }
    hex(&h.finalize())
}

fn run_key(network: &str, s: &Study, dt: f64, readout: &str, r: &RunSpec) -> String {
    let mut h = Sha256::new();
    h.update(network.as_bytes());
    h.update(s.stimulus_population.as_bytes());
    h.update(readout.as_bytes());
    h.update((s.slice_step.unwrap_or(0) as u64).to_le_bytes());
    for x in [s.t_end, dt, s.context_jitter_mv] {
        h.update(x.to_bits().to_le_bytes());
    }
    h.update(s.seed.to_le_bytes());
    h.update(r.context.to_le_bytes());
    h.update((r.train.len() as u64).to_le_bytes());
    for t in &r.train {
        h.update(t.to_bits().to_le_bytes());
    }
    hex(&h.finalize())[..32].to_string()
}

/// `miv_io::atomic::write_atomic` with the path in the message.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    miv_io::atomic::write_atomic(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// A cached readout (t, v), if its file is complete.
fn read_cached(path: &Path) -> Option<(Vec<f64>, Vec<f64>)> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let f = |k: &str| -> Option<Vec<f64>> { v[k].as_array()?.iter().map(|x| x.as_f64()).collect() };
    Some((f("t")?, f("v")?))
}

pub fn run(comm: &dyn Communicator, a: StudyArgs) -> CliResult {
    if a.slurm {
        return submit(comm, &a);
    }
    let s = comm.agreed(Study::load(&a.study, a.trials, a.t_end))?;
    let (e, mut env) = miv_engine::run::load_environment(comm, &s.experiment, &Overrides::default()).map_err(engine)?;
    let file = a.study.display().to_string();
    // The stimulus population and the readout.
    let pops = env.populations().cloned().ok_or_else(|| collective("no populations loaded"))?;
    let stim = match pops.get(&s.stimulus_population) {
        Some(p) => p.range(),
        None => {
            return Err(collective(format!(
                "{file}: stimulus_population: {} is not a population of {} (populations: {})",
                s.stimulus_population,
                e.cells.display(),
                pops.names().join(", ")
            )))
        }
    };
    let labels = env.lfp_labels();
    let readout = match &s.readout {
        Some(l) => labels.iter().position(|x| x == l).ok_or_else(|| {
            collective(format!(
                "{file}: readout: the experiment has no LFP electrode {l} (it has: {})",
                labels.join(", ")
            ))
        })?,
        None if labels.is_empty() => {
            return Err(collective(format!(
                "{file}: experiment {} has no lfp electrode; the study reads out the LFP",
                s.experiment.display()
            )))
        }
        None => 0,
    };
    let readout_label = labels[readout].clone();

    // Input pairs (the same on every rank).
    let mut gen = PairGenerator::new(s.t_end).map_err(|er| collective(format!("{file}: t_end: {er}")))?;
    if let Some(eps) = s.eps {
        gen.eps = eps;
    }
    let map = gen.frequency_map(s.seed).map_err(collective)?;
    let mut pairs = BTreeMap::new();
    for (i, &d) in s.distances.iter().enumerate() {
        if d > 0.0 {
            let p = gen
                .pairs(&map, d, s.trials, s.seed)
                .map_err(|er| collective(format!("{file}: distances[{i}]: {er}")))?;
            pairs.insert(d.to_bits(), p);
        }
    }
    let first_positive = s.distances.iter().copied().filter(|&d| d > 0.0).fold(f64::INFINITY, f64::min);
    // Runs: per (distance, trial) the u run and the v run.
    let mut runs: Vec<RunSpec> = Vec::new();
    let mut trial_runs: Vec<(f64, usize, usize, usize)> = Vec::new();
    for &d in &s.distances {
        for k in 0..s.trials {
            let (ru, rv) = if d > 0.0 {
                let p = &pairs[&d.to_bits()][k];
                (RunSpec { train: p.u.clone(), context: 0 }, RunSpec { train: p.v.clone(), context: 0 })
            } else {
                let u = pairs[&first_positive.to_bits()][k].u.clone();
                (RunSpec { train: u.clone(), context: 0 }, RunSpec { train: u, context: k as u64 + 1 })
            };
            trial_runs.push((d, k, runs.len(), runs.len() + 1));
            runs.push(ru);
            runs.push(rv);
        }
    }

    // The cache (root decides; every rank learns which runs to simulate).
    let network = network_identity(&s.experiment, &e);
    let runs_dir = a.out.join("runs");
    let mut local: Result<Vec<u64>, String> = Ok(vec![]);
    if comm.rank() == 0 {
        local = (|| {
            std::fs::create_dir_all(&runs_dir).map_err(|er| format!("{}: {er}", runs_dir.display()))?;
            let meta = a.out.join("study.json");
            let cells = e.cells.display().to_string();
            if let Ok(text) = std::fs::read_to_string(&meta) {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                if v["network"].as_str() != Some(network.as_str()) {
                    return Err(format!(
                        "{}: this cache was made for another network ({}); the study's network is {cells}: use another --out or remove it",
                        meta.display(),
                        v["cells"].as_str().unwrap_or("unknown")
                    ));
                }
            } else {
                let v = serde_json::json!({"network": network, "cells": cells, "experiment": s.experiment.display().to_string()});
                write_atomic(&meta, v.to_string().as_bytes())?;
            }
            let keys = runs.iter().map(|r| run_key(&network, &s, e.dt, &readout_label, r));
            Ok(keys.map(|k| read_cached(&runs_dir.join(format!("{k}.json"))).is_some() as u64).collect())
        })();
    }
    let cached = comm.agreed(local)?;
    let cached = comm.broadcast(0, &cached);
    let keys: Vec<String> = runs.iter().map(|r| run_key(&network, &s, e.dt, &readout_label, r)).collect();
    let todo = cached.iter().filter(|&&c| c == 0).count();
    let distinct: std::collections::HashSet<&String> =
        keys.iter().zip(&cached).filter(|(_, &c)| c == 0).map(|(k, _)| k).collect();
    let distinct = distinct.len();
    let mut first = true;
    let mut done = std::collections::HashSet::new();
    for (i, r) in runs.iter().enumerate() {
        if cached[i] == 1 || !done.insert(keys[i].clone()) {
            continue;
        }
        let t0 = std::time::Instant::now();
        let readout_v = simulate(&mut env, &s, &e, stim.clone(), r, readout, first).map_err(engine)?;
        if comm.rank() == 0 {
            tracing::info!(
                "run {} of {distinct} to simulate ({} spikes in, context {}) done in {:.1} s",
                done.len(),
                r.train.len(),
                r.context,
                t0.elapsed().as_secs_f64()
            );
        }
        first = false;
        let mut res = Ok(());
        if let Some((t, v)) = readout_v {
            let j = serde_json::json!({"t": t, "v": v, "context": r.context, "train": r.train});
            res = write_atomic(&runs_dir.join(format!("{}.json", keys[i])), j.to_string().as_bytes());
        }
        comm.agreed(res)?;
    }
    let simulated = done.len();
    let from_cache = runs.len() - todo;
    if comm.rank() != 0 {
        return Ok(());
    }
    let shared = runs.len() - simulated - from_cache;
    tracing::info!(
        "study: {simulated} runs simulated, {from_cache} read from the cache, {shared} shared by two conditions"
    );
    let out = finish(&a.out, &s, &runs_dir, &keys, &trial_runs, &readout_label).map_err(collective_local)?;
    println!(
        "{} distances x {} trials: {simulated} runs simulated, {from_cache} read from the cache -> {}",
        s.distances.len(),
        s.trials,
        out.display()
    );
    Ok(())
}

fn collective_local(m: String) -> CliError {
    // Root only: the other ranks have returned already.
    CliError { message: m, collective: true }
}

/// One run on every rank: play the train, reset (or initialise the first time), apply the context, run,
/// gather the readout on root.
fn simulate(
    env: &mut ExecutionEnvironment,
    s: &Study,
    e: &miv_config::Experiment,
    stim: std::ops::Range<u64>,
    r: &RunSpec,
    readout: usize,
    first: bool,
) -> Result<Option<(Vec<f64>, Vec<f64>)>, EngineError> {
    let comm = env.comm();
    let mut res = Ok(());
    for g in stim.clone() {
        if env.owns(g) {
            let train: Vec<f64> = match s.slice_step {
                Some(step) => r.train.iter().skip((g - stim.start) as usize).step_by(step).copied().collect(),
                None => r.train.clone(),
            };
            res = res.and(env.play(g, &train));
        }
    }
    comm.agreed(res)?;
    if first {
        env.finitialize(e.v_init)?;
    } else {
        env.reset()?;
    }
    if r.context > 0 && s.context_jitter_mv > 0.0 {
        let mut res = Ok(());
        for g in env.local_gids() {
            let mut st = Stream::new(s.seed, CONTEXT, g ^ (r.context << 48));
            let dv = st.uniform_range(-s.context_jitter_mv, s.context_jitter_mv);
            res = res.and(env.set_cell_voltage(g, e.v_init + dv));
        }
        comm.agreed(res)?;
    }
    env.psolve(s.t_end)?;
    env.gather_lfp(readout)
}

/// Root: the combined readouts file, the CSV and the figure.
fn finish(
    out: &Path,
    s: &Study,
    runs_dir: &Path,
    keys: &[String],
    trial_runs: &[(f64, usize, usize, usize)],
    readout: &str,
) -> Result<PathBuf, String> {
    let load = |i: usize| {
        read_cached(&runs_dir.join(format!("{}.json", keys[i])))
            .ok_or_else(|| format!("{}: run {} is missing from the cache", runs_dir.display(), keys[i]))
    };
    let h5 = out.join("readouts.h5");
    let tmp = out.join("readouts.h5.partial");
    let f = hdf5::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let mut csv = String::from("distance,t_ms,mean,sd\n");
    let mut curves = Vec::new();
    let h5err = |e: hdf5::Error| format!("{}: {e}", tmp.display());
    for &d in &s.distances {
        let g = f.create_group(&format!("distance {d}")).map_err(h5err)?;
        let mut sd_trials = Vec::new();
        let mut t_axis = Vec::new();
        for &(_, k, iu, iv) in trial_runs.iter().filter(|x| x.0 == d) {
            let (t, u) = load(iu)?;
            let (_, v) = load(iv)?;
            let tg = g.create_group(&format!("trial {k}")).map_err(h5err)?;
            for (name, data) in [("t", &t), ("u", &u), ("v", &v)] {
                tg.new_dataset_builder().with_data(data.as_slice()).create(name).map_err(h5err)?;
            }
            sd_trials.push(state_distance(&u, &v).map_err(|e| e.to_string())?);
            t_axis = t;
        }
        let stats = MeanSd::over_trials(&sd_trials).map_err(|e| e.to_string())?;
        for (i, t) in t_axis.iter().enumerate() {
            csv.push_str(&format!("{d},{t},{},{}\n", stats.mean[i], stats.sd[i]));
        }
        curves.push(Curve {
            label: format!("d(u,v)={d} (mean={:.4})", stats.overall_mean()),
            t: t_axis,
            mean: stats.mean.clone(),
            sd: stats.sd,
        });
    }
    f.close().map_err(h5err)?;
    miv_io::atomic::commit_partial(&tmp, &h5).map_err(|e| format!("{}: {e}", h5.display()))?;
    write_atomic(&out.join("separation.csv"), csv.as_bytes())?;
    let png = out.join("separation.png");
    miv_analysis::plot::curves(
        &png,
        &format!("State distance, LFP {readout} (N={})", s.trials),
        "state distance (mV)",
        &curves,
    )
    .map_err(|e| e.to_string())?;
    Ok(out.to_path_buf())
}

/// Check the study now (not in the queue), then render its batch script beside the study file and submit it
/// with sbatch (or print it): one job runs every trial on one loaded network.
fn submit(comm: &dyn Communicator, a: &StudyArgs) -> CliResult {
    if comm.rank() != 0 {
        return Ok(());
    }
    let fail = |m: String| CliError { message: m, collective: true };
    let study = std::fs::canonicalize(&a.study).map_err(|e| fail(format!("{}: {e}", a.study.display())))?;
    Study::load(&study, a.trials, a.t_end).map_err(fail)?;
    std::fs::create_dir_all(&a.out).map_err(|e| fail(format!("--out {}: {e}", a.out.display())))?;
    let out = std::fs::canonicalize(&a.out).map_err(|e| fail(format!("--out {}: {e}", a.out.display())))?;
    // Each argument is one word; submit_run quotes them for the script.
    let mut extra = vec!["--out".to_string(), out.display().to_string()];
    if let Some(n) = a.trials {
        extra.extend(["--trials".to_string(), n.to_string()]);
    }
    if let Some(t) = a.t_end {
        extra.extend(["--t-end".to_string(), t.to_string()]);
    }
    let s = a.slurm_args.options(a.ranks.max(1), a.dry_run)?;
    let (path, id) = s.submit_run("study", &study, &extra).map_err(|e| fail(e.to_string()))?;
    if let Some(id) = id {
        println!("submitted {} as Slurm job {id}", path.display());
    }
    Ok(())
}
