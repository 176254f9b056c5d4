//! `prog_array`: slots holding program indices, read by the VM's `bpf_tail_call`. The kernel
//! stores program references (set from userspace by fd); duet stores the index of a program
//! in the caller's program table, and checking that it names a program is the caller's job.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::array::index;
use crate::values::try_vec_with;
use crate::{BPF_ANY, MapError, MapValue};

/// An empty slot. Real entries are `u32`, so they never collide with it.
const EMPTY: u64 = u64::MAX;

pub(crate) struct ProgArray {
    slots: Box<[AtomicU64]>,
}

impl ProgArray {
    pub(crate) fn new(max_entries: u32) -> Result<ProgArray, MapError> {
        let slots = try_vec_with(max_entries as usize, || AtomicU64::new(EMPTY))?;
        Ok(ProgArray { slots: slots.into_boxed_slice() })
    }

    /// The program at `index`, if the slot is filled. Acquire pairs with the update's release,
    /// so a tail call sees the program the updater published.
    #[inline]
    pub(crate) fn get(&self, index: u32) -> Option<u32> {
        let prog = self.slots.get(index as usize)?.load(Ordering::Acquire);
        (prog != EMPTY).then_some(prog as u32)
    }

    /// As the kernel's `bpf_fd_array_map_update_elem`: only `BPF_ANY`, then the index.
    pub(crate) fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        if flags != BPF_ANY {
            return Err(MapError::Invalid(format!("prog_array update flags {flags:#x}: only BPF_ANY")));
        }
        let slot = self.slot(key)?;
        let prog = index(value).ok_or_else(|| MapError::Invalid("prog_array value must be 4 bytes".into()))?;
        slot.store(prog as u64, Ordering::Release);
        Ok(())
    }

    /// As the kernel's `fd_array_map_delete_elem`: `E2BIG` out of range, `ENOENT` if empty.
    pub(crate) fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        let slot = self.slot(key)?;
        if slot.swap(EMPTY, Ordering::AcqRel) == EMPTY { Err(MapError::NotFound) } else { Ok(()) }
    }

    pub(crate) fn entries(&self) -> Vec<(Vec<u8>, MapValue)> {
        (0..self.slots.len() as u32)
            .filter_map(|i| Some((i.to_ne_bytes().to_vec(), MapValue::Single(self.get(i)?.to_ne_bytes().to_vec()))))
            .collect()
    }

    fn slot(&self, key: &[u8]) -> Result<&AtomicU64, MapError> {
        let index = index(key).ok_or_else(|| MapError::Invalid("prog_array key must be 4 bytes".into()))?;
        self.slots.get(index as usize).ok_or(MapError::Full)
    }
}
