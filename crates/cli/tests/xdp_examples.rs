//! XDP examples whose programs go beyond one pass over a fixed packet, end to end with the real
//! `duet` binary, each built with `duet build` and run over the packet corpus in duet's
//! interpreter, its JIT, the Wasm host (`duet run`) and the kernel (`duet test-run`), which must
//! all give the same verdicts, maps and packets:
//!
//! - tail calls through a prog array: `examples/dispatch` (an entry that hands each packet to a
//!   program for its protocol, one of which tail-calls a third), its slots filled with
//!   `--tail-call MAP:SLOT=PROGRAM`, every slot filled and some empty;
//! - packets that grow and shrink: `examples/tunnel` (IPIP encapsulation with
//!   `bpf_xdp_adjust_head(-20)` and a `csum_diff` checksum, decapsulation, trimming with
//!   `bpf_xdp_adjust_tail`).
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
            assert!(!ci, "kernel part of the XDP example tests cannot run: {err} (CI=true makes this a failure)");
            eprintln!("\n!!! SKIPPED the kernel part of the XDP example tests: {err} !!!\n");
            false
        }
    }
}

/// The corpus frames the kernel test-runs (at least an Ethernet header) and `extra`, frames for
/// the programs' branches, written to `<name>.pcap`; returns its path.
fn capture(name: &str, extra: Vec<Vec<u8>>) -> PathBuf {
    let mut frames: Vec<Vec<u8>> =
        duet_testdata::packets::corpus().into_iter().map(|(_, f)| f).filter(|f| f.len() >= 14).collect();
    frames.extend(extra);
    let dir = root().join("target/tmp/xdp-examples");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.pcap"));
    duet_testdata::packets::write_pcap(std::fs::File::create(&path).unwrap(), &frames).unwrap();
    path
}

/// Builds `examples/<name>`: its `.bpf.o` and `.wasm`.
fn build(name: &str) -> (String, String) {
    let dir = root().join("examples").join(name);
    let out = run(&["build", "--quiet", dir.to_str().unwrap()]);
    assert!(out.status.success(), "duet build: {}", String::from_utf8_lossy(&out.stderr));
    let artifact = |ext: &str| dir.join(format!("target/duet/{name}.{ext}")).to_str().unwrap().to_owned();
    (artifact("bpf.o"), artifact("wasm"))
}

/// `duet run` of `program` in each engine and `duet test-run`, with `args` (slots, maps); all
/// must agree on verdicts, maps and packets. The VM's output.
fn everywhere(bpf: &str, wasm: &str, pcap: &str, program: &str, args: &[&str]) -> Json {
    let mut common = vec!["--program", program, "--pcap", pcap, "--json"];
    common.extend(args);
    let slots = args;
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
        assert_eq!(kernel["packets"], vm["packets"], "{slots:?}: the kernel's and duet's packets");
    }
    vm
}

fn results(doc: &Json) -> Vec<u64> {
    doc["results"].as_array().unwrap().iter().map(|r| r.as_u64().unwrap()).collect()
}

