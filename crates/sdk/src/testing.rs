//! Running programs in unit tests (host only).
//!
//! Programs run in-process against this thread's own maps, clock, random generator and trace
//! log (Rust runs each test on its own thread, so tests do not interfere). Maps are created on
//! first use in `duet-maps` — the same code the userspace VM and the Wasm host use — with one
//! CPU. Time and randomness are deterministic and match `duet run --deterministic`: the clock
//! starts at 1 s and advances 1 µs per read; [`set_clock`] changes both.
//!
//! HTTP programs run on an [`HttpExchange`] (a request, and for response filters the upstream's
//! response) with [`run_http_request`], [`run_http_response`] and [`run_route`]; the helpers
//! apply docs/ABI.md's rules and errno values, and the exchange keeps the header changes and the
//! local response for the test to check.
//!
//! ```
//! use duet::testing::{run_xdp, udp_frame};
//! use duet::{BPF_ANY, HashMap, XdpAction, XdpContext};
//!
//! #[duet::map]
//! static BLOCKED: HashMap<[u8; 4], u8> = HashMap::with_max_entries(1024, 0);
//!
//! #[duet::xdp]
//! fn firewall(ctx: XdpContext) -> XdpAction {
//!     match ctx.ipv4() {
//!         Some(ip) if BLOCKED.contains_key(&ip.src) => XdpAction::Drop,
//!         _ => XdpAction::Pass,
//!     }
//! }
//!
//! // In a test:
//! BLOCKED.insert(&[10, 0, 0, 1], &1, BPF_ANY).unwrap();
//! let mut frame = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1234, 53, 0);
//! assert_eq!(run_xdp(firewall, &mut frame), XdpAction::Drop);
//! ```

use std::string::String;
use std::vec::Vec;

pub(crate) mod http;

pub use http::{HttpExchange, LocalResponse, run_http_request, run_http_response, run_route};

pub use crate::sock::{HostAssigned, HostRedirect, HostSkLookup, HostSkMsg, HostSockAddr, HostSockOps};

use crate::sys::host::{CLOCK_START_NS, CLOCK_STEP_NS, RANDOM_SEED, STATE};
use crate::{CgroupSkbAction, ProbeContext, RingBuf, SkbContext, TcAction, TcContext, XdpAction, XdpContext};

