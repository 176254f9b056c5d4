//! `duet exec` names a faulting address by region and offset, the same on every run (host
//! addresses change with ASLR), in the interpreter and the JIT.

use std::process::Command;

#[test]
fn exec_traps_name_the_region_and_offset() {
    let dir = std::env::temp_dir().join(format!("duet-exec-traps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let program = dir.join("oob.s");
    std::fs::write(&program, "ldxdw %r0, [%r1+4096]\nexit\n").unwrap();
    for engine in ["interp", "jit"] {
        let out = Command::new(env!("CARGO_BIN_EXE_duet"))
            .arg("exec")
            .arg(&program)
            .args(["--mem", "00 01 02 03", "--engine", engine])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains("instruction 0: out-of-bounds read of 8 bytes at input+4096 (the input memory is 4 bytes)"),
            "{engine}: {stderr}"
        );
        assert!(!stderr.contains("0x"), "no host address: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
