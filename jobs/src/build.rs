//! The whole chain from one network YAML (what `miv build` runs): the same jobs, in the same order, with the
//! same arguments as MiV's `Network` interface.

use std::collections::BTreeMap;

use crate::error::{JobError, Result};
use crate::job::{planned, Job, Launch, Launched};
use crate::kinds::{
    DistributeSynapses, GenerateConnections, GenerateSynapseForest, H5Types, IoOptions, MeasureDistances,
    NetworkArchitecture, NeuroH5Graph,
};
use crate::store::{JobRef, Store};
use miv_config::NetworkConfig;

/// Every launched job of a network.
pub struct Network {
    pub h5_types: Launched<H5Types>,
    pub architecture: Launched<NetworkArchitecture>,
    pub distances: Launched<MeasureDistances>,
    pub forests: BTreeMap<String, Launched<GenerateSynapseForest>>,
    pub synapses: BTreeMap<String, Launched<DistributeSynapses>>,
    pub connections: BTreeMap<String, Launched<GenerateConnections>>,
    pub graph: Launched<NeuroH5Graph>,
}

impl Network {
    /// All jobs, in launch order.
    pub fn jobs(&self) -> Vec<JobRef> {
        let mut v = vec![self.h5_types.job_ref(), self.architecture.job_ref(), self.distances.job_ref()];
        v.extend(self.forests.values().map(|j| j.job_ref()));
        v.extend(self.synapses.values().map(|j| j.job_ref()));
        v.extend(self.connections.values().map(|j| j.job_ref()));
        v.push(self.graph.job_ref());
        v
    }
}

/// What to do with each job of the chain: launch it, or only work out its identity.
trait Step {
    fn step<J: Job>(&self, job: J) -> Result<Launched<J>>;
}

impl Step for Store<'_> {
    fn step<J: Job>(&self, job: J) -> Result<Launched<J>> {
        job.launch(self)
    }
}

struct Plan;

impl Step for Plan {
    fn step<J: Job>(&self, job: J) -> Result<Launched<J>> {
        Ok(planned(&job))
    }
}

/// Launch the chain for `net` into `store`.
pub fn build(net: &NetworkConfig, store: &Store, io: &IoOptions) -> Result<Network> {
    check_size(net)?;
    chain(net, io, store)
}

/// The least memory a build holds per cell (coordinates, attributes and index entries), for the size check.
const BYTES_PER_CELL: f64 = 128.0;

/// An error naming `cell_distributions` when the network cannot fit in memory, before anything is allocated.
fn check_size(net: &NetworkConfig) -> Result<()> {
    let cells: u64 = net.cell_distributions.values().flat_map(|l| l.values()).map(|&n| n as u64).sum();
    miv_io::memory::check_memory(&format!("cell_distributions ({cells} cells)"), cells as f64 * BYTES_PER_CELL)
        .map_err(|m| JobError::invalid("network_architecture", "cell_distributions", m))
}

/// The jobs `build` would launch, in order, without running anything.
pub fn plan(net: &NetworkConfig, io: &IoOptions) -> Result<Vec<JobRef>> {
    Ok(chain(net, io, &Plan)?.jobs())
}

fn chain(net: &NetworkConfig, io: &IoOptions, store: &impl Step) -> Result<Network> {
    let h5_types = store.step(H5Types {
        cell_distributions: net.cell_distributions.clone(),
        projections: net.synapses.iter().map(|(post, pres)| (post.clone(), pres.keys().cloned().collect())).collect(),
        population_definitions: net.population_definitions.clone(),
    })?;

    let mut arch = NetworkArchitecture::new(net.cell_distributions.clone(), net.layer_extents.clone());
    arch.rotation = net.rotation;
    arch.cell_constraints = net.cell_constraints.clone();
    arch.nodeiter = net.placement.nodeiter;
    arch.dispersion_delta = net.placement.dispersion_delta;
    arch.seed = net.seed;
    arch.io = io.clone();
    let architecture = store.step(arch.uses(&h5_types))?;

    let distances = store.step(MeasureDistances::of(&architecture).origin(net.origin))?;

    let mut forests = BTreeMap::new();
    let mut synapses = BTreeMap::new();
    let mut connections = BTreeMap::new();
    for pop in net.synaptic_populations() {
        let mut f = GenerateSynapseForest::new(&pop, &net.morphology[&pop]).uses(&architecture);
        f.io = io.clone();
        forests.insert(pop.clone(), store.step(f)?);
    }
    for (pop, forest) in &forests {
        let mut s = DistributeSynapses::new(pop, &net.cell_types[pop], net.layer_definitions.clone()).uses(forest);
        s.distribution = net.distribution;
        s.miv_compat = net.miv_compat;
        s.seed = net.seed;
        s.io = io.clone();
        synapses.insert(pop.clone(), store.step(s)?);
    }
    for (pop, syn) in &synapses {
        let mut c = GenerateConnections::new(
            net.synapses.clone(),
            net.axon_extents.clone(),
            net.population_definitions.clone(),
            net.layer_definitions.clone(),
        )
        .uses(&distances, syn);
        c.seed = net.seed;
        c.io = io.clone();
        connections.insert(pop.clone(), store.step(c)?);
    }
    let mut uses = vec![architecture.job_ref(), distances.job_ref()];
    uses.extend(forests.values().map(|j| j.job_ref()));
    uses.extend(synapses.values().map(|j| j.job_ref()));
    uses.extend(connections.values().map(|j| j.job_ref()));
    let mut g = NeuroH5Graph::from(&uses);
    g.tree_base = net.tree_base;
    g.io = io.clone();
    let graph = store.step(g)?;
    Ok(Network { h5_types, architecture, distances, forests, synapses, connections, graph })
}
