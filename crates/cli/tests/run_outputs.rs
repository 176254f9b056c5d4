//! `duet run` as a tool to compare executors with: captures streamed (memory flat whatever their
//! size), non-zero exits when packets trap, runs stopped after repeated deadline faults, the
//! JSON document (results, packets as the program left them, ring-buffer records, maps),
//! `--pcap-out`, and program and engine selection errors. Through the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod scratch;
use scratch::Scratch;

fn object(name: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bpf").join(name);
    if path.exists() {
        return Some(path);
    }
    let msg = format!("{} is missing; run `cargo xtask build-bpf`", path.display());
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg} (CI=true makes this a failure)");
    eprintln!("\n!!! SKIPPED: {msg} !!!\n");
    None
}

fn corpus_pcap(scratch: &Scratch) -> (PathBuf, Vec<Vec<u8>>) {
    let frames: Vec<Vec<u8>> = duet_testdata::packets::corpus().into_iter().map(|(_, f)| f).collect();
    let mut pcap = Vec::new();
    duet_testdata::packets::write_pcap(&mut pcap, &frames).expect("write pcap");
    (scratch.file("corpus.pcap", &pcap), frames)
}

fn duet(args: &[&str], paths: &[&Path], scratch: &Scratch) -> Output {
    Command::new(env!("CARGO_BIN_EXE_duet"))
        .args(args)
        .args(paths)
        .env("XDG_CACHE_HOME", &scratch.0)
        .output()
        .expect("run duet")
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// A duet ABI v1 module with one XDP program whose body is `body` (params `$data`, `$len`).
fn wasm_program(body: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
             (memory (export "memory") 1)
             (func (export "duet_abi_version") (result i32) (i32.const 1))
             (func (export "duet_buffer") (param i32) (result i32) (i32.const 1024))
             (func (export "duet_prog_xdp_prog") (param $data i32) (param $len i32) (result i32) {body}))"#
    ))
    .expect("WAT parses")
}

/// Peak resident memory in KiB of `duet run <obj> --pcap <pcap> <extra>`, by `/usr/bin/time`.
fn peak_rss_kib(obj: &Path, pcap: &Path, extra: &[&str], scratch: &Scratch) -> Option<u64> {
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        eprintln!("\n!!! SKIPPED: /usr/bin/time is missing; cannot measure peak memory !!!\n");
        return None;
    }
    let report = scratch.0.join("time.txt");
    let out = Command::new(time)
        .args(["-f", "%M", "-o"])
        .arg(&report)
        .arg(env!("CARGO_BIN_EXE_duet"))
        .arg("run")
        .arg(obj)
        .arg("--pcap")
        .arg(pcap)
        .args(extra)
        .stdout(std::process::Stdio::null())
        .output()
        .expect("run duet under /usr/bin/time");
    assert!(out.status.success(), "{}", text(&out).1);
    let report = std::fs::read_to_string(&report).expect("time's report");
    Some(report.lines().last().and_then(|l| l.trim().parse().ok()).expect("max RSS in KiB"))
}

#[test]
fn memory_stays_flat_whatever_the_capture_size() {
    let Some(obj) = object("parse.o") else { return };
    let scratch = Scratch::new("flat");
    let frames: Vec<Vec<u8>> = duet_testdata::packets::corpus().into_iter().map(|(_, f)| f).collect();
    let write = |name: &str, n: usize| {
        let many: Vec<Vec<u8>> = frames.iter().cycle().take(n).cloned().collect();
        let mut pcap = Vec::new();
        duet_testdata::packets::write_pcap(&mut pcap, &many).expect("write pcap");
        scratch.file(name, &pcap)
    };
    // Both captures are larger than the reader's fixed 8 MB buffer; the larger is three times
    // the smaller.
    let small = write("small.pcap", 120_000);
    let large = write("large.pcap", 360_000);
    assert!(std::fs::metadata(&small).unwrap().len() > 8 << 20);
    assert!(std::fs::metadata(&large).unwrap().len() > 24 << 20, "the large capture is tens of MB");
    for extra in [&[][..], &["--json"][..]] {
        let Some(base) = peak_rss_kib(&obj, &small, extra, &scratch) else { return };
        let Some(peak) = peak_rss_kib(&obj, &large, extra, &scratch) else { return };
        eprintln!("{extra:?}: peak RSS {base} KiB for 120k packets, {peak} KiB for 360k packets");
        assert!(peak < base + 4 * 1024, "{extra:?}: {peak} KiB for 360k packets vs {base} KiB for 120k");
    }
}

