//! Maps, declared once with [`#[duet::map]`](crate::map):
//!
//! ```
//! use duet::HashMap;
//!
//! #[duet::map]
//! static BLOCKED: HashMap<[u8; 4], u8> = HashMap::with_max_entries(1024, 0);
//! ```
//!
//! The attribute turns the declaration into what each target needs: a BTF map definition in
//! the `.maps` section for BPF (named after the static, as libbpf and aya do), and an entry of
//! the `duet.maps` manifest for Wasm, whose index is the map's id. `max_entries` and `flags`
//! become const generic arguments of the static's type (BTF encodes them in the type), so write
//! the type without them: `HashMap<K, V>`.
//!
//! Every operation copies keys and values (nothing hands out references into a map), so the
//! same code is sound on every target and needs no `unsafe`. Keys and values are [`Pod`]: plain
//! bytes, laid out as the kernel sees them.

#[cfg(not(target_arch = "bpf"))]
use core::marker::PhantomData;
use core::mem::size_of;

use crate::pod::Pod;
use crate::{Errno, sys};

/// Kernel map type numbers (`enum bpf_map_type`).
mod map_type {
    pub(super) const HASH: u32 = 1;
    pub(super) const ARRAY: u32 = 2;
    pub(super) const PROG_ARRAY: u32 = 3;
    pub(super) const PERF_EVENT_ARRAY: u32 = 4;
    pub(super) const PERCPU_HASH: u32 = 5;
    pub(super) const PERCPU_ARRAY: u32 = 6;
    pub(super) const LRU_HASH: u32 = 9;
    pub(super) const LRU_PERCPU_HASH: u32 = 10;
    pub(super) const LPM_TRIE: u32 = 11;
    pub(super) const SOCKMAP: u32 = 15;
    pub(super) const SOCKHASH: u32 = 18;
    pub(super) const RINGBUF: u32 = 27;
}

/// What a map declaration means to `BPF_MAP_CREATE` and to the Wasm manifest.
#[doc(hidden)]
pub trait MapInfo {
    /// The kernel map type number.
    const TYPE: u32;
    /// Key size in bytes.
    const KEY_SIZE: u32;
    /// Value size in bytes.
    const VALUE_SIZE: u32;
    /// `max_entries` (bytes for a ring buffer).
    const MAX_ENTRIES: u32;
    /// `BPF_F_*` flags.
    const FLAGS: u32;
    /// Whether only the kernel has this map type: a Wasm build of a crate declaring one is
    /// refused (`duet.kernel_only`), as for a kernel-only program.
    const KERNEL_ONLY: bool = false;
}

/// The length of the `duet.kernel_only` record of map `name_len` bytes long of type `M`: 0
/// unless the map type is kernel only.
#[doc(hidden)]
pub const fn kernel_only_map_len<M: MapInfo>(name_len: usize) -> usize {
    if M::KERNEL_ONLY { KERNEL_ONLY_MAP.len() + 1 + name_len + 1 } else { 0 }
}

const KERNEL_ONLY_MAP: &str = "map:perf_event_array";

/// The `duet.kernel_only` record of a kernel-only map: `map:<type> <name>\n` (`N` is
/// [`kernel_only_map_len`]); empty for the others.
#[doc(hidden)]
pub const fn kernel_only_map_record<M: MapInfo, const N: usize>(name: &str) -> [u8; N] {
    let mut out = [0u8; N];
    if N == 0 {
        return out;
    }
    let (kind, name) = (KERNEL_ONLY_MAP.as_bytes(), name.as_bytes());
    let mut i = 0;
    while i < kind.len() {
        out[i] = kind[i];
        i += 1;
    }
    out[i] = b' ';
    let mut j = 0;
    while j < name.len() {
        out[i + 1 + j] = name[j];
        j += 1;
    }
    out[N - 1] = b'\n';
    out
}

/// The length of a map record in the `duet.maps.v1` section of an unprocessed `.wasm` for a
/// map named with `name_len` bytes.
pub const fn map_record_len(name_len: usize) -> usize {
    RECORD_HEADER + name_len
}

const RECORD_HEADER: usize = 32;

/// One map's record for `duet build`, which turns the records of a module into the `duet.maps`
/// JSON manifest: the magic `DMAP`, then little-endian `u32`s — record length, id, type, key
/// size, value size, max_entries, flags — then the name's UTF-8 bytes. `N` must be
/// [`map_record_len`]`(name.len())`.
#[doc(hidden)]
pub const fn map_record<M: MapInfo, const N: usize>(id: u32, name: &str) -> [u8; N] {
    let mut out = [0u8; N];
    assert!(N == RECORD_HEADER + name.len(), "map record length does not match the name");
    out[0] = b'D';
    out[1] = b'M';
    out[2] = b'A';
    out[3] = b'P';
    let fields = [N as u32, id, M::TYPE, M::KEY_SIZE, M::VALUE_SIZE, M::MAX_ENTRIES, M::FLAGS];
    let mut i = 0;
    while i < fields.len() {
        let bytes = fields[i].to_le_bytes();
        let mut j = 0;
        while j < 4 {
            out[4 + i * 4 + j] = bytes[j];
            j += 1;
        }
        i += 1;
    }
    let name = name.as_bytes();
    let mut k = 0;
    while k < name.len() {
        out[RECORD_HEADER + k] = name[k];
        k += 1;
    }
    out
}

