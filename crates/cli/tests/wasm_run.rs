//! `duet run` on `.wasm` modules end to end, through the real binary: a hand-written ABI v1
//! firewall (crates/wasm/tests/wat/firewall.wat) over a generated capture.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod scratch;
use scratch::Scratch;

const FIREWALL: &str = include_str!("../../wasm/tests/wat/firewall.wat");

/// An Ethernet + IPv4 header from `src`.
fn ipv4_from(src: [u8; 4]) -> Vec<u8> {
    let mut p = vec![0u8; 34];
    p[12..14].copy_from_slice(&[0x08, 0x00]);
    p[14] = 0x45;
    p[26..30].copy_from_slice(&src);
    p
}

/// The packet corpus plus three packets from the blocked 10.9.9.9, written as a pcap.
fn capture(scratch: &Scratch) -> (PathBuf, usize) {
    let mut frames: Vec<Vec<u8>> = duet_testdata::packets::corpus().into_iter().map(|(_, f)| f).collect();
    frames.extend(std::iter::repeat_n(ipv4_from([10, 9, 9, 9]), 3));
    let mut pcap = Vec::new();
    duet_testdata::packets::write_pcap(&mut pcap, &frames).expect("write pcap");
    (scratch.file("capture.pcap", &pcap), frames.len())
}

fn duet(args: &[&Path], extra: &[&str], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_duet"))
        .arg("run")
        .args(args)
        .args(extra)
        .env("XDG_CACHE_HOME", cache)
        .output()
        .expect("run duet")
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn json_output_matches_the_ebpf_shape() {
    let scratch = Scratch::new("json");
    let wasm = scratch.file("firewall.wasm", &wat::parse_str(FIREWALL).expect("WAT parses"));
    let (pcap, n_frames) = capture(&scratch);
    let maps_in = scratch.file("block.json", br#"{"maps": {"BLOCKED": {"0a090909": "01"}}}"#);
    let args = [wasm.as_path(), Path::new("--pcap"), pcap.as_path(), Path::new("--maps-in"), maps_in.as_path()];
    let out = duet(&args, &["--engine", "wasm", "--json", "--deterministic"], &scratch.0);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    let results = doc["results"].as_array().expect("results array");
    assert_eq!(results.len(), n_frames);
    assert!(results.iter().all(|r| r == 1 || r == 2), "{results:?}");
    assert_eq!(results[n_frames - 3..], [1, 1, 1], "the blocked source is dropped");
    let maps = doc["maps"].as_object().expect("maps object");
    assert_eq!(maps["BLOCKED"], serde_json::json!({"0a090909": "01"}));
    assert!(!maps.contains_key("EVENTS"), "ring buffers hold no key/value data");
    let verdicts = maps["VERDICTS"].as_object().expect("array map");
    assert_eq!(verdicts.len(), 5, "every array index is listed");
    assert_eq!(verdicts["01000000"], "0300000000000000", "three drops");
    let passes = u64::from_str_radix(verdicts["02000000"].as_str().unwrap(), 16).unwrap().swap_bytes();
    assert_eq!(passes as usize, n_frames - 3);

    // The same run again (now from the AOT cache) prints the same document.
    let again = duet(&args, &["--engine", "wasm", "--json", "--deterministic"], &scratch.0);
    assert_eq!(text(&again).0, stdout);
    let cached: Vec<_> = std::fs::read_dir(scratch.0.join("duet/wasm")).expect("cache dir").collect();
    assert_eq!(cached.len(), 1, "one compiled module in the cache");
}

#[test]
fn text_output_counts_verdicts_and_the_extension_picks_the_engine() {
    let scratch = Scratch::new("text");
    let wasm = scratch.file("firewall.wasm", &wat::parse_str(FIREWALL).expect("WAT parses"));
    let (pcap, n_frames) = capture(&scratch);
    let maps_in = scratch.file("block.json", br#"{"BLOCKED": {"0a090909": "01"}}"#);
    let args = [wasm.as_path(), Path::new("--pcap"), pcap.as_path(), Path::new("--maps-in"), maps_in.as_path()];
    let out = duet(&args, &[], &scratch.0);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.starts_with(&format!("firewall (xdp) over {n_frames} packets")), "{stdout}");
    assert!(stdout.lines().any(|l| l.split_whitespace().eq(["XDP_DROP", "3"])), "{stdout}");
    assert!(stdout.contains("ns/packet in wasm"), "{stdout}");
    assert!(stdout.contains("ring buffer `EVENTS`: 3 records"), "{stdout}");
}

#[test]
fn wrong_inputs_get_actionable_errors() {
    let scratch = Scratch::new("errors");
    let (pcap, _) = capture(&scratch);
    let not_wasm = scratch.file("prog.o", b"\x7fELF not wasm");
    let out = duet(&[not_wasm.as_path(), Path::new("--pcap"), pcap.as_path()], &["--engine", "wasm"], &scratch.0);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("is not a WebAssembly module") && stderr.contains("--engine interp"), "{stderr}");

    let bad_abi = scratch.file("bad.wasm", &wat::parse_str("(module (memory (export \"memory\") 1))").unwrap());
    let out = duet(&[bad_abi.as_path(), Path::new("--pcap"), pcap.as_path()], &[], &scratch.0);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("cannot load") && stderr.contains("duet_abi_version"), "{stderr}");

    let wasm = scratch.file("firewall.wasm", &wat::parse_str(FIREWALL).unwrap());
    let maps_in = scratch.file("bad-maps.json", br#"{"NOPE": {}}"#);
    let args = [wasm.as_path(), Path::new("--pcap"), pcap.as_path(), Path::new("--maps-in"), maps_in.as_path()];
    let out = duet(&args, &[], &scratch.0);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("no map `NOPE`"), "{}", text(&out).1);
}
