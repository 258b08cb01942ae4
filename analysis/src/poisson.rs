//! Homogeneous Poisson spike trains drawn from [`miv_partition::Stream`]s keyed by (seed, purpose, key), so a
//! train depends only on its key, never on the rank or thread that draws it.
//!
//! The case (`rc-separation.py`, `generate_poisson_spike_train`) draws `int(1.5 · rate · T)` exponential
//! inter-spike intervals and keeps the times below T, which truncates a train whose intervals run out early
//! (at 10 Hz over 500 ms about one train in four). Here intervals are drawn until the train passes `t_end`, so
//! the train is a true homogeneous Poisson process on [0, t_end).

use miv_partition::{Purpose, Stream};

use crate::error::{AnalysisError, Result};

/// The purpose tag of Poisson train streams.
pub const POISSON_TRAIN: Purpose = Purpose::named("poisson train");

/// Spike times (ms), ascending, of a homogeneous Poisson process of `rate_hz` on [0, `t_end_ms`), drawn from
/// `stream` (exponential inter-spike intervals of mean 1000 / `rate_hz` ms).
pub fn poisson_train(stream: &mut Stream, rate_hz: f64, t_end_ms: f64) -> Result<Vec<f64>> {
    if !(rate_hz >= 0.0) || !rate_hz.is_finite() {
        return Err(AnalysisError::BadParameter { key: "rate_hz", value: rate_hz, why: "must be finite and >= 0" });
    }
    if !(t_end_ms >= 0.0) || !t_end_ms.is_finite() {
        return Err(AnalysisError::BadParameter { key: "t_end_ms", value: t_end_ms, why: "must be finite and >= 0" });
    }
    let mut out = Vec::with_capacity((rate_hz * t_end_ms / 1000.0 * 1.2) as usize + 4);
    if rate_hz == 0.0 {
        return Ok(out);
    }
    let mean_isi = 1000.0 / rate_hz;
    let mut t = stream.exponential(mean_isi);
    while t < t_end_ms {
        out.push(t);
        t += stream.exponential(mean_isi);
    }
    Ok(out)
}

/// Poisson trains keyed by (seed, key): `train(key, ..)` gives the same train on every rank and in every run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoissonTrains {
    pub seed: u64,
}

impl PoissonTrains {
    pub fn new(seed: u64) -> PoissonTrains {
        PoissonTrains { seed }
    }

    /// The train of `key` (e.g. a stimulus gid, or a trial and gid folded into one number).
    pub fn train(&self, key: u64, rate_hz: f64, t_end_ms: f64) -> Result<Vec<f64>> {
        poisson_train(&mut Stream::new(self.seed, POISSON_TRAIN, key), rate_hz, t_end_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_train_other_key_other_train() {
        let p = PoissonTrains::new(11);
        let a = p.train(5, 40.0, 500.0).unwrap();
        assert_eq!(a, p.train(5, 40.0, 500.0).unwrap());
        assert_ne!(a, p.train(6, 40.0, 500.0).unwrap());
        assert_ne!(a, PoissonTrains::new(12).train(5, 40.0, 500.0).unwrap());
        assert!(a.windows(2).all(|w| w[0] < w[1]) && a.iter().all(|&t| (0.0..500.0).contains(&t)));
    }

    #[test]
    fn mean_rate_and_count_variance_are_poisson() {
        // 2000 trains of 20 Hz over 1 s: count ~ Poisson(20); the mean of 2000 counts has s.d. sqrt(20/2000) = 0.1,
        // so 5 s.d. = 0.5 spikes. The variance/mean ratio (Fano factor) is 1 within ~0.03 s.d. (5 s.d. = 0.16).
        let p = PoissonTrains::new(3);
        let counts: Vec<f64> = (0..2000).map(|k| p.train(k, 20.0, 1000.0).unwrap().len() as f64).collect();
        let n = counts.len() as f64;
        let m = counts.iter().sum::<f64>() / n;
        let v = counts.iter().map(|c| (c - m) * (c - m)).sum::<f64>() / (n - 1.0);
        assert!((m - 20.0).abs() < 0.5, "mean count {m}");
        assert!((v / m - 1.0).abs() < 0.16, "fano {}", v / m);
        // Uniform in time: the first half of [0, 1000) holds half the spikes (binomial, 5 s.d.).
        let (mut first, mut all) = (0usize, 0usize);
        for k in 0..2000 {
            let t = p.train(10_000 + k, 20.0, 1000.0).unwrap();
            first += t.iter().filter(|&&x| x < 500.0).count();
            all += t.len();
        }
        let frac = first as f64 / all as f64;
        assert!((frac - 0.5).abs() < 5.0 * (0.25 / all as f64).sqrt(), "{frac}");
    }

    #[test]
    fn bad_rates_are_errors_naming_the_key() {
        let p = PoissonTrains::new(0);
        assert!(p.train(0, 0.0, 100.0).unwrap().is_empty());
        let e = p.train(0, -1.0, 100.0).unwrap_err().to_string();
        assert!(e.contains("rate_hz"), "{e}");
        let e = p.train(0, 1.0, f64::NAN).unwrap_err().to_string();
        assert!(e.contains("t_end_ms"), "{e}");
    }
}
