//! The helper table: one row per helper id duet knows — its name, its prototype (the argument
//! and return kinds the verifier checks, the program types that may call it), whether duet-vm
//! provides it and which `duet` Wasm import does its work.
//!
//! This is to helpers what `duet_isa::table::OPS` is to instructions: the verifier reads the
//! prototypes, duet-vm registers exactly the rows marked [`HelperSpec::vm`] and names the others
//! in its messages, and duet-wasm's imports are the rows' [`HelperSpec::wasm_import`]s (plus the
//! Wasm-only `map_add_u64`). Ids are the kernel's (`enum bpf_func_id`); duet's own http helpers
//! start at [`DUET_HELPER_BASE`].
//!
//! Prototypes describe what the kernel allows, so that duet's verdict is the kernel's. duet-vm
//! provides most of them; a program calling one it does not (bpf_fib_lookup, bpf_strtol,
//! bpf_strtoul, the socket helpers: bpf_sk_lookup_*, bpf_skc_lookup_tcp,
//! bpf_sk_release, bpf_sk_assign; and the tracing helpers: bpf_probe_read*, bpf_get_current_*,
//! bpf_perf_event_*, bpf_send_signal*, bpf_get_ns_current_pid_tgid, bpf_trace_vprintk, ...)
//! verifies, loads into the kernel, and is refused by the VM when it is loaded there, by name.
//! Rows without a prototype are kernel helpers duet neither verifies nor runs, named only so that
//! messages can say which helper a program asked for.

use crate::http;

/// What a helper argument must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// A map handle (`lddw rX, map_fd N`).
    MapHandle,
    /// A pointer to `key_size` initialised bytes of the map in argument 1.
    Key,
    /// A pointer to `value_size` initialised bytes of the map in argument 1.
    Value,
    /// A pointer to `value_size` bytes the helper fills with a value of the map in argument 1
    /// (the kernel's `ARG_PTR_TO_MAP_VALUE | MEM_UNINIT | MEM_WRITE`): writable, need not be
    /// initialised, initialised after the call.
    OutValue,
    /// The context pointer, unmodified.
    Ctx,
    /// Any number (pointers are refused: they would leak addresses).
    Scalar,
    /// A pointer to readable memory whose size is the next argument; NULL allowed when `nullable`
    /// and the size is zero.
    Mem {
        /// Whether NULL with size zero is allowed.
        nullable: bool,
    },
    /// A pointer to memory the helper fills (the kernel's `ARG_PTR_TO_UNINIT_MEM`): writable
    /// stack or map memory of the size in the next argument, which need not be initialised and
    /// is initialised after the call; NULL allowed when `nullable` and the size is zero.
    OutMem {
        /// Whether NULL with size zero is allowed.
        nullable: bool,
    },
    /// A pointer to memory the helper reads and may write (the kernel's `ARG_PTR_TO_MEM` without
    /// `MEM_RDONLY`), of the size in the next argument: initialised like a read (for an
    /// unprivileged loader), writable, and untracked bytes after the call.
    InOutMem,
    /// A pointer to exactly `size` writable bytes aligned to `size`, which the helper always
    /// fills (`ARG_PTR_TO_FIXED_SIZE_MEM | MEM_UNINIT | MEM_WRITE | MEM_ALIGNED`).
    OutFixed {
        /// The size in bytes.
        size: u32,
    },
    /// The size of the preceding memory argument: a bounded number, zero allowed if `zero_ok`.
    Size {
        /// Whether zero is allowed.
        zero_ok: bool,
    },
    /// A function of the program (`lddw rX, func`) the helper calls back (`ARG_PTR_TO_FUNC`).
    Func,
    /// A pointer into the stack, or NULL (`ARG_PTR_TO_STACK_OR_NULL`), handed to the callback.
    StackOrNull,
    /// An allocation size that must be a known constant.
    AllocSize,
    /// A reference of this kind, exactly as acquired and checked against NULL, released by this
    /// call (the kernel's `OBJ_RELEASE`): a ring buffer record from `bpf_ringbuf_reserve`, or a
    /// socket from a socket lookup (`ARG_PTR_TO_BTF_ID_SOCK_COMMON | OBJ_RELEASE`).
    Release(Ref),
    /// A socket pointer, not NULL (`struct bpf_sock *` or `struct bpf_sock_common *`, the
    /// kernel's `ARG_PTR_TO_BTF_ID_SOCK_COMMON`), which the call does not release.
    Socket,
}

/// What kind of reference a helper acquires or releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ref {
    /// A ring buffer record (`bpf_ringbuf_reserve`, released by submit or discard).
    Record,
    /// A socket (`bpf_sk_lookup_*`, a sockmap/sockhash lookup; released by `bpf_sk_release`).
    Socket,
}

/// What a helper returns in r0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ret {
    /// A number.
    Scalar,
    /// A number in `0..=max`.
    Bounded(u64),
    /// A map value pointer or NULL.
    MapValueOrNull,
    /// A ring buffer record or NULL (a reference the program must release).
    RecordOrNull,
    /// A `struct bpf_sock` pointer or NULL (`RET_PTR_TO_SOCKET_OR_NULL`): a reference the
    /// program must release with `bpf_sk_release`.
    SocketOrNull,
    /// A `struct bpf_sock_common` pointer or NULL (`RET_PTR_TO_SOCK_COMMON_OR_NULL`): a
    /// reference the program must release with `bpf_sk_release`.
    SockCommonOrNull,
    /// The socket argument as a full `struct bpf_sock`, or NULL (`bpf_sk_fullsock`, a pointer
    /// cast): it shares the argument's reference, if any, and is gone when that is released.
    FullSockOrNull,
    /// The socket argument as a `struct bpf_tcp_sock`, or NULL (`bpf_tcp_sock`, a pointer cast
    /// sharing the argument's reference).
    TcpSockOrNull,
    /// A socket the kernel keeps alive without a reference, or NULL (`bpf_get_listener_sock`):
    /// not released, and not released with the argument either.
    UnreferencedSockOrNull,
    /// Nothing: r0 is uninitialised after the call.
    Void,
}

