//! A cell group: many cells simulated together with fixed-step NEURON semantics. All nodes of all cells live in
//! contiguous arrays (each cell a contiguous node range, parents before children), every mechanism type holds
//! its instances of all cells in one structure-of-arrays object, and the group owns the event queue of its
//! cells. A cell's arithmetic does not depend on the other cells of the group: mechanism types run in catalogue
//! order, instances of one cell keep their placement order, and events are ordered by (time, connection key).
//!
//! One step (NEURON `nrn_fixed_step`): deliver the events due (rule in [`DeliveryRule`]); at t + dt/2 evaluate
//! all currents and conductances; add capacitance and axial terms; Hines solve for dv; v += dv (backward Euler)
//! or v += 2 dv (Crank-Nicolson, NEURON `secondorder = 2`, which also moves ion currents to mid-step); at
//! t + dt advance the mechanism states with the new v; test spike thresholds (rule in [`SpikeRule`]).

use crate::cable::{add_axial_currents, coupling, hines_solve, matrix_area};
use crate::cell::{ArtificialCell, CableCell, CellDescription, Location, Values};
use crate::compartments::Compartments;
use crate::error::SolverError;
use crate::ion::{default_species, IonData};
use crate::mechanism::{Catalogue, Cx, EventCx, Mechanism, MechanismKind, Outbox, Outgoing, Site};
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
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

impl Default for SimOptions {
    fn default() -> SimOptions {
        SimOptions {
            dt: 0.025,
            method: Method::BackwardEuler,
            celsius: 6.3,
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
    Voltage { cell: usize, location: Location },
    MembraneCurrent { cell: usize, location: Location },
    /// Variable of a point process (by its target index within the cell) or of an artificial cell (target 0).
    TargetState { cell: usize, target: usize, variable: String },
    /// Variable of a density mechanism at the segment containing a location.
    DensityState { cell: usize, location: Location, mechanism: String, variable: String },
}

struct MechSlot {
    mech: Box<dyn Mechanism>,
    ion_ids: Vec<usize>,
    kind: MechanismKind,
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

#[derive(Debug, Clone, Copy)]
enum Delivery {
    Connection(u32),
    SelfEvent { mech: u32, instance: u32, flag: f64, connection: u32 },
}

const NO_CONNECTION: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Queued {
    time: f64,
    key: u64,
    seq: u64,
    what: Delivery,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Queued) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Queued) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    /// Reversed so that the max-heap pops the earliest (time, key, seq) first.
    fn cmp(&self, o: &Queued) -> Ordering {
        o.time.total_cmp(&self.time).then(o.key.cmp(&self.key)).then(o.seq.cmp(&self.seq))
    }
}

/// Many cells, simulated together. See the module comment.
pub struct CellGroup {
    opts: SimOptions,
    step: u64,
    // Node arrays (group node index).
    v: Vec<f64>,
    rhs: Vec<f64>,
    d: Vec<f64>,
    d_static: Vec<f64>,
    a: Vec<f64>,
    b: Vec<f64>,
    parent: Vec<u32>,
    /// Membrane area per node (um2, 0 at zero-area nodes).
    area: Vec<f64>,
    cell_nodes: Vec<Range<u32>>,
    /// Cable cells' compartment counts (nodes with membrane).
    compartments: usize,
    // Optional node data.
    imem: Option<MembraneCurrent>,
    position: Vec<[f64; 3]>,
    distance: Vec<f64>,
    // Mechanisms and ions.
    mechs: Vec<MechSlot>,
    ions: Vec<IonData>,
    ion_init: Vec<(Vec<f64>, Vec<f64>, Vec<f64>)>,
    // Events.
    targets: Vec<Target>,
    cell_targets: Vec<Range<u32>>,
    conn_target: Vec<u32>,
    conn_key: Vec<u64>,
    conn_weights: Vec<f64>,
    conn_offset: Vec<u32>,
    queue: BinaryHeap<Queued>,
    seq: u64,
    outbox: Outbox,
    // Spikes.
    detectors: Vec<DetectorState>,
    cell_detectors: Vec<Range<u32>>,
    /// Owning cell of each artificial-cell mechanism instance, per mechanism slot.
    art_cell: Vec<Vec<u32>>,
    pending_spikes: Vec<Spike>,
    /// For probes: mechanism slot by catalogue name.
    mech_by_name: HashMap<String, usize>,
    /// (density mechanism slot, node) -> instance, for density-state probes.
    density_instance: HashMap<(u32, u32), u32>,
    /// Per cell, per section: (start, first centre, nseg, end) group nodes.
    node_index: Vec<Vec<(u32, u32, u32, u32)>>,
}

struct MembraneCurrent {
    el_rhs: Vec<f64>,
    el_d: Vec<f64>,
    ionic: Vec<f64>,
    gmem: Vec<f64>,
    cap: Vec<f64>,
    value: Vec<f64>,
}

fn err_cell(cell: usize, what: String) -> SolverError {
    SolverError::Cell { cell, what }
}

/// Resolve named parameters against a mechanism's defaults.
fn resolve_params<'a, T: 'a>(
    info: &crate::mechanism::MechanismInfo,
    given: impl Iterator<Item = (&'a String, &'a T)>,
) -> Result<Vec<(usize, &'a T)>, SolverError> {
    given
        .map(|(name, v)| {
            info.param_index(name).map(|k| (k, v)).ok_or_else(|| SolverError::UnknownParameter {
                mechanism: info.name.clone(),
                parameter: name.clone(),
                known: info.param_names(),
            })
        })
        .collect()
}

impl CellGroup {
    /// Build a group. Cell i of `cells` becomes group cell i; targets and detectors are numbered per cell in
    /// placement order. Errors name the cell and what is wrong.
    pub fn new(cells: &[CellDescription], catalogue: &Catalogue, opts: SimOptions) -> Result<CellGroup, SolverError> {
        if !(opts.dt > 0.0 && opts.dt.is_finite()) {
            return Err(SolverError::Option(format!("dt must be positive, got {}", opts.dt)));
        }
        if !opts.celsius.is_finite() {
            return Err(SolverError::Option(format!("celsius must be finite, got {}", opts.celsius)));
        }
        let cj = match opts.method {
            Method::BackwardEuler => 1.0 / opts.dt,
            Method::CrankNicolson => 2.0 / opts.dt,
        };
        let mut b = Builder::new(catalogue, &opts)?;
        for (ci, cell) in cells.iter().enumerate() {
            match cell {
                CellDescription::Cable(c) => b.add_cable(ci, c, cj)?,
                CellDescription::Artificial(a) => b.add_artificial(ci, a)?,
            }
        }
        b.finish(opts)
    }

