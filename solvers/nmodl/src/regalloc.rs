//! Register allocation for lowered programs: the SSA virtual registers are packed into as few
//! physical registers as possible (linear scan over last uses), so a chunk's working set stays in
//! the L1 cache. A destination never shares a register with a source of the same instruction.
//! Values read inside an implicit solve's program stay live for the whole solve, because the
//! program runs many times.

use crate::vm::{Op, RandKind, Src};

/// Call `f(reg, is_def)` for every register of `op` (not of an implicit program's inner ops).
fn visit(op: &mut Op, f: &mut dyn FnMut(&mut u16, bool)) {
    let s = |x: &mut Src, f: &mut dyn FnMut(&mut u16, bool)| {
        if let Src::V(r) = x {
            f(r, false)
        }
    };
    match op {
        Op::Load { dst, .. } | Op::Splat { dst, .. } | Op::ArgLoad { dst, .. } => f(dst, true),
        Op::Store { src, .. } | Op::ArgStore { src, .. } => f(src, false),
        Op::Un { dst, a, .. } => {
            f(a, false);
            f(dst, true);
        }
        Op::Bin { dst, a, b, .. } => {
            s(a, f);
            s(b, f);
            f(dst, true);
        }
        Op::Cnexp { dst, x, a, inf, .. } => {
            f(x, false);
            s(a, f);
            s(inf, f);
            f(dst, true);
        }
        Op::Select { dst, c, a, b } => {
            s(c, f);
            s(a, f);
            s(b, f);
            f(dst, true);
        }
        Op::Table { x, dst, .. } => {
            s(x, f);
            for d in dst.iter_mut() {
                f(d, true);
            }
        }
        Op::Random { kind, dst, mask } => {
            match kind {
                RandKind::Normal(a, b) => {
                    s(a, f);
                    s(b, f);
                }
                RandKind::Exponential(a) => s(a, f),
                RandKind::Uniform => {}
            }
            if let Some(m) = mask {
                f(m, false);
            }
            f(dst, true);
        }
        Op::SetSeed { seed, mask } => {
            s(seed, f);
            if let Some(m) = mask {
                f(m, false);
            }
        }
        Op::RestartRandom { mask } => {
            if let Some(m) = mask {
                f(m, false);
            }
        }
        Op::NetSend { delay, flag, mask } => {
            s(delay, f);
            s(flag, f);
            if let Some(m) = mask {
                f(m, false);
            }
        }
        Op::NetEvent { t, mask } => {
            s(t, f);
            if let Some(m) = mask {
                f(m, false);
            }
        }
        Op::VecElement { index, etime, index_out, etime_out, mask } => {
            f(index, false);
            f(etime, false);
            if let Some(m) = mask {
                f(m, false);
            }
            f(index_out, true);
            f(etime_out, true);
        }
        Op::Implicit(imp) => {
            for x in imp.init.iter_mut() {
                s(x, f);
            }
            for r in imp.states.iter_mut().chain(imp.saved.iter_mut()) {
                f(r, true);
            }
            // Residual and matrix registers are written by the program, read by the solver.
            for r in imp.resid.iter_mut().chain(imp.matrix.iter_mut()) {
                f(r, false);
            }
        }
    }
}

#[derive(Clone, Copy)]
struct Range {
    def: usize,
    last: usize,
}

/// Number positions depth-first; an implicit op takes a start and an end position around its
/// program. Returns the end position of each implicit op, indexed by its start.
fn liveness(ops: &mut [Op], pos: &mut usize, ranges: &mut [Option<Range>], outer_start: &mut Vec<usize>) {
    for op in ops.iter_mut() {
        let p = *pos;
        *pos += 1;
        let record = |r: &mut u16, def: bool, ranges: &mut [Option<Range>]| {
            let e = &mut ranges[*r as usize];
            match e {
                None => *e = Some(Range { def: p, last: p }),
                Some(x) => {
                    if def && p < x.def {
                        x.def = p;
                    }
                    x.last = x.last.max(p);
                }
            }
        };
        if let Op::Implicit(imp) = op {
            // init operands are read at the start.
            for x in imp.init.iter_mut() {
                if let Src::V(r) = x {
                    record(r, false, ranges);
                }
            }
            for r in imp
                .states
                .iter_mut()
                .chain(imp.saved.iter_mut())
                .chain(imp.resid.iter_mut())
                .chain(imp.matrix.iter_mut())
            {
                record(r, true, ranges);
            }
            let start = p;
            outer_start.push(start);
            liveness(&mut imp.program, pos, ranges, outer_start);
            outer_start.pop();
            let end = *pos;
            *pos += 1;
            // Everything the program reads that was defined before it, and the solver's own
            // registers, must survive every iteration.
            let mut extend = |r: &mut u16, _def: bool| {
                if let Some(x) = &mut ranges[*r as usize] {
                    if x.def <= start {
                        x.last = x.last.max(end);
                    }
                }
            };
            for inner in imp.program.iter_mut() {
                visit_deep(inner, &mut extend);
            }
            for r in imp
                .states
                .iter_mut()
                .chain(imp.saved.iter_mut())
                .chain(imp.resid.iter_mut())
                .chain(imp.matrix.iter_mut())
            {
                extend(r, false);
            }
        } else {
            visit(op, &mut |r, def| record(r, def, ranges));
        }
    }
}