/// Which program types may call a helper (the verifier maps its program types onto these).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every program type (the kernel's base helpers).
    Base,
    /// XDP programs only.
    Xdp,
    /// XDP programs and TC classifiers.
    XdpTc,
    /// Programs with a `struct __sk_buff` context (socket filter, TC classifier, cgroup skb).
    Skb,
    /// TC classifiers only (the helpers that change the packet).
    Tc,
    /// XDP programs, TC classifiers and cgroup skb programs: the socket lookup helpers and
    /// `bpf_sk_release` (the kernel's `xdp_func_proto`, `tc_cls_act_func_proto` and
    /// `cg_skb_func_proto`; socket filters and the tracing types do not have them).
    SkLookup,
    /// TC classifiers and cgroup skb programs: the helpers on a socket (`bpf_sk_fullsock`,
    /// `bpf_tcp_sock`, `bpf_get_listener_sock`).
    SkbSock,
    /// Every kernel program type but the tracing ones (a base helper that
    /// `bpf_tracing_func_proto` withholds, as bpf_ktime_get_coarse_ns).
    Network,
    /// Every kernel program type (not duet's userspace-only http programs): helpers that reach
    /// into the kernel (reading kernel or user memory, perf events, the trace pipe with values).
    Kernel,
    /// Tracing programs only (kprobe, tracepoint, raw tracepoint, perf_event): the kernel's
    /// `bpf_tracing_func_proto`.
    Tracing,
    /// kprobe programs only (`kprobe_prog_func_proto`).
    KProbe,
    /// perf_event programs only (`pe_prog_func_proto`).
    PerfEvent,
    /// duet's http programs (userspace only): reads of the exchange.
    HttpRead,
    /// duet's http request and response filters: changes to the exchange.
    HttpChange,
}

/// A helper's prototype: what the verifier checks at a call.
#[derive(Clone, Copy, Debug)]
pub struct Proto {
    /// The arguments, r1 first.
    pub args: &'static [Arg],
    /// What r0 holds after the call.
    pub ret: Ret,
    /// Map types the map argument may be (`None`: any ordinary map, see
    /// [`HelperSpec::accepts_map`]).
    pub map_types: Option<&'static [u32]>,
    /// Which program types may call it.
    pub scope: Scope,
    /// Whether it moves packet data, invalidating every packet pointer.
    pub changes_packet: bool,
    /// Whether its memory arguments may point into the packet (the kernel's `pkt_access`);
    /// the kernel refuses packet pointers to every other helper.
    pub pkt_access: bool,
}

/// One row of the helper table.
#[derive(Clone, Copy, Debug)]
pub struct HelperSpec {
    /// The id a program calls (`call imm`): the kernel's, or duet's from [`DUET_HELPER_BASE`].
    pub id: u32,
    /// The C name (`bpf_map_lookup_elem`, `http_field`).
    pub name: &'static str,
    /// The prototype, for helpers duet verifies; `None` for kernel helpers known only by name.
    pub proto: Option<Proto>,
    /// Whether duet's userspace VM (interpreter and JIT) provides it.
    pub vm: bool,
    /// The `duet` Wasm import that does its work for duet-ABI Wasm programs (docs/ABI.md), if any.
    pub wasm_import: Option<&'static str>,
}

/// The first id of duet's own helpers (the http helpers); lower ids are the kernel's.
pub const DUET_HELPER_BASE: u32 = 10_000;

/// Map type numbers with special rules (`BPF_MAP_TYPE_*`).
pub mod map_type {
    /// `BPF_MAP_TYPE_HASH`.
    pub const HASH: u32 = 1;
    /// `BPF_MAP_TYPE_ARRAY`.
    pub const ARRAY: u32 = 2;
    /// `BPF_MAP_TYPE_PROG_ARRAY`.
    pub const PROG_ARRAY: u32 = 3;
    /// `BPF_MAP_TYPE_PERF_EVENT_ARRAY`.
    pub const PERF_EVENT_ARRAY: u32 = 4;
    /// `BPF_MAP_TYPE_PERCPU_HASH`.
    pub const PERCPU_HASH: u32 = 5;
    /// `BPF_MAP_TYPE_PERCPU_ARRAY`.
    pub const PERCPU_ARRAY: u32 = 6;
    /// `BPF_MAP_TYPE_STACK_TRACE`.
    pub const STACK_TRACE: u32 = 7;
    /// `BPF_MAP_TYPE_CGROUP_ARRAY`.
    pub const CGROUP_ARRAY: u32 = 8;
    /// `BPF_MAP_TYPE_LRU_HASH`.
    pub const LRU_HASH: u32 = 9;
    /// `BPF_MAP_TYPE_LRU_PERCPU_HASH`.
    pub const LRU_PERCPU_HASH: u32 = 10;
    /// `BPF_MAP_TYPE_LPM_TRIE`.
    pub const LPM_TRIE: u32 = 11;
    /// `BPF_MAP_TYPE_ARRAY_OF_MAPS`.
    pub const ARRAY_OF_MAPS: u32 = 12;
    /// `BPF_MAP_TYPE_HASH_OF_MAPS`.
    pub const HASH_OF_MAPS: u32 = 13;
    /// `BPF_MAP_TYPE_DEVMAP`.
    pub const DEVMAP: u32 = 14;
    /// `BPF_MAP_TYPE_SOCKMAP`.
    pub const SOCKMAP: u32 = 15;
    /// `BPF_MAP_TYPE_CPUMAP`.
    pub const CPUMAP: u32 = 16;
    /// `BPF_MAP_TYPE_XSKMAP`.
    pub const XSKMAP: u32 = 17;
    /// `BPF_MAP_TYPE_SOCKHASH`.
    pub const SOCKHASH: u32 = 18;
    /// `BPF_MAP_TYPE_QUEUE`.
    pub const QUEUE: u32 = 22;
    /// `BPF_MAP_TYPE_STACK`.
    pub const STACK: u32 = 23;
    /// `BPF_MAP_TYPE_DEVMAP_HASH`.
    pub const DEVMAP_HASH: u32 = 25;
    /// `BPF_MAP_TYPE_RINGBUF`.
    pub const RINGBUF: u32 = 27;
}

