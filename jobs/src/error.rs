//! Errors of the construction jobs.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Config(#[from] miv_config::ConfigError),
    /// A job's configuration is inconsistent (e.g. a population without a layer box); `key` names the field.
    #[error("{kind} job: `{key}`: {message}")]
    Invalid { kind: &'static str, key: String, message: String },
    #[error("{}: {message}", .path.display())]
    Io { path: PathBuf, message: String },
    /// A job this one uses has not completed.
    #[error("{kind} job {id} is not complete in the store ({})", .dir.display())]
    Missing { kind: String, id: String, dir: PathBuf },
    /// Construction failed for one cell (e.g. no projection takes a synapse).
    #[error("{population} gid {gid}: {message}")]
    Cell { population: String, gid: u64, message: String },
    /// Another process holds the job's lock (it is being built, run or removed there).
    #[error("job {job} is in use by {holder}")]
    InUse { job: String, holder: String },
    #[error("executor: {0}")]
    Executor(String),
    /// An error every rank agreed on (reported once by rank 0).
    #[error(transparent)]
    Collective(#[from] miv_partition::CollectiveError),
    #[error("{0}")]
    Other(String),
}

impl JobError {
    pub fn io(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> JobError {
        JobError::Io { path: path.into(), message: e.to_string() }
    }

    pub fn invalid(kind: &'static str, key: impl Into<String>, message: impl Into<String>) -> JobError {
        JobError::Invalid { kind, key: key.into(), message: message.into() }
    }

    /// True when every rank holds this error (it came from a collective agreement).
    pub fn is_collective(&self) -> bool {
        matches!(self, JobError::Collective(_))
    }
}

pub type Result<T, E = JobError> = std::result::Result<T, E>;
