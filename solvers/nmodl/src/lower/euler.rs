//! METHOD euler: explicit Euler.

use std::collections::HashMap;

use crate::ast::StmtKind;
use crate::error::Result;
use crate::model::*;
use crate::ops::Bin;

use super::*;

impl Lowerer<'_> {
    /// Explicit Euler (nocmodl's euler): all derivatives at the old states, then x += dt*x'.
    pub(super) fn euler(&mut self, f: &Func) -> Result<()> {
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
}
