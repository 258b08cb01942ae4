//! After the kernels are lowered: dead instructions and useless stores of assigned GLOBALs go,
//! and virtual registers become physical ones.

use std::collections::HashSet;

use crate::model::*;
use crate::vm::Op;

use super::*;

/// Remove dead instructions and map the virtual registers of a raw kernel to physical ones.
pub(super) fn allocate(k: &mut Kernel) {
    crate::regalloc::eliminate_dead(&mut k.program.ops);
    k.program.n_regs = crate::regalloc::allocate(&mut k.program.ops, k.program.n_regs);
}

pub(crate) fn loaded_fields(ops: &[Op], out: &mut HashSet<u32>) {
    for op in ops {
        match op {
            Op::Load { field, .. } => {
                out.insert(*field);
            }
            Op::Implicit(imp) => loaded_fields(&imp.program, out),
            _ => {}
        }
    }
}

/// A GLOBAL that the code assigns lives per instance (Storage::Shadow) only so that a kernel can
/// read back what it computed; when no kernel reads its field before assigning it, storing it is
/// useless (NEURON keeps only the last instance's value anyway), so the stores go. Returns the shadow
/// fields that remain stored.
pub(super) fn drop_dead_shadow_stores(m: &Model, k: &mut Kernels) -> HashSet<usize> {
    let mut loaded = HashSet::new();
    for kernel in all_kernels(k) {
        loaded_fields(&kernel.program.ops, &mut loaded);
    }
    let dead: HashSet<u32> = m
        .vars
        .iter()
        .filter_map(|v| match v.storage {
            Storage::Shadow { field, .. } if !loaded.contains(&(field as u32)) => Some(field as u32),
            _ => None,
        })
        .collect();
    let mut stored = HashSet::new();
    for kernel in all_kernels(k) {
        kernel.program.ops.retain(|op| !matches!(op, Op::Store { field, .. } if dead.contains(field)));
        for op in &kernel.program.ops {
            if let Op::Store { field, .. } = op {
                stored.insert(*field as usize);
            }
        }
    }
    stored
}
