//! # duet-maps — eBPF maps with Linux kernel semantics
//!
//! **API boundary.** One [`Map`] type serves every userspace executor: the eBPF interpreter
//! calls it from its helpers, the Wasm host from its `duet` imports, and the CLI and tests read
//! and write it from the user side. Behaviour follows Linux (the kernel is the authority):
//! creation checks mirror `BPF_MAP_CREATE`, updates take `BPF_ANY` / `BPF_NOEXIST` /
//! `BPF_EXIST`, and every failure has the kernel's errno ([`MapError::errno`]).
//!
//! Supported types: `hash`, `array`, `prog_array`, `percpu_hash`, `percpu_array`, `lru_hash`,
//! `lru_percpu_hash`, `lpm_trie` and `ringbuf` (see [`MapType`]).
//!
//! ## Memory model
//!
//! Programs get raw pointers to values ([`Map::lookup_ptr`], [`Map::ringbuf_reserve`]) and
//! read and write through them directly, because in the VM guest addresses are host addresses.
//! Every value therefore lives in a preallocated arena, allocated once at creation, 8-byte
//! aligned, and never moved or freed before the map is dropped — like the kernel's preallocated
//! maps. A pointer stays valid for the map's lifetime; when its entry is deleted (or evicted)
//! the slot may later hold another key's value, exactly as in the kernel.
//! [`Map::storage_regions`] lists the arenas so the VM can put them in its region table once per
//! run; it does not change over the map's lifetime.
//!
//! ## Concurrency
//!
//! Every method takes `&self`; a `Map` is `Send + Sync` and is shared as `Arc<Map>` by programs
//! running on many threads at once. The index from key to slot is guarded by locks (sharded
//! read-write locks for `hash`/`percpu_hash`, one mutex for the LRU maps, one read-write lock
//! for the LPM trie, one mutex for the ring buffer); arrays take no lock at all.
//!
//! Values themselves are not locked, as in the kernel: a program writing through a pointer
//! races with any other thread touching the same value, and what it then sees is the program's
//! business (use atomic instructions for shared counters, or per-CPU maps). To keep that race
//! from being undefined behaviour on this side, the crate itself only ever touches value memory
//! with relaxed atomic loads and stores (8 bytes at a time where aligned); a concurrent reader
//! can therefore see a value half old and half new, at 8-byte granularity, but never garbage
//! outside it.
//!
//! ## Where this differs from Linux
//!
//! - Updating an existing key writes the value in place for every map type. Linux does so for
//!   arrays and per-CPU maps, but replaces the element of a `hash`, `lru_hash` or `lpm_trie`
//!   (so a program holding the old pointer keeps seeing the old value there).
//! - The LRU maps are a true LRU (one list, one lock); Linux's LRU is approximate (per-CPU free
//!   lists and a reference bit), may evict before the map is full, and may evict even when the
//!   update then fails its flag check. `BPF_F_NO_COMMON_LRU` is accepted and has no effect.
//! - Every map is preallocated, also with `BPF_F_NO_PREALLOC` (accepted where Linux accepts
//!   it). The big arenas are allocated zeroed, so the OS maps their pages only when touched.
//! - Access flags (`BPF_F_RDONLY`, `BPF_F_RDONLY_PROG`, ...) are accepted and kept in the spec;
//!   enforcing them is the loader's and the verifier's job.
//! - Ring buffer records live in one linear buffer twice the ring's size instead of Linux's
//!   double mapping, so a record that wraps is still contiguous. Space accounting (8-byte
//!   headers, 8-byte rounding, at most `size - 1` bytes in flight) is the kernel's.
//!
//! No I/O happens here.
#![deny(unsafe_code)]

#[cfg(target_endian = "big")]
compile_error!("duet-maps assumes a little-endian host: eBPF map keys such as array indices are host-endian integers");

mod arena;
mod array;
mod hash;
mod key;
mod lpm;
mod lru;
mod prog_array;
mod ringbuf;
mod sync;
mod values;

use std::fmt;
use std::ptr::NonNull;

use crate::array::ArrayMap;
use crate::hash::HashMap;
use crate::lpm::LpmTrie;
use crate::lru::LruMap;
use crate::prog_array::ProgArray;
use crate::ringbuf::RingBuf;
use crate::values::Write;

// === Flags ===

