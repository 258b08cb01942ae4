//! Local field potential at a point electrode: MiV's `lfp.py` (Schomburg et al. 2012 line-source method).
//!
//! The LFP is `Σ k_seg · i_membrane(seg)` over the segments of the selected cells, sampled every `dt_lfp`.
//! Cells whose soma lies within `max_e_dist` of the electrode are always included ("proximal"); the others are
//! included with probability `fdst` and their coefficients scaled by `1/fdst` ("distal"). The sample for each
//! cell is drawn from a stream keyed by (seed, population, gid), so the selection does not depend on ranks.
//!
//! Two deliberate departures from MiV's code, both documented in docs/engine.md: each segment is a line source
//! from its own start to its own end (MiV pairs segment j with interpolation point j, one node off, and takes
//! `area()` of whatever section is currently accessed); and the sum over cells and ranks is exact (fixed
//! point), so the LFP is bit-identical for any rank count, where MiV's floating `allreduce` is not.

use miv_config::LfpConfig;
use miv_partition::{Purpose, Stream};

/// Why a cell contributes to the LFP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LfpRole {
    /// Soma within `max_e_dist`: always included.
    Proximal,
    /// Sampled with probability `fdst`; coefficients scaled by `1/fdst`.
    Distal,
}

/// Decide whether cell `gid` of the `pop_index`-th population (in sorted name order) contributes.
pub fn select_cell(cfg: &LfpConfig, pop_index: usize, gid: u64, soma: [f64; 3]) -> Option<LfpRole> {
    let purpose = Purpose(Purpose::named("lfp cell sample").0 ^ pop_index as u64);
    let draw = Stream::new(cfg.seed, purpose, gid).uniform();
    if dist(soma, cfg.position) < cfg.max_e_dist {
        Some(LfpRole::Proximal)
    } else if draw < cfg.fdst {
        Some(LfpRole::Distal)
    } else {
        None
    }
}

