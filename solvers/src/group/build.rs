//! Building a cell group from cell descriptions. Cells are discretised first; then all nodes of all cells
//! are laid out in NEURON's cache-efficient order: the roots of all cells, then every cell's nodes of tree
//! depth 1, then depth 2, and so on (within a depth by cell, then by the cell's own node order). The Hines
//! elimination then meets independent cells one after another instead of one long dependency chain per cell,
//! which the CPU overlaps; and each cell's arithmetic stays the same whatever other cells share the group,
//! because the relative order of one cell's nodes does not change. Mechanism instances are then placed on
//! the laid-out nodes, in cell order and, within a cell, in placement order.

use super::*;
use crate::cable::{coupling, matrix_area};
use crate::cell::{ArtificialCell, CableCell, CellDescription, Values};
use crate::compartments::{Compartments, SectionNodes, NO_PARENT};
use crate::ion::{builtin_species, default_species, IonData, IonStyle};
use crate::mechanism::{Catalogue, MechanismInfo, MechanismKind, Site};
use std::collections::HashMap;

fn err_cell(cell: usize, what: String) -> SolverError {
    SolverError::Cell { cell, what }
}

/// Resolve named parameters against a mechanism's parameter list.
fn resolve_params<'a, T: 'a>(
    info: &MechanismInfo,
    given: impl Iterator<Item = (&'a String, &'a T)>,
) -> Result<Vec<(usize, &'a T)>, SolverError> {
    given
        .map(|(name, v)| {
            info.param_index(name).map(|k| (k, v)).ok_or_else(|| SolverError::UnknownParameter {
                mechanism: info.name.clone(),
                parameter: name.clone(),
                known: info.param_names(),
            })
        })
        .collect()
}

fn check_location(cell: usize, loc: &Location, ns: usize, what: &str) -> Result<(), SolverError> {
    if loc.section >= ns {
        return Err(err_cell(cell, format!("{what}: no section {} (the cell has {ns})", loc.section)));
    }
    if !(0.0..=1.0).contains(&loc.x) {
        return Err(err_cell(cell, format!("{what}: x = {} is outside 0..1", loc.x)));
    }
    Ok(())
}

/// Local node of `section(x)` (NEURON `node_exact`), from a cell's section table.
pub(super) fn local_node(s: &SectionNodes, x: f64) -> u32 {
    if x <= 0.0 {
        s.start
    } else if x >= 1.0 {
        s.end
    } else {
        s.first + ((s.nseg as f64 * x) as u32).min(s.nseg - 1)
    }
}

/// Everything checked up front about the cells, before any group arrays exist.
fn check_cable(ci: usize, cell: &CableCell, catalogue: &Catalogue) -> Result<(), SolverError> {
    let ns = cell.morphology.sections.len();
    cell.morphology.validate().map_err(|source| SolverError::Morphology { cell: ci, source })?;
    for (what, v) in [("nseg", cell.nseg.len()), ("Ra", cell.ra.len()), ("cm", cell.cm.len())] {
        if v != ns {
            return Err(err_cell(ci, format!("{what} has {v} entries for {ns} sections")));
        }
    }
    for s in 0..ns {
        let name = &cell.morphology.sections[s].name;
        if cell.nseg[s] == 0 {
            return Err(err_cell(ci, format!("section {s} ({name}): nseg must be >= 1")));
        }
        if !(cell.ra[s] > 0.0 && cell.ra[s].is_finite()) {
            return Err(err_cell(ci, format!("section {s} ({name}): Ra {} must be positive", cell.ra[s])));
        }
        if !(cell.cm[s] >= 0.0 && cell.cm[s].is_finite()) {
            return Err(err_cell(ci, format!("section {s} ({name}): cm {} must be >= 0", cell.cm[s])));
        }
    }
    let lookup = |name: &str, expected: MechanismKind, ctx: String| -> Result<&MechanismInfo, SolverError> {
        let info =
            catalogue.get(name).ok_or_else(|| SolverError::UnknownMechanism { name: name.into(), context: ctx })?;
        if info.kind != expected {
            return Err(SolverError::WrongKind {
                mechanism: name.into(),
                actual: info.kind.as_str(),
                expected: expected.as_str(),
            });
        }
        Ok(info)
    };
    for (pi, p) in cell.density.iter().enumerate() {
        let info = lookup(&p.mechanism, MechanismKind::Density, format!("cell {ci}, density placement {pi}"))?;
        if p.section >= ns {
            return Err(err_cell(ci, format!("density placement {pi}: no section {}", p.section)));
        }
        for (_, v) in resolve_params(info, p.params.iter().map(|(k, v)| (k, v)))? {
            if let Values::PerSegment(vals) = v {
                if vals.len() != cell.nseg[p.section] {
                    return Err(err_cell(
                        ci,
                        format!(
                            "density placement {pi} ({}): {} per-segment values for nseg {}",
                            p.mechanism,
                            vals.len(),
                            cell.nseg[p.section]
                        ),
                    ));
                }
            }
        }
    }
    for (pi, p) in cell.points.iter().enumerate() {
        let info = lookup(&p.mechanism, MechanismKind::Point, format!("cell {ci}, point placement {pi}"))?;
        check_location(ci, &p.location, ns, &format!("point placement {pi}"))?;
        resolve_params(info, p.params.iter().map(|(k, v)| (k, v)))?;
    }
    for (di, det) in cell.detectors.iter().enumerate() {
        check_location(ci, &det.location, ns, &format!("detector {di}"))?;
        if !det.threshold.is_finite() {
            return Err(err_cell(ci, format!("detector {di}: threshold must be finite")));
        }
    }
    Ok(())
}

