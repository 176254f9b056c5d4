//! duet's verifier against the Linux kernel's.
//!
//! - Every program of the BPF corpus (`target/bpf/*.o`, built by `cargo xtask build-bpf` from
//!   `tests/bpf/`) must be accepted by duet's verifier and by the kernel.
//! - Every program of the negative corpus (`tests/verifier/*.s`, one hazard each) must be
//!   rejected by duet with a message naming the cause (`# expect:`), and by the kernel (loaded
//!   as raw bytecode with `duet_kernel::load_raw`), unless the file records a deliberate
//!   difference (`# kernel: accept` with `# why:`). Files marked `# kernel-caps: bpf` are loaded
//!   without CAP_PERFMON/CAP_SYS_ADMIN, where the kernel refuses pointer leaks and uninitialised
//!   stack reads; the test also checks that root's kernel accepts them, which is the recorded
//!   difference (duet refuses them always, and says why in `# why:`).
//!
//! The kernel half needs root (or CAP_BPF + CAP_NET_ADMIN). Elsewhere it says loudly why it
//! skipped; under `CI=true` it fails instead. `DUET_SHOW_KERNEL_LOG=1` prints duet's and the
//! kernel's reason side by side for every negative program.

use std::path::{Path, PathBuf};
use std::process::Command;

use duet_isa::Program;
use duet_kernel::{Privileges, RawMap, RawProgram};
use duet_object::Object;
use duet_verifier::testfile::{KernelCaps, KernelExpect, TestFile};
use duet_verifier::{Rejection, VerifyContext};

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether the kernel half can run; says why not (and fails under CI) when it cannot.
fn kernel_available(test: &str) -> bool {
    match duet_kernel::check_access() {
        Ok(()) => true,
        Err(err) => {
            assert!(!ci(), "{test}: the kernel comparison cannot run: {err} (CI=true makes this a failure)");
            eprintln!("\n!!! {test}: SKIPPED the kernel comparison: {err} !!!\n");
            false
        }
    }
}

fn objects_in(dir: &Path) -> Vec<PathBuf> {
    let mut objects: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "o")).collect()
        })
        .unwrap_or_default();
    objects.sort();
    objects
}

fn corpus_objects() -> Vec<PathBuf> {
    objects_in(&root().join("target/bpf"))
}

/// The SDK examples' objects, when `duet build` has built them (`examples/*/target/duet/`).
fn example_objects() -> Vec<PathBuf> {
    let mut objects = Vec::new();
    for entry in std::fs::read_dir(root().join("examples")).into_iter().flatten().flatten() {
        objects.extend(objects_in(&entry.path().join("target/duet")));
    }
    objects.sort();
    objects
}

fn negative_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("tests/verifier"))
        .expect("tests/verifier exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "s"))
        .collect();
    files.sort();
    files
}

/// duet's verdict on a test file: `Ok` if it verifies, else the rendered rejection.
fn duet_verdict(file: &TestFile) -> Result<(), String> {
    let ctx = file.context();
    match Program::from_insns(&file.insns) {
        Err(err) => Err(Rejection {
            diagnostics: vec![duet_verifier::decode_diagnostic(&err)],
            stats: Default::default(),
            log: None,
        }
        .to_string()),
        Ok(program) => duet_verifier::verify(&program, &ctx).map(drop).map_err(|r| r.to_string()),
    }
}

/// The kernel's verdict on a test file's bytecode: `Ok` if it loads, else the verifier log.
fn kernel_verdict(file: &TestFile) -> Result<(), String> {
    kernel_verdict_with(file, file.kernel_caps)
}

fn kernel_verdict_with(file: &TestFile, caps: KernelCaps) -> Result<(), String> {
    let insns = file.raw_insns();
    let maps: Vec<RawMap> = file
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
    let privileges = match caps {
        KernelCaps::All => Privileges::Inherit,
        KernelCaps::BpfOnly => Privileges::BpfOnly,
    };
    let prog_type = file
        .program_type
        .kernel_prog_type()
        .ok_or_else(|| format!("{} programs run only in duet's userspace executors", file.program_type.name()))?;
    let program = RawProgram { prog_type, insns: &insns, maps: &maps, privileges, log: true };
    duet_kernel::load_raw(&program).map_err(|e| e.to_string())
}

