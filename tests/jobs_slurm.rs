//! The Slurm executor with a fake `sbatch` on PATH: it records each script and its arguments and prints a job
//! id. The test then checks the scripts and runs them in submission order, as Slurm would after their
//! dependencies, and the chain completes.

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

/// Run a recorded batch script the way Slurm would (no environment modules here: record the loads).
fn run_script(script: &Path, modules: &Path) -> bool {
    let wrapper = format!(
        "module() {{ echo \"$*\" >> '{}'; }}; export -f module; bash '{}'",
        modules.display(),
        script.display()
    );
    std::process::Command::new("bash").arg("-c").arg(wrapper).status().unwrap().success()
}

fn fake_path(dir: &Path) -> (String, std::path::PathBuf) {
    let bin = dir.join("bin");
    let log = dir.join("sbatch-log");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&log).unwrap();
    let f = bin.join("sbatch");
    std::fs::write(&f, FAKE_SBATCH).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
    (format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()), log)
}

/// `miv build` of a small network (placement seed `seed`) with the Slurm executor and a fake `sbatch`; returns
/// the network YAML, the store, the folder of recorded scripts and the build's stdout.
fn slurm_build(dir: &Path, seed: u64, extra: &[&str]) -> (PathBuf, PathBuf, PathBuf, String) {
    let net = network_yaml(dir, SMALL, seed);
    let store = dir.join("store");
    let (path, log) = fake_path(dir);
    let mut args = vec!["build", net.to_str().unwrap(), "--store", store.to_str().unwrap(), "--executor", "slurm"];
    args.extend_from_slice(extra);
    let log_s = log.to_str().unwrap().to_string();
    let (ok, out, err) = miv_env(&args, &[("PATH", &path), ("FAKE_SBATCH_LOG", &log_s)]);
    assert!(ok, "{out}\n{err}");
    (net, store, log, out + &err)
}

#[test]
fn slurm_executor_submits_every_job_after_what_it_uses() {
    let dir = scratch("jobs_slurm");
    let extra = [
        "--ranks",
        "4",
        "--nodes",
        "2",
        "--time",
        "00:10:00",
        "--partition",
        "debug",
        "--account",
        "proj",
        "--module",
        "openmpi/4.1",
        "--module",
        "hdf5",
        "--launcher",
        "env",
    ];
    let (_, store, log, out) = slurm_build(&dir, 21, &extra);
    let err = &out;
    let mut scripts: Vec<(u32, String, String)> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sh"))
        .map(|p| {
            let id: u32 = p.file_stem().unwrap().to_str().unwrap().parse().unwrap();
            (id, std::fs::read_to_string(&p).unwrap(), std::fs::read_to_string(p.with_extension("args")).unwrap())
        })
        .collect();
    scripts.sort();
    assert_eq!(scripts.len(), 13, "one batch job per construction job");
    for (_, s, a) in &scripts {
        assert!(a.starts_with("--parsable "), "{a}");
        for line in [
            "#SBATCH --nodes=2",
            "#SBATCH --ntasks=4",
            "#SBATCH --time=00:10:00",
            "#SBATCH --partition=debug",
            "#SBATCH --account=proj",
            "module load openmpi/4.1",
            "module load hdf5",
        ] {
            assert!(s.lines().any(|l| l == line), "missing `{line}` in\n{s}");
        }
        assert!(s.contains(" jobs exec --store ") && s.starts_with("#!/bin/bash"), "{s}");
    }

    // h5_types (first) depends on nothing; nothing else was submitted before it.
    assert!(!scripts[0].1.contains("--dependency"));
    assert!(scripts[0].1.contains("--kind h5_types"));
    // The architecture waits for h5_types (job 1001); the graph waits for everything it merges (11 jobs).
    let arch = scripts.iter().find(|s| s.1.contains("--kind network_architecture")).unwrap();
    assert!(arch.1.contains("#SBATCH --dependency=afterok:1001\n"), "{}", arch.1);
    let graph = scripts.iter().find(|s| s.1.contains("--kind neuroh5_graph")).unwrap();
    let deps = graph.1.lines().find_map(|l| l.strip_prefix("#SBATCH --dependency=afterok:")).unwrap();
    assert_eq!(deps.split(':').count(), 11, "{deps}");
    assert!(err.contains("submitted: the files appear when Slurm job 1013 completes"), "{err}");
    let (cells, conns) = built_files(&out);
    assert!(!cells.exists());
    let (ok, ls, _) = miv_env(&["jobs", "ls", "--store", store.to_str().unwrap()], &[]);
    assert!(ok && ls.matches("submitted 10").count() == 13, "{ls}");
    // "Slurm" runs the jobs in order; then the files exist where `miv build` said.
    for (id, _, _) in &scripts {
        let modules = log.join(format!("{id}.modules"));
        assert!(run_script(&log.join(format!("{id}.sh")), &modules), "batch job {id} failed");
        assert_eq!(std::fs::read_to_string(&modules).unwrap(), "load openmpi/4.1\nload hdf5\n");
    }
    assert!(cells.exists() && conns.exists());
    let (ok, ls, _) = miv_env(&["jobs", "ls", "--store", store.to_str().unwrap()], &[]);
    assert!(ok && ls.matches("complete").count() == 13, "{ls}");
}

