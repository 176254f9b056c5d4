//! `capture`: how `duet mesh` takes an application's TCP connections without iptables: the
//! outbound ones, and with `inbound` the ones arriving from other hosts.
//! Built by `duet build` into `target/duet/capture.bpf.o` only: every program is a kernel-only
//! hook. The sidecar loads the object and attaches the programs to the application's cgroup, and
//! `inbound` to its network namespace (`capture:` in docs/MESH.md).
//!
//! 1. `redirect` (`#[duet::connect4]`), on every IPv4 `connect(2)` in the cgroup (and `redirect6`,
//!    `#[duet::connect6]`, on IPv6 ones to mapped IPv4 addresses, `::ffff:a.b.c.d`): a TCP
//!    connection whose destination is captured (every port, or those in `PORTS`) and that is not
//!    the sidecar's own (its process id is in `CONFIG`) is sent to the sidecar's capture listener
//!    instead. Its original destination goes into `BY_COOKIE` under the socket's cookie.
//! 2. `record` (`#[duet::sock_ops]`), when that socket's SYN is about to leave (its local port is
//!    known) and again when the connection is established: the original destination moves from
//!    `BY_COOKIE` to `BY_PORT`, keyed by the client's local port.
//! 3. The sidecar, on accepting a connection on its capture listener, looks up `BY_PORT` by the
//!    peer's port (the client's local port: the connection is on loopback, the listener's
//!    address is fixed, so the port alone names it) and forwards the connection's requests to
//!    that destination. It deletes the entry when the connection closes; both maps are LRU, so
//!    entries of connections it never saw age out.
//!
//! Inbound capture (when `Config::inbound` is 1), for connections arriving from other hosts:
//!
//! 4. `inbound` (`#[duet::sk_lookup]`, attached to the network namespace the application and the
//!    sidecar share): a TCP SYN for a port in `INBOUND_PORTS`, to an address that is not
//!    loopback and from another host (its source is not its destination), is given the
//!    sidecar's inbound listener (filed by the sidecar in `INBOUND`, slot 0) instead of the
//!    application's socket. The packet is not rewritten: the accepted connection's local address
//!    (`getsockname(2)`) is where the client was connecting, and the sidecar forwards there. Its
//!    own connection to that address comes from that address, so it is left alone.
//!
//! Nothing is done when `CONFIG` is unset (`enabled` 0): connections go where they were meant to.
//!
//! TCP monitoring (when `Config::monitor` is 1), by the same `record` program, for every IPv4
//! TCP connection of the cgroup (captured or not, opened or accepted):
//! - when a connection is established it asks for the RTT, state-change and retransmit callbacks
//!   (`set_callback_flags`), files a [`Conn`] under the socket's cookie in `CONNS`, counts it in
//!   `TCP_STATS` and writes a [`ConnEvent`] (`OPENED`) to `TCP_EVENTS`;
//! - each RTT sample updates the connection's smoothed RTT (`srtt_us`) in `CONNS`; each
//!   retransmitted segment is counted there and in `TCP_STATS`;
//! - when it reaches `TCP_CLOSE` (every TCP socket does) the connection's record leaves `CONNS`
//!   and a `CLOSED` event carries its RTT, retransmits, bytes both ways and duration; the bytes
//!   are added to `TCP_STATS`.
//!
//! Retransmits come from the sock_ops retransmit callback rather than the `tcp_retransmit_skb`
//! tracepoint: the callback is scoped to the cgroup's sockets, as everything else here is, while
//! a tracepoint sees the whole machine. The sidecar reads `TCP_STATS` and `TCP_EVENTS` into its
//! `/metrics` and `GET /events` (docs/MESH.md).
#![no_std]

use duet::sock::{AF_INET, AF_INET6, BPF_F_INGRESS, IPPROTO_TCP, SOCK_STREAM, cb_flags, op, tcp_state};
use duet::{
    Array, HashMap, LruHashMap, RingBuf, SkLookupAction, SkLookupContext, SkMsgAction, SkMsgContext, SockAddrAction,
    SockAddrContext, SockHash, SockMap, SockOpsContext, ktime_get_ns,
};

