//! The distributed network runtime: local cells in cell groups, connections, min-delay spike exchange,
//! probes and LFP sampling.
//!
//! Each rank holds the cells it owns as [`CellDescription`]s until [`Network::finitialize`] builds them into
//! [`CellGroup`]s (a few cells per group, groups stepped in parallel by the rank's threads, the calling thread
//! among them: see `team.rs`). [`Network::psolve`] advances all groups for one min-delay interval,
//! exchanges the interval's spikes with every rank, and turns them into events for the local targets. A spike
//! at t on a connection with delay d arrives at t + d, which lies beyond the interval in which it was
//! produced, so no event is ever late.
//!
//! Nothing here depends on the rank or thread count: groups are independent, events on one cell are ordered by
//! (time, connection key) with keys built from source gid and connection order, spikes are exchanged and kept
//! sorted by (t, gid), and the LFP is an exact sum.

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::sync::Arc;

use miv_partition::Communicator;
use miv_solvers::cell::PointPlacement;
use miv_solvers::{
    Catalogue, CellDescription, CellGroup, ConnectionId, Event, Location, Probe, ProbeSpec, SimOptions, TargetId,
};

use crate::error::EngineError;
use crate::lfp::{self, ExactSum, LfpRole};
use crate::spikes::{self, Spike};
use crate::team;
use miv_config::LfpConfig;

/// How the runtime splits and schedules work.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    pub sim: SimOptions,
    /// Longest interval between spike exchanges (ms), NEURON's `pc.set_maxstep(10)`.
    pub max_step: f64,
    /// Cells per cell group (0: automatic).
    pub cells_per_group: usize,
    /// Threads per rank, the calling thread included (0: the core count).
    pub threads: usize,
    /// Seed of the random streams of mechanisms that draw random numbers (noisy NetStim, Gfluct, ...): each
    /// target's stream is keyed by (seed, gid, target index), never by rank or thread.
    pub seed: u64,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions { sim: SimOptions::default(), max_step: 10.0, cells_per_group: 0, threads: 1, seed: 0 }
    }
}

/// One mechanism type of a rank's cells (see [`Network::mechanism_census`]): its instances and the
/// arithmetic of one step of all of them (see [`miv_solvers::StepArithmetic`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MechanismCensus {
    pub name: String,
    pub instances: u64,
    pub divisions: u64,
    pub exps: u64,
    pub other: u64,
    /// Every instance's arithmetic is counted (false for the hand-written mechanisms).
    pub counted: bool,
    /// Some instances' step includes an implicit solve, whose iterations are not counted.
    pub implicit: bool,
}

/// A connection (NEURON NetCon) from a source gid to a target of a local cell.
#[derive(Debug, Clone, PartialEq)]
pub struct NetCon {
    pub source: u64,
    pub target_gid: u64,
    /// Target index within the target cell (its point processes in placement order; 0 for artificial cells).
    pub target: usize,
    pub weights: Vec<f64>,
    /// ms; at least one time step.
    pub delay: f64,
}

/// What to record at a location of a local cell.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeRequest {
    pub gid: u64,
    /// A probe in the terms of one cell (its `cell` field is ignored and replaced by the gid's cell).
    pub spec: ProbeSpec,
    pub label: String,
}

/// One recorded probe trace (on the rank owning the cell).
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub gid: u64,
    pub label: String,
    pub values: Vec<f64>,
}

/// An LFP electrode's cells on this rank: (gid, role, soma position) decided before the groups are built.
#[derive(Debug, Clone)]
struct Electrode {
    config: LfpConfig,
    /// MiV's quirks (`miv_compat`): the cell draws and reference areas.
    miv: Option<lfp::MivLfpContext>,
    /// Local samples, one exact sum per sample.
    samples: Vec<ExactSum>,
    every: u64,
}

/// A local cell until instantiation: a description that cells of the same morphology and template share, plus
/// the point processes (synapses) placed on this cell alone.
#[derive(Debug, Clone)]
struct LocalCell {
    base: Arc<CellDescription>,
    /// Point processes added to this cell: location and index in `Network::point_kinds`.
    points: Vec<(Location, u32)>,
    /// Index of the cell's population in sorted name order (for LFP cell sampling).
    population: u32,
}

impl LocalCell {
    fn base_points(&self) -> usize {
        match &*self.base {
            CellDescription::Cable(c) => c.points.len(),
            CellDescription::Artificial(_) => 1,
        }
    }

    /// Relative cost of stepping the cell: a node costs about as much as five point processes (the seed
    /// network's profile: about 22 ns per node-step for the cable and its channels, 4-5 ns per point process
    /// for its kernels and events).
    fn step_cost(&self) -> f64 {
        let nodes = match &*self.base {
            CellDescription::Cable(c) => c.nseg.iter().sum::<usize>() + 1,
            CellDescription::Artificial(_) => 0,
        };
        5.0 * nodes as f64 + (self.base_points() + self.points.len()) as f64
    }

    /// The full description (the shared part copied only when another cell still uses it).
    fn materialize(self, kinds: &[PointKind]) -> CellDescription {
        let mut d = Arc::try_unwrap(self.base).unwrap_or_else(|a| (*a).clone());
        if let CellDescription::Cable(c) = &mut d {
            c.points.extend(self.points.into_iter().map(|(location, k)| {
                let (mechanism, params) = kinds[k as usize].clone();
                PointPlacement { location, mechanism, params }
            }));
        }
        d
    }
}

/// Cell groups per worker thread when the partition leaves the size automatic: enough for the threads to
/// balance their work (every group is one task, taken by whichever thread is free). With the seed network and
/// MiV's mechanisms, 8 gave two threads 1.97x one thread where 4 gave 1.87x, and one thread was no slower.
const GROUPS_PER_THREAD: usize = 8;
/// Most cells in one automatically cut group.
const MAX_CELLS_PER_GROUP: usize = 64;

/// Most stepping cost ([`LocalCell::step_cost`]) in one automatically cut group: about 64 busyring cells, or
/// a few of the seed network's cells with their synapses, so that a group's arrays stay in the core's caches
/// over an exchange interval. On the seed network this took one thread's run to 0.87 of its time with groups
/// of about 50 cells (stand-in and MiV's mechanisms alike); the busyring's groups do not change.
const MAX_GROUP_COST: f64 = 16384.0;

/// How many groups the automatic cut makes of cells of these costs for `threads` threads: enough for the
/// threads to balance ([`GROUPS_PER_THREAD`]) and for no group to pass [`MAX_GROUP_COST`] (and
/// [`cut_by_cost`] then keeps [`MAX_CELLS_PER_GROUP`]).
fn automatic_groups(costs: &[f64], threads: usize) -> usize {
    let by_cost = (costs.iter().sum::<f64>() / MAX_GROUP_COST).ceil() as usize;
    (GROUPS_PER_THREAD * threads.max(1)).max(by_cost)
}

/// Cut `gids` (ascending) into contiguous groups of about equal total cost: `groups` of them (fewer if there
/// are fewer cells, more if `max_cells`, the most cells in one group, needs more).
fn cut_by_cost(gids: &[u64], costs: &[f64], groups: usize, max_cells: usize) -> Vec<Vec<u64>> {
    cut_ranges(costs, groups, max_cells).into_iter().map(|(a, b)| gids[a..b].to_vec()).collect()
}

/// Each thread's own groups: `0..costs.len()` cut into `threads` contiguous ranges of about equal cost (fewer
/// if there are fewer groups; one empty range if there are none).
fn thread_ranges(costs: &[f64], threads: usize) -> Vec<(usize, usize)> {
    let ranges = cut_ranges(costs, threads, usize::MAX);
    if ranges.is_empty() {
        vec![(0, 0)]
    } else {
        ranges
    }
}

/// `0..costs.len()` cut into contiguous ranges of about equal total cost, as [`cut_by_cost`] cuts cells.
fn cut_ranges(costs: &[f64], groups: usize, max_cells: usize) -> Vec<(usize, usize)> {
    let n = costs.len();
    let groups = groups.max(n.div_ceil(max_cells.max(1))).max(1);
    let total: f64 = costs.iter().sum();
    let mut out = Vec::with_capacity(groups);
    let (mut start, mut acc) = (0, 0.0);
    for (i, &c) in costs.iter().enumerate() {
        acc += c;
        let closed = out.len();
        let left = n - i - 1;
        // Close the group when it reaches its share of the cost, when it is full, or when the cells left are
        // only enough for one per group still to come.
        let share = total * (closed + 1) as f64 / groups as f64;
        let still = groups.saturating_sub(closed + 1);
        if left > 0 && (acc >= share || i + 1 - start == max_cells || left == still) {
            out.push((start, i + 1));
            start = i + 1;
        }
    }
    if start < n {
        out.push((start, n));
    }
    out
}

