//! `miv h5 bench`: write a projection of N edges (default 10 million) with two edge attribute namespaces
//! (`Synapses/syn_id` uint32, `Connections/distance` float32) from every rank, read it back with each read
//! mode, and time h5py reading the same datasets (when `.venv-test` or `--python` is there). Prints one table
//! (rank 0); this is a measurement, not a test.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use miv_io::{H5Types, NeuroH5File, PopulationRanges, Projection, Selection, WriteOptions};
use miv_partition::{Assignment, Communicator};

use super::synth::stream;
use super::{io_err, CliError, CliResult};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Number of edges.
    #[arg(long, default_value_t = 10_000_000)]
    pub edges: u64,
    /// Destination cells (edges are spread evenly over them).
    #[arg(long, default_value_t = 100_000)]
    pub destinations: u64,
    /// Where to write the file (default: the system temp directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Python with h5py for the comparison (default: .venv-test/bin/python if present).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Repetitions of each read (the best is reported).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Value chunk size of the datasets.
    #[arg(long, default_value_t = 1 << 20)]
    pub chunk: u64,
    /// Keep the file.
    #[arg(long)]
    pub keep: bool,
    /// Only the read modes whose label contains this text (e.g. "scatter", "blocks", "round-robin").
    #[arg(long)]
    pub only: Option<String>,
}

const H5PY_READ: &str = r#"
import sys, time, h5py
path, reps = sys.argv[1], int(sys.argv[2])
names = ["Edges/Destination Pointer", "Edges/Source Index", "Synapses/syn_id", "Connections/distance"]
best = None
for _ in range(reps):
    t0 = time.perf_counter()
    n = 0
    with h5py.File(path, "r") as f:
        g = f["/Projections/DST/SRC"]
        for name in names:
            a = g[name][:]
            n += a.nbytes
    dt = time.perf_counter() - t0
    best = dt if best is None else min(best, dt)
print(n, best)
"#;

fn timed<T>(comm: &dyn Communicator, f: impl FnOnce() -> CliResult<T>) -> CliResult<(T, f64)> {
    comm.barrier();
    let t0 = Instant::now();
    let r = f()?;
    comm.barrier();
    let dt = comm.allreduce_max(t0.elapsed().as_secs_f64());
    Ok((r, dt))
}

