//! Safe access to a map value from the host side of the `duet` imports.
//!
//! In the eBPF VM a program reads and writes a map value through the pointer
//! [`Map::lookup_ptr`] returns. A Wasm program cannot see host memory, so the imports copy values
//! in and out instead. This module is the one place that dereferences those pointers; it follows
//! duet-maps' rule for value memory (relaxed atomic loads and stores only, 8 bytes at a time where
//! aligned), so a value raced by another thread, or by an eBPF program sharing the map, is never
//! undefined behaviour here.
#![allow(unsafe_code, reason = "dereferences map value pointers; every block says why it is in bounds")]

use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use duet_maps::Map;

/// The value of one key (this CPU's copy for per-CPU maps), borrowed from its map.
pub(crate) struct ValueRef<'m> {
    ptr: NonNull<u8>,
    len: usize,
    _map: PhantomData<&'m Map>,
}

impl<'m> ValueRef<'m> {
    /// `bpf_map_lookup_elem`: the value of `key` on `cpu`, or `None` when the key has no entry.
    pub(crate) fn lookup(map: &'m Map, key: &[u8], cpu: usize) -> Option<Self> {
        let ptr = map.lookup_ptr(key, cpu)?;
        debug_assert!(ptr.as_ptr().addr().is_multiple_of(8), "duet-maps promises 8-byte aligned values");
        Some(ValueRef { ptr, len: map.spec().value_size as usize, _map: PhantomData })
    }

    /// Copies the value into `out`, which must be exactly the value's size.
    pub(crate) fn read_into(&self, out: &mut [u8]) {
        assert_eq!(out.len(), self.len, "callers size `out` from the map's value_size");
        let mut words = out.chunks_exact_mut(8);
        for (i, word) in words.by_ref().enumerate() {
            // SAFETY: `lookup_ptr` returned an 8-byte aligned pointer to `value_size` (= `self.len`)
            // bytes that stay valid while the map lives, and `'m` borrows the map; word `i` ends at
            // `8 * (i + 1) <= self.len`. Only atomic accesses touch value memory (see module docs).
            let v = unsafe { AtomicU64::from_ptr(self.ptr.as_ptr().add(8 * i).cast::<u64>()) }.load(Ordering::Relaxed);
            word.copy_from_slice(&v.to_ne_bytes());
        }
        let tail_start = self.len - self.len % 8;
        for (i, byte) in words.into_remainder().iter_mut().enumerate() {
            // SAFETY: as above; byte `tail_start + i` is below `self.len`.
            *byte = unsafe { AtomicU8::from_ptr(self.ptr.as_ptr().add(tail_start + i)) }.load(Ordering::Relaxed);
        }
    }

    /// Atomically adds `delta` to the `u64` at byte `offset` and returns `true`; `false` (and no
    /// change) when `offset` is not 8-byte aligned or `offset + 8` passes the value's end.
    pub(crate) fn fetch_add_u64(&self, offset: usize, delta: u64) -> bool {
        if !offset.is_multiple_of(8) || offset.checked_add(8).is_none_or(|end| end > self.len) {
            return false;
        }
        // SAFETY: the value is 8-byte aligned and valid for `self.len` bytes while `'m` lives (see
        // `read_into`); `offset` is a multiple of 8 and `offset + 8 <= self.len`.
        let word = unsafe { AtomicU64::from_ptr(self.ptr.as_ptr().add(offset).cast::<u64>()) };
        word.fetch_add(delta, Ordering::Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use duet_maps::{MapSpec, MapType};

    use super::*;

    fn map(value_size: u32) -> Map {
        let spec =
            MapSpec { name: "m".into(), map_type: MapType::Array, key_size: 4, value_size, max_entries: 2, flags: 0 };
        Map::new(spec, 1).expect("array map")
    }

    #[test]
    fn reads_odd_sized_values() {
        let m = map(11);
        let value: Vec<u8> = (1..=11).collect();
        m.update(&1u32.to_le_bytes(), &value, 0, None).expect("update");
        let mut out = [0u8; 11];
        ValueRef::lookup(&m, &1u32.to_le_bytes(), 0).expect("present").read_into(&mut out);
        assert_eq!(out.to_vec(), value);
    }

    #[test]
    fn adds_only_inside_and_aligned() {
        let m = map(16);
        let v = ValueRef::lookup(&m, &0u32.to_le_bytes(), 0).expect("arrays always have the key");
        assert!(v.fetch_add_u64(8, 5));
        assert!(v.fetch_add_u64(8, u64::MAX), "wraps like the kernel's atomic add");
        assert!(!v.fetch_add_u64(9, 1), "unaligned");
        assert!(!v.fetch_add_u64(16, 1), "past the end");
        assert!(!v.fetch_add_u64(usize::MAX - 3, 1), "overflowing offset");
        let mut out = [0u8; 16];
        v.read_into(&mut out);
        assert_eq!(u64::from_le_bytes(out[8..].try_into().expect("8 bytes")), 4);
    }
}
