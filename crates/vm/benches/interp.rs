//! duet's reference interpreter against the `rbpf` crate's interpreter, in the same run.
//!
//! Every program is written once in duet's assembly dialect, assembled with
//! [`duet_isa::assemble`] and encoded with [`Program::to_bytes`]; the *same bytes* are decoded
//! by duet and handed to `rbpf::EbpfVmMbuff`. Before anything is timed, both engines run each
//! program and must return the same `r0`, so the two columns always measure the same work.
//!
//! Programs (none reads `r2`: duet sets it to the input length, rbpf leaves it 0):
//!
//! - `alu_loop`: 1000 iterations of 64/32-bit arithmetic, counting down, returning a checksum.
//! - `mem_walk`: word and byte loads over a 2 KiB input buffer, folding them into a checksum.
//! - `helper_calls`: 1000 calls of helper 1 (`r1 + r2`), registered identically in both VMs.
//! - `local_calls`: 1000 bpf-to-bpf calls (`call local`, src = 1) of a function computing
//!   `r1 + r2`. rbpf 0.4.1's interpreter supports these (its `CALL` arm handles src = 1: it
//!   saves r6-r9 and the return address in a frame and lowers r10), so both engines run it.
//!
//! After the criterion groups, a summary table prints `rbpf time / duet time` per program,
//! measured twice within this run: (1) the median per-iteration time over every batch
//! criterion timed for each function (recorded through `iter_custom`, warm-up batches
//! included), and (2) an interleaved re-measurement with `Instant` (rounds alternating duet
//! and rbpf, median per engine), which is robust against other load on the machine drifting
//! during the criterion groups.
//!
//! Run with `cargo bench -p duet-vm --bench interp`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::Criterion;
use duet_isa::{Program, assemble};
use duet_vm::{Config, HelperOutcome, Helpers, Interpreter};

/// Bytes of input for `mem_walk` (duet and rbpf get identical copies).
const MEM_LEN: usize = 2048;

const ALU_LOOP: &str = "
    mov %r0, 0
    mov %r1, 1000            # loop counter
    mov %r2, 0x1234
loop:
    mov %r3, %r1
    mul %r3, 0x9e3779b1      # hex immediates are a 32-bit pattern, sign-extended
    add %r0, %r3
    xor %r0, %r2
    mov %r4, %r0
    rsh %r4, 7
    add %r2, %r4
    add32 %r2, 3
    sub %r1, 1
    jne %r1, 0, loop
    exit
";

// r1 = input; walks MEM_LEN bytes, 4 at a time (the length is a constant, not r2: see above).
const MEM_WALK: &str = "
    mov %r0, 0
    mov %r2, %r1
    add %r2, 2048
loop:
    mul %r0, 31
    ldxw %r3, [%r1+0]
    add %r0, %r3
    ldxb %r4, [%r1+3]
    xor %r0, %r4
    add %r1, 4
    jlt %r1, %r2, loop
    exit
";

const HELPER_CALLS: &str = "
    mov %r6, 1000            # counter, callee-saved
    mov %r7, 0               # accumulator, callee-saved
loop:
    mov %r1, %r7
    mov %r2, %r6
    call 1
    mov %r7, %r0
    xor %r7, 0x55
    sub %r6, 1
    jne %r6, 0, loop
    mov %r0, %r7
    exit
";

const LOCAL_CALLS: &str = "
    mov %r6, 1000
    mov %r7, 0
loop:
    mov %r1, %r7
    mov %r2, %r6
    call local sum
    mov %r7, %r0
    xor %r7, 0x55
    sub %r6, 1
    jne %r6, 0, loop
    mov %r0, %r7
    exit
sum:
    mov %r0, %r1
    add %r0, %r2
    exit
";

/// Helper 1 for rbpf.
fn rbpf_sum(a: u64, b: u64, _: u64, _: u64, _: u64) -> u64 {
    a.wrapping_add(b)
}

fn duet_helpers() -> Helpers {
    let mut helpers = Helpers::new();
    helpers.register(1, |_, a| Ok(HelperOutcome::Return(a[0].wrapping_add(a[1]))));
    helpers
}

