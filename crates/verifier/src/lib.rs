//! # duet-verifier — prove an eBPF program safe before it runs
//!
//! **API boundary.** [`verify`] explores every path of a [`duet_isa::Program`] with abstract
//! states, in the manner of the Linux verifier (the kernel and RFC 9669 are the authority), and
//! returns a [`VerifiedProgram`] — the only thing duet's engines accept — or a [`Rejection`]
//! holding every problem found, each with its instruction, source line (from BTF line info),
//! the registers involved and a plain-English explanation with the usual fix.
//!
//! What is proven:
//! - control flow: every instruction reachable, jumps inside their function, no fall-through off
//!   a function's end, no recursion, at most 8 call frames, at most 512 bytes of stack per call
//!   chain;
//! - termination: every path ends within a budget of processed instructions (1M, as the
//!   kernel); loops that do not make progress are reported at their back edge;
//! - registers: no read before write; scalars tracked with known bits ([`tnum::Tnum`]) and
//!   signed/unsigned 64/32-bit bounds ([`scalar::Scalar`]); pointers tracked by kind (context,
//!   stack, packet with proven range, packet end, map value, map value or NULL, map handle, ring
//!   buffer record, socket) through spills to the stack; numbers that can no longer decide any
//!   check (the kernel's imprecise scalars, found by a static analysis that over-approximates
//!   the kernel's precision tracking) are ignored when states are compared, so loops whose
//!   counters only data decides converge;
//! - memory: every access proven inside its region for its size; context fields as the program
//!   type allows (XDP, socket filter, TC classifier, cgroup skb, and the tracing types, which
//!   duet verifies for the kernel but does not run: kprobe `pt_regs`, the tracepoint record,
//!   raw tracepoint arguments, perf_event `bpf_perf_event_data`, all read-only); no writes to
//!   read-only memory;
//! - helpers: arguments against each helper's prototype (the kernel's, including helpers
//!   duet-vm does not run, which it refuses at load); ring buffer records released on every
//!   path; bpf_loop callbacks (`lddw rX, func`) verified as subprograms called any number of
//!   times, with r1 the index and r2 the context, returning 0 or 1; socket references as the
//!   kernel tracks them: `bpf_sk_lookup_tcp`/`_udp`, `bpf_skc_lookup_tcp` and a sockmap or
//!   sockhash lookup (in XDP, TC and cgroup skb programs) return a socket or NULL that must be
//!   NULL-checked, released with `bpf_sk_release` exactly once on every path (also before a tail
//!   call or a legacy packet load), and is unusable once released; its `struct bpf_sock` (or
//!   `struct bpf_sock_common`) fields read as `bpf_sock_is_valid_access` allows, never written or
//!   offset; `bpf_sk_assign` (TC) takes it without releasing it; `bpf_sk_fullsock` and
//!   `bpf_tcp_sock` (TC, cgroup skb) cast it, sharing its reference (`struct bpf_tcp_sock`
//!   fields as `bpf_tcp_sock_is_valid_access` allows), `bpf_get_listener_sock` gives an
//!   unreferenced one, as does `__sk_buff.sk` (socket filters, TC, cgroup skb: a
//!   `struct bpf_sock_common` or NULL, read with one 8-byte load); an xskmap lookup yields the
//!   AF_XDP socket (only `queue_id` readable); XDP, TC and socket filter programs may put any of
//!   these sockets into a sockmap or sockhash with `bpf_map_update_elem` and delete entries, as
//!   the kernel's `may_update_sockmap` allows (the map takes its own reference);
//!   the tracing helpers
//!   (bpf_probe_read*, bpf_get_current_*, bpf_perf_event_output, bpf_trace_vprintk) for the
//!   program types the kernel gives them to; maps of maps, whose lookups yield (after the NULL
//!   check) the inner map by its template ([`MapInfo::inner`]);
//! - map handles: for a privileged loader, reads of the map's kernel structure through its
//!   handle (`((struct bpf_map *)&m)->max_entries`; `struct bpf_array` for arrays,
//!   `struct bpf_htab` for hashes, ...) as the kernel's `check_ptr_to_map_access` checks them
//!   against its vmlinux BTF ([`kernel_btf`], [`KernelTypes`]): number fields read as unknown
//!   numbers; pointer members (the kernel's `PTR_TO_BTF_ID`) are refused as not supported;
//! - return values: as the kernel checks them, for cgroup skb programs 0 or 1 (the kernel
//!   checks no range for XDP, socket filters, TC classifiers or kprobes), and for duet's http
//!   filters 0 or 1, on every path;
//! - privileges: by default the kernel's rules for a privileged loader (root, or CAP_BPF with
//!   CAP_PERFMON): a pointer may become a number (returned, stored in a map or the packet,
//!   compared, passed as a helper's number, subtracted from another) and uninitialised stack
//!   reads as an unknown number. Such a number is never dereferenced again, so memory safety
//!   does not depend on the mode. [`Config::unprivileged`] applies the rules for a loader
//!   without CAP_PERFMON instead (including the kernel's refusal of the tracing program types,
//!   of a `ptr += reg` that different paths would need masked differently, and of any pointer
//!   comparison but a packet pointer's unsigned ordering with its end; and the kernel's Spectre
//!   v1 exploration: the branch a known comparison rules out is explored speculatively with
//!   the compared registers unknown, where an unsafe instruction only ends the path but a loop
//!   that never ends rejects the program, so bounded loops with known counters are refused —
//!   unless the speculative path meets a stack store the kernel follows with a Spectre v4
//!   barrier (a pointer spill, or a store over a spilled register or never-written bytes), after
//!   which it ends).
//! - duet's userspace-only http programs (docs/ABI.md version 2): their 24-byte read-only
//!   context, the http helpers (10000..=10005) only in them, and no changes from route programs.
//!
//! The crate never panics on any input and has no unsafe code. Its only I/O is reading
//! `/sys/kernel/btf/vmlinux`, once per process and only when a program reads a map's fields
//! through its handle ([`KernelTypes::RunningKernel`], the default; callers may hand it the
//! kernel's BTF themselves or none).
#![forbid(unsafe_code)]