/// What the sidecar sets before attaching.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, duet::Pod)]
#[repr(C)]
pub struct Config {
    /// The capture listener's address, network order (`[127, 0, 0, 1]`).
    pub listener_ip: [u8; 4],
    /// The capture listener's port.
    pub listener_port: u16,
    /// 1: capture only destination ports in `PORTS`; 0: every TCP destination.
    pub only_listed_ports: u8,
    /// 0: capture nothing.
    pub enabled: u8,
    /// The sidecar's process id: its own connections (to the original destinations) are never
    /// captured, whichever cgroup it runs in.
    pub sidecar_pid: u32,
    /// 1: monitor the cgroup's TCP connections (`CONNS`, `TCP_STATS`, `TCP_EVENTS`).
    pub monitor: u32,
    /// 1: file captured connections' sockets in `SOCKETS`, so that `short_circuit` (attached to
    /// that map by the sidecar) hands data between them and the sidecar's sockets directly.
    pub short_circuit: u32,
    /// 1: `inbound` gives arriving connections to `INBOUND_PORTS` the sidecar's inbound listener.
    pub inbound: u32,
}

/// A monitored connection while it is open (`CONNS`, by socket cookie).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, duet::Pod)]
#[repr(C)]
pub struct Conn {
    /// `ktime_get_ns` when it was established.
    pub opened_ns: u64,
    /// Retransmitted segments so far.
    pub retransmits: u64,
    /// RTT samples taken so far.
    pub rtt_samples: u64,
    /// The latest smoothed RTT, in microseconds (the kernel's `srtt_us` / 8).
    pub srtt_us: u32,
    /// Local address, network order.
    pub local_ip: [u8; 4],
    /// Remote address, network order.
    pub remote_ip: [u8; 4],
    /// Local port.
    pub local_port: u16,
    /// Remote port.
    pub remote_port: u16,
}

/// A connection event (`TCP_EVENTS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, duet::Pod)]
#[repr(C)]
pub struct ConnEvent {
    /// [`OPENED`] or [`CLOSED`].
    pub kind: u32,
    /// The smoothed RTT in microseconds (0 before a sample).
    pub srtt_us: u32,
    /// Local address, network order.
    pub local_ip: [u8; 4],
    /// Remote address, network order.
    pub remote_ip: [u8; 4],
    /// Local port.
    pub local_port: u16,
    /// Remote port.
    pub remote_port: u16,
    /// Segments retransmitted (the kernel's `total_retrans`); 0 when opened.
    pub retransmits: u32,
    /// How long the connection was open, in nanoseconds; 0 when opened.
    pub duration_ns: u64,
    /// Bytes received; 0 when opened.
    pub bytes_received: u64,
    /// Bytes sent and acknowledged; 0 when opened.
    pub bytes_acked: u64,
    /// RTT samples taken; 0 when opened.
    pub rtt_samples: u64,
}

/// [`ConnEvent::kind`] of an established connection.
pub const OPENED: u32 = 1;
/// [`ConnEvent::kind`] of a connection that reached `TCP_CLOSE`.
pub const CLOSED: u32 = 2;

/// `TCP_STATS` indices: connections established.
pub const STAT_OPENED: u32 = 0;
/// Connections closed.
pub const STAT_CLOSED: u32 = 1;
/// Segments retransmitted.
pub const STAT_RETRANSMITS: u32 = 2;
/// Bytes received by closed connections.
pub const STAT_BYTES_RECEIVED: u32 = 3;
/// Bytes sent and acknowledged by closed connections.
pub const STAT_BYTES_ACKED: u32 = 4;
/// RTT samples.
pub const STAT_RTT_SAMPLES: u32 = 5;
/// `sendmsg(2)` calls `short_circuit` handed straight to the peer socket.
pub const STAT_SHORT_CIRCUIT_MSGS: u32 = 6;
/// The bytes of those calls.
pub const STAT_SHORT_CIRCUIT_BYTES: u32 = 7;
/// Arriving connections `inbound` gave the sidecar's inbound listener.
pub const STAT_INBOUND: u32 = 8;

/// A TCP connection's end, as seen from one of its sockets: `SOCKETS`' key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, duet::Pod)]
#[repr(C)]
pub struct SockKey {
    /// This socket's address, network order.
    pub local_ip: [u8; 4],
    /// The peer's address, network order.
    pub remote_ip: [u8; 4],
    /// This socket's port.
    pub local_port: u16,
    /// The peer's port.
    pub remote_port: u16,
}

