//! What NeuroH5 needs from HDF5, on the maintained `hdf5` crate (hdf5-metno): files (serial or MPI-IO),
//! groups, hard links, chunked extendible 1-D datasets, committed enum/compound types and scalar attributes
//! are its `File`, `Group`, `Dataset`, `Datatype` and `Attribute` with its property-list builders and
//! `hdf5::Error`. Raw `hdf5-sys` calls remain only where the crate has no equivalent, each marked with the
//! call it lacks: unions of hyperslabs (`H5S_SELECT_OR`), MPI-IO transfer property lists
//! (`H5Pset_dxpl_mpio`), opening a dataset with an access property list, and reading or writing bytes of a
//! type known only at run time. Those calls run under the crate's library lock (`hdf5::sync::sync`).
//!
//! Every creation sets the properties HDF5 itself defaults to where the crate's builders default otherwise
//! (time tracking, fill time, attribute name encoding), so files keep the layout of the raw-call writer.
//! Errors carry what was attempted and the outermost and innermost HDF5 error-stack messages; callers add the
//! file and the path.

use std::ffi::c_void;
use std::ops::Range;

use hdf5::dataset::{AllocTime, FillTime};
use hdf5::plist::attribute_create::CharEncoding;
use hdf5::plist::DatasetAccess;
use hdf5::types::{CompoundField, CompoundType, EnumMember, EnumType, FloatSize, IntSize, TypeDescriptor};
use hdf5::{Attribute, Dataset, Datatype, Extents, File, Group, IndexType, IterationOrder, LocationType};
use hdf5_sys::h5::hsize_t;
use hdf5_sys::h5d::{H5Dopen2, H5Dread, H5Dwrite};
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5p::H5P_DEFAULT;
use hdf5_sys::h5s::{H5S_seloper_t, H5Sselect_hyperslab, H5Sselect_none, H5S_ALL};

use crate::dtype::Dtype;

// Rows of `/H5Types` and the pointer datasets are built and decoded as little-endian bytes, and the crate's
// datatypes follow the target's byte order.
const _: () = assert!(cfg!(target_endian = "little"), "miv-io writes little-endian NeuroH5 files");

/// An HDF5 failure: what was attempted and the library's own explanation.
#[derive(Debug, Clone)]
pub(crate) struct H5Error {
    pub what: String,
    pub detail: String,
}

pub(crate) type H5Result<T> = Result<T, H5Error>;

/// The error stack of an `hdf5::Error` as one line: the outermost message, then the innermost.
fn detail(e: &hdf5::Error) -> String {
    let Some(stack) = e.stack() else { return e.to_string() };
    let frame = |f: &hdf5::ErrorFrame| {
        if f.desc().is_empty() {
            f.func().to_string()
        } else {
            format!("{} ({})", f.desc(), f.func())
        }
    };
    match stack.len() {
        0 => "unknown HDF5 error".to_string(),
        1 => frame(&stack[0]),
        n => format!("{}: {}", frame(&stack[0]), frame(&stack[n - 1])),
    }
}

/// Attach what was attempted to an `hdf5::Error`.
fn ctx(what: &str) -> impl FnOnce(hdf5::Error) -> H5Error + '_ {
    move |e| H5Error { what: what.to_string(), detail: detail(&e) }
}

fn bad(what: &str, detail: &str) -> H5Error {
    H5Error { what: what.into(), detail: detail.into() }
}