mod cfg;
mod check;
mod diag;
mod helpers;
pub mod kernel_btf;
pub mod scalar;
mod state;
pub mod testfile;
pub mod tnum;

use core::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use duet_isa::{Program, RawInsn};
use duet_object::{LineInfo, MapDef, MapOrigin, Object, ObjectError, ObjectProgram, ProgramKind};

pub use diag::{Code, Diagnostic, SourceLine};

/// Program types duet verifies (the hook decides the context and the allowed helpers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProgramType {
    /// XDP: `struct xdp_md` context; any return value (the kernel drops the packet on an
    /// unknown action at run time and checks no range at load).
    Xdp,
    /// Socket filter: `struct __sk_buff` context (read-only fields, no direct packet access),
    /// legacy packet loads, `bpf_skb_load_bytes`.
    SocketFilter,
    /// TC classifier (`BPF_PROG_TYPE_SCHED_CLS`): `struct __sk_buff` context with direct packet
    /// access (`data`, `data_end`; the packet is writable), legacy packet loads, the skb helpers
    /// that read and change the packet, returns a TC action.
    SchedCls,
    /// cgroup skb (`BPF_PROG_TYPE_CGROUP_SKB`): `struct __sk_buff` context with read-only direct
    /// packet access, `bpf_skb_load_bytes`, returns 0 (drop) or 1 (pass).
    CgroupSkb,
    /// kprobe/kretprobe: `struct pt_regs` context (x86-64 layout, 168 bytes), read-only.
    KProbe,
    /// Tracepoint (`BPF_PROG_TYPE_TRACEPOINT`, `tracepoint/...`, `tp/...`): the tracepoint's
    /// record as context, read-only, any aligned read from offset 8 (the first 8 bytes are the
    /// kernel's own) to the kernel's `PERF_MAX_TRACE_SIZE` (8192 bytes). Verified only: duet's
    /// VM does not run it.
    TracePoint,
    /// Raw tracepoint (`BPF_PROG_TYPE_RAW_TRACEPOINT`, `raw_tp/...`, `raw_tracepoint/...`): the
    /// tracepoint's arguments as an array of at most 12 u64s (96 bytes), read-only, aligned
    /// reads. Verified only.
    RawTracePoint,
    /// perf_event (`BPF_PROG_TYPE_PERF_EVENT`): `struct bpf_perf_event_data` context (x86-64
    /// `pt_regs`, then `sample_period` and `addr`; 184 bytes), read-only, 8-byte reads of the
    /// registers and reads of any size of the two u64 fields. Verified only.
    PerfEvent,
    /// duet's HTTP request filter (`duet/http_request`, userspace only): `struct duet_http_md`
    /// context (24 bytes, read-only), the http helpers 10000..=10005, returns 0 or 1.
    HttpRequest,
    /// duet's HTTP response filter (`duet/http_response`, userspace only): as
    /// [`ProgramType::HttpRequest`].
    HttpResponse,
    /// duet's route program (`duet/route`, userspace only): `struct duet_http_md` context, only the
    /// reading http helpers (10000, 10001), returns any 64-bit number.
    Route,
}

/// The HTTP context's fields by offset.
pub(crate) const HTTP_MD_FIELDS: [&str; 6] =
    ["phase", "status", "remote_ip4", "remote_port", "local_port", "http_version"];

impl ProgramType {
    /// The kernel's `BPF_PROG_TYPE_*` number; `None` for duet's userspace-only program types,
    /// which the kernel does not have.
    pub fn kernel_prog_type(self) -> Option<u32> {
        match self {
            ProgramType::Xdp => Some(6),
            ProgramType::SocketFilter => Some(1),
            ProgramType::KProbe => Some(2),
            ProgramType::SchedCls => Some(3),
            ProgramType::CgroupSkb => Some(8),
            ProgramType::TracePoint => Some(5),
            ProgramType::PerfEvent => Some(7),
            ProgramType::RawTracePoint => Some(17),
            ProgramType::HttpRequest | ProgramType::HttpResponse | ProgramType::Route => None,
        }
    }

