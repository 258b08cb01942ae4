//! Lowering: the checked model becomes register programs ([`crate::vm::Program`]), one per NEURON
//! entry point (nrn_init, nrn_cur, nrn_state, NET_RECEIVE and its INITIAL, table builders).
//!
//! The programs are straight-line SSA: FUNCTION and PROCEDURE calls are inlined, `if` evaluates
//! both branches and merges assigned variables with `Select`, per-instance variables are loaded
//! the first time a kernel reads them and stored once at its end. Values that only depend on
//! constants and globals become scalar instructions run once per call. The code follows nocmodl
//! closely: the current is evaluated at v + 0.001 and at v for di/dv, cnexp uses nocmodl's symbolic
//! split, derivimplicit iterates the DERIVATIVE block with NEURON's Newton solver, KINETIC blocks
//! become NEURON's sparse Newton matrix (with CONSERVE rows), and TABLE calls become lookups.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::ast::{BinOp, Expr, Stmt, StmtKind};
use crate::check::builtin_has_effect;
use crate::error::{Error, Pos, Result, Source};
use crate::model::*;
use crate::symbolic;
use crate::verbatim::Verbatim;
use crate::vm::{Bin, Implicit, Op, Program, RandKind, SOp, Src, Un};

/// What a scalar slot is filled with at call time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Input {
    Global(usize),
    T,
    Dt,
    Celsius,
    /// 1 under Crank-Nicolson (NEURON's secondorder = 2), else 0.
    SecondOrder,
}

/// What an instance field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldRole {
    Var(VarId),
    /// Membrane potential, gathered before each call.
    V,
    Area,
    Diam,
    /// Total membrane current (outward positive; mA/cm2 or nA for point processes).
    Current,
    /// d(current)/dv (S/cm2 or uS).
    Conductance,
    /// d(ion current)/dv of the ion with this index into `Model::ions`.
    IonDidv(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub fields: Vec<(String, FieldRole)>,
    pub v: Option<usize>,
    pub area: Option<usize>,
    pub diam: Option<usize>,
    pub current: Option<usize>,
    pub conductance: Option<usize>,
    /// (ion index, field) of the di/dv outputs.
    pub ion_didv: Vec<(usize, usize)>,
}

impl Layout {
    fn new(m: &Model) -> Layout {
        let mut fields: Vec<(String, FieldRole)> = vec![(String::new(), FieldRole::V); m.n_fields];
        for (id, v) in m.vars.iter().enumerate() {
            if let Storage::Field(f) | Storage::Shadow { field: f, .. } = v.storage {
                fields[f] = (v.name.clone(), FieldRole::Var(id));
            }
        }
        let mut push = |name: &str, role: FieldRole| {
            fields.push((name.to_string(), role));
            Some(fields.len() - 1)
        };
        let membrane = m.kind != MechKind::Artificial;
        let v = if membrane { push("v", FieldRole::V) } else { None };
        let area = push("area", FieldRole::Area);
        let diam = push("diam", FieldRole::Diam);
        let (current, conductance) = if membrane && !m.currents.is_empty() {
            (push("_i", FieldRole::Current), push("_g", FieldRole::Conductance))
        } else {
            (None, None)
        };
        let mut ion_didv = Vec::new();
        for (k, ion) in m.ions.iter().enumerate() {
            if ion.write.iter().any(|w| w.kind == IonVarKind::Current) {
                let f = push(&format!("_di{}_dv", ion.ion), FieldRole::IonDidv(k)).unwrap();
                ion_didv.push((k, f));
            }
        }
        Layout { fields, v, area, diam, current, conductance, ion_didv }
    }
    pub fn find(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|(n, _)| n == name)
    }
}

/// A kernel and how to fill its scalar inputs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Kernel {
    pub program: Program,
    pub inputs: Vec<(u32, Input)>,
}

/// One TABLE: how to build it and what it depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct TableBuild {
    pub func: String,
    pub intervals: usize,
    pub columns: usize,
    /// Computes FROM and TO into scalar slots `range_slots`.
    pub range: Kernel,
    pub range_slots: (u32, u32),
    /// Runs over the table points: reads the argument from field 0, writes column k to field k+1.
    pub builder: Kernel,
    pub depend: Vec<Input>,
}

/// Kernels with tables used (`[1]`) and not used (`[0]`), per entry point.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Kernels {
    pub init: [Kernel; 2],
    pub current: Option<[Kernel; 2]>,
    pub state: [Kernel; 2],
    pub net_receive: Option<[Kernel; 2]>,
    pub net_init: Option<[Kernel; 2]>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    pub model: Model,
    pub layout: Layout,
    pub kernels: Kernels,
    pub tables: Vec<TableBuild>,
    pub warnings: Vec<String>,
    /// Per-instance fields of assigned GLOBALs that some kernel stores (the others hold no value).
    pub stored_shadows: HashSet<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    Var(VarId),
    Local(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Val {
    S(u32),
    V(u32),
}

impl Val {
    fn src(self) -> Src {
        match self {
            Val::S(k) => Src::S(k),
            Val::V(r) => Src::V(r as u16),
        }
    }
}

/// A pure instruction, for common-subexpression elimination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Pure {
    Un(Un, Val),
    Bin(Bin, Val, Val),
    Select(Val, Val, Val),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Kernel,
    /// Building the table of a function: per-instance values may not be read.
    TableBuilder,
    NetReceive,
}

const VREG_LIMIT: u32 = 65_000;
const SCALAR_LIMIT: usize = 1_000_000;

struct Lowerer<'m> {
    m: &'m Model,
    layout: &'m Layout,
    src: Source,
    mode: Mode,
    usetable: bool,
    /// Table index of each TABLE'd function.
    table_of: &'m HashMap<String, usize>,
    ops: Vec<Vec<Op>>,
    sops: Vec<SOp>,
    scalars: Vec<f64>,
    known: Vec<Option<f64>>,
    consts: HashMap<u64, u32>,
    inputs: HashMap<Input, u32>,
    n_vregs: u32,
    env: BTreeMap<Key, Val>,
    /// Values loaded from fields at kernel entry, with the nesting depth they were loaded at.
    entry: HashMap<usize, (Val, usize)>,
    /// Pure instructions already emitted, with the nesting depth of their result.
    cse: HashMap<Pure, (Val, usize)>,
    /// The pure instruction that defined each vector register, with its nesting depth.
    defs: HashMap<u32, (Pure, usize)>,
    scopes: Vec<HashMap<String, u32>>,
    n_locals: u32,
    results: Vec<(String, u32)>,
    call_stack: Vec<String>,
    mask: Option<Val>,
    /// NET_RECEIVE: argument names and their index; `flag` is after them.
    args: Vec<String>,
    max_system: usize,
    warnings: Vec<String>,
    /// What `dt` reads as: nocmodl halves dt in nrn_state under second order for mechanisms with
    /// derivimplicit, sparse or euler solves.
    dt_value: Option<Val>,
}

