//! The only place where duet-kernel makes system calls itself.
//!
//! aya does almost everything (loading, program fds, `BPF_PROG_TEST_RUN`, prog_array updates,
//! ring buffers), but its map API is typed: keys and values are Rust types whose sizes are known
//! at compile time. A differential test knows map sizes only at run time, so map reads and writes
//! go through [`sys_bpf`] here, with byte buffers. [`check_access`](crate::check_access) loads a
//! two-instruction program through the same function. Every `bpf(2)` call of this crate passes
//! through [`sys_bpf`], so a unit test can replace the kernel with a fake (as aya does).
//!
//! The CPU affinity calls that keep test runs on CPU 0 live here too, and the few libc calls the
//! deployment side needs: `statfs` and `mount` for bpffs/tracefs, `setns` into a network
//! namespace, `if_nametoindex`, and `poll` on a ring buffer.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The `bpf(2)` commands this crate issues itself (values from `enum bpf_cmd`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cmd {
    MapCreate = 0,
    MapLookupElem = 1,
    MapUpdateElem = 2,
    MapDeleteElem = 3,
    MapGetNextKey = 4,
    ProgLoad = 5,
    ObjPin = 6,
    ObjGet = 7,
    LinkCreate = 28,
}

/// The prefix of `union bpf_attr` used by the `BPF_MAP_*_ELEM` and `BPF_MAP_GET_NEXT_KEY` commands.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    /// `value` for lookup/update, `next_key` for get-next-key.
    value: u64,
    flags: u64,
}

/// The prefix of `union bpf_attr` used by `BPF_PROG_LOAD`, up to `expected_attach_type`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The prefix of `union bpf_attr` used by `BPF_MAP_CREATE`, up to `map_name`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

/// The prefix of `union bpf_attr` used by `BPF_OBJ_PIN` and `BPF_OBJ_GET`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct ObjAttr {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
}

/// The prefix of `union bpf_attr` used by `BPF_LINK_CREATE`, up to `flags`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct LinkCreateAttr {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
}