impl SockKey {
    /// The key of the socket at the other end of the same connection.
    pub const fn peer(self) -> SockKey {
        SockKey {
            local_ip: self.remote_ip,
            remote_ip: self.local_ip,
            local_port: self.remote_port,
            remote_port: self.local_port,
        }
    }
}

/// An original destination.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, duet::Pod)]
#[repr(C)]
pub struct OrigDst {
    /// The address, network order.
    pub ip: [u8; 4],
    /// The port.
    pub port: u16,
    /// Zero.
    pub pad: u16,
}

#[duet::map]
static CONFIG: Array<Config> = Array::with_max_entries(1, 0);

/// Destination ports to capture when `Config::only_listed_ports` is 1 (value ignored).
#[duet::map]
static PORTS: HashMap<u16, u8> = HashMap::with_max_entries(256, 0);

/// Original destinations of captured sockets by socket cookie, until `record` sees them.
#[duet::map]
static BY_COOKIE: LruHashMap<u64, OrigDst> = LruHashMap::with_max_entries(16384, 0);

/// Original destinations of captured connections by the client's local port.
#[duet::map]
static BY_PORT: LruHashMap<u16, OrigDst> = LruHashMap::with_max_entries(16384, 0);

/// The cgroup's open TCP connections, by socket cookie (monitoring).
#[duet::map]
static CONNS: LruHashMap<u64, Conn> = LruHashMap::with_max_entries(16384, 0);

/// Totals for the sidecar's `/metrics`, indexed by the `STAT_*` constants.
#[duet::map]
static TCP_STATS: Array<u64> = Array::with_max_entries(9, 0);

/// The two sockets of each captured connection while `Config::short_circuit` is on: the
/// application's (filed by `record` when it is established) and the sidecar's accepted one
/// (filed by the sidecar, by file descriptor, when it accepts it). `short_circuit` runs on every
/// send of either and passes the data to the other.
#[duet::map]
static SOCKETS: SockHash<SockKey> = SockHash::with_max_entries(16384, 0);

/// The sidecar's inbound listener (slot 0), filed by the sidecar by file descriptor.
#[duet::map]
static INBOUND: SockMap = SockMap::with_max_entries(1, 0);

/// Destination ports whose arriving connections `inbound` sends to the sidecar (value ignored).
#[duet::map]
static INBOUND_PORTS: HashMap<u16, u8> = HashMap::with_max_entries(256, 0);

/// Connection events for the sidecar's `GET /events`.
#[duet::map]
static TCP_EVENTS: RingBuf = RingBuf::with_byte_size(256 * 1024, 0);

#[duet::connect4]
fn redirect(ctx: SockAddrContext) -> SockAddrAction {
    let Some(config) = CONFIG.get(0) else { return SockAddrAction::Allow };
    if ctx.family() != AF_INET || !captures(&ctx, &config, ctx.dst_ip4()) {
        return SockAddrAction::Allow;
    }
    ctx.set_dst_ip4(config.listener_ip);
    ctx.set_dst_port(config.listener_port);
    SockAddrAction::Allow
}

/// The IPv6 side of `redirect`: an IPv4 destination dialled through an IPv6 socket (the mapped
/// address `::ffff:a.b.c.d`, as dual-stack runtimes such as Java's dial every IPv4 address) is
/// captured the same way, to the listener's mapped address. Native IPv6 destinations are left
/// alone: the capture listener is IPv4.
#[duet::connect6]
fn redirect6(ctx: SockAddrContext) -> SockAddrAction {
    let Some(config) = CONFIG.get(0) else { return SockAddrAction::Allow };
    let ip6 = ctx.dst_ip6();
    let word = |i: usize| u32::from_ne_bytes([ip6[i], ip6[i + 1], ip6[i + 2], ip6[i + 3]]);
    let mapped = word(0) == 0 && word(4) == 0 && word(8) == u32::from_ne_bytes([0, 0, 0xff, 0xff]);
    if ctx.family() != AF_INET6 || !mapped || !captures(&ctx, &config, [ip6[12], ip6[13], ip6[14], ip6[15]]) {
        return SockAddrAction::Allow;
    }
    let l = config.listener_ip;
    ctx.set_dst_ip6([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, l[0], l[1], l[2], l[3]]);
    ctx.set_dst_port(config.listener_port);
    SockAddrAction::Allow
}

