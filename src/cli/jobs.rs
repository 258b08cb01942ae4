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
        #[arg(long, default_value = "../shared/morphology/OLM.swc")]
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
    },
}

pub fn run(comm: &dyn Communicator, args: JobsArgs) -> CliResult {
    match args.command {
        JobsCommand::Ls { store, json } => {
            if comm.rank() != 0 {
                return Ok(());
            }
            let entries = Store::open(&store).list().map_err(|e| CliError::local(e.to_string()))?;
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
        JobsCommand::Bench { cells, ranks, morphology, dir, mpirun_args } => {
            if comm.size() > 1 {
                return Err(CliError::local("run `miv jobs bench` as one process; it starts mpirun itself"));
            }
            bench(cells, &ranks, &morphology, &dir, &mpirun_args)
        }
        JobsCommand::Exec { store, kind, id } => {
            let store = Store::with_comm(store, comm);
            miv_jobs::kinds::exec(&store, &JobRef { kind, id }).map_err(job_error)
        }
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

fn bench(cells: u32, ranks: &[usize], morphology: &std::path::Path, dir: &std::path::Path, mpirun_args: &[String]) -> CliResult {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| CliError::local(format!("{}: {e}", dir.display())))?;
    let net = bench_network(dir, cells, morphology).map_err(|e| CliError::local(format!("{}: {e}", morphology.display())))?;
    let net = miv_io::config::NetworkConfig::load(&net).map_err(|e| CliError::local(e.to_string()))?;
    let program = std::env::current_exe().map_err(|e| CliError::local(e.to_string()))?;
    println!("{:>6} {:>8} {:>12} {:>12} {:>14} {:>12} {:>14}", "ranks", "cells", "synapses", "syn s", "cells/s", "edges", "edges/s");
    for &r in ranks {
        let root = dir.join(format!("store-{r}"));
        let executor = if r <= 1 {
            miv_jobs::Executor::Local
        } else {
            let mut m = miv_jobs::MpirunOptions::new(r, &program);
            m.args = mpirun_args.to_vec();
            miv_jobs::Executor::Mpirun(m)
        };
        let store = Store::open(&root).executor(executor);
        let built = miv_jobs::build(&net, &store, &miv_jobs::IoOptions::default()).map_err(job_error)?;
        let seconds = |dir: &std::path::Path| -> f64 {
            std::fs::read_to_string(dir.join("meta.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|m| m["seconds"].as_f64())
                .unwrap_or(f64::NAN)
        };
        let syn = &built.synapses["DST"];
        let con = &built.connections["DST"];
        let serial = miv_partition::SerialComm;
        let count = |path: PathBuf, f: &dyn Fn(&miv_io::NeuroH5File) -> miv_io::Result<u64>| -> CliResult<u64> {
            let file = miv_io::NeuroH5File::open(&path, &serial).map_err(|e| CliError::local(e.to_string()))?;
            f(&file).map_err(|e| CliError::local(e.to_string()))
        };
        let synapses = count(syn.file("synapses.h5"), &|f| {
            let info = f.attribute_info("DST", miv_io::names::SYNAPSE_ATTRIBUTES)?;
            Ok(info.iter().find(|a| a.name == miv_io::names::SYN_IDS).map(|a| a.values).unwrap_or(0))
        })?;
        let edges = count(con.file("connections.h5"), &|f| {
            let mut n = 0;
            for (src, dst) in f.projection_names()? {
                n += f.projection_info(&src, &dst)?.edges;
            }
            Ok(n)
        })?;
        let (ts, tc) = (seconds(&syn.dir), seconds(&con.dir));
        println!(
            "{r:>6} {cells:>8} {synapses:>12} {ts:>12.2} {:>14.0} {edges:>12} {:>14.0}",
            cells as f64 / ts,
            edges as f64 / tc
        );
    }
    Ok(())
}
