//! Kernel tracepoints: `#[duet::tracepoint("category/name")]` programs, and typed records for the
//! TCP tracepoints a mesh watches (`sock/inet_sock_set_state`, `tcp/tcp_retransmit_skb`).
//!
//! A tracepoint fires for the whole machine (not one cgroup) inside the kernel, with a record
//! whose layout the kernel describes in `/sys/kernel/tracing/events/<category>/<name>/format`.
//! There is no packet and no userspace meaning: like the socket hooks, a crate with such a
//! program is built for BPF only (`duet build` says so), and [`crate::testing::run_tracepoint`]
//! runs it on the host over record bytes laid out as the kernel's.
//!
//! | attribute | signature | eBPF section |
//! |---|---|---|
//! | `#[duet::tracepoint("sock/inet_sock_set_state")]` | `fn(TracepointContext)` (returns 0) | `tracepoint/sock/inet_sock_set_state` |
//!
//! The kernel lets a tracepoint program read its record only, with loads aligned to their size;
//! [`TracepointContext`]'s readers check both at compile time, and the typed records read each
//! field with its own size. Addresses are in network order as the record holds them, ports in
//! host order.

use core::ffi::c_void;

/// The record of the tracepoint that fired, as a `#[duet::tracepoint]` program sees it.
#[derive(Clone, Copy)]
pub struct TracepointContext<'a> {
    ctx: *mut c_void,
    _call: core::marker::PhantomData<&'a ()>,
}

impl core::fmt::Debug for TracepointContext<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TracepointContext").finish_non_exhaustive()
    }
}

/// The kernel's bound on what a tracepoint program may read of its record (`PERF_MAX_TRACE_SIZE`);
/// the host test buffer is this long.
pub const MAX_RECORD: usize = 8192;

macro_rules! reader {
    ($(#[$doc:meta])* $name:ident, $ty:ty) => {
        $(#[$doc])*
        #[inline(always)]
        pub fn $name<const OFFSET: usize>(&self) -> $ty {
            const {
                assert!(OFFSET >= 8, "the first 8 bytes of a record are the kernel's common fields");
                assert!(OFFSET.is_multiple_of(core::mem::size_of::<$ty>()), "tracepoint reads must be aligned to their size");
                assert!(OFFSET + core::mem::size_of::<$ty>() <= MAX_RECORD, "past the largest record");
            };
            // SAFETY: `ctx` is the record of this call (or the host test buffer, at least as long as
            // the record its program was written for); the read is aligned (checked above) and
            // volatile, so it stays one load of this size, which the kernel's verifier requires.
            unsafe { self.ctx.cast::<u8>().add(OFFSET).cast::<$ty>().read_volatile() }
        }
    };
}

impl TracepointContext<'_> {
    /// The raw context, for helpers that take it (`bpf_perf_event_output`).
    #[cfg(target_arch = "bpf")]
    #[inline(always)]
    pub(crate) fn raw(&self) -> *mut c_void {
        self.ctx
    }

    reader!(
        /// The byte at `OFFSET` of the record.
        read_u8, u8
    );
    reader!(
        /// The `u16` at `OFFSET` (a multiple of 2) of the record.
        read_u16, u16
    );
    reader!(
        /// The `u32` at `OFFSET` (a multiple of 4) of the record.
        read_u32, u32
    );
    reader!(
        /// The `u64` at `OFFSET` (a multiple of 8) of the record.
        read_u64, u64
    );

    /// The `N` bytes at `OFFSET` (a multiple of 2) of the record, read as aligned 2-byte
    /// halves: an address the record keeps at an offset that is not a multiple of its size.
    #[inline(always)]
    fn halves<const OFFSET: usize, const N: usize>(&self) -> [u8; N] {
        const { assert!(OFFSET.is_multiple_of(2) && N.is_multiple_of(2) && OFFSET >= 8 && OFFSET + N <= MAX_RECORD) };
        let mut out = [0u8; N];
        let mut i = 0;
        while i < N / 2 {
            // SAFETY: as for the readers: an aligned 2-byte load inside the record.
            let half = unsafe { self.ctx.cast::<u8>().add(OFFSET + 2 * i).cast::<u16>().read_volatile() };
            let bytes = half.to_ne_bytes();
            out[2 * i] = bytes[0];
            out[2 * i + 1] = bytes[1];
            i += 1;
        }
        out
    }

    /// The record of `sock/inet_sock_set_state`. Meaningful only in a program attached there.
    #[inline(always)]
    pub fn inet_sock_set_state(&self) -> InetSockSetState {
        InetSockSetState {
            oldstate: self.read_u32::<16>() as i32,
            newstate: self.read_u32::<20>() as i32,
            sport: self.read_u16::<24>(),
            dport: self.read_u16::<26>(),
            family: self.read_u16::<28>(),
            protocol: self.read_u16::<30>(),
            saddr: self.read_u32::<32>().to_ne_bytes(),
            daddr: self.read_u32::<36>().to_ne_bytes(),
            saddr_v6: self.halves::<40, 16>(),
            daddr_v6: self.halves::<56, 16>(),
        }
    }

    /// The record of `tcp/tcp_retransmit_skb`. Meaningful only in a program attached there.
    #[inline(always)]
    pub fn tcp_retransmit_skb(&self) -> TcpRetransmitSkb {
        TcpRetransmitSkb {
            state: self.read_u32::<24>() as i32,
            sport: self.read_u16::<28>(),
            dport: self.read_u16::<30>(),
            family: self.read_u16::<32>(),
            saddr: self.halves::<34, 4>(),
            daddr: self.halves::<38, 4>(),
            saddr_v6: self.halves::<42, 16>(),
            daddr_v6: self.halves::<58, 16>(),
        }
    }
}

/// `sock/inet_sock_set_state`: a TCP (or SCTP, MPTCP) socket changed state. Fires for every
/// transition, the listener's and the request socket's included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InetSockSetState {
    /// The state before (`TCP_ESTABLISHED` 1, `TCP_SYN_SENT` 2, ... `TCP_CLOSE` 7, ...).
    pub oldstate: i32,
    /// The state after.
    pub newstate: i32,
    /// The local port.
    pub sport: u16,
    /// The remote port.
    pub dport: u16,
    /// `AF_INET` (2) or `AF_INET6` (10).
    pub family: u16,
    /// `IPPROTO_TCP` (6), ...
    pub protocol: u16,
    /// The local IPv4 address, network order.
    pub saddr: [u8; 4],
    /// The remote IPv4 address, network order.
    pub daddr: [u8; 4],
    /// The local IPv6 address (IPv4 sockets: the mapped address).
    pub saddr_v6: [u8; 16],
    /// The remote IPv6 address.
    pub daddr_v6: [u8; 16],
}

