//! The interpreter's API contract: helpers, load errors, traps with instruction indices,
//! budgets, stack isolation between frames, and use from several threads.

use duet_isa::{Program, assemble};
use duet_vm::{Config, HelperError, HelperOutcome, Helpers, Interpreter, LoadError, TrapKind};

fn program(src: &str) -> Program {
    Program::from_insns(&assemble(src).expect("assembles")).expect("valid")
}

fn vm(src: &str, helpers: Helpers) -> Interpreter {
    Interpreter::new_unverified(&program(src), helpers, Config::default()).expect("loads")
}

#[test]
fn helpers_get_arguments_and_memory() {
    let mut helpers = Helpers::new();
    // Helper 1 sums its five arguments; helper 2 reads 4 bytes at r1 and returns them as u32.
    helpers.register(1, |_, a: &[u64; 5]| Ok(HelperOutcome::Return(a.iter().sum())));
    helpers.register(2, |cx, a| {
        let mut buf = [0u8; 4];
        cx.read(1, a[0], &mut buf)?;
        Ok(HelperOutcome::Return(u64::from(u32::from_le_bytes(buf))))
    });
    let mut m = vm("mov %r1, 1\nmov %r2, 2\nmov %r3, 3\nmov %r4, 4\nmov %r5, 5\ncall 1\nexit", helpers.clone());
    assert_eq!(m.run(&mut []), Ok(15));
    let mut m = vm("call 2\nexit", helpers.clone());
    assert_eq!(m.run(&mut [0x78, 0x56, 0x34, 0x12]), Ok(0x1234_5678));
    // The same helper given a bad pointer: a trap naming the helper and the call's index.
    let mut m = vm("mov %r1, 0\nmov %r1, 16\ncall 2\nexit", helpers);
    let trap = m.run(&mut [0; 4]).unwrap_err();
    assert_eq!(trap.pc, 2);
    assert!(matches!(trap.kind, TrapKind::HelperFailed { id: 2, .. }), "{trap}");
    assert!(trap.to_string().contains("out-of-bounds read"), "{trap}");
}

#[test]
fn helper_can_end_the_program_or_fail() {
    let mut helpers = Helpers::new();
    helpers.register(7, |_, a| Ok(HelperOutcome::Exit(a[0] * 2)));
    helpers.register(8, |_, _| Err(HelperError::Failed("no such map".into())));
    assert_eq!(vm("mov %r1, 21\ncall 7\nmov %r0, 0\nexit", helpers.clone()).run(&mut []), Ok(42));
    let trap = vm("call 8\nexit", helpers).run(&mut []).unwrap_err();
    assert_eq!(trap.to_string(), "instruction 0: helper 8 failed: no such map");
}

#[test]
fn unknown_helper_is_a_load_error_naming_it() {
    let err = Interpreter::new_unverified(&program("mov %r0, 0\ncall 77\nexit"), Helpers::new(), Config::default())
        .unwrap_err();
    assert_eq!(err, LoadError::UnknownHelper { pc: 1, id: 77 });
    // Through a register the id is only known at run time.
    let trap = vm("mov %r3, 77\ncall %r3\nexit", Helpers::new()).run(&mut []).unwrap_err();
    assert_eq!((trap.pc, trap.kind), (1, TrapKind::UnknownHelper(77)));
}

#[test]
fn budget_stops_loops_and_none_means_unlimited() {
    let looping = program("mov %r0, 0\nloop:\nadd %r0, 1\njne %r0, 100000, loop\nexit");
    let mut limited = Interpreter::new_unverified(&looping, Helpers::new(), Config { max_insns: Some(1000) }).unwrap();
    let trap = limited.run(&mut []).unwrap_err();
    assert_eq!(trap.kind, TrapKind::BudgetExhausted(1000));
    let mut unlimited = Interpreter::new_unverified(&looping, Helpers::new(), Config { max_insns: None }).unwrap();
    assert_eq!(unlimited.run(&mut []), Ok(100_000));
}

#[test]
fn frames_are_isolated_and_callers_stack_is_reachable() {
    // The callee writes through a pointer to the caller's stack (allowed) and to its own frame;
    // the caller's slot at the same r10 offset is untouched by the callee's own write.
    let src = "\
        stdw [%r10-8], 1
        mov %r1, %r10
        call local f
        ldxdw %r0, [%r10-8]
        exit
    f:
        stdw [%r10-8], 100
        ldxdw %r2, [%r1-8]
        add %r2, 10
        stxdw [%r1-8], %r2
        exit";
    assert_eq!(vm(src, Helpers::new()).run(&mut []), Ok(11));
    // A callee cannot reach below its own frame.
    let trap = vm("call local f\nexit\nf:\nldxdw %r0, [%r10-520]\nexit", Helpers::new()).run(&mut []).unwrap_err();
    assert_eq!(trap.pc, 2);
    assert!(matches!(trap.kind, TrapKind::OutOfBoundsRead { size: 8, .. }));
}

#[test]
fn runs_on_many_threads_from_clones() {
    let m = vm("ldxdw %r0, [%r1]\nmul %r0, 3\nexit", Helpers::new());
    let handles: Vec<_> = (0..4u64)
        .map(|i| {
            let mut m = m.clone();
            std::thread::spawn(move || {
                let mut total = 0;
                for j in 0..1000u64 {
                    let mut mem = (i * 1000 + j).to_le_bytes();
                    total += m.run(&mut mem).unwrap();
                }
                total
            })
        })
        .collect();
    let totals: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for (i, total) in totals.iter().enumerate() {
        let i = i as u64;
        assert_eq!(*total, 3 * (1000 * i * 1000 + 999 * 1000 / 2));
    }
}

/// An error and its `source()` chain say each cause once (the CLI prints whole chains).
#[test]
fn error_chains_do_not_repeat_their_cause() {
    fn chain(e: &dyn std::error::Error) -> String {
        let mut out = e.to_string();
        let mut next = e.source();
        while let Some(s) = next {
            out.push_str(": ");
            out.push_str(&s.to_string());
            next = s.source();
        }
        out
    }
    let map = duet_vm::ModuleError::Map {
        name: "M".into(),
        error: duet_maps::MapError::Invalid("out of memory for the map's storage".into()),
    };
    let trap =
        duet_vm::TrapKind::HelperFailed { id: 2, error: Box::new(duet_vm::HelperError::Failed("bad key".into())) };
    for (e, cause) in [(&map as &dyn std::error::Error, "out of memory"), (&trap, "bad key")] {
        let text = chain(e);
        assert_eq!(text.matches(cause).count(), 1, "{text}");
    }
}