/// Update flag: create a new entry or update an existing one.
pub const BPF_ANY: u64 = 0;
/// Update flag: create a new entry only; fail with [`MapError::Exists`] if the key has one.
pub const BPF_NOEXIST: u64 = 1;
/// Update flag: update an existing entry only; fail with [`MapError::NotFound`] otherwise.
pub const BPF_EXIST: u64 = 2;

/// Map flag: do not preallocate (required by `lpm_trie`; duet preallocates anyway).
pub const BPF_F_NO_PREALLOC: u32 = 1 << 0;
/// Map flag: per-CPU LRU lists instead of a common one (LRU maps only; no effect here).
pub const BPF_F_NO_COMMON_LRU: u32 = 1 << 1;
/// Map flag: allocate on the NUMA node given at creation (no effect here).
pub const BPF_F_NUMA_NODE: u32 = 1 << 2;
/// Map flag: read-only from the syscall side.
pub const BPF_F_RDONLY: u32 = 1 << 3;
/// Map flag: write-only from the syscall side.
pub const BPF_F_WRONLY: u32 = 1 << 4;
/// Map flag: hash with a zero seed (deterministic bucket layout), for tests.
pub const BPF_F_ZERO_SEED: u32 = 1 << 6;
/// Map flag: read-only from programs.
pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;
/// Map flag: write-only from programs.
pub const BPF_F_WRONLY_PROG: u32 = 1 << 8;
/// Map flag: the array may be mmap()ed (global data sections use it; no effect here).
pub const BPF_F_MMAPABLE: u32 = 1 << 10;
/// Map flag: the array may be used as an inner map of a map-in-map (no effect here).
pub const BPF_F_INNER_MAP: u32 = 1 << 12;

/// Every access flag, as the kernel's `BPF_F_ACCESS_MASK`.
const BPF_F_ACCESS_MASK: u32 = BPF_F_RDONLY | BPF_F_RDONLY_PROG | BPF_F_WRONLY | BPF_F_WRONLY_PROG;

// === Kernel limits ===

/// `MAX_BPF_STACK`: programs build keys on their stack, so keys cannot be larger.
const MAX_BPF_STACK: u32 = 512;
/// `KMALLOC_MAX_SIZE` on x86-64 with 4 KiB pages.
const KMALLOC_MAX_SIZE: u64 = 1 << 22;
/// `PCPU_MIN_UNIT_SIZE`: the largest per-CPU value.
const PCPU_MIN_UNIT_SIZE: u64 = 32 << 10;
/// Size of the kernel's `struct htab_elem` header, which counts against `KMALLOC_MAX_SIZE`.
const HTAB_ELEM_SIZE: u64 = 48;
/// Largest LPM key data (`LPM_DATA_SIZE_MAX`, 2048 prefix bits).
const LPM_DATA_SIZE_MAX: u32 = 256;
/// Size of the kernel's `struct lpm_trie_node` header.
const LPM_NODE_SIZE: u64 = 24;
/// Page size the ring buffer's size must be a multiple of.
const PAGE_SIZE: u32 = 4096;
/// Most CPUs a per-CPU map may be created for (the kernel's largest `NR_CPUS`).
pub const MAX_CPUS: usize = 8192;

// === MapType ===

/// A map type, numbered as the kernel's `enum bpf_map_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum MapType {
    /// `BPF_MAP_TYPE_HASH`.
    Hash = 1,
    /// `BPF_MAP_TYPE_ARRAY`.
    Array = 2,
    /// `BPF_MAP_TYPE_PROG_ARRAY`: program indices for tail calls.
    ProgArray = 3,
    /// `BPF_MAP_TYPE_PERCPU_HASH`.
    PerCpuHash = 5,
    /// `BPF_MAP_TYPE_PERCPU_ARRAY`.
    PerCpuArray = 6,
    /// `BPF_MAP_TYPE_LRU_HASH`.
    LruHash = 9,
    /// `BPF_MAP_TYPE_LRU_PERCPU_HASH`.
    LruPerCpuHash = 10,
    /// `BPF_MAP_TYPE_LPM_TRIE`: longest-prefix match.
    LpmTrie = 11,
    /// `BPF_MAP_TYPE_RINGBUF`.
    RingBuf = 27,
}

impl MapType {
    /// Every supported type, in kernel number order.
    pub const ALL: [MapType; 9] = [
        MapType::Hash,
        MapType::Array,
        MapType::ProgArray,
        MapType::PerCpuHash,
        MapType::PerCpuArray,
        MapType::LruHash,
        MapType::LruPerCpuHash,
        MapType::LpmTrie,
        MapType::RingBuf,
    ];