/// Defines a map type: on BPF a `#[repr(C)]` struct whose fields are exactly the BTF map
/// definition libbpf expects (`type`, `key`, `value`, `max_entries`, `map_flags`, each a
/// pointer whose pointee encodes the number); elsewhere the map's manifest id and name.
macro_rules! define_map {
    (
        $(#[$attr:meta])*
        $name:ident [$($gen:ident),*], key: $key:ty, value: $value:ty, type: $ty:expr
    ) => {
        $(#[$attr])*
        #[repr(C)]
        pub struct $name<$($gen,)* const MAX_ENTRIES: usize = 0, const FLAGS: usize = 0> {
            #[cfg(target_arch = "bpf")]
            r#type: *const [i32; $ty as usize],
            #[cfg(target_arch = "bpf")]
            key: *const $key,
            #[cfg(target_arch = "bpf")]
            value: *const $value,
            #[cfg(target_arch = "bpf")]
            max_entries: *const [i32; MAX_ENTRIES],
            #[cfg(target_arch = "bpf")]
            map_flags: *const [i32; FLAGS],
            #[cfg(not(target_arch = "bpf"))]
            id: u32,
            #[cfg(not(target_arch = "bpf"))]
            name: &'static str,
            #[cfg(not(target_arch = "bpf"))]
            _types: PhantomData<(*const $key, *const $value)>,
        }

        // SAFETY: the definition is never written; every access goes through the executor's
        // map operations, which are safe to call from any CPU (or thread).
        unsafe impl<$($gen,)* const MAX_ENTRIES: usize, const FLAGS: usize> Sync
            for $name<$($gen,)* MAX_ENTRIES, FLAGS> {}

        impl<$($gen,)* const MAX_ENTRIES: usize, const FLAGS: usize> core::fmt::Debug
            for $name<$($gen,)* MAX_ENTRIES, FLAGS>
        {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("max_entries", &MAX_ENTRIES)
                    .field("flags", &FLAGS)
                    .finish_non_exhaustive()
            }
        }

        impl<$($gen: Pod,)* const MAX_ENTRIES: usize, const FLAGS: usize> MapInfo
            for $name<$($gen,)* MAX_ENTRIES, FLAGS>
        {
            const TYPE: u32 = $ty;
            const KEY_SIZE: u32 = size_of::<$key>() as u32;
            const VALUE_SIZE: u32 = size_of::<$value>() as u32;
            const MAX_ENTRIES: u32 = MAX_ENTRIES as u32;
            const FLAGS: u32 = FLAGS as u32;
        }

        impl<$($gen: Pod,)* const MAX_ENTRIES: usize, const FLAGS: usize> $name<$($gen,)* MAX_ENTRIES, FLAGS> {
            /// Declares the map with room for `max_entries` entries and the `BPF_F_*` `flags`.
            /// Use it in a `#[duet::map]` static, which moves both numbers into the type.
            pub const fn with_max_entries(max_entries: u32, flags: u32) -> Self {
                let _ = (max_entries, flags);
                Self::__new(u32::MAX, "")
            }

            #[doc(hidden)]
            pub const fn __new(id: u32, name: &'static str) -> Self {
                #[cfg(target_arch = "bpf")]
                {
                    let _ = (id, name);
                    Self {
                        r#type: core::ptr::null(),
                        key: core::ptr::null(),
                        value: core::ptr::null(),
                        max_entries: core::ptr::null(),
                        map_flags: core::ptr::null(),
                    }
                }
                #[cfg(not(target_arch = "bpf"))]
                Self { id, name, _types: PhantomData }
            }

            #[inline(always)]
            fn handle(&self) -> sys::Handle {
                #[cfg(target_arch = "bpf")]
                return handle::<Self>(self, 0, "");
                #[cfg(not(target_arch = "bpf"))]
                return handle::<Self>(self, self.id, self.name);
            }
        }
    };
}

/// The executor's name for a map.
#[inline(always)]
#[allow(unused_variables, reason = "each target uses a different part")]
fn handle<M: MapInfo>(map: &M, id: u32, name: &'static str) -> sys::Handle {
    #[cfg(target_arch = "bpf")]
    return sys::Handle(core::ptr::from_ref(map).cast_mut().cast());
    #[cfg(target_arch = "wasm32")]
    return sys::Handle(id);
    #[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
    return sys::Handle {
        addr: core::ptr::from_ref(map) as usize,
        name,
        spec: if M::TYPE == map_type::PERF_EVENT_ARRAY {
            // Samples on the host go to a ring buffer that `duet::testing::drain_perf` reads.
            sys::host::RawSpec {
                map_type: map_type::RINGBUF,
                key_size: 0,
                value_size: 0,
                max_entries: 256 * 1024,
                flags: 0,
            }
        } else {
            sys::host::RawSpec {
                // Socket maps hold sockets, which host tests do not have: there they are a hash map
                // or an array of socket numbers (`SockHash`, `SockMap`).
                map_type: match M::TYPE {
                    map_type::SOCKHASH => map_type::HASH,
                    map_type::SOCKMAP => map_type::ARRAY,
                    other => other,
                },
                key_size: M::KEY_SIZE,
                value_size: M::VALUE_SIZE,
                max_entries: M::MAX_ENTRIES,
                flags: M::FLAGS,
            }
        },
    };
}

#[inline(always)]
fn ptr<T>(value: &T) -> *const u8 {
    core::ptr::from_ref(value).cast()
}

/// The checks `add_u64_at` makes on every target before touching the value: the `u64` must lie
/// inside the value and be 8-byte aligned (BPF atomics must be).
#[inline(always)]
fn counter_offset_ok<V>(offset: usize) -> bool {
    offset.checked_add(8).is_some_and(|end| end <= size_of::<V>()) && offset.is_multiple_of(8)
}

// === hash maps ===

macro_rules! hash_methods {
    ($name:ident) => {
        impl<K: Pod, V: Pod, const MAX_ENTRIES: usize, const FLAGS: usize> $name<K, V, MAX_ENTRIES, FLAGS> {
            /// A copy of the value of `key`, if it has one.
            #[inline(always)]
            pub fn get(&self, key: &K) -> Option<V> {
                // SAFETY: `key` is a `K` and `V` is this map's value type.
                unsafe { sys::map_get::<V>(self.handle(), ptr(key)) }
            }

            /// The value of `key`, or `V::default()` when it has none.
            #[inline(always)]
            pub fn get_or_default(&self, key: &K) -> V
            where
                V: Default,
            {
                self.get(key).unwrap_or_default()
            }

            /// Whether `key` has an entry.
            #[inline(always)]
            pub fn contains_key(&self, key: &K) -> bool {
                // SAFETY: `key` is a `K` and `V` is this map's value type.
                unsafe { sys::map_contains::<V>(self.handle(), ptr(key)) }
            }

            /// Sets the value of `key`. `flags`: [`BPF_ANY`](crate::BPF_ANY),
            /// [`BPF_NOEXIST`](crate::BPF_NOEXIST) or [`BPF_EXIST`](crate::BPF_EXIST).
            /// Fails with [`Errno::E2BIG`] when the map is full (an LRU map evicts instead).
            #[inline(always)]
            pub fn insert(&self, key: &K, value: &V, flags: u64) -> Result<(), Errno> {
                // SAFETY: `key` is a `K`, `value` a `V`.
                Errno::from_ret(unsafe { sys::map_update(self.handle(), ptr(key), ptr(value), flags) })
            }

            /// Removes the entry of `key`; [`Errno::ENOENT`] if it has none.
            #[inline(always)]
            pub fn remove(&self, key: &K) -> Result<(), Errno> {
                // SAFETY: `key` is a `K`.
                Errno::from_ret(unsafe { sys::map_delete(self.handle(), ptr(key)) })
            }

            /// Atomically adds `delta` to the `u64` at the start of `key`'s value (a counter):
            /// [`Errno::ENOENT`] if the key has no entry, [`Errno::EINVAL`] if the value is
            /// smaller than 8 bytes.
            #[inline(always)]
            pub fn add_u64(&self, key: &K, delta: u64) -> Result<(), Errno> {
                self.add_u64_at(key, 0, delta)
            }

            /// Atomically adds `delta` to the `u64` at byte `offset` of `key`'s value (use
            /// `core::mem::offset_of!`): [`Errno::ENOENT`] if the key has no entry,
            /// [`Errno::EINVAL`] unless `offset` is a multiple of 8 with `offset + 8` inside
            /// the value.
            #[inline(always)]
            pub fn add_u64_at(&self, key: &K, offset: usize, delta: u64) -> Result<(), Errno> {
                if !counter_offset_ok::<V>(offset) {
                    return Err(Errno::EINVAL);
                }
                // SAFETY: `key` is a `K`; the offset was checked above.
                Errno::from_ret(unsafe { sys::map_add_u64(self.handle(), ptr(key), offset, delta) })
            }
        }
    };
}

define_map! {
    /// A hash map (`BPF_MAP_TYPE_HASH`).
    HashMap[K, V], key: K, value: V, type: map_type::HASH
}
hash_methods!(HashMap);

define_map! {
    /// A hash map that evicts the least recently used entry when full (`BPF_MAP_TYPE_LRU_HASH`).
    LruHashMap[K, V], key: K, value: V, type: map_type::LRU_HASH
}
hash_methods!(LruHashMap);

define_map! {
    /// A hash map with one value per CPU (`BPF_MAP_TYPE_PERCPU_HASH`); the program sees its
    /// CPU's value.
    PerCpuHashMap[K, V], key: K, value: V, type: map_type::PERCPU_HASH
}
hash_methods!(PerCpuHashMap);

define_map! {
    /// An LRU hash map with one value per CPU (`BPF_MAP_TYPE_LRU_PERCPU_HASH`).
    LruPerCpuHashMap[K, V], key: K, value: V, type: map_type::LRU_PERCPU_HASH
}
hash_methods!(LruPerCpuHashMap);

// === longest-prefix match ===

/// A key of an [`LpmTrie`]: the first `prefix_len` bits of `data`, read from the top bit of
/// `data`'s first byte (network order: an IPv4 address is `[10, 0, 0, 0]`), as the kernel's
/// `struct bpf_lpm_trie_key` lays it out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct LpmKey<K> {
    /// How many leading bits of `data` count: `0..=8 * size_of::<K>()`.
    pub prefix_len: u32,
    /// The bits, most significant first.
    pub data: K,
}

