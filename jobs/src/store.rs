//! The job store: one directory per job, named by the job's identity.
//!
//! `<root>/<kind>/<id>/` exists only for a completed job: it holds `config.json` (the job as launched,
//! including what it uses), `meta.json` (ranks, executor, wall time) and the job's output files. A running,
//! failed or submitted job lives in `<root>/<kind>/.<id>.partial/` until its last rank has finished; rank 0
//! then renames it in one step, so a job interrupted at any point never looks complete.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{JobError, Result};
use crate::executor::{Executor, InProcess};
use miv_partition::{Communicator, SerialComm};

/// A reference to a job in a store: its kind and identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JobRef {
    pub kind: String,
    pub id: String,
}

impl std::fmt::Display for JobRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, self.id)
    }
}

/// The identity of a job: SHA-256 over its kind and the canonical JSON of its science configuration (which
/// includes the identities of the jobs it uses), shortened to 20 hex digits.
pub fn identity(kind: &str, canonical_json: &str) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update(b"\n");
    h.update(canonical_json.as_bytes());
    let d = h.finalize();
    d.iter().take(10).map(|b| format!("{b:02x}")).collect()
}

static SERIAL: SerialComm = SerialComm;

/// Where jobs run and where their outputs are kept.
pub struct Store<'c> {
    root: PathBuf,
    comm: &'c dyn Communicator,
    executor: Box<dyn Executor>,
}

/// What the store knows about one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Complete,
    /// Submitted to a batch system and not finished (`job_id` from `sbatch`, none for a dry run).
    Submitted {
        job_id: Option<String>,
    },
    /// Started but never completed (running elsewhere, failed or interrupted).
    Incomplete,
}

/// One row of [`Store::list`].
#[derive(Debug, Clone)]
pub struct Entry {
    pub job: JobRef,
    pub status: Status,
    pub dir: PathBuf,
    /// The job's `config.json` (kind, id, job, uses).
    pub config: serde_json::Value,
}

/// The record a submitted batch job leaves in its partial directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Submission {
    pub job_id: Option<String>,
    pub script: PathBuf,
}

pub(crate) const CONFIG_FILE: &str = "config.json";
pub(crate) const META_FILE: &str = "meta.json";
pub(crate) const SUBMISSION_FILE: &str = "submission.json";

impl<'c> Store<'c> {
    /// A store at `root` that runs jobs in this process, on one rank.
    pub fn open(root: impl Into<PathBuf>) -> Store<'static> {
        Store { root: root.into(), comm: &SERIAL, executor: Box::new(InProcess) }
    }

    /// A store whose in-process jobs run on `comm` (every rank of `comm` must make the same calls).
    pub fn with_comm(root: impl Into<PathBuf>, comm: &'c dyn Communicator) -> Store<'c> {
        Store { root: root.into(), comm, executor: Box::new(InProcess) }
    }

    /// Launch jobs through `executor` (default: [`InProcess`]).
    pub fn executor(mut self, executor: Box<dyn Executor>) -> Self {
        self.executor = executor;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn comm(&self) -> &'c dyn Communicator {
        self.comm
    }

    pub fn get_executor(&self) -> &dyn Executor {
        self.executor.as_ref()
    }

    /// Directory of a completed job.
    pub fn dir(&self, job: &JobRef) -> PathBuf {
        self.root.join(&job.kind).join(&job.id)
    }

    /// Directory of a job that has not completed.
    pub fn partial_dir(&self, job: &JobRef) -> PathBuf {
        self.root.join(&job.kind).join(format!(".{}.partial", job.id))
    }

    /// Local check (no communication).
    pub fn is_complete(&self, job: &JobRef) -> bool {
        self.dir(job).join(CONFIG_FILE).is_file()
    }

    pub fn status(&self, job: &JobRef) -> Option<Status> {
        if self.is_complete(job) {
            return Some(Status::Complete);
        }
        let p = self.partial_dir(job);
        if !p.is_dir() {
            return None;
        }
        Some(match read_json::<Submission>(&p.join(SUBMISSION_FILE)) {
            Ok(s) => Status::Submitted { job_id: s.job_id },
            Err(_) => Status::Incomplete,
        })
    }

    /// The completed directory of a job this one uses, or an error saying it is missing.
    pub fn require(&self, job: &JobRef) -> Result<PathBuf> {
        if self.is_complete(job) {
            Ok(self.dir(job))
        } else {
            Err(JobError::Missing { kind: job.kind.clone(), id: job.id.clone(), dir: self.dir(job) })
        }
    }

    /// Every job in the store, complete or not, by kind then id.
    pub fn list(&self) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        let kinds = match std::fs::read_dir(&self.root) {
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(JobError::io(&self.root, e)),
        };
        let mut kinds: Vec<_> = kinds.filter_map(|e| e.ok()).filter(|e| e.path().is_dir()).collect();
        kinds.sort_by_key(|e| e.file_name());
        for k in kinds {
            let kind = k.file_name().to_string_lossy().into_owned();
            let mut dirs: Vec<_> =
                std::fs::read_dir(k.path()).map_err(|e| JobError::io(k.path(), e))?.filter_map(|e| e.ok()).collect();
            dirs.sort_by_key(|e| e.file_name());
            for d in dirs {
                let name = d.file_name().to_string_lossy().into_owned();
                let id = match name.strip_prefix('.').and_then(|n| n.strip_suffix(".partial")) {
                    Some(id) => id.to_string(),
                    None if !name.starts_with('.') => name,
                    None => continue,
                };
                let job = JobRef { kind: kind.clone(), id };
                let Some(status) = self.status(&job) else { continue };
                if status != Status::Complete && self.is_complete(&job) {
                    continue;
                }
                let dir = d.path();
                let config = read_json(&dir.join(CONFIG_FILE)).unwrap_or(serde_json::Value::Null);
                out.push(Entry { job, status, dir, config });
            }
        }
        Ok(out)
    }
}

