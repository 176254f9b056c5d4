//! Programs on socket buffers (`struct __sk_buff`): TC classifiers, socket filters and cgroup
//! skb programs.
//!
//! Each sees the packet from where the kernel's `data` starts for its hook, and the SDK keeps
//! that meaning on every target:
//!
//! | hook | packet offset 0 | may change the packet | returns |
//! |---|---|---|---|
//! | `#[duet::classifier]` (TC) | the Ethernet header | yes ([`TcContext`]) | [`TcAction`] |
//! | `#[duet::socket_filter]` | the network (IP) header | no | bytes to keep (`0` drops) |
//! | `#[duet::cgroup_skb(ingress)]`, `(egress)` | the network (IP) header | no | [`CgroupSkbAction`] |
//!
//! [`SkbContext::ipv4`] finds the IPv4 header in every hook. In the kernel, reads go through
//! `bpf_skb_load_bytes` (which every skb hook has, and which needs no bounds proof) and writes
//! through `bpf_skb_store_bytes`; in Wasm and host tests the packet is plain memory that the
//! same checks guard. Userspace executors run these programs over captures as the kernel's
//! `BPF_PROG_TEST_RUN` does: the frame on the loopback device, `ifindex` 1, every other field 0.

use core::marker::PhantomData;
use core::mem::size_of;

use crate::Errno;
use crate::net::{ETH_HLEN, Ipv4Hdr};
use crate::pod::Pod;

/// A TC action (`TC_ACT_*`), what a classifier returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum TcAction {
    /// Use the default action configured for the qdisc (`TC_ACT_UNSPEC`, -1).
    Unspec = -1,
    /// Let the packet go on (`TC_ACT_OK`).
    Ok = 0,
    /// Classify the packet again (`TC_ACT_RECLASSIFY`).
    Reclassify = 1,
    /// Drop the packet (`TC_ACT_SHOT`).
    Shot = 2,
    /// Go on to the next action (`TC_ACT_PIPE`).
    Pipe = 3,
    /// The program consumed the packet (`TC_ACT_STOLEN`).
    Stolen = 4,
    /// Queued for later (`TC_ACT_QUEUED`).
    Queued = 5,
    /// Run the classifier again (`TC_ACT_REPEAT`).
    Repeat = 6,
    /// Redirect the packet as [`TcContext::redirect`] asked (`TC_ACT_REDIRECT`).
    Redirect = 7,
}

impl TcAction {
    /// The action of a raw return value (`None` outside `-1..=7`).
    pub const fn from_raw(raw: i32) -> Option<Self> {
        Some(match raw {
            -1 => TcAction::Unspec,
            0 => TcAction::Ok,
            1 => TcAction::Reclassify,
            2 => TcAction::Shot,
            3 => TcAction::Pipe,
            4 => TcAction::Stolen,
            5 => TcAction::Queued,
            6 => TcAction::Repeat,
            7 => TcAction::Redirect,
            _ => return None,
        })
    }
}

/// What a cgroup skb program decides for a packet of the cgroup's sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum CgroupSkbAction {
    /// Drop the packet (an egress drop fails the sender's call with `EPERM`).
    Drop = 0,
    /// Let it pass.
    Pass = 1,
}

/// Offsets above this are refused without looking at the packet (the kernel's
/// `bpf_skb_load_bytes` takes offsets up to `INT_MAX`; packets are never that long).
const MAX_OFFSET: usize = 0xffff;

/// `struct __sk_buff` offsets the SDK reads.
#[cfg(target_arch = "bpf")]
mod field {
    pub(super) const LEN: usize = 0;
    pub(super) const PKT_TYPE: usize = 4;
    pub(super) const PROTOCOL: usize = 16;
    pub(super) const IFINDEX: usize = 40;
}

