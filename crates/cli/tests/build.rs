//! `duet build` and `duet new`, end to end, with the real `duet` binary.
//!
//! For each example in `examples/` (firewall, ratelimit, flowstats): `duet build` produces both
//! artifacts; the `.bpf.o` runs in the userspace VM (`duet run --deterministic --json`) over a
//! generated capture with the expected verdicts and maps; the `.wasm` is a valid module with the
//! `duet.maps` manifest, the exports of docs/ABI.md and only ABI imports, and gives the same
//! results in the Wasm host; and the kernel (`duet test-run`, root only) gives the same verdicts
//! and maps (minus the values that depend on time, named per example).
//!
//! The kernel part needs root (or CAP_BPF + CAP_NET_ADMIN). Elsewhere it says loudly that it
//! skipped; under `CI=true` it fails instead.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use duet::testing::{bytes_of, tcp_frame, udp_frame};
use serde_json::{Value as Json, json};
use wasmparser::{CompositeInnerType, ExternalKind, Payload, TypeRef, ValType};

const DUET: &str = env!("CARGO_BIN_EXE_duet");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Runs `duet` with `args`; panics with its output when it fails; returns stdout.
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

/// Builds an example with `duet build` and checks the artifacts exist; returns their paths.
fn build(example: &str) -> (PathBuf, PathBuf) {
    let dir = root().join("examples").join(example);
    let started = Instant::now();
    let stdout = duet(&["build", "--quiet", dir.to_str().unwrap()]);
    eprintln!("duet build {example}: {:.1} s", started.elapsed().as_secs_f64());
    let bpf = dir.join(format!("target/duet/{example}.bpf.o"));
    let wasm = dir.join(format!("target/duet/{example}.wasm"));
    assert_eq!(stdout.lines().collect::<Vec<_>>(), [bpf.to_str().unwrap(), wasm.to_str().unwrap()]);
    assert!(bpf.is_file() && wasm.is_file());
    (bpf, wasm)
}

fn write_pcap(name: &str, frames: &[Vec<u8>]) -> PathBuf {
    let dir = root().join("target/tmp/build-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.pcap"));
    duet_testdata::packets::write_pcap(std::fs::File::create(&path).unwrap(), frames).unwrap();
    path
}

fn write_json(name: &str, doc: &Json) -> PathBuf {
    let path = root().join("target/tmp/build-tests").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, doc.to_string()).unwrap();
    path
}

/// `duet run --json` (VM or Wasm) or `duet test-run --json` (kernel) of one artifact.
fn run(cmd: &str, artifact: &Path, pcap: &Path, maps_in: Option<&Path>, extra: &[&str]) -> Json {
    let mut args = vec![cmd, artifact.to_str().unwrap(), "--pcap", pcap.to_str().unwrap(), "--json"];
    if let Some(m) = maps_in {
        args.extend(["--maps-in", m.to_str().unwrap()]);
    }
    args.extend(extra);
    serde_json::from_str(&duet(&args)).unwrap()
}

/// Whether this process may use the kernel; says so loudly when not.
fn kernel_available() -> bool {
    match duet_kernel::check_access() {
        Ok(()) => true,
        Err(err) => {
            assert!(!ci(), "kernel part of the build tests cannot run: {err} (CI=true makes this a failure)");
            eprintln!("\n!!! SKIPPED the kernel part of the build tests: {err} !!!\n");
            false
        }
    }
}

