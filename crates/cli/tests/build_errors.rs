//! What `duet build` says when the program's own code does not compile: the compiler's count of
//! errors and where to look, not the cargo command line or advice about bpf-linker (which is for
//! linker failures), and no artifact.

use std::path::Path;
use std::process::Command;

const DUET: &str = env!("CARGO_BIN_EXE_duet");

#[test]
fn a_compile_error_is_named_as_the_programs_without_linker_advice() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("build-errors-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let out = Command::new(DUET).args(["new", "typo"]).current_dir(&tmp).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lib = tmp.join("typo/src/lib.rs");
    let src = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, format!("{src}\nfn broken() -> u32 {{ \"not a number\" }}\n")).unwrap();

    for quiet in [false, true] {
        let mut cmd = Command::new(DUET);
        cmd.arg("build").arg(tmp.join("typo"));
        if quiet {
            cmd.arg("--quiet");
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().rfind(|l| l.starts_with("error:")).unwrap_or_default().to_owned();
        assert!(err.contains("did not compile for") && err.contains("1 error"), "quiet={quiet}:\n{err}");
        assert!(!last.contains("bpf-linker") && !last.contains("cargo rustc"), "quiet={quiet}: {last}");
        if quiet {
            // A quiet build shows the compiler's message itself.
            assert!(err.contains("mismatched types"), "{err}");
        }
        assert!(!tmp.join("typo/target/duet/typo.bpf.o").exists(), "a failed build leaves no artifact");
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
