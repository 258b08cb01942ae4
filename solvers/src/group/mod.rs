//! A cell group: many cells simulated together with fixed-step NEURON semantics. All nodes of all cells live in
//! one set of arrays (laid out by tree depth across cells, see `build`), every mechanism type holds its
//! instances of all cells in one structure-of-arrays object, and the group owns the event queue of its cells.
//! A cell's arithmetic does not depend on the other cells of the group: mechanism types run in catalogue order,
//! instances of one cell keep their placement order, the relative order of a cell's nodes is fixed, and events
//! are ordered by (time, connection key).
//!
//! One step (NEURON `nrn_fixed_step`): deliver the events due (rule in [`DeliveryRule`]); at t + dt/2 evaluate
//! all currents and conductances; add capacitance and axial terms; Hines solve for dv; v += dv (backward Euler)
//! or v += 2 dv (Crank-Nicolson, NEURON `secondorder = 2`, which also moves ion currents to mid-step); at
//! t + dt advance the mechanism states with the new v; test spike thresholds (rule in [`SpikeRule`]).

mod build;
mod queue;

use crate::cable::{matrix_area, solve_tree_and_update};
use crate::cell::{CellDescription, Location};
use crate::compartments::SectionNodes;
use crate::error::SolverError;
use crate::ion::IonData;
use crate::mechanism::{Catalogue, Cx, EventCx, Mechanism, MechanismKind, Outbox, Outgoing};
use queue::{EventQueue, Queued};
use std::collections::{HashMap, HashSet};
use std::ops::Range;

/// Time integration of the cable equation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Fully implicit (NEURON `secondorder = 0`), first order.
    BackwardEuler,
    /// NEURON's `secondorder = 2`: implicit half step to t + dt/2, then v(t + dt) = 2 v(t + dt/2) - v(t).
    /// Zero-area nodes are algebraic; their values at whole steps follow the same formula (see docs).
    CrankNicolson,
}

/// When a threshold crossing counts as a spike, and at what time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpikeRule {
    /// NEURON fixed step: after each step, a detector whose v is above threshold (v > thr) and was not above
    /// at the previous test fires at the time of the end of the step (a multiple of dt). It re-arms when
    /// v <= thr. Also tested once at initialisation (time 0).
    Grid,
    /// Arbor: a step with v_prev < thr <= v fires at the linearly interpolated crossing time.
    Interpolated,
}

/// At which step an event due at time te is delivered (at the start of the step beginning at t).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryRule {
    /// NEURON fixed step: te <= t + dt/2 (round to the nearest step start).
    Nearest,
    /// Arbor: te < t + dt (the step containing te).
    Floor,
}

/// Settings shared by every cell of a group.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOptions {
    pub dt: f64,
    pub method: Method,
    pub celsius: f64,
    pub spike_rule: SpikeRule,
    pub delivery_rule: DeliveryRule,
    /// Compute the membrane current of every node at each step (NEURON's `i_membrane_` / fast_imem).
    pub membrane_current: bool,
    /// Keep node positions and path distances for [`CellGroup::node_position`] (costs 32 bytes per node).
    pub geometry: bool,
    /// Mechanism globals: (mechanism, global, value), e.g. ("hh", "usetable", 1.0).
    pub globals: Vec<(String, String, f64)>,
}

impl SimOptions {
    /// NEURON's default time step (ms), miv-config's [`miv_config::DEFAULT_DT`].
    pub const DEFAULT_DT: f64 = miv_config::DEFAULT_DT;
    /// NEURON's default temperature (degC), miv-config's [`miv_config::DEFAULT_CELSIUS`].
    pub const DEFAULT_CELSIUS: f64 = miv_config::DEFAULT_CELSIUS;
}

impl From<miv_config::MethodName> for Method {
    fn from(m: miv_config::MethodName) -> Method {
        match m {
            miv_config::MethodName::BackwardEuler => Method::BackwardEuler,
            miv_config::MethodName::CrankNicolson => Method::CrankNicolson,
        }
    }
}

impl From<miv_config::SpikeRuleName> for SpikeRule {
    fn from(r: miv_config::SpikeRuleName) -> SpikeRule {
        match r {
            miv_config::SpikeRuleName::Neuron => SpikeRule::Grid,
            miv_config::SpikeRuleName::Interpolated => SpikeRule::Interpolated,
        }
    }
}

impl From<miv_config::DeliveryRuleName> for DeliveryRule {
    fn from(r: miv_config::DeliveryRuleName) -> DeliveryRule {
        match r {
            miv_config::DeliveryRuleName::Neuron => DeliveryRule::Nearest,
            miv_config::DeliveryRuleName::Arbor => DeliveryRule::Floor,
        }
    }
}

impl Default for SimOptions {
    fn default() -> SimOptions {
        SimOptions {
            dt: SimOptions::DEFAULT_DT,
            method: Method::BackwardEuler,
            celsius: SimOptions::DEFAULT_CELSIUS,
            spike_rule: SpikeRule::Grid,
            delivery_rule: DeliveryRule::Nearest,
            membrane_current: false,
            geometry: false,
            globals: vec![],
        }
    }
}

/// An event target of the group: a point process or an artificial cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetId(pub u32);

/// A connection (NEURON NetCon) onto a target, owning its weight vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u32);

/// An event arriving on a connection at `time` (ms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Event {
    pub time: f64,
    pub connection: ConnectionId,
}

/// A spike of a cell of the group. `source` is the detector index within the cell (0 for an artificial cell).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spike {
    pub cell: u32,
    pub source: u32,
    pub time: f64,
}

/// Heap bytes of a group by what holds them ([`CellGroup::memory`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupMemory {
    /// Node arrays (voltages, matrix, tree, optional geometry and membrane current).
    pub nodes: usize,
    /// Density mechanisms (channels).
    pub density: usize,
    /// Ion concentrations and currents.
    pub ions: usize,
    /// Point processes and artificial cells (synapses), with their target tables.
    pub point: usize,
    /// Connection tables: target, ordering key and weights of every connection.
    pub connections: usize,
    /// Events in flight (queue, self-events) and spike detectors.
    pub events: usize,
}

impl GroupMemory {
    pub fn total(&self) -> usize {
        self.nodes + self.density + self.ions + self.point + self.connections + self.events
    }
}

impl std::ops::AddAssign for GroupMemory {
    fn add_assign(&mut self, o: GroupMemory) {
        self.nodes += o.nodes;
        self.density += o.density;
        self.ions += o.ions;
        self.point += o.point;
        self.connections += o.connections;
        self.events += o.events;
    }
}

