//! Morphologies: the neutral in-memory [`Tree`] (points plus sections plus section graph) that the solvers'
//! morphology builder and the engine consume, its contraction from SWC points into sections exactly as
//! neuroh5's `contract_tree_dfs` does (DOMAIN A.4), the Python reader's `section_topology` view, and the
//! `Trees` namespace on disk (shared `Cell Index`, shared pointers through hard links, DOMAIN A.4).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

pub use miv_config::NodeBase;

use crate::cells::{namespace_path, CellAttributes, NsLayout, PtrGroup, Selection, ATTR_PTR, SEC_PTR};
use crate::dtype::{Dtype, Element};
use crate::error::{IoError, Result};
use crate::file::{NeuroH5File, WriteOptions};

pub const TREES: &str = "Trees";
pub const X_COORD: &str = "X Coordinate";
pub const Y_COORD: &str = "Y Coordinate";
pub const Z_COORD: &str = "Z Coordinate";
pub const RADIUS: &str = "Radius";
pub const LAYER: &str = "Point Layer";
pub const PARENT: &str = "Parent Point";
pub const SWC_TYPE: &str = "SWC Type";
pub const SECTION: &str = "Section";
pub const SRC_SECTION: &str = "Source Section";
pub const DST_SECTION: &str = "Destination Section";

/// SWC structure types used by MiV's cells.
pub mod swc_types {
    pub const SOMA: i8 = 1;
    pub const AXON: i8 = 2;
    pub const BASAL: i8 = 3;
    pub const APICAL: i8 = 4;
    pub const AIS: i8 = 7;
    pub const HILLOCK: i8 = 8;
}

/// One neuron morphology. Points are 0-based positions; `sections[s]` lists the point ids of section `s`
/// (a section's first point may be its parent's last point, see [`contract`]); `(src[k], dst[k])` are the
/// edges of the section graph, parent to child.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Tree {
    pub x: Vec<f32>,
    pub y: Vec<f32>,
    pub z: Vec<f32>,
    pub radius: Vec<f32>,
    /// Layer of each point (`-1` when the SWC had no layer column).
    pub layer: Vec<i8>,
    /// Parent point of each point, `-1` for a root.
    pub parent: Vec<i32>,
    pub swc_type: Vec<i8>,
    pub sections: Vec<Vec<u32>>,
    pub src: Vec<u16>,
    pub dst: Vec<u16>,
}

/// The Python reader's `section_topology` (with `topology=True`), 0-based.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SectionTopology {
    pub num_sections: usize,
    /// Point ids of each section.
    pub nodes: Vec<Vec<u32>>,
    pub src: Vec<u16>,
    pub dst: Vec<u16>,
    /// For edge k: the position, in `nodes[src[k]]`, of the child's first point or of that point's parent.
    pub loc: Vec<u32>,
    /// The section of each point (the first section that lists it).
    pub section: Vec<u16>,
}

impl Tree {
    pub fn num_points(&self) -> usize {
        self.x.len()
    }

    pub fn num_sections(&self) -> usize {
        self.sections.len()
    }

    /// A section's SWC type: the type of its last point (what MiV's templates use).
    pub fn section_type(&self, s: usize) -> i8 {
        self.sections[s].last().map_or(0, |&p| self.swc_type[p as usize])
    }

    /// Sections from points by neuroh5's contraction (see [`contract`]).
    pub fn from_points(
        x: Vec<f32>,
        y: Vec<f32>,
        z: Vec<f32>,
        radius: Vec<f32>,
        layer: Vec<i8>,
        parent: Vec<i32>,
        swc_type: Vec<i8>,
    ) -> Result<Tree> {
        let n = x.len();
        if [y.len(), z.len(), radius.len(), layer.len(), parent.len(), swc_type.len()].iter().any(|&l| l != n) {
            return Err(IoError::bad_input("tree", "point arrays differ in length"));
        }
        let (sections, edges) = contract(&parent, &swc_type)?;
        let (src, dst) = edges.into_iter().unzip();
        let t = Tree { x, y, z, radius, layer, parent, swc_type, sections, src, dst };
        t.validate()?;
        Ok(t)
    }

