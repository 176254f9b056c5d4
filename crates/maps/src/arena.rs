//! The one place with `unsafe`: a fixed, zeroed allocation that programs and this crate share.
//!
//! Programs write into an arena through raw pointers while other threads read and write the
//! same bytes, so the arena is never viewed as a Rust slice (which would promise no one else
//! writes). This crate touches it only through relaxed atomic loads and stores: a racing
//! program can make a value inconsistent, never make this side undefined behaviour.
#![allow(unsafe_code, reason = "owns the raw allocation that programs point into; every block has a SAFETY note")]

use std::alloc::{self, Layout};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use crate::MapError;

/// Alignment of an arena's start: a cache line, so neighbouring arenas never share one.
const ALIGN: usize = 64;

/// A fixed, zero-initialized byte buffer at a stable address, freed on drop.
pub(crate) struct Arena {
    base: NonNull<u8>,
    len: usize,
    layout: Layout,
}

// SAFETY: an `Arena` owns its allocation (no thread-local state), and every access this crate
// makes to the bytes is atomic, so moving it to another thread or sharing `&Arena` between
// threads cannot cause a data race on this side. Programs' own racing accesses through the raw
// pointers are their business, as in the kernel (see the crate docs).
unsafe impl Send for Arena {}
// SAFETY: as for `Send`: shared access goes only through atomic loads and stores.
unsafe impl Sync for Arena {}

impl Arena {
    /// Allocates `len` zeroed bytes (at least one cache line is reserved, so `len` may be 0).
    pub(crate) fn new(len: usize) -> Result<Arena, MapError> {
        let layout = Layout::from_size_align(len.max(ALIGN), ALIGN).map_err(|_| MapError::NoMemory)?;
        // SAFETY: `layout` has a non-zero size (at least `ALIGN`).
        let ptr = unsafe { alloc::alloc_zeroed(layout) };
        let base = NonNull::new(ptr).ok_or(MapError::NoMemory)?;
        Ok(Arena { base, len, layout })
    }

    /// The usable bytes: start and length.
    pub(crate) fn region(&self) -> (NonNull<u8>, usize) {
        (self.base, self.len)
    }

    /// A pointer to `[offset, offset + len)`, if that range lies inside the arena.
    #[inline]
    pub(crate) fn ptr(&self, offset: usize, len: usize) -> Option<NonNull<u8>> {
        if offset.checked_add(len)? > self.len {
            return None;
        }
        // SAFETY: `offset <= self.len`, which is within the allocation, so the result stays in
        // bounds of (or one past) the same allocated object.
        Some(unsafe { self.base.add(offset) })
    }

    /// The offset of `ptr` from the arena's start, if `ptr` points inside it.
    pub(crate) fn offset_of(&self, ptr: NonNull<u8>) -> Option<usize> {
        let offset = (ptr.as_ptr() as usize).checked_sub(self.base.as_ptr() as usize)?;
        (offset < self.len).then_some(offset)
    }

    /// Copies `src` to `offset` with relaxed atomic stores.
    ///
    /// # Panics
    /// If the range is outside the arena: callers compute offsets from validated indices, so
    /// that would be a bug in this crate; the check keeps it from becoming memory corruption.
    #[inline]
    pub(crate) fn store(&self, offset: usize, src: &[u8]) {
        let dst = self.checked(offset, src.len());
        let mut i = 0;
        while i < src.len() {
            let p = dst.wrapping_add(i);
            if (p as usize).is_multiple_of(8) && src.len() - i >= 8 {
                let mut word = [0u8; 8];
                word.copy_from_slice(&src[i..i + 8]);
                // SAFETY: `[p, p + 8)` is inside the arena (checked above), `p` is 8-aligned,
                // and all of this crate's accesses to arena bytes are atomic.
                unsafe { AtomicU64::from_ptr(p.cast::<u64>()) }.store(u64::from_ne_bytes(word), Ordering::Relaxed);
                i += 8;
            } else {
                // SAFETY: `p` is inside the arena (checked above); `AtomicU8` needs no alignment.
                unsafe { AtomicU8::from_ptr(p) }.store(src[i], Ordering::Relaxed);
                i += 1;
            }
        }
    }

    /// Copies `dst.len()` bytes from `offset` with relaxed atomic loads.
    ///
    /// # Panics
    /// If the range is outside the arena (a bug in this crate, as for [`Arena::store`]).
    #[inline]
    pub(crate) fn load(&self, offset: usize, dst: &mut [u8]) {
        let src = self.checked(offset, dst.len());
        let mut i = 0;
        while i < dst.len() {
            let p = src.wrapping_add(i);
            if (p as usize).is_multiple_of(8) && dst.len() - i >= 8 {
                // SAFETY: as in `store`: in bounds, 8-aligned, accessed only atomically here.
                let word = unsafe { AtomicU64::from_ptr(p.cast::<u64>()) }.load(Ordering::Relaxed);
                dst[i..i + 8].copy_from_slice(&word.to_ne_bytes());
                i += 8;
            } else {
                // SAFETY: in bounds; `AtomicU8` needs no alignment.
                dst[i] = unsafe { AtomicU8::from_ptr(p) }.load(Ordering::Relaxed);
                i += 1;
            }
        }
    }

    /// Zeroes `[offset, offset + len)` with relaxed atomic stores.
    pub(crate) fn zero(&self, offset: usize, len: usize) {
        const ZEROS: [u8; 256] = [0; 256];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(ZEROS.len());
            self.store(offset + done, &ZEROS[..n]);
            done += n;
        }
    }

    fn checked(&self, offset: usize, len: usize) -> *mut u8 {
        match self.ptr(offset, len) {
            Some(p) => p.as_ptr(),
            None => panic!("arena access [{offset}, +{len}) outside {} bytes", self.len),
        }
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: `base` came from `alloc_zeroed` with exactly `layout` and is freed only here.
        unsafe { alloc::dealloc(self.base.as_ptr(), self.layout) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_and_load_round_trip_at_every_alignment() {
        let arena = Arena::new(64).unwrap();
        for offset in 0..8 {
            for len in 0..=(64 - offset).min(24) {
                let src: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(37).wrapping_add(offset as u8)).collect();
                arena.store(offset, &src);
                let mut dst = vec![0xAA; len];
                arena.load(offset, &mut dst);
                assert_eq!(dst, src, "offset {offset} len {len}");
            }
        }
        arena.zero(3, 40);
        let mut dst = [1u8; 40];
        arena.load(3, &mut dst);
        assert_eq!(dst, [0u8; 40]);
    }

    #[test]
    fn ptr_and_offset_of_check_bounds() {
        let arena = Arena::new(16).unwrap();
        assert!(arena.ptr(0, 16).is_some());
        assert!(arena.ptr(8, 9).is_none());
        assert!(arena.ptr(usize::MAX, 2).is_none());
        let p = arena.ptr(5, 1).unwrap();
        assert_eq!(arena.offset_of(p), Some(5));
        assert_eq!(arena.offset_of(arena.ptr(16, 0).unwrap()), None, "one past the end is outside");
    }

    #[test]
    fn huge_allocation_fails_cleanly() {
        assert!(matches!(Arena::new(usize::MAX - 1024), Err(MapError::NoMemory)));
    }
}
