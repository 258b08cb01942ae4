//! Synthetic networks written as real NeuroH5 files, for tests and benchmarks: the 10-cell ball-and-stick
//! ring and the BY-cell "busyring" of `tests/reference/neuron-arbor/README.md`. Each is a folder that `miv run` takes
//! as is: `cells.h5` (H5Types, Trees, Synapse Attributes, Synapse Weights), `connections.h5`, a template,
//! `cell_types.yml`, `synapses.yml` and `experiment.yaml`.

use std::path::{Path, PathBuf};

use miv_io::{CellAttributes, H5Types, NeuroH5File, PopulationRanges, Projection, Tree, WriteOptions};
use miv_partition::rng::splitmix64;
use miv_partition::SerialComm;

use crate::error::EngineError;

/// Which synthetic network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Ball-and-stick cells in a ring (reference case (d)): gid i -> i+1, one kick to gid 0 at 5.005 ms.
    Ring,
    /// BY cells in a ring plus `fanin` weight-0 connections per cell, kicks to every 10th gid at 1.005 ms
    /// (the reference benchmark network).
    Busyring,
}

/// Parameters of a synthetic network.
#[derive(Debug, Clone)]
pub struct Spec {
    pub kind: Kind,
    pub n: u64,
    /// Connection delay (ms); written as distance = delay * 250 um/ms.
    pub delay: f64,
    pub fanin: u64,
    pub t_end: f64,
    /// Artificial (VecStim) cells of a population STIM (gids first, before the ring's), each ring cell i
    /// receiving one connection from STIM cell i % stim; 0 for none.
    pub stim: u64,
}

const VELOCITY: f64 = 250.0;

fn tree(points: &[([f32; 3], f32, i32, i8)]) -> Result<Tree, EngineError> {
    let n = points.len();
    Ok(Tree::from_points(
        points.iter().map(|p| p.0[0]).collect(),
        points.iter().map(|p| p.0[1]).collect(),
        points.iter().map(|p| p.0[2]).collect(),
        points.iter().map(|p| p.1).collect(),
        vec![-1; n],
        points.iter().map(|p| p.2).collect(),
        points.iter().map(|p| p.3).collect(),
    )?)
}

/// The BS cell as SWC points: a 12.6157 um soma cylinder and a 200 um, 1 um dendrite (section 1).
fn bs_tree() -> Result<Tree, EngineError> {
    let r = 12.6157f32 / 2.0;
    tree(&[
        ([0.0, 0.0, 0.0], r, -1, 1),
        ([12.6157, 0.0, 0.0], r, 0, 1),
        ([12.6157, 0.0, 0.0], 0.5, 1, 3),
        ([212.6157, 0.0, 0.0], 0.5, 2, 3),
    ])
}

/// The BY cell: soma, trunk d0 (100 um, 2 um) and two 100 um, 1 um branches d1 (section 2) and d2.
fn by_tree() -> Result<Tree, EngineError> {
    let r = 12.6157f32 / 2.0;
    tree(&[
        ([0.0, 0.0, 0.0], r, -1, 1),
        ([12.6157, 0.0, 0.0], r, 0, 1),
        ([12.6157, 0.0, 0.0], 1.0, 1, 3),
        ([112.6157, 0.0, 0.0], 1.0, 2, 3),
        ([112.6157, 0.0, 0.0], 0.5, 3, 3),
        ([112.6157, 100.0, 0.0], 0.5, 4, 3),
        ([112.6157, 0.0, 0.0], 0.5, 3, 3),
        ([112.6157, -100.0, 0.0], 0.5, 6, 3),
    ])
}

const TEMPLATE: &str =
    "# Written by `miv gen`: the cell of tests/reference/neuron-arbor/README.md with NEURON's settings.
celsius: 6.3
discretization:
  - {region: soma, nseg: 1}
  - {region: dend, nseg: 11}
properties:
  - {region: all, Ra: 100, cm: 1}
mechanisms:
  - {region: soma, mechanism: hh, params: {gnabar: 0.12, gkbar: 0.036, gl: 0.0003, el: -54.3}}
  - {region: dend, mechanism: pas, params: {g: 0.001, e: -65}}
ions:
  - {region: soma, ion: na, erev: 50}
  - {region: soma, ion: k, erev: -77}
detectors:
  - {at: soma(0.5), threshold: 10}
";

