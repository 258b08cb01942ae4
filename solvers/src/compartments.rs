//! NEURON's spatial discretisation of a morphology: every section is cut into `nseg` equal segments with a
//! node at each segment centre, plus a zero-area node at the section's 1-end; the root section's 0-end is a
//! zero-area root node. A child's first centre couples to the node at its parent connection point through the
//! child's own left half-segment resistance. Areas and half-segment resistances come from L/diam for a
//! cylinder, or are integrated over the 3-D points (frustum areas with slant, frustum resistances) as NEURON's
//! `diam_from_list` does. The nseg choice (fixed or the d_lambda rule) is here too.

use crate::morphology::{arc_lengths, Geometry, Morphology, Point3, Section};
use std::f64::consts::PI;

/// Marks the root node's parent.
pub const NO_PARENT: u32 = u32::MAX;

/// The nodes of one section in the cell-local node numbering.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SectionNodes {
    /// Node at x = 0: the parent's node at the connection point (the root node for the root section).
    pub start: u32,
    /// First segment-centre node; centres are `first .. first + nseg`.
    pub first: u32,
    pub nseg: u32,
    /// Zero-area node at x = 1.
    pub end: u32,
    pub length: f64,
}

/// One cell's nodes (cell-local numbering: 0 is the root node, then per section in pre-order its centres and
/// its end node, so a parent always precedes its children).
#[derive(Debug, Clone, PartialEq)]
pub struct Compartments {
    /// Parent node; [`NO_PARENT`] for the root node.
    pub parent: Vec<u32>,
    /// Membrane area (um2); 0 for the zero-area root and end nodes.
    pub area: Vec<f64>,
    /// Axial conductance between the node and its parent (uS); 0 for the root.
    pub rinv: Vec<f64>,
    /// Segment diameter (um, averaged over the segment for point lists); an end node repeats its last segment's.
    pub diam: Vec<f64>,
    /// Section of the node (the root node belongs to the root section).
    pub section: Vec<u32>,
    /// Arc position of the node inside its section: 0 (root node), (j + 0.5) / nseg (centres) or 1 (end).
    pub x: Vec<f64>,
    /// Path distance (um) from the 0-end of the root section, NEURON's `distance()` with that origin.
    pub distance: Vec<f64>,
    /// 3-D position (um) after `define_shape` (see [`Morphology::placed_points`]).
    pub position: Vec<[f64; 3]>,
    pub sections: Vec<SectionNodes>,
}

impl Compartments {
    /// Discretise. `nseg[s]` >= 1 and `ra[s]` (ohm cm) > 0 for every section; the morphology must be valid.
    pub fn build(morph: &Morphology, nseg: &[usize], ra: &[f64]) -> Compartments {
        let ns = morph.sections.len();
        assert_eq!(nseg.len(), ns);
        assert_eq!(ra.len(), ns);
        let placed = morph.placed_points(nseg);
        let total = 1 + nseg.iter().map(|&k| k + 1).sum::<usize>();
        let mut c = Compartments {
            parent: Vec::with_capacity(total),
            area: Vec::with_capacity(total),
            rinv: Vec::with_capacity(total),
            diam: Vec::with_capacity(total),
            section: Vec::with_capacity(total),
            x: Vec::with_capacity(total),
            distance: Vec::with_capacity(total),
            position: Vec::with_capacity(total),
            sections: vec![SectionNodes { start: 0, first: 0, nseg: 0, end: 0, length: 0.0 }; ns],
        };
        let root = morph.root();
        let p0 = placed[root][0];
        c.push(NO_PARENT, 0.0, 0.0, segment_of(morph, nseg, ra, root)[0].diam, root, 0.0, 0.0, [p0.x, p0.y, p0.z]);
        let mut start_distance = vec![0.0; ns];
        for s in morph.preorder() {
            let sec = &morph.sections[s];
            let start = match sec.parent {
                None => 0,
                Some(p) => c.node_at(p, sec.parent_x),
            };
            if let Some(p) = sec.parent {
                start_distance[s] = start_distance[p] + sec.parent_x * c.sections[p].length;
            }
            let segs = segment_of(morph, nseg, ra, s);
            let length = sec.length();
            let k = nseg[s];
            let first = c.parent.len() as u32;
            let arcs = arc_lengths(&placed[s]);
            for (j, g) in segs.iter().enumerate() {
                let parent = if j == 0 { start } else { first + j as u32 - 1 };
                let x = (j as f64 + 0.5) / k as f64;
                let pos = point_at(&placed[s], &arcs, x * arcs[arcs.len() - 1]);
                c.push(parent, g.area, g.rinv, g.diam, s, x, start_distance[s] + x * length, pos);
            }
            let last = &segs[k - 1];
            let pos = point_at(&placed[s], &arcs, arcs[arcs.len() - 1]);
            c.push(first + k as u32 - 1, 0.0, 1.0 / last.r_right, last.diam, s, 1.0, start_distance[s] + length, pos);
            c.sections[s] = SectionNodes { start, first, nseg: k as u32, end: first + k as u32, length };
        }
        c
    }

