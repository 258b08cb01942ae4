//! A compiled `.mod` mechanism as a cell-group [`miv_solvers::Mechanism`], so a group runs it like
//! the hand-written kernels: the adapter gathers v and ion values from the group's arrays into the
//! instance fields, runs the NMODL entry point over all instances, and scatters currents,
//! conductances, ion currents and written concentrations back. One adapter holds every instance of
//! one mechanism type in the group.

use std::sync::Arc;

use miv_solvers::mechanism::{Cx, EventCx, IonUse, KernelResult, MechanismInfo as GroupInfo, Outbox, ParamSpec, Site};
use miv_solvers::{Catalogue, MechanismKind};

use crate::library::Library;
use crate::mechanism::{Context, Instances, Mechanism};
use crate::model::{IonVarKind, MechKind};
use crate::vm::Emitted;

/// One ion variable to move between the group's ion arrays and an instance field.
#[derive(Debug, Clone, Copy)]
struct Link {
    /// Index into the mechanism's USEION list (= `Site::ions` / `Cx::ion_ids` entry).
    ion: usize,
    kind: IonVarKind,
    field: usize,
    gathered: bool,
    written: bool,
}

pub struct ModMechanism {
    instances: Instances,
    info: GroupInfo,
    /// Field of each `info.params` entry, and of each `info.states` entry.
    param_fields: Vec<usize>,
    state_fields: Vec<usize>,
    links: Vec<Link>,
    didv: Vec<(usize, usize)>,
    node: Vec<u32>,
    scale: Vec<f64>,
    ion_index: Vec<Vec<u32>>,
    events: Vec<Emitted>,
    point: bool,
    electrode: bool,
    /// `v` is gathered again for the state update (see [`Mechanism::reads_v_after_current`]).
    v_after_current: bool,
    /// Density mechanisms: the runs of instances on consecutive nodes with consecutive ion instances
    /// (first instance of each run, then the instance count). The group places density instances in
    /// node order, so their currents are summed by loops over slices.
    runs: Vec<u32>,
    /// Largest node and ion instance (per ion) of any instance: bounds every index the gathers and
    /// sums use.
    max_node: u32,
    max_ion: Vec<u32>,
}

/// `dst[i] = src[idx[i]]` for every i; `max` bounds the indices. Vectorised (AVX-512 and AVX2
/// gathers where the CPU has them).
fn gather(dst: &mut [f64], src: &[f64], idx: &[u32], max: u32) {
    assert!(dst.len() <= idx.len() && (dst.is_empty() || (max as usize) < src.len()));
    gather_unchecked(dst, src, &idx[..dst.len()]);
}

miv_solvers::multiversion! {
    /// [`gather`] once its indices are known to be in bounds (only `gather` calls it).
    fn gather_unchecked / gather_unchecked_generic(dst: &mut [f64], src: &[f64], idx: &[u32]) {
        for (d, &k) in dst.iter_mut().zip(idx) {
            // SAFETY: every index is at most the maximum `gather` checked against `src.len()`.
            *d = unsafe { *src.get_unchecked(k as usize) };
        }
    }
}

