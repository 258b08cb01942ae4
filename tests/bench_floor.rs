//! `miv bench floor` on the small reference network with the stand-in biophysics: the division, exp and
//! multiply-add probes, the census of the mechanisms that ran, and the floors made of the two.

mod common;

use common::miv_net::*;
use common::*;

#[test]
fn each_floor_is_the_counted_operations_at_the_probed_rate() {
    let exp = prepare_network("bench_floor", &reference(), "experiment-standin.yaml");
    let r = miv_timeout(
        &["bench", "floor", exp.to_str().unwrap(), "--t-end", "0.25", "--reps", "2", "--json"],
        std::time::Duration::from_secs(1800),
    )
    .expect_ok("miv bench floor");
    let j: serde_json::Value = serde_json::from_str(r.stdout.lines().last().unwrap()).unwrap();
    let ns = j["division_ns"].as_f64().unwrap();
    assert!(ns > 0.01 && ns < 100.0, "{ns} ns per division");
    // An exp is some forty multiplications and additions.
    let (exp_ns, other_ns) = (j["exp_ns"].as_f64().unwrap(), j["other_ns"].as_f64().unwrap());
    assert!(other_ns > 0.0 && exp_ns > 5.0 * other_ns && exp_ns < 100.0, "{j}");
    // The first step builds the specialised kernels and is not timed: 0.25 ms of 0.025 ms steps less one.
    assert_eq!((j["dt"].as_f64(), j["steps"].as_u64()), (Some(0.025), Some(9)));
    assert!(j["measured_us_per_step"].as_f64().unwrap() > 0.0);
    let rows = j["mechanisms"].as_array().unwrap();
    let row = |name: &str| rows.iter().find(|r| r["mechanism"] == name).unwrap_or_else(|| panic!("{name}: {j}"));
    // LinExp2Syn: g = B - A and i = g (v - e) at two voltages; its cnexp updates have step-invariant rates,
    // whose exp and divisions are computed once (docs/nmodl.md). Nothing per step divides or calls exp.
    let syn = row("LinExp2Syn");
    assert_eq!((syn["divisions_per_instance"].as_f64(), syn["exps_per_instance"].as_f64()), (Some(0.0), Some(0.0)));
    // LinExp2SynNMDA (mechanisms/miv): the magnesium block 1 / (1 + exp(-gamma (v + vshift)) mg / Kd) at
    // v + 0.001 and at v, each with one exp and two divisions of per-instance values.
    let nmda = row("LinExp2SynNMDA");
    assert_eq!(nmda["exps_per_instance"].as_f64(), Some(2.0));
    assert_eq!(nmda["divisions_per_instance"].as_f64(), Some(4.0), "{nmda}");
    // Each floor is the count per instance times the instances times the probe's time, summed over the rows.
    for (count, rate, floor, sum) in [
        ("divisions_per_instance", ns, "division_floor_us", "division_floor_us_per_step"),
        ("exps_per_instance", exp_ns, "exp_floor_us", "exp_floor_us_per_step"),
        ("other_per_instance", other_ns, "other_floor_us", "other_floor_us_per_step"),
    ] {
        let mut total = 0.0;
        for r in rows {
            let n = r["instances"].as_f64().unwrap();
            assert!(n > 0.0, "{r}");
            let expected = r[count].as_f64().unwrap() * n * rate / 1000.0;
            assert!((r[floor].as_f64().unwrap() - expected).abs() <= 1e-9 * expected.max(1.0), "{floor}: {r}");
            total += expected;
        }
        let s = j[sum].as_f64().unwrap();
        assert!(total > 0.0 && (s - total).abs() <= 1e-9 * total, "{sum}: {s} vs {total}");
    }
    // The stand-in's channels are the hand-written hh and pas, which do not count their arithmetic.
    let not_counted: Vec<&str> = j["not_counted"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(not_counted.contains(&"hh") && not_counted.contains(&"pas"), "{not_counted:?}");
    discard_scratch("bench_floor");
}

#[test]
fn a_bad_t_end_is_named() {
    let r = miv(&["bench", "floor", "missing.yaml", "--t-end", "0"]);
    assert!(!r.ok());
    assert!(r.stderr.contains("--t-end must be a positive number of ms, not 0"), "{}", r.stderr);
}