/// The group layout: per cell its discretisation and the group index of each of its local nodes.
struct Layout {
    comps: Vec<Option<Compartments>>,
    node_map: Vec<u32>,
    cell_node_offset: Vec<u32>,
    n_nodes: usize,
    /// First node of every depth, then the node count (the Hines solve's levels).
    levels: Vec<u32>,
}

fn layout(cells: &[CellDescription]) -> Layout {
    let comps: Vec<Option<Compartments>> = cells
        .iter()
        .map(|c| match c {
            CellDescription::Cable(c) => Some(Compartments::build(&c.morphology, &c.nseg, &c.ra)),
            CellDescription::Artificial(_) => None,
        })
        .collect();
    // Depth of every local node; nodes bucketed by (depth, cell, local index).
    let mut depth: Vec<Vec<u32>> = Vec::with_capacity(cells.len());
    let mut max_depth = 0;
    for comp in &comps {
        let d = match comp {
            None => Vec::new(),
            Some(c) => {
                let mut d = vec![0u32; c.len()];
                for i in 1..c.len() {
                    d[i] = d[c.parent[i] as usize] + 1;
                }
                d
            }
        };
        max_depth = max_depth.max(d.iter().copied().max().unwrap_or(0));
        depth.push(d);
    }
    let mut cell_node_offset = vec![0u32];
    for comp in &comps {
        let n = comp.as_ref().map_or(0, |c| c.len()) as u32;
        cell_node_offset.push(cell_node_offset.last().unwrap() + n);
    }
    let n_nodes = *cell_node_offset.last().unwrap() as usize;
    let mut per_depth = vec![0usize; max_depth as usize + 2];
    for d in depth.iter().flatten() {
        per_depth[*d as usize + 1] += 1;
    }
    for k in 1..per_depth.len() {
        per_depth[k] += per_depth[k - 1];
    }
    let levels: Vec<u32> = per_depth.iter().map(|&k| k as u32).collect();
    let mut node_map = vec![0u32; n_nodes];
    for (ci, d) in depth.iter().enumerate() {
        let off = cell_node_offset[ci] as usize;
        for (local, &dd) in d.iter().enumerate() {
            node_map[off + local] = per_depth[dd as usize] as u32;
            per_depth[dd as usize] += 1;
        }
    }
    Layout { comps, node_map, cell_node_offset, n_nodes, levels }
}