/// The group's description of a compiled mechanism: RANGE PARAMETERs are its parameters, STATEs
/// and RANGE ASSIGNEDs its readable variables, GLOBAL PARAMETERs (and `usetable`) its globals.
fn group_info(m: &Mechanism) -> (GroupInfo, Vec<usize>, Vec<usize>) {
    let i = m.info();
    let mut params = Vec::new();
    let mut param_fields = Vec::new();
    let mut globals = Vec::new();
    for p in i.parameters.iter() {
        let spec = ParamSpec::new(&p.name, p.default, p.units.as_deref().unwrap_or(""));
        match (p.per_instance, m.field(&p.name)) {
            (true, Some(f)) => {
                params.push(spec);
                param_fields.push(f);
            }
            _ => globals.push(spec),
        }
    }
    for a in i.assigned.iter().filter(|a| !a.per_instance) {
        globals.push(ParamSpec::new(&a.name, a.default, a.units.as_deref().unwrap_or("")));
    }
    if m.has_tables() {
        globals.push(ParamSpec::new("usetable", 1.0, ""));
    }
    let mut states = Vec::new();
    let mut state_fields = Vec::new();
    let readable = i.states.iter().cloned().chain(i.assigned.iter().filter(|a| a.per_instance).map(|a| a.name.clone()));
    for s in readable {
        if let Some(f) = m.field(&s) {
            states.push(s);
            state_fields.push(f);
        }
    }
    let ions = i
        .ions
        .iter()
        .map(|ion| {
            let has = |k: IonVarKind, w: bool| {
                ion.fields.iter().any(|f| f.kind == k && (if w { f.written } else { f.gathered }))
            };
            let conc = |w: bool| has(IonVarKind::Inside, w) || has(IonVarKind::Outside, w);
            IonUse {
                ion: ion.name.clone(),
                read_erev: has(IonVarKind::Reversal, false),
                write_erev: has(IonVarKind::Reversal, true),
                write_current: has(IonVarKind::Current, true),
                read_conc: conc(false),
                write_conc: conc(true),
                valence: ion.valence_declared.then_some(ion.valence),
            }
        })
        .collect();
    let kind = match i.kind {
        MechKind::Density => MechanismKind::Density,
        MechKind::Point => MechanismKind::Point,
        MechKind::Artificial => MechanismKind::Artificial,
    };
    let info = GroupInfo {
        name: i.name.clone(),
        kind,
        params,
        states,
        globals,
        ions,
        electrode: i.electrode_current,
        weights: i.net_receive_args.unwrap_or(0),
    };
    (info, param_fields, state_fields)
}

impl ModMechanism {
    pub fn new(mech: &Arc<Mechanism>) -> ModMechanism {
        let (info, param_fields, state_fields) = group_info(mech);
        let mi = mech.info();
        let mut links = Vec::new();
        let mut didv = Vec::new();
        for (k, ion) in mi.ions.iter().enumerate() {
            for f in &ion.fields {
                links.push(Link { ion: k, kind: f.kind, field: f.field, gathered: f.gathered, written: f.written });
            }
            if let Some(f) = ion.didv_field {
                didv.push((k, f));
            }
        }
        ModMechanism {
            instances: mech.instances(0),
            info,
            param_fields,
            state_fields,
            links,
            didv,
            node: Vec::new(),
            scale: Vec::new(),
            ion_index: vec![Vec::new(); mi.ions.len()],
            events: Vec::new(),
            point: mi.kind != MechKind::Density,
            electrode: mi.electrode_current,
            v_after_current: mech.reads_v_after_current(),
            runs: vec![0],
            max_node: 0,
            max_ion: vec![0; mi.ions.len()],
        }
    }

    pub fn instances(&self) -> &Instances {
        &self.instances
    }

    fn ctx(cx: &Cx) -> Context {
        Context { t: cx.t, dt: cx.dt, celsius: cx.celsius, second_order: cx.second_order }
    }

    /// v (if `with_v`) and the gathered ion values into the instance fields.
    fn gather(&mut self, cx: &mut Cx, with_v: bool) {
        let n = self.node.len();
        if let Some(f) = self.instances.mechanism().info().v_field.filter(|_| with_v) {
            gather(&mut self.instances.column_mut(f)[..n], cx.v, &self.node, self.max_node);
        }
        for l in &self.links {
            if !l.gathered {
                continue;
            }
            let idx = &self.ion_index[l.ion];
            let ion = cx.ion(l.ion);
            let src = match l.kind {
                IonVarKind::Reversal => &ion.erev,
                IonVarKind::Inside => &ion.conc_in,
                IonVarKind::Outside => &ion.conc_out,
                IonVarKind::Current => &ion.cur,
            };
            gather(&mut self.instances.column_mut(l.field)[..n], src, idx, self.max_ion[l.ion]);
        }
    }