    /// Whether the context is a `struct __sk_buff` (socket filter, TC classifier, cgroup skb).
    pub fn is_skb(self) -> bool {
        matches!(self, ProgramType::SocketFilter | ProgramType::SchedCls | ProgramType::CgroupSkb)
    }

    /// Whether this is a tracing program type (kprobe, tracepoint, raw tracepoint, perf_event):
    /// the kernel loads these only for a loader with CAP_PERFMON, and gives them its tracing
    /// helpers (`bpf_tracing_func_proto`).
    pub fn is_tracing(self) -> bool {
        matches!(
            self,
            ProgramType::KProbe | ProgramType::TracePoint | ProgramType::RawTracePoint | ProgramType::PerfEvent
        )
    }

    /// Whether this is one of duet's http program types (userspace only, docs/ABI.md version 2).
    pub fn is_http(self) -> bool {
        matches!(self, ProgramType::HttpRequest | ProgramType::HttpResponse | ProgramType::Route)
    }

    /// A short name (`xdp`, `socket filter`).
    pub fn name(self) -> &'static str {
        match self {
            ProgramType::Xdp => "XDP",
            ProgramType::SocketFilter => "socket filter",
            ProgramType::KProbe => "kprobe",
            ProgramType::SchedCls => "TC classifier",
            ProgramType::CgroupSkb => "cgroup_skb",
            ProgramType::TracePoint => "tracepoint",
            ProgramType::RawTracePoint => "raw tracepoint",
            ProgramType::PerfEvent => "perf_event",
            ProgramType::HttpRequest => "http_request",
            ProgramType::HttpResponse => "http_response",
            ProgramType::Route => "route",
        }
    }

    /// The C name of the context structure.
    pub fn context_name(self) -> &'static str {
        match self {
            ProgramType::Xdp => "struct xdp_md",
            ProgramType::SocketFilter | ProgramType::SchedCls | ProgramType::CgroupSkb => "struct __sk_buff",
            ProgramType::KProbe => "struct pt_regs",
            ProgramType::TracePoint => "the tracepoint record",
            ProgramType::RawTracePoint => "struct bpf_raw_tracepoint_args",
            ProgramType::PerfEvent => "struct bpf_perf_event_data",
            ProgramType::HttpRequest | ProgramType::HttpResponse | ProgramType::Route => "struct duet_http_md",
        }
    }

    fn context_fields(self) -> &'static str {
        match self {
            ProgramType::Xdp => {
                "data (0), data_end (4), data_meta (8), ingress_ifindex (12), rx_queue_index (16), as 32-bit loads"
            }
            ProgramType::SocketFilter => {
                "len (0), pkt_type (4), mark (8), queue_mapping (12), protocol (16), vlan_present (20), vlan_tci (24), vlan_proto (28), priority (32), ingress_ifindex (36), ifindex (40), cb[0..5] (48..68), hash (68), as 32-bit loads, and sk (168, a socket or NULL) as a 64-bit load; read-only"
            }
            ProgramType::SchedCls => {
                "the socket filter's fields, tc_index (44), tc_classid (72), data (76) and data_end (80), as 32-bit loads, read-only"
            }
            ProgramType::CgroupSkb => {
                "the socket filter's fields, data (76) and data_end (80), as 32-bit loads, read-only"
            }
            ProgramType::KProbe => "any aligned field within its 168 bytes (x86-64), read-only",
            ProgramType::TracePoint => {
                "the record's fields from offset 8 (the common fields before are the kernel's) to 8192, aligned to their size, read-only"
            }
            ProgramType::RawTracePoint => "args[0..12] (offsets 0..96), aligned to the read's size, read-only",
            ProgramType::PerfEvent => {
                "regs (0..168) with 8-byte reads, sample_period (168) and addr (176) with aligned reads of any size, read-only"
            }
            ProgramType::HttpRequest | ProgramType::HttpResponse | ProgramType::Route => {
                "phase (0), status (4), remote_ip4 (8), remote_port (12), local_port (16), http_version (20), as 32-bit loads, read-only"
            }
        }
    }

    /// The program type of an object's program, if duet verifies it.
    pub fn from_kind(kind: &ProgramKind) -> Option<Self> {
        match kind {
            ProgramKind::Xdp => Some(ProgramType::Xdp),
            ProgramKind::SocketFilter => Some(ProgramType::SocketFilter),
            ProgramKind::SchedClassifier => Some(ProgramType::SchedCls),
            ProgramKind::CgroupSkb => Some(ProgramType::CgroupSkb),
            ProgramKind::KProbe | ProgramKind::KRetProbe => Some(ProgramType::KProbe),
            ProgramKind::TracePoint => Some(ProgramType::TracePoint),
            ProgramKind::Other(name) if name == "raw_tracepoint" => Some(ProgramType::RawTracePoint),
            ProgramKind::Other(name) if name == "perf_event" => Some(ProgramType::PerfEvent),
            ProgramKind::HttpRequest => Some(ProgramType::HttpRequest),
            ProgramKind::HttpResponse => Some(ProgramType::HttpResponse),
            ProgramKind::Route => Some(ProgramType::Route),
            _ => None,
        }
    }
}

