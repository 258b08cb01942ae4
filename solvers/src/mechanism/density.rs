//! Density mechanisms: `pas` and `hh` as NEURON ships them (passive.mod, hh.mod). Currents and their
//! conductances are computed the way nocmodl's `nrn_cur` does: i(v) and i(v + 0.001), g = di / 0.001.

use super::{Columns, Cx, IonUse, KernelResult, Mechanism, MechanismInfo, MechanismKind, ParamSpec, Site, Sites};
use crate::fastmath;

/// NEURON's numerical derivative step (mV) in `nrn_cur`.
pub(crate) const DV: f64 = 0.001;
/// 1 / DV: the kernels multiply by it where NEURON divides by DV (the results differ by at most an ulp).
pub(crate) const INV_DV: f64 = 1.0 / DV;

/// Passive leak `pas`: i = g (v - e).
#[derive(Debug, Clone)]
pub struct Pas {
    info: MechanismInfo,
    sites: Sites,
    p: Columns,
    /// Runs of instances on consecutive nodes: the first instance of each run, then the instance count.
    runs: Vec<u32>,
}

impl Default for Pas {
    fn default() -> Pas {
        let info = MechanismInfo {
            name: "pas".into(),
            kind: MechanismKind::Density,
            params: vec![ParamSpec::new("g", 0.001, "S/cm2"), ParamSpec::new("e", -70.0, "mV")],
            states: vec![],
            globals: vec![],
            ions: vec![],
            electrode: false,
            weights: 0,
        };
        Pas { info, sites: Sites::default(), p: Columns::new(2), runs: vec![0] }
    }
}

crate::multiversion! {
    /// `pas` over runs of instances on consecutive nodes (`runs`: first instance of each run, then the count):
    /// contiguous slices, so the loop is vectorised; per instance the operations of the node-indexed loop.
    fn pas_current_runs / pas_current_runs_generic(
        g: &[f64],
        e: &[f64],
        nodes: &[u32],
        runs: &[u32],
        v: &[f64],
        rhs: &mut [f64],
        d: &mut [f64],
    ) {
        for w in runs.windows(2) {
            let (i0, i1) = (w[0] as usize, w[1] as usize);
            let n0 = nodes[i0] as usize;
            let len = i1 - i0;
            let (g, e) = (&g[i0..i1], &e[i0..i1]);
            let (v, rhs, d) = (&v[n0..n0 + len], &mut rhs[n0..n0 + len], &mut d[n0..n0 + len]);
            for j in 0..len {
                let i1 = g[j] * (v[j] + DV - e[j]);
                let i0 = g[j] * (v[j] - e[j]);
                rhs[j] -= i0;
                d[j] += (i1 - i0) * INV_DV;
            }
        }
    }
}

impl Mechanism for Pas {
    kernel_accessors!();
    kernel_storage!(runs);
    fn add_instance(&mut self, site: &Site, params: &[f64]) {
        // The runs end with the instance count; a node that does not follow the last one starts a new run.
        let n = self.sites.len() as u32;
        self.runs.pop();
        if n == 0 || site.node != self.sites.node[n as usize - 1].wrapping_add(1) {
            self.runs.push(n);
        }
        self.runs.push(n + 1);
        self.sites.push(site);
        self.p.push(params);
    }
    fn state(&self, _i: usize, _k: usize) -> f64 {
        f64::NAN
    }
    fn initialize(&mut self, _cx: &mut Cx) -> KernelResult {
        Ok(())
    }
    fn current(&mut self, cx: &mut Cx) -> KernelResult {
        let n = self.sites.len();
        let (g, e) = (&self.p.cols[0][..n], &self.p.cols[1][..n]);
        pas_current_runs(g, e, &self.sites.node, &self.runs, cx.v, cx.rhs, cx.d);
        Ok(())
    }
    fn update_state(&mut self, _cx: &mut Cx) -> KernelResult {
        Ok(())
    }
}

const TABLE_MIN: f64 = -100.0;
const TABLE_STEPS: usize = 200;