impl<K: Pod> LpmKey<K> {
    /// The key for `data`'s first `prefix_len` bits (a prefix when inserting, the full length
    /// of an address when looking one up).
    #[inline(always)]
    pub const fn new(prefix_len: u32, data: K) -> Self {
        LpmKey { prefix_len, data }
    }
}

// SAFETY: `prefix_len` and a `K` with no padding between or after them: `LpmTrie` accepts only
// data whose alignment is at most 4 and whose size is a multiple of 4 (`LPM_DATA_OK`), so the
// struct is exactly its fields' bytes, and every bit pattern is valid for both.
unsafe impl<K: Pod> Pod for LpmKey<K> {}

define_map! {
    /// A longest-prefix-match trie (`BPF_MAP_TYPE_LPM_TRIE`): a lookup of an address finds the
    /// entry with the longest prefix that contains it (CIDR blocks, routing tables). The data
    /// `K` is bytes in network order with a size that is a multiple of 4 (`[u8; 4]` for IPv4,
    /// `[u8; 16]` for IPv6). The kernel requires the [`BPF_F_NO_PREALLOC`](crate::BPF_F_NO_PREALLOC)
    /// flag: `LpmTrie::with_max_entries(1024, BPF_F_NO_PREALLOC)` (a build without it fails with
    /// a message saying so).
    LpmTrie[K, V], key: LpmKey<K>, value: V, type: map_type::LPM_TRIE
}

