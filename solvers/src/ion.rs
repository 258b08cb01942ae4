//! Ion species as NEURON keeps them: at every node where some mechanism uses an ion there is one ion instance
//! with a reversal potential, the summed current of that ion (and its derivative by v), and the inside and
//! outside concentrations.
//!
//! Whether a reversal potential follows the concentrations is decided per instance by NEURON's `ion_style`
//! rules, from what the mechanisms at that node do with the species ([`IonStyle`]): where a concentration is
//! read or written and no mechanism writes the reversal potential, it is the Nernst potential at
//! initialisation (replacing any value set for it); where a concentration is also written, it is recomputed
//! before every current evaluation as well. Everywhere else the reversal potential keeps its set value.

/// NEURON's defaults for a species: (charge, erev mV, inside mM, outside mM). Species other than na, k and ca
/// take their charge from the mechanisms' VALENCE.
pub fn default_species(name: &str) -> (f64, f64, f64, f64) {
    match name {
        "na" => (1.0, 50.0, 10.0, 140.0),
        "k" => (1.0, -77.0, 54.4, 2.5),
        "ca" => (2.0, 12.5 * (2.0f64 / 5e-5).ln(), 5e-5, 2.0),
        _ => (1.0, 0.0, 1.0, 1.0),
    }
}

/// Whether NEURON fixes the charge of a species itself (na, k, ca), so that no VALENCE can change it.
pub fn builtin_species(name: &str) -> bool {
    matches!(name, "na" | "k" | "ca")
}

/// How the mechanisms at one node use a species, accumulated over them (NEURON's `nrn_promote`): the
/// strongest use of the concentrations and of the reversal potential.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IonStyle {
    /// 0 unused, 1 read, 3 written (NEURON's c_style).
    pub conc: u8,
    /// 0 unused, 1 read, 3 written (before promotion; NEURON's e_style).
    pub erev: u8,
}

impl IonStyle {
    pub fn of(read_conc: bool, write_conc: bool, read_erev: bool, write_erev: bool) -> IonStyle {
        let conc = if write_conc { 3 } else { u8::from(read_conc) };
        let erev = if write_erev { 3 } else { u8::from(read_erev) };
        IonStyle { conc, erev }
    }

    pub fn promote(self, other: IonStyle) -> IonStyle {
        IonStyle { conc: self.conc.max(other.conc), erev: self.erev.max(other.erev) }
    }

    /// The reversal potential is the Nernst potential at initialisation (NEURON's einit).
    pub fn einit(self) -> bool {
        self.conc > 0 && self.erev < 3
    }

    /// The reversal potential is also recomputed before every current evaluation (NEURON's eadvance).
    pub fn eadvance(self) -> bool {
        self.conc == 3 && self.erev < 3
    }
}

/// The gas constant (J/(K mol)) and Faraday constant (C/mol) NEURON 9 uses (2019 SI values).
pub const GAS_CONSTANT: f64 = 8.314_462_618_153_24;
pub const FARADAY: f64 = 96_485.332_123_310_01;

/// Nernst potential (mV) at `celsius` for inside/outside concentrations and valence.
pub fn nernst(ci: f64, co: f64, charge: f64, celsius: f64) -> f64 {
    if charge == 0.0 {
        return 0.0;
    }
    if ci <= 0.0 {
        return 1e6;
    }
    if co <= 0.0 {
        return -1e6;
    }
    1000.0 * GAS_CONSTANT * (celsius + 273.15) / (FARADAY * charge) * (co / ci).ln()
}

/// All instances of one species in a cell group (structure of arrays, one entry per ion instance).
#[derive(Debug, Clone, Default)]
pub struct IonData {
    pub name: String,
    pub charge: f64,
    /// Per instance: the reversal potential is the Nernst potential at initialisation ([`IonStyle::einit`]).
    pub einit: Vec<bool>,
    /// Per instance: ... and before every current evaluation ([`IonStyle::eadvance`]).
    pub eadvance: Vec<bool>,
    /// Some instance has `eadvance`.
    pub any_eadvance: bool,
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
        self.einit.push(false);
        self.eadvance.push(false);
        self.erev.push(erev);
        self.cur.push(0.0);
        self.dcurdv.push(0.0);
        self.conc_in.push(conc_in);
        self.conc_out.push(conc_out);
        (self.node.len() - 1) as u32
    }

    /// Set an instance's reversal-potential rules from the accumulated style of the mechanisms at its node.
    pub fn set_style(&mut self, i: usize, style: IonStyle) {
        self.einit[i] = style.einit();
        self.eadvance[i] = style.eadvance();
        self.any_eadvance |= self.eadvance[i];
    }

    pub fn shrink_to_fit(&mut self) {
        for v in [&mut self.erev, &mut self.cur, &mut self.dcurdv, &mut self.conc_in, &mut self.conc_out] {
            v.shrink_to_fit();
        }
        self.node.shrink_to_fit();
        self.einit.shrink_to_fit();
        self.eadvance.shrink_to_fit();
    }

    pub fn heap_bytes(&self) -> usize {
        use crate::mechanism::vec_bytes as b;
        b(&self.node)
            + b(&self.erev)
            + b(&self.cur)
            + b(&self.dcurdv)
            + b(&self.conc_in)
            + b(&self.conc_out)
            + b(&self.einit)
            + b(&self.eadvance)
    }

    /// Start of a current evaluation: clear the sums, update the Nernst potentials that follow written
    /// concentrations (NEURON's `ion_cur`).
    pub fn begin_currents(&mut self, celsius: f64) {
        self.cur.fill(0.0);
        self.dcurdv.fill(0.0);
        if self.any_eadvance {
            for i in 0..self.node.len() {
                if self.eadvance[i] {
                    self.erev[i] = nernst(self.conc_in[i], self.conc_out[i], self.charge, celsius);
                }
            }
        }
    }

    /// At initialisation: the Nernst potential wherever a concentration is used (NEURON's `ion_init`).
    pub fn init_nernst(&mut self, celsius: f64) {
        for i in 0..self.node.len() {
            if self.einit[i] {
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
        let v = nernst(5e-5, 2.0, 2.0, 6.3);
        let expected = 1000.0 * GAS_CONSTANT * 279.45 / (2.0 * FARADAY) * (2.0f64 / 5e-5).ln();
        assert!((v - expected).abs() < 1e-12 && (v - 127.5895).abs() < 1e-4, "{v}");
    }

    /// NEURON's nrn_promote table: einit where a concentration is used and the reversal potential is not
    /// written; eadvance only where a concentration is written.
    #[test]
    fn ion_style_rules() {
        let s = |rc, wc, re, we| IonStyle::of(rc, wc, re, we);
        // A channel reading only the reversal potential: it stays as set.
        assert!(!s(false, false, true, false).einit() && !s(false, false, true, false).eadvance());
        // Reading a concentration (ch_CavL reads cai, cao, eca): Nernst at initialisation only.
        assert!(s(true, false, true, false).einit() && !s(true, false, true, false).eadvance());
        // Writing a concentration: Nernst at initialisation and at every step.
        assert!(s(false, true, false, false).einit() && s(false, true, false, false).eadvance());
        // Writing the reversal potential: never recomputed.
        assert!(!s(true, true, false, true).einit() && !s(true, true, false, true).eadvance());
        // Accumulated over mechanisms: a reader of eca next to a reader of cai.
        let both = s(false, false, true, false).promote(s(true, false, false, false));
        assert!(both.einit() && !both.eadvance());
    }
}
