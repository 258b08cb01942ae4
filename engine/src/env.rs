//! The execution environment: MiV's `ExecutionEnvironment` (`load_cells`, `load_connections`, stimulus,
//! LFP, run, outputs) on top of [`Network`].
//!
//! Every rank reads only the cells it owns (round-robin `gid % size` by default, or weighted by
//! compartment count) from `cells.h5`: their `Trees`, which become cable cells through the population's
//! template (docs/templates.md), and their `Synapse Attributes`. It then reads the edges whose destination it
//! owns from `connections.h5` and turns each into a synapse (a point process shared per section, segment and
//! mechanism label, as MiV's SynapseManager does) and a connection with MiV's delay rule
//! `max(distance / velocity, 2 dt)`. Populations whose template is `VecStim` become spike sources that play
//! the spike trains given to them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use miv_config::{CellTypes, MechanismSite, SwcType, Synapses};
use miv_config::{LfpConfig, Partitioning, SynapseRule};
use miv_io::{NeuroH5File, PopulationRanges, Selection};
use miv_partition::{Assignment, Communicator};
use miv_solvers::cell::PointPlacement;
use miv_solvers::{ArtificialCell, Catalogue, CellDescription, Location, MechanismKind};

use crate::error::EngineError;
use crate::model::CellTemplate;
use crate::network::{MechanismCensus, Network, ProbeRequest, RunOptions, Trace};
use crate::spikes::Spike;

/// One synapse of a cell, from `Synapse Attributes` (12 bytes, the file's types).
#[derive(Debug, Clone, Copy)]
struct SynapseSite {
    section: u32,
    loc: f32,
    swc_type: u8,
}

/// A cell's synapse sites by syn_id: `ids` ascending beside `sites`, or empty when the ids are 0, 1, ...,
/// n - 1 (what the construction jobs write), so that a site costs 12 bytes while connections are loaded.
#[derive(Debug, Default)]
struct SiteTable {
    ids: Vec<u32>,
    sites: Vec<SynapseSite>,
}

impl SiteTable {
    /// Add sites (a syn_id given again replaces its site, the last one given wins).
    fn extend(&mut self, ids: &[u32], sites: impl Iterator<Item = SynapseSite>) {
        let dense = self.ids.is_empty() && ids.iter().enumerate().all(|(k, &id)| id as usize == self.sites.len() + k);
        if dense {
            self.sites.extend(sites);
            return;
        }
        if self.ids.is_empty() {
            self.ids = (0..self.sites.len() as u32).collect();
        }
        let mut all: Vec<(u32, SynapseSite)> = self.ids.iter().copied().zip(self.sites.iter().copied()).collect();
        all.extend(ids.iter().copied().zip(sites));
        // Stable: among equal ids the last given stays last, and dedup keeps the first of each run.
        all.sort_by_key(|x| x.0);
        all.reverse();
        all.dedup_by_key(|x| x.0);
        all.reverse();
        (self.ids, self.sites) = all.into_iter().unzip();
        self.ids.shrink_to_fit();
        self.sites.shrink_to_fit();
    }

    fn get(&self, id: u32) -> Option<SynapseSite> {
        if self.ids.is_empty() {
            return self.sites.get(id as usize).copied();
        }
        self.ids.binary_search(&id).ok().map(|i| self.sites[i])
    }
}

/// A local cell's synapses: syn_id → site, plus the point processes already placed, keyed by
/// (section, segment, label) or, with `unique`, by (syn_id, label).
#[derive(Debug, Default)]
struct CellSynapses {
    sites: SiteTable,
    /// Point processes by (presynaptic population, section, segment, label) or (.., syn_id, label).
    placed: FxHashMap<(u16, u32, u32, u16), usize>,
    /// Per-synapse weights from the populations' weights namespaces: (syn_id, label index) -> weight.
    weights: FxHashMap<(u32, u16), f64>,
}

/// Cells read (and built) per collective read of `Trees`.
const READ_CHUNK: usize = 1024;

/// MiV's `ExecutionEnvironment`.
pub struct ExecutionEnvironment<'c> {
    net: Network<'c>,
    comm: &'c dyn Communicator,
    /// The experiment's temperature, which wins over the templates'.
    celsius: Option<f64>,
    assignment: Assignment,
    populations: Option<PopulationRanges>,
    h5types: Option<miv_io::H5Types>,
    artificial: BTreeMap<String, Vec<u64>>,
    synapses: FxHashMap<u64, CellSynapses>,
    unique: HashMap<String, bool>,
    cells_file: Option<PathBuf>,
    /// Synapse labels seen in weights namespaces (their index keys `CellSynapses::weights`).
    weight_labels: Vec<String>,
    /// Populations built from templates (not `VecStim`), sorted by name.
    cable_populations: Vec<String>,
    /// Clip synapse locations into [0.05, 0.95] (MiV-Simulator since 65b9515); else place them where they are
    /// (MiV-Simulator d2f14d4, the version of MiV-Simulator-Cases).
    pub clip_synapse_locations: bool,
    /// Accept a connections file without some projection that synapses.yml declares (between populations of
    /// the cells file); by default that is an error (a damaged or wrong file would load as no connections).
    pub allow_missing_projections: bool,
}

impl<'c> ExecutionEnvironment<'c> {
    pub fn new(comm: &'c dyn Communicator, catalogue: Catalogue, options: RunOptions) -> ExecutionEnvironment<'c> {
        ExecutionEnvironment {
            net: Network::new(comm, catalogue, options),
            comm,
            celsius: None,
            assignment: Assignment::round_robin(comm.size()),
            populations: None,
            h5types: None,
            artificial: BTreeMap::new(),
            synapses: FxHashMap::default(),
            unique: HashMap::new(),
            cells_file: None,
            weight_labels: Vec::new(),
            cable_populations: Vec::new(),
            clip_synapse_locations: true,
            allow_missing_projections: false,
        }
    }

    pub fn comm(&self) -> &'c dyn Communicator {
        self.comm
    }