/// Runs an example's capture in the VM (interpreter and JIT), in Wasm and (when possible) in the
/// kernel; checks the VM's verdicts and that every executor agrees, except for the maps in
/// `time_dependent`, which only the userspace executors (deterministic clock) must agree on.
fn check_everywhere(
    bpf: &Path,
    wasm: &Path,
    pcap: &Path,
    maps_in: Option<&Path>,
    verdicts: &[u64],
    time_dependent: &[&str],
    program: Option<&str>,
) -> Json {
    let program: Vec<&str> = program.map(|p| vec!["--program", p]).unwrap_or_default();
    let with = |args: &[&'static str]| -> Vec<&str> { args.iter().copied().chain(program.iter().copied()).collect() };
    let vm = run("run", bpf, pcap, maps_in, &with(&["--deterministic", "--cpus", "1"]));
    assert_eq!(vm["results"], json!(verdicts), "VM verdicts of {}", bpf.display());
    let in_wasm = run("run", wasm, pcap, maps_in, &with(&["--deterministic", "--cpus", "1", "--engine", "wasm"]));
    // Only the object's BTF gives typed views (`maps_typed`); the bytes must agree.
    let mut untyped = vm.clone();
    untyped.as_object_mut().unwrap().remove("maps_typed");
    assert_eq!(in_wasm, untyped, "Wasm and VM disagree on {}", wasm.display());
    let in_jit = run("run", bpf, pcap, maps_in, &with(&["--deterministic", "--cpus", "1", "--engine", "jit"]));
    assert_eq!(in_jit, vm, "JIT and interpreter disagree on {}", bpf.display());
    if kernel_available() {
        let kernel = run("test-run", bpf, pcap, maps_in, &with(&[]));
        assert_eq!(kernel["results"], vm["results"], "kernel and VM verdicts of {}", bpf.display());
        let strip = |doc: &Json| {
            let mut maps = doc["maps"].clone();
            for name in time_dependent {
                maps.as_object_mut().unwrap().remove(*name);
            }
            maps
        };
        assert_eq!(strip(&kernel), strip(&vm), "kernel and VM maps of {}", bpf.display());
    }
    vm
}

// === the .wasm against docs/ABI.md ===

/// The imports docs/ABI.md allows, with their signatures.
fn abi_imports() -> Vec<(&'static str, Vec<ValType>, Vec<ValType>)> {
    use ValType::{I32, I64};
    vec![
        ("map_lookup", vec![I32, I32, I32], vec![I32]),
        ("map_update", vec![I32, I32, I32, I64], vec![I64]),
        ("map_delete", vec![I32, I32], vec![I64]),
        ("map_add_u64", vec![I32, I32, I32, I64], vec![I64]),
        ("ktime_get_ns", vec![], vec![I64]),
        ("get_prandom_u32", vec![], vec![I32]),
        ("get_smp_processor_id", vec![], vec![I32]),
        ("trace", vec![I32, I32], vec![]),
        ("ringbuf_output", vec![I32, I32, I32, I64], vec![I64]),
    ]
}

/// Validates the module and checks its ABI surface; returns its manifest.
fn check_wasm(path: &Path, programs: &[&str]) -> Json {
    let bytes = std::fs::read(path).unwrap();
    wasmparser::Validator::new().validate_all(&bytes).unwrap_or_else(|e| panic!("{}: invalid: {e}", path.display()));

    let mut types = Vec::new();
    let mut func_types = Vec::new(); // type index of every function, imports first
    let mut exports = Vec::new();
    let mut manifest = None;
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        match payload.unwrap() {
            Payload::TypeSection(reader) => {
                for group in reader {
                    for ty in group.unwrap().into_types() {
                        match &ty.composite_type.inner {
                            CompositeInnerType::Func(f) => types.push((f.params().to_vec(), f.results().to_vec())),
                            other => panic!("unexpected type {other:?}"),
                        }
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.unwrap();
                    assert_eq!(import.module, "duet", "import {} from a module other than `duet`", import.name);
                    let TypeRef::Func(index) = import.ty else { panic!("import {} is not a function", import.name) };
                    let (params, results) = &types[index as usize];
                    let abi = abi_imports();
                    let (_, want_params, want_results) = abi
                        .iter()
                        .find(|(name, _, _)| *name == import.name)
                        .unwrap_or_else(|| panic!("import `{}` is not in docs/ABI.md", import.name));
                    assert_eq!((params, results), (want_params, want_results), "signature of import {}", import.name);
                    func_types.push(index);
                }
            }
            Payload::FunctionSection(reader) => func_types.extend(reader.into_iter().map(Result::unwrap)),
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.unwrap();
                    exports.push((export.name.to_owned(), export.kind, export.index));
                }
            }
            Payload::CustomSection(section) if section.name() == "duet.maps" => {
                manifest = Some(serde_json::from_slice::<Json>(section.data()).unwrap());
            }
            Payload::CustomSection(section) => {
                assert_ne!(section.name(), "duet.maps.v1", "duet build must replace the map records");
            }
            _ => {}
        }
    }
    let export_type = |name: &str| {
        let (_, kind, index) = exports.iter().find(|(n, _, _)| n == name).unwrap_or_else(|| panic!("no export {name}"));
        assert_eq!(*kind, ExternalKind::Func, "{name} is not a function");
        types[func_types[*index as usize] as usize].clone()
    };
    use ValType::I32;
    assert!(exports.iter().any(|(n, k, _)| n == "memory" && *k == ExternalKind::Memory), "no memory export");
    assert_eq!(export_type("duet_abi_version"), (vec![], vec![I32]));
    assert_eq!(export_type("duet_buffer"), (vec![I32], vec![I32]));
    for program in programs {
        assert_eq!(export_type(program), (vec![I32, I32], vec![I32]), "signature of {program}");
    }
    manifest.unwrap_or_else(|| panic!("{}: no duet.maps section", path.display()))
}