/// A raw `hdf5-sys` call under the library lock, its return code checked against the error stack.
fn raw<T: Copy + Into<i64>>(what: &str, call: impl FnOnce() -> T) -> H5Result<T> {
    hdf5::sync::sync(|| {
        let v = call();
        if v.into() < 0 {
            Err(hdf5::Error::query().unwrap_or_else(|e| e))
        } else {
            Ok(v)
        }
    })
    .map_err(ctx(what))
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

fn file_builder(access: Access) -> hdf5::FileBuilder {
    #[allow(unused_mut)]
    let mut b = File::with_options();
    match access {
        Access::Serial => {}
        #[cfg(feature = "mpi")]
        Access::Mpio(comm) => {
            b.with_fapl(|p| p.mpio(comm, None));
        }
    }
    b
}

/// Create (truncate) a file.
pub(crate) fn create_file(path: &str, access: Access) -> H5Result<File> {
    file_builder(access).create(path).map_err(ctx("create file"))
}

pub(crate) fn open_file(path: &str, writable: bool, access: Access) -> H5Result<File> {
    let b = file_builder(access);
    if writable { b.open_rw(path) } else { b.open(path) }.map_err(ctx("open file"))
}

/// Flush and close a file explicitly, reporting errors that a drop would hide.
pub(crate) fn close_file(file: File) -> H5Result<()> {
    file.close().map_err(ctx("close file"))
}

/// Does every component of `path` exist (as a link) below `loc`?
pub(crate) fn exists(loc: &Group, path: &str) -> bool {
    let mut prefix = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if !prefix.is_empty() || path.starts_with('/') {
            prefix.push('/');
        }
        prefix.push_str(part);
        if !loc.link_exists(&prefix) {
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

pub(crate) fn kind(loc: &Group, path: &str) -> H5Result<Kind> {
    Ok(match loc.loc_type_by_name(path).map_err(ctx("get object type"))? {
        LocationType::Group => Kind::Group,
        LocationType::Dataset => Kind::Dataset,
        LocationType::NamedDatatype => Kind::Datatype,
        #[allow(unreachable_patterns)]
        _ => Kind::Other,
    })
}

pub(crate) fn open_group(loc: &Group, path: &str) -> H5Result<Group> {
    loc.group(path).map_err(ctx("open group"))
}

/// Create a group and any missing parents.
pub(crate) fn create_group(loc: &Group, path: &str) -> H5Result<Group> {
    loc.create_group_builder().create_intermediate_group(true).create(path).map_err(ctx("create group"))
}

/// Open the group at `path`, creating it (and parents) when absent.
pub(crate) fn ensure_group(loc: &Group, path: &str) -> H5Result<Group> {
    if exists(loc, path) {
        open_group(loc, path)
    } else {
        create_group(loc, path)
    }
}

/// Names of the links in a group, in name order.
///
/// `member_names` iterates with `H5Literate`; asking `H5Lget_name_by_idx` for each index instead can crash
/// with HDF5 1.10.8 under MPI-IO (a stale local-heap pointer in `H5G__node_by_idx`) on old-style groups of
/// files written by many ranks.
pub(crate) fn children(group: &Group) -> H5Result<Vec<String>> {
    group.member_names_by(IndexType::Name, IterationOrder::Increasing).map_err(ctx("iterate group links"))
}

/// A second name (`new_path`) for the object at `target`, both below `loc`.
pub(crate) fn link_hard(loc: &Group, target: &str, new_path: &str) -> H5Result<()> {
    loc.link_hard(target, new_path).map_err(ctx("create hard link"))
}

/// What identifies an object: equal for two hard links to one dataset.
pub(crate) type ObjectId = (u64, hdf5::LocationToken);

pub(crate) fn object_identity(obj: &Dataset) -> H5Result<ObjectId> {
    let info = obj.loc_info().map_err(ctx("get object info"))?;
    Ok((info.fileno, info.token))
}

// ------------------------------------------------------------------------------------------------------------
// Types

fn descriptor(d: Dtype) -> TypeDescriptor {
    match d {
        Dtype::U8 => TypeDescriptor::Unsigned(IntSize::U1),
        Dtype::I8 => TypeDescriptor::Integer(IntSize::U1),
        Dtype::U16 => TypeDescriptor::Unsigned(IntSize::U2),
        Dtype::I16 => TypeDescriptor::Integer(IntSize::U2),
        Dtype::U32 => TypeDescriptor::Unsigned(IntSize::U4),
        Dtype::I32 => TypeDescriptor::Integer(IntSize::U4),
        Dtype::U64 => TypeDescriptor::Unsigned(IntSize::U8),
        Dtype::I64 => TypeDescriptor::Integer(IntSize::U8),
        Dtype::F32 => TypeDescriptor::Float(FloatSize::U4),
        Dtype::F64 => TypeDescriptor::Float(FloatSize::U8),
    }
}

/// The HDF5 type of a dtype: the little-endian standard type, in memory as in the file (as neuroh5 stores
/// it; the target is little-endian).
pub(crate) fn datatype(d: Dtype) -> H5Result<Datatype> {
    Datatype::from_descriptor(&descriptor(d)).map_err(ctx("create datatype"))
}

fn dtype_of_descriptor(t: &TypeDescriptor) -> Option<Dtype> {
    let int = |signed: bool, s: IntSize| Dtype::from_parts(false, signed, s as usize);
    match t {
        TypeDescriptor::Integer(s) => int(true, *s),
        TypeDescriptor::Unsigned(s) => int(false, *s),
        TypeDescriptor::Float(s) => Dtype::from_parts(true, true, *s as usize),
        TypeDescriptor::Enum(e) => int(e.signed, e.size),
        _ => None,
    }
}

/// The dtype of a numeric HDF5 type (an enum counts as its base integer type); `None` for any other type.
pub(crate) fn dtype_of(t: &Datatype) -> Option<Dtype> {
    t.to_descriptor().ok().as_ref().and_then(dtype_of_descriptor)
}

/// A new enum type over `base` with the given members.
pub(crate) fn enum_type(base: Dtype, members: &[(String, i64)]) -> H5Result<Datatype> {
    let size = match descriptor(base) {
        TypeDescriptor::Integer(s) | TypeDescriptor::Unsigned(s) => s,
        _ => return Err(bad("create enum type", "enum base is not an integer")),
    };
    let members = members.iter().map(|(name, v)| EnumMember { name: name.clone(), value: *v as u64 }).collect();
    let desc = TypeDescriptor::Enum(EnumType { size, signed: base.is_signed(), members });
    Datatype::from_descriptor(&desc).map_err(ctx("create enum type"))
}

/// Members (name, value) of an enum type, in the type's order.
pub(crate) fn enum_members(t: &Datatype) -> H5Result<Vec<(String, i64)>> {
    let TypeDescriptor::Enum(e) = t.to_descriptor().map_err(ctx("read enum members"))? else {
        return Err(bad("read enum members", "not an enum type"));
    };
    // Values come zero-extended from the base type's size; sign-extend signed bases.
    let bits = 64 - 8 * e.size as u32;
    let value = |v: u64| if e.signed && bits > 0 { ((v << bits) as i64) >> bits } else { v as i64 };
    Ok(e.members.iter().map(|m| (m.name.clone(), value(m.value))).collect())
}

/// A compound type of `size` bytes with (name, offset, member type) fields.
pub(crate) fn compound_type(size: usize, fields: &[(&str, usize, &Datatype)]) -> H5Result<Datatype> {
    let mut out = Vec::with_capacity(fields.len());
    for (index, (name, offset, ty)) in fields.iter().enumerate() {
        let ty = ty.to_descriptor().map_err(ctx("create compound type"))?;
        out.push(CompoundField { name: name.to_string(), ty, offset: *offset, index });
    }
    Datatype::from_descriptor(&TypeDescriptor::Compound(CompoundType { fields: out, size }))
        .map_err(ctx("create compound type"))
}

/// The type of member `name` of a compound type (`None` when the type is no compound or has no such member).
pub(crate) fn compound_member(t: &Datatype, name: &str) -> H5Result<Option<Datatype>> {
    let TypeDescriptor::Compound(c) = t.to_descriptor().map_err(ctx("get compound member type"))? else {
        return Ok(None);
    };
    match c.fields.iter().find(|f| f.name == name) {
        Some(f) => Ok(Some(Datatype::from_descriptor(&f.ty).map_err(ctx("get compound member type"))?)),
        None => Ok(None),
    }
}

pub(crate) fn commit_type(loc: &Group, name: &str, t: &Datatype) -> H5Result<()> {
    loc.commit_datatype(name, t).map_err(ctx("commit datatype"))
}

pub(crate) fn open_type(loc: &Group, name: &str) -> H5Result<Datatype> {
    let t = loc.committed_datatype(name).map_err(ctx("open committed datatype"))?;
    Ok(t.as_datatype().clone())
}

// ------------------------------------------------------------------------------------------------------------
// Datasets

pub(crate) fn open_dataset(loc: &Group, path: &str) -> H5Result<Dataset> {
    loc.dataset(path).map_err(ctx("open dataset"))
}

/// Open a dataset for reading many pieces: a chunk cache large enough for whole chunks (64 MiB), so a chunk
/// that several ranges fall into is read from the file once instead of once per piece.
pub(crate) fn open_dataset_cached(loc: &Group, path: &str) -> H5Result<Dataset> {
    let dapl = DatasetAccess::build()
        .chunk_cache(10007, 64 << 20, 1.0)
        .finish()
        .map_err(ctx("create dataset access property list"))?;
    let name = std::ffi::CString::new(path.replace('\0', "")).expect("no interior NUL");
    // hdf5-metno lacks: opening an existing dataset with an access property list (H5Dopen2 with a dapl).
    // SAFETY: valid location, NUL-terminated name and property list, all alive during the call.
    let id = raw("open dataset", || unsafe { H5Dopen2(loc.id(), name.as_ptr(), dapl.id()) })?;
    // SAFETY: a fresh dataset identifier whose only owner is the returned object.
    unsafe { hdf5::from_id(id) }.map_err(ctx("open dataset"))
}

pub(crate) fn dataset_type(d: &Dataset) -> H5Result<Datatype> {
    d.dtype().map_err(ctx("get dataset type"))
}

/// Dimensions of a dataset's dataspace.
pub(crate) fn dataset_dims(d: &Dataset) -> H5Result<Vec<u64>> {
    Ok(d.get_shape().map_err(ctx("get dataspace dims"))?.into_iter().map(|n| n as u64).collect())
}

/// Storage facts of a dataset (for listings and the benchmark report).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Storage {
    pub chunk: Option<u64>,
    pub filters: u32,
}

pub(crate) fn dataset_storage(d: &Dataset) -> H5Result<Storage> {
    let dcpl = d.dcpl().map_err(ctx("get dataset creation properties"))?;
    Ok(Storage { chunk: dcpl.chunk().and_then(|c| c.first().map(|&n| n as u64)), filters: dcpl.filters().len() as u32 })
}

/// Create an empty, chunked, unlimited 1-D dataset (and missing parent groups).
pub(crate) fn create_dataset_1d(
    loc: &Group,
    path: &str,
    dtype: Dtype,
    chunk: u64,
    deflate: Option<u8>,
    checksum: bool,
) -> H5Result<Dataset> {
    let mut b = loc.new_dataset_builder();
    // HDF5's default, which the crate's builder turns off.
    b = b.obj_track_times(true).chunk(chunk.max(1) as usize).fill_time(FillTime::Never);
    // Parallel HDF5 makes every dataset allocate early (its chunks exist as soon as the extent covers them)
    // and writes through MPI-IO only into allocated chunks. Set it also for files written by one process,
    // or neuroh5 (or any MPI-IO writer) appending to them fails in H5Dwrite.
    b = b.alloc_time(Some(AllocTime::Early));
    if let Some(level) = deflate {
        b = b.deflate(level);
    }
    // A Fletcher-32 checksum per chunk: a damaged chunk is a read error, never different data.
    if checksum {
        b = b.fletcher32();
    }
    b.empty_as(descriptor(dtype)).shape(Extents::from(0..)).create(path).map_err(ctx("create dataset"))
}

/// Create a small dataset of type `t` holding `rows` (`n` elements of `t`, raw bytes): chunked with that
/// maximum size when `maxdims` is given (what h5py makes of `create_dataset(.., (0,), maxshape=..)` and a
/// resize), contiguous otherwise. `None` creates without writing (the other ranks of a parallel file).
pub(crate) fn create_dataset_with(
    loc: &Group,
    path: &str,
    t: &Datatype,
    n: u64,
    rows: Option<&[u8]>,
    maxdims: Option<u64>,
) -> H5Result<Dataset> {
    // HDF5's defaults (time tracking, fill time "if set"), which the crate's builder changes.
    let mut b = loc.new_dataset_builder().obj_track_times(true).fill_time(FillTime::IfSet);
    let extents = match maxdims {
        Some(max) => {
            b = b.chunk(max.clamp(1, 1024) as usize);
            Extents::from(hdf5::Extent::new(n as usize, Some(max as usize)))
        }
        None => {
            b = b.no_chunk();
            Extents::from(n as usize)
        }
    };
    let d = b.empty_as(t).shape(extents).create(path).map_err(ctx("create dataset"))?;
    if let Some(rows) = rows.filter(|_| n > 0) {
        assert_eq!(rows.len(), n as usize * t.size(), "row bytes");
        write_all_raw(&d, t, rows)?;
    }
    Ok(d)
}

/// Write a whole dataset from raw bytes of type `t`.
fn write_all_raw(d: &Dataset, t: &Datatype, rows: &[u8]) -> H5Result<()> {
    // hdf5-metno lacks: writing bytes of a type known only at run time (it writes `H5Type` values).
    // SAFETY: `rows` holds every element of the dataset in type `t` (checked by the caller).
    raw("write dataset", || unsafe {
        H5Dwrite(d.id(), t.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, rows.as_ptr() as *const c_void)
    })
    .map(|_| ())
}

/// Read a whole dataset as type `t` into `buf`, which must hold every element.
pub(crate) fn read_all_raw(d: &Dataset, t: &Datatype, buf: &mut [u8]) -> H5Result<()> {
    let n = d.size();
    assert_eq!(buf.len(), n * t.size(), "read buffer size");
    if n == 0 {
        return Ok(());
    }
    // hdf5-metno lacks: reading into bytes of a type known only at run time (it reads `H5Type` values).
    // SAFETY: `buf` is sized for every element of the dataset in type `t` (asserted above).
    raw("read dataset", || unsafe {
        H5Dread(d.id(), t.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.as_mut_ptr() as *mut c_void)
    })
    .map(|_| ())
}

pub(crate) fn set_extent(d: &Dataset, len: u64) -> H5Result<()> {
    d.resize(len as usize).map_err(ctx("extend dataset"))
}

/// A transfer property list owned here.
struct Dxpl(hid_t);

impl Drop for Dxpl {
    fn drop(&mut self) {
        // SAFETY: we own this property list and close it once.
        hdf5::sync::sync(|| unsafe { hdf5_sys::h5p::H5Pclose(self.0) });
    }
}

/// The transfer property list of a parallel file. With `collective` the transfer is collective (every rank
/// makes the call; two-phase MPI-IO underneath): writes to compressed datasets need it. Otherwise it is
/// independent: every other write (each rank writes its own slab), and reads unless `MIV_IO_COLLECTIVE=1`.
/// A rank's slab needs nothing from the others, and Open MPI 4.1's default OMPIO collective component
/// returned zeros for part of a three-rank collective hyperslab-union read (ROMIO, `fcoll=individual` and
/// independent reads gave the right values).
fn xfer(access: Access, collective: bool) -> H5Result<Option<Dxpl>> {
    let _ = collective;
    match access {
        Access::Serial => Ok(None),
        #[cfg(feature = "mpi")]
        Access::Mpio(_) => {
            use hdf5_sys::h5p::{H5FD_mpio_xfer_t, H5Pcreate, H5Pset_dxpl_mpio, H5P_CLS_DATASET_XFER};
            let mode = if collective {
                H5FD_mpio_xfer_t::H5FD_MPIO_COLLECTIVE
            } else {
                H5FD_mpio_xfer_t::H5FD_MPIO_INDEPENDENT
            };
            // hdf5-metno lacks: dataset transfer property lists (H5Pset_dxpl_mpio).
            // SAFETY: creating and configuring a property list we own.
            let p = Dxpl(raw("create transfer property list", || unsafe { H5Pcreate(*H5P_CLS_DATASET_XFER) })?);
            // SAFETY: as above.
            raw("set MPI-IO transfer mode", || unsafe { H5Pset_dxpl_mpio(p.0, mode) })?;
            Ok(Some(p))
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
fn select_ranges(d: &Dataset, ranges: &[Range<u64>]) -> H5Result<hdf5::Dataspace> {
    let s = d.space().map_err(ctx("get dataspace"))?;
    let mut any = false;
    for r in ranges.iter().filter(|r| r.end > r.start) {
        let start: hsize_t = r.start;
        let count: hsize_t = r.end - r.start;
        let op = if any { H5S_seloper_t::H5S_SELECT_OR } else { H5S_seloper_t::H5S_SELECT_SET };
        // hdf5-metno lacks: unions of hyperslabs (H5S_SELECT_OR).
        // SAFETY: a dataspace we own; start and count are one element each, as the rank-1 space needs.
        raw("select hyperslab", || unsafe {
            H5Sselect_hyperslab(s.id(), op, &start, std::ptr::null(), &count, std::ptr::null())
        })?;
        any = true;
    }
    if !any {
        // hdf5-metno lacks: a public empty selection (H5Sselect_none).
        // SAFETY: a dataspace we own.
        raw("select none", || unsafe { H5Sselect_none(s.id()) })?;
    }
    Ok(s)
}

fn memory_space(n: u64) -> H5Result<hdf5::Dataspace> {
    let s = hdf5::Dataspace::try_new(n.max(1) as usize).map_err(ctx("create memory dataspace"))?;
    if n == 0 {
        // hdf5-metno lacks: a public empty selection (H5Sselect_none).
        // SAFETY: a dataspace we own.
        raw("select none", || unsafe { H5Sselect_none(s.id()) })?;
    }
    Ok(s)
}

/// Read the union of `ranges` (sorted ascending, disjoint) of dataset `d` into `buf` (raw bytes of
/// `mtype` elements, exactly the total length), in range order. Collective under MPI-IO: every rank calls,
/// possibly with no ranges.
pub(crate) fn read_ranges_raw(
    d: &Dataset,
    mtype: &Datatype,
    ranges: &[Range<u64>],
    buf: &mut [u8],
    access: Access,
) -> H5Result<()> {
    let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
    assert_eq!(total as usize * mtype.size(), buf.len(), "read buffer size");
    let fspace = select_ranges(d, ranges)?;
    let mspace = memory_space(total)?;
    let x = xfer(access, collective_reads())?;
    let mut dummy = [0u8; 16];
    let ptr = if buf.is_empty() { dummy.as_mut_ptr() } else { buf.as_mut_ptr() };
    // hdf5-metno lacks: reads with a hyperslab union and a transfer property list (see above).
    // SAFETY: selections and buffer agree in element count; `ptr` is valid for that many bytes.
    raw("read dataset", || unsafe {
        H5Dread(
            d.id(),
            mtype.id(),
            mspace.id(),
            fspace.id(),
            x.as_ref().map_or(H5P_DEFAULT, |p| p.0),
            ptr as *mut c_void,
        )
    })
    .map(|_| ())
}

/// Write `buf` (raw bytes of `mtype` elements) at element offset `start` of dataset `d`. Every rank calls,
/// possibly with an empty buffer (the transfer is collective for compressed datasets).
pub(crate) fn write_at_raw(d: &Dataset, mtype: &Datatype, start: u64, buf: &[u8], access: Access) -> H5Result<()> {
    let n = (buf.len() / mtype.size().max(1)) as u64;
    let fspace = select_ranges(d, &[start..start + n])?;
    let mspace = memory_space(n)?;
    // Parallel HDF5 requires collective transfers for filtered (compressed) datasets; other slabs are
    // written by each rank on its own.
    let x = xfer(access, dataset_storage(d)?.filters > 0)?;
    let dummy = [0u8; 16];
    let ptr = if buf.is_empty() { dummy.as_ptr() } else { buf.as_ptr() };
    // hdf5-metno lacks: writes with a hyperslab selection and a transfer property list (see above).
    // SAFETY: selections and buffer agree in element count.
    raw("write dataset", || unsafe {
        H5Dwrite(
            d.id(),
            mtype.id(),
            mspace.id(),
            fspace.id(),
            x.as_ref().map_or(H5P_DEFAULT, |p| p.0),
            ptr as *const c_void,
        )
    })
    .map(|_| ())
}

// ------------------------------------------------------------------------------------------------------------
// Attributes (HDF5 attributes on groups, e.g. `Reference U Min` on `Arc Distances`)

/// Write (replace) a scalar f64 attribute.
pub(crate) fn set_attr_f64(obj: &Group, name: &str, value: f64) -> H5Result<()> {
    if obj.attr(name).is_ok() {
        obj.delete_attr(name).map_err(ctx("delete attribute"))?;
    }
    // ASCII names, HDF5's default, where the crate's builder defaults to UTF-8.
    let a = obj.new_attr::<f64>().char_encoding(CharEncoding::Ascii).create(name).map_err(ctx("create attribute"))?;
    a.write_scalar(&value).map_err(ctx("write attribute"))
}

fn read_attr_f64(a: &Attribute) -> H5Result<Option<f64>> {
    let t = a.dtype().map_err(ctx("get attribute type"))?;
    if !matches!(
        t.to_descriptor(),
        Ok(TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_) | TypeDescriptor::Float(_))
    ) {
        return Ok(None);
    }
    let v = a.read_raw::<f64>().map_err(ctx("read attribute"))?;
    Ok(v.first().copied())
}

/// All numeric scalar (or first-element) attributes of an object, as f64, in creation order when the object
/// tracks it, else in name order.
pub(crate) fn attrs_f64(obj: &Group) -> H5Result<Vec<(String, f64)>> {
    let names = obj
        .attr_names_by(IndexType::CreationOrder, IterationOrder::Increasing)
        .or_else(|_| obj.attr_names_by(IndexType::Name, IterationOrder::Increasing))
        .map_err(ctx("list attributes"))?;
    let mut out = Vec::new();
    for name in names {
        let a = obj.attr(&name).map_err(ctx("open attribute"))?;
        if let Some(v) = read_attr_f64(&a)? {
            out.push((name, v));
        }
    }
    Ok(out)
}
