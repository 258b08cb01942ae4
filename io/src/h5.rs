//! A thin layer over the HDF5 C library for exactly what NeuroH5 needs: files (serial or MPI-IO), groups,
//! hard links, chunked extendible 1-D datasets, reads and writes of unions of ranges (collective under
//! MPI-IO), committed enum/compound types and scalar attributes.
//!
//! Why raw calls instead of the high-level `hdf5` crate: collective transfer property lists, OR-ed hyperslab
//! selections, enum members inside compounds and hard links to shared pointer datasets are either missing
//! there or hidden. Every call takes the library lock that the `hdf5` crate also uses, so both can be used in
//! one process and from test threads. Errors carry the innermost HDF5 error-stack message; callers add the
//! file and the path.

use std::ffi::{c_char, c_uint, c_void, CStr, CString};
use std::ops::Range;
use std::sync::Once;

use hdf5_sys::h5::{herr_t, hsize_t, H5free_memory, H5open};
use hdf5_sys::h5::{H5_index_t, H5_iter_order_t};
use hdf5_sys::h5a::*;
use hdf5_sys::h5d::*;
use hdf5_sys::h5e::{H5E_error2_t, H5Eclear2, H5Eset_auto2, H5Ewalk2, H5E_DEFAULT, H5E_WALK_DOWNWARD};
use hdf5_sys::h5f::*;
use hdf5_sys::h5g::{H5Gclose, H5Gcreate2, H5Gopen2};
use hdf5_sys::h5i::{hid_t, H5I_type_t, H5Iget_type};
use hdf5_sys::h5l::{H5L_info_t, H5Lcreate_hard, H5Lexists, H5Literate};
use hdf5_sys::h5o::{H5O_info1_t, H5Oclose, H5Oget_info2, H5Oopen};
use hdf5_sys::h5p::*;
use hdf5_sys::h5s::*;
use hdf5_sys::h5t::*;

use crate::dtype::Dtype;

/// An HDF5 failure: what was attempted and the library's own explanation.
#[derive(Debug, Clone)]
pub(crate) struct H5Error {
    pub what: String,
    pub detail: String,
}

pub(crate) type H5Result<T> = Result<T, H5Error>;

static INIT: Once = Once::new();

/// Take the library lock (shared with the `hdf5` crate) after making sure the library is open and does not
/// print its error stack itself.
fn lock() -> impl Sized {
    INIT.call_once(|| {
        let _g = hdf5_sys::LOCK.lock();
        // SAFETY: plain library initialisation calls, made once under the library lock.
        unsafe {
            H5open();
            H5Eset_auto2(H5E_DEFAULT, None, std::ptr::null_mut());
        }
    });
    hdf5_sys::LOCK.lock()
}

unsafe extern "C" fn collect_error(_n: c_uint, err: *const H5E_error2_t, data: *mut c_void) -> i32 {
    let out = &mut *(data as *mut Vec<String>);
    let e = &*err;
    let desc = if e.desc.is_null() { String::new() } else { CStr::from_ptr(e.desc).to_string_lossy().into_owned() };
    let func =
        if e.func_name.is_null() { String::new() } else { CStr::from_ptr(e.func_name).to_string_lossy().into_owned() };
    out.push(if desc.is_empty() { func } else { format!("{desc} ({func})") });
    0
}

/// The current error stack as one line (outermost first, innermost last), then clear it.
fn take_error_stack() -> String {
    let mut msgs: Vec<String> = Vec::new();
    // SAFETY: the callback only reads the error records and pushes into the Vec we pass.
    unsafe {
        H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, Some(collect_error), &mut msgs as *mut Vec<String> as *mut c_void);
        H5Eclear2(H5E_DEFAULT);
    }
    match msgs.len() {
        0 => "unknown HDF5 error".to_string(),
        1 => msgs.remove(0),
        n => format!("{}: {}", msgs[0], msgs[n - 1]),
    }
}

fn fail<T>(what: impl Into<String>) -> H5Result<T> {
    Err(H5Error { what: what.into(), detail: take_error_stack() })
}

fn check_id(id: hid_t, what: &str) -> H5Result<Hid> {
    if id < 0 {
        fail(what)
    } else {
        Ok(Hid(id))
    }
}

fn check(ret: i32, what: &str) -> H5Result<()> {
    if ret < 0 {
        fail(what)
    } else {
        Ok(())
    }
}

fn cstr(s: &str) -> CString {
    CString::new(s.replace('\0', "")).expect("no interior NUL")
}

/// An owned HDF5 identifier, closed on drop.
#[derive(Debug)]
pub(crate) struct Hid(hid_t);

