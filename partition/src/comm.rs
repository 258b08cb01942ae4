//! The communicator abstraction: the few collective operations miv needs, over MPI or over one process.
//!
//! Engine and io code talk to `dyn Communicator` only, so the same code runs in a plain process
//! (`SerialComm`) and under `mpirun` (`MpiComm`). The primitives move bytes; the typed helpers on
//! `dyn Communicator` move slices of plain records (`bytemuck::Pod`).

use bytemuck::Pod;

/// Collective operations over a group of ranks. Every method except `rank`, `size`, `host` and `abort`
/// is collective: all ranks must call it in the same order.
pub trait Communicator: Send + Sync {
    fn rank(&self) -> usize;
    fn size(&self) -> usize;
    /// Host name of this rank's node.
    fn host(&self) -> String;
    /// A short description of the transport, e.g. "serial" or the MPI library version string.
    fn transport(&self) -> String;
    fn barrier(&self);
    /// Replace `buf` on every rank with root's `buf`.
    fn broadcast_bytes(&self, root: usize, buf: &mut Vec<u8>);
    /// Every rank gets every rank's bytes, concatenated in rank order, plus each rank's byte count.
    fn allgatherv_bytes(&self, local: &[u8]) -> (Vec<u8>, Vec<usize>);
    /// One count to each rank (`send[r]` to rank r); returns the count each rank sent to this one.
    fn alltoall_counts(&self, send: &[u64]) -> Vec<u64>;
    /// Personalised all-to-all of records of `elem` bytes between the caller's buffers, without copies of
    /// its own: the `send_counts[r]` records at record offset `send_displs[r]` of `send` go to rank r, and
    /// the records rank r sends here land at record offset `recv_displs[r]` of `recv` (`recv_counts[r]` of
    /// them, agreed beforehand, e.g. with `alltoall_counts`). Use the typed `alltoallv_into`.
    #[allow(clippy::too_many_arguments)]
    fn alltoallv_raw(
        &self,
        elem: usize,
        send: &[u8],
        send_counts: &[usize],
        send_displs: &[usize],
        recv: &mut [u8],
        recv_counts: &[usize],
        recv_displs: &[usize],
    );
    /// Root gets every rank's bytes (concatenated, with counts); other ranks get `None`.
    fn gatherv_bytes(&self, root: usize, local: &[u8]) -> Option<(Vec<u8>, Vec<usize>)>;
    /// Element-wise sum of `values` over all ranks, result on every rank.
    fn allreduce_sum_f64(&self, values: &mut [f64]);
    /// Element-wise minimum over all ranks, result on every rank.
    fn allreduce_min_f64(&self, values: &mut [f64]);
    /// Element-wise sum of `values` over all ranks, result on every rank.
    fn allreduce_sum_u64(&self, values: &mut [u64]);
    /// Print `message` (prefixed with the rank) to stderr and terminate every rank of the job.
    fn abort(&self, message: &str, code: i32) -> !;
    /// The raw MPI communicator, for MPI-IO. `None` for the serial communicator.
    #[cfg(feature = "mpi")]
    fn raw_mpi(&self) -> Option<mpi::ffi::MPI_Comm> {
        None
    }
}

