//! Fault injection (docs/reliability.md): outputs that alias inputs, bad output locations, bad values in the
//! inputs, corrupted files, concurrent builds and killed processes. Each case must end in a clear error naming
//! the file or key, or in results identical to a clean run — never in a different result with exit 0.

mod common;
use common::*;
use std::path::{Path, PathBuf};

/// A 4-cell ring made by `miv gen` in a fresh scratch folder; returns its experiment.yaml.
fn ring(name: &str) -> PathBuf {
    let dir = scratch(&format!("fault-{name}"));
    let out = dir.join("net");
    miv(&["-q", "gen", "ring", "--n", "4", "--out", out.to_str().unwrap()]).expect_ok("miv gen");
    out.join("experiment.yaml")
}

fn rewrite(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from:?} not in {}", path.display());
    std::fs::write(path, text.replace(from, to)).unwrap();
}

/// `miv run` exits 1 with one error line containing every `what`.
fn run_fails(exp: &Path, what: &[&str]) -> Outcome {
    let o = miv(&["-q", "run", exp.to_str().unwrap()]);
    assert_eq!(o.code, Some(1), "expected a clean failure:\nstdout:\n{}\nstderr:\n{}", o.stdout, o.stderr);
    for w in what {
        assert!(o.stderr.contains(w), "missing {w:?} in:\n{}", o.stderr);
    }
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
    o
}

fn bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn outputs_never_overwrite_inputs() {
    let exp = ring("alias");
    let dir = exp.parent().unwrap().to_path_buf();
    let inputs = ["cells.h5", "connections.h5", "experiment.yaml", "synapses.yml", "cell_types.yml"];
    let before: Vec<Vec<u8>> = inputs.iter().map(|f| bytes(&dir.join(f))).collect();
    let original = std::fs::read_to_string(&exp).unwrap();
    let cases = [
        ("  path: results.h5", "  path: cells.h5", "output.path", "`cells`"),
        ("  path: results.h5", "  path: connections.h5", "output.path", "`connections`"),
        ("  path: results.h5", "  path: ./../net/cells.h5", "output.path", "`cells`"),
        ("  spikes_csv: spikes.csv", "  spikes_csv: experiment.yaml", "output.spikes_csv", "`experiment`"),
        ("  spikes_csv: spikes.csv", "  spikes_csv: results.h5", "output.spikes_csv", "`output.path`"),
        ("  spikes_csv: spikes.csv", "  spikes_csv: synapses.yml", "output.spikes_csv", "`synapses`"),
    ];
    for (from, to, key, other) in cases {
        std::fs::write(&exp, original.replace(from, to)).unwrap();
        run_fails(&exp, &[key, other, "must not overwrite"]);
        for (f, b) in inputs.iter().zip(&before) {
            if *f != "experiment.yaml" {
                assert_eq!(&bytes(&dir.join(f)), b, "{to}: {f} changed");
            }
        }
        assert!(!dir.join("results.h5").exists(), "{to}: no work is done");
    }
    // A symbolic link named as output that points at an input.
    std::os::unix::fs::symlink(dir.join("cells.h5"), dir.join("link.h5")).unwrap();
    std::fs::write(&exp, original.replace("  path: results.h5", "  path: link.h5")).unwrap();
    run_fails(&exp, &["output.path", "`cells`"]);
    assert_eq!(bytes(&dir.join("cells.h5")), before[0]);
}

#[test]
fn output_locations_are_checked_before_any_work() {
    let exp = ring("outloc");
    let dir = exp.parent().unwrap().to_path_buf();
    let original = std::fs::read_to_string(&exp).unwrap();
    // A missing folder: the error comes before loading (no log line of the load, quickly).
    std::fs::write(&exp, original.replace("  path: results.h5", "  path: nowhere/results.h5")).unwrap();
    let o = run_fails(&exp, &["output.path", "nowhere", "cannot be used"]);
    assert!(o.stdout.is_empty());
    // A folder as output: an error, and no *.partial left behind.
    std::fs::create_dir_all(dir.join("out.h5")).unwrap();
    std::fs::write(&exp, original.replace("  path: results.h5", "  path: out.h5")).unwrap();
    run_fails(&exp, &["output.path", "is a folder"]);
    std::fs::write(&exp, original.replace("  spikes_csv: spikes.csv", "  spikes_csv: out.h5")).unwrap();
    run_fails(&exp, &["output.spikes_csv", "is a folder"]);
    let partial: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(partial.is_empty(), "{partial:?}");
}

