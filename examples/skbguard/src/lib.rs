//! `skbguard`: duet's three socket-buffer hooks in one program crate, built by `duet build` into
//! `target/duet/skbguard.bpf.o` and `target/duet/skbguard.wasm`.
//!
//! - `tc_ttl` (`#[duet::classifier]`, the packet from its Ethernet header): counts packets by
//!   protocol in `PROTOCOLS`; for IPv4, drops (`TC_ACT_SHOT`) TCP to port 23 and packets whose
//!   TTL is 1 or less, otherwise lowers the TTL by one and fixes the header checksum with
//!   `bpf_l3_csum_replace` (`TC_ACT_OK`); anything that is not IPv4 gets `TC_ACT_UNSPEC`. It
//!   also checks each IPv4 header's checksum as it arrives (`bpf_csum_diff` over the first 20
//!   bytes) and counts right and wrong ones in `CHECKSUMS`.
//! - `udp_only` (`#[duet::socket_filter]`, the packet from its IP header): keeps the first 64
//!   bytes of IPv4 UDP packets and drops everything else.
//! - `egress_guard` (`#[duet::cgroup_skb(egress)]`): drops IPv4 packets to a destination in
//!   `BLOCKED`, passes the rest; counts both in `GUARD`.
//!
//! No time, no randomness: every executor gives the same verdicts, packets and maps.
#![no_std]

use duet::net::{IPPROTO_TCP, IPPROTO_UDP, Ipv4Hdr, Ports, csum_diff, csum_fold};
use duet::{Array, CgroupSkbAction, HashMap, SkbContext, TcAction, TcContext};

/// Packets by protocol: 0 other, 1 IPv4, 2 IPv6, 3 ARP.
#[duet::map]
static PROTOCOLS: Array<u64> = Array::with_max_entries(4, 0);

/// IPv4 destinations (packet order) `egress_guard` drops.
#[duet::map]
static BLOCKED: HashMap<[u8; 4], u8> = HashMap::with_max_entries(64, 0);

/// IPv4 headers (their first 20 bytes) whose checksum was 0 wrong, 1 right, as `tc_ttl` saw them.
#[duet::map]
static CHECKSUMS: Array<u64> = Array::with_max_entries(2, 0);

/// `egress_guard`'s decisions: 0 dropped, 1 passed.
#[duet::map]
static GUARD: Array<u64> = Array::with_max_entries(2, 0);

/// Offset of the TTL in an IPv4 header (the 16-bit word TTL, protocol).
const TTL_OFFSET: usize = 8;
/// Offset of the header checksum in an IPv4 header.
const CHECK_OFFSET: usize = 10;

#[duet::classifier]
fn tc_ttl(ctx: TcContext) -> TcAction {
    let slot = match ctx.protocol() {
        duet::net::ETH_P_IP => 1,
        duet::net::ETH_P_IPV6 => 2,
        duet::net::ETH_P_ARP => 3,
        _ => 0,
    };
    let _ = PROTOCOLS.add_u64(slot, 1);
    let Some(ip) = ctx.ipv4() else { return TcAction::Unspec };
    let net = ctx.network_offset();
    if let Some(header) = ctx.load::<[u8; 20]>(net) {
        let right = csum_fold(csum_diff(&[], &header, 0)) == 0;
        let _ = CHECKSUMS.add_u64(u32::from(right), 1);
    }
    if ip.protocol == IPPROTO_TCP
        && let Some(ports) = ctx.load::<Ports>(net + ip.header_len())
        && ports.dst_port() == 23
    {
        return TcAction::Shot;
    }
    if ip.ttl <= 1 {
        return TcAction::Shot;
    }
    let old = [ip.ttl, ip.protocol];
    let new = [ip.ttl - 1, ip.protocol];
    if ctx.store(net + TTL_OFFSET, &new).is_err() {
        return TcAction::Shot;
    }
    match ctx.l3_csum_replace_u16(net + CHECK_OFFSET, u16::from_ne_bytes(old), u16::from_ne_bytes(new)) {
        Ok(()) => TcAction::Ok,
        Err(_) => TcAction::Shot,
    }
}

#[duet::socket_filter]
fn udp_only(ctx: SkbContext) -> u32 {
    match ctx.ipv4() {
        Some(Ipv4Hdr { protocol: IPPROTO_UDP, .. }) => (ctx.len() as u32).min(64),
        _ => 0,
    }
}

#[duet::cgroup_skb(egress)]
fn egress_guard(ctx: SkbContext) -> CgroupSkbAction {
    let action = match ctx.ipv4() {
        Some(ip) if BLOCKED.contains_key(&ip.dst) => CgroupSkbAction::Drop,
        _ => CgroupSkbAction::Pass,
    };
    let _ = GUARD.add_u64(action as u32, 1);
    action
}

#[cfg(test)]
mod tests {
    extern crate std;

    use duet::testing::{run_cgroup_skb, run_classifier, run_socket_filter, tcp_frame, udp_frame};

    use super::*;

    #[test]
    fn classifier_lowers_the_ttl_and_keeps_the_checksum_valid() {
        let mut frame = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53, 4);
        let sum = ip_checksum(&frame[14..34]);
        frame[24..26].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(run_classifier(tc_ttl, &mut frame), TcAction::Ok);
        assert_eq!(frame[22], 63);
        assert_eq!(ip_checksum(&frame[14..34]), 0);
        let mut telnet = tcp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1000, 23, 0);
        assert_eq!(run_classifier(tc_ttl, &mut telnet), TcAction::Shot);
        assert_eq!(PROTOCOLS.get(1), Some(2));
        assert_eq!((CHECKSUMS.get(0), CHECKSUMS.get(1)), (Some(1), Some(1)), "the telnet frame's is zero");
    }

    #[test]
    fn csum_diff_sums_words_as_the_header_check_needs() {
        let mut frame = udp_frame([192, 168, 1, 1], [192, 168, 1, 2], 5353, 53, 12);
        let header: [u8; 20] = frame[14..34].try_into().unwrap();
        let sum = ip_checksum(&header);
        assert_ne!(csum_fold(csum_diff(&[], &header, 0)), 0, "no checksum yet");
        frame[24..26].copy_from_slice(&sum.to_be_bytes());
        let header: [u8; 20] = frame[14..34].try_into().unwrap();
        assert_eq!(csum_fold(csum_diff(&[], &header, 0)), 0);
        // Taking words out and putting them back leaves the sum as it was.
        let ttl_word: [u8; 4] = header[8..12].try_into().unwrap();
        let base = csum_diff(&[], &header, 0);
        assert_eq!(csum_fold(csum_diff(&ttl_word, &ttl_word, base)), csum_fold(base));
    }

    #[test]
    fn filters_see_the_packet_from_its_ip_header() {
        let udp = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53, 100);
        assert_eq!(run_socket_filter(udp_only, &udp), 64);
        let tcp = tcp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1000, 80, 0);
        assert_eq!(run_socket_filter(udp_only, &tcp), 0);
        BLOCKED.insert(&[10, 0, 0, 2], &1, duet::BPF_ANY).unwrap();
        assert_eq!(run_cgroup_skb(egress_guard, &tcp), CgroupSkbAction::Drop);
        assert_eq!(
            run_cgroup_skb(egress_guard, &udp_frame([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 0)),
            CgroupSkbAction::Pass
        );
        assert_eq!((GUARD.get(0), GUARD.get(1)), (Some(1), Some(1)));
    }

    fn ip_checksum(header: &[u8]) -> u16 {
        let mut sum: u32 = header.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum();
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }
}