fn input() -> Vec<u8> {
    // xorshift64: deterministic, non-trivial bytes.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..MEM_LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// One benchmark program, both engines loaded with the same bytes.
struct Case {
    name: &'static str,
    duet: Interpreter,
    rbpf: rbpf::EbpfVmMbuff<'static>,
    /// Input memory (empty for programs that take none).
    mem: Vec<u8>,
}

impl Case {
    fn new(name: &'static str, source: &str, mem: Vec<u8>) -> Case {
        let insns = assemble(source).unwrap_or_else(|e| panic!("{name}: {e}"));
        let bytes = Program::from_insns(&insns).unwrap_or_else(|e| panic!("{name}: {e}")).to_bytes();
        // duet decodes the very bytes rbpf gets.
        let program = Program::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let duet = Interpreter::new_unverified(&program, duet_helpers(), Config::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // rbpf borrows the bytecode for the VM's lifetime; the cases live for the whole process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        let mut rbpf = rbpf::EbpfVmMbuff::new(Some(bytes)).unwrap_or_else(|e| panic!("{name}: rbpf rejects: {e}"));
        rbpf.register_helper(1, rbpf_sum).unwrap_or_else(|e| panic!("{name}: {e}"));
        let case = Case { name, duet, rbpf, mem };
        case.check();
        case
    }

    fn run_duet(&mut self) -> u64 {
        self.duet.run(black_box(&mut self.mem)).unwrap_or_else(|t| panic!("{}: duet trapped: {t}", self.name))
    }

    fn run_rbpf(&self) -> u64 {
        // An empty mbuff makes rbpf put `mem`'s address in r1, as duet does.
        self.rbpf
            .execute_program(black_box(&self.mem), &[])
            .unwrap_or_else(|e| panic!("{}: rbpf failed: {e}", self.name))
    }

    /// Both engines must compute the same result, or the comparison is meaningless.
    fn check(&self) {
        let mut duet = self.duet.clone();
        let mut mem = self.mem.clone();
        let d = duet.run(&mut mem).unwrap_or_else(|t| panic!("{}: duet trapped: {t}", self.name));
        let r = self.rbpf.execute_program(&self.mem, &[]).unwrap_or_else(|e| panic!("{}: rbpf failed: {e}", self.name));
        assert_eq!(d, r, "{}: duet and rbpf disagree on r0", self.name);
        assert_ne!(d, 0, "{}: a zero checksum would hide a program that does nothing", self.name);
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case::new("alu_loop", ALU_LOOP, Vec::new()),
        Case::new("mem_walk", MEM_WALK, input()),
        Case::new("helper_calls", HELPER_CALLS, Vec::new()),
        Case::new("local_calls", LOCAL_CALLS, Vec::new()),
    ]
}

/// Per-iteration times (ns) of every criterion sample, by (program, engine).
static SAMPLES: Mutex<BTreeMap<(&'static str, &'static str), Vec<f64>>> = Mutex::new(BTreeMap::new());

fn record(program: &'static str, engine: &'static str, iters: u64, elapsed: Duration) {
    if iters > 0 {
        let per_iter = elapsed.as_nanos() as f64 / iters as f64;
        SAMPLES.lock().unwrap().entry((program, engine)).or_default().push(per_iter);
    }
}

fn bench_cases(c: &mut Criterion, cases: &mut [Case]) {
    for case in cases {
        let name = case.name;
        let mut group = c.benchmark_group(name);
        group.bench_function("duet", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(case.run_duet());
                }
                let elapsed = start.elapsed();
                record(name, "duet", iters, elapsed);
                elapsed
            })
        });
        group.bench_function("rbpf", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(case.run_rbpf());
                }
                let elapsed = start.elapsed();
                record(name, "rbpf", iters, elapsed);
                elapsed
            })
        });
        group.finish();
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

const ROUNDS: usize = 21;

/// Interleaved timing: `ROUNDS` rounds, each timing a batch of duet runs and a batch of rbpf
/// runs (order alternating), each batch about `BATCH` long. Returns median ns/run per engine.
fn interleaved(case: &mut Case) -> (f64, f64) {
    const BATCH: Duration = Duration::from_millis(15);
    // Calibrate the batch size on the faster engine's single-run time, warming both up.
    let calibrate = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_millis(50) {
            f();
            n += 1;
        }
        start.elapsed().as_nanos() as f64 / n as f64
    };
    let d1 = calibrate(&mut || {
        black_box(case.run_duet());
    });
    let r1 = calibrate(&mut || {
        black_box(case.run_rbpf());
    });
    let n_duet = ((BATCH.as_nanos() as f64 / d1) as u64).max(1);
    let n_rbpf = ((BATCH.as_nanos() as f64 / r1) as u64).max(1);
    let (mut duet, mut rbpf) = (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
    for round in 0..ROUNDS {
        for engine in if round % 2 == 0 { [0, 1] } else { [1, 0] } {
            let start = Instant::now();
            if engine == 0 {
                for _ in 0..n_duet {
                    black_box(case.run_duet());
                }
                duet.push(start.elapsed().as_nanos() as f64 / n_duet as f64);
            } else {
                for _ in 0..n_rbpf {
                    black_box(case.run_rbpf());
                }
                rbpf.push(start.elapsed().as_nanos() as f64 / n_rbpf as f64);
            }
        }
    }
    (median(&mut duet), median(&mut rbpf))
}

fn summary(cases: &mut [Case]) {
    let mut samples = SAMPLES.lock().unwrap();
    println!();
    println!("== duet vs rbpf interpreter: rbpf time / duet time (>1 means duet is faster), measured in this run ==");
    println!(
        "{:<14} {:>13} {:>13} {:>10}   {:>13} {:>13} {:>10}",
        "program", "crit duet", "crit rbpf", "ratio", "interl. duet", "interl. rbpf", "ratio"
    );
    for case in cases {
        let mut crit = |engine| samples.get_mut(&(case.name, engine)).map(|v| median(v));
        let (cd, cr) = (crit("duet"), crit("rbpf"));
        let (id, ir) = interleaved(case);
        let fmt_ns = |ns: Option<f64>| ns.map_or_else(|| "-".to_owned(), |ns| format!("{:.2} us", ns / 1000.0));
        let crit_ratio = match (cd, cr) {
            (Some(d), Some(r)) => format!("{:.2}x", r / d),
            _ => "-".to_owned(),
        };
        println!(
            "{:<14} {:>13} {:>13} {:>10}   {:>13} {:>13} {:>10}",
            case.name,
            fmt_ns(cd),
            fmt_ns(cr),
            crit_ratio,
            fmt_ns(Some(id)),
            fmt_ns(Some(ir)),
            format!("{:.2}x", ir / id)
        );
    }
    println!(
        "(crit = median per-iteration time of criterion's timed batches; interl. = median of {} interleaved rounds)",
        ROUNDS
    );
}

fn main() {
    let mut cases = cases();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .configure_from_args();
    bench_cases(&mut c, &mut cases);
    c.final_summary();
    // `cargo bench` passes `--bench`; under `cargo test --benches` criterion only smoke-runs
    // each function once, and the equivalence checks above are the useful part.
    if std::env::args().any(|a| a == "--bench") {
        summary(&mut cases);
    }
}