/// Hodgkin-Huxley squid axon channels `hh`, with NEURON's rate functions and `cnexp` gate update. Rates are
/// exact by default; the global `usetable = 1` switches to NEURON's 1 mV table (-100..100 mV, linear
/// interpolation, clamped outside), which is what NEURON uses unless `usetable_hh = 0`.
#[derive(Debug, Clone)]
pub struct Hh {
    info: MechanismInfo,
    sites: Sites,
    /// gnabar, gkbar, gl, el
    p: Columns,
    m: Vec<f64>,
    h: Vec<f64>,
    n: Vec<f64>,
    scratch: Vec<f64>,
    usetable: bool,
    /// minf, mtau, hinf, htau, ninf, ntau at 201 voltages, for `table_celsius`.
    table: Vec<[f64; 6]>,
    table_celsius: f64,
}

impl Default for Hh {
    fn default() -> Hh {
        let info = MechanismInfo {
            name: "hh".into(),
            kind: MechanismKind::Density,
            params: vec![
                ParamSpec::new("gnabar", 0.12, "S/cm2"),
                ParamSpec::new("gkbar", 0.036, "S/cm2"),
                ParamSpec::new("gl", 0.0003, "S/cm2"),
                ParamSpec::new("el", -54.3, "mV"),
            ],
            states: vec!["m".into(), "h".into(), "n".into(), "gna".into(), "gk".into()],
            globals: vec![ParamSpec::new("usetable", 0.0, "")],
            ions: vec![IonUse::channel("na"), IonUse::channel("k")],
            electrode: false,
            weights: 0,
        };
        Hh {
            info,
            sites: Sites::default(),
            p: Columns::new(4),
            m: vec![],
            h: vec![],
            n: vec![],
            scratch: vec![],
            usetable: false,
            table: vec![],
            table_celsius: f64::NAN,
        }
    }
}

/// NEURON's vtrap(x, y) = x / (exp(x/y) - 1), with its series near 0; `e` is exp(x/y).
#[inline(always)]
fn vtrap(x: f64, y: f64, e: f64) -> f64 {
    let r = x / y;
    let small = y * (1.0 - r / 2.0);
    let big = x / (e - 1.0);
    if r.abs() < 1e-6 {
        small
    } else {
        big
    }
}

/// Rate sums and steady states at v: (minf, m rate, hinf, h rate, ninf, n rate) where rate = alpha + beta
/// before the q10 factor, so tau = 1 / (q10 rate). `ex` is the exp function.
#[inline(always)]
fn hh_rates(v: f64, ex: impl Fn(f64) -> f64) -> [f64; 6] {
    let am = 0.1 * vtrap(-(v + 40.0), 10.0, ex(-(v + 40.0) / 10.0));
    let bm = 4.0 * ex(-(v + 65.0) / 18.0);
    let ah = 0.07 * ex(-(v + 65.0) / 20.0);
    let bh = 1.0 / (ex(-(v + 35.0) / 10.0) + 1.0);
    let an = 0.01 * vtrap(-(v + 55.0), 10.0, ex(-(v + 55.0) / 10.0));
    let bn = 0.125 * ex(-(v + 65.0) / 80.0);
    let (sm, sh, sn) = (am + bm, ah + bh, an + bn);
    [am / sm, sm, ah / sh, sh, an / sn, sn]
}

fn q10(celsius: f64) -> f64 {
    3f64.powf((celsius - 6.3) / 10.0)
}

impl Hh {
    fn ensure_table(&mut self, celsius: f64) {
        if self.table_celsius == celsius && !self.table.is_empty() {
            return;
        }
        let q = q10(celsius);
        let dx = (100.0 - TABLE_MIN) / TABLE_STEPS as f64;
        let mut x = TABLE_MIN;
        self.table.clear();
        for _ in 0..=TABLE_STEPS {
            let r = hh_rates(x, f64::exp);
            self.table.push([r[0], 1.0 / (q * r[1]), r[2], 1.0 / (q * r[3]), r[4], 1.0 / (q * r[5])]);
            x += dx;
        }
        self.table_celsius = celsius;
    }

