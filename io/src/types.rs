//! `/H5Types`: the population table (names, enum indices, gid ranges) and the valid projections, written
//! exactly as MiV's `create_neural_h5` writes them with h5py (DOMAIN A.2):
//!
//! - `Population labels`: committed enum, base uint16, name -> index;
//! - `Population range`: committed compound {`Start` u64 @0, `Count` u32 @8, `Population` enum @12}, 14 bytes;
//! - `Populations`: dataset of that compound (as an anonymous copy, as h5py does), one row per population in
//!   enum-index order, `Start` the running sum of counts;
//! - `Population projections`: committed compound {`Source` enum @0, `Destination` enum @2};
//! - `Valid population projections`: dataset of the committed type, one (pre, post) row per projection.
//!
//! Readers go by field name and take the enum members from the file, so a C++-written table (padded 16-byte
//! rows) reads the same.

use std::ops::Range;

use serde::Serialize;

use crate::dtype::Dtype;
use crate::error::{IoError, Result};
use crate::file::{agree, NeuroH5File};
use crate::h5;

pub const H5TYPES: &str = "/H5Types";
pub const POPULATION_LABELS: &str = "Population labels";
pub const POPULATION_RANGE: &str = "Population range";
pub const POPULATIONS_DATASET: &str = "Populations";
pub const POPULATION_PROJECTIONS: &str = "Population projections";
pub const VALID_PROJECTIONS: &str = "Valid population projections";

/// One population: its name, enum index and gid range `start .. start + count`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Population {
    pub name: String,
    pub index: u16,
    pub start: u64,
    pub count: u64,
}

impl Population {
    pub fn range(&self) -> Range<u64> {
        self.start..self.start + self.count
    }

    pub fn contains(&self, gid: u64) -> bool {
        self.range().contains(&gid)
    }
}

/// All populations of a network, in enum-index order (which is also gid order).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct PopulationRanges {
    populations: Vec<Population>,
}

impl PopulationRanges {
    /// Populations from (name, enum index, cell count) definitions: sorted by index, `start` the running sum
    /// of the counts in that order (DOMAIN A.2 gid encoding).
    pub fn from_counts(defs: &[(&str, u16, u64)]) -> Result<PopulationRanges> {
        let mut d: Vec<(&str, u16, u64)> = defs.to_vec();
        d.sort_by_key(|x| x.1);
        for w in d.windows(2) {
            if w[0].1 == w[1].1 {
                return Err(IoError::bad_input(
                    "population definitions",
                    format!("{} and {} share enum index {}", w[0].0, w[1].0, w[0].1),
                ));
            }
        }
        let mut names: Vec<&str> = d.iter().map(|x| x.0).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(IoError::bad_input("population definitions", format!("population {} defined twice", w[0])));
        }
        let mut start = 0;
        let populations = d
            .into_iter()
            .map(|(name, index, count)| {
                let p = Population { name: name.to_string(), index, start, count };
                start += count;
                p
            })
            .collect();
        Ok(PopulationRanges { populations })
    }

    /// From explicit rows (as read from a file), sorted by start.
    pub fn from_populations(mut populations: Vec<Population>) -> PopulationRanges {
        populations.sort_by_key(|p| (p.start, p.index));
        PopulationRanges { populations }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Population> {
        self.populations.iter()
    }

    pub fn len(&self) -> usize {
        self.populations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.populations.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&Population> {
        self.populations.iter().find(|p| p.name == name)
    }

    fn by_index(&self, index: u16) -> Option<&Population> {
        self.populations.iter().find(|p| p.index == index)
    }

    /// The population a gid belongs to.
    pub fn of_gid(&self, gid: u64) -> Option<&Population> {
        self.populations.iter().find(|p| p.contains(gid))
    }

    /// Total number of cells.
    pub fn total(&self) -> u64 {
        self.populations.iter().map(|p| p.count).sum()
    }

    /// Names in enum-index order.
    pub fn names(&self) -> Vec<String> {
        self.populations.iter().map(|p| p.name.clone()).collect()
    }
}

/// The content of `/H5Types`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct H5Types {
    pub populations: PopulationRanges,
    /// Valid (source, destination) population pairs.
    pub projections: Vec<(String, String)>,
}

