//! `synapses.yml`: for every (postsynaptic, presynaptic) population pair, which synapses the projection takes
//! (type, section types and layers with proportions), how many contacts per source and the synaptic
//! mechanisms.
//!
//! `mechanisms` comes in two shapes and both are accepted: the flat `{AMPA: {tau_rise: .., ..}}` of the
//! MiV-Simulator-Cases files (and the legacy Env parser), and HEAD's `{default | <swc type>: {AMPA: {..}}}`.
//! The legacy key `swctype mechanisms` (per SWC type) is accepted too. All are normalised to the keyed form.

use std::collections::BTreeMap;
use std::path::Path;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::{definitions::LayerDefinitions, geometry::join, ConfigError, SwcType, SynapseType};

/// `{post: {pre: Projection}}`.
pub type Synapses = BTreeMap<String, BTreeMap<String, Projection>>;

/// Parameters of one synaptic mechanism label (`tau_rise`, `tau_decay`, `e`, `g_unit`, `weight`, and any
/// others the point process takes), in file order.
pub type MechanismParams = IndexMap<String, f64>;

/// Where a mechanism parameter set applies: every section (`default`) or one SWC section type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MechanismSite {
    Default,
    Swc(SwcType),
}

impl MechanismSite {
    fn parse(key: &serde_norway::Value) -> Option<MechanismSite> {
        match key {
            serde_norway::Value::String(s) if s == "default" => Some(MechanismSite::Default),
            serde_norway::Value::String(s) => SwcType::from_name(s).map(MechanismSite::Swc),
            serde_norway::Value::Number(n) => n.as_i64().and_then(SwcType::from_code).map(MechanismSite::Swc),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MechanismSite::Default => "default",
            MechanismSite::Swc(t) => t.name(),
        }
    }
}

impl Serialize for MechanismSite {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// One projection pre → post.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawProjection")]
pub struct Projection {
    #[serde(rename = "type")]
    pub kind: SynapseType,
    /// `sections[k]`, `layers[k]` and `proportions[k]` are parallel: this projection takes the fraction
    /// `proportions[k]` of the postsynaptic cell's `kind` synapses on `sections[k]` in `layers[k]`.
    pub sections: Vec<SwcType>,
    pub layers: Vec<String>,
    pub proportions: Vec<f64>,
    /// Synapses per chosen source cell.
    pub contacts: u32,
    pub mechanisms: IndexMap<MechanismSite, IndexMap<String, MechanismParams>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProjection {
    #[serde(rename = "type")]
    kind: SynapseType,
    sections: Vec<SwcType>,
    layers: Vec<String>,
    proportions: Vec<f64>,
    #[serde(default = "one")]
    contacts: u32,
    #[serde(default)]
    mechanisms: Option<serde_norway::Value>,
    #[serde(default, rename = "swctype mechanisms")]
    swctype_mechanisms: Option<IndexMap<SwcType, IndexMap<String, MechanismParams>>>,
}

fn one() -> u32 {
    1
}

impl TryFrom<RawProjection> for Projection {
    type Error = String;

