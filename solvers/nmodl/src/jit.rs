//! Native code for the bulk kernels on x86-64 Linux with AVX-512 (eight lanes per register, 32
//! zmm registers) or AVX2 (four lanes, 16 ymm registers), chosen at run time: the register program
//! of a kernel becomes one machine-code loop over the instances, two registers of lanes per
//! iteration, with the program's values held in registers (spilled to a scratch area only when
//! more are live). Other CPUs and architectures, or `MIV_NMODL_JIT=off`, keep the VM.
//!
//! The VM pays for every instruction with loads and a store of its 64 lanes; for a kernel like hh
//! that traffic, not the arithmetic, bounds it. Compiled code keeps intermediate values in
//! registers. The generated code performs exactly the VM's IEEE operations in the VM's order (no
//! FMA contraction, `exp` as `miv_solvers::fastmath::exp` step for step, comparisons with the
//! predicates Rust uses), so it gives the same bits as the baseline VM; tests compare them.
//!
//! Only kernels made of element-wise instructions are compiled (loads, stores, arithmetic,
//! comparisons, selects, `exp`, `sqrt`, `fabs`, `floor`, `ceil`, cnexp updates); any other
//! instruction (tables, random draws, events, implicit solves, libm functions) leaves the whole
//! kernel to the VM. The code lives in its own mapping, written first and then made executable
//! and read-only (never writable and executable at once).

use std::sync::Arc;

use iced_x86::code_asm::*;
use miv_solvers::fastmath;

use crate::ops::{Bin, Un};
use crate::vm::{Op, Program, Src};

/// Lane groups (registers of lanes) interleaved per iteration: independent dependency chains for
/// the out-of-order core (a kernel's critical path, e.g. hh's chained exps, is far longer than its
/// throughput cost).
const G: usize = 2;
/// Longest program compiled.
const MAX_OPS: usize = 4000;
/// Registers of the larger instruction set.
const MAXREG: usize = 32;

/// The instruction set code is generated for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Isa {
    /// AVX2: VEX encoding, ymm registers of four f64.
    Avx2,
    /// AVX-512 F + DQ: EVEX encoding, zmm registers of eight f64.
    Avx512,
}

impl Isa {
    fn lanes(self) -> usize {
        match self {
            Isa::Avx2 => 4,
            Isa::Avx512 => 8,
        }
    }

    /// Bytes per register.
    fn width(self) -> i32 {
        8 * self.lanes() as i32
    }

    fn registers(self) -> usize {
        match self {
            Isa::Avx2 => 16,
            Isa::Avx512 => 32,
        }
    }
}

/// A compiled kernel: a function in its own read + execute mapping.
pub struct Code {
    map: *mut u8,
    len: usize,
    /// Offset of the function in the mapping (after the constant pool).
    entry: usize,
    /// Highest field the code reads or writes.
    pub max_field: usize,
    /// Spill area (f64 values) the code needs.
    pub spill: usize,
    /// Lanes per iteration of the loop.
    pub step: usize,
}

// SAFETY: the mapping is immutable (read + execute) after construction and only freed on drop.
unsafe impl Send for Code {}
// SAFETY: as for Send: nothing writes through the pointer after construction.
unsafe impl Sync for Code {}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
impl Drop for Code {
    fn drop(&mut self) {
        // SAFETY: map/len come from the mmap in `Code::new` and are unmapped once.
        unsafe {
            libc::munmap(self.map as *mut libc::c_void, self.len);
        }
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
type Entry = unsafe extern "sysv64" fn(*const *mut f64, *const f64, *mut f64, usize, usize);

impl Code {
    /// Map `bytes` writable, copy them, then make the mapping read + execute (never both
    /// writable and executable).
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    fn new(bytes: &[u8], entry: usize, max_field: usize, spill: usize, step: usize) -> Option<Code> {
        let len = bytes.len().max(1);
        // SAFETY: an anonymous private mapping; checked for failure below.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return None;
        }
        // From here on, dropping `code` unmaps the region.
        let code = Code { map: map as *mut u8, len, entry, max_field, spill, step };
        // SAFETY: the mapping is `len` >= bytes.len() writable bytes, and ours alone.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), code.map, bytes.len());
            if libc::mprotect(map, len, libc::PROT_READ | libc::PROT_EXEC) != 0 {
                return None;
            }
        }
        Some(code)
    }

    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    fn new(_: &[u8], _: usize, _: usize, _: usize, _: usize) -> Option<Code> {
        None
    }

    /// Run the kernel on lanes `first..end` (`first` and `end` multiples of `self.step`).
    /// `bases[f]` is the start of field `f`'s column, `scal` the scalar slots, `spill` at least
    /// `self.spill` values.
    ///
    /// # Safety
    /// Every column `bases[0..=max_field]` must hold at least `end` values and `scal` every slot
    /// the program reads (the CPU features were checked when the code was generated).
    pub unsafe fn run(&self, bases: &[*mut f64], scal: &[f64], spill: &mut [f64], first: usize, end: usize) {
        assert!(bases.len() > self.max_field && spill.len() >= self.spill);
        assert!(first % self.step == 0 && end % self.step == 0);
        if first >= end {
            return;
        }
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        {
            // SAFETY: the mapping holds a complete function with this signature (see `compile`);
            // the caller guarantees the memory it touches.
            let f: Entry = std::mem::transmute::<*mut u8, Entry>(self.map.add(self.entry));
            f(bases.as_ptr(), scal.as_ptr(), spill.as_mut_ptr(), first * 8, end * 8);
        }
        #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
        unreachable!("no native code is generated on this platform: {scal:?}");
    }
}