impl<K: Pod, V: Pod, const MAX_ENTRIES: usize, const FLAGS: usize> LpmTrie<K, V, MAX_ENTRIES, FLAGS> {
    /// Whether `K` can be LPM data and the flags carry `BPF_F_NO_PREALLOC` (checked at compile
    /// time by every method).
    const LPM_DATA_OK: () = {
        assert!(
            align_of::<K>() <= 4 && size_of::<K>().is_multiple_of(4) && size_of::<K>() > 0 && size_of::<K>() <= 256,
            "LpmTrie data must be 4 to 256 bytes, a multiple of 4, aligned to at most 4 (a byte array)"
        );
        assert!(
            FLAGS & crate::BPF_F_NO_PREALLOC as usize != 0,
            "the kernel creates an LpmTrie only with BPF_F_NO_PREALLOC: LpmTrie::with_max_entries(n, BPF_F_NO_PREALLOC)"
        );
    };

    /// The value of the entry with the longest prefix that contains `key`'s first
    /// `key.prefix_len` bits, if any.
    #[inline(always)]
    pub fn get(&self, key: &LpmKey<K>) -> Option<V> {
        let () = Self::LPM_DATA_OK;
        // SAFETY: `key` is an `LpmKey<K>` and `V` is this map's value type.
        unsafe { sys::map_get::<V>(self.handle(), ptr(key)) }
    }

    /// Sets the value of the prefix `key` (`flags` as for [`HashMap::insert`]);
    /// [`Errno::EINVAL`] for a `prefix_len` longer than the data.
    #[inline(always)]
    pub fn insert(&self, key: &LpmKey<K>, value: &V, flags: u64) -> Result<(), Errno> {
        let () = Self::LPM_DATA_OK;
        // SAFETY: `key` is an `LpmKey<K>` and `value` a `V`.
        Errno::from_ret(unsafe { sys::map_update(self.handle(), ptr(key), ptr(value), flags) })
    }

    /// Removes the prefix `key` (an exact prefix, not a lookup); [`Errno::ENOENT`] if absent.
    #[inline(always)]
    pub fn remove(&self, key: &LpmKey<K>) -> Result<(), Errno> {
        let () = Self::LPM_DATA_OK;
        // SAFETY: `key` is an `LpmKey<K>`.
        Errno::from_ret(unsafe { sys::map_delete(self.handle(), ptr(key)) })
    }
}

// === arrays ===

macro_rules! array_methods {
    ($name:ident) => {
        impl<V: Pod, const MAX_ENTRIES: usize, const FLAGS: usize> $name<V, MAX_ENTRIES, FLAGS> {
            /// A copy of element `index`; `None` past the end.
            #[inline(always)]
            pub fn get(&self, index: u32) -> Option<V> {
                // SAFETY: the key of an array is a `u32`, its value a `V`.
                unsafe { sys::map_get::<V>(self.handle(), ptr(&index)) }
            }

            /// Element `index`, or `V::default()` past the end.
            #[inline(always)]
            pub fn get_or_default(&self, index: u32) -> V
            where
                V: Default,
            {
                self.get(index).unwrap_or_default()
            }

            /// Sets element `index`; [`Errno::E2BIG`] past the end.
            #[inline(always)]
            pub fn set(&self, index: u32, value: &V) -> Result<(), Errno> {
                // SAFETY: the key of an array is a `u32`, its value a `V`.
                Errno::from_ret(unsafe { sys::map_update(self.handle(), ptr(&index), ptr(value), crate::BPF_ANY) })
            }

            /// Atomically adds `delta` to the `u64` at the start of element `index`;
            /// [`Errno::ENOENT`] past the end, [`Errno::EINVAL`] if the value is smaller than 8
            /// bytes.
            #[inline(always)]
            pub fn add_u64(&self, index: u32, delta: u64) -> Result<(), Errno> {
                self.add_u64_at(index, 0, delta)
            }

            /// Atomically adds `delta` to the `u64` at byte `offset` of element `index`; errors
            /// as [`HashMap::add_u64_at`].
            #[inline(always)]
            pub fn add_u64_at(&self, index: u32, offset: usize, delta: u64) -> Result<(), Errno> {
                if !counter_offset_ok::<V>(offset) {
                    return Err(Errno::EINVAL);
                }
                // SAFETY: the key of an array is a `u32`; the offset was checked above.
                Errno::from_ret(unsafe { sys::map_add_u64(self.handle(), ptr(&index), offset, delta) })
            }
        }
    };
}

