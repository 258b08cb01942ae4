//! METHOD derivimplicit: NEURON's Newton iteration on the DERIVATIVE block.

use std::collections::HashMap;

use crate::ast::StmtKind;
use crate::error::Result;
use crate::model::*;
use crate::ops::Bin;

use super::*;

impl Lowerer<'_> {
    /// derivimplicit: Newton on x' - (x - x_old)/dt = 0, then the block once more at the solution.
    pub(super) fn implicit_deriv(&mut self, f: &Func) -> Result<()> {
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
            resid.push(self.vreg_of(r));
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
}
