//! `duet run` and `duet inspect` end to end, through the real binary, on the BPF corpus
//! (`target/bpf/*.o`, built by `cargo xtask build-bpf`) and generated captures.

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

fn corpus_pcap() -> (Vec<Vec<u8>>, Vec<u8>) {
    let frames: Vec<Vec<u8>> = duet_testdata::packets::corpus().into_iter().map(|(_, f)| f).collect();
    let mut pcap = Vec::new();
    duet_testdata::packets::write_pcap(&mut pcap, &frames).expect("write pcap");
    (frames, pcap)
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn json_output_has_one_result_per_packet_and_every_map() {
    let Some(obj) = object("parse.o") else { return };
    let scratch = Scratch::new("json");
    let (frames, pcap) = corpus_pcap();
    let pcap = scratch.file("corpus.pcap", &pcap);
    let out = Command::new(env!("CARGO_BIN_EXE_duet"))
        .arg("run")
        .arg(&obj)
        .arg("--pcap")
        .arg(&pcap)
        .args(["--json", "--deterministic"])
        .output()
        .expect("run duet");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    let results = doc["results"].as_array().expect("results array");
    assert_eq!(results.len(), frames.len());
    assert!(results.iter().all(|r| r.as_u64().is_some_and(|v| v <= 4)), "XDP verdicts: {results:?}");
    let maps = doc["maps"].as_object().expect("maps object");
    assert!(maps.contains_key("verdict_count") && maps.contains_key("kind_count"), "{maps:?}");
    // The per-verdict counters add up to the number of packets.
    let total: u64 = maps["verdict_count"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| u64::from_le_bytes(hex8(v.as_str().unwrap())))
        .sum();
    assert_eq!(total, frames.len() as u64);
}

fn hex8(s: &str) -> [u8; 8] {
    let bytes = duet_testdata::parse_hex_bytes(s).expect("hex");
    bytes.try_into().expect("8 bytes")
}

#[test]
fn maps_in_seeds_a_blocklist() {
    let Some(obj) = object("xdp_rust_firewall.o") else { return };
    let scratch = Scratch::new("maps-in");
    let (frames, pcap) = corpus_pcap();
    let pcap = scratch.file("corpus.pcap", &pcap);
    let run = |extra: &[&Path]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_duet"));
        cmd.arg("run").arg(&obj).arg("--pcap").arg(&pcap).arg("--json");
        if let Some(path) = extra.first() {
            cmd.arg("--maps-in").arg(path);
        }
        let out = cmd.output().expect("run duet");
        assert!(out.status.success(), "{}", text(&out).1);
        serde_json::from_str::<serde_json::Value>(text(&out).0.trim()).expect("json")
    };
    let before = run(&[]);
    assert!(before["results"].as_array().unwrap().iter().all(|r| r != 1), "nothing is dropped without a blocklist");
    // Block every IPv4 source 10.0.0.x the corpus uses; key = address in network byte order.
    let mut entries = serde_json::Map::new();
    for last in 0..=255u8 {
        entries.insert(format!("0a0000{last:02x}"), serde_json::json!("01"));
    }
    let maps_in =
        scratch.file("block.json", serde_json::json!({ "maps": { "BLOCKLIST": entries } }).to_string().as_bytes());
    let after = run(&[&maps_in]);
    let dropped = after["results"].as_array().unwrap().iter().filter(|r| **r == 1).count();
    assert!(dropped > 0, "the seeded blocklist drops 10.0.0.0/24 sources");
    assert_eq!(after["results"].as_array().unwrap().len(), frames.len());
    assert_eq!(after["maps"]["BLOCKLIST"].as_object().unwrap().len(), 256);
}

#[test]
fn bad_captures_and_names_give_clear_errors() {
    let Some(obj) = object("tailcall.o") else { return };
    let scratch = Scratch::new("errors");
    let (_, pcap) = corpus_pcap();
    let truncated = scratch.file("truncated.pcap", &pcap[..pcap.len() - 7]);
    let mut linux_sll = pcap.clone();
    linux_sll[20..24].copy_from_slice(&113u32.to_le_bytes());
    let sll = scratch.file("sll.pcap", &linux_sll);
    let garbage = scratch.file("garbage.pcap", b"definitely not a capture");
    let cases: [(&Path, Option<&str>, &str); 4] = [
        (&truncated, Some("xdp_tailcall"), "truncated"),
        (&sll, Some("xdp_tailcall"), "Ethernet"),
        (&garbage, Some("xdp_tailcall"), "not a pcap"),
        (&truncated, None, "xdp_tailcall"),
    ];
    for (capture, program, needle) in cases {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_duet"));
        cmd.arg("run").arg(&obj).arg("--pcap").arg(capture);
        if let Some(p) = program {
            cmd.args(["--program", p]);
        }
        let out = cmd.output().expect("run duet");
        let (_, stderr) = text(&out);
        assert!(!out.status.success(), "{capture:?} {program:?} must fail");
        assert!(stderr.contains(needle), "{capture:?} {program:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn inspect_lists_programs_maps_relocations_and_source_lines() {
    let Some(obj) = object("globals.o") else { return };
    let out = Command::new(env!("CARGO_BIN_EXE_duet")).arg("inspect").arg(&obj).output().expect("run duet");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    for needle in ["xdp_globals", ".rodata", ".data", ".bss", "address of `.data`", "; globals.c:"] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
}
