//! The runtime API: a compiled `.mod` mechanism ([`Mechanism`], immutable, shareable) and the
//! structure-of-arrays storage of its instances ([`Instances`]) on which NEURON's entry points run.
//!
//! The simulator gathers inputs into instance fields (v, ion values), calls an entry point, and
//! scatters outputs (membrane current and conductance, ion currents and their di/dv, written
//! concentrations). Field indices come from [`MechanismInfo`]; all units are NEURON's.

use std::path::Path;
use std::sync::Arc;

use crate::check::check;
use crate::error::{Error, Result, Source};
use crate::lower::{lower, Compiled, FieldRole, Input, Kernel};
use crate::model::*;
use crate::parser::parse;
use crate::vm::{self, Emitted, Env, TableData, Workspace, LANES};
use miv_partition::rng::CounterStream;
use miv_solvers::ion::default_species;

/// Simulation values a kernel reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Context {
    pub t: f64,
    pub dt: f64,
    pub celsius: f64,
    /// Crank-Nicolson (NEURON's secondorder = 2): implicit solves then take dt/2 and extrapolate.
    pub second_order: bool,
}

/// One variable of a USEION statement and the field that carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct IonField {
    pub kind: IonVarKind,
    pub name: String,
    pub field: usize,
    /// Named in USEION READ.
    pub read: bool,
    /// The simulator copies the ion's value into the field before every entry point.
    pub gathered: bool,
    /// The mechanism writes it: a concentration or reversal potential to copy back after every
    /// entry point, or a current to add to the ion's current after `current`.
    pub written: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IonInfo {
    pub name: String,
    /// VALENCE if given, else NEURON's for na, k, ca, else 1.
    pub valence: f64,
    /// Whether VALENCE was given in the file.
    pub valence_declared: bool,
    pub fields: Vec<IonField>,
    /// Field of d(ion current)/dv, when the mechanism writes the ion's current.
    pub didv_field: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParamInfo {
    pub name: String,
    pub default: f64,
    pub units: Option<String>,
    /// RANGE: one value per instance; otherwise one value for all instances (GLOBAL).
    pub per_instance: bool,
}

/// What a mechanism is, as the simulator and the `miv mech check` listing need it.
#[derive(Debug, Clone, PartialEq)]
pub struct MechanismInfo {
    pub name: String,
    pub file: String,
    pub kind: MechKind,
    /// ELECTRODE_CURRENT: its current was negated so `current_field` is outward like the others.
    pub electrode_current: bool,
    pub ions: Vec<IonInfo>,
    pub parameters: Vec<ParamInfo>,
    pub states: Vec<String>,
    /// ASSIGNED variables visible per instance (RANGE) or as GLOBAL.
    pub assigned: Vec<ParamInfo>,
    /// Number of NET_RECEIVE arguments (the weight vector length), if it has NET_RECEIVE.
    pub net_receive_args: Option<usize>,
    pub field_names: Vec<String>,
    pub v_field: Option<usize>,
    pub area_field: Option<usize>,
    pub diam_field: Option<usize>,
    /// Total outward current (mA/cm2 density, nA point) after `current`.
    pub current_field: Option<usize>,
    /// d(current)/dv (S/cm2 density, uS point) after `current`.
    pub conductance_field: Option<usize>,
    pub warnings: Vec<String>,
}

/// Whether `ops` (or an implicit solve among them) loads instance field `field`.
fn loads_field(ops: &[vm::Op], field: u32) -> bool {
    ops.iter().any(|op| match op {
        vm::Op::Load { field: f, .. } => *f == field,
        vm::Op::Implicit(i) => loads_field(&i.program, field),
        _ => false,
    })
}

/// Per field: whether the bulk kernels may read it as a scalar when all instances agree (see
/// [`Mechanism::uniform_candidate`]).
fn uniform_candidates(c: &Compiled) -> Vec<bool> {
    use std::collections::HashSet;
    let k = &c.kernels;
    let (mut loaded, mut stored) = (HashSet::new(), HashSet::new());
    for kernel in k.current.iter().flatten().chain(&k.state) {
        crate::lower::loaded_fields(&kernel.program.ops, &mut loaded);
    }
    for kernel in k
        .current
        .iter()
        .flatten()
        .chain(&k.state)
        .chain(k.net_receive.iter().flatten())
        .chain(k.net_init.iter().flatten())
    {
        crate::lower::hoist::stored_fields(&kernel.program.ops, &mut stored);
    }
    let mut gathered: HashSet<u32> = c.layout.v.iter().map(|&f| f as u32).collect();
    for ion in &c.model.ions {
        for u in ion.read.iter().chain(&ion.write) {
            if let Storage::Field(f) | Storage::Shadow { field: f, .. } = c.model.vars[u.var].storage {
                gathered.insert(f as u32);
            }
        }
    }
    (0..c.layout.fields.len() as u32)
        .map(|f| loaded.contains(&f) && !stored.contains(&f) && !gathered.contains(&f))
        .collect()
}

/// Add the per-lane arithmetic of `p` to `a` (see [`Instances::step_arithmetic`]). A fused cnexp
/// update `x + (1 - exp(dt*a))*(inf - x)` is one `exp` and five other operations. The scalar
/// prologue (what is the same for every instance, computed once per call) is not counted.
fn count_arithmetic(p: &vm::Program, a: &mut miv_solvers::StepArithmetic) {
    use crate::ops::{Bin, Un};
    for op in &p.ops {
        match op {
            vm::Op::Bin { op: Bin::Div, .. } => a.divisions += 1,
            vm::Op::Un { op: Un::Exp, .. } => a.exps += 1,
            vm::Op::Cnexp { .. } => {
                a.exps += 1;
                a.other += 5;
            }
            vm::Op::Bin { .. } | vm::Op::Un { .. } | vm::Op::Select { .. } | vm::Op::Table { .. } => a.other += 1,
            vm::Op::Implicit(_) => a.implicit = true,
            _ => {}
        }
    }
}

/// A compiled `.mod` file.
#[derive(Debug)]
pub struct Mechanism {
    c: Compiled,
    info: MechanismInfo,
    /// NET_RECEIVE for many events at once, by `usetable`, if it qualifies (see [`EventBatch`]).
    batch: Option<[EventBatch; 2]>,
    /// Per field: the prepare kernel reads it, so writing it makes the cached values stale.
    prepare_reads: Vec<bool>,
    /// Per field: the current or state kernel loads it and no per-step kernel (current, state,
    /// NET_RECEIVE) stores it, and the group does not gather into it: when every instance holds the
    /// same value, those kernels may take it as a scalar (see [`Instances::uniform`]).
    uniform_candidate: Vec<bool>,
}

/// NET_RECEIVE rewritten to run over a batch of events: lane k is event k, on a compact copy of the
/// instance fields the block uses, followed by the arguments (weights, then flag) as per-lane
/// fields. Only a block that touches nothing but its own instance's fields and its arguments
/// qualifies: no `t`, no random numbers, no net_send or net_event, no played vectors, no implicit
/// solve. Events on different instances are then independent, and each lane computes exactly what
/// the one-event kernel computes.
#[derive(Debug)]
struct EventBatch {
    program: vm::Program,
    inputs: Vec<(u32, Input)>,
    /// The instance field of each compact field.
    fields: Vec<usize>,
    /// Compact fields the block writes.
    stored: Vec<usize>,
}

impl EventBatch {
    fn new(k: &Kernel, n_args: usize) -> Option<EventBatch> {
        if k.inputs.iter().any(|(_, i)| *i == Input::T) {
            return None;
        }
        let mut fields: Vec<usize> = Vec::new();
        for op in &k.program.ops {
            match op {
                vm::Op::Load { field, .. } | vm::Op::Store { field, .. } if !fields.contains(&(*field as usize)) => {
                    fields.push(*field as usize);
                }
                vm::Op::Random { .. }
                | vm::Op::SetSeed { .. }
                | vm::Op::RestartRandom { .. }
                | vm::Op::NetSend { .. }
                | vm::Op::NetEvent { .. }
                | vm::Op::VecElement { .. }
                | vm::Op::Implicit(_) => return None,
                vm::Op::ArgLoad { arg, .. } | vm::Op::ArgStore { arg, .. } if *arg as usize > n_args => return None,
                _ => {}
            }
        }
        let compact = |f: u32| fields.iter().position(|&x| x == f as usize).unwrap() as u32;
        let arg = |a: u16| (fields.len() + a as usize) as u32;
        let mut stored = Vec::new();
        let ops = k
            .program
            .ops
            .iter()
            .map(|op| match *op {
                vm::Op::Load { dst, field } => vm::Op::Load { dst, field: compact(field) },
                vm::Op::Store { field, src } => {
                    stored.push(compact(field) as usize);
                    vm::Op::Store { field: compact(field), src }
                }
                vm::Op::ArgLoad { dst, arg: a } => vm::Op::Load { dst, field: arg(a) },
                vm::Op::ArgStore { arg: a, src } => vm::Op::Store { field: arg(a), src },
                ref other => other.clone(),
            })
            .collect();
        stored.sort_unstable();
        stored.dedup();
        Some(EventBatch { program: vm::Program { ops, ..k.program.clone() }, inputs: k.inputs.clone(), fields, stored })
    }
}

impl Mechanism {
    /// Compile NMODL text; `file` names it in errors.
    pub fn compile(text: &str, file: &str) -> Result<Mechanism> {
        let source = Source::new(file);
        let module = parse(text, &source)?;
        let model = check(&module, file, &source)?;
        let c = lower(model, &source)?;
        let info = describe(&c);
        let n_args = info.net_receive_args.unwrap_or(0);
        let batch = c
            .kernels
            .net_receive
            .as_ref()
            .and_then(|[a, b]| Some([EventBatch::new(a, n_args)?, EventBatch::new(b, n_args)?]));
        let mut prepare_reads = vec![false; c.layout.fields.len()];
        for k in c.kernels.prepare.iter().flatten() {
            let mut loaded = std::collections::HashSet::new();
            crate::lower::loaded_fields(&k.program.ops, &mut loaded);
            loaded.into_iter().for_each(|f| prepare_reads[f as usize] = true);
        }
        let uniform_candidate = uniform_candidates(&c);
        Ok(Mechanism { c, info, batch, prepare_reads, uniform_candidate })
    }

    /// Read and compile one `.mod` file.
    pub fn load(path: &Path) -> Result<Mechanism> {
        let bytes = std::fs::read(path).map_err(|e| Error::Io { path: path.display().to_string(), source: e })?;
        Mechanism::compile(&String::from_utf8_lossy(&bytes), &path.display().to_string())
    }

    pub fn info(&self) -> &MechanismInfo {
        &self.info
    }

    /// Whether a kernel run after BREAKPOINT within a step (SOLVE's state update, NET_RECEIVE, the
    /// NetCon INITIAL block) reads the instance's `v` field. When none does, `v` need not be gathered
    /// again after the cable solve.
    pub fn reads_v_after_current(&self) -> bool {
        let Some(v) = self.info.v_field else { return false };
        let k = &self.c.kernels;
        let kernels = k.state.iter().chain(k.net_receive.iter().flatten()).chain(k.net_init.iter().flatten());
        kernels.into_iter().any(|k| loads_field(&k.program.ops, v as u32))
    }

    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// Per-instance field of a variable (RANGE parameter, state, assigned, ion variable) or of a
    /// special input/output (`v`, `area`, `diam`, `_i`, `_g`, `_di<ion>_dv`).
    pub fn field(&self, name: &str) -> Option<usize> {
        self.c.layout.find(name)
    }

    /// Whether it has TABLE statements (the `usetable` global applies).
    pub fn has_tables(&self) -> bool {
        !self.c.tables.is_empty()
    }

    /// Whether it plays event times from a vector (VecStim's recognised VERBATIM).
    pub fn plays_vectors(&self) -> bool {
        self.c.model.funcs.iter().any(|f| f.builtin == Some(BuiltinProc::VectorElement))
    }

    /// Whether NET_RECEIVE can run over many events at once ([`Instances::net_receive_batch`]).
    pub fn batches_events(&self) -> bool {
        self.batch.is_some()
    }

    /// Whether NET_RECEIVE and its INITIAL block never write the arguments (the NetCon's weights).
    pub fn net_args_read_only(&self) -> bool {
        let k = &self.c.kernels;
        k.net_receive.iter().chain(k.net_init.iter()).flatten().all(|kernel| {
            !kernel.program.ops.iter().any(|op| matches!(op, vm::Op::ArgStore { .. } | vm::Op::Implicit(_)))
        })
    }

    /// Whether NET_RECEIVE has an INITIAL block.
    pub fn has_net_initial(&self) -> bool {
        self.c.kernels.net_init.is_some()
    }

    fn global_index(&self, name: &str) -> Option<usize> {
        match self.c.model.var(name)?.storage {
            Storage::Global(g) | Storage::Shadow { global: g, .. } => Some(g),
            _ => None,
        }
    }

    /// Storage for `n` instances with every field at its default.
    pub fn instances(self: &Arc<Self>, n: usize) -> Instances {
        let m = &self.c.model;
        let mut globals = vec![0.0; m.n_globals];
        for v in &m.vars {
            if let Storage::Global(g) | Storage::Shadow { global: g, .. } = v.storage {
                globals[g] = v.default;
            }
        }
        let mut inst = Instances {
            mech: self.clone(),
            len: 0,
            cap: 0,
            data: Vec::new(),
            globals,
            usetable: true,
            tables: vec![TableData::default(); self.c.tables.len()],
            table_deps: vec![None; self.c.tables.len()],
            rng: Vec::new(),
            vectors: Vec::new(),
            ws: Workspace::new(),
            ws1: Workspace::new(),
            last_dt: f64::NAN,
            args: Vec::new(),
            batch: BatchScratch::default(),
            prepared: None,
            special: None,
        };
        inst.resize(n);
        inst
    }

    fn field_default(&self, f: usize, globals: &[f64]) -> f64 {
        let m = &self.c.model;
        match self.c.layout.fields[f].1 {
            FieldRole::Var(id) => {
                let v = &m.vars[id];
                match (v.storage, v.ion) {
                    (Storage::Shadow { global, .. }, _) => globals[global],
                    (_, Some((k, kind))) if v.default == 0.0 => {
                        let (_, e, ci, co) = default_species(&m.ions[k].ion);
                        match kind {
                            IonVarKind::Inside => ci,
                            IonVarKind::Outside => co,
                            IonVarKind::Reversal => e,
                            IonVarKind::Current => 0.0,
                        }
                    }
                    _ => v.default,
                }
            }
            FieldRole::V => miv_solvers::DEFAULT_V_INIT,
            FieldRole::Area => 100.0,
            FieldRole::Diam => 500.0,
            _ => 0.0,
        }
    }
}

fn describe(c: &Compiled) -> MechanismInfo {
    let m = &c.model;
    let l = &c.layout;
    let field_of = |id: VarId| match m.vars[id].storage {
        Storage::Field(f) | Storage::Shadow { field: f, .. } => f,
        _ => unreachable!("ion variables are fields"),
    };
    let ions = m
        .ions
        .iter()
        .enumerate()
        .map(|(k, u)| {
            let mut fields: Vec<IonField> = Vec::new();
            for (list, write) in [(&u.read, false), (&u.write, true)] {
                for v in list {
                    let f = field_of(v.var);
                    if let Some(x) = fields.iter_mut().find(|x| x.field == f) {
                        x.written |= write;
                        x.read |= !write;
                        continue;
                    }
                    fields.push(IonField {
                        kind: v.kind,
                        name: v.name.clone(),
                        field: f,
                        read: !write,
                        // nocmodl reads written concentrations too (get_ion_variables).
                        gathered: !write || v.kind != IonVarKind::Current,
                        written: write,
                    });
                }
            }
            IonInfo {
                name: u.ion.clone(),
                valence: u.valence.unwrap_or(default_species(&u.ion).0),
                valence_declared: u.valence.is_some(),
                fields,
                didv_field: l.ion_didv.iter().find(|(i, _)| *i == k).map(|x| x.1),
            }
        })
        .collect();
    let visible = |v: &Var| v.range || v.global || matches!(v.storage, Storage::Global(_));
    let param = |v: &Var| ParamInfo {
        name: v.name.clone(),
        default: v.default,
        units: v.units.clone(),
        per_instance: matches!(v.storage, Storage::Field(_)),
    };
    let parameters =
        m.vars.iter().filter(|v| v.kind == VarKind::Parameter && v.ion.is_none() && visible(v)).map(param).collect();
    let assigned = m
        .vars
        .iter()
        .filter(|v| v.kind == VarKind::Assigned && v.pos != Default::default() && (v.range || v.global))
        .map(param)
        .collect();
    let states = m.vars.iter().filter(|v| v.kind == VarKind::State).map(|v| v.name.clone()).collect();
    MechanismInfo {
        name: m.name.clone(),
        file: m.file.clone(),
        kind: m.kind,
        electrode_current: m.electrode_current,
        ions,
        parameters,
        states,
        assigned,
        net_receive_args: m.net_receive.as_ref().map(|n| n.args.len()),
        field_names: l.fields.iter().map(|f| f.0.clone()).collect(),
        v_field: l.v,
        area_field: l.area,
        diam_field: l.diam,
        current_field: l.current,
        conductance_field: l.conductance,
        warnings: c.warnings.clone(),
    }
}

/// The instances of one mechanism, as structure of arrays: field `f` of instance `i` is
/// `column(f)[i]`. Globals, tables, random streams and played vectors live here too, so two cell
/// groups never share mutable state.
pub struct Instances {
    mech: Arc<Mechanism>,
    len: usize,
    /// Allocated instances per field (a multiple of the kernel width).
    cap: usize,
    data: Vec<f64>,
    globals: Vec<f64>,
    usetable: bool,
    tables: Vec<TableData>,
    table_deps: Vec<Option<Vec<f64>>>,
    rng: Vec<CounterStream>,
    vectors: Vec<Vec<f64>>,
    ws: Workspace<LANES>,
    ws1: Workspace<1>,
    /// The time step of the last bulk kernel (NET_RECEIVE reads dt for nrn_netrec_state_adjust).
    last_dt: f64,
    /// NET_RECEIVE arguments of one event.
    args: Vec<f64>,
    batch: BatchScratch,
    /// The (dt, celsius, second order) the cached fields were computed with; None when they are stale
    /// (see `lower::hoist`).
    prepared: Option<[u64; 3]>,
    /// The current and state kernels specialised to the fields every instance holds the same value in
    /// (see [`Instances::uniform_kernels`]); `None` when a field they read may have changed.
    special: Option<[Option<Arc<Kernel>>; 2]>,
}

/// Scratch of [`Instances::net_receive_batch`]: per instance the batch that last saw it and how
/// many of that batch's events it had; per event its round; events ordered by round; the fields
/// and arguments of one round.
#[derive(Debug, Default)]
struct BatchScratch {
    mark: Vec<u32>,
    count: Vec<u32>,
    epoch: u32,
    round: Vec<u32>,
    starts: Vec<u32>,
    order: Vec<u32>,
    data: Vec<f64>,
}

impl std::fmt::Debug for Instances {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instances").field("mechanism", &self.mech.info.name).field("len", &self.len).finish()
    }
}

