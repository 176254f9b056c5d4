//! Arbitrary bytes -> `Program::decode`.
//!
//! Checks: decoding never panics; a program that decodes re-encodes to exactly the input bytes;
//! rebuilding it from its instructions gives the same program; and the disassembly of its
//! instructions assembles back to the same instructions.
#![no_main]

use duet_isa::{Insn, Program, assemble, disassemble, disassemble_insn};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(program) = Program::decode(data) else {
        return;
    };

    // Bytes round trip: the decoder accepts only canonical encodings.
    let bytes = program.to_bytes();
    assert_eq!(bytes, data, "to_bytes() differs from the decoded input");
    assert_eq!(program.n_slots() * 8, data.len());

    // The instructions alone describe the program.
    let insns: Vec<Insn> = program.insns().iter().map(|&(_, insn)| insn).collect();
    let rebuilt = Program::from_insns(&insns).expect("from_insns rejects the instructions of a decoded program");
    assert_eq!(rebuilt, program, "from_insns(decoded insns) differs from the decoded program");

    // Slot indices are consistent with instruction sizes.
    let mut pc = 0;
    for &(slot, insn) in program.insns() {
        assert_eq!(slot, pc, "slot index of {insn:?}");
        pc += insn.slots();
    }
    assert_eq!(pc, program.n_slots());

    // Text round trip, per instruction and for the whole listing.
    let text = disassemble(&insns);
    for (line, insn) in text.lines().zip(&insns) {
        assert_eq!(line, disassemble_insn(insn));
    }
    match assemble(&text) {
        Ok(back) => assert_eq!(back, insns, "assemble(disassemble(insns)) != insns\n--- text ---\n{text}"),
        Err(e) => panic!("assembler rejects the disassembler's output: {e}\n--- text ---\n{text}"),
    }
});
