//! The namespace, attribute and group names MiV-Simulator uses (DOMAIN A.4, A.5), so callers do not spell
//! them out.

pub use crate::tree::{
    DST_SECTION, LAYER, PARENT, RADIUS, SECTION, SRC_SECTION, SWC_TYPE, TREES, X_COORD, Y_COORD, Z_COORD,
};

/// Soma positions written by the architecture job.
pub const GENERATED_COORDINATES: &str = "Generated Coordinates";
/// Soma positions as the Dec-2023 runtime reads them (a copy of `Generated Coordinates`).
pub const COORDINATES: &str = "Coordinates";
pub const U_COORD: &str = "U Coordinate";
pub const V_COORD: &str = "V Coordinate";
pub const L_COORD: &str = "L Coordinate";

pub const ARC_DISTANCES: &str = "Arc Distances";
pub const U_DISTANCE: &str = "U Distance";
pub const V_DISTANCE: &str = "V Distance";
/// HDF5 attributes of the `Arc Distances` group.
pub const REFERENCE_U_MIN: &str = "Reference U Min";
pub const REFERENCE_U_MAX: &str = "Reference U Max";
pub const REFERENCE_V_MIN: &str = "Reference V Min";
pub const REFERENCE_V_MAX: &str = "Reference V Max";

pub const SYNAPSE_ATTRIBUTES: &str = "Synapse Attributes";
pub const SYN_IDS: &str = "syn_ids";
pub const SYN_LOCS: &str = "syn_locs";
pub const SYN_SECS: &str = "syn_secs";
pub const SYN_LAYERS: &str = "syn_layers";
pub const SYN_TYPES: &str = "syn_types";
pub const SWC_TYPES: &str = "swc_types";
pub const SYN_CDISTS: &str = "syn_cdists";

/// Edge attribute namespaces of `generate_connections`.
pub const SYNAPSES: &str = "Synapses";
pub const SYN_ID: &str = "syn_id";
pub const CONNECTIONS: &str = "Connections";
pub const DISTANCE: &str = "distance";

/// Simulation output.
pub const SPIKE_EVENTS: &str = "Spike Events";
pub const SPIKE_TIMES: &str = "t";
pub const TRIAL_INDEX: &str = "Trial Index";
pub const TRIAL_DURATION: &str = "Trial Duration";
pub const ARTIFICIAL: &str = "artificial";
pub const LOCAL_FIELD_POTENTIAL: &str = "Local Field Potential";