pub fn lower(m: Model, file_source: &Source) -> Result<Compiled> {
    let layout = Layout::new(&m);
    let mut table_of = HashMap::new();
    for f in &m.funcs {
        if f.table.is_some() {
            let k = table_of.len();
            table_of.insert(f.name.clone(), k);
        }
    }
    let mut warnings: Vec<String> = m.warnings.iter().map(|d| d.to_string()).collect();
    let both =
        |which: &dyn Fn(&mut Lowerer) -> Result<()>, mode: Mode, warnings: &mut Vec<String>| -> Result<[Kernel; 2]> {
            let mut out: [Kernel; 2] = Default::default();
            for (k, usetable) in [false, true].into_iter().enumerate() {
                let mut l = Lowerer::new(&m, &layout, file_source, mode, usetable, &table_of);
                which(&mut l)?;
                if usetable {
                    warnings.extend(l.warnings.iter().cloned());
                }
                out[k] = l.finish_raw()?;
            }
            Ok(out)
        };
    let init = both(&|l| l.init_kernel(), Mode::Kernel, &mut warnings)?;
    let current =
        if layout.current.is_some() { Some(both(&|l| l.current_kernel(), Mode::Kernel, &mut warnings)?) } else { None };
    let state = both(&|l| l.state_kernel(), Mode::Kernel, &mut warnings)?;
    let net_receive = match &m.net_receive {
        Some(nr) => Some(both(&|l| l.net_kernel(&nr.body), Mode::NetReceive, &mut warnings)?),
        None => None,
    };
    let net_init = match m.net_receive.as_ref().and_then(|nr| nr.initial.as_ref()) {
        Some(b) => Some(both(&|l| l.net_kernel(b), Mode::NetReceive, &mut warnings)?),
        None => None,
    };
    let mut kernels = Kernels { init, current, state, net_receive, net_init };
    for k in all_kernels(&mut kernels) {
        crate::regalloc::eliminate_dead(&mut k.program.ops);
    }
    let stored_shadows = drop_dead_shadow_stores(&m, &mut kernels);
    all_kernels(&mut kernels).into_iter().for_each(allocate);
    // The bulk entry points run over many instances at once: worth native code.
    for pair in [Some(&mut kernels.init), kernels.current.as_mut(), Some(&mut kernels.state)].into_iter().flatten() {
        for k in pair.iter_mut() {
            k.program.native = crate::jit::Native(crate::jit::compile(&k.program));
        }
    }
    let mut tables = vec![None; table_of.len()];
    for f in &m.funcs {
        if let Some(&k) = table_of.get(&f.name) {
            tables[k] = Some(table_build(&m, &layout, file_source, &table_of, f)?);
        }
    }
    warnings.sort();
    warnings.dedup();
    Ok(Compiled {
        kernels,
        tables: tables.into_iter().map(|t| t.expect("every table built")).collect(),
        layout,
        model: m,
        warnings,
        stored_shadows,
    })
}

fn all_kernels(k: &mut Kernels) -> Vec<&mut Kernel> {
    let mut v: Vec<&mut Kernel> = Vec::new();
    for pair in [Some(&mut k.init), k.current.as_mut(), Some(&mut k.state), k.net_receive.as_mut(), k.net_init.as_mut()]
        .into_iter()
        .flatten()
    {
        v.extend(pair.iter_mut());
    }
    v
}

/// Remove dead instructions and map the virtual registers of a raw kernel to physical ones.
fn allocate(k: &mut Kernel) {
    crate::regalloc::eliminate_dead(&mut k.program.ops);
    k.program.n_regs = crate::regalloc::allocate(&mut k.program.ops, k.program.n_regs);
}

fn loaded_fields(ops: &[Op], out: &mut HashSet<u32>) {
    for op in ops {
        match op {
            Op::Load { field, .. } => {
                out.insert(*field);
            }
            Op::Implicit(imp) => loaded_fields(&imp.program, out),
            _ => {}
        }
    }
}

/// A GLOBAL that the code assigns lives per instance (Storage::Shadow) only so that a kernel can
/// read back what it computed; when no kernel reads its field before assigning it, storing it is
/// useless (NEURON keeps only the last instance's value anyway), so the stores go. Returns the shadow
/// fields that remain stored.
fn drop_dead_shadow_stores(m: &Model, k: &mut Kernels) -> HashSet<usize> {
    let mut loaded = HashSet::new();
    for kernel in all_kernels(k) {
        loaded_fields(&kernel.program.ops, &mut loaded);
    }
    let dead: HashSet<u32> = m
        .vars
        .iter()
        .filter_map(|v| match v.storage {
            Storage::Shadow { field, .. } if !loaded.contains(&(field as u32)) => Some(field as u32),
            _ => None,
        })
        .collect();
    let mut stored = HashSet::new();
    for kernel in all_kernels(k) {
        kernel.program.ops.retain(|op| !matches!(op, Op::Store { field, .. } if dead.contains(field)));
        for op in &kernel.program.ops {
            if let Op::Store { field, .. } = op {
                stored.insert(*field as usize);
            }
        }
    }
    stored
}

fn table_build(
    m: &Model,
    layout: &Layout,
    src: &Source,
    table_of: &HashMap<String, usize>,
    f: &Func,
) -> Result<TableBuild> {
    let spec = f.table.as_ref().unwrap();
    // FROM/TO: scalar only.
    let mut l = Lowerer::new(m, layout, src, Mode::TableBuilder, false, table_of);
    let lo = l.expr(&spec.from)?;
    let hi = l.expr(&spec.to)?;
    let (Val::S(lo), Val::S(hi)) = (lo, hi) else {
        return Err(src.semantic(spec.pos, "TABLE FROM and TO must not depend on per-instance values"));
    };
    let mut range = l.finish_raw()?;
    allocate(&mut range);
    // Builder: argument in field 0, columns in fields 1..
    let mut l = Lowerer::new(m, layout, src, Mode::TableBuilder, false, table_of);
    let x = l.vreg();
    l.emit(Op::Load { dst: x as u16, field: 0 });
    let outs: Vec<Val> = if spec.names.is_empty() {
        vec![l.inline_call(f, vec![Val::V(x)], spec.pos)?]
    } else {
        l.inline_call(f, vec![Val::V(x)], spec.pos)?;
        spec.names.iter().map(|&id| l.read_var(id, spec.pos)).collect::<Result<_>>()?
    };
    for (k, v) in outs.iter().enumerate() {
        let r = l.to_vreg(*v);
        l.emit(Op::Store { field: (k + 1) as u32, src: r as u16 });
    }
    let mut builder = l.finish_raw()?;
    allocate(&mut builder);
    let depend = spec
        .depend
        .iter()
        .map(|&id| match m.vars[id].storage {
            Storage::Special(Special::Dt) => Input::Dt,
            Storage::Special(Special::Celsius) => Input::Celsius,
            Storage::Special(Special::T) => Input::T,
            Storage::Global(g) | Storage::Shadow { global: g, .. } => Input::Global(g),
            _ => unreachable!("checked: DEPEND on globals only"),
        })
        .collect();
    Ok(TableBuild {
        func: f.name.clone(),
        intervals: spec.intervals as usize,
        columns: outs.len(),
        range,
        range_slots: (lo, hi),
        builder,
        depend,
    })
}

impl<'m> Lowerer<'m> {
    fn new(
        m: &'m Model,
        layout: &'m Layout,
        src: &Source,
        mode: Mode,
        usetable: bool,
        table_of: &'m HashMap<String, usize>,
    ) -> Self {
        Lowerer {
            m,
            layout,
            src: src.clone(),
            mode,
            usetable,
            table_of,
            ops: vec![Vec::new()],
            sops: Vec::new(),
            scalars: Vec::new(),
            known: Vec::new(),
            consts: HashMap::new(),
            inputs: HashMap::new(),
            n_vregs: 0,
            env: BTreeMap::new(),
            entry: HashMap::new(),
            cse: HashMap::new(),
            defs: HashMap::new(),
            scopes: vec![HashMap::new()],
            n_locals: 0,
            results: Vec::new(),
            call_stack: Vec::new(),
            mask: None,
            args: Vec::new(),
            max_system: 0,
            warnings: Vec::new(),
            dt_value: None,
        }
    }

    fn err(&self, pos: Pos, msg: impl Into<String>) -> Error {
        self.src.semantic(pos, msg)
    }

    // ---------------------------------------------------------------- values and instructions

    fn emit(&mut self, op: Op) {
        self.ops.last_mut().unwrap().push(op);
    }

    fn vreg(&mut self) -> u32 {
        self.n_vregs += 1;
        self.n_vregs - 1
    }

    fn slot(&mut self, value: f64, known: Option<f64>) -> u32 {
        self.scalars.push(value);
        self.known.push(known);
        (self.scalars.len() - 1) as u32
    }

    fn konst(&mut self, x: f64) -> Val {
        let bits = x.to_bits();
        if let Some(&k) = self.consts.get(&bits) {
            return Val::S(k);
        }
        let k = self.slot(x, Some(x));
        self.consts.insert(bits, k);
        Val::S(k)
    }

    fn input(&mut self, i: Input) -> Val {
        if let Some(&k) = self.inputs.get(&i) {
            return Val::S(k);
        }
        let k = self.slot(0.0, None);
        self.inputs.insert(i, k);
        Val::S(k)
    }

    fn dt(&mut self) -> Val {
        match self.dt_value {
            Some(v) => v,
            None => self.input(Input::Dt),
        }
    }

    /// NEURON's second-order correction after a halved implicit step: x + dt*D (selected at run time).
    fn second_order_step(&mut self, x: Val, d: Val) -> Val {
        let dt = self.dt();
        let step = self.binop(Bin::Mul, dt, d);
        let corrected = self.binop(Bin::Add, x, step);
        let so = self.input(Input::SecondOrder);
        self.select(so, corrected, x)
    }