    #[allow(clippy::too_many_arguments)]
    fn push(&mut self, parent: u32, area: f64, rinv: f64, diam: f64, sec: usize, x: f64, dist: f64, pos: [f64; 3]) {
        self.parent.push(parent);
        self.area.push(area);
        self.rinv.push(rinv);
        self.diam.push(diam);
        self.section.push(sec as u32);
        self.x.push(x);
        self.distance.push(dist);
        self.position.push(pos);
    }

    pub fn len(&self) -> usize {
        self.parent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    /// Node of `section(x)` as NEURON's `node_exact`: x = 0 is the section's start node (its parent's node at
    /// the connection point), x = 1 its end node, otherwise the centre of segment `min(floor(x nseg), nseg-1)`.
    pub fn node_at(&self, section: usize, x: f64) -> u32 {
        let s = &self.sections[section];
        if x <= 0.0 {
            s.start
        } else if x >= 1.0 {
            s.end
        } else {
            let i = ((s.nseg as f64 * x) as u32).min(s.nseg - 1);
            s.first + i
        }
    }

    /// Whether the node carries membrane (segment centres do; root and end nodes do not).
    pub fn has_membrane(&self, node: usize) -> bool {
        self.area[node] > 0.0
    }

    /// Number of nodes with membrane (NEURON's compartment count: the sum of nseg).
    pub fn compartment_count(&self) -> usize {
        self.area.iter().filter(|&&a| a > 0.0).count()
    }
}

/// Area, diameter and half-segment resistances of one segment.
#[derive(Debug, Clone, Copy)]
struct SegmentGeometry {
    area: f64,
    diam: f64,
    /// Conductance (uS) between this centre and the previous node (left half + previous right half).
    rinv: f64,
    /// Right half-segment resistance (MOhm).
    r_right: f64,
}

fn segment_of(morph: &Morphology, nseg: &[usize], ra: &[f64], s: usize) -> Vec<SegmentGeometry> {
    let sec = &morph.sections[s];
    let k = nseg[s];
    let mut out = Vec::with_capacity(k);
    let mut r_prev = 0.0;
    match &sec.geometry {
        Geometry::Cylinder { length, diam } => {
            let dx = length / k as f64;
            for _ in 0..k {
                let area = PI * diam * dx;
                let r_left = 1e-2 * ra[s] * (dx / 2.0) / (PI * diam * diam / 4.0);
                out.push(SegmentGeometry { area, diam: *diam, rinv: 1.0 / (r_left + r_prev), r_right: r_left });
                r_prev = r_left;
            }
        }
        Geometry::Points(p) => {
            for h in integrate_points(p, &sec.arcs(), k) {
                let r_left = h.ri[0] * ra[s] / PI * (4.0 * 0.01);
                let r_right = h.ri[1] * ra[s] / PI * (4.0 * 0.01);
                out.push(SegmentGeometry {
                    area: h.area * 0.5 * PI,
                    diam: h.diam,
                    rinv: 1.0 / (r_prev + r_left),
                    r_right,
                });
                r_prev = r_right;
            }
        }
    }
    out
}

/// Integrals over one segment of a 3-D point section.
struct SegmentIntegral {
    /// Sum of (d1 + d2) * slant length over the frusta.
    area: f64,
    /// Mean diameter.
    diam: f64,
    /// Sum of length / (d1 d2) over the left and the right half.
    ri: [f64; 2],
}

/// NEURON's `diam_from_list` walk over the 3-D points for all `nseg` segments: the diameter is linear between
/// points (extrapolated past the last one), each half segment is integrated piece by piece, and the walk
/// carries its position from half to half, so zero-length steps between repeated points with different
/// diameters add their annulus to the area exactly as NEURON does.
fn integrate_points(p: &[Point3], arcs: &[f64], nseg: usize) -> Vec<SegmentIntegral> {
    let npt = p.len();
    let ds = arcs[npt - 1] / nseg as f64;
    let (mut j, mut x1, mut y1) = (0usize, arcs[0], p[0].diam.abs());
    let mut out = Vec::with_capacity(nseg);
    for inode in 0..nseg {
        let mut si = inode as f64 * ds;
        let mut seg = SegmentIntegral { area: 0.0, diam: 0.0, ri: [0.0; 2] };
        for half in 0..2 {
            let sip = si + ds / 2.0;
            loop {
                let jp = j + 1;
                let (xj, xjp) = (arcs[j], arcs[jp]);
                let (x2, y2, jnext) = if xjp > sip || jp == npt - 1 {
                    let frac = if (xjp - xj).abs() < 1e-10 { 1.0 } else { (sip - xj) / (xjp - xj) };
                    (sip, (1.0 - frac) * p[j].diam.abs() + frac * p[jp].diam.abs(), j)
                } else {
                    (xjp, p[jp].diam.abs(), jp)
                };
                let mut delta = x2 - x1;
                seg.diam += (y2 + y1) * delta;
                if delta < 1e-15 {
                    delta = 1e-15;
                }
                let mut t = y2 * y1 / delta;
                if t == 0.0 {
                    t = 1e-15;
                }
                seg.ri[half] += 1.0 / t;
                let h = 0.5 * (y2 - y1);
                seg.area += (y2 + y1) * (delta * delta + h * h).sqrt();
                x1 = x2;
                y1 = y2;
                if j == jnext {
                    break;
                }
                j = jnext;
            }
            si = sip;
        }
        seg.diam *= 0.5 / ds;
        out.push(seg);
    }
    out
}

fn point_at(p: &[Point3], arcs: &[f64], s: f64) -> [f64; 3] {
    let n = p.len();
    let mut j = 0;
    while j + 2 < n && arcs[j + 1] < s {
        j += 1;
    }
    let (a0, a1) = (arcs[j], arcs[j + 1]);
    let f = if a1 - a0 <= 0.0 { 1.0 } else { ((s - a0) / (a1 - a0)).clamp(0.0, 1.0) };
    [p[j].x + f * (p[j + 1].x - p[j].x), p[j].y + f * (p[j + 1].y - p[j].y), p[j].z + f * (p[j + 1].z - p[j].z)]
}

/// NEURON's AC length constant (um) of a section at `freq` Hz (`lambda_f` of the standard d_lambda code):
/// for a cylinder 1e5 sqrt(diam / (4 pi f Ra cm)); for 3-D points L divided by the electrotonic length summed
/// over the point intervals.
pub fn lambda_f(sec: &Section, ra: f64, cm: f64, freq: f64) -> f64 {
    match &sec.geometry {
        Geometry::Cylinder { diam, .. } => 1e5 * (diam / (4.0 * PI * freq * ra * cm)).sqrt(),
        Geometry::Points(p) => {
            let arcs = sec.arcs();
            let mut lam = 0.0;
            for i in 1..p.len() {
                lam += (arcs[i] - arcs[i - 1]) / (p[i - 1].diam.abs() + p[i].diam.abs()).sqrt();
            }
            lam *= 2f64.sqrt() * 1e-5 * (4.0 * PI * freq * ra * cm).sqrt();
            sec.length() / lam
        }
    }
}

/// The d_lambda rule: the smallest odd nseg with segments no longer than `d_lambda` AC length constants at
/// `freq`, i.e. `int((L / (d_lambda lambda_f) + 0.9) / 2) * 2 + 1`.
pub fn nseg_d_lambda(sec: &Section, ra: f64, cm: f64, d_lambda: f64, freq: f64) -> usize {
    let l = sec.length();
    (((l / (d_lambda * lambda_f(sec, ra, cm, freq)) + 0.9) / 2.0) as usize) * 2 + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::morphology::Section;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn cylinder_matches_neuron_formulas() {
        let m = Morphology::new(vec![Section::cylinder("cable", 3, 1000.0, 1.0)]);
        let c = Compartments::build(&m, &[101], &[100.0]);
        assert_eq!(c.len(), 103);
        let dx = 1000.0 / 101.0;
        assert!(close(c.area[1], PI * dx, 1e-15));
        assert_eq!(c.area[0], 0.0);
        assert_eq!(c.area[102], 0.0);
        let r_half = 1e-2 * 100.0 * (dx / 2.0) / (PI / 4.0);
        assert!(close(c.rinv[1], 1.0 / r_half, 1e-14));
        assert!(close(c.rinv[2], 1.0 / (2.0 * r_half), 1e-14));
        assert!(close(c.rinv[102], 1.0 / r_half, 1e-14));
        assert_eq!(c.node_at(0, 0.0), 0);
        assert_eq!(c.node_at(0, 1.0), 102);
        assert_eq!(c.node_at(0, 0.5), 51);
        assert!(close(c.distance[51], 500.0, 1e-15));
    }

    #[test]
    fn points_of_a_cylinder_give_the_cylinder_values() {
        let pts = (0..7).map(|i| Point3::new(i as f64 * 5.0, 0.0, 0.0, 2.0)).collect();
        let a = Morphology::new(vec![Section::points("s", 3, pts)]);
        let b = Morphology::new(vec![Section::cylinder("s", 3, 30.0, 2.0)]);
        let ca = Compartments::build(&a, &[4], &[80.0]);
        let cb = Compartments::build(&b, &[4], &[80.0]);
        for i in 0..ca.len() {
            assert!(close(ca.area[i], cb.area[i], 1e-12), "area {i}");
            assert!(close(ca.rinv[i], cb.rinv[i], 1e-12), "rinv {i}");
        }
    }

    #[test]
    fn frustum_area_and_resistance() {
        // One cone from d=2 to d=4 over 10 um: lateral area pi (r1 + r2) slant, resistance 4 Ra L / (pi d1 d2).
        let pts = vec![Point3::new(0.0, 0.0, 0.0, 2.0), Point3::new(10.0, 0.0, 0.0, 4.0)];
        let m = Morphology::new(vec![Section::points("s", 3, pts)]);
        let c = Compartments::build(&m, &[1], &[100.0]);
        // Two halves: 0..5 (d 2..3) and 5..10 (d 3..4).
        let slant = |l: f64, d1: f64, d2: f64| PI * (d1 + d2) / 2.0 * (l * l + ((d2 - d1) / 2.0).powi(2)).sqrt();
        assert!(close(c.area[1], slant(5.0, 2.0, 3.0) + slant(5.0, 3.0, 4.0), 1e-13));
        let r = |l: f64, d1: f64, d2: f64| 4.0 * 100.0 * l / (PI * d1 * d2) * 1e-2;
        assert!(close(1.0 / c.rinv[1], r(5.0, 2.0, 3.0), 1e-13));
        assert!(close(1.0 / c.rinv[2], r(5.0, 3.0, 4.0), 1e-13));
        assert!(close(c.diam[1], 3.0, 1e-14));
    }

    #[test]
    fn d_lambda_rule() {
        // L 1000, diam 1, Ra 100, cm 1 at 100 Hz: lambda_f = 1e5 sqrt(1 / (4 pi 100 100 1)) = 282.09 um.
        let s = Section::cylinder("c", 3, 1000.0, 1.0);
        let lf = lambda_f(&s, 100.0, 1.0, 100.0);
        assert!(close(lf, 1e5 * (1.0 / (4.0 * PI * 1e4)).sqrt(), 1e-15));
        assert_eq!(nseg_d_lambda(&s, 100.0, 1.0, 0.1, 100.0), (((1000.0 / (0.1 * lf) + 0.9) / 2.0) as usize) * 2 + 1);
        assert_eq!(nseg_d_lambda(&s, 100.0, 1.0, 0.1, 100.0), 37);
        // For uniform 3-D points the point formula gives the cylinder's lambda.
        let p = Section::points("p", 3, (0..5).map(|i| Point3::new(0.0, i as f64 * 250.0, 0.0, 1.0)).collect());
        assert!(close(lambda_f(&p, 100.0, 1.0, 100.0), lf, 1e-12));
    }
}
