//! The eBPF backend: kernel helpers called by their ids, maps named by the address of their BTF
//! definition (the loader rewrites that address into the map).

use core::ffi::c_void;

/// A map: the address of its `.maps` definition. The kernel verifier (and duet's VM) see a
/// `lddw` of this symbol and substitute the map.
#[derive(Clone, Copy)]
pub(crate) struct Handle(pub(crate) *mut c_void);

/// Helper ids of the kernel ABI (`enum bpf_func_id`).
mod id {
    pub(super) const MAP_LOOKUP_ELEM: usize = 1;
    pub(super) const MAP_UPDATE_ELEM: usize = 2;
    pub(super) const MAP_DELETE_ELEM: usize = 3;
    pub(super) const KTIME_GET_NS: usize = 5;
    pub(super) const TRACE_PRINTK: usize = 6;
    pub(super) const GET_PRANDOM_U32: usize = 7;
    pub(super) const GET_SMP_PROCESSOR_ID: usize = 8;
    pub(super) const GET_CURRENT_PID_TGID: usize = 14;
    pub(super) const GET_SOCKET_COOKIE: usize = 46;
    pub(super) const SOCK_OPS_CB_FLAGS_SET: usize = 59;
    pub(super) const TAIL_CALL: usize = 12;
    pub(super) const PERF_EVENT_OUTPUT: usize = 25;
    pub(super) const CSUM_DIFF: usize = 28;
    pub(super) const XDP_ADJUST_HEAD: usize = 44;
    pub(super) const SOCK_MAP_UPDATE: usize = 53;
    pub(super) const XDP_ADJUST_TAIL: usize = 65;
    pub(super) const MSG_REDIRECT_MAP: usize = 60;
    pub(super) const SOCK_HASH_UPDATE: usize = 70;
    pub(super) const MSG_REDIRECT_HASH: usize = 71;
    pub(super) const SK_RELEASE: usize = 86;
    pub(super) const SK_ASSIGN: usize = 124;
    pub(super) const SKB_STORE_BYTES: usize = 9;
    pub(super) const L3_CSUM_REPLACE: usize = 10;
    pub(super) const L4_CSUM_REPLACE: usize = 11;
    pub(super) const REDIRECT: usize = 23;
    pub(super) const SKB_LOAD_BYTES: usize = 26;
    pub(super) const RINGBUF_OUTPUT: usize = 130;
    // duet's userspace-only helpers of HTTP programs (docs/ABI.md); the kernel never sees them.
    pub(super) const HTTP_FIELD: usize = 10000;
    pub(super) const HTTP_HEADER_GET: usize = 10001;
    pub(super) const HTTP_HEADER_SET: usize = 10002;
    pub(super) const HTTP_HEADER_ADD: usize = 10003;
    pub(super) const HTTP_HEADER_REMOVE: usize = 10004;
    pub(super) const HTTP_RESPOND: usize = 10005;
}

/// A helper is called as a function whose "address" is its id: LLVM's BPF backend turns a call
/// through such a pointer into `call <id>`, as aya and libbpf's `bpf_helper_defs.h` do.
macro_rules! helper {
    ($id:expr, fn($($arg:ty),*) -> $ret:ty) => {{
        // SAFETY: the BPF calling convention makes `call <id>` a call of helper `id`; the
        // pointer is never dereferenced as code by anything but the BPF backend.
        let f: unsafe extern "C" fn($($arg),*) -> $ret = unsafe { core::mem::transmute::<usize, _>($id) };
        f
    }};
}

#[inline(always)]
unsafe fn lookup(map: Handle, key: *const u8) -> *mut u8 {
    let f = helper!(id::MAP_LOOKUP_ELEM, fn(*mut c_void, *const c_void) -> *mut c_void);
    // SAFETY: `key` points at `key_size` initialized bytes (the caller's contract).
    unsafe { f(map.0, key.cast()) }.cast()
}