/// A point process's mechanism and parameters, shared by the placements that have the same.
type PointKind = (String, Vec<(String, f64)>);

/// Slot of a point kind in the cache of `Network::point_kinds` (`ROW_CACHE` slots).
fn kind_slot(mechanism: &str, params: &[(String, f64)]) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    mechanism.hash(&mut h);
    for (k, v) in params {
        k.hash(&mut h);
        v.to_bits().hash(&mut h);
    }
    (h.finish() as usize) & (ROW_CACHE - 1)
}

/// A connection as stored until instantiation: 20 bytes; its target cell is given by `Network::nc_runs`, its
/// weight vector is a row of `Network::nc_weights`, which connections with equal weights share.
#[derive(Clone, Copy)]
#[repr(C, packed(4))]
struct NcRec {
    source: u32,
    delay: f64,
    target: u32,
    /// Start of the weight vector's row in `Network::nc_weights`.
    w_row: u32,
}

/// Slots of the cache that finds equal weight vectors (`Network::intern_weights`, a power of two).
const ROW_CACHE: usize = 4096;

/// Slot of a weight vector in a row cache of `slots` (a power of two) entries.
fn row_slot(w: &[f64], slots: usize) -> usize {
    let mut h = w.len() as u64;
    for x in w {
        h = miv_partition::rng::splitmix64(h ^ x.to_bits());
    }
    (h as usize) & (slots - 1)
}

struct GroupRt {
    group: CellGroup,
    gids: Vec<u64>,
    inbox: Vec<Event>,
    /// Delay (ms) of each network connection, by connection id (the group numbers them by source gid, so a
    /// spike's connections into the group are one range).
    delays: Vec<f64>,
    /// Spikes of the last exchange for this group: (time, connection range).
    arrivals: Vec<(f64, u32, u32)>,
    spikes: Vec<miv_solvers::Spike>,
    /// (probe, index into `Network::traces`).
    probes: Vec<(Probe, usize)>,
    probe_values: Vec<Vec<f64>>,
    /// Per electrode: (node, coefficient mV/nA) over the group's selected cells.
    lfp_nodes: Vec<Vec<(u32, f64)>>,
    lfp_values: Vec<Vec<ExactSum>>,
    /// A numerical failure (e.g. a mechanism kernel's), reported after the parallel section.
    error: Option<String>,
    /// Stepping cost of the group's cells ([`LocalCell::step_cost`]), to share the groups among threads.
    cost: f64,
}

/// The network part of the execution environment on one rank.
pub struct Network<'c> {
    comm: &'c dyn Communicator,
    opts: RunOptions,
    catalogue: Catalogue,
    cells: BTreeMap<u64, LocalCell>,
    /// Mechanism and parameters of the point processes of `cells` (`LocalCell::points`), and a cache of them by
    /// `kind_slot` (`u32::MAX`: empty) to share equal ones.
    point_kinds: Vec<PointKind>,
    point_kind_cache: Vec<u32>,
    /// Connections in the order they were made (their target cells in `nc_runs`).
    netcons: Vec<NcRec>,
    /// Runs of consecutive `netcons` onto one target cell: (target gid, records). Connections made target by
    /// target (as `load_connections` makes them) need few runs.
    nc_runs: Vec<(u32, u32)>,
    /// Weight vectors of `netcons`, each row its length then its values.
    nc_weights: Vec<f64>,
    /// Rows of `nc_weights` by `row_slot` of their values (`u32::MAX`: empty), to share equal vectors.
    nc_row_cache: Vec<u32>,
    /// Connections onto this rank's cells (kept after the records are freed at instantiation).
    n_connections: usize,
    /// Local gids, ascending (kept after the descriptions are freed at instantiation).
    local_gids: Vec<u64>,
    direct: Vec<(u64, usize, f64, Vec<f64>)>,
    probes: Vec<ProbeRequest>,
    probe_every: u64,
    electrodes: Vec<Electrode>,
    groups: Vec<GroupRt>,
    /// Sorted by source gid: (source, group, first connection, end connection).
    routes: Vec<(u64, u32, u32, u32)>,
    /// Pending direct events per group, enqueued after initialisation.
    direct_events: Vec<Vec<Event>>,
    /// Each thread's own groups (contiguous, of about equal cost), the calling thread's first (`team.rs`).
    ranges: Vec<(usize, usize)>,
    /// The threads besides the calling one (none with one thread).
    pool: Option<rayon::ThreadPool>,
    built: bool,
    interval_steps: u64,
    step: u64,
    recorded: Vec<Spike>,
    traces: Vec<Trace>,
    min_delay: f64,
    /// gid -> (group, cell in group), kept after instantiation for the imperative calls.
    index: HashMap<u64, (u32, u32)>,
    /// Direct events given so far (their keys count down from `u64::MAX - 1`); reset by `clear_events`.
    direct_count: u64,
    /// The `v_init` of the last `finitialize` (what `reset` initialises to).
    v_init: f64,
}

impl<'c> Network<'c> {
    pub fn new(comm: &'c dyn Communicator, catalogue: Catalogue, opts: RunOptions) -> Network<'c> {
        Network {
            comm,
            opts,
            catalogue,
            cells: BTreeMap::new(),
            point_kinds: vec![],
            point_kind_cache: vec![],
            netcons: vec![],
            nc_runs: vec![],
            nc_weights: vec![],
            nc_row_cache: vec![],
            n_connections: 0,
            local_gids: vec![],
            direct: vec![],
            probes: vec![],
            probe_every: 1,
            electrodes: vec![],
            groups: vec![],
            routes: vec![],
            direct_events: vec![],
            ranges: vec![],
            pool: None,
            built: false,
            interval_steps: 1,
            step: 0,
            recorded: vec![],
            traces: vec![],
            min_delay: f64::INFINITY,
            index: HashMap::new(),
            direct_count: 0,
            v_init: miv_config::DEFAULT_V_INIT,
        }
    }

    pub fn comm(&self) -> &'c dyn Communicator {
        self.comm
    }

    pub fn options(&self) -> &RunOptions {
        &self.opts
    }

    /// Set the temperature (degC) before the network is instantiated.
    pub fn set_celsius(&mut self, celsius: f64) -> Result<(), EngineError> {
        self.check_not_built()?;
        self.opts.sim.celsius = celsius;
        Ok(())
    }

    /// Set the integration method before the network is instantiated (NEURON's `h.secondorder`).
    pub fn set_method(&mut self, method: miv_solvers::Method) -> Result<(), EngineError> {
        self.check_not_built()?;
        self.opts.sim.method = method;
        Ok(())
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// Add a cell owned by this rank. `population` is the index of its population in sorted name order.
    pub fn add_cell(&mut self, gid: u64, population: usize, cell: CellDescription) -> Result<(), EngineError> {
        self.add_shared_cell(gid, population, Arc::new(cell))
    }

    /// Add a cell whose description other cells share (same morphology and template): it is copied only when
    /// its group is built.
    pub fn add_shared_cell(
        &mut self,
        gid: u64,
        population: usize,
        cell: Arc<CellDescription>,
    ) -> Result<(), EngineError> {
        self.check_not_built()?;
        if self.cells.insert(gid, LocalCell { base: cell, points: vec![], population: population as u32 }).is_some() {
            return Err(EngineError::Network(format!("gid {gid} added twice on rank {}", self.comm.rank())));
        }
        Ok(())
    }

    /// Whether `gid` is a cell of this rank (not yet instantiated).
    pub fn has_cell(&self, gid: u64) -> bool {
        self.cells.contains_key(&gid)
    }

    /// Whether `gid` is a cell of this rank, before or after instantiation.
    pub fn is_local(&self, gid: u64) -> bool {
        if self.built {
            self.index.contains_key(&gid)
        } else {
            self.cells.contains_key(&gid)
        }
    }

    /// A local cell's description, without the point processes added by [`add_point`](Self::add_point).
    pub fn cell(&self, gid: u64) -> Option<&CellDescription> {
        self.cells.get(&gid).map(|c| &*c.base)
    }

    /// A local cell's own description to change (copied from the shared one on first use).
    pub fn cell_mut(&mut self, gid: u64) -> Option<&mut CellDescription> {
        if self.built {
            return None;
        }
        self.cells.get_mut(&gid).map(|c| Arc::make_mut(&mut c.base))
    }

    /// Place a point process on a local cable cell; returns its target index.
    pub fn add_point(&mut self, gid: u64, p: PointPlacement) -> Result<usize, EngineError> {
        self.check_not_built()?;
        let c =
            self.cells.get_mut(&gid).ok_or_else(|| EngineError::Network(format!("gid {gid} is not a local cell")))?;
        if !matches!(&*c.base, CellDescription::Cable(_)) {
            return Err(EngineError::Network(format!("gid {gid} is an artificial cell and takes no point processes")));
        }
        let slot = kind_slot(&p.mechanism, &p.params);
        let same = |k: &PointKind| {
            k.0 == p.mechanism
                && k.1.len() == p.params.len()
                && k.1.iter().zip(&p.params).all(|(a, b)| a.0 == b.0 && a.1.to_bits() == b.1.to_bits())
        };
        if self.point_kind_cache.is_empty() {
            self.point_kind_cache = vec![u32::MAX; ROW_CACHE];
        }
        let cached = self.point_kind_cache[slot];
        let kind = if cached != u32::MAX && same(&self.point_kinds[cached as usize]) {
            cached
        } else {
            let k = u32::try_from(self.point_kinds.len())
                .map_err(|_| EngineError::Network("a rank takes at most 2^32 kinds of point process".into()))?;
            self.point_kinds.push((p.mechanism, p.params));
            self.point_kind_cache[slot] = k;
            k
        };
        c.points.push((p.location, kind));
        Ok(c.base_points() + c.points.len() - 1)
    }

    /// Local gids, ascending.
    pub fn gids(&self) -> impl Iterator<Item = u64> + '_ {
        let before = (!self.built).then(|| self.cells.keys().copied());
        let after = self.built.then(|| self.local_gids.iter().copied());
        before.into_iter().flatten().chain(after.into_iter().flatten())
    }

