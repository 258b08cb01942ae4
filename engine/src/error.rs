//! Errors of the execution environment. Each names the file, key or gid concerned.

use miv_partition::CollectiveError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A problem with the network description (cells, connections, probes, options).
    #[error("{0}")]
    Network(String),
    /// A configuration file or value.
    #[error(transparent)]
    Config(#[from] miv_config::ConfigError),
    /// Reading or writing NeuroH5.
    #[error(transparent)]
    Io(#[from] miv_io::IoError),
    /// An error every rank agreed on (it may have happened on another rank).
    #[error(transparent)]
    Collective(#[from] CollectiveError),
    /// Building the experiment's network through the construction jobs.
    #[error(transparent)]
    Build(#[from] miv_jobs::JobError),
}

impl EngineError {
    /// True when every rank holds this error (agreed collectively), so every rank can stop normally and only
    /// rank 0 reports it.
    pub fn is_collective(&self) -> bool {
        match self {
            EngineError::Collective(_) => true,
            EngineError::Build(e) => e.is_collective(),
            _ => false,
        }
    }
}
