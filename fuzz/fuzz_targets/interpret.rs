//! Programs -> `duet_vm::Interpreter`.
//!
//! Two kinds of input, chosen by the fuzzer:
//! - `Raw`: memory bytes and program bytes; the program goes through `Program::decode` (most
//!   random bytes are rejected there, which is fine: the decoder is exercised too).
//! - `Structured`: instructions built from rows of `duet_isa::OPS` with fuzzer-chosen
//!   registers, offsets and immediates, shaped so that nearly every program is valid: registers
//!   in range, `r10` never written, jump and call targets on instruction starts, and a final
//!   `exit`. Memory offsets are biased small so loads and stores often hit the stack or input.
//!
//! Checks: loading and running never panics (traps are fine), with a 10,000-instruction budget
//! and helper 5 = `unwind_helper`; a trap's `pc` is the start of an instruction; a structured
//! program is accepted by the decoder and survives a bytes round trip; running the same
//! interpreter a second time does not panic either.
#![no_main]

use arbitrary::Arbitrary;
use duet_isa::table::Disc;
use duet_isa::{Form, Insn, OPS, Op, Program};
use duet_vm::{Config, Helpers, Interpreter, unwind_helper};
use libfuzzer_sys::fuzz_target;

/// Longest structured program, in generated instructions (plus the final `exit`).
const MAX_GEN_INSNS: usize = 64;
/// Largest input memory.
const MAX_MEM: usize = 4096;

#[derive(Arbitrary, Debug)]
struct GenInsn {
    /// Index into `OPS` (modulo its length).
    row: u16,
    /// Raw material for `dst`.
    a: u8,
    /// Raw material for `src`.
    b: u8,
    off: i16,
    imm: i32,
    /// High half of an `lddw` immediate.
    hi: i32,
    /// Jump/call target, as an index into the generated instructions (modulo their count).
    target: u16,
}

#[derive(Arbitrary, Debug)]
enum Input {
    Raw { mem: Vec<u8>, program: Vec<u8> },
    Structured { mem: Vec<u8>, insns: Vec<GenInsn> },
}

fn writes_dst(form: Form) -> bool {
    matches!(form, Form::AluReg | Form::AluImm | Form::Unary | Form::Endian | Form::LdImm64 | Form::Ldx)
}

/// Builds a valid instruction list from generator rows.
fn build(gen_insns: &[GenInsn]) -> Vec<Insn> {
    let gen_insns = &gen_insns[..gen_insns.len().min(MAX_GEN_INSNS)];
    let rows: Vec<_> = gen_insns.iter().map(|g| &OPS[g.row as usize % OPS.len()]).collect();
    // Slot index of every instruction, and of the final exit.
    let mut starts = Vec::with_capacity(rows.len() + 1);
    let mut slot = 0i64;
    for row in &rows {
        starts.push(slot);
        slot += if row.op == Op::LdImm64 { 2 } else { 1 };
    }
    starts.push(slot);

    let mut out = Vec::with_capacity(rows.len() + 1);
    for (i, (g, row)) in gen_insns.iter().zip(&rows).enumerate() {
        let rel = {
            let t = g.target as usize % starts.len();
            starts[t] - (starts[i] + 1)
        };
        let mut insn = Insn::new(row.op);
        insn.dst = if writes_dst(row.form) { g.a % 10 } else { g.a % 11 };
        insn.src = g.b % 11;
        // Small memory displacements, so accesses relative to r1 (input) and r10 (stack) land.
        let mem_off = g.off % 520;
        match row.form {
            Form::AluReg => {}
            Form::AluImm | Form::JmpImm => insn.imm = i64::from(g.imm),
            Form::Unary | Form::Endian | Form::CallReg => insn.src = 0,
            Form::JmpReg => {}
            Form::Ja => {}
            Form::Ja32 | Form::CallLocal => {}
            Form::CallHelper => {
                // Mostly the registered helper, so the program loads.
                insn.imm = if g.imm % 8 == 0 { i64::from(g.imm) } else { 5 };
            }
            Form::CallKfunc => insn.imm = i64::from(g.imm),
            Form::Exit => {}
            Form::LdImm64 => {
                insn.src = if g.b & 0x80 != 0 { g.b % 7 } else { 0 };
                insn.imm = ((g.hi as u32 as u64) << 32 | g.imm as u32 as u64) as i64;
                if insn.src == 4 {
                    // `func`: the low half is a pc-relative target.
                    insn.imm = ((g.hi as u32 as u64) << 32 | rel as i32 as u32 as u64) as i64;
                }
            }
            Form::LdAbs => insn.imm = i64::from(g.imm),
            Form::LdInd => insn.imm = i64::from(g.imm),
            Form::Ldx | Form::Stx => insn.off = mem_off,
            Form::St => {
                insn.off = mem_off;
                insn.imm = i64::from(g.imm);
            }
            Form::Atomic => {
                // Aligned more often than not; fetching forms write `src`, so keep it off r10.
                insn.off = if g.imm & 1 == 0 { mem_off & !7 } else { mem_off };
                insn.src = g.b % 10;
            }
        }
        // Fields the form does not use stay zero.
        match row.form {
            Form::Ja | Form::Ja32 | Form::CallHelper | Form::CallLocal | Form::CallKfunc | Form::Exit | Form::LdAbs => {
                insn.dst = 0;
                insn.src = 0;
            }
            Form::LdInd => insn.dst = 0,
            Form::AluImm | Form::JmpImm | Form::St => insn.src = 0,
            _ => {}
        }
        match row.form {
            Form::JmpReg | Form::JmpImm | Form::Ja => insn.off = rel as i16,
            Form::Ja32 | Form::CallLocal => insn.imm = rel,
            _ => {}
        }
        // The discriminating field, last.
        match row.disc {
            Disc::None => {}
            Disc::Off(off) => insn.off = off,
            Disc::Imm(imm) => insn.imm = i64::from(imm),
            Disc::Src(src) => insn.src = src,
        }
        out.push(insn);
    }
    out.push(Insn::new(Op::Exit));
    out
}

fn run(program: &Program, mem: &[u8]) {
    let mut helpers = Helpers::new();
    helpers.register(5, unwind_helper);
    let Ok(mut vm) = Interpreter::new_unverified(program, helpers, Config { max_insns: Some(10_000) }) else {
        return;
    };
    let mut mem = mem[..mem.len().min(MAX_MEM)].to_vec();
    for _ in 0..2 {
        if let Err(trap) = vm.run(&mut mem) {
            assert!(
                program.insns().iter().any(|&(pc, _)| pc == trap.pc),
                "trap at slot {} which is not the start of an instruction: {trap}",
                trap.pc
            );
        }
    }
}

fuzz_target!(|input: Input| {
    match input {
        Input::Raw { mem, program } => {
            if let Ok(program) = Program::decode(&program) {
                run(&program, &mem);
            }
        }
        Input::Structured { mem, insns } => {
            let insns = build(&insns);
            let program = match Program::from_insns(&insns) {
                Ok(p) => p,
                Err(e) => panic!("generated program rejected: {e}\n{}", duet_isa::disassemble(&insns)),
            };
            assert_eq!(Program::decode(&program.to_bytes()).as_ref(), Ok(&program));
            run(&program, &mem);
        }
    }
});