/// Name the kernel in `/tmp/perf-<pid>.map` (the file `perf report` reads for symbols of code generated
/// at run time) when the environment variable `MIV_PERF_MAP` is set (not `0`), so that a profile shows
/// e.g. `LinExp2Syn SOLVE` instead of `[JIT]` addresses. Errors writing the file are ignored: it is only
/// a profiling aid.
pub fn name_for_profilers(code: &Code, name: &str) {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let on = *ENABLED.get_or_init(|| std::env::var("MIV_PERF_MAP").is_ok_and(|v| !v.is_empty() && v != "0"));
    if !on {
        return;
    }
    use std::io::Write;
    let path = format!("/tmp/perf-{}.map", std::process::id());
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let start = code.map as usize + code.entry;
        let _ = writeln!(f, "{start:x} {:x} {name}", code.len - code.entry);
    }
}

/// A compiled kernel shared by every copy of a program; compares equal to any other (it is
/// derived from the instructions).
#[derive(Clone, Default)]
pub struct Native(pub Option<Arc<Code>>);

impl std::fmt::Debug for Native {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "native" } else { "vm" })
    }
}

impl PartialEq for Native {
    fn eq(&self, _: &Native) -> bool {
        true
    }
}

/// Native code for `p` with the best instruction set of this CPU, or None when the CPU has
/// neither AVX2 nor AVX-512, native code is switched off (`MIV_NMODL_JIT=off`), or the program has
/// an instruction the generator does not handle.
pub fn compile(p: &Program) -> Option<Arc<Code>> {
    compile_for(p, *chosen()?)
}

/// The instruction set native code is generated for on this machine, if any.
pub fn active() -> Option<Isa> {
    chosen().copied()
}

/// The instruction set for native code: the best one available, limited by the environment
/// variable `MIV_NMODL_JIT` (`off` or `0`: none, the VM runs everything; `avx2`: at most AVX2).
fn chosen() -> Option<&'static Isa> {
    static ISA: std::sync::OnceLock<Option<Isa>> = std::sync::OnceLock::new();
    ISA.get_or_init(|| {
        let limit = std::env::var("MIV_NMODL_JIT").unwrap_or_default().to_ascii_lowercase();
        let isas = available();
        match limit.as_str() {
            "off" | "0" | "no" | "false" | "vm" => None,
            "avx2" => isas.into_iter().find(|&i| i == Isa::Avx2),
            _ => isas.into_iter().next(),
        }
    })
    .as_ref()
}

/// Native code for `p` in instruction set `isa` (which the CPU must support).
pub(crate) fn compile_for(p: &Program, isa: Isa) -> Option<Arc<Code>> {
    // The register allocator looks ahead linearly for next uses: very long kernels (none of the
    // standard or MiV mechanisms) would take long to compile and stay with the VM.
    if !available().contains(&isa) || p.ops.is_empty() || p.ops.len() > MAX_OPS || !p.ops.iter().all(supported) {
        return None;
    }
    // The constant pool precedes the code: a first pass finds the constants, the second emits
    // the pool and then the same code.
    let mut g = Gen::new(p, isa, Vec::new())?;
    g.body();
    let mut g = Gen::new(p, isa, g.consts()?)?;
    g.body();
    let (bytes, entry, max_field, spill) = g.finish()?;
    if let Ok(path) = std::env::var("MIV_JIT_DUMP") {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _ = std::fs::write(format!("{path}.{n}"), &bytes);
    }
    Code::new(&bytes, entry, max_field, spill, isa.lanes() * G).map(Arc::new)
}

/// The instruction sets this CPU (and OS) supports, best first.
pub(crate) fn available() -> Vec<Isa> {
    #[allow(unused_mut)]
    let mut v = Vec::new();
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512dq") {
            v.push(Isa::Avx512);
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            v.push(Isa::Avx2);
        }
    }
    v
}

fn supported(op: &Op) -> bool {
    match op {
        Op::Load { .. } | Op::Store { .. } | Op::Splat { .. } | Op::Select { .. } | Op::Cnexp { .. } => true,
        Op::Un { op, .. } => matches!(op, Un::Neg | Un::Not | Un::Exp | Un::Sqrt | Un::Fabs | Un::Floor | Un::Ceil),
        Op::Bin { op, .. } => !matches!(op, Bin::Fmod | Bin::Pow | Bin::Atan2 | Bin::Fmin | Bin::Fmax),
        _ => false,
    }
}

// ------------------------------------------------------------------------------------ assembler

/// The general-purpose registers the generated code uses, by their x86 number.
const RAX: u8 = 0;
const RCX: u8 = 1;
const RDX: u8 = 2;
const RSI: u8 = 6;
const RDI: u8 = 7;

const GPR: [AsmRegister64; 8] = [rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi];
const YMM: [AsmRegisterYmm; 16] =
    [ymm0, ymm1, ymm2, ymm3, ymm4, ymm5, ymm6, ymm7, ymm8, ymm9, ymm10, ymm11, ymm12, ymm13, ymm14, ymm15];
const ZMM: [AsmRegisterZmm; 32] = [
    zmm0, zmm1, zmm2, zmm3, zmm4, zmm5, zmm6, zmm7, zmm8, zmm9, zmm10, zmm11, zmm12, zmm13, zmm14, zmm15, zmm16, zmm17,
    zmm18, zmm19, zmm20, zmm21, zmm22, zmm23, zmm24, zmm25, zmm26, zmm27, zmm28, zmm29, zmm30, zmm31,
];

