//! `--json` of `duet verify`, `duet inspect` and `duet load`: one JSON document on stdout that
//! scripts can read, with the same facts as the text output.

use std::path::{Path, PathBuf};
use std::process::Command;

const DUET: &str = env!("CARGO_BIN_EXE_duet");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn json(args: &[&str]) -> (bool, serde_json::Value) {
    let out = Command::new(DUET).args(args).output().unwrap();
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("`duet {}` printed no JSON ({e}):\n{}", args.join(" "), String::from_utf8_lossy(&out.stdout))
    });
    (out.status.success(), doc)
}

fn firewall() -> PathBuf {
    let dir = root().join("examples/firewall");
    let out = Command::new(DUET).args(["build", "--quiet"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    dir.join("target/duet/firewall.bpf.o")
}

#[test]
fn verify_reports_programs_and_diagnostics_as_json() {
    let bpf = firewall();
    let (ok, doc) = json(&["verify", bpf.to_str().unwrap(), "--json"]);
    assert!(ok, "{doc}");
    assert_eq!(doc["ok"], true);
    let p = &doc["programs"][0];
    assert_eq!((p["name"].as_str(), p["status"].as_str()), (Some("firewall"), Some("verified")), "{doc}");
    assert!(p["instructions"].as_u64().unwrap() > 10 && p["processed"].as_u64().is_some(), "{p}");

    // A rejected program: every diagnostic with its code, instruction and message; exit 1.
    let bad = root().join("tests/verifier/arith_on_data_end.s");
    let (ok, doc) = json(&["verify", bad.to_str().unwrap(), "--json"]);
    assert!(!ok);
    assert_eq!(doc["ok"], false);
    let d = &doc["programs"][0]["diagnostics"][0];
    assert_eq!(doc["programs"][0]["status"], "rejected");
    assert!(d["code"].is_string() && d["message"].is_string() && d["pc"].is_u64(), "{doc}");
}

#[test]
fn inspect_lists_programs_maps_and_source_lines_as_json() {
    let bpf = firewall();
    let (ok, doc) = json(&["inspect", bpf.to_str().unwrap(), "--json"]);
    assert!(ok);
    let p = &doc["programs"][0];
    assert_eq!((p["name"].as_str(), p["kind"].as_str()), (Some("firewall"), Some("xdp")), "{p}");
    let maps: Vec<&str> = doc["maps"].as_array().unwrap().iter().filter_map(|m| m["name"].as_str()).collect();
    assert!(maps.contains(&"BLOCKED"), "{maps:?}");
    let insns = p["disassembly"].as_array().unwrap();
    assert_eq!(insns.len() as u64, p["instructions"].as_u64().unwrap());
    assert!(insns.iter().any(|i| i["source"]["file"].as_str().is_some_and(|f| f.ends_with("lib.rs"))), "BTF lines");
    assert!(p["map_refs"].as_array().is_some_and(|r| !r.is_empty()), "{p}");
    let (_, doc) = json(&["inspect", bpf.to_str().unwrap(), "--json", "--no-disasm"]);
    assert!(doc["programs"][0].get("disassembly").is_none());
}

#[test]
fn load_reports_the_kernel_verdict_as_json() {
    if let Err(e) = duet_kernel::check_access() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true: kernel tests must run: {e}");
        eprintln!("skipped: `duet load` needs the kernel: {e}");
        return;
    }
    let bpf = firewall();
    let (ok, doc) = json(&["load", bpf.to_str().unwrap(), "--json"]);
    assert!(ok, "{doc}");
    assert_eq!(doc["ok"], true);
    let p = &doc["programs"][0];
    assert_eq!(p["name"], "firewall");
    assert!(p["verified_insns"].as_u64().is_some_and(|n| n > 0), "{p}");
    // Something the kernel refuses: ok false, the error in the document, exit 1.
    let not_bpf = std::env::temp_dir().join(format!("duet-json-load-{}.o", std::process::id()));
    std::fs::write(&not_bpf, b"not an object").unwrap();
    let out = Command::new(DUET).args(["load", not_bpf.to_str().unwrap(), "--json"]).output().unwrap();
    let _ = std::fs::remove_file(&not_bpf);
    assert!(!out.status.success());
}
