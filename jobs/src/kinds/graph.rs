//! `neuroh5_graph`: the two files a simulation loads. `cells.h5` holds `/H5Types`, every population's
//! `Generated Coordinates` and `Arc Distances`, and `Trees` and `Synapse Attributes` of the populations with
//! morphologies; populations without trees also get their coordinates as `Coordinates` (what the Dec-2023
//! runtime reads for input cells). `connections.h5` holds `/H5Types` and every projection.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{architecture, connections, create_with_types, distances, forest, io_err, share, synapses};
use crate::error::{JobError, Result};
use crate::job::{load_job, Job, Launched, RunContext};
use crate::kinds::forest::GenerateSynapseForest;
use crate::kinds::synapses::DistributeSynapses;
use crate::kinds::{DistributeSynapses as Dist, GenerateConnections, MeasureDistances, NetworkArchitecture};
use crate::store::{write_json, JobRef};
use miv_io::names::{ARC_DISTANCES, CONNECTIONS, COORDINATES, DISTANCE, SYNAPSES, SYNAPSE_ATTRIBUTES, SYN_ID};
use miv_io::{NeuroH5File, NodeBase, Projection, Selection};
use miv_partition::Assignment;

pub const CELLS: &str = "cells.h5";
pub const CONNECTIONS_FILE: &str = "connections.h5";

/// The outputs of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphFiles {
    pub cells: PathBuf,
    pub connections: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeuroH5Graph {
    /// The jobs to merge: one `network_architecture`, one `measure_distances`, and per population its
    /// `generate_synapse_forest`, `distribute_synapses` and `generate_connections`.
    pub uses: Vec<JobRef>,
    /// Base of the `Section` node ids of `cells.h5`'s `Trees` (the network YAML's `tree_base`). Absent
    /// from the configuration means 0-based (what this job wrote before the option), so a job pinned to 0
    /// keeps its identity; `miv build` sets the network's value (default 1, neuroh5 HEAD).
    #[serde(default = "zero_based", skip_serializing_if = "is_zero_based")]
    pub tree_base: NodeBase,
    #[serde(default)]
    pub io: super::IoOptions,
}

fn zero_based() -> NodeBase {
    NodeBase::Zero
}

fn is_zero_based(b: &NodeBase) -> bool {
    *b == NodeBase::Zero
}

impl NeuroH5Graph {
    pub fn from(jobs: &[JobRef]) -> NeuroH5Graph {
        let mut uses = jobs.to_vec();
        uses.sort();
        uses.dedup();
        NeuroH5Graph { uses, tree_base: NodeBase::default(), io: Default::default() }
    }
}

impl Launched<NeuroH5Graph> {
    /// `cells.h5` and `connections.h5`.
    pub fn files(&self) -> GraphFiles {
        GraphFiles { cells: self.dir.join(CELLS), connections: self.dir.join(CONNECTIONS_FILE) }
    }
}

/// The used jobs sorted by role.
struct Parts {
    architecture: PathBuf,
    distances: PathBuf,
    /// population → (forest dir, synapses dir)
    forests: BTreeMap<String, PathBuf>,
    synapses: BTreeMap<String, PathBuf>,
    connections: BTreeMap<String, PathBuf>,
}

