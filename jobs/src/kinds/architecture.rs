//! `network_architecture`: soma positions of every population, quasi-uniform inside each layer box, written
//! to `Generated Coordinates` (`X/Y/Z Coordinate`, `U/V/L Coordinate`) of `coordinates.h5`.
//!
//! Each (population, layer) block is placed by one rank (blocks dealt round-robin) from its own stream, the
//! points are gathered, and each population's points are sorted by U (then V, L) and numbered from the
//! population's first gid, as MiV numbers them.

use serde::{Deserialize, Serialize};

use super::{create_with_types, io_err, used, IoOptions};
use crate::algo::geometry::{rotation_matrix, to_xyz};
use crate::algo::placement::{place_in_box, Dispersion};
use crate::error::{JobError, Result};
use crate::job::{Job, Launched, RunContext};
use crate::kinds::h5_types::{self, H5Types};
use crate::store::JobRef;
use miv_config::{CellConstraints, CellDistributions, LayerExtents, Rotation};
use miv_io::names::GENERATED_COORDINATES;
use miv_io::CellAttributes;
use miv_partition::{Assignment, Purpose, Stream};

pub const OUTPUT: &str = "coordinates.h5";
pub const SOMA_LOCATIONS: Purpose = Purpose::named("soma locations");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkArchitecture {
    /// The `h5_types` job (set with `.uses(&types)`).
    #[serde(default)]
    pub h5_types: Option<JobRef>,
    pub cell_distributions: CellDistributions,
    pub layer_extents: LayerExtents,
    #[serde(default)]
    pub rotation: Rotation,
    /// `{population: {layer: [l_min, l_max]}}`.
    #[serde(default)]
    pub cell_constraints: CellConstraints,
    /// Only these populations (all when absent).
    #[serde(default)]
    pub populations: Option<Vec<String>>,
    #[serde(default = "default_namespace")]
    pub coordinate_namespace: String,
    /// Repulsion iterations.
    #[serde(default = "default_nodeiter")]
    pub nodeiter: u32,
    /// Repulsion step as a fraction of the mean spacing.
    #[serde(default = "default_dispersion_delta")]
    pub dispersion_delta: f64,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub io: IoOptions,
}

fn default_namespace() -> String {
    GENERATED_COORDINATES.to_string()
}
fn default_nodeiter() -> u32 {
    10
}
fn default_dispersion_delta() -> f64 {
    0.1
}

impl NetworkArchitecture {
    pub fn new(cell_distributions: CellDistributions, layer_extents: LayerExtents) -> NetworkArchitecture {
        NetworkArchitecture {
            h5_types: None,
            cell_distributions,
            layer_extents,
            rotation: [0.0; 3],
            cell_constraints: CellConstraints::new(),
            populations: None,
            coordinate_namespace: default_namespace(),
            nodeiter: default_nodeiter(),
            dispersion_delta: default_dispersion_delta(),
            seed: 0,
            io: IoOptions::default(),
        }
    }

    pub fn uses(mut self, types: &Launched<H5Types>) -> Self {
        self.h5_types = Some(types.job_ref());
        self
    }

    /// The box a population's somata in `layer` occupy (the layer box, narrowed in L by a constraint).
    fn layer_box(&self, pop: &str, layer: &str) -> Result<([f64; 3], [f64; 3])> {
        let e = self.layer_extents.get(layer).ok_or_else(|| {
            JobError::invalid(
                Self::KIND,
                format!("cell_distributions.{pop}.{layer}"),
                format!("layer `{layer}` has no layer_extents entry"),
            )
        })?;
        let (mut lo, mut hi) = (e.min(), e.max());
        if let Some([a, b]) = self.cell_constraints.get(pop).and_then(|c| c.get(layer)) {
            lo[2] = lo[2].max(*a);
            hi[2] = hi[2].min(*b);
            if lo[2] > hi[2] {
                return Err(JobError::invalid(
                    Self::KIND,
                    format!("cell_constraints.{pop}.{layer}"),
                    format!("[{a}, {b}] does not overlap layer {layer}"),
                ));
            }
        }
        Ok((lo, hi))
    }

    /// The (population, layer, count) blocks to place, in a fixed order.
    fn blocks(&self) -> Vec<(String, String, u32)> {
        let mut out = Vec::new();
        for (pop, layers) in &self.cell_distributions {
            if self.populations.as_ref().is_some_and(|p| !p.contains(pop)) {
                continue;
            }
            for (layer, &n) in layers {
                if n > 0 {
                    out.push((pop.clone(), layer.clone(), n));
                }
            }
        }
        out
    }
}

impl Job for NetworkArchitecture {
    const KIND: &'static str = "network_architecture";

    fn science(&self) -> Self {
        NetworkArchitecture { io: IoOptions::default(), ..self.clone() }
    }

    fn uses(&self) -> Vec<JobRef> {
        self.h5_types.iter().cloned().collect()
    }

