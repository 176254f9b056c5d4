//! Kernel-only socket programs: `#[duet::connect4]` and `#[duet::connect6]` (cgroup sock_addr,
//! `connect(2)` of an IPv4 or IPv6 socket), `#[duet::sock_ops]` (TCP socket events of a cgroup), `#[duet::sk_msg]` (data sent
//! on a socket of a [`SockHash`](crate::SockHash), which may be handed straight to another
//! socket of the map) and `#[duet::sk_lookup]` (an arriving packet looking for its socket in a
//! network namespace, which may be given a listening socket of a [`SockMap`](crate::SockMap)).
//!
//! These hooks have no meaning outside the kernel: there is no packet to replay, only a socket
//! in the middle of a system call. `duet build` builds them for BPF only and says so instead of
//! producing a `.wasm` (a Wasm build of a crate with such a program is refused). On the host,
//! [`crate::testing::run_connect4`], [`crate::testing::run_sock_ops`],
//! [`crate::testing::run_sk_msg`] and [`crate::testing::run_sk_lookup`] run them on plain structs laid out as the kernel's contexts, so
//! their logic is unit-testable.
//!
//! | attribute | signature | eBPF section | kernel context |
//! |---|---|---|---|
//! | `#[duet::connect4]` | `fn(SockAddrContext) -> SockAddrAction` | `cgroup/connect4` | `struct bpf_sock_addr` |
//! | `#[duet::connect6]` | `fn(SockAddrContext) -> SockAddrAction` | `cgroup/connect6` | `struct bpf_sock_addr` |
//! | `#[duet::sock_ops]` | `fn(SockOpsContext)` (the program returns 1) | `sockops` | `struct bpf_sock_ops` |
//! | `#[duet::sk_msg]` | `fn(SkMsgContext) -> SkMsgAction` | `sk_msg` | `struct sk_msg_md` |
//! | `#[duet::sk_lookup]` | `fn(SkLookupContext) -> SkLookupAction` | `sk_lookup` | `struct bpf_sk_lookup` |
//!
//! Addresses are `[u8; 4]` (IPv4) and `[u8; 16]` (IPv6) in network order (as written,
//! `[127, 0, 0, 1]`) and ports are numbers in host order; the SDK converts from the kernel's field
//! encodings.

use core::ffi::c_void;

use crate::Errno;

/// `AF_INET`.
pub const AF_INET: u32 = 2;
/// `AF_INET6`.
pub const AF_INET6: u32 = 10;
/// `SOCK_STREAM`: a TCP socket.
pub const SOCK_STREAM: u32 = 1;
/// `SOCK_DGRAM`: a UDP socket.
pub const SOCK_DGRAM: u32 = 2;

/// What a `connect4` program decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum SockAddrAction {
    /// Refuse the `connect(2)`: it fails with `EPERM`.
    Reject = 0,
    /// Let it go on, to the destination as the program left it.
    Allow = 1,
}

/// `struct bpf_sock_addr` offsets (include/uapi/linux/bpf.h).
mod addr_field {
    pub(super) const USER_FAMILY: usize = 0;
    pub(super) const USER_IP4: usize = 4;
    pub(super) const USER_IP6: usize = 8;
    pub(super) const USER_PORT: usize = 24;
    pub(super) const TYPE: usize = 32;
    pub(super) const PROTOCOL: usize = 36;
    /// Past the kernel's struct: where the host test struct keeps what helpers return.
    #[cfg(not(target_arch = "bpf"))]
    pub(super) const HOST_COOKIE: usize = 72;
    #[cfg(not(target_arch = "bpf"))]
    pub(super) const HOST_PID_TGID: usize = 80;
}

/// `struct bpf_sock_ops` offsets.
mod ops_field {
    pub(super) const OP: usize = 0;
    pub(super) const FAMILY: usize = 20;
    pub(super) const REMOTE_IP4: usize = 24;
    pub(super) const LOCAL_IP4: usize = 28;
    pub(super) const REMOTE_PORT: usize = 64;
    pub(super) const LOCAL_PORT: usize = 68;
    pub(super) const SRTT_US: usize = 80;
    pub(super) const CB_FLAGS: usize = 84;
    pub(super) const STATE: usize = 88;
    pub(super) const ARGS: usize = 4;
    pub(super) const TOTAL_RETRANS: usize = 136;
    pub(super) const BYTES_RECEIVED: usize = 168;
    pub(super) const BYTES_ACKED: usize = 176;
    #[cfg(not(target_arch = "bpf"))]
    pub(super) const HOST_COOKIE: usize = 192;
}

/// `struct sk_msg_md` offsets.
mod msg_field {
    pub(super) const FAMILY: usize = 16;
    pub(super) const REMOTE_IP4: usize = 20;
    pub(super) const LOCAL_IP4: usize = 24;
    pub(super) const REMOTE_PORT: usize = 60;
    pub(super) const LOCAL_PORT: usize = 64;
    pub(super) const SIZE: usize = 68;
    /// Past the kernel's struct: where the host test struct records a redirection.
    #[cfg(not(target_arch = "bpf"))]
    pub(super) const HOST_REDIRECT: usize = 80;
}

/// `struct bpf_sk_lookup` offsets.
mod lookup_field {
    pub(super) const FAMILY: usize = 8;
    pub(super) const PROTOCOL: usize = 12;
    pub(super) const REMOTE_IP4: usize = 16;
    pub(super) const REMOTE_PORT: usize = 36;
    pub(super) const LOCAL_IP4: usize = 40;
    pub(super) const LOCAL_PORT: usize = 60;
    pub(super) const INGRESS_IFINDEX: usize = 64;
    /// Past the kernel's struct: where the host test struct records the chosen socket.
    #[cfg(not(target_arch = "bpf"))]
    pub(super) const HOST_ASSIGNED: usize = 72;
}

