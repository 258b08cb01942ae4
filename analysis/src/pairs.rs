//! The case's input-pair generator (`SpikeTrainPairs` in MiV-Simulator-Cases' `rc-separation.py`): pairs of
//! independent Poisson trains (u, v) whose distance d(u, v) lies within eps of a target.
//!
//! 1. Frequency search ([`FrequencyMap`]): for f = splits·1, splits·2, …, splits·99 Hz (10 … 990 Hz), the mean
//!    distance of `calibration_pairs` (50) pairs of independent trains at f. For a target d the case keeps the
//!    last (highest) f whose mean distance is below d (`if k - v[0] > dd - v[0]`, i.e. `k > dd`); if none is,
//!    the target is below every frequency's reach and the case fails (`f = None`): here a
//!    [`AnalysisError::TargetBelowReach`] naming the target.
//! 2. Rejection sampling ([`PairGenerator::pairs`]): draw u, v independently at that f until
//!    `|d(u, v) − d| < eps` (eps = 0.01). The case loops forever for a target no pair reaches; here at most
//!    `max_attempts` draws per pair, then [`AnalysisError::TargetNotReached`] naming the target.
//!
//! All draws come from streams keyed by (seed, purpose, target), so the pairs of a (seed, target) are the same
//! on every rank. Trains are drawn by [`crate::poisson_train`] (see there how it differs from the case's).

use miv_partition::{Purpose, Stream};

use crate::distance::SpikeTrainDistance;
use crate::error::{AnalysisError, Result};
use crate::poisson::poisson_train;

pub const FREQUENCY_SEARCH: Purpose = Purpose::named("spike-train pairs: frequency search");
pub const PAIR_SAMPLING: Purpose = Purpose::named("spike-train pairs: rejection sampling");

/// One generated pair and its distance.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainPair {
    pub u: Vec<f64>,
    pub v: Vec<f64>,
    pub distance: f64,
}

/// The case's generator settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PairGenerator {
    pub distance: SpikeTrainDistance,
    /// Accept a pair when |d(u, v) − target| < eps.
    pub eps: f64,
    /// Frequency step (Hz) of the search.
    pub splits: f64,
    /// Number of frequencies searched: splits·1 … splits·steps.
    pub steps: u32,
    /// Pairs averaged per frequency.
    pub calibration_pairs: u32,
    /// Draws per accepted pair before giving up.
    pub max_attempts: u64,
}

/// Mean distance of independent trains per frequency, ascending in frequency.
#[derive(Debug, Clone, PartialEq)]
pub struct FrequencyMap {
    pub points: Vec<(f64, f64)>,
}

impl FrequencyMap {
    /// The frequency the case picks for `target`: the last one whose mean distance is below it.
    pub fn frequency_for(&self, target: f64) -> Result<(f64, f64)> {
        if !(target > 0.0) || !target.is_finite() {
            return Err(AnalysisError::BadParameter { key: "target distance", value: target, why: "must be > 0" });
        }
        self.points.iter().rev().find(|&&(_, dd)| target > dd).copied().ok_or(AnalysisError::TargetBelowReach {
            target,
            lowest: self.points.first().map_or(f64::NAN, |p| p.1),
            lowest_hz: self.points.first().map_or(f64::NAN, |p| p.0),
        })
    }
}

impl PairGenerator {
    /// The case's settings for trains of `duration` ms: tau 5 ms, dt 0.1 ms, eps 0.01, 10 … 990 Hz by 10,
    /// 50 pairs per frequency, and at most 2000 draws per pair.
    pub fn new(duration: f64) -> Result<PairGenerator> {
        Ok(PairGenerator {
            distance: SpikeTrainDistance::new(duration)?,
            eps: 0.01,
            splits: 10.0,
            steps: 99,
            calibration_pairs: 50,
            max_attempts: 2000,
        })
    }

    fn draw(&self, s: &mut Stream, f: f64) -> Result<(Vec<f64>, Vec<f64>, f64)> {
        let t = self.distance.duration;
        let u = poisson_train(s, f, t)?;
        let v = poisson_train(s, f, t)?;
        let d = self.distance.distance(&u, &v)?;
        Ok((u, v, d))
    }

    /// Step 1: the mean distance of independent pairs at each searched frequency.
    pub fn frequency_map(&self, seed: u64) -> Result<FrequencyMap> {
        let mut s = Stream::new(seed, FREQUENCY_SEARCH, 0);
        let mut points = Vec::with_capacity(self.steps as usize);
        for ff in 1..=self.steps {
            let f = self.splits * ff as f64;
            let mut sum = 0.0;
            for _ in 0..self.calibration_pairs {
                sum += self.draw(&mut s, f)?.2;
            }
            points.push((f, sum / self.calibration_pairs.max(1) as f64));
        }
        Ok(FrequencyMap { points })
    }

    /// Step 2: `n` pairs within eps of `target`, drawn at the frequency `map` gives for it.
    pub fn pairs(&self, map: &FrequencyMap, target: f64, n: usize, seed: u64) -> Result<Vec<TrainPair>> {
        let (f, mean) = map.frequency_for(target)?;
        let mut s = Stream::new(seed, PAIR_SAMPLING, target.to_bits());
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let mut attempts = 0;
            loop {
                if attempts == self.max_attempts {
                    return Err(AnalysisError::TargetNotReached {
                        target,
                        eps: self.eps,
                        attempts,
                        frequency_hz: f,
                        mean,
                    });
                }
                attempts += 1;
                let (u, v, d) = self.draw(&mut s, f)?;
                if (d - target).abs() < self.eps {
                    out.push(TrainPair { u, v, distance: d });
                    break;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_fall_within_eps_of_several_targets_and_seeds() {
        let g = PairGenerator::new(500.0).unwrap();
        for seed in [1u64, 2] {
            let map = g.frequency_map(seed).unwrap();
            // Mean distance grows with frequency (more spikes, larger norm).
            assert!(map.points.first().unwrap().1 < map.points.last().unwrap().1);
            for target in [0.1, 0.2, 0.4] {
                let pairs = g.pairs(&map, target, 5, seed).unwrap();
                assert_eq!(pairs.len(), 5);
                for p in &pairs {
                    let d = g.distance.distance(&p.u, &p.v).unwrap();
                    assert_eq!(d, p.distance);
                    assert!((d - target).abs() < 0.01, "seed {seed} target {target}: {d}");
                }
                // Same (seed, target): the same pairs, wherever they are drawn.
                assert_eq!(pairs, g.pairs(&map, target, 5, seed).unwrap());
            }
        }
    }

    #[test]
    fn impossible_targets_are_errors_naming_the_target() {
        let mut g = PairGenerator::new(500.0).unwrap();
        g.steps = 30;
        g.calibration_pairs = 10;
        let map = g.frequency_map(4).unwrap();
        // Below the reach of 10 Hz trains (mean ~0.05 over 500 ms).
        let e = g.pairs(&map, 0.001, 1, 4).unwrap_err();
        assert!(matches!(e, AnalysisError::TargetBelowReach { .. }), "{e}");
        assert!(e.to_string().contains("target distance 0.001"), "{e}");
        // Far above the highest frequency searched: rejection sampling gives up after max_attempts.
        g.max_attempts = 50;
        let e = g.pairs(&map, 5.0, 1, 4).unwrap_err();
        assert!(matches!(e, AnalysisError::TargetNotReached { attempts: 50, .. }), "{e}");
        assert!(e.to_string().contains("target distance 5"), "{e}");
        let e = g.pairs(&map, -0.1, 1, 4).unwrap_err().to_string();
        assert!(e.contains("target distance"), "{e}");
    }
}
