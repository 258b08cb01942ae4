//! The collective dataset layer under the NeuroH5 layouts: 1-D datasets read whole on one rank, broadcast,
//! or as a union of ranges by every rank (batched, collective or independent transfers); resized and written
//! at per-rank offsets; the writer rank of each gid block; the attribute schema agreed over ranks. Cell
//! attributes ([`crate::cells`]) and projections ([`crate::graph`]) are both built on it; it knows neither.

use std::collections::BTreeMap;
use std::ops::Range;

use miv_partition::{Communicator, ReadPlan};

use crate::dtype::{Dtype, Element, Values};
use crate::error::{IoError, Result};
use crate::file::{agree, NeuroH5File};
use crate::h5;

pub(crate) fn dtype_of_dataset(f: &NeuroH5File, d: &hdf5::Dataset, path: &str) -> Result<Dtype> {
    let t = h5::dataset_type(d).map_err(f.err(path))?;
    h5::dtype_of(&t).ok_or_else(|| f.invalid(path, "expected a numeric (integer or float) datatype"))
}

pub(crate) fn len_1d(f: &NeuroH5File, d: &hdf5::Dataset, path: &str) -> Result<u64> {
    let dims = h5::dataset_dims(d).map_err(f.err(path))?;
    if dims.len() != 1 {
        return Err(f.invalid(path, format!("expected a 1-D dataset, found {} dimensions", dims.len())));
    }
    Ok(dims[0])
}

/// Read a whole 1-D dataset on this rank alone, as `dtype`.
pub(crate) fn read_whole(f: &NeuroH5File, path: &str, dtype: Dtype) -> Result<Values> {
    let d = h5::open_dataset(f.root(), path).map_err(f.err(path))?;
    let n = len_1d(f, &d, path)?;
    let mut v = Values::zeros(dtype, n as usize);
    if n > 0 {
        let t = h5::datatype(dtype).map_err(f.err(path))?;
        h5::read_all_raw(&d, &t, v.as_bytes_mut()).map_err(f.err(path))?;
    }
    Ok(v)
}

/// Rank 0 reads a whole (small) dataset and broadcasts it.
pub(crate) fn read_broadcast<T: Element>(f: &NeuroH5File, path: &str) -> Result<Vec<T>> {
    let local = if f.comm.rank() == 0 { read_whole(f, path, T::DTYPE) } else { Ok(Values::empty(T::DTYPE)) };
    let local = agree(f.comm, local)?;
    let v: Vec<T> = local.as_slice::<T>().expect("dtype").to_vec();
    if f.comm.size() == 1 {
        return Ok(v);
    }
    Ok(f.comm.broadcast(0, &v))
}

/// At most this many ranges go into one HDF5 selection: HDF5 1.10 builds an OR-ed hyperslab selection in
/// time quadratic in the number of pieces (4096 pieces take 0.14 s, 256 take 0.3 ms).
const RANGES_PER_READ: usize = 256;

/// Collective read of the union of sorted, disjoint `ranges` of a 1-D dataset, as `dtype`. Many ranges are
/// read in batches. With collective transfers every rank makes the same number of HDF5 calls; with
/// independent ones (the default) each rank reads on its own and the ranks meet once, to agree on errors.
pub(crate) fn read_union(f: &NeuroH5File, path: &str, dtype: Dtype, ranges: &[Range<u64>]) -> Result<Values> {
    let d = if ranges.len() > 1 { h5::open_dataset_cached(f.root(), path) } else { h5::open_dataset(f.root(), path) }
        .map_err(f.err(path));
    let collective = h5::collective_read_transfers(f.access);
    let d = if collective {
        agree(f.comm, d)?
    } else {
        match d {
            Ok(d) => d,
            Err(e) => return agree(f.comm, Err(e)),
        }
    };
    let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
    let mut v = Values::zeros(dtype, total as usize);
    huge_pages(v.as_bytes_mut());
    let batches = ranges.len().div_ceil(RANGES_PER_READ);
    let calls = if collective { f.comm.allreduce_max(batches as f64) as usize } else { batches };
    let size = dtype.size();
    let mtype = match h5::datatype(dtype).map_err(f.err(path)) {
        Ok(t) => t,
        Err(e) => return agree(f.comm, Err(e)),
    };
    let bytes = v.as_bytes_mut();
    let mut at = 0usize;
    let mut r = Ok(());
    for b in 0..calls.max(1) {
        // After a failure this rank keeps making (empty) calls, so every rank makes as many.
        let part = if r.is_err() {
            &[]
        } else {
            ranges.get(b * RANGES_PER_READ..((b + 1) * RANGES_PER_READ).min(ranges.len())).unwrap_or(&[])
        };
        let n = part.iter().map(|x| (x.end - x.start) as usize).sum::<usize>() * size;
        let rb = h5::read_ranges_raw(&d, &mtype, part, &mut bytes[at..at + n], f.access).map_err(f.err(path));
        if r.is_ok() {
            r = rb;
        }
        at += n;
    }
    agree(f.comm, r)?;
    Ok(v)
}

