//! A deterministic corpus of Ethernet frames for the kernel-vs-VM differential tests, and a pcap
//! writer for it.
//!
//! Every frame is built by code from fixed addresses, ports and payload patterns (no randomness,
//! no clock), so the corpus and the pcap file written from it are byte-identical on every run.
//! Besides normal TCP, UDP and ICMP traffic over IPv4 and IPv6 it holds the frames that exercise a
//! program's bounds checks: frames cut short in the middle of each header, a wrong IHL, a bad
//! header checksum, fragments, TTL 1, options and extension headers.
//!
//! Frames shorter than [`MIN_TEST_RUN_LEN`] are included on purpose: the kernel's
//! `BPF_PROG_TEST_RUN` refuses them with `EINVAL`, so a harness must expect that refusal (and
//! decide what duet does with them) rather than compare verdicts.
//!
//! Names are unique, stable and say what a frame is (`ipv4-tcp-22-syn`, `truncated-udp-header-38`):
//! a test that fails on one frame can name it.

use std::error::Error;
use std::time::Duration;

use etherparse::{
    ArpEthIpv4Packet, ArpOperation, ArpPacket, Ethernet2Header, IpFragOffset, IpHeaders, IpNumber, Ipv4Header,
    Ipv4Options, Ipv6Extensions, Ipv6FragmentHeader, Ipv6Header, Ipv6RawExtHeader, PacketBuilder, PacketBuilderStep,
    VlanId,
};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};

/// The shortest frame `BPF_PROG_TEST_RUN` accepts: one Ethernet header (`ETH_HLEN`).
pub const MIN_TEST_RUN_LEN: usize = 14;

/// The timestamp of the first frame [`write_pcap`] writes, in seconds since the Unix epoch
/// (2024-01-01T00:00:00Z); each later frame is one microsecond after the one before.
pub const PCAP_EPOCH_SECS: u64 = 1_704_067_200;

/// The corpus: `(name, frame)` pairs in a fixed order, at least 40 of them, names unique.
pub fn corpus() -> Vec<(String, Vec<u8>)> {
    // Every input below is a constant of this file, so building can only fail if someone edits a
    // frame into something etherparse cannot represent; the unit tests build the whole corpus.
    build().expect("the fixed packet corpus builds (see the unit tests in duet-testdata)")
}

/// Writes `frames` as a classic pcap file (Ethernet link type, microsecond timestamps starting
/// at [`PCAP_EPOCH_SECS`], one microsecond apart), so the output is byte-identical between runs.
pub fn write_pcap(w: impl std::io::Write, frames: &[Vec<u8>]) -> Result<(), PcapError> {
    let header = PcapHeader {
        version_major: 2,
        version_minor: 4,
        ts_correction: 0,
        ts_accuracy: 0,
        snaplen: 65535,
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::MicroSecond,
        endianness: Endianness::Little,
    };
    let mut writer = PcapWriter::with_header(w, header)?;
    let mut timestamp = Duration::from_secs(PCAP_EPOCH_SECS);
    for frame in frames {
        // A frame longer than u32::MAX cannot be stored; pcap_file reports it as an error when
        // it checks the data against the snap length, so saturating here loses nothing.
        let orig_len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        writer.write_packet(&PcapPacket::new(timestamp, orig_len, frame))?;
        timestamp += Duration::from_micros(1);
    }
    Ok(())
}

// === The addresses and ports the corpus uses ===

type BuildResult<T> = Result<T, Box<dyn Error>>;

const MAC_CLIENT: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const MAC_ROUTER: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0xfe];
const MAC_BROADCAST: [u8; 6] = [0xff; 6];

const NET10_A: [u8; 4] = [10, 0, 0, 1];
const NET10_B: [u8; 4] = [10, 1, 2, 3];
const LAN1_A: [u8; 4] = [192, 168, 1, 10];
const LAN1_B: [u8; 4] = [192, 168, 1, 20];
const LAN1_GATEWAY: [u8; 4] = [192, 168, 1, 1];
const LAN2_A: [u8; 4] = [192, 168, 2, 5];
const LAN2_B: [u8; 4] = [192, 168, 2, 77];
const OTHER: [u8; 4] = [172, 16, 0, 9];
const DNS: [u8; 4] = [8, 8, 8, 8];

