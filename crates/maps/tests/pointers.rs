//! Value pointers as programs use them: stable addresses, inside `storage_regions`, isolated
//! per CPU; and ring buffer records reserved and submitted through pointers.

use std::ptr::NonNull;

use duet_maps::{BPF_ANY, BPF_F_NO_PREALLOC, Map, MapError, MapSpec, MapType, MapValue};

fn map(map_type: MapType, key_size: u32, value_size: u32, max_entries: u32, n_cpus: usize) -> Map {
    let flags = if map_type == MapType::LpmTrie { BPF_F_NO_PREALLOC } else { 0 };
    let spec = MapSpec { name: map_type.name().into(), map_type, key_size, value_size, max_entries, flags };
    Map::new(spec, n_cpus).unwrap()
}

fn key(map: &Map, n: u32) -> Vec<u8> {
    let mut key = vec![0; map.spec().key_size as usize];
    if map.map_type() == MapType::LpmTrie {
        key[..4].copy_from_slice(&32u32.to_ne_bytes());
        key[4..8].copy_from_slice(&n.to_be_bytes());
    } else {
        key[..4].copy_from_slice(&n.to_ne_bytes());
    }
    key
}

fn in_regions(map: &Map, p: NonNull<u8>, len: usize) -> bool {
    let p = p.as_ptr() as usize;
    map.storage_regions()
        .iter()
        .any(|&(start, n)| p >= start.as_ptr() as usize && p + len <= start.as_ptr() as usize + n)
}

/// Reads a `u64` through a value pointer, as a program's load does.
fn read_u64(p: NonNull<u8>) -> u64 {
    // SAFETY: `p` came from `lookup_ptr` of a live map with 8-byte, 8-aligned values; the test
    // is single-threaded here.
    unsafe { p.cast::<u64>().as_ptr().read() }
}

/// Writes a `u64` through a value pointer, as a program's store does.
fn write_u64(p: NonNull<u8>, value: u64) {
    // SAFETY: as for `read_u64`.
    unsafe { p.cast::<u64>().as_ptr().write(value) }
}

/// A value pointer keeps its address while other keys come and go, and the user side sees
/// what a program stored through it.
#[test]
fn value_pointers_are_stable_across_other_inserts_and_deletes() {
    for map_type in [MapType::Hash, MapType::PerCpuHash, MapType::LruHash, MapType::LruPerCpuHash, MapType::LpmTrie] {
        let key_size = if map_type == MapType::LpmTrie { 8 } else { 4 };
        let map = map(map_type, key_size, 8, 64, 2);
        let anchor = key(&map, 1_000_000);
        map.update(&anchor, &7u64.to_ne_bytes(), BPF_ANY, Some(0)).unwrap();
        let p = map.lookup_ptr(&anchor, 0).unwrap();
        assert!(in_regions(&map, p, 8), "{map_type}");
        let regions = map.storage_regions();
        for round in 0..5u32 {
            for n in 0..40 {
                map.update(&key(&map, round * 100 + n), &u64::from(n).to_ne_bytes(), BPF_ANY, Some(1)).unwrap();
                // LRU maps: keep the anchor recently used so it is never the one evicted.
                assert_eq!(map.lookup_ptr(&anchor, 0), Some(p), "{map_type}");
            }
            // Every third key first, then the rest, so freed slots are reused in a shuffled order.
            for n in (0..40).step_by(3).chain((0..40).filter(|n| n % 3 != 0)) {
                map.delete(&key(&map, round * 100 + n)).unwrap();
            }
        }
        assert_eq!(map.storage_regions(), regions, "{map_type}: regions changed");
        assert_eq!(read_u64(p), 7, "{map_type}");
        write_u64(p, 99);
        let expected = if map_type.is_per_cpu() {
            MapValue::PerCpu(vec![99u64.to_ne_bytes().to_vec(), vec![0; 8]])
        } else {
            MapValue::Single(99u64.to_ne_bytes().to_vec())
        };
        assert_eq!(map.get(&anchor), Some(expected), "{map_type}");
    }
}

