//! The frame shared by the implicit methods: states become the unknowns of a Newton solve whose
//! residual (and matrix) program is one `Implicit` instruction.

use std::collections::BTreeMap;

use crate::error::{Pos, Result};
use crate::model::*;
use crate::vm::{Implicit, Op, Src};

use super::*;

impl Lowerer<'_> {
    /// Start an implicit solve over `states`: returns (state regs, saved regs) and the environment
    /// to restore afterwards; statements lowered until `end_implicit` form the iterated program.
    pub(super) fn begin_implicit(
        &mut self,
        states: &[VarId],
    ) -> Result<(Vec<u32>, Vec<u32>, Vec<Src>, BTreeMap<Key, Val>)> {
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
    pub(super) fn end_implicit(
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
}