/// Copies the value of `key` out of the map.
///
/// # Safety
///
/// `key` points at the map's key type, and `V` is the map's value type.
#[inline(always)]
pub(crate) unsafe fn map_get<V: Copy>(map: Handle, key: *const u8) -> Option<V> {
    // SAFETY: forwarded contract.
    let value = unsafe { lookup(map, key) };
    if value.is_null() {
        return None;
    }
    // SAFETY: the kernel returned a pointer to this key's value (of type `V`, 8-byte aligned),
    // valid for the rest of the run.
    Some(unsafe { value.cast::<V>().read() })
}

/// Whether the map has an entry for `key`.
///
/// # Safety
///
/// `key` points at the map's key type.
#[inline(always)]
#[allow(clippy::extra_unused_type_parameters, reason = "one signature for all backends; Wasm needs V's size")]
pub(crate) unsafe fn map_contains<V: Copy>(map: Handle, key: *const u8) -> bool {
    // SAFETY: forwarded contract.
    !unsafe { lookup(map, key) }.is_null()
}

/// # Safety
///
/// `key` and `value` point at the map's key and value types.
#[inline(always)]
pub(crate) unsafe fn map_update(map: Handle, key: *const u8, value: *const u8, flags: u64) -> i64 {
    let f = helper!(id::MAP_UPDATE_ELEM, fn(*mut c_void, *const c_void, *const c_void, u64) -> i64);
    // SAFETY: forwarded contract.
    unsafe { f(map.0, key.cast(), value.cast(), flags) }
}

/// # Safety
///
/// `key` points at the map's key type.
#[inline(always)]
pub(crate) unsafe fn map_delete(map: Handle, key: *const u8) -> i64 {
    let f = helper!(id::MAP_DELETE_ELEM, fn(*mut c_void, *const c_void) -> i64);
    // SAFETY: forwarded contract.
    unsafe { f(map.0, key.cast()) }
}

/// Atomically adds `delta` to the `u64` at byte `offset` of `key`'s value: a lookup, then the
/// BPF `lock add` instruction (`BPF_ATOMIC | BPF_ADD`, no fetch), which every kernel with BPF
/// atomics and duet's VM execute atomically.
///
/// # Safety
///
/// `key` points at the map's key type; `offset + 8` is within the value and `offset` is a
/// multiple of 8.
#[inline(always)]
pub(crate) unsafe fn map_add_u64(map: Handle, key: *const u8, offset: usize, delta: u64) -> i64 {
    // SAFETY: forwarded contract.
    let value = unsafe { lookup(map, key) };
    if value.is_null() {
        return -2; // -ENOENT
    }
    // SAFETY: `value + offset` is an 8-byte aligned `u64` inside the value (the caller checked
    // the offset; map values are 8-byte aligned). The result is unused, so LLVM emits the
    // non-fetching atomic add.
    unsafe {
        core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(
            value.add(offset).cast::<u64>(),
            delta,
        )
    };
    0
}

/// # Safety
///
/// `data` points at `len` initialized bytes; `map` is a ring buffer.
#[inline(always)]
pub(crate) unsafe fn ringbuf_output(map: Handle, data: *const u8, len: usize, flags: u64) -> i64 {
    let f = helper!(id::RINGBUF_OUTPUT, fn(*mut c_void, *const c_void, u64, u64) -> i64);
    // SAFETY: forwarded contract.
    unsafe { f(map.0, data.cast(), len as u64, flags) }
}

#[inline(always)]
pub(crate) fn ktime_get_ns() -> u64 {
    let f = helper!(id::KTIME_GET_NS, fn() -> u64);
    // SAFETY: the helper takes no arguments.
    unsafe { f() }
}

#[inline(always)]
pub(crate) fn get_prandom_u32() -> u32 {
    let f = helper!(id::GET_PRANDOM_U32, fn() -> u32);
    // SAFETY: the helper takes no arguments.
    unsafe { f() }
}

#[inline(always)]
pub(crate) fn get_smp_processor_id() -> u32 {
    let f = helper!(id::GET_SMP_PROCESSOR_ID, fn() -> u32);
    // SAFETY: the helper takes no arguments.
    unsafe { f() }
}

/// `bpf_trace_printk(msg, len)`; `msg` ends with its NUL, as the kernel requires.
#[inline(always)]
pub(crate) fn trace(msg: &'static [u8]) {
    let f = helper!(id::TRACE_PRINTK, fn(*const u8, u32) -> i64);
    // SAFETY: `msg` is a readable, NUL-terminated byte string of `msg.len()` bytes.
    unsafe { f(msg.as_ptr(), msg.len() as u32) };
}

