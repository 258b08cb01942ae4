//! Re-read every dataset of an HDF5 file in full, as stored (no type conversion), so a damaged header,
//! chunk index or checksummed chunk (Fletcher-32, see [`crate::file`]) shows up as an error naming the
//! dataset (`miv jobs verify`).

use std::path::Path;

use hdf5_sys::h5d::{H5Dget_type, H5Dread};
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5p::H5P_DEFAULT;
use hdf5_sys::h5s::H5S_ALL;
use hdf5_sys::h5t::{H5T_class_t, H5Tclose, H5Tdetect_class, H5Tget_size, H5Tis_variable_str};

/// What [`verify_file`] read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verified {
    pub datasets: usize,
    pub bytes: u64,
    /// Variable-length datasets, whose structure was opened but whose values were not read.
    pub skipped: usize,
}

/// Open `path` and read every dataset under every group; the first failure names the file and the dataset.
pub fn verify_file(path: &Path) -> Result<Verified, String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("{}: {what}: {e}", path.display());
    let file = hdf5::File::open(path).map_err(|e| fail("/", &e))?;
    let mut out = Verified::default();
    let mut stack = vec!["/".to_string()];
    while let Some(g) = stack.pop() {
        let group = file.group(&g).map_err(|e| fail(&g, &e))?;
        let mut names = group.member_names().map_err(|e| fail(&g, &e))?;
        names.sort();
        for name in names {
            let full = if g == "/" { format!("/{name}") } else { format!("{g}/{name}") };
            if group.group(&name).is_ok() {
                stack.push(full);
                continue;
            }
            let Ok(ds) = group.dataset(&name) else { continue };
            let n = ds.size();
            let id = ds.id();
            let read = hdf5::sync::sync(|| unsafe { read_all(id, n) });
            match read {
                Ok(Some(bytes)) => {
                    out.datasets += 1;
                    out.bytes += bytes;
                }
                Ok(None) => out.skipped += 1,
                Err(()) => return Err(fail(&full, &"cannot be read back (damaged data or checksum mismatch)")),
            }
        }
    }
    Ok(out)
}

/// Read `n` elements of dataset `id` in its own type; `Ok(None)` for variable-length types.
unsafe fn read_all(id: hid_t, n: usize) -> Result<Option<u64>, ()> {
    let t = H5Dget_type(id);
    if t < 0 {
        return Err(());
    }
    let vlen = H5Tdetect_class(t, H5T_class_t::H5T_VLEN) > 0 || H5Tis_variable_str(t) > 0;
    let size = H5Tget_size(t);
    let result = if vlen {
        Ok(None)
    } else if n == 0 || size == 0 {
        Ok(Some(0))
    } else {
        let mut buf = vec![0u8; n * size];
        if H5Dread(id, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.as_mut_ptr().cast()) < 0 {
            Err(())
        } else {
            Ok(Some(buf.len() as u64))
        }
    };
    H5Tclose(t);
    result
}
