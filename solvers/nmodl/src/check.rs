//! Semantic checks: builds the [`Model`] from the syntax tree. Resolves every name (undeclared names
//! are errors with their position), checks ion usage, SOLVE methods, TABLE statements and where
//! each construct may appear, recognises VERBATIM blocks, and gives each variable NEURON's storage
//! class (RANGE per instance, GLOBAL shared, constants folded).

use std::collections::{HashMap, HashSet};

use crate::ast::*;
use crate::error::{Diagnostic, Error, Pos, Result, Source};
use crate::model::*;
use crate::units::UnitTable;
use crate::verbatim::{classify, first_line, Verbatim};

/// An ion variable the NEURON block names: (name, READ or WRITE, where).
type IonVarDecl = (String, IonVarKind, Pos);

/// Functions provided by NEURON's model library, with their argument count (`None`: any).
pub fn builtin_arity(name: &str) -> Option<Option<usize>> {
    Some(match name {
        "exp" | "log" | "log10" | "sqrt" | "fabs" | "sin" | "cos" | "tan" | "asin" | "acos" | "atan" | "sinh"
        | "cosh" | "tanh" | "floor" | "ceil" | "erf" | "erfc" | "exprand" | "factorial" | "set_seed" | "at_time"
        | "net_event" => Some(1),
        "pow" | "atan2" | "fmod" | "fmin" | "fmax" | "normrand" | "net_send" => Some(2),
        "scop_random" => Some(0),
        "nrn_ghk" => Some(4),
        "printf" => None,
        _ => return None,
    })
}

/// Builtins whose call has an effect beyond its value (not allowed in TABLE bodies or derivative
/// right-hand sides that are evaluated several times).
pub fn builtin_has_effect(name: &str) -> bool {
    matches!(name, "normrand" | "exprand" | "scop_random" | "set_seed" | "net_send" | "net_event")
}

fn ion_var_kind(ion: &str, name: &str) -> Option<IonVarKind> {
    if name == format!("e{ion}") {
        Some(IonVarKind::Reversal)
    } else if name == format!("{ion}i") {
        Some(IonVarKind::Inside)
    } else if name == format!("{ion}o") {
        Some(IonVarKind::Outside)
    } else if name == format!("i{ion}") {
        Some(IonVarKind::Current)
    } else {
        None
    }
}

/// Which kind of code a statement is in: decides what is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Initial,
    Breakpoint,
    Function,
    Procedure,
    Derivative,
    Kinetic,
    NetReceive,
    NetInitial,
}

struct Checker<'a> {
    src: &'a Source,
    units: UnitTable,
    vars: Vec<Var>,
    by_name: HashMap<String, VarId>,
    funcs: Vec<Func>,
    func_by_name: HashMap<String, usize>,
    verbatim: HashMap<Pos, Verbatim>,
    warnings: Vec<Diagnostic>,
    range: HashSet<String>,
    global: HashSet<String>,
    /// Local scopes while walking code.
    scopes: Vec<HashSet<String>>,
    /// Name of the FUNCTION whose body is being walked (its name is its result variable).
    in_function: Option<String>,
    ctx: Ctx,
    calls: HashMap<String, Vec<(String, Pos)>>,
    current_caller: Option<String>,
    has_net_receive: bool,
    /// Nesting depth of if/else around the statement being checked.
    in_branch: usize,
}

/// A USEION statement with its READ and WRITE variables classified.
type IonDecl = (UseIon, Vec<IonVarDecl>, Vec<IonVarDecl>);

/// What the NEURON block declares.
struct NeuronDecl {
    name: String,
    kind: MechKind,
    ions: Vec<IonDecl>,
    nonspecific: Vec<(String, Pos)>,
    /// Membrane currents in the order the NEURON block declares them.
    current_order: Vec<String>,
    electrode: bool,
    threadsafe: bool,
    /// BBCOREPOINTER names.
    opaque: Vec<(String, Pos)>,
}

/// The code blocks besides FUNCTION, PROCEDURE, DERIVATIVE and KINETIC.
struct Blocks {
    initial: Vec<Stmt>,
    breakpoint: Vec<Stmt>,
    has_breakpoint: bool,
    solves: Vec<SolveSpec>,
    net_receive: Option<NetReceive>,
}

pub fn check(module: &Module, file: &str, source: &Source) -> Result<Model> {
    let c = Checker {
        src: source,
        units: UnitTable::default(),
        vars: Vec::new(),
        by_name: HashMap::new(),
        funcs: Vec::new(),
        func_by_name: HashMap::new(),
        verbatim: HashMap::new(),
        warnings: Vec::new(),
        range: HashSet::new(),
        global: HashSet::new(),
        scopes: Vec::new(),
        in_function: None,
        ctx: Ctx::Initial,
        calls: HashMap::new(),
        current_caller: None,
        has_net_receive: module.items.iter().any(|i| matches!(i, Item::NetReceive(_))),
        in_branch: 0,
    };
    c.run(module, file)
}

impl<'a> Checker<'a> {
    fn warn(&mut self, pos: Pos, message: impl Into<String>) {
        self.warnings.push(Diagnostic { file: self.src.file.clone(), pos, message: message.into() });
    }

    fn declare(&mut self, name: &str, pos: Pos, kind: VarKind, default: f64, units: Option<String>) -> Result<VarId> {
        if let Some(&id) = self.by_name.get(name) {
            let old = self.vars[id].kind;
            // Special names may be declared anywhere (and more than once, as many files do).
            if let VarKind::Special(sp) = old {
                if default != 0.0 && sp == Special::Celsius {
                    self.warn(pos, "the value given to celsius is ignored: the simulation sets the temperature");
                }
                return Ok(id);
            }
            return Err(self.src.semantic(pos, format!("'{name}' is declared twice (first at {})", self.vars[id].pos)));
        }
        let kind = Special::from_name(name).map_or(kind, VarKind::Special);
        let id = self.vars.len();
        self.vars.push(Var {
            name: name.to_string(),
            pos,
            kind,
            range: false,
            global: false,
            default,
            units,
            ion: None,
            written: false,
            storage: Storage::Const(0.0),
        });
        self.by_name.insert(name.to_string(), id);
        Ok(id)
    }

