//! `generate_connections`: the edges into one destination population from every presynaptic population of
//! `synapses.yml`, drawn by arc distance within the axon extents, written to
//! `/Projections/<destination>/<source>` (`Synapses/syn_id`, `Connections/distance`) of `connections.h5`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{create_with_types, distances, io_err, share, synapses, used, IoOptions};
use crate::algo::connections::{connect_cell, ProjectionRule, SourceCells};
use crate::error::{JobError, Result};
use crate::job::{load_job, Job, Launched, RunContext};
use crate::kinds::distances::MeasureDistances;
use crate::kinds::synapses::{synapse_set, DistributeSynapses};
use crate::store::JobRef;
use miv_config::{AxonExtents, LayerDefinitions, PopulationDefinitions, Synapses};
use miv_io::names::{
    ARC_DISTANCES, CONNECTIONS, DISTANCE, SYNAPSES, SYNAPSE_ATTRIBUTES, SYN_ID, U_DISTANCE, V_DISTANCE,
};
use miv_io::{NeuroH5File, Projection, Selection};

pub const OUTPUT: &str = "connections.h5";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateConnections {
    /// The `measure_distances` job.
    #[serde(default)]
    pub distances: Option<JobRef>,
    /// The destination population's `distribute_synapses` job; its population is the destination.
    #[serde(default)]
    pub synapses_job: Option<JobRef>,
    /// `synapses.yml` (its destination population's entry is the one used).
    pub synapses: Synapses,
    pub axon_extents: AxonExtents,
    pub population_definitions: PopulationDefinitions,
    pub layer_definitions: LayerDefinitions,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub io: IoOptions,
}

impl GenerateConnections {
    pub fn new(
        synapses: Synapses,
        axon_extents: AxonExtents,
        population_definitions: PopulationDefinitions,
        layer_definitions: LayerDefinitions,
    ) -> Self {
        GenerateConnections {
            distances: None,
            synapses_job: None,
            synapses,
            axon_extents,
            population_definitions,
            layer_definitions,
            seed: 0,
            io: IoOptions::default(),
        }
    }

    /// The jobs this one reads. Keeps only the destination population's entry of `synapses`, so changes to
    /// other populations' projections do not change this job's identity.
    pub fn uses(mut self, distances: &Launched<MeasureDistances>, synapses: &Launched<DistributeSynapses>) -> Self {
        self.distances = Some(distances.job_ref());
        self.synapses_job = Some(synapses.job_ref());
        self.synapses.retain(|post, _| *post == synapses.job.population);
        self
    }

    /// The projection rules into `post`, by presynaptic population name, with layers resolved.
    fn rules(&self, post: &str) -> Result<Vec<ProjectionRule>> {
        let by_pre = self
            .synapses
            .get(post)
            .ok_or_else(|| JobError::invalid(Self::KIND, "synapses", format!("no projections into `{post}`")))?;
        let layer = |name: &str, key: &str| {
            self.layer_definitions.get(name).copied().ok_or_else(|| {
                JobError::invalid(Self::KIND, key.to_string(), format!("layer `{name}` is not in layer_definitions"))
            })
        };
        let mut out = Vec::new();
        for (pre, p) in by_pre {
            let key = format!("synapses.{post}.{pre}.layers");
            let layers = p.layers.iter().map(|l| layer(l, &key)).collect::<Result<Vec<_>>>()?;
            let ext = self
                .axon_extents
                .get(pre)
                .ok_or_else(|| JobError::invalid(Self::KIND, "axon_extents", format!("no axon extent for `{pre}`")))?;
            let mut extents = BTreeMap::new();
            for (name, e) in ext {
                let k = if name == "default" { None } else { Some(layer(name, &format!("axon_extents.{pre}"))?) };
                extents.insert(k, *e);
            }
            out.push(ProjectionRule {
                pre: pre.clone(),
                kind: p.kind,
                sections: p.sections.clone(),
                layers,
                proportions: p.proportions.clone(),
                contacts: p.contacts,
                extents,
            });
        }
        Ok(out)
    }
}

/// (gid, U distance, V distance) of every cell of a population.
fn read_distances(f: &NeuroH5File, pop: &str) -> Result<Vec<(u64, f64, f64)>> {
    let d =
        f.read_cell_attributes(pop, ARC_DISTANCES, &Selection::All, Some(&[U_DISTANCE, V_DISTANCE])).map_err(io_err)?;
    d.gids()
        .into_iter()
        .map(|g| {
            let get = |n: &str| d.get::<f32>(n, g).and_then(|v| v.first().copied()).map(f64::from);
            match (get(U_DISTANCE), get(V_DISTANCE)) {
                (Some(u), Some(v)) => Ok((g, u, v)),
                _ => {
                    Err(JobError::Cell { population: pop.to_string(), gid: g, message: "missing U/V Distance".into() })
                }
            }
        })
        .collect()
}