/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: u32 = 6;
/// `IPPROTO_UDP`.
pub const IPPROTO_UDP: u32 = 17;

/// The accessors of a socket's two ends, from the context fields `bpf_sock_ops` and `sk_msg_md`
/// share (`$f` names the offsets: `FAMILY`, `LOCAL_IP4`, `REMOTE_IP4`, `LOCAL_PORT`,
/// `REMOTE_PORT`); the context type has a `field(offset) -> u32` reader.
macro_rules! socket_ends {
    ($f:ident) => {
        /// The socket's address family ([`AF_INET`] for IPv4).
        #[inline(always)]
        pub fn family(&self) -> u32 {
            self.field($f::FAMILY)
        }

        /// The local address, in network order.
        #[inline(always)]
        pub fn local_ip4(&self) -> [u8; 4] {
            self.field($f::LOCAL_IP4).to_ne_bytes()
        }

        /// The remote address, in network order.
        #[inline(always)]
        pub fn remote_ip4(&self) -> [u8; 4] {
            self.field($f::REMOTE_IP4).to_ne_bytes()
        }

        /// The local port, in host order.
        #[inline(always)]
        pub fn local_port(&self) -> u16 {
            // The kernel stores `local_port` in host order.
            self.field($f::LOCAL_PORT) as u16
        }

        /// The remote port, in host order.
        #[inline(always)]
        pub fn remote_port(&self) -> u16 {
            // `remote_port` is the 32-bit network-order encoding of the port (`bpf_ntohl` of it
            // is the port).
            u32::from_be(self.field($f::REMOTE_PORT)) as u16
        }
    };
}

/// Reads the `u32` context field at `offset`.
///
/// # Safety
///
/// `ctx` points at a context with a readable, aligned `u32` at `offset`.
#[inline(always)]
unsafe fn read_u32(ctx: *mut c_void, offset: usize) -> u32 {
    // SAFETY: forwarded contract. Volatile keeps each read one aligned 4-byte load, which the
    // kernel's context rewriting needs (LLVM must not merge or narrow them).
    unsafe { ctx.cast::<u8>().add(offset).cast::<u32>().read_volatile() }
}

/// Reads the `u64` context field at `offset`.
///
/// # Safety
///
/// `ctx` points at a context with a readable, aligned `u64` at `offset`.
#[inline(always)]
unsafe fn read_u64(ctx: *mut c_void, offset: usize) -> u64 {
    // SAFETY: forwarded contract; volatile keeps it one aligned 8-byte load, as for `read_u32`.
    unsafe { ctx.cast::<u8>().add(offset).cast::<u64>().read_volatile() }
}

/// Writes the `u32` context field at `offset`.
///
/// # Safety
///
/// `ctx` points at a context with a writable, aligned `u32` at `offset`.
#[inline(always)]
unsafe fn write_u32(ctx: *mut c_void, offset: usize, value: u32) {
    // SAFETY: forwarded contract; volatile as for reads.
    unsafe { ctx.cast::<u8>().add(offset).cast::<u32>().write_volatile(value) }
}

// === connect4 ===

/// The `connect(2)` of an IPv4 socket in the cgroup, as a `#[duet::connect4]` program sees it:
/// the destination the process asked for, which the program may rewrite.
#[derive(Clone, Copy)]
pub struct SockAddrContext<'a> {
    ctx: *mut c_void,
    _call: core::marker::PhantomData<&'a mut ()>,
}

impl core::fmt::Debug for SockAddrContext<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SockAddrContext").finish_non_exhaustive()
    }
}

