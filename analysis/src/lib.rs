//! Stimulus and analysis for miv studies: what MiV-Simulator-Cases' `3-interface-api/rc-separation.py` computes
//! around the simulation (the separation experiment of Maass, Natschläger & Markram 2002, Fig. 2), and the
//! figures of a run.
//!
//! | module | what | main items |
//! |---|---|---|
//! | [`poisson`] | homogeneous Poisson spike trains from streams keyed by (seed, purpose, key): rank-independent | [`poisson_train`], [`PoissonTrains`] |
//! | [`distance`] | the case's spike-train distance d(u, v) (Gaussian kernel, tau 5 ms, dt 0.1 ms, / duration) | [`SpikeTrainDistance`] |
//! | [`pairs`] | the case's pair generator: frequency search, then rejection sampling to within eps | [`PairGenerator`], [`FrequencyMap`] |
//! | [`state`] | state distance between two readouts, mean and s.d. over trials per time point | [`state_distance`], [`MeanSd`] |
//! | [`plot`] | PNG figures drawn in Rust: spike raster, LFP trace, mean ± s.d. curves per condition | [`plot::raster`], [`plot::trace`], [`plot::curves`] |

pub mod distance;
pub mod error;
pub mod pairs;
pub mod plot;
pub mod poisson;
pub mod state;

pub use distance::SpikeTrainDistance;
pub use error::{AnalysisError, Result};
pub use pairs::{FrequencyMap, PairGenerator, TrainPair};
pub use poisson::{poisson_train, PoissonTrains};
pub use state::{state_distance, MeanSd};
