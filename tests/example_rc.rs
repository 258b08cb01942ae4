//! `examples/rc.rs`, the seed's imperative flow in Rust, runs end to end (construction jobs, load, LFP, play,
//! finitialize, psolve, readouts) with a short t_end.

mod common;
use common::*;
use std::process::Command;

#[test]
fn rc_example_builds_loads_and_runs() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.current_dir(repo_root()).args(["build", "--release", "--example", "rc"]);
    if !cfg!(feature = "mpi") {
        build.arg("--no-default-features");
    }
    let o = build.output().expect("cargo build --example rc");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let exe = repo_root().join("target/release/examples/rc");
    let store = scratch("example_rc").join("store");
    let o = Command::new(exe)
        .args(["--t-end", "10", "--store", store.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run the rc example");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("STIM: ") && out.contains("PYR: ") && out.contains("OLM: "), "{out}");
    assert!(out.contains("LFP ReadoutElectrode: 101 samples to 10 ms"), "{out}");
    let stim: usize =
        out.lines().find(|l| l.starts_with("STIM: ")).unwrap()[6..].split(' ').next().unwrap().parse().unwrap();
    assert!(stim > 0, "the STIM cells play their trains: {out}");
    discard_scratch("example_rc");
}
