//! `miv study`: the separation study on one loaded network, cached per run, resumed, extended, its CSV and
//! PNG, its errors; the same results on 2 ranks.

mod common;
use common::*;
use std::path::{Path, PathBuf};

/// A 6-cell ring driven by 3 STIM cells with an LFP electrode, and a 2-trial, 50 ms study of it.
fn setup(name: &str, n: &str) -> PathBuf {
    let dir = scratch(name);
    let net = dir.join("net");
    let o = net.to_str().unwrap().to_string();
    miv(&["gen", "ring", "--n", n, "--stim", "3", "--out", &o]).expect_ok("miv gen");
    let exp = net.join("experiment.yaml");
    let text = std::fs::read_to_string(&exp).unwrap();
    let text = text.replace("output:", "lfp:\n  - {label: e, position: [100, 20, 0], dt_lfp: 0.5, fdst: 1.0}\noutput:");
    std::fs::write(&exp, text).unwrap();
    let study = net.join("study.yaml");
    std::fs::write(
        &study,
        "experiment: experiment.yaml\nstimulus_population: STIM\ndistances: [0, 0.2]\ntrials: 2\nt_end: 50\nseed: 3\n",
    )
    .unwrap();
    study
}

fn study(s: &Path, out: &Path, extra: &[&str]) -> Outcome {
    let mut a = vec!["study", s.to_str().unwrap(), "--out", out.to_str().unwrap()];
    a.extend_from_slice(extra);
    miv(&a)
}

fn csv(out: &Path) -> Vec<(f64, f64, f64, f64)> {
    let text = std::fs::read_to_string(out.join("separation.csv")).unwrap();
    assert!(text.starts_with("distance,t_ms,mean,sd\n"));
    text.lines()
        .skip(1)
        .map(|l| {
            let v: Vec<f64> = l.split(',').map(|x| x.parse().unwrap()).collect();
            (v[0], v[1], v[2], v[3])
        })
        .collect()
}

#[test]
fn study_runs_resumes_extends_and_draws() {
    let s = setup("study_cli", "6");
    let out = s.parent().unwrap().join("out");
    let o = study(&s, &out, &[]).expect_ok("study");
    assert!(o.stdout.contains("6 runs simulated, 0 read from the cache"), "{}", o.stdout);
    let rows = csv(&out);
    // Two distances x 101 samples (LFP every 0.5 ms over 50 ms).
    assert_eq!(rows.len(), 2 * 101);
    assert!(rows.iter().all(|r| r.3 >= 0.0 && r.2 >= 0.0 && r.2.is_finite()));
    // At t = 0 nothing differs yet; d = 0.2 differs later (different inputs); d = 0 (same input, other initial
    // voltages) differs much less than d = 0.2.
    assert!(rows.iter().filter(|r| r.1 == 0.0).all(|r| r.2 == 0.0 && r.3 == 0.0));
    let mean = |d: f64| rows.iter().filter(|r| r.0 == d).map(|r| r.2).sum::<f64>() / 101.0;
    assert!(mean(0.2) > 0.0);
    assert!(mean(0.0) < mean(0.2), "d=0 {} vs d=0.2 {}", mean(0.0), mean(0.2));
    let h = hdf5::File::open(out.join("readouts.h5")).unwrap();
    let u: Vec<f64> = h.dataset("distance 0.2/trial 1/u").unwrap().read_raw().unwrap();
    assert_eq!(u.len(), 101);
    drop(h);
    // The figure: decoded, its size, and curve pixels that are not background.
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(out.join("separation.png")).unwrap()));
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size()];
    let info = r.next_frame(&mut buf).unwrap();
    assert!(info.width >= 600 && info.height >= 400, "{}x{}", info.width, info.height);
    let px = &buf[..info.buffer_size()];
    let coloured = px.chunks(3).filter(|p| !(p[0] == p[1] && p[1] == p[2])).count();
    assert!(coloured > 1000, "curve pixels: {coloured}");

    // Resume: nothing to simulate. More trials: only the new ones.
    let before = std::fs::read_to_string(out.join("separation.csv")).unwrap();
    let o = study(&s, &out, &[]).expect_ok("resume");
    assert!(o.stdout.contains("0 runs simulated, 8 read from the cache"), "{}", o.stdout);
    assert_eq!(std::fs::read_to_string(out.join("separation.csv")).unwrap(), before);
    let o = study(&s, &out, &["--trials", "3"]).expect_ok("extend");
    let line = o.stdout.lines().find(|l| l.contains("runs simulated")).unwrap();
    let simulated: usize = line.split(": ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!((1..=3).contains(&simulated), "only trial 2's runs: {line}");
    assert_eq!(csv(&out).len(), 2 * 101);

    #[cfg(feature = "mpi")]
    {
        let out2 = s.parent().unwrap().join("out2");
        let a = ["study", s.to_str().unwrap(), "--out", out2.to_str().unwrap(), "--trials", "3"];
        mpirun(2, &a, std::time::Duration::from_secs(300)).expect_ok("study on 2 ranks");
        assert_eq!(
            std::fs::read_to_string(out2.join("separation.csv")).unwrap(),
            std::fs::read_to_string(out.join("separation.csv")).unwrap(),
            "2 ranks"
        );
    }
}

#[test]
fn study_errors_name_the_key() {
    let s = setup("study_cli_errors", "6");
    let dir = s.parent().unwrap().to_path_buf();
    let out = dir.join("out");
    let e = study(&s, &out, &["--trials", "0"]);
    assert!(!e.ok() && e.stderr.contains("trials: must be at least 1"), "{}", e.stderr);
    let text = std::fs::read_to_string(&s).unwrap();
    let bad = dir.join("bad_pop.yaml");
    std::fs::write(&bad, text.replace("stimulus_population: STIM", "stimulus_population: EC")).unwrap();
    let e = study(&bad, &out, &[]);
    assert!(!e.ok() && e.stderr.contains("stimulus_population: EC is not a population"), "{}", e.stderr);
    let bad = dir.join("bad_d.yaml");
    std::fs::write(&bad, text.replace("[0, 0.2]", "[0.2, 0.00001]")).unwrap();
    let e = study(&bad, &out, &[]);
    assert!(!e.ok() && e.stderr.contains("distances[1]") && e.stderr.contains("target distance"), "{}", e.stderr);
    // A cache made for another network.
    study(&s, &out, &["--trials", "1", "--t-end", "20"]).expect_ok("first network");
    let other = setup("study_cli_other", "5");
    let e = study(&other, &out, &["--trials", "1", "--t-end", "20"]);
    assert!(!e.ok() && e.stderr.contains("this cache was made for another network"), "{}", e.stderr);
}