    /// The type with kernel number `raw`, if duet supports it.
    pub fn from_raw(raw: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.raw() == raw)
    }

    /// The kernel number.
    pub fn raw(self) -> u32 {
        self as u32
    }

    /// The name bpftool and libbpf use (`"hash"`, `"percpu_array"`, `"ringbuf"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            MapType::Hash => "hash",
            MapType::Array => "array",
            MapType::ProgArray => "prog_array",
            MapType::PerCpuHash => "percpu_hash",
            MapType::PerCpuArray => "percpu_array",
            MapType::LruHash => "lru_hash",
            MapType::LruPerCpuHash => "lru_percpu_hash",
            MapType::LpmTrie => "lpm_trie",
            MapType::RingBuf => "ringbuf",
        }
    }

    /// The type named `name` (the inverse of [`MapType::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether each CPU has its own copy of every value.
    pub fn is_per_cpu(self) -> bool {
        matches!(self, MapType::PerCpuHash | MapType::PerCpuArray | MapType::LruPerCpuHash)
    }
}

impl fmt::Display for MapType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// === MapSpec, MapValue, MapError ===

/// What a map is: the attributes of `BPF_MAP_CREATE`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MapSpec {
    /// The map's name (from the object file or the Wasm manifest).
    pub name: String,
    /// The type.
    pub map_type: MapType,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes (one CPU's value for per-CPU maps).
    pub value_size: u32,
    /// Capacity: entries, or bytes for a ring buffer.
    pub max_entries: u32,
    /// `BPF_F_*` map flags.
    pub flags: u32,
}

impl MapSpec {
    /// Checks the attributes as the kernel's `BPF_MAP_CREATE` does (the checks [`Map::new`]
    /// makes), without allocating anything: loaders and build tools call it to refuse a map
    /// with the same words everywhere.
    pub fn validate(&self) -> Result<(), MapError> {
        validate(self)
    }

    /// About how many bytes the map preallocates for `n_cpus` CPUs: keys and values (each
    /// value rounded up to 8 bytes, once per CPU for per-CPU maps) times `max_entries`; a ring
    /// buffer's size. What a module's map-memory budget counts, for eBPF and Wasm modules alike.
    pub fn storage_bytes(&self, n_cpus: usize) -> u64 {
        let copies = if self.map_type.is_per_cpu() { n_cpus.max(1) as u64 } else { 1 };
        let entry = u64::from(self.key_size) + u64::from(self.value_size).div_ceil(8) * 8 * copies;
        u64::from(self.max_entries).saturating_mul(entry.max(1))
    }
}

/// A value as the user side sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MapValue {
    /// The value of a map that is not per-CPU: `value_size` bytes.
    Single(Vec<u8>),
    /// One value per CPU, each `value_size` bytes, CPU 0 first.
    PerCpu(Vec<Vec<u8>>),
}

impl MapValue {
    /// The bytes of a [`MapValue::Single`].
    pub fn as_single(&self) -> Option<&[u8]> {
        match self {
            MapValue::Single(bytes) => Some(bytes),
            MapValue::PerCpu(_) => None,
        }
    }

    /// The per-CPU values of a [`MapValue::PerCpu`].
    pub fn as_per_cpu(&self) -> Option<&[Vec<u8>]> {
        match self {
            MapValue::Single(_) => None,
            MapValue::PerCpu(values) => Some(values),
        }
    }
}

/// Why a map operation failed. [`MapError::errno`] gives the value a helper returns.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MapError {
    /// The key has no entry (`ENOENT`): delete of a missing key, or `BPF_EXIST` update.
    #[error("no entry for this key")]
    NotFound,
    /// The key already has an entry and the update asked for `BPF_NOEXIST` (`EEXIST`).
    #[error("an entry for this key already exists")]
    Exists,
    /// The map has no free entry for a new key, or an array index is out of range (`E2BIG`).
    #[error("map is full, or the index is out of range")]
    Full,
    /// The LPM trie has no free entry for a new prefix (`ENOSPC`, as the kernel's trie says).
    #[error("no space left in the trie")]
    NoSpace,
    /// The ring buffer has no room for the record (`EAGAIN`, as `bpf_ringbuf_output`).
    #[error("ring buffer has no room for the record")]
    RingFull,
    /// An argument or attribute is invalid (`EINVAL`); the text says which and why.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// A size or count is over a kernel limit (`E2BIG`); the text says which.
    #[error("too big: {0}")]
    TooBig(String),
    /// The map type does not support the operation (`ENOTSUPP`, the kernel's code for this).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The map's storage could not be allocated (`ENOMEM`).
    #[error("out of memory for the map's storage")]
    NoMemory,
}