impl Hid {
    pub fn id(&self) -> hid_t {
        self.0
    }
}

impl Drop for Hid {
    fn drop(&mut self) {
        let _g = lock();
        // SAFETY: we own this identifier; closing it once is the contract.
        unsafe {
            match H5Iget_type(self.0) {
                H5I_type_t::H5I_FILE => {
                    H5Fclose(self.0);
                }
                H5I_type_t::H5I_GROUP => {
                    H5Gclose(self.0);
                }
                H5I_type_t::H5I_DATASET => {
                    H5Dclose(self.0);
                }
                H5I_type_t::H5I_DATASPACE => {
                    H5Sclose(self.0);
                }
                H5I_type_t::H5I_DATATYPE => {
                    H5Tclose(self.0);
                }
                H5I_type_t::H5I_GENPROP_LST => {
                    H5Pclose(self.0);
                }
                H5I_type_t::H5I_ATTR => {
                    H5Aclose(self.0);
                }
                _ => {
                    H5Oclose(self.0);
                }
            }
            H5Eclear2(H5E_DEFAULT);
        }
    }
}

/// How a file is opened for parallel access.
#[derive(Clone, Copy)]
pub(crate) enum Access {
    /// This process alone.
    Serial,
    /// Every rank of the communicator, through MPI-IO.
    #[cfg(feature = "mpi")]
    Mpio(mpi::ffi::MPI_Comm),
}

fn fapl(access: Access) -> H5Result<Hid> {
    // SAFETY: creating and configuring a property list we own.
    unsafe {
        let p = check_id(H5Pcreate(*H5P_CLS_FILE_ACCESS), "create file access property list")?;
        match access {
            Access::Serial => {}
            #[cfg(feature = "mpi")]
            Access::Mpio(comm) => {
                check(H5Pset_fapl_mpio(p.id(), comm, mpi::ffi::RSMPI_INFO_NULL), "set MPI-IO file driver")?;
            }
        }
        Ok(p)
    }
}

/// Create (truncate) a file.
pub(crate) fn create_file(path: &str, access: Access) -> H5Result<Hid> {
    let _g = lock();
    let fapl = fapl(access)?;
    // SAFETY: valid C string and property lists.
    unsafe { check_id(H5Fcreate(cstr(path).as_ptr(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.id()), "create file") }
}

pub(crate) fn open_file(path: &str, writable: bool, access: Access) -> H5Result<Hid> {
    let _g = lock();
    let fapl = fapl(access)?;
    let flags = if writable { H5F_ACC_RDWR } else { H5F_ACC_RDONLY };
    // SAFETY: valid C string and property list.
    unsafe { check_id(H5Fopen(cstr(path).as_ptr(), flags, fapl.id()), "open file") }
}

/// Flush and close a file explicitly, reporting errors that a drop would hide.
pub(crate) fn close_file(file: Hid) -> H5Result<()> {
    let _g = lock();
    let id = file.0;
    std::mem::forget(file);
    // SAFETY: we owned `id` and give it up here.
    unsafe { check(H5Fclose(id), "close file") }
}

/// Does every component of `path` exist (as a link) below `loc`?
pub(crate) fn exists(loc: &Hid, path: &str) -> bool {
    let _g = lock();
    let mut prefix = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if !prefix.is_empty() || path.starts_with('/') {
            prefix.push('/');
        }
        prefix.push_str(part);
        // SAFETY: valid location and C string.
        let r = unsafe { H5Lexists(loc.id(), cstr(&prefix).as_ptr(), H5P_DEFAULT) };
        if r <= 0 {
            // SAFETY: clear any error pushed by H5Lexists.
            unsafe { H5Eclear2(H5E_DEFAULT) };
            return false;
        }
    }
    true
}

/// The kind of object at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Group,
    Dataset,
    Datatype,
    Other,
}

pub(crate) fn kind(loc: &Hid, path: &str) -> H5Result<Kind> {
    let _g = lock();
    // SAFETY: open an object to ask its type, then close it through `Hid`.
    unsafe {
        let o = check_id(H5Oopen(loc.id(), cstr(path).as_ptr(), H5P_DEFAULT), "open object")?;
        Ok(match H5Iget_type(o.id()) {
            H5I_type_t::H5I_GROUP => Kind::Group,
            H5I_type_t::H5I_DATASET => Kind::Dataset,
            H5I_type_t::H5I_DATATYPE => Kind::Datatype,
            _ => Kind::Other,
        })
    }
}

pub(crate) fn open_group(loc: &Hid, path: &str) -> H5Result<Hid> {
    let _g = lock();
    // SAFETY: valid location and C string.
    unsafe { check_id(H5Gopen2(loc.id(), cstr(path).as_ptr(), H5P_DEFAULT), "open group") }
}

