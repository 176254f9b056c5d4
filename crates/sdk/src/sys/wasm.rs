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
    #[link_name = "tail_call"]
    fn duet_tail_call(map: u32, index: u32) -> i64;
    #[link_name = "xdp_adjust_head"]
    fn duet_xdp_adjust_head(delta: i32) -> i64;
    #[link_name = "xdp_adjust_tail"]
    fn duet_xdp_adjust_tail(delta: i32) -> i64;
    #[link_name = "http_field"]
    fn duet_http_field(field: u32, buf: *mut u8, buf_len: u32) -> i64;
    #[link_name = "http_header_get"]
    fn duet_http_header_get(name: *const u8, name_len: u32, buf: *mut u8, buf_len: u32) -> i64;
    #[link_name = "http_header_set"]
    fn duet_http_header_set(name: *const u8, name_len: u32, value: *const u8, value_len: u32) -> i64;
    #[link_name = "http_header_add"]
    fn duet_http_header_add(name: *const u8, name_len: u32, value: *const u8, value_len: u32) -> i64;
    #[link_name = "http_header_remove"]
    fn duet_http_header_remove(name: *const u8, name_len: u32) -> i64;
    #[link_name = "http_respond"]
    fn duet_http_respond(status: u32, body: *const u8, body_len: u32) -> i64;
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

// === HTTP programs ===

/// The context of an HTTP program: a copy of the `struct duet_http_md` the host copied to
/// `duet_buffer` (the imports need no context argument).
#[derive(Clone, Copy)]
pub(crate) struct HttpCtx<'a> {
    md: [u32; 6],
    _run: core::marker::PhantomData<&'a ()>,
}

impl HttpCtx<'_> {
    /// The context at `ctx..ctx + len`; fields the host did not pass read as 0.
    ///
    /// # Safety
    ///
    /// `ctx..ctx + len` is readable guest memory.
    #[inline(always)]
    pub(crate) unsafe fn from_wasm(ctx: i32, len: i32) -> Self {
        let mut md = [0u32; 6];
        let ptr = ctx as u32 as usize as *const u32;
        let n = (len.max(0) as usize / 4).min(md.len());
        let mut i = 0;
        while i < n {
            // SAFETY: word `i` lies inside `ctx..ctx + len` (the caller's contract).
            md[i] = unsafe { ptr.add(i).read_unaligned() };
            i += 1;
        }
        HttpCtx { md, _run: core::marker::PhantomData }
    }

    /// The `u32` at index `index` of `struct duet_http_md`; 0 past its end.
    #[inline(always)]
    pub(crate) fn md(&self, index: usize) -> u32 {
        self.md.get(index).copied().unwrap_or(0)
    }

    #[inline(always)]
    pub(crate) fn field(&self, field: u32, buf: &mut [u8]) -> i64 {
        // SAFETY: `buf` is writable guest memory of `buf.len()` bytes.
        unsafe { duet_http_field(field, buf.as_mut_ptr(), buf.len() as u32) }
    }

    #[inline(always)]
    pub(crate) fn header_get(&self, name: &[u8], buf: &mut [u8]) -> i64 {
        // SAFETY: `name` is readable and `buf` writable guest memory of their lengths.
        unsafe { duet_http_header_get(name.as_ptr(), name.len() as u32, buf.as_mut_ptr(), buf.len() as u32) }
    }

    #[inline(always)]
    pub(crate) fn header_set(&self, name: &[u8], value: &[u8]) -> i64 {
        // SAFETY: `name` and `value` are readable guest memory of their lengths.
        unsafe { duet_http_header_set(name.as_ptr(), name.len() as u32, value.as_ptr(), value.len() as u32) }
    }

    #[inline(always)]
    pub(crate) fn header_add(&self, name: &[u8], value: &[u8]) -> i64 {
        // SAFETY: `name` and `value` are readable guest memory of their lengths.
        unsafe { duet_http_header_add(name.as_ptr(), name.len() as u32, value.as_ptr(), value.len() as u32) }
    }

    #[inline(always)]
    pub(crate) fn header_remove(&self, name: &[u8]) -> i64 {
        // SAFETY: `name` is readable guest memory of its length.
        unsafe { duet_http_header_remove(name.as_ptr(), name.len() as u32) }
    }

    #[inline(always)]
    pub(crate) fn respond(&self, status: u32, body: &[u8]) -> i64 {
        // SAFETY: `body` is readable guest memory of its length.
        unsafe { duet_http_respond(status, body.as_ptr(), body.len() as u32) }
    }
}

/// `tail_call`: the host runs the XDP program in slot `index` of prog array `map` on the same
/// packet and returns its verdict (>= 0), or a negative errno when the slot is empty or the chain
/// is too long (the caller then goes on, as after a failed `bpf_tail_call`).
#[inline(always)]
pub(crate) fn tail_call(map: Handle, index: u32) -> i64 {
    // SAFETY: two numbers; the host checks both.
    unsafe { duet_tail_call(map.0, index) }
}

/// `xdp_adjust_head`: the host moves the packet's start; 0 or -EINVAL.
#[inline(always)]
pub(crate) fn xdp_adjust_head(delta: i32) -> i64 {
    // SAFETY: a number; the host checks it.
    unsafe { duet_xdp_adjust_head(delta) }
}

/// `xdp_adjust_tail`: the host moves the packet's end (zeroing grown bytes); 0 or -EINVAL.
#[inline(always)]
pub(crate) fn xdp_adjust_tail(delta: i32) -> i64 {
    // SAFETY: a number; the host checks it.
    unsafe { duet_xdp_adjust_tail(delta) }
}

// === exports every module has ===

/// docs/ABI.md: the ABI version this SDK speaks (3: `tail_call`, `xdp_adjust_head/tail`).
#[unsafe(no_mangle)]
extern "C" fn duet_abi_version() -> i32 {
    3
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