#[test]
fn slurm_dry_run_prints_scripts_and_submits_nothing() {
    let dir = scratch("jobs_slurm_dry");
    let net = network_yaml(&dir, SMALL, 22);
    let store = dir.join("store");
    let (path, log) = fake_path(&dir);
    let log_s = log.to_str().unwrap().to_string();
    let (ok, out, err) = miv_env(
        &[
            "build",
            net.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
            "--executor",
            "slurm",
            "--dry-run",
            "--ranks",
            "8",
        ],
        &[("PATH", &path), ("FAKE_SBATCH_LOG", &log_s)],
    );
    assert!(ok, "{out}\n{err}");
    assert_eq!(std::fs::read_dir(&log).unwrap().count(), 0, "nothing submitted");
    assert_eq!(out.matches("#!/bin/bash").count(), 13, "{out}");
    assert_eq!(out.matches("#SBATCH --ntasks=8").count(), 13);
    assert!(out.contains("srun "), "default launcher");
    let (ok, ls, _) = miv_env(&["jobs", "ls", "--store", store.to_str().unwrap()], &[]);
    assert!(ok && ls.matches("prepared (dry run)").count() == 13, "{ls}");
}

#[test]
fn miv_run_slurm_submits_a_script_that_runs_the_experiment() {
    let dir = scratch("run_slurm");
    let net = dir.join("ring");
    let o = miv(&["gen", "ring", "--n", "6", "--out", net.to_str().unwrap()]);
    assert!(o.ok(), "{}", o.stderr);
    let exp = net.join("experiment.yaml");
    let (path, log) = fake_path(&dir);
    let log_s = log.to_str().unwrap().to_string();
    let args = [
        "run",
        exp.to_str().unwrap(),
        "--slurm",
        "--ranks",
        "2",
        "--nodes",
        "1",
        "--time",
        "00:05:00",
        "--partition",
        "debug",
        "--module",
        "openmpi/4.1",
        "--launcher",
        "env",
    ];
    let (ok, out, err) = miv_env(&args, &[("PATH", &path), ("FAKE_SBATCH_LOG", &log_s)]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("as Slurm job 1001"), "{out}");
    let script = std::fs::read_to_string(log.join("1001.sh")).unwrap();
    for want in [
        "#SBATCH --ntasks=2",
        "#SBATCH --nodes=1",
        "#SBATCH --time=00:05:00",
        "#SBATCH --partition=debug",
        "module load openmpi/4.1",
    ] {
        assert!(script.contains(want), "{want:?} missing in:\n{script}");
    }
    assert!(!script.contains("--account"), "no account given, no account line:\n{script}");
    // Running the script (as Slurm would) runs the experiment.
    let modules = dir.join("modules-loaded");
    assert!(run_script(&log.join("1001.sh"), &modules));
    let spikes = std::fs::read_to_string(net.join("spikes.csv")).unwrap();
    assert!(spikes.lines().count() > 5, "{spikes}");
    // A bad experiment is refused before anything is submitted.
    std::fs::write(net.join("bad.yaml"), "cells: nowhere.h5\ncell_types: cell_types.yml\nt_end: -1\n").unwrap();
    let bad = net.join("bad.yaml");
    let (ok, _, err) =
        miv_env(&["run", bad.to_str().unwrap(), "--slurm"], &[("PATH", &path), ("FAKE_SBATCH_LOG", &log_s)]);
    assert!(!ok && err.contains("t_end"), "{err}");
    assert!(!log.join("1002.sh").exists());
}