#[test]
fn dry_run_without_slurm_is_an_error_and_writes_nothing() {
    let exp = ring("dryrun");
    let o = miv(&["-q", "run", exp.to_str().unwrap(), "--dry-run"]);
    assert_eq!(o.code, Some(1), "{}", o.stderr);
    assert!(o.stderr.contains("--dry-run") && o.stderr.contains("--slurm"), "{}", o.stderr);
    assert!(!exp.with_file_name("results.h5").exists());
    assert!(!exp.with_file_name("spikes.csv").exists());
}

#[test]
fn bad_experiment_values_name_the_key() {
    let exp = ring("values");
    let original = std::fs::read_to_string(&exp).unwrap();
    let cases: [(&str, &str, &[&str]); 5] = [
        ("dt: 0.025", "dt: 0.025\nvelocity: 0", &["experiment.yaml", "velocity", "got 0"]),
        ("dt: 0.025", "dt: 0.025\nvelocity: -3", &["experiment.yaml", "velocity", "got -3"]),
        ("dt: 0.025", "dt: 0.025\nmin_delay: -1", &["experiment.yaml", "min_delay", "got -1"]),
        ("dt: 0.025", "dt: 0.025\nmin_delay: .nan", &["experiment.yaml", "min_delay", "NaN"]),
        ("t_end: 100", "t_end: 100.01", &["experiment.yaml", "t_end", "not a whole number of time steps"]),
    ];
    for (from, to, what) in cases {
        std::fs::write(&exp, original.replace(from, to)).unwrap();
        run_fails(&exp, what);
    }
}

/// Overwrite `/Projections/BS/BS/Connections/distance` of the ring's connections.h5 with `values`.
fn set_distances(conns: &Path, values: &[f32]) {
    let _g = hdf5_write_guard();
    let f = hdf5::File::open_rw(conns).unwrap();
    let d = f.dataset("Projections/BS/BS/Connections/distance").unwrap();
    assert_eq!(d.size(), values.len());
    d.write(values).unwrap();
    drop(d);
    f.close().unwrap();
}

#[test]
fn bad_connections_are_errors_naming_the_dataset() {
    let exp = ring("conns");
    let dir = exp.parent().unwrap().to_path_buf();
    let conns = dir.join("connections.h5");
    let good = bytes(&conns);
    for (bad, shown) in [(f32::NAN, "NaN"), (-5.0, "-5"), (f32::INFINITY, "inf")] {
        set_distances(&conns, &[10.0, bad, 10.0, 10.0]);
        run_fails(&exp, &["connections.h5", "Connections/distance", shown, "expected a finite number >= 0"]);
        std::fs::write(&conns, &good).unwrap();
    }
    // An empty HDF5 file and a file without /Projections: synapses.yml declares BS -> BS.
    {
        let _g = hdf5_write_guard();
        hdf5::File::create(&conns).unwrap().close().unwrap();
    }
    run_fails(&exp, &["connections.h5", "/Projections/BS/BS is missing", "synapses.yml"]);
    {
        let _g = hdf5_write_guard();
        std::fs::write(&conns, &good).unwrap();
        let f = hdf5::File::open_rw(&conns).unwrap();
        f.unlink("Projections").unwrap();
        f.close().unwrap();
    }
    run_fails(&exp, &["/Projections/BS/BS is missing"]);
    // The explicit opt-out runs without the projection (and without the stimulus, which targets a synapse).
    let original = std::fs::read_to_string(&exp).unwrap();
    rewrite(&exp, "dt: 0.025", "dt: 0.025\nallow_missing_projections: true");
    rewrite(&exp, "stimulus:\n  - events:\n      - {gid: 0, t: 5.005, weights: [0.01]}\n", "");
    let o = miv(&["-q", "run", exp.to_str().unwrap(), "--json"]).expect_ok("allow_missing_projections");
    assert!(o.stdout.contains("\"connections\":0"), "{}", o.stdout);
    // A NaN synapse parameter in synapses.yml.
    std::fs::write(&conns, &good).unwrap();
    std::fs::write(&exp, original).unwrap();
    let syn = dir.join("synapses.yml");
    let syn_good = bytes(&syn);
    rewrite(&syn, "weight: 0.01", "weight: .nan");
    run_fails(&exp, &["synapses.BS.BS.mechanisms.AMPA.weight", "NaN", "expected a finite number"]);
    // A parameter the synapse's mechanism does not have.
    std::fs::write(&syn, &syn_good).unwrap();
    rewrite(&syn, "tau2: 2.0", "tau3: 2.0");
    run_fails(&exp, &["synapse label AMPA", "has no parameter \"tau3\"", "tau2"]);
    std::fs::write(&syn, &syn_good).unwrap();
    // A NetCon weight the label's parameters do not give.
    let exp_good = bytes(&exp);
    rewrite(&exp, "netcon: [weight]", "netcon: [weight, scale]");
    run_fails(&exp, &["synapses.BS.BS.mechanisms.AMPA", "scale is missing (a weight of Exp2Syn)"]);
    std::fs::write(&exp, &exp_good).unwrap();
    // A NaN weight in the cells' weights namespace (what the ring's connections use).
    let cells = dir.join("cells.h5");
    {
        let _g = hdf5_write_guard();
        let f = hdf5::File::open_rw(&cells).unwrap();
        let d = f.dataset("Populations/BS/Synapse Weights/AMPA/Attribute Value").unwrap();
        let mut w: Vec<f32> = d.read_raw().unwrap();
        w[2] = f32::NAN;
        d.write(&w).unwrap();
        drop(d);
        f.close().unwrap();
    }
    run_fails(&exp, &["cells.h5", "Synapse Weights/AMPA", "gid 2", "NaN", "expected a finite number"]);
}

