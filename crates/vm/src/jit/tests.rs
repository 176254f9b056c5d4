//! Tiered compilation: a large program's first tier and its optimized tier agree with the
//! interpreter.

use std::time::{Duration, Instant};

use duet_verifier::{ProgramType, VerifyContext};

use crate::{Config, Helpers, Interpreter, Jit, XdpPacket};

/// A verified XDP program of about `n` instructions: reads 8 bytes of the packet, then blocks of
/// ALU work, stack stores and loads, forward branches and a local call; writes its result over
/// those 8 bytes.
fn large(n: usize) -> duet_verifier::VerifiedProgram {
    let mut src = String::from(
        "ldxw %r2, [%r1+0]\nldxw %r3, [%r1+4]\nmov %r4, %r2\nadd %r4, 8\njgt %r4, %r3, out\n\
         ldxdw %r6, [%r2+0]\nstxdw [%r10-504], %r2\nmov %r0, 0\nmov %r7, 3\nmov %r8, 5\n",
    );
    let mut label = 0;
    while src.lines().count() + 16 < n {
        src.push_str(&format!(
            "add %r0, %r6\nmul %r7, 7\nxor %r8, %r7\nrsh %r8, 3\nstxdw [%r10-{o}], %r8\nldxdw %r9, [%r10-{o}]\n\
             add32 %r6, %r9\njgt %r9, {label}, l{label}\nadd %r0, 1\nl{label}:\nsub %r7, %r0\nlsh %r6, 1\n",
            o = 8 * (label % 60 + 1)
        ));
        if label % 50 == 0 {
            src.push_str("stxdw [%r10-496], %r0\nmov %r1, %r0\ncall local f\nadd %r6, %r0\nldxdw %r0, [%r10-496]\n");
        }
        label += 1;
    }
    src.push_str("ldxdw %r2, [%r10-504]\nstxdw [%r2+0], %r0\nand %r0, 3\nexit\nout:\nmov %r0, 1\nexit\nf:\nmov %r0, %r1\nmul %r0, 3\nxor %r0, 0x55\nexit\n");
    let program = duet_isa::Program::from_insns(&duet_isa::assemble(&src).unwrap()).unwrap();
    duet_verifier::verify(&program, &VerifyContext::new(ProgramType::Xdp)).unwrap_or_else(|r| panic!("{r}"))
}

/// Runs `f` on each of [`frames`]: the verdicts and the packets after.
fn each(mut f: impl FnMut(&mut XdpPacket) -> Result<u64, crate::Trap>) -> Vec<(Result<u64, crate::Trap>, Vec<u8>)> {
    frames()
        .iter()
        .map(|frame| {
            let mut packet = XdpPacket::new(frame);
            (f(&mut packet), packet.buf)
        })
        .collect()
}

fn frames() -> Vec<Vec<u8>> {
    (0..8u8).map(|i| (0..64).map(|j: u8| j.wrapping_mul(31).wrapping_add(i.wrapping_mul(77))).collect()).collect()
}