/// `tcp/tcp_retransmit_skb`: a TCP segment is retransmitted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpRetransmitSkb {
    /// The socket's state.
    pub state: i32,
    /// The local port.
    pub sport: u16,
    /// The remote port.
    pub dport: u16,
    /// `AF_INET` (2) or `AF_INET6` (10).
    pub family: u16,
    /// The local IPv4 address, network order.
    pub saddr: [u8; 4],
    /// The remote IPv4 address, network order.
    pub daddr: [u8; 4],
    /// The local IPv6 address.
    pub saddr_v6: [u8; 16],
    /// The remote IPv6 address.
    pub daddr_v6: [u8; 16],
}

#[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
impl InetSockSetState {
    /// The record's bytes as the kernel lays them out (72 bytes; the common fields and the
    /// socket address zero), for [`crate::testing::run_tracepoint`].
    pub fn to_record(&self) -> std::vec::Vec<u8> {
        let mut r = std::vec![0u8; 72];
        r[16..20].copy_from_slice(&self.oldstate.to_ne_bytes());
        r[20..24].copy_from_slice(&self.newstate.to_ne_bytes());
        r[24..26].copy_from_slice(&self.sport.to_ne_bytes());
        r[26..28].copy_from_slice(&self.dport.to_ne_bytes());
        r[28..30].copy_from_slice(&self.family.to_ne_bytes());
        r[30..32].copy_from_slice(&self.protocol.to_ne_bytes());
        r[32..36].copy_from_slice(&self.saddr);
        r[36..40].copy_from_slice(&self.daddr);
        r[40..56].copy_from_slice(&self.saddr_v6);
        r[56..72].copy_from_slice(&self.daddr_v6);
        r
    }
}

#[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
impl TcpRetransmitSkb {
    /// The record's bytes as the kernel lays them out (80 bytes; the common fields, the buffer
    /// and socket addresses and `err` zero), for [`crate::testing::run_tracepoint`].
    pub fn to_record(&self) -> std::vec::Vec<u8> {
        let mut r = std::vec![0u8; 80];
        r[24..28].copy_from_slice(&self.state.to_ne_bytes());
        r[28..30].copy_from_slice(&self.sport.to_ne_bytes());
        r[30..32].copy_from_slice(&self.dport.to_ne_bytes());
        r[32..34].copy_from_slice(&self.family.to_ne_bytes());
        r[34..38].copy_from_slice(&self.saddr);
        r[38..42].copy_from_slice(&self.daddr);
        r[42..58].copy_from_slice(&self.saddr_v6);
        r[58..74].copy_from_slice(&self.daddr_v6);
        r
    }
}

/// Runs a tracepoint program on the record the kernel passed; returns 0.
///
/// # Safety
///
/// `ctx` is the program's record pointer.
#[doc(hidden)]
#[cfg(target_arch = "bpf")]
#[inline(always)]
pub unsafe fn tracepoint_entry<R>(ctx: *mut c_void, prog: impl FnOnce(TracepointContext<'_>) -> R) -> u32 {
    let _ = prog(TracepointContext { ctx, _call: core::marker::PhantomData });
    0
}

/// A tracepoint context over a host buffer of [`MAX_RECORD`] bytes, 8-byte aligned, for
/// [`crate::testing::run_tracepoint`]: every read the readers allow stays inside it.
#[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
pub(crate) fn host_context(buffer: &mut [u64; MAX_RECORD / 8]) -> TracepointContext<'_> {
    TracepointContext { ctx: buffer.as_mut_ptr().cast(), _call: core::marker::PhantomData }
}
