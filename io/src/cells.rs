//! Cell attributes: `/Populations/<pop>/<namespace>/<attribute>/{Cell Index, Attribute Pointer, Attribute
//! Value}` (DOMAIN A.3), read and appended in parallel.
//!
//! In memory a namespace is a [`CellAttributes`]: per attribute, the cells' gids with their values in
//! compressed-row form ([`AttributeData`]), any of the numeric [`Dtype`]s.
//!
//! Writing ([`NeuroH5File::append_cell_attributes`]) is collective. Every rank passes the cells it holds;
//! they are first sent to the writer rank owning their gid block (a contiguous split of the population, see
//! [`WriteOptions::io_size`]), so each append lands in gid order whatever the rank count: files written with
//! 1, 2 or 4 ranks are identical. Each writer then writes its slice at offsets from an exclusive prefix sum
//! over ranks. Appending to an existing namespace overwrites the old pointer sentinel and continues from it,
//! as neuroh5's `append_cell_attribute` does.
//!
//! Reading ([`NeuroH5File::read_cell_attributes`]) is collective too: rank 0 reads the (small) cell index and
//! broadcasts it, every rank reads the pointer entries and value ranges of its own cells with one collective
//! hyperslab-union read per dataset, or, in [`Selection::IoRanks`] mode, a few reader ranks read contiguous
//! blocks and send each cell to its owner.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;

use miv_partition::{coalesce, Assignment, Communicator, ReadPlan};

use crate::dataset::{
    agree_schema, dtype_of_dataset, extend_and_write, len_1d, merge_ranges, read_broadcast, read_union, writer_of,
    writer_ranges,
};
use crate::dtype::{Dtype, Element, Values};
use crate::error::{IoError, Result};
use crate::exchange::RowExchange;
use crate::file::{agree, exclusive_prefix, last_rank_with, NeuroH5File, WriteOptions};
use crate::h5;
use crate::types::Population;
use crate::wire;

pub const POPULATIONS: &str = "/Populations";
pub const CELL_INDEX: &str = "Cell Index";
pub const ATTR_PTR: &str = "Attribute Pointer";
pub const ATTR_VAL: &str = "Attribute Value";
pub const SEC_PTR: &str = "Section Pointer";

/// `/Populations/<pop>/<namespace>`.
pub fn namespace_path(population: &str, namespace: &str) -> String {
    format!("{POPULATIONS}/{population}/{namespace}")
}

/// One attribute of a namespace: for each cell (gid), a run of values.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeData {
    gids: Vec<u64>,
    ptr: Vec<u64>,
    values: Values,
    sorted: bool,
}

impl AttributeData {
    pub fn new(dtype: Dtype) -> AttributeData {
        AttributeData { gids: Vec::new(), ptr: vec![0], values: Values::empty(dtype), sorted: true }
    }

    /// From parts: `ptr` has one entry more than `gids`, starts at 0 and ends at `values.len()`.
    pub fn from_parts(gids: Vec<u64>, ptr: Vec<u64>, values: Values) -> Result<AttributeData> {
        if ptr.len() != gids.len() + 1
            || ptr[0] != 0
            || *ptr.last().expect("non-empty") != values.len() as u64
            || ptr.windows(2).any(|w| w[0] > w[1])
        {
            return Err(IoError::bad_input(
                "attribute data",
                format!(
                    "pointer of {} entries (ending at {:?}) does not fit {} cells and {} values",
                    ptr.len(),
                    ptr.last(),
                    gids.len(),
                    values.len()
                ),
            ));
        }
        let sorted = gids.windows(2).all(|w| w[0] < w[1]);
        Ok(AttributeData { gids, ptr, values, sorted })
    }

    pub fn dtype(&self) -> Dtype {
        self.values.dtype()
    }

    /// The gids, in this object's order (ascending for anything a reader returns).
    pub fn gids(&self) -> &[u64] {
        &self.gids
    }

    /// Value offsets: cell i owns `values[ptr[i]..ptr[i+1]]`.
    pub fn ptr(&self) -> &[u64] {
        &self.ptr
    }

    pub fn values(&self) -> &Values {
        &self.values
    }

    pub fn num_cells(&self) -> usize {
        self.gids.len()
    }

    /// The value range of the i-th cell.
    pub fn cell(&self, i: usize) -> Range<usize> {
        self.ptr[i] as usize..self.ptr[i + 1] as usize
    }

    fn position(&self, gid: u64) -> Option<usize> {
        if self.sorted {
            self.gids.binary_search(&gid).ok()
        } else {
            self.gids.iter().position(|&g| g == gid)
        }
    }

    /// The values of `gid` as `&[T]`; `None` if the cell is absent or the type differs.
    pub fn get<T: Element>(&self, gid: u64) -> Option<&[T]> {
        let i = self.position(gid)?;
        Some(&self.values.as_slice::<T>()?[self.cell(i)])
    }

    /// Values of `gid` as a column.
    pub fn get_values(&self, gid: u64) -> Option<Values> {
        self.position(gid).map(|i| self.values.slice(self.cell(i)))
    }

    /// Append a cell.
    pub fn push<T: Element>(&mut self, gid: u64, vals: &[T]) -> Result<()> {
        let dtype = self.dtype();
        let v = self.values.as_vec_mut::<T>().ok_or_else(|| {
            IoError::bad_input(format!("gid {gid}"), format!("{} values pushed to a {dtype} attribute", T::DTYPE))
        })?;
        v.extend_from_slice(vals);
        self.note_gid(gid);
        Ok(())
    }

