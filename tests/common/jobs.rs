//! Helpers for the construction-job tests: small networks made from the rc example, reading the built
//! files back with `miv-io`, comparing files with `h5diff`, and the h5py venv.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use miv::io::{CellAttributes, NeuroH5File, Selection};
use miv::partition::SerialComm;

use super::repo_root;

// The network helpers are shared with the jobs crate's own tests.
#[path = "../../jobs/tests/common/mod.rs"]
mod network;
#[allow(unused_imports, reason = "each test binary uses some of them")]
pub use network::{example_dir, network_yaml, SMALL};

/// `cells: PATH` and `connections: PATH` from `miv build` output.
pub fn built_files(stdout: &str) -> (PathBuf, PathBuf) {
    let get = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key).map(|p| PathBuf::from(p.trim())))
            .unwrap_or_else(|| panic!("no `{key}` line in miv build output:\n{stdout}"))
    };
    (get("cells:"), get("connections:"))
}

pub fn open(path: &Path) -> NeuroH5File<'static> {
    static SERIAL: SerialComm = SerialComm;
    NeuroH5File::open(path, &SERIAL).unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

pub fn read_all(f: &NeuroH5File, pop: &str, ns: &str) -> CellAttributes {
    f.read_cell_attributes(pop, ns, &Selection::All, None).unwrap_or_else(|e| panic!("{pop}/{ns}: {e}"))
}

/// One f32 value per cell, as f64.
pub fn scalar(c: &CellAttributes, name: &str, gid: u64) -> f64 {
    c.get::<f32>(name, gid).unwrap_or_else(|| panic!("{name} of gid {gid}"))[0] as f64
}

/// True when `h5diff` finds no difference in content.
pub fn same_content(a: &Path, b: &Path) -> bool {
    let o = std::process::Command::new("h5diff").arg(a).arg(b).output().expect("run h5diff (hdf5-tools)");
    if !o.status.success() {
        eprintln!(
            "h5diff {} {}:\n{}{}",
            a.display(),
            b.display(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    o.status.success()
}

/// The Python of the test venv (`scripts/setup --python`).
pub fn python() -> PathBuf {
    let p = repo_root().join(".venv-test").join("bin").join("python");
    assert!(p.exists(), "{} is missing: run scripts/setup --python", p.display());
    p
}

/// Upper tail of the standard normal, Φ(−x) for the truncated-normal moments (Abramowitz–Stegun 7.1.26 for erfc,
/// absolute error below 1.5e-7).
pub fn normal_sf(x: f64) -> f64 {
    let z = x / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z.abs());
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erfc = poly * (-z * z).exp();
    let erfc = if z >= 0.0 { erfc } else { 2.0 - erfc };
    0.5 * erfc
}

/// Mean and variance of N(mean, sd) conditioned on being positive.
pub fn positive_normal_moments(mean: f64, sd: f64) -> (f64, f64) {
    if sd == 0.0 {
        return (mean, 0.0);
    }
    let a = -mean / sd;
    let phi = (-0.5 * a * a).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let lambda = phi / normal_sf(a);
    (mean + sd * lambda, sd * sd * (1.0 + a * lambda - lambda * lambda))
}

/// Run `miv ARGS` with extra environment variables; returns (success, stdout, stderr).
pub fn miv_env(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = std::process::Command::new(super::miv_bin());
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("run miv");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}
