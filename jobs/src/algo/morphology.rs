//! A cell's sections and segments as NEURON builds them from a NeuroH5 tree, for synapse placement.
//!
//! MiV instantiates the hoc template to get sections and segments; here the same facts are derived from the
//! tree: a section's type is the SWC type of its last point, its length is the length of its own polyline
//! (NEURON's `define_shape` moves each child so its 0-end touches the parent, closing the gap to the branch
//! point), a segment's layer is the layer of the section point nearest to the segment centre, and the
//! number of segments comes from the cell type's discretisation rule. [`segment_count`] is the one place
//! that decides segments.

use miv_config::{SegmentRule, SwcType};
use miv_solvers::compartments::nseg_d_lambda;
use miv_solvers::Point3;

/// The tree of one cell as stored in a NeuroH5 `Trees` namespace (`miv-io`'s [`Tree`]): per point
/// coordinates, radius, layer, parent and SWC type, the contracted sections and the section edges.
pub use miv_io::Tree as TreeData;

#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// SWC type of the section's last point (`None` for a code outside 1..=8).
    pub swc_type: Option<SwcType>,
    pub swc_code: i8,
    /// Point coordinates after `define_shape` (children translated onto their parents).
    pub points: Vec<[f64; 3]>,
    pub diams: Vec<f64>,
    pub layers: Vec<i8>,
    /// Arc length from the section start to each point, µm.
    pub arc: Vec<f64>,
    pub length: f64,
    pub nseg: u32,
}

impl Section {
    /// Segment centres `x = (k + ½)/nseg`.
    pub fn segment_x(&self, k: u32) -> f64 {
        (k as f64 + 0.5) / self.nseg as f64
    }

    /// Layer at normalised position `x`: the layer of the point whose arc fraction is nearest `x`, searching
    /// as MiV's `get_node_attribute` does (first point at or past `x`, or the one before it if nearer).
    pub fn layer_at(&self, x: f64) -> i8 {
        if self.length <= 0.0 || self.points.len() < 2 {
            return self.layers.first().copied().unwrap_or(-1);
        }
        let mut prev: Option<f64> = None;
        for (i, a) in self.arc.iter().enumerate() {
            let pos = a / self.length;
            if pos >= x {
                return match prev {
                    Some(p) if (pos - x).abs() >= (p - x).abs() => self.layers[i - 1],
                    _ => self.layers[i],
                };
            }
            prev = Some(pos);
        }
        *self.layers.last().expect("a section has points")
    }

    /// The 3-D point at normalised position `x` (linear along the arc).
    pub fn point_at(&self, x: f64) -> [f64; 3] {
        let n = self.points.len();
        if n < 2 || self.length <= 0.0 {
            return self.points[0];
        }
        let s = x.clamp(0.0, 1.0) * self.length;
        let i = self.arc.partition_point(|&a| a < s).clamp(1, n - 1);
        let (a0, a1) = (self.arc[i - 1], self.arc[i]);
        let t = if a1 > a0 { (s - a0) / (a1 - a0) } else { 0.0 };
        let (p, q) = (self.points[i - 1], self.points[i]);
        [p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1]), p[2] + t * (q[2] - p[2])]
    }
}

/// Sections, their topology and segment counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Morphology {
    pub sections: Vec<Section>,
    /// Children of each section, in edge order.
    pub children: Vec<Vec<usize>>,
    pub parent: Vec<Option<usize>>,
}

/// Number of segments of a section under a rule (NEURON's `nseg`; the d_lambda rule is `miv-solvers`'
/// discretisation).
pub fn segment_count(rule: SegmentRule, section: &miv_solvers::Section) -> u32 {
    match rule {
        SegmentRule::Fixed(n) => n.max(1),
        SegmentRule::DLambda { d_lambda, frequency, ra, cm } => {
            if section.length() <= 0.0 {
                return 1;
            }
            nseg_d_lambda(section, ra, cm, d_lambda, frequency) as u32
        }
    }
}

