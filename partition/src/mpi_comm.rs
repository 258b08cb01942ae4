//! `Communicator` over MPI (rsmpi), for runs under `mpirun`/`srun`.

use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::raw::AsRaw;
use mpi::topology::{Communicator as _, SimpleCommunicator};
use mpi::traits::*;
use mpi::Count;

use crate::comm::Communicator;

/// MPI_COMM_WORLD of an initialised MPI environment. Dropping it finalises MPI.
pub struct MpiComm {
    world: SimpleCommunicator,
    // Declared after `world` so that it is dropped (MPI_Finalize) last.
    _universe: Universe,
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
        Some(MpiComm { world, _universe: universe })
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
    Count::try_from(n).expect("collective message larger than 2 GiB from one rank")
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
    fn alltoallv_bytes(&self, sends: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let n = self.size();
        assert_eq!(sends.len(), n, "alltoallv needs one send buffer per rank");
        let send_counts: Vec<Count> = sends.iter().map(|b| to_count(b.len())).collect();
        let mut recv_counts: Vec<Count> = vec![0; n];
        self.world.all_to_all_into(&send_counts[..], &mut recv_counts[..]);
        let send_displs = Self::counts_displs(&send_counts);
        let recv_displs = Self::counts_displs(&recv_counts);
        let send_buf: Vec<u8> = sends.concat();
        let total: usize = recv_counts.iter().map(|&c| c as usize).sum();
        let mut recv_buf = recv_buffer(total);
        {
            let send_part = mpi::datatype::Partition::new(send_view(&send_buf), &send_counts[..], &send_displs[..]);
            let mut recv_part = PartitionMut::new(&mut recv_buf[..], &recv_counts[..], &recv_displs[..]);
            self.world.all_to_all_varcount_into(&send_part, &mut recv_part);
        }
        let mut out = Vec::with_capacity(n);
        for r in 0..n {
            let a = recv_displs[r] as usize;
            out.push(recv_buf[a..a + recv_counts[r] as usize].to_vec());
        }
        out
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
