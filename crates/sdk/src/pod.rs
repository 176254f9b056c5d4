//! `Pod`: types that may be read from arbitrary bytes.

/// A type every bit pattern of its size is a valid value of, with no padding: packet bytes and
/// map values written by another executor or by userspace can be read as it.
///
/// Implemented for the integer types, arrays of `Pod`, and the headers in [`crate::net`]. For
/// your own `#[repr(C)]` structs made of `Pod` fields without padding, implement it yourself.
///
/// # Safety
///
/// Every bit pattern of `size_of::<Self>()` bytes must be a valid `Self`, and `Self` must have
/// no padding bytes (the kernel verifier rejects reads of uninitialized stack bytes, which a
/// key with padding would need).
pub unsafe trait Pod: Copy + 'static {}

macro_rules! pod {
    ($($t:ty),*) => { $(
        // SAFETY: integers accept every bit pattern and have no padding.
        unsafe impl Pod for $t {}
    )* };
}
pod!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, usize, isize);

// SAFETY: an array of `Pod` has no padding between elements and accepts every bit pattern.
unsafe impl<T: Pod, const N: usize> Pod for [T; N] {}

/// A `T` whose every byte is zero, for keys and buffers that must start zeroed (a zero-padded
/// map key, say).
///
/// Use it in BPF programs instead of `[0u8; N]`, `Default::default()` or `mem::zeroed()` for
/// anything over 8 bytes: LLVM turns those into a call of `memset`, which no BPF program has
/// (bpf-linker asks LLVM to expand only `memcpy` inline), so the kernel and duet's verifier reject
/// it. This writes the zeros as single stores LLVM cannot merge back into a `memset`.
#[inline(always)]
pub fn zeroed<T: Pod>() -> T {
    let mut value = core::mem::MaybeUninit::<T>::uninit();
    // SAFETY: `value` has room for `size_of::<T>()` bytes aligned for `T`; once they are all
    // zero it is a valid `T` (`Pod`: every bit pattern is).
    unsafe {
        write_zeros(value.as_mut_ptr().cast(), size_of::<T>(), align_of::<T>());
        hide_contents(&mut value);
        value.assume_init()
    }
}

/// Makes the optimizer forget what `value` holds. On BPF, LLVM otherwise knows that freshly
/// zeroed memory is zero and turns the next copy of it into a `memset` call again; after this,
/// copies stay copies (which bpf-linker's LLVM expands into loads and stores).
#[inline(always)]
pub(crate) fn hide_contents<T>(value: &mut T) {
    #[cfg(target_arch = "bpf")]
    core::hint::black_box(value);
    #[cfg(not(target_arch = "bpf"))]
    let _ = value;
}

/// Writes `len` zero bytes at `ptr`, which is aligned to `align`: on BPF as volatile stores of
/// the widest aligned width (a constant `len` unrolls to `len / 8` stores for 8-byte aligned
/// memory), elsewhere as an ordinary `write_bytes`.
///
/// # Safety
///
/// `ptr..ptr + len` is writable and `ptr` is aligned to `align`.
#[inline(always)]
pub(crate) unsafe fn write_zeros(ptr: *mut u8, len: usize, align: usize) {
    #[cfg(target_arch = "bpf")]
    // SAFETY: every store lies in `ptr..ptr + len` and is aligned (the width is at most `align`
    // and offsets are multiples of it).
    unsafe {
        let mut i = 0;
        if align >= 8 {
            while i + 8 <= len {
                ptr.add(i).cast::<u64>().write_volatile(0);
                i += 8;
            }
        }
        if align >= 4 {
            while i + 4 <= len {
                ptr.add(i).cast::<u32>().write_volatile(0);
                i += 4;
            }
        }
        while i < len {
            ptr.add(i).write_volatile(0);
            i += 1;
        }
    }
    #[cfg(not(target_arch = "bpf"))]
    // SAFETY: forwarded contract.
    unsafe {
        let _ = align;
        ptr.write_bytes(0, len)
    }
}
