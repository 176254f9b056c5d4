//! The socket-buffer hooks of the SDK (`#[duet::classifier]`, `#[duet::socket_filter]`,
//! `#[duet::cgroup_skb]`), end to end with the real `duet` binary: `examples/skbguard` is built
//! with `duet build`, each of its three programs runs over the packet corpus in duet's
//! interpreter, its JIT and the Wasm host (`duet run`) and in the kernel (`duet test-run`,
//! `BPF_PROG_TEST_RUN`), and all four must give the same results, the same maps and the same
//! packets. The kernel hands socket filters and cgroup skb programs the packet from its network
//! header and returns it with the Ethernet header zeroed; duet returns the frame as given, so for
//! those two hooks the kernel's first 14 bytes are not compared.
//!
//! The kernel part needs root (or CAP_BPF + CAP_NET_ADMIN); elsewhere it says loudly that it
//! skipped, and under `CI=true` it fails instead.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use duet::testing::{tcp_frame, udp_frame};
use serde_json::{Value as Json, json};

const DUET: &str = env!("CARGO_BIN_EXE_duet");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
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

/// `examples/skbguard`, built once per test process: (`.bpf.o`, `.wasm`).
fn artifacts() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = root().join("examples/skbguard");
        let stdout = duet(&["build", "--quiet", dir.to_str().unwrap()]);
        let bpf = dir.join("target/duet/skbguard.bpf.o");
        let wasm = dir.join("target/duet/skbguard.wasm");
        assert_eq!(stdout.lines().collect::<Vec<_>>(), [bpf.to_str().unwrap(), wasm.to_str().unwrap()]);
        (bpf, wasm)
    })
}

fn scratch(name: &str) -> PathBuf {
    let dir = root().join("target/tmp/skb-hooks");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Whether the kernel test-runs an skb program on `frame`: it refuses frames shorter than an
/// Ethernet header, and IPv4 or IPv6 frames whose network header is cut short (EINVAL).
fn kernel_accepts(frame: &[u8]) -> bool {
    let net = frame.len().saturating_sub(14);
    match frame.get(12..14) {
        Some([0x08, 0x00]) => net >= 20,
        Some([0x86, 0xdd]) => net >= 40,
        Some(_) => true,
        None => false,
    }
}

/// The packet corpus (the frames the kernel accepts) and frames aimed at each program's
/// branches.
fn frames() -> Vec<Vec<u8>> {
    let mut frames: Vec<Vec<u8>> =
        duet_testdata::packets::corpus().into_iter().map(|(_, p)| p).filter(|p| kernel_accepts(p)).collect();
    let mut valid_sum = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53, 4);
    let sum = ip_checksum(&valid_sum[14..34]);
    valid_sum[24..26].copy_from_slice(&sum.to_be_bytes());
    let mut ttl_one = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53, 0);
    ttl_one[22] = 1;
    let mut broadcast = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53, 0);
    broadcast[..6].fill(0xff);
    frames.extend([
        valid_sum,
        ttl_one,
        broadcast,
        tcp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1000, 23, 0), // telnet: the classifier drops it
        tcp_frame([10, 0, 0, 1], [10, 9, 9, 9], 1000, 80, 0), // blocked destination
        udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53, 200), // socket filter keeps 64 bytes
    ]);
    frames
}

fn ip_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn run_json(args: &[&str]) -> Json {
    serde_json::from_str(&duet(args)).unwrap()
}

/// Whether this process may use the kernel; says so loudly when not.
fn kernel_available() -> bool {
    match duet_kernel::check_access() {
        Ok(()) => true,
        Err(err) => {
            assert!(!ci(), "kernel part of the skb hook tests cannot run: {err} (CI=true makes this a failure)");
            eprintln!("\n!!! SKIPPED the kernel part of the skb hook tests: {err} !!!\n");
            false
        }
    }
}

