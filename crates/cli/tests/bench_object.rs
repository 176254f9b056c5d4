//! `duet bench <object> --pcap <file>`: a user's own object over a user's own capture, timed in
//! every executor that can run it, with the results compared.

use std::path::{Path, PathBuf};
use std::process::Command;

const DUET: &str = env!("CARGO_BIN_EXE_duet");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn duet(args: &[&str]) -> std::process::Output {
    Command::new(DUET).args(args).output().unwrap()
}

#[test]
fn an_object_and_a_capture_are_timed_in_every_executor() {
    let dir = root().join("examples/firewall");
    let out = duet(&["build", "--quiet", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bpf = dir.join("target/duet/firewall.bpf.o");
    let wasm = dir.join("target/duet/firewall.wasm");
    let tmp = root().join("target/tmp/bench-object");
    std::fs::create_dir_all(&tmp).unwrap();
    let pcap = tmp.join("corpus.pcap");
    let frames: Vec<Vec<u8>> = duet_testdata::packets::corpus().into_iter().map(|(_, f)| f).collect();
    let short = frames.iter().filter(|f| f.len() < 14).count();
    duet_testdata::packets::write_pcap(std::fs::File::create(&pcap).unwrap(), &frames).unwrap();

    let args = ["bench", bpf.to_str().unwrap(), "--pcap", pcap.to_str().unwrap()];
    let out = duet(&[&args[..], &["--wasm", wasm.to_str().unwrap(), "--json"]].concat());
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["program"], "firewall");
    assert_eq!(doc["frames"].as_u64(), Some((frames.len() - short) as u64));
    assert_eq!(doc["skipped_short_frames"].as_u64(), Some(short as u64));
    let executors = doc["executors"].as_object().unwrap();
    let mut want = vec!["userspace eBPF (interp)", "userspace eBPF (JIT)", "Wasm (wasmtime)"];
    if doc["kernel"] == true || ci() {
        want.push("Linux kernel");
    }
    for name in want {
        let row = &executors[name];
        assert_eq!(row["agrees"], true, "{name}: {row}");
        assert!(row["ns_per_packet"].as_f64().is_some_and(|ns| ns > 0.0), "{name}: {row}");
        if doc["kernel"] == true {
            assert!(row["vs_kernel"].as_f64().is_some(), "{name}: {row}");
        }
    }

    // Clear errors: no capture, a program that does not exist, a file that is not an object.
    let out = duet(&["bench", bpf.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--pcap"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = duet(&[&args[..], &["--program", "nope"]].concat());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no program `nope`") && err.contains("firewall"), "{err}");
    let out = duet(&["bench", pcap.to_str().unwrap(), "--pcap", pcap.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}
