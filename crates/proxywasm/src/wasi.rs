//! The part of WASI preview 1 (`wasi_snapshot_preview1`) that filters built for `wasm32-wasip1`
//! use: stdout and stderr go to the log, clocks, randomness, empty arguments and environment,
//! `proc_exit` traps. Every other preview-1 function the module imports is a stub returning
//! `ENOSYS` (defined by [`crate::host::define`] from the import's own type), so any module links.
//! There is no file system and no sockets.

use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::host::{Cx, Defs, Fail, HostResult, read, write, write_u32, write_u64};

/// The import module.
pub(crate) const MODULE: &str = "wasi_snapshot_preview1";

const SUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EFAULT: i32 = 21;
const EINVAL: i32 = 28;
/// "Function not supported": what every stubbed function returns.
pub(crate) const ENOSYS: i32 = 52;
const ENOTSUP: i32 = 58;
const ESPIPE: i32 = 70;

/// The guest called `proc_exit`: the callback traps with this.
#[derive(Debug, thiserror::Error)]
#[error("the filter called proc_exit({0})")]
pub(crate) struct ProcExit(pub(crate) i32);

/// A WASI errno from a host result: a bad pointer is `EFAULT`; a trap propagates.
fn errno(res: HostResult<i32>) -> wasmtime::Result<i32> {
    match res {
        Ok(e) => Ok(e),
        Err(Fail::Status(_)) => Ok(EFAULT),
        Err(Fail::Trap(e)) => Err(e),
    }
}

/// Process start, the zero of the monotonic clock.
fn epoch() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

fn clock_ns(id: u32) -> Option<u64> {
    let ns = match id {
        // REALTIME
        0 => SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos(),
        // MONOTONIC, PROCESS_CPUTIME, THREAD_CPUTIME (approximated by the monotonic clock)
        1..=3 => epoch().elapsed().as_nanos(),
        _ => return None,
    };
    Some(u64::try_from(ns).unwrap_or(u64::MAX))
}

/// Non-cryptographic random bytes from std's randomly keyed hasher. Filters use `random_get` to
/// seed hash maps; nothing in the ABI promises cryptographic quality.
fn random_bytes(out: &mut [u8]) {
    let state = std::collections::hash_map::RandomState::new();
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut h = state.build_hasher();
        h.write_usize(i);
        chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
    }
}

/// Reads the `(ptr, len)` iovec array at `iovs` and concatenates what it points to.
fn gather(cx: &Cx<'_>, iovs: u32, n: u32) -> HostResult<Vec<u8>> {
    let table = read(cx, iovs, n.checked_mul(8).ok_or(Fail::Status(0))?)?;
    let mut out = Vec::new();
    for iov in table.chunks_exact(8) {
        let ptr = u32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
        let len = u32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
        out.extend_from_slice(&read(cx, ptr, len)?);
    }
    Ok(out)
}

/// Defines the implemented preview-1 functions.
pub(crate) fn define(d: &mut Defs<'_>) -> Result<(), String> {
    d.wrap(MODULE, "fd_write", |mut cx: Cx<'_>, fd: u32, iovs: u32, n: u32, written_ptr: u32| {
        errno((|| {
            if !(1..=2).contains(&fd) {
                return Ok(EBADF);
            }
            let bytes = gather(&cx, iovs, n)?;
            write_u32(&mut cx, written_ptr, u32::try_from(bytes.len()).unwrap_or(u32::MAX))?;
            cx.data_mut().write_stdio(fd as usize - 1, &bytes);
            Ok(SUCCESS)
        })())
    })?;
    d.wrap(MODULE, "fd_read", |mut cx: Cx<'_>, fd: u32, _iovs: u32, _n: u32, read_ptr: u32| {
        // stdin is always at its end.
        errno(if fd == 0 { write_u32(&mut cx, read_ptr, 0).map(|()| SUCCESS) } else { Ok(EBADF) })
    })?;
    d.wrap(MODULE, "fd_close", |_cx: Cx<'_>, fd: u32| Ok(if fd <= 2 { SUCCESS } else { EBADF }))?;
    d.wrap(MODULE, "fd_seek", |_cx: Cx<'_>, fd: u32, _offset: i64, _whence: u32, _new_ptr: u32| {
        Ok(if fd <= 2 { ESPIPE } else { EBADF })
    })?;
    d.wrap(MODULE, "fd_fdstat_get", |mut cx: Cx<'_>, fd: u32, ptr: u32| {
        errno((|| {
            if fd > 2 {
                return Ok(EBADF);
            }
            // struct fdstat: filetype u8 (2 = character device), flags u16 at 2 (1 = append for
            // stdout/stderr), rights_base u64 at 8, rights_inheriting u64 at 16.
            let mut stat = [0u8; 24];
            stat[0] = 2;
            stat[2] = u8::from(fd != 0);
            // fd_read (bit 1) for stdin, fd_write (bit 6) for the others.
            let rights: u64 = if fd == 0 { 1 << 1 } else { 1 << 6 };
            stat[8..16].copy_from_slice(&rights.to_le_bytes());
            write(&mut cx, ptr, &stat)?;
            Ok(SUCCESS)
        })())
    })?;
    // No preopened directories: the first `fd_prestat_get` ends std's scan.
    d.wrap(MODULE, "fd_prestat_get", |_cx: Cx<'_>, _fd: u32, _ptr: u32| Ok(EBADF))?;
    d.wrap(MODULE, "clock_time_get", |mut cx: Cx<'_>, id: u32, _precision: u64, ptr: u32| {
        errno(match clock_ns(id) {
            Some(ns) => write_u64(&mut cx, ptr, ns).map(|()| SUCCESS),
            None => Ok(ENOTSUP),
        })
    })?;
    d.wrap(MODULE, "clock_res_get", |mut cx: Cx<'_>, id: u32, ptr: u32| {
        errno(if id <= 3 { write_u64(&mut cx, ptr, 1_000).map(|()| SUCCESS) } else { Ok(ENOTSUP) })
    })?;
    d.wrap(MODULE, "random_get", |mut cx: Cx<'_>, ptr: u32, len: u32| {
        // More than a memory's worth cannot be valid.
        if len > 1 << 26 {
            return Ok(EINVAL);
        }
        let mut bytes = vec![0u8; len as usize];
        random_bytes(&mut bytes);
        errno(write(&mut cx, ptr, &bytes).map(|()| SUCCESS))
    })?;
    for name in ["environ_sizes_get", "args_sizes_get"] {
        d.wrap(MODULE, name, |mut cx: Cx<'_>, count_ptr: u32, size_ptr: u32| {
            errno((|| {
                write_u32(&mut cx, count_ptr, 0)?;
                write_u32(&mut cx, size_ptr, 0).map(|()| SUCCESS)
            })())
        })?;
    }
    for name in ["environ_get", "args_get"] {
        d.wrap(MODULE, name, |_cx: Cx<'_>, _ptrs: u32, _buf: u32| Ok(SUCCESS))?;
    }
    d.wrap(MODULE, "sched_yield", |_cx: Cx<'_>| Ok(SUCCESS))?;
    d.wrap(MODULE, "proc_exit", |_cx: Cx<'_>, code: i32| -> wasmtime::Result<()> {
        Err(wasmtime::Error::new(ProcExit(code)))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_is_filled() {
        let mut a = [0u8; 19];
        let mut b = [0u8; 19];
        random_bytes(&mut a);
        random_bytes(&mut b);
        assert_ne!(a, b);
    }
}
