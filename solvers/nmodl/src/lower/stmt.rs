//! Statements: assignments, `if` as both branches merged by `Select`, calls for their effects.

use std::collections::HashMap;

use crate::ast::{Expr, Stmt, StmtKind};
use crate::error::{Pos, Result};
use crate::model::*;
use crate::ops::{Bin, Un};
use crate::verbatim::Verbatim;
use crate::vm::Op;

use super::*;

impl Lowerer<'_> {
    pub(super) fn block(&mut self, stmts: &[Stmt]) -> Result<()> {
        self.scopes.push(HashMap::new());
        for s in stmts {
            self.stmt(s)?;
        }
        self.scopes.pop();
        Ok(())
    }

    pub(super) fn stmt(&mut self, s: &Stmt) -> Result<()> {
        match &s.kind {
            StmtKind::Local(names) => {
                for (n, _) in names {
                    let z = self.konst(0.0);
                    self.new_local(n, z);
                }
            }
            StmtKind::Assign { name, value } => {
                let v = self.expr(value)?;
                let split = if self.mode == Mode::NetReceive && crate::netrec_state_adjust() {
                    self.cnexp_split_of(name)
                } else {
                    None
                };
                let v = match split {
                    // nrn_netrec_state_adjust: the jump d becomes d + (1 - exp(a dt/2)) (inf - d).
                    Some((a, b)) => {
                        let old = self.read_name(name, s.pos)?;
                        let jump = self.binop(Bin::Sub, v, old);
                        let (av, inf) = self.cnexp_coefficients(&a, b.as_ref())?;
                        let dt = self.dt();
                        let half = self.konst(0.5);
                        let hdt = self.binop(Bin::Mul, half, dt);
                        let x = self.binop(Bin::Mul, hdt, av);
                        let e = self.unop(Un::Exp, x);
                        let one = self.konst(1.0);
                        let fac = self.binop(Bin::Sub, one, e);
                        let gap = self.binop(Bin::Sub, inf, jump);
                        let inc = self.binop(Bin::Mul, fac, gap);
                        let jump = self.binop(Bin::Add, jump, inc);
                        self.binop(Bin::Add, old, jump)
                    }
                    None => v,
                };
                self.assign(name, v, s.pos)?;
            }
            StmtKind::Call(e) => {
                let Expr::Call(n, a, p) = e else { unreachable!() };
                self.call(n, a, *p)?;
            }
            StmtKind::If { cond, then, els } => self.if_stmt(cond, then, els.as_deref())?,
            StmtKind::Block(b) => self.block(b)?,
            StmtKind::Table { .. } => {}
            StmtKind::Verbatim(_) => match self.m.verbatim.get(&s.pos) {
                Some(Verbatim::IonRead(n)) => {
                    let id = self.m.by_name[n];
                    let f = match self.m.vars[id].storage {
                        Storage::Field(f) | Storage::Shadow { field: f, .. } => f,
                        _ => unreachable!("ion variables are fields"),
                    };
                    let v = self.load_field(f);
                    self.env.insert(Key::Var(id), v);
                }
                Some(Verbatim::RandomRestart) => {
                    let mask = self.mask_reg();
                    self.emit(Op::RestartRandom { mask });
                }
                _ => {}
            },
            StmtKind::Derivative { .. }
            | StmtKind::Reaction { .. }
            | StmtKind::Flux { .. }
            | StmtKind::Conserve { .. } => return Err(self.err(s.pos, "equation outside its DERIVATIVE/KINETIC block")),
            StmtKind::Solve { .. } | StmtKind::NetInitial(_) => {
                return Err(self.err(s.pos, "statement not allowed here"))
            }
        }
        Ok(())
    }

    pub(super) fn if_stmt(&mut self, cond: &Expr, then: &[Stmt], els: Option<&[Stmt]>) -> Result<()> {
        let c = self.expr(cond)?;
        if let Some(x) = self.known(c) {
            return if x != 0.0 {
                self.block(then)
            } else if let Some(e) = els {
                self.block(e)
            } else {
                Ok(())
            };
        }
        let outer = self.mask;
        let env0 = self.env.clone();
        let m_then = self.and_mask(c);
        self.mask = Some(m_then);
        self.block(then)?;
        let env_then = std::mem::replace(&mut self.env, env0.clone());
        if let Some(e) = els {
            let nc = self.unop(Un::Not, c);
            self.mask = outer;
            let m_else = self.and_mask(nc);
            self.mask = Some(m_else);
            self.block(e)?;
        }
        let env_else = std::mem::replace(&mut self.env, env0.clone());
        self.mask = outer;
        let mut keys: Vec<Key> = env_then.keys().chain(env_else.keys()).copied().collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            if matches!(k, Key::Local(_)) && !env0.contains_key(&k) {
                continue;
            }
            let a = match env_then.get(&k) {
                Some(&v) => v,
                None => self.current(k)?,
            };
            let b = match env_else.get(&k) {
                Some(&v) => v,
                None => self.current(k)?,
            };
            let v = self.select(c, a, b);
            self.env.insert(k, v);
        }
        Ok(())
    }

    pub(super) fn current(&mut self, k: Key) -> Result<Val> {
        if let Some(&v) = self.env.get(&k) {
            return Ok(v);
        }
        match k {
            Key::Var(id) => self.read_var(id, Pos::default()),
            Key::Local(_) => unreachable!("locals always have a value"),
        }
    }
}
