//! A single isopotential compartment advanced exactly as NEURON's fixed step (backward Euler,
//! `secondorder = 0`): events, then currents at t + dt/2, the voltage update, then states at the new
//! voltage. Ions follow NEURON's ion styles ([`IonStyle`]: which concentrations and reversal potentials
//! are initialised or recomputed from the Nernst equation). The construct tests use it to run a
//! mechanism alone, without the cell group.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;

use miv_nmodl::{Context, Emitted, Instances, IonVarKind, MechKind, Mechanism, Result};
pub use miv_solvers::ion::nernst;
use miv_solvers::ion::{default_species, IonStyle};

/// One ion species in the compartment.
#[derive(Debug, Clone, PartialEq)]
pub struct IonPool {
    pub name: String,
    pub valence: f64,
    pub ci: f64,
    pub co: f64,
    pub e: f64,
    /// Sum of the mechanisms' currents of this ion (mA/cm2), this step.
    pub current: f64,
    pub didv: f64,
    pub style: IonStyle,
    /// Values restored at initialisation when the concentrations are written (`style.conc == 3`).
    pub ci0: f64,
    pub co0: f64,
}

struct Link {
    pool: usize,
    kind: IonVarKind,
    field: usize,
    gathered: bool,
    written: bool,
}

struct Part {
    inst: Instances,
    links: Vec<Link>,
    didv: Vec<(usize, usize)>,
    point: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Pending {
    t: f64,
    seq: u64,
    part: usize,
    flag: f64,
    weights: Vec<f64>,
}

impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        // Earliest first (BinaryHeap is a max-heap), then first scheduled.
        other.t.total_cmp(&self.t).then(other.seq.cmp(&self.seq))
    }
}

/// One compartment with its mechanisms (one instance each).
pub struct Soma {
    /// Membrane area (um2).
    pub area: f64,
    /// Specific capacitance (uF/cm2).
    pub cm: f64,
    pub v: f64,
    pub t: f64,
    pub dt: f64,
    pub celsius: f64,
    /// Threshold of the spike detector (mV); detection as NEURON: the step end time when v is
    /// first at or above it.
    pub threshold: f64,
    pub spikes: Vec<f64>,
    /// net_event calls: (part, time).
    pub emitted: Vec<(usize, f64)>,
    pub pools: Vec<IonPool>,
    parts: Vec<Part>,
    queue: BinaryHeap<Pending>,
    seq: u64,
    above: bool,
}

impl Soma {
    pub fn new(area: f64) -> Soma {
        Soma {
            area,
            cm: 1.0,
            v: -65.0,
            t: 0.0,
            dt: 0.025,
            celsius: 6.3,
            threshold: 10.0,
            spikes: Vec::new(),
            emitted: Vec::new(),
            pools: Vec::new(),
            parts: Vec::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            above: false,
        }
    }

    fn pool(&mut self, name: &str, valence: f64) -> usize {
        if let Some(k) = self.pools.iter().position(|p| p.name == name) {
            return k;
        }
        let (_, e, ci, co) = default_species(name);
        self.pools.push(IonPool {
            name: name.to_string(),
            valence,
            ci,
            co,
            e,
            current: 0.0,
            didv: 0.0,
            style: IonStyle::default(),
            ci0: ci,
            co0: co,
        });
        self.pools.len() - 1
    }

    /// Insert one instance of `m`; returns its part index.
    pub fn insert(&mut self, m: &Arc<Mechanism>) -> usize {
        let info = m.info().clone();
        let mut links = Vec::new();
        let mut didv = Vec::new();
        for ion in &info.ions {
            let k = self.pool(&ion.name, ion.valence);
            let mut conc = 0;
            let mut erev = 0;
            for f in &ion.fields {
                match f.kind {
                    IonVarKind::Inside | IonVarKind::Outside => conc = conc.max(if f.written { 3 } else { 1 }),
                    IonVarKind::Reversal => erev = erev.max(if f.written { 3 } else { 1 }),
                    IonVarKind::Current => {}
                }
                links.push(Link { pool: k, kind: f.kind, field: f.field, gathered: f.gathered, written: f.written });
            }
            self.pools[k].style = self.pools[k].style.promote(IonStyle { conc, erev });
            if let Some(f) = ion.didv_field {
                didv.push((k, f));
            }
        }
        let inst = m.instances(1);
        self.parts.push(Part { inst, links, didv, point: info.kind != MechKind::Density });
        self.parts.len() - 1
    }

    pub fn part(&mut self, k: usize) -> &mut Instances {
        &mut self.parts[k].inst
    }

    /// Set an ion's values as hoc does (`seg.ena = 50`); kept unless the ion style recomputes them.
    pub fn set_ion(&mut self, ion: &str, ci: Option<f64>, co: Option<f64>, e: Option<f64>) {
        let (z, ..) = default_species(ion);
        let k = self.pool(ion, z);
        let p = &mut self.pools[k];
        if let Some(x) = ci {
            p.ci = x;
            p.ci0 = x;
        }
        if let Some(x) = co {
            p.co = x;
            p.co0 = x;
        }
        if let Some(x) = e {
            p.e = x;
        }
    }

    fn push(&mut self, mut e: Pending) {
        e.seq = self.seq;
        self.seq += 1;
        self.queue.push(e);
    }

    fn ctx(&self) -> Context {
        Context { t: self.t, dt: self.dt, celsius: self.celsius, second_order: false }
    }

