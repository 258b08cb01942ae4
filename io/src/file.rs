//! [`NeuroH5File`]: one HDF5 file opened by every rank of a communicator (MPI-IO when there is more than one
//! rank), plus the small collective helpers the readers and writers share.
//!
//! A file made with [`NeuroH5File::create`] is written under a temporary name (`<name>.partial`) and only
//! renamed to its real name by [`NeuroH5File::finish`], so a crash never leaves a half-written file that looks
//! complete.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use miv_partition::Communicator;

use crate::error::{IoError, Result};
use crate::h5::{self, Access, H5Error};
use crate::types::PopulationRanges;

/// Options of the writers.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteOptions {
    /// Chunk length of index and pointer datasets (neuroh5 default 4000).
    pub chunk_size: u64,
    /// Chunk length of value datasets (neuroh5 default 4000).
    pub value_chunk_size: u64,
    /// Deflate level for new datasets, `None` for uncompressed. neuroh5 compresses (level 9) only with
    /// parallel HDF5 >= 1.14; readers handle both.
    pub deflate: Option<u8>,
    /// Number of writer ranks (0 = every rank). Data is first sent to the writer that owns its gid block.
    pub io_size: usize,
    /// Projection writer: start a new destination block after this many edges (neuroh5 default 1e6).
    pub block_size: u64,
    /// A Fletcher-32 checksum per chunk of every chunked dataset (default on, so a damaged chunk is a read
    /// error; `miv h5 bench --no-checksum` turns it off to measure its cost).
    pub checksum: bool,
}

impl Default for WriteOptions {
    fn default() -> WriteOptions {
        WriteOptions {
            chunk_size: 4000,
            value_chunk_size: 4000,
            deflate: None,
            io_size: 0,
            block_size: 1_000_000,
            checksum: true,
        }
    }
}

/// A NeuroH5 file open on every rank of `comm`. All methods that take `&self` and read or write data are
/// collective: every rank calls them in the same order with its own share of the data.
pub struct NeuroH5File<'c> {
    pub(crate) comm: &'c dyn Communicator,
    path: PathBuf,
    final_path: Option<PathBuf>,
    file: Option<hdf5::File>,
    pub(crate) access: Access,
    writable: bool,
    ranges: RefCell<Option<PopulationRanges>>,
}

fn access_for(comm: &dyn Communicator) -> Access {
    #[cfg(feature = "mpi")]
    if comm.size() > 1 {
        if let Some(raw) = comm.raw_mpi() {
            return Access::Mpio(raw);
        }
    }
    let _ = comm;
    Access::Serial
}

/// The name a file is written under until [`NeuroH5File::finish`] renames it (the name of [`crate::atomic`]).
pub use crate::atomic::partial_path;

