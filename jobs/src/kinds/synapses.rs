//! `distribute_synapses`: synapse locations of every cell of one population, from its tree, the cell type's
//! densities and its discretisation, written to `Synapse Attributes` of `synapses.h5`.

use serde::{Deserialize, Serialize};

use super::{create_with_types, forest, io_err, share, used, IoOptions};
use crate::algo::morphology::Morphology;
use crate::algo::synapses::{distribute, DensityTable, Quirks, SynapseSet};
use crate::error::{JobError, Result};
use crate::job::{Job, Launched, RunContext};
use crate::kinds::forest::GenerateSynapseForest;
use crate::store::JobRef;
use miv_config::{CellType, Discretization, LayerDefinitions, SegmentRule, SynapseDensities, SynapseDistribution};
use miv_io::names::{SWC_TYPES, SYNAPSE_ATTRIBUTES, SYN_CDISTS, SYN_IDS, SYN_LAYERS, SYN_LOCS, SYN_SECS, SYN_TYPES};
use miv_io::{CellAttributes, NeuroH5File, Selection, Tree};
use miv_partition::{Purpose, Stream};

pub const OUTPUT: &str = "synapses.h5";
pub const SYNAPSE_LOCATIONS: Purpose = Purpose::named("synapse locations");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistributeSynapses {
    /// The population's `generate_synapse_forest` job (set with `.uses(&forest)`).
    #[serde(default)]
    pub forest: Option<JobRef>,
    pub population: String,
    /// The population's `synapses.density` from `cell_types.yml` (only this part of the cell type decides
    /// placement, so only it is part of the identity).
    pub density: SynapseDensities,
    /// How sections are cut into segments (one per section when absent).
    #[serde(default)]
    pub discretization: Option<Discretization>,
    pub layer_definitions: LayerDefinitions,
    #[serde(default)]
    pub distribution: SynapseDistribution,
    #[serde(default)]
    pub seed: u64,
    /// Reproduce MiV-Simulator d2f14d4's placement (the last-listed density for every layer, the carry-over
    /// past a segment's end; `crate::algo::synapses`). Left out of the configuration when false, so jobs
    /// made before the switch keep their identity.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub miv_compat: bool,
    #[serde(default)]
    pub io: IoOptions,
}

impl DistributeSynapses {
    pub fn new(
        population: impl Into<String>,
        cell_type: &CellType,
        layer_definitions: LayerDefinitions,
    ) -> DistributeSynapses {
        DistributeSynapses {
            forest: None,
            population: population.into(),
            density: cell_type.synapses.density.clone(),
            discretization: cell_type.discretization,
            layer_definitions,
            distribution: SynapseDistribution::Poisson,
            seed: 0,
            miv_compat: false,
            io: IoOptions::default(),
        }
    }

    pub fn uses(mut self, forest: &Launched<GenerateSynapseForest>) -> Self {
        self.forest = Some(forest.job_ref());
        self
    }

    fn rule(&self) -> SegmentRule {
        self.discretization.map(|d| d.rule()).unwrap_or(SegmentRule::Fixed(1))
    }
}

/// Add one cell's synapses to a batch of cell attributes.
pub(crate) fn push_synapses(cells: &mut CellAttributes, gid: u64, s: &SynapseSet) -> miv_io::Result<()> {
    cells.push(SYN_IDS, gid, &s.syn_ids)?;
    cells.push(SYN_LOCS, gid, &s.syn_locs)?;
    cells.push(SYN_SECS, gid, &s.syn_secs)?;
    cells.push(SYN_LAYERS, gid, &s.syn_layers)?;
    cells.push(SYN_TYPES, gid, &s.syn_types)?;
    cells.push(SWC_TYPES, gid, &s.swc_types)?;
    cells.push(SYN_CDISTS, gid, &s.syn_cdists)
}

/// One cell's synapses out of a batch read from `Synapse Attributes`.
pub(crate) fn synapse_set(cells: &CellAttributes, gid: u64) -> Option<SynapseSet> {
    Some(SynapseSet {
        syn_ids: cells.get::<u32>(SYN_IDS, gid)?.to_vec(),
        syn_locs: cells.get::<f32>(SYN_LOCS, gid)?.to_vec(),
        syn_secs: cells.get::<u32>(SYN_SECS, gid)?.to_vec(),
        syn_layers: cells.get::<i8>(SYN_LAYERS, gid)?.to_vec(),
        syn_types: cells.get::<u8>(SYN_TYPES, gid)?.to_vec(),
        swc_types: cells.get::<u8>(SWC_TYPES, gid)?.to_vec(),
        syn_cdists: cells.get::<f32>(SYN_CDISTS, gid)?.to_vec(),
    })
}

impl Job for DistributeSynapses {
    const KIND: &'static str = "distribute_synapses";

    fn science(&self) -> Self {
        DistributeSynapses { io: IoOptions::default(), ..self.clone() }
    }

    fn uses(&self) -> Vec<JobRef> {
        self.forest.iter().cloned().collect()
    }

