//! Event programs: a record in, effects (maps, ring buffers) out.

use core::marker::PhantomData;
use core::mem::size_of;

use crate::pod::Pod;

/// The record an event program (`#[duet::probe]`) sees.
///
/// - In Wasm and in host tests it is the event record the executor passes (for the sidecar: a
///   request or connection event), `len` bytes.
/// - In the kernel the program is a kprobe (ELF section `kprobe`; attach it to a kernel
///   function) and the record is the probed function's `struct pt_regs`. The kernel verifier
///   allows only constant offsets into it, so on BPF `load` offsets must be constants; an
///   offset past the record makes the kernel reject the program rather than return `None`.
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
    /// Reads a `T` at byte `offset` of the record; `None` if the record is too short.
    #[inline(always)]
    pub fn load<T: Pod>(&self, offset: usize) -> Option<T> {
        #[cfg(not(target_arch = "bpf"))]
        if offset.checked_add(size_of::<T>())? > self.len {
            return None;
        }
        #[cfg(target_arch = "bpf")]
        if offset > u16::MAX as usize - size_of::<T>() {
            return None;
        }
        // SAFETY: the bytes lie inside the record: checked above, or on BPF proved by the
        // kernel verifier, which rejects context reads outside the record. Every bit pattern is
        // a valid `T` (`Pod`).
        Some(unsafe { ((self.data + offset) as *const T).read_unaligned() })
    }

    /// Reads the whole record as a `T` (`load(0)`).
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
