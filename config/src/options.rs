//! The run options the experiment (docs/run-yaml.md) and cell-model (docs/cell-yaml.md) schemas share: the
//! integration method, NEURON's spike and delivery rules, and the one source of the defaults of the time step,
//! initial potential, temperature and passive properties. Both schemas deserialise these types, so both accept
//! the same values; an unknown value is an error naming the file, the key and the values allowed. The solvers
//! take these defaults (`SimOptions`, `DEFAULT_V_INIT`, `DEFAULT_RA`, `DEFAULT_CM`) and turn the names into
//! their own enums (`From<MethodName> for Method`, ...).

use serde::Deserialize;

/// Time step (ms) when the YAML gives none (NEURON's 0.025).
pub const DEFAULT_DT: f64 = 0.025;
/// Initial membrane potential (mV) when the YAML gives none, and the v a cell group is built at (NEURON's -65).
pub const DEFAULT_V_INIT: f64 = -65.0;
/// Temperature (degC) when neither the YAML nor a template gives one (NEURON's 6.3).
pub const DEFAULT_CELSIUS: f64 = 6.3;
/// NEURON's default axial resistivity (ohm cm).
pub const DEFAULT_RA: f64 = 35.4;
/// NEURON's default membrane capacitance (uF/cm2).
pub const DEFAULT_CM: f64 = 1.0;
/// Frequency (Hz) of the d_lambda rule's AC length constant when the YAML gives none (NEURON's 100).
pub const DEFAULT_FREQUENCY: f64 = 100.0;

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
pub(crate) fn default_frequency() -> f64 {
    DEFAULT_FREQUENCY
}
pub(crate) fn default_ra() -> f64 {
    DEFAULT_RA
}
pub(crate) fn default_cm() -> f64 {
    DEFAULT_CM
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
        let e = crate::from_yaml_str::<Options>("spike_rule: arbor\n", Path::new("x.yaml")).unwrap_err();
        let text = e.to_string();
        assert_eq!(e.key, "spike_rule", "{text}");
        assert!(text.contains("x.yaml") && text.contains("`neuron`") && text.contains("`interpolated`"), "{text}");
        let e = crate::from_yaml_str::<Options>("delivery_rule: interpolated\n", Path::new("x.yaml")).unwrap_err();
        assert_eq!(e.key, "delivery_rule", "{e}");
        assert!(e.to_string().contains("`arbor`"), "{e}");
        let e = crate::from_yaml_str::<Options>("method: rk4\n", Path::new("x.yaml")).unwrap_err();
        assert_eq!(e.key, "method", "{e}");
    }

    #[test]
    fn defaults_are_neurons() {
        let o: Options = crate::from_yaml_str("{}", Path::new("x.yaml")).unwrap();
        assert_eq!(o.method, MethodName::BackwardEuler);
        assert_eq!(o.spike_rule, SpikeRuleName::Neuron);
        assert_eq!(o.delivery_rule, DeliveryRuleName::Neuron);
    }
}
