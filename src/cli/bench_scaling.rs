//! `miv bench scaling`: strong- and weak-scaling studies of `miv run` on the busyring (`miv gen busyring`) and
//! on an rc-network-like network (examples/rc-network with its PYR, PVBC and OLM populations scaled).
//!
//! * `write` lays out one case directory per (study, network, node count), each with `case.json` and a Slurm
//!   batch script (`jobs/templates/scaling.sbatch`) that generates or builds its network and runs it `--reps`
//!   times, writing `result-<rep>.json` (the `miv run --json` summary); it submits them with `sbatch` and
//!   submits a last job that runs `collect` after all of them.
//! * `local` writes the same study for 1 and 2 ranks on this machine (`mpirun`), runs the cases interleaved
//!   (every case once, then every case again, ... `--reps` times) and collects.
//! * `collect` reads the case directories into `scaling.csv` (median, min and max run time, parallel
//!   efficiency, spikes and whether they equal the smallest node count's in the strong study) and
//!   `scaling.png` (time and efficiency versus nodes).

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::{Args, Subcommand};
use miv_jobs::SlurmOptions;
use serde::{Deserialize, Serialize};

use super::{CliError, CliResult};

#[derive(Debug, Args)]
pub struct ScalingArgs {
    #[command(subcommand)]
    pub which: ScalingWhich,
}

#[derive(Debug, Subcommand)]
pub enum ScalingWhich {
    /// Write the study's case directories and batch scripts and submit them to Slurm.
    Write(WriteArgs),
    /// Run the same study here with 1 and 2 ranks (mpirun), then collect.
    Local(LocalArgs),
    /// Read the results of a study directory into scaling.csv and scaling.png.
    Collect(CollectArgs),
}

/// What the study measures (shared by `write` and `local`).
#[derive(Debug, Args, Clone)]
pub struct StudyArgs {
    /// The study directory (created; case directories go in it).
    #[arg(long)]
    pub out: PathBuf,
    /// Networks: busyring, rc (comma separated).
    #[arg(long, default_value = "busyring,rc")]
    pub networks: String,
    /// Studies: strong, weak (comma separated).
    #[arg(long, default_value = "strong,weak")]
    pub studies: String,
    /// Busyring cells per node (weak study).
    #[arg(long, default_value_t = 32_000)]
    pub busyring_cells_per_node: u64,
    /// Busyring cells in total (strong study).
    #[arg(long, default_value_t = 256_000)]
    pub busyring_cells: u64,
    /// rc network: PYR, PVBC and OLM counts of examples/rc-network times this, per node (weak study).
    #[arg(long, default_value_t = 1)]
    pub rc_scale_per_node: u64,
    /// rc network: PYR, PVBC and OLM counts times this in total (strong study).
    #[arg(long, default_value_t = 8)]
    pub rc_scale: u64,
    /// The rc-network example (network.yaml, experiment.yaml and the files they name).
    #[arg(long, default_value = "examples/rc-network")]
    pub rc_example: PathBuf,
    /// Simulated time (ms) of every run.
    #[arg(long, default_value_t = 100.0)]
    pub t_end: f64,
    /// Runs per case (the CSV reports median, min and max).
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Worker threads per rank.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

#[derive(Debug, Args)]
pub struct WriteArgs {
    #[command(flatten)]
    pub study: StudyArgs,
    /// Node counts (comma separated).
    #[arg(long, default_value = "1,2,4,8,16,32,64")]
    pub nodes: String,
    /// MPI ranks (Slurm tasks) per node.
    #[arg(long, default_value_t = 32)]
    pub tasks_per_node: u32,
    /// Slurm: wall time per case.
    #[arg(long, default_value = "01:00:00")]
    pub time: String,
    #[arg(long)]
    pub partition: Option<String>,
    #[arg(long)]
    pub account: Option<String>,
    /// Slurm: environment module to load (repeat).
    #[arg(long = "module")]
    pub modules: Vec<String>,
    /// Slurm: how the batch script starts the ranks.
    #[arg(long, default_value = "srun")]
    pub launcher: String,
    /// Slurm: a batch script template instead of jobs/templates/scaling.sbatch.
    #[arg(long)]
    pub template: Option<PathBuf>,
    /// Slurm: the submit command.
    #[arg(long, default_value = "sbatch")]
    pub sbatch: String,
    /// Write the scripts but submit nothing.
    #[arg(long)]
    pub no_submit: bool,
}

#[derive(Debug, Args)]
pub struct LocalArgs {
    #[command(flatten)]
    pub study: StudyArgs,
    /// Rank counts standing for node counts (comma separated).
    #[arg(long, default_value = "1,2")]
    pub ranks: String,
    /// The MPI launcher for more than one rank.
    #[arg(long, default_value = "mpirun --oversubscribe")]
    pub mpirun: String,
}

#[derive(Debug, Args)]
pub struct CollectArgs {
    /// A study directory written by `miv bench scaling write` or `local`.
    pub dir: PathBuf,
}

/// One case of a study: what `case.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Case {
    pub study: String,
    pub network: String,
    pub nodes: u32,
    pub ranks: u32,
    pub threads: usize,
    /// Busyring: cells; rc: the population scale.
    pub size: u64,
    pub t_end: f64,
    pub reps: usize,
}

