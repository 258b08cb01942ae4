//! The neutral description of a neuron's shape: unbranched sections, each either a cylinder (L, diam) or a
//! list of 3-D points with diameters (NEURON pt3d), connected by (parent, x on the parent). Readers of SWC or
//! NeuroH5 trees and the YAML front end all produce this type; the discretisation reads only this type.

use crate::error::MorphologyError;

/// One 3-D point of a section (um): position and diameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point3 {
    pub x: f64,
    pub y: f64,
    pub z: f64,
    pub diam: f64,
}

impl Point3 {
    pub fn new(x: f64, y: f64, z: f64, diam: f64) -> Point3 {
        Point3 { x, y, z, diam }
    }
    pub fn distance(&self, o: &Point3) -> f64 {
        let (dx, dy, dz) = (o.x - self.x, o.y - self.y, o.z - self.z);
        (dx * dx + dy * dy + dz * dz).sqrt()
    }
}

/// One point of a contracted tree (NeuroH5 `Trees` attributes): position and radius in um, SWC type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TreePoint {
    pub x: f64,
    pub y: f64,
    pub z: f64,
    pub radius: f64,
    pub swc_type: i32,
}

/// Cumulative arc length at each point of a polyline (0 at the first).
pub fn arc_lengths(p: &[Point3]) -> Vec<f64> {
    let mut a = Vec::with_capacity(p.len());
    let mut s = 0.0;
    for (i, q) in p.iter().enumerate() {
        if i > 0 {
            s += p[i - 1].distance(q);
        }
        a.push(s);
    }
    a
}

/// The shape of one section.
#[derive(Debug, Clone, PartialEq)]
pub enum Geometry {
    /// A right circular cylinder of `length` and `diam` (um), NEURON's `L` and `diam`.
    Cylinder { length: f64, diam: f64 },
    /// At least two 3-D points; the section's length is the arc length of the polyline (NEURON pt3d).
    Points(Vec<Point3>),
}

/// SWC structure identifiers as MiV uses them (a section's type is the type of its last point).
pub mod swc {
    pub const SOMA: i32 = 1;
    pub const AXON: i32 = 2;
    pub const BASAL: i32 = 3;
    pub const APICAL: i32 = 4;
    pub const AIS: i32 = 7;
    pub const HILLOCK: i32 = 8;

    /// The region name of an SWC type: `soma`, `axon`, `basal`, `apical`, `ais`, `hillock`, else `type<N>`.
    pub fn type_name(t: i32) -> String {
        match t {
            SOMA => "soma".into(),
            AXON => "axon".into(),
            BASAL => "basal".into(),
            APICAL => "apical".into(),
            AIS => "ais".into(),
            HILLOCK => "hillock".into(),
            other => format!("type{other}"),
        }
    }

    /// Inverse of [`type_name`].
    pub fn type_from_name(name: &str) -> Option<i32> {
        match name {
            "soma" => Some(SOMA),
            "axon" => Some(AXON),
            "basal" => Some(BASAL),
            "apical" => Some(APICAL),
            "ais" => Some(AIS),
            "hillock" => Some(HILLOCK),
            other => other.strip_prefix("type").and_then(|n| n.parse().ok()),
        }
    }
}

/// One unbranched section. Its 0-end connects to `parent` at arc position `parent_x` (0..=1) of the parent,
/// as NEURON's `child.connect(parent(parent_x), 0)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub name: String,
    pub swc_type: i32,
    pub parent: Option<usize>,
    pub parent_x: f64,
    pub geometry: Geometry,
}

impl Section {
    pub fn cylinder(name: &str, swc_type: i32, length: f64, diam: f64) -> Section {
        Section {
            name: name.into(),
            swc_type,
            parent: None,
            parent_x: 1.0,
            geometry: Geometry::Cylinder { length, diam },
        }
    }

    pub fn points(name: &str, swc_type: i32, points: Vec<Point3>) -> Section {
        Section { name: name.into(), swc_type, parent: None, parent_x: 1.0, geometry: Geometry::Points(points) }
    }

    /// Connect this section's 0-end to `parent(x)`.
    pub fn on(mut self, parent: usize, x: f64) -> Section {
        self.parent = Some(parent);
        self.parent_x = x;
        self
    }

    /// Section length (um): L of a cylinder, arc length of a point list.
    pub fn length(&self) -> f64 {
        match &self.geometry {
            Geometry::Cylinder { length, .. } => *length,
            Geometry::Points(p) => p.windows(2).map(|w| w[0].distance(&w[1])).sum(),
        }
    }