fn dist(a: [f64; 3], b: [f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

/// Point along a polyline at arc length `s` (linear interpolation, clamped to the ends).
pub fn point_at_arc(points: &[[f64; 3]], arc: &[f64], s: f64) -> [f64; 3] {
    debug_assert_eq!(points.len(), arc.len());
    if points.len() == 1 || s <= arc[0] {
        return points[0];
    }
    let last = points.len() - 1;
    if s >= arc[last] {
        return points[last];
    }
    let i = arc.partition_point(|&a| a <= s).clamp(1, last);
    let (a0, a1) = (arc[i - 1], arc[i]);
    let f = if a1 > a0 { (s - a0) / (a1 - a0) } else { 0.0 };
    let (p, q) = (points[i - 1], points[i]);
    [p[0] + f * (q[0] - p[0]), p[1] + f * (q[1] - p[1]), p[2] + f * (q[2] - p[2])]
}

/// The line-source transfer factor `(1/l) ∫_0^l dx / |E − (a + x u)|` (1/um) for a segment from `a` to `b`.
/// `r_min` (um) keeps an electrode that sits on the segment's axis finite.
pub fn line_source(e: [f64; 3], a: [f64; 3], b: [f64; 3], r_min: f64) -> f64 {
    let d = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
    let l = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
    let ea = [e[0] - a[0], e[1] - a[1], e[2] - a[2]];
    if l <= 0.0 {
        return 1.0 / (ea[0] * ea[0] + ea[1] * ea[1] + ea[2] * ea[2]).sqrt().max(r_min);
    }
    let u = [d[0] / l, d[1] / l, d[2] / l];
    let s = ea[0] * u[0] + ea[1] * u[1] + ea[2] * u[2];
    let perp2 = (ea[0] * ea[0] + ea[1] * ea[1] + ea[2] * ea[2] - s * s).max(0.0);
    // ∫_0^l dx / sqrt((x-s)^2 + r^2) = ln(N/D) with N = |E-b| + (l-s), D = |E-a| - s, each rewritten to avoid
    // cancellation on the side where the electrode's projection lies.
    let val = if s > l {
        let (da, db) = ((s * s + perp2).sqrt(), ((s - l) * (s - l) + perp2).sqrt());
        ((da + s) / (db + s - l)).ln()
    } else if s < 0.0 {
        let (da, db) = ((s * s + perp2).sqrt(), ((s - l) * (s - l) + perp2).sqrt());
        ((db + l - s) / (da - s)).ln()
    } else {
        let r2 = perp2.max(r_min * r_min);
        let (da, db) = ((s * s + r2).sqrt(), ((s - l) * (s - l) + r2).sqrt());
        ((db + l - s) * (da + s) / r2).ln()
    };
    val / l
}

/// Coefficients `k` (mV per nA of membrane current) for the segments of one section, given its 3-D centreline
/// (`points` with cumulative arc lengths `arc`, um) and `nseg`. `scale` is 1 for proximal cells and `1/fdst`
/// for distal ones. With the membrane current of a segment in nA (NEURON's `i_membrane_`), `k·I` equals MiV's
/// `1e-4·area·rho/(4πl)·ln(..)·i_membrane` with i_membrane in mA/cm2.
pub fn section_coefficients(
    cfg: &LfpConfig,
    points: &[[f64; 3]],
    arc: &[f64],
    nseg: usize,
    r_min: f64,
    scale: f64,
) -> Vec<f64> {
    let total = *arc.last().unwrap_or(&0.0);
    (0..nseg)
        .map(|j| {
            let a = point_at_arc(points, arc, total * j as f64 / nseg as f64);
            let b = point_at_arc(points, arc, total * (j + 1) as f64 / nseg as f64);
            // 1e-2: nA * ohm cm / um -> mV.
            let k = 1e-2 * cfg.rho / (4.0 * std::f64::consts::PI) * line_source(cfg.position, a, b, r_min);
            if k.is_finite() {
                k * scale
            } else {
                0.0
            }
        })
        .collect()
}

/// NEURON 9's `Random(seed)` with `uniform(0, 1)`: a Random123 Philox4x32-10 stream with counter
/// `(sequence, 0, seed, 55)` and global index 0, each draw `(u + 1) / (2^32 + 1)` of the next 32-bit word.
/// (NEURON 8 used libg++'s ACG generator instead; MiV's LFP cell choice depends on the NEURON version.)
#[derive(Debug, Clone)]
pub struct NeuronRandom {
    counter: [u32; 4],
    words: [u32; 4],
    next: usize,
}

impl NeuronRandom {
    pub fn new(seed: u32) -> NeuronRandom {
        let counter = [0, 0, seed, 55];
        NeuronRandom { counter, words: philox4x32(counter), next: 0 }
    }

    /// The next draw of `uniform(0, 1)` (or `repick()`).
    pub fn uniform(&mut self) -> f64 {
        let u = self.words[self.next];
        self.next += 1;
        if self.next == 4 {
            self.next = 0;
            self.counter[0] = self.counter[0].wrapping_add(1);
            if self.counter[0] == 0 {
                self.counter[1] = self.counter[1].wrapping_add(1);
            }
            self.words = philox4x32(self.counter);
        }
        (u as f64 + 1.0) / 4_294_967_297.0
    }
}

/// Philox4x32 with 10 rounds and key (0, 0) (Salmon et al. 2011, as Random123 defines it).
fn philox4x32(mut c: [u32; 4]) -> [u32; 4] {
    let mut k = [0u32, 0u32];
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(0x9E37_79B9), k[1].wrapping_add(0xBB67_AE85)];
        }
        let p0 = 0xD251_1F53u64 * c[0] as u64;
        let p1 = 0xCD9E_8D57u64 * c[2] as u64;
        c = [((p1 >> 32) as u32) ^ c[1] ^ k[0], p1 as u32, ((p0 >> 32) as u32) ^ c[3] ^ k[1], p0 as u32];
    }
    c
}

/// The order in which CPython (3.8 to 3.12) iterates `set(keys).difference(other)` when `keys` yields the
/// non-negative integers `keys` in this order and `other` is empty: MiV's `pop_gid_dict` in `lfp.py`.
pub fn python_set_order(keys: &[u64]) -> Vec<u64> {
    // set(iterable): one insertion at a time, growing x4 when 3/5 full.
    let mut set = PySet::new();
    for &k in keys {
        set.add(k);
    }
    // difference with an empty set: a copy (table of size >= 2 * used, keys reinserted in slot order) when
    // len >= 4, else a new set filled by adding the keys in iteration order.
    let mut out = PySet::new();
    if keys.len() >> 2 > 0 {
        if set.used * 5 >= out.mask * 3 {
            out.resize(set.used * 2);
        }
        if out.mask == set.mask {
            out = set;
        } else {
            for k in set.iter() {
                out.add(k);
            }
        }
    } else {
        for k in set.iter() {
            out.add(k);
        }
    }
    out.iter().collect()
}