/// A socket buffer as a socket filter, a cgroup skb program or (through [`TcContext`]) a TC
/// classifier sees it. Offsets are from the start of the packet as the hook sees it (see the
/// module documentation).
#[derive(Clone, Copy)]
pub struct SkbContext<'a> {
    #[cfg(target_arch = "bpf")]
    ctx: *mut core::ffi::c_void,
    #[cfg(not(target_arch = "bpf"))]
    data: usize,
    #[cfg(not(target_arch = "bpf"))]
    len: usize,
    #[cfg(not(target_arch = "bpf"))]
    meta: HostMeta,
    /// Where the IPv4 header may start: 14 in a classifier, 0 elsewhere.
    net_offset: usize,
    _packet: PhantomData<&'a mut [u8]>,
}

/// The fields the kernel computes from the Ethernet header, computed the same way in Wasm and
/// on the host (`eth_type_trans` on the loopback device).
#[cfg(not(target_arch = "bpf"))]
#[derive(Clone, Copy)]
struct HostMeta {
    protocol: u16,
    pkt_type: u32,
}

#[cfg(not(target_arch = "bpf"))]
impl HostMeta {
    fn of_frame(frame: &[u8]) -> Self {
        if frame.len() < ETH_HLEN {
            return HostMeta { protocol: 0, pkt_type: 0 };
        }
        let dst = &frame[..6];
        let pkt_type = if dst[0] & 1 != 0 {
            if dst.iter().all(|b| *b == 0xff) { 1 } else { 2 }
        } else if dst.iter().any(|b| *b != 0) {
            3
        } else {
            0
        };
        let proto = u16::from_be_bytes([frame[12], frame[13]]);
        let protocol = if proto >= 0x0600 {
            proto
        } else if frame.get(14..16) == Some(&[0xff, 0xff]) {
            0x0001
        } else {
            0x0004
        };
        HostMeta { protocol, pkt_type }
    }
}

impl core::fmt::Debug for SkbContext<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SkbContext").field("len", &self.len()).finish_non_exhaustive()
    }
}