/// A readable quantity, resolved by [`CellGroup::probe`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Probe {
    /// Membrane potential of a node (mV).
    Voltage { node: u32 },
    /// Membrane current of a node (nA); requires `SimOptions::membrane_current`.
    MembraneCurrent { node: u32 },
    /// A state or assigned variable of a mechanism instance.
    State { mechanism: u32, instance: u32, index: u32 },
}

/// What can be probed, in the terms of a cell description.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeSpec {
    Voltage {
        cell: usize,
        location: Location,
    },
    MembraneCurrent {
        cell: usize,
        location: Location,
    },
    /// Variable of a point process (by its target index within the cell) or of an artificial cell (target 0).
    TargetState {
        cell: usize,
        target: usize,
        variable: String,
    },
    /// Variable of a density mechanism at the segment containing a location.
    DensityState {
        cell: usize,
        location: Location,
        mechanism: String,
        variable: String,
    },
}

struct MechSlot {
    mech: Box<dyn Mechanism>,
    ion_ids: Vec<usize>,
    kind: MechanismKind,
    /// `mech.batches_events()`, and the connection events of the step being delivered: (instance, connection).
    batch: bool,
    pending: Vec<(u32, u32)>,
    /// `mech.info().weights`: the length of a connection's weight vector.
    weights: usize,
    /// `mech.weights_read_only()`: connections with equal weight vectors share one row.
    shares_weights: bool,
    /// The shared row of the last connection made onto this mechanism (`u32::MAX`: none, or after
    /// `shrink_to_fit`).
    last_row: u32,
}

#[derive(Debug, Clone, Copy)]
struct Target {
    mech: u32,
    instance: u32,
}

#[derive(Debug, Clone, Copy)]
struct DetectorState {
    cell: u32,
    source: u32,
    node: u32,
    threshold: f64,
    above: bool,
    v_prev: f64,
}

/// A self-event (NMODL `net_send`) waiting in the queue; `connection` is the connection whose event sent it
/// (its weights are NET_RECEIVE's arguments again), or `NO_CONNECTION`.
#[derive(Debug, Clone, Copy)]
struct SelfEvent {
    mech: u32,
    instance: u32,
    flag: f64,
    connection: u32,
}

const NO_CONNECTION: u32 = u32::MAX;
/// Queue item bit of a self-event (the rest is its index in `CellGroup::self_events`); connection ids are
/// below it.
const SELF_EVENT: u32 = 1 << 31;