/// Create a group and any missing parents.
pub(crate) fn create_group(loc: &Hid, path: &str) -> H5Result<Hid> {
    let _g = lock();
    // SAFETY: a link creation property list we own, valid strings.
    unsafe {
        let lcpl = check_id(H5Pcreate(*H5P_CLS_LINK_CREATE), "create link property list")?;
        check(H5Pset_create_intermediate_group(lcpl.id(), 1), "set intermediate group creation")?;
        check_id(H5Gcreate2(loc.id(), cstr(path).as_ptr(), lcpl.id(), H5P_DEFAULT, H5P_DEFAULT), "create group")
    }
}

/// Open the group at `path`, creating it (and parents) when absent.
pub(crate) fn ensure_group(loc: &Hid, path: &str) -> H5Result<Hid> {
    if exists(loc, path) {
        open_group(loc, path)
    } else {
        create_group(loc, path)
    }
}

/// Names of the links in a group, in name order.
///
/// Iterates with `H5Literate` rather than asking `H5Lget_name_by_idx` for each index: with HDF5 1.10.8 under
/// MPI-IO the latter can crash (a stale local-heap pointer in `H5G__node_by_idx`) on old-style groups of files
/// written by many ranks.
pub(crate) fn children(group: &Hid) -> H5Result<Vec<String>> {
    let _g = lock();
    unsafe extern "C" fn collect(
        _g: hid_t,
        name: *const c_char,
        _info: *const H5L_info_t,
        data: *mut c_void,
    ) -> herr_t {
        // SAFETY: `data` is the Vec passed below and `name` a NUL-terminated string valid during the call.
        unsafe {
            let out = &mut *(data as *mut Vec<String>);
            out.push(std::ffi::CStr::from_ptr(name).to_string_lossy().into_owned());
        }
        0
    }
    let mut out: Vec<String> = Vec::new();
    // SAFETY: the callback only appends to `out`, which outlives the call.
    unsafe {
        let mut idx: hsize_t = 0;
        check(
            H5Literate(
                group.id(),
                H5_index_t::H5_INDEX_NAME,
                H5_iter_order_t::H5_ITER_INC,
                &mut idx,
                Some(collect),
                &mut out as *mut Vec<String> as *mut c_void,
            ),
            "iterate group links",
        )?;
    }
    Ok(out)
}

/// A second name (`new_path` below `new_loc`) for the object at `target` below `loc`.
pub(crate) fn link_hard(loc: &Hid, target: &str, new_loc: &Hid, new_path: &str) -> H5Result<()> {
    let _g = lock();
    // SAFETY: valid locations and C strings.
    unsafe {
        check(
            H5Lcreate_hard(
                loc.id(),
                cstr(target).as_ptr(),
                new_loc.id(),
                cstr(new_path).as_ptr(),
                H5P_DEFAULT,
                H5P_DEFAULT,
            ),
            "create hard link",
        )
    }
}

/// The (file number, address) that identifies an object, equal for two hard links to one dataset.
pub(crate) fn object_identity(obj: &Hid) -> H5Result<(u64, u64)> {
    let _g = lock();
    // SAFETY: H5Oget_info2 with basic fields fills a plain struct.
    unsafe {
        let mut info: H5O_info1_t = std::mem::zeroed();
        check(H5Oget_info2(obj.id(), &mut info, 0x0001), "get object info")?;
        Ok((info.fileno as u64, info.addr as u64))
    }
}

// ------------------------------------------------------------------------------------------------------------
// Types

/// The native in-memory HDF5 type of a dtype (a library constant; never closed).
pub(crate) fn native_type(d: Dtype) -> hid_t {
    let _g = lock();
    match d {
        Dtype::U8 => *H5T_NATIVE_UINT8,
        Dtype::I8 => *H5T_NATIVE_INT8,
        Dtype::U16 => *H5T_NATIVE_UINT16,
        Dtype::I16 => *H5T_NATIVE_INT16,
        Dtype::U32 => *H5T_NATIVE_UINT32,
        Dtype::I32 => *H5T_NATIVE_INT32,
        Dtype::U64 => *H5T_NATIVE_UINT64,
        Dtype::I64 => *H5T_NATIVE_INT64,
        Dtype::F32 => *H5T_NATIVE_FLOAT,
        Dtype::F64 => *H5T_NATIVE_DOUBLE,
    }
}

