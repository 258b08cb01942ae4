//! Just enough of NEURON's units library to give named constants their value: `FARADAY = (faraday)
//! (coulomb)` means "one faraday expressed in coulombs". Units on declarations are only text; they are
//! never checked. Physical constants are NEURON 9's (CODATA 2018, "modern units").

use std::collections::HashMap;

/// Dimension exponents: m, kg, s, coulomb, kelvin.
type Dims = [i32; 5];

#[derive(Debug, Clone, Copy, PartialEq)]
struct Quantity {
    factor: f64,
    dims: Dims,
}

const ONE: Quantity = Quantity { factor: 1.0, dims: [0; 5] };

fn base(factor: f64, dims: Dims) -> Quantity {
    Quantity { factor, dims }
}

fn mul(a: Quantity, b: Quantity) -> Quantity {
    let mut d = a.dims;
    for (x, y) in d.iter_mut().zip(b.dims) {
        *x += y;
    }
    Quantity { factor: a.factor * b.factor, dims: d }
}

fn powi(a: Quantity, n: i32) -> Quantity {
    Quantity { factor: a.factor.powi(n), dims: a.dims.map(|d| d * n) }
}

const PREFIXES: &[(&str, f64)] = &[
    ("yotta", 1e24),
    ("zetta", 1e21),
    ("exa", 1e18),
    ("peta", 1e15),
    ("tera", 1e12),
    ("giga", 1e9),
    ("mega", 1e6),
    ("kilo", 1e3),
    ("hecto", 1e2),
    ("deka", 1e1),
    ("deci", 1e-1),
    ("centi", 1e-2),
    ("milli", 1e-3),
    ("micro", 1e-6),
    ("nano", 1e-9),
    ("pico", 1e-12),
    ("femto", 1e-15),
    ("atto", 1e-18),
    ("M", 1e6),
    ("k", 1e3),
    ("c", 1e-2),
    ("m", 1e-3),
    ("u", 1e-6),
    ("n", 1e-9),
    ("p", 1e-12),
    ("f", 1e-15),
];

/// Unit names known without definition (a subset of nrnunits.lib).
fn builtin(name: &str) -> Option<Quantity> {
    const E: f64 = 1.602176634e-19;
    const NA: f64 = 6.02214076e23;
    const KB: f64 = 1.380649e-23;
    let m = base(1.0, [1, 0, 0, 0, 0]);
    let kg = base(1.0, [0, 1, 0, 0, 0]);
    let s = base(1.0, [0, 0, 1, 0, 0]);
    let c = base(1.0, [0, 0, 0, 1, 0]);
    let k = base(1.0, [0, 0, 0, 0, 1]);
    let joule = mul(mul(kg, powi(m, 2)), powi(s, -2));
    let amp = mul(c, powi(s, -1));
    let volt = mul(joule, powi(c, -1));
    let ohm = mul(volt, powi(amp, -1));
    let liter = base(1e-3, [3, 0, 0, 0, 0]);
    Some(match name {
        "1" => ONE,
        "m" | "meter" | "metre" => m,
        "kg" => kg,
        "g" | "gram" | "gm" => base(1e-3, kg.dims),
        "sec" | "s" | "second" => s,
        "min" | "minute" => base(60.0, s.dims),
        "hour" | "hr" => base(3600.0, s.dims),
        "coul" | "coulomb" | "C" => c,
        "K" | "degC" | "DegC" | "kelvin" | "degK" => k,
        "ampere" | "amp" | "A" => amp,
        "volt" | "V" => volt,
        "joule" | "J" => joule,
        "watt" | "W" => mul(joule, powi(s, -1)),
        "ohm" => ohm,
        "mho" | "siemens" | "S" => powi(ohm, -1),
        "farad" | "F" => mul(c, powi(volt, -1)),
        "liter" | "litre" | "l" | "L" => liter,
        "molar" | "M" => base(NA, powi(liter, -1).dims).scale(1e3),
        "mole" | "mol" => base(NA, [0; 5]),
        "e" | "electron" => base(E, c.dims),
        "faraday" => base(E * NA, c.dims),
        "boltzmann" | "k" => base(KB, mul(joule, powi(k, -1)).dims),
        "gasconstant" | "R" => base(KB * NA, mul(joule, powi(k, -1)).dims),
        "micron" => base(1e-6, m.dims),
        "cc" => base(1e-6, [3, 0, 0, 0, 0]),
        "hz" | "Hz" | "hertz" => powi(s, -1),
        "pi" | "PI" => base(std::f64::consts::PI, [0; 5]),
        "erg" => base(1e-7, joule.dims),
        "cal" | "calorie" => base(4.1868, joule.dims),
        "newton" | "N" => mul(kg, mul(m, powi(s, -2))),
        "dyne" => base(1e-5, mul(kg, mul(m, powi(s, -2))).dims),
        _ => return None,
    })
}

