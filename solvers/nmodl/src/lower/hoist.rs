//! Step-invariant values of the state update, computed once per instance instead of every step.
//!
//! nrn_state recomputes, every step, values that only depend on what does not change while the
//! network runs: the cnexp factor `1 - exp(dt*a)` and steady state `inf` when the rate `a` is made
//! of PARAMETERs (the synapses' `-1/tau`), quotients of parameters, and so on. This pass splits the
//! state kernel in two: a *prepare* kernel computes those values and stores them in extra instance
//! fields ([`FieldRole::Cached`]), and the state kernel loads them. [`crate::Instances`] runs the
//! prepare kernel before the first state update and again after anything the values depend on
//! changed (a parameter, a GLOBAL, `dt`, `celsius`, initialisation).
//!
//! The split keeps every operation and its operands: a hoisted cnexp is the same multiply, exp and
//! subtractions as the fused instruction, in the same order, so the states come out bit for bit as
//! before (the VM and native-code tests compare them).
//!
//! A value is step-invariant when it is computed only from constants, scalar inputs other than `t`,
//! and fields that no kernel run during the simulation writes (PARAMETERs, ASSIGNEDs set only by
//! INITIAL, area, diam; not v, ion variables or STATEs). Kernels with instructions that have effects
//! besides their result (random numbers, played vectors, events, tables, implicit solves) are left
//! as they are.

use std::collections::HashSet;

use crate::jit::{reads, writes};
use crate::model::{Model, VarKind};
use crate::ops::{Bin, Un};
use crate::vm::{Op, Program, SOp, Src};

use super::layout::{FieldRole, Input, Kernel, Kernels, Layout};

/// Split the state kernels of `k` when that saves work: adds the cached fields to `layout` and the
/// prepare kernels to `k`. Both table variants must be the same program (the state update has no
/// TABLE lookups), so that one set of cached fields serves both.
pub(super) fn hoist_state_invariants(m: &Model, layout: &mut Layout, k: &mut Kernels) {
    #[cfg(test)]
    if DISABLED.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    if !enabled() {
        return;
    }
    if k.state[0] != k.state[1] {
        return;
    }
    let fixed = fixed_fields(m, layout, k);
    let Some(split) = split(&k.state[0], &fixed, layout.fields.len() as u32) else { return };
    for i in 0..split.cached {
        layout.fields.push((format!("_hoisted{i}"), FieldRole::Cached));
    }
    k.state = [split.state.clone(), split.state];
    k.prepare = Some([split.prepare.clone(), split.prepare]);
}

/// Per field: nothing writes it while the network runs.
fn fixed_fields(m: &Model, layout: &Layout, k: &Kernels) -> Vec<bool> {
    let mut stored = HashSet::new();
    let running = k.current.iter().chain([&k.state]).chain(k.net_receive.iter()).chain(k.net_init.iter());
    for pair in running {
        for kernel in pair {
            stored_fields(&kernel.program.ops, &mut stored);
        }
    }
    layout
        .fields
        .iter()
        .enumerate()
        .map(|(f, (_, role))| {
            let unchanging = match *role {
                FieldRole::Var(id) => {
                    let v = &m.vars[id];
                    v.ion.is_none() && !matches!(v.kind, VarKind::State | VarKind::Special(_))
                }
                FieldRole::Area | FieldRole::Diam => true,
                _ => false,
            };
            unchanging && !stored.contains(&(f as u32))
        })
        .collect()
}

pub(crate) fn stored_fields(ops: &[Op], out: &mut HashSet<u32>) {
    for op in ops {
        match op {
            Op::Store { field, .. } => {
                out.insert(*field);
            }
            Op::Implicit(i) => stored_fields(&i.program, out),
            _ => {}
        }
    }
}

/// Off when the environment variable `MIV_NMODL_HOIST` is `off` or `0` (read once per process): the cached
/// fields cost memory per instance, which a run short of memory may prefer to spend on time.
fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        let v = std::env::var("MIV_NMODL_HOIST").unwrap_or_default().to_ascii_lowercase();
        !matches!(v.as_str(), "off" | "0" | "no" | "false")
    })
}

