//! Programs with a `struct __sk_buff` context: socket filters, TC classifiers and cgroup skb
//! programs, run on a frame as the kernel's `BPF_PROG_TEST_RUN` runs them.
//!
//! The kernel builds an skb on the loopback device, calls `eth_type_trans` (which sets
//! `protocol` and `pkt_type` and pulls the Ethernet header), and, for TC classifiers only, pushes
//! the Ethernet header back: a classifier's `data` starts at the Ethernet header, a socket
//! filter's and a cgroup skb program's at the network header. Every other field is zero, except
//! `ifindex` (1, the loopback device). [`SkbHook`] names the three; [`skb_fields`] computes the
//! context; the helpers that read and change the packet (`bpf_skb_load_bytes`,
//! `bpf_skb_store_bytes`, `bpf_l3_csum_replace`, `bpf_l4_csum_replace`) are here too.

use duet_helpers::ETH_HLEN;
pub(crate) use duet_helpers::SkbHook;

use crate::memory::Region;

/// Number of 32-bit `__sk_buff` fields before `data` (offsets 0..76).
pub(crate) const SKB_SCALARS: usize = 19;
/// Offset of `__sk_buff.data`.
pub(crate) const SKB_DATA: u64 = 76;
/// Offset of `__sk_buff.data_end`.
pub(crate) const SKB_DATA_END: u64 = 80;

/// The packet of an skb run: the bytes from `data` to `data_end`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SkbState {
    pub(crate) hook: SkbHook,
    pub(crate) packet: Region,
}

/// The `__sk_buff` fields before `data`, by `offset / 4`, as `BPF_PROG_TEST_RUN` sets them for
/// `frame` (`len` is the packet length as the hook sees it).
pub(crate) fn skb_fields(hook: SkbHook, frame: &[u8]) -> [u32; SKB_SCALARS] {
    let mut fields = [0u32; SKB_SCALARS];
    fields[0] = (frame.len() - hook.data_offset(frame.len())) as u32;
    if frame.len() >= ETH_HLEN {
        let (protocol, pkt_type) = eth_type_trans(frame);
        // `protocol` is a `__be16` in the skb, read as a 32-bit field on a little-endian host.
        fields[4] = u32::from(u16::from_le_bytes(protocol.to_be_bytes()));
        fields[1] = pkt_type;
    }
    fields[10] = LOOPBACK_IFINDEX;
    fields
}

/// The loopback device's index, where `BPF_PROG_TEST_RUN` puts the skb.
const LOOPBACK_IFINDEX: u32 = 1;

/// The kernel's `eth_type_trans` on the loopback device (address 00:00:00:00:00:00): the
/// protocol (host order) and `pkt_type` of a frame of at least 14 bytes.
fn eth_type_trans(frame: &[u8]) -> (u16, u32) {
    const PACKET_HOST: u32 = 0;
    const PACKET_BROADCAST: u32 = 1;
    const PACKET_MULTICAST: u32 = 2;
    const PACKET_OTHERHOST: u32 = 3;
    let dst = &frame[..6];
    let pkt_type = if dst[0] & 1 != 0 {
        if dst.iter().all(|b| *b == 0xff) { PACKET_BROADCAST } else { PACKET_MULTICAST }
    } else if dst.iter().any(|b| *b != 0) {
        PACKET_OTHERHOST
    } else {
        PACKET_HOST
    };
    let proto = u16::from_be_bytes([frame[12], frame[13]]);
    let protocol = if proto >= 0x0600 {
        proto
    } else if frame.get(14..16) == Some(&[0xff, 0xff]) {
        0x0001 // ETH_P_802_3: raw 802.3 (Novell)
    } else {
        0x0004 // ETH_P_802_2: 802.2 LLC
    };
    (protocol, pkt_type)
}

// === checksum arithmetic, as include/net/checksum.h ===

