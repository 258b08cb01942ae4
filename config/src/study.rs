//! The study YAML of `miv study` (docs/api.md): the separation study of MiV-Simulator-Cases'
//! `rc-separation.py`, run on the network of an experiment YAML.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The study file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Study {
    /// The experiment YAML whose network, cell types, synapses, templates, dt, method and LFP electrode are
    /// used (its own stimulus is replaced by the study's trains).
    pub experiment: PathBuf,
    /// The artificial (VecStim) population that plays the input trains.
    #[serde(default = "default_stim")]
    pub stimulus_population: String,
    /// Cell i of the population plays `train[i::slice_step]` (rc.py's `stimulus[gid::10]`); the whole train
    /// to every cell when absent.
    #[serde(default)]
    pub slice_step: Option<usize>,
    /// Input distances d(u, v); 0 is the same-input condition.
    pub distances: Vec<f64>,
    pub trials: usize,
    /// Simulated time per run and duration of the trains (ms).
    pub t_end: f64,
    /// Seed of the pair generator and of the initial contexts.
    #[serde(default)]
    pub seed: u64,
    /// LFP electrode read out (default: the experiment's first).
    #[serde(default)]
    pub readout: Option<String>,
    /// For d = 0: the second run of trial k starts from context k + 1: after `reset`, every cell's compartments
    /// are set to v_init + U(−jitter, +jitter) mV, one draw per (seed, context, gid).
    #[serde(default = "default_jitter")]
    pub context_jitter_mv: f64,
    /// Acceptance window of the pair generator (default 0.01, the case's).
    #[serde(default)]
    pub eps: Option<f64>,
}

fn default_stim() -> String {
    "STIM".into()
}

fn default_jitter() -> f64 {
    1.0
}

impl Study {
    /// Read and check a study file; `trials` and `t_end` replace the file's (`miv study --trials/--t-end`). The
    /// experiment path is resolved against the study's folder.
    pub fn load(path: &Path, trials: Option<usize>, t_end: Option<f64>) -> Result<Study, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut s: Study = crate::from_yaml_str(&text, path).map_err(|e| e.to_string())?;
        if s.experiment.is_relative() {
            s.experiment = path.parent().unwrap_or(Path::new(".")).join(&s.experiment);
        }
        if let Some(n) = trials {
            s.trials = n;
        }
        if let Some(t) = t_end {
            s.t_end = t;
        }
        let f = path.display();
        if s.trials == 0 {
            return Err(format!("{f}: trials: must be at least 1"));
        }
        if !(s.t_end > 0.0 && s.t_end.is_finite()) {
            return Err(format!("{f}: t_end: {} ms; must be > 0", s.t_end));
        }
        if s.distances.is_empty() {
            return Err(format!("{f}: distances: give at least one"));
        }
        if let Some((i, d)) = s.distances.iter().enumerate().find(|(_, d)| !(**d >= 0.0 && d.is_finite())) {
            return Err(format!("{f}: distances[{i}] = {d}: must be >= 0"));
        }
        if s.distances.contains(&0.0) && !s.distances.iter().any(|&d| d > 0.0) {
            return Err(format!("{f}: distances: 0 takes its trains from a positive distance; give one"));
        }
        if s.slice_step == Some(0) {
            return Err(format!("{f}: slice_step: must be at least 1"));
        }
        if !(s.context_jitter_mv >= 0.0) {
            return Err(format!("{f}: context_jitter_mv: must be >= 0"));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_before_the_checks_and_unknown_keys_fail() {
        let dir = std::env::temp_dir().join(format!("miv-study-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("study.yaml");
        std::fs::write(&path, "experiment: exp.yaml\ndistances: [0, 0.1]\ntrials: 0\nt_end: 100\n").unwrap();
        let e = Study::load(&path, None, None).unwrap_err();
        assert!(e.ends_with("trials: must be at least 1"), "{e}");
        let s = Study::load(&path, Some(2), Some(50.0)).unwrap();
        assert_eq!((s.trials, s.t_end, s.experiment.clone()), (2, 50.0, dir.join("exp.yaml")));
        assert_eq!((s.stimulus_population.as_str(), s.context_jitter_mv), ("STIM", 1.0));
        std::fs::write(&path, "experiment: exp.yaml\ndistances: [0.1]\ntrials: 1\nt_end: 100\ntrial: 2\n").unwrap();
        let e = Study::load(&path, None, None).unwrap_err();
        assert!(e.contains("study.yaml") && e.contains("trial"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