#[test]
fn miv_study_slurm_submits_one_job_that_runs_the_whole_study() {
    let dir = scratch("study_slurm");
    let net = dir.join("ring");
    miv(&["gen", "ring", "--n", "6", "--stim", "3", "--out", net.to_str().unwrap()]).expect_ok("miv gen");
    let exp = net.join("experiment.yaml");
    let text = std::fs::read_to_string(&exp).unwrap();
    let text = text.replace("output:", "lfp:\n  - {label: e, position: [100, 20, 0], dt_lfp: 0.5, fdst: 1.0}\noutput:");
    std::fs::write(&exp, text).unwrap();
    let study = net.join("study.yaml");
    std::fs::write(
        &study,
        "experiment: experiment.yaml\nstimulus_population: STIM\ndistances: [0, 0.2]\ntrials: 3\nt_end: 50\nseed: 3\n",
    )
    .unwrap();
    let (path, log) = fake_path(&dir);
    let log_s = log.to_str().unwrap().to_string();
    let out = dir.join("out dir"); // a space: the path must reach the script quoted
    let s = study.to_str().unwrap();
    let args =
        ["study", s, "--out", out.to_str().unwrap(), "--trials", "2", "--slurm", "--ranks", "2", "--launcher", "env"];
    let (ok, stdout, err) = miv_env(&args, &[("PATH", &path), ("FAKE_SBATCH_LOG", &log_s)]);
    assert!(ok, "{stdout}\n{err}");
    assert!(stdout.contains("as Slurm job 1001"), "{stdout}");
    let script = std::fs::read_to_string(log.join("1001.sh")).unwrap();
    assert!(script.contains("#SBATCH --ntasks=2"), "{script}");
    assert!(script.contains(" study ") && script.contains("--trials 2"), "{script}");
    assert!(!out.join("separation.csv").exists(), "submitting must not run the study");
    // Running the script (as Slurm would) runs the study; its results equal a direct run's.
    assert!(run_script(&log.join("1001.sh"), &dir.join("modules-loaded")));
    let direct = dir.join("direct");
    miv(&["study", s, "--out", direct.to_str().unwrap(), "--trials", "2"]).expect_ok("direct study");
    let a = std::fs::read_to_string(out.join("separation.csv")).unwrap();
    assert_eq!(a, std::fs::read_to_string(direct.join("separation.csv")).unwrap());
    assert!(a.lines().count() > 100, "{a}");
    // A bad study is refused before anything is submitted.
    std::fs::write(net.join("bad.yaml"), "experiment: experiment.yaml\ndistances: [0]\ntrials: 0\nt_end: 50\n")
        .unwrap();
    let bad = net.join("bad.yaml");
    let (ok, _, err) = miv_env(
        &["study", bad.to_str().unwrap(), "--out", out.to_str().unwrap(), "--slurm"],
        &[("PATH", &path), ("FAKE_SBATCH_LOG", &log_s)],
    );
    assert!(!ok && err.contains("trials"), "{err}");
    assert!(!log.join("1002.sh").exists());
}

