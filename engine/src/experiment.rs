//! `miv run EXPERIMENT.yaml`: the imperative flow of MiV's `rc.py` driven by one YAML file (schema in
//! docs/run-yaml.md): load cells and connections, add stimulus and LFP electrodes, initialise, run, and write
//! the results file on root. The same file runs in one process or under `mpirun`.

use std::path::Path;

use miv_config::Synapses;
use miv_config::{default_synapse_rules, Experiment, ProbeConfig};
use miv_io::atomic::AtomicFile;
use miv_partition::Communicator;
use miv_solvers::Catalogue;

use crate::env::ExecutionEnvironment;
use crate::error::EngineError;
use crate::network::{steps_of, ProbeRequest, RunOptions};
use crate::spikes::Spike;

/// What a run did, for the summary line.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub ranks: usize,
    pub threads: usize,
    pub cells: u64,
    pub compartments: u64,
    pub connections: u64,
    pub spikes: u64,
    pub min_delay: f64,
    pub t_end: f64,
    pub load_s: f64,
    pub init_s: f64,
    pub run_s: f64,
    pub write_s: f64,
    /// Peak resident memory (MiB): the largest rank's and the sum over ranks.
    pub peak_rss_mib_max: f64,
    pub peak_rss_mib_sum: f64,
    /// Resident memory (MiB) at the end of the run, the steady state: the largest rank's and the sum over ranks.
    pub rss_end_mib_max: f64,
    pub rss_end_mib_sum: f64,
    /// Heap bytes of the instantiated network summed over ranks, by what holds them (`Network::memory`).
    pub heap: HeapSummary,
    /// Instances of each mechanism type over all ranks (channels, synapses, stimulus cells), by name.
    pub mechanisms: std::collections::BTreeMap<String, u64>,
    pub results: String,
}

/// [`Summary::heap`]: bytes over all ranks.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct HeapSummary {
    pub nodes: u64,
    pub density: u64,
    pub ions: u64,
    pub point: u64,
    pub connections: u64,
    pub events: u64,
    pub total: u64,
}

pub use miv_io::memory::{available_memory_bytes, check_memory};

/// This process's peak resident set size in bytes (VmHWM), if the OS tells.
pub fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The engine's options for an experiment's settings.
fn run_options(e: &Experiment) -> RunOptions {
    let mut o = RunOptions::default();
    o.sim.dt = e.dt;
    o.sim.method = e.method.into();
    o.sim.spike_rule = e.spike_rule.into();
    o.sim.delivery_rule = e.delivery_rule.into();
    o.sim.globals =
        e.globals.iter().flat_map(|(m, g)| g.iter().map(move |(k, v)| (m.clone(), k.clone(), *v))).collect();
    o.max_step = e.max_step;
    o.threads = e.partition.threads;
    o.cells_per_group = e.partition.cells_per_group;
    o.seed = e.seed;
    o
}

/// Read a text file of spike times.
fn read_times(path: &Path) -> Result<Vec<f64>, EngineError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| EngineError::Network(format!("{}: cannot read: {e}", path.display())))?;
    let mut out = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        for tok in line.split(|c: char| c == ',' || c.is_whitespace()).filter(|t| !t.is_empty()) {
            out.push(tok.parse::<f64>().map_err(|_| {
                EngineError::Network(format!("{}:{}: {tok:?} is not a spike time (ms)", path.display(), ln + 1))
            })?);
        }
    }
    Ok(out)
}

