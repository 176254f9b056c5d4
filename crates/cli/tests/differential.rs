//! The spine of the test suite: every program of the BPF corpus (`target/bpf/*.o`, built by
//! `cargo xtask build-bpf` from `tests/bpf/`) runs over the generated packet corpus in the Linux
//! kernel (`BPF_PROG_TEST_RUN`), in duet's interpreter and in duet's JIT (each engine with a
//! module of its own); verdicts, output packets, final map contents and ring buffer records must
//! be identical.
//!
//! Needs root (or CAP_BPF + CAP_NET_ADMIN). Elsewhere it says why it skipped; under `CI=true`
//! it fails instead. Excluded from the comparison, on purpose:
//! - frames the kernel refuses to test-run (shorter than 14 bytes): only duet runs them;
//! - maps named `nondet`, which hold time and random values by design.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use duet_kernel::{MapDump, TestRunInput};
use duet_maps::{MapType, MapValue};
use duet_object::{Object, ProgramKind};
use duet_vm::{Env, LoadOptions, Module, XdpPacket};

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn skip(why: &str) {
    assert!(!ci(), "{why} (CI=true makes this a failure)");
    eprintln!("\n!!! SKIPPED kernel differential test: {why} !!!\n");
}

fn corpus_objects() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bpf");
    let mut objects: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "o")).collect()
        })
        .unwrap_or_default();
    objects.sort();
    objects
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A map's contents in one comparable form: key hex -> per-CPU value hexes (one for plain maps).
type Dump = BTreeMap<String, Vec<String>>;

fn from_kernel(entries: &[(Vec<u8>, MapDump)], value_size: usize) -> Dump {
    entries
        .iter()
        .map(|(k, v)| {
            let values = match v {
                MapDump::Single(v) => vec![hex(&v[..value_size.min(v.len())])],
                MapDump::PerCpu(vs) => vs.iter().map(|v| hex(&v[..value_size.min(v.len())])).collect(),
            };
            (hex(k), values)
        })
        .collect()
}

fn from_vm(map: &duet_maps::Map) -> Dump {
    let value_size = map.spec().value_size as usize;
    map.entries()
        .into_iter()
        .map(|(k, v)| {
            let values = match v {
                MapValue::Single(v) => vec![hex(&v[..value_size.min(v.len())])],
                MapValue::PerCpu(vs) => vs.iter().map(|v| hex(&v[..value_size.min(v.len())])).collect(),
            };
            (hex(&k), values)
        })
        .collect()
}

/// The tail-call convention of the corpus: `jmp_table[0] = tail0`, `jmp_table[1] = tail1`.
fn prog_arrays(object: &Object) -> Vec<(String, u32, String)> {
    if object.map_index("jmp_table").is_none() {
        return Vec::new();
    }
    ["tail0", "tail1"]
        .iter()
        .enumerate()
        .filter(|(_, p)| object.programs.iter().any(|q| q.name == **p))
        .map(|(i, p)| ("jmp_table".to_owned(), i as u32, (*p).to_owned()))
        .collect()
}

