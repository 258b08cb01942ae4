//! TABLE: the kernels that compute a table's range and fill its points.

use std::collections::HashMap;

use crate::error::{Result, Source};
use crate::model::*;
use crate::vm::Op;

use super::*;

pub(super) fn table_build(
    m: &Model,
    layout: &Layout,
    src: &Source,
    table_of: &HashMap<String, usize>,
    f: &Func,
) -> Result<TableBuild> {
    let spec = f.table.as_ref().unwrap();
    // FROM/TO: scalar only.
    let mut l = Lowerer::new(m, layout, src, Mode::TableBuilder, false, table_of);
    let lo = l.expr(&spec.from)?;
    let hi = l.expr(&spec.to)?;
    let (Val::S(lo), Val::S(hi)) = (lo, hi) else {
        return Err(src.semantic(spec.pos, "TABLE FROM and TO must not depend on per-instance values"));
    };
    let mut range = l.finish_raw()?;
    allocate(&mut range);
    // Builder: argument in field 0, columns in fields 1..
    let mut l = Lowerer::new(m, layout, src, Mode::TableBuilder, false, table_of);
    let x = l.vreg();
    l.emit(Op::Load { dst: x as u16, field: 0 });
    let outs: Vec<Val> = if spec.names.is_empty() {
        vec![l.inline_call(f, vec![Val::V(x)], spec.pos)?]
    } else {
        l.inline_call(f, vec![Val::V(x)], spec.pos)?;
        spec.names.iter().map(|&id| l.read_var(id, spec.pos)).collect::<Result<_>>()?
    };
    for (k, v) in outs.iter().enumerate() {
        let r = l.vreg_of(*v);
        l.emit(Op::Store { field: (k + 1) as u32, src: r as u16 });
    }
    let mut builder = l.finish_raw()?;
    allocate(&mut builder);
    let depend = spec
        .depend
        .iter()
        .map(|&id| match m.vars[id].storage {
            Storage::Special(Special::Dt) => Input::Dt,
            Storage::Special(Special::Celsius) => Input::Celsius,
            Storage::Special(Special::T) => Input::T,
            Storage::Global(g) | Storage::Shadow { global: g, .. } => Input::Global(g),
            _ => unreachable!("checked: DEPEND on globals only"),
        })
        .collect();
    Ok(TableBuild {
        func: f.name.clone(),
        intervals: spec.intervals as usize,
        columns: outs.len(),
        range,
        range_slots: (lo, hi),
        builder,
        depend,
    })
}
