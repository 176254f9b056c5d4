//! `firewall`: an XDP firewall written once with the duet SDK, built by `duet build` into
//! `target/duet/firewall.bpf.o` and `target/duet/firewall.wasm`.
//!
//! Verdicts, decided in this order:
//! - `XDP_ABORTED`: a frame shorter than an Ethernet header.
//! - `XDP_PASS`: anything that is not IPv4 (ARP, IPv6, ...).
//! - `XDP_DROP`: IPv4 that is malformed (version not 4, header shorter than 20 bytes or cut
//!   short by the frame end).
//! - `XDP_DROP`: IPv4 whose source address is a key of `BLOCKED`, or lies in a network of
//!   `BLOCKED_NETS` (longest-prefix match: `10.0.0.0/8`).
//! - for TCP and UDP (first fragments, with a complete header), the rule of
//!   `PORT_RULES[(protocol, destination port)]` when there is one: 1 drops, 2 passes;
//! - `XDP_PASS` otherwise.
//!
//! Every verdict adds one packet and the frame's length to `VERDICTS[verdict]`, with atomic adds.
//!
//! Maps (seed them with `duet run --maps-in`, keys and values in hex):
//! - `BLOCKED`: hash, key the IPv4 source address in packet order (`0a000001` is 10.0.0.1),
//!   value `u8` (ignored), 1024 entries.
//! - `BLOCKED_NETS`: LPM trie, key a prefix length (`u32`, little-endian) then the network in
//!   packet order (`0c000000ac100000` is 172.16.0.0/12), value `u8` (ignored), 256 entries.
//! - `PORT_RULES`: hash, key [`PortKey`] (protocol, a zero byte, the port big-endian:
//!   `06000016` is TCP port 22), value `u8` action (1 drop, 2 pass), 256 entries.
//! - `VERDICTS`: array of 5 [`Counter`]s (packets, bytes), one per XDP verdict.
//!
//! The program uses no time and no randomness, so every executor gives the same verdicts and
//! the same maps.
#![no_std]

use core::mem::offset_of;

use duet::net::{ETH_HLEN, IPPROTO_TCP, IPPROTO_UDP, Ports};
use duet::{Array, BPF_F_NO_PREALLOC, HashMap, LpmKey, LpmTrie, XdpAction, XdpContext};

/// A port rule's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, duet::Pod)]
#[repr(C)]
pub struct PortKey {
    /// `IPPROTO_TCP` (6) or `IPPROTO_UDP` (17).
    pub protocol: u8,
    /// Always 0 (explicit, so the key has no padding).
    pub zero: u8,
    /// The destination port, big-endian.
    pub port: [u8; 2],
}

/// Packets and bytes of one verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, duet::Pod)]
#[repr(C)]
pub struct Counter {
    /// Packets.
    pub packets: u64,
    /// Frame bytes.
    pub bytes: u64,
}

/// Port rule action: drop.
pub const RULE_DROP: u8 = 1;
/// Port rule action: pass.
pub const RULE_PASS: u8 = 2;

/// IPv4 source addresses to drop.
#[duet::map]
static BLOCKED: HashMap<[u8; 4], u8> = HashMap::with_max_entries(1024, 0);

/// IPv4 source networks to drop.
#[duet::map]
static BLOCKED_NETS: LpmTrie<[u8; 4], u8> = LpmTrie::with_max_entries(256, BPF_F_NO_PREALLOC);

/// Actions by (protocol, destination port).
#[duet::map]
static PORT_RULES: HashMap<PortKey, u8> = HashMap::with_max_entries(256, 0);

/// Packets and bytes per verdict.
#[duet::map]
static VERDICTS: Array<Counter> = Array::with_max_entries(5, 0);

#[duet::xdp]
fn firewall(ctx: XdpContext) -> XdpAction {
    let verdict = decide(&ctx);
    let index = verdict as u32;
    // The array has an element per verdict, so these cannot fail.
    let _ = VERDICTS.add_u64_at(index, offset_of!(Counter, packets), 1);
    let _ = VERDICTS.add_u64_at(index, offset_of!(Counter, bytes), ctx.len() as u64);
    verdict
}