fn visit_deep(op: &mut Op, f: &mut dyn FnMut(&mut u16, bool)) {
    visit(op, f);
    if let Op::Implicit(imp) = op {
        for inner in imp.program.iter_mut() {
            visit_deep(inner, f);
        }
    }
}

struct Alloc {
    phys: Vec<Option<u16>>,
    free: Vec<u16>,
    n: u16,
    by_last: Vec<Vec<u16>>,
}

impl Alloc {
    fn get(&mut self, v: u16) -> u16 {
        if let Some(p) = self.phys[v as usize] {
            return p;
        }
        let p = self.free.pop().unwrap_or_else(|| {
            self.n += 1;
            self.n - 1
        });
        self.phys[v as usize] = Some(p);
        p
    }
    fn release(&mut self, pos: usize) {
        if let Some(list) = self.by_last.get(pos) {
            for &v in list {
                if let Some(p) = self.phys[v as usize] {
                    self.free.push(p);
                }
            }
        }
    }
}

fn assign(ops: &mut [Op], pos: &mut usize, a: &mut Alloc) {
    for op in ops.iter_mut() {
        let p = *pos;
        *pos += 1;
        if let Op::Implicit(imp) = op {
            for x in imp.init.iter_mut() {
                if let Src::V(r) = x {
                    *r = a.get(*r);
                }
            }
            for r in imp
                .states
                .iter_mut()
                .chain(imp.saved.iter_mut())
                .chain(imp.resid.iter_mut())
                .chain(imp.matrix.iter_mut())
            {
                *r = a.get(*r);
            }
            a.release(p);
            assign(&mut imp.program, pos, a);
            let end = *pos;
            *pos += 1;
            a.release(end);
        } else {
            // Sources first (they already have registers), then destinations, then free.
            let mut defs = Vec::new();
            visit(op, &mut |r, def| {
                if def {
                    defs.push(*r);
                }
            });
            for d in defs {
                a.get(d);
            }
            visit(op, &mut |r, _| *r = a.phys[*r as usize].expect("defined before use"));
            a.release(p);
        }
    }
}

/// Drop instructions without effects whose results nothing reads (e.g. the negated condition of an `if`
/// whose else branch has no effects), repeatedly.
pub fn eliminate_dead(ops: &mut Vec<Op>) {
    loop {
        let mut used = std::collections::HashSet::new();
        for op in ops.iter_mut() {
            visit_deep(op, &mut |r, def| {
                if !def {
                    used.insert(*r);
                }
            });
        }
        let before = ops.len();
        ops.retain_mut(|op| {
            let pure = matches!(
                op,
                Op::Load { .. }
                    | Op::Splat { .. }
                    | Op::Un { .. }
                    | Op::Bin { .. }
                    | Op::Select { .. }
                    | Op::Cnexp { .. }
                    | Op::Table { .. }
                    | Op::ArgLoad { .. }
            );
            if !pure {
                return true;
            }
            let mut any = false;
            visit(op, &mut |r, def| any |= def && used.contains(r));
            any
        });
        if ops.len() == before {
            return;
        }
    }
}

/// Rewrite `ops` from `n_virtual` virtual registers to physical ones; returns how many are used.
pub fn allocate(ops: &mut [Op], n_virtual: usize) -> usize {
    let mut ranges = vec![None; n_virtual];
    let mut pos = 0;
    liveness(ops, &mut pos, &mut ranges, &mut Vec::new());
    let mut by_last = vec![Vec::new(); pos + 1];
    for (v, r) in ranges.iter().enumerate() {
        if let Some(r) = r {
            by_last[r.last].push(v as u16);
        }
    }
    let mut a = Alloc { phys: vec![None; n_virtual], free: Vec::new(), n: 0, by_last };
    let mut pos = 0;
    assign(ops, &mut pos, &mut a);
    a.n as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Bin, Un};

    #[test]
    fn reuses_dead_registers_and_never_aliases_dst_with_a_source() {
        // v0 = load; v1 = exp v0; v2 = v1 + v0; v3 = exp v2; store v3
        let mut ops = vec![
            Op::Load { dst: 0, field: 0 },
            Op::Un { op: Un::Exp, dst: 1, a: 0 },
            Op::Bin { op: Bin::Add, dst: 2, a: Src::V(1), b: Src::V(0) },
            Op::Un { op: Un::Exp, dst: 3, a: 2 },
            Op::Store { field: 1, src: 3 },
        ];
        let n = allocate(&mut ops, 4);
        assert_eq!(n, 3);
        for op in &mut ops {
            let mut defs = vec![];
            let mut uses = vec![];
            visit(op, &mut |r, d| if d { defs.push(*r) } else { uses.push(*r) });
            for d in &defs {
                assert!(!uses.contains(d), "{op:?}");
            }
        }
    }
}
