//! Byte-level map access: seed entries before a run and dump every entry after it.
//!
//! aya's map types are typed by Rust key/value types; here sizes come from the kernel
//! (`MapData::info`) and keys and values are byte vectors, read and written through
//! [`crate::sys`].

use std::io;
use std::os::fd::AsFd;

use aya::maps::{Map, MapData};

use crate::error::{Errno, KernelError};
use crate::sys;
use crate::{MapDump, MapEntries};

/// How a map's entries are enumerated and laid out, for the map types duet dumps and seeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// Keys are every index `0..max_entries` (u32, little-endian).
    Array { per_cpu: bool },
    /// Keys are enumerated with `BPF_MAP_GET_NEXT_KEY`.
    Hashed { per_cpu: bool },
}

/// The `MapData` behind any aya map, and the map type's name for messages.
pub(crate) fn data_and_kind(map: &Map) -> (&MapData, &'static str) {
    match map {
        Map::Array(m) => (m, "array"),
        Map::ArrayOfMaps(m) => (m, "array_of_maps"),
        Map::BloomFilter(m) => (m, "bloom_filter"),
        Map::CgroupArray(m) => (m, "cgroup_array"),
        Map::CgroupStorage(m) => (m, "cgroup_storage"),
        Map::CgrpStorage(m) => (m, "cgrp_storage"),
        Map::CpuMap(m) => (m, "cpumap"),
        Map::DevMap(m) => (m, "devmap"),
        Map::DevMapHash(m) => (m, "devmap_hash"),
        Map::HashMap(m) => (m, "hash"),
        Map::HashOfMaps(m) => (m, "hash_of_maps"),
        Map::InodeStorage(m) => (m, "inode_storage"),
        Map::LpmTrie(m) => (m, "lpm_trie"),
        Map::LruHashMap(m) => (m, "lru_hash"),
        Map::PerCpuArray(m) => (m, "percpu_array"),
        Map::PerCpuCgroupStorage(m) => (m, "percpu_cgroup_storage"),
        Map::PerCpuHashMap(m) => (m, "percpu_hash"),
        Map::PerCpuLruHashMap(m) => (m, "lru_percpu_hash"),
        Map::PerfEventArray(m) => (m, "perf_event_array"),
        Map::ProgramArray(m) => (m, "prog_array"),
        Map::Queue(m) => (m, "queue"),
        Map::ReusePortSockArray(m) => (m, "reuseport_sockarray"),
        Map::RingBuf(m) => (m, "ringbuf"),
        Map::SockHash(m) => (m, "sockhash"),
        Map::SockMap(m) => (m, "sockmap"),
        Map::SkStorage(m) => (m, "sk_storage"),
        Map::Stack(m) => (m, "stack"),
        Map::StackTraceMap(m) => (m, "stack_trace"),
        Map::Unsupported(m) => (m, "unsupported"),
        Map::XskMap(m) => (m, "xskmap"),
    }
}

/// The layout of the map types whose entries are plain key/value bytes; `None` for the rest
/// (ring buffers, prog_arrays, maps of maps, socket and storage maps, queues, ...).
fn layout(map: &Map) -> Option<Layout> {
    Some(match map {
        Map::Array(_) | Map::DevMap(_) | Map::CpuMap(_) => Layout::Array { per_cpu: false },
        Map::PerCpuArray(_) => Layout::Array { per_cpu: true },
        Map::HashMap(_) | Map::LruHashMap(_) | Map::LpmTrie(_) | Map::DevMapHash(_) => {
            Layout::Hashed { per_cpu: false }
        }
        Map::PerCpuHashMap(_) | Map::PerCpuLruHashMap(_) => Layout::Hashed { per_cpu: true },
        _ => return None,
    })
}

/// A map's type as duet's commands describe it: the type's name (`percpu_hash`) and whether
/// it holds one value per CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapKind {
    /// The map type's name, e.g. `array`, `lru_percpu_hash`.
    pub name: &'static str,
    /// Whether the map holds one value per possible CPU.
    pub per_cpu: bool,
}