    /// Check the internal consistency the file format and the readers rely on.
    pub fn validate(&self) -> Result<()> {
        let n = self.num_points();
        let bad = |m: String| Err(IoError::bad_input("tree", m));
        if [self.y.len(), self.z.len(), self.radius.len(), self.layer.len(), self.parent.len(), self.swc_type.len()]
            .iter()
            .any(|&l| l != n)
        {
            return bad("point arrays differ in length".into());
        }
        if n > u16::MAX as usize + 1 {
            return bad(format!("{n} points; the Section encoding (uint16) allows at most 65536"));
        }
        if self.sections.len() > u16::MAX as usize {
            return bad(format!("{} sections; section ids are uint16", self.sections.len()));
        }
        if let Some(p) = self.parent.iter().position(|&p| p < -1 || p >= n as i32) {
            return bad(format!("point {p} has parent {} outside 0..{n}", self.parent[p]));
        }
        for (s, pts) in self.sections.iter().enumerate() {
            if let Some(p) = pts.iter().find(|&&p| p as usize >= n) {
                return bad(format!("section {s} lists point {p} of {n}"));
            }
        }
        if self.src.len() != self.dst.len() {
            return bad("section edge lists differ in length".into());
        }
        let ns = self.sections.len();
        if let Some(k) = (0..self.src.len()).find(|&k| self.src[k] as usize >= ns || self.dst[k] as usize >= ns) {
            return bad(format!(
                "section edge {k} ({} -> {}) names a section outside 0..{ns}",
                self.src[k], self.dst[k]
            ));
        }
        Ok(())
    }

    /// The `Section` attribute encoding: `[n_sections, n_pts(s0), ids.., n_pts(s1), ids.., ..]`, 0-based.
    pub fn encode_sections(&self) -> Vec<u16> {
        self.encode_sections_in(NodeBase::Zero)
    }

    /// The `Section` encoding with point ids in `base`.
    pub fn encode_sections_in(&self, base: NodeBase) -> Vec<u16> {
        let off = base.offset();
        let mut v = Vec::with_capacity(1 + self.sections.len() + self.sections.iter().map(|s| s.len()).sum::<usize>());
        v.push(self.sections.len() as u16);
        for s in &self.sections {
            v.push(s.len() as u16);
            v.extend(s.iter().map(|&p| (p + off) as u16));
        }
        v
    }

    /// Inverse of [`encode_sections`](Self::encode_sections).
    pub fn decode_sections(v: &[u16]) -> std::result::Result<Vec<Vec<u32>>, String> {
        let Some(&n) = v.first() else { return Err("empty section encoding".into()) };
        let mut out = Vec::with_capacity(n as usize);
        let mut i = 1;
        for s in 0..n {
            let Some(&len) = v.get(i) else { return Err(format!("section {s} of {n}: encoding ends early")) };
            i += 1;
            let end = i + len as usize;
            if end > v.len() {
                return Err(format!("section {s} of {n}: {len} points run past the end ({} values)", v.len()));
            }
            out.push(v[i..end].iter().map(|&p| p as u32).collect());
            i = end;
        }
        if i != v.len() {
            return Err(format!("{} values after the last of {n} sections", v.len() - i));
        }
        Ok(out)
    }

    /// The Python reader's `section_topology` view (0-based point ids; DOMAIN G.3).
    pub fn topology(&self) -> Result<SectionTopology> {
        let mut section = vec![u16::MAX; self.num_points()];
        for (s, pts) in self.sections.iter().enumerate() {
            for &p in pts {
                if section[p as usize] == u16::MAX {
                    section[p as usize] = s as u16;
                }
            }
        }
        let mut loc = Vec::with_capacity(self.src.len());
        for k in 0..self.src.len() {
            let src_nodes = &self.sections[self.src[k] as usize];
            let dst_nodes = &self.sections[self.dst[k] as usize];
            let Some(&first) = dst_nodes.first() else {
                return Err(IoError::bad_input("tree", format!("section {} is empty", self.dst[k])));
            };
            let pos = src_nodes.iter().position(|&p| p == first).or_else(|| {
                let parent = self.parent[first as usize];
                (parent >= 0).then(|| src_nodes.iter().position(|&p| p as i32 == parent)).flatten()
            });
            match pos {
                Some(p) => loc.push(p as u32),
                None => {
                    return Err(IoError::bad_input(
                        "tree",
                        format!(
                            "section {} does not start at or below a point of its parent section {}",
                            self.dst[k], self.src[k]
                        ),
                    ))
                }
            }
        }
        Ok(SectionTopology {
            num_sections: self.sections.len(),
            nodes: self.sections.clone(),
            src: self.src.clone(),
            dst: self.dst.clone(),
            loc,
            section,
        })
    }
}

