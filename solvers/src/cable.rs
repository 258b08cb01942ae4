//! The cable equation's linear system on a tree and its O(n) Hines solve, in NEURON's formulation: per node a
//! diagonal `d` and right-hand side `rhs`, and per non-root node the coupling `a` (effect of the node on its
//! parent's row) and `b` (effect of the parent on the node's row), with parent index < node index. Membrane
//! nodes are in current density units (mA/cm2, S/cm2); zero-area nodes are given area 100 um2 so that the same
//! coefficients come out in nA and uS (NEURON's convention).

use crate::compartments::{Compartments, NO_PARENT};

/// NEURON's stand-in area (um2) for zero-area nodes.
pub const ZERO_AREA: f64 = 100.0;

/// Area used to scale a node's equation: its membrane area, or [`ZERO_AREA`].
pub fn matrix_area(area: f64) -> f64 {
    if area > 0.0 {
        area
    } else {
        ZERO_AREA
    }
}

/// NEURON's coupling coefficients of one cell: for node i with parent p,
/// a[i] = -100 rinv[i] / area[p] and b[i] = -100 rinv[i] / area[i] (areas per [`matrix_area`]).
pub fn coupling(c: &Compartments) -> (Vec<f64>, Vec<f64>) {
    let n = c.len();
    let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
    for i in 0..n {
        let p = c.parent[i];
        if p != NO_PARENT {
            a[i] = -1e2 * c.rinv[i] / matrix_area(c.area[p as usize]);
            b[i] = -1e2 * c.rinv[i] / matrix_area(c.area[i]);
        }
    }
    (a, b)
}

/// How the solve walks a group's nodes: levels, and runs within them.
///
/// Level `l` is `bounds[l]..bounds[l + 1]`; `bounds[0] = 0`, the last bound is the node count, level 0 holds
/// the roots, and every node of a later level has its parent in an earlier level (the group's depth layout
/// gives that; a node per level after the roots is always valid). A run is a stretch of one level whose
/// parents are consecutive nodes (`parent[i + 1] = parent[i] + 1`): its parents are distinct and contiguous,
/// so a run is solved with slices instead of indices, which the compiler vectorises.
#[derive(Debug, Clone, Default)]
pub(crate) struct Levels {
    bounds: Vec<u32>,
    /// First node of every run of the non-root nodes, then the node count.
    runs: Vec<u32>,
}

/// Runs shorter than this are solved node by node.
const MIN_RUN: usize = 4;

impl Levels {
    /// The levels `bounds` of a forest, checked against `parent`, and their runs. Panics if the levels do not
    /// hold (a bug in the layout that produced them).
    pub(crate) fn new(parent: &[u32], bounds: Vec<u32>) -> Levels {
        let n = parent.len();
        assert!(bounds.first() == Some(&0) && bounds.last() == Some(&(n as u32)), "levels cover the nodes");
        let mut runs = Vec::new();
        for w in bounds.windows(2).skip(1) {
            let (lo, hi) = (w[0] as usize, w[1] as usize);
            for i in lo..hi {
                assert!((parent[i] as usize) < lo, "node {i}: its parent {} is not in an earlier level", parent[i]);
                if i == lo || parent[i] != parent[i - 1] + 1 {
                    runs.push(i as u32);
                }
            }
        }
        runs.push(n as u32);
        Levels { bounds, runs }
    }

    /// Nodes `0..n_roots()` are the roots.
    pub(crate) fn n_roots(&self) -> usize {
        self.bounds.get(1).map_or(0, |&r| r as usize)
    }
}

