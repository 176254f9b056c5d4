//! Hot paths of the maps, one thread, uncontended: what a helper call costs a program.
//!
//! - `array_lookup_ptr`: `array`, 1024 × 8-byte values, cycling through the indices.
//! - `percpu_array_lookup_ptr`: the same with 4 CPUs, looking up CPU 1's copy.
//! - `hash_lookup_ptr`: `hash`, 4-byte keys, 1024 entries present, cycling through them.
//! - `hash_lookup_miss`: the same map, keys that are absent.
//! - `hash_update`: `BPF_ANY` update of a present key with an 8-byte value.
//! - `hash_insert_delete`: insert a new key, then delete it (one pair per iteration).
//! - `lru_lookup_ptr`: `lru_hash`, 1024 entries present (each lookup moves an entry to front).
//! - `lpm_lookup_ptr`: `lpm_trie` with IPv4 prefixes of 8, 16, 24 and 32 bits, /32 lookups
//!   that match at /24.
//! - `ringbuf_output`: `bpf_ringbuf_output` of 64 bytes, drained every 32 records.
//!
//! After the criterion groups, a table prints the median ns per operation of each function
//! over every batch criterion timed. Run with `cargo bench -p duet-maps --bench maps`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::Criterion;
use duet_maps::{BPF_ANY, BPF_F_NO_PREALLOC, BPF_NOEXIST, Map, MapSpec, MapType};

const ENTRIES: u32 = 1024;

/// Per-operation times (ns) of every batch, per function.
static TIMES: Mutex<BTreeMap<&'static str, Vec<f64>>> = Mutex::new(BTreeMap::new());

fn map(map_type: MapType, key_size: u32, value_size: u32, max_entries: u32, flags: u32, n_cpus: usize) -> Map {
    let spec = MapSpec { name: map_type.name().into(), map_type, key_size, value_size, max_entries, flags };
    Map::new(spec, n_cpus).expect("valid spec")
}

/// Times `op(i)` for `i` in `0..iters` and records the per-operation time under `name`.
fn bench(c: &mut Criterion, name: &'static str, mut op: impl FnMut(u32)) {
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                op(i as u32);
            }
            let elapsed = start.elapsed();
            let per_op = elapsed.as_nanos() as f64 / iters as f64;
            TIMES.lock().unwrap_or_else(|e| e.into_inner()).entry(name).or_default().push(per_op);
            elapsed
        })
    });
}

fn hash_with_entries(map_type: MapType) -> Map {
    let m = map(map_type, 4, 8, ENTRIES, 0, 1);
    for k in 0..ENTRIES {
        m.update(&k.to_ne_bytes(), &u64::from(k).to_ne_bytes(), BPF_NOEXIST, None).expect("room");
    }
    m
}

fn benches(c: &mut Criterion) {
    let array = map(MapType::Array, 4, 8, ENTRIES, 0, 1);
    bench(c, "array_lookup_ptr", |i| {
        black_box(array.lookup_ptr(black_box(&(i % ENTRIES).to_ne_bytes()), 0));
    });

    let percpu = map(MapType::PerCpuArray, 4, 8, ENTRIES, 0, 4);
    bench(c, "percpu_array_lookup_ptr", |i| {
        black_box(percpu.lookup_ptr(black_box(&(i % ENTRIES).to_ne_bytes()), 1));
    });

    let hash = hash_with_entries(MapType::Hash);
    bench(c, "hash_lookup_ptr", |i| {
        black_box(hash.lookup_ptr(black_box(&(i % ENTRIES).to_ne_bytes()), 0));
    });
    bench(c, "hash_lookup_miss", |i| {
        black_box(hash.lookup_ptr(black_box(&(ENTRIES + i % ENTRIES).to_ne_bytes()), 0));
    });
    bench(c, "hash_update", |i| {
        let key = (i % ENTRIES).to_ne_bytes();
        black_box(hash.update(black_box(&key), &u64::from(i).to_ne_bytes(), BPF_ANY, None)).ok();
    });
    let room = map(MapType::Hash, 4, 8, ENTRIES, 0, 1);
    bench(c, "hash_insert_delete", |i| {
        let key = i.to_ne_bytes();
        black_box(room.update(black_box(&key), &u64::from(i).to_ne_bytes(), BPF_NOEXIST, None)).ok();
        black_box(room.delete(&key)).ok();
    });

    let lru = hash_with_entries(MapType::LruHash);
    bench(c, "lru_lookup_ptr", |i| {
        black_box(lru.lookup_ptr(black_box(&(i % ENTRIES).to_ne_bytes()), 0));
    });

    let lpm = map(MapType::LpmTrie, 8, 8, ENTRIES, BPF_F_NO_PREALLOC, 1);
    let lpm_key = |len: u32, addr: u32| -> [u8; 8] {
        let mut key = [0; 8];
        key[..4].copy_from_slice(&len.to_ne_bytes());
        key[4..].copy_from_slice(&addr.to_be_bytes());
        key
    };
    for n in 0..200u32 {
        for (len, addr) in
            [(8, n << 24), (16, 0x0A00_0000 | n << 16), (24, 0x0A0A_0000 | n << 8), (32, 0x0B0B_0B00 | n)]
        {
            lpm.update(&lpm_key(len, addr), &u64::from(len).to_ne_bytes(), BPF_ANY, None).ok();
        }
    }
    bench(c, "lpm_lookup_ptr", |i| {
        black_box(lpm.lookup_ptr(black_box(&lpm_key(32, 0x0A0A_0000 | (i % 200) << 8 | 7)), 0));
    });

    let rb = map(MapType::RingBuf, 0, 0, 1 << 16, 0, 1);
    let record = [7u8; 64];
    bench(c, "ringbuf_output", |i| {
        black_box(rb.ringbuf_output(black_box(&record))).ok();
        if i % 32 == 31 {
            black_box(rb.ringbuf_drain());
        }
    });
}

fn summary() {
    let times = TIMES.lock().unwrap_or_else(|e| e.into_inner());
    println!("\n{:<26} {:>12}", "function", "ns/op (median)");
    for (name, samples) in times.iter() {
        let mut samples = samples.clone();
        samples.sort_by(f64::total_cmp);
        println!("{name:<26} {:>12.1}", samples[samples.len() / 2]);
    }
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args();
    benches(&mut c);
    c.final_summary();
    summary();
}