/// Whether a TCP `connect(2)` to IPv4 `ip` and `ctx.dst_port()` is captured; if so its original
/// destination is recorded under the socket's cookie.
#[inline(always)]
fn captures(ctx: &SockAddrContext, config: &Config, ip: [u8; 4]) -> bool {
    if config.enabled == 0 || ctx.sock_type() != SOCK_STREAM {
        return false;
    }
    let port = ctx.dst_port();
    let to_listener = ip == config.listener_ip && port == config.listener_port;
    let own = ctx.process_id() == config.sidecar_pid;
    let listed = config.only_listed_ports == 0 || PORTS.contains_key(&port);
    if to_listener || own || !listed {
        return false;
    }
    // Without a record the sidecar could not forward the connection: leave it alone then.
    BY_COOKIE.insert(&ctx.cookie(), &OrigDst { ip, port, pad: 0 }, duet::BPF_ANY).is_ok()
}

#[duet::sock_ops]
fn record(ctx: SockOpsContext) {
    let op = ctx.op();
    // Captured IPv6 sockets (IPv4 dialled as `::ffff:a.b.c.d`) are filed by port like IPv4 ones.
    if op == op::TCP_CONNECT_CB || op == op::ACTIVE_ESTABLISHED_CB {
        file_destination(&ctx, op);
    }
    if ctx.family() != AF_INET {
        return;
    }
    let Some(config) = CONFIG.get(0) else { return };
    if op == op::ACTIVE_ESTABLISHED_CB && config.short_circuit == 1 {
        file_socket(&ctx, &config);
    }
    if config.monitor == 0 {
        return;
    }
    match op {
        op::ACTIVE_ESTABLISHED_CB | op::PASSIVE_ESTABLISHED_CB => opened(&ctx),
        op::RTT_CB => rtt_sample(&ctx),
        op::RETRANS_CB => retransmitted(&ctx),
        op::STATE_CB if ctx.arg::<1>() == tcp_state::CLOSE => closed(&ctx),
        _ => {}
    }
}

/// Moves a captured connection's original destination from its cookie to its local port.
#[inline(always)]
fn file_destination(ctx: &SockOpsContext, op: u32) {
    let cookie = ctx.cookie();
    let Some(orig) = BY_COOKIE.get(&cookie) else { return };
    if BY_PORT.insert(&ctx.local_port(), &orig, duet::BPF_ANY).is_ok() && op == op::ACTIVE_ESTABLISHED_CB {
        let _ = BY_COOKIE.remove(&cookie);
    }
}

/// Files a captured connection's socket (one whose peer is the capture listener) in `SOCKETS`.
#[inline(always)]
fn file_socket(ctx: &SockOpsContext, config: &Config) {
    let key = SockKey {
        local_ip: ctx.local_ip4(),
        remote_ip: ctx.remote_ip4(),
        local_port: ctx.local_port(),
        remote_port: ctx.remote_port(),
    };
    if key.remote_ip == config.listener_ip && key.remote_port == config.listener_port {
        // Failing to file it only means its data takes the usual path.
        let _ = SOCKETS.insert_from_sock_ops(ctx, &key, duet::BPF_ANY);
    }
}

/// Runs on every `sendmsg(2)` of a socket in `SOCKETS`: when the socket at the other end of the
/// connection is filed too, the data goes straight onto its receive queue, skipping TCP/IP on
/// loopback; otherwise (the sidecar has not filed its end yet, or it closed) the usual way.
#[duet::sk_msg]
fn short_circuit(msg: SkMsgContext) -> SkMsgAction {
    let this = SockKey {
        local_ip: msg.local_ip4(),
        remote_ip: msg.remote_ip4(),
        local_port: msg.local_port(),
        remote_port: msg.remote_port(),
    };
    if SOCKETS.redirect_msg(&msg, &this.peer(), BPF_F_INGRESS) {
        let _ = TCP_STATS.add_u64(STAT_SHORT_CIRCUIT_MSGS, 1);
        let _ = TCP_STATS.add_u64(STAT_SHORT_CIRCUIT_BYTES, u64::from(msg.size()));
    }
    SkMsgAction::Pass
}

