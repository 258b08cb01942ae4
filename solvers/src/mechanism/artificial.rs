//! Artificial cells: `NetStim` (netstim.mod: a regular or Poisson-like spike train, switchable by events) and
//! `VecStim` (vecevent.mod: plays a vector of spike times). They have no node; they act through self-events
//! and `net_event`, with NEURON's NET_RECEIVE logic.

use super::{Columns, Cx, EventCx, KernelResult, Mechanism, MechanismInfo, MechanismKind, ParamSpec, Site, Sites};
use miv_partition::rng::splitmix64_next as splitmix64;

fn artificial_info(name: &str, params: Vec<ParamSpec>, states: &[&str]) -> MechanismInfo {
    MechanismInfo {
        name: name.into(),
        kind: MechanismKind::Artificial,
        params,
        states: states.iter().map(|s| s.to_string()).collect(),
        globals: vec![],
        ions: vec![],
        electrode: false,
        weights: 1,
    }
}

/// `NetStim`. Parameters as netstim.mod (interval, number, start, noise) plus `seed`, the key of this
/// instance's random stream for noise > 0 (or a key given by `set_random_stream`). NEURON draws from
/// Random123; this stream (splitmix64, exponential by inversion) is our own, so noisy trains are
/// statistically, not literally, the same as NEURON's. The stream restarts at every initialisation.
#[derive(Debug, Clone)]
pub struct NetStim {
    info: MechanismInfo,
    sites: Sites,
    /// interval, number, start, noise, seed
    p: Columns,
    event: Vec<f64>,
    on: Vec<f64>,
    ispike: Vec<f64>,
    rng: Vec<u64>,
    /// Stream key set by `set_random_stream` (else the `seed` parameter is the key).
    stream: Vec<Option<u64>>,
}

impl Default for NetStim {
    fn default() -> NetStim {
        let params = vec![
            ParamSpec::new("interval", 10.0, "ms"),
            ParamSpec::new("number", 10.0, ""),
            ParamSpec::new("start", 50.0, "ms"),
            ParamSpec::new("noise", 0.0, ""),
            ParamSpec::new("seed", 0.0, ""),
        ];
        NetStim {
            info: artificial_info("NetStim", params, &["event", "on", "ispike"]),
            sites: Sites::default(),
            p: Columns::new(5),
            event: vec![],
            on: vec![],
            ispike: vec![],
            rng: vec![],
            stream: vec![],
        }
    }
}

impl NetStim {
    fn erand(&mut self, k: usize) -> f64 {
        let u = ((splitmix64(&mut self.rng[k]) >> 11) as f64 + 1.0) * (1.0 / (1u64 << 53) as f64);
        -u.ln()
    }

    fn invl(&mut self, k: usize, mean: f64) -> f64 {
        let mean = if mean <= 0.0 { 0.01 } else { mean };
        let noise = self.p.cols[3][k];
        if noise == 0.0 {
            mean
        } else {
            (1.0 - noise) * mean + noise * mean * self.erand(k)
        }
    }

    fn init_sequence(&mut self, k: usize) {
        if self.p.cols[1][k] > 0.0 {
            self.on[k] = 1.0;
            self.event[k] = 0.0;
            self.ispike[k] = 0.0;
        }
    }

    fn next_invl(&mut self, k: usize) {
        if self.p.cols[1][k] > 0.0 {
            self.event[k] = self.invl(k, self.p.cols[0][k]);
        }
        if self.ispike[k] >= self.p.cols[1][k] {
            self.on[k] = 0.0;
        }
    }
}