    /// Append a cell with `vals[range]` of a column of the same type.
    pub fn push_from(&mut self, gid: u64, vals: &Values, range: Range<usize>) -> Result<()> {
        if vals.dtype() != self.dtype() {
            return Err(IoError::bad_input(
                format!("gid {gid}"),
                format!("{} values pushed to a {} attribute", vals.dtype(), self.dtype()),
            ));
        }
        self.values.extend_from(vals, range);
        self.note_gid(gid);
        Ok(())
    }

    fn note_gid(&mut self, gid: u64) {
        if let Some(&last) = self.gids.last() {
            if gid <= last {
                self.sorted = false;
            }
        }
        self.gids.push(gid);
        self.ptr.push(self.values.len() as u64);
    }

    /// Sort cells by gid. Repeated gids are merged (values concatenated in their current order) when
    /// `merge`, else reported as an error.
    pub(crate) fn normalize(&mut self, merge: bool, context: &str) -> Result<()> {
        if self.sorted {
            return Ok(());
        }
        let mut order: Vec<usize> = (0..self.gids.len()).collect();
        order.sort_by_key(|&i| (self.gids[i], i));
        let mut out = AttributeData::new(self.dtype());
        for &i in &order {
            let g = self.gids[i];
            if out.gids.last() == Some(&g) {
                if !merge {
                    return Err(IoError::bad_input(context, format!("gid {g} given more than once")));
                }
                out.values.extend_from(&self.values, self.cell(i));
                *out.ptr.last_mut().expect("ptr") = out.values.len() as u64;
            } else {
                out.values.extend_from(&self.values, self.cell(i));
                out.gids.push(g);
                out.ptr.push(out.values.len() as u64);
            }
        }
        *self = out;
        Ok(())
    }

    /// Send each cell to `owner(gid)` (collective; every rank calls this for the same attributes in the
    /// same order). Cells arrive in source-rank order.
    fn scatter(comm: &dyn Communicator, data: Cow<AttributeData>, owner: &impl Fn(u64) -> usize) -> AttributeData {
        let mut x = RowExchange::new(comm, &data.gids, &data.ptr, owner);
        let ptr = std::mem::take(&mut x.ptr);
        let gids = std::mem::take(&mut x.gids);
        let values = match data {
            Cow::Owned(d) => x.column(comm, &d.ptr, Cow::Owned(d.values)),
            Cow::Borrowed(d) => x.column(comm, &d.ptr, Cow::Borrowed(&d.values)),
        };
        let sorted = gids.windows(2).all(|w| w[0] < w[1]);
        AttributeData { gids, ptr, values, sorted }
    }
}

/// The attributes of one namespace of one population held by this rank.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CellAttributes {
    attributes: BTreeMap<String, AttributeData>,
}

impl CellAttributes {
    pub fn new() -> CellAttributes {
        CellAttributes::default()
    }

    /// Add an (empty) attribute of type `dtype`; keeps an existing one of the same type.
    pub fn declare(&mut self, name: &str, dtype: Dtype) -> Result<&mut AttributeData> {
        let a = self.attributes.entry(name.to_string()).or_insert_with(|| AttributeData::new(dtype));
        if a.dtype() != dtype {
            return Err(IoError::bad_input(
                format!("attribute {name:?}"),
                format!("declared {dtype}, already {}", a.dtype()),
            ));
        }
        Ok(a)
    }

    /// Append the values of one cell to attribute `name` (declared on first use with `T`'s type).
    pub fn push<T: Element>(&mut self, name: &str, gid: u64, values: &[T]) -> Result<()> {
        self.declare(name, T::DTYPE)?.push(gid, values)
    }

    /// Append the values of one cell from a column (declared with the column's type on first use).
    pub fn push_values(&mut self, name: &str, gid: u64, values: &Values) -> Result<()> {
        self.declare(name, values.dtype())?.push_from(gid, values, 0..values.len())
    }

    pub fn insert(&mut self, name: &str, data: AttributeData) {
        self.attributes.insert(name.to_string(), data);
    }

    pub fn attribute(&self, name: &str) -> Option<&AttributeData> {
        self.attributes.get(name)
    }

    pub fn attributes(&self) -> impl Iterator<Item = (&String, &AttributeData)> {
        self.attributes.iter()
    }

    pub fn names(&self) -> Vec<String> {
        self.attributes.keys().cloned().collect()
    }

    /// The values of `gid` in attribute `name` as `&[T]`.
    pub fn get<T: Element>(&self, name: &str, gid: u64) -> Option<&[T]> {
        self.attributes.get(name)?.get(gid)
    }

    /// The union of all attributes' gids, ascending.
    pub fn gids(&self) -> Vec<u64> {
        let mut g: Vec<u64> = self.attributes.values().flat_map(|a| a.gids.iter().copied()).collect();
        g.sort_unstable();
        g.dedup();
        g
    }

    pub fn is_empty(&self) -> bool {
        self.attributes.values().all(|a| a.gids.is_empty())
    }

    pub(crate) fn normalize(&mut self, merge: bool, context: &str) -> Result<()> {
        for (name, a) in self.attributes.iter_mut() {
            a.normalize(merge, &format!("{context}: attribute {name:?}"))?;
        }
        Ok(())
    }

