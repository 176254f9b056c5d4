//! Errors of duet-kernel, each with a message that says what to do.

use std::fmt;
use std::io;
use std::path::PathBuf;

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

    /// A string of the object's BTF is not UTF-8. The kernel quotes BTF names and source lines
    /// in its logs, and aya 0.14 cannot handle a log that is not text, so duet refuses first.
    #[error(
        "the object's BTF string at offset {offset} is not UTF-8 (`{text}`), and the kernel quotes \
         BTF strings in its logs, which must be text; the object is probably corrupt: rebuild it \
         (after re-saving as UTF-8 any source file that is not)"
    )]
    BtfStringNotUtf8 {
        /// The string's offset in the `.BTF` string table.
        offset: usize,
        /// The string, non-ASCII bytes escaped (`\x80`), cut after 48 bytes.
        text: String,
    },

    /// aya (or aya-obj) panicked on this object; the panic was contained.
    #[error(
        "aya, the kernel loader duet uses, failed unexpectedly while {during} ({message}, at \
         {location}); the object is probably corrupt: `duet inspect` and `duet verify` check it \
         without the kernel (please report it if they accept it)"
    )]
    LoaderPanic {
        /// What duet was doing, e.g. `loading the object`.
        during: &'static str,
        /// The panic's message, first line only, cut after 120 characters.
        message: String,
        /// Where the panic happened (crate-relative file and line).
        location: String,
    },

    /// A global data section larger than a map value may be (aya would allocate all of it, and
    /// a failed allocation aborts the process).
    #[error(
        "global data section `{section}` claims {size} bytes; a map value (and so a global data section) is at most {max} bytes"
    )]
    GlobalDataTooLarge {
        /// The section's name.
        section: String,
        /// The size its header claims.
        size: u64,
        /// The limit, [`duet_object::MAX_GLOBAL_DATA`].
        max: u64,
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

    /// The program is in the object, but duet's kernel loader leaves it out: its section name
    /// means nothing to libbpf, or aya cannot load its type ([`duet_object::kernel_object`]).
    #[error("program `{program}` cannot be loaded: {reason}")]
    ProgramRefused {
        /// The program name.
        program: String,
        /// Why.
        reason: String,
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

    /// A map write got the wrong number of per-CPU values.
    #[error("map `{map}` takes {expected} values, but {got} were given")]
    MapValueCount {
        /// The map name.
        map: String,
        /// How many it takes, in words.
        expected: String,
        /// How many were given.
        got: usize,
    },

    /// Array entries always exist, so they cannot be deleted.
    #[error(
        "map `{map}` ({kind}) holds an entry for every index, which cannot be deleted; set the value to zeros instead"
    )]
    MapNoDelete {
        /// The map name.
        map: String,
        /// The map type.
        kind: String,
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

    /// Reading or removing an entry of a map failed.
    #[error("could not read or remove an entry of map `{map}` ({errno})")]
    MapAccess {
        /// The map name.
        map: String,
        /// What the kernel answered.
        errno: Errno,
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

    // === Deployment: attach, pin, ps, detach, maps, events ===
    /// bpffs is not mounted where duet pins, and duet could not mount it.
    #[error(
        "bpffs is not mounted at {}, so pinned programs cannot outlive this process ({errno}); \
         mount it as root: mount -t bpf bpf /sys/fs/bpf (duet mounts it itself when run as root)",
        .path.display()
    )]
    BpffsMissing {
        /// The directory that should be on bpffs.
        path: PathBuf,
        /// Why mounting failed.
        errno: Errno,
    },

    /// bpffs is not mounted, and this process runs in a mount namespace of its own, where a
    /// bpffs duet mounted would vanish with the namespace.
    #[error(
        "bpffs is not mounted at /sys/fs/bpf in this process's mount namespace, which is not the \
         host's (e.g. under `ip netns exec`), and pins under {} would vanish with it; run duet \
         in the host's mount namespace, and pass --netns <name> to attach to an interface inside \
         a network namespace",
        .path.display()
    )]
    PrivateMountNamespace {
        /// The pin root.
        path: PathBuf,
    },

    /// The pin root is on a bpffs that PID 1 does not see: one mounted inside a private mount
    /// namespace, whose pins (and the programs they keep attached) vanish with it.
    #[error(
        "{} is on a bpffs mounted only in this process's mount namespace (e.g. inside `ip netns \
         exec` or `unshare -m`), not on the host's /sys/fs/bpf; pins there would vanish with the \
         namespace: run duet in the host's mount namespace, and pass --netns <name> to attach to \
         an interface inside a network namespace",
        .path.display()
    )]
    PrivateBpffs {
        /// The pin root.
        path: PathBuf,
    },

    /// Reading attachments: bpffs is not mounted here because this process runs in a mount
    /// namespace of its own, so whatever is attached cannot be seen from here.
    #[error(
        "bpffs is not mounted at {} in this process's mount namespace, which is not the host's \
         (e.g. under `ip netns exec`), so duet cannot see what is attached; run duet outside \
         `ip netns exec` (attachments inside network namespaces are listed there too)",
        .path.display()
    )]
    BpffsNotMountedHere {
        /// Where bpffs should be.
        path: PathBuf,
    },

    /// Reading attachments: the pin root is a directory outside bpffs, where nothing can be pinned.
    #[error(
        "{} is not on bpffs, so no attachment can be pinned there; --root and $DUET_PIN_ROOT \
         must name a directory on bpffs, such as /sys/fs/bpf/duet",
        .path.display()
    )]
    NotOnBpffs {
        /// The pin root.
        path: PathBuf,
    },

    /// The directory an attachment is renamed to at the end of `attach` already exists.
    #[error(
        "could not name the attachment {}: a directory of that name already exists (left by an \
         older duet?); `duet detach {id}` removes it",
        .path.display()
    )]
    AttachmentIdTaken {
        /// The id (the kernel's link id).
        id: String,
        /// The directory.
        path: PathBuf,
    },

    /// The program is one of duet's userspace-only program types, which the kernel cannot load.
    #[error(
        "program {program} is a duet userspace-only program type ({section}): it runs in `duet \
         mesh`, not in the kernel{}",
        if *.kernel_programs { "; the kernel loads whole objects, so build its kernel programs into an object of their own" } else { "" }
    )]
    UserspaceOnlyProgram {
        /// The program (function) name.
        program: String,
        /// Its section, e.g. `duet/http_request`.
        section: String,
        /// Whether the object also has kernel programs.
        kernel_programs: bool,
    },

    /// A file or directory under the pin root could not be created, read or removed.
    #[error("could not {action} {}", .path.display())]
    PinIo {
        /// What was attempted, e.g. `create the pin directory`.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },

    /// Pinning or opening a pinned object failed.
    #[error("could not {action} {} ({errno})", .path.display())]
    Pin {
        /// What was attempted, e.g. `pin map BLOCKLIST at`.
        action: String,
        /// The path.
        path: PathBuf,
        /// What the kernel answered.
        errno: Errno,
    },

    /// No attachment with this id (or pin path) exists.
    #[error("no duet attachment `{id}` under {}; `duet ps` lists them{}", .root.display(), if .available.is_empty() { " (there are none)".to_owned() } else { format!(" (there are: {})", .available.join(", ")) })]
    AttachmentNotFound {
        /// The id or path asked for.
        id: String,
        /// The pin root searched.
        root: PathBuf,
        /// The ids that exist.
        available: Vec<String>,
    },

    /// An attachment's metadata is missing or unreadable.
    #[error("the metadata of attachment {} is unreadable ({reason}); `duet detach` still removes it", .path.display())]
    Metadata {
        /// The attachment directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// The program's type does not fit the requested hook.
    #[error("program `{program}` is a {kind} program, so it cannot attach to {hook}; {hint}")]
    HookMismatch {
        /// The program name.
        program: String,
        /// Its type.
        kind: String,
        /// The requested hook.
        hook: String,
        /// Which hook flag fits the program instead.
        hint: String,
    },

    /// No program was named, and not exactly one program of the object fits the hook.
    #[error("{} of the object fit{} {hook}; {}", if .fitting.is_empty() { "no program".to_owned() } else { format!("{} programs", .fitting.len()) }, if .fitting.is_empty() { "s" } else { "" }, if .fitting.is_empty() { format!("it has: {}", .programs.join(", ")) } else { format!("choose one with --program: {}", .fitting.join(", ")) })]
    NoProgramForHook {
        /// The hook.
        hook: String,
        /// The programs that fit.
        fitting: Vec<String>,
        /// Every program of the object, with its type.
        programs: Vec<String>,
    },

    /// The network interface does not exist (in the chosen network namespace).
    #[error("network interface `{name}` not found{}; `ip link` lists the interfaces", match .netns { Some(ns) => format!(" in network namespace `{ns}`"), None => String::new() })]
    InterfaceNotFound {
        /// The interface name.
        name: String,
        /// The network namespace searched, if not this process's.
        netns: Option<String>,
    },

    /// The network namespace could not be entered.
    #[error("could not enter network namespace `{name}` ({errno}); `ip netns list` shows the named ones")]
    Netns {
        /// The name or path given.
        name: String,
        /// What the kernel answered.
        errno: Errno,
    },

    /// The cgroup path is not a directory of a cgroup v2 hierarchy.
    #[error(
        "{} is not a cgroup v2 directory{reason}; cgroup hooks need the unified hierarchy \
         (mount -t cgroup2 none /sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid systems)",
        .path.display()
    )]
    NotCgroup2 {
        /// The path given.
        path: PathBuf,
        /// Extra detail (e.g. the open error).
        reason: String,
    },

    /// tracefs is not mounted and could not be mounted.
    #[error(
        "tracepoints need tracefs, which is not mounted at /sys/kernel/tracing and could not be \
         mounted ({errno}); as root: mount -t tracefs tracefs /sys/kernel/tracing"
    )]
    TracefsMissing {
        /// Why mounting failed.
        errno: Errno,
    },

    /// The running kernel is too old for this hook (or for pinnable links on it).
    #[error("{hook} needs Linux {needed} or newer for a pinnable BPF link, and this kernel is {running}{detail}")]
    KernelTooOld {
        /// The hook, e.g. `tc (tcx)`.
        hook: String,
        /// The minimum version, e.g. `6.6`.
        needed: &'static str,
        /// The running kernel's version.
        running: String,
        /// What the kernel answered, if it was asked.
        detail: String,
    },

    /// The running kernel lacks the feature a hook needs (not a version, a build option).
    #[error("this kernel cannot attach {hook} programs: {reason}")]
    HookUnsupported {
        /// The hook, e.g. `kprobe`.
        hook: String,
        /// What is missing and what to do.
        reason: String,
    },

    /// The kernel has no such attach point (tracepoint, kernel function).
    #[error("{what} does not exist in this kernel; {hint}")]
    NoSuchAttachPoint {
        /// E.g. `tracepoint nosuch/event`.
        what: String,
        /// Where to look for the valid ones.
        hint: String,
    },

    /// The kernel refused to attach the program.
    #[error("the kernel refused to attach program `{program}` to {hook} ({errno}){hint}")]
    Attach {
        /// The program name.
        program: String,
        /// The hook, e.g. `xdp on veth0 (native)`.
        hook: String,
        /// What the kernel answered.
        errno: Errno,
        /// What to try, starting with `; `, or empty.
        hint: String,
    },

    /// Attaching failed inside aya for a reason other than a syscall (bad kprobe name, ...).
    #[error("could not attach program `{program}` to {hook}")]
    AttachOther {
        /// The program name.
        program: String,
        /// The hook.
        hook: String,
        /// aya's error.
        #[source]
        source: Box<aya::programs::ProgramError>,
    },

    /// A map lookup found no entry for this key (e.g. `duet maps delete` of an absent key).
    #[error("map `{map}` has no entry for key {key}")]
    NoSuchKey {
        /// The map name.
        map: String,
        /// The key in hex.
        key: String,
    },

    /// The attachment has no map suitable for the request (ring buffer, named map, ...).
    #[error("{what}; the attachment has: {}", if .available.is_empty() { "no maps".to_owned() } else { .available.join(", ") })]
    NoSuchMap {
        /// What was looked for, e.g. `no ring buffer map`.
        what: String,
        /// The maps it has.
        available: Vec<String>,
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