impl SkbContext<'_> {
    #[cfg(target_arch = "bpf")]
    #[inline(always)]
    fn field(&self, offset: usize) -> u32 {
        // SAFETY: `ctx` is the `__sk_buff` the kernel passed; the SDK reads only fields every skb
        // hook may read, as aligned 4-byte loads (volatile: LLVM must not merge or narrow them,
        // which the verifiers refuse).
        unsafe { self.ctx.cast::<u8>().add(offset).cast::<u32>().read_volatile() }
    }

    /// The packet's length in bytes, from where the hook's packet starts (`skb->len`).
    #[inline(always)]
    pub fn len(&self) -> usize {
        #[cfg(target_arch = "bpf")]
        return self.field(field::LEN) as usize;
        #[cfg(not(target_arch = "bpf"))]
        return self.len;
    }

    /// Whether the packet is empty.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The packet's protocol, an Ethernet type in host order (`ETH_P_IP`, ...): the kernel's
    /// `skb->protocol`.
    #[inline(always)]
    pub fn protocol(&self) -> u16 {
        #[cfg(target_arch = "bpf")]
        return u16::from_be(self.field(field::PROTOCOL) as u16);
        #[cfg(not(target_arch = "bpf"))]
        return self.meta.protocol;
    }

    /// The packet's type by its destination MAC address (`PACKET_HOST` 0, `PACKET_BROADCAST` 1,
    /// `PACKET_MULTICAST` 2, `PACKET_OTHERHOST` 3): the kernel's `skb->pkt_type`.
    #[inline(always)]
    pub fn pkt_type(&self) -> u32 {
        #[cfg(target_arch = "bpf")]
        return self.field(field::PKT_TYPE);
        #[cfg(not(target_arch = "bpf"))]
        return self.meta.pkt_type;
    }

    /// The index of the device the packet is on (`skb->dev->ifindex`; 1, the loopback device, in
    /// userspace runs over captures, as in `BPF_PROG_TEST_RUN`).
    #[inline(always)]
    pub fn ifindex(&self) -> u32 {
        #[cfg(target_arch = "bpf")]
        return self.field(field::IFINDEX);
        #[cfg(not(target_arch = "bpf"))]
        return 1;
    }

    /// Reads a `T` at byte `offset` of the packet; `None` if the packet is too short.
    #[inline(always)]
    pub fn load<T: Pod>(&self, offset: usize) -> Option<T> {
        if offset > MAX_OFFSET {
            return None;
        }
        #[cfg(target_arch = "bpf")]
        {
            let mut out = core::mem::MaybeUninit::<T>::uninit();
            // SAFETY: `out` has room for `size_of::<T>()` bytes, which the helper fills (with
            // zeros when it fails).
            let ret =
                unsafe { crate::sys::skb_load_bytes(self.ctx, offset as u32, out.as_mut_ptr().cast(), size_of::<T>()) };
            // SAFETY: the helper wrote every byte of `out`, and every bit pattern is a valid `T`.
            (ret == 0).then(|| unsafe { out.assume_init() })
        }
        #[cfg(not(target_arch = "bpf"))]
        {
            if offset + size_of::<T>() > self.len {
                return None;
            }
            // SAFETY: the bytes lie inside the packet (checked above), and every bit pattern is
            // a valid `T` (`Pod`).
            Some(unsafe { ((self.data + offset) as *const T).read_unaligned() })
        }
    }

    /// Where the IPv4 header may start: 14 (after the Ethernet header) in a classifier, 0 in a
    /// socket filter and a cgroup skb program.
    #[inline(always)]
    pub fn network_offset(&self) -> usize {
        self.net_offset
    }

    /// The IPv4 header (its first 20 bytes) of an IPv4 packet (`protocol()` is `ETH_P_IP`) whose
    /// header says version 4 with a length of at least 20 bytes; `None` otherwise.
    #[inline(always)]
    pub fn ipv4(&self) -> Option<Ipv4Hdr> {
        if self.protocol() != crate::net::ETH_P_IP {
            return None;
        }
        let ip: Ipv4Hdr = self.load(self.net_offset)?;
        (ip.version() == 4 && ip.header_len() >= 20).then_some(ip)
    }
}

/// A TC classifier's socket buffer: everything [`SkbContext`] reads (offset 0 is the Ethernet
/// header), and changes to the packet.
#[derive(Clone, Copy, Debug)]
pub struct TcContext<'a> {
    skb: SkbContext<'a>,
}

impl<'a> core::ops::Deref for TcContext<'a> {
    type Target = SkbContext<'a>;

    fn deref(&self) -> &SkbContext<'a> {
        &self.skb
    }
}

/// `bpf_l3_csum_replace` / `bpf_l4_csum_replace` flag: the changed field is 2 bytes.
const CSUM_FIELD_2: u64 = 2;
/// The same, 4 bytes.
const CSUM_FIELD_4: u64 = 4;
/// `BPF_F_PSEUDO_HDR`: the changed field is part of the pseudo-header (an IP address).
pub const BPF_F_PSEUDO_HDR: u64 = 1 << 4;
/// `BPF_F_MARK_MANGLED_0`: a UDP checksum of 0 means "none" and stays 0; a computed 0 becomes
/// 0xffff.
pub const BPF_F_MARK_MANGLED_0: u64 = 1 << 5;
/// `BPF_F_INGRESS` for [`TcContext::redirect`]: to the device's ingress instead of its egress.
pub const BPF_F_INGRESS: u64 = 1;

