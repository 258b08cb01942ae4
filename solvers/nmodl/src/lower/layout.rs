//! What lowering produces: the instance-field layout, the kernels per entry point and their scalar
//! inputs, and the table builders.

use std::collections::HashSet;

use crate::model::*;
use crate::vm::Program;

/// What a scalar slot is filled with at call time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Input {
    Global(usize),
    T,
    Dt,
    Celsius,
    /// 1 under Crank-Nicolson (NEURON's secondorder = 2), else 0.
    SecondOrder,
}

/// What an instance field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldRole {
    Var(VarId),
    /// Membrane potential, gathered before each call.
    V,
    Area,
    Diam,
    /// Total membrane current (outward positive; mA/cm2 or nA for point processes).
    Current,
    /// d(current)/dv (S/cm2 or uS).
    Conductance,
    /// d(ion current)/dv of the ion with this index into `Model::ions`.
    IonDidv(usize),
    /// A step-invariant value of the state update, filled by the prepare kernel (see `hoist`).
    Cached,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub fields: Vec<(String, FieldRole)>,
    pub v: Option<usize>,
    pub area: Option<usize>,
    pub diam: Option<usize>,
    pub current: Option<usize>,
    pub conductance: Option<usize>,
    /// (ion index, field) of the di/dv outputs.
    pub ion_didv: Vec<(usize, usize)>,
}

impl Layout {
    pub(super) fn new(m: &Model) -> Layout {
        let mut fields: Vec<(String, FieldRole)> = vec![(String::new(), FieldRole::V); m.n_fields];
        for (id, v) in m.vars.iter().enumerate() {
            if let Storage::Field(f) | Storage::Shadow { field: f, .. } = v.storage {
                fields[f] = (v.name.clone(), FieldRole::Var(id));
            }
        }
        let mut push = |name: &str, role: FieldRole| {
            fields.push((name.to_string(), role));
            Some(fields.len() - 1)
        };
        let membrane = m.kind != MechKind::Artificial;
        let v = if membrane { push("v", FieldRole::V) } else { None };
        let area = push("area", FieldRole::Area);
        let diam = push("diam", FieldRole::Diam);
        let (current, conductance) = if membrane && !m.currents.is_empty() {
            // A single current (not an ELECTRODE_CURRENT, which is negated) is its own total: the
            // current kernel leaves it in its field, which the group reads, and no copy is stored.
            let own = match m.currents[..] {
                [c] if !m.electrode_current => match m.vars[c].storage {
                    Storage::Field(f) => Some(f),
                    _ => None,
                },
                _ => None,
            };
            (own.or_else(|| push("_i", FieldRole::Current)), push("_g", FieldRole::Conductance))
        } else {
            (None, None)
        };
        let mut ion_didv = Vec::new();
        for (k, ion) in m.ions.iter().enumerate() {
            if ion.write.iter().any(|w| w.kind == IonVarKind::Current) {
                let f = push(&format!("_di{}_dv", ion.ion), FieldRole::IonDidv(k)).unwrap();
                ion_didv.push((k, f));
            }
        }
        Layout { fields, v, area, diam, current, conductance, ion_didv }
    }
    pub fn find(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|(n, _)| n == name)
    }
}

/// A kernel and how to fill its scalar inputs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Kernel {
    pub program: Program,
    pub inputs: Vec<(u32, Input)>,
}

/// One TABLE: how to build it and what it depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct TableBuild {
    pub func: String,
    pub intervals: usize,
    pub columns: usize,
    /// Computes FROM and TO into scalar slots `range_slots`.
    pub range: Kernel,
    pub range_slots: (u32, u32),
    /// Runs over the table points: reads the argument from field 0, writes column k to field k+1.
    pub builder: Kernel,
    pub depend: Vec<Input>,
}

/// Kernels with tables used (`[1]`) and not used (`[0]`), per entry point.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Kernels {
    pub init: [Kernel; 2],
    pub current: Option<[Kernel; 2]>,
    pub state: [Kernel; 2],
    pub net_receive: Option<[Kernel; 2]>,
    pub net_init: Option<[Kernel; 2]>,
    /// Fills the [`FieldRole::Cached`] fields the state kernel reads (see `hoist`).
    pub prepare: Option<[Kernel; 2]>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    pub model: Model,
    pub layout: Layout,
    pub kernels: Kernels,
    pub tables: Vec<TableBuild>,
    pub warnings: Vec<String>,
    /// Per-instance fields of assigned GLOBALs that some kernel stores (the others hold no value).
    pub stored_shadows: HashSet<usize>,
}