fn csum_add(a: u32, b: u32) -> u32 {
    let (res, carry) = a.overflowing_add(b);
    res.wrapping_add(u32::from(carry))
}

fn csum_sub(a: u32, b: u32) -> u32 {
    csum_add(a, !b)
}

fn csum_fold(sum: u32) -> u16 {
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

fn csum16_add(csum: u16, addend: u16) -> u16 {
    let (res, carry) = csum.overflowing_add(addend);
    res.wrapping_add(u16::from(carry))
}

/// `csum_replace2`: the checksum after a 16-bit word changed from `from` to `to`.
fn csum_replace2(sum: u16, from: u16, to: u16) -> u16 {
    !csum16_add(csum16_add(!sum, !from), to)
}

/// `csum_replace4`: the checksum after a 32-bit word changed from `from` to `to`.
fn csum_replace4(sum: u16, from: u32, to: u32) -> u16 {
    let tmp = csum_sub(!u32::from(sum), from);
    csum_fold(csum_add(tmp, to))
}

/// `csum_replace_by_diff`: the checksum after adding a `bpf_csum_diff` result.
fn csum_replace_by_diff(sum: u16, diff: u32) -> u16 {
    csum_fold(csum_add(diff, !u32::from(sum)))
}

const EINVAL: i64 = -22;
const EFAULT: i64 = -14;
const BPF_F_HDR_FIELD_MASK: u64 = 0xf;

/// Which checksum helper, with its flags' meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CsumLayer {
    L3,
    L4,
}

/// `bpf_l3_csum_replace` / `bpf_l4_csum_replace` on `packet` (the skb's linear data), in an skb
/// whose `ip_summed` is `CHECKSUM_NONE`, as in `BPF_PROG_TEST_RUN`. Returns the helper's result.
pub(crate) fn csum_replace(layer: CsumLayer, packet: &mut [u8], offset: u64, from: u64, to: u64, flags: u64) -> i64 {
    const PSEUDO_HDR: u64 = 1 << 4;
    const MARK_MANGLED_0: u64 = 1 << 5;
    const MARK_ENFORCE: u64 = 1 << 6;
    const IPV6: u64 = 1 << 7;
    let allowed = match layer {
        CsumLayer::L3 => BPF_F_HDR_FIELD_MASK,
        CsumLayer::L4 => BPF_F_HDR_FIELD_MASK | PSEUDO_HDR | MARK_MANGLED_0 | MARK_ENFORCE | IPV6,
    };
    if flags & !allowed != 0 {
        return EINVAL;
    }
    let offset = offset as u32 as usize;
    if offset > 0xffff || offset & 1 != 0 {
        return EFAULT;
    }
    let Some(field) = packet.get_mut(offset..offset + 2) else { return EFAULT };
    let sum = u16::from_le_bytes([field[0], field[1]]);
    let mangled_zero = layer == CsumLayer::L4 && flags & MARK_MANGLED_0 != 0;
    if mangled_zero && flags & MARK_ENFORCE == 0 && sum == 0 {
        return 0;
    }
    let new = match (flags & BPF_F_HDR_FIELD_MASK, layer) {
        (0, _) if from != 0 => return EINVAL,
        (0, _) => csum_replace_by_diff(sum, to as u32),
        (2, CsumLayer::L3) => csum_replace2(sum, from as u16, to as u16),
        // The kernel's inet_proto_csum_replace2 is replace4 of the zero-extended halves.
        (2, CsumLayer::L4) => csum_replace4(sum, u32::from(from as u16), u32::from(to as u16)),
        (4, _) => csum_replace4(sum, from as u32, to as u32),
        _ => return EINVAL,
    };
    let new = if mangled_zero && new == 0 { 0xffff } else { new };
    field.copy_from_slice(&new.to_le_bytes());
    0
}

