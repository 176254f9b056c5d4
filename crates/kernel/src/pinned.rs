//! Maps of running programs, opened from their bpffs pins: dump, edit, and read ring buffers and
//! perf event arrays.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aya::maps::perf::{PerfEvent, PerfEventArrayBuffer};
use aya::maps::{Map, MapData, PerfEventArray, RingBuf};
use duet_object::TypeLayout;

use crate::deploy::{self, Attachment, MapLayouts};
use crate::error::{Errno, KernelError};
use crate::maps::MapKind;
use crate::{MapEntries, maps, possible_cpus, sys};

/// The maps of one attachment (or of any pinned map or directory of pinned maps).
#[derive(Debug)]
pub struct PinnedMaps {
    maps: Vec<(String, Map)>,
    n_cpus: usize,
    types: BTreeMap<String, MapLayouts>,
}

impl PinnedMaps {
    /// Opens the maps of attachment `target` (an id under `pin_root`, an attachment directory),
    /// or any bpffs path: a pinned map (named after its file) or a directory of pinned maps.
    pub fn open(pin_root: &Path, target: &str) -> Result<Self, KernelError> {
        let mut recorded = BTreeMap::new();
        let mut order = Vec::new();
        let dir: PathBuf = match deploy::find(pin_root, target) {
            Ok(Attachment { dir, metadata, .. }) => {
                if let Ok(metadata) = metadata {
                    recorded = metadata.map_types;
                    order = metadata.maps;
                }
                dir.join("maps")
            }
            Err(err) => {
                let path = Path::new(target);
                if !target.contains('/') || !path.exists() {
                    return Err(err);
                }
                path.to_owned()
            }
        };
        let mut paths = Vec::new();
        if dir.is_dir() {
            let entries = std::fs::read_dir(&dir).map_err(|source| KernelError::PinIo {
                action: "read",
                path: dir.clone(),
                source,
            })?;
            for entry in entries.flatten() {
                if entry.path().is_file() {
                    paths.push(entry.path());
                }
            }
        } else {
            paths.push(dir.clone());
        }
        paths.sort();
        let mut maps = Vec::new();
        for path in paths {
            let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let name = deploy::map_name_of_pin(&file);
            let data = MapData::from_pin(&path).map_err(|err| KernelError::Pin {
                action: "open the pinned map".to_owned(),
                path: path.clone(),
                errno: map_errno(&err),
            })?;
            let map = Map::from_map_data(data).map_err(|err| KernelError::Pin {
                action: "open the pinned map".to_owned(),
                path: path.clone(),
                errno: map_errno(&err),
            })?;
            maps.push((name, map));
        }
        // The order `attach` recorded (the object's map order), the others by name.
        let ranked = deploy::in_map_order(maps.iter().map(|(name, _)| name.clone()).collect(), &order);
        maps.sort_by_key(|(name, _)| ranked.iter().position(|n| n == name));
        let types = checked_types(recorded, &maps);
        Ok(Self { maps, n_cpus: possible_cpus()?, types })
    }

    /// The key and value types `duet attach` recorded for the maps of an attachment (none for a
    /// map opened by path, or attached by a duet that did not record them). A recorded type
    /// that is malformed or whose size is not the pinned map's is left out.
    pub fn types(&self) -> &BTreeMap<String, MapLayouts> {
        &self.types
    }

    /// The type of the map called `name`.
    pub fn map_kind(&self, name: &str) -> Result<MapKind, KernelError> {
        self.find(name).map(maps::kind_of)
    }

    /// The map names, in the order `duet attach` recorded (the object's map order: declaration
    /// order for SDK objects), else by name.
    pub fn names(&self) -> Vec<String> {
        self.maps.iter().map(|(name, _)| name.clone()).collect()
    }

    /// Every map's entries, sorted by key; arrays list every index. Map types whose entries are
    /// not plain bytes (ring buffers, prog_arrays, ...) are left out, as in [`crate::test_run`].
    pub fn dump(&self) -> Result<BTreeMap<String, MapEntries>, KernelError> {
        let mut out = BTreeMap::new();
        for (name, map) in &self.maps {
            if let Some(entries) = maps::dump(name, map, self.n_cpus)? {
                out.insert(name.clone(), entries);
            }
        }
        Ok(out)
    }

    /// Writes one entry (`BPF_ANY`). For a per-CPU map, `values` holds one value for every CPU
    /// or one per CPU; otherwise exactly one value.
    pub fn set(&self, map: &str, key: &[u8], values: &[Vec<u8>]) -> Result<(), KernelError> {
        let found = self.find(map)?;
        maps::write_values(map, found, key, values, self.n_cpus)
    }

