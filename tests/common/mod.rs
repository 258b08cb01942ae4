//! Shared helpers for end-to-end tests: run the built `miv` binary directly or under `mpirun`, with a
//! timeout so a hang fails the test instead of stalling the suite.
#![allow(dead_code)]

#[path = "../../solvers/tests/common/cell.rs"]
pub mod cell;
pub mod miv_net;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }
    /// Panic with everything the process printed unless it exited 0. The last lines of stderr (where the
    /// error is) come first, so that a report showing only the start of a failure shows its cause.
    pub fn expect_ok(self, what: &str) -> Outcome {
        if !self.ok() {
            let lines: Vec<&str> = self.stderr.lines().collect();
            let tail = lines[lines.len().saturating_sub(5)..].join("\n");
            panic!(
                "{what} failed (code {:?}, timed out {}); the end of stderr:\n{tail}\nstdout:\n{}\nstderr:\n{}",
                self.code, self.timed_out, self.stdout, self.stderr
            );
        }
        self
    }
}

pub fn miv_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_miv"))
}

/// Repository root (where Cargo.toml of the `miv` package is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The SWC morphologies shipped with the examples (MiV-Simulator's PYR, PVBC and OLM).
pub fn morphology_dir() -> PathBuf {
    repo_root().join("examples").join("morphology")
}

/// The NEURON 9.0.2 / Arbor 0.12.2 reference results kept in the repository.
pub fn reference_dir() -> PathBuf {
    repo_root().join("tests").join("reference").join("neuron-arbor")
}

/// A fresh, empty scratch directory under the target directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let d = scratch_path(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create scratch dir");
    d
}

/// Remove a test's scratch folder once the test has passed with it: for tests whose outputs are large (a built
/// seed network is 450 MB), so that the suite's disk stays bounded. A failed test never gets here and keeps its
/// files for inspection.
pub fn discard_scratch(name: &str) {
    let _ = std::fs::remove_dir_all(scratch_path(name));
}

fn scratch_path(name: &str) -> PathBuf {
    repo_root().join("target").join("test-scratch").join(name)
}

/// Held shared while a test starts a process, exclusively while a test has an HDF5 file open for writing in its
/// own process. HDF5 opens files without close-on-exec, so a process started by another test thread meanwhile
/// would inherit the descriptor with its lock and keep the file locked after the test closed it (then a `miv`
/// run of the first test fails with "unable to lock file").
pub static SPAWN_LOCK: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Start a process under [`SPAWN_LOCK`].
pub fn spawn(cmd: &mut Command) -> std::process::Child {
    let _shared = SPAWN_LOCK.read().unwrap_or_else(|e| e.into_inner());
    cmd.spawn().expect("spawn process")
}

/// Hold while an HDF5 file is open for writing in the test process (see [`SPAWN_LOCK`]).
pub fn hdf5_write_guard() -> std::sync::RwLockWriteGuard<'static, ()> {
    SPAWN_LOCK.write().unwrap_or_else(|e| e.into_inner())
}

fn run_cmd(mut cmd: Command, timeout: Duration) -> Outcome {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
    let mut child = spawn(&mut cmd);
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break Some(st);
        }
        if start.elapsed() > timeout {
            timed_out = true;
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Outcome {
        code: status.and_then(|s| s.code()),
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
        timed_out,
    }
}

/// Run `miv ARGS` as one plain process.
pub fn miv(args: &[&str]) -> Outcome {
    miv_in(None, args)
}

pub fn miv_in(dir: Option<&Path>, args: &[&str]) -> Outcome {
    let mut cmd = Command::new(miv_bin());
    cmd.args(args);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    run_cmd(cmd, Duration::from_secs(600))
}

/// Run `miv ARGS` as one plain process, killed after `timeout` (for runs longer than `miv`'s 10 minutes).
pub fn miv_timeout(args: &[&str], timeout: Duration) -> Outcome {
    let mut cmd = Command::new(miv_bin());
    cmd.args(args);
    run_cmd(cmd, timeout)
}

/// Run `mpirun -n N miv ARGS` (root and oversubscription allowed), killed after `timeout`.
pub fn mpirun(n: usize, args: &[&str], timeout: Duration) -> Outcome {
    mpirun_env(n, args, &[], timeout)
}

pub fn mpirun_env(n: usize, args: &[&str], env: &[(&str, &str)], timeout: Duration) -> Outcome {
    let mut cmd = Command::new("mpirun");
    cmd.args(["--allow-run-as-root", "--oversubscribe", "-n", &n.to_string()]);
    for (k, v) in env {
        cmd.args(["-x", &format!("{k}={v}")]);
    }
    cmd.arg(miv_bin()).args(args);
    cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1").env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    cmd.env("OMPI_MCA_rmaps_base_oversubscribe", "1");
    run_cmd(cmd, timeout)
}

/// Parse one JSON document per non-empty stdout line.
pub fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}