/// An advisory lock on one job of a store (`<root>/<kind>/.<id>.lock`), held by the process that prepares,
/// runs or removes the job. The operating system releases it when the process ends, however it ends, so a
/// crashed build never leaves a job locked. The file names the holder (`pid N on host H`).
#[derive(Debug)]
pub struct JobLock {
    _file: std::fs::File,
    path: PathBuf,
}

impl JobLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl<'c> Store<'c> {
    /// The lock file of a job.
    pub fn lock_path(&self, job: &JobRef) -> PathBuf {
        self.root.join(&job.kind).join(format!(".{}.lock", job.id))
    }

    fn open_lock(&self, job: &JobRef) -> Result<std::fs::File> {
        let path = self.lock_path(job);
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).map_err(|e| JobError::io(d, e))?;
        }
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| JobError::io(&path, e))
    }

    fn locked(&self, job: &JobRef, file: std::fs::File) -> Result<JobLock> {
        use std::io::{Seek, Write};
        let path = self.lock_path(job);
        let mut f = file;
        let holder = format!("pid {} on host {}\n", std::process::id(), miv_partition::comm::hostname());
        f.set_len(0)
            .and_then(|_| f.seek(std::io::SeekFrom::Start(0)))
            .and_then(|_| f.write_all(holder.as_bytes()))
            .and_then(|_| f.flush())
            .map_err(|e| JobError::io(&path, e))?;
        Ok(JobLock { _file: f, path })
    }

    /// Who holds a job's lock, as its lock file says (`pid N on host H`).
    pub fn lock_holder(&self, job: &JobRef) -> String {
        std::fs::read_to_string(self.lock_path(job))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "another process".into())
    }

    /// Take a job's lock now, or say who holds it (`Err(JobError::InUse)`).
    pub fn try_lock(&self, job: &JobRef) -> Result<JobLock> {
        let f = self.open_lock(job)?;
        match flock(&f, libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => self.locked(job, f),
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => {
                Err(JobError::InUse { job: job.to_string(), holder: self.lock_holder(job) })
            }
            Err(e) => Err(JobError::io(self.lock_path(job), e)),
        }
    }

    /// Take a job's lock, waiting (with a log line naming the holder) while another process holds it.
    pub fn lock(&self, job: &JobRef) -> Result<JobLock> {
        match self.try_lock(job) {
            Err(JobError::InUse { holder, .. }) => {
                tracing::warn!("{job}: in use by {holder}; waiting for it to finish");
                let f = self.open_lock(job)?;
                flock(&f, libc::LOCK_EX).map_err(|e| JobError::io(self.lock_path(job), e))?;
                self.locked(job, f)
            }
            other => other,
        }
    }

    /// Remove a job (complete or not) from the store; an error naming the holder when it is in use.
    pub fn remove(&self, job: &JobRef) -> Result<()> {
        let _lock = self.try_lock(job)?;
        for d in [self.dir(job), self.partial_dir(job)] {
            if d.exists() {
                std::fs::remove_dir_all(&d).map_err(|e| JobError::io(&d, e))?;
            }
        }
        Ok(())
    }
}

/// `flock(2)` on an open file (advisory, per open file description, released when the process ends).
fn flock(f: &std::fs::File, op: libc::c_int) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    loop {
        // SAFETY: a valid open file descriptor, borrowed for the call.
        if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| JobError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| JobError::io(path, e))
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| JobError::io(path, e))?;
    miv_io::atomic::write_atomic(path, text + "\n").map_err(|e| JobError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_depends_on_kind_and_config_only() {
        let a = identity("h5_types", r#"{"a":1}"#);
        assert_eq!(a.len(), 20);
        assert_eq!(a, identity("h5_types", r#"{"a":1}"#));
        assert_ne!(a, identity("h5_types", r#"{"a":2}"#));
        assert_ne!(a, identity("architecture", r#"{"a":1}"#));
        // SHA-256("abc") starts ba7816bf8f01cfea4141 (FIPS 180-2 example); our input is kind + "\n" + json.
        let mut h = Sha256::new();
        h.update(b"abc");
        assert_eq!(format!("{:x}", h.finalize())[..20], *"ba7816bf8f01cfea4141");
    }
}