    /// Connect `source` (any gid of the network) to target `target` of the local cell `target_gid`.
    pub fn connect(&mut self, nc: NetCon) -> Result<(), EngineError> {
        self.connect_with(nc.source, nc.target_gid, nc.target, &nc.weights, nc.delay)
    }

    /// [`connect`](Self::connect) without building a [`NetCon`].
    pub fn connect_with(
        &mut self,
        source: u64,
        target_gid: u64,
        target: usize,
        weights: &[f64],
        delay: f64,
    ) -> Result<(), EngineError> {
        self.check_not_built()?;
        if !self.cells.contains_key(&target_gid) {
            return Err(EngineError::Network(format!(
                "connection {source} -> {target_gid}: the target is not on this rank"
            )));
        }
        let dt = self.opts.sim.dt;
        if !(delay >= dt - 1e-9 * dt) || !delay.is_finite() {
            return Err(EngineError::Network(format!(
                "connection {source} -> {target_gid}: delay {delay} ms is below the time step dt = {dt} ms"
            )));
        }
        let (Ok(src), Ok(dst), Ok(tgt)) = (u32::try_from(source), u32::try_from(target_gid), u32::try_from(target))
        else {
            return Err(EngineError::Network(format!(
                "connection {source} -> {target_gid} (target {target}): gids and targets of connections must be below 2^32"
            )));
        };
        if u32::try_from(self.netcons.len()).is_err() {
            return Err(EngineError::Network("a rank takes at most 2^32 connections".into()));
        }
        let w_row = self.intern_weights(weights)?;
        self.netcons.push(NcRec { source: src, delay, target: tgt, w_row });
        match self.nc_runs.last_mut() {
            Some((gid, n)) if *gid == dst => *n += 1,
            _ => self.nc_runs.push((dst, 1)),
        }
        self.n_connections += 1;
        Ok(())
    }

    /// The row of `nc_weights` holding `weights`: a row with the same values if the cache finds one, else a new
    /// row.
    fn intern_weights(&mut self, weights: &[f64]) -> Result<u32, EngineError> {
        if self.nc_row_cache.is_empty() {
            self.nc_row_cache = vec![u32::MAX; ROW_CACHE];
        }
        let slot = row_slot(weights, ROW_CACHE);
        let r = self.nc_row_cache[slot];
        if r != u32::MAX && self.nc_row(r).iter().map(|x| x.to_bits()).eq(weights.iter().map(|x| x.to_bits())) {
            return Ok(r);
        }
        let r = self.new_row(weights)?;
        self.nc_row_cache[slot] = r;
        Ok(r)
    }

    fn new_row(&mut self, weights: &[f64]) -> Result<u32, EngineError> {
        let r = u32::try_from(self.nc_weights.len())
            .ok()
            .filter(|r| r.checked_add(weights.len() as u32 + 1).is_some())
            .ok_or_else(|| EngineError::Network("a rank takes at most 2^32 connection weights in all".into()))?;
        self.nc_weights.push(weights.len() as f64);
        self.nc_weights.extend_from_slice(weights);
        Ok(r)
    }

