//! Which rank owns which gid.
//!
//! Two strategies: round-robin (`gid % size`, NEURON's and MiV's default, needs no table) and a weighted
//! greedy longest-processing-time balancer for cells of unequal cost (compartment counts, synapse counts).
//! Both are pure functions of their inputs, so every rank computes the same assignment without talking.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A gid → rank map for `size` ranks.
#[derive(Debug, Clone, PartialEq)]
pub enum Assignment {
    /// gid g lives on rank `g % size`.
    RoundRobin { size: usize },
    /// An explicit table: `gids` sorted ascending, `ranks[i]` owns `gids[i]`.
    Table { size: usize, gids: Vec<u64>, ranks: Vec<u32> },
}

impl Assignment {
    pub fn round_robin(size: usize) -> Assignment {
        assert!(size > 0, "an assignment needs at least one rank");
        Assignment::RoundRobin { size }
    }

    /// Greedy LPT: gids by decreasing cost (ties by gid), each to the currently least-loaded rank (ties by
    /// rank). Deterministic, so every rank computes the same table.
    pub fn weighted(costs: &[(u64, f64)], size: usize) -> Assignment {
        assert!(size > 0, "an assignment needs at least one rank");
        let mut order: Vec<usize> = (0..costs.len()).collect();
        order.sort_by(|&a, &b| {
            let (ga, ca) = costs[a];
            let (gb, cb) = costs[b];
            cb.partial_cmp(&ca).unwrap_or(Ordering::Equal).then(ga.cmp(&gb))
        });
        let mut heap: BinaryHeap<Load> = (0..size).map(|r| Load { load: 0.0, rank: r }).collect();
        let mut pairs: Vec<(u64, u32)> = Vec::with_capacity(costs.len());
        for i in order {
            let (gid, cost) = costs[i];
            let mut least = heap.pop().expect("heap has one entry per rank");
            pairs.push((gid, least.rank as u32));
            least.load += if cost.is_finite() && cost > 0.0 { cost } else { 0.0 };
            heap.push(least);
        }
        pairs.sort_unstable_by_key(|p| p.0);
        let (gids, ranks) = pairs.into_iter().unzip();
        Assignment::Table { size, gids, ranks }
    }

    pub fn size(&self) -> usize {
        match self {
            Assignment::RoundRobin { size } | Assignment::Table { size, .. } => *size,
        }
    }

    /// The rank that owns `gid`; `None` for a gid absent from a table.
    pub fn rank_of(&self, gid: u64) -> Option<usize> {
        match self {
            Assignment::RoundRobin { size } => Some((gid % *size as u64) as usize),
            Assignment::Table { gids, ranks, .. } => gids.binary_search(&gid).ok().map(|i| ranks[i] as usize),
        }
    }

    /// The gids of `universe` owned by `rank`, ascending.
    pub fn gids_of(&self, rank: usize, universe: &[std::ops::Range<u64>]) -> Vec<u64> {
        let mut out = Vec::new();
        match self {
            Assignment::RoundRobin { size } => {
                let size = *size as u64;
                for r in universe {
                    if r.start >= r.end {
                        continue;
                    }
                    let first = r.start + (rank as u64 + size - r.start % size) % size;
                    out.extend((first..r.end).step_by(size as usize));
                }
                out.sort_unstable();
            }
            Assignment::Table { gids, ranks, .. } => {
                for (g, &r) in gids.iter().zip(ranks) {
                    if r as usize == rank && universe.iter().any(|u| u.contains(g)) {
                        out.push(*g);
                    }
                }
            }
        }
        out
    }

    /// Sum of `cost` per rank under this assignment.
    pub fn loads(&self, costs: &[(u64, f64)]) -> Vec<f64> {
        let mut loads = vec![0.0; self.size()];
        for &(g, c) in costs {
            if let Some(r) = self.rank_of(g) {
                loads[r] += c;
            }
        }
        loads
    }
}