    /// Send every cell of the attributes of `schema` (the same on every rank) to `owner(gid)` (collective).
    /// An attribute this rank lacks is sent as empty.
    pub(crate) fn scatter(
        cells: Cow<CellAttributes>,
        comm: &dyn Communicator,
        schema: &[(String, Dtype)],
        owner: impl Fn(u64) -> usize,
    ) -> CellAttributes {
        let mut own = match cells {
            Cow::Owned(c) => Ok(c.attributes),
            Cow::Borrowed(c) => Err(c),
        };
        let mut out = CellAttributes::new();
        for (name, dtype) in schema {
            let data = match &mut own {
                Ok(m) => Cow::Owned(m.remove(name).unwrap_or_else(|| AttributeData::new(*dtype))),
                Err(c) => c.attributes.get(name).map_or_else(|| Cow::Owned(AttributeData::new(*dtype)), Cow::Borrowed),
            };
            out.insert(name, AttributeData::scatter(comm, data, &owner));
        }
        out
    }
}

/// Which cells a collective read gives to each rank.
#[derive(Debug, Clone, Copy)]
pub enum Selection<'a> {
    /// Every rank reads the cells it owns under the assignment (hyperslab unions of its own cells).
    Owned(&'a Assignment),
    /// `io_size` reader ranks read contiguous gid blocks, then each cell is sent to its owner (neuroh5's
    /// `io_size`).
    IoRanks { assignment: &'a Assignment, io_size: usize },
    /// Every rank reads every cell.
    All,
    /// This rank reads exactly these gids (each rank passes its own list).
    Gids(&'a [u64]),
}

impl Selection<'_> {
    /// The gid ranges this rank reads from `population`.
    pub(crate) fn reads(&self, comm: &dyn Communicator, population: Range<u64>) -> Vec<Range<u64>> {
        match self {
            Selection::Owned(a) => ReadPlan::owned(a, population).ranges_of(comm.rank()).to_vec(),
            Selection::IoRanks { io_size, .. } => {
                ReadPlan::io_ranks(population, comm.size(), (*io_size).max(1)).ranges_of(comm.rank()).to_vec()
            }
            Selection::All => vec![population],
            Selection::Gids(g) => {
                let mut g: Vec<u64> = g.iter().copied().filter(|x| population.contains(x)).collect();
                g.sort_unstable();
                g.dedup();
                coalesce(&g)
            }
        }
    }

    /// The owner assignment when read data must be redistributed after reading.
    pub(crate) fn scatter_to(&self) -> Option<&Assignment> {
        match self {
            Selection::IoRanks { assignment, .. } => Some(assignment),
            _ => None,
        }
    }

    /// How to read rows (destinations with their edges) of `population`: the gid ranges this rank reads and,
    /// when rows must then move to their owners, the owner assignment. `Owned` with owners scattered over
    /// the population (round-robin) is read as every rank reading a contiguous block and sending each row
    /// to its owner, as `IoRanks` does: HDF5 pays several microseconds per selected piece and per dataset,
    /// far more than moving a row of a few hundred edges between ranks. The result is the same either way.
    pub(crate) fn row_plan(
        &self,
        comm: &dyn Communicator,
        population: Range<u64>,
    ) -> (Vec<Range<u64>>, Option<&Assignment>) {
        let targets = self.reads(comm, population.clone());
        if let Selection::Owned(a) = self {
            let pieces =
                if comm.size() == 1 { targets.len() } else { comm.allreduce_max(targets.len() as f64) as usize };
            if pieces > OWNED_PIECES_LIMIT && owns_all(a, &population) {
                let blocks = ReadPlan::io_ranks(population, comm.size(), comm.size());
                return (blocks.ranges_of(comm.rank()).to_vec(), Some(a));
            }
        }
        (targets, self.scatter_to())
    }
}

/// Above this many owned gid runs on some rank, `Selection::Owned` reads rows in contiguous blocks and
/// exchanges them (see `Selection::row_plan`).
const OWNED_PIECES_LIMIT: usize = 64;

/// Does `a` give every gid of `population` an owner (so a block read followed by an exchange delivers
/// exactly what `Owned` promises)?
fn owns_all(a: &Assignment, population: &Range<u64>) -> bool {
    match a {
        Assignment::RoundRobin { .. } => true,
        Assignment::Table { gids, .. } => {
            let lo = gids.partition_point(|&g| g < population.start);
            let hi = gids.partition_point(|&g| g < population.end);
            (hi - lo) as u64 == population.end.saturating_sub(population.start)
        }
    }
}

// ------------------------------------------------------------------------------------------------------------
// Namespace structure on disk

/// Facts about one attribute of a namespace in a file.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeInfo {
    pub name: String,
    pub dtype: Dtype,
    /// Number of entries in its cell index (cells, counting repeats).
    pub cells: u64,
    /// Number of values.
    pub values: u64,
    /// Which distinct index / pointer dataset it uses (attributes sharing one through hard links share the
    /// number).
    pub index_id: usize,
    pub ptr_id: usize,
    pub chunk: Option<u64>,
    pub compressed: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct NsInfo {
    pub attrs: Vec<AttributeInfo>,
    /// Path and length of each distinct index dataset.
    pub indexes: Vec<(String, u64)>,
    pub ptrs: Vec<(String, u64)>,
}

impl NsInfo {
    fn encode(&self) -> Vec<u8> {
        let mut w = wire::Writer::default();
        w.u64(self.indexes.len() as u64);
        for (p, n) in &self.indexes {
            w.str(p);
            w.u64(*n);
        }
        w.u64(self.ptrs.len() as u64);
        for (p, n) in &self.ptrs {
            w.str(p);
            w.u64(*n);
        }
        for a in &self.attrs {
            w.str(&a.name);
            w.u64s(&[
                Dtype::ALL.iter().position(|d| *d == a.dtype).expect("dtype") as u64,
                a.cells,
                a.values,
                a.index_id as u64,
                a.ptr_id as u64,
                a.chunk.map_or(0, |c| c + 1),
                a.compressed as u64,
            ]);
        }
        w.buf
    }

    fn decode(b: &[u8]) -> NsInfo {
        let mut r = wire::Reader::new(b);
        let mut info = NsInfo::default();
        for _ in 0..r.u64() {
            let p = r.str();
            info.indexes.push((p, r.u64()));
        }
        for _ in 0..r.u64() {
            let p = r.str();
            info.ptrs.push((p, r.u64()));
        }
        while !r.done() {
            let name = r.str();
            let v = r.u64s();
            info.attrs.push(AttributeInfo {
                name,
                dtype: Dtype::ALL[v[0] as usize],
                cells: v[1],
                values: v[2],
                index_id: v[3] as usize,
                ptr_id: v[4] as usize,
                chunk: if v[5] == 0 { None } else { Some(v[5] - 1) },
                compressed: v[6] == 1,
            });
        }
        info
    }
}

/// Inspect a namespace on this rank alone.
fn local_namespace_info(f: &NeuroH5File, ns_path: &str) -> Result<NsInfo> {
    if !h5::exists(f.root(), ns_path) {
        return Err(f.missing(ns_path, "cell attribute namespace group"));
    }
    let g = h5::open_group(f.root(), ns_path).map_err(f.err(ns_path))?;
    let mut info = NsInfo::default();
    let mut ids: Vec<(h5::ObjectId, usize)> = Vec::new();
    let mut pids: Vec<(h5::ObjectId, usize)> = Vec::new();
    for child in h5::children(&g).map_err(f.err(ns_path))? {
        let apath = format!("{ns_path}/{child}");
        if h5::kind(f.root(), &apath).map_err(f.err(&apath))? != h5::Kind::Group {
            continue;
        }
        let vpath = format!("{apath}/{ATTR_VAL}");
        if !h5::exists(f.root(), &vpath) {
            return Err(f.missing(&vpath, "attribute value dataset"));
        }
        let vd = h5::open_dataset(f.root(), &vpath).map_err(f.err(&vpath))?;
        let dtype = dtype_of_dataset(f, &vd, &vpath)?;
        let values = len_1d(f, &vd, &vpath)?;
        let st = h5::dataset_storage(&vd).map_err(f.err(&vpath))?;
        let id_of = |name: &str,
                     table: &mut Vec<(h5::ObjectId, usize)>,
                     list: &mut Vec<(String, u64)>|
         -> Result<usize> {
            let p = format!("{apath}/{name}");
            if !h5::exists(f.root(), &p) {
                return Err(f.missing(
                    &p,
                    if name == CELL_INDEX { "uint32 cell index dataset" } else { "uint64 attribute pointer dataset" },
                ));
            }
            let d = h5::open_dataset(f.root(), &p).map_err(f.err(&p))?;
            let want = if name == CELL_INDEX { Dtype::U32 } else { Dtype::U64 };
            let got = dtype_of_dataset(f, &d, &p)?;
            let int_ok = if name == CELL_INDEX { !got.is_float() && got.size() <= 4 } else { !got.is_float() };
            if !int_ok {
                return Err(f.invalid(&p, format!("expected {want}, found {got}")));
            }
            let ident = h5::object_identity(&d).map_err(f.err(&p))?;
            if let Some((_, k)) = table.iter().find(|(i, _)| *i == ident) {
                return Ok(*k);
            }
            let n = len_1d(f, &d, &p)?;
            list.push((p, n));
            table.push((ident, list.len() - 1));
            Ok(list.len() - 1)
        };
        let index_id = id_of(CELL_INDEX, &mut ids, &mut info.indexes)?;
        let ptr_id = id_of(ATTR_PTR, &mut pids, &mut info.ptrs)?;
        let cells = info.indexes[index_id].1;
        let (ppath, plen) = &info.ptrs[ptr_id];
        if !(*plen == cells + 1 || (cells == 0 && *plen <= 1)) {
            return Err(f.invalid(
                ppath,
                format!("has {plen} entries but {apath}/{CELL_INDEX} has {cells} cells (expected {})", cells + 1),
            ));
        }
        info.attrs.push(AttributeInfo {
            name: child,
            dtype,
            cells,
            values,
            index_id,
            ptr_id,
            chunk: st.chunk,
            compressed: st.filters > 0,
        });
    }
    Ok(info)
}

/// Rank 0 inspects the namespace and broadcasts what it found.
pub(crate) fn namespace_info(f: &NeuroH5File, ns_path: &str) -> Result<NsInfo> {
    let local = if f.comm.rank() == 0 { local_namespace_info(f, ns_path) } else { Ok(NsInfo::default()) };
    let local = agree(f.comm, local)?;
    if f.comm.size() == 1 {
        return Ok(local);
    }
    let mut b = local.encode();
    f.comm.broadcast_bytes(0, &mut b);
    Ok(NsInfo::decode(&b))
}

/// Collective read of the cells of `targets` (sorted gid ranges) from a namespace.
pub(crate) fn read_namespace_ranges(
    f: &NeuroH5File,
    pop: &Population,
    ns_path: &str,
    info: &NsInfo,
    targets: &[Range<u64>],
    mask: Option<&[&str]>,
) -> Result<CellAttributes> {
    let in_targets = |gid: u64| -> bool {
        let i = targets.partition_point(|r| r.end <= gid);
        i < targets.len() && targets[i].contains(&gid)
    };
    // Per distinct index: wanted (position, gid) in position order.
    let mut wanted: Vec<Vec<(u64, u64)>> = Vec::with_capacity(info.indexes.len());
    for (path, _) in &info.indexes {
        let index: Vec<u32> = read_broadcast(f, path)?;
        let bad = index.iter().position(|&i| i as u64 >= pop.count);
        if let Some(p) = bad {
            return Err(f.invalid(
                path,
                format!("entry {p} = {} is outside population {} ({} cells)", index[p], pop.name, pop.count),
            ));
        }
        wanted.push(
            index
                .iter()
                .enumerate()
                .filter(|(_, &rel)| in_targets(pop.start + rel as u64))
                .map(|(i, &rel)| (i as u64, pop.start + rel as u64))
                .collect(),
        );
    }
    let use_attr = |name: &str| mask.is_none_or(|m| m.contains(&name));
    // Which index each pointer belongs to (they must pair consistently).
    let mut ptr_index: Vec<Option<usize>> = vec![None; info.ptrs.len()];
    for a in info.attrs.iter().filter(|a| use_attr(&a.name)) {
        match ptr_index[a.ptr_id] {
            None => ptr_index[a.ptr_id] = Some(a.index_id),
            Some(i) if i != a.index_id => {
                return Err(f.invalid(
                    &info.ptrs[a.ptr_id].0,
                    "pointer dataset is shared by attributes with different cell indexes",
                ));
            }
            _ => {}
        }
    }
    // Per pointer: (start, end) value offsets of each wanted cell, in the index's position order.
    let mut cell_ranges: Vec<Vec<(u64, u64)>> = vec![Vec::new(); info.ptrs.len()];
    for (p, (ppath, _)) in info.ptrs.iter().enumerate() {
        let Some(ix) = ptr_index[p] else { continue };
        let pos: Vec<Range<u64>> = wanted[ix].iter().map(|&(i, _)| i..i + 2).collect();
        let (merged, offsets) = merge_ranges(&pos);
        let vals = read_union(f, ppath, Dtype::U64, &merged)?;
        let ptr = vals.as_slice::<u64>().expect("u64");
        cell_ranges[p] = offsets.iter().map(|&o| (ptr[o as usize], ptr[o as usize + 1])).collect();
    }
    // Validate pointers against every value dataset that uses them, then agree.
    let mut check = Ok(());
    for a in info.attrs.iter().filter(|a| use_attr(&a.name)) {
        for (k, &(s, e)) in cell_ranges[a.ptr_id].iter().enumerate() {
            if s > e || e > a.values {
                let pos = wanted[a.index_id][k].0;
                check = Err(f.invalid(
                    &info.ptrs[a.ptr_id].0,
                    format!(
                        "entries {pos}..{} = [{s}, {e}] point past the end of {ns_path}/{}/{ATTR_VAL} ({} values)",
                        pos + 1,
                        a.name,
                        a.values
                    ),
                ));
                break;
            }
        }
        if check.is_err() {
            break;
        }
    }
    agree(f.comm, check)?;

    let mut out = CellAttributes::new();
    for a in info.attrs.iter().filter(|a| use_attr(&a.name)) {
        let ranges = &cell_ranges[a.ptr_id];
        let mut order: Vec<usize> = (0..ranges.len()).collect();
        order.sort_by_key(|&k| ranges[k].0);
        let sorted: Vec<Range<u64>> = order.iter().map(|&k| ranges[k].0..ranges[k].1).collect();
        let (merged, offs) = merge_ranges(&sorted);
        let vpath = format!("{ns_path}/{}/{ATTR_VAL}", a.name);
        let buf = read_union(f, &vpath, a.dtype, &merged)?;
        let mut at = vec![0u64; ranges.len()];
        for (j, &k) in order.iter().enumerate() {
            at[k] = offs[j];
        }
        let mut data = AttributeData::new(a.dtype);
        for (k, &(_, gid)) in wanted[a.index_id].iter().enumerate() {
            let (s, e) = ranges[k];
            let o = at[k] as usize;
            data.push_from(gid, &buf, o..o + (e - s) as usize)?;
        }
        data.normalize(true, &vpath)?;
        out.insert(&a.name, data);
    }
    Ok(out)
}

// ------------------------------------------------------------------------------------------------------------
// Writing

/// How the attributes of a namespace share index and pointer datasets.
#[derive(Debug, Clone)]
pub(crate) struct NsLayout {
    /// One `Cell Index` at namespace level, hard-linked into every attribute group (Trees), instead of one
    /// per attribute.
    pub shared_index: bool,
    pub groups: Vec<PtrGroup>,
}

/// Attributes sharing one pointer dataset, owned by the first member's group under `dataset_name` (and
/// linked as `Attribute Pointer` everywhere else).
#[derive(Debug, Clone)]
pub(crate) struct PtrGroup {
    pub members: Vec<String>,
    pub dataset_name: &'static str,
}

impl NsLayout {
    /// Every attribute with its own index and pointer (neuroh5's Python writer).
    pub fn separate(names: &[String]) -> NsLayout {
        NsLayout {
            shared_index: false,
            groups: names.iter().map(|n| PtrGroup { members: vec![n.clone()], dataset_name: ATTR_PTR }).collect(),
        }
    }
}

/// Append a namespace (collective). `data` holds this rank's cells, already sent to their writer and sorted.
pub(crate) fn write_namespace(
    f: &NeuroH5File,
    pop: &Population,
    ns: &str,
    layout: &NsLayout,
    data: &CellAttributes,
    schema: &[(String, Dtype)],
    opts: &WriteOptions,
) -> Result<()> {
    let ns_path = namespace_path(&pop.name, ns);
    let comm = f.comm;
    let empty: BTreeMap<String, AttributeData> =
        schema.iter().map(|(n, d)| (n.clone(), AttributeData::new(*d))).collect();
    let get = |n: &str| data.attribute(n).unwrap_or_else(|| &empty[n]);
    let dtype_of = |n: &str| schema.iter().find(|(m, _)| m == n).map(|x| x.1).expect("schema");

    // Local consistency: members of a pointer group (and, with a shared index, all attributes) have the same
    // cells and counts.
    let mut local = Ok(());
    for g in &layout.groups {
        let first = get(&g.members[0]);
        for m in &g.members[1..] {
            let a = get(m);
            if a.gids != first.gids || a.ptr != first.ptr {
                local = Err(IoError::bad_input(
                    format!("{ns_path}/{m}"),
                    format!("cells differ from {:?}, with which it shares a pointer", g.members[0]),
                ));
            }
        }
        if layout.shared_index && first.gids != get(&layout.groups[0].members[0]).gids {
            local = Err(IoError::bad_input(
                format!("{ns_path}/{}", g.members[0]),
                "cells differ from the namespace's shared cell index",
            ));
        }
    }
    agree(comm, local)?;

    // Groups and datasets, created in one agreed order.
    let index_paths: Vec<String> = if layout.shared_index {
        vec![format!("{ns_path}/{CELL_INDEX}")]
    } else {
        layout.groups.iter().map(|g| format!("{ns_path}/{}/{CELL_INDEX}", g.members[0])).collect()
    };
    let ptr_paths: Vec<String> =
        layout.groups.iter().map(|g| format!("{ns_path}/{}/{}", g.members[0], g.dataset_name)).collect();
    let val_paths: Vec<String> = schema.iter().map(|(n, _)| format!("{ns_path}/{n}/{ATTR_VAL}")).collect();
    let exists = f.exist_all(&[index_paths.clone(), ptr_paths.clone(), val_paths.clone()].concat());
    let (ix_exist, rest) = exists.split_at(index_paths.len());
    let (ptr_exist, val_exist) = rest.split_at(ptr_paths.len());
    let e = |p: &str| f.err(p);
    let created = (|| -> Result<()> {
        h5::ensure_group(f.root(), &ns_path).map_err(e(&ns_path))?;
        let chunk = opts.chunk_size;
        for (p, ex) in index_paths.iter().zip(ix_exist) {
            if !ex {
                h5::create_dataset_1d(f.root(), p, Dtype::U32, chunk, opts.deflate, opts.checksum).map_err(e(p))?;
            }
        }
        for (gi, g) in layout.groups.iter().enumerate() {
            let owner = &ptr_paths[gi];
            if !ptr_exist[gi] {
                h5::create_dataset_1d(f.root(), owner, Dtype::U64, chunk, opts.deflate, opts.checksum)
                    .map_err(e(owner))?;
                for (k, m) in g.members.iter().enumerate() {
                    let link = format!("{ns_path}/{m}/{ATTR_PTR}");
                    if k == 0 && g.dataset_name == ATTR_PTR {
                        continue;
                    }
                    h5::ensure_group(f.root(), &format!("{ns_path}/{m}")).map_err(e(&link))?;
                    h5::link_hard(f.root(), owner, &link).map_err(e(&link))?;
                }
            }
            if layout.shared_index && !ix_exist[0] {
                for m in &g.members {
                    let link = format!("{ns_path}/{m}/{CELL_INDEX}");
                    h5::ensure_group(f.root(), &format!("{ns_path}/{m}")).map_err(e(&link))?;
                    h5::link_hard(f.root(), &index_paths[0], &link).map_err(e(&link))?;
                }
            }
        }
        for ((p, ex), (_, d)) in val_paths.iter().zip(val_exist).zip(schema) {
            if !ex {
                h5::create_dataset_1d(f.root(), p, *d, opts.value_chunk_size, opts.deflate, opts.checksum)
                    .map_err(e(p))?;
            }
        }
        Ok(())
    })();
    agree(comm, created)?;

    // Current sizes and types, as rank 0 sees them.
    let sizes_local = (|| -> Result<Vec<u64>> {
        let mut s = Vec::new();
        for p in index_paths.iter().chain(&ptr_paths).chain(&val_paths) {
            let d = h5::open_dataset(f.root(), p).map_err(e(p))?;
            s.push(len_1d(f, &d, p)?);
        }
        for (p, (_, want)) in val_paths.iter().zip(schema) {
            let d = h5::open_dataset(f.root(), p).map_err(e(p))?;
            let got = dtype_of_dataset(f, &d, p)?;
            if got != *want {
                return Err(f.invalid(p, format!("existing values are {got}; cannot append {want}")));
            }
        }
        Ok(s)
    })();
    let sizes_local = if comm.rank() == 0 { sizes_local } else { Ok(Vec::new()) };
    let sizes_local = agree(comm, sizes_local)?;
    let sizes = if comm.size() == 1 { sizes_local } else { comm.broadcast(0, &sizes_local) };
    let (ix_old, rest) = sizes.split_at(index_paths.len());
    let (ptr_old, val_old) = rest.split_at(ptr_paths.len());
    let mut local = Ok(());
    for (gi, g) in layout.groups.iter().enumerate() {
        let ix = if layout.shared_index { ix_old[0] } else { ix_old[gi] };
        let p = ptr_old[gi];
        if !(p == ix + 1 || (ix == 0 && p <= 1)) {
            local = Err(f.invalid(
                &ptr_paths[gi],
                format!("has {p} entries but the cell index of {:?} has {ix} (expected {})", g.members[0], ix + 1),
            ));
        }
        let members_vals: Vec<u64> =
            g.members.iter().map(|m| val_old[schema.iter().position(|(n, _)| n == m).expect("schema")]).collect();
        if members_vals.windows(2).any(|w| w[0] != w[1]) {
            local = Err(f.invalid(&ptr_paths[gi], "attributes sharing this pointer have different numbers of values"));
        }
    }
    agree(comm, local)?;

    // Offsets: cells per index, values per pointer group.
    let mut counts: Vec<u64> = Vec::new();
    let index_cells = |k: usize| -> u64 {
        if layout.shared_index {
            get(&layout.groups[0].members[0]).gids.len() as u64
        } else {
            get(&layout.groups[k].members[0]).gids.len() as u64
        }
    };
    for k in 0..index_paths.len() {
        counts.push(index_cells(k));
    }
    for g in &layout.groups {
        counts.push(get(&g.members[0]).values.len() as u64);
    }
    let (before, total) = exclusive_prefix(comm, &counts);
    let n_ix = index_paths.len();

    let write = |path: &str, dtype: Dtype, start: u64, len: u64, bytes: &[u8]| {
        extend_and_write(f, path, dtype, start, len, bytes)
    };
    for (k, p) in index_paths.iter().enumerate() {
        let src = if layout.shared_index { &layout.groups[0].members[0] } else { &layout.groups[k].members[0] };
        let rel: Vec<u32> = get(src).gids.iter().map(|g| (g - pop.start) as u32).collect();
        write(p, Dtype::U32, ix_old[k] + before[k], ix_old[k] + total[k], bytemuck::cast_slice(&rel))?;
    }
    for (gi, g) in layout.groups.iter().enumerate() {
        let a = get(&g.members[0]);
        let n_cells = a.gids.len() as u64;
        let base = ptr_old[gi].saturating_sub(1);
        let vbase = val_old[schema.iter().position(|(n, _)| *n == g.members[0]).expect("schema")];
        let voff = vbase + before[n_ix + gi];
        let last = last_rank_with(comm, n_cells);
        let mut ptr: Vec<u64> = a.ptr[..a.gids.len()].iter().map(|p| p + voff).collect();
        if comm.rank() == last {
            ptr.push(voff + a.values.len() as u64);
        }
        let cells_before = if layout.shared_index { before[0] } else { before[gi] };
        let cells_total = if layout.shared_index { total[0] } else { total[gi] };
        write(&ptr_paths[gi], Dtype::U64, base + cells_before, base + cells_total + 1, bytemuck::cast_slice(&ptr))?;
        for m in &g.members {
            let j = schema.iter().position(|(n, _)| n == m).expect("schema");
            let d = dtype_of(m);
            write(
                &val_paths[j],
                d,
                val_old[j] + before[n_ix + gi],
                val_old[j] + total[n_ix + gi],
                get(m).values.as_bytes(),
            )?;
        }
    }
    Ok(())
}

impl NeuroH5File<'_> {
    /// Names of the namespaces of a population (the groups below `/Populations/<pop>`).
    pub fn namespaces(&self, population: &str) -> Result<Vec<String>> {
        let p = format!("{POPULATIONS}/{population}");
        if !h5::exists(self.root(), &p) {
            return Ok(Vec::new());
        }
        let g = h5::open_group(self.root(), &p).map_err(self.err(&p))?;
        let mut out = Vec::new();
        for c in h5::children(&g).map_err(self.err(&p))? {
            let cp = format!("{p}/{c}");
            if h5::kind(self.root(), &cp).map_err(self.err(&cp))? == h5::Kind::Group {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// The attributes of a namespace with their types and sizes (collective; rank 0 inspects).
    pub fn attribute_info(&self, population: &str, namespace: &str) -> Result<Vec<AttributeInfo>> {
        Ok(namespace_info(self, &namespace_path(population, namespace))?.attrs)
    }

    /// Append cells to a namespace (collective; see the module documentation).
    pub fn append_cell_attributes(
        &self,
        population: &str,
        namespace: &str,
        cells: &CellAttributes,
        opts: &WriteOptions,
    ) -> Result<()> {
        self.require_writable()?;
        let pop = self.population(population)?;
        let context = format!("{}: {}", self.path().display(), namespace_path(population, namespace));
        let local: Vec<(String, Dtype)> = cells.attributes().map(|(n, a)| (n.clone(), a.dtype())).collect();
        let schema = agree_schema(self.comm, &local, &context)?;
        let names: Vec<String> = schema.iter().map(|x| x.0.clone()).collect();
        let data = distribute(self, &pop, cells, &schema, opts, &context)?;
        write_namespace(self, &pop, namespace, &NsLayout::separate(&names), &data, &schema, opts)
    }

    /// Read the cells of a namespace that `selection` gives this rank (collective). `attributes` limits the
    /// read to those names.
    pub fn read_cell_attributes(
        &self,
        population: &str,
        namespace: &str,
        selection: &Selection,
        attributes: Option<&[&str]>,
    ) -> Result<CellAttributes> {
        let pop = self.population(population)?;
        let ns_path = namespace_path(population, namespace);
        let info = namespace_info(self, &ns_path)?;
        if let Some(m) = attributes {
            let missing: Vec<&&str> = m.iter().filter(|n| !info.attrs.iter().any(|a| a.name == **n)).collect();
            if let Some(n) = missing.first() {
                return Err(self.missing(&format!("{ns_path}/{n}"), "requested attribute"));
            }
        }
        let targets = selection.reads(self.comm, pop.range());
        let cells = read_namespace_ranges(self, &pop, &ns_path, &info, &targets, attributes)?;
        match selection.scatter_to() {
            None => Ok(cells),
            Some(a) => {
                let schema: Vec<(String, Dtype)> = cells.attributes().map(|(n, a)| (n.clone(), a.dtype())).collect();
                let mut out =
                    CellAttributes::scatter(Cow::Owned(cells), self.comm, &schema, |g| a.rank_of(g).unwrap_or(0));
                out.normalize(true, &ns_path)?;
                Ok(out)
            }
        }
    }

    /// Set a numeric HDF5 attribute on a namespace group (e.g. `Reference U Min` on `Arc Distances`).
    /// Collective: every rank passes the same value.
    pub fn set_namespace_attribute(&self, population: &str, namespace: &str, name: &str, value: f64) -> Result<()> {
        self.require_writable()?;
        let p = namespace_path(population, namespace);
        let r = h5::ensure_group(self.root(), &p).and_then(|g| h5::set_attr_f64(&g, name, value)).map_err(self.err(&p));
        agree(self.comm, r)
    }

    /// The numeric HDF5 attributes of a namespace group, as f64.
    pub fn namespace_attributes(&self, population: &str, namespace: &str) -> Result<Vec<(String, f64)>> {
        let p = namespace_path(population, namespace);
        if !h5::exists(self.root(), &p) {
            return Err(self.missing(&p, "cell attribute namespace group"));
        }
        let g = h5::open_group(self.root(), &p).map_err(self.err(&p))?;
        h5::attrs_f64(&g).map_err(self.err(&p))
    }

    /// A population of `/H5Types` by name.
    pub fn population(&self, name: &str) -> Result<Population> {
        let r = self.population_ranges()?;
        r.get(name).cloned().ok_or_else(|| {
            self.invalid(
                "/H5Types/Populations",
                format!("no population named {name:?} (have {})", r.names().join(", ")),
            )
        })
    }
}

/// Validate this rank's cells against the population and send them to their writers (collective).
pub(crate) fn distribute(
    f: &NeuroH5File,
    pop: &Population,
    cells: &CellAttributes,
    schema: &[(String, Dtype)],
    opts: &WriteOptions,
    context: &str,
) -> Result<CellAttributes> {
    let mut local = Ok(());
    for (name, a) in cells.attributes() {
        if let Some(g) = a.gids.iter().find(|g| !pop.contains(**g)) {
            local = Err(IoError::bad_input(
                context,
                format!(
                    "attribute {name:?}: gid {g} is outside population {} ({}..{})",
                    pop.name,
                    pop.start,
                    pop.start + pop.count
                ),
            ));
        }
    }
    agree(f.comm, local)?;
    let mut data = if f.comm.size() == 1 {
        cells.clone()
    } else {
        let blocks = writer_ranges(f.comm, pop.range(), opts.io_size);
        CellAttributes::scatter(Cow::Borrowed(cells), f.comm, schema, |g| writer_of(&blocks, g))
    };
    let r = data.normalize(false, context);
    agree(f.comm, r)?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_sorts_and_merges() {
        let mut a = AttributeData::new(Dtype::F32);
        a.push(5, &[1.0f32, 2.0]).unwrap();
        a.push(3, &[3.0f32]).unwrap();
        a.push(5, &[4.0f32]).unwrap();
        let mut b = a.clone();
        assert!(b.normalize(false, "t").is_err());
        a.normalize(true, "t").unwrap();
        assert_eq!(a.gids(), &[3, 5]);
        assert_eq!(a.get::<f32>(5).unwrap(), &[1.0, 2.0, 4.0]);
        assert_eq!(a.get::<f32>(3).unwrap(), &[3.0]);
        assert!(a.get::<u8>(3).is_none());
        assert!(a.push(1, &[1u8]).is_err());
    }

    #[test]
    fn scatter_on_one_rank_keeps_every_cell() {
        let mut c = CellAttributes::new();
        for g in [4u64, 0, 7] {
            c.push("x", g, &vec![g as i16; g as usize % 3]).unwrap();
        }
        c.push("y", 9, &[1.5f64]).unwrap();
        let schema = vec![("x".to_string(), Dtype::I16), ("y".to_string(), Dtype::F64), ("z".to_string(), Dtype::U8)];
        let back = CellAttributes::scatter(Cow::Borrowed(&c), &miv_partition::SerialComm, &schema, |_| 0);
        assert_eq!(back.attribute("x"), c.attribute("x"));
        assert_eq!(back.attribute("y"), c.attribute("y"));
        assert_eq!(back.attribute("z").map(|a| a.num_cells()), Some(0));
    }
}
