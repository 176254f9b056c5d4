//! Helpers with the same name and meaning on every target.

use crate::sys;

/// Monotonic time in nanoseconds (`bpf_ktime_get_ns`). Userspace executors can make it
/// deterministic (`duet run --deterministic`, and always in host unit tests).
#[inline(always)]
pub fn ktime_get_ns() -> u64 {
    sys::ktime_get_ns()
}

/// A pseudo-random number (`bpf_get_prandom_u32`); deterministic in tests.
#[inline(always)]
pub fn get_prandom_u32() -> u32 {
    sys::get_prandom_u32()
}

/// The CPU the program runs on (`bpf_get_smp_processor_id`); 0 in host unit tests.
#[inline(always)]
pub fn get_smp_processor_id() -> u32 {
    sys::get_smp_processor_id()
}

/// [`trace!`](crate::trace)'s backend: `msg` ends with a NUL.
#[doc(hidden)]
#[inline(always)]
pub fn trace(msg: &'static [u8]) {
    sys::trace(msg)
}