// === skb programs ===

/// `bpf_skb_load_bytes(skb, offset, to, len)`: 0, or -EFAULT with `to` zeroed.
///
/// # Safety
///
/// `skb` is the program's `__sk_buff`; `to` has room for `len` bytes.
#[inline(always)]
pub(crate) unsafe fn skb_load_bytes(skb: *mut c_void, offset: u32, to: *mut u8, len: usize) -> i64 {
    let f = helper!(id::SKB_LOAD_BYTES, fn(*mut c_void, u32, *mut u8, u32) -> i64);
    // SAFETY: forwarded contract.
    unsafe { f(skb, offset, to, len as u32) }
}

/// `bpf_skb_store_bytes(skb, offset, from, len, flags)`.
///
/// # Safety
///
/// `skb` is a TC classifier's `__sk_buff`; `from` points at `len` initialized bytes.
#[inline(always)]
pub(crate) unsafe fn skb_store_bytes(skb: *mut c_void, offset: u32, from: *const u8, len: usize, flags: u64) -> i64 {
    let f = helper!(id::SKB_STORE_BYTES, fn(*mut c_void, u32, *const u8, u32, u64) -> i64);
    // SAFETY: forwarded contract.
    unsafe { f(skb, offset, from, len as u32, flags) }
}

/// `bpf_l3_csum_replace(skb, offset, from, to, flags)`; `skb` is a TC classifier's context.
#[inline(always)]
pub(crate) fn l3_csum_replace(skb: *mut c_void, offset: u64, from: u64, to: u64, flags: u64) -> i64 {
    let f = helper!(id::L3_CSUM_REPLACE, fn(*mut c_void, u64, u64, u64, u64) -> i64);
    // SAFETY: the helper takes the context and numbers; the kernel checks the offset.
    unsafe { f(skb, offset, from, to, flags) }
}

/// `bpf_l4_csum_replace(skb, offset, from, to, flags)`; `skb` is a TC classifier's context.
#[inline(always)]
pub(crate) fn l4_csum_replace(skb: *mut c_void, offset: u64, from: u64, to: u64, flags: u64) -> i64 {
    let f = helper!(id::L4_CSUM_REPLACE, fn(*mut c_void, u64, u64, u64, u64) -> i64);
    // SAFETY: as above.
    unsafe { f(skb, offset, from, to, flags) }
}

/// `bpf_redirect(ifindex, flags)`: the action to return.
#[inline(always)]
pub(crate) fn redirect(ifindex: u32, flags: u64) -> i64 {
    let f = helper!(id::REDIRECT, fn(u32, u64) -> i64);
    // SAFETY: the helper takes numbers only.
    unsafe { f(ifindex, flags) }
}

// === socket programs ===

/// `bpf_get_socket_cookie(ctx)` of a sock_addr or sock_ops program.
#[inline(always)]
pub(crate) fn get_socket_cookie(ctx: *mut c_void) -> u64 {
    let f = helper!(id::GET_SOCKET_COOKIE, fn(*mut c_void) -> u64);
    // SAFETY: the helper takes the program's context, which the kernel checks.
    unsafe { f(ctx) }
}

/// `bpf_get_current_pid_tgid()`: the thread group id in the upper 32 bits, the thread id below.
#[inline(always)]
pub(crate) fn get_current_pid_tgid() -> u64 {
    let f = helper!(id::GET_CURRENT_PID_TGID, fn() -> u64);
    // SAFETY: the helper takes no arguments.
    unsafe { f() }
}

/// `bpf_sock_ops_cb_flags_set(ctx, flags)`: 0 or -errno.
#[inline(always)]
pub(crate) fn sock_ops_cb_flags_set(ctx: *mut c_void, flags: u32) -> i64 {
    let f = helper!(id::SOCK_OPS_CB_FLAGS_SET, fn(*mut c_void, u32) -> i64);
    // SAFETY: the helper takes the sock_ops context and a number.
    unsafe { f(ctx, flags) }
}