define_map! {
    /// An array of `MAX_ENTRIES` values indexed by `u32`, all present and zeroed at creation
    /// (`BPF_MAP_TYPE_ARRAY`).
    Array[V], key: u32, value: V, type: map_type::ARRAY
}
array_methods!(Array);

define_map! {
    /// An array with one value per CPU (`BPF_MAP_TYPE_PERCPU_ARRAY`): the program sees its
    /// CPU's value, so counters need no atomics; userspace sums over CPUs.
    PerCpuArray[V], key: u32, value: V, type: map_type::PERCPU_ARRAY
}
array_methods!(PerCpuArray);

// === sockets ===

define_map! {
    /// TCP sockets by key (`BPF_MAP_TYPE_SOCKHASH`). A `#[duet::sock_ops]` program files its
    /// socket with [`SockHash::insert_from_sock_ops`] (user space files one by writing its file
    /// descriptor as the value); a `#[duet::sk_msg]` program attached to the map then runs on
    /// every `sendmsg(2)` of those sockets and may hand the data straight to another socket of
    /// the map with [`SockHash::redirect_msg`], skipping the TCP/IP stack between them.
    ///
    /// On the host (`duet::testing`), where there are no sockets, the map is a hash map from
    /// key to the low 32 bits of the filed socket's cookie.
    SockHash[K], key: K, value: u32, type: map_type::SOCKHASH
}

impl<K: Pod, const MAX_ENTRIES: usize, const FLAGS: usize> SockHash<K, MAX_ENTRIES, FLAGS> {
    /// Files the socket of this sock_ops event under `key` (`bpf_sock_hash_update`); `flags`:
    /// [`BPF_ANY`](crate::BPF_ANY), [`BPF_NOEXIST`](crate::BPF_NOEXIST) or
    /// [`BPF_EXIST`](crate::BPF_EXIST). The kernel takes only established TCP sockets
    /// ([`Errno::EINVAL`] otherwise, e.g. from `TCP_CONNECT_CB`); the socket leaves the map by
    /// itself when it closes.
    #[inline(always)]
    pub fn insert_from_sock_ops(&self, ctx: &crate::SockOpsContext<'_>, key: &K, flags: u64) -> Result<(), Errno> {
        #[cfg(target_arch = "bpf")]
        // SAFETY: `ctx` is this program's sock_ops context, the handle a sockhash, `key` a `K`.
        return Errno::from_ret(unsafe { sys::sock_hash_update(ctx.raw(), self.handle(), ptr(key), flags) });
        #[cfg(target_arch = "wasm32")]
        {
            let _ = (ctx, key, flags);
            return Err(Errno::EINVAL);
        }
        #[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
        {
            let socket = ctx.cookie() as u32;
            // SAFETY: `key` is a `K`; on the host the value is a `u32`.
            Errno::from_ret(unsafe { sys::map_update(self.handle(), ptr(key), ptr(&socket), flags) })
        }
    }

    /// Sends the data of this `sendmsg(2)` to the socket filed under `key` instead
    /// (`bpf_msg_redirect_hash`): with [`BPF_F_INGRESS`](crate::sock::BPF_F_INGRESS) onto its
    /// receive queue, as if it had arrived on its connection; without, out of it. Returns
    /// whether the map has a socket under `key`; if so, the program returns
    /// [`SkMsgAction::Pass`](crate::SkMsgAction::Pass) for the redirection to happen. If not,
    /// nothing changed and `Pass` sends the data on its own connection as usual.
    #[inline(always)]
    pub fn redirect_msg(&self, msg: &crate::SkMsgContext<'_>, key: &K, flags: u64) -> bool {
        #[cfg(target_arch = "bpf")]
        // SAFETY: `msg` is this program's sk_msg context, the handle a sockhash, `key` a `K`.
        return unsafe { sys::msg_redirect_hash(msg.raw(), self.handle(), ptr(key), flags) } == 1;
        #[cfg(target_arch = "wasm32")]
        {
            let _ = (msg, key, flags);
            return false;
        }
        #[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
        {
            // SAFETY: `key` is a `K`; on the host the value is a `u32`.
            let Some(socket) = (unsafe { sys::map_get::<u32>(self.handle(), ptr(key)) }) else {
                return false;
            };
            msg.host_redirect(socket, flags);
            true
        }
    }

    /// Removes the socket filed under `key`; [`Errno::ENOENT`] if there is none.
    #[inline(always)]
    pub fn remove(&self, key: &K) -> Result<(), Errno> {
        // SAFETY: `key` is a `K`.
        Errno::from_ret(unsafe { sys::map_delete(self.handle(), ptr(key)) })
    }

    /// Host tests: files host socket number `socket` under `key`, as user space files a socket
    /// by its descriptor ([`crate::testing::file_socket`]).
    #[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
    pub(crate) fn host_file(&self, key: &K, socket: u32) -> Result<(), Errno> {
        // SAFETY: `key` is a `K`; on the host the value is a `u32`.
        Errno::from_ret(unsafe { sys::map_update(self.handle(), ptr(key), ptr(&socket), crate::BPF_ANY) })
    }
}