/// The little-endian file type of a dtype, as neuroh5 stores it.
pub(crate) fn file_type(d: Dtype) -> hid_t {
    let _g = lock();
    match d {
        Dtype::U8 => *H5T_STD_U8LE,
        Dtype::I8 => *H5T_STD_I8LE,
        Dtype::U16 => *H5T_STD_U16LE,
        Dtype::I16 => *H5T_STD_I16LE,
        Dtype::U32 => *H5T_STD_U32LE,
        Dtype::I32 => *H5T_STD_I32LE,
        Dtype::U64 => *H5T_STD_U64LE,
        Dtype::I64 => *H5T_STD_I64LE,
        Dtype::F32 => *H5T_IEEE_F32LE,
        Dtype::F64 => *H5T_IEEE_F64LE,
    }
}

/// The dtype of a numeric HDF5 type (an enum counts as its base integer type).
pub(crate) fn dtype_of(t: &Hid) -> H5Result<Option<Dtype>> {
    let _g = lock();
    // SAFETY: type queries on a valid type id.
    unsafe {
        let class = H5Tget_class(t.id());
        let size = H5Tget_size(t.id());
        Ok(match class {
            H5T_class_t::H5T_FLOAT => Dtype::from_parts(true, true, size),
            H5T_class_t::H5T_INTEGER => Dtype::from_parts(false, H5Tget_sign(t.id()) == H5T_sign_t::H5T_SGN_2, size),
            H5T_class_t::H5T_ENUM => {
                let base = check_id(H5Tget_super(t.id()), "get enum base type")?;
                return dtype_of(&base);
            }
            _ => None,
        })
    }
}

/// A new enum type over `base` with the given members.
pub(crate) fn enum_type(base: Dtype, members: &[(String, i64)]) -> H5Result<Hid> {
    let _g = lock();
    // SAFETY: create an enum type we own and insert members from values of the base type's size.
    unsafe {
        let t = check_id(H5Tenum_create(native_type(base)), "create enum type")?;
        for (name, value) in members {
            let bytes = value.to_le_bytes();
            check(H5Tenum_insert(t.id(), cstr(name).as_ptr(), bytes.as_ptr() as *const c_void), "insert enum member")?;
        }
        Ok(t)
    }
}

/// Members (name, value) of an enum type, in the type's order.
pub(crate) fn enum_members(t: &Hid) -> H5Result<Vec<(String, i64)>> {
    let _g = lock();
    // SAFETY: member queries on a valid enum type; names are freed with H5free_memory.
    unsafe {
        if H5Tget_class(t.id()) != H5T_class_t::H5T_ENUM {
            return Err(H5Error { what: "read enum members".into(), detail: "not an enum type".into() });
        }
        let n = H5Tget_nmembers(t.id());
        let base = dtype_of(t)?
            .ok_or_else(|| H5Error { what: "read enum".into(), detail: "enum base is not an integer".into() })?;
        let mut out = Vec::new();
        for i in 0..n.max(0) as c_uint {
            let p = H5Tget_member_name(t.id(), i);
            if p.is_null() {
                return fail("get enum member name");
            }
            let name = CStr::from_ptr(p).to_string_lossy().into_owned();
            H5free_memory(p as *mut c_void);
            let mut raw = [0u8; 8];
            check(H5Tget_member_value(t.id(), i, raw.as_mut_ptr() as *mut c_void), "get enum member value")?;
            let v = match base {
                Dtype::I8 => raw[0] as i8 as i64,
                Dtype::I16 => i16::from_le_bytes([raw[0], raw[1]]) as i64,
                Dtype::I32 => i32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as i64,
                _ => i64::from_le_bytes(raw),
            };
            out.push((name, v));
        }
        Ok(out)
    }
}

/// A compound type of `size` bytes with (name, offset, member type) fields.
pub(crate) fn compound_type(size: usize, fields: &[(&str, usize, hid_t)]) -> H5Result<Hid> {
    let _g = lock();
    // SAFETY: create a compound type we own and insert members by valid type ids.
    unsafe {
        let t = check_id(H5Tcreate(H5T_class_t::H5T_COMPOUND, size), "create compound type")?;
        for (name, off, ty) in fields {
            check(H5Tinsert(t.id(), cstr(name).as_ptr(), *off, *ty), "insert compound member")?;
        }
        Ok(t)
    }
}

/// The type of member `name` of a compound type.
pub(crate) fn compound_member(t: &Hid, name: &str) -> H5Result<Option<Hid>> {
    let _g = lock();
    // SAFETY: member lookup on a valid type.
    unsafe {
        if H5Tget_class(t.id()) != H5T_class_t::H5T_COMPOUND {
            return Ok(None);
        }
        let i = H5Tget_member_index(t.id(), cstr(name).as_ptr());
        if i < 0 {
            H5Eclear2(H5E_DEFAULT);
            return Ok(None);
        }
        Ok(Some(check_id(H5Tget_member_type(t.id(), i as c_uint), "get compound member type")?))
    }
}

