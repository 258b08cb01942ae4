//! The spike-train distance d(u, v) of MiV-Simulator-Cases' `3-interface-api/rc-separation.py`
//! (`gaussian_conv` and `spike_train_distance`, after Maass, Natschläger & Markram 2002), re-derived here.
//!
//! For a duration `T` (ms), kernel width `tau` (ms) and grid step `dt` (ms), the case computes, with numpy:
//!
//! 1. the grid `t = arange(0, T + dt, dt)`: `N = ceil((T + dt) / dt)` points (5001 for T = 500, dt = 0.1);
//! 2. the spike function `s[j] = 1` if some spike has `int(t_spike / dt) == j`, else 0 (several spikes in one
//!    bin count once);
//! 3. the kernel `x = arange(-3 tau, 3 tau + dt, dt)`, `k[m] = exp(-(x[m] / tau)^2)`: `M = ceil((6 tau + dt) /
//!    dt)` points (301 for tau = 5, dt = 0.1; note `exp(-x²/tau²)`, a Gaussian of s.d. tau/√2, not normalised);
//! 4. `c = convolve(s, k, mode="same")`: numpy returns `L = max(N, M)` points,
//!    `c[i] = Σ_j s[j] k[i - j + off]` with `off = (min(N, M) - 1) / 2` (integer division), terms with the
//!    kernel index outside `[0, M)` dropped: for `N ≥ M` the kernel is centred on each spike and cut at the
//!    grid's ends;
//! 5. `d(u, v) = ‖c_u − c_v‖₂ / T`: the Euclidean norm over the grid points, divided by the duration (no `dt`
//!    factor, no square root of T).
//!
//! [`SpikeTrainDistance::distance`] computes exactly this (the `N < M` case of numpy's `same` mode, a duration
//! under 6 tau, included), adding the kernel at each spike's bin instead of a dense convolution. The kernel
//! abscissae are `-3 tau + m dt`, which equal numpy's `arange` values to rounding (~1e-15).
//! A spike outside the grid (negative, or with `int(t / dt) ≥ N`) is an error: numpy would wrap or fail.

use crate::error::{AnalysisError, Result};

/// The case's distance parameters: kernel `tau` 5 ms, grid `dt` 0.1 ms, kernel half-width `3 tau`.
#[derive(Debug, Clone, PartialEq)]
pub struct SpikeTrainDistance {
    /// Duration T (ms): the grid spans [0, T] and the norm is divided by T.
    pub duration: f64,
    pub tau: f64,
    pub dt: f64,
    kernel: Vec<f64>,
    grid: usize,
}

/// Length of numpy's `arange(start, stop, step)`.
fn arange_len(start: f64, stop: f64, step: f64) -> usize {
    ((stop - start) / step).ceil().max(0.0) as usize
}

impl SpikeTrainDistance {
    /// The case's distance over `duration` ms (tau 5 ms, dt 0.1 ms).
    pub fn new(duration: f64) -> Result<SpikeTrainDistance> {
        SpikeTrainDistance::with(duration, 5.0, 0.1)
    }