impl Case {
    fn dir_name(&self) -> String {
        format!("{}-{}-{:03}n", self.study, self.network, self.nodes)
    }
}

const CASE_FILE: &str = "case.json";
const RC_INPUTS: &str = "rc-inputs";

fn fail(m: String) -> CliError {
    CliError { message: m, collective: true }
}

pub fn run(a: ScalingArgs) -> CliResult {
    match a.which {
        ScalingWhich::Write(w) => write_slurm(&w),
        ScalingWhich::Local(l) => local(&l),
        ScalingWhich::Collect(c) => collect(&c.dir).map(|_| ()),
    }
}

fn parse_list<T: std::str::FromStr>(arg: &str, text: &str, what: &str) -> CliResult<Vec<T>> {
    let v: Result<Vec<T>, _> = text.split(',').map(|s| s.trim().parse::<T>()).collect();
    match v {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err(fail(format!("{arg}: expected {what} separated by commas, got {text:?}"))),
    }
}

fn choices(arg: &str, text: &str, allowed: &[&str]) -> CliResult<Vec<String>> {
    let v: Vec<String> = text.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    if let Some(bad) = v.iter().find(|s| !allowed.contains(&s.as_str())) {
        return Err(fail(format!("{arg}: unknown {bad:?} (expected {})", allowed.join(", "))));
    }
    if v.is_empty() {
        return Err(fail(format!("{arg}: expected one of {}", allowed.join(", "))));
    }
    Ok(v)
}

/// The cases of a study for node counts `nodes` with `tasks` ranks per node.
fn cases(s: &StudyArgs, nodes: &[u32], tasks: u32) -> CliResult<Vec<Case>> {
    let networks = choices("--networks", &s.networks, &["busyring", "rc"])?;
    let studies = choices("--studies", &s.studies, &["strong", "weak"])?;
    if s.reps == 0 {
        return Err(fail("--reps: expected at least 1".into()));
    }
    if !(s.t_end > 0.0) {
        return Err(fail(format!("--t-end: expected a positive time in ms, got {}", s.t_end)));
    }
    if nodes.contains(&0) || tasks == 0 {
        return Err(fail("node, rank and task counts must be at least 1".into()));
    }
    let mut out = Vec::new();
    for study in &studies {
        for network in &networks {
            for &n in nodes {
                let size = match (study.as_str(), network.as_str()) {
                    ("strong", "busyring") => s.busyring_cells,
                    ("weak", "busyring") => s.busyring_cells_per_node * n as u64,
                    ("strong", _) => s.rc_scale,
                    _ => s.rc_scale_per_node * n as u64,
                };
                if size == 0 || (network == "busyring" && size < 2) {
                    return Err(fail(format!("{study} {network}: network size {size} is too small")));
                }
                out.push(Case {
                    study: study.clone(),
                    network: network.clone(),
                    nodes: n,
                    ranks: n * tasks,
                    threads: s.threads,
                    size,
                    t_end: s.t_end,
                    reps: s.reps,
                });
            }
        }
    }
    Ok(out)
}

