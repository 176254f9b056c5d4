//! Everyday Rust in a BPF program: `examples/everyday` zeroes a 64-byte array, copies a struct
//! with padding by value and compares slices, which LLVM compiles to `memset`, `memcpy` and
//! `memcmp`/`bcmp` calls. Without the SDK's definitions of those functions the object does not
//! even load ("function ... not found while relocating"); with them it builds, passes duet's
//! verifier and the kernel's, and gives the same results and maps in the kernel, the interpreter,
//! the JIT and Wasm.
//!
//! The kernel part needs root (or CAP_BPF); elsewhere it says loudly that it skipped, and under
//! `CI=true` it fails instead.

use std::path::{Path, PathBuf};
use std::process::Command;

use duet::testing::udp_frame;
use serde_json::{Value as Json, json};

const DUET: &str = env!("CARGO_BIN_EXE_duet");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn duet(args: &[&str]) -> String {
    let out = Command::new(DUET).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "`duet {}` failed:\n{}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn zeroed_arrays_padded_copies_and_slice_compares_build_verify_and_run_everywhere() {
    let dir = root().join("examples/everyday");
    let stdout = duet(&["build", "--quiet", dir.to_str().unwrap()]);
    let bpf = dir.join("target/duet/everyday.bpf.o");
    let wasm = dir.join("target/duet/everyday.wasm");
    assert_eq!(stdout.lines().collect::<Vec<_>>(), [bpf.to_str().unwrap(), wasm.to_str().unwrap()]);
    let (bpf, wasm) = (bpf.to_str().unwrap(), wasm.to_str().unwrap());

    // Only helper calls are left: every `memset`/`memcpy`/`memcmp` resolved to the SDK's.
    let inspect = duet(&["inspect", bpf, "--program", "everyday"]);
    for line in inspect.lines().filter(|l| l.contains(": call ")) {
        let id: u32 = line.rsplit(' ').next().unwrap().parse().unwrap_or_else(|_| panic!("not a helper: {line}"));
        assert!([1, 2].contains(&id), "unexpected call: {line}");
    }
    assert!(duet(&["verify", bpf]).contains("everyday: verified"));

    let mut broadcast = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53, 0);
    broadcast[..6].fill(0xff);
    let first = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53, 10);
    let frames = vec![broadcast, first.clone(), first, udp_frame([1, 1, 1, 1], [2, 2, 2, 2], 7, 9, 0), vec![0; 20]];
    let scratch = root().join("target/tmp/everyday");
    std::fs::create_dir_all(&scratch).unwrap();
    let pcap = scratch.join("frames.pcap");
    duet_testdata::packets::write_pcap(std::fs::File::create(&pcap).unwrap(), &frames).unwrap();
    let pcap = pcap.to_str().unwrap();
    let run = |args: &[&str]| -> Json { serde_json::from_str(&duet(args)).unwrap() };
    let vm = run(&["run", bpf, "--pcap", pcap, "--json", "--deterministic", "--cpus", "1"]);
    assert_eq!(vm["results"], json!([2, 2, 2, 2, 2]));
    // Outcomes: one broadcast, one repeat of the previous frame's head, three others.
    assert_eq!(
        vm["maps"]["OUTCOMES"],
        json!({"00000000": "0100000000000000", "01000000": "0100000000000000", "02000000": "0300000000000000"})
    );
    let jit = run(&["run", bpf, "--engine", "jit", "--pcap", pcap, "--json", "--deterministic", "--cpus", "1"]);
    assert_eq!(jit, vm, "JIT and interpreter");
    let in_wasm = run(&["run", wasm, "--pcap", pcap, "--json", "--deterministic", "--cpus", "1"]);
    // The object's global data (`.rodata`, the broadcast address) is a map only in eBPF.
    let mut without_globals = vm.clone();
    without_globals["maps"].as_object_mut().unwrap().retain(|name, _| !name.starts_with('.'));
    assert_eq!(in_wasm, without_globals, "Wasm and interpreter");
    match duet_kernel::check_access() {
        Ok(()) => {
            let kernel = run(&["test-run", bpf, "--pcap", pcap, "--json"]);
            assert_eq!((&kernel["results"], &kernel["maps"]), (&vm["results"], &vm["maps"]), "kernel and VM");
        }
        Err(err) => {
            assert!(std::env::var("CI").map_or(true, |v| v != "true"), "{err} (CI=true makes this a failure)");
            eprintln!("\n!!! SKIPPED the kernel part of the everyday Rust test: {err} !!!\n");
        }
    }
}
