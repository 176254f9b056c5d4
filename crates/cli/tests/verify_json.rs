//! `duet verify --json`: per-program verdicts, diagnostics and the verification statistics the
//! kernel's log level 2 summary gives (instructions processed, states, peak states, time), on
//! an object compiled with clang from C written here.
//!
//! Needs clang; without it the test says why it skipped (under `CI=true` it fails instead).

use std::process::Command;

use serde_json::Value as Json;

const SOURCE: &str = r#"
#include <linux/bpf.h>
#define SEC(n) __attribute__((section(n), used))

/* Branches on the packet's bytes: several paths, several stored states. */
SEC("xdp") int branches(struct xdp_md *ctx) {
    unsigned char *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    int verdict = XDP_PASS;
    if (data + 4 > end) return XDP_DROP;
    if (data[0] == 1) verdict = XDP_DROP;
    if (data[1] == 2) verdict = XDP_TX;
    if (data[2] == 3) verdict = XDP_ABORTED;
    return verdict;
}

/* Reads a byte past the bytes it checked. */
SEC("xdp") int out_of_bounds(struct xdp_md *ctx) {
    unsigned char *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    if (data + 1 > end) return XDP_DROP;
    return data[1];
}

char _license[] SEC("license") = "GPL";
"#;

#[test]
fn verify_json_has_verdicts_diagnostics_and_statistics() {
    let dir = std::env::temp_dir().join(format!("duet-verify-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let src = dir.join("stats.c");
    let obj = dir.join("stats.o");
    std::fs::write(&src, SOURCE).expect("write source");
    let multiarch = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let compiled = Command::new("clang")
        .args(["-O2", "-g", "-target", "bpf", &multiarch, "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .output();
    let out = match compiled {
        Ok(o) => o,
        Err(err) => {
            let _ = std::fs::remove_dir_all(&dir);
            let reason = format!("clang is needed to compile the test object ({err})");
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{reason} (CI=true makes this a failure)");
            eprintln!("\n!!! SKIPPED: {reason} !!!\n");
            return;
        }
    };
    assert!(out.status.success(), "clang: {}", String::from_utf8_lossy(&out.stderr));

    let out = Command::new(env!("CARGO_BIN_EXE_duet")).args(["verify", "--json"]).arg(&obj).output().expect("duet");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1), "one program is rejected");
    let doc: Json = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(doc["ok"], false);
    let program = |name: &str| {
        doc["programs"].as_array().and_then(|l| l.iter().find(|p| p["name"] == name)).cloned().expect(name)
    };

    let good = program("branches");
    assert_eq!(good["status"], "verified", "{good}");
    let stats = &good["stats"];
    for field in
        ["insns_processed", "insn_limit", "max_states_per_insn", "total_states", "peak_states", "pruned", "time_us"]
    {
        assert!(stats[field].is_u64(), "{field} missing: {stats}");
    }
    let n = |field: &str| stats[field].as_u64().unwrap_or_default();
    assert!(n("insns_processed") >= good["instructions"].as_u64().unwrap_or(u64::MAX), "{good}");
    assert_eq!(n("insn_limit"), 1_000_000);
    assert!(n("total_states") >= 1 && n("peak_states") >= 1 && n("peak_states") <= n("total_states"), "{stats}");
    assert!(n("max_states_per_insn") >= 1 && n("max_states_per_insn") <= n("total_states"), "{stats}");
    assert!(good["stack_depth"].is_array(), "{good}");

    let bad = program("out_of_bounds");
    assert_eq!(bad["status"], "rejected", "{bad}");
    let diag = &bad["diagnostics"][0];
    assert!(diag["pc"].is_u64() && diag["message"].is_string() && diag["code"].is_string(), "{bad}");
    assert!(bad["stats"]["insns_processed"].as_u64().is_some_and(|n| n > 0), "{bad}");
}
