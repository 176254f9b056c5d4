//! # duet — one Rust program, two sandboxes
//!
//! **API boundary: the program side.** A program written against this crate compiles, from the
//! same source and without any `cfg` in it, to
//!
//! - `bpfel-unknown-none`: an ELF `.bpf.o` with BTF-defined maps (`.maps`) that the Linux kernel,
//!   libbpf tools (bpftool) and duet's userspace eBPF VM load;
//! - `wasm32-unknown-unknown`: a `.wasm` module speaking the duet import ABI
//!   (`docs/ABI.md`), with the map manifest in its `duet.maps` custom section;
//! - the host: an ordinary Rust library whose programs run in-process for unit tests
//!   (see [`testing`]), against the same map implementation (`duet-maps`) the VM and the Wasm
//!   host use.
//!
//! `duet build` produces the first two; `cargo test` uses the third.
//!
//! ```
//! // A program crate starts with `#![no_std]`.
//! use duet::{HashMap, XdpAction, XdpContext};
//!
//! #[duet::map]
//! static BLOCKED: HashMap<[u8; 4], u8> = HashMap::with_max_entries(1024, 0);
//!
//! #[duet::xdp]
//! fn firewall(ctx: XdpContext) -> XdpAction {
//!     let Some(ip) = ctx.ipv4() else { return XdpAction::Pass };
//!     if BLOCKED.contains_key(&ip.src) { XdpAction::Drop } else { XdpAction::Pass }
//! }
//!
//! // On the host, `duet::testing` runs it (this is what `cargo test` of a program does).
//! let mut frame = duet::testing::udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1234, 53, 0);
//! assert_eq!(duet::testing::run_xdp(firewall, &mut frame), XdpAction::Pass);
//! BLOCKED.insert(&[10, 0, 0, 1], &1, duet::BPF_ANY).unwrap();
//! assert_eq!(duet::testing::run_xdp(firewall, &mut frame), XdpAction::Drop);
//! ```
//!
//! ## Program types
//!
//! | attribute | signature | eBPF section | Wasm export | runs in |
//! |---|---|---|---|---|
//! | `#[duet::xdp]` | `fn(XdpContext) -> XdpAction` | `xdp` | `duet_prog_xdp_<name>` | kernel, VM, Wasm |
//! | `#[duet::classifier]` | `fn(TcContext) -> TcAction` | `classifier` | `duet_prog_classifier_<name>` | kernel (TC), VM, Wasm |
//! | `#[duet::socket_filter]` | `fn(SkbContext) -> u32` (bytes to keep) | `socket` | `duet_prog_socket_filter_<name>` | kernel, VM, Wasm |
//! | `#[duet::cgroup_skb(ingress)]`, `(egress)` | `fn(SkbContext) -> CgroupSkbAction` | `cgroup_skb/ingress`, `cgroup_skb/egress` | `duet_prog_cgroup_skb_<name>` | kernel, VM, Wasm |
//! | `#[duet::probe]` | `fn(ProbeContext)` | `kprobe` | `duet_prog_probe_<name>` | kernel, VM, Wasm |
//! | `#[duet::connect4]` | `fn(SockAddrContext) -> SockAddrAction` | `cgroup/connect4` | none | kernel only |
//! | `#[duet::connect6]` | `fn(SockAddrContext) -> SockAddrAction` | `cgroup/connect6` | none | kernel only |
//! | `#[duet::sock_ops]` | `fn(SockOpsContext)` | `sockops` | none | kernel only |
//! | `#[duet::sk_msg]` | `fn(SkMsgContext) -> SkMsgAction` | `sk_msg` | none | kernel only |
//! | `#[duet::sk_lookup]` | `fn(SkLookupContext) -> SkLookupAction` | `sk_lookup` | none | kernel only |
//! | `#[duet::tracepoint("cat/name")]` | `fn(TracepointContext)` | `tracepoint/cat/name` | none | kernel only |
//! | `#[duet::http_request]` | `fn(HttpContext) -> HttpAction` | `duet/http_request` | `duet_prog_http_request_<name>` | sidecar (VM, Wasm) |
//! | `#[duet::http_response]` | `fn(HttpContext) -> HttpAction` | `duet/http_response` | `duet_prog_http_response_<name>` | sidecar (VM, Wasm) |
//! | `#[duet::route]` | `fn(RouteContext) -> Route` | `duet/route` | `duet_prog_route_<name>` | sidecar (VM, Wasm) |
//!
//! The skb program types ([`skb`]) see the packet from where the kernel's `data` starts for
//! their hook (the Ethernet header for a classifier, the IP header otherwise) on every target.
//! The socket program types ([`sock`]) act on a socket inside a system call of the kernel, which
//! has no userspace meaning: `duet build` builds their crates for BPF only.
//! The HTTP program types ([`http`]) run in duet's sidecar on one HTTP exchange: filters read the
//! request, change the current phase's headers and may answer with a local response; route
//! programs pick the cluster (and endpoint) of a request. Maps, time, randomness, `trace!` and
//! ring buffers work in every program type the same way.
//!
//! ## No panics
//!
//! A panic path in BPF code makes the kernel verifier reject the program, so nothing here needs
//! `unwrap`: packet reads return `Option`, map operations return `Option`/`Result`, and there
//! are `get_or_default`-style shortcuts. Build with the profile `duet build` uses (release,
//! overflow checks off) so arithmetic does not bring panics in either.
//!
//! ## No `memset`, `memcmp` or large copies
//!
//! A BPF program has no C library: a call of `memset`, `memcpy` or `memcmp` is an unresolved call
//! the verifiers reject. bpf-linker makes LLVM expand `memcpy` of a known size up to 128 loads and
//! stores inline, but never `memset`, so zeroing anything over 8 bytes (`[0u8; 32]`,
//! `Default::default()`, `mem::zeroed()`) must go through [`zeroed`]; and slice equality
//! (`a == b` on `[u8]`) calls `memcmp`, so compare header values with [`Text`]'s methods.
//! Keep stack buffers small (the stack is 512 bytes): [`Text`] holds at most 64 bytes by default.
//!
//! ## Targets
//!
//! The backend is chosen by `target_arch` in one place, the private `sys` module; everything
//! public is the same on every target.
#![no_std]
// `atomic_xadd`: the BPF target has no compare-and-swap, so `AtomicU64::fetch_add` does not
// exist there, but LLVM lowers a plain atomic add to the BPF `lock add` instruction the kernel
// supports. `duet build` sets `RUSTC_BOOTSTRAP=1` (it needs `-Z build-std=core` anyway).
#![cfg_attr(target_arch = "bpf", feature(core_intrinsics))]
#![cfg_attr(target_arch = "bpf", allow(internal_features, reason = "atomic_xadd, see above"))]

