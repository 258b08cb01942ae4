//! Network cell templates (`miv run`, docs/templates.md) and MiV's default spike detector.

use super::*;

/// A cell template: the biophysics of every cell of a population, applied to each cell's morphology.
#[derive(Debug)]
pub struct CellTemplate {
    pub name: String,
    file: String,
    y: TemplateYaml,
}

impl CellTemplate {
    /// Read `<dir>/<name>.yaml`.
    pub fn load(dir: &Path, name: &str) -> Result<CellTemplate, ModelError> {
        let path = dir.join(format!("{name}.yaml"));
        let file = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| ModelError {
            file: file.clone(),
            key: "(file)".into(),
            message: format!("cannot read the template of {name}: {e}"),
        })?;
        CellTemplate::parse(name, &text, &file)
    }

    pub fn parse(name: &str, text: &str, file: &str) -> Result<CellTemplate, ModelError> {
        let cx = Ctx { file };
        let y: TemplateYaml = cx.parse_yaml(text)?;
        if let Some(c) = y.celsius {
            if !c.is_finite() {
                return Err(cx.err("celsius", "must be a number (degC)"));
            }
        }
        Ok(CellTemplate { name: name.into(), file: file.into(), y })
    }

    /// The temperature the template asks for, if any.
    pub fn celsius(&self) -> Option<f64> {
        self.y.celsius
    }

    /// Build a cell of this template on `morphology`. Without `detectors`, the spike source follows MiV's
    /// `init_spike_detector`: the first axon segment at least 100 um from the root, else the last axon section's
    /// end, else `ais[0](0.5)`, else the last soma section's middle, with threshold `spike_threshold`.
    pub fn build(&self, morphology: Morphology, catalogue: &Catalogue) -> Result<(CableCell, Vec<String>), ModelError> {
        self.build_with(morphology, catalogue, None)
    }

    /// [`build`](Self::build), with the population's `cell_types.yml` discretisation used when the template
    /// has none (so synapse placement by the construction jobs and simulation see the same segments).
    pub fn build_with(
        &self,
        morphology: Morphology,
        catalogue: &Catalogue,
        fallback: Option<&miv_config::Discretization>,
    ) -> Result<(CableCell, Vec<String>), ModelError> {
        let cx = Ctx { file: &self.file };
        let mut morphology = morphology;
        if self.y.swap_xy {
            for sec in &mut morphology.sections {
                if let miv_solvers::Geometry::Points(points) = &mut sec.geometry {
                    points.iter_mut().for_each(|p| std::mem::swap(&mut p.x, &mut p.y));
                }
            }
        }
        let mut cell = CableCell::new(morphology).map_err(|e| cx.err("(morphology)", e.to_string()))?;
        let y = &self.y;
        let from_cell_types = fallback.map(|d| {
            DiscretizationSpec::One(DiscretizationYaml {
                region: None,
                nseg: d.nseg.map(|n| n as usize),
                d_lambda: d.d_lambda,
                frequency: d.frequency,
                ra: d.d_lambda.map(|_| d.ra),
                cm: d.d_lambda.map(|_| d.cm),
            })
        });
        let bio = Biophysics {
            discretization: y.discretization.as_ref().or(from_cell_types.as_ref()),
            properties: &y.properties,
            mechanisms: &y.mechanisms,
            ions: &y.ions,
            point_processes: &y.point_processes,
            detectors: &y.detectors,
        };
        let applied = apply_biophysics(&cx, &mut cell, &bio, catalogue, &[])?;
        if let Some(r) = y.miv_init_cable {
            if !(r.d_lambda > 0.0 && r.frequency > 0.0) {
                return Err(cx.err("miv_init_cable", "d_lambda and frequency must be positive"));
            }
            let comp = cell.compartments();
            let nseg: Vec<usize> = (0..cell.section_count())
                .map(|s| {
                    let sec = comp.sections[s];
                    let n = sec.nseg as usize;
                    let diam = (0..n).map(|j| comp.diam[sec.first as usize + j]).sum::<f64>() / n as f64;
                    let lambda =
                        1e5 * (diam / (4.0 * std::f64::consts::PI * r.frequency * cell.ra[s] * cell.cm[s])).sqrt();
                    ((sec.length / (r.d_lambda * lambda) + 0.9) / 2.0) as usize * 2 + 1
                })
                .collect();
            cell.change_nseg(&nseg);
        }
        if cell.detectors.is_empty() {
            let at = miv_detector_location_with(&cell, y.miv_detector_distance).ok_or_else(|| {
                cx.err(
                    "detectors",
                    "the cell has no axon, ais or soma section for MiV's default spike detector; give `detectors`",
                )
            })?;
            cell.detect(at, y.spike_threshold);
        }
        Ok((cell, applied.point_names))
    }
}

/// MiV's `init_spike_detector` location (see [`CellTemplate::build`]).
pub fn miv_detector_location(cell: &CableCell) -> Option<Location> {
    miv_detector_location_with(cell, false)
}

/// [`miv_detector_location`]; with `miv_distance`, distances as MiV's `get_distance_to_node` computes them:
/// `x L(s)` plus, for every section w on the path from the root to s (s included), the edge's `parent_loc`
/// times L(w), the child's length. MiV's tree stores `parent_loc` 1.0 for every edge (`connect_nodes`'
/// default), so that is `x L(s)` plus the lengths of s and of its ancestors below the root.
pub fn miv_detector_location_with(cell: &CableCell, miv_distance: bool) -> Option<Location> {
    let axons = cell.sections_of_type(swc::AXON);
    if !axons.is_empty() {
        let comp = cell.compartments();
        let secs = &cell.morphology.sections;
        let quirk = |s: usize, x: f64| {
            let mut d = x * secs[s].length();
            let mut w = s;
            while let Some(p) = secs[w].parent {
                d += secs[w].length();
                w = p;
            }
            d
        };
        for &s in &axons {
            let sec = comp.sections[s];
            for j in 0..sec.nseg as usize {
                let node = sec.first as usize + j;
                let d = if miv_distance { quirk(s, comp.x[node]) } else { comp.distance[node] };
                if d >= 100.0 {
                    return Some(Location::new(s, comp.x[node]));
                }
            }
        }
        return Some(Location::new(*axons.last().expect("non-empty"), 1.0));
    }
    if let Some(&s) = cell.sections_of_type(swc::AIS).first() {
        return Some(Location::new(s, 0.5));
    }
    cell.sections_of_type(swc::SOMA).last().map(|&s| Location::new(s, 0.5))
}
