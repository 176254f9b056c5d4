//! Arbitrary bytes -> `duet_object::Object::parse` -> `duet_vm::Module::load` -> one run of
//! every XDP program on a small packet.
//!
//! Checks: a corrupt, truncated or hostile ELF object is an error, never a panic or a memory
//! error, at every stage. Seed the corpus with real objects (`cp ../target/bpf/*.o
//! corpus/object/`) so mutations stay close to valid ELF.
//!
//! aya-obj, which duet-object uses as its parser, panics on some corrupt inputs (three classes
//! found by this target; duet-object now rejects two of them before calling aya-obj). duet-object
//! catches the rest and returns `ObjectError::ParserPanic`, which is what users see. So that the
//! fuzzer can look past them, a panic whose location is inside aya-obj is allowed to unwind to
//! that `catch_unwind`; a panic anywhere else (duet's own code) still aborts and is reported.
#![no_main]

use std::sync::Once;

use duet_object::{Object, ProgramKind};
use duet_vm::{Config, Env, LoadOptions, Module, XdpPacket};
use libfuzzer_sys::fuzz_target;

static HOOK: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    HOOK.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.location().is_some_and(|l| l.file().contains("aya-obj")) {
                report(info);
            }
        }));
    });
    let Ok(object) = Object::parse(data) else {
        return;
    };
    let options = LoadOptions {
        n_cpus: 2,
        config: Config { max_insns: Some(10_000) },
        env: Env::deterministic(),
        max_map_memory: 64 << 20,
    };
    let Ok(module) = Module::load(&object, options) else {
        return;
    };
    let frame = [0u8; 64];
    for program in object.programs.iter().filter(|p| p.kind == ProgramKind::Xdp) {
        if let Ok(mut vm) = module.interpreter(&program.name) {
            let _ = vm.run_xdp(&mut XdpPacket::new(&frame));
        }
    }
});