/// Collects cells into group arrays.
struct Builder<'c> {
    catalogue: &'c Catalogue,
    mechs: Vec<Option<MechSlot>>,
    ion_index: HashMap<String, usize>,
    ions: Vec<IonData>,
    ion_at: HashMap<(usize, u32), u32>,
    /// Per species and instance: the accumulated use by the mechanisms at its node.
    ion_styles: Vec<Vec<IonStyle>>,
    /// Per species: the VALENCE that fixed its charge, and the mechanism that declared it.
    valence: Vec<Option<(f64, String)>>,
    /// Two mechanisms disagree on a species' charge (NEURON refuses that as well).
    valence_error: Option<SolverError>,
    targets: Vec<Target>,
    cell_targets: Vec<Range<u32>>,
    detectors: Vec<DetectorState>,
    cell_detectors: Vec<Range<u32>>,
    /// Per mechanism (catalogue index): owning cell of each instance.
    owner: HashMap<usize, Vec<u32>>,
    /// Density instances of every cell, placed after all cells in node order (see [`Builder::place_density`]).
    density: Vec<PendingDensity>,
}

/// A density mechanism's instance waiting to be placed.
struct PendingDensity {
    mech: usize,
    node: u32,
    cell: usize,
    section: usize,
    geometry: (f64, f64),
    params: Vec<f64>,
}

impl<'c> Builder<'c> {
    fn slot(&mut self, k: usize) -> &mut MechSlot {
        if self.mechs[k].is_none() {
            let mech = self.catalogue.make(k);
            let info = mech.info();
            let mut ion_ids = Vec::new();
            for u in &info.ions {
                let id = match self.ion_index.get(&u.ion) {
                    Some(&i) => i,
                    None => {
                        self.ions.push(IonData::new(&u.ion));
                        self.ion_styles.push(Vec::new());
                        self.valence.push(None);
                        self.ion_index.insert(u.ion.clone(), self.ions.len() - 1);
                        self.ions.len() - 1
                    }
                };
                if let Some(z) = u.valence {
                    self.declare_valence(id, z, &info.name);
                }
                ion_ids.push(id);
            }
            let (kind, weights) = (info.kind, info.weights);
            let batch = mech.batches_events();
            let shares_weights = mech.weights_read_only();
            self.mechs[k] = Some(MechSlot {
                mech,
                ion_ids,
                kind,
                batch,
                pending: Vec::new(),
                weights,
                shares_weights,
                last_row: u32::MAX,
            });
        }
        self.mechs[k].as_mut().unwrap()
    }

    /// A mechanism's VALENCE for species `id`: it fixes the charge of a species other than na, k and ca; it
    /// must agree with NEURON's charge of those and with every other declaration.
    fn declare_valence(&mut self, id: usize, z: f64, mechanism: &str) {
        let name = self.ions[id].name.clone();
        let previous = if builtin_species(&name) {
            Some((default_species(&name).0, "NEURON".to_string()))
        } else {
            self.valence[id].clone()
        };
        match previous {
            Some((c, by)) if c != z => {
                self.valence_error.get_or_insert(SolverError::Invalid(format!(
                    "ion {name}: mechanism {mechanism} declares VALENCE {z}, but its charge is {c} (from {by})"
                )));
            }
            Some(_) => {}
            None => {
                self.ions[id].charge = z;
                self.valence[id] = Some((z, mechanism.to_string()));
            }
        }
    }

    /// Ion instance of species `ion_id` at group node `node`, created with the cell's settings for `section`.
    fn ion_instance(&mut self, ion_id: usize, node: u32, cell: &CableCell, section: usize) -> u32 {
        if let Some(&i) = self.ion_at.get(&(ion_id, node)) {
            return i;
        }
        let name = self.ions[ion_id].name.clone();
        let (_, mut erev, mut ci, mut co) = default_species(&name);
        for s in cell.ions.iter().filter(|s| s.section == section && s.ion == name) {
            erev = s.erev.unwrap_or(erev);
            ci = s.conc_in.unwrap_or(ci);
            co = s.conc_out.unwrap_or(co);
        }
        let i = self.ions[ion_id].push(node, erev, ci, co);
        self.ion_styles[ion_id].push(IonStyle::default());
        self.ion_at.insert((ion_id, node), i);
        i
    }

