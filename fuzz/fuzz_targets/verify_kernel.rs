//! Differential: duet's verifier against the running kernel's (issue 13). Needs root.
//!
//! Each input gives one program, loaded into the kernel with `BPF_PROG_LOAD` (as an XDP program
//! with the hash and array maps) and verified by duet, under the privileged rules or, when the
//! input's `unprivileged` bit is set, under the rules for a loader without CAP_PERFMON (the load
//! then runs with CAP_PERFMON and CAP_SYS_ADMIN dropped):
//!
//! - structured XDP programs (`programs::structured_with`: packet bounds, a map value, random
//!   ALU, memory, atomic, forward jumps and helper calls, half of them inside a bounded loop of
//!   1 to 4 iterations; and for inputs with a `callback`, a `bpf_loop` call whose callback is a
//!   random subprogram, `programs::LoopCall`), or
//! - arbitrary slots, when the input's `raw` is not empty.
//!
//! A program duet accepts and the kernel rejects is a soundness escape: the target fails, with
//! both verdicts, the kernel's reason and the program. A program duet rejects and the kernel
//! accepts is a false rejection: counted (with the first few printed) rather than failed, since
//! duet's verifier is allowed to be more conservative; `DUET_FUZZ_STRICT=1` fails on those too.
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};

use arbitrary::Arbitrary;
use duet_isa::{Program, RawInsn};
use duet_kernel::{Privileges, RawLoadError, RawMap, RawProgram};
use duet_verifier::{MapInfo, ProgramType, VerifyContext};
use libfuzzer_sys::fuzz_target;

mod kernel_btf;
mod programs;

#[derive(Arbitrary, Debug)]
struct Input {
    unprivileged: bool,
    body: Vec<(u8, u8, u8, i8, i16)>,
    callback: Option<programs::LoopCall>,
    raw: Vec<u64>,
}

/// `BPF_PROG_TYPE_XDP`.
const XDP: u32 = 6;

static RUNS: AtomicU64 = AtomicU64::new(0);
static BOTH_ACCEPT: AtomicU64 = AtomicU64::new(0);
static BOTH_REJECT: AtomicU64 = AtomicU64::new(0);
static FALSE_REJECTIONS: AtomicU64 = AtomicU64::new(0);
/// Of the programs compared, those with a bpf_loop call, and those both verifiers accept.
static LOOP_RUNS: AtomicU64 = AtomicU64::new(0);
static LOOP_BOTH_ACCEPT: AtomicU64 = AtomicU64::new(0);

fn context(unprivileged: bool) -> VerifyContext {
    let mut ctx = VerifyContext::new(ProgramType::Xdp);
    ctx.maps = programs::maps().iter().map(MapInfo::from).collect();
    ctx.config.unprivileged = unprivileged;
    ctx
}

fn raw_maps() -> Vec<RawMap> {
    programs::maps()
        .iter()
        .map(|m| RawMap {
            name: m.name.clone(),
            map_type: m.map_type,
            key_size: m.key_size,
            value_size: m.value_size,
            max_entries: m.max_entries,
            flags: m.flags,
        })
        .collect()
}

/// The kernel's verdict: `Ok(true)` accepted, `Ok(false)` rejected (with its log when `log`),
/// `Err` when the load could not be tried (maps, capabilities).
///
/// A program with `lddw rX, func` (a callback) goes through `kernel_btf`, which passes the BTF
/// `func_info` the kernel requires for it; others through `duet_kernel::load_raw`.
fn kernel(words: &[u64], privileges: Privileges, log: bool) -> Result<(bool, String), String> {
    if has_func_ref(words) {
        return kernel_btf::load(words, privileges == Privileges::BpfOnly, log);
    }
    let maps = raw_maps();
    let program = RawProgram { prog_type: XDP, insns: words, maps: &maps, privileges, log };
    match duet_kernel::load_raw(&program) {
        Ok(()) => Ok((true, String::new())),
        Err(RawLoadError::Rejected { log, .. }) => Ok((false, log)),
        Err(other) => Err(other.to_string()),
    }
}