/// A native copy of a file type (for reading enum members as their in-memory integers).
pub(crate) fn native_copy(t: &Hid) -> H5Result<Hid> {
    let _g = lock();
    // SAFETY: valid type id.
    unsafe { check_id(H5Tget_native_type(t.id(), H5T_direction_t::H5T_DIR_ASCEND), "get native type") }
}

pub(crate) fn commit_type(loc: &Hid, name: &str, t: &Hid) -> H5Result<()> {
    let _g = lock();
    // SAFETY: valid location, name and transient type.
    unsafe {
        check(
            H5Tcommit2(loc.id(), cstr(name).as_ptr(), t.id(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
            "commit datatype",
        )
    }
}

pub(crate) fn open_type(loc: &Hid, name: &str) -> H5Result<Hid> {
    let _g = lock();
    // SAFETY: valid location and name.
    unsafe { check_id(H5Topen2(loc.id(), cstr(name).as_ptr(), H5P_DEFAULT), "open committed datatype") }
}

// ------------------------------------------------------------------------------------------------------------
// Datasets

pub(crate) fn open_dataset(loc: &Hid, path: &str) -> H5Result<Hid> {
    let _g = lock();
    // SAFETY: valid location and name.
    unsafe { check_id(H5Dopen2(loc.id(), cstr(path).as_ptr(), H5P_DEFAULT), "open dataset") }
}

/// Open a dataset for reading many pieces: a chunk cache large enough for whole chunks (64 MiB), so a chunk
/// that several ranges fall into is read from the file once instead of once per piece.
pub(crate) fn open_dataset_cached(loc: &Hid, path: &str) -> H5Result<Hid> {
    let _g = lock();
    // SAFETY: an access property list we own; valid location and name.
    unsafe {
        let dapl = check_id(H5Pcreate(*H5P_CLS_DATASET_ACCESS), "create dataset access property list")?;
        check(H5Pset_chunk_cache(dapl.id(), 10007, 64 << 20, 1.0), "set chunk cache")?;
        check_id(H5Dopen2(loc.id(), cstr(path).as_ptr(), dapl.id()), "open dataset")
    }
}

pub(crate) fn dataset_type(d: &Hid) -> H5Result<Hid> {
    let _g = lock();
    // SAFETY: valid dataset.
    unsafe { check_id(H5Dget_type(d.id()), "get dataset type") }
}

/// Dimensions of a dataset's dataspace.
pub(crate) fn dataset_dims(d: &Hid) -> H5Result<Vec<u64>> {
    let _g = lock();
    // SAFETY: a dataspace we own and a buffer of its rank.
    unsafe {
        let s = check_id(H5Dget_space(d.id()), "get dataspace")?;
        let rank = H5Sget_simple_extent_ndims(s.id());
        if rank < 0 {
            return fail("get dataspace rank");
        }
        let mut dims = vec![0 as hsize_t; rank as usize];
        check(H5Sget_simple_extent_dims(s.id(), dims.as_mut_ptr(), std::ptr::null_mut()), "get dataspace dims")?;
        Ok(dims.into_iter().collect())
    }
}

/// Storage facts of a dataset (for listings and the benchmark report).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Storage {
    pub chunk: Option<u64>,
    pub filters: u32,
}

pub(crate) fn dataset_storage(d: &Hid) -> H5Result<Storage> {
    let _g = lock();
    // SAFETY: a creation property list we own.
    unsafe {
        let p = check_id(H5Dget_create_plist(d.id()), "get dataset creation properties")?;
        let mut st = Storage::default();
        if H5Pget_layout(p.id()) == H5D_layout_t::H5D_CHUNKED {
            let mut dim = [0 as hsize_t; 8];
            let n = H5Pget_chunk(p.id(), 8, dim.as_mut_ptr());
            if n >= 1 {
                st.chunk = Some(dim[0]);
            }
        }
        st.filters = H5Pget_nfilters(p.id()).max(0) as u32;
        Ok(st)
    }
}

/// Create an empty, chunked, unlimited 1-D dataset (and missing parent groups).
pub(crate) fn create_dataset_1d(loc: &Hid, path: &str, ftype: hid_t, chunk: u64, deflate: Option<u8>) -> H5Result<Hid> {
    let _g = lock();
    // SAFETY: property lists and dataspace we own; valid strings and types.
    unsafe {
        let zero: hsize_t = 0;
        let max: hsize_t = H5S_UNLIMITED;
        let space = check_id(H5Screate_simple(1, &zero, &max), "create dataspace")?;
        let dcpl = check_id(H5Pcreate(*H5P_CLS_DATASET_CREATE), "create dataset property list")?;
        let c: hsize_t = chunk.max(1);
        check(H5Pset_chunk(dcpl.id(), 1, &c), "set chunk size")?;
        check(H5Pset_fill_time(dcpl.id(), H5D_fill_time_t::H5D_FILL_TIME_NEVER), "set fill time")?;
        // Parallel HDF5 makes every dataset allocate early (its chunks exist as soon as the extent covers
        // them) and writes through MPI-IO only into allocated chunks. Set it also for files written by one
        // process, or neuroh5 (or any MPI-IO writer) appending to them fails in H5Dwrite.
        check(H5Pset_alloc_time(dcpl.id(), H5D_alloc_time_t::H5D_ALLOC_TIME_EARLY), "set allocation time")?;
        if let Some(level) = deflate {
            check(H5Pset_deflate(dcpl.id(), level as c_uint), "set deflate filter")?;
        }
        let lcpl = check_id(H5Pcreate(*H5P_CLS_LINK_CREATE), "create link property list")?;
        check(H5Pset_create_intermediate_group(lcpl.id(), 1), "set intermediate group creation")?;
        check_id(
            H5Dcreate2(loc.id(), cstr(path).as_ptr(), ftype, space.id(), lcpl.id(), dcpl.id(), H5P_DEFAULT),
            "create dataset",
        )
    }
}

/// Create a small dataset holding `data` of memory type `mtype` and file type `ftype`: chunked with that
/// maximum size when `maxdims` is given (what h5py makes of `create_dataset(.., (0,), maxshape=..)` and a
/// resize), contiguous otherwise. A null `data` creates without writing (the other ranks of a parallel file).
pub(crate) fn create_dataset_with(
    loc: &Hid,
    path: &str,
    ftype: hid_t,
    mtype: hid_t,
    n: u64,
    data: *const c_void,
    maxdims: Option<u64>,
) -> H5Result<Hid> {
    let _g = lock();
    // SAFETY: `data` points to `n` elements of `mtype` (caller contract); all ids are owned here.
    unsafe {
        let dims: hsize_t = n;
        let max: hsize_t = maxdims.unwrap_or(n);
        let space = check_id(H5Screate_simple(1, &dims, &max), "create dataspace")?;
        let dcpl = check_id(H5Pcreate(*H5P_CLS_DATASET_CREATE), "create dataset property list")?;
        if maxdims.is_some() {
            let c: hsize_t = max.clamp(1, 1024);
            check(H5Pset_chunk(dcpl.id(), 1, &c), "set chunk size")?;
        }
        let d = check_id(
            H5Dcreate2(loc.id(), cstr(path).as_ptr(), ftype, space.id(), H5P_DEFAULT, dcpl.id(), H5P_DEFAULT),
            "create dataset",
        )?;
        if n > 0 && !data.is_null() {
            check(H5Dwrite(d.id(), mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "write dataset")?;
        }
        Ok(d)
    }
}

/// Read a whole dataset of memory type `mtype` into `buf` (which must hold every element).
pub(crate) fn read_all_raw(d: &Hid, mtype: hid_t, buf: *mut c_void) -> H5Result<()> {
    let _g = lock();
    // SAFETY: the caller sized `buf` for the whole dataset in `mtype`.
    unsafe { check(H5Dread(d.id(), mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), "read dataset") }
}

pub(crate) fn set_extent(d: &Hid, len: u64) -> H5Result<()> {
    let _g = lock();
    let n: hsize_t = len;
    // SAFETY: valid dataset, one dimension.
    unsafe { check(H5Dset_extent(d.id(), &n), "extend dataset") }
}

/// The transfer property list of a parallel file. With `collective` the transfer is collective (every rank
/// makes the call; two-phase MPI-IO underneath): writes to compressed datasets need it. Otherwise it is
/// independent: every other write (each rank writes its own slab), and reads unless `MIV_IO_COLLECTIVE=1`.
/// A rank's slab needs nothing from the others, and Open MPI 4.1's default OMPIO collective component
/// returned zeros for part of a three-rank collective hyperslab-union read (ROMIO, `fcoll=individual` and
/// independent reads gave the right values).
fn xfer(access: Access, collective: bool) -> H5Result<Option<Hid>> {
    let _ = collective;
    match access {
        Access::Serial => Ok(None),
        #[cfg(feature = "mpi")]
        Access::Mpio(_) => {
            let mode = if collective {
                H5FD_mpio_xfer_t::H5FD_MPIO_COLLECTIVE
            } else {
                H5FD_mpio_xfer_t::H5FD_MPIO_INDEPENDENT
            };
            // SAFETY: a transfer property list we own.
            unsafe {
                let p = check_id(H5Pcreate(*H5P_CLS_DATASET_XFER), "create transfer property list")?;
                check(H5Pset_dxpl_mpio(p.id(), mode), "set MPI-IO transfer mode")?;
                Ok(Some(p))
            }
        }
    }
}

/// Whether reads use two-phase collective MPI-IO (`MIV_IO_COLLECTIVE=1`).
fn collective_reads() -> bool {
    std::env::var("MIV_IO_COLLECTIVE").map(|v| v == "1").unwrap_or(false)
}

/// Whether reads of a file opened with `access` are collective transfers (every rank must then make the
/// same HDF5 read calls).
pub(crate) fn collective_read_transfers(access: Access) -> bool {
    match access {
        Access::Serial => false,
        #[cfg(feature = "mpi")]
        Access::Mpio(_) => collective_reads(),
    }
}

/// Whether a file opened read-only on several ranks goes through the MPI-IO driver (`MIV_IO_READ_MPIO=1`,
/// or collective reads). Otherwise every rank opens it with HDF5's default POSIX driver, as a serial
/// reader (h5py) would: the reads are independent anyway, and with Open MPI 4.1's OMPIO the MPI-IO driver
/// read a rank's contiguous slab at a third to half the speed of the POSIX driver (`miv h5 bench`).
pub(crate) fn reads_through_mpio() -> bool {
    collective_reads() || std::env::var("MIV_IO_READ_MPIO").map(|v| v == "1").unwrap_or(false)
}

/// A file dataspace of `d` selecting the union of `ranges` (sorted, disjoint), or nothing.
fn select_ranges(d: &Hid, ranges: &[Range<u64>]) -> H5Result<Hid> {
    // SAFETY: a dataspace we own; hyperslab starts/counts are plain integers.
    unsafe {
        let s = check_id(H5Dget_space(d.id()), "get dataspace")?;
        let mut any = false;
        for r in ranges.iter().filter(|r| r.end > r.start) {
            let start: hsize_t = r.start;
            let count: hsize_t = r.end - r.start;
            let op = if any { H5S_seloper_t::H5S_SELECT_OR } else { H5S_seloper_t::H5S_SELECT_SET };
            check(
                H5Sselect_hyperslab(s.id(), op, &start, std::ptr::null(), &count, std::ptr::null()),
                "select hyperslab",
            )?;
            any = true;
        }
        if !any {
            check(H5Sselect_none(s.id()), "select none")?;
        }
        Ok(s)
    }
}

fn memory_space(n: u64) -> H5Result<Hid> {
    // SAFETY: a dataspace we own.
    unsafe {
        let dims: hsize_t = n.max(1);
        let s = check_id(H5Screate_simple(1, &dims, std::ptr::null()), "create memory dataspace")?;
        if n == 0 {
            check(H5Sselect_none(s.id()), "select none")?;
        }
        Ok(s)
    }
}

/// Read the union of `ranges` (sorted ascending, disjoint) of dataset `d` into `buf` (raw bytes of
/// `mtype` elements, exactly the total length), in range order. Collective under MPI-IO: every rank calls,
/// possibly with no ranges.
pub(crate) fn read_ranges_raw(
    d: &Hid,
    mtype: hid_t,
    elem: usize,
    ranges: &[Range<u64>],
    buf: &mut [u8],
    access: Access,
) -> H5Result<()> {
    let _g = lock();
    let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
    assert_eq!(total as usize * elem, buf.len(), "read buffer size");
    let fspace = select_ranges(d, ranges)?;
    let mspace = memory_space(total)?;
    let x = xfer(access, collective_reads())?;
    let mut dummy = [0u8; 16];
    let ptr = if buf.is_empty() { dummy.as_mut_ptr() } else { buf.as_mut_ptr() };
    // SAFETY: selections and buffer agree in element count; `ptr` is valid for that many bytes.
    unsafe {
        check(
            H5Dread(
                d.id(),
                mtype,
                mspace.id(),
                fspace.id(),
                x.as_ref().map_or(H5P_DEFAULT, |p| p.id()),
                ptr as *mut c_void,
            ),
            "read dataset",
        )
    }
}

/// Write `buf` (raw bytes of `mtype` elements) at element offset `start` of dataset `d`. Every rank calls,
/// possibly with an empty buffer (the transfer is collective for compressed datasets).
pub(crate) fn write_at_raw(d: &Hid, mtype: hid_t, elem: usize, start: u64, buf: &[u8], access: Access) -> H5Result<()> {
    let _g = lock();
    let n = (buf.len() / elem.max(1)) as u64;
    let fspace = select_ranges(d, &[start..start + n])?;
    let mspace = memory_space(n)?;
    // Parallel HDF5 requires collective transfers for filtered (compressed) datasets; other slabs are
    // written by each rank on its own.
    let x = xfer(access, dataset_storage(d)?.filters > 0)?;
    let dummy = [0u8; 16];
    let ptr = if buf.is_empty() { dummy.as_ptr() } else { buf.as_ptr() };
    // SAFETY: selections and buffer agree in element count.
    unsafe {
        check(
            H5Dwrite(
                d.id(),
                mtype,
                mspace.id(),
                fspace.id(),
                x.as_ref().map_or(H5P_DEFAULT, |p| p.id()),
                ptr as *const c_void,
            ),
            "write dataset",
        )
    }
}

// ------------------------------------------------------------------------------------------------------------
// Attributes (HDF5 attributes on groups, e.g. `Reference U Min` on `Arc Distances`)

/// Write (replace) a scalar f64 attribute.
pub(crate) fn set_attr_f64(obj: &Hid, name: &str, value: f64) -> H5Result<()> {
    let _g = lock();
    // SAFETY: scalar dataspace and attribute we own; `value` outlives the write.
    unsafe {
        let n = cstr(name);
        if H5Aexists(obj.id(), n.as_ptr()) > 0 {
            check(H5Adelete(obj.id(), n.as_ptr()), "delete attribute")?;
        }
        H5Eclear2(H5E_DEFAULT);
        let space = check_id(H5Screate(H5S_class_t::H5S_SCALAR), "create scalar dataspace")?;
        let a = check_id(
            H5Acreate2(obj.id(), n.as_ptr(), *H5T_IEEE_F64LE, space.id(), H5P_DEFAULT, H5P_DEFAULT),
            "create attribute",
        )?;
        check(H5Awrite(a.id(), *H5T_NATIVE_DOUBLE, &value as *const f64 as *const c_void), "write attribute")
    }
}

/// All numeric scalar (or first-element) attributes of an object, as f64, in creation order.
pub(crate) fn attrs_f64(obj: &Hid) -> H5Result<Vec<(String, f64)>> {
    let _g = lock();
    // SAFETY: attributes opened by index and closed through `Hid`; buffers sized from the dataspace.
    unsafe {
        let mut info: H5O_info1_t = std::mem::zeroed();
        check(H5Oget_info2(obj.id(), &mut info, 0x0004), "get object info")?;
        let n = info.num_attrs as i64;
        let mut out = Vec::new();
        let dot = cstr(".");
        for i in 0..n.max(0) as hsize_t {
            let a = check_id(
                H5Aopen_by_idx(
                    obj.id(),
                    dot.as_ptr(),
                    H5_index_t::H5_INDEX_CRT_ORDER,
                    H5_iter_order_t::H5_ITER_INC,
                    i,
                    H5P_DEFAULT,
                    H5P_DEFAULT,
                ),
                "open attribute",
            )
            .or_else(|_| {
                check_id(
                    H5Aopen_by_idx(
                        obj.id(),
                        dot.as_ptr(),
                        H5_index_t::H5_INDEX_NAME,
                        H5_iter_order_t::H5_ITER_INC,
                        i,
                        H5P_DEFAULT,
                        H5P_DEFAULT,
                    ),
                    "open attribute",
                )
            })?;
            let len = H5Aget_name(a.id(), 0, std::ptr::null_mut());
            let mut buf = vec![0u8; len.max(0) as usize + 1];
            H5Aget_name(a.id(), buf.len(), buf.as_mut_ptr() as *mut c_char);
            buf.truncate(len.max(0) as usize);
            let name = String::from_utf8_lossy(&buf).into_owned();
            let t = check_id(H5Aget_type(a.id()), "get attribute type")?;
            let class = H5Tget_class(t.id());
            if class != H5T_class_t::H5T_FLOAT && class != H5T_class_t::H5T_INTEGER {
                continue;
            }
            let space = check_id(H5Aget_space(a.id()), "get attribute dataspace")?;
            let npts = H5Sget_simple_extent_npoints(space.id()).max(1) as usize;
            let mut vals = vec![0f64; npts];
            check(H5Aread(a.id(), *H5T_NATIVE_DOUBLE, vals.as_mut_ptr() as *mut c_void), "read attribute")?;
            out.push((name, vals[0]));
        }
        Ok(out)
    }
}
