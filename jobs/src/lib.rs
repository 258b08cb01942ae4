//! miv-jobs: MiV's network construction chain as typed, cached jobs.
//!
//! The chain mirrors MiV-Simulator's interface components: `h5_types` → `network_architecture` →
//! `measure_distances` → `generate_synapse_forest` (per population) → `distribute_synapses` (per population)
//! → `generate_connections` (per destination population) → `neuroh5_graph` (`cells.h5`, `connections.h5`).
//!
//! - [`job`]: the [`Job`] trait, identities, `launch()` with caching and atomic completion.
//! - [`store`]: the on-disk [`Store`] (`<root>/<kind>/<id>/`).
//! - [`executor`]: the [`Executor`] trait: in-process, `mpirun -n N`, and Slurm executors.
//! - [`kinds`]: the seven job kinds ([`H5Types`], [`NetworkArchitecture`], [`MeasureDistances`],
//!   [`GenerateSynapseForest`], [`DistributeSynapses`], [`GenerateConnections`], [`NeuroH5Graph`]).
//! - [`build`]: the whole chain from one network YAML.
//! - [`algo`]: the algorithms on in-memory data.
//!
//! ```no_run
//! use miv_jobs::*;
//! # fn main() -> miv_jobs::Result<()> {
//! # let (cell_distributions, layer_extents, projections, population_definitions): (_, _, std::collections::BTreeMap<String, Vec<String>>, _) = Default::default();
//! let store = Store::open("store");
//! let types = H5Types { cell_distributions, projections, population_definitions }.launch(&store)?;
//! let arch = NetworkArchitecture::new(types.job.cell_distributions.clone(), layer_extents).uses(&types).launch(&store)?;
//! let distances = MeasureDistances::of(&arch).launch(&store)?;
//! // ... forests, synapses and connections per population ...
//! let graph = NeuroH5Graph::from(&[arch.job_ref(), distances.job_ref()]).launch(&store)?;
//! println!("{:?}", graph.files());
//! # Ok(()) }
//! ```

pub mod algo;
pub mod build;
pub mod error;
pub mod executor;
pub mod job;
pub mod kinds;
pub mod store;

pub use build::{build, Network};
pub use error::{JobError, Result};
pub use executor::{Dispatch, Executor, InProcess, MpirunOptions, SlurmOptions};
pub use job::{runs_in_this_process, Job, Launch, Launched, RunContext};
pub use kinds::{
    DistributeSynapses, GenerateConnections, GenerateSynapseForest, GraphFiles, H5Types, IoOptions, MeasureDistances,
    NetworkArchitecture, NeuroH5Graph,
};
pub use store::{Entry, JobLock, JobRef, Status, Store};