#[test]
fn json_has_results_packets_ring_buffer_records_and_maps() {
    let scratch = Scratch::new("json");
    let (pcap, frames) = corpus_pcap(&scratch);
    if let Some(obj) = object("adjust.o") {
        let out = duet(&["run", "--json", "--deterministic", "--pcap"], &[&pcap, &obj], &scratch);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}");
        let doc: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
        let packets = doc["packets"].as_array().expect("packets");
        assert_eq!(packets.len(), frames.len());
        let changed = packets
            .iter()
            .zip(&frames)
            .filter(|(p, f)| p.as_str().map(|p| duet_testdata::parse_hex_bytes(p).unwrap()) != Some(f.to_vec()))
            .count();
        assert!(changed > 0, "adjust.o rewrites packets, and the output shows it");
    }
    if let Some(obj) = object("ringbuf.o") {
        let out = duet(&["run", "--json", "--deterministic", "--pcap"], &[&pcap, &obj], &scratch);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}");
        let doc: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
        let rings = doc["ringbufs"].as_object().expect("ringbufs");
        let records: usize = rings.values().map(|r| r.as_array().expect("records").len()).sum();
        assert!(records > 0, "{rings:?}");
        assert!(rings.values().flat_map(|r| r.as_array().unwrap()).all(|r| r.is_string()), "records are hex");
    }
}

#[test]
fn pcap_out_writes_the_rewritten_packets_with_their_verdicts() {
    let Some(obj) = object("adjust.o") else { return };
    let scratch = Scratch::new("pcap-out");
    let (pcap, frames) = corpus_pcap(&scratch);
    let written = scratch.0.join("out.pcapng");
    let out = duet(&["run", "--json", "--pcap"], &[&pcap, &obj, Path::new("--pcap-out"), &written], &scratch);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    // Read it back: the same packets as the JSON, and the verdict in each comment.
    let replay = duet(&["run", "--json", "--pcap"], &[&written, &object("parse.o").unwrap_or(obj.clone())], &scratch);
    assert!(replay.status.success(), "the written capture reads back: {}", text(&replay).1);
    let bytes = std::fs::read(&written).expect("pcap-out written");
    let mut reader = pcap_file::pcapng::PcapNgReader::new(&bytes[..]).expect("pcapng");
    let mut n = 0;
    while let Some(block) = reader.next_block() {
        if let pcap_file::pcapng::Block::EnhancedPacket(p) = block.expect("block") {
            let want = doc["packets"][n].as_str().map(|h| duet_testdata::parse_hex_bytes(h).unwrap());
            assert_eq!(Some(p.data.to_vec()), want, "packet {n}");
            let verdict = match doc["results"][n].as_u64() {
                Some(2) => "XDP_PASS",
                Some(1) => "XDP_DROP",
                Some(3) => "XDP_TX",
                _ => "",
            };
            let comment = p.options.iter().find_map(|o| match o {
                pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption::Comment(c) => Some(c.to_string()),
                _ => None,
            });
            if !verdict.is_empty() {
                assert_eq!(comment.as_deref(), Some(verdict), "packet {n}");
            }
            n += 1;
        }
    }
    assert_eq!(n, frames.len());
}

#[test]
fn trapped_packets_make_the_run_fail_with_a_summary() {
    let scratch = Scratch::new("traps");
    let (pcap, frames) = corpus_pcap(&scratch);
    let wasm = scratch.file("trap.wasm", &wasm_program("(unreachable)"));
    let out = duet(&["run", "--pcap"], &[&pcap, &wasm], &scratch);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains(&format!("{} of {} packets trapped", frames.len(), frames.len())), "{stderr}");
    assert!(stdout.lines().any(|l| l.split_whitespace().eq(["trap", &frames.len().to_string()])), "{stdout}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_program_that_never_returns_stops_the_run() {
    let scratch = Scratch::new("deadline");
    let (pcap, frames) = corpus_pcap(&scratch);
    assert!(frames.len() > 10);
    let wasm = scratch.file("loop.wasm", &wasm_program("(loop $l (br $l)) (i32.const 2)"));
    let started = std::time::Instant::now();
    let out = duet(&["run", "--pcap"], &[&pcap, &wasm], &scratch);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("deadline on 3 packets in a row (0, 1, 2)"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "stopped early: {:?}", started.elapsed());
}