    fn try_from(r: RawProjection) -> Result<Projection, String> {
        let n = r.sections.len();
        if r.layers.len() != n || r.proportions.len() != n {
            return Err(format!(
                "`sections`, `layers` and `proportions` must have the same length, got {}, {} and {}",
                n,
                r.layers.len(),
                r.proportions.len()
            ));
        }
        if let Some(p) = r.proportions.iter().find(|p| !(0.0..=1.0).contains(*p)) {
            return Err(format!("`proportions` must lie in [0, 1], got {p}"));
        }
        if r.contacts == 0 {
            return Err("`contacts` must be at least 1".into());
        }
        let mut mechanisms = IndexMap::new();
        if let Some(m) = r.mechanisms {
            mechanisms = parse_mechanisms(m).map_err(|e| format!("mechanisms: {e}"))?;
        }
        if let Some(by_swc) = r.swctype_mechanisms {
            if !mechanisms.is_empty() {
                return Err("give either `mechanisms` or `swctype mechanisms`, not both".into());
            }
            mechanisms = by_swc.into_iter().map(|(t, m)| (MechanismSite::Swc(t), m)).collect();
        }
        Ok(Projection {
            kind: r.kind,
            sections: r.sections,
            layers: r.layers,
            proportions: r.proportions,
            contacts: r.contacts,
            mechanisms,
        })
    }
}

/// The flat `{label: {param: value}}` form or the keyed `{site: {label: {param: value}}}` form.
fn parse_mechanisms(
    v: serde_norway::Value,
) -> Result<IndexMap<MechanismSite, IndexMap<String, MechanismParams>>, String> {
    let serde_norway::Value::Mapping(map) = v else {
        return Err("expected a mapping".into());
    };
    if map.is_empty() {
        return Ok(IndexMap::new());
    }
    let keyed = !map.is_empty()
        && map.iter().all(|(k, v)| {
            MechanismSite::parse(k).is_some()
                && matches!(v, serde_norway::Value::Mapping(m) if m.values().all(|x| matches!(x, serde_norway::Value::Mapping(_))))
        });
    let labels = |v: serde_norway::Value| -> Result<IndexMap<String, MechanismParams>, String> {
        serde_norway::from_value(v).map_err(|e| format!("expected {{label: {{parameter: number}}}}: {e}"))
    };
    let mut out = IndexMap::new();
    if keyed {
        for (k, v) in map {
            out.insert(MechanismSite::parse(&k).expect("checked"), labels(v)?);
        }
    } else {
        out.insert(MechanismSite::Default, labels(serde_norway::Value::Mapping(map))?);
    }
    Ok(out)
}

/// MiV's rule: for every postsynaptic population, the proportions summed per (type, section, layer) over all
/// presynaptic populations must be 1 (numpy `isclose`). Also checks layer names against `layers` (when given)
/// and that every presynaptic population is known (when `populations` is not empty).
pub fn validate_synapses(
    synapses: &Synapses,
    layers: &LayerDefinitions,
    populations: &[&str],
    file: &Path,
    key: &str,
) -> Result<(), ConfigError> {
    for (post, by_pre) in synapses {
        let mut sums: BTreeMap<(SynapseType, SwcType, &str), f64> = BTreeMap::new();
        for (pre, p) in by_pre {
            let k = join(&join(key, post), pre);
            if !populations.is_empty() && !populations.contains(&pre.as_str()) {
                return Err(ConfigError::new(file, k, format!("unknown presynaptic population `{pre}`")));
            }
            for ((s, l), x) in p.sections.iter().zip(&p.layers).zip(&p.proportions) {
                if !layers.is_empty() && !layers.contains_key(l) {
                    return Err(ConfigError::new(file, format!("{k}.layers"), format!("unknown layer `{l}`")));
                }
                *sums.entry((p.kind, *s, l.as_str())).or_default() += x;
            }
        }
        for ((t, s, l), v) in sums {
            if (v - 1.0).abs() > 1e-8 + 1e-5 {
                return Err(ConfigError::new(
                    file,
                    join(key, post),
                    format!(
                        "proportions of {} synapses on {} in layer {l} sum to {v} over all presynaptic populations; expected 1",
                        t.name(),
                        s.name()
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::from_yaml_str;

    const FLAT: &str = r#"
PVBC:
  PYR:
    type: excitatory
    sections: [soma, apical, apical, basal]
    layers: [SP, SLM, SR, SO]
    proportions: [0.5, 0.5, 0.5, 0.5]
    mechanisms:
      AMPA: {tau_rise: 0.5, tau_decay: 3.0, e: 0, g_unit: 0.0005, weight: 1.0}
  STIM:
    type: excitatory
    sections: [soma, apical, apical, basal]
    layers: [SP, SLM, SR, SO]
    proportions: [0.5, 0.5, 0.5, 0.5]
    mechanisms:
      default:
        AMPA: {tau_rise: 0.5, tau_decay: 3.0, e: 0, g_unit: 0.0002, weight: 0.1}
"#;

    #[test]
    fn both_mechanism_forms_normalise_to_keyed() {
        let s: Synapses = from_yaml_str(FLAT, Path::new("synapses.yml")).unwrap();
        let pyr = &s["PVBC"]["PYR"].mechanisms;
        let stim = &s["PVBC"]["STIM"].mechanisms;
        assert_eq!(pyr[&MechanismSite::Default]["AMPA"]["g_unit"], 0.0005);
        assert_eq!(stim[&MechanismSite::Default]["AMPA"]["weight"], 0.1);
        assert_eq!(s["PVBC"]["PYR"].contacts, 1);
        let layers: LayerDefinitions =
            [("SO", 5), ("SP", 6), ("SR", 8), ("SLM", 9)].map(|(k, v)| (k.to_string(), v)).into();
        validate_synapses(&s, &layers, &["PYR", "STIM"], Path::new("synapses.yml"), "").unwrap();
        // The normalised form reads back to the same value.
        let json = serde_json::to_value(&s).unwrap();
        let back: Synapses = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn swctype_mechanisms_and_bad_lengths() {
        let y = "P: {Q: {type: inhibitory, sections: [soma], layers: [SP], proportions: [1.0], \
                 swctype mechanisms: {soma: {GABA_A: {g_unit: 0.1}}}}}";
        let s: Synapses = from_yaml_str(y, Path::new("s.yml")).unwrap();
        assert_eq!(s["P"]["Q"].mechanisms[&MechanismSite::Swc(SwcType::Soma)]["GABA_A"]["g_unit"], 0.1);
        let e = from_yaml_str::<Synapses>(
            "P: {Q: {type: inhibitory, sections: [soma], layers: [], proportions: [1]}}",
            Path::new("s.yml"),
        )
        .unwrap_err();
        assert_eq!(e.key, "P.Q");
        assert!(e.message.contains("same length"), "{e}");
        let e = from_yaml_str::<Synapses>(
            "P: {Q: {type: inhibitory, sections: [soma], layers: [SP], proportions: [1], contact: 2}}",
            Path::new("s.yml"),
        )
        .unwrap_err();
        assert!(e.message.contains("contact"), "{e}");
    }

    #[test]
    fn proportions_must_sum_to_one() {
        let y = "P:\n  A: {type: excitatory, sections: [soma, basal], layers: [SP, SO], proportions: [0.5, 1.0]}\n  \
                 B: {type: excitatory, sections: [soma], layers: [SP], proportions: [0.4]}\n";
        let s: Synapses = from_yaml_str(y, Path::new("s.yml")).unwrap();
        let e = validate_synapses(&s, &Default::default(), &[], Path::new("s.yml"), "synapses").unwrap_err();
        assert_eq!(e.key, "synapses.P");
        assert!(e.message.contains("soma in layer SP sum to 0.9"), "{e}");
    }
}
