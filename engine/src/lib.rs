//! miv-engine: the execution environment.
//!
//! - [`spikes`]: spike records, their exchange at min-delay barriers and gathering on root.
//! - [`expr`]: arithmetic expressions for per-segment template parameters.
//! - [`lfp`]: the point-electrode LFP of MiV's `lfp.py`, with an exact (rank-independent) sum.

pub mod expr;
pub mod lfp;
pub mod spikes;

pub use spikes::Spike;
