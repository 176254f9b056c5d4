//! XDP programs: a packet in, a verdict out.

use core::marker::PhantomData;
use core::mem::size_of;

use crate::net::{ETH_HLEN, ETH_P_IP, EthHdr, Ipv4Hdr};
use crate::pod::Pod;

/// What happens to the packet (`enum xdp_action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum XdpAction {
    /// An error: drop the packet and raise the `xdp_exception` tracepoint.
    Aborted = 0,
    /// Drop the packet.
    Drop = 1,
    /// Pass it on to the network stack.
    Pass = 2,
    /// Send it back out of the interface it came in on.
    Tx = 3,
    /// Redirect it (to another interface, CPU or socket).
    Redirect = 4,
}

impl XdpAction {
    /// The verdict for a raw value (`None` for values outside `0..=4`).
    pub const fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            0 => XdpAction::Aborted,
            1 => XdpAction::Drop,
            2 => XdpAction::Pass,
            3 => XdpAction::Tx,
            4 => XdpAction::Redirect,
            _ => return None,
        })
    }
}

/// Offsets above this are refused without looking at the packet. The check bounds a variable
/// offset for the kernel verifier, which refuses packet pointers that may move further than
/// `MAX_PACKET_OFF` (0xffff) bytes.
const MAX_OFFSET: usize = 0x7fff;

/// The packet an XDP program sees: `data..data_end`, valid for the run.
///
/// Every access is bounds-checked against the end of the packet in the shape the kernel
/// verifier follows (`start + size > data_end` on a pointer derived from `data`), and each
/// check re-reads `data` and `data_end` from the context (a volatile read on BPF) so that LLVM
/// cannot merge checks into a form the verifier cannot follow.
#[derive(Clone, Copy)]
pub struct XdpContext<'a> {
    #[cfg(target_arch = "bpf")]
    ctx: *const XdpMd,
    /// `data` and `data_end`, shared by every copy of the context so that
    /// [`XdpContext::adjust_head`] and [`XdpContext::adjust_tail`] move them for all.
    #[cfg(not(target_arch = "bpf"))]
    bounds: &'a core::cell::Cell<(usize, usize)>,
    _packet: PhantomData<&'a mut [u8]>,
}

impl core::fmt::Debug for XdpContext<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("XdpContext").field("len", &self.len()).finish()
    }
}

/// The kernel's `struct xdp_md`: the fields an XDP program reads from its context (32-bit loads
/// the kernel and duet's VM rewrite into the real packet pointers).
#[cfg(target_arch = "bpf")]
#[repr(C)]
pub(crate) struct XdpMd {
    data: u32,
    data_end: u32,
}

impl<'a> XdpContext<'a> {
    /// The start and end address of the packet.
    #[inline(always)]
    fn bounds(&self) -> (usize, usize) {
        #[cfg(target_arch = "bpf")]
        {
            // SAFETY: `ctx` is the `xdp_md` the kernel passed to the program; volatile keeps
            // each check's reads of the two fields next to the check.
            unsafe {
                let data = core::ptr::addr_of!((*self.ctx).data).read_volatile() as usize;
                let data_end = core::ptr::addr_of!((*self.ctx).data_end).read_volatile() as usize;
                (data, data_end)
            }
        }
        #[cfg(not(target_arch = "bpf"))]
        self.bounds.get()
    }

    /// The raw context, for helpers that take it (`bpf_tail_call`).
    #[cfg(target_arch = "bpf")]
    #[inline(always)]
    pub(crate) fn raw(&self) -> *mut core::ffi::c_void {
        self.ctx.cast_mut().cast()
    }

    /// Moves the start of the packet by `delta` bytes (`bpf_xdp_adjust_head`): a negative `delta`
    /// makes room in front (to push a header: the new bytes are the headroom's, write them), a
    /// positive one drops bytes from the front (to pop a header). [`Errno::EINVAL`] when that
    /// leaves the headroom the kernel gives (256 bytes less its 40-byte `struct xdp_frame`) or
    /// fewer than 14 bytes. Offsets count from the new start afterwards.
    #[inline(always)]
    pub fn adjust_head(&self, delta: i32) -> Result<(), crate::Errno> {
        #[cfg(target_arch = "bpf")]
        // SAFETY: `ctx` is this program's `xdp_md`; the kernel checks `delta`.
        return crate::Errno::from_ret(unsafe { crate::sys::xdp_adjust_head(self.raw(), delta) });
        #[cfg(target_arch = "wasm32")]
        {
            crate::Errno::from_ret(crate::sys::xdp_adjust_head(delta))?;
            let (data, data_end) = self.bounds.get();
            self.bounds.set(((data as isize + delta as isize) as usize, data_end));
            Ok(())
        }
        #[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
        crate::testing::host_adjust(self.bounds, true, delta)
    }

