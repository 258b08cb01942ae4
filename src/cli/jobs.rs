//! `miv jobs ls` lists the jobs of a store with their configurations; `miv jobs exec` (hidden) runs one
//! prepared job on the ranks it was started with (what the mpirun and Slurm executors start).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use miv_jobs::{JobRef, Status, Store};
use miv_partition::Communicator;

use super::build::job_error;
use super::{CliError, CliResult};

#[derive(Debug, Args)]
pub struct JobsArgs {
    #[command(subcommand)]
    pub command: JobsCommand,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List the jobs of a store: kind, identity, status and configuration.
    Ls {
        #[arg(long, default_value = ".miv-store", env = "MIV_STORE")]
        store: PathBuf,
        /// One JSON document per job (with the full configuration).
        #[arg(long)]
        json: bool,
    },
    /// Remove one job (complete or not) from a store; refused while another process holds the job's lock.
    Rm {
        #[arg(long, default_value = ".miv-store", env = "MIV_STORE")]
        store: PathBuf,
        /// The job: its identity (as `miv jobs ls` prints it) or KIND/ID.
        id: String,
    },
    /// Re-open every file of every completed job and read all its data back (checksums included); exits 1
    /// naming the job and file when one is damaged.
    Verify {
        #[arg(long, default_value = ".miv-store", env = "MIV_STORE")]
        store: PathBuf,
    },
    /// Benchmark: cells per second of distribute_synapses and edges per second of generate_connections on a
    /// synthetic network, for each rank count (each run as `mpirun -n R` jobs; 1 rank runs in-process).
    Bench {
        /// Cells of the destination population.
        #[arg(long, default_value_t = 10_000)]
        cells: u32,
        /// Rank counts to measure.
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        ranks: Vec<usize>,
        /// The SWC of the destination cells.
        #[arg(long, default_value = "examples/morphology/OLM.swc")]
        morphology: PathBuf,
        /// Scratch directory for the stores (removed first).
        #[arg(long, default_value = "target/bench-jobs")]
        dir: PathBuf,
        /// Extra mpirun arguments (repeat).
        #[arg(long = "mpirun-arg", allow_hyphen_values = true)]
        mpirun_args: Vec<String>,
    },
    /// Run one prepared job of a store here (started by the mpirun and Slurm executors).
    #[command(hide = true)]
    Exec {
        #[arg(long)]
        store: PathBuf,
        #[arg(long)]
        kind: String,
        #[arg(long)]
        id: String,
        /// Hold the job's store lock while running (Slurm batch jobs; mpirun children run under the lock of
        /// the build that started them).
        #[arg(long)]
        lock: bool,
    },
}

pub fn run(comm: &dyn Communicator, args: JobsArgs) -> CliResult {
    match args.command {
        JobsCommand::Ls { store, json } => {
            if comm.rank() != 0 {
                return Ok(());
            }
            let entries = existing_store(&store)?.list().map_err(|e| CliError::local(e.to_string()))?;
            for e in entries {
                let status = match &e.status {
                    Status::Complete => "complete".to_string(),
                    Status::Incomplete => "incomplete".to_string(),
                    Status::Submitted { job_id: Some(id) } => format!("submitted {id}"),
                    Status::Submitted { job_id: None } => "prepared (dry run)".to_string(),
                };
                if json {
                    let doc = serde_json::json!({"kind": e.job.kind, "id": e.job.id, "status": status, "dir": e.dir, "config": e.config});
                    println!("{doc}");
                } else {
                    println!("{:<24} {}  {status}", e.job.kind, e.job.id);
                    println!("    {}", summary(&e.config["job"]));
                }
            }
            Ok(())
        }
        JobsCommand::Rm { store, id } => {
            if comm.rank() != 0 {
                return Ok(());
            }
            let st = existing_store(&store)?;
            let entries = st.list().map_err(|e| CliError::local(e.to_string()))?;
            let matches: Vec<_> =
                entries.iter().filter(|e| e.job.id == id || e.job.to_string() == id).map(|e| e.job.clone()).collect();
            let job = match matches.as_slice() {
                [one] => one.clone(),
                [] => return Err(CliError::local(format!("{}: no job {id} (see `miv jobs ls`)", store.display()))),
                _ => {
                    return Err(CliError::local(format!(
                        "{}: {id} names several jobs ({}); give KIND/ID",
                        store.display(),
                        matches.iter().map(|j| j.to_string()).collect::<Vec<_>>().join(", ")
                    )))
                }
            };
            st.remove(&job).map_err(|e| CliError::local(format!("{}: {e}", store.display())))?;
            println!("removed {job}");
            Ok(())
        }
        JobsCommand::Verify { store } => {
            if comm.rank() != 0 {
                return Ok(());
            }
            verify(&store)
        }
        JobsCommand::Bench { cells, ranks, morphology, dir, mpirun_args } => {
            if comm.size() > 1 {
                return Err(CliError::local("run `miv jobs bench` as one process; it starts mpirun itself"));
            }
            bench(cells, &ranks, &morphology, &dir, &mpirun_args)
        }
        JobsCommand::Exec { store, kind, id, lock } => {
            let store = Store::with_comm(store, comm);
            miv_jobs::kinds::exec(&store, &JobRef { kind, id }, lock).map_err(job_error)
        }
    }
}