/// Run an experiment (collective). Root writes the results and returns the summary and all spikes.
pub fn run(
    comm: &dyn Communicator,
    e: &Experiment,
    catalogue: Catalogue,
) -> Result<(Summary, Option<Vec<Spike>>), EngineError> {
    let t0 = std::time::Instant::now();
    let mut env = environment(comm, e, catalogue)?;
    let threads = env.threads();
    let load_s = t0.elapsed().as_secs_f64();

    let t1 = std::time::Instant::now();
    env.finitialize(e.v_init)?;
    let init_s = t1.elapsed().as_secs_f64();
    progress(comm, format!("initialised; min delay {} ms; running to {} ms", env.min_delay(), e.t_end));
    let t2 = std::time::Instant::now();
    // Run in chunks so long runs show progress on rank 0.
    let chunk = (e.t_end / 10.0).max(env.min_delay().min(e.max_step));
    let mut t = 0.0;
    while t < e.t_end - 1e-9 {
        t = (t + chunk).min(e.t_end);
        env.psolve(t)?;
        progress(comm, format!("t = {t:.3} ms of {} ({:.1} s)", e.t_end, t2.elapsed().as_secs_f64()));
    }
    let run_s = t2.elapsed().as_secs_f64();

    let t3 = std::time::Instant::now();
    let spikes =
        env.write_outputs(&e.output.path, e.output.spikes.as_deref(), e.output.results_id.as_deref(), e.t_end)?;
    write_csvs(&mut env, e, spikes.as_deref())?;
    let write_s = t3.elapsed().as_secs_f64();

    let mut counts = env.local_counts();
    comm.allreduce_sum_u64(&mut counts);
    let rss = peak_rss_bytes().unwrap_or(0) as f64 / (1024.0 * 1024.0);
    let rss_max = comm.allreduce_max(rss);
    let rss_sum = comm.allreduce_sum(rss);
    let rss_end = rss_bytes("VmRSS:") as f64 / (1024.0 * 1024.0);
    let m = env.memory();
    let mut heap = [m.nodes, m.density, m.ions, m.point, m.connections, m.events].map(|x| x as u64);
    comm.allreduce_sum_u64(&mut heap);
    let [nodes, density, ions, point, connections, events] = heap;
    let heap = HeapSummary { nodes, density, ions, point, connections, events, total: heap.iter().sum() };
    tracing::debug!("heap bytes (all ranks): {heap:?}");
    let mechanisms = mechanism_counts(comm, &env);
    let summary = Summary {
        ranks: comm.size(),
        threads,
        cells: counts[0],
        compartments: counts[1],
        connections: counts[2],
        spikes: spikes.as_ref().map_or(0, |s| s.len() as u64),
        min_delay: env.min_delay(),
        t_end: e.t_end,
        load_s,
        init_s,
        run_s,
        write_s,
        peak_rss_mib_max: rss_max,
        peak_rss_mib_sum: rss_sum,
        rss_end_mib_max: comm.allreduce_max(rss_end),
        rss_end_mib_sum: comm.allreduce_sum(rss_end),
        heap,
        mechanisms,
        results: e.output.path.display().to_string(),
    };
    Ok((summary, spikes))
}

/// Instances of each mechanism type summed over the ranks (collective): each rank's census as one line of
/// `name count` pairs, gathered on every rank.
fn mechanism_counts(comm: &dyn Communicator, env: &ExecutionEnvironment) -> std::collections::BTreeMap<String, u64> {
    let local: Vec<String> = env.mechanism_census().iter().map(|c| format!("{} {}", c.name, c.instances)).collect();
    let mut total = std::collections::BTreeMap::new();
    for line in comm.allgather_strings(&local.join("\n")) {
        for (name, n) in line.lines().filter_map(|l| l.rsplit_once(' ')) {
            *total.entry(name.to_string()).or_insert(0) += n.parse::<u64>().unwrap_or(0);
        }
    }
    total
}

/// The execution environment of an experiment, ready for `finitialize`: cells, connections, its stimulus, LFP
/// electrodes and probes (collective). The imperative API (docs/api.md) starts here.
pub fn environment<'c>(
    comm: &'c dyn Communicator,
    e: &Experiment,
    catalogue: Catalogue,
) -> Result<ExecutionEnvironment<'c>, EngineError> {
    let cell_types = comm.agreed(e.cell_types.load())?;
    let synapses = comm.agreed(match &e.synapses {
        Some(s) => s.load(),
        None => Ok(Synapses::new()),
    })?;
    let mut env = ExecutionEnvironment::new(comm, catalogue, run_options(e));
    if let Some(c) = e.celsius {
        env.set_celsius(c);
    }
    progress(comm, format!("loading cells from {}", e.cells.display()));
    env.load_cells(&e.cells, &cell_types, &e.templates, e.partition.strategy, e.partition.io_size)?;
    if let Some(conns) = &e.connections {
        progress(comm, format!("loading connections from {}", conns.display()));
        let rules = e.synapse_mechanisms.clone().unwrap_or_else(default_synapse_rules);
        env.clip_synapse_locations = e.clip_synapse_locations;
        env.allow_missing_projections = e.allow_missing_projections;
        env.load_connections(
            conns,
            &synapses,
            &rules,
            e.velocity,
            e.min_delay.unwrap_or(2.0 * e.dt),
            e.partition.io_size,
        )?;
        progress(comm, "connections loaded".to_string());
    }
    apply_stimulus(&mut env, e)?;
    let mut r = Ok(());
    for l in &e.lfp {
        r = r.and(env.add_lfp(l.clone()).map(|_| ()));
    }
    comm.agreed(r)?;
    let r = add_probes(&mut env, e);
    comm.agreed(r)?;
    Ok(env)
}