/// The shell commands of a case (`{{launcher}}` and `{{program}}` are filled in by the script renderer). The
/// repetitions run are `$MIV_SCALING_REPS` when set (the local mode runs one at a time), else 1..reps.
fn case_commands(c: &Case) -> String {
    let run = format!("{{{{launcher}}}} {{{{program}}}} -q run EXP --json --threads {}", c.threads);
    let (prepare, exp) = match c.network.as_str() {
        "busyring" => (
            format!(
                "if [ ! -f net/experiment.yaml ]; then {{{{program}}}} -q gen busyring --n {} --t-end {} --out net; fi",
                c.size, c.t_end
            ),
            "net/experiment.yaml",
        ),
        _ => ("{{launcher}} {{program}} -q build network.yaml --store store".to_string(), "experiment.yaml"),
    };
    format!(
        "{prepare}\nfor rep in ${{MIV_SCALING_REPS:-$(seq 1 {reps})}}; do\n  {run} > result-$rep.json\ndone",
        reps = c.reps,
        run = run.replace("EXP", exp)
    )
}

/// Copy the rc example's inputs into `<study>/rc-inputs` once: the cell types, synapses, templates,
/// stimulus and morphology files its network and experiment name.
fn copy_rc_inputs(example: &Path, study: &Path) -> CliResult<()> {
    let net_file = example.join("network.yaml");
    let exp_file = example.join("experiment.yaml");
    for f in [&net_file, &exp_file] {
        if !f.is_file() {
            return Err(fail(format!(
                "--rc-example: {} not found (expected examples/rc-network with network.yaml and experiment.yaml)",
                f.display()
            )));
        }
    }
    let dest = study.join(RC_INPUTS);
    let net = read_yaml(&net_file)?;
    let morph = net.get("morphology").and_then(|v| v.as_str()).unwrap_or("morphology");
    copy_tree(&example.join(morph), &dest.join("morphology"))?;
    for name in ["cell_types.yml", "synapses.yml", "stimulus.txt", "templates"] {
        copy_tree(&example.join(name), &dest.join(name))?;
    }
    std::fs::copy(&net_file, dest.join("network.yaml")).map_err(|e| fail(format!("{}: {e}", net_file.display())))?;
    std::fs::copy(&exp_file, dest.join("experiment.yaml")).map_err(|e| fail(format!("{}: {e}", exp_file.display())))?;
    Ok(())
}

fn io(p: &Path) -> impl Fn(std::io::Error) -> CliError + '_ {
    move |e| fail(format!("{}: {e}", p.display()))
}

fn copy_tree(from: &Path, to: &Path) -> CliResult<()> {
    if from.is_dir() {
        std::fs::create_dir_all(to).map_err(io(to))?;
        for e in std::fs::read_dir(from).map_err(io(from))? {
            let e = e.map_err(io(from))?;
            copy_tree(&e.path(), &to.join(e.file_name()))?;
        }
        Ok(())
    } else {
        if let Some(p) = to.parent() {
            std::fs::create_dir_all(p).map_err(io(p))?;
        }
        std::fs::copy(from, to).map(|_| ()).map_err(io(from))
    }
}

fn read_yaml(p: &Path) -> CliResult<serde_norway::Value> {
    miv_config::from_yaml_file(p).map_err(|e| fail(e.to_string()))
}

fn write_yaml(p: &Path, v: &serde_norway::Value) -> CliResult<()> {
    let text = serde_norway::to_string(v).map_err(|e| fail(format!("{}: {e}", p.display())))?;
    std::fs::write(p, text).map_err(|e| fail(format!("{}: {e}", p.display())))
}