impl Morphology {
    /// Build sections from a tree. Fails on inconsistent trees (point ids out of range, bad edges).
    pub fn new(tree: &TreeData, rule: SegmentRule) -> Result<Morphology, String> {
        let np = tree.x.len();
        for (name, len) in [
            ("y", tree.y.len()),
            ("z", tree.z.len()),
            ("radius", tree.radius.len()),
            ("layer", tree.layer.len()),
            ("parent", tree.parent.len()),
            ("swc_type", tree.swc_type.len()),
        ] {
            if len != np {
                return Err(format!("tree has {np} x coordinates but {len} {name} values"));
            }
        }
        let ns = tree.sections.len();
        if tree.src.len() != tree.dst.len() {
            return Err("tree section edges have different src and dst counts".into());
        }
        let mut children = vec![Vec::new(); ns];
        let mut parent = vec![None; ns];
        for (&s, &d) in tree.src.iter().zip(&tree.dst) {
            let (s, d) = (s as usize, d as usize);
            if s >= ns || d >= ns || parent[d].is_some() || s == d {
                return Err(format!("bad section edge {s} -> {d} ({ns} sections)"));
            }
            children[s].push(d);
            parent[d] = Some(s);
        }
        let mut order: Vec<usize> = (0..ns).filter(|&s| parent[s].is_none()).collect();
        let mut k = 0;
        while k < order.len() {
            let s = order[k];
            order.extend(children[s].iter().copied());
            k += 1;
        }
        if order.len() != ns {
            return Err("section edges do not form a forest".into());
        }
        // The solvers' shape description: point-list sections, each child on its parent at the arc position of
        // the parent point of its first point.
        let mut shape = Vec::with_capacity(ns);
        for (si, pts) in tree.sections.iter().enumerate() {
            if pts.is_empty() {
                return Err(format!("section {si} has no points"));
            }
            if let Some(&p) = pts.iter().find(|&&p| p as usize >= np) {
                return Err(format!("section {si} refers to point {p}, the tree has {np} points"));
            }
            let points: Vec<Point3> = pts
                .iter()
                .map(|&p| {
                    let p = p as usize;
                    Point3::new(tree.x[p] as f64, tree.y[p] as f64, tree.z[p] as f64, 2.0 * tree.radius[p] as f64)
                })
                .collect();
            let code = tree.swc_type[*pts.last().expect("non-empty") as usize];
            shape.push(miv_solvers::Section::points(&format!("s{si}"), code as i32, points));
        }
        for s in 0..ns {
            let Some(p) = parent[s] else { continue };
            let first = tree.sections[s][0];
            let ppts = &tree.sections[p];
            let idx = ppts
                .iter()
                .position(|&q| q == first)
                .or_else(|| ppts.iter().position(|&q| q as i32 == tree.parent[first as usize]))
                .unwrap_or(ppts.len() - 1);
            let arcs = shape[p].arcs();
            let len = shape[p].length();
            let x = if len > 0.0 { arcs[idx] / len } else { 1.0 };
            shape[s] = shape[s].clone().on(p, x);
        }
        let nseg: Vec<u32> = shape.iter().map(|sec| segment_count(rule, sec)).collect();
        let shape = miv_solvers::Morphology::new(shape);
        let placed = if parent.iter().filter(|p| p.is_none()).count() == 1 {
            shape.placed_points(&nseg.iter().map(|&n| n as usize).collect::<Vec<_>>())
        } else {
            shape
                .sections
                .iter()
                .map(|s| match &s.geometry {
                    miv_solvers::Geometry::Points(p) => p.clone(),
                    miv_solvers::Geometry::Cylinder { .. } => unreachable!("built from points"),
                })
                .collect()
        };
        let mut sections = Vec::with_capacity(ns);
        for (si, pts) in tree.sections.iter().enumerate() {
            let placed = &placed[si];
            let arc = miv_solvers::morphology::arc_lengths(placed);
            let code = shape.sections[si].swc_type as i8;
            sections.push(Section {
                swc_type: SwcType::from_code(code as i64),
                swc_code: code,
                nseg: nseg[si],
                layers: pts.iter().map(|&p| tree.layer[p as usize]).collect(),
                points: placed.iter().map(|q| [q.x, q.y, q.z]).collect(),
                diams: placed.iter().map(|q| q.diam).collect(),
                length: *arc.last().expect("non-empty"),
                arc,
            });
        }
        Ok(Morphology { sections, children, parent })
    }

    /// Indices of the sections of one SWC type, ascending (the template's `<type>idx`).
    pub fn sections_of(&self, t: SwcType) -> Vec<usize> {
        (0..self.sections.len()).filter(|&s| self.sections[s].swc_type == Some(t)).collect()
    }

