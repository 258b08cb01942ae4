//! The construction algorithms on in-memory data, free of files and MPI: soma placement, the distance
//! frame, sections and segments, synapse placement and connectivity. The job kinds feed them from and
//! write them to NeuroH5 files.

pub mod connections;
pub mod geometry;
pub mod morphology;
pub mod placement;
pub mod synapses;