    fn run(&self, ctx: &RunContext) -> Result<()> {
        let comm = ctx.comm;
        let forest = used(&self.forest, Self::KIND, "generate_synapse_forest")?;
        let forest_file = ctx.input(&forest)?.join(forest::OUTPUT);
        let table = ctx.agree(
            DensityTable::resolve(&self.density, &self.layer_definitions)
                .map_err(|m| JobError::invalid(Self::KIND, "density", m)),
        )?;
        let out = create_with_types(&ctx.output(OUTPUT), &forest_file, comm)?;
        let input = NeuroH5File::open(&forest_file, comm).map_err(io_err)?;
        let pop = input.population(&self.population).map_err(io_err)?;
        let rule = self.rule();
        let quirks = if self.miv_compat { Quirks::miv() } else { Quirks::default() };
        let mut cached: Option<(Tree, Morphology)> = None;
        let (mut cells_done, mut synapses) = (0u64, 0u64);
        let (mut compute, mut read, mut write) =
            (std::time::Duration::ZERO, std::time::Duration::ZERO, std::time::Duration::ZERO);
        for block in self.io.blocks(pop.range()) {
            let gids = share(comm, &block);
            let t0 = std::time::Instant::now();
            let trees = input.read_trees(&self.population, &Selection::Gids(&gids)).map_err(io_err)?;
            read += t0.elapsed();
            let mut cells = CellAttributes::new();
            let t0 = std::time::Instant::now();
            let local: Result<()> = (|| {
                for gid in &gids {
                    let tree = trees.get(gid).ok_or_else(|| JobError::Cell {
                        population: self.population.clone(),
                        gid: *gid,
                        message: "no tree in the forest".into(),
                    })?;
                    // Forest cells share one morphology: build sections once per distinct tree.
                    if cached.as_ref().is_none_or(|(t, _)| t != tree) {
                        let m = Morphology::new(tree, rule).map_err(|message| JobError::Cell {
                            population: self.population.clone(),
                            gid: *gid,
                            message,
                        })?;
                        cached = Some((tree.clone(), m));
                    }
                    let m = &cached.as_ref().expect("set above").1;
                    let mut stream = Stream::new(self.seed, SYNAPSE_LOCATIONS, *gid);
                    let s = distribute(m, &table, self.distribution, quirks, &mut stream).map_err(|message| {
                        JobError::Cell { population: self.population.clone(), gid: *gid, message }
                    })?;
                    if s.is_empty() {
                        return Err(JobError::Cell {
                            population: self.population.clone(),
                            gid: *gid,
                            message: "no synapses placed".into(),
                        });
                    }
                    synapses += s.len() as u64;
                    push_synapses(&mut cells, *gid, &s).map_err(io_err)?;
                }
                Ok(())
            })();
            compute += t0.elapsed();
            ctx.agree(local)?;
            let t0 = std::time::Instant::now();
            out.append_cell_attributes(&self.population, SYNAPSE_ATTRIBUTES, &cells, &self.io.write_options())
                .map_err(io_err)?;
            write += t0.elapsed();
            cells_done += block.end - block.start;
            ctx.progress(format_args!("{}: {cells_done}/{} cells", self.population, pop.count));
            ctx.checkpoint("block")?;
        }
        let mut total = [synapses];
        comm.allreduce_sum_u64(&mut total);
        ctx.record("cells", pop.count);
        ctx.record("synapses", total[0]);
        ctx.record("compute_seconds", comm.allreduce_max(compute.as_secs_f64()));
        ctx.record("read_seconds", comm.allreduce_max(read.as_secs_f64()));
        ctx.record("write_seconds", comm.allreduce_max(write.as_secs_f64()));
        ctx.progress(format_args!(
            "{}: {} synapses ({:.1} per cell)",
            self.population,
            total[0],
            total[0] as f64 / pop.count.max(1) as f64
        ));
        out.finish().map_err(io_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::job_id;

    #[test]
    fn miv_compat_enters_the_identity_only_when_set() {
        let density: SynapseDensities =
            serde_norway::from_str("apical: {excitatory: {SR: {mean: 1.0, variance: 0.1}}}").unwrap();
        let layers: LayerDefinitions = [("SR".to_string(), 8)].into();
        let plain = DistributeSynapses {
            forest: None,
            population: "PYR".into(),
            density,
            discretization: None,
            layer_definitions: layers,
            distribution: SynapseDistribution::Poisson,
            seed: 0,
            miv_compat: false,
            io: IoOptions::default(),
        };
        // The default leaves the key out: jobs configured before the switch keep their identity.
        assert!(!serde_json::to_string(&plain).unwrap().contains("miv_compat"));
        let compat = DistributeSynapses { miv_compat: true, ..plain.clone() };
        assert_ne!(job_id(&plain), job_id(&compat));
        let back: DistributeSynapses = serde_json::from_str(&serde_json::to_string(&compat).unwrap()).unwrap();
        assert_eq!(back, compat);
    }
}