    pub fn options(&self) -> &SimOptions {
        &self.opts
    }

    pub fn num_cells(&self) -> usize {
        self.cell_nodes.len()
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

    /// Group node range of a cell (empty for an artificial cell).
    pub fn cell_nodes(&self, cell: usize) -> Range<usize> {
        let r = &self.cell_nodes[cell];
        r.start as usize..r.end as usize
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
            0 if self.cell_nodes[cell].is_empty() => 1,
            n => n,
        }
    }

    /// Add a connection onto `target` with its weight vector (NET_RECEIVE arguments; missing trailing weights
    /// are 0). `key` orders simultaneous events on one cell (give every connection a distinct key, e.g. from
    /// source gid and connection index, to make results independent of how cells are grouped).
    pub fn connect(&mut self, target: TargetId, weights: &[f64], key: u64) -> Result<ConnectionId, SolverError> {
        let t = self.targets.get(target.0 as usize).ok_or_else(|| SolverError::Invalid(format!("no target {}", target.0)))?;
        let slot = &self.mechs[t.mech as usize];
        let nw = slot.mech.info().weights;
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
        let id = self.conn_target.len() as u32;
        self.conn_target.push(target.0);
        self.conn_key.push(key);
        self.conn_weights.extend(weights.iter().copied().chain(std::iter::repeat(0.0)).take(nw));
        self.conn_offset.push(self.conn_weights.len() as u32);
        Ok(ConnectionId(id))
    }

    /// Weights of a connection.
    pub fn weights(&self, c: ConnectionId) -> &[f64] {
        &self.conn_weights[self.weights_range(c.0)]
    }

    pub fn weights_mut(&mut self, c: ConnectionId) -> &mut [f64] {
        let r = self.weights_range(c.0);
        &mut self.conn_weights[r]
    }

    fn weights_range(&self, c: u32) -> Range<usize> {
        let end = self.conn_offset[c as usize] as usize;
        let start = if c == 0 { 0 } else { self.conn_offset[c as usize - 1] as usize };
        start..end
    }

