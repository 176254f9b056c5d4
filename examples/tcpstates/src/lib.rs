//! `tcpstates`: TCP state changes and retransmits of chosen ports, from two kernel tracepoints.
//! Built by `duet build` into `target/duet/tcpstates.bpf.o` only (tracepoints are kernel hooks):
//!
//! ```sh
//! duet build examples/tcpstates
//! sudo duet attach examples/tcpstates/target/duet/tcpstates.bpf.o --program states \
//!     --tracepoint sock/inet_sock_set_state
//! sudo duet maps set <id> PORTS 901f 01          # watch port 8080 (the key: a u16, little-endian)
//! sudo duet maps <id> STATES                     # transitions into each state
//! ```
//!
//! - `states` (`sock/inet_sock_set_state`): every TCP state change of a socket whose local or
//!   remote port is in `PORTS` (every TCP socket when `CONFIG[0]` is 1) is counted in `STATES`
//!   under its new state and sent to `EVENTS`, a perf event array, as a [`Transition`]
//!   (`duet events <id>` streams them; each sample carries 4 bytes of the kernel's padding).
//! - `retransmits` (`tcp/tcp_retransmit_skb`): each retransmitted segment of such a socket is
//!   counted in `RETRANSMITS[0]`.
//!
//! Unlike the sidecar's sock_ops monitoring (`examples/capture`), which sees one cgroup's
//! sockets, tracepoints see the whole machine; the port filter keeps it to what is asked.
#![no_std]

use duet::{Array, HashMap, PerfEventArray, TracepointContext};

/// `IPPROTO_TCP`.
const TCP: u16 = 6;
/// States are 1 (`TCP_ESTABLISHED`) to 12 (`TCP_NEW_SYN_RECV`).
pub const STATES_LEN: u32 = 13;

/// One state change (`EVENTS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, duet::Pod)]
#[repr(C)]
pub struct Transition {
    /// The state before.
    pub oldstate: u32,
    /// The state after.
    pub newstate: u32,
    /// Local address (IPv4, network order).
    pub saddr: [u8; 4],
    /// Remote address.
    pub daddr: [u8; 4],
    /// Local port.
    pub sport: u16,
    /// Remote port.
    pub dport: u16,
    /// `AF_INET` or `AF_INET6`.
    pub family: u32,
}

/// `[0]`: 1 watches every TCP socket; 0 only the ports in `PORTS`.
#[duet::map]
static CONFIG: Array<u32> = Array::with_max_entries(1, 0);

/// Ports to watch (value ignored).
#[duet::map]
static PORTS: HashMap<u16, u8> = HashMap::with_max_entries(64, 0);

/// Transitions into each state, indexed by the new state.
#[duet::map]
static STATES: Array<u64> = Array::with_max_entries(STATES_LEN, 0);

/// `[0]`: retransmitted segments.
#[duet::map]
static RETRANSMITS: Array<u64> = Array::with_max_entries(1, 0);

/// Every counted transition, through a perf event array (one buffer per CPU, as tracing tools
/// have long used; `duet events <id>` reads them).
#[duet::map]
static EVENTS: PerfEventArray = PerfEventArray::with_max_entries(0, 0);

#[inline(always)]
fn watched(sport: u16, dport: u16) -> bool {
    CONFIG.get(0) == Some(1) || PORTS.contains_key(&sport) || PORTS.contains_key(&dport)
}

#[duet::tracepoint("sock/inet_sock_set_state")]
fn states(ctx: TracepointContext) {
    let r = ctx.inet_sock_set_state();
    if r.protocol != TCP || !watched(r.sport, r.dport) {
        return;
    }
    let newstate = r.newstate as u32;
    if newstate < STATES_LEN {
        let _ = STATES.add_u64(newstate, 1);
    }
    let _ = EVENTS.output(
        &ctx,
        &Transition {
            oldstate: r.oldstate as u32,
            newstate,
            saddr: r.saddr,
            daddr: r.daddr,
            sport: r.sport,
            dport: r.dport,
            family: u32::from(r.family),
        },
    );
}

#[duet::tracepoint("tcp/tcp_retransmit_skb")]
fn retransmits(ctx: TracepointContext) {
    let r = ctx.tcp_retransmit_skb();
    if watched(r.sport, r.dport) {
        let _ = RETRANSMITS.add_u64(0, 1);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use duet::testing::run_tracepoint;
    use duet::tracepoint::{InetSockSetState, TcpRetransmitSkb};

    use super::*;

    fn change(old: i32, new: i32, sport: u16, dport: u16) -> std::vec::Vec<u8> {
        InetSockSetState {
            oldstate: old,
            newstate: new,
            sport,
            dport,
            family: 2,
            protocol: TCP,
            saddr: [127, 0, 0, 1],
            daddr: [127, 0, 0, 2],
            ..InetSockSetState::default()
        }
        .to_record()
    }

    #[test]
    fn changes_of_watched_ports_are_counted_and_streamed() {
        duet::testing::reset();
        PORTS.insert(&8080, &1, duet::BPF_ANY).unwrap();
        run_tracepoint(states, &change(7, 2, 40000, 8080)); // CLOSE -> SYN_SENT
        run_tracepoint(states, &change(2, 1, 40000, 8080)); // SYN_SENT -> ESTABLISHED
        run_tracepoint(states, &change(2, 1, 40000, 9090)); // another port: ignored
        assert_eq!((STATES.get(2), STATES.get(1)), (Some(1), Some(1)));
        let events = duet::testing::drain_perf(&EVENTS);
        assert_eq!(events.len(), 2);
        // SAFETY: `Transition` is plain data of this size.
        let last = unsafe { events[1].as_ptr().cast::<Transition>().read_unaligned() };
        let want = Transition {
            oldstate: 2,
            newstate: 1,
            saddr: [127, 0, 0, 1],
            daddr: [127, 0, 0, 2],
            sport: 40000,
            dport: 8080,
            family: 2,
        };
        assert_eq!(last, want);
    }

    #[test]
    fn every_port_when_configured_and_never_other_protocols() {
        duet::testing::reset();
        run_tracepoint(states, &change(7, 10, 8080, 0));
        assert_eq!(STATES.get(10), Some(0), "no port listed: nothing");
        CONFIG.set(0, &1).unwrap();
        run_tracepoint(states, &change(7, 10, 8080, 0));
        let mut sctp = change(7, 10, 8080, 0);
        sctp[30] = 132;
        run_tracepoint(states, &sctp);
        assert_eq!(STATES.get(10), Some(1));
    }

    #[test]
    fn retransmits_of_watched_ports_are_counted() {
        duet::testing::reset();
        PORTS.insert(&443, &1, duet::BPF_ANY).unwrap();
        let record = |dport| TcpRetransmitSkb { state: 1, sport: 50000, dport, family: 2, ..Default::default() };
        run_tracepoint(retransmits, &record(443).to_record());
        run_tracepoint(retransmits, &record(80).to_record());
        assert_eq!(RETRANSMITS.get(0), Some(1));
        // The typed record reads back what the kernel's layout holds, unaligned addresses too.
        let r = TcpRetransmitSkb { saddr: [10, 0, 0, 1], daddr: [10, 0, 0, 2], ..record(443) };
        let read = run_tracepoint(|ctx| ctx.tcp_retransmit_skb(), &r.to_record());
        assert_eq!(read, r);
    }
}