struct PySet {
    table: Vec<Option<u64>>,
    mask: usize,
    used: usize,
}

impl PySet {
    fn new() -> PySet {
        PySet { table: vec![None; 8], mask: 7, used: 0 }
    }

    fn slot(&self, hash: u64) -> usize {
        // CPython's probe: a run of up to 9 linear probes, then perturbed jumps.
        let mask = self.mask;
        let mut perturb = hash as usize;
        let mut i = hash as usize & mask;
        loop {
            if self.table[i].is_none() {
                return i;
            }
            if i + 9 <= mask {
                for j in 1..=9 {
                    if self.table[i + j].is_none() {
                        return i + j;
                    }
                }
            }
            perturb >>= 5;
            i = (i.wrapping_mul(5).wrapping_add(1).wrapping_add(perturb)) & mask;
        }
    }

    fn add(&mut self, k: u64) {
        let i = self.slot(k);
        self.table[i] = Some(k);
        self.used += 1;
        if self.used * 5 >= self.mask * 3 {
            self.resize(if self.used > 50_000 { self.used * 2 } else { self.used * 4 });
        }
    }

    fn resize(&mut self, min_used: usize) {
        let mut size = 8;
        while size <= min_used {
            size <<= 1;
        }
        let old = std::mem::replace(&mut self.table, vec![None; size]);
        self.mask = size - 1;
        for k in old.into_iter().flatten() {
            let i = self.slot(k);
            self.table[i] = Some(k);
        }
    }

    fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.table.iter().flatten().copied()
    }
}

/// MiV's coefficients for one section (`lfp.py`, `setup_lfp_coeffs`), before they are written into the cell's
/// vector: segment `j` uses interpolation point `j` of the grid {0, (k - 1/2)/nseg, 1} along the section's
/// 3-D points (`points`, arc lengths `arc`), `l = L/nseg`, `area_at(x)` the area (um2) NEURON's `area(x)`
/// returns for the segment's `x`, and `scale` 1 or `1/fdst`. Multiplied by a membrane current density in
/// mA/cm2 they give MiV's LFP units.
pub fn miv_section_coefficients(
    cfg: &LfpConfig,
    points: &[[f64; 3]],
    arc: &[f64],
    nseg: usize,
    area_at: impl Fn(f64) -> f64,
    scale: f64,
) -> Vec<f64> {
    let total = *arc.last().unwrap_or(&0.0);
    let grid = |j: usize| -> [f64; 3] {
        let f = if j == 0 { 0.0 } else { (j as f64 - 0.5) / nseg as f64 };
        point_at_arc(points, arc, f * total)
    };
    let s0 = grid(0);
    let e = cfg.position;
    let l = total / nseg as f64;
    (0..nseg)
        .map(|j| {
            let p = grid(j);
            let rd = dist(e, p);
            let ld = dist(p, s0);
            let sd = l - ld;
            let x = (j as f64 + 0.5) / nseg as f64;
            let k = 1e-4
                * area_at(x)
                * (cfg.rho / (4.0 * std::f64::consts::PI * l))
                * (((ld * ld + rd * rd).sqrt() - ld) / ((sd * sd + rd * rd).sqrt() - sd)).ln().abs();
            if k.is_nan() {
                0.0
            } else {
                k * scale
            }
        })
        .collect()
}

/// What MiV's LFP needs besides the electrode (`miv_compat`): each cell's draw from NEURON's `Random` (as MiV
/// makes them on one rank) and the segment areas (um2) of the section whose `area(x)` MiV takes.
#[derive(Debug, Clone, Default)]
pub struct MivLfpContext {
    pub draws: std::collections::HashMap<u64, f64>,
    pub reference_areas: Vec<f64>,
}

impl MivLfpContext {
    /// The draws for populations given as (sorted-name index, ascending gids of the population): MiV's
    /// `Random(seed + index)`, one discarded `uniform(0, 1)`, then one `repick()` per gid in set order.
    pub fn draws_for(seed: u64, populations: &[(usize, Vec<u64>)]) -> std::collections::HashMap<u64, f64> {
        let mut out = std::collections::HashMap::new();
        for (index, gids) in populations {
            let mut r = NeuronRandom::new((seed + *index as u64) as u32);
            r.uniform();
            for g in python_set_order(gids) {
                out.insert(g, r.uniform());
            }
        }
        out
    }

