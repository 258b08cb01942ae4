//! miv-io: NeuroH5 files.

pub mod config;

/// The HDF5 library version this build links, with "parallel" when it was built with MPI-IO.
pub fn hdf5_version() -> String {
    let (a, b, c) = hdf5::library_version();
    let par = if hdf5::is_library_threadsafe() { " threadsafe" } else { "" };
    format!("{a}.{b}.{c}{}{par}", if cfg!(feature = "mpi") { " (MPI-IO)" } else { "" })
}
