//! Morphologies of models (inline sections or SWC) and of NeuroH5 trees.

use super::*;

pub(super) fn build_morphology(cx: &Ctx, m: &MorphologyYaml, base: &Path) -> Result<Morphology, ModelError> {
    match (&m.swc, &m.sections) {
        (Some(_), Some(_)) => Err(cx.err("morphology", "give either swc or sections, not both")),
        (None, None) => Err(cx.err("morphology", "needs swc (a file) or sections (a list)")),
        (Some(path), None) => {
            let p = base.join(path);
            let tree = miv_io::swc::read_swc(&p).map_err(|e| cx.err("morphology.swc", e.to_string()))?;
            morphology_from_tree(&tree).map_err(|e| cx.err("morphology.swc", format!("{}: {e}", p.display())))
        }
        (None, Some(secs)) => {
            let mut out = Vec::with_capacity(secs.len());
            for (i, s) in secs.iter().enumerate() {
                let key = format!("morphology.sections[{i}]");
                if secs[..i].iter().any(|o| o.name == s.name) {
                    return Err(cx.err(format!("{key}.name"), format!("{:?} is used by another section", s.name)));
                }
                let swc_type = match &s.kind {
                    None => 0,
                    Some(TypeYaml::Number(n)) => *n,
                    Some(TypeYaml::Name(n)) => swc::type_from_name(n).ok_or_else(|| {
                        cx.err(
                            format!("{key}.type"),
                            format!("{n:?}: expected soma, axon, basal, apical, ais, hillock, typeN or a number"),
                        )
                    })?,
                };
                let geometry = match (s.length, s.diam, &s.points) {
                    (Some(l), Some(d), None) => {
                        if !(l > 0.0 && l.is_finite()) {
                            return Err(cx.err(format!("{key}.L"), format!("must be positive (um), got {l}")));
                        }
                        if !(d > 0.0 && d.is_finite()) {
                            return Err(cx.err(format!("{key}.diam"), format!("must be positive (um), got {d}")));
                        }
                        miv_solvers::Geometry::Cylinder { length: l, diam: d }
                    }
                    (None, None, Some(p)) => {
                        if p.len() < 2 {
                            return Err(cx.err(format!("{key}.points"), "needs at least 2 points [x, y, z, diam]"));
                        }
                        if let Some(k) = p.iter().position(|q| !(q[3] >= 0.0) || q.iter().any(|v| !v.is_finite())) {
                            return Err(cx.err(
                                format!("{key}.points[{k}]"),
                                format!("diameter must be >= 0 and all values finite, got {:?}", p[k]),
                            ));
                        }
                        miv_solvers::Geometry::Points(p.iter().map(|q| Point3::new(q[0], q[1], q[2], q[3])).collect())
                    }
                    _ => return Err(cx.err(&key, "give either L and diam, or points")),
                };
                let parent = match &s.parent {
                    None => None,
                    Some(p) => Some(
                        secs.iter()
                            .position(|o| o.name == *p)
                            .ok_or_else(|| cx.err(format!("{key}.parent"), format!("no section named {p:?}")))?,
                    ),
                };
                let parent_x = s.parent_x.unwrap_or(1.0);
                if !(0.0..=1.0).contains(&parent_x) {
                    return Err(cx.err(format!("{key}.parent_x"), format!("must be within 0..1, got {parent_x}")));
                }
                out.push(Section { name: s.name.clone(), swc_type, parent, parent_x, geometry });
            }
            let m = Morphology::new(out);
            m.validate().map_err(|e| morphology_error(cx, &e))?;
            Ok(m)
        }
    }
}

/// A NeuroH5/SWC tree as a solvers morphology, with MiV's template semantics: one section per contracted
/// section (3-D points with diameter 2 r), child `dst` connected at `arc(loc) / L` of `src`, the section type
/// that of its last point, sections named `<type>[k]`.
pub fn morphology_from_tree(tree: &miv_io::tree::Tree) -> Result<Morphology, String> {
    let topo = tree.topology().map_err(|e| e.to_string())?;
    let points: Vec<TreePoint> = (0..tree.num_points())
        .map(|i| TreePoint {
            x: tree.x[i] as f64,
            y: tree.y[i] as f64,
            z: tree.z[i] as f64,
            radius: tree.radius[i] as f64,
            swc_type: tree.swc_type[i] as i32,
        })
        .collect();
    let sections: Vec<Vec<usize>> = topo.nodes.iter().map(|s| s.iter().map(|&p| p as usize).collect()).collect();
    let edges: Vec<(usize, usize, usize)> =
        (0..topo.src.len()).map(|k| (topo.src[k] as usize, topo.dst[k] as usize, topo.loc[k] as usize)).collect();
    Morphology::from_point_sections(&points, &sections, &edges).map_err(|e| e.to_string())
}

pub(super) fn morphology_error(cx: &Ctx, e: &MorphologyError) -> ModelError {
    match e {
        MorphologyError::Cycle { index, name } => cx
            .err(format!("morphology.sections[{index}].parent"), format!("section {name:?} is part of a parent cycle")),
        MorphologyError::Section { index, what, .. } => cx.err(format!("morphology.sections[{index}]"), what.clone()),
        MorphologyError::Roots(r) => {
            cx.err("morphology.sections", format!("exactly one section must have no parent; these have none: {r:?}"))
        }
        MorphologyError::Empty => cx.err("morphology.sections", "no sections"),
    }
}