#[inline(always)]
fn decide(ctx: &XdpContext) -> XdpAction {
    let Some(eth) = ctx.eth() else { return XdpAction::Aborted };
    if eth.ether_type() != duet::net::ETH_P_IP {
        return XdpAction::Pass;
    }
    let Some(ip) = ctx.ipv4() else { return XdpAction::Drop };
    let l4 = ETH_HLEN + ip.header_len();
    if ctx.len() < l4 {
        return XdpAction::Drop;
    }
    if BLOCKED.contains_key(&ip.src) || BLOCKED_NETS.get(&LpmKey::new(32, ip.src)).is_some() {
        return XdpAction::Drop;
    }
    let l4_len = match ip.protocol {
        IPPROTO_TCP => 20,
        IPPROTO_UDP => 8,
        _ => return XdpAction::Pass,
    };
    if ip.fragment_offset() != 0 || ctx.len() < l4 + l4_len {
        return XdpAction::Pass;
    }
    let Some(ports) = ctx.load::<Ports>(l4) else { return XdpAction::Pass };
    let key = PortKey { protocol: ip.protocol, zero: 0, port: ports.dst };
    match PORT_RULES.get(&key) {
        Some(RULE_DROP) => XdpAction::Drop,
        _ => XdpAction::Pass,
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use duet::testing::{run_xdp, tcp_frame, udp_frame};
    use duet::{BPF_ANY, XdpAction};

    use super::*;

    #[test]
    fn passes_by_default_and_counts() {
        let mut frame = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1234, 53, 10);
        assert_eq!(run_xdp(firewall, &mut frame), XdpAction::Pass);
        let pass = VERDICTS.get(XdpAction::Pass as u32).unwrap();
        assert_eq!(pass, Counter { packets: 1, bytes: frame.len() as u64 });
    }

    #[test]
    fn drops_blocked_sources() {
        BLOCKED.insert(&[10, 0, 0, 9], &1, BPF_ANY).unwrap();
        let mut blocked = tcp_frame([10, 0, 0, 9], [10, 0, 0, 2], 1234, 80, 0);
        let mut other = tcp_frame([10, 0, 0, 8], [10, 0, 0, 2], 1234, 80, 0);
        assert_eq!(run_xdp(firewall, &mut blocked), XdpAction::Drop);
        assert_eq!(run_xdp(firewall, &mut other), XdpAction::Pass);
        assert_eq!(VERDICTS.get(XdpAction::Drop as u32).unwrap().packets, 1);
    }

    #[test]
    fn drops_sources_in_blocked_networks() {
        BLOCKED_NETS.insert(&LpmKey::new(12, [172, 16, 0, 0]), &1, BPF_ANY).unwrap();
        for (src, verdict) in [
            ([172, 16, 0, 1], XdpAction::Drop),
            ([172, 31, 255, 255], XdpAction::Drop),
            ([172, 32, 0, 1], XdpAction::Pass),
            ([10, 0, 0, 1], XdpAction::Pass),
        ] {
            assert_eq!(run_xdp(firewall, &mut tcp_frame(src, [10, 0, 0, 2], 1234, 80, 0)), verdict, "{src:?}");
        }
    }

    #[test]
    fn port_rules_apply_per_protocol() {
        let ssh = PortKey { protocol: IPPROTO_TCP, zero: 0, port: 22u16.to_be_bytes() };
        PORT_RULES.insert(&ssh, &RULE_DROP, BPF_ANY).unwrap();
        assert_eq!(run_xdp(firewall, &mut tcp_frame([1, 1, 1, 1], [2, 2, 2, 2], 5, 22, 0)), XdpAction::Drop);
        assert_eq!(run_xdp(firewall, &mut udp_frame([1, 1, 1, 1], [2, 2, 2, 2], 5, 22, 0)), XdpAction::Pass);
    }

    #[test]
    fn short_and_malformed_frames() {
        assert_eq!(run_xdp(firewall, &mut [0u8; 10]), XdpAction::Aborted);
        let mut arp = udp_frame([1, 1, 1, 1], [2, 2, 2, 2], 5, 6, 0);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(run_xdp(firewall, &mut arp), XdpAction::Pass);
        let mut bad_ihl = udp_frame([1, 1, 1, 1], [2, 2, 2, 2], 5, 6, 0);
        bad_ihl[14] = 0x44;
        assert_eq!(run_xdp(firewall, &mut bad_ihl), XdpAction::Drop);
        let mut truncated = tcp_frame([1, 1, 1, 1], [2, 2, 2, 2], 5, 6, 0);
        truncated.truncate(40);
        assert_eq!(run_xdp(firewall, &mut truncated), XdpAction::Pass);
    }
}