fn progress(comm: &dyn Communicator, msg: String) {
    if comm.rank() == 0 {
        tracing::info!("{msg}");
    }
    tracing::debug!(
        "resident memory {:.1} MiB (peak {:.1} MiB)",
        rss_bytes("VmRSS:") as f64 / 1048576.0,
        rss_bytes("VmHWM:") as f64 / 1048576.0
    );
}

fn rss_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

/// Spike trains and direct events (collective: an entry that fails on any rank stops every rank).
fn apply_stimulus(env: &mut ExecutionEnvironment, e: &Experiment) -> Result<(), EngineError> {
    let comm = env.comm();
    for (i, source) in e.stimulus.iter().enumerate() {
        if let Some(events) = &source.events {
            // Checked on every rank (each event is applied only where its cell lives).
            for (j, ev) in events.iter().enumerate() {
                let key = format!("stimulus[{i}].events[{j}]");
                let known = env.populations().is_some_and(|p| p.iter().any(|p| p.contains(ev.gid)));
                let problem = if !known {
                    Some(format!("gid {} is not a cell of {}", ev.gid, e.cells.display()))
                } else if !(ev.t.is_finite() && ev.t >= 0.0) {
                    Some(format!("t = {} ms; expected a finite time >= 0", ev.t))
                } else {
                    ev.weights.iter().find(|w| !w.is_finite()).map(|w| format!("weight {w}; expected finite weights"))
                };
                if let Some(m) = problem {
                    return Ok(comm.agreed(Err(format!("{key}: {m}")))?);
                }
            }
            let mut r = Ok(());
            for ev in events {
                if env.has_cell(ev.gid) {
                    r = r.and(env.add_event(ev.gid, ev.target, ev.t, ev.weights.clone()));
                }
            }
            comm.agreed(r.map_err(|err| format!("stimulus[{i}]: {err}")))?;
            continue;
        }
        let population = source.population.as_deref().expect("validated");
        let known = env.populations().and_then(|p| p.get(population)).is_some();
        if !known {
            return Ok(comm.agreed(Err(format!(
                "stimulus[{i}].population: {population} is not a population of {}",
                e.cells.display()
            )))?);
        }
        let gids: Vec<u64> = env.artificial_cells(population).to_vec();
        if let Some(map) = &source.per_gid {
            let range = env.populations().and_then(|p| p.get(population)).map(|p| p.range());
            if let Some(g) = map.keys().find(|g| !range.as_ref().is_some_and(|r| r.contains(g))) {
                return Ok(comm.agreed(Err(format!(
                    "stimulus[{i}].per_gid: gid {g} is not a cell of population {population} in {}",
                    e.cells.display()
                )))?);
            }
        }
        let shared = match (&source.times, &source.file) {
            (Some(t), _) => Ok(Some(t.clone())),
            (None, Some(f)) => read_times(f).map(Some),
            _ => Ok(None),
        };
        let shared = comm.agreed(shared)?;
        let from_h5 = match (&source.namespace, &source.attribute) {
            (Some(ns), Some(attr)) => {
                let path = source.h5.clone().unwrap_or_else(|| e.cells.clone());
                let f = comm.agreed(miv_io::NeuroH5File::open(&path, comm))?;
                Some(comm.agreed(f.read_cell_attributes(
                    population,
                    ns,
                    &miv_io::Selection::Gids(&gids),
                    Some(&[attr.as_str()]),
                ))?)
            }
            _ => None,
        };
        let mut r = Ok(());
        for &g in &gids {
            let mut train: Vec<f64> = if let Some(times) = &shared {
                match source.slice_step {
                    Some(k) => times.iter().skip(g as usize).step_by(k).copied().collect(),
                    None => times.clone(),
                }
            } else if let Some(map) = &source.per_gid {
                map.get(&g).cloned().unwrap_or_default()
            } else if let Some(a) = &from_h5 {
                let attr = source.attribute.as_deref().unwrap_or("");
                a.get::<f32>(attr, g).map(|v| v.iter().map(|&x| x as f64).collect()).unwrap_or_default()
            } else {
                Vec::new()
            };
            train.sort_by(f64::total_cmp);
            r = r.and(env.play(g, &train));
        }
        comm.agreed(r.map_err(|err| format!("stimulus[{i}]: {err}")))?;
    }
    Ok(())
}