impl NeuroH5Graph {
    fn parts(&self, ctx: &RunContext) -> Result<Parts> {
        let mut arch = None;
        let mut dist = None;
        let (mut forests, mut syns, mut conns) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
        let dup =
            |what: &str, p: &str| JobError::invalid(Self::KIND, "uses", format!("two {what} jobs for population {p}"));
        for u in &self.uses {
            let dir = ctx.input(u)?;
            match u.kind.as_str() {
                k if k == NetworkArchitecture::KIND => {
                    if arch.replace(dir).is_some() {
                        return Err(JobError::invalid(Self::KIND, "uses", "two network_architecture jobs"));
                    }
                }
                k if k == MeasureDistances::KIND => {
                    if dist.replace(dir).is_some() {
                        return Err(JobError::invalid(Self::KIND, "uses", "two measure_distances jobs"));
                    }
                }
                k if k == GenerateSynapseForest::KIND => {
                    let p = load_job::<GenerateSynapseForest>(&dir)?.population;
                    if forests.insert(p.clone(), dir).is_some() {
                        return Err(dup("generate_synapse_forest", &p));
                    }
                }
                k if k == Dist::KIND => {
                    let p = load_job::<DistributeSynapses>(&dir)?.population;
                    if syns.insert(p.clone(), dir).is_some() {
                        return Err(dup("distribute_synapses", &p));
                    }
                }
                k if k == GenerateConnections::KIND => {
                    let c = load_job::<GenerateConnections>(&dir)?;
                    let s = c.synapses_job.ok_or_else(|| {
                        JobError::invalid(
                            Self::KIND,
                            "uses",
                            "a generate_connections job without its distribute_synapses job",
                        )
                    })?;
                    let p = load_job::<DistributeSynapses>(&ctx.input(&s)?)?.population;
                    if conns.insert(p.clone(), dir).is_some() {
                        return Err(dup("generate_connections", &p));
                    }
                }
                other => return Err(JobError::invalid(Self::KIND, "uses", format!("cannot merge a `{other}` job"))),
            }
        }
        let need = |x: Option<PathBuf>, what: &str| {
            x.ok_or_else(|| JobError::invalid(Self::KIND, "uses", format!("needs a {what} job")))
        };
        for p in forests.keys() {
            if !syns.contains_key(p) {
                return Err(JobError::invalid(
                    Self::KIND,
                    "uses",
                    format!("population {p} has a forest but no distribute_synapses job"),
                ));
            }
        }
        Ok(Parts {
            architecture: need(arch, "network_architecture")?,
            distances: need(dist, "measure_distances")?,
            forests,
            synapses: syns,
            connections: conns,
        })
    }
}

impl Job for NeuroH5Graph {
    const KIND: &'static str = "neuroh5_graph";

    fn science(&self) -> Self {
        NeuroH5Graph { io: Default::default(), ..self.clone() }
    }

    fn uses(&self) -> Vec<JobRef> {
        self.uses.clone()
    }

    fn run(&self, ctx: &RunContext) -> Result<()> {
        let comm = ctx.comm;
        let parts = ctx.agree(self.parts(ctx))?;
        let opts = self.io.write_options();
        let assignment = Assignment::round_robin(comm.size());
        // Contiguous reads by every rank, then each cell to its round-robin owner.
        let owned = Selection::IoRanks { assignment: &assignment, io_size: comm.size() };
        let coords_file = parts.architecture.join(architecture::OUTPUT);

        let cells = create_with_types(&ctx.output(CELLS), &coords_file, comm)?;
        let coords = NeuroH5File::open(&coords_file, comm).map_err(io_err)?;
        let dist = NeuroH5File::open(parts.distances.join(distances::OUTPUT), comm).map_err(io_err)?;
        let ranges = cells.population_ranges().map_err(io_err)?;
        // Which populations have coordinates and distances, from the jobs' configurations.
        let arch = load_job::<NetworkArchitecture>(&parts.architecture)?;
        let measured = load_job::<MeasureDistances>(&parts.distances)?;
        let placed = |p: &str| {
            arch.cell_distributions.contains_key(p)
                && arch.populations.as_ref().is_none_or(|s| s.iter().any(|x| x == p))
        };
        let distanced = |p: &str| {
            measured.cell_distributions.contains_key(p)
                && measured.populations.as_ref().is_none_or(|s| s.iter().any(|x| x == p))
        };
        for pop in ranges.iter() {
            let name = pop.name.as_str();
            if placed(name) {
                let ns = &arch.coordinate_namespace;
                let c = coords.read_cell_attributes(name, ns, &owned, None).map_err(io_err)?;
                cells.append_cell_attributes(name, ns, &c, &opts).map_err(io_err)?;
                if !parts.forests.contains_key(name) {
                    cells.append_cell_attributes(name, COORDINATES, &c, &opts).map_err(io_err)?;
                }
            }
            if distanced(name) {
                let d = dist.read_cell_attributes(name, ARC_DISTANCES, &owned, None).map_err(io_err)?;
                cells.append_cell_attributes(name, ARC_DISTANCES, &d, &opts).map_err(io_err)?;
                for (k, v) in dist.namespace_attributes(name, ARC_DISTANCES).map_err(io_err)? {
                    cells.set_namespace_attribute(name, ARC_DISTANCES, &k, v).map_err(io_err)?;
                }
            }
            ctx.progress(format_args!("{name}: coordinates and distances"));
        }
        for (pop, dir) in &parts.forests {
            let p = cells.population(pop).map_err(io_err)?;
            let fo = NeuroH5File::open(dir.join(forest::OUTPUT), comm).map_err(io_err)?;
            let sy = NeuroH5File::open(parts.synapses[pop].join(synapses::OUTPUT), comm).map_err(io_err)?;
            for block in self.io.blocks(p.range()) {
                let gids = share(comm, &block);
                let trees = fo.read_trees(pop, &Selection::Gids(&gids)).map_err(io_err)?;
                cells
                    .append_trees_in(pop, trees.iter().map(|(g, t)| (*g, t)), self.tree_base, &opts)
                    .map_err(io_err)?;
                let s =
                    sy.read_cell_attributes(pop, SYNAPSE_ATTRIBUTES, &Selection::Gids(&gids), None).map_err(io_err)?;
                cells.append_cell_attributes(pop, SYNAPSE_ATTRIBUTES, &s, &opts).map_err(io_err)?;
                ctx.checkpoint("cells block")?;
            }
            ctx.progress(format_args!("{pop}: trees and synapses"));
        }
        cells.finish().map_err(io_err)?;

        let conns = create_with_types(&ctx.output(CONNECTIONS_FILE), &coords_file, comm)?;
        for (post, dir) in &parts.connections {
            let f = NeuroH5File::open(dir.join(connections::OUTPUT), comm).map_err(io_err)?;
            let p = conns.population(post).map_err(io_err)?;
            for (src, dst) in f.projection_names().map_err(io_err)? {
                let src_pop = conns.population(&src).map_err(io_err)?;
                for block in self.io.blocks(p.range()) {
                    let gids = share(comm, &block);
                    let e = f
                        .read_projection(&src, &dst, &[SYNAPSES, CONNECTIONS], &Selection::Gids(&gids))
                        .map_err(io_err)?;
                    conns
                        .append_projection(&copy_projection(&e, &src_pop, &p).map_err(io_err)?, &opts)
                        .map_err(io_err)?;
                }
                ctx.progress(format_args!("{src} -> {dst}: edges"));
            }
        }
        conns.finish().map_err(io_err)?;
        if comm.rank() == 0 {
            let record = serde_json::json!({
                "cells": CELLS, "connections": CONNECTIONS_FILE,
                "architecture": parts.architecture, "distances": parts.distances,
                "synapse_forest": parts.forests, "synapses": parts.synapses, "generate_connections": parts.connections,
            });
            write_json(&ctx.output("graph.json"), &record)?;
        }
        Ok(())
    }
}