    /// Indices in `netcons` of the connections onto `target_gid`, in the order they were made.
    fn records_onto(&self, target_gid: u64) -> impl Iterator<Item = usize> + '_ {
        let mut start = 0usize;
        self.nc_runs.iter().flat_map(move |&(gid, n)| {
            let end = start + n as usize;
            let r = if gid as u64 == target_gid { start..end } else { end..end };
            start = end;
            r
        })
    }

    fn nc_row(&self, r: u32) -> &[f64] {
        let len = self.nc_weights[r as usize] as usize;
        &self.nc_weights[r as usize + 1..r as usize + 1 + len]
    }

    /// Deliver one event straight to a target at time `t` (NEURON's `NetCon(None, target).event(t)`).
    /// Before `finitialize` or between runs: the event is queued by every following `finitialize`/`reset`
    /// until [`clear_events`](Self::clear_events).
    pub fn add_event(&mut self, gid: u64, target: usize, t: f64, weights: Vec<f64>) -> Result<(), EngineError> {
        if !(t.is_finite() && t >= 0.0) {
            return Err(EngineError::Network(format!("event for gid {gid}: time {t} ms; times must be >= 0")));
        }
        if !self.built {
            if !self.cells.contains_key(&gid) {
                return Err(EngineError::Network(format!("event for gid {gid}: the cell is not on this rank")));
            }
            self.direct.push((gid, target, t, weights));
            self.direct_count += 1;
            return Ok(());
        }
        let (g, c) = self.locate(gid)?;
        let key = u64::MAX - 1 - self.direct_count;
        let grp = &mut self.groups[g];
        let tid = grp
            .group
            .target(c, target)
            .ok_or_else(|| EngineError::Network(format!("event for gid {gid}: the cell has no target {target}")))?;
        let id = grp
            .group
            .connect(tid, &weights, key)
            .map_err(|e| EngineError::Network(format!("event for gid {gid}: {e}")))?;
        self.direct_events[g].push(Event { time: t, connection: id });
        self.direct_count += 1;
        Ok(())
    }

    /// Forget every direct event given so far (they are not queued by the next `finitialize`/`reset`).
    pub fn clear_events(&mut self) {
        self.direct.clear();
        self.direct_events.iter_mut().for_each(Vec::clear);
        self.direct_count = 0;
    }

    /// (group, cell in group) of a local gid once the network is instantiated.
    fn locate(&self, gid: u64) -> Result<(usize, usize), EngineError> {
        self.index.get(&gid).map(|&(g, c)| (g as usize, c as usize)).ok_or_else(|| {
            EngineError::Network(format!(
                "gid {gid} is not on rank {} (see ExecutionEnvironment::owns)",
                self.comm.rank()
            ))
        })
    }

    /// The spike train an artificial (VecStim) cell plays: before `finitialize`, or between runs (it is
    /// played from the next `finitialize`/`reset` on).
    pub fn set_train(&mut self, gid: u64, times: &[f64]) -> Result<(), EngineError> {
        if !self.built {
            return match self.cell_mut(gid) {
                Some(CellDescription::Artificial(a)) => {
                    a.arrays.retain(|(n, _)| n != "times");
                    a.arrays.push(("times".into(), times.to_vec()));
                    Ok(())
                }
                Some(_) => Err(EngineError::Network(format!(
                    "gid {gid} is not an artificial cell; only VecStim cells play spike trains"
                ))),
                None => Err(EngineError::Network(format!("gid {gid} is not on rank {}", self.comm.rank()))),
            };
        }
        let (g, c) = self.locate(gid)?;
        let grp = &mut self.groups[g];
        if !grp.group.cell_nodes(c).is_empty() {
            return Err(EngineError::Network(format!(
                "gid {gid} is not an artificial cell; only VecStim cells play spike trains"
            )));
        }
        let t = grp.group.target(c, 0).ok_or_else(|| EngineError::Network(format!("gid {gid}: no target")))?;
        grp.group.set_target_array(t, "times", times).map_err(|e| EngineError::Network(format!("gid {gid}: {e}")))
    }

    /// A probe of a local cell resolved in its group (after instantiation).
    fn resolve(&self, gid: u64, spec: &ProbeSpec) -> Result<(usize, Probe), EngineError> {
        let (g, c) = self.locate(gid)?;
        let p = self.groups[g]
            .group
            .probe(&with_cell(spec, c))
            .map_err(|e| EngineError::Network(format!("gid {gid}: {e}")))?;
        Ok((g, p))
    }

    /// The present value of what `spec` names on local cell `gid` (after `finitialize`): NEURON's
    /// `sec(x).v` or `sec(x).m_hh`.
    pub fn state(&self, gid: u64, spec: &ProbeSpec) -> Result<f64, EngineError> {
        self.check_built("reading a state")?;
        let (g, p) = self.resolve(gid, spec)?;
        Ok(self.groups[g].group.read(&p))
    }

    /// Set what `spec` names on local cell `gid` (after `finitialize`, between `psolve` calls); the next step
    /// starts from it.
    pub fn set_state(&mut self, gid: u64, spec: &ProbeSpec, value: f64) -> Result<(), EngineError> {
        self.check_built("setting a state")?;
        let (g, p) = self.resolve(gid, spec)?;
        self.groups[g].group.write(&p, value).map_err(|e| EngineError::Network(format!("gid {gid}: {e}")))
    }

    /// Set the membrane potential of every node of local cable cell `gid` (after `finitialize`).
    pub fn set_cell_voltage(&mut self, gid: u64, v: f64) -> Result<(), EngineError> {
        self.check_built("setting a voltage")?;
        let (g, c) = self.locate(gid)?;
        let grp = &mut self.groups[g];
        let nodes: Vec<u32> = grp.group.cell_nodes(c).to_vec();
        for n in nodes {
            grp.group
                .write(&Probe::Voltage { node: n }, v)
                .map_err(|e| EngineError::Network(format!("gid {gid}: {e}")))?;
        }
        Ok(())
    }

    fn check_built(&self, what: &str) -> Result<(), EngineError> {
        if !self.built {
            return Err(EngineError::Network(format!("{what} needs an instantiated network: call finitialize first")));
        }
        Ok(())
    }

    /// Connection ids (group, id) from `source` onto local cell `target_gid`, in the order they were made.
    fn netcon_ids(&self, source: u64, target_gid: u64) -> Result<(usize, Vec<ConnectionId>), EngineError> {
        let (g, c) = self.locate(target_gid)?;
        let grp = &self.groups[g].group;
        let targets = grp.targets(c);
        let lo = self.routes.partition_point(|r| (r.0, r.1) < (source, g as u32));
        let mut ids = Vec::new();
        if let Some(r) = self.routes.get(lo).filter(|r| r.0 == source && r.1 == g as u32) {
            for id in r.2..r.3 {
                let t = grp.connection_target(ConnectionId(id)).expect("connection of the group");
                if targets.start.0 <= t.0 && t.0 < targets.end.0 {
                    ids.push(ConnectionId(id));
                }
            }
        }
        Ok((g, ids))
    }

    /// Weight vectors of the connections (NetCons) from `source` onto local cell `target_gid`, in the order they
    /// were made (empty if there are none).
    pub fn netcon_weights(&self, source: u64, target_gid: u64) -> Result<Vec<Vec<f64>>, EngineError> {
        if !self.built {
            return Ok(self
                .records_onto(target_gid)
                .filter(|&i| self.netcons[i].source as u64 == source)
                .map(|i| self.nc_row(self.netcons[i].w_row).to_vec())
                .collect());
        }
        let (g, ids) = self.netcon_ids(source, target_gid)?;
        Ok(ids.into_iter().map(|id| self.groups[g].group.weights(id).to_vec()).collect())
    }

    /// Set the weight vector of connection `k` (in [`netcon_weights`](Self::netcon_weights) order) from `source`
    /// onto local cell `target_gid` (NEURON's `nc.weight[i] = w`); `weights` may be shorter than the vector.
    pub fn set_netcon_weights(
        &mut self,
        source: u64,
        target_gid: u64,
        k: usize,
        weights: &[f64],
    ) -> Result<(), EngineError> {
        let missing = || EngineError::Network(format!("no connection #{k} from gid {source} onto gid {target_gid}"));
        if !self.built {
            let i = self
                .records_onto(target_gid)
                .filter(|&i| self.netcons[i].source as u64 == source)
                .nth(k)
                .ok_or_else(missing)?;
            let mut w = self.nc_row(self.netcons[i].w_row).to_vec();
            if weights.len() > w.len() {
                return Err(EngineError::Network(format!(
                    "connection {source} -> {target_gid} has {} weights, not {}",
                    w.len(),
                    weights.len()
                )));
            }
            w[..weights.len()].copy_from_slice(weights);
            // The row may be shared: the connection gets a row of its own.
            self.netcons[i].w_row = self.new_row(&w)?;
            return Ok(());
        }
        let (g, ids) = self.netcon_ids(source, target_gid)?;
        let id = *ids.get(k).ok_or_else(missing)?;
        let w = self.groups[g].group.weights_mut(id);
        if weights.len() > w.len() {
            return Err(EngineError::Network(format!(
                "connection {source} -> {target_gid} has {} weights, not {}",
                w.len(),
                weights.len()
            )));
        }
        w[..weights.len()].copy_from_slice(weights);
        Ok(())
    }

    /// Forget every probe (before `finitialize` or between runs).
    pub fn clear_probes(&mut self) {
        self.probes.clear();
        self.traces.clear();
        for g in &mut self.groups {
            g.probes.clear();
            g.probe_values.clear();
        }
    }

    /// Record a probe every `every_steps` steps (the same interval for all probes).
    /// Before `finitialize` or between runs (recorded from the next `finitialize`/`reset` on).
    pub fn add_probe(&mut self, p: ProbeRequest, every_steps: u64) -> Result<(), EngineError> {
        if !self.built {
            if !self.cells.contains_key(&p.gid) {
                return Err(EngineError::Network(format!("probe {}: gid {} is not on this rank", p.label, p.gid)));
            }
            self.probe_every = every_steps.max(1);
            self.probes.push(p);
            return Ok(());
        }
        let (g, probe) =
            self.resolve(p.gid, &p.spec).map_err(|e| EngineError::Network(format!("probe {}: {e}", p.label)))?;
        self.probe_every = every_steps.max(1);
        let grp = &mut self.groups[g];
        grp.probes.push((probe, self.traces.len()));
        grp.probe_values.push(vec![]);
        self.traces.push(Trace { gid: p.gid, label: p.label.clone(), values: vec![] });
        self.probes.push(p);
        Ok(())
    }

    /// Add an LFP electrode. Must be called on every rank (the sum is collective).
    pub fn add_lfp(&mut self, config: LfpConfig) -> Result<usize, EngineError> {
        self.add_lfp_with(config, None)
    }

    /// [`add_lfp`](Self::add_lfp); with `miv`, the electrode computes what MiV's `lfp.py` computes
    /// (`LfpConfig::miv_compat`).
    pub fn add_lfp_with(&mut self, config: LfpConfig, miv: Option<lfp::MivLfpContext>) -> Result<usize, EngineError> {
        self.check_not_built()?;
        config.validate().map_err(EngineError::Network)?;
        let every = steps_of(config.dt_lfp, self.opts.sim.dt).ok_or_else(|| {
            EngineError::Network(format!(
                "lfp '{}': dt_lfp {} is not a multiple of dt {}",
                config.label, config.dt_lfp, self.opts.sim.dt
            ))
        })?;
        self.opts.sim.membrane_current = true;
        self.opts.sim.geometry = true;
        self.electrodes.push(Electrode { config, miv, samples: vec![], every });
        Ok(self.electrodes.len() - 1)
    }

    fn check_not_built(&self) -> Result<(), EngineError> {
        if self.built {
            return Err(EngineError::Network("the network is already instantiated (finitialize was called)".into()));
        }
        Ok(())
    }

    /// Threads per rank, the calling thread included (`RunOptions::threads`, 0 resolved to the core count).
    pub fn threads(&self) -> usize {
        match self.opts.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// The global minimum connection delay (ms), known after `finitialize`.
    pub fn min_delay(&self) -> f64 {
        self.min_delay
    }

    /// Current time (ms).
    pub fn time(&self) -> f64 {
        self.step as f64 * self.opts.sim.dt
    }

    /// Number of connections onto this rank's cells.
    pub fn local_connections(&self) -> usize {
        self.n_connections
    }

    /// The mechanism types of this rank's cells, by name, with their instances and the arithmetic all of
    /// them perform in one step (each group's count times its instances; groups differ where their
    /// specialised kernels do). Empty before instantiation.
    pub fn mechanism_census(&self) -> Vec<MechanismCensus> {
        let mut by_name: std::collections::BTreeMap<&str, MechanismCensus> = std::collections::BTreeMap::new();
        for g in &self.groups {
            for (name, n, arith) in g.group.mechanism_census() {
                let e = by_name.entry(name).or_insert_with(|| MechanismCensus {
                    name: name.to_string(),
                    counted: true,
                    ..Default::default()
                });
                e.instances += n as u64;
                match arith {
                    Some(a) => {
                        e.divisions += n as u64 * a.divisions as u64;
                        e.exps += n as u64 * a.exps as u64;
                        e.other += n as u64 * a.other as u64;
                        e.implicit |= a.implicit;
                    }
                    None => e.counted &= n == 0,
                }
            }
        }
        by_name.into_values().filter(|c| c.instances > 0).collect()
    }

    /// Number of compartments on this rank (after instantiation).
    pub fn local_compartments(&self) -> usize {
        self.groups.iter().map(|g| g.group.num_compartments()).sum()
    }

    /// Heap bytes of the instantiated network on this rank by what holds them: the cell groups', plus the
    /// engine's per-connection delays and spike routes (under `connections`), its event inboxes (`events`) and
    /// LFP coefficients (`nodes`). Zero before `finitialize`.
    pub fn memory(&self) -> miv_solvers::GroupMemory {
        fn b<T>(v: &Vec<T>) -> usize {
            v.capacity() * std::mem::size_of::<T>()
        }
        let mut m = miv_solvers::GroupMemory::default();
        for g in &self.groups {
            m += g.group.memory();
            m.connections += b(&g.delays);
            m.events += b(&g.inbox) + b(&g.arrivals) + b(&g.spikes);
            m.nodes += g.lfp_nodes.iter().map(b).sum::<usize>();
        }
        m.connections += b(&self.routes);
        m
    }

    /// Random streams keyed by (seed, gid, target); targets that draw no random numbers decline. Keying a
    /// stream restarts it, so every `finitialize` starts the streams where the first one did.
    fn key_random_streams(&mut self) {
        let seed_word = {
            let h =
                miv_partition::rng::splitmix64(self.opts.seed ^ miv_partition::Purpose::named("mechanism streams").0);
            (h ^ (h >> 32)) as u32
        };
        for grp in &mut self.groups {
            for (c, &gid) in grp.gids.iter().enumerate() {
                let r = grp.group.targets(c);
                for t in r.start.0..r.end.0 {
                    let key = [gid as u32, (gid >> 32) as u32, t - r.start.0, seed_word];
                    let _ = grp.group.set_target_random_stream(TargetId(t), key);
                }
            }
        }
    }

    /// Build the cell groups, connections and samplers. Collective.
    fn instantiate(&mut self) -> Result<(), EngineError> {
        let dt = self.opts.sim.dt;
        self.local_gids = self.cells.keys().copied().collect();
        let built = self.build_groups();
        let (groups, index) = self.comm.agreed(built)?;
        self.groups = groups;
        let local_min = self.netcons.iter().map(|n| n.delay).fold(f64::INFINITY, f64::min);
        let local = self.wire(&index);
        self.comm.agreed(local)?;
        self.index = index;
        // The groups own everything now: free the connection records.
        self.cells = BTreeMap::new();
        self.netcons = Vec::new();
        self.nc_runs = Vec::new();
        self.nc_weights = Vec::new();
        self.nc_row_cache = Vec::new();
        self.point_kinds = Vec::new();
        self.point_kind_cache = Vec::new();
        self.min_delay = self.comm.allreduce_min(local_min);
        let interval = self.min_delay.min(self.opts.max_step);
        self.interval_steps = ((interval / dt) + 1e-9).floor().max(1.0) as u64;
        let costs: Vec<f64> = self.groups.iter().map(|g| g.cost).collect();
        self.ranges = thread_ranges(&costs, self.threads());
        let workers = self.ranges.len() - 1;
        self.pool = if workers == 0 {
            None
        } else {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(workers)
                .thread_name(|i| format!("miv-worker-{}", i + 1))
                .build()
                .map_err(|e| EngineError::Network(format!("cannot start {workers} worker threads: {e}")))?;
            Some(pool)
        };
        self.built = true;
        Ok(())
    }

    /// Cut the local cells (ascending gid) into groups.
    #[allow(clippy::type_complexity)]
    fn build_groups(&mut self) -> Result<(Vec<GroupRt>, HashMap<u64, (u32, u32)>), EngineError> {
        let n = self.cells.len();
        let gids: Vec<u64> = self.cells.keys().copied().collect();
        // Costs by position in `gids` (the groups are contiguous runs of it).
        let costs: Vec<f64> = self.cells.values().map(LocalCell::step_cost).collect();
        let chunks: Vec<Vec<u64>> = if self.opts.cells_per_group > 0 {
            gids.chunks(self.opts.cells_per_group).map(<[u64]>::to_vec).collect()
        } else {
            cut_by_cost(&gids, &costs, automatic_groups(&costs, self.threads()), MAX_CELLS_PER_GROUP)
        };
        let mut first_cell = 0;
        let mut groups = Vec::new();
        let mut index = HashMap::with_capacity(n);
        // Each group's descriptions are moved out of `self.cells` and dropped once the group is built, so the
        // cells are never held twice.
        for (gi, chunk) in chunks.iter().enumerate() {
            let (descs, pops): (Vec<CellDescription>, Vec<u32>) = chunk
                .iter()
                .map(|g| {
                    let c = self.cells.remove(g).expect("local gid");
                    let p = c.population;
                    (c.materialize(&self.point_kinds), p)
                })
                .unzip();
            let group = CellGroup::new(&descs, &self.catalogue, self.opts.sim.clone()).map_err(|e| {
                EngineError::Network(format!("building cells {}..={}: {e}", chunk[0], chunk[chunk.len() - 1]))
            })?;
            for (ci, &g) in chunk.iter().enumerate() {
                index.insert(g, (gi as u32, ci as u32));
            }
            let mut grp = GroupRt {
                group,
                gids: chunk.to_vec(),
                inbox: vec![],
                delays: vec![],
                arrivals: vec![],
                spikes: vec![],
                probes: vec![],
                probe_values: vec![],
                lfp_nodes: vec![Vec::new(); self.electrodes.len()],
                lfp_values: vec![Vec::new(); self.electrodes.len()],
                error: None,
                cost: costs[first_cell..first_cell + chunk.len()].iter().sum(),
            };
            first_cell += chunk.len();
            for (c, (&gid, desc)) in chunk.iter().zip(&descs).enumerate() {
                self.lfp_nodes_of(gid, pops[c] as usize, desc, c, &mut grp);
            }
            groups.push(grp);
        }
        Ok((groups, index))
    }

    /// The LFP coefficients of one cell's segments, per electrode, into its group.
    fn lfp_nodes_of(&self, gid: u64, pop: usize, desc: &CellDescription, c: usize, grp: &mut GroupRt) {
        let CellDescription::Cable(cell) = desc else { return };
        for (e, el) in self.electrodes.iter().enumerate() {
            let soma = lfp_soma_point(cell);
            if let Some(miv) = &el.miv {
                miv_lfp_nodes(&el.config, miv, gid, soma, cell, c, grp, e);
                continue;
            }
            let Some(role) = lfp::select_cell(&el.config, pop, gid, soma) else { continue };
            let scale = if role == LfpRole::Distal { 1.0 / el.config.fdst } else { 1.0 };
            let placed = cell.morphology.placed_points(&cell.nseg);
            for (s, pts) in placed.iter().enumerate() {
                let p3: Vec<[f64; 3]> = pts.iter().map(|p| [p.x, p.y, p.z]).collect();
                let arc = arc_lengths(&p3);
                let nseg = cell.nseg[s];
                let r_min = pts.iter().map(|p| p.diam).fold(0.0, f64::max) / 2.0;
                let k = lfp::section_coefficients(&el.config, &p3, &arc, nseg, r_min.max(0.5), scale);
                for (j, kj) in k.into_iter().enumerate() {
                    let x = (j as f64 + 0.5) / nseg as f64;
                    if let Some(node) = grp.group.node_at(c, Location::new(s, x)) {
                        grp.lfp_nodes[e].push((node as u32, kj));
                    }
                }
            }
        }
    }

    /// Connections, direct events, probes and LFP coefficients onto the built groups.
    fn wire(&mut self, index: &HashMap<u64, (u32, u32)>) -> Result<(), EngineError> {
        self.key_random_streams();
        // Key of a connection: its source gid and its position among its target cell's connections in (source,
        // made) order, so that simultaneous events on a cell are ordered the same way whatever the grouping or
        // rank count. Connections are made per group in (source, target, position) order: a source's
        // connections into a group get consecutive ids, and a spike becomes one range per group.
        //
        // The groups are wired from the last one back. A group's records are copied out of `netcons` cell by
        // cell, each cell's runs in made order (found through a table of each cell's runs, so the cost is linear
        // in the runs whatever order the connections were made in), and marked done. Records done at the end
        // of `netcons` are cut off at once; those left between records still to wire are squeezed out when
        // they exceed a sixteenth of `netcons`, and the array is shrunk, so that the records and the tables are
        // never held in full at the same time and each record is moved a bounded number of times. (Moving the
        // remaining records down after every group was quadratic in the groups: with one run per projection
        // and cell, a group's first run is in the first projection, and everything after it moved.) Each
        // cell's records are then sorted by source, stably, so that a record's place in its cell is its
        // position, and the group's connections are the merge of its cells' records.
        let cell_of = |gid: u32| {
            self.local_gids
                .binary_search(&(gid as u64))
                .map_err(|_| EngineError::Network(format!("connections onto gid {gid}, which is not on this rank")))
        };
        // (cell, first record, records) of each run, in made order (which is also the order of the runs'
        // positions in `netcons`, before and after squeezing); a run done has `first == usize::MAX`.
        let mut runs: Vec<(u32, usize, u32)> = Vec::with_capacity(self.nc_runs.len());
        let mut start = 0usize;
        for &(gid, n) in &self.nc_runs {
            runs.push((cell_of(gid)? as u32, start, n));
            start += n as usize;
        }
        self.nc_runs = Vec::new();
        // Each cell's runs in made order: `cell_runs[cell_start[c]..cell_start[c + 1]]`.
        let mut cell_start = vec![0usize; self.local_gids.len() + 1];
        for r in &runs {
            cell_start[r.0 as usize + 1] += 1;
        }
        for c in 1..cell_start.len() {
            cell_start[c] += cell_start[c - 1];
        }
        let mut cell_runs = vec![0u32; runs.len()];
        let mut next = cell_start.clone();
        for (i, r) in runs.iter().enumerate() {
            cell_runs[next[r.0 as usize]] = i as u32;
            next[r.0 as usize] += 1;
        }
        drop(next);
        // Runs `..live_end` hold every record not yet wired; `done` records among them are wired already.
        let mut live_end = runs.len();
        let mut done = 0usize;
        let mut routes: Vec<(u64, u32, u32, u32)> = Vec::new();
        let mut g_end = self.local_gids.len();
        while g_end > 0 {
            let g = index[&self.local_gids[g_end - 1]].0;
            let g_start = self.local_gids[..g_end].partition_point(|gid| index[gid].0 < g);
            let group_runs = &cell_runs[cell_start[g_start]..cell_start[g_end]];
            let mut recs: Vec<NcRec> =
                Vec::with_capacity(group_runs.iter().map(|&i| runs[i as usize].2 as usize).sum());
            // Where each cell's records start in `recs`, by position from `g_start`, then the end.
            let mut cells = vec![0usize; g_end - g_start + 1];
            for p in g_start..g_end {
                for &i in &cell_runs[cell_start[p]..cell_start[p + 1]] {
                    let (_, first, n) = &mut runs[i as usize];
                    recs.extend_from_slice(&self.netcons[*first..*first + *n as usize]);
                    *first = usize::MAX;
                    done += *n as usize;
                }
                cells[p - g_start + 1] = recs.len();
            }
            // Cut off the records done at the end; squeeze out the others once they are a sixteenth of the array.
            while live_end > 0 && runs[live_end - 1].1 == usize::MAX {
                live_end -= 1;
            }
            let kept = runs[..live_end].last().map_or(0, |r| r.1 + r.2 as usize);
            done -= self.netcons.len() - kept;
            self.netcons.truncate(kept);
            if done > 0 && done >= self.netcons.len() / 16 {
                let mut kept = 0usize;
                for r in runs[..live_end].iter_mut().filter(|r| r.1 != usize::MAX) {
                    if r.1 != kept {
                        self.netcons.copy_within(r.1..r.1 + r.2 as usize, kept);
                        r.1 = kept;
                    }
                    kept += r.2 as usize;
                }
                self.netcons.truncate(kept);
                done = 0;
            }
            self.netcons.shrink_to_fit();
            for w in cells.windows(2) {
                recs[w[0]..w[1]].sort_by_key(|nc| nc.source);
            }
            let grp = &mut self.groups[g as usize];
            grp.group.reserve_connections(recs.len());
            grp.delays.reserve_exact(recs.len());
            // The next record of each cell of the group, by (source, cell): (source, cell, record).
            let mut heads: std::collections::BinaryHeap<std::cmp::Reverse<(u32, usize, usize)>> = (0..cells.len() - 1)
                .filter(|&p| cells[p] < cells[p + 1])
                .map(|p| std::cmp::Reverse((recs[cells[p]].source, p, cells[p])))
                .collect();
            while let Some(std::cmp::Reverse((_, p, i))) = heads.pop() {
                let nc = recs[i];
                if i + 1 < cells[p + 1] {
                    heads.push(std::cmp::Reverse((recs[i + 1].source, p, i + 1)));
                }
                let (source, target_gid, w_row) = (nc.source as u64, self.local_gids[g_start + p], nc.w_row);
                let c = index[&target_gid].1;
                let target = grp.group.target(c as usize, nc.target as usize).ok_or_else(|| {
                    EngineError::Network(format!("connection {source} -> {target_gid}: the cell has no target {}", {
                        nc.target
                    }))
                })?;
                let key = (source << 20) | ((i - cells[p]) as u64 & 0xF_FFFF);
                let len = self.nc_weights[w_row as usize] as usize;
                let w = &self.nc_weights[w_row as usize + 1..w_row as usize + 1 + len];
                let id = grp
                    .group
                    .connect(target, w, key)
                    .map_err(|e| EngineError::Network(format!("connection {source} -> {target_gid}: {e}")))?;
                grp.delays.push(nc.delay);
                match routes.last_mut() {
                    Some(r) if r.0 == source && r.1 == g => r.3 = id.0 + 1,
                    _ => routes.push((source, g, id.0, id.0 + 1)),
                }
            }
            g_end = g_start;
        }
        debug_assert!(self.netcons.is_empty());
        routes.sort_unstable();
        self.routes = routes;
        self.direct_events = vec![Vec::new(); self.groups.len()];
        for (n, (gid, target, t, w)) in self.direct.iter().enumerate() {
            let (g, c) = index[gid];
            let grp = &mut self.groups[g as usize];
            let tid: TargetId = grp
                .group
                .target(c as usize, *target)
                .ok_or_else(|| EngineError::Network(format!("event for gid {gid}: the cell has no target {target}")))?;
            let id = grp
                .group
                .connect(tid, w, u64::MAX - 1 - n as u64)
                .map_err(|e| EngineError::Network(format!("event for gid {gid}: {e}")))?;
            self.direct_events[g as usize].push(Event { time: *t, connection: id });
        }
        for g in &mut self.groups {
            g.group.shrink_to_fit();
        }
        for p in &self.probes {
            let (g, c) = index[&p.gid];
            let grp = &mut self.groups[g as usize];
            let spec = with_cell(&p.spec, c as usize);
            let probe = grp
                .group
                .probe(&spec)
                .map_err(|e| EngineError::Network(format!("probe {} on gid {}: {e}", p.label, p.gid)))?;
            grp.probes.push((probe, self.traces.len()));
            grp.probe_values.push(vec![]);
            self.traces.push(Trace { gid: p.gid, label: p.label.clone(), values: vec![] });
        }
        Ok(())
    }

    /// NEURON `finitialize(v_init)`: build on first use, set every cell to `v_init`, mechanism steady states,
    /// queue the direct events, and take the samples at t = 0. Collective.
    /// Called again it restarts the network from the same initial state (see [`reset`](Self::reset)).
    pub fn finitialize(&mut self, v_init: f64) -> Result<(), EngineError> {
        if !self.built {
            self.instantiate()?;
        } else {
            self.key_random_streams();
        }
        self.v_init = v_init;
        self.step = 0;
        self.recorded.clear();
        for t in &mut self.traces {
            t.values.clear();
        }
        for e in &mut self.electrodes {
            e.samples.clear();
        }
        let direct = &self.direct_events;
        let probe_every = self.probe_every;
        let everies: Vec<u64> = self.electrodes.iter().map(|e| e.every).collect();
        let mut once = true;
        team::run_rounds(
            self.pool.as_ref(),
            &mut self.groups,
            &self.ranges,
            |gi, g, ()| {
                if let Err(e) = g.group.initialize(v_init) {
                    g.error = Some(format!("cells {}..={}: {e}", g.gids[0], g.gids[g.gids.len() - 1]));
                }
                g.inbox.clear();
                g.inbox.extend_from_slice(&direct[gi]);
                g.arrivals.clear();
                g.probe_values.iter_mut().for_each(Vec::clear);
                g.lfp_values.iter_mut().for_each(Vec::clear);
                sample(g, 0, probe_every, &everies);
            },
            |_| if std::mem::take(&mut once) { ControlFlow::Continue(()) } else { ControlFlow::Break(()) },
        );
        check_groups(self.comm, &mut self.groups)?;
        collect_spikes(&mut self.groups, &mut self.recorded);
        Ok(())
    }

    /// `finitialize` with the last `v_init`: t = 0, voltages, mechanism states, event queues, random streams,
    /// recorded spikes, probe traces and LFP samples as at the first `finitialize`; played trains, direct
    /// events, probes, weights and parameters as they are now. Collective.
    pub fn reset(&mut self) -> Result<(), EngineError> {
        if !self.built {
            return Err(EngineError::Network("reset before finitialize".into()));
        }
        self.finitialize(self.v_init)
    }

    /// Advance the network to `t_stop` (ms), exchanging spikes every min-delay interval. Collective.
    pub fn psolve(&mut self, t_stop: f64) -> Result<(), EngineError> {
        if !self.built {
            return Err(EngineError::Network("psolve before finitialize".into()));
        }
        let dt = self.opts.sim.dt;
        let last = (t_stop / dt + 1e-6).floor() as u64;
        let probe_every = self.probe_every;
        let everies: Vec<u64> = self.electrodes.iter().map(|e| e.every).collect();
        let lfp = !everies.is_empty();
        // The groups are taken out for the run: the rounds step them on every thread, and between rounds the
        // calling thread exchanges spikes (MPI is funnelled to it) and files the arrivals.
        let mut groups = std::mem::take(&mut self.groups);
        let ranges = std::mem::take(&mut self.ranges);
        let pool = self.pool.take();
        let mut first = true;
        let result = team::run_rounds(
            pool.as_ref(),
            &mut groups,
            &ranges,
            |_, g, (start, end): (u64, u64)| {
                for &(t, first, end) in &g.arrivals {
                    g.group.enqueue_spike(t, ConnectionId(first), &g.delays[first as usize..end as usize]);
                }
                g.arrivals.clear();
                let mut s = start;
                while s < end && g.error.is_none() {
                    let next = next_sample_step(s, end, probe_every, &everies, !g.probes.is_empty(), lfp);
                    if let Err(e) = g.group.advance(next as f64 * dt, &mut g.inbox, &mut g.spikes) {
                        g.error = Some(format!("cells {}..={}: {e}", g.gids[0], g.gids[g.gids.len() - 1]));
                    }
                    s = next;
                    sample(g, s, probe_every, &everies);
                }
            },
            |groups| {
                if !std::mem::take(&mut first) {
                    self.step = (self.step + self.interval_steps).min(last);
                    if let Err(e) = check_groups(self.comm, groups) {
                        return ControlFlow::Break(Err(e));
                    }
                    self.exchange_and_route(groups);
                }
                if self.step >= last {
                    return ControlFlow::Break(Ok(()));
                }
                ControlFlow::Continue((self.step, (self.step + self.interval_steps).min(last)))
            },
        );
        self.groups = groups;
        self.ranges = ranges;
        self.pool = pool;
        result
    }

    fn exchange_and_route(&mut self, groups: &mut [GroupRt]) {
        let local = collect_spikes(groups, &mut self.recorded);
        let all = spikes::exchange(self.comm, &local);
        if self.routes.is_empty() {
            return;
        }
        for s in &all {
            let lo = self.routes.partition_point(|r| r.0 < s.gid);
            for r in self.routes[lo..].iter().take_while(|r| r.0 == s.gid) {
                groups[r.1 as usize].arrivals.push((s.t, r.2, r.3));
            }
        }
    }

    /// All spikes of the network on root (sorted by (t, gid)); `None` on other ranks. Collective.
    pub fn gather_spikes(&self) -> Option<Vec<Spike>> {
        spikes::gather_to_root(self.comm, &self.recorded)
    }

    /// This rank's probe traces.
    pub fn traces(&mut self) -> Vec<Trace> {
        let mut out = self.traces.clone();
        for g in &self.groups {
            for ((_, ti), vals) in g.probes.iter().zip(&g.probe_values) {
                out[*ti].values = vals.clone();
            }
        }
        out
    }

    /// The LFP of electrode `e` on root: (times, values); `None` on other ranks. Collective.
    pub fn gather_lfp(&self, e: usize) -> Option<(Vec<f64>, Vec<f64>)> {
        let el = &self.electrodes[e];
        let n = self.groups.first().map_or(0, |g| g.lfp_values[e].len());
        let mut local = vec![ExactSum::default(); n];
        for g in &self.groups {
            for (acc, s) in local.iter_mut().zip(&g.lfp_values[e]) {
                acc.merge(*s);
            }
        }
        // Ranks without groups contribute nothing; agree on the sample count through the maximum.
        let words: Vec<[u64; 2]> = local.iter().map(|s| s.to_words()).collect();
        let gathered = self.comm.gatherv(0, &words)?;
        let (all, counts) = gathered;
        let n_samples = counts.iter().copied().max().unwrap_or(0);
        let mut total = vec![ExactSum::default(); n_samples];
        let mut off = 0;
        for c in counts {
            for (i, w) in all[off..off + c].iter().enumerate() {
                total[i].merge(ExactSum::from_words(*w));
            }
            off += c;
        }
        let dt_lfp = el.every as f64 * self.opts.sim.dt;
        let t = (0..n_samples).map(|i| i as f64 * dt_lfp).collect();
        Some((t, total.iter().map(|s| s.value()).collect()))
    }

    pub fn electrodes(&self) -> Vec<&LfpConfig> {
        self.electrodes.iter().map(|e| &e.config).collect()
    }
}