/// An operand: a vector register or memory.
#[derive(Clone, Copy)]
enum Rm {
    Reg(u8),
    /// [base + disp]
    Disp(u8, i32),
    /// [base + index + disp]
    IndexDisp(u8, u8, i32),
    /// A constant of the pool (broadcast to a whole register), RIP-relative.
    Const(usize),
}

/// Element-wise operations of three operands (`d = a op rm`).
#[derive(Clone, Copy)]
enum V3 {
    Add,
    Sub,
    Mul,
    Div,
    Min,
    Max,
    And,
    Or,
    Xor,
    /// 64-bit integer addition.
    Paddq,
}

use V3::{Add as ADD, And as AND, Div as DIV, Max as MAX, Min as MIN, Mul as MUL, Or as OR, Paddq as PADDQ};
use V3::{Sub as SUB, Xor as XOR};

/// The instructions the generator needs, encoded by iced-x86's code assembler: VEX with ymm
/// registers for AVX2, EVEX with zmm registers for AVX-512.
struct Asm {
    isa: Isa,
    a: CodeAssembler,
    /// Constants of the pool, each broadcast to a whole register, and their labels.
    consts: Vec<u64>,
    labels: Vec<CodeLabel>,
    /// iced-x86 refused an instruction: the kernel stays with the VM (as it does when a constant
    /// was not known in advance, see [`Asm::new`]).
    failed: bool,
}

/// Call a method of the code assembler and record a failure.
macro_rules! emit {
    ($s:expr, $m:ident ( $($arg:expr),* )) => {{
        let r = $s.a.$m($($arg),*);
        $s.failed |= r.is_err();
    }};
}

/// `m(d, a, rm)` in the width of the instruction set.
macro_rules! full {
    ($s:expr, $m:ident, $d:expr, $a:expr, $rm:expr) => {{
        let (d, a) = ($d as usize, $a as usize);
        match ($s.isa, $rm) {
            (Isa::Avx2, Rm::Reg(r)) => emit!($s, $m(YMM[d], YMM[a], YMM[r as usize])),
            (Isa::Avx2, rm) => {
                let m = $s.mem(rm);
                emit!($s, $m(YMM[d], YMM[a], ymmword_ptr(m)))
            }
            (Isa::Avx512, Rm::Reg(r)) => emit!($s, $m(ZMM[d], ZMM[a], ZMM[r as usize])),
            (Isa::Avx512, rm) => {
                let m = $s.mem(rm);
                emit!($s, $m(ZMM[d], ZMM[a], zmmword_ptr(m)))
            }
        }
    }};
}

impl Asm {
    /// The constant pool comes first, at the start of the mapping (so every constant is aligned
    /// to its width), the code after it. `consts` are the constants the code will ask for (found
    /// by generating the code once without a pool).
    fn new(isa: Isa, consts: Vec<u64>) -> Result<Asm, IcedError> {
        let mut a = CodeAssembler::new(64)?;
        let mut labels = Vec::with_capacity(consts.len());
        for &c in &consts {
            let mut l = a.create_label();
            a.set_label(&mut l)?;
            for _ in 0..isa.lanes() {
                a.dq(&[c])?;
            }
            labels.push(l);
        }
        Ok(Asm { isa, a, consts, labels, failed: false })
    }

    /// Bytes of the constant pool, where the code starts.
    fn pool_len(&self) -> usize {
        self.consts.len() * self.isa.width() as usize
    }

    fn konst(&mut self, bits: u64) -> Rm {
        let k = self.consts.iter().position(|c| *c == bits).unwrap_or_else(|| {
            self.consts.push(bits);
            self.consts.len() - 1
        });
        Rm::Const(k)
    }

    fn mem(&self, rm: Rm) -> AsmMemoryOperand {
        match rm {
            Rm::Disp(base, d) => GPR[base as usize] + d,
            Rm::IndexDisp(base, index, d) => GPR[base as usize] + GPR[index as usize] + d,
            Rm::Const(k) => match self.labels.get(k) {
                Some(&l) => AsmMemoryOperand::from(l),
                // Not in the pool (the first pass): any address, the code is not kept.
                None => GPR[RSI as usize] + 0,
            },
            Rm::Reg(_) => unreachable!("a register is not memory"),
        }
    }

    /// `d = a op rm`, lane by lane.
    fn v3(&mut self, op: V3, d: u8, a: u8, rm: Rm) {
        match op {
            V3::Add => full!(self, vaddpd, d, a, rm),
            V3::Sub => full!(self, vsubpd, d, a, rm),
            V3::Mul => full!(self, vmulpd, d, a, rm),
            V3::Div => full!(self, vdivpd, d, a, rm),
            V3::Min => full!(self, vminpd, d, a, rm),
            V3::Max => full!(self, vmaxpd, d, a, rm),
            V3::And => full!(self, vandpd, d, a, rm),
            V3::Or => full!(self, vorpd, d, a, rm),
            V3::Xor => full!(self, vxorpd, d, a, rm),
            V3::Paddq => full!(self, vpaddq, d, a, rm),
        }
    }

    fn sqrt(&mut self, d: u8, a: u8) {
        let (d, a) = (d as usize, a as usize);
        match self.isa {
            Isa::Avx2 => emit!(self, vsqrtpd(YMM[d], YMM[a])),
            Isa::Avx512 => emit!(self, vsqrtpd(ZMM[d], ZMM[a])),
        }
    }

    /// vmovupd from memory.
    fn load(&mut self, d: u8, rm: Rm) {
        let m = self.mem(rm);
        match self.isa {
            Isa::Avx2 => emit!(self, vmovupd(YMM[d as usize], ymmword_ptr(m))),
            Isa::Avx512 => emit!(self, vmovupd(ZMM[d as usize], zmmword_ptr(m))),
        }
    }

