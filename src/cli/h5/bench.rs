//! `miv h5 bench`: write a projection of N edges (default 10 million) with two edge attribute namespaces
//! (`Synapses/syn_id` uint32, `Connections/distance` float32) from every rank, read it back with each read
//! mode, and time h5py reading the same datasets (when `.venv-test` or `--python` is there) two ways: one
//! h5py process per rank reading its contiguous share at the same time (what each rank of a job of serial
//! readers would do), and one process reading the whole datasets while the other ranks sleep (the raw
//! serial speed). Repetitions interleave all of them. Prints one table (rank 0); a measurement, not a test.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdout, Command, Stdio};
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
    /// Write the datasets without the Fletcher-32 checksum miv always writes (to measure its cost).
    #[arg(long)]
    pub no_checksum: bool,
}

/// h5py's side: a process that reads its share (`rank` of `size` near-equal contiguous slices of the
/// destination pointer, then the edges those destinations point to) each time it is told "go" on stdin
/// and prints the bytes read and the seconds taken. Imports happen before "ready", outside the timing.
const H5PY_READ: &str = r#"
import sys, time, h5py
path, rank, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
names = ["Edges/Source Index", "Synapses/syn_id", "Connections/distance"]
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() != "go":
        break
    t0 = time.perf_counter()
    with h5py.File(path, "r") as f:
        g = f["/Projections/DST/SRC"]
        dpd = g["Edges/Destination Pointer"]
        slots = dpd.shape[0] - 1
        lo, hi = slots * rank // size, slots * (rank + 1) // size
        dp = dpd[lo:hi + 1]
        n = dp.nbytes
        e0, e1 = int(dp[0]), int(dp[-1])
        for name in names:
            n += g[name][e0:e1].nbytes
    print(n, time.perf_counter() - t0, flush=True)
"#;

/// One h5py reader process (see `H5PY_READ`), started ahead and waiting for "go".
struct H5pyReader {
    child: std::process::Child,
    out: BufReader<ChildStdout>,
}

impl H5pyReader {
    fn start(python: &Path, file: &Path, rank: usize, size: usize) -> Option<H5pyReader> {
        let mut child = Command::new(python)
            .arg("-c")
            .arg(H5PY_READ)
            .arg(file)
            .arg(rank.to_string())
            .arg(size.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| tracing::warn!("cannot run {}: {e}", python.display()))
            .ok()?;
        let out = BufReader::new(child.stdout.take()?);
        let mut r = H5pyReader { child, out };
        (r.line()? == "ready").then_some(r)
    }

    fn line(&mut self) -> Option<String> {
        let mut l = String::new();
        self.out.read_line(&mut l).ok().filter(|&n| n > 0)?;
        Some(l.trim().to_string())
    }

