//! The mechanism interface of a cell group. One [`Mechanism`] object holds every instance of one mechanism type
//! across all cells of the group, as structure-of-arrays, and is called once per phase of a time step with the
//! whole group's node arrays ([`Cx`]): `initialize` (NEURON INITIAL), `current` (BREAKPOINT currents: adds to
//! the right-hand side and the diagonal, and to ion currents), `update_state` (SOLVE), and `net_receive` for
//! events (NET_RECEIVE, with the connection's weight vector, self-events and net_event through an [`Outbox`]).
//! Dynamic dispatch happens once per mechanism type and phase, never per compartment.
//!
//! Built-in kernels live in the submodules; a [`Catalogue`] maps names to constructors and fixes the order in
//! which mechanism types run, so that sums into a node do not depend on which cells share a group.

/// The accessors every built-in kernel implements the same way (fields `info`, `sites`, `p`); the `cached`
/// form also invalidates a cache keyed on dt when a parameter changes.
macro_rules! kernel_accessors {
    () => {
        kernel_accessors!(@common);
        fn set_param(&mut self, i: usize, k: usize, value: f64) {
            self.p.cols[k][i] = value;
        }
    };
    (cached) => {
        kernel_accessors!(@common);
        fn set_param(&mut self, i: usize, k: usize, value: f64) {
            self.p.cols[k][i] = value;
            self.fac_dt = f64::NAN;
        }
    };
    (@common) => {
        fn info(&self) -> &MechanismInfo {
            &self.info
        }
        fn len(&self) -> usize {
            self.sites.len()
        }
        fn param(&self, i: usize, k: usize) -> f64 {
            self.p.cols[k][i]
        }
        fn instance_node(&self, i: usize) -> u32 {
            self.sites.node[i]
        }
    };
}

/// `shrink_to_fit` and `heap_bytes` of a built-in kernel from the list of its per-instance vectors (besides
/// `sites` and `p`).
macro_rules! kernel_storage {
    ($($field:ident),*) => {
        fn shrink_to_fit(&mut self) {
            self.sites.shrink_to_fit();
            self.p.shrink_to_fit();
            $(self.$field.shrink_to_fit();)*
        }
        fn heap_bytes(&self) -> usize {
            self.sites.heap_bytes() + self.p.heap_bytes() $(+ $crate::mechanism::vec_bytes(&self.$field))*
        }
    };
}

mod artificial;
mod density;
mod point;

pub use artificial::{NetStim, VecStim};
pub use density::{Hh, Pas};
pub use point::{Exp2Syn, ExpSyn, IClamp};

use crate::ion::IonData;

/// Where instances sit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MechanismKind {
    /// Distributed over segments (S/cm2, mA/cm2), one instance per segment centre (NEURON SUFFIX).
    Density,
    /// At one node, currents in nA (NEURON POINT_PROCESS).
    Point,
    /// No node at all: a spike source driven by events (NEURON ARTIFICIAL_CELL).
    Artificial,
}

impl MechanismKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MechanismKind::Density => "density",
            MechanismKind::Point => "point",
            MechanismKind::Artificial => "artificial cell",
        }
    }
}

/// A named scalar with its default value and unit.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    pub name: String,
    pub default: f64,
    pub unit: String,
}

impl ParamSpec {
    pub fn new(name: &str, default: f64, unit: &str) -> ParamSpec {
        ParamSpec { name: name.into(), default, unit: unit.into() }
    }
}

/// How a mechanism uses an ion species (NMODL `USEION name READ ... WRITE ...`).
#[derive(Debug, Clone, PartialEq)]
pub struct IonUse {
    pub ion: String,
    pub read_erev: bool,
    pub write_erev: bool,
    pub write_current: bool,
    pub read_conc: bool,
    pub write_conc: bool,
    /// The species' charge if the mechanism declares it (NMODL VALENCE).
    pub valence: Option<f64>,
}

impl IonUse {
    /// Reads the reversal potential, writes the current (the common channel pattern).
    pub fn channel(ion: &str) -> IonUse {
        IonUse {
            ion: ion.into(),
            read_erev: true,
            write_erev: false,
            write_current: true,
            read_conc: false,
            write_conc: false,
            valence: None,
        }
    }

