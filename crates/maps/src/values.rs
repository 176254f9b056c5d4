//! Value storage shared by the array, hash, LRU and LPM maps: `n_slots` values (times `n_cpus`
//! for per-CPU maps) in one arena, each at a fixed, 8-byte-aligned offset.

use std::ptr::NonNull;

use crate::MapError;
use crate::MapValue;
use crate::arena::Arena;

/// `n` rounded up to a multiple of 8 (the kernel's `round_up(value_size, 8)`).
pub(crate) fn round_up8(n: usize) -> usize {
    n.next_multiple_of(8)
}

/// What an update writes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Write<'a> {
    /// One CPU's value (CPU 0 for maps that are not per-CPU): exactly `value_size` bytes.
    One {
        /// The CPU, already checked to be in range.
        cpu: usize,
        /// The value.
        value: &'a [u8],
    },
    /// Every CPU's value, back to back, each rounded up to 8 bytes (the syscall's layout).
    All(&'a [u8]),
}

/// Slot-indexed value storage. CPU-major layout: each CPU's values are contiguous, and CPU
/// blocks start on a cache line, so threads standing in for different CPUs do not share lines.
pub(crate) struct Values {
    arena: Arena,
    value_size: usize,
    stride: usize,
    cpu_block: usize,
    n_cpus: usize,
    per_cpu: bool,
}

impl Values {
    /// Storage for `n_slots` values of `value_size` bytes, for `n_cpus` CPUs (1 unless per-CPU).
    pub(crate) fn new(value_size: usize, n_slots: usize, n_cpus: usize, per_cpu: bool) -> Result<Values, MapError> {
        let stride = round_up8(value_size);
        let cpu_block =
            stride.checked_mul(n_slots).and_then(|n| n.checked_next_multiple_of(64)).ok_or(MapError::NoMemory)?;
        let total = cpu_block.checked_mul(n_cpus).ok_or(MapError::NoMemory)?;
        Ok(Values { arena: Arena::new(total)?, value_size, stride, cpu_block, n_cpus, per_cpu })
    }

    #[inline]
    fn offset(&self, slot: u32, cpu: usize) -> usize {
        cpu * self.cpu_block + slot as usize * self.stride
    }

    /// The value of `slot` on `cpu` (both already in range).
    #[inline]
    pub(crate) fn ptr(&self, slot: u32, cpu: usize) -> Option<NonNull<u8>> {
        if cpu >= self.n_cpus {
            return None;
        }
        self.arena.ptr(self.offset(slot, cpu), self.value_size)
    }

    /// Writes `write` into `slot`. For a `fresh` slot (a new entry) written for one CPU of a
    /// per-CPU map, the other CPUs' values are zeroed, as the kernel does.
    pub(crate) fn store(&self, slot: u32, write: Write<'_>, fresh: bool) {
        match write {
            Write::One { cpu, value } => {
                if fresh && self.per_cpu {
                    for other in (0..self.n_cpus).filter(|&c| c != cpu) {
                        self.arena.zero(self.offset(slot, other), self.value_size);
                    }
                }
                self.arena.store(self.offset(slot, cpu), value);
            }
            Write::All(values) => {
                for (cpu, value) in values.chunks(self.stride).take(self.n_cpus).enumerate() {
                    self.arena.store(self.offset(slot, cpu), &value[..self.value_size]);
                }
            }
        }
    }

    /// A copy of `slot`: every CPU's value for per-CPU maps.
    pub(crate) fn load(&self, slot: u32) -> MapValue {
        let read = |cpu| {
            let mut value = vec![0; self.value_size];
            self.arena.load(self.offset(slot, cpu), &mut value);
            value
        };
        if self.per_cpu { MapValue::PerCpu((0..self.n_cpus).map(read).collect()) } else { MapValue::Single(read(0)) }
    }

    /// The whole arena, for the VM's region table.
    pub(crate) fn region(&self) -> (NonNull<u8>, usize) {
        self.arena.region()
    }
}

/// `n` values made by `f`, or [`MapError::NoMemory`] instead of an abort when that is too much.
pub(crate) fn try_vec_with<T>(n: usize, f: impl FnMut() -> T) -> Result<Vec<T>, MapError> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| MapError::NoMemory)?;
    v.resize_with(n, f);
    Ok(v)
}