    /// Deletes one entry; [`KernelError::NoSuchKey`] if it is absent.
    pub fn delete(&self, map: &str, key: &[u8]) -> Result<(), KernelError> {
        let found = self.find(map)?;
        maps::delete(map, found, key)
    }

    /// A reader for the ring buffer `name`, or for the only ring buffer when `name` is `None`.
    pub fn ring_buf(mut self, name: Option<&str>) -> Result<RingBufReader, KernelError> {
        let (chosen, map) = self.take(name, "ring buffer", |m| matches!(m, Map::RingBuf(_)))?;
        let ring = RingBuf::try_from(map)
            .map_err(|source| KernelError::RingBuf { map: chosen.clone(), source: Box::new(source) })?;
        Ok(RingBufReader { name: chosen, ring })
    }

    /// The reader of an event map: the ring buffer or perf event array called `name`, or the only
    /// one there is.
    pub fn events(mut self, name: Option<&str>) -> Result<EventReader, KernelError> {
        let n_cpus = self.n_cpus;
        let (chosen, map) = self
            .take(name, "ring buffer or perf event array", |m| matches!(m, Map::RingBuf(_) | Map::PerfEventArray(_)))?;
        if matches!(map, Map::RingBuf(_)) {
            let ring = RingBuf::try_from(map)
                .map_err(|source| KernelError::RingBuf { map: chosen.clone(), source: Box::new(source) })?;
            return Ok(EventReader::Ring(RingBufReader { name: chosen, ring }));
        }
        let perf_err = |what: String| KernelError::MapRead { map: what, errno: Errno(libc::EINVAL) };
        let mut array = PerfEventArray::<MapData>::try_from(map).map_err(|_| perf_err(chosen.clone()))?;
        let mut buffers = Vec::with_capacity(n_cpus);
        for cpu in 0..n_cpus {
            let cpu = u32::try_from(cpu).unwrap_or(u32::MAX);
            // 16 pages (64 KiB) per CPU; the kernel drops samples and counts them when it is full.
            let buffer = array.open(cpu, Some(16)).map_err(|err| match err {
                aya::maps::perf::PerfBufferError::OpenError { io_error } => {
                    KernelError::MapRead { map: chosen.clone(), errno: Errno::of(&io_error) }
                }
                _ => perf_err(chosen.clone()),
            })?;
            buffers.push(buffer);
        }
        Ok(EventReader::Perf(PerfReader { name: chosen, buffers, lost: 0 }))
    }

    /// Takes the map `name` (or the only one) of those `kind` matches, which a message calls
    /// `what`.
    fn take(
        &mut self,
        name: Option<&str>,
        what: &str,
        kind: impl Fn(&Map) -> bool,
    ) -> Result<(String, Map), KernelError> {
        let fitting: Vec<&str> = self.maps.iter().filter(|(_, m)| kind(m)).map(|(n, _)| n.as_str()).collect();
        let chosen = match (name, fitting.as_slice()) {
            (Some(name), _) if fitting.contains(&name) => name.to_owned(),
            (None, [only]) => (*only).to_owned(),
            _ => {
                let what = match name {
                    Some(name) => format!("no {what} map `{name}`"),
                    None if fitting.is_empty() => format!("no {what} map"),
                    None => format!("{} {what} maps; choose one with --map", fitting.len()),
                };
                return Err(KernelError::NoSuchMap { what, available: self.names() });
            }
        };
        let index = self.maps.iter().position(|(n, _)| *n == chosen).unwrap_or_default();
        Ok((chosen, self.maps.swap_remove(index).1))
    }

    fn find(&self, name: &str) -> Result<&Map, KernelError> {
        self.maps
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, m)| m)
            .ok_or_else(|| KernelError::MapNotFound { map: name.to_owned(), available: self.names() })
    }
}

/// Records from a pinned ring buffer while the program runs.
pub struct RingBufReader {
    name: String,
    ring: RingBuf<MapData>,
}

impl std::fmt::Debug for RingBufReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingBufReader").field("name", &self.name).finish_non_exhaustive()
    }
}

impl RingBufReader {
    /// The ring buffer's map name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits up to `timeout` for records and returns all that are ready (possibly none).
    pub fn next_batch(&mut self, timeout: Duration) -> Result<Vec<Vec<u8>>, KernelError> {
        let mut records = self.drain();
        if records.is_empty() {
            let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
            sys::poll_readable(self.ring.as_fd(), ms)
                .map_err(|err| KernelError::MapRead { map: self.name.clone(), errno: Errno::of(&err) })?;
            records = self.drain();
        }
        Ok(records)
    }

