//! The executable form of a mechanism: a straight-line register program run per chunk of `W`
//! instances. Every vector instruction loops over the `W` lanes of its registers, so the cost of
//! dispatching one instruction is shared by `W` instances and the loops vectorise. Values that are
//! the same for every instance (constants, globals, dt, celsius and whatever is computed only from
//! them) live in scalar slots and are computed once per call, before the chunks. Branches are
//! evaluated both ways and merged by `Select`; effects (random draws, events) carry a lane mask.
//! Implicit solves (derivimplicit, sparse) are single instructions holding the residual program
//! they iterate.

use crate::ops::{bin, un, Bin, Un};
use miv_partition::rng::CounterStream;

/// Lanes of the bulk kernels.
pub const LANES: usize = 64;

/// An operand: a vector register or a scalar slot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Src {
    V(u16),
    S(u32),
}

/// Scalar (uniform) instructions, run once per call before the chunks.
#[derive(Debug, Clone, PartialEq)]
pub enum SOp {
    Un { op: Un, dst: u32, a: u32 },
    Bin { op: Bin, dst: u32, a: u32, b: u32 },
    Select { dst: u32, c: u32, a: u32, b: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RandKind {
    /// normrand(mean, sd)
    Normal(Src, Src),
    /// exprand(mean)
    Exponential(Src),
    /// scop_random()
    Uniform,
}

/// Newton iteration of NEURON's derivimplicit (finite-difference Jacobian) or sparse (analytic
/// Jacobian, the KINETIC scheme's matrix).
#[derive(Debug, Clone, PartialEq)]
pub struct Implicit {
    pub sparse: bool,
    /// Sparse scheme linear in the states: one step, no clipping of negative states.
    pub linear: bool,
    /// Initial state values (copied into `states` before iterating).
    pub init: Vec<Src>,
    /// Registers holding the states (solved in place; the result after the instruction).
    pub states: Vec<u16>,
    /// Registers holding the states at the start of the step.
    pub saved: Vec<u16>,
    /// Registers the program fills with the residuals.
    pub resid: Vec<u16>,
    /// Sparse only: registers the program fills with the Newton matrix, row-major.
    pub matrix: Vec<u16>,
    pub program: Vec<Op>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Load {
        dst: u16,
        field: u32,
    },
    Store {
        field: u32,
        src: u16,
    },
    Splat {
        dst: u16,
        src: u32,
    },
    Un {
        op: Un,
        dst: u16,
        a: u16,
    },
    Bin {
        op: Bin,
        dst: u16,
        a: Src,
        b: Src,
    },
    Select {
        dst: u16,
        c: Src,
        a: Src,
        b: Src,
    },
    /// nocmodl's cnexp update of a state: `x + (1 - exp(dt*a))*(inf - x)`, `inf` = `-(b)/(a)`.
    Cnexp {
        dst: u16,
        x: u16,
        a: Src,
        inf: Src,
        dt: u32,
    },
    /// NEURON's table lookup with linear interpolation, one output per tabulated variable.
    Table {
        table: u32,
        x: Src,
        dst: Box<[u16]>,
    },
    Random {
        kind: RandKind,
        dst: u16,
        mask: Option<u16>,
    },
    SetSeed {
        seed: Src,
        mask: Option<u16>,
    },
    RestartRandom {
        mask: Option<u16>,
    },
    NetSend {
        delay: Src,
        flag: Src,
        mask: Option<u16>,
    },
    NetEvent {
        t: Src,
        mask: Option<u16>,
    },
    /// VecStim element(): `index`, `etime` in, updated values out.
    VecElement {
        index: u16,
        etime: u16,
        index_out: u16,
        etime_out: u16,
        mask: Option<u16>,
    },
    /// NET_RECEIVE argument (weight vector entry or flag) in and out.
    ArgLoad {
        dst: u16,
        arg: u16,
    },
    ArgStore {
        arg: u16,
        src: u16,
    },
    Implicit(Box<Implicit>),
}

/// A compiled kernel.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Program {
    pub sops: Vec<SOp>,
    pub ops: Vec<Op>,
    pub n_regs: usize,
    /// Scalar slots: constants pre-filled; globals and simulation values are written per call.
    pub scalars: Vec<f64>,
    /// Scratch per lane needed by implicit solves (largest system size).
    pub max_system: usize,
    /// The same program as native code, when it could be compiled (see [`crate::jit`]).
    pub native: crate::jit::Native,
}

impl Program {
    /// Move every element-wise instruction whose operands are all the same for every instance
    /// (scalar slots, registers filled by `Splat`, and values made only of them) into the scalar
    /// prologue: it is computed once per call into a new scalar slot and its register filled by a
    /// `Splat` of that slot. The same IEEE operations run on the same operands, so every lane gets
    /// the bits it got before. Used on kernels specialised to fields all instances share (a synapse
    /// type's `mg / Kd`). Returns the number of instructions moved.
    pub fn hoist_uniform(&mut self) -> usize {
        // Per register: the scalar slot it holds a broadcast of, if it does.
        let mut slot: Vec<Option<u32>> = vec![None; self.n_regs];
        // The scalar slot an operand is, or holds a broadcast of.
        fn of(s: Src, slot: &[Option<u32>]) -> Option<u32> {
            match s {
                Src::S(x) => Some(x),
                Src::V(r) => slot[r as usize],
            }
        }
        let mut moved = 0;
        for i in 0..self.ops.len() {
            let next = self.scalars.len() as u32;
            let scalar = match self.ops[i] {
                Op::Splat { dst, src } => {
                    slot[dst as usize] = Some(src);
                    continue;
                }
                Op::Un { op, dst, a } => slot[a as usize].map(|a| (dst, SOp::Un { op, dst: next, a })),
                Op::Bin { op, dst, a, b } => match (of(a, &slot), of(b, &slot)) {
                    (Some(a), Some(b)) => Some((dst, SOp::Bin { op, dst: next, a, b })),
                    _ => None,
                },
                Op::Select { dst, c, a, b } => match (of(c, &slot), of(a, &slot), of(b, &slot)) {
                    (Some(c), Some(a), Some(b)) => Some((dst, SOp::Select { dst: next, c, a, b })),
                    _ => None,
                },
                _ => None,
            };
            match (scalar, crate::jit::writes(&self.ops[i])) {
                (Some((dst, sop)), _) => {
                    self.scalars.push(0.0);
                    self.sops.push(sop);
                    self.ops[i] = Op::Splat { dst, src: next };
                    slot[dst as usize] = Some(next);
                    moved += 1;
                }
                (None, Some(dst)) => slot[dst as usize] = None,
                (None, None) if matches!(self.ops[i], Op::Store { .. }) => {}
                // Instructions writing several registers (table lookups, implicit solves, ...).
                (None, None) => slot.iter_mut().for_each(|s| *s = None),
            }
        }
        moved
    }
}

/// A table built for one TABLE statement.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TableData {
    pub tmin: f64,
    pub mfac: f64,
    pub intervals: usize,
    /// One column per tabulated variable: `intervals + 1` points and a copy of the last one.
    pub columns: Vec<Vec<f64>>,
}

