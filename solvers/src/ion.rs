//! Ion species as NEURON keeps them: at every node where some mechanism uses an ion there is one ion instance
//! with a reversal potential, the summed current of that ion (and its derivative by v), and the inside and
//! outside concentrations. Reversal potentials are fixed unless the species is marked `nernst`, in which case
//! they follow the concentrations (recomputed at initialisation and before each current evaluation).

/// NEURON's defaults for a species: (charge, erev mV, inside mM, outside mM).
pub fn default_species(name: &str) -> (i32, f64, f64, f64) {
    match name {
        "na" => (1, 50.0, 10.0, 140.0),
        "k" => (1, -77.0, 54.4, 2.5),
        "ca" => (2, 12.5 * (2.0f64 / 5e-5).ln(), 5e-5, 2.0),
        _ => (1, 0.0, 1.0, 1.0),
    }
}

/// The gas constant (J/(K mol)) and Faraday constant (C/mol) NEURON 9 uses (2019 SI values).
pub const GAS_CONSTANT: f64 = 8.314_462_618_153_24;
pub const FARADAY: f64 = 96_485.332_123_310_01;

/// Nernst potential (mV) at `celsius` for inside/outside concentrations and valence.
pub fn nernst(ci: f64, co: f64, charge: i32, celsius: f64) -> f64 {
    if ci <= 0.0 {
        return 1e6;
    }
    if co <= 0.0 {
        return -1e6;
    }
    1000.0 * GAS_CONSTANT * (celsius + 273.15) / (FARADAY * charge as f64) * (co / ci).ln()
}

/// All instances of one species in a cell group (structure of arrays, one entry per ion instance).
#[derive(Debug, Clone, Default)]
pub struct IonData {
    pub name: String,
    pub charge: i32,
    /// Reversal potential follows the concentrations (Nernst) instead of staying fixed.
    pub nernst: bool,
    pub node: Vec<u32>,
    pub erev: Vec<f64>,
    /// Summed membrane current of this ion (mA/cm2), rebuilt by the mechanisms at every step.
    pub cur: Vec<f64>,
    /// d(cur)/dv summed over the mechanisms (S/cm2).
    pub dcurdv: Vec<f64>,
    pub conc_in: Vec<f64>,
    pub conc_out: Vec<f64>,
}

impl IonData {
    pub fn new(name: &str) -> IonData {
        let (charge, ..) = default_species(name);
        IonData { name: name.into(), charge, ..Default::default() }
    }

    pub fn len(&self) -> usize {
        self.node.len()
    }

    pub fn is_empty(&self) -> bool {
        self.node.is_empty()
    }

    pub fn push(&mut self, node: u32, erev: f64, conc_in: f64, conc_out: f64) -> u32 {
        self.node.push(node);
        self.erev.push(erev);
        self.cur.push(0.0);
        self.dcurdv.push(0.0);
        self.conc_in.push(conc_in);
        self.conc_out.push(conc_out);
        (self.node.len() - 1) as u32
    }

    pub fn shrink_to_fit(&mut self) {
        for v in [&mut self.erev, &mut self.cur, &mut self.dcurdv, &mut self.conc_in, &mut self.conc_out] {
            v.shrink_to_fit();
        }
        self.node.shrink_to_fit();
    }

    pub fn heap_bytes(&self) -> usize {
        use crate::mechanism::vec_bytes as b;
        b(&self.node) + b(&self.erev) + b(&self.cur) + b(&self.dcurdv) + b(&self.conc_in) + b(&self.conc_out)
    }

    /// Start of a current evaluation: clear the sums, update Nernst potentials.
    pub fn begin_currents(&mut self, celsius: f64) {
        self.cur.fill(0.0);
        self.dcurdv.fill(0.0);
        self.update_nernst(celsius);
    }

    pub fn update_nernst(&mut self, celsius: f64) {
        if self.nernst {
            for i in 0..self.node.len() {
                self.erev[i] = nernst(self.conc_in[i], self.conc_out[i], self.charge, celsius);
            }
        }
    }

    /// Crank-Nicolson: move the ion currents to the middle of the step, cur += dcur/dv * dv (NEURON's
    /// `second_order_cur`); `dv` is the solved node update.
    pub fn second_order_current(&mut self, dv: &[f64]) {
        for i in 0..self.node.len() {
            self.cur[i] += self.dcurdv[i] * dv[self.node[i] as usize];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nernst_potential() {
        // RT/(zF) ln(co/ci) at 6.3 degC for ca (z = 2) between 5e-5 and 2 mM: 127.5895 mV (NEURON's nernst()).
        let v = nernst(5e-5, 2.0, 2, 6.3);
        let expected = 1000.0 * GAS_CONSTANT * 279.45 / (2.0 * FARADAY) * (2.0f64 / 5e-5).ln();
        assert!((v - expected).abs() < 1e-12 && (v - 127.5895).abs() < 1e-4, "{v}");
    }
}