    fn known(&self, v: Val) -> Option<f64> {
        match v {
            Val::S(k) => self.known[k as usize],
            Val::V(_) => None,
        }
    }

    fn reuse(&self, key: &Pure) -> Option<Val> {
        self.cse.get(key).map(|e| e.0)
    }

    fn remember(&mut self, key: Pure, v: Val) -> Val {
        let depth = if matches!(v, Val::S(_)) { 0 } else { self.ops.len() };
        self.cse.insert(key, (v, depth));
        if let Val::V(r) = v {
            self.defs.insert(r, (key, depth));
        }
        v
    }

    /// The pure instruction that computed `v`, if any.
    fn def(&self, v: Val) -> Option<Pure> {
        match v {
            Val::V(r) => self.defs.get(&r).map(|d| d.0),
            Val::S(_) => None,
        }
    }

    fn unop(&mut self, op: Un, a: Val) -> Val {
        if let Some(x) = self.known(a) {
            return self.konst(crate::vm::un(op, x));
        }
        if let (Un::Neg, Some(Pure::Un(Un::Neg, x))) = (op, self.def(a)) {
            return x;
        }
        let key = Pure::Un(op, a);
        if let Some(v) = self.reuse(&key) {
            return v;
        }
        let v = match a {
            Val::S(k) => {
                let d = self.slot(0.0, None);
                self.sops.push(SOp::Un { op, dst: d, a: k });
                Val::S(d)
            }
            Val::V(r) => {
                let d = self.vreg();
                self.emit(Op::Un { op, dst: d as u16, a: r as u16 });
                Val::V(d)
            }
        };
        self.remember(key, v)
    }

    fn binop(&mut self, op: Bin, a: Val, b: Val) -> Val {
        if let (Some(x), Some(y)) = (self.known(a), self.known(b)) {
            return self.konst(crate::vm::bin(op, x, y));
        }
        if let Some(v) = self.strength_reduce(op, a, b) {
            return v;
        }
        let commutes = matches!(op, Bin::Add | Bin::Mul | Bin::Eq | Bin::Ne | Bin::And | Bin::Or);
        let key = if commutes { Pure::Bin(op, a.min(b), a.max(b)) } else { Pure::Bin(op, a, b) };
        if let Some(v) = self.reuse(&key) {
            return v;
        }
        let v = match (a, b) {
            (Val::S(x), Val::S(y)) => {
                let d = self.slot(0.0, None);
                self.sops.push(SOp::Bin { op, dst: d, a: x, b: y });
                Val::S(d)
            }
            _ => {
                let d = self.vreg();
                self.emit(Op::Bin { op, dst: d as u16, a: a.src(), b: b.src() });
                Val::V(d)
            }
        };
        self.remember(key, v)
    }

    /// Cheaper forms of a multiplication or division (see docs/nmodl.md, "Execution"): exact ones
    /// (`x*1`, `x*-1`, `(-x)*c = x*(-c)`) and ones that change the result by about an ulp: a
    /// division by a constant becomes a multiplication by its reciprocal, `a/(1/y)` becomes `a*y`.
    fn strength_reduce(&mut self, op: Bin, a: Val, b: Val) -> Option<Val> {
        match op {
            Bin::Mul => {
                let (x, c) = match (self.known(a), self.known(b)) {
                    (None, Some(c)) => (a, c),
                    (Some(c), None) => (b, c),
                    _ => return None,
                };
                if c == 1.0 {
                    return Some(x);
                }
                if c == -1.0 {
                    return Some(self.unop(Un::Neg, x));
                }
                if let Some(Pure::Un(Un::Neg, y)) = self.def(x) {
                    let nc = self.konst(-c);
                    return Some(self.binop(Bin::Mul, y, nc));
                }
                None
            }
            Bin::Div => {
                if let Some(c) = self.known(b) {
                    let r = 1.0 / c;
                    if r.is_normal() {
                        let r = self.konst(r);
                        return Some(self.binop(Bin::Mul, a, r));
                    }
                    return None;
                }
                if let Some(Pure::Bin(Bin::Div, one, y)) = self.def(b) {
                    if self.known(one) == Some(1.0) {
                        return Some(self.binop(Bin::Mul, a, y));
                    }
                }
                None
            }
            _ => None,
        }
    }

    fn select(&mut self, c: Val, a: Val, b: Val) -> Val {
        if a == b {
            return a;
        }
        if let Some(x) = self.known(c) {
            return if x != 0.0 { a } else { b };
        }
        let key = Pure::Select(c, a, b);
        if let Some(v) = self.reuse(&key) {
            return v;
        }
        let v = match (c, a, b) {
            (Val::S(c), Val::S(a), Val::S(b)) => {
                let d = self.slot(0.0, None);
                self.sops.push(SOp::Select { dst: d, c, a, b });
                Val::S(d)
            }
            _ => {
                let d = self.vreg();
                self.emit(Op::Select { dst: d as u16, c: c.src(), a: a.src(), b: b.src() });
                Val::V(d)
            }
        };
        self.remember(key, v)
    }

    fn to_vreg(&mut self, v: Val) -> u32 {
        match v {
            Val::V(r) => r,
            Val::S(k) => {
                let d = self.vreg();
                self.emit(Op::Splat { dst: d as u16, src: k });
                d
            }
        }
    }

    fn mask_reg(&mut self) -> Option<u16> {
        let m = self.mask?;
        if self.known(m) == Some(1.0) {
            return None;
        }
        Some(self.to_vreg(m) as u16)
    }

    fn and_mask(&mut self, c: Val) -> Val {
        match self.mask {
            None => c,
            Some(m) => self.binop(Bin::And, m, c),
        }
    }

    // ---------------------------------------------------------------- names

    fn local_of(&self, name: &str) -> Option<u32> {
        for s in self.scopes.iter().rev() {
            if let Some(&id) = s.get(name) {
                return Some(id);
            }
        }
        if let Some((n, id)) = self.results.last() {
            if n == name {
                return Some(*id);
            }
        }
        None
    }

    fn new_local(&mut self, name: &str, value: Val) -> u32 {
        let id = self.n_locals;
        self.n_locals += 1;
        self.scopes.last_mut().unwrap().insert(name.to_string(), id);
        self.env.insert(Key::Local(id), value);
        id
    }

    fn load_field(&mut self, field: usize) -> Val {
        let depth = self.ops.len();
        if let Some(&(v, _)) = self.entry.get(&field) {
            return v;
        }
        let d = self.vreg();
        self.emit(Op::Load { dst: d as u16, field: field as u32 });
        self.entry.insert(field, (Val::V(d), depth));
        Val::V(d)
    }

    fn read_var(&mut self, id: VarId, pos: Pos) -> Result<Val> {
        if let Some(&v) = self.env.get(&Key::Var(id)) {
            return Ok(v);
        }
        let var = &self.m.vars[id];
        Ok(match var.storage {
            Storage::Const(c) => self.konst(c),
            Storage::Special(Special::T) => self.input(Input::T),
            Storage::Special(Special::Dt) => self.dt(),
            Storage::Special(Special::Celsius) => self.input(Input::Celsius),
            Storage::Special(s) => {
                if self.mode == Mode::TableBuilder {
                    return Err(
                        self.err(pos, format!("a TABLE body cannot read the per-instance value '{}'", var.name))
                    );
                }
                let f = match s {
                    Special::V => self.layout.v,
                    Special::Area => self.layout.area,
                    _ => self.layout.diam,
                };
                match f {
                    Some(f) => self.load_field(f),
                    None => return Err(self.err(pos, format!("'{}' does not exist in an ARTIFICIAL_CELL", var.name))),
                }
            }
            Storage::Global(g) => self.input(Input::Global(g)),
            Storage::Shadow { field, global } => {
                if self.mode == Mode::TableBuilder {
                    self.input(Input::Global(global))
                } else {
                    self.load_field(field)
                }
            }
            Storage::Field(f) => {
                if self.mode == Mode::TableBuilder {
                    return Err(self.src.unsupported(
                        pos,
                        format!(
                            "a TABLE body reads the per-instance variable '{}' (NEURON would tabulate with an arbitrary instance's value)",
                            var.name
                        ),
                    ));
                }
                self.load_field(f)
            }
        })
    }