fn map_entry(name: &str, map_type: u32, key_size: u32, value_size: u32, max_entries: u32) -> Json {
    json!({"name": name, "type": map_type, "key_size": key_size, "value_size": value_size,
           "max_entries": max_entries, "flags": 0})
}

// === the examples ===

const ABORTED: u64 = 0;
const DROP: u64 = 1;
const PASS: u64 = 2;

#[test]
fn firewall_builds_and_runs_everywhere() {
    let (bpf, wasm) = build("firewall");
    let manifest = check_wasm(&wasm, &["duet_prog_xdp_firewall"]);
    assert_eq!(
        manifest,
        json!([
            map_entry("BLOCKED", 1, 4, 1, 1024),
            json!({"name": "BLOCKED_NETS", "type": 11, "key_size": 8, "value_size": 1, "max_entries": 256, "flags": 1}),
            map_entry("PORT_RULES", 1, 4, 1, 256),
            map_entry("VERDICTS", 2, 4, 16, 5)
        ])
    );

    let mut arp = udp_frame([1, 1, 1, 1], [2, 2, 2, 2], 5, 6, 0);
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    let mut bad_ihl = udp_frame([1, 1, 1, 1], [2, 2, 2, 2], 5, 6, 0);
    bad_ihl[14] = 0x44;
    let mut truncated = tcp_frame([1, 1, 1, 1], [2, 2, 2, 2], 5, 6, 0);
    truncated.truncate(40);
    let frames = vec![
        udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53, 10),  // pass
        tcp_frame([10, 0, 0, 9], [10, 0, 0, 2], 1000, 80, 0),   // blocked source: drop
        tcp_frame([1, 1, 1, 1], [2, 2, 2, 2], 5, 22, 0),        // TCP port 22 rule: drop
        udp_frame([1, 1, 1, 1], [2, 2, 2, 2], 5, 22, 0),        // UDP port 22, no rule: pass
        arp,                                                    // not IPv4: pass
        bad_ihl,                                                // malformed IPv4: drop
        truncated,                                              // TCP header cut short: pass
        vec![0; 14],                                            // Ethernet type 0: pass
        tcp_frame([172, 16, 5, 9], [10, 0, 0, 2], 1000, 80, 0), // in 172.16.0.0/12: drop
        tcp_frame([172, 32, 0, 1], [10, 0, 0, 2], 1000, 80, 0), // just outside it: pass
    ];
    let total: usize = frames.iter().map(Vec::len).sum();
    let pcap = write_pcap("firewall", &frames);
    let maps_in = write_json(
        "firewall-maps.json",
        &json!({
            "BLOCKED": {"0a000009": "01"},
            "BLOCKED_NETS": {"0c000000ac100000": "01"},
            "PORT_RULES": {"06000016": "01"}
        }),
    );
    let vm = check_everywhere(
        &bpf,
        &wasm,
        &pcap,
        Some(&maps_in),
        &[PASS, DROP, DROP, PASS, PASS, DROP, PASS, PASS, DROP, PASS],
        &[],
        None,
    );

    // VERDICTS: packets and bytes per verdict, summing to the capture.
    let verdicts = vm["maps"]["VERDICTS"].as_object().unwrap();
    let counter = |verdict: u32| {
        let hex = verdicts[&hex_of(&verdict.to_le_bytes())].as_str().unwrap().to_owned();
        let bytes = unhex(&hex);
        (u64::from_le_bytes(bytes[..8].try_into().unwrap()), u64::from_le_bytes(bytes[8..].try_into().unwrap()))
    };
    assert_eq!((counter(ABORTED as u32).0, counter(DROP as u32).0, counter(PASS as u32).0), (0, 4, 6));
    assert_eq!(counter(DROP as u32).1 + counter(PASS as u32).1, total as u64);

    // The object is what `duet inspect` and the kernel's loaders expect.
    let inspect = duet(&["inspect", bpf.to_str().unwrap(), "--no-disasm"]);
    assert!(
        inspect.contains("firewall") && inspect.contains("BLOCKED") && inspect.contains("license \"Dual MIT/GPL\"")
    );
}

