//! Each NMODL construct MiV's mechanisms use, exercised by a test mechanism of mechanisms/constructs and
//! checked against an analytic solution or an independent computation.

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "mech_constructs/soma.rs"]
mod soma;

use std::sync::Arc;

use miv_nmodl::{Context, Emitted, Instances, Mechanism};
use soma::{nernst, Soma};

fn load(name: &str) -> Arc<Mechanism> {
    let path = common::repo_root().join("mechanisms").join("constructs").join(format!("{name}.mod"));
    Arc::new(Mechanism::load(&path).unwrap_or_else(|e| panic!("{e}")))
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-300)
}

/// Instances at the given voltages, with ion fields at the given values, initialised.
fn clamped(m: &Arc<Mechanism>, vs: &[f64], ions: &[(&str, f64)], ctx: &Context) -> Instances {
    let mut inst = m.instances(vs.len());
    inst.column_mut(m.info().v_field.unwrap()).copy_from_slice(vs);
    for (name, x) in ions {
        inst.column_mut(m.field(name).unwrap()).fill(*x);
    }
    inst.initialize(ctx, &mut Vec::new()).unwrap();
    inst
}

fn logistic(v: f64, half: f64, slope: f64) -> f64 {
    1.0 / (1.0 + (-(v - half) / slope).exp())
}

#[test]
fn procedure_with_table_depending_on_dt_and_celsius() {
    let m = load("kexp");
    // At voltages on the 1 mV table grid the lookup returns the tabulated values themselves, and the
    // explicit exponential update is exact for a clamped voltage: n(t) = ninf + (n0 - ninf) e^(-t q10/ntau).
    let vs = [-40.0, -65.0, 10.0, -100.0];
    let ninf = |v: f64| logistic(v, -40.0, 8.0);
    let ntau = |v: f64| {
        let x: f64 = v + 40.0;
        1.0 + 4.0 * if x.abs() > 100.0 { 0.0 } else { (-x * x / 400.0).exp() }
    };
    for usetable in [1.0, 0.0] {
        let mut ctx = Context { t: 0.0, dt: 0.025, celsius: 6.3, second_order: false };
        let mut inst = clamped(&m, &[-65.0; 4], &[("ek", -80.0)], &ctx);
        inst.set_global("usetable", usetable).unwrap();
        let n0 = ninf(-65.0);
        assert!(close(inst.get("n", 0).unwrap(), n0, 1e-13));
        inst.column_mut(m.info().v_field.unwrap()).copy_from_slice(&vs);
        let mut t = 0.0;
        // Two phases with different dt and celsius: the table must be rebuilt for each.
        for (dt, celsius, steps) in [(0.025, 6.3, 400), (0.05, 30.0, 200)] {
            ctx = Context { t, dt, celsius, second_order: false };
            let q10 = 3f64.powf((celsius - 24.0) / 10.0);
            let start: Vec<f64> = (0..4).map(|i| inst.get("n", i).unwrap()).collect();
            for _ in 0..steps {
                inst.advance_state(&ctx).unwrap();
                t += dt;
            }
            for (i, &v) in vs.iter().enumerate() {
                let want = ninf(v) + (start[i] - ninf(v)) * (-(steps as f64) * dt * q10 / ntau(v)).exp();
                let got = inst.get("n", i).unwrap();
                assert!(close(got, want, 1e-11), "usetable {usetable} v {v} dt {dt}: {got} vs {want}");
            }
        }
        inst.current(&ctx).unwrap();
        for (i, &v) in vs.iter().enumerate() {
            let n = inst.get("n", i).unwrap();
            assert!(close(inst.get("ik", i).unwrap(), 0.02 * n * n * (v + 80.0), 1e-13));
        }
    }
}

/// Backward Euler for x' = (xinf - x)/tau over `steps` steps.
fn implicit_euler(x0: f64, xinf: f64, tau: f64, dt: f64, steps: usize) -> f64 {
    (0..steps).fold(x0, |x, _| (x + dt * xinf / tau) / (1.0 + dt / tau))
}