// duet's http program types are the ones duet-helpers' http rules know, so engines can decode a
// verified program's type with `HttpProgram::from_type`.
impl duet_helpers::http::HttpProgramType for ProgramType {
    fn http_program(self) -> Option<duet_helpers::http::HttpProgram> {
        use duet_helpers::http::HttpProgram;
        match self {
            ProgramType::HttpRequest => Some(HttpProgram::Request),
            ProgramType::HttpResponse => Some(HttpProgram::Response),
            ProgramType::Route => Some(HttpProgram::Route),
            ProgramType::Xdp
            | ProgramType::SocketFilter
            | ProgramType::SchedCls
            | ProgramType::CgroupSkb
            | ProgramType::KProbe
            | ProgramType::TracePoint
            | ProgramType::RawTracePoint
            | ProgramType::PerfEvent => None,
        }
    }
}

/// What a `struct __sk_buff` field reads as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SkbValue {
    /// A number of at most this many bytes.
    Scalar(u32),
    /// `data`: a packet pointer.
    Data,
    /// `data_end`: the end of the packet.
    DataEnd,
    /// `sk`: the packet's socket or NULL, a `struct bpf_sock_common` holding no reference (the
    /// kernel's `PTR_TO_SOCK_COMMON_OR_NULL`), read as 8 bytes.
    SockCommon,
}

impl SkbValue {
    /// The size of the one load that reads the field (4 bytes for all but `sk`).
    pub(crate) fn load_size(self) -> u32 {
        if self == SkbValue::SockCommon { 8 } else { 4 }
    }
}

/// Which skb program types may read a field.
const SKB_ALL: u8 = 0b111;
const SKB_TC: u8 = 0b010;
const SKB_DIRECT: u8 = 0b110;

/// The `struct __sk_buff` fields duet's userspace VM provides (and `sk`, which it does not: its
/// read traps there), by offset: name, value, and the program types (bit 0 socket filter, bit 1
/// TC classifier, bit 2 cgroup skb) that may read it, as the kernel's
/// `sk_filter_is_valid_access`, `tc_cls_act_is_valid_access` and `cg_skb_is_valid_access` allow
/// (checked against Linux 6.18 by `tests/verifier/agree/skb_sk_*`).
const SKB_FIELDS: [(i64, &str, SkbValue, u8); 22] = [
    (0, "len", SkbValue::Scalar(4), SKB_ALL),
    (4, "pkt_type", SkbValue::Scalar(1), SKB_ALL),
    (8, "mark", SkbValue::Scalar(4), SKB_ALL),
    (12, "queue_mapping", SkbValue::Scalar(2), SKB_ALL),
    (16, "protocol", SkbValue::Scalar(2), SKB_ALL),
    (20, "vlan_present", SkbValue::Scalar(1), SKB_ALL),
    (24, "vlan_tci", SkbValue::Scalar(2), SKB_ALL),
    (28, "vlan_proto", SkbValue::Scalar(2), SKB_ALL),
    (32, "priority", SkbValue::Scalar(4), SKB_ALL),
    (36, "ingress_ifindex", SkbValue::Scalar(4), SKB_ALL),
    (40, "ifindex", SkbValue::Scalar(4), SKB_ALL),
    (44, "tc_index", SkbValue::Scalar(2), SKB_ALL),
    (48, "cb[0]", SkbValue::Scalar(4), SKB_ALL),
    (52, "cb[1]", SkbValue::Scalar(4), SKB_ALL),
    (56, "cb[2]", SkbValue::Scalar(4), SKB_ALL),
    (60, "cb[3]", SkbValue::Scalar(4), SKB_ALL),
    (64, "cb[4]", SkbValue::Scalar(4), SKB_ALL),
    (68, "hash", SkbValue::Scalar(4), SKB_ALL),
    (72, "tc_classid", SkbValue::Scalar(4), SKB_TC),
    (76, "data", SkbValue::Data, SKB_DIRECT),
    (80, "data_end", SkbValue::DataEnd, SKB_DIRECT),
    (168, "sk", SkbValue::SockCommon, SKB_ALL),
];

fn skb_type_bit(ty: ProgramType) -> u8 {
    match ty {
        ProgramType::SocketFilter => 0b001,
        ProgramType::SchedCls => 0b010,
        ProgramType::CgroupSkb => 0b100,
        _ => 0,
    }
}

