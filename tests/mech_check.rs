//! Front-end diagnostics (every error names file:line:col and the construct) and `miv mech check`.

mod common;

use std::path::PathBuf;

use common::{json_lines, miv, repo_root, scratch};
use miv_nmodl::Mechanism;

fn compile_error(src: &str) -> String {
    Mechanism::compile(src, "bad.mod").expect_err("must not compile").to_string()
}

#[test]
fn errors_name_the_place_and_the_problem() {
    let cases: &[(&str, &str)] = &[
        (
            "NEURON { SUFFIX a }\nBREAKPOINT {\n  x = (1 +\n}",
            "syntax error: bad.mod:4:1: expected an expression, found '}'",
        ),
        (
            "NEURON { SUFFIX a }\nASSIGNED { y }\nBREAKPOINT {\n  y = 2*undeclared\n}",
            "error: bad.mod:4:9: undeclared name 'undeclared'",
        ),
        (
            "NEURON { SUFFIX a }\nINITIAL {\nVERBATIM\n  hoc_execerror(\"x\", 0);\nENDVERBATIM\n}",
            "unsupported: bad.mod:3:1: VERBATIM here is C code that miv cannot run and is not one of the recognised uses \
             (#include, VecStim vector access, Gfluct random stream, ion read); it starts with: hoc_execerror(\"x\", 0);",
        ),
        (
            "NEURON { SUFFIX a POINTER p }\nASSIGNED { p }",
            "unsupported: bad.mod:1:27: POINTER variables are not supported by miv's NMODL compiler",
        ),
        (
            "NEURON { SUFFIX a }\nPROCEDURE f() {\n  LOCAL i\n  WHILE (i < 3) { i = i + 1 }\n}",
            "unsupported: bad.mod:4:3: WHILE loops are not supported by miv's NMODL compiler",
        ),
        (
            "NEURON { SUFFIX a USEION na READ eca }",
            "error: bad.mod:1:34: 'eca' is not a variable of ion na: READ may be ena, nai, nao or ina",
        ),
        (
            "NEURON { SUFFIX a }\nSTATE { m }\nBREAKPOINT { SOLVE s METHOD sparse }\nDERIVATIVE s { m' = -m }",
            "error: bad.mod:3:14: METHOD sparse does not apply to 's'",
        ),
        (
            "NEURON { SUFFIX a }\nSTATE { m }\nBREAKPOINT { SOLVE s METHOD runge }\nDERIVATIVE s { m' = -m }",
            "unsupported: bad.mod:3:14: METHOD runge is not supported by miv's NMODL compiler",
        ),
        (
            "NEURON { SUFFIX a }\nASSIGNED { x }\nPROCEDURE f(v) {\n  TABLE DEPEND dt FROM -1 TO 1 WITH 10\n  x = v\n}",
            "error: bad.mod:4:3: TABLE in a PROCEDURE needs the names of the variables it tabulates",
        ),
        (
            "NEURON { SUFFIX a RANGE g }\nPARAMETER { g }\nASSIGNED { x }\nPROCEDURE f(v) {\n  TABLE x FROM -1 TO 1 WITH 10\n  x = g*v\n}\nINITIAL { f(0) }",
            "unsupported: bad.mod:6:7: a TABLE body reads the per-instance variable 'g' (NEURON would tabulate with an arbitrary instance's value)",
        ),
        (
            "NEURON { SUFFIX a }\nFUNCTION f(x) { f = g(x) }\nFUNCTION g(x) { g = f(x) }\nINITIAL { f(1) }",
            "unsupported: bad.mod:2:10: recursion (f -> g -> f) is not supported by miv's NMODL compiler",
        ),
        (
            "NEURON { SUFFIX a }\nASSIGNED { x }\nINITIAL { x = exp(1, 2) }",
            "error: bad.mod:3:15: 'exp' takes 1 argument(s), 2 given",
        ),
        (
            "NEURON { SUFFIX a }\nINITIAL { net_send(1, 1) }",
            "error: bad.mod:2:11: net_send needs a NET_RECEIVE block",
        ),
        (
            "NEURON { SUFFIX a }\nUNITS { X = (faraday) (volt) }",
            "unsupported: bad.mod:2:9: cannot evaluate the units constant (faraday) in (volt): unknown unit or different dimensions",
        ),
        ("COMMENT\nnever closed", "syntax error: bad.mod:1:1: COMMENT without ENDCOMMENT"),
        (
            "NEURON { SUFFIX a }\nSTATE { m }\nBREAKPOINT { SOLVE s METHOD cnexp }\nDERIVATIVE s {\n  if (m > 1) { m' = -m }\n}",
            "unsupported: bad.mod:5:16: derivative equations inside if/else are not supported by miv's NMODL compiler",
        ),
    ];
    let mut wrong = Vec::new();
    for (src, want) in cases {
        let got = compile_error(src);
        if &got != want {
            wrong.push(format!("source:\n{src}\n  got:  {got}\n  want: {want}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn write_folder(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let d = scratch(name);
    for (f, text) in files {
        let p = d.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    d
}

#[test]
fn check_lists_each_mechanism_with_kind_ions_and_parameters() {
    let dir = repo_root().join("mechanisms").join("standard");
    let out = miv(&["mech", "check", dir.to_str().unwrap(), "--json"]).expect_ok("miv mech check --json");
    let rows = json_lines(&out.stdout);
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Exp2Syn", "ExpSyn", "IClamp", "NetStim", "VecStim", "hh", "pas"]);
    let hh = rows.iter().find(|r| r["name"] == "hh").unwrap();
    assert_eq!(hh["kind"], "density");
    assert_eq!(hh["ions"][0]["ion"], "na");
    assert_eq!(hh["ions"][0]["read"], serde_json::json!(["ena"]));
    assert_eq!(hh["ions"][0]["write"], serde_json::json!(["ina"]));
    assert_eq!(hh["ions"][1]["ion"], "k");
    let gnabar = hh["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "gnabar").unwrap();
    assert_eq!((gnabar["default"].as_f64(), gnabar["range"].as_bool()), (Some(0.12), Some(true)));
    assert_eq!(hh["states"], serde_json::json!(["m", "h", "n"]));
    let kinds: Vec<&str> = rows.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["point", "point", "point", "artificial", "artificial", "density", "density"]);
    assert_eq!(rows.iter().find(|r| r["name"] == "Exp2Syn").unwrap()["net_receive_args"], 1);
}

#[test]
fn check_runs_every_construct_mechanism_in_a_cell() {
    let dir = repo_root().join("mechanisms").join("constructs");
    let out = miv(&["mech", "check", dir.to_str().unwrap(), "--run", "--json"]).expect_ok("miv mech check --run");
    let rows = json_lines(&out.stdout);
    assert_eq!(rows.len(), std::fs::read_dir(&dir).unwrap().count());
    for r in &rows {
        let run = &r["run"];
        assert_eq!(run["ok"], true, "{r}");
        assert!(run["v_min"].as_f64().unwrap().is_finite() && run["v_max"].as_f64().unwrap().is_finite());
    }
    // The step current depolarises the cell; the calcium mechanisms see their ion.
    let caghk = rows.iter().find(|r| r["name"] == "caghk").unwrap();
    assert_eq!(caghk["ions"][0]["read"], serde_json::json!(["cai", "cao"]));
    assert_eq!(caghk["ions"][0]["valence"], 2.0);
}

#[test]
fn check_reports_bad_files_and_fails() {
    let dir = write_folder(
        "mech-check-bad",
        &[
            (
                "good.mod",
                "NEURON { SUFFIX good NONSPECIFIC_CURRENT i }\nASSIGNED { i v }\nBREAKPOINT { i = 0.001*(v + 65) }\n",
            ),
            ("sub/broken.mod", "NEURON { SUFFIX broken }\nBREAKPOINT {\n  i = \n}\n"),
        ],
    );
    let out = miv(&["mech", "check", dir.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    let broken = dir.join("sub").join("broken.mod");
    let place = format!("{}:4:1: expected an expression, found '}}'", broken.display());
    assert!(out.stdout.contains(&place), "stdout:\n{}", out.stdout);
    assert!(out.stderr.contains(&place), "stderr:\n{}", out.stderr);
    assert!(out.stdout.contains("good") && out.stdout.contains("density"), "the good file is still listed");
}

#[test]
fn duplicate_mechanism_names_are_refused() {
    let text = "NEURON { SUFFIX twin }\nBREAKPOINT { }\n";
    let dir = write_folder("mech-check-dup", &[("a.mod", text), ("b/a.mod", text)]);
    let err = miv_nmodl::Library::load_dir(&dir).unwrap_err().to_string();
    assert!(err.starts_with("mechanism twin is defined twice"), "{err}");
    assert!(err.contains("a.mod") && err.contains("b/a.mod"), "{err}");
}

/// `MIV_NMODL_JIT=off` keeps every kernel in the VM, and the runs of the standard and construct
/// mechanisms in a cell give the same voltages to the last bit with native code and without.
#[test]
fn native_code_can_be_switched_off_and_changes_no_result() {
    let run = |jit: Option<&str>, args: &[&str]| {
        let mut cmd = std::process::Command::new(common::miv_bin());
        cmd.args(args);
        if let Some(j) = jit {
            cmd.env("MIV_NMODL_JIT", j);
        }
        let out = cmd.output().expect("run miv");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    for dir in ["standard", "constructs"] {
        let dir = repo_root().join("mechanisms").join(dir);
        let args = ["mech", "check", dir.to_str().unwrap(), "--run", "--json"];
        let (native, vm) = (run(None, &args), run(Some("off"), &args));
        assert!(!json_lines(&native).is_empty());
        assert_eq!(native, vm, "{}", dir.display());
    }
    let bench = ["mech", "bench", "--instances", "64", "--steps", "2", "--repeats", "1", "--only", "nmodl"];
    assert!(run(Some("off"), &bench).contains("NMODL kernels without tables run as the VM"));
}