#[test]
fn derivimplicit_is_backward_euler_on_two_coupled_gates() {
    let m = load("kadi");
    let ctx = Context { t: 0.0, dt: 0.1, celsius: 6.3, second_order: false };
    let vs = [-80.0, -50.0, -20.0];
    let mut inst = clamped(&m, &[-65.0; 3], &[("ek", -90.0)], &ctx);
    inst.column_mut(m.info().v_field.unwrap()).copy_from_slice(&vs);
    for _ in 0..300 {
        inst.advance_state(&ctx).unwrap();
    }
    for (i, &v) in vs.iter().enumerate() {
        let a = implicit_euler(logistic(-65.0, -30.0, 10.0), logistic(v, -30.0, 10.0), 2.0, 0.1, 300);
        let btau = 20.0 + 30.0 / (1.0 + ((v + 50.0) / 5.0).exp());
        let binf = |v: f64| 1.0 / (1.0 + ((v + 70.0) / 6.0).exp());
        let b = implicit_euler(binf(-65.0), binf(v), btau, 0.1, 300);
        assert!(close(inst.get("a", i).unwrap(), a, 1e-9), "a at {v}");
        assert!(close(inst.get("b", i).unwrap(), b, 1e-9), "b at {v}");
    }
}

#[test]
fn custom_ion_current_reaches_its_own_species() {
    let m = load("hion");
    let mut s = Soma::new(1000.0);
    let k = s.insert(&m);
    s.celsius = 6.3;
    s.finitialize(-65.0).unwrap();
    let h = s.pools.iter().position(|p| p.name == "h").expect("ion h exists");
    // A new species: valence from VALENCE, NEURON's default reversal potential 0 mV.
    assert_eq!((s.pools[h].valence, s.pools[h].e), (1.0, 0.0));
    s.set_ion("h", None, None, Some(-30.0));
    let mut r = s.part(k).get("r", 0).unwrap();
    for _ in 0..200 {
        let v = s.v;
        s.fadvance().unwrap();
        // ih at the start-of-step v went into the species' current; r advanced by backward Euler at the new v.
        let ih = 0.001 * r * (v - -30.0);
        assert!(close(s.pools[h].current, ih, 1e-12), "{} vs {ih}", s.pools[h].current);
        let rinf = 1.0 / (1.0 + ((s.v + 80.0) / 8.0).exp());
        r = implicit_euler(r, rinf, 50.0, s.dt, 1);
        assert!(close(s.part(k).get("r", 0).unwrap(), r, 1e-9));
    }
    assert!(s.v > -65.0, "the h current depolarises towards -30 mV: v = {}", s.v);
}

/// e * N_A and k * N_A, exact in SI since 2019 (what NEURON 9's units library gives).
const FARADAY: f64 = 1.602176634e-19 * 6.02214076e23;
const GAS: f64 = 1.380649e-23 * 6.02214076e23;

fn efun(z: f64) -> f64 {
    if z.abs() < 1e-4 {
        1.0 - z / 2.0
    } else {
        z / (z.exp() - 1.0)
    }
}

#[test]
fn ghk_current_with_tabulated_rate_functions() {
    let m = load("caghk");
    let alpha = |v: f64| 0.5 * efun(-(v + 20.0) / 10.0);
    let beta = |v: f64| 0.2 * (-(v + 40.0) / 20.0).exp();
    // NEURON's table: 201 points from -150 by 1.5 mV (accumulated), linear interpolation.
    let grid: Vec<f64> = std::iter::successors(Some(-150.0f64), |x| Some(x + 1.5)).take(201).collect();
    let lookup = |f: &dyn Fn(f64) -> f64, v: f64| {
        let xi = (1.0 / 1.5) * (v - -150.0);
        let i = xi as usize;
        let th = xi - i as f64;
        f(grid[i]) + th * (f(grid[i + 1]) - f(grid[i]))
    };
    let (cai, cao, celsius) = (1e-4, 2.0, 34.0);
    let ghk = |v: f64| {
        let z = 1e-3 * 2.0 * FARADAY * v / (GAS * (celsius + 273.15));
        1e-3 * 2.0 * FARADAY * (cai * efun(-z) - cao * efun(z))
    };
    let vs = [-33.3, 0.7, 12.345, -149.0];
    for usetable in [1.0, 0.0] {
        let ctx = Context { t: 0.0, dt: 0.025, celsius, second_order: false };
        let mut inst = m.instances(vs.len());
        inst.set_global("usetable", usetable).unwrap();
        inst.column_mut(m.info().v_field.unwrap()).copy_from_slice(&vs);
        inst.column_mut(m.field("cai").unwrap()).fill(cai);
        inst.column_mut(m.field("cao").unwrap()).fill(cao);
        inst.initialize(&ctx, &mut Vec::new()).unwrap();
        inst.current(&ctx).unwrap();
        for (i, &v) in vs.iter().enumerate() {
            let (a, b) = if usetable == 1.0 { (lookup(&alpha, v), lookup(&beta, v)) } else { (alpha(v), beta(v)) };
            let minf = a * (1.0 / (a + b));
            assert!(close(inst.get("minf", i).unwrap(), minf, 1e-12), "minf at {v}, usetable {usetable}");
            let ica = 0.0005 * minf * minf * ghk(v);
            assert!(
                close(inst.get("ica", i).unwrap(), ica, 1e-12),
                "ica at {v}: {} vs {ica}",
                inst.get("ica", i).unwrap()
            );
        }
    }
}