    #[allow(clippy::too_many_arguments)]
    fn add_instance(
        &mut self,
        k: usize,
        node: u32,
        scale: f64,
        cell_index: usize,
        at: Option<(&CableCell, usize)>,
        geometry: (f64, f64),
        params: &[f64],
    ) -> u32 {
        let ion_ids = self.slot(k).ion_ids.clone();
        let mut ions = Vec::with_capacity(ion_ids.len());
        if let Some((c, section)) = at {
            let cat = self.catalogue;
            let uses = &cat.get_index(k).ions;
            for (u, id) in uses.iter().zip(ion_ids) {
                let i = self.ion_instance(id, node, c, section);
                let style = &mut self.ion_styles[id][i as usize];
                *style = style.promote(u.style());
                ions.push(i);
            }
        }
        let site = Site { node, scale, ions, cell: cell_index as u32, area: geometry.0, diam: geometry.1 };
        let slot = self.slot(k);
        let instance = slot.mech.len() as u32;
        slot.mech.add_instance(&site, params);
        if slot.kind != MechanismKind::Density {
            self.owner.entry(k).or_default().push(cell_index as u32);
        }
        instance
    }

    fn place_cable(&mut self, ci: usize, cell: &CableCell, comp: &Compartments, map: &[u32]) {
        for p in &cell.density {
            let k = self.catalogue.index(&p.mechanism).unwrap();
            let cat = self.catalogue;
            let info = cat.get(&p.mechanism).unwrap();
            let given = resolve_params(info, p.params.iter().map(|(k, v)| (k, v))).unwrap();
            let sn = comp.sections[p.section];
            for j in 0..sn.nseg {
                let mut params = info.defaults();
                for (idx, v) in &given {
                    params[*idx] = v.at(j as usize);
                }
                let local = (sn.first + j) as usize;
                self.density.push(PendingDensity {
                    mech: k,
                    node: map[local],
                    cell: ci,
                    section: p.section,
                    geometry: (comp.area[local], comp.diam[local]),
                    params,
                });
            }
        }
        let t0 = self.targets.len() as u32;
        for p in &cell.points {
            let k = self.catalogue.index(&p.mechanism).unwrap();
            let cat = self.catalogue;
            let info = cat.get(&p.mechanism).unwrap();
            let mut params = info.defaults();
            for (idx, v) in resolve_params(info, p.params.iter().map(|(k, v)| (k, v))).unwrap() {
                params[idx] = *v;
            }
            let local = comp.node_at(p.location.section, p.location.x) as usize;
            let scale = 1e2 / matrix_area(comp.area[local]);
            let section = comp.section[local] as usize;
            let geometry = (comp.area[local], comp.diam[local]);
            let instance = self.add_instance(k, map[local], scale, ci, Some((cell, section)), geometry, &params);
            self.targets.push(Target { mech: k as u32, instance });
        }
        self.cell_targets.push(t0..self.targets.len() as u32);
        let d0 = self.detectors.len() as u32;
        for (di, det) in cell.detectors.iter().enumerate() {
            let node = map[comp.node_at(det.location.section, det.location.x) as usize];
            self.detectors.push(DetectorState {
                cell: ci as u32,
                source: di as u32,
                node,
                threshold: det.threshold,
                above: false,
                v_prev: 0.0,
            });
        }
        self.cell_detectors.push(d0..self.detectors.len() as u32);
    }

    /// Place the density instances of all cells, each mechanism's in node order: a mechanism's instances then
    /// walk the group's arrays forwards, in runs of consecutive nodes where it covers whole levels (one instance
    /// per node and mechanism, so the order changes no sum).
    fn place_density(&mut self, cells: &[CellDescription]) {
        let mut pending = std::mem::take(&mut self.density);
        pending.sort_by_key(|p| p.node);
        for p in pending {
            let CellDescription::Cable(cell) = &cells[p.cell] else { unreachable!("density on a cable cell") };
            self.add_instance(p.mech, p.node, 1.0, p.cell, Some((cell, p.section)), p.geometry, &p.params);
        }
    }