/// `bpf_sock_hash_update(ctx, map, key, flags)`: files the sock_ops program's socket in a
/// sockhash under `key`; 0 or -errno.
///
/// # Safety
///
/// `ctx` is the sock_ops context, `map` a sockhash and `key` points at its `key_size` bytes.
#[inline(always)]
pub(crate) unsafe fn sock_hash_update(ctx: *mut c_void, map: Handle, key: *const u8, flags: u64) -> i64 {
    let f = helper!(id::SOCK_HASH_UPDATE, fn(*mut c_void, *mut c_void, *const c_void, u64) -> i64);
    // SAFETY: the caller's contract; the kernel checks the context and the map's type.
    unsafe { f(ctx, map.0, key.cast(), flags) }
}

/// `bpf_tail_call(ctx, map, index)`: jumps to the program in slot `index` of a prog array and
/// does not come back; returns (a negative number) only when the slot is empty or the chain of
/// tail calls is too long.
///
/// # Safety
///
/// `ctx` is the program's context and `map` a prog array.
#[inline(always)]
pub(crate) unsafe fn tail_call(ctx: *mut c_void, map: Handle, index: u32) -> i64 {
    let f = helper!(id::TAIL_CALL, fn(*mut c_void, *mut c_void, u32) -> i64);
    // SAFETY: the caller's contract; the kernel checks the map's type and the index.
    unsafe { f(ctx, map.0, index) }
}

/// `bpf_perf_event_output(ctx, map, flags, data, size)`: 0 or -errno.
///
/// # Safety
///
/// `ctx` is the program's context, `map` a perf event array, `data` `size` readable bytes.
#[inline(always)]
pub(crate) unsafe fn perf_event_output(ctx: *mut c_void, map: Handle, flags: u64, data: *const u8, size: usize) -> i64 {
    let f = helper!(id::PERF_EVENT_OUTPUT, fn(*mut c_void, *mut c_void, u64, *const c_void, u64) -> i64);
    // SAFETY: the caller's contract; the kernel checks the rest.
    unsafe { f(ctx, map.0, flags, data.cast(), size as u64) }
}

/// `bpf_xdp_adjust_head(ctx, delta)`: 0 or -errno.
///
/// # Safety
///
/// `ctx` is the XDP program's context.
#[inline(always)]
pub(crate) unsafe fn xdp_adjust_head(ctx: *mut c_void, delta: i32) -> i64 {
    let f = helper!(id::XDP_ADJUST_HEAD, fn(*mut c_void, i32) -> i64);
    // SAFETY: the caller's contract; the kernel checks `delta`.
    unsafe { f(ctx, delta) }
}

/// `bpf_xdp_adjust_tail(ctx, delta)`: 0 or -errno.
///
/// # Safety
///
/// `ctx` is the XDP program's context.
#[inline(always)]
pub(crate) unsafe fn xdp_adjust_tail(ctx: *mut c_void, delta: i32) -> i64 {
    let f = helper!(id::XDP_ADJUST_TAIL, fn(*mut c_void, i32) -> i64);
    // SAFETY: the caller's contract; the kernel checks `delta`.
    unsafe { f(ctx, delta) }
}

/// `bpf_csum_diff(from, from_size, to, to_size, seed)`: the checksum difference, or -errno.
///
/// # Safety
///
/// Each pointer is null with size 0 or points at that many readable bytes.
#[inline(always)]
pub(crate) unsafe fn csum_diff(from: *const u8, from_size: u32, to: *const u8, to_size: u32, seed: u32) -> i64 {
    let f = helper!(id::CSUM_DIFF, fn(*const c_void, u32, *const c_void, u32, u32) -> i64);
    // SAFETY: the caller's contract; the kernel checks sizes (multiples of 4, at most 512).
    unsafe { f(from.cast(), from_size, to.cast(), to_size, seed) }
}

