//! `miv bench scaling`: the Slurm study (scripts checked and run through a fake `sbatch`, as Slurm would), the
//! collector's CSV and PNG, and the local 1 and 2 rank study (spikes of the strong study identical).
#![cfg(feature = "mpi")]

mod common;
#[path = "common/jobs.rs"]
mod jobs_common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::*;
use jobs_common::*;

const FAKE_SBATCH: &str = r#"#!/bin/bash
# Fake sbatch: record the call and print a job id (--parsable).
log="$FAKE_SBATCH_LOG"
n=$(( $(ls "$log" | grep -c '\.sh$') + 1001 ))
script="${@: -1}"
cp "$script" "$log/$n.sh"
echo "$@" > "$log/$n.args"
echo "$n"
"#;

fn fake_path(dir: &Path) -> (String, PathBuf) {
    let bin = dir.join("bin");
    let log = dir.join("sbatch-log");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&log).unwrap();
    let f = bin.join("sbatch");
    std::fs::write(&f, FAKE_SBATCH).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
    (format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()), log)
}

fn csv_rows(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let head: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    r.records().map(|rec| head.iter().cloned().zip(rec.unwrap().iter().map(str::to_string)).collect()).collect()
}

fn png_size(path: &Path) -> (u32, u32) {
    let d = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let r = d.read_info().unwrap();
    (r.info().width, r.info().height)
}

fn mpi_env(cmd: &mut std::process::Command) -> &mut std::process::Command {
    cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
}

