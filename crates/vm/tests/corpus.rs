//! Every engine runs the same `.data` files: duet's own corpus (`tests/data`) and the external
//! bpf_conformance suite. Today the engine list holds the interpreter; the JIT joins it.

use std::path::{Path, PathBuf};

use duet_isa::Program;
use duet_testdata::{TestCase, Verdict};
use duet_vm::{Config, Helpers, Interpreter};

type Engine = fn(&Program, &mut [u8]) -> Result<u64, String>;

fn interpreter(program: &Program, mem: &mut [u8]) -> Result<u64, String> {
    let mut helpers = Helpers::new();
    helpers.register(5, duet_vm::unwind_helper);
    let mut vm = Interpreter::new_unverified(program, helpers, Config::default()).map_err(|e| e.to_string())?;
    vm.run(mem).map_err(|e| e.to_string())
}

const ENGINES: &[(&str, Engine)] = &[("interp", interpreter)];

fn run_dir(dir: &Path) -> usize {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "data"))
        .collect();
    files.sort();
    // Under Miri, sample the corpus: every file is too slow there.
    if cfg!(miri) {
        files = files.into_iter().step_by(7).collect();
    }
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let case = TestCase::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for (name, engine) in ENGINES {
            if let Verdict::Fail(why) = case.check(engine) {
                failures.push(format!("{name} {}: {why}", path.file_name().unwrap().to_string_lossy()));
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    files.len()
}

#[test]
fn own_corpus_on_every_engine() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data");
    let n = run_dir(&dir);
    assert!(n >= 50, "only {n} files in tests/data");
}

#[test]
fn conformance_suite_on_every_engine() {
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