/// `bpf_sock_map_update(ctx, map, key, flags)`: files the sock_ops program's socket in a sockmap
/// slot; 0 or -errno.
///
/// # Safety
///
/// As [`sock_hash_update`], with `map` a sockmap and `key` a `u32` index.
#[inline(always)]
pub(crate) unsafe fn sock_map_update(ctx: *mut c_void, map: Handle, key: *const u8, flags: u64) -> i64 {
    let f = helper!(id::SOCK_MAP_UPDATE, fn(*mut c_void, *mut c_void, *const c_void, u64) -> i64);
    // SAFETY: the caller's contract; the kernel checks the context and the map's type.
    unsafe { f(ctx, map.0, key.cast(), flags) }
}

/// `bpf_sk_assign(ctx, sk, flags)` of an sk_lookup program, with the socket in slot `index` of a
/// sockmap (looked up, assigned, released): 0, `-ENOENT` when the slot is empty, or the
/// helper's -errno (`-EAFNOSUPPORT`, `-EPROTOTYPE`, `-ESOCKTNOSUPPORT`: the socket does not fit
/// the packet; `-EEXIST`: another program chose a socket already).
///
/// # Safety
///
/// `ctx` is the sk_lookup context and `map` a sockmap.
#[inline(always)]
pub(crate) unsafe fn sk_assign_from_map(ctx: *mut c_void, map: Handle, index: u32, flags: u64) -> i64 {
    // SAFETY: `index` is the sockmap's 4-byte key; a sockmap lookup returns a socket reference
    // or null.
    let sk = unsafe { lookup(map, core::ptr::from_ref(&index).cast()) };
    if sk.is_null() {
        return -2;
    }
    let assign = helper!(id::SK_ASSIGN, fn(*mut c_void, *mut c_void, u64) -> i64);
    let release = helper!(id::SK_RELEASE, fn(*mut c_void) -> i64);
    // SAFETY: `sk` is the non-null socket reference the lookup returned, released exactly once
    // below, after its only use (the kernel's verifier checks both).
    let ret = unsafe { assign(ctx, sk.cast(), flags) };
    // SAFETY: as above.
    unsafe { release(sk.cast()) };
    ret
}

/// `bpf_msg_redirect_map(ctx, map, index, flags)`: `SK_PASS` (1) when slot `index` holds a
/// socket, else `SK_DROP` (0).
///
/// # Safety
///
/// `ctx` is the sk_msg context and `map` a sockmap.
#[inline(always)]
pub(crate) unsafe fn msg_redirect_map(ctx: *mut c_void, map: Handle, index: u32, flags: u64) -> i64 {
    let f = helper!(id::MSG_REDIRECT_MAP, fn(*mut c_void, *mut c_void, u32, u64) -> i64);
    // SAFETY: the caller's contract; the kernel checks the context and the map's type.
    unsafe { f(ctx, map.0, index, flags) }
}

/// `bpf_msg_redirect_hash(ctx, map, key, flags)`: `SK_PASS` (1) when the sockhash has a socket
/// under `key` (the data will go there if the program returns `SK_PASS`), else `SK_DROP` (0).
///
/// # Safety
///
/// `ctx` is the sk_msg context, `map` a sockhash and `key` points at its `key_size` bytes.
#[inline(always)]
pub(crate) unsafe fn msg_redirect_hash(ctx: *mut c_void, map: Handle, key: *const u8, flags: u64) -> i64 {
    let f = helper!(id::MSG_REDIRECT_HASH, fn(*mut c_void, *mut c_void, *const c_void, u64) -> i64);
    // SAFETY: as for `sock_hash_update`.
    unsafe { f(ctx, map.0, key.cast(), flags) }
}

// === HTTP programs ===

/// A byte of stack for the pointer of an empty slice: that pointer is dangling (1), which a
/// verifier refuses as a memory argument even with a zero size.
#[repr(transparent)]
struct Spare(core::cell::UnsafeCell<[u8; 1]>);

impl Spare {
    #[inline(always)]
    fn new() -> Self {
        Spare(core::cell::UnsafeCell::new([0]))
    }

    /// `bytes`' pointer, or the spare byte's when `bytes` is empty.
    #[inline(always)]
    fn ptr(&self, bytes: &[u8]) -> *const u8 {
        if bytes.is_empty() { self.0.get().cast_const().cast() } else { bytes.as_ptr() }
    }