/// Kernel errno values used here.
mod errno {
    pub(crate) const ENOENT: i64 = 2;
    pub(crate) const E2BIG: i64 = 7;
    pub(crate) const EAGAIN: i64 = 11;
    pub(crate) const ENOMEM: i64 = 12;
    pub(crate) const EEXIST: i64 = 17;
    pub(crate) const EINVAL: i64 = 22;
    pub(crate) const ENOSPC: i64 = 28;
    /// The kernel-internal `ENOTSUPP`, which the bpf syscall returns for unsupported map ops.
    pub(crate) const ENOTSUPP: i64 = 524;
}

impl MapError {
    /// The negative kernel errno a helper returns to the program for this error.
    pub fn errno(&self) -> i64 {
        -match self {
            MapError::NotFound => errno::ENOENT,
            MapError::Exists => errno::EEXIST,
            MapError::Full | MapError::TooBig(_) => errno::E2BIG,
            MapError::NoSpace => errno::ENOSPC,
            MapError::RingFull => errno::EAGAIN,
            MapError::Invalid(_) => errno::EINVAL,
            MapError::Unsupported(_) => errno::ENOTSUPP,
            MapError::NoMemory => errno::ENOMEM,
        }
    }

    fn invalid(why: impl Into<String>) -> Self {
        MapError::Invalid(why.into())
    }
}

// === Map ===

/// An eBPF map. `Send + Sync`; share it as `Arc<Map>`.
pub struct Map {
    spec: MapSpec,
    n_cpus: usize,
    kind: Kind,
}

enum Kind {
    Array(ArrayMap),
    Hash(HashMap),
    Lru(LruMap),
    ProgArray(ProgArray),
    Lpm(LpmTrie),
    RingBuf(RingBuf),
}

impl fmt::Debug for Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map").field("spec", &self.spec).field("n_cpus", &self.n_cpus).finish_non_exhaustive()
    }
}

impl Map {
    /// Creates a map, checking `spec` as `BPF_MAP_CREATE` does. `n_cpus` is the number of
    /// CPUs per-CPU maps keep a value for (other maps ignore it but it must be at least 1).
    pub fn new(spec: MapSpec, n_cpus: usize) -> Result<Map, MapError> {
        if n_cpus == 0 || n_cpus > MAX_CPUS {
            return Err(MapError::invalid(format!("n_cpus must be 1..={MAX_CPUS}, got {n_cpus}")));
        }
        validate(&spec)?;
        let per_cpu = spec.map_type.is_per_cpu();
        let layout_cpus = if per_cpu { n_cpus } else { 1 };
        let zero_seed = spec.flags & BPF_F_ZERO_SEED != 0;
        let (key_size, value_size, max_entries) = (spec.key_size as usize, spec.value_size as usize, spec.max_entries);
        let kind = match spec.map_type {
            MapType::Array | MapType::PerCpuArray => {
                Kind::Array(ArrayMap::new(value_size, max_entries, layout_cpus, per_cpu)?)
            }
            MapType::Hash | MapType::PerCpuHash => {
                Kind::Hash(HashMap::new(value_size, max_entries, layout_cpus, per_cpu, zero_seed)?)
            }
            MapType::LruHash | MapType::LruPerCpuHash => {
                Kind::Lru(LruMap::new(value_size, max_entries, layout_cpus, per_cpu, zero_seed)?)
            }
            MapType::ProgArray => Kind::ProgArray(ProgArray::new(max_entries)?),
            MapType::LpmTrie => Kind::Lpm(LpmTrie::new(key_size, value_size, max_entries)?),
            MapType::RingBuf => Kind::RingBuf(RingBuf::new(max_entries)?),
        };
        Ok(Map { spec, n_cpus, kind })
    }

    /// The attributes the map was created with.
    pub fn spec(&self) -> &MapSpec {
        &self.spec
    }

    /// The map's type.
    pub fn map_type(&self) -> MapType {
        self.spec.map_type
    }

    /// The number of CPUs the map was created for.
    pub fn n_cpus(&self) -> usize {
        self.n_cpus
    }