/// Write the network into `dir` (created) and return the experiment file's path. Runs on one process.
pub fn write(dir: &Path, spec: &Spec) -> Result<PathBuf, EngineError> {
    let io = |e: std::io::Error| EngineError::Network(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir.join("templates")).map_err(io)?;
    let (pop, template, t, syn_sec) = match spec.kind {
        Kind::Ring => ("BS", "BallStick", bs_tree()?, 1u32),
        Kind::Busyring => ("BY", "BYCell", by_tree()?, 2u32),
    };
    if spec.n < 2 {
        return Err(EngineError::Network("a ring needs at least 2 cells".into()));
    }
    let comm = SerialComm;
    let mut defs = vec![(pop, (spec.stim > 0) as u16, spec.n)];
    let mut projections = vec![(pop.to_string(), pop.to_string())];
    if spec.stim > 0 {
        defs.push(("STIM", 0, spec.stim));
        projections.push(("STIM".to_string(), pop.to_string()));
    }
    let pops = PopulationRanges::from_counts(&defs)?;
    let types = H5Types { populations: pops.clone(), projections };
    let p = pops.get(pop).expect("defined").clone();
    // Ring cell i is gid b + i.
    let b = p.start;
    let stim_syn = if spec.fanin > 0 { 2u32 } else { 1 };
    let opts = WriteOptions::default();

    let f = NeuroH5File::create(dir.join("cells.h5"), &comm)?;
    f.write_h5types(&types)?;
    f.append_trees(pop, (b..b + spec.n).map(|g| (g, &t)), &opts)?;
    // Synapse 0 carries the ring connection, synapse 1 (same place) the fan-in ones.
    let mut syn = CellAttributes::new();
    let mut w = CellAttributes::new();
    for g in b..b + spec.n {
        let k = stim_syn as usize + (spec.stim > 0) as usize;
        syn.push("syn_ids", g, &(0..k as u32).collect::<Vec<_>>())?;
        syn.push("syn_locs", g, &vec![0.5f32; k])?;
        syn.push("syn_secs", g, &vec![syn_sec; k])?;
        syn.push("syn_layers", g, &vec![-1i8; k])?;
        syn.push("syn_types", g, &vec![0u8; k])?;
        syn.push("swc_types", g, &vec![3u8; k])?;
        syn.push("syn_cdists", g, &vec![100.0f32; k])?;
        w.push("syn_id", g, &(0..k as u32).collect::<Vec<_>>())?;
        let mut weights = vec![0.01f32, 0.0][..stim_syn as usize].to_vec();
        if spec.stim > 0 {
            weights.push(0.02);
        }
        w.push("AMPA", g, &weights)?;
    }
    f.append_cell_attributes(pop, miv_io::names::SYNAPSE_ATTRIBUTES, &syn, &opts)?;
    f.append_cell_attributes(pop, "Synapse Weights", &w, &opts)?;
    f.finish()?;

    let f = NeuroH5File::create(dir.join("connections.h5"), &comm)?;
    f.write_h5types(&types)?;
    let mut proj = Projection::new(&p, &p);
    let mut syn_ids = Vec::new();
    let mut dists = Vec::new();
    for i in 0..spec.n {
        let g = b + i;
        let mut srcs = vec![b + (i + spec.n - 1) % spec.n];
        for k in 0..spec.fanin {
            srcs.push(b + (i + 1 + splitmix64(i * spec.fanin + k) % (spec.n - 1)) % spec.n);
        }
        proj.push(g, &srcs)?;
        syn_ids.push(0u32);
        syn_ids.extend(std::iter::repeat_n(1u32, spec.fanin as usize));
        dists.extend(std::iter::repeat_n((spec.delay * VELOCITY) as f32, srcs.len()));
    }
    *proj.attr_mut::<u32>(miv_io::names::SYNAPSES, miv_io::names::SYN_ID)? = syn_ids;
    *proj.attr_mut::<f32>(miv_io::names::CONNECTIONS, miv_io::names::DISTANCE)? = dists;
    f.append_projection(&proj, &opts)?;
    if let Some(sp) = pops.get("STIM").filter(|_| spec.stim > 0) {
        let mut proj = Projection::new(sp, &p);
        for i in 0..spec.n {
            proj.push(b + i, &[sp.start + i % spec.stim])?;
        }
        *proj.attr_mut::<u32>(miv_io::names::SYNAPSES, miv_io::names::SYN_ID)? = vec![stim_syn; spec.n as usize];
        *proj.attr_mut::<f32>(miv_io::names::CONNECTIONS, miv_io::names::DISTANCE)? =
            vec![(spec.delay * VELOCITY) as f32; spec.n as usize];
        f.append_projection(&proj, &opts)?;
    }
    f.finish()?;

    let write = |name: &str, text: String| miv_io::atomic::write_atomic(dir.join(name), text).map_err(io);
    write(&format!("templates/{template}.yaml"), TEMPLATE.to_string())?;
    let stim_type = if spec.stim > 0 { "STIM:\n  template: VecStim\n" } else { "" };
    write(
        "cell_types.yml",
        format!(
            "{pop}:\n  template: {template}\n  synapses:\n    weights: {{namespace: Synapse Weights}}\n{stim_type}"
        ),
    )?;
    let projection = |src: &str| {
        format!(
            "  {src}:\n    type: excitatory\n    sections: [basal]\n    layers: [SR]\n    proportions: [1.0]\n    \
             mechanisms:\n      AMPA: {{tau1: 0.5, tau2: 2.0, e: 0, weight: 0.01}}\n"
        )
    };
    let mut synapses = format!("{pop}:\n{}", projection(pop));
    if spec.stim > 0 {
        synapses.push_str(&projection("STIM"));
    }
    write("synapses.yml", synapses)?;
    let kicks: Vec<String> = match spec.kind {
        Kind::Ring => vec![format!("{{gid: {b}, t: 5.005, weights: [0.01]}}")],
        Kind::Busyring => (0..spec.n)
            .filter(|i| i % 10 == 0)
            .map(|i| format!("{{gid: {}, t: 1.005, weights: [0.01]}}", b + i))
            .collect(),
    };
    let exp = format!(
        "# Written by `miv gen`. Run with: miv run experiment.yaml (or under mpirun).\n\
         cells: cells.h5\nconnections: connections.h5\ncell_types: cell_types.yml\nsynapses: synapses.yml\n\
         templates: templates\nt_end: {}\ndt: 0.025\nmethod: backward_euler\nv_init: -65\n\
         synapse_mechanisms:\n  AMPA: {{mechanism: Exp2Syn, netcon: [weight]}}\n\
         stimulus:\n  - events:\n{}\n\
         output:\n  path: results.h5\n  spikes_csv: spikes.csv\n",
        spec.t_end,
        kicks.iter().map(|k| format!("      - {k}")).collect::<Vec<_>>().join("\n")
    );
    write("experiment.yaml", exp)?;
    Ok(dir.join("experiment.yaml"))
}
