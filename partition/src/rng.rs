//! Random streams keyed by (seed, purpose, gid), never by rank or thread.
//!
//! Every random decision in miv (soma placement, synapse locations, connectivity, LFP cell sampling, noise
//! stimuli) draws from a [`Stream`] derived from the run's seed, a fixed purpose tag and the gid it concerns.
//! So a cell's draws are the same whichever rank or thread handles it, and results do not depend on the rank
//! count. The generator is xoshiro256** seeded through SplitMix64 from a hash of the key. The per-instance
//! streams of NMODL mechanisms are [`CounterStream`]s: counter based, restartable, keyed the same way.

/// A purpose tag: which decision a stream serves. Distinct purposes give independent streams for one gid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Purpose(pub u64);

impl Purpose {
    /// A purpose from a name, e.g. `Purpose::named("synapse locations")`, stable across builds.
    pub const fn named(name: &str) -> Purpose {
        // FNV-1a, usable in const context.
        let b = name.as_bytes();
        let mut h: u64 = 0xcbf29ce484222325;
        let mut i = 0;
        while i < b.len() {
            h ^= b[i] as u64;
            h = h.wrapping_mul(0x100000001b3);
            i += 1;
        }
        Purpose(h)
    }
}

/// SplitMix64's increment (the golden ratio in 64 bits).
const SPLITMIX64_GAMMA: u64 = 0x9E3779B97F4A7C15;

/// SplitMix64 step: a good 64-bit mixer, also used to derive keys. The output for state `x` (the state then
/// advances to `x + gamma`, see [`splitmix64_next`]).
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(SPLITMIX64_GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
    z ^ (z >> 31)
}

/// SplitMix64 as a stream: the next output of `state`, which advances.
pub fn splitmix64_next(state: &mut u64) -> u64 {
    let z = splitmix64(*state);
    *state = state.wrapping_add(SPLITMIX64_GAMMA);
    z
}

/// A deterministic random stream (xoshiro256**).
#[derive(Debug, Clone)]
pub struct Stream {
    s: [u64; 4],
    spare_normal: Option<f64>,
}

impl Stream {
    /// The stream for `(seed, purpose, gid)`.
    pub fn new(seed: u64, purpose: Purpose, gid: u64) -> Stream {
        let mut k = splitmix64(seed ^ 0x6D69_7620_7273_6565); // "miv rsee"
        k = splitmix64(k ^ purpose.0);
        k = splitmix64(k ^ gid.wrapping_mul(0xD1342543DE82EF95));
        Stream::from_u64(k)
    }