const RANGE_ROW: usize = 14;

/// Write `/H5Types` (collective; rank 0 writes the rows).
pub(crate) fn write_h5types(f: &NeuroH5File, t: &H5Types) -> Result<()> {
    f.require_writable()?;
    let local = validate(t);
    agree(f.comm, local)?;
    if f.exists(H5TYPES) {
        return Err(f.invalid(H5TYPES, "already exists; H5Types is written once"));
    }
    let e = |p: &str| f.err(p);
    let g = h5::create_group(f.root(), H5TYPES).map_err(e(H5TYPES))?;
    let members: Vec<(String, i64)> = t.populations.iter().map(|p| (p.name.clone(), p.index as i64)).collect();
    let committed = h5::enum_type(Dtype::U16, &members).map_err(e(H5TYPES))?;
    h5::commit_type(&g, POPULATION_LABELS, &committed).map_err(e(&format!("{H5TYPES}/{POPULATION_LABELS}")))?;
    // Compound members get a transient copy of the enum, as h5py builds them from numpy dtypes: a committed
    // member would tie every later use of the compound to the named type.
    let labels = h5::enum_type(Dtype::U16, &members).map_err(e(H5TYPES))?;

    let (u64t, u32t) = (h5::datatype(Dtype::U64).map_err(e(H5TYPES))?, h5::datatype(Dtype::U32).map_err(e(H5TYPES))?);
    let range_fields = [("Start", 0, &u64t), ("Count", 8, &u32t), ("Population", 12, &labels)];
    let range_t = h5::compound_type(RANGE_ROW, &range_fields).map_err(e(H5TYPES))?;
    h5::commit_type(&g, POPULATION_RANGE, &range_t).map_err(e(&format!("{H5TYPES}/{POPULATION_RANGE}")))?;
    // The dataset gets an anonymous copy of the compound, as h5py does when given a numpy dtype.
    let row_t = h5::compound_type(RANGE_ROW, &range_fields).map_err(e(H5TYPES))?;
    let mut rows = Vec::with_capacity(t.populations.len() * RANGE_ROW);
    for p in t.populations.iter() {
        rows.extend_from_slice(&p.start.to_le_bytes());
        rows.extend_from_slice(&(p.count as u32).to_le_bytes());
        rows.extend_from_slice(&p.index.to_le_bytes());
    }
    let n = t.populations.len() as u64;
    write_rows(f, &g, POPULATIONS_DATASET, &row_t, n, &rows)?;

    let prj_t = h5::compound_type(4, &[("Source", 0, &labels), ("Destination", 2, &labels)]).map_err(e(H5TYPES))?;
    h5::commit_type(&g, POPULATION_PROJECTIONS, &prj_t).map_err(e(&format!("{H5TYPES}/{POPULATION_PROJECTIONS}")))?;
    let prj_t = h5::open_type(&g, POPULATION_PROJECTIONS).map_err(e(H5TYPES))?;
    let mut rows = Vec::with_capacity(t.projections.len() * 4);
    for (src, dst) in &t.projections {
        let s = t.populations.get(src).expect("validated").index;
        let d = t.populations.get(dst).expect("validated").index;
        rows.extend_from_slice(&s.to_le_bytes());
        rows.extend_from_slice(&d.to_le_bytes());
    }
    write_rows(f, &g, VALID_PROJECTIONS, &prj_t, t.projections.len() as u64, &rows)?;
    f.forget_ranges();
    Ok(())
}

/// A chunked dataset with maxshape (n,) (as h5py's create-then-resize makes it), rows written by rank 0.
fn write_rows(f: &NeuroH5File, g: &hdf5::Group, name: &str, t: &hdf5::Datatype, n: u64, rows: &[u8]) -> Result<()> {
    let path = format!("{H5TYPES}/{name}");
    let rows = (f.comm.rank() == 0).then_some(rows);
    let d = h5::create_dataset_with(g, name, t, n, rows, Some(n.max(1))).map_err(f.err(&path));
    agree(f.comm, d).map(|_| ())
}