#[test]
fn ratelimit_builds_and_runs_everywhere() {
    let (bpf, wasm) = build("ratelimit");
    let manifest = check_wasm(&wasm, &["duet_prog_xdp_ratelimit"]);
    assert_eq!(
        manifest,
        json!([map_entry("BUCKETS", 9, 4, 16, 4096), map_entry("CONFIG", 2, 4, 16, 1), map_entry("STATS", 2, 4, 8, 2)])
    );
    // 15 packets from one source (the burst of 10 passes, the rest drops: the deterministic clock
    // advances 1 µs per packet, the kernel's by a few µs, far from the 10 ms a token takes),
    // then one from another source.
    let mut frames: Vec<Vec<u8>> = (0..15).map(|_| udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1, 53, 0)).collect();
    frames.push(udp_frame([10, 0, 0, 2], [10, 0, 0, 1], 1, 53, 0));
    let pcap = write_pcap("ratelimit", &frames);
    let mut verdicts = vec![PASS; 10];
    verdicts.extend([DROP; 5]);
    verdicts.push(PASS);
    // BUCKETS holds timestamps and fractional tokens: only the injected clocks agree on them.
    let vm = check_everywhere(&bpf, &wasm, &pcap, None, &verdicts, &["BUCKETS"], None);
    assert_eq!(
        vm["maps"]["STATS"],
        json!({"00000000": hex_of(&11u64.to_le_bytes()), "01000000": hex_of(&5u64.to_le_bytes())})
    );

    // A CONFIG seeded from --maps-in changes the limits: a burst of 2.
    let config = [1u64.to_le_bytes(), 2u64.to_le_bytes()].concat();
    let maps_in = write_json("ratelimit-maps.json", &json!({"CONFIG": {"00000000": hex_of(&config)}}));
    let mut verdicts = vec![PASS; 2];
    verdicts.extend([DROP; 13]);
    verdicts.push(PASS);
    check_everywhere(&bpf, &wasm, &pcap, Some(&maps_in), &verdicts, &["BUCKETS"], None);
}

