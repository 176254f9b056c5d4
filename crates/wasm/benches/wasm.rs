//! ns/packet of the hand-written ABI v1 firewall (tests/wat/firewall.wat) in the wasmtime host,
//! over the packet corpus of duet-testdata, and what the per-packet path is built to avoid
//! (a fresh instance per packet).
//!
//! `cargo bench -p duet-wasm --bench wasm`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use duet_helpers::Env;
use duet_wasm::{WasmModule, WasmOptions};

fn firewall() -> (WasmModule, Vec<Vec<u8>>) {
    let wasm = wat::parse_str(include_str!("../tests/wat/firewall.wat")).expect("firewall WAT parses");
    let options = WasmOptions { env: Env::deterministic(), ..WasmOptions::default() };
    let module = WasmModule::load(&wasm, &options).expect("firewall loads");
    let frames: Vec<Vec<u8>> = duet_testdata::packets::corpus().into_iter().map(|(_, f)| f).collect();
    // Block the source of every third IPv4 frame, so both verdicts and the ring buffer are used.
    let blocked = module.map("BLOCKED").expect("BLOCKED map");
    for frame in frames.iter().step_by(3) {
        if frame.len() >= 34 && frame[12..14] == [0x08, 0x00] {
            let _ = blocked.update(&frame[26..30], &[1], 0, None);
        }
    }
    (module, frames)
}

/// An XDP program that passes every packet and calls nothing.
const PASS: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "duet_abi_version") (result i32) (i32.const 1))
  (func (export "duet_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "duet_prog_xdp_pass") (param i32 i32) (result i32) (i32.const 2)))"#;

fn bench(c: &mut Criterion) {
    let (module, frames) = firewall();
    let events = module.map("EVENTS").expect("EVENTS map");
    let mut group = c.benchmark_group("wasm_firewall");
    group.throughput(Throughput::Elements(frames.len() as u64));
    let mut executor = module.executor("firewall").expect("executor");
    let mut packet = Vec::with_capacity(2048);
    group.bench_function("run_xdp per packet (reused instance)", |b| {
        b.iter(|| {
            for frame in &frames {
                packet.clear();
                packet.extend_from_slice(frame);
                black_box(executor.run_xdp(&mut packet).expect("firewall never traps"));
            }
            events.ringbuf_drain();
        });
    });
    // The fixed cost of one invocation (deadline, copy in, call, copy out), with no imports.
    let pass = wat::parse_str(PASS).expect("pass WAT parses");
    let pass = WasmModule::load(&pass, &WasmOptions::default()).expect("pass loads");
    let mut pass = pass.executor("pass").expect("executor");
    group.bench_function("empty program (call overhead)", |b| {
        b.iter(|| {
            for frame in &frames {
                packet.clear();
                packet.extend_from_slice(frame);
                black_box(pass.run_xdp(&mut packet).expect("pass never traps"));
            }
        });
    });
    group.bench_function("new instance per packet", |b| {
        b.iter(|| {
            for frame in &frames {
                let mut fresh = module.executor("firewall").expect("executor");
                packet.clear();
                packet.extend_from_slice(frame);
                black_box(fresh.run_xdp(&mut packet).expect("firewall never traps"));
            }
            events.ringbuf_drain();
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
