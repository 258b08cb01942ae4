//! An interrupted job never leaves output that looks complete, and the next build replaces its leftovers.
//! (Its own test binary: it spawns processes, and a process forked while another test holds an HDF5 file
//! open would inherit that file's lock.)

mod common;
#[path = "common/jobs.rs"]
mod jobs_common;

use common::*;
use jobs_common::*;
use miv::jobs::{Status, Store};

#[test]
fn interrupted_jobs_never_look_complete() {
    let dir = scratch("jobs_cache_interrupted");
    let net = network_yaml(&dir, SMALL, 5);
    let store = dir.join("store");
    let args = ["build", net.to_str().unwrap(), "--store", store.to_str().unwrap(), "--write-size", "2"];
    // Fail after the first block of synapses of the first population is written.
    let (ok, _, err) = miv_env(&args, &[("MIV_JOBS_FAIL", "distribute_synapses:block")]);
    assert!(!ok, "the injected failure fails the build");
    assert!(err.contains("injected failure"), "{err}");
    let s = Store::open(&store);
    let entries = s.list().unwrap();
    let syn: Vec<_> = entries.iter().filter(|e| e.job.kind == "distribute_synapses").collect();
    assert_eq!(syn.len(), 1);
    assert_eq!(syn[0].status, Status::Incomplete);
    assert!(syn[0].dir.file_name().unwrap().to_string_lossy().ends_with(".partial"));
    assert!(!syn[0].dir.join("synapses.h5").exists(), "a half-written file keeps its .partial name");
    assert!(entries.iter().filter(|e| e.job.kind == "generate_synapse_forest").all(|e| e.status == Status::Complete));
    assert!(!store.join("neuroh5_graph").exists());
    let (ok, ls, _) = miv_env(&["jobs", "ls", "--store", store.to_str().unwrap()], &[]);
    assert!(ok && ls.contains("incomplete"), "{ls}");

    // Fail in the middle of writing cells.h5 of the last job.
    let (ok, _, err) = miv_env(&args, &[("MIV_JOBS_FAIL", "neuroh5_graph:cells block")]);
    assert!(!ok, "{err}");
    let graph = Store::open(&store).list().unwrap().into_iter().find(|e| e.job.kind == "neuroh5_graph").unwrap();
    assert_eq!(graph.status, Status::Incomplete);
    assert!(!graph.dir.join("cells.h5").exists());

    // Without the failure the build completes, reusing the completed jobs and replacing the leftovers.
    let o = miv(&args).expect_ok("rebuild");
    let (cells, conns) = built_files(&o.stdout);
    assert!(cells.exists() && conns.exists());
    let entries = Store::open(&store).list().unwrap();
    assert_eq!(entries.len(), 13);
    assert!(
        entries.iter().all(|e| e.status == Status::Complete),
        "{:?}",
        entries.iter().map(|e| (&e.job, &e.status)).collect::<Vec<_>>()
    );
}
