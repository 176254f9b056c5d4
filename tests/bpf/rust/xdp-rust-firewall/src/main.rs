//! `xdp_rust_firewall`: an XDP firewall written with aya-ebpf, part of duet's test corpus.
//!
//! The same object must give the same verdicts and map contents in the Linux kernel and in
//! duet's userspace VM, so the program is deterministic (no time, no randomness) and every
//! packet access is bounds-checked in a form the kernel verifier accepts.
//!
//! Verdicts, decided in this order:
//! - `XDP_ABORTED` (0): a frame shorter than an Ethernet header (14 bytes; the kernel's
//!   `BPF_PROG_TEST_RUN` refuses such frames with EINVAL, so only duet's VM runs this case).
//! - `XDP_PASS` (2): anything that is not IPv4 by Ethernet type (ARP, IPv6, VLAN-tagged, ...).
//! - `XDP_ABORTED` (0): IPv4 with fewer than 20 header bytes in the frame, a version other than
//!   4, an IHL below 5, or an IHL longer than the frame.
//! - `XDP_DROP` (1): IPv4 whose source address is a key of `BLOCKLIST`, whatever follows.
//! - `XDP_PASS` (2): IPv4 that is not TCP or UDP, or a non-first fragment (fragment offset
//!   not 0) of any protocol.
//! - `XDP_ABORTED` (0): TCP or UDP whose header (20 or 8 bytes) is cut short by the frame end.
//! - `XDP_TX` (3): UDP to port 7 (echo), sent back with Ethernet source and destination swapped.
//! - `XDP_PASS` (2): every other TCP or UDP packet.
//!
//! Every packet adds one to `COUNTERS[verdict]` and to `PACKET_KINDS[kind]`; TCP and UDP packets
//! that reach a TX or PASS verdict add their frame length to `PORT_BYTES[destination port]`.
//!
//! Maps (all keys and values are in the host's byte order unless said otherwise):
//! - `BLOCKLIST`: hash, key `u32` (the IPv4 source address as it appears in the packet, i.e.
//!   in network byte order: 10.0.0.1 is the key bytes `0a 00 00 01`), value `u8` (ignored),
//!   1024 entries. Filled by userspace.
//! - `COUNTERS`: array, key `u32` verdict, value `u64` packets, 5 entries (one per XDP verdict
//!   from `XDP_ABORTED` to `XDP_REDIRECT`).
//! - `PORT_BYTES`: hash, key `u16` (the TCP/UDP destination port in network byte order: port 80
//!   is the key bytes `00 50`), value `u64` frame bytes, 1024 entries. Once it is full, new
//!   ports are not counted.
//! - `PACKET_KINDS`: per-CPU array, key `u32` ([`Kind`]: 0 not IPv4, 1 TCP, 2 UDP, 3 other
//!   IPv4, 4 malformed), value `u64` packets, 5 entries. The kernel runs `BPF_PROG_TEST_RUN`
//!   on whichever CPU the caller is on, so compare per-CPU values summed over CPUs.

#![no_std]
#![no_main]

use aya_ebpf::bindings::{BPF_NOEXIST, xdp_action};
use aya_ebpf::btf_maps::{Array, HashMap, PerCpuArray};
use aya_ebpf::macros::{btf_map, xdp};
use aya_ebpf::programs::XdpContext;

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const IPV4_MIN_HLEN: usize = 20;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const TCP_HLEN: usize = 20;
const UDP_HLEN: usize = 8;
const UDP_ECHO_PORT: u16 = 7;

/// IPv4 source addresses to drop.
#[btf_map]
static BLOCKLIST: HashMap<u32, u8, 1024> = HashMap::new();

/// Packets per verdict.
#[btf_map]
static COUNTERS: Array<u64, 5> = Array::new();

/// Frame bytes per TCP/UDP destination port.
#[btf_map]
static PORT_BYTES: HashMap<u16, u64, 1024> = HashMap::new();

/// Packets per [`Kind`], per CPU.
#[btf_map]
static PACKET_KINDS: PerCpuArray<u64, 5> = PerCpuArray::new();

/// What the parser found, as the index into `PACKET_KINDS`.
#[derive(Clone, Copy)]
#[repr(u32)]
enum Kind {
    /// Not IPv4 by Ethernet type.
    NotIpv4 = 0,
    /// TCP in IPv4, not a non-first fragment.
    Tcp = 1,
    /// UDP in IPv4, not a non-first fragment.
    Udp = 2,
    /// Any other IPv4 protocol, or a non-first fragment.
    OtherIpv4 = 3,
    /// A frame that ends the program with `XDP_ABORTED`.
    Malformed = 4,
}

#[xdp]
pub fn xdp_rust_firewall(ctx: XdpContext) -> u32 {
    let (verdict, kind) = filter(&ctx);
    count(&COUNTERS, verdict);
    if let Some(packets) = PACKET_KINDS.get_ptr_mut(kind as u32) {
        // SAFETY: the kernel returned a pointer to this CPU's slot, valid for the whole run.
        unsafe { *packets += 1 };
    }
    verdict
}