    /// vmovupd to memory.
    fn store(&mut self, rm: Rm, s: u8) {
        let m = self.mem(rm);
        match self.isa {
            Isa::Avx2 => emit!(self, vmovupd(ymmword_ptr(m), YMM[s as usize])),
            Isa::Avx512 => emit!(self, vmovupd(zmmword_ptr(m), ZMM[s as usize])),
        }
    }

    /// vbroadcastsd of one f64 in memory.
    fn broadcast(&mut self, d: u8, rm: Rm) {
        let m = self.mem(rm);
        match self.isa {
            Isa::Avx2 => emit!(self, vbroadcastsd(YMM[d as usize], qword_ptr(m))),
            Isa::Avx512 => emit!(self, vbroadcastsd(ZMM[d as usize], qword_ptr(m))),
        }
    }

    /// d = all ones where `a pred b`, else zero. AVX-512 compares into opmask k1 and expands it
    /// with vpmovm2q.
    fn cmp(&mut self, d: u8, a: u8, b: u8, pred: i32) {
        let (d, a, b) = (d as usize, a as usize, b as usize);
        match self.isa {
            Isa::Avx2 => emit!(self, vcmppd(YMM[d], YMM[a], YMM[b], pred)),
            Isa::Avx512 => {
                emit!(self, vcmppd(k1, ZMM[a], ZMM[b], pred));
                emit!(self, vpmovm2q(ZMM[d], k1));
            }
        }
    }

    /// d = mask ? b : a (per lane, by the sign bit of `mask`). AVX-512: vpmovq2m k1, mask;
    /// vblendmpd d{k1}, a, b.
    fn blendv(&mut self, d: u8, a: u8, b: u8, mask: u8) {
        let (d, a, b, mask) = (d as usize, a as usize, b as usize, mask as usize);
        match self.isa {
            Isa::Avx2 => emit!(self, vblendvpd(YMM[d], YMM[a], YMM[b], YMM[mask])),
            Isa::Avx512 => {
                emit!(self, vpmovq2m(k1, ZMM[mask]));
                emit!(self, vblendmpd(ZMM[d].k1(), ZMM[a], ZMM[b]));
            }
        }
    }

    /// vroundpd (AVX2) / vrndscalepd with scale 0 (AVX-512): the same immediate.
    fn round(&mut self, d: u8, a: u8, mode: i32) {
        let (d, a) = (d as usize, a as usize);
        match self.isa {
            Isa::Avx2 => emit!(self, vroundpd(YMM[d], YMM[a], mode)),
            Isa::Avx512 => emit!(self, vrndscalepd(ZMM[d], ZMM[a], mode)),
        }
    }

    fn psllq(&mut self, d: u8, a: u8, n: i32) {
        let (d, a) = (d as usize, a as usize);
        match self.isa {
            Isa::Avx2 => emit!(self, vpsllq(YMM[d], YMM[a], n)),
            Isa::Avx512 => emit!(self, vpsllq(ZMM[d], ZMM[a], n)),
        }
    }

    /// mov r64, [base + disp]
    fn mov_load(&mut self, d: u8, base: u8, disp: i32) {
        emit!(self, mov(GPR[d as usize], qword_ptr(GPR[base as usize] + disp)));
    }

    /// The pool and the code, assembled at address 0 (the code is position independent).
    fn finish(mut self) -> Option<Vec<u8>> {
        if self.failed || self.labels.len() < self.consts.len() {
            return None;
        }
        self.a.assemble(0).ok()
    }
}

// vcmppd predicates with Rust's semantics: ordered and false on NaN, except `!=`.
const EQ_OQ: i32 = 0x00;
const LT_OS: i32 = 0x01;
const LE_OS: i32 = 0x02;
const NEQ_UQ: i32 = 0x04;
const GE_OS: i32 = 0x0D;
const GT_OS: i32 = 0x0E;

// ------------------------------------------------------------------------- code generation

/// What a ymm register holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Var {
    /// A VM register, in one lane group.
    V(u16, u8),
    /// A scalar slot, broadcast (shared by the groups).
    S(u32),
    Temp,
}

#[derive(Clone, Copy)]
struct Reg {
    var: Option<Var>,
    /// Holds a VM register value not yet in its spill slot.
    dirty: bool,
    pinned: bool,
}

const FREE: Reg = Reg { var: None, dirty: false, pinned: false };

/// One register per lane group.
type Regs = [u8; G];

/// What an element-wise instruction reads: VM registers and scalar slots.
pub(crate) fn reads(op: &Op) -> Vec<Src> {
    match op {
        Op::Store { src, .. } => vec![Src::V(*src)],
        Op::Splat { src, .. } => vec![Src::S(*src)],
        Op::Un { a, .. } => vec![Src::V(*a)],
        Op::Bin { a, b, .. } => vec![*a, *b],
        Op::Select { c, a, b, .. } => vec![*c, *a, *b],
        Op::Cnexp { x, a, inf, dt, .. } => vec![Src::V(*x), *a, *inf, Src::S(*dt)],
        _ => vec![],
    }
}

/// The register an element-wise instruction writes.
pub(crate) fn writes(op: &Op) -> Option<u16> {
    match op {
        Op::Load { dst, .. }
        | Op::Splat { dst, .. }
        | Op::Un { dst, .. }
        | Op::Bin { dst, .. }
        | Op::Select { dst, .. }
        | Op::Cnexp { dst, .. } => Some(*dst),
        _ => None,
    }
}

