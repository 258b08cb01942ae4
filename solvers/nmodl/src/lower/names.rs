//! Names: locals and their scopes, model variables loaded from fields on first read, assignment.

use crate::error::{Pos, Result};
use crate::model::*;
use crate::vm::Op;

use super::*;

impl Lowerer<'_> {
    pub(super) fn local_of(&self, name: &str) -> Option<u32> {
        for s in self.scopes.iter().rev() {
            if let Some(&id) = s.get(name) {
                return Some(id);
            }
        }
        if let Some((n, id)) = self.results.last() {
            if n == name {
                return Some(*id);
            }
        }
        None
    }

    pub(super) fn new_local(&mut self, name: &str, value: Val) -> u32 {
        let id = self.n_locals;
        self.n_locals += 1;
        self.scopes.last_mut().unwrap().insert(name.to_string(), id);
        self.env.insert(Key::Local(id), value);
        id
    }

    pub(super) fn load_field(&mut self, field: usize) -> Val {
        let depth = self.ops.len();
        if let Some(&(v, _)) = self.entry.get(&field) {
            return v;
        }
        let d = self.vreg();
        self.emit(Op::Load { dst: d as u16, field: field as u32 });
        self.entry.insert(field, (Val::V(d), depth));
        Val::V(d)
    }

    pub(super) fn read_var(&mut self, id: VarId, pos: Pos) -> Result<Val> {
        if let Some(&v) = self.env.get(&Key::Var(id)) {
            return Ok(v);
        }
        let var = &self.m.vars[id];
        Ok(match var.storage {
            Storage::Const(c) => self.konst(c),
            Storage::Special(Special::T) => self.input(Input::T),
            Storage::Special(Special::Dt) => self.dt(),
            Storage::Special(Special::Celsius) => self.input(Input::Celsius),
            Storage::Special(s) => {
                if self.mode == Mode::TableBuilder {
                    return Err(
                        self.err(pos, format!("a TABLE body cannot read the per-instance value '{}'", var.name))
                    );
                }
                let f = match s {
                    Special::V => self.layout.v,
                    Special::Area => self.layout.area,
                    _ => self.layout.diam,
                };
                match f {
                    Some(f) => self.load_field(f),
                    None => return Err(self.err(pos, format!("'{}' does not exist in an ARTIFICIAL_CELL", var.name))),
                }
            }
            Storage::Global(g) => self.input(Input::Global(g)),
            Storage::Shadow { field, global } => {
                if self.mode == Mode::TableBuilder {
                    self.input(Input::Global(global))
                } else {
                    self.load_field(field)
                }
            }
            Storage::Field(f) => {
                if self.mode == Mode::TableBuilder {
                    return Err(self.src.unsupported(
                        pos,
                        format!(
                            "a TABLE body reads the per-instance variable '{}' (NEURON would tabulate with an arbitrary instance's value)",
                            var.name
                        ),
                    ));
                }
                self.load_field(f)
            }
        })
    }

    pub(super) fn read_name(&mut self, name: &str, pos: Pos) -> Result<Val> {
        if let Some(id) = self.local_of(name) {
            return Ok(self.env[&Key::Local(id)]);
        }
        if self.mode == Mode::NetReceive && name == "flag" {
            return Ok(self.arg_value(self.args.len()));
        }
        if let Some(&id) = self.m.by_name.get(name) {
            return self.read_var(id, pos);
        }
        match name {
            "PI" => Ok(self.konst(std::f64::consts::PI)),
            "E" => Ok(self.konst(std::f64::consts::E)),
            _ => Err(self.err(pos, format!("undeclared name '{name}'"))),
        }
    }

    pub(super) fn arg_value(&mut self, k: usize) -> Val {
        let d = self.vreg();
        self.emit(Op::ArgLoad { dst: d as u16, arg: k as u16 });
        Val::V(d)
    }

    pub(super) fn assign(&mut self, name: &str, v: Val, pos: Pos) -> Result<()> {
        if let Some(id) = self.local_of(name) {
            self.env.insert(Key::Local(id), v);
            return Ok(());
        }
        match self.m.by_name.get(name) {
            Some(&id) => {
                self.env.insert(Key::Var(id), v);
                Ok(())
            }
            None => Err(self.err(pos, format!("assignment to undeclared name '{name}'"))),
        }
    }
}