impl Instances {
    pub fn mechanism(&self) -> &Arc<Mechanism> {
        &self.mech
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The arithmetic one instance performs per step in the current and state kernels this instance
    /// set runs: the specialised ones once a step has built them (see [`Instances::uniform_kernels`]),
    /// else the general ones of the `usetable` in force. Each operation counts once per lane, as the
    /// VM and native code execute it.
    pub fn step_arithmetic(&self) -> miv_solvers::StepArithmetic {
        let k = &self.mech.c.kernels;
        let general = [k.current.as_ref().map(|p| self.kernel(p)), Some(self.kernel(&k.state))];
        let mut a = miv_solvers::StepArithmetic::default();
        for (slot, base) in general.into_iter().enumerate() {
            let special = self.special.as_ref().and_then(|s| s[slot].as_deref());
            if let Some(kernel) = special.or(base) {
                count_arithmetic(&kernel.program, &mut a);
            }
        }
        a
    }

    /// Change the number of instances; new ones get default values. Storage grows geometrically,
    /// so adding instances one at a time costs amortised O(fields).
    pub fn resize(&mut self, n: usize) {
        let nf = self.mech.c.layout.fields.len();
        if n > self.cap || self.data.is_empty() {
            let cap = n.max(2 * self.cap).div_ceil(LANES).max(1) * LANES;
            let mut data = vec![0.0; nf * cap];
            let keep = self.len.min(n);
            for f in 0..nf {
                data[f * cap..f * cap + keep].copy_from_slice(&self.data[f * self.cap..f * self.cap + keep]);
                data[f * cap + keep..(f + 1) * cap].fill(self.mech.field_default(f, &self.globals));
            }
            self.data = data;
            self.cap = cap;
            self.rng.resize(cap, CounterStream::default());
            self.vectors.resize(cap, Vec::new());
        }
        // New instances take their defaults (padding lanes got them at allocation; kernels may
        // have advanced them since, which is harmless).
        let from = self.len.min(n);
        for f in 0..nf {
            let d = self.mech.field_default(f, &self.globals);
            self.data[f * self.cap + from..f * self.cap + n].fill(d);
        }
        for (i, s) in self.rng.iter_mut().enumerate().take(n).skip(from) {
            *s = CounterStream::new([0, 0, i as u32, 0]);
        }
        for v in self.vectors.iter_mut().take(n).skip(from) {
            v.clear();
        }
        self.len = n;
        self.prepared = None;
        self.special = None;
    }

    /// Give back the room that geometric growth left beyond the instances (kept: whole chunks of
    /// [`LANES`], which the kernels run over).
    pub fn shrink_to_fit(&mut self) {
        let nf = self.mech.c.layout.fields.len();
        let cap = self.len.div_ceil(LANES).max(1) * LANES;
        if cap < self.cap {
            let mut data = Vec::with_capacity(nf * cap);
            for f in 0..nf {
                data.extend_from_slice(&self.data[f * self.cap..f * self.cap + cap]);
            }
            self.data = data;
            self.cap = cap;
            self.rng.truncate(cap);
            self.vectors.truncate(cap);
        }
        self.data.shrink_to_fit();
        self.rng.shrink_to_fit();
        self.vectors.shrink_to_fit();
    }

    /// Heap memory held (bytes): fields, streams, played vectors and tables.
    pub fn heap_bytes(&self) -> usize {
        self.data.capacity() * 8
            + self.rng.capacity() * std::mem::size_of::<CounterStream>()
            + self.vectors.iter().map(|v| v.capacity() * 8).sum::<usize>()
            + self.tables.iter().map(|t| t.columns.iter().map(|c| c.capacity() * 8).sum::<usize>()).sum::<usize>()
            + self.batch.data.capacity() * 8
            + (self.batch.mark.capacity() + self.batch.count.capacity()) * 4
    }

    pub fn column(&self, field: usize) -> &[f64] {
        &self.data[field * self.cap..field * self.cap + self.len]
    }

    pub fn column_mut(&mut self, field: usize) -> &mut [f64] {
        if self.mech.prepare_reads[field] {
            self.prepared = None;
        }
        if self.mech.uniform_candidate[field] {
            self.special = None;
        }
        &mut self.data[field * self.cap..field * self.cap + self.len]
    }

    fn field_or_err(&self, name: &str) -> Result<usize> {
        self.mech.field(name).ok_or_else(|| Error::Lookup {
            mechanism: self.mech.info.name.clone(),
            what: format!("no per-instance variable '{name}'"),
        })
    }

    pub fn get(&self, name: &str, instance: usize) -> Result<f64> {
        Ok(self.column(self.field_or_err(name)?)[instance])
    }

    pub fn set(&mut self, name: &str, instance: usize, value: f64) -> Result<()> {
        let f = self.field_or_err(name)?;
        self.column_mut(f)[instance] = value;
        Ok(())
    }

    /// Set a GLOBAL (or non-RANGE PARAMETER); `usetable` switches TABLE lookups on or off.
    pub fn set_global(&mut self, name: &str, value: f64) -> Result<()> {
        self.special = None;
        if name == "usetable" {
            self.usetable = value != 0.0;
            self.prepared = None;
            return Ok(());
        }
        let g = self.mech.global_index(name).ok_or_else(|| Error::Lookup {
            mechanism: self.mech.info.name.clone(),
            what: format!("no GLOBAL '{name}'"),
        })?;
        self.globals[g] = value;
        self.prepared = None;
        if let Some(Storage::Shadow { field, .. }) = self.mech.c.model.var(name).map(|v| v.storage) {
            self.data[field * self.cap..(field + 1) * self.cap].fill(value);
        }
        Ok(())
    }

    pub fn global(&self, name: &str) -> Result<f64> {
        if name == "usetable" {
            return Ok(self.usetable as u8 as f64);
        }
        let v = self.mech.c.model.var(name);
        match v.map(|v| v.storage) {
            // A global the code assigns: the value the last instance computed, as NEURON shows it.
            Some(Storage::Shadow { field, .. }) if self.len > 0 && self.mech.c.stored_shadows.contains(&field) => {
                Ok(self.data[field * self.cap + self.len - 1])
            }
            Some(Storage::Global(g) | Storage::Shadow { global: g, .. }) => Ok(self.globals[g]),
            _ => Err(Error::Lookup { mechanism: self.mech.info.name.clone(), what: format!("no GLOBAL '{name}'") }),
        }
    }

    /// The event times VecStim plays (its `play()`).
    pub fn set_vector(&mut self, instance: usize, times: Vec<f64>) {
        self.vectors[instance] = times;
    }

    /// Key of the instance's random stream (normrand etc.; Gfluct's noiseFromRandom123 ids). The
    /// simulator keys it by (seed, purpose, gid, index) so results do not depend on the layout.
    pub fn set_random_stream(&mut self, instance: usize, key: [u32; 4]) {
        self.rng[instance] = CounterStream::new(key);
    }

    fn kernel<'k>(&self, k: &'k [Kernel; 2]) -> &'k Kernel {
        &k[self.usetable as usize]
    }

    fn input(&self, i: Input, ctx: &Context) -> f64 {
        input_value(i, &self.globals, ctx)
    }

    /// Rebuild the tables whose DEPEND values changed (NEURON's _check_ functions).
    fn check_tables(&mut self, ctx: &Context) -> Result<()> {
        if !self.usetable {
            return Ok(());
        }
        let mech = self.mech.clone();
        for (k, t) in mech.c.tables.iter().enumerate() {
            let same = self.table_deps[k]
                .as_ref()
                .is_some_and(|saved| saved.iter().zip(&t.depend).all(|(&x, &i)| x == self.input(i, ctx)));
            if same {
                continue;
            }
            let deps: Vec<f64> = t.depend.iter().map(|&i| self.input(i, ctx)).collect();
            let range = self.eval_scalars(&t.range, ctx);
            let (lo, hi) = (range[t.range_slots.0 as usize], range[t.range_slots.1 as usize]);
            let n = t.intervals;
            let dx = (hi - lo) / n as f64;
            let points = n + 1;
            let cap = points.div_ceil(LANES) * LANES;
            let mut data = vec![0.0; (t.columns + 1) * cap];
            let mut x = lo;
            for slot in data.iter_mut().take(points) {
                *slot = x;
                x += dx;
            }
            for slot in data.iter_mut().take(cap).skip(points) {
                *slot = hi;
            }
            let mut events = Vec::new();
            let mut rng = vec![CounterStream::default(); cap];
            let mut env = Env {
                data: &mut data,
                cap,
                tables: &[],
                rng: &mut rng,
                vectors: &[],
                args: &mut [],
                events: &mut events,
            };
            let globals = &self.globals;
            let fill = |s: &mut [f64]| fill_inputs(&t.builder.inputs, globals, ctx, s);
            vm::run(&t.builder.program, &mut self.ws, &mut env, 0, points, &fill).map_err(|f| self.failure(f))?;
            self.tables[k] = TableData {
                tmin: lo,
                mfac: 1.0 / dx,
                intervals: n,
                columns: (0..t.columns)
                    .map(|c| {
                        let mut col = data[(c + 1) * cap..(c + 1) * cap + points].to_vec();
                        col.push(col[n]);
                        col
                    })
                    .collect(),
            };
            self.table_deps[k] = Some(deps);
        }
        Ok(())
    }

    fn eval_scalars(&mut self, k: &Kernel, ctx: &Context) -> Vec<f64> {
        let mut s = k.program.scalars.clone();
        fill_inputs(&k.inputs, &self.globals, ctx, &mut s);
        for op in &k.program.sops {
            match *op {
                vm::SOp::Un { op, dst, a } => s[dst as usize] = crate::ops::un(op, s[a as usize]),
                vm::SOp::Bin { op, dst, a, b } => s[dst as usize] = crate::ops::bin(op, s[a as usize], s[b as usize]),
                vm::SOp::Select { dst, c, a, b } => {
                    s[dst as usize] = if s[c as usize] != 0.0 { s[a as usize] } else { s[b as usize] }
                }
            }
        }
        s
    }

    fn failure(&self, f: vm::SolveFailure) -> Error {
        Error::Convergence {
            mechanism: self.mech.info.name.clone(),
            method: if f.sparse { "sparse" } else { "derivimplicit" },
            instance: f.instance,
            iterations: f.iterations,
        }
    }

    /// Run kernel `k` on instances `first..first+count` with the workspace of width `W`.
    #[allow(clippy::too_many_arguments)]
    fn launch_kernel<const W: usize>(
        &mut self,
        k: &Kernel,
        ws: &mut Workspace<W>,
        ctx: &Context,
        first: usize,
        count: usize,
        args: &mut [f64],
        events: &mut Vec<Emitted>,
    ) -> Result<()> {
        let globals = &self.globals;
        let fill = |s: &mut [f64]| fill_inputs(&k.inputs, globals, ctx, s);
        let mut env = Env {
            data: &mut self.data,
            cap: self.cap,
            tables: &self.tables,
            rng: &mut self.rng,
            vectors: &self.vectors,
            args,
            events,
        };
        let r = vm::run(&k.program, ws, &mut env, first, count, &fill);
        r.map_err(|f| self.failure(f))
    }

    /// Entry point `which` (tables or not, by `usetable`) over all instances.
    fn run_bulk(
        &mut self,
        which: fn(&Compiled) -> Option<&[Kernel; 2]>,
        ctx: &Context,
        events: &mut Vec<Emitted>,
    ) -> Result<()> {
        let mech = self.mech.clone();
        let Some(k) = which(&mech.c) else { return Ok(()) };
        self.run_bulk_kernel(self.kernel(k), ctx, events)
    }

    fn run_bulk_kernel(&mut self, k: &Kernel, ctx: &Context, events: &mut Vec<Emitted>) -> Result<()> {
        self.last_dt = ctx.dt;
        self.check_tables(ctx)?;
        let mut ws = std::mem::take(&mut self.ws);
        let r = self.launch_kernel(k, &mut ws, ctx, 0, self.len, &mut [], events);
        self.ws = ws;
        r
    }

    /// The current (slot 0) or state (slot 1) kernel over all instances, in its specialised form if
    /// there is one.
    fn run_bulk_uniform(
        &mut self,
        slot: usize,
        which: fn(&Compiled) -> Option<&[Kernel; 2]>,
        ctx: &Context,
    ) -> Result<()> {
        let mut none = Vec::new();
        if self.special.is_none() {
            self.special = Some(self.uniform_kernels());
        }
        match self.special.as_ref().and_then(|s| s[slot].clone()) {
            Some(k) => self.run_bulk_kernel(&k, ctx, &mut none),
            None => self.run_bulk(which, ctx, &mut none),
        }
    }

    /// The current and state kernels (of the `usetable` in force) with every load of a field that
    /// all instances hold the same value in (bit for bit) replaced by that value as a scalar: a
    /// synapse type's time constants, reversal potential and cached decay factors, a channel's
    /// parameters. What is then computed only from such values (`mg / Kd`) is computed once per
    /// call ([`vm::Program::hoist_uniform`]). The operations and their operands are unchanged, so are
    /// the results; the loads (memory traffic of every instance at every step) and the repeated
    /// arithmetic are gone. `None` for a kernel with no such field, or whose
    /// specialised form would lose its native code. Off when the environment variable
    /// `MIV_NMODL_UNIFORM` is `off` or `0`.
    fn uniform_kernels(&self) -> [Option<Arc<Kernel>>; 2] {
        let k = &self.mech.c.kernels;
        let base = [(k.current.as_ref().map(|p| self.kernel(p)), "BREAKPOINT"), (Some(self.kernel(&k.state)), "SOLVE")];
        base.map(|(base, entry)| {
            let base = base?;
            if self.len == 0 || uniform_disabled() {
                return None;
            }
            let mut program = base.program.clone();
            let mut slot_of: std::collections::HashMap<u32, Option<u32>> = std::collections::HashMap::new();
            let mut changed = false;
            for i in 0..program.ops.len() {
                let vm::Op::Load { dst, field } = program.ops[i] else { continue };
                if !self.mech.uniform_candidate[field as usize] {
                    continue;
                }
                let slot = *slot_of.entry(field).or_insert_with(|| {
                    let col = self.column(field as usize);
                    let x = col[0];
                    col.iter().all(|y| y.to_bits() == x.to_bits()).then(|| {
                        program.scalars.push(x);
                        program.scalars.len() as u32 - 1
                    })
                });
                if let Some(src) = slot {
                    program.ops[i] = vm::Op::Splat { dst, src };
                    changed = true;
                }
            }
            if !changed {
                return None;
            }
            program.hoist_uniform();
            let code = crate::jit::compile(&program);
            if base.program.native.0.is_some() && code.is_none() {
                return None;
            }
            if let Some(c) = &code {
                crate::jit::name_for_profilers(c, &format!("{} {entry} (uniform)", self.mech.info.name));
            }
            program.native = crate::jit::Native(code);
            Some(Arc::new(Kernel { program, inputs: base.inputs.clone() }))
        })
    }

    /// nrn_init: STATE start values, then INITIAL, for every instance. Needs v and the gathered ion
    /// fields filled; `events` receives net_send calls of INITIAL.
    pub fn initialize(&mut self, ctx: &Context, events: &mut Vec<Emitted>) -> Result<()> {
        self.prepared = None;
        // INITIAL may assign parameters.
        self.special = None;
        self.run_bulk(|c| Some(&c.kernels.init), ctx, events)
    }

    /// nrn_cur: fills the current and conductance fields (and ion currents and di/dv). Needs v and
    /// the gathered ion fields.
    pub fn current(&mut self, ctx: &Context) -> Result<()> {
        self.run_bulk_uniform(0, |c| c.kernels.current.as_ref(), ctx)
    }

    /// nrn_state: advance the states over `ctx.dt` with v held at its field value.
    pub fn advance_state(&mut self, ctx: &Context) -> Result<()> {
        let mut none = Vec::new();
        if self.mech.c.kernels.prepare.is_some() {
            let key = [ctx.dt.to_bits(), ctx.celsius.to_bits(), ctx.second_order as u64];
            if self.prepared != Some(key) {
                self.run_bulk(|c| c.kernels.prepare.as_ref(), ctx, &mut none)?;
                self.prepared = Some(key);
                self.special = None;
            }
        }
        self.run_bulk_uniform(1, |c| Some(&c.kernels.state), ctx)
    }

    fn run_one(
        &mut self,
        which: fn(&Compiled) -> Option<&[Kernel; 2]>,
        instance: usize,
        args: &mut [f64],
        t: f64,
        events: &mut Vec<Emitted>,
    ) -> Result<()> {
        let ctx = Context { t, dt: self.last_dt, celsius: f64::NAN, second_order: false };
        // A block with nothing left after dead-code elimination (an empty NET_RECEIVE INITIAL, once per
        // connection at initialisation) has no effect: its scalar part only fills the call's own slots.
        match which(&self.mech.c) {
            Some(k) if !self.kernel(k).program.ops.is_empty() => {}
            _ => return Ok(()),
        }
        let mech = self.mech.clone();
        let k = self.kernel(which(&mech.c).expect("present: checked above"));
        let mut ws = std::mem::take(&mut self.ws1);
        let r = self.launch_kernel(k, &mut ws, &ctx, instance, 1, args, events);
        self.ws1 = ws;
        r
    }

    /// NET_RECEIVE for one event at time `t`: `weights` is the NetCon's weight vector (may be
    /// modified), `flag` 0 for NetCon events or the net_send flag for self-events.
    pub fn net_receive(
        &mut self,
        instance: usize,
        weights: &mut [f64],
        flag: f64,
        t: f64,
        events: &mut Vec<Emitted>,
    ) -> Result<()> {
        let n = self.mech.info.net_receive_args.unwrap_or(0);
        let mut args = std::mem::take(&mut self.args);
        args.clear();
        args.resize(n + 1, 0.0);
        let k = weights.len().min(n);
        args[..k].copy_from_slice(&weights[..k]);
        args[n] = flag;
        let r = self.run_one(|c| c.kernels.net_receive.as_ref(), instance, &mut args, t, events);
        weights[..k].copy_from_slice(&args[..k]);
        self.args = args;
        r
    }

    /// NET_RECEIVE for NetCon events (flag 0) in order: event k on `instances[k]` with the weight
    /// vector `weights[k * w..(k + 1) * w]`, w the number of NET_RECEIVE arguments (written back).
    /// Mechanisms whose NET_RECEIVE qualifies ([`Mechanism::batches_events`]) run it over all events
    /// at once, in rounds: round r takes every instance's (r+1)-th event, so events on one instance
    /// keep their order. The results are those of [`net_receive`](Self::net_receive) per event.
    /// Others do exactly that, with `t` = NaN.
    pub fn net_receive_batch(&mut self, instances: &[u32], weights: &mut [f64]) -> Result<()> {
        let w = self.mech.info.net_receive_args.unwrap_or(0);
        assert_eq!(weights.len(), instances.len() * w, "one weight vector per event");
        if self.mech.batch.is_none() {
            let mut none = Vec::new();
            for (k, &i) in instances.iter().enumerate() {
                self.net_receive(i as usize, &mut weights[k * w..(k + 1) * w], 0.0, f64::NAN, &mut none)?;
            }
            return Ok(());
        }
        let mut b = std::mem::take(&mut self.batch);
        if b.mark.len() < self.len {
            b.mark.resize(self.len, 0);
            b.count.resize(self.len, 0);
        }
        if b.epoch == u32::MAX {
            b.mark.fill(0);
            b.epoch = 0;
        }
        b.epoch += 1;
        b.round.clear();
        let mut rounds = 0;
        for &i in instances {
            let i = i as usize;
            let r = if b.mark[i] == b.epoch {
                b.count[i] + 1
            } else {
                b.mark[i] = b.epoch;
                0
            };
            b.count[i] = r;
            b.round.push(r);
            rounds = rounds.max(r + 1);
        }
        // Events by round (a stable counting sort).
        b.starts.clear();
        b.starts.resize(rounds as usize + 1, 0);
        for &r in &b.round {
            b.starts[r as usize + 1] += 1;
        }
        for r in 0..rounds as usize {
            b.starts[r + 1] += b.starts[r];
        }
        b.order.clear();
        b.order.resize(instances.len(), 0);
        let mut next = b.starts.clone();
        for (k, &r) in b.round.iter().enumerate() {
            b.order[next[r as usize] as usize] = k as u32;
            next[r as usize] += 1;
        }
        let mut r = Ok(());
        for k in 0..rounds as usize {
            let events = &b.order[b.starts[k] as usize..b.starts[k + 1] as usize];
            r = self.run_batch(&mut b.data, events, instances, weights);
            if r.is_err() {
                break;
            }
        }
        self.batch = b;
        r
    }

    /// Events `events` (indices into `instances` and the weight vectors), on distinct instances, one per
    /// lane; `data` is scratch.
    fn run_batch(&mut self, data: &mut Vec<f64>, events: &[u32], instances: &[u32], weights: &mut [f64]) -> Result<()> {
        let mech = self.mech.clone();
        let b = &mech.batch.as_ref().expect("batchable")[self.usetable as usize];
        let w = mech.info.net_receive_args.unwrap_or(0);
        let n = events.len();
        let cap = n.div_ceil(LANES) * LANES;
        let nf = b.fields.len();
        data.clear();
        data.resize((nf + w + 1) * cap, 0.0);
        for (j, &f) in b.fields.iter().enumerate() {
            let col = &self.data[f * self.cap..f * self.cap + self.len];
            for (d, &e) in data[j * cap..j * cap + n].iter_mut().zip(events) {
                *d = col[instances[e as usize] as usize];
            }
        }
        for a in 0..w {
            for (d, &e) in data[(nf + a) * cap..(nf + a) * cap + n].iter_mut().zip(events) {
                *d = weights[e as usize * w + a];
            }
        }
        let ctx = Context { t: f64::NAN, dt: self.last_dt, celsius: f64::NAN, second_order: false };
        let mut ws = std::mem::take(&mut self.ws);
        let mut none = Vec::new();
        let mut env =
            Env { data, cap, tables: &self.tables, rng: &mut [], vectors: &[], args: &mut [], events: &mut none };
        let globals = &self.globals;
        let fill = |s: &mut [f64]| fill_inputs(&b.inputs, globals, &ctx, s);
        let r = vm::run(&b.program, &mut ws, &mut env, 0, n, &fill);
        self.ws = ws;
        r.map_err(|f| self.failure(f))?;
        for &j in &b.stored {
            let f = b.fields[j];
            let col = &mut self.data[f * self.cap..f * self.cap + self.len];
            for (d, &e) in data[j * cap..j * cap + n].iter().zip(events) {
                col[instances[e as usize] as usize] = *d;
            }
        }
        for a in 0..w {
            for (d, &e) in data[(nf + a) * cap..(nf + a) * cap + n].iter().zip(events) {
                weights[e as usize * w + a] = *d;
            }
        }
        Ok(())
    }

    /// The INITIAL block of NET_RECEIVE, run for each NetCon at initialisation.
    pub fn net_init(&mut self, instance: usize, weights: &mut [f64], t: f64) -> Result<()> {
        let n = self.mech.info.net_receive_args.unwrap_or(0);
        let mut args = std::mem::take(&mut self.args);
        args.clear();
        args.resize(n + 1, 0.0);
        let k = weights.len().min(n);
        args[..k].copy_from_slice(&weights[..k]);
        let mut events = Vec::new();
        let r = self.run_one(|c| c.kernels.net_init.as_ref(), instance, &mut args, t, &mut events);
        weights[..k].copy_from_slice(&args[..k]);
        self.args = args;
        r
    }
}