impl TcContext<'_> {
    /// Writes `value` at byte `offset` of the packet (`bpf_skb_store_bytes`); [`Errno::EFAULT`]
    /// if the packet is too short.
    #[inline(always)]
    pub fn store<T: Pod>(&self, offset: usize, value: &T) -> Result<(), Errno> {
        if offset > MAX_OFFSET {
            return Err(Errno::EFAULT);
        }
        #[cfg(target_arch = "bpf")]
        // SAFETY: `value` is `size_of::<T>()` initialized bytes (`Pod` has no padding).
        return Errno::from_ret(unsafe {
            crate::sys::skb_store_bytes(
                self.skb.ctx,
                offset as u32,
                core::ptr::from_ref(value).cast(),
                size_of::<T>(),
                0,
            )
        });
        #[cfg(not(target_arch = "bpf"))]
        {
            if offset + size_of::<T>() > self.skb.len {
                return Err(Errno::EFAULT);
            }
            // SAFETY: the bytes lie inside the packet, which the classifier may change (the
            // executor copies it back).
            unsafe { ((self.skb.data + offset) as *mut T).write_unaligned(*value) };
            Ok(())
        }
    }

    /// Updates the IP header checksum at byte `offset` after a 16-bit word changed from `from`
    /// to `to` (both as they are in the packet, e.g. `u16::from_ne_bytes(bytes)`):
    /// `bpf_l3_csum_replace(skb, offset, from, to, 2)`.
    #[inline(always)]
    pub fn l3_csum_replace_u16(&self, offset: usize, from: u16, to: u16) -> Result<(), Errno> {
        self.csum_replace(false, offset, u64::from(from), u64::from(to), CSUM_FIELD_2)
    }

    /// As [`TcContext::l3_csum_replace_u16`] for a 32-bit word (an IPv4 address).
    #[inline(always)]
    pub fn l3_csum_replace_u32(&self, offset: usize, from: u32, to: u32) -> Result<(), Errno> {
        self.csum_replace(false, offset, u64::from(from), u64::from(to), CSUM_FIELD_4)
    }

    /// Updates a TCP or UDP checksum at byte `offset` after a 16-bit word changed (a port):
    /// `bpf_l4_csum_replace(skb, offset, from, to, 2 | flags)`; `flags` may add
    /// [`BPF_F_PSEUDO_HDR`] and [`BPF_F_MARK_MANGLED_0`].
    #[inline(always)]
    pub fn l4_csum_replace_u16(&self, offset: usize, from: u16, to: u16, flags: u64) -> Result<(), Errno> {
        self.csum_replace(true, offset, u64::from(from), u64::from(to), CSUM_FIELD_2 | flags)
    }

    /// As [`TcContext::l4_csum_replace_u16`] for a 32-bit word (an IPv4 address, with
    /// [`BPF_F_PSEUDO_HDR`]).
    #[inline(always)]
    pub fn l4_csum_replace_u32(&self, offset: usize, from: u32, to: u32, flags: u64) -> Result<(), Errno> {
        self.csum_replace(true, offset, u64::from(from), u64::from(to), CSUM_FIELD_4 | flags)
    }

    #[inline(always)]
    fn csum_replace(&self, l4: bool, offset: usize, from: u64, to: u64, flags: u64) -> Result<(), Errno> {
        if offset > MAX_OFFSET {
            return Err(Errno::EFAULT);
        }
        #[cfg(target_arch = "bpf")]
        return Errno::from_ret(if l4 {
            crate::sys::l4_csum_replace(self.skb.ctx, offset as u64, from, to, flags)
        } else {
            crate::sys::l3_csum_replace(self.skb.ctx, offset as u64, from, to, flags)
        });
        #[cfg(not(target_arch = "bpf"))]
        {
            // SAFETY: `data..data + len` is the packet, which the classifier may change.
            let packet = unsafe { core::slice::from_raw_parts_mut(self.skb.data as *mut u8, self.skb.len) };
            Errno::from_ret(csum::replace(l4, packet, offset, from, to, flags))
        }
    }

    /// Asks for the packet to be sent to device `ifindex` (its egress, or its ingress with
    /// [`BPF_F_INGRESS`]); return the result from the program: [`TcAction::Redirect`], or
    /// [`TcAction::Shot`] for unknown flags (`bpf_redirect`).
    #[inline(always)]
    pub fn redirect(&self, ifindex: u32, flags: u64) -> TcAction {
        #[cfg(target_arch = "bpf")]
        return TcAction::from_raw(crate::sys::redirect(ifindex, flags) as i32).unwrap_or(TcAction::Shot);
        #[cfg(not(target_arch = "bpf"))]
        {
            let _ = ifindex;
            if flags & !BPF_F_INGRESS != 0 { TcAction::Shot } else { TcAction::Redirect }
        }
    }
}

