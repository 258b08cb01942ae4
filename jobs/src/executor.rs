//! Where a job's ranks run: the [`Executor`] trait and its three implementations, [`InProcess`] (this
//! process, on the store's communicator), [`MpirunOptions`] (`mpirun -n N miv jobs exec ...` children the
//! launching process waits for) and [`SlurmOptions`] (a Slurm batch job rendered from
//! `templates/slurm.sbatch` and submitted with `sbatch`, after the batch jobs of what it uses). A new
//! executor is one more `impl Executor`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{JobError, Result};
use crate::store::{write_json, JobRef, Store, Submission, SUBMISSION_FILE};
use miv_partition::Communicator;

/// The Slurm script template shipped with miv.
pub const SLURM_TEMPLATE: &str = include_str!("../templates/slurm.sbatch");
/// The batch script of a simulation run (`miv run --slurm`).
pub const SLURM_RUN_TEMPLATE: &str = include_str!("../templates/run.sbatch");
/// The batch script of one case of a scaling study (`miv bench scaling`).
pub const SLURM_SCALING_TEMPLATE: &str = include_str!("../templates/scaling.sbatch");

/// What became of a job handed to an executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dispatch {
    /// The caller runs the job here, on the store's communicator.
    Here,
    /// The job ran elsewhere and is complete in the store.
    Complete,
    /// The job is queued (the batch system's id; none for a dry run).
    Submitted(Option<String>),
}

/// Runs (or queues) a job prepared in its partial directory (`config.json`), whose ranks load it with
/// `miv jobs exec` unless the executor says [`Dispatch::Here`].
pub trait Executor: std::fmt::Debug + Send + Sync {
    /// True when jobs go to a queue: a submitted job then counts as available to the jobs that use it (they
    /// are queued after it), and launching it again returns it as submitted.
    fn queues(&self) -> bool {
        false
    }

    /// Collective over the store's communicator: run or submit the prepared job `job`. `after` (rank 0) holds
    /// the queue ids of the submitted jobs it uses.
    fn dispatch(&self, store: &Store, job: &JobRef, after: &[String]) -> Result<Dispatch>;
}

/// In this process, on the store's communicator (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct InProcess;

impl Executor for InProcess {
    fn dispatch(&self, _store: &Store, _job: &JobRef, _after: &[String]) -> Result<Dispatch> {
        Ok(Dispatch::Here)
    }
}

#[derive(Debug, Clone)]
pub struct MpirunOptions {
    pub ranks: usize,
    /// The `miv` binary the ranks run.
    pub program: PathBuf,
    /// The launcher (`mpirun`, or e.g. `mpiexec`).
    pub mpirun: String,
    /// Extra launcher arguments (e.g. `--oversubscribe`).
    pub args: Vec<String>,
}

impl MpirunOptions {
    pub fn new(ranks: usize, program: impl Into<PathBuf>) -> MpirunOptions {
        MpirunOptions { ranks, program: program.into(), mpirun: "mpirun".into(), args: Vec::new() }
    }
}

#[derive(Debug, Clone)]
pub struct SlurmOptions {
    pub nodes: u32,
    pub ntasks: u32,
    /// Wall time limit, Slurm syntax (`01:00:00`).
    pub time: String,
    pub partition: Option<String>,
    pub account: Option<String>,
    /// Environment modules to load before running (`module load <name>`).
    pub modules: Vec<String>,
    /// How the script starts the ranks (`srun`, or `mpirun -n 64`).
    pub launcher: String,
    /// The `miv` binary the ranks run.
    pub program: PathBuf,
    /// A template to use instead of the shipped one.
    pub template: Option<PathBuf>,
    /// The submit command.
    pub sbatch: String,
    /// Print the script instead of submitting it.
    pub dry_run: bool,
    /// CPUs per task (`--cpus-per-task`, the worker threads of each rank); none leaves Slurm's default.
    pub cpus_per_task: Option<u32>,
}

impl SlurmOptions {
    pub fn new(program: impl Into<PathBuf>) -> SlurmOptions {
        SlurmOptions {
            nodes: 1,
            ntasks: 1,
            time: "01:00:00".into(),
            partition: None,
            account: None,
            modules: Vec::new(),
            launcher: "srun".into(),
            program: program.into(),
            template: None,
            sbatch: "sbatch".into(),
            dry_run: false,
            cpus_per_task: None,
        }
    }

