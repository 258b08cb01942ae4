//! The run options the engine's two YAML schemas share (experiments, docs/run-yaml.md; cell models,
//! docs/cell-yaml.md): the integration method, NEURON's spike and delivery rules, and the defaults of the time
//! step, initial potential and temperature. Both schemas deserialise these types, so both accept the same
//! values; an unknown value is an error naming the file, the key and the values allowed (through
//! `miv_config`'s `serde_path_to_error`).

use miv_solvers::{DeliveryRule, Method, SimOptions, SpikeRule};
use serde::Deserialize;

/// Time step (ms) when the YAML gives none (NEURON's 0.025, `SimOptions`' default).
pub const DEFAULT_DT: f64 = SimOptions::DEFAULT_DT;
/// Initial membrane potential (mV) when the YAML gives none (NEURON's -65).
pub const DEFAULT_V_INIT: f64 = miv_solvers::DEFAULT_V_INIT;
/// Temperature (degC) when neither the YAML nor a template gives one (NEURON's 6.3, `SimOptions`' default).
pub const DEFAULT_CELSIUS: f64 = SimOptions::DEFAULT_CELSIUS;

/// `method`: the integration method.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum MethodName {
    #[default]
    BackwardEuler,
    CrankNicolson,
}

/// `spike_rule`: which time a threshold crossing is recorded at.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum SpikeRuleName {
    /// NEURON's: the end of the step in which the threshold was crossed.
    #[default]
    Neuron,
    /// Interpolated within the step.
    Interpolated,
}

/// `delivery_rule`: which step an event is delivered in.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryRuleName {
    /// NEURON's: the nearest step.
    #[default]
    Neuron,
    /// Arbor's: the step the event falls in.
    Arbor,
}

impl From<MethodName> for Method {
    fn from(m: MethodName) -> Method {
        match m {
            MethodName::BackwardEuler => Method::BackwardEuler,
            MethodName::CrankNicolson => Method::CrankNicolson,
        }
    }
}

impl From<SpikeRuleName> for SpikeRule {
    fn from(r: SpikeRuleName) -> SpikeRule {
        match r {
            SpikeRuleName::Neuron => SpikeRule::Grid,
            SpikeRuleName::Interpolated => SpikeRule::Interpolated,
        }
    }
}

impl From<DeliveryRuleName> for DeliveryRule {
    fn from(r: DeliveryRuleName) -> DeliveryRule {
        match r {
            DeliveryRuleName::Neuron => DeliveryRule::Nearest,
            DeliveryRuleName::Arbor => DeliveryRule::Floor,
        }
    }
}

/// `#[serde(default = ...)]` functions for the constants above.
pub(crate) fn default_dt() -> f64 {
    DEFAULT_DT
}
pub(crate) fn default_v_init() -> f64 {
    DEFAULT_V_INIT
}
pub(crate) fn default_celsius() -> f64 {
    DEFAULT_CELSIUS
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Options {
        #[serde(default)]
        method: MethodName,
        #[serde(default)]
        spike_rule: SpikeRuleName,
        #[serde(default)]
        delivery_rule: DeliveryRuleName,
    }

    #[test]
    fn unknown_values_name_the_key_and_the_allowed_values() {
        let e = miv_config::from_yaml_str::<Options>("spike_rule: arbor\n", Path::new("x.yaml")).unwrap_err();
        let text = e.to_string();
        assert_eq!(e.key, "spike_rule", "{text}");
        assert!(text.contains("x.yaml") && text.contains("`neuron`") && text.contains("`interpolated`"), "{text}");
        let e = miv_config::from_yaml_str::<Options>("delivery_rule: interpolated\n", Path::new("x.yaml")).unwrap_err();
        assert_eq!(e.key, "delivery_rule", "{e}");
        assert!(e.to_string().contains("`arbor`"), "{e}");
        let e = miv_config::from_yaml_str::<Options>("method: rk4\n", Path::new("x.yaml")).unwrap_err();
        assert_eq!(e.key, "method", "{e}");
    }

    #[test]
    fn defaults_are_neurons() {
        let o: Options = miv_config::from_yaml_str("{}", Path::new("x.yaml")).unwrap();
        assert_eq!(SpikeRule::from(o.spike_rule), SpikeRule::Grid);
        assert_eq!(DeliveryRule::from(o.delivery_rule), DeliveryRule::Nearest);
        assert_eq!(Method::from(o.method), Method::BackwardEuler);
        assert_eq!((DEFAULT_DT, DEFAULT_CELSIUS), (SimOptions::default().dt, SimOptions::default().celsius));
    }
}