struct Gen<'p> {
    ops: &'p [Op],
    a: Asm,
    /// Registers; only the first `isa.registers()` are used.
    regs: [Reg; MAXREG],
    nreg: usize,
    /// Current instruction.
    pos: usize,
    max_field: usize,
    n_vregs: usize,
    failed: bool,
}

impl<'p> Gen<'p> {
    /// A generator whose pool holds `consts`.
    fn new(p: &'p Program, isa: Isa, consts: Vec<u64>) -> Option<Gen<'p>> {
        let a = Asm::new(isa, consts).ok()?;
        let (regs, nreg) = ([FREE; MAXREG], isa.registers());
        Some(Gen { ops: &p.ops, a, regs, nreg, pos: 0, max_field: 0, n_vregs: p.n_regs, failed: false })
    }

    /// Position of the next read of `v` from instruction `from` on (usize::MAX: never, or
    /// overwritten first).
    fn next_use(&self, v: Src, from: usize) -> usize {
        for (j, op) in self.ops.iter().enumerate().skip(from) {
            if reads(op).contains(&v) {
                return j;
            }
            if let Src::V(r) = v {
                if writes(op) == Some(r) {
                    return usize::MAX;
                }
            }
        }
        usize::MAX
    }

    fn src_of(v: Var) -> Option<Src> {
        match v {
            Var::V(r, _) => Some(Src::V(r)),
            Var::S(k) => Some(Src::S(k)),
            Var::Temp => None,
        }
    }

    fn find(&self, v: Var) -> Option<u8> {
        self.regs[..self.nreg].iter().position(|r| r.var == Some(v)).map(|i| i as u8)
    }

    fn spill_slot(&self, r: u16, g: u8) -> Rm {
        Rm::Disp(RDX, self.a.isa.width() * (r as i32 * G as i32 + g as i32))
    }

    /// A register to overwrite: a free one, else the unpinned one used furthest in the future
    /// (stored to its spill slot first when its value is still needed).
    fn grab(&mut self) -> u8 {
        if let Some(i) = self.regs[..self.nreg].iter().position(|r| r.var.is_none()) {
            return i as u8;
        }
        let mut best = None;
        let mut far = 0;
        for (i, r) in self.regs[..self.nreg].iter().enumerate() {
            if r.pinned {
                continue;
            }
            // Operands of the current instruction not yet in registers count as used now.
            let n = Self::src_of(r.var.unwrap()).map_or(usize::MAX, |s| self.next_use(s, self.pos));
            if best.is_none() || n > far {
                best = Some(i);
                far = n;
            }
        }
        let Some(i) = best else {
            // More operands pinned than registers: give up (the kernel stays with the VM).
            self.failed = true;
            return 0;
        };
        let i = i as u8;
        let r = self.regs[i as usize];
        if let (Some(Var::V(v, g)), true) = (r.var, r.dirty) {
            if far != usize::MAX {
                let slot = self.spill_slot(v, g);
                self.a.store(slot, i);
            }
        }
        self.regs[i as usize] = FREE;
        i
    }

    /// `v` in a register, pinned until [`Gen::release`] or [`Gen::unpin`].
    fn get(&mut self, v: Var) -> u8 {
        if let Some(i) = self.find(v) {
            self.regs[i as usize].pinned = true;
            return i;
        }
        let i = self.grab();
        match v {
            Var::V(r, g) => {
                let slot = self.spill_slot(r, g);
                self.a.load(i, slot)
            }
            Var::S(k) => self.a.broadcast(i, Rm::Disp(RSI, 8 * k as i32)),
            Var::Temp => unreachable!(),
        }
        self.regs[i as usize] = Reg { var: Some(v), dirty: false, pinned: true };
        i
    }

    /// Operand `s` in every lane group (a scalar occupies one register for all).
    fn src(&mut self, s: Src) -> Regs {
        match s {
            Src::V(r) => std::array::from_fn(|g| self.get(Var::V(r, g as u8))),
            Src::S(k) => [self.get(Var::S(k)); G],
        }
    }

    fn unpin(&mut self, rs: Regs) {
        for r in rs {
            self.regs[r as usize].pinned = false;
        }
    }

    /// One temporary per group.
    fn temps(&mut self) -> Regs {
        std::array::from_fn(|_| self.temp())
    }

    /// One temporary shared by the groups (never reused for a result).
    fn temp(&mut self) -> u8 {
        let i = self.grab();
        self.regs[i as usize] = Reg { var: Some(Var::Temp), dirty: false, pinned: true };
        i
    }

    fn free(&mut self, rs: Regs) {
        for r in rs {
            self.regs[r as usize] = FREE;
        }
    }

    /// Unpin every register; free temporaries and values nothing reads again.
    fn release(&mut self) {
        for i in 0..self.nreg {
            self.regs[i].pinned = false;
            let dead = match self.regs[i].var {
                Some(Var::Temp) => true,
                Some(v @ Var::V(..)) => self.next_use(Self::src_of(v).unwrap(), self.pos + 1) == usize::MAX,
                _ => false,
            };
            if dead {
                self.regs[i] = FREE;
            }
        }
    }

    /// The registers for the result `dst` of the current instruction. Its operands stay pinned,
    /// so a group's result never overwrites an operand another group has yet to read; it may
    /// take the group's own register among `reuse` (temporaries, or operands that die here), as
    /// every final instruction reads its operands before writing.
    fn def(&mut self, dst: u16, reuse: &[Regs]) -> Regs {
        for g in 0..G as u8 {
            if let Some(i) = self.find(Var::V(dst, g)) {
                self.regs[i as usize] = FREE;
            }
        }
        let mut taken = [u8::MAX; G];
        for g in 0..G {
            let own = reuse.iter().map(|r| r[g]).find(|&i| match self.regs[i as usize].var {
                Some(Var::Temp) => !taken.contains(&i),
                Some(v @ Var::V(_, h)) => {
                    h as usize == g && self.next_use(Self::src_of(v).unwrap(), self.pos + 1) == usize::MAX
                }
                _ => false,
            });
            let i = match own {
                Some(i) => i,
                None => self.grab(),
            };
            self.regs[i as usize] = Reg { var: Some(Var::V(dst, g as u8)), dirty: true, pinned: true };
            taken[g] = i;
        }
        taken
    }

    /// The column of field `f` at the current lanes of group `g` (rax holds the column start).
    fn field(&mut self, f: u32) {
        self.max_field = self.max_field.max(f as usize);
        self.a.mov_load(RAX, RDI, 8 * f as i32);
    }

    fn body(&mut self) {
        let mut top = self.a.a.create_label();
        let r = self.a.a.set_label(&mut top);
        self.a.failed |= r.is_err();
        for pos in 0..self.ops.len() {
            self.pos = pos;
            self.op(&self.ops[pos]);
            self.release();
        }
        // add rcx, width*G; cmp rcx, r8; jb top; vzeroupper; ret
        let step = self.a.isa.width() * G as i32;
        emit!(self.a, add(rcx, step));
        emit!(self.a, cmp(rcx, r8));
        emit!(self.a, jb(top));
        emit!(self.a, vzeroupper());
        emit!(self.a, ret());
    }

    /// The constants the code asked for, and whether generation succeeded.
    fn consts(&self) -> Option<Vec<u64>> {
        (!self.failed).then(|| self.a.consts.clone())
    }

    /// (bytes, offset of the entry point, highest field, spill values).
    fn finish(self) -> Option<(Vec<u8>, usize, usize, usize)> {
        let spill = self.n_vregs * G * self.a.isa.lanes();
        let entry = self.a.pool_len();
        if self.failed {
            return None;
        }
        Some((self.a.finish()?, entry, self.max_field, spill))
    }

    /// Emit `f(g)` for every lane group.
    fn each(&mut self, f: impl Fn(&mut Asm, usize)) {
        for g in 0..G {
            f(&mut self.a, g);
        }
    }

    /// 1.0 where `mask` is all ones, 0.0 where it is zero.
    fn bool_to_f64(&mut self, d: Regs, mask: Regs) {
        let one = self.a.konst(1f64.to_bits());
        self.each(|a, g| a.v3(AND, d[g], mask[g], one));
    }

    /// mask = (x != 0), true for NaN (Rust's `!=`).
    fn nonzero(&mut self, x: Regs) -> Regs {
        let z = self.temps();
        self.each(|a, g| {
            a.v3(XOR, z[g], z[g], Rm::Reg(z[g]));
            a.cmp(z[g], x[g], z[g], NEQ_UQ);
        });
        z
    }

    fn op(&mut self, op: &Op) {
        match *op {
            Op::Load { dst, field } => {
                self.field(field);
                let d = self.def(dst, &[]);
                self.each(|a, g| a.load(d[g], Rm::IndexDisp(RAX, RCX, a.isa.width() * g as i32)));
            }
            Op::Store { field, src } => {
                let s = self.src(Src::V(src));
                self.field(field);
                self.each(|a, g| a.store(Rm::IndexDisp(RAX, RCX, a.isa.width() * g as i32), s[g]));
            }
            Op::Splat { dst, src } => {
                let d = self.def(dst, &[]);
                self.each(|a, g| a.broadcast(d[g], Rm::Disp(RSI, 8 * src as i32)));
            }
            Op::Un { op, dst, a } => {
                let x = self.src(Src::V(a));
                match op {
                    Un::Exp => {
                        let (p, scale) = self.exp(x);
                        let d = self.def(dst, &[p, scale]);
                        self.each(|a, g| a.v3(MUL, d[g], p[g], Rm::Reg(scale[g])));
                    }
                    Un::Not => {
                        let z = self.temps();
                        self.each(|a, g| {
                            a.v3(XOR, z[g], z[g], Rm::Reg(z[g]));
                            a.cmp(z[g], x[g], z[g], EQ_OQ);
                        });
                        let d = self.def(dst, &[z, x]);
                        self.bool_to_f64(d, z);
                    }
                    _ => {
                        let d = self.def(dst, &[x]);
                        let (sign, abs) = (self.a.konst(1 << 63), self.a.konst(!(1 << 63)));
                        self.each(|a, g| match op {
                            Un::Neg => a.v3(XOR, d[g], x[g], sign),
                            Un::Fabs => a.v3(AND, d[g], x[g], abs),
                            Un::Sqrt => a.sqrt(d[g], x[g]),
                            Un::Floor => a.round(d[g], x[g], 0x09),
                            Un::Ceil => a.round(d[g], x[g], 0x0A),
                            _ => unreachable!("checked by `supported`"),
                        });
                    }
                }
            }
            Op::Bin { op, dst, a, b } => {
                let (x, y) = (self.src(a), self.src(b));
                let arith = match op {
                    Bin::Add => Some(ADD),
                    Bin::Sub => Some(SUB),
                    Bin::Mul => Some(MUL),
                    Bin::Div => Some(DIV),
                    _ => None,
                };
                if let Some(code) = arith {
                    let d = self.def(dst, &[x, y]);
                    self.each(|a, g| a.v3(code, d[g], x[g], Rm::Reg(y[g])));
                    return;
                }
                let m = match op {
                    Bin::And | Bin::Or => {
                        let (mx, my) = (self.nonzero(x), self.nonzero(y));
                        let code = if op == Bin::And { AND } else { OR };
                        self.each(|a, g| a.v3(code, mx[g], mx[g], Rm::Reg(my[g])));
                        mx
                    }
                    _ => {
                        let pred = match op {
                            Bin::Lt => LT_OS,
                            Bin::Le => LE_OS,
                            Bin::Gt => GT_OS,
                            Bin::Ge => GE_OS,
                            Bin::Eq => EQ_OQ,
                            Bin::Ne => NEQ_UQ,
                            _ => unreachable!("checked by `supported`"),
                        };
                        let m = self.temps();
                        self.each(|a, g| a.cmp(m[g], x[g], y[g], pred));
                        m
                    }
                };
                let d = self.def(dst, &[m, x, y]);
                self.bool_to_f64(d, m);
            }
            Op::Select { dst, c, a, b } => {
                let c = self.src(c);
                let m = self.nonzero(c);
                self.unpin(c);
                let (x, y) = (self.src(a), self.src(b));
                let d = self.def(dst, &[m, x, y]);
                self.each(|a, g| a.blendv(d[g], y[g], x[g], m[g]));
            }
            Op::Cnexp { dst, x, a, inf, dt } => {
                // x + (1 - exp(dt*a))*(inf - x)
                let ar = self.src(a);
                let dtr = self.get(Var::S(dt));
                let t = self.temps();
                self.each(|a, g| a.v3(MUL, t[g], dtr, Rm::Reg(ar[g])));
                self.unpin(ar);
                self.unpin([dtr; G]);
                let (p, scale) = self.exp(t);
                let one = self.temp();
                let k = self.a.konst(1f64.to_bits());
                self.a.load(one, k);
                self.each(|a, g| {
                    a.v3(MUL, p[g], p[g], Rm::Reg(scale[g]));
                    a.v3(SUB, p[g], one, Rm::Reg(p[g]));
                });
                let (xr, ir) = (self.src(Src::V(x)), self.src(inf));
                self.each(|a, g| {
                    a.v3(SUB, scale[g], ir[g], Rm::Reg(xr[g]));
                    a.v3(MUL, p[g], p[g], Rm::Reg(scale[g]));
                });
                let d = self.def(dst, &[p, scale, xr, ir]);
                self.each(|a, g| a.v3(ADD, d[g], xr[g], Rm::Reg(p[g])));
            }
            _ => unreachable!("checked by `supported`"),
        }
    }

    /// fastmath::exp of `x`, step for step: returns the polynomial and the power of two (both
    /// temporaries) whose product is the result. Three temporaries per group: `k` is formed twice
    /// from `kf` instead of being kept.
    fn exp(&mut self, x: Regs) -> (Regs, Regs) {
        let c = |g: &mut Gen, v: f64| g.a.konst(v.to_bits());
        // Clamp to [-708, 709]: vmaxpd/vminpd return their second operand for NaN, as the
        // comparisons of fastmath::exp leave x unchanged.
        let (lo, hi) = (c(self, -708.0), c(self, 709.0));
        let t0 = self.temps();
        self.each(|a, g| {
            a.load(t0[g], lo);
            a.v3(MAX, t0[g], t0[g], Rm::Reg(x[g]));
        });
        self.unpin(x);
        let t1 = self.temps();
        self.each(|a, g| {
            a.load(t1[g], hi);
            a.v3(MIN, t0[g], t1[g], Rm::Reg(t0[g]));
        });
        let (log2e, shifter) = (c(self, fastmath::LOG2E), c(self, fastmath::SHIFTER));
        let (ln2_hi, ln2_lo) = (c(self, fastmath::LN2_HI), c(self, fastmath::LN2_LO));
        let t2 = self.temps();
        // kf = x*log2e + shifter; r = (x - k*ln2_hi) - k*ln2_lo with k = kf - shifter.
        self.each(|a, g| {
            a.v3(MUL, t1[g], t0[g], log2e);
            a.v3(ADD, t1[g], t1[g], shifter);
        });
        self.each(|a, g| {
            a.v3(SUB, t2[g], t1[g], shifter);
            a.v3(MUL, t2[g], t2[g], ln2_hi);
            a.v3(SUB, t0[g], t0[g], Rm::Reg(t2[g]));
        });
        self.each(|a, g| {
            a.v3(SUB, t2[g], t1[g], shifter);
            a.v3(MUL, t2[g], t2[g], ln2_lo);
            a.v3(SUB, t0[g], t0[g], Rm::Reg(t2[g]));
        });
        // Horner in t2 with r in t0.
        let f = fastmath::INV_FACT;
        let top = c(self, f[f.len() - 1]);
        self.each(|a, g| a.v3(MUL, t2[g], t0[g], top));
        for (i, &k) in f[..f.len() - 1].iter().enumerate().rev() {
            let k = c(self, k);
            self.each(|a, g| {
                a.v3(ADD, t2[g], t2[g], k);
                if i > 0 {
                    a.v3(MUL, t2[g], t2[g], Rm::Reg(t0[g]));
                }
            });
        }
        let bias = self.a.konst(1023u64.wrapping_sub(fastmath::SHIFTER.to_bits()));
        self.each(|a, g| {
            a.v3(PADDQ, t1[g], t1[g], bias);
            a.psllq(t1[g], t1[g], 52);
        });
        self.free(t0);
        (t2, t1)
    }
}

/// Awkward values for tests: zeros of both signs, NaN, infinities, huge, tiny, integers, halves,
/// between random values of a few scales.
#[cfg(test)]
pub(crate) fn test_inputs(n: usize) -> Vec<f64> {
    let special = [
        0.0,
        -0.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e300,
        -1e300,
        5e-324,
        2.5,
        -2.5,
        1.0,
        -1.0,
        709.5,
        -745.0,
        0.5,
        3.0,
    ];
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            if i % 3 == 0 {
                special[(s % special.len() as u64) as usize]
            } else {
                ((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * [2.0, 100.0, 1500.0][i % 7 % 3]
            }
        })
        .collect()
}

/// Same bits, or both NaN (which NaN an operation propagates depends on its operand order, which
/// LLVM chooses freely for the VM).
#[cfg(test)]
pub(crate) fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::{self, Env, Workspace, LANES};
    use miv_partition::rng::CounterStream;