/// Back a large, not yet touched buffer with transparent huge pages (see `miv_partition::buffer`).
pub(crate) fn huge_pages(buf: &mut [u8]) {
    miv_partition::buffer::advise_huge(buf.as_mut_ptr(), buf.len());
}

/// Coalesce sorted ranges that touch or overlap; returns the merged ranges and, for each input range, its
/// offset into the concatenation of the merged ranges.
pub(crate) fn merge_ranges(sorted: &[Range<u64>]) -> (Vec<Range<u64>>, Vec<u64>) {
    let mut merged: Vec<Range<u64>> = Vec::new();
    let mut offsets = Vec::with_capacity(sorted.len());
    let mut base = 0u64; // buffer offset of the current merged range
    for r in sorted {
        match merged.last_mut() {
            Some(m) if r.start <= m.end => {
                offsets.push(base + (r.start - m.start));
                m.end = m.end.max(r.end);
            }
            _ => {
                if let Some(m) = merged.last() {
                    base += m.end - m.start;
                }
                offsets.push(base);
                merged.push(r.clone());
            }
        }
    }
    (merged, offsets)
}

/// The attribute names and types of all ranks' data, agreed: a name with two types anywhere is an error.
pub(crate) fn agree_schema(
    comm: &dyn Communicator,
    local: &[(String, Dtype)],
    context: &str,
) -> Result<Vec<(String, Dtype)>> {
    let mine: String = local.iter().map(|(n, d)| format!("{n}\t{}\n", d.name())).collect();
    let all = comm.allgather_strings(&mine);
    let mut schema: BTreeMap<String, Dtype> = BTreeMap::new();
    for (rank, s) in all.iter().enumerate() {
        for line in s.lines() {
            let (n, d) = line.rsplit_once('\t').expect("schema line");
            let d = Dtype::from_name(d).expect("dtype name");
            if let Some(prev) = schema.insert(n.to_string(), d) {
                if prev != d {
                    return Err(IoError::bad_input(
                        context,
                        format!("attribute {n:?} is {prev} on one rank and {d} on rank {rank}"),
                    ));
                }
            }
        }
    }
    Ok(schema.into_iter().collect())
}

/// The writer rank of each gid: contiguous blocks of the population over `io_size` writers.
pub(crate) fn writer_ranges(comm: &dyn Communicator, range: Range<u64>, io_size: usize) -> Vec<(usize, Range<u64>)> {
    let io = if io_size == 0 { comm.size() } else { io_size };
    let plan = ReadPlan::io_ranks(range, comm.size(), io);
    let mut out = Vec::new();
    for r in 0..comm.size() {
        for g in plan.ranges_of(r) {
            out.push((r, g.clone()));
        }
    }
    out
}

pub(crate) fn writer_of(blocks: &[(usize, Range<u64>)], gid: u64) -> usize {
    let i = blocks.partition_point(|(_, r)| r.end <= gid);
    blocks.get(i).map_or(0, |b| b.0)
}

/// Resize a 1-D dataset to `len` and write this rank's `bytes` (elements of `dtype`) at `start`
/// (collective; a rank may write nothing).
pub(crate) fn extend_and_write(
    f: &NeuroH5File,
    path: &str,
    dtype: Dtype,
    start: u64,
    len: u64,
    bytes: &[u8],
) -> Result<()> {
    let d = h5::open_dataset(f.root(), path).map_err(f.err(path));
    let d = agree(f.comm, d)?;
    let r = h5::set_extent(&d, len).map_err(f.err(path));
    agree(f.comm, r)?;
    let r = h5::datatype(dtype).and_then(|t| h5::write_at_raw(&d, &t, start, bytes, f.access)).map_err(f.err(path));
    agree(f.comm, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_ranges_offsets() {
        let (m, o) = merge_ranges(&[0..2, 1..3, 5..6, 6..8, 10..10, 12..13]);
        assert_eq!(m, vec![0..3, 5..8, 10..10, 12..13]);
        assert_eq!(o, vec![0, 1, 3, 4, 6, 6]);
    }
}