    /// The length of the buffer a user-side update of a per-CPU map takes: `n_cpus` values,
    /// each `value_size` rounded up to 8 bytes. For other maps, `value_size`.
    pub fn user_value_len(&self) -> usize {
        if self.spec.map_type.is_per_cpu() {
            self.n_cpus * values::round_up8(self.spec.value_size as usize)
        } else {
            self.spec.value_size as usize
        }
    }

    // --- program side ---

    /// `bpf_map_lookup_elem` from a program: a pointer to the value of `key` (this CPU's copy
    /// for per-CPU maps), or `None` when there is no entry. The pointer is 8-byte aligned, points
    /// at `value_size` bytes inside [`Map::storage_regions`] and stays valid for the map's
    /// lifetime. For an LRU map this marks the entry as most recently used; for an LPM trie
    /// it is a longest-prefix match. Prog arrays and ring buffers have no values to point at
    /// (Linux's verifier rejects the lookup), so they return `None`, as do a key of the wrong
    /// size and a CPU out of range.
    #[inline]
    pub fn lookup_ptr(&self, key: &[u8], cpu: usize) -> Option<NonNull<u8>> {
        if key.len() != self.spec.key_size as usize {
            return None;
        }
        let cpu = if self.spec.map_type.is_per_cpu() {
            if cpu >= self.n_cpus {
                return None;
            }
            cpu
        } else {
            0
        };
        match &self.kind {
            Kind::Array(m) => m.lookup_ptr(key, cpu),
            Kind::Hash(m) => m.lookup_ptr(key, cpu),
            Kind::Lru(m) => m.lookup_ptr(key, cpu),
            Kind::Lpm(m) => m.lookup_ptr(key),
            Kind::ProgArray(_) | Kind::RingBuf(_) => None,
        }
    }