    /// A stream from one 64-bit value (expanded with SplitMix64).
    pub fn from_u64(mut k: u64) -> Stream {
        let mut s = [0u64; 4];
        for w in &mut s {
            k = k.wrapping_add(0x9E3779B97F4A7C15);
            *w = splitmix64(k);
        }
        if s == [0; 4] {
            s[0] = 1;
        }
        Stream { s, spare_normal: None }
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in (0, 1]: safe for logarithms.
    pub fn uniform_open0(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub fn uniform_range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform integer in [0, n) without modulo bias. `n` must be > 0.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % n;
            }
        }
    }

    /// Standard normal (Box–Muller, polar form, caching the second value).
    pub fn standard_normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        loop {
            let u = 2.0 * self.uniform() - 1.0;
            let v = 2.0 * self.uniform() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                let m = (-2.0 * s.ln() / s).sqrt();
                self.spare_normal = Some(v * m);
                return u * m;
            }
        }
    }

    pub fn normal(&mut self, mean: f64, std: f64) -> f64 {
        mean + std * self.standard_normal()
    }

    /// Exponential with the given mean (scale), as numpy's `exponential(scale)`.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * self.uniform_open0().ln()
    }

    /// Poisson-distributed count with mean `lambda` (inversion for small means, normal-corrected
    /// transformed rejection (PTRS, Hörmann 1993) for large ones).
    pub fn poisson(&mut self, lambda: f64) -> u64 {
        if !(lambda > 0.0) {
            return 0;
        }
        if lambda < 30.0 {
            let l = (-lambda).exp();
            let mut k = 0u64;
            let mut p = self.uniform_open0();
            while p > l {
                k += 1;
                p *= self.uniform_open0();
            }
            return k;
        }
        let slam = lambda.sqrt();
        let loglam = lambda.ln();
        let b = 0.931 + 2.53 * slam;
        let a = -0.059 + 0.02483 * b;
        let invalpha = 1.1239 + 1.1328 / (b - 3.4);
        let vr = 0.9277 - 3.6224 / (b - 2.0);
        loop {
            let u = self.uniform() - 0.5;
            let v = self.uniform_open0();
            let us = 0.5 - u.abs();
            let k = ((2.0 * a / us + b) * u + lambda + 0.43).floor();
            if us >= 0.07 && v <= vr {
                return k as u64;
            }
            if k < 0.0 || (us < 0.013 && v > us) {
                continue;
            }
            if (v.ln() + invalpha.ln() - (a / (us * us) + b).ln()) <= -lambda + k * loglam - ln_gamma(k + 1.0) {
                return k as u64;
            }
        }
    }

    /// Index drawn with probability proportional to `weights` (non-negative, not all zero).
    pub fn choice(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.uniform() * total;
        for (i, &w) in weights.iter().enumerate() {
            if x < w {
                return i;
            }
            x -= w;
        }
        weights.iter().rposition(|&w| w > 0.0).unwrap_or(0)
    }

    /// Multinomial counts of `n` trials over probabilities `p` (summing to ~1), by sequential binomials.
    pub fn multinomial(&mut self, n: u64, p: &[f64]) -> Vec<u64> {
        let mut out = vec![0u64; p.len()];
        let mut left = n;
        let mut mass = 1.0f64;
        for (i, &pi) in p.iter().enumerate() {
            if left == 0 {
                break;
            }
            if i + 1 == p.len() {
                out[i] = left;
                break;
            }
            let q = if mass > 0.0 { (pi / mass).clamp(0.0, 1.0) } else { 0.0 };
            let k = self.binomial(left, q);
            out[i] = k;
            left -= k;
            mass -= pi;
        }
        out
    }

    /// Binomial(n, p): direct for small n, otherwise by Poisson/normal-free inversion on the smaller tail.
    pub fn binomial(&mut self, n: u64, p: f64) -> u64 {
        if n == 0 || p <= 0.0 {
            return 0;
        }
        if p >= 1.0 {
            return n;
        }
        if p > 0.5 {
            return n - self.binomial(n, 1.0 - p);
        }
        if n <= 64 {
            return (0..n).filter(|_| self.uniform() < p).count() as u64;
        }
        // Inversion by the recurrence of the pmf (fine for n*p up to a few thousand).
        let q = 1.0 - p;
        let s = p / q;
        let mut f = q.powf(n as f64);
        if f > 0.0 {
            let mut u = self.uniform();
            let mut k = 0u64;
            while u > f && k < n {
                u -= f;
                f *= s * (n - k) as f64 / (k + 1) as f64;
                k += 1;
            }
            return k;
        }
        // Very large n*p: sum of binomials of halves keeps the recurrence in range.
        let h = n / 2;
        self.binomial(h, p) + self.binomial(n - h, p)
    }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7), accurate to ~1e-15 relative.
pub fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// A counter-based stream (like Random123): the n-th draw is a hash of the key and n, so a stream can
/// be restarted and its state is two words per instance. The NMODL mechanisms' `normrand`, `exprand`,
/// `scop_random` and Gfluct-style VERBATIM generators draw from one per instance, keyed by the engine
/// (seed, purpose, gid, ...), never by rank, thread or chunk layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CounterStream {
    pub key: [u32; 4],
    pub counter: u64,
}

impl CounterStream {
    pub fn new(key: [u32; 4]) -> CounterStream {
        CounterStream { key, counter: 0 }
    }

    fn next_u64(&mut self) -> u64 {
        let k = (u64::from(self.key[0]) << 32 | u64::from(self.key[1]))
            ^ splitmix64(u64::from(self.key[2]) << 32 | u64::from(self.key[3]));
        let x = splitmix64(splitmix64(k) ^ self.counter.wrapping_mul(0xD6E8_FEB8_6659_FD93));
        self.counter = self.counter.wrapping_add(1);
        x
    }

    /// Uniform on (0, 1), never exactly 0 or 1.
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal deviate (Box-Muller; one deviate per two uniforms, so a draw's value does not
    /// depend on whether an earlier draw was used).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Exponential deviate with the given mean.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * self.uniform().ln()
    }

    pub fn restart(&mut self) {
        self.counter = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_stream_gives_the_reference_outputs() {
        // Vigna's splitmix64.c seeded with 0.
        let mut state = 0;
        let got: Vec<u64> = (0..3).map(|_| splitmix64_next(&mut state)).collect();
        assert_eq!(got, [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F]);
        assert_eq!(splitmix64(0), got[0]);
    }

    fn mean_var(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let m = xs.iter().sum::<f64>() / n;
        (m, xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0))
    }