fn packet(doc: &Json, i: usize) -> Vec<u8> {
    let hex = doc["packets"][i].as_str().unwrap();
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

fn counter(doc: &Json, map: &str, slot: u8) -> u64 {
    let hex = doc["maps"][map][format!("{slot:02x}000000")].as_str().unwrap();
    let bytes: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    u64::from_le_bytes(bytes.try_into().unwrap())
}

#[test]
fn tail_calls_agree_in_every_executor() {
    let (bpf, wasm) = build("dispatch");
    let (bpf, wasm) = (bpf.as_str(), wasm.as_str());
    let pcap = capture(
        "dispatch",
        vec![
            tcp_frame([10, 0, 0, 1], [10, 0, 0, 2], 4000, 23, 0), // tcp drops telnet
            tcp_frame([10, 0, 0, 1], [10, 0, 0, 2], 4000, 80, 0), // tcp passes
            udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 4000, 53, 20), // udp, then dns passes it
            udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 4000, 53, 4), // dns drops a runt
            udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 4000, 123, 48), // udp passes
        ],
    );
    let pcap = pcap.to_str().unwrap();
    let slots = |s: &[&'static str]| -> Vec<&'static str> { s.iter().flat_map(|s| ["--tail-call", *s]).collect() };

    let all = everywhere(
        bpf,
        wasm,
        pcap,
        "dispatch",
        &slots(&["BY_PROTOCOL:0=tcp", "BY_PROTOCOL:1=udp", "BY_PROTOCOL:2=dns"]),
    );
    let verdicts = results(&all);
    let n = verdicts.len();
    // XDP_DROP 1, XDP_PASS 2: telnet dropped by tcp, web passed, a query passed by dns after udp,
    // a runt dropped by dns, NTP passed by udp.
    assert_eq!(verdicts[n - 5..], [1, 2, 2, 1, 2]);
    assert_eq!(counter(&all, "SEEN", 0), 0, "every slot was filled");
    assert!(
        counter(&all, "SEEN", 1) >= 2 && counter(&all, "SEEN", 2) >= 3 && counter(&all, "SEEN", 3) >= 2,
        "{}",
        all["maps"]
    );

    // Without the dns program the udp program's tail call falls through; without tcp, dispatch's.
    let some = everywhere(bpf, wasm, pcap, "dispatch", &slots(&["BY_PROTOCOL:1=udp"]));
    assert_eq!(results(&some)[n - 5..], [2, 2, 2, 2, 2], "nothing drops");
    assert_eq!(counter(&some, "SEEN", 1), 0);
    assert_eq!(counter(&some, "SEEN", 0), counter(&all, "SEEN", 1), "each TCP packet fell through in dispatch");
    assert_eq!(counter(&some, "SEEN", 3), 0);

    // A slot naming no program of the object is an error that says so.
    let out = run(&["run", bpf, "--program", "dispatch", "--pcap", pcap, "--tail-call", "BY_PROTOCOL:0=nope"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope") && err.contains("--tail-call"), "{err}");
    let out = run(&["run", bpf, "--pcap", pcap, "--tail-call", "BY_PROTOCOL=tcp"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("MAP:SLOT=PROGRAM"));
}

/// An IPv4 frame from `src` to `dst` with protocol `proto` and `payload`.
fn ipv4_frame(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 2, 2, 2, 2, 2, 4, 4, 4, 4, 4, 4, 0x08, 0x00];
    let total = ((20 + payload.len()) as u16).to_be_bytes();
    f.extend([0x45, 0, total[0], total[1], 0, 1, 0, 0, 64, proto, 0, 0]);
    f.extend(src);
    f.extend(dst);
    f.extend(payload);
    f
}

#[test]
fn packets_grow_and_shrink_alike_in_every_executor() {
    let (bpf, wasm) = build("tunnel");
    let (bpf, wasm) = (bpf.as_str(), wasm.as_str());
    let to_vip = udp_frame([10, 0, 0, 1], [10, 0, 0, 100], 4000, 80, 30);
    let inner = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 0);
    let ipip = ipv4_frame([192, 168, 0, 1], [172, 16, 0, 7], 4, &inner[14..]);
    let pcap = capture(
        "tunnel",
        vec![
            to_vip.clone(),
            udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 4000, 80, 30), // not a VIP
            ipip,
            udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 4000, 53, 1400), // sampled down to 128 bytes
        ],
    );
    let pcap = pcap.to_str().unwrap();
    let dir = root().join("target/tmp/xdp-examples");
    let maps = dir.join("tunnel-maps.json");
    std::fs::write(&maps, r#"{"CONFIG": {"00000000": "c0a80001"}, "VIPS": {"0a000064": "ac100007"}}"#).unwrap();
    let maps_in = ["--maps-in", maps.to_str().unwrap()];

    let encap = everywhere(bpf, wasm, pcap, "encap", &maps_in);
    let n = results(&encap).len();
    assert_eq!(results(&encap)[n - 4..], [3, 2, 2, 2], "the VIP's packet goes back out (XDP_TX)");
    let out = packet(&encap, n - 4);
    assert_eq!(out.len(), to_vip.len() + 20, "an outer header pushed in front");
    assert_eq!((out[23], &out[30..34]), (4, &[172, 16, 0, 7][..]), "IPIP to the backend");
    assert_eq!(out[34..], to_vip[14..], "the inner packet follows");
    assert!(counter(&encap, "STATS", 0) >= 1);

    let decap = everywhere(bpf, wasm, pcap, "decap", &maps_in);
    let out = packet(&decap, n - 2);
    assert_eq!(out.len(), inner.len(), "the outer header popped");
    assert_eq!(out[14..], inner[14..], "the inner packet, behind the frame's Ethernet header");
    assert_eq!(counter(&decap, "STATS", 1), 1);

    let sample = everywhere(bpf, wasm, pcap, "sample", &maps_in);
    assert_eq!(packet(&sample, n - 1).len(), 128, "trimmed with adjust_tail");
    assert!(counter(&sample, "STATS", 2) >= 1);
}