fn validate(t: &H5Types) -> Result<()> {
    for p in t.populations.iter() {
        if p.count > u32::MAX as u64 {
            return Err(IoError::bad_input(
                "H5Types",
                format!("population {} has {} cells; Count is uint32", p.name, p.count),
            ));
        }
    }
    for (s, d) in &t.projections {
        for name in [s, d] {
            if t.populations.get(name).is_none() {
                return Err(IoError::bad_input(
                    "H5Types",
                    format!("projection {s} -> {d} names unknown population {name}"),
                ));
            }
        }
    }
    Ok(())
}

/// Read an integer column of every named compound field (fields given by name; enums read as their integers).
fn read_compound_ints(f: &NeuroH5File, path: &str, fields: &[&str]) -> Result<Vec<Vec<i64>>> {
    let e = f.err(path);
    let d = h5::open_dataset(f.root(), path).map_err(&e)?;
    let ft = h5::dataset_type(&d).map_err(&e)?;
    let dims = h5::dataset_dims(&d).map_err(&e)?;
    if dims.len() != 1 {
        return Err(f.invalid(path, format!("expected a 1-D dataset, found {} dimensions", dims.len())));
    }
    let n = dims[0] as usize;
    let mut members = Vec::new();
    for name in fields {
        let m = h5::compound_member(&ft, name)
            .map_err(&e)?
            .ok_or_else(|| f.invalid(path, format!("expected a compound type with field {name:?}")))?;
        let dt = h5::dtype_of(&m)
            .filter(|d| !d.is_float())
            .ok_or_else(|| f.invalid(path, format!("field {name:?} is not an integer or enum")))?;
        members.push((dt, m));
    }
    // Each field in an 8-byte slot of the member's own type (an enum converts by member name).
    let spec: Vec<(&str, usize, &hdf5::Datatype)> =
        fields.iter().zip(&members).enumerate().map(|(i, (n, (_, t)))| (*n, i * 8, t)).collect();
    let mt = h5::compound_type(8 * fields.len(), &spec).map_err(&e)?;
    let mut buf = vec![0u8; n * 8 * fields.len()];
    h5::read_all_raw(&d, &mt, &mut buf).map_err(&e)?;
    let mut cols = vec![Vec::with_capacity(n); fields.len()];
    for row in buf.chunks(8 * fields.len().max(1)) {
        for (j, (dt, _)) in members.iter().enumerate() {
            let b = &row[j * 8..j * 8 + 8];
            let v = match dt {
                Dtype::U8 => b[0] as i64,
                Dtype::I8 => b[0] as i8 as i64,
                Dtype::U16 => u16::from_le_bytes([b[0], b[1]]) as i64,
                Dtype::I16 => i16::from_le_bytes([b[0], b[1]]) as i64,
                Dtype::U32 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
                Dtype::I32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
                _ => i64::from_le_bytes(b.try_into().expect("8 bytes")),
            };
            cols[j].push(v);
        }
    }
    Ok(cols)
}

fn labels(f: &NeuroH5File) -> Result<Vec<(String, i64)>> {
    let path = format!("{H5TYPES}/{POPULATION_LABELS}");
    if !h5::exists(f.root(), &path) {
        return Err(f.missing(&path, "committed enum datatype of population names"));
    }
    let g = h5::open_group(f.root(), H5TYPES).map_err(f.err(H5TYPES))?;
    let t = h5::open_type(&g, POPULATION_LABELS).map_err(f.err(&path))?;
    h5::enum_members(&t).map_err(f.err(&path))
}