    fn read_name(&mut self, name: &str, pos: Pos) -> Result<Val> {
        if let Some(id) = self.local_of(name) {
            return Ok(self.env[&Key::Local(id)]);
        }
        if self.mode == Mode::NetReceive && name == "flag" {
            return Ok(self.arg_value(self.args.len()));
        }
        if let Some(&id) = self.m.by_name.get(name) {
            return self.read_var(id, pos);
        }
        match name {
            "PI" => Ok(self.konst(std::f64::consts::PI)),
            "E" => Ok(self.konst(std::f64::consts::E)),
            _ => Err(self.err(pos, format!("undeclared name '{name}'"))),
        }
    }

    fn arg_value(&mut self, k: usize) -> Val {
        let d = self.vreg();
        self.emit(Op::ArgLoad { dst: d as u16, arg: k as u16 });
        Val::V(d)
    }

    fn assign(&mut self, name: &str, v: Val, pos: Pos) -> Result<()> {
        if let Some(id) = self.local_of(name) {
            self.env.insert(Key::Local(id), v);
            return Ok(());
        }
        match self.m.by_name.get(name) {
            Some(&id) => {
                self.env.insert(Key::Var(id), v);
                Ok(())
            }
            None => Err(self.err(pos, format!("assignment to undeclared name '{name}'"))),
        }
    }

    // ---------------------------------------------------------------- expressions

    fn expr(&mut self, e: &Expr) -> Result<Val> {
        match e {
            Expr::Num(x) => Ok(self.konst(*x)),
            Expr::Str(_) => Err(self.err(Pos::default(), "a string is only allowed as printf's first argument")),
            Expr::Var(n, p) => self.read_name(n, *p),
            Expr::Neg(a) => {
                let a = self.expr(a)?;
                Ok(self.unop(Un::Neg, a))
            }
            Expr::Not(a) => {
                let a = self.expr(a)?;
                Ok(self.unop(Un::Not, a))
            }
            Expr::Bin(op, a, b) => {
                let x = self.expr(a)?;
                let y = self.expr(b)?;
                let op = match op {
                    BinOp::Add => Bin::Add,
                    BinOp::Sub => Bin::Sub,
                    BinOp::Mul => Bin::Mul,
                    BinOp::Div => Bin::Div,
                    BinOp::Mod => Bin::Fmod,
                    BinOp::Pow => Bin::Pow,
                    BinOp::Lt => Bin::Lt,
                    BinOp::Le => Bin::Le,
                    BinOp::Gt => Bin::Gt,
                    BinOp::Ge => Bin::Ge,
                    BinOp::Eq => Bin::Eq,
                    BinOp::Ne => Bin::Ne,
                    BinOp::And => Bin::And,
                    BinOp::Or => Bin::Or,
                };
                Ok(self.binop(op, x, y))
            }
            Expr::Call(name, args, pos) => self.call(name, args, *pos),
        }
    }

    fn call(&mut self, name: &str, args: &[Expr], pos: Pos) -> Result<Val> {
        if let Some(f) = self.m.func(name) {
            match f.builtin {
                Some(BuiltinProc::ApiOnly) => return Ok(self.konst(0.0)),
                Some(BuiltinProc::VectorElement) => {
                    let (ix_id, et_id) = (self.m.by_name["index"], self.m.by_name["etime"]);
                    let ix = self.read_var(ix_id, pos)?;
                    let et = self.read_var(et_id, pos)?;
                    let (ix, et) = (self.to_vreg(ix), self.to_vreg(et));
                    let (io, eo) = (self.vreg(), self.vreg());
                    let mask = self.mask_reg();
                    self.emit(Op::VecElement {
                        index: ix as u16,
                        etime: et as u16,
                        index_out: io as u16,
                        etime_out: eo as u16,
                        mask,
                    });
                    self.env.insert(Key::Var(ix_id), Val::V(io));
                    self.env.insert(Key::Var(et_id), Val::V(eo));
                    return Ok(self.konst(0.0));
                }
                None => {}
            }
            let vals = args.iter().map(|a| self.expr(a)).collect::<Result<Vec<_>>>()?;
            if self.usetable && self.mode != Mode::TableBuilder {
                if let Some(&t) = self.table_of.get(name) {
                    return Ok(self.table_call(f, t, vals[0]));
                }
            }
            return self.inline_call(f, vals, pos);
        }
        let mut a = Vec::with_capacity(args.len());
        for (i, e) in args.iter().enumerate() {
            if name == "printf" && i == 0 {
                continue;
            }
            a.push(self.expr(e)?);
        }
        let un_op = match name {
            "exp" => Some(Un::Exp),
            "log" => Some(Un::Log),
            "log10" => Some(Un::Log10),
            "sqrt" => Some(Un::Sqrt),
            "fabs" => Some(Un::Fabs),
            "sin" => Some(Un::Sin),
            "cos" => Some(Un::Cos),
            "tan" => Some(Un::Tan),
            "asin" => Some(Un::Asin),
            "acos" => Some(Un::Acos),
            "atan" => Some(Un::Atan),
            "sinh" => Some(Un::Sinh),
            "cosh" => Some(Un::Cosh),
            "tanh" => Some(Un::Tanh),
            "floor" => Some(Un::Floor),
            "ceil" => Some(Un::Ceil),
            _ => None,
        };
        if let Some(op) = un_op {
            return Ok(self.unop(op, a[0]));
        }
        let bin_op = match name {
            "pow" => Some(Bin::Pow),
            "atan2" => Some(Bin::Atan2),
            "fmod" => Some(Bin::Fmod),
            "fmin" => Some(Bin::Fmin),
            "fmax" => Some(Bin::Fmax),
            _ => None,
        };
        if let Some(op) = bin_op {
            return Ok(self.binop(op, a[0], a[1]));
        }
        if self.mode == Mode::TableBuilder && builtin_has_effect(name) {
            return Err(self.src.unsupported(pos, format!("'{name}' in a TABLE body is not supported")));
        }
        let mask = self.mask_reg();
        match name {
            "normrand" | "exprand" | "scop_random" => {
                let kind = match name {
                    "normrand" => RandKind::Normal(a[0].src(), a[1].src()),
                    "exprand" => RandKind::Exponential(a[0].src()),
                    _ => RandKind::Uniform,
                };
                let d = self.vreg();
                self.emit(Op::Random { kind, dst: d as u16, mask });
                Ok(Val::V(d))
            }
            "set_seed" => {
                self.emit(Op::SetSeed { seed: a[0].src(), mask });
                Ok(self.konst(0.0))
            }
            "net_send" => {
                self.emit(Op::NetSend { delay: a[0].src(), flag: a[1].src(), mask });
                Ok(self.konst(0.0))
            }
            "net_event" => {
                self.emit(Op::NetEvent { t: a[0].src(), mask });
                Ok(self.konst(0.0))
            }
            "printf" | "at_time" => Ok(self.konst(0.0)),
            "nrn_ghk" => Ok(self.ghk(a[0], a[1], a[2], a[3])),
            _ => Err(self.err(pos, format!("call of undefined function '{name}'"))),
        }
    }

    /// NEURON's nrn_ghk(v, ci, co, z) (eion.cpp), with CODATA 2018 constants.
    fn ghk(&mut self, v: Val, ci: Val, co: Val, z: Val) -> Val {
        use miv_solvers::ion::{FARADAY as F, GAS_CONSTANT as R};
        let celsius = self.input(Input::Celsius);
        let c = self.konst(273.15);
        let tk = self.binop(Bin::Add, celsius, c);
        let k = self.konst(1000.0 * R);
        let num = self.binop(Bin::Mul, k, tk);
        let f = self.konst(F);
        let ktf = self.binop(Bin::Div, num, f);
        let zv = self.binop(Bin::Mul, z, v);
        let temp = self.binop(Bin::Div, zv, ktf);
        let e1 = self.efun(temp);
        let eco = self.binop(Bin::Mul, co, e1);
        let mtemp = self.unop(Un::Neg, temp);
        let e2 = self.efun(mtemp);
        let eci = self.binop(Bin::Mul, ci, e2);
        let diff = self.binop(Bin::Sub, eci, eco);
        let zf = self.binop(Bin::Mul, z, f);
        let milli = self.konst(0.001);
        let pre = self.binop(Bin::Mul, milli, zf);
        self.binop(Bin::Mul, pre, diff)
    }