    /// Check every value that goes into a batch script; the error names the option and what was expected.
    pub fn validate(&self) -> Result<()> {
        let bad = |opt: &str, m: String| Err(JobError::Executor(format!("slurm: {opt}: {m}")));
        if self.ntasks == 0 {
            return bad("--ranks", "expected at least 1 task".into());
        }
        if self.nodes == 0 || self.nodes > self.ntasks {
            return bad("--nodes", format!("expected 1 to {} (the number of tasks), got {}", self.ntasks, self.nodes));
        }
        if self.cpus_per_task == Some(0) {
            return bad("--threads", "expected at least 1 CPU per task".into());
        }
        if !valid_slurm_time(&self.time) {
            return bad(
                "--time",
                format!(
                    "{:?} is not a Slurm time (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS or UNLIMITED)",
                    self.time
                ),
            );
        }
        let name = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
        for (opt, v) in [("--partition", &self.partition), ("--account", &self.account)] {
            if let Some(v) = v {
                if v.is_empty() || !v.chars().all(|c| name(c) || c == ',') {
                    return bad(opt, format!("{v:?}: expected a name (letters, digits, `_.-`, a comma list)"));
                }
            }
        }
        for m in &self.modules {
            if m.is_empty() || !m.chars().all(|c| name(c) || "/+@:".contains(c)) {
                return bad("--module", format!("{m:?}: expected a module name such as openmpi/4.1.5"));
            }
        }
        // The launcher is a command line (`srun`, `mpirun -n 64`): words only, nothing the shell would
        // interpret.
        if self.launcher.trim().is_empty() || !self.launcher.chars().all(|c| name(c) || " /+=:,@%".contains(c)) {
            return bad(
                "--launcher",
                format!("{:?}: expected a command and its arguments without shell characters", self.launcher),
            );
        }
        Ok(())
    }
}

/// A Slurm `--time` value: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, or UNLIMITED / infinite.
fn valid_slurm_time(t: &str) -> bool {
    if matches!(t, "UNLIMITED" | "infinite" | "INFINITE" | "unlimited") {
        return true;
    }
    let nums = |s: &str, max_parts: usize| {
        let parts: Vec<&str> = s.split(':').collect();
        !s.is_empty()
            && parts.len() <= max_parts
            && parts.iter().all(|p| !p.is_empty() && p.len() <= 6 && p.chars().all(|c| c.is_ascii_digit()))
    };
    match t.split_once('-') {
        Some((days, rest)) => nums(days, 1) && nums(rest, 3),
        None => nums(t, 3),
    }
}

impl Executor for MpirunOptions {
    fn dispatch(&self, store: &Store, job: &JobRef, _after: &[String]) -> Result<Dispatch> {
        let comm = store.comm();
        let local = if comm.rank() == 0 { run_mpirun(self, store.root(), job) } else { Ok(()) };
        comm.agree(local.map_err(|e| e.to_string()))?;
        let complete = comm.rank() != 0 || store.is_complete(job);
        comm.agree(if complete { Ok(()) } else { Err(format!("{job}: mpirun finished but the job is not complete")) })?;
        Ok(Dispatch::Complete)
    }
}

impl Executor for SlurmOptions {
    fn queues(&self) -> bool {
        true
    }

    fn dispatch(&self, store: &Store, job: &JobRef, after: &[String]) -> Result<Dispatch> {
        let comm = store.comm();
        let partial = store.partial_dir(job);
        let local = if comm.rank() == 0 {
            self.validate().and_then(|_| submit_slurm(self, store.root(), &partial, job, after))
        } else {
            Ok(None)
        };
        let job_id = broadcast_opt_string(comm, comm.agreed(local)?);
        // A batch system that ran the job at once may already have completed (and moved) it.
        if comm.rank() == 0 && partial.is_dir() && !store.is_complete(job) {
            let sub = Submission { job_id: job_id.clone(), script: partial.join("job.sbatch") };
            write_json(&partial.join(SUBMISSION_FILE), &sub)?;
        }
        comm.barrier();
        Ok(Dispatch::Submitted(job_id))
    }
}