    /// NEURON's `area(x)` on the reference section: the area of the segment containing `x`.
    pub fn area_at(&self, x: f64) -> f64 {
        let n = self.reference_areas.len();
        if n == 0 {
            return 0.0;
        }
        self.reference_areas[((x * n as f64) as usize).min(n - 1)]
    }
}

/// The order of a cell's sections in MiV's templates' `all` list: soma, dendrites (basal and apical, by
/// index), axon, ais; other types are not in it. Input: each section's SWC type.
pub fn miv_all_order(types: &[i32]) -> Vec<usize> {
    let rank = |t: i32| match t {
        1 => Some(0),
        3 | 4 => Some(1),
        2 => Some(2),
        7 => Some(3),
        _ => None,
    };
    let mut order: Vec<(usize, usize)> =
        types.iter().enumerate().filter_map(|(i, &t)| rank(t).map(|r| (r, i))).collect();
    order.sort();
    order.into_iter().map(|(_, i)| i).collect()
}

/// An exact, order-independent sum of f64 terms: each term is rounded once to a multiple of 2^-96 and the
/// multiples are added as integers. Any grouping of the same terms (over cells, threads or ranks) gives the
/// same bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExactSum(pub i128);

const FIXED_SCALE: f64 = 79_228_162_514_264_337_593_543_950_336.0; // 2^96