fn input_value(i: Input, globals: &[f64], ctx: &Context) -> f64 {
    match i {
        Input::Global(g) => globals[g],
        Input::T => ctx.t,
        Input::Dt => ctx.dt,
        Input::Celsius => ctx.celsius,
        Input::SecondOrder => ctx.second_order as u8 as f64,
    }
}

/// [`Instances::uniform_kernels`] switched off (`MIV_NMODL_UNIFORM=off` or `0`, read once per
/// process, or by tests).
pub(crate) static UNIFORM_DISABLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn uniform_disabled() -> bool {
    static ENV: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENV.get_or_init(|| std::env::var("MIV_NMODL_UNIFORM").is_ok_and(|v| v == "off" || v == "0"))
        || UNIFORM_DISABLED.load(std::sync::atomic::Ordering::Relaxed)
}

fn fill_inputs(inputs: &[(u32, Input)], globals: &[f64], ctx: &Context, s: &mut [f64]) {
    for &(slot, i) in inputs {
        s[slot as usize] = input_value(i, globals, ctx);
    }
}

impl Mechanism {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::Library;

    /// Every field of `n` instances after initialise and `steps` current/state steps at spread voltages.
    fn run_fields(m: &Arc<Mechanism>, usetable: f64, n: usize, steps: usize) -> Vec<u64> {
        let mut inst = m.instances(n);
        inst.set_global("usetable", usetable).unwrap();
        let v = m.info().v_field.unwrap();
        for (i, x) in inst.column_mut(v).iter_mut().enumerate() {
            *x = -90.0 + 120.0 * i as f64 / n as f64;
        }
        let ctx = Context { t: 0.0, dt: 0.025, celsius: 16.0, second_order: false };
        inst.initialize(&ctx, &mut Vec::new()).unwrap();
        for _ in 0..steps {
            inst.current(&ctx).unwrap();
            inst.advance_state(&ctx).unwrap();
        }
        (0..m.c.layout.fields.len()).flat_map(|f| inst.column(f).to_vec()).map(f64::to_bits).collect()
    }