/// Something a kernel asks the simulator to do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Emitted {
    /// net_send: deliver a self-event to this instance after `delay` ms with `flag`.
    SelfEvent { instance: usize, delay: f64, flag: f64 },
    /// net_event: this instance fires at time `t`.
    Spike { instance: usize, t: f64 },
}

/// Why a chunk could not finish.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SolveFailure {
    pub instance: usize,
    pub sparse: bool,
    pub iterations: usize,
}

/// What a run reads and writes besides registers.
pub struct Env<'a> {
    /// Instance fields, `field * cap + instance`.
    pub data: &'a mut [f64],
    pub cap: usize,
    pub tables: &'a [TableData],
    /// One stream per instance.
    pub rng: &'a mut [CounterStream],
    /// One played vector per instance (VecStim).
    pub vectors: &'a [Vec<f64>],
    /// NET_RECEIVE arguments (weights, then flag).
    pub args: &'a mut [f64],
    pub events: &'a mut Vec<Emitted>,
}

/// Registers and solver scratch for one width; reused between calls.
#[derive(Debug, Default)]
pub struct Workspace<const W: usize> {
    regs: Vec<[f64; W]>,
    scal: Vec<f64>,
    scratch: Vec<f64>,
    /// Native code: column start of every field, and spill slots.
    bases: Vec<*mut f64>,
    spill: Vec<f64>,
}

// SAFETY: `bases` only holds pointers into the `Env` of the current call; they are rewritten
// before every use and never dereferenced outside `run`.
unsafe impl<const W: usize> Send for Workspace<W> {}

impl<const W: usize> Workspace<W> {
    pub fn new() -> Self {
        Workspace { regs: Vec::new(), scal: Vec::new(), scratch: Vec::new(), bases: Vec::new(), spill: Vec::new() }
    }
}

/// Run `program` on instances `first..first+count` (`first` a multiple of `W`; the storage capacity
/// a multiple of `W` so whole chunks can be loaded). `set_scalars` writes globals and simulation
/// values into the scalar slots before the uniform prologue runs.
pub fn run<const W: usize>(
    program: &Program,
    ws: &mut Workspace<W>,
    env: &mut Env,
    first: usize,
    count: usize,
    set_scalars: &dyn Fn(&mut [f64]),
) -> Result<(), SolveFailure> {
    ws.scal.clear();
    ws.scal.extend_from_slice(&program.scalars);
    set_scalars(&mut ws.scal);
    for op in &program.sops {
        match *op {
            SOp::Un { op, dst, a } => ws.scal[dst as usize] = un(op, ws.scal[a as usize]),
            SOp::Bin { op, dst, a, b } => ws.scal[dst as usize] = bin(op, ws.scal[a as usize], ws.scal[b as usize]),
            SOp::Select { dst, c, a, b } => {
                ws.scal[dst as usize] =
                    if ws.scal[c as usize] != 0.0 { ws.scal[a as usize] } else { ws.scal[b as usize] }
            }
        }
    }
    if let (Some(code), true, LANES) = (&program.native.0, simd_enabled(), W) {
        run_native(code, ws, env, first, count);
        return Ok(());
    }
    if ws.regs.len() < program.n_regs {
        ws.regs.resize(program.n_regs, [0.0; W]);
    }
    let m = program.max_system;
    let need = W * (m * m * 2 + m * 6 + 4);
    if ws.scratch.len() < need {
        ws.scratch.resize(need, 0.0);
    }
    let mut base = first;
    let end = first + count;
    while base < end {
        let active = (end - base).min(W);
        let mut c = Chunk { regs: &mut ws.regs, scal: &ws.scal, env: &mut *env, base, active };
        exec(&program.ops, &mut c, &mut ws.scratch)?;
        base += W;
    }
    Ok(())
}