#[test]
fn slurm_study_submits_every_case_and_a_collector_after_them() {
    let dir = scratch("bench_scaling_slurm");
    let study = dir.join("study");
    let (path, log) = fake_path(&dir);
    let log_s = log.to_str().unwrap().to_string();
    let example = repo_root().join("examples/rc-network");
    let args = [
        "bench",
        "scaling",
        "write",
        "--out",
        study.to_str().unwrap(),
        "--nodes",
        "1,2,4",
        "--tasks-per-node",
        "1",
        "--busyring-cells",
        "40",
        "--busyring-cells-per-node",
        "20",
        "--rc-scale",
        "3",
        "--rc-example",
        example.to_str().unwrap(),
        "--t-end",
        "12",
        "--reps",
        "2",
        "--partition",
        "debug",
        "--module",
        "openmpi/4.1",
        "--launcher",
        "mpirun -n {{ntasks}}",
    ];
    let (ok, out, err) = miv_env(&args, &[("PATH", &path), ("FAKE_SBATCH_LOG", &log_s)]);
    assert!(ok, "{out}\n{err}");
    let mut scripts: Vec<(u32, String)> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sh"))
        .map(|p| (p.file_stem().unwrap().to_str().unwrap().parse().unwrap(), std::fs::read_to_string(&p).unwrap()))
        .collect();
    scripts.sort();
    // 2 studies x 2 networks x 3 node counts, then the collector.
    assert_eq!(scripts.len(), 13, "{out}");
    for (i, (study_name, network)) in
        [("strong", "busyring"), ("strong", "rc"), ("weak", "busyring"), ("weak", "rc")].iter().enumerate()
    {
        for (j, nodes) in [1u32, 2, 4].iter().enumerate() {
            let s = &scripts[3 * i + j].1;
            let name = format!("{study_name}-{network}-{nodes:03}n");
            for want in [
                format!("#SBATCH --job-name=miv-scaling-{name}"),
                format!("#SBATCH --nodes={nodes}"),
                format!("#SBATCH --ntasks={nodes}"),
                "#SBATCH --partition=debug".into(),
                "module load openmpi/4.1".into(),
                format!("mpirun -n {nodes} "),
            ] {
                assert!(s.contains(&want), "{want:?} missing in\n{s}");
            }
            assert!(!s.contains("--dependency"), "{s}");
            let size = match (*study_name, *network) {
                ("strong", "busyring") => 40,
                ("weak", "busyring") => 20 * nodes,
                ("strong", _) => 3,
                _ => *nodes,
            };
            let case: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(study.join(&name).join("case.json")).unwrap()).unwrap();
            assert_eq!(case["size"], size, "{name}");
            assert_eq!(case["ranks"], *nodes, "{name}");
            if *network == "busyring" {
                assert!(s.contains(&format!("gen busyring --n {size} --t-end 12 --out net")), "{s}");
            } else {
                // PYR of examples/rc-network is 223 cells in SP; STIM stays 64.
                let net = std::fs::read_to_string(study.join(&name).join("network.yaml")).unwrap();
                let v: serde_json::Value = serde_norway::from_str(&net).unwrap();
                assert_eq!(v["cell_distributions"]["PYR"]["SP"], 223 * size, "{net}");
                assert_eq!(v["cell_distributions"]["PVBC"]["SO"], 35 * size, "{net}");
                assert_eq!(v["cell_distributions"]["STIM"]["SP"], 64, "{net}");
                assert!(study.join("rc-inputs/morphology/PYR.swc").is_file());
                assert!(s.contains("build network.yaml --store store"), "{s}");
            }
        }
    }
    let collector = &scripts[12].1;
    let deps: Vec<&str> =
        collector.lines().find_map(|l| l.strip_prefix("#SBATCH --dependency=afterany:")).unwrap().split(':').collect();
    assert_eq!(
        deps,
        (1001..=1012).map(|i| i.to_string()).collect::<Vec<_>>().iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(collector.contains("bench scaling collect"), "{collector}");

    // "Slurm" runs the busyring cases (the rc ones are left out: the collector reports them missing).
    for (_, s) in scripts.iter().filter(|(_, s)| s.contains("busyring")) {
        let mut cmd = std::process::Command::new("bash");
        cmd.arg("-c").arg(format!("module() {{ :; }}; export -f module; bash -c {}", shell(s)));
        let o = mpi_env(&mut cmd).output().unwrap();
        assert!(o.status.success(), "{s}\n{}", String::from_utf8_lossy(&o.stderr));
    }
    let mut cmd = std::process::Command::new("bash");
    cmd.arg("-c").arg(format!("module() {{ :; }}; export -f module; bash -c {}", shell(collector)));
    let o = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("no results yet") && stderr.contains("strong-rc-001n"), "{stderr}");
    let rows = csv_rows(&study.join("scaling.csv"));
    assert_eq!(rows.len(), 6, "{rows:?}");
    let strong: Vec<_> = rows.iter().filter(|r| r["study"] == "strong").collect();
    let weak: Vec<_> = rows.iter().filter(|r| r["study"] == "weak").collect();
    for r in &rows {
        assert_eq!(r["runs"], "2");
        let cells: u64 = r["cells"].parse().unwrap();
        assert_eq!(r["connections"].parse::<u64>().unwrap(), 11 * cells, "ring + 10 fan-in per cell");
        let (lo, med, hi): (f64, f64, f64) =
            (r["run_s_min"].parse().unwrap(), r["run_s_median"].parse().unwrap(), r["run_s_max"].parse().unwrap());
        assert!(lo > 0.0 && lo <= med && med <= hi, "{r:?}");
    }
    for r in &strong {
        assert_eq!(r["cells"], "40");
        assert_eq!(r["spikes"], strong[0]["spikes"], "strong study: same spikes on 1, 2 and 4 ranks");
        assert_eq!(r["spikes_match"], "true");
    }
    for (r, n) in weak.iter().zip([1, 2, 4]) {
        assert_eq!(r["cells"], (20 * n).to_string());
        assert_eq!(r["spikes_match"], "");
    }
    // Efficiency: 1 at the smallest node count; the strong one is T1 / (n Tn).
    let f = |r: &std::collections::HashMap<String, String>, k: &str| r[k].parse::<f64>().unwrap();
    assert_eq!(f(strong[0], "efficiency"), 1.0);
    let want = f(strong[2], "run_s_median").recip() * f(strong[0], "run_s_median") / 4.0;
    assert!((f(strong[2], "efficiency") - want).abs() < 1e-9 * want.abs().max(1.0));
    let want = f(weak[1], "run_s_median").recip() * f(weak[0], "run_s_median");
    assert!((f(weak[1], "efficiency") - want).abs() < 1e-9 * want.abs().max(1.0));
    let spikes = |n: u32| std::fs::read(study.join(format!("strong-busyring-{n:03}n/net/spikes.csv"))).unwrap();
    assert_eq!(spikes(1), spikes(2));
    assert_eq!(spikes(1), spikes(4));
    assert_eq!(png_size(&study.join("scaling.png")), (1400, 600));
}

