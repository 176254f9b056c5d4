//! Every object of the project's BPF corpus (`target/bpf/*.o`, built from tests/bpf/c and
//! tests/bpf/rust) loads in the kernel and runs over a few packets, with structurally sound
//! results: XDP verdicts in range, refusals only for frames shorter than Ethernet, and every map
//! dumped with the object's key and value sizes. The exact values are the differential test's job.

mod common;

use std::path::PathBuf;

use duet_kernel::{MapDump, ProgramKind, TestRunInput, list_programs, test_run};

const BPF_MAP_TYPE_HASH: u32 = 1;
const BPF_MAP_TYPE_ARRAY: u32 = 2;
const BPF_MAP_TYPE_PROG_ARRAY: u32 = 3;
const BPF_MAP_TYPE_PERCPU_HASH: u32 = 5;
const BPF_MAP_TYPE_PERCPU_ARRAY: u32 = 6;
const BPF_MAP_TYPE_LRU_HASH: u32 = 9;
const BPF_MAP_TYPE_LRU_PERCPU_HASH: u32 = 10;
const BPF_MAP_TYPE_LPM_TRIE: u32 = 11;
const BPF_MAP_TYPE_RINGBUF: u32 = 27;

/// `target/bpf` of this workspace (or of `CARGO_TARGET_DIR`).
fn corpus_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("bpf"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bpf"),
    }
}

fn corpus() -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(corpus_dir()) else { return Vec::new() };
    let mut objects: Vec<PathBuf> =
        dir.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "o")).collect();
    objects.sort();
    objects
}

/// A few frames: IPv4/UDP, IPv4/TCP, IPv6/UDP, a bare Ethernet header with the IPv4 type, a
/// 14-byte frame of an unknown type, and one shorter than Ethernet.
fn packets() -> Vec<Vec<u8>> {
    let eth = |ethertype: [u8; 2]| {
        let mut f = vec![0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02];
        f.extend_from_slice(&ethertype);
        f
    };
    let ipv4 = |proto: u8, l4: &[u8]| {
        let mut f = eth([0x08, 0x00]);
        let total = (20 + l4.len()) as u16;
        f.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0x40, 0, 64, proto, 0, 0]);
        f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend_from_slice(l4);
        f
    };
    let udp = [0x30, 0x39, 0x00, 0x35, 0, 16, 0, 0, b'd', b'u', b'e', b't', 0, 0, 0, 0];
    let tcp = [0x30, 0x39, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0];
    let mut ipv6 = eth([0x86, 0xdd]);
    ipv6.extend_from_slice(&[0x60, 0, 0, 0, 0, 16, 17, 64]);
    ipv6.extend((0..32).map(|i| if i % 16 == 15 { 1 + i / 16 } else { 0 }));
    ipv6.extend_from_slice(&udp);
    vec![ipv4(17, &udp), ipv4(6, &tcp), ipv6, eth([0x08, 0x00]), eth([0x12, 0x34]), vec![0; 10]]
}

/// Whether `BPF_PROG_TEST_RUN` refuses `frame` (with EINVAL) for this program type, as Linux 6.18
/// does: every frame shorter than an Ethernet header, and for skb-based programs (socket filter,
/// tc, ...) also an IPv4 or IPv6 frame too short for its IP header.
fn refused_by_kernel(kind: &ProgramKind, frame: &[u8]) -> bool {
    if frame.len() < 14 {
        return true;
    }
    if *kind == ProgramKind::Xdp {
        return false;
    }
    match [frame[12], frame[13]] {
        [0x08, 0x00] => frame.len() < 14 + 20,
        [0x86, 0xdd] => frame.len() < 14 + 40,
        _ => false,
    }
}