const V6_A: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const V6_B: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const V6_ULA: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];

const TTL: u8 = 64;
const WINDOW: u16 = 64240;

/// Evaluates a fallible `const fn` at compile time, so a bad constant fails the build, not a run.
macro_rules! const_ok {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(_) => panic!("invalid constant"),
        }
    };
}

const VLAN_10: VlanId = const_ok!(VlanId::try_new(10));
const VLAN_20: VlanId = const_ok!(VlanId::try_new(20));
const VLAN_100: VlanId = const_ok!(VlanId::try_new(100));
const VLAN_200: VlanId = const_ok!(VlanId::try_new(200));

// === Building blocks ===

/// A TCP segment's addressing and flags.
#[derive(Clone, Copy, Debug)]
struct Tcp {
    sport: u16,
    dport: u16,
    syn: bool,
    fin: bool,
}

impl Tcp {
    fn data(sport: u16, dport: u16) -> Tcp {
        Tcp { sport, dport, syn: false, fin: false }
    }

    fn syn(sport: u16, dport: u16) -> Tcp {
        Tcp { syn: true, ..Tcp::data(sport, dport) }
    }

    fn fin(sport: u16, dport: u16) -> Tcp {
        Tcp { fin: true, ..Tcp::data(sport, dport) }
    }
}

/// `len` bytes of a fixed pattern; `seed` makes different frames' payloads differ.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn eth() -> PacketBuilderStep<Ethernet2Header> {
    PacketBuilder::ethernet2(MAC_CLIENT, MAC_ROUTER)
}

/// An IPv4 header for the builder; it fills in the length, protocol and checksum.
fn ipv4_header(src: [u8; 4], dst: [u8; 4], ttl: u8) -> Ipv4Header {
    Ipv4Header { source: src, destination: dst, time_to_live: ttl, ..Default::default() }
}

fn ipv6_header(src: [u8; 16], dst: [u8; 16], hop_limit: u8) -> Ipv6Header {
    Ipv6Header { source: src, destination: dst, hop_limit, ..Default::default() }
}

/// Finishes a TCP builder step with the segment's flags and writes it.
fn write_tcp(step: PacketBuilderStep<IpHeaders>, tcp: Tcp, payload: &[u8]) -> BuildResult<Vec<u8>> {
    let mut step = step.tcp(tcp.sport, tcp.dport, 0x1000_0000 + u32::from(tcp.dport), WINDOW);
    if tcp.syn {
        step = step.syn();
    } else {
        step = step.ack(0x2000_0000 + u32::from(tcp.sport));
        if tcp.fin {
            step = step.fin();
        } else if !payload.is_empty() {
            step = step.psh();
        }
    }
    let mut out = Vec::with_capacity(step.size(payload.len()));
    step.write(&mut out, payload)?;
    Ok(out)
}

fn write_udp(step: PacketBuilderStep<IpHeaders>, sport: u16, dport: u16, payload: &[u8]) -> BuildResult<Vec<u8>> {
    let step = step.udp(sport, dport);
    let mut out = Vec::with_capacity(step.size(payload.len()));
    step.write(&mut out, payload)?;
    Ok(out)
}

/// Writes an IP packet whose payload is `payload` as is, with `proto` as the protocol number.
fn write_raw_ip(step: PacketBuilderStep<IpHeaders>, proto: IpNumber, payload: &[u8]) -> BuildResult<Vec<u8>> {
    let mut out = Vec::with_capacity(step.size(payload.len()));
    step.write(&mut out, proto, payload)?;
    Ok(out)
}

fn tcp4(src: [u8; 4], dst: [u8; 4], tcp: Tcp, payload: &[u8]) -> BuildResult<Vec<u8>> {
    write_tcp(eth().ipv4(src, dst, TTL), tcp, payload)
}

fn udp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> BuildResult<Vec<u8>> {
    write_udp(eth().ipv4(src, dst, TTL), sport, dport, payload)
}