    /// The temperature (degC) of the run, instead of the templates' (call before `load_cells`).
    pub fn set_celsius(&mut self, celsius: f64) {
        self.celsius = Some(celsius);
    }

    /// The integration method (NEURON's `h.secondorder`: 0 backward Euler, 2 Crank-Nicolson), before the
    /// first `finitialize`.
    pub fn set_method(&mut self, method: miv_solvers::Method) -> Result<(), EngineError> {
        self.net.set_method(method)
    }

    /// The options of the run (dt, method, seed, threads).
    pub fn options(&self) -> &RunOptions {
        self.net.options()
    }

    pub fn assignment(&self) -> &Assignment {
        &self.assignment
    }

    /// Whether `gid` is a cell of this rank.
    pub fn has_cell(&self, gid: u64) -> bool {
        self.net.has_cell(gid)
    }

    /// A cell of this rank as loaded (before the run builds its group).
    pub fn cell(&self, gid: u64) -> Option<&CellDescription> {
        self.net.cell(gid)
    }

    /// Record a probe of a cell of this rank every `every_steps` steps.
    pub fn add_probe(&mut self, p: ProbeRequest, every_steps: u64) -> Result<(), EngineError> {
        self.net.add_probe(p, every_steps)
    }

    /// The probe traces of this rank recorded so far.
    pub fn traces(&mut self) -> Vec<Trace> {
        self.net.traces()
    }

    /// Heap bytes of the instantiated network on this rank by what holds them (see [`Network::memory`]).
    pub fn memory(&self) -> miv_solvers::GroupMemory {
        self.net.memory()
    }

    /// The mechanism types of this rank's cells: instances and the arithmetic of one step (`miv bench floor`).
    /// Empty before `finitialize`; the specialised kernels are counted once a step has run.
    pub fn mechanism_census(&self) -> Vec<MechanismCensus> {
        self.net.mechanism_census()
    }

    /// Cells, compartments and connections of this rank.
    pub fn local_counts(&self) -> [u64; 3] {
        [self.net.gids().count() as u64, self.net.local_compartments() as u64, self.net.local_connections() as u64]
    }

    /// Populations of the loaded cells file.
    pub fn populations(&self) -> Option<&PopulationRanges> {
        self.populations.as_ref()
    }

    /// Local artificial cells of a population (gids, ascending).
    pub fn artificial_cells(&self, population: &str) -> &[u64] {
        self.artificial.get(population).map_or(&[], |v| v.as_slice())
    }

