//! Typed map keys and values from the object's BTF in the CLI: `duet inspect --json` lists the
//! types, `duet run --json --typed` adds `maps_typed` beside the hex `maps` (plain `--json` does
//! not, so outputs of every executor compare equal), and `--maps-in` takes typed
//! JSON, on the `ratelimit` example built with `duet build` (`CONFIG: Array<Config>`,
//! `BUCKETS: LruHashMap<[u8; 4], Bucket>`, `STATS: Array<u64>`). The `.wasm` of the same source
//! has no BTF: its maps stay hex and typed input is refused with the reason.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use duet::testing::udp_frame;
use serde_json::{Value as Json, json};

const DUET: &str = env!("CARGO_BIN_EXE_duet");
const PASS: u64 = 2;
const DROP: u64 = 1;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn duet(args: &[&str]) -> Output {
    Command::new(DUET).args(args).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = duet(args);
    assert!(out.status.success(), "duet {args:?}:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = root().join("target/tmp/typed-maps");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn write_json(name: &str, doc: &Json) -> String {
    let path = scratch(name);
    std::fs::write(&path, doc.to_string()).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The ratelimit example's `.bpf.o` and `.wasm`, and a capture: 15 packets from 10.0.0.1, then
/// one from 10.0.0.2.
fn ratelimit() -> (String, String, String) {
    let dir = root().join("examples/ratelimit");
    ok(&["build", "--quiet", dir.to_str().unwrap()]);
    let mut frames: Vec<Vec<u8>> = (0..15).map(|_| udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1, 53, 0)).collect();
    frames.push(udp_frame([10, 0, 0, 2], [10, 0, 0, 1], 1, 53, 0));
    let pcap = scratch("ratelimit.pcap");
    duet_testdata::packets::write_pcap(std::fs::File::create(&pcap).unwrap(), &frames).unwrap();
    let path = |ext: &str| dir.join(format!("target/duet/ratelimit.{ext}")).to_str().unwrap().to_owned();
    (path("bpf.o"), path("wasm"), pcap.to_str().unwrap().to_owned())
}

fn run(artifact: &str, pcap: &str, maps_in: &str, engine: &str) -> Json {
    let out = ok(&[
        "run",
        artifact,
        "--pcap",
        pcap,
        "--json",
        "--typed",
        "--deterministic",
        "--cpus",
        "1",
        "--engine",
        engine,
        "--maps-in",
        maps_in,
    ]);
    serde_json::from_str(&out).unwrap()
}

#[test]
fn the_objects_btf_gives_typed_maps_in_inspect_run_and_maps_in() {
    let (bpf, wasm, pcap) = ratelimit();

    // `inspect --json` names every map's types and lays them out.
    let inspect: Json = serde_json::from_str(&ok(&["inspect", &bpf, "--json", "--no-disasm"])).unwrap();
    let map = |name: &str| inspect["maps"].as_array().unwrap().iter().find(|m| m["name"] == name).unwrap().clone();
    assert_eq!(
        (map("CONFIG")["key_type"].as_str(), map("CONFIG")["value_type"].as_str()),
        (Some("u32"), Some("struct Config"))
    );
    assert_eq!(map("BUCKETS")["key_type"], "[u8; 4]");
    assert_eq!(map("STATS")["value_type"], "u64");
    assert_eq!(
        map("CONFIG")["value_layout"]["members"][1],
        json!({"name": "burst", "offset": 8, "ty": {"kind": "int", "size": 8, "signed": false}})
    );

    // A typed CONFIG (a burst of 2), in both shapes --maps-in takes: a hex key with a typed
    // value, and a list of typed entries.
    let mut verdicts = vec![PASS; 2];
    verdicts.extend([DROP; 13]);
    verdicts.push(PASS);
    let by_hex_key =
        write_json("config-hex-key.json", &json!({"maps": {"CONFIG": {"00000000": {"rate": 1, "burst": 2}}}}));
    let as_list = write_json("config-list.json", &json!({"CONFIG": [{"key": 0, "value": {"rate": 1, "burst": 2}}]}));
    for (engine, maps_in) in [("interp", &by_hex_key), ("jit", &as_list)] {
        let doc = run(&bpf, &pcap, maps_in, engine);
        assert_eq!(doc["results"], json!(verdicts), "{engine}");
        // The hex stays as it was; the typed view is beside it.
        assert_eq!(doc["maps"]["STATS"]["00000000"], "0300000000000000");
        assert_eq!(doc["maps_typed"]["STATS"], json!([{"key": 0, "value": 3}, {"key": 1, "value": 13}]), "{engine}");
        assert_eq!(doc["maps_typed"]["CONFIG"], json!([{"key": 0, "value": {"rate": 1, "burst": 2}}]));
        let buckets = doc["maps_typed"]["BUCKETS"].as_array().unwrap();
        let keys: Vec<&Json> = buckets.iter().map(|e| &e["key"]).collect();
        assert_eq!(keys, [&json!([10, 0, 0, 1]), &json!([10, 0, 0, 2])], "[u8; 4] of non-text bytes: numbers");
        assert!(buckets[0]["value"]["last_ns"].is_u64() && buckets[0]["value"]["tokens"].is_u64());
    }
    let plain = ok(&["run", &bpf, "--pcap", &pcap, "--json", "--deterministic", "--cpus", "1"]);
    let plain: Json = serde_json::from_str(&plain).unwrap();
    assert!(plain.get("maps_typed").is_none(), "maps_typed only with --typed: {plain}");

    // Typed errors name the field; the run does not start.
    let bad = write_json("config-bad.json", &json!({"CONFIG": {"00000000": {"rate": 1, "bogus": 2}}}));
    let out = duet(&["run", &bpf, "--pcap", &pcap, "--json", "--maps-in", &bad]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("map `CONFIG`: value of `00000000`") && err.contains("struct Config has no member `bogus`"),
        "{err}"
    );
    let big = write_json("config-big.json", &json!({"CONFIG": [{"key": 0, "value": {"burst": -1}}]}));
    let err = String::from_utf8_lossy(&duet(&["run", &bpf, "--pcap", &pcap, "--maps-in", &big]).stderr).into_owned();
    assert!(err.contains("value.burst: -1 does not fit in u64"), "{err}");

    // The .wasm has no BTF: hex only, no typed view, and typed input is refused with the reason.
    let hex = write_json("config-hex.json", &json!({"CONFIG": {"00000000": "01000000000000000200000000000000"}}));
    let doc = run(&wasm, &pcap, &hex, "wasm");
    assert_eq!(doc["results"], json!(verdicts));
    assert!(doc.get("maps_typed").is_none(), "{doc}");
    let out = duet(&["run", &wasm, "--pcap", &pcap, "--maps-in", &by_hex_key]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("a Wasm module has none"), "{err}");
}
