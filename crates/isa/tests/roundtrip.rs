//! Property tests: every valid instruction survives encode/decode and disassemble/assemble.

use duet_isa::table::Disc;
use duet_isa::{Form, Insn, OPS, Program, RawInsn, assemble, decode_insn, disassemble, disassemble_insn};
use proptest::prelude::*;

/// A valid instruction: a random table row with random values in exactly the fields its form uses.
fn any_insn() -> impl Strategy<Value = Insn> {
    (0..OPS.len(), 0u8..10, 0u8..11, any::<i16>(), any::<i32>(), any::<i64>(), 0u8..7).prop_map(
        |(row, dst, src, off, imm, imm64, pseudo)| {
            let spec = &OPS[row];
            let mut insn = Insn::new(spec.op);
            match spec.form {
                Form::AluReg => (insn.dst, insn.src) = (dst, src),
                Form::AluImm => (insn.dst, insn.imm) = (dst, imm.into()),
                Form::Unary | Form::Endian | Form::CallReg => insn.dst = dst,
                Form::JmpReg => (insn.dst, insn.src, insn.off) = (dst, src, off),
                Form::JmpImm => (insn.dst, insn.imm, insn.off) = (dst, imm.into(), off),
                Form::Ja => insn.off = off,
                Form::Ja32 | Form::CallHelper | Form::CallLocal | Form::CallKfunc | Form::LdAbs => {
                    insn.imm = imm.into()
                }
                Form::Exit => {}
                Form::LdImm64 => (insn.dst, insn.src, insn.imm) = (dst, pseudo, imm64),
                Form::LdInd => (insn.src, insn.imm) = (src, imm.into()),
                Form::Ldx => (insn.dst, insn.src, insn.off) = (dst, src, off),
                Form::St => (insn.dst, insn.off, insn.imm) = (dst, off, imm.into()),
                Form::Stx | Form::Atomic => (insn.dst, insn.src, insn.off) = (dst, src, off),
            }
            match spec.disc {
                Disc::Off(o) => insn.off = o,
                Disc::Imm(i) => insn.imm = i.into(),
                Disc::Src(s) => insn.src = s,
                Disc::None => {}
            }
            // Fetching atomics write `src`; keep it off the read-only frame pointer.
            if spec.form == Form::Atomic && insn.src == 10 {
                insn.src = 9;
            }
            insn
        },
    )
}

fn slots(insn: &Insn) -> Vec<RawInsn> {
    let (a, b) = insn.encode();
    std::iter::once(a).chain(b).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn encode_decode_round_trip(insn in any_insn()) {
        let raw = slots(&insn);
        let decoded = decode_insn(&raw, 0).map_err(|e| TestCaseError::fail(format!("{insn:?}: {e}")))?;
        prop_assert_eq!(decoded, insn);
    }

    #[test]
    fn disassemble_assemble_round_trip(insn in any_insn()) {
        let text = disassemble_insn(&insn);
        let back = assemble(&text).map_err(|e| TestCaseError::fail(format!("`{text}`: {e}")))?;
        prop_assert_eq!(back, vec![insn], "text: {}", text);
    }

    #[test]
    fn raw_words_that_decode_re_encode_identically(lo in any::<u64>(), hi in any::<u64>()) {
        let raw = [RawInsn::from_u64(lo), RawInsn::from_u64(hi)];
        if let Ok(insn) = decode_insn(&raw, 0) {
            prop_assert_eq!(&slots(&insn)[..], &raw[..insn.slots()]);
        }
    }

    #[test]
    fn programs_round_trip_through_text(insns in proptest::collection::vec(any_insn(), 1..40)) {
        // Make jumps land on the final exit so the program is valid, then compare whole programs.
        let mut insns = insns;
        insns.push(Insn::new(duet_isa::Op::Exit));
        let n_slots: usize = insns.iter().map(Insn::slots).sum();
        let mut pc = 0usize;
        for insn in &mut insns {
            let to_end = (n_slots - 1) as i64 - (pc as i64 + 1);
            match insn.op.form() {
                Form::JmpReg | Form::JmpImm | Form::Ja => insn.off = to_end as i16,
                Form::Ja32 | Form::CallLocal => insn.imm = to_end,
                Form::LdImm64 if insn.src == 4 => insn.imm = to_end & 0xffff_ffff,
                _ => {}
            }
            pc += insn.slots();
        }
        let program = Program::from_insns(&insns).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let text = disassemble(&insns);
        let back = assemble(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&back, &insns);
        prop_assert_eq!(Program::decode(&program.to_bytes()).unwrap(), program);
    }
}