fn icmp4_echo(src: [u8; 4], dst: [u8; 4], request: bool, seq: u16) -> BuildResult<Vec<u8>> {
    let payload = pattern(56, seq as u8);
    let ip = eth().ipv4(src, dst, TTL);
    let step = if request { ip.icmpv4_echo_request(0x0d0e, seq) } else { ip.icmpv4_echo_reply(0x0d0e, seq) };
    let mut out = Vec::with_capacity(step.size(payload.len()));
    step.write(&mut out, &payload)?;
    Ok(out)
}

fn icmp6_echo(src: [u8; 16], dst: [u8; 16], request: bool, seq: u16) -> BuildResult<Vec<u8>> {
    icmp6_echo_on(eth().ip(IpHeaders::Ipv6(ipv6_header(src, dst, TTL), Default::default())), request, seq)
}

fn icmp6_echo_on(ip: PacketBuilderStep<IpHeaders>, request: bool, seq: u16) -> BuildResult<Vec<u8>> {
    let payload = pattern(56, seq as u8);
    let step = if request { ip.icmpv6_echo_request(0x0d0e, seq) } else { ip.icmpv6_echo_reply(0x0d0e, seq) };
    let mut out = Vec::with_capacity(step.size(payload.len()));
    step.write(&mut out, &payload)?;
    Ok(out)
}

/// An IPv4 packet with the given options (a multiple of 4 bytes, at most 40).
fn ipv4_with_options(src: [u8; 4], dst: [u8; 4], options: &[u8]) -> BuildResult<PacketBuilderStep<IpHeaders>> {
    let header = Ipv4Header { options: Ipv4Options::try_from(options)?, ..ipv4_header(src, dst, TTL) };
    Ok(eth().ip(IpHeaders::Ipv4(header, Default::default())))
}

fn ipv4_fragment(offset_units: u16, more_fragments: bool) -> BuildResult<PacketBuilderStep<IpHeaders>> {
    let header = Ipv4Header {
        identification: 0x4242,
        dont_fragment: false,
        more_fragments,
        fragment_offset: IpFragOffset::try_new(offset_units)?,
        ..ipv4_header(LAN2_A, NET10_A, TTL)
    };
    Ok(eth().ip(IpHeaders::Ipv4(header, Default::default())))
}

fn ipv6(src: [u8; 16], dst: [u8; 16], hop_limit: u8) -> PacketBuilderStep<IpHeaders> {
    eth().ip(IpHeaders::Ipv6(ipv6_header(src, dst, hop_limit), Default::default()))
}

fn ipv6_with(exts: Ipv6Extensions) -> PacketBuilderStep<IpHeaders> {
    eth().ip(IpHeaders::Ipv6(ipv6_header(V6_A, V6_B, TTL), exts))
}

/// An options extension header (hop-by-hop or destination) holding a PadN option: 8 bytes.
fn padn_ext() -> BuildResult<Ipv6RawExtHeader> {
    // The builder fills in the next-header field; the payload excludes it and the length byte.
    Ok(Ipv6RawExtHeader::new_raw(IpNumber::UDP, &[1, 4, 0, 0, 0, 0])?)
}

fn arp(operation: ArpOperation, dst_mac: [u8; 6], target_mac: [u8; 6]) -> BuildResult<Vec<u8>> {
    let packet: ArpPacket = ArpEthIpv4Packet {
        operation,
        sender_mac: MAC_CLIENT,
        sender_ipv4: LAN1_A,
        target_mac,
        target_ipv4: LAN1_GATEWAY,
    }
    .into();
    let step = PacketBuilder::ethernet2(MAC_CLIENT, dst_mac).arp(packet);
    let mut out = Vec::with_capacity(step.size());
    step.write(&mut out)?;
    Ok(out)
}

/// A bare Ethernet header with the given EtherType, followed by `payload`.
fn eth_raw(ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(14 + payload.len());
    out.extend(MAC_ROUTER);
    out.extend(MAC_CLIENT);
    out.extend(ether_type.to_be_bytes());
    out.extend(payload);
    out
}

