//! Programs are prepared one by one, and every section name libbpf accepts has a kind: objects
//! compiled with clang from C written here, with one good program beside bad ones (an unknown
//! section name, a call to a function that does not exist, an invalid opcode) and with a range
//! of libbpf's section names, through `duet inspect --json`, `duet verify --json` and
//! `duet run --program`.
//!
//! The kernel half loads the same objects with `duet load` and `duet test-run`: programs whose
//! section names aya does not know load under a name of the same type, programs no loader
//! knows or that duet refuses are listed as skipped, and a program the kernel rejects does not
//! stop another from test-running.
//!
//! Needs clang, and root (BPF access) for the kernel half; without them each test says why it
//! skipped (under `CI=true` it fails instead).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value as Json;

mod scratch;
use scratch::Scratch;

fn skip(reason: &str) {
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{reason} (CI=true makes this a failure)");
    eprintln!("\n!!! SKIPPED: {reason} !!!\n");
}

/// Compiles `source` (C) to `<name>.o` in `dir`; `None` after a skip without clang.
fn compile(dir: &Scratch, name: &str, source: &str) -> Option<PathBuf> {
    let src = dir.file(&format!("{name}.c"), source.as_bytes());
    let out = dir.0.join(format!("{name}.o"));
    let multiarch = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    match Command::new("clang")
        .args(["-O2", "-g", "-target", "bpf", &multiarch, "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .output()
    {
        Ok(o) => {
            assert!(o.status.success(), "clang failed:\n{}", String::from_utf8_lossy(&o.stderr));
            Some(out)
        }
        Err(err) => {
            skip(&format!("clang is needed to compile the test objects ({err}); apt-get install clang"));
            None
        }
    }
}

/// A capture of the first `n` frames of the packet corpus, in `dir`.
fn packets(dir: &Scratch, n: usize) -> PathBuf {
    let frames: Vec<Vec<u8>> = duet_testdata::packets::corpus().into_iter().map(|(_, f)| f).take(n).collect();
    let mut pcap = Vec::new();
    duet_testdata::packets::write_pcap(&mut pcap, &frames).expect("write pcap");
    dir.file(&format!("{n}.pcap"), &pcap)
}

fn duet(args: &[&str], object: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_duet")).args(args).arg(object).output().expect("run duet")
}

fn json(out: &Output) -> Json {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr)))
}

/// The entry of `name` in a JSON list of programs.
fn entry<'a>(list: &'a Json, name: &str) -> &'a Json {
    list.as_array()
        .and_then(|l| l.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no program `{name}` in {list}"))
}

const PRELUDE: &str = "#include <linux/bpf.h>\n#define SEC(n) __attribute__((section(n), used))\n";

/// One good XDP program and three bad ones, each bad in its own way.
const MIXED: &str = r#"
extern int missing_function(int x);
SEC("xdp") int good(struct xdp_md *ctx) { return XDP_PASS; }
SEC("bogus_section") int unknown_section(struct xdp_md *ctx) { return XDP_DROP; }
SEC("xdp.frags") int bad_call(struct xdp_md *ctx) { return missing_function(ctx->ingress_ifindex); }
SEC("tc") int bad_code(struct __sk_buff *skb) { asm volatile(".quad 0x00000000000000ff"); return 0; }
char _license[] SEC("license") = "GPL";
"#;