#[test]
fn flowstats_builds_and_runs_everywhere() {
    let (bpf, wasm) = build("flowstats");
    let manifest = check_wasm(&wasm, &["duet_prog_xdp_flowstats", "duet_prog_probe_flow_end"]);
    assert_eq!(
        manifest,
        json!([
            map_entry("FLOWS", 9, 16, 16, 1024),
            map_entry("NEW_FLOWS", 27, 0, 0, 65536),
            map_entry("ENDED_FLOWS", 27, 0, 0, 65536)
        ])
    );
    let a = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53, 10);
    let b = tcp_frame([10, 0, 0, 3], [10, 0, 0, 2], 2000, 80, 0);
    let mut arp = udp_frame([1, 1, 1, 1], [2, 2, 2, 2], 5, 6, 0);
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    let frames = vec![a.clone(), b.clone(), a.clone(), arp, a.clone()];
    let pcap = write_pcap("flowstats", &frames);
    let vm = check_everywhere(&bpf, &wasm, &pcap, None, &[PASS; 5], &[], Some("flowstats"));

    let key_a = bytes_of(&flowstats_key([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53, 17));
    let key_b = bytes_of(&flowstats_key([10, 0, 0, 3], [10, 0, 0, 2], 2000, 80, 6));
    let stats = |packets: u64, bytes: usize| hex_of(&[packets.to_le_bytes(), (bytes as u64).to_le_bytes()].concat());
    assert_eq!(vm["maps"]["FLOWS"], json!({hex_of(&key_a): stats(3, 3 * a.len()), hex_of(&key_b): stats(1, b.len())}));

    // One NEW_FLOWS record per new flow, in order: the key, then the deterministic time.
    let object = duet_object::Object::parse(&std::fs::read(&bpf).unwrap()).unwrap();
    let options = duet_vm::LoadOptions { env: duet_vm::Env::deterministic(), ..Default::default() };
    let module = duet_vm::Module::load(&object, options).unwrap();
    let mut vm = module.interpreter("flowstats").unwrap();
    let mut packet = duet_vm::XdpPacket::new(&[]);
    for frame in &frames {
        packet.reset(frame);
        assert_eq!(vm.run_xdp(&mut packet).unwrap(), PASS);
    }
    let records = module.map("NEW_FLOWS").unwrap().ringbuf_drain();
    assert_eq!(records.len(), 2);
    assert_eq!((&records[0][..16], &records[1][..16]), (&key_a[..], &key_b[..]));
    assert!(records.iter().all(|r| r.len() == 24));

    // `flow_end` reads its record as the call's arguments in every executor: in the VM it is a
    // kprobe, whose two first argument registers (x86-64 `rdi`, `rsi` in `struct pt_regs`) hold
    // the key's two 8-byte halves; the Wasm host gets the same 16 bytes as its record. Both end
    // flow a (removed from FLOWS, its final counts in ENDED_FLOWS) and leave b.
    let mut regs = [0u8; 168];
    regs[112..120].copy_from_slice(&key_a[..8]);
    regs[104..112].copy_from_slice(&key_a[8..]);
    let mut probe = module.interpreter("flow_end").unwrap();
    probe.run(&mut regs).unwrap();
    let wasm_options = duet_wasm::WasmOptions { env: duet_helpers::Env::deterministic(), ..Default::default() };
    let wasm_module =
        std::sync::Arc::new(duet_wasm::WasmModule::load(&std::fs::read(&wasm).unwrap(), &wasm_options).unwrap());
    let mut xdp = wasm_module.executor("flowstats").unwrap();
    for frame in &frames {
        assert_eq!(xdp.run_xdp(&mut frame.clone()).unwrap(), PASS as u32);
    }
    wasm_module.executor("flow_end").unwrap().run_probe(&key_a).unwrap();
    let ended_vm = module.map("ENDED_FLOWS").unwrap().ringbuf_drain();
    let ended_wasm = wasm_module.map("ENDED_FLOWS").unwrap().ringbuf_drain();
    assert_eq!(ended_vm.len(), 1);
    assert_eq!(&ended_vm[0][..16], &key_a[..]);
    assert_eq!(ended_vm, ended_wasm, "the kprobe's registers and the Wasm record mean the same");
    for m in [module.map("FLOWS").unwrap(), wasm_module.map("FLOWS").unwrap()] {
        let keys: Vec<Vec<u8>> = m.entries().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![key_b.to_vec()]);
    }
}

/// flowstats' `FlowKey`, built here byte for byte so the test does not depend on the example.
#[derive(Clone, Copy)]
#[repr(C)]
struct FlowKey([u8; 16]);
// SAFETY: sixteen bytes.
unsafe impl duet::Pod for FlowKey {}

fn flowstats_key(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, protocol: u8) -> FlowKey {
    let mut k = [0u8; 16];
    k[..4].copy_from_slice(&src);
    k[4..8].copy_from_slice(&dst);
    k[8..10].copy_from_slice(&sport.to_be_bytes());
    k[10..12].copy_from_slice(&dport.to_be_bytes());
    k[12] = protocol;
    FlowKey(k)
}

