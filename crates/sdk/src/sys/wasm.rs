//! The Wasm backend: the `duet` import module of docs/ABI.md. Maps are named by their manifest
//! id, which `#[duet::map]` assigns and records in the `duet.maps` manifest.

use core::mem::MaybeUninit;

/// A map: its id in the manifest.
#[derive(Clone, Copy)]
pub(crate) struct Handle(pub(crate) u32);

#[link(wasm_import_module = "duet")]
unsafe extern "C" {
    #[link_name = "map_lookup"]
    fn duet_map_lookup(map: u32, key: *const u8, value_out: *mut u8) -> i32;
    #[link_name = "map_update"]
    fn duet_map_update(map: u32, key: *const u8, value: *const u8, flags: u64) -> i64;
    #[link_name = "map_delete"]
    fn duet_map_delete(map: u32, key: *const u8) -> i64;
    #[link_name = "map_add_u64"]
    fn duet_map_add_u64(map: u32, key: *const u8, offset: u32, delta: u64) -> i64;
    #[link_name = "ktime_get_ns"]
    fn duet_ktime_get_ns() -> u64;
    #[link_name = "get_prandom_u32"]
    fn duet_get_prandom_u32() -> u32;
    #[link_name = "get_smp_processor_id"]
    fn duet_get_smp_processor_id() -> u32;
    #[link_name = "trace"]
    fn duet_trace(msg: *const u8, len: u32);
    #[link_name = "ringbuf_output"]
    fn duet_ringbuf_output(map: u32, data: *const u8, len: u32, flags: u64) -> i64;
}

/// # Safety
///
/// `key` points at the map's key type, and `V` is the map's value type.
#[inline(always)]
pub(crate) unsafe fn map_get<V: Copy>(map: Handle, key: *const u8) -> Option<V> {
    let mut out = MaybeUninit::<V>::uninit();
    // SAFETY: the host writes `value_size` bytes (`size_of::<V>()`) to `out` when it returns 1.
    let found = unsafe { duet_map_lookup(map.0, key, out.as_mut_ptr().cast()) };
    // SAFETY: found, so the host initialized `out` with a value of the map's value type.
    (found == 1).then(|| unsafe { out.assume_init() })
}

/// # Safety
///
/// `key` points at the map's key type, and `V` is the map's value type.
#[inline(always)]
pub(crate) unsafe fn map_contains<V: Copy>(map: Handle, key: *const u8) -> bool {
    let mut out = MaybeUninit::<V>::uninit();
    // SAFETY: `out` has room for the value the host copies.
    unsafe { duet_map_lookup(map.0, key, out.as_mut_ptr().cast()) == 1 }
}

/// # Safety
///
/// `key` and `value` point at the map's key and value types.
#[inline(always)]
pub(crate) unsafe fn map_update(map: Handle, key: *const u8, value: *const u8, flags: u64) -> i64 {
    // SAFETY: forwarded contract; the host checks the pointers against guest memory.
    unsafe { duet_map_update(map.0, key, value, flags) }
}

/// # Safety
///
/// `key` points at the map's key type.
#[inline(always)]
pub(crate) unsafe fn map_delete(map: Handle, key: *const u8) -> i64 {
    // SAFETY: forwarded contract.
    unsafe { duet_map_delete(map.0, key) }
}

/// # Safety
///
/// `key` points at the map's key type.
#[inline(always)]
pub(crate) unsafe fn map_add_u64(map: Handle, key: *const u8, offset: usize, delta: u64) -> i64 {
    // SAFETY: forwarded contract; the host does the add atomically and checks the offset.
    unsafe { duet_map_add_u64(map.0, key, offset as u32, delta) }
}

/// # Safety
///
/// `data` points at `len` initialized bytes.
#[inline(always)]
pub(crate) unsafe fn ringbuf_output(map: Handle, data: *const u8, len: usize, flags: u64) -> i64 {
    // SAFETY: forwarded contract.
    unsafe { duet_ringbuf_output(map.0, data, len as u32, flags) }
}

#[inline(always)]
pub(crate) fn ktime_get_ns() -> u64 {
    // SAFETY: no arguments.
    unsafe { duet_ktime_get_ns() }
}

#[inline(always)]
pub(crate) fn get_prandom_u32() -> u32 {
    // SAFETY: no arguments.
    unsafe { duet_get_prandom_u32() }
}

#[inline(always)]
pub(crate) fn get_smp_processor_id() -> u32 {
    // SAFETY: no arguments.
    unsafe { duet_get_smp_processor_id() }
}

/// The `trace` import takes the UTF-8 text without the NUL the BPF side needs.
#[inline(always)]
pub(crate) fn trace(msg: &'static [u8]) {
    let text = msg.strip_suffix(b"\0").unwrap_or(msg);
    // SAFETY: `text` is readable guest memory of `text.len()` bytes.
    unsafe { duet_trace(text.as_ptr(), text.len() as u32) }
}

// === exports every module has ===

/// docs/ABI.md: the ABI version this SDK speaks.
#[unsafe(no_mangle)]
extern "C" fn duet_abi_version() -> i32 {
    1
}

/// The input buffer: grown with `memory.grow` on demand and reused between calls, so programs
/// need no allocator.
struct Buffer {
    ptr: core::cell::Cell<usize>,
    cap: core::cell::Cell<usize>,
}

// SAFETY: wasm32-unknown-unknown without the atomics feature is single-threaded.
unsafe impl Sync for Buffer {}

static BUFFER: Buffer = Buffer { ptr: core::cell::Cell::new(0), cap: core::cell::Cell::new(0) };

const WASM_PAGE: usize = 65536;

/// docs/ABI.md: a guest pointer to at least `len` writable bytes, where the host copies a
/// program's input; 0 if memory cannot grow that far.
#[unsafe(no_mangle)]
extern "C" fn duet_buffer(len: i32) -> i32 {
    let len = (len.max(1)) as usize;
    if len > BUFFER.cap.get() {
        let pages = len.div_ceil(WASM_PAGE);
        let first = core::arch::wasm32::memory_grow(0, pages);
        if first == usize::MAX {
            return 0;
        }
        BUFFER.ptr.set(first * WASM_PAGE);
        BUFFER.cap.set(pages * WASM_PAGE);
    }
    BUFFER.ptr.get() as i32
}
