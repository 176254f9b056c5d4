//! duet's verifier against the Linux kernel's.
//!
//! - Every program of the BPF corpus (`target/bpf/*.o`, built by `cargo xtask build-bpf` from
//!   `tests/bpf/`) must be accepted by duet's verifier and by the kernel.
//! - Every program of the negative corpus (`tests/verifier/*.s`, one hazard each) must be
//!   rejected by duet with a message naming the cause (`# expect:`), and by the kernel (loaded
//!   as raw bytecode with `duet_kernel::load_raw`), unless the file records a deliberate
//!   difference (`# kernel: accept` with `# why:`).
//!
//! The kernel half needs root (or CAP_BPF + CAP_NET_ADMIN). Elsewhere it says loudly why it
//! skipped; under `CI=true` it fails instead.

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

fn corpus_objects() -> Vec<PathBuf> {
    let dir = root().join("target/bpf");
    let mut objects: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "o")).collect()
        })
        .unwrap_or_default();
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
    let insns: Vec<u64> = file
        .insns
        .iter()
        .flat_map(|i| {
            let (a, b) = i.encode();
            std::iter::once(a.to_u64()).chain(b.map(|b| b.to_u64()))
        })
        .collect();
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
    let privileges = match file.kernel_caps {
        KernelCaps::All => Privileges::Inherit,
        KernelCaps::BpfOnly => Privileges::BpfOnly,
    };
    let program = RawProgram { prog_type: file.program_type.kernel_prog_type(), insns: &insns, maps: &maps, privileges };
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
    for path in &objects {
        let bytes = std::fs::read(path).expect("read object");
        let object = Object::parse(&bytes).expect("parse object");
        for program in &object.programs {
            count += 1;
            let ctx = VerifyContext::for_object_program(&object, program)
                .unwrap_or_else(|| panic!("{}: program type {:?} unsupported", program.name, program.kind));
            match duet_verifier::verify(&program.program, &ctx) {
                Ok(v) => eprintln!("duet accepts {:<20} {}", program.name, v.stats()),
                Err(r) => failures.push(format!("duet rejects {} in {}:\n{r}", program.name, path.display())),
            }
        }
        if kernel && let Err(err) = duet_kernel::load_check(&bytes) {
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
        if file.kernel == KernelExpect::Accept {
            match &file.why {
                Some(why) => differences.push(format!("{name}: {why}")),
                None => failures.push(format!("{name}: `# kernel: accept` needs a `# why:` line")),
            }
        }
        if kernel {
            match (kernel_verdict(&file), file.kernel) {
                (Err(_), KernelExpect::Reject) | (Ok(()), KernelExpect::Accept) => {}
                (Ok(()), KernelExpect::Reject) => failures.push(format!("{name}: the kernel ACCEPTS it ({})", file.title)),
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
