//! The guest's view of memory: a small table of host regions, each access checked against it.
//!
//! Guest addresses are host addresses, so pointers compare and subtract as programs expect.
//! Three kinds of region exist in a run:
//! - per-run regions (the stack, the input memory or packet), in a small fixed table;
//! - long-lived regions (map storage), shared by every run of a module;
//! - the program context (`struct xdp_md`, `struct __sk_buff`, `struct duet_http_md`), which is
//!   not memory at all: loads from it are translated field by field, as the kernel rewrites
//!   context accesses at load time. A 32-bit load of `xdp_md.data` yields the full 64-bit packet pointer.

use crate::TrapKind;

/// Most per-run regions one run can have mapped at once.
pub const MAX_REGIONS: usize = 4;

/// What a region holds, for diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    /// The call stack: the current frame and its callers' frames.
    Stack,
    /// The memory the program was given (`r1`/`r2`).
    Input,
    /// Packet bytes between `data` and `data_end`.
    Packet,
    /// XDP metadata between `data_meta` and `data`.
    PacketMeta,
    /// Storage of a map (values, ring buffer data, global data).
    Map,
}

/// One mapped host region.
#[derive(Clone, Copy, Debug)]
pub struct Region {
    pub(crate) start: u64,
    pub(crate) len: u64,
    pub(crate) ptr: *mut u8,
    pub(crate) writable: bool,
    pub(crate) kind: RegionKind,
}

impl Region {
    pub(crate) const EMPTY: Region =
        Region { start: 0, len: 0, ptr: core::ptr::null_mut(), writable: false, kind: RegionKind::Input };

    /// A read-only region over `bytes`.
    pub fn read_only(bytes: &[u8], kind: RegionKind) -> Self {
        Region {
            start: bytes.as_ptr() as u64,
            len: bytes.len() as u64,
            ptr: bytes.as_ptr().cast_mut(),
            writable: false,
            kind,
        }
    }

    /// A writable region over `bytes`.
    pub fn writable(bytes: &mut [u8], kind: RegionKind) -> Self {
        Region {
            start: bytes.as_mut_ptr() as u64,
            len: bytes.len() as u64,
            ptr: bytes.as_mut_ptr(),
            writable: true,
            kind,
        }
    }

    /// A region over raw storage that outlives every run that maps it (map storage).
    ///
    /// # Safety
    /// `ptr..ptr + len` must be valid for reads (and writes when `writable`) for as long as any
    /// interpreter holding this region exists, and must not be freed or moved meanwhile.
    pub(crate) unsafe fn from_raw(ptr: *mut u8, len: usize, writable: bool, kind: RegionKind) -> Self {
        Region { start: ptr as u64, len: len as u64, ptr, writable, kind }
    }

    /// First guest address.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the region is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// What the region holds.
    pub fn kind(&self) -> RegionKind {
        self.kind
    }

    /// A sub-range of this region (`offset..offset + len` must lie inside it).
    pub(crate) fn slice(&self, offset: u64, len: u64, kind: RegionKind) -> Region {
        Region {
            start: self.start + offset,
            len,
            ptr: self.ptr.wrapping_add(offset as usize),
            writable: self.writable,
            kind,
        }
    }

    /// The host pointer for `[addr, addr + size)` if it lies inside this region.
    #[inline(always)]
    fn translate(&self, addr: u64, size: u64) -> Option<*mut u8> {
        let offset = addr.wrapping_sub(self.start);
        // `size <= len` is checked first, so `len - size` cannot underflow.
        if size <= self.len && offset <= self.len - size { Some(self.ptr.wrapping_add(offset as usize)) } else { None }
    }
}

/// Long-lived regions (map storage), shareable between threads.
#[derive(Clone, Debug, Default)]
pub(crate) struct SharedRegions(pub(crate) Vec<Region>);

// SAFETY: the pointers in a `SharedRegions` point into map storage owned by `Arc<Map>`s that the
// same module holds for at least as long; they are only dereferenced through the region checks
// of a run, and concurrent access to map values is the guest's business exactly as in the kernel
// (map values are shared between CPUs there too).
unsafe impl Send for SharedRegions {}
// SAFETY: as above; the vector itself is never mutated after the module is built.
unsafe impl Sync for SharedRegions {}