impl Quantity {
    fn scale(self, f: f64) -> Quantity {
        Quantity { factor: self.factor * f, dims: self.dims }
    }
}

/// User definitions from UNITS blocks (`(mM) = (milli/liter)`), keyed by name.
#[derive(Debug, Default, Clone)]
pub struct UnitTable {
    defs: HashMap<String, String>,
}

impl UnitTable {
    pub fn define(&mut self, name: &str, def: &str) {
        self.defs.insert(name.trim().to_string(), def.to_string());
    }

    fn word(&self, w: &str, depth: u32) -> Option<Quantity> {
        if depth > 20 {
            return None;
        }
        if let Some(def) = self.defs.get(w) {
            if def.trim() != w {
                return self.eval(def, depth + 1);
            }
        }
        if let Some(q) = builtin(w) {
            return Some(q);
        }
        if let Some((_, f)) = PREFIXES.iter().find(|(p, _)| p.len() > 1 && *p == w) {
            return Some(base(*f, [0; 5]));
        }
        for (p, f) in PREFIXES {
            if let Some(rest) = w.strip_prefix(p) {
                if !rest.is_empty() {
                    if let Some(q) = self.word(rest, depth + 1) {
                        return Some(q.scale(*f));
                    }
                }
            }
        }
        // Plural: coulombs, liters.
        let stem = w.strip_suffix('s')?;
        if stem.len() > 1 {
            self.word(stem, depth + 1)
        } else {
            None
        }
    }

    /// A units expression: factors separated by spaces, '-' or '*', one '/' switching to the
    /// denominator, trailing digits as powers (`cm2`), numbers as plain factors.
    fn eval(&self, text: &str, depth: u32) -> Option<Quantity> {
        let mut q = ONE;
        let mut denom = false;
        let spaced = text.replace('/', " / ").replace(['-', '*'], " ");
        for tok in spaced.split_whitespace() {
            if tok == "/" {
                denom = true;
                continue;
            }
            let f = if let Ok(x) = tok.parse::<f64>() {
                base(x, [0; 5])
            } else {
                let digits = tok.len() - tok.trim_end_matches(|c: char| c.is_ascii_digit()).len();
                let (w, pw) = if digits > 0 && digits < tok.len() {
                    (&tok[..tok.len() - digits], tok[tok.len() - digits..].parse::<i32>().ok()?)
                } else {
                    (tok, 1)
                };
                powi(self.word(w, depth)?, pw)
            };
            q = mul(q, if denom { powi(f, -1) } else { f });
        }
        Some(q)
    }

    /// The number of `to` units in one `from` unit; `None` when a unit is unknown or the dimensions
    /// differ.
    pub fn factor(&self, from: &str, to: &str) -> Option<f64> {
        let a = self.eval(from, 0)?;
        let b = self.eval(to, 0)?;
        (a.dims == b.dims).then(|| a.factor / b.factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        ((a - b) / b).abs() < 1e-12
    }

    #[test]
    fn physical_constants_as_neuron_9() {
        let t = UnitTable::default();
        assert!(close(t.factor("faraday", "coulombs").unwrap(), 96485.33212331001));
        assert!(close(t.factor("faraday", "kilocoulombs").unwrap(), 96.48533212331001));
        assert!(close(t.factor("k-mole", "joule/degC").unwrap(), 8.31446261815324));
        assert_eq!(t.factor("faraday", "volt"), None);
    }

    #[test]
    fn user_definitions_and_prefixes() {
        let mut t = UnitTable::default();
        t.define("mM", "millimolar");
        t.define("mA", "milliamp");
        assert!(close(t.factor("mA/cm2", "amp/m2").unwrap(), 10.0));
        assert!(close(t.factor("mM", "molar").unwrap(), 1e-3));
        assert!(close(t.factor("um2", "cm2").unwrap(), 1e-8));
        assert!(close(t.factor("ms", "sec").unwrap(), 1e-3));
    }
}