fn shell(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[test]
fn local_study_runs_one_and_two_ranks_with_the_same_spikes() {
    let dir = scratch("bench_scaling_local");
    let study = dir.join("study");
    let mut cmd = std::process::Command::new(miv_bin());
    cmd.args([
        "bench",
        "scaling",
        "local",
        "--out",
        study.to_str().unwrap(),
        "--networks",
        "busyring",
        "--busyring-cells",
        "60",
        "--busyring-cells-per-node",
        "30",
        "--t-end",
        "25",
        "--reps",
        "2",
    ]);
    let o = mpi_env(&mut cmd).output().unwrap();
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{out}\n{err}");
    // Interleaved: every case's first run before any second run.
    let order: Vec<&str> = err.lines().filter(|l| l.contains(" rep ")).collect();
    assert_eq!(order.len(), 8, "{err}");
    assert!(order[..4].iter().all(|l| l.contains("rep 1")) && order[4..].iter().all(|l| l.contains("rep 2")), "{err}");
    let rows = csv_rows(&study.join("scaling.csv"));
    assert_eq!(rows.len(), 4);
    let key = |r: &std::collections::HashMap<String, String>| {
        (r["study"].clone(), r["nodes"].clone(), r["ranks"].clone(), r["cells"].clone())
    };
    let keys: Vec<_> = rows.iter().map(key).collect();
    let s = |a: &str, b: &str, c: &str, d: &str| (a.to_string(), b.to_string(), c.to_string(), d.to_string());
    assert_eq!(
        keys,
        vec![
            s("strong", "1", "1", "60"),
            s("strong", "2", "2", "60"),
            s("weak", "1", "1", "30"),
            s("weak", "2", "2", "60")
        ]
    );
    assert_eq!(rows[0]["spikes"], rows[1]["spikes"]);
    assert_eq!(rows[1]["spikes_match"], "true");
    assert!(rows[0]["spikes"].parse::<u64>().unwrap() > 0);
    let a = std::fs::read(study.join("strong-busyring-001n/net/spikes.csv")).unwrap();
    let b = std::fs::read(study.join("strong-busyring-002n/net/spikes.csv")).unwrap();
    assert!(a.len() > 20 && a == b, "1 and 2 ranks write the same spikes");
    // The weak 2-rank network is the strong one's size: the same spikes again.
    assert_eq!(rows[3]["spikes"], rows[0]["spikes"]);
    assert!(out.contains("scaling.png") && study.join("scaling.png").is_file());
}

#[test]
fn bad_arguments_name_what_was_expected() {
    let dir = scratch("bench_scaling_bad");
    let out = dir.join("s");
    let o = miv(&["bench", "scaling", "local", "--out", out.to_str().unwrap(), "--networks", "ring"]);
    assert!(!o.ok() && o.stderr.contains("--networks") && o.stderr.contains("busyring, rc"), "{}", o.stderr);
    let o = miv(&["bench", "scaling", "write", "--out", out.to_str().unwrap(), "--nodes", "1,x", "--no-submit"]);
    assert!(!o.ok() && o.stderr.contains("--nodes"), "{}", o.stderr);
    let o = miv(&[
        "bench",
        "scaling",
        "write",
        "--out",
        out.to_str().unwrap(),
        "--no-submit",
        "--rc-example",
        dir.join("nowhere").to_str().unwrap(),
    ]);
    assert!(!o.ok() && o.stderr.contains("--rc-example") && o.stderr.contains("network.yaml"), "{}", o.stderr);
    // Slurm values are checked before any case directory is written.
    let fresh = dir.join("refused");
    let o = miv(&["bench", "scaling", "write", "--out", fresh.to_str().unwrap(), "--no-submit", "--time", "soon"]);
    assert!(!o.ok() && o.stderr.contains("--time"), "{}", o.stderr);
    assert!(!fresh.exists(), "a refused study must write nothing");
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    let o = miv(&["bench", "scaling", "collect", dir.join("empty").to_str().unwrap()]);
    assert!(!o.ok() && o.stderr.contains("no case directory with results"), "{}", o.stderr);
}
