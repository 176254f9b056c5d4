//! Verifier test files: a program in duet's assembly dialect with header comments that give
//! the program type, the maps, and the expected outcome. The negative corpus in
//! `tests/verifier/` and `duet verify file.s` use this format.
//!
//! ```text
//! # Reading past the checked packet bound.
//! # type: xdp                      (xdp | socket_filter | tc | cgroup_skb | kprobe | tracepoint |
//!                                    raw_tracepoint | perf_event | http_request | http_response | route; default xdp)
//! # map: hash key=4 value=8 entries=16 name=counts
//! # expect: not proven to lie before data_end
//! # kernel: reject                 (reject | accept; what Linux does with it)
//! # kernel-caps: bpf               (load without CAP_PERFMON/CAP_SYS_ADMIN, and verify with
//! #                                   duet's `Config::unprivileged`; default: all)
//! # why: why duet and the kernel differ, when `kernel: accept`
//!     r0 = ...
//! ```
//!
//! Maps are numbered in header order: `lddw %r1, map_fd 0` is the first `# map:` line.

use duet_isa::Insn;

use crate::{MapInfo, ProgramType};

/// What the kernel is expected to do with a test program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelExpect {
    /// Reject it.
    Reject,
    /// Accept it (duet deliberately differs; see [`TestFile::why`]).
    Accept,
}

/// With which privileges the kernel loads a test program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelCaps {
    /// Root with every capability.
    All,
    /// CAP_BPF and CAP_NET_ADMIN only: the kernel then refuses pointer leaks and uninitialised
    /// stack reads that it allows CAP_PERFMON holders, and duet verifies the file with the same
    /// unprivileged rules ([`crate::Config::unprivileged`]).
    BpfOnly,
}

/// A parsed test file.
#[derive(Clone, Debug)]
pub struct TestFile {
    /// The program type.
    pub program_type: ProgramType,
    /// Maps in header order.
    pub maps: Vec<MapInfo>,
    /// The instructions, as assembled (not yet validated: some tests are invalid bytecode).
    pub insns: Vec<Insn>,
    /// Substrings duet's rejection must contain (empty: the program must verify).
    pub expect: Vec<String>,
    /// The kernel's expected decision.
    pub kernel: KernelExpect,
    /// Privileges for the kernel load.
    pub kernel_caps: KernelCaps,
    /// Why duet and the kernel differ, when they do.
    pub why: Option<String>,
    /// The first comment line (the hazard, in words).
    pub title: String,
}

fn field<'a>(word: &'a str, key: &str) -> Option<&'a str> {
    word.strip_prefix(key).and_then(|r| r.strip_prefix('='))
}

fn number(s: &str) -> Result<u32, String> {
    let r = if let Some(hex) = s.strip_prefix("0x") { u32::from_str_radix(hex, 16) } else { s.parse() };
    r.map_err(|_| format!("`{s}` is not a number"))
}

/// Kernel map type numbers by name.
pub fn map_type_by_name(name: &str) -> Option<u32> {
    Some(match name {
        "hash" => 1,
        "array" => 2,
        "prog_array" => 3,
        "percpu_hash" => 5,
        "percpu_array" => 6,
        "lru_hash" => 9,
        "lpm_trie" => 11,
        "devmap" => 14,
        "sockmap" => 15,
        "sockhash" => 18,
        "cpumap" => 16,
        "xskmap" => 17,
        "devmap_hash" => 25,
        "ringbuf" => 27,
        "perf_event_array" => 4,
        "stack_trace" => 7,
        "cgroup_array" => 8,
        "lru_percpu_hash" => 10,
        "queue" => 22,
        "stack" => 23,
        "bloom_filter" => 30,
        "array_of_maps" => 12,
        "hash_of_maps" => 13,
        _ => return None,
    })
}