/// Program context layouts the memory map can translate.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Context {
    /// No context region (plain memory runs).
    None,
    /// `struct xdp_md`: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex.
    Xdp { addr: u64, ingress_ifindex: u32, rx_queue_index: u32 },
    /// `struct __sk_buff`: the fields before `data` by `offset / 4`; `data` and `data_end` come
    /// from [`MemoryMap::skb`].
    Skb { addr: u64, fields: [u32; crate::skb::SKB_SCALARS] },
    /// `struct duet_http_md`: six 32-bit fields, read-only.
    Http { addr: u64, fields: [u32; 6] },
}

/// Size of `struct xdp_md`.
pub(crate) const XDP_MD_SIZE: u64 = 24;
/// Size of `struct __sk_buff`.
pub(crate) const SK_BUFF_SIZE: u64 = 192;

/// The packet buffer of an XDP run: headroom, data, tailroom, as the kernel lays out an
/// `xdp_buff`. Offsets are relative to the buffer start.
#[derive(Clone, Copy, Debug)]
pub(crate) struct XdpState {
    pub(crate) buf: Region,
    pub(crate) data_meta: u64,
    pub(crate) data: u64,
    pub(crate) data_end: u64,
}

/// Index of the packet region while an XDP program runs.
pub(crate) const PACKET_REGION: usize = 1;
/// Index of the metadata region while an XDP program runs.
pub(crate) const META_REGION: usize = 2;

/// The region table of one run. Lives on the Rust stack of the run; holds raw pointers into
/// buffers that the run borrows, so it never outlives them.
#[derive(Debug)]
pub(crate) struct MemoryMap<'a> {
    regions: [Region; MAX_REGIONS],
    n: usize,
    shared: &'a [Region],
    pub(crate) context: Context,
    pub(crate) xdp: Option<XdpState>,
    /// The packet of an skb run (socket filter, TC classifier, cgroup skb).
    pub(crate) skb: Option<crate::skb::SkbState>,
}

impl<'a> MemoryMap<'a> {
    pub(crate) fn new(shared: &'a [Region]) -> Self {
        MemoryMap { regions: [Region::EMPTY; MAX_REGIONS], n: 0, shared, context: Context::None, xdp: None, skb: None }
    }

    /// An empty table over the same shared regions.
    pub(crate) fn fresh(&self) -> Self {
        MemoryMap::new(self.shared)
    }

    /// Empties the per-run part (regions, context, packet state) for the next run; the shared
    /// regions stay.
    pub(crate) fn reset(&mut self) {
        self.n = 0;
        self.context = Context::None;
        self.xdp = None;
        self.skb = None;
    }

    /// Adds a per-run region; returns its index, or `None` when the table is full.
    pub(crate) fn push(&mut self, region: Region) -> Option<usize> {
        if self.n == MAX_REGIONS {
            return None;
        }
        self.regions[self.n] = region;
        self.n += 1;
        Some(self.n - 1)
    }

    pub(crate) fn set(&mut self, index: usize, region: Region) {
        self.regions[index] = region;
    }

    pub(crate) fn get(&self, index: usize) -> Region {
        self.regions[index]
    }

    /// Re-derives the packet and metadata regions after `data`/`data_end`/`data_meta` moved.
    pub(crate) fn refresh_packet(&mut self) {
        if let Some(x) = self.xdp {
            self.regions[PACKET_REGION] = x.buf.slice(x.data, x.data_end - x.data, RegionKind::Packet);
            self.regions[META_REGION] = x.buf.slice(x.data_meta, x.data - x.data_meta, RegionKind::PacketMeta);
        }
    }

    #[inline(always)]
    pub(crate) fn translate_read(&self, addr: u64, size: u64) -> Result<*const u8, TrapKind> {
        for region in &self.regions[..self.n] {
            if let Some(p) = region.translate(addr, size) {
                return Ok(p);
            }
        }
        self.translate_shared(addr, size, false).map(|p| p.cast_const())
    }

    #[inline(always)]
    pub(crate) fn translate_write(&self, addr: u64, size: u64) -> Result<*mut u8, TrapKind> {
        for region in &self.regions[..self.n] {
            if region.writable
                && let Some(p) = region.translate(addr, size)
            {
                return Ok(p);
            }
        }
        self.translate_shared(addr, size, true)
    }

