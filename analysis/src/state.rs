//! State distance between two readouts and its statistics over trials, as `rc-separation.py` computes them:
//! `state_distance = np.abs(u[:, 1] - v[:, 1])` per time point, then `np.mean(…, axis=0)` and
//! `np.std(…, axis=0)` over trials (population s.d., ddof = 0).

use crate::error::{AnalysisError, Result};

/// |u(t) − v(t)| per time point of two readouts sampled at the same times (e.g. two LFP traces).
pub fn state_distance(u: &[f64], v: &[f64]) -> Result<Vec<f64>> {
    if u.len() != v.len() {
        return Err(AnalysisError::LengthMismatch { u: u.len(), v: v.len() });
    }
    Ok(u.iter().zip(v).map(|(a, b)| (a - b).abs()).collect())
}

/// Mean and population s.d. (ddof = 0, numpy's default) per time point over trials.
#[derive(Debug, Clone, PartialEq)]
pub struct MeanSd {
    pub mean: Vec<f64>,
    pub sd: Vec<f64>,
}

impl MeanSd {
    /// Statistics over `trials`, each one series of the same length.
    pub fn over_trials<T: AsRef<[f64]>>(trials: &[T]) -> Result<MeanSd> {
        let first = trials.first().ok_or(AnalysisError::NoTrials)?.as_ref().len();
        for t in trials {
            if t.as_ref().len() != first {
                return Err(AnalysisError::LengthMismatch { u: first, v: t.as_ref().len() });
            }
        }
        let n = trials.len() as f64;
        let mut mean = vec![0.0; first];
        for t in trials {
            for (m, x) in mean.iter_mut().zip(t.as_ref()) {
                *m += x;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut sd = vec![0.0; first];
        for t in trials {
            for ((s, x), m) in sd.iter_mut().zip(t.as_ref()).zip(&mean) {
                *s += (x - m) * (x - m);
            }
        }
        sd.iter_mut().for_each(|s| *s = (*s / n).sqrt());
        Ok(MeanSd { mean, sd })
    }

    /// The mean over time of the mean curve (the case's legend value, `np.mean(state_distance_avg)`).
    pub fn overall_mean(&self) -> f64 {
        self.mean.iter().sum::<f64>() / self.mean.len().max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_distance_mean_and_sd_by_hand() {
        // Trial 1: |[1, 2, 3] - [1, 0, 4]| = [0, 2, 1]; trial 2: |[0, 0, 0] - [2, 2, 1]| = [2, 2, 1].
        let a = state_distance(&[1.0, 2.0, 3.0], &[1.0, 0.0, 4.0]).unwrap();
        let b = state_distance(&[0.0, 0.0, 0.0], &[2.0, 2.0, 1.0]).unwrap();
        assert_eq!(a, vec![0.0, 2.0, 1.0]);
        // Mean [1, 2, 1]; s.d. (ddof 0) [√((1+1)/2), 0, 0] = [1, 0, 0]; overall mean 4/3.
        let s = MeanSd::over_trials(&[a, b]).unwrap();
        assert_eq!(s.mean, vec![1.0, 2.0, 1.0]);
        assert_eq!(s.sd, vec![1.0, 0.0, 0.0]);
        assert!((s.overall_mean() - 4.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(matches!(state_distance(&[1.0], &[]), Err(AnalysisError::LengthMismatch { u: 1, v: 0 })));
        let none: [Vec<f64>; 0] = [];
        assert!(matches!(MeanSd::over_trials(&none), Err(AnalysisError::NoTrials)));
        assert!(MeanSd::over_trials(&[vec![1.0], vec![1.0, 2.0]]).is_err());
    }
}