#[test]
fn bad_stimulus_events_name_the_event() {
    let exp = ring("stim");
    let original = std::fs::read_to_string(&exp).unwrap();
    let ev = "{gid: 0, t: 5.005, weights: [0.01]}";
    let cases: [(&str, &[&str]); 5] = [
        ("{gid: 99999, t: 5.005, weights: [0.01]}", &["stimulus[0].events[0]", "gid 99999", "cells.h5"]),
        ("{gid: 4, t: 5.005, weights: [0.01]}", &["stimulus[0].events[0]", "gid 4 is not a cell"]),
        ("{gid: 0, t: .nan, weights: [0.01]}", &["stimulus[0].events[0]", "t = NaN"]),
        ("{gid: 0, t: -1, weights: [0.01]}", &["stimulus[0].events[0]", "t = -1"]),
        ("{gid: 0, t: 5, weights: [.inf]}", &["stimulus[0].events[0]", "weight inf"]),
    ];
    for (to, what) in cases {
        std::fs::write(&exp, original.replace(ev, to)).unwrap();
        run_fails(&exp, what);
    }
}

/// A deterministic stream of positions (a failure reproduces).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize % n
    }
}

#[test]
fn byte_overwrites_of_inputs_give_an_error_or_the_same_result() {
    let exp = ring("overwrite");
    let dir = exp.parent().unwrap().to_path_buf();
    let e = exp.to_str().unwrap();
    miv(&["-q", "run", e]).expect_ok("clean run");
    let clean = bytes(&dir.join("spikes.csv"));
    let mut rng = Lcg(7);
    let (mut errors, mut same) = (0, 0);
    for name in ["cells.h5", "connections.h5"] {
        let f = dir.join(name);
        let good = bytes(&f);
        for i in 0..25 {
            let at = rng.next(good.len() - 64);
            let mut b = good.clone();
            for (k, x) in b[at..at + 64].iter_mut().enumerate() {
                *x ^= 0x5a ^ (k as u8).wrapping_mul(31) | 1;
            }
            std::fs::write(&f, &b).unwrap();
            let _ = std::fs::remove_file(dir.join("spikes.csv"));
            let o = miv(&["-q", "run", e]);
            assert!(!o.timed_out && !o.stderr.contains("panicked"), "{name} overwrite {i} at {at}:\n{}", o.stderr);
            if o.code == Some(0) {
                assert_eq!(
                    bytes(&dir.join("spikes.csv")),
                    clean,
                    "{name} overwrite {i} at byte {at}: exit 0 with different spikes"
                );
                same += 1;
            } else {
                assert_eq!(o.code, Some(1), "{name} overwrite {i} at {at}: {}", o.stderr);
                assert!(
                    o.stderr.contains(name),
                    "{name} overwrite {i} at {at}: the error names the file:\n{}",
                    o.stderr
                );
                errors += 1;
            }
        }
        std::fs::write(&f, &good).unwrap();
    }
    eprintln!("50 overwrites: {errors} clear errors, {same} identical results");
}

