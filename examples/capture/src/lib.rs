//! `capture`: how `duet mesh` takes an application's outbound TCP connections without iptables.
//! Built by `duet build` into `target/duet/capture.bpf.o` only: both programs are kernel-only
//! hooks. The sidecar loads the object and attaches both programs to the application's cgroup
//! (`capture:` in docs/MESH.md).
//!
//! 1. `redirect` (`#[duet::connect4]`), on every IPv4 `connect(2)` in the cgroup: a TCP
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
//! Nothing is done when `CONFIG` is unset (`enabled` 0): connections go where they were meant to.
#![no_std]

use duet::sock::{AF_INET, SOCK_STREAM, op};
use duet::{Array, HashMap, LruHashMap, SockAddrAction, SockAddrContext, SockOpsContext};

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

#[duet::connect4]
fn redirect(ctx: SockAddrContext) -> SockAddrAction {
    let Some(config) = CONFIG.get(0) else { return SockAddrAction::Allow };
    if config.enabled == 0 || ctx.family() != AF_INET || ctx.sock_type() != SOCK_STREAM {
        return SockAddrAction::Allow;
    }
    let (ip, port) = (ctx.dst_ip4(), ctx.dst_port());
    let to_listener = ip == config.listener_ip && port == config.listener_port;
    let own = ctx.process_id() == config.sidecar_pid;
    let listed = config.only_listed_ports == 0 || PORTS.contains_key(&port);
    if to_listener || own || !listed {
        return SockAddrAction::Allow;
    }
    let orig = OrigDst { ip, port, pad: 0 };
    // Without a record the sidecar could not forward the connection: leave it alone then.
    if BY_COOKIE.insert(&ctx.cookie(), &orig, duet::BPF_ANY).is_err() {
        return SockAddrAction::Allow;
    }
    ctx.set_dst_ip4(config.listener_ip);
    ctx.set_dst_port(config.listener_port);
    SockAddrAction::Allow
}

#[duet::sock_ops]
fn record(ctx: SockOpsContext) {
    let op = ctx.op();
    if (op != op::TCP_CONNECT_CB && op != op::ACTIVE_ESTABLISHED_CB) || ctx.family() != AF_INET {
        return;
    }
    let cookie = ctx.cookie();
    let Some(orig) = BY_COOKIE.get(&cookie) else { return };
    if BY_PORT.insert(&ctx.local_port(), &orig, duet::BPF_ANY).is_ok() && op == op::ACTIVE_ESTABLISHED_CB {
        let _ = BY_COOKIE.remove(&cookie);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use duet::testing::{HostSockAddr, HostSockOps, run_connect4, run_sock_ops};

    use super::*;

    const LISTENER: [u8; 4] = [127, 0, 0, 1];

    fn configure(only_listed_ports: u8) {
        duet::testing::reset();
        let config =
            Config { listener_ip: LISTENER, listener_port: 15001, only_listed_ports, enabled: 1, sidecar_pid: 7 };
        CONFIG.set(0, &config).unwrap();
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
    fn without_config_nothing_is_captured() {
        duet::testing::reset();
        let mut call = HostSockAddr::tcp([10, 1, 2, 3], 8080, 5, 100);
        run_connect4(redirect, &mut call);
        assert_eq!(call.dst(), ([10, 1, 2, 3], 8080));
    }
}