#[test]
fn calcium_accumulation_writes_cai_and_moves_eca() {
    let (acc, pump) = (load("cadecay"), load("capump"));
    let mut s = Soma::new(500.0);
    s.celsius = 34.0;
    s.insert(&pump);
    let k = s.insert(&acc);
    s.finitialize(-65.0).unwrap();
    let ca = s.pools.iter().position(|p| p.name == "ca").unwrap();
    assert!(s.pools[ca].style.eadvance(), "a written concentration makes eca follow Nernst");
    // cai' = -ica 1e4/(2 F depth) + (cai0 - cai)/tau with ica = -0.001 mA/cm2: exact exponential (cnexp).
    let (cai0, tau, depth, ica) = (5e-5, 50.0, 0.1, -0.001);
    let steady = cai0 - ica * 1e4 * tau / (2.0 * FARADAY * depth);
    for step in 1..=2000 {
        let ci_before = s.pools[ca].ci;
        s.fadvance().unwrap();
        let t = step as f64 * s.dt;
        let want = steady + (cai0 - steady) * (-t / tau).exp();
        let p = &s.pools[ca];
        assert!(close(p.ci, want, 1e-10), "t {t}: {} vs {want}", p.ci);
        // eca followed the concentrations at the start of the step's currents.
        assert!(close(p.e, nernst(ci_before, p.co, 2.0, 34.0), 1e-13), "eca at t {t}");
    }
    let ci = s.pools[ca].ci;
    assert!(ci > 10.0 * cai0, "the inward current filled the shell: {ci}");
    assert!(close(s.part(k).get("peak", 0).unwrap(), ci, 1e-12), "peak tracks the rising cai");
}

/// Solve a dense n x n system (test-side Gaussian elimination with partial pivoting).
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for k in 0..n {
        let p = (k..n).max_by(|&i, &j| a[i][k].abs().total_cmp(&a[j][k].abs())).unwrap();
        a.swap(k, p);
        b.swap(k, p);
        for i in k + 1..n {
            let f = a[i][k] / a[k][k];
            for j in k..n {
                a[i][j] -= f * a[k][j];
            }
            b[i] -= f * b[k];
        }
    }
    let mut x = vec![0.0; n];
    for k in (0..n).rev() {
        x[k] = (b[k] - (k + 1..n).map(|j| a[k][j] * x[j]).sum::<f64>()) / a[k][k];
    }
    x
}

