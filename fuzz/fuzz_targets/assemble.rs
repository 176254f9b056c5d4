//! Arbitrary UTF-8 text -> `assemble`.
//!
//! Checks: assembling never panics; when the result is a valid program (`Program::from_insns`),
//! its disassembly assembles back to the same instructions, and the program survives a bytes
//! round trip through `to_bytes`/`decode`.
#![no_main]

use duet_isa::{Insn, Program, assemble, disassemble};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(insns) = assemble(source) else {
        return;
    };
    // Whatever the assembler produced can be printed without panicking.
    let text = disassemble(&insns);
    let Ok(program) = Program::from_insns(&insns) else {
        return;
    };

    match assemble(&text) {
        Ok(back) => assert_eq!(
            back, insns,
            "assemble(disassemble(insns)) != insns\n--- source ---\n{source}\n--- text ---\n{text}"
        ),
        Err(e) => {
            panic!("assembler rejects the disassembler's output: {e}\n--- source ---\n{source}\n--- text ---\n{text}")
        }
    }

    // A valid program's instructions are exactly what decoding its bytes gives back.
    let decoded = Program::decode(&program.to_bytes()).expect("to_bytes of a valid program does not decode");
    assert_eq!(decoded, program);
    let decoded_insns: Vec<Insn> = decoded.insns().iter().map(|&(_, insn)| insn).collect();
    assert_eq!(decoded_insns, insns, "from_insns kept a field the encoding does not carry");
});
