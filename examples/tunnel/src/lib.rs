//! `tunnel`: IPv4-in-IPv4 (IPIP) at XDP, as L4 load balancers forward to their backends: the
//! packet grows and shrinks in place (`adjust_head`, `adjust_tail`) and the new header's checksum
//! comes from `csum_diff`. Built by `duet build` into `target/duet/tunnel.bpf.o` and `.wasm`.
//!
//! - `encap`: an IPv4 packet to an address in `VIPS` gets an outer IPv4 header (protocol 4, TTL
//!   64, from `CONFIG`'s source address to the VIP's backend) between its Ethernet header and its
//!   own, and goes back out (`XDP_TX`); other packets pass. Counted in `STATS[0]`.
//! - `decap`: an IPIP packet loses its outer header and passes on as the inner packet. Counted in
//!   `STATS[1]`; other packets pass untouched.
//! - `sample`: a packet longer than 128 bytes is cut to 128 (`STATS[2]` counts the cuts) and
//!   passes, as a sampler would keep headers only.
#![no_std]

use duet::net::{ETH_HLEN, EthHdr, Ipv4Hdr, csum_diff, csum_fold};
use duet::{Array, HashMap, XdpAction, XdpContext};

/// `IPPROTO_IPIP`.
pub const IPPROTO_IPIP: u8 = 4;
/// Length of an IPv4 header without options.
const IP_HLEN: usize = 20;
/// What `sample` keeps.
pub const SAMPLE_LEN: usize = 128;

/// `[0]`: the outer header's source address (network order, as a `u32` of its bytes).
#[duet::map]
static CONFIG: Array<[u8; 4]> = Array::with_max_entries(1, 0);

/// VIP -> backend (both network order).
#[duet::map]
static VIPS: HashMap<[u8; 4], [u8; 4]> = HashMap::with_max_entries(64, 0);

/// 0 encapsulated, 1 decapsulated, 2 cut by `sample`.
#[duet::map]
static STATS: Array<u64> = Array::with_max_entries(3, 0);

/// The outer IPv4 header for `inner_len` bytes of inner packet, its checksum filled in.
#[inline(always)]
fn outer_header(src: [u8; 4], dst: [u8; 4], inner_len: usize) -> [u8; IP_HLEN] {
    let total = ((IP_HLEN + inner_len) as u16).to_be_bytes();
    let mut h = [
        0x45,
        0,
        total[0],
        total[1],
        0,
        0,
        0x40,
        0,
        64,
        IPPROTO_IPIP,
        0,
        0,
        src[0],
        src[1],
        src[2],
        src[3],
        dst[0],
        dst[1],
        dst[2],
        dst[3],
    ];
    let check = csum_fold(csum_diff(&[], &h, 0)).to_ne_bytes();
    h[10] = check[0];
    h[11] = check[1];
    h
}

#[duet::xdp]
fn encap(ctx: XdpContext) -> XdpAction {
    let Some(ip) = ctx.ipv4() else { return XdpAction::Pass };
    let Some(backend) = VIPS.get(&ip.dst) else { return XdpAction::Pass };
    let Some(eth) = ctx.load::<EthHdr>(0) else { return XdpAction::Pass };
    let src = CONFIG.get(0).unwrap_or_default();
    let inner_len = ctx.len() - ETH_HLEN;
    if ctx.adjust_head(-(IP_HLEN as i32)).is_err() {
        return XdpAction::Aborted;
    }
    // [Ethernet][outer IPv4][inner IPv4 ...]: the Ethernet header moves to the new front.
    if ctx.store(0, &eth).is_none() || ctx.store(ETH_HLEN, &outer_header(src, backend, inner_len)).is_none() {
        return XdpAction::Aborted;
    }
    let _ = STATS.add_u64(0, 1);
    XdpAction::Tx
}

#[duet::xdp]
fn decap(ctx: XdpContext) -> XdpAction {
    let Some(ip) = ctx.ipv4() else { return XdpAction::Pass };
    if ip.protocol != IPPROTO_IPIP || ip.header_len() != IP_HLEN {
        return XdpAction::Pass;
    }
    let Some(eth) = ctx.load::<EthHdr>(0) else { return XdpAction::Pass };
    if ctx.load::<Ipv4Hdr>(ETH_HLEN + IP_HLEN).is_none() || ctx.adjust_head(IP_HLEN as i32).is_err() {
        return XdpAction::Pass;
    }
    if ctx.store(0, &eth).is_none() {
        return XdpAction::Aborted;
    }
    let _ = STATS.add_u64(1, 1);
    XdpAction::Pass
}

#[duet::xdp]
fn sample(ctx: XdpContext) -> XdpAction {
    let len = ctx.len();
    if len > SAMPLE_LEN && ctx.adjust_tail(-((len - SAMPLE_LEN) as i32)).is_ok() {
        let _ = STATS.add_u64(2, 1);
    }
    XdpAction::Pass
}

#[cfg(test)]
mod tests {
    extern crate std;

    use duet::testing::{run_xdp_frame, udp_frame};

    use super::*;

    fn checksum_ok(header: &[u8]) -> bool {
        let h: [u8; 20] = header.try_into().unwrap();
        csum_fold(csum_diff(&[], &h, 0)) == 0
    }

    #[test]
    fn encap_then_decap_gives_the_packet_back() {
        duet::testing::reset();
        CONFIG.set(0, &[192, 168, 0, 1]).unwrap();
        VIPS.insert(&[10, 0, 0, 100], &[172, 16, 0, 7], duet::BPF_ANY).unwrap();
        let original = udp_frame([10, 0, 0, 1], [10, 0, 0, 100], 4000, 80, 30);
        let mut frame = original.clone();
        assert_eq!(run_xdp_frame(encap, &mut frame), XdpAction::Tx);
        assert_eq!(frame.len(), original.len() + 20);
        assert_eq!(frame[..14], original[..14], "the Ethernet header moved to the front");
        let outer = &frame[14..34];
        assert_eq!(
            (outer[9], &outer[12..16], &outer[16..20]),
            (IPPROTO_IPIP, &[192, 168, 0, 1][..], &[172, 16, 0, 7][..])
        );
        assert_eq!(u16::from_be_bytes([outer[2], outer[3]]) as usize, original.len() - 14 + 20);
        assert!(checksum_ok(outer), "csum_diff made the outer checksum");
        assert_eq!(frame[34..], original[14..], "the inner packet is untouched");

        assert_eq!(run_xdp_frame(decap, &mut frame), XdpAction::Pass);
        assert_eq!(frame, original);
        assert_eq!((STATS.get(0), STATS.get(1)), (Some(1), Some(1)));
    }

    #[test]
    fn other_packets_pass_untouched_and_samples_are_cut() {
        duet::testing::reset();
        let mut other = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 4000, 80, 30);
        let before = other.clone();
        assert_eq!(run_xdp_frame(encap, &mut other), XdpAction::Pass);
        assert_eq!(run_xdp_frame(decap, &mut other), XdpAction::Pass);
        assert_eq!(other, before);
        let mut big = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 4000, 80, 500);
        assert_eq!(run_xdp_frame(sample, &mut big), XdpAction::Pass);
        assert_eq!(big.len(), SAMPLE_LEN);
        let mut small = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 4000, 80, 10);
        run_xdp_frame(sample, &mut small);
        assert_eq!(small.len(), 14 + 20 + 8 + 10);
        assert_eq!(STATS.get(2), Some(1));
    }
}