    fn run(mut self, module: &Module, file: &str) -> Result<Model> {
        // Special names exist without declaration.
        for n in ["v", "t", "dt", "celsius", "area", "diam"] {
            self.declare(n, Pos::default(), VarKind::Assigned, 0.0, None)?;
        }
        let neuron = self.neuron_block(module, file)?;
        self.units_block(module)?;
        self.declarations(module)?;
        let ions = self.ion_uses(&neuron.ions)?;
        let currents = self.currents(&neuron)?;
        self.range_and_global(module)?;
        self.functions(module)?;
        let blocks = self.blocks(module, neuron.kind)?;
        // Procedures whose body is a recognised VERBATIM use become built-ins.
        for f in 0..self.funcs.len() {
            let builtin = self.builtin_body(f)?;
            self.funcs[f].builtin = builtin;
        }
        self.walk_code(&blocks)?;
        self.check_recursion()?;
        let (n_fields, n_globals) = self.storage();
        self.check_outputs(neuron.kind, &currents, &ions)?;
        Ok(Model {
            file: file.to_string(),
            name: neuron.name,
            kind: neuron.kind,
            electrode_current: neuron.electrode,
            threadsafe: neuron.threadsafe,
            vars: self.vars,
            by_name: self.by_name,
            ions,
            currents,
            funcs: self.funcs,
            func_by_name: self.func_by_name,
            initial: blocks.initial,
            solves: blocks.solves,
            breakpoint: blocks.breakpoint,
            has_breakpoint: blocks.has_breakpoint,
            net_receive: blocks.net_receive,
            verbatim: self.verbatim,
            n_fields,
            n_globals,
            warnings: self.warnings,
        })
    }

    /// The NEURON block: the mechanism's name and kind, ions, currents, RANGE and GLOBAL names.
    fn neuron_block(&mut self, module: &Module, file: &str) -> Result<NeuronDecl> {
        let mut name: Option<(String, MechKind, Pos)> = None;
        let mut ions: Vec<IonDecl> = Vec::new();
        let mut nonspecific: Vec<(String, Pos)> = Vec::new();
        // Membrane currents in the order the NEURON block declares them.
        let mut current_order: Vec<String> = Vec::new();
        let mut electrode = false;
        let mut threadsafe = false;
        let mut opaque: Vec<(String, Pos)> = Vec::new();
        let neuron_blocks = module.items.iter().filter(|i| matches!(i, Item::Neuron(..))).count();
        if neuron_blocks > 1 {
            let pos = module
                .items
                .iter()
                .filter_map(|i| if let Item::Neuron(_, p) = i { Some(*p) } else { None })
                .nth(1)
                .unwrap_or_default();
            return Err(self.src.semantic(pos, "more than one NEURON block"));
        }
        for item in &module.items {
            let Item::Neuron(stmts, _) = item else { continue };
            for s in stmts {
                let set_name = |n: &String, k: MechKind, p: Pos, name: &mut Option<(String, MechKind, Pos)>| {
                    if let Some((_, _, first)) = name {
                        return Err(self.src.semantic(
                            p,
                            format!("a mechanism has one SUFFIX, POINT_PROCESS or ARTIFICIAL_CELL (first at {first})"),
                        ));
                    }
                    *name = Some((n.clone(), k, p));
                    Ok(())
                };
                match s {
                    NeuronStmt::Suffix(n, p) => set_name(n, MechKind::Density, *p, &mut name)?,
                    NeuronStmt::PointProcess(n, p) => set_name(n, MechKind::Point, *p, &mut name)?,
                    NeuronStmt::ArtificialCell(n, p) => set_name(n, MechKind::Artificial, *p, &mut name)?,
                    NeuronStmt::UseIon(u) => {
                        if ions.iter().any(|(o, ..)| o.ion == u.ion) {
                            return Err(self.src.semantic(u.pos, format!("ion '{}' used twice in USEION", u.ion)));
                        }
                        let classify_list = |list: &[(String, Pos)],
                                             write: bool|
                         -> Result<Vec<(String, IonVarKind, Pos)>> {
                            list.iter()
                                .map(|(n, p)| match ion_var_kind(&u.ion, n) {
                                    Some(k) => Ok((n.clone(), k, *p)),
                                    None => Err(self.src.semantic(
                                        *p,
                                        format!(
                                            "'{n}' is not a variable of ion {ion}: {} may be e{ion}, {ion}i, {ion}o or i{ion}",
                                            if write { "WRITE" } else { "READ" },
                                            ion = u.ion
                                        ),
                                    )),
                                })
                                .collect()
                        };
                        let r = classify_list(&u.read, false)?;
                        let w = classify_list(&u.write, true)?;
                        current_order.extend(w.iter().filter(|x| x.1 == IonVarKind::Current).map(|x| x.0.clone()));
                        ions.push((u.clone(), r, w));
                    }
                    NeuronStmt::NonspecificCurrent(l) => {
                        current_order.extend(l.iter().map(|x| x.0.clone()));
                        nonspecific.extend(l.iter().cloned())
                    }
                    NeuronStmt::ElectrodeCurrent(l) => {
                        electrode = true;
                        current_order.extend(l.iter().map(|x| x.0.clone()));
                        nonspecific.extend(l.iter().cloned())
                    }
                    NeuronStmt::Range(l) => self.range.extend(l.iter().map(|x| x.0.clone())),
                    NeuronStmt::Global(l) => self.global.extend(l.iter().map(|x| x.0.clone())),
                    NeuronStmt::Pointer(l) => {
                        return Err(self
                            .src
                            .unsupported(l[0].1, "POINTER variables are not supported by miv's NMODL compiler"))
                    }
                    NeuronStmt::BbcorePointer(l) => opaque.extend(l.iter().cloned()),
                    NeuronStmt::External(l) => {
                        return Err(self
                            .src
                            .unsupported(l[0].1, "EXTERNAL variables are not supported by miv's NMODL compiler"))
                    }
                    NeuronStmt::ThreadSafe => threadsafe = true,
                }
            }
        }
        let (mech_name, kind) = match name {
            Some((n, k, _)) => (n, k),
            None => {
                // nocmodl names a mechanism without SUFFIX after its file.
                let stem = std::path::Path::new(file).file_stem().and_then(|s| s.to_str()).unwrap_or("unnamed");
                (stem.to_string(), MechKind::Density)
            }
        };
        if electrode && kind != MechKind::Point {
            self.warn(Pos::default(), "ELECTRODE_CURRENT in a density mechanism");
        }
        Ok(NeuronDecl { name: mech_name, kind, ions, nonspecific, current_order, electrode, threadsafe, opaque })
    }

