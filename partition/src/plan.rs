//! Read plans: which rank reads which gids of a population from a file.
//!
//! Two shapes, as neuroh5 does it. In the *owner* plan every rank reads exactly the gids it owns. In the
//! *I/O-rank* plan `io_size` reader ranks, spread evenly over the job, each read one contiguous block of the
//! population (cheap, large hyperslabs) and then send every cell to its owner. Plans are pure functions of
//! their inputs, so all ranks agree on them without communication.

use std::ops::Range;

use crate::assign::Assignment;

/// Per-rank lists of contiguous gid ranges to read, ascending and non-overlapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadPlan {
    ranges: Vec<Vec<Range<u64>>>,
}

impl ReadPlan {
    /// Every rank reads the gids of `population` it owns under `assignment`, coalesced into ranges.
    pub fn owned(assignment: &Assignment, population: Range<u64>) -> ReadPlan {
        let size = assignment.size();
        let ranges = (0..size).map(|r| coalesce(&assignment.gids_of(r, std::slice::from_ref(&population)))).collect();
        ReadPlan { ranges }
    }

    /// `io_size` reader ranks (clamped to 1..=size) read near-equal contiguous blocks of `population`.
    /// Reader i is rank `i * size / io_size`; the other ranks read nothing.
    pub fn io_ranks(population: Range<u64>, size: usize, io_size: usize) -> ReadPlan {
        assert!(size > 0);
        let io = io_size.clamp(1, size);
        let n = population.end.saturating_sub(population.start);
        let mut ranges = vec![Vec::new(); size];
        for i in 0..io {
            let lo = population.start + n * i as u64 / io as u64;
            let hi = population.start + n * (i as u64 + 1) / io as u64;
            if hi > lo {
                ranges[i * size / io].push(lo..hi);
            }
        }
        ReadPlan { ranges }
    }

    pub fn size(&self) -> usize {
        self.ranges.len()
    }

    /// The ranges `rank` reads.
    pub fn ranges_of(&self, rank: usize) -> &[Range<u64>] {
        &self.ranges[rank]
    }

    /// Ranks that read anything.
    pub fn readers(&self) -> Vec<usize> {
        (0..self.size()).filter(|&r| !self.ranges[r].is_empty()).collect()
    }

    /// Number of gids `rank` reads.
    pub fn count_of(&self, rank: usize) -> u64 {
        self.ranges[rank].iter().map(|r| r.end - r.start).sum()
    }
}

/// Sorted gids → maximal contiguous ranges.
pub fn coalesce(sorted_gids: &[u64]) -> Vec<Range<u64>> {
    let mut out: Vec<Range<u64>> = Vec::new();
    for &g in sorted_gids {
        match out.last_mut() {
            Some(r) if r.end == g => r.end = g + 1,
            _ => out.push(g..g + 1),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn union(plan: &ReadPlan) -> Vec<u64> {
        let mut all: Vec<u64> =
            (0..plan.size()).flat_map(|r| plan.ranges_of(r).iter().flat_map(|x| x.clone())).collect();
        all.sort_unstable();
        all
    }

    #[test]
    fn io_rank_blocks_cover_the_population_once() {
        for size in 1..=6 {
            for io in [0, 1, 2, 3, 8] {
                let p = ReadPlan::io_ranks(64..287, size, io);
                assert_eq!(union(&p), (64..287).collect::<Vec<_>>());
                assert_eq!(p.readers().len(), io.clamp(1, size));
                let counts: Vec<u64> = p.readers().iter().map(|&r| p.count_of(r)).collect();
                let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
                assert!(hi - lo <= 1, "blocks differ by more than one cell: {counts:?}");
            }
        }
        // Readers are spread over the job: 2 readers of 4 ranks are ranks 0 and 2.
        assert_eq!(ReadPlan::io_ranks(0..10, 4, 2).readers(), vec![0, 2]);
    }

    #[test]
    fn owned_plan_matches_the_assignment() {
        let a = Assignment::round_robin(3);
        let p = ReadPlan::owned(&a, 10..20);
        assert_eq!(p.ranges_of(1), &[10..11, 13..14, 16..17, 19..20]);
        assert_eq!(union(&p), (10..20).collect::<Vec<_>>());
        let one = ReadPlan::owned(&Assignment::round_robin(1), 10..20);
        assert_eq!(one.ranges_of(0), &[10..20]);
    }

    #[test]
    fn coalesce_merges_runs() {
        assert_eq!(coalesce(&[1, 2, 3, 7, 9, 10]), vec![1..4, 7..8, 9..11]);
        assert!(coalesce(&[]).is_empty());
    }

    #[test]
    fn empty_population() {
        let p = ReadPlan::io_ranks(5..5, 3, 2);
        assert!(p.readers().is_empty());
    }
}
