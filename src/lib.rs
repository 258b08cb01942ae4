//! miv: large biophysical neural network simulation.
//!
//! This facade re-exports the workspace crates so that a user can depend on `miv` alone:
//! [`config`] (every YAML schema, its defaults and the YAML loader), [`io`] (NeuroH5 files), [`partition`] (communicators and gid assignment), [`solvers`] (numerics),
//! [`engine`] (the execution environment), [`jobs`] (network construction) and [`analysis`] (stimulus trains,
//! spike-train and state distances, figures).

pub use miv_analysis as analysis;
pub use miv_config as config;
pub use miv_engine as engine;
pub use miv_io as io;
pub use miv_jobs as jobs;
pub use miv_partition as partition;
pub use miv_solvers as solvers;

pub mod cli;
pub mod logging;
