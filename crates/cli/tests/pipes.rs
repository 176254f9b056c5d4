//! Every command's output may go to a pipe that closes early (`duet maps 1 | head`): duet then
//! stops quietly and successfully, as other command-line tools do, instead of panicking.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Runs duet with `args`, reads 100 bytes of its stdout, closes the pipe, and returns the exit
/// status and stderr.
fn head(args: &[&str]) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_duet"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run duet");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 100];
    stdout.read_exact(&mut first).expect("some output");
    drop(stdout);
    let out = child.wait_with_output().expect("wait for duet");
    (out.status, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("duet-pipes-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn a_closed_pipe_ends_commands_quietly() {
    let dir = scratch("long");
    // Far more output than a pipe buffers.
    let mut program = "mov %r0, 0\n".repeat(50_000);
    program.push_str("exit\n");
    let asm = dir.join("long.s");
    std::fs::write(&asm, program).unwrap();
    let bytecode = dir.join("long.bin");
    let out = Command::new(env!("CARGO_BIN_EXE_duet"))
        .arg("asm")
        .arg(&asm)
        .arg("-o")
        .arg(&bytecode)
        .output()
        .expect("run duet asm");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    for args in [vec!["disasm", bytecode.to_str().unwrap()], vec!["asm", asm.to_str().unwrap()]] {
        let (status, stderr) = head(&args);
        assert!(status.success(), "{args:?}: {status:?} {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{args:?}: {stderr}");
    }

    // `run --json` writes through a locked writer rather than `println!`.
    let frames: Vec<Vec<u8>> = duet_testdata::packets::corpus().into_iter().map(|(_, f)| f).collect();
    let many: Vec<Vec<u8>> = frames.iter().cycle().take(20_000).cloned().collect();
    let pcap = dir.join("many.pcap");
    duet_testdata::packets::write_pcap(std::fs::File::create(&pcap).unwrap(), &many).unwrap();
    let wasm = dir.join("pass.wasm");
    let module = r#"(module (memory (export "memory") 1)
        (func (export "duet_abi_version") (result i32) (i32.const 1))
        (func (export "duet_buffer") (param i32) (result i32) (i32.const 1024))
        (func (export "duet_prog_xdp_pass") (param i32 i32) (result i32) (i32.const 2)))"#;
    std::fs::write(&wasm, wat::parse_str(module).unwrap()).unwrap();
    let (status, stderr) = head(&["run", wasm.to_str().unwrap(), "--json", "--pcap", pcap.to_str().unwrap()]);
    assert!(status.success(), "run --json: {status:?} {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
