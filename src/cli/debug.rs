//! `miv debug ...` (hidden): exercises the communicator so multi-rank tests can check real MPI behaviour.

use clap::{Args, Subcommand, ValueEnum};
use miv_partition::{Assignment, Communicator, ReadPlan};

use super::{CliError, CliResult};

#[derive(Debug, Args)]
pub struct DebugArgs {
    #[command(subcommand)]
    pub command: DebugCommand,
}

#[derive(Debug, Subcommand)]
pub enum DebugCommand {
    /// Run every collective with rank-dependent data and print, per rank, one JSON line of results.
    Collectives,
    /// Fail on one rank while the others wait in a collective.
    Fail {
        /// The rank that fails.
        #[arg(long, default_value_t = 1)]
        rank: usize,
        #[arg(long, value_enum, default_value_t = FailMode::Error)]
        mode: FailMode,
    },
    /// Print, per rank, the gids it owns and reads for a population range.
    Partition {
        #[arg(long)]
        start: u64,
        #[arg(long)]
        count: u64,
        #[arg(long, default_value_t = 0)]
        io_size: usize,
    },
    /// Load an experiment once and run trials on it with `reset` between them; print one JSON line per trial
    /// (spikes, LFP, probe traces) on rank 0. Trial k plays its own STIM trains, direct event and probe.
    Trials {
        experiment: std::path::PathBuf,
        /// Trials to run, in this order.
        #[arg(long, value_delimiter = ',')]
        trials: Vec<u64>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FailMode {
    /// The rank returns an error outside any collective agreement (the job is aborted).
    Error,
    /// The rank panics (the panic hook aborts the job).
    Panic,
    /// The rank's error goes through `agree`, so every rank stops cleanly and rank 0 prints it.
    Collective,
}

pub fn run(comm: &dyn Communicator, args: DebugArgs) -> CliResult {
    match args.command {
        DebugCommand::Collectives => collectives(comm),
        DebugCommand::Fail { rank, mode } => fail(comm, rank, mode),
        DebugCommand::Trials { experiment, trials } => trials_run(comm, &experiment, &trials)
            .map_err(|e| CliError { collective: e.is_collective(), message: e.to_string() }),
        DebugCommand::Partition { start, count, io_size } => {
            let a = Assignment::round_robin(comm.size());
            let owned = a.gids_of(comm.rank(), &[start..start + count]);
            let plan = if io_size > 0 {
                ReadPlan::io_ranks(start..start + count, comm.size(), io_size)
            } else {
                ReadPlan::owned(&a, start..start + count)
            };
            let reads: Vec<[u64; 2]> = plan.ranges_of(comm.rank()).iter().map(|r| [r.start, r.end]).collect();
            let line = serde_json::json!({"rank": comm.rank(), "owned": owned, "reads": reads}).to_string();
            print_in_rank_order(comm, &line);
            Ok(())
        }
    }
}

/// Rank 0 prints every rank's line, in rank order, so test output is deterministic.
fn print_in_rank_order(comm: &dyn Communicator, line: &str) {
    if let Some(lines) = comm.gather_strings(0, line) {
        for l in lines {
            println!("{l}");
        }
    }
}

fn collectives(comm: &dyn Communicator) -> CliResult {
    let (rank, size) = (comm.rank(), comm.size());
    comm.barrier();
    // Broadcast from the last rank.
    let root = size - 1;
    let b = comm.broadcast(root, &[root as u64 * 10, 7]);
    let s = comm.broadcast_string(root, &format!("hello from {root}"));
    // Allgatherv with rank+1 records per rank.
    let mine: Vec<u64> = (0..=rank as u64).map(|i| rank as u64 * 100 + i).collect();
    let (all, counts) = comm.allgatherv(&mine);
    // Gather to root 0.
    let g = comm.gatherv(0, &[rank as f64 + 0.5]).map(|(v, _)| v);
    // All-to-all: send to rank r the pair (me, r).
    let sends: Vec<Vec<u32>> = (0..size).map(|r| vec![rank as u32, r as u32]).collect();
    let a2a = comm.alltoallv(&sends);
    // (rank + r) % 3 records of 12 bytes to rank r, once through `exchange` and once into a buffer laid out
    // by explicit displacements (one unused record before each rank's region, this rank's own region
    // filled locally).
    let to = |r: usize| (0..((rank + r) % 3) as u32).map(move |k| [rank as u32, r as u32, k]);
    let send: Vec<[u32; 3]> = (0..size).flat_map(to).collect();
    let to_counts: Vec<usize> = (0..size).map(|r| (rank + r) % 3).collect();
    let (exchanged, _) = comm.exchange(&send, &to_counts);
    let mut recv_counts: Vec<usize> = (0..size).map(|r| (rank + r) % 3).collect();
    let recv_displs: Vec<usize> =
        miv_partition::displacements(&recv_counts).iter().enumerate().map(|(r, d)| d + r + 1).collect();
    let mut into = vec![[u32::MAX; 3]; recv_counts.iter().sum::<usize>() + size + 1];
    for (k, x) in to(rank).enumerate() {
        into[recv_displs[rank] + k] = x;
    }
    let mut send_counts = to_counts.clone();
    (send_counts[rank], recv_counts[rank]) = (0, 0);
    comm.alltoallv_into(
        &send,
        &send_counts,
        &miv_partition::displacements(&to_counts),
        &mut into,
        &recv_counts,
        &recv_displs,
    );
    let sum = comm.allreduce_sum(rank as f64 + 1.0);
    let min = comm.allreduce_min(rank as f64 + 1.0);
    let max = comm.allreduce_max(rank as f64 + 1.0);
    let mut u = [rank as u64, 1];
    comm.allreduce_sum_u64(&mut u);
    let line = serde_json::json!({
        "rank": rank, "size": size, "bcast": b, "bcast_str": s, "allgatherv": all, "counts": counts,
        "gather": g, "alltoallv": a2a, "exchange": exchanged, "alltoallv_into": into, "sum": sum, "min": min, "max": max, "sum_u64": u,
    })
    .to_string();
    print_in_rank_order(comm, &line);
    Ok(())
}

fn fail(comm: &dyn Communicator, failing: usize, mode: FailMode) -> CliResult {
    let me = comm.rank();
    match mode {
        FailMode::Error => {
            if me == failing {
                return Err(CliError::local(format!("rank {me} failed on purpose (missing file /no/such/cells.h5)")));
            }
            // The others block in a collective that the failing rank never joins.
            comm.barrier();
            Ok(())
        }
        FailMode::Panic => {
            if me == failing {
                panic!("rank {me} panicked on purpose");
            }
            comm.barrier();
            Ok(())
        }
        FailMode::Collective => {
            let local: Result<(), String> = if me == failing {
                Err(format!("rank {me} could not parse /tmp/bad.yaml: expected a mapping"))
            } else {
                Ok(())
            };
            comm.agree(local)?;
            Ok(())
        }
    }
}

/// Load once, then per trial: replace trains, events and probes, reset (or first finitialize), run, gather.
fn trials_run(comm: &dyn Communicator, path: &std::path::Path, trials: &[u64]) -> Result<(), miv_engine::EngineError> {
    let (e, mut env) = miv_engine::run::load_environment(comm, path, &miv_engine::Overrides::default())?;
    let pops = env.populations().cloned().ok_or_else(|| miv_engine::EngineError::Network("no populations".into()))?;
    let stim = pops.get("STIM").map(|p| p.range()).unwrap_or(0..0);
    let first_cell = pops
        .names()
        .into_iter()
        .filter(|n| n != "STIM")
        .filter_map(|n| pops.get(&n).map(|p| p.start))
        .min()
        .unwrap_or(0);
    for (i, &k) in trials.iter().enumerate() {
        for g in stim.clone() {
            if env.owns(g) {
                let times: Vec<f64> = (0..4).map(|j| 1.0 + ((g * 7 + k * 3) % 10) as f64 + 15.0 * j as f64).collect();
                env.play(g, &times)?;
            }
        }
        env.clear_events();
        env.add_event(first_cell, 0, 5.005 + k as f64, vec![0.01 * (1.0 + (k % 2) as f64)])?;
        env.clear_probes();
        env.record(first_cell + k % 2, 0, 0.5, "v", 4)?;
        if k % 2 == 1 {
            env.record(first_cell, 0, 0.5, "hh.m", 4)?;
        }
        if i == 0 {
            env.finitialize(e.v_init)?;
        } else {
            env.reset()?;
        }
        env.psolve(e.t_end)?;
        let spikes = env.gather_spikes();
        let lfp: Vec<Option<(Vec<f64>, Vec<f64>)>> =
            (0..env.lfp_labels().len()).map(|l| env.gather_lfp(l)).collect::<Result<_, _>>()?;
        let traces = env.gather_traces();
        if let (Some(spikes), Some(traces)) = (spikes, traces) {
            let s: Vec<(u64, f64)> = spikes.iter().map(|s| (s.gid, s.t)).collect();
            let l: Vec<Vec<f64>> = lfp.into_iter().flatten().map(|(_, v)| v).collect();
            println!("{}", serde_json::json!({"trial": k, "spikes": s, "lfp": l, "traces": traces}));
        }
    }
    Ok(())
}