/// Runs `program` over the corpus in every executor and checks they agree; returns the VM's
/// output.
fn check_everywhere(program: &str, l2_packets: bool) -> Json {
    let (bpf, wasm) = artifacts();
    let frames = frames();
    let pcap = scratch(&format!("{program}.pcap"));
    duet_testdata::packets::write_pcap(std::fs::File::create(&pcap).unwrap(), &frames).unwrap();
    // One file per program: the tests run in parallel, and a shared file is rewritten under a
    // reader (seen once as "EOF while parsing").
    let maps_in = scratch(&format!("{program}.maps.json"));
    std::fs::write(&maps_in, json!({"BLOCKED": {"0a090909": "01"}}).to_string()).unwrap();
    let (bpf, wasm, pcap, maps_in) =
        (bpf.to_str().unwrap(), wasm.to_str().unwrap(), pcap.to_str().unwrap(), maps_in.to_str().unwrap());
    let common = ["--pcap", pcap, "--program", program, "--json", "--maps-in", maps_in];
    let user = |artifact: &str, engine: &str| {
        let mut args = vec!["run", artifact, "--engine", engine, "--deterministic", "--cpus", "1"];
        args.extend(common);
        run_json(&args)
    };
    let vm = user(bpf, "interp");
    assert_eq!(vm["results"].as_array().unwrap().len(), frames.len());
    assert_eq!(user(bpf, "jit"), vm, "{program}: the JIT and the interpreter disagree");
    assert_eq!(user(wasm, "wasm"), vm, "{program}: Wasm and the interpreter disagree");
    if kernel_available() {
        let mut args = vec!["test-run", bpf];
        args.extend(common);
        let kernel = run_json(&args);
        assert_eq!(kernel["results"], vm["results"], "{program}: the kernel's and duet's results");
        assert_eq!(kernel["maps"], vm["maps"], "{program}: the kernel's and duet's maps");
        let packets = |doc: &Json, skip: usize| -> Vec<String> {
            doc["packets"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()[skip * 2..].to_owned()).collect()
        };
        let skip = if l2_packets { 0 } else { 14 };
        assert_eq!(packets(&kernel, skip), packets(&vm, skip), "{program}: the kernel's and duet's packets");
    }
    vm
}

const TC_ACT_OK: u64 = 0;
const TC_ACT_SHOT: u64 = 2;
const TC_ACT_UNSPEC: u64 = 0xffff_ffff;

#[test]
fn classifier_agrees_everywhere() {
    let vm = check_everywhere("tc_ttl", true);
    let results: Vec<u64> = vm["results"].as_array().unwrap().iter().map(|r| r.as_u64().unwrap()).collect();
    let n = results.len();
    // The added frames: TTL lowered with a valid checksum, TTL 1 dropped, broadcast lowered,
    // telnet dropped, blocked destination (the classifier ignores BLOCKED) and big UDP lowered.
    assert_eq!(results[n - 6..], [TC_ACT_OK, TC_ACT_SHOT, TC_ACT_OK, TC_ACT_SHOT, TC_ACT_OK, TC_ACT_OK]);
    assert!(results.contains(&TC_ACT_UNSPEC), "the corpus has frames that are not IPv4");
    let rewritten = hex_bytes(vm["packets"][n - 6].as_str().unwrap());
    assert_eq!(rewritten[22], 63, "the TTL is lowered");
    assert_eq!(ip_checksum(&rewritten[14..34]), 0, "the IPv4 header checksum stays valid");
    // bpf_csum_diff checked each IPv4 header as it came: the one frame with a right checksum
    // and at least the added ones without (check_everywhere compared the counts everywhere).
    let checksums = &vm["maps"]["CHECKSUMS"];
    let count = |k: &str| u64::from_le_bytes(hex_bytes(checksums[k].as_str().unwrap()).try_into().unwrap());
    assert!(count("01000000") >= 1, "{checksums}");
    assert!(count("00000000") >= 5, "{checksums}");
}

#[test]
fn socket_filter_agrees_everywhere() {
    let vm = check_everywhere("udp_only", false);
    let results = vm["results"].as_array().unwrap();
    let n = results.len();
    assert_eq!(results[n - 6..], [json!(32), json!(28), json!(28), json!(0), json!(0), json!(64)]);
}

#[test]
fn cgroup_skb_agrees_everywhere() {
    let vm = check_everywhere("egress_guard", false);
    let results = vm["results"].as_array().unwrap();
    let n = results.len();
    // The blocked destination is dropped; the big UDP packet after it passes.
    assert_eq!(results[n - 2..], [json!(0), json!(1)]);
    assert_eq!(vm["maps"]["GUARD"]["00000000"], json!("0100000000000000"), "one packet dropped");
}

#[test]
fn wasm_exports_the_skb_kinds_and_the_vm_refuses_what_the_kernel_refuses() {
    let (bpf, wasm) = artifacts();
    let inspect = duet(&["inspect", bpf.to_str().unwrap(), "--no-disasm"]);
    for (name, section) in [("tc_ttl", "classifier"), ("udp_only", "socket"), ("egress_guard", "cgroup_skb/egress")] {
        assert!(inspect.lines().any(|l| l.contains(name) && l.contains(section)), "{name} in {section}:\n{inspect}");
    }
    let bytes = std::fs::read(wasm).unwrap();
    let module = duet_wasm::WasmModule::load(&bytes, &duet_wasm::WasmOptions::default()).unwrap();
    let mut kinds: Vec<(String, String)> =
        module.programs().iter().map(|p| (p.export.clone(), p.kind.to_string())).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            ("duet_prog_cgroup_skb_egress_guard".to_owned(), "cgroup_skb".to_owned()),
            ("duet_prog_classifier_tc_ttl".to_owned(), "classifier".to_owned()),
            ("duet_prog_socket_filter_udp_only".to_owned(), "socket_filter".to_owned()),
        ]
    );
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}