/// Run native code on instances `first..first+count`, rounded up to whole steps of its loop (the
/// storage capacity is a multiple of [`LANES`], so the rounded range stays inside it).
fn run_native<const W: usize>(
    code: &crate::jit::Code,
    ws: &mut Workspace<W>,
    env: &mut Env,
    first: usize,
    count: usize,
) {
    let step = code.step;
    let end = (first + count).div_ceil(step) * step;
    let fields = env.data.len() / env.cap.max(1);
    assert!(first % step == 0 && end <= env.cap && code.max_field < fields);
    ws.bases.clear();
    let data = env.data.as_mut_ptr();
    // SAFETY: f * cap < data.len() for every field.
    ws.bases.extend((0..fields).map(|f| unsafe { data.add(f * env.cap) }));
    ws.spill.resize(code.spill, 0.0);
    // SAFETY: every column holds `cap` >= end values (asserted), `scal` has every slot of the
    // program, and the code was only compiled because the CPU has AVX2.
    unsafe { code.run(&ws.bases, &ws.scal, &mut ws.spill, first, end) };
}

#[inline(always)]
fn src<const W: usize>(regs: &[[f64; W]], scal: &[f64], s: Src) -> [f64; W] {
    match s {
        Src::V(r) => regs[r as usize],
        Src::S(k) => [scal[k as usize]; W],
    }
}

#[inline(always)]
fn lane_on<const W: usize>(regs: &[[f64; W]], mask: Option<u16>, l: usize) -> bool {
    mask.is_none_or(|m| regs[m as usize][l] != 0.0)
}

