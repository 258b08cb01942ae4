//! `miv info`: what this build is and where its ranks run.

use clap::Args;
use miv_partition::Communicator;

use super::CliResult;

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(comm: &dyn Communicator, args: InfoArgs) -> CliResult {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let me = format!("{}\t{}\t{}\t{}", comm.rank(), comm.host(), std::process::id(), threads);
    let rows = comm.gather_strings(0, &me);
    let Some(rows) = rows else { return Ok(()) };
    let rows: Vec<Vec<String>> = rows.iter().map(|r| r.split('\t').map(str::to_string).collect()).collect();
    let features = miv_partition::features();
    if args.json {
        let ranks: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({"rank": r[0].parse::<u64>().unwrap_or(0), "size": comm.size(), "host": r[1],
                    "pid": r[2].parse::<u64>().unwrap_or(0), "threads": r[3].parse::<u64>().unwrap_or(1)})
            })
            .collect();
        let doc = serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "features": features,
            "transport": comm.transport(),
            "hdf5": miv_io::hdf5_version(),
            "size": comm.size(),
            "ranks": ranks,
        });
        println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
        return Ok(());
    }
    println!("miv {}", env!("CARGO_PKG_VERSION"));
    println!("features: {}", if features.is_empty() { "(none)".to_string() } else { features.join(", ") });
    println!("transport: {}", comm.transport());
    println!("hdf5: {}", miv_io::hdf5_version());
    println!("ranks: {}", comm.size());
    println!("{:>6}  {:>6}  {:<24}  {:>8}  {:>7}", "rank", "size", "host", "pid", "threads");
    for r in &rows {
        println!("{:>6}  {:>6}  {:<24}  {:>8}  {:>7}", r[0], comm.size(), r[1], r[2], r[3]);
    }
    Ok(())
}
