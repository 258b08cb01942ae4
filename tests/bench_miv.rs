//! `miv bench miv` with a stand-in for MiV's runner (tests/common/fake_run_rc.sh: fixed times, three
//! spikes): the network of the small reference experiment is built and run by miv, the runner gets the
//! experiment's files, seed and t_end, and the ratios are MiV's times over miv's, round by round.

mod common;

use common::miv_net::*;
use common::*;

fn bench_args<'a>(exp: &'a str, out: &'a str, runner: &'a str, templates: &'a str) -> Vec<&'a str> {
    vec![
        "bench",
        "miv",
        exp,
        "--python",
        "/bin/sh",
        "--runner",
        runner,
        "--templates",
        templates,
        "--mechanisms",
        templates,
        "--t-end",
        "5",
        "--rounds",
        "2",
        "--out",
        out,
    ]
}

#[test]
fn ratios_are_the_runners_times_over_mivs_round_by_round() {
    let exp = prepare_network("bench_miv", &reference(), "experiment-standin.yaml");
    let dir = exp.parent().unwrap().to_path_buf();
    let out = dir.join("neuron");
    let runner = repo_root().join("tests/common/fake_run_rc.sh");
    let templates = reference().join("neuron-standin/templates");
    let (exp_s, out_s) = (exp.to_str().unwrap(), out.to_str().unwrap());
    let (runner_s, templates_s) = (runner.to_str().unwrap(), templates.to_str().unwrap());
    let mut args = bench_args(exp_s, out_s, runner_s, templates_s);
    args.push("--json");
    let r = miv_timeout(&args, std::time::Duration::from_secs(1800)).expect_ok("miv bench miv");
    let j: serde_json::Value = serde_json::from_str(r.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(j["t_end_ms"], 5.0);
    let rounds = j["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 2);
    for (k, round) in rounds.iter().enumerate() {
        let (n, m) = (&round["neuron"], &round["miv"]);
        assert_eq!(n["load_s"], 10.0, "load_cells + load_connections");
        assert_eq!((n["init_s"].as_f64(), n["run_s"].as_f64(), n["spikes"].as_u64()), (Some(3.0), Some(50.0), Some(3)));
        let run = m["run_s"].as_f64().unwrap();
        assert!(run > 0.0 && m["load_s"].as_f64().unwrap() > 0.0, "{m}");
        // JSON's decimal text gives the ratio back to within an ulp or so.
        let close = |x: f64, want: f64| assert!((x - want).abs() <= 1e-12 * want, "{x} vs {want}");
        close(j["ratios"]["run"]["per_round"][k].as_f64().unwrap(), 50.0 / run);
        let total = m["load_s"].as_f64().unwrap() + m["init_s"].as_f64().unwrap() + run;
        close(j["ratios"]["total"]["per_round"][k].as_f64().unwrap(), 63.0 / total);
        // Each round's runner got the experiment's built files, cell types, synapses, stimulus, seed, t_end.
        let given = std::fs::read_to_string(out.join(format!("round{k}/args.txt"))).unwrap();
        let given: Vec<&str> = given.lines().collect();
        let after = |flag: &str| given[given.iter().position(|a| *a == flag).unwrap() + 1];
        assert!(after("--cells").ends_with("cells.h5") && std::path::Path::new(after("--cells")).is_file());
        assert!(after("--connections").ends_with("connections.h5"));
        assert!(after("--cell-types").ends_with("examples/rc-network/cell_types.yml"));
        assert!(after("--synapses").ends_with("examples/rc-network/synapses.yml"));
        assert!(after("--stimulus").ends_with("examples/rc-network/stimulus.txt"));
        assert_eq!((after("--t-end"), after("--seed"), after("--templates")), ("5", "1", templates_s));
    }
    let run = &j["ratios"]["run"];
    let v: Vec<f64> = run["per_round"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert_eq!(run["min"].as_f64().unwrap(), v.iter().copied().fold(f64::INFINITY, f64::min));
    assert_eq!(run["max"].as_f64().unwrap(), v.iter().copied().fold(0.0, f64::max));
    // miv's run was the experiment's network cut to 5 ms: its spikes are in the experiment's output.
    let spikes = std::fs::read_to_string(dir.join("spikes.csv")).unwrap();
    let last =
        spikes.lines().skip(1).filter_map(|l| l.split(',').nth(1)?.trim().parse::<f64>().ok()).fold(0.0, f64::max);
    assert!(last < 5.0, "a spike at {last} ms after --t-end 5");

    // The table names both sides and the ratios.
    let args = bench_args(exp_s, out_s, runner_s, templates_s);
    let table = miv_timeout(&args, std::time::Duration::from_secs(1800)).expect_ok("miv bench miv (table)").stdout;
    assert!(table.contains("| run |") && table.contains("spikes (MiV/miv) per round: 3/"), "{table}");
}

#[test]
fn bad_arguments_are_named() {
    let exp = reference().join("experiment-standin.yaml");
    let templates = reference().join("neuron-standin/templates");
    let (e, t) = (exp.to_str().unwrap(), templates.to_str().unwrap());
    let r = miv(&["bench", "miv", e, "--runner", "/nonexistent/run_rc.py", "--templates", t, "--mechanisms", t]);
    assert!(!r.ok() && r.stderr.contains("--runner /nonexistent/run_rc.py"), "{}", r.stderr);
    let runner = repo_root().join("tests/common/fake_run_rc.sh");
    let base = ["bench", "miv", e, "--runner", runner.to_str().unwrap(), "--templates", t, "--mechanisms", t];
    let r = miv(&[&base[..], &["--rounds", "0"]].concat());
    assert!(!r.ok() && r.stderr.contains("--rounds"), "{}", r.stderr);
    let r = miv(&["run", e, "--t-end", "0"]);
    assert!(!r.ok() && r.stderr.contains("--t-end must be a positive number"), "{}", r.stderr);
}
