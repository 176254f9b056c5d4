//! Packet headers as plain byte layouts: every field is a byte array in network order, with
//! accessors that decode it, so the structs have alignment 1 and can be read at any offset.

use crate::pod::Pod;

/// Length of an Ethernet header.
pub const ETH_HLEN: usize = 14;
/// Ethernet type of IPv4.
pub const ETH_P_IP: u16 = 0x0800;
/// Ethernet type of IPv6.
pub const ETH_P_IPV6: u16 = 0x86dd;
/// Ethernet type of ARP.
pub const ETH_P_ARP: u16 = 0x0806;
/// IP protocol number of ICMP.
pub const IPPROTO_ICMP: u8 = 1;
/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;

/// An Ethernet header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct EthHdr {
    /// Destination MAC address.
    pub dst: [u8; 6],
    /// Source MAC address.
    pub src: [u8; 6],
    /// Ethernet type, big-endian.
    pub ether_type: [u8; 2],
}

impl EthHdr {
    /// The Ethernet type (`ETH_P_IP`, ...).
    #[inline(always)]
    pub fn ether_type(&self) -> u16 {
        u16::from_be_bytes(self.ether_type)
    }
}

/// The fixed 20 bytes of an IPv4 header (options follow when [`Ipv4Hdr::header_len`] > 20).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Ipv4Hdr {
    /// Version (high nibble) and header length in 32-bit words (low nibble).
    pub version_ihl: u8,
    /// DSCP and ECN.
    pub tos: u8,
    /// Total length, big-endian.
    pub total_len: [u8; 2],
    /// Identification.
    pub id: [u8; 2],
    /// Flags and fragment offset, big-endian.
    pub frag_off: [u8; 2],
    /// Time to live.
    pub ttl: u8,
    /// The protocol that follows (`IPPROTO_TCP`, ...).
    pub protocol: u8,
    /// Header checksum.
    pub check: [u8; 2],
    /// Source address, in packet (network) order.
    pub src: [u8; 4],
    /// Destination address, in packet (network) order.
    pub dst: [u8; 4],
}

impl Ipv4Hdr {
    /// The IP version (4).
    #[inline(always)]
    pub fn version(&self) -> u8 {
        self.version_ihl >> 4
    }

    /// The header length in bytes (20..=60 for a valid header). At most 60, a bound the kernel
    /// verifier can follow when it is added to a packet offset.
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        usize::from(self.version_ihl & 0x0f) * 4
    }

    /// The fragment offset in 8-byte units: 0 for an unfragmented packet or a first fragment.
    #[inline(always)]
    pub fn fragment_offset(&self) -> u16 {
        u16::from_be_bytes(self.frag_off) & 0x1fff
    }

    /// The total length field.
    #[inline(always)]
    pub fn total_len(&self) -> u16 {
        u16::from_be_bytes(self.total_len)
    }

    /// The source address as a number (10.0.0.1 is `0x0a00_0001`).
    #[inline(always)]
    pub fn src_addr(&self) -> u32 {
        u32::from_be_bytes(self.src)
    }

    /// The destination address as a number.
    #[inline(always)]
    pub fn dst_addr(&self) -> u32 {
        u32::from_be_bytes(self.dst)
    }
}

/// The ports at the start of both TCP and UDP headers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Ports {
    /// Source port, big-endian.
    pub src: [u8; 2],
    /// Destination port, big-endian.
    pub dst: [u8; 2],
}

impl Ports {
    /// The source port.
    #[inline(always)]
    pub fn src_port(&self) -> u16 {
        u16::from_be_bytes(self.src)
    }

    /// The destination port.
    #[inline(always)]
    pub fn dst_port(&self) -> u16 {
        u16::from_be_bytes(self.dst)
    }
}

/// A UDP header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct UdpHdr {
    /// Source and destination ports.
    pub ports: Ports,
    /// Length, big-endian.
    pub len: [u8; 2],
    /// Checksum.
    pub check: [u8; 2],
}

/// The fixed 20 bytes of a TCP header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct TcpHdr {
    /// Source and destination ports.
    pub ports: Ports,
    /// Sequence number.
    pub seq: [u8; 4],
    /// Acknowledgment number.
    pub ack: [u8; 4],
    /// Data offset (high nibble) and reserved bits.
    pub data_off: u8,
    /// Flags (FIN, SYN, RST, PSH, ACK, URG, ECE, CWR from the low bit up).
    pub flags: u8,
    /// Window size.
    pub window: [u8; 2],
    /// Checksum.
    pub check: [u8; 2],
    /// Urgent pointer.
    pub urg_ptr: [u8; 2],
}

impl TcpHdr {
    /// The SYN flag.
    pub const SYN: u8 = 0x02;
    /// The FIN flag.
    pub const FIN: u8 = 0x01;
    /// The RST flag.
    pub const RST: u8 = 0x04;
}

// SAFETY: each header is `repr(C)` of byte arrays and bytes (alignment 1, so no padding), and
// every bit pattern is valid.
unsafe impl Pod for EthHdr {}
// SAFETY: as above.
unsafe impl Pod for Ipv4Hdr {}
// SAFETY: as above.
unsafe impl Pod for Ports {}
// SAFETY: as above.
unsafe impl Pod for UdpHdr {}
// SAFETY: as above.
unsafe impl Pod for TcpHdr {}

// === checksums ===

/// `bpf_csum_diff`: the 32-bit one's-complement sum of `seed`, the negated 32-bit words of
/// `from` and the words of `to` (words as they lie in memory, e.g. in a packet), as the kernel's
/// `csum_partial` computes it. With `from` empty it is the sum of `to`: [`csum_fold`] of the sum
/// of a whole IPv4 header is 0 when its checksum is right. Sizes must be multiples of 4, together
/// at most 512 bytes (checked at compile time). BPF: the helper (28); elsewhere the same sum.
#[inline(always)]
pub fn csum_diff<const F: usize, const T: usize>(from: &[u8; F], to: &[u8; T], seed: u32) -> u32 {
    const {
        assert!(F.is_multiple_of(4) && T.is_multiple_of(4), "csum_diff works on 32-bit words");
        assert!(F + T <= 512, "bpf_csum_diff takes at most 512 bytes");
    };
    #[cfg(target_arch = "bpf")]
    {
        // An empty side is NULL: the helper takes "no memory" only as a null pointer.
        let from_ptr = if F == 0 { core::ptr::null() } else { from.as_ptr() };
        let to_ptr = if T == 0 { core::ptr::null() } else { to.as_ptr() };
        // SAFETY: each pointer is null with size 0 or points at that many initialised bytes.
        return unsafe { crate::sys::csum_diff(from_ptr, F as u32, to_ptr, T as u32, seed) } as u32;
    }
    #[cfg(not(target_arch = "bpf"))]
    {
        let mut sum = u64::from(seed);
        let mut i = 0;
        while i < F {
            sum += u64::from(!u32::from_le_bytes([from[i], from[i + 1], from[i + 2], from[i + 3]]));
            i += 4;
        }
        let mut i = 0;
        while i < T {
            sum += u64::from(u32::from_le_bytes([to[i], to[i + 1], to[i + 2], to[i + 3]]));
            i += 4;
        }
        while sum >> 32 != 0 {
            sum = (sum & 0xffff_ffff) + (sum >> 32);
        }
        sum as u32
    }
}

/// Folds a 32-bit one's-complement sum ([`csum_diff`]) to the 16-bit checksum a header holds
/// (`csum_fold`: the complement of the folded sum, in memory order).
#[inline(always)]
pub const fn csum_fold(sum: u32) -> u16 {
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}