/// `bpf_skb_store_bytes`' checks: `Ok(start)` of the bytes to overwrite, or the errno.
pub(crate) fn store_range(packet_len: usize, offset: u64, len: u64, flags: u64) -> Result<usize, i64> {
    const RECOMPUTE_CSUM: u64 = 1;
    const INVALIDATE_HASH: u64 = 2;
    if flags & !(RECOMPUTE_CSUM | INVALIDATE_HASH) != 0 {
        return Err(EINVAL);
    }
    let offset = u64::from(offset as u32);
    if offset > i32::MAX as u64 || offset + u64::from(len as u32) > packet_len as u64 {
        return Err(EFAULT);
    }
    Ok(offset as usize)
}

/// `bpf_skb_load_bytes`' checks: `Some(start)` of the bytes to copy, `None` for -EFAULT.
pub(crate) fn load_range(packet_len: usize, offset: u64, len: u64) -> Option<usize> {
    let offset = u64::from(offset as u32);
    (offset <= i32::MAX as u64 && offset + u64::from(len as u32) <= packet_len as u64).then_some(offset as usize)
}

/// The result of `bpf_skb_load_bytes` that failed.
pub(crate) const LOAD_FAILED: i64 = EFAULT;

#[cfg(test)]
mod tests {
    use super::*;

    /// The IPv4 header checksum of `header` (checksum field included as it is).
    fn ip_checksum(header: &[u8]) -> u16 {
        let mut sum = 0u32;
        for w in header.chunks(2) {
            sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn l3_replace_keeps_the_ipv4_checksum_valid() {
        let mut hdr = [0x45, 0, 0, 0x54, 0x12, 0x34, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        let sum = ip_checksum(&hdr);
        hdr[10..12].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(ip_checksum(&hdr), 0);
        // TTL 64 -> 63: the 16-bit word at offset 8 (TTL, protocol) changes.
        let from = u16::from_le_bytes([hdr[8], hdr[9]]);
        hdr[8] = 63;
        let to = u16::from_le_bytes([hdr[8], hdr[9]]);
        assert_eq!(csum_replace(CsumLayer::L3, &mut hdr, 10, from.into(), to.into(), 2), 0);
        assert_eq!(ip_checksum(&hdr), 0);
        // A new destination address, 4 bytes at once.
        let from = u32::from_le_bytes(hdr[16..20].try_into().unwrap());
        hdr[16..20].copy_from_slice(&[192, 168, 7, 9]);
        let to = u32::from_le_bytes(hdr[16..20].try_into().unwrap());
        assert_eq!(csum_replace(CsumLayer::L3, &mut hdr, 10, from.into(), to.into(), 4), 0);
        assert_eq!(ip_checksum(&hdr), 0);
        assert_eq!(csum_replace(CsumLayer::L3, &mut hdr, 11, 0, 0, 4), EFAULT);
        assert_eq!(csum_replace(CsumLayer::L3, &mut hdr, 10, 0, 0, 3), EINVAL);
        assert_eq!(csum_replace(CsumLayer::L3, &mut hdr, 10, 0, 0, 1 << 4), EINVAL);
        assert_eq!(csum_replace(CsumLayer::L3, &mut hdr, 20, 0, 0, 4), EFAULT);
    }

    #[test]
    fn eth_type_trans_as_the_kernel() {
        let mut frame = [0u8; 20];
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(eth_type_trans(&frame), (0x0800, 0));
        frame[0] = 0xff;
        assert_eq!(eth_type_trans(&frame).1, 2);
        frame[..6].fill(0xff);
        assert_eq!(eth_type_trans(&frame).1, 1);
        frame[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        assert_eq!(eth_type_trans(&frame).1, 3);
        frame[12..14].copy_from_slice(&[0, 40]);
        assert_eq!(eth_type_trans(&frame).0, 4);
        frame[14..16].copy_from_slice(&[0xff, 0xff]);
        assert_eq!(eth_type_trans(&frame).0, 1);
    }
}
