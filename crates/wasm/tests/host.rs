//! The wasmtime host against hand-written ABI v1 modules (tests/wat): every import, its errno
//! values, the limits, the AOT cache, and map sharing with the eBPF VM.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use duet_helpers::Env;
use duet_maps::{BPF_EXIST, BPF_NOEXIST, MapValue};
use duet_wasm::{CacheStatus, GuestFault, ProgramKind, WasmError, WasmModule, WasmOptions};

const FIREWALL: &str = include_str!("wat/firewall.wat");
const ABI: &str = include_str!("wat/abi.wat");

fn wasm(wat: &str) -> Vec<u8> {
    wat::parse_str(wat).expect("test WAT parses")
}

fn options() -> WasmOptions {
    WasmOptions { env: Env::deterministic(), ..WasmOptions::default() }
}

fn load(wat: &str) -> WasmModule {
    WasmModule::load(&wasm(wat), &options()).expect("module loads")
}

/// An Ethernet + IPv4 header from `src`, with `extra` payload bytes.
fn ipv4_from(src: [u8; 4]) -> Vec<u8> {
    let mut p = vec![0u8; 34];
    p[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    p[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    p[12..14].copy_from_slice(&[0x08, 0x00]);
    p[14] = 0x45;
    p[26..30].copy_from_slice(&src);
    p[30..34].copy_from_slice(&[10, 0, 0, 99]);
    p
}

fn u64_at(value: &MapValue) -> u64 {
    u64::from_le_bytes(value.as_single().expect("not per-CPU")[..8].try_into().expect("8 bytes"))
}

fn record(parts: &[u32]) -> Vec<u8> {
    parts.iter().flat_map(|p| p.to_le_bytes()).collect()
}

#[test]
fn firewall_drops_blocked_sources_and_counts_verdicts() {
    let module = load(FIREWALL);
    assert_eq!(module.programs().len(), 1);
    assert_eq!((module.programs()[0].name.as_str(), module.programs()[0].kind), ("firewall", ProgramKind::Xdp));
    let names: Vec<&str> = module.maps().map(|(n, _)| n).collect();
    assert_eq!(names, ["BLOCKED", "VERDICTS", "EVENTS"]);
    module.map("BLOCKED").unwrap().update(&[10, 0, 0, 1], &[1], 0, None).expect("seed");

    let mut fw = module.executor("firewall").expect("executor");
    assert_eq!(fw.run_xdp(&mut ipv4_from([10, 0, 0, 1])).unwrap(), 1, "blocked source is dropped");
    assert_eq!(fw.run_xdp(&mut ipv4_from([10, 0, 0, 2])).unwrap(), 2, "other source passes");
    assert_eq!(fw.run_xdp(&mut vec![]).unwrap(), 2, "an empty frame passes");

    let corpus = duet_testdata::packets::corpus();
    for (name, frame) in &corpus {
        let mut frame = frame.clone();
        let verdict = fw.run_xdp(&mut frame).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(verdict == 1 || verdict == 2, "{name}: {verdict}");
    }
    let verdicts = module.map("VERDICTS").unwrap();
    let drops = u64_at(&verdicts.get(&1u32.to_le_bytes()).unwrap());
    let passes = u64_at(&verdicts.get(&2u32.to_le_bytes()).unwrap());
    assert_eq!(drops + passes, corpus.len() as u64 + 3, "every run counted once");
    let events = module.map("EVENTS").unwrap().ringbuf_drain();
    assert_eq!(events.len() as u64, drops);
    assert!(events.iter().all(|e| e == &[10, 0, 0, 1]), "{events:?}");
}

#[test]
fn map_imports_have_kernel_errno_semantics() {
    let module = load(ABI);
    let mut update = module.executor("update").unwrap();
    let mut lookup = module.executor("lookup").unwrap();
    let mut delete = module.executor("delete").unwrap();
    let mut add = module.executor("add").unwrap();
    let upd = |ex: &mut duet_wasm::Executor, key: u32, value: u64, flags: u64| {
        let mut rec = key.to_le_bytes().to_vec();
        rec.extend_from_slice(&value.to_le_bytes());
        rec.push(flags as u8);
        ex.run_probe(&rec).unwrap() as i32
    };
    assert_eq!(upd(&mut update, 7, 70, BPF_EXIST), -2, "BPF_EXIST on a missing key: ENOENT");
    assert_eq!(upd(&mut update, 7, 70, BPF_NOEXIST), 0);
    assert_eq!(upd(&mut update, 7, 71, BPF_NOEXIST), -17, "BPF_NOEXIST on a present key: EEXIST");
    assert_eq!(upd(&mut update, 8, 80, 0), 0);
    assert_eq!(upd(&mut update, 9, 90, 0), -7, "H holds two entries: E2BIG");
    assert_eq!(upd(&mut update, 7, 72, 5), -22, "unknown flags: EINVAL");

    assert_eq!(lookup.run_probe(&record(&[7])).unwrap(), 1);
    assert_eq!(lookup.run_probe(&record(&[9])).unwrap(), 0);
    assert_eq!(add.run_probe(&record(&[0, 7, 0])).unwrap(), 0);
    assert_eq!(u64_at(&module.map("H").unwrap().get(&7u32.to_le_bytes()).unwrap()), 75);
    assert_eq!(add.run_probe(&record(&[0, 9, 0])).unwrap() as i32, -2, "absent key: ENOENT");
    assert_eq!(add.run_probe(&record(&[0, 7, 4])).unwrap() as i32, -22, "unaligned offset: EINVAL");
    assert_eq!(add.run_probe(&record(&[0, 7, 8])).unwrap() as i32, -22, "offset + 8 > value_size: EINVAL");
    assert_eq!(add.run_probe(&record(&[1, 3, 0])).unwrap(), 0, "array slot");
    assert_eq!(add.run_probe(&record(&[1, 4, 0])).unwrap() as i32, -2, "array index out of range");

    assert_eq!(delete.run_probe(&record(&[7])).unwrap(), 0);
    assert_eq!(delete.run_probe(&record(&[7])).unwrap() as i32, -2, "delete of a missing key: ENOENT");
    assert_eq!(lookup.run_probe(&record(&[7])).unwrap(), 0);
    let mut delete_array = module.executor("delete_array").unwrap();
    assert_eq!(delete_array.run_probe(&record(&[0])).unwrap() as i32, -22, "arrays cannot delete: EINVAL");
}

#[test]
fn lookup_copies_the_value_into_guest_memory() {
    let module = load(ABI);
    let value = 0x1122_3344_5566_7788u64.to_le_bytes();
    module.map("H").unwrap().update(&3u32.to_le_bytes(), &value, 0, None).unwrap();
    let mut ex = module.executor("lookup_into_packet").unwrap();
    let mut packet = vec![3, 0, 0, 0, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xff];
    assert_eq!(ex.run_xdp(&mut packet).unwrap(), 1, "found");
    assert_eq!(packet[4..12], value);
    assert_eq!(packet[12], 0xff, "nothing past the value is written");
    let mut missing = vec![4, 0, 0, 0, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee];
    assert_eq!(ex.run_xdp(&mut missing).unwrap(), 0, "not found");
    assert_eq!(missing[4..], [0xee; 8], "value_out untouched when absent");
}

#[test]
fn per_cpu_maps_use_the_executors_cpu() {
    let options = WasmOptions { n_cpus: 3, ..options() };
    let module = WasmModule::load(&wasm(ABI), &options).unwrap();
    for (cpu, runs) in [(0, 1), (2, 3)] {
        let mut ex = module.executor_on_cpu("percpu", cpu).unwrap();
        for _ in 0..runs {
            assert_eq!(ex.run_probe(&[]).unwrap(), 0);
        }
    }
    let MapValue::PerCpu(values) = module.map("P").unwrap().get(&0u32.to_le_bytes()).unwrap() else {
        panic!("P is per-CPU")
    };
    let counts: Vec<u64> = values.iter().map(|v| u64::from_le_bytes(v[..8].try_into().unwrap())).collect();
    assert_eq!(counts, [1, 0, 3]);
    assert!(matches!(module.executor_on_cpu("percpu", 3), Err(WasmError::Options { .. })));
}

#[test]
fn time_randomness_and_cpu_come_from_the_env() {
    let mut env = Env::deterministic();
    env.cpu = 1;
    let options = WasmOptions { n_cpus: 2, env, ..WasmOptions::default() };
    let module = WasmModule::load(&wasm(ABI), &options).unwrap();
    module.executor("env").unwrap().run_probe(&[]).unwrap();
    let a = module.map("A").unwrap();
    let slot = |i: u32| u64_at(&a.get(&i.to_le_bytes()).unwrap());
    let reference = Env::deterministic();
    assert_eq!(slot(0), (reference.clock)(), "first clock read");
    assert_eq!(slot(1), u64::from((reference.random)()), "first random number");
    assert_eq!(slot(2), 1, "cpu");
}

#[test]
fn ringbuf_output_and_trace() {
    let module = load(ABI);
    let mut emit = module.executor("emit").unwrap();
    assert_eq!(emit.run_probe(b"event one").unwrap(), 0);
    assert_eq!(emit.run_probe(b"two").unwrap(), 0);
    let ring = module.map("R").unwrap();
    assert_eq!(ring.ringbuf_drain(), [b"event one".to_vec(), b"two".to_vec()]);
    assert_eq!(module.take_log(), ["hello from wasm", "hello from wasm"]);
    let big = vec![0u8; 4096];
    assert_eq!(emit.run_probe(&big).unwrap() as i32, -11, "no room: EAGAIN");
    let mut bad = module.executor("emit_bad_flags").unwrap();
    assert_eq!(bad.run_probe(b"x").unwrap() as i32, -22, "unknown flags: EINVAL");
}

#[test]
fn xdp_rewrites_are_copied_back() {
    let module = load(ABI);
    let mut reflect = module.executor("reflect").unwrap();
    let mut packet = ipv4_from([10, 0, 0, 1]);
    let original = packet.clone();
    assert_eq!(reflect.run_xdp(&mut packet).unwrap(), 3, "XDP_TX");
    assert_eq!(packet[..6], original[6..12]);
    assert_eq!(packet[6..12], original[..6]);
    assert_eq!(packet[12..], original[12..]);
}

#[test]
fn an_infinite_loop_hits_the_deadline_and_the_host_goes_on() {
    let options = WasmOptions { deadline: Duration::from_millis(50), ..options() };
    let module = WasmModule::load(&wasm(ABI), &options).unwrap();
    let mut spin = module.executor("spin").unwrap();
    for _ in 0..2 {
        let started = Instant::now();
        let err = spin.run_xdp(&mut vec![0u8; 64]).expect_err("never returns");
        assert!(matches!(&err, WasmError::Deadline { program, .. } if program == "spin"), "{err:?}");
        assert!(err.to_string().contains("`spin` ran past its deadline"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5), "stopped after {:?}", started.elapsed());
    }
    let mut reflect = module.executor("reflect").unwrap();
    assert_eq!(reflect.run_xdp(&mut ipv4_from([1, 2, 3, 4])).unwrap(), 3, "other programs still run");
}

#[test]
fn bad_guest_pointers_and_maps_trap_with_the_program_name() {
    let module = load(ABI);
    let err = module.executor("oob_key").unwrap().run_xdp(&mut vec![0u8; 14]).unwrap_err();
    match &err {
        WasmError::Fault { program, source: GuestFault::OutOfBounds { import, what, ptr, .. } } => {
            assert_eq!((program.as_str(), *import, *what, *ptr), ("oob_key", "map_lookup", "key", 65534));
        }
        other => panic!("{other:?}"),
    }
    // The fault is the error's source, said once (not repeated in its own message).
    let fault = std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default();
    assert!(fault.contains("outside linear memory") && !err.to_string().contains(&fault), "{err}: {fault}");
    let err = module.executor("bad_map").unwrap().run_xdp(&mut vec![0u8; 14]).unwrap_err();
    assert!(matches!(err, WasmError::Fault { source: GuestFault::NoSuchMap { id: 9, n_maps: 4, .. }, .. }), "{err:?}");
    let err = module.executor("lookup_ringbuf").unwrap().run_xdp(&mut vec![0u8; 14]).unwrap_err();
    assert!(matches!(err, WasmError::Fault { source: GuestFault::WrongMapType { .. }, .. }), "{err:?}");
}

#[test]
fn a_trap_is_an_error_and_the_next_run_gets_a_fresh_instance() {
    let module = load(ABI);
    let mut ex = module.executor("crash_on_empty").unwrap();
    let err = ex.run_xdp(&mut vec![]).unwrap_err();
    assert!(matches!(&err, WasmError::Trap { program, .. } if program == "crash_on_empty"), "{err:?}");
    assert!(err.to_string().contains("unreachable"), "{err}");
    assert_eq!(ex.run_xdp(&mut vec![1]).unwrap(), 2);
}

#[test]
fn memory_is_capped_per_instance() {
    let options = WasmOptions { memory_limit: 4 << 20, ..options() };
    let module = WasmModule::load(&wasm(ABI), &options).unwrap();
    let pages = module.executor("hog").unwrap().run_probe(&[]).unwrap();
    assert_eq!(pages, 64, "4 MiB is 64 pages: growing past them fails inside the guest");

    let greedy = ABI.replace("(memory (export \"memory\") 1)", "(memory (export \"memory\") 100)");
    let err = WasmModule::load(&wasm(&greedy), &options).unwrap_err();
    assert!(err.to_string().contains("over the memory limit"), "{err}");
}

#[test]
fn programs_of_the_wrong_kind_or_name_are_refused() {
    let module = load(ABI);
    let err = module.executor("reflect").unwrap().run_probe(&[]).unwrap_err();
    assert!(matches!(err, WasmError::WrongKind { kind: ProgramKind::Xdp, expected: ProgramKind::Probe, .. }));
    let err = module.executor("nope").unwrap_err();
    assert!(err.to_string().contains("no program named `nope`"), "{err}");
    assert!(err.to_string().contains("`reflect`"), "lists what exists: {err}");
}

#[test]
fn modules_off_the_abi_are_rejected_clearly() {
    let prog_sig = "(func (export \"duet_prog_xdp_firewall\") (param $data i32) (param $len i32)";
    let cases: [(String, &str); 8] = [
        (
            FIREWALL.replace("(func (export \"duet_abi_version\") (result i32) (i32.const 1))", ""),
            "no `duet_abi_version`",
        ),
        (FIREWALL.replace("(result i32) (i32.const 1))", "(result i32) (i32.const 4))"), "returned 4"),
        (
            FIREWALL.replace(
                "(import \"duet\" \"map_lookup\"",
                "(import \"duet\" \"tail_call\" (func (param i32 i32) (result i64)))\n(import \"duet\" \"map_lookup\"",
            ),
            "which needs version 3",
        ),
        (FIREWALL.replace("\"duet\" \"map_lookup\"", "\"env\" \"map_lookup\""), "imports `env.map_lookup`"),
        (FIREWALL.replace("\"duet\" \"map_lookup\"", "\"duet\" \"map_find\""), "imports `duet.map_find`"),
        (FIREWALL.replace(prog_sig, &format!("{prog_sig} (param i64)")), "duet_prog_xdp_firewall"),
        (FIREWALL.replace("duet_prog_xdp_firewall", "firewall"), "no programs"),
        (FIREWALL.replace("(memory (export \"memory\") 1)", "(memory 1)"), "no `memory` export"),
    ];
    for (wat, want) in cases {
        let err = WasmModule::load(&wasm(&wat), &options()).expect_err(want);
        assert!(matches!(err, WasmError::Abi { .. }), "{err:?}");
        assert!(err.to_string().contains(want), "{err} should mention {want:?}");
    }
    let wrong_import_type = r#"(module
      (import "duet" "map_lookup" (func (param i32 i32 i32) (result i64)))
      (memory (export "memory") 1)
      (func (export "duet_abi_version") (result i32) (i32.const 1))
      (func (export "duet_buffer") (param i32) (result i32) (i32.const 0))
      (func (export "duet_prog_probe_p") (param i32 i32) (result i32) (i32.const 0)))"#;
    let err = WasmModule::load(&wasm(wrong_import_type), &options()).unwrap_err();
    assert!(matches!(err, WasmError::Abi { .. }) && format!("{err}").contains("map_lookup"), "{err}");
    assert!(matches!(WasmModule::load(b"\x7fELF", &options()), Err(WasmError::Invalid { .. })));
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("duet-wasm-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn compiled_modules_are_cached_by_content_hash() {
    let scratch = Scratch::new("cache");
    let options = WasmOptions { cache_dir: Some(scratch.0.clone()), ..options() };
    let bytes = wasm(FIREWALL);
    let first = WasmModule::load(&bytes, &options).unwrap();
    let CacheStatus::Stored(path) = first.cache_status().clone() else { panic!("{:?}", first.cache_status()) };
    let second = WasmModule::load(&bytes, &options).unwrap();
    assert_eq!(second.cache_status(), &CacheStatus::Hit(path.clone()));
    second.map("BLOCKED").unwrap().update(&[1, 1, 1, 1], &[1], 0, None).unwrap();
    assert_eq!(second.executor("firewall").unwrap().run_xdp(&mut ipv4_from([1, 1, 1, 1])).unwrap(), 1);

    // Other bytes, other key.
    let other = WasmModule::load(&wasm(ABI), &options).unwrap();
    assert!(matches!(other.cache_status(), CacheStatus::Stored(p) if *p != path));

    // A damaged file is not trusted: the module is recompiled and the file replaced.
    std::fs::write(&path, b"garbage").unwrap();
    let third = WasmModule::load(&bytes, &options).unwrap();
    assert!(
        matches!(third.cache_status(), CacheStatus::Failed(why) if why.contains("recompiled")),
        "{:?}",
        third.cache_status()
    );
    assert!(matches!(WasmModule::load(&bytes, &options).unwrap().cache_status(), CacheStatus::Hit(_)));
}

fn bpf_object(name: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"), PathBuf::from);
    let path = dir.join("bpf").join(name);
    if path.exists() {
        return Some(path);
    }
    let msg = format!("{} is missing; run `cargo xtask build-bpf`", path.display());
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg} (CI=true makes this a failure)");
    eprintln!("\n!!! SKIPPED: {msg} !!!\n");
    None
}

/// A Wasm program declaring parse.o's `verdict_count` map: it counts every packet as XDP_PASS.
const COUNT_PASS: &str = r#"(module
  (import "duet" "map_add_u64" (func $add (param i32 i32 i32 i64) (result i64)))
  (@custom "duet.maps" "[{\"name\":\"verdict_count\",\"type\":2,\"key_size\":4,\"value_size\":8,\"max_entries\":8,\"flags\":0}]")
  (memory (export "memory") 1)
  (func (export "duet_abi_version") (result i32) (i32.const 1))
  (func (export "duet_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "duet_prog_xdp_count") (param i32 i32) (result i32)
    (i32.store (i32.const 0) (i32.const 2))
    (drop (call $add (i32.const 0) (i32.const 0) (i32.const 0) (i64.const 1)))
    (i32.const 2)))"#;

#[test]
fn a_map_is_shared_with_an_ebpf_module() {
    let Some(path) = bpf_object("parse.o") else { return };
    let object = duet_object::Object::parse(&std::fs::read(&path).unwrap()).unwrap();
    let vm_options = duet_vm::LoadOptions { env: Env::deterministic(), ..Default::default() };
    let vm = duet_vm::Module::load(&object, vm_options).unwrap();
    let module =
        WasmModule::load_with_maps(&wasm(COUNT_PASS), &options(), vm.maps().map(|(n, m)| (n, Arc::clone(m)))).unwrap();
    assert!(Arc::ptr_eq(module.map("verdict_count").unwrap(), vm.map("verdict_count").unwrap()));

    let mut interp = vm.interpreter("xdp_parse").unwrap();
    let mut count = module.executor("count").unwrap();
    let mut ebpf_passes = 0;
    let corpus = duet_testdata::packets::corpus();
    for (_, frame) in &corpus {
        let mut packet = duet_vm::XdpPacket::new(frame);
        if interp.run_xdp(&mut packet).unwrap() == 2 {
            ebpf_passes += 1;
        }
        assert_eq!(count.run_xdp(&mut frame.clone()).unwrap(), 2);
    }
    let pass = vm.map("verdict_count").unwrap().get(&2u32.to_le_bytes()).unwrap();
    assert_eq!(u64_at(&pass), ebpf_passes + corpus.len() as u64, "both executors counted into one map");

    // A declaration that differs from the shared map is an error, not a silent second map.
    let mismatched = COUNT_PASS.replace("\\\"max_entries\\\":8", "\\\"max_entries\\\":9");
    let err = WasmModule::load_with_maps(&wasm(&mismatched), &options(), vm.maps().map(|(n, m)| (n, Arc::clone(m))))
        .unwrap_err();
    assert!(err.to_string().contains("max_entries 8 vs 9"), "{err}");
}

#[test]
fn executors_on_several_threads_share_the_maps() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<WasmModule>();
    send::<duet_wasm::Executor>();

    let module = WasmModule::load(&wasm(FIREWALL), &WasmOptions { n_cpus: 2, ..options() }).unwrap();
    let corpus = duet_testdata::packets::corpus();
    std::thread::scope(|s| {
        for cpu in 0..2 {
            let (module, corpus) = (&module, &corpus);
            s.spawn(move || {
                let mut fw = module.executor_on_cpu("firewall", cpu).unwrap();
                for (_, frame) in corpus {
                    fw.run_xdp(&mut frame.clone()).unwrap();
                }
            });
        }
    });
    let passes = u64_at(&module.map("VERDICTS").unwrap().get(&2u32.to_le_bytes()).unwrap());
    assert_eq!(passes, 2 * corpus.len() as u64, "atomic adds from both threads");
}