#[test]
fn corpus_programs_verify_in_duet_and_in_the_kernel() {
    let objects = corpus_objects();
    if objects.is_empty() {
        let why = "target/bpf has no objects; run `cargo xtask build-bpf` first";
        assert!(!ci(), "{why} (CI=true makes this a failure)");
        eprintln!("\n!!! SKIPPED: {why} !!!\n");
        return;
    }
    let kernel = kernel_available("corpus agreement");
    let mut failures = Vec::new();
    let mut count = 0;
    let examples = example_objects();
    if examples.is_empty() {
        eprintln!("note: no SDK example objects (examples/*/target/duet/*.bpf.o); `duet build` them to include them");
    }
    for path in objects.iter().chain(&examples) {
        let bytes = std::fs::read(path).expect("read object");
        let object = Object::parse(&bytes).expect("parse object");
        for program in &object.programs {
            if program.kind.is_kernel_only() {
                // cgroup sock_addr, sock_ops and sk_msg programs are verified by the kernel only
                // (the load check below covers them).
                assert!(
                    VerifyContext::for_object_program(&object, program).is_none(),
                    "{}: duet now verifies {:?}; include it here",
                    program.name,
                    program.kind
                );
                continue;
            }
            count += 1;
            let ctx = VerifyContext::for_object_program(&object, program)
                .unwrap_or_else(|| panic!("{}: program type {:?} unsupported", program.name, program.kind));
            match duet_verifier::verify(&program.program, &ctx) {
                Ok(v) => eprintln!("duet accepts {:<20} {}", program.name, v.stats()),
                Err(r) => failures.push(format!("duet rejects {} in {}:\n{r}", program.name, path.display())),
            }
        }
        // duet's userspace-only program types (http filters, routing programs) never go to the
        // kernel: `duet load` refuses them, which crates/kernel's tests check.
        let userspace_only = object.programs.iter().any(|p| p.kind.is_userspace_only());
        if kernel
            && !userspace_only
            && let Err(err) = duet_kernel::load_check(&bytes)
        {
            failures.push(format!("the kernel rejects {}: {err}", path.display()));
        }
    }
    assert!(count >= 15, "expected the whole corpus, found {count} programs");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn negative_corpus_is_rejected_by_duet_and_the_kernel() {
    let files = negative_files();
    assert!(files.len() >= 50, "the negative corpus has {} files; it must have at least 50", files.len());
    let kernel = kernel_available("negative corpus");
    let mut failures = Vec::new();
    let mut differences = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).expect("read test file");
        let file = match TestFile::parse(&text) {
            Ok(f) => f,
            Err(e) => {
                failures.push(format!("{name}: cannot parse: {e}"));
                continue;
            }
        };
        if file.expect.is_empty() {
            failures.push(format!("{name}: no `# expect:` line naming the cause"));
        }
        match duet_verdict(&file) {
            Ok(()) => failures.push(format!("{name}: duet ACCEPTS it ({})", file.title)),
            Err(msg) => {
                for want in &file.expect {
                    if !msg.contains(want.as_str()) {
                        failures.push(format!("{name}: duet's rejection does not mention `{want}`:\n{msg}"));
                    }
                }
            }
        }
        if file.kernel == KernelExpect::Accept || file.kernel_caps == KernelCaps::BpfOnly {
            match &file.why {
                Some(why) => differences.push(format!("{name}: {why}")),
                None => failures.push(format!("{name}: a difference from the kernel needs a `# why:` line")),
            }
        }
        if kernel && file.kernel_caps == KernelCaps::BpfOnly && kernel_verdict_with(&file, KernelCaps::All).is_err() {
            // The difference is only real if root's kernel accepts what duet rejects.
            failures.push(format!("{name}: the kernel rejects it even as root; drop `# kernel-caps: bpf`"));
        }
        if kernel {
            let verdict = kernel_verdict(&file);
            if std::env::var_os("DUET_SHOW_KERNEL_LOG").is_some() {
                // The kernel's reason, next to duet's, to check that both reject for the same cause.
                let last = verdict.as_ref().err().map_or("accepted".to_owned(), |log| {
                    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
                    let end = lines.iter().rposition(|l| l.starts_with("processed ")).unwrap_or(lines.len());
                    lines[..end].last().copied().unwrap_or("").to_owned()
                });
                let ours =
                    duet_verdict(&file).err().and_then(|m| m.lines().next().map(str::to_owned)).unwrap_or_default();
                eprintln!("{name}\n    duet:   {ours}\n    kernel: {last}");
            }
            match (verdict, file.kernel) {
                (Err(_), KernelExpect::Reject) | (Ok(()), KernelExpect::Accept) => {}
                (Ok(()), KernelExpect::Reject) => {
                    failures.push(format!("{name}: the kernel ACCEPTS it ({})", file.title))
                }
                (Err(log), KernelExpect::Accept) => {
                    failures.push(format!("{name}: marked `kernel: accept`, but the kernel rejects it:\n{log}"))
                }
            }
        }
    }
    eprintln!("{} negative programs; deliberate differences from the kernel:", files.len());
    for d in &differences {
        eprintln!("  {d}");
    }
    assert!(failures.is_empty(), "{} problem(s):\n\n{}", failures.len(), failures.join("\n\n"));
}

