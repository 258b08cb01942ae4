//! miv-nmodl: NEURON `.mod` files read at run time, with no C compiler and no separate build step.
//!
//! A file goes through [`parser`] (syntax, `file:line:col` errors) → [`check`] (names, ions,
//! methods, TABLEs, recognised VERBATIM; the [`model::Model`]) → [`lower`] (straight-line register
//! programs for NEURON's entry points, see [`vm`]) and runs through the [`Mechanism`] /
//! [`Instances`] API on structure-of-arrays storage. [`Library`] holds mechanisms by name: the
//! standard set (pas, hh, ExpSyn, Exp2Syn, IClamp, NetStim, VecStim, themselves `.mod` files) and a
//! user's folder.

pub mod adapter;
pub mod ast;
pub mod check;
pub mod error;
pub mod jit;
pub mod lexer;
pub mod library;
pub mod lower;
pub mod mechanism;
pub mod model;
pub mod ops;
pub mod parser;
mod regalloc;
pub mod symbolic;
pub mod units;
pub mod verbatim;
pub mod vm;

pub use error::{Diagnostic, Error, Pos, Result};
pub use library::Library;
pub use mechanism::{Context, Instances, IonField, IonInfo, Mechanism, MechanismInfo, ParamInfo};
pub use model::{IonVarKind, MechKind};
pub use vm::Emitted;
