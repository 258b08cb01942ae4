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

/// One step's tree solve for a group of cells, fused with the axial currents and the voltage update (the only
/// Hines solve; [`crate::CellGroup`] calls it every step).
///
/// The nodes of all cells share the arrays: nodes `0..n_roots` are the roots, and `parent[i] < i` for every
/// other node (the group's layout). In one sweep from the leaves towards the roots, each node's axial current
/// `rhs[i] -= b[i] (v[p] - v[i])`, `rhs[p] += a[i] (v[p] - v[i])` is added just before the node is eliminated
/// (NEURON's triang); the back substitution (bksub) then leaves the solution dv in `rhs` and sets
/// `v += k dv` (k = 1 for backward Euler, 2 for Crank-Nicolson). `d[i]` is replaced by `1 / d[i]` on the way.
///
/// Crate-private because the loops index unchecked: the caller guarantees `parent[i] < i` for `i >= n_roots`
/// (the group asserts it when it builds the layout). The slices are cut to `v.len()` first, so a short array
/// panics there.
#[inline]
#[allow(clippy::too_many_arguments, reason = "the arrays of one tree system; a struct would only rename them")]
pub(crate) fn solve_tree_and_update(
    parent: &[u32],
    a: &[f64],
    b: &[f64],
    d: &mut [f64],
    rhs: &mut [f64],
    v: &mut [f64],
    n_roots: usize,
    k: f64,
) {
    let n = v.len();
    let (v, rhs, d) = (&mut v[..n], &mut rhs[..n], &mut d[..n]);
    let (a, b, parent) = (&a[..n], &b[..n], &parent[..n]);
    for i in (n_roots..n).rev() {
        let p = parent[i] as usize;
        debug_assert!(p < i);
        // SAFETY: the layout guarantees parent[i] < i < n for every non-root node (asserted when built).
        unsafe {
            let dv = *v.get_unchecked(p) - *v.get_unchecked(i);
            let ri = *rhs.get_unchecked(i) - *b.get_unchecked(i) * dv;
            *rhs.get_unchecked_mut(p) += *a.get_unchecked(i) * dv;
            let inv = 1.0 / *d.get_unchecked(i);
            *d.get_unchecked_mut(i) = inv;
            let f = *a.get_unchecked(i) * inv;
            *d.get_unchecked_mut(p) -= f * *b.get_unchecked(i);
            *rhs.get_unchecked_mut(p) -= f * ri;
            *rhs.get_unchecked_mut(i) = ri;
        }
    }
    for r in 0..n_roots.min(n) {
        rhs[r] /= d[r];
        v[r] += k * rhs[r];
    }
    for i in n_roots..n {
        let p = parent[i] as usize;
        // SAFETY: as above, p < i < n.
        unsafe {
            let x = (*rhs.get_unchecked(i) - *b.get_unchecked(i) * *rhs.get_unchecked(p)) * *d.get_unchecked(i);
            *rhs.get_unchecked_mut(i) = x;
            *v.get_unchecked_mut(i) += k * x;
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
            let a: Vec<f64> = (0..n).map(|i| if i < n_roots { 0.0 } else { -0.1 - rng.next() }).collect();
            let b: Vec<f64> = (0..n).map(|i| if i < n_roots { 0.0 } else { -0.1 - rng.next() }).collect();
            // Diagonal: membrane part plus the axial sums, as assembled in a step.
            let mut d: Vec<f64> = (0..n).map(|_| 0.01 + rng.next()).collect();
            for i in n_roots..n {
                d[i] -= b[i];
                d[parent[i] as usize] -= a[i];
            }
            let rhs: Vec<f64> = (0..n).map(|_| rng.next() - 0.5).collect();
            let v: Vec<f64> = (0..n).map(|_| -70.0 + 20.0 * rng.next()).collect();
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
            solve_tree_and_update(&parent, &a, &b, &mut dd, &mut x, &mut vv, n_roots, k);
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
}
