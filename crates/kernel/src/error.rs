//! Errors of duet-kernel, each with a message that says what to do.

use std::fmt;
use std::io;

/// Everything that can go wrong when loading and running an object in the kernel.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// The process lacks the capabilities needed to load BPF programs.
    #[error(
        "loading BPF programs needs root or CAP_BPF+CAP_NET_ADMIN, and this process lacks {missing}; \
         run as root (e.g. with sudo)"
    )]
    NoPermission {
        /// The capabilities that are missing, e.g. `CAP_BPF and CAP_NET_ADMIN`.
        missing: String,
    },

    /// The process has the capabilities, yet the kernel refused `bpf(2)`.
    #[error(
        "the kernel refused the bpf() syscall ({errno}) although this process has CAP_BPF and \
         CAP_NET_ADMIN; a seccomp filter (container runtime) or kernel lockdown is blocking BPF: \
         run on the host, or in a container with a seccomp profile that allows bpf()"
    )]
    Blocked {
        /// What the kernel answered.
        errno: Errno,
    },

    /// The kernel has no `bpf(2)` syscall.
    #[error("this kernel has no bpf() syscall (ENOSYS); use a kernel built with CONFIG_BPF_SYSCALL=y")]
    NoBpfSyscall,

    /// Loading a trivial XDP program failed for a reason other than permissions.
    #[error(
        "the kernel could not load a trivial XDP program ({errno}); it may be too old for XDP and \
         BPF_PROG_TEST_RUN (Linux 4.12 or newer is needed)"
    )]
    AccessProbe {
        /// What the kernel answered.
        errno: Errno,
    },

    /// The object has an executable section whose name is no program type aya knows.
    #[error(
        "section `{section}` is not a program type aya 0.14 can load; rename it to a known \
         section (xdp, socket, tc, classifier, kprobe/..., tracepoint/..., ...)"
    )]
    UnsupportedSection {
        /// The ELF section name.
        section: String,
    },

    /// aya could not parse or prepare the object (bad ELF, BTF, relocations, ...).
    #[error("aya could not load the object")]
    Object {
        /// aya's error.
        #[source]
        source: Box<aya::EbpfError>,
    },

    /// The kernel refused to create a map.
    #[error("the kernel refused to create map `{map}` ({errno})")]
    MapCreate {
        /// The map name.
        map: String,
        /// What the kernel answered.
        errno: Errno,
    },

    /// The kernel verifier rejected a program; the log says why.
    #[error("the kernel verifier rejected program `{program}` (BPF_PROG_LOAD returned {errno}); verifier log:\n{log}")]
    Rejected {
        /// The program (function) name.
        program: String,
        /// What `BPF_PROG_LOAD` answered.
        errno: Errno,
        /// The kernel verifier's log.
        log: String,
    },

    /// A program needs an attach target (BTF function or hook name) to load, and test_run has none.
    #[error(
        "program `{program}` ({kind}) needs an attach target to load, so it cannot be test-run; \
         run an xdp, socket or classifier program instead"
    )]
    NeedsAttachTarget {
        /// The program name.
        program: String,
        /// The program type.
        kind: String,
    },

    /// Loading a program failed for a reason other than the verifier.
    #[error("could not load program `{program}`")]
    ProgramLoad {
        /// The program name.
        program: String,
        /// aya's error.
        #[source]
        source: Box<aya::programs::ProgramError>,
    },

    /// The object has no program with this name.
    #[error("the object has no program `{program}`; it has: {}", .available.join(", "))]
    ProgramNotFound {
        /// The requested name.
        program: String,
        /// The programs the object has.
        available: Vec<String>,
    },

    /// The program's type cannot run under `BPF_PROG_TEST_RUN` with packet input.
    #[error(
        "program `{program}` is a {kind} program, which BPF_PROG_TEST_RUN cannot run on packets; \
         only xdp, socket filter, tc classifier, cgroup_skb and flow_dissector programs can"
    )]
    NotTestRunnable {
        /// The program name.
        program: String,
        /// The program type.
        kind: String,
    },

    /// The object has no map with this name.
    #[error("the object has no map `{map}`; it has: {}", .available.join(", "))]
    MapNotFound {
        /// The requested name.
        map: String,
        /// The maps the object has.
        available: Vec<String>,
    },

    /// A map cannot be written with key/value bytes (ring buffer, prog_array, ...).
    #[error("map `{map}` is a {kind} map, which cannot be seeded with key/value bytes")]
    MapNotWritable {
        /// The map name.
        map: String,
        /// The map type.
        kind: String,
    },

    /// A key or value has the wrong length for its map.
    #[error("map `{map}` has {what} size {expected} bytes, but {got} bytes were given")]
    MapSize {
        /// The map name.
        map: String,
        /// `key` or `value`.
        what: &'static str,
        /// The map's size.
        expected: u32,
        /// The given length.
        got: usize,
    },

    /// A `.rodata` map is frozen after loading, so it cannot be seeded.
    #[error(
        "map `{map}` holds read-only global data, which the kernel freezes at load time; \
         seed a writable global (.data or .bss) instead"
    )]
    MapReadOnly {
        /// The map name.
        map: String,
    },

    /// Writing an entry of `maps_in` failed.
    #[error("could not write an entry of map `{map}` ({errno})")]
    MapUpdate {
        /// The map name.
        map: String,
        /// What the kernel answered.
        errno: Errno,
    },

    /// Reading a map back failed.
    #[error("could not read map `{map}` ({errno})")]
    MapRead {
        /// The map name.
        map: String,
        /// What the kernel answered.
        errno: Errno,
    },

    /// A `prog_arrays` entry names a map that is not a prog_array.
    #[error("map `{map}` is a {kind} map, not a prog_array, so it cannot hold tail-call targets")]
    NotProgramArray {
        /// The map name.
        map: String,
        /// The map's type.
        kind: String,
    },

    /// Setting a prog_array entry failed.
    #[error("could not put program `{program}` at index {index} of prog_array `{map}`")]
    ProgramArraySet {
        /// The prog_array map name.
        map: String,
        /// The index.
        index: u32,
        /// The program name.
        program: String,
        /// aya's error.
        #[source]
        source: Box<aya::maps::MapError>,
    },

    /// Reading a ring buffer failed.
    #[error("could not open ring buffer `{map}`")]
    RingBuf {
        /// The map name.
        map: String,
        /// aya's error.
        #[source]
        source: Box<aya::maps::MapError>,
    },

    /// The private bpffs directory for maps that ask to be pinned could not be created.
    #[error(
        "the object has maps pinned by name (LIBBPF_PIN_BY_NAME), and the private directory {} \
         for them could not be created; mount bpffs at /sys/fs/bpf (mount -t bpf bpf /sys/fs/bpf)",
        .path.display()
    )]
    PinDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },

    /// Pinning the test thread to CPU 0 failed.
    #[error(
        "could not pin the test run to CPU 0 ({errno}); CPU 0 must be in this process's allowed \
         CPU set (check taskset or the cgroup cpuset)"
    )]
    CpuAffinity {
        /// What the kernel answered.
        errno: Errno,
    },

    /// The number of possible CPUs could not be read.
    #[error("could not read the number of possible CPUs from {path}")]
    CpuCount {
        /// The file read.
        path: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// An error number from the kernel, shown by its name (`EINVAL: Invalid argument`), never bare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// The errno of an `io::Error`, or `EIO` if it carries none.
    pub fn of(err: &io::Error) -> Self {
        Self(err.raw_os_error().unwrap_or(libc::EIO))
    }

    /// The symbolic name, e.g. `EINVAL`, or `errno N` for numbers this crate does not name.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            libc::EPERM => "EPERM",
            libc::ENOENT => "ENOENT",
            libc::ESRCH => "ESRCH",
            libc::EINTR => "EINTR",
            libc::EIO => "EIO",
            libc::E2BIG => "E2BIG",
            libc::EBADF => "EBADF",
            libc::EAGAIN => "EAGAIN",
            libc::ENOMEM => "ENOMEM",
            libc::EACCES => "EACCES",
            libc::EFAULT => "EFAULT",
            libc::EBUSY => "EBUSY",
            libc::EEXIST => "EEXIST",
            libc::ENODEV => "ENODEV",
            libc::EINVAL => "EINVAL",
            libc::ENOSPC => "ENOSPC",
            libc::ERANGE => "ERANGE",
            libc::ENOSYS => "ENOSYS",
            libc::ELOOP => "ELOOP",
            libc::EOPNOTSUPP => "EOPNOTSUPP",
            libc::ETIMEDOUT => "ETIMEDOUT",
            // The kernel-internal ENOTSUPP, which BPF code paths do return to userspace.
            524 => "ENOTSUPP",
            _ => return None,
        })
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 524 {
            return f.write_str("ENOTSUPP: Operation not supported by the kernel's BPF code");
        }
        // std formats OS errors as "<description> (os error N)"; keep the description only.
        let text = io::Error::from_raw_os_error(self.0).to_string();
        let description = text.rsplit_once(" (os error").map_or(text.as_str(), |(d, _)| d);
        match self.name() {
            Some(name) => write!(f, "{name}: {description}"),
            None => write!(f, "errno {}: {description}", self.0),
        }
    }
}

impl From<&io::Error> for Errno {
    fn from(err: &io::Error) -> Self {
        Self::of(err)
    }
}
