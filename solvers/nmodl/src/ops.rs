//! The operators of expressions and their IEEE semantics, one definition for the syntax tree
//! ([`crate::ast::Expr::Bin`]), the VM and native code (which must give [`bin`]'s and [`un`]'s bits),
//! and the engine's template expressions. Comparisons and logic give 1.0 or 0.0.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Un {
    Neg,
    Not,
    Exp,
    Log,
    Log10,
    Sqrt,
    Fabs,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Floor,
    Ceil,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bin {
    Add,
    Sub,
    Mul,
    Div,
    Fmod,
    Pow,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
    Atan2,
    Fmin,
    Fmax,
}

#[inline(always)]
pub fn un(op: Un, a: f64) -> f64 {
    match op {
        Un::Neg => -a,
        Un::Not => (a == 0.0) as u8 as f64,
        Un::Exp => miv_solvers::fastmath::exp(a),
        Un::Log => a.ln(),
        Un::Log10 => a.log10(),
        Un::Sqrt => a.sqrt(),
        Un::Fabs => a.abs(),
        Un::Sin => a.sin(),
        Un::Cos => a.cos(),
        Un::Tan => a.tan(),
        Un::Asin => a.asin(),
        Un::Acos => a.acos(),
        Un::Atan => a.atan(),
        Un::Sinh => a.sinh(),
        Un::Cosh => a.cosh(),
        Un::Tanh => a.tanh(),
        Un::Floor => a.floor(),
        Un::Ceil => a.ceil(),
    }
}

#[inline(always)]
pub fn bin(op: Bin, a: f64, b: f64) -> f64 {
    match op {
        Bin::Add => a + b,
        Bin::Sub => a - b,
        Bin::Mul => a * b,
        Bin::Div => a / b,
        Bin::Fmod => a % b,
        Bin::Pow => a.powf(b),
        Bin::Lt => (a < b) as u8 as f64,
        Bin::Le => (a <= b) as u8 as f64,
        Bin::Gt => (a > b) as u8 as f64,
        Bin::Ge => (a >= b) as u8 as f64,
        Bin::Eq => (a == b) as u8 as f64,
        Bin::Ne => (a != b) as u8 as f64,
        Bin::And => (a != 0.0 && b != 0.0) as u8 as f64,
        Bin::Or => (a != 0.0 || b != 0.0) as u8 as f64,
        Bin::Atan2 => a.atan2(b),
        Bin::Fmin => a.min(b),
        Bin::Fmax => a.max(b),
    }
}

impl Bin {
    /// How the operator is written (a function name for those without an infix form).
    pub fn symbol(self) -> &'static str {
        match self {
            Bin::Add => "+",
            Bin::Sub => "-",
            Bin::Mul => "*",
            Bin::Div => "/",
            Bin::Fmod => "%",
            Bin::Pow => "^",
            Bin::Lt => "<",
            Bin::Le => "<=",
            Bin::Gt => ">",
            Bin::Ge => ">=",
            Bin::Eq => "==",
            Bin::Ne => "!=",
            Bin::And => "&&",
            Bin::Or => "||",
            Bin::Atan2 => "atan2",
            Bin::Fmin => "fmin",
            Bin::Fmax => "fmax",
        }
    }
}