/// Unsafe C programs (`tests/verifier/c/*.c`, with `expect:` lines in their header comment),
/// compiled with clang as the corpus is: duet must reject each naming the source line (from BTF
/// line info) and the cause, and the kernel must reject it too.
#[test]
fn c_programs_are_rejected_with_source_lines() {
    let dir = root().join("tests/verifier/c");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/verifier/c exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .collect();
    sources.sort();
    let clang = Command::new("clang").arg("--version").output().is_ok_and(|o| o.status.success());
    if !clang {
        let why = "clang is not installed (`cargo xtask build-bpf` installs it)";
        assert!(!ci(), "{why} (CI=true makes this a failure)");
        eprintln!("\n!!! SKIPPED the C half of the negative corpus: {why} !!!\n");
        return;
    }
    let kernel = kernel_available("C negative corpus");
    let out_dir = std::env::temp_dir().join(format!("duet-verifier-c-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).expect("temp dir");
    let include = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let mut failures = Vec::new();
    for src in &sources {
        let name = src.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let obj = out_dir.join(name.replace(".c", ".o"));
        let status = Command::new("clang")
            .args(["-O2", "-g", "-Wall", "-target", "bpf", &include, "-c"])
            .arg(src)
            .arg("-o")
            .arg(&obj)
            .status()
            .expect("run clang");
        assert!(status.success(), "clang failed on {name}");
        let text = std::fs::read_to_string(src).expect("read source");
        let expect: Vec<&str> =
            text.lines().filter_map(|l| l.trim_start_matches([' ', '*']).strip_prefix("expect: ")).collect();
        assert!(!expect.is_empty(), "{name} has no `expect:` lines");
        let bytes = std::fs::read(&obj).expect("read object");
        let object = Object::parse(&bytes).expect("parse object");
        match duet_verifier::verify_object_program(&object, None) {
            Ok(_) => failures.push(format!("{name}: duet ACCEPTS it")),
            Err(err) => {
                let msg = err.to_string();
                for want in &expect {
                    if !msg.contains(want) {
                        failures.push(format!("{name}: duet's rejection does not mention `{want}`:\n{msg}"));
                    }
                }
            }
        }
        if kernel && duet_kernel::load_check(&bytes).is_ok() {
            failures.push(format!("{name}: the kernel ACCEPTS it"));
        }
    }
    let _ = std::fs::remove_dir_all(&out_dir);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn duet_verify_command_reports_success_and_every_problem() {
    let exe = env!("CARGO_BIN_EXE_duet");
    let bad = root().join("tests/verifier/pkt_read_past_bound.s");
    let out = Command::new(exe).arg("verify").arg(&bad).output().expect("run duet verify");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "a rejected program must exit non-zero:\n{stdout}");
    assert!(stdout.contains("error[packet-bounds]"), "{stdout}");
    assert!(stdout.contains("insn "), "diagnostics name the instruction:\n{stdout}");

    let good = root().join("target/bpf/parse.o");
    if !good.exists() {
        assert!(!ci(), "target/bpf/parse.o missing; run `cargo xtask build-bpf` (CI=true makes this a failure)");
        eprintln!("\n!!! SKIPPED the object half: run `cargo xtask build-bpf` first !!!\n");
        return;
    }
    let out = Command::new(exe).arg("verify").arg(&good).arg("--log").output().expect("run duet verify");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("xdp_parse: verified:"), "{stdout}");
    assert!(stdout.contains("--- state trace of xdp_parse ---"), "--log prints the trace:\n{stdout}");
}

/// `duet verify` follows root's rules by default and the CAP_BPF-only rules with
/// `--unprivileged`: returning the context pointer is a leak only to the latter.
#[test]
fn duet_verify_unprivileged_applies_the_stricter_rules() {
    let exe = env!("CARGO_BIN_EXE_duet");
    let file = root().join("tests/verifier/agree/ptr_return_context.s");
    let out = Command::new(exe).arg("verify").arg(&file).output().expect("run duet verify");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "privileged: returning a pointer is allowed:\n{stdout}");
    let out = Command::new(exe).arg("verify").arg(&file).arg("--unprivileged").output().expect("run duet verify");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "unprivileged: returning a pointer is a leak:\n{stdout}");
    assert!(stdout.contains("context pointer"), "the rejection names what leaks:\n{stdout}");
}

