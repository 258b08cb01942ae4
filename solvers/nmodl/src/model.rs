//! The checked meaning of a `.mod` file: every name resolved to a variable with NEURON's storage
//! class, the blocks kept as syntax for lowering. Built by [`crate::check`].

use std::collections::HashMap;

use crate::ast::{Expr, Stmt};
use crate::error::{Diagnostic, Pos};
use crate::verbatim::Verbatim;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MechKind {
    /// SUFFIX: currents in mA/cm2, conductances in S/cm2.
    Density,
    /// POINT_PROCESS: currents in nA, conductances in uS.
    Point,
    /// ARTIFICIAL_CELL: no membrane, only events.
    Artificial,
}

impl MechKind {
    pub fn name(self) -> &'static str {
        match self {
            MechKind::Density => "density",
            MechKind::Point => "point",
            MechKind::Artificial => "artificial",
        }
    }
}

/// Which ion quantity a variable of a USEION statement stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IonVarKind {
    Reversal,
    Inside,
    Outside,
    Current,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IonVar {
    pub name: String,
    pub kind: IonVarKind,
    pub var: VarId,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IonUse {
    pub ion: String,
    pub valence: Option<f64>,
    pub read: Vec<IonVar>,
    pub write: Vec<IonVar>,
}

/// Values the simulator provides rather than the mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Special {
    /// Membrane potential (mV), per instance.
    V,
    /// Time (ms).
    T,
    /// Time step (ms).
    Dt,
    /// Temperature (degC).
    Celsius,
    /// Segment area (um2), per instance.
    Area,
    /// Segment diameter (um), per instance.
    Diam,
}

impl Special {
    pub fn from_name(n: &str) -> Option<Special> {
        Some(match n {
            "v" => Special::V,
            "t" => Special::T,
            "dt" => Special::Dt,
            "celsius" => Special::Celsius,
            "area" => Special::Area,
            "diam" => Special::Diam,
            _ => return None,
        })
    }
    pub fn per_instance(self) -> bool {
        matches!(self, Special::V | Special::Area | Special::Diam)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarKind {
    Parameter,
    Assigned,
    State,
    Constant,
    /// File-level LOCAL.
    FileLocal,
    Special(Special),
}

pub type VarId = usize;

/// Where a variable lives while the mechanism runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Storage {
    /// One value per instance (field index).
    Field(usize),
    /// One value for all instances (global index).
    Global(usize),
    /// A GLOBAL that the code assigns: kept per instance so vectorised execution stays exact for
    /// the usual pattern "compute a global, then use it in the same instance"; the global index
    /// holds the value set from outside, copied into every instance.
    Shadow {
        field: usize,
        global: usize,
    },
    Const(f64),
    Special(Special),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Var {
    pub name: String,
    pub pos: Pos,
    pub kind: VarKind,
    /// Named in RANGE (visible per instance).
    pub range: bool,
    /// Named in GLOBAL.
    pub global: bool,
    pub default: f64,
    pub units: Option<String>,
    /// The ion variable it stands for (index into `Model::ions`).
    pub ion: Option<(usize, IonVarKind)>,
    /// Assigned somewhere in the code.
    pub written: bool,
    pub storage: Storage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FuncKind {
    Function,
    Procedure,
    Derivative,
    Kinetic,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableSpec {
    pub pos: Pos,
    /// Variables filled from the table (PROCEDURE); empty for a FUNCTION (its value is tabulated).
    pub names: Vec<VarId>,
    pub depend: Vec<VarId>,
    pub from: Expr,
    pub to: Expr,
    pub intervals: u32,
}

/// Procedures whose body is replaced by built-in behaviour (recognised VERBATIM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinProc {
    /// VecStim: next element of the played vector into `etime`, advancing `index`.
    VectorElement,
    /// Bound through the API (vector play, random stream binding); a no-op when called in code.
    ApiOnly,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Func {
    pub name: String,
    pub pos: Pos,
    pub kind: FuncKind,
    pub args: Vec<String>,
    pub body: Vec<Stmt>,
    pub table: Option<TableSpec>,
    pub builtin: Option<BuiltinProc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Cnexp,
    Derivimplicit,
    Euler,
    Sparse,
    /// `SOLVE proc` of a PROCEDURE: called once per step.
    Procedure,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Cnexp => "cnexp",
            Method::Derivimplicit => "derivimplicit",
            Method::Euler => "euler",
            Method::Sparse => "sparse",
            Method::Procedure => "procedure",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SolveSpec {
    pub pos: Pos,
    pub func: String,
    pub method: Method,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NetReceive {
    pub pos: Pos,
    pub args: Vec<String>,
    pub body: Vec<Stmt>,
    pub initial: Option<Vec<Stmt>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub file: String,
    pub name: String,
    pub kind: MechKind,
    pub electrode_current: bool,
    pub threadsafe: bool,
    pub vars: Vec<Var>,
    pub by_name: HashMap<String, VarId>,
    pub ions: Vec<IonUse>,
    /// Variables summed into the membrane current (ion WRITE currents, NONSPECIFIC/ELECTRODE).
    pub currents: Vec<VarId>,
    pub funcs: Vec<Func>,
    pub func_by_name: HashMap<String, usize>,
    pub initial: Vec<Stmt>,
    pub solves: Vec<SolveSpec>,
    /// BREAKPOINT without its SOLVE statements.
    pub breakpoint: Vec<Stmt>,
    pub has_breakpoint: bool,
    pub net_receive: Option<NetReceive>,
    /// Recognised VERBATIM blocks inside code, by position.
    pub verbatim: HashMap<Pos, Verbatim>,
    /// Number of per-instance fields and globals used by the variables.
    pub n_fields: usize,
    pub n_globals: usize,
    pub warnings: Vec<Diagnostic>,
}

impl Model {
    pub fn var(&self, name: &str) -> Option<&Var> {
        self.by_name.get(name).map(|&i| &self.vars[i])
    }
    pub fn func(&self, name: &str) -> Option<&Func> {
        self.func_by_name.get(name).map(|&i| &self.funcs[i])
    }
}