    /// The current terms of a density mechanism (not an electrode) into the node sums and ion arrays, run
    /// by run: per instance the operations of the node loop of [`Mechanism::current`] (the factor there is
    /// 1, and `x * 1.0` is `x`).
    fn accumulate_runs(&self, cx: &mut Cx, cur: usize, cond: usize) {
        let (cur, cond) = (self.instances.column(cur), self.instances.column(cond));
        for w in self.runs.windows(2) {
            let (i0, i1) = (w[0] as usize, w[1] as usize);
            let n0 = self.node[i0] as usize;
            let len = i1 - i0;
            let (rhs, d) = (&mut cx.rhs[n0..n0 + len], &mut cx.d[n0..n0 + len]);
            for ((r, g), (&c, &dc)) in rhs.iter_mut().zip(d.iter_mut()).zip(cur[i0..i1].iter().zip(&cond[i0..i1])) {
                *r -= c;
                *g += dc;
            }
        }
        for l in &self.links {
            if l.kind != IonVarKind::Current || !l.written {
                continue;
            }
            let didv = self.didv.iter().find(|(k, _)| *k == l.ion).map(|&(_, f)| self.instances.column(f));
            let col = self.instances.column(l.field);
            let idx = &self.ion_index[l.ion];
            let ion = cx.ion(l.ion);
            for w in self.runs.windows(2) {
                let (i0, i1) = (w[0] as usize, w[1] as usize);
                let (k0, len) = (idx[i0] as usize, i1 - i0);
                for (c, &x) in ion.cur[k0..k0 + len].iter_mut().zip(&col[i0..i1]) {
                    *c += x;
                }
                if let Some(dd) = didv {
                    for (c, &x) in ion.dcurdv[k0..k0 + len].iter_mut().zip(&dd[i0..i1]) {
                        *c += x;
                    }
                }
            }
        }
    }

    /// Written concentrations and reversal potentials back to the ion arrays.
    fn scatter(&mut self, cx: &mut Cx) {
        for l in &self.links {
            if !l.written || l.kind == IonVarKind::Current {
                continue;
            }
            let idx = &self.ion_index[l.ion];
            let col = self.instances.column(l.field);
            let ion = cx.ion(l.ion);
            let dst = match l.kind {
                IonVarKind::Reversal => &mut ion.erev,
                IonVarKind::Inside => &mut ion.conc_in,
                IonVarKind::Outside => &mut ion.conc_out,
                IonVarKind::Current => unreachable!(),
            };
            for (c, &k) in col.iter().zip(idx) {
                dst[k as usize] = *c;
            }
        }
    }

    fn post(events: &mut Vec<Emitted>, t: f64, out: &mut Outbox) {
        for e in events.drain(..) {
            match e {
                Emitted::SelfEvent { instance, delay, flag } => out.net_send(instance, t + delay, flag),
                Emitted::Spike { instance, t } => out.net_event(instance, t),
            }
        }
    }
}

impl miv_solvers::Mechanism for ModMechanism {
    fn info(&self) -> &GroupInfo {
        &self.info
    }

    fn len(&self) -> usize {
        self.node.len()
    }

    fn instance_node(&self, instance: usize) -> u32 {
        self.node[instance]
    }

    fn add_instance(&mut self, site: &Site, params: &[f64]) {
        let i = self.node.len();
        if !self.point {
            let follows = |prev: u32, next: u32| prev.checked_add(1) == Some(next);
            let extends = i > 0
                && follows(self.node[i - 1], site.node)
                && self.ion_index.iter().zip(&site.ions).all(|(idx, &k)| follows(idx[i - 1], k));
            self.runs.pop();
            if !extends {
                self.runs.push(i as u32);
            }
            self.runs.push(i as u32 + 1);
        }
        self.node.push(site.node);
        self.max_node = self.max_node.max(site.node);
        self.scale.push(site.scale);
        for (k, &x) in site.ions.iter().enumerate() {
            self.ion_index[k].push(x);
            self.max_ion[k] = self.max_ion[k].max(x);
        }
        self.instances.resize(i + 1);
        for (k, &f) in self.param_fields.iter().enumerate() {
            if let Some(&x) = params.get(k) {
                self.instances.column_mut(f)[i] = x;
            }
        }
        let info = self.instances.mechanism().info();
        for (field, value) in [(info.area_field, site.area), (info.diam_field, site.diam)] {
            if let Some(f) = field {
                self.instances.column_mut(f)[i] = value;
            }
        }
        let key = [0x6e6d_6f64, site.cell, i as u32, 0];
        self.instances.set_random_stream(i, key);
    }

    fn param(&self, instance: usize, index: usize) -> f64 {
        self.instances.column(self.param_fields[index])[instance]
    }