/// A projection rebuilt edge by edge with its attributes set by name (`Synapses/syn_id` u32,
/// `Connections/distance` f32), so the copy never depends on the order attributes were read in.
fn copy_projection(
    e: &Projection,
    source: &miv_io::Population,
    destination: &miv_io::Population,
) -> miv_io::Result<Projection> {
    let mut out = Projection::new(source, destination);
    let syn_id = e.attr::<u32>(SYNAPSES, SYN_ID).unwrap_or(&[]);
    let distance = e.attr::<f32>(CONNECTIONS, DISTANCE).unwrap_or(&[]);
    out.attr_mut::<u32>(SYNAPSES, SYN_ID)?;
    out.attr_mut::<f32>(CONNECTIONS, DISTANCE)?;
    for (dst, range) in e.iter() {
        let sources = e.sources_of(dst).unwrap_or_default();
        out.push(dst, &sources)?;
        out.attr_mut::<u32>(SYNAPSES, SYN_ID)?.extend_from_slice(&syn_id[range.clone()]);
        out.attr_mut::<f32>(CONNECTIONS, DISTANCE)?.extend_from_slice(&distance[range]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::job_id;

    #[test]
    fn tree_base_0_keeps_the_identity_of_jobs_made_before_the_option() {
        let uses = vec![JobRef { kind: "network_architecture".into(), id: "x".into() }];
        let zero = NeuroH5Graph { tree_base: NodeBase::Zero, ..NeuroH5Graph::from(&uses) };
        let json = serde_json::to_string(&zero).unwrap();
        assert!(!json.contains("tree_base"), "{json}");
        let back: NeuroH5Graph = serde_json::from_str(&json).unwrap();
        assert_eq!(back.tree_base, NodeBase::Zero, "absent means 0-based");
        let one = NeuroH5Graph::from(&uses);
        assert_eq!(one.tree_base, NodeBase::One);
        assert!(serde_json::to_string(&one).unwrap().contains("\"tree_base\":1"));
        assert_ne!(job_id(&zero), job_id(&one));
    }
}
