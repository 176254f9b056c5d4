//! Maps shared by threads that stand in for programs running on several CPUs at once.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use duet_maps::{BPF_ANY, BPF_EXIST, BPF_NOEXIST, Map, MapError, MapSpec, MapType, MapValue};

const THREADS: usize = 4;
const ITERS: usize = 50_000;
const COUNTERS: u32 = 32;

fn map(map_type: MapType, key_size: u32, value_size: u32, max_entries: u32, n_cpus: usize) -> Arc<Map> {
    let spec = MapSpec { name: "shared".into(), map_type, key_size, value_size, max_entries, flags: 0 };
    Arc::new(Map::new(spec, n_cpus).unwrap())
}

/// The counter behind a value pointer, as a program's atomic add sees it.
fn counter<'a>(p: NonNull<u8>) -> &'a AtomicU64 {
    // SAFETY: `p` is an 8-byte aligned value pointer of a map that the test keeps alive (in an
    // `Arc`) for longer than every use; all accesses to it in these tests are atomic.
    unsafe { AtomicU64::from_ptr(p.as_ptr().cast()) }
}

/// Which counter thread `t` bumps at iteration `i`.
fn counter_key(t: usize, i: usize) -> u32 {
    ((i * 7 + t * 13) % COUNTERS as usize) as u32
}

