//! Errors of the analysis crate, each naming the value or key at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("{key} = {value}: {why}")]
    BadParameter { key: &'static str, value: f64, why: &'static str },
    #[error("spike at {t} ms lies outside the distance grid [0, {duration} ms] (dt {dt} ms)")]
    SpikeOutsideGrid { t: f64, duration: f64, dt: f64 },
    #[error(
        "target distance {target}: no frequency reaches it (mean distance of independent trains is {lowest:.4} \
         at the lowest frequency, {lowest_hz} Hz; targets below that cannot be generated)"
    )]
    TargetBelowReach { target: f64, lowest: f64, lowest_hz: f64 },
    #[error(
        "target distance {target}: no pair within eps {eps} after {attempts} attempts at {frequency_hz} Hz \
         (mean distance there {mean:.4}); the target is likely beyond what independent Poisson trains reach"
    )]
    TargetNotReached { target: f64, eps: f64, attempts: u64, frequency_hz: f64, mean: f64 },
    #[error("readouts differ in length: {u} and {v} time points")]
    LengthMismatch { u: usize, v: usize },
    #[error("trials = 0: mean and s.d. need at least one trial")]
    NoTrials,
    #[error("plot {path}: {msg}")]
    Plot { path: PathBuf, msg: String },
}

pub type Result<T> = std::result::Result<T, AnalysisError>;
