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

/// Axial currents into the right-hand side: rhs[i] -= b[i] (v[p] - v[i]), rhs[p] += a[i] (v[p] - v[i]).
/// `parent` and the arrays are indexed from the cell's first node (the root, whose parent is ignored).
#[inline]
pub fn add_axial_currents(parent: &[u32], a: &[f64], b: &[f64], v: &[f64], rhs: &mut [f64], base: usize) {
    let n = v.len();
    for i in 1..n {
        let p = parent[i] as usize - base;
        let dv = v[p] - v[i];
        rhs[i] -= b[i] * dv;
        rhs[p] += a[i] * dv;
    }
}

/// Solve the tree system of one cell in place (NEURON's triang + bksub); the solution replaces `rhs`.
/// Node 0 is the root; `parent[i] - base` < i for every other node.
#[inline]
pub fn hines_solve(parent: &[u32], a: &[f64], b: &[f64], d: &mut [f64], rhs: &mut [f64], base: usize) {
    let n = d.len();
    let (parent, a, b, rhs) = (&parent[..n], &a[..n], &b[..n], &mut rhs[..n]);
    for i in (1..n).rev() {
        let p = parent[i] as usize - base;
        let f = a[i] / d[i];
        d[p] -= f * b[i];
        rhs[p] -= f * rhs[i];
    }
    rhs[0] /= d[0];
    for i in 1..n {
        let p = parent[i] as usize - base;
        rhs[i] -= b[i] * rhs[p];
        rhs[i] /= d[i];
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

    #[test]
    fn hines_equals_dense_on_random_trees() {
        let mut rng = Lcg(7);
        for trial in 0..200 {
            let n = 1 + (rng.next() * 60.0) as usize;
            let base = (trial % 3) * 1000;
            let parent: Vec<u32> =
                (0..n).map(|i| if i == 0 { 0 } else { (base + (rng.next() * i as f64) as usize) as u32 }).collect();
            let a: Vec<f64> = (0..n).map(|i| if i == 0 { 0.0 } else { -0.1 - rng.next() }).collect();
            let b: Vec<f64> = (0..n).map(|i| if i == 0 { 0.0 } else { -0.1 - rng.next() }).collect();
            // Diagonal: membrane part plus the axial sums, as assembled in a step.
            let mut d: Vec<f64> = (0..n).map(|_| 0.01 + rng.next()).collect();
            for i in 1..n {
                d[i] -= b[i];
                d[parent[i] as usize - base] -= a[i];
            }
            let rhs: Vec<f64> = (0..n).map(|_| rng.next() - 0.5).collect();
            let mut m = vec![vec![0.0; n]; n];
            for i in 0..n {
                m[i][i] = d[i];
                if i > 0 {
                    let p = parent[i] as usize - base;
                    m[i][p] = b[i];
                    m[p][i] = a[i];
                }
            }
            let want = dense_solve(m, rhs.clone());
            let (mut dd, mut x) = (d.clone(), rhs.clone());
            hines_solve(&parent, &a, &b, &mut dd, &mut x, base);
            for i in 0..n {
                assert!(
                    (x[i] - want[i]).abs() <= 1e-12 * (1.0 + want[i].abs()),
                    "trial {trial} node {i}: {} vs {}",
                    x[i],
                    want[i]
                );
            }
        }
    }
}