#[test]
fn kinetic_scheme_with_conservation_is_implicit_euler() {
    let m = load("kin3");
    let ctx = Context { t: 0.0, dt: 0.025, celsius: 6.3, second_order: false };
    let mut inst = m.instances(1);
    inst.initialize(&ctx, &mut Vec::new()).unwrap();
    let (kco, kod, kdc) = (0.3, 0.1, 0.02);
    let dt = ctx.dt;
    let mut x = vec![1.0, 0.0, 0.0];
    for step in 1..=4000 {
        inst.advance_state(&ctx).unwrap();
        // (I - dt K) x_new = x_old for C' = -kco C + kdc D, O' = kco C - kod O, D' = kod O - kdc D.
        let a = vec![
            vec![1.0 + dt * kco, 0.0, -dt * kdc],
            vec![-dt * kco, 1.0 + dt * kod, 0.0],
            vec![0.0, -dt * kod, 1.0 + dt * kdc],
        ];
        x = solve(a, x);
        let got: Vec<f64> = ["C", "O", "D"].iter().map(|n| inst.get(n, 0).unwrap()).collect();
        assert!((got.iter().sum::<f64>() - 1.0).abs() < 1e-13, "conserved");
        for k in 0..3 {
            assert!((got[k] - x[k]).abs() < 1e-12, "step {step}: {got:?} vs {x:?}");
        }
    }
    // Steady state of the cycle: C kco = O kod = D kdc.
    let s = 1.0 / kco + 1.0 / kod + 1.0 / kdc;
    for _ in 0..100_000 {
        inst.advance_state(&ctx).unwrap();
    }
    for (n, k) in [("C", kco), ("O", kod), ("D", kdc)] {
        assert!(close(inst.get(n, 0).unwrap(), 1.0 / (k * s), 1e-9), "{n}");
    }
}

#[test]
fn nonlinear_kinetic_scheme_converges_each_step() {
    let m = load("dimer");
    let ctx = Context { t: 0.0, dt: 0.05, celsius: 6.3, second_order: false };
    let mut inst = m.instances(1);
    inst.initialize(&ctx, &mut Vec::new()).unwrap();
    let (kf, kb, influx, dt) = (2.0, 0.5, 0.01, ctx.dt);
    let (mut a, mut b) = (1.0f64, 0.0f64);
    for step in 1..=400 {
        inst.advance_state(&ctx).unwrap();
        // Test-side Newton on the backward Euler equations, to machine precision.
        let (a0, b0) = (a, b);
        for _ in 0..50 {
            let f = kf * a * a - kb * b;
            let r = [a - a0 - dt * (influx - 2.0 * f), b - b0 - dt * f];
            let j = vec![vec![1.0 + dt * 4.0 * kf * a, -dt * 2.0 * kb], vec![-dt * 2.0 * kf * a, 1.0 + dt * kb]];
            let d = solve(j, vec![-r[0], -r[1]]);
            a += d[0];
            b += d[1];
        }
        let (ga, gb) = (inst.get("A", 0).unwrap(), inst.get("B", 0).unwrap());
        assert!((ga - a).abs() < 1e-9 && (gb - b).abs() < 1e-9, "step {step}: ({ga}, {gb}) vs ({a}, {b})");
        // A + 2B grows by exactly the influx (the reaction conserves it).
        assert!(((ga + 2.0 * gb) - (1.0 + influx * dt * step as f64)).abs() < 1e-9);
    }
}

#[test]
fn net_receive_weight_vectors_and_their_initial_block() {
    let m = load("countsyn");
    let ctx = Context { t: 0.0, dt: 0.025, celsius: 6.3, second_order: false };
    let mut inst = m.instances(2);
    inst.initialize(&ctx, &mut Vec::new()).unwrap();
    // Two connections onto instance 1, each with its own (weight, scale, count).
    let mut c1 = vec![0.002, 2.0, 7.0];
    let mut c2 = vec![0.001, 0.5, -3.0];
    inst.net_init(1, &mut c1, 0.0).unwrap();
    inst.net_init(1, &mut c2, 0.0).unwrap();
    assert_eq!((c1[2], c2[2]), (0.0, 0.0), "NET_RECEIVE INITIAL resets count");
    let mut ev = Vec::new();
    for _ in 0..3 {
        inst.net_receive(1, &mut c1, 0.0, 1.0, &mut ev).unwrap();
    }
    inst.net_receive(1, &mut c2, 0.0, 1.0, &mut ev).unwrap();
    assert_eq!((c1[2], c2[2]), (3.0, 1.0), "each connection counts its own events");
    assert_eq!(inst.get("total", 1).unwrap(), 4.0);
    assert_eq!(inst.get("total", 0).unwrap(), 0.0, "instance 0 untouched");
    assert!(close(inst.get("g", 1).unwrap(), 3.0 * 0.002 * 2.0 + 0.001 * 0.5, 1e-15));
    assert!(ev.is_empty());
}