fn add_probes(env: &mut ExecutionEnvironment, e: &Experiment) -> Result<(), EngineError> {
    let dt = e.probes.iter().find_map(|p| p.dt).unwrap_or(e.dt);
    let every = steps_of(dt, e.dt)
        .ok_or_else(|| EngineError::Network(format!("probes: dt {dt} is not a multiple of the time step {}", e.dt)))?;
    for (i, p) in e.probes.iter().enumerate() {
        if let Some(d) = p.dt {
            if (d - dt).abs() > 1e-12 {
                return Err(EngineError::Network(format!("probes[{i}].dt: all probes share one interval ({dt} ms)")));
            }
        }
        if !env.has_cell(p.gid) {
            continue;
        }
        let spec = crate::model::probe_spec(env.cell(p.gid).expect("local"), &p.at, &p.variable)
            .map_err(|m| EngineError::Network(format!("probes[{i}]: {m}")))?;
        env.add_probe(ProbeRequest { gid: p.gid, spec, label: probe_label(p) }, every)?;
    }
    Ok(())
}

/// Optional CSV outputs: all spikes (root) and probe traces (gathered on root).
fn write_csvs(env: &mut ExecutionEnvironment, e: &Experiment, spikes: Option<&[Spike]>) -> Result<(), EngineError> {
    let comm = env.comm();
    let mut res: Result<(), String> = Ok(());
    if let (Some(path), Some(spikes)) = (&e.output.spikes_csv, spikes) {
        res = write_csv(path, ["gid", "t_ms"], spikes.iter().map(|s| vec![s.gid.to_string(), s.t.to_string()]));
    }
    comm.agree(res)?;
    if let Some(path) = &e.output.probes_csv {
        // Each trace as (its probe's index in the experiment file, its length) and its values.
        let labels: Vec<String> = e.probes.iter().map(probe_label).collect();
        let traces = env.traces();
        let mut heads: Vec<u64> = Vec::with_capacity(2 * traces.len());
        let mut values: Vec<f64> = Vec::new();
        for t in &traces {
            let index = labels.iter().position(|l| *l == t.label).expect("a trace of an experiment probe");
            heads.extend([index as u64, t.values.len() as u64]);
            values.extend_from_slice(&t.values);
        }
        let heads = comm.gatherv(0, &heads);
        let values = comm.gatherv(0, &values);
        let mut res: Result<(), String> = Ok(());
        if let (Some((heads, _)), Some((values, _))) = (heads, values) {
            let mut cols: Vec<(usize, &[f64])> = Vec::with_capacity(heads.len() / 2);
            let mut start = 0;
            for h in heads.chunks_exact(2) {
                let n = h[1] as usize;
                cols.push((h[0] as usize, &values[start..start + n]));
                start += n;
            }
            // Probe order of the experiment file (gather order among equal labels).
            cols.sort_by_key(|c| c.0);
            let n = cols.iter().map(|c| c.1.len()).max().unwrap_or(0);
            let dt = e.probes.iter().find_map(|p| p.dt).unwrap_or(e.dt);
            let header = std::iter::once("t_ms").chain(cols.iter().map(|c| labels[c.0].as_str()));
            let rows = (0..n).map(|k| {
                std::iter::once((k as f64 * dt).to_string())
                    .chain(cols.iter().map(|c| c.1.get(k).map_or(String::new(), f64::to_string)))
                    .collect::<Vec<_>>()
            });
            res = write_csv(path, header, rows);
        }
        comm.agree(res)?;
    }
    Ok(())
}

/// A probe's column name: `VARIABLE@GID:AT`.
fn probe_label(p: &ProbeConfig) -> String {
    format!("{}@{}:{}", p.variable, p.gid, p.at)
}

/// Write a CSV file atomically (numbers as Rust prints them: `0.5`, `-65`, `1e-7`).
fn write_csv<H, R>(path: &Path, header: H, rows: impl Iterator<Item = R>) -> Result<(), String>
where
    H: IntoIterator,
    H::Item: AsRef<[u8]>,
    R: IntoIterator,
    R::Item: AsRef<[u8]>,
{
    let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let file = AtomicFile::create(path).map_err(|e| fail(&e))?;
    let mut w = csv::Writer::from_writer(file);
    w.write_record(header).map_err(|e| fail(&e))?;
    for r in rows {
        w.write_record(r).map_err(|e| fail(&e))?;
    }
    let file = w.into_inner().map_err(|e| fail(&e.error()))?;
    file.commit().map(|_| ()).map_err(|e| fail(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use miv_solvers::{DeliveryRule, SpikeRule};

    #[test]
    fn the_rules_reach_the_run_options() {
        let base = "cells: cells.h5\ncell_types: {}\nt_end: 1\n";
        let ok: Experiment = miv_config::from_yaml_str(
            &format!("{base}spike_rule: interpolated\ndelivery_rule: arbor\n"),
            Path::new("e"),
        )
        .unwrap();
        let o = run_options(&ok);
        assert_eq!((o.sim.spike_rule, o.sim.delivery_rule), (SpikeRule::Interpolated, DeliveryRule::Floor));
    }
}