    fn efun(&mut self, x: Val) -> Val {
        let ax = self.unop(Un::Fabs, x);
        let small = self.konst(1e-4);
        let c = self.binop(Bin::Lt, ax, small);
        let one = self.konst(1.0);
        let two = self.konst(2.0);
        let h = self.binop(Bin::Div, x, two);
        let near = self.binop(Bin::Sub, one, h);
        let ex = self.unop(Un::Exp, x);
        let den = self.binop(Bin::Sub, ex, one);
        let far = self.binop(Bin::Div, x, den);
        self.select(c, near, far)
    }

    fn table_call(&mut self, f: &Func, table: usize, x: Val) -> Val {
        let spec = f.table.as_ref().unwrap();
        let n = if spec.names.is_empty() { 1 } else { spec.names.len() };
        let dst: Vec<u32> = (0..n).map(|_| self.vreg()).collect();
        self.emit(Op::Table { table: table as u32, x: x.src(), dst: dst.iter().map(|&r| r as u16).collect() });
        if spec.names.is_empty() {
            Val::V(dst[0])
        } else {
            for (k, &id) in spec.names.iter().enumerate() {
                self.env.insert(Key::Var(id), Val::V(dst[k]));
            }
            self.konst(0.0)
        }
    }

    fn inline_call(&mut self, f: &Func, vals: Vec<Val>, pos: Pos) -> Result<Val> {
        if self.call_stack.iter().any(|c| c == &f.name) {
            return Err(self.src.unsupported(pos, format!("recursive call of '{}'", f.name)));
        }
        if self.call_stack.len() > 64 {
            return Err(self.src.unsupported(pos, "calls nested more than 64 deep"));
        }
        // Inlining can grow exponentially (each level calling the next twice): stop early.
        if self.n_vregs > VREG_LIMIT || self.scalars.len() > SCALAR_LIMIT {
            return Err(self.src.unsupported(pos, "mechanism too large once FUNCTION and PROCEDURE calls are inlined"));
        }
        self.call_stack.push(f.name.clone());
        let first_local = self.n_locals;
        // A fresh scope: the callee sees its arguments and globals only.
        let saved_scopes = std::mem::replace(&mut self.scopes, vec![HashMap::new()]);
        for (name, v) in f.args.iter().zip(vals) {
            self.new_local(name, v);
        }
        let result = if f.kind == FuncKind::Function {
            let z = self.konst(0.0);
            let id = self.n_locals;
            self.n_locals += 1;
            self.env.insert(Key::Local(id), z);
            self.results.push((f.name.clone(), id));
            Some(id)
        } else {
            None
        };
        self.block(&f.body)?;
        let out = match result {
            Some(id) => {
                self.results.pop();
                self.env[&Key::Local(id)]
            }
            None => self.konst(0.0),
        };
        self.scopes = saved_scopes;
        self.call_stack.pop();
        // Locals of the callee are dead now.
        self.env.retain(|k, _| !matches!(k, Key::Local(id) if *id >= first_local));
        Ok(out)
    }

    // ---------------------------------------------------------------- statements

    fn block(&mut self, stmts: &[Stmt]) -> Result<()> {
        self.scopes.push(HashMap::new());
        for s in stmts {
            self.stmt(s)?;
        }
        self.scopes.pop();
        Ok(())
    }

    fn stmt(&mut self, s: &Stmt) -> Result<()> {
        match &s.kind {
            StmtKind::Local(names) => {
                for (n, _) in names {
                    let z = self.konst(0.0);
                    self.new_local(n, z);
                }
            }
            StmtKind::Assign { name, value } => {
                let v = self.expr(value)?;
                let split = if self.mode == Mode::NetReceive && crate::netrec_state_adjust() {
                    self.cnexp_split_of(name)
                } else {
                    None
                };
                let v = match split {
                    // nrn_netrec_state_adjust: the jump d becomes d + (1 - exp(a dt/2)) (inf - d).
                    Some((a, b)) => {
                        let old = self.read_name(name, s.pos)?;
                        let jump = self.binop(Bin::Sub, v, old);
                        let (av, inf) = self.cnexp_coefficients(&a, b.as_ref())?;
                        let dt = self.dt();
                        let half = self.konst(0.5);
                        let hdt = self.binop(Bin::Mul, half, dt);
                        let x = self.binop(Bin::Mul, hdt, av);
                        let e = self.unop(Un::Exp, x);
                        let one = self.konst(1.0);
                        let fac = self.binop(Bin::Sub, one, e);
                        let gap = self.binop(Bin::Sub, inf, jump);
                        let inc = self.binop(Bin::Mul, fac, gap);
                        let jump = self.binop(Bin::Add, jump, inc);
                        self.binop(Bin::Add, old, jump)
                    }
                    None => v,
                };
                self.assign(name, v, s.pos)?;
            }
            StmtKind::Call(e) => {
                let Expr::Call(n, a, p) = e else { unreachable!() };
                self.call(n, a, *p)?;
            }
            StmtKind::If { cond, then, els } => self.if_stmt(cond, then, els.as_deref())?,
            StmtKind::Block(b) => self.block(b)?,
            StmtKind::Table { .. } => {}
            StmtKind::Verbatim(_) => match self.m.verbatim.get(&s.pos) {
                Some(Verbatim::IonRead(n)) => {
                    let id = self.m.by_name[n];
                    let f = match self.m.vars[id].storage {
                        Storage::Field(f) | Storage::Shadow { field: f, .. } => f,
                        _ => unreachable!("ion variables are fields"),
                    };
                    let v = self.load_field(f);
                    self.env.insert(Key::Var(id), v);
                }
                Some(Verbatim::RandomRestart) => {
                    let mask = self.mask_reg();
                    self.emit(Op::RestartRandom { mask });
                }
                _ => {}
            },
            StmtKind::Derivative { .. }
            | StmtKind::Reaction { .. }
            | StmtKind::Flux { .. }
            | StmtKind::Conserve { .. } => return Err(self.err(s.pos, "equation outside its DERIVATIVE/KINETIC block")),
            StmtKind::Solve { .. } | StmtKind::NetInitial(_) => {
                return Err(self.err(s.pos, "statement not allowed here"))
            }
        }
        Ok(())
    }