    fn drain(&mut self) -> Vec<Vec<u8>> {
        let mut records = Vec::new();
        while let Some(item) = self.ring.next() {
            records.push(item.to_vec());
        }
        records
    }
}

/// Records from a pinned ring buffer or perf event array.
#[derive(Debug)]
pub enum EventReader {
    /// A ring buffer's records.
    Ring(RingBufReader),
    /// A perf event array's samples, from every CPU's buffer.
    Perf(PerfReader),
}

impl EventReader {
    /// The map's name.
    pub fn name(&self) -> &str {
        match self {
            EventReader::Ring(r) => r.name(),
            EventReader::Perf(p) => &p.name,
        }
    }

    /// Whether the map is a perf event array (its samples carry the kernel's padding).
    pub fn is_perf(&self) -> bool {
        matches!(self, EventReader::Perf(_))
    }

    /// Waits up to `timeout` for records and returns all that are ready (possibly none).
    pub fn next_batch(&mut self, timeout: Duration) -> Result<Vec<Vec<u8>>, KernelError> {
        match self {
            EventReader::Ring(r) => r.next_batch(timeout),
            EventReader::Perf(p) => p.next_batch(timeout),
        }
    }

    /// Samples the kernel dropped because a perf buffer was full (0 for a ring buffer, whose
    /// writer sees the failure instead).
    pub fn lost(&self) -> u64 {
        match self {
            EventReader::Ring(_) => 0,
            EventReader::Perf(p) => p.lost,
        }
    }
}

/// Samples of a pinned perf event array: one perf buffer per CPU, opened by this reader (which
/// puts their descriptors in the array; a program's `bpf_perf_event_output` with
/// `BPF_F_CURRENT_CPU` then writes to its CPU's buffer). A sample's bytes are what the program
/// wrote, followed by the kernel's padding up to 4 bytes short of a multiple of 8.
pub struct PerfReader {
    name: String,
    buffers: Vec<PerfEventArrayBuffer<MapData>>,
    lost: u64,
}

impl std::fmt::Debug for PerfReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerfReader").field("name", &self.name).field("cpus", &self.buffers.len()).finish()
    }
}

impl PerfReader {
    /// Waits up to `timeout` for samples and returns all that are ready (possibly none).
    pub fn next_batch(&mut self, timeout: Duration) -> Result<Vec<Vec<u8>>, KernelError> {
        let mut records = self.drain();
        if records.is_empty() {
            let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
            let fds: Vec<_> = self.buffers.iter().map(AsFd::as_fd).collect();
            sys::poll_any_readable(&fds, ms)
                .map_err(|err| KernelError::MapRead { map: self.name.clone(), errno: Errno::of(&err) })?;
            records = self.drain();
        }
        Ok(records)
    }

    fn drain(&mut self) -> Vec<Vec<u8>> {
        let mut records = Vec::new();
        let mut lost = 0;
        for buffer in &mut self.buffers {
            buffer.for_each(|event| match event {
                PerfEvent::Sample { head, tail } => {
                    let mut record = Vec::with_capacity(head.len() + tail.len());
                    record.extend_from_slice(head);
                    record.extend_from_slice(tail);
                    records.push(record);
                }
                PerfEvent::Lost { count } => lost += count,
            });
        }
        self.lost += lost;
        records
    }
}

/// The recorded layouts that describe the pinned maps: well formed ([`TypeLayout::check`]) and
/// of the size the kernel reports for the map, since the metadata is read from bpffs, not from
/// the object.
fn checked_types(recorded: BTreeMap<String, MapLayouts>, maps: &[(String, Map)]) -> BTreeMap<String, MapLayouts> {
    let fits =
        |layout: Option<TypeLayout>, size: u32| layout.filter(|l| l.check().is_ok() && l.size() == u64::from(size));
    recorded
        .into_iter()
        .filter_map(|(name, layouts)| {
            let (_, map) = maps.iter().find(|(n, _)| *n == name)?;
            let (key_size, value_size) = maps::key_value_sizes(&name, map).ok()?;
            let layouts = MapLayouts { key: fits(layouts.key, key_size), value: fits(layouts.value, value_size) };
            (layouts.key.is_some() || layouts.value.is_some()).then_some((name, layouts))
        })
        .collect()
}

fn map_errno(err: &aya::maps::MapError) -> Errno {
    match err {
        aya::maps::MapError::SyscallError(sys) => Errno::of(&sys.io_error),
        _ => Errno(libc::EINVAL),
    }
}