impl SlurmOptions {
    /// `miv run --slurm` (`command` "run") and `miv study --slurm` ("study"): render the batch script
    /// (`templates/run.sbatch`, or `template`) that runs `miv COMMAND INPUT ARGS...` as `<input stem>.sbatch`
    /// beside the input file and submit it (print it on a dry run). `run_args` are extra arguments of the
    /// command. Returns the script's path and the Slurm job id.
    pub fn submit_run(
        &self,
        command: &str,
        experiment: &Path,
        run_args: &[String],
    ) -> Result<(PathBuf, Option<String>)> {
        self.validate()?;
        let template = match &self.template {
            Some(p) => std::fs::read_to_string(p).map_err(|e| JobError::io(p, e))?,
            None => SLURM_RUN_TEMPLATE.to_string(),
        };
        let dir = experiment.parent().unwrap_or(Path::new(".")).to_path_buf();
        let name = experiment.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "run".into());
        let mut v = common_values(self, &format!("miv-{command}-{name}"));
        let q = |p: &Path| shell_quote(&p.display().to_string());
        v.insert("experiment", Some(q(experiment)));
        v.insert("workdir", Some(q(&dir)));
        v.insert("output_dir", Some(dir.display().to_string()));
        v.insert("command", Some(command.to_string()));
        v.insert("log", Some(sbatch_quote(&dir.join("slurm-%j.out"))?));
        v.insert("run_args", Some(run_args.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ")));
        let script = render(&template, &v).map_err(JobError::Other)?;
        let path = dir.join(format!("{name}.sbatch"));
        let id = submit_script(self, &path, &script, &format!("{command} {}", experiment.display()))?;
        Ok((path, id))
    }
}

impl SlurmOptions {
    /// A batch job running shell `commands` in `workdir` (`templates/scaling.sbatch`, or `template`), saved as
    /// `workdir/<file>` and submitted (printed on a dry run) after the jobs `after` have ended (`afterany`).
    /// The placeholders `{{launcher}}` and `{{program}}` in `commands` are replaced as in the template; the
    /// launcher may itself hold `{{ntasks}}` or `{{nodes}}`.
    /// Returns the script's path and the Slurm job id.
    pub fn submit_commands(
        &self,
        workdir: &Path,
        file: &str,
        job_name: &str,
        commands: &str,
        after: &[String],
    ) -> Result<(PathBuf, Option<String>)> {
        let script = self.render_commands(workdir, job_name, commands, after)?;
        let path = workdir.join(file);
        let id = submit_script(self, &path, &script, job_name)?;
        Ok((path, id))
    }

    /// The batch script [`SlurmOptions::submit_commands`] submits, without submitting it.
    pub fn render_commands(&self, workdir: &Path, job_name: &str, commands: &str, after: &[String]) -> Result<String> {
        let template = match &self.template {
            Some(p) => std::fs::read_to_string(p).map_err(|e| JobError::io(p, e))?,
            None => SLURM_SCALING_TEMPLATE.to_string(),
        };
        let mut v = common_values(self, job_name);
        // The launcher may name the job's size (`mpirun -n {{ntasks}}`).
        let launcher = render(&self.launcher, &v).map_err(JobError::Other)?;
        v.insert("launcher", Some(launcher.trim_end().to_string()));
        let commands = render(commands, &v).map_err(JobError::Other)?;
        v.insert("commands", Some(commands.trim_end().to_string()));
        v.insert("workdir", Some(shell_quote(&workdir.display().to_string())));
        v.insert("output_dir", Some(workdir.display().to_string()));
        v.insert("log", Some(sbatch_quote(&workdir.join("slurm-%j.out"))?));
        v.insert("dependency", if after.is_empty() { None } else { Some(after.join(":")) });
        render(&template, &v).map_err(JobError::Other)
    }
}

/// Rank 0's optional string on every rank.
pub(crate) fn broadcast_opt_string(comm: &dyn Communicator, s: Option<String>) -> Option<String> {
    let text = comm.broadcast_string(0, &s.map(|s| format!("+{s}")).unwrap_or_default());
    text.strip_prefix('+').map(str::to_string)
}

/// Start `mpirun -n N <miv> jobs exec ...` for a prepared job and wait for it.
fn run_mpirun(m: &MpirunOptions, store: &Path, job: &JobRef) -> Result<()> {
    let mut cmd = Command::new(&m.mpirun);
    cmd.args(&m.args).arg("-n").arg(m.ranks.to_string()).arg(&m.program);
    cmd.args(["jobs", "exec", "--store"]).arg(store).args(["--kind", &job.kind, "--id", &job.id]);
    tracing::info!("{job}: {} -n {} {} jobs exec ...", m.mpirun, m.ranks, m.program.display());
    let status = cmd.status().map_err(|e| JobError::Executor(format!("cannot start `{}`: {e}", m.mpirun)))?;
    if status.success() {
        Ok(())
    } else {
        Err(JobError::Executor(format!("{job}: `{} -n {}` exited with {status}", m.mpirun, m.ranks)))
    }
}

/// Render the batch script of `job`, save it as `job.sbatch` in its directory, and submit it (or print it on
/// a dry run). Returns the Slurm job id.
fn submit_slurm(
    s: &SlurmOptions,
    store: &Path,
    job_dir: &Path,
    job: &JobRef,
    after: &[String],
) -> Result<Option<String>> {
    let template = match &s.template {
        Some(p) => std::fs::read_to_string(p).map_err(|e| JobError::io(p, e))?,
        None => SLURM_TEMPLATE.to_string(),
    };
    let mut v = common_values(s, &format!("miv-{}-{}", job.kind, &job.id[..8.min(job.id.len())]));
    v.insert("kind", Some(job.kind.clone()));
    v.insert("id", Some(job.id.clone()));
    v.insert("dependency", if after.is_empty() { None } else { Some(after.join(":")) });
    v.insert("job_dir", Some(job_dir.display().to_string()));
    // The log goes beside the job, not into its partial directory, which a retry replaces.
    let logs = store.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| JobError::io(&logs, e))?;
    v.insert("log", Some(sbatch_quote(&logs.join(format!("{}-{}-%j.out", job.kind, job.id)))?));
    v.insert("store", Some(shell_quote(&store.display().to_string())));
    let script = render(&template, &v).map_err(JobError::Executor)?;
    let path = job_dir.join("job.sbatch");
    submit_script(s, &path, &script, &job.to_string())
}

