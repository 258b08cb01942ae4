//! `measure_distances`: U and V arc distances of every soma from the volume origin, written to
//! `Arc Distances` (`U Distance`, `V Distance`, with the `Reference U/V Min/Max` group attributes) of
//! `distances.h5`.

use serde::{Deserialize, Serialize};

use super::{architecture, create_with_types, io_err, used, IoOptions};
use crate::algo::geometry::DistanceFrame;
use crate::error::{JobError, Result};
use crate::job::{Job, Launched, RunContext};
use crate::kinds::architecture::NetworkArchitecture;
use crate::store::JobRef;
use miv_config::{CellDistributions, LayerExtents, Origin, Rotation};
use miv_io::names::{
    ARC_DISTANCES, L_COORD, REFERENCE_U_MAX, REFERENCE_U_MIN, REFERENCE_V_MAX, REFERENCE_V_MIN, U_COORD, U_DISTANCE,
    V_COORD, V_DISTANCE,
};
use miv_io::{CellAttributes, NeuroH5File, Selection};
use miv_partition::Assignment;

pub const OUTPUT: &str = "distances.h5";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasureDistances {
    /// The `network_architecture` job (set with `.uses(&architecture)`).
    #[serde(default)]
    pub architecture: Option<JobRef>,
    pub cell_distributions: CellDistributions,
    pub layer_extents: LayerExtents,
    #[serde(default)]
    pub rotation: Rotation,
    #[serde(default)]
    pub origin: Origin,
    #[serde(default)]
    pub populations: Option<Vec<String>>,
    #[serde(default = "default_namespace")]
    pub coordinate_namespace: String,
    #[serde(default)]
    pub io: IoOptions,
}

fn default_namespace() -> String {
    miv_io::names::GENERATED_COORDINATES.to_string()
}

impl MeasureDistances {
    /// The distance job of an architecture, with the architecture's geometry (MiV's
    /// `network.measure_distances()`).
    pub fn of(arch: &Launched<NetworkArchitecture>) -> MeasureDistances {
        let a = &arch.job;
        MeasureDistances {
            architecture: Some(arch.job_ref()),
            cell_distributions: a.cell_distributions.clone(),
            layer_extents: a.layer_extents.clone(),
            rotation: a.rotation,
            origin: Origin::default(),
            populations: a.populations.clone(),
            coordinate_namespace: a.coordinate_namespace.clone(),
            io: a.io.clone(),
        }
    }

    pub fn origin(mut self, origin: Origin) -> Self {
        self.origin = origin;
        self
    }

    pub fn uses(mut self, arch: &Launched<NetworkArchitecture>) -> Self {
        self.architecture = Some(arch.job_ref());
        self
    }
}

impl Job for MeasureDistances {
    const KIND: &'static str = "measure_distances";

    fn science(&self) -> Self {
        MeasureDistances { io: IoOptions::default(), ..self.clone() }
    }

    fn uses(&self) -> Vec<JobRef> {
        self.architecture.iter().cloned().collect()
    }

    fn run(&self, ctx: &RunContext) -> Result<()> {
        let comm = ctx.comm;
        let arch = used(&self.architecture, Self::KIND, "network_architecture")?;
        let coords_file = ctx.input(&arch)?.join(architecture::OUTPUT);
        let frame = DistanceFrame::new(&self.layer_extents, self.origin);
        let [(umin, umax), (vmin, vmax)] = frame.reference_ranges();
        ctx.progress(format_args!("origin ({:.3}, {:.3}, {:.3})", frame.origin[0], frame.origin[1], frame.origin[2]));
        let out = create_with_types(&ctx.output(OUTPUT), &coords_file, comm)?;
        let input = NeuroH5File::open(&coords_file, comm).map_err(io_err)?;
        let assignment = Assignment::round_robin(comm.size());
        for pop in self.cell_distributions.keys() {
            if self.populations.as_ref().is_some_and(|p| !p.contains(pop)) {
                continue;
            }
            let coords = input
                .read_cell_attributes(
                    pop,
                    &self.coordinate_namespace,
                    &Selection::IoRanks { assignment: &assignment, io_size: comm.size() },
                    Some(&[U_COORD, V_COORD, L_COORD]),
                )
                .map_err(io_err)?;
            let mut cells = CellAttributes::new();
            let local: Result<()> = (|| {
                for gid in coords.gids() {
                    let get = |name: &str| coords.get::<f32>(name, gid).and_then(|v| v.first().copied()).map(f64::from);
                    let (Some(u), Some(v), Some(l)) = (get(U_COORD), get(V_COORD), get(L_COORD)) else {
                        return Err(JobError::Cell {
                            population: pop.clone(),
                            gid,
                            message: "missing U/V/L Coordinate".into(),
                        });
                    };
                    let Some((du, dv)) = frame.distances([u, v, l]) else {
                        return Err(JobError::Cell {
                            population: pop.clone(),
                            gid,
                            message: format!("soma ({u}, {v}, {l}) lies outside the layer extents"),
                        });
                    };
                    cells.push(U_DISTANCE, gid, &[du as f32]).map_err(io_err)?;
                    cells.push(V_DISTANCE, gid, &[dv as f32]).map_err(io_err)?;
                }
                Ok(())
            })();
            ctx.agree(local)?;
            out.append_cell_attributes(pop, ARC_DISTANCES, &cells, &self.io.write_options()).map_err(io_err)?;
            for (name, value) in
                [(REFERENCE_U_MIN, umin), (REFERENCE_U_MAX, umax), (REFERENCE_V_MIN, vmin), (REFERENCE_V_MAX, vmax)]
            {
                out.set_namespace_attribute(pop, ARC_DISTANCES, name, value).map_err(io_err)?;
            }
        }
        out.finish().map_err(io_err)?;
        Ok(())
    }
}
