//! The kernel commands and map types and captures: `duet test-run` streams its capture (peak
//! memory flat whatever the capture's size, measured with /usr/bin/time), takes `--typed` and
//! typed `--maps-in` exactly as `duet run` does, and `duet maps` shows and `duet maps set`
//! takes typed values for an attachment, from the types `duet attach` recorded, on the
//! `ratelimit` example (`CONFIG: Array<Config>`, `BUCKETS: LruHashMap<[u8; 4], Bucket>`,
//! `STATS: Array<u64>`).
//!
//! Needs root with BPF access (and iproute2 for the attachment's network namespace); elsewhere
//! each test says why it skipped, and with `CI=true` a missing requirement is a failure. Pins go
//! under a root of the test's own, removed with the namespace on drop, also when an assertion
//! fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use duet::testing::udp_frame;
use serde_json::{Value as Json, json};

mod gate;
use gate::{skip, unique};

const DUET: &str = env!("CARGO_BIN_EXE_duet");
const PASS: u64 = 2;
const DROP: u64 = 1;

fn privileged() -> bool {
    if let Err(err) = duet_kernel::check_access() {
        skip(&format!("the kernel tests need BPF access: {err}"));
        return false;
    }
    true
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// A private pin root and scratch directory; on drop, `duet detach all` and both removed.
struct Duet {
    root: PathBuf,
    scratch: PathBuf,
}

impl Duet {
    fn new() -> Self {
        let name = unique("kmaps");
        let scratch = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&scratch).unwrap();
        Self { root: PathBuf::from("/sys/fs/bpf").join(name), scratch }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(DUET).args(args).env("DUET_PIN_ROOT", &self.root).output().expect("run duet")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "duet {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs duet, expects a failure with a one-line error, returns it.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "duet {args:?} succeeded:\n{}", String::from_utf8_lossy(&out.stdout));
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        stderr
    }

    fn json(&self, args: &[&str]) -> Json {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.scratch.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

impl Drop for Duet {
    fn drop(&mut self) {
        let _ = self.run(&["detach", "all"]);
        let _ = std::fs::remove_dir_all(&self.root);
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// A network namespace with its loopback up, deleted on drop.
struct Netns(String);

impl Netns {
    fn new() -> Option<Self> {
        let name = unique("ns");
        match Command::new("ip").args(["netns", "add", &name]).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!("ip netns add {name}: {}", String::from_utf8_lossy(&out.stderr)),
            Err(err) => {
                skip(&format!("iproute2 (`ip`) is needed for a network namespace ({err}); apt-get install iproute2"));
                return None;
            }
        }
        let ns = Netns(name);
        let out = Command::new("ip").args(["-n", &ns.0, "link", "set", "lo", "up"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        Some(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

fn write_pcap(path: &Path, frames: impl IntoIterator<Item = Vec<u8>>) {
    let frames: Vec<Vec<u8>> = frames.into_iter().collect();
    duet_testdata::packets::write_pcap(std::fs::File::create(path).unwrap(), &frames).unwrap();
}

/// The ratelimit example's `.bpf.o` (built once per test process).
fn ratelimit() -> &'static str {
    static BUILT: OnceLock<String> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = root().join("examples/ratelimit");
        let out = Command::new(DUET).args(["build", "--quiet", "--bpf-only"]).arg(&dir).output().unwrap();
        assert!(out.status.success(), "duet build:\n{}", String::from_utf8_lossy(&out.stderr));
        dir.join("target/duet/ratelimit.bpf.o").to_str().unwrap().to_owned()
    })
}

/// 15 packets from 10.0.0.1, then one from 10.0.0.2.
fn ratelimit_pcap(duet: &Duet) -> String {
    let mut frames: Vec<Vec<u8>> = (0..15).map(|_| udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1, 53, 0)).collect();
    frames.push(udp_frame([10, 0, 0, 2], [10, 0, 0, 1], 1, 53, 0));
    let path = duet.scratch.join("ratelimit.pcap");
    write_pcap(&path, frames);
    path.to_str().unwrap().to_owned()
}

// === test-run ===

/// Peak resident memory in KiB of `duet test-run <obj> --pcap <pcap> <extra>`.
fn peak_rss_kib(duet: &Duet, obj: &Path, pcap: &Path, extra: &[&str]) -> Option<u64> {
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        skip("/usr/bin/time is missing; cannot measure peak memory (apt-get install time)");
        return None;
    }
    let report = duet.scratch.join("time.txt");
    let out = Command::new(time)
        .args(["-f", "%M", "-o"])
        .arg(&report)
        .arg(DUET)
        .arg("test-run")
        .arg(obj)
        .arg("--pcap")
        .arg(pcap)
        .args(extra)
        .stdout(std::process::Stdio::null())
        .output()
        .expect("run duet under /usr/bin/time");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = std::fs::read_to_string(&report).expect("time's report");
    Some(report.lines().last().and_then(|l| l.trim().parse().ok()).expect("max RSS in KiB"))
}

#[test]
fn test_run_memory_stays_flat_whatever_the_capture_size() {
    if !privileged() {
        return;
    }
    let obj = root().join("target/bpf/parse.o");
    if !obj.exists() {
        skip(&format!("{} is missing; run `cargo xtask build-bpf`", obj.display()));
        return;
    }
    let duet = Duet::new();
    // The kernel refuses frames shorter than an Ethernet header; those are left out.
    let frames: Vec<Vec<u8>> =
        duet_testdata::packets::corpus().into_iter().map(|(_, f)| f).filter(|f| f.len() >= 14).collect();
    let write = |name: &str, n: usize| {
        let path = duet.scratch.join(name);
        write_pcap(&path, frames.iter().cycle().take(n).cloned());
        path
    };
    let small = write("small.pcap", 120_000);
    let large = write("large.pcap", 360_000);
    assert!(std::fs::metadata(&large).unwrap().len() > 24 << 20, "the large capture is tens of MB");
    // Reading the capture whole and keeping a page per packet's output took ~4 KiB per packet:
    // 240,000 more packets would be ~1 GB more.
    for extra in [&[][..], &["--json"][..]] {
        let Some(base) = peak_rss_kib(&duet, &obj, &small, extra) else { return };
        let Some(peak) = peak_rss_kib(&duet, &obj, &large, extra) else { return };
        eprintln!("test-run {extra:?}: peak RSS {base} KiB for 120k packets, {peak} KiB for 360k packets");
        assert!(peak < base + 4 * 1024, "{extra:?}: {peak} KiB for 360k packets vs {base} KiB for 120k");
    }
    // Streaming keeps every packet's result and output, in order.
    let doc = duet.json(&["test-run", obj.to_str().unwrap(), "--pcap", small.to_str().unwrap(), "--json"]);
    assert_eq!(doc["results"].as_array().unwrap().len(), 120_000);
    assert_eq!(doc["packets"].as_array().unwrap().len(), 120_000);
    assert_eq!(doc["packets"][frames.len()], doc["packets"][0], "the capture repeats the corpus");
}

#[test]
fn test_run_takes_typed_maps_in_and_shows_typed_maps_as_run_does() {
    if !privileged() {
        return;
    }
    let duet = Duet::new();
    let (bpf, pcap) = (ratelimit(), ratelimit_pcap(&duet));
    let mut verdicts = vec![PASS; 2];
    verdicts.extend([DROP; 13]);
    verdicts.push(PASS);
    // A CONFIG with a burst of 2, in both shapes --maps-in takes for typed maps.
    let by_hex_key = duet.file("hex-key.json", r#"{"maps": {"CONFIG": {"00000000": {"rate": 1, "burst": 2}}}}"#);
    let as_list = duet.file("list.json", r#"{"CONFIG": [{"key": 0, "value": {"rate": 1, "burst": 2}}]}"#);
    let run = duet.json(&["run", bpf, "--pcap", &pcap, "--json", "--typed", "--cpus", "1", "--maps-in", &as_list]);
    for maps_in in [&by_hex_key, &as_list] {
        let kernel = duet.json(&["test-run", bpf, "--pcap", &pcap, "--json", "--typed", "--maps-in", maps_in]);
        assert_eq!(kernel["results"], json!(verdicts));
        assert_eq!(kernel["maps_typed"]["STATS"], json!([{"key": 0, "value": 3}, {"key": 1, "value": 13}]));
        assert_eq!(kernel["maps_typed"]["CONFIG"], json!([{"key": 0, "value": {"rate": 1, "burst": 2}}]));
        assert_eq!(kernel["maps"]["STATS"]["00000000"], "0300000000000000", "the hex stays beside");
        // The same typed view as `duet run` (BUCKETS hold clock readings, which differ).
        for map in ["STATS", "CONFIG"] {
            assert_eq!(kernel["maps_typed"][map], run["maps_typed"][map], "{map}");
        }
        let keys: Vec<&Json> = kernel["maps_typed"]["BUCKETS"].as_array().unwrap().iter().map(|e| &e["key"]).collect();
        assert_eq!(keys, [&json!([10, 0, 0, 1]), &json!([10, 0, 0, 2])]);
    }
    // Without --typed, the document is the one every executor prints.
    let plain = duet.json(&["test-run", bpf, "--pcap", &pcap, "--json", "--maps-in", &as_list]);
    assert!(plain.get("maps_typed").is_none(), "{plain}");

    // Typed errors name the map, the entry and the field, in one line; nothing runs.
    let bad = duet.file("bad.json", r#"{"CONFIG": {"00000000": {"rate": 1, "bogus": 2}}}"#);
    let err = duet.fails(&["test-run", bpf, "--pcap", &pcap, "--maps-in", &bad]);
    assert!(err.contains("map `CONFIG`: value of `00000000`") && err.contains("has no member `bogus`"), "{err}");
    let big = duet.file("big.json", r#"{"CONFIG": [{"key": 0, "value": {"burst": -1}}]}"#);
    let err = duet.fails(&["test-run", bpf, "--pcap", &pcap, "--maps-in", &big]);
    assert!(err.contains("value.burst: -1 does not fit in u64"), "{err}");
    let list = duet.file("list-value.json", r#"{"STATS": {"00000000": ["01", "02"]}}"#);
    let err = duet.fails(&["test-run", bpf, "--pcap", &pcap, "--maps-in", &list]);
    assert!(err.contains("`STATS` is not a per-CPU map"), "{err}");
}

#[test]
fn test_run_seeds_a_value_per_cpu_as_run_does() {
    if !privileged() {
        return;
    }
    let obj = root().join("target/bpf/maps.o");
    if !obj.exists() {
        skip(&format!("{} is missing; run `cargo xtask build-bpf`", obj.display()));
        return;
    }
    let duet = Duet::new();
    let (obj, pcap) = (obj.to_str().unwrap(), ratelimit_pcap(&duet));
    // Different values per CPU (the kernel test run used to refuse them); a one-value list and
    // a plain value mean every CPU.
    let maps_in = duet.file(
        "percpu.json",
        r#"{"proto_pcpu": {"11000000": ["0100000000000000", "0200000000000000"]},
            "port_pcpu": {"35000000": ["0500000000000000"], "36000000": "0700000000000000"}}"#,
    );
    let kernel = duet.json(&["test-run", obj, "--pcap", &pcap, "--json", "--maps-in", &maps_in]);
    let vm = duet.json(&["run", obj, "--pcap", &pcap, "--json", "--maps-in", &maps_in]);
    for map in ["proto_pcpu", "port_pcpu"] {
        assert_eq!(kernel["maps"][map], vm["maps"][map], "{map}");
    }
    let n_cpus = duet_kernel::possible_cpus().unwrap();
    let port = &kernel["maps"]["port_pcpu"]["36000000"];
    assert_eq!(port.as_array().unwrap().len(), n_cpus, "{port}");
    assert!(port.as_array().unwrap().iter().all(|v| v == "0700000000000000"), "{port}");
    if n_cpus > 1 {
        assert_eq!(kernel["maps"]["proto_pcpu"]["11000000"][1], "0200000000000000", "CPU 1 keeps its own value");
    }
}

// === duet maps on an attachment ===

#[test]
fn maps_of_an_attachment_show_and_take_typed_values() {
    if !privileged() {
        return;
    }
    let Some(ns) = Netns::new() else { return };
    let duet = Duet::new();
    let id = duet.ok(&["attach", ratelimit(), "--xdp", "lo", "--skb", "--netns", &ns.0]).trim().to_owned();

    // Hex stays the default, in text and JSON.
    let hex = duet.json(&["maps", &id, "--json"]);
    assert_eq!(hex["STATS"]["00000000"], "0000000000000000");
    assert!(hex.get("maps_typed").is_none(), "{hex}");

    // A typed edit, by the types `duet attach` recorded from the object's BTF.
    duet.ok(&["maps", "set", "--typed", &id, "CONFIG", "0", r#"{"rate": 5, "burst": 7}"#]);
    duet.ok(&["maps", "set", "--typed", &id, "BUCKETS", "[10, 0, 0, 9]", r#"{"tokens": 3}"#]);
    let doc = duet.json(&["maps", &id, "--json", "--typed"]);
    assert_eq!(doc["maps"]["CONFIG"]["00000000"], "05000000000000000700000000000000", "{doc}");
    assert_eq!(doc["maps_typed"]["CONFIG"], json!([{"key": 0, "value": {"rate": 5, "burst": 7}}]));
    assert_eq!(doc["maps_typed"]["BUCKETS"], json!([{"key": [10, 0, 0, 9], "value": {"tokens": 3, "last_ns": 0}}]));
    assert_eq!(doc["maps_typed"]["STATS"], json!([{"key": 0, "value": 0}, {"key": 1, "value": 0}]));
    let text = duet.ok(&["maps", &id, "--typed"]);
    // Struct fields in declaration order, as bpftool shows them.
    assert!(text.contains(r#"0 => {"rate":5,"burst":7}"#), "{text}");
    assert!(text.contains(r#"[10,0,0,9] => {"tokens":3,"last_ns":0}"#), "{text}");
    // Hex still works beside --typed, and without it.
    duet.ok(&["maps", "set", &id, "STATS", "01000000", "2a00000000000000"]);
    duet.ok(&["maps", "set", "--typed", &id, "STATS", "\"00000000\"", "41"]);
    assert_eq!(
        duet.json(&["maps", &id, "--json", "--typed"])["maps_typed"]["STATS"],
        json!([{"key": 0, "value": 41}, {"key": 1, "value": 42}])
    );

    // Errors are one line and name the field.
    let err = duet.fails(&["maps", "set", "--typed", &id, "CONFIG", "0", r#"{"bogus": 1}"#]);
    assert!(err.contains("struct Config has no member `bogus`"), "{err}");
    let err = duet.fails(&["maps", "set", "--typed", &id, "CONFIG", "0", r#"{"rate": -1}"#]);
    assert!(err.contains("value.rate: -1 does not fit in u64"), "{err}");
    let err = duet.fails(&["maps", "set", "--typed", &id, "NOPE", "0", "1"]);
    assert!(err.contains("NOPE"), "{err}");
}

// === one map order ===

/// The map names in the order a JSON document's text lists them, in its "ringbufs" and "maps".
fn map_order(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for section in ["\"ringbufs\":{", "\"maps\":{"] {
        let start = text.find(section).unwrap_or_else(|| panic!("no {section} in {text}")) + section.len();
        let mut depth = 0;
        let mut rest = &text[start..];
        // The object's own keys: strings followed by ':' at depth 0.
        while let Some(c) = rest.chars().next() {
            match c {
                '{' | '[' => depth += 1,
                '}' | ']' if depth == 0 => break,
                '}' | ']' => depth -= 1,
                '"' => {
                    let end = rest[1..].find('"').unwrap() + 1;
                    if depth == 0 && rest[end + 1..].starts_with(':') {
                        names.push(rest[1..end].to_owned());
                    }
                    rest = &rest[end..];
                }
                _ => {}
            }
            rest = &rest[c.len_utf8()..];
        }
    }
    names
}

/// The ring buffers a text report names, in its order.
fn ring_order(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("ring buffer `"))
        .filter_map(|rest| rest.split_once('`').map(|(name, _)| name.to_owned()))
        .collect()
}

#[test]
fn run_of_the_object_and_of_its_wasm_and_test_run_list_maps_in_one_order() {
    // flowstats declares FLOWS, NEW_FLOWS, ENDED_FLOWS: its .wasm's manifest keeps that order
    // through the map ids, its .bpf.o (bpf-linker lays `.maps` out by name) through the
    // `duet.map_order.<id>` records #[duet::map] leaves. Every output lists them in that order:
    // JSON documents and the text reports' ring-buffer lines.
    let dir = root().join("examples/flowstats");
    let out = Command::new(DUET).args(["build", "--quiet"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "duet build:\n{}", String::from_utf8_lossy(&out.stderr));
    let duet = Duet::new();
    let pcap = ratelimit_pcap(&duet);
    let artifact = |ext: &str| dir.join(format!("target/duet/flowstats.{ext}")).to_str().unwrap().to_owned();
    let (bpf, wasm) = (artifact("bpf.o"), artifact("wasm"));
    let common = ["--program", "flowstats", "--pcap", &pcap, "--json"];
    let mut runs = vec![("run .bpf.o", [&["run", &bpf][..], &common].concat())];
    runs.push(("run .wasm", [&["run", &wasm][..], &common].concat()));
    if duet_kernel::check_access().is_ok() {
        runs.push(("test-run", [&["test-run", &bpf][..], &common].concat()));
    } else {
        skip("test-run needs BPF access; compared run of the .bpf.o and of the .wasm only");
    }
    // "ringbufs" first, then "maps" (which leaves ring buffers out).
    let expected = ["NEW_FLOWS", "ENDED_FLOWS", "FLOWS"];
    for (what, args) in runs {
        assert_eq!(map_order(&duet.ok(&args)), expected, "{what} --json");
        let text_args: Vec<&str> = args.iter().copied().filter(|a| *a != "--json").collect();
        assert_eq!(ring_order(&duet.ok(&text_args)), ["NEW_FLOWS", "ENDED_FLOWS"], "{what}");
    }

    // duet maps of an attachment: in the order `duet attach` recorded.
    if !privileged() {
        return;
    }
    let Some(ns) = Netns::new() else { return };
    let id = duet.ok(&["attach", &bpf, "--program", "flowstats", "--xdp", "lo", "--skb", "--netns", &ns.0]);
    let id = id.trim();
    let text = duet.ok(&["maps", id]);
    let listed: Vec<&str> = text.lines().filter_map(|l| l.split_once(": ").map(|(name, _)| name)).collect();
    assert_eq!(listed, ["FLOWS"], "{text}");
    let ps = duet.json(&["ps", "--json"]);
    assert_eq!(ps[0]["maps"], json!(["FLOWS", "NEW_FLOWS", "ENDED_FLOWS"]), "{ps}");
}