/// Runs when an arriving packet looks for its socket in the namespace: see the module
/// documentation (4.). Everything else goes to the socket the kernel would have chosen.
#[duet::sk_lookup]
fn inbound(ctx: SkLookupContext) -> SkLookupAction {
    let Some(config) = CONFIG.get(0) else { return SkLookupAction::Pass };
    if config.enabled == 0 || config.inbound == 0 || ctx.family() != AF_INET || ctx.protocol() != IPPROTO_TCP {
        return SkLookupAction::Pass;
    }
    let local = ctx.local_ip4();
    if local[0] == 127 || ctx.remote_ip4() == local || !INBOUND_PORTS.contains_key(&ctx.local_port()) {
        return SkLookupAction::Pass;
    }
    // Without the sidecar's listener (not filed yet, or gone) the application gets it directly.
    if INBOUND.assign(&ctx, 0, 0).is_ok() {
        let _ = TCP_STATS.add_u64(STAT_INBOUND, 1);
    }
    SkLookupAction::Pass
}

#[inline(always)]
fn opened(ctx: &SockOpsContext) {
    let flags = ctx.callback_flags() | cb_flags::RTT | cb_flags::STATE | cb_flags::RETRANS;
    if ctx.set_callback_flags(flags).is_err() {
        return;
    }
    let conn = Conn {
        opened_ns: ktime_get_ns(),
        local_ip: ctx.local_ip4(),
        remote_ip: ctx.remote_ip4(),
        local_port: ctx.local_port(),
        remote_port: ctx.remote_port(),
        ..Conn::default()
    };
    let _ = CONNS.insert(&ctx.cookie(), &conn, duet::BPF_ANY);
    let _ = TCP_STATS.add_u64(STAT_OPENED, 1);
    let _ = TCP_EVENTS.output(&ConnEvent {
        kind: OPENED,
        srtt_us: ctx.srtt_us() >> 3,
        local_ip: conn.local_ip,
        remote_ip: conn.remote_ip,
        local_port: conn.local_port,
        remote_port: conn.remote_port,
        ..ConnEvent::default()
    });
}

#[inline(always)]
fn rtt_sample(ctx: &SockOpsContext) {
    let cookie = ctx.cookie();
    if let Some(mut conn) = CONNS.get(&cookie) {
        conn.srtt_us = ctx.srtt_us() >> 3;
        conn.rtt_samples += 1;
        let _ = CONNS.insert(&cookie, &conn, duet::BPF_EXIST);
    }
    let _ = TCP_STATS.add_u64(STAT_RTT_SAMPLES, 1);
}

#[inline(always)]
fn retransmitted(ctx: &SockOpsContext) {
    let _ = CONNS.add_u64_at(&ctx.cookie(), core::mem::offset_of!(Conn, retransmits), 1);
    let _ = TCP_STATS.add_u64(STAT_RETRANSMITS, 1);
}

#[inline(always)]
fn closed(ctx: &SockOpsContext) {
    let cookie = ctx.cookie();
    // A connection established before monitoring began has no record: it is not counted.
    let Some(conn) = CONNS.get(&cookie) else { return };
    let _ = CONNS.remove(&cookie);
    let (received, acked) = (ctx.bytes_received(), ctx.bytes_acked());
    let _ = TCP_STATS.add_u64(STAT_CLOSED, 1);
    let _ = TCP_STATS.add_u64(STAT_BYTES_RECEIVED, received);
    let _ = TCP_STATS.add_u64(STAT_BYTES_ACKED, acked);
    let _ = TCP_EVENTS.output(&ConnEvent {
        kind: CLOSED,
        srtt_us: ctx.srtt_us() >> 3,
        local_ip: conn.local_ip,
        remote_ip: conn.remote_ip,
        local_port: conn.local_port,
        remote_port: conn.remote_port,
        retransmits: ctx.total_retrans(),
        duration_ns: ktime_get_ns().saturating_sub(conn.opened_ns),
        bytes_received: received,
        bytes_acked: acked,
        rtt_samples: conn.rtt_samples,
    });
}

#[cfg(test)]
mod tests {
    extern crate std;

    use duet::testing::{
        HostSkLookup, HostSkMsg, HostSockAddr, HostSockOps, run_connect4, run_sk_lookup, run_sk_msg, run_sock_ops,
    };

    use super::*;

    const LISTENER: [u8; 4] = [127, 0, 0, 1];

    fn configure(only_listed_ports: u8) {
        duet::testing::reset();
        let config = Config {
            listener_ip: LISTENER,
            listener_port: 15001,
            only_listed_ports,
            enabled: 1,
            sidecar_pid: 7,
            monitor: 1,
            short_circuit: 1,
            inbound: 1,
        };
        CONFIG.set(0, &config).unwrap();
    }

