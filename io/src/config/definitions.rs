//! The fixed enumerations MiV uses (SWC section types, synapse types) and the user's index tables for
//! populations and layers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// SWC section types by name, with MiV's numbering (`config.SWCTypesDef`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SwcType {
    Soma,
    Axon,
    Basal,
    Apical,
    Trunk,
    Tuft,
    Ais,
    Hillock,
}

impl SwcType {
    pub const ALL: [SwcType; 8] = [
        SwcType::Soma,
        SwcType::Axon,
        SwcType::Basal,
        SwcType::Apical,
        SwcType::Trunk,
        SwcType::Tuft,
        SwcType::Ais,
        SwcType::Hillock,
    ];

    /// The SWC type code (soma 1, axon 2, basal 3, apical 4, trunk 5, tuft 6, ais 7, hillock 8).
    pub fn code(self) -> u8 {
        self as u8 + 1
    }

    pub fn from_code(code: i64) -> Option<SwcType> {
        if (1..=8).contains(&code) {
            Some(SwcType::ALL[code as usize - 1])
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        ["soma", "axon", "basal", "apical", "trunk", "tuft", "ais", "hillock"][self as usize]
    }

    pub fn from_name(name: &str) -> Option<SwcType> {
        SwcType::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// Synapse types with MiV's numbering (`config.SynapseTypesDef`): excitatory 0, inhibitory 1, modulatory 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SynapseType {
    Excitatory,
    Inhibitory,
    Modulatory,
}

impl SynapseType {
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<SynapseType> {
        [SynapseType::Excitatory, SynapseType::Inhibitory, SynapseType::Modulatory].get(code as usize).copied()
    }

    pub fn name(self) -> &'static str {
        ["excitatory", "inhibitory", "modulatory"][self as usize]
    }
}

/// `{population name: enum index}` (`Definitions.Populations`), e.g. STIM 0, PYR 100, PVBC 101, OLM 102.
/// The index orders populations in `H5Types` and so decides gid ranges.
pub type PopulationDefinitions = BTreeMap<String, u16>;

/// `{layer name: index}` (`Definitions.Layers`), e.g. SO 5, SP 6, SR 8, SLM 9. The indices must match the
/// layer column of the SWC files, since synapse layers are read from it.
pub type LayerDefinitions = BTreeMap<String, i8>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swc_codes_round_trip() {
        for t in SwcType::ALL {
            assert_eq!(SwcType::from_code(t.code() as i64), Some(t));
            assert_eq!(SwcType::from_name(t.name()), Some(t));
        }
        assert_eq!(SwcType::Apical.code(), 4);
        assert_eq!(SwcType::Ais.code(), 7);
        assert_eq!(SwcType::from_code(0), None);
        assert_eq!(SynapseType::from_code(1), Some(SynapseType::Inhibitory));
    }
}