/// The first `len` bytes of `frame`.
fn cut(frame: &[u8], len: usize) -> Vec<u8> {
    frame[..len.min(frame.len())].to_vec()
}

/// `frame` with the byte at `offset` replaced.
fn with_byte(mut frame: Vec<u8>, offset: usize, value: u8) -> Vec<u8> {
    if let Some(byte) = frame.get_mut(offset) {
        *byte = value;
    }
    frame
}

// === The corpus ===

/// Offsets into an untagged IPv4 frame.
const IPV4_VERSION_IHL: usize = 14;
const IPV4_CHECKSUM: usize = 14 + 10;

fn build() -> BuildResult<Vec<(String, Vec<u8>)>> {
    let mut frames: Vec<(&str, Vec<u8>)> = Vec::new();
    let http_get = b"GET / HTTP/1.1\r\nHost: duet.test\r\n\r\n";
    // A DNS query for `duet.test`, type A: header, name, type, class.
    let dns_query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04duet\x04test\x00\x00\x01\x00\x01";

    // IPv4 TCP to and from 10.0.0.0/8, 192.168.1.0/24, 192.168.2.0/24 and elsewhere.
    frames.push(("ipv4-tcp-22-syn", tcp4(NET10_A, LAN1_A, Tcp::syn(40000, 22), &[])?));
    frames.push(("ipv4-tcp-22-reply", tcp4(LAN1_A, NET10_A, Tcp::data(22, 40000), &pattern(32, 1))?));
    frames.push(("ipv4-tcp-80-http-get", tcp4(LAN1_B, NET10_B, Tcp::data(40001, 80), http_get)?));
    frames.push(("ipv4-tcp-443-tls", tcp4(LAN2_A, NET10_A, Tcp::data(40002, 443), &pattern(64, 2))?));
    frames.push(("ipv4-tcp-8080-from-net10", tcp4(NET10_B, LAN2_B, Tcp::data(40003, 8080), &pattern(16, 3))?));
    frames.push(("ipv4-tcp-8080-from-lan1", tcp4(LAN1_A, NET10_A, Tcp::data(40004, 8080), &pattern(16, 4))?));
    frames.push(("ipv4-tcp-23-telnet", tcp4(OTHER, LAN1_B, Tcp::data(40005, 23), b"login\r\n")?));
    frames.push(("ipv4-tcp-443-fin-lan2-to-lan1", tcp4(LAN2_B, LAN1_A, Tcp::fin(40006, 443), &[])?));

    // IPv4 UDP.
    frames.push(("ipv4-udp-53-dns-query", udp4(LAN1_B, DNS, 53000, 53, dns_query)?));
    frames.push(("ipv4-udp-53-dns-reply", udp4(DNS, LAN1_B, 53, 53000, &pattern(48, 5))?));
    frames.push(("ipv4-udp-53-from-net10", udp4(NET10_A, LAN2_A, 53001, 53, dns_query)?));
    frames.push(("ipv4-udp-8080", udp4(LAN2_A, NET10_B, 40007, 8080, &pattern(20, 6))?));
    frames.push(("ipv4-udp-443-quic", udp4(NET10_B, LAN1_A, 40008, 443, &pattern(100, 7))?));
    frames.push(("ipv4-udp-22-zero-payload", udp4(LAN1_A, NET10_A, 40009, 22, &[])?));
    let mut padded = udp4(OTHER, LAN2_B, 40010, 53, &pattern(4, 8))?;
    padded.resize(60, 0);
    frames.push(("ipv4-udp-53-padded-to-60", padded));

    // IPv4 ICMP and another protocol.
    frames.push(("ipv4-icmp-echo-request", icmp4_echo(NET10_A, LAN1_A, true, 1)?));
    frames.push(("ipv4-icmp-echo-reply", icmp4_echo(LAN1_A, NET10_A, false, 1)?));
    let unreachable = eth().ipv4(LAN2_A, NET10_B, TTL).icmpv4_raw(3, 3, [0; 4]);
    let mut frame = Vec::new();
    unreachable.write(&mut frame, &pattern(28, 9))?;
    frames.push(("ipv4-icmp-port-unreachable", frame));
    frames.push(("ipv4-gre", write_raw_ip(eth().ipv4(NET10_A, NET10_B, TTL), IpNumber::GRE, &pattern(24, 10))?));

    // VLAN tags: one 802.1Q tag, and QinQ (an 802.1ad tag around an 802.1Q tag).
    frames.push((
        "vlan-100-ipv4-tcp-80",
        write_tcp(eth().single_vlan(VLAN_100).ipv4(LAN1_A, NET10_A, TTL), Tcp::data(40011, 80), http_get)?,
    ));
    frames.push((
        "vlan-200-ipv4-udp-53",
        write_udp(eth().single_vlan(VLAN_200).ipv4(LAN2_A, NET10_A, TTL), 53002, 53, dns_query)?,
    ));
    let v6_in_vlan = eth().single_vlan(VLAN_100).ip(IpHeaders::Ipv6(ipv6_header(V6_A, V6_B, TTL), Default::default()));
    frames.push(("vlan-100-ipv6-tcp-443", write_tcp(v6_in_vlan, Tcp::data(40012, 443), &pattern(40, 11))?));
    let qinq = eth().double_vlan(VLAN_10, VLAN_20).ipv4(NET10_A, LAN2_B, TTL).icmpv4_echo_request(0x0d0e, 2);
    let mut frame = Vec::new();
    qinq.write(&mut frame, &pattern(56, 12))?;
    frames.push(("qinq-ipv4-icmp-echo-request", frame));

    // IPv4 options (IHL > 5).
    let nop_rr = [1, 7, 7, 4, 0, 0, 0, 0];
    frames.push((
        "ipv4-options-nop-rr-tcp-22",
        write_tcp(ipv4_with_options(NET10_A, LAN1_A, &nop_rr)?, Tcp::syn(40013, 22), &[])?,
    ));
    let router_alert = [148, 4, 0, 0];
    frames.push((
        "ipv4-options-router-alert-udp-53",
        write_udp(ipv4_with_options(LAN1_B, NET10_B, &router_alert)?, 53003, 53, dns_query)?,
    ));
    let lsrr = [131, 11, 4, 10, 0, 0, 254, 192, 168, 1, 1, 0];
    let lsrr_frame = write_tcp(ipv4_with_options(OTHER, LAN2_A, &lsrr)?, Tcp::data(40014, 80), http_get)?;
    frames.push(("ipv4-options-lsrr-tcp-80", lsrr_frame.clone()));
    let timestamp = [68, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let ts_step = ipv4_with_options(NET10_B, LAN1_B, &timestamp)?.icmpv4_echo_request(0x0d0e, 3);
    let mut frame = Vec::new();
    ts_step.write(&mut frame, &pattern(56, 13))?;
    frames.push(("ipv4-options-timestamp-icmp-echo-request", frame));
    let mut rr_max = [0u8; 40];
    rr_max[..3].copy_from_slice(&[7, 39, 4]);
    frames.push((
        "ipv4-options-40-bytes-tcp-443",
        write_tcp(ipv4_with_options(LAN2_B, NET10_A, &rr_max)?, Tcp::data(40015, 443), &pattern(8, 14))?,
    ));
    frames.push((
        "ipv4-options-nops-udp-8080",
        write_udp(ipv4_with_options(LAN1_A, LAN2_A, &[1, 1, 1, 1])?, 40016, 8080, &pattern(8, 15))?,
    ));
    frames.push((
        "ipv4-options-bad-length-udp-53",
        write_udp(ipv4_with_options(LAN2_A, NET10_A, &[68, 1, 0, 0])?, 53004, 53, dns_query)?,
    ));
    frames.push((
        "ipv4-options-overrun-tcp-22",
        write_tcp(ipv4_with_options(NET10_B, LAN1_A, &[68, 20, 5, 0])?, Tcp::syn(40017, 22), &[])?,
    ));

    // Fragments: first (with the UDP header), middle and last (payload bytes only).
    frames.push(("ipv4-fragment-first-udp-53", write_udp(ipv4_fragment(0, true)?, 53005, 53, &pattern(64, 16))?));
    frames.push(("ipv4-fragment-middle", write_raw_ip(ipv4_fragment(9, true)?, IpNumber::UDP, &pattern(64, 17))?));
    frames.push(("ipv4-fragment-last", write_raw_ip(ipv4_fragment(17, false)?, IpNumber::UDP, &pattern(40, 18))?));

    // TTL edge cases.
    frames.push(("ipv4-ttl-1-udp-53", write_udp(eth().ipv4(NET10_A, LAN1_A, 1), 53006, 53, dns_query)?));
    frames.push(("ipv4-ttl-2-tcp-22", write_tcp(eth().ipv4(LAN2_B, NET10_B, 2), Tcp::syn(40018, 22), &[])?));
    frames.push(("ipv4-ttl-0-icmp-echo-request", {
        let step = eth().ipv4(OTHER, LAN1_B, 0).icmpv4_echo_request(0x0d0e, 4);
        let mut frame = Vec::new();
        step.write(&mut frame, &pattern(56, 19))?;
        frame
    }));

    // Broken IPv4 headers.
    let good = tcp4(LAN1_B, NET10_B, Tcp::data(40019, 80), http_get)?;
    let mut bad_checksum = good.clone();
    bad_checksum[IPV4_CHECKSUM] ^= 0x5a;
    frames.push(("ipv4-bad-checksum-tcp-80", bad_checksum));
    frames.push(("ipv4-ihl-4-tcp-80", with_byte(good.clone(), IPV4_VERSION_IHL, 0x44)));
    let dns_frame = udp4(NET10_A, LAN2_A, 53007, 53, dns_query)?;
    frames.push(("ipv4-ihl-0-udp-53", with_byte(dns_frame.clone(), IPV4_VERSION_IHL, 0x40)));
    frames.push(("ipv4-ihl-15-past-end-udp-53", with_byte(cut(&dns_frame, 14 + 20 + 8), IPV4_VERSION_IHL, 0x4f)));
    frames.push(("ipv4-version-5-tcp-80", with_byte(good.clone(), IPV4_VERSION_IHL, 0x55)));

    // Frames cut short inside each header. The first two are shorter than an Ethernet header.
    frames.push(("short-6-bytes", cut(&good, 6)));
    frames.push(("short-13-bytes", cut(&good, 13)));
    frames.push(("eth-only-14-ipv4", eth_raw(0x0800, &[])));
    frames.push(("eth-only-14-ipv6", eth_raw(0x86dd, &[])));
    frames.push(("eth-only-14-vlan", eth_raw(0x8100, &[])));
    frames.push(("eth-only-14-arp", eth_raw(0x0806, &[])));
    let vlan_frame = write_udp(eth().single_vlan(VLAN_100).ipv4(LAN1_A, NET10_A, TTL), 53008, 53, dns_query)?;
    frames.push(("truncated-vlan-tag-16", cut(&vlan_frame, 16)));
    frames.push(("truncated-vlan-ipv4-header-30", cut(&vlan_frame, 30)));
    frames.push(("truncated-ipv4-header-24", cut(&good, 24)));
    frames.push(("truncated-ipv4-options-40", cut(&lsrr_frame, 40)));
    frames.push(("truncated-tcp-header-44", cut(&good, 14 + 20 + 10)));
    frames.push(("truncated-udp-header-38", cut(&dns_frame, 14 + 20 + 4)));
    frames.push(("truncated-icmp-35", cut(&icmp4_echo(NET10_A, LAN1_A, true, 5)?, 14 + 20 + 1)));
    let v6_tcp = write_tcp(ipv6(V6_A, V6_B, TTL), Tcp::data(40020, 443), &pattern(40, 20))?;
    frames.push(("truncated-ipv6-header-44", cut(&v6_tcp, 14 + 30)));
    frames.push(("truncated-ipv6-tcp-62", cut(&v6_tcp, 14 + 40 + 8)));
    let hop_by_hop = Ipv6Extensions { hop_by_hop_options: Some(padn_ext()?), ..Default::default() };
    let hbh_frame = write_udp(ipv6_with(hop_by_hop.clone()), 53009, 53, dns_query)?;
    frames.push(("truncated-ipv6-hop-by-hop-55", cut(&hbh_frame, 14 + 40 + 1)));
    frames.push(("truncated-arp-20", cut(&arp(ArpOperation::REQUEST, MAC_BROADCAST, [0; 6])?, 20)));

    // IPv6.
    frames.push(("ipv6-tcp-443", v6_tcp));
    frames.push(("ipv6-tcp-22-syn", write_tcp(ipv6(V6_B, V6_A, TTL), Tcp::syn(40021, 22), &[])?));
    frames.push(("ipv6-tcp-8080", write_tcp(ipv6(V6_ULA, V6_A, TTL), Tcp::data(40022, 8080), &pattern(16, 21))?));
    frames.push(("ipv6-udp-53", write_udp(ipv6(V6_A, V6_ULA, TTL), 53010, 53, dns_query)?));
    frames.push(("ipv6-udp-8080", write_udp(ipv6(V6_ULA, V6_B, TTL), 40023, 8080, &pattern(12, 22))?));
    frames.push(("ipv6-icmpv6-echo-request", icmp6_echo(V6_A, V6_B, true, 6)?));
    frames.push(("ipv6-icmpv6-echo-reply", icmp6_echo(V6_B, V6_A, false, 6)?));
    frames.push(("ipv6-hop-limit-1-tcp-80", write_tcp(ipv6(V6_A, V6_B, 1), Tcp::data(40024, 80), http_get)?));
    frames.push(("ipv6-hop-by-hop-udp-53", hbh_frame));
    let dest_opts = Ipv6Extensions { destination_options: Some(padn_ext()?), ..Default::default() };
    frames.push(("ipv6-dest-opts-tcp-80", write_tcp(ipv6_with(dest_opts), Tcp::data(40025, 80), http_get)?));
    let two_exts = Ipv6Extensions {
        hop_by_hop_options: Some(padn_ext()?),
        destination_options: Some(padn_ext()?),
        ..Default::default()
    };
    frames.push(("ipv6-hop-by-hop-dest-opts-icmpv6-echo-request", icmp6_echo_on(ipv6_with(two_exts), true, 7)?));
    let fragment = Ipv6Extensions {
        fragment: Some(Ipv6FragmentHeader::new(IpNumber::UDP, IpFragOffset::ZERO, true, 0x4243)),
        ..Default::default()
    };
    frames.push(("ipv6-fragment-first-udp-53", write_udp(ipv6_with(fragment), 53011, 53, dns_query)?));

    // ARP and another EtherType.
    frames.push(("arp-request", arp(ArpOperation::REQUEST, MAC_BROADCAST, [0; 6])?));
    frames.push(("arp-reply", arp(ArpOperation::REPLY, MAC_ROUTER, MAC_ROUTER)?));
    frames.push(("lldp-60", eth_raw(0x88cc, &pattern(46, 23))));

    // Full-MTU frames: 1500 bytes of IP, 1514 bytes on the wire.
    frames.push(("ipv4-udp-53-1472-payload", udp4(LAN1_A, NET10_A, 53012, 53, &pattern(1472, 24))?));
    frames.push((
        "ipv6-tcp-443-1440-payload",
        write_tcp(ipv6(V6_A, V6_B, TTL), Tcp::data(40026, 443), &pattern(1440, 25))?,
    ));

    Ok(frames.into_iter().map(|(name, frame)| (name.to_owned(), frame)).collect())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    use pcap_file::pcap::PcapReader;

    use super::*;

    fn frame<'a>(frames: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
        frames.iter().find(|(n, _)| n == name).map(|(_, f)| f.as_slice()).unwrap_or_else(|| panic!("no frame {name}"))
    }

    #[test]
    fn corpus_is_deterministic_with_unique_names() {
        let frames = corpus();
        assert_eq!(frames, corpus());
        assert!(frames.len() >= 40, "only {} frames", frames.len());
        let names: HashSet<&str> = frames.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.len(), frames.len(), "duplicate names");
    }

    #[test]
    fn corpus_has_the_edge_cases_it_promises() {
        let frames = corpus();
        let lens: Vec<usize> = frames.iter().map(|(_, f)| f.len()).collect();
        assert!(lens.iter().filter(|&&l| l < MIN_TEST_RUN_LEN).count() >= 2);
        assert!(lens.iter().filter(|&&l| l == MIN_TEST_RUN_LEN).count() >= 3);
        assert!(lens.contains(&1514));
        assert_eq!(frame(&frames, "truncated-tcp-header-44").len(), 44);
        assert_eq!(frame(&frames, "ipv4-options-40-bytes-tcp-443")[IPV4_VERSION_IHL], 0x4f);
        assert_eq!(frame(&frames, "ipv4-ihl-4-tcp-80")[IPV4_VERSION_IHL], 0x44);
        // VLAN-tagged frames carry the 802.1Q EtherType, QinQ the 802.1ad one.
        assert_eq!(frame(&frames, "vlan-100-ipv4-tcp-80")[12..14], [0x81, 0x00]);
        assert_eq!(frame(&frames, "qinq-ipv4-icmp-echo-request")[12..14], [0x88, 0xa8]);
    }

    #[test]
    fn well_formed_frames_parse_as_intended() {
        let frames = corpus();
        let ports = |name: &str| match SlicedPacket::from_ethernet(frame(&frames, name)).map(|p| p.transport) {
            Ok(Some(TransportSlice::Tcp(t))) => (t.source_port(), t.destination_port()),
            Ok(Some(TransportSlice::Udp(u))) => (u.source_port(), u.destination_port()),
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(ports("ipv4-tcp-22-syn").1, 22);
        assert_eq!(ports("vlan-100-ipv4-tcp-80").1, 80);
        assert_eq!(ports("ipv4-options-lsrr-tcp-80").1, 80);
        assert_eq!(ports("ipv6-hop-by-hop-udp-53").1, 53);
        assert_eq!(ports("ipv6-dest-opts-tcp-80").1, 80);
        assert_eq!(ports("ipv4-udp-53-padded-to-60").1, 53);
        let packet = SlicedPacket::from_ethernet(frame(&frames, "ipv4-fragment-middle")).unwrap();
        match packet.net {
            Some(NetSlice::Ipv4(ip)) => assert!(ip.header().is_fragmenting_payload()),
            other => panic!("{other:?}"),
        }
        // The checksums etherparse computed are right, and the broken one is not.
        let checksum_ok = |name: &str| {
            let f = frame(&frames, name);
            let header = Ipv4Header::from_slice(&f[14..]).unwrap().0;
            header.calc_header_checksum() == header.header_checksum
        };
        assert!(checksum_ok("ipv4-tcp-80-http-get"));
        assert!(checksum_ok("ipv4-options-timestamp-icmp-echo-request"));
        assert!(!checksum_ok("ipv4-bad-checksum-tcp-80"));
    }

    #[test]
    fn pcap_round_trips_and_is_byte_identical() {
        let frames: Vec<Vec<u8>> = corpus().into_iter().map(|(_, f)| f).collect();
        let mut first = Vec::new();
        write_pcap(&mut first, &frames).unwrap();
        let mut second = Vec::new();
        write_pcap(&mut second, &frames).unwrap();
        assert_eq!(first, second);

        let mut reader = PcapReader::new(first.as_slice()).unwrap();
        assert_eq!(reader.header().datalink, DataLink::ETHERNET);
        let mut read = Vec::new();
        while let Some(packet) = reader.next_packet() {
            let packet = packet.unwrap();
            let expected = Duration::from_secs(PCAP_EPOCH_SECS) + Duration::from_micros(read.len() as u64);
            assert_eq!(packet.timestamp, expected);
            assert_eq!(packet.orig_len as usize, packet.data.len());
            read.push(packet.data.into_owned());
        }
        assert_eq!(read, frames);
    }
}