    fn run(&self, ctx: &RunContext) -> Result<()> {
        let comm = ctx.comm;
        let types = used(&self.h5_types, Self::KIND, "h5_types")?;
        let types_file = ctx.input(&types)?.join(h5_types::OUTPUT);
        let blocks = self.blocks();
        let boxes = ctx.agree(blocks.iter().map(|(p, l, _)| self.layer_box(p, l)).collect::<Result<Vec<_>>>())?;
        let dispersion = Dispersion { iterations: self.nodeiter, delta: self.dispersion_delta };

        // This rank's blocks, as [block, u, v, l] rows.
        let mut mine: Vec<[f64; 4]> = Vec::new();
        for (b, ((pop, layer, n), (lo, hi))) in blocks.iter().zip(&boxes).enumerate() {
            if b % comm.size() != comm.rank() {
                continue;
            }
            let key = Purpose::named(&format!("{pop}/{layer}"));
            let mut stream = Stream::new(self.seed, SOMA_LOCATIONS, key.0);
            for p in place_in_box(*n as usize, *lo, *hi, dispersion, &mut stream) {
                mine.push([b as f64, p[0], p[1], p[2]]);
            }
        }
        let (all, _) = comm.allgatherv(&mine);
        ctx.progress(format_args!("placed {} somata in {} layer blocks", all.len(), blocks.len()));

        let out = create_with_types(&ctx.output(OUTPUT), &types_file, comm)?;
        let ranges = out.population_ranges().map_err(io_err)?;
        let rot = rotation_matrix(self.rotation);
        let assignment = Assignment::round_robin(comm.size());
        let mut pops: Vec<&String> = self.cell_distributions.keys().collect();
        pops.retain(|p| self.populations.as_ref().is_none_or(|s| s.contains(p)));
        for pop in pops {
            let range = ctx.agree(ranges.get(pop).map(|p| p.range()).ok_or_else(|| {
                JobError::invalid(
                    Self::KIND,
                    format!("cell_distributions.{pop}"),
                    "population is not in the h5_types job's /H5Types",
                )
            }))?;
            let mut pts: Vec<[f64; 3]> =
                all.iter().filter(|r| blocks[r[0] as usize].0 == *pop).map(|r| [r[1], r[2], r[3]]).collect();
            ctx.agree(if pts.len() as u64 == range.end - range.start {
                Ok(())
            } else {
                Err(JobError::invalid(
                    Self::KIND,
                    format!("cell_distributions.{pop}"),
                    format!("{} cells placed but /H5Types has {}", pts.len(), range.end - range.start),
                ))
            })?;
            pts.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])).then(a[2].total_cmp(&b[2])));
            let mut cells = CellAttributes::new();
            for gid in assignment.gids_of(comm.rank(), std::slice::from_ref(&range)) {
                let uvl = pts[(gid - range.start) as usize];
                let xyz = to_xyz(&rot, uvl);
                let push =
                    |cells: &mut CellAttributes, name: &str, v: f64| cells.push(name, gid, &[v as f32]).map_err(io_err);
                let r: Result<()> = (|| {
                    for (name, v) in [("X Coordinate", xyz[0]), ("Y Coordinate", xyz[1]), ("Z Coordinate", xyz[2])] {
                        push(&mut cells, name, v)?;
                    }
                    for (name, v) in [("U Coordinate", uvl[0]), ("V Coordinate", uvl[1]), ("L Coordinate", uvl[2])] {
                        push(&mut cells, name, v)?;
                    }
                    Ok(())
                })();
                r?;
            }
            out.append_cell_attributes(pop, &self.coordinate_namespace, &cells, &self.io.write_options())
                .map_err(io_err)?;
            ctx.checkpoint(pop)?;
        }
        out.finish().map_err(io_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use miv_config::LayerExtent;

    fn arch() -> NetworkArchitecture {
        let d: CellDistributions = [("PVBC".to_string(), [("SO".to_string(), 3), ("SP".to_string(), 0)].into())].into();
        let e: LayerExtents = [
            ("SO".to_string(), LayerExtent([[0.0, 0.0, 0.0], [200.0, 200.0, 5.0]])),
            ("SP".to_string(), LayerExtent([[0.0, 0.0, 5.0], [200.0, 200.0, 50.0]])),
        ]
        .into();
        NetworkArchitecture::new(d, e)
    }

    #[test]
    fn empty_layers_are_skipped_and_constraints_narrow_depth() {
        let mut a = arch();
        assert_eq!(a.blocks(), vec![("PVBC".to_string(), "SO".to_string(), 3)]);
        assert_eq!(a.layer_box("PVBC", "SO").unwrap(), ([0.0, 0.0, 0.0], [200.0, 200.0, 5.0]));
        a.cell_constraints = [("PVBC".to_string(), [("SO".to_string(), [2.0, 9.0])].into())].into();
        assert_eq!(a.layer_box("PVBC", "SO").unwrap(), ([0.0, 0.0, 2.0], [200.0, 200.0, 5.0]));
        a.cell_constraints = [("PVBC".to_string(), [("SO".to_string(), [7.0, 9.0])].into())].into();
        let e = a.layer_box("PVBC", "SO").unwrap_err().to_string();
        assert!(e.contains("cell_constraints.PVBC.SO") && e.contains("does not overlap"), "{e}");
        assert!(a.layer_box("PVBC", "SR").unwrap_err().to_string().contains("cell_distributions.PVBC.SR"));
    }

    #[test]
    fn io_tuning_is_not_part_of_the_identity_but_the_seed_is() {
        let a = arch();
        let mut b = a.clone();
        b.io.write_size = 7;
        b.io.chunk_size = 99;
        assert_eq!(crate::job::job_id(&a), crate::job::job_id(&b));
        b.seed = 1;
        assert_ne!(crate::job::job_id(&a), crate::job::job_id(&b));
    }
}
