//! miv-partition: who computes what.
//!
//! - [`comm`]: the [`Communicator`] trait (rank, size, barrier, broadcast, allgatherv, alltoallv into the
//!   caller's buffers, gather, reductions, collective error agreement, abort) with a serial implementation
//!   and, with feature `mpi`, an MPI one.
//! - [`buffer`]: large buffers backed by huge pages, for data that moves between files and ranks.
//! - [`assign`]: gid → rank [`Assignment`]s, round-robin and weighted (greedy LPT).
//! - [`plan`]: [`ReadPlan`]s telling each rank which gid ranges of a population it reads.
//! - [`rng`]: random [`Stream`]s keyed by (seed, purpose, gid), so results never depend on the rank count.
//! - [`init`]: start the right communicator for this process.

pub mod assign;
pub mod buffer;
pub mod comm;
#[cfg(feature = "mpi")]
pub mod mpi_comm;
pub mod plan;
pub mod rng;

pub use assign::{imbalance, Assignment};
pub use comm::{displacements, CollectiveError, Communicator, SerialComm};
#[cfg(feature = "mpi")]
pub use mpi_comm::MpiComm;
pub use plan::{coalesce, ReadPlan};
pub use rng::{CounterStream, Purpose, Stream};

/// Environment variables through which MPI launchers (Open MPI, MPICH/Hydra, PMIx, Slurm's srun) tell a
/// process that it is one rank of a parallel job.
#[cfg(feature = "mpi")]
const LAUNCHER_VARS: &[&str] = &["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK", "MPI_LOCALNRANKS"];

/// True when this process was started by an MPI launcher.
#[cfg(feature = "mpi")]
fn launched_by_mpi() -> bool {
    LAUNCHER_VARS.iter().any(|v| std::env::var_os(v).is_some())
}

/// The communicator for this process: MPI when built with feature `mpi` and started by a launcher (or when
/// `MIV_FORCE_MPI=1`), otherwise one serial rank. A plain `miv ...` never initialises MPI, so it starts
/// instantly and works on machines where the MPI runtime is absent or misconfigured.
pub fn init() -> Box<dyn Communicator> {
    #[cfg(feature = "mpi")]
    {
        let forced = std::env::var("MIV_FORCE_MPI").map(|v| v == "1").unwrap_or(false);
        if launched_by_mpi() || forced {
            if let Some(c) = MpiComm::init() {
                return Box::new(c);
            }
        }
    }
    Box::new(SerialComm)
}

/// [`init`] for a library loaded into a host process (the Python module): when another library of the
/// process has initialised MPI already (mpi4py), join its MPI_COMM_WORLD and leave finalising to it;
/// otherwise as [`init`]. The flag says whether the communicator initialised MPI itself, in which case
/// MPI is finalised when it is dropped.
pub fn init_or_attach() -> (Box<dyn Communicator>, bool) {
    #[cfg(feature = "mpi")]
    {
        if let Some(c) = MpiComm::attach() {
            return (Box::new(c), false);
        }
        let forced = std::env::var("MIV_FORCE_MPI").map(|v| v == "1").unwrap_or(false);
        if launched_by_mpi() || forced {
            if let Some(c) = MpiComm::init() {
                return (Box::new(c), true);
            }
        }
    }
    (Box::new(SerialComm), false)
}

/// Finalise MPI if it is initialised and not finalised yet (a host process's exit hook, for an MPI that
/// [`init_or_attach`] initialised and whose communicator is never dropped). A no-op without MPI.
pub fn finalize_mpi() {
    #[cfg(feature = "mpi")]
    if mpi::environment::is_initialized() && !mpi::environment::is_finalized() {
        // SAFETY: MPI is initialised and not finalised; every MPI call of miv is made from this thread.
        unsafe {
            mpi::ffi::MPI_Finalize();
        }
    }
}

/// Terminate every rank of the job with `code` (`MPI_Abort` on MPI_COMM_WORLD) when MPI runs with more than
/// one rank; returns otherwise (one process: the caller exits as it likes).
pub fn abort_world(code: i32) {
    #[cfg(feature = "mpi")]
    if mpi::environment::is_initialized() && !mpi::environment::is_finalized() {
        // SAFETY: MPI is initialised and not finalised; MPI_Abort on MPI_COMM_WORLD never returns.
        unsafe {
            let mut size = 1;
            mpi::ffi::MPI_Comm_size(mpi::ffi::RSMPI_COMM_WORLD, &mut size);
            if size > 1 {
                mpi::ffi::MPI_Abort(mpi::ffi::RSMPI_COMM_WORLD, code);
            }
        }
    }
    let _ = code;
}

/// Names of the optional features this build has.
pub fn features() -> Vec<&'static str> {
    let mut f = Vec::new();
    if cfg!(feature = "mpi") {
        f.push("mpi");
    }
    f
}

/// Make a panic on any rank end the whole job: print the panic as usual, then, if MPI is running with more
/// than one rank, call `MPI_Abort` so that the other ranks do not wait forever in their next collective.
pub fn install_panic_abort() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        #[cfg(feature = "mpi")]
        if mpi::environment::is_initialized() && !mpi::environment::is_finalized() {
            // SAFETY: MPI is initialised and not finalised; MPI_Abort on MPI_COMM_WORLD never returns.
            unsafe {
                let mut size = 1;
                mpi::ffi::MPI_Comm_size(mpi::ffi::RSMPI_COMM_WORLD, &mut size);
                if size > 1 {
                    mpi::ffi::MPI_Abort(mpi::ffi::RSMPI_COMM_WORLD, 101);
                }
            }
        }
    }));
}