impl SockAddrContext<'_> {
    #[inline(always)]
    fn field(&self, offset: usize) -> u32 {
        // SAFETY: `ctx` is the `bpf_sock_addr` of this call (or the host test struct with the
        // same layout); the offsets are fields every connect4 program may read.
        unsafe { read_u32(self.ctx, offset) }
    }

    /// The address family of the destination (`user_family`): [`AF_INET`].
    #[inline(always)]
    pub fn family(&self) -> u32 {
        self.field(addr_field::USER_FAMILY)
    }

    /// The socket's type: [`SOCK_STREAM`] (TCP) or [`SOCK_DGRAM`] (UDP).
    #[inline(always)]
    pub fn sock_type(&self) -> u32 {
        self.field(addr_field::TYPE)
    }

    /// The socket's protocol (`IPPROTO_TCP` 6, `IPPROTO_UDP` 17).
    #[inline(always)]
    pub fn protocol(&self) -> u32 {
        self.field(addr_field::PROTOCOL)
    }

    /// The destination address, in network order (`[127, 0, 0, 1]`).
    #[inline(always)]
    pub fn dst_ip4(&self) -> [u8; 4] {
        self.field(addr_field::USER_IP4).to_ne_bytes()
    }

    /// The destination address of an IPv6 `connect(2)` (`#[duet::connect6]`), in network order
    /// (`::1` is `[0, .., 0, 1]`; an IPv4 address reached through an IPv6 socket is mapped,
    /// `::ffff:a.b.c.d`).
    #[inline(always)]
    pub fn dst_ip6(&self) -> [u8; 16] {
        let mut ip = [0u8; 16];
        let mut i = 0;
        while i < 4 {
            // The kernel allows 4-byte reads of `user_ip6[i]`; each holds 4 bytes of the address.
            let word = self.field(addr_field::USER_IP6 + 4 * i).to_ne_bytes();
            ip[4 * i..4 * i + 4].copy_from_slice(&word);
            i += 1;
        }
        ip
    }

    /// Sends an IPv6 connection to `ip` (network order) instead (`#[duet::connect6]`).
    #[inline(always)]
    pub fn set_dst_ip6(&self, ip: [u8; 16]) {
        let mut i = 0;
        while i < 4 {
            let word = u32::from_ne_bytes([ip[4 * i], ip[4 * i + 1], ip[4 * i + 2], ip[4 * i + 3]]);
            // SAFETY: `user_ip6` is writable in connect6 programs (4-byte stores).
            unsafe { write_u32(self.ctx, addr_field::USER_IP6 + 4 * i, word) };
            i += 1;
        }
    }

    /// The destination port, in host order.
    #[inline(always)]
    pub fn dst_port(&self) -> u16 {
        // `user_port` holds the port in network order in its first two bytes.
        u16::from_be(self.field(addr_field::USER_PORT) as u16)
    }

    /// Sends the connection to `ip` instead (network order).
    #[inline(always)]
    pub fn set_dst_ip4(&self, ip: [u8; 4]) {
        // SAFETY: `user_ip4` is writable in connect4 programs (4-byte stores).
        unsafe { write_u32(self.ctx, addr_field::USER_IP4, u32::from_ne_bytes(ip)) }
    }

    /// Sends the connection to `port` (host order) instead.
    #[inline(always)]
    pub fn set_dst_port(&self, port: u16) {
        // SAFETY: `user_port` is writable in connect4 programs (4-byte stores).
        unsafe { write_u32(self.ctx, addr_field::USER_PORT, u32::from(port.to_be())) }
    }

    /// The socket's cookie (`bpf_get_socket_cookie`): a number the kernel gives the socket for
    /// its lifetime, the same a `#[duet::sock_ops]` program sees for it.
    #[inline(always)]
    pub fn cookie(&self) -> u64 {
        #[cfg(target_arch = "bpf")]
        return crate::sys::get_socket_cookie(self.ctx);
        #[cfg(not(target_arch = "bpf"))]
        // SAFETY: outside BPF the context is the host test struct, which has the field.
        return unsafe { self.ctx.cast::<u8>().add(addr_field::HOST_COOKIE).cast::<u64>().read() };
    }

    /// The calling process's id (the thread group id, `bpf_get_current_pid_tgid() >> 32`) as
    /// the initial PID namespace numbers it.
    #[inline(always)]
    pub fn process_id(&self) -> u32 {
        #[cfg(target_arch = "bpf")]
        return (crate::sys::get_current_pid_tgid() >> 32) as u32;
        #[cfg(not(target_arch = "bpf"))]
        // SAFETY: as for `cookie`.
        return (unsafe { self.ctx.cast::<u8>().add(addr_field::HOST_PID_TGID).cast::<u64>().read() } >> 32) as u32;
    }
}

// === sock_ops ===

/// `BPF_SOCK_OPS_*` operations a `#[duet::sock_ops]` program is called for
/// ([`SockOpsContext::op`]).
pub mod op {
    /// An active (client) connection is about to send its SYN; its local port is known.
    pub const TCP_CONNECT_CB: u32 = 3;
    /// An active connection was established.
    pub const ACTIVE_ESTABLISHED_CB: u32 = 4;
    /// A passive (server) connection was established.
    pub const PASSIVE_ESTABLISHED_CB: u32 = 5;
    /// A retransmission timer fired (with [`super::cb_flags::RTO`]).
    pub const RTO_CB: u32 = 8;
    /// A segment was retransmitted (with [`super::cb_flags::RETRANS`]).
    pub const RETRANS_CB: u32 = 9;
    /// The TCP state changed (with [`super::cb_flags::STATE`]).
    pub const STATE_CB: u32 = 10;
    /// An RTT sample was taken (with [`super::cb_flags::RTT`]).
    pub const RTT_CB: u32 = 12;
}

/// TCP states (`BPF_TCP_*`), as [`SockOpsContext::state`] and the arguments of
/// [`op::STATE_CB`] give them.
pub mod tcp_state {
    /// `BPF_TCP_ESTABLISHED`.
    pub const ESTABLISHED: u32 = 1;
    /// `BPF_TCP_CLOSE`: the socket is done (every TCP socket ends here, also after `TIME_WAIT`
    /// was entered).
    pub const CLOSE: u32 = 7;
}

/// `BPF_SOCK_OPS_*_CB_FLAG`s for [`SockOpsContext::set_callback_flags`]: which further callbacks
/// the socket gets.
pub mod cb_flags {
    /// [`super::op::RTO_CB`].
    pub const RTO: u32 = 1 << 0;
    /// [`super::op::RETRANS_CB`].
    pub const RETRANS: u32 = 1 << 1;
    /// [`super::op::STATE_CB`].
    pub const STATE: u32 = 1 << 2;
    /// [`super::op::RTT_CB`].
    pub const RTT: u32 = 1 << 3;
}

/// A TCP socket event of the cgroup, as a `#[duet::sock_ops]` program sees it.
#[derive(Clone, Copy)]
pub struct SockOpsContext<'a> {
    ctx: *mut c_void,
    _call: core::marker::PhantomData<&'a mut ()>,
}

impl core::fmt::Debug for SockOpsContext<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SockOpsContext").field("op", &self.op()).finish_non_exhaustive()
    }
}