/// The kind of an aya map.
pub(crate) fn kind_of(map: &Map) -> MapKind {
    let (_, name) = data_and_kind(map);
    let per_cpu = matches!(layout(map), Some(Layout::Array { per_cpu: true } | Layout::Hashed { per_cpu: true }));
    MapKind { name, per_cpu }
}

/// The key and value sizes the kernel reports for a map.
pub(crate) fn key_value_sizes(name: &str, map: &Map) -> Result<(u32, u32), KernelError> {
    let (data, _) = data_and_kind(map);
    let sizes = sizes(name, data)?;
    Ok((sizes.key, sizes.value))
}

/// Sizes the kernel reports for a map.
struct Sizes {
    key: u32,
    value: u32,
    max_entries: u32,
}

fn sizes(name: &str, data: &MapData) -> Result<Sizes, KernelError> {
    let info = data.info().map_err(|err| KernelError::MapRead { map: name.to_owned(), errno: map_errno(&err) })?;
    Ok(Sizes { key: info.key_size(), value: info.value_size(), max_entries: info.max_entries() })
}

/// The bytes one CPU's value occupies in a per-CPU lookup/update buffer: the kernel rounds each
/// value up to 8 bytes.
fn per_cpu_stride(value_size: u32) -> usize {
    (value_size as usize).next_multiple_of(8)
}

/// Writes one `maps_in` entry (`BPF_ANY`). A per-CPU map gets the same value on every CPU.
pub(crate) fn write(name: &str, map: &Map, key: &[u8], value: &[u8], n_cpus: usize) -> Result<(), KernelError> {
    write_values(name, map, key, &[value.to_vec()], n_cpus)
}

/// Writes one entry (`BPF_ANY`). `values` is one value, or for a per-CPU map also one value per
/// CPU.
pub(crate) fn write_values(
    name: &str,
    map: &Map,
    key: &[u8],
    values: &[Vec<u8>],
    n_cpus: usize,
) -> Result<(), KernelError> {
    let (data, kind) = data_and_kind(map);
    let Some(layout) = layout(map) else {
        return Err(KernelError::MapNotWritable { map: name.to_owned(), kind: kind.to_owned() });
    };
    let sizes = sizes(name, data)?;
    check_len(name, "key", sizes.key, key.len())?;
    for value in values {
        check_len(name, "value", sizes.value, value.len())?;
    }
    let per_cpu = matches!(layout, Layout::Array { per_cpu: true } | Layout::Hashed { per_cpu: true });
    let buf = match values {
        [value] if !per_cpu => value.clone(),
        _ if per_cpu && (values.len() == 1 || values.len() == n_cpus) => {
            let stride = per_cpu_stride(sizes.value);
            let mut buf = vec![0; stride * n_cpus];
            for (cpu, slot) in buf.chunks_exact_mut(stride).enumerate() {
                let value = values.get(cpu).unwrap_or(&values[0]);
                slot[..value.len()].copy_from_slice(value);
            }
            buf
        }
        _ => {
            let expected = if per_cpu { format!("1 or {n_cpus} (one per CPU)") } else { "1".to_owned() };
            return Err(KernelError::MapValueCount { map: name.to_owned(), expected, got: values.len() });
        }
    };
    sys::map_update(data.fd().as_fd(), key, &buf).map_err(|err| {
        // The kernel freezes .rodata* maps at load time; writes then fail with EPERM.
        if name.starts_with(".rodata") && err.raw_os_error() == Some(libc::EPERM) {
            KernelError::MapReadOnly { map: name.to_owned() }
        } else {
            KernelError::MapUpdate { map: name.to_owned(), errno: Errno::of(&err) }
        }
    })
}