#[test]
fn killed_runs_rerun_to_the_same_result() {
    let dir = scratch("fault-killrun");
    let out = dir.join("net");
    miv(&["-q", "gen", "busyring", "--n", "64", "--out", out.to_str().unwrap()]).expect_ok("gen");
    let exp = out.join("experiment.yaml");
    let e = exp.to_str().unwrap();
    let t0 = std::time::Instant::now();
    miv(&["-q", "run", e]).expect_ok("clean run");
    let full = t0.elapsed();
    let clean_spikes = bytes(&out.join("spikes.csv"));
    let clean_h5 = out.join("clean-results.h5");
    std::fs::rename(out.join("results.h5"), &clean_h5).unwrap();
    std::fs::remove_file(out.join("spikes.csv")).unwrap();
    for (i, frac) in [0.1, 0.3, 0.5, 0.7, 0.9].iter().enumerate() {
        let mut k = spawn(
            std::process::Command::new(miv_bin())
                .args(["-q", "run", e])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null()),
        );
        std::thread::sleep(full.mul_f64(*frac));
        unsafe { libc::kill(k.id() as i32, libc::SIGKILL) };
        let _ = k.wait();
        // A killed run leaves no output under its real name (only a *.partial, or a complete earlier file).
        for name in ["results.h5", "spikes.csv"] {
            if out.join(name).exists() {
                assert!(i > 0 || *frac > 0.5, "kill {i}: {name} exists");
            }
        }
        miv(&["-q", "run", e]).expect_ok(&format!("rerun after kill {i}"));
        assert_eq!(bytes(&out.join("spikes.csv")), clean_spikes, "kill {i}");
        let d = spawn(std::process::Command::new("h5diff").arg(out.join("results.h5")).arg(&clean_h5)).wait().unwrap();
        assert!(d.success(), "kill {i}: results.h5 differs");
        std::fs::remove_file(out.join("spikes.csv")).unwrap();
        std::fs::remove_file(out.join("results.h5")).unwrap();
    }
}

#[test]
fn absurd_sizes_are_clear_errors() {
    let dir = scratch("fault-sizes");
    let out = dir.join("huge");
    let o = miv(&["-q", "gen", "busyring", "--n", "4000000000", "--out", out.to_str().unwrap()]);
    assert_eq!(o.code, Some(1), "{}", o.stderr);
    assert!(o.stderr.contains("--n 4000000000") && o.stderr.contains("GiB"), "{}", o.stderr);
    assert!(!out.exists(), "nothing written");
    // A template asking for 10^12 segments.
    let exp = ring("nseg");
    let t = exp.with_file_name("templates").join("BallStick.yaml");
    let text = std::fs::read_to_string(&t).unwrap();
    let patched = if text.contains("nseg:") {
        let re = text.lines().map(|l| match l.find("nseg:") {
            Some(p) => format!("{}nseg: 1000000000000{}", &l[..p], if l.trim_end().ends_with('}') { "}" } else { "" }),
            None => l.to_string(),
        });
        re.collect::<Vec<_>>().join("\n")
    } else {
        panic!("no nseg in {}:\n{text}", t.display())
    };
    std::fs::write(&t, patched).unwrap();
    run_fails(&exp, &["nseg", "32767", "1000000000000"]);
    // 100000 threads on 4 cells: capped at the cores, with a warning, and the same spikes.
    let exp = ring("threads");
    miv(&["-q", "run", exp.to_str().unwrap()]).expect_ok("1 thread");
    let one = bytes(&exp.with_file_name("spikes.csv"));
    let t0 = std::time::Instant::now();
    let o = miv(&["run", exp.to_str().unwrap(), "--threads", "100000"]).expect_ok("100000 threads");
    assert!(t0.elapsed() < std::time::Duration::from_secs(30));
    assert!(o.stderr.contains("100000 threads per rank asked for"), "{}", o.stderr);
    assert_eq!(bytes(&exp.with_file_name("spikes.csv")), one);
}