    /// Read the populations and this rank's cells from `cells` (NeuroH5) and build them from `cell_types`
    /// and the templates in `templates`. Collective.
    pub fn load_cells(
        &mut self,
        cells: &Path,
        cell_types: &CellTypes,
        templates: &Path,
        partitioning: Partitioning,
        io_size: usize,
    ) -> Result<(), EngineError> {
        let comm = self.comm;
        let f = comm.agreed(NeuroH5File::open(cells, comm))?;
        let types = comm.agreed(f.read_h5types())?;
        let pops = types.populations.clone();
        let names: Vec<String> = {
            let mut n: Vec<String> = pops.iter().map(|p| p.name.clone()).collect();
            n.sort();
            n
        };
        // Check the configuration before reading anything (every rank sees the same files).
        let mut local: Result<(), EngineError> = Ok(());
        let mut tmpl: BTreeMap<String, CellTemplate> = BTreeMap::new();
        for name in &names {
            let Some(ct) = cell_types.get(name) else {
                local = Err(EngineError::Network(format!(
                    "{}: population {name} has no entry in cell_types (known: {})",
                    cells.display(),
                    cell_types.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
                break;
            };
            if let Some(m) = &ct.mechanism {
                if !matches!(m, serde_norway::Value::Mapping(x) if x.is_empty()) && !m.is_null() {
                    local = Err(EngineError::Network(format!(
                        "cell_types.{name}.mechanism: per-population mechanism overrides are not supported; put the biophysics in the template {}",
                        ct.template
                    )));
                    break;
                }
            }
            self.unique.insert(name.clone(), ct.synapses.unique.unwrap_or(false));
            if ct.template != "VecStim" {
                match CellTemplate::load(templates, &ct.template) {
                    Ok(t) => {
                        tmpl.insert(name.clone(), t);
                    }
                    Err(e) => {
                        local = Err(EngineError::Network(e.to_string()));
                        break;
                    }
                }
            }
        }
        comm.agree(local.map_err(|e| e.to_string()))?;
        // One temperature for the whole network: the templates' (MiV's set celsius = 34) if they say so.
        let temps: Vec<f64> = tmpl.values().filter_map(|t| t.celsius()).collect();
        if let Some(&c) = temps.first() {
            if temps.iter().any(|&x| x != c) {
                let list: Vec<String> =
                    tmpl.values().filter_map(|t| t.celsius().map(|c| format!("{} {c}", t.name))).collect();
                return Ok(comm.agreed(Err(format!("templates ask for different temperatures: {}", list.join(", "))))?);
            }
        }
        // The one place the temperature is set: the experiment's, else the templates', else the solvers' default.
        if let Some(c) = self.celsius.or(temps.first().copied()) {
            self.net.set_celsius(c)?;
        }

        if partitioning == Partitioning::Weighted && comm.size() > 1 {
            let costs = self.read_and_build(&f, &names, cell_types, &tmpl, io_size, true)?;
            let (all, _) = comm.allgatherv(&costs);
            let pairs: Vec<(u64, f64)> = all.iter().map(|c| (c[0] as u64, c[1])).collect();
            self.assignment = Assignment::weighted(&pairs, comm.size());
        }
        self.read_and_build(&f, &names, cell_types, &tmpl, io_size, false)?;
        self.cable_populations = tmpl.keys().cloned().collect();
        self.populations = Some(pops);
        self.h5types = Some(types);
        self.cells_file = Some(cells.to_path_buf());
        Ok(())
    }

    /// Read and build this rank's cells; with `costs_only`, return (gid, compartments) instead of keeping them.
    fn read_and_build(
        &mut self,
        f: &NeuroH5File,
        names: &[String],
        cell_types: &CellTypes,
        tmpl: &BTreeMap<String, CellTemplate>,
        io_size: usize,
        costs_only: bool,
    ) -> Result<Vec<[f64; 2]>, EngineError> {
        let comm = self.comm;
        let assignment = self.assignment.clone();
        let sel = if io_size > 0 {
            Selection::IoRanks { assignment: &assignment, io_size }
        } else {
            Selection::Owned(&assignment)
        };
        let pops = comm.agreed(f.population_ranges())?;
        let mut costs = Vec::new();
        for (pi, name) in names.iter().enumerate() {
            let ct = &cell_types[name];
            let pop = pops.get(name).expect("listed");
            if ct.template == "VecStim" {
                if costs_only {
                    continue;
                }
                let gids = assignment.gids_of(comm.rank(), &[pop.range()]);
                let mut added = Ok(());
                for &g in &gids {
                    added = added.and(self.net.add_cell(g, pi, ArtificialCell::vecstim(vec![]).into()));
                }
                comm.agreed(added)?;
                self.artificial.insert(name.clone(), gids);
                continue;
            }
            let namespaces = comm.agreed(f.namespaces(name))?;
            if !namespaces.iter().any(|n| n == miv_io::names::TREES) {
                let msg = format!(
                    "{}: /Populations/{name}/Trees is missing: population {name} uses template {} and needs morphologies",
                    f.path().display(),
                    ct.template
                );
                comm.agree(Err::<(), _>(msg))?;
            }
            // Read and build in chunks of cells, so the trees read at once stay bounded whatever the network size
            // (every rank makes the same number of collective reads).
            let template = &tmpl[name];
            let owned = assignment.gids_of(comm.rank(), &[pop.range()]);
            let chunks: Vec<&[u64]> = if io_size > 0 { vec![&[]] } else { owned.chunks(READ_CHUNK).collect() };
            let n_chunks = if io_size > 0 { 1 } else { comm.allreduce_max(chunks.len() as f64) as usize };
            // MiV's forests copy one tree to every cell of a population: cells with equal trees share one
            // description until their groups are built.
            let mut shared: Vec<(miv_io::Tree, Arc<CellDescription>)> = Vec::new();
            let mut built: Vec<(u64, Arc<CellDescription>)> = Vec::with_capacity(owned.len());
            for k in 0..n_chunks {
                let chunk_sel = if io_size > 0 { sel } else { Selection::Gids(chunks.get(k).copied().unwrap_or(&[])) };
                let trees = comm.agreed(f.read_trees(name, &chunk_sel))?;
                let mut failed: Result<(), String> = Ok(());
                for (gid, tree) in &trees {
                    if let Some((_, d)) = shared.iter().find(|(t, _)| t == tree) {
                        built.push((*gid, d.clone()));
                        continue;
                    }
                    let cell = crate::model::morphology_from_tree(tree)
                        .map_err(|e| format!("{}: /Populations/{name}/Trees, gid {gid}: {e}", f.path().display()))
                        .and_then(|m| {
                            template
                                .build_with(m, self.net.catalogue(), ct.discretization.as_ref())
                                .map_err(|e| format!("gid {gid} ({name}): {e}"))
                        });
                    match cell {
                        Ok((c, _)) => {
                            let d = Arc::new(CellDescription::from(c));
                            if shared.len() < 16 {
                                shared.push((tree.clone(), d.clone()));
                            }
                            built.push((*gid, d));
                        }
                        Err(e) => {
                            failed = Err(e);
                            break;
                        }
                    }
                }
                comm.agreed(failed)?;
            }
            if costs_only {
                for (g, d) in &built {
                    if let CellDescription::Cable(c) = &**d {
                        costs.push([*g as f64, c.nseg.iter().sum::<usize>() as f64]);
                    }
                }
                continue;
            }
            let mut added = Ok(());
            for (g, d) in built {
                added = added.and(self.net.add_shared_cell(g, pi, d));
            }
            comm.agreed(added)?;
            if namespaces.iter().any(|n| n == miv_io::names::SYNAPSE_ATTRIBUTES) {
                let attrs = comm.agreed(f.read_cell_attributes(
                    name,
                    miv_io::names::SYNAPSE_ATTRIBUTES,
                    &sel,
                    Some(&["syn_ids", "syn_locs", "syn_secs", "swc_types"]),
                ))?;
                let r = self.take_synapse_sites(&attrs, f.path(), name);
                comm.agreed(r)?;
            }
            let weight_ns = comm.agreed(weight_namespaces(ct, name))?;
            for ns in weight_ns {
                if !namespaces.contains(&ns) {
                    let msg = format!("{}: /Populations/{name}/{ns} (the weights namespace of cell_types.{name}.synapses.weights) is missing", f.path().display());
                    return Ok(comm.agreed(Err(msg))?);
                }
                let attrs = comm.agreed(f.read_cell_attributes(name, &ns, &sel, None))?;
                let r = self.take_weights(&attrs, f.path(), name, &ns);
                comm.agreed(r)?;
            }
        }
        Ok(costs)
    }

    fn take_synapse_sites(&mut self, attrs: &miv_io::CellAttributes, file: &Path, name: &str) -> Result<(), String> {
        for gid in attrs.gids() {
            let (ids, locs, secs, types) = (
                attrs.get::<u32>("syn_ids", gid),
                attrs.get::<f32>("syn_locs", gid),
                attrs.get::<u32>("syn_secs", gid),
                attrs.get::<u8>("swc_types", gid),
            );
            let (Some(ids), Some(locs), Some(secs), Some(types)) = (ids, locs, secs, types) else {
                return Err(format!(
                    "{}: /Populations/{name}/Synapse Attributes: gid {gid} lacks one of syn_ids (uint32), syn_locs (float32), syn_secs (uint32), swc_types (uint8)",
                    file.display()
                ));
            };
            if ids.len() != locs.len() || ids.len() != secs.len() || ids.len() != types.len() {
                return Err(format!(
                    "{}: /Populations/{name}/Synapse Attributes: gid {gid} has attributes of different lengths",
                    file.display()
                ));
            }
            let entry = self.synapses.entry(gid).or_default();
            let sites = (0..ids.len()).map(|k| SynapseSite { section: secs[k], loc: locs[k], swc_type: types[k] });
            entry.sites.extend(ids, sites);
        }
        Ok(())
    }

    fn label_index(&mut self, label: &str) -> u16 {
        match self.weight_labels.iter().position(|l| l == label) {
            Some(i) => i as u16,
            None => {
                self.weight_labels.push(label.to_string());
                (self.weight_labels.len() - 1) as u16
            }
        }
    }

    fn take_weights(
        &mut self,
        attrs: &miv_io::CellAttributes,
        file: &Path,
        name: &str,
        ns: &str,
    ) -> Result<(), String> {
        for gid in attrs.gids() {
            let ids = attrs
                .get::<u32>("syn_id", gid)
                .ok_or_else(|| {
                    format!("{}: /Populations/{name}/{ns}/syn_id (uint32) is missing for gid {gid}", file.display())
                })?
                .to_vec();
            for label in attrs.names() {
                if label == "syn_id" {
                    continue;
                }
                let Some(w) = attrs.get::<f32>(&label, gid) else {
                    return Err(format!("{}: /Populations/{name}/{ns}/{label} must be float32", file.display()));
                };
                if w.len() != ids.len() {
                    return Err(format!(
                        "{}: /Populations/{name}/{ns}: gid {gid} has {} syn_id values but {} {label} weights",
                        file.display(),
                        ids.len(),
                        w.len()
                    ));
                }
                let li = self.label_index(&label);
                let entry = self.synapses.entry(gid).or_default();
                for (id, x) in ids.iter().zip(w) {
                    if !x.is_finite() {
                        return Err(format!(
                            "{}: /Populations/{name}/{ns}/{label}: gid {gid} syn_id {id} has weight {x}; expected a finite number",
                            file.display()
                        ));
                    }
                    entry.weights.insert((*id, li), *x as f64);
                }
            }
        }
        Ok(())
    }

    /// Read the edges onto this rank's cells from `connections` and create their synapses and connections,
    /// with `synapses.yml` semantics. `velocity` is the conduction velocity (um/ms, MiV: 250); delays are
    /// `max(distance / velocity, min_delay)` (MiV: min_delay = 2 dt). Collective.
    pub fn load_connections(
        &mut self,
        connections: &Path,
        synapses: &Synapses,
        rules: &BTreeMap<String, SynapseRule>,
        velocity: f64,
        min_delay: f64,
        io_size: usize,
    ) -> Result<(), EngineError> {
        let comm = self.comm;
        let pops = comm.agreed(self.populations.clone().ok_or("load_connections before load_cells"))?;
        let f = comm.agreed(NeuroH5File::open(connections, comm))?;
        let projections = comm.agreed(f.projection_names())?;
        // Every check that depends only on the files and the configuration, before any edge is read.
        let mut problems = Vec::new();
        for (src, dst) in &projections {
            for p in [src, dst] {
                if pops.get(p).is_none() {
                    problems.push(format!(
                        "{}: projection {src} -> {dst} names population {p}, which {} does not define",
                        connections.display(),
                        self.cells_file.as_ref().map_or("the cells file".to_string(), |c| c.display().to_string())
                    ));
                }
            }
            match synapses.get(dst).and_then(|m| m.get(src)) {
                None => problems.push(format!(
                    "{}: projection {src} -> {dst} has no entry {dst}.{src} in synapses.yml",
                    connections.display()
                )),
                Some(proj) => {
                    for labels in proj.mechanisms.values() {
                        for (label, params) in labels {
                            if let Some((k, v)) = params.iter().find(|(_, v)| !v.is_finite()) {
                                problems.push(format!(
                                    "synapses.{dst}.{src}.mechanisms.{label}.{k}: {v}; expected a finite number"
                                ));
                            }
                            match rules.get(label) {
                                None => problems.push(format!(
                                    "synapses.{dst}.{src}.mechanisms: label {label} has no synaptic mechanism (known labels: {})",
                                    rules.keys().cloned().collect::<Vec<_>>().join(", ")
                                )),
                                Some(r) => match self.net.catalogue().get(&r.mechanism) {
                                    None => problems.push(format!(
                                        "synapses.{dst}.{src}.mechanisms.{label}: mechanism {} is not in the mechanisms folder or built in (known: {})",
                                        r.mechanism,
                                        self.net.catalogue().names().join(", ")
                                    )),
                                    Some(info) if info.kind != MechanismKind::Point => problems.push(format!(
                                        "synapses.{dst}.{src}.mechanisms.{label}: {} is not a point process",
                                        r.mechanism
                                    )),
                                    Some(_) => {}
                                },
                            }
                        }
                    }
                }
            }
        }
        if !self.allow_missing_projections {
            for (dst, by_src) in synapses.iter() {
                for src in by_src.keys() {
                    let present = projections.iter().any(|(s, d)| s == src && d == dst);
                    if !present && pops.get(src).is_some() && pops.get(dst).is_some() {
                        problems.push(format!(
                            "{}: /Projections/{dst}/{src} is missing, but synapses.yml declares {dst}.{src} (a damaged or wrong connections file; set allow_missing_projections to run without it)",
                            connections.display()
                        ));
                    }
                }
            }
        }
        if !(velocity > 0.0 && velocity.is_finite()) {
            problems.push(format!("connection velocity must be positive (um/ms), got {velocity}"));
        }
        if !(min_delay >= 0.0 && min_delay.is_finite()) {
            problems.push(format!("the minimum connection delay must be >= 0 ms, got {min_delay}"));
        }
        comm.agree(match problems.first() {
            Some(p) => Err(p.clone()),
            None => Ok(()),
        })?;
        let assignment = self.assignment.clone();
        let sel = if io_size > 0 {
            Selection::IoRanks { assignment: &assignment, io_size }
        } else {
            Selection::Owned(&assignment)
        };
        // A synapse label of one section type as its edges use it: its id (its index among the rules), rule,
        // parameters, and the NetCon weights the parameters give (None: not among them).
        struct LabelPlan<'a> {
            label: &'a str,
            id: u16,
            rule: &'a SynapseRule,
            params: &'a miv_config::MechanismParams,
            netcon: Vec<Option<f64>>,
        }
        // Each rule label's id (its index among the rules) and rule.
        let rule_of: FxHashMap<&str, (u16, &SynapseRule)> =
            rules.iter().enumerate().map(|(i, (k, r))| (k.as_str(), (i as u16, r))).collect();
        // Index of each rule label among the labels of the weights namespaces.
        let weight_label: Vec<Option<u16>> =
            rules.keys().map(|k| self.weight_labels.iter().position(|l| l == k).map(|i| i as u16)).collect();
        for (pi, (src, dst)) in projections.iter().enumerate() {
            let proj_cfg = &synapses[dst][src];
            let src_index = pops.iter().position(|p| &p.name == src).unwrap_or(usize::MAX) as u16;
            let edges =
                comm.agreed(f.read_projection(src, dst, &[miv_io::names::SYNAPSES, miv_io::names::CONNECTIONS], &sel))?;
            let syn_ids = edges.attr::<u32>(miv_io::names::SYNAPSES, "syn_id");
            let dist = edges.attr::<f32>(miv_io::names::CONNECTIONS, "distance");
            let local: Result<(), String> = (|| {
                let syn_ids = syn_ids.ok_or_else(|| {
                    format!("{}: /Projections/{dst}/{src}/Synapses/syn_id (uint32) is missing", connections.display())
                })?;
                let dist = dist.ok_or_else(|| {
                    format!(
                        "{}: /Projections/{dst}/{src}/Connections/distance (float32) is missing",
                        connections.display()
                    )
                })?;
                let src_start = edges.src_start();
                let mut wbuf: Vec<f64> = Vec::with_capacity(4);
                // The labels of each section type's mechanisms, resolved at their first edge.
                let mut plans: Vec<(&MechanismSite, Vec<LabelPlan>)> = Vec::new();
                let unique = self.unique.get(dst).copied().unwrap_or(false);
                for (dst_gid, range) in edges.iter() {
                    for e in range {
                        let src_gid = src_start + edges.source_index()[e] as u64;
                        let syn_id = syn_ids[e];
                        let site = self
                            .synapses
                            .get(&dst_gid)
                            .and_then(|c| c.sites.get(syn_id))
                            .ok_or_else(|| format!("{}: edge {src_gid} -> {dst_gid} uses syn_id {syn_id}, which gid {dst_gid} has not in Synapse Attributes", connections.display()))?;
                        let site_key = SwcType::from_code(site.swc_type as i64).map(MechanismSite::Swc);
                        let (site_key, labels) = site_key
                            .and_then(|k| proj_cfg.mechanisms.get_key_value(&k))
                            .or_else(|| proj_cfg.mechanisms.get_key_value(&MechanismSite::Default))
                            .ok_or_else(|| {
                                format!(
                                    "synapses.{dst}.{src}.mechanisms: nothing for section type {} (and no default)",
                                    site.swc_type
                                )
                            })?;
                        let d = dist[e];
                        if !(d >= 0.0 && d.is_finite()) {
                            return Err(format!(
                                "{}: /Projections/{dst}/{src}/Connections/distance: edge {src_gid} -> {dst_gid} has distance {d}; expected a finite number >= 0 (um)",
                                connections.display()
                            ));
                        }
                        let delay = (d as f64 / velocity).max(min_delay);
                        let plan = match plans.iter().position(|(k, _)| *k == site_key) {
                            Some(i) => &plans[i].1,
                            None => {
                                let plan = labels
                                    .iter()
                                    .map(|(label, params)| {
                                        let &(id, rule) =
                                            rule_of.get(label.as_str()).expect("labels checked against the rules");
                                        let netcon = rule.netcon.iter().map(|w| params.get(w).copied()).collect();
                                        LabelPlan { label, id, rule, params, netcon }
                                    })
                                    .collect();
                                plans.push((site_key, plan));
                                &plans[plans.len() - 1].1
                            }
                        };
                        for &LabelPlan { label, id: label_id, rule, params, ref netcon } in plan {
                            let target = self.synapse(
                                dst_gid,
                                syn_id,
                                site,
                                (label, label_id),
                                rule,
                                params,
                                unique,
                                src_index,
                            )?;
                            let per_synapse = weight_label[label_id as usize]
                                .and_then(|li| self.synapses.get(&dst_gid).and_then(|c| c.weights.get(&(syn_id, li))))
                                .copied();
                            wbuf.clear();
                            for (w, value) in rule.netcon.iter().zip(netcon) {
                                wbuf.push(match (w.as_str(), per_synapse) {
                                    ("weight", Some(x)) => x,
                                    _ => value.ok_or_else(|| {
                                        format!(
                                            "synapses.{dst}.{src}.mechanisms.{label}: {w} is missing (a weight of {})",
                                            rule.mechanism
                                        )
                                    })?,
                                });
                            }
                            if let Some((w, x)) = rule.netcon.iter().zip(&wbuf).find(|(_, x)| !x.is_finite()) {
                                return Err(format!(
                                    "synapses.{dst}.{src}.mechanisms.{label}: {w} of edge {src_gid} -> {dst_gid} is {x}; expected a finite number"
                                ));
                            }
                            let weights = &wbuf;
                            self.net
                                .connect_with(src_gid, dst_gid, target, weights, delay)
                                .map_err(|e| e.to_string())?;
                        }
                    }
                }
                Ok(())
            })();
            comm.agree(local)?;
            // Synapse sites and placements are only needed while connecting: those of a population's cells go
            // after its last projection (the file lists the projections by target population).
            if !projections[pi + 1..].iter().any(|(_, d)| d == dst) {
                if let Some(p) = pops.get(dst) {
                    self.synapses.retain(|gid, _| !p.contains(*gid));
                    self.synapses.shrink_to_fit();
                }
            }
        }
        self.synapses = FxHashMap::default();
        Ok(())
    }

    /// The point process for (cell, synapse, label): shared per (section, segment, label) unless `unique`.
    #[allow(clippy::too_many_arguments)]
    fn synapse(
        &mut self,
        gid: u64,
        syn_id: u32,
        site: SynapseSite,
        (label, label_id): (&str, u16),
        rule: &SynapseRule,
        params: &miv_config::MechanismParams,
        unique: bool,
        src: u16,
    ) -> Result<usize, String> {
        let CellDescription::Cable(cell) =
            self.net.cell(gid).ok_or_else(|| format!("gid {gid} is not a local cell"))?
        else {
            return Err(format!("gid {gid} is an artificial cell and cannot receive synapses"));
        };
        let (section, site_loc) = (site.section as usize, site.loc as f64);
        if section >= cell.section_count() {
            return Err(format!(
                "gid {gid} syn_id {syn_id}: section {} does not exist ({} sections)",
                site.section,
                cell.section_count()
            ));
        }
        // MiV (since 65b9515) clips synapse locations into [0.05, 0.95]; either way they sit at the segment's node.
        let loc = if self.clip_synapse_locations { site_loc.clamp(0.05, 0.95) } else { site_loc.clamp(0.0, 1.0) };
        let nseg = cell.nseg[section] as f64;
        let seg = ((loc * nseg) as u64).min(nseg as u64 - 1);
        // MiV shares a point process only among the synapses of one presynaptic population (insert_hoc_cell_syns
        // keeps its table per cell and source population).
        let key = if unique { (src, u32::MAX, syn_id, label_id) } else { (src, site.section, seg as u32, label_id) };
        let entry = self.synapses.entry(gid).or_default();
        if let Some(&t) = entry.placed.get(&key) {
            return Ok(t);
        }
        let info = self.net.catalogue().get(&rule.mechanism).expect("checked");
        let mut point_params = Vec::new();
        for (k, v) in params {
            if rule.netcon.contains(k) {
                continue;
            }
            if info.param_index(k).is_none() {
                return Err(format!(
                    "synapse label {label}: {} has no parameter {k:?} (it has: {})",
                    rule.mechanism,
                    info.param_names()
                ));
            }
            point_params.push((k.clone(), *v));
        }
        let placement = PointPlacement {
            location: Location::new(section, loc),
            mechanism: rule.mechanism.clone(),
            params: point_params,
        };
        let t = self.net.add_point(gid, placement).map_err(|e| e.to_string())?;
        self.synapses.get_mut(&gid).expect("entry").placed.insert(key, t);
        Ok(t)
    }

    /// Play `times` (ms, sorted, >= 0) from the artificial cell `gid` (NEURON's `VecStim.play`): before
    /// `finitialize`, or between runs to replace the train (played from the next `finitialize`/`reset` on).
    pub fn play(&mut self, gid: u64, times: &[f64]) -> Result<(), EngineError> {
        if let Some(bad) = times.windows(2).find(|w| w[1] < w[0]) {
            return Err(EngineError::Network(format!(
                "spike train of gid {gid} is not sorted ({} after {})",
                bad[1], bad[0]
            )));
        }
        if let Some(t) = times.iter().find(|t| !(t.is_finite() && **t >= 0.0)) {
            return Err(EngineError::Network(format!("spike train of gid {gid} has time {t}; times must be >= 0 ms")));
        }
        self.net.set_train(gid, times)
    }

    /// Add an LFP electrode (collective).
    pub fn add_lfp(&mut self, config: LfpConfig) -> Result<usize, EngineError> {
        if !config.miv_compat {
            return self.net.add_lfp(config);
        }
        let comm = self.comm;
        let pops = comm.agreed(self.populations.clone().ok_or("add_lfp before load_cells"))?;
        let mut names = pops.names();
        names.sort();
        // MiV's pop_gid_dict: every population, sorted by name, its index seeding the population's Random.
        let populations: Vec<(usize, Vec<u64>)> = names
            .iter()
            .enumerate()
            .filter(|(_, n)| self.cable_populations.contains(n))
            .filter_map(|(i, n)| pops.get(n).map(|p| (i, p.range().collect())))
            .collect();
        let draws = crate::lfp::MivLfpContext::draws_for(config.seed, &populations);
        // `area(x)` without a section is taken on the first section NEURON created: section 0 of the first
        // cell of the first population (by name) built from a template, on rank 0.
        let reference = self.cable_populations.first().and_then(|n| pops.get(n)).map(|p| p.start);
        let owner = reference.and_then(|g| self.assignment.rank_of(g)).unwrap_or(0);
        let mut areas: Vec<f64> = Vec::new();
        if let Some(CellDescription::Cable(cell)) = reference.and_then(|g| self.net.cell(g)) {
            let comps = cell.compartments();
            let nseg = cell.nseg[0];
            areas = (0..nseg).map(|j| comps.area[comps.node_at(0, (j as f64 + 0.5) / nseg as f64) as usize]).collect();
        }
        let reference_areas = comm.broadcast(owner, &areas);
        self.net.add_lfp_with(config, Some(crate::lfp::MivLfpContext { draws, reference_areas }))
    }

    /// NEURON's `h.finitialize(v_init)`: builds the network on first use; called again it restarts it (as
    /// [`reset`](Self::reset) with a new `v_init`). Collective.
    pub fn finitialize(&mut self, v_init: f64) -> Result<(), EngineError> {
        self.net.finitialize(v_init)
    }

    /// Advance to `t_stop` (ms), NEURON's `pc.psolve(t_stop)`; call it again with a later time to go on.
    /// Collective.
    pub fn psolve(&mut self, t_stop: f64) -> Result<(), EngineError> {
        self.net.psolve(t_stop)
    }

    /// Restart from the initial state of the first `finitialize` (time 0, voltages, mechanism states, event
    /// queues, random streams, spike records, probe traces, LFP samples) without reading any file; played
    /// trains, direct events, probes and weights stay as they are now. Collective.
    pub fn reset(&mut self) -> Result<(), EngineError> {
        self.net.reset()
    }

    /// Current time (ms).
    pub fn time(&self) -> f64 {
        self.net.time()
    }

    /// The global minimum connection delay (ms), known after `finitialize`.
    pub fn min_delay(&self) -> f64 {
        self.net.min_delay()
    }

    /// Threads each rank steps its cell groups on, the calling thread included (0 in the options: the core
    /// count).
    pub fn threads(&self) -> usize {
        self.net.threads()
    }

    /// This rank's gids, ascending.
    pub fn local_gids(&self) -> Vec<u64> {
        self.net.gids().collect()
    }

    /// Whether this rank owns `gid` (NEURON's `pc.gid_exists(gid)`).
    pub fn owns(&self, gid: u64) -> bool {
        self.net.is_local(gid)
    }

    /// Read `variable` at `section(x)` of `gid` (`v`, `i_membrane`, `MECH.VAR`, `TARGET.VAR`; see
    /// [`crate::network::probe_at`]) on the rank owning it, after `finitialize`.
    pub fn state(&self, gid: u64, section: usize, x: f64, variable: &str) -> Result<f64, EngineError> {
        self.net.state(gid, &crate::network::probe_at(section, x, variable)?)
    }

    /// Set `variable` at `section(x)` of `gid` on the rank owning it, between runs (NEURON's
    /// `cell.soma(0.5).v = -50`): the next step starts from the new value.
    pub fn set_state(
        &mut self,
        gid: u64,
        section: usize,
        x: f64,
        variable: &str,
        value: f64,
    ) -> Result<(), EngineError> {
        self.net.set_state(gid, &crate::network::probe_at(section, x, variable)?, value)
    }

    /// Set the membrane potential of every compartment of cable cell `gid` (on the rank owning it).
    pub fn set_cell_voltage(&mut self, gid: u64, v: f64) -> Result<(), EngineError> {
        self.net.set_cell_voltage(gid, v)
    }

    /// Weight vectors of the connections from `source` onto `target_gid` (on the rank owning the target), in
    /// the order they were made.
    pub fn netcon_weights(&self, source: u64, target_gid: u64) -> Result<Vec<Vec<f64>>, EngineError> {
        self.net.netcon_weights(source, target_gid)
    }

    /// Set the leading weights of connection `k` from `source` onto `target_gid` (NEURON's `nc.weight[0] = w`),
    /// on the rank owning the target.
    pub fn set_netcon_weights(
        &mut self,
        source: u64,
        target_gid: u64,
        k: usize,
        weights: &[f64],
    ) -> Result<(), EngineError> {
        self.net.set_netcon_weights(source, target_gid, k, weights)
    }

    /// Record `variable` at `section(x)` of `gid` every `every_steps` time steps (one interval for all probes)
    /// from the next `finitialize`/`reset`; a no-op on ranks not owning `gid`. Returns the trace's label.
    pub fn record(
        &mut self,
        gid: u64,
        section: usize,
        x: f64,
        variable: &str,
        every_steps: u64,
    ) -> Result<String, EngineError> {
        let label = format!("{variable}@{gid}:{section}({x})");
        let spec = crate::network::probe_at(section, x, variable)?;
        if self.owns(gid) {
            self.net.add_probe(crate::network::ProbeRequest { gid, spec, label: label.clone() }, every_steps)?;
        }
        Ok(label)
    }

    /// Forget every probe.
    pub fn clear_probes(&mut self) {
        self.net.clear_probes()
    }

    /// Deliver one event to target `target` of `gid` at `t` (NEURON's `NetCon(None, syn).event(t)`) from the
    /// next `finitialize`/`reset` on; a no-op on ranks not owning `gid`.
    pub fn add_event(&mut self, gid: u64, target: usize, t: f64, weights: Vec<f64>) -> Result<(), EngineError> {
        if self.owns(gid) {
            self.net.add_event(gid, target, t, weights)?;
        }
        Ok(())
    }

    /// Forget every direct event.
    pub fn clear_events(&mut self) {
        self.net.clear_events()
    }

    /// Every spike so far on root (sorted by (t, gid)); `None` elsewhere. Collective.
    pub fn gather_spikes(&self) -> Option<Vec<Spike>> {
        self.net.gather_spikes()
    }

    /// Electrode labels, in the order they were added.
    pub fn lfp_labels(&self) -> Vec<String> {
        self.net.electrodes().iter().map(|e| e.label.clone()).collect()
    }

    /// The LFP of electrode `e` so far on root: (times ms, values mV); `None` elsewhere. Collective.
    pub fn gather_lfp(&self, e: usize) -> Result<Option<(Vec<f64>, Vec<f64>)>, EngineError> {
        let n = self.net.electrodes().len();
        if e >= n {
            return Err(EngineError::Network(format!("no LFP electrode {e} ({n} added)")));
        }
        Ok(self.net.gather_lfp(e))
    }

    /// Every probe trace on root as (label, values), sorted by label; `None` elsewhere. Collective.
    pub fn gather_traces(&mut self) -> Option<Vec<(String, Vec<f64>)>> {
        let local = self.net.traces();
        let mut words: Vec<f64> = Vec::new();
        let mut labels = String::new();
        for t in &local {
            words.push(t.values.len() as f64);
            words.extend_from_slice(&t.values);
            labels.push_str(&t.label);
            labels.push('\n');
        }
        let values = self.comm.gatherv(0, &words);
        let names = self.comm.gather_strings(0, &labels);
        let ((all, counts), names) = (values?, names?);
        let mut out = Vec::new();
        let mut off = 0;
        for (c, text) in counts.iter().zip(&names) {
            let chunk = &all[off..off + c];
            off += c;
            let mut i = 0;
            for label in text.lines() {
                let n = chunk[i] as usize;
                out.push((label.to_string(), chunk[i + 1..i + 1 + n].to_vec()));
                i += 1 + n;
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Some(out)
    }

    /// Gather spikes (optionally of some populations only) and LFP on root and write the results file there
    /// (NeuroH5 `Spike Events` per population, `Local Field Potential <label>` groups). Collective; returns
    /// the spikes on root.
    pub fn write_outputs(
        &self,
        path: &Path,
        populations: Option<&[String]>,
        results_id: Option<&str>,
        t_stop: f64,
    ) -> Result<Option<Vec<Spike>>, EngineError> {
        let spikes = self.net.gather_spikes();
        let lfps: Vec<Option<(Vec<f64>, Vec<f64>)>> =
            (0..self.net.electrodes().len()).map(|e| self.net.gather_lfp(e)).collect();
        let labels: Vec<String> = self.net.electrodes().iter().map(|e| e.label.clone()).collect();
        let art: Vec<u64> = self.artificial.values().flatten().copied().collect();
        let (all_art, _) = self.comm.allgatherv(&art);
        let result = match (&spikes, self.comm.rank()) {
            (Some(_), 0) if self.h5types.is_none() => Err("write_outputs before load_cells".to_string()),
            (Some(all), 0) => {
                let types = self.h5types.as_ref().expect("checked");
                let pops = &types.populations;
                let mut out = miv_io::SpikeOutput::new(results_id, vec![t_stop as f32]);
                let keep = |gid: u64| match populations {
                    None => true,
                    Some(list) => pops.of_gid(gid).is_some_and(|p| list.contains(&p.name)),
                };
                for s in all.iter().filter(|s| keep(s.gid)) {
                    out.add(s.gid, s.t as f32, 0);
                }
                let art: std::collections::HashSet<u64> = all_art.into_iter().collect();
                let gids: Vec<u64> = out.gids().collect();
                for g in gids {
                    out.set_artificial(g, art.contains(&g));
                }
                let traces: Vec<miv_io::LfpTrace> = lfps
                    .iter()
                    .zip(&labels)
                    .filter_map(|(l, label)| {
                        l.as_ref().map(|(t, v)| miv_io::LfpTrace {
                            label: label.clone(),
                            t: t.iter().map(|&x| x as f32).collect(),
                            v: v.iter().map(|&x| x as f32).collect(),
                        })
                    })
                    .collect();
                miv_io::write_results(path, types, &out, &traces, results_id).map(|_| ()).map_err(|e| e.to_string())
            }
            _ => Ok(()),
        };
        self.comm.agree(result)?;
        Ok(spikes)
    }
}

/// The weights namespaces of a population (`cell_types.<pop>.synapses.weights`: `{namespace: NAME | [NAMES]}`
/// or a list of those). Each namespace holds `syn_id` and one float32 attribute per synapse label whose values
/// replace the label's `weight` for those synapses (MiV's semantics; `expr` closures are not supported).
fn weight_namespaces(ct: &miv_config::CellType, pop: &str) -> Result<Vec<String>, EngineError> {
    let Some(w) = &ct.synapses.weights else { return Ok(vec![]) };
    let key = format!("cell_types.{pop}.synapses.weights");
    let entries: Vec<&serde_norway::Value> = match w {
        serde_norway::Value::Sequence(v) => v.iter().collect(),
        v => vec![v],
    };
    let mut out = Vec::new();
    for e in entries {
        let serde_norway::Value::Mapping(m) = e else {
            return Err(EngineError::Network(format!("{key}: expected {{namespace: NAME}} entries")));
        };
        for (k, v) in m {
            match (k.as_str(), v) {
                (Some("namespace"), serde_norway::Value::String(n)) => out.push(n.clone()),
                (Some("namespace"), serde_norway::Value::Sequence(ns)) => {
                    for n in ns {
                        out.push(
                            n.as_str()
                                .ok_or_else(|| EngineError::Network(format!("{key}.namespace: expected names")))?
                                .to_string(),
                        );
                    }
                }
                (Some(other), _) => {
                    return Err(EngineError::Network(format!(
                        "{key}.{other}: not supported (only `namespace`; weight expressions are not implemented)"
                    )))
                }
                _ => return Err(EngineError::Network(format!("{key}: expected {{namespace: NAME}}"))),
            }
        }
    }
    Ok(out)
}