#[test]
fn corpus_objects_run_with_sound_results() {
    let objects = corpus();
    if objects.is_empty() {
        common::skip(&format!(
            "no BPF corpus objects in {}; build tests/bpf/c and tests/bpf/rust into it first (the xtask does)",
            corpus_dir().display()
        ));
        return;
    }
    if !common::kernel_access() {
        return;
    }
    let packets = packets();
    let n_cpus = common::possible_cpus();
    let mut n_runs = 0;
    for path in &objects {
        let file = path.display();
        let object = std::fs::read(path).unwrap();
        let defs = aya_obj::Object::parse(&object).unwrap_or_else(|e| panic!("{file}: {e}"));
        for program in list_programs(&object).unwrap_or_else(|e| panic!("{file}: {e}")) {
            if !program.kind.test_runnable() {
                continue;
            }
            let name = &program.name;
            let input = TestRunInput {
                object: &object,
                program: name,
                packets: &packets,
                maps_in: &[],
                prog_arrays: &[],
                repeat: 1,
            };
            let out = test_run(&input).unwrap_or_else(|e| panic!("{file} `{name}`: {e}"));
            n_runs += 1;

            assert_eq!(out.packets.len(), packets.len());
            for (packet, outcome) in packets.iter().zip(&out.packets) {
                if refused_by_kernel(&program.kind, packet) {
                    let reason = outcome.result.as_ref().expect_err("the kernel refuses this frame");
                    assert!(reason.starts_with("EINVAL"), "{file} `{name}`: {reason}");
                    continue;
                }
                let retval = outcome.result.clone().unwrap_or_else(|e| panic!("{file} `{name}`: refused: {e}"));
                if program.kind == ProgramKind::Xdp {
                    assert!(retval <= 4, "{file} `{name}`: XDP verdict {retval} is no XDP action");
                }
            }

            for (map_name, def) in &defs.maps {
                let map_type = def.map_type();
                let dumped = out.maps.get(map_name);
                match map_type {
                    BPF_MAP_TYPE_PROG_ARRAY => assert!(dumped.is_none(), "{file}: prog_array `{map_name}` dumped"),
                    BPF_MAP_TYPE_RINGBUF => {
                        assert!(dumped.is_none(), "{file}: ringbuf `{map_name}` dumped as a map");
                        assert!(out.ringbufs.contains_key(map_name), "{file}: ringbuf `{map_name}` not read");
                    }
                    BPF_MAP_TYPE_HASH
                    | BPF_MAP_TYPE_ARRAY
                    | BPF_MAP_TYPE_PERCPU_HASH
                    | BPF_MAP_TYPE_PERCPU_ARRAY
                    | BPF_MAP_TYPE_LRU_HASH
                    | BPF_MAP_TYPE_LRU_PERCPU_HASH
                    | BPF_MAP_TYPE_LPM_TRIE => {
                        let entries = dumped.unwrap_or_else(|| panic!("{file}: map `{map_name}` not dumped"));
                        let per_cpu = matches!(
                            map_type,
                            BPF_MAP_TYPE_PERCPU_HASH | BPF_MAP_TYPE_PERCPU_ARRAY | BPF_MAP_TYPE_LRU_PERCPU_HASH
                        );
                        if matches!(map_type, BPF_MAP_TYPE_ARRAY | BPF_MAP_TYPE_PERCPU_ARRAY) {
                            assert_eq!(entries.len(), def.max_entries() as usize, "{file}: array `{map_name}`");
                        }
                        assert!(entries.len() <= def.max_entries() as usize, "{file}: `{map_name}` overfull");
                        assert!(entries.windows(2).all(|w| w[0].0 < w[1].0), "{file}: `{map_name}` unsorted");
                        let value_size = def.value_size() as usize;
                        for (key, value) in entries {
                            assert_eq!(key.len(), def.key_size() as usize, "{file}: `{map_name}` key size");
                            match value {
                                MapDump::Single(v) => {
                                    assert!(!per_cpu, "{file}: per-CPU `{map_name}` dumped as shared");
                                    assert_eq!(v.len(), value_size, "{file}: `{map_name}` value size");
                                }
                                MapDump::PerCpu(values) => {
                                    assert!(per_cpu, "{file}: `{map_name}` dumped as per-CPU");
                                    assert_eq!(values.len(), n_cpus, "{file}: `{map_name}` CPU count");
                                    assert!(values.iter().all(|v| v.len() == value_size), "{file}: `{map_name}`");
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    eprintln!("ran {n_runs} programs from {} corpus objects in the kernel", objects.len());
    assert!(n_runs > 0, "the corpus has objects but no program BPF_PROG_TEST_RUN can run");
}
