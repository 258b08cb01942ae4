//! miv-io: NeuroH5 files, read and written exactly as neuroh5 and MiV-Simulator do, serially or by every
//! rank of an MPI job through MPI-IO.
//!
//! | module | what | main items |
//! |---|---|---|
//! | [`atomic`] | output files written as `<name>.partial`, synced and renamed | [`atomic::write_atomic`], [`atomic::AtomicFile`] |
//! | [`file`] | a file open on every rank (MPI-IO when parallel), written under `<name>.partial` until finished | [`NeuroH5File`], [`WriteOptions`] |
//! | [`types`] | `/H5Types`: population enum, gid ranges, valid projections | [`H5Types`], [`PopulationRanges`], [`Population`] |
//! | `dataset` (private) | the collective 1-D dataset layer `cells` and `graph` share: whole, broadcast and range-union reads, resize-and-write at per-rank offsets, writer blocks | |
//! | [`cells`] | cell attribute namespaces (`Cell Index`/`Attribute Pointer`/`Attribute Value`), any numeric type | [`CellAttributes`], [`AttributeData`], [`Selection`], [`AttributeInfo`] |
//! | [`tree`] | morphologies: [`Tree`], neuroh5's section contraction, `section_topology`, the `Trees` namespace | [`Tree`], [`SectionTopology`], [`contract`] |
//! | [`swc`] | SWC import into a [`Tree`] | [`read_swc`], [`parse_swc`] |
//! | [`graph`] | projections in destination-block-sparse form with edge attribute namespaces | [`Projection`], [`EdgeAttribute`], [`ProjectionInfo`] |
//! | [`output`] | simulation output: `Spike Events` namespaces and `Local Field Potential` groups | [`SpikeOutput`], [`LfpTrace`], [`write_results`] |
//! | [`dtype`] | element types of attribute values | [`Dtype`], [`Element`], [`Values`] |
//! | [`names`] | the namespace and attribute names MiV uses | |
//! | [`error`] | typed errors naming file and HDF5 path | [`IoError`] |
//!
//! Every data method of [`NeuroH5File`] is collective over the communicator the file was opened with: each
//! rank calls it with its own share (cells it holds, edges whose destination it generated) and receives the
//! share [`Selection`] gives it. Writers send data to the rank owning its gid block first, so a file's
//! contents do not depend on the number of ranks that wrote it. The layout (NeuroH5's, as
//! neuroh5 and MiV-Simulator write it) is documented with the API in `docs/io.md`.
//!
//! ```no_run
//! use miv_io::{NeuroH5File, Selection, WriteOptions, H5Types, PopulationRanges, CellAttributes};
//! # fn main() -> miv_io::Result<()> {
//! let comm = miv_partition::init();
//! let f = NeuroH5File::create("cells.h5", comm.as_ref())?;
//! let pops = PopulationRanges::from_counts(&[("STIM", 0, 64), ("PYR", 100, 223)])?;
//! f.write_h5types(&H5Types { populations: pops, projections: vec![("STIM".into(), "PYR".into())] })?;
//! let mut xyz = CellAttributes::new();
//! for gid in (64..287).filter(|g| g % comm.size() as u64 == comm.rank() as u64) {
//!     xyz.push("X Coordinate", gid, &[gid as f32])?;
//! }
//! f.append_cell_attributes("PYR", "Generated Coordinates", &xyz, &WriteOptions::default())?;
//! f.finish()?;
//! let f = NeuroH5File::open("cells.h5", comm.as_ref())?;
//! let a = miv_partition::Assignment::round_robin(comm.size());
//! let mine = f.read_cell_attributes("PYR", "Generated Coordinates", &Selection::Owned(&a), None)?;
//! # let _ = mine; Ok(()) }
//! ```

pub mod atomic;
pub mod cells;
pub(crate) mod dataset;
pub mod dtype;
pub mod error;
pub(crate) mod exchange;
pub mod file;
pub mod graph;
pub(crate) mod h5;
pub mod memory;
pub mod names;
pub mod output;
pub mod swc;
pub mod tree;
pub mod types;
pub mod verify;
pub(crate) mod wire;

pub use cells::{AttributeData, AttributeInfo, CellAttributes, Selection};
pub use dtype::{Dtype, Element, Values};
pub use error::{IoError, Result};
pub use file::{NeuroH5File, WriteOptions};
pub use graph::{EdgeAttribute, Projection, ProjectionInfo};
pub use output::{write_results, LfpTrace, SpikeOutput};
pub use swc::{parse_swc, read_swc};
pub use tree::{contract, NodeBase, SectionTopology, Tree};
pub use types::{H5Types, Population, PopulationRanges};

/// The HDF5 library version this build links, with "parallel" when it was built with MPI-IO.
pub fn hdf5_version() -> String {
    let (a, b, c) = hdf5::library_version();
    let par = if hdf5::is_library_threadsafe() { " threadsafe" } else { "" };
    format!("{a}.{b}.{c}{}{par}", if cfg!(feature = "mpi") { " (MPI-IO)" } else { "" })
}
