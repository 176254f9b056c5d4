//! `flowstats`: per-flow packet and byte counters for XDP, with a ring-buffer event for each new
//! flow, written once with the duet SDK. Every packet passes; this is a monitor.
//!
//! A flow is (source, destination, ports, protocol) of an IPv4 packet; ports are zero for
//! protocols other than TCP and UDP and for non-first fragments. Non-IPv4 packets are ignored.
//!
//! Maps:
//! - `FLOWS`: LRU hash, key [`FlowKey`], value [`FlowStats`] (packets, frame bytes), 1024
//!   entries. Counters are bumped with atomic adds.
//! - `NEW_FLOWS`: ring buffer (64 KiB) of [`FlowEvent`]s, one per flow the first time it is seen
//!   (again after it was evicted or ended).
//! - `ENDED_FLOWS`: ring buffer (64 KiB) of [`FlowEnd`]s written by the `flow_end` event program.
//!
//! Programs:
//! - `flowstats` (XDP): counts the packet in its flow.
//! - `flow_end` (event): given a [`FlowKey`] in its record's first two argument words (the
//!   sidecar's "connection closed" event), removes the flow from `FLOWS` and writes its final
//!   counts to `ENDED_FLOWS`. A probe's record means the same everywhere: a call's arguments.
//!   In the kernel it is a kprobe and the words are the probed function's first two arguments,
//!   so it fits a function that takes a flow key packed into two 64-bit arguments; its home is
//!   the userspace executors, which pass the key as the record.
//!
//! Maps depend only on the packets; the events carry `ktime_get_ns` timestamps, which only
//! executors with an injected clock reproduce.
#![no_std]

use core::mem::offset_of;

use duet::net::{ETH_HLEN, IPPROTO_TCP, IPPROTO_UDP, Ports};
use duet::{BPF_NOEXIST, LruHashMap, ProbeContext, RingBuf, XdpAction, XdpContext, ktime_get_ns};

/// A flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, duet::Pod)]
#[repr(C)]
pub struct FlowKey {
    /// Source address, packet order.
    pub src: [u8; 4],
    /// Destination address, packet order.
    pub dst: [u8; 4],
    /// Source port, big-endian (zero without ports).
    pub src_port: [u8; 2],
    /// Destination port, big-endian (zero without ports).
    pub dst_port: [u8; 2],
    /// IP protocol number.
    pub protocol: u8,
    /// Always zero (explicit, so there is no padding).
    pub zero: [u8; 3],
}

/// A flow's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, duet::Pod)]
#[repr(C)]
pub struct FlowStats {
    /// Packets.
    pub packets: u64,
    /// Frame bytes.
    pub bytes: u64,
}

/// The record `NEW_FLOWS` gets for a new flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, duet::Pod)]
#[repr(C)]
pub struct FlowEvent {
    /// The flow.
    pub key: FlowKey,
    /// When its first packet was seen (`ktime_get_ns`).
    pub first_seen_ns: u64,
}

/// The record `ENDED_FLOWS` gets when `flow_end` ends a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, duet::Pod)]
#[repr(C)]
pub struct FlowEnd {
    /// The flow.
    pub key: FlowKey,
    /// Its final counters.
    pub stats: FlowStats,
}

/// Counters per flow.
#[duet::map]
static FLOWS: LruHashMap<FlowKey, FlowStats> = LruHashMap::with_max_entries(1024, 0);

/// One [`FlowEvent`] per new flow.
#[duet::map]
static NEW_FLOWS: RingBuf = RingBuf::with_byte_size(64 * 1024, 0);

/// One [`FlowEnd`] per ended flow.
#[duet::map]
static ENDED_FLOWS: RingBuf = RingBuf::with_byte_size(64 * 1024, 0);

#[duet::xdp]
fn flowstats(ctx: XdpContext) -> XdpAction {
    let Some(key) = flow_key(&ctx) else { return XdpAction::Pass };
    let len = ctx.len() as u64;
    if FLOWS.add_u64_at(&key, offset_of!(FlowStats, packets), 1).is_ok() {
        let _ = FLOWS.add_u64_at(&key, offset_of!(FlowStats, bytes), len);
        return XdpAction::Pass;
    }
    match FLOWS.insert(&key, &FlowStats { packets: 1, bytes: len }, BPF_NOEXIST) {
        Ok(()) => {
            // A full ring buffer loses the event, not the packet.
            let _ = NEW_FLOWS.output(&FlowEvent { key, first_seen_ns: ktime_get_ns() });
        }
        Err(_) => {
            // Another CPU created the flow since our add failed: count into its entry.
            let _ = FLOWS.add_u64_at(&key, offset_of!(FlowStats, packets), 1);
            let _ = FLOWS.add_u64_at(&key, offset_of!(FlowStats, bytes), len);
        }
    }
    XdpAction::Pass
}