/// One step's tree solve for a group of cells, fused with the axial currents and the voltage update (the only
/// Hines solve; [`crate::CellGroup`] calls it every step).
///
/// In one sweep from the leaves towards the roots, each node's axial current `rhs[i] -= b[i] (v[p] - v[i])`,
/// `rhs[p] += a[i] (v[p] - v[i])` is added just before the node is eliminated (NEURON's triang); the back
/// substitution (bksub) then leaves the solution dv in `rhs` and sets `v += k dv` (k = 1 for backward Euler, 2
/// for Crank-Nicolson). `d[i]` is replaced by `1 / d[i]` on the way.
///
/// The nodes are taken run by run ([`Levels`]), the elimination from the last run back to the first. Within a
/// run the parents are distinct, so every parent still receives its children's terms in descending node
/// order, and every node sees the operations of the node-by-node loop in the same order (no FMA): the bits do
/// not depend on the runs or the vector width.
#[allow(clippy::too_many_arguments, reason = "the arrays of one tree system; a struct would only rename them")]
pub(crate) fn solve_tree_and_update(
    parent: &[u32],
    a: &[f64],
    b: &[f64],
    d: &mut [f64],
    rhs: &mut [f64],
    v: &mut [f64],
    levels: &Levels,
    k: f64,
) {
    let n = v.len();
    assert!(levels.runs.last() == Some(&(n as u32)) && parent.len() == n, "levels of these nodes");
    let (a, b, d, rhs) = (&a[..n], &b[..n], &mut d[..n], &mut rhs[..n]);
    for w in levels.runs.windows(2).rev() {
        let (lo, hi) = (w[0] as usize, w[1] as usize);
        if hi - lo < MIN_RUN {
            for i in (lo..hi).rev() {
                let p = parent[i] as usize;
                let dv = v[p] - v[i];
                let ri = rhs[i] - b[i] * dv;
                rhs[p] += a[i] * dv;
                let inv = 1.0 / d[i];
                d[i] = inv;
                let f = a[i] * inv;
                d[p] -= f * b[i];
                rhs[p] -= f * ri;
                rhs[i] = ri;
            }
            continue;
        }
        let (p0, len) = (parent[lo] as usize, hi - lo);
        // The parents p0..p0 + len lie in an earlier level, below lo (checked by Levels::new).
        let (d_done, d_run) = d.split_at_mut(lo);
        let (r_done, r_run) = rhs.split_at_mut(lo);
        eliminate_run(
            &a[lo..hi],
            &b[lo..hi],
            &v[lo..hi],
            &v[p0..p0 + len],
            &mut d_run[..len],
            &mut r_run[..len],
            (&mut d_done[p0..p0 + len], &mut r_done[p0..p0 + len]),
        );
    }
    for r in 0..levels.n_roots().min(n) {
        rhs[r] /= d[r];
        v[r] += k * rhs[r];
    }
    for w in levels.runs.windows(2) {
        let (lo, hi) = (w[0] as usize, w[1] as usize);
        let (p0, len) = (parent[lo] as usize, hi - lo);
        let (done, run) = rhs.split_at_mut(lo);
        if len < MIN_RUN {
            for j in 0..len {
                let x = (run[j] - b[lo + j] * done[parent[lo + j] as usize]) * d[lo + j];
                run[j] = x;
                v[lo + j] += k * x;
            }
            continue;
        }
        back_substitute_run(&b[lo..hi], &d[lo..hi], &done[p0..p0 + len], &mut run[..len], &mut v[lo..hi], k);
    }
}

crate::multiversion! {
    /// The elimination of one run: node j of the run has parent j of the parents' slices `(d, rhs)`.
    fn eliminate_run / eliminate_run_generic(
        a: &[f64],
        b: &[f64],
        v: &[f64],
        vp: &[f64],
        d: &mut [f64],
        rhs: &mut [f64],
        parents: (&mut [f64], &mut [f64]),
    ) {
        let (dp, rp) = parents;
        let len = a.len();
        let (b, v, vp, d, rhs, dp, rp) = (&b[..len], &v[..len], &vp[..len], &mut d[..len], &mut rhs[..len], &mut dp[..len], &mut rp[..len]);
        for j in 0..len {
            let dv = vp[j] - v[j];
            let ri = rhs[j] - b[j] * dv;
            let inv = 1.0 / d[j];
            d[j] = inv;
            let f = a[j] * inv;
            dp[j] -= f * b[j];
            rp[j] = (rp[j] + a[j] * dv) - f * ri;
            rhs[j] = ri;
        }
    }
}