// === duet new ===

#[test]
fn new_crates_build_and_test_out_of_the_box() {
    let scratch = root().join("target/tmp/build-tests/new");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let out = Command::new(DUET).args(["new", "my-filter"]).current_dir(&scratch).output().unwrap();
    assert!(out.status.success(), "duet new failed: {}", String::from_utf8_lossy(&out.stderr));
    let dir = scratch.join("my-filter");

    // Share the examples' compiled SDK and `core`: only the new crate itself is compiled.
    let target_dir = root().join("examples/target");
    let built = Command::new(DUET)
        .args(["build", "--quiet", dir.to_str().unwrap()])
        .env("CARGO_TARGET_DIR", &target_dir)
        .output()
        .unwrap();
    assert!(built.status.success(), "duet build of a new crate failed: {}", String::from_utf8_lossy(&built.stderr));
    let bpf = dir.join("target/duet/my-filter.bpf.o");
    let wasm = dir.join("target/duet/my-filter.wasm");
    check_wasm(&wasm, &["duet_prog_xdp_my_filter"]);
    let inspect = duet(&["inspect", bpf.to_str().unwrap(), "--no-disasm"]);
    assert!(inspect.contains("my_filter") && inspect.contains("PROTOCOLS"), "{inspect}");

    let tested = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["test", "--quiet"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target_dir)
        .output()
        .unwrap();
    assert!(tested.status.success(), "cargo test of a new crate failed: {}", String::from_utf8_lossy(&tested.stderr));

    // A second `duet new` with the same name refuses to overwrite it.
    let again = Command::new(DUET).args(["new", "my-filter"]).current_dir(&scratch).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
}

