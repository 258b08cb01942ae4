//! The command line in one process (no launcher).

mod common;
use common::*;

#[test]
fn help_lists_the_commands_and_version_matches_the_package() {
    let o = miv(&["--help"]).expect_ok("miv --help");
    assert!(o.stdout.contains("info"), "{}", o.stdout);
    let v = miv(&["--version"]).expect_ok("miv --version");
    assert_eq!(v.stdout.trim(), format!("miv {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn info_in_one_process_is_one_rank() {
    let o = miv(&["info", "--json"]).expect_ok("miv info --json");
    let doc: serde_json::Value = serde_json::from_str(&o.stdout).expect("info JSON");
    assert_eq!(doc["size"], 1);
    assert_eq!(doc["ranks"].as_array().unwrap().len(), 1);
    assert_eq!(doc["ranks"][0]["rank"], 0);
    assert_eq!(doc["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["features"].as_array().unwrap().iter().any(|f| f == "mpi"), cfg!(feature = "mpi"));
    assert!(doc["hdf5"].as_str().unwrap().starts_with("1."));
}

#[test]
fn an_error_in_one_process_is_one_readable_line_and_exit_code_1() {
    let o = miv(&["debug", "fail", "--rank", "0", "--mode", "collective"]);
    assert_eq!(o.code, Some(1));
    assert!(o.stderr.contains("error: rank 0 could not parse /tmp/bad.yaml: expected a mapping"), "{}", o.stderr);
    let o = miv(&["debug", "fail", "--rank", "0", "--mode", "error"]);
    assert_eq!(o.code, Some(1));
    assert!(o.stderr.contains("missing file /no/such/cells.h5"), "{}", o.stderr);
}

#[test]
fn collectives_in_one_process() {
    let o = miv(&["debug", "collectives"]).expect_ok("collectives");
    let lines = json_lines(&o.stdout);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["allgatherv"], serde_json::json!([0]));
    assert_eq!(lines[0]["sum"], 1.0);
}

/// A reader that goes away (`miv info | head -0`) ends the program quietly, as SIGPIPE ends other Unix
/// tools, instead of a panic in `println!`.
#[cfg(unix)]
#[test]
fn closed_stdout_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    let mut child = Command::new(miv_bin())
        .arg("info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn miv");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait for miv");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "status {:?}: {stderr}", out.status);
}