/// The `__sk_buff` field at `off` that programs of `ty` may read.
pub(crate) fn skb_field(ty: ProgramType, off: i64) -> Option<(&'static str, SkbValue)> {
    SKB_FIELDS
        .iter()
        .find(|(o, _, _, types)| *o == off && types & skb_type_bit(ty) != 0)
        .map(|(_, name, value, _)| (*name, *value))
}

/// Why programs of `ty` may not read `__sk_buff` at `off`.
pub(crate) fn skb_refusal(ty: ProgramType, off: i64) -> String {
    match SKB_FIELDS.iter().find(|(o, _, _, _)| *o == off) {
        Some((_, name, SkbValue::Data | SkbValue::DataEnd, _)) => format!(
            "{} programs have no direct packet access (`{name}`); read the packet with bpf_skb_load_bytes or legacy packet loads",
            ty.name()
        ),
        Some((_, name, _, _)) => format!("`{name}` is not readable by {} programs", ty.name()),
        None => format!("duet's userspace VM does not provide the __sk_buff field at offset {off}"),
    }
}

/// The name of helper `id` among those duet's verifier knows (`bpf_map_lookup_elem`,
/// `http_header_set`, ...).
pub fn helper_name(id: i64) -> Option<&'static str> {
    helpers::proto(id).map(|p| p.name)
}

/// What the verifier knows about one map (indexed as `lddw rX, map_fd N`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapInfo {
    /// Name, for messages.
    pub name: String,
    /// Kernel map type number.
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum entries.
    pub max_entries: u32,
    /// Creation flags.
    pub flags: u32,
    /// Whether programs may only read the values (`.rodata`, `BPF_F_RDONLY_PROG`).
    pub read_only: bool,
    /// The single value's contents when they are frozen at load (`.rodata`): reads at constant
    /// offsets are then known constants, as in the kernel.
    pub frozen_data: Option<Vec<u8>>,
    /// For a map of maps (`BPF_MAP_TYPE_ARRAY_OF_MAPS`, `HASH_OF_MAPS`): the inner map template
    /// (the kernel's `inner_map_meta`, what every map stored in it must match). A lookup in the
    /// outer map yields, after its NULL check, a map handle with this definition, which
    /// `bpf_map_lookup_elem`/`update_elem`/`delete_elem` (and any helper taking a map of its
    /// type) accept. [`From<&MapDef>`] takes it from duet-object, which reads it from the object
    /// (`__array(values, struct inner)` in BTF, or a legacy inner `bpf_map_def`). `None` where the
    /// template is unknown: the inner handle is then refused by every helper (a conservative
    /// verdict: without the template the key and value sizes the kernel would check against are
    /// unknown).
    pub inner: Option<Box<MapInfo>>,
}

/// `BPF_F_RDONLY_PROG`: programs may only read the map's values.
const BPF_F_RDONLY_PROG: u32 = 1 << 7;
/// `BPF_F_WRONLY_PROG`: programs may only write the map's values.
const BPF_F_WRONLY_PROG: u32 = 1 << 8;
/// `BPF_MAP_TYPE_ARRAY_OF_MAPS`.
const BPF_MAP_TYPE_ARRAY_OF_MAPS: u32 = 12;
/// `BPF_MAP_TYPE_HASH_OF_MAPS`.
const BPF_MAP_TYPE_HASH_OF_MAPS: u32 = 13;

impl MapInfo {
    /// Whether programs may read the values (not `BPF_F_WRONLY_PROG`).
    pub fn prog_can_read(&self) -> bool {
        self.flags & BPF_F_WRONLY_PROG == 0
    }

    /// Whether programs may write the values (not `.rodata`, not `BPF_F_RDONLY_PROG`, not a
    /// devmap or devmap_hash, which the kernel always creates with `BPF_F_RDONLY_PROG`: a
    /// lookup's value is the device's own ifindex and program).
    pub fn prog_can_write(&self) -> bool {
        !self.read_only
            && self.flags & BPF_F_RDONLY_PROG == 0
            && !matches!(
                self.map_type,
                duet_helpers::table::map_type::DEVMAP | duet_helpers::table::map_type::DEVMAP_HASH
            )
    }

    /// A map of `map_type` with the given sizes.
    pub fn new(name: impl Into<String>, map_type: u32, key_size: u32, value_size: u32, max_entries: u32) -> Self {
        MapInfo {
            name: name.into(),
            map_type,
            key_size,
            value_size,
            max_entries,
            flags: 0,
            read_only: false,
            frozen_data: None,
            inner: None,
        }
    }

    /// Whether this is a map of maps (array of maps or hash of maps).
    pub fn is_map_of_maps(&self) -> bool {
        matches!(self.map_type, BPF_MAP_TYPE_ARRAY_OF_MAPS | BPF_MAP_TYPE_HASH_OF_MAPS)
    }
}