/// The kernel's checksum helpers for Wasm and host tests, as `include/net/checksum.h` computes
/// them (duet-vm's `skb.rs` is the same arithmetic; the kernel differential tests hold both to
/// the kernel).
#[cfg(not(target_arch = "bpf"))]
mod csum {
    fn add(a: u32, b: u32) -> u32 {
        let (res, carry) = a.overflowing_add(b);
        res.wrapping_add(u32::from(carry))
    }

    fn fold(sum: u32) -> u16 {
        let sum = (sum & 0xffff) + (sum >> 16);
        let sum = (sum & 0xffff) + (sum >> 16);
        !(sum as u16)
    }

    fn add16(a: u16, b: u16) -> u16 {
        let (res, carry) = a.overflowing_add(b);
        res.wrapping_add(u16::from(carry))
    }

    fn replace4(sum: u16, from: u32, to: u32) -> u16 {
        fold(add(add(!u32::from(sum), !from), to))
    }

    /// `bpf_l3_csum_replace` (`l4 == false`) or `bpf_l4_csum_replace` on `packet`, for an skb
    /// without checksum offload; returns the helper's result.
    pub(super) fn replace(l4: bool, packet: &mut [u8], offset: usize, from: u64, to: u64, flags: u64) -> i64 {
        const FIELD: u64 = 0xf;
        const MANGLED_0: u64 = 1 << 5;
        const ENFORCE: u64 = 1 << 6;
        let allowed = if l4 { FIELD | (1 << 4) | MANGLED_0 | ENFORCE | (1 << 7) } else { FIELD };
        if flags & !allowed != 0 {
            return -22;
        }
        if offset > 0xffff || offset & 1 != 0 {
            return -14;
        }
        let Some(field) = packet.get_mut(offset..offset + 2) else { return -14 };
        let sum = u16::from_le_bytes([field[0], field[1]]);
        let mangled = l4 && flags & MANGLED_0 != 0;
        if mangled && flags & ENFORCE == 0 && sum == 0 {
            return 0;
        }
        let new = match flags & FIELD {
            0 if from != 0 => return -22,
            0 => fold(add(to as u32, !u32::from(sum))),
            2 if !l4 => !add16(add16(!sum, !(from as u16)), to as u16),
            2 => replace4(sum, u32::from(from as u16), u32::from(to as u16)),
            4 => replace4(sum, from as u32, to as u32),
            _ => return -22,
        };
        let new = if mangled && new == 0 { 0xffff } else { new };
        field.copy_from_slice(&new.to_le_bytes());
        0
    }
}

// === entry points ===

/// The context of a BPF skb program.
///
/// # Safety
///
/// `ctx` is the program's `struct __sk_buff *`.
#[cfg(target_arch = "bpf")]
#[inline(always)]
unsafe fn bpf_context<'a>(ctx: *mut core::ffi::c_void, net_offset: usize) -> SkbContext<'a> {
    SkbContext { ctx, net_offset, _packet: PhantomData }
}

