//! Projections in destination-block-sparse form (DOMAIN A.6): `/Projections/<dst>/<src>/Edges/{Destination
//! Block Index, Destination Block Pointer, Destination Pointer, Source Index}` plus edge attributes
//! `/Projections/<dst>/<src>/<namespace>/<attribute>`, one value per edge in `Source Index` order.
//!
//! In memory a [`Projection`] is compressed-row by destination: sorted destination gids, a pointer into the
//! edge arrays, the source-population-relative source index and typed edge attributes.
//!
//! Writing ([`NeuroH5File::append_projection`]) follows neuroh5's `append_graph`: destinations without edges
//! are dropped, sources are sorted within each destination with every edge attribute permuted alike, a new
//! block starts at each gap in destination gids or after `block_size` edges, the final block pointer is the
//! length of the destination pointer (the writer quirk) and an append overwrites the old sentinels. As for
//! cells, edges first go to the writer rank owning their destination block, so the file does not depend on
//! the rank count; rank 0 writes the (small) block and destination pointers, every writer its slice of the
//! source index and attributes.
//!
//! Reading ([`NeuroH5File::read_projection`]) gives each rank the edges of the destinations it owns (or that
//! its I/O block holds, then scattered to the owners); rank 0 reads only the block index and pointer.

use std::borrow::Cow;
use std::ops::Range;

use crate::cells::Selection;
use crate::dataset::{
    agree_schema, dtype_of_dataset, extend_and_write, len_1d, merge_ranges, read_union, read_whole, writer_of,
    writer_ranges,
};
use crate::dtype::{Dtype, Element, Values};
use crate::error::{IoError, Result};
use crate::exchange::RowExchange;
use crate::file::{agree, exclusive_prefix, NeuroH5File, WriteOptions};
use crate::h5;
use crate::types::Population;
use crate::wire;

pub const PROJECTIONS: &str = "/Projections";
pub const EDGES: &str = "Edges";
pub const DST_BLK_IDX: &str = "Destination Block Index";
pub const DST_BLK_PTR: &str = "Destination Block Pointer";
pub const DST_PTR: &str = "Destination Pointer";
pub const SRC_IDX: &str = "Source Index";

/// `/Projections/<destination>/<source>`.
pub fn projection_path(source: &str, destination: &str) -> String {
    format!("{PROJECTIONS}/{destination}/{source}")
}

/// One edge attribute: one value per edge.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeAttribute {
    pub namespace: String,
    pub name: String,
    pub values: Values,
}

/// The edges of one projection held by this rank, grouped by destination.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    source: String,
    destination: String,
    src_range: Range<u64>,
    dst_range: Range<u64>,
    destinations: Vec<u64>,
    dst_ptr: Vec<u64>,
    source_index: Vec<u32>,
    attributes: Vec<EdgeAttribute>,
    sorted: bool,
}