#[test]
fn program_and_engine_selection_errors_are_explicit() {
    let scratch = Scratch::new("select");
    let (pcap, _) = corpus_pcap(&scratch);
    let wasm = scratch.file("pass.wasm", &wasm_program("(i32.const 2)"));
    let fails_with = |args: &[&str], paths: &[&Path], needle: &str| {
        let out = duet(args, paths, &scratch);
        let (_, stderr) = text(&out);
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    };
    fails_with(&["run", "--engine", "interp", "--pcap"], &[&pcap, &wasm], "runs only in `--engine wasm`");
    fails_with(&["run", "--engine", "jit", "--pcap"], &[&pcap, &wasm], "runs only in `--engine wasm`");
    fails_with(&["run", "--no-verify", "--pcap"], &[&pcap, &wasm], "drop --no-verify");
    fails_with(&["run", "--cpus", "0", "--pcap"], &[&pcap, &wasm], "--cpus");
    if let Some(obj) = object("parse.o") {
        fails_with(&["run", "--cpus", "0", "--pcap"], &[&pcap, &obj], "--cpus");
    }
    if let Some(obj) = object("xdp_rust_firewall.o") {
        // BLOCKLIST is a hash map: one value per key, not a per-CPU list.
        let maps_in = scratch.file("list.json", br#"{"BLOCKLIST": {"0a000001": ["01", "02"]}}"#);
        fails_with(&["run", "--pcap"], &[&pcap, &obj, Path::new("--maps-in"), &maps_in], "not a per-CPU map");
    }
    if let Some(obj) = object("tailcall.o") {
        fails_with(&["run", "--pcap"], &[&pcap, &obj], "choose one with --program: ");
    }
    // And a Wasm program runs by default.
    let out = duet(&["run", "--pcap"], &[&pcap, &wasm], &scratch);
    assert!(out.status.success(), "{}", text(&out).1);
}

#[test]
fn test_run_json_has_the_same_packets_and_ring_buffer_records_as_run() {
    if let Err(err) = duet_kernel::check_access() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "needs the kernel: {err} (CI=true makes this a failure)");
        eprintln!("\n!!! SKIPPED: needs the kernel: {err} !!!\n");
        return;
    }
    let scratch = Scratch::new("test-run");
    // The kernel refuses frames shorter than an Ethernet header; leave them out.
    let frames: Vec<Vec<u8>> =
        duet_testdata::packets::corpus().into_iter().map(|(_, f)| f).filter(|f| f.len() >= 14).collect();
    let mut pcap = Vec::new();
    duet_testdata::packets::write_pcap(&mut pcap, &frames).expect("write pcap");
    let pcap = scratch.file("corpus.pcap", &pcap);
    for name in ["adjust.o", "ringbuf.o"] {
        let Some(obj) = object(name) else { return };
        let json = |cmd: &str, extra: &[&str]| -> serde_json::Value {
            let out = duet(&[&[cmd], extra, &["--json", "--pcap"]].concat(), &[&pcap, &obj], &scratch);
            assert!(out.status.success(), "{cmd} {name}: {}", text(&out).1);
            serde_json::from_str(text(&out).0.trim()).expect("one JSON object")
        };
        let kernel = json("test-run", &[]);
        let vm = json("run", &["--deterministic"]);
        assert_eq!(kernel["packets"].as_array().map(Vec::len), Some(frames.len()), "{name}");
        assert_eq!(kernel["packets"], vm["packets"], "{name}: packets as the program left them");
        assert_eq!(kernel["ringbufs"], vm["ringbufs"], "{name}: ring-buffer records");
    }
}