/// Runs a classifier on the context the kernel passed; the action, zero-extended (the kernel
/// reads the low 32 bits, and every userspace executor then sees the same `r0`).
///
/// # Safety
///
/// `ctx` is the program's `struct __sk_buff *`.
#[doc(hidden)]
#[cfg(target_arch = "bpf")]
#[inline(always)]
pub unsafe fn classifier_entry(ctx: *mut core::ffi::c_void, prog: impl FnOnce(TcContext<'_>) -> TcAction) -> u64 {
    // SAFETY: forwarded contract.
    let skb = unsafe { bpf_context(ctx, ETH_HLEN) };
    u64::from(prog(TcContext { skb }) as i32 as u32)
}

/// Runs a socket filter on the context the kernel passed.
///
/// # Safety
///
/// `ctx` is the program's `struct __sk_buff *`.
#[doc(hidden)]
#[cfg(target_arch = "bpf")]
#[inline(always)]
pub unsafe fn socket_filter_entry(ctx: *mut core::ffi::c_void, prog: impl FnOnce(SkbContext<'_>) -> u32) -> u64 {
    // SAFETY: forwarded contract.
    u64::from(prog(unsafe { bpf_context(ctx, 0) }))
}

/// Runs a cgroup skb program on the context the kernel passed.
///
/// # Safety
///
/// `ctx` is the program's `struct __sk_buff *`.
#[doc(hidden)]
#[cfg(target_arch = "bpf")]
#[inline(always)]
pub unsafe fn cgroup_skb_entry(
    ctx: *mut core::ffi::c_void,
    prog: impl FnOnce(SkbContext<'_>) -> CgroupSkbAction,
) -> u64 {
    // SAFETY: forwarded contract.
    u64::from(prog(unsafe { bpf_context(ctx, 0) }) as u32)
}

/// A context over an Ethernet frame at `data..data + len` for the hook whose packet starts at
/// the network header (`net_start`) or at the frame (`!net_start`).
#[cfg(not(target_arch = "bpf"))]
fn frame_context<'a>(data: usize, len: usize, net_start: bool) -> SkbContext<'a> {
    // SAFETY: the callers pass a frame they own for the run.
    let frame = unsafe { core::slice::from_raw_parts(data as *const u8, len) };
    let meta = HostMeta::of_frame(frame);
    if net_start {
        let skip = len.min(ETH_HLEN);
        SkbContext { data: data + skip, len: len - skip, meta, net_offset: 0, _packet: PhantomData }
    } else {
        SkbContext { data, len, meta, net_offset: ETH_HLEN, _packet: PhantomData }
    }
}

/// Runs a classifier on the Ethernet frame the Wasm host copied to `data..data + len`.
#[doc(hidden)]
#[cfg(target_arch = "wasm32")]
#[inline(always)]
pub fn classifier_entry_wasm(data: i32, len: i32, prog: impl FnOnce(TcContext<'_>) -> TcAction) -> i32 {
    prog(TcContext { skb: frame_context(data as u32 as usize, len.max(0) as usize, false) }) as i32
}

/// Runs a socket filter on the Ethernet frame the Wasm host copied to `data..data + len`.
#[doc(hidden)]
#[cfg(target_arch = "wasm32")]
#[inline(always)]
pub fn socket_filter_entry_wasm(data: i32, len: i32, prog: impl FnOnce(SkbContext<'_>) -> u32) -> i32 {
    prog(frame_context(data as u32 as usize, len.max(0) as usize, true)) as i32
}

/// Runs a cgroup skb program on the Ethernet frame the Wasm host copied to `data..data + len`.
#[doc(hidden)]
#[cfg(target_arch = "wasm32")]
#[inline(always)]
pub fn cgroup_skb_entry_wasm(data: i32, len: i32, prog: impl FnOnce(SkbContext<'_>) -> CgroupSkbAction) -> i32 {
    prog(frame_context(data as u32 as usize, len.max(0) as usize, true)) as i32
}

/// A classifier's context over a host frame, for [`crate::testing::run_classifier`].
#[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
pub(crate) fn host_tc_context(frame: &mut [u8]) -> TcContext<'_> {
    TcContext { skb: frame_context(frame.as_mut_ptr() as usize, frame.len(), false) }
}

/// A socket filter's or cgroup skb program's context over a host frame.
#[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
pub(crate) fn host_net_context(frame: &[u8]) -> SkbContext<'_> {
    frame_context(frame.as_ptr() as usize, frame.len(), true)
}