impl SockOpsContext<'_> {
    #[inline(always)]
    fn field(&self, offset: usize) -> u32 {
        // SAFETY: `ctx` is the `bpf_sock_ops` of this call (or the host test struct with the
        // same layout); the offsets are fields every sock_ops program may read.
        unsafe { read_u32(self.ctx, offset) }
    }

    /// The event: one of [`op`].
    #[inline(always)]
    pub fn op(&self) -> u32 {
        self.field(ops_field::OP)
    }

    socket_ends!(ops_field);

    /// The smoothed RTT in microseconds, times 8 (`srtt_us`); 0 before a sample.
    #[inline(always)]
    pub fn srtt_us(&self) -> u32 {
        self.field(ops_field::SRTT_US)
    }

    /// The TCP state (`TCP_ESTABLISHED` 1, ...).
    #[inline(always)]
    pub fn state(&self) -> u32 {
        self.field(ops_field::STATE)
    }

    /// Argument `I` (0..=3) of the callback: for [`op::STATE_CB`], 0 is the old state and 1 the
    /// new one ([`tcp_state`]).
    #[inline(always)]
    pub fn arg<const I: usize>(&self) -> u32 {
        const { assert!(I < 4, "sock_ops callbacks have four arguments") };
        self.field(ops_field::ARGS + 4 * I)
    }

    /// Segments retransmitted on this connection so far (`total_retrans`).
    #[inline(always)]
    pub fn total_retrans(&self) -> u32 {
        self.field(ops_field::TOTAL_RETRANS)
    }

    /// Bytes received on this connection so far (`bytes_received`; 0 on a request socket).
    #[inline(always)]
    pub fn bytes_received(&self) -> u64 {
        // SAFETY: as for `field`: an aligned `u64` field of `bpf_sock_ops`.
        unsafe { read_u64(self.ctx, ops_field::BYTES_RECEIVED) }
    }

    /// Bytes sent and acknowledged by the peer so far (`bytes_acked`).
    #[inline(always)]
    pub fn bytes_acked(&self) -> u64 {
        // SAFETY: as for `field`.
        unsafe { read_u64(self.ctx, ops_field::BYTES_ACKED) }
    }

    /// The callback flags set on the socket.
    #[inline(always)]
    pub fn callback_flags(&self) -> u32 {
        self.field(ops_field::CB_FLAGS)
    }

    /// Asks for further callbacks on this socket ([`cb_flags`]): `bpf_sock_ops_cb_flags_set`.
    /// [`Errno::EINVAL`] for a socket that is not a full TCP socket or for unknown flags.
    #[inline(always)]
    pub fn set_callback_flags(&self, flags: u32) -> Result<(), Errno> {
        #[cfg(target_arch = "bpf")]
        return Errno::from_ret(crate::sys::sock_ops_cb_flags_set(self.ctx, flags));
        #[cfg(not(target_arch = "bpf"))]
        {
            if flags & !0x7f != 0 {
                return Err(Errno::EINVAL);
            }
            // SAFETY: outside BPF the context is the host test struct, writable for the run.
            unsafe { write_u32(self.ctx, ops_field::CB_FLAGS, flags) };
            Ok(())
        }
    }

    /// The socket's cookie (`bpf_get_socket_cookie`), the one its `connect4` program saw.
    #[inline(always)]
    pub fn cookie(&self) -> u64 {
        #[cfg(target_arch = "bpf")]
        return crate::sys::get_socket_cookie(self.ctx);
        #[cfg(not(target_arch = "bpf"))]
        // SAFETY: outside BPF the context is the host test struct, which has the field.
        return unsafe { self.ctx.cast::<u8>().add(ops_field::HOST_COOKIE).cast::<u64>().read() };
    }
}

impl SockOpsContext<'_> {
    /// The raw context, for helpers that take it (`bpf_sock_hash_update`).
    #[cfg(target_arch = "bpf")]
    #[inline(always)]
    pub(crate) fn raw(&self) -> *mut c_void {
        self.ctx
    }
}

// === sk_msg ===

/// What an `sk_msg` program decides for the data being sent (`SK_DROP`, `SK_PASS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum SkMsgAction {
    /// Drop the data: the `sendmsg(2)` fails with `EACCES`.
    Drop = 0,
    /// Send it: to the socket a successful [`SockHash::redirect_msg`](crate::SockHash::redirect_msg)
    /// chose, or on its own connection as usual.
    Pass = 1,
}

/// `BPF_F_INGRESS`: [`SockHash::redirect_msg`](crate::SockHash::redirect_msg) puts the data on
/// the receive queue of the chosen socket (as if it had arrived on that socket's connection)
/// rather than sending it out of that socket.
pub const BPF_F_INGRESS: u64 = 1;

/// Data being sent on a TCP socket of a [`SockHash`](crate::SockHash) the program is attached
/// to, as a `#[duet::sk_msg]` program sees it.
#[derive(Clone, Copy)]
pub struct SkMsgContext<'a> {
    ctx: *mut c_void,
    _call: core::marker::PhantomData<&'a mut ()>,
}

impl core::fmt::Debug for SkMsgContext<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SkMsgContext").field("size", &self.size()).finish_non_exhaustive()
    }
}

impl SkMsgContext<'_> {
    #[inline(always)]
    fn field(&self, offset: usize) -> u32 {
        // SAFETY: `ctx` is the `sk_msg_md` of this call (or the host test struct with the same
        // layout); the offsets are fields every sk_msg program may read.
        unsafe { read_u32(self.ctx, offset) }
    }

    socket_ends!(msg_field);

    /// How many bytes this `sendmsg(2)` sends.
    #[inline(always)]
    pub fn size(&self) -> u32 {
        self.field(msg_field::SIZE)
    }

    /// The raw context, for helpers that take it (`bpf_msg_redirect_hash`).
    #[cfg(target_arch = "bpf")]
    #[inline(always)]
    pub(crate) fn raw(&self) -> *mut c_void {
        self.ctx
    }

    /// Host tests: records that the data goes to the socket `target` with `flags` (what
    /// `bpf_msg_redirect_hash` sets in the kernel).
    #[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
    pub(crate) fn host_redirect(&self, target: u32, flags: u64) {
        // SAFETY: outside BPF the context is the host test struct, writable for the run; the
        // offset is its `redirect` field (checked below).
        unsafe {
            self.ctx.cast::<u8>().add(msg_field::HOST_REDIRECT).cast::<HostRedirect>().write(HostRedirect {
                target,
                redirected: 1,
                flags,
            });
        }
    }
}

// === sk_lookup ===