    pub fn with(duration: f64, tau: f64, dt: f64) -> Result<SpikeTrainDistance> {
        let pos = |key: &'static str, v: f64| {
            if v > 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(AnalysisError::BadParameter { key, value: v, why: "must be finite and > 0" })
            }
        };
        pos("duration", duration)?;
        pos("tau", tau)?;
        pos("dt", dt)?;
        let w = 3.0;
        let start = -w * tau;
        let m = arange_len(start, w * tau + dt, dt);
        let kernel = (0..m)
            .map(|i| {
                let x = start + i as f64 * dt;
                (-(x / tau) * (x / tau)).exp()
            })
            .collect();
        Ok(SpikeTrainDistance { duration, tau, dt, kernel, grid: arange_len(0.0, duration + dt, dt) })
    }

    /// Number of grid points N.
    pub fn grid_len(&self) -> usize {
        self.grid
    }

    /// The spike function's set bins of a train, sorted and unique.
    fn bins(&self, train: &[f64]) -> Result<Vec<usize>> {
        let mut b = Vec::with_capacity(train.len());
        for &t in train {
            let j = t / self.dt;
            // Python's int() truncates toward zero; -0.05 / 0.1 would give bin 0 there, but a negative time is
            // outside [0, T] whatever numpy makes of it.
            if !(t >= 0.0) || !(j < self.grid as f64) {
                return Err(AnalysisError::SpikeOutsideGrid { t, duration: self.duration, dt: self.dt });
            }
            b.push(j as usize);
        }
        b.sort_unstable();
        b.dedup();
        Ok(b)
    }

    /// Add `sign` × the kernel placed at each bin to `acc` (length max(N, M)), as numpy's `same` mode places it.
    fn add(&self, acc: &mut [f64], bins: impl IntoIterator<Item = usize>, sign: f64) {
        let (n, m) = (self.grid, self.kernel.len());
        let off = (n.min(m) - 1) / 2;
        let l = acc.len() as isize;
        for j in bins {
            // c[i] gets k[i - j + off] for 0 <= i - j + off < m.
            let lo = (j as isize - off as isize).max(0);
            let hi = (j as isize - off as isize + m as isize).min(l);
            for i in lo..hi {
                acc[i as usize] += sign * self.kernel[(i - j as isize + off as isize) as usize];
            }
        }
    }

    /// d(u, v) = ‖c_u − c_v‖₂ / T, computed as the convolution of s_u − s_v: bins set in both trains cancel
    /// before the kernel is added, so identical trains give exactly 0.
    pub fn distance(&self, u: &[f64], v: &[f64]) -> Result<f64> {
        let (bu, bv) = (self.bins(u)?, self.bins(v)?);
        let mut diff = vec![0.0; self.grid.max(self.kernel.len())];
        self.add(&mut diff, bu.iter().copied().filter(|j| bv.binary_search(j).is_err()), 1.0);
        self.add(&mut diff, bv.iter().copied().filter(|j| bu.binary_search(j).is_err()), -1.0);
        Ok(diff.iter().map(|x| x * x).sum::<f64>().sqrt() / self.duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    // Closed forms. With tau = 5, dt = 0.1 the kernel on the grid is k(n) = exp(-(n dt / tau)²) = exp(-n²/2500),
    // n = -150..=150 (M = 301). Its sum of squares S = Σ exp(-2n²/2500) equals the integral
    // ∫ exp(-2x²/2500) dx = 50 √(π/2) = 62.6657 (a Gaussian this wide sums to its integral to ~1e-300 by
    // Poisson summation; the tails cut at |n| > 150 weigh 50 √(π/2) erfc(3√2) ≈ 1.3e-7, relative 2e-9).
    // Two kernels n bins apart: Σ k(i) k(i-n) = exp(-n²/5000) Σ exp(-2(i - n/2)²/2500) = exp(-n²/5000) S,
    // so for single spikes n bins apart (kernels inside the grid) ‖c_u - c_v‖² = 2 S (1 - exp(-n²/5000)), up to
    // the cut kernels: the products missing from the cross term, 2 Σ_{i>150-n} exp(-(i² + (i+n)²)/2500), are
    // ~1e-5 for n = 50 (first term exp(-13.2)), so d agrees with the closed form to ~1e-6 relative, not better.
    fn s() -> f64 {
        50.0 * (PI / 2.0).sqrt()
    }

    #[test]
    fn grid_and_kernel_sizes_are_numpys() {
        let d = SpikeTrainDistance::new(500.0).unwrap();
        assert_eq!(d.grid_len(), 5001); // len(np.arange(0, 500.1, 0.1))
        assert_eq!(d.kernel.len(), 301); // len(np.arange(-15, 15.1, 0.1))
        assert!((d.kernel[150] - 1.0).abs() < 1e-14 && (d.kernel[0] - (-9.0f64).exp()).abs() < 1e-14);
    }

    #[test]
    fn identical_trains_are_at_distance_zero() {
        let d = SpikeTrainDistance::new(500.0).unwrap();
        let u = [3.3, 17.25, 100.0, 499.95];
        assert_eq!(d.distance(&u, &u).unwrap(), 0.0);
        assert_eq!(d.distance(&[], &[]).unwrap(), 0.0);
        // Two spikes in one bin count once (the case sets s[j] = 1).
        assert_eq!(d.distance(&[10.01, 10.05], &[10.02]).unwrap(), 0.0);
    }

    #[test]
    fn one_spike_against_none() {
        // u = {50.05 ms} (bin 500, kernel inside [0, 1000]), v = {}: d = √S / T = √62.6657 / 100 = 0.0791617.
        let d = SpikeTrainDistance::new(100.0).unwrap();
        let got = d.distance(&[50.05], &[]).unwrap();
        assert!((got - s().sqrt() / 100.0).abs() < 1e-10, "{got}");
        assert!((got - 0.0791617).abs() < 1e-7);
        // At the grid's start (bin 0) only n = 0..=150 remain: Σ = (S + 1) / 2, d = √((S+1)/2) / T = 0.0566985.
        let edge = d.distance(&[0.05], &[]).unwrap();
        assert!((edge - ((s() + 1.0) / 2.0).sqrt() / 100.0).abs() < 1e-10, "{edge}");
    }

    #[test]
    fn two_single_spike_trains_match_the_closed_form() {
        let d = SpikeTrainDistance::new(100.0).unwrap();
        // 5 ms apart (n = 50): ‖.‖² = 2 S (1 - e^-0.5) = 125.3314 × 0.393469 = 49.3137, d = 7.022398 / 100.
        let got = d.distance(&[40.05], &[45.05]).unwrap();
        let want = (2.0 * s() * (1.0 - (-0.5f64).exp())).sqrt() / 100.0;
        assert!((got / want - 1.0).abs() < 1e-6, "{got} {want}");
        assert!((got - 0.07022398).abs() < 1e-7, "{got}");
        // 1.1 ms apart (odd n = 11): the same form holds, d = √(2 S (1 - e^-0.0242)) / 100.
        let got = d.distance(&[40.05], &[41.15]).unwrap();
        let want = (2.0 * s() * (1.0 - (-121.0f64 / 5000.0).exp())).sqrt() / 100.0;
        assert!((got / want - 1.0).abs() < 1e-6, "{got} {want}");
        // Far apart (40 ms > 6 tau): no overlap, ‖.‖² = 2 S, d = √(125.3314) / 100 = 0.111952.
        let got = d.distance(&[20.05], &[60.05]).unwrap();
        assert!((got - 0.111952).abs() < 1e-6, "{got}");
        // Symmetric, and two spikes against none adds their squares when they do not overlap: √(2S)/T again.
        assert_eq!(got, d.distance(&[60.05], &[20.05]).unwrap());
        assert!((d.distance(&[20.05, 60.05], &[]).unwrap() - got).abs() < 1e-12);
    }

    #[test]
    fn tiny_grid_follows_numpys_same_mode() {
        // T = 0.2, dt = 0.1: N = ceil(0.30000000000000004 / 0.1) = 4 < M = 301 (numpy's arange gives 4 points
        // too), so numpy returns 301 points with off = (4 - 1) / 2 = 1:
        // c[i] = Σ_j s[j] k[i - j + 1]. u = {0.05} (bin 0) gives c_u[i] = k[i + 1]; v = {0.15} (bin 1) gives
        // c_v[i] = k[i]. So ‖c_u - c_v‖² = Σ_{i=0}^{299} (k[i+1] - k[i])² + k[300]² (at i = 300, k[301] is past
        // the kernel), summed here from the kernel formula k[m] = exp(-((-15 + 0.1 m) / 5)²).
        let d = SpikeTrainDistance::with(0.2, 5.0, 0.1).unwrap();
        let k = |m: i64| (-((-15.0 + m as f64 * 0.1) / 5.0f64).powi(2)).exp();
        let mut sq = k(300) * k(300);
        for i in 0..300 {
            sq += (k(i + 1) - k(i)).powi(2);
        }
        let got = d.distance(&[0.05], &[0.15]).unwrap();
        assert!((got - sq.sqrt() / 0.2).abs() < 1e-12, "{got}");
        let e = d.distance(&[0.45], &[]).unwrap_err().to_string();
        assert!(e.contains("0.45"), "{e}");
    }
}
