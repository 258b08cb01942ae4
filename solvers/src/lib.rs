//! miv-solvers: the numerics of single cells and cell groups, with NEURON's fixed-step semantics.
//!
//! - [`morphology`]: the neutral shape description ([`Morphology`], [`Section`], [`Geometry`]).
//! - [`compartments`]: NEURON's discretisation (segment-centre and zero-area nodes, areas, axial
//!   conductances, nseg by the d_lambda rule).
//! - [`cable`]: the tree-structured cable matrix and the Hines solve.
//! - [`mechanism`]: the [`Mechanism`] trait, the built-in kernels (`pas`, `hh`, `IClamp`, `ExpSyn`,
//!   `Exp2Syn`, `NetStim`, `VecStim`) and the [`Catalogue`].
//! - [`ion`]: ion species (reversal potentials, currents, concentrations).
//! - [`cell`]: cell descriptions ([`CableCell`], [`ArtificialCell`]).
//! - [`group`]: [`CellGroup`], many cells stepped together: initialise, advance, events, spikes, probes.
//! - [`fastmath`]: a vectorisable exp.
//!
//! No MPI, no files: the engine and the CLI feed this crate with descriptions and events.

pub mod cable;
pub mod cell;
pub mod compartments;
pub mod error;
pub mod fastmath;
pub mod group;
pub mod ion;
pub mod mechanism;
pub mod morphology;

pub use cell::{ArtificialCell, CableCell, CellDescription, Detector, Location, Values};
pub use compartments::Compartments;
pub use error::{MorphologyError, SolverError};
pub use group::{
    CellGroup, ConnectionId, DeliveryRule, Event, GroupMemory, Method, Probe, ProbeSpec, SimOptions, Spike, SpikeRule,
    TargetId,
};
pub use mechanism::{Catalogue, Mechanism, MechanismInfo, MechanismKind, StepArithmetic};
pub use morphology::{Geometry, Morphology, Point3, Section, TreePoint};

/// The v_init a group is initialised with when it is built (NEURON's default, -65 mV; miv-config's constant).
pub use miv_config::DEFAULT_V_INIT;