    #[test]
    fn captured_sockets_are_filed_and_their_data_goes_to_the_peer_socket() {
        configure(0);
        let app = ([127, 0, 0, 1], 40000);
        let listener = (LISTENER, 15001);
        // The application's end of a captured connection is filed when established...
        run_sock_ops(record, &mut HostSockOps::tcp(op::ACTIVE_ESTABLISHED_CB, app, listener, 0x1_0000_0042));
        let app_key = SockKey { local_ip: app.0, remote_ip: LISTENER, local_port: 40000, remote_port: 15001 };
        assert_eq!(SOCKETS.remove(&app_key), Ok(()), "filed under its own end");
        // ...an uncaptured one, or a passive one, is not.
        let elsewhere = ([10, 0, 0, 9], 443);
        run_sock_ops(record, &mut HostSockOps::tcp(op::ACTIVE_ESTABLISHED_CB, app, elsewhere, 1));
        run_sock_ops(record, &mut HostSockOps::tcp(op::PASSIVE_ESTABLISHED_CB, listener, app, 2));
        assert_eq!(SOCKETS.remove(&app_key), Err(duet::Errno::ENOENT));

        // Before the sidecar files its end, the application's data takes the usual path.
        run_sock_ops(record, &mut HostSockOps::tcp(op::ACTIVE_ESTABLISHED_CB, app, listener, 0x1_0000_0042));
        let mut request = HostSkMsg::tcp(app, listener, 120);
        assert_eq!(run_sk_msg(short_circuit, &mut request), SkMsgAction::Pass);
        assert_eq!(request.redirected(), None);
        assert_eq!(TCP_STATS.get(STAT_SHORT_CIRCUIT_MSGS), Some(0));

        // The sidecar files its accepted socket (here, as a host "socket" number 9); then each
        // side's sends go onto the other's receive queue.
        duet::testing::file_socket(&SOCKETS, &app_key.peer(), 9).unwrap();
        let mut request = HostSkMsg::tcp(app, listener, 120);
        assert_eq!(run_sk_msg(short_circuit, &mut request), SkMsgAction::Pass);
        assert_eq!(request.redirected(), Some((9, BPF_F_INGRESS)));
        let mut response = HostSkMsg::tcp(listener, app, 300);
        assert_eq!(run_sk_msg(short_circuit, &mut response), SkMsgAction::Pass);
        assert_eq!(response.redirected(), Some((0x42, BPF_F_INGRESS)), "the application's socket");
        assert_eq!(TCP_STATS.get(STAT_SHORT_CIRCUIT_MSGS), Some(2));
        assert_eq!(TCP_STATS.get(STAT_SHORT_CIRCUIT_BYTES), Some(420));
    }

    #[test]
    fn a_connection_goes_to_the_listener_and_its_destination_is_found_by_port() {
        configure(0);
        let mut call = HostSockAddr::tcp([10, 1, 2, 3], 8080, 42, 100);
        assert_eq!(run_connect4(redirect, &mut call), SockAddrAction::Allow);
        assert_eq!(call.dst(), (LISTENER, 15001));
        let orig = OrigDst { ip: [10, 1, 2, 3], port: 8080, pad: 0 };
        assert_eq!(BY_COOKIE.get(&42), Some(orig));

        let mut connect = HostSockOps::tcp(op::TCP_CONNECT_CB, (LISTENER, 40000), (LISTENER, 15001), 42);
        run_sock_ops(record, &mut connect);
        assert_eq!(BY_PORT.get(&40000), Some(orig));
        let mut established = HostSockOps::tcp(op::ACTIVE_ESTABLISHED_CB, (LISTENER, 40000), (LISTENER, 15001), 42);
        run_sock_ops(record, &mut established);
        assert_eq!(BY_PORT.get(&40000), Some(orig));
        assert_eq!(BY_COOKIE.get(&42), None);
    }