/// The instruction loop, compiled for the baseline target, AVX2 and AVX-512F (chosen at run time, as
/// the hand-written kernels' `multiversion!`). None uses FMA contraction, so all give the same bits.
#[inline(always)]
fn exec_body<const W: usize>(ops: &[Op], c: &mut Chunk<W>, scratch: &mut [f64]) -> Result<(), SolveFailure> {
    let (scal, base, active) = (c.scal, c.base, c.active);
    let regs = &mut *c.regs;
    let env = &mut *c.env;
    for op in ops {
        match op {
            Op::Load { dst, field } => {
                let off = *field as usize * env.cap + base;
                regs[*dst as usize].copy_from_slice(&env.data[off..off + W]);
            }
            Op::Store { field, src: s } => {
                let off = *field as usize * env.cap + base;
                env.data[off..off + W].copy_from_slice(&regs[*s as usize]);
            }
            Op::Splat { dst, src: s } => regs[*dst as usize] = [scal[*s as usize]; W],
            Op::Un { op, dst, a } => unary::<W>(*op, regs, *dst, *a),
            Op::Bin { op, dst, a, b } => binary::<W>(*op, regs, scal, *dst, *a, *b),
            Op::Cnexp { dst, x, a, inf, dt } => {
                let dt = scal[*dt as usize];
                let step = |x: f64, a: f64, inf: f64| x + (1.0 - miv_solvers::fastmath::exp(dt * a)) * (inf - x);
                match (*a, *inf) {
                    (Src::V(ar), Src::V(br)) => {
                        let (d, xv, av, bv) = dst_and_three(regs, *dst, *x, ar, br);
                        for l in 0..W {
                            d[l] = step(xv[l], av[l], bv[l]);
                        }
                    }
                    _ => {
                        let (av, bv) = (src(regs, scal, *a), src(regs, scal, *inf));
                        let (d, xv) = dst_and_src(regs, *dst, *x);
                        for l in 0..W {
                            d[l] = step(xv[l], av[l], bv[l]);
                        }
                    }
                }
            }
            Op::Select { dst, c, a, b } => match (*c, *a, *b) {
                (Src::V(cr), Src::V(ar), Src::V(br)) => {
                    let (d, cv, av, bv) = dst_and_three(regs, *dst, cr, ar, br);
                    for l in 0..W {
                        d[l] = if cv[l] != 0.0 { av[l] } else { bv[l] };
                    }
                }
                _ => {
                    let (c, a, b) = (src(regs, scal, *c), src(regs, scal, *a), src(regs, scal, *b));
                    let d = &mut regs[*dst as usize];
                    for l in 0..W {
                        d[l] = if c[l] != 0.0 { a[l] } else { b[l] };
                    }
                }
            },
            Op::Table { table, x, dst } => {
                // NEURON's lookup: clamp below to the first point, above to the last, NaN stays
                // NaN. Columns carry one extra copy of their last point, so the upper clamp is an
                // exact interpolation with theta = 0.
                let t = &env.tables[*table as usize];
                let x = src(regs, scal, *x);
                let n = t.intervals as f64;
                let mut idx = [0usize; W];
                let mut theta = [0.0f64; W];
                for l in 0..W {
                    let xi = t.mfac * (x[l] - t.tmin);
                    let c = if xi <= 0.0 {
                        0.0
                    } else if xi >= n {
                        n
                    } else {
                        xi
                    };
                    idx[l] = c as usize;
                    theta[l] = c - idx[l] as f64;
                }
                for (k, &r) in dst.iter().enumerate() {
                    let col = &t.columns[k];
                    let d = &mut regs[r as usize];
                    for l in 0..W {
                        let (a, b) = (col[idx[l]], col[idx[l] + 1]);
                        d[l] = a + theta[l] * (b - a);
                    }
                }
            }
            Op::Random { kind, dst, mask } => {
                let mut out = [0.0; W];
                for (l, o) in out.iter_mut().enumerate().take(active) {
                    if !lane_on(regs, *mask, l) {
                        continue;
                    }
                    let s = &mut env.rng[base + l];
                    *o = match *kind {
                        RandKind::Normal(m, sd) => src(regs, scal, m)[l] + src(regs, scal, sd)[l] * s.normal(),
                        RandKind::Exponential(m) => s.exponential(src(regs, scal, m)[l]),
                        RandKind::Uniform => s.uniform(),
                    };
                }
                regs[*dst as usize] = out;
            }
            Op::SetSeed { seed, mask } => {
                let seed = src(regs, scal, *seed);
                for l in 0..active {
                    if lane_on(regs, *mask, l) {
                        let s = &mut env.rng[base + l];
                        s.key[3] = seed[l] as i64 as u32;
                        s.restart();
                    }
                }
            }
            Op::RestartRandom { mask } => {
                for l in 0..active {
                    if lane_on(regs, *mask, l) {
                        env.rng[base + l].restart();
                    }
                }
            }
            Op::NetSend { delay, flag, mask } => {
                let (d, f) = (src(regs, scal, *delay), src(regs, scal, *flag));
                for l in 0..active {
                    if lane_on(regs, *mask, l) {
                        env.events.push(Emitted::SelfEvent { instance: base + l, delay: d[l], flag: f[l] });
                    }
                }
            }
            Op::NetEvent { t, mask } => {
                let t = src(regs, scal, *t);
                for l in 0..active {
                    if lane_on(regs, *mask, l) {
                        env.events.push(Emitted::Spike { instance: base + l, t: t[l] });
                    }
                }
            }
            Op::VecElement { index, etime, index_out, etime_out, mask } => {
                let (mut ix, mut et) = (regs[*index as usize], regs[*etime as usize]);
                for l in 0..active {
                    if !lane_on(regs, *mask, l) || ix[l] < 0.0 {
                        continue;
                    }
                    let vec = env.vectors.get(base + l).map(Vec::as_slice).unwrap_or(&[]);
                    let i = ix[l] as usize;
                    if i < vec.len() {
                        et[l] = vec[i];
                        ix[l] += 1.0;
                    } else {
                        ix[l] = -1.0;
                    }
                }
                regs[*index_out as usize] = ix;
                regs[*etime_out as usize] = et;
            }
            Op::ArgLoad { dst, arg } => regs[*dst as usize] = [env.args[*arg as usize]; W],
            Op::ArgStore { arg, src: s } => env.args[*arg as usize] = regs[*s as usize][0],
            Op::Implicit(imp) => {
                for (k, &s) in imp.states.iter().enumerate() {
                    regs[s as usize] = src(regs, scal, imp.init[k]);
                }
                for (k, &s) in imp.saved.iter().enumerate() {
                    regs[s as usize] = regs[imp.states[k] as usize];
                }
                let mut c = Chunk { regs: &mut *regs, scal, env: &mut *env, base, active };
                let r = if imp.sparse { sparse(imp, &mut c, scratch) } else { newton(imp, &mut c, scratch) };
                r.map_err(|(lane, iterations)| SolveFailure { instance: base + lane, sparse: imp.sparse, iterations })?;
            }
        }
    }
    Ok(())
}

/// The destination register and a source register, which the register allocator keeps apart.
#[inline(always)]
fn dst_and_src<const W: usize>(regs: &mut [[f64; W]], d: u16, a: u16) -> (&mut [f64; W], &[f64; W]) {
    let (d, a) = (d as usize, a as usize);
    assert!(d != a && d < regs.len() && a < regs.len());
    // SAFETY: d != a and both in bounds, so the two references do not overlap.
    unsafe {
        let p = regs.as_mut_ptr();
        (&mut *p.add(d), &*p.add(a))
    }
}