impl From<&MapDef> for MapInfo {
    fn from(def: &MapDef) -> Self {
        let frozen = def.origin == MapOrigin::Rodata;
        MapInfo {
            name: def.name.clone(),
            map_type: def.map_type,
            key_size: def.key_size,
            value_size: def.value_size,
            max_entries: def.max_entries,
            flags: def.flags,
            read_only: frozen || def.flags & BPF_F_RDONLY_PROG != 0,
            frozen_data: if frozen {
                def.initial_data.clone().map(|mut d| {
                    d.resize(def.value_size as usize, 0);
                    d
                })
            } else {
                None
            },
            inner: def.inner.as_deref().map(|inner| Box::new(MapInfo::from(inner))),
        }
    }
}

/// Verifier options.
#[derive(Clone, Debug)]
pub struct Config {
    /// Budget of processed instructions (the kernel's is 1,000,000).
    pub max_insns: u64,
    /// Record a trace of every processed instruction with its register state.
    pub log: bool,
    /// Stop after this many diagnostics.
    pub max_diagnostics: usize,
    /// Apply the kernel's rules for a loader without CAP_PERFMON (the kernel's
    /// `allow_ptr_leaks` and `allow_uninit_stack` both off, Spectre v1 not bypassed): no
    /// pointer may become a number a program can return, store or compare, no uninitialised
    /// stack byte may be read, registers may be added only to stack and map value pointers
    /// (whose results must stay inside the frame, at a constant offset, or inside the value),
    /// and the helpers reserved to CAP_PERFMON (bpf_trace_printk) are refused.
    ///
    /// Off by default: programs are verified as root (or CAP_BPF + CAP_PERFMON) loads them,
    /// which is how `duet load` loads them into the kernel. Memory safety is the same either
    /// way: an address turned into a number can never be dereferenced again, and a read of
    /// uninitialised stack yields an unknown number, never a pointer.
    pub unprivileged: bool,
    /// Where the kernel's own types come from, for reads of a map's kernel structure through
    /// its handle (the only accesses the kernel checks against vmlinux BTF that duet verifies).
    pub kernel_types: KernelTypes,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_insns: 1_000_000,
            log: false,
            max_diagnostics: 32,
            unprivileged: false,
            kernel_types: KernelTypes::default(),
        }
    }
}

/// Where the verifier finds the kernel's own types (vmlinux BTF), which the kernel checks reads
/// of `struct bpf_map` fields through a map handle against (`map->max_entries`).
#[derive(Clone, Debug, Default)]
pub enum KernelTypes {
    /// This machine's `/sys/kernel/btf/vmlinux`, read the first time a program reads a map's
    /// fields and kept for the process ([`kernel_btf::running_kernel`]): the verifier's only
    /// I/O, and none for programs that do not read map fields. Where it cannot be read, such
    /// reads are refused saying so.
    #[default]
    RunningKernel,
    /// A kernel's BTF the caller parsed ([`kernel_btf::KernelBtf::parse`]).
    Btf(Arc<kernel_btf::KernelBtf>),
    /// None: reads of map fields are refused (as by a kernel without `CONFIG_DEBUG_INFO_BTF`).
    Unavailable,
}

impl KernelTypes {
    /// The kernel's types, or why there are none.
    pub fn get(&self) -> Result<Arc<kernel_btf::KernelBtf>, String> {
        match self {
            KernelTypes::RunningKernel => kernel_btf::running_kernel(),
            KernelTypes::Btf(btf) => Ok(btf.clone()),
            KernelTypes::Unavailable => Err("no kernel BTF was given to the verifier".to_owned()),
        }
    }
}

/// Everything the verifier needs besides the instructions.
#[derive(Clone, Debug)]
pub struct VerifyContext {
    /// The hook.
    pub program_type: ProgramType,
    /// Maps, indexed as `lddw rX, map_fd N` refers to them.
    pub maps: Vec<MapInfo>,
    /// BTF line info, sorted by instruction (may be empty).
    pub line_info: Vec<LineInfo>,
    /// `lddw` map loads that no relocation bound, as (slot, file descriptor the bytecode names):
    /// each is rejected, as the kernel rejects a descriptor that is not a map.
    pub unbound_map_loads: Vec<(usize, i32)>,
    /// Options.
    pub config: Config,
}

impl VerifyContext {
    /// A context with no maps and no line info.
    pub fn new(program_type: ProgramType) -> Self {
        VerifyContext {
            program_type,
            maps: Vec::new(),
            line_info: Vec::new(),
            unbound_map_loads: Vec::new(),
            config: Config::default(),
        }
    }

    /// The context of one program of an object; `None` for program types duet does not verify.
    pub fn for_object_program(object: &Object, program: &ObjectProgram) -> Option<Self> {
        Some(VerifyContext {
            program_type: ProgramType::from_kind(&program.kind)?,
            maps: object.maps.iter().map(MapInfo::from).collect(),
            line_info: program.line_info.clone(),
            unbound_map_loads: program.map_refs.iter().filter_map(|r| Some((r.insn, r.unbound_fd?))).collect(),
            config: Config::default(),
        })
    }
}