/// Several threads create and bump shared counters in a hash map (lookup, insert on miss with
/// BPF_NOEXIST, atomic add through the pointer) while another thread churns other keys, so
/// slots are freed and reused throughout. Every count must be exact.
#[test]
fn hash_counters_with_atomic_adds_are_exact() {
    for map_type in [MapType::Hash, MapType::LruHash] {
        // Room for the counters and the churn, so the LRU map never evicts a counter.
        let map = map(map_type, 4, 8, COUNTERS + 64, 1);
        let done = AtomicBool::new(false);
        let start = Barrier::new(THREADS + 1);
        thread::scope(|s| {
            let churn = s.spawn(|| {
                start.wait();
                let mut rounds = 0u64;
                while !done.load(Ordering::Relaxed) || rounds < 10 {
                    for k in 1000..1064u32 {
                        map.update(&k.to_ne_bytes(), &u64::from(k).to_ne_bytes(), BPF_ANY, None).unwrap();
                    }
                    for k in 1000..1064u32 {
                        map.delete(&k.to_ne_bytes()).unwrap();
                    }
                    rounds += 1;
                }
            });
            let workers: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (map, start) = (&map, &start);
                    s.spawn(move || {
                        start.wait();
                        for i in 0..ITERS {
                            let key = counter_key(t, i).to_ne_bytes();
                            let p = match map.lookup_ptr(&key, t) {
                                Some(p) => p,
                                None => {
                                    match map.update(&key, &0u64.to_ne_bytes(), BPF_NOEXIST, Some(t)) {
                                        Ok(()) | Err(MapError::Exists) => {}
                                        Err(e) => panic!("insert failed: {e}"),
                                    }
                                    map.lookup_ptr(&key, t).unwrap()
                                }
                            };
                            counter(p).fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            for w in workers {
                w.join().unwrap();
            }
            done.store(true, Ordering::Relaxed);
            churn.join().unwrap();
        });
        let mut expected = vec![0u64; COUNTERS as usize];
        for t in 0..THREADS {
            for i in 0..ITERS {
                expected[counter_key(t, i) as usize] += 1;
            }
        }
        let mut entries = map.entries();
        entries.sort();
        assert_eq!(entries.len(), COUNTERS as usize, "{map_type}: churn keys left behind");
        for (k, v) in entries {
            let k = u32::from_ne_bytes(k.try_into().unwrap());
            let count = u64::from_ne_bytes(v.as_single().unwrap().try_into().unwrap());
            assert_eq!(count, expected[k as usize], "{map_type}: counter {k}");
        }
    }
}

/// Per-CPU counters need no atomics: each thread (CPU) does a plain read-modify-write of its
/// own copy, and the sum over CPUs is exact.
#[test]
fn per_cpu_counters_need_no_atomics() {
    let map = map(MapType::PerCpuArray, 4, 8, 4, THREADS);
    thread::scope(|s| {
        for cpu in 0..THREADS {
            let map = &map;
            s.spawn(move || {
                for i in 0..ITERS {
                    let key = ((i % 4) as u32).to_ne_bytes();
                    let p = map.lookup_ptr(&key, cpu).unwrap().cast::<u64>();
                    // SAFETY: this thread is the only one using CPU `cpu`'s copy of the value;
                    // the pointer is 8-byte aligned and the map outlives the scope.
                    unsafe { p.write(p.read() + 1) };
                }
            });
        }
    });
    for index in 0..4u32 {
        let Some(MapValue::PerCpu(values)) = map.get(&index.to_ne_bytes()) else { panic!("no value") };
        let counts: Vec<u64> = values.iter().map(|v| u64::from_ne_bytes(v[..].try_into().unwrap())).collect();
        assert_eq!(counts, vec![(ITERS / 4) as u64; THREADS], "index {index}");
    }
}

/// Writers replace whole values while readers copy them: a value written by one update (8
/// bytes, one atomic store) is never seen half-written, and the map stays within its size
/// while the LRU evicts under pressure.
#[test]
fn lru_eviction_under_concurrent_updates_keeps_values_whole() {
    let max = 128;
    let map = map(MapType::LruHash, 4, 8, max, 1);
    thread::scope(|s| {
        for t in 0..THREADS as u32 {
            let map = &map;
            s.spawn(move || {
                for i in 0..ITERS as u32 {
                    let k = (i * 31 + t * 1_000_003) % 4096;
                    match i % 4 {
                        0 | 1 => {
                            map.update(&k.to_ne_bytes(), &(u64::from(k) * 3).to_ne_bytes(), BPF_ANY, None).unwrap()
                        }
                        2 => {
                            if let Some(p) = map.lookup_ptr(&k.to_ne_bytes(), 0) {
                                let v = counter(p).load(Ordering::Relaxed);
                                // The slot may have been evicted and reused since the lookup
                                // (as in the kernel), but it always holds some key's whole value.
                                assert_eq!(v % 3, 0, "torn value {v:#x}");
                            }
                        }
                        _ => match map.delete(&k.to_ne_bytes()) {
                            Ok(()) | Err(MapError::NotFound) => {}
                            Err(e) => panic!("delete failed: {e}"),
                        },
                    }
                }
            });
        }
    });
    let entries = map.entries();
    assert!(entries.len() <= max as usize);
    for (k, v) in entries {
        let k = u32::from_ne_bytes(k.try_into().unwrap());
        assert_eq!(v.as_single().unwrap(), (u64::from(k) * 3).to_ne_bytes());
    }
}

/// Readers of an LPM trie run against a writer adding and removing prefixes; the stable
/// prefixes are always found.
#[test]
fn lpm_lookups_run_against_updates() {
    let spec = MapSpec {
        name: "routes".into(),
        map_type: MapType::LpmTrie,
        key_size: 8,
        value_size: 8,
        max_entries: 256,
        flags: duet_maps::BPF_F_NO_PREALLOC,
    };
    let map = Map::new(spec, 1).unwrap();
    let key = |len: u32, addr: u32| [len.to_ne_bytes(), addr.to_be_bytes()].concat();
    map.update(&key(8, 0x0A00_0000), &8u64.to_ne_bytes(), BPF_ANY, None).unwrap();
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let mut i = 0u32;
                while !done.load(Ordering::Relaxed) {
                    let addr = 0x0A00_0000 | (i.wrapping_mul(2_654_435_761) & 0x00FF_FFFF);
                    let p = map.lookup_ptr(&key(32, addr), 0).expect("10.0.0.0/8 is always there");
                    let v = counter(p).load(Ordering::Relaxed);
                    assert!(v == 8 || v == 24, "unexpected value {v}");
                    i += 1;
                }
            });
        }
        for round in 0..200u32 {
            for n in 0..64u32 {
                let prefix = 0x0A00_0000 | ((round * 64 + n) % 256) << 8;
                match map.update(&key(24, prefix), &24u64.to_ne_bytes(), BPF_NOEXIST, None) {
                    Ok(()) | Err(MapError::Exists) => {}
                    Err(e) => panic!("insert failed: {e}"),
                }
            }
            for n in 0..64u32 {
                let prefix = 0x0A00_0000 | ((round * 64 + n) % 256) << 8;
                map.update(&key(24, prefix), &24u64.to_ne_bytes(), BPF_EXIST, None).unwrap();
                map.delete(&key(24, prefix)).unwrap();
            }
        }
        done.store(true, Ordering::Relaxed);
    });
    assert_eq!(map.entries().len(), 1);
}