/// Deletes one entry of a hashed map (hash, lru, lpm, ...); arrays cannot delete.
pub(crate) fn delete(name: &str, map: &Map, key: &[u8]) -> Result<(), KernelError> {
    let (data, kind) = data_and_kind(map);
    match layout(map) {
        Some(Layout::Hashed { .. }) => {}
        Some(Layout::Array { .. }) => {
            return Err(KernelError::MapNoDelete { map: name.to_owned(), kind: kind.to_owned() });
        }
        None => return Err(KernelError::MapNotWritable { map: name.to_owned(), kind: kind.to_owned() }),
    }
    let sizes = sizes(name, data)?;
    check_len(name, "key", sizes.key, key.len())?;
    sys::map_delete(data.fd().as_fd(), key).map_err(|err| match err.raw_os_error() {
        Some(libc::ENOENT) => {
            KernelError::NoSuchKey { map: name.to_owned(), key: key.iter().map(|b| format!("{b:02x}")).collect() }
        }
        _ => KernelError::MapUpdate { map: name.to_owned(), errno: Errno::of(&err) },
    })
}

fn check_len(map: &str, what: &'static str, expected: u32, got: usize) -> Result<(), KernelError> {
    if expected as usize == got {
        Ok(())
    } else {
        Err(KernelError::MapSize { map: map.to_owned(), what, expected, got })
    }
}

/// Every entry of a map, sorted by key; `None` for map types that are not dumped.
pub(crate) fn dump(name: &str, map: &Map, n_cpus: usize) -> Result<Option<MapEntries>, KernelError> {
    let Some(layout) = layout(map) else {
        return Ok(None);
    };
    let (data, _) = data_and_kind(map);
    let sizes = sizes(name, data)?;
    let fd = data.fd().as_fd();
    let read_err = |err: io::Error| KernelError::MapRead { map: name.to_owned(), errno: Errno::of(&err) };

    let keys: Vec<Vec<u8>> = match layout {
        Layout::Array { .. } => (0..sizes.max_entries).map(|i| i.to_le_bytes().to_vec()).collect(),
        Layout::Hashed { .. } => {
            let mut keys = Vec::new();
            let mut next = vec![0; sizes.key as usize];
            while sys::map_next_key(fd, keys.last().map(Vec::as_slice), &mut next).map_err(read_err)? {
                keys.push(next.clone());
                // A map that grows while it is read (it cannot here: no program runs) would
                // otherwise loop; max_entries bounds any sane enumeration.
                if keys.len() > sizes.max_entries as usize {
                    break;
                }
            }
            keys.sort();
            keys.dedup();
            keys
        }
    };

    let per_cpu = matches!(layout, Layout::Array { per_cpu: true } | Layout::Hashed { per_cpu: true });
    let value_size = sizes.value as usize;
    let mut entries = Vec::with_capacity(keys.len());
    for key in keys {
        if per_cpu {
            let stride = per_cpu_stride(sizes.value);
            let mut buf = vec![0; stride * n_cpus];
            match sys::map_lookup(fd, &key, &mut buf) {
                Ok(()) => {}
                // Deleted between enumeration and lookup, or an empty devmap slot.
                Err(err) if err.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(err) => return Err(read_err(err)),
            }
            let values = buf.chunks_exact(stride).map(|slot| slot[..value_size].to_vec()).collect();
            entries.push((key, MapDump::PerCpu(values)));
        } else {
            let mut buf = vec![0; value_size];
            match sys::map_lookup(fd, &key, &mut buf) {
                Ok(()) => {}
                Err(err) if err.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(err) => return Err(read_err(err)),
            }
            entries.push((key, MapDump::Single(buf)));
        }
    }
    Ok(Some(entries))
}

fn map_errno(err: &aya::maps::MapError) -> Errno {
    match err {
        aya::maps::MapError::SyscallError(sys) => Errno::of(&sys.io_error),
        _ => Errno(libc::EIO),
    }
}
