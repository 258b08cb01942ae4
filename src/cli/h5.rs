//! `miv h5 ...`: look into NeuroH5 files (`ls`, `dump`, `edges`), import SWC morphologies (`import-swc`),
//! measure I/O speed (`bench`), and the hidden multi-rank self-tests (`selftest`). The JSON these print is
//! documented in `docs/io.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use miv_io::{CellAttributes, Dtype, NeuroH5File, Projection, Selection, Tree, Values, WriteOptions};
use miv_partition::{Assignment, Communicator, SerialComm};
use serde_json::{json, Value};

use super::{CliError, CliResult};

mod bench;
mod export;
mod synth;

#[derive(Debug, Args)]
pub struct H5Args {
    #[command(subcommand)]
    pub command: H5Command,
}

#[derive(Debug, Subcommand)]
pub enum H5Command {
    /// List populations (gid ranges), namespaces (attributes with dtypes and cell counts) and projections
    /// (edge counts).
    Ls {
        /// A NeuroH5 file (cells.h5 or connections.h5).
        file: PathBuf,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Print the cells of one namespace (one line per cell).
    Dump {
        /// A NeuroH5 cells file.
        file: PathBuf,
        /// Population name (as `miv h5 ls` lists it).
        #[arg(long)]
        population: String,
        /// Cell attribute namespace, e.g. `Generated Coordinates`, `Synapse Attributes`, `Trees`.
        #[arg(long)]
        namespace: String,
        /// Only this gid.
        #[arg(long)]
        gid: Option<u64>,
        /// With `--namespace Trees`: each tree's sections as 0-based point lists (`sections`), its section
        /// edges (`src`, `dst`) and the base its `Section` node ids are stored in (`stored_base`), whichever
        /// base the file uses.
        #[arg(long)]
        topology: bool,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Print the edges of a projection (one line per destination).
    Edges {
        /// A NeuroH5 connections file.
        file: PathBuf,
        /// SOURCE:DESTINATION population names.
        #[arg(long)]
        projection: String,
        /// Edge attribute namespaces to include (default: all).
        #[arg(long = "namespace")]
        namespaces: Vec<String>,
        /// Only this destination gid.
        #[arg(long)]
        gid: Option<u64>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Import an SWC morphology into the `Trees` namespace of a population (neurotrees_import, and with
    /// `--fill` neurotrees_copy --fill).
    ImportSwc {
        /// The SWC morphology to import.
        swc: PathBuf,
        /// The NeuroH5 file to append to (it must have /H5Types, unless --h5types is given).
        #[arg(long)]
        file: PathBuf,
        /// Population to store the tree in.
        #[arg(long)]
        population: String,
        /// Create --file anew with the /H5Types of this file.
        #[arg(long)]
        h5types: Option<PathBuf>,
        /// The gid to store the tree under (default: the population's first gid).
        #[arg(long, conflicts_with = "fill")]
        gid: Option<u64>,
        /// Store the tree under every gid of the population (spread over the ranks).
        #[arg(long)]
        fill: bool,
    },
    /// Write and read a large projection and compare with h5py reading the same datasets.
    Bench(bench::BenchArgs),
    /// Multi-rank I/O self-test on a synthetic network (used by the tests).
    #[command(hide = true)]
    Selftest {
        #[command(subcommand)]
        command: SelftestCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum SelftestCommand {
    /// Write the synthetic network, each rank its round-robin share.
    Write {
        file: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 0)]
        io_size: usize,
        #[arg(long, default_value_t = 7)]
        block_size: u64,
        #[arg(long)]
        deflate: Option<u8>,
    },
    /// Read the synthetic network back and check every value; one JSON line per rank.
    Read {
        file: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, value_enum, default_value_t = ReadMode::Owned)]
        mode: ReadMode,
        #[arg(long, default_value_t = 1)]
        io_size: usize,
    },
    /// Copy every projection of FROM into a new file TO as the jobs do: read destination blocks with
    /// `Selection::Gids` (each rank a contiguous share of the block) and the edge attribute namespaces in
    /// the order given, and append each block; `--passes 2` copies everything twice, so the second pass
    /// appends to projections the file already has.
    Copy {
        from: PathBuf,
        to: PathBuf,
        #[arg(long = "namespace", default_values_t = ["Synapses".to_string(), "Connections".to_string()])]
        namespaces: Vec<String>,
        #[arg(long, default_value_t = 17)]
        block: u64,
        #[arg(long, default_value_t = 1)]
        passes: usize,
    },
    /// Read a whole file with one selection; each rank prints what it received (one JSON line per rank).
    Export {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = ReadMode::Owned)]
        mode: ReadMode,
        #[arg(long, default_value_t = 1)]
        io_size: usize,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReadMode {
    Owned,
    Io,
    All,
    /// Rank r reads the gids whose population-relative index is a multiple of r + 1 (uneven piece counts).
    Strided,
}

/// Errors of collective `NeuroH5File` methods reach every rank (the io crate agrees on them before
/// returning), so they are collective here.
fn io_err(e: miv_io::IoError) -> CliError {
    CliError { message: e.to_string(), collective: true }
}

/// Run `f` on rank 0 only and let every rank agree on its outcome.
fn on_root(comm: &dyn Communicator, f: impl FnOnce() -> CliResult) -> CliResult {
    if comm.size() == 1 {
        return f();
    }
    let r = if comm.rank() == 0 { f() } else { Ok(()) };
    comm.agree(r.map_err(|e| e.message))?;
    Ok(())
}

pub fn run(comm: &dyn Communicator, args: H5Args) -> CliResult {
    match args.command {
        H5Command::Ls { file, json } => on_root(comm, || ls(&file, json)),
        H5Command::Dump { file, population, namespace, gid, topology: true, json } => {
            on_root(comm, || dump_topology(&file, &population, &namespace, gid, json))
        }
        H5Command::Dump { file, population, namespace, gid, topology: false, json } => {
            on_root(comm, || dump(&file, &population, &namespace, gid, json))
        }
        H5Command::Edges { file, projection, namespaces, gid, json } => {
            on_root(comm, || edges(&file, &projection, &namespaces, gid, json))
        }
        H5Command::ImportSwc { swc, file, population, h5types, gid, fill } => {
            import_swc(comm, &swc, &file, &population, h5types.as_deref(), gid, fill)
        }
        H5Command::Bench(a) => bench::run(comm, a),
        H5Command::Selftest { command } => match command {
            SelftestCommand::Write { file, seed, io_size, block_size, deflate } => {
                let opts = WriteOptions { io_size, block_size, deflate, ..WriteOptions::default() };
                selftest_write(comm, &file, seed, &opts).map_err(io_err)
            }
            SelftestCommand::Read { file, seed, mode, io_size } => selftest_read(comm, &file, seed, mode, io_size),
            SelftestCommand::Copy { from, to, namespaces, block, passes } => {
                selftest_copy(comm, &from, &to, &namespaces, block, passes).map_err(io_err)
            }
            SelftestCommand::Export { file, mode, io_size } => export::run(comm, &file, mode, io_size),
        },
    }
}

fn ls(file: &Path, as_json: bool) -> CliResult {
    let comm = SerialComm;
    let f = NeuroH5File::open(file, &comm).map_err(io_err)?;
    let types = f.read_h5types().map_err(io_err)?;
    let mut pops = Vec::new();
    for p in types.populations.iter() {
        let mut nss = Vec::new();
        for ns in f.namespaces(&p.name).map_err(io_err)? {
            let attrs = f.attribute_info(&p.name, &ns).map_err(io_err)?;
            let group_attrs = f.namespace_attributes(&p.name, &ns).map_err(io_err)?;
            nss.push(json!({
                "name": ns,
                "attributes": attrs.iter().map(|a| json!({"name": a.name, "dtype": a.dtype.name(), "cells": a.cells, "values": a.values})).collect::<Vec<_>>(),
                "group_attributes": group_attrs.into_iter().collect::<BTreeMap<_, _>>(),
            }));
        }
        pops.push(json!({"name": p.name, "index": p.index, "start": p.start, "count": p.count, "namespaces": nss}));
    }
    let mut prjs = Vec::new();
    for (src, dst) in f.projection_names().map_err(io_err)? {
        let i = f.projection_info(&src, &dst).map_err(io_err)?;
        prjs.push(json!({
            "source": i.source, "destination": i.destination, "edges": i.edges, "destinations": i.destinations, "blocks": i.blocks,
            "attributes": i.attributes.iter().map(|(ns, n, d)| json!({"namespace": ns, "name": n, "dtype": d.name()})).collect::<Vec<_>>(),
        }));
    }
    let valid: Vec<Value> = types.projections.iter().map(|(s, d)| json!([s, d])).collect();
    if as_json {
        let doc = json!({"file": file.display().to_string(), "populations": pops, "projections": prjs, "valid_projections": valid});
        println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
        return Ok(());
    }
    println!("{}", file.display());
    println!("populations:");
    for p in &pops {
        let (start, count) = (p["start"].as_u64().unwrap_or(0), p["count"].as_u64().unwrap_or(0));
        let last = if count == 0 { "-".to_string() } else { (start + count - 1).to_string() };
        println!(
            "  {:<12} index {:<5} gids {start}..{last} ({count} cells)",
            p["name"].as_str().unwrap_or(""),
            p["index"]
        );
        for ns in p["namespaces"].as_array().into_iter().flatten() {
            println!("    {}", ns["name"].as_str().unwrap_or(""));
            for a in ns["attributes"].as_array().into_iter().flatten() {
                println!(
                    "      {:<24} {:<8} {:>9} cells {:>11} values",
                    a["name"].as_str().unwrap_or(""),
                    a["dtype"].as_str().unwrap_or(""),
                    a["cells"],
                    a["values"]
                );
            }
            for (k, v) in ns["group_attributes"].as_object().into_iter().flatten() {
                println!("      @{k} = {v}");
            }
        }
    }
    println!("projections:");
    for p in &prjs {
        println!(
            "  {} -> {}: {} edges, {} destinations, {} blocks",
            p["source"].as_str().unwrap_or(""),
            p["destination"].as_str().unwrap_or(""),
            p["edges"],
            p["destinations"],
            p["blocks"]
        );
        for a in p["attributes"].as_array().into_iter().flatten() {
            println!(
                "    {}/{} {}",
                a["namespace"].as_str().unwrap_or(""),
                a["name"].as_str().unwrap_or(""),
                a["dtype"].as_str().unwrap_or("")
            );
        }
    }
    let valid: Vec<String> = types.projections.iter().map(|(s, d)| format!("{s} -> {d}")).collect();
    println!("valid projections: {}", if valid.is_empty() { "(none)".to_string() } else { valid.join(", ") });
    Ok(())
}

/// Buffered standard output for long listings; a closed pipe (`miv h5 dump ... | head`) ends the listing
/// quietly instead of panicking.
struct Lines(std::io::BufWriter<std::io::StdoutLock<'static>>);

impl Lines {
    fn new() -> Lines {
        Lines(std::io::BufWriter::new(std::io::stdout().lock()))
    }

    /// Write one line; false once the reader has gone away.
    fn line(&mut self, l: impl std::fmt::Display) -> bool {
        use std::io::Write;
        writeln!(self.0, "{l}").is_ok()
    }
}

/// Every cell, or only the given gid.
fn only(gid: &[u64]) -> Selection<'_> {
    if gid.is_empty() {
        Selection::All
    } else {
        Selection::Gids(gid)
    }
}

/// `--gid` must be a cell of `population` (a gid elsewhere would print nothing and look like "no data").
fn check_gid(f: &NeuroH5File, population: &str, gid: Option<u64>) -> CliResult {
    let Some(g) = gid else { return Ok(()) };
    let range = f.population(population).map_err(io_err)?.range();
    if range.contains(&g) {
        Ok(())
    } else {
        Err(CliError::local(format!(
            "--gid {g}: not a cell of population {population} (gids {}..{})",
            range.start,
            range.end.saturating_sub(1)
        )))
    }
}

fn values_text(v: &Values, r: std::ops::Range<usize>) -> String {
    let items: Vec<String> = v.json_range(r).iter().map(|x| x.to_string()).collect();
    format!("[{}]", items.join(", "))
}

fn dump(file: &Path, population: &str, namespace: &str, gid: Option<u64>, as_json: bool) -> CliResult {
    let comm = SerialComm;
    let f = NeuroH5File::open(file, &comm).map_err(io_err)?;
    check_gid(&f, population, gid)?;
    let one: Vec<u64> = gid.into_iter().collect();
    let sel = only(&one);
    let cells = f.read_cell_attributes(population, namespace, &sel, None).map_err(io_err)?;
    let mut w = Lines::new();
    for g in cells.gids() {
        let mut attrs = serde_json::Map::new();
        let mut text = Vec::new();
        for (name, a) in cells.attributes() {
            if let Ok(i) = a.gids().binary_search(&g) {
                attrs.insert(name.clone(), Value::Array(a.values().json_range(a.cell(i))));
                text.push(format!("  {name} = {}", values_text(a.values(), a.cell(i))));
            }
        }
        let ok = if as_json {
            w.line(json!({"gid": g, "attributes": attrs}))
        } else {
            w.line(format!("gid {g}")) && text.iter().all(|t| w.line(t))
        };
        if !ok {
            break;
        }
    }
    Ok(())
}

/// `dump --topology`: the trees of a `Trees` namespace, sections as 0-based point lists.
fn dump_topology(file: &Path, population: &str, namespace: &str, gid: Option<u64>, as_json: bool) -> CliResult {
    if namespace != miv_io::names::TREES {
        return Err(CliError::local(format!(
            "--topology shows trees: it needs --namespace {}, not {namespace:?}",
            miv_io::names::TREES
        )));
    }
    let comm = SerialComm;
    let f = NeuroH5File::open(file, &comm).map_err(io_err)?;
    check_gid(&f, population, gid)?;
    let one: Vec<u64> = gid.into_iter().collect();
    let sel = only(&one);
    let trees = f.read_trees(population, &sel).map_err(io_err)?;
    // The stored base of each tree, from the raw `Section` values (read_trees has already accepted them).
    let raw = f.read_cell_attributes(population, namespace, &sel, Some(&["Section"])).map_err(io_err)?;
    let mut w = Lines::new();
    for (g, t) in &trees {
        let base = raw
            .get::<u16>("Section", *g)
            .and_then(|v| miv_io::Tree::decode_sections(v).ok())
            .and_then(|s| miv_io::NodeBase::detect(&s, t.num_points()).ok())
            .map(u8::from);
        let ok = if as_json {
            w.line(json!({"gid": g, "sections": t.sections, "src": t.src, "dst": t.dst, "stored_base": base}))
        } else {
            w.line(format!("gid {g} ({} points, stored {}-based)", t.num_points(), base.unwrap_or(0)))
                && t.sections.iter().enumerate().all(|(k, s)| w.line(format!("  section {k}: {s:?}")))
                && w.line(format!("  edges: {:?}", t.src.iter().zip(&t.dst).collect::<Vec<_>>()))
        };
        if !ok {
            break;
        }
    }
    Ok(())
}

fn edges(file: &Path, projection: &str, namespaces: &[String], gid: Option<u64>, as_json: bool) -> CliResult {
    let (src, dst) = projection
        .split_once(':')
        .ok_or_else(|| CliError::local(format!("--projection {projection:?}: expected SOURCE:DESTINATION")))?;
    let comm = SerialComm;
    let f = NeuroH5File::open(file, &comm).map_err(io_err)?;
    let nss: Vec<String> =
        if namespaces.is_empty() { f.edge_namespaces(src, dst).map_err(io_err)? } else { namespaces.to_vec() };
    let refs: Vec<&str> = nss.iter().map(|s| s.as_str()).collect();
    check_gid(&f, dst, gid)?;
    let one: Vec<u64> = gid.into_iter().collect();
    let sel = only(&one);
    let p = f.read_projection(src, dst, &refs, &sel).map_err(io_err)?;
    let mut w = Lines::new();
    for (g, r) in p.iter() {
        let sources: Vec<u64> = p.source_index()[r.clone()].iter().map(|&s| p.src_start() + s as u64).collect();
        if as_json {
            let mut attrs = serde_json::Map::new();
            for a in p.attributes() {
                attrs.insert(format!("{}/{}", a.namespace, a.name), Value::Array(a.values.json_range(r.clone())));
            }
            if !w.line(json!({"destination": g, "sources": sources, "attributes": attrs})) {
                break;
            }
        } else if !(w.line(format!("{g} <- {sources:?}"))
            && p.attributes()
                .iter()
                .all(|a| w.line(format!("  {}/{} = {}", a.namespace, a.name, values_text(&a.values, r.clone())))))
        {
            break;
        }
    }
    Ok(())
}

fn import_swc(
    comm: &dyn Communicator,
    swc: &Path,
    file: &Path,
    population: &str,
    h5types: Option<&Path>,
    gid: Option<u64>,
    fill: bool,
) -> CliResult {
    let tree = miv_io::read_swc(swc);
    let tree: Tree = comm.agreed(tree)?;
    let f = match h5types {
        Some(src) => {
            let types = {
                let s = NeuroH5File::open(src, comm).map_err(io_err)?;
                s.read_h5types().map_err(io_err)?
            };
            let f = NeuroH5File::create(file, comm).map_err(io_err)?;
            f.write_h5types(&types).map_err(io_err)?;
            f
        }
        None => NeuroH5File::open_rw(file, comm).map_err(io_err)?,
    };
    let pop = f.population(population).map_err(io_err)?;
    let gids: Vec<u64> = if fill {
        Assignment::round_robin(comm.size()).gids_of(comm.rank(), &[pop.range()])
    } else {
        let g = gid.unwrap_or(pop.start);
        if comm.rank() == 0 {
            vec![g]
        } else {
            Vec::new()
        }
    };
    f.append_trees(population, gids.iter().map(|&g| (g, &tree)), &WriteOptions::default()).map_err(io_err)?;
    let total = comm.allgather(gids.len() as u64).iter().sum::<u64>();
    let path = f.finish().map_err(io_err)?;
    if comm.rank() == 0 {
        tracing::info!(
            "{}: {} points, {} sections stored for {total} cell(s) of {population} in {}",
            swc.display(),
            tree.num_points(),
            tree.num_sections(),
            path.display()
        );
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------------------
// Self-tests

fn mine(comm: &dyn Communicator, range: std::ops::Range<u64>) -> Vec<u64> {
    Assignment::round_robin(comm.size()).gids_of(comm.rank(), &[range])
}

fn selftest_write(comm: &dyn Communicator, file: &Path, seed: u64, opts: &WriteOptions) -> miv_io::Result<()> {
    let f = NeuroH5File::create(file, comm)?;
    let types = synth::types();
    f.write_h5types(&types)?;
    let r = &types.populations;
    for p in r.iter() {
        f.append_cell_attributes(
            &p.name,
            synth::COORDS,
            &synth::coord_cells(seed, mine(comm, p.range()).into_iter())?,
            opts,
        )?;
    }
    for pop in ["PYR", "OLM"] {
        let gids = mine(comm, r.get(pop).expect("pop").range());
        for pass in 0..2 {
            let cells = synth::mixed_cells(seed, gids.iter().copied().filter(|&g| synth::pass_of(g) == pass))?;
            f.append_cell_attributes(pop, synth::MIXED, &cells, opts)?;
        }
    }
    let pyr = r.get("PYR").expect("PYR");
    let mut arc = CellAttributes::new();
    for g in mine(comm, pyr.range()) {
        let [x, y, _] = synth::coords(seed, g);
        arc.push("U Distance", g, &[x - 500.0])?;
        arc.push("V Distance", g, &[y - 500.0])?;
    }
    f.append_cell_attributes("PYR", "Arc Distances", &arc, opts)?;
    for (name, v) in synth::REFERENCES {
        f.set_namespace_attribute("PYR", "Arc Distances", name, v)?;
    }
    let mut empty = CellAttributes::new();
    empty.declare("nothing", Dtype::F32)?;
    f.append_cell_attributes("STIM", synth::EMPTY, &empty, opts)?;
    let olm = mine(comm, r.get("OLM").expect("OLM").range());
    let trees = synth::trees(seed, olm.into_iter());
    f.append_trees("OLM", trees.iter().map(|(g, t)| (*g, t)), opts)?;
    for (src, dst) in synth::projections() {
        let dsts = mine(comm, r.get(dst).expect("dst").range());
        for pass in 0..2 {
            let p = synth::projection(seed, r, src, dst, dsts.iter().copied().filter(|&g| synth::pass_of(g) == pass))?;
            f.append_projection(&p, opts)?;
        }
    }
    f.finish()?;
    Ok(())
}

fn selftest_copy(
    comm: &dyn Communicator,
    from: &Path,
    to: &Path,
    namespaces: &[String],
    block: u64,
    passes: usize,
) -> miv_io::Result<()> {
    let f = NeuroH5File::open(from, comm)?;
    let out = NeuroH5File::create(to, comm)?;
    out.write_h5types(&f.read_h5types()?)?;
    let nss: Vec<&str> = namespaces.iter().map(|s| s.as_str()).collect();
    for _ in 0..passes {
        for (src, dst) in f.projection_names()? {
            let d = f.population(&dst)?;
            let mut start = d.start;
            while start < d.start + d.count {
                let end = (start + block.max(1)).min(d.start + d.count);
                let plan = miv_partition::ReadPlan::io_ranks(start..end, comm.size(), comm.size());
                let gids: Vec<u64> = plan.ranges_of(comm.rank()).iter().flat_map(|r| r.clone()).collect();
                let p = f.read_projection(&src, &dst, &nss, &Selection::Gids(&gids))?;
                out.append_projection(&p, &WriteOptions::default())?;
                start = end;
            }
        }
    }
    out.finish()?;
    Ok(())
}

fn selftest_read(comm: &dyn Communicator, file: &Path, seed: u64, mode: ReadMode, io_size: usize) -> CliResult {
    let a = Assignment::round_robin(comm.size());
    let f = NeuroH5File::open(file, comm).map_err(io_err)?;
    let types = f.read_h5types().map_err(io_err)?;
    let step = comm.rank() as u64 + 1;
    let start_of = |g: u64| types.populations.of_gid(g).map_or(0, |p| p.start);
    let strided: Vec<u64> = (0..types.populations.total()).filter(|&g| (g - start_of(g)) % step == 0).collect();
    let sel = match mode {
        ReadMode::Owned => Selection::Owned(&a),
        ReadMode::Io => Selection::IoRanks { assignment: &a, io_size },
        ReadMode::All => Selection::All,
        ReadMode::Strided => Selection::Gids(&strided),
    };
    let should_have = |g: u64| match mode {
        ReadMode::All => true,
        ReadMode::Strided => (g - start_of(g)) % step == 0,
        _ => a.rank_of(g) == Some(comm.rank()),
    };
    let mut bad: Vec<String> = Vec::new();
    let mut got: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut checked = 0u64;
    let mut compare = |key: String,
                       present: Vec<u64>,
                       expected: BTreeMap<u64, Values>,
                       read: &dyn Fn(u64) -> Option<Values>,
                       bad: &mut Vec<String>| {
        let want: Vec<u64> = expected.keys().copied().filter(|&g| should_have(g)).collect();
        if present != want {
            bad.push(format!("{key}: read gids {present:?}, expected {want:?}"));
        }
        for g in &present {
            checked += 1;
            if read(*g).as_ref() != expected.get(g) {
                bad.push(format!("{key}: gid {g}: read {:?}, expected {:?}", read(*g), expected.get(g)));
            }
        }
        got.insert(key, present);
    };
    for p in types.populations.iter() {
        let c = f.read_cell_attributes(&p.name, synth::COORDS, &sel, None).map_err(io_err)?;
        for (k, name) in ["X Coordinate", "Y Coordinate", "Z Coordinate"].iter().enumerate() {
            let exp: BTreeMap<u64, Values> =
                p.range().map(|g| (g, Values::F32(vec![synth::coords(seed, g)[k]]))).collect();
            let a = c.attribute(name).cloned();
            let present = a.as_ref().map(|a| a.gids().to_vec()).unwrap_or_default();
            compare(
                format!("{}/{}/{name}", p.name, synth::COORDS),
                present,
                exp,
                &|g| a.as_ref()?.get_values(g),
                &mut bad,
            );
        }
    }
    for pop in ["PYR", "OLM"] {
        let p = types.populations.get(pop).expect("pop");
        let c = f.read_cell_attributes(pop, synth::MIXED, &sel, None).map_err(io_err)?;
        for d in Dtype::ALL {
            let name = format!("v_{d}");
            let exp: BTreeMap<u64, Values> = p
                .range()
                .filter_map(|g| synth::mixed(seed, g).into_iter().find(|(n, _)| *n == name).map(|(_, v)| (g, v)))
                .collect();
            let a = c.attribute(&name).cloned();
            let present = a.as_ref().map(|a| a.gids().to_vec()).unwrap_or_default();
            compare(format!("{pop}/{}/{name}", synth::MIXED), present, exp, &|g| a.as_ref()?.get_values(g), &mut bad);
        }
    }
    let refs = f.namespace_attributes("PYR", "Arc Distances").map_err(io_err)?;
    if refs != synth::REFERENCES.iter().map(|(n, v)| (n.to_string(), *v)).collect::<Vec<_>>() {
        bad.push(format!("PYR/Arc Distances attributes: {refs:?}"));
    }
    let e = f.read_cell_attributes("STIM", synth::EMPTY, &sel, None).map_err(io_err)?;
    if e.attribute("nothing").map(|a| a.num_cells()) != Some(0) {
        bad.push(format!("STIM/{}: expected attribute \"nothing\" without cells, read {:?}", synth::EMPTY, e.names()));
    }
    let trees = f.read_trees("OLM", &sel).map_err(io_err)?;
    let olm = types.populations.get("OLM").expect("OLM");
    let want: Vec<u64> = olm.range().filter(|&g| should_have(g)).collect();
    if trees.keys().copied().collect::<Vec<_>>() != want {
        bad.push(format!("OLM/Trees: read gids {:?}, expected {want:?}", trees.keys().collect::<Vec<_>>()));
    }
    for (g, t) in &trees {
        checked += 1;
        if *t != synth::tree(seed, *g) {
            bad.push(format!("OLM/Trees: gid {g} differs"));
        }
    }
    got.insert("OLM/Trees".into(), trees.keys().copied().collect());
    let mut n_edges = 0u64;
    for (src, dst) in synth::projections() {
        let mut nss = vec!["Connections", "Synapses"];
        if src == "PYR" {
            nss.push("Extra");
        }
        let p: Projection = f.read_projection(src, dst, &nss, &sel).map_err(io_err)?;
        n_edges += p.num_edges() as u64;
        let s = types.populations.get(src).expect("src");
        let d = types.populations.get(dst).expect("dst");
        let mut want = Vec::new();
        for g in d.range() {
            let (srcs, syn, dist, extra) = synth::edges(seed, src, dst, s.range(), g);
            if srcs.is_empty() || !should_have(g) {
                continue;
            }
            want.push(g);
            let mut order: Vec<usize> = (0..srcs.len()).collect();
            order.sort_by_key(|&i| srcs[i]);
            let Some(r) = p.edges_of(g) else { continue };
            checked += 1;
            let ok = p.sources_of(g) == Some(order.iter().map(|&i| srcs[i]).collect())
                && p.attr::<u32>("Synapses", "syn_id").map(|v| v[r.clone()].to_vec())
                    == Some(order.iter().map(|&i| syn[i]).collect())
                && p.attr::<f32>("Connections", "distance").map(|v| v[r.clone()].to_vec())
                    == Some(order.iter().map(|&i| dist[i]).collect())
                && (src != "PYR"
                    || p.attr::<i16>("Extra", "w").map(|v| v[r.clone()].to_vec())
                        == Some(order.iter().map(|&i| extra[i]).collect()));
            if !ok {
                bad.push(format!("{src}->{dst}: destination {g} differs"));
            }
        }
        if p.destinations() != want.as_slice() {
            bad.push(format!("{src}->{dst}: read destinations {:?}, expected {want:?}", p.destinations()));
        }
        got.insert(format!("{src}->{dst}"), p.destinations().to_vec());
    }
    bad.truncate(20);
    let line = json!({"rank": comm.rank(), "size": comm.size(), "checked": checked, "edges": n_edges, "mismatches": bad, "gids": got}).to_string();
    if let Some(lines) = comm.gather_strings(0, &line) {
        for l in lines {
            println!("{l}");
        }
    }
    Ok(())
}