fn local_ranges(f: &NeuroH5File) -> Result<PopulationRanges> {
    let labels = labels(f)?;
    let path = format!("{H5TYPES}/{POPULATIONS_DATASET}");
    if !h5::exists(f.root(), &path) {
        return Err(f.missing(&path, "dataset of Population range rows"));
    }
    let cols = read_compound_ints(f, &path, &["Start", "Count", "Population"])?;
    let mut pops = Vec::new();
    for i in 0..cols[0].len() {
        let idx = cols[2][i];
        let name = labels.iter().find(|(_, v)| *v == idx).map(|(n, _)| n.clone()).ok_or_else(|| {
            f.invalid(&path, format!("row {i}: population index {idx} is not a member of {POPULATION_LABELS}"))
        })?;
        if cols[0][i] < 0 || cols[1][i] < 0 {
            return Err(f.invalid(&path, format!("row {i}: negative Start or Count")));
        }
        pops.push(Population { name, index: idx as u16, start: cols[0][i] as u64, count: cols[1][i] as u64 });
    }
    let r = PopulationRanges::from_populations(pops);
    for w in r.populations.windows(2) {
        if w[0].start + w[0].count > w[1].start {
            return Err(f.invalid(&path, format!("gid ranges of {} and {} overlap", w[0].name, w[1].name)));
        }
    }
    Ok(r)
}

/// Rank 0 reads the population table and broadcasts it, so every rank sees the same one.
pub(crate) fn read_population_ranges(f: &NeuroH5File) -> Result<PopulationRanges> {
    let local = if f.comm.rank() == 0 { local_ranges(f) } else { Ok(PopulationRanges::default()) };
    let local = agree(f.comm, local)?;
    if f.comm.size() == 1 {
        return Ok(local);
    }
    let mut w = crate::wire::Writer::default();
    for p in local.iter() {
        w.str(&p.name);
        w.u64s(&[p.index as u64, p.start, p.count]);
    }
    let mut buf = w.buf;
    f.comm.broadcast_bytes(0, &mut buf);
    let mut r = crate::wire::Reader::new(&buf);
    let mut pops = Vec::new();
    while !r.done() {
        let name = r.str();
        let v = r.u64s();
        pops.push(Population { name, index: v[0] as u16, start: v[1], count: v[2] });
    }
    Ok(PopulationRanges::from_populations(pops))
}

/// The valid projections of `/H5Types` as (source, destination) names.
pub(crate) fn read_valid_projections(f: &NeuroH5File) -> Result<Vec<(String, String)>> {
    let path = format!("{H5TYPES}/{VALID_PROJECTIONS}");
    let ranges = f.population_ranges()?;
    if !h5::exists(f.root(), &path) {
        return Ok(Vec::new());
    }
    let cols = read_compound_ints(f, &path, &["Source", "Destination"])?;
    let name = |i: usize, v: i64| -> Result<String> {
        ranges
            .by_index(v as u16)
            .map(|p| p.name.clone())
            .ok_or_else(|| f.invalid(&path, format!("row {i}: unknown population index {v}")))
    };
    (0..cols[0].len()).map(|i| Ok((name(i, cols[0][i])?, name(i, cols[1][i])?))).collect()
}

impl NeuroH5File<'_> {
    /// Write `/H5Types` (collective). The file must not have one yet.
    pub fn write_h5types(&self, types: &H5Types) -> Result<()> {
        write_h5types(self, types)
    }

    /// Read `/H5Types` (collective).
    pub fn read_h5types(&self) -> Result<H5Types> {
        let populations = self.population_ranges()?;
        let projections = read_valid_projections(self)?;
        Ok(H5Types { populations, projections })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gid_ranges_follow_enum_order() {
        // DOMAIN A.2: rc-separation enum STIM=0, PYR=100, PVBC=101, OLM=102 with counts 64/223/93/21.
        let r =
            PopulationRanges::from_counts(&[("PYR", 100, 223), ("OLM", 102, 21), ("STIM", 0, 64), ("PVBC", 101, 93)])
                .unwrap();
        let got: Vec<(String, u64, u64)> =
            r.iter().map(|p| (p.name.clone(), p.range().start, p.range().end - 1)).collect();
        assert_eq!(
            got,
            vec![("STIM".into(), 0, 63), ("PYR".into(), 64, 286), ("PVBC".into(), 287, 379), ("OLM".into(), 380, 400)]
        );
        assert_eq!(r.total(), 401);
        assert_eq!(r.of_gid(287).unwrap().name, "PVBC");
        assert!(PopulationRanges::from_counts(&[("A", 1, 2), ("B", 1, 3)]).is_err());
    }
}
