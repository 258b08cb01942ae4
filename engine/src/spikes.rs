//! Spikes as compact records, and their exchange between ranks at each min-delay barrier.
//!
//! Each rank integrates its cells for one min-delay interval, then every rank receives every spike of that
//! interval (allgatherv of `(t, gid)` records, 16 bytes each), as NEURON's `ParallelContext` does. Spikes are
//! sorted by (t, gid) after the exchange, so what follows does not depend on the rank count or on the order in
//! which ranks or threads produced them.

use bytemuck::{Pod, Zeroable};
use miv_partition::Communicator;

/// One spike: source gid and time (ms).
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct Spike {
    pub t: f64,
    pub gid: u64,
}

impl Spike {
    pub fn new(gid: u64, t: f64) -> Spike {
        Spike { t, gid }
    }
}

/// Total order: time, then gid.
pub fn sort_spikes(spikes: &mut [Spike]) {
    spikes.sort_unstable_by(|a, b| a.t.total_cmp(&b.t).then(a.gid.cmp(&b.gid)));
}

/// Every rank contributes its local spikes and receives all spikes of all ranks, sorted by (t, gid).
pub fn exchange(comm: &dyn Communicator, local: &[Spike]) -> Vec<Spike> {
    let (mut all, _) = comm.allgatherv(local);
    sort_spikes(&mut all);
    all
}

/// Root receives all spikes, sorted by (t, gid); other ranks get `None`.
pub fn gather_to_root(comm: &dyn Communicator, local: &[Spike]) -> Option<Vec<Spike>> {
    comm.gatherv(0, local).map(|(mut all, _)| {
        sort_spikes(&mut all);
        all
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use miv_partition::SerialComm;

    #[test]
    fn exchange_sorts_by_time_then_gid() {
        let c: &dyn Communicator = &SerialComm;
        let s = [Spike::new(5, 2.0), Spike::new(3, 2.0), Spike::new(9, 1.0)];
        let all = exchange(c, &s);
        assert_eq!(all, vec![Spike::new(9, 1.0), Spike::new(3, 2.0), Spike::new(5, 2.0)]);
        assert_eq!(std::mem::size_of::<Spike>(), 16);
    }
}
