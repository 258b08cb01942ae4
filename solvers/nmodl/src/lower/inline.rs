//! Expressions and calls: FUNCTION and PROCEDURE calls inlined, built-in functions, TABLE lookups.

use std::collections::HashMap;

use crate::ast::Expr;
use crate::check::builtin_has_effect;
use crate::error::{Pos, Result};
use crate::model::*;
use crate::ops::{Bin, Un};
use crate::vm::{Op, RandKind};

use super::*;

impl Lowerer<'_> {
    pub(super) fn expr(&mut self, e: &Expr) -> Result<Val> {
        match e {
            Expr::Num(x) => Ok(self.konst(*x)),
            Expr::Str(_) => Err(self.err(Pos::default(), "a string is only allowed as printf's first argument")),
            Expr::Var(n, p) => self.read_name(n, *p),
            Expr::Neg(a) => {
                let a = self.expr(a)?;
                Ok(self.unop(Un::Neg, a))
            }
            Expr::Not(a) => {
                let a = self.expr(a)?;
                Ok(self.unop(Un::Not, a))
            }
            Expr::Bin(op, a, b) => {
                let x = self.expr(a)?;
                let y = self.expr(b)?;
                Ok(self.binop(*op, x, y))
            }
            Expr::Call(name, args, pos) => self.call(name, args, *pos),
        }
    }

    pub(super) fn call(&mut self, name: &str, args: &[Expr], pos: Pos) -> Result<Val> {
        if let Some(f) = self.m.func(name) {
            match f.builtin {
                Some(BuiltinProc::ApiOnly) => return Ok(self.konst(0.0)),
                Some(BuiltinProc::VectorElement) => {
                    let (ix_id, et_id) = (self.m.by_name["index"], self.m.by_name["etime"]);
                    let ix = self.read_var(ix_id, pos)?;
                    let et = self.read_var(et_id, pos)?;
                    let (ix, et) = (self.vreg_of(ix), self.vreg_of(et));
                    let (io, eo) = (self.vreg(), self.vreg());
                    let mask = self.mask_reg();
                    self.emit(Op::VecElement {
                        index: ix as u16,
                        etime: et as u16,
                        index_out: io as u16,
                        etime_out: eo as u16,
                        mask,
                    });
                    self.env.insert(Key::Var(ix_id), Val::V(io));
                    self.env.insert(Key::Var(et_id), Val::V(eo));
                    return Ok(self.konst(0.0));
                }
                None => {}
            }
            let vals = args.iter().map(|a| self.expr(a)).collect::<Result<Vec<_>>>()?;
            if self.usetable && self.mode != Mode::TableBuilder {
                if let Some(&t) = self.table_of.get(name) {
                    return Ok(self.table_call(f, t, vals[0]));
                }
            }
            return self.inline_call(f, vals, pos);
        }
        let mut a = Vec::with_capacity(args.len());
        for (i, e) in args.iter().enumerate() {
            if name == "printf" && i == 0 {
                continue;
            }
            a.push(self.expr(e)?);
        }
        let un_op = match name {
            "exp" => Some(Un::Exp),
            "log" => Some(Un::Log),
            "log10" => Some(Un::Log10),
            "sqrt" => Some(Un::Sqrt),
            "fabs" => Some(Un::Fabs),
            "sin" => Some(Un::Sin),
            "cos" => Some(Un::Cos),
            "tan" => Some(Un::Tan),
            "asin" => Some(Un::Asin),
            "acos" => Some(Un::Acos),
            "atan" => Some(Un::Atan),
            "sinh" => Some(Un::Sinh),
            "cosh" => Some(Un::Cosh),
            "tanh" => Some(Un::Tanh),
            "floor" => Some(Un::Floor),
            "ceil" => Some(Un::Ceil),
            _ => None,
        };
        if let Some(op) = un_op {
            return Ok(self.unop(op, a[0]));
        }
        let bin_op = match name {
            "pow" => Some(Bin::Pow),
            "atan2" => Some(Bin::Atan2),
            "fmod" => Some(Bin::Fmod),
            "fmin" => Some(Bin::Fmin),
            "fmax" => Some(Bin::Fmax),
            _ => None,
        };
        if let Some(op) = bin_op {
            return Ok(self.binop(op, a[0], a[1]));
        }
        if self.mode == Mode::TableBuilder && builtin_has_effect(name) {
            return Err(self.src.unsupported(pos, format!("'{name}' in a TABLE body is not supported")));
        }
        let mask = self.mask_reg();
        match name {
            "normrand" | "exprand" | "scop_random" => {
                let kind = match name {
                    "normrand" => RandKind::Normal(a[0].src(), a[1].src()),
                    "exprand" => RandKind::Exponential(a[0].src()),
                    _ => RandKind::Uniform,
                };
                let d = self.vreg();
                self.emit(Op::Random { kind, dst: d as u16, mask });
                Ok(Val::V(d))
            }
            "set_seed" => {
                self.emit(Op::SetSeed { seed: a[0].src(), mask });
                Ok(self.konst(0.0))
            }
            "net_send" => {
                self.emit(Op::NetSend { delay: a[0].src(), flag: a[1].src(), mask });
                Ok(self.konst(0.0))
            }
            "net_event" => {
                self.emit(Op::NetEvent { t: a[0].src(), mask });
                Ok(self.konst(0.0))
            }
            "printf" | "at_time" => Ok(self.konst(0.0)),
            "nrn_ghk" => Ok(self.ghk(a[0], a[1], a[2], a[3])),
            _ => Err(self.err(pos, format!("call of undefined function '{name}'"))),
        }
    }

    /// NEURON's nrn_ghk(v, ci, co, z) (eion.cpp), with CODATA 2018 constants.
    pub(super) fn ghk(&mut self, v: Val, ci: Val, co: Val, z: Val) -> Val {
        use miv_solvers::ion::{FARADAY as F, GAS_CONSTANT as R};
        let celsius = self.input(Input::Celsius);
        let c = self.konst(273.15);
        let tk = self.binop(Bin::Add, celsius, c);
        let k = self.konst(1000.0 * R);
        let num = self.binop(Bin::Mul, k, tk);
        let f = self.konst(F);
        let ktf = self.binop(Bin::Div, num, f);
        let zv = self.binop(Bin::Mul, z, v);
        let temp = self.binop(Bin::Div, zv, ktf);
        let e1 = self.efun(temp);
        let eco = self.binop(Bin::Mul, co, e1);
        let mtemp = self.unop(Un::Neg, temp);
        let e2 = self.efun(mtemp);
        let eci = self.binop(Bin::Mul, ci, e2);
        let diff = self.binop(Bin::Sub, eci, eco);
        let zf = self.binop(Bin::Mul, z, f);
        let milli = self.konst(0.001);
        let pre = self.binop(Bin::Mul, milli, zf);
        self.binop(Bin::Mul, pre, diff)
    }

    pub(super) fn efun(&mut self, x: Val) -> Val {
        let ax = self.unop(Un::Fabs, x);
        let small = self.konst(1e-4);
        let c = self.binop(Bin::Lt, ax, small);
        let one = self.konst(1.0);
        let two = self.konst(2.0);
        let h = self.binop(Bin::Div, x, two);
        let near = self.binop(Bin::Sub, one, h);
        let ex = self.unop(Un::Exp, x);
        let den = self.binop(Bin::Sub, ex, one);
        let far = self.binop(Bin::Div, x, den);
        self.select(c, near, far)
    }

    pub(super) fn table_call(&mut self, f: &Func, table: usize, x: Val) -> Val {
        let spec = f.table.as_ref().unwrap();
        let n = if spec.names.is_empty() { 1 } else { spec.names.len() };
        let dst: Vec<u32> = (0..n).map(|_| self.vreg()).collect();
        self.emit(Op::Table { table: table as u32, x: x.src(), dst: dst.iter().map(|&r| r as u16).collect() });
        if spec.names.is_empty() {
            Val::V(dst[0])
        } else {
            for (k, &id) in spec.names.iter().enumerate() {
                self.env.insert(Key::Var(id), Val::V(dst[k]));
            }
            self.konst(0.0)
        }
    }

    pub(super) fn inline_call(&mut self, f: &Func, vals: Vec<Val>, pos: Pos) -> Result<Val> {
        if self.call_stack.iter().any(|c| c == &f.name) {
            return Err(self.src.unsupported(pos, format!("recursive call of '{}'", f.name)));
        }
        if self.call_stack.len() > 64 {
            return Err(self.src.unsupported(pos, "calls nested more than 64 deep"));
        }
        // Inlining can grow exponentially (each level calling the next twice): stop early.
        if self.n_vregs > VREG_LIMIT || self.scalars.len() > SCALAR_LIMIT {
            return Err(self.src.unsupported(pos, "mechanism too large once FUNCTION and PROCEDURE calls are inlined"));
        }
        self.call_stack.push(f.name.clone());
        let first_local = self.n_locals;
        // A fresh scope: the callee sees its arguments and globals only.
        let saved_scopes = std::mem::replace(&mut self.scopes, vec![HashMap::new()]);
        for (name, v) in f.args.iter().zip(vals) {
            self.new_local(name, v);
        }
        let result = if f.kind == FuncKind::Function {
            let z = self.konst(0.0);
            let id = self.n_locals;
            self.n_locals += 1;
            self.env.insert(Key::Local(id), z);
            self.results.push((f.name.clone(), id));
            Some(id)
        } else {
            None
        };
        self.block(&f.body)?;
        let out = match result {
            Some(id) => {
                self.results.pop();
                self.env[&Key::Local(id)]
            }
            None => self.konst(0.0),
        };
        self.scopes = saved_scopes;
        self.call_stack.pop();
        // Locals of the callee are dead now.
        self.env.retain(|k, _| !matches!(k, Key::Local(id) if *id >= first_local));
        Ok(out)
    }
}
