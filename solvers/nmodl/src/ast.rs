//! The syntax tree of one `.mod` file, as written (names unresolved, units kept as text).

use crate::error::Pos;
use crate::ops::Bin;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Num(f64),
    Str(String),
    Var(String, Pos),
    Call(String, Vec<Expr>, Pos),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Bin(Bin, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub pos: Pos,
}

/// One reactant of a kinetic scheme: stoichiometric coefficient and state.
#[derive(Debug, Clone, PartialEq)]
pub struct Reactant {
    pub coef: u32,
    pub name: String,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StmtKind {
    Local(Vec<(String, Pos)>),
    Assign {
        name: String,
        value: Expr,
    },
    /// `x' = f`
    Derivative {
        state: String,
        order: u32,
        value: Expr,
    },
    /// An expression evaluated for its side effects (a PROCEDURE or built-in call).
    Call(Expr),
    If {
        cond: Expr,
        then: Vec<Stmt>,
        els: Option<Vec<Stmt>>,
    },
    Block(Vec<Stmt>),
    Solve {
        block: String,
        method: Option<String>,
        steadystate: Option<String>,
    },
    Table {
        names: Vec<(String, Pos)>,
        depend: Vec<(String, Pos)>,
        from: Expr,
        to: Expr,
        with: u32,
    },
    /// `~ A + 2 B <-> C (kf, kb)`
    Reaction {
        lhs: Vec<Reactant>,
        rhs: Vec<Reactant>,
        kf: Expr,
        kb: Expr,
    },
    /// `~ A << (flux)`
    Flux {
        state: Reactant,
        flux: Expr,
    },
    Conserve {
        terms: Vec<Reactant>,
        value: Expr,
    },
    Verbatim(String),
    /// `INITIAL { }` inside NET_RECEIVE.
    NetInitial(Vec<Stmt>),
}

/// A variable declaration line of PARAMETER, ASSIGNED, STATE or CONSTANT.
#[derive(Debug, Clone, PartialEq)]
pub struct Decl {
    pub name: String,
    pub pos: Pos,
    pub value: Option<f64>,
    pub units: Option<String>,
    pub start: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UnitsDef {
    /// `(mA) = (milliamp)`
    Alias { name: String, def: String },
    /// `FARADAY = 96520 (coul)`
    Value { name: String, pos: Pos, value: f64 },
    /// `FARADAY = (faraday) (coulomb)`: the first unit expressed in the second.
    Factor { name: String, pos: Pos, from: String, to: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct UseIon {
    pub ion: String,
    pub pos: Pos,
    pub read: Vec<(String, Pos)>,
    pub write: Vec<(String, Pos)>,
    pub valence: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NeuronStmt {
    Suffix(String, Pos),
    PointProcess(String, Pos),
    ArtificialCell(String, Pos),
    UseIon(UseIon),
    NonspecificCurrent(Vec<(String, Pos)>),
    ElectrodeCurrent(Vec<(String, Pos)>),
    Range(Vec<(String, Pos)>),
    Global(Vec<(String, Pos)>),
    Pointer(Vec<(String, Pos)>),
    BbcorePointer(Vec<(String, Pos)>),
    External(Vec<(String, Pos)>),
    ThreadSafe,
}

/// FUNCTION, PROCEDURE, DERIVATIVE, KINETIC: a named block with optional arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Proc {
    pub name: String,
    pub pos: Pos,
    pub args: Vec<(String, Pos)>,
    pub body: Vec<Stmt>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Neuron(Vec<NeuronStmt>, Pos),
    Units(Vec<UnitsDef>),
    Parameter(Vec<Decl>),
    Assigned(Vec<Decl>),
    State(Vec<Decl>),
    Constant(Vec<Decl>),
    Independent,
    /// File-level `LOCAL a, b`: variables shared by all blocks.
    Local(Vec<(String, Pos)>),
    Initial(Vec<Stmt>, Pos),
    Breakpoint(Vec<Stmt>, Pos),
    Derivative(Proc),
    Kinetic(Proc),
    Procedure(Proc),
    Function(Proc),
    NetReceive(Proc),
    Destructor(Vec<Stmt>, Pos),
    Verbatim(String, Pos),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Module {
    pub items: Vec<Item>,
}

impl Expr {
    /// Visit every sub-expression (pre-order).
    pub fn walk(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Call(_, args, _) => args.iter().for_each(|a| a.walk(f)),
            Expr::Neg(a) | Expr::Not(a) => a.walk(f),
            Expr::Bin(_, a, b) => {
                a.walk(f);
                b.walk(f);
            }
            Expr::Num(_) | Expr::Str(_) | Expr::Var(..) => {}
        }
    }
}

/// Prefix (s-expression) form, used in messages and tests.
impl std::fmt::Display for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expr::Num(x) => write!(f, "{x}"),
            Expr::Str(s) => write!(f, "{s:?}"),
            Expr::Var(n, _) => f.write_str(n),
            Expr::Call(n, args, _) => {
                write!(f, "({n}")?;
                for a in args {
                    write!(f, " {a}")?;
                }
                f.write_str(")")
            }
            Expr::Neg(a) => write!(f, "(neg {a})"),
            Expr::Not(a) => write!(f, "(not {a})"),
            Expr::Bin(op, a, b) => write!(f, "({} {a} {b})", op.symbol()),
        }
    }
}

impl Stmt {
    /// Visit this statement and every nested statement (pre-order).
    pub fn walk(&self, f: &mut dyn FnMut(&Stmt)) {
        f(self);
        match &self.kind {
            StmtKind::If { then, els, .. } => {
                then.iter().for_each(|s| s.walk(f));
                if let Some(e) = els {
                    e.iter().for_each(|s| s.walk(f));
                }
            }
            StmtKind::Block(b) | StmtKind::NetInitial(b) => b.iter().for_each(|s| s.walk(f)),
            _ => {}
        }
    }

    /// Every expression directly in this statement (not in nested statements).
    pub fn exprs(&self) -> Vec<&Expr> {
        match &self.kind {
            StmtKind::Assign { value, .. } | StmtKind::Derivative { value, .. } => vec![value],
            StmtKind::Call(e) => vec![e],
            StmtKind::If { cond, .. } => vec![cond],
            StmtKind::Table { from, to, .. } => vec![from, to],
            StmtKind::Reaction { kf, kb, .. } => vec![kf, kb],
            StmtKind::Flux { flux, .. } => vec![flux],
            StmtKind::Conserve { value, .. } => vec![value],
            _ => vec![],
        }
    }
}