/// The maps `bpf_redirect_map` takes: devmap, cpumap, xskmap, devmap_hash.
pub const REDIRECT_MAPS: &[u32] = &[map_type::DEVMAP, map_type::CPUMAP, map_type::XSKMAP, map_type::DEVMAP_HASH];

use Arg::*;

/// Every helper duet knows, by ascending id.
pub static HELPERS: &[HelperSpec] = &[
    HelperSpec {
        id: 1,
        name: "bpf_map_lookup_elem",
        proto: Some(Proto {
            args: &[MapHandle, Key],
            ret: Ret::MapValueOrNull,
            map_types: None,
            scope: Scope::Base,
            changes_packet: false,
            pkt_access: true,
        }),
        vm: true,
        wasm_import: Some("map_lookup"),
    },
    HelperSpec {
        id: 2,
        name: "bpf_map_update_elem",
        proto: Some(Proto {
            args: &[MapHandle, Key, Value, Scalar],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Base,
            changes_packet: false,
            pkt_access: true,
        }),
        vm: true,
        wasm_import: Some("map_update"),
    },
    HelperSpec {
        id: 3,
        name: "bpf_map_delete_elem",
        proto: Some(Proto {
            args: &[MapHandle, Key],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Base,
            changes_packet: false,
            pkt_access: true,
        }),
        vm: true,
        wasm_import: Some("map_delete"),
    },
    // bpf_probe_read(dst, size, unsafe_ptr): the kernel's compat prototype (x86-64 has
    // non-overlapping address spaces), for tracing programs only.
    HelperSpec {
        id: 4,
        name: "bpf_probe_read",
        proto: Some(Proto {
            args: &[OutMem { nullable: false }, Size { zero_ok: true }, Scalar],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Tracing,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    HelperSpec {
        id: 5,
        name: "bpf_ktime_get_ns",
        proto: Some(Proto {
            args: &[],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Base,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: true,
        wasm_import: Some("ktime_get_ns"),
    },
    HelperSpec {
        id: 6,
        name: "bpf_trace_printk",
        proto: Some(Proto {
            // The kernel declares only the format and its size: `bpf_printk("...")` with no
            // values leaves r3-r5 unset, and whatever they hold is only printed.
            args: &[Mem { nullable: false }, Size { zero_ok: false }],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Base,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: true,
        wasm_import: Some("trace"),
    },
    HelperSpec {
        id: 7,
        name: "bpf_get_prandom_u32",
        proto: Some(Proto {
            args: &[],
            ret: Ret::Bounded(u32::MAX as u64),
            map_types: None,
            scope: Scope::Base,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: true,
        wasm_import: Some("get_prandom_u32"),
    },
    HelperSpec {
        id: 8,
        name: "bpf_get_smp_processor_id",
        proto: Some(Proto {
            args: &[],
            ret: Ret::Bounded(u32::MAX as u64),
            map_types: None,
            scope: Scope::Base,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: true,
        wasm_import: Some("get_smp_processor_id"),
    },
    HelperSpec {
        id: 9,
        name: "bpf_skb_store_bytes",
        proto: Some(Proto {
            args: &[Ctx, Scalar, Mem { nullable: false }, Size { zero_ok: false }, Scalar],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Tc,
            changes_packet: true,
            pkt_access: false,
        }),
        vm: true,
        wasm_import: None,
    },
    HelperSpec {
        id: 10,
        name: "bpf_l3_csum_replace",
        proto: Some(Proto {
            args: &[Ctx, Scalar, Scalar, Scalar, Scalar],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Tc,
            changes_packet: true,
            pkt_access: false,
        }),
        vm: true,
        wasm_import: None,
    },
    HelperSpec {
        id: 11,
        name: "bpf_l4_csum_replace",
        proto: Some(Proto {
            args: &[Ctx, Scalar, Scalar, Scalar, Scalar],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Tc,
            changes_packet: true,
            pkt_access: false,
        }),
        vm: true,
        wasm_import: None,
    },
    HelperSpec {
        id: 12,
        name: "bpf_tail_call",
        proto: Some(Proto {
            args: &[Ctx, MapHandle, Scalar],
            ret: Ret::Scalar,
            map_types: Some(&[map_type::PROG_ARRAY]),
            scope: Scope::Base,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: true,
        wasm_import: Some("tail_call"),
    },
    HelperSpec { id: 13, name: "bpf_clone_redirect", proto: None, vm: false, wasm_import: None },
    HelperSpec {
        id: 14,
        name: "bpf_get_current_pid_tgid",
        proto: Some(Proto {
            args: &[],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Kernel,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    HelperSpec {
        id: 15,
        name: "bpf_get_current_uid_gid",
        proto: Some(Proto {
            args: &[],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Kernel,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    // bpf_get_current_comm(buf, size): fills the buffer (ARG_PTR_TO_UNINIT_MEM, ARG_CONST_SIZE).
    HelperSpec {
        id: 16,
        name: "bpf_get_current_comm",
        proto: Some(Proto {
            args: &[OutMem { nullable: false }, Size { zero_ok: false }],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Kernel,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    // bpf_perf_event_read(map, flags): a perf event counter from a perf event array (CAP_PERFMON).
    HelperSpec {
        id: 22,
        name: "bpf_perf_event_read",
        proto: Some(Proto {
            args: &[MapHandle, Scalar],
            ret: Ret::Scalar,
            map_types: Some(&[map_type::PERF_EVENT_ARRAY]),
            scope: Scope::Kernel,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    HelperSpec {
        id: 23,
        name: "bpf_redirect",
        proto: Some(Proto {
            args: &[Scalar, Scalar],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::XdpTc,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: true,
        wasm_import: None,
    },
    // bpf_perf_event_output(ctx, map, flags, data, size): a sample into a perf event array.
    HelperSpec {
        id: 25,
        name: "bpf_perf_event_output",
        proto: Some(Proto {
            args: &[Ctx, MapHandle, Scalar, Mem { nullable: false }, Size { zero_ok: true }],
            ret: Ret::Scalar,
            map_types: Some(&[map_type::PERF_EVENT_ARRAY]),
            scope: Scope::Kernel,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    HelperSpec {
        id: 26,
        name: "bpf_skb_load_bytes",
        proto: Some(Proto {
            args: &[Ctx, Scalar, OutMem { nullable: false }, Size { zero_ok: false }],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Skb,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: true,
        wasm_import: None,
    },
    // bpf_get_stackid(ctx, map, flags): the current stack's id in a stack trace map (tracing
    // programs only).
    HelperSpec {
        id: 27,
        name: "bpf_get_stackid",
        proto: Some(Proto {
            args: &[Ctx, MapHandle, Scalar],
            ret: Ret::Scalar,
            map_types: Some(&[map_type::STACK_TRACE]),
            scope: Scope::Tracing,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    HelperSpec {
        id: 28,
        name: "bpf_csum_diff",
        proto: Some(Proto {
            args: &[
                Mem { nullable: true },
                Size { zero_ok: true },
                Mem { nullable: true },
                Size { zero_ok: true },
                Scalar,
            ],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::XdpTc,
            changes_packet: false,
            pkt_access: true,
        }),
        vm: true,
        wasm_import: None,
    },
    // bpf_get_current_task(): the current task_struct's address, as a number (CAP_PERFMON only).
    HelperSpec {
        id: 35,
        name: "bpf_get_current_task",
        proto: Some(Proto {
            args: &[],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Kernel,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    // bpf_current_task_under_cgroup(map, index): whether the current task is in the cgroup at index of a
    // cgroup array.
    HelperSpec {
        id: 37,
        name: "bpf_current_task_under_cgroup",
        proto: Some(Proto {
            args: &[MapHandle, Scalar],
            ret: Ret::Scalar,
            map_types: Some(&[map_type::CGROUP_ARRAY]),
            scope: Scope::Kernel,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    // bpf_get_numa_node_id(): the current NUMA node.
    HelperSpec {
        id: 42,
        name: "bpf_get_numa_node_id",
        proto: Some(Proto {
            args: &[],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Kernel,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    HelperSpec {
        id: 44,
        name: "bpf_xdp_adjust_head",
        proto: Some(Proto {
            args: &[Ctx, Scalar],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Xdp,
            changes_packet: true,
            pkt_access: false,
        }),
        vm: true,
        wasm_import: Some("xdp_adjust_head"),
    },
    // bpf_probe_read_str(dst, size, unsafe_ptr): the compat string read, tracing programs only.
    HelperSpec {
        id: 45,
        name: "bpf_probe_read_str",
        proto: Some(Proto {
            args: &[OutMem { nullable: false }, Size { zero_ok: true }, Scalar],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Tracing,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    HelperSpec {
        id: 51,
        name: "bpf_redirect_map",
        proto: Some(Proto {
            args: &[MapHandle, Scalar, Scalar],
            ret: Ret::Scalar,
            map_types: Some(REDIRECT_MAPS),
            scope: Scope::Xdp,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: true,
        wasm_import: None,
    },
    HelperSpec {
        id: 54,
        name: "bpf_xdp_adjust_meta",
        proto: Some(Proto {
            args: &[Ctx, Scalar],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Xdp,
            changes_packet: true,
            pkt_access: false,
        }),
        vm: true,
        wasm_import: None,
    },
    // bpf_perf_event_read_value(map, flags, buf, size): a counter with its times into a buffer (CAP_PERFMON).
    HelperSpec {
        id: 55,
        name: "bpf_perf_event_read_value",
        proto: Some(Proto {
            args: &[MapHandle, Scalar, OutMem { nullable: false }, Size { zero_ok: false }],
            ret: Ret::Scalar,
            map_types: Some(&[map_type::PERF_EVENT_ARRAY]),
            scope: Scope::Kernel,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    // bpf_perf_prog_read_value(ctx, buf, size): the event's counter, perf_event programs only.
    HelperSpec {
        id: 56,
        name: "bpf_perf_prog_read_value",
        proto: Some(Proto {
            args: &[Ctx, OutMem { nullable: false }, Size { zero_ok: false }],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::PerfEvent,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    HelperSpec {
        id: 65,
        name: "bpf_xdp_adjust_tail",
        proto: Some(Proto {
            args: &[Ctx, Scalar],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Xdp,
            changes_packet: true,
            pkt_access: false,
        }),
        vm: true,
        wasm_import: Some("xdp_adjust_tail"),
    },
    // bpf_get_stack(ctx, buf, size, flags): the current stack's addresses into a buffer.
    HelperSpec {
        id: 67,
        name: "bpf_get_stack",
        proto: Some(Proto {
            args: &[Ctx, OutMem { nullable: false }, Size { zero_ok: true }, Scalar],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Tracing,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    HelperSpec {
        id: 69,
        name: "bpf_fib_lookup",
        proto: Some(Proto {
            args: &[Ctx, InOutMem, Size { zero_ok: false }, Scalar],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::XdpTc,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    // bpf_get_current_cgroup_id(): the current task's cgroup v2 id.
    HelperSpec {
        id: 80,
        name: "bpf_get_current_cgroup_id",
        proto: Some(Proto {
            args: &[],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Kernel,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    // bpf_sk_lookup_tcp(ctx, tuple, tuple_size, netns, flags): a full TCP socket, a reference the
    // program must release with bpf_sk_release (the tuple may be in the packet).
    HelperSpec {
        id: 84,
        name: "bpf_sk_lookup_tcp",
        proto: Some(Proto {
            // The kernel (6.18) accepts a zero tuple size here (the helper then finds nothing).
            args: &[Ctx, Mem { nullable: false }, Size { zero_ok: true }, Scalar, Scalar],
            ret: Ret::SocketOrNull,
            map_types: None,
            scope: Scope::SkLookup,
            changes_packet: false,
            pkt_access: true,
        }),
        vm: false,
        wasm_import: None,
    },
    // bpf_sk_lookup_udp(ctx, tuple, tuple_size, netns, flags): as bpf_sk_lookup_tcp, for UDP.
    HelperSpec {
        id: 85,
        name: "bpf_sk_lookup_udp",
        proto: Some(Proto {
            // The kernel (6.18) accepts a zero tuple size here (the helper then finds nothing).
            args: &[Ctx, Mem { nullable: false }, Size { zero_ok: true }, Scalar, Scalar],
            ret: Ret::SocketOrNull,
            map_types: None,
            scope: Scope::SkLookup,
            changes_packet: false,
            pkt_access: true,
        }),
        vm: false,
        wasm_import: None,
    },
    // bpf_sk_release(sk): releases a socket reference from a lookup.
    HelperSpec {
        id: 86,
        name: "bpf_sk_release",
        proto: Some(Proto {
            args: &[Release(Ref::Socket)],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::SkLookup,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    // bpf_map_push_elem(map, value, flags): pushes a value onto a queue or stack map.
    HelperSpec {
        id: 87,
        name: "bpf_map_push_elem",
        proto: Some(Proto {
            args: &[MapHandle, Value, Scalar],
            ret: Ret::Scalar,
            map_types: Some(&[map_type::QUEUE, map_type::STACK]),
            scope: Scope::Base,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    // bpf_map_pop_elem(map, value): pops a queue's or stack's value into the buffer.
    HelperSpec {
        id: 88,
        name: "bpf_map_pop_elem",
        proto: Some(Proto {
            args: &[MapHandle, OutValue],
            ret: Ret::Scalar,
            map_types: Some(&[map_type::QUEUE, map_type::STACK]),
            scope: Scope::Base,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    // bpf_map_peek_elem(map, value): copies a queue's or stack's next value into the buffer.
    HelperSpec {
        id: 89,
        name: "bpf_map_peek_elem",
        proto: Some(Proto {
            args: &[MapHandle, OutValue],
            ret: Ret::Scalar,
            map_types: Some(&[map_type::QUEUE, map_type::STACK]),
            scope: Scope::Base,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    // bpf_sk_fullsock(sk): the socket as a full struct bpf_sock, or NULL (a cast sharing sk's reference).
    HelperSpec {
        id: 95,
        name: "bpf_sk_fullsock",
        proto: Some(Proto {
            args: &[Socket],
            ret: Ret::FullSockOrNull,
            map_types: None,
            scope: Scope::SkbSock,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    // bpf_tcp_sock(sk): the socket's struct bpf_tcp_sock, or NULL (a cast sharing sk's reference).
    HelperSpec {
        id: 96,
        name: "bpf_tcp_sock",
        proto: Some(Proto {
            args: &[Socket],
            ret: Ret::TcpSockOrNull,
            map_types: None,
            scope: Scope::SkbSock,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    // bpf_get_listener_sock(sk): the listener of a request socket (or sk itself if it listens), or NULL;
    // the kernel keeps it alive: no reference to release.
    HelperSpec {
        id: 98,
        name: "bpf_get_listener_sock",
        proto: Some(Proto {
            args: &[Socket],
            ret: Ret::UnreferencedSockOrNull,
            map_types: None,
            scope: Scope::SkbSock,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    // bpf_skc_lookup_tcp(ctx, tuple, tuple_size, netns, flags): a TCP socket of any state (request
    // and timewait sockets too) as a `struct bpf_sock_common` reference.
    HelperSpec {
        id: 99,
        name: "bpf_skc_lookup_tcp",
        proto: Some(Proto {
            // The kernel (6.18) accepts a zero tuple size here (the helper then finds nothing).
            args: &[Ctx, Mem { nullable: false }, Size { zero_ok: true }, Scalar, Scalar],
            ret: Ret::SockCommonOrNull,
            map_types: None,
            scope: Scope::SkLookup,
            changes_packet: false,
            pkt_access: true,
        }),
        vm: false,
        wasm_import: None,
    },
    HelperSpec {
        id: 105,
        name: "bpf_strtol",
        proto: Some(Proto {
            args: &[Mem { nullable: false }, Size { zero_ok: false }, Scalar, OutFixed { size: 8 }],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Base,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    HelperSpec {
        id: 106,
        name: "bpf_strtoul",
        proto: Some(Proto {
            args: &[Mem { nullable: false }, Size { zero_ok: false }, Scalar, OutFixed { size: 8 }],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Base,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    // bpf_send_signal(sig): signals the current process (CAP_PERFMON).
    HelperSpec {
        id: 109,
        name: "bpf_send_signal",
        proto: Some(Proto {
            args: &[Scalar],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Kernel,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    // bpf_probe_read_{user,kernel}[_str](dst, size, unsafe_ptr): every kernel program type may
    // call them, a loader with CAP_PERFMON only (the verifier's PERFMON_ONLY list).
    HelperSpec {
        id: 112,
        name: "bpf_probe_read_user",
        proto: Some(Proto {
            args: &[OutMem { nullable: false }, Size { zero_ok: true }, Scalar],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Kernel,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    HelperSpec {
        id: 113,
        name: "bpf_probe_read_kernel",
        proto: Some(Proto {
            args: &[OutMem { nullable: false }, Size { zero_ok: true }, Scalar],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Kernel,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    HelperSpec {
        id: 114,
        name: "bpf_probe_read_user_str",
        proto: Some(Proto {
            args: &[OutMem { nullable: false }, Size { zero_ok: true }, Scalar],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Kernel,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    HelperSpec {
        id: 115,
        name: "bpf_probe_read_kernel_str",
        proto: Some(Proto {
            args: &[OutMem { nullable: false }, Size { zero_ok: true }, Scalar],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Kernel,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    // bpf_send_signal_thread(sig): signals the current thread (CAP_PERFMON).
    HelperSpec {
        id: 117,
        name: "bpf_send_signal_thread",
        proto: Some(Proto {
            args: &[Scalar],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Kernel,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    // bpf_jiffies64(): the kernel's jiffies.
    HelperSpec {
        id: 118,
        name: "bpf_jiffies64",
        proto: Some(Proto {
            args: &[],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Kernel,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    // bpf_get_ns_current_pid_tgid(dev, ino, nsdata, size): pid and tgid as seen from a pid namespace,
    // into a `struct bpf_pidns_info`.
    HelperSpec {
        id: 120,
        name: "bpf_get_ns_current_pid_tgid",
        proto: Some(Proto {
            args: &[Scalar, Scalar, OutMem { nullable: false }, Size { zero_ok: false }],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Kernel,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    // bpf_get_current_ancestor_cgroup_id(level): the id of an ancestor of the current cgroup.
    HelperSpec {
        id: 123,
        name: "bpf_get_current_ancestor_cgroup_id",
        proto: Some(Proto {
            args: &[Scalar],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Kernel,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    // bpf_sk_assign(skb, sk, flags): steers the packet to a socket (TC only); the reference stays the
    // program's to release.
    HelperSpec {
        id: 124,
        name: "bpf_sk_assign",
        proto: Some(Proto {
            args: &[Ctx, Socket, Scalar],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Tc,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    HelperSpec {
        id: 125,
        name: "bpf_ktime_get_boot_ns",
        proto: Some(Proto {
            args: &[],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Base,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: true,
        wasm_import: None,
    },
    HelperSpec {
        id: 130,
        name: "bpf_ringbuf_output",
        proto: Some(Proto {
            args: &[MapHandle, Mem { nullable: false }, Size { zero_ok: true }, Scalar],
            ret: Ret::Scalar,
            map_types: Some(&[map_type::RINGBUF]),
            scope: Scope::Base,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: true,
        wasm_import: Some("ringbuf_output"),
    },
    HelperSpec {
        id: 131,
        name: "bpf_ringbuf_reserve",
        proto: Some(Proto {
            args: &[MapHandle, AllocSize, Scalar],
            ret: Ret::RecordOrNull,
            map_types: Some(&[map_type::RINGBUF]),
            scope: Scope::Base,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: true,
        wasm_import: None,
    },
    HelperSpec {
        id: 132,
        name: "bpf_ringbuf_submit",
        proto: Some(Proto {
            args: &[Release(Ref::Record), Scalar],
            ret: Ret::Void,
            map_types: None,
            scope: Scope::Base,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: true,
        wasm_import: None,
    },
    HelperSpec {
        id: 133,
        name: "bpf_ringbuf_discard",
        proto: Some(Proto {
            args: &[Release(Ref::Record), Scalar],
            ret: Ret::Void,
            map_types: None,
            scope: Scope::Base,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: true,
        wasm_import: None,
    },
    // bpf_ringbuf_query(ringbuf, flags): the ring buffer's fill level, size or positions.
    HelperSpec {
        id: 134,
        name: "bpf_ringbuf_query",
        proto: Some(Proto {
            args: &[MapHandle, Scalar],
            ret: Ret::Scalar,
            map_types: Some(&[map_type::RINGBUF]),
            scope: Scope::Base,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    // bpf_ktime_get_coarse_ns(): a coarse clock, withheld from the tracing program types.
    HelperSpec {
        id: 160,
        name: "bpf_ktime_get_coarse_ns",
        proto: Some(Proto {
            args: &[],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Network,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    // bpf_get_func_ip(ctx): the probed function's address, kprobe programs only (of duet's types).
    HelperSpec {
        id: 173,
        name: "bpf_get_func_ip",
        proto: Some(Proto {
            args: &[Ctx],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::KProbe,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    // bpf_get_attach_cookie(ctx): the cookie given when the program was attached.
    HelperSpec {
        id: 174,
        name: "bpf_get_attach_cookie",
        proto: Some(Proto {
            args: &[Ctx],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Tracing,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    // bpf_get_branch_snapshot(entries, size, flags): the last branch records (CAP_PERFMON).
    HelperSpec {
        id: 176,
        name: "bpf_get_branch_snapshot",
        proto: Some(Proto {
            args: &[OutMem { nullable: false }, Size { zero_ok: true }, Scalar],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Kernel,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    // bpf_trace_vprintk(fmt, fmt_size, data, data_len): bpf_printk with more than three values.
    HelperSpec {
        id: 177,
        name: "bpf_trace_vprintk",
        proto: Some(Proto {
            args: &[Mem { nullable: false }, Size { zero_ok: false }, Mem { nullable: true }, Size { zero_ok: true }],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Kernel,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    HelperSpec {
        id: 181,
        name: "bpf_loop",
        proto: Some(Proto {
            // bpf_loop(nr_loops, callback_fn, callback_ctx, flags): calls callback_fn(index,
            // callback_ctx) up to nr_loops times while it returns 0.
            args: &[Scalar, Func, StackOrNull, Scalar],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Base,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: true,
        wasm_import: None,
    },
    // bpf_ktime_get_tai_ns(): the TAI clock.
    HelperSpec {
        id: 208,
        name: "bpf_ktime_get_tai_ns",
        proto: Some(Proto {
            args: &[],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::Kernel,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: false,
        wasm_import: None,
    },
    // duet's http helpers (docs/ABI.md version 2), userspace only.
    HelperSpec {
        id: http::HTTP_FIELD,
        name: "http_field",
        proto: Some(Proto {
            args: &[Ctx, Scalar, OutMem { nullable: true }, Size { zero_ok: true }],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::HttpRead,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: true,
        wasm_import: Some("http_field"),
    },
    HelperSpec {
        id: http::HTTP_HEADER_GET,
        name: "http_header_get",
        proto: Some(Proto {
            args: &[
                Ctx,
                Mem { nullable: false },
                Size { zero_ok: true },
                OutMem { nullable: true },
                Size { zero_ok: true },
            ],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::HttpRead,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: true,
        wasm_import: Some("http_header_get"),
    },
    HelperSpec {
        id: http::HTTP_HEADER_SET,
        name: "http_header_set",
        proto: Some(Proto {
            args: &[
                Ctx,
                Mem { nullable: false },
                Size { zero_ok: true },
                Mem { nullable: true },
                Size { zero_ok: true },
            ],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::HttpChange,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: true,
        wasm_import: Some("http_header_set"),
    },
    HelperSpec {
        id: http::HTTP_HEADER_ADD,
        name: "http_header_add",
        proto: Some(Proto {
            args: &[
                Ctx,
                Mem { nullable: false },
                Size { zero_ok: true },
                Mem { nullable: true },
                Size { zero_ok: true },
            ],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::HttpChange,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: true,
        wasm_import: Some("http_header_add"),
    },
    HelperSpec {
        id: http::HTTP_HEADER_REMOVE,
        name: "http_header_remove",
        proto: Some(Proto {
            args: &[Ctx, Mem { nullable: false }, Size { zero_ok: true }],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::HttpChange,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: true,
        wasm_import: Some("http_header_remove"),
    },
    HelperSpec {
        id: http::HTTP_RESPOND,
        name: "http_respond",
        proto: Some(Proto {
            args: &[Ctx, Scalar, Mem { nullable: true }, Size { zero_ok: true }],
            ret: Ret::Scalar,
            map_types: None,
            scope: Scope::HttpChange,
            changes_packet: false,
            pkt_access: false,
        }),
        vm: true,
        wasm_import: Some("http_respond"),
    },
];

/// The row of helper `id`.
pub fn helper(id: i64) -> Option<&'static HelperSpec> {
    HELPERS.iter().find(|h| i64::from(h.id) == id)
}

impl HelperSpec {
    /// The kernel's name without the `bpf_` prefix (`map_lookup_elem`, as in `BPF_FUNC_*`).
    pub fn kernel_name(&self) -> &'static str {
        self.name.strip_prefix("bpf_").unwrap_or(self.name)
    }

    /// Whether this is one of duet's own helpers rather than a kernel helper.
    pub fn is_duet(&self) -> bool {
        self.id >= DUET_HELPER_BASE
    }

    /// Whether a map of type `map_type` may be passed to this helper.
    pub fn accepts_map(&self, map_type: u32) -> bool {
        if let Some(types) = self.proto.and_then(|p| p.map_types) {
            return types.contains(&map_type);
        }
        match map_type {
            map_type::RINGBUF
            | map_type::PROG_ARRAY
            | map_type::PERF_EVENT_ARRAY
            | map_type::CPUMAP
            | map_type::STACK_TRACE => false,
            // The kernel lets programs look up, but not change, device and socket maps, and maps
            // of maps (whose lookups yield an inner map). A sockmap or sockhash lookup yields a
            // socket reference (the verifier's `Ret::SocketOrNull` rules); duet does not model
            // the sockmap updates and deletes the kernel allows some program types.
            map_type::DEVMAP
            | map_type::DEVMAP_HASH
            | map_type::XSKMAP
            | map_type::SOCKMAP
            | map_type::SOCKHASH
            | map_type::ARRAY_OF_MAPS
            | map_type::HASH_OF_MAPS => self.id == 1,
            // Maps whose values are plain memory: lookup, update and delete.
            map_type::HASH
            | map_type::ARRAY
            | map_type::PERCPU_HASH
            | map_type::PERCPU_ARRAY
            | map_type::LRU_HASH
            | map_type::LRU_PERCPU_HASH
            | map_type::LPM_TRIE => true,
            // Every other type has its own helpers (queues and stacks: push/pop/peek; bloom
            // filters; cgroup arrays; local storage): refused, never guessed to hold plain values.
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_ascend_and_are_unique() {
        for pair in HELPERS.windows(2) {
            assert!(pair[0].id < pair[1].id, "{} then {}", pair[0].id, pair[1].id);
        }
    }

    #[test]
    fn names_are_unique_and_kernel_names_carry_the_prefix() {
        for (i, h) in HELPERS.iter().enumerate() {
            assert!(HELPERS[i + 1..].iter().all(|o| o.name != h.name), "{} twice", h.name);
            assert_eq!(h.name.starts_with("bpf_"), !h.is_duet(), "{}", h.name);
            if let Some(import) = h.wasm_import {
                let others = HELPERS.iter().filter(|o| o.wasm_import == Some(import)).count();
                assert_eq!(others, 1, "Wasm import {import} for more than one helper");
            }
        }
    }

    #[test]
    fn what_duet_runs_has_a_prototype() {
        for h in HELPERS {
            if h.vm || h.wasm_import.is_some() {
                assert!(h.proto.is_some(), "{} runs in duet without a prototype the verifier checks", h.name);
            }
        }
        // The helpers the verifier accepts for the kernel and duet-vm refuses at load.
        let not_in_vm: Vec<&str> = HELPERS.iter().filter(|h| h.proto.is_some() && !h.vm).map(|h| h.name).collect();
        assert_eq!(
            not_in_vm,
            [
                "bpf_probe_read",
                "bpf_get_current_pid_tgid",
                "bpf_get_current_uid_gid",
                "bpf_get_current_comm",
                "bpf_perf_event_read",
                "bpf_perf_event_output",
                "bpf_get_stackid",
                "bpf_get_current_task",
                "bpf_current_task_under_cgroup",
                "bpf_get_numa_node_id",
                "bpf_probe_read_str",
                "bpf_perf_event_read_value",
                "bpf_perf_prog_read_value",
                "bpf_get_stack",
                "bpf_fib_lookup",
                "bpf_get_current_cgroup_id",
                "bpf_sk_lookup_tcp",
                "bpf_sk_lookup_udp",
                "bpf_sk_release",
                "bpf_map_push_elem",
                "bpf_map_pop_elem",
                "bpf_map_peek_elem",
                "bpf_sk_fullsock",
                "bpf_tcp_sock",
                "bpf_get_listener_sock",
                "bpf_skc_lookup_tcp",
                "bpf_strtol",
                "bpf_strtoul",
                "bpf_send_signal",
                "bpf_probe_read_user",
                "bpf_probe_read_kernel",
                "bpf_probe_read_user_str",
                "bpf_probe_read_kernel_str",
                "bpf_send_signal_thread",
                "bpf_jiffies64",
                "bpf_get_ns_current_pid_tgid",
                "bpf_get_current_ancestor_cgroup_id",
                "bpf_sk_assign",
                "bpf_ringbuf_query",
                "bpf_ktime_get_coarse_ns",
                "bpf_get_func_ip",
                "bpf_get_attach_cookie",
                "bpf_get_branch_snapshot",
                "bpf_trace_vprintk",
                "bpf_ktime_get_tai_ns"
            ]
        );
    }

    #[test]
    fn prototypes_are_well_formed() {
        for h in HELPERS {
            let Some(p) = h.proto else { continue };
            assert!(p.args.len() <= 5, "{}", h.name);
            for (i, arg) in p.args.iter().enumerate() {
                let sized = matches!(arg, Mem { .. } | OutMem { .. } | InOutMem);
                assert_eq!(sized, matches!(p.args.get(i + 1), Some(Size { .. })), "{} argument {}", h.name, i + 1);
                if matches!(arg, Key | Value | OutValue) {
                    assert_eq!(p.args.first(), Some(&MapHandle), "{}: a key needs the map first", h.name);
                }
            }
            let http = matches!(p.scope, Scope::HttpRead | Scope::HttpChange);
            assert_eq!(http, h.is_duet(), "{}: duet's helpers are exactly the http helpers", h.name);
        }
    }

    #[test]
    fn http_helper_ids_name_their_rows() {
        for (id, name) in [
            (http::HTTP_FIELD, "http_field"),
            (http::HTTP_HEADER_GET, "http_header_get"),
            (http::HTTP_HEADER_SET, "http_header_set"),
            (http::HTTP_HEADER_ADD, "http_header_add"),
            (http::HTTP_HEADER_REMOVE, "http_header_remove"),
            (http::HTTP_RESPOND, "http_respond"),
        ] {
            let row = helper(i64::from(id)).unwrap();
            assert_eq!((row.name, row.wasm_import), (name, Some(name)));
        }
        assert_eq!(helper(1).map(HelperSpec::kernel_name), Some("map_lookup_elem"));
        assert!(helper(-1).is_none() && helper(i64::from(u32::MAX) + 2).is_none());
    }
}
