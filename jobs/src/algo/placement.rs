//! Quasi-uniform soma placement inside a layer box, deterministic by seed.
//!
//! MiV places somata with `rbf`'s minimum-energy nodes, which run unseeded. Here a box gets a randomly
//! shifted R3 low-discrepancy sequence (Roberts' generalised golden ratio), scaled to the box, then a few
//! Jacobi repulsion steps that push points apart from neighbours closer than about one mean spacing. Every
//! step depends only on the stream and the inputs, so placement is the same for any rank count.

use miv_partition::Stream;

/// Repulsion tuning: MiV's `nodeiter` (iterations) and `dispersion_delta` (step as a fraction of the mean
/// spacing).
#[derive(Debug, Clone, Copy)]
pub struct Dispersion {
    pub iterations: u32,
    pub delta: f64,
}

/// Mean spacing of `n` points in a box: the 3-D spacing, or the 2-D / 1-D one when the box is thinner than
/// that in some dimensions.
pub fn mean_spacing(n: usize, extent: [f64; 3]) -> f64 {
    let mut e = extent;
    e.sort_by(|a, b| b.total_cmp(a));
    let n = n.max(1) as f64;
    let h3 = (e[0] * e[1] * e[2] / n).cbrt();
    if e[2] >= h3 {
        return h3;
    }
    let h2 = (e[0] * e[1] / n).sqrt();
    if e[1] >= h2 {
        return h2;
    }
    e[0] / n
}

/// `n` points in `[lo, hi]`.
pub fn place_in_box(
    n: usize,
    lo: [f64; 3],
    hi: [f64; 3],
    dispersion: Dispersion,
    stream: &mut Stream,
) -> Vec<[f64; 3]> {
    if n == 0 {
        return Vec::new();
    }
    // R3 sequence: alpha_i = phi^-(i+1) with phi the real root of x^4 = x + 1.
    let phi = 1.220_744_084_605_759_5_f64;
    let alpha = [1.0 / phi, 1.0 / (phi * phi), 1.0 / (phi * phi * phi)];
    let shift = [stream.uniform(), stream.uniform(), stream.uniform()];
    let ext = [hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]];
    let mut pts: Vec<[f64; 3]> = (0..n)
        .map(|k| {
            let mut p = [0.0; 3];
            for d in 0..3 {
                let u = (shift[d] + (k as f64 + 1.0) * alpha[d]).fract();
                p[d] = lo[d] + u * ext[d];
            }
            p
        })
        .collect();
    let h = mean_spacing(n, ext);
    if n > 1 && h > 0.0 {
        for _ in 0..dispersion.iterations {
            repulse(&mut pts, lo, hi, h, dispersion.delta);
        }
    }
    pts
}

/// One Jacobi step: each point moves away from the neighbours within `2h`, weighted by `(h/d)²`, by at most
/// `h/2`, and is reflected back into the box.
fn repulse(pts: &mut [[f64; 3]], lo: [f64; 3], hi: [f64; 3], h: f64, delta: f64) {
    let r = 2.0 * h;
    let grid = Grid::new(pts, lo, hi, r);
    let moves: Vec<[f64; 3]> = (0..pts.len())
        .map(|i| {
            let p = pts[i];
            let mut f = [0.0f64; 3];
            grid.for_neighbours(p, |j| {
                if j == i {
                    return;
                }
                let q = pts[j];
                let d = [p[0] - q[0], p[1] - q[1], p[2] - q[2]];
                let dist = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
                if dist >= r {
                    return;
                }
                // Coincident points separate along a fixed direction chosen by index order.
                let (u, dist) = if dist > 1e-9 * h {
                    ([d[0] / dist, d[1] / dist, d[2] / dist], dist)
                } else {
                    let s = if i < j { 1.0 } else { -1.0 };
                    ([s, 0.0, 0.0], 1e-3 * h)
                };
                let w = (h / dist).powi(2);
                for k in 0..3 {
                    f[k] += w * u[k];
                }
            });
            let mut m = [delta * h * f[0], delta * h * f[1], delta * h * f[2]];
            let len = (m[0] * m[0] + m[1] * m[1] + m[2] * m[2]).sqrt();
            if len > 0.5 * h {
                for x in &mut m {
                    *x *= 0.5 * h / len;
                }
            }
            m
        })
        .collect();
    for (p, m) in pts.iter_mut().zip(moves) {
        for k in 0..3 {
            let mut x = p[k] + m[k];
            if x < lo[k] {
                x = lo[k] + (lo[k] - x);
            }
            if x > hi[k] {
                x = hi[k] - (x - hi[k]);
            }
            p[k] = x.clamp(lo[k], hi[k]);
        }
    }
}

/// A uniform cell list over the box for fixed-radius neighbour queries.
struct Grid {
    lo: [f64; 3],
    cell: f64,
    dims: [usize; 3],
    start: Vec<usize>,
    items: Vec<usize>,
}