/// The first step after `s` (up to `end`) at which something is sampled.
fn next_sample_step(s: u64, end: u64, probe_every: u64, everies: &[u64], probes: bool, lfp: bool) -> u64 {
    let mut next = end;
    if probes {
        next = next.min((s / probe_every + 1) * probe_every);
    }
    if lfp {
        for &e in everies {
            next = next.min((s / e + 1) * e);
        }
    }
    next
}

/// Stop every rank if a group failed on any rank (first failure in gid order on this rank). Collective.
fn check_groups(comm: &dyn Communicator, groups: &mut [GroupRt]) -> Result<(), EngineError> {
    let local = match groups.iter_mut().find_map(|g| g.error.take()) {
        Some(e) => Err(e),
        None => Ok(()),
    };
    comm.agree(local)?;
    Ok(())
}

/// Move the groups' new spikes into `recorded` (sorted by (t, gid)) and return them.
fn collect_spikes(groups: &mut [GroupRt], recorded: &mut Vec<Spike>) -> Vec<Spike> {
    let mut local = Vec::new();
    for g in groups {
        for s in g.spikes.drain(..) {
            // A cell is one spike source (NEURON's one gid, one source): its first detector, or the artificial
            // cell itself.
            if s.source == 0 && (s.cell as usize) < g.gids.len() {
                local.push(Spike::new(g.gids[s.cell as usize], s.time));
            }
        }
    }
    spikes::sort_spikes(&mut local);
    recorded.extend_from_slice(&local);
    local
}