/// What an `sk_lookup` program decides for the arriving packet (`SK_DROP`, `SK_PASS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum SkLookupAction {
    /// Drop it: a TCP SYN is answered with a reset, as if nothing listened.
    Drop = 0,
    /// Go on: to the socket a successful [`SockMap::assign`](crate::SockMap::assign) chose, or
    /// to the usual lookup of a listening socket by address and port.
    Pass = 1,
}

/// A packet that arrived in the network namespace looking for its socket (a TCP SYN, a UDP
/// datagram), as a `#[duet::sk_lookup]` program sees it: its addresses, protocol and interface.
/// The packet is not changed: a socket the program chooses sees the packet's own destination as
/// its local address (`getsockname(2)` of an accepted connection).
#[derive(Clone, Copy)]
pub struct SkLookupContext<'a> {
    ctx: *mut c_void,
    _call: core::marker::PhantomData<&'a mut ()>,
}

impl core::fmt::Debug for SkLookupContext<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SkLookupContext")
            .field("protocol", &self.protocol())
            .field("local_port", &self.local_port())
            .finish_non_exhaustive()
    }
}

impl SkLookupContext<'_> {
    #[inline(always)]
    fn field(&self, offset: usize) -> u32 {
        // SAFETY: `ctx` is the `bpf_sk_lookup` of this call (or the host test struct with the
        // same layout); the offsets are 4-byte fields every sk_lookup program may read.
        unsafe { read_u32(self.ctx, offset) }
    }

    /// The packet's address family ([`AF_INET`] or [`AF_INET6`]).
    #[inline(always)]
    pub fn family(&self) -> u32 {
        self.field(lookup_field::FAMILY)
    }

    /// Its protocol ([`IPPROTO_TCP`] or [`IPPROTO_UDP`]).
    #[inline(always)]
    pub fn protocol(&self) -> u32 {
        self.field(lookup_field::PROTOCOL)
    }

    /// The sender's address (IPv4 packets), in network order.
    #[inline(always)]
    pub fn remote_ip4(&self) -> [u8; 4] {
        self.field(lookup_field::REMOTE_IP4).to_ne_bytes()
    }

    /// The sender's port, in host order.
    #[inline(always)]
    pub fn remote_port(&self) -> u16 {
        // A 16-bit network-order field followed by zero padding; the kernel allows the 4-byte
        // read, whose first two bytes in memory are the port.
        let [a, b, _, _] = self.field(lookup_field::REMOTE_PORT).to_ne_bytes();
        u16::from_be_bytes([a, b])
    }

    /// The destination address (IPv4 packets), in network order.
    #[inline(always)]
    pub fn local_ip4(&self) -> [u8; 4] {
        self.field(lookup_field::LOCAL_IP4).to_ne_bytes()
    }

    /// The destination port, in host order.
    #[inline(always)]
    pub fn local_port(&self) -> u16 {
        self.field(lookup_field::LOCAL_PORT) as u16
    }

    /// The interface the packet arrived on.
    #[inline(always)]
    pub fn ingress_ifindex(&self) -> u32 {
        self.field(lookup_field::INGRESS_IFINDEX)
    }

    /// The raw context, for `bpf_sk_assign`.
    #[cfg(target_arch = "bpf")]
    #[inline(always)]
    pub(crate) fn raw(&self) -> *mut c_void {
        self.ctx
    }

    /// Host tests: records that socket `socket` was chosen with `flags`.
    #[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
    pub(crate) fn host_assign(&self, socket: u32, flags: u64) {
        // SAFETY: outside BPF the context is the host test struct, writable for the run; the
        // offset is its `assigned` field (checked below).
        unsafe {
            self.ctx.cast::<u8>().add(lookup_field::HOST_ASSIGNED).cast::<HostAssigned>().write(HostAssigned {
                socket,
                assigned: 1,
                flags,
            });
        }
    }
}

/// `BPF_SK_LOOKUP_F_REPLACE`: [`SockMap::assign`](crate::SockMap::assign) replaces a socket an
/// earlier sk_lookup program of the namespace chose.
pub const BPF_SK_LOOKUP_F_REPLACE: u64 = 1;
/// `BPF_SK_LOOKUP_F_NO_REUSEPORT`: skip the reuseport group's choice among its sockets.
pub const BPF_SK_LOOKUP_F_NO_REUSEPORT: u64 = 2;

// === entry points ===

