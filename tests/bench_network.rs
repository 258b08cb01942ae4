//! `miv bench network`: configurations interleaved round by round, and the ratio columns as the median and range
//! of per-round ratios. NEURON and Arbor are stood in for by a script that prints fixed run times, so the
//! reference rows' ratios are known exactly; miv's rows are real runs of a small busyring.
#![cfg(feature = "mpi")]

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;

/// Stand-in for the reference Python: prints the RESULT line of bench_neuron.py / bench_arbor.py with a run time
/// fixed per configuration (NEURON 2 s, NEURON --mpi 1 s, Arbor 1 thread 4 s, Arbor 2 threads 2 s).
const FAKE_PYTHON: &str = r#"#!/bin/bash
case "$1" in
  *bench_neuron.py) if [[ " $* " == *" --mpi"* ]]; then t=1.0; else t=2.0; fi ;;
  *bench_arbor.py) if [[ " $* " == *"--threads 2"* ]]; then t=2.0; else t=4.0; fi ;;
  *) echo "unexpected script $1" >&2; exit 3 ;;
esac
echo "RESULT {\"spikes\": 7, \"run_s\": $t, \"peak_rss_MiB_max_rank\": 10}"
"#;

/// The cells of one table row after its label: N, spikes (with its mark), run s, us, ns, MiB, KiB/cell, then the
/// two ratio cells "median [min..max]" (the last four whitespace-separated tokens).
fn row(table: &str, label: &str) -> Vec<String> {
    let line = table.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("no row {label:?} in:\n{table}"));
    let tokens: Vec<&str> = line[label.len()..].split_whitespace().collect();
    let k = tokens.len();
    assert!(k >= 11, "row {label:?}: {line}");
    let mut cells: Vec<String> = tokens[..k - 4].iter().map(|s| s.to_string()).collect();
    cells.push(format!("{} {}", tokens[k - 4], tokens[k - 3]));
    cells.push(format!("{} {}", tokens[k - 2], tokens[k - 1]));
    cells
}

/// "m [lo..hi]" as numbers.
fn spread(cell: &str) -> (f64, f64, f64) {
    let (m, rest) = cell.split_once(" [").unwrap_or_else(|| panic!("not 'median [min..max]': {cell:?}"));
    let (lo, hi) = rest.trim_end_matches(']').split_once("..").unwrap();
    (m.parse().unwrap(), lo.parse().unwrap(), hi.parse().unwrap())
}

#[test]
fn rounds_interleave_the_configurations_and_ratios_are_per_round() {
    let dir = scratch("bench-network");
    let python = dir.join("python");
    std::fs::write(&python, FAKE_PYTHON).unwrap();
    std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = miv(&[
        "bench",
        "network",
        "--n",
        "40",
        "--reps",
        "2",
        "--tstop",
        "20",
        "--reference",
        "--python",
        python.to_str().unwrap(),
        "--dir",
        dir.join("nets").to_str().unwrap(),
    ]);
    assert!(o.ok(), "miv bench network failed:\nstdout:\n{}\nstderr:\n{}", o.stdout, o.stderr);

    // Every round runs every configuration once, in the same order: A, B, ..., A, B, ...
    let configs = [
        "miv 1 rank x 1 thread",
        "miv 1 rank x 2 threads",
        "miv 2 ranks (mpirun)",
        "NEURON 1 proc",
        "NEURON 2 ranks (mpirun)",
        "Arbor 1 thread, group 50",
        "Arbor 2 threads, group 50",
    ];
    let order: Vec<String> = o
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("round "))
        .map(|l| {
            let (round, rest) = l.split_once(": ").unwrap();
            format!("{round}: {}", rest.split(" N=").next().unwrap())
        })
        .collect();
    let want: Vec<String> = (1..=2).flat_map(|r| configs.iter().map(move |c| format!("{r} of 2: {c}"))).collect();
    assert_eq!(order, want, "{}", o.stderr);

    // Reference rows: exact ratios from the fixed times (x NEURON = NEURON's time / the row's, x Arbor50 alike).
    let t = &o.stdout;
    let expect = [
        ("NEURON 1 proc", "1.00 [1.00..1.00]", "2.00 [2.00..2.00]"),
        ("NEURON 2 ranks (mpirun)", "2.00 [2.00..2.00]", "4.00 [4.00..4.00]"),
        ("Arbor 1 thread, group 50", "0.50 [0.50..0.50]", "1.00 [1.00..1.00]"),
        ("Arbor 2 threads, group 50", "1.00 [1.00..1.00]", "2.00 [2.00..2.00]"),
    ];
    for (label, x_neuron, x_arbor) in expect {
        let cells = row(t, label);
        assert_eq!(cells[cells.len() - 2..], [x_neuron, x_arbor], "{label}:\n{t}");
    }
    // miv's rows: real runs, the same spikes in every configuration, ratios within their spread and consistent
    // with the run time (NEURON's fixed 2 s over the median).
    let spikes: Vec<String> = configs[..3].iter().map(|c| row(t, c)[1].clone()).collect();
    assert!(spikes.iter().all(|s| *s == spikes[0] && s.parse::<u64>().unwrap() > 0), "{t}");
    for c in &configs[..3] {
        let cells = row(t, c);
        let run: f64 = cells[cells.len() - 7].parse().unwrap();
        let (m, lo, hi) = spread(&cells[cells.len() - 2]);
        assert!(lo <= m && m <= hi && m > 0.0, "{c}: {cells:?}");
        let (ma, _, _) = spread(&cells[cells.len() - 1]);
        assert!((ma / m - 2.0).abs() < 0.02, "{c}: x Arbor50 is twice x NEURON with these times: {cells:?}");
        assert!(run > 0.0 && (2.0 / run / m - 1.0).abs() < 0.6, "{c}: run {run} s against x NEURON {m}");
    }
}
