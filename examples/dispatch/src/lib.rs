//! `dispatch`: an XDP program that hands each IPv4 packet to a program for its protocol through a
//! prog array, as parsers split by protocol do (tail calls). Built by `duet build` into
//! `target/duet/dispatch.bpf.o` and `target/duet/dispatch.wasm`; the slots are filled when it
//! runs:
//!
//! ```sh
//! duet run target/duet/dispatch.bpf.o --program dispatch --pcap capture.pcap \
//!     --tail-call BY_PROTOCOL:0=tcp --tail-call BY_PROTOCOL:1=udp
//! ```
//!
//! - `dispatch` (the entry): TCP goes to slot 0, UDP to slot 1; anything else passes. A packet
//!   whose slot is empty is counted in `SEEN[0]` and passes.
//! - `tcp` (slot 0): counts in `SEEN[1]`; drops TCP to port 23 (telnet), passes the rest.
//! - `udp` (slot 1): counts in `SEEN[2]`; UDP to port 53 goes on to slot 2 (a second tail call,
//!   `dns`, when filled), the rest passes.
//! - `dns` (slot 2): counts in `SEEN[3]`; drops DNS packets shorter than a DNS header.
#![no_std]

use duet::net::{ETH_HLEN, IPPROTO_TCP, IPPROTO_UDP, Ports};
use duet::{Array, ProgramArray, XdpAction, XdpContext};

/// Slot of the TCP program.
pub const SLOT_TCP: u32 = 0;
/// Slot of the UDP program.
pub const SLOT_UDP: u32 = 1;
/// Slot of the DNS program.
pub const SLOT_DNS: u32 = 2;

/// The programs by slot.
#[duet::map]
static BY_PROTOCOL: ProgramArray = ProgramArray::with_max_entries(4, 0);

/// Packets seen: 0 no program in the slot, 1 by `tcp`, 2 by `udp`, 3 by `dns`.
#[duet::map]
static SEEN: Array<u64> = Array::with_max_entries(4, 0);

/// The transport ports of an IPv4 packet, and where its payload starts.
#[inline(always)]
fn ports(ctx: &XdpContext) -> Option<(Ports, usize)> {
    let ip = ctx.ipv4()?;
    let l4 = ETH_HLEN + ip.header_len();
    Some((ctx.load::<Ports>(l4)?, l4 + 8))
}

#[duet::xdp]
fn dispatch(ctx: XdpContext) -> XdpAction {
    let slot = match ctx.ipv4() {
        Some(ip) if ip.protocol == IPPROTO_TCP => SLOT_TCP,
        Some(ip) if ip.protocol == IPPROTO_UDP => SLOT_UDP,
        _ => return XdpAction::Pass,
    };
    if let Some(verdict) = BY_PROTOCOL.tail_call(&ctx, slot) {
        return verdict;
    }
    let _ = SEEN.add_u64(0, 1);
    XdpAction::Pass
}

#[duet::xdp]
fn tcp(ctx: XdpContext) -> XdpAction {
    let _ = SEEN.add_u64(1, 1);
    match ports(&ctx) {
        Some((p, _)) if p.dst_port() == 23 => XdpAction::Drop,
        _ => XdpAction::Pass,
    }
}

#[duet::xdp]
fn udp(ctx: XdpContext) -> XdpAction {
    let _ = SEEN.add_u64(2, 1);
    if let Some((p, _)) = ports(&ctx)
        && p.dst_port() == 53
        && let Some(verdict) = BY_PROTOCOL.tail_call(&ctx, SLOT_DNS)
    {
        return verdict;
    }
    XdpAction::Pass
}

/// The 12-byte DNS header.
const DNS_HEADER: usize = 12;

#[duet::xdp]
fn dns(ctx: XdpContext) -> XdpAction {
    let _ = SEEN.add_u64(3, 1);
    match ports(&ctx) {
        Some((_, payload)) if ctx.load::<[u8; DNS_HEADER]>(payload).is_some() => XdpAction::Pass,
        _ => XdpAction::Drop,
    }
}

#[cfg(test)]
mod tests {
    use duet::testing::{run_xdp, set_tail_call, tcp_frame, udp_frame};

    use super::*;

    fn fill() {
        duet::testing::reset();
        set_tail_call(&BY_PROTOCOL, SLOT_TCP, tcp);
        set_tail_call(&BY_PROTOCOL, SLOT_UDP, udp);
        set_tail_call(&BY_PROTOCOL, SLOT_DNS, dns);
    }

    #[test]
    fn each_protocol_goes_to_its_program() {
        fill();
        let mut telnet = tcp_frame([10, 0, 0, 1], [10, 0, 0, 2], 4000, 23, 0);
        assert_eq!(run_xdp(dispatch, &mut telnet), XdpAction::Drop, "the tcp program's verdict");
        let mut web = tcp_frame([10, 0, 0, 1], [10, 0, 0, 2], 4000, 80, 0);
        assert_eq!(run_xdp(dispatch, &mut web), XdpAction::Pass);
        let mut query = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 4000, 53, 20);
        assert_eq!(run_xdp(dispatch, &mut query), XdpAction::Pass, "udp, then dns");
        let mut runt = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 4000, 53, 4);
        assert_eq!(run_xdp(dispatch, &mut runt), XdpAction::Drop, "shorter than a DNS header");
        assert_eq!([SEEN.get(0), SEEN.get(1), SEEN.get(2), SEEN.get(3)], [Some(0), Some(2), Some(2), Some(2)]);
    }

    #[test]
    fn an_empty_slot_falls_through() {
        duet::testing::reset();
        let mut web = tcp_frame([10, 0, 0, 1], [10, 0, 0, 2], 4000, 23, 0);
        assert_eq!(run_xdp(dispatch, &mut web), XdpAction::Pass, "no tcp program: it passes");
        set_tail_call(&BY_PROTOCOL, SLOT_UDP, udp);
        let mut query = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 4000, 53, 0);
        assert_eq!(run_xdp(dispatch, &mut query), XdpAction::Pass, "no dns program: udp passes it");
        assert_eq!([SEEN.get(0), SEEN.get(2), SEEN.get(3)], [Some(1), Some(1), Some(0)]);
    }
}
