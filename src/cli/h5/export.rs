//! `miv h5 selftest export`: every rank reads a whole NeuroH5 file (every cell attribute namespace, every
//! `Trees` namespace, every projection with all its edge namespaces) with one `Selection` and prints what it
//! received as one JSON line, gathered on rank 0. The tests merge the lines and compare them with what the
//! real neuroh5 library reads from the same file (`tests/reference/neuroh5/`), and check that each gid went
//! to the rank that owns it.

use std::collections::BTreeMap;
use std::path::Path;

use miv_io::{NeuroH5File, Selection};
use miv_partition::{Assignment, Communicator};
use serde_json::{json, Map, Value};

use super::{io_err, ReadMode};
use crate::cli::CliResult;

fn tree_json(t: &miv_io::Tree) -> Value {
    let f32s = |v: &[f32]| Value::Array(v.iter().map(|&x| json!(x as f64)).collect());
    json!({
        "x": f32s(&t.x), "y": f32s(&t.y), "z": f32s(&t.z), "radius": f32s(&t.radius),
        "layer": t.layer, "parent": t.parent, "swc_type": t.swc_type,
        "sections": t.encode_sections(), "src": t.src, "dst": t.dst,
    })
}

pub fn run(comm: &dyn Communicator, file: &Path, mode: ReadMode, io_size: usize) -> CliResult {
    let a = Assignment::round_robin(comm.size());
    let f = NeuroH5File::open(file, comm).map_err(io_err)?;
    let types = f.read_h5types().map_err(io_err)?;
    let sel = match mode {
        ReadMode::Owned => Selection::Owned(&a),
        ReadMode::Io => Selection::IoRanks { assignment: &a, io_size },
        ReadMode::All | ReadMode::Strided => Selection::All,
    };
    let mut cells = Map::new();
    let mut trees = Map::new();
    for p in types.populations.iter() {
        for ns in f.namespaces(&p.name).map_err(io_err)? {
            if ns == miv_io::names::TREES {
                let t = f.read_trees(&p.name, &sel).map_err(io_err)?;
                let m: Map<String, Value> = t.iter().map(|(g, t)| (g.to_string(), tree_json(t))).collect();
                trees.insert(p.name.clone(), Value::Object(m));
                continue;
            }
            let c = f.read_cell_attributes(&p.name, &ns, &sel, None).map_err(io_err)?;
            let mut by_gid: BTreeMap<u64, Map<String, Value>> = BTreeMap::new();
            let mut dtypes = Map::new();
            for (name, d) in c.attributes() {
                dtypes.insert(name.clone(), json!(d.dtype().name()));
                for (i, g) in d.gids().iter().enumerate() {
                    by_gid.entry(*g).or_default().insert(name.clone(), Value::Array(d.values().json_range(d.cell(i))));
                }
            }
            let m: Map<String, Value> = by_gid.into_iter().map(|(g, a)| (g.to_string(), Value::Object(a))).collect();
            let pop = cells.entry(p.name.clone()).or_insert_with(|| json!({}));
            pop[ns.as_str()] = json!({"dtypes": dtypes, "cells": m});
        }
    }
    let mut prjs = Map::new();
    for (src, dst) in f.projection_names().map_err(io_err)? {
        let nss = f.edge_namespaces(&src, &dst).map_err(io_err)?;
        let refs: Vec<&str> = nss.iter().map(|s| s.as_str()).collect();
        let p = f.read_projection(&src, &dst, &refs, &sel).map_err(io_err)?;
        let mut dtypes = Map::new();
        dtypes.insert("sources".into(), json!("uint32"));
        for at in p.attributes() {
            dtypes.insert(format!("{}/{}", at.namespace, at.name), json!(at.values.dtype().name()));
        }
        let mut edges = Map::new();
        for (g, r) in p.iter() {
            let mut e = Map::new();
            let sources: Vec<u64> = p.source_index()[r.clone()].iter().map(|&s| p.src_start() + s as u64).collect();
            e.insert("sources".into(), json!(sources));
            for at in p.attributes() {
                e.insert(format!("{}/{}", at.namespace, at.name), Value::Array(at.values.json_range(r.clone())));
            }
            edges.insert(g.to_string(), Value::Object(e));
        }
        prjs.insert(format!("{src}:{dst}"), json!({"dtypes": dtypes, "edges": edges}));
    }
    let pops: Map<String, Value> =
        types.populations.iter().map(|p| (p.name.clone(), json!([p.start, p.count]))).collect();
    let line = json!({
        "rank": comm.rank(), "size": comm.size(), "population_ranges": pops,
        "valid_projections": types.projections, "cell_attributes": cells, "trees": trees, "projections": prjs,
    })
    .to_string();
    if let Some(lines) = comm.gather_strings(0, &line) {
        for l in lines {
            println!("{l}");
        }
    }
    Ok(())
}
