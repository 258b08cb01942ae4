//! `miv plot RESULTS.h5 [--out DIR]`: the figures of a run, a spike raster (one colour per population) and the
//! LFP trace of each electrode, as PNG. Reading the results file is done here; drawing is `miv_analysis::plot`.

use std::path::{Path, PathBuf};

use clap::Args;
use miv_analysis::plot::{self, PopulationSpikes};
use miv_partition::{Communicator, SerialComm};

use super::{CliError, CliResult};

#[derive(Debug, Args)]
pub struct PlotArgs {
    /// A results file written by `miv run` (spikes per population, LFP).
    pub results: PathBuf,
    /// Directory for the PNGs (default: the results file's directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(comm: &dyn Communicator, args: PlotArgs) -> CliResult {
    if comm.rank() != 0 {
        return Ok(());
    }
    for f in plot_results(&args.results, args.out.as_deref())? {
        println!("{}", f.display());
    }
    Ok(())
}

/// One electrode's trace from a `Local Field Potential <label>` group.
struct Lfp {
    label: String,
    t: Vec<f64>,
    v: Vec<f64>,
}

fn fail(path: &Path) -> impl Fn(String) -> CliError + '_ {
    move |m| CliError { message: format!("{}: {m}", path.display()), collective: true }
}

/// Every `Local Field Potential <label>` group of the file, in name order.
fn read_lfps(path: &Path) -> CliResult<Vec<Lfp>> {
    let f = hdf5::File::open(path).map_err(|e| fail(path)(e.to_string()))?;
    let mut out = Vec::new();
    let mut names = f.member_names().map_err(|e| fail(path)(e.to_string()))?;
    names.sort();
    for name in names.into_iter().filter(|n| n.starts_with("Local Field Potential")) {
        let read = |d: &str| -> CliResult<Vec<f64>> {
            let ds = f.dataset(&format!("{name}/{d}")).map_err(|e| fail(path)(format!("{name}/{d}: {e}")))?;
            let v: Vec<f32> = ds.read_raw().map_err(|e| fail(path)(format!("{name}/{d}: {e}")))?;
            Ok(v.into_iter().map(f64::from).collect())
        };
        let (t, v) = (read("t")?, read("v")?);
        if t.len() != v.len() {
            return Err(fail(path)(format!("{name}: t has {} samples, v {}", t.len(), v.len())));
        }
        let label = name.trim_start_matches("Local Field Potential").trim().to_string();
        out.push(Lfp { label, t, v });
    }
    Ok(out)
}

/// The spikes of every population (those without a `Spike Events` namespace have none), in population order.
fn read_spikes(path: &Path) -> CliResult<Vec<PopulationSpikes>> {
    let comm = SerialComm;
    let io = |e: miv_io::IoError| CliError { message: e.to_string(), collective: true };
    let f = miv_io::NeuroH5File::open(path, &comm).map_err(io)?;
    let mut out = Vec::new();
    for p in f.population_ranges().map_err(io)?.iter() {
        let mut s = PopulationSpikes { name: p.name.clone(), ..Default::default() };
        let namespaces = f.namespaces(&p.name).map_err(io)?;
        if let Some(ns) = namespaces.iter().find(|n| n.starts_with(miv_io::names::SPIKE_EVENTS)) {
            let a = f.read_cell_attributes(&p.name, ns, &miv_io::Selection::All, Some(&["t"])).map_err(io)?;
            for g in a.gids() {
                for &t in a.get::<f32>("t", g).unwrap_or(&[]) {
                    s.times.push(f64::from(t));
                    s.gids.push(g);
                }
            }
        }
        out.push(s);
    }
    Ok(out)
}

/// Draw `<stem>-raster.png` and `<stem>-lfp.png` (`<stem>-lfp-<label>.png` for several electrodes) for a results
/// file into `out` (default: next to it); returns the files written.
pub fn plot_results(results: &Path, out: Option<&Path>) -> CliResult<Vec<PathBuf>> {
    let dir = match out {
        Some(d) => d.to_path_buf(),
        None => results.parent().unwrap_or(Path::new(".")).to_path_buf(),
    };
    std::fs::create_dir_all(&dir).map_err(|e| fail(&dir)(e.to_string()))?;
    let stem = results.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "results".into());
    let name = results.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let lfps = read_lfps(results)?;
    let pops = read_spikes(results)?;
    let plot_err = |e: miv_analysis::AnalysisError| CliError { message: e.to_string(), collective: true };
    let mut written = Vec::new();
    let t_end =
        lfps.iter().filter_map(|l| l.t.last().copied()).fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))));
    let raster = dir.join(format!("{stem}-raster.png"));
    plot::raster(&raster, &format!("Spikes: {name}"), &pops, t_end).map_err(plot_err)?;
    written.push(raster);
    for l in &lfps {
        let file = if lfps.len() == 1 { format!("{stem}-lfp.png") } else { format!("{stem}-lfp-{}.png", l.label) };
        let p = dir.join(file);
        plot::trace(&p, &format!("LFP {}: {name}", l.label), "LFP (mV)", &l.t, &l.v).map_err(plot_err)?;
        written.push(p);
    }
    Ok(written)
}
