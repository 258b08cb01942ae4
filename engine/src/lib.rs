//! miv-engine: the execution environment.
//!
//! - [`env`](mod@env): [`ExecutionEnvironment`], MiV's runtime: load cells and connections from NeuroH5, stimulus,
//!   LFP, run, outputs.
//! - [`run`]: [`run_experiment`], the one entry for a whole run (YAML → build → load → simulate → outputs).
//! - [`experiment`]: the experiment YAML and the simulation it drives.
//! - [`network`]: [`Network`], the local cells in cell groups, connections, min-delay spike exchange,
//!   probes and LFP sampling.
//! - [`synthetic`]: the ring and busyring test networks written as NeuroH5 files.
//! - [`spikes`]: spike records, their exchange at min-delay barriers and gathering on root.
//! - [`lfp`]: the point-electrode LFP of MiV's `lfp.py`, with an exact (rank-independent) sum.
//! - [`mechanisms`]: the catalogue of a run (built-ins, MiV's synapses, the user's .mod folder).
//! - [`model`]: cell models and templates in YAML (the biophysics schema).
//! - [`expr`]: arithmetic expressions for per-segment template parameters.
//! - [`error`]: the crate's error type, [`EngineError`].

pub mod env;
pub mod error;
pub mod experiment;
pub mod expr;
pub mod lfp;
pub mod mechanisms;
pub mod model;
pub mod network;
pub mod run;
pub mod spikes;
pub mod synthetic;
mod team;

pub use env::ExecutionEnvironment;
pub use error::EngineError;
pub use network::{MechanismCensus, NetCon, Network, ProbeRequest, RunOptions, Trace};
pub use run::{run_experiment, Overrides};
pub use spikes::Spike;