#[test]
fn one_bad_program_is_reported_alone_and_the_others_verify() {
    let dir = Scratch::new("verify");
    let Some(obj) = compile(&dir, "mixed", &format!("{PRELUDE}{MIXED}")) else { return };

    let out = duet(&["verify", "--json"], &obj);
    assert_eq!(out.status.code(), Some(1), "refused programs make verify fail");
    let doc = json(&out);
    assert_eq!(doc["ok"], false);
    let programs = &doc["programs"];
    assert_eq!(programs.as_array().map(Vec::len), Some(4), "{programs}");
    assert_eq!(entry(programs, "good")["status"], "verified", "{programs}");
    for (name, why) in [
        ("unknown_section", "unknown section name `bogus_section`"),
        ("bad_call", "relocation failed"),
        ("bad_code", "unknown opcode 0xff"),
    ] {
        let p = entry(programs, name);
        assert_eq!(p["status"], "refused", "{p}");
        let reason = p["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(why), "{name}: {reason}");
    }

    // --program picks one program: the good one verifies, a bad one says why.
    let out = duet(&["verify", "--json", "--program", "good"], &obj);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(json(&out)["ok"], true);
    let out = duet(&["verify", "--program", "bad_code"], &obj);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("bad_code: refused (section `tc`)"));

    // inspect lists the good program with its kind, and the refused ones apart.
    let doc = json(&duet(&["inspect", "--json"], &obj));
    assert_eq!(doc["programs"].as_array().map(Vec::len), Some(1), "{doc}");
    assert_eq!(entry(&doc["programs"], "good")["kind"], "xdp");
    assert_eq!(entry(&doc["refused"], "bad_code")["kind"], "tc");
    assert_eq!(entry(&doc["refused"], "unknown_section")["kind"], Json::Null);
}

