//! # duet-kernel — eBPF objects in the Linux kernel
//!
//! **API boundary that touches the OS.** This crate is one of duet's edges where I/O happens: it
//! makes `bpf(2)` calls (through aya, and through one function of its own in `sys.rs`) and pins
//! threads to CPUs. Everything below it in the workspace (isa, object, verifier, vm, maps) is pure.
//!
//! Today it provides the kernel row of every differential test and benchmark: [`test_run`] loads
//! an unmodified `.bpf.o` with aya, seeds its maps and tail-call tables, runs one program over
//! packets with `BPF_PROG_TEST_RUN`, and returns each packet's verdict and output bytes, every
//! map's contents and every ring-buffer record. [`check_access`] says up front whether this
//! process may load BPF programs at all, and what is missing if not.
//!
//! Map naming follows the ELF object, as aya does: maps by their symbol (BTF `.maps` or legacy
//! `maps`), global data by section (`.data`, `.bss`, `.rodata`, `.rodata.str1.1`, ...), each a
//! one-entry array whose key is the 4-byte index 0 and whose value is the whole section.
//!
//! Nothing outlives a call: every program and map fd is closed when [`test_run`] returns, on
//! success or error. Maps that ask to be pinned by name (`LIBBPF_PIN_BY_NAME`) are pinned in a
//! private bpffs directory that is removed on return, so no run sees another run's state.
//!
//! Deployment (`deploy.rs`, `pinned.rs`, `bpffs.rs`): [`attach`] loads one program, attaches it
//! through a BPF link (XDP, TC, kprobe/kretprobe, tracepoint, cgroup connect4, sockops) and pins
//! link, program, maps and metadata under `<pin root>/<id>/` (the id is the kernel's link id), so
//! later processes [`list`] and [`detach`] it and read or edit its maps and ring buffers through
//! [`PinnedMaps`]. The pin root must be on a bpffs that PID 1 sees: under `ip netns exec` duet
//! refuses to pin rather than pin where the attachment would vanish. [`bench()`] times a program
//! with `BPF_PROG_TEST_RUN`, the anchor for the userspace engines.
//!
//! Objects are checked before aya sees them (BTF strings must be UTF-8, and duet's
//! userspace-only program types are refused), and a panic inside aya is contained and returned
//! as [`KernelError::LoaderPanic`] (`boundary.rs`).
//!
//! Unsafe code lives only in `sys.rs` (the `bpf(2)` calls, among them `BPF_PROG_LOAD` with a
//! verifier log buffer, and the CPU affinity, mount, setns and poll calls) and `raw_load.rs`
//! (`capset(2)` on a scratch thread, for the verifier's kernel-agreement tests).
#![deny(unsafe_code)]

mod access;
mod bench;
mod boundary;
mod bpffs;
mod deploy;
mod error;
mod maps;
mod netns;
mod pinned;
mod raw_load;
mod run;
mod scoped;
#[allow(unsafe_code, reason = "the one module that makes raw system calls")]
mod sys;

use std::collections::BTreeMap;

pub use access::check_access;
pub use bench::{BenchOutput, bench};
pub use deploy::{
    AttachRequest, Attachment, DEFAULT_PIN_ROOT, Hook, LoadedProgram, MapLayouts, Metadata, RunStats, TcDirection,
    XdpMode, attach, bpf_stats_enabled, clean_leftovers, detach, find, list, load_check, load_each,
};
pub use error::{Errno, KernelError};
pub use maps::MapKind;
pub use netns::NetnsGuard;
pub use pinned::{EventReader, PerfReader, PinnedMaps, RingBufReader};
pub use raw_load::{Privileges, RawLoadError, RawMap, RawProgram, load_raw};
pub use run::{MapsAndRings, ProgramKind, ProgramSummary, TestRunConfig, TestRunner, list_programs, test_run};
pub use scoped::{ScopedAttachment, ScopedRequest};

/// What to load and run with [`test_run`].
#[derive(Clone, Copy, Debug)]
pub struct TestRunInput<'a> {
    /// The ELF `.bpf.o` bytes.
    pub object: &'a [u8],
    /// The program (function) name to run.
    pub program: &'a str,
    /// Frames, run one by one, in order.
    pub packets: &'a [Vec<u8>],
    /// `(map name, key bytes, value bytes)` written before the first run (`BPF_ANY`). A per-CPU
    /// map gets the value on every CPU; global data uses key `[0, 0, 0, 0]` and the whole section
    /// as value (`.rodata*` cannot be written: the kernel freezes it at load).
    pub maps_in: &'a [(String, Vec<u8>, Vec<u8>)],
    /// `(prog_array map name, index, program name)` entries that seed tail calls.
    pub prog_arrays: &'a [(String, u32, String)],
    /// `BPF_PROG_TEST_RUN` repeat count: 1 for differential tests, more for timing. Each
    /// repetition runs the program again, with its map side effects.
    pub repeat: u32,
}

/// The kernel's answer for one packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketOutcome {
    /// The program's return value (`r0`), or why the kernel refused to run it on this packet.
    ///
    /// Linux 6.18 answers `EINVAL: Invalid argument` for frames shorter than 14 bytes, and for
    /// skb-based programs (socket filter, tc, ...) also for an IPv4 frame shorter than 34 bytes or
    /// an IPv6 frame shorter than 54. skb-based programs see the frame after the kernel consumed
    /// the Ethernet header (`skb->len` is the frame length minus 14).
    pub result: Result<u32, String>,
    /// The packet after the run (after `adjust_head`/`adjust_tail` and writes); empty on refusal.
    pub data_out: Vec<u8>,
    /// The kernel-reported average time per repetition, in nanoseconds.
    pub duration_ns: u32,
}

/// One map entry's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapDump {
    /// The value of a shared map.
    Single(Vec<u8>),
    /// One value per possible CPU, in CPU order (runs happen on CPU 0).
    PerCpu(Vec<Vec<u8>>),
}

/// A map's entries: `(key bytes, value)`, sorted by key.
pub type MapEntries = Vec<(Vec<u8>, MapDump)>;

/// Everything a [`test_run`] observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestRunOutput {
    /// One outcome per input packet, in order.
    pub packets: Vec<PacketOutcome>,
    /// Every map's entries after the last run, sorted by key; arrays list every index.
    ///
    /// Included: array, percpu_array, hash, lru_hash, percpu_hash, lru_percpu_hash, lpm_trie,
    /// devmap, devmap_hash, cpumap and global data. Left out: ring buffers (see
    /// [`ringbufs`](Self::ringbufs)), prog_arrays, and maps whose entries are not plain bytes
    /// (maps of maps, socket and storage maps, perf event arrays, queues, stacks, bloom filters).
    pub maps: BTreeMap<String, MapEntries>,
    /// The records each ring buffer holds after the last run, in the order they were submitted.
    pub ringbufs: BTreeMap<String, Vec<Vec<u8>>>,
}

/// Where cgroup v2 is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on hybrid
/// systems), from `/proc/self/mounts`; `None` without cgroup v2.
pub fn cgroup2_root() -> Option<std::path::PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (_, target, fstype) = (fields.next()?, fields.next()?, fields.next()?);
        (fstype == "cgroup2").then(|| std::path::PathBuf::from(target))
    })
}

/// The number of possible CPUs, as the kernel sizes per-CPU maps (`/sys/devices/system/cpu/possible`).
pub fn possible_cpus() -> Result<usize, KernelError> {
    aya::util::nr_cpus().map_err(|(path, source)| KernelError::CpuCount { path, source })
}