    /// What this use contributes to the style of the ion instance at its node.
    pub fn style(&self) -> crate::ion::IonStyle {
        crate::ion::IonStyle::of(self.read_conc, self.write_conc, self.read_erev, self.write_erev)
    }
}

/// Static description of a mechanism type.
#[derive(Debug, Clone, PartialEq)]
pub struct MechanismInfo {
    pub name: String,
    pub kind: MechanismKind,
    /// Per-instance parameters (NMODL RANGE PARAMETERs), settable at placement.
    pub params: Vec<ParamSpec>,
    /// Per-instance readable variables (STATEs and RANGE ASSIGNEDs) for probes.
    pub states: Vec<String>,
    /// Mechanism-wide settings (NMODL GLOBAL PARAMETERs), e.g. `usetable` of `hh`.
    pub globals: Vec<ParamSpec>,
    pub ions: Vec<IonUse>,
    /// ELECTRODE_CURRENT: the current flows into the cell (positive depolarises) and is not membrane current.
    pub electrode: bool,
    /// Number of NET_RECEIVE arguments (weights per connection); 0 if the mechanism takes no events.
    pub weights: usize,
}

impl MechanismInfo {
    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }
    pub fn state_index(&self, name: &str) -> Option<usize> {
        self.states.iter().position(|p| p == name)
    }
    pub fn global_index(&self, name: &str) -> Option<usize> {
        self.globals.iter().position(|p| p.name == name)
    }
    pub fn param_names(&self) -> String {
        self.params.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
    }
    pub fn defaults(&self) -> Vec<f64> {
        self.params.iter().map(|p| p.default).collect()
    }
}

/// Where a new instance sits, as the group tells the mechanism when adding it.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// Group node index (unused for artificial cells).
    pub node: u32,
    /// Factor from nA to the node's current density units: 100 / area(um2), with area 100 for zero-area nodes
    /// (NEURON's `1e2/_nd_area`); point processes multiply their current and conductance by it.
    pub scale: f64,
    /// For each entry of `info().ions`: the ion instance index at this node.
    pub ions: Vec<u32>,
    /// Group cell index that owns the instance.
    pub cell: u32,
    /// Membrane area of the node (um2; 0 for zero-area nodes and artificial cells).
    pub area: f64,
    /// Diameter of the node's segment (um; 0 for artificial cells).
    pub diam: f64,
}

/// A request a mechanism makes while running: a self-event (NMODL `net_send(delay, flag)`) or a spike
/// (`net_event(t)`). The group turns them into queue entries and spikes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outgoing {
    SelfEvent { instance: u32, time: f64, flag: f64 },
    Spike { instance: u32, time: f64 },
}

/// Collects [`Outgoing`] requests during one call.
#[derive(Debug, Default)]
pub struct Outbox {
    pub items: Vec<Outgoing>,
}

impl Outbox {
    pub fn net_send(&mut self, instance: usize, time: f64, flag: f64) {
        self.items.push(Outgoing::SelfEvent { instance: instance as u32, time, flag });
    }
    pub fn net_event(&mut self, instance: usize, time: f64) {
        self.items.push(Outgoing::Spike { instance: instance as u32, time });
    }
}

/// The group's arrays as one mechanism kernel sees them. Node arrays are indexed by group node index; ion
/// species by the indices in `ion_ids` (one per `info().ions` entry of the mechanism being called).
pub struct Cx<'a> {
    /// Time of the evaluation: t + dt/2 for `current`, t + dt for `update_state`, the time for `initialize`.
    pub t: f64,
    pub dt: f64,
    pub celsius: f64,
    /// Crank-Nicolson (NEURON `secondorder = 2`).
    pub second_order: bool,
    pub v: &'a [f64],
    /// Right-hand side of the current balance (mA/cm2 at membrane nodes, nA at zero-area nodes).
    pub rhs: &'a mut [f64],
    /// Diagonal (S/cm2 / uS).
    pub d: &'a mut [f64],
    /// Electrode (stimulus) contributions, kept apart when membrane current is recorded (NEURON's sav_rhs and
    /// sav_d); `None` otherwise.
    pub electrode: Option<(&'a mut [f64], &'a mut [f64])>,
    pub ions: &'a mut [IonData],
    pub ion_ids: &'a [usize],
    pub out: &'a mut Outbox,
}