impl Job for GenerateConnections {
    const KIND: &'static str = "generate_connections";

    fn science(&self) -> Self {
        GenerateConnections { io: IoOptions::default(), ..self.clone() }
    }

    fn uses(&self) -> Vec<JobRef> {
        self.distances.iter().chain(&self.synapses_job).cloned().collect()
    }

    fn run(&self, ctx: &RunContext) -> Result<()> {
        let comm = ctx.comm;
        let dist_job = used(&self.distances, Self::KIND, "measure_distances")?;
        let syn_job = used(&self.synapses_job, Self::KIND, "distribute_synapses")?;
        let dist_file = ctx.input(&dist_job)?.join(distances::OUTPUT);
        let syn_dir = ctx.input(&syn_job)?;
        let post = ctx.agree(load_job::<DistributeSynapses>(&syn_dir))?.population;
        let rules = ctx.agree(self.rules(&post))?;

        let dist = NeuroH5File::open(&dist_file, comm).map_err(io_err)?;
        let mut cells: BTreeMap<String, SourceCells> = BTreeMap::new();
        let dst_pos: BTreeMap<u64, (f64, f64)> =
            read_distances(&dist, &post)?.into_iter().map(|(g, u, v)| (g, (u, v))).collect();
        for r in &rules {
            if !cells.contains_key(&r.pre) {
                cells.insert(r.pre.clone(), SourceCells::new(read_distances(&dist, &r.pre)?));
            }
        }
        let sources: Vec<&SourceCells> = rules.iter().map(|r| &cells[&r.pre]).collect();
        let out = create_with_types(&ctx.output(OUTPUT), &dist_file, comm)?;
        let dst_pop = out.population(&post).map_err(io_err)?;
        let src_pops = rules.iter().map(|r| out.population(&r.pre).map_err(io_err)).collect::<Result<Vec<_>>>()?;
        let syn_file = NeuroH5File::open(syn_dir.join(synapses::OUTPUT), comm).map_err(io_err)?;
        let (mut done, mut edges) = (0u64, 0u64);
        let mut compute = std::time::Duration::ZERO;
        for block in self.io.blocks(dst_pop.range()) {
            let gids = share(comm, &block);
            let syns = syn_file
                .read_cell_attributes(&post, SYNAPSE_ATTRIBUTES, &Selection::Gids(&gids), None)
                .map_err(io_err)?;
            let mut prj: Vec<Projection> = src_pops.iter().map(|s| Projection::new(s, &dst_pop)).collect();
            let t0 = std::time::Instant::now();
            let local: Result<()> = (|| {
                for p in prj.iter_mut() {
                    p.attr_mut::<u32>(SYNAPSES, SYN_ID).map_err(io_err)?;
                    p.attr_mut::<f32>(CONNECTIONS, DISTANCE).map_err(io_err)?;
                }
                for &gid in &gids {
                    let cell_err = |message: String| JobError::Cell { population: post.clone(), gid, message };
                    let s = synapse_set(&syns, gid).ok_or_else(|| cell_err("no Synapse Attributes".into()))?;
                    let pos = *dst_pos.get(&gid).ok_or_else(|| cell_err("no Arc Distances".into()))?;
                    let e = connect_cell(self.seed, gid, pos, &s, &rules, &sources).map_err(cell_err)?;
                    for (p, e) in prj.iter_mut().zip(e) {
                        edges += e.sources.len() as u64;
                        p.push(gid, &e.sources).map_err(io_err)?;
                        p.attr_mut::<u32>(SYNAPSES, SYN_ID).map_err(io_err)?.extend_from_slice(&e.syn_ids);
                        p.attr_mut::<f32>(CONNECTIONS, DISTANCE).map_err(io_err)?.extend_from_slice(&e.distances);
                    }
                }
                Ok(())
            })();
            compute += t0.elapsed();
            ctx.agree(local)?;
            for p in &prj {
                out.append_projection(p, &self.io.write_options()).map_err(io_err)?;
            }
            done += block.end - block.start;
            ctx.progress(format_args!("{post}: {done}/{} cells", dst_pop.count));
            ctx.checkpoint("block")?;
        }
        let mut total = [edges];
        comm.allreduce_sum_u64(&mut total);
        ctx.record("cells", dst_pop.count);
        ctx.record("edges", total[0]);
        ctx.record("compute_seconds", comm.allreduce_max(compute.as_secs_f64()));
        ctx.progress(format_args!("{post}: {} edges", total[0]));
        out.finish().map_err(io_err)?;
        Ok(())
    }
}
