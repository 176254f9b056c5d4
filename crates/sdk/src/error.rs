//! The error of map and ring-buffer operations: the kernel's errno.

use core::fmt;

/// Why a map, ring-buffer or HTTP helper operation failed: a kernel errno (positive), the same
/// on every executor because every executor follows the kernel's semantics (and, for HTTP
/// programs, the rules of docs/ABI.md).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(i32);

impl Errno {
    /// Not allowed: an HTTP pseudo-header or hop-by-hop header mutated, or a route program
    /// mutating or responding.
    pub const EPERM: Errno = Errno(1);
    /// No entry for the key (`BPF_EXIST` update, delete of a missing key, `add_u64` of a
    /// missing key); an absent HTTP header or field.
    pub const ENOENT: Errno = Errno(2);
    /// The map is full, or an array index is out of range; or an HTTP program made more than 32
    /// header mutations.
    pub const E2BIG: Errno = Errno(7);
    /// Bad address: a packet offset past the end of the packet (skb helpers).
    pub const EFAULT: Errno = Errno(14);
    /// The ring buffer has no room for the record.
    pub const EAGAIN: Errno = Errno(11);
    /// The key exists and the update asked for `BPF_NOEXIST`.
    pub const EEXIST: Errno = Errno(17);
    /// An invalid argument (unknown flags, an offset outside the value, a header name that is
    /// not a token, a header value with CR/LF/NUL, ...).
    pub const EINVAL: Errno = Errno(22);

    /// The errno from a helper's negative return value; `None` for success (`>= 0`).
    #[inline(always)]
    pub(crate) fn from_ret(ret: i64) -> Result<(), Errno> {
        if ret < 0 { Err(Errno((-ret) as i32)) } else { Ok(()) }
    }

    /// The errno as a positive number.
    pub const fn get(self) -> i32 {
        self.0
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            Errno::EPERM => "EPERM",
            Errno::ENOENT => "ENOENT",
            Errno::E2BIG => "E2BIG",
            Errno::EFAULT => "EFAULT",
            Errno::EAGAIN => "EAGAIN",
            Errno::EEXIST => "EEXIST",
            Errno::EINVAL => "EINVAL",
            _ => return write!(f, "Errno({})", self.0),
        };
        f.write_str(name)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?} ({})", self.0)
    }
}
