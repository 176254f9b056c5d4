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
