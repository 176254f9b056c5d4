//! `everyday`: ordinary Rust that LLVM compiles to calls of `memset`, `memcpy` and `memcmp`
//! (`bcmp`) in BPF — a zeroed 64-byte array, a struct with padding copied by value, slice
//! comparisons — which the SDK's definitions of those functions make loadable
//! (`crates/cli/tests/everyday_rust.rs` builds, verifies and runs it in every executor).
//!
//! The XDP program copies the frame's first 32 bytes (if it has them) into a zeroed buffer, compares the destination
//! MAC address and the buffer's tail with slices, fills a padded record, copies it by value
//! through an opaque call, and counts packets per outcome in `OUTCOMES`: 0 broadcast, 1 the
//! frame's first 32 bytes match the previous frame's, 2 anything else. Returns `XDP_PASS`, or
//! `XDP_DROP` for a frame shorter than 14 bytes.
#![no_std]

use duet::{Array, XdpAction, XdpContext};

/// Packets per outcome.
#[duet::map]
static OUTCOMES: Array<u64> = Array::with_max_entries(3, 0);

/// The previous frame's first 32 bytes.
#[duet::map]
static LAST: Array<[u8; 32]> = Array::with_max_entries(1, 0);

/// A record with padding (after `kind` and after `port`), copied by value.
#[derive(Clone, Copy)]
#[repr(C)]
struct Record {
    kind: u8,
    len: u32,
    port: u16,
    mac: [u8; 6],
    bytes: [u64; 6],
}

const BROADCAST: [u8; 6] = [0xff; 6];

#[duet::xdp]
fn everyday(ctx: XdpContext) -> XdpAction {
    let Some(eth) = ctx.eth() else { return XdpAction::Drop };
    // A zeroed array (memset), filled from the packet.
    let mut buf = [0u8; 64];
    if let Some(head) = ctx.load::<[u8; 32]>(0) {
        buf[..32].copy_from_slice(&head);
    }
    // A struct with padding, built and copied by value through an opaque call (memcpy).
    let record = Record { kind: 2, len: ctx.len() as u32, port: 0, mac: eth.src, bytes: [ctx.len() as u64; 6] };
    let copy = core::hint::black_box(record);
    // Slice comparisons (memcmp / bcmp).
    let outcome = if eth.dst[..] == BROADCAST[..] {
        0
    } else if LAST.get(0).is_some_and(|last| last[..] == buf[..32]) {
        1
    } else {
        u32::from(copy.kind)
    };
    let mut last = [0u8; 32];
    last.copy_from_slice(&buf[..32]);
    let _ = LAST.set(0, &last);
    let _ = OUTCOMES.add_u64(outcome, 1);
    XdpAction::Pass
}
