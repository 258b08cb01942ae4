//! Fault injection on the job store (docs/reliability.md): concurrent builds of one network into one store,
//! builds killed with SIGKILL at several points, `miv jobs rm` and `miv jobs verify`. (Its own test binary:
//! it spawns processes, and a process forked while another test holds an HDF5 file open would inherit that
//! file's lock.)

mod common;
#[path = "common/jobs.rs"]
mod jobs_common;

use common::*;
use jobs_common::*;
use miv::jobs::{Status, Store};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn build_args(net: &Path, store: &Path) -> Vec<String> {
    ["build", net.to_str().unwrap(), "--store", store.to_str().unwrap(), "--write-size", "2"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn spawn_build(net: &Path, store: &Path) -> std::process::Child {
    Command::new(miv_bin())
        .args(build_args(net, store))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn miv build")
}

/// A clean build of `net` into its own store: (cells.h5, connections.h5).
fn clean_build(dir: &Path, net: &Path) -> (PathBuf, PathBuf) {
    let store = dir.join("clean-store");
    let a = build_args(net, &store);
    let a: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
    built_files(&miv(&a).expect_ok("clean build").stdout)
}

fn all_complete(store: &Path) {
    let entries = Store::open(store).list().unwrap();
    assert_eq!(entries.len(), 13, "{:?}", entries.iter().map(|e| &e.job).collect::<Vec<_>>());
    assert!(entries.iter().all(|e| e.status == Status::Complete));
}

#[test]
fn concurrent_builds_of_one_network_both_succeed_with_identical_files() {
    let dir = scratch("fault_store_concurrent");
    let net = network_yaml(&dir, SMALL, 5);
    let (cells, conns) = clean_build(&dir, &net);
    let store = dir.join("store");
    for round in 0..2 {
        let _ = std::fs::remove_dir_all(&store);
        let kids: Vec<_> = (0..3).map(|_| spawn_build(&net, &store)).collect();
        for k in kids {
            let o = k.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(o.status.success(), "round {round}: a concurrent build failed:\n{err}");
            let (c, n) = built_files(&String::from_utf8_lossy(&o.stdout));
            assert!(same_content(&c, &cells) && same_content(&n, &conns), "round {round}");
        }
        all_complete(&store);
        let s = store.to_str().unwrap();
        let v = miv(&["jobs", "verify", "--store", s]).expect_ok("verify");
        assert!(v.stdout.contains("13 complete job(s) verified"), "{}", v.stdout);
    }
}

#[test]
fn killed_builds_rebuild_to_the_same_files() {
    let dir = scratch("fault_store_kill");
    let net = network_yaml(&dir, SMALL, 5);
    let (cells, conns) = clean_build(&dir, &net);
    // How long an uninterrupted build takes, to spread the kills over it.
    let store = dir.join("store");
    let t0 = Instant::now();
    let o = spawn_build(&net, &store).wait_with_output().unwrap();
    assert!(o.status.success());
    let full = t0.elapsed();
    // Kill points as fractions of a full build (fixed, so a failure reproduces).
    for (i, frac) in [0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95].iter().enumerate() {
        let _ = std::fs::remove_dir_all(&store);
        let mut k = spawn_build(&net, &store);
        std::thread::sleep(Duration::from_secs_f64(full.as_secs_f64() * frac));
        unsafe { libc::kill(k.id() as i32, libc::SIGKILL) };
        let _ = k.wait();
        // Nothing half-written looks complete: every complete job verifies.
        let s = store.to_str().unwrap();
        if store.exists() {
            miv(&["jobs", "verify", "--store", s]).expect_ok(&format!("verify after kill {i}"));
        }
        let a = build_args(&net, &store);
        let a: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
        let o = miv(&a).expect_ok(&format!("rebuild after kill {i} at {frac} of a build"));
        let (c, n) = built_files(&o.stdout);
        assert!(same_content(&c, &cells) && same_content(&n, &conns), "kill {i}");
        all_complete(&store);
    }
}

/// `bytes` with a damaged dataset chunk (the first chunk of a distance dataset is near the middle).
fn bytes_with_damage(bytes: &[u8]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let n = b.len();
    for x in &mut b[n / 3..n / 3 + 4096] {
        *x = !*x;
    }
    b
}

#[test]
fn jobs_rm_verify_and_a_mistyped_store() {
    let dir = scratch("fault_store_rm");
    let net = network_yaml(&dir, SMALL, 5);
    let store = dir.join("store");
    let s = store.to_str().unwrap();
    let a = build_args(&net, &store);
    let a: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
    let (cells, conns) = built_files(&miv(&a).expect_ok("build").stdout);
    let before_cells = std::fs::read(&cells).unwrap();
    let before_conns = std::fs::read(&conns).unwrap();

    // A mistyped store is an error, for ls, rm and verify.
    let typo = dir.join("stor");
    for cmd in [vec!["jobs", "ls"], vec!["jobs", "verify"], vec!["jobs", "rm", "x"]] {
        let mut c = cmd.clone();
        c.extend(["--store", typo.to_str().unwrap()]);
        let o = miv(&c);
        assert_eq!(o.code, Some(1), "{c:?}");
        assert!(o.stderr.contains("no job store here"), "{}", o.stderr);
    }

    // Overwrite 64 bytes of the graph job's connections.h5 at 24 places (one at a time): `jobs verify` either
    // names the damaged job and file, or the content is unchanged (the bytes were unused space).
    let graph = Store::open(&store).list().unwrap().into_iter().find(|e| e.job.kind == "neuroh5_graph").unwrap();
    let pristine = dir.join("pristine-connections.h5");
    std::fs::write(&pristine, &before_conns).unwrap();
    let n = before_conns.len();
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut detected = 0;
    for i in 0..24 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let at = (x >> 33) as usize % (n - 64);
        let mut bytes = before_conns.clone();
        for (k, b) in bytes[at..at + 64].iter_mut().enumerate() {
            *b ^= 0xa5 ^ (k as u8);
        }
        std::fs::write(&conns, &bytes).unwrap();
        let v = miv(&["jobs", "verify", "--store", s]);
        if v.code == Some(1) {
            assert!(v.stdout.contains("DAMAGED") && v.stdout.contains("connections.h5"), "{}", v.stdout);
            assert!(v.stderr.contains(&graph.job.to_string()), "{}", v.stderr);
            detected += 1;
        } else {
            assert_eq!(v.code, Some(0), "overwrite {i} at {at}: {}", v.stderr);
            assert!(
                same_content(&conns, &pristine),
                "overwrite {i} at byte {at}: verify passed but the content changed"
            );
        }
    }
    eprintln!("jobs verify detected {detected} of 24 overwrites of connections.h5 (the others hit unused bytes)");
    assert!(detected > 0);
    std::fs::write(&conns, bytes_with_damage(&before_conns)).unwrap();

    // rm: an unknown id, then the graph job by KIND/ID, then by its bare id (gone).
    let o = miv(&["jobs", "rm", "--store", s, "0123456789"]);
    assert_eq!(o.code, Some(1));
    assert!(o.stderr.contains("no job 0123456789"), "{}", o.stderr);
    miv(&["jobs", "rm", "--store", s, &graph.job.to_string()]).expect_ok("rm");
    assert!(!graph.dir.exists());
    let o = miv(&["jobs", "rm", "--store", s, &graph.job.id]);
    assert_eq!(o.code, Some(1));
    let (c2, n2) = built_files(&miv(&a).expect_ok("rebuild").stdout);
    let pristine_cells = dir.join("pristine-cells.h5");
    std::fs::write(&pristine_cells, &before_cells).unwrap();
    assert!(same_content(&c2, &pristine_cells) && same_content(&n2, &pristine), "the rebuild equals the first build");
    miv(&["jobs", "verify", "--store", s]).expect_ok("verify");

    // A job in use by another process cannot be removed: hold its lock here.
    let st = Store::open(&store);
    let lock = st.try_lock(&graph.job).unwrap();
    let o = miv(&["jobs", "rm", "--store", s, &graph.job.to_string()]);
    assert_eq!(o.code, Some(1));
    assert!(o.stderr.contains(&format!("in use by pid {}", std::process::id())), "{}", o.stderr);
    assert!(graph.dir.exists());
    drop(lock);
}