/// Take the probe and LFP samples of one group due at step `s`.
fn sample(g: &mut GroupRt, s: u64, probe_every: u64, everies: &[u64]) {
    if !g.probes.is_empty() && s % probe_every == 0 {
        for ((p, _), vals) in g.probes.iter().zip(g.probe_values.iter_mut()) {
            vals.push(g.group.read(p));
        }
    }
    if everies.is_empty() {
        return;
    }
    let Some(im) = g.group.membrane_currents() else { return };
    for (e, nodes) in g.lfp_nodes.iter().enumerate() {
        if s % everies[e] == 0 {
            let mut acc = ExactSum::default();
            for &(node, k) in nodes {
                acc.add(k * im[node as usize]);
            }
            g.lfp_values[e].push(acc);
        }
    }
}

/// What `variable` names at `section(x)` of a cell: `v`, `i_membrane`, `MECH.VAR` (a density mechanism's
/// variable there, e.g. `hh.m`) or `TARGET.VAR` (a point process's, by target index, e.g. `0.A`).
pub fn probe_at(section: usize, x: f64, variable: &str) -> Result<ProbeSpec, EngineError> {
    if !(0.0..=1.0).contains(&x) {
        return Err(EngineError::Network(format!("location x = {x}: must be within [0, 1]")));
    }
    let location = Location::new(section, x);
    Ok(match variable {
        "v" => ProbeSpec::Voltage { cell: 0, location },
        "i_membrane" => ProbeSpec::MembraneCurrent { cell: 0, location },
        other => {
            let (owner, var) = other.split_once('.').ok_or_else(|| {
                EngineError::Network(format!("variable {other:?}: expected v, i_membrane, MECH.VAR or TARGET.VAR"))
            })?;
            match owner.parse::<usize>() {
                Ok(t) => ProbeSpec::TargetState { cell: 0, target: t, variable: var.into() },
                Err(_) => ProbeSpec::DensityState { cell: 0, location, mechanism: owner.into(), variable: var.into() },
            }
        }
    })
}

