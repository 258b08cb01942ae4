//! Simulation output in the layout MiV's `spikeout`/`lfpout` write and its analysis side (`spikedata.py`
//! `read_spike_events`, `plotting.py` `plot_lfp`) reads (DOMAIN A.5, C.7):
//!
//! - per population, a cell attribute namespace `Spike Events[ <id>]` with, for each cell that spiked,
//!   `t` (float32 spike times), `Trial Index` (uint8, one per spike), `Trial Duration` (float32, one per
//!   trial) and `artificial` (uint8, one value);
//! - per electrode, a top-level group `Local Field Potential <label>[ <id>]` with float32 datasets `t`, `v`;
//! - `/H5Types` copied from the network, so NeuroH5 readers find the populations.
//!
//! [`write_results`] writes a whole results file from one process (the root gathers spikes and LFP first),
//! under `<name>.partial`, renamed when complete.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use miv_partition::SerialComm;

use crate::cells::CellAttributes;
use crate::dtype::Dtype;
use crate::error::{IoError, Result};
use crate::file::{agree, NeuroH5File, WriteOptions};
use crate::h5;
use crate::names::*;
use crate::types::H5Types;

/// The spike trains of a run, by gid.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpikeOutput {
    /// `Spike Events` or `Spike Events <id>`.
    pub namespace: String,
    /// Duration of each trial (ms), written per cell as `Trial Duration`.
    pub trial_durations: Vec<f32>,
    trains: BTreeMap<u64, Train>,
}

#[derive(Debug, Clone, PartialEq, Default)]
struct Train {
    t: Vec<f32>,
    trial: Vec<u8>,
    artificial: bool,
}

impl SpikeOutput {
    /// Output for namespace `Spike Events` (or `Spike Events <id>` with an id).
    pub fn new(results_id: Option<&str>, trial_durations: Vec<f32>) -> SpikeOutput {
        let namespace = match results_id {
            Some(id) => format!("{SPIKE_EVENTS} {id}"),
            None => SPIKE_EVENTS.to_string(),
        };
        SpikeOutput { namespace, trial_durations, trains: BTreeMap::new() }
    }

    /// Add one spike of `gid` at `t` (ms, relative to its trial's start) in trial `trial`.
    pub fn add(&mut self, gid: u64, t: f32, trial: u8) {
        let tr = self.trains.entry(gid).or_default();
        tr.t.push(t);
        tr.trial.push(trial);
    }

    /// Mark `gid` as an artificial (stimulus) cell.
    pub fn set_artificial(&mut self, gid: u64, artificial: bool) {
        self.trains.entry(gid).or_default().artificial = artificial;
    }

    pub fn gids(&self) -> impl Iterator<Item = u64> + '_ {
        self.trains.keys().copied()
    }

    pub fn times(&self, gid: u64) -> Option<&[f32]> {
        self.trains.get(&gid).map(|t| t.t.as_slice())
    }

    /// The cell attributes of one population's gid range.
    fn cells(&self, range: std::ops::Range<u64>) -> Result<CellAttributes> {
        let mut c = CellAttributes::new();
        for (name, d) in
            [(SPIKE_TIMES, Dtype::F32), (TRIAL_INDEX, Dtype::U8), (TRIAL_DURATION, Dtype::F32), (ARTIFICIAL, Dtype::U8)]
        {
            c.declare(name, d)?;
        }
        for (&gid, tr) in self.trains.range(range) {
            c.push(SPIKE_TIMES, gid, &tr.t)?;
            c.push(TRIAL_INDEX, gid, &tr.trial)?;
            c.push(TRIAL_DURATION, gid, &self.trial_durations)?;
            c.push(ARTIFICIAL, gid, &[tr.artificial as u8])?;
        }
        Ok(c)
    }
}

impl NeuroH5File<'_> {
    /// Append spike trains, one `Spike Events` namespace per population that has a spiking cell
    /// (collective; gids may be spread over the ranks).
    pub fn append_spikes(&self, spikes: &SpikeOutput, opts: &WriteOptions) -> Result<()> {
        let ranges = self.population_ranges()?;
        let outside = spikes.gids().find(|&g| ranges.of_gid(g).is_none());
        agree(
            self.comm,
            outside.map_or(Ok(()), |g| {
                Err(IoError::bad_input("spike output", format!("gid {g} belongs to no population")))
            }),
        )?;
        for p in ranges.iter() {
            let mine = spikes.trains.range(p.range()).next().is_some() as u64;
            if self.comm.allgather(mine).iter().all(|&m| m == 0) {
                continue;
            }
            self.append_cell_attributes(&p.name, &spikes.namespace, &spikes.cells(p.range())?, opts)?;
        }
        Ok(())
    }

    /// Write `Local Field Potential <label>[ <id>]` with float32 `t` and `v` (collective; rank 0's data is
    /// written).
    pub fn write_lfp(&self, label: &str, results_id: Option<&str>, t: &[f32], v: &[f32]) -> Result<()> {
        self.require_writable()?;
        let name = match results_id {
            Some(id) => format!("{LOCAL_FIELD_POTENTIAL} {label} {id}"),
            None => format!("{LOCAL_FIELD_POTENTIAL} {label}"),
        };
        let path = format!("/{name}");
        let local = if t.len() != v.len() {
            Err(IoError::bad_input(&path, format!("{} times but {} values", t.len(), v.len())))
        } else if self.comm.rank() == 0 && h5::exists(self.root(), &path) {
            Err(self.invalid(&path, "already exists"))
        } else {
            Ok(())
        };
        agree(self.comm, local)?;
        let n = self.comm.broadcast(0, &[t.len() as u64])[0];
        let r = (|| -> Result<()> {
            let g = h5::create_group(self.root(), &path).map_err(self.err(&path))?;
            for (ds, data) in [("t", t), ("v", v)] {
                let rows = (self.comm.rank() == 0).then(|| bytemuck::cast_slice::<f32, u8>(data));
                h5::datatype(Dtype::F32)
                    .and_then(|f32t| h5::create_dataset_with(&g, ds, &f32t, n, rows, None))
                    .map_err(self.err(&format!("{path}/{ds}")))?;
            }
            Ok(())
        })();
        agree(self.comm, r)
    }
}

/// One LFP electrode's trace.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LfpTrace {
    pub label: String,
    pub t: Vec<f32>,
    pub v: Vec<f32>,
}

/// Write a complete results file from this process alone: `/H5Types`, the spikes and the LFP traces.
/// The file appears under `path` only once everything is written.
pub fn write_results(
    path: &Path,
    types: &H5Types,
    spikes: &SpikeOutput,
    lfps: &[LfpTrace],
    results_id: Option<&str>,
) -> Result<PathBuf> {
    let comm = SerialComm;
    let f = NeuroH5File::create(path, &comm)?;
    f.write_h5types(types)?;
    f.append_spikes(spikes, &WriteOptions::default())?;
    for l in lfps {
        f.write_lfp(&l.label, results_id, &l.t, &l.v)?;
    }
    f.finish()
}