/// neuroh5's `contract_tree_dfs`: group points into sections. The walk is a depth-first search from the
/// roots in ascending point order. A section continues while a point has exactly one child of the same SWC
/// type. Each child of a branch point and each point where the type changes starts a new section; the
/// branch point is not repeated in its children, except that a terminal section of a single point gets the
/// branch point prepended. While the parent section has only one point, children are merged into it.
/// Sections are numbered in creation order; edges are (parent, child), sorted.
pub fn contract(parent: &[i32], swc_type: &[i8]) -> Result<(Vec<Vec<u32>>, Vec<(u16, u16)>)> {
    let n = parent.len();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut roots = Vec::new();
    for (i, &p) in parent.iter().enumerate() {
        if p < 0 {
            roots.push(i);
        } else if (p as usize) < n {
            children[p as usize].push(i);
        } else {
            return Err(IoError::bad_input("tree", format!("point {i} has parent {p} outside 0..{n}")));
        }
    }
    if n > 0 && roots.is_empty() {
        return Err(IoError::bad_input("tree", "no root point (parent -1)"));
    }
    let mut c =
        Contraction { children: &children, types: swc_type, sections: vec![Vec::new()], edges: BTreeSet::new() };
    c.walk(&roots, 0, 0);
    if c.sections.len() > u16::MAX as usize {
        return Err(IoError::bad_input("tree", format!("{} sections; section ids are uint16", c.sections.len())));
    }
    Ok((c.sections, c.edges.into_iter().collect()))
}

struct Contraction<'a> {
    children: &'a [Vec<usize>],
    types: &'a [i8],
    sections: Vec<Vec<u32>>,
    edges: BTreeSet<(u16, u16)>,
}

impl Contraction<'_> {
    /// Start a section at each of `roots`, below section `sp` whose last point is `spp`.
    fn walk(&mut self, roots: &[usize], sp: usize, spp: usize) {
        for &root in roots {
            let mut v = root;
            let p_type = self.types[v];
            let s = if self.sections[sp].len() > 1 {
                self.sections.push(vec![v as u32]);
                let s = self.sections.len() - 1;
                self.edges.insert((sp as u16, s as u16));
                s
            } else {
                self.sections[sp].push(v as u32);
                sp
            };
            let mut outs: &[usize] = &self.children[v];
            let mut type_change = false;
            while outs.len() == 1 && !type_change {
                v = outs[0];
                if self.types[v] != p_type {
                    type_change = true;
                } else {
                    self.sections[s].push(v as u32);
                    outs = &self.children[v];
                }
            }
            if outs.is_empty() && self.sections[s].len() == 1 && spp != v {
                self.sections[s].insert(0, spp as u32);
            }
            if outs.len() > 1 || type_change {
                for &o in outs {
                    self.walk(&[o], s, v);
                }
            }
        }
    }
}

fn trees_layout() -> NsLayout {
    let pts = [X_COORD, Y_COORD, Z_COORD, RADIUS, LAYER, PARENT, SWC_TYPE];
    NsLayout {
        shared_index: true,
        groups: vec![
            PtrGroup { members: pts.iter().map(|s| s.to_string()).collect(), dataset_name: ATTR_PTR },
            PtrGroup { members: vec![SRC_SECTION.into(), DST_SECTION.into()], dataset_name: SEC_PTR },
            PtrGroup { members: vec![SECTION.into()], dataset_name: SEC_PTR },
        ],
    }
}

fn trees_schema() -> Vec<(String, Dtype)> {
    let mut s: Vec<(String, Dtype)> = vec![
        (X_COORD.into(), Dtype::F32),
        (Y_COORD.into(), Dtype::F32),
        (Z_COORD.into(), Dtype::F32),
        (RADIUS.into(), Dtype::F32),
        (LAYER.into(), Dtype::I8),
        (PARENT.into(), Dtype::I32),
        (SWC_TYPE.into(), Dtype::I8),
        (SECTION.into(), Dtype::U16),
        (SRC_SECTION.into(), Dtype::U16),
        (DST_SECTION.into(), Dtype::U16),
    ];
    s.sort();
    s
}