    fn place_artificial(&mut self, ci: usize, cell: &ArtificialCell) -> Result<(), SolverError> {
        let k = self.catalogue.index(&cell.mechanism).ok_or_else(|| SolverError::UnknownMechanism {
            name: cell.mechanism.clone(),
            context: format!("cell {ci}"),
        })?;
        let cat = self.catalogue;
        let info = cat.get(&cell.mechanism).unwrap();
        if info.kind != MechanismKind::Artificial {
            return Err(SolverError::WrongKind {
                mechanism: info.name.clone(),
                actual: info.kind.as_str(),
                expected: "artificial cell",
            });
        }
        let mut params = info.defaults();
        for (idx, v) in resolve_params(info, cell.params.iter().map(|(k, v)| (k, v)))? {
            params[idx] = *v;
        }
        let instance = self.add_instance(k, 0, 0.0, ci, None, (0.0, 0.0), &params);
        for (name, values) in &cell.arrays {
            self.slot(k).mech.set_array(instance as usize, name, values).map_err(|e| err_cell(ci, e))?;
        }
        let t0 = self.targets.len() as u32;
        self.targets.push(Target { mech: k as u32, instance });
        self.cell_targets.push(t0..t0 + 1);
        let d0 = self.detectors.len() as u32;
        self.cell_detectors.push(d0..d0);
        Ok(())
    }
}

