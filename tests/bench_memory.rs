//! `miv bench memory`: the bandwidth table and the busyring's bytes per compartment-step, whose total is the
//! sum of its phase table.

mod common;

use common::*;

#[test]
fn memory_bench_prints_bandwidths_and_a_consistent_byte_count() {
    let o = miv(&["bench", "memory", "--sizes", "64K,1M", "--reps", "3", "--cells", "20", "--tstop", "5"]);
    assert!(o.ok(), "{}", o.stderr);
    let out = &o.stdout;
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.len() == 4 && (w[1] == "KiB" || w[1] == "MiB"))
        .collect();
    assert_eq!(rows.iter().map(|w| format!("{} {}", w[0], w[1])).collect::<Vec<_>>(), ["64 KiB", "1 MiB"], "{out}");
    for w in &rows {
        let (copy, triad): (f64, f64) = (w[2].parse().unwrap(), w[3].parse().unwrap());
        assert!(copy > 0.1 && triad > 0.1 && copy < 1e4 && triad < 1e4, "{out}");
    }
    // "39 nodes and 34 compartments per cell": the BY cell's 1 + 3 x 11 segments.
    assert!(out.contains("34 compartments per cell"), "{out}");
    let nodes: f64 = out.split(" nodes and ").next().unwrap().rsplit(' ').next().unwrap().parse().unwrap();
    // Each phase row ends with its bytes per item and items per cell before the description.
    let mut sum = 0.0;
    let mut phases = 0;
    for l in out.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        if let Some(i) = w.iter().position(|x| x.parse::<f64>().is_ok()) {
            if i > 0 && i + 1 < w.len() && l.contains("(R") {
                let (b, items): (f64, f64) = (w[i].parse().unwrap(), w[i + 1].parse().unwrap());
                sum += b * items;
                phases += 1;
            }
        }
    }
    assert_eq!(phases, 6, "{out}");
    let total: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("bytes read+written per compartment-step: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!((total - (sum / 34.0).round()).abs() < 1.0, "{total} vs {}", sum / 34.0);
    assert!(nodes >= 34.0, "{out}");
    assert!(out.contains("measured: ") && out.contains("measured / bound"), "{out}");
    let o = miv(&["bench", "memory", "--sizes", "12Q", "--cells", "0"]);
    assert!(!o.ok() && o.stderr.contains("--sizes") && o.stderr.contains("12Q"), "{}", o.stderr);
}
