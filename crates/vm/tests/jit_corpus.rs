//! The JIT runs the same `.data` files as the interpreter — duet's own corpus (`tests/data`) and
//! the external bpf_conformance suite — and must pass every one with results and trap messages
//! identical to the interpreter's. The suite's programs are not meant to pass a verifier, so they
//! run as checked code ([`Jit::new_checked`]: every access through the region table, the budget
//! counted), which is also what `duet conformance --engine jit` does.

use std::path::{Path, PathBuf};

use duet_isa::Program;
use duet_testdata::{TestCase, Verdict};
use duet_vm::{Config, Helpers, Interpreter, Jit};

fn helpers() -> Helpers {
    let mut helpers = Helpers::new();
    helpers.register(5, duet_vm::unwind_helper);
    helpers
}

fn interpreter(program: &Program, mem: &mut [u8]) -> Result<u64, String> {
    let mut vm = Interpreter::new_unverified(program, helpers(), Config::default()).map_err(|e| e.to_string())?;
    vm.run(mem).map_err(|e| e.to_string())
}

fn jit(program: &Program, mem: &mut [u8]) -> Result<u64, String> {
    let mut vm = Jit::new_checked(program, helpers(), Config::default()).map_err(|e| e.to_string())?;
    vm.run(mem).map_err(|e| e.to_string())
}

/// Trap messages name host addresses, which differ between two runs' buffers.
fn hide_addresses(msg: &str) -> String {
    let mut out = String::new();
    let mut rest = msg;
    while let Some(i) = rest.find("0x") {
        out.push_str(&rest[..i]);
        let hex = rest[i + 2..].chars().take_while(char::is_ascii_hexdigit).count();
        if hex >= 9 {
            out.push_str("ADDR");
        } else {
            out.push_str(&rest[i..i + 2 + hex]);
        }
        rest = &rest[i + 2 + hex..];
    }
    out.push_str(rest);
    out
}

fn run_dir(dir: &Path) -> usize {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "data"))
        .collect();
    files.sort();
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        let case = TestCase::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Verdict::Fail(why) = case.check(jit) {
            failures.push(format!("{name}: {why}"));
        }
        // Identical to the interpreter, memory included, not only "passing".
        let mut results = Vec::new();
        case.check(|program, mem| {
            let mut mem2 = mem.to_vec();
            let a = interpreter(program, mem);
            let b = jit(program, &mut mem2);
            results.push((a.clone(), b, mem.to_vec(), mem2));
            a
        });
        for (a, b, mem_a, mem_b) in results {
            let (a, b) = (a.map_err(|e| hide_addresses(&e)), b.map_err(|e| hide_addresses(&e)));
            if a != b || mem_a != mem_b {
                failures.push(format!("{name}: interpreter {a:?} vs JIT {b:?} (memory equal: {})", mem_a == mem_b));
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    files.len()
}

#[test]
fn own_corpus_through_the_jit() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data");
    let n = run_dir(&dir);
    assert!(n >= 50, "only {n} files in tests/data");
}

#[test]
fn conformance_suite_through_the_jit() {
    let dir = std::env::var_os("DUET_CONFORMANCE_DIR").map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/bpf_conformance/tests")
    });
    if !dir.is_dir() {
        let msg = format!("bpf_conformance suite not found at {}", dir.display());
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg} (CI=true makes this a failure)");
        eprintln!("\n!!! SKIPPED: {msg}; set DUET_CONFORMANCE_DIR !!!\n");
        return;
    }
    assert_eq!(run_dir(&dir), 313);
}