/// Runs a connect4 program on the context the kernel passed.
///
/// # Safety
///
/// `ctx` is the program's `struct bpf_sock_addr *`.
#[doc(hidden)]
#[cfg(target_arch = "bpf")]
#[inline(always)]
pub unsafe fn connect4_entry(ctx: *mut c_void, prog: impl FnOnce(SockAddrContext<'_>) -> SockAddrAction) -> u32 {
    prog(SockAddrContext { ctx, _call: core::marker::PhantomData }) as u32
}

/// Runs a sock_ops program on the context the kernel passed; returns 1, as sock_ops programs
/// must.
///
/// # Safety
///
/// `ctx` is the program's `struct bpf_sock_ops *`.
#[doc(hidden)]
#[cfg(target_arch = "bpf")]
#[inline(always)]
pub unsafe fn sock_ops_entry<R>(ctx: *mut c_void, prog: impl FnOnce(SockOpsContext<'_>) -> R) -> u32 {
    let _ = prog(SockOpsContext { ctx, _call: core::marker::PhantomData });
    1
}

/// Runs an sk_msg program on the context the kernel passed.
///
/// # Safety
///
/// `ctx` is the program's `struct sk_msg_md *`.
#[doc(hidden)]
#[cfg(target_arch = "bpf")]
#[inline(always)]
pub unsafe fn sk_msg_entry(ctx: *mut c_void, prog: impl FnOnce(SkMsgContext<'_>) -> SkMsgAction) -> u32 {
    prog(SkMsgContext { ctx, _call: core::marker::PhantomData }) as u32
}

/// Runs an sk_lookup program on the context the kernel passed.
///
/// # Safety
///
/// `ctx` is the program's `struct bpf_sk_lookup *`.
#[doc(hidden)]
#[cfg(target_arch = "bpf")]
#[inline(always)]
pub unsafe fn sk_lookup_entry(ctx: *mut c_void, prog: impl FnOnce(SkLookupContext<'_>) -> SkLookupAction) -> u32 {
    prog(SkLookupContext { ctx, _call: core::marker::PhantomData }) as u32
}

/// An sk_lookup context over a host struct, for [`crate::testing::run_sk_lookup`].
#[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
pub(crate) fn host_lookup_context(lookup: &mut HostSkLookup) -> SkLookupContext<'_> {
    SkLookupContext { ctx: core::ptr::from_mut(lookup).cast(), _call: core::marker::PhantomData }
}

/// An sk_msg context over a host struct, for [`crate::testing::run_sk_msg`].
#[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
pub(crate) fn host_msg_context(msg: &mut HostSkMsg) -> SkMsgContext<'_> {
    SkMsgContext { ctx: core::ptr::from_mut(msg).cast(), _call: core::marker::PhantomData }
}

/// A connect4 context over a host struct, for [`crate::testing::run_connect4`].
#[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
pub(crate) fn host_addr_context(call: &mut HostSockAddr) -> SockAddrContext<'_> {
    SockAddrContext { ctx: core::ptr::from_mut(call).cast(), _call: core::marker::PhantomData }
}

/// A sock_ops context over a host struct, for [`crate::testing::run_sock_ops`].
#[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
pub(crate) fn host_ops_context(event: &mut HostSockOps) -> SockOpsContext<'_> {
    SockOpsContext { ctx: core::ptr::from_mut(event).cast(), _call: core::marker::PhantomData }
}

/// A `struct bpf_sock_addr` for host tests ([`crate::testing::run_connect4`]), followed by what
/// the helpers return.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct HostSockAddr {
    /// `user_family`.
    pub user_family: u32,
    /// `user_ip4`, as the kernel stores it (`u32::from_ne_bytes([127, 0, 0, 1])`).
    pub user_ip4: u32,
    /// `user_ip6`.
    pub user_ip6: [u32; 4],
    /// `user_port`, as the kernel stores it (`u32::from(port.to_be())`).
    pub user_port: u32,
    /// `family`.
    pub family: u32,
    /// `type`.
    pub sock_type: u32,
    /// `protocol`.
    pub protocol: u32,
    /// `msg_src_ip4`.
    pub msg_src_ip4: u32,
    /// `msg_src_ip6`.
    pub msg_src_ip6: [u32; 4],
    /// `sk` (a pointer in the kernel; unused here).
    pub sk: u64,
    /// What `bpf_get_socket_cookie` returns.
    pub cookie: u64,
    /// What `bpf_get_current_pid_tgid` returns.
    pub pid_tgid: u64,
}

impl HostSockAddr {
    /// A TCP `connect(2)` of an IPv6 socket of process `pid` to `[ip]:port`, with this cookie.
    pub fn tcp6(ip: [u8; 16], port: u16, cookie: u64, pid: u32) -> Self {
        let word = |i: usize| u32::from_ne_bytes([ip[4 * i], ip[4 * i + 1], ip[4 * i + 2], ip[4 * i + 3]]);
        HostSockAddr {
            user_family: AF_INET6,
            user_ip6: [word(0), word(1), word(2), word(3)],
            user_port: u32::from(port.to_be()),
            family: AF_INET6,
            sock_type: SOCK_STREAM,
            protocol: 6,
            cookie,
            pid_tgid: (u64::from(pid) << 32) | u64::from(pid),
            ..HostSockAddr::default()
        }
    }

    /// The IPv6 destination as the program left it.
    pub fn dst6(&self) -> ([u8; 16], u16) {
        let mut ip = [0u8; 16];
        for (i, word) in self.user_ip6.iter().enumerate() {
            ip[4 * i..4 * i + 4].copy_from_slice(&word.to_ne_bytes());
        }
        (ip, u16::from_be(self.user_port as u16))
    }

    /// A TCP `connect(2)` of process `pid` to `ip:port`, on a socket with this cookie.
    pub fn tcp(ip: [u8; 4], port: u16, cookie: u64, pid: u32) -> Self {
        HostSockAddr {
            user_family: AF_INET,
            user_ip4: u32::from_ne_bytes(ip),
            user_port: u32::from(port.to_be()),
            family: AF_INET,
            sock_type: SOCK_STREAM,
            protocol: 6,
            cookie,
            pid_tgid: (u64::from(pid) << 32) | u64::from(pid),
            ..HostSockAddr::default()
        }
    }

    /// The destination as the program left it.
    pub fn dst(&self) -> ([u8; 4], u16) {
        (self.user_ip4.to_ne_bytes(), u16::from_be(self.user_port as u16))
    }
}

