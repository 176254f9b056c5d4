//! Event programs: a record in, effects (maps, ring buffers) out.

use core::marker::PhantomData;
use core::mem::size_of;

use crate::pod::Pod;

/// Bytes of a probe's record: six 64-bit arguments, argument `i` at bytes `8 * i..8 * i + 8`
/// (little-endian).
pub const PROBE_RECORD_LEN: usize = 48;

/// Where x86-64's `struct pt_regs` keeps a function's six integer arguments (`rdi`, `rsi`,
/// `rdx`, `rcx`, `r8`, `r9`), the registers of the x86-64 calling convention.
#[cfg(target_arch = "bpf")]
const PT_REGS_ARGS: [usize; 6] = [112, 104, 96, 88, 72, 64];

/// The record an event program (`#[duet::probe]`) sees: the arguments of a call, six 64-bit
/// words ([`PROBE_RECORD_LEN`] bytes), the same on every target.
///
/// - In the kernel the program is a kprobe (ELF section `kprobe`; attach it to a kernel
///   function) and the record is the probed function's arguments, taken from its registers
///   (x86-64: `rdi`, `rsi`, `rdx`, `rcx`, `r8`, `r9`).
/// - In Wasm and in host tests it is the record the executor passes (for the sidecar: a request
///   or connection event), laid out as those six words; bytes past [`PROBE_RECORD_LEN`] are not
///   part of it, and a shorter record has fewer arguments.
///
/// So a program reads the same thing everywhere: `arg(0)` is the first argument, and
/// `read::<T>()` a `T` packed into the first arguments.
#[derive(Clone, Copy)]
pub struct ProbeContext<'a> {
    data: usize,
    #[cfg(not(target_arch = "bpf"))]
    len: usize,
    _record: PhantomData<&'a [u8]>,
}

impl core::fmt::Debug for ProbeContext<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ProbeContext").finish_non_exhaustive()
    }
}

impl ProbeContext<'_> {
    /// Argument `i` (0..=5), or `None` past the sixth or past the end of a shorter record.
    #[inline(always)]
    pub fn arg(&self, i: usize) -> Option<u64> {
        if i >= 6 {
            return None;
        }
        self.load::<u64>(8 * i)
    }

    /// Reads a `T` at byte `offset` of the record; `None` if it does not lie inside the record
    /// (its first [`PROBE_RECORD_LEN`] bytes, or fewer when the executor passed fewer).
    #[inline(always)]
    pub fn load<T: Pod>(&self, offset: usize) -> Option<T> {
        let end = offset.checked_add(size_of::<T>())?;
        if end > PROBE_RECORD_LEN {
            return None;
        }
        #[cfg(not(target_arch = "bpf"))]
        {
            if end > self.len {
                return None;
            }
            // SAFETY: `offset..end` lies inside the record (checked above). Every bit pattern is
            // a valid `T` (`Pod`).
            Some(unsafe { ((self.data + offset) as *const T).read_unaligned() })
        }
        #[cfg(target_arch = "bpf")]
        {
            // The arguments, gathered from their registers at constant offsets (the only
            // context reads the kernel allows a kprobe), then read like a record.
            let mut words = [0u64; 6];
            let mut i = 0;
            while i < 6 {
                // SAFETY: `data` is the kprobe's `struct pt_regs`; each offset is one of its
                // 8-byte register fields, which the kernel lets a kprobe read.
                words[i] = unsafe { ((self.data + PT_REGS_ARGS[i]) as *const u64).read_volatile() };
                i += 1;
            }
            // SAFETY: `offset..end` lies inside the 48 bytes of `words` (checked above). Every
            // bit pattern is a valid `T` (`Pod`).
            Some(unsafe { words.as_ptr().cast::<u8>().add(offset).cast::<T>().read_unaligned() })
        }
    }

    /// Reads the record's start as a `T` (`load(0)`).
    #[inline(always)]
    pub fn read<T: Pod>(&self) -> Option<T> {
        self.load(0)
    }
}

/// Runs an event program on the context the kernel passed. Event programs return 0.
///
/// # Safety
///
/// `ctx` is the program's context pointer.
#[doc(hidden)]
#[inline(always)]
pub unsafe fn probe_entry<R>(ctx: *mut core::ffi::c_void, prog: impl FnOnce(ProbeContext<'_>) -> R) -> u32 {
    #[cfg(target_arch = "bpf")]
    let _ = prog(ProbeContext { data: ctx as usize, _record: PhantomData });
    #[cfg(not(target_arch = "bpf"))]
    let _ = (ctx, prog);
    0
}

/// Runs an event program on the record the Wasm host copied to `data..data + len`.
#[doc(hidden)]
#[cfg(target_arch = "wasm32")]
#[inline(always)]
pub fn probe_entry_wasm<R>(data: i32, len: i32, prog: impl FnOnce(ProbeContext<'_>) -> R) -> i32 {
    let _ = prog(ProbeContext { data: data as u32 as usize, len: len.max(0) as usize, _record: PhantomData });
    0
}

/// A context over a host buffer, for [`crate::testing::run_probe`].
#[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
pub(crate) fn host_context(record: &[u8]) -> ProbeContext<'_> {
    ProbeContext { data: record.as_ptr() as usize, len: record.len(), _record: PhantomData }
}