    /// (minf, mtau, hinf, htau, ninf, ntau) from the table.
    #[inline(always)]
    fn lookup(table: &[[f64; 6]], v: f64) -> [f64; 6] {
        let xi = v - TABLE_MIN;
        if xi.is_nan() {
            return [xi; 6];
        }
        if xi <= 0.0 {
            return table[0];
        }
        if xi >= TABLE_STEPS as f64 {
            return table[TABLE_STEPS];
        }
        let i = xi as usize;
        let th = xi - i as f64;
        let (a, b) = (&table[i], &table[i + 1]);
        let mut out = [0.0; 6];
        for k in 0..6 {
            out[k] = a[k] + th * (b[k] - a[k]);
        }
        out
    }

    fn gather_v(&mut self, v: &[f64]) {
        let n = self.sites.len();
        self.scratch.resize(n, 0.0);
        for (s, &node) in self.scratch.iter_mut().zip(&self.sites.node) {
            *s = v[node as usize];
        }
    }
}

#[inline(always)]
fn cnexp(x: &mut f64, inf: f64, rate_dt: f64, ex: impl Fn(f64) -> f64) {
    *x += (1.0 - ex(-rate_dt)) * (inf - *x);
}

/// Lanes per block of [`hh_states_exact`]: a block is one AVX-512 vector (two AVX2 vectors).
const HH_LANES: usize = 8;

/// One block of [`hh_states_exact`] (inlined into each CPU version, so vectorised for its features).
#[inline(always)]
fn hh_block(m: &mut [f64; HH_LANES], h: &mut [f64; HH_LANES], n: &mut [f64; HH_LANES], v: &[f64; HH_LANES], qdt: f64) {
    for i in 0..HH_LANES {
        let r = hh_rates(v[i], fastmath::exp);
        cnexp(&mut m[i], r[0], qdt * r[1], fastmath::exp);
        cnexp(&mut h[i], r[2], qdt * r[3], fastmath::exp);
        cnexp(&mut n[i], r[4], qdt * r[5], fastmath::exp);
    }
}

crate::multiversion! {
    /// Exact-rate gate update of every instance (v gathered into `v`); `qdt` = q10 * dt. The instances go in
    /// blocks of 8 (the last one padded), so that no instance takes a scalar remainder loop; every lane does
    /// the same operations, so the bits do not depend on the block.
    fn hh_states_exact / hh_states_exact_generic(m: &mut [f64], h: &mut [f64], n: &mut [f64], v: &[f64], qdt: f64) {
        let len = v.len();
        let (m, h, n) = (&mut m[..len], &mut h[..len], &mut n[..len]);
        let full = len / HH_LANES * HH_LANES;
        for i in (0..full).step_by(HH_LANES) {
            let w = i..i + HH_LANES;
            hh_block(
                (&mut m[w.clone()]).try_into().unwrap(),
                (&mut h[w.clone()]).try_into().unwrap(),
                (&mut n[w.clone()]).try_into().unwrap(),
                (&v[w]).try_into().unwrap(),
                qdt,
            );
        }
        if full < len {
            let k = len - full;
            let mut lanes = [[0.0; HH_LANES]; 4];
            for (x, src) in lanes.iter_mut().zip([&m[full..], &h[full..], &n[full..], &v[full..]]) {
                x[..k].copy_from_slice(src);
                x[k..].fill(src[0]);
            }
            let [mut bm, mut bh, mut bn, bv] = lanes;
            hh_block(&mut bm, &mut bh, &mut bn, &bv, qdt);
            m[full..].copy_from_slice(&bm[..k]);
            h[full..].copy_from_slice(&bh[..k]);
            n[full..].copy_from_slice(&bn[..k]);
        }
    }
}