    /// `bpf_map_update_elem`. `flags` is [`BPF_ANY`], [`BPF_NOEXIST`] or [`BPF_EXIST`]; anything
    /// else is [`MapError::Invalid`] (including `BPF_F_LOCK`: duet's maps have no spin locks).
    ///
    /// For per-CPU maps, `cpu` says whose value to write: `Some(cpu)` (a program) writes that
    /// CPU's value, and a new entry starts zeroed on the other CPUs, as in Linux; `None` (the
    /// user side) takes all [`Map::n_cpus`] values back to back, each rounded up to 8 bytes
    /// ([`Map::user_value_len`]), as the `bpf` syscall does. Other maps ignore `cpu` and take
    /// exactly `value_size` bytes. A prog array takes a 4-byte program index; checking that it
    /// names a program is the caller's job.
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64, cpu: Option<usize>) -> Result<(), MapError> {
        self.check_key(key)?;
        let write = self.write_arg(value, cpu)?;
        match &self.kind {
            Kind::Array(m) => m.update(key, write, flags),
            Kind::Hash(m) => m.update(key, write, flags),
            Kind::Lru(m) => m.update(key, write, flags),
            Kind::Lpm(m) => m.update(key, write, flags),
            Kind::ProgArray(m) => m.update(key, value, flags),
            Kind::RingBuf(_) => Err(MapError::Unsupported("a ring buffer has no keys to update".into())),
        }
    }

    /// `bpf_map_delete_elem`. Arrays cannot delete ([`MapError::Invalid`], as in Linux); a
    /// missing key is [`MapError::NotFound`].
    pub fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        self.check_key(key)?;
        match &self.kind {
            Kind::Array(_) => Err(MapError::invalid("array elements cannot be deleted")),
            Kind::Hash(m) => m.delete(key),
            Kind::Lru(m) => m.delete(key),
            Kind::Lpm(m) => m.delete(key),
            Kind::ProgArray(m) => m.delete(key),
            Kind::RingBuf(_) => Err(MapError::Unsupported("a ring buffer has no keys to delete".into())),
        }
    }

    /// Every byte range a pointer from [`Map::lookup_ptr`] or [`Map::ringbuf_reserve`] can point
    /// into (at most one range per map today). The ranges are fixed for the map's lifetime, so
    /// the VM can add them to its region table once per run.
    pub fn storage_regions(&self) -> Vec<(NonNull<u8>, usize)> {
        match &self.kind {
            Kind::Array(m) => vec![m.region()],
            Kind::Hash(m) => vec![m.region()],
            Kind::Lru(m) => vec![m.region()],
            Kind::Lpm(m) => vec![m.region()],
            Kind::RingBuf(m) => vec![m.region()],
            Kind::ProgArray(_) => Vec::new(),
        }
    }

    /// The program index stored at `index` of a prog array, for the VM's `bpf_tail_call`.
    /// `None` when the slot is empty, the index is out of range or the map is no prog array.
    #[inline]
    pub fn prog_at(&self, index: u32) -> Option<u32> {
        match &self.kind {
            Kind::ProgArray(m) => m.get(index),
            _ => None,
        }
    }

    // --- user side ---

    /// A copy of the value of `key`, as the `bpf` syscall's lookup returns it: every CPU's value
    /// for per-CPU maps, the longest match for an LPM trie, the program index (4 bytes) for a
    /// prog array. Does not mark LRU entries as used (nor does the syscall).
    pub fn get(&self, key: &[u8]) -> Option<MapValue> {
        if key.len() != self.spec.key_size as usize {
            return None;
        }
        match &self.kind {
            Kind::Array(m) => m.get(key),
            Kind::Hash(m) => m.get(key),
            Kind::Lru(m) => m.get(key),
            Kind::Lpm(m) => m.get(key),
            Kind::ProgArray(m) => m.get(array::index(key)?).map(|prog| MapValue::Single(prog.to_ne_bytes().to_vec())),
            Kind::RingBuf(_) => None,
        }
    }

    /// Every entry: for arrays every index in order, as the kernel's iteration does; for prog
    /// arrays the filled slots; for hashes, LRU maps and tries, the present entries in no
    /// particular order (callers sort). A ring buffer has none.
    pub fn entries(&self) -> Vec<(Vec<u8>, MapValue)> {
        match &self.kind {
            Kind::Array(m) => m.entries(),
            Kind::Hash(m) => m.entries(),
            Kind::Lru(m) => m.entries(),
            Kind::Lpm(m) => m.entries(),
            Kind::ProgArray(m) => m.entries(),
            Kind::RingBuf(_) => Vec::new(),
        }
    }

    // --- ring buffer ---

    /// `bpf_ringbuf_reserve`: room for a `size`-byte record, or `None` when the ring lacks
    /// space (or this map is no ring buffer). The pointer is 8-byte aligned, lies inside
    /// [`Map::storage_regions`], and must be passed to [`Map::ringbuf_submit`] once.
    pub fn ringbuf_reserve(&self, size: u64) -> Option<NonNull<u8>> {
        match &self.kind {
            Kind::RingBuf(rb) => rb.reserve(size),
            _ => None,
        }
    }

    /// `bpf_ringbuf_submit` (or `bpf_ringbuf_discard` when `discard`): hands a reserved record
    /// to the consumer. Fails with [`MapError::Invalid`] if `record` is not the start of a
    /// record that is reserved and not yet submitted. (Once a record has been consumed its
    /// space is reused, so a stale pointer may then name a newer record: as in the kernel,
    /// where the verifier forbids using a record after submitting it, tracking that is the
    /// caller's job.)
    pub fn ringbuf_submit(&self, record: NonNull<u8>, discard: bool) -> Result<(), MapError> {
        match &self.kind {
            Kind::RingBuf(rb) => rb.submit(record, discard),
            _ => Err(MapError::invalid(format!("map {:?} is not a ring buffer", self.spec.name))),
        }
    }

    /// `bpf_ringbuf_output`: reserves, copies `data` and submits. [`MapError::RingFull`]
    /// (`EAGAIN`) when the ring lacks space.
    pub fn ringbuf_output(&self, data: &[u8]) -> Result<(), MapError> {
        match &self.kind {
            Kind::RingBuf(rb) => rb.output(data),
            _ => Err(MapError::invalid(format!("map {:?} is not a ring buffer", self.spec.name))),
        }
    }

    /// The consumer side: every submitted record, in reservation order, up to the first record
    /// still reserved; discarded records are skipped. Frees their space.
    pub fn ringbuf_drain(&self) -> Vec<Vec<u8>> {
        match &self.kind {
            Kind::RingBuf(rb) => rb.drain(),
            _ => Vec::new(),
        }
    }

    // --- helpers ---

    fn check_key(&self, key: &[u8]) -> Result<(), MapError> {
        if key.len() != self.spec.key_size as usize {
            return Err(MapError::invalid(format!(
                "key is {} bytes, map key_size is {}",
                key.len(),
                self.spec.key_size
            )));
        }
        Ok(())
    }

    /// Checks the value length and says which CPU's value an update writes.
    fn write_arg<'a>(&self, value: &'a [u8], cpu: Option<usize>) -> Result<Write<'a>, MapError> {
        let value_size = self.spec.value_size as usize;
        let (expected, write) = match cpu {
            Some(cpu) if self.spec.map_type.is_per_cpu() => {
                if cpu >= self.n_cpus {
                    return Err(MapError::invalid(format!("cpu {cpu} out of range (map has {} CPUs)", self.n_cpus)));
                }
                (value_size, Write::One { cpu, value })
            }
            None if self.spec.map_type.is_per_cpu() => (self.user_value_len(), Write::All(value)),
            _ => (value_size, Write::One { cpu: 0, value }),
        };
        if value.len() != expected {
            return Err(MapError::invalid(format!("value is {} bytes, expected {expected}", value.len())));
        }
        Ok(write)
    }
}

