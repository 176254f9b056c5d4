//! Verifies an assembled XDP program (duet's dialect, from a file) with duet's verifier and the
//! kernel's (with BTF func_info, as `verify_kernel`), privileged and unprivileged, and prints
//! both verdicts. `cargo +nightly run --release --example check_asm -- prog.s`
#[path = "../fuzz_targets/kernel_btf.rs"]
mod kernel_btf;
#[path = "../fuzz_targets/programs.rs"]
#[allow(dead_code, reason = "only the maps are used here")]
mod programs;

use duet_isa::Program;
use duet_verifier::{MapInfo, ProgramType, VerifyContext};

fn main() {
    let path = std::env::args().nth(1).expect("a file of assembly");
    let text = std::fs::read_to_string(path).expect("readable");
    let insns = duet_isa::assemble(&text).expect("assembles");
    let program = Program::from_insns(&insns).expect("a program");
    let words: Vec<u64> = program.to_raw().iter().map(|r| r.to_u64()).collect();
    for unpriv in [false, true] {
        let mut ctx = VerifyContext::new(ProgramType::Xdp);
        ctx.maps = programs::maps().iter().map(MapInfo::from).collect();
        ctx.config.unprivileged = unpriv;
        let duet = duet_verifier::verify(&program, &ctx).map(|_| ()).map_err(|e| e.to_string());
        let kernel = kernel_btf::load(&words, unpriv, true);
        let kernel = match kernel {
            Ok((true, _)) => "accepts".to_owned(),
            Ok((false, log)) => format!("rejects: {}", log.lines().rev().take(4).collect::<Vec<_>>().join(" | ")),
            Err(e) => format!("not tried: {e}"),
        };
        println!(
            "unprivileged={unpriv}\n  duet: {}\n  kernel: {kernel}",
            duet.map_or_else(|e| e, |()| "accepts".into())
        );
    }
}