    /// Cumulative arc length at each 3-D point (empty for a cylinder).
    pub fn arcs(&self) -> Vec<f64> {
        match &self.geometry {
            Geometry::Cylinder { .. } => Vec::new(),
            Geometry::Points(p) => arc_lengths(p),
        }
    }
}

/// A whole cell: sections forming one tree with exactly one root.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Morphology {
    pub sections: Vec<Section>,
}

impl Morphology {
    pub fn new(sections: Vec<Section>) -> Morphology {
        Morphology { sections }
    }

    /// Build a morphology from a contracted point tree, as NeuroH5 `Trees` store it and MiV's templates read
    /// it: `points` (x, y, z, radius, SWC type), the point ids of each section, and the topology edges
    /// (src section, dst section, loc) meaning `sections[dst](0)` connects to `sections[src](arc(loc) / L)`,
    /// with `loc` an index into the src section's point list. A section's type is that of its last point; it
    /// is named `<type>[k]` (k counting sections of that type), e.g. `soma[0]`, `apical[12]`.
    pub fn from_point_sections(
        points: &[TreePoint],
        sections: &[Vec<usize>],
        edges: &[(usize, usize, usize)],
    ) -> Result<Morphology, MorphologyError> {
        let mut out = Vec::with_capacity(sections.len());
        let mut per_type: std::collections::HashMap<i32, usize> = std::collections::HashMap::new();
        for (i, ids) in sections.iter().enumerate() {
            let err = |what: String| MorphologyError::Section { index: i, name: format!("section {i}"), what };
            if let Some(&bad) = ids.iter().find(|&&p| p >= points.len()) {
                return Err(err(format!("point id {bad} out of range ({} points)", points.len())));
            }
            let Some(&last) = ids.last() else {
                return Err(err("section has no points".into()));
            };
            let t = points[last].swc_type;
            let k = per_type.entry(t).or_insert(0);
            let name = format!("{}[{k}]", swc::type_name(t));
            *k += 1;
            let pts = ids
                .iter()
                .map(|&p| Point3::new(points[p].x, points[p].y, points[p].z, 2.0 * points[p].radius))
                .collect();
            out.push(Section::points(&name, t, pts));
        }
        for &(src, dst, loc) in edges {
            if src >= out.len() || dst >= out.len() {
                return Err(MorphologyError::Section {
                    index: dst.min(out.len().saturating_sub(1)),
                    name: format!("edge {src} -> {dst}"),
                    what: format!("section index out of range ({} sections)", out.len()),
                });
            }
            let arcs = out[src].arcs();
            let Some(&a) = arcs.get(loc) else {
                return Err(MorphologyError::Section {
                    index: dst,
                    name: out[dst].name.clone(),
                    what: format!("loc {loc} is beyond the {} points of parent section {src}", arcs.len()),
                });
            };
            let l = arcs[arcs.len() - 1];
            out[dst].parent = Some(src);
            out[dst].parent_x = if l > 0.0 { (a / l).clamp(0.0, 1.0) } else { 1.0 };
        }
        let m = Morphology::new(out);
        m.validate()?;
        Ok(m)
    }