/// Whether `words` hold an `lddw rX, func` (src 4).
fn has_func_ref(words: &[u64]) -> bool {
    let mut i = 0;
    while i < words.len() {
        let code = words[i] as u8;
        if code == 0x18 && (words[i] >> 12) & 0xf == 4 {
            return true;
        }
        i += if code == 0x18 { 2 } else { 1 };
    }
    false
}

fn compare(words: &[u64], duet: Result<(), String>, unprivileged: bool, with_loop: bool) {
    let privileges = if unprivileged { Privileges::BpfOnly } else { Privileges::Inherit };
    let Ok((kernel_accepts, _)) = kernel(words, privileges, false) else { return };
    let runs = RUNS.fetch_add(1, Ordering::Relaxed) + 1;
    if with_loop {
        LOOP_RUNS.fetch_add(1, Ordering::Relaxed);
        if kernel_accepts && duet.is_ok() {
            LOOP_BOTH_ACCEPT.fetch_add(1, Ordering::Relaxed);
        }
    }
    let mode = if unprivileged { "unprivileged" } else { "privileged" };
    let listing = || {
        let raw: Vec<RawInsn> = words.iter().map(|w| RawInsn::from_u64(*w)).collect();
        match Program::from_raw(&raw) {
            Ok(p) => duet_isa::disassemble(&p.insns().iter().map(|(_, i)| *i).collect::<Vec<_>>()),
            Err(e) => format!("(does not decode: {e})"),
        }
    };
    match (&duet, kernel_accepts) {
        (Ok(()), true) => {
            BOTH_ACCEPT.fetch_add(1, Ordering::Relaxed);
        }
        (Err(_), false) => {
            BOTH_REJECT.fetch_add(1, Ordering::Relaxed);
        }
        (Ok(()), false) => {
            let log = kernel(words, privileges, true).map(|(_, log)| log).unwrap_or_default();
            let reason = log.lines().rfind(|l| !l.trim().is_empty() && !l.contains("processed ")).unwrap_or("");
            panic!("soundness escape ({mode}): duet accepts, the kernel rejects: {reason}\n{}\n{log}", listing());
        }
        (Err(why), true) => {
            let n = FALSE_REJECTIONS.fetch_add(1, Ordering::Relaxed) + 1;
            if std::env::var("DUET_FUZZ_STRICT").is_ok_and(|v| v == "1") {
                panic!("false rejection ({mode}): the kernel accepts, duet says: {why}\n{}", listing());
            }
            if n <= 5 {
                eprintln!("false rejection #{n} ({mode}): the kernel accepts, duet says: {why}\n{}", listing());
            }
        }
    }
    if runs.is_power_of_two() || runs.is_multiple_of(10_000) {
        eprintln!(
            "verify_kernel: {runs} programs compared: both accept {}, both reject {}, false rejections {}, escapes 0; \
             with bpf_loop {} (both accept {})",
            BOTH_ACCEPT.load(Ordering::Relaxed),
            BOTH_REJECT.load(Ordering::Relaxed),
            FALSE_REJECTIONS.load(Ordering::Relaxed),
            LOOP_RUNS.load(Ordering::Relaxed),
            LOOP_BOTH_ACCEPT.load(Ordering::Relaxed)
        );
    }
}

fuzz_target!(|input: Input| {
    let ctx = context(input.unprivileged);
    if input.raw.is_empty() {
        // One input in two puts its body in a bounded loop (the first body tuple's high bit of
        // `dst` chooses, its `src` gives the count).
        let loop_count = input.body.first().filter(|b| b.1 & 0x80 != 0).map(|b| b.2);
        let callback = input.callback.as_ref();
        let Ok(program) = Program::from_insns(&programs::structured_with(&input.body, loop_count, callback)) else {
            return;
        };
        let words: Vec<u64> = program.to_raw().iter().map(|r| r.to_u64()).collect();
        let duet = duet_verifier::verify(&program, &ctx).map(|_| ()).map_err(|e| e.to_string());
        compare(&words, duet, input.unprivileged, callback.is_some());
    } else {
        let words: Vec<u64> = input.raw.iter().take(128).copied().collect();
        let raw: Vec<RawInsn> = words.iter().map(|w| RawInsn::from_u64(*w)).collect();
        let duet = duet_verifier::verify_raw(&raw, &ctx).map(|_| ()).map_err(|e| e.to_string());
        compare(&words, duet, input.unprivileged, false);
    }
});
