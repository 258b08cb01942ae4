//! Emitting instructions: constants folded, common subexpressions shared, multiplications and
//! divisions strength-reduced, scalar values kept scalar.

use crate::ops::{Bin, Un};
use crate::vm::{Op, SOp};

use super::*;

impl Lowerer<'_> {
    pub(super) fn emit(&mut self, op: Op) {
        self.ops.last_mut().unwrap().push(op);
    }

    pub(super) fn vreg(&mut self) -> u32 {
        self.n_vregs += 1;
        self.n_vregs - 1
    }

    pub(super) fn slot(&mut self, value: f64, known: Option<f64>) -> u32 {
        self.scalars.push(value);
        self.known.push(known);
        (self.scalars.len() - 1) as u32
    }

    pub(super) fn konst(&mut self, x: f64) -> Val {
        let bits = x.to_bits();
        if let Some(&k) = self.consts.get(&bits) {
            return Val::S(k);
        }
        let k = self.slot(x, Some(x));
        self.consts.insert(bits, k);
        Val::S(k)
    }

    pub(super) fn input(&mut self, i: Input) -> Val {
        if let Some(&k) = self.inputs.get(&i) {
            return Val::S(k);
        }
        let k = self.slot(0.0, None);
        self.inputs.insert(i, k);
        Val::S(k)
    }

    pub(super) fn dt(&mut self) -> Val {
        match self.dt_value {
            Some(v) => v,
            None => self.input(Input::Dt),
        }
    }

    /// NEURON's second-order correction after a halved implicit step: x + dt*D (selected at run time).
    pub(super) fn second_order_step(&mut self, x: Val, d: Val) -> Val {
        let dt = self.dt();
        let step = self.binop(Bin::Mul, dt, d);
        let corrected = self.binop(Bin::Add, x, step);
        let so = self.input(Input::SecondOrder);
        self.select(so, corrected, x)
    }

    pub(super) fn known(&self, v: Val) -> Option<f64> {
        match v {
            Val::S(k) => self.known[k as usize],
            Val::V(_) => None,
        }
    }

    pub(super) fn reuse(&self, key: &Pure) -> Option<Val> {
        self.cse.get(key).map(|e| e.0)
    }

    pub(super) fn remember(&mut self, key: Pure, v: Val) -> Val {
        let depth = if matches!(v, Val::S(_)) { 0 } else { self.ops.len() };
        self.cse.insert(key, (v, depth));
        if let Val::V(r) = v {
            self.defs.insert(r, (key, depth));
        }
        v
    }

    /// The pure instruction that computed `v`, if any.
    pub(super) fn def(&self, v: Val) -> Option<Pure> {
        match v {
            Val::V(r) => self.defs.get(&r).map(|d| d.0),
            Val::S(_) => None,
        }
    }

    pub(super) fn unop(&mut self, op: Un, a: Val) -> Val {
        if let Some(x) = self.known(a) {
            return self.konst(crate::ops::un(op, x));
        }
        if let (Un::Neg, Some(Pure::Un(Un::Neg, x))) = (op, self.def(a)) {
            return x;
        }
        let key = Pure::Un(op, a);
        if let Some(v) = self.reuse(&key) {
            return v;
        }
        let v = match a {
            Val::S(k) => {
                let d = self.slot(0.0, None);
                self.sops.push(SOp::Un { op, dst: d, a: k });
                Val::S(d)
            }
            Val::V(r) => {
                let d = self.vreg();
                self.emit(Op::Un { op, dst: d as u16, a: r as u16 });
                Val::V(d)
            }
        };
        self.remember(key, v)
    }

    pub(super) fn binop(&mut self, op: Bin, a: Val, b: Val) -> Val {
        if let (Some(x), Some(y)) = (self.known(a), self.known(b)) {
            return self.konst(crate::ops::bin(op, x, y));
        }
        if let Some(v) = self.strength_reduce(op, a, b) {
            return v;
        }
        let commutes = matches!(op, Bin::Add | Bin::Mul | Bin::Eq | Bin::Ne | Bin::And | Bin::Or);
        let key = if commutes { Pure::Bin(op, a.min(b), a.max(b)) } else { Pure::Bin(op, a, b) };
        if let Some(v) = self.reuse(&key) {
            return v;
        }
        let v = match (a, b) {
            (Val::S(x), Val::S(y)) => {
                let d = self.slot(0.0, None);
                self.sops.push(SOp::Bin { op, dst: d, a: x, b: y });
                Val::S(d)
            }
            _ => {
                let d = self.vreg();
                self.emit(Op::Bin { op, dst: d as u16, a: a.src(), b: b.src() });
                Val::V(d)
            }
        };
        self.remember(key, v)
    }

    /// Cheaper forms of a multiplication or division (see docs/nmodl.md, "Execution"): exact ones
    /// (`x*1`, `x*-1`, `(-x)*c = x*(-c)`) and ones that change the result by about an ulp: a
    /// division by a constant becomes a multiplication by its reciprocal, `a/(1/y)` becomes `a*y`.
    pub(super) fn strength_reduce(&mut self, op: Bin, a: Val, b: Val) -> Option<Val> {
        match op {
            Bin::Mul => {
                let (x, c) = match (self.known(a), self.known(b)) {
                    (None, Some(c)) => (a, c),
                    (Some(c), None) => (b, c),
                    _ => return None,
                };
                if c == 1.0 {
                    return Some(x);
                }
                if c == -1.0 {
                    return Some(self.unop(Un::Neg, x));
                }
                if let Some(Pure::Un(Un::Neg, y)) = self.def(x) {
                    let nc = self.konst(-c);
                    return Some(self.binop(Bin::Mul, y, nc));
                }
                None
            }
            Bin::Div => {
                if let Some(c) = self.known(b) {
                    let r = 1.0 / c;
                    if r.is_normal() {
                        let r = self.konst(r);
                        return Some(self.binop(Bin::Mul, a, r));
                    }
                    return None;
                }
                if let Some(Pure::Bin(Bin::Div, one, y)) = self.def(b) {
                    if self.known(one) == Some(1.0) {
                        return Some(self.binop(Bin::Mul, a, y));
                    }
                }
                None
            }
            _ => None,
        }
    }

    pub(super) fn select(&mut self, c: Val, a: Val, b: Val) -> Val {
        if a == b {
            return a;
        }
        if let Some(x) = self.known(c) {
            return if x != 0.0 { a } else { b };
        }
        let key = Pure::Select(c, a, b);
        if let Some(v) = self.reuse(&key) {
            return v;
        }
        let v = match (c, a, b) {
            (Val::S(c), Val::S(a), Val::S(b)) => {
                let d = self.slot(0.0, None);
                self.sops.push(SOp::Select { dst: d, c, a, b });
                Val::S(d)
            }
            _ => {
                let d = self.vreg();
                self.emit(Op::Select { dst: d as u16, c: c.src(), a: a.src(), b: b.src() });
                Val::V(d)
            }
        };
        self.remember(key, v)
    }

    pub(super) fn vreg_of(&mut self, v: Val) -> u32 {
        match v {
            Val::V(r) => r,
            Val::S(k) => {
                let d = self.vreg();
                self.emit(Op::Splat { dst: d as u16, src: k });
                d
            }
        }
    }

    pub(super) fn mask_reg(&mut self) -> Option<u16> {
        let m = self.mask?;
        if self.known(m) == Some(1.0) {
            return None;
        }
        Some(self.vreg_of(m) as u16)
    }

    pub(super) fn and_mask(&mut self, c: Val) -> Val {
        match self.mask {
            None => c,
            Some(m) => self.binop(Bin::And, m, c),
        }
    }
}
