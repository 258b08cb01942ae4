//! `generate_synapse_forest`: one population's morphology, imported from an SWC file (with neuroh5's section
//! contraction) and copied unchanged to every gid of the population, written to `Trees` of `forest.h5`.
//! As in MiV (`neurotrees_copy --fill`), the trees are not moved to the soma positions.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{architecture, create_with_types, io_err, share, used, IoOptions};
use crate::error::{JobError, Result};
use crate::job::{Job, Launched, RunContext};
use crate::kinds::architecture::NetworkArchitecture;
use crate::store::JobRef;

pub const OUTPUT: &str = "forest.h5";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateSynapseForest {
    /// The `network_architecture` job (set with `.uses(&architecture)`).
    #[serde(default)]
    pub architecture: Option<JobRef>,
    pub population: String,
    /// The SWC file. Its content, not its path, is part of the identity.
    pub morphology: PathBuf,
    /// SHA-256 of the SWC file (filled in for the identity).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub morphology_sha256: String,
    #[serde(default)]
    pub io: IoOptions,
}

impl GenerateSynapseForest {
    pub fn new(population: impl Into<String>, morphology: impl Into<PathBuf>) -> GenerateSynapseForest {
        GenerateSynapseForest {
            architecture: None,
            population: population.into(),
            morphology: morphology.into(),
            morphology_sha256: String::new(),
            io: IoOptions::default(),
        }
    }

    pub fn uses(mut self, arch: &Launched<NetworkArchitecture>) -> Self {
        self.architecture = Some(arch.job_ref());
        self
    }
}

/// SHA-256 of a file's content in hex (a marker naming the path when it cannot be read).
pub fn file_sha256(path: &std::path::Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect(),
        Err(_) => format!("unreadable:{}", path.display()),
    }
}

impl Job for GenerateSynapseForest {
    const KIND: &'static str = "generate_synapse_forest";

    fn science(&self) -> Self {
        GenerateSynapseForest {
            morphology: PathBuf::new(),
            morphology_sha256: file_sha256(&self.morphology),
            io: IoOptions::default(),
            ..self.clone()
        }
    }

    fn uses(&self) -> Vec<JobRef> {
        self.architecture.iter().cloned().collect()
    }

    fn run(&self, ctx: &RunContext) -> Result<()> {
        let comm = ctx.comm;
        let arch = used(&self.architecture, Self::KIND, "network_architecture")?;
        let coords_file = ctx.input(&arch)?.join(architecture::OUTPUT);
        let tree = ctx.agree(miv_io::read_swc(&self.morphology).map_err(io_err))?;
        let out = create_with_types(&ctx.output(OUTPUT), &coords_file, comm)?;
        let pop = ctx.agree(
            out.population(&self.population)
                .map_err(|e| JobError::invalid(Self::KIND, "population", format!("`{}`: {e}", self.population))),
        )?;
        ctx.progress(format_args!(
            "{}: {} points in {} sections copied to {} cells",
            self.population,
            tree.num_points(),
            tree.num_sections(),
            pop.count
        ));
        for block in self.io.blocks(pop.range()) {
            let gids = share(comm, &block);
            out.append_trees(&self.population, gids.iter().map(|&g| (g, &tree)), &self.io.write_options())
                .map_err(io_err)?;
            ctx.checkpoint("block")?;
        }
        out.finish().map_err(io_err)?;
        Ok(())
    }
}
