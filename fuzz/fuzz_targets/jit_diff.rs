//! Differential: duet's JIT against the interpreter (issue 11).
//!
//! 1. Verified code: structured XDP programs (a packet-bounds prologue and an array map value in
//!    r6, then random ALU, memory, atomic and forward-jump instructions from the opcode table,
//!    and for inputs with a `callback` a `bpf_loop` call with a random callback subprogram)
//!    that duet's verifier accepts run through `Module::interpreter` and `Module::jit` (each on a module of its own) on the
//!    same packet: the same verdict or trap, the same output packet, the same maps.
//! 2. Checked code: arbitrary bytecode that decodes runs unverified through the interpreter and
//!    `Jit::new_checked` on the same memory: the same result or trap (addresses aside: the two
//!    runs' stacks live at different addresses) and the same memory afterwards.
#![no_main]

use arbitrary::Arbitrary;
use duet_isa::Program;

mod programs;
use duet_object::{Object, ObjectProgram, ProgramKind};
use duet_verifier::{MapInfo, ProgramType, VerifyContext};
use duet_vm::{Config, Env, Helpers, Interpreter, Jit, LoadOptions, Module, Trap, XdpPacket};
use libfuzzer_sys::fuzz_target;
use programs::{LoopCall, maps, structured_with};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Arbitrary, Debug)]
struct Input {
    packet: Vec<u8>,
    body: Vec<(u8, u8, u8, i8, i16)>,
    callback: Option<LoopCall>,
    raw: Vec<u8>,
    mem: Vec<u8>,
}

/// The programs compared: those duet's verifier accepts under the unprivileged rules. A program
/// the privileged rules accept may store or return an address (a map value's, the stack's), and
/// the two runs' modules live at different addresses, so such results differ by design.
fn context() -> VerifyContext {
    let mut ctx = VerifyContext::new(ProgramType::Xdp);
    ctx.maps = maps().iter().map(MapInfo::from).collect();
    ctx.config.unprivileged = true;
    ctx
}

fn object(program: &Program) -> Object {
    Object {
        license: "GPL".into(),
        programs: vec![ObjectProgram {
            name: "p".into(),
            section: "xdp".into(),
            kind: ProgramKind::Xdp,
            program: program.clone(),
            map_refs: Vec::new(),
            line_info: Vec::new(),
        }],
        maps: maps(),
    }
}

/// A trap without host addresses, which differ between the two runs' buffers.
fn shape(r: &Result<u64, Trap>) -> String {
    match r {
        Ok(v) => format!("ok {v:#x}"),
        Err(t) => {
            let msg = t.to_string();
            match msg.find(" at 0x") {
                Some(i) => msg[..i].to_owned(),
                None => msg,
            }
        }
    }
}

/// Programs with a bpf_loop call: generated, and accepted by the verifier (and so compared).
static LOOP_PROGRAMS: AtomicU64 = AtomicU64::new(0);
static LOOP_ACCEPTED: AtomicU64 = AtomicU64::new(0);

fn verified_diff(program: &Program, packet: &[u8], with_loop: bool) {
    let accepted = duet_verifier::verify(program, &context()).is_ok();
    if with_loop {
        let n = LOOP_PROGRAMS.fetch_add(1, Ordering::Relaxed) + 1;
        let ok = LOOP_ACCEPTED.fetch_add(u64::from(accepted), Ordering::Relaxed) + u64::from(accepted);
        if n.is_power_of_two() || n.is_multiple_of(10_000) {
            eprintln!("jit_diff: {n} programs with bpf_loop, {ok} verified and compared");
        }
    }
    if !accepted {
        return;
    }
    let object = object(program);
    let options =
        || LoadOptions { n_cpus: 1, config: Config::default(), env: Env::deterministic(), max_map_memory: 1 << 20 };
    let (Ok(mi), Ok(mj)) = (Module::load(&object, options()), Module::load(&object, options())) else { return };
    let mut interp = mi.interpreter("p").expect("verified");
    let mut jit = mj.jit("p").expect("the JIT compiles every verified program");
    let frame = if packet.len() < 14 { [0u8; 14].as_slice() } else { &packet[..packet.len().min(1500)] };
    let (mut a, mut b) = (XdpPacket::new(frame), XdpPacket::new(frame));
    let (ra, rb) = (interp.run_xdp(&mut a), jit.run_xdp(&mut b));
    let listing = || duet_isa::disassemble(&program.insns().iter().map(|(_, i)| *i).collect::<Vec<_>>());
    assert_eq!(shape(&ra), shape(&rb), "interpreter vs JIT\n{}", listing());
    assert_eq!(a.data(), b.data(), "packets differ\n{}", listing());
    for ((name, ma), (_, mb)) in mi.maps().zip(mj.maps()) {
        let (mut ea, mut eb) = (ma.entries(), mb.entries());
        ea.sort_by(|x, y| x.0.cmp(&y.0));
        eb.sort_by(|x, y| x.0.cmp(&y.0));
        assert!(ea == eb, "map {name} differs\n{}", listing());
    }
}

fn checked_diff(raw: &[u8], mem: &[u8]) {
    let Ok(program) = Program::decode(&raw[..raw.len().min(512) / 8 * 8]) else { return };
    let mut helpers = Helpers::new();
    helpers.register(5, duet_vm::unwind_helper);
    let config = Config { max_insns: Some(10_000) };
    let Ok(mut interp) = Interpreter::new_unverified(&program, helpers.clone(), config.clone()) else { return };
    let mut jit = Jit::new_checked(&program, helpers, config).expect("the JIT compiles what the interpreter loads");
    let (mut ma, mut mb) = (mem.to_vec(), mem.to_vec());
    let (ra, rb) = (interp.run(&mut ma), jit.run(&mut mb));
    assert_eq!(
        shape(&ra),
        shape(&rb),
        "interpreter vs checked JIT\n{}",
        duet_isa::disassemble(&program.insns().iter().map(|(_, i)| *i).collect::<Vec<_>>())
    );
    assert_eq!(ma, mb, "memory differs");
}

fuzz_target!(|input: Input| {
    if let Ok(program) = Program::from_insns(&structured_with(&input.body, None, input.callback.as_ref())) {
        verified_diff(&program, &input.packet, input.callback.is_some());
    }
    checked_diff(&input.raw, &input.mem);
});