#[test]
fn panic_paths_are_reported_with_their_source_line() {
    let scratch = root().join("target/tmp/build-tests/panicky");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let out = Command::new(DUET).args(["new", "panicky"]).current_dir(&scratch).output().unwrap();
    assert!(out.status.success(), "duet new failed: {}", String::from_utf8_lossy(&out.stderr));
    let dir = scratch.join("panicky");
    let lib = dir.join("src/lib.rs");
    let template = std::fs::read_to_string(&lib).unwrap();
    let bpf = dir.join("target/duet/panicky.bpf.o");
    // Builds `source` for BPF and returns stderr; the build must fail and leave no `.bpf.o`,
    // not even one from an earlier build.
    let build_fails = |source: &str| {
        std::fs::write(&lib, source).unwrap();
        std::fs::create_dir_all(bpf.parent().unwrap()).unwrap();
        std::fs::write(&bpf, b"an artifact of an earlier build").unwrap();
        let built = Command::new(DUET)
            .args(["build", "--quiet", "--bpf-only", dir.to_str().unwrap()])
            .env("CARGO_TARGET_DIR", root().join("examples/target"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&built.stderr).into_owned();
        assert!(!built.status.success(), "must not build: {stderr}");
        assert!(!bpf.exists(), "a failed build leaves no artifact: {stderr}");
        stderr
    };

    let indexing = template.replace(
        "let _ = PROTOCOLS.add_u64(u32::from(ip.protocol), 1);",
        "let weights = [1u64, 2, 3];\n    let _ = PROTOCOLS.add_u64(0, weights[usize::from(ip.protocol)]);",
    );
    let stderr = build_fails(&indexing);
    assert!(
        stderr.contains("program `panicky` can panic")
            && stderr.contains("src/lib.rs:29: let _ = PROTOCOLS.add_u64(0, weights[usize::from(ip.protocol)]);"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicking.rs"), "only the crate's own lines: {stderr}");

    // `unwrap` panics inside `core`; the line named is still the user's.
    let unwrap = template.replace(
        "let _ = PROTOCOLS.add_u64(u32::from(ip.protocol), 1);",
        "let small = u8::try_from(u32::from(ip.protocol) * 3).unwrap();\n    let _ = PROTOCOLS.add_u64(u32::from(small), 1);",
    );
    let stderr = build_fails(&unwrap);
    assert!(stderr.contains("src/lib.rs:") && stderr.contains(".unwrap()"), "{stderr}");
    for sdk_or_core in ["option.rs", "result.rs", "panicking.rs", "bpf.rs", "xdp.rs"] {
        assert!(!stderr.contains(sdk_or_core), "{sdk_or_core} named: {stderr}");
    }
}

#[test]
fn building_a_directory_without_a_crate_explains_what_to_do() {
    let out = Command::new(DUET).args(["build", "/nonexistent-duet-crate"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("has no Cargo.toml") && stderr.contains("duet new"), "{stderr}");
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// The differential test of issue 5: every example over the whole generated packet corpus in
/// the kernel, the userspace VM and Wasm gives identical verdict sequences and identical final
/// maps. Excluded, and why: frames shorter than 14 bytes (the kernel refuses to test-run them),
/// global-data maps (`.rodata*`, which only the `.bpf.o` has), and ratelimit's `BUCKETS`, whose
/// token timestamps come from the kernel's real clock there and from the deterministic clock in
/// the VM and Wasm (the verdicts still agree: the corpus runs in well under one refill period).
#[test]
fn examples_agree_across_executors_on_the_packet_corpus() {
    let frames: Vec<Vec<u8>> =
        duet_testdata::packets::corpus().into_iter().map(|(_, f)| f).filter(|f| f.len() >= 14).collect();
    let pcap = write_pcap("corpus-3way", &frames);
    // Seed the firewall so the corpus exercises drops: block 10.0.0.0/24 sources and TCP 23.
    let mut blocked = serde_json::Map::new();
    for last in 0..=255u8 {
        blocked.insert(format!("0a0000{last:02x}"), json!("01"));
    }
    let firewall_in = write_json(
        "corpus-3way-firewall.json",
        &json!({ "maps": { "BLOCKED": blocked, "PORT_RULES": { "06000017": "01" } } }),
    );
    let kernel = kernel_available();
    for (example, program, maps_in, time_dependent) in [
        ("firewall", None, Some(firewall_in.as_path()), &[][..]),
        ("ratelimit", None, None, &["BUCKETS"][..]),
        ("flowstats", Some("flowstats"), None, &[][..]),
    ] {
        let (bpf, wasm) = build(example);
        let program: Vec<&str> = program.map(|p| vec!["--program", p]).unwrap_or_default();
        let args =
            |base: &[&'static str]| -> Vec<&str> { base.iter().copied().chain(program.iter().copied()).collect() };
        let vm = run("run", &bpf, &pcap, maps_in, &args(&["--deterministic", "--cpus", "1"]));
        assert_eq!(vm["results"].as_array().map(Vec::len), Some(frames.len()), "{example}: one verdict per frame");
        let in_wasm = run("run", &wasm, &pcap, maps_in, &args(&["--deterministic", "--cpus", "1", "--engine", "wasm"]));
        // Only the object's BTF gives typed views (`maps_typed`); everything else must agree.
        let mut vm_untyped = vm.clone();
        vm_untyped.as_object_mut().unwrap().remove("maps_typed");
        assert_eq!(in_wasm, vm_untyped, "{example}: Wasm and the VM disagree over the packet corpus");
        if kernel {
            let in_kernel = run("test-run", &bpf, &pcap, maps_in, &args(&[]));
            assert_eq!(in_kernel["results"], vm["results"], "{example}: kernel and VM verdicts differ");
            let strip = |doc: &Json| {
                let mut maps = doc["maps"].as_object().cloned().unwrap_or_default();
                maps.retain(|name, _| !name.starts_with('.') && !time_dependent.contains(&name.as_str()));
                maps
            };
            assert_eq!(strip(&in_kernel), strip(&vm), "{example}: kernel and VM maps differ");
        }
        let verdicts: std::collections::BTreeSet<u64> =
            vm["results"].as_array().unwrap().iter().filter_map(Json::as_u64).collect();
        eprintln!(
            "{example}: {} frames agree in {} executors; verdicts seen {verdicts:?}",
            frames.len(),
            if kernel { 3 } else { 2 }
        );
    }
}