/// How much work a verification took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Instructions processed over all paths (the kernel's "processed N insns").
    pub insns_processed: u64,
    /// States stored at prune points.
    pub states: u64,
    /// Most states stored at once.
    pub peak_states: u64,
    /// Most states stored at one instruction (the kernel's `max_states_per_insn`).
    pub max_states_per_insn: u64,
    /// Paths cut short because a verified state covered them.
    pub pruned: u64,
    /// Wall time of the analysis.
    pub time: Duration,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} insns processed, {} states ({} peak, {} pruned), {:.3} ms",
            self.insns_processed,
            self.states,
            self.peak_states,
            self.pruned,
            self.time.as_secs_f64() * 1e3
        )
    }
}

/// The memory region an instruction accesses on every path (facts an engine may rely on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemRegion {
    /// A stack frame (its own or a caller's).
    Stack,
    /// The context structure (loads are field translations, not memory).
    Context,
    /// Packet data, within the proven range.
    Packet,
    /// Packet metadata, within the proven range.
    PacketMeta,
    /// A value of map `map`, within the value.
    MapValue {
        /// Index into the map table.
        map: u32,
    },
    /// A ring buffer record, within the record.
    Record,
    /// Different regions on different paths (each access still proven in bounds).
    Mixed,
}

/// The function a helper call hands to the helper to call back (bpf_loop's `callback_fn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Callback {
    /// The function starting at instruction `start`, on every path. `inline`: the flags
    /// argument is also 0 on every path, so the kernel replaces the call by a loop of its own
    /// (`inline_bpf_loop`), whose results differ from the helper's in two corners: the count is
    /// all 64 bits of `r1` (the helper takes the low 32), and `-E2BIG` comes back as a 32-bit
    /// value (zero-extended).
    At {
        /// The callback's first instruction.
        start: usize,
        /// Whether the kernel inlines this call.
        inline: bool,
    },
    /// Different functions on different paths.
    Mixed,
}

/// Per-instruction facts proven by the verifier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InsnFacts {
    /// For loads, stores and atomics: the region accessed.
    pub mem: Option<MemRegion>,
    /// For calls of helpers that call a function of the program back: that function.
    pub callback: Option<Callback>,
}

/// A program the verifier proved safe, with what it learned. Engines accept only this.
#[derive(Clone, Debug)]
pub struct VerifiedProgram {
    program: Program,
    program_type: ProgramType,
    maps: Vec<MapInfo>,
    stats: Stats,
    facts: Vec<InsnFacts>,
    stack_depths: Vec<(usize, u32)>,
    log: Option<String>,
}

impl VerifiedProgram {
    /// The verified instructions.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// The verified instructions, by value.
    pub fn into_program(self) -> Program {
        self.program
    }

    /// The program type it was verified for.
    pub fn program_type(&self) -> ProgramType {
        self.program_type
    }

    /// The maps it was verified against (the engine must provide maps of these shapes).
    pub fn maps(&self) -> &[MapInfo] {
        &self.maps
    }

    /// How much work the proof took.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Facts about the instruction at slot `pc` (default facts for non-memory instructions).
    pub fn facts(&self, pc: usize) -> InsnFacts {
        self.facts.get(pc).copied().unwrap_or_default()
    }

    /// Each function's entry slot and the deepest stack byte it uses.
    pub fn stack_depths(&self) -> &[(usize, u32)] {
        &self.stack_depths
    }

    /// The state trace, when [`Config::log`] was set.
    pub fn log(&self) -> Option<&str> {
        self.log.as_deref()
    }
}

/// Why a program was rejected: every problem found.
#[derive(Clone, Debug)]
pub struct Rejection {
    /// The problems, in the order found.
    pub diagnostics: Vec<Diagnostic>,
    /// How much work was done before giving up.
    pub stats: Stats,
    /// The state trace, when [`Config::log`] was set.
    pub log: Option<String>,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        let n = self.diagnostics.len();
        write!(f, "\n\nthe program is not safe to run: {n} problem{} found", if n == 1 { "" } else { "s" })
    }
}

impl std::error::Error for Rejection {}

/// Why an object's program could not be verified.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The object or the program could not be found or loaded.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// duet does not verify this program type.
    #[error(
        "program `{program}` is of type {kind:?}, which duet's verifier does not support (supported: xdp, socket filter, TC classifier, cgroup_skb, kprobe, tracepoint, raw tracepoint, perf_event, duet/http_request, duet/http_response, duet/route)"
    )]
    UnsupportedType {
        /// The program.
        program: String,
        /// Its kind.
        kind: ProgramKind,
    },
    /// The verifier rejected the program.
    #[error("program `{program}` was rejected by the verifier:\n{rejection}")]
    Rejected {
        /// The program.
        program: String,
        /// The problems (boxed: a rejection is large and errors travel by value).
        rejection: Box<Rejection>,
    },
}

