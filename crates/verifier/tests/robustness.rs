//! The verifier never panics and always terminates, whatever it is given: random bytes, and
//! random well-formed programs built from every row of the opcode table with operands chosen
//! to reach deep into the checker (small offsets, map references, calls, loops).

use duet_isa::{Form, Insn, OPS, Program, RawInsn};
use duet_verifier::{Config, MapInfo, ProgramType, VerifyContext};
use proptest::prelude::*;

/// Every kernel program type duet verifies; contexts past the list use the first ones with the
/// unprivileged rules.
const TYPES: [ProgramType; 8] = [
    ProgramType::Xdp,
    ProgramType::SocketFilter,
    ProgramType::SchedCls,
    ProgramType::CgroupSkb,
    ProgramType::KProbe,
    ProgramType::TracePoint,
    ProgramType::RawTracePoint,
    ProgramType::PerfEvent,
];

fn context(ty: u8) -> VerifyContext {
    let mut ctx = VerifyContext::new(TYPES[usize::from(ty) % TYPES.len()]);
    let mut array_of_maps = MapInfo::new("outer", 12, 4, 4, 2);
    array_of_maps.inner = Some(Box::new(MapInfo::new("inner", 2, 4, 8, 4)));
    ctx.maps = vec![
        MapInfo::new("hash", 1, 4, 8, 16),
        MapInfo::new("array", 2, 4, 16, 1),
        MapInfo::new("ringbuf", 27, 0, 0, 4096),
        MapInfo::new("progs", 3, 4, 4, 4),
        // Frozen `.rodata` (index 4): loads from it fold into constants, a path the maps above
        // never reach. (kernel_rules.rs checks helpers reading it at every offset and length.)
        MapInfo {
            read_only: true,
            frozen_data: Some(b"%d packets from %pI4 on queue %u\n\0\0\0\0\0\0\0".to_vec()),
            ..MapInfo::new(".rodata", 2, 4, 40, 1)
        },
        MapInfo::new("perf", 4, 4, 4, 1),
        // Maps of maps (6, 7): lookups yield inner map handles, by template or unknown.
        array_of_maps,
        MapInfo::new("hash_of_maps", 13, 4, 4, 2),
    ];
    let unprivileged = usize::from(ty) >= TYPES.len();
    ctx.config = Config { max_insns: 20_000, unprivileged, ..Config::default() };
    ctx
}

/// One instruction from the table with operands in ranges the checker cares about; only the
/// fields the instruction's form uses are set, so most programs decode.
fn insn() -> impl Strategy<Value = Insn> {
    (0..OPS.len(), 0u8..10, 0u8..11, -6i16..6, -40i64..40, 0u8..4).prop_map(|(row, dst, src, jump, small, pick)| {
        let spec = &OPS[row];
        let mut insn = Insn::new(spec.op);
        let mem_off = match pick {
            0 => -8 * (i16::from(small.unsigned_abs() as u8 % 8) + 1),
            1 => jump * 4,
            _ => jump.abs() * 2,
        };
        let imm = match pick {
            0 => small,
            1 => small * 4,
            _ => small & 3,
        };
        match spec.form {
            Form::AluReg => (insn.dst, insn.src) = (dst, src),
            Form::AluImm => (insn.dst, insn.imm) = (dst, imm),
            Form::Unary | Form::Endian => insn.dst = dst,
            Form::JmpReg => (insn.dst, insn.src, insn.off) = (dst, src, jump),
            Form::JmpImm => (insn.dst, insn.imm, insn.off) = (dst, imm, jump),
            Form::Ja => insn.off = jump,
            Form::Ja32 => insn.imm = i64::from(jump),
            Form::CallHelper => {
                const IDS: [i64; 30] = [
                    1, 2, 3, 4, 5, 6, 7, 8, 12, 14, 15, 16, 23, 25, 28, 44, 51, 54, 65, 112, 113, 114, 115, 125, 130,
                    131, 132, 133, 177, 9999,
                ];
                insn.imm = IDS[small.unsigned_abs() as usize % IDS.len()]
            }
            Form::CallLocal => insn.imm = i64::from(jump.abs()),
            Form::CallKfunc | Form::CallReg | Form::Exit => {}
            Form::LdImm64 => (insn.dst, insn.src, insn.imm) = (dst, src % 7, small.rem_euclid(8)),
            Form::LdAbs => insn.imm = small.abs(),
            Form::LdInd => (insn.src, insn.imm) = (src, small.abs()),
            Form::Ldx => (insn.dst, insn.src, insn.off) = (dst, src, mem_off),
            Form::St => (insn.dst, insn.off, insn.imm) = (src, mem_off, imm),
            Form::Stx | Form::Atomic => (insn.dst, insn.src, insn.off) = (src, dst, mem_off),
        }
        // `encode` fills in the discriminating field (off/imm/src) from the table row.
        let (raw, _) = insn.encode();
        duet_isa::decode_insn(&[raw, RawInsn::default()], 0).unwrap_or(insn)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn random_bytes_never_panic(words in prop::collection::vec(any::<u64>(), 1..24), ty in 0u8..10) {
        let raw: Vec<RawInsn> = words.iter().map(|w| RawInsn::from_u64(*w)).collect();
        let _ = duet_verifier::verify_raw(&raw, &context(ty));
    }

    #[test]
    fn random_programs_never_panic(body in prop::collection::vec(insn(), 1..48), ty in 0u8..10) {
        let mut insns = body;
        insns.push(Insn { imm: 2, ..Insn::new(duet_isa::Op::MovImm) });
        insns.push(Insn::new(duet_isa::Op::Exit));
        if let Ok(program) = Program::from_insns(&insns) {
            let ctx = context(ty);
            let first = duet_verifier::verify(&program, &ctx);
            // Deterministic: the same program gets the same answer.
            let second = duet_verifier::verify(&program, &ctx);
            prop_assert_eq!(first.is_ok(), second.is_ok());
            if let (Err(a), Err(b)) = (&first, &second) {
                prop_assert_eq!(&a.diagnostics, &b.diagnostics);
            }
        }
    }
}

/// The generator above must reach the checker, not just the decoder: most programs decode, and
/// both verdicts occur.
#[test]
fn random_programs_reach_the_checker() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = prop::collection::vec(insn(), 1..12);
    let (mut decoded, mut accepted, mut processed) = (0, 0, 0u64);
    for _ in 0..2000 {
        // Registers start initialised (r6 holds the context), so that some programs verify.
        let mut insns: Vec<Insn> = [0u8, 2, 3, 4, 5, 7, 8, 9]
            .iter()
            .map(|r| Insn { dst: *r, ..Insn::new(duet_isa::Op::MovImm) })
            .chain([Insn { dst: 6, src: 1, ..Insn::new(duet_isa::Op::MovReg) }])
            .collect();
        insns.extend(strategy.new_tree(&mut runner).expect("generate").current());
        insns.push(Insn { imm: 2, ..Insn::new(duet_isa::Op::MovImm) });
        insns.push(Insn::new(duet_isa::Op::Exit));
        let Ok(program) = Program::from_insns(&insns) else { continue };
        decoded += 1;
        match duet_verifier::verify(&program, &context(0)) {
            Ok(v) => {
                accepted += 1;
                processed += v.stats().insns_processed;
            }
            Err(r) => processed += r.stats.insns_processed,
        }
    }
    eprintln!("2000 random programs: {decoded} decoded, {accepted} accepted, {processed} insns processed");
    assert!(decoded > 400, "only {decoded} of 2000 random programs decode");
    assert!(accepted > 0, "no random program verifies");
}