    /// One timed read: seconds as h5py measured them.
    fn read(&mut self) -> Option<f64> {
        let stdin = self.child.stdin.as_mut()?;
        writeln!(stdin, "go").ok()?;
        stdin.flush().ok()?;
        self.line()?.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Drop for H5pyReader {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// Wait for rank 0 to create `flag` without spinning (an MPI rank waiting in a collective polls and takes
/// a core from the process being timed), then synchronise.
fn quiet_barrier(comm: &dyn Communicator, flag: &Path) {
    if comm.rank() == 0 {
        let _ = std::fs::write(flag, b"");
    } else {
        while !flag.exists() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    comm.barrier();
    if comm.rank() == 0 {
        let _ = std::fs::remove_file(flag);
    }
    comm.barrier();
}

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
    let pops =
        PopulationRanges::from_counts(&[("SRC", 0, a.destinations), ("DST", 1, a.destinations)]).map_err(io_err)?;
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
        p.attr_mut::<f32>("Connections", "distance")
            .map_err(io_err)?
            .extend((0..per).map(|_| r.uniform() as f32 * 500.0));
    }
    let total_edges = per * a.destinations;
    let opts = WriteOptions {
        value_chunk_size: a.chunk,
        chunk_size: a.chunk,
        checksum: !a.no_checksum,
        ..WriteOptions::default()
    };
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
    let modes: Vec<(&str, Selection)> = vec![
        ("read, I/O ranks + scatter", Selection::IoRanks { assignment: &assignment, io_size: comm.size() }),
        ("read, owners (blocks)", Selection::Owned(&blocks)),
        ("read, owners (round-robin)", Selection::Owned(&assignment)),
    ]
    .into_iter()
    .filter(|(label, _)| a.only.as_ref().is_none_or(|o| label.contains(o.as_str())))
    .collect();

    // h5py readers, started before any timing: one per rank for its share, and one more on rank 0 for the
    // whole datasets in a single process. Skipped on every rank unless every rank has its reader.
    let python = a.python.clone().or_else(|| {
        let p = PathBuf::from(".venv-test/bin/python");
        p.exists().then_some(p)
    });
    let mut share = python.as_ref().and_then(|py| H5pyReader::start(py, &path, comm.rank(), comm.size()));
    let mut whole = match &python {
        Some(py) if comm.rank() == 0 && comm.size() > 1 => H5pyReader::start(py, &path, 0, 1),
        _ => None,
    };
    let ready = share.is_some() && (comm.rank() != 0 || comm.size() == 1 || whole.is_some());
    let with_h5py = comm.allreduce_min(if ready { 1.0 } else { 0.0 }) > 0.0;
    let flag = path.with_extension("h5py-done");

    // Repetitions interleave every mode and h5py, so a change of machine load hits them alike.
    let mut best = vec![f64::INFINITY; modes.len()];
    let (mut h5py_share, mut h5py_whole) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..a.repeat {
        for (k, (_, sel)) in modes.iter().enumerate() {
            let (n, dt) = timed(comm, || {
                let f = NeuroH5File::open(&path, comm).map_err(io_err)?;
                let p = f.read_projection("SRC", "DST", &["Synapses", "Connections"], sel).map_err(io_err)?;
                Ok(p.num_edges() as u64)
            })?;
            let edges = comm.allgather(n).iter().sum::<u64>();
            if edges != total_edges {
                return Err(CliError::local(format!("bench read {edges} edges, wrote {total_edges}")));
            }
            best[k] = best[k].min(dt);
        }
        if with_h5py {
            comm.barrier();
            let t = share.as_mut().and_then(H5pyReader::read).unwrap_or(f64::NAN);
            h5py_share = h5py_share.min(comm.allreduce_max(t));
            if let Some(w) = whole.as_mut() {
                h5py_whole = h5py_whole.min(w.read().unwrap_or(f64::NAN));
            }
            if comm.size() > 1 {
                quiet_barrier(comm, &flag);
            }
        }
    }
    drop((share, whole));
    if comm.size() == 1 {
        h5py_whole = h5py_share;
    }
    for (k, (label, _)) in modes.iter().enumerate() {
        rows.push((label, comm.size(), best[k]));
    }

    if comm.rank() == 0 {
        let mb = bytes as f64 / 1e6;
        let ratio = |h: f64, t: f64| if with_h5py && h.is_finite() { format!("{:.2}", h / t) } else { "-".to_string() };
        println!("projection: {total_edges} edges, {} destinations, 2 edge attribute namespaces, {:.1} MB of pointer/index/attribute data, value chunk {}, Fletcher-32 {}", a.destinations, mb, a.chunk, if a.no_checksum { "off" } else { "on" });
        println!("h5py (n): {} h5py process(es), one per rank, each reading its contiguous share at the same time; h5py (1): one process reading whole datasets while the other ranks sleep", comm.size());
        println!(
            "{:<28} {:>5} {:>9} {:>10} {:>14} {:>11} {:>11}",
            "operation", "ranks", "seconds", "MB/s", "edges/s", "vs h5py(n)", "vs h5py(1)"
        );
        for (label, n, t) in &rows {
            let (rn, r1) = if label.starts_with("read") {
                (ratio(h5py_share, *t), ratio(h5py_whole, *t))
            } else {
                ("-".into(), "-".into())
            };
            println!(
                "{label:<28} {n:>5} {t:>9.3} {:>10.0} {:>14.3e} {rn:>11} {r1:>11}",
                mb / t,
                total_edges as f64 / t
            );
        }
        if with_h5py {
            for (label, n, t) in
                [("h5py (n), shares", comm.size(), h5py_share), ("h5py (1), whole datasets", 1, h5py_whole)]
            {
                println!(
                    "{label:<28} {n:>5} {t:>9.3} {:>10.0} {:>14.3e} {:>11} {:>11}",
                    mb / t,
                    total_edges as f64 / t,
                    "",
                    ""
                );
            }
        } else {
            println!("h5py: not measured (no .venv-test/bin/python with h5py on every rank; pass --python)");
        }
    }
    comm.barrier();
    if !a.keep && comm.rank() == 0 {
        let _ = std::fs::remove_file(&path);
    }
    Ok(())
}
