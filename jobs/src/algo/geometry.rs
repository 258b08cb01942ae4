//! The network volume of MiV's interface path: an identity map (u, v, l) → (x, y, z), optionally rotated, and
//! arc distances along U and V from an origin.
//!
//! MiV fits RBF interpolants to sampled arc distances of its `LinearVolume`; for the identity volume the arc
//! distance along U is exactly `u − u_origin` (and the same for V), which is what is computed here. The origin
//! follows MiV: the volume spans the total layer extents widened by 0.01 µm on every side, and each origin
//! coordinate is a statistic (`median`, `mean`, `min`, `max`) of an evenly spaced resample of that span, or a
//! given number.

use miv_config::{total_extent, LayerExtents, Origin, Rotation};

/// MiV's safety margin around the total extents of the distance volume.
pub const SAFETY: f64 = 0.01;

/// MiV's `make_rotate3d`: a rotation by the angle (degrees) of the *last* non-zero axis; identity if none.
pub fn rotation_matrix(rotation: Rotation) -> [[f64; 3]; 3] {
    let mut m = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    for (i, &deg) in rotation.iter().enumerate() {
        if deg != 0.0 {
            let mut axis = [0.0; 3];
            axis[i] = 1.0;
            m = rotate3d(axis, deg.to_radians());
        }
    }
    m
}

/// MiV's `rotate3d` (Euler–Rodrigues, counter-clockwise about `axis`).
fn rotate3d(axis: [f64; 3], theta: f64) -> [[f64; 3]; 3] {
    let a = (theta / 2.0).cos();
    let s = -(theta / 2.0).sin();
    let (b, c, d) = (axis[0] * s, axis[1] * s, axis[2] * s);
    let (aa, bb, cc, dd) = (a * a, b * b, c * c, d * d);
    let (bc, ad, ac, ab, bd, cd) = (b * c, a * d, a * c, a * b, b * d, c * d);
    [
        [aa + bb - cc - dd, 2.0 * (bc + ad), 2.0 * (bd - ac)],
        [2.0 * (bc - ad), aa + cc - bb - dd, 2.0 * (cd + ab)],
        [2.0 * (bd + ac), 2.0 * (cd - ab), aa + dd - bb - cc],
    ]
}

/// (x, y, z) of a (u, v, l) point.
pub fn to_xyz(m: &[[f64; 3]; 3], uvl: [f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|r| m[r][0] * uvl[0] + m[r][1] * uvl[1] + m[r][2] * uvl[2])
}

/// The origin and the U/V ranges of the arc-distance volume.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DistanceFrame {
    pub origin: [f64; 3],
    pub lo: [f64; 3],
    pub hi: [f64; 3],
}

impl DistanceFrame {
    pub fn new(extents: &LayerExtents, origin: Origin) -> DistanceFrame {
        let t = total_extent(extents);
        let lo = t.min().map(|x| x - SAFETY);
        let hi = t.max().map(|x| x + SAFETY);
        let o = [origin.u.evaluate(lo[0], hi[0]), origin.v.evaluate(lo[1], hi[1]), origin.l.evaluate(lo[2], hi[2])];
        DistanceFrame { origin: o, lo, hi }
    }

    /// `Reference U Min/Max`, `Reference V Min/Max`: the arc-distance range of the volume.
    pub fn reference_ranges(&self) -> [(f64, f64); 2] {
        [
            (-(self.origin[0] - self.lo[0]), self.hi[0] - self.origin[0]),
            (-(self.origin[1] - self.lo[1]), self.hi[1] - self.origin[1]),
        ]
    }

    /// (U distance, V distance) of a soma, or `None` outside the volume.
    pub fn distances(&self, uvl: [f64; 3]) -> Option<(f64, f64)> {
        if (0..3).all(|i| uvl[i] >= self.lo[i] && uvl[i] <= self.hi[i]) {
            Some((uvl[0] - self.origin[0], uvl[1] - self.origin[1]))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use miv_config::{LayerExtent, OriginValue};

    #[test]
    fn rotation_about_z_by_90_degrees() {
        let m = rotation_matrix([0.0, 0.0, 90.0]);
        let p = to_xyz(&m, [1.0, 0.0, 0.0]);
        assert!((p[0]).abs() < 1e-12 && (p[1] - 1.0).abs() < 1e-12 && p[2].abs() < 1e-12, "{p:?}");
        assert_eq!(rotation_matrix([0.0; 3]), [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
    }

    #[test]
    fn median_origin_of_the_rc_volume() {
        let e: LayerExtents = [
            ("SO".to_string(), LayerExtent([[0.0, 0.0, 0.0], [200.0, 200.0, 5.0]])),
            ("SLM".to_string(), LayerExtent([[0.0, 0.0, 100.0], [200.0, 200.0, 150.0]])),
        ]
        .into();
        let f = DistanceFrame::new(&e, Origin::default());
        assert_eq!(f.origin, [100.0, 100.0, 150.01]);
        for (lo, hi) in f.reference_ranges() {
            assert!((lo + 100.01).abs() < 1e-9 && (hi - 100.01).abs() < 1e-9);
        }
        assert_eq!(f.distances([30.0, 170.0, 2.0]), Some((-70.0, 70.0)));
        assert_eq!(f.distances([30.0, 170.0, 151.0]), None);
        let f = DistanceFrame::new(
            &e,
            Origin { u: OriginValue::Min, v: OriginValue::Coordinate(50.0), l: OriginValue::Max },
        );
        assert_eq!(f.distances([30.0, 170.0, 2.0]), Some((30.01, 120.0)));
    }
}
