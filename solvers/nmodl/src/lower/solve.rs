//! SOLVE: each statement dispatched to its method (cnexp, derivimplicit, euler, sparse, PROCEDURE).

use crate::ast::StmtKind;
use crate::error::Result;
use crate::model::*;
use crate::symbolic;

use super::*;

impl Lowerer<'_> {
    pub(super) fn solve(&mut self, s: &SolveSpec) -> Result<()> {
        let f = self.m.func(&s.func).unwrap();
        match s.method {
            Method::Procedure => {
                self.inline_call(f, vec![], s.pos)?;
            }
            Method::Cnexp => {
                let mut eqs = Vec::new();
                let mut ok = true;
                for st in &f.body {
                    st.walk(&mut |x| {
                        if let StmtKind::Derivative { state, value, .. } = &x.kind {
                            match symbolic::linear(value, state) {
                                Some(l) => eqs.push(l),
                                None => ok = false,
                            }
                        }
                    });
                }
                if ok {
                    self.deriv_block(f, Some(&mut eqs.into_iter()))?;
                } else {
                    self.warnings.push(format!(
                        "{}:{}: Could not translate '{}' using cnexp method; using derivimplicit (as nocmodl)",
                        self.src.file, s.pos, f.name
                    ));
                    self.implicit_deriv(f)?;
                }
            }
            Method::Euler => self.euler(f)?,
            Method::Derivimplicit => self.implicit_deriv(f)?,
            Method::Sparse => self.kinetic(f)?,
        }
        Ok(())
    }
}