    fn gather(&mut self, k: usize) {
        let v = self.v;
        let area = self.area;
        let part = &mut self.parts[k];
        let info = part.inst.mechanism().info().clone();
        if let Some(f) = info.v_field {
            part.inst.column_mut(f)[0] = v;
        }
        if let Some(f) = info.area_field {
            part.inst.column_mut(f)[0] = area;
        }
        for l in &part.links {
            if !l.gathered {
                continue;
            }
            let p = &self.pools[l.pool];
            let x = match l.kind {
                IonVarKind::Inside => p.ci,
                IonVarKind::Outside => p.co,
                IonVarKind::Reversal => p.e,
                IonVarKind::Current => p.current,
            };
            part.inst.column_mut(l.field)[0] = x;
        }
    }

    /// Copy written concentrations and reversal potentials back to the ions.
    fn scatter(&mut self, k: usize, recompute_e: bool) {
        let celsius = self.celsius;
        let part = &self.parts[k];
        for l in &part.links {
            if !l.written || l.kind == IonVarKind::Current {
                continue;
            }
            let x = part.inst.column(l.field)[0];
            let p = &mut self.pools[l.pool];
            match l.kind {
                IonVarKind::Inside => p.ci = x,
                IonVarKind::Outside => p.co = x,
                IonVarKind::Reversal => p.e = x,
                IonVarKind::Current => {}
            }
            if recompute_e && p.style.einit() && l.kind != IonVarKind::Reversal {
                p.e = nernst(p.ci, p.co, p.valence, celsius);
            }
        }
    }

    fn handle(&mut self, part: usize, emitted: Vec<Emitted>) {
        for e in emitted {
            match e {
                Emitted::SelfEvent { delay, flag, .. } => {
                    let t = self.t + delay;
                    self.push(Pending { t, seq: 0, part, flag, weights: Vec::new() });
                }
                Emitted::Spike { t, .. } => self.emitted.push((part, t)),
            }
        }
    }

    /// NEURON's finitialize(v_init).
    pub fn finitialize(&mut self, v_init: f64) -> Result<()> {
        self.t = 0.0;
        self.v = v_init;
        self.queue.clear();
        self.spikes.clear();
        self.emitted.clear();
        let celsius = self.celsius;
        for p in &mut self.pools {
            if p.style.conc == 3 {
                p.ci = p.ci0;
                p.co = p.co0;
            }
            if p.style.einit() {
                p.e = nernst(p.ci, p.co, p.valence, celsius);
            }
        }
        for k in 0..self.parts.len() {
            self.gather(k);
            let ctx = self.ctx();
            let mut ev = Vec::new();
            self.parts[k].inst.initialize(&ctx, &mut ev)?;
            self.scatter(k, true);
            self.handle(k, ev);
        }
        self.above = self.v >= self.threshold;
        Ok(())
    }

    fn deliver(&mut self, til: f64) -> Result<()> {
        while let Some(e) = self.queue.peek() {
            if e.t > til {
                break;
            }
            let e = self.queue.pop().unwrap();
            let saved = self.t;
            self.t = e.t;
            self.gather(e.part);
            let mut ev = Vec::new();
            let mut w = e.weights.clone();
            self.parts[e.part].inst.net_receive(0, &mut w, e.flag, e.t, &mut ev)?;
            self.scatter(e.part, false);
            self.handle(e.part, ev);
            self.t = saved;
        }
        Ok(())
    }

    /// One fixed step of NEURON (secondorder 0).
    pub fn fadvance(&mut self) -> Result<()> {
        if !self.above && self.v >= self.threshold {
            self.spikes.push(self.t);
        }
        self.above = self.v >= self.threshold;
        self.deliver(self.t + 0.5 * self.dt)?;
        self.t += 0.5 * self.dt;
        let celsius = self.celsius;
        for p in &mut self.pools {
            p.current = 0.0;
            p.didv = 0.0;
            if p.style.eadvance() {
                p.e = nernst(p.ci, p.co, p.valence, celsius);
            }
        }
        let mut rhs = 0.0;
        let mut d = self.cm * 1e-3 / self.dt;
        for k in 0..self.parts.len() {
            if self.parts[k].inst.mechanism().info().current_field.is_none() {
                continue;
            }
            self.gather(k);
            let ctx = self.ctx();
            self.parts[k].inst.current(&ctx)?;
            let part = &self.parts[k];
            let info = part.inst.mechanism().info();
            let scale = if part.point { 100.0 / self.area } else { 1.0 };
            rhs -= part.inst.column(info.current_field.unwrap())[0] * scale;
            d += part.inst.column(info.conductance_field.unwrap())[0] * scale;
            for l in &part.links {
                if l.kind == IonVarKind::Current && l.written {
                    self.pools[l.pool].current += part.inst.column(l.field)[0] * scale;
                }
            }
            for &(pool, f) in &part.didv {
                self.pools[pool].didv += part.inst.column(f)[0] * scale;
            }
            self.scatter(k, false);
        }
        self.v += rhs / d;
        self.t += 0.5 * self.dt;
        for k in 0..self.parts.len() {
            self.gather(k);
            let ctx = self.ctx();
            self.parts[k].inst.advance_state(&ctx)?;
            self.scatter(k, false);
        }
        self.deliver(self.t)?;
        Ok(())
    }
}