thread_local! {
    /// `rhs` and `d` lent to the group this thread is stepping (see `CellGroup::lend_scratch`).
    static SCRATCH: std::cell::RefCell<(Vec<f64>, Vec<f64>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Many cells, simulated together. See the module comment.
pub struct CellGroup {
    opts: SimOptions,
    step: u64,
    // Node arrays in layout order: the roots of all cells first, then by tree depth.
    v: Vec<f64>,
    /// Lent by the thread during `initialize` and `advance` only (`lend_scratch`).
    rhs: Vec<f64>,
    d: Vec<f64>,
    d_static: Vec<f64>,
    a: Vec<f64>,
    b: Vec<f64>,
    parent: Vec<u32>,
    /// Membrane area per node (um2, 0 at zero-area nodes).
    area: Vec<f64>,
    /// The Hines solve's levels: first node of every tree depth, then the node count.
    levels: crate::cable::Levels,
    /// Group node of every cell-local node; cell c's nodes are `node_map[cell_node_offset[c]..[c+1]]`.
    node_map: Vec<u32>,
    cell_node_offset: Vec<u32>,
    /// Every cable cell's section table (cell-local node numbers), cell c's at `cell_section_offset[c]..`.
    sections: Vec<SectionNodes>,
    cell_section_offset: Vec<u32>,
    /// Nodes with membrane over all cells.
    compartments: usize,
    // Optional node data.
    imem: Option<MembraneCurrent>,
    /// The step being taken is the last of an `advance` call, where the membrane current is read (LFP, probes):
    /// `imem` is computed only then. True outside `advance`.
    imem_now: bool,
    position: Vec<[f64; 3]>,
    distance: Vec<f64>,
    // Mechanisms and ions.
    mechs: Vec<MechSlot>,
    ions: Vec<IonData>,
    ion_init: Vec<(Vec<f64>, Vec<f64>, Vec<f64>)>,
    // Events.
    targets: Vec<Target>,
    cell_targets: Vec<Range<u32>>,
    /// Per connection: its target, the low 32 bits of its key and the start of its weight vector in `rows`.
    conn_target: Vec<u32>,
    conn_key: Vec<u32>,
    conn_row: Vec<u32>,
    /// The high 32 bits of the keys: (first connection, high bits) of each run of connections that share them.
    key_runs: Vec<(u32, u32)>,
    /// Weight vectors, each as long as its mechanism's (`MechSlot::weights`). Connections onto a mechanism
    /// whose NET_RECEIVE does not write its arguments share the vectors of equal weights (`row_index` finds
    /// them while connecting); the others own theirs. Connections in `own_rows` own theirs too (copied by
    /// `weights_mut`).
    rows: Vec<f64>,
    row_index: HashMap<Vec<u64>, u32>,
    row_key: Vec<u64>,
    own_rows: HashSet<u32>,
    queue: EventQueue,
    /// Self-events in the queue, by the index in their queue item; `free_self_events` lists unused slots.
    self_events: Vec<SelfEvent>,
    free_self_events: Vec<u32>,
    /// Creation counter of self-events.
    seq: u64,
    /// Instances and weight vectors of one batch of events (see `deliver_batch`).
    batch_instances: Vec<u32>,
    batch_weights: Vec<f64>,
    outbox: Outbox,
    // Spikes.
    detectors: Vec<DetectorState>,
    cell_detectors: Vec<Range<u32>>,
    /// Per mechanism slot: owning cell of each point-process or artificial-cell instance.
    owner: Vec<Vec<u32>>,
    pending_spikes: Vec<Spike>,
}

struct MembraneCurrent {
    el_rhs: Vec<f64>,
    el_d: Vec<f64>,
    ionic: Vec<f64>,
    gmem: Vec<f64>,
    cap: Vec<f64>,
    value: Vec<f64>,
}

fn kernel_error(m: &dyn Mechanism, phase: &'static str, time: f64, message: String) -> SolverError {
    SolverError::Kernel { mechanism: m.info().name.clone(), phase, time, message }
}

fn err_cell(cell: usize, what: String) -> SolverError {
    SolverError::Cell { cell, what }
}

impl CellGroup {
    /// Build a group. Cell i of `cells` becomes group cell i; targets and detectors are numbered per cell in
    /// placement order. Errors name the cell and what is wrong.
    pub fn new(cells: &[CellDescription], catalogue: &Catalogue, opts: SimOptions) -> Result<CellGroup, SolverError> {
        build::build(cells, catalogue, opts)
    }

    pub fn options(&self) -> &SimOptions {
        &self.opts
    }

    pub fn num_cells(&self) -> usize {
        self.cell_targets.len()
    }

    pub fn num_nodes(&self) -> usize {
        self.v.len()
    }

    /// Nodes with membrane (NEURON's compartments, the sum of nseg) over all cells.
    pub fn num_compartments(&self) -> usize {
        self.compartments
    }

    /// Current time (ms).
    pub fn time(&self) -> f64 {
        self.step as f64 * self.opts.dt
    }

    /// Group node indices of a cell in the cell's own order (its root first, then per section in pre-order
    /// its segment centres and its end node, as [`crate::Compartments`]); empty for an artificial cell.
    pub fn cell_nodes(&self, cell: usize) -> &[u32] {
        &self.node_map[self.cell_node_offset[cell] as usize..self.cell_node_offset[cell + 1] as usize]
    }

    /// Targets of a cell: its point processes in placement order, or the artificial cell itself.
    pub fn targets(&self, cell: usize) -> Range<TargetId> {
        let r = &self.cell_targets[cell];
        TargetId(r.start)..TargetId(r.end)
    }

    /// Target `index` of a cell.
    pub fn target(&self, cell: usize, index: usize) -> Option<TargetId> {
        let r = &self.cell_targets[cell];
        let t = r.start + index as u32;
        (t < r.end).then_some(TargetId(t))
    }

    /// Number of spike sources of a cell (its detectors; 1 for an artificial cell).
    pub fn num_sources(&self, cell: usize) -> usize {
        match self.cell_detectors[cell].len() {
            0 if self.cell_nodes(cell).is_empty() => 1,
            n => n,
        }
    }

    /// Add a connection onto `target` with its weight vector (NET_RECEIVE arguments; missing trailing weights
    /// are 0). `key` orders simultaneous events on one cell (give every connection a distinct key, e.g. from
    /// source gid and connection index, to make results independent of how cells are grouped).
    pub fn connect(&mut self, target: TargetId, weights: &[f64], key: u64) -> Result<ConnectionId, SolverError> {
        let t = *self
            .targets
            .get(target.0 as usize)
            .ok_or_else(|| SolverError::Invalid(format!("no target {}", target.0)))?;
        let slot = &self.mechs[t.mech as usize];
        let (nw, shares) = (slot.weights, slot.shares_weights);
        if nw == 0 {
            return Err(SolverError::Invalid(format!("mechanism {:?} takes no events", slot.mech.info().name)));
        }
        if weights.len() > nw {
            return Err(SolverError::Invalid(format!(
                "mechanism {:?} takes {nw} weight(s), {} given",
                slot.mech.info().name,
                weights.len()
            )));
        }
        if self.conn_target.len() >= SELF_EVENT as usize {
            return Err(SolverError::Invalid(format!("a group takes at most {SELF_EVENT} connections")));
        }
        let padded = weights.iter().copied().chain(std::iter::repeat(0.0)).take(nw);
        let last = self.mechs[t.mech as usize].last_row;
        let row = if shares
            && last != u32::MAX
            && padded
                .clone()
                .map(f64::to_bits)
                .eq(self.rows[last as usize..last as usize + nw].iter().map(|x| x.to_bits()))
        {
            // The vector of this mechanism's previous connection: no lookup.
            last
        } else if shares {
            let mut k = std::mem::take(&mut self.row_key);
            k.clear();
            k.push(t.mech as u64);
            k.extend(padded.clone().map(f64::to_bits));
            let r = match self.row_index.get(k.as_slice()) {
                Some(&r) => Ok(r),
                None => self.new_row(padded).inspect(|&r| {
                    self.row_index.insert(k.clone(), r);
                }),
            };
            self.row_key = k;
            r?
        } else {
            self.new_row(padded)?
        };
        if shares {
            self.mechs[t.mech as usize].last_row = row;
        }
        let id = self.conn_target.len() as u32;
        self.conn_target.push(target.0);
        self.conn_key.push(key as u32);
        self.conn_row.push(row);
        let hi = (key >> 32) as u32;
        if self.key_runs.last().is_none_or(|r| r.1 != hi) {
            self.key_runs.push((id, hi));
        }
        Ok(ConnectionId(id))
    }

    fn new_row(&mut self, w: impl Iterator<Item = f64>) -> Result<u32, SolverError> {
        let r = u32::try_from(self.rows.len())
            .map_err(|_| SolverError::Invalid("a group takes at most 2^32 weights in all".into()))?;
        self.rows.extend(w);
        Ok(r)
    }

    /// Reserve room for `n` more connections (the tables then hold no spare capacity when the count is known).
    pub fn reserve_connections(&mut self, n: usize) {
        self.conn_target.reserve_exact(n);
        self.conn_key.reserve_exact(n);
        self.conn_row.reserve_exact(n);
    }

    /// Release spare capacity of the connection tables and the index of shared weight vectors (call when all
    /// connections are made; connections made later share vectors only among themselves).
    pub fn shrink_to_fit(&mut self) {
        self.conn_target.shrink_to_fit();
        self.conn_key.shrink_to_fit();
        self.conn_row.shrink_to_fit();
        self.key_runs.shrink_to_fit();
        self.rows.shrink_to_fit();
        self.row_index = HashMap::new();
        for m in &mut self.mechs {
            m.last_row = u32::MAX;
        }
    }

    /// The ordering key of a connection (given to [`connect`](Self::connect)).
    fn key(&self, c: u32) -> u64 {
        let r = self.key_runs.partition_point(|&(first, _)| first <= c) - 1;
        (self.key_runs[r].1 as u64) << 32 | self.conn_key[c as usize] as u64
    }

    /// Each mechanism type in the group: its name, its number of instances and the arithmetic of one
    /// instance's step, where the mechanism counts it (`miv bench floor`).
    pub fn mechanism_census(&self) -> impl Iterator<Item = (&str, usize, Option<crate::StepArithmetic>)> + '_ {
        self.mechs.iter().map(|m| (m.mech.info().name.as_str(), m.mech.len(), m.mech.step_arithmetic()))
    }

    /// Heap memory held by the group (bytes): node arrays, mechanisms, ions, connections, queue.
    pub fn heap_bytes(&self) -> usize {
        self.memory().total()
    }

    /// [`heap_bytes`](Self::heap_bytes) by what holds it.
    pub fn memory(&self) -> GroupMemory {
        use crate::mechanism::vec_bytes as b;
        let nodes =
            b(&self.v) + b(&self.rhs) + b(&self.d) + b(&self.d_static) + b(&self.a) + b(&self.b) + b(&self.parent);
        let nodes = nodes + b(&self.area) + b(&self.node_map) + b(&self.cell_node_offset) + b(&self.sections);
        let nodes = nodes + b(&self.cell_section_offset) + b(&self.position) + b(&self.distance);
        let nodes = nodes
            + self
                .imem
                .as_ref()
                .map_or(0, |m| b(&m.el_rhs) + b(&m.el_d) + b(&m.ionic) + b(&m.gmem) + b(&m.cap) + b(&m.value));
        let (mut density, mut point) = (b(&self.mechs), 0);
        for m in &self.mechs {
            let bytes = m.mech.heap_bytes() + b(&m.ion_ids);
            match m.kind {
                MechanismKind::Density => density += bytes,
                _ => point += bytes,
            }
        }
        let point = point + self.owner.iter().map(b).sum::<usize>() + b(&self.targets) + b(&self.cell_targets);
        let ions = self.ions.iter().map(|i| i.heap_bytes()).sum::<usize>()
            + self.ion_init.iter().map(|(e, ci, co)| b(e) + b(ci) + b(co)).sum::<usize>();
        let connections = b(&self.conn_target) + b(&self.conn_key) + b(&self.conn_row) + b(&self.key_runs);
        let connections = connections + b(&self.rows) + self.own_rows.capacity() * 8;
        let connections = connections
            + self.row_index.keys().map(b).sum::<usize>()
            + self.row_index.capacity() * (std::mem::size_of::<(Vec<u64>, u32)>() + 1);
        let events = self.queue.heap_bytes()
            + b(&self.self_events)
            + b(&self.free_self_events)
            + b(&self.outbox.items)
            + b(&self.batch_instances)
            + b(&self.batch_weights)
            + b(&self.detectors)
            + b(&self.cell_detectors)
            + b(&self.pending_spikes);
        GroupMemory { nodes, density, ions, point, connections, events }
    }

    /// Weights of a connection.
    pub fn weights(&self, c: ConnectionId) -> &[f64] {
        &self.rows[self.weights_range(c.0)]
    }

    /// Weights of a connection to change (a shared weight vector is first copied for this connection alone).
    pub fn weights_mut(&mut self, c: ConnectionId) -> &mut [f64] {
        let r = self.weights_range(c.0);
        let t = self.targets[self.conn_target[c.0 as usize] as usize];
        if self.mechs[t.mech as usize].shares_weights && self.own_rows.insert(c.0) {
            let start = self.rows.len();
            self.rows.extend_from_within(r.clone());
            self.conn_row[c.0 as usize] = start as u32;
            return &mut self.rows[start..start + r.len()];
        }
        &mut self.rows[r]
    }

    fn weights_range(&self, c: u32) -> Range<usize> {
        let t = self.targets[self.conn_target[c as usize] as usize];
        let start = self.conn_row[c as usize] as usize;
        start..start + self.mechs[t.mech as usize].weights
    }

    /// Attach an array to a target, e.g. ("times", ...) of a `VecStim`.
    pub fn set_target_array(&mut self, target: TargetId, name: &str, values: &[f64]) -> Result<(), SolverError> {
        let t = self.targets[target.0 as usize];
        self.mechs[t.mech as usize].mech.set_array(t.instance as usize, name, values).map_err(SolverError::Invalid)
    }

    /// Key the random stream of a target that draws random numbers (e.g. a noisy `NetStim`); derive the key
    /// from (seed, purpose, gid) so that results do not depend on ranks or threads.
    pub fn set_target_random_stream(&mut self, target: TargetId, key: [u32; 4]) -> Result<(), SolverError> {
        let t = self.targets[target.0 as usize];
        self.mechs[t.mech as usize].mech.set_random_stream(t.instance as usize, key).map_err(SolverError::Invalid)
    }

    /// Resolve a probe.
    pub fn probe(&self, spec: &ProbeSpec) -> Result<Probe, SolverError> {
        let node_of = |cell: usize, loc: &Location| -> Result<u32, SolverError> {
            self.node_of(cell, loc)
                .ok_or_else(|| err_cell(cell, format!("no node at section {} x {}", loc.section, loc.x)))
        };
        match spec {
            ProbeSpec::Voltage { cell, location } => Ok(Probe::Voltage { node: node_of(*cell, location)? }),
            ProbeSpec::MembraneCurrent { cell, location } => {
                if self.imem.is_none() {
                    return Err(SolverError::Option(
                        "membrane current probes need SimOptions::membrane_current".into(),
                    ));
                }
                Ok(Probe::MembraneCurrent { node: node_of(*cell, location)? })
            }
            ProbeSpec::TargetState { cell, target, variable } => {
                let t = self.target(*cell, *target).ok_or_else(|| err_cell(*cell, format!("no target {target}")))?;
                let t = self.targets[t.0 as usize];
                let info = self.mechs[t.mech as usize].mech.info();
                let index = info
                    .state_index(variable)
                    .ok_or_else(|| err_cell(*cell, format!("{} has no variable {variable:?}", info.name)))?;
                Ok(Probe::State { mechanism: t.mech, instance: t.instance, index: index as u32 })
            }
            ProbeSpec::DensityState { cell, location, mechanism, variable } => {
                let node = node_of(*cell, location)?;
                let slot = self
                    .mechs
                    .iter()
                    .position(|m| m.mech.info().name == *mechanism)
                    .ok_or_else(|| err_cell(*cell, format!("no mechanism {mechanism:?} in this group")))?;
                let m = &self.mechs[slot].mech;
                let instance = (0..m.len()).find(|&i| m.instance_node(i) == node).ok_or_else(|| {
                    err_cell(
                        *cell,
                        format!("{mechanism} is not inserted at section {} x {}", location.section, location.x),
                    )
                })?;
                let info = self.mechs[slot].mech.info();
                let index = info
                    .state_index(variable)
                    .ok_or_else(|| err_cell(*cell, format!("{} has no variable {variable:?}", info.name)))?;
                Ok(Probe::State { mechanism: slot as u32, instance: instance as u32, index: index as u32 })
            }
        }
    }

    /// Current value of a probe.
    pub fn read(&self, p: &Probe) -> f64 {
        match *p {
            Probe::Voltage { node } => self.v[node as usize],
            Probe::MembraneCurrent { node } => self.imem.as_ref().map_or(f64::NAN, |m| m.value[node as usize]),
            Probe::State { mechanism, instance, index } => {
                self.mechs[mechanism as usize].mech.state(instance as usize, index as usize)
            }
        }
    }

    /// Set what a probe reads (NEURON's `sec(x).v = ...` or `sec(x).m_hh = ...` between runs): a node's
    /// membrane potential or a mechanism variable. Membrane currents are computed and cannot be set.
    pub fn write(&mut self, p: &Probe, value: f64) -> Result<(), SolverError> {
        match *p {
            Probe::Voltage { node } => {
                self.v[node as usize] = value;
                Ok(())
            }
            Probe::MembraneCurrent { .. } => {
                Err(SolverError::Invalid("the membrane current is computed and cannot be set".into()))
            }
            Probe::State { mechanism, instance, index } => self.mechs[mechanism as usize]
                .mech
                .set_state(instance as usize, index as usize, value)
                .map_err(SolverError::Invalid),
        }
    }

    /// The target a connection delivers to.
    pub fn connection_target(&self, c: ConnectionId) -> Option<TargetId> {
        self.conn_target.get(c.0 as usize).map(|&t| TargetId(t))
    }

    fn node_of(&self, cell: usize, loc: &Location) -> Option<u32> {
        let (s0, s1) = (*self.cell_section_offset.get(cell)? as usize, self.cell_section_offset[cell + 1] as usize);
        let s = self.sections[s0..s1].get(loc.section)?;
        Some(self.cell_nodes(cell)[build::local_node(s, loc.x) as usize])
    }

    /// Group node index of `section(x)` of a cable cell (NEURON `node_exact`).
    pub fn node_at(&self, cell: usize, location: Location) -> Option<usize> {
        self.node_of(cell, &location).map(|n| n as usize)
    }

    /// Membrane potential of every node.
    pub fn voltages(&self) -> &[f64] {
        &self.v
    }

    /// Membrane area of every node (um2; 0 at zero-area nodes).
    pub fn node_areas(&self) -> &[f64] {
        &self.area
    }

    /// Membrane current of every node (nA, outward positive, capacitive + ionic, no electrode currents), if
    /// enabled in the options.
    pub fn membrane_currents(&self) -> Option<&[f64]> {
        self.imem.as_ref().map(|m| m.value.as_slice())
    }

    /// 3-D position of a node (um), if `SimOptions::geometry`.
    pub fn node_position(&self, node: usize) -> Option<[f64; 3]> {
        self.position.get(node).copied()
    }

    /// Path distance of a node from its cell's root (um), if `SimOptions::geometry`.
    pub fn node_distance(&self, node: usize) -> Option<f64> {
        self.distance.get(node).copied()
    }

    /// NEURON `finitialize(v_init)`: t = 0, v = v_init everywhere, ion values back to their initial values
    /// and reversal potentials set to the Nernst potential where a mechanism uses a concentration (see
    /// [`crate::ion`]), INITIAL of every mechanism, connection weights initialised, events due at t <= 0 delivered, currents
    /// evaluated once (for the membrane current), and spike detectors tested at t = 0.
    pub fn initialize(&mut self, v_init: f64) -> Result<(), SolverError> {
        self.lend_scratch();
        let r = self.initialize_with_scratch(v_init);
        self.return_scratch();
        r
    }

    fn initialize_with_scratch(&mut self, v_init: f64) -> Result<(), SolverError> {
        self.step = 0;
        self.queue.clear();
        self.self_events.clear();
        self.free_self_events.clear();
        self.seq = 0;
        self.pending_spikes.clear();
        self.v.fill(v_init);
        for (ion, (erev, ci, co)) in self.ions.iter_mut().zip(&self.ion_init) {
            ion.erev.copy_from_slice(erev);
            ion.conc_in.copy_from_slice(ci);
            ion.conc_out.copy_from_slice(co);
            ion.cur.fill(0.0);
            ion.dcurdv.fill(0.0);
            ion.init_nernst(self.opts.celsius);
        }
        for k in 0..self.mechs.len() {
            self.with_cx(k, 0.0, "INITIAL", |m, cx| m.initialize(cx))?;
            self.drain_outbox(k as u32, NO_CONNECTION);
        }
        for c in 0..self.conn_target.len() {
            let t = self.targets[self.conn_target[c] as usize];
            let r = self.weights_range(c as u32);
            let m = &mut self.mechs[t.mech as usize].mech;
            m.init_weights(t.instance as usize, &mut self.rows[r])
                .map_err(|e| kernel_error(m.as_ref(), "NET_RECEIVE INITIAL", 0.0, e))?;
        }
        // Initialisation may have changed shared rows (clearing weights[1..]): a connection made from now on
        // must not find them under the values they were made with.
        self.row_index.clear();
        for m in &mut self.mechs {
            m.last_row = u32::MAX;
        }
        self.deliver(0.0, true)?;
        self.evaluate_currents(0.0)?;
        if let Some(m) = self.imem.as_mut() {
            // At initialisation NEURON reports (rhs + ionic) * area / 100: the axial plus stimulus current.
            let mut rhs = self.rhs.clone();
            for i in self.levels.n_roots()..self.v.len() {
                let p = self.parent[i] as usize;
                let dv = self.v[p] - self.v[i];
                rhs[i] -= self.b[i] * dv;
                rhs[p] += self.a[i] * dv;
            }
            for i in 0..self.v.len() {
                m.value[i] = (rhs[i] + m.ionic[i]) * matrix_area(self.area[i]) * 0.01;
            }
        }
        for det in self.detectors.iter_mut() {
            det.above = false;
            det.v_prev = self.v[det.node as usize];
        }
        if self.opts.spike_rule == SpikeRule::Grid {
            self.test_thresholds();
        }
        Ok(())
    }

    /// Queue events (they may be for any time not before the current step).
    pub fn enqueue(&mut self, events: &[Event]) {
        for e in events {
            let c = e.connection.0;
            self.queue.push(Queued { time: e.time, key: self.key(c), seq: 0, item: c });
        }
    }

    /// Queue the events of one spike at `time` on consecutive connections: connection `first + k` receives an
    /// event at `time + delays[k]` (the engine numbers a source's connections into a group consecutively).
    pub fn enqueue_spike(&mut self, time: f64, first: ConnectionId, delays: &[f64]) {
        let first = first.0;
        let mut r = self.key_runs.partition_point(|&(f, _)| f <= first) - 1;
        let mut run_end = self.key_runs.get(r + 1).map_or(u32::MAX, |x| x.0);
        for (k, &d) in delays.iter().enumerate() {
            let c = first + k as u32;
            while c >= run_end {
                r += 1;
                run_end = self.key_runs.get(r + 1).map_or(u32::MAX, |x| x.0);
            }
            let key = (self.key_runs[r].1 as u64) << 32 | self.conn_key[c as usize] as u64;
            self.queue.push(Queued { time: time + d, key, seq: 0, item: c });
        }
    }

    /// Advance to `until` (ms, rounded to whole steps): events in `events` are queued first (the vector is
    /// drained), spikes of this interval are appended to `spikes` in time order per step.
    pub fn advance(&mut self, until: f64, events: &mut Vec<Event>, spikes: &mut Vec<Spike>) -> Result<(), SolverError> {
        self.enqueue(events);
        events.clear();
        spikes.append(&mut self.pending_spikes);
        let last = (until / self.opts.dt + 1e-6).floor();
        self.lend_scratch();
        while (self.step as f64) < last {
            self.imem_now = (self.step + 1) as f64 >= last;
            let r = self.step_once();
            self.imem_now = true;
            if let Err(e) = r {
                self.return_scratch();
                return Err(e);
            }
            spikes.append(&mut self.pending_spikes);
        }
        self.return_scratch();
        Ok(())
    }

    /// Borrow `rhs` and `d` from this thread until `return_scratch`. They are scratch of one step (every step
    /// starts by filling them), so the groups a thread steps share one pair instead of holding 16 bytes per
    /// node each; between `initialize`/`advance` calls the group's own vectors are empty.
    fn lend_scratch(&mut self) {
        let n = self.v.len();
        let (mut rhs, mut d) = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
        rhs.clear();
        rhs.resize(n, 0.0);
        d.clear();
        d.resize(n, 0.0);
        self.rhs = rhs;
        self.d = d;
    }

    fn return_scratch(&mut self) {
        let lent = (std::mem::take(&mut self.rhs), std::mem::take(&mut self.d));
        SCRATCH.with(|s| *s.borrow_mut() = lent);
    }

    /// Run one kernel of mechanism slot `k` with the group's arrays; a failure becomes a `Kernel` error.
    fn with_cx(
        &mut self,
        k: usize,
        t: f64,
        phase: &'static str,
        f: impl FnOnce(&mut dyn Mechanism, &mut Cx) -> crate::mechanism::KernelResult,
    ) -> Result<(), SolverError> {
        let slot = &mut self.mechs[k];
        // A mechanism type kept only because a global configures it (e.g. hh's usetable in a group of artificial
        // cells) has no instances and nothing to compute.
        if slot.mech.is_empty() {
            return Ok(());
        }
        let electrode =
            self.imem.as_mut().filter(|_| self.imem_now).map(|m| (m.el_rhs.as_mut_slice(), m.el_d.as_mut_slice()));
        let mut cx = Cx {
            t,
            dt: self.opts.dt,
            celsius: self.opts.celsius,
            second_order: self.opts.method == Method::CrankNicolson,
            v: &self.v,
            rhs: &mut self.rhs,
            d: &mut self.d,
            electrode,
            ions: &mut self.ions,
            ion_ids: &slot.ion_ids,
            out: &mut self.outbox,
        };
        let r = f(slot.mech.as_mut(), &mut cx);
        r.map_err(|e| kernel_error(slot.mech.as_ref(), phase, t, e))
    }

    /// Turn the outbox of mechanism slot `k` into queue entries and spikes.
    fn drain_outbox(&mut self, k: u32, connection: u32) {
        for o in std::mem::take(&mut self.outbox.items) {
            match o {
                Outgoing::SelfEvent { instance, time, flag } => {
                    self.seq += 1;
                    let ev = SelfEvent { mech: k, instance, flag, connection };
                    let slot = match self.free_self_events.pop() {
                        Some(i) => {
                            self.self_events[i as usize] = ev;
                            i
                        }
                        None => {
                            self.self_events.push(ev);
                            self.self_events.len() as u32 - 1
                        }
                    };
                    self.queue.push(Queued { time, key: u64::MAX, seq: self.seq, item: SELF_EVENT | slot });
                }
                Outgoing::Spike { instance, time } => {
                    let cell = self.owner[k as usize].get(instance as usize).copied().unwrap_or(u32::MAX);
                    let source = if self.mechs[k as usize].kind == MechanismKind::Artificial { 0 } else { u32::MAX };
                    self.pending_spikes.push(Spike { cell, source, time });
                }
            }
        }
    }

    /// Deliver every queued event due by `limit` (inclusive when `inclusive`), in (time, key, seq) order,
    /// including self-events generated on the way. Connection events onto mechanisms that take them in
    /// batches are collected and delivered per mechanism type at the end (events on one instance keep their
    /// order, and nothing else can observe the difference).
    fn deliver(&mut self, limit: f64, inclusive: bool) -> Result<(), SolverError> {
        self.queue.open_step(self.step);
        while let Some(q) = self.queue.pop(limit, inclusive) {
            let (mech, instance, flag, conn) = if q.item & SELF_EVENT == 0 {
                let t = self.targets[self.conn_target[q.item as usize] as usize];
                let slot = &mut self.mechs[t.mech as usize];
                if slot.batch {
                    slot.pending.push((t.instance, q.item));
                    continue;
                }
                (t.mech, t.instance, 0.0, q.item)
            } else {
                let slot = q.item & !SELF_EVENT;
                self.free_self_events.push(slot);
                let e = self.self_events[slot as usize];
                (e.mech, e.instance, e.flag, e.connection)
            };
            if !self.mechs[mech as usize].pending.is_empty() {
                self.deliver_batch(mech as usize, q.time)?;
            }
            let range = if conn == NO_CONNECTION { 0..0 } else { self.weights_range(conn) };
            let mut cx = EventCx { t: q.time, out: &mut self.outbox };
            let m = &mut self.mechs[mech as usize].mech;
            m.net_receive(instance as usize, &mut self.rows[range], flag, &mut cx)
                .map_err(|e| kernel_error(m.as_ref(), "NET_RECEIVE", q.time, e))?;
            self.drain_outbox(mech, conn);
        }
        for k in 0..self.mechs.len() {
            if !self.mechs[k].pending.is_empty() {
                self.deliver_batch(k, limit)?;
            }
        }
        Ok(())
    }

    /// The collected connection events of mechanism slot `k`, with their weight vectors gathered into one
    /// array and written back. `t` only dates an error.
    fn deliver_batch(&mut self, k: usize, t: f64) -> Result<(), SolverError> {
        let slot = &mut self.mechs[k];
        let w = slot.weights;
        self.batch_instances.clear();
        self.batch_weights.clear();
        for &(instance, c) in &slot.pending {
            let start = self.conn_row[c as usize] as usize;
            self.batch_instances.push(instance);
            self.batch_weights.extend_from_slice(&self.rows[start..start + w]);
        }
        slot.mech
            .net_receive_batch(&self.batch_instances, &mut self.batch_weights)
            .map_err(|e| kernel_error(slot.mech.as_ref(), "NET_RECEIVE", t, e))?;
        if !slot.shares_weights {
            for (j, &(_, c)) in slot.pending.iter().enumerate() {
                let start = self.conn_row[c as usize] as usize;
                self.rows[start..start + w].copy_from_slice(&self.batch_weights[j * w..(j + 1) * w]);
            }
        }
        slot.pending.clear();
        Ok(())
    }

    /// Currents and conductances of all mechanisms at time `t` into rhs and d; d also gets the capacitance and
    /// axial diagonal terms (no axial currents yet).
    fn evaluate_currents(&mut self, t: f64) -> Result<(), SolverError> {
        self.rhs.fill(0.0);
        match self.imem.as_mut() {
            None => self.d.copy_from_slice(&self.d_static),
            Some(m) => {
                // d_static is added after the mechanisms' terms, on every step (the same sums whether the
                // membrane current is computed at this step or not).
                self.d.fill(0.0);
                if self.imem_now {
                    m.el_rhs.fill(0.0);
                    m.el_d.fill(0.0);
                }
            }
        }
        for ion in self.ions.iter_mut() {
            ion.begin_currents(self.opts.celsius);
        }
        for k in 0..self.mechs.len() {
            if self.mechs[k].kind != MechanismKind::Artificial {
                self.with_cx(k, t, "BREAKPOINT", |m, cx| m.current(cx))?;
            }
        }
        if self.imem.is_some() && !self.imem_now {
            let n = self.d.len();
            let (d, d_static) = (&mut self.d[..n], &self.d_static[..n]);
            for i in 0..n {
                d[i] += d_static[i];
            }
        } else if let Some(m) = self.imem.as_mut() {
            // Slices of one length, bound once: no bounds checks or reloads in the loop.
            let n = self.rhs.len();
            let (rhs, d, d_static) = (&self.rhs[..n], &mut self.d[..n], &self.d_static[..n]);
            let (ionic, gmem) = (&mut m.ionic[..n], &mut m.gmem[..n]);
            let (el_rhs, el_d, cap) = (&m.el_rhs[..n], &m.el_d[..n], &m.cap[..n]);
            for i in 0..n {
                ionic[i] = el_rhs[i] - rhs[i];
                gmem[i] = d[i] - el_d[i] + cap[i];
                d[i] += d_static[i];
            }
        }
        Ok(())
    }

    /// Add the axial currents, solve the tree systems (Hines) and update v; `rhs` keeps dv.
    fn solve_and_update(&mut self) {
        let k = if self.opts.method == Method::CrankNicolson { 2.0 } else { 1.0 };
        solve_tree_and_update(&self.parent, &self.a, &self.b, &mut self.d, &mut self.rhs, &mut self.v, &self.levels, k);
    }

    fn step_once(&mut self) -> Result<(), SolverError> {
        let dt = self.opts.dt;
        let t = self.step as f64 * dt;
        match self.opts.delivery_rule {
            DeliveryRule::Nearest => self.deliver(t + 0.5 * dt, true)?,
            DeliveryRule::Floor => self.deliver(t + dt, false)?,
        }
        self.evaluate_currents(t + 0.5 * dt)?;
        self.solve_and_update();
        if self.opts.method == Method::CrankNicolson {
            for ion in self.ions.iter_mut() {
                ion.second_order_current(&self.rhs);
            }
        }
        if let Some(m) = self.imem.as_mut().filter(|_| self.imem_now) {
            let n = self.v.len();
            let (value, gmem, ionic) = (&mut m.value[..n], &m.gmem[..n], &m.ionic[..n]);
            let (rhs, area) = (&self.rhs[..n], &self.area[..n]);
            for i in 0..n {
                value[i] = (gmem[i] * rhs[i] + ionic[i]) * matrix_area(area[i]) * 0.01;
            }
        }
        self.step += 1;
        let t1 = self.step as f64 * dt;
        for k in 0..self.mechs.len() {
            if self.mechs[k].kind != MechanismKind::Artificial {
                self.with_cx(k, t1, "SOLVE", |m, cx| m.update_state(cx))?;
            }
        }
        self.test_thresholds();
        Ok(())
    }

    fn test_thresholds(&mut self) {
        let t = self.step as f64 * self.opts.dt;
        let dt = self.opts.dt;
        for det in self.detectors.iter_mut() {
            let v = self.v[det.node as usize];
            match self.opts.spike_rule {
                SpikeRule::Grid => {
                    if v > det.threshold {
                        if !det.above {
                            det.above = true;
                            self.pending_spikes.push(Spike { cell: det.cell, source: det.source, time: t });
                        }
                    } else {
                        det.above = false;
                    }
                }
                SpikeRule::Interpolated => {
                    if self.step > 0 && det.v_prev < det.threshold && v >= det.threshold {
                        let tc = (t - dt) + dt * (det.threshold - det.v_prev) / (v - det.v_prev);
                        self.pending_spikes.push(Spike { cell: det.cell, source: det.source, time: tc });
                    }
                }
            }
            det.v_prev = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cell::{CableCell, Values};
    use crate::morphology::{Morphology, Section};

    #[test]
    fn the_yaml_defaults_are_the_default_options() {
        let o = SimOptions::default();
        assert_eq!(Method::from(miv_config::MethodName::default()), o.method);
        assert_eq!(SpikeRule::from(miv_config::SpikeRuleName::default()), o.spike_rule);
        assert_eq!(DeliveryRule::from(miv_config::DeliveryRuleName::default()), o.delivery_rule);
        assert_eq!((o.dt, o.celsius), (miv_config::DEFAULT_DT, miv_config::DEFAULT_CELSIUS));
        assert_eq!(SpikeRule::from(miv_config::SpikeRuleName::Interpolated), SpikeRule::Interpolated);
        assert_eq!(DeliveryRule::from(miv_config::DeliveryRuleName::Arbor), DeliveryRule::Floor);
    }

    /// A passive cable relaxing from v = -65 towards a reversal potential that varies along it; v at a few
    /// segment centres at t = 2 ms.
    fn relax(method: Method, dt: f64) -> Vec<f64> {
        let m = Morphology::new(vec![Section::cylinder("c", 3, 500.0, 1.0)]);
        let mut c = CableCell::new(m).unwrap();
        c.nseg[0] = 25;
        c.ra[0] = 100.0;
        let e: Vec<f64> = (0..25).map(|j| -65.0 + 10.0 * (j as f64 / 24.0 * 3.0).sin()).collect();
        c.density.push(crate::cell::DensityPlacement {
            section: 0,
            mechanism: "pas".into(),
            params: vec![("g".into(), Values::Uniform(0.001)), ("e".into(), Values::PerSegment(e))],
        });
        let opts = SimOptions { dt, method, ..SimOptions::default() };
        let mut g = CellGroup::new(&[c.into()], &Catalogue::builtin(), opts).unwrap();
        g.initialize(-65.0).unwrap();
        g.advance(2.0, &mut Vec::new(), &mut Vec::new()).unwrap();
        [3usize, 8, 13, 20].iter().map(|&j| g.voltages()[1 + j]).collect()
    }

    fn err(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
    }

    /// A global configures hh in a group without any hh (e.g. a group of artificial cells in a network whose
    /// experiment sets `{hh: {usetable: 1}}`): the group runs, and runs as it does without the global.
    #[test]
    fn a_global_for_a_mechanism_the_group_does_not_use() {
        let m = Morphology::new(vec![Section::cylinder("c", 3, 200.0, 1.0)]);
        let mut c = CableCell::new(m).unwrap();
        c.nseg[0] = 5;
        c.density.push(crate::cell::DensityPlacement {
            section: 0,
            mechanism: "pas".into(),
            params: vec![("g".into(), Values::Uniform(0.001)), ("e".into(), Values::Uniform(-70.0))],
        });
        let run = |globals: Vec<(String, String, f64)>| {
            let opts = SimOptions { globals, ..SimOptions::default() };
            let mut g = CellGroup::new(&[c.clone().into()], &Catalogue::builtin(), opts).unwrap();
            g.initialize(-65.0).unwrap();
            g.advance(5.0, &mut Vec::new(), &mut Vec::new()).unwrap();
            g.voltages().to_vec()
        };
        let plain = run(vec![]);
        let with = run(vec![("hh".into(), "usetable".into(), 1.0)]);
        assert!(plain[1] < -65.5, "the cable relaxes towards e_pas: {}", plain[1]);
        assert_eq!(plain, with);
    }

    /// A one-compartment cell with two `Exp2Syn` and one `ExpSyn` targets.
    fn synapse_group() -> CellGroup {
        let m = Morphology::new(vec![Section::cylinder("soma", 1, 20.0, 20.0)]);
        let mut c = CableCell::new(m).unwrap();
        for mech in ["Exp2Syn", "Exp2Syn", "ExpSyn"] {
            c.points.push(crate::cell::PointPlacement {
                location: Location::new(0, 0.5),
                mechanism: mech.into(),
                params: vec![],
            });
        }
        CellGroup::new(&[c.into()], &Catalogue::builtin(), SimOptions::default()).unwrap()
    }

    /// Connections with equal weights onto a mechanism of read-only weights share one weight vector (of the
    /// same mechanism type only); changing one gives it its own; keys come back as given across runs of equal
    /// high bits.
    #[test]
    fn equal_weight_vectors_are_shared_and_copied_on_write() {
        let mut g = synapse_group();
        let (p0, p1, p2) = (TargetId(0), TargetId(1), TargetId(2));
        let keys = [7u64 << 32 | 3, 7 << 32 | 1, 9 << 32, 7 << 32 | 5, u64::MAX - 1];
        let a = g.connect(p0, &[0.5], keys[0]).unwrap();
        let b = g.connect(p1, &[0.5], keys[1]).unwrap();
        let c = g.connect(p0, &[0.25], keys[2]).unwrap();
        let d = g.connect(p2, &[0.5], keys[3]).unwrap();
        let e = g.connect(p1, &[], keys[4]).unwrap();
        assert_eq!(g.rows.len(), 4, "rows: 0.5 and 0.25 of Exp2Syn, 0.5 of ExpSyn, 0 of Exp2Syn");
        assert_eq!(g.conn_row[a.0 as usize], g.conn_row[b.0 as usize]);
        assert_ne!(g.conn_row[a.0 as usize], g.conn_row[d.0 as usize]);
        assert_eq!(g.key_runs, vec![(0, 7), (2, 9), (3, 7), (4, u32::MAX)]);
        for (k, id) in [a, b, c, d, e].into_iter().enumerate() {
            assert_eq!(g.key(id.0), keys[k]);
        }
        g.weights_mut(b)[0] = 0.75;
        assert_eq!((g.weights(a), g.weights(b), g.weights(e)), (&[0.5][..], &[0.75][..], &[0.0][..]));
        g.weights_mut(b)[0] = 1.0;
        assert_eq!(g.rows.len(), 5, "a second change reuses the connection's own row");
        assert_eq!(g.weights(b), &[1.0]);
        // Spike events carry the connections' keys, and leave the queue in key order.
        g.initialize(-65.0).unwrap();
        g.enqueue_spike(0.0, a, &[0.0; 5]);
        g.queue.open_step(0);
        let mut got = vec![];
        while let Some(q) = g.queue.pop(0.0, true) {
            got.push((q.key, q.item));
        }
        let mut want: Vec<(u64, u32)> = keys.iter().copied().zip(0..).collect();
        want.sort_unstable();
        assert_eq!(got, want);
        // Initialisation may change shared vectors: a connection made after it gets a new one.
        let n = g.rows.len();
        let f = g.connect(p0, &[0.5], 0).unwrap();
        assert_eq!((g.rows.len(), g.conn_row[f.0 as usize] as usize), (n + 1, n));
        let h = g.connect(p1, &[0.5], 0).unwrap();
        assert_eq!(g.conn_row[h.0 as usize], g.conn_row[f.0 as usize], "and is shared again from then on");
    }

    /// The tables of connections with equal weights take 12 bytes per connection, whatever their number.
    #[test]
    fn shared_weights_cost_no_memory_per_connection() {
        let bytes = |n: usize, distinct: bool| {
            let mut g = synapse_group();
            g.reserve_connections(n);
            for k in 0..n {
                let w = if distinct { k as f64 } else { 1.0 };
                g.connect(TargetId(0), &[w], k as u64).unwrap();
            }
            g.shrink_to_fit();
            g.memory().connections
        };
        let (shared, own) = (bytes(10_000, false), bytes(10_000, true));
        assert!(shared <= 10_000 * 12 + 64, "{shared} bytes");
        assert_eq!(own - shared, 9_999 * 8, "one f64 row per connection more");
    }

    #[test]
    fn groups_can_move_between_threads() {
        fn send<T: Send>() {}
        send::<CellGroup>();
    }

    #[test]
    fn crank_nicolson_is_second_order_and_backward_euler_first() {
        let exact = relax(Method::CrankNicolson, 0.1 / 256.0);
        for (method, order) in [(Method::CrankNicolson, 2.0), (Method::BackwardEuler, 1.0)] {
            let e: Vec<f64> = [0.1, 0.05, 0.025].iter().map(|&dt| err(&relax(method, dt), &exact)).collect();
            for k in 0..2 {
                let observed = (e[k] / e[k + 1]).log2();
                assert!((observed - order).abs() < 0.15, "{method:?}: errors {e:?}, observed order {observed}");
            }
        }
    }
}
