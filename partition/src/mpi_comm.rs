//! `Communicator` over MPI (rsmpi), for runs under `mpirun`/`srun`.

use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::raw::AsRaw;
use mpi::topology::{Communicator as _, SimpleCommunicator};
use mpi::traits::*;
use mpi::Count;

use crate::comm::Communicator;

/// MPI_COMM_WORLD of an initialised MPI environment. Dropping it finalises MPI when it was this
/// communicator that initialised it ([`MpiComm::init`]), never when it joined an MPI started by someone
/// else ([`MpiComm::attach`], e.g. mpi4py in the same Python process).
pub struct MpiComm {
    world: SimpleCommunicator,
    // Declared after `world` so that it is dropped (MPI_Finalize) last.
    _universe: Option<Universe>,
}

// SAFETY: MPI is initialised with MPI_THREAD_FUNNELED and miv makes every MPI call from the thread that
// created the communicator (rayon workers only compute). The handle itself is an integer/pointer that MPI
// allows to be read from any thread.
unsafe impl Send for MpiComm {}
unsafe impl Sync for MpiComm {}

impl MpiComm {
    /// Initialise MPI. Returns `None` if MPI was already initialised in this process.
    pub fn init() -> Option<MpiComm> {
        let (universe, _threading) = mpi::initialize_with_threading(mpi::Threading::Funneled)?;
        let world = universe.world();
        Some(MpiComm { world, _universe: Some(universe) })
    }

    /// MPI_COMM_WORLD of an MPI that another library of this process initialised (mpi4py): `None` when MPI
    /// is not initialised or already finalised. Dropping the result leaves MPI running.
    pub fn attach() -> Option<MpiComm> {
        if !mpi::environment::is_initialized() || mpi::environment::is_finalized() {
            return None;
        }
        Some(MpiComm { world: SimpleCommunicator::world(), _universe: None })
    }

    /// Whether this communicator initialised MPI (and finalises it when dropped).
    pub fn owns_mpi(&self) -> bool {
        self._universe.is_some()
    }

    fn counts_displs(counts_bytes: &[Count]) -> Vec<Count> {
        let mut displs = Vec::with_capacity(counts_bytes.len());
        let mut acc: Count = 0;
        for &c in counts_bytes {
            displs.push(acc);
            acc = acc.checked_add(c).expect("collective message larger than 2 GiB");
        }
        displs
    }
}

/// Open MPI defines `MPI_IN_PLACE` as `(void*)1`, which is exactly the dangling pointer of an empty `&[u8]`.
/// Empty buffers are therefore passed as zero-length views of a real allocation, never as `&[]`.
static PAD: [u8; 1] = [0];

fn send_view(b: &[u8]) -> &[u8] {
    if b.is_empty() {
        &PAD[..0]
    } else {
        b
    }
}

/// A receive buffer of `total` bytes whose pointer is a real allocation even when `total` is 0.
fn recv_buffer(total: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(total.max(1));
    v.resize(total, 0);
    v
}

fn to_count(n: usize) -> Count {
    Count::try_from(n).expect("collective message of more than 2^31 bytes or records")
}