#[test]
fn run_program_works_beside_bad_programs() {
    let dir = Scratch::new("run");
    let Some(obj) = compile(&dir, "mixed", &format!("{PRELUDE}{MIXED}")) else { return };
    let pcap = packets(&dir, 3);
    let pcap = pcap.to_str().expect("utf-8 path");

    for engine in ["interp", "jit"] {
        let out = duet(&["run", "--json", "--engine", engine, "--pcap", pcap, "--program", "good"], &obj);
        assert!(out.status.success(), "{engine}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(json(&out)["results"], serde_json::json!([2, 2, 2]), "{engine}");
    }
    // Without --program, the only runnable program that could be prepared is chosen.
    let out = duet(&["run", "--json", "--pcap", pcap], &obj);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Asking for a refused program says why, in one line.
    let out = duet(&["run", "--pcap", pcap, "--program", "bad_call"], &obj);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("program `bad_call` (section `xdp.frags`): relocation failed"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

/// libbpf's section names (current, `type+` with extras, and legacy prefixes), each with the
/// kind `duet inspect` gives it and what `duet verify` does with it.
const NAMES: &[(&str, &str, &str)] = &[
    ("xdp", "xdp", "verified"),
    ("xdp.frags", "xdp", "verified"),
    ("xdp/devmap", "xdp", "verified"),
    ("xdp.frags/cpumap", "xdp", "verified"),
    ("xdp_legacy_name", "xdp", "verified"),
    ("tc", "tc", "verified"),
    ("tc/ingress", "tc", "verified"),
    ("tcx/egress", "tc", "verified"),
    ("netkit/primary", "tc", "verified"),
    ("classifier", "tc", "verified"),
    ("classifier_legacy", "tc", "verified"),
    ("socket", "socket_filter", "verified"),
    ("socket1", "socket_filter", "verified"),
    ("cgroup_skb/ingress", "cgroup_skb", "verified"),
    ("cgroup/skb", "cgroup_skb", "verified"),
    ("kprobe/do_unlinkat", "kprobe", "verified"),
    ("kretprobe/do_unlinkat", "kretprobe", "verified"),
    ("ksyscall/openat", "kprobe", "verified"),
    ("uprobe//bin/true:main", "kprobe", "verified"),
    ("tp/syscalls/sys_enter_openat", "tracepoint", "verified"),
    ("tracepoint/sched/sched_switch", "tracepoint", "verified"),
    ("raw_tp/sys_enter", "raw_tracepoint", "verified"),
    ("raw_tracepoint.w/sys_enter", "raw_tracepoint_writable", "skipped"),
    ("perf_event", "perf_event", "verified"),
    ("fentry/do_unlinkat", "tracing", "skipped"),
    ("lsm/file_open", "lsm", "skipped"),
    ("sk_skb/stream_verdict", "sk_skb", "skipped"),
    ("sk_msg", "sk_msg", "skipped"),
    ("sockops", "sock_ops", "skipped"),
    ("cgroup/connect4", "cgroup_sock_addr", "skipped"),
    ("cgroup/sock_create", "cgroup_sock", "skipped"),
    ("flow_dissector", "flow_dissector", "skipped"),
    ("lwt_in", "lwt_in", "skipped"),
    ("sk_lookup", "sk_lookup", "skipped"),
    ("struct_ops/test_1", "struct_ops", "skipped"),
    ("syscall", "syscall", "skipped"),
    ("duet/http_request", "http_request", "verified"),
];

#[test]
fn every_libbpf_section_name_has_a_kind() {
    let dir = Scratch::new("names");
    let mut source = PRELUDE.to_owned();
    for (i, (section, _, _)) in NAMES.iter().enumerate() {
        // Programs return 1: a valid verdict for every packet and http program type.
        source.push_str(&format!("SEC(\"{section}\") int prog{i}(void *ctx) {{ return 1; }}\n"));
    }
    source.push_str("char _license[] SEC(\"license\") = \"GPL\";\n");
    let Some(obj) = compile(&dir, "names", &source) else { return };

    let doc = json(&duet(&["inspect", "--json"], &obj));
    assert_eq!(doc["refused"], serde_json::json!([]), "{doc}");
    for (i, (section, kind, _)) in NAMES.iter().enumerate() {
        let p = entry(&doc["programs"], &format!("prog{i}"));
        assert_eq!((p["section"].as_str(), p["kind"].as_str()), (Some(*section), Some(*kind)), "{p}");
    }

    let out = duet(&["verify", "--json"], &obj);
    let doc = json(&out);
    assert!(out.status.success(), "{doc}");
    for (i, (section, kind, status)) in NAMES.iter().enumerate() {
        let p = entry(&doc["programs"], &format!("prog{i}"));
        assert_eq!(p["status"], *status, "{section}: {p}");
        if *status == "skipped" && !["sk_msg", "sock_ops", "cgroup_sock_addr", "sk_lookup"].contains(kind) {
            let reason = p["reason"].as_str().unwrap_or_default();
            assert!(reason.contains(&format!("duet does not verify {kind} programs")), "{section}: {reason}");
        }
    }
}

/// Root with BPF access; otherwise says why the kernel half is skipped.
fn kernel_available() -> bool {
    match duet_kernel::check_access() {
        Ok(()) => true,
        Err(err) => {
            skip(&format!("the kernel half needs BPF access: {err}"));
            false
        }
    }
}

#[test]
fn kernel_loads_each_program_on_its_own() {
    if !kernel_available() {
        return;
    }
    let dir = Scratch::new("kernel-load");
    let Some(obj) = compile(&dir, "mixed", &format!("{PRELUDE}{MIXED}")) else { return };
    let out = duet(&["load", "--json"], &obj);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc = json(&out);
    let good = entry(&doc["programs"], "good");
    assert!(good["verified_insns"].as_u64().is_some_and(|n| n > 0) && good["skipped"].is_null(), "{good}");
    for (name, why) in [
        ("unknown_section", "unknown section name `bogus_section`"),
        ("bad_call", "relocation failed"),
        ("bad_code", "unknown opcode 0xff"),
    ] {
        let p = entry(&doc["programs"], name);
        assert!(p["skipped"].as_str().is_some_and(|r| r.contains(why)), "{name}: {p}");
    }

    // libbpf's names: each loads as its type, or is skipped with the reason.
    let mut source = PRELUDE.to_owned();
    let kernel_names: Vec<&str> = NAMES.iter().map(|(s, _, _)| *s).filter(|s| !s.starts_with("duet/")).collect();
    for (i, section) in kernel_names.iter().enumerate() {
        source.push_str(&format!("SEC(\"{section}\") int prog{i}(void *ctx) {{ return 1; }}\n"));
    }
    source.push_str("char _license[] SEC(\"license\") = \"GPL\";\n");
    let Some(obj) = compile(&dir, "names", &source) else { return };
    let out = duet(&["load", "--json"], &obj);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc = json(&out);
    let expect = |section: &str| -> (&str, Option<&str>) {
        match section {
            "tc" | "tc/ingress" | "tcx/egress" | "netkit/primary" | "classifier" | "classifier_legacy" => {
                ("SchedClassifier", None)
            }
            "xdp" | "xdp.frags" | "xdp/devmap" | "xdp.frags/cpumap" => ("Xdp", None),
            // The object has a section `xdp` already, the only name aya loads a legacy name as.
            "xdp_legacy_name" => ("Xdp", Some("aya loads it only as section `xdp`")),
            "socket" | "socket1" => ("SocketFilter", None),
            "raw_tp/sys_enter" => ("RawTracePoint", None),
            "tp/syscalls/sys_enter_openat" | "tracepoint/sched/sched_switch" => ("TracePoint", None),
            "raw_tracepoint.w/sys_enter" => ("raw_tracepoint_writable", Some("aya has no section name")),
            "lwt_in" => ("lwt_in", Some("aya has no section name")),
            "struct_ops/test_1" => ("struct_ops", Some("aya has no section name")),
            "syscall" => ("syscall", Some("aya has no section name")),
            "fentry/do_unlinkat" | "lsm/file_open" => ("", Some("needs an attach target")),
            _ => ("", None),
        }
    };
    for (i, section) in kernel_names.iter().enumerate() {
        let p = entry(&doc["programs"], &format!("prog{i}"));
        let (kind, skipped) = expect(section);
        if !kind.is_empty() {
            assert_eq!(p["type"], kind, "{section}: {p}");
        }
        match skipped {
            Some(why) => assert!(p["skipped"].as_str().is_some_and(|r| r.contains(why)), "{section}: {p}"),
            None => assert!(p["skipped"].is_null() && p["verified_insns"].as_u64().is_some(), "{section}: {p}"),
        }
    }
}

#[test]
fn kernel_test_runs_a_program_beside_one_the_kernel_rejects() {
    if !kernel_available() {
        return;
    }
    let dir = Scratch::new("kernel-run");
    // `unchecked` reads the packet without checking its length: both verifiers refuse it.
    let source = format!(
        "{PRELUDE}{MIXED}\nSEC(\"tcx/ingress\") int unchecked(struct __sk_buff *skb) {{ \
         return *(unsigned char *)(long)skb->data; }}\nSEC(\"tc/egress\") int tc_pass(struct __sk_buff *skb) {{ return 0; }}\n"
    );
    let Some(obj) = compile(&dir, "mixed", &source) else { return };
    let pcap = packets(&dir, 2);
    let pcap = pcap.to_str().expect("utf-8 path");

    for (program, verdict) in [("good", 2), ("tc_pass", 0)] {
        let out = duet(&["test-run", "--json", "--pcap", pcap, "--program", program], &obj);
        assert!(out.status.success(), "{program}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(json(&out)["results"], serde_json::json!([verdict, verdict]), "{program}");
    }
    // The rejected program itself fails with the kernel's reason; a refused one with duet's.
    let out = duet(&["test-run", "--pcap", pcap, "--program", "unchecked"], &obj);
    assert!(!out.status.success());
    let out = duet(&["test-run", "--pcap", pcap, "--program", "bad_call"], &obj);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("relocation failed"), "{stderr}");
}

/// A `SEC("tc")` program with a `bpf_loop` callback in `.text`: aya knows the section only as
/// `classifier/...`, so duet's kernel loader renames it, and the BTF.ext records of the program
/// and its callback must follow (the kernel wants the program's own function record first, at
/// instruction 0). The kernel loads and runs both (before, it refused `SEC("tc")` with "nonzero
/// insn_off 11 for the first func info record"), and the programs keep their names (the rename
/// used to overwrite `tc` where the linker had stored it as the tail of `sum_tc`).
#[test]
fn kernel_loads_a_renamed_section_whose_program_has_a_callback() {
    if !kernel_available() {
        return;
    }
    let dir = Scratch::new("kernel-callback");
    let source = "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n\
        static long add(__u32 i, void *data) { *(__u32 *)data += i; return 0; }\n\
        SEC(\"tc\") int sum_tc(struct __sk_buff *skb) { __u32 t = 0; bpf_loop(5, add, &t, 0); return t; }\n\
        SEC(\"xdp.frags\") int sum_frags(struct xdp_md *ctx) { __u32 t = 0; bpf_loop(4, add, &t, 0); return t; }\n\
        char _license[] SEC(\"license\") = \"GPL\";\n";
    let Some(obj) = compile(&dir, "callback", source) else { return };
    let out = duet(&["load", "--json"], &obj);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pcap = packets(&dir, 2);
    let pcap = pcap.to_str().expect("utf-8 path");
    for (program, sum) in [("sum_tc", 10), ("sum_frags", 6)] {
        let out = duet(&["test-run", "--json", "--pcap", pcap, "--program", program], &obj);
        assert!(out.status.success(), "{program}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(json(&out)["results"], serde_json::json!([sum, sum]), "{program} in the kernel");
    }
    // duet's verifier takes both too, and its engines give the kernel's results.
    let out = duet(&["verify"], &obj);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("sum_tc: verified") && stdout.contains("sum_frags: verified"), "{stdout}");
    for engine in ["interp", "jit"] {
        for (program, sum) in [("sum_tc", 10), ("sum_frags", 6)] {
            let out = duet(&["run", "--json", "--engine", engine, "--pcap", pcap, "--program", program], &obj);
            assert!(out.status.success(), "{program} ({engine}): {}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(json(&out)["results"], serde_json::json!([sum, sum]), "{program} in duet's {engine}");
        }
    }
}

/// A bpf_loop whose callback differs between paths: the kernel calls its helper (no inlining),
/// duet's JIT does not compile it (it inlines one known callback) and says so when asked for by
/// name, and `duet run`'s default engine falls back to the interpreter, with the kernel's results.
#[test]
fn a_loop_with_two_callbacks_runs_in_the_interpreter() {
    let dir = Scratch::new("two-callbacks");
    let source = "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n\
        static long add(__u32 i, void *data) { *(__u32 *)data += i; return 0; }\n\
        static long ten(__u32 i, void *data) { *(__u32 *)data += 10; return 0; }\n\
        SEC(\"xdp\") int pick(struct xdp_md *ctx) {\n\
            __u32 t = 0;\n\
            long r = bpf_loop(4, (ctx->data_end - ctx->data) & 1 ? ten : add, &t, 0);\n\
            return t + r;\n\
        }\n\
        char _license[] SEC(\"license\") = \"GPL\";\n";
    let Some(obj) = compile(&dir, "two_callbacks", source) else { return };
    let pcap = packets(&dir, 4);
    let pcap = pcap.to_str().expect("utf-8 path");
    let out = duet(&["run", "--json", "--pcap", pcap], &obj);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.contains("runs in the interpreter"), "{stderr}");
    let results = json(&out)["results"].clone();
    let lengths: Vec<usize> = duet_testdata::packets::corpus().into_iter().take(4).map(|(_, f)| f.len()).collect();
    let expected: Vec<u64> = lengths.iter().map(|len| if len & 1 == 1 { 44 } else { 10 }).collect();
    assert!(expected.contains(&44) && expected.contains(&10), "both callbacks run: frames of {lengths:?} bytes");
    assert_eq!(results, serde_json::json!(expected));
    let out = duet(&["run", "--engine", "jit", "--pcap", pcap], &obj);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("not compiled by duet's JIT"), "{stderr}");
    if kernel_available() {
        let out = duet(&["test-run", "--json", "--pcap", pcap], &obj);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(json(&out)["results"], results, "the kernel");
    }
}

/// A verified program may run far more instructions than the interpreter's budget for
/// unverified code (a million): here a bpf_loop of 300,000 calls, about 2.4 million
/// instructions. The interpreter runs it to the end, as the JIT and the kernel do.
#[test]
fn a_long_bpf_loop_runs_to_the_end_in_every_engine() {
    let dir = Scratch::new("long-loop");
    let source = "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n\
        static long step(__u32 i, void *data) { __u64 *x = data; *x = *x * 33 + i; return 0; }\n\
        SEC(\"xdp\") int long_loop(struct xdp_md *ctx) {\n\
            __u64 x = ctx->data_end - ctx->data;\n\
            long n = bpf_loop(300000, step, &x, 0);\n\
            return (x ^ (x >> 32) ^ n) & 0xffff;\n\
        }\n\
        char _license[] SEC(\"license\") = \"GPL\";\n";
    let Some(obj) = compile(&dir, "long_loop", source) else { return };
    let pcap = packets(&dir, 2);
    let pcap = pcap.to_str().expect("utf-8 path");
    let expected: Vec<u64> = duet_testdata::packets::corpus()
        .into_iter()
        .take(2)
        .map(|(_, f)| {
            let mut x = f.len() as u64;
            for i in 0..300_000u64 {
                x = x.wrapping_mul(33).wrapping_add(i);
            }
            (x ^ (x >> 32) ^ 300_000) & 0xffff
        })
        .collect();
    for engine in ["interp", "jit"] {
        let out = duet(&["run", "--json", "--engine", engine, "--pcap", pcap], &obj);
        assert!(out.status.success(), "{engine}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(json(&out)["results"], serde_json::json!(expected), "{engine}");
    }
    if kernel_available() {
        let out = duet(&["test-run", "--json", "--pcap", pcap], &obj);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(json(&out)["results"], serde_json::json!(expected), "the kernel");
    }
}

/// A renamed section keeps its programs' names: the linker stores section `tc` once, as the tail
/// of the function name `sum_tc`, in the table both share, so renaming the section in place used
/// to call the program `sum_tp`.
#[test]
fn a_renamed_section_keeps_its_programs_names() {
    let dir = Scratch::new("kept-names");
    let source = format!(
        "{PRELUDE}SEC(\"tc\") int sum_tc(struct __sk_buff *skb) {{ return 1; }}\nchar _license[] SEC(\"license\") = \"GPL\";\n"
    );
    let Some(obj) = compile(&dir, "sum_tc", &source) else { return };
    let out = duet(&["verify"], &obj);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("sum_tc: verified"), "{stdout}");
}

/// A program duet's VM cannot run (here: it calls `bpf_get_numa_node_id`, which has no meaning
/// in userspace) is refused when it is asked for, not for the whole object: its neighbour runs.
#[test]
fn a_program_the_vm_cannot_run_does_not_stop_its_neighbour() {
    let dir = Scratch::new("vm-neighbour");
    let source = "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n\
        SEC(\"xdp\") int plain(struct xdp_md *ctx) { return XDP_PASS; }\n\
        SEC(\"xdp\") int numa(struct xdp_md *ctx) { return bpf_get_numa_node_id() + 2; }\n\
        char _license[] SEC(\"license\") = \"GPL\";\n";
    let Some(obj) = compile(&dir, "neighbour", source) else { return };
    let pcap = packets(&dir, 2);
    let pcap = pcap.to_str().expect("utf-8 path");
    for engine in ["interp", "jit"] {
        let out = duet(&["run", "--json", "--engine", engine, "--pcap", pcap, "--program", "plain"], &obj);
        assert!(out.status.success(), "{engine}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(json(&out)["results"], serde_json::json!([2, 2]), "{engine}");
    }
    let out = duet(&["run", "--pcap", pcap, "--program", "numa"], &obj);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("program `numa`") && stderr.contains("get_numa_node_id"),
        "{stderr}"
    );
}
