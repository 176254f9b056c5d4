//! `array` and `percpu_array`: `max_entries` values indexed by a `u32` key, all present from
//! creation, zero-initialized. No locks: the index is the slot.

use std::ptr::NonNull;

use crate::values::{Values, Write};
use crate::{BPF_NOEXIST, MapError, MapValue, check_update_flags};

/// The `u32` index a 4-byte array key holds (host-endian, as in the kernel).
#[inline]
pub(crate) fn index(key: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(key.try_into().ok()?))
}

pub(crate) struct ArrayMap {
    values: Values,
    max_entries: u32,
}

impl ArrayMap {
    pub(crate) fn new(value_size: usize, max_entries: u32, n_cpus: usize, per_cpu: bool) -> Result<ArrayMap, MapError> {
        let values = Values::new(value_size, max_entries as usize, n_cpus, per_cpu)?;
        Ok(ArrayMap { values, max_entries })
    }

    #[inline]
    pub(crate) fn lookup_ptr(&self, key: &[u8], cpu: usize) -> Option<NonNull<u8>> {
        let index = index(key)?;
        if index >= self.max_entries {
            return None;
        }
        self.values.ptr(index, cpu)
    }

    /// As the kernel's `array_map_update_elem`: bad flags, then the index, then `BPF_NOEXIST`
    /// (every element exists).
    pub(crate) fn update(&self, key: &[u8], write: Write<'_>, flags: u64) -> Result<(), MapError> {
        check_update_flags(flags)?;
        let index = index(key).ok_or_else(|| MapError::Invalid("array key must be 4 bytes".into()))?;
        if index >= self.max_entries {
            return Err(MapError::Full);
        }
        if flags == BPF_NOEXIST {
            return Err(MapError::Exists);
        }
        self.values.store(index, write, false);
        Ok(())
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<MapValue> {
        let index = index(key)?;
        (index < self.max_entries).then(|| self.values.load(index))
    }

    pub(crate) fn entries(&self) -> Vec<(Vec<u8>, MapValue)> {
        (0..self.max_entries).map(|i| (i.to_ne_bytes().to_vec(), self.values.load(i))).collect()
    }

    pub(crate) fn region(&self) -> (NonNull<u8>, usize) {
        self.values.region()
    }
}