impl Grid {
    fn new(pts: &[[f64; 3]], lo: [f64; 3], hi: [f64; 3], r: f64) -> Grid {
        let mut dims = [1usize; 3];
        for d in 0..3 {
            dims[d] = (((hi[d] - lo[d]) / r).floor() as usize).clamp(1, 1 << 10);
        }
        let mut g = Grid { lo, cell: r, dims, start: Vec::new(), items: Vec::new() };
        let ncell = dims[0] * dims[1] * dims[2];
        let idx: Vec<usize> = pts.iter().map(|p| g.index(g.coords(*p))).collect();
        let mut count = vec![0usize; ncell + 1];
        for &c in &idx {
            count[c + 1] += 1;
        }
        for c in 0..ncell {
            count[c + 1] += count[c];
        }
        let mut fill = count.clone();
        let mut items = vec![0usize; pts.len()];
        for (i, &c) in idx.iter().enumerate() {
            items[fill[c]] = i;
            fill[c] += 1;
        }
        g.start = count;
        g.items = items;
        g
    }

    fn coords(&self, p: [f64; 3]) -> [usize; 3] {
        let mut c = [0usize; 3];
        for d in 0..3 {
            c[d] = (((p[d] - self.lo[d]) / self.cell).floor().max(0.0) as usize).min(self.dims[d] - 1);
        }
        c
    }

    fn index(&self, c: [usize; 3]) -> usize {
        (c[0] * self.dims[1] + c[1]) * self.dims[2] + c[2]
    }

    /// Visit the points in the 3×3×3 block of cells around `p` (cells are at least `r` wide, so every point
    /// within `r` is visited), in a fixed order.
    fn for_neighbours(&self, p: [f64; 3], mut f: impl FnMut(usize)) {
        let c = self.coords(p);
        let range = |d: usize| c[d].saturating_sub(1)..=(c[d] + 1).min(self.dims[d] - 1);
        for a in range(0) {
            for b in range(1) {
                for z in range(2) {
                    let k = self.index([a, b, z]);
                    for &i in &self.items[self.start[k]..self.start[k + 1]] {
                        f(i);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use miv_partition::Purpose;

    fn nearest(pts: &[[f64; 3]]) -> Vec<f64> {
        pts.iter()
            .enumerate()
            .map(|(i, p)| {
                pts.iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, q)| ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2)).sqrt())
                    .fold(f64::INFINITY, f64::min)
            })
            .collect()
    }

    #[test]
    fn points_stay_in_the_box_and_are_deterministic() {
        let d = Dispersion { iterations: 10, delta: 0.1 };
        let (lo, hi) = ([0.0, 0.0, 5.0], [200.0, 200.0, 50.0]);
        let a = place_in_box(223, lo, hi, d, &mut Stream::new(1, Purpose::named("t"), 0));
        let b = place_in_box(223, lo, hi, d, &mut Stream::new(1, Purpose::named("t"), 0));
        assert_eq!(a, b);
        let c = place_in_box(223, lo, hi, d, &mut Stream::new(2, Purpose::named("t"), 0));
        assert_ne!(a, c);
        assert!(a.iter().all(|p| (0..3).all(|k| p[k] >= lo[k] && p[k] <= hi[k])));
    }

    /// Quasi-uniform means more regular than uniform random: the smallest nearest-neighbour distance is far
    /// larger and the nearest-neighbour distances vary less.
    #[test]
    fn placement_is_more_regular_than_uniform_random() {
        let d = Dispersion { iterations: 10, delta: 0.1 };
        for (n, lo, hi) in [(223, [0.0, 0.0, 5.0], [200.0, 200.0, 50.0]), (35, [0.0, 0.0, 0.0], [200.0, 200.0, 5.0])] {
            let q = place_in_box(n, lo, hi, d, &mut Stream::new(3, Purpose::named("q"), 0));
            let mut s = Stream::new(3, Purpose::named("u"), 0);
            let u: Vec<[f64; 3]> = (0..n).map(|_| [0, 1, 2].map(|k| s.uniform_range(lo[k], hi[k]))).collect();
            let (nq, nu) = (nearest(&q), nearest(&u));
            let min = |v: &[f64]| v.iter().cloned().fold(f64::INFINITY, f64::min);
            let cv = |v: &[f64]| {
                let m = v.iter().sum::<f64>() / v.len() as f64;
                (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt() / m
            };
            let h = mean_spacing(n, [hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]]);
            assert!(min(&nq) > 0.3 * h, "{n}: min nn {} vs spacing {h}", min(&nq));
            assert!(min(&nq) > 2.0 * min(&nu), "{n}: {} vs random {}", min(&nq), min(&nu));
            assert!(cv(&nq) < 0.6 * cv(&nu), "{n}: cv {} vs random {}", cv(&nq), cv(&nu));
        }
    }

    #[test]
    fn spacing_follows_the_box_shape() {
        assert!((mean_spacing(1000, [100.0, 100.0, 100.0]) - 10.0).abs() < 1e-9);
        assert!((mean_spacing(100, [200.0, 200.0, 5.0]) - 20.0).abs() < 1e-9);
        assert!((mean_spacing(10, [100.0, 1.0, 1.0]) - 10.0).abs() < 1e-9);
    }
}