/// The flow of an IPv4 packet.
#[inline(always)]
fn flow_key(ctx: &XdpContext) -> Option<FlowKey> {
    let ip = ctx.ipv4()?;
    let mut key = FlowKey { src: ip.src, dst: ip.dst, protocol: ip.protocol, ..FlowKey::default() };
    if matches!(ip.protocol, IPPROTO_TCP | IPPROTO_UDP)
        && ip.fragment_offset() == 0
        && let Some(ports) = ctx.load::<Ports>(ETH_HLEN + ip.header_len())
    {
        key.src_port = ports.src;
        key.dst_port = ports.dst;
    }
    Some(key)
}

#[duet::probe]
fn flow_end(ctx: ProbeContext) {
    let Some(key) = ctx.read::<FlowKey>() else { return };
    let Some(stats) = FLOWS.get(&key) else { return };
    let _ = FLOWS.remove(&key);
    let _ = ENDED_FLOWS.output(&FlowEnd { key, stats });
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use duet::testing::{bytes_of, drain, from_bytes, run_probe, run_xdp, set_clock, tcp_frame, udp_frame};

    use super::*;

    fn key(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, protocol: u8) -> FlowKey {
        FlowKey { src, dst, src_port: sport.to_be_bytes(), dst_port: dport.to_be_bytes(), protocol, zero: [0; 3] }
    }

    fn records<T: duet::Pod>(ring: &RingBuf<{ 64 * 1024 }, 0>) -> Vec<T> {
        drain(ring).iter().map(|r| from_bytes(r).unwrap()).collect()
    }

    #[test]
    fn counts_per_flow_and_reports_new_flows_once() {
        set_clock(7_000, 0);
        let mut a = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53, 10);
        let mut b = tcp_frame([10, 0, 0, 3], [10, 0, 0, 2], 2000, 80, 0);
        assert_eq!(run_xdp(flowstats, &mut a), XdpAction::Pass);
        assert_eq!(run_xdp(flowstats, &mut b), XdpAction::Pass);
        assert_eq!(run_xdp(flowstats, &mut a), XdpAction::Pass);
        let ka = key([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53, IPPROTO_UDP);
        let kb = key([10, 0, 0, 3], [10, 0, 0, 2], 2000, 80, IPPROTO_TCP);
        assert_eq!(FLOWS.get(&ka), Some(FlowStats { packets: 2, bytes: 2 * a.len() as u64 }));
        assert_eq!(FLOWS.get(&kb), Some(FlowStats { packets: 1, bytes: b.len() as u64 }));
        let new: Vec<FlowEvent> = records(&NEW_FLOWS);
        assert_eq!(new, [FlowEvent { key: ka, first_seen_ns: 7_000 }, FlowEvent { key: kb, first_seen_ns: 7_000 }]);
    }

    #[test]
    fn flow_end_reports_and_forgets_the_flow() {
        let mut a = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53, 0);
        run_xdp(flowstats, &mut a);
        let ka = key([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53, IPPROTO_UDP);
        let record = bytes_of(&ka);
        run_probe(flow_end, &record);
        assert_eq!(FLOWS.get(&ka), None);
        let ended: Vec<FlowEnd> = records(&ENDED_FLOWS);
        assert_eq!(ended, [FlowEnd { key: ka, stats: FlowStats { packets: 1, bytes: a.len() as u64 } }]);
        // Unknown flows and short records do nothing.
        run_probe(flow_end, &record);
        run_probe(flow_end, &record[..8]);
        assert!(drain(&ENDED_FLOWS).is_empty());
    }

    #[test]
    fn non_ipv4_is_ignored() {
        let mut arp = udp_frame([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 0);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(run_xdp(flowstats, &mut arp), XdpAction::Pass);
        assert!(drain(&NEW_FLOWS).is_empty());
    }
}
