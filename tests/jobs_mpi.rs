//! Construction under MPI: the same files for 1, 2 and 4 ranks, and the mpirun executor.
#![cfg(feature = "mpi")]

mod common;
#[path = "common/jobs.rs"]
mod jobs_common;

use std::time::Duration;

use common::*;
use jobs_common::*;

const T: Duration = Duration::from_secs(300);
const MPI_ENV: [(&str, &str); 3] = [
    ("OMPI_ALLOW_RUN_AS_ROOT", "1"),
    ("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"),
    ("OMPI_MCA_rmaps_base_oversubscribe", "1"),
];

#[test]
fn same_files_for_1_2_and_4_ranks() {
    let dir = scratch("jobs_mpi_ranks");
    let net = network_yaml(&dir, SMALL, 11);
    let mut built = Vec::new();
    for n in [1usize, 2, 4] {
        let store = dir.join(format!("store{n}"));
        // Small write blocks, so every rank count writes several appends.
        let o =
            mpirun(n, &["build", net.to_str().unwrap(), "--store", store.to_str().unwrap(), "--write-size", "3"], T)
                .expect_ok(&format!("mpirun -n {n} miv build"));
        let (cells, conns) = built_files(&o.stdout);
        assert_eq!(o.stdout.matches("cells:").count(), 1, "rank 0 prints once");
        built.push((n, cells, conns));
    }
    let (_, c1, k1) = &built[0];
    for (n, c, k) in &built[1..] {
        assert_eq!(
            c.strip_prefix(dir.join(format!("store{n}"))).unwrap(),
            c1.strip_prefix(dir.join("store1")).unwrap(),
            "same job identities"
        );
        assert!(same_content(c1, c), "cells.h5 from {n} ranks differs from 1 rank");
        assert!(same_content(k1, k), "connections.h5 from {n} ranks differs from 1 rank");
    }
    // The intermediate files too.
    for kind in ["network_architecture", "measure_distances", "distribute_synapses", "generate_connections"] {
        for e in std::fs::read_dir(dir.join("store1").join(kind)).unwrap() {
            let d1 = e.unwrap().path();
            if !d1.is_dir() {
                continue; // a job's lock file
            }
            for f in std::fs::read_dir(&d1)
                .unwrap()
                .map(|f| f.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "h5"))
            {
                let f4 = dir.join("store4").join(kind).join(d1.file_name().unwrap()).join(f.file_name().unwrap());
                assert!(same_content(&f, &f4), "{kind}: {} differs between 1 and 4 ranks", f.display());
            }
        }
    }
}

#[test]
fn mpirun_executor_runs_each_job_on_n_ranks() {
    let dir = scratch("jobs_mpi_executor");
    let net = network_yaml(&dir, SMALL, 12);
    let local = dir.join("local");
    let o = miv(&["build", net.to_str().unwrap(), "--store", local.to_str().unwrap()]).expect_ok("local build");
    let (c_local, k_local) = built_files(&o.stdout);
    let store = dir.join("mpirun");
    let (ok, out, err) = miv_env(
        &["build", net.to_str().unwrap(), "--store", store.to_str().unwrap(), "--executor", "mpirun", "--ranks", "2"],
        &MPI_ENV,
    );
    assert!(ok, "miv build --executor mpirun failed:\n{out}\n{err}");
    let (c, k) = built_files(&out);
    assert!(same_content(&c_local, &c) && same_content(&k_local, &k));
    // Every job ran on 2 ranks (meta.json records it).
    for e in miv::jobs::Store::open(&store).list().unwrap() {
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(e.dir.join("meta.json")).unwrap()).unwrap();
        assert_eq!(meta["ranks"], 2, "{}", e.job);
        // The job's own process: a peak of a few MiB to a few hundred for this small network.
        let rss = meta["peak_rss_mib"].as_f64().unwrap_or(f64::NAN);
        assert!(rss > 1.0 && rss < 2048.0, "{}: peak_rss_mib {rss}", e.job);
    }
}
