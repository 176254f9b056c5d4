//! How long duet's verifier takes on the BPF corpus (`target/bpf/*.o`, from `cargo xtask
//! build-bpf`) and on a generated program of a few thousand instructions, next to the kernel's
//! load time (BPF_PROG_LOAD, where the kernel verifier runs) for the same bytecode, measured in
//! the same run when this process may load BPF programs (root).
//!
//! `cargo bench -p duet-verifier --bench verify` prints criterion's numbers for duet and, at the
//! end, a table of medians with the kernel/duet ratio.

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use duet_isa::Program;
use duet_kernel::{Privileges, RawMap, RawProgram};
use duet_object::Object;
use duet_verifier::{MapInfo, ProgramType, VerifyContext};

struct Case {
    name: String,
    program: Program,
    ctx: VerifyContext,
    /// The object file, for the kernel's fallback (loading the whole object through aya).
    object: Option<Vec<u8>>,
}

fn corpus() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bpf");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "o")).collect()
        })
        .unwrap_or_default();
    paths.sort();
    if paths.is_empty() {
        eprintln!("!!! target/bpf has no objects: run `cargo xtask build-bpf` for the corpus half of this bench !!!");
    }
    let mut cases = Vec::new();
    for path in paths {
        let Ok(bytes) = std::fs::read(&path) else { continue };
        let Ok(object) = Object::parse(&bytes) else { continue };
        for p in &object.programs {
            let Some(ctx) = VerifyContext::for_object_program(&object, p) else { continue };
            cases.push(Case { name: p.name.clone(), program: p.program.clone(), ctx, object: Some(bytes.clone()) });
        }
    }
    cases
}

/// A generated XDP program of `blocks` packet-parsing blocks: each checks the next 8 bytes
/// against data_end, reads them, looks up a hash map keyed by them, and counts a hit with an
/// atomic add. About 24 instructions per block.
fn synthetic(blocks: usize) -> Case {
    let mut s = String::new();
    s.push_str("    mov %r6, %r1\n    ldxw %r7, [%r6+0]\n    ldxw %r8, [%r6+4]\n");
    for b in 0..blocks {
        let off = 8 * (b % 64);
        s.push_str(&format!(
            "    mov %r2, %r7\n    add %r2, {end}\n    jgt %r2, %r8, out\n    ldxw %r3, [%r7+{off}]\n    and %r3, 1023\n    \
             stxw [%r10-4], %r3\n    mov %r2, %r10\n    add %r2, -4\n    lddw %r1, map_fd 0\n    call 1\n    \
             jeq %r0, 0, miss{b}\n    mov %r1, 1\n    lock add [%r0+0], %r1\n    ldxdw %r1, [%r0+0]\n    \
             jlt %r1, 1000000, miss{b}\n    mov %r0, 1\n    exit\nmiss{b}:\n    ldxw %r7, [%r6+0]\n    \
             ldxw %r8, [%r6+4]\n",
            end = off + 8,
        ));
    }
    s.push_str("    mov %r0, 2\n    exit\nout:\n    mov %r0, 0\n    exit\n");
    let insns = duet_isa::assemble(&s).expect("the generated program assembles");
    let program = Program::from_insns(&insns).expect("the generated program is valid");
    let mut ctx = VerifyContext::new(ProgramType::Xdp);
    ctx.maps.push(MapInfo::new("hits", 1, 4, 8, 1024));
    Case { name: format!("synthetic_{}_insns", program.n_slots()), program, ctx, object: None }
}

fn kernel_load(case: &Case) -> Option<Box<dyn Fn() -> bool>> {
    duet_kernel::check_access().ok()?;
    let insns: Vec<u64> = case.program.to_raw().iter().map(|r| r.to_u64()).collect();
    let maps: Vec<RawMap> = case
        .ctx
        .maps
        .iter()
        .map(|m| RawMap {
            name: m.name.clone(),
            map_type: m.map_type,
            key_size: m.key_size,
            value_size: m.value_size,
            max_entries: m.max_entries,
            flags: m.flags,
        })
        .collect();
    // Userspace-only program types have no kernel counterpart to compare with.
    let prog_type = case.ctx.program_type.kernel_prog_type()?;
    let raw = move || {
        let program = RawProgram { prog_type, insns: &insns, maps: &maps, privileges: Privileges::Inherit, log: false };
        duet_kernel::load_raw(&program).is_ok()
    };
    if raw() {
        return Some(Box::new(raw));
    }
    // Bytecode that needs its object's context (frozen .rodata, BTF): load the whole object.
    let bytes = case.object.clone()?;
    let object = move || duet_kernel::load_check(&bytes).is_ok();
    object().then(|| Box::new(object) as Box<dyn Fn() -> bool>)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn bench(c: &mut Criterion) {
    let mut cases = corpus();
    cases.push(synthetic(128));
    let mut rows = Vec::new();
    for case in &cases {
        let verify = || duet_verifier::verify(&case.program, &case.ctx).expect("the corpus verifies");
        let stats = *verify().stats();
        c.bench_function(&format!("duet_verify/{}", case.name), |b| b.iter(verify));
        let duet = median(
            (0..31)
                .map(|_| {
                    let t = Instant::now();
                    verify();
                    t.elapsed()
                })
                .collect(),
        );
        let kernel = kernel_load(case).map(|load| {
            median(
                (0..15)
                    .map(|_| {
                        let t = Instant::now();
                        load();
                        t.elapsed()
                    })
                    .collect(),
            )
        });
        rows.push((case.name.clone(), case.program.n_slots(), stats.insns_processed, duet, kernel));
    }
    println!(
        "\n{:<24} {:>6} {:>10} {:>12} {:>14} {:>8}",
        "program", "insns", "processed", "duet", "kernel load", "ratio"
    );
    for (name, insns, processed, duet, kernel) in &rows {
        let (k, ratio) = match kernel {
            Some(k) => {
                (format!("{:.3} ms", k.as_secs_f64() * 1e3), format!("{:.1}x", k.as_secs_f64() / duet.as_secs_f64()))
            }
            None => ("(no access)".to_owned(), "-".to_owned()),
        };
        println!("{name:<24} {insns:>6} {processed:>10} {:>9.3} ms {k:>14} {ratio:>8}", duet.as_secs_f64() * 1e3);
    }
    if rows.iter().all(|r| r.4.is_none()) {
        println!(
            "\n!!! the kernel column needs root (CAP_BPF + CAP_NET_ADMIN): run the bench as root for the ratios !!!"
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