/// The rc case's network.yaml (populations other than STIM scaled by `c.size`, files from ../rc-inputs) and
/// experiment.yaml (that network, built in `store`, t_end of the study).
fn write_rc_case(study: &Path, dir: &Path, c: &Case) -> CliResult<()> {
    use serde_norway::Value;
    let inputs = study.join(RC_INPUTS);
    let mut net = read_yaml(&inputs.join("network.yaml"))?;
    let up = |name: &str| Value::String(format!("../{RC_INPUTS}/{name}"));
    let dists = net
        .get_mut("cell_distributions")
        .and_then(|d| d.as_mapping_mut())
        .ok_or_else(|| fail(format!("{}: no cell_distributions mapping", inputs.join("network.yaml").display())))?;
    for (pop, layers) in dists.iter_mut() {
        if pop.as_str() == Some("STIM") {
            continue;
        }
        if let Some(m) = layers.as_mapping_mut() {
            for (_, count) in m.iter_mut() {
                if let Some(k) = count.as_u64() {
                    *count = Value::from(k * c.size);
                }
            }
        }
    }
    for (key, file) in [("cell_types", "cell_types.yml"), ("synapses", "synapses.yml"), ("morphology", "morphology")] {
        net[key] = up(file);
    }
    write_yaml(&dir.join("network.yaml"), &net)?;
    let mut exp = read_yaml(&inputs.join("experiment.yaml"))?;
    exp["network"] = Value::String("network.yaml".into());
    exp["store"] = Value::String("store".into());
    for (key, file) in [("cell_types", "cell_types.yml"), ("synapses", "synapses.yml"), ("templates", "templates")] {
        exp[key] = up(file);
    }
    exp["t_end"] = Value::from(c.t_end);
    if let Some(stims) = exp.get_mut("stimulus").and_then(|s| s.as_sequence_mut()) {
        for s in stims {
            if let Some(f) = s.get("file").and_then(|f| f.as_str()).map(str::to_string) {
                let name = Path::new(&f).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or(f);
                s["file"] = up(&name);
            }
        }
    }
    write_yaml(&dir.join("experiment.yaml"), &exp)
}

