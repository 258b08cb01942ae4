//! KINETIC with METHOD sparse: NEURON's implicit Euler on the reaction system (genmatterms).

use std::collections::HashMap;

use crate::ast::StmtKind;
use crate::error::Result;
use crate::model::*;
use crate::ops::Bin;
use crate::vm::Src;

use super::*;

impl Lowerer<'_> {
    /// KINETIC with METHOD sparse: NEURON's implicit Euler on the reaction system.
    pub(super) fn kinetic(&mut self, f: &Func) -> Result<()> {
        let mut names: Vec<String> = Vec::new();
        let add = |n: &str, names: &mut Vec<String>| {
            if !names.iter().any(|x| x == n) {
                names.push(n.to_string());
            }
        };
        for s in &f.body {
            s.walk(&mut |x| match &x.kind {
                StmtKind::Reaction { lhs, rhs, .. } => {
                    for r in lhs.iter().chain(rhs) {
                        if self.m.var(&r.name).is_some_and(|v| v.kind == VarKind::State) {
                            add(&r.name, &mut names);
                        }
                    }
                }
                StmtKind::Flux { state, .. } => add(&state.name, &mut names),
                StmtKind::Conserve { terms, .. } => terms.iter().for_each(|r| add(&r.name, &mut names)),
                _ => {}
            });
        }
        let n = names.len();
        let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
        // Rows replaced by conservation laws.
        let mut conserve_row: Vec<Option<usize>> = vec![None; n];
        let mut n_cons = 0;
        for s in &f.body {
            if let StmtKind::Conserve { terms, .. } = &s.kind {
                let Some(r) = terms.iter().rev().map(|r| index[r.name.as_str()]).find(|&i| conserve_row[i].is_none())
                else {
                    return Err(self.err(s.pos, "more CONSERVE statements than states"));
                };
                conserve_row[r] = Some(n_cons);
                n_cons += 1;
            }
        }
        let states: Vec<VarId> = names.iter().map(|x| self.m.by_name[x]).collect();
        let (regs, saved, init, env_before) = self.begin_implicit(&states)?;
        self.scopes = vec![HashMap::new()];
        let zero = self.konst(0.0);
        let mut rhs = vec![zero; n];
        let mut mat = vec![zero; n * n];
        let mut linear = true;
        let mut cons_seen = 0;
        for s in &f.body {
            match &s.kind {
                StmtKind::Reaction { lhs, rhs: right, kf, kb } => {
                    let kf = self.expr(kf)?;
                    let kb = self.expr(kb)?;
                    let sides = [(lhs, kf), (right, kb)];
                    let mut flux = [zero; 2];
                    for (j, (side, k)) in sides.iter().enumerate() {
                        let mut term = *k;
                        for r in side.iter() {
                            let x = self.read_name(&r.name, r.pos)?;
                            for _ in 0..r.coef {
                                term = self.binop(Bin::Mul, term, x);
                            }
                        }
                        flux[j] = term;
                        if side.iter().map(|r| r.coef).sum::<u32>() > 1 {
                            linear = false;
                        }
                    }
                    let net = self.binop(Bin::Sub, flux[0], flux[1]);
                    for (j, (side, _)) in sides.iter().enumerate() {
                        for r in side.iter() {
                            let Some(&i) = index.get(r.name.as_str()) else { continue };
                            if conserve_row[i].is_some() {
                                continue;
                            }
                            let c = self.konst(r.coef as f64);
                            let t = self.binop(Bin::Mul, c, net);
                            rhs[i] =
                                if j == 0 { self.binop(Bin::Sub, rhs[i], t) } else { self.binop(Bin::Add, rhs[i], t) };
                        }
                    }
                    // Matrix: d(flux of side j)/d(state), as nocmodl's genmatterms.
                    for (j, (side, k)) in sides.iter().enumerate() {
                        for r in side.iter() {
                            let Some(&col) = index.get(r.name.as_str()) else { continue };
                            let mut term = *k;
                            if r.coef != 1 {
                                let c = self.konst(r.coef as f64);
                                term = self.binop(Bin::Mul, term, c);
                            }
                            for r1 in side.iter() {
                                let times = if std::ptr::eq(r1, r) { r1.coef - 1 } else { r1.coef };
                                let x = self.read_name(&r1.name, r1.pos)?;
                                for _ in 0..times {
                                    term = self.binop(Bin::Mul, term, x);
                                }
                            }
                            for (j1, (side1, _)) in sides.iter().enumerate() {
                                for r1 in side1.iter() {
                                    let Some(&row) = index.get(r1.name.as_str()) else { continue };
                                    if conserve_row[row].is_some() {
                                        continue;
                                    }
                                    let mut t = term;
                                    if r1.coef != 1 {
                                        let c = self.konst(r1.coef as f64);
                                        t = self.binop(Bin::Mul, c, t);
                                    }
                                    let e = &mut mat[row * n + col];
                                    let cur = *e;
                                    *e = if j == j1 {
                                        self.binop(Bin::Add, cur, t)
                                    } else {
                                        self.binop(Bin::Sub, cur, t)
                                    };
                                }
                            }
                        }
                    }
                }
                StmtKind::Flux { state, flux } => {
                    let v = self.expr(flux)?;
                    let i = index[state.name.as_str()];
                    if conserve_row[i].is_some() {
                        return Err(self.err(s.pos, format!("'{}' is conserved and has a flux", state.name)));
                    }
                    rhs[i] = self.binop(Bin::Add, rhs[i], v);
                }
                StmtKind::Conserve { terms, value } => {
                    let total = self.expr(value)?;
                    let row = (0..n).find(|&i| conserve_row[i] == Some(cons_seen)).unwrap();
                    cons_seen += 1;
                    let mut r = total;
                    for t in terms {
                        let i = index[t.name.as_str()];
                        let c = self.konst(t.coef as f64);
                        let x = Val::V(regs[i]);
                        let cx = self.binop(Bin::Mul, c, x);
                        r = self.binop(Bin::Sub, r, cx);
                        let e = mat[row * n + i];
                        mat[row * n + i] = self.binop(Bin::Add, e, c);
                    }
                    rhs[row] = r;
                }
                _ => self.stmt(s)?,
            }
        }
        // Implicit Euler rows: rhs - (x - x_old)/dt, matrix diagonal + 1/dt.
        let dt = self.dt();
        let one = self.konst(1.0);
        let rdt = self.binop(Bin::Div, one, dt);
        for i in 0..n {
            if conserve_row[i].is_some() {
                continue;
            }
            let diff = self.binop(Bin::Sub, Val::V(regs[i]), Val::V(saved[i]));
            let rate = self.binop(Bin::Mul, diff, rdt);
            rhs[i] = self.binop(Bin::Sub, rhs[i], rate);
            mat[i * n + i] = self.binop(Bin::Add, mat[i * n + i], rdt);
        }
        let resid: Vec<u32> = rhs.into_iter().map(|v| self.vreg_of(v)).collect();
        let matrix: Vec<u32> = mat.into_iter().map(|v| self.vreg_of(v)).collect();
        let before = init.clone();
        self.end_implicit(&states, regs.clone(), saved, init, env_before, resid, matrix, true, linear);
        // Second order: NEURON's Dstate = (x - x_old)/dt, then x += dt*Dstate.
        for (k, &id) in states.iter().enumerate() {
            let x = Val::V(regs[k]);
            let old = match before[k] {
                Src::V(r) => Val::V(r as u32),
                Src::S(s) => Val::S(s),
            };
            let diff = self.binop(Bin::Sub, x, old);
            let d = self.binop(Bin::Div, diff, dt);
            let x = self.second_order_step(x, d);
            self.env.insert(Key::Var(id), x);
        }
        self.scopes = vec![HashMap::new()];
        for s in &f.body {
            if !matches!(s.kind, StmtKind::Reaction { .. } | StmtKind::Flux { .. } | StmtKind::Conserve { .. }) {
                self.stmt(s)?;
            }
        }
        Ok(())
    }
}