fn with_cell(spec: &ProbeSpec, cell: usize) -> ProbeSpec {
    match spec.clone() {
        ProbeSpec::Voltage { location, .. } => ProbeSpec::Voltage { cell, location },
        ProbeSpec::MembraneCurrent { location, .. } => ProbeSpec::MembraneCurrent { cell, location },
        ProbeSpec::TargetState { target, variable, .. } => ProbeSpec::TargetState { cell, target, variable },
        ProbeSpec::DensityState { location, mechanism, variable, .. } => {
            ProbeSpec::DensityState { cell, location, mechanism, variable }
        }
    }
}

/// MiV's LFP coefficients of one cell (`lfp.py` as it runs, see `LfpConfig::miv_compat`), as (node, mV per
/// nA) pairs: MiV's per-segment coefficient applies to the current density 100 I / area (mA/cm2, I in nA).
#[allow(clippy::too_many_arguments)]
fn miv_lfp_nodes(
    cfg: &LfpConfig,
    miv: &lfp::MivLfpContext,
    gid: u64,
    soma: [f64; 3],
    cell: &miv_solvers::CableCell,
    c: usize,
    grp: &mut GroupRt,
    e: usize,
) {
    let draw = miv.draws.get(&gid).copied().unwrap_or(1.0);
    let scale = if dist3(soma, cfg.position) < cfg.max_e_dist {
        1.0
    } else if draw < cfg.fdst {
        1.0 / cfg.fdst
    } else {
        return;
    };
    let types: Vec<i32> = cell.morphology.sections.iter().map(|s| s.swc_type).collect();
    let order = lfp::miv_all_order(&types);
    let placed = cell.morphology.placed_points(&cell.nseg);
    // MiV writes segment j of every section into slot j of one vector per cell: the last section wins.
    let mut coeff = vec![0.0; order.iter().map(|&s| cell.nseg[s]).max().unwrap_or(0)];
    for &s in &order {
        let p3: Vec<[f64; 3]> = placed[s].iter().map(|p| [p.x, p.y, p.z]).collect();
        let arc = arc_lengths(&p3);
        let k = lfp::miv_section_coefficients(cfg, &p3, &arc, cell.nseg[s], |x| miv.area_at(x), scale);
        coeff[..k.len()].copy_from_slice(&k);
    }
    let comps = cell.compartments();
    for &s in &order {
        let nseg = cell.nseg[s];
        for (j, &kj) in coeff.iter().enumerate().take(nseg) {
            let x = (j as f64 + 0.5) / nseg as f64;
            let area = comps.area[comps.node_at(s, x) as usize];
            if let Some(node) = grp.group.node_at(c, Location::new(s, x)) {
                if area > 0.0 {
                    grp.lfp_nodes[e].push((node as u32, kj * 100.0 / area));
                }
            }
        }
    }
}

