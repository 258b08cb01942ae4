//! Lowering: the checked model becomes register programs ([`crate::vm::Program`]), one per NEURON
//! entry point (nrn_init, nrn_cur, nrn_state, NET_RECEIVE and its INITIAL, table builders).
//!
//! The programs are straight-line SSA: FUNCTION and PROCEDURE calls are inlined, `if` evaluates
//! both branches and merges assigned variables with `Select`, per-instance variables are loaded
//! the first time a kernel reads them and stored once at its end. Values that only depend on
//! constants and globals become scalar instructions run once per call. The code follows nocmodl
//! closely: the current is evaluated at v + 0.001 and at v for di/dv, cnexp uses nocmodl's symbolic
//! split, derivimplicit iterates the DERIVATIVE block with NEURON's Newton solver, KINETIC blocks
//! become NEURON's sparse Newton matrix (with CONSERVE rows), and TABLE calls become lookups.
//!
//! The pipeline ([`lower`]), one pass per file:
//!
//! 1. [`layout`]: the instance fields (variables, v, area, diam, outputs);
//! 2. [`kernels`]: each entry point lowered twice (tables off and on) by a [`state::Lowerer`]:
//!    statements ([`stmt`]), expressions with calls inlined ([`inline`]), names ([`names`]), every
//!    instruction emitted through constant folding and common-subexpression elimination ([`fold`]),
//!    and SOLVE statements by their method ([`solve`]: [`cnexp`], [`euler`], [`derivimplicit`] and
//!    [`sparse`] over the Newton frame of [`implicit`]);
//! 3. [`finish`]: dead instructions and useless GLOBAL stores removed;
//! 4. [`hoist`]: step-invariant values of the state update moved to a prepare kernel;
//! 5. registers allocated ([`finish`]) and native code for the bulk kernels ([`crate::jit`]);
//! 6. [`tables`]: the range and point kernels of each TABLE.

mod cnexp;
mod derivimplicit;
mod euler;
mod finish;
mod fold;
pub(crate) mod hoist;
mod implicit;
mod inline;
mod kernels;
mod layout;
mod names;
mod solve;
mod sparse;
mod state;
mod stmt;
mod tables;

use std::collections::HashMap;

use crate::error::{Result, Source};
use crate::model::Model;

pub(crate) use finish::loaded_fields;
use finish::{allocate, drop_dead_shadow_stores};
pub use layout::{Compiled, FieldRole, Input, Kernel, Kernels, Layout, TableBuild};
use state::{Key, Lowerer, Mode, Pure, Val, SCALAR_LIMIT, VREG_LIMIT};
use tables::table_build;

pub fn lower(m: Model, file_source: &Source) -> Result<Compiled> {
    let mut layout = Layout::new(&m);
    let mut table_of = HashMap::new();
    for f in &m.funcs {
        if f.table.is_some() {
            let k = table_of.len();
            table_of.insert(f.name.clone(), k);
        }
    }
    let mut warnings: Vec<String> = m.warnings.iter().map(|d| d.to_string()).collect();
    let both =
        |which: &dyn Fn(&mut Lowerer) -> Result<()>, mode: Mode, warnings: &mut Vec<String>| -> Result<[Kernel; 2]> {
            let mut out: [Kernel; 2] = Default::default();
            for (k, usetable) in [false, true].into_iter().enumerate() {
                let mut l = Lowerer::new(&m, &layout, file_source, mode, usetable, &table_of);
                which(&mut l)?;
                if usetable {
                    warnings.extend(l.warnings.iter().cloned());
                }
                out[k] = l.finish_raw()?;
            }
            Ok(out)
        };
    let init = both(&|l| l.init_kernel(), Mode::Kernel, &mut warnings)?;
    let current =
        if layout.current.is_some() { Some(both(&|l| l.current_kernel(), Mode::Kernel, &mut warnings)?) } else { None };
    let state = both(&|l| l.state_kernel(), Mode::Kernel, &mut warnings)?;
    let net_receive = match &m.net_receive {
        Some(nr) => Some(both(&|l| l.net_kernel(&nr.body), Mode::NetReceive, &mut warnings)?),
        None => None,
    };
    let net_init = match m.net_receive.as_ref().and_then(|nr| nr.initial.as_ref()) {
        Some(b) => Some(both(&|l| l.net_kernel(b), Mode::NetReceive, &mut warnings)?),
        None => None,
    };
    let mut kernels = Kernels { init, current, state, net_receive, net_init, prepare: None };
    for k in all_kernels(&mut kernels) {
        crate::regalloc::eliminate_dead(&mut k.program.ops);
    }
    let stored_shadows = drop_dead_shadow_stores(&m, &mut kernels);
    hoist::hoist_state_invariants(&m, &mut layout, &mut kernels);
    all_kernels(&mut kernels).into_iter().for_each(allocate);
    // The bulk entry points run over many instances at once: worth native code.
    let bulk = [
        ("INITIAL", Some(&mut kernels.init)),
        ("BREAKPOINT", kernels.current.as_mut()),
        ("SOLVE", Some(&mut kernels.state)),
        ("SOLVE invariants", kernels.prepare.as_mut()),
    ];
    for (entry, pair) in bulk {
        for (usetable, k) in pair.into_iter().flat_map(|p| p.iter_mut().enumerate()) {
            let code = crate::jit::compile(&k.program);
            if let Some(c) = &code {
                let tables = if usetable == 1 { " (tables)" } else { "" };
                crate::jit::name_for_profilers(c, &format!("{} {entry}{tables}", m.name));
            }
            k.program.native = crate::jit::Native(code);
        }
    }
    let mut tables = vec![None; table_of.len()];
    for f in &m.funcs {
        if let Some(&k) = table_of.get(&f.name) {
            tables[k] = Some(table_build(&m, &layout, file_source, &table_of, f)?);
        }
    }
    warnings.sort();
    warnings.dedup();
    Ok(Compiled {
        kernels,
        tables: tables.into_iter().map(|t| t.expect("every table built")).collect(),
        layout,
        model: m,
        warnings,
        stored_shadows,
    })
}

fn all_kernels(k: &mut Kernels) -> Vec<&mut Kernel> {
    let mut v: Vec<&mut Kernel> = Vec::new();
    let pairs = [
        Some(&mut k.init),
        k.current.as_mut(),
        Some(&mut k.state),
        k.net_receive.as_mut(),
        k.net_init.as_mut(),
        k.prepare.as_mut(),
    ];
    for pair in pairs.into_iter().flatten() {
        v.extend(pair.iter_mut());
    }
    v
}