    fn shrink_to_fit(&mut self) {
        self.instances.shrink_to_fit();
        self.node.shrink_to_fit();
        self.scale.shrink_to_fit();
        self.runs.shrink_to_fit();
        self.ion_index.iter_mut().for_each(Vec::shrink_to_fit);
    }

    fn step_arithmetic(&self) -> Option<miv_solvers::StepArithmetic> {
        Some(self.instances.step_arithmetic())
    }

    fn heap_bytes(&self) -> usize {
        self.instances.heap_bytes()
            + self.node.capacity() * 4
            + self.runs.capacity() * 4
            + self.scale.capacity() * 8
            + self.ion_index.iter().map(|v| v.capacity() * 4).sum::<usize>()
    }

    fn set_param(&mut self, instance: usize, index: usize, value: f64) {
        let f = self.param_fields[index];
        self.instances.column_mut(f)[instance] = value;
    }

    fn state(&self, instance: usize, index: usize) -> f64 {
        self.instances.column(self.state_fields[index])[instance]
    }

    fn set_state(&mut self, instance: usize, index: usize, value: f64) -> std::result::Result<(), String> {
        let f = self.state_fields[index];
        self.instances.column_mut(f)[instance] = value;
        Ok(())
    }

    fn global(&self, index: usize) -> f64 {
        self.instances.global(&self.info.globals[index].name).unwrap_or(f64::NAN)
    }

    fn set_global(&mut self, index: usize, value: f64) {
        let name = self.info.globals[index].name.clone();
        let _ = self.instances.set_global(&name, value);
    }

    /// `"times"`: the event times a VecStim-like mechanism plays.
    fn set_array(&mut self, instance: usize, name: &str, values: &[f64]) -> std::result::Result<(), String> {
        if !self.instances.mechanism().plays_vectors() {
            return Err(format!("mechanism {:?} takes no array {name:?}", self.info.name));
        }
        if name != "times" {
            return Err(format!("{} takes the array \"times\", not {name:?}", self.info.name));
        }
        self.instances.set_vector(instance, values.to_vec());
        Ok(())
    }

    /// The key of the instance's random stream (normrand, Gfluct-style noise; NEURON's
    /// `noiseFromRandom123(id1, id2, id3)`).
    fn set_random_stream(&mut self, instance: usize, key: [u32; 4]) -> std::result::Result<(), String> {
        self.instances.set_random_stream(instance, key);
        Ok(())
    }

    fn initialize(&mut self, cx: &mut Cx) -> KernelResult {
        self.gather(cx, true);
        let mut events = std::mem::take(&mut self.events);
        let r = self.instances.initialize(&Self::ctx(cx), &mut events);
        self.scatter(cx);
        Self::post(&mut events, cx.t, cx.out);
        self.events = events;
        r.map_err(|e| e.to_string())
    }

    fn current(&mut self, cx: &mut Cx) -> KernelResult {
        self.gather(cx, true);
        self.instances.current(&Self::ctx(cx)).map_err(|e| e.to_string())?;
        let info = self.instances.mechanism().info();
        let (Some(fi), Some(fg)) = (info.current_field, info.conductance_field) else { return Ok(()) };
        if !self.point && !self.electrode {
            self.accumulate_runs(cx, fi, fg);
            self.scatter(cx);
            return Ok(());
        }
        let (cur, cond) = (self.instances.column(fi), self.instances.column(fg));
        let n = self.node.len();
        let (node, scale, cur, cond) = (&self.node[..n], &self.scale[..n], &cur[..n], &cond[..n]);
        let point = self.point;
        if self.electrode {
            for i in 0..n {
                let s = if point { scale[i] } else { 1.0 };
                cx.add_electrode(node[i] as usize, -cur[i] * s, -cond[i] * s);
            }
        } else {
            // A point process (density mechanisms took the first branch): one instance after the other, in
            // instance order (a point process's synapses come in synapse-id order: consecutive instances
            // rarely share a node).
            let (rhs, d) = (&mut *cx.rhs, &mut *cx.d);
            assert!(n == 0 || (self.max_node as usize) < rhs.len().min(d.len()));
            for i in 0..n {
                let nd = node[i] as usize;
                let s = scale[i];
                // SAFETY: nd <= max_node < len (asserted above).
                unsafe {
                    *rhs.get_unchecked_mut(nd) -= cur[i] * s;
                    *d.get_unchecked_mut(nd) += cond[i] * s;
                }
            }
        }
        for l in &self.links {
            if l.kind != IonVarKind::Current || !l.written {
                continue;
            }
            let didv = self.didv.iter().find(|(k, _)| *k == l.ion).map(|&(_, f)| self.instances.column(f));
            let col = self.instances.column(l.field);
            let ion = cx.ion(l.ion);
            for (i, &k) in self.ion_index[l.ion].iter().enumerate() {
                let s = if self.point { scale[i] } else { 1.0 };
                ion.cur[k as usize] += col[i] * s;
                if let Some(d) = didv {
                    ion.dcurdv[k as usize] += d[i] * s;
                }
            }
        }
        self.scatter(cx);
        Ok(())
    }

