//! The external bpf_conformance suite and duet's own data-driven corpus, run through the real
//! `duet` binary, plus the suite's negative files (which a correct toolchain must reject).

use std::path::{Path, PathBuf};
use std::process::Command;

use duet_testdata::{Expect, TestCase};

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The suite's directory: `DUET_CONFORMANCE_DIR`, else `../shared/conformance/bpf_conformance`
/// beside the project. `None` (after saying so loudly) when it is missing outside CI; under
/// `CI=true` a missing suite fails the test.
fn suite_dir(sub: &str) -> Option<PathBuf> {
    let base = std::env::var_os("DUET_CONFORMANCE_DIR")
        .map(|d| PathBuf::from(d).join(".."))
        .unwrap_or_else(|| project_root().join("../shared/conformance/bpf_conformance"));
    let dir = base.join(sub);
    if dir.is_dir() {
        return Some(dir);
    }
    let msg = format!("the bpf_conformance suite is missing: {} does not exist", dir.display());
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg} (CI=true makes this a failure)");
    }
    eprintln!("\n!!! SKIPPED: {msg}; set DUET_CONFORMANCE_DIR to the suite's tests directory !!!\n");
    None
}

fn data_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "data"))
        .collect();
    files.sort();
    files
}

/// Runs `duet conformance <dir>` and checks that every file passed.
fn run_all(dir: &Path) {
    let n_files = data_files(dir).len();
    assert!(n_files > 0, "no .data files in {}", dir.display());
    let out = Command::new(env!("CARGO_BIN_EXE_duet")).arg("conformance").arg(dir).output().expect("run duet");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        format!("{n_files} passed, 0 failed"),
        "duet conformance {}:\n{stdout}\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success());
}

#[test]
fn external_conformance_suite_passes_completely() {
    if let Some(dir) = suite_dir("tests") {
        run_all(&dir);
    }
}

#[test]
fn own_corpus_passes_completely() {
    run_all(&project_root().join("tests/data"));
}

#[test]
fn suite_negative_files_are_rejected() {
    let Some(dir) = suite_dir("negative") else { return };
    let mut checked = 0;
    for path in data_files(&dir) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let Ok(case) = TestCase::parse(&text) else {
            // empty.data, empty_instructions.data: nothing to run, and the parser says so.
            assert!(name.starts_with("empty"), "{name} should parse");
            continue;
        };
        if name.starts_with("unused-") {
            // A reserved field is set: the decoder must refuse the bytecode.
            let raw = case.raw.as_ref().unwrap_or_else(|| panic!("{name} has raw bytes"));
            let err = duet_isa::Program::decode(raw).expect_err(&name);
            assert_eq!(err.pc, 0, "{name}: the error must name the offending instruction: {err}");
        } else if case.expect == Expect::Result(0x11) {
            // Malformed assembly, with a result the program could never produce.
            assert!(duet_isa::assemble(case.asm.as_deref().unwrap()).is_err(), "{name} must not assemble");
        } else if let Expect::Error(text) = &case.expect {
            // invalid_lock*, invalid_register, ...: assembling fails with the suite's words,
            // or (error.data, invalid_unknown_directive.data) the expected error cannot happen
            // because the program is valid or empty.
            match duet_isa::assemble(case.asm.as_deref().unwrap_or("")) {
                Err(e) => assert!(e.message.contains(text.as_str()), "{name}: {e}"),
                Ok(insns) => assert!(
                    insns.is_empty() || duet_isa::Program::from_insns(&insns).is_ok(),
                    "{name}: unexpected assembly result"
                ),
            }
        } else {
            // incorrect_return_value_high_bits.data: the expected value is wrong on purpose; the
            // runner must notice.
            let mut helpers = duet_vm::Helpers::new();
            helpers.register(5, duet_vm::unwind_helper);
            let verdict = case.check(|p, mem| {
                duet_vm::Interpreter::new_unverified(p, helpers.clone(), duet_vm::Config::default())
                    .map_err(|e| e.to_string())?
                    .run(mem)
                    .map_err(|e| e.to_string())
            });
            assert!(matches!(verdict, duet_testdata::Verdict::Fail(_)), "{name}: a wrong expectation must fail");
        }
        checked += 1;
    }
    assert!(checked >= 50, "only {checked} negative files checked");
}

#[test]
fn plugin_protocol() {
    let duet = env!("CARGO_BIN_EXE_duet");
    let run = |stdin: &str, args: &[&str]| {
        use std::io::Write;
        let mut child = Command::new(duet)
            .arg("conformance-plugin")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn duet");
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    // mov %r0, %r2; exit — returns the memory length.
    let out = run("bf 20 00 00 00 00 00 00 95 00 00 00 00 00 00 00", &["00010203"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "4");
    // ldxdw %r0, [%r1+0]; exit — returns the memory as a little-endian u64, printed in hex.
    let out = run("79 10 00 00 00 00 00 00 95 00 00 00 00 00 00 00", &["1122334455667788"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "8877665544332211");
    // An unknown opcode: non-zero exit, message on stderr.
    let out = run("ff 00 00 00 00 00 00 00 95 00 00 00 00 00 00 00", &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown opcode"));
}
