//! Fuzzing of the NMODL front end without cargo-fuzz: the `.mod` files of mechanisms/ are mutated by a
//! seeded generator (deletions, duplications, splices between files, inserted keywords and operators,
//! extreme numbers, truncation, raw bytes) and every mutant goes through parse, check and lowering; the
//! ones that compile are also initialised and stepped. Nothing may panic. The run is bounded by time
//! (MIV_FUZZ_SECONDS, default 20) and by a number of mutants (MIV_FUZZ_ITERATIONS, default 200000);
//! MIV_FUZZ_SEED picks another sequence. A failing input is written to target/fuzz-failures.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use miv_nmodl::{Context, Mechanism};

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    "=",
    "==",
    "<->",
    "<<",
    "~",
    "'",
    ":",
    "?",
    "^",
    "-",
    "/",
    "*",
    "+",
    "&&",
    "||",
    "!",
    "<",
    ">=",
    "\n",
    " ",
    "\"",
    "0",
    "1e308",
    "-1e999",
    ".5e-3",
    "1.e",
    "NEURON",
    "SUFFIX",
    "POINT_PROCESS",
    "ARTIFICIAL_CELL",
    "USEION",
    "READ",
    "WRITE",
    "VALENCE",
    "RANGE",
    "GLOBAL",
    "PARAMETER",
    "ASSIGNED",
    "STATE",
    "INITIAL",
    "BREAKPOINT",
    "SOLVE",
    "METHOD",
    "cnexp",
    "derivimplicit",
    "sparse",
    "DERIVATIVE",
    "KINETIC",
    "CONSERVE",
    "PROCEDURE",
    "FUNCTION",
    "LOCAL",
    "TABLE",
    "DEPEND",
    "FROM",
    "TO",
    "WITH",
    "NET_RECEIVE",
    "net_send",
    "net_event",
    "if",
    "else",
    "VERBATIM",
    "ENDVERBATIM",
    "COMMENT",
    "ENDCOMMENT",
    "UNITS",
    "UNITSOFF",
    "TITLE",
    "v",
    "t",
    "dt",
    "celsius",
    "exp",
    "flag",
    "m'",
    "x''",
    "é",
    "\u{0}",
    "\t",
    "1",
    "2",
];

fn mutate(rng: &mut Rng, corpus: &[String]) -> String {
    let mut s: Vec<u8> = corpus[rng.below(corpus.len())].clone().into_bytes();
    for _ in 0..1 + rng.below(4) {
        let n = s.len();
        let (a, b) = {
            let a = rng.below(n + 1);
            (a, (a + rng.below(64)).min(n))
        };
        match rng.below(8) {
            0 => {
                s.drain(a..b);
            }
            1 => {
                let chunk = s[a..b].to_vec();
                let at = rng.below(s.len() + 1);
                s.splice(at..at, chunk);
            }
            2 => {
                let other = corpus[rng.below(corpus.len())].as_bytes();
                let x = rng.below(other.len() + 1);
                let y = (x + rng.below(200)).min(other.len());
                s.splice(a..a, other[x..y].iter().copied());
            }
            3 | 4 => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                s.splice(a..a, t.iter().copied());
            }
            5 => s.truncate(a),
            6 => {
                let k = rng.below(8);
                for _ in 0..k {
                    let at = rng.below(s.len() + 1);
                    s.insert(at, rng.next() as u8);
                }
            }
            _ => {
                if b > a {
                    let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                    s.splice(a..b, t.iter().copied());
                }
            }
        }
    }
    String::from_utf8_lossy(&s).into_owned()
}

/// Compile, and if that works, run the entry points a little.
fn exercise(text: &str) {
    let Ok(m) = Mechanism::compile(text, "fuzz.mod") else { return };
    let m = Arc::new(m);
    let mut inst = m.instances(3);
    let ctx = Context { t: 0.0, dt: 0.025, celsius: 6.3, second_order: false };
    let mut events = Vec::new();
    if inst.initialize(&ctx, &mut events).is_err() {
        return;
    }
    for _ in 0..2 {
        let _ = inst.current(&ctx);
        let _ = inst.advance_state(&ctx);
    }
    if let Some(n) = m.info().net_receive_args {
        let mut w = vec![0.5; n];
        let _ = inst.net_init(1, &mut w, 0.0);
        let _ = inst.net_receive(1, &mut w, 1.0, 0.1, &mut events);
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

#[test]
fn mutated_mod_files_never_panic_the_front_end() {
    let mut corpus = Vec::new();
    for dir in ["standard", "constructs"] {
        for p in miv_nmodl::library::mod_files(&common::repo_root().join("mechanisms").join(dir)).unwrap() {
            corpus.push(std::fs::read_to_string(p).unwrap());
        }
    }
    assert!(corpus.len() >= 10);
    let budget = Duration::from_secs(env_number("MIV_FUZZ_SECONDS", 20));
    let max_iter = env_number("MIV_FUZZ_ITERATIONS", 200_000);
    let mut rng = Rng(env_number("MIV_FUZZ_SEED", 0x6d69_765f_6e6d_6f64) | 1);
    let start = Instant::now();
    let (mut n, mut compiled) = (0u64, 0u64);
    // Unmodified files, then raw mutants.
    let mut inputs: Vec<String> = corpus.clone();
    while n < max_iter && start.elapsed() < budget {
        let text = if let Some(t) = inputs.pop() { t } else { mutate(&mut rng, &corpus) };
        n += 1;
        if let Ok(path) = std::env::var("MIV_FUZZ_TRACE") {
            std::fs::write(path, &text).unwrap();
        }
        let ok = catch_unwind(AssertUnwindSafe(|| exercise(&text)));
        if ok.is_err() {
            let dir = common::repo_root().join("target").join("fuzz-failures");
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(format!("case-{n}.mod"));
            std::fs::write(&path, &text).unwrap();
            panic!("the front end panicked on mutant {n}, saved to {}", path.display());
        }
        if Mechanism::compile(&text, "fuzz.mod").is_ok() && n % 16 == 0 {
            compiled += 1;
        }
    }
    println!("{n} inputs in {:.1} s ({} sampled compiled)", start.elapsed().as_secs_f64(), compiled);
    assert!(n > 1000, "too few inputs exercised: {n}");
}