/// The destination and three sources (which may coincide with each other).
#[inline(always)]
#[allow(clippy::type_complexity)]
fn dst_and_three<const W: usize>(
    regs: &mut [[f64; W]],
    d: u16,
    a: u16,
    b: u16,
    c: u16,
) -> (&mut [f64; W], &[f64; W], &[f64; W], &[f64; W]) {
    let (d, a, b, c) = (d as usize, a as usize, b as usize, c as usize);
    assert!(d != a && d != b && d != c && d < regs.len() && a < regs.len() && b < regs.len() && c < regs.len());
    // SAFETY: d differs from a, b and c and all are in bounds; the sources are only read.
    unsafe {
        let p = regs.as_mut_ptr();
        (&mut *p.add(d), &*p.add(a), &*p.add(b), &*p.add(c))
    }
}

/// The destination and two sources (which may be the same register).
#[inline(always)]
fn dst_and_two<const W: usize>(regs: &mut [[f64; W]], d: u16, a: u16, b: u16) -> (&mut [f64; W], &[f64; W], &[f64; W]) {
    let (d, a, b) = (d as usize, a as usize, b as usize);
    assert!(d != a && d != b && d < regs.len() && a < regs.len() && b < regs.len());
    // SAFETY: d differs from a and b and all are in bounds; a and b are only read.
    unsafe {
        let p = regs.as_mut_ptr();
        (&mut *p.add(d), &*p.add(a), &*p.add(b))
    }
}

#[inline(always)]
fn unary<const W: usize>(op: Un, regs: &mut [[f64; W]], dst: u16, a: u16) {
    let (d, x) = dst_and_src(regs, dst, a);
    macro_rules! lanes {
        ($f:expr) => {
            for l in 0..W {
                d[l] = $f(x[l]);
            }
        };
    }
    match op {
        Un::Neg => lanes!(|v: f64| -v),
        Un::Exp => lanes!(miv_solvers::fastmath::exp),
        Un::Fabs => lanes!(f64::abs),
        other => lanes!(|v| un(other, v)),
    }
}