/// A map as a `# map:` header describes it (`hash key=4 value=8 entries=16 name=counts
/// flags=0x80 readonly`), named `default_name` unless it has a `name=`.
pub fn parse_map(value: &str, default_name: String) -> Result<MapInfo, String> {
    let mut words = value.split_whitespace();
    let kind = words.next().ok_or("a map needs a map type")?;
    let map_type = map_type_by_name(kind).ok_or_else(|| format!("unknown map type `{kind}`"))?;
    let mut info = MapInfo::new(default_name, map_type, 0, 0, 1);
    for w in words {
        if let Some(v) = field(w, "key") {
            info.key_size = number(v)?;
        } else if let Some(v) = field(w, "value") {
            info.value_size = number(v)?;
        } else if let Some(v) = field(w, "entries") {
            info.max_entries = number(v)?;
        } else if let Some(v) = field(w, "flags") {
            info.flags = number(v)?;
        } else if let Some(v) = field(w, "name") {
            info.name = v.to_owned();
        } else if w == "readonly" {
            info.read_only = true;
        } else {
            return Err(format!("unknown map attribute `{w}`"));
        }
    }
    Ok(info)
}

impl TestFile {
    /// The instructions encoded as the kernel takes them (`lddw` in two slots), valid or not.
    pub fn raw_insns(&self) -> Vec<u64> {
        self.insns
            .iter()
            .flat_map(|i| {
                let (a, b) = i.encode();
                std::iter::once(a.to_u64()).chain(b.map(|b| b.to_u64()))
            })
            .collect()
    }

    /// Parses a test file.
    pub fn parse(text: &str) -> Result<TestFile, String> {
        let mut file = TestFile {
            program_type: ProgramType::Xdp,
            maps: Vec::new(),
            insns: Vec::new(),
            expect: Vec::new(),
            kernel: KernelExpect::Reject,
            kernel_caps: KernelCaps::All,
            why: None,
            title: String::new(),
        };
        for line in text.lines() {
            let Some(comment) = line.trim().strip_prefix('#') else { continue };
            let comment = comment.trim();
            let Some((key, value)) = comment.split_once(':') else {
                if file.title.is_empty() {
                    file.title = comment.to_owned();
                }
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "type" => {
                    file.program_type = match value {
                        "xdp" => ProgramType::Xdp,
                        "socket_filter" | "socket" => ProgramType::SocketFilter,
                        "classifier" | "tc" | "sched_cls" => ProgramType::SchedCls,
                        "cgroup_skb" => ProgramType::CgroupSkb,
                        "kprobe" => ProgramType::KProbe,
                        "tracepoint" | "tp" => ProgramType::TracePoint,
                        "raw_tracepoint" | "raw_tp" => ProgramType::RawTracePoint,
                        "perf_event" => ProgramType::PerfEvent,
                        "http_request" => ProgramType::HttpRequest,
                        "http_response" => ProgramType::HttpResponse,
                        "route" => ProgramType::Route,
                        other => return Err(format!("unknown program type `{other}`")),
                    }
                }
                "map" => {
                    let info = parse_map(value, format!("map{}", file.maps.len()))?;
                    file.maps.push(info);
                }
                "expect" => file.expect.push(value.to_owned()),
                "kernel" => {
                    file.kernel = match value {
                        "reject" => KernelExpect::Reject,
                        "accept" => KernelExpect::Accept,
                        other => return Err(format!("`# kernel:` must be accept or reject, not `{other}`")),
                    }
                }
                "kernel-caps" => {
                    file.kernel_caps = match value {
                        "all" => KernelCaps::All,
                        "bpf" => KernelCaps::BpfOnly,
                        other => return Err(format!("`# kernel-caps:` must be all or bpf, not `{other}`")),
                    }
                }
                "why" => file.why = Some(value.to_owned()),
                _ => {
                    if file.title.is_empty() {
                        file.title = comment.to_owned();
                    }
                }
            }
        }
        file.insns = duet_isa::assemble(text).map_err(|e| e.to_string())?;
        Ok(file)
    }

    /// The verification context the headers describe: unprivileged rules when the kernel is
    /// to load the file without CAP_PERFMON (`# kernel-caps: bpf`), so that both judge it by
    /// the same rules.
    pub fn context(&self) -> crate::VerifyContext {
        let mut ctx = crate::VerifyContext { maps: self.maps.clone(), ..crate::VerifyContext::new(self.program_type) };
        ctx.config.unprivileged = self.kernel_caps == KernelCaps::BpfOnly;
        ctx
    }
}
