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

static NETREC_STATE_ADJUST: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// NEURON's `nrn_netrec_state_adjust` (MiV-Simulator sets it to 1): in NET_RECEIVE, a jump of a STATE that its
/// DERIVATIVE block solves with cnexp (`x' = a x + b`) is applied as the change it makes by t + dt/2,
/// `d + (1 - exp(a dt/2)) (-b/a - d)` for a jump `d`, instead of `d`. Read when mechanisms are compiled: set it
/// before compiling them. Off by default, as in NEURON.
pub fn set_netrec_state_adjust(on: bool) {
    NETREC_STATE_ADJUST.store(on, std::sync::atomic::Ordering::SeqCst);
}

pub fn netrec_state_adjust() -> bool {
    NETREC_STATE_ADJUST.load(std::sync::atomic::Ordering::SeqCst)
}
pub use library::Library;
pub use mechanism::{Context, Instances, IonField, IonInfo, Mechanism, MechanismInfo, ParamInfo};
pub use model::{IonVarKind, MechKind};
pub use vm::Emitted;
