//! What a hostile module cannot do to its host: grow the host's memory through `trace`, or
//! allocate maps past the module's budget; and errors that say each thing once.

use duet_wasm::{MAX_TRACE_LINE_BYTES, MAX_TRACE_LINES, MAX_TRACE_LINES_PER_CALL, WasmModule, WasmOptions};

/// An ABI v1 module with `maps` as its manifest and one XDP program whose body is `body`.
fn module(maps: &str, body: &str) -> Vec<u8> {
    let manifest = maps.replace('"', "\\\"");
    wat::parse_str(format!(
        r#"(module
             (import "duet" "trace" (func $trace (param i32 i32)))
             (@custom "duet.maps" "{manifest}")
             (memory (export "memory") 1)
             (func (export "duet_abi_version") (result i32) (i32.const 1))
             (func (export "duet_buffer") (param i32) (result i32) (i32.const 1024))
             (func (export "duet_prog_xdp_prog") (param $data i32) (param $len i32) (result i32)
               (local $i i32)
               {body}
               (i32.const 2)))"#
    ))
    .expect("WAT parses")
}

fn map(name: &str, map_type: u32, key: u32, value: u32, max_entries: u32) -> String {
    format!(
        r#"{{"name":"{name}","type":{map_type},"key_size":{key},"value_size":{value},"max_entries":{max_entries},"flags":0}}"#
    )
}

/// The error's whole chain, as `anyhow`'s `{:#}` prints it.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[test]
fn trace_lines_are_capped_per_call_and_per_module_and_dropped_lines_counted() {
    // 1000 lines per call, each 60,000 bytes long.
    let body = "(loop $l (call $trace (i32.const 0) (i32.const 60000))
                  (local.set $i (i32.add (local.get $i) (i32.const 1)))
                  (br_if $l (i32.lt_u (local.get $i) (i32.const 1000))))";
    let wasm = module("[]", body);
    let module = WasmModule::load(&wasm, &WasmOptions::default()).expect("loads");
    let mut exec = module.executor("prog").expect("executor");
    let mut packet = vec![0u8; 64];
    exec.run_xdp(&mut packet).expect("runs");
    let log = module.take_trace();
    assert_eq!(log.lines.len(), MAX_TRACE_LINES_PER_CALL as usize);
    assert_eq!(log.dropped, 1000 - u64::from(MAX_TRACE_LINES_PER_CALL));
    assert!(log.lines.iter().all(|l| l.len() == MAX_TRACE_LINE_BYTES), "lines are cut");

    // Nobody drains the log: it stops growing at its limit, and counts the rest.
    let calls = MAX_TRACE_LINES / MAX_TRACE_LINES_PER_CALL as usize + 10;
    for _ in 0..calls {
        exec.run_xdp(&mut packet).expect("runs");
    }
    let log = module.take_trace();
    assert_eq!(log.lines.len(), MAX_TRACE_LINES);
    assert_eq!(log.dropped, calls as u64 * 1000 - MAX_TRACE_LINES as u64);
    // Drained, it takes lines again.
    exec.run_xdp(&mut packet).expect("runs");
    assert_eq!(module.take_trace().lines.len(), MAX_TRACE_LINES_PER_CALL as usize);
}

#[test]
fn manifest_maps_share_the_bpf_objects_map_memory_budget() {
    // A hash map of 2^30 entries, and a 2 GiB ring buffer: both refused before anything is
    // allocated, as the eBPF VM refuses them in a .bpf.o.
    for (maps, what) in [
        (map("BIG", 1, 8, 8, 1 << 30), "BIG"),
        (map("RING", 27, 0, 0, 1 << 31), "RING"),
        (format!("[{},{}]", map("A", 2, 4, 1 << 20, 600), map("B", 2, 4, 1 << 20, 600)), "B"),
    ] {
        let maps = if maps.starts_with('[') { maps } else { format!("[{maps}]") };
        let err = WasmModule::load(&module(&maps, ""), &WasmOptions::default()).expect_err("over the budget");
        let text = chain(&err);
        assert!(text.contains("past the module's limit of 1073741824 bytes"), "{text}");
        assert_eq!(text.matches(&format!("map `{what}`")).count(), 1, "said once: {text}");
        assert_eq!(text.matches("past the module's limit").count(), 1, "said once: {text}");
    }
    // The budget is an option, as for the eBPF VM.
    let small = WasmOptions { max_map_memory: 1 << 20, ..WasmOptions::default() };
    let maps = format!("[{}]", map("M", 1, 8, 8, 1 << 20));
    assert!(WasmModule::load(&module(&maps, ""), &small).is_err());
}

#[test]
fn ring_buffer_sizes_are_checked_as_the_kernel_does() {
    let maps = format!("[{}]", map("EVENTS", 27, 0, 0, 5000));
    let err = WasmModule::load(&module(&maps, ""), &WasmOptions::default()).expect_err("5000 is not a page power");
    let text = chain(&err);
    assert!(text.contains("map `EVENTS`: invalid argument: ringbuf map: the size (max_entries) must be a power of two multiple of 4096"), "{text}");
    assert!(text.contains("got 5000; e.g. 8192"), "{text}");
}
