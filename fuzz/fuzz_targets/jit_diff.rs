//! Differential: duet's JIT against the interpreter (issue 11).
//!
//! 1. Verified code: structured XDP programs (a packet-bounds prologue and an array map value in
//!    r6, then random ALU, memory,
//!    atomic and forward-jump instructions from the opcode table) that duet's verifier accepts
//!    run through `Module::interpreter` and `Module::jit` (each on a module of its own) on the
//!    same packet: the same verdict or trap, the same output packet, the same maps.
//! 2. Checked code: arbitrary bytecode that decodes runs unverified through the interpreter and
//!    `Jit::new_checked` on the same memory: the same result or trap (addresses aside: the two
//!    runs' stacks live at different addresses) and the same memory afterwards.
#![no_main]

use arbitrary::Arbitrary;
use duet_isa::{Insn, Op, Program};
use duet_object::{MapDef, MapOrigin, Object, ObjectProgram, ProgramKind};
use duet_verifier::{MapInfo, ProgramType, VerifyContext};
use duet_vm::{Config, Env, Helpers, Interpreter, Jit, LoadOptions, Module, Trap, XdpPacket};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    packet: Vec<u8>,
    body: Vec<(u8, u8, u8, i8, i16)>,
    raw: Vec<u8>,
    mem: Vec<u8>,
}