/// Load imbalance `max/mean - 1` (0 for perfectly balanced, or when there is no load).
pub fn imbalance(loads: &[f64]) -> f64 {
    let total: f64 = loads.iter().sum();
    if loads.is_empty() || total <= 0.0 {
        return 0.0;
    }
    let mean = total / loads.len() as f64;
    loads.iter().cloned().fold(0.0, f64::max) / mean - 1.0
}

#[derive(Debug)]
struct Load {
    load: f64,
    rank: usize,
}
impl PartialEq for Load {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Load {}
impl PartialOrd for Load {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Load {
    // Max-heap: the least-loaded rank (then the lowest rank) is the greatest.
    fn cmp(&self, o: &Self) -> Ordering {
        o.load.partial_cmp(&self.load).unwrap_or(Ordering::Equal).then(o.rank.cmp(&self.rank))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_gid_once(a: &Assignment, universe: &[std::ops::Range<u64>]) {
        let mut seen = std::collections::BTreeMap::new();
        for r in 0..a.size() {
            for g in a.gids_of(r, universe) {
                assert_eq!(a.rank_of(g), Some(r));
                assert!(seen.insert(g, r).is_none(), "gid {g} assigned twice");
            }
        }
        let expected: u64 = universe.iter().map(|u| u.end - u.start).sum();
        assert_eq!(seen.len() as u64, expected);
    }

    #[test]
    fn round_robin_is_gid_mod_size() {
        let universe = [0..64u64, 64..287, 287..380, 380..401];
        for size in [1, 2, 3, 4, 7] {
            let a = Assignment::round_robin(size);
            every_gid_once(&a, &universe);
            for g in 0..401u64 {
                assert_eq!(a.rank_of(g), Some((g % size as u64) as usize));
            }
        }
        // Ranges that do not start at a multiple of size.
        let a = Assignment::round_robin(3);
        assert_eq!(a.gids_of(1, &[5..12]), vec![7, 10]);
        assert_eq!(a.gids_of(2, &[5..12]), vec![5, 8, 11]);
    }

    /// A deterministic heavy-tailed cost sample (Pareto-like), no RNG crate needed.
    fn skewed_costs(n: u64) -> Vec<(u64, f64)> {
        let mut x: u64 = 0x2545F4914F6CDD1D;
        (0..n)
            .map(|g| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let u = ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
                (g * 3 + 1, 10.0 / u.powf(1.0 / 1.5)) // Pareto(alpha 1.5), gids not contiguous
            })
            .collect()
    }

    #[test]
    fn weighted_assigns_every_gid_once_and_balances_skewed_costs() {
        let costs = skewed_costs(5000);
        let universe: Vec<_> = costs.iter().map(|&(g, _)| g..g + 1).collect();
        let biggest = costs.iter().map(|c| c.1).fold(0.0, f64::max);
        for size in [2, 3, 4, 8] {
            let a = Assignment::weighted(&costs, size);
            every_gid_once(&a, &universe);
            let loads = a.loads(&costs);
            let total: f64 = loads.iter().sum();
            // When one cell costs more than a fair share no assignment can balance; the sample avoids that.
            assert!(biggest < total / size as f64);
            let imb = imbalance(&loads);
            assert!(imb <= 0.05, "imbalance {imb} on {size} ranks");
            // Round-robin on the same costs is measurably worse, so the test can tell the two apart.
            let rr = imbalance(&Assignment::round_robin(size).loads(&costs));
            assert!(rr > imb, "round robin {rr} vs weighted {imb}");
        }
    }

    #[test]
    fn weighted_is_deterministic_and_ignores_input_order() {
        let mut costs = skewed_costs(300);
        let a = Assignment::weighted(&costs, 4);
        costs.reverse();
        assert_eq!(a, Assignment::weighted(&costs, 4));
    }

    #[test]
    fn imbalance_of_known_loads() {
        assert_eq!(imbalance(&[1.0, 1.0]), 0.0);
        assert!((imbalance(&[3.0, 1.0]) - 0.5).abs() < 1e-12);
        assert_eq!(imbalance(&[]), 0.0);
    }
}