#[test]
fn kernel_and_interpreter_agree_on_the_corpus() {
    if let Err(e) = duet_kernel::check_access() {
        return skip(&format!("the kernel cannot run BPF here: {e}"));
    }
    let objects = corpus_objects();
    if objects.is_empty() {
        return skip("no BPF objects in target/bpf; run `cargo xtask build-bpf` first");
    }
    let packets: Vec<Vec<u8>> = duet_testdata::packets::corpus().into_iter().map(|(_, p)| p).collect();
    let n_cpus = duet_kernel::possible_cpus().expect("possible CPUs");
    let mut mismatches = Vec::new();
    let mut compared = 0usize;
    let mut refused: Vec<(ProgramKind, Vec<u8>)> = Vec::new();
    for path in &objects {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(path).unwrap();
        let object = Object::parse(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        let arrays = prog_arrays(&object);
        for program in &object.programs {
            if !matches!(program.kind, ProgramKind::Xdp | ProgramKind::SocketFilter) {
                continue;
            }
            let ctx = format!("{file}:{}", program.name);
            let kernel = duet_kernel::test_run(&TestRunInput {
                object: &bytes,
                program: &program.name,
                packets: &packets,
                maps_in: &[],
                prog_arrays: &arrays,
                repeat: 1,
            })
            .unwrap_or_else(|e| panic!("{ctx}: the kernel refused the program: {e}"));

            let options = LoadOptions { n_cpus, env: Env::deterministic(), ..LoadOptions::default() };
            let module = Module::load(&object, options).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            for (map, index, target) in &arrays {
                module.set_prog_array(map, *index, target).unwrap();
            }
            let mut vm = module.interpreter(&program.name).unwrap();
            let jit_module =
                Module::load(&object, LoadOptions { n_cpus, env: Env::deterministic(), ..LoadOptions::default() })
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"));
            for (map, index, target) in &arrays {
                jit_module.set_prog_array(map, *index, target).unwrap();
            }
            let mut jit = jit_module.jit(&program.name).unwrap_or_else(|e| panic!("{ctx}: JIT: {e}"));
            for (i, (frame, k)) in packets.iter().zip(&kernel.packets).enumerate() {
                let Ok(k_ret) = &k.result else {
                    // The kernel refused this frame (too short to test-run), so its maps never
                    // saw it; skip it here too and run it through duet alone below.
                    refused.push((program.kind.clone(), frame.clone()));
                    continue;
                };
                let (vm_result, vm_data) = match program.kind {
                    ProgramKind::Xdp => {
                        let mut packet = XdpPacket::new(frame);
                        let r = vm.run_xdp(&mut packet);
                        (r, packet.data().to_vec())
                    }
                    _ => (vm.run_socket_filter(&mut frame.clone()), k.data_out.clone()),
                };
                let (jit_result, jit_data) = match program.kind {
                    ProgramKind::Xdp => {
                        let mut packet = XdpPacket::new(frame);
                        let r = jit.run_xdp(&mut packet);
                        (r, packet.data().to_vec())
                    }
                    _ => (jit.run_socket_filter(&mut frame.clone()), k.data_out.clone()),
                };
                compared += 1;
                for (engine, vm_result, vm_data) in [("", vm_result, vm_data), (" (JIT)", jit_result, jit_data)] {
                    match vm_result {
                        Ok(r0) if r0 as u32 == *k_ret => {}
                        Ok(r0) => {
                            mismatches.push(format!("{ctx} packet {i}: kernel returned {k_ret}, duet{engine} {r0}"))
                        }
                        Err(trap) => mismatches
                            .push(format!("{ctx} packet {i}: kernel returned {k_ret}, duet{engine} trapped: {trap}")),
                    }
                    if program.kind == ProgramKind::Xdp && vm_data != k.data_out {
                        mismatches.push(format!(
                            "{ctx} packet {i}: output packets differ\n  kernel {}\n  duet{engine}   {}",
                            hex(&k.data_out),
                            hex(&vm_data)
                        ));
                    }
                }
            }
            for (engine, module) in [("", &module), (" (JIT)", &jit_module)] {
                for (name, entries) in &kernel.maps {
                    if name == "nondet" {
                        continue;
                    }
                    let Ok(map) = module.map(name) else {
                        mismatches.push(format!("{ctx}: the kernel has map `{name}`, duet{engine} does not"));
                        continue;
                    };
                    if matches!(map.map_type(), MapType::ProgArray | MapType::RingBuf) {
                        continue;
                    }
                    let value_size = map.spec().value_size as usize;
                    let (k, d) = (from_kernel(entries, value_size), from_vm(map));
                    if k != d {
                        mismatches.push(format!("{ctx}: map `{name}` differs\n  kernel {k:?}\n  duet{engine}   {d:?}"));
                    }
                }
                for (name, records) in &kernel.ringbufs {
                    let ours = module.map(name).map(|m| m.ringbuf_drain()).unwrap_or_default();
                    if &ours != records {
                        mismatches.push(format!(
                            "{ctx}: ring buffer `{name}` differs: kernel {} records, duet{engine} {}",
                            records.len(),
                            ours.len()
                        ));
                    }
                }
            }
        }
    }
    // Frames the kernel refused still go through duet's VM, on a fresh module per object: any
    // verdict is fine, a trap is fine, a crash is not; the interpreter and the JIT (each on a
    // module of its own) must agree.
    for path in &objects {
        let object = Object::parse(&std::fs::read(path).unwrap()).unwrap();
        let load = || {
            Module::load(&object, LoadOptions { n_cpus, env: Env::deterministic(), ..LoadOptions::default() }).unwrap()
        };
        let (module, jit_module) = (load(), load());
        for program in object.programs.iter().filter(|p| matches!(p.kind, ProgramKind::Xdp | ProgramKind::SocketFilter))
        {
            let mut vm = module.interpreter(&program.name).unwrap();
            let mut jit = jit_module.jit(&program.name).unwrap();
            for (kind, frame) in refused.iter().filter(|(k, _)| *k == program.kind) {
                let (a, b) = match kind {
                    ProgramKind::Xdp => {
                        (vm.run_xdp(&mut XdpPacket::new(frame)), jit.run_xdp(&mut XdpPacket::new(frame)))
                    }
                    _ => (vm.run_socket_filter(&mut frame.clone()), jit.run_socket_filter(&mut frame.clone())),
                };
                assert_eq!(a, b, "{}: the interpreter and the JIT disagree on a short frame", program.name);
            }
        }
    }
    eprintln!(
        "compared {compared} program runs with the kernel; {} runs of frames the kernel refuses (too short) ran in duet only",
        refused.len()
    );
    assert!(compared > 0, "nothing was compared");
    assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
}
