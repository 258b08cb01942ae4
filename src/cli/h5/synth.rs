//! A deterministic synthetic network for the multi-rank I/O self-tests: every value is a function of
//! (seed, purpose, gid), so any rank can regenerate what any gid should hold and a file written by any number
//! of ranks can be checked cell by cell. It covers every dtype, empty cells, an empty namespace, appends in
//! several calls, trees, and projections with several edge attribute namespaces and small blocks.

use std::collections::BTreeMap;

use miv_io::{CellAttributes, Dtype, H5Types, PopulationRanges, Projection, Result, Tree, Values};
use miv_partition::{Purpose, Stream};

pub const MIXED: &str = "Mixed";
pub const EMPTY: &str = "Empty";
pub const COORDS: &str = "Generated Coordinates";
/// HDF5 attributes set on PYR's `Arc Distances`.
pub const REFERENCES: [(&str, f64); 4] = [
    ("Reference U Min", -500.0),
    ("Reference U Max", 500.0),
    ("Reference V Min", -480.25),
    ("Reference V Max", 519.75),
];

/// The generator stream of (seed, purpose, gid).
pub fn stream(seed: u64, purpose: &str, gid: u64) -> Stream {
    Stream::new(seed, Purpose::named(purpose), gid)
}

pub fn types() -> H5Types {
    let populations =
        PopulationRanges::from_counts(&[("STIM", 0, 37), ("PYR", 100, 53), ("OLM", 102, 11), ("GC", 103, 1000)])
            .expect("populations");
    let projections = [("STIM", "PYR"), ("PYR", "PYR"), ("OLM", "PYR"), ("PYR", "OLM"), ("STIM", "GC")]
        .iter()
        .map(|(s, d)| (s.to_string(), d.to_string()))
        .collect();
    H5Types { populations, projections }
}

/// The projections written, (source, destination), with their edge attribute namespaces. GC's 1000
/// destinations make round-robin owners scattered enough that `Selection::Owned` reads in blocks and
/// exchanges.
pub fn projections() -> Vec<(&'static str, &'static str)> {
    vec![("STIM", "PYR"), ("PYR", "PYR"), ("OLM", "PYR"), ("PYR", "OLM"), ("STIM", "GC")]
}

fn values(d: Dtype, g: &mut Stream, n: usize) -> Values {
    let mut v = Values::zeros(d, n);
    for b in v.as_bytes_mut() {
        *b = g.next_u64() as u8;
    }
    // Keep floats finite so equality checks mean what they say.
    match &mut v {
        Values::F32(x) => x.iter_mut().for_each(|e| *e = (g.uniform() * 2000.0 - 1000.0) as f32),
        Values::F64(x) => x.iter_mut().for_each(|e| *e = g.uniform() * 2e6 - 1e6),
        _ => {}
    }
    v
}

/// The `Mixed` attributes of one gid: every dtype, present for 4 of 5 cells, 0..3 values each.
pub fn mixed(seed: u64, gid: u64) -> Vec<(String, Values)> {
    let mut out = Vec::new();
    for d in Dtype::ALL {
        let mut g = stream(seed, &format!("mixed {d}"), gid);
        if g.below(5) == 0 {
            continue;
        }
        let n = g.below(4) as usize;
        out.push((format!("v_{d}"), values(d, &mut g, n)));
    }
    out
}

pub fn coords(seed: u64, gid: u64) -> [f32; 3] {
    let mut g = stream(seed, "coords", gid);
    [(g.uniform() * 1000.0) as f32, (g.uniform() * 1000.0) as f32, (g.uniform() * 100.0) as f32]
}