/// Runs an XDP program on `packet` (which it may modify) and returns its verdict. A program
/// that changes its packet's length (`adjust_head`, `adjust_tail`) needs
/// [`run_xdp_frame`], which can hand back a longer or shorter packet: here that panics.
pub fn run_xdp(prog: impl FnOnce(XdpContext<'_>) -> XdpAction, packet: &mut [u8]) -> XdpAction {
    let (verdict, out) = xdp_in_buffer(prog, packet);
    assert!(
        out.len() == packet.len(),
        "the XDP program changed its packet's length from {} to {} bytes: run it with duet::testing::run_xdp_frame",
        packet.len(),
        out.len()
    );
    packet.copy_from_slice(&out);
    verdict
}

/// Runs an XDP program on `frame` in a buffer of the kernel's layout (headroom before it,
/// tailroom after), so that it may move its packet's bounds (`adjust_head`, `adjust_tail`) as
/// in the kernel; `frame` is then the packet as the program left it.
pub fn run_xdp_frame(prog: impl FnOnce(XdpContext<'_>) -> XdpAction, frame: &mut Vec<u8>) -> XdpAction {
    let (verdict, out) = xdp_in_buffer(prog, frame);
    *frame = out;
    verdict
}

fn xdp_in_buffer(prog: impl FnOnce(XdpContext<'_>) -> XdpAction, packet: &[u8]) -> (XdpAction, Vec<u8>) {
    use duet_helpers::xdp::Bounds;
    let start = Bounds::new(packet.len());
    let mut buffer = std::vec![0u8; start.buf_len];
    buffer[start.data..start.data_end].copy_from_slice(packet);
    let base = buffer.as_mut_ptr() as usize;
    let outer = HOST_XDP.replace(Some((base, start.buf_len)));
    let bounds = core::cell::Cell::new((base + start.data, base + start.data_end));
    let verdict = prog(crate::xdp::host_context(&bounds));
    HOST_XDP.set(outer);
    let (data, data_end) = bounds.get();
    (verdict, buffer[data - base..data_end - base].to_vec())
}

std::thread_local! {
    /// The buffer of the XDP run in progress: its address and length.
    static HOST_XDP: core::cell::Cell<Option<(usize, usize)>> = const { core::cell::Cell::new(None) };
}

/// `adjust_head` (`head`) or `adjust_tail` on the host, with the kernel's rules.
pub(crate) fn host_adjust(
    bounds: &core::cell::Cell<(usize, usize)>,
    head: bool,
    delta: i32,
) -> Result<(), crate::Errno> {
    let Some((base, buf_len)) = HOST_XDP.get() else { return Err(crate::Errno::EINVAL) };
    let (data, data_end) = bounds.get();
    let now =
        duet_helpers::xdp::Bounds { data_meta: data - base, data: data - base, data_end: data_end - base, buf_len };
    let moved = if head { now.adjust_head(i64::from(delta)) } else { now.adjust_tail(i64::from(delta)) };
    let moved = moved.ok_or(crate::Errno::EINVAL)?;
    if moved.data_end > now.data_end {
        // SAFETY: `adjust_tail` keeps the new end inside the buffer `run_xdp` allocated, which
        // lives for the run; grown bytes read as zero, as in the kernel.
        unsafe { core::ptr::write_bytes((base + now.data_end) as *mut u8, 0, moved.data_end - now.data_end) };
    }
    bounds.set((base + moved.data, base + moved.data_end));
    Ok(())
}

/// Fills slot `index` of `map` with `program` for [`crate::ProgramArray::tail_call`] on this
/// thread (as `duet run --tail-call MAP:SLOT=PROGRAM` does for the executors).
pub fn set_tail_call<const MAX_ENTRIES: usize, const FLAGS: usize>(
    map: &crate::ProgramArray<MAX_ENTRIES, FLAGS>,
    index: u32,
    program: XdpProgram,
) {
    let addr = core::ptr::from_ref(map) as usize;
    TAIL_CALLS.with_borrow_mut(|slots| slots.insert((addr, index), program));
}

/// An XDP program a prog array slot holds on the host.
type XdpProgram = fn(XdpContext<'_>) -> XdpAction;

std::thread_local! {
    /// Host prog array slots: (the map's address, slot) to program.
    static TAIL_CALLS: core::cell::RefCell<std::collections::BTreeMap<(usize, u32), XdpProgram>> =
        const { core::cell::RefCell::new(std::collections::BTreeMap::new()) };
    static TAIL_DEPTH: core::cell::Cell<u32> = const { core::cell::Cell::new(0) };
}

/// A tail call on the host: the program `set_tail_call` put in the slot, on the same packet.
pub(crate) fn host_tail_call(map_addr: usize, index: u32, ctx: &XdpContext<'_>) -> Option<XdpAction> {
    let program = TAIL_CALLS.with_borrow(|slots| slots.get(&(map_addr, index)).copied())?;
    let depth = TAIL_DEPTH.get();
    if depth >= duet_helpers::MAX_TAIL_CALLS {
        return None;
    }
    TAIL_DEPTH.set(depth + 1);
    let verdict = program(crate::xdp::host_context_again(ctx));
    TAIL_DEPTH.set(depth);
    Some(verdict)
}

/// Runs a TC classifier on the Ethernet `frame` (which it may modify) and returns its action.
/// The packet is the frame from its Ethernet header, as in the kernel.
pub fn run_classifier(prog: impl FnOnce(TcContext<'_>) -> TcAction, frame: &mut [u8]) -> TcAction {
    prog(crate::skb::host_tc_context(frame))
}

/// Runs a socket filter on the Ethernet `frame` and returns how many bytes it keeps. The packet
/// starts at the network header, as in the kernel.
pub fn run_socket_filter(prog: impl FnOnce(SkbContext<'_>) -> u32, frame: &[u8]) -> u32 {
    prog(crate::skb::host_net_context(frame))
}

/// Runs a cgroup skb program on the Ethernet `frame`. The packet starts at the network header,
/// as in the kernel.
pub fn run_cgroup_skb(prog: impl FnOnce(SkbContext<'_>) -> CgroupSkbAction, frame: &[u8]) -> CgroupSkbAction {
    prog(crate::skb::host_net_context(frame))
}

/// Runs an event program on `record`.
pub fn run_probe<R>(prog: impl FnOnce(ProbeContext<'_>) -> R, record: &[u8]) -> R {
    prog(crate::probe::host_context(record))
}

/// Runs a connect4 program on `call` (a `connect(2)`, see [`HostSockAddr::tcp`]), which it may
/// rewrite, and returns its verdict.
pub fn run_connect4(
    prog: impl FnOnce(crate::SockAddrContext<'_>) -> crate::SockAddrAction,
    call: &mut HostSockAddr,
) -> crate::SockAddrAction {
    prog(crate::sock::host_addr_context(call))
}

/// Runs a sock_ops program on `event` (see [`HostSockOps::tcp`]); the program may set its
/// callback flags.
pub fn run_sock_ops<R>(prog: impl FnOnce(crate::SockOpsContext<'_>) -> R, event: &mut HostSockOps) -> R {
    prog(crate::sock::host_ops_context(event))
}

/// Runs an sk_msg program on `msg` (see [`HostSkMsg::tcp`]); a successful
/// `SockHash::redirect_msg` is recorded in it ([`HostSkMsg::redirected`]).
pub fn run_sk_msg(
    prog: impl FnOnce(crate::SkMsgContext<'_>) -> crate::SkMsgAction,
    msg: &mut HostSkMsg,
) -> crate::SkMsgAction {
    prog(crate::sock::host_msg_context(msg))
}

/// Runs an sk_lookup program on `lookup` (see [`HostSkLookup::tcp`]); a successful
/// `SockMap::assign` is recorded in it ([`HostSkLookup::assigned`]).
pub fn run_sk_lookup(
    prog: impl FnOnce(crate::SkLookupContext<'_>) -> crate::SkLookupAction,
    lookup: &mut HostSkLookup,
) -> crate::SkLookupAction {
    prog(crate::sock::host_lookup_context(lookup))
}

/// Files host socket number `socket` under `key` in `map`, as the process at the other end of a
/// connection files its socket by file descriptor; a `SockHash::redirect_msg` that finds it
/// records `socket` in its [`HostSkMsg`]. Sockets a sock_ops program files get the low 32 bits
/// of their cookie.
pub fn file_socket<K: crate::Pod, const MAX_ENTRIES: usize, const FLAGS: usize>(
    map: &crate::SockHash<K, MAX_ENTRIES, FLAGS>,
    key: &K,
    socket: u32,
) -> Result<(), crate::Errno> {
    map.host_file(key, socket)
}

/// Files host socket number `socket` (not 0, which is an empty slot) in slot `index` of `map`,
/// as user space files a listening socket by its file descriptor; a `SockMap::assign` that
/// finds it records `socket` in its [`HostSkLookup`].
pub fn file_socket_at<const MAX_ENTRIES: usize, const FLAGS: usize>(
    map: &crate::SockMap<MAX_ENTRIES, FLAGS>,
    index: u32,
    socket: u32,
) -> Result<(), crate::Errno> {
    map.host_file(index, socket)
}

/// Runs a tracepoint program on `record`, the bytes of the record as the kernel lays them out
/// (`InetSockSetState::to_record`, ...; at most [`crate::tracepoint::MAX_RECORD`] bytes, the rest
/// reads as zeros).
pub fn run_tracepoint<R>(prog: impl FnOnce(crate::TracepointContext<'_>) -> R, record: &[u8]) -> R {
    let mut buffer = std::boxed::Box::new([0u64; crate::tracepoint::MAX_RECORD / 8]);
    let n = record.len().min(crate::tracepoint::MAX_RECORD);
    // SAFETY: `n` bytes fit in both: `record` has at least `n`, the buffer `MAX_RECORD`.
    unsafe { core::ptr::copy_nonoverlapping(record.as_ptr(), buffer.as_mut_ptr().cast::<u8>(), n) };
    prog(crate::tracepoint::host_context(&mut buffer))
}

/// Sets the clock: the next `ktime_get_ns()` returns `now_ns`, and each read advances it by
/// `step_ns` (0 freezes it).
pub fn set_clock(now_ns: u64, step_ns: u64) {
    STATE.with_borrow_mut(|state| {
        state.now_ns = now_ns;
        state.step_ns = step_ns;
    });
}

/// Seeds `get_prandom_u32()` (a xorshift64 generator; the seed must not be 0).
pub fn set_random_seed(seed: u64) {
    STATE.with_borrow_mut(|state| state.random = seed.max(1));
}

/// The lines `trace!` wrote since the last call.
pub fn take_trace() -> Vec<String> {
    STATE.with_borrow_mut(|state| std::mem::take(&mut state.log))
}

/// The records in `ring` not yet drained, oldest first; drains them.
pub fn drain<const MAX_ENTRIES: usize, const FLAGS: usize>(ring: &RingBuf<MAX_ENTRIES, FLAGS>) -> Vec<Vec<u8>> {
    crate::sys::host::map(ring.handle()).ringbuf_drain()
}

/// The samples sent to `perf` (a perf event array) not yet drained, oldest first; drains them.
/// On the host a sample is exactly the record's bytes (the kernel pads them).
pub fn drain_perf<const MAX_ENTRIES: usize, const FLAGS: usize>(
    perf: &crate::PerfEventArray<MAX_ENTRIES, FLAGS>,
) -> Vec<Vec<u8>> {
    crate::sys::host::map(perf.handle()).ringbuf_drain()
}

/// Forgets this thread's maps (they are created empty again on next use) and tail-call slots,
/// and resets the clock, the random generator and the trace log.
pub fn reset() {
    STATE.with_borrow_mut(|state| {
        state.maps.clear();
        state.now_ns = CLOCK_START_NS;
        state.step_ns = CLOCK_STEP_NS;
        state.random = RANDOM_SEED;
        state.log.clear();
    });
    TAIL_CALLS.with_borrow_mut(std::collections::BTreeMap::clear);
}

/// An Ethernet + IPv4 + UDP frame from `src:src_port` to `dst:dst_port` with `payload` zero
/// bytes (checksums left zero: programs under test rarely check them).
pub fn udp_frame(src: [u8; 4], dst: [u8; 4], src_port: u16, dst_port: u16, payload: usize) -> Vec<u8> {
    let mut l4 = Vec::with_capacity(8 + payload);
    l4.extend_from_slice(&src_port.to_be_bytes());
    l4.extend_from_slice(&dst_port.to_be_bytes());
    l4.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
    l4.extend_from_slice(&[0, 0]);
    l4.resize(8 + payload, 0);
    ipv4_frame(crate::net::IPPROTO_UDP, src, dst, &l4)
}

/// An Ethernet + IPv4 + TCP frame (flags `SYN`) from `src:src_port` to `dst:dst_port` with
/// `payload` zero bytes.
pub fn tcp_frame(src: [u8; 4], dst: [u8; 4], src_port: u16, dst_port: u16, payload: usize) -> Vec<u8> {
    let mut l4 = Vec::with_capacity(20 + payload);
    l4.extend_from_slice(&src_port.to_be_bytes());
    l4.extend_from_slice(&dst_port.to_be_bytes());
    l4.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, crate::net::TcpHdr::SYN, 0xff, 0xff, 0, 0, 0, 0]);
    l4.resize(20 + payload, 0);
    ipv4_frame(crate::net::IPPROTO_TCP, src, dst, &l4)
}

/// An Ethernet + IPv4 frame (20-byte header, no options) carrying `l4` as `protocol`.
pub fn ipv4_frame(protocol: u8, src: [u8; 4], dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(34 + l4.len());
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01]);
    frame.extend_from_slice(&crate::net::ETH_P_IP.to_be_bytes());
    frame.extend_from_slice(&[0x45, 0]);
    frame.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    frame.extend_from_slice(&[0, 1, 0x40, 0, 64, protocol, 0, 0]);
    frame.extend_from_slice(&src);
    frame.extend_from_slice(&dst);
    frame.extend_from_slice(l4);
    frame
}

/// The bytes of a `Pod` value, as an executor sees them (records, keys, values).
pub fn bytes_of<T: crate::Pod>(value: &T) -> Vec<u8> {
    // SAFETY: a `Pod` value is `size_of::<T>()` initialized bytes (it has no padding).
    unsafe { std::slice::from_raw_parts(core::ptr::from_ref(value).cast::<u8>(), size_of::<T>()) }.to_vec()
}

/// A `Pod` value from the first `size_of::<T>()` bytes of `bytes`; `None` if there are fewer.
pub fn from_bytes<T: crate::Pod>(bytes: &[u8]) -> Option<T> {
    let bytes = bytes.get(..size_of::<T>())?;
    // SAFETY: `bytes` holds `size_of::<T>()` bytes, and every bit pattern is a valid `T`.
    Some(unsafe { bytes.as_ptr().cast::<T>().read_unaligned() })
}
