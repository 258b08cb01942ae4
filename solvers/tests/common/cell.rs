//! Helpers for the single-cell tests: reading the NEURON/Arbor reference files of `tests/reference/neuron-arbor`.

use std::collections::HashMap;
use std::path::PathBuf;

use miv_solvers::{CableCell, Location, Morphology, Section};

/// `tests/reference/neuron-arbor/data/<case>/<file>`.
pub fn reference_file(case: &str, file: &str) -> PathBuf {
    super::reference_dir().join("data").join(case).join(file)
}

/// A CSV file with a header row, as columns by name.
pub fn read_csv(path: &std::path::Path) -> HashMap<String, Vec<f64>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines.next().expect("header").split(',').map(|s| s.trim().to_string()).collect();
    let mut cols: Vec<Vec<f64>> = vec![Vec::new(); header.len()];
    for (n, line) in lines.enumerate() {
        for (k, field) in line.split(',').enumerate() {
            let v: f64 =
                field.trim().parse().unwrap_or_else(|e| panic!("{}:{}: {field:?}: {e}", path.display(), n + 2));
            cols[k].push(v);
        }
    }
    header.into_iter().zip(cols).collect()
}

pub fn read_json(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// A JSON array of numbers.
pub fn numbers(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}")).iter().map(|x| x.as_f64().unwrap()).collect()
}

/// Upward crossings of `thr`, linearly interpolated (the reference scripts' `crossings`).
pub fn crossings(t: &[f64], v: &[f64], thr: f64) -> Vec<f64> {
    (0..v.len().saturating_sub(1))
        .filter(|&i| v[i] < thr && v[i + 1] >= thr)
        .map(|i| t[i] + (thr - v[i]) / (v[i + 1] - v[i]) * (t[i + 1] - t[i]))
        .collect()
}

/// Largest |a - b| over paired spike lists of equal length (panics on different counts).
pub fn max_spike_diff(ours: &[f64], theirs: &[f64], what: &str) -> f64 {
    assert_eq!(ours.len(), theirs.len(), "{what}: spike counts differ: ours {ours:?} reference {theirs:?}");
    ours.iter().zip(theirs).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max)
}

/// The ball-and-stick cell of the reference (soma hh, dend pas nseg 11, Exp2Syn at dend(0.5)).
pub fn ball_and_stick_cell() -> CableCell {
    let m = Morphology::new(vec![
        Section::cylinder("soma", 1, 12.6157, 12.6157),
        Section::cylinder("dend", 3, 200.0, 1.0).on(0, 1.0),
    ]);
    let mut c = CableCell::new(m).unwrap();
    c.nseg = vec![1, 11];
    c.ra = vec![100.0, 100.0];
    c.insert(0, "hh", &[("gnabar", 0.12), ("gkbar", 0.036), ("gl", 0.0003), ("el", -54.3)]);
    c.set_erev(0, "na", 50.0);
    c.set_erev(0, "k", -77.0);
    c.insert(1, "pas", &[("g", 0.001), ("e", -65.0)]);
    c.place(Location::new(1, 0.5), "Exp2Syn", &[("tau1", 0.5), ("tau2", 2.0), ("e", 0.0)]);
    c.detect(Location::new(0, 0.5), 10.0);
    c
}