/// Producers on several threads reserve, fill and submit (or discard) records while a
/// consumer drains concurrently: every submitted record arrives once, intact, and each
/// producer's records arrive in its order.
#[test]
fn ringbuf_multi_producer_with_concurrent_consumer() {
    const RECORDS: u64 = 3_000;
    let rb = Map::new(
        MapSpec {
            name: "events".into(),
            map_type: MapType::RingBuf,
            key_size: 0,
            value_size: 0,
            max_entries: 4096,
            flags: 0,
        },
        1,
    )
    .unwrap();
    let producers_done = AtomicU64::new(0);
    let received = thread::scope(|s| {
        for t in 0..THREADS as u64 {
            let (rb, producers_done) = (&rb, &producers_done);
            s.spawn(move || {
                for seq in 0..RECORDS {
                    let record = [t.to_ne_bytes(), seq.to_ne_bytes(), (t ^ seq).to_ne_bytes()].concat();
                    if seq % 5 == 4 {
                        // Reserve and discard: the consumer must never see it.
                        let p = loop {
                            match rb.ringbuf_reserve(24) {
                                Some(p) => break p,
                                None => thread::yield_now(),
                            }
                        };
                        rb.ringbuf_submit(p, true).unwrap();
                    } else if seq % 2 == 0 {
                        while let Err(e) = rb.ringbuf_output(&record) {
                            assert_eq!(e, MapError::RingFull);
                            thread::yield_now();
                        }
                    } else {
                        let p = loop {
                            match rb.ringbuf_reserve(24) {
                                Some(p) => break p,
                                None => thread::yield_now(),
                            }
                        };
                        // SAFETY: `p` points at 24 reserved bytes only this thread writes until
                        // it submits them.
                        unsafe { std::ptr::copy_nonoverlapping(record.as_ptr(), p.as_ptr(), 24) };
                        rb.ringbuf_submit(p, false).unwrap();
                    }
                }
                producers_done.fetch_add(1, Ordering::Release);
            });
        }
        let mut received = Vec::new();
        loop {
            let finished = producers_done.load(Ordering::Acquire) == THREADS as u64;
            let batch = rb.ringbuf_drain();
            if batch.is_empty() && finished {
                break received;
            }
            if batch.is_empty() {
                thread::yield_now();
            }
            received.extend(batch);
        }
    });
    let mut next = [0u64; THREADS];
    for record in &received {
        let word = |i: usize| u64::from_ne_bytes(record[i * 8..i * 8 + 8].try_into().unwrap());
        let (t, seq) = (word(0), word(1));
        assert_eq!(word(2), t ^ seq, "record garbled");
        let expected = &mut next[t as usize];
        if *expected % 5 == 4 {
            *expected += 1;
        }
        assert_eq!(seq, *expected, "producer {t}: out of order or lost");
        *expected += 1;
    }
    let per_producer = RECORDS - RECORDS / 5;
    assert_eq!(received.len() as u64, per_producer * THREADS as u64);
}