    /// The order MiV walks the sections of one type when placing synapses: depth-first through the section
    /// subgraph of that type from each root (in-degree 0 within the subgraph), each root after its
    /// descendants; plain index order when the subgraph has no edges.
    pub fn placement_order(&self, secs: &[usize]) -> Vec<usize> {
        let inset = |s: usize| secs.binary_search(&s).is_ok();
        let has_edges = secs.iter().any(|&s| self.children[s].iter().any(|&c| inset(c)));
        if secs.len() <= 1 || !has_edges {
            return secs.to_vec();
        }
        let mut out = Vec::with_capacity(secs.len());
        for &root in secs.iter().filter(|&&s| !self.parent[s].is_some_and(inset)) {
            let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
            while let Some((node, next)) = stack.pop() {
                let kids: Vec<usize> = self.children[node].iter().copied().filter(|&c| inset(c)).collect();
                if next < kids.len() {
                    stack.push((node, next + 1));
                    out.push(kids[next]);
                    stack.push((kids[next], 0));
                }
            }
            out.push(root);
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The worked example of DOMAIN A.7 extended: soma p0,p1; basal p2 (from p1) and apical p3..p5 (from p1).
    pub(crate) fn small_tree() -> TreeData {
        TreeData {
            x: vec![0.0, 0.0, -10.0, 0.0, 0.0, 0.0],
            y: vec![0.0, 10.0, 10.0, 12.0, 62.0, 112.0],
            z: vec![0.0; 6],
            radius: vec![5.0, 5.0, 1.0, 1.0, 1.0, 0.5],
            layer: vec![6, 6, 5, 6, 8, 9],
            parent: vec![-1, 0, 1, 1, 3, 4],
            swc_type: vec![1, 1, 3, 4, 4, 4],
            sections: vec![vec![0, 1], vec![1, 2], vec![3, 4, 5]],
            src: vec![0, 0],
            dst: vec![1, 2],
        }
    }

    #[test]
    fn sections_lengths_layers_and_translation() {
        let m = Morphology::new(&small_tree(), SegmentRule::Fixed(3)).unwrap();
        let s = &m.sections;
        assert_eq!(
            s.iter().map(|s| s.swc_type).collect::<Vec<_>>(),
            [Some(SwcType::Soma), Some(SwcType::Basal), Some(SwcType::Apical)]
        );
        assert_eq!(s[0].length, 10.0);
        assert_eq!(s[1].length, 10.0);
        assert_eq!(s[2].length, 100.0);
        // The apical section starts at p3 (2 µm past the soma end p1) and is moved onto p1.
        assert_eq!(s[2].points[0], [0.0, 10.0, 0.0]);
        assert_eq!(s[2].point_at(0.5), [0.0, 60.0, 0.0]);
        // Layers at segment centres 1/6, 1/2, 5/6 of the apical section: nearest points p3 (0), p4 (0.5), p5 (1).
        assert_eq!([s[2].layer_at(1.0 / 6.0), s[2].layer_at(0.5), s[2].layer_at(5.0 / 6.0)], [6, 8, 9]);
        assert_eq!(m.placement_order(&[0, 1, 2]), vec![1, 2, 0]);
    }

    #[test]
    fn d_lambda_matches_the_hoc_formula_for_a_cylinder() {
        // Cylinder L = 1000 µm, diam 2 µm, Ra 35.4, cm 1, 100 Hz: lambda_f = 1e5·sqrt(d/(4π f Ra cm)).
        let pts = [0.0, 500.0, 1000.0].map(|x| Point3::new(x, 0.0, 0.0, 2.0)).to_vec();
        let sec = miv_solvers::Section::points("c", 3, pts);
        let lf = 1e5 * (2.0 / (4.0 * std::f64::consts::PI * 100.0 * 35.4 * 1.0f64)).sqrt();
        let expect = (((1000.0 / (0.1 * lf) + 0.9) / 2.0) as u32) * 2 + 1;
        let rule = SegmentRule::DLambda { d_lambda: 0.1, frequency: 100.0, ra: 35.4, cm: 1.0 };
        assert_eq!(segment_count(rule, &sec), expect);
        assert_eq!(expect, 15);
        assert_eq!(segment_count(SegmentRule::Fixed(1), &sec), 1);
    }
}