fn exec_baseline<const W: usize>(ops: &[Op], c: &mut Chunk<W>, scratch: &mut [f64]) -> Result<(), SolveFailure> {
    exec_body(ops, c, scratch)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn exec_avx2<const W: usize>(ops: &[Op], c: &mut Chunk<W>, scratch: &mut [f64]) -> Result<(), SolveFailure> {
    exec_body(ops, c, scratch)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn exec_avx512<const W: usize>(ops: &[Op], c: &mut Chunk<W>, scratch: &mut [f64]) -> Result<(), SolveFailure> {
    exec_body(ops, c, scratch)
}

/// Off: always run the baseline variant (to compare the two).
static SIMD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Allow (default) or forbid the SIMD variants of the kernels and native code.
pub fn set_simd(enabled: bool) {
    SIMD.store(enabled, std::sync::atomic::Ordering::Relaxed);
}

/// Held by tests that switch SIMD off or need native code to run (the switch is process-wide and
/// tests run in parallel threads).
#[cfg(test)]
pub(crate) fn simd_switch_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether SIMD variants and native code may run (see [`set_simd`]).
pub fn simd_enabled() -> bool {
    SIMD.load(std::sync::atomic::Ordering::Relaxed)
}

fn exec<const W: usize>(ops: &[Op], c: &mut Chunk<W>, scratch: &mut [f64]) -> Result<(), SolveFailure> {
    #[cfg(target_arch = "x86_64")]
    if simd_enabled() {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { exec_avx512(ops, c, scratch) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            return unsafe { exec_avx2(ops, c, scratch) };
        }
    }
    exec_baseline(ops, c, scratch)
}

#[inline(always)]
fn binary<const W: usize>(op: Bin, regs: &mut [[f64; W]], scal: &[f64], dst: u16, a: Src, b: Src) {
    macro_rules! lanes {
        ($f:expr) => {
            match (a, b) {
                (Src::V(x), Src::V(y)) => {
                    let (d, xv, yv) = dst_and_two(regs, dst, x, y);
                    for l in 0..W {
                        d[l] = $f(xv[l], yv[l]);
                    }
                }
                (Src::V(x), Src::S(y)) => {
                    let (d, xv) = dst_and_src(regs, dst, x);
                    let y = scal[y as usize];
                    for l in 0..W {
                        d[l] = $f(xv[l], y);
                    }
                }
                (Src::S(x), Src::V(y)) => {
                    let (d, yv) = dst_and_src(regs, dst, y);
                    let x = scal[x as usize];
                    for l in 0..W {
                        d[l] = $f(x, yv[l]);
                    }
                }
                (Src::S(x), Src::S(y)) => {
                    let v = $f(scal[x as usize], scal[y as usize]);
                    regs[dst as usize] = [v; W];
                }
            }
        };
    }
    match op {
        Bin::Add => lanes!(|x: f64, y: f64| x + y),
        Bin::Sub => lanes!(|x: f64, y: f64| x - y),
        Bin::Mul => lanes!(|x: f64, y: f64| x * y),
        Bin::Div => lanes!(|x: f64, y: f64| x / y),
        other => lanes!(|x: f64, y: f64| bin(other, x, y)),
    }
}

// Constants of NEURON's scopmath Newton solvers (errcodes.hpp).
const ZERO: f64 = 1e-8;
const STEP: f64 = 1e-6;
const CONVERGE: f64 = 1e-6;
const MAXCHANGE: f64 = 0.05;
const MAXITERS: usize = 50;
const MAXSTEPS: usize = 20;

/// Gaussian elimination with partial pivoting, in place, on one lane's n x n system (row-major);
/// false when singular.
fn solve_dense(n: usize, a: &mut [f64], b: &mut [f64]) -> bool {
    for k in 0..n {
        let mut p = k;
        for i in k + 1..n {
            if a[i * n + k].abs() > a[p * n + k].abs() {
                p = i;
            }
        }
        if a[p * n + k] == 0.0 || !a[p * n + k].is_finite() {
            return false;
        }
        if p != k {
            for j in 0..n {
                a.swap(k * n + j, p * n + j);
            }
            b.swap(k, p);
        }
        for i in k + 1..n {
            let f = a[i * n + k] / a[k * n + k];
            if f != 0.0 {
                for j in k..n {
                    a[i * n + j] -= f * a[k * n + j];
                }
                b[i] -= f * b[k];
            }
        }
    }
    for k in (0..n).rev() {
        let mut s = b[k];
        for j in k + 1..n {
            s -= a[k * n + j] * b[j];
        }
        b[k] = s / a[k * n + k];
    }
    true
}

/// The registers and environment of the chunk an implicit solve works on.
struct Chunk<'a, 'e, const W: usize> {
    regs: &'a mut [[f64; W]],
    scal: &'a [f64],
    env: &'a mut Env<'e>,
    base: usize,
    active: usize,
}

impl<const W: usize> Chunk<'_, '_, W> {
    /// Evaluate the residual (and matrix) program at the current states.
    fn eval(&mut self, imp: &Implicit, iteration: usize) -> Result<(), (usize, usize)> {
        exec(&imp.program, self, &mut []).map_err(|_| (0, iteration))
    }
}

/// NEURON's nrn_newton_thread per lane: finite-difference Jacobian (rebuilt while the relative
/// change exceeds MAXCHANGE), converged when the relative change <= CONVERGE and |F| <= ZERO.
fn newton<const W: usize>(imp: &Implicit, c: &mut Chunk<W>, scratch: &mut [f64]) -> Result<(), (usize, usize)> {
    let n = imp.states.len();
    let active = c.active;
    // Scratch layout per lane: jac[n*n], lu[n*n], value[n], high[n], delta[n]; flags separately.
    let (jac, rest) = scratch.split_at_mut(W * n * n);
    let (lu, rest) = rest.split_at_mut(W * n * n);
    let (value, rest) = rest.split_at_mut(W * n);
    let (high, rest) = rest.split_at_mut(W * n);
    let (delta, rest) = rest.split_at_mut(W * n);
    let (change, rest) = rest.split_at_mut(W);
    let (done, rest) = rest.split_at_mut(W);
    let (inc, _) = rest.split_at_mut(W);
    for l in 0..W {
        change[l] = 1.0;
        done[l] = if l < active { 0.0 } else { 1.0 };
    }
    let mut count = 0;
    loop {
        count += 1;
        if count > MAXITERS {
            let lane = (0..W).find(|&l| done[l] == 0.0).unwrap_or(0);
            return Err((lane, MAXITERS));
        }
        let need: [bool; W] = std::array::from_fn(|l| done[l] == 0.0 && change[l] > MAXCHANGE);
        if need.iter().any(|&x| x) {
            for j in 0..n {
                let xr = imp.states[j] as usize;
                for l in 0..W {
                    if need[l] {
                        inc[l] = (0.02 * c.regs[xr][l]).abs().max(STEP);
                        c.regs[xr][l] += inc[l];
                    }
                }
                c.eval(imp, count)?;
                for i in 0..n {
                    let r = c.regs[imp.resid[i] as usize];
                    for l in 0..W {
                        high[l * n + i] = r[l];
                    }
                }
                for l in 0..W {
                    if need[l] {
                        c.regs[xr][l] -= 2.0 * inc[l];
                    }
                }
                c.eval(imp, count)?;
                for i in 0..n {
                    let r = c.regs[imp.resid[i] as usize];
                    for l in 0..W {
                        if need[l] {
                            jac[l * n * n + i * n + j] = (high[l * n + i] - r[l]) / (2.0 * inc[l]);
                        }
                    }
                }
                for l in 0..W {
                    if need[l] {
                        c.regs[xr][l] += inc[l];
                    }
                }
            }
            c.eval(imp, count)?;
            for i in 0..n {
                let r = c.regs[imp.resid[i] as usize];
                for l in 0..W {
                    if need[l] {
                        value[l * n + i] = -r[l];
                    }
                }
            }
        }
        for l in 0..W {
            if done[l] != 0.0 {
                continue;
            }
            let a = &mut lu[l * n * n..(l + 1) * n * n];
            a.copy_from_slice(&jac[l * n * n..(l + 1) * n * n]);
            let d = &mut delta[l * n..(l + 1) * n];
            d.copy_from_slice(&value[l * n..(l + 1) * n]);
            if !solve_dense(n, a, d) {
                return Err((l, count));
            }
            let mut ch = 0.0f64;
            for i in 0..n {
                let x = c.regs[imp.states[i] as usize][l];
                if x.abs() > ZERO {
                    ch = ch.max((d[i] / x).abs());
                }
                c.regs[imp.states[i] as usize][l] = x + d[i];
            }
            change[l] = ch;
        }
        c.eval(imp, count)?;
        let mut all = true;
        for l in 0..W {
            if done[l] != 0.0 {
                continue;
            }
            let mut max_dev = 0.0f64;
            for i in 0..n {
                let r = c.regs[imp.resid[i] as usize][l];
                value[l * n + i] = -r;
                max_dev = max_dev.max(r.abs());
            }
            if change[l] <= CONVERGE && max_dev <= ZERO {
                done[l] = 1.0;
            } else {
                all = false;
            }
        }
        if all {
            return Ok(());
        }
    }
}

/// NEURON's sparse_thread per lane: Newton on the kinetic scheme's matrix until the summed change
/// is <= CONVERGE (one step when the scheme is linear), negative states clipped otherwise.
fn sparse<const W: usize>(imp: &Implicit, c: &mut Chunk<W>, scratch: &mut [f64]) -> Result<(), (usize, usize)> {
    let n = imp.states.len();
    let active = c.active;
    let (a, rest) = scratch.split_at_mut(n * n);
    let (b, rest) = rest.split_at_mut(n);
    let (done, _) = rest.split_at_mut(W);
    for (l, d) in done.iter_mut().enumerate() {
        *d = if l < active { 0.0 } else { 1.0 };
    }
    let mut j = 0;
    loop {
        c.eval(imp, j)?;
        let mut all = true;
        for l in 0..W {
            if done[l] != 0.0 {
                continue;
            }
            for (k, &r) in imp.matrix.iter().enumerate() {
                a[k] = c.regs[r as usize][l];
            }
            for (k, &r) in imp.resid.iter().enumerate() {
                b[k] = c.regs[r as usize][l];
            }
            if !solve_dense(n, a, b) {
                return Err((l, j));
            }
            let mut err = 0.0;
            for (i, &s) in imp.states.iter().enumerate() {
                let x = &mut c.regs[s as usize][l];
                *x += b[i];
                if !imp.linear && *x < 0.0 {
                    *x = 0.0;
                }
                err += b[i].abs();
            }
            if imp.linear || err <= CONVERGE {
                done[l] = 1.0;
            } else {
                all = false;
            }
        }
        if all {
            return Ok(());
        }
        if j > MAXSTEPS {
            let lane = (0..W).find(|&l| done[l] == 0.0).unwrap_or(0);
            return Err((lane, j));
        }
        j += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_run<const W: usize>(p: &Program, data: &mut [f64], cap: usize, n: usize) -> Result<(), SolveFailure> {
        let mut rng = vec![CounterStream::default(); cap];
        let mut events = Vec::new();
        let mut args = [];
        let mut env = Env { data, cap, tables: &[], rng: &mut rng, vectors: &[], args: &mut args, events: &mut events };
        let mut ws = Workspace::<W>::new();
        run(p, &mut ws, &mut env, 0, n, &|_| {})
    }

    #[test]
    fn vector_and_scalar_ops() {
        // field1 = exp(field0) * s0 + (field0 > 1 ? 10 : 20)
        let p = Program {
            sops: vec![SOp::Bin { op: Bin::Mul, dst: 3, a: 0, b: 0 }],
            ops: vec![
                Op::Load { dst: 0, field: 0 },
                Op::Un { op: Un::Exp, dst: 1, a: 0 },
                Op::Bin { op: Bin::Mul, dst: 2, a: Src::V(1), b: Src::S(3) },
                Op::Bin { op: Bin::Gt, dst: 1, a: Src::V(0), b: Src::S(1) },
                Op::Select { dst: 3, c: Src::V(1), a: Src::S(2), b: Src::S(4) },
                Op::Bin { op: Bin::Add, dst: 0, a: Src::V(2), b: Src::V(3) },
                Op::Store { field: 1, src: 0 },
            ],
            n_regs: 4,
            scalars: vec![2.0, 1.0, 10.0, 0.0, 20.0],
            max_system: 0,
            native: Default::default(),
        };
        let cap = 4;
        let mut data = vec![0.5, 1.5, -1.0, 3.0, 0.0, 0.0, 0.0, 0.0];
        env_run::<4>(&p, &mut data, cap, 4).unwrap();
        for i in 0..4 {
            let x = data[i];
            assert_eq!(data[cap + i], x.exp() * 4.0 + if x > 1.0 { 10.0 } else { 20.0 });
        }
    }

    /// Instructions made only of broadcast values move to the scalar prologue and give the same bits;
    /// one reading a per-instance register stays, and a register written again stops being uniform.
    #[test]
    fn uniform_instructions_move_to_the_prologue() {
        // field1 = x * exp(a / b) + (a > b ? a : b) + x / (a - b), with x = field0, a = s0, b = s1; then
        // register 2 is reloaded from field 0 and field2 = 1 / r2. (The VM's instructions never write a
        // register they read.)
        let p = Program {
            sops: vec![],
            ops: vec![
                Op::Load { dst: 0, field: 0 },
                Op::Splat { dst: 1, src: 0 },
                Op::Bin { op: Bin::Div, dst: 2, a: Src::V(1), b: Src::S(1) },
                Op::Un { op: Un::Exp, dst: 3, a: 2 },
                Op::Bin { op: Bin::Mul, dst: 4, a: Src::V(0), b: Src::V(3) },
                Op::Bin { op: Bin::Gt, dst: 5, a: Src::V(1), b: Src::S(1) },
                Op::Select { dst: 6, c: Src::V(5), a: Src::V(1), b: Src::S(1) },
                Op::Bin { op: Bin::Add, dst: 8, a: Src::V(4), b: Src::V(6) },
                Op::Bin { op: Bin::Sub, dst: 7, a: Src::V(1), b: Src::S(1) },
                Op::Bin { op: Bin::Div, dst: 9, a: Src::V(0), b: Src::V(7) },
                Op::Bin { op: Bin::Add, dst: 4, a: Src::V(8), b: Src::V(9) },
                Op::Store { field: 1, src: 4 },
                Op::Load { dst: 2, field: 0 },
                Op::Bin { op: Bin::Div, dst: 3, a: Src::S(2), b: Src::V(2) },
                Op::Store { field: 2, src: 3 },
            ],
            n_regs: 10,
            scalars: vec![0.3, 0.7, 1.0],
            max_system: 0,
            native: Default::default(),
        };
        let mut hoisted = p.clone();
        assert_eq!(hoisted.hoist_uniform(), 5, "{:?}", hoisted.ops);
        assert_eq!(hoisted.sops.len(), 5);
        let per_lane_divisions =
            |p: &Program| p.ops.iter().filter(|op| matches!(op, Op::Bin { op: Bin::Div, .. })).count();
        assert_eq!((per_lane_divisions(&p), per_lane_divisions(&hoisted)), (3, 2));
        assert!(!hoisted.ops.iter().any(|op| matches!(op, Op::Un { .. } | Op::Select { .. })));
        let cap = 8;
        let x: Vec<f64> = (0..cap).map(|i| -1.7 + 0.61 * i as f64).collect();
        let run = |p: &Program| {
            let mut data = [x.clone(), vec![0.0; 2 * cap]].concat();
            env_run::<4>(p, &mut data, cap, cap).unwrap();
            data.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        };
        assert_eq!(run(&p), run(&hoisted));
    }

    #[test]
    fn newton_solves_backward_euler_of_a_linear_ode() {
        // x' = (a - x)/tau, residual x'(x) - (x - x0)/dt with a = field1, tau = 2, dt = 0.1.
        let imp = Implicit {
            sparse: false,
            linear: false,
            init: vec![Src::V(0)],
            states: vec![1],
            saved: vec![2],
            resid: vec![5],
            matrix: vec![],
            program: vec![
                Op::Bin { op: Bin::Sub, dst: 3, a: Src::V(4), b: Src::V(1) },
                Op::Bin { op: Bin::Div, dst: 6, a: Src::V(3), b: Src::S(0) },
                Op::Bin { op: Bin::Sub, dst: 7, a: Src::V(1), b: Src::V(2) },
                Op::Bin { op: Bin::Div, dst: 8, a: Src::V(7), b: Src::S(1) },
                Op::Bin { op: Bin::Sub, dst: 5, a: Src::V(6), b: Src::V(8) },
            ],
        };
        let p = Program {
            sops: vec![],
            ops: vec![
                Op::Load { dst: 0, field: 0 },
                Op::Load { dst: 4, field: 1 },
                Op::Implicit(Box::new(imp)),
                Op::Store { field: 0, src: 1 },
            ],
            n_regs: 9,
            scalars: vec![2.0, 0.1],
            max_system: 1,
            native: Default::default(),
        };
        let cap = 2;
        let mut data = vec![1.0, 0.0, 3.0, -1.0];
        env_run::<2>(&p, &mut data, cap, 2).unwrap();
        for (x0, a, got) in [(1.0, 3.0, data[0]), (0.0, -1.0, data[1])] {
            let want = (x0 + 0.1 * a / 2.0) / (1.0 + 0.1 / 2.0);
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
    }
}