fn dist3(a: [f64; 3], b: [f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

/// MiV's soma point for LFP cell selection: the first 3-D point of the first soma section (else of the root).
fn lfp_soma_point(cell: &miv_solvers::CableCell) -> [f64; 3] {
    let placed = cell.morphology.placed_points(&cell.nseg);
    let s = cell.sections_of_type(1).first().copied().unwrap_or_else(|| cell.morphology.root());
    placed[s].first().map(|p| [p.x, p.y, p.z]).unwrap_or([0.0; 3])
}

fn arc_lengths(p: &[[f64; 3]]) -> Vec<f64> {
    let mut out = Vec::with_capacity(p.len());
    let mut acc = 0.0;
    for i in 0..p.len() {
        if i > 0 {
            let d = [p[i][0] - p[i - 1][0], p[i][1] - p[i - 1][1], p[i][2] - p[i - 1][2]];
            acc += (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
        }
        out.push(acc);
    }
    out
}

/// `interval / dt` as a whole number of steps, if it is one (within 1e-6 of a step).
pub fn steps_of(interval: f64, dt: f64) -> Option<u64> {
    let k = interval / dt;
    let r = k.round();
    (r >= 1.0 && (k - r).abs() < 1e-6).then_some(r as u64)
}

#[cfg(test)]
mod tests {
    use super::{automatic_groups, cut_by_cost, thread_ranges, MAX_CELLS_PER_GROUP};

    #[test]
    fn automatic_groups_keep_the_cost_of_a_group_bounded() {
        // Busyring cells (39 nodes, one synapse): the 64-cell cap decides, as before the cost cap.
        let by = vec![5.0 * 39.0 + 1.0; 1000];
        assert_eq!(automatic_groups(&by, 1), 12);
        assert_eq!(cut_by_cost(&(0..1000).collect::<Vec<u64>>(), &by, 12, MAX_CELLS_PER_GROUP).len(), 16);
        // Cells with many synapses (the seed network's): the cost cap decides, whatever the thread count.
        let rc = vec![5.0 * 100.0 + 1000.0; 337];
        assert_eq!(automatic_groups(&rc, 1), 31);
        assert_eq!(automatic_groups(&rc, 2), 31);
        assert_eq!(automatic_groups(&rc, 8), 64);
        let cut = cut_by_cost(&(0..337).collect::<Vec<u64>>(), &rc, 31, MAX_CELLS_PER_GROUP);
        // A group closes at its share of the cost, so it may pass the cap by at most its last cell.
        assert_eq!(cut.len(), 31);
        assert!(
            cut.iter().all(|g| g.len() as f64 * 1500.0 <= 16384.0 + 1500.0),
            "{:?}",
            cut.iter().map(Vec::len).collect::<Vec<_>>()
        );
    }

    fn sizes(costs: &[f64], groups: usize, max_cells: usize) -> Vec<usize> {
        let gids: Vec<u64> = (0..costs.len() as u64).collect();
        let cut = cut_by_cost(&gids, costs, groups, max_cells);
        assert_eq!(cut.concat(), gids, "every gid once, in order");
        cut.iter().map(Vec::len).collect()
    }

    #[test]
    fn thread_ranges_cover_the_groups_in_order_with_their_share_of_the_cost() {
        assert_eq!(thread_ranges(&[1.0; 10], 2), vec![(0, 5), (5, 10)]);
        assert_eq!(thread_ranges(&[4.0, 1.0, 1.0, 1.0, 1.0], 2), vec![(0, 1), (1, 5)]);
        assert_eq!(thread_ranges(&[1.0; 3], 4), vec![(0, 1), (1, 2), (2, 3)]);
        assert_eq!(thread_ranges(&[9.0, 0.0, 0.0], 3), vec![(0, 1), (1, 2), (2, 3)]);
        assert_eq!(thread_ranges(&[], 2), vec![(0, 0)]);
    }

    #[test]
    fn groups_are_cut_by_cost_not_by_count() {
        assert_eq!(sizes(&[1.0; 10], 5, 64), [2, 2, 2, 2, 2]);
        // Cheap cells (artificial) share a group; the costly ones are spread out.
        assert_eq!(sizes(&[0.0, 0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 10.0], 4, 64), [5, 1, 1, 1]);
        // Full groups add groups.
        assert_eq!(sizes(&[1.0; 10], 1, 4), [4, 3, 3]);
        // Fewer cells than groups: one each.
        assert_eq!(sizes(&[1.0, 5.0, 1.0], 8, 64), [1, 1, 1]);
        assert_eq!(sizes(&[2.0], 8, 64), [1]);
    }
}