/// A `struct bpf_sock_ops` (up to `sk`) for host tests ([`crate::testing::run_sock_ops`]),
/// followed by what `bpf_get_socket_cookie` returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct HostSockOps {
    /// `op`.
    pub op: u32,
    /// `args` / `reply`.
    pub args: [u32; 4],
    /// `family`.
    pub family: u32,
    /// `remote_ip4`, as stored (`u32::from_ne_bytes(ip)`).
    pub remote_ip4: u32,
    /// `local_ip4`, as stored.
    pub local_ip4: u32,
    /// `remote_ip6`.
    pub remote_ip6: [u32; 4],
    /// `local_ip6`.
    pub local_ip6: [u32; 4],
    /// `remote_port`, as stored (`u32::from(port).to_be()`).
    pub remote_port: u32,
    /// `local_port`, in host order.
    pub local_port: u32,
    /// `is_fullsock`.
    pub is_fullsock: u32,
    /// `snd_cwnd`.
    pub snd_cwnd: u32,
    /// `srtt_us`.
    pub srtt_us: u32,
    /// `bpf_sock_ops_cb_flags`.
    pub cb_flags: u32,
    /// `state`.
    pub state: u32,
    /// `rtt_min`.
    pub rtt_min: u32,
    /// `snd_ssthresh`.
    pub snd_ssthresh: u32,
    /// `rcv_nxt`.
    pub rcv_nxt: u32,
    /// `snd_nxt`.
    pub snd_nxt: u32,
    /// `snd_una`.
    pub snd_una: u32,
    /// `mss_cache`.
    pub mss_cache: u32,
    /// `ecn_flags`.
    pub ecn_flags: u32,
    /// `rate_delivered`.
    pub rate_delivered: u32,
    /// `rate_interval_us`.
    pub rate_interval_us: u32,
    /// `packets_out`.
    pub packets_out: u32,
    /// `retrans_out`.
    pub retrans_out: u32,
    /// `total_retrans`.
    pub total_retrans: u32,
    /// `segs_in`.
    pub segs_in: u32,
    /// `data_segs_in`.
    pub data_segs_in: u32,
    /// `segs_out`.
    pub segs_out: u32,
    /// `data_segs_out`.
    pub data_segs_out: u32,
    /// `lost_out`.
    pub lost_out: u32,
    /// `sacked_out`.
    pub sacked_out: u32,
    /// `sk_txhash`.
    pub sk_txhash: u32,
    /// `bytes_received`.
    pub bytes_received: u64,
    /// `bytes_acked`.
    pub bytes_acked: u64,
    /// `sk` (a pointer in the kernel; unused here).
    pub sk: u64,
    /// What `bpf_get_socket_cookie` returns.
    pub cookie: u64,
}

impl HostSockOps {
    /// Event `op` on an IPv4 TCP socket `local -> remote` with this cookie.
    pub fn tcp(op: u32, local: ([u8; 4], u16), remote: ([u8; 4], u16), cookie: u64) -> Self {
        HostSockOps {
            op,
            family: AF_INET,
            local_ip4: u32::from_ne_bytes(local.0),
            local_port: u32::from(local.1),
            remote_ip4: u32::from_ne_bytes(remote.0),
            remote_port: u32::from(remote.1).to_be(),
            is_fullsock: 1,
            cookie,
            ..HostSockOps::default()
        }
    }
}

/// A `struct sk_msg_md` for host tests ([`crate::testing::run_sk_msg`]), followed by the
/// redirection the program asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct HostSkMsg {
    /// `data` (a pointer in the kernel; unused here).
    pub data: u64,
    /// `data_end` (a pointer in the kernel; unused here).
    pub data_end: u64,
    /// `family`.
    pub family: u32,
    /// `remote_ip4`, as stored (`u32::from_ne_bytes(ip)`).
    pub remote_ip4: u32,
    /// `local_ip4`, as stored.
    pub local_ip4: u32,
    /// `remote_ip6`.
    pub remote_ip6: [u32; 4],
    /// `local_ip6`.
    pub local_ip6: [u32; 4],
    /// `remote_port`, as stored (`u32::from(port).to_be()`).
    pub remote_port: u32,
    /// `local_port`, in host order.
    pub local_port: u32,
    /// `size`.
    pub size: u32,
    /// `sk` (a pointer in the kernel; unused here).
    pub sk: u64,
    /// The redirection a successful `SockHash::redirect_msg` recorded.
    pub redirect: HostRedirect,
}

/// Where a host test's `sk_msg` program sent the data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct HostRedirect {
    /// The value stored under the key in the host's `SockHash`: the low 32 bits of the cookie
    /// of the socket that `SockHash::insert_from_sock_ops` filed.
    pub target: u32,
    /// 1 when a redirection was recorded.
    pub redirected: u32,
    /// The flags passed ([`BPF_F_INGRESS`]).
    pub flags: u64,
}

impl HostSkMsg {
    /// `size` bytes sent on an IPv4 TCP socket `local -> remote`.
    pub fn tcp(local: ([u8; 4], u16), remote: ([u8; 4], u16), size: u32) -> Self {
        HostSkMsg {
            family: AF_INET,
            local_ip4: u32::from_ne_bytes(local.0),
            local_port: u32::from(local.1),
            remote_ip4: u32::from_ne_bytes(remote.0),
            remote_port: u32::from(remote.1).to_be(),
            size,
            ..HostSkMsg::default()
        }
    }

    /// The socket the data was redirected to (see [`HostRedirect::target`]) and the flags, if
    /// the program redirected it.
    pub fn redirected(&self) -> Option<(u32, u64)> {
        (self.redirect.redirected == 1).then_some((self.redirect.target, self.redirect.flags))
    }
}

/// A `struct bpf_sk_lookup` for host tests ([`crate::testing::run_sk_lookup`]), followed by the
/// socket the program chose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct HostSkLookup {
    /// `sk` / `cookie` (unused here).
    pub sk: u64,
    /// `family`.
    pub family: u32,
    /// `protocol`.
    pub protocol: u32,
    /// `remote_ip4`, as stored (`u32::from_ne_bytes(ip)`).
    pub remote_ip4: u32,
    /// `remote_ip6`.
    pub remote_ip6: [u32; 4],
    /// `remote_port`: the port in network order, then two zero bytes.
    pub remote_port: [u8; 4],
    /// `local_ip4`, as stored.
    pub local_ip4: u32,
    /// `local_ip6`.
    pub local_ip6: [u32; 4],
    /// `local_port`, in host order.
    pub local_port: u32,
    /// `ingress_ifindex`.
    pub ingress_ifindex: u32,
    /// Padding to the kernel struct's size.
    pub pad: u32,
    /// The socket a successful `SockMap::assign` chose.
    pub assigned: HostAssigned,
}

