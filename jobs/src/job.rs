//! Jobs: typed, content-addressed units of construction work, launched into a [`Store`].
//!
//! A job's identity hashes its science configuration and the identities of the jobs it uses; I/O tuning
//! (chunk sizes, write batch sizes) is left out, as MiV's `compute_context` leaves it out, so retuning I/O
//! reuses cached outputs. `launch()` runs a job once: a second call with the same configuration returns the
//! stored result without doing any work.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{JobError, Result};
use crate::executor::{broadcast_opt_string, Dispatch};
use crate::store::{identity, read_json, write_json, JobRef, Status, Store, CONFIG_FILE, META_FILE, SUBMISSION_FILE};
use miv_partition::Communicator;

/// A construction job. Implementors are plain configuration structs; `run` is collective over the ranks of
/// the context's communicator and writes the job's outputs into the context's directory.
pub trait Job: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// The job type, also the store sub-directory (`h5_types`, `network_architecture`, ...).
    const KIND: &'static str;
    /// The same job with I/O tuning reset: what the identity hashes. The default keeps everything.
    fn science(&self) -> Self {
        self.clone()
    }
    /// The jobs whose outputs this one reads.
    fn uses(&self) -> Vec<JobRef>;
    /// Do the work. Every rank calls it; errors should be agreed (`ctx.agree`) before collectives so no rank
    /// waits for one that failed.
    fn run(&self, ctx: &RunContext) -> Result<()>;
}

/// The identity of a job.
pub fn job_id<J: Job>(job: &J) -> String {
    let canonical = serde_json::to_string(&job.science()).expect("job configurations serialise to JSON");
    identity(J::KIND, &canonical)
}

pub fn job_ref<J: Job>(job: &J) -> JobRef {
    JobRef { kind: J::KIND.to_string(), id: job_id(job) }
}

static RUNS: AtomicUsize = AtomicUsize::new(0);

/// How many job bodies this process has run (a test hook: a cached launch runs none).
pub fn runs_in_this_process() -> usize {
    RUNS.load(Ordering::SeqCst)
}

/// What a running job sees: its ranks, its output directory and the store (to find the jobs it uses).
pub struct RunContext<'a> {
    pub comm: &'a dyn Communicator,
    /// Where the job writes its outputs (renamed into place when the job completes).
    pub dir: PathBuf,
    pub store: &'a Store<'a>,
    kind: &'static str,
    /// Numbers the job reports (`meta.json` `stats`): counts and per-phase seconds.
    stats: std::cell::RefCell<serde_json::Map<String, serde_json::Value>>,
}