#[test]
fn both_tiers_agree_with_the_interpreter() {
    let program = large(3000);
    let mut interp = Interpreter::new(&program, Helpers::new(), Config::default()).unwrap();
    let want = each(|p| interp.run_xdp(p));
    assert!(want.iter().any(|(_, buf)| buf != &want[0].1), "the result depends on the packet");
    // Compiles until the first runs finish before the optimized tier is in (it takes
    // milliseconds, the runs microseconds), so that they ran the first tier's code.
    let mut jit = (0..20)
        .find_map(|_| {
            let mut jit = Jit::new(&program, Helpers::new(), Config::default()).unwrap();
            assert!(jit.stats().tiered && jit.stats().n_insns >= super::compile::TIER_MIN_INSNS, "{:?}", jit.stats());
            let first = each(|p| jit.run_xdp(p));
            jit.stats().optimized_time.is_none().then(|| {
                assert_eq!(first, want, "first tier");
                jit
            })
        })
        .expect("a first tier that ran");
    let deadline = Instant::now() + Duration::from_secs(60);
    while jit.stats().optimized_time.is_none() {
        assert!(Instant::now() < deadline, "no optimized tier");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(each(|p| jit.run_xdp(p)), want, "optimized tier");
    // A clone shares the code, which outlives the original.
    let mut clone = jit.clone();
    drop(jit);
    assert_eq!(each(|p| clone.run_xdp(p)), want);
}

#[test]
fn small_programs_are_not_tiered() {
    let program = large(200);
    let jit = Jit::new(&program, Helpers::new(), Config::default()).unwrap();
    assert!(!jit.stats().tiered && jit.stats().optimized_time.is_none(), "{:?}", jit.stats());
}

#[test]
fn a_program_dropped_before_its_optimized_tier_is_freed_safely() {
    for _ in 0..3 {
        let program = large(1500);
        let mut jit = Jit::new(&program, Helpers::new(), Config::default()).unwrap();
        let got = each(|p| jit.run_xdp(p));
        drop(jit);
        let mut interp = Interpreter::new(&program, Helpers::new(), Config::default()).unwrap();
        assert_eq!(got, each(|p| interp.run_xdp(p)));
    }
}

/// A module's large program, with map helpers (direct calls into the map) and the environment's
/// clock and generator (direct calls into the `Env`), in both tiers: the same verdicts, packets
/// and maps as the interpreter, run after run.
#[test]
fn both_tiers_of_a_module_program_agree_with_the_interpreter() {
    use duet_object::{MapDef, MapOrigin, Object, ObjectProgram, ProgramKind};

    let mut src = String::from(
        "ldxw %r2, [%r1+0]\nldxw %r3, [%r1+4]\nmov %r9, 0\nmov %r4, %r2\nadd %r4, 8\njgt %r4, %r3, out\n\
         ldxdw %r6, [%r2+0]\n",
    );
    let mut i = 0;
    while src.lines().count() < 1500 {
        src.push_str(&format!(
            "mov %r7, %r6\nrsh %r7, {s}\nand %r7, 15\nstxw [%r10-4], %r7\ncall 7\nstxdw [%r10-16], %r0\n\
             lddw %r1, map_fd 0\nmov %r2, %r10\nadd %r2, -4\nmov %r3, %r10\nadd %r3, -16\nmov %r4, 0\ncall 2\n\
             lddw %r1, map_fd 0\nmov %r2, %r10\nadd %r2, -4\ncall 1\njeq %r0, 0, miss{i}\nldxdw %r5, [%r0+0]\n\
             xor %r9, %r5\nmiss{i}:\ncall 5\nadd %r9, %r0\nmul %r6, 0x9e37\nadd %r6, {i}\n",
            s = i % 60
        ));
        i += 1;
    }
    src.push_str("out:\nmov %r0, %r9\nand %r0, 3\nexit\n");
    let program = duet_isa::Program::from_insns(&duet_isa::assemble(&src).unwrap()).unwrap();
    let object = Object {
        license: "GPL".into(),
        programs: vec![ObjectProgram {
            name: "prog".into(),
            section: "xdp".into(),
            kind: ProgramKind::Xdp,
            program,
            map_refs: Vec::new(),
            line_info: Vec::new(),
        }],
        maps: vec![MapDef {
            name: "table".into(),
            map_type: 1,
            key_size: 4,
            value_size: 8,
            max_entries: 16,
            flags: 0,
            initial_data: None,
            origin: MapOrigin::BtfMaps,
            key_type: None,
            value_type: None,
            inner: None,
        }],
    };
    let load = || {
        let options = crate::LoadOptions { env: crate::Env::deterministic(), ..crate::LoadOptions::default() };
        crate::Module::load(&object, options).unwrap()
    };
    let table = |m: &crate::Module| {
        let mut entries = m.maps().next().unwrap().1.entries();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries
    };
    let (vm_module, jit_module) = (load(), load());
    let mut interp = vm_module.interpreter("prog").unwrap();
    let mut jit = jit_module.jit("prog").unwrap();
    let stats = jit.stats();
    assert!(stats.tiered && stats.direct_map_calls > 0 && stats.direct_env_calls > 0, "{stats:?}");
    // Most likely the first tier (the optimized compile takes milliseconds).
    assert_eq!(each(|p| jit.run_xdp(p)), each(|p| interp.run_xdp(p)));
    assert_eq!(table(&jit_module), table(&vm_module));
    let deadline = Instant::now() + Duration::from_secs(60);
    while jit.stats().optimized_time.is_none() {
        assert!(Instant::now() < deadline, "no optimized tier");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(each(|p| jit.run_xdp(p)), each(|p| interp.run_xdp(p)), "optimized tier");
    assert_eq!(table(&jit_module), table(&vm_module));
    // A second runner of the module shares the compiled (now optimized) code.
    let mut again = jit_module.jit("prog").unwrap();
    assert_eq!(each(|p| again.run_xdp(p)), each(|p| interp.run_xdp(p)));
    assert_eq!(table(&jit_module), table(&vm_module));
}
