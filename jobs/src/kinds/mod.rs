//! The job kinds of the construction chain, each a configuration struct with MiV's fields that reads the
//! outputs of the jobs it uses, runs an [`algo`](crate::algo) step over the gids of this rank, and writes its
//! NeuroH5 file collectively through `miv-io`.
//!
//! Every random draw comes from a stream keyed by (seed, purpose, gid), so outputs are the same for any rank
//! count. Cells are processed and written in blocks of `write_size` consecutive gids of a population (the same
//! blocks for any rank count), so files come out in gid order. Within a block each rank takes a contiguous
//! share ([`share`]), so its reads are one hyperslab per dataset (round-robin shares, one gid in every `size`,
//! read ten times slower through MPI-IO); the small per-population jobs (architecture, distances) deal gids
//! round-robin.

pub mod architecture;
pub mod connections;
pub mod distances;
pub mod forest;
pub mod graph;
pub mod h5_types;
pub mod synapses;

use serde::{Deserialize, Serialize};

use crate::error::{JobError, Result};
use crate::job::exec_prepared;
use crate::store::{JobRef, Store};
use miv_io::{NeuroH5File, WriteOptions};

pub use architecture::NetworkArchitecture;
pub use connections::GenerateConnections;
pub use distances::MeasureDistances;
pub use forest::GenerateSynapseForest;
pub use graph::{GraphFiles, NeuroH5Graph};
pub use h5_types::H5Types;
pub use synapses::DistributeSynapses;

/// I/O tuning: left out of job identities (MiV's `compute_context` drops the same fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IoOptions {
    /// Writer ranks (0: every rank).
    pub io_size: usize,
    /// Chunk length of index and pointer datasets.
    pub chunk_size: u64,
    /// Chunk length of value datasets.
    pub value_chunk_size: u64,
    /// Cells per write block (consecutive gids of one population).
    pub write_size: u64,
}

impl Default for IoOptions {
    fn default() -> Self {
        IoOptions { io_size: 0, chunk_size: 4000, value_chunk_size: 4000, write_size: 10_000 }
    }
}

impl IoOptions {
    pub(crate) fn write_options(&self) -> WriteOptions {
        WriteOptions {
            io_size: self.io_size,
            chunk_size: self.chunk_size,
            value_chunk_size: self.value_chunk_size,
            ..WriteOptions::default()
        }
    }

    /// Gid blocks of `write_size` cells covering `range`.
    pub(crate) fn blocks(&self, range: std::ops::Range<u64>) -> impl Iterator<Item = std::ops::Range<u64>> {
        let b = self.write_size.max(1);
        let end = range.end;
        (range.start..end).step_by(b as usize).map(move |s| s..(s + b).min(end))
    }
}

/// This rank's contiguous share of a block of gids (the partition crate's I/O-rank split, one part per rank).
pub(crate) fn share(comm: &dyn miv_partition::Communicator, block: &std::ops::Range<u64>) -> Vec<u64> {
    let plan = miv_partition::ReadPlan::io_ranks(block.clone(), comm.size(), comm.size());
    plan.ranges_of(comm.rank()).iter().flat_map(|r| r.clone()).collect()
}

/// The kinds `miv jobs exec` can run.
pub const KINDS: &[&str] = &[
    H5Types::KIND,
    NetworkArchitecture::KIND,
    MeasureDistances::KIND,
    GenerateSynapseForest::KIND,
    DistributeSynapses::KIND,
    GenerateConnections::KIND,
    NeuroH5Graph::KIND,
];

use crate::job::Job;

/// Run a job prepared in `store` (the child side of the mpirun and Slurm executors); `lock`: hold the job's
/// lock while running (Slurm batch jobs, see [`exec_prepared`]).
pub fn exec(store: &Store, job: &JobRef, lock: bool) -> Result<()> {
    match job.kind.as_str() {
        H5Types::KIND => exec_prepared::<H5Types>(store, job, lock),
        NetworkArchitecture::KIND => exec_prepared::<NetworkArchitecture>(store, job, lock),
        MeasureDistances::KIND => exec_prepared::<MeasureDistances>(store, job, lock),
        GenerateSynapseForest::KIND => exec_prepared::<GenerateSynapseForest>(store, job, lock),
        DistributeSynapses::KIND => exec_prepared::<DistributeSynapses>(store, job, lock),
        GenerateConnections::KIND => exec_prepared::<GenerateConnections>(store, job, lock),
        NeuroH5Graph::KIND => exec_prepared::<NeuroH5Graph>(store, job, lock),
        other => Err(JobError::Executor(format!("unknown job kind `{other}` (known: {})", KINDS.join(", ")))),
    }
}

/// The used job of `kind`, or an error naming the missing `uses`.
pub(crate) fn used(r: &Option<JobRef>, kind: &'static str, what: &str) -> Result<JobRef> {
    r.clone().ok_or_else(|| JobError::invalid(kind, "uses", format!("needs a {what} job: call .uses(&{what})")))
}

/// Convert an io error into a job error.
pub(crate) fn io_err(e: miv_io::IoError) -> JobError {
    JobError::Other(e.to_string())
}

/// Create the job's output file holding a copy of the `/H5Types` of `types_file`.
pub(crate) fn create_with_types<'c>(
    path: &std::path::Path,
    types_file: &std::path::Path,
    comm: &'c dyn miv_partition::Communicator,
) -> Result<NeuroH5File<'c>> {
    let types = {
        let f = NeuroH5File::open(types_file, comm).map_err(io_err)?;
        f.read_h5types().map_err(io_err)?
    };
    let out = NeuroH5File::create(path, comm).map_err(io_err)?;
    out.write_h5types(&types).map_err(io_err)?;
    Ok(out)
}