/// The placeholders every batch script shares: job name, nodes, tasks, time, partition, account, modules,
/// launcher and program.
fn common_values(s: &SlurmOptions, job_name: &str) -> BTreeMap<&'static str, Option<String>> {
    let mut v: BTreeMap<&str, Option<String>> = BTreeMap::new();
    v.insert("job_name", Some(job_name.to_string()));
    v.insert("nodes", Some(s.nodes.to_string()));
    v.insert("ntasks", Some(s.ntasks.to_string()));
    v.insert("time", Some(s.time.clone()));
    v.insert("partition", s.partition.clone());
    v.insert("account", s.account.clone());
    v.insert("program", Some(shell_quote(&s.program.display().to_string())));
    v.insert("launcher", Some(s.launcher.clone()));
    v.insert("cpus_per_task", s.cpus_per_task.map(|c| c.to_string()));
    v.insert(
        "modules",
        if s.modules.is_empty() {
            None
        } else {
            Some(s.modules.iter().map(|m| format!("module load {}", shell_quote(m))).collect::<Vec<_>>().join("\n"))
        },
    );
    v
}

/// Save `script` at `path` and submit it with `sbatch --parsable` (or print it on a dry run); returns the Slurm
/// job id. `what` names the job in messages.
fn submit_script(s: &SlurmOptions, path: &Path, script: &str, what: &str) -> Result<Option<String>> {
    miv_io::atomic::write_atomic(path, script).map_err(|e| JobError::io(path, e))?;
    if s.dry_run {
        println!("{script}");
        return Ok(None);
    }
    let out = Command::new(&s.sbatch)
        .arg("--parsable")
        .arg(path)
        .output()
        .map_err(|e| JobError::Executor(format!("cannot start `{}`: {e}", s.sbatch)))?;
    if !out.status.success() {
        return Err(JobError::Executor(format!(
            "{what}: `{} {}` failed ({}): {}",
            s.sbatch,
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text.trim().split(';').next().unwrap_or("").trim().to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit() || c == '_') {
        return Err(JobError::Executor(format!("{what}: cannot read a job id from sbatch output {text:?}")));
    }
    tracing::info!("{what}: submitted as Slurm job {id}");
    Ok(Some(id))
}

/// Replace `{{name}}` placeholders. A line with a placeholder whose value is `None` is left out; an unknown
/// placeholder is an error.
fn render(template: &str, values: &BTreeMap<&str, Option<String>>) -> std::result::Result<String, String> {
    let mut out = String::new();
    'lines: for line in template.lines() {
        let mut rendered = String::new();
        let mut rest = line;
        while let Some(start) = rest.find("{{") {
            let Some(len) = rest[start + 2..].find("}}") else { break };
            let name = rest[start + 2..start + 2 + len].trim();
            match values.get(name) {
                Some(Some(v)) => {
                    rendered.push_str(&rest[..start]);
                    rendered.push_str(v);
                }
                Some(None) => continue 'lines,
                None => return Err(format!("template placeholder `{{{{{name}}}}}` is unknown")),
            }
            rest = &rest[start + 2 + len + 2..];
        }
        rendered.push_str(rest);
        out.push_str(&rendered);
        out.push('\n');
    }
    Ok(out)
}

/// A path for an `#SBATCH` line (read by sbatch, not the shell): double-quoted when it has spaces; a path
/// with a double quote or a line break cannot be written there.
fn sbatch_quote(p: &Path) -> Result<String> {
    let s = p.display().to_string();
    if s.contains('"') || s.contains('\n') || s.contains('\r') {
        return Err(JobError::io(p, "a Slurm log path must not contain `\"` or a line break"));
    }
    Ok(if s.chars().any(|c| c.is_whitespace() || c == '\'' || c == '#') { format!("\"{s}\"") } else { s })
}

/// Quote for a POSIX shell when needed.
pub fn shell_quote(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:,".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_drops_lines_without_values() {
        let mut v = BTreeMap::new();
        v.insert("a", Some("1".to_string()));
        v.insert("b", None);
        assert_eq!(render("x={{a}}\ny={{b}}\nz", &v).unwrap(), "x=1\nz\n");
        assert!(render("{{c}}", &v).unwrap_err().contains("{{c}}"));
        assert_eq!(shell_quote("/a b/it's"), "'/a b/it'\\''s'");
    }
}