define_map! {
    /// TCP sockets by index `0..MAX_ENTRIES` (`BPF_MAP_TYPE_SOCKMAP`): [`SockHash`] with array
    /// slots instead of keys. On the host, an array of socket numbers (0: empty).
    SockMap[], key: u32, value: u32, type: map_type::SOCKMAP
}

impl<const MAX_ENTRIES: usize, const FLAGS: usize> SockMap<MAX_ENTRIES, FLAGS> {
    /// Files the socket of this sock_ops event in slot `index` (`bpf_sock_map_update`); as
    /// [`SockHash::insert_from_sock_ops`], [`Errno::E2BIG`] past the last slot.
    #[inline(always)]
    pub fn insert_from_sock_ops(&self, ctx: &crate::SockOpsContext<'_>, index: u32, flags: u64) -> Result<(), Errno> {
        #[cfg(target_arch = "bpf")]
        // SAFETY: `ctx` is this program's sock_ops context, the handle a sockmap, `index` a u32.
        return Errno::from_ret(unsafe { sys::sock_map_update(ctx.raw(), self.handle(), ptr(&index), flags) });
        #[cfg(target_arch = "wasm32")]
        {
            let _ = (ctx, index, flags);
            return Err(Errno::EINVAL);
        }
        #[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
        {
            let socket = ctx.cookie() as u32;
            // SAFETY: `index` is the key; on the host the value is a `u32`.
            Errno::from_ret(unsafe { sys::map_update(self.handle(), ptr(&index), ptr(&socket), flags) })
        }
    }

    /// Sends the data of this `sendmsg(2)` to the socket in slot `index` instead
    /// (`bpf_msg_redirect_map`); as [`SockHash::redirect_msg`].
    #[inline(always)]
    pub fn redirect_msg(&self, msg: &crate::SkMsgContext<'_>, index: u32, flags: u64) -> bool {
        #[cfg(target_arch = "bpf")]
        // SAFETY: `msg` is this program's sk_msg context and the handle a sockmap.
        return unsafe { sys::msg_redirect_map(msg.raw(), self.handle(), index, flags) } == 1;
        #[cfg(target_arch = "wasm32")]
        {
            let _ = (msg, index, flags);
            return false;
        }
        #[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
        {
            // SAFETY: `index` is the key; on the host the value is a `u32`.
            match unsafe { sys::map_get::<u32>(self.handle(), ptr(&index)) } {
                Some(socket) if socket != 0 => {
                    msg.host_redirect(socket, flags);
                    true
                }
                _ => false,
            }
        }
    }

    /// Chooses the listening socket in slot `index` for the packet an sk_lookup program is
    /// looking at (`bpf_sk_assign`; the socket reference the lookup takes is released again).
    /// `flags`: [`BPF_SK_LOOKUP_F_REPLACE`](crate::sock::BPF_SK_LOOKUP_F_REPLACE),
    /// [`BPF_SK_LOOKUP_F_NO_REUSEPORT`](crate::sock::BPF_SK_LOOKUP_F_NO_REUSEPORT). Fails with
    /// [`Errno::ENOENT`] when the slot is empty, and with the kernel's errno when the socket
    /// does not fit the packet (a UDP socket for a TCP SYN, an IPv6-only socket for IPv4) or
    /// another program chose a socket already. The program then returns
    /// [`SkLookupAction::Pass`](crate::SkLookupAction::Pass) to have the packet go to it.
    #[inline(always)]
    pub fn assign(&self, ctx: &crate::SkLookupContext<'_>, index: u32, flags: u64) -> Result<(), Errno> {
        #[cfg(target_arch = "bpf")]
        // SAFETY: `ctx` is this program's sk_lookup context and the handle a sockmap.
        return Errno::from_ret(unsafe { sys::sk_assign_from_map(ctx.raw(), self.handle(), index, flags) });
        #[cfg(target_arch = "wasm32")]
        {
            let _ = (ctx, index, flags);
            return Err(Errno::EINVAL);
        }
        #[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
        {
            // SAFETY: `index` is the key; on the host the value is a `u32`.
            match unsafe { sys::map_get::<u32>(self.handle(), ptr(&index)) } {
                Some(socket) if socket != 0 => {
                    ctx.host_assign(socket, flags);
                    Ok(())
                }
                _ => Err(Errno::ENOENT),
            }
        }
    }

    /// Host tests: files host socket number `socket` in slot `index`, as user space files a
    /// socket by its descriptor ([`crate::testing::file_socket_at`]).
    #[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
    pub(crate) fn host_file(&self, index: u32, socket: u32) -> Result<(), Errno> {
        // SAFETY: `index` is the key; on the host the value is a `u32`.
        Errno::from_ret(unsafe { sys::map_update(self.handle(), ptr(&index), ptr(&socket), crate::BPF_ANY) })
    }

    /// Empties slot `index`.
    #[inline(always)]
    pub fn remove(&self, index: u32) -> Result<(), Errno> {
        #[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
        // On the host the slots are an array's, which cannot lose entries: 0 is empty.
        // SAFETY: `index` is the key; the value is a `u32`.
        return Errno::from_ret(unsafe { sys::map_update(self.handle(), ptr(&index), ptr(&0u32), crate::BPF_ANY) });
        #[cfg(any(target_arch = "bpf", target_arch = "wasm32"))]
        // SAFETY: `index` is the key.
        Errno::from_ret(unsafe { sys::map_delete(self.handle(), ptr(&index)) })
    }
}

// === tail calls ===