#[test]
fn net_send_and_net_event_with_random_intervals() {
    let lib = miv_nmodl::Library::standard().unwrap();
    let netstim = lib.get("NetStim").unwrap();
    let run = |key: [u32; 4]| {
        let mut s = Soma::new(100.0);
        let k = s.insert(netstim);
        for (n, v) in [("interval", 5.0), ("number", 1e9), ("start", 0.0), ("noise", 1.0)] {
            s.part(k).set(n, 0, v).unwrap();
        }
        s.part(k).set_random_stream(0, key);
        s.finitialize(-65.0).unwrap();
        for _ in 0..400_000 {
            s.fadvance().unwrap();
        }
        s.emitted.iter().map(|e| e.1).collect::<Vec<f64>>()
    };
    let spikes = run([1, 2, 3, 4]);
    assert_eq!(spikes, run([1, 2, 3, 4]), "same stream, same spikes");
    assert_ne!(spikes, run([1, 2, 3, 5]), "another stream, other spikes");
    let isi: Vec<f64> = spikes.windows(2).map(|w| w[1] - w[0]).collect();
    let n = isi.len() as f64;
    let mean = isi.iter().sum::<f64>() / n;
    let var = isi.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    // noise = 1: exponential intervals of mean `interval` (mean = sd = 5 ms).
    assert!(n > 1500.0);
    assert!((mean - 5.0).abs() < 5.0 * 5.0 / n.sqrt(), "mean {mean}");
    assert!((var.sqrt() - 5.0).abs() < 0.5, "sd {}", var.sqrt());
}

#[test]
fn random_verbatim_noise_has_the_ou_statistics_and_restarts() {
    let m = load("ounoise");
    let n = 4000;
    let ctx = Context { t: 0.0, dt: 0.025, celsius: 6.3, second_order: false };
    let mut inst = m.instances(n);
    for i in 0..n {
        inst.set_random_stream(i, [9, 0, i as u32, 0]);
    }
    let mut ev = Vec::new();
    inst.initialize(&ctx, &mut ev).unwrap();
    assert_eq!(ev.len(), n, "INITIAL net_send per instance");
    assert!(ev.iter().all(|e| matches!(e, Emitted::SelfEvent { delay, flag, .. } if *delay == 0.1 && *flag == 1.0)));
    let steps = 600;
    let mut first = Vec::new();
    for step in 0..steps {
        for i in 0..n {
            let mut w = [0.0];
            let mut out = Vec::new();
            inst.net_receive(i, &mut w, 1.0, 0.1 * (step + 1) as f64, &mut out).unwrap();
            assert_eq!(out.len(), 1, "the update re-arms itself");
        }
        if step == 0 {
            first = (0..n).map(|i| inst.get("g1", i).unwrap()).collect();
        }
    }
    let g: Vec<f64> = (0..n).map(|i| inst.get("g1", i).unwrap()).collect();
    let mean = g.iter().sum::<f64>() / n as f64;
    let var = g.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
    let sd = 0.002;
    // After 600 updates (12 time constants) g1 is at its stationary N(0, sd^2).
    assert!(mean.abs() < 5.0 * sd / (n as f64).sqrt(), "mean {mean}");
    assert!((var - sd * sd).abs() < 5.0 * sd * sd * (2.0 / n as f64).sqrt(), "var {var}");
    // INITIAL restarts each stream: the first update repeats exactly.
    inst.initialize(&ctx, &mut Vec::new()).unwrap();
    for i in 0..n {
        inst.net_receive(i, &mut [0.0], 1.0, 0.1, &mut Vec::new()).unwrap();
    }
    let again: Vec<f64> = (0..n).map(|i| inst.get("g1", i).unwrap()).collect();
    assert_eq!(first, again);
}

#[test]
fn vecstim_plays_its_vector_through_the_recognised_verbatim() {
    let lib = miv_nmodl::Library::standard().unwrap();
    let mut s = Soma::new(100.0);
    let k = s.insert(lib.get("VecStim").unwrap());
    s.part(k).set_vector(0, vec![0.5, 0.5, 3.25, 10.0]);
    s.finitialize(-65.0).unwrap();
    for _ in 0..800 {
        s.fadvance().unwrap();
    }
    let times: Vec<f64> = s.emitted.iter().map(|e| e.1).collect();
    assert_eq!(times, vec![0.5, 0.5, 3.25, 10.0]);
    // No vector: no events at all.
    let mut s = Soma::new(100.0);
    s.insert(lib.get("VecStim").unwrap());
    s.finitialize(-65.0).unwrap();
    for _ in 0..100 {
        s.fadvance().unwrap();
    }
    assert!(s.emitted.is_empty());
}