    /// `buf`'s pointer, or the spare byte's when `buf` is empty (the helper writes nothing then).
    #[inline(always)]
    fn ptr_mut(&self, buf: &mut [u8]) -> *mut u8 {
        if buf.is_empty() { self.0.get().cast() } else { buf.as_mut_ptr() }
    }
}

/// The context of an HTTP program: the `struct duet_http_md *` in `r1`, which every HTTP helper
/// takes as its first argument.
#[derive(Clone, Copy)]
pub(crate) struct HttpCtx<'a> {
    ctx: *mut c_void,
    _run: core::marker::PhantomData<&'a ()>,
}

impl HttpCtx<'_> {
    /// # Safety
    ///
    /// `ctx` is the program's context pointer, and the program is an HTTP program.
    #[inline(always)]
    pub(crate) unsafe fn from_raw(ctx: *mut c_void) -> Self {
        HttpCtx { ctx, _run: core::marker::PhantomData }
    }

    /// The `u32` at index `index` of `struct duet_http_md` (`index < 6`).
    #[inline(always)]
    pub(crate) fn md(&self, index: usize) -> u32 {
        // SAFETY: the context is the 24-byte `duet_http_md`, readable for the run, and the
        // callers pass constant indices below 6. Volatile keeps each read an aligned 4-byte load,
        // the only context access the verifier allows (LLVM must not merge two into one 8-byte
        // load).
        unsafe { self.ctx.cast::<u32>().add(index).read_volatile() }
    }

    #[inline(always)]
    pub(crate) fn field(&self, field: u32, buf: &mut [u8]) -> i64 {
        let f = helper!(id::HTTP_FIELD, fn(*mut c_void, u64, *mut u8, u64) -> i64);
        let spare = Spare::new();
        let len = buf.len() as u64;
        // SAFETY: the buffer is writable for `len` bytes.
        unsafe { f(self.ctx, u64::from(field), spare.ptr_mut(buf), len) }
    }

    #[inline(always)]
    pub(crate) fn header_get(&self, name: &[u8], buf: &mut [u8]) -> i64 {
        let f = helper!(id::HTTP_HEADER_GET, fn(*mut c_void, *const u8, u64, *mut u8, u64) -> i64);
        let spare = Spare::new();
        let len = buf.len() as u64;
        // SAFETY: the name is readable and the buffer writable for their lengths.
        unsafe { f(self.ctx, spare.ptr(name), name.len() as u64, spare.ptr_mut(buf), len) }
    }

    #[inline(always)]
    pub(crate) fn header_set(&self, name: &[u8], value: &[u8]) -> i64 {
        let f = helper!(id::HTTP_HEADER_SET, fn(*mut c_void, *const u8, u64, *const u8, u64) -> i64);
        let spare = Spare::new();
        // SAFETY: the name and the value are readable for their lengths.
        unsafe { f(self.ctx, spare.ptr(name), name.len() as u64, spare.ptr(value), value.len() as u64) }
    }

    #[inline(always)]
    pub(crate) fn header_add(&self, name: &[u8], value: &[u8]) -> i64 {
        let f = helper!(id::HTTP_HEADER_ADD, fn(*mut c_void, *const u8, u64, *const u8, u64) -> i64);
        let spare = Spare::new();
        // SAFETY: the name and the value are readable for their lengths.
        unsafe { f(self.ctx, spare.ptr(name), name.len() as u64, spare.ptr(value), value.len() as u64) }
    }

    #[inline(always)]
    pub(crate) fn header_remove(&self, name: &[u8]) -> i64 {
        let f = helper!(id::HTTP_HEADER_REMOVE, fn(*mut c_void, *const u8, u64) -> i64);
        let spare = Spare::new();
        // SAFETY: the name is readable for its length.
        unsafe { f(self.ctx, spare.ptr(name), name.len() as u64) }
    }

    #[inline(always)]
    pub(crate) fn respond(&self, status: u32, body: &[u8]) -> i64 {
        let f = helper!(id::HTTP_RESPOND, fn(*mut c_void, u64, *const u8, u64) -> i64);
        let spare = Spare::new();
        // SAFETY: the body is readable for its length.
        unsafe { f(self.ctx, u64::from(status), spare.ptr(body), body.len() as u64) }
    }
}