    #[test]
    fn an_ipv6_socket_dialling_a_mapped_ipv4_address_is_captured_and_native_ipv6_is_not() {
        configure(0);
        let mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3];
        let mut call = HostSockAddr::tcp6(mapped, 8080, 43, 100);
        assert_eq!(run_connect4(redirect6, &mut call), SockAddrAction::Allow);
        let listener6 = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1];
        assert_eq!(call.dst6(), (listener6, 15001));
        assert_eq!(BY_COOKIE.get(&43), Some(OrigDst { ip: [10, 1, 2, 3], port: 8080, pad: 0 }));
        // The sock_ops side files it by port whatever the socket's family.
        let mut connect = HostSockOps::tcp(op::TCP_CONNECT_CB, (LISTENER, 40001), (LISTENER, 15001), 43);
        connect.family = duet::sock::AF_INET6;
        run_sock_ops(record, &mut connect);
        assert_eq!(BY_PORT.get(&40001), Some(OrigDst { ip: [10, 1, 2, 3], port: 8080, pad: 0 }));

        let native = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let mut call = HostSockAddr::tcp6(native, 8080, 44, 100);
        run_connect4(redirect6, &mut call);
        assert_eq!(call.dst6(), (native, 8080));
        assert_eq!(BY_COOKIE.get(&44), None);
    }

    #[test]
    fn the_sidecar_its_listener_udp_and_unlisted_ports_are_left_alone() {
        configure(1);
        PORTS.insert(&8080, &1, duet::BPF_ANY).unwrap();
        for (ip, port, pid) in [([10, 1, 2, 3], 8080, 7), (LISTENER, 15001, 100), ([10, 1, 2, 3], 9090, 100)] {
            let mut call = HostSockAddr::tcp(ip, port, 1, pid);
            assert_eq!(run_connect4(redirect, &mut call), SockAddrAction::Allow);
            assert_eq!(call.dst(), (ip, port));
        }
        let mut udp = HostSockAddr::tcp([10, 1, 2, 3], 8080, 1, 100);
        udp.sock_type = duet::sock::SOCK_DGRAM;
        run_connect4(redirect, &mut udp);
        assert_eq!(udp.dst(), ([10, 1, 2, 3], 8080));
        assert_eq!(BY_COOKIE.get(&1), None);
    }

    #[test]
    fn arriving_connections_to_listed_ports_go_to_the_inbound_listener() {
        configure(0);
        INBOUND_PORTS.insert(&8080, &1, duet::BPF_ANY).unwrap();
        let (pod, client) = ([10, 0, 0, 2], ([10, 0, 0, 9], 51000));
        // Before the sidecar files its listener, the application gets the connection.
        let mut syn = HostSkLookup::tcp(client, (pod, 8080), 3);
        assert_eq!(run_sk_lookup(inbound, &mut syn), SkLookupAction::Pass);
        assert_eq!(syn.assigned(), None);

        duet::testing::file_socket_at(&INBOUND, 0, 11).unwrap();
        let mut syn = HostSkLookup::tcp(client, (pod, 8080), 3);
        assert_eq!(run_sk_lookup(inbound, &mut syn), SkLookupAction::Pass);
        assert_eq!(syn.assigned(), Some((11, 0)), "the sidecar's listener");
        assert_eq!(TCP_STATS.get(STAT_INBOUND), Some(1));

        // Left alone: other ports, loopback, the sidecar's own connection to the pod's address
        // (from that address), UDP, and everything when inbound capture is off.
        let mut udp = HostSkLookup::tcp(client, (pod, 8080), 3);
        udp.protocol = duet::sock::IPPROTO_UDP;
        let mut cases = [
            HostSkLookup::tcp(client, (pod, 9090), 3),
            HostSkLookup::tcp(([127, 0, 0, 1], 51000), ([127, 0, 0, 1], 8080), 1),
            HostSkLookup::tcp((pod, 51000), (pod, 8080), 1),
            udp,
        ];
        for syn in &mut cases {
            assert_eq!(run_sk_lookup(inbound, syn), SkLookupAction::Pass);
            assert_eq!(syn.assigned(), None, "{syn:?}");
        }
        let mut config = CONFIG.get(0).unwrap();
        config.inbound = 0;
        CONFIG.set(0, &config).unwrap();
        let mut syn = HostSkLookup::tcp(client, (pod, 8080), 3);
        run_sk_lookup(inbound, &mut syn);
        assert_eq!(syn.assigned(), None);
        assert_eq!(TCP_STATS.get(STAT_INBOUND), Some(1));
    }

    fn event(record: &[u8]) -> ConnEvent {
        assert_eq!(record.len(), core::mem::size_of::<ConnEvent>());
        // SAFETY: `ConnEvent` is plain data of this size.
        unsafe { record.as_ptr().cast::<ConnEvent>().read_unaligned() }
    }

    #[test]
    fn connections_are_monitored_from_established_to_close() {
        configure(0);
        duet::testing::set_clock(5_000, 0);
        let (local, remote) = (([10, 0, 0, 2], 40000), ([10, 0, 0, 9], 443));
        let mut ev = HostSockOps::tcp(op::ACTIVE_ESTABLISHED_CB, local, remote, 77);
        run_sock_ops(record, &mut ev);
        assert_eq!(ev.cb_flags, cb_flags::RTT | cb_flags::STATE | cb_flags::RETRANS, "callbacks asked for");
        let opened = event(&duet::testing::drain(&TCP_EVENTS)[0]);
        assert_eq!((opened.kind, opened.local_port, opened.remote_port), (OPENED, 40000, 443));
        assert_eq!((opened.local_ip, opened.remote_ip), ([10, 0, 0, 2], [10, 0, 0, 9]));

        for srtt in [800, 1600] {
            let mut sample = HostSockOps::tcp(op::RTT_CB, local, remote, 77);
            sample.srtt_us = srtt; // the kernel's value: microseconds times 8
            run_sock_ops(record, &mut sample);
        }
        run_sock_ops(record, &mut HostSockOps::tcp(op::RETRANS_CB, local, remote, 77));
        let conn = CONNS.get(&77).unwrap();
        assert_eq!((conn.srtt_us, conn.rtt_samples, conn.retransmits), (200, 2, 1));

        // A state change that is not the close does nothing.
        let mut fin = HostSockOps::tcp(op::STATE_CB, local, remote, 77);
        fin.args = [tcp_state::ESTABLISHED, 4, 0, 0];
        run_sock_ops(record, &mut fin);
        assert!(CONNS.get(&77).is_some());

        duet::testing::set_clock(2_000_005_000, 0);
        let mut close = HostSockOps::tcp(op::STATE_CB, local, remote, 77);
        close.args = [4, tcp_state::CLOSE, 0, 0];
        (close.srtt_us, close.total_retrans, close.bytes_received, close.bytes_acked) = (1600, 1, 5000, 120);
        run_sock_ops(record, &mut close);
        let closed = event(&duet::testing::drain(&TCP_EVENTS)[0]);
        assert_eq!(
            closed,
            ConnEvent {
                kind: CLOSED,
                srtt_us: 200,
                local_ip: [10, 0, 0, 2],
                remote_ip: [10, 0, 0, 9],
                local_port: 40000,
                remote_port: 443,
                retransmits: 1,
                duration_ns: 2_000_000_000,
                bytes_received: 5000,
                bytes_acked: 120,
                rtt_samples: 2,
            }
        );
        assert_eq!(CONNS.get(&77), None, "the record is gone");
        let stats: [u64; 6] = core::array::from_fn(|i| TCP_STATS.get(i as u32).unwrap());
        assert_eq!(stats, [1, 1, 1, 5000, 120, 2]);

        // A close of a connection established before monitoring began is not counted.
        run_sock_ops(record, &mut close);
        assert_eq!(TCP_STATS.get(STAT_CLOSED), Some(1));
        assert!(duet::testing::drain(&TCP_EVENTS).is_empty());
    }

    #[test]
    fn without_monitor_nothing_is_recorded() {
        configure(0);
        let mut config = CONFIG.get(0).unwrap();
        config.monitor = 0;
        CONFIG.set(0, &config).unwrap();
        let mut ev = HostSockOps::tcp(op::PASSIVE_ESTABLISHED_CB, ([10, 0, 0, 2], 80), ([10, 0, 0, 3], 5555), 9);
        run_sock_ops(record, &mut ev);
        assert_eq!(ev.cb_flags, 0);
        assert_eq!(CONNS.get(&9), None);
        assert!(duet::testing::drain(&TCP_EVENTS).is_empty());
    }

    #[test]
    fn without_config_nothing_is_captured() {
        duet::testing::reset();
        let mut call = HostSockAddr::tcp([10, 1, 2, 3], 8080, 5, 100);
        run_connect4(redirect, &mut call);
        assert_eq!(call.dst(), ([10, 1, 2, 3], 8080));
    }
}
