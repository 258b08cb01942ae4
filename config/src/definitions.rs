//! The fixed enumerations MiV uses (SWC section types, synapse types), the base of the node indices in
//! `Trees` (`tree_base`), and the user's index tables for populations and layers.

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

/// The base of the point indices stored in `Section`: MiV-Simulator's files, miv before this option and
/// neuroh5 up to 4937699 use 0-based positions; neuroh5 since 6f26369 builds the topology only from 1-based
/// indices. `Parent Point`, `Source Section` and `Destination Section` are 0-based in both conventions.
/// Readers detect the base of every tree ([`NodeBase::detect`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum NodeBase {
    /// 0-based point positions (neuroh5 4937699, MiV-Simulator d2f14d4).
    Zero,
    /// 1-based point indices (neuroh5 HEAD, since 6f26369).
    #[default]
    One,
}

impl TryFrom<u8> for NodeBase {
    type Error = String;
    fn try_from(v: u8) -> Result<NodeBase, String> {
        match v {
            0 => Ok(NodeBase::Zero),
            1 => Ok(NodeBase::One),
            _ => Err(format!("tree node base {v}: expected 0 or 1")),
        }
    }
}

impl From<NodeBase> for u8 {
    fn from(b: NodeBase) -> u8 {
        match b {
            NodeBase::Zero => 0,
            NodeBase::One => 1,
        }
    }
}

impl NodeBase {
    pub fn offset(self) -> u32 {
        u8::from(self) as u32
    }

    /// The base of one tree's stored `Section` node indices (as decoded, before any shift), for a tree of
    /// `num_points` points. Every point belongs to a section, so a 0-based tree lists 0 and never
    /// `num_points`, a 1-based one `num_points` and never 0; anything else is ambiguous or invalid.
    pub fn detect(sections: &[Vec<u32>], num_points: usize) -> Result<NodeBase, String> {
        let n = num_points as u32;
        let ids = || sections.iter().flatten().copied();
        if let Some(bad) = ids().find(|&p| p > n) {
            return Err(format!("node index {bad} exceeds the {n} points of the tree in either base"));
        }
        let (zero, last) = (ids().any(|p| p == 0), ids().any(|p| p == n));
        match (zero, last) {
            (true, false) => Ok(NodeBase::Zero),
            (false, true) => Ok(NodeBase::One),
            (true, true) => {
                Err(format!("ambiguous node indices: both 0 and {n} occur ({n} points), neither 0-based nor 1-based"))
            }
            (false, false) => {
                Err(format!("ambiguous node indices: neither 0 nor {n} occurs ({n} points), the base cannot be told"))
            }
        }
    }
}

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

    #[test]
    fn node_base_is_0_or_1_in_yaml_and_json() {
        assert_eq!(serde_json::to_string(&NodeBase::Zero).unwrap(), "0");
        assert_eq!(serde_json::from_str::<NodeBase>("1").unwrap(), NodeBase::One);
        assert!(serde_json::from_str::<NodeBase>("2").is_err());
    }
}