#[test]
fn second_order_halves_implicit_steps_and_extrapolates_as_neuron() {
    // nocmodl under secondorder: derivimplicit and sparse take dt/2, then x += (dt/2) x' (x' from the
    // solution for derivimplicit, (x - x_old)/(dt/2) for sparse); cnexp is unchanged.
    let ctx = Context { t: 0.0, dt: 0.1, celsius: 6.3, second_order: true };
    let h = ctx.dt / 2.0;
    let kadi = load("kadi");
    let mut inst = clamped(&kadi, &[-65.0], &[("ek", -90.0)], &ctx);
    inst.column_mut(kadi.info().v_field.unwrap())[0] = -40.0;
    let (ainf, tau) = (logistic(-40.0, -30.0, 10.0), 2.0);
    let mut a = logistic(-65.0, -30.0, 10.0);
    for _ in 0..100 {
        inst.advance_state(&ctx).unwrap();
        let half = implicit_euler(a, ainf, tau, h, 1);
        a = half + h * ((ainf - half) / tau);
        assert!(close(inst.get("a", 0).unwrap(), a, 1e-9));
    }
    let kin = load("kin3");
    let mut inst = kin.instances(1);
    inst.initialize(&ctx, &mut Vec::new()).unwrap();
    let (kco, kod, kdc) = (0.3, 0.1, 0.02);
    let mut x = vec![1.0, 0.0, 0.0];
    for _ in 0..100 {
        inst.advance_state(&ctx).unwrap();
        let a = vec![
            vec![1.0 + h * kco, 0.0, -h * kdc],
            vec![-h * kco, 1.0 + h * kod, 0.0],
            vec![0.0, -h * kod, 1.0 + h * kdc],
        ];
        let half = solve(a, x.clone());
        x = (0..3).map(|k| 2.0 * half[k] - x[k]).collect();
        let got: Vec<f64> = ["C", "O", "D"].iter().map(|n| inst.get(n, 0).unwrap()).collect();
        for k in 0..3 {
            assert!((got[k] - x[k]).abs() < 1e-12, "{got:?} vs {x:?}");
        }
    }
}

#[test]
fn random_streams_are_keyed_through_the_group_interface() {
    use miv_nmodl::adapter::ModMechanism;
    use miv_solvers::mechanism::{Cx, EventCx, Mechanism as _, Outbox, Site};
    let m = load("ounoise");
    let mut k = ModMechanism::new(&m);
    let params = k.info().defaults();
    for _ in 0..3 {
        k.add_instance(&Site { node: 0, scale: 1.0, ions: vec![], cell: 0, area: 100.0, diam: 10.0 }, &params);
    }
    for (i, key) in [(0, [5, 6, 7, 0]), (1, [5, 6, 7, 0]), (2, [5, 6, 8, 0])] {
        k.set_random_stream(i, key).unwrap();
    }
    let (v, mut rhs, mut d, mut out) = ([-65.0], [0.0], [0.0], Outbox::default());
    let mut cx = Cx {
        t: 0.0,
        dt: 0.025,
        celsius: 6.3,
        second_order: false,
        v: &v,
        rhs: &mut rhs,
        d: &mut d,
        electrode: None,
        ions: &mut [],
        ion_ids: &[],
        out: &mut out,
    };
    k.initialize(&mut cx).unwrap();
    assert_eq!(out.items.len(), 3, "one self-event per instance, for the group to queue");
    let mut out = Outbox::default();
    for i in 0..3 {
        k.net_receive(i, &mut [0.0], 1.0, &mut EventCx { t: 0.1, out: &mut out }).unwrap();
    }
    let g1 = |i| k.state(i, k.info().state_index("g1").unwrap());
    assert_eq!(g1(0), g1(1), "same key, same draw");
    assert_ne!(g1(0), g1(2), "another key, another draw");
}