impl RunContext<'_> {
    /// The completed directory of a job this one uses.
    pub fn input(&self, job: &JobRef) -> Result<PathBuf> {
        self.store.require(job)
    }

    pub fn output(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Collective: every rank learns whether any rank failed (the lowest failing rank's message).
    pub fn agree<T>(&self, local: Result<T>) -> Result<T> {
        Ok(self.comm.agreed(local)?)
    }

    /// Fault injection for tests: fails when `MIV_JOBS_FAIL` names this job kind or `kind:stage`.
    pub fn checkpoint(&self, stage: &str) -> Result<()> {
        match std::env::var("MIV_JOBS_FAIL") {
            Ok(v) if v == self.kind || v == format!("{}:{stage}", self.kind) => {
                Err(JobError::Other(format!("{} job: injected failure after {stage} (MIV_JOBS_FAIL={v})", self.kind)))
            }
            _ => Ok(()),
        }
    }

    /// Record a statistic of the run (rank 0's value is kept), e.g. a count or the seconds of a phase.
    pub fn record(&self, key: &str, value: impl Into<serde_json::Value>) {
        self.stats.borrow_mut().insert(key.to_string(), value.into());
    }

    /// Log a progress line (shown on rank 0).
    pub fn progress(&self, message: impl std::fmt::Display) {
        if self.comm.rank() == 0 {
            tracing::info!("{}: {message}", self.kind);
        }
    }
}

/// A launched job: where its outputs are and whether it came from the cache.
#[derive(Debug, Clone)]
pub struct Launched<J> {
    pub job: J,
    pub reference: JobRef,
    /// The completed directory (for a submitted batch job: where it will be).
    pub dir: PathBuf,
    pub status: Status,
    cached: bool,
}

impl<J: Job> Launched<J> {
    /// True when `launch()` found the job complete and did no work.
    pub fn cached(&self) -> bool {
        self.cached
    }

    pub fn is_complete(&self) -> bool {
        self.status == Status::Complete
    }

    pub fn job_ref(&self) -> JobRef {
        self.reference.clone()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// A job's handle without launching it (for planning): its identity and where its outputs would be.
pub fn planned<J: Job>(job: &J) -> Launched<J> {
    let reference = job_ref(job);
    Launched {
        job: job.clone(),
        dir: PathBuf::from(&reference.kind).join(&reference.id),
        reference,
        status: Status::Incomplete,
        cached: false,
    }
}

/// `launch` and `cached` for every job.
pub trait Launch: Job {
    /// Run the job once (collective over the store's communicator) and return its outputs; returns the
    /// stored result when a job with the same identity has completed.
    fn launch(&self, store: &Store) -> Result<Launched<Self>> {
        launch(self, store)
    }

    /// True when the store holds this job completed.
    fn cached(&self, store: &Store) -> bool {
        store.is_complete(&job_ref(self))
    }

    fn id(&self) -> String {
        job_id(self)
    }
}

impl<J: Job> Launch for J {}

fn launch<J: Job>(job: &J, store: &Store) -> Result<Launched<J>> {
    let comm = store.comm();
    let reference = job_ref(job);
    let dir = store.dir(&reference);
    let done = |status: Status, cached: bool| Launched {
        job: job.clone(),
        reference: reference.clone(),
        dir: dir.clone(),
        status,
        cached,
    };

    // Rank 0 holds the job's lock from here until the job is complete or submitted, so a concurrent build of
    // the same job waits for this one (and then finds it cached) instead of removing its partial directory.
    let lock = if comm.rank() == 0 { Some(store.lock(&reference)) } else { None };
    let lock = comm.agreed(lock.transpose())?;
    // Rank 0 decides from the file system; everyone follows.
    let state = if comm.rank() == 0 { store.status(&reference) } else { None };
    let state = broadcast_status(comm, state);
    if state == Some(Status::Complete) {
        tracing::debug!("{reference}: cached");
        return Ok(done(Status::Complete, true));
    }
    let queues = store.get_executor().queues();
    if let (Some(Status::Submitted { job_id }), true) = (&state, queues) {
        return Ok(done(Status::Submitted { job_id: job_id.clone() }, false));
    }

    // Every job used must be complete, or (with a queueing executor) submitted, so this one can wait for it.
    let mut dependencies = Vec::new();
    let local: Result<()> = (|| {
        if comm.rank() != 0 {
            return Ok(());
        }
        for u in job.uses() {
            match store.status(&u) {
                Some(Status::Complete) => {}
                Some(Status::Submitted { job_id }) if queues => {
                    dependencies.push(job_id.unwrap_or_else(|| format!("<{u}>")))
                }
                _ => return Err(JobError::Missing { kind: u.kind.clone(), id: u.id.clone(), dir: store.dir(&u) }),
            }
        }
        prepare_partial(store, &reference, job)
    })();
    comm.agree(local.map_err(|e| e.to_string()))?;

    let result = match store.get_executor().dispatch(store, &reference, &dependencies)? {
        Dispatch::Here => {
            tracing::info!("{reference}: running on {} rank(s)", comm.size());
            run_here(job, store, &reference)?;
            Ok(done(Status::Complete, false))
        }
        Dispatch::Complete => Ok(done(Status::Complete, false)),
        Dispatch::Submitted(job_id) => Ok(done(Status::Submitted { job_id }, false)),
    };
    drop(lock);
    result
}

/// Rank 0: a fresh partial directory holding the job's `config.json`.
fn prepare_partial<J: Job>(store: &Store, reference: &JobRef, job: &J) -> Result<()> {
    let partial = store.partial_dir(reference);
    if partial.exists() {
        tracing::warn!("{reference}: removing the leftovers of an earlier, incomplete run");
        std::fs::remove_dir_all(&partial).map_err(|e| JobError::io(&partial, e))?;
    }
    std::fs::create_dir_all(&partial).map_err(|e| JobError::io(&partial, e))?;
    let config = ConfigFile { kind: J::KIND.to_string(), id: reference.id.clone(), uses: job.uses(), job: job.clone() };
    write_json(&partial.join(CONFIG_FILE), &config)
}

/// Run the job body on the store's communicator into the partial directory, then complete it.
fn run_here<J: Job>(job: &J, store: &Store, reference: &JobRef) -> Result<()> {
    let comm = store.comm();
    let started = Instant::now();
    let ctx = RunContext { comm, dir: store.partial_dir(reference), store, kind: J::KIND, stats: Default::default() };
    RUNS.fetch_add(1, Ordering::SeqCst);
    let result = job.run(&ctx);
    // Whatever happened, every rank learns it here; a failed job keeps its partial directory.
    ctx.agree(result)?;
    comm.barrier();
    let stats = serde_json::Value::Object(ctx.stats.take());
    let local = if comm.rank() == 0 {
        complete(store, reference, comm.size(), started.elapsed().as_secs_f64(), stats)
    } else {
        Ok(())
    };
    ctx.agree(local)?;
    tracing::info!("{reference}: complete in {:.2} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// This process's peak resident memory (MiB, Linux VmHWM) so far: the job's own peak when it ran in a process
/// of its own (`miv jobs exec` under the mpirun or Slurm executor), the build's peak so far when in-process.
fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = s.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Rank 0: record how the job ran and move it into place in one rename.
fn complete(store: &Store, reference: &JobRef, ranks: usize, seconds: f64, stats: serde_json::Value) -> Result<()> {
    let partial = store.partial_dir(reference);
    let meta = serde_json::json!({ "ranks": ranks, "seconds": seconds, "host": miv_partition::comm::hostname(),
        "peak_rss_mib": peak_rss_mib(), "stats": stats });
    write_json(&partial.join(META_FILE), &meta)?;
    let _ = std::fs::remove_file(partial.join(SUBMISSION_FILE));
    let dir = store.dir(reference);
    std::fs::rename(&partial, &dir)
        .map_err(|e| JobError::io(&dir, format!("cannot move the completed job into place: {e}")))
}

fn broadcast_status(comm: &dyn Communicator, s: Option<Status>) -> Option<Status> {
    let code: u8 = match &s {
        None => 0,
        Some(Status::Complete) => 1,
        Some(Status::Incomplete) => 2,
        Some(Status::Submitted { .. }) => 3,
    };
    let code = comm.broadcast(0, &[code])[0];
    let job_id = match &s {
        Some(Status::Submitted { job_id }) => job_id.clone(),
        _ => None,
    };
    let job_id = broadcast_opt_string(comm, job_id);
    match code {
        1 => Some(Status::Complete),
        2 => Some(Status::Incomplete),
        3 => Some(Status::Submitted { job_id }),
        _ => None,
    }
}

/// The child side of the mpirun and Slurm executors (`miv jobs exec`): load the job prepared in the partial
/// directory and run it here, on `comm`. With `lock` (a Slurm batch job, which runs after the build that
/// submitted it has let go of the job) rank 0 holds the job's lock while it runs, waiting for a holder; a job
/// completed meanwhile (say by a local build) is left as it is. Without it (mpirun children) the launching
/// build holds the lock.
pub fn exec_prepared<J: Job>(store: &Store, reference: &JobRef, lock: bool) -> Result<()> {
    let comm = store.comm();
    let held = if lock && comm.rank() == 0 { Some(store.lock(reference)) } else { None };
    let _held = comm.agreed(held.transpose())?;
    let complete = comm.broadcast(0, &[u8::from(comm.rank() == 0 && store.is_complete(reference))])[0] == 1;
    if complete {
        tracing::info!("{reference}: already complete; nothing to run");
        return Ok(());
    }
    let loaded: Result<J> = (|| {
        let config = store.partial_dir(reference).join(CONFIG_FILE);
        if !config.is_file() {
            return Err(JobError::Executor(format!(
                "{reference}: {} is missing: the prepared job was removed (`miv jobs rm` or a build that ran it \
                 elsewhere and failed) before this run started; build again",
                config.display()
            )));
        }
        let job: J = read_json::<ConfigFile<J>>(&config)?.job;
        let id = job_id(&job);
        if id != reference.id {
            return Err(JobError::Executor(format!("{reference}: the prepared configuration has identity {id}")));
        }
        Ok(job)
    })();
    let job = comm.agreed(loaded)?;
    run_here(&job, store, reference)
}

/// Read a job's `config.json` `job` section from a completed directory.
pub fn load_job<J: Job>(dir: &Path) -> Result<J> {
    Ok(read_json::<ConfigFile<J>>(&dir.join(CONFIG_FILE))?.job)
}

/// `config.json`: the job as launched. Read and written as typed JSON (never through `serde_json::Value`,
/// whose maps would sort keys and lose the order of ordered tables such as synapse densities).
#[derive(Serialize, serde::Deserialize)]
#[serde(bound = "J: Job")]
struct ConfigFile<J> {
    kind: String,
    id: String,
    uses: Vec<JobRef>,
    job: J,
}
