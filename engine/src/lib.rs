//! miv-engine: the execution environment.
//!
//! - [`network`]: [`Network`], the local cells in cell groups, connections, min-delay spike exchange,
//!   probes and LFP sampling.
//! - [`spikes`]: spike records, their exchange at min-delay barriers and gathering on root.
//! - [`lfp`]: the point-electrode LFP of MiV's `lfp.py`, with an exact (rank-independent) sum.
//! - [`model`]: cell models and templates in YAML (the biophysics schema).
//! - [`expr`]: arithmetic expressions for per-segment template parameters.
//! - [`error`]: [`EngineError`].

pub mod error;
pub mod expr;
pub mod lfp;
pub mod model;
pub mod network;
pub mod spikes;

pub use error::EngineError;
pub use network::{NetCon, Network, ProbeRequest, RunOptions, Trace};
pub use spikes::Spike;