crate::multiversion! {
    /// The back substitution of one run: node j of the run has parent j of `rp` (already solved).
    fn back_substitute_run / back_substitute_run_generic(b: &[f64], d: &[f64], rp: &[f64], rhs: &mut [f64], v: &mut [f64], k: f64) {
        let len = rhs.len();
        let (b, d, rp, v) = (&b[..len], &d[..len], &rp[..len], &mut v[..len]);
        for j in 0..len {
            let x = (rhs[j] - b[j] * rp[j]) * d[j];
            rhs[j] = x;
            v[j] += k * x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tiny deterministic generator for test data.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((self.0 >> 11) as f64) / ((1u64 << 53) as f64)
        }
    }

    /// A random tree system: couplings, a diagonal with the axial sums (as assembled in a step), rhs and v.
    struct System {
        a: Vec<f64>,
        b: Vec<f64>,
        d: Vec<f64>,
        rhs: Vec<f64>,
        v: Vec<f64>,
    }

    impl System {
        fn random(rng: &mut Lcg, parent: &[u32], n_roots: usize) -> System {
            let n = parent.len();
            let a: Vec<f64> = (0..n).map(|i| if i < n_roots { 0.0 } else { -0.1 - rng.next() }).collect();
            let b: Vec<f64> = (0..n).map(|i| if i < n_roots { 0.0 } else { -0.1 - rng.next() }).collect();
            let mut d: Vec<f64> = (0..n).map(|_| 0.01 + rng.next()).collect();
            for i in n_roots..n {
                d[i] -= b[i];
                d[parent[i] as usize] -= a[i];
            }
            let rhs: Vec<f64> = (0..n).map(|_| rng.next() - 0.5).collect();
            let v: Vec<f64> = (0..n).map(|_| -70.0 + 20.0 * rng.next()).collect();
            System { a, b, d, rhs, v }
        }
    }

    /// Dense Gaussian elimination with partial pivoting.
    fn dense_solve(mut m: Vec<Vec<f64>>, mut r: Vec<f64>) -> Vec<f64> {
        let n = r.len();
        for k in 0..n {
            let piv = (k..n).max_by(|&i, &j| m[i][k].abs().total_cmp(&m[j][k].abs())).unwrap();
            m.swap(k, piv);
            r.swap(k, piv);
            for i in k + 1..n {
                let f = m[i][k] / m[k][k];
                for j in k..n {
                    m[i][j] -= f * m[k][j];
                }
                r[i] -= f * r[k];
            }
        }
        let mut x = vec![0.0; n];
        for k in (0..n).rev() {
            let s: f64 = (k + 1..n).map(|j| m[k][j] * x[j]).sum();
            x[k] = (r[k] - s) / m[k][k];
        }
        x
    }

    /// Random forests (several cells in one array, roots first), random voltages: the fused solve must equal
    /// a dense solve of the system with the axial currents moved to the right-hand side, and v must move by k dv.
    #[test]
    fn hines_equals_dense_on_random_forests() {
        let mut rng = Lcg(7);
        for trial in 0..200 {
            let n_roots = 1 + trial % 4;
            let n = n_roots + (rng.next() * 60.0) as usize;
            let parent: Vec<u32> =
                (0..n).map(|i| if i < n_roots { 0 } else { (rng.next() * i as f64) as u32 }).collect();
            let System { a, b, d, rhs, v } = System::random(&mut rng, &parent, n_roots);
            let mut m = vec![vec![0.0; n]; n];
            let mut r = rhs.clone();
            for i in 0..n {
                m[i][i] = d[i];
                if i >= n_roots {
                    let p = parent[i] as usize;
                    m[i][p] = b[i];
                    m[p][i] = a[i];
                    let dv = v[p] - v[i];
                    r[i] -= b[i] * dv;
                    r[p] += a[i] * dv;
                }
            }
            let want = dense_solve(m, r);
            let k = if trial % 2 == 0 { 1.0 } else { 2.0 };
            let (mut dd, mut x, mut vv) = (d.clone(), rhs.clone(), v.clone());
            // One node per level after the roots is a valid cut of any forest with parent[i] < i.
            let levels = Levels::new(&parent, std::iter::once(0).chain(n_roots as u32..=n as u32).collect());
            solve_tree_and_update(&parent, &a, &b, &mut dd, &mut x, &mut vv, &levels, k);
            for i in 0..n {
                assert!(
                    (x[i] - want[i]).abs() <= 1e-12 * (1.0 + want[i].abs()),
                    "trial {trial} node {i}: {} vs {}",
                    x[i],
                    want[i]
                );
                assert!((vv[i] - (v[i] + k * want[i])).abs() <= 1e-12 * (1.0 + v[i].abs()), "trial {trial} v {i}");
            }
        }
    }

    /// Forests built level by level (parents in the previous level, wide levels as in a group's layout): the
    /// level-wise back substitution (vector lanes where the CPU has them) gives the bits of one node per level.
    #[test]
    fn wide_levels_give_the_bits_of_one_node_per_level() {
        let mut rng = Lcg(11);
        let mut longest = 0;
        for trial in 0..100 {
            let mut levels = vec![0u32, 1 + (rng.next() * 40.0) as u32];
            let mut parent: Vec<u32> = (0..levels[1]).collect();
            for _ in 0..1 + (rng.next() * 12.0) as usize {
                let (lo, hi) = (levels[levels.len() - 2], levels[levels.len() - 1]);
                let width = 1 + (rng.next() * 70.0) as u32;
                for j in 0..width {
                    // Mostly the next parent (runs, as in a layout of unbranched cables), sometimes any.
                    let next = parent.last().map(|&p| p + 1).filter(|&p| j > 0 && p >= lo && p < hi);
                    match next {
                        Some(p) if rng.next() < 0.8 => parent.push(p),
                        _ => parent.push(lo + (rng.next() * (hi - lo) as f64) as u32),
                    }
                }
                levels.push(hi + width);
            }
            let n = parent.len();
            let n_roots = levels[1] as usize;
            let System { a, b, d, rhs, v } = System::random(&mut rng, &parent, n_roots);
            let k = if trial % 2 == 0 { 1.0 } else { 2.0 };
            let one = Levels::new(&parent, std::iter::once(0).chain(n_roots as u32..=n as u32).collect());
            let levels = Levels::new(&parent, levels);
            longest = longest.max(levels.runs.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0));
            let (mut d1, mut x1, mut v1) = (d.clone(), rhs.clone(), v.clone());
            solve_tree_and_update(&parent, &a, &b, &mut d1, &mut x1, &mut v1, &one, k);
            let (mut d2, mut x2, mut v2) = (d.clone(), rhs.clone(), v.clone());
            solve_tree_and_update(&parent, &a, &b, &mut d2, &mut x2, &mut v2, &levels, k);
            for i in 0..n {
                assert_eq!(x1[i].to_bits(), x2[i].to_bits(), "trial {trial} dv {i}");
                assert_eq!(v1[i].to_bits(), v2[i].to_bits(), "trial {trial} v {i}");
                assert!(x1[i].is_finite() && x1[i] != 0.0, "trial {trial} dv {i} = {}", x1[i]);
            }
        }
        assert!(longest >= 16, "the forests have long runs (longest {longest})");
    }
}