    fn update_state(&mut self, cx: &mut Cx) -> KernelResult {
        self.gather(cx, self.v_after_current);
        self.instances.advance_state(&Self::ctx(cx)).map_err(|e| e.to_string())?;
        self.scatter(cx);
        Ok(())
    }

    fn net_receive(&mut self, instance: usize, weights: &mut [f64], flag: f64, cx: &mut EventCx) -> KernelResult {
        let mut events = std::mem::take(&mut self.events);
        let r = self.instances.net_receive(instance, weights, flag, cx.t, &mut events);
        Self::post(&mut events, cx.t, cx.out);
        self.events = events;
        r.map_err(|e| e.to_string())
    }

    fn weights_read_only(&self) -> bool {
        self.instances.mechanism().net_args_read_only()
    }

    fn batches_events(&self) -> bool {
        self.instances.mechanism().batches_events()
    }

    fn net_receive_batch(&mut self, instances: &[u32], weights: &mut [f64]) -> KernelResult {
        self.instances.net_receive_batch(instances, weights).map_err(|e| e.to_string())
    }

    fn init_weights(&mut self, instance: usize, weights: &mut [f64]) -> KernelResult {
        if self.instances.mechanism().has_net_initial() {
            return self.instances.net_init(instance, weights, 0.0).map_err(|e| e.to_string());
        }
        for w in weights.iter_mut().skip(1) {
            *w = 0.0;
        }
        Ok(())
    }
}

