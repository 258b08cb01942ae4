//! MiV-Simulator-Cases' own mechanisms (3-interface-api/simulation/mechanisms, not in this repository):
//! when MIV_CASES_MECHANISMS names that folder, every file must compile and run in a one-compartment
//! cell through `miv mech check --run`. Without the variable the test only says it was skipped.

mod common;

#[test]
fn every_cases_mechanism_compiles_and_runs_in_a_cell() {
    let Ok(dir) = std::env::var("MIV_CASES_MECHANISMS") else {
        println!("MIV_CASES_MECHANISMS is not set: skipped");
        return;
    };
    let files = miv_nmodl::library::mod_files(std::path::Path::new(&dir)).expect("read the folder");
    assert!(!files.is_empty(), "{dir}: no .mod files");
    let out = common::miv(&["mech", "check", &dir, "--run", "--json"]);
    let rows = common::json_lines(&out.stdout);
    let failed: Vec<String> =
        rows.iter().filter(|r| r.get("error").is_some() || r["run"]["ok"] != true).map(|r| r.to_string()).collect();
    assert!(failed.is_empty() && out.ok(), "failures:\n{}\n{}", failed.join("\n"), out.stderr);
    assert_eq!(rows.len(), files.len(), "one row per file");
    println!("{} mechanisms of {dir} compile and run", rows.len());
}