    /// Run `p` over the instances of `fields` columns through the VM or native code for `isa`.
    fn run(p: &Program, input: &[f64], fields: usize, isa: Option<Isa>) -> Vec<f64> {
        let cap = input.len() / fields;
        let mut data = input.to_vec();
        let mut rng = vec![CounterStream::default(); cap];
        let (mut events, mut args) = (Vec::new(), []);
        let mut env = Env {
            data: &mut data,
            cap,
            tables: &[],
            rng: &mut rng,
            vectors: &[],
            args: &mut args,
            events: &mut events,
        };
        let mut ws = Workspace::<LANES>::new();
        let mut q = p.clone();
        q.native = Native(isa.map(|isa| compile_for(p, isa).expect("compiles")));
        let _switch = vm::simd_switch_lock();
        vm::run(&q, &mut ws, &mut env, 0, cap, &|_| {}).unwrap();
        data
    }

    /// Native code for every instruction set of this CPU gives the VM's bits.
    fn same_bits(p: &Program, fields: usize) {
        let input = test_inputs(fields * 2 * LANES);
        let a = run(p, &input, fields, None);
        for isa in available() {
            let b = run(p, &input, fields, Some(isa));
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert!(
                    same(*x, *y),
                    "{isa:?} {:?}: value {i} (input {}): vm {x:e}, native {y:e}",
                    p.ops,
                    input[i % (2 * LANES)]
                );
            }
        }
    }

    fn program(ops: Vec<Op>, n_regs: usize, scalars: Vec<f64>) -> Program {
        Program { sops: vec![], ops, n_regs, scalars, max_system: 0, native: Native::default() }
    }

    #[test]
    fn every_instruction_gives_the_vm_bits() {
        let unary = [Un::Neg, Un::Not, Un::Exp, Un::Sqrt, Un::Fabs, Un::Floor, Un::Ceil];
        for op in unary {
            let ops = vec![Op::Load { dst: 0, field: 0 }, Op::Un { op, dst: 1, a: 0 }, Op::Store { field: 1, src: 1 }];
            same_bits(&program(ops, 2, vec![]), 2);
        }
        let binary = [
            Bin::Add,
            Bin::Sub,
            Bin::Mul,
            Bin::Div,
            Bin::Lt,
            Bin::Le,
            Bin::Gt,
            Bin::Ge,
            Bin::Eq,
            Bin::Ne,
            Bin::And,
            Bin::Or,
        ];
        for op in binary {
            for (a, b) in
                [(Src::V(0), Src::V(1)), (Src::V(0), Src::S(0)), (Src::S(0), Src::V(1)), (Src::S(0), Src::S(1))]
            {
                let ops = vec![
                    Op::Load { dst: 0, field: 0 },
                    Op::Load { dst: 1, field: 1 },
                    Op::Bin { op, dst: 2, a, b },
                    Op::Store { field: 2, src: 2 },
                ];
                same_bits(&program(ops, 3, vec![0.75, -0.0]), 3);
            }
        }
        let ops = vec![
            Op::Load { dst: 0, field: 0 },
            Op::Load { dst: 1, field: 1 },
            Op::Load { dst: 2, field: 2 },
            Op::Select { dst: 3, c: Src::V(0), a: Src::V(1), b: Src::V(2) },
            Op::Store { field: 3, src: 3 },
            Op::Select { dst: 3, c: Src::V(0), a: Src::S(0), b: Src::V(2) },
            Op::Store { field: 2, src: 3 },
            Op::Cnexp { dst: 3, x: 0, a: Src::V(1), inf: Src::V(2), dt: 1 },
            Op::Store { field: 1, src: 3 },
            Op::Splat { dst: 3, src: 0 },
            Op::Store { field: 0, src: 3 },
        ];
        same_bits(&program(ops, 4, vec![0.75, 0.025]), 4);
    }

    #[test]
    fn more_live_values_than_registers_spill() {
        // 24 values live at once, then summed in an order that needs the first ones last.
        let mut ops = vec![Op::Load { dst: 0, field: 0 }];
        for r in 1..24u16 {
            ops.push(Op::Un { op: Un::Exp, dst: r + 24, a: r - 1 });
            ops.push(Op::Bin { op: Bin::Mul, dst: r, a: Src::V(r + 24), b: Src::S(0) });
        }
        let mut acc = 23u16;
        for r in (0..23u16).rev() {
            ops.push(Op::Bin { op: Bin::Add, dst: 48 + r, a: Src::V(acc), b: Src::V(r) });
            acc = 48 + r;
        }
        ops.push(Op::Store { field: 1, src: acc });
        same_bits(&program(ops, 72, vec![0.3]), 2);
    }
}