/// Create the study directory and every case directory (case.json, rc inputs); returns the case directories.
fn lay_out(s: &StudyArgs, cases: &[Case]) -> CliResult<Vec<PathBuf>> {
    let study = &s.out;
    std::fs::create_dir_all(study).map_err(|e| fail(format!("--out {}: {e}", study.display())))?;
    let study = std::fs::canonicalize(study).map_err(|e| fail(format!("--out {}: {e}", study.display())))?;
    if cases.iter().any(|c| c.network == "rc") {
        copy_rc_inputs(&s.rc_example, &study)?;
    }
    let mut dirs = Vec::new();
    for c in cases {
        let dir = study.join(c.dir_name());
        std::fs::create_dir_all(&dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
        for e in std::fs::read_dir(&dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("result-") && name.ends_with(".json") {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let json = serde_json::to_string_pretty(c).expect("json");
        std::fs::write(dir.join(CASE_FILE), json).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
        if c.network == "rc" {
            write_rc_case(&study, &dir, c)?;
        }
        dirs.push(dir);
    }
    Ok(dirs)
}

fn slurm_options(w: &WriteArgs) -> CliResult<SlurmOptions> {
    let program = std::env::current_exe().map_err(|e| fail(format!("cannot find the miv binary: {e}")))?;
    let mut o = SlurmOptions::new(program);
    o.time = w.time.clone();
    o.partition = w.partition.clone();
    o.account = w.account.clone();
    o.modules = w.modules.clone();
    o.launcher = w.launcher.clone();
    o.template = w.template.clone();
    o.sbatch = w.sbatch.clone();
    Ok(o)
}

fn write_slurm(w: &WriteArgs) -> CliResult {
    let nodes: Vec<u32> = parse_list("--nodes", &w.nodes, "node counts")?;
    let cases = cases(&w.study, &nodes, w.tasks_per_node)?;
    let base = slurm_options(w)?;
    // The Slurm values of every case, checked before anything is written (the launcher may name {{ntasks}}).
    for c in &cases {
        let mut checked = base.clone();
        (checked.nodes, checked.ntasks) = (c.nodes, c.ranks);
        checked.launcher = checked.launcher.replace("{{ntasks}}", &c.ranks.to_string());
        checked.validate().map_err(|e| fail(e.to_string()))?;
    }
    let dirs = lay_out(&w.study, &cases)?;
    let mut ids = Vec::new();
    for (c, dir) in cases.iter().zip(&dirs) {
        let mut o = base.clone();
        o.nodes = c.nodes;
        o.ntasks = c.ranks;
        let name = format!("miv-scaling-{}", c.dir_name());
        let commands = case_commands(c);
        if w.no_submit {
            let script = o.render_commands(dir, &name, &commands, &[]).map_err(|e| fail(e.to_string()))?;
            std::fs::write(dir.join("job.sbatch"), script).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
            continue;
        }
        let (path, id) = o.submit_commands(dir, "job.sbatch", &name, &commands, &[]).map_err(|e| {
            fail(format!("{e} (--sbatch names the submit command; --no-submit writes the scripts only)"))
        })?;
        println!("{} {}", path.display(), id.as_deref().unwrap_or("-"));
        ids.extend(id);
    }
    // The collector: one node, one task, after every case has ended (failed cases are reported missing).
    let study = std::fs::canonicalize(&w.study.out).map_err(|e| fail(e.to_string()))?;
    let mut o = base;
    o.nodes = 1;
    o.ntasks = 1;
    let commands = format!("{{{{program}}}} -q bench scaling collect {}", study.display());
    if w.no_submit {
        let script =
            o.render_commands(&study, "miv-scaling-collect", &commands, &[]).map_err(|e| fail(e.to_string()))?;
        std::fs::write(study.join("collect.sbatch"), script).map_err(|e| fail(format!("{}: {e}", study.display())))?;
        println!("wrote {} cases under {}; submit each job.sbatch, then collect.sbatch", cases.len(), study.display());
        return Ok(());
    }
    let (path, id) = o
        .submit_commands(&study, "collect.sbatch", "miv-scaling-collect", &commands, &ids)
        .map_err(|e| fail(e.to_string()))?;
    println!("{} {}", path.display(), id.as_deref().unwrap_or("-"));
    Ok(())
}

fn local(l: &LocalArgs) -> CliResult {
    let ranks: Vec<u32> = parse_list("--ranks", &l.ranks, "rank counts")?;
    if ranks.iter().any(|&r| r > 1) && !cfg!(feature = "mpi") {
        return Err(fail("--ranks: this miv is built without MPI; use --ranks 1".into()));
    }
    let cases = cases(&l.study, &ranks, 1)?;
    let dirs = lay_out(&l.study, &cases)?;
    let program = std::env::current_exe().map_err(|e| fail(format!("cannot find the miv binary: {e}")))?;
    let mut scripts = Vec::new();
    for (c, dir) in cases.iter().zip(&dirs) {
        let mut o = SlurmOptions::new(&program);
        o.ntasks = c.ranks;
        o.launcher = if c.ranks > 1 { format!("{} -n {}", l.mpirun, c.ranks) } else { String::new() };
        let script = o
            .render_commands(dir, &format!("miv-scaling-{}", c.dir_name()), &case_commands(c), &[])
            .map_err(|e| fail(e.to_string()))?;
        let path = dir.join("job.sh");
        std::fs::write(&path, script).map_err(|e| fail(format!("{}: {e}", path.display())))?;
        scripts.push(path);
    }
    // Interleaved: every case once per repetition.
    for rep in 1..=l.study.reps {
        for (c, script) in cases.iter().zip(&scripts) {
            eprintln!("{} rep {rep}: {} rank(s), size {}", c.dir_name(), c.ranks, c.size);
            let status = Command::new("bash")
                .arg(script)
                .env("MIV_SCALING_REPS", rep.to_string())
                .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
                .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
                .status()
                .map_err(|e| fail(format!("bash {}: {e}", script.display())))?;
            if !status.success() {
                return Err(fail(format!("{} failed ({status})", script.display())));
            }
        }
    }
    collect(&l.study.out).map(|_| ())
}

/// The `miv run --json` summary fields the collector uses.
#[derive(Debug, Deserialize)]
struct RunResult {
    cells: u64,
    compartments: u64,
    connections: u64,
    spikes: u64,
    load_s: f64,
    init_s: f64,
    run_s: f64,
    peak_rss_mib_max: f64,
}

/// One row of scaling.csv.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Row {
    pub study: String,
    pub network: String,
    pub nodes: u32,
    pub ranks: u32,
    pub threads: usize,
    pub cells: u64,
    pub compartments: u64,
    pub connections: u64,
    pub runs: usize,
    pub load_s: f64,
    pub init_s: f64,
    pub run_s_median: f64,
    pub run_s_min: f64,
    pub run_s_max: f64,
    /// Strong: T(n0) n0 / (T(n) n); weak: T(n0) / T(n); n0 the smallest node count measured.
    pub efficiency: f64,
    pub peak_rss_mib_max: f64,
    pub spikes: u64,
    /// Strong study: the spike count equals the smallest node count's (every repetition too); weak: empty.
    pub spikes_match: Option<bool>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Read every case directory of `dir` into rows; write `scaling.csv` and `scaling.png`; print the table.
pub fn collect(dir: &Path) -> CliResult<Vec<Row>> {
    let entries = std::fs::read_dir(dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    let mut found: Vec<(Case, Vec<RunResult>)> = Vec::new();
    let mut missing = Vec::new();
    let mut case_dirs: Vec<PathBuf> =
        entries.flatten().map(|e| e.path()).filter(|p| p.join(CASE_FILE).is_file()).collect();
    case_dirs.sort();
    for d in case_dirs {
        let text = std::fs::read_to_string(d.join(CASE_FILE)).map_err(|e| fail(format!("{}: {e}", d.display())))?;
        let case: Case = serde_json::from_str(&text)
            .map_err(|e| fail(format!("{}: not a scaling case: {e}", d.join(CASE_FILE).display())))?;
        let mut results = Vec::new();
        for rep in 1..=case.reps {
            let f = d.join(format!("result-{rep}.json"));
            let Ok(text) = std::fs::read_to_string(&f) else { continue };
            let line = text.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or("");
            match serde_json::from_str::<RunResult>(line) {
                Ok(r) => results.push(r),
                Err(e) => tracing::warn!("{}: no miv run summary ({e}); skipped", f.display()),
            }
        }
        if results.is_empty() {
            missing.push(d.display().to_string());
        } else {
            found.push((case, results));
        }
    }
    if !missing.is_empty() {
        eprintln!("no results yet (not run, or failed: see slurm-*.out): {}", missing.join(", "));
    }
    if found.is_empty() {
        return Err(fail(format!("{}: no case directory with results", dir.display())));
    }
    found.sort_by(|a, b| (&a.0.study, &a.0.network, a.0.nodes).cmp(&(&b.0.study, &b.0.network, b.0.nodes)));
    let mut rows: Vec<Row> = Vec::new();
    for (c, rs) in &found {
        let times: Vec<f64> = rs.iter().map(|r| r.run_s).collect();
        let first = &rs[0];
        let same_spikes = rs.iter().all(|r| r.spikes == first.spikes);
        rows.push(Row {
            study: c.study.clone(),
            network: c.network.clone(),
            nodes: c.nodes,
            ranks: c.ranks,
            threads: c.threads,
            cells: first.cells,
            compartments: first.compartments,
            connections: first.connections,
            runs: rs.len(),
            load_s: median(rs.iter().map(|r| r.load_s).collect()),
            init_s: median(rs.iter().map(|r| r.init_s).collect()),
            run_s_median: median(times.clone()),
            run_s_min: times.iter().copied().fold(f64::INFINITY, f64::min),
            run_s_max: times.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            efficiency: f64::NAN,
            peak_rss_mib_max: median(rs.iter().map(|r| r.peak_rss_mib_max).collect()),
            spikes: first.spikes,
            spikes_match: (c.study == "strong").then_some(same_spikes),
        });
    }
    // Efficiency and spike agreement against the smallest node count of the same study and network.
    let base: Vec<Row> = rows.clone();
    for r in &mut rows {
        let Some(b) = base.iter().filter(|b| b.study == r.study && b.network == r.network).min_by_key(|b| b.nodes)
        else {
            continue;
        };
        r.efficiency = if r.study == "strong" {
            b.run_s_median * b.nodes as f64 / (r.run_s_median * r.nodes as f64)
        } else {
            b.run_s_median / r.run_s_median
        };
        if let Some(m) = r.spikes_match.as_mut() {
            *m = *m && r.spikes == b.spikes && r.cells == b.cells && r.connections == b.connections;
        }
    }
    let csv_path = dir.join("scaling.csv");
    let csv_err = |e: &dyn std::fmt::Display| fail(format!("{}: {e}", csv_path.display()));
    let file = miv_io::atomic::AtomicFile::create(&csv_path).map_err(|e| csv_err(&e))?;
    let mut w = csv::Writer::from_writer(file);
    for r in &rows {
        w.serialize(r).map_err(|e| csv_err(&e))?;
    }
    w.into_inner().map_err(|e| csv_err(e.error()))?.commit().map_err(|e| csv_err(&e))?;
    let png = dir.join("scaling.png");
    let mut time = Vec::new();
    let mut eff = Vec::new();
    let mut keys: Vec<(String, String)> = rows.iter().map(|r| (r.study.clone(), r.network.clone())).collect();
    keys.dedup();
    for (study, network) in &keys {
        let label = format!("{study} {network}");
        let mine: Vec<&Row> = rows.iter().filter(|r| &r.study == study && &r.network == network).collect();
        time.push(miv_analysis::plot::Line {
            label: label.clone(),
            points: mine.iter().map(|r| (r.nodes as f64, r.run_s_median)).collect(),
        });
        eff.push(miv_analysis::plot::Line {
            label,
            points: mine.iter().map(|r| (r.nodes as f64, r.efficiency)).collect(),
        });
    }
    miv_analysis::plot::scaling(&png, &format!("miv scaling: {}", dir.display()), &time, &eff)
        .map_err(|e| fail(e.to_string()))?;
    println!(
        "{:<7} {:<9} {:>5} {:>6} {:>9} {:>12} {:>5} {:>9} {:>9} {:>17} {:>6} {:>9} {:>8}",
        "study",
        "network",
        "nodes",
        "ranks",
        "cells",
        "connections",
        "runs",
        "load s",
        "run s",
        "run s min..max",
        "eff.",
        "peak MiB",
        "spikes"
    );
    for r in &rows {
        let mark = match r.spikes_match {
            Some(false) => " (!)",
            _ => "",
        };
        println!(
            "{:<7} {:<9} {:>5} {:>6} {:>9} {:>12} {:>5} {:>9.3} {:>9.3} {:>17} {:>6.3} {:>9.1} {:>8}",
            r.study,
            r.network,
            r.nodes,
            r.ranks,
            r.cells,
            r.connections,
            r.runs,
            r.load_s,
            r.run_s_median,
            format!("{:.3}..{:.3}", r.run_s_min, r.run_s_max),
            r.efficiency,
            r.peak_rss_mib_max,
            format!("{}{mark}", r.spikes)
        );
    }
    println!("(!) marks a strong-scaling case whose spikes, cells or connections differ from its smallest node count.");
    println!("{}\n{}", csv_path.display(), png.display());
    Ok(rows)
}