/// A random tree of 1..40 points: a soma pair, then basal/apical/axon points hanging off earlier points.
pub fn tree(seed: u64, gid: u64) -> Tree {
    let mut g = stream(seed, "tree", gid);
    let n = 1 + g.below(40) as usize;
    let mut parent = vec![-1i32; n];
    let mut types = vec![1i8; n];
    for i in 1..n {
        parent[i] = if i < 2 { 0 } else { g.below(i as u64) as i32 };
        types[i] = if i < 2 { 1 } else { [2, 3, 4][g.below(3) as usize] };
    }
    let f = |g: &mut Stream| (g.uniform() * 100.0) as f32;
    let x = (0..n).map(|_| f(&mut g)).collect();
    let y = (0..n).map(|_| f(&mut g)).collect();
    let z = (0..n).map(|_| f(&mut g)).collect();
    let r = (0..n).map(|_| f(&mut g) / 50.0).collect();
    let layer = (0..n).map(|_| 5 + g.below(5) as i8).collect();
    Tree::from_points(x, y, z, r, layer, parent, types).expect("synthetic tree")
}

/// The edges of destination `dst` in projection `src -> dst`: (source gids, syn_id, distance, extra).
pub fn edges(
    seed: u64,
    source: &str,
    destination: &str,
    src_range: std::ops::Range<u64>,
    dst: u64,
) -> (Vec<u64>, Vec<u32>, Vec<f32>, Vec<i16>) {
    let mut g = stream(seed, &format!("edges {source} {destination}"), dst);
    let k = g.below(6) as usize;
    let n = src_range.end - src_range.start;
    let src: Vec<u64> = (0..k).map(|_| src_range.start + g.below(n)).collect();
    let syn: Vec<u32> = (0..k).map(|_| g.below(1000) as u32).collect();
    let dist: Vec<f32> = (0..k).map(|_| (g.uniform() * 500.0) as f32).collect();
    let extra: Vec<i16> = (0..k).map(|_| g.next_u64() as i16).collect();
    (src, syn, dist, extra)
}

/// Append pass of a gid: the `Mixed` namespace and the projections are written in two appends.
pub fn pass_of(gid: u64) -> usize {
    (gid % 3 == 0) as usize
}

pub fn mixed_cells(seed: u64, gids: impl Iterator<Item = u64>) -> Result<CellAttributes> {
    let mut c = CellAttributes::new();
    for d in Dtype::ALL {
        c.declare(&format!("v_{d}"), d)?;
    }
    for gid in gids {
        for (name, v) in mixed(seed, gid) {
            c.push_values(&name, gid, &v)?;
        }
    }
    Ok(c)
}

pub fn coord_cells(seed: u64, gids: impl Iterator<Item = u64>) -> Result<CellAttributes> {
    let mut c = CellAttributes::new();
    for gid in gids {
        let [x, y, z] = coords(seed, gid);
        c.push("X Coordinate", gid, &[x])?;
        c.push("Y Coordinate", gid, &[y])?;
        c.push("Z Coordinate", gid, &[z])?;
    }
    Ok(c)
}

pub fn trees(seed: u64, gids: impl Iterator<Item = u64>) -> BTreeMap<u64, Tree> {
    gids.map(|g| (g, tree(seed, g))).collect()
}

pub fn projection(
    seed: u64,
    ranges: &PopulationRanges,
    source: &str,
    destination: &str,
    dsts: impl Iterator<Item = u64>,
) -> Result<Projection> {
    let s = ranges.get(source).expect("source");
    let d = ranges.get(destination).expect("destination");
    let mut p = Projection::new(s, d);
    p.declare("Synapses", "syn_id", Dtype::U32)?;
    p.declare("Connections", "distance", Dtype::F32)?;
    if source == "PYR" {
        p.declare("Extra", "w", Dtype::I16)?;
    }
    for dst in dsts {
        let (src, syn, dist, extra) = edges(seed, source, destination, s.range(), dst);
        p.push(dst, &src)?;
        p.attr_mut::<u32>("Synapses", "syn_id")?.extend(syn);
        p.attr_mut::<f32>("Connections", "distance")?.extend(dist);
        if source == "PYR" {
            p.attr_mut::<i16>("Extra", "w")?.extend(extra);
        }
    }
    Ok(p)
}
