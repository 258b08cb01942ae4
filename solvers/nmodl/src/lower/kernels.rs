//! The entry points assembled: nrn_init, nrn_cur, nrn_state, NET_RECEIVE and its INITIAL.

use std::collections::HashMap;

use crate::ast::Stmt;
use crate::error::{Pos, Result};
use crate::model::*;
use crate::ops::{Bin, Un};
use crate::vm::Op;

use super::*;

impl Lowerer<'_> {
    /// nrn_init: states from their START values (ion concentrations keep the ion's), then INITIAL.
    pub(super) fn init_kernel(&mut self) -> Result<()> {
        for (id, v) in self.m.vars.iter().enumerate() {
            if v.kind == VarKind::State && v.ion.is_none() {
                let x = self.konst(v.default);
                self.env.insert(Key::Var(id), x);
            }
        }
        let body = self.m.initial.clone();
        self.block(&body)?;
        self.store_modified();
        Ok(())
    }

    /// nrn_cur: BREAKPOINT (without SOLVE) at v + 0.001, then at v; total current, its derivative,
    /// and per ion current derivative.
    pub(super) fn current_kernel(&mut self) -> Result<()> {
        let vid = self.m.by_name["v"];
        let v = self.read_var(vid, Pos::default())?;
        let dv = self.konst(0.001);
        let vp = self.binop(Bin::Add, v, dv);
        let body = self.m.breakpoint.clone();
        self.env.insert(Key::Var(vid), vp);
        self.block(&body)?;
        let (i1, ions1) = self.sum_currents()?;
        self.env.insert(Key::Var(vid), v);
        self.block(&body)?;
        let (i0, ions0) = self.sum_currents()?;
        self.env.remove(&Key::Var(vid));
        let d = self.binop(Bin::Sub, i1, i0);
        let mut g = self.binop(Bin::Div, d, dv);
        let mut i = i0;
        if self.m.electrode_current {
            g = self.unop(Un::Neg, g);
            i = self.unop(Un::Neg, i);
        }
        let (fi, fg) = (self.layout.current.unwrap(), self.layout.conductance.unwrap());
        self.store_modified();
        // A single current's own field is the total (see `Layout::new`): stored above if the
        // BREAKPOINT assigned it, already holding it otherwise.
        let own = self.layout.fields[fi].1 != FieldRole::Current;
        for (v, f) in [(i, fi), (g, fg)].into_iter().filter(|&(_, f)| !(own && f == fi)) {
            let r = self.vreg_of(v);
            self.emit(Op::Store { field: f as u32, src: r as u16 });
        }
        for (k, &(_, f)) in self.layout.ion_didv.clone().iter().enumerate() {
            let d = self.binop(Bin::Sub, ions1[k], ions0[k]);
            let didv = self.binop(Bin::Div, d, dv);
            let r = self.vreg_of(didv);
            self.emit(Op::Store { field: f as u32, src: r as u16 });
        }
        Ok(())
    }

    /// Sum of the membrane currents and the values of each ion's written current.
    pub(super) fn sum_currents(&mut self) -> Result<(Val, Vec<Val>)> {
        let mut total: Option<Val> = None;
        for &c in &self.m.currents {
            let x = self.read_var(c, Pos::default())?;
            total = Some(match total {
                None => x,
                Some(t) => self.binop(Bin::Add, t, x),
            });
        }
        let total = total.unwrap_or_else(|| self.konst(0.0));
        let mut ions = Vec::new();
        for &(k, _) in &self.layout.ion_didv {
            let mut s: Option<Val> = None;
            for w in &self.m.ions[k].write {
                if w.kind == IonVarKind::Current {
                    let x = self.read_var(w.var, Pos::default())?;
                    s = Some(match s {
                        None => x,
                        Some(t) => self.binop(Bin::Add, t, x),
                    });
                }
            }
            ions.push(s.unwrap_or_else(|| self.konst(0.0)));
        }
        Ok((total, ions))
    }

    /// nrn_state: the SOLVE statements in order; BREAKPOINT as well when there is no current.
    pub(super) fn state_kernel(&mut self) -> Result<()> {
        if self.m.solves.iter().any(|s| matches!(s.method, Method::Derivimplicit | Method::Sparse | Method::Euler)) {
            let dt = self.input(Input::Dt);
            let half = self.konst(0.5);
            let halved = self.binop(Bin::Mul, dt, half);
            let so = self.input(Input::SecondOrder);
            self.dt_value = Some(self.select(so, halved, dt));
        }
        for s in self.m.solves.clone() {
            self.solve(&s)?;
            self.scopes = vec![HashMap::new()];
        }
        if self.m.currents.is_empty() && self.m.has_breakpoint {
            let body = self.m.breakpoint.clone();
            self.block(&body)?;
        }
        self.store_modified();
        Ok(())
    }

    /// NET_RECEIVE (or its INITIAL): arguments are the NetCon's weight vector, then `flag`.
    pub(super) fn net_kernel(&mut self, body: &[Stmt]) -> Result<()> {
        let nr = self.m.net_receive.as_ref().unwrap();
        self.args = nr.args.clone();
        let mut arg_locals = Vec::new();
        for (k, a) in nr.args.iter().enumerate() {
            let v = self.arg_value(k);
            arg_locals.push((k, self.new_local(a, v), v));
        }
        self.block(body)?;
        for (k, id, v0) in arg_locals {
            let v = self.env[&Key::Local(id)];
            if v != v0 {
                let r = self.vreg_of(v);
                self.emit(Op::ArgStore { arg: k as u16, src: r as u16 });
            }
        }
        self.store_modified();
        Ok(())
    }

    pub(super) fn store_modified(&mut self) {
        let mods: Vec<(Key, Val)> = self.env.iter().map(|(k, v)| (*k, *v)).collect();
        for (k, v) in mods {
            let Key::Var(id) = k else { continue };
            let f = match self.m.vars[id].storage {
                Storage::Field(f) | Storage::Shadow { field: f, .. } => f,
                _ => continue,
            };
            if self.entry.get(&f).map(|e| e.0) == Some(v) {
                continue;
            }
            let r = self.vreg_of(v);
            self.emit(Op::Store { field: f as u32, src: r as u16 });
        }
    }
}