/// Proves `program` safe for `ctx`, or explains why it is not.
pub fn verify(program: &Program, ctx: &VerifyContext) -> Result<VerifiedProgram, Rejection> {
    let start = Instant::now();
    let mut diags = Vec::new();
    if ctx.config.unprivileged && ctx.program_type.is_tracing() {
        // The kernel refuses to load the tracing program types (`is_perfmon_prog_type`) for a
        // loader without CAP_PERFMON, before verifying anything (EPERM).
        let d = Diagnostic::new(
            Code::Unsupported,
            None,
            format!(
                "{} programs need CAP_PERFMON: the kernel does not load them for a loader with CAP_BPF alone",
                ctx.program_type.name()
            ),
        )
        .help("load tracing programs as root (or with CAP_PERFMON), duet's default rules");
        return Err(Rejection {
            diagnostics: vec![d],
            stats: Stats { time: start.elapsed(), ..Stats::default() },
            log: None,
        });
    }
    let Some(cfg) = cfg::analyze(program, &mut diags) else {
        let mut rejection = Rejection { diagnostics: diags, stats: Stats::default(), log: None };
        rejection.stats.time = start.elapsed();
        for d in &mut rejection.diagnostics {
            fill_location(d, program, &ctx.line_info);
        }
        return Err(rejection);
    };
    let out = check::Checker::new(&cfg, ctx, diags).run();
    let stats = Stats {
        insns_processed: out.processed,
        states: out.states,
        peak_states: out.peak_states,
        max_states_per_insn: out.max_states_per_insn,
        pruned: out.pruned,
        time: start.elapsed(),
    };
    if out.diags.is_empty() {
        Ok(VerifiedProgram {
            program: program.clone(),
            program_type: ctx.program_type,
            maps: ctx.maps.clone(),
            stats,
            facts: out.facts,
            stack_depths: out.stack_depths,
            log: out.log,
        })
    } else {
        let mut diagnostics = out.diags;
        for d in &mut diagnostics {
            fill_location(d, program, &ctx.line_info);
        }
        Err(Rejection { diagnostics, stats, log: out.log })
    }
}

/// Decodes raw instructions and verifies them; decoding errors become diagnostics.
pub fn verify_raw(raw: &[RawInsn], ctx: &VerifyContext) -> Result<VerifiedProgram, Rejection> {
    match Program::from_raw(raw) {
        Ok(program) => verify(&program, ctx),
        Err(err) => Err(Rejection { diagnostics: vec![decode_diagnostic(&err)], stats: Stats::default(), log: None }),
    }
}

/// A diagnostic for a program that does not even decode.
pub fn decode_diagnostic(err: &duet_isa::DecodeError) -> Diagnostic {
    use duet_isa::DecodeErrorKind as K;
    let help = match &err.kind {
        K::WritesFramePointer => "r10 is the read-only frame pointer; copy it (`r1 = r10`) and change the copy",
        K::JumpOutOfRange { .. } => "every jump must land on an instruction of the program",
        K::FallsOffEnd => {
            "the last instruction must be `exit` or a jump; a compiler emits this for functions that end in a `noreturn` call (a panic path): make that path return"
        }
        K::JumpIntoLddw { .. } => "a jump landed in the middle of a two-slot lddw instruction",
        _ => "the bytes are not a valid eBPF instruction sequence (RFC 9669)",
    };
    let code = match &err.kind {
        K::JumpOutOfRange { .. } | K::FallsOffEnd | K::JumpIntoLddw { .. } => Code::BadControlFlow,
        _ => Code::Decode,
    };
    Diagnostic::new(code, Some(err.pc), err.kind.to_string()).help(help)
}

/// Verifies program `name` of `object` (the only program when `name` is `None`).
pub fn verify_object_program(object: &Object, name: Option<&str>) -> Result<VerifiedProgram, VerifyError> {
    verify_object_program_with(object, name, Config::default())
}

/// [`verify_object_program`] with options.
pub fn verify_object_program_with(
    object: &Object,
    name: Option<&str>,
    config: Config,
) -> Result<VerifiedProgram, VerifyError> {
    let program = object.program(name)?;
    let mut ctx = VerifyContext::for_object_program(object, program)
        .ok_or_else(|| VerifyError::UnsupportedType { program: program.name.clone(), kind: program.kind.clone() })?;
    ctx.config = config;
    verify(&program.program, &ctx)
        .map_err(|rejection| VerifyError::Rejected { program: program.name.clone(), rejection: Box::new(rejection) })
}

fn fill_location(d: &mut Diagnostic, program: &Program, line_info: &[LineInfo]) {
    let Some(pc) = d.pc else { return };
    if d.insn.is_none()
        && let Some((_, insn)) = program.insns().iter().find(|(p, _)| *p == pc)
    {
        d.insn = Some(duet_isa::disassemble_insn(insn));
    }
    if d.source.is_none() {
        let i = line_info.partition_point(|l| l.insn <= pc);
        if let Some(l) = i.checked_sub(1).and_then(|i| line_info.get(i)) {
            d.source =
                Some(SourceLine { file: l.file.clone(), line: l.line, column: l.column, text: l.source.clone() });
        }
    }
}
