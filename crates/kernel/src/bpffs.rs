//! The file system pins live in: a pin root must be on a bpffs that outlives this process and that
//! every other process sees.
//!
//! Each `mount -t bpf` creates a new, empty bpffs. In the host's mount namespace that is what
//! systemd (or duet, when nobody did) mounts at `/sys/fs/bpf`. A process in a mount namespace of
//! its own, as `ip netns exec` and `unshare -m` make, has a `/sys` without it; a bpffs mounted
//! there is private: its pins disappear, and with them the programs they hold, when the
//! namespace does. So duet mounts bpffs only in the host's mount namespace, refuses to pin on a
//! bpffs that PID 1 does not see, and reading commands say when bpffs is not there instead of
//! reporting that nothing is attached.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use crate::error::{Errno, KernelError};
use crate::sys;

/// `BPF_FS_MAGIC` from `linux/magic.h`.
const BPF_FS_MAGIC: u64 = 0xcafe_4a11;
/// bpffs's conventional mount point, the only one duet mounts by itself.
const BPFFS: &str = "/sys/fs/bpf";

/// How this process's mount namespace relates to that of PID 1 (the host's, or a container's
/// init, whose mounts the container's processes share).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MountNamespace {
    /// The same namespace as PID 1.
    Init,
    /// A namespace of its own (`ip netns exec`, `unshare -m`).
    Private,
    /// /proc does not say (PID 1 hidden, e.g. `hidepid`).
    Unknown,
}

/// Makes sure `pin_root` is a directory on a bpffs that outlives this process: mounts bpffs at
/// /sys/fs/bpf when it is missing and this process is in PID 1's mount namespace, and refuses a
/// bpffs that PID 1 does not see.
pub(crate) fn ensure_for_pinning(pin_root: &Path) -> Result<(), KernelError> {
    let existing = nearest_existing(pin_root);
    if !on_bpffs(existing) {
        // Only the conventional mount point is mounted automatically: a custom root must be
        // inside a bpffs the user set up.
        let bpffs = Path::new(BPFFS);
        if !pin_root.starts_with(bpffs) || !bpffs.is_dir() {
            return Err(KernelError::BpffsMissing { path: pin_root.to_owned(), errno: Errno(libc::ENOENT) });
        }
        if mount_namespace() == MountNamespace::Private {
            return Err(KernelError::PrivateMountNamespace { path: pin_root.to_owned() });
        }
        sys::mount("bpf", bpffs, "bpf")
            .map_err(|err| KernelError::BpffsMissing { path: bpffs.to_owned(), errno: Errno::of(&err) })?;
    } else if seen_by_init(existing) == Some(false) {
        return Err(KernelError::PrivateBpffs { path: pin_root.to_owned() });
    }
    std::fs::create_dir_all(pin_root).map_err(|source| KernelError::PinIo {
        action: "create",
        path: pin_root.to_owned(),
        source,
    })
}

/// Whether attachments under `pin_root` can be read from here: `Ok(true)` if the root is on
/// bpffs, `Ok(false)` if it does not exist and bpffs is simply not mounted in the host's mount
/// namespace (so nothing can be attached), an error if bpffs is missing because this process
/// runs in a mount namespace of its own, or the root is a directory outside bpffs.
pub(crate) fn check_readable(pin_root: &Path) -> Result<bool, KernelError> {
    let existing = nearest_existing(pin_root);
    if on_bpffs(existing) {
        return Ok(true);
    }
    if pin_root.exists() || !pin_root.starts_with(BPFFS) {
        return Err(KernelError::NotOnBpffs { path: pin_root.to_owned() });
    }
    match mount_namespace() {
        MountNamespace::Private => Err(KernelError::BpffsNotMountedHere { path: PathBuf::from(BPFFS) }),
        MountNamespace::Init | MountNamespace::Unknown => Ok(false),
    }
}