#[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
extern crate std;

// The macros name the SDK `::duet`, which this makes work inside the SDK's own tests too.
extern crate self as duet;

mod error;
mod helpers;
pub mod http;
pub mod maps;
#[cfg(target_arch = "bpf")]
mod mem;
pub mod net;
mod pod;
mod probe;
pub mod skb;
pub mod sock;
mod sys;
#[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
pub mod testing;
pub mod tracepoint;
mod xdp;

pub use duet_macros::{
    Pod, cgroup_skb, classifier, connect4, connect6, http_request, http_response, map, probe, route, sk_lookup, sk_msg,
    sock_ops, socket_filter, tracepoint, xdp,
};
pub use error::Errno;
pub use helpers::{get_prandom_u32, get_smp_processor_id, ktime_get_ns};
pub use http::{HttpAction, HttpContext, HttpField, Route, RouteContext, Text};
pub use maps::{
    Array, HashMap, LpmKey, LpmTrie, LruHashMap, LruPerCpuHashMap, PerCpuArray, PerCpuHashMap, PerfEventArray,
    ProgramArray, RingBuf, SockHash, SockMap,
};
pub use pod::{Pod, zeroed};
pub use probe::{PROBE_RECORD_LEN, ProbeContext};
pub use skb::{CgroupSkbAction, SkbContext, TcAction, TcContext};
pub use sock::{
    SkLookupAction, SkLookupContext, SkMsgAction, SkMsgContext, SockAddrAction, SockAddrContext, SockOpsContext,
};
pub use tracepoint::TracepointContext;
pub use xdp::{XdpAction, XdpContext};

/// Update flag: create the entry or overwrite it.
pub const BPF_ANY: u64 = 0;
/// Update flag: create the entry only if the key has none (else [`Errno::EEXIST`]).
pub const BPF_NOEXIST: u64 = 1;
/// Update flag: overwrite an existing entry only (else [`Errno::ENOENT`]).
pub const BPF_EXIST: u64 = 2;
/// Map flag `BPF_F_NO_PREALLOC`: allocate entries when inserted (required for an [`LpmTrie`]).
pub const BPF_F_NO_PREALLOC: u32 = 1;

/// Writes a log line: `bpf_trace_printk` in the kernel (read it from
/// `/sys/kernel/tracing/trace_pipe`), the `trace` import in Wasm, the executor's log in the
/// userspace VM and [`testing::take_trace`] on the host.
///
/// The message is a string literal; it is passed to `bpf_trace_printk` as its format, so it must
/// not contain `%`.
#[macro_export]
macro_rules! trace {
    ($msg:literal) => {
        $crate::__private::trace(::core::concat!($msg, "\0").as_bytes())
    };
}

/// Items the macros expand to. Not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::helpers::trace;
    pub use crate::maps::map_record_len;
    pub use crate::maps::{MapInfo, kernel_only_map_len, kernel_only_map_record, map_record};
    pub use crate::probe::probe_entry;
    #[cfg(target_arch = "bpf")]
    pub use crate::{
        http::{http_entry, route_entry},
        skb::{cgroup_skb_entry, classifier_entry, socket_filter_entry},
        sock::{connect4_entry, sk_lookup_entry, sk_msg_entry, sock_ops_entry},
        tracepoint::tracepoint_entry,
        xdp::xdp_entry,
    };
    #[cfg(target_arch = "wasm32")]
    pub use crate::{
        http::{http_entry_wasm, route_entry_wasm},
        probe::probe_entry_wasm,
        skb::{cgroup_skb_entry_wasm, classifier_entry_wasm, socket_filter_entry_wasm},
        xdp::xdp_entry_wasm,
    };
}

/// The license the kernel reads from the `license` section. GPL-compatible, because
/// `bpf_trace_printk` (behind [`trace!`]) is a GPL-only helper.
#[cfg(target_arch = "bpf")]
#[used]
#[unsafe(export_name = "_license")]
#[unsafe(link_section = "license")]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

#[cfg(any(target_arch = "bpf", target_arch = "wasm32"))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    // Nothing in the SDK panics. A panic path that user code brings in makes the kernel verifier
    // reject the BPF program (it cannot prove this loop ends), which is the early, loud failure
    // we want; in Wasm it is a trap the host reports.
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(target_arch = "bpf")]
    loop {}
}