impl Mechanism for NetStim {
    kernel_accessors!();
    kernel_storage!(event, on, ispike, rng, stream);
    fn add_instance(&mut self, site: &Site, params: &[f64]) {
        self.sites.push(site);
        self.p.push(params);
        for v in [&mut self.event, &mut self.on, &mut self.ispike] {
            v.push(0.0);
        }
        self.rng.push(0);
        self.stream.push(None);
    }
    fn state(&self, i: usize, k: usize) -> f64 {
        [&self.event, &self.on, &self.ispike][k][i]
    }
    fn set_random_stream(&mut self, instance: usize, key: [u32; 4]) -> Result<(), String> {
        let mut h = 0u64;
        for w in key {
            h = splitmix64(&mut (h ^ w as u64));
        }
        self.stream[instance] = Some(h);
        Ok(())
    }
    fn initialize(&mut self, cx: &mut Cx) -> KernelResult {
        for k in 0..self.sites.len() {
            self.rng[k] = self.stream[k].unwrap_or(self.p.cols[4][k] as u64);
            self.on[k] = 0.0;
            self.ispike[k] = 0.0;
            let noise = self.p.cols[3][k].clamp(0.0, 1.0);
            self.p.cols[3][k] = noise;
            let (interval, number, start) = (self.p.cols[0][k], self.p.cols[1][k], self.p.cols[2][k]);
            if start >= 0.0 && number > 0.0 {
                self.on[k] = 1.0;
                let e = start + self.invl(k, interval) - interval * (1.0 - noise);
                self.event[k] = e.max(0.0);
                cx.out.net_send(k, cx.t + self.event[k], 3.0);
            }
        }
        Ok(())
    }
    fn current(&mut self, _cx: &mut Cx) -> KernelResult {
        Ok(())
    }
    fn update_state(&mut self, _cx: &mut Cx) -> KernelResult {
        Ok(())
    }
    fn weights_read_only(&self) -> bool {
        true
    }
    fn net_receive(&mut self, k: usize, weights: &mut [f64], flag: f64, cx: &mut EventCx) -> KernelResult {
        let t = cx.t;
        if flag == 0.0 {
            let w = weights.first().copied().unwrap_or(0.0);
            if w > 0.0 && self.on[k] == 0.0 {
                self.init_sequence(k);
                self.next_invl(k);
                self.event[k] -= self.p.cols[0][k] * (1.0 - self.p.cols[3][k]);
                cx.out.net_send(k, t + self.event[k], 1.0);
            } else if w < 0.0 {
                self.on[k] = 0.0;
            }
        }
        if flag == 3.0 && self.on[k] == 1.0 {
            self.init_sequence(k);
            cx.out.net_send(k, t, 1.0);
        }
        if flag == 1.0 && self.on[k] == 1.0 {
            self.ispike[k] += 1.0;
            cx.out.net_event(k, t);
            self.next_invl(k);
            if self.on[k] == 1.0 {
                cx.out.net_send(k, t + self.event[k], 1.0);
            }
        }
        Ok(())
    }
}

/// `VecStim`: fires at each time of its vector (array `times`, sorted, >= 0), as vecevent.mod.
#[derive(Debug, Clone)]
pub struct VecStim {
    info: MechanismInfo,
    sites: Sites,
    /// No parameters; kept for the common accessors.
    p: Columns,
    times: Vec<Vec<f64>>,
    index: Vec<usize>,
}

impl Default for VecStim {
    fn default() -> VecStim {
        VecStim {
            info: artificial_info("VecStim", vec![], &["index"]),
            sites: Sites::default(),
            p: Columns::new(0),
            times: vec![],
            index: vec![],
        }
    }
}

impl Mechanism for VecStim {
    kernel_accessors!();
    kernel_storage!(times, index);
    fn add_instance(&mut self, site: &Site, _params: &[f64]) {
        self.sites.push(site);
        self.times.push(Vec::new());
        self.index.push(0);
    }
    fn state(&self, i: usize, _k: usize) -> f64 {
        self.index[i] as f64
    }
    fn set_array(&mut self, instance: usize, name: &str, values: &[f64]) -> Result<(), String> {
        if name != "times" {
            return Err(format!("VecStim takes the array \"times\", not {name:?}"));
        }
        if let Some(k) = values.iter().position(|t| !(t.is_finite() && *t >= 0.0)) {
            return Err(format!("spike time {k} is {} (times must be finite and >= 0)", values[k]));
        }
        if let Some(k) = values.windows(2).position(|w| w[1] < w[0]) {
            return Err(format!(
                "spike times must be sorted: element {} ({}) < element {k} ({})",
                k + 1,
                values[k + 1],
                values[k]
            ));
        }
        self.times[instance] = values.to_vec();
        Ok(())
    }
    fn initialize(&mut self, cx: &mut Cx) -> KernelResult {
        for k in 0..self.sites.len() {
            self.index[k] = 0;
            if let Some(&t0) = self.times[k].first() {
                self.index[k] = 1;
                cx.out.net_send(k, t0, 1.0);
            }
        }
        Ok(())
    }
    fn current(&mut self, _cx: &mut Cx) -> KernelResult {
        Ok(())
    }
    fn update_state(&mut self, _cx: &mut Cx) -> KernelResult {
        Ok(())
    }
    fn weights_read_only(&self) -> bool {
        true
    }
    fn net_receive(&mut self, k: usize, _weights: &mut [f64], flag: f64, cx: &mut EventCx) -> KernelResult {
        if flag == 1.0 {
            cx.out.net_event(k, cx.t);
            if let Some(&next) = self.times[k].get(self.index[k]) {
                self.index[k] += 1;
                cx.out.net_send(k, next, 1.0);
            }
        }
        Ok(())
    }
}
