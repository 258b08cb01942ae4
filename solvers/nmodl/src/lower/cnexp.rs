//! METHOD cnexp: each `x' = f` split into `a*x + b` (nocmodl's rules) and integrated exactly.

use std::collections::HashMap;

use crate::ast::{Expr, Stmt, StmtKind};
use crate::error::Result;
use crate::model::*;
use crate::ops::{Bin, Un};
use crate::symbolic;
use crate::vm::Op;

use super::*;

impl Lowerer<'_> {
    /// The cnexp split `(a, b)` of `x' = a x + b` for STATE `name`, if a cnexp SOLVE integrates it linearly.
    pub(super) fn cnexp_split_of(&self, name: &str) -> Option<(Expr, Option<Expr>)> {
        let is_state = self.m.by_name.get(name).is_some_and(|&id| self.m.vars[id].kind == VarKind::State);
        if !is_state {
            return None;
        }
        for sol in self.m.solves.iter().filter(|x| x.method == Method::Cnexp) {
            let f = self.m.func(&sol.func)?;
            let mut found = None;
            for st in &f.body {
                st.walk(&mut |x| {
                    if let StmtKind::Derivative { state, value, .. } = &x.kind {
                        if state == name {
                            found = symbolic::linear(value, state);
                        }
                    }
                });
            }
            if let Some((Some(a), b)) = found {
                return Some((a, b));
            }
        }
        None
    }

    /// Body of a DERIVATIVE block with each `x' = f` replaced by the cnexp update, in order.
    pub(super) fn deriv_block(
        &mut self,
        f: &Func,
        eqs: Option<&mut dyn Iterator<Item = symbolic::Linear>>,
    ) -> Result<()> {
        let mut eqs = eqs;
        self.scopes = vec![HashMap::new()];
        self.call_stack.push(f.name.clone());
        let r = self.deriv_stmts(&f.body, &mut eqs);
        self.call_stack.pop();
        r
    }

    pub(super) fn deriv_stmts(
        &mut self,
        body: &[Stmt],
        eqs: &mut Option<&mut dyn Iterator<Item = symbolic::Linear>>,
    ) -> Result<()> {
        self.scopes.push(HashMap::new());
        for s in body {
            match &s.kind {
                StmtKind::Derivative { state, .. } => {
                    let Some(it) = eqs.as_mut() else { continue };
                    let (a, b) = it.next().expect("one split per equation");
                    let x = self.read_name(state, s.pos)?;
                    let dt = self.dt();
                    let new = match a {
                        None => match b {
                            None => x,
                            Some(b) => {
                                let bv = self.expr(&b)?;
                                let nb = self.unop(Un::Neg, bv);
                                let step = self.binop(Bin::Mul, dt, nb);
                                self.binop(Bin::Sub, x, step)
                            }
                        },
                        Some(a) => {
                            let (av, inf) = self.cnexp_coefficients(&a, b.as_ref())?;
                            self.cnexp_update(x, av, inf, dt)
                        }
                    };
                    self.assign(state, new, s.pos)?;
                }
                _ => self.stmt(s)?,
            }
        }
        self.scopes.pop();
        Ok(())
    }

    /// `a` and the steady state `-(b)/(a)` of a cnexp split. When `a` and `b` are quotients by the
    /// same value (`(inf - x)/tau` gives `-1/tau` and `inf/tau`), the steady state is `-(b0)/(a0)`
    /// of their numerators, which is `inf` itself: the divisions by `tau` cancel (as in exact
    /// arithmetic; nocmodl's three divisions differ from it by an ulp or two, and give NaN where
    /// `tau` is 0 or infinite). The subexpressions are evaluated once each, in nocmodl's order.
    pub(super) fn cnexp_coefficients(&mut self, a: &Expr, b: Option<&Expr>) -> Result<(Val, Val)> {
        let quotient = |e: &Expr| match e {
            Expr::Bin(Bin::Div, n, d) => Some(((**n).clone(), (**d).clone())),
            _ => None,
        };
        let (av, num_a) = match quotient(a) {
            Some((n, d)) => {
                let n = self.expr(&n)?;
                let d = self.expr(&d)?;
                (self.binop(Bin::Div, n, d), Some((n, d)))
            }
            None => (self.expr(a)?, None),
        };
        let bv = match (b.and_then(quotient), num_a) {
            (Some((n, d)), Some((a0, da))) => {
                let n = self.expr(&n)?;
                let d = self.expr(&d)?;
                if d == da {
                    let nb = self.unop(Un::Neg, n);
                    return Ok((av, self.binop(Bin::Div, nb, a0)));
                }
                self.binop(Bin::Div, n, d)
            }
            _ => match b {
                Some(b) => self.expr(b)?,
                None => self.konst(0.0),
            },
        };
        let nb = self.unop(Un::Neg, bv);
        Ok((av, self.binop(Bin::Div, nb, av)))
    }

    /// The cnexp update `x + (1 - exp(dt*a))*(inf - x)`, one fused instruction when the state is
    /// per instance (same operations in the same order).
    pub(super) fn cnexp_update(&mut self, x: Val, a: Val, inf: Val, dt: Val) -> Val {
        let Val::S(dt_slot) = dt else { unreachable!("dt is a scalar") };
        if let Val::V(xr) = x {
            let d = self.vreg();
            self.emit(Op::Cnexp { dst: d as u16, x: xr as u16, a: a.src(), inf: inf.src(), dt: dt_slot });
            return Val::V(d);
        }
        let dta = self.binop(Bin::Mul, dt, a);
        let e = self.unop(Un::Exp, dta);
        let one = self.konst(1.0);
        let fac = self.binop(Bin::Sub, one, e);
        let gap = self.binop(Bin::Sub, inf, x);
        let inc = self.binop(Bin::Mul, fac, gap);
        self.binop(Bin::Add, x, inc)
    }
}
