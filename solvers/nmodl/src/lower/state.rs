//! The lowerer's state: the model being lowered, the instructions emitted so far, the values of
//! variables, and the caches of constant folding and common-subexpression elimination.

use std::collections::{BTreeMap, HashMap};

use crate::error::{Error, Pos, Result, Source};
use crate::model::*;
use crate::ops::{Bin, Un};
use crate::vm::{Op, Program, SOp, Src};

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Key {
    Var(VarId),
    Local(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Val {
    S(u32),
    V(u32),
}

impl Val {
    pub(super) fn src(self) -> Src {
        match self {
            Val::S(k) => Src::S(k),
            Val::V(r) => Src::V(r as u16),
        }
    }
}

/// A pure instruction, for common-subexpression elimination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Pure {
    Un(Un, Val),
    Bin(Bin, Val, Val),
    Select(Val, Val, Val),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Kernel,
    /// Building the table of a function: per-instance values may not be read.
    TableBuilder,
    NetReceive,
}

pub(super) const VREG_LIMIT: u32 = 65_000;
pub(super) const SCALAR_LIMIT: usize = 1_000_000;

pub(super) struct Lowerer<'m> {
    pub(super) m: &'m Model,
    pub(super) layout: &'m Layout,
    pub(super) src: Source,
    pub(super) mode: Mode,
    pub(super) usetable: bool,
    /// Table index of each TABLE'd function.
    pub(super) table_of: &'m HashMap<String, usize>,
    pub(super) ops: Vec<Vec<Op>>,
    pub(super) sops: Vec<SOp>,
    pub(super) scalars: Vec<f64>,
    pub(super) known: Vec<Option<f64>>,
    pub(super) consts: HashMap<u64, u32>,
    pub(super) inputs: HashMap<Input, u32>,
    pub(super) n_vregs: u32,
    pub(super) env: BTreeMap<Key, Val>,
    /// Values loaded from fields at kernel entry, with the nesting depth they were loaded at.
    pub(super) entry: HashMap<usize, (Val, usize)>,
    /// Pure instructions already emitted, with the nesting depth of their result.
    pub(super) cse: HashMap<Pure, (Val, usize)>,
    /// The pure instruction that defined each vector register, with its nesting depth.
    pub(super) defs: HashMap<u32, (Pure, usize)>,
    pub(super) scopes: Vec<HashMap<String, u32>>,
    pub(super) n_locals: u32,
    pub(super) results: Vec<(String, u32)>,
    pub(super) call_stack: Vec<String>,
    pub(super) mask: Option<Val>,
    /// NET_RECEIVE: argument names and their index; `flag` is after them.
    pub(super) args: Vec<String>,
    pub(super) max_system: usize,
    pub(super) warnings: Vec<String>,
    /// What `dt` reads as: nocmodl halves dt in nrn_state under second order for mechanisms with
    /// derivimplicit, sparse or euler solves.
    pub(super) dt_value: Option<Val>,
}

impl<'m> Lowerer<'m> {
    pub(super) fn new(
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

    pub(super) fn err(&self, pos: Pos, msg: impl Into<String>) -> Error {
        self.src.semantic(pos, msg)
    }

    /// The kernel with virtual registers (`n_regs` counts them); [`allocate`] finishes it.
    pub(super) fn finish_raw(self) -> Result<Kernel> {
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
