//! Job semantics: a second `launch()` does no work, I/O tuning does not change identities, science fields do.
//! This binary runs jobs in-process and spawns nothing (see jobs_interrupt.rs).

mod common;

use common::paths::scratch;
use common::*;
use miv_config::NetworkConfig;
use miv_jobs::{build, runs_in_this_process, IoOptions, Launch, Status, Store};

/// The only test in this binary, so the run counter is its own.
#[test]
fn second_launch_does_no_work() {
    let dir = scratch("jobs_cache_second_launch");
    let net = NetworkConfig::load(&network_yaml(&dir, SMALL, 3)).unwrap();
    let store = Store::open(dir.join("store"));
    let start = runs_in_this_process();
    let first = build(&net, &store, &IoOptions::default()).unwrap();
    let ran = runs_in_this_process() - start;
    let jobs = first.jobs();
    assert_eq!(jobs.len(), 13, "h5_types, architecture, distances, 3 forests, 3 synapses, 3 connections, graph");
    assert_eq!(ran, jobs.len());
    assert!(!first.graph.cached());
    let cells = first.graph.files().cells;
    let stamp = std::fs::metadata(&cells).unwrap().modified().unwrap();

    // Same configuration, other I/O tuning: every job cached, nothing runs.
    let io = IoOptions { write_size: 3, chunk_size: 17, ..IoOptions::default() };
    let second = build(&net, &store, &io).unwrap();
    assert_eq!(runs_in_this_process() - start, ran, "a cached launch runs no job body");
    assert_eq!(second.jobs(), jobs);
    assert!(second.graph.cached() && second.synapses.values().all(|s| s.cached()) && second.h5_types.cached());
    assert_eq!(std::fs::metadata(&cells).unwrap().modified().unwrap(), stamp);
    assert!(second.graph.job.cached(&store));

    // A different seed changes every job that draws random numbers, not h5_types.
    let mut other = net.clone();
    other.seed = 4;
    let planned = miv_jobs::build::plan(&other, &IoOptions::default()).unwrap();
    assert_eq!(planned[0], jobs[0], "h5_types has no seed");
    assert!(planned[1..].iter().zip(&jobs[1..]).all(|(a, b)| a != b), "everything downstream of the seed changes");
    // A change to OLM's projections changes only OLM's connections and the graph.
    let mut other = net.clone();
    let olm = other.synapses.get_mut("OLM").unwrap().get_mut("PYR").unwrap();
    olm.mechanisms.values_mut().next().unwrap().get_mut("AMPA").unwrap().insert("weight".into(), 2.0);
    let planned = miv_jobs::build::plan(&other, &IoOptions::default()).unwrap();
    let changed: Vec<&str> = planned.iter().zip(&jobs).filter(|(a, b)| a != b).map(|(a, _)| a.kind.as_str()).collect();
    assert_eq!(changed, ["generate_connections", "neuroh5_graph"]);
    // Connections are listed by population (OLM, PVBC, PYR): OLM's changed, the others not.
    assert!(planned[9] != jobs[9] && planned[10..12] == jobs[10..12]);
    let entries = store.list().unwrap();
    assert_eq!(entries.len(), 13);
    assert!(entries.iter().all(|e| e.status == Status::Complete));
    assert_eq!(
        entries.iter().find(|e| e.job.kind == "h5_types").unwrap().config["job"]["population_definitions"]["PYR"],
        100
    );
}