define_map! {
    /// Programs by slot, for tail calls (`BPF_MAP_TYPE_PROG_ARRAY`): an XDP program hands its
    /// packet to the program in a slot with [`ProgramArray::tail_call`]. The slots are filled from
    /// outside: `duet run --tail-call MAP:SLOT=PROGRAM` (every engine), `duet test-run
    /// --tail-call` (the kernel), `duet::testing::set_tail_call` in unit tests.
    ProgramArray[], key: u32, value: u32, type: map_type::PROG_ARRAY
}

impl<const MAX_ENTRIES: usize, const FLAGS: usize> ProgramArray<MAX_ENTRIES, FLAGS> {
    /// Hands the packet to the XDP program in slot `index`, which decides its verdict: on BPF
    /// `bpf_tail_call`, which does not come back; in Wasm and on the host the other program runs
    /// and its verdict comes back as `Some`, which the caller must return at once:
    ///
    /// ```ignore
    /// if let Some(verdict) = BY_PROTOCOL.tail_call(&ctx, slot) {
    ///     return verdict;
    /// }
    /// // The slot is empty (or the chain of tail calls is over 33 long): carry on.
    /// ```
    ///
    /// `None` when the slot is empty or the chain is too long; the program then goes on. A program
    /// reached through a tail call sees the packet as the caller left it.
    #[inline(always)]
    #[must_use = "return the verdict: the other program decided it"]
    pub fn tail_call(&self, ctx: &crate::XdpContext<'_>, index: u32) -> Option<crate::XdpAction> {
        #[cfg(target_arch = "bpf")]
        {
            // SAFETY: `ctx` is this program's context and the handle a prog array.
            let _ = unsafe { sys::tail_call(ctx.raw(), self.handle(), index) };
            None
        }
        #[cfg(target_arch = "wasm32")]
        {
            let _ = ctx;
            let verdict = sys::tail_call(self.handle(), index);
            u32::try_from(verdict).ok().and_then(crate::XdpAction::from_raw)
        }
        #[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
        {
            let handle = self.handle();
            crate::testing::host_tail_call(handle.addr, index, ctx)
        }
    }
}

// === perf event array ===

/// A perf event array (`BPF_MAP_TYPE_PERF_EVENT_ARRAY`): records a kernel program sends to user
/// space through one perf buffer per CPU (`duet events` reads them), the older cousin of
/// [`RingBuf`]. Kernel only: a crate that declares one gets no `.wasm` (`duet build` says so).
/// `max_entries` 0 means one slot per CPU, as loaders fill in. On the host, samples go to a
/// buffer that [`crate::testing::drain_perf`] reads.
#[repr(C)]
pub struct PerfEventArray<const MAX_ENTRIES: usize = 0, const FLAGS: usize = 0> {
    #[cfg(target_arch = "bpf")]
    r#type: *const [i32; map_type::PERF_EVENT_ARRAY as usize],
    #[cfg(target_arch = "bpf")]
    key_size: *const [i32; 4],
    #[cfg(target_arch = "bpf")]
    value_size: *const [i32; 4],
    #[cfg(target_arch = "bpf")]
    max_entries: *const [i32; MAX_ENTRIES],
    #[cfg(target_arch = "bpf")]
    map_flags: *const [i32; FLAGS],
    #[cfg(not(target_arch = "bpf"))]
    id: u32,
    #[cfg(not(target_arch = "bpf"))]
    name: &'static str,
}

// SAFETY: as for the other maps: never written, accessed through the executor only.
unsafe impl<const MAX_ENTRIES: usize, const FLAGS: usize> Sync for PerfEventArray<MAX_ENTRIES, FLAGS> {}

impl<const MAX_ENTRIES: usize, const FLAGS: usize> core::fmt::Debug for PerfEventArray<MAX_ENTRIES, FLAGS> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PerfEventArray").field("max_entries", &MAX_ENTRIES).finish_non_exhaustive()
    }
}

impl<const MAX_ENTRIES: usize, const FLAGS: usize> MapInfo for PerfEventArray<MAX_ENTRIES, FLAGS> {
    const TYPE: u32 = map_type::PERF_EVENT_ARRAY;
    const KEY_SIZE: u32 = 4;
    const VALUE_SIZE: u32 = 4;
    const MAX_ENTRIES: u32 = MAX_ENTRIES as u32;
    const FLAGS: u32 = FLAGS as u32;
    const KERNEL_ONLY: bool = true;
}

/// `BPF_F_CURRENT_CPU`: the perf buffer of the CPU the program runs on.
const BPF_F_CURRENT_CPU: u64 = 0xffff_ffff;

impl<const MAX_ENTRIES: usize, const FLAGS: usize> PerfEventArray<MAX_ENTRIES, FLAGS> {
    /// Declares a perf event array with `max_entries` slots (0: one per CPU). Use it in a
    /// `#[duet::map]` static.
    pub const fn with_max_entries(max_entries: u32, flags: u32) -> Self {
        let _ = (max_entries, flags);
        Self::__new(u32::MAX, "")
    }

    #[doc(hidden)]
    pub const fn __new(id: u32, name: &'static str) -> Self {
        #[cfg(target_arch = "bpf")]
        {
            let _ = (id, name);
            Self {
                r#type: core::ptr::null(),
                key_size: core::ptr::null(),
                value_size: core::ptr::null(),
                max_entries: core::ptr::null(),
                map_flags: core::ptr::null(),
            }
        }
        #[cfg(not(target_arch = "bpf"))]
        Self { id, name }
    }

