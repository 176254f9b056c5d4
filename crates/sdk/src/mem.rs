//! `memset`, `memcpy`, `memmove`, `memcmp` and `bcmp` for the BPF target.
//!
//! Everyday Rust asks for them: `[0u8; 64]`, `Default::default()` of a big struct, a struct with
//! padding copied by value, `a == b` on slices. LLVM turns those into calls of these C functions,
//! and a BPF program has no C library: without a definition the call stays unresolved and every
//! loader rejects the object with an error that names no source line. bpf-linker has LLVM expand
//! small `memcpy`s inline, never `memset` or `memcmp`; these definitions catch the rest.
//!
//! Each is an ordinary BPF function (a bpf-to-bpf call) whose loop runs once per byte. The
//! verifiers (the kernel's and duet's) check a callee with the caller's argument values, so a
//! call with a constant length — what the compiler emits for arrays and structs — verifies as a
//! bounded loop; a length the verifier cannot bound is refused where it is computed, like any
//! unbounded loop. Byte accesses need no alignment proof (the kernel refuses misaligned stack
//! accesses), and the stores are volatile so that LLVM cannot recognise the loops as the very
//! functions they implement and call them recursively.
//!
//! `memset`, `memcpy` and `memmove` return a null pointer, not `dst` as C's do: `dst` is usually
//! the caller's stack, and the kernel refuses any BPF function that returns a stack pointer
//! ("cannot return stack pointer to the caller"). Nothing reads the result: LLVM emits these
//! calls for its `llvm.memset`/`llvm.memcpy`/`llvm.memmove` intrinsics, which return nothing, and
//! Rust code reaches them only through those intrinsics (`ptr::write_bytes`, `ptr::copy`).

use core::ffi::c_int;

/// Fills `n` bytes at `dst` with `c`; returns null (see the module documentation).
///
/// # Safety
///
/// `dst..dst + n` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dst: *mut u8, c: c_int, n: usize) -> *mut u8 {
    let mut i = 0;
    while i < n {
        // SAFETY: `i < n`, inside the caller's buffer.
        unsafe { dst.add(i).write_volatile(c as u8) };
        i += 1;
    }
    core::ptr::null_mut()
}

/// Copies `n` bytes from `src` to `dst`, which do not overlap; returns null.
///
/// # Safety
///
/// `src..src + n` is readable, `dst..dst + n` writable, and they do not overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    let mut i = 0;
    while i < n {
        // SAFETY: `i < n`, inside both buffers.
        unsafe { dst.add(i).write_volatile(src.add(i).read_volatile()) };
        i += 1;
    }
    core::ptr::null_mut()
}

/// Copies `n` bytes from `src` to `dst`, which may overlap; returns null.
///
/// # Safety
///
/// `src..src + n` is readable and `dst..dst + n` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize) <= (src as usize) {
        // SAFETY: forwarded contract; copying forwards never overwrites a byte not yet read
        // when `dst` starts at or before `src`.
        unsafe { memcpy(dst, src, n) }
    } else {
        let mut i = n;
        while i > 0 {
            i -= 1;
            // SAFETY: `i < n`, inside both buffers; copying backwards is safe for `dst > src`.
            unsafe { dst.add(i).write_volatile(src.add(i).read_volatile()) };
        }
        core::ptr::null_mut()
    }
}

/// Compares `n` bytes: negative, zero or positive as the first differing byte of `a` is less
/// than, equal to or greater than `b`'s.
///
/// # Safety
///
/// `a..a + n` and `b..b + n` are readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> c_int {
    let mut i = 0;
    while i < n {
        // SAFETY: `i < n`, inside both buffers.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return c_int::from(x) - c_int::from(y);
        }
        i += 1;
    }
    0
}

/// Zero when the `n` bytes are equal, non-zero otherwise (what LLVM calls for `a == b`).
///
/// # Safety
///
/// `a..a + n` and `b..b + n` are readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { memcmp(a, b, n) }
}
