//! miv-jobs: MiV's network construction chain as typed, cached jobs.
//!
//! The chain mirrors MiV-Simulator's interface components: `h5_types` → `network_architecture` →
//! `measure_distances` → `generate_synapse_forest` (per population) → `distribute_synapses` (per population)
//! → `generate_connections` (per destination population) → `neuroh5_graph` (`cells.h5`, `connections.h5`).
//!
//! - [`job`]: the [`Job`] trait, identities, `launch()` with caching and atomic completion.
//! - [`store`]: the on-disk [`Store`] (`<root>/<kind>/<id>/`).
//! - [`executor`]: in-process, `mpirun -n N`, and Slurm executors.
//! - [`algo`]: the algorithms on in-memory data.

pub mod algo;
pub mod error;
pub mod executor;
pub mod job;
pub mod store;

pub use error::{JobError, Result};
pub use executor::{Executor, MpirunOptions, SlurmOptions};
pub use job::{Job, Launch, Launched, RunContext};
pub use store::{Entry, JobRef, Status, Store};
