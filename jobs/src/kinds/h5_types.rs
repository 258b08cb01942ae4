//! `h5_types`: the population table (names, enum indices, gid ranges) and the valid projections, written as
//! `/H5Types` of `neuro.h5`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::io_err;
use crate::error::{JobError, Result};
use crate::job::{Job, RunContext};
use crate::store::JobRef;
use miv_config::{CellDistributions, PopulationDefinitions};
use miv_io::{NeuroH5File, PopulationRanges};

pub const OUTPUT: &str = "neuro.h5";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct H5Types {
    /// `{population: {layer: count}}`: a population's count is the sum over its layers.
    pub cell_distributions: CellDistributions,
    /// `{postsynaptic population: [presynaptic populations]}`.
    pub projections: BTreeMap<String, Vec<String>>,
    /// `{population: enum index}`; populations are numbered in index order, gids follow that order.
    pub population_definitions: PopulationDefinitions,
}

impl H5Types {
    /// The population table: (name, index, count) in index order, with gid starts as running sums.
    pub fn ranges(&self) -> Result<PopulationRanges> {
        let mut rows: Vec<(&str, u16, u64)> = Vec::new();
        for (name, &index) in &self.population_definitions {
            let Some(layers) = self.cell_distributions.get(name) else {
                return Err(JobError::invalid(
                    Self::KIND,
                    format!("population_definitions.{name}"),
                    "population has no cell_distributions entry",
                ));
            };
            rows.push((name, index, layers.values().map(|&c| c as u64).sum()));
        }
        for name in self.cell_distributions.keys() {
            if !self.population_definitions.contains_key(name) {
                return Err(JobError::invalid(
                    Self::KIND,
                    format!("cell_distributions.{name}"),
                    "population has no population_definitions entry",
                ));
            }
        }
        PopulationRanges::from_counts(&rows).map_err(io_err)
    }

    /// Valid (source, destination) pairs, by destination then in the order listed.
    pub fn valid_projections(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for (post, pres) in &self.projections {
            for pre in std::iter::once(post).chain(pres) {
                if !self.population_definitions.contains_key(pre) {
                    return Err(JobError::invalid(
                        Self::KIND,
                        format!("projections.{post}"),
                        format!("population `{pre}` is not defined"),
                    ));
                }
            }
            out.extend(pres.iter().map(|pre| (pre.clone(), post.clone())));
        }
        Ok(out)
    }
}

impl Job for H5Types {
    const KIND: &'static str = "h5_types";

    fn uses(&self) -> Vec<JobRef> {
        Vec::new()
    }

    fn run(&self, ctx: &RunContext) -> Result<()> {
        let types = ctx
            .agree((|| Ok(miv_io::H5Types { populations: self.ranges()?, projections: self.valid_projections()? }))())?;
        let f = NeuroH5File::create(ctx.output(OUTPUT), ctx.comm).map_err(io_err)?;
        f.write_h5types(&types).map_err(io_err)?;
        f.finish().map_err(io_err)?;
        for p in types.populations.iter() {
            ctx.progress(format_args!("{} gids {}..{}", p.name, p.start, p.start + p.count));
        }
        Ok(())
    }
}