/// Every value pointer of every map lies in `storage_regions`, and distinct entries or CPUs
/// never share bytes.
#[test]
fn value_pointers_are_disjoint_and_inside_storage_regions() {
    for map_type in [MapType::Array, MapType::PerCpuArray, MapType::Hash, MapType::PerCpuHash, MapType::LruHash] {
        let n_cpus = 3;
        let map = map(map_type, 4, 12, 16, n_cpus);
        let mut spans = Vec::new();
        for n in 0..16 {
            map.update(&key(&map, n), &[n as u8; 12], BPF_ANY, Some(0)).unwrap();
            for cpu in 0..n_cpus {
                let p = map.lookup_ptr(&key(&map, n), cpu).unwrap();
                assert!(in_regions(&map, p, 12), "{map_type}");
                assert!((p.as_ptr() as usize).is_multiple_of(8), "{map_type}: value not 8-byte aligned");
                spans.push(p.as_ptr() as usize);
                if !map_type.is_per_cpu() {
                    break;
                }
            }
        }
        spans.sort();
        spans.dedup();
        let expected = if map_type.is_per_cpu() { 16 * n_cpus } else { 16 };
        assert_eq!(spans.len(), expected, "{map_type}: pointers shared");
        assert!(spans.windows(2).all(|w| w[1] - w[0] >= 12), "{map_type}: values overlap");
    }
}

#[test]
fn per_cpu_values_are_isolated() {
    let map = map(MapType::PerCpuArray, 4, 8, 1, 4);
    let k = 0u32.to_ne_bytes();
    for cpu in 0..4 {
        write_u64(map.lookup_ptr(&k, cpu).unwrap(), 10 + cpu as u64);
    }
    for cpu in 0..4 {
        assert_eq!(read_u64(map.lookup_ptr(&k, cpu).unwrap()), 10 + cpu as u64);
    }
    let expected: Vec<Vec<u8>> = (10u64..14).map(|v| v.to_ne_bytes().to_vec()).collect();
    assert_eq!(map.get(&k), Some(MapValue::PerCpu(expected)));
}

/// Writes `len` bytes of a pattern derived from `seed` into a reserved record.
fn fill(record: NonNull<u8>, len: usize, seed: u8) {
    for i in 0..len {
        // SAFETY: `record` points at `len` reserved bytes that only this thread writes.
        unsafe { record.as_ptr().add(i).write(seed.wrapping_add(i as u8)) };
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| seed.wrapping_add(i as u8)).collect()
}

fn ringbuf(size: u32) -> Map {
    Map::new(
        MapSpec {
            name: "rb".into(),
            map_type: MapType::RingBuf,
            key_size: 0,
            value_size: 0,
            max_entries: size,
            flags: 0,
        },
        1,
    )
    .unwrap()
}

#[test]
fn ringbuf_records_arrive_in_reservation_order_once_submitted() {
    let rb = ringbuf(4096);
    let a = rb.ringbuf_reserve(3).unwrap();
    let b = rb.ringbuf_reserve(5).unwrap();
    let c = rb.ringbuf_reserve(8).unwrap();
    fill(a, 3, 1);
    fill(b, 5, 2);
    fill(c, 8, 3);
    // The kernel's layout: an 8-byte header before each record, records rounded up to 8.
    assert_eq!(b.as_ptr() as usize - a.as_ptr() as usize, 16);
    assert_eq!(c.as_ptr() as usize - b.as_ptr() as usize, 16);
    rb.ringbuf_submit(b, false).unwrap();
    rb.ringbuf_submit(c, false).unwrap();
    assert!(rb.ringbuf_drain().is_empty(), "the oldest record is still reserved");
    rb.ringbuf_submit(a, false).unwrap();
    assert_eq!(rb.ringbuf_drain(), vec![pattern(3, 1), pattern(5, 2), pattern(8, 3)]);
    assert!(rb.ringbuf_drain().is_empty());
}

