//! `miv cell MODEL.yaml --out DIR`: simulate one cell described in YAML (schema: docs/cell-yaml.md) and write
//! its probe traces and spike times as CSV. The model is turned into a solvers `CableCell` in a group of one,
//! so this is the same code path the network engine uses. Every error names the YAML key at fault.

use std::path::{Path, PathBuf};

use clap::Args;
use miv_engine::model::{catalogue_of, load_model, CellModel};
use miv_io::atomic::write_atomic;
use miv_partition::Communicator;
use miv_solvers::{CableCell, CellDescription, CellGroup, Event};

use super::{CliError, CliResult};

#[derive(Debug, Args)]
pub struct CellArgs {
    /// The cell model (YAML, see docs/cell-yaml.md).
    pub model: PathBuf,
    /// Output directory for probes.csv and spikes.csv (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write geometry.json: the sections as simulated and every node's area, axial resistance, path
    /// distance and position.
    #[arg(long)]
    pub geometry: bool,
}

pub fn run(comm: &dyn Communicator, args: CellArgs) -> CliResult {
    if comm.size() > 1 {
        return Err(CliError {
            message: "miv cell simulates one cell in one process; run it without mpirun".into(),
            collective: true,
        });
    }
    let model = load_model(&args.model).map_err(|e| CliError::local(e.to_string()))?;
    let out = simulate(&model).map_err(|e| CliError::local(format!("{}: {e}", args.model.display())))?;
    write_outputs(&args.out, &model, &out).map_err(|e| CliError::local(e.to_string()))?;
    if args.geometry {
        let text = serde_json::to_string_pretty(&geometry_json(&model.cell)).expect("json");
        write_atomic(args.out.join("geometry.json"), &text).map_err(|e| CliError::local(e.to_string()))?;
    }
    let summary = serde_json::json!({
        "model": args.model.display().to_string(),
        "out": args.out.display().to_string(),
        "compartments": out.compartments,
        "samples": out.times.len(),
        "spikes": out.spikes.len(),
    });
    println!("{summary}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Simulation and output.

/// Probe samples (one row per record time) and spikes (detector index, time).
#[derive(Debug, Clone, PartialEq)]
pub struct Outputs {
    pub times: Vec<f64>,
    pub samples: Vec<Vec<f64>>,
    pub spikes: Vec<(usize, f64)>,
    pub compartments: usize,
}

/// Run a model: a group of one cell, probes sampled every `record_dt` from t = 0 to tstop.
pub fn simulate(m: &CellModel) -> Result<Outputs, miv_solvers::SolverError> {
    let mut g =
        CellGroup::new(&[CellDescription::Cable(m.cell.clone())], &catalogue_of(&m.mechanisms), m.options.clone())?;
    let probes = m.probes.iter().map(|(_, p)| g.probe(p)).collect::<Result<Vec<_>, _>>()?;
    let mut events = Vec::new();
    for (k, train) in m.events.iter().enumerate() {
        let target = g.target(0, train.target).expect("target placed by the model");
        let c = g.connect(target, &train.weights, k as u64)?;
        events.extend(train.times.iter().map(|&t| Event { time: t, connection: c }));
    }
    g.initialize(m.v_init)?;
    g.enqueue(&events);
    let stride = (m.record_dt / m.options.dt).round() as u64;
    let steps = (m.tstop / m.options.dt + 1e-6).floor() as u64;
    let mut out = Outputs { times: vec![], samples: vec![], spikes: vec![], compartments: g.num_compartments() };
    let mut spikes = Vec::new();
    let mut none = Vec::new();
    let sample = |g: &CellGroup, out: &mut Outputs| {
        out.times.push(g.time());
        out.samples.push(probes.iter().map(|p| g.read(p)).collect());
    };
    sample(&g, &mut out);
    let mut step = 0;
    while step < steps {
        step = (step + stride).min(steps);
        g.advance(step as f64 * m.options.dt, &mut none, &mut spikes)?;
        if step % stride == 0 {
            sample(&g, &mut out);
        }
    }
    out.spikes = spikes.iter().map(|s| (s.source as usize, s.time)).collect();
    Ok(out)
}

/// Write `probes.csv` (t_ms and one column per probe) and `spikes.csv` (detector, t_ms) into `dir`, each
/// through a temporary name renamed when complete.
pub fn write_outputs(dir: &Path, m: &CellModel, out: &Outputs) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut probes = csv::Writer::from_writer(Vec::new());
    probes.write_record(std::iter::once("t_ms").chain(m.probes.iter().map(|(name, _)| name.as_str())))?;
    for (t, row) in out.times.iter().zip(&out.samples) {
        probes.write_record(std::iter::once(t).chain(row).map(|v| v.to_string()))?;
    }
    let mut spikes = csv::Writer::from_writer(Vec::new());
    spikes.write_record(["detector", "t_ms"])?;
    for (d, t) in &out.spikes {
        spikes.write_record([m.detector_names[*d].as_str(), &t.to_string()])?;
    }
    write_atomic(dir.join("probes.csv"), csv_bytes(probes)?)?;
    write_atomic(dir.join("spikes.csv"), csv_bytes(spikes)?)
}

fn csv_bytes(w: csv::Writer<Vec<u8>>) -> std::io::Result<Vec<u8>> {
    w.into_inner().map_err(|e| e.into_error())
}

/// The discretised cell as JSON: sections (name, type, parent, parent_x, nseg, Ra, cm, L, diam or points,
/// placed first point) and nodes (section, x, area um2, ri MOhm to the parent node, distance, position).
pub fn geometry_json(cell: &CableCell) -> serde_json::Value {
    let comp = cell.compartments();
    let placed = cell.morphology.placed_points(&cell.nseg);
    let sections: Vec<serde_json::Value> = cell
        .morphology
        .sections
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut v = serde_json::json!({
                "name": s.name, "type": s.swc_type, "parent": s.parent, "parent_x": s.parent_x,
                "nseg": cell.nseg[i], "Ra": cell.ra[i], "cm": cell.cm[i], "L": s.length(),
                "placed_first_point": [placed[i][0].x, placed[i][0].y, placed[i][0].z],
            });
            match &s.geometry {
                miv_solvers::Geometry::Cylinder { diam, .. } => v["diam"] = serde_json::json!(diam),
                miv_solvers::Geometry::Points(p) => {
                    v["points"] = serde_json::json!(p.iter().map(|q| [q.x, q.y, q.z, q.diam]).collect::<Vec<_>>())
                }
            }
            v
        })
        .collect();
    let nodes: Vec<serde_json::Value> = (0..comp.len())
        .map(|i| {
            serde_json::json!({
                "section": comp.section[i], "x": comp.x[i], "area": comp.area[i],
                "ri": if comp.rinv[i] > 0.0 { 1.0 / comp.rinv[i] } else { 0.0 },
                "distance": comp.distance[i], "position": comp.position[i],
            })
        })
        .collect();
    serde_json::json!({"sections": sections, "nodes": nodes})
}