#[test]
fn slurm_values_are_checked_and_quoted() {
    let dir = scratch("run_slurm_values");
    let net = dir.join("ring net");
    miv(&["gen", "ring", "--n", "4", "--out", net.to_str().unwrap()]).expect_ok("gen");
    let exp = net.join("experiment.yaml");
    let (path, log) = fake_path(&dir);
    let log_s = log.to_str().unwrap().to_string();
    let env = [("PATH", path.as_str()), ("FAKE_SBATCH_LOG", log_s.as_str())];
    let e = exp.to_str().unwrap();
    // Each bad value is refused before anything is written or submitted, naming the option.
    let bad: [(&[&str], &str); 8] = [
        (&["--ranks", "0"], "--ranks"),
        (&["--ranks", "2", "--nodes", "3"], "--nodes"),
        (&["--time", "banana"], "--time"),
        (&["--time", "1:2:3:4"], "--time"),
        (&["--partition", ""], "--partition"),
        (&["--account", "a b"], "--account"),
        (&["--module", "x; rm -rf ~"], "--module"),
        (&["--launcher", "srun $(id)"], "--launcher"),
    ];
    for (extra, opt) in bad {
        let mut a = vec!["run", e, "--slurm"];
        a.extend_from_slice(extra);
        let (ok, _, err) = miv_env(&a, &env);
        assert!(!ok && err.contains(opt), "{extra:?}: {err}");
        assert!(!net.join("experiment.sbatch").exists(), "{extra:?}: a script was written");
        assert_eq!(std::fs::read_dir(&log).unwrap().count(), 0, "{extra:?}: submitted");
    }
    // Good values: the log path with a space is quoted, threads ask for CPUs, modules load before `set -u`.
    let a = ["run", e, "--slurm", "--threads", "4", "--time", "1-00:30", "--module", "hdf5/1.14", "--launcher", "env"];
    let (ok, out, err) = miv_env(&a, &env);
    assert!(ok, "{out}\n{err}");
    let script = std::fs::read_to_string(log.join("1001.sh")).unwrap();
    let want_log = format!("#SBATCH --output=\"{}/slurm-%j.out\"", net.display());
    assert!(script.lines().any(|l| l == want_log), "{want_log} missing in:\n{script}");
    assert!(script.lines().any(|l| l == "#SBATCH --cpus-per-task=4"), "{script}");
    assert!(script.lines().any(|l| l == "#SBATCH --time=1-00:30"), "{script}");
    let lines: Vec<&str> = script.lines().collect();
    let module = lines.iter().position(|l| *l == "module load hdf5/1.14").unwrap();
    let set_u = lines.iter().position(|l| *l == "set -u").unwrap();
    assert!(module < set_u, "{script}");
    assert!(!lines[..module].iter().any(|l| l.starts_with("set -") && l.contains('u')), "{script}");
    // The script runs (the experiment's folder has a space) with --threads passed on.
    assert!(script.contains("--threads 4"), "{script}");
    let modules = dir.join("modules-loaded");
    assert!(run_script(&log.join("1001.sh"), &modules));
    assert!(net.join("spikes.csv").exists());
}

#[test]
fn slurm_build_logs_are_outside_the_partial_directories() {
    let dir = scratch("jobs_slurm_logs");
    let (_, store, log, _) = slurm_build(&dir, 23, &[]);
    let script = std::fs::read_to_string(log.join("1001.sh")).unwrap();
    let out_line = script.lines().find(|l| l.starts_with("#SBATCH --output=")).unwrap();
    let logs = store.join("logs");
    assert!(logs.is_dir());
    assert!(out_line.starts_with(&format!("#SBATCH --output={}/h5_types-", logs.display())), "{out_line}");
    assert!(!out_line.contains(".partial"), "{out_line}");
}

#[test]
fn slurm_batch_jobs_hold_the_store_lock_and_leave_jobs_completed_meanwhile() {
    let dir = scratch("jobs_slurm_lock");
    let (net, store, log, _) = slurm_build(&dir, 24, &["--launcher", "env"]);
    let script = |n: u32| log.join(format!("{n}.sh"));
    assert!(std::fs::read_to_string(script(1001)).unwrap().contains("--kind h5_types"));

    // Another process holds h5_types' lock: its batch job waits until the holder lets go.
    let lock = std::fs::read_dir(store.join("h5_types"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().ends_with(".lock"))
        .expect("the build locked h5_types");
    let (ready, released) = (dir.join("holder-ready"), dir.join("holder-released"));
    let hold = format!("touch '{}'; sleep 2; touch '{}'", ready.display(), released.display());
    let mut holder = std::process::Command::new("flock").arg(&lock).arg("-c").arg(hold).spawn().unwrap();
    while !ready.exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(run_script(&script(1001), &dir.join("modules")), "batch job 1001 failed");
    assert!(released.exists(), "the batch job ran while another process held the job's lock");
    assert!(holder.wait().unwrap().success());

    // A local build runs the rest (the submitted jobs are not running: their locks are free); the batch jobs
    // that Slurm starts afterwards find their jobs complete and leave them.
    let (ok, out, err) = miv_env(&["build", net.to_str().unwrap(), "--store", store.to_str().unwrap()], &[]);
    assert!(ok, "{out}\n{err}");
    let (cells, conns) = built_files(&out);
    let before = (std::fs::read(&cells).unwrap(), std::fs::read(&conns).unwrap());
    for n in 1002..=1013 {
        assert!(run_script(&script(n), &dir.join("modules")), "batch job {n} failed on a completed job");
    }
    assert_eq!((std::fs::read(&cells).unwrap(), std::fs::read(&conns).unwrap()), before);
    let (ok, ls, _) = miv_env(&["jobs", "ls", "--store", store.to_str().unwrap()], &[]);
    assert!(ok && ls.matches("complete").count() == 13, "{ls}");
}