    /// Set a parameter of a target (point process or artificial cell).
    pub fn set_target_param(&mut self, target: TargetId, name: &str, value: f64) -> Result<(), SolverError> {
        let t = self.targets[target.0 as usize];
        let m = &mut self.mechs[t.mech as usize].mech;
        let k = m.info().param_index(name).ok_or_else(|| SolverError::UnknownParameter {
            mechanism: m.info().name.clone(),
            parameter: name.into(),
            known: m.info().param_names(),
        })?;
        m.set_param(t.instance as usize, k, value);
        Ok(())
    }

    /// Attach an array to a target, e.g. ("times", ...) of a `VecStim`.
    pub fn set_target_array(&mut self, target: TargetId, name: &str, values: &[f64]) -> Result<(), SolverError> {
        let t = self.targets[target.0 as usize];
        self.mechs[t.mech as usize].mech.set_array(t.instance as usize, name, values).map_err(SolverError::Invalid)
    }

    /// Resolve a probe.
    pub fn probe(&self, spec: &ProbeSpec) -> Result<Probe, SolverError> {
        let node_of = |cell: usize, loc: &Location| -> Result<u32, SolverError> {
            self.node_of(cell, loc).ok_or_else(|| err_cell(cell, format!("no node at section {} x {}", loc.section, loc.x)))
        };
        match spec {
            ProbeSpec::Voltage { cell, location } => Ok(Probe::Voltage { node: node_of(*cell, location)? }),
            ProbeSpec::MembraneCurrent { cell, location } => {
                if self.imem.is_none() {
                    return Err(SolverError::Option("membrane current probes need SimOptions::membrane_current".into()));
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
                let &slot = self
                    .mech_by_name
                    .get(mechanism)
                    .ok_or_else(|| err_cell(*cell, format!("no mechanism {mechanism:?} in this group")))?;
                let instance = *self
                    .density_instance
                    .get(&(slot as u32, node))
                    .ok_or_else(|| err_cell(*cell, format!("{mechanism} is not inserted at section {} x {}", location.section, location.x)))?;
                let info = self.mechs[slot].mech.info();
                let index = info
                    .state_index(variable)
                    .ok_or_else(|| err_cell(*cell, format!("{} has no variable {variable:?}", info.name)))?;
                Ok(Probe::State { mechanism: slot as u32, instance, index: index as u32 })
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

    fn node_of(&self, cell: usize, loc: &Location) -> Option<u32> {
        self.node_index.get(cell).and_then(|secs| secs.get(loc.section)).map(|s| {
            let (start, first, nseg, end) = *s;
            if loc.x <= 0.0 {
                start
            } else if loc.x >= 1.0 {
                end
            } else {
                first + ((nseg as f64 * loc.x) as u32).min(nseg - 1)
            }
        })
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

    /// NEURON `finitialize(v_init)`: t = 0, v = v_init everywhere, ion values back to their initial values,
    /// INITIAL of every mechanism, connection weights initialised, events due at t <= 0 delivered, currents
    /// evaluated once (for the membrane current), and spike detectors tested at t = 0.
    pub fn initialize(&mut self, v_init: f64) {
        self.step = 0;
        self.queue.clear();
        self.seq = 0;
        self.pending_spikes.clear();
        self.v.fill(v_init);
        for (ion, (erev, ci, co)) in self.ions.iter_mut().zip(&self.ion_init) {
            ion.erev.copy_from_slice(erev);
            ion.conc_in.copy_from_slice(ci);
            ion.conc_out.copy_from_slice(co);
            ion.cur.fill(0.0);
            ion.dcurdv.fill(0.0);
            ion.update_nernst(self.opts.celsius);
        }
        for k in 0..self.mechs.len() {
            self.with_cx(k, 0.0, |m, cx| m.initialize(cx));
            self.drain_outbox(k as u32, NO_CONNECTION);
        }
        for c in 0..self.conn_target.len() {
            let t = self.targets[self.conn_target[c] as usize];
            let r = self.weights_range(c as u32);
            self.mechs[t.mech as usize].mech.init_weights(t.instance as usize, &mut self.conn_weights[r]);
        }
        self.deliver(0.0, true);
        self.evaluate_currents(0.0);
        if let Some(m) = self.imem.as_mut() {
            // At initialisation NEURON reports (rhs + ionic) * area / 100: the axial plus stimulus current.
            let mut rhs = self.rhs.clone();
            for r in self.cell_nodes.iter() {
                let (s, e) = (r.start as usize, r.end as usize);
                if e > s {
                    add_axial_currents(&self.parent[s..e], &self.a[s..e], &self.b[s..e], &self.v[s..e], &mut rhs[s..e], s);
                }
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
    }

    /// Queue events (they may be for any time not before the current step).
    pub fn enqueue(&mut self, events: &[Event]) {
        for e in events {
            let c = e.connection.0;
            self.seq += 1;
            self.queue.push(Queued { time: e.time, key: self.conn_key[c as usize], seq: self.seq, what: Delivery::Connection(c) });
        }
    }

    /// Advance to `until` (ms, rounded to whole steps): events in `events` are queued first (the vector is
    /// drained), spikes of this interval are appended to `spikes` in time order per step.
    pub fn advance(&mut self, until: f64, events: &mut Vec<Event>, spikes: &mut Vec<Spike>) {
        self.enqueue(events);
        events.clear();
        spikes.append(&mut self.pending_spikes);
        let last = (until / self.opts.dt + 1e-6).floor();
        while (self.step as f64) < last {
            self.step_once();
            spikes.append(&mut self.pending_spikes);
        }
    }

    fn with_cx<R>(&mut self, k: usize, t: f64, f: impl FnOnce(&mut dyn Mechanism, &mut Cx) -> R) -> R {
        let slot = &mut self.mechs[k];
        let electrode = self.imem.as_mut().map(|m| (m.el_rhs.as_mut_slice(), m.el_d.as_mut_slice()));
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
        f(slot.mech.as_mut(), &mut cx)
    }

    /// Turn the outbox of mechanism slot `k` into queue entries and spikes.
    fn drain_outbox(&mut self, k: u32, connection: u32) {
        for o in std::mem::take(&mut self.outbox.items) {
            match o {
                Outgoing::SelfEvent { instance, time, flag } => {
                    self.seq += 1;
                    self.queue.push(Queued {
                        time,
                        key: u64::MAX,
                        seq: self.seq,
                        what: Delivery::SelfEvent { mech: k, instance, flag, connection },
                    });
                }
                Outgoing::Spike { instance, time } => {
                    let cell = self.art_cell[k as usize].get(instance as usize).copied().unwrap_or(u32::MAX);
                    let source = if self.mechs[k as usize].kind == MechanismKind::Artificial { 0 } else { u32::MAX };
                    self.pending_spikes.push(Spike { cell, source, time });
                }
            }
        }
    }

    /// Deliver every queued event due by `limit` (inclusive when `inclusive`), in (time, key, seq) order,
    /// including self-events generated on the way.
    fn deliver(&mut self, limit: f64, inclusive: bool) {
        while let Some(top) = self.queue.peek() {
            let due = if inclusive { top.time <= limit } else { top.time < limit };
            if !due {
                break;
            }
            let q = self.queue.pop().unwrap();
            let (mech, instance, flag, conn) = match q.what {
                Delivery::Connection(c) => {
                    let t = self.targets[self.conn_target[c as usize] as usize];
                    (t.mech, t.instance, 0.0, c)
                }
                Delivery::SelfEvent { mech, instance, flag, connection } => (mech, instance, flag, connection),
            };
            let range = if conn == NO_CONNECTION { 0..0 } else { self.weights_range(conn) };
            let mut cx = EventCx { t: q.time, out: &mut self.outbox };
            self.mechs[mech as usize].mech.net_receive(instance as usize, &mut self.conn_weights[range], flag, &mut cx);
            self.drain_outbox(mech, conn);
        }
    }

    /// Currents and conductances of all mechanisms at time `t` into rhs and d (no capacitance, no axial terms).
    fn evaluate_currents(&mut self, t: f64) {
        self.rhs.fill(0.0);
        self.d.fill(0.0);
        if let Some(m) = self.imem.as_mut() {
            m.el_rhs.fill(0.0);
            m.el_d.fill(0.0);
        }
        for ion in self.ions.iter_mut() {
            ion.begin_currents(self.opts.celsius);
        }
        for k in 0..self.mechs.len() {
            if self.mechs[k].kind != MechanismKind::Artificial {
                self.with_cx(k, t, |m, cx| m.current(cx));
            }
        }
        if let Some(m) = self.imem.as_mut() {
            for i in 0..self.rhs.len() {
                m.ionic[i] = m.el_rhs[i] - self.rhs[i];
                m.gmem[i] = self.d[i] - m.el_d[i] + m.cap[i];
            }
        }
    }

    fn step_once(&mut self) {
        let dt = self.opts.dt;
        let t = self.step as f64 * dt;
        match self.opts.delivery_rule {
            DeliveryRule::Nearest => self.deliver(t + 0.5 * dt, true),
            DeliveryRule::Floor => self.deliver(t + dt, false),
        }
        self.evaluate_currents(t + 0.5 * dt);
        for i in 0..self.d.len() {
            self.d[i] += self.d_static[i];
        }
        for r in self.cell_nodes.iter() {
            let (s, e) = (r.start as usize, r.end as usize);
            if e > s {
                let (p, a, b) = (&self.parent[s..e], &self.a[s..e], &self.b[s..e]);
                add_axial_currents(p, a, b, &self.v[s..e], &mut self.rhs[s..e], s);
                hines_solve(p, a, b, &mut self.d[s..e], &mut self.rhs[s..e], s);
            }
        }
        let second = self.opts.method == Method::CrankNicolson;
        if second {
            for ion in self.ions.iter_mut() {
                ion.second_order_current(&self.rhs);
            }
            for (v, dv) in self.v.iter_mut().zip(&self.rhs) {
                *v += 2.0 * dv;
            }
        } else {
            for (v, dv) in self.v.iter_mut().zip(&self.rhs) {
                *v += dv;
            }
        }
        if let Some(m) = self.imem.as_mut() {
            for i in 0..self.v.len() {
                m.value[i] = (m.gmem[i] * self.rhs[i] + m.ionic[i]) * matrix_area(self.area[i]) * 0.01;
            }
        }
        self.step += 1;
        let t1 = self.step as f64 * dt;
        for k in 0..self.mechs.len() {
            if self.mechs[k].kind != MechanismKind::Artificial {
                self.with_cx(k, t1, |m, cx| m.update_state(cx));
            }
        }
        self.test_thresholds();
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

/// Collects cells into group arrays.
struct Builder<'c> {
    catalogue: &'c Catalogue,
    opts: SimOptions,
    mechs: Vec<Option<MechSlot>>,
    ion_index: HashMap<String, usize>,
    ions: Vec<IonData>,
    ion_at: HashMap<(usize, u32), u32>,
    g: CellGroupParts,
}

#[derive(Default)]
struct CellGroupParts {
    v: Vec<f64>,
    d_static: Vec<f64>,
    a: Vec<f64>,
    b: Vec<f64>,
    parent: Vec<u32>,
    area: Vec<f64>,
    cap: Vec<f64>,
    position: Vec<[f64; 3]>,
    distance: Vec<f64>,
    cell_nodes: Vec<Range<u32>>,
    compartments: usize,
    targets: Vec<Target>,
    cell_targets: Vec<Range<u32>>,
    detectors: Vec<DetectorState>,
    cell_detectors: Vec<Range<u32>>,
    art_cell: HashMap<usize, Vec<u32>>,
    /// Per cell, per section: (start, first, nseg, end) group nodes.
    node_index: Vec<Vec<(u32, u32, u32, u32)>>,
    density_instance: HashMap<(u32, u32), u32>,
}

impl<'c> Builder<'c> {
    fn new(catalogue: &'c Catalogue, opts: &SimOptions) -> Result<Builder<'c>, SolverError> {
        let mut b = Builder {
            catalogue,
            opts: opts.clone(),
            mechs: (0..catalogue.len()).map(|_| None).collect(),
            ion_index: HashMap::new(),
            ions: Vec::new(),
            ion_at: HashMap::new(),
            g: CellGroupParts::default(),
        };
        for (mech, global, value) in &opts.globals {
            let k = catalogue.index(mech).ok_or_else(|| SolverError::UnknownMechanism {
                name: mech.clone(),
                context: format!("global {global}"),
            })?;
            let info = catalogue.get(mech).unwrap();
            let gi = info
                .global_index(global)
                .ok_or_else(|| SolverError::Option(format!("mechanism {mech:?} has no global {global:?}")))?;
            b.slot(k)?.mech.set_global(gi, *value);
        }
        Ok(b)
    }

    fn slot(&mut self, k: usize) -> Result<&mut MechSlot, SolverError> {
        if self.mechs[k].is_none() {
            let mech = self.catalogue.make(k);
            let info = mech.info().clone();
            let mut ion_ids = Vec::new();
            for u in &info.ions {
                let id = match self.ion_index.get(&u.ion) {
                    Some(&i) => i,
                    None => {
                        self.ions.push(IonData::new(&u.ion));
                        self.ion_index.insert(u.ion.clone(), self.ions.len() - 1);
                        self.ions.len() - 1
                    }
                };
                if u.write_conc {
                    self.ions[id].nernst = true;
                }
                ion_ids.push(id);
            }
            self.mechs[k] = Some(MechSlot { mech, ion_ids, kind: info.kind });
        }
        Ok(self.mechs[k].as_mut().unwrap())
    }

    fn lookup(&self, name: &str, expected: MechanismKind, context: String) -> Result<usize, SolverError> {
        let k = self.catalogue.index(name).ok_or_else(|| SolverError::UnknownMechanism { name: name.into(), context })?;
        let kind = self.catalogue.get(name).unwrap().kind;
        if kind != expected {
            return Err(SolverError::WrongKind { mechanism: name.into(), actual: kind.as_str(), expected: expected.as_str() });
        }
        Ok(k)
    }

    /// Ion instance of species `ion_id` at group node `node`, created with the cell's settings for `section`.
    fn ion_instance(&mut self, ion_id: usize, node: u32, cell: &CableCell, section: usize) -> u32 {
        if let Some(&i) = self.ion_at.get(&(ion_id, node)) {
            return i;
        }
        let name = self.ions[ion_id].name.clone();
        let (_, mut erev, mut ci, mut co) = default_species(&name);
        for s in cell.ions.iter().filter(|s| s.section == section && s.ion == name) {
            erev = s.erev.unwrap_or(erev);
            ci = s.conc_in.unwrap_or(ci);
            co = s.conc_out.unwrap_or(co);
        }
        let i = self.ions[ion_id].push(node, erev, ci, co);
        self.ion_at.insert((ion_id, node), i);
        i
    }

    fn add_instance(
        &mut self,
        k: usize,
        node: u32,
        scale: f64,
        cell_index: usize,
        cell: Option<(&CableCell, usize)>,
        params: &[f64],
    ) -> Result<u32, SolverError> {
        let ion_ids = self.slot(k)?.ion_ids.clone();
        let mut ions = Vec::with_capacity(ion_ids.len());
        if let Some((c, section)) = cell {
            for id in ion_ids {
                ions.push(self.ion_instance(id, node, c, section));
            }
        }
        let site = Site { node, scale, ions, cell: cell_index as u32 };
        let slot = self.slot(k)?;
        let instance = slot.mech.len() as u32;
        slot.mech.add_instance(&site, params);
        Ok(instance)
    }

    fn add_cable(&mut self, ci: usize, cell: &CableCell, cj: f64) -> Result<(), SolverError> {
        let ns = cell.morphology.sections.len();
        cell.morphology.validate().map_err(|source| SolverError::Morphology { cell: ci, source })?;
        for (what, v) in [("nseg", cell.nseg.len()), ("Ra", cell.ra.len()), ("cm", cell.cm.len())] {
            if v != ns {
                return Err(err_cell(ci, format!("{what} has {v} entries for {ns} sections")));
            }
        }
        for s in 0..ns {
            let name = &cell.morphology.sections[s].name;
            if cell.nseg[s] == 0 {
                return Err(err_cell(ci, format!("section {s} ({name}): nseg must be >= 1")));
            }
            if !(cell.ra[s] > 0.0 && cell.ra[s].is_finite()) {
                return Err(err_cell(ci, format!("section {s} ({name}): Ra {} must be positive", cell.ra[s])));
            }
            if !(cell.cm[s] >= 0.0 && cell.cm[s].is_finite()) {
                return Err(err_cell(ci, format!("section {s} ({name}): cm {} must be >= 0", cell.cm[s])));
            }
        }
        let comp = Compartments::build(&cell.morphology, &cell.nseg, &cell.ra);
        let base = self.g.v.len() as u32;
        let n = comp.len();
        let (a, b) = coupling(&comp);
        let mut d_static = vec![0.0; n];
        let mut cap = vec![0.0; n];
        for i in 0..n {
            if comp.has_membrane(i) {
                cap[i] = 1e-3 * cj * cell.cm[comp.section[i] as usize];
            }
            d_static[i] += cap[i];
            if i > 0 {
                d_static[i] -= b[i];
                d_static[comp.parent[i] as usize] -= a[i];
            }
        }
        let g = &mut self.g;
        g.v.extend(std::iter::repeat(0.0).take(n));
        g.d_static.extend(d_static);
        g.a.extend(a);
        g.b.extend(b);
        g.parent.extend(comp.parent.iter().map(|&p| if p == crate::compartments::NO_PARENT { base } else { p + base }));
        g.area.extend(comp.area.iter().copied());
        g.cap.extend(cap);
        if self.opts.geometry {
            g.position.extend(comp.position.iter().copied());
            g.distance.extend(comp.distance.iter().copied());
        }
        g.cell_nodes.push(base..base + n as u32);
        g.compartments += comp.compartment_count();
        g.node_index.push(comp.sections.iter().map(|s| (s.start + base, s.first + base, s.nseg, s.end + base)).collect());

        // Density mechanisms: one instance per segment centre of the section, in placement order.
        for (pi, p) in cell.density.iter().enumerate() {
            let ctx = format!("cell {ci}, density placement {pi}");
            let k = self.lookup(&p.mechanism, MechanismKind::Density, ctx)?;
            let info = self.catalogue.get(&p.mechanism).unwrap().clone();
            if p.section >= ns {
                return Err(err_cell(ci, format!("density placement {pi}: no section {}", p.section)));
            }
            let sn = comp.sections[p.section];
            let given = resolve_params(&info, p.params.iter().map(|(k, v)| (k, v)))?;
            for (_, v) in &given {
                if let Values::PerSegment(vals) = v {
                    if vals.len() != sn.nseg as usize {
                        return Err(err_cell(
                            ci,
                            format!("density placement {pi} ({}): {} per-segment values for nseg {}", p.mechanism, vals.len(), sn.nseg),
                        ));
                    }
                }
            }
            for j in 0..sn.nseg {
                let mut params = info.defaults();
                for (idx, v) in &given {
                    params[*idx] = v.at(j as usize);
                }
                let node = sn.first + j + base;
                let inst = self.add_instance(k, node, 1.0, ci, Some((cell, p.section)), &params)?;
                self.g.density_instance.insert((k as u32, node), inst);
            }
        }

        // Point processes become the cell's targets.
        let t0 = self.g.targets.len() as u32;
        for (pi, p) in cell.points.iter().enumerate() {
            let ctx = format!("cell {ci}, point placement {pi}");
            let k = self.lookup(&p.mechanism, MechanismKind::Point, ctx)?;
            let info = self.catalogue.get(&p.mechanism).unwrap().clone();
            check_location(ci, &p.location, ns, &format!("point placement {pi}"))?;
            let mut params = info.defaults();
            for (idx, v) in resolve_params(&info, p.params.iter().map(|(k, v)| (k, v)))? {
                params[idx] = *v;
            }
            let local = comp.node_at(p.location.section, p.location.x);
            let node = local + base;
            let scale = 1e2 / matrix_area(comp.area[local as usize]);
            let section = comp.section[local as usize] as usize;
            let instance = self.add_instance(k, node, scale, ci, Some((cell, section)), &params)?;
            self.g.art_cell.entry(k).or_default().resize(instance as usize + 1, ci as u32);
            self.g.targets.push(Target { mech: k as u32, instance });
        }
        self.g.cell_targets.push(t0..self.g.targets.len() as u32);

        let d0 = self.g.detectors.len() as u32;
        for (di, det) in cell.detectors.iter().enumerate() {
            check_location(ci, &det.location, ns, &format!("detector {di}"))?;
            let node = comp.node_at(det.location.section, det.location.x) + base;
            self.g.detectors.push(DetectorState {
                cell: ci as u32,
                source: di as u32,
                node,
                threshold: det.threshold,
                above: false,
                v_prev: 0.0,
            });
        }
        self.g.cell_detectors.push(d0..self.g.detectors.len() as u32);
        Ok(())
    }

    fn add_artificial(&mut self, ci: usize, cell: &ArtificialCell) -> Result<(), SolverError> {
        let k = self.lookup(&cell.mechanism, MechanismKind::Artificial, format!("cell {ci}"))?;
        let info = self.catalogue.get(&cell.mechanism).unwrap().clone();
        let mut params = info.defaults();
        for (idx, v) in resolve_params(&info, cell.params.iter().map(|(k, v)| (k, v)))? {
            params[idx] = *v;
        }
        let instance = self.add_instance(k, 0, 0.0, ci, None, &params)?;
        for (name, values) in &cell.arrays {
            self.slot(k)?.mech.set_array(instance as usize, name, values).map_err(|e| err_cell(ci, e))?;
        }
        let n = self.g.v.len() as u32;
        self.g.cell_nodes.push(n..n);
        self.g.node_index.push(Vec::new());
        let t0 = self.g.targets.len() as u32;
        self.g.targets.push(Target { mech: k as u32, instance });
        self.g.cell_targets.push(t0..t0 + 1);
        let v = self.g.art_cell.entry(k).or_default();
        v.resize(instance as usize + 1, ci as u32);
        v[instance as usize] = ci as u32;
        let d0 = self.g.detectors.len() as u32;
        self.g.cell_detectors.push(d0..d0);
        Ok(())
    }

    fn finish(self, opts: SimOptions) -> Result<CellGroup, SolverError> {
        let Builder { mechs, ions, g, .. } = self;
        // Keep only the mechanism types in use, in catalogue order; renumber target slots accordingly.
        let mut renumber = vec![u32::MAX; mechs.len()];
        let mut slots = Vec::new();
        let mut art_cell = Vec::new();
        let mut mech_by_name = HashMap::new();
        let mut art = g.art_cell;
        for (k, m) in mechs.into_iter().enumerate() {
            if let Some(m) = m {
                if m.mech.is_empty() && !opts.globals.iter().any(|(n, ..)| *n == m.mech.info().name) {
                    continue;
                }
                renumber[k] = slots.len() as u32;
                mech_by_name.insert(m.mech.info().name.clone(), slots.len());
                art_cell.push(art.remove(&k).unwrap_or_default());
                slots.push(m);
            }
        }
        let targets = g.targets.iter().map(|t| Target { mech: renumber[t.mech as usize], instance: t.instance }).collect();
        let density_instance = g.density_instance.into_iter().map(|((k, node), i)| ((renumber[k as usize], node), i)).collect();
        let n = g.v.len();
        let imem = opts.membrane_current.then(|| MembraneCurrent {
            el_rhs: vec![0.0; n],
            el_d: vec![0.0; n],
            ionic: vec![0.0; n],
            gmem: vec![0.0; n],
            cap: g.cap.clone(),
            value: vec![0.0; n],
        });
        let ion_init = ions.iter().map(|i| (i.erev.clone(), i.conc_in.clone(), i.conc_out.clone())).collect();
        let mut group = CellGroup {
            opts,
            step: 0,
            v: g.v,
            rhs: vec![0.0; n],
            d: vec![0.0; n],
            d_static: g.d_static,
            a: g.a,
            b: g.b,
            parent: g.parent,
            area: g.area,
            cell_nodes: g.cell_nodes,
            compartments: g.compartments,
            imem,
            position: g.position,
            distance: g.distance,
            mechs: slots,
            ions,
            ion_init,
            targets,
            cell_targets: g.cell_targets,
            conn_target: vec![],
            conn_key: vec![],
            conn_weights: vec![],
            conn_offset: vec![],
            queue: BinaryHeap::new(),
            seq: 0,
            outbox: Outbox::default(),
            detectors: g.detectors,
            cell_detectors: g.cell_detectors,
            art_cell,
            pending_spikes: vec![],
            mech_by_name,
            density_instance,
            node_index: g.node_index,
        };
        group.initialize(crate::DEFAULT_V_INIT);
        Ok(group)
    }
}

fn check_location(cell: usize, loc: &Location, ns: usize, what: &str) -> Result<(), SolverError> {
    if loc.section >= ns {
        return Err(err_cell(cell, format!("{what}: no section {} (the cell has {ns})", loc.section)));
    }
    if !(0.0..=1.0).contains(&loc.x) {
        return Err(err_cell(cell, format!("{what}: x = {} is outside 0..1", loc.x)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::morphology::{Morphology, Section};

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
        g.initialize(-65.0);
        g.advance(2.0, &mut Vec::new(), &mut Vec::new());
        [3usize, 8, 13, 20].iter().map(|&j| g.voltages()[1 + j]).collect()
    }

    fn err(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
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