/// Register every mechanism of `lib` in `catalogue` (replacing built-in kernels of the same name).
pub fn register(catalogue: &mut Catalogue, lib: &Library) {
    for m in lib.iter() {
        let m = m.clone();
        catalogue.register(move || Box::new(ModMechanism::new(&m)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use miv_solvers::ion::IonData;
    use miv_solvers::mechanism::{Mechanism as _, Outbox};

    /// A connection's weight vector at initialisation, as NEURON leaves it: an empty `INITIAL` in NET_RECEIVE
    /// keeps every argument, no `INITIAL` clears all but the first, and an `INITIAL` that assigns runs.
    #[test]
    fn net_receive_initial_blocks_set_the_weight_vector_as_neuron_does() {
        let source = |initial: &str| {
            format!(
                "NEURON {{ POINT_PROCESS S NONSPECIFIC_CURRENT i }}\n\
                 ASSIGNED {{ v i }}\n\
                 STATE {{ g }}\n\
                 BREAKPOINT {{ i = g * v }}\n\
                 NET_RECEIVE(w, u, n) {{ {initial} g = g + w * u }}\n"
            )
        };
        let weights_after_init = |initial: &str| {
            let mech = Mechanism::compile(&source(initial), "s.mod").unwrap_or_else(|e| panic!("{e}"));
            let mut m = ModMechanism::new(&Arc::new(mech));
            let params = m.info().defaults();
            m.add_instance(&Site { node: 0, scale: 1.0, ions: vec![], cell: 0, area: 100.0, diam: 1.0 }, &params);
            let mut w = vec![0.5, 2.0, 7.0];
            m.init_weights(0, &mut w).unwrap();
            w
        };
        assert_eq!(weights_after_init("INITIAL {}"), [0.5, 2.0, 7.0]);
        assert_eq!(weights_after_init(""), [0.5, 0.0, 0.0]);
        assert_eq!(weights_after_init("INITIAL { n = u + 1 }"), [0.5, 2.0, 3.0]);
    }

    /// A density mechanism's currents summed run by run (instances on consecutive nodes and ion
    /// instances) give the bits of the node-by-node loop, on instances in runs, out of order and
    /// alone; and its gathers read the right node and ion instance.
    #[test]
    fn density_runs_give_the_bits_of_the_node_loop() {
        let lib = Library::standard().unwrap();
        let mut m = ModMechanism::new(lib.get("hh").unwrap());
        let params = m.info().defaults();
        let nodes = [3u32, 4, 5, 6, 9, 2, 10, 11, 12, 0, 1];
        // Ion instances follow the nodes except at the seventh instance.
        let ion_of = |k: usize, node: u32| if k == 6 { 13 } else { node };
        for (k, &node) in nodes.iter().enumerate() {
            let ions = vec![ion_of(k, node); m.info().ions.len()];
            m.add_instance(&Site { node, scale: 1.0, ions, cell: 0, area: 100.0, diam: 1.0 }, &params);
        }
        assert_eq!(m.runs, [0, 4, 5, 6, 7, 9, 11]);
        let n = 14;
        let mut ions: Vec<IonData> = m
            .info()
            .ions
            .iter()
            .map(|u| {
                let mut ion = IonData::new(&u.ion);
                ion.erev = (0..n).map(|k| if u.ion == "na" { 50.0 + k as f64 } else { -77.0 - k as f64 }).collect();
                ion.cur = (0..n).map(|k| 0.1 * k as f64).collect();
                ion.dcurdv = vec![0.5; n];
                ion.conc_in = vec![1.0; n];
                ion.conc_out = vec![2.0; n];
                ion
            })
            .collect();
        let before: Vec<(Vec<f64>, Vec<f64>)> = ions.iter().map(|i| (i.cur.clone(), i.dcurdv.clone())).collect();
        let ion_ids: Vec<usize> = (0..ions.len()).collect();
        let v: Vec<f64> = (0..n).map(|k| -80.0 + 3.7 * k as f64).collect();
        let (rhs0, d0): (Vec<f64>, Vec<f64>) = ((0..n).map(|k| 0.25 * k as f64).collect(), vec![1.5; n]);
        let (mut rhs, mut d, mut out) = (rhs0.clone(), d0.clone(), Outbox::default());
        let mut cx = Cx {
            t: 0.0,
            dt: 0.025,
            celsius: 6.3,
            second_order: false,
            v: &v,
            rhs: &mut rhs,
            d: &mut d,
            electrode: None,
            ions: &mut ions,
            ion_ids: &ion_ids,
            out: &mut out,
        };
        m.initialize(&mut cx).unwrap();
        m.current(&mut cx).unwrap();
        let mi = m.instances.mechanism().info().clone();
        let col = |f: usize| m.instances.column(f).to_vec();
        let (cur, cond, vcol) =
            (col(mi.current_field.unwrap()), col(mi.conductance_field.unwrap()), col(mi.v_field.unwrap()));
        let (mut want_rhs, mut want_d) = (rhs0, d0);
        for (i, &node) in nodes.iter().enumerate() {
            assert_eq!(vcol[i].to_bits(), v[node as usize].to_bits(), "v of instance {i}");
            want_rhs[node as usize] -= cur[i];
            want_d[node as usize] += cond[i];
        }
        assert_eq!(
            rhs.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            want_rhs.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(
            d.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            want_d.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        for l in m.links.iter().filter(|l| l.kind == IonVarKind::Current && l.written) {
            let (mut want_cur, mut want_didv) = before[l.ion].clone();
            let icol = col(l.field);
            let dcol = m.didv.iter().find(|(i, _)| *i == l.ion).map(|&(_, f)| col(f)).unwrap();
            for (i, &node) in nodes.iter().enumerate() {
                let k = ion_of(i, node) as usize;
                want_cur[k] += icol[i];
                want_didv[k] += dcol[i];
            }
            assert_eq!(ions[l.ion].cur, want_cur);
            assert_eq!(ions[l.ion].dcurdv, want_didv);
        }
        for l in m.links.iter().filter(|l| l.gathered && l.kind == IonVarKind::Reversal) {
            for (i, &node) in nodes.iter().enumerate() {
                assert_eq!(col(l.field)[i], ions[l.ion].erev[ion_of(i, node) as usize], "erev of instance {i}");
            }
        }
    }
}