/// The trees as the cell attributes of the `Trees` namespace.
fn trees_to_cells<'t>(trees: impl IntoIterator<Item = (u64, &'t Tree)>, base: NodeBase) -> Result<CellAttributes> {
    let mut c = CellAttributes::new();
    for (name, d) in trees_schema() {
        c.declare(&name, d)?;
    }
    for (gid, t) in trees {
        t.validate().map_err(|e| IoError::bad_input(format!("tree of gid {gid}"), e.to_string()))?;
        c.push(X_COORD, gid, &t.x)?;
        c.push(Y_COORD, gid, &t.y)?;
        c.push(Z_COORD, gid, &t.z)?;
        c.push(RADIUS, gid, &t.radius)?;
        c.push(LAYER, gid, &t.layer)?;
        c.push(PARENT, gid, &t.parent)?;
        c.push(SWC_TYPE, gid, &t.swc_type)?;
        if base == NodeBase::One && t.num_points() > u16::MAX as usize {
            return Err(IoError::bad_input(
                format!("tree of gid {gid}"),
                format!("{} points: 1-based node ids exceed uint16", t.num_points()),
            ));
        }
        c.push(SECTION, gid, &t.encode_sections_in(base))?;
        c.push(SRC_SECTION, gid, &t.src)?;
        c.push(DST_SECTION, gid, &t.dst)?;
    }
    Ok(c)
}

/// The trees in a `Trees` namespace's cell attributes, by gid.
fn cells_to_trees(c: &CellAttributes, ns_path: &str) -> Result<BTreeMap<u64, Tree>> {
    fn col<'a, T: Element>(c: &'a CellAttributes, ns_path: &str, name: &str, gid: u64) -> Result<&'a [T]> {
        let a = c.attribute(name).ok_or_else(|| IoError::bad_input(ns_path, format!("attribute {name:?} missing")))?;
        if a.dtype() != T::DTYPE {
            return Err(IoError::bad_input(
                format!("{ns_path}/{name}"),
                format!("expected {}, found {}", T::DTYPE, a.dtype()),
            ));
        }
        a.get::<T>(gid)
            .ok_or_else(|| IoError::bad_input(format!("{ns_path}/{name}"), format!("gid {gid} has no values")))
    }
    let mut out = BTreeMap::new();
    let Some(xs) = c.attribute(X_COORD) else {
        return if c.is_empty() {
            Ok(out)
        } else {
            Err(IoError::bad_input(ns_path, format!("attribute {X_COORD:?} missing")))
        };
    };
    for &gid in xs.gids() {
        let sec = col::<u16>(c, ns_path, SECTION, gid)?;
        let mut sections = Tree::decode_sections(sec)
            .map_err(|m| IoError::bad_input(format!("{ns_path}/{SECTION}"), format!("gid {gid}: {m}")))?;
        let n = c.attribute(X_COORD).and_then(|a| a.get::<f32>(gid)).map_or(0, |v| v.len());
        let base = NodeBase::detect(&sections, n)
            .map_err(|m| IoError::bad_input(format!("{ns_path}/{SECTION}"), format!("gid {gid}: {m}")))?;
        if base == NodeBase::One {
            sections.iter_mut().flatten().for_each(|p| *p -= 1);
        }
        let t = Tree {
            x: col::<f32>(c, ns_path, X_COORD, gid)?.to_vec(),
            y: col::<f32>(c, ns_path, Y_COORD, gid)?.to_vec(),
            z: col::<f32>(c, ns_path, Z_COORD, gid)?.to_vec(),
            radius: col::<f32>(c, ns_path, RADIUS, gid)?.to_vec(),
            layer: col::<i8>(c, ns_path, LAYER, gid)?.to_vec(),
            parent: col::<i32>(c, ns_path, PARENT, gid)?.to_vec(),
            swc_type: col::<i8>(c, ns_path, SWC_TYPE, gid)?.to_vec(),
            sections,
            src: col::<u16>(c, ns_path, SRC_SECTION, gid)?.to_vec(),
            dst: col::<u16>(c, ns_path, DST_SECTION, gid)?.to_vec(),
        };
        t.validate().map_err(|e| IoError::bad_input(format!("{ns_path}: gid {gid}"), e.to_string()))?;
        out.insert(gid, t);
    }
    Ok(out)
}