/// The store at `path`, which must exist (a mistyped `--store` is an error, not an empty list).
fn existing_store(path: &std::path::Path) -> CliResult<Store<'static>> {
    if !path.is_dir() {
        return Err(CliError::local(format!(
            "{}: no job store here (expected a folder made by `miv build`)",
            path.display()
        )));
    }
    Ok(Store::open(path))
}

/// `miv jobs verify`: read back every file of every completed job.
fn verify(path: &std::path::Path) -> CliResult {
    let store = existing_store(path)?;
    let entries = store.list().map_err(|e| CliError::local(e.to_string()))?;
    let mut bad = Vec::new();
    let mut checked = 0;
    for e in entries.iter().filter(|e| e.status == Status::Complete) {
        let mut files: Vec<_> = std::fs::read_dir(&e.dir)
            .map_err(|err| CliError::local(format!("{}: {err}", e.dir.display())))?
            .filter_map(|f| f.ok().map(|f| f.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        let mut problems = Vec::new();
        for f in &files {
            let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let r = if name.ends_with(".h5") {
                miv_io::verify::verify_file(f).map(|_| ())
            } else if name.ends_with(".json") {
                std::fs::read_to_string(f)
                    .map_err(|err| err.to_string())
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).map_err(|err| err.to_string()))
                    .map(|_| ())
                    .map_err(|err| format!("{}: {err}", f.display()))
            } else {
                Ok(())
            };
            if let Err(m) = r {
                problems.push(m);
            }
        }
        checked += 1;
        if problems.is_empty() {
            println!("{:<24} {}  ok ({} files)", e.job.kind, e.job.id, files.len());
        } else {
            println!("{:<24} {}  DAMAGED", e.job.kind, e.job.id);
            for p in &problems {
                println!("    {p}");
            }
            bad.push(e.job.to_string());
        }
    }
    if bad.is_empty() {
        println!("{checked} complete job(s) verified");
        Ok(())
    } else {
        Err(CliError::local(format!(
            "{}: {} damaged job(s): {} (remove them with `miv jobs rm KIND/ID` and build again)",
            path.display(),
            bad.len(),
            bad.join(", ")
        )))
    }
}