pub(super) fn build(
    cells: &[CellDescription],
    catalogue: &Catalogue,
    opts: SimOptions,
) -> Result<CellGroup, SolverError> {
    if !(opts.dt > 0.0 && opts.dt.is_finite()) {
        return Err(SolverError::Option(format!("dt must be positive, got {}", opts.dt)));
    }
    if !opts.celsius.is_finite() {
        return Err(SolverError::Option(format!("celsius must be finite, got {}", opts.celsius)));
    }
    for (ci, c) in cells.iter().enumerate() {
        if let CellDescription::Cable(c) = c {
            check_cable(ci, c, catalogue)?;
        }
    }
    let cj = match opts.method {
        Method::BackwardEuler => 1.0 / opts.dt,
        Method::CrankNicolson => 2.0 / opts.dt,
    };
    let lay = layout(cells);
    let n = lay.n_nodes;

    // Node arrays in layout order.
    let mut parent = vec![0u32; n];
    let (mut a, mut b, mut d_static) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let (mut area, mut cap) = (vec![0.0; n], vec![0.0; n]);
    let (mut position, mut distance) = if opts.geometry { (vec![[0.0; 3]; n], vec![0.0; n]) } else { (vec![], vec![]) };
    let mut sections = Vec::new();
    let mut cell_section_offset = vec![0u32];
    let mut compartments = 0;
    for (ci, comp) in lay.comps.iter().enumerate() {
        if let (Some(comp), CellDescription::Cable(cell)) = (comp, &cells[ci]) {
            let map = &lay.node_map[lay.cell_node_offset[ci] as usize..lay.cell_node_offset[ci + 1] as usize];
            let (ca, cb) = coupling(comp);
            for i in 0..comp.len() {
                let g = map[i] as usize;
                if comp.has_membrane(i) {
                    cap[g] = 1e-3 * cj * cell.cm[comp.section[i] as usize];
                }
                d_static[g] += cap[g];
                area[g] = comp.area[i];
                if comp.parent[i] == NO_PARENT {
                    parent[g] = g as u32;
                } else {
                    let p = map[comp.parent[i] as usize] as usize;
                    parent[g] = p as u32;
                    a[g] = ca[i];
                    b[g] = cb[i];
                    d_static[g] -= cb[i];
                    d_static[p] -= ca[i];
                }
                if opts.geometry {
                    position[g] = comp.position[i];
                    distance[g] = comp.distance[i];
                }
            }
            compartments += comp.compartment_count();
            sections.extend(comp.sections.iter().copied());
        }
        cell_section_offset.push(sections.len() as u32);
    }
    let levels = crate::cable::Levels::new(&parent, lay.levels);

    let mut bld = Builder {
        catalogue,
        mechs: (0..catalogue.len()).map(|_| None).collect(),
        ion_index: HashMap::new(),
        ions: Vec::new(),
        ion_at: HashMap::new(),
        ion_styles: Vec::new(),
        valence: Vec::new(),
        valence_error: None,
        targets: Vec::new(),
        cell_targets: Vec::new(),
        detectors: Vec::new(),
        cell_detectors: Vec::new(),
        owner: HashMap::new(),
        density: Vec::new(),
    };
    for (mech, global, value) in &opts.globals {
        let k = catalogue
            .index(mech)
            .ok_or_else(|| SolverError::UnknownMechanism { name: mech.clone(), context: format!("global {global}") })?;
        let gi = catalogue
            .get(mech)
            .unwrap()
            .global_index(global)
            .ok_or_else(|| SolverError::Option(format!("mechanism {mech:?} has no global {global:?}")))?;
        bld.slot(k).mech.set_global(gi, *value);
    }
    for (ci, cell) in cells.iter().enumerate() {
        match cell {
            CellDescription::Cable(c) => {
                let map = &lay.node_map[lay.cell_node_offset[ci] as usize..lay.cell_node_offset[ci + 1] as usize];
                bld.place_cable(ci, c, lay.comps[ci].as_ref().unwrap(), map);
            }
            CellDescription::Artificial(a) => bld.place_artificial(ci, a)?,
        }
    }
    bld.place_density(cells);

    // Keep the mechanism types in use (or configured by a global), in catalogue order.
    let Builder {
        mechs,
        mut ions,
        ion_styles,
        valence_error,
        targets,
        cell_targets,
        detectors,
        cell_detectors,
        mut owner,
        ..
    } = bld;
    if let Some(e) = valence_error {
        return Err(e);
    }
    for (ion, styles) in ions.iter_mut().zip(&ion_styles) {
        for (i, &style) in styles.iter().enumerate() {
            ion.set_style(i, style);
        }
    }
    let mut renumber = vec![u32::MAX; mechs.len()];
    let mut slots = Vec::new();
    let mut owners = Vec::new();
    for (k, m) in mechs.into_iter().enumerate() {
        if let Some(m) = m {
            if m.mech.is_empty() && !opts.globals.iter().any(|(name, ..)| *name == m.mech.info().name) {
                continue;
            }
            renumber[k] = slots.len() as u32;
            owners.push(owner.remove(&k).unwrap_or_default());
            let mut m = m;
            m.mech.shrink_to_fit();
            slots.push(m);
        }
    }
    let targets = targets.iter().map(|t| Target { mech: renumber[t.mech as usize], instance: t.instance }).collect();
    for ion in ions.iter_mut() {
        ion.shrink_to_fit();
    }
    let imem = opts.membrane_current.then(|| MembraneCurrent {
        el_rhs: vec![0.0; n],
        el_d: vec![0.0; n],
        ionic: vec![0.0; n],
        gmem: vec![0.0; n],
        cap: cap.clone(),
        value: vec![0.0; n],
    });
    let ion_init = ions.iter().map(|i| (i.erev.clone(), i.conc_in.clone(), i.conc_out.clone())).collect();
    let queue = queue::EventQueue::new(opts.dt, opts.delivery_rule);
    let mut group = CellGroup {
        opts,
        step: 0,
        v: vec![0.0; n],
        rhs: vec![],
        d: vec![],
        d_static,
        a,
        b,
        parent,
        area,
        levels,
        node_map: lay.node_map,
        cell_node_offset: lay.cell_node_offset,
        sections,
        cell_section_offset,
        compartments,
        imem,
        imem_now: true,
        position,
        distance,
        mechs: slots,
        ions,
        ion_init,
        targets,
        cell_targets,
        conn_target: vec![],
        conn_key: vec![],
        key_runs: vec![],
        conn_row: vec![],
        rows: vec![],
        row_index: HashMap::new(),
        row_key: vec![],
        own_rows: std::collections::HashSet::new(),
        queue,
        self_events: vec![],
        free_self_events: vec![],
        seq: 0,
        batch_instances: vec![],
        batch_weights: vec![],
        outbox: Outbox::default(),
        detectors,
        cell_detectors,
        owner: owners,
        pending_spikes: vec![],
    };
    group.initialize(crate::DEFAULT_V_INIT)?;
    Ok(group)
}
