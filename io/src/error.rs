//! Errors of the io crate. Every variant that concerns a file names the file and, where there is one, the
//! HDF5 path inside it, so that a message alone tells the user where to look.

use std::path::PathBuf;

/// Result of io operations.
pub type Result<T, E = IoError> = std::result::Result<T, E>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum IoError {
    /// The HDF5 library refused an operation (open, read, write, ...).
    #[error("{file}: {path}: {what} failed: {detail}")]
    Hdf5 { file: PathBuf, path: String, what: String, detail: String },

    /// A group, dataset or datatype the layout requires is absent.
    #[error("{file}: {path}: missing ({expected})")]
    Missing { file: PathBuf, path: String, expected: String },

    /// An object exists but has the wrong kind, type, shape or content.
    #[error("{file}: {path}: {problem}")]
    Invalid { file: PathBuf, path: String, problem: String },

    /// In-memory data handed to a writer is inconsistent (wrong lengths, gids out of range, ...).
    #[error("{context}: {problem}")]
    BadInput { context: String, problem: String },

    /// A text input (SWC file) could not be parsed.
    #[error("{file}:{line}: {problem}")]
    Parse { file: PathBuf, line: usize, problem: String },

    /// A plain file-system operation failed.
    #[error("{file}: {what}: {detail}")]
    Fs { file: PathBuf, what: String, detail: String },

    /// Another rank failed in a collective operation; this rank stopped with it.
    #[error("{message} (rank {rank})")]
    OtherRank { rank: usize, message: String },
}

impl IoError {
    pub(crate) fn invalid(file: &std::path::Path, path: &str, problem: impl Into<String>) -> IoError {
        IoError::Invalid { file: file.to_path_buf(), path: path.to_string(), problem: problem.into() }
    }

    pub(crate) fn missing(file: &std::path::Path, path: &str, expected: impl Into<String>) -> IoError {
        IoError::Missing { file: file.to_path_buf(), path: path.to_string(), expected: expected.into() }
    }

    pub(crate) fn bad_input(context: impl Into<String>, problem: impl Into<String>) -> IoError {
        IoError::BadInput { context: context.into(), problem: problem.into() }
    }
}
