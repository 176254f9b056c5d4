//! Tail calls through a prog array, end to end with the real `duet` binary: `examples/dispatch`
//! (an XDP entry that hands each packet to a program for its protocol, one of which tail-calls a
//! third) is built with `duet build`, its slots are filled with `--tail-call MAP:SLOT=PROGRAM`,
//! and it runs over the packet corpus in duet's interpreter, its JIT, the Wasm host (`duet run`)
//! and the kernel (`duet test-run`): all four must give the same verdicts and maps, with every
//! slot filled and with some empty.
//!
//! The kernel part needs root (or CAP_BPF); elsewhere it says loudly that it skipped, and under
//! `CI=true` it fails instead.

use std::path::{Path, PathBuf};
use std::process::Command;

use duet::testing::{tcp_frame, udp_frame};
use serde_json::Value as Json;

const DUET: &str = env!("CARGO_BIN_EXE_duet");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(DUET).args(args).output().unwrap()
}

fn duet_json(args: &[&str]) -> Json {
    let out = run(args);
    assert!(out.status.success(), "`duet {}` failed:\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Whether this process may use the kernel; says so loudly when not.
fn kernel_available() -> bool {
    match duet_kernel::check_access() {
        Ok(()) => true,
        Err(err) => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(!ci, "kernel part of the tail-call test cannot run: {err} (CI=true makes this a failure)");
            eprintln!("\n!!! SKIPPED the kernel part of the tail-call test: {err} !!!\n");
            false
        }
    }
}

/// The corpus frames the kernel test-runs (at least an Ethernet header) and frames for each
/// program's branches; returns the capture's path.
fn capture() -> PathBuf {
    let mut frames: Vec<Vec<u8>> =
        duet_testdata::packets::corpus().into_iter().map(|(_, f)| f).filter(|f| f.len() >= 14).collect();
    frames.extend([
        tcp_frame([10, 0, 0, 1], [10, 0, 0, 2], 4000, 23, 0), // tcp drops telnet
        tcp_frame([10, 0, 0, 1], [10, 0, 0, 2], 4000, 80, 0), // tcp passes
        udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 4000, 53, 20), // udp, then dns passes it
        udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 4000, 53, 4), // dns drops a runt
        udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 4000, 123, 48), // udp passes
    ]);
    let dir = root().join("target/tmp/tail-calls");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("dispatch.pcap");
    duet_testdata::packets::write_pcap(std::fs::File::create(&path).unwrap(), &frames).unwrap();
    path
}

/// `duet run` in each engine and `duet test-run`, with `slots`; all must agree. The VM's output.
fn everywhere(bpf: &str, wasm: &str, pcap: &str, slots: &[&str]) -> Json {
    let mut common = vec!["--program", "dispatch", "--pcap", pcap, "--json"];
    for slot in slots {
        common.extend(["--tail-call", slot]);
    }
    let user = |artifact: &str, engine: &str| {
        let mut args = vec!["run", artifact, "--engine", engine, "--cpus", "1"];
        args.extend(&common);
        duet_json(&args)
    };
    let vm = user(bpf, "interp");
    assert_eq!(user(bpf, "jit"), vm, "{slots:?}: the JIT and the interpreter disagree");
    assert_eq!(user(wasm, "wasm"), vm, "{slots:?}: Wasm and the interpreter disagree");
    if kernel_available() {
        let mut args = vec!["test-run", bpf];
        args.extend(&common);
        let kernel = duet_json(&args);
        assert_eq!(kernel["results"], vm["results"], "{slots:?}: the kernel's and duet's verdicts");
        assert_eq!(kernel["maps"], vm["maps"], "{slots:?}: the kernel's and duet's maps");
    }
    vm
}

fn seen(doc: &Json, slot: u8) -> u64 {
    let hex = doc["maps"]["SEEN"][format!("{slot:02x}000000")].as_str().unwrap();
    let bytes: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    u64::from_le_bytes(bytes.try_into().unwrap())
}

#[test]
fn tail_calls_agree_in_every_executor() {
    let dir = root().join("examples/dispatch");
    let out = run(&["build", "--quiet", dir.to_str().unwrap()]);
    assert!(out.status.success(), "duet build: {}", String::from_utf8_lossy(&out.stderr));
    let (bpf, wasm) = (dir.join("target/duet/dispatch.bpf.o"), dir.join("target/duet/dispatch.wasm"));
    let (bpf, wasm) = (bpf.to_str().unwrap(), wasm.to_str().unwrap());
    let pcap = capture();
    let pcap = pcap.to_str().unwrap();

    let all = everywhere(bpf, wasm, pcap, &["BY_PROTOCOL:0=tcp", "BY_PROTOCOL:1=udp", "BY_PROTOCOL:2=dns"]);
    let results: Vec<u64> = all["results"].as_array().unwrap().iter().map(|r| r.as_u64().unwrap()).collect();
    let n = results.len();
    // XDP_DROP 1, XDP_PASS 2: telnet dropped by tcp, web passed, a query passed by dns after udp,
    // a runt dropped by dns, NTP passed by udp.
    assert_eq!(results[n - 5..], [1, 2, 2, 1, 2]);
    assert_eq!(seen(&all, 0), 0, "every slot was filled");
    assert!(seen(&all, 1) >= 2 && seen(&all, 2) >= 3 && seen(&all, 3) >= 2, "{}", all["maps"]);

    // Without the dns program the udp program's tail call falls through; without tcp, dispatch's.
    let some = everywhere(bpf, wasm, pcap, &["BY_PROTOCOL:1=udp"]);
    let results: Vec<u64> = some["results"].as_array().unwrap().iter().map(|r| r.as_u64().unwrap()).collect();
    assert_eq!(results[n - 5..], [2, 2, 2, 2, 2], "nothing drops");
    assert_eq!(seen(&some, 1), 0);
    assert_eq!(seen(&some, 0), seen(&all, 1), "each TCP packet fell through in dispatch");
    assert_eq!(seen(&some, 3), 0);

    // A slot naming no program of the object is an error that says so.
    let out = run(&["run", bpf, "--program", "dispatch", "--pcap", pcap, "--tail-call", "BY_PROTOCOL:0=nope"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope") && err.contains("--tail-call"), "{err}");
    let out = run(&["run", bpf, "--pcap", pcap, "--tail-call", "BY_PROTOCOL=tcp"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("MAP:SLOT=PROGRAM"));
}