/// An attribute block for [`sys_bpf`]; each variant is a prefix of the kernel's `union bpf_attr`.
#[derive(Debug)]
pub(crate) enum Attr<'a> {
    MapElem(&'a mut MapElemAttr),
    ProgLoad(&'a mut ProgLoadAttr),
    MapCreate(&'a mut MapCreateAttr),
    Obj(&'a mut ObjAttr),
    LinkCreate(&'a mut LinkCreateAttr),
}

/// Calls `bpf(cmd, attr, size_of(attr))`. Returns the syscall's non-negative result or the errno.
///
/// This is the single entry point to the `bpf(2)` syscall for this crate.
pub(crate) fn sys_bpf(cmd: Cmd, attr: Attr<'_>) -> io::Result<i64> {
    #[cfg(test)]
    if let Some(fake) = fake::get() {
        return fake(cmd);
    }
    let (ptr, size) = match attr {
        Attr::MapElem(a) => (std::ptr::from_mut(a).cast::<libc::c_void>(), size_of::<MapElemAttr>()),
        Attr::ProgLoad(a) => (std::ptr::from_mut(a).cast::<libc::c_void>(), size_of::<ProgLoadAttr>()),
        Attr::MapCreate(a) => (std::ptr::from_mut(a).cast::<libc::c_void>(), size_of::<MapCreateAttr>()),
        Attr::Obj(a) => (std::ptr::from_mut(a).cast::<libc::c_void>(), size_of::<ObjAttr>()),
        Attr::LinkCreate(a) => (std::ptr::from_mut(a).cast::<libc::c_void>(), size_of::<LinkCreateAttr>()),
    };
    // SAFETY: `ptr` points to a live, initialised `#[repr(C)]` attribute block of `size` bytes
    // that is a prefix of `union bpf_attr` for `cmd`; the kernel reads and writes only within
    // `size` bytes. Pointers stored inside the block were set by the callers below from live
    // buffers of the sizes the kernel will use (key_size, value_size, insn_cnt, NUL-terminated
    // paths), and those buffers outlive this call.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd as libc::c_long, ptr, size as libc::c_uint) };
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

/// `BPF_MAP_LOOKUP_ELEM`: copies the value for `key` into `value`.
///
/// `value` must be the map's value size (times the rounded per-CPU layout for per-CPU maps),
/// `key` the map's key size.
pub(crate) fn map_lookup(map: BorrowedFd<'_>, key: &[u8], value: &mut [u8]) -> io::Result<()> {
    let mut attr = MapElemAttr {
        map_fd: fd_u32(map),
        key: key.as_ptr() as u64,
        value: value.as_mut_ptr() as u64,
        ..MapElemAttr::default()
    };
    sys_bpf(Cmd::MapLookupElem, Attr::MapElem(&mut attr)).map(drop)
}

/// `BPF_MAP_UPDATE_ELEM` with `BPF_ANY`.
pub(crate) fn map_update(map: BorrowedFd<'_>, key: &[u8], value: &[u8]) -> io::Result<()> {
    let mut attr = MapElemAttr {
        map_fd: fd_u32(map),
        key: key.as_ptr() as u64,
        value: value.as_ptr() as u64,
        ..MapElemAttr::default()
    };
    sys_bpf(Cmd::MapUpdateElem, Attr::MapElem(&mut attr)).map(drop)
}

/// `BPF_SK_MSG_VERDICT` (`enum bpf_attach_type`).
pub(crate) const BPF_SK_MSG_VERDICT: u32 = 7;

/// `BPF_LINK_CREATE`: attaches `prog` to `target` (a cgroup, or a sockmap/sockhash for
/// [`BPF_SK_MSG_VERDICT`], Linux 6.10+) through a link that lives as long as the returned fd.
pub(crate) fn link_create(prog: BorrowedFd<'_>, target: BorrowedFd<'_>, attach_type: u32) -> io::Result<OwnedFd> {
    let mut attr =
        LinkCreateAttr { prog_fd: fd_u32(prog), target_fd: fd_u32(target), attach_type, ..LinkCreateAttr::default() };
    owned_fd(sys_bpf(Cmd::LinkCreate, Attr::LinkCreate(&mut attr))?)
}

/// `BPF_MAP_DELETE_ELEM`.
pub(crate) fn map_delete(map: BorrowedFd<'_>, key: &[u8]) -> io::Result<()> {
    let mut attr = MapElemAttr { map_fd: fd_u32(map), key: key.as_ptr() as u64, ..MapElemAttr::default() };
    sys_bpf(Cmd::MapDeleteElem, Attr::MapElem(&mut attr)).map(drop)
}

/// `BPF_MAP_CREATE` of a plain map without BTF; returns the new fd. `name` is cut to 15 bytes.
pub(crate) fn map_create(
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    name: &str,
) -> io::Result<OwnedFd> {
    let mut map_name = [0; 16];
    let len = name.len().min(15);
    map_name[..len].copy_from_slice(&name.as_bytes()[..len]);
    let mut attr = MapCreateAttr { map_type, key_size, value_size, max_entries, map_name, ..MapCreateAttr::default() };
    let fd = sys_bpf(Cmd::MapCreate, Attr::MapCreate(&mut attr))?;
    owned_fd(fd)
}

/// `BPF_OBJ_PIN`: pins the program, map or link behind `fd` at `path` (in bpffs).
pub(crate) fn obj_pin(fd: BorrowedFd<'_>, path: &Path) -> io::Result<()> {
    let path = c_path(path)?;
    let mut attr = ObjAttr { pathname: path.as_ptr() as u64, bpf_fd: fd_u32(fd), file_flags: 0 };
    sys_bpf(Cmd::ObjPin, Attr::Obj(&mut attr)).map(drop)
}

/// `BPF_OBJ_GET`: opens the object pinned at `path`.
pub(crate) fn obj_get(path: &Path) -> io::Result<OwnedFd> {
    let path = c_path(path)?;
    let mut attr = ObjAttr { pathname: path.as_ptr() as u64, ..ObjAttr::default() };
    let fd = sys_bpf(Cmd::ObjGet, Attr::Obj(&mut attr))?;
    owned_fd(fd)
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn owned_fd(fd: i64) -> io::Result<OwnedFd> {
    let fd = i32::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the bpf commands that return a file descriptor return a new one that nothing
    // else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `BPF_MAP_GET_NEXT_KEY`: the key after `key` (the first key when `key` is `None`) into `next`.
/// Returns `false` at the end of the map.
pub(crate) fn map_next_key(map: BorrowedFd<'_>, key: Option<&[u8]>, next: &mut [u8]) -> io::Result<bool> {
    let mut attr = MapElemAttr {
        map_fd: fd_u32(map),
        key: key.map_or(0, |k| k.as_ptr() as u64),
        value: next.as_mut_ptr() as u64,
        ..MapElemAttr::default()
    };
    match sys_bpf(Cmd::MapGetNextKey, Attr::MapElem(&mut attr)) {
        Ok(_) => Ok(true),
        Err(err) if err.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(err) => Err(err),
    }
}

/// `BPF_PROG_LOAD` of raw instructions (8 bytes each); returns the new fd. A non-empty `log`
/// asks the verifier for its log (level 1), written there; with an empty one it writes none.
/// A log longer than the buffer makes the load fail with `ENOSPC`.
pub(crate) fn prog_load(
    prog_type: u32,
    insns: &[u64],
    license: &std::ffi::CStr,
    log: &mut [u8],
) -> io::Result<OwnedFd> {
    let mut attr = ProgLoadAttr {
        prog_type,
        insn_cnt: u32::try_from(insns.len()).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: u32::from(!log.is_empty()),
        // The kernel writes at most `log_size` bytes, so a buffer longer than u32 is only
        // partly offered.
        log_size: u32::try_from(log.len()).unwrap_or(u32::MAX),
        log_buf: if log.is_empty() { 0 } else { log.as_mut_ptr() as u64 },
        ..ProgLoadAttr::default()
    };
    let fd = sys_bpf(Cmd::ProgLoad, Attr::ProgLoad(&mut attr))?;
    owned_fd(fd)
}

fn fd_u32(fd: BorrowedFd<'_>) -> u32 {
    // File descriptors are non-negative, so the conversion is lossless.
    fd.as_raw_fd().cast_unsigned()
}

// === File systems, namespaces, interfaces, polling ===

/// The `f_type` of the file system holding `path` (`BPF_FS_MAGIC`, `CGROUP2_SUPER_MAGIC`, ...).
pub(crate) fn fs_magic(path: &Path) -> io::Result<u64> {
    let path = c_path(path)?;
    // SAFETY: `statfs` is plain old data for which all-zero is a valid value.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `buf` is a writable `statfs`.
    if unsafe { libc::statfs(path.as_ptr(), &raw mut buf) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // `f_type` is signed on some targets; the magic numbers are bit patterns.
    #[allow(clippy::unnecessary_cast, reason = "f_type is i64 or u32 depending on the target")]
    Ok(buf.f_type as u64)
}

/// `mount(source, target, fstype, 0, NULL)`.
pub(crate) fn mount(source: &str, target: &Path, fstype: &str) -> io::Result<()> {
    let source = CString::new(source).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let fstype = CString::new(fstype).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let target = c_path(target)?;
    // SAFETY: all three strings are NUL-terminated and live across the call; no data is passed.
    let ret = unsafe { libc::mount(source.as_ptr(), target.as_ptr(), fstype.as_ptr(), 0, std::ptr::null()) };
    if ret != 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Moves the calling thread into the network namespace behind `ns` (an open `/proc/.../ns/net`
/// or `/run/netns/<name>` file).
pub(crate) fn setns_net(ns: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: `ns` is an open file descriptor; setns only reads it.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The index of network interface `name` in the calling thread's network namespace.
pub(crate) fn if_index(name: &str) -> Option<u32> {
    let name = CString::new(name).ok()?;
    // SAFETY: `name` is NUL-terminated; if_nametoindex only reads it.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (index != 0).then_some(index)
}

/// Waits up to `timeout_ms` (-1: forever) until `fd` is readable. `Ok(false)` on timeout or a
/// signal.
pub(crate) fn poll_readable(fd: BorrowedFd<'_>, timeout_ms: i32) -> io::Result<bool> {
    poll_any_readable(&[fd], timeout_ms)
}

/// Waits up to `timeout_ms` until one of `fds` is readable; `Ok(false)` on timeout or EINTR.
pub(crate) fn poll_any_readable(fds: &[BorrowedFd<'_>], timeout_ms: i32) -> io::Result<bool> {
    let mut pfds: Vec<libc::pollfd> =
        fds.iter().map(|fd| libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 }).collect();
    let n = libc::nfds_t::try_from(pfds.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `pfds` holds `n` valid, writable pollfds for the duration of the call.
    let ret = unsafe { libc::poll(pfds.as_mut_ptr(), n, timeout_ms) };
    if ret < 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EINTR) {
            return Ok(false);
        }
        return Err(err);
    }
    Ok(ret > 0)
}

// === CPU affinity ===

/// Pins the calling thread to one CPU and restores its previous CPU set when dropped.
///
/// `BPF_PROG_TEST_RUN` runs XDP and skb programs on the calling CPU, so per-CPU map updates land
/// in that CPU's slot. Pinning makes that slot CPU 0, the slot duet's userspace executors use.
#[derive(Debug)]
pub(crate) struct CpuPin {
    previous: libc::cpu_set_t,
}

impl CpuPin {
    /// Pins the calling thread to `cpu`.
    pub(crate) fn new(cpu: usize) -> io::Result<Self> {
        // SAFETY: `cpu_set_t` is a plain bit array for which all-zero is a valid (empty) value.
        let mut previous: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: pid 0 means the calling thread; `previous` is a writable `cpu_set_t` of the
        // size passed.
        if unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &raw mut previous) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: as above, all-zero is a valid empty set.
        let mut wanted: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: CPU_SET only sets bit `cpu` of `wanted` and ignores numbers beyond the set.
        unsafe { libc::CPU_SET(cpu, &mut wanted) };
        set_affinity(&wanted)?;
        Ok(Self { previous })
    }
}

impl Drop for CpuPin {
    fn drop(&mut self) {
        // Restoring can only fail if the previous set became invalid (CPUs hot-unplugged);
        // the thread then stays pinned, which is harmless for the caller.
        let _ = set_affinity(&self.previous);
    }
}

fn set_affinity(set: &libc::cpu_set_t) -> io::Result<()> {
    // SAFETY: pid 0 means the calling thread; `set` is a valid `cpu_set_t` of the size passed.
    if unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

// === Test fake ===

#[cfg(test)]
pub(crate) mod fake {
    //! Replaces the kernel behind [`super::sys_bpf`] for the current thread.

    use std::cell::Cell;
    use std::io;

    use super::Cmd;

    type Fake = fn(Cmd) -> io::Result<i64>;

    thread_local! {
        static FAKE: Cell<Option<Fake>> = const { Cell::new(None) };
    }

    pub(super) fn get() -> Option<Fake> {
        FAKE.with(Cell::get)
    }

    /// Runs `f` with every `bpf(2)` call of this thread answered by `fake`.
    pub(crate) fn with<R>(fake: Fake, f: impl FnOnce() -> R) -> R {
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                FAKE.with(|cell| cell.set(None));
            }
        }
        FAKE.with(|cell| cell.set(Some(fake)));
        let _reset = Reset;
        f()
    }
}