/// How this process's mount namespace relates to PID 1's.
pub(crate) fn mount_namespace() -> MountNamespace {
    let link = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/mnt"));
    if let (Ok(ours), Ok(init)) = (link("self"), link("1")) {
        return if ours == init { MountNamespace::Init } else { MountNamespace::Private };
    }
    // Reading PID 1's namespace link needs ptrace access, which a container may not grant; its
    // mount table needs none. The same namespace lists the same mounts under the same mount ids,
    // while a new namespace gets copies with new ids.
    let table = |pid: &str| std::fs::read_to_string(format!("/proc/{pid}/mountinfo"));
    match (table("self"), table("1")) {
        (Ok(ours), Ok(init)) if ours == init => MountNamespace::Init,
        (Ok(_), Ok(_)) => MountNamespace::Private,
        _ => MountNamespace::Unknown,
    }
}

/// Whether PID 1 has the bpffs holding `path` mounted (the same instance, by device number);
/// `None` if PID 1's mount table cannot be read.
fn seen_by_init(path: &Path) -> Option<bool> {
    let dev = std::fs::metadata(path).ok()?.dev();
    let init = std::fs::read_to_string("/proc/1/mountinfo").ok()?;
    Some(bpffs_devices(&init).any(|d| d == dev_name(dev)))
}

/// The `major:minor` device numbers of the bpffs mounts in a `/proc/<pid>/mountinfo` table.
fn bpffs_devices(mountinfo: &str) -> impl Iterator<Item = &str> {
    mountinfo.lines().filter_map(|line| {
        // `<id> <parent> <major:minor> <root> <mount point> <options> [optional...] - <type> ...`
        let mut fields = line.split_whitespace();
        let dev = fields.nth(2)?;
        let fstype = fields.skip_while(|f| *f != "-").nth(1)?;
        (fstype == "bpf").then_some(dev)
    })
}

/// A `dev_t` as mountinfo writes it (`major:minor`, in glibc's and the kernel's encoding).
fn dev_name(dev: u64) -> String {
    let major = ((dev & 0x0000_0000_000f_ff00) >> 8) | ((dev & 0xffff_f000_0000_0000) >> 32);
    let minor = (dev & 0xff) | ((dev & 0x0000_0fff_fff0_0000) >> 12);
    format!("{major}:{minor}")
}

fn on_bpffs(path: &Path) -> bool {
    sys::fs_magic(path).ok() == Some(BPF_FS_MAGIC)
}

/// The nearest ancestor of `path` (or `path` itself) that exists: it says which file system the
/// path is (or will be) on.
fn nearest_existing(path: &Path) -> &Path {
    let mut existing = path;
    while !existing.exists() {
        match existing.parent() {
            Some(parent) => existing = parent,
            None => break,
        }
    }
    existing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_root_outside_bpffs_is_refused() {
        let dir = std::env::temp_dir().join(format!("duet-not-bpffs-{}", std::process::id()));
        let err = ensure_for_pinning(&dir).unwrap_err();
        assert!(matches!(err, KernelError::BpffsMissing { .. }), "{err}");
        assert!(err.to_string().contains("mount -t bpf bpf /sys/fs/bpf"), "{err}");
        assert!(!dir.exists());
        let err = check_readable(&dir).unwrap_err();
        assert!(matches!(err, KernelError::NotOnBpffs { .. }), "{err}");
    }

    #[test]
    fn bpffs_mounts_are_found_by_device() {
        let table = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
48 23 0:40 / /sys/fs/bpf rw,relatime shared:7 - bpf bpf rw
49 23 0:41 / /x rw,relatime master:1 - sysfs bpf rw";
        assert_eq!(bpffs_devices(table).collect::<Vec<_>>(), ["0:40"]);
        assert_eq!(dev_name(40), "0:40");
        assert_eq!(dev_name((259 << 8) | 3), "259:3");
        assert_eq!(dev_name((8 << 8) | (256 << 12)), "8:256");
        assert_eq!(dev_name((4096 << 32) | (1 << 8)), "4097:0");
    }
}