    /// Index of the section called `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.sections.iter().position(|s| s.name == name)
    }

    /// Check the tree: one root, parents in range, no cycles, connection positions in 0..=1, positive lengths,
    /// non-negative diameters, at least two points per point list. Errors name the section.
    pub fn validate(&self) -> Result<(), MorphologyError> {
        let n = self.sections.len();
        if n == 0 {
            return Err(MorphologyError::Empty);
        }
        let mut roots = Vec::new();
        for (i, s) in self.sections.iter().enumerate() {
            let err = |what: String| MorphologyError::Section { index: i, name: s.name.clone(), what };
            match s.parent {
                None => roots.push(i),
                Some(p) if p >= n => return Err(err(format!("parent {p} out of range (there are {n} sections)"))),
                Some(p) if p == i => return Err(err("section is its own parent".into())),
                Some(_) => {}
            }
            if !(0.0..=1.0).contains(&s.parent_x) {
                return Err(err(format!("parent_x {} is outside 0..1", s.parent_x)));
            }
            match &s.geometry {
                Geometry::Cylinder { length, diam } => {
                    if !(*length > 0.0) || !length.is_finite() {
                        return Err(err(format!("length {length} must be positive")));
                    }
                    if !(*diam > 0.0) || !diam.is_finite() {
                        return Err(err(format!("diameter {diam} must be positive")));
                    }
                }
                Geometry::Points(p) => {
                    if p.len() < 2 {
                        return Err(err(format!("{} 3-D point(s); a section needs at least 2", p.len())));
                    }
                    if let Some((k, q)) = p.iter().enumerate().find(|(_, q)| !(q.diam >= 0.0) || !q.diam.is_finite()) {
                        return Err(err(format!("point {k} has diameter {} (must be >= 0)", q.diam)));
                    }
                    if let Some((k, _)) =
                        p.iter().enumerate().find(|(_, q)| !(q.x.is_finite() && q.y.is_finite() && q.z.is_finite()))
                    {
                        return Err(err(format!("point {k} has a non-finite coordinate")));
                    }
                    if p.iter().all(|q| q.diam == 0.0) {
                        return Err(err("every point has diameter 0".into()));
                    }
                    if !(s.length() > 0.0) {
                        return Err(err("the points have zero total length".into()));
                    }
                }
            }
        }
        if roots.len() != 1 {
            return Err(MorphologyError::Roots(roots.iter().map(|&i| self.sections[i].name.clone()).collect()));
        }
        // Every section must reach the root; a cycle never does.
        for i in 0..n {
            let mut cur = i;
            for _ in 0..=n {
                match self.sections[cur].parent {
                    None => break,
                    Some(p) => cur = p,
                }
            }
            if self.sections[cur].parent.is_some() {
                let s = &self.sections[i];
                return Err(MorphologyError::Cycle { index: i, name: s.name.clone() });
            }
        }
        Ok(())
    }

    /// The root section (call after [`validate`](Self::validate)).
    pub fn root(&self) -> usize {
        self.sections.iter().position(|s| s.parent.is_none()).unwrap_or(0)
    }

    /// Children of every section, in index order.
    pub fn children(&self) -> Vec<Vec<usize>> {
        let mut ch = vec![Vec::new(); self.sections.len()];
        for (i, s) in self.sections.iter().enumerate() {
            if let Some(p) = s.parent {
                ch[p].push(i);
            }
        }
        ch
    }

    /// Sections in depth-first pre-order from the root, children in index order: parents come first.
    pub fn preorder(&self) -> Vec<usize> {
        let ch = self.children();
        let mut out = Vec::with_capacity(self.sections.len());
        let mut stack = vec![self.root()];
        while let Some(s) = stack.pop() {
            out.push(s);
            stack.extend(ch[s].iter().rev());
        }
        out
    }

    /// 3-D points of every section after NEURON's `define_shape()`: a point-list child is translated so that its
    /// first point sits on its parent at the connection position, interpolated linearly between the parent's
    /// first and last point (NEURON uses that chord, not the polyline). A cylinder gets nseg+2 points on a
    /// straight line: the root along +x from the origin; a child continues its parent's direction (turned by 90
    /// degrees when it leaves from an interior point), siblings at the same position fanned over ±0.4 rad.
    pub fn placed_points(&self, nseg: &[usize]) -> Vec<Vec<Point3>> {
        let n = self.sections.len();
        let mut pts: Vec<Vec<Point3>> = vec![Vec::new(); n];
        let children = self.children();
        for s in self.preorder() {
            let sec = &self.sections[s];
            let (origin, dir) = match sec.parent {
                None => ([0.0, 0.0, 0.0], [1.0, 0.0]),
                Some(p) => {
                    let pp = &pts[p];
                    let (a, b) = (pp[0], pp[pp.len() - 1]);
                    let x = sec.parent_x;
                    let o = [b.x * x + a.x * (1.0 - x), b.y * x + a.y * (1.0 - x), b.z * x + a.z * (1.0 - x)];
                    let mut d = [b.x - a.x, b.y - a.y];
                    if x < 0.5 {
                        d = [-d[0], -d[1]];
                    }
                    (o, d)
                }
            };
            match &sec.geometry {
                Geometry::Points(p) => {
                    let (dx, dy, dz) = match sec.parent {
                        None => (0.0, 0.0, 0.0),
                        Some(_) => (origin[0] - p[0].x, origin[1] - p[0].y, origin[2] - p[0].z),
                    };
                    pts[s] = p.iter().map(|q| Point3::new(q.x + dx, q.y + dy, q.z + dz, q.diam)).collect();
                }
                Geometry::Cylinder { length, diam } => {
                    let mut angle = if dir[0].abs() < 1e-6 && dir[1].abs() < 1e-6 { 0.0 } else { dir[1].atan2(dir[0]) };
                    if sec.parent_x > 0.0 && sec.parent_x < 1.0 {
                        angle += std::f64::consts::FRAC_PI_2;
                    }
                    if let Some(p) = sec.parent {
                        let same: Vec<usize> = children[p]
                            .iter()
                            .copied()
                            .filter(|&c| self.sections[c].parent_x == sec.parent_x)
                            .collect();
                        if same.len() > 1 {
                            let ich = same.iter().position(|&c| c == s).unwrap_or(0) as f64;
                            angle += ich / (same.len() as f64 - 1.0) * 0.8 - 0.4;
                        }
                    }
                    let end = [origin[0] + length * angle.cos(), origin[1] + length * angle.sin()];
                    let k = nseg.get(s).copied().unwrap_or(1).max(1);
                    let mut v = Vec::with_capacity(k + 2);
                    v.push(Point3::new(origin[0], origin[1], origin[2], *diam));
                    for j in 0..k {
                        let f = (j as f64 + 0.5) / k as f64;
                        v.push(Point3::new(
                            origin[0] * (1.0 - f) + end[0] * f,
                            origin[1] * (1.0 - f) + end[1] * f,
                            origin[2],
                            *diam,
                        ));
                    }
                    v.push(Point3::new(end[0], end[1], origin[2], *diam));
                    pts[s] = v;
                }
            }
        }
        pts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_cycles_roots_and_bad_sizes() {
        let mut m = Morphology::new(vec![
            Section::cylinder("a", 1, 10.0, 10.0),
            Section::cylinder("b", 3, 10.0, 1.0).on(2, 1.0),
            Section::cylinder("c", 3, 10.0, 1.0).on(1, 1.0),
        ]);
        assert!(matches!(m.validate(), Err(MorphologyError::Cycle { .. })));
        m.sections[1].parent = Some(0);
        m.validate().unwrap();
        m.sections[2].geometry = Geometry::Cylinder { length: 10.0, diam: -1.0 };
        assert!(matches!(m.validate(), Err(MorphologyError::Section { index: 2, .. })));
        m.sections[2].geometry = Geometry::Cylinder { length: 10.0, diam: 1.0 };
        m.sections[2].parent = None;
        assert!(matches!(m.validate(), Err(MorphologyError::Roots(_))));
    }

    #[test]
    fn preorder_puts_parents_first() {
        let m = Morphology::new(vec![
            Section::cylinder("d", 3, 10.0, 1.0).on(2, 1.0),
            Section::cylinder("e", 3, 10.0, 1.0).on(2, 1.0),
            Section::cylinder("soma", 1, 10.0, 10.0),
        ]);
        m.validate().unwrap();
        assert_eq!(m.preorder(), vec![2, 0, 1]);
    }

    #[test]
    fn from_point_sections_connects_at_arc_positions() {
        let p = |x: f64, y: f64, r: f64, t: i32| TreePoint { x, y, z: 0.0, radius: r, swc_type: t };
        let points = vec![
            p(0.0, 0.0, 5.0, 1),
            p(10.0, 0.0, 5.0, 1),
            p(20.0, 0.0, 5.0, 1),
            p(20.0, 10.0, 1.0, 3),
            p(20.0, 30.0, 1.0, 3),
        ];
        let m = Morphology::from_point_sections(&points, &[vec![0, 1, 2], vec![3, 4]], &[(0, 1, 1)]).unwrap();
        assert_eq!(m.sections[0].name, "soma[0]");
        assert_eq!(m.sections[1].name, "basal[0]");
        assert_eq!(m.sections[1].parent, Some(0));
        assert_eq!(m.sections[1].parent_x, 0.5);
        assert_eq!(m.sections[1].length(), 20.0);
        assert!(Morphology::from_point_sections(&points, &[vec![0, 1, 2], vec![3, 9]], &[(0, 1, 1)]).is_err());
    }

    #[test]
    fn define_shape_translates_children_onto_the_parent_chord() {
        let m = Morphology::new(vec![
            Section::points("soma", 1, vec![Point3::new(0.0, 0.0, 0.0, 10.0), Point3::new(10.0, 0.0, 0.0, 10.0)]),
            Section::points("d", 3, vec![Point3::new(50.0, 50.0, 0.0, 1.0), Point3::new(50.0, 80.0, 0.0, 1.0)])
                .on(0, 0.5),
        ]);
        let p = m.placed_points(&[1, 1]);
        assert_eq!(p[1][0], Point3::new(5.0, 0.0, 0.0, 1.0));
        assert_eq!(p[1][1], Point3::new(5.0, 30.0, 0.0, 1.0));
    }
}