impl Projection {
    /// An empty projection from `source` to `destination`.
    pub fn new(source: &Population, destination: &Population) -> Projection {
        Projection {
            source: source.name.clone(),
            destination: destination.name.clone(),
            src_range: source.range(),
            dst_range: destination.range(),
            destinations: Vec::new(),
            dst_ptr: vec![0],
            source_index: Vec::new(),
            attributes: Vec::new(),
            sorted: true,
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// First gid of the source population (`source gid = src_start + source_index`).
    pub fn src_start(&self) -> u64 {
        self.src_range.start
    }

    /// Destination gids, ascending for anything a reader returns.
    pub fn destinations(&self) -> &[u64] {
        &self.destinations
    }

    /// Edges of destination i are `dst_ptr[i]..dst_ptr[i+1]`.
    pub fn dst_ptr(&self) -> &[u64] {
        &self.dst_ptr
    }

    /// Source-population-relative index of each edge.
    pub fn source_index(&self) -> &[u32] {
        &self.source_index
    }

    pub fn num_edges(&self) -> usize {
        self.source_index.len()
    }

    /// The edge attributes, in (namespace, name) order.
    pub fn attributes(&self) -> &[EdgeAttribute] {
        &self.attributes
    }

    /// The edge range of the i-th destination.
    pub fn edges(&self, i: usize) -> Range<usize> {
        self.dst_ptr[i] as usize..self.dst_ptr[i + 1] as usize
    }

    /// (destination gid, edge range) for each destination.
    pub fn iter(&self) -> impl Iterator<Item = (u64, Range<usize>)> + '_ {
        (0..self.destinations.len()).map(|i| (self.destinations[i], self.edges(i)))
    }

    /// The edge range of destination `gid`.
    pub fn edges_of(&self, gid: u64) -> Option<Range<usize>> {
        let i = if self.sorted {
            self.destinations.binary_search(&gid).ok()?
        } else {
            self.destinations.iter().position(|&g| g == gid)?
        };
        Some(self.edges(i))
    }

    /// Source gids of destination `gid`.
    pub fn sources_of(&self, gid: u64) -> Option<Vec<u64>> {
        let r = self.edges_of(gid)?;
        Some(self.source_index[r].iter().map(|&s| self.src_range.start + s as u64).collect())
    }

    pub fn attribute(&self, namespace: &str, name: &str) -> Option<&Values> {
        self.attributes.iter().find(|a| a.namespace == namespace && a.name == name).map(|a| &a.values)
    }

    /// An edge attribute as `&[T]`.
    pub fn attr<T: Element>(&self, namespace: &str, name: &str) -> Option<&[T]> {
        self.attribute(namespace, name)?.as_slice()
    }

    /// Add an empty attribute; keeps an existing one of the same type.
    pub fn declare(&mut self, namespace: &str, name: &str, dtype: Dtype) -> Result<()> {
        if let Some(a) = self.attributes.iter().find(|a| a.namespace == namespace && a.name == name) {
            if a.values.dtype() != dtype {
                return Err(IoError::bad_input(
                    format!("edge attribute {namespace}/{name}"),
                    format!("declared {dtype}, already {}", a.values.dtype()),
                ));
            }
            return Ok(());
        }
        self.attributes.push(EdgeAttribute {
            namespace: namespace.into(),
            name: name.into(),
            values: Values::empty(dtype),
        });
        self.attributes.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        Ok(())
    }

    /// The values of an attribute to extend, declared with `T`'s type on first use.
    pub fn attr_mut<T: Element>(&mut self, namespace: &str, name: &str) -> Result<&mut Vec<T>> {
        self.declare(namespace, name, T::DTYPE)?;
        let a = self.attributes.iter_mut().find(|a| a.namespace == namespace && a.name == name).expect("declared");
        a.values
            .as_vec_mut::<T>()
            .ok_or_else(|| IoError::bad_input(format!("edge attribute {namespace}/{name}"), "type mismatch"))
    }

    /// Append a destination with edges from `sources` (global gids). Attribute values for these edges are
    /// appended separately with [`attr_mut`](Self::attr_mut).
    pub fn push(&mut self, destination: u64, sources: &[u64]) -> Result<()> {
        if !self.dst_range.contains(&destination) {
            return Err(IoError::bad_input(
                format!("projection {} -> {}", self.source, self.destination),
                format!(
                    "destination gid {destination} is outside {} ({}..{})",
                    self.destination, self.dst_range.start, self.dst_range.end
                ),
            ));
        }
        if let Some(s) = sources.iter().find(|s| !self.src_range.contains(s)) {
            return Err(IoError::bad_input(
                format!("projection {} -> {}", self.source, self.destination),
                format!(
                    "source gid {s} of destination {destination} is outside {} ({}..{})",
                    self.source, self.src_range.start, self.src_range.end
                ),
            ));
        }
        if let Some(&last) = self.destinations.last() {
            if destination <= last {
                self.sorted = false;
            }
        }
        self.destinations.push(destination);
        self.source_index.extend(sources.iter().map(|s| (s - self.src_range.start) as u32));
        self.dst_ptr.push(self.source_index.len() as u64);
        Ok(())
    }

    fn check_lengths(&self) -> Result<()> {
        for a in &self.attributes {
            if a.values.len() != self.num_edges() {
                return Err(IoError::bad_input(
                    format!("projection {} -> {}", self.source, self.destination),
                    format!(
                        "edge attribute {}/{} has {} values for {} edges",
                        a.namespace,
                        a.name,
                        a.values.len(),
                        self.num_edges()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Destinations strictly ascending, none without edges, and (with `sources`) each one's sources sorted.
    fn is_normalized(&self, sources: bool) -> bool {
        self.destinations.windows(2).all(|w| w[0] < w[1])
            && self.dst_ptr.windows(2).all(|w| w[0] < w[1])
            && (!sources
                || (0..self.destinations.len())
                    .all(|i| self.source_index[self.edges(i)].windows(2).all(|w| w[0] <= w[1])))
    }

    /// Sort destinations (merging repeats, edges in their current order) and drop those without edges;
    /// with `sort_sources`, also sort each destination's sources (stably) with the attributes permuted alike.
    pub(crate) fn normalize(&mut self, sort_sources: bool) {
        if !self.is_normalized(false) {
            self.regroup();
        }
        if sort_sources {
            // (source << 32 | position) keys sort stably by source with an unstable sort.
            let (mut keys, mut order) = (Vec::<u64>::new(), Vec::<usize>::new());
            for i in 0..self.destinations.len() {
                let r = self.edges(i);
                let src = &mut self.source_index[r.clone()];
                if src.windows(2).all(|w| w[0] <= w[1]) {
                    continue;
                }
                keys.clear();
                keys.extend(src.iter().enumerate().map(|(k, &s)| (s as u64) << 32 | k as u64));
                keys.sort_unstable();
                order.clear();
                order.extend(keys.iter().map(|k| (k & 0xffff_ffff) as usize));
                for (d, k) in src.iter_mut().zip(&keys) {
                    *d = (k >> 32) as u32;
                }
                for a in &mut self.attributes {
                    a.values.permute_range(r.start, &order);
                }
            }
        }
        self.sorted = true;
    }

    /// Destinations in gid order, repeats merged (edges in their current order), empty ones dropped.
    fn regroup(&mut self) {
        let mut order: Vec<usize> = (0..self.destinations.len()).collect();
        order.sort_by_key(|&i| (self.destinations[i], i));
        let mut perm: Vec<usize> = Vec::with_capacity(self.num_edges());
        let mut dests = Vec::new();
        let mut ptr = vec![0u64];
        let mut k = 0;
        while k < order.len() {
            let g = self.destinations[order[k]];
            let start = perm.len();
            while k < order.len() && self.destinations[order[k]] == g {
                perm.extend(self.edges(order[k]));
                k += 1;
            }
            if perm.len() > start {
                dests.push(g);
                ptr.push(perm.len() as u64);
            }
        }
        self.source_index = perm.iter().map(|&e| self.source_index[e]).collect();
        for a in &mut self.attributes {
            a.values = a.values.permuted(&perm);
        }
        self.destinations = dests;
        self.dst_ptr = ptr;
    }

    fn clone_header(&self) -> Projection {
        Projection {
            source: self.source.clone(),
            destination: self.destination.clone(),
            src_range: self.src_range.clone(),
            dst_range: self.dst_range.clone(),
            destinations: Vec::new(),
            dst_ptr: vec![0],
            source_index: Vec::new(),
            attributes: Vec::new(),
            sorted: true,
        }
    }

    /// Send each destination with its edges to `owner(gid)` (collective). `schema` lists the edge
    /// attributes as (namespace, name, dtype), the same on every rank; one this rank lacks is sent as empty.
    /// Destinations arrive in source-rank order (sorted when each rank's are and the ranks hold ascending
    /// gid blocks in rank order, as I/O ranks do).
    pub(crate) fn scatter(
        mut self,
        comm: &dyn miv_partition::Communicator,
        schema: &[(String, String, Dtype)],
        owner: impl Fn(u64) -> usize,
    ) -> Projection {
        let mut x = RowExchange::new(comm, &self.destinations, &self.dst_ptr, owner);
        let mut p = self.clone_header();
        let si = Values::U32(std::mem::take(&mut self.source_index));
        p.source_index = x.column(comm, &self.dst_ptr, Cow::Owned(si)).into_vec::<u32>().expect("u32 column");
        for (ns, name, dtype) in schema {
            let values = match self.attributes.iter().position(|a| &a.namespace == ns && &a.name == name) {
                Some(i) => self.attributes.swap_remove(i).values,
                None => Values::empty(*dtype),
            };
            p.attributes.push(EdgeAttribute {
                namespace: ns.clone(),
                name: name.clone(),
                values: x.column(comm, &self.dst_ptr, Cow::Owned(values)),
            });
        }
        p.attributes.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        p.destinations = x.gids;
        p.dst_ptr = x.ptr;
        p.sorted = false;
        p
    }

    /// (namespace, name, dtype) of each edge attribute.
    fn schema(&self) -> Vec<(String, String, Dtype)> {
        self.attributes.iter().map(|a| (a.namespace.clone(), a.name.clone(), a.values.dtype())).collect()
    }
}

/// Blocks of one append in neuroh5's layout for sorted destinations with edge counts.
/// Returns (DBI relative to `dst_start`, DBP, DP) before any offsets, DP without its sentinel.
pub(crate) fn blocks(dests: &[u64], counts: &[u64], dst_start: u64, block_size: u64) -> (Vec<u32>, Vec<u64>, Vec<u64>) {
    let (mut dbi, mut dbp, mut dp) = (Vec::new(), Vec::new(), Vec::with_capacity(dests.len()));
    let Some(&first) = dests.first() else { return (dbi, dbp, dp) };
    dbi.push((first - dst_start) as u32);
    dbp.push(0);
    let (mut last, mut block_edges, mut edges) = (first, 0u64, 0u64);
    for (&d, &c) in dests.iter().zip(counts) {
        if (d > 0 && d - 1 > last) || block_edges > block_size {
            dbi.push((d - dst_start) as u32);
            dbp.push(dp.len() as u64);
            block_edges = 0;
        }
        last = d;
        dp.push(edges);
        edges += c;
        block_edges += c;
    }
    (dbi, dbp, dp)
}

/// Edge attribute datasets of the given namespaces of a projection, as rank 0 finds them:
/// (namespace, name, dtype, length).
fn edge_attribute_info(f: &NeuroH5File, prj: &str, namespaces: &[&str]) -> Result<Vec<(String, String, Dtype, u64)>> {
    let mut out = Vec::new();
    for ns in namespaces {
        let p = format!("{prj}/{ns}");
        if !h5::exists(f.root(), &p) {
            return Err(f.missing(&p, "edge attribute namespace group"));
        }
        let g = h5::open_group(f.root(), &p).map_err(f.err(&p))?;
        for name in h5::children(&g).map_err(f.err(&p))? {
            let ap = format!("{p}/{name}");
            if h5::kind(f.root(), &ap).map_err(f.err(&ap))? != h5::Kind::Dataset {
                continue;
            }
            let d = h5::open_dataset(f.root(), &ap).map_err(f.err(&ap))?;
            out.push((ns.to_string(), name, dtype_of_dataset(f, &d, &ap)?, len_1d(f, &d, &ap)?));
        }
    }
    Ok(out)
}

/// What rank 0 learns about a projection and broadcasts in one message: the edge attributes (namespace,
/// name, dtype, length), the lengths of the four `Edges` datasets, the block index and the block pointer.
struct EdgesInfo {
    attrs: Vec<(String, String, Dtype, u64)>,
    sizes: Vec<u64>,
    dbi: Vec<u32>,
    dbp: Vec<u64>,
}

fn encode_info(i: &EdgesInfo) -> Vec<u8> {
    let mut w = wire::Writer::default();
    w.u64s(&i.sizes);
    w.u64s(&i.dbi.iter().map(|&b| b as u64).collect::<Vec<_>>());
    w.u64s(&i.dbp);
    let v = &i.attrs;
    for (ns, n, d, l) in v {
        w.str(ns);
        w.str(n);
        w.u64(*d as u64);
        w.u64(*l);
    }
    w.buf
}

fn decode_info(b: &[u8]) -> EdgesInfo {
    let mut r = wire::Reader::new(b);
    let sizes = r.u64s();
    let dbi = r.u64s().into_iter().map(|b| b as u32).collect();
    let dbp = r.u64s();
    let mut v = Vec::new();
    while !r.done() {
        let ns = r.str();
        let n = r.str();
        let d = Dtype::ALL[r.u64() as usize];
        v.push((ns, n, d, r.u64()));
    }
    EdgesInfo { attrs: v, sizes, dbi, dbp }
}

/// Facts about a projection in a file.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionInfo {
    pub source: String,
    pub destination: String,
    pub edges: u64,
    pub destinations: u64,
    pub blocks: u64,
    /// (namespace, attribute, dtype) of each edge attribute.
    pub attributes: Vec<(String, String, Dtype)>,
}

impl NeuroH5File<'_> {
    /// The (source, destination) pairs of `/Projections/<dst>/<src>` groups that hold an `Edges` group (the
    /// current layout; the old `/Projections/<name>/Connectivity` layout of neuroh5's sample file is skipped).
    pub fn projection_names(&self) -> Result<Vec<(String, String)>> {
        if !h5::exists(self.root(), PROJECTIONS) {
            return Ok(Vec::new());
        }
        let g = h5::open_group(self.root(), PROJECTIONS).map_err(self.err(PROJECTIONS))?;
        let mut out = Vec::new();
        for dst in h5::children(&g).map_err(self.err(PROJECTIONS))? {
            let dp = format!("{PROJECTIONS}/{dst}");
            if h5::kind(self.root(), &dp).map_err(self.err(&dp))? != h5::Kind::Group {
                continue;
            }
            let dg = h5::open_group(self.root(), &dp).map_err(self.err(&dp))?;
            for src in h5::children(&dg).map_err(self.err(&dp))? {
                let e = format!("{dp}/{src}/{EDGES}");
                if h5::exists(self.root(), &e) && h5::kind(self.root(), &e).map_err(self.err(&e))? == h5::Kind::Group {
                    out.push((src, dst.clone()));
                }
            }
        }
        Ok(out)
    }

    /// Edge attribute namespaces of a projection (the groups beside `Edges`).
    pub fn edge_namespaces(&self, source: &str, destination: &str) -> Result<Vec<String>> {
        let p = projection_path(source, destination);
        if !h5::exists(self.root(), &p) {
            return Err(self.missing(&p, "projection group"));
        }
        let g = h5::open_group(self.root(), &p).map_err(self.err(&p))?;
        Ok(h5::children(&g).map_err(self.err(&p))?.into_iter().filter(|c| c != EDGES).collect())
    }

    /// Sizes and attributes of a projection (this rank alone).
    pub fn projection_info(&self, source: &str, destination: &str) -> Result<ProjectionInfo> {
        let p = projection_path(source, destination);
        let nss = self.edge_namespaces(source, destination)?;
        let refs: Vec<&str> = nss.iter().map(|s| s.as_str()).collect();
        let attrs = edge_attribute_info(self, &p, &refs)?;
        let len = |name: &str| -> Result<u64> {
            let dp = format!("{p}/{EDGES}/{name}");
            if !h5::exists(self.root(), &dp) {
                return Err(self.missing(&dp, "projection edge dataset"));
            }
            let d = h5::open_dataset(self.root(), &dp).map_err(self.err(&dp))?;
            len_1d(self, &d, &dp)
        };
        Ok(ProjectionInfo {
            source: source.into(),
            destination: destination.into(),
            edges: len(SRC_IDX)?,
            destinations: len(DST_PTR)?.saturating_sub(1),
            blocks: len(DST_BLK_IDX)?,
            attributes: attrs.into_iter().map(|(n, a, d, _)| (n, a, d)).collect(),
        })
    }

    /// Append edges to a projection (collective; see the module documentation).
    pub fn append_projection(&self, projection: &Projection, opts: &WriteOptions) -> Result<()> {
        self.require_writable()?;
        let comm = self.comm;
        let src = self.population(&projection.source)?;
        let dst = self.population(&projection.destination)?;
        let prj = projection_path(&src.name, &dst.name);
        let context = format!("{}: {prj}", self.path().display());
        let mut local = projection.check_lengths();
        if local.is_ok() && (src.range() != projection.src_range || dst.range() != projection.dst_range) {
            local = Err(IoError::bad_input(
                &context,
                "the projection was built for population ranges that differ from the file's H5Types",
            ));
        }
        agree(comm, local)?;
        let mine: Vec<(String, Dtype)> =
            projection.attributes.iter().map(|a| (format!("{}/{}", a.namespace, a.name), a.values.dtype())).collect();
        let schema = agree_schema(comm, &mine, &context)?;
        let missing = projection.num_edges() > 0 && schema.len() != projection.attributes.len();
        agree(
            comm,
            if missing {
                Err(IoError::bad_input(&context, "this rank's edges lack attributes that other ranks give"))
            } else {
                Ok(())
            },
        )?;
        // This rank's share in file order: its writer block, destinations sorted, sources sorted per
        // destination. One process writes what it was given, copied only if it needs sorting.
        let data: Cow<Projection> = if comm.size() == 1 {
            if projection.is_normalized(true) {
                Cow::Borrowed(projection)
            } else {
                let mut p = projection.clone();
                p.normalize(true);
                Cow::Owned(p)
            }
        } else {
            let blocks = writer_ranges(comm, dst.range(), opts.io_size);
            let columns: Vec<(String, String, Dtype)> = schema
                .iter()
                .map(|(k, d)| {
                    let (ns, name) = k.split_once('/').expect("ns/name");
                    (ns.to_string(), name.to_string(), *d)
                })
                .collect();
            let mut d = projection.clone().scatter(comm, &columns, |g| writer_of(&blocks, g));
            d.normalize(true);
            Cow::Owned(d)
        };
        let n_edges = data.num_edges() as u64;
        let total_edges = comm.allgather(n_edges).iter().sum::<u64>();
        if total_edges == 0 {
            return Ok(());
        }

        let edges = format!("{prj}/{EDGES}");
        let struct_paths: Vec<String> =
            [DST_BLK_IDX, DST_BLK_PTR, DST_PTR, SRC_IDX].iter().map(|n| format!("{edges}/{n}")).collect();
        let attr_paths: Vec<String> = schema.iter().map(|(k, _)| format!("{prj}/{k}")).collect();
        let all_paths = [struct_paths.clone(), attr_paths.clone()].concat();
        let exists = self.exist_all(&all_paths);
        let e = |p: &str| self.err(p);
        let created = (|| -> Result<()> {
            let types = [Dtype::U32, Dtype::U64, Dtype::U64, Dtype::U32];
            for (i, path) in struct_paths.iter().enumerate() {
                if !exists[i] {
                    let chunk = if i == 3 { opts.value_chunk_size } else { opts.chunk_size };
                    let deflate = if i == 3 { opts.deflate } else { None };
                    h5::create_dataset_1d(self.root(), path, types[i], chunk, deflate, opts.checksum)
                        .map_err(e(path))?;
                }
            }
            for (j, (path, (_, d))) in attr_paths.iter().zip(&schema).enumerate() {
                if !exists[4 + j] {
                    h5::create_dataset_1d(self.root(), path, *d, opts.value_chunk_size, opts.deflate, opts.checksum)
                        .map_err(e(path))?;
                }
            }
            Ok(())
        })();
        agree(comm, created)?;
        let sizes = if comm.rank() == 0 {
            (|| -> Result<Vec<u64>> {
                let mut s = Vec::new();
                for (i, path) in all_paths.iter().enumerate() {
                    let d = h5::open_dataset(self.root(), path).map_err(e(path))?;
                    s.push(len_1d(self, &d, path)?);
                    if i >= 4 {
                        let want = schema[i - 4].1;
                        let got = dtype_of_dataset(self, &d, path)?;
                        if got != want {
                            return Err(self.invalid(path, format!("existing values are {got}; cannot append {want}")));
                        }
                    }
                }
                if let Some(j) = (4..s.len()).find(|&j| s[j] != s[3]) {
                    return Err(self.invalid(
                        &all_paths[j],
                        format!("has {} values but {} has {} edges", s[j], struct_paths[3], s[3]),
                    ));
                }
                Ok(s)
            })()
        } else {
            Ok(Vec::new())
        };
        let sizes = agree(comm, sizes)?;
        let sizes = if comm.size() == 1 { sizes } else { comm.broadcast(0, &sizes) };
        let (dbi_old, dbp_old, dp_old, si_old) = (sizes[0], sizes[1], sizes[2], sizes[3]);

        // Block structure on rank 0 from every writer's (destination, edge count), in rank (= gid) order.
        let counts: Vec<u64> = (0..data.destinations.len()).map(|i| data.dst_ptr[i + 1] - data.dst_ptr[i]).collect();
        let pairs: Vec<[u64; 2]> = data.destinations.iter().zip(&counts).map(|(&g, &c)| [g, c]).collect();
        let gathered = comm.gatherv(0, &pairs);
        let (dbi, dbp, dp) = match gathered {
            Some((all, _)) => {
                let g: Vec<u64> = all.iter().map(|x| x[0]).collect();
                let c: Vec<u64> = all.iter().map(|x| x[1]).collect();
                let (dbi, mut dbp, mut dp) = blocks(&g, &c, dst.start, opts.block_size);
                let dp_base = dp_old.saturating_sub(1);
                for b in dbp.iter_mut() {
                    *b += dp_base;
                }
                dbp.push(dp_base + g.len() as u64 + 1);
                for x in dp.iter_mut() {
                    *x += si_old;
                }
                dp.push(si_old + c.iter().sum::<u64>());
                (dbi, dbp, dp)
            }
            None => (Vec::new(), Vec::new(), Vec::new()),
        };
        let n_blocks = comm.broadcast(0, &[dbi.len() as u64])[0];
        let n_dest = comm.broadcast(0, &[dp.len().saturating_sub(1) as u64])[0];

        let write = |path: &str, dtype: Dtype, start: u64, len: u64, bytes: &[u8]| {
            extend_and_write(self, path, dtype, start, len, bytes)
        };
        write(&struct_paths[0], Dtype::U32, dbi_old, dbi_old + n_blocks, bytemuck::cast_slice(&dbi))?;
        let dbp_base = dbp_old.saturating_sub(1);
        write(&struct_paths[1], Dtype::U64, dbp_base, dbp_base + n_blocks + 1, bytemuck::cast_slice(&dbp))?;
        let dp_base = dp_old.saturating_sub(1);
        write(&struct_paths[2], Dtype::U64, dp_base, dp_base + n_dest + 1, bytemuck::cast_slice(&dp))?;
        let (before, total) = exclusive_prefix(comm, &[n_edges]);
        write(
            &struct_paths[3],
            Dtype::U32,
            si_old + before[0],
            si_old + total[0],
            bytemuck::cast_slice(&data.source_index),
        )?;
        for (j, (key, d)) in schema.iter().enumerate() {
            let (ns, name) = key.split_once('/').expect("ns/name");
            let bytes = data.attribute(ns, name).map_or(&[][..], |v| v.as_bytes());
            write(&attr_paths[j], *d, sizes[4 + j] + before[0], sizes[4 + j] + total[0], bytes)?;
        }
        Ok(())
    }

    /// Read the edges whose destination `selection` gives this rank, with the edge attributes of
    /// `namespaces` (collective).
    pub fn read_projection(
        &self,
        source: &str,
        destination: &str,
        namespaces: &[&str],
        selection: &Selection,
    ) -> Result<Projection> {
        let comm = self.comm;
        let src = self.population(source)?;
        let dst = self.population(destination)?;
        let prj = projection_path(source, destination);
        let edges = format!("{prj}/{EDGES}");
        let paths: Vec<String> =
            [DST_BLK_IDX, DST_BLK_PTR, DST_PTR, SRC_IDX].iter().map(|n| format!("{edges}/{n}")).collect();

        // Rank 0: sizes, types, attribute datasets, block index and block pointer, for everyone in one message.
        let info = if comm.rank() == 0 {
            (|| -> Result<Vec<u8>> {
                if !h5::exists(self.root(), &prj) {
                    return Err(self.missing(&prj, format!("projection {source} -> {destination}")));
                }
                let want = [Dtype::U32, Dtype::U64, Dtype::U64, Dtype::U32];
                let mut sizes = Vec::new();
                for (p, w) in paths.iter().zip(want) {
                    if !h5::exists(self.root(), p) {
                        return Err(self.missing(p, format!("{} dataset of the destination block sparse layout", w)));
                    }
                    let d = h5::open_dataset(self.root(), p).map_err(self.err(p))?;
                    let got = dtype_of_dataset(self, &d, p)?;
                    if got.is_float() || got.size() > w.size() {
                        return Err(self.invalid(p, format!("expected {w}, found {got}")));
                    }
                    sizes.push(len_1d(self, &d, p)?);
                }
                let attrs = edge_attribute_info(self, &prj, namespaces)?;
                if let Some((ns, n, _, l)) = attrs.iter().find(|a| a.3 != sizes[3]) {
                    return Err(self.invalid(
                        &format!("{prj}/{ns}/{n}"),
                        format!("has {l} values but {} has {} edges", paths[3], sizes[3]),
                    ));
                }
                let dbi = read_whole(self, &paths[0], Dtype::U32)?.into_vec::<u32>().expect("u32");
                let dbp = read_whole(self, &paths[1], Dtype::U64)?.into_vec::<u64>().expect("u64");
                Ok(encode_info(&EdgesInfo { attrs, sizes, dbi, dbp }))
            })()
        } else {
            Ok(Vec::new())
        };
        let mut info = agree(comm, info)?;
        comm.broadcast_bytes(0, &mut info);
        let EdgesInfo { mut attrs, sizes, dbi, dbp } = decode_info(&info);
        // Attributes in (namespace, name) order whatever order the namespaces were asked in, as everywhere
        // else a projection holds them.
        attrs.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let (dp_len, si_len) = (sizes[2], sizes[3]);

        // Blocks: (first gid, slot range), checked against the population and the pointer length.
        let mut blks: Vec<(u64, Range<u64>)> = Vec::with_capacity(dbi.len());
        let mut check = Ok(());
        if dbp.len() != dbi.len() + 1 && !(dbi.is_empty() && dbp.len() <= 1) {
            check = Err(self.invalid(
                &paths[1],
                format!("has {} entries for {} blocks (expected {})", dbp.len(), dbi.len(), dbi.len() + 1),
            ));
        }
        for b in 0..dbi.len().min(dbp.len().saturating_sub(1)) {
            let s0 = dbp[b];
            let s1 = dbp[b + 1].min(dp_len.saturating_sub(1));
            if dbp[b + 1] < s0 || dbp[b + 1] > dp_len {
                check = Err(self.invalid(
                    &paths[1],
                    format!(
                        "entry {} = {} is outside 0..={dp_len} (length of {DST_PTR}) or decreasing",
                        b + 1,
                        dbp[b + 1]
                    ),
                ));
                break;
            }
            let n = s1.saturating_sub(s0);
            if dbi[b] as u64 + n > dst.count {
                check = Err(self.invalid(
                    &paths[0],
                    format!(
                        "block {b} (index {}, {n} destinations) runs past population {} ({} cells)",
                        dbi[b], dst.name, dst.count
                    ),
                ));
                break;
            }
            blks.push((dst.start + dbi[b] as u64, s0..s1.max(s0)));
        }
        agree(comm, check)?;

        let (targets, owners) = selection.row_plan(comm, dst.range());
        let covered = |lo: u64, hi: u64| -> Vec<Range<u64>> {
            let mut out = Vec::new();
            let mut i = targets.partition_point(|r| r.end <= lo);
            while i < targets.len() && targets[i].start < hi {
                let a = targets[i].start.max(lo);
                let b = targets[i].end.min(hi);
                if a < b {
                    out.push(a..b);
                }
                i += 1;
            }
            out
        };
        // Slot runs this rank reads: (first gid, slot range).
        let mut runs: Vec<(u64, Range<u64>)> = Vec::new();
        for (g0, slots) in &blks {
            for r in covered(*g0, *g0 + (slots.end - slots.start)) {
                runs.push((r.start, slots.start + (r.start - g0)..slots.start + (r.end - g0)));
            }
        }
        runs.sort_by_key(|r| r.1.start);
        let want: Vec<Range<u64>> = runs.iter().map(|r| r.1.start..r.1.end + 1).collect();
        let (merged, offs) = merge_ranges(&want);
        let dpv = read_union(self, &paths[2], Dtype::U64, &merged)?;
        let dpv = dpv.as_slice::<u64>().expect("u64");
        let mut edge_runs: Vec<Range<u64>> = Vec::with_capacity(runs.len());
        let mut check = Ok(());
        for (k, (_, slots)) in runs.iter().enumerate() {
            let o = offs[k] as usize;
            let n = (slots.end - slots.start) as usize;
            let ptr = &dpv[o..o + n + 1];
            if ptr.windows(2).any(|w| w[0] > w[1]) || ptr[n] > si_len {
                check = Err(self.invalid(
                    &paths[2],
                    format!(
                        "entries {}..={} are decreasing or point past the end of {SRC_IDX} ({si_len} edges)",
                        slots.start, slots.end
                    ),
                ));
                break;
            }
            edge_runs.push(ptr[0]..ptr[n]);
        }
        agree(comm, check)?;
        let mut eorder: Vec<usize> = (0..edge_runs.len()).collect();
        eorder.sort_by_key(|&k| edge_runs[k].start);
        let sorted: Vec<Range<u64>> = eorder.iter().map(|&k| edge_runs[k].clone()).collect();
        let (emerged, eoffs) = merge_ranges(&sorted);
        let mut at = vec![0u64; edge_runs.len()];
        for (j, &k) in eorder.iter().enumerate() {
            at[k] = eoffs[j];
        }
        let si = read_union(self, &paths[3], Dtype::U32, &emerged)?.into_vec::<u32>().expect("u32");
        let bad = si.iter().find(|&&s| s as u64 >= src.count);
        let check = bad.map_or(Ok(()), |b| {
            Err(self.invalid(
                &paths[3],
                format!("source index {b} is outside population {} ({} cells)", src.name, src.count),
            ))
        });
        agree(comm, check)?;
        let mut avals = Vec::new();
        for (ns, name, d, _) in &attrs {
            avals.push(EdgeAttribute {
                namespace: ns.clone(),
                name: name.clone(),
                values: read_union(self, &format!("{prj}/{ns}/{name}"), *d, &emerged)?,
            });
        }
        let mut p = Projection::new(&src, &dst);
        // Runs whose gids ascend in file order (one append, or appends in gid order) were read straight into
        // the final arrays; otherwise gather each destination's edges and sort.
        let in_order = eorder.iter().enumerate().all(|(j, &k)| j == k)
            && runs.windows(2).all(|w| w[0].0 + (w[0].1.end - w[0].1.start) <= w[1].0);
        if !in_order {
            for v in &avals {
                p.attributes.push(EdgeAttribute {
                    namespace: v.namespace.clone(),
                    name: v.name.clone(),
                    values: Values::empty(v.values.dtype()),
                });
            }
        }
        for (k, (g0, slots)) in runs.iter().enumerate() {
            let o = offs[k] as usize;
            let base = edge_runs[k].start;
            for j in 0..(slots.end - slots.start) as usize {
                let (a, b) = (dpv[o + j], dpv[o + j + 1]);
                p.destinations.push(g0 + j as u64);
                if in_order {
                    p.dst_ptr.push(at[k] + (b - base));
                } else {
                    let from = (at[k] + (a - base)) as usize;
                    let to = from + (b - a) as usize;
                    p.source_index.extend_from_slice(&si[from..to]);
                    p.dst_ptr.push(p.source_index.len() as u64);
                    for (e, v) in p.attributes.iter_mut().zip(&avals) {
                        e.values.extend_from(&v.values, from..to);
                    }
                }
            }
        }
        if in_order {
            p.source_index = si;
            p.attributes = avals;
        } else {
            p.sorted = false;
            p.normalize(false);
        }
        Ok(match owners {
            None => p,
            Some(a) => {
                let schema = p.schema();
                let mut q = p.scatter(comm, &schema, |g| a.rank_of(g).unwrap_or(0));
                q.normalize(false);
                q
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_splitting_follows_neuroh5() {
        // DOMAIN A.7: destinations 3 and 4 (B starts at 3) with 2 and 1 edges: one block.
        let (dbi, dbp, dp) = blocks(&[3, 4], &[2, 1], 3, 1_000_000);
        assert_eq!((dbi, dbp, dp), (vec![0], vec![0], vec![0, 2]));
        // Gap: gids 3 and 5 -> two blocks.
        let (dbi, dbp, _) = blocks(&[3, 5], &[2, 1], 3, 1_000_000);
        assert_eq!((dbi, dbp), (vec![0, 2], vec![0, 1]));
        // block_size: a new block once the edges so far exceed it (strictly).
        let (dbi, dbp, _) = blocks(&[0, 1, 2, 3], &[2, 2, 2, 2], 0, 3);
        assert_eq!((dbi, dbp), (vec![0, 2], vec![0, 2]));
    }

    fn pops() -> (Population, Population) {
        (
            Population { name: "A".into(), index: 0, start: 0, count: 3 },
            Population { name: "B".into(), index: 1, start: 3, count: 2 },
        )
    }

    #[test]
    fn normalize_sorts_sources_and_permutes_attributes() {
        let (a, b) = pops();
        let mut p = Projection::new(&a, &b);
        p.push(4, &[1]).unwrap();
        p.attr_mut::<u32>("Synapses", "syn_id").unwrap().push(1);
        p.attr_mut::<f32>("Connections", "distance").unwrap().push(20.0);
        p.push(3, &[2, 0]).unwrap();
        p.attr_mut::<u32>("Synapses", "syn_id").unwrap().extend([1, 0]);
        p.attr_mut::<f32>("Connections", "distance").unwrap().extend([40.0, 55.0]);
        p.check_lengths().unwrap();
        p.normalize(true);
        // DOMAIN A.7 expected: SI=[0,2,1], syn_id=[0,1,1], distance=[55,40,20].
        assert_eq!(p.destinations(), &[3, 4]);
        assert_eq!(p.dst_ptr(), &[0, 2, 3]);
        assert_eq!(p.source_index(), &[0, 2, 1]);
        assert_eq!(p.attr::<u32>("Synapses", "syn_id").unwrap(), &[0, 1, 1]);
        assert_eq!(p.attr::<f32>("Connections", "distance").unwrap(), &[55.0, 40.0, 20.0]);
        assert_eq!(p.sources_of(3).unwrap(), vec![0, 2]);
        assert!(p.push(5, &[0]).is_err());
        assert!(p.push(3, &[3]).is_err());
    }

    #[test]
    fn scatter_on_one_rank_keeps_every_edge() {
        let (a, b) = pops();
        let mut p = Projection::new(&a, &b);
        p.push(3, &[0, 1]).unwrap();
        p.push(4, &[2]).unwrap();
        p.attr_mut::<i8>("N", "k").unwrap().extend([-1, 2, 3]);
        let schema = p.schema();
        let mut q = p.clone().scatter(&miv_partition::SerialComm, &schema, |_| 0);
        q.normalize(false);
        assert_eq!(q, p);
        // A rank without edges may lack the attributes; it receives them empty.
        let none = Projection::new(&a, &b).scatter(&miv_partition::SerialComm, &schema, |_| 0);
        assert_eq!(none.attribute("N", "k"), Some(&Values::I8(vec![])));
    }
}
