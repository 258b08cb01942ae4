//! `miv build` at the command line: the plan of a dry run, and configuration errors that name the file and key.

mod common;
#[path = "common/jobs.rs"]
mod jobs_common;

use common::*;
use jobs_common::*;

#[test]
fn dry_run_lists_the_jobs_and_what_is_cached() {
    let dir = scratch("jobs_cli_plan");
    let net = network_yaml(&dir, SMALL, 31);
    let store = dir.join("store");
    let plan = |o: &Outcome| {
        o.stdout.lines().map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>()).collect::<Vec<_>>()
    };
    let args = ["build", net.to_str().unwrap(), "--store", store.to_str().unwrap(), "--dry-run"];
    let before = plan(&miv(&args).expect_ok("dry run"));
    assert_eq!(before.len(), 13);
    assert!(before.iter().all(|l| l[2..] == ["would", "run"]), "{before:?}");
    assert!(!store.exists(), "a dry run writes nothing");
    let built = miv(&args[..4]).expect_ok("build");
    let (cells, _) = built_files(&built.stdout);
    let after = plan(&miv(&args).expect_ok("dry run"));
    assert!(after.iter().all(|l| l[2] == "cached"), "{after:?}");
    // The plan's last job is the graph whose directory holds the files.
    assert_eq!(after[12][0], "neuroh5_graph");
    assert!(cells.parent().unwrap().ends_with(&after[12][1]));
}

#[test]
fn configuration_errors_name_file_and_key() {
    let dir = scratch("jobs_cli_errors");
    let net = network_yaml(&dir, SMALL, 32);
    let text = std::fs::read_to_string(&net).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, text.replace("STIM: 0, PYR: 100", "STIM: 0, PYX: 100")).unwrap();
    let o = miv(&["build", bad.to_str().unwrap(), "--store", dir.join("s").to_str().unwrap()]);
    assert!(!o.ok());
    assert!(o.stderr.contains("bad.yaml") && o.stderr.contains("PYR"), "{}", o.stderr);
    // A bad value inside a referenced MiV file names that file.
    let types = std::fs::read_to_string(example_dir().join("cell_types.yml")).unwrap();
    let ct = dir.join("cell_types.yml");
    std::fs::write(&ct, types.replacen("SLM: {mean: 0.90, variance: 0.1}", "SLM: {mean: 0.90, varianse: 0.1}", 1))
        .unwrap();
    let cfg = text
        .lines()
        .map(|l| if l.starts_with("cell_types:") { format!("cell_types: {}", ct.display()) } else { l.to_string() })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&bad, cfg).unwrap();
    let o = miv(&["build", bad.to_str().unwrap(), "--store", dir.join("s").to_str().unwrap()]);
    assert!(!o.ok());
    assert!(
        o.stderr.contains(&format!("{}: key `PYR.synapses.density.apical.excitatory.SLM", ct.display()))
            && o.stderr.contains("varianse"),
        "{}",
        o.stderr
    );
}

#[test]
fn uniform_distribution_builds_and_places_evenly_spaced_synapses() {
    let dir = scratch("jobs_cli_uniform");
    let net = network_yaml(&dir, SMALL, 33);
    let text = std::fs::read_to_string(&net).unwrap().replace("distribution: poisson", "distribution: uniform");
    std::fs::write(&net, text).unwrap();
    let o = miv(&["build", net.to_str().unwrap(), "--store", dir.join("store").to_str().unwrap()])
        .expect_ok("uniform build");
    let (cells, _) = built_files(&o.stdout);
    let f = open(&cells);
    let syn = read_all(&f, "OLM", miv::io::names::SYNAPSE_ATTRIBUTES);
    let gid = syn.gids()[0];
    let secs = syn.get::<u32>(miv::io::names::SYN_SECS, gid).unwrap();
    let locs = syn.get::<f32>(miv::io::names::SYN_LOCS, gid).unwrap();
    let types = syn.get::<u8>(miv::io::names::SYN_TYPES, gid).unwrap();
    assert!(!locs.is_empty());
    // Within a run of one section and type the gaps are equal inside a segment (uniform spacing).
    let mut equal_gaps = 0;
    for w in 0..locs.len().saturating_sub(2) {
        if secs[w] == secs[w + 2] && types[w] == types[w + 2] {
            let (a, b) = (locs[w + 1] - locs[w], locs[w + 2] - locs[w + 1]);
            if (a - b).abs() < 1e-4 {
                equal_gaps += 1;
            }
        }
    }
    assert!(equal_gaps as f64 > 0.8 * locs.len() as f64, "{equal_gaps} of {}", locs.len());
}
