//! Two properties of duet's verifier (issue 4):
//!
//! 1. It never panics, whatever the bytes: arbitrary slots go through `verify_raw` as an XDP
//!    program with a hash map, an array and a ring buffer.
//! 2. Soundness: a program it accepts never faults on a memory check in the checked
//!    interpreter. Accepted programs run through `duet_vm::Module` (verified path) on a packet
//!    from the input; any memory, context or alignment trap is a verifier bug. Programs are
//!    biased toward the XDP idiom (load `data`/`data_end`, compare, access) so that a useful
//!    share is accepted.
#![no_main]

use arbitrary::Arbitrary;
use duet_isa::{Insn, Op, Program, RawInsn};
use duet_object::{MapDef, MapOrigin, Object, ObjectProgram, ProgramKind};
use duet_verifier::{MapInfo, ProgramType, VerifyContext};
use duet_vm::{Config, Env, LoadOptions, Module, TrapKind, XdpPacket};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    packet: Vec<u8>,
    raw: Vec<u64>,
    /// (opcode row, dst, src, off, imm) for the body after a packet-bounds prologue.
    body: Vec<(u8, u8, u8, i8, i16)>,
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
        inner: None,
    };
    vec![def("hash", 1, 4, 8, 16), def("array", 2, 4, 8, 4), def("ring", 27, 0, 0, 4096)]
}

fn context() -> VerifyContext {
    let mut ctx = VerifyContext::new(ProgramType::Xdp);
    ctx.maps = maps().iter().map(MapInfo::from).collect();
    ctx
}

/// `r2 = data; r3 = data_end; r4 = r2 + 14; if r4 > r3 goto exit;` then the body, then
/// `r0 = 2; exit`. Body registers are r0..r9 over loads/stores/ALU/jumps from the table.
fn structured(body: &[(u8, u8, u8, i8, i16)]) -> Vec<Insn> {
    let mut out = Vec::new();
    let insn = |op, dst, src, off, imm| Insn { op, dst, src, off, imm };
    out.push(insn(Op::LdxW, 2, 1, 0, 0));
    out.push(insn(Op::LdxW, 3, 1, 4, 0));
    out.push(insn(Op::MovReg, 4, 2, 0, 0));
    out.push(insn(Op::AddImm, 4, 0, 0, 14));
    let skip = body.len().min(48) as i16 + 1;
    out.push(insn(Op::JgtReg, 4, 3, skip, 0));
    for &(row, dst, src, off, imm) in body.iter().take(48) {
        let spec = &duet_isa::OPS[row as usize % duet_isa::OPS.len()];
        let mut i = insn(spec.op, dst % 10, src % 11, i16::from(off), i64::from(imm));
        match spec.disc {
            duet_isa::table::Disc::Off(o) => i.off = o,
            duet_isa::table::Disc::Imm(v) => i.imm = i64::from(v),
            duet_isa::table::Disc::Src(s) => i.src = s,
            duet_isa::table::Disc::None => {}
        }
        // Keep jumps inside the body and away from anything but plain instructions.
        if i.op.is_branch() || matches!(i.op, Op::Exit | Op::LdImm64 | Op::CallReg | Op::CallKfunc) {
            continue;
        }
        out.push(i);
    }
    out.push(insn(Op::MovImm, 0, 0, 0, 2));
    out.push(insn(Op::Exit, 0, 0, 0, 0));
    // The prologue's forward jump must land on `r0 = 2`.
    let body_len = out.len() - 7;
    out[4].off = body_len as i16 + 1;
    out
}

fn check_sound(program: &Program, packet: &[u8]) {
    let Ok(verified) = duet_verifier::verify(program, &context()) else { return };
    let object = Object {
        license: "GPL".into(),
        programs: vec![ObjectProgram {
            name: "p".into(),
            section: "xdp".into(),
            kind: ProgramKind::Xdp,
            program: verified.program().clone(),
            map_refs: Vec::new(),
            line_info: Vec::new(),
        }],
        maps: maps(),
    };
    let options = LoadOptions {
        n_cpus: 1,
        config: Config { max_insns: Some(100_000) },
        env: Env::deterministic(),
        max_map_memory: 1 << 20,
    };
    let Ok(module) = Module::load(&object, options) else { return };
    let Ok(mut vm) = module.interpreter("p") else { return };
    let frame = if packet.len() < 14 { [0u8; 14].as_slice() } else { packet };
    if let Err(trap) = vm.run_xdp(&mut XdpPacket::new(&frame[..frame.len().min(1500)])) {
        let memory_fault = matches!(
            trap.kind,
            TrapKind::OutOfBoundsRead { .. }
                | TrapKind::OutOfBoundsWrite { .. }
                | TrapKind::MisalignedAtomic { .. }
                | TrapKind::ContextAccess { .. }
        );
        assert!(
            !memory_fault,
            "the verifier accepted a program that faults: {trap}\n{}",
            duet_isa::disassemble(&program.insns().iter().map(|(_, i)| *i).collect::<Vec<_>>())
        );
    }
}

fuzz_target!(|input: Input| {
    // 1. Arbitrary slots: never a panic.
    let raw: Vec<RawInsn> = input.raw.iter().take(256).map(|w| RawInsn::from_u64(*w)).collect();
    if let Ok(verified) = duet_verifier::verify_raw(&raw, &context()) {
        check_sound(verified.program(), &input.packet);
    }
    // 2. Structured XDP programs: accepted ones must not fault.
    if let Ok(program) = Program::from_insns(&structured(&input.body)) {
        check_sound(&program, &input.packet);
    }
});
