//! The guest's view of memory: a small table of host regions, each access checked against it.

use crate::TrapKind;

/// Most regions one run can have mapped at once (stack, input, and regions helpers add).
pub const MAX_REGIONS: usize = 8;

/// What a region holds, for diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    /// The call stack: the current frame and its callers' frames.
    Stack,
    /// The memory the program was given (`r1`/`r2`).
    Input,
    /// A region a helper exposed.
    Helper,
}

/// One mapped host region. Guest addresses are host addresses, so pointers compare and
/// subtract as programs expect; every access is checked to lie inside one region.
#[derive(Clone, Copy, Debug)]
pub struct Region {
    pub(crate) start: u64,
    pub(crate) len: u64,
    pub(crate) ptr: *mut u8,
    pub(crate) writable: bool,
    pub(crate) kind: RegionKind,
}

impl Region {
    const EMPTY: Region =
        Region { start: 0, len: 0, ptr: core::ptr::null_mut(), writable: false, kind: RegionKind::Helper };

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

    /// The host pointer for `[addr, addr + size)` if it lies inside this region.
    #[inline(always)]
    fn translate(&self, addr: u64, size: u64) -> Option<*mut u8> {
        let offset = addr.wrapping_sub(self.start);
        // `offset <= len - size` without overflow: both subtractions are checked by the
        // comparison order (size <= len first).
        if size <= self.len && offset <= self.len - size { Some(self.ptr.wrapping_add(offset as usize)) } else { None }
    }
}

/// The region table of one run. Lives on the Rust stack of the run; holds raw pointers into
/// buffers that the run borrows, so it never outlives them.
#[derive(Debug)]
pub(crate) struct MemoryMap {
    regions: [Region; MAX_REGIONS],
    n: usize,
}

impl MemoryMap {
    pub(crate) fn new() -> Self {
        MemoryMap { regions: [Region::EMPTY; MAX_REGIONS], n: 0 }
    }

    /// Adds a region; returns its index, or `None` when the table is full.
    pub(crate) fn push(&mut self, region: Region) -> Option<usize> {
        if self.n == MAX_REGIONS {
            return None;
        }
        self.regions[self.n] = region;
        self.n += 1;
        Some(self.n - 1)
    }

    pub(crate) fn len(&self) -> usize {
        self.n
    }

    pub(crate) fn set(&mut self, index: usize, region: Region) {
        self.regions[index] = region;
    }

    pub(crate) fn get(&self, index: usize) -> Region {
        self.regions[index]
    }

    /// Removes regions added after the first `n` (used to drop helper regions after a run).
    pub(crate) fn truncate(&mut self, n: usize) {
        self.n = self.n.min(n);
    }

    #[inline(always)]
    pub(crate) fn translate_read(&self, addr: u64, size: u64) -> Result<*const u8, TrapKind> {
        for region in &self.regions[..self.n] {
            if let Some(p) = region.translate(addr, size) {
                return Ok(p);
            }
        }
        Err(TrapKind::OutOfBoundsRead { addr, size })
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
        Err(TrapKind::OutOfBoundsWrite { addr, size })
    }
}