impl<'c> NeuroH5File<'c> {
    /// Create a new file (collective). It lives at `<path>.partial` until [`finish`](Self::finish).
    pub fn create(path: impl AsRef<Path>, comm: &'c dyn Communicator) -> Result<NeuroH5File<'c>> {
        let final_path = path.as_ref().to_path_buf();
        let tmp = partial_path(&final_path);
        let access = access_for(comm);
        let hid = h5::create_file(&tmp.to_string_lossy(), access);
        let hid = agree(comm, hid.map_err(|e| hdf5_error(&tmp, "/", e)))?;
        Ok(NeuroH5File {
            comm,
            path: tmp,
            final_path: Some(final_path),
            file: Some(hid),
            access,
            writable: true,
            ranges: RefCell::new(None),
        })
    }

    /// Open an existing file read-only (collective).
    pub fn open(path: impl AsRef<Path>, comm: &'c dyn Communicator) -> Result<NeuroH5File<'c>> {
        Self::open_mode(path.as_ref(), comm, false)
    }

    /// Open an existing file for appending (collective). Changes are made in place.
    pub fn open_rw(path: impl AsRef<Path>, comm: &'c dyn Communicator) -> Result<NeuroH5File<'c>> {
        Self::open_mode(path.as_ref(), comm, true)
    }

    fn open_mode(path: &Path, comm: &'c dyn Communicator, writable: bool) -> Result<NeuroH5File<'c>> {
        let local = if !path.exists() {
            Err(IoError::Fs { file: path.to_path_buf(), what: "open".into(), detail: "no such file".into() })
        } else {
            Ok(())
        };
        agree(comm, local)?;
        // Read-only files are read by every rank on its own (see `h5::reads_through_mpio`).
        let access = if writable || h5::reads_through_mpio() { access_for(comm) } else { Access::Serial };
        let hid = h5::open_file(&path.to_string_lossy(), writable, access).map_err(|e| hdf5_error(path, "/", e));
        let hid = agree(comm, hid)?;
        Ok(NeuroH5File {
            comm,
            path: path.to_path_buf(),
            final_path: None,
            file: Some(hid),
            access,
            writable,
            ranges: RefCell::new(None),
        })
    }

    /// Close the file (collective) and, for a file made by [`create`](Self::create), give it its real name.
    pub fn finish(mut self) -> Result<PathBuf> {
        let hid = self.file.take().expect("open file");
        let closed = h5::close_file(hid).map_err(|e| hdf5_error(&self.path, "/", e));
        agree(self.comm, closed)?;
        let Some(final_path) = self.final_path.take() else { return Ok(self.path.clone()) };
        let renamed = if self.comm.rank() == 0 {
            crate::atomic::commit_partial(&self.path, &final_path).map_err(|e| IoError::Fs {
                file: final_path.clone(),
                what: "rename from .partial".into(),
                detail: e.to_string(),
            })
        } else {
            Ok(())
        };
        agree(self.comm, renamed)?;
        Ok(final_path)
    }

    /// Where the file is now (the `.partial` name until `finish`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn comm(&self) -> &'c dyn Communicator {
        self.comm
    }

    /// The root group of the open file.
    pub(crate) fn root(&self) -> &hdf5::Group {
        self.file.as_ref().expect("open file")
    }

    /// Map an HDF5 failure at `path` to an error naming this file.
    pub(crate) fn err(&self, path: &str) -> impl Fn(H5Error) -> IoError + '_ {
        let path = path.to_string();
        move |e| hdf5_error(&self.path, &path, e)
    }

    pub(crate) fn invalid(&self, path: &str, problem: impl Into<String>) -> IoError {
        IoError::invalid(&self.path, path, problem)
    }

    pub(crate) fn missing(&self, path: &str, expected: impl Into<String>) -> IoError {
        IoError::missing(&self.path, path, expected)
    }

    /// Whether `path` exists, as rank 0 sees it (broadcast, so every rank takes the same branch).
    pub(crate) fn exists(&self, path: &str) -> bool {
        let mine = h5::exists(self.root(), path);
        if self.comm.size() == 1 {
            return mine;
        }
        self.comm.broadcast(0, &[mine as u8])[0] == 1
    }

    /// `exists` for many paths with one broadcast.
    pub(crate) fn exist_all(&self, paths: &[String]) -> Vec<bool> {
        let mine: Vec<u8> = paths.iter().map(|p| h5::exists(self.root(), p) as u8).collect();
        let all = if self.comm.size() == 1 { mine } else { self.comm.broadcast(0, &mine) };
        all.into_iter().map(|b| b == 1).collect()
    }

    pub(crate) fn require_writable(&self) -> Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(self.invalid("/", "file is open read-only"))
        }
    }

    /// The population table of `/H5Types`, read once and cached.
    pub fn population_ranges(&self) -> Result<PopulationRanges> {
        if let Some(r) = self.ranges.borrow().as_ref() {
            return Ok(r.clone());
        }
        let r = crate::types::read_population_ranges(self)?;
        *self.ranges.borrow_mut() = Some(r.clone());
        Ok(r)
    }

    pub(crate) fn forget_ranges(&self) {
        *self.ranges.borrow_mut() = None;
    }
}

impl Drop for NeuroH5File<'_> {
    fn drop(&mut self) {
        // A file dropped without `finish` is closed (collectively, as every rank drops it) and keeps its
        // `.partial` name.
        self.file.take();
    }
}

pub(crate) fn hdf5_error(file: &Path, path: &str, e: H5Error) -> IoError {
    IoError::Hdf5 { file: file.to_path_buf(), path: path.to_string(), what: e.what, detail: e.detail }
}

/// Collective agreement on a local outcome: if any rank failed, every rank returns an error (its own, or
/// `OtherRank` naming the first failing rank), so no rank enters the next collective call alone.
pub(crate) fn agree<T>(comm: &dyn Communicator, local: Result<T>) -> Result<T> {
    if comm.size() == 1 {
        return local;
    }
    let flag: Result<(), String> = match &local {
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    };
    match comm.agree(flag) {
        Ok(()) => local,
        Err(ce) => match local {
            Err(e) => Err(e),
            Ok(_) => Err(IoError::OtherRank { rank: ce.rank, message: ce.message }),
        },
    }
}

/// Exclusive prefix sums and totals of per-rank counts: `(offset of this rank, total)` for each column.
pub(crate) fn exclusive_prefix(comm: &dyn Communicator, counts: &[u64]) -> (Vec<u64>, Vec<u64>) {
    let k = counts.len();
    let (all, _) = comm.allgatherv(counts);
    let mut before = vec![0u64; k];
    let mut total = vec![0u64; k];
    for (r, row) in all.chunks(k.max(1)).enumerate() {
        for j in 0..k {
            if r < comm.rank() {
                before[j] += row[j];
            }
            total[j] += row[j];
        }
    }
    (before, total)
}

/// The last rank whose `count` is non-zero (0 when none is).
pub(crate) fn last_rank_with(comm: &dyn Communicator, count: u64) -> usize {
    let all = comm.allgather(count);
    all.iter().rposition(|&c| c > 0).unwrap_or(0)
}