/// Tests compile the unsplit kernels to compare with (under `vm::simd_switch_lock`).
#[cfg(test)]
pub(crate) static DISABLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

struct Split {
    prepare: Kernel,
    state: Kernel,
    /// Cached fields added, numbered from the layout's field count.
    cached: usize,
}

/// The split of one state kernel, or None when nothing worth caching is invariant.
fn split(k: &Kernel, fixed: &[bool], first_field: u32) -> Option<Split> {
    let p = &k.program;
    let fixed_slot = fixed_slots(k);
    let mut n_regs = p.n_regs;
    let mut new_reg = || {
        n_regs += 1;
        (n_regs - 1) as u16
    };
    // The constant 1 of a hoisted cnexp factor, in a new scalar slot of the prepare kernel.
    let one = p.scalars.len() as u32;
    // Rewrite hoistable cnexps into their parts and mark every register invariant or not.
    let mut ops: Vec<Op> = Vec::with_capacity(p.ops.len());
    let mut inv = vec![false; p.n_regs + 5 * p.ops.len()];
    let is_inv = |inv: &[bool], s: Src| match s {
        Src::V(r) => inv[r as usize],
        Src::S(slot) => fixed_slot[slot as usize],
    };
    for op in &p.ops {
        match op {
            Op::Load { dst, field } => {
                inv[*dst as usize] = fixed[*field as usize];
                ops.push(op.clone());
            }
            Op::Splat { dst, src } => {
                inv[*dst as usize] = fixed_slot[*src as usize];
                ops.push(op.clone());
            }
            Op::Un { dst, a, .. } => {
                inv[*dst as usize] = inv[*a as usize];
                ops.push(op.clone());
            }
            Op::Bin { dst, a, b, .. } => {
                inv[*dst as usize] = is_inv(&inv, *a) && is_inv(&inv, *b);
                ops.push(op.clone());
            }
            Op::Select { dst, c, a, b } => {
                inv[*dst as usize] = is_inv(&inv, *c) && is_inv(&inv, *a) && is_inv(&inv, *b);
                ops.push(op.clone());
            }
            Op::Cnexp { dst, x, a, inf, dt } if is_inv(&inv, *a) && fixed_slot[*dt as usize] => {
                // x + (1 - exp(dt*a))*(inf - x), the fused instruction's operations one by one.
                let (dta, e, fac, gap, inc) = (new_reg(), new_reg(), new_reg(), new_reg(), new_reg());
                ops.push(Op::Bin { op: Bin::Mul, dst: dta, a: Src::S(*dt), b: *a });
                ops.push(Op::Un { op: Un::Exp, dst: e, a: dta });
                ops.push(Op::Bin { op: Bin::Sub, dst: fac, a: Src::S(one), b: Src::V(e) });
                ops.push(Op::Bin { op: Bin::Sub, dst: gap, a: *inf, b: Src::V(*x) });
                ops.push(Op::Bin { op: Bin::Mul, dst: inc, a: Src::V(fac), b: Src::V(gap) });
                ops.push(Op::Bin { op: Bin::Add, dst: *dst, a: Src::V(*x), b: Src::V(inc) });
                for r in [dta, e, fac] {
                    inv[r as usize] = true;
                }
                let gap_inv = is_inv(&inv, *inf) && inv[*x as usize];
                inv[gap as usize] = gap_inv;
                inv[inc as usize] = gap_inv;
                inv[*dst as usize] = gap_inv;
            }
            Op::Cnexp { .. } | Op::Store { .. } => ops.push(op.clone()),
            // Instructions with effects, tables and implicit solves: leave the kernel alone.
            _ => return None,
        }
    }
    // Invariant values the per-step code reads are cached when computing them costs more than loading them
    // (a division, exp, a libm function); cheap ones (a sum of parameters) are recomputed each step, which
    // costs no memory.
    let mut cached: Vec<u16> = Vec::new();
    let mut cost = vec![0u32; inv.len()];
    let mut defined_by_computation = HashSet::new();
    for op in &ops {
        let Some(d) = writes(op) else { continue };
        if !inv[d as usize] {
            continue;
        }
        let of = |s: &Src| match s {
            Src::V(r) => cost[*r as usize],
            Src::S(_) => 0,
        };
        let c = match op {
            Op::Un { op: u, a, .. } => own_cost_un(*u) + cost[*a as usize],
            Op::Bin { op: b, a, b: c, .. } => own_cost_bin(*b) + of(a) + of(c),
            Op::Select { c, a, b, .. } => 1 + of(c) + of(a) + of(b),
            _ => 0,
        };
        cost[d as usize] = c.min(1 << 20);
        if c >= WORTH_CACHING {
            defined_by_computation.insert(d);
        }
    }
    for op in &ops {
        let per_step = match writes(op) {
            Some(d) => !inv[d as usize],
            None => true, // stores
        };
        if per_step {
            for r in reads(op).into_iter().filter_map(|s| match s {
                Src::V(r) => Some(r),
                Src::S(_) => None,
            }) {
                if defined_by_computation.contains(&r) && !cached.contains(&r) {
                    cached.push(r);
                }
            }
        }
    }
    if cached.is_empty() {
        return None;
    }
    let field_of = |r: u16| first_field + cached.iter().position(|&c| c == r).expect("cached") as u32;
    // Prepare: every invariant instruction, then the cached values stored.
    let mut prep_ops: Vec<Op> = ops.iter().filter(|op| writes(op).is_some_and(|d| inv[d as usize])).cloned().collect();
    prep_ops.extend(cached.iter().map(|&r| Op::Store { field: field_of(r), src: r }));
    crate::regalloc::eliminate_dead(&mut prep_ops);
    // State: the cached values loaded where they were computed; the rest of the invariant code dies.
    let mut state_ops: Vec<Op> = ops
        .into_iter()
        .map(|op| match writes(&op) {
            Some(d) if cached.contains(&d) => Op::Load { dst: d, field: field_of(d) },
            _ => op,
        })
        .collect();
    crate::regalloc::eliminate_dead(&mut state_ops);
    let mut prep_scalars = p.scalars.clone();
    prep_scalars.push(1.0);
    let program = |ops: Vec<Op>, scalars: Vec<f64>| Program {
        sops: p.sops.clone(),
        ops,
        n_regs,
        scalars,
        max_system: p.max_system,
        native: Default::default(),
    };
    Some(Split {
        prepare: Kernel { program: program(prep_ops, prep_scalars), inputs: k.inputs.clone() },
        state: Kernel { program: program(state_ops, p.scalars.clone()), inputs: k.inputs.clone() },
        cached: cached.len(),
    })
}

