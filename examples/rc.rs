//! The seed's imperative flow (MiV-Simulator-Cases 3-interface-api: `rc-separation.py` builds the network,
//! `interface/experiment/rc.py` simulates it) written against the Rust API, step by step; docs/api.md
//! translates it line by line.
//!
//! ```sh
//! cargo run --release --example rc -- --t-end 500          # or: mpirun -n 2 target/release/examples/rc ...
//! ```
//! Prints, on rank 0, the spike count per population and the LFP readout's sample count and range.

use std::collections::BTreeMap;
use std::path::PathBuf;

use miv::config::NetworkConfig;
use miv::config::{default_synapse_rules, LfpConfig, Partitioning};
use miv::engine::{ExecutionEnvironment, RunOptions};
use miv::jobs::*;
use miv::partition::Communicator;
use miv::solvers::Method;

struct Args {
    network: PathBuf,
    store: PathBuf,
    t_end: f64,
}

fn args() -> Result<Args, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/rc-network");
    let mut a = Args { network: root.join("network.yaml"), store: root.join(".miv-store"), t_end: 500.0 };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or_else(|| format!("{k}: needs a value"));
        match k.as_str() {
            "--network" => a.network = v()?.into(),
            "--store" => a.store = v()?.into(),
            "--t-end" => a.t_end = v()?.parse().map_err(|e| format!("--t-end: {e}"))?,
            other => return Err(format!("unknown argument {other} (--network, --store, --t-end)")),
        }
    }
    Ok(a)
}

fn main() {
    miv::partition::install_panic_abort();
    let comm = miv::partition::init();
    if let Err(e) = run(comm.as_ref()) {
        if comm.rank() == 0 {
            eprintln!("error: {e}");
        }
        drop(comm);
        std::process::exit(1);
    }
}

fn run(comm: &dyn Communicator) -> Result<(), Box<dyn std::error::Error>> {
    let a = args()?;
    // --- rc-separation.py: the construction chain (h5_types ... neuroh5_graph), cached in the store. ---
    let net = comm.agreed(NetworkConfig::load(&a.network))?;
    let store = Store::with_comm(a.store.clone(), comm);
    let h5_types = H5Types {
        cell_distributions: net.cell_distributions.clone(),
        projections: net.synapses.iter().map(|(post, pre)| (post.clone(), pre.keys().cloned().collect())).collect(),
        population_definitions: net.population_definitions.clone(),
    }
    .launch(&store)?;
    let mut arch = NetworkArchitecture::new(net.cell_distributions.clone(), net.layer_extents.clone());
    (arch.rotation, arch.cell_constraints, arch.seed) = (net.rotation, net.cell_constraints.clone(), net.seed);
    (arch.nodeiter, arch.dispersion_delta) = (net.placement.nodeiter, net.placement.dispersion_delta);
    let network = arch.uses(&h5_types).launch(&store)?;
    let measure_distances = MeasureDistances::of(&network).origin(net.origin).launch(&store)?;
    let mut synapse_forest = BTreeMap::new();
    for population in ["PYR", "PVBC", "OLM"] {
        let f = GenerateSynapseForest::new(population, &net.morphology[population]).uses(&network).launch(&store)?;
        synapse_forest.insert(population, f);
    }
    let mut synapses = BTreeMap::new();
    for (population, forest) in &synapse_forest {
        let mut s = DistributeSynapses::new(*population, &net.cell_types[*population], net.layer_definitions.clone())
            .uses(forest);
        (s.distribution, s.seed) = (net.distribution, net.seed);
        synapses.insert(*population, s.launch(&store)?);
    }
    let mut connections = BTreeMap::new();
    for (population, syn) in &synapses {
        let mut c = GenerateConnections::new(
            net.synapses.clone(),
            net.axon_extents.clone(),
            net.population_definitions.clone(),
            net.layer_definitions.clone(),
        )
        .uses(&measure_distances, syn);
        c.seed = net.seed;
        connections.insert(*population, c.launch(&store)?);
    }
    let mut uses = vec![network.job_ref(), measure_distances.job_ref()];
    uses.extend(synapse_forest.values().map(|j| j.job_ref()));
    uses.extend(synapses.values().map(|j| j.job_ref()));
    uses.extend(connections.values().map(|j| j.job_ref()));
    let graph = NeuroH5Graph::from(&uses).launch(&store)?;
    let files = graph.files();

    // --- rc.py: the execution environment. ---
    let catalogue = comm.agreed(miv::engine::mechanisms::catalogue(None))?;
    let mut opts = RunOptions::default();
    opts.sim.dt = 0.025;
    opts.sim.method = Method::CrankNicolson;
    opts.seed = 1;
    let mut env = ExecutionEnvironment::new(comm, catalogue, opts);
    let templates = a.network.parent().unwrap_or(std::path::Path::new(".")).join("templates");
    env.load_cells(&files.cells, &net.cell_types, &templates, Partitioning::RoundRobin, 0)?;
    env.load_connections(&files.connections, &net.synapses, &default_synapse_rules(), 250.0, 2.0 * 0.025, 0)?;
    // The LFP electrode (rc.py's ReadoutElectrode).
    let lfp: LfpConfig = serde_norway::from_str(
        "{label: ReadoutElectrode, position: [500, 500, 0], rho: 333, dt_lfp: 0.1, fdst: 0.1, max_e_dist: 100, seed: 2}",
    )?;
    env.add_lfp(lfp)?;
    // cell.play(stimulus[gid::10]) on every STIM cell this rank owns.
    let stimulus: Vec<f64> = std::fs::read_to_string(a.network.with_file_name("stimulus.txt"))?
        .lines()
        .flat_map(|l| l.split('#').next().unwrap_or("").split(|c: char| c == ',' || c.is_whitespace()))
        .filter(|t| !t.is_empty())
        .map(|t| t.parse::<f64>())
        .collect::<Result<_, _>>()?;
    let stim = env.populations().and_then(|p| p.get("STIM")).map(|p| p.range()).ok_or("no STIM population")?;
    for gid in stim {
        if env.owns(gid) {
            let train: Vec<f64> = stimulus.iter().skip(gid as usize).step_by(10).copied().collect();
            env.play(gid, &train)?;
        }
    }
    // h.finitialize(-65); pc.psolve(t_end).
    env.finitialize(-65.0)?;
    env.psolve(a.t_end)?;
    // Readouts on root.
    let spikes = env.gather_spikes();
    let lfp = env.gather_lfp(0)?;
    if let (Some(spikes), Some((t, v)), Some(pops)) = (spikes, lfp, env.populations()) {
        for name in pops.names() {
            let r = pops.get(&name).map(|p| p.range()).unwrap_or(0..0);
            println!("{name}: {} spikes", spikes.iter().filter(|s| r.contains(&s.gid)).count());
        }
        let (lo, hi) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| (l.min(x), h.max(x)));
        println!("LFP ReadoutElectrode: {} samples to {} ms, {lo:.6} .. {hi:.6} mV", t.len(), t.last().unwrap_or(&0.0));
    }
    Ok(())
}
