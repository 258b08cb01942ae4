//! Point processes as NEURON ships them: the current clamp `IClamp` (stim.mod) and the synapses `ExpSyn`
//! (expsyn.mod) and `Exp2Syn` (exp2syn.mod, normalised so that a weight w gives a peak conductance of w uS).
//! Currents are in nA and are scaled to the node by `Site::scale` (100 / area).

use super::density::DV;
use super::{Columns, Cx, EventCx, KernelResult, Mechanism, MechanismInfo, MechanismKind, ParamSpec, Site, Sites};

fn point_info(name: &str, params: Vec<ParamSpec>, states: &[&str], electrode: bool, weights: usize) -> MechanismInfo {
    MechanismInfo {
        name: name.into(),
        kind: MechanismKind::Point,
        params,
        states: states.iter().map(|s| s.to_string()).collect(),
        globals: vec![],
        ions: vec![],
        electrode,
        weights,
    }
}

/// Current step `IClamp`: amp (nA) for del <= t < del + dur, t being the middle of the step.
#[derive(Debug, Clone)]
pub struct IClamp {
    info: MechanismInfo,
    sites: Sites,
    /// del, dur, amp
    p: Columns,
    i: Vec<f64>,
}

impl Default for IClamp {
    fn default() -> IClamp {
        let params =
            vec![ParamSpec::new("del", 0.0, "ms"), ParamSpec::new("dur", 0.0, "ms"), ParamSpec::new("amp", 0.0, "nA")];
        IClamp {
            info: point_info("IClamp", params, &["i"], true, 0),
            sites: Sites::scaled(),
            p: Columns::new(3),
            i: vec![],
        }
    }
}

impl Mechanism for IClamp {
    kernel_accessors!();
    kernel_storage!(i);
    fn add_instance(&mut self, site: &Site, params: &[f64]) {
        self.sites.push(site);
        self.p.push(params);
        self.i.push(0.0);
    }
    fn state(&self, i: usize, _k: usize) -> f64 {
        self.i[i]
    }
    fn initialize(&mut self, _cx: &mut Cx) -> KernelResult {
        self.i.fill(0.0);
        Ok(())
    }
    fn current(&mut self, cx: &mut Cx) -> KernelResult {
        let t = cx.t;
        for k in 0..self.sites.len() {
            let (del, dur, amp) = (self.p.cols[0][k], self.p.cols[1][k], self.p.cols[2][k]);
            self.i[k] = if t < del + dur && t >= del { amp } else { 0.0 };
            cx.add_electrode(self.sites.node[k] as usize, self.i[k] * self.sites.scale[k], 0.0);
        }
        Ok(())
    }
    fn update_state(&mut self, _cx: &mut Cx) -> KernelResult {
        Ok(())
    }
}

/// Add a conductance-based point current g (v - e) (nA, conductance by NEURON's numerical derivative) to its
/// node; returns the current.
#[inline(always)]
fn synaptic_current(cx: &mut Cx, node: u32, scale: f64, g: f64, e: f64) -> f64 {
    let v = cx.v[node as usize];
    let i1 = g * (v + DV - e);
    let i0 = g * (v - e);
    cx.add_membrane(node as usize, i0 * scale, (i1 - i0) / DV * scale);
    i0
}

/// Decay factor of a cnexp step for x' = -x/tau, as nocmodl writes it: x += (1 - exp(dt (-1/tau))) (0 - x).
fn decay_step(dt: f64, tau: f64) -> f64 {
    1.0 - (dt * (-1.0 / tau)).exp()
}

/// Single-exponential synapse `ExpSyn`: g' = -g/tau, i = g (v - e); an event adds its weight (uS) to g.
#[derive(Debug, Clone)]
pub struct ExpSyn {
    info: MechanismInfo,
    sites: Sites,
    /// tau, e
    p: Columns,
    g: Vec<f64>,
    i: Vec<f64>,
    fac: Vec<f64>,
    fac_dt: f64,
}

impl Default for ExpSyn {
    fn default() -> ExpSyn {
        let params = vec![ParamSpec::new("tau", 0.1, "ms"), ParamSpec::new("e", 0.0, "mV")];
        ExpSyn {
            info: point_info("ExpSyn", params, &["g", "i"], false, 1),
            sites: Sites::scaled(),
            p: Columns::new(2),
            g: vec![],
            i: vec![],
            fac: vec![],
            fac_dt: f64::NAN,
        }
    }
}

impl Mechanism for ExpSyn {
    kernel_accessors!(cached);
    kernel_storage!(g, i, fac);
    fn add_instance(&mut self, site: &Site, params: &[f64]) {
        self.sites.push(site);
        self.p.push(params);
        self.g.push(0.0);
        self.i.push(0.0);
        self.fac.push(0.0);
    }
    fn state(&self, i: usize, k: usize) -> f64 {
        if k == 0 {
            self.g[i]
        } else {
            self.i[i]
        }
    }
    fn initialize(&mut self, cx: &mut Cx) -> KernelResult {
        self.g.fill(0.0);
        self.i.fill(0.0);
        self.fac_dt = f64::NAN;
        let _ = cx;
        Ok(())
    }
    fn current(&mut self, cx: &mut Cx) -> KernelResult {
        for k in 0..self.sites.len() {
            self.i[k] = synaptic_current(cx, self.sites.node[k], self.sites.scale[k], self.g[k], self.p.cols[1][k]);
        }
        Ok(())
    }
    fn update_state(&mut self, cx: &mut Cx) -> KernelResult {
        if self.fac_dt != cx.dt {
            for k in 0..self.sites.len() {
                self.fac[k] = decay_step(cx.dt, self.p.cols[0][k]);
            }
            self.fac_dt = cx.dt;
        }
        for (g, f) in self.g.iter_mut().zip(&self.fac) {
            *g += f * (0.0 - *g);
        }
        Ok(())
    }
    fn weights_read_only(&self) -> bool {
        true
    }
    fn net_receive(&mut self, instance: usize, weights: &mut [f64], _flag: f64, _cx: &mut EventCx) -> KernelResult {
        self.g[instance] += weights[0];
        Ok(())
    }
}