/// Soundness: random packet-parsing programs (pointer offsets, bounds checks with every
/// comparison, variable offsets, stack spills, context reads) that duet's verifier accepts never
/// fault on a memory check in the checked interpreter, on packets of every interesting length.
#[test]
fn accepted_random_programs_never_fault_in_the_interpreter() {
    use duet_vm::{Config, Helpers, Interpreter, TrapKind, XdpPacket};

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len() as u64) as usize]
        }
    }

    const POOL: [&str; 7] = ["%r0", "%r2", "%r3", "%r4", "%r5", "%r7", "%r9"];
    const SIZES: [&str; 4] = ["b", "h", "w", "dw"];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut accepted, mut runs, mut touch_packet, mut rejected_faulting) = (0u32, 0u32, 0u32, 0u32);
    let mut failures = Vec::new();
    let ctx = VerifyContext::new(duet_verifier::ProgramType::Xdp);
    for case in 0..40_000 {
        let n = 2 + rng.below(6) as usize;
        let mut body: Vec<String> = Vec::new();
        for b in 0..n {
            let x = rng.pick(&POOL);
            let y = rng.pick(&POOL);
            let sz = rng.pick(&SIZES);
            let k = 1 + rng.below(72);
            match rng.below(7) {
                // A bounds check against data_end, in one of its many spellings.
                0 | 1 => {
                    body.push(format!("mov {x}, %r7"));
                    body.push(format!("add {x}, {k}"));
                    body.push(match rng.below(6) {
                        0 => format!("jgt {x}, %r8, out"),
                        1 => format!("jge {x}, %r8, out"),
                        2 => format!("jlt %r8, {x}, out"),
                        3 => format!("jle %r8, {x}, out"),
                        4 => format!("jle {x}, %r8, ok{b}\n    ja out\nok{b}:"),
                        _ => format!("jne {x}, %r8, +0"),
                    });
                }
                // An access relative to data, or to a checked pointer.
                2 => body.push(format!("ldx{sz} {y}, [%r7+{}]", rng.below(72))),
                3 => body.push(format!("stx{sz} [{x}+{}], {y}", rng.below(24) as i64 - 12)),
                4 => body.push(format!("ldx{sz} {y}, [{x}+{}]", rng.below(24) as i64 - 12)),
                // A variable offset into the packet, then a check of the new pointer.
                5 => {
                    body.push(format!("ldxb {y}, [%r7+{}]", rng.below(16)));
                    body.push(format!("and {y}, {}", rng.pick(&["7", "15", "31", "255"])));
                    body.push(format!("mov {x}, %r7"));
                    body.push(format!("add {x}, {y}"));
                    if rng.below(4) != 0 {
                        body.push(format!("mov %r0, {x}"));
                        body.push(format!("add %r0, {k}"));
                        body.push("jgt %r0, %r8, out".to_owned());
                    }
                }
                // Filler: stack, context, arithmetic.
                _ => body.push(match rng.below(5) {
                    0 => format!("stxdw [%r10-{}], {y}", 8 * (1 + rng.below(8))),
                    1 => format!("ldxw {y}, [%r6+{}]", 4 * rng.below(5)),
                    2 => format!("mov {y}, {}", rng.below(100)),
                    3 => format!("ldx{sz} {y}, [%r10-{}]", 8 * (1 + rng.below(8))),
                    _ => format!("{} {y}, {}", rng.pick(&["and", "add", "rsh", "mod", "or"]), 1 + rng.below(64)),
                }),
            }
        }
        let mut text = String::from("    mov %r6, %r1\n    ldxw %r7, [%r6+0]\n    ldxw %r8, [%r6+4]\n");
        for r in ["%r0", "%r2", "%r3", "%r4", "%r5", "%r9"] {
            text.push_str(&format!("    mov {r}, {}\n", rng.below(16)));
        }
        for line in &body {
            text.push_str("    ");
            text.push_str(line);
            text.push('\n');
        }
        text.push_str("    mov %r0, 2\n    exit\nout:\n    mov %r0, 1\n    exit\n");
        let Ok(insns) = duet_isa::assemble(&text) else { continue };
        let Ok(program) = Program::from_insns(&insns) else { continue };
        let Ok(verified) = duet_verifier::verify(&program, &ctx) else {
            // The generator must produce real hazards too: count rejected programs that do fault.
            if let Ok(mut vm) = Interpreter::new_unverified(&program, Helpers::new(), Config::default()) {
                let frame: Vec<u8> = (0..rng.below(80)).map(|_| rng.below(256) as u8).collect();
                if matches!(vm.run_xdp(&mut XdpPacket::new(&frame)), Err(t) if matches!(t.kind, TrapKind::OutOfBoundsRead { .. } | TrapKind::OutOfBoundsWrite { .. }))
                {
                    rejected_faulting += 1;
                }
            }
            continue;
        };
        accepted += 1;
        if program.insns().iter().any(|(pc, _)| verified.facts(*pc).mem == Some(duet_verifier::MemRegion::Packet)) {
            touch_packet += 1;
        }
        let mut vm = Interpreter::new(&verified, Helpers::new(), Config::default()).expect("load verified program");
        for len in [0usize, 1, 13, 14, 15, 20, 33, 34, 60, 64, 71, 72, 200] {
            let frame: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
            let mut packet = XdpPacket::new(&frame);
            runs += 1;
            if let Err(trap) = vm.run_xdp(&mut packet) {
                let memory = matches!(
                    trap.kind,
                    TrapKind::OutOfBoundsRead { .. }
                        | TrapKind::OutOfBoundsWrite { .. }
                        | TrapKind::MisalignedAtomic { .. }
                        | TrapKind::ContextAccess { .. }
                );
                if memory {
                    failures.push(format!("case {case}, {len}-byte packet: {trap}\n{text}"));
                    break;
                }
            }
        }
    }
    eprintln!(
        "{accepted} of 40000 random programs verified ({touch_packet} access the packet); {runs} interpreter runs; \
         {rejected_faulting} rejected programs fault when run unverified"
    );
    assert!(rejected_faulting > 1000, "the generator makes too few real hazards ({rejected_faulting})");
    assert!(touch_packet > 300, "too few accepted random programs access the packet ({touch_packet})");
    assert!(accepted > 1000, "too few random programs verify ({accepted}) for this test to mean much");
    assert!(failures.is_empty(), "accepted programs faulted:\n{}", failures.join("\n"));
}