impl Cx<'_> {
    /// The i-th ion species this mechanism uses.
    pub fn ion(&mut self, i: usize) -> &mut IonData {
        &mut self.ions[self.ion_ids[i]]
    }

    /// Add a membrane current `i` (outward positive) with conductance `g` at a node, in node units.
    #[inline(always)]
    pub fn add_membrane(&mut self, node: usize, i: f64, g: f64) {
        self.rhs[node] -= i;
        self.d[node] += g;
    }

    /// Add an electrode current `i` (inward positive, NEURON ELECTRODE_CURRENT) with di/dv `g`, in node units.
    #[inline(always)]
    pub fn add_electrode(&mut self, node: usize, i: f64, g: f64) {
        self.rhs[node] += i;
        self.d[node] -= g;
        if let Some((er, ed)) = self.electrode.as_mut() {
            er[node] += i;
            ed[node] -= g;
        }
    }
}

/// Context of an event delivery.
pub struct EventCx<'a> {
    /// The event's delivery time (NEURON sets `t` to it while NET_RECEIVE runs).
    pub t: f64,
    pub out: &'a mut Outbox,
}

/// The arithmetic one instance performs per time step in its current and state kernels (BREAKPOINT,
/// which nrn_cur evaluates twice, and SOLVE), counted from the code the mechanism runs, after
/// step-invariant values are cached and fields all instances share are taken as scalars. Divisions
/// are those of IEEE `x / y` on one lane (what is the same for every instance, such as a division
/// of two parameters all instances share, is computed once per call and not counted); `exps` the
/// calls of `exp`; `other` every other arithmetic, comparison, select and fused update. Loads and
/// stores are not counted. `miv bench floor` sets each count against this core's throughput for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepArithmetic {
    pub divisions: u32,
    pub exps: u32,
    pub other: u32,
    /// The step includes an implicit (Newton) solve, whose iterations are not counted.
    pub implicit: bool,
}