    /// Borrows `len` guest bytes at `addr` (helpers' read-only arguments).
    pub(crate) fn slice(&self, addr: u64, len: u64) -> Result<&[u8], TrapKind> {
        let p = self.translate_read(addr, len)?;
        // SAFETY: `translate_read` proved `[p, p + len)` lies inside one region that stays live
        // for the whole run, which outlives this borrow of the region table.
        Ok(unsafe { std::slice::from_raw_parts(p, len as usize) })
    }

    /// Writes `bytes` at `addr` and zeros up to `addr + len` (`bytes.len() <= len`), after
    /// checking that the whole range is writable guest memory.
    pub(crate) fn fill(&self, addr: u64, len: u64, bytes: &[u8]) -> Result<(), TrapKind> {
        let p = self.translate_write(addr, len)?;
        let n = bytes.len().min(len as usize);
        // SAFETY: `translate_write` proved `[p, p + len)` lies inside one live writable region;
        // `bytes` comes from the host (an exchange's value), and `copy` allows overlap anyway.
        unsafe {
            std::ptr::copy(bytes.as_ptr(), p, n);
            std::ptr::write_bytes(p.add(n), 0, len as usize - n);
        }
        Ok(())
    }

    #[inline(never)]
    fn translate_shared(&self, addr: u64, size: u64, write: bool) -> Result<*mut u8, TrapKind> {
        for region in self.shared {
            if (region.writable || !write)
                && let Some(p) = region.translate(addr, size)
            {
                return Ok(p);
            }
        }
        if let Some(offset) = self.context_offset(addr) {
            return Err(TrapKind::ContextAccess { offset, size, write });
        }
        Err(if write { TrapKind::OutOfBoundsWrite { addr, size } } else { TrapKind::OutOfBoundsRead { addr, size } })
    }

    fn context_offset(&self, addr: u64) -> Option<u64> {
        let (start, len) = match self.context {
            Context::None => return None,
            Context::Xdp { addr, .. } => (addr, XDP_MD_SIZE),
            Context::Skb { addr, .. } => (addr, SK_BUFF_SIZE),
            Context::Http { addr, .. } => (addr, crate::http::HTTP_MD_SIZE as u64),
        };
        let offset = addr.wrapping_sub(start);
        (offset < len).then_some(offset)
    }

    /// A load from the program context, translated field by field. `None` when `addr` is not in
    /// the context; an error for an access the program type does not allow.
    #[inline(never)]
    pub(crate) fn context_load(&self, addr: u64, size: u64) -> Option<Result<u64, TrapKind>> {
        let offset = self.context_offset(addr)?;
        let bad = || Err(TrapKind::ContextAccess { offset, size, write: false });
        Some(match self.context {
            Context::None => bad(),
            Context::Xdp { ingress_ifindex, rx_queue_index, .. } => {
                let Some(x) = self.xdp else { return Some(bad()) };
                if size != 4 {
                    return Some(bad());
                }
                match offset {
                    0 => Ok(x.buf.start + x.data),
                    4 => Ok(x.buf.start + x.data_end),
                    8 => Ok(x.buf.start + x.data_meta),
                    12 => Ok(u64::from(ingress_ifindex)),
                    16 => Ok(u64::from(rx_queue_index)),
                    20 => Ok(0),
                    _ => bad(),
                }
            }
            Context::Skb { fields, .. } => {
                let Some(skb) = self.skb else { return Some(bad()) };
                let direct = skb.hook != crate::skb::SkbHook::SocketFilter;
                match (offset, size) {
                    (crate::skb::SKB_DATA, 4) if direct => Ok(skb.packet.start),
                    (crate::skb::SKB_DATA_END, 4) if direct => Ok(skb.packet.start + skb.packet.len),
                    (_, 4) if offset % 4 == 0 => {
                        fields.get(offset as usize / 4).map_or_else(bad, |v| Ok(u64::from(*v)))
                    }
                    _ => bad(),
                }
            }
            Context::Http { fields, .. } if size == 4 && offset % 4 == 0 => {
                fields.get(offset as usize / 4).map_or_else(bad, |v| Ok(u64::from(*v)))
            }
            Context::Http { .. } => bad(),
        })
    }
}