    #[test]
    fn step_arithmetic_counts_the_divisions_and_exps_of_the_kernels_that_run() {
        // Per evaluation of BREAKPOINT: -v/k (a division by a parameter), exp, gbar*(v - e) over 1 + exp
        // (a division), and e/k, the same at both voltages (shared). nrn_cur evaluates it at v + 0.001 and
        // at v: 5 divisions, 2 exps; its difference quotient divides by the constant 0.001, which lowering
        // turns into a multiplication. The state update divides once per step: v/tau.
        let text = "NEURON { SUFFIX floorcount NONSPECIFIC_CURRENT i RANGE gbar, k, e, tau }
            PARAMETER { gbar = 0.001 (S/cm2) k = 5 (mV) e = -70 (mV) tau = 2 (ms) }
            ASSIGNED { v (mV) i (mA/cm2) }
            STATE { w }
            BREAKPOINT { SOLVE states METHOD euler i = gbar*(v - e)/(1 + exp(-v/k)) + 1e-6*(e/k) }
            INITIAL { w = 0 }
            DERIVATIVE states { w' = v/tau }";
        let m = Arc::new(Mechanism::compile(text, "floorcount.mod").unwrap());
        let mut inst = m.instances(20);
        let general = inst.step_arithmetic();
        assert_eq!((general.divisions, general.exps), (6, 2), "general kernels");
        assert!(inst.special.is_none());
        let ctx = Context { t: 0.0, dt: 0.025, celsius: 16.0, second_order: false };
        inst.initialize(&ctx, &mut Vec::new()).unwrap();
        inst.current(&ctx).unwrap();
        inst.advance_state(&ctx).unwrap();
        // Every parameter is uniform: the kernels run specialised, where e/k has no per-instance operand
        // and is divided once per call, before the instances.
        let [Some(current), _] = inst.special.clone().unwrap() else { panic!("BREAKPOINT not specialised") };
        assert!(current.program.sops.iter().any(|op| matches!(op, vm::SOp::Bin { op: crate::ops::Bin::Div, .. })));
        let special = inst.step_arithmetic();
        assert_eq!((special.divisions, special.exps), (5, 2), "specialised kernels");
        // e/k shared by both evaluations was one division and a multiplication by 1e-6 per lane.
        assert_eq!(special.other + 1, general.other);
        assert!(!special.implicit && special.other > 0);
    }

    /// The current and state kernels specialised to uniform fields give the bits of the general ones,
    /// also after one instance's parameter changed mid-run (the field then stops being uniform) and
    /// with events between the steps; and they are used.
    #[test]
    fn uniform_kernels_give_the_bits_of_the_general_ones() {
        use std::sync::atomic::Ordering::Relaxed;
        let lib = Library::standard().unwrap();
        let own = [
            (include_str!("../../../mechanisms/miv/LinExp2Syn.mod"), "LinExp2Syn.mod", "e"),
            (include_str!("../../../mechanisms/miv/LinExp2SynNMDA.mod"), "LinExp2SynNMDA.mod", "mg"),
        ];
        let mut cases: Vec<(Arc<Mechanism>, &str)> =
            vec![(lib.get("hh").unwrap().clone(), "gnabar"), (lib.get("Exp2Syn").unwrap().clone(), "e")];
        for (text, file, param) in own {
            cases.push((Arc::new(Mechanism::compile(text, file).unwrap()), param));
        }
        // The Cases' magnesium block: mg / Kd is made of shared parameters only and is computed once per
        // call in the specialised kernel, until mg differs between instances.
        let nmda = own[1].0.replace("exp(-gamma * (v + vshift)) * mg / Kd", "exp(-gamma * (v + vshift)) * (mg / Kd)");
        assert_ne!(nmda, own[1].0);
        cases.push((Arc::new(Mechanism::compile(&nmda, "cases-nmda.mod").unwrap()), "mg"));
        let run = |m: &Arc<Mechanism>, param: &str, uniform: bool| {
            UNIFORM_DISABLED.store(!uniform, Relaxed);
            let n = 100;
            let mut inst = m.instances(n);
            let v = m.info().v_field.unwrap();
            let ctx = Context { t: 0.0, dt: 0.025, celsius: 16.0, second_order: false };
            for (i, x) in inst.column_mut(v).iter_mut().enumerate() {
                *x = -90.0 + 120.0 * i as f64 / n as f64;
            }
            let mut events = Vec::new();
            inst.initialize(&ctx, &mut events).unwrap();
            let mut specialised = 0;
            for step in 0..60 {
                if step == 30 {
                    let x = inst.get(param, 7).unwrap();
                    inst.set(param, 7, 1.5 * x - 3.0).unwrap();
                }
                inst.current(&ctx).unwrap();
                specialised += inst.special.iter().flatten().flatten().count();
                inst.advance_state(&ctx).unwrap();
                if let Some(w) = m.info().net_receive_args {
                    let mut weights = vec![0.002; w];
                    inst.net_receive((7 * step) % n, &mut weights, 0.0, step as f64 * 0.025, &mut events).unwrap();
                }
                for (i, x) in inst.column_mut(v).iter_mut().enumerate() {
                    *x += ((i + step) % 5) as f64 - 2.0;
                }
            }
            let fields: Vec<u64> =
                (0..m.c.layout.fields.len()).flat_map(|f| inst.column(f).to_vec()).map(f64::to_bits).collect();
            (fields, specialised)
        };
        for (m, param) in &cases {
            let (general, none) = run(m, param, false);
            let (uniform, some) = run(m, param, true);
            assert_eq!(none, 0);
            assert!(some > 0, "{}: no kernel was specialised", m.name());
            assert!(general == uniform, "{}: the uniform kernels change the bits", m.name());
        }
        UNIFORM_DISABLED.store(false, Relaxed);
    }

    #[test]
    fn knows_which_mechanisms_read_v_after_breakpoint() {
        let lib = Library::standard().unwrap();
        // hh's DERIVATIVE calls rates(v); pas has no state; the synapses' states decay without v.
        assert!(lib.get("hh").unwrap().reads_v_after_current());
        for name in ["pas", "ExpSyn", "Exp2Syn"] {
            assert!(!lib.get(name).unwrap().reads_v_after_current(), "{name}");
        }
        let nmda = include_str!("../../../mechanisms/miv/LinExp2SynNMDA.mod");
        assert!(!Mechanism::compile(nmda, "LinExp2SynNMDA.mod").unwrap().reads_v_after_current());
        // A NET_RECEIVE block that reads v needs it too.
        let netrec_v = nmda.replace("A = A + weight * g_unit * factor", "A = A + weight * g_unit * factor * (v + 66)");
        assert!(Mechanism::compile(&netrec_v, "nmda-v.mod").unwrap().reads_v_after_current());
    }

    #[test]
    fn simd_and_baseline_kernels_give_the_same_bits() {
        let hh = Library::standard().unwrap().get("hh").unwrap().clone();
        let kadi =
            Arc::new(Mechanism::compile(include_str!("../../../mechanisms/constructs/kadi.mod"), "kadi.mod").unwrap());
        let _switch = crate::vm::simd_switch_lock();
        for (m, table) in [(&hh, 0.0), (&hh, 1.0), (&kadi, 0.0)] {
            crate::vm::set_simd(false);
            let base = run_fields(m, table, 100, 200);
            crate::vm::set_simd(true);
            let simd = run_fields(m, table, 100, 200);
            if let Some(i) = (0..base.len()).find(|&i| base[i] != simd[i]) {
                panic!(
                    "{} usetable {table}: field {} instance {}: {:e} vs {:e}",
                    m.name(),
                    m.c.layout.fields[i / 100].0,
                    i % 100,
                    f64::from_bits(base[i]),
                    f64::from_bits(simd[i])
                );
            }
        }
    }

    /// Every bulk kernel of the repository's mechanisms that has native code gives the VM's bits,
    /// in every instruction set this CPU has, on awkward field values (NaN, infinities, zeros of
    /// both signs, huge and tiny numbers). hh (comparisons, selects, exp, cnexp), ExpSyn and
    /// Exp2Syn must be among them.
    #[test]
    fn native_kernels_give_the_vm_bits() {
        let isas = crate::jit::available();
        if isas.is_empty() {
            return;
        }
        let _switch = crate::vm::simd_switch_lock();
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../mechanisms");
        let mut mechs: Vec<Arc<Mechanism>> = Library::standard().unwrap().iter().cloned().collect();
        for dir in ["constructs", "miv"] {
            mechs.extend(Library::load_dir(std::path::Path::new(&format!("{root}/{dir}"))).unwrap().iter().cloned());
        }
        let mut compiled = Vec::new();
        for m in &mechs {
            let k = &m.c.kernels;
            let bulk = [
                ("init", Some(&k.init)),
                ("current", k.current.as_ref()),
                ("state", Some(&k.state)),
                ("prepare", k.prepare.as_ref()),
            ];
            for (name, pair) in bulk {
                for ((u, kernel), &isa) in
                    pair.into_iter().flatten().enumerate().flat_map(|k| isas.iter().map(move |i| (k, i)))
                {
                    let Some(code) = crate::jit::compile_for(&kernel.program, isa) else { continue };
                    compiled.push(format!("{} {name}", m.name()));
                    let fields = m.c.layout.fields.len();
                    let cap = 2 * LANES;
                    let input = crate::jit::test_inputs(fields * cap);
                    let run = |native: bool| {
                        let mut data = input.clone();
                        let mut rng = vec![miv_partition::rng::CounterStream::default(); cap];
                        let (mut events, mut args) = (Vec::new(), []);
                        let mut env = Env {
                            data: &mut data,
                            cap,
                            tables: &[],
                            rng: &mut rng,
                            vectors: &[],
                            args: &mut args,
                            events: &mut events,
                        };
                        let mut p = kernel.program.clone();
                        p.native = crate::jit::Native(native.then(|| code.clone()));
                        let fill = |s: &mut [f64]| {
                            for &(slot, i) in &kernel.inputs {
                                s[slot as usize] = match i {
                                    Input::Dt => 0.025,
                                    Input::Celsius => 16.0,
                                    Input::T => 3.0,
                                    Input::SecondOrder => 0.0,
                                    Input::Global(g) => 0.5 + g as f64,
                                };
                            }
                        };
                        vm::run(&p, &mut Workspace::<LANES>::new(), &mut env, 0, cap, &fill).unwrap();
                        data
                    };
                    let (vm, native) = (run(false), run(true));
                    if let Some(i) = (0..vm.len()).find(|&i| !crate::jit::same(vm[i], native[i])) {
                        panic!(
                            "{} {name} usetable={u} {isa:?}: field {} lane {}: vm {:e}, native {:e}",
                            m.name(),
                            m.c.layout.fields[i / cap].0,
                            i % cap,
                            vm[i],
                            native[i]
                        );
                    }
                }
            }
        }
        let expected = [
            "hh init",
            "hh current",
            "hh state",
            "ExpSyn current",
            "ExpSyn state",
            "ExpSyn prepare",
            "Exp2Syn current",
            "Exp2Syn state",
            "Exp2Syn prepare",
        ];
        for k in expected {
            assert!(compiled.iter().any(|c| c == k), "{k} has no native code");
        }
        assert!(compiled.len() >= 10 * isas.len(), "only {} kernels compiled", compiled.len());
    }

    /// The state update split into a prepare kernel (step-invariant values cached per instance) and the
    /// per-step rest gives the states of the unsplit kernel bit for bit, also after a parameter, a GLOBAL
    /// or dt changed, in the VM and in native code.
    #[test]
    fn hoisted_state_updates_give_the_unsplit_bits() {
        let _switch = crate::vm::simd_switch_lock();
        let standard = ["ExpSyn", "Exp2Syn", "hh"];
        let own = [
            (include_str!("../../../mechanisms/miv/LinExp2Syn.mod"), "LinExp2Syn.mod"),
            (include_str!("../../../mechanisms/miv/LinExp2SynNMDA.mod"), "LinExp2SynNMDA.mod"),
            (include_str!("../../../mechanisms/constructs/kexp.mod"), "kexp.mod"),
        ];
        let compile_all = |hoist: bool| {
            crate::lower::hoist::DISABLED.store(!hoist, std::sync::atomic::Ordering::Relaxed);
            let mut out = Vec::new();
            for name in standard {
                let file = format!("{name}.mod");
                let text = crate::library::STANDARD_SOURCES.iter().find(|s| s.0 == file).unwrap().1;
                out.push(Arc::new(Mechanism::compile(text, &file).unwrap()));
            }
            for (text, file) in own {
                out.push(Arc::new(Mechanism::compile(text, file).unwrap()));
            }
            crate::lower::hoist::DISABLED.store(false, std::sync::atomic::Ordering::Relaxed);
            out
        };
        let (split, whole) = (compile_all(true), compile_all(false));
        for name in ["ExpSyn", "Exp2Syn", "LinExp2Syn", "LinExp2SynNMDA"] {
            let m = split.iter().find(|m| m.name() == name).unwrap();
            assert!(m.c.kernels.prepare.is_some(), "{name}: nothing hoisted");
        }
        assert!(whole.iter().all(|m| m.c.kernels.prepare.is_none()));
        let mut x: u64 = 7;
        let mut rand = move || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        for simd in [false, true] {
            crate::vm::set_simd(simd);
            for (a, b) in split.iter().zip(&whole) {
                let n = 37;
                let (mut ia, mut ib) = (a.instances(n), b.instances(n));
                let states: Vec<String> = a.info().states.clone();
                let params: Vec<String> = a.info().parameters.iter().map(|s| s.name.clone()).collect();
                let mut ctx = Context { t: 0.0, dt: 0.025, celsius: 6.3, second_order: false };
                for inst in [&mut ia, &mut ib] {
                    if inst.mechanism().field("v").is_some() {
                        (0..n).for_each(|i| inst.set("v", i, -65.0 + i as f64).unwrap());
                    }
                    inst.initialize(&ctx, &mut Vec::new()).unwrap();
                }
                let mut set_both = |name: &str, i: usize, value: f64| {
                    ia.set(name, i, value).unwrap();
                    ib.set(name, i, value).unwrap();
                };
                for i in 0..n {
                    for s in &states {
                        set_both(s, i, rand());
                    }
                    for p in params.iter().filter(|p| p.starts_with("tau")) {
                        set_both(p, i, 0.5 + 20.0 * rand());
                    }
                }
                let compare = |ia: &mut Instances, ib: &mut Instances, ctx: &Context, what: &str| {
                    for _ in 0..3 {
                        ia.advance_state(ctx).unwrap();
                        ib.advance_state(ctx).unwrap();
                    }
                    for s in &states {
                        for i in 0..n {
                            let (x, y) = (ia.get(s, i).unwrap(), ib.get(s, i).unwrap());
                            assert_eq!(
                                x.to_bits(),
                                y.to_bits(),
                                "{} {s}[{i}] {what} (simd {simd}): {x} vs {y}",
                                a.name()
                            );
                        }
                    }
                };
                compare(&mut ia, &mut ib, &ctx, "first steps");
                if let Some(p) = params.iter().find(|p| p.starts_with("tau")) {
                    ia.set(p, 3, 7.5).unwrap();
                    ib.set(p, 3, 7.5).unwrap();
                    compare(&mut ia, &mut ib, &ctx, "after a parameter changed");
                }
                ctx.dt = 0.1;
                compare(&mut ia, &mut ib, &ctx, "after dt changed");
                ctx.celsius = 30.0;
                compare(&mut ia, &mut ib, &ctx, "after celsius changed");
            }
        }
        crate::vm::set_simd(true);
    }

    /// Shrinking gives back the slack of geometric growth and keeps every value and result.
    #[test]
    fn shrinking_keeps_values_and_results() {
        let m = Library::standard().unwrap().get("Exp2Syn").unwrap().clone();
        let (mut grown, mut shrunk) = (m.instances(0), m.instances(0));
        for n in 1..=130 {
            grown.resize(n);
            shrunk.resize(n);
            for inst in [&mut grown, &mut shrunk] {
                inst.set("tau2", n - 1, 1.0 + n as f64).unwrap();
                inst.set("A", n - 1, 0.5 / n as f64).unwrap();
                inst.set("B", n - 1, 1.0 / n as f64).unwrap();
            }
        }
        let before = shrunk.heap_bytes();
        shrunk.shrink_to_fit();
        assert!(shrunk.heap_bytes() < before, "{} !< {before}", shrunk.heap_bytes());
        let ctx = Context { t: 0.0, dt: 0.025, celsius: 6.3, second_order: false };
        for _ in 0..5 {
            grown.advance_state(&ctx).unwrap();
            shrunk.advance_state(&ctx).unwrap();
        }
        for name in ["A", "B", "tau1", "tau2"] {
            for i in 0..130 {
                assert_eq!(
                    grown.get(name, i).unwrap().to_bits(),
                    shrunk.get(name, i).unwrap().to_bits(),
                    "{name}[{i}]"
                );
            }
        }
        // Growing again after shrinking works as before.
        shrunk.resize(300);
        assert_eq!(shrunk.get("tau2", 129).unwrap(), 131.0);
    }

    /// NET_RECEIVE over a batch (events on repeated instances, in rounds) leaves every field and weight with
    /// the bits of one-by-one delivery, for mechanisms that batch and for those that fall back.
    #[test]
    fn batched_net_receive_gives_the_bits_of_one_by_one_delivery() {
        let lib = Library::standard().unwrap();
        let own = |text: &str, file: &str| Arc::new(Mechanism::compile(text, file).unwrap());
        let cases = [
            (lib.get("ExpSyn").unwrap().clone(), true),
            (lib.get("Exp2Syn").unwrap().clone(), true),
            (own(include_str!("../../../mechanisms/miv/LinExp2Syn.mod"), "LinExp2Syn.mod"), true),
            (own(include_str!("../../../mechanisms/miv/LinExp2SynNMDA.mod"), "LinExp2SynNMDA.mod"), true),
            (own(include_str!("../../../mechanisms/constructs/countsyn.mod"), "countsyn.mod"), true),
            (lib.get("NetStim").unwrap().clone(), false),
        ];
        let mut x: u64 = 99;
        let mut rand = move || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        for (m, batches) in cases {
            assert_eq!(m.batches_events(), batches, "{}", m.name());
            let w = m.info().net_receive_args.unwrap();
            let n = 37;
            let events: Vec<u32> = (0..300).map(|_| (rand() * rand() * n as f64) as u32).collect();
            let weights: Vec<f64> = (0..events.len() * w).map(|_| 0.1 + rand()).collect();
            let mut one = m.instances(n);
            let ctx = Context { t: 0.0, dt: 0.025, celsius: 16.0, second_order: false };
            one.initialize(&ctx, &mut Vec::new()).unwrap();
            for f in 0..m.c.layout.fields.len() {
                for v in one.column_mut(f) {
                    *v += rand();
                }
            }
            let mut all = m.instances(n);
            for f in 0..m.c.layout.fields.len() {
                all.column_mut(f).copy_from_slice(one.column(f));
            }
            let mut w_one = weights.clone();
            for (k, &i) in events.iter().enumerate() {
                one.net_receive(i as usize, &mut w_one[k * w..(k + 1) * w], 0.0, f64::NAN, &mut Vec::new()).unwrap();
            }
            let mut w_all = weights.clone();
            all.net_receive_batch(&events, &mut w_all).unwrap();
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&w_one), bits(&w_all), "{} weights", m.name());
            for f in 0..m.c.layout.fields.len() {
                assert_eq!(bits(one.column(f)), bits(all.column(f)), "{} field {f}", m.name());
            }
            let before: Vec<f64> =
                (0..m.c.layout.fields.len()).flat_map(|f| m.instances(n).column(f).to_vec()).collect();
            let after: Vec<f64> = (0..m.c.layout.fields.len()).flat_map(|f| all.column(f).to_vec()).collect();
            assert_ne!(bits(&before), bits(&after), "{}: the events changed nothing", m.name());
        }
    }
}