    /// UNITS: named constants evaluated with the units library.
    fn units_block(&mut self, module: &Module) -> Result<()> {
        for item in &module.items {
            if let Item::Units(defs) = item {
                for d in defs {
                    match d {
                        UnitsDef::Alias { name, def } => self.units.define(name, def),
                        UnitsDef::Value { name, pos, value } => {
                            self.declare(name, *pos, VarKind::Constant, *value, None)?;
                        }
                        UnitsDef::Factor { name, pos, from, to } => {
                            let Some(f) = self.units.factor(from, to) else {
                                return Err(self.src.unsupported(
                                    *pos,
                                    format!("cannot evaluate the units constant ({from}) in ({to}): unknown unit or different dimensions"),
                                ));
                            };
                            self.declare(name, *pos, VarKind::Constant, f, None)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// PARAMETER, ASSIGNED, STATE, CONSTANT and file-level LOCAL declarations.
    fn declarations(&mut self, module: &Module) -> Result<()> {
        for item in &module.items {
            let (decls, kind) = match item {
                Item::Parameter(d) => (d, VarKind::Parameter),
                Item::Assigned(d) => (d, VarKind::Assigned),
                Item::State(d) => (d, VarKind::State),
                Item::Constant(d) => (d, VarKind::Constant),
                Item::Local(l) => {
                    for (n, p) in l {
                        self.declare(n, *p, VarKind::FileLocal, 0.0, None)?;
                    }
                    continue;
                }
                _ => continue,
            };
            for d in decls {
                let default = if kind == VarKind::State { d.start.unwrap_or(0.0) } else { d.value.unwrap_or(0.0) };
                if kind == VarKind::Constant && d.value.is_none() {
                    return Err(self.src.semantic(d.pos, format!("CONSTANT '{}' needs a value", d.name)));
                }
                self.declare(&d.name, d.pos, kind, default, d.units.clone())?;
            }
        }
        Ok(())
    }

    /// The USEION statements' variables, declared when a file forgets to (they exist all the same).
    fn ion_uses(&mut self, ions: &[IonDecl]) -> Result<Vec<IonUse>> {
        let mut ion_uses = Vec::new();
        for (k, (u, r, w)) in ions.iter().enumerate() {
            let mut read = Vec::new();
            let mut write = Vec::new();
            for (list, out) in [(r, &mut read), (w, &mut write)] {
                for (n, kind, p) in list {
                    let id = match self.by_name.get(n) {
                        Some(&id) => id,
                        None => self.declare(n, *p, VarKind::Assigned, 0.0, None)?,
                    };
                    self.vars[id].ion = Some((k, *kind));
                    out.push(IonVar { name: n.clone(), kind: *kind, var: id });
                }
            }
            ion_uses.push(IonUse { ion: u.ion.clone(), valence: u.valence, read, write });
        }
        Ok(ion_uses)
    }

    /// The membrane currents in declaration order (declared when a file forgets to), and the
    /// BBCOREPOINTER names as opaque variables.
    fn currents(&mut self, neuron: &NeuronDecl) -> Result<Vec<VarId>> {
        for (n, p) in &neuron.nonspecific {
            if !self.by_name.contains_key(n) {
                self.declare(n, *p, VarKind::Assigned, 0.0, None)?;
            }
        }
        let mut currents: Vec<VarId> = Vec::new();
        for n in &neuron.current_order {
            let id = self.by_name[n];
            if !currents.contains(&id) {
                currents.push(id);
            }
        }
        for (n, p) in &neuron.opaque {
            if !self.by_name.contains_key(n) {
                self.declare(n, *p, VarKind::Assigned, 0.0, None)?;
            }
        }
        Ok(currents)
    }

    /// RANGE and GLOBAL: every name declared, flags set, no GLOBAL STATE.
    fn range_and_global(&mut self, module: &Module) -> Result<()> {
        for n in self.range.clone().iter().chain(self.global.clone().iter()) {
            if !self.by_name.contains_key(n) {
                let pos = module_pos_of_name(module, n);
                return Err(self.src.semantic(pos, format!("'{n}' is named in RANGE/GLOBAL but never declared")));
            }
        }
        for v in self.vars.iter_mut() {
            v.range = self.range.contains(&v.name);
            v.global = self.global.contains(&v.name);
            if v.kind == VarKind::State && v.global {
                return Err(self.src.semantic(v.pos, format!("STATE '{}' cannot be GLOBAL", v.name)));
            }
        }
        Ok(())
    }

    /// FUNCTION, PROCEDURE, DERIVATIVE and KINETIC blocks, by name.
    fn functions(&mut self, module: &Module) -> Result<()> {
        for item in &module.items {
            let (p, kind) = match item {
                Item::Function(p) => (p, FuncKind::Function),
                Item::Procedure(p) => (p, FuncKind::Procedure),
                Item::Derivative(p) => (p, FuncKind::Derivative),
                Item::Kinetic(p) => (p, FuncKind::Kinetic),
                _ => continue,
            };
            if let Some(&old) = self.func_by_name.get(&p.name) {
                return Err(self
                    .src
                    .semantic(p.pos, format!("'{}' is defined twice (first at {})", p.name, self.funcs[old].pos)));
            }
            if let Some(&v) = self.by_name.get(&p.name) {
                if !matches!(self.vars[v].kind, VarKind::Special(_)) || self.vars[v].pos != Pos::default() {
                    return Err(self.src.semantic(
                        p.pos,
                        format!("'{}' names both a variable (at {}) and a block", p.name, self.vars[v].pos),
                    ));
                }
            }
            self.func_by_name.insert(p.name.clone(), self.funcs.len());
            self.funcs.push(Func {
                name: p.name.clone(),
                pos: p.pos,
                kind,
                args: p.args.iter().map(|a| a.0.clone()).collect(),
                body: p.body.clone(),
                table: None,
                builtin: None,
            });
        }
        Ok(())
    }

    /// INITIAL, BREAKPOINT (its SOLVE statements apart), NET_RECEIVE, file-level VERBATIM, DESTRUCTOR.
    fn blocks(&mut self, module: &Module, kind: MechKind) -> Result<Blocks> {
        let mut initial = Vec::new();
        let mut seen_initial = false;
        let mut breakpoint = Vec::new();
        let mut has_breakpoint = false;
        let mut solves = Vec::new();
        let mut net_receive = None;
        for item in &module.items {
            match item {
                Item::Initial(b, pos) => {
                    if seen_initial {
                        return Err(self.src.semantic(*pos, "more than one INITIAL block"));
                    }
                    seen_initial = true;
                    initial = b.clone();
                }
                Item::Breakpoint(b, pos) => {
                    if has_breakpoint {
                        return Err(self.src.semantic(*pos, "more than one BREAKPOINT block"));
                    }
                    has_breakpoint = true;
                    for s in b {
                        if let StmtKind::Solve { block, method, steadystate } = &s.kind {
                            if steadystate.is_some() {
                                return Err(self.src.semantic(s.pos, "STEADYSTATE belongs in INITIAL, not BREAKPOINT"));
                            }
                            solves.push(self.solve_spec(block, method.as_deref(), s.pos)?);
                        } else {
                            breakpoint.push(s.clone());
                        }
                    }
                }
                Item::NetReceive(p) => {
                    if net_receive.is_some() {
                        return Err(self.src.semantic(p.pos, "more than one NET_RECEIVE block"));
                    }
                    if kind == MechKind::Density {
                        return Err(self.src.semantic(p.pos, "NET_RECEIVE needs a POINT_PROCESS or ARTIFICIAL_CELL"));
                    }
                    let mut body = Vec::new();
                    let mut init = None;
                    for s in &p.body {
                        if let StmtKind::NetInitial(b) = &s.kind {
                            if init.is_some() {
                                return Err(self.src.semantic(s.pos, "NET_RECEIVE can contain only one INITIAL block"));
                            }
                            init = Some(b.clone());
                        } else {
                            body.push(s.clone());
                        }
                    }
                    net_receive = Some(NetReceive {
                        pos: p.pos,
                        args: p.args.iter().map(|a| a.0.clone()).collect(),
                        body,
                        initial: init,
                    });
                }
                Item::Verbatim(text, pos) => match classify(text) {
                    Some(Verbatim::Nothing | Verbatim::RandomSetup | Verbatim::CoreNeuronSerialization) => {}
                    _ => return Err(self.unknown_verbatim(text, *pos, "at file level")),
                },
                Item::Destructor(b, pos) => {
                    for s in b {
                        match &s.kind {
                            StmtKind::Verbatim(t) => match classify(t) {
                                Some(Verbatim::VectorRelease | Verbatim::Nothing | Verbatim::Printf) => {}
                                _ => return Err(self.unknown_verbatim(t, s.pos, "in DESTRUCTOR")),
                            },
                            _ => {
                                return Err(self.src.unsupported(
                                    *pos,
                                    "DESTRUCTOR blocks with NMODL statements are not supported by miv's NMODL compiler",
                                ))
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(Blocks { initial, breakpoint, has_breakpoint, solves, net_receive })
    }

    /// Every statement of every block checked in its context; states a SOLVE integrates marked
    /// as written.
    fn walk_code(&mut self, blocks: &Blocks) -> Result<()> {
        let kindctx = |k: FuncKind| match k {
            FuncKind::Function => Ctx::Function,
            FuncKind::Procedure => Ctx::Procedure,
            FuncKind::Derivative => Ctx::Derivative,
            FuncKind::Kinetic => Ctx::Kinetic,
        };
        for f in 0..self.funcs.len() {
            if self.funcs[f].builtin.is_some() {
                continue;
            }
            let func = self.funcs[f].clone();
            self.ctx = kindctx(func.kind);
            self.current_caller = Some(func.name.clone());
            self.in_function = (func.kind == FuncKind::Function).then(|| func.name.clone());
            self.scopes = vec![func.args.iter().cloned().collect()];
            let table = self.walk_block(&func.body, true)?;
            if let Some(t) = table {
                self.funcs[f].table = Some(self.table_spec(&func, t)?);
            }
        }
        self.in_function = None;
        for (body, ctx, caller) in
            [(&blocks.initial, Ctx::Initial, "INITIAL"), (&blocks.breakpoint, Ctx::Breakpoint, "BREAKPOINT")]
        {
            self.ctx = ctx;
            self.current_caller = Some(caller.into());
            self.scopes = vec![HashSet::new()];
            self.walk_block(body, false)?;
        }
        if let Some(nr) = &blocks.net_receive {
            self.ctx = Ctx::NetReceive;
            self.current_caller = Some("NET_RECEIVE".into());
            let mut scope: HashSet<String> = nr.args.iter().cloned().collect();
            scope.insert("flag".into());
            self.scopes = vec![scope.clone()];
            self.walk_block(&nr.body, false)?;
            if let Some(b) = &nr.initial {
                self.ctx = Ctx::NetInitial;
                self.scopes = vec![scope];
                self.walk_block(b, false)?;
            }
        }
        for s in &blocks.solves {
            let f = &self.funcs[self.func_by_name[&s.func]];
            if matches!(f.kind, FuncKind::Derivative | FuncKind::Kinetic) {
                let states: Vec<String> = derivative_targets(&f.body);
                for st in states {
                    if let Some(&id) = self.by_name.get(&st) {
                        self.vars[id].written = true;
                    }
                }
            }
        }
        Ok(())
    }

    /// NEURON's storage class of each variable: (number of instance fields, number of globals).
    fn storage(&mut self) -> (usize, usize) {
        let mut n_fields = 0;
        let mut n_globals = 0;
        for v in &mut self.vars {
            v.storage = match v.kind {
                VarKind::Special(s) => Storage::Special(s),
                VarKind::Constant => Storage::Const(v.default),
                _ if v.ion.is_some() => {
                    n_fields += 1;
                    Storage::Field(n_fields - 1)
                }
                VarKind::State => {
                    n_fields += 1;
                    Storage::Field(n_fields - 1)
                }
                VarKind::Parameter if v.range => {
                    n_fields += 1;
                    Storage::Field(n_fields - 1)
                }
                VarKind::Assigned if !v.global => {
                    n_fields += 1;
                    Storage::Field(n_fields - 1)
                }
                VarKind::Parameter | VarKind::Assigned | VarKind::FileLocal => {
                    n_globals += 1;
                    if v.written {
                        n_fields += 1;
                        Storage::Shadow { field: n_fields - 1, global: n_globals - 1 }
                    } else {
                        Storage::Global(n_globals - 1)
                    }
                }
            };
        }
        (n_fields, n_globals)
    }

    fn check_outputs(&self, kind: MechKind, currents: &[VarId], ion_uses: &[IonUse]) -> Result<()> {
        for &c in currents {
            let v = &self.vars[c];
            if !matches!(v.storage, Storage::Field(_)) {
                return Err(self.src.semantic(v.pos, format!("current '{}' must be an ASSIGNED variable", v.name)));
            }
        }
        if kind == MechKind::Artificial && (!currents.is_empty() || !ion_uses.is_empty()) {
            return Err(self.src.semantic(Pos::default(), "an ARTIFICIAL_CELL cannot have currents or ions"));
        }
        Ok(())
    }

    fn unknown_verbatim(&self, text: &str, pos: Pos, place: &str) -> Error {
        self.src.unsupported(
            pos,
            format!(
                "VERBATIM {place} is C code that miv cannot run and is not one of the recognised uses \
                 (#include, VecStim vector access, Gfluct random stream, ion read); it starts with: {}",
                first_line(text)
            ),
        )
    }

    fn solve_spec(&self, block: &str, method: Option<&str>, pos: Pos) -> Result<SolveSpec> {
        let Some(&f) = self.func_by_name.get(block) else {
            return Err(self.src.semantic(pos, format!("SOLVE of '{block}', which is not defined")));
        };
        let kind = self.funcs[f].kind;
        let method = match (kind, method) {
            (FuncKind::Derivative, Some("cnexp")) => Method::Cnexp,
            (FuncKind::Derivative, Some("derivimplicit")) => Method::Derivimplicit,
            (FuncKind::Derivative, Some("euler")) => Method::Euler,
            (FuncKind::Kinetic, Some("sparse")) => Method::Sparse,
            (FuncKind::Kinetic, Some(m @ ("derivimplicit" | "euler" | "cnexp"))) => {
                return Err(self.src.unsupported(
                    pos,
                    format!("KINETIC blocks are solved with METHOD sparse; METHOD {m} on a KINETIC block is not supported by miv's NMODL compiler"),
                ))
            }
            (FuncKind::Procedure, None) => Method::Procedure,
            (FuncKind::Procedure, Some(m)) => {
                return Err(self.src.semantic(pos, format!("METHOD {m} cannot solve the PROCEDURE '{block}'")))
            }
            (FuncKind::Function, _) => return Err(self.src.semantic(pos, format!("cannot SOLVE the FUNCTION '{block}'"))),
            (_, None) => {
                return Err(self.src.semantic(pos, format!("SOLVE {block} needs a METHOD (cnexp, derivimplicit, sparse)")))
            }
            (_, Some(m @ ("runge" | "adams" | "gear" | "adeuler" | "heun" | "seidel" | "simeq" | "newton" | "clsoda"
            | "after_cvode" | "cvode_t" | "cvode_t_v" | "_advance"))) => {
                return Err(self.src.unsupported(pos, format!("METHOD {m} is not supported by miv's NMODL compiler")))
            }
            (_, Some(m)) => {
                return Err(self.src.semantic(pos, format!("METHOD {m} does not apply to '{block}'")))
            }
        };
        Ok(SolveSpec { pos, func: block.to_string(), method })
    }

    /// Procedures made only of recognised VERBATIM uses that replace the whole body.
    fn builtin_body(&mut self, f: usize) -> Result<Option<BuiltinProc>> {
        let func = &self.funcs[f];
        let verbatims: Vec<(Verbatim, Pos)> = func
            .body
            .iter()
            .filter_map(|s| match &s.kind {
                StmtKind::Verbatim(t) => classify(t).map(|v| (v, s.pos)),
                _ => None,
            })
            .collect();
        let whole = |v: &Verbatim| verbatims.iter().any(|(x, _)| x == v);
        let only_verbatim = func.body.iter().all(|s| matches!(s.kind, StmtKind::Verbatim(_)));
        if whole(&Verbatim::VectorElement) {
            if !only_verbatim || func.kind != FuncKind::Procedure {
                return Err(self
                    .src
                    .unsupported(func.pos, "VecStim element() must be a PROCEDURE made only of its VERBATIM block"));
            }
            for n in ["index", "etime"] {
                if !self.by_name.contains_key(n) {
                    return Err(self.src.semantic(
                        func.pos,
                        format!("VecStim element() needs the variable '{n}' (declare it in ASSIGNED)"),
                    ));
                }
                let id = self.by_name[n];
                self.vars[id].written = true;
            }
            return Ok(Some(BuiltinProc::VectorElement));
        }
        if whole(&Verbatim::VectorPlay) || whole(&Verbatim::RandomBind) {
            if func.kind != FuncKind::Procedure {
                return Err(self.src.unsupported(func.pos, "stream or vector binding VERBATIM outside a PROCEDURE"));
            }
            return Ok(Some(BuiltinProc::ApiOnly));
        }
        Ok(None)
    }

    fn table_spec(
        &mut self,
        func: &Func,
        t: (Pos, Vec<(String, Pos)>, Vec<(String, Pos)>, Expr, Expr, u32),
    ) -> Result<TableSpec> {
        let (pos, names, depend, from, to, intervals) = t;
        if func.args.len() != 1 {
            return Err(self
                .src
                .semantic(pos, format!("'{}' has a TABLE, so it must have exactly one argument", func.name)));
        }
        let mut name_ids = Vec::new();
        match func.kind {
            FuncKind::Function => {
                if !names.is_empty() {
                    return Err(self.src.semantic(pos, "TABLE in a FUNCTION cannot have a list of names"));
                }
            }
            FuncKind::Procedure => {
                if names.is_empty() {
                    return Err(self
                        .src
                        .semantic(pos, "TABLE in a PROCEDURE needs the names of the variables it tabulates"));
                }
                for (n, p) in &names {
                    let Some(&id) = self.by_name.get(n) else {
                        return Err(self.src.semantic(*p, format!("undeclared name '{n}' in TABLE")));
                    };
                    if !matches!(self.vars[id].kind, VarKind::Assigned | VarKind::Parameter | VarKind::FileLocal) {
                        return Err(self
                            .src
                            .semantic(*p, format!("TABLE cannot fill '{n}': only ASSIGNED or PARAMETER variables")));
                    }
                    self.vars[id].written = true;
                    name_ids.push(id);
                }
            }
            _ => return Err(self.src.semantic(pos, "TABLE only in FUNCTION or PROCEDURE")),
        }
        let mut dep_ids = Vec::new();
        for (n, p) in &depend {
            let Some(&id) = self.by_name.get(n) else {
                return Err(self.src.semantic(*p, format!("undeclared name '{n}' in DEPEND")));
            };
            let v = &self.vars[id];
            let ok = matches!(v.kind, VarKind::Special(Special::Dt | Special::Celsius | Special::T))
                || (matches!(v.kind, VarKind::Parameter | VarKind::Assigned | VarKind::FileLocal)
                    && !v.range
                    && v.ion.is_none()
                    && (v.kind != VarKind::Assigned || v.global));
            if !ok {
                return Err(self.src.unsupported(
                    *p,
                    format!("TABLE DEPEND on '{n}', which is not a GLOBAL, dt or celsius (a per-instance value cannot select one shared table)"),
                ));
            }
            dep_ids.push(id);
        }
        Ok(TableSpec { pos, names: name_ids, depend: dep_ids, from, to, intervals })
    }

    fn check_recursion(&self) -> Result<()> {
        fn visit(c: &Checker, f: &str, stack: &mut Vec<String>, done: &mut HashSet<String>) -> Result<()> {
            if done.contains(f) {
                return Ok(());
            }
            if let Some(i) = stack.iter().position(|s| s == f) {
                let pos = c.funcs[c.func_by_name[f]].pos;
                return Err(c.src.unsupported(
                    pos,
                    format!("recursion ({} -> {f}) is not supported by miv's NMODL compiler", stack[i..].join(" -> ")),
                ));
            }
            stack.push(f.to_string());
            for (g, _) in c.calls.get(f).map(|v| v.as_slice()).unwrap_or(&[]) {
                visit(c, g, stack, done)?;
            }
            stack.pop();
            done.insert(f.to_string());
            Ok(())
        }
        let mut done = HashSet::new();
        let mut names: Vec<&String> = self.calls.keys().collect();
        names.sort();
        for f in names {
            visit(self, f, &mut Vec::new(), &mut done)?;
        }
        Ok(())
    }

    fn is_local(&self, n: &str) -> bool {
        self.scopes.iter().any(|s| s.contains(n))
    }

    fn check_read(&mut self, n: &str, pos: Pos) -> Result<()> {
        if self.is_local(n) || self.in_function.as_deref() == Some(n) {
            return Ok(());
        }
        if n == "flag" && matches!(self.ctx, Ctx::NetReceive) {
            return Ok(());
        }
        if self.by_name.contains_key(n) {
            return Ok(());
        }
        if matches!(n, "PI" | "E") {
            return Ok(());
        }
        if self.func_by_name.contains_key(n) {
            return Err(self.src.semantic(pos, format!("'{n}' is a block, not a variable (call it as {n}(...))")));
        }
        Err(self.src.semantic(pos, format!("undeclared name '{n}'")))
    }

    fn check_write(&mut self, n: &str, pos: Pos) -> Result<()> {
        if self.is_local(n) || self.in_function.as_deref() == Some(n) {
            return Ok(());
        }
        let Some(&id) = self.by_name.get(n) else {
            if self.func_by_name.contains_key(n) {
                return Err(self.src.semantic(pos, format!("cannot assign to '{n}' outside its own FUNCTION")));
            }
            return Err(self.src.semantic(pos, format!("assignment to undeclared name '{n}'")));
        };
        match self.vars[id].kind {
            VarKind::Constant => Err(self.src.semantic(pos, format!("cannot assign to the constant '{n}'"))),
            VarKind::Special(Special::V) if self.ctx == Ctx::NetReceive => {
                Err(self.src.unsupported(pos, "assigning v in NET_RECEIVE is not supported by miv's NMODL compiler"))
            }
            VarKind::Special(_) => {
                Err(self.src.semantic(pos, format!("cannot assign to '{n}': the simulator sets it")))
            }
            _ => {
                self.vars[id].written = true;
                Ok(())
            }
        }
    }

    fn walk_expr(&mut self, e: &Expr) -> Result<()> {
        match e {
            Expr::Num(_) => Ok(()),
            Expr::Str(_) => {
                Err(self.src.semantic(Pos::default(), "a string is only allowed as printf's first argument"))
            }
            Expr::Var(n, p) => self.check_read(n, *p),
            Expr::Neg(a) | Expr::Not(a) => self.walk_expr(a),
            Expr::Bin(_, a, b) => {
                self.walk_expr(a)?;
                self.walk_expr(b)
            }
            Expr::Call(n, args, p) => {
                if n == "printf" {
                    for a in args.iter().skip(1) {
                        self.walk_expr(a)?;
                    }
                    return Ok(());
                }
                for a in args {
                    self.walk_expr(a)?;
                }
                if let Some(&f) = self.func_by_name.get(n) {
                    let func = &self.funcs[f];
                    if matches!(func.kind, FuncKind::Derivative | FuncKind::Kinetic) {
                        return Err(self.src.semantic(
                            *p,
                            format!(
                                "'{n}' is a {} block; use it with SOLVE",
                                if func.kind == FuncKind::Kinetic { "KINETIC" } else { "DERIVATIVE" }
                            ),
                        ));
                    }
                    if func.builtin != Some(BuiltinProc::ApiOnly) && func.args.len() != args.len() {
                        return Err(self.src.semantic(
                            *p,
                            format!("'{n}' takes {} argument(s), {} given", func.args.len(), args.len()),
                        ));
                    }
                    if let Some(caller) = &self.current_caller {
                        self.calls.entry(caller.clone()).or_default().push((n.clone(), *p));
                    }
                    return Ok(());
                }
                match builtin_arity(n) {
                    Some(Some(k)) if k != args.len() => {
                        Err(self.src.semantic(*p, format!("'{n}' takes {k} argument(s), {} given", args.len())))
                    }
                    Some(_) => match n.as_str() {
                        "net_send" if !matches!(self.ctx, Ctx::NetReceive | Ctx::Initial) => {
                            Err(self.src.semantic(*p, "net_send is only allowed directly in NET_RECEIVE or INITIAL"))
                        }
                        "net_send" if self.ctx == Ctx::Initial && !self.has_net_receive => {
                            Err(self.src.semantic(*p, "net_send needs a NET_RECEIVE block"))
                        }
                        "net_event" if self.ctx != Ctx::NetReceive => {
                            Err(self.src.semantic(*p, "net_event is only allowed directly in NET_RECEIVE"))
                        }
                        _ => Ok(()),
                    },
                    None => {
                        if n == "net_move" {
                            return Err(self.src.unsupported(*p, "net_move is not supported by miv's NMODL compiler"));
                        }
                        Err(self.src.semantic(*p, format!("call of undefined function '{n}'")))
                    }
                }
            }
        }
    }

    /// Walk a block; returns the TABLE statement found at its top level (FUNCTION/PROCEDURE only).
    #[allow(clippy::type_complexity)]
    fn walk_block(
        &mut self,
        stmts: &[Stmt],
        top: bool,
    ) -> Result<Option<(Pos, Vec<(String, Pos)>, Vec<(String, Pos)>, Expr, Expr, u32)>> {
        let mut table = None;
        self.scopes.push(HashSet::new());
        for s in stmts {
            match &s.kind {
                StmtKind::Local(names) => {
                    for (n, _) in names {
                        self.scopes.last_mut().unwrap().insert(n.clone());
                    }
                }
                StmtKind::Assign { name, value } => {
                    self.walk_expr(value)?;
                    self.check_write(name, s.pos)?;
                }
                StmtKind::Derivative { state, order, value } => {
                    if self.ctx != Ctx::Derivative {
                        return Err(self
                            .src
                            .semantic(s.pos, format!("{state}' = ... is only allowed in a DERIVATIVE block")));
                    }
                    if *order != 1 {
                        return Err(self
                            .src
                            .unsupported(s.pos, "higher-order derivatives are not supported by miv's NMODL compiler"));
                    }
                    if self.in_branch > 0 {
                        return Err(self.src.unsupported(
                            s.pos,
                            "derivative equations inside if/else are not supported by miv's NMODL compiler",
                        ));
                    }
                    match self.by_name.get(state) {
                        Some(&id) if self.vars[id].kind == VarKind::State => {}
                        _ => return Err(self.src.semantic(s.pos, format!("'{state}' in {state}' is not a STATE"))),
                    }
                    self.walk_expr(value)?;
                }
                StmtKind::Call(e) => self.walk_expr(e)?,
                StmtKind::If { cond, then, els } => {
                    self.walk_expr(cond)?;
                    self.in_branch += 1;
                    self.walk_block(then, false)?;
                    if let Some(e) = els {
                        self.walk_block(e, false)?;
                    }
                    self.in_branch -= 1;
                }
                StmtKind::Block(b) => {
                    self.walk_block(b, false)?;
                }
                StmtKind::Solve { steadystate, .. } => {
                    if self.ctx == Ctx::Initial && steadystate.is_some() {
                        return Err(self.src.unsupported(
                            s.pos,
                            "SOLVE ... STEADYSTATE in INITIAL is not supported by miv's NMODL compiler",
                        ));
                    }
                    return Err(self.src.semantic(s.pos, "SOLVE is only allowed at the top of BREAKPOINT"));
                }
                StmtKind::Table { names, depend, from, to, with } => {
                    if !top || !matches!(self.ctx, Ctx::Function | Ctx::Procedure) {
                        return Err(self
                            .src
                            .semantic(s.pos, "TABLE is only allowed in the body of a FUNCTION or PROCEDURE"));
                    }
                    if table.is_some() {
                        return Err(self.src.semantic(s.pos, "only one TABLE per FUNCTION or PROCEDURE"));
                    }
                    // FROM/TO are evaluated with no instance: only constants and globals.
                    for e in [from, to] {
                        self.walk_expr(e)?;
                    }
                    table = Some((s.pos, names.clone(), depend.clone(), from.clone(), to.clone(), *with));
                }
                StmtKind::Reaction { lhs, rhs, kf, kb } => {
                    self.kinetic_only(s.pos, "~ reactions")?;
                    if self.in_branch > 0 {
                        return Err(self
                            .src
                            .unsupported(s.pos, "reactions inside if/else are not supported by miv's NMODL compiler"));
                    }
                    for r in lhs.iter().chain(rhs) {
                        self.check_read(&r.name, r.pos)?;
                    }
                    if !lhs.iter().chain(rhs).any(|r| self.is_state(&r.name)) {
                        return Err(self.src.semantic(s.pos, "a reaction needs at least one STATE"));
                    }
                    self.walk_expr(kf)?;
                    self.walk_expr(kb)?;
                }
                StmtKind::Flux { state, flux } => {
                    self.kinetic_only(s.pos, "~ fluxes")?;
                    if !self.is_state(&state.name) {
                        return Err(self
                            .src
                            .semantic(state.pos, format!("'{}' must be a STATE to receive a flux", state.name)));
                    }
                    self.walk_expr(flux)?;
                }
                StmtKind::Conserve { terms, value } => {
                    self.kinetic_only(s.pos, "CONSERVE")?;
                    for r in terms {
                        if !self.is_state(&r.name) {
                            return Err(self
                                .src
                                .semantic(r.pos, format!("only STATE variables in CONSERVE; '{}' is not", r.name)));
                        }
                    }
                    self.walk_expr(value)?;
                }
                StmtKind::Verbatim(text) => {
                    let v = classify(text);
                    let ok = match &v {
                        Some(Verbatim::Nothing | Verbatim::Printf) => true,
                        Some(Verbatim::IonRead(n)) => {
                            let id = self.by_name.get(n).copied();
                            let is_ion_read = id.is_some_and(|id| self.vars[id].ion.is_some());
                            if !is_ion_read {
                                return Err(self.src.semantic(
                                    s.pos,
                                    format!(
                                        "VERBATIM reads _ion_{n}, but '{n}' is not an ion variable of this mechanism"
                                    ),
                                ));
                            }
                            self.vars[id.unwrap()].written = true;
                            true
                        }
                        Some(Verbatim::RandomRestart) => self.ctx == Ctx::Initial,
                        Some(Verbatim::RandomPick) => self.ctx == Ctx::Function,
                        _ => false,
                    };
                    if !ok {
                        return Err(self.unknown_verbatim(text, s.pos, "here"));
                    }
                    self.verbatim.insert(s.pos, v.unwrap());
                }
                StmtKind::NetInitial(_) => {
                    return Err(self
                        .src
                        .semantic(s.pos, "INITIAL inside a block is only allowed at the top of NET_RECEIVE"))
                }
            }
        }
        self.scopes.pop();
        Ok(table)
    }

    fn is_state(&self, n: &str) -> bool {
        self.by_name.get(n).is_some_and(|&id| self.vars[id].kind == VarKind::State)
    }

    fn kinetic_only(&self, pos: Pos, what: &str) -> Result<()> {
        if self.ctx != Ctx::Kinetic {
            return Err(self.src.semantic(pos, format!("{what} only in a KINETIC block")));
        }
        Ok(())
    }
}

/// States assigned by `x' =` or kinetic schemes in a block.
pub fn derivative_targets(body: &[Stmt]) -> Vec<String> {
    let mut out = Vec::new();
    for s in body {
        s.walk(&mut |s| match &s.kind {
            StmtKind::Derivative { state, .. } => out.push(state.clone()),
            StmtKind::Reaction { lhs, rhs, .. } => out.extend(lhs.iter().chain(rhs).map(|r| r.name.clone())),
            StmtKind::Flux { state, .. } => out.push(state.name.clone()),
            _ => {}
        });
    }
    out
}

fn module_pos_of_name(module: &Module, name: &str) -> Pos {
    for item in &module.items {
        if let Item::Neuron(stmts, _) = item {
            for s in stmts {
                if let NeuronStmt::Range(l) | NeuronStmt::Global(l) = s {
                    if let Some((_, p)) = l.iter().find(|(n, _)| n == name) {
                        return *p;
                    }
                }
            }
        }
    }
    Pos::default()
}