impl NeuroH5File<'_> {
    /// Append trees to `/Populations/<pop>/Trees` (collective; each rank passes its own gids), `Section`
    /// node ids in the default base (1-based, neuroh5 HEAD).
    pub fn append_trees<'t>(
        &self,
        population: &str,
        trees: impl IntoIterator<Item = (u64, &'t Tree)>,
        opts: &WriteOptions,
    ) -> Result<()> {
        self.append_trees_in(population, trees, NodeBase::default(), opts)
    }

    /// [`append_trees`](Self::append_trees) with `Section` node ids in `base`.
    pub fn append_trees_in<'t>(
        &self,
        population: &str,
        trees: impl IntoIterator<Item = (u64, &'t Tree)>,
        base: NodeBase,
        opts: &WriteOptions,
    ) -> Result<()> {
        self.require_writable()?;
        let pop = self.population(population)?;
        let context = format!("{}: {}", self.path().display(), namespace_path(population, TREES));
        let cells = trees_to_cells(trees, base);
        let cells = crate::file::agree(self.comm, cells)?;
        let data = crate::cells::distribute(self, &pop, &cells, &trees_schema(), opts, &context)?;
        crate::cells::write_namespace(self, &pop, TREES, &trees_layout(), &data, &trees_schema(), opts)
    }

    /// Read the trees `selection` gives this rank (collective).
    pub fn read_trees(&self, population: &str, selection: &Selection) -> Result<BTreeMap<u64, Tree>> {
        let ns_path = namespace_path(population, TREES);
        let cells = self.read_cell_attributes(population, TREES, selection, None)?;
        let trees = cells_to_trees(&cells, &format!("{}: {ns_path}", self.path().display()));
        crate::file::agree(self.comm, trees)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DOMAIN A.7: p0 soma (root), p1 soma (parent 0), p2 basal (parent 1), p3 basal (parent 1).
    fn a7() -> Tree {
        Tree::from_points(
            vec![0.0; 4],
            vec![0.0; 4],
            vec![0.0; 4],
            vec![1.0; 4],
            vec![-1; 4],
            vec![-1, 0, 1, 1],
            vec![1, 1, 3, 3],
        )
        .unwrap()
    }

    #[test]
    fn a7_contraction_and_encoding() {
        let t = a7();
        assert_eq!(t.sections, vec![vec![0, 1], vec![1, 2], vec![1, 3]]);
        assert_eq!((t.src.clone(), t.dst.clone()), (vec![0, 0], vec![1, 2]));
        assert_eq!(t.encode_sections(), vec![3, 2, 0, 1, 2, 1, 2, 2, 1, 3]);
        assert_eq!(Tree::decode_sections(&t.encode_sections()).unwrap(), t.sections);
        let topo = t.topology().unwrap();
        assert_eq!(topo.loc, vec![1, 1]);
        assert_eq!(topo.section, vec![0, 0, 1, 2]);
    }

    #[test]
    fn type_change_starts_a_section_without_repeating_the_point() {
        // soma 0-1-2, then axon 3-4 continuing from 2 (one child, different type).
        let (s, e) = contract(&[-1, 0, 1, 2, 3], &[1, 1, 1, 2, 2]).unwrap();
        assert_eq!(s, vec![vec![0, 1, 2], vec![3, 4]]);
        assert_eq!(e, vec![(0, 1)]);
        // A single soma point: children merge into its section.
        let (s, e) = contract(&[-1, 0, 1], &[1, 3, 3]).unwrap();
        assert_eq!(s, vec![vec![0, 1, 2]]);
        assert!(e.is_empty());
    }

    #[test]
    fn node_bases_are_detected_and_ambiguity_rejected() {
        let t = a7();
        for base in [NodeBase::Zero, NodeBase::One] {
            let raw = Tree::decode_sections(&t.encode_sections_in(base)).unwrap();
            assert_eq!(NodeBase::detect(&raw, t.num_points()), Ok(base));
        }
        assert_eq!(t.encode_sections_in(NodeBase::One), vec![3, 2, 1, 2, 2, 2, 3, 2, 2, 4]);
        // 4 points: both 0 and 4, or neither, cannot be told; 5 is out of range either way.
        assert!(NodeBase::detect(&[vec![0, 1], vec![1, 4]], 4).unwrap_err().contains("ambiguous"));
        assert!(NodeBase::detect(&[vec![1, 2], vec![2, 3]], 4).unwrap_err().contains("ambiguous"));
        assert!(NodeBase::detect(&[vec![1, 5]], 4).is_err());
    }

    #[test]
    fn malformed_encodings_are_reported() {
        assert!(Tree::decode_sections(&[]).is_err());
        assert!(Tree::decode_sections(&[2, 1, 0]).is_err());
        assert!(Tree::decode_sections(&[1, 3, 0, 1]).is_err());
        assert!(Tree::decode_sections(&[1, 1, 0, 9]).is_err());
    }
}