/// Dual-exponential synapse `Exp2Syn`: g = B - A with A' = -A/tau1, B' = -B/tau2, i = g (v - e). An event
/// of weight w adds w * factor to A and B, where factor makes the peak of g equal w. INITIAL clamps
/// tau1/tau2 into [1e-9, 0.9999] by changing tau1, as exp2syn.mod does.
#[derive(Debug, Clone)]
pub struct Exp2Syn {
    info: MechanismInfo,
    sites: Sites,
    /// tau1, tau2, e
    p: Columns,
    a: Vec<f64>,
    b: Vec<f64>,
    factor: Vec<f64>,
    i: Vec<f64>,
    fa: Vec<f64>,
    fb: Vec<f64>,
    fac_dt: f64,
}

impl Default for Exp2Syn {
    fn default() -> Exp2Syn {
        let params =
            vec![ParamSpec::new("tau1", 0.1, "ms"), ParamSpec::new("tau2", 10.0, "ms"), ParamSpec::new("e", 0.0, "mV")];
        Exp2Syn {
            info: point_info("Exp2Syn", params, &["A", "B", "g", "i", "factor"], false, 1),
            sites: Sites::scaled(),
            p: Columns::new(3),
            a: vec![],
            b: vec![],
            factor: vec![],
            i: vec![],
            fa: vec![],
            fb: vec![],
            fac_dt: f64::NAN,
        }
    }
}

/// Exp2Syn's normalisation: 1 / (exp(-tp/tau2) - exp(-tp/tau1)) at the peak time tp.
pub fn exp2syn_factor(tau1: f64, tau2: f64) -> f64 {
    let tp = (tau1 * tau2) / (tau2 - tau1) * (tau2 / tau1).ln();
    let f = -(-tp / tau1).exp() + (-tp / tau2).exp();
    1.0 / f
}

impl Mechanism for Exp2Syn {
    kernel_accessors!(cached);
    kernel_storage!(a, b, factor, i, fa, fb);
    fn add_instance(&mut self, site: &Site, params: &[f64]) {
        self.sites.push(site);
        self.p.push(params);
        for v in [&mut self.a, &mut self.b, &mut self.factor, &mut self.i, &mut self.fa, &mut self.fb] {
            v.push(0.0);
        }
    }
    fn state(&self, i: usize, k: usize) -> f64 {
        match k {
            0 => self.a[i],
            1 => self.b[i],
            2 => self.b[i] - self.a[i],
            3 => self.i[i],
            _ => self.factor[i],
        }
    }
    fn set_state(&mut self, i: usize, k: usize, value: f64) -> Result<(), String> {
        match k {
            0 => self.a[i] = value,
            1 => self.b[i] = value,
            _ => return Err("Exp2Syn: only A and B can be set (g, i and factor are computed)".into()),
        }
        Ok(())
    }
    fn initialize(&mut self, _cx: &mut Cx) -> KernelResult {
        for k in 0..self.sites.len() {
            let tau2 = self.p.cols[1][k];
            let tau1 = &mut self.p.cols[0][k];
            if *tau1 / tau2 > 0.9999 {
                *tau1 = 0.9999 * tau2;
            }
            if *tau1 / tau2 < 1e-9 {
                *tau1 = tau2 * 1e-9;
            }
            self.a[k] = 0.0;
            self.b[k] = 0.0;
            self.i[k] = 0.0;
            self.factor[k] = exp2syn_factor(*tau1, tau2);
        }
        self.fac_dt = f64::NAN;
        Ok(())
    }
    fn current(&mut self, cx: &mut Cx) -> KernelResult {
        for k in 0..self.sites.len() {
            let g = self.b[k] - self.a[k];
            self.i[k] = synaptic_current(cx, self.sites.node[k], self.sites.scale[k], g, self.p.cols[2][k]);
        }
        Ok(())
    }
    fn update_state(&mut self, cx: &mut Cx) -> KernelResult {
        if self.fac_dt != cx.dt {
            for k in 0..self.sites.len() {
                self.fa[k] = decay_step(cx.dt, self.p.cols[0][k]);
                self.fb[k] = decay_step(cx.dt, self.p.cols[1][k]);
            }
            self.fac_dt = cx.dt;
        }
        for k in 0..self.sites.len() {
            self.a[k] += self.fa[k] * (0.0 - self.a[k]);
            self.b[k] += self.fb[k] * (0.0 - self.b[k]);
        }
        Ok(())
    }
    fn weights_read_only(&self) -> bool {
        true
    }
    fn net_receive(&mut self, instance: usize, weights: &mut [f64], _flag: f64, _cx: &mut EventCx) -> KernelResult {
        let w = weights[0] * self.factor[instance];
        self.a[instance] += w;
        self.b[instance] += w;
        Ok(())
    }
}