/// The kernel's first check of every update: flags other than `BPF_ANY`, `BPF_NOEXIST` and
/// `BPF_EXIST` (`BPF_F_LOCK` included: duet's values have no spin locks) are `EINVAL`.
fn check_update_flags(flags: u64) -> Result<(), MapError> {
    if flags > BPF_EXIST {
        return Err(MapError::invalid(format!("update flags {flags:#x}: only BPF_ANY, BPF_NOEXIST or BPF_EXIST")));
    }
    Ok(())
}

/// The attribute checks of `BPF_MAP_CREATE`, per type, in the kernel's order.
fn validate(spec: &MapSpec) -> Result<(), MapError> {
    let MapSpec { map_type, key_size, value_size, max_entries, flags, .. } = *spec;
    let invalid = |why: &str| Err(MapError::invalid(format!("{map_type} map: {why}")));
    let too_big = |why: &str| Err(MapError::TooBig(format!("{map_type} map: {why}")));
    if flags & BPF_F_RDONLY != 0 && flags & BPF_F_WRONLY != 0 {
        return invalid("BPF_F_RDONLY and BPF_F_WRONLY together");
    }
    if flags & BPF_F_RDONLY_PROG != 0 && flags & BPF_F_WRONLY_PROG != 0 {
        return invalid("BPF_F_RDONLY_PROG and BPF_F_WRONLY_PROG together");
    }
    let allowed = |mask: u32| flags & !mask == 0;
    match map_type {
        MapType::Array | MapType::PerCpuArray | MapType::ProgArray => {
            if map_type == MapType::ProgArray && value_size != 4 {
                return invalid("value_size must be 4 (a program index)");
            }
            let mut mask = BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK;
            if map_type == MapType::Array {
                mask |= BPF_F_MMAPABLE | BPF_F_INNER_MAP;
            }
            if max_entries == 0 {
                return invalid("max_entries must be > 0");
            }
            if key_size != 4 {
                return invalid("key_size must be 4 (a u32 index)");
            }
            if value_size == 0 {
                return invalid("value_size must be > 0");
            }
            if !allowed(mask) {
                return invalid(&format!("unsupported flags {flags:#x}"));
            }
            if map_type == MapType::PerCpuArray && values::round_up8(value_size as usize) as u64 > PCPU_MIN_UNIT_SIZE {
                return too_big(&format!("per-CPU value_size must be <= {PCPU_MIN_UNIT_SIZE}"));
            }
            if value_size as u64 > KMALLOC_MAX_SIZE {
                return too_big(&format!("value_size must be <= {KMALLOC_MAX_SIZE}"));
            }
        }
        MapType::Hash | MapType::PerCpuHash | MapType::LruHash | MapType::LruPerCpuHash => {
            let lru = matches!(map_type, MapType::LruHash | MapType::LruPerCpuHash);
            let mask = BPF_F_NO_PREALLOC | BPF_F_NO_COMMON_LRU | BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK | BPF_F_ZERO_SEED;
            if !allowed(mask) {
                return invalid(&format!("unsupported flags {flags:#x}"));
            }
            if !lru && flags & BPF_F_NO_COMMON_LRU != 0 {
                return invalid("BPF_F_NO_COMMON_LRU is for LRU maps only");
            }
            if lru && flags & BPF_F_NO_PREALLOC != 0 {
                return Err(MapError::Unsupported("LRU maps are always preallocated (BPF_F_NO_PREALLOC)".into()));
            }
            if max_entries == 0 || key_size == 0 || value_size == 0 {
                return invalid("max_entries, key_size and value_size must be > 0");
            }
            if key_size > MAX_BPF_STACK {
                return too_big(&format!("key_size must be <= {MAX_BPF_STACK}"));
            }
            if key_size as u64 + value_size as u64 >= KMALLOC_MAX_SIZE - HTAB_ELEM_SIZE {
                return too_big("key_size + value_size too large");
            }
            if map_type.is_per_cpu() && values::round_up8(value_size as usize) as u64 > PCPU_MIN_UNIT_SIZE {
                return too_big(&format!("per-CPU value_size must be <= {PCPU_MIN_UNIT_SIZE}"));
            }
        }
        MapType::LpmTrie => {
            let lpm_val_size_max = KMALLOC_MAX_SIZE - LPM_DATA_SIZE_MAX as u64 - LPM_NODE_SIZE;
            if max_entries == 0
                || flags & BPF_F_NO_PREALLOC == 0
                || !allowed(BPF_F_NO_PREALLOC | BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK)
                || !(4 + 1..=4 + LPM_DATA_SIZE_MAX).contains(&key_size)
                || value_size == 0
                || value_size as u64 > lpm_val_size_max
            {
                return invalid(
                    "needs max_entries > 0, the BPF_F_NO_PREALLOC flag, key_size 5..=260 \
                     (a u32 prefixlen and 1..=256 data bytes) and value_size > 0",
                );
            }
        }
        MapType::RingBuf => {
            if !allowed(BPF_F_NUMA_NODE) {
                return invalid(&format!("unsupported flags {flags:#x}"));
            }
            if key_size != 0 || value_size != 0 {
                return invalid(&format!("key_size and value_size must be 0, got {key_size} and {value_size}"));
            }
            if !max_entries.is_power_of_two() || !max_entries.is_multiple_of(PAGE_SIZE) {
                return invalid(&format!(
                    "the size (max_entries) must be a power of two multiple of {PAGE_SIZE} (the page size), \
                     got {max_entries}; e.g. {}",
                    max_entries.max(PAGE_SIZE).checked_next_power_of_two().unwrap_or(1 << 31)
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Map>();
    }

    #[test]
    fn map_type_numbers_and_names_round_trip() {
        for t in MapType::ALL {
            assert_eq!(MapType::from_raw(t.raw()), Some(t));
            assert_eq!(MapType::from_name(t.name()), Some(t));
        }
        assert_eq!(MapType::from_raw(4), None, "perf_event_array is not supported");
        assert_eq!(MapType::RingBuf.raw(), 27);
        assert_eq!(MapType::PerCpuArray.name(), "percpu_array");
    }

    #[test]
    fn ring_buffer_sizes_are_checked_as_the_kernel_does() {
        let spec = |size| MapSpec {
            name: "EVENTS".into(),
            map_type: MapType::RingBuf,
            key_size: 0,
            value_size: 0,
            max_entries: size,
            flags: 0,
        };
        for size in [4096, 8192, 1 << 20] {
            assert!(spec(size).validate().is_ok(), "{size}");
        }
        for size in [0, 100, 5000, 3 * 4096, 2048] {
            let err = spec(size).validate().unwrap_err().to_string();
            assert!(err.contains("power of two multiple of 4096") && err.contains(&format!("got {size}")), "{err}");
            assert_eq!(Map::new(spec(size), 1).unwrap_err().to_string(), err, "Map::new says the same");
        }
        assert!(spec(5000).validate().unwrap_err().to_string().contains("e.g. 8192"));
    }

    #[test]
    fn storage_bytes_count_keys_values_and_cpus() {
        let spec = |map_type, max_entries| MapSpec {
            name: "m".into(),
            map_type,
            key_size: 4,
            value_size: 12,
            max_entries,
            flags: 0,
        };
        assert_eq!(spec(MapType::Hash, 10).storage_bytes(4), 10 * (4 + 16));
        assert_eq!(spec(MapType::PerCpuHash, 10).storage_bytes(4), 10 * (4 + 16 * 4));
        assert_eq!(spec(MapType::Hash, u32::MAX).storage_bytes(1), u64::from(u32::MAX) * 20);
    }

    #[test]
    fn errnos_are_the_kernels() {
        let cases = [
            (MapError::NotFound, -2),
            (MapError::Full, -7),
            (MapError::TooBig(String::new()), -7),
            (MapError::RingFull, -11),
            (MapError::NoMemory, -12),
            (MapError::Exists, -17),
            (MapError::Invalid(String::new()), -22),
            (MapError::NoSpace, -28),
            (MapError::Unsupported(String::new()), -524),
        ];
        for (err, errno) in cases {
            assert_eq!(err.errno(), errno, "{err:?}");
        }
    }
}