    // `output` does nothing in Wasm (the map is kernel only), so nothing uses the handle there.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    #[inline(always)]
    pub(crate) fn handle(&self) -> sys::Handle {
        #[cfg(target_arch = "bpf")]
        return handle::<Self>(self, 0, "");
        #[cfg(not(target_arch = "bpf"))]
        return handle::<Self>(self, self.id, self.name);
    }

    /// Sends `record` (its bytes) to the perf buffer of the current CPU
    /// (`bpf_perf_event_output` with `BPF_F_CURRENT_CPU`): [`Errno::ENOENT`] when user space has
    /// no buffer open for that CPU (nobody reads), [`Errno::ENOSPC`] when it is full.
    #[inline(always)]
    pub fn output<T: Pod>(&self, ctx: &crate::TracepointContext<'_>, record: &T) -> Result<(), Errno> {
        #[cfg(target_arch = "bpf")]
        // SAFETY: `ctx` is this program's context, the handle a perf event array and `record`
        // `size_of::<T>()` initialised bytes (`Pod`).
        return Errno::from_ret(unsafe {
            sys::perf_event_output(ctx.raw(), self.handle(), BPF_F_CURRENT_CPU, ptr(record), size_of::<T>())
        });
        #[cfg(target_arch = "wasm32")]
        {
            let _ = (ctx, record, BPF_F_CURRENT_CPU);
            return Err(Errno::EINVAL);
        }
        #[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
        {
            let _ = (ctx, BPF_F_CURRENT_CPU);
            // SAFETY: `record` is `size_of::<T>()` initialized bytes.
            Errno::from_ret(unsafe { sys::ringbuf_output(self.handle(), ptr(record), size_of::<T>(), 0) })
        }
    }
}

// === ring buffer ===

/// A ring buffer of records (`BPF_MAP_TYPE_RINGBUF`); `max_entries` is its size in bytes, a
/// power of two and a multiple of the page size (4096).
///
/// Its BPF definition has only `type` and `max_entries` (and `map_flags`), as libbpf expects.
#[repr(C)]
pub struct RingBuf<const MAX_ENTRIES: usize = 0, const FLAGS: usize = 0> {
    #[cfg(target_arch = "bpf")]
    r#type: *const [i32; map_type::RINGBUF as usize],
    #[cfg(target_arch = "bpf")]
    max_entries: *const [i32; MAX_ENTRIES],
    #[cfg(target_arch = "bpf")]
    map_flags: *const [i32; FLAGS],
    #[cfg(not(target_arch = "bpf"))]
    id: u32,
    #[cfg(not(target_arch = "bpf"))]
    name: &'static str,
}

// SAFETY: as for the other maps: never written, accessed through the executor only.
unsafe impl<const MAX_ENTRIES: usize, const FLAGS: usize> Sync for RingBuf<MAX_ENTRIES, FLAGS> {}

impl<const MAX_ENTRIES: usize, const FLAGS: usize> core::fmt::Debug for RingBuf<MAX_ENTRIES, FLAGS> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RingBuf").field("bytes", &MAX_ENTRIES).finish_non_exhaustive()
    }
}

impl<const MAX_ENTRIES: usize, const FLAGS: usize> MapInfo for RingBuf<MAX_ENTRIES, FLAGS> {
    const TYPE: u32 = map_type::RINGBUF;
    const KEY_SIZE: u32 = 0;
    const VALUE_SIZE: u32 = 0;
    const MAX_ENTRIES: u32 = MAX_ENTRIES as u32;
    const FLAGS: u32 = FLAGS as u32;
}

impl<const MAX_ENTRIES: usize, const FLAGS: usize> RingBuf<MAX_ENTRIES, FLAGS> {
    /// Declares a ring buffer of `bytes` bytes. Use it in a `#[duet::map]` static.
    pub const fn with_max_entries(bytes: u32, flags: u32) -> Self {
        let _ = (bytes, flags);
        Self::__new(u32::MAX, "")
    }

    /// The same as [`RingBuf::with_max_entries`].
    pub const fn with_byte_size(bytes: u32, flags: u32) -> Self {
        Self::with_max_entries(bytes, flags)
    }

    #[doc(hidden)]
    pub const fn __new(id: u32, name: &'static str) -> Self {
        #[cfg(target_arch = "bpf")]
        {
            let _ = (id, name);
            Self { r#type: core::ptr::null(), max_entries: core::ptr::null(), map_flags: core::ptr::null() }
        }
        #[cfg(not(target_arch = "bpf"))]
        Self { id, name }
    }

    #[inline(always)]
    pub(crate) fn handle(&self) -> sys::Handle {
        #[cfg(target_arch = "bpf")]
        return handle::<Self>(self, 0, "");
        #[cfg(not(target_arch = "bpf"))]
        return handle::<Self>(self, self.id, self.name);
    }

    /// Appends `record` (its bytes) to the ring buffer; [`Errno::EAGAIN`] when it is full.
    #[inline(always)]
    pub fn output<T: Pod>(&self, record: &T) -> Result<(), Errno> {
        // SAFETY: `record` is `size_of::<T>()` initialized bytes (`Pod` has no padding).
        Errno::from_ret(unsafe { sys::ringbuf_output(self.handle(), ptr(record), size_of::<T>(), 0) })
    }
}