/// A job configuration on one line, with long values shortened.
fn summary(job: &serde_json::Value) -> String {
    let Some(map) = job.as_object() else { return job.to_string() };
    map.iter()
        .map(|(k, v)| {
            let s = v.to_string();
            if s.len() > 60 {
                format!("{k}={}…", &s[..s.char_indices().nth(57).map(|(i, _)| i).unwrap_or(s.len())])
            } else {
                format!("{k}={s}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The benchmark network: 2000 input cells (SRC) and `cells` destination cells (DST, one SWC) on a
/// 1000 × 1000 µm sheet; DST takes excitatory basal synapses from SRC and inhibitory ones from DST.
fn bench_network(dir: &std::path::Path, cells: u32, morphology: &std::path::Path) -> std::io::Result<PathBuf> {
    let morphology = std::fs::canonicalize(morphology)?;
    let yaml = format!(
        "seed: 1
population_definitions: {{SRC: 0, DST: 1}}
layer_definitions: {{SO: 5, SP: 6, SR: 8, SLM: 9}}
cell_distributions: {{SRC: {{SP: 2000}}, DST: {{SO: {cells}}}}}
layer_extents:
  SO: [[0, 0, 0], [1000, 1000, 20]]
  SP: [[0, 0, 20], [1000, 1000, 60]]
axon_extents:
  SRC: {{default: {{width: [400, 400]}}}}
  DST: {{default: {{width: [400, 400]}}}}
cell_types:
  SRC: {{template: VecStim}}
  DST:
    template: OLMCell
    discretization: {{d_lambda: 0.1}}
    synapses:
      density:
        basal:
          excitatory: {{SO: {{mean: 0.4, variance: 0.05}}}}
          inhibitory: {{SO: {{mean: 0.1, variance: 0.02}}}}
synapses:
  DST:
    SRC: {{type: excitatory, sections: [basal], layers: [SO], proportions: [1.0]}}
    DST: {{type: inhibitory, sections: [basal], layers: [SO], proportions: [1.0]}}
morphology: {{DST: {}}}
",
        morphology.display()
    );
    let p = dir.join("bench.yaml");
    std::fs::write(&p, yaml)?;
    Ok(p)
}

fn bench(
    cells: u32,
    ranks: &[usize],
    morphology: &std::path::Path,
    dir: &std::path::Path,
    mpirun_args: &[String],
) -> CliResult {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| CliError::local(format!("{}: {e}", dir.display())))?;
    let net =
        bench_network(dir, cells, morphology).map_err(|e| CliError::local(format!("{}: {e}", morphology.display())))?;
    let net = miv_config::NetworkConfig::load(&net).map_err(|e| CliError::local(e.to_string()))?;
    let program = std::env::current_exe().map_err(|e| CliError::local(e.to_string()))?;
    let mut rows = Vec::new();
    for &r in ranks {
        let mut m = miv_jobs::MpirunOptions::new(r, &program);
        m.args = mpirun_args.to_vec();
        let store = Store::open(dir.join(format!("store-{r}"))).executor(Box::new(m));
        let built = miv_jobs::build(&net, &store, &miv_jobs::IoOptions::default()).map_err(job_error)?;
        let meta = |d: &std::path::Path| -> serde_json::Value {
            std::fs::read_to_string(d.join("meta.json"))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default()
        };
        rows.push((r, meta(&built.synapses["DST"].dir), meta(&built.connections["DST"].dir)));
    }
    println!("distribute_synapses and generate_connections, {cells} destination cells (each job as `mpirun -n R`)");
    println!(
        "{:>5} {:>10} {:>9} {:>11} {:>9} {:>11} {:>10} {:>9} {:>11} {:>9} {:>11}",
        "ranks",
        "synapses",
        "compute s",
        "cells/s",
        "total s",
        "cells/s",
        "edges",
        "compute s",
        "edges/s",
        "total s",
        "edges/s"
    );
    for (r, s, c) in rows {
        let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
        let (n, syn, sc, st) =
            (f(&s["stats"]["cells"]), f(&s["stats"]["synapses"]), f(&s["stats"]["compute_seconds"]), f(&s["seconds"]));
        let (edges, cc, ct) = (f(&c["stats"]["edges"]), f(&c["stats"]["compute_seconds"]), f(&c["seconds"]));
        println!(
            "{r:>5} {syn:>10} {sc:>9.2} {:>11.0} {st:>9.2} {:>11.0} {edges:>10} {cc:>9.2} {:>11.0} {ct:>9.2} {:>11.0}",
            n / sc,
            n / st,
            edges / cc,
            edges / ct
        );
    }
    Ok(())
}