    fn if_stmt(&mut self, cond: &Expr, then: &[Stmt], els: Option<&[Stmt]>) -> Result<()> {
        let c = self.expr(cond)?;
        if let Some(x) = self.known(c) {
            return if x != 0.0 {
                self.block(then)
            } else if let Some(e) = els {
                self.block(e)
            } else {
                Ok(())
            };
        }
        let outer = self.mask;
        let env0 = self.env.clone();
        let m_then = self.and_mask(c);
        self.mask = Some(m_then);
        self.block(then)?;
        let env_then = std::mem::replace(&mut self.env, env0.clone());
        if let Some(e) = els {
            let nc = self.unop(Un::Not, c);
            self.mask = outer;
            let m_else = self.and_mask(nc);
            self.mask = Some(m_else);
            self.block(e)?;
        }
        let env_else = std::mem::replace(&mut self.env, env0.clone());
        self.mask = outer;
        let mut keys: Vec<Key> = env_then.keys().chain(env_else.keys()).copied().collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            if matches!(k, Key::Local(_)) && !env0.contains_key(&k) {
                continue;
            }
            let a = match env_then.get(&k) {
                Some(&v) => v,
                None => self.current(k)?,
            };
            let b = match env_else.get(&k) {
                Some(&v) => v,
                None => self.current(k)?,
            };
            let v = self.select(c, a, b);
            self.env.insert(k, v);
        }
        Ok(())
    }

    fn current(&mut self, k: Key) -> Result<Val> {
        if let Some(&v) = self.env.get(&k) {
            return Ok(v);
        }
        match k {
            Key::Var(id) => self.read_var(id, Pos::default()),
            Key::Local(_) => unreachable!("locals always have a value"),
        }
    }

    // ---------------------------------------------------------------- SOLVE methods

    fn solve(&mut self, s: &SolveSpec) -> Result<()> {
        let f = self.m.func(&s.func).unwrap();
        match s.method {
            Method::Procedure => {
                self.inline_call(f, vec![], s.pos)?;
            }
            Method::Cnexp => {
                let mut eqs = Vec::new();
                let mut ok = true;
                for st in &f.body {
                    st.walk(&mut |x| {
                        if let StmtKind::Derivative { state, value, .. } = &x.kind {
                            match symbolic::linear(value, state) {
                                Some(l) => eqs.push(l),
                                None => ok = false,
                            }
                        }
                    });
                }
                if ok {
                    self.deriv_block(f, Some(&mut eqs.into_iter()))?;
                } else {
                    self.warnings.push(format!(
                        "{}:{}: Could not translate '{}' using cnexp method; using derivimplicit (as nocmodl)",
                        self.src.file, s.pos, f.name
                    ));
                    self.implicit_deriv(f)?;
                }
            }
            Method::Euler => self.euler(f)?,
            Method::Derivimplicit => self.implicit_deriv(f)?,
            Method::Sparse => self.kinetic(f)?,
        }
        Ok(())
    }

    /// The cnexp split `(a, b)` of `x' = a x + b` for STATE `name`, if a cnexp SOLVE integrates it linearly.
    fn cnexp_split_of(&self, name: &str) -> Option<(Expr, Option<Expr>)> {
        let is_state = self.m.by_name.get(name).is_some_and(|&id| self.m.vars[id].kind == crate::model::VarKind::State);
        if !is_state {
            return None;
        }
        for sol in self.m.solves.iter().filter(|x| x.method == Method::Cnexp) {
            let f = self.m.func(&sol.func)?;
            let mut found = None;
            for st in &f.body {
                st.walk(&mut |x| {
                    if let StmtKind::Derivative { state, value, .. } = &x.kind {
                        if state == name {
                            found = symbolic::linear(value, state);
                        }
                    }
                });
            }
            if let Some((Some(a), b)) = found {
                return Some((a, b));
            }
        }
        None
    }

    /// Body of a DERIVATIVE block with each `x' = f` replaced by the cnexp update, in order.
    fn deriv_block(&mut self, f: &Func, eqs: Option<&mut dyn Iterator<Item = symbolic::Linear>>) -> Result<()> {
        let mut eqs = eqs;
        self.scopes = vec![HashMap::new()];
        self.call_stack.push(f.name.clone());
        let r = self.deriv_stmts(&f.body, &mut eqs);
        self.call_stack.pop();
        r
    }

    fn deriv_stmts(
        &mut self,
        body: &[Stmt],
        eqs: &mut Option<&mut dyn Iterator<Item = symbolic::Linear>>,
    ) -> Result<()> {
        self.scopes.push(HashMap::new());
        for s in body {
            match &s.kind {
                StmtKind::Derivative { state, .. } => {
                    let Some(it) = eqs.as_mut() else { continue };
                    let (a, b) = it.next().expect("one split per equation");
                    let x = self.read_name(state, s.pos)?;
                    let dt = self.dt();
                    let new = match a {
                        None => match b {
                            None => x,
                            Some(b) => {
                                let bv = self.expr(&b)?;
                                let nb = self.unop(Un::Neg, bv);
                                let step = self.binop(Bin::Mul, dt, nb);
                                self.binop(Bin::Sub, x, step)
                            }
                        },
                        Some(a) => {
                            let (av, inf) = self.cnexp_coefficients(&a, b.as_ref())?;
                            self.cnexp_update(x, av, inf, dt)
                        }
                    };
                    self.assign(state, new, s.pos)?;
                }
                _ => self.stmt(s)?,
            }
        }
        self.scopes.pop();
        Ok(())
    }

    /// `a` and the steady state `-(b)/(a)` of a cnexp split. When `a` and `b` are quotients by the
    /// same value (`(inf - x)/tau` gives `-1/tau` and `inf/tau`), the steady state is `-(b0)/(a0)`
    /// of their numerators, which is `inf` itself: the divisions by `tau` cancel (as in exact
    /// arithmetic; nocmodl's three divisions differ from it by an ulp or two, and give NaN where
    /// `tau` is 0 or infinite). The subexpressions are evaluated once each, in nocmodl's order.
    fn cnexp_coefficients(&mut self, a: &Expr, b: Option<&Expr>) -> Result<(Val, Val)> {
        let quotient = |e: &Expr| match e {
            Expr::Bin(BinOp::Div, n, d) => Some(((**n).clone(), (**d).clone())),
            _ => None,
        };
        let (av, num_a) = match quotient(a) {
            Some((n, d)) => {
                let n = self.expr(&n)?;
                let d = self.expr(&d)?;
                (self.binop(Bin::Div, n, d), Some((n, d)))
            }
            None => (self.expr(a)?, None),
        };
        let bv = match (b.and_then(quotient), num_a) {
            (Some((n, d)), Some((a0, da))) => {
                let n = self.expr(&n)?;
                let d = self.expr(&d)?;
                if d == da {
                    let nb = self.unop(Un::Neg, n);
                    return Ok((av, self.binop(Bin::Div, nb, a0)));
                }
                self.binop(Bin::Div, n, d)
            }
            _ => match b {
                Some(b) => self.expr(b)?,
                None => self.konst(0.0),
            },
        };
        let nb = self.unop(Un::Neg, bv);
        Ok((av, self.binop(Bin::Div, nb, av)))
    }

    /// The cnexp update `x + (1 - exp(dt*a))*(inf - x)`, one fused instruction when the state is
    /// per instance (same operations in the same order).
    fn cnexp_update(&mut self, x: Val, a: Val, inf: Val, dt: Val) -> Val {
        let Val::S(dt_slot) = dt else { unreachable!("dt is a scalar") };
        if let Val::V(xr) = x {
            let d = self.vreg();
            self.emit(Op::Cnexp { dst: d as u16, x: xr as u16, a: a.src(), inf: inf.src(), dt: dt_slot });
            return Val::V(d);
        }
        let dta = self.binop(Bin::Mul, dt, a);
        let e = self.unop(Un::Exp, dta);
        let one = self.konst(1.0);
        let fac = self.binop(Bin::Sub, one, e);
        let gap = self.binop(Bin::Sub, inf, x);
        let inc = self.binop(Bin::Mul, fac, gap);
        self.binop(Bin::Add, x, inc)
    }

    /// Explicit Euler (nocmodl's euler): all derivatives at the old states, then x += dt*x'.
    fn euler(&mut self, f: &Func) -> Result<()> {
        self.scopes = vec![HashMap::new()];
        let mut updates = Vec::new();
        for s in &f.body {
            match &s.kind {
                StmtKind::Derivative { state, value, .. } => {
                    let d = self.expr(value)?;
                    updates.push((state.clone(), d, s.pos));
                }
                _ => self.stmt(s)?,
            }
        }
        let dt = self.dt();
        for (state, d, pos) in updates {
            let x = self.read_name(&state, pos)?;
            let step = self.binop(Bin::Mul, dt, d);
            let new = self.binop(Bin::Add, x, step);
            let new = self.second_order_step(new, d);
            self.assign(&state, new, pos)?;
        }
        Ok(())
    }

    /// Start an implicit solve over `states`: returns (state regs, saved regs) and the environment
    /// to restore afterwards; statements lowered until `end_implicit` form the iterated program.
    fn begin_implicit(&mut self, states: &[VarId]) -> Result<(Vec<u32>, Vec<u32>, Vec<Src>, BTreeMap<Key, Val>)> {
        let mut init = Vec::new();
        for &id in states {
            let v = self.read_var(id, Pos::default())?;
            init.push(v.src());
        }
        let regs: Vec<u32> = states.iter().map(|_| self.vreg()).collect();
        let saved: Vec<u32> = states.iter().map(|_| self.vreg()).collect();
        let env_before = self.env.clone();
        for (k, &id) in states.iter().enumerate() {
            self.env.insert(Key::Var(id), Val::V(regs[k]));
        }
        self.ops.push(Vec::new());
        self.max_system = self.max_system.max(states.len());
        Ok((regs, saved, init, env_before))
    }

    #[allow(clippy::too_many_arguments)]
    fn end_implicit(
        &mut self,
        states: &[VarId],
        regs: Vec<u32>,
        saved: Vec<u32>,
        init: Vec<Src>,
        env_before: BTreeMap<Key, Val>,
        resid: Vec<u32>,
        matrix: Vec<u32>,
        sparse: bool,
        linear: bool,
    ) {
        let depth = self.ops.len();
        let program = self.ops.pop().unwrap();
        self.entry.retain(|_, (_, d)| *d < depth);
        self.cse.retain(|_, (_, d)| *d < depth);
        self.defs.retain(|_, (_, d)| *d < depth);
        self.env = env_before;
        for (k, &id) in states.iter().enumerate() {
            self.env.insert(Key::Var(id), Val::V(regs[k]));
        }
        let r16 = |v: Vec<u32>| v.into_iter().map(|r| r as u16).collect::<Vec<_>>();
        self.emit(Op::Implicit(Box::new(Implicit {
            sparse,
            linear,
            init,
            states: r16(regs),
            saved: r16(saved),
            resid: r16(resid),
            matrix: r16(matrix),
            program,
        })));
    }

    /// derivimplicit: Newton on x' - (x - x_old)/dt = 0, then the block once more at the solution.
    fn implicit_deriv(&mut self, f: &Func) -> Result<()> {
        let mut names = Vec::new();
        for s in &f.body {
            s.walk(&mut |x| {
                if let StmtKind::Derivative { state, .. } = &x.kind {
                    names.push(state.clone());
                }
            });
        }
        let states: Vec<VarId> = names.iter().map(|n| self.m.by_name[n]).collect();
        let (regs, saved, init, env_before) = self.begin_implicit(&states)?;
        self.scopes = vec![HashMap::new()];
        let mut derivs: HashMap<String, Val> = HashMap::new();
        for s in &f.body {
            match &s.kind {
                StmtKind::Derivative { state, value, .. } => {
                    let d = self.expr(value)?;
                    derivs.insert(state.clone(), d);
                }
                _ => self.stmt(s)?,
            }
        }
        let dt = self.dt();
        let mut resid = Vec::new();
        for (k, n) in names.iter().enumerate() {
            let x = Val::V(regs[k]);
            let diff = self.binop(Bin::Sub, x, Val::V(saved[k]));
            let rate = self.binop(Bin::Div, diff, dt);
            let r = self.binop(Bin::Sub, derivs[n], rate);
            resid.push(self.to_vreg(r));
        }
        self.end_implicit(&states, regs.clone(), saved, init, env_before, resid, vec![], false, false);
        // NEURON runs the block once more at the solution (updating its assigned variables and the
        // derivatives used by the second-order correction).
        self.scopes = vec![HashMap::new()];
        let mut derivs = Vec::new();
        for s in &f.body {
            match &s.kind {
                StmtKind::Derivative { value, .. } => derivs.push(self.expr(value)?),
                _ => self.stmt(s)?,
            }
        }
        for (k, &id) in states.iter().enumerate() {
            let x = self.second_order_step(Val::V(regs[k]), derivs[k]);
            self.env.insert(Key::Var(id), x);
        }
        Ok(())
    }

    /// KINETIC with METHOD sparse: NEURON's implicit Euler on the reaction system.
    fn kinetic(&mut self, f: &Func) -> Result<()> {
        let mut names: Vec<String> = Vec::new();
        let add = |n: &str, names: &mut Vec<String>| {
            if !names.iter().any(|x| x == n) {
                names.push(n.to_string());
            }
        };
        for s in &f.body {
            s.walk(&mut |x| match &x.kind {
                StmtKind::Reaction { lhs, rhs, .. } => {
                    for r in lhs.iter().chain(rhs) {
                        if self.m.var(&r.name).is_some_and(|v| v.kind == VarKind::State) {
                            add(&r.name, &mut names);
                        }
                    }
                }
                StmtKind::Flux { state, .. } => add(&state.name, &mut names),
                StmtKind::Conserve { terms, .. } => terms.iter().for_each(|r| add(&r.name, &mut names)),
                _ => {}
            });
        }
        let n = names.len();
        let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
        // Rows replaced by conservation laws.
        let mut conserve_row: Vec<Option<usize>> = vec![None; n];
        let mut n_cons = 0;
        for s in &f.body {
            if let StmtKind::Conserve { terms, .. } = &s.kind {
                let Some(r) = terms.iter().rev().map(|r| index[r.name.as_str()]).find(|&i| conserve_row[i].is_none())
                else {
                    return Err(self.err(s.pos, "more CONSERVE statements than states"));
                };
                conserve_row[r] = Some(n_cons);
                n_cons += 1;
            }
        }
        let states: Vec<VarId> = names.iter().map(|x| self.m.by_name[x]).collect();
        let (regs, saved, init, env_before) = self.begin_implicit(&states)?;
        self.scopes = vec![HashMap::new()];
        let zero = self.konst(0.0);
        let mut rhs = vec![zero; n];
        let mut mat = vec![zero; n * n];
        let mut linear = true;
        let mut cons_seen = 0;
        for s in &f.body {
            match &s.kind {
                StmtKind::Reaction { lhs, rhs: right, kf, kb } => {
                    let kf = self.expr(kf)?;
                    let kb = self.expr(kb)?;
                    let sides = [(lhs, kf), (right, kb)];
                    let mut flux = [zero; 2];
                    for (j, (side, k)) in sides.iter().enumerate() {
                        let mut term = *k;
                        for r in side.iter() {
                            let x = self.read_name(&r.name, r.pos)?;
                            for _ in 0..r.coef {
                                term = self.binop(Bin::Mul, term, x);
                            }
                        }
                        flux[j] = term;
                        if side.iter().map(|r| r.coef).sum::<u32>() > 1 {
                            linear = false;
                        }
                    }
                    let net = self.binop(Bin::Sub, flux[0], flux[1]);
                    for (j, (side, _)) in sides.iter().enumerate() {
                        for r in side.iter() {
                            let Some(&i) = index.get(r.name.as_str()) else { continue };
                            if conserve_row[i].is_some() {
                                continue;
                            }
                            let c = self.konst(r.coef as f64);
                            let t = self.binop(Bin::Mul, c, net);
                            rhs[i] =
                                if j == 0 { self.binop(Bin::Sub, rhs[i], t) } else { self.binop(Bin::Add, rhs[i], t) };
                        }
                    }
                    // Matrix: d(flux of side j)/d(state), as nocmodl's genmatterms.
                    for (j, (side, k)) in sides.iter().enumerate() {
                        for r in side.iter() {
                            let Some(&col) = index.get(r.name.as_str()) else { continue };
                            let mut term = *k;
                            if r.coef != 1 {
                                let c = self.konst(r.coef as f64);
                                term = self.binop(Bin::Mul, term, c);
                            }
                            for r1 in side.iter() {
                                let times = if std::ptr::eq(r1, r) { r1.coef - 1 } else { r1.coef };
                                let x = self.read_name(&r1.name, r1.pos)?;
                                for _ in 0..times {
                                    term = self.binop(Bin::Mul, term, x);
                                }
                            }
                            for (j1, (side1, _)) in sides.iter().enumerate() {
                                for r1 in side1.iter() {
                                    let Some(&row) = index.get(r1.name.as_str()) else { continue };
                                    if conserve_row[row].is_some() {
                                        continue;
                                    }
                                    let mut t = term;
                                    if r1.coef != 1 {
                                        let c = self.konst(r1.coef as f64);
                                        t = self.binop(Bin::Mul, c, t);
                                    }
                                    let e = &mut mat[row * n + col];
                                    let cur = *e;
                                    *e = if j == j1 {
                                        self.binop(Bin::Add, cur, t)
                                    } else {
                                        self.binop(Bin::Sub, cur, t)
                                    };
                                }
                            }
                        }
                    }
                }
                StmtKind::Flux { state, flux } => {
                    let v = self.expr(flux)?;
                    let i = index[state.name.as_str()];
                    if conserve_row[i].is_some() {
                        return Err(self.err(s.pos, format!("'{}' is conserved and has a flux", state.name)));
                    }
                    rhs[i] = self.binop(Bin::Add, rhs[i], v);
                }
                StmtKind::Conserve { terms, value } => {
                    let total = self.expr(value)?;
                    let row = (0..n).find(|&i| conserve_row[i] == Some(cons_seen)).unwrap();
                    cons_seen += 1;
                    let mut r = total;
                    for t in terms {
                        let i = index[t.name.as_str()];
                        let c = self.konst(t.coef as f64);
                        let x = Val::V(regs[i]);
                        let cx = self.binop(Bin::Mul, c, x);
                        r = self.binop(Bin::Sub, r, cx);
                        let e = mat[row * n + i];
                        mat[row * n + i] = self.binop(Bin::Add, e, c);
                    }
                    rhs[row] = r;
                }
                _ => self.stmt(s)?,
            }
        }
        // Implicit Euler rows: rhs - (x - x_old)/dt, matrix diagonal + 1/dt.
        let dt = self.dt();
        let one = self.konst(1.0);
        let rdt = self.binop(Bin::Div, one, dt);
        for i in 0..n {
            if conserve_row[i].is_some() {
                continue;
            }
            let diff = self.binop(Bin::Sub, Val::V(regs[i]), Val::V(saved[i]));
            let rate = self.binop(Bin::Mul, diff, rdt);
            rhs[i] = self.binop(Bin::Sub, rhs[i], rate);
            mat[i * n + i] = self.binop(Bin::Add, mat[i * n + i], rdt);
        }
        let resid: Vec<u32> = rhs.into_iter().map(|v| self.to_vreg(v)).collect();
        let matrix: Vec<u32> = mat.into_iter().map(|v| self.to_vreg(v)).collect();
        let before = init.clone();
        self.end_implicit(&states, regs.clone(), saved, init, env_before, resid, matrix, true, linear);
        // Second order: NEURON's Dstate = (x - x_old)/dt, then x += dt*Dstate.
        for (k, &id) in states.iter().enumerate() {
            let x = Val::V(regs[k]);
            let old = match before[k] {
                Src::V(r) => Val::V(r as u32),
                Src::S(s) => Val::S(s),
            };
            let diff = self.binop(Bin::Sub, x, old);
            let d = self.binop(Bin::Div, diff, dt);
            let x = self.second_order_step(x, d);
            self.env.insert(Key::Var(id), x);
        }
        self.scopes = vec![HashMap::new()];
        for s in &f.body {
            if !matches!(s.kind, StmtKind::Reaction { .. } | StmtKind::Flux { .. } | StmtKind::Conserve { .. }) {
                self.stmt(s)?;
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- entry points

    /// nrn_init: states from their START values (ion concentrations keep the ion's), then INITIAL.
    fn init_kernel(&mut self) -> Result<()> {
        for (id, v) in self.m.vars.iter().enumerate() {
            if v.kind == VarKind::State && v.ion.is_none() {
                let x = self.konst(v.default);
                self.env.insert(Key::Var(id), x);
            }
        }
        let body = self.m.initial.clone();
        self.block(&body)?;
        self.store_modified();
        Ok(())
    }

    /// nrn_cur: BREAKPOINT (without SOLVE) at v + 0.001, then at v; total current, its derivative,
    /// and per ion current derivative.
    fn current_kernel(&mut self) -> Result<()> {
        let vid = self.m.by_name["v"];
        let v = self.read_var(vid, Pos::default())?;
        let dv = self.konst(0.001);
        let vp = self.binop(Bin::Add, v, dv);
        let body = self.m.breakpoint.clone();
        self.env.insert(Key::Var(vid), vp);
        self.block(&body)?;
        let (i1, ions1) = self.sum_currents()?;
        self.env.insert(Key::Var(vid), v);
        self.block(&body)?;
        let (i0, ions0) = self.sum_currents()?;
        self.env.remove(&Key::Var(vid));
        let d = self.binop(Bin::Sub, i1, i0);
        let mut g = self.binop(Bin::Div, d, dv);
        let mut i = i0;
        if self.m.electrode_current {
            g = self.unop(Un::Neg, g);
            i = self.unop(Un::Neg, i);
        }
        let (fi, fg) = (self.layout.current.unwrap(), self.layout.conductance.unwrap());
        self.store_modified();
        for (v, f) in [(i, fi), (g, fg)] {
            let r = self.to_vreg(v);
            self.emit(Op::Store { field: f as u32, src: r as u16 });
        }
        for (k, &(_, f)) in self.layout.ion_didv.clone().iter().enumerate() {
            let d = self.binop(Bin::Sub, ions1[k], ions0[k]);
            let didv = self.binop(Bin::Div, d, dv);
            let r = self.to_vreg(didv);
            self.emit(Op::Store { field: f as u32, src: r as u16 });
        }
        Ok(())
    }

    /// Sum of the membrane currents and the values of each ion's written current.
    fn sum_currents(&mut self) -> Result<(Val, Vec<Val>)> {
        let mut total: Option<Val> = None;
        for &c in &self.m.currents {
            let x = self.read_var(c, Pos::default())?;
            total = Some(match total {
                None => x,
                Some(t) => self.binop(Bin::Add, t, x),
            });
        }
        let total = total.unwrap_or_else(|| self.konst(0.0));
        let mut ions = Vec::new();
        for &(k, _) in &self.layout.ion_didv {
            let mut s: Option<Val> = None;
            for w in &self.m.ions[k].write {
                if w.kind == IonVarKind::Current {
                    let x = self.read_var(w.var, Pos::default())?;
                    s = Some(match s {
                        None => x,
                        Some(t) => self.binop(Bin::Add, t, x),
                    });
                }
            }
            ions.push(s.unwrap_or_else(|| self.konst(0.0)));
        }
        Ok((total, ions))
    }

    /// nrn_state: the SOLVE statements in order; BREAKPOINT as well when there is no current.
    fn state_kernel(&mut self) -> Result<()> {
        if self.m.solves.iter().any(|s| matches!(s.method, Method::Derivimplicit | Method::Sparse | Method::Euler)) {
            let dt = self.input(Input::Dt);
            let half = self.konst(0.5);
            let halved = self.binop(Bin::Mul, dt, half);
            let so = self.input(Input::SecondOrder);
            self.dt_value = Some(self.select(so, halved, dt));
        }
        for s in self.m.solves.clone() {
            self.solve(&s)?;
            self.scopes = vec![HashMap::new()];
        }
        if self.m.currents.is_empty() && self.m.has_breakpoint {
            let body = self.m.breakpoint.clone();
            self.block(&body)?;
        }
        self.store_modified();
        Ok(())
    }

    /// NET_RECEIVE (or its INITIAL): arguments are the NetCon's weight vector, then `flag`.
    fn net_kernel(&mut self, body: &[Stmt]) -> Result<()> {
        let nr = self.m.net_receive.as_ref().unwrap();
        self.args = nr.args.clone();
        let mut arg_locals = Vec::new();
        for (k, a) in nr.args.iter().enumerate() {
            let v = self.arg_value(k);
            arg_locals.push((k, self.new_local(a, v), v));
        }
        self.block(body)?;
        for (k, id, v0) in arg_locals {
            let v = self.env[&Key::Local(id)];
            if v != v0 {
                let r = self.to_vreg(v);
                self.emit(Op::ArgStore { arg: k as u16, src: r as u16 });
            }
        }
        self.store_modified();
        Ok(())
    }

    fn store_modified(&mut self) {
        let mods: Vec<(Key, Val)> = self.env.iter().map(|(k, v)| (*k, *v)).collect();
        for (k, v) in mods {
            let Key::Var(id) = k else { continue };
            let f = match self.m.vars[id].storage {
                Storage::Field(f) | Storage::Shadow { field: f, .. } => f,
                _ => continue,
            };
            if self.entry.get(&f).map(|e| e.0) == Some(v) {
                continue;
            }
            let r = self.to_vreg(v);
            self.emit(Op::Store { field: f as u32, src: r as u16 });
        }
    }

    /// The kernel with virtual registers (`n_regs` counts them); [`allocate`] finishes it.
    fn finish_raw(self) -> Result<Kernel> {
        let ops = self.ops.into_iter().next().unwrap();
        if self.n_vregs > VREG_LIMIT {
            return Err(self.src.unsupported(Pos::default(), "mechanism too large for one kernel"));
        }
        let n_regs = self.n_vregs as usize;
        let mut inputs: Vec<(u32, Input)> = self.inputs.into_iter().map(|(i, k)| (k, i)).collect();
        inputs.sort_by_key(|x| x.0);
        Ok(Kernel {
            program: Program {
                sops: self.sops,
                ops,
                n_regs,
                scalars: self.scalars,
                max_system: self.max_system,
                native: Default::default(),
            },
            inputs,
        })
    }
}

/// Field names of a layout that a caller must fill before the kernels run (besides v).
pub fn gathered_ion_fields(m: &Model) -> HashSet<VarId> {
    let mut out = HashSet::new();
    for ion in &m.ions {
        for r in &ion.read {
            out.insert(r.var);
        }
        for w in &ion.write {
            if w.kind != IonVarKind::Current {
                out.insert(w.var);
            }
        }
    }
    out
}