/// The socket a host test's `sk_lookup` program chose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct HostAssigned {
    /// The socket number filed in the host's `SockMap` slot.
    pub socket: u32,
    /// 1 when a socket was chosen.
    pub assigned: u32,
    /// The flags passed.
    pub flags: u64,
}

impl HostSkLookup {
    /// A TCP SYN `remote -> local` arriving on interface `ifindex`.
    pub fn tcp(remote: ([u8; 4], u16), local: ([u8; 4], u16), ifindex: u32) -> Self {
        let [a, b] = remote.1.to_be_bytes();
        HostSkLookup {
            family: AF_INET,
            protocol: IPPROTO_TCP,
            remote_ip4: u32::from_ne_bytes(remote.0),
            remote_port: [a, b, 0, 0],
            local_ip4: u32::from_ne_bytes(local.0),
            local_port: u32::from(local.1),
            ingress_ifindex: ifindex,
            ..HostSkLookup::default()
        }
    }

    /// The socket the program chose (see [`HostAssigned::socket`]) and the flags, if it chose
    /// one.
    pub fn assigned(&self) -> Option<(u32, u64)> {
        (self.assigned.assigned == 1).then_some((self.assigned.socket, self.assigned.flags))
    }
}

const _: () = {
    assert!(core::mem::offset_of!(HostSkLookup, family) == lookup_field::FAMILY);
    assert!(core::mem::offset_of!(HostSkLookup, protocol) == lookup_field::PROTOCOL);
    assert!(core::mem::offset_of!(HostSkLookup, remote_ip4) == lookup_field::REMOTE_IP4);
    assert!(core::mem::offset_of!(HostSkLookup, remote_port) == lookup_field::REMOTE_PORT);
    assert!(core::mem::offset_of!(HostSkLookup, local_ip4) == lookup_field::LOCAL_IP4);
    assert!(core::mem::offset_of!(HostSkLookup, local_port) == lookup_field::LOCAL_PORT);
    assert!(core::mem::offset_of!(HostSkLookup, ingress_ifindex) == lookup_field::INGRESS_IFINDEX);
};

#[cfg(not(target_arch = "bpf"))]
const _: () = assert!(core::mem::offset_of!(HostSkLookup, assigned) == lookup_field::HOST_ASSIGNED);

const _: () = {
    assert!(core::mem::offset_of!(HostSkMsg, family) == msg_field::FAMILY);
    assert!(core::mem::offset_of!(HostSkMsg, remote_ip4) == msg_field::REMOTE_IP4);
    assert!(core::mem::offset_of!(HostSkMsg, local_ip4) == msg_field::LOCAL_IP4);
    assert!(core::mem::offset_of!(HostSkMsg, remote_port) == msg_field::REMOTE_PORT);
    assert!(core::mem::offset_of!(HostSkMsg, local_port) == msg_field::LOCAL_PORT);
    assert!(core::mem::offset_of!(HostSkMsg, size) == msg_field::SIZE);
    assert!(core::mem::offset_of!(HostSkMsg, sk) == 72);
};

#[cfg(not(target_arch = "bpf"))]
const _: () = assert!(core::mem::offset_of!(HostSkMsg, redirect) == msg_field::HOST_REDIRECT);

const _: () = {
    assert!(core::mem::offset_of!(HostSockAddr, user_port) == addr_field::USER_PORT);
    assert!(core::mem::offset_of!(HostSockAddr, sock_type) == addr_field::TYPE);
    assert!(core::mem::offset_of!(HostSockAddr, protocol) == addr_field::PROTOCOL);
    assert!(core::mem::offset_of!(HostSockOps, remote_port) == ops_field::REMOTE_PORT);
    assert!(core::mem::offset_of!(HostSockOps, local_port) == ops_field::LOCAL_PORT);
    assert!(core::mem::offset_of!(HostSockOps, srtt_us) == ops_field::SRTT_US);
    assert!(core::mem::offset_of!(HostSockOps, cb_flags) == ops_field::CB_FLAGS);
    assert!(core::mem::offset_of!(HostSockOps, state) == ops_field::STATE);
    assert!(core::mem::offset_of!(HostSockOps, args) == ops_field::ARGS);
    assert!(core::mem::offset_of!(HostSockOps, total_retrans) == ops_field::TOTAL_RETRANS);
    assert!(core::mem::offset_of!(HostSockOps, bytes_received) == ops_field::BYTES_RECEIVED);
    assert!(core::mem::offset_of!(HostSockOps, bytes_acked) == ops_field::BYTES_ACKED);
    assert!(core::mem::offset_of!(HostSockOps, sk) == 184);
    assert!(core::mem::offset_of!(HostSockOps, remote_ip4) == ops_field::REMOTE_IP4);
    assert!(core::mem::offset_of!(HostSockOps, local_ip4) == ops_field::LOCAL_IP4);
    assert!(core::mem::offset_of!(HostSockOps, family) == ops_field::FAMILY);
    assert!(core::mem::offset_of!(HostSockAddr, user_ip4) == addr_field::USER_IP4);
    assert!(core::mem::offset_of!(HostSockAddr, user_ip6) == addr_field::USER_IP6);
};

#[cfg(not(target_arch = "bpf"))]
const _: () = {
    assert!(core::mem::offset_of!(HostSockAddr, cookie) == addr_field::HOST_COOKIE);
    assert!(core::mem::offset_of!(HostSockAddr, pid_tgid) == addr_field::HOST_PID_TGID);
    assert!(core::mem::offset_of!(HostSockOps, cookie) == ops_field::HOST_COOKIE);
};