impl dyn Communicator + '_ {
    /// Broadcast a slice of records from `root`; every rank returns root's records.
    pub fn broadcast<T: Pod>(&self, root: usize, values: &[T]) -> Vec<T> {
        let mut buf = if self.rank() == root { bytemuck::cast_slice::<T, u8>(values).to_vec() } else { Vec::new() };
        self.broadcast_bytes(root, &mut buf);
        pod_from_bytes(&buf)
    }

    /// Broadcast a value that serialises to bytes (e.g. a config or a message) from `root`.
    pub fn broadcast_string(&self, root: usize, value: &str) -> String {
        let mut buf = if self.rank() == root { value.as_bytes().to_vec() } else { Vec::new() };
        self.broadcast_bytes(root, &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Every rank's records concatenated in rank order, with the count contributed by each rank.
    pub fn allgatherv<T: Pod>(&self, local: &[T]) -> (Vec<T>, Vec<usize>) {
        let (bytes, counts) = self.allgatherv_bytes(bytemuck::cast_slice(local));
        let sz = std::mem::size_of::<T>().max(1);
        (pod_from_bytes(&bytes), counts.into_iter().map(|c| c / sz).collect())
    }

    /// One record from every rank, in rank order.
    pub fn allgather<T: Pod>(&self, local: T) -> Vec<T> {
        self.allgatherv(std::slice::from_ref(&local)).0
    }

    /// Personalised all-to-all of records between the caller's buffers (see `Communicator::alltoallv_raw`;
    /// counts and displacements count records). A rank may move its own records itself and pass 0 for its
    /// own counts.
    pub fn alltoallv_into<T: Pod>(
        &self,
        send: &[T],
        send_counts: &[usize],
        send_displs: &[usize],
        recv: &mut [T],
        recv_counts: &[usize],
        recv_displs: &[usize],
    ) {
        let elem = std::mem::size_of::<T>();
        if elem > 0 {
            self.alltoallv_into_bytes(
                elem,
                bytemuck::cast_slice(send),
                send_counts,
                send_displs,
                bytemuck::cast_slice_mut(recv),
                recv_counts,
                recv_displs,
            );
        }
    }

    /// `alltoallv_into` for records of `elem` bytes held in byte buffers (e.g. a column whose type is known
    /// at run time).
    #[allow(clippy::too_many_arguments)]
    pub fn alltoallv_into_bytes(
        &self,
        elem: usize,
        send: &[u8],
        send_counts: &[usize],
        send_displs: &[usize],
        recv: &mut [u8],
        recv_counts: &[usize],
        recv_displs: &[usize],
    ) {
        let n = self.size();
        assert!(elem > 0, "alltoallv of empty records");
        assert!(
            [send_counts.len(), send_displs.len(), recv_counts.len(), recv_displs.len()].iter().all(|&l| l == n),
            "alltoallv needs one count and one displacement per rank"
        );
        for r in 0..n {
            assert!(
                (send_displs[r] + send_counts[r]) * elem <= send.len(),
                "alltoallv: records for rank {r} lie outside the send buffer"
            );
            assert!(
                (recv_displs[r] + recv_counts[r]) * elem <= recv.len(),
                "alltoallv: records from rank {r} lie outside the receive buffer"
            );
        }
        self.alltoallv_raw(elem, send, send_counts, send_displs, recv, recv_counts, recv_displs);
    }

    /// Send records grouped by destination rank (`counts[r]` records for rank r, ranks in order); returns
    /// the records received, grouped by source rank in rank order, and the number from each rank. The
    /// result is allocated once, straight from the transfer (huge pages when large).
    pub fn exchange<T: Pod>(&self, send: &[T], counts: &[usize]) -> (Vec<T>, Vec<usize>) {
        assert_eq!(counts.len(), self.size(), "exchange needs one count per rank");
        assert_eq!(counts.iter().sum::<usize>(), send.len(), "exchange: counts do not add up to the records given");
        let recv_counts: Vec<usize> = self
            .alltoall_counts(&counts.iter().map(|&c| c as u64).collect::<Vec<_>>())
            .into_iter()
            .map(|c| c as usize)
            .collect();
        let mut recv = crate::buffer::zeroed::<T>(recv_counts.iter().sum());
        self.alltoallv_into(
            send,
            counts,
            &displacements(counts),
            &mut recv,
            &recv_counts,
            &displacements(&recv_counts),
        );
        (recv, recv_counts)
    }

    /// Personalised all-to-all of records: `sends[r]` goes to rank r; returns the records received from
    /// each rank. Convenient for small messages; large ones should use `exchange` or `alltoallv_into`.
    pub fn alltoallv<T: Pod>(&self, sends: &[Vec<T>]) -> Vec<Vec<T>> {
        let counts: Vec<usize> = sends.iter().map(|v| v.len()).collect();
        let (all, recv_counts) = self.exchange(&sends.concat(), &counts);
        let mut at = 0;
        recv_counts
            .iter()
            .map(|&c| {
                at += c;
                all[at - c..at].to_vec()
            })
            .collect()
    }

    /// Root receives every rank's records in rank order with per-rank counts; others get `None`.
    pub fn gatherv<T: Pod>(&self, root: usize, local: &[T]) -> Option<(Vec<T>, Vec<usize>)> {
        let sz = std::mem::size_of::<T>().max(1);
        self.gatherv_bytes(root, bytemuck::cast_slice(local))
            .map(|(bytes, counts)| (pod_from_bytes(&bytes), counts.into_iter().map(|c| c / sz).collect()))
    }

    /// Root receives one string per rank, in rank order.
    pub fn gather_strings(&self, root: usize, local: &str) -> Option<Vec<String>> {
        self.gatherv_bytes(root, local.as_bytes()).map(|(bytes, counts)| split_by_counts(&bytes, &counts))
    }

    /// Every rank receives one string per rank, in rank order.
    pub fn allgather_strings(&self, local: &str) -> Vec<String> {
        let (bytes, counts) = self.allgatherv_bytes(local.as_bytes());
        split_by_counts(&bytes, &counts)
    }

    pub fn allreduce_sum(&self, value: f64) -> f64 {
        let mut v = [value];
        self.allreduce_sum_f64(&mut v);
        v[0]
    }

    pub fn allreduce_min(&self, value: f64) -> f64 {
        let mut v = [value];
        self.allreduce_min_f64(&mut v);
        v[0]
    }

    pub fn allreduce_max(&self, value: f64) -> f64 {
        -self.allreduce_min(-value)
    }

    /// Collective agreement on success. Each rank passes its local outcome; if any rank failed, every rank
    /// returns `Err(CollectiveError)` carrying the lowest failing rank's message, so all ranks can stop
    /// together without hanging and rank 0 can print one message.
    pub fn agree<E: std::fmt::Display>(&self, local: Result<(), E>) -> Result<(), CollectiveError> {
        let msg = match &local {
            Ok(()) => String::new(),
            Err(e) => {
                let s = e.to_string();
                if s.is_empty() {
                    "unspecified error".to_string()
                } else {
                    s
                }
            }
        };
        let all = self.allgather_strings(&msg);
        let failing: Vec<usize> = all.iter().enumerate().filter(|(_, m)| !m.is_empty()).map(|(r, _)| r).collect();
        match failing.first() {
            None => Ok(()),
            Some(&first) => Err(CollectiveError {
                rank: first,
                failed_ranks: failing.len(),
                ranks: all.len(),
                message: all[first].clone(),
            }),
        }
    }

    /// [`agree`](Self::agree) for an outcome that carries a value: every rank gets its value back when all
    /// succeeded, and otherwise the same [`CollectiveError`]. The one way the crates make a local result
    /// collective before the next collective call.
    pub fn agreed<T, E: std::fmt::Display>(&self, local: Result<T, E>) -> Result<T, CollectiveError> {
        match local {
            Ok(v) => self.agree(Ok::<(), E>(())).map(|()| v),
            Err(e) => Err(self.agree(Err(e)).expect_err("a failing rank fails the agreement")),
        }
    }
}

/// An error that every rank knows about (agreed through `Communicator::agree`): all ranks return it and
/// only the root needs to report it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}{}", where_(.rank, .failed_ranks, .ranks))]
pub struct CollectiveError {
    /// Lowest rank that failed.
    pub rank: usize,
    /// Number of ranks that failed.
    pub failed_ranks: usize,
    /// Number of ranks in the communicator.
    pub ranks: usize,
    pub message: String,
}

fn where_(rank: &usize, failed: &usize, ranks: &usize) -> String {
    match (*failed, *ranks) {
        (_, 1) => String::new(),
        (f, n) if f == n => format!(" (on all {n} ranks)"),
        (1, _) => format!(" (rank {rank})"),
        (f, _) => format!(" (rank {rank} and {} other rank(s))", f - 1),
    }
}

fn split_by_counts(bytes: &[u8], counts: &[usize]) -> Vec<String> {
    let mut out = Vec::with_capacity(counts.len());
    let mut off = 0;
    for &c in counts {
        out.push(String::from_utf8_lossy(&bytes[off..off + c]).into_owned());
        off += c;
    }
    out
}

/// Exclusive prefix sums of `counts`: where each rank's records start in a buffer grouped by rank.
pub fn displacements(counts: &[usize]) -> Vec<usize> {
    let mut at = 0;
    counts
        .iter()
        .map(|&c| {
            at += c;
            at - c
        })
        .collect()
}

/// Copy bytes into a properly aligned vector of records.
pub(crate) fn pod_from_bytes<T: Pod>(bytes: &[u8]) -> Vec<T> {
    let sz = std::mem::size_of::<T>();
    if sz == 0 {
        return Vec::new();
    }
    let n = bytes.len() / sz;
    let mut out: Vec<T> = vec![T::zeroed(); n];
    bytemuck::cast_slice_mut::<T, u8>(&mut out).copy_from_slice(&bytes[..n * sz]);
    out
}

/// One process, no MPI: rank 0 of 1. Every collective is the identity.
#[derive(Debug, Default, Clone, Copy)]
pub struct SerialComm;

impl Communicator for SerialComm {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn host(&self) -> String {
        hostname()
    }
    fn transport(&self) -> String {
        "serial (no MPI)".to_string()
    }
    fn barrier(&self) {}
    fn broadcast_bytes(&self, _root: usize, _buf: &mut Vec<u8>) {}
    fn allgatherv_bytes(&self, local: &[u8]) -> (Vec<u8>, Vec<usize>) {
        (local.to_vec(), vec![local.len()])
    }
    fn alltoall_counts(&self, send: &[u64]) -> Vec<u64> {
        assert_eq!(send.len(), 1, "alltoall on one rank needs exactly one count");
        send.to_vec()
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
        assert_eq!(send_counts, recv_counts, "alltoallv on one rank sends to itself what it receives");
        let (s, r, n) = (send_displs[0] * elem, recv_displs[0] * elem, send_counts[0] * elem);
        recv[r..r + n].copy_from_slice(&send[s..s + n]);
    }
    fn gatherv_bytes(&self, _root: usize, local: &[u8]) -> Option<(Vec<u8>, Vec<usize>)> {
        Some((local.to_vec(), vec![local.len()]))
    }
    fn allreduce_sum_f64(&self, _values: &mut [f64]) {}
    fn allreduce_min_f64(&self, _values: &mut [f64]) {}
    fn allreduce_sum_u64(&self, _values: &mut [u64]) {}
    fn abort(&self, message: &str, code: i32) -> ! {
        eprintln!("[rank 0] error: {message}");
        std::process::exit(if code == 0 { 1 } else { code })
    }
}

/// The machine's host name (from the kernel), or "unknown".
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_collectives_are_identity() {
        let c: &dyn Communicator = &SerialComm;
        assert_eq!(c.broadcast(0, &[1u32, 2, 3]), vec![1, 2, 3]);
        let (all, counts) = c.allgatherv(&[1.5f64, 2.5]);
        assert_eq!(all, vec![1.5, 2.5]);
        assert_eq!(counts, vec![2]);
        assert_eq!(c.gather_strings(0, "hi").unwrap(), vec!["hi".to_string()]);
        assert_eq!(c.allreduce_sum(2.0), 2.0);
        assert_eq!(c.allreduce_max(-3.0), -3.0);
    }

    #[test]
    fn agree_reports_the_failure() {
        let c: &dyn Communicator = &SerialComm;
        assert!(c.agree::<String>(Ok(())).is_ok());
        let e = c.agree::<String>(Err("bad thing in x.h5".into())).unwrap_err();
        assert_eq!(e.rank, 0);
        assert_eq!(e.message, "bad thing in x.h5");
        assert_eq!(e.to_string(), "bad thing in x.h5");
        let many = CollectiveError { rank: 1, failed_ranks: 2, ranks: 4, message: "m".into() };
        assert_eq!(many.to_string(), "m (rank 1 and 1 other rank(s))");
        let all = CollectiveError { rank: 0, failed_ranks: 4, ranks: 4, message: "m".into() };
        assert_eq!(all.to_string(), "m (on all 4 ranks)");
    }

    #[test]
    fn agreed_keeps_the_value_or_agrees_on_the_failure() {
        let c: &dyn Communicator = &SerialComm;
        assert_eq!(c.agreed::<_, String>(Ok(7)).unwrap(), 7);
        let e = c.agreed::<u8, _>(Err("no file")).unwrap_err();
        assert_eq!((e.rank, e.message.as_str()), (0, "no file"));
    }

    #[test]
    fn pod_roundtrip_through_bytes() {
        #[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        #[repr(C)]
        struct Spike {
            t: f64,
            gid: u64,
        }
        let c: &dyn Communicator = &SerialComm;
        let s = [Spike { t: 1.25, gid: 7 }, Spike { t: 3.0, gid: 1 }];
        assert_eq!(c.allgatherv(&s).0, s.to_vec());
    }
}
