//! Moving compressed-row data between ranks: a row is a gid with a run of values in every column (a cell
//! with its values of one attribute, or a destination with its edges' source index and edge attributes).
//! Used by the writers (rows to the writer of their gid block) and by I/O-rank reads (rows to their owner).
//!
//! Rows go to the rank `owner(gid)` names. One small exchange moves each row's gid and run length; then
//! every column moves on its own, straight into the receivers' final arrays: the rows leaving a rank are
//! packed once, the rows staying are copied once into place, and what arrives is written by the transfer
//! itself. Buffers are backed by huge pages, so page faults do not dominate the copies. Received rows come
//! in source-rank order, each rank's rows in the order it held them.

use std::borrow::Cow;

use miv_partition::{displacements, Communicator};

use crate::dataset::huge_pages;
use crate::dtype::Values;

/// The plan of one exchange of rows, made collectively from the rows' gids and pointers.
pub(crate) struct RowExchange {
    me: usize,
    /// Local rows leaving, grouped by destination rank (ascending), in local order within a rank.
    leaving: Vec<usize>,
    /// Local rows staying on this rank, in local order.
    staying: Vec<usize>,
    /// Values sent to / received from each rank (0 for this rank, whose rows are copied locally).
    send_counts: Vec<usize>,
    recv_counts: Vec<usize>,
    /// Where each rank's values start in a received column (this rank's own slot included).
    recv_displs: Vec<usize>,
    /// Values in a received column.
    total: usize,
    /// The packing buffer, reused by every column.
    send: Vec<u8>,
    /// The received rows: gids, and the pointer into every received column.
    pub gids: Vec<u64>,
    pub ptr: Vec<u64>,
}

impl RowExchange {
    /// Plan sending row i (`gids[i]`, values `ptr[i]..ptr[i+1]` of every column) to `owner(gids[i])`
    /// (collective).
    pub fn new(comm: &dyn Communicator, gids: &[u64], ptr: &[u64], owner: impl Fn(u64) -> usize) -> RowExchange {
        let (n, me) = (comm.size(), comm.rank());
        let dest: Vec<usize> = gids.iter().map(|&g| owner(g)).collect();
        let mut rows_to = vec![0usize; n];
        for &d in &dest {
            rows_to[d] += 1;
        }
        let mut at = displacements(&rows_to);
        let mut order = vec![0usize; gids.len()];
        for (i, &d) in dest.iter().enumerate() {
            order[at[d]] = i;
            at[d] += 1;
        }
        let len = |i: usize| ptr[i + 1] - ptr[i];
        let header: Vec<[u64; 2]> = order.iter().map(|&i| [gids[i], len(i)]).collect();
        let (received, rows_from) = comm.exchange(&header, &rows_to);
        drop(header);

        let mut send_counts = vec![0usize; n];
        for (i, &d) in dest.iter().enumerate() {
            send_counts[d] += len(i) as usize;
        }
        let mut recv_counts = vec![0usize; n];
        let mut k = 0;
        for (r, &rows) in rows_from.iter().enumerate() {
            recv_counts[r] = received[k..k + rows].iter().map(|h| h[1] as usize).sum();
            k += rows;
        }
        let recv_displs = displacements(&recv_counts);
        let total = recv_counts.iter().sum();
        let own = rows_to[me];
        let own_start = displacements(&rows_to)[me];
        let staying = order[own_start..own_start + own].to_vec();
        let mut leaving = order;
        leaving.drain(own_start..own_start + own);
        send_counts[me] = 0;
        recv_counts[me] = 0;

        let mut p = Vec::with_capacity(received.len() + 1);
        p.push(0u64);
        let mut sum = 0u64;
        for h in &received {
            sum += h[1];
            p.push(sum);
        }
        RowExchange {
            me,
            leaving,
            staying,
            send_counts,
            recv_counts,
            recv_displs,
            total,
            send: Vec::new(),
            gids: received.iter().map(|h| h[0]).collect(),
            ptr: p,
        }
    }

    /// Send one column (values indexed by the `ptr` the plan was made with); returns the received column,
    /// laid out by the plan's `ptr` (collective: every rank exchanges the same columns in the same order).
    /// A rank that keeps all its rows and receives none gets its column back untouched.
    pub fn column(&mut self, comm: &dyn Communicator, ptr: &[u64], column: Cow<Values>) -> Values {
        let size = column.dtype().size();
        let keeps_all = self.leaving.is_empty()
            && self.recv_counts.iter().all(|&c| c == 0)
            && ptr.first().is_none_or(|&p| p == 0)
            && self.total == column.len();
        if keeps_all {
            if comm.size() > 1 {
                comm.alltoallv_into_bytes(
                    size,
                    &[],
                    &self.send_counts,
                    &self.send_counts,
                    &mut [],
                    &self.recv_counts,
                    &self.recv_counts,
                );
            }
            return column.into_owned();
        }
        let src = column.as_bytes();
        let mut out = Values::zeros(column.dtype(), self.total);
        huge_pages(out.as_bytes_mut());
        let dst = out.as_bytes_mut();
        copy_rows(src, ptr, size, &self.staying, &mut dst[self.recv_displs[self.me] * size..]);
        let send_len = self.send_counts.iter().sum::<usize>() * size;
        if self.send.len() < send_len {
            self.send = miv_partition::buffer::zeroed(send_len);
        }
        copy_rows(src, ptr, size, &self.leaving, &mut self.send);
        comm.alltoallv_into_bytes(
            size,
            &self.send,
            &self.send_counts,
            &displacements(&self.send_counts),
            dst,
            &self.recv_counts,
            &self.recv_displs,
        );
        out
    }
}

/// Copy the value runs of `rows` (in that order) to the start of `out`; runs of consecutive rows are
/// copied as one.
fn copy_rows(src: &[u8], ptr: &[u64], size: usize, rows: &[usize], out: &mut [u8]) {
    let mut at = 0;
    let mut k = 0;
    while k < rows.len() {
        let first = rows[k];
        let mut last = first;
        while k + 1 < rows.len() && rows[k + 1] == last + 1 {
            k += 1;
            last += 1;
        }
        k += 1;
        let (a, b) = (ptr[first] as usize * size, ptr[last + 1] as usize * size);
        out[at..at + b - a].copy_from_slice(&src[a..b]);
        at += b - a;
    }
}