impl ExactSum {
    /// Add one term; terms must satisfy |x| < 2^30 (they are LFP contributions in mV).
    pub fn add(&mut self, x: f64) {
        if x.is_finite() {
            self.0 = self.0.wrapping_add((x * FIXED_SCALE).round() as i128);
        }
    }
    pub fn merge(&mut self, other: ExactSum) {
        self.0 = self.0.wrapping_add(other.0);
    }
    pub fn value(&self) -> f64 {
        self.0 as f64 / FIXED_SCALE
    }
    /// As two u64 words (low, high) for transport.
    pub fn to_words(self) -> [u64; 2] {
        let u = self.0 as u128;
        [u as u64, (u >> 64) as u64]
    }
    pub fn from_words(w: [u64; 2]) -> ExactSum {
        ExactSum(((w[1] as u128) << 64 | w[0] as u128) as i128)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> LfpConfig {
        LfpConfig {
            label: "e".into(),
            position: [0.0, 0.0, 0.0],
            rho: 333.0,
            fdst: 0.1,
            max_e_dist: 100.0,
            dt_lfp: 0.1,
            seed: 3,
            miv_compat: false,
        }
    }

    #[test]
    fn line_source_matches_numerical_integration() {
        let e = [3.0, 7.0, -2.0];
        let (a, b) = ([10.0, 0.0, 0.0], [40.0, 5.0, 1.0]);
        let n = 200_000;
        let mut acc = 0.0;
        for i in 0..n {
            let f = (i as f64 + 0.5) / n as f64;
            let p = [a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]), a[2] + f * (b[2] - a[2])];
            acc += 1.0 / dist(e, p);
        }
        let numeric = acc / n as f64; // mean of 1/r over the segment = (1/l) ∫ dx/r
        let exact = line_source(e, a, b, 0.0);
        assert!((exact - numeric).abs() < 1e-9 * numeric, "{exact} vs {numeric}");
        // Far away a segment looks like a point source.
        let far = line_source([1e5, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0], 0.0);
        assert!((far * 1e5 - 1.0).abs() < 1e-4);
    }

    #[test]
    fn point_at_arc_interpolates() {
        let pts = [[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [10.0, 10.0, 0.0]];
        let arc = [0.0, 10.0, 20.0];
        assert_eq!(point_at_arc(&pts, &arc, 15.0), [10.0, 5.0, 0.0]);
        assert_eq!(point_at_arc(&pts, &arc, -1.0), [0.0, 0.0, 0.0]);
        assert_eq!(point_at_arc(&pts, &arc, 25.0), [10.0, 10.0, 0.0]);
    }

    #[test]
    fn selection_is_per_gid_and_fdst_fraction() {
        let c = cfg();
        // Proximal cells are always in.
        assert_eq!(select_cell(&c, 0, 5, [10.0, 0.0, 0.0]), Some(LfpRole::Proximal));
        // Far cells: about fdst of them, and the same gid always gives the same answer.
        let n = 20_000;
        let k = (0..n).filter(|&g| select_cell(&c, 1, g, [500.0, 0.0, 0.0]).is_some()).count();
        assert!((k as f64 / n as f64 - 0.1).abs() < 0.01, "{k}");
        assert_eq!(select_cell(&c, 1, 77, [500.0, 0.0, 0.0]), select_cell(&c, 1, 77, [500.0, 0.0, 0.0]));
    }

    #[test]
    fn exact_sum_is_order_independent() {
        let xs: Vec<f64> = (0..1000).map(|i| ((i * 7919) % 1000) as f64 * 1e-3 - 0.37 + 1e-9 * i as f64).collect();
        let mut a = ExactSum::default();
        xs.iter().for_each(|&x| a.add(x));
        let mut parts = [ExactSum::default(); 3];
        for (i, &x) in xs.iter().rev().enumerate() {
            parts[i % 3].add(x);
        }
        let mut b = ExactSum::default();
        parts.iter().for_each(|p| b.merge(*p));
        assert_eq!(a, b);
        let naive: f64 = xs.iter().sum();
        assert!((a.value() - naive).abs() < 1e-9);
        assert_eq!(ExactSum::from_words(a.to_words()), a);
        let neg = ExactSum(-5);
        assert_eq!(ExactSum::from_words(neg.to_words()), neg);
    }

    #[test]
    fn coefficients_scale_with_role_and_distance() {
        let c = cfg();
        let pts = [[50.0, 0.0, 0.0], [150.0, 0.0, 0.0]];
        let arc = [0.0, 100.0];
        let k1 = section_coefficients(&c, &pts, &arc, 2, 0.5, 1.0);
        let k2 = section_coefficients(&c, &pts, &arc, 2, 0.5, 10.0);
        assert!((k2[0] / k1[0] - 10.0).abs() < 1e-12);
        // Point-source limit far away: k = 1e-2 rho / (4 pi r).
        let far = LfpConfig { position: [0.0, 1e5, 0.0], ..cfg() };
        let kf = section_coefficients(&far, &pts, &arc, 1, 0.5, 1.0)[0];
        assert!((kf / (1e-2 * 333.0 / (4.0 * std::f64::consts::PI * 1e5)) - 1.0).abs() < 1e-5);
        assert!(k1[0] > k1[1], "the nearer segment weighs more");
    }

    #[test]
    fn neuron_random_matches_neuron_9() {
        // h.Random(seed).uniform(0, 1) then repick(), printed by NEURON 9.0.2 (12 decimals).
        let cases: [(u32, [f64; 4]); 3] = [
            (2, [0.113863558249, 0.715999814981, 0.330848044406, 0.792588282192]),
            (5, [0.652312193147, 0.502732202992, 0.218669315749, 0.437140822076]),
            (1234567, [0.722321111541, 0.343580395136, 0.556494868929, 0.586274245152]),
        ];
        for (seed, want) in cases {
            let mut r = NeuronRandom::new(seed);
            for w in want {
                let x = r.uniform();
                assert!((x - w).abs() < 1e-12, "seed {seed}: {x} vs {w}");
            }
        }
    }

    #[test]
    fn python_set_order_matches_cpython() {
        // list(set(dict.fromkeys(r).keys()).difference(set())) printed by CPython 3.11.
        let order = |r: Vec<u64>| python_set_order(&r);
        assert_eq!(order((98..106).collect()), (98..106).collect::<Vec<_>>());
        assert_eq!(order((5..9).collect()), vec![8, 5, 6, 7]);
        assert_eq!(order((0..3).collect()), vec![0, 1, 2]);
        let mut want: Vec<u64> = (384..=400).collect();
        want.extend(380..384);
        assert_eq!(order((380..401).collect()), want);
        let mut want: Vec<u64> = (1024..1100).step_by(3).collect();
        want.extend((1000..1024).step_by(3));
        assert_eq!(order((1000..1100).step_by(3).collect()), want);
        let strided = order((0..40).map(|i| 37 * i).collect());
        assert_eq!(&strided[..8], &[0, 259, 518, 777, 1036, 1295, 148, 407]);
        assert_eq!(&strided[34..], &[111, 370, 629, 888, 1147, 1406]);
    }

    #[test]
    fn validation_names_the_key() {
        let mut c = cfg();
        c.fdst = 0.0;
        assert!(c.validate().unwrap_err().contains("fdst"));
    }
}