/// One mechanism type with all its instances in a group. See the module comment and docs/solvers.md.
pub trait Mechanism: Send {
    fn info(&self) -> &MechanismInfo;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Append an instance with every parameter given (in `info().params` order).
    fn add_instance(&mut self, site: &Site, params: &[f64]);
    fn param(&self, instance: usize, index: usize) -> f64;
    /// The group node an instance was added at (`Site::node`).
    fn instance_node(&self, instance: usize) -> u32;
    /// Release spare capacity once all instances are added (the group calls it after building).
    fn shrink_to_fit(&mut self) {}
    /// Heap memory held (bytes), for memory accounting.
    fn heap_bytes(&self) -> usize {
        0
    }
    /// The arithmetic of one instance's step, where the mechanism can count it (NMODL mechanisms do;
    /// the hand-written ones decline).
    fn step_arithmetic(&self) -> Option<StepArithmetic> {
        None
    }
    fn set_param(&mut self, instance: usize, index: usize, value: f64);
    /// Value of `info().states[index]` of an instance.
    fn state(&self, instance: usize, index: usize) -> f64;
    /// Set `info().states[index]` of an instance (NEURON's `sec(x).m_hh = ...`); mechanisms whose states are
    /// not stored as such decline.
    fn set_state(&mut self, instance: usize, index: usize, value: f64) -> Result<(), String> {
        let _ = (instance, index, value);
        Err(format!("the states of mechanism {:?} cannot be set", self.info().name))
    }
    fn global(&self, index: usize) -> f64 {
        let _ = index;
        f64::NAN
    }
    fn set_global(&mut self, index: usize, value: f64) {
        let _ = (index, value);
    }
    /// Attach a named array to an instance (e.g. the spike times of `VecStim`).
    fn set_array(&mut self, instance: usize, name: &str, values: &[f64]) -> Result<(), String> {
        let _ = (instance, values);
        Err(format!("mechanism {:?} takes no array {name:?}", self.info().name))
    }
    /// Attach a random stream key (e.g. derived from (seed, purpose, gid)) to an instance of a mechanism that
    /// draws random numbers.
    fn set_random_stream(&mut self, instance: usize, key: [u32; 4]) -> Result<(), String> {
        let _ = (instance, key);
        Err(format!("mechanism {:?} draws no random numbers", self.info().name))
    }
    /// INITIAL: states from the current v (and ions); may send self-events through `cx.out`.
    fn initialize(&mut self, cx: &mut Cx) -> KernelResult;
    /// Currents at `cx.v` into `cx.rhs`, conductances into `cx.d`, ion currents into the ion arrays.
    fn current(&mut self, cx: &mut Cx) -> KernelResult;
    /// Advance states by `cx.dt` using the new `cx.v`.
    fn update_state(&mut self, cx: &mut Cx) -> KernelResult;
    /// NET_RECEIVE for one instance. `flag` is 0 for a connection event, the `net_send` flag for a self-event.
    fn net_receive(&mut self, instance: usize, weights: &mut [f64], flag: f64, cx: &mut EventCx) -> KernelResult {
        let _ = (instance, weights, flag, cx);
        Ok(())
    }
    /// Whether connection events may be delivered in batches through [`net_receive_batch`]: NET_RECEIVE
    /// changes nothing but its own instance's variables and the connection's weights, and reads neither the
    /// time nor random numbers, nor sends events. A group then delivers a step's connection events of this
    /// type together (after the other events of the step, which cannot see the difference).
    ///
    /// [`net_receive_batch`]: Mechanism::net_receive_batch
    fn batches_events(&self) -> bool {
        false
    }
    /// Whether NET_RECEIVE (and its INITIAL block, if any) never writes its arguments, so that connections
    /// with equal weight vectors can share one. Without an INITIAL block a group still clears every weight but
    /// the first at initialisation ([`init_weights`](Mechanism::init_weights)), which gives the same for
    /// every connection of a shared vector.
    fn weights_read_only(&self) -> bool {
        false
    }
    /// NET_RECEIVE for connection events (flag 0) in order: event k on `instances[k]` with the weight vector
    /// `weights[k * w..(k + 1) * w]`, w = `info().weights` (written back). Events on one instance must see
    /// each other in order; the results must be those of `net_receive` per event.
    fn net_receive_batch(&mut self, instances: &[u32], weights: &mut [f64]) -> KernelResult {
        let w = self.info().weights;
        let mut out = Outbox::default();
        let mut cx = EventCx { t: f64::NAN, out: &mut out };
        for (k, &i) in instances.iter().enumerate() {
            self.net_receive(i as usize, &mut weights[k * w..(k + 1) * w], 0.0, &mut cx)?;
        }
        Ok(())
    }
    /// NET_RECEIVE INITIAL for one connection's weights at initialisation. The default does what NEURON does
    /// without such a block: clear every weight but the first.
    fn init_weights(&mut self, instance: usize, weights: &mut [f64]) -> KernelResult {
        let _ = instance;
        for w in weights.iter_mut().skip(1) {
            *w = 0.0;
        }
        Ok(())
    }
}

/// What a kernel call returns: an error message (e.g. a Newton iteration of a compiled mechanism that did not
/// converge) stops the simulation with [`crate::SolverError::Kernel`].
pub type KernelResult = Result<(), String>;

/// Builds an empty mechanism object (it may capture, e.g., a compiled NMODL mechanism).
pub type Constructor = std::sync::Arc<dyn Fn() -> Box<dyn Mechanism> + Send + Sync>;

/// Named mechanism constructors. Registration order is the order in which mechanism types are evaluated in
/// every phase of a step.
#[derive(Clone)]
pub struct Catalogue {
    entries: Vec<(MechanismInfo, Constructor)>,
}

impl Catalogue {
    pub fn empty() -> Catalogue {
        Catalogue { entries: Vec::new() }
    }

    /// `pas`, `hh`, `IClamp`, `ExpSyn`, `Exp2Syn`, `NetStim`, `VecStim`.
    pub fn builtin() -> Catalogue {
        let mut c = Catalogue::empty();
        c.register(|| Box::new(Pas::default()));
        c.register(|| Box::new(Hh::default()));
        c.register(|| Box::new(IClamp::default()));
        c.register(|| Box::new(ExpSyn::default()));
        c.register(|| Box::new(Exp2Syn::default()));
        c.register(|| Box::new(NetStim::default()));
        c.register(|| Box::new(VecStim::default()));
        c
    }