    #[test]
    fn streams_depend_on_key_only() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut s = Stream::new(7, Purpose::named("x"), 42);
                move |_| s.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..4)
            .map({
                let mut s = Stream::new(7, Purpose::named("x"), 42);
                move |_| s.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        let mut c = Stream::new(7, Purpose::named("x"), 43);
        let mut d = Stream::new(7, Purpose::named("y"), 42);
        let mut e = Stream::new(8, Purpose::named("x"), 42);
        assert_ne!(a[0], c.next_u64());
        assert_ne!(a[0], d.next_u64());
        assert_ne!(a[0], e.next_u64());
    }

    #[test]
    fn xoshiro_reference_output() {
        // Reference: xoshiro256** with state {1, 2, 3, 4} (Blackman & Vigna's reference implementation)
        // produces 11520, 0, 1509978240, 1215971899390074240 as its first outputs.
        let mut s = Stream { s: [1, 2, 3, 4], spare_normal: None };
        assert_eq!(s.next_u64(), 11520);
        assert_eq!(s.next_u64(), 0);
        assert_eq!(s.next_u64(), 1509978240);
        assert_eq!(s.next_u64(), 1215971899390074240);
    }

    #[test]
    fn distributions_have_their_moments() {
        let mut s = Stream::new(1, Purpose::named("moments"), 0);
        let n = 200_000;
        let u: Vec<f64> = (0..n).map(|_| s.uniform()).collect();
        let (m, v) = mean_var(&u);
        assert!((m - 0.5).abs() < 0.005 && (v - 1.0 / 12.0).abs() < 0.002);
        let z: Vec<f64> = (0..n).map(|_| s.normal(2.0, 3.0)).collect();
        let (m, v) = mean_var(&z);
        assert!((m - 2.0).abs() < 0.03 && (v.sqrt() - 3.0).abs() < 0.03, "{m} {v}");
        let e: Vec<f64> = (0..n).map(|_| s.exponential(4.0)).collect();
        let (m, v) = mean_var(&e);
        assert!((m - 4.0).abs() < 0.05 && (v - 16.0).abs() < 0.6, "{m} {v}");
        for lam in [0.7, 12.0, 75.0, 1000.0] {
            let p: Vec<f64> = (0..50_000).map(|_| s.poisson(lam) as f64).collect();
            let (m, v) = mean_var(&p);
            let tol = 5.0 * (lam / 50_000.0).sqrt();
            assert!((m - lam).abs() < tol, "poisson {lam}: mean {m}");
            assert!((v / lam - 1.0).abs() < 0.05, "poisson {lam}: var {v}");
        }
        for (n_tr, p) in [(10u64, 0.3), (500, 0.02), (100_000, 0.4)] {
            let b: Vec<f64> = (0..20_000).map(|_| s.binomial(n_tr, p) as f64).collect();
            let (m, v) = mean_var(&b);
            let (em, ev) = (n_tr as f64 * p, n_tr as f64 * p * (1.0 - p));
            assert!((m - em).abs() < 5.0 * (ev / 20_000.0).sqrt() + 1e-9, "binomial {n_tr},{p}: {m}");
            assert!((v / ev - 1.0).abs() < 0.06, "binomial {n_tr},{p}: var {v} vs {ev}");
        }
    }

    #[test]
    fn multinomial_and_choice_follow_weights() {
        let mut s = Stream::new(3, Purpose::named("multi"), 9);
        let p = [0.5, 0.3, 0.2];
        let mut tot = [0u64; 3];
        for _ in 0..2000 {
            let c = s.multinomial(100, &p);
            assert_eq!(c.iter().sum::<u64>(), 100);
            for i in 0..3 {
                tot[i] += c[i];
            }
        }
        for i in 0..3 {
            let f = tot[i] as f64 / 200_000.0;
            assert!((f - p[i]).abs() < 0.005, "{i}: {f}");
        }
        let mut hits = [0u32; 3];
        for _ in 0..60_000 {
            hits[s.choice(&[1.0, 0.0, 3.0])] += 1;
        }
        assert_eq!(hits[1], 0);
        assert!((hits[2] as f64 / 60_000.0 - 0.75).abs() < 0.01);
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        let mut f = 1.0f64;
        for k in 1..30 {
            f *= k as f64;
            assert!((ln_gamma(k as f64 + 1.0) - f.ln()).abs() < 1e-10 * f.ln().max(1.0));
        }
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    }

    #[test]
    fn counter_streams_are_reproducible_and_independent() {
        let mut a = CounterStream::new([1, 2, 3, 4]);
        let mut b = CounterStream::new([1, 2, 3, 4]);
        let mut c = CounterStream::new([1, 2, 3, 5]);
        let xa: Vec<f64> = (0..5).map(|_| a.uniform()).collect();
        let xb: Vec<f64> = (0..5).map(|_| b.uniform()).collect();
        let xc: Vec<f64> = (0..5).map(|_| c.uniform()).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
        a.restart();
        assert_eq!(a.uniform(), xa[0]);
    }

    #[test]
    fn counter_stream_normal_moments() {
        let mut s = CounterStream::new([7, 0, 0, 0]);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| s.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        // 5 standard errors.
        assert!(mean.abs() < 5.0 / (n as f64).sqrt(), "mean {mean}");
        assert!((var - 1.0).abs() < 5.0 * (2.0 / n as f64).sqrt(), "var {var}");
    }
}