    /// Moves the end of the packet by `delta` bytes (`bpf_xdp_adjust_tail`): negative trims it,
    /// positive grows it with zero bytes. [`Errno::EINVAL`] past the kernel's buffer (its tailroom
    /// of 320 bytes kept) or under 14 bytes.
    #[inline(always)]
    pub fn adjust_tail(&self, delta: i32) -> Result<(), crate::Errno> {
        #[cfg(target_arch = "bpf")]
        // SAFETY: as for `adjust_head`.
        return crate::Errno::from_ret(unsafe { crate::sys::xdp_adjust_tail(self.raw(), delta) });
        #[cfg(target_arch = "wasm32")]
        {
            crate::Errno::from_ret(crate::sys::xdp_adjust_tail(delta))?;
            let (data, data_end) = self.bounds.get();
            self.bounds.set((data, (data_end as isize + delta as isize) as usize));
            Ok(())
        }
        #[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
        crate::testing::host_adjust(self.bounds, false, delta)
    }

    /// The packet's length in bytes.
    #[inline(always)]
    pub fn len(&self) -> usize {
        let (data, data_end) = self.bounds();
        data_end.wrapping_sub(data)
    }

    /// Whether the packet is empty.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The address of `size` packet bytes at `offset`, or `None` if they are not all inside.
    #[inline(always)]
    fn range(&self, offset: usize, size: usize) -> Option<usize> {
        if offset > MAX_OFFSET {
            return None;
        }
        let (data, data_end) = self.bounds();
        let start = data.wrapping_add(offset);
        if start.wrapping_add(size) > data_end {
            return None;
        }
        Some(start)
    }

    /// Reads a `T` at byte `offset` of the packet; `None` if the packet is too short.
    #[inline(always)]
    pub fn load<T: Pod>(&self, offset: usize) -> Option<T> {
        let start = self.range(offset, size_of::<T>())?;
        // SAFETY: `size_of::<T>()` bytes at `start` lie inside the packet (checked by `range`),
        // and every bit pattern is a valid `T` (`Pod`).
        Some(unsafe { (start as *const T).read_unaligned() })
    }

    /// Writes `value` at byte `offset` of the packet; `None` if the packet is too short.
    #[inline(always)]
    pub fn store<T: Pod>(&self, offset: usize, value: &T) -> Option<()> {
        let start = self.range(offset, size_of::<T>())?;
        // SAFETY: `size_of::<T>()` bytes at `start` lie inside the packet, which the program
        // may modify (the executor copies it back).
        unsafe { (start as *mut T).write_unaligned(*value) };
        Some(())
    }

    /// The Ethernet header, if the packet is long enough to have one.
    #[inline(always)]
    pub fn eth(&self) -> Option<EthHdr> {
        self.load(0)
    }

    /// The IPv4 header (its first 20 bytes) of an Ethernet frame whose type is IPv4 and whose
    /// header says version 4 with a length of at least 20 bytes; `None` otherwise.
    #[inline(always)]
    pub fn ipv4(&self) -> Option<Ipv4Hdr> {
        if self.eth()?.ether_type() != ETH_P_IP {
            return None;
        }
        let ip: Ipv4Hdr = self.load(ETH_HLEN)?;
        (ip.version() == 4 && ip.header_len() >= 20).then_some(ip)
    }
}

/// Runs an XDP program on the context the kernel (or duet's VM) passed.
///
/// # Safety
///
/// `ctx` is the program's `struct xdp_md *`.
#[doc(hidden)]
#[cfg(target_arch = "bpf")]
#[inline(always)]
pub unsafe fn xdp_entry(ctx: *mut core::ffi::c_void, prog: impl FnOnce(XdpContext<'_>) -> XdpAction) -> u32 {
    prog(XdpContext { ctx: ctx.cast_const().cast(), _packet: PhantomData }) as u32
}

/// Runs an XDP program on the packet the Wasm host copied to `data..data + len`.
#[doc(hidden)]
#[cfg(target_arch = "wasm32")]
#[inline(always)]
pub fn xdp_entry_wasm(data: i32, len: i32, prog: impl FnOnce(XdpContext<'_>) -> XdpAction) -> i32 {
    let data = data as u32 as usize;
    let bounds = core::cell::Cell::new((data, data + len.max(0) as usize));
    prog(XdpContext { bounds: &bounds, _packet: PhantomData }) as i32
}

/// A context over the same packet (and bounds) as `ctx`, for a tail call on the host.
#[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
pub(crate) fn host_context_again<'a>(ctx: &XdpContext<'a>) -> XdpContext<'a> {
    XdpContext { bounds: ctx.bounds, _packet: PhantomData }
}

/// A context whose packet is `bounds` (addresses in a host buffer), for `duet::testing`.
#[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
pub(crate) fn host_context(bounds: &core::cell::Cell<(usize, usize)>) -> XdpContext<'_> {
    XdpContext { bounds, _packet: PhantomData }
}