    /// Add a mechanism type (replacing one of the same name, keeping its position).
    pub fn register(&mut self, make: impl Fn() -> Box<dyn Mechanism> + Send + Sync + 'static) {
        let make: Constructor = std::sync::Arc::new(make);
        let info = make().info().clone();
        match self.entries.iter().position(|(i, _)| i.name == info.name) {
            Some(k) => self.entries[k] = (info, make),
            None => self.entries.push((info, make)),
        }
    }

    pub fn get(&self, name: &str) -> Option<&MechanismInfo> {
        self.entries.iter().find(|(i, _)| i.name == name).map(|(i, _)| i)
    }

    /// The description of the mechanism at position `index`.
    pub fn get_index(&self, index: usize) -> &MechanismInfo {
        &self.entries[index].0
    }

    /// Position in the evaluation order.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.entries.iter().position(|(i, _)| i.name == name)
    }

    pub fn make(&self, index: usize) -> Box<dyn Mechanism> {
        (self.entries[index].1)()
    }

    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|(i, _)| i.name.as_str()).collect()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Default for Catalogue {
    fn default() -> Catalogue {
        Catalogue::builtin()
    }
}

/// Heap bytes of a vector's buffer.
pub fn vec_bytes<T>(v: &Vec<T>) -> usize {
    v.capacity() * std::mem::size_of::<T>()
}

/// Per-instance parameter storage for kernels: one column per parameter.
#[derive(Debug, Clone, Default)]
pub(crate) struct Columns {
    pub cols: Vec<Vec<f64>>,
}

impl Columns {
    pub fn new(n: usize) -> Columns {
        Columns { cols: vec![Vec::new(); n] }
    }
    pub fn push(&mut self, values: &[f64]) {
        for (c, v) in self.cols.iter_mut().zip(values) {
            c.push(*v);
        }
    }
    pub fn shrink_to_fit(&mut self) {
        self.cols.iter_mut().for_each(Vec::shrink_to_fit);
    }
    pub fn heap_bytes(&self) -> usize {
        vec_bytes(&self.cols) + self.cols.iter().map(vec_bytes).sum::<usize>()
    }
}

/// Instance bookkeeping of a kernel: node, ion instances and (point processes only) the node scale.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sites {
    pub node: Vec<u32>,
    max_node: u32,
    keep_scale: bool,
    pub scale: Vec<f64>,
    pub ions: Vec<Vec<u32>>,
    max_ion: Vec<u32>,
}

impl Sites {
    /// Sites of a point process, which keep `Site::scale`.
    pub fn scaled() -> Sites {
        Sites { keep_scale: true, ..Sites::default() }
    }
    pub fn push(&mut self, s: &Site) {
        self.node.push(s.node);
        self.max_node = self.max_node.max(s.node);
        if self.keep_scale {
            self.scale.push(s.scale);
        }
        if self.ions.len() < s.ions.len() {
            self.ions.resize(s.ions.len(), Vec::new());
            self.max_ion.resize(s.ions.len(), 0);
        }
        for (k, &i) in s.ions.iter().enumerate() {
            self.ions[k].push(i);
            self.max_ion[k] = self.max_ion[k].max(i);
        }
    }
    pub fn len(&self) -> usize {
        self.node.len()
    }
    pub fn shrink_to_fit(&mut self) {
        self.node.shrink_to_fit();
        self.scale.shrink_to_fit();
        self.ions.iter_mut().for_each(Vec::shrink_to_fit);
    }
    pub fn heap_bytes(&self) -> usize {
        vec_bytes(&self.node)
            + vec_bytes(&self.scale)
            + vec_bytes(&self.max_ion)
            + self.ions.iter().map(vec_bytes).sum::<usize>()
    }
    /// Largest ion instance index of the k-th ion (0 when empty).
    pub fn max_ion(&self, k: usize) -> usize {
        self.max_ion.get(k).copied().unwrap_or(0) as usize
    }
    /// Largest node index (0 when empty).
    pub fn max_node(&self) -> usize {
        self.max_node as usize
    }
}