fn maps() -> Vec<MapDef> {
    let def = |name: &str, map_type, key_size, value_size, max_entries| MapDef {
        name: name.into(),
        map_type,
        key_size,
        value_size,
        max_entries,
        flags: 0,
        initial_data: None,
        origin: MapOrigin::BtfMaps,
        key_type: None,
        value_type: None,
    };
    vec![def("hash", 1, 4, 8, 16), def("array", 2, 4, 8, 4)]
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

/// A well-formed helper call the JIT may compile directly (map lookup, update and delete on the
/// hash or the array map with a key on the stack, the clock, the generator, the CPU), chosen by
/// `sel`; it leaves a number in r0 and clobbers r1..r5 as every call does.
fn helper_call(sel: i16) -> Vec<Insn> {
    let insn = |op, dst, src, off, imm| Insn { op, dst, src, off, imm };
    let (kind, map, key) = (sel & 7, i64::from((sel >> 3) & 1), i64::from((sel >> 4) & 7));
    let key_setup = [
        insn(Op::StW, 10, 0, -8, key),
        insn(Op::LdImm64, 1, 1, 0, map),
        insn(Op::MovReg, 2, 10, 0, 0),
        insn(Op::AddImm, 2, 0, 0, -8),
    ];
    match kind {
        0 | 1 => {
            // r0 = lookup(map, &key); r0 = r0 ? *(u64 *)r0 : 0
            let mut v = key_setup.to_vec();
            v.extend([
                insn(Op::Call, 0, 0, 0, 1),
                insn(Op::JeqImm, 0, 0, 1, 0),
                insn(Op::LdxDw, 0, 0, 0, 0),
            ]);
            v
        }
        2 | 3 => {
            // update(map, &key, &value, flags 0..=2)
            let mut v = vec![insn(Op::StDw, 10, 0, -16, i64::from(sel >> 7))];
            v.extend(key_setup);
            v.extend([
                insn(Op::MovReg, 3, 10, 0, 0),
                insn(Op::AddImm, 3, 0, 0, -16),
                insn(Op::MovImm, 4, 0, 0, i64::from(sel.rem_euclid(3))),
                insn(Op::Call, 0, 0, 0, 2),
            ]);
            v
        }
        4 => {
            let mut v = key_setup.to_vec();
            v.push(insn(Op::Call, 0, 0, 0, 3));
            v
        }
        5 => vec![insn(Op::Call, 0, 0, 0, 5)],
        6 => vec![insn(Op::Call, 0, 0, 0, 7)],
        _ => vec![insn(Op::Call, 0, 0, 0, 8)],
    }
}

/// `r9 = ctx; r2 = data; r3 = data_end; if r2 + 14 > r3 goto out; r6 = array value or out`
/// (and the packet pointers reloaded), then the body (forward jumps only, so every program terminates), then `r0 = 2; exit`.
fn structured(body: &[(u8, u8, u8, i8, i16)]) -> Vec<Insn> {
    let insn = |op, dst, src, off, imm| Insn { op, dst, src, off, imm };
    let mut body_insns = Vec::new();
    let n = body.len().min(48);
    for (k, &(row, dst, src, off, imm)) in body.iter().take(n).enumerate() {
        let spec = &duet_isa::OPS[row as usize % duet_isa::OPS.len()];
        let mut i = insn(spec.op, dst % 10, src % 11, i16::from(off), i64::from(imm));
        match spec.disc {
            duet_isa::table::Disc::Off(o) => i.off = o,
            duet_isa::table::Disc::Imm(v) => i.imm = i64::from(v),
            duet_isa::table::Disc::Src(s) => i.src = s,
            duet_isa::table::Disc::None => {}
        }
        if i.op == Op::Call {
            body_insns.extend(helper_call(imm));
            continue;
        }
        if matches!(i.op, Op::Exit | Op::LdImm64 | Op::CallReg | Op::CallKfunc | Op::CallLocal | Op::Ja32) {
            continue;
        }
        if i.op.is_branch() {
            // Forward, inside the body (to its end at most).
            let left = (n - k) as i16;
            i.off = (i.off.rem_euclid(left.max(1))).max(0);
        }
        body_insns.push(i);
    }
    // Jumps were computed against the unfiltered body; clamp them to the filtered one.
    let len = body_insns.len();
    for (k, i) in body_insns.iter_mut().enumerate() {
        if i.op.is_branch() {
            i.off = i.off.min((len - k - 1) as i16);
        }
    }
    let mut out = vec![
        insn(Op::MovReg, 9, 1, 0, 0),
        insn(Op::LdxW, 2, 9, 0, 0),
        insn(Op::LdxW, 3, 9, 4, 0),
        insn(Op::MovReg, 4, 2, 0, 0),
        insn(Op::AddImm, 4, 0, 0, 14),
        insn(Op::JgtReg, 4, 3, 0, 0), // 5: patched below
        // r6 = lookup(array, &0): a map value pointer for the body to use.
        insn(Op::StW, 10, 0, -4, 0),
        insn(Op::LdImm64, 1, 1, 0, 1),
        insn(Op::MovReg, 2, 10, 0, 0),
        insn(Op::AddImm, 2, 0, 0, -4),
        insn(Op::Call, 0, 0, 0, 1),
        insn(Op::JeqImm, 0, 0, 0, 0), // 11: patched below
        insn(Op::MovReg, 6, 0, 0, 0),
        // The call clobbered r1..r5: reload the packet pointers.
        insn(Op::LdxW, 2, 9, 0, 0),
        insn(Op::LdxW, 3, 9, 4, 0),
        insn(Op::MovReg, 4, 2, 0, 0),
        insn(Op::AddImm, 4, 0, 0, 14),
        insn(Op::JgtReg, 4, 3, 0, 0), // 17: patched below
    ];
    out.extend(body_insns);
    out.push(insn(Op::MovImm, 0, 0, 0, 2));
    out.push(insn(Op::Exit, 0, 0, 0, 0));
    // Every prologue exit lands on `r0 = 2`. Slots: the lddw takes two.
    let slot_of = |idx: usize, out: &[Insn]| out[..idx].iter().map(Insn::slots).sum::<usize>();
    let target = slot_of(out.len() - 2, &out);
    for idx in [5, 11, 17] {
        let at = slot_of(idx, &out);
        out[idx].off = (target - at - 1) as i16;
    }
    out
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

fn verified_diff(program: &Program, packet: &[u8]) {
    if duet_verifier::verify(program, &context()).is_err() {
        return;
    }
    let object = object(program);
    let options = || LoadOptions { n_cpus: 1, config: Config::default(), env: Env::deterministic(), max_map_memory: 1 << 20 };
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
    assert_eq!(shape(&ra), shape(&rb), "interpreter vs checked JIT\n{}", duet_isa::disassemble(
        &program.insns().iter().map(|(_, i)| *i).collect::<Vec<_>>()
    ));
    assert_eq!(ma, mb, "memory differs");
}

fuzz_target!(|input: Input| {
    if let Ok(program) = Program::from_insns(&structured(&input.body)) {
        verified_diff(&program, &input.packet);
    }
    checked_diff(&input.raw, &input.mem);
});