pub fn run(comm: &dyn Communicator, a: BenchArgs) -> CliResult {
    let dir = a.dir.clone().unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("miv-bench-io-{}.h5", comm.broadcast(0, &[std::process::id() as u64])[0]));
    let per = (a.edges / a.destinations.max(1)).max(1);
    let pops = PopulationRanges::from_counts(&[("SRC", 0, a.destinations), ("DST", 1, a.destinations)]).map_err(io_err)?;
    let types = H5Types { populations: pops.clone(), projections: vec![("SRC".into(), "DST".into())] };
    let (src, dst) = (pops.get("SRC").expect("SRC").clone(), pops.get("DST").expect("DST").clone());
    let assignment = Assignment::round_robin(comm.size());

    // Each rank builds the edges of the destinations it owns.
    let mut p = Projection::new(&src, &dst);
    for g in assignment.gids_of(comm.rank(), &[dst.range()]) {
        let mut r = stream(7, "bench", g);
        let sources: Vec<u64> = (0..per).map(|_| src.start + r.below(src.count)).collect();
        p.push(g, &sources).map_err(io_err)?;
        p.attr_mut::<u32>("Synapses", "syn_id").map_err(io_err)?.extend((0..per).map(|i| i as u32));
        p.attr_mut::<f32>("Connections", "distance").map_err(io_err)?.extend((0..per).map(|_| r.uniform() as f32 * 500.0));
    }
    let total_edges = per * a.destinations;
    let opts = WriteOptions { value_chunk_size: a.chunk, chunk_size: a.chunk, ..WriteOptions::default() };
    let (_, t_write) = timed(comm, || {
        let f = NeuroH5File::create(&path, comm).map_err(io_err)?;
        f.write_h5types(&types).map_err(io_err)?;
        f.append_projection(&p, &opts).map_err(io_err)?;
        f.finish().map_err(io_err)?;
        Ok(())
    })?;
    drop(p);
    // Bytes a full read moves: destination pointer, source index, two attributes.
    let bytes = (a.destinations + 1) * 8 + total_edges * 12;
    let mut rows = vec![("write", comm.size(), t_write)];
    // Owners in contiguous gid blocks, for the owner-read mode without fragmentation.
    let n = comm.size() as u64;
    let blocks = Assignment::Table {
        size: comm.size(),
        gids: dst.range().collect(),
        ranks: dst.range().map(|g| ((g - dst.start) * n / dst.count) as u32).collect(),
    };
    let modes: [(&str, Selection); 3] = [
        ("read, I/O ranks + scatter", Selection::IoRanks { assignment: &assignment, io_size: comm.size() }),
        ("read, owners (blocks)", Selection::Owned(&blocks)),
        ("read, owners (round-robin)", Selection::Owned(&assignment)),
    ];
    for (label, sel) in modes {
        if a.only.as_ref().is_some_and(|o| !label.contains(o.as_str())) {
            continue;
        }
        let mut best = f64::INFINITY;
        let mut edges = 0;
        for _ in 0..a.repeat {
            let (n, dt) = timed(comm, || {
                let f = NeuroH5File::open(&path, comm).map_err(io_err)?;
                let p = f.read_projection("SRC", "DST", &["Synapses", "Connections"], &sel).map_err(io_err)?;
                Ok(p.num_edges() as u64)
            })?;
            edges = comm.allgather(n).iter().sum::<u64>();
            best = best.min(dt);
        }
        if edges != total_edges {
            return Err(CliError::local(format!("bench read {edges} edges, wrote {total_edges}")));
        }
        rows.push((label, comm.size(), best));
    }
    let python = a.python.clone().or_else(|| {
        let p = PathBuf::from(".venv-test/bin/python");
        p.exists().then_some(p)
    });
    let mut h5py: Option<f64> = None;
    if comm.rank() == 0 {
        if let Some(py) = &python {
            let out = std::process::Command::new(py).arg("-c").arg(H5PY_READ).arg(&path).arg(a.repeat.to_string()).output();
            match out {
                Ok(o) if o.status.success() => {
                    let s = String::from_utf8_lossy(&o.stdout);
                    h5py = s.split_whitespace().nth(1).and_then(|x| x.parse().ok());
                }
                Ok(o) => tracing::warn!("h5py comparison failed: {}", String::from_utf8_lossy(&o.stderr)),
                Err(e) => tracing::warn!("cannot run {}: {e}", py.display()),
            }
        }
    }
    if comm.rank() == 0 {
        let mb = bytes as f64 / 1e6;
        println!("projection: {total_edges} edges, {} destinations, 2 edge attribute namespaces, {:.1} MB of pointer/index/attribute data, value chunk {}", a.destinations, mb, a.chunk);
        println!("{:<28} {:>5} {:>9} {:>10} {:>14} {:>10}", "operation", "ranks", "seconds", "MB/s", "edges/s", "vs h5py");
        for (label, n, t) in &rows {
            let ratio = if label.starts_with("read") { h5py.map_or("-".to_string(), |h| format!("{:.2}", h / t)) } else { "-".into() };
            println!("{label:<28} {n:>5} {t:>9.3} {:>10.0} {:>14.3e} {ratio:>10}", mb / t, total_edges as f64 / t);
        }
        match h5py {
            Some(t) => println!("{:<28} {:>5} {t:>9.3} {:>10.0} {:>14.3e} {:>10}", "h5py read (same datasets)", 1, mb / t, total_edges as f64 / t, "1.00"),
            None => println!("h5py: not measured (no .venv-test/bin/python; pass --python)"),
        }
    }
    comm.barrier();
    if !a.keep && comm.rank() == 0 {
        let _ = std::fs::remove_file(&path);
    }
    Ok(())
}