impl Mechanism for Hh {
    kernel_accessors!();
    kernel_storage!(m, h, n, scratch);
    fn add_instance(&mut self, site: &Site, params: &[f64]) {
        self.sites.push(site);
        self.p.push(params);
        self.m.push(0.0);
        self.h.push(0.0);
        self.n.push(0.0);
    }
    fn state(&self, i: usize, k: usize) -> f64 {
        match k {
            0 => self.m[i],
            1 => self.h[i],
            2 => self.n[i],
            3 => self.p.cols[0][i] * self.m[i].powi(3) * self.h[i],
            _ => self.p.cols[1][i] * self.n[i].powi(4),
        }
    }
    fn set_state(&mut self, i: usize, k: usize, value: f64) -> Result<(), String> {
        match k {
            0 => self.m[i] = value,
            1 => self.h[i] = value,
            2 => self.n[i] = value,
            _ => return Err("hh: only m, h and n can be set (gna and gk are computed)".into()),
        }
        Ok(())
    }
    fn global(&self, k: usize) -> f64 {
        if k == 0 {
            self.usetable as i32 as f64
        } else {
            f64::NAN
        }
    }
    fn set_global(&mut self, k: usize, value: f64) {
        if k == 0 {
            self.usetable = value != 0.0;
        }
    }
    fn initialize(&mut self, cx: &mut Cx) -> KernelResult {
        self.gather_v(cx.v);
        if self.usetable {
            self.ensure_table(cx.celsius);
        }
        for i in 0..self.sites.len() {
            let v = self.scratch[i];
            let (minf, hinf, ninf) = if self.usetable {
                let t = Hh::lookup(&self.table, v);
                (t[0], t[2], t[4])
            } else {
                let r = hh_rates(v, fastmath::exp);
                (r[0], r[2], r[4])
            };
            self.m[i] = minf;
            self.h[i] = hinf;
            self.n[i] = ninf;
        }
        Ok(())
    }
    fn current(&mut self, cx: &mut Cx) -> KernelResult {
        let len = self.sites.len();
        let [gnabar, gkbar, gl, el] = [0, 1, 2, 3].map(|k| &self.p.cols[k][..len]);
        let (sna, sk, nodes) = (&self.sites.ions[0][..len], &self.sites.ions[1][..len], &self.sites.node[..len]);
        let (m, h, n) = (&self.m[..len], &self.h[..len], &self.n[..len]);
        let v = cx.v;
        let (rhs, d) = (&mut *cx.rhs, &mut *cx.d);
        let (na, k) = {
            let (ia, ib) = (cx.ion_ids[0], cx.ion_ids[1]);
            let (x, y) = cx.ions.split_at_mut(ia.max(ib));
            if ia < ib {
                (&mut x[ia], &mut y[0])
            } else {
                (&mut y[0], &mut x[ib])
            }
        };
        assert!(len == 0 || self.sites.max_node() < v.len().min(rhs.len()).min(d.len()));
        assert!(len == 0 || (self.sites.max_ion(0) < na.len() && self.sites.max_ion(1) < k.len()));
        assert!(na.erev.len() == na.len() && na.cur.len() == na.len() && na.dcurdv.len() == na.len());
        assert!(k.erev.len() == k.len() && k.cur.len() == k.len() && k.dcurdv.len() == k.len());
        for i in 0..len {
            // SAFETY: node and ion instance indices are below the array lengths (asserted above).
            unsafe {
                let node = *nodes.get_unchecked(i) as usize;
                let (a, b) = (*sna.get_unchecked(i) as usize, *sk.get_unchecked(i) as usize);
                let vv = *v.get_unchecked(node);
                let (ena, ek) = (*na.erev.get_unchecked(a), *k.erev.get_unchecked(b));
                let gna = gnabar[i] * m[i] * m[i] * m[i] * h[i];
                let gk = gkbar[i] * n[i] * n[i] * n[i] * n[i];
                let vp = vv + DV;
                let (ina1, ik1, il1) = (gna * (vp - ena), gk * (vp - ek), gl[i] * (vp - el[i]));
                let (ina, ik, il) = (gna * (vv - ena), gk * (vv - ek), gl[i] * (vv - el[i]));
                let i1 = ina1 + ik1 + il1;
                let i0 = ina + ik + il;
                *na.dcurdv.get_unchecked_mut(a) += (ina1 - ina) * INV_DV;
                *k.dcurdv.get_unchecked_mut(b) += (ik1 - ik) * INV_DV;
                *na.cur.get_unchecked_mut(a) += ina;
                *k.cur.get_unchecked_mut(b) += ik;
                *rhs.get_unchecked_mut(node) -= i0;
                *d.get_unchecked_mut(node) += (i1 - i0) * INV_DV;
            }
        }
        Ok(())
    }
    fn update_state(&mut self, cx: &mut Cx) -> KernelResult {
        self.gather_v(cx.v);
        let len = self.sites.len();
        if self.usetable {
            self.ensure_table(cx.celsius);
            let dt = cx.dt;
            // nocmodl's cnexp expression for x' = (xinf - x)/xtau, kept literally for the table runs.
            let step = |x: &mut f64, inf: f64, tau: f64| {
                *x += (1.0 - (dt * (-1.0 / tau)).exp()) * (-(inf / tau) / (-1.0 / tau) - *x);
            };
            for i in 0..len {
                let t = Hh::lookup(&self.table, self.scratch[i]);
                step(&mut self.m[i], t[0], t[1]);
                step(&mut self.h[i], t[2], t[3]);
                step(&mut self.n[i], t[4], t[5]);
            }
        } else {
            let qdt = q10(cx.celsius) * cx.dt;
            hh_states_exact(&mut self.m, &mut self.h, &mut self.n, &self.scratch, qdt);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pas` by runs (kept as instances are added) gives the bits of the node-by-node loop, on nodes in runs,
    /// out of order and alone.
    #[test]
    fn pas_by_runs_gives_the_bits_of_the_node_loop() {
        let nodes = [3u32, 4, 5, 6, 7, 8, 9, 10, 11, 20, 2, 12, 13, 14, 15, 16, 0];
        let mut pas = Pas::default();
        for (i, &node) in nodes.iter().enumerate() {
            let site = Site { node, scale: 1.0, ions: vec![], cell: 0, area: 0.0, diam: 0.0 };
            pas.add_instance(&site, &[0.001 * (1.0 + i as f64), -70.0 + i as f64]);
        }
        assert_eq!(pas.runs, [0, 9, 10, 11, 16, 17]);
        let v: Vec<f64> = (0..21).map(|k| -80.0 + 1.7 * k as f64).collect();
        let (mut rhs, mut d) = (vec![0.25; 21], vec![1.5; 21]);
        let (g, e) = (&pas.p.cols[0], &pas.p.cols[1]);
        pas_current_runs(g, e, &pas.sites.node, &pas.runs, &v, &mut rhs, &mut d);
        let (mut rhs1, mut d1) = (vec![0.25; 21], vec![1.5; 21]);
        for (i, &node) in nodes.iter().enumerate() {
            let node = node as usize;
            let i1 = g[i] * (v[node] + DV - e[i]);
            let i0 = g[i] * (v[node] - e[i]);
            rhs1[node] -= i0;
            d1[node] += (i1 - i0) * INV_DV;
        }
        assert!(rhs.iter().zip(&rhs1).chain(d.iter().zip(&d1)).all(|(x, y)| x.to_bits() == y.to_bits()));
        assert!(rhs1[1] == 0.25 && rhs1[3] != 0.25, "untouched and touched nodes");
    }

    #[test]
    fn every_cpu_path_of_the_hh_kernel_gives_the_same_bits() {
        let n = 1001;
        let v: Vec<f64> = (0..n).map(|i| -120.0 + 0.173 * i as f64).chain([-40.0, -55.0, -40.0 + 1e-9]).collect();
        let init: Vec<f64> = (0..v.len()).map(|i| (i % 97) as f64 / 97.0).collect();
        let (mut a, mut b) = ([init.clone(), init.clone(), init.clone()], [init.clone(), init.clone(), init.clone()]);
        // One instance at a time, without blocks or padding.
        let mut c = [init.clone(), init.clone(), init];
        for _ in 0..5 {
            let [m, h, nn] = &mut a;
            hh_states_exact(m, h, nn, &v, 0.025 * 3.0);
            let [m, h, nn] = &mut b;
            hh_states_exact_generic(m, h, nn, &v, 0.025 * 3.0);
            for i in 0..v.len() {
                let r = hh_rates(v[i], fastmath::exp);
                for (k, x) in c.iter_mut().enumerate() {
                    cnexp(&mut x[i], r[2 * k], 0.025 * 3.0 * r[2 * k + 1], fastmath::exp);
                }
            }
        }
        for k in 0..3 {
            assert!(a[k].iter().zip(&b[k]).all(|(x, y)| x.to_bits() == y.to_bits()), "gate {k}");
            assert!(a[k].iter().zip(&c[k]).all(|(x, y)| x.to_bits() == y.to_bits()), "gate {k} per instance");
        }
    }
}