impl Communicator for MpiComm {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }
    fn size(&self) -> usize {
        self.world.size() as usize
    }
    fn host(&self) -> String {
        mpi::environment::processor_name().unwrap_or_else(|_| crate::comm::hostname())
    }
    fn transport(&self) -> String {
        let v = mpi::environment::library_version().unwrap_or_else(|_| "MPI (unknown library)".to_string());
        v.lines().next().unwrap_or("MPI").split(',').next().unwrap_or("MPI").trim().to_string()
    }
    fn barrier(&self) {
        self.world.barrier();
    }
    fn broadcast_bytes(&self, root: usize, buf: &mut Vec<u8>) {
        let root_p = self.world.process_at_rank(root as i32);
        let mut len = buf.len() as u64;
        root_p.broadcast_into(&mut len);
        if self.rank() != root {
            buf.clear();
            buf.resize(len as usize, 0);
        }
        if len > 0 {
            root_p.broadcast_into(&mut buf[..]);
        }
    }
    fn allgatherv_bytes(&self, local: &[u8]) -> (Vec<u8>, Vec<usize>) {
        let n = self.size();
        let mine = to_count(local.len());
        let mut counts: Vec<Count> = vec![0; n];
        self.world.all_gather_into(&mine, &mut counts[..]);
        let displs = Self::counts_displs(&counts);
        let total: usize = counts.iter().map(|&c| c as usize).sum();
        let mut out = recv_buffer(total);
        {
            let mut part = PartitionMut::new(&mut out[..], &counts[..], &displs[..]);
            self.world.all_gather_varcount_into(send_view(local), &mut part);
        }
        (out, counts.into_iter().map(|c| c as usize).collect())
    }
    fn alltoall_counts(&self, send: &[u64]) -> Vec<u64> {
        assert_eq!(send.len(), self.size(), "alltoall needs one count per rank");
        let mut recv = vec![0u64; self.size()];
        self.world.all_to_all_into(send, &mut recv[..]);
        recv
    }
    fn alltoallv_raw(
        &self,
        elem: usize,
        send: &[u8],
        send_counts: &[usize],
        send_displs: &[usize],
        recv: &mut [u8],
        recv_counts: &[usize],
        recv_displs: &[usize],
    ) {
        let counts = |v: &[usize]| -> Vec<Count> { v.iter().map(|&x| to_count(x)).collect() };
        let (sc, sd, rc, rd) = (counts(send_counts), counts(send_displs), counts(recv_counts), counts(recv_displs));
        let send_ptr = send_view(send).as_ptr();
        let recv_ptr = if recv.is_empty() { PAD.as_ptr() as *mut u8 } else { recv.as_mut_ptr() };
        // SAFETY: the typed wrapper checked every region against the buffer lengths; the datatype is
        // created, used and freed here; empty buffers are real (never MPI_IN_PLACE) pointers that MPI does
        // not write through because their counts are 0.
        unsafe {
            let mut record = std::mem::MaybeUninit::<mpi::ffi::MPI_Datatype>::uninit();
            mpi::ffi::MPI_Type_contiguous(to_count(elem), mpi::ffi::RSMPI_UINT8_T, record.as_mut_ptr());
            let mut record = record.assume_init();
            mpi::ffi::MPI_Type_commit(&mut record);
            mpi::ffi::MPI_Alltoallv(
                send_ptr as *const std::ffi::c_void,
                sc.as_ptr(),
                sd.as_ptr(),
                record,
                recv_ptr as *mut std::ffi::c_void,
                rc.as_ptr(),
                rd.as_ptr(),
                record,
                self.world.as_raw(),
            );
            mpi::ffi::MPI_Type_free(&mut record);
        }
    }
    fn gatherv_bytes(&self, root: usize, local: &[u8]) -> Option<(Vec<u8>, Vec<usize>)> {
        let n = self.size();
        let root_p = self.world.process_at_rank(root as i32);
        let mine = to_count(local.len());
        if self.rank() == root {
            let mut counts: Vec<Count> = vec![0; n];
            root_p.gather_into_root(&mine, &mut counts[..]);
            let displs = Self::counts_displs(&counts);
            let total: usize = counts.iter().map(|&c| c as usize).sum();
            let mut out = recv_buffer(total);
            {
                let mut part = PartitionMut::new(&mut out[..], &counts[..], &displs[..]);
                root_p.gather_varcount_into_root(send_view(local), &mut part);
            }
            Some((out, counts.into_iter().map(|c| c as usize).collect()))
        } else {
            root_p.gather_into(&mine);
            root_p.gather_varcount_into(send_view(local));
            None
        }
    }
    fn allreduce_sum_f64(&self, values: &mut [f64]) {
        let local = values.to_vec();
        self.world.all_reduce_into(&local[..], values, SystemOperation::sum());
    }
    fn allreduce_min_f64(&self, values: &mut [f64]) {
        let local = values.to_vec();
        self.world.all_reduce_into(&local[..], values, SystemOperation::min());
    }
    fn allreduce_sum_u64(&self, values: &mut [u64]) {
        let local = values.to_vec();
        self.world.all_reduce_into(&local[..], values, SystemOperation::sum());
    }
    fn abort(&self, message: &str, code: i32) -> ! {
        eprintln!("[rank {}] error: {message}", self.rank());
        use std::io::Write;
        let _ = std::io::stderr().flush();
        let _ = std::io::stdout().flush();
        self.world.abort(if code == 0 { 1 } else { code })
    }
    fn raw_mpi(&self) -> Option<mpi::ffi::MPI_Comm> {
        Some(self.world.as_raw())
    }
}
