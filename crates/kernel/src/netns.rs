//! Entering a network namespace for the duration of a call.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::PathBuf;

use crate::error::{Errno, KernelError};
use crate::sys;

/// The calling thread inside another network namespace; back in its original one when dropped.
///
/// Only the calling thread moves (`setns(2)` is per thread): sockets it opens and interface
/// names it resolves belong to the entered namespace, while the mount namespace, and with it
/// bpffs, stays the host's. That is why `duet attach --netns` works where `ip netns exec duet`
/// would not: `ip netns exec` also gives the process a fresh `/sys` without bpffs.
#[derive(Debug)]
pub struct NetnsGuard {
    original: File,
}

impl NetnsGuard {
    /// Enters `name`: a name under `/run/netns` (as `ip netns add` creates), or a path to a
    /// namespace file such as `/proc/<pid>/ns/net`.
    pub fn enter(name: &str) -> Result<Self, KernelError> {
        let err = |e: &std::io::Error| KernelError::Netns { name: name.to_owned(), errno: Errno::of(e) };
        let path = if name.contains('/') { PathBuf::from(name) } else { PathBuf::from("/run/netns").join(name) };
        let target = File::open(&path).map_err(|e| err(&e))?;
        let original = File::open("/proc/thread-self/ns/net").map_err(|e| err(&e))?;
        sys::setns_net(target.as_fd()).map_err(|e| err(&e))?;
        Ok(Self { original })
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        // Returning can only fail if the original namespace file became invalid, which an open
        // fd prevents; there is nothing better to do than stay.
        let _ = sys::setns_net(self.original.as_fd());
    }
}