/// Parses the frame and decides its verdict.
#[inline(always)]
fn filter(ctx: &XdpContext) -> (u32, Kind) {
    let Some(eth) = load::<ETH_HLEN>(ctx, 0) else {
        return (xdp_action::XDP_ABORTED, Kind::Malformed);
    };
    if u16::from_be_bytes([eth[12], eth[13]]) != ETH_P_IP {
        return (xdp_action::XDP_PASS, Kind::NotIpv4);
    }

    let Some(ip) = load::<IPV4_MIN_HLEN>(ctx, ETH_HLEN) else {
        return (xdp_action::XDP_ABORTED, Kind::Malformed);
    };
    let version = ip[0] >> 4;
    // The IHL is 4 bits, so the header length is at most 60 bytes: a bound the verifier can
    // follow when it is added to the packet pointer below.
    let ip_hlen = usize::from(ip[0] & 0x0f) * 4;
    if version != 4 || ip_hlen < IPV4_MIN_HLEN || !fits(ctx, ETH_HLEN + ip_hlen) {
        return (xdp_action::XDP_ABORTED, Kind::Malformed);
    }

    // Only the first fragment (offset 0) carries the TCP/UDP header.
    let fragment_offset = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
    let kind = match ip[9] {
        IPPROTO_TCP if fragment_offset == 0 => Kind::Tcp,
        IPPROTO_UDP if fragment_offset == 0 => Kind::Udp,
        _ => Kind::OtherIpv4,
    };
    if is_blocked(u32::from_ne_bytes([ip[12], ip[13], ip[14], ip[15]])) {
        return (xdp_action::XDP_DROP, kind);
    }
    let l4_hlen = match kind {
        Kind::Tcp => TCP_HLEN,
        Kind::Udp => UDP_HLEN,
        _ => return (xdp_action::XDP_PASS, kind),
    };
    let l4_offset = ETH_HLEN + ip_hlen;
    if !fits(ctx, l4_offset + l4_hlen) {
        return (xdp_action::XDP_ABORTED, Kind::Malformed);
    }
    // Source and destination ports are the first four bytes of both TCP and UDP headers.
    let Some(ports) = load::<4>(ctx, l4_offset) else {
        return (xdp_action::XDP_ABORTED, Kind::Malformed);
    };
    let frame_len = (ctx.data_end() - ctx.data()) as u64;
    account_port(u16::from_ne_bytes([ports[2], ports[3]]), frame_len);

    if matches!(kind, Kind::Udp) && u16::from_be_bytes([ports[2], ports[3]]) == UDP_ECHO_PORT {
        swap_macs(ctx, &eth);
        return (xdp_action::XDP_TX, kind);
    }
    (xdp_action::XDP_PASS, kind)
}

/// Whether `saddr` (network byte order) is in `BLOCKLIST`.
///
/// Kept out of line on purpose: the corpus needs a bpf-to-bpf call.
#[inline(never)]
fn is_blocked(saddr: u32) -> bool {
    BLOCKLIST.get_ptr(saddr).is_some()
}

/// Adds `bytes` to the total of destination port `port` (network byte order).
///
/// Kept out of line on purpose: the corpus needs a bpf-to-bpf call.
#[inline(never)]
fn account_port(port: u16, bytes: u64) {
    match PORT_BYTES.get_ptr_mut(port) {
        // SAFETY: the kernel returned a pointer to the entry's value, valid for the whole run.
        Some(total) => unsafe { *total += bytes },
        // A full map (E2BIG) loses this port's bytes; that is the documented behaviour.
        None => {
            let _ = PORT_BYTES.insert(port, bytes, u64::from(BPF_NOEXIST));
        }
    }
}

/// Adds one to `map[index]`.
#[inline(always)]
fn count<const N: usize>(map: &Array<u64, N>, index: u32) {
    if let Some(value) = map.get_ptr_mut(index) {
        // SAFETY: the kernel returned a pointer to the element, valid for the whole run.
        unsafe { *value += 1 };
    }
}

/// Rewrites the Ethernet header with source and destination swapped, for `XDP_TX`.
#[inline(always)]
fn swap_macs(ctx: &XdpContext, eth: &[u8; ETH_HLEN]) {
    let mut swapped = *eth;
    swapped[..6].copy_from_slice(&eth[6..12]);
    swapped[6..12].copy_from_slice(&eth[..6]);
    // The packet pointer is reloaded after the helper calls above, so it is bounds-checked
    // again; the check cannot fail, as the header was read before.
    let data = ctx.data();
    if data + ETH_HLEN <= ctx.data_end() {
        // SAFETY: the 14 bytes at `data` lie inside the packet (checked just above).
        unsafe { core::ptr::write_unaligned(data as *mut [u8; ETH_HLEN], swapped) };
    }
}

/// Whether the frame holds at least `len` bytes.
#[inline(always)]
fn fits(ctx: &XdpContext, len: usize) -> bool {
    ctx.data() + len <= ctx.data_end()
}

/// Copies `N` packet bytes from `offset`, or returns `None` past the end of the frame.
#[inline(always)]
fn load<const N: usize>(ctx: &XdpContext, offset: usize) -> Option<[u8; N]> {
    let start = ctx.data() + offset;
    if start + N > ctx.data_end() {
        return None;
    }
    // SAFETY: the `N` bytes at `start` lie inside the packet (checked just above).
    Some(unsafe { core::ptr::read_unaligned(start as *const [u8; N]) })
}

/// License string the kernel reads from the `license` section; GPL-compatible so the corpus
/// may use GPL-only helpers.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // Nothing above can panic (fixed-size arrays, constant indices, no overflow checks), and
    // an infinite loop could never pass the verifier anyway; this is aya's conventional handler.
    loop {}
}
