//! `--engine jit` of `duet conformance`, `duet exec` and `duet run`, through the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn duet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_duet")).args(args).output().expect("run duet")
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn data_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "data"))
        .count()
}

#[test]
fn conformance_with_the_jit_passes_everything() {
    let mut dirs = vec![root().join("tests/data")];
    let suite = std::env::var_os("DUET_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/conformance/bpf_conformance/tests"));
    if suite.is_dir() {
        dirs.push(suite);
    } else {
        let msg = format!("the bpf_conformance suite is missing at {}", suite.display());
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg} (CI=true makes this a failure)");
        eprintln!("\n!!! SKIPPED (suite only): {msg} !!!\n");
    }
    for dir in dirs {
        let out = duet(&["conformance", "--engine", "jit", dir.to_str().unwrap()]);
        let (stdout, stderr) = text(&out);
        let n = data_files(&dir);
        assert_eq!(stdout.lines().last(), Some(format!("{n} passed, 0 failed").as_str()), "{stdout}\n{stderr}");
        assert!(out.status.success());
    }
}

#[test]
fn exec_with_the_jit() {
    let dir = std::env::temp_dir().join(format!("duet-jit-exec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prog = dir.join("sum.s");
    std::fs::write(&prog, "ldxb %r0, [%r1+0]\nldxb %r2, [%r1+1]\nadd %r0, %r2\nmul %r0, 3\nexit\n").unwrap();
    let out = duet(&["exec", "--engine", "jit", prog.to_str().unwrap(), "--mem", "0a14"]);
    assert_eq!(text(&out).0.trim(), "r0 = 0x5a (90)", "{:?}", text(&out));
    // A trap: the same message as the interpreter's.
    let bad = dir.join("bad.s");
    std::fs::write(&bad, "ldxdw %r0, [%r1+8]\nexit\n").unwrap();
    let jit = duet(&["exec", "--engine", "jit", bad.to_str().unwrap(), "--mem", "00"]);
    let interp = duet(&["exec", bad.to_str().unwrap(), "--mem", "00"]);
    assert!(!jit.status.success());
    let strip = |s: String| s.split(" at 0x").next().unwrap_or_default().to_owned();
    assert_eq!(strip(text(&jit).1), strip(text(&interp).1));
    assert!(text(&jit).1.contains("instruction 0: out-of-bounds read of 8 bytes"), "{:?}", text(&jit));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn run_with_the_jit_matches_the_interpreter() {
    let obj = root().join("target/bpf/parse.o");
    if !obj.exists() {
        let msg = format!("{} is missing; run `cargo xtask build-bpf`", obj.display());
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg} (CI=true makes this a failure)");
        eprintln!("\n!!! SKIPPED: {msg} !!!\n");
        return;
    }
    let frames: Vec<Vec<u8>> = duet_testdata::packets::corpus().into_iter().map(|(_, f)| f).collect();
    let mut pcap = Vec::new();
    duet_testdata::packets::write_pcap(&mut pcap, &frames).unwrap();
    let path = std::env::temp_dir().join(format!("duet-jit-run-{}.pcap", std::process::id()));
    std::fs::write(&path, &pcap).unwrap();
    let run = |engine: &str| {
        let out = duet(&[
            "run",
            obj.to_str().unwrap(),
            "--pcap",
            path.to_str().unwrap(),
            "--engine",
            engine,
            "--json",
            "--deterministic",
        ]);
        assert!(out.status.success(), "{engine}: {:?}", text(&out));
        text(&out).0
    };
    assert_eq!(run("jit"), run("interp"));
    let refused =
        duet(&["run", obj.to_str().unwrap(), "--pcap", path.to_str().unwrap(), "--engine", "jit", "--no-verify"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).1.contains("the JIT runs only programs duet's verifier proved safe"),
        "{:?}",
        text(&refused)
    );
    let _ = std::fs::remove_file(&path);
}