/// Cost (roughly in additions) from which an invariant value is cached rather than recomputed each step:
/// a division or more.
const WORTH_CACHING: u32 = 8;

fn own_cost_un(u: Un) -> u32 {
    match u {
        Un::Neg | Un::Not | Un::Fabs | Un::Floor | Un::Ceil => 1,
        Un::Sqrt => 10,
        Un::Exp => 20,
        _ => 40,
    }
}

fn own_cost_bin(b: Bin) -> u32 {
    match b {
        Bin::Div | Bin::Fmod => 10,
        Bin::Pow | Bin::Atan2 => 40,
        _ => 1,
    }
}

/// Per scalar slot: it does not change during a run (not `t`, nor computed from it).
fn fixed_slots(k: &Kernel) -> Vec<bool> {
    let p = &k.program;
    let mut fixed = vec![true; p.scalars.len()];
    for &(slot, input) in &k.inputs {
        if input == Input::T {
            fixed[slot as usize] = false;
        }
    }
    for op in &p.sops {
        let (dst, ok) = match *op {
            SOp::Un { dst, a, .. } => (dst, fixed[a as usize]),
            SOp::Bin { dst, a, b, .. } => (dst, fixed[a as usize] && fixed[b as usize]),
            SOp::Select { dst, c, a, b } => (dst, fixed[c as usize] && fixed[a as usize] && fixed[b as usize]),
        };
        fixed[dst as usize] = ok;
    }
    fixed
}