#[test]
fn ringbuf_discarded_records_are_skipped_and_free_their_space() {
    let rb = ringbuf(4096);
    let a = rb.ringbuf_reserve(2040).unwrap();
    let b = rb.ringbuf_reserve(2032).unwrap();
    assert_eq!(rb.ringbuf_reserve(0), None, "2048 + 2040 + 8 bytes exceed 4095");
    fill(b, 2032, 9);
    rb.ringbuf_submit(a, true).unwrap();
    rb.ringbuf_submit(b, false).unwrap();
    assert_eq!(rb.ringbuf_drain(), vec![pattern(2032, 9)]);
    assert!(rb.ringbuf_reserve(4080).is_some(), "all space is free again");
}

#[test]
fn ringbuf_submit_rejects_pointers_it_did_not_hand_out() {
    let rb = ringbuf(4096);
    let a = rb.ringbuf_reserve(16).unwrap();
    let invalid = |r: Result<(), MapError>| matches!(r, Err(MapError::Invalid(_)));
    // Inside the record, not its start.
    assert!(invalid(rb.ringbuf_submit(NonNull::new(a.as_ptr().wrapping_add(8)).unwrap(), false)));
    // Outside the ring.
    let mut elsewhere = 0u64;
    assert!(invalid(rb.ringbuf_submit(NonNull::from(&mut elsewhere).cast(), false)));
    rb.ringbuf_submit(a, false).unwrap();
    // Twice.
    assert!(invalid(rb.ringbuf_submit(a, false)));
    assert!(invalid(rb.ringbuf_submit(a, true)));
    assert_eq!(rb.ringbuf_drain().len(), 1);
    // After it was consumed.
    assert!(invalid(rb.ringbuf_submit(a, false)));
    // Other map types have no ring.
    let hash = map(MapType::Hash, 4, 8, 4, 1);
    assert!(invalid(hash.ringbuf_submit(a, false)));
    assert!(invalid(hash.ringbuf_output(&[1])));
    assert_eq!(hash.ringbuf_reserve(8), None);
    assert!(hash.ringbuf_drain().is_empty());
}

#[test]
fn ringbuf_size_limits() {
    let rb = ringbuf(4096);
    assert_eq!(rb.ringbuf_reserve(4081), None);
    assert_eq!(rb.ringbuf_reserve(u64::MAX), None);
    assert_eq!(rb.ringbuf_reserve(u64::from(u32::MAX)), None);
    let empty = rb.ringbuf_reserve(0).unwrap();
    assert!(in_regions(&rb, empty, 0));
    rb.ringbuf_submit(empty, false).unwrap();
    assert_eq!(rb.ringbuf_drain(), vec![Vec::<u8>::new()]);
}

/// Many laps around a small ring with sizes that do not divide it: every record that wraps
/// past the end is still contiguous, inside the storage region, and arrives intact.
#[test]
fn ringbuf_wraps_around_with_records_intact() {
    let rb = ringbuf(4096);
    let regions = rb.storage_regions();
    let mut expected = Vec::new();
    let mut seed = 0u8;
    let mut wrapped = 0;
    let base = regions[0].0.as_ptr() as usize;
    for round in 0..400usize {
        let size = 1 + (round * 389) % 1500;
        let mut in_flight = Vec::new();
        while let Some(record) = rb.ringbuf_reserve(size as u64) {
            assert!(in_regions(&rb, record, size), "record outside storage regions");
            assert!((record.as_ptr() as usize).is_multiple_of(8));
            if record.as_ptr() as usize - base + size > 4096 {
                wrapped += 1;
            }
            seed = seed.wrapping_add(1);
            fill(record, size, seed);
            in_flight.push((record, pattern(size, seed)));
            if in_flight.len() == 2 {
                break;
            }
        }
        // Submit newest first: order must still be reservation order.
        for (record, _) in in_flight.iter().rev() {
            rb.ringbuf_submit(*record, false).unwrap();
        }
        expected.extend(in_flight.into_iter().map(|(_, data)| data));
        if round % 3 == 2 {
            assert_eq!(rb.ringbuf_drain(), std::mem::take(&mut expected), "round {round}");
        }
    }
    assert_eq!(rb.ringbuf_drain(), expected);
    assert!(wrapped > 10, "only {wrapped} records wrapped; the test should exercise wrapping");
    assert_eq!(rb.storage_regions(), regions);
}
