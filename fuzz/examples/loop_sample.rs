//! Samples generated programs with a bpf_loop call: how many duet's verifier accepts (both
//! rule sets), the kernel's verdict when run as root, and interpreter = JIT on the accepted.
//! `cargo +nightly run --release --example loop_sample -- N`
#[path = "../fuzz_targets/kernel_btf.rs"]
mod kernel_btf;
#[path = "../fuzz_targets/programs.rs"]
mod programs;

use std::collections::BTreeMap;

use arbitrary::{Arbitrary, Unstructured};
use duet_isa::Program;
use duet_verifier::{MapInfo, ProgramType, VerifyContext};

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let verbose = std::env::var("SHOW").is_ok();
    let mut seed = 0x1234_5678_9abc_def1u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let (mut total, mut ok_priv, mut ok_unpriv, mut k_ok, mut agree) = (0, 0, 0, 0, 0);
    for _ in 0..n {
        let bytes: Vec<u8> = (0..400).map(|_| rnd() as u8).collect();
        let mut u = Unstructured::new(&bytes);
        let Ok(body) = Vec::<(u8, u8, u8, i8, i16)>::arbitrary(&mut u) else { continue };
        let Ok(cb) = programs::LoopCall::arbitrary(&mut u) else { continue };
        let body: Vec<_> = body.into_iter().take(rnd() as usize % 12).collect();
        let program = match Program::from_insns(&programs::structured_with(&body, None, Some(&cb))) {
            Ok(p) => p,
            Err(e) => {
                *reasons.entry(format!("from_insns {e}").chars().take(60).collect()).or_default() += 1;
                continue;
            }
        };
        total += 1;
        for unpriv in [false, true] {
            let mut ctx = VerifyContext::new(ProgramType::Xdp);
            ctx.maps = programs::maps().iter().map(MapInfo::from).collect();
            ctx.config.unprivileged = unpriv;
            let r = duet_verifier::verify(&program, &ctx);
            let words: Vec<u64> = program.to_raw().iter().map(|r| r.to_u64()).collect();
            let kok = match kernel_btf::load(&words, unpriv, std::env::var("KLOG").is_ok()) {
                Ok((ok, log)) => {
                    if !ok && std::env::var("KLOG").is_ok() {
                        let tail: Vec<&str> = log.lines().rev().take(3).collect();
                        eprintln!("KLOG {tail:?}");
                    }
                    Some(ok)
                }
                Err(e) => {
                    eprintln!("kernel: {e}");
                    None
                }
            };
            if !unpriv && kok == Some(true) {
                k_ok += 1;
            }
            if kok == Some(r.is_ok()) {
                agree += 1;
            } else if kok.is_some() {
                eprintln!(
                    "DISAGREE unpriv={unpriv} duet={:?} kernel={kok:?}\n{}",
                    r.as_ref().err().map(|e| e.to_string()),
                    duet_isa::disassemble(&program.insns().iter().map(|(_, i)| *i).collect::<Vec<_>>())
                );
            }
            match r {
                Ok(_) if unpriv => ok_unpriv += 1,
                Ok(_) => ok_priv += 1,
                Err(e) => {
                    let msg = e.to_string();
                    let key: String = msg.lines().next().unwrap_or("").chars().take(90).collect();
                    if verbose {
                        eprintln!("{msg}");
                    }
                    *reasons.entry(format!("{}: {key}", if unpriv { "u" } else { "p" })).or_default() += 1;
                }
            }
        }
    }
    println!(
        "{total} programs: duet accepts {ok_priv} privileged, {ok_unpriv} unprivileged; kernel accepts {k_ok} privileged; agree {agree}/{}",
        2 * total
    );
    let mut v: Vec<_> = reasons.into_iter().collect();
    v.sort_by_key(|b| std::cmp::Reverse(b.1));
    for (r, c) in v.into_iter().take(25) {
        println!("{c:6} {r}");
    }
}
