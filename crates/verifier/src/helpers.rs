//! Prototypes of the kernel helpers duet verifies (ids as in the kernel and in duet-vm's module).
//!
//! The table describes what the kernel allows, so that duet's verdict is the kernel's. duet-vm
//! provides most of these helpers; a program calling one it does not (bpf_fib_lookup,
//! bpf_strtol, bpf_strtoul, bpf_loop) verifies, loads into the kernel, and is refused by the
//! VM when it is loaded there (`duet_vm::LoadError::UnknownHelper`, which names the helper).

use crate::ProgramType;

/// What a helper argument must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arg {
    /// A map handle (`lddw rX, map_fd N`).
    MapHandle,
    /// A pointer to `key_size` initialised bytes of the map in argument 1.
    Key,
    /// A pointer to `value_size` initialised bytes of the map in argument 1.
    Value,
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
    /// A ring buffer record from `bpf_ringbuf_reserve`, released by this call.
    Release,
}

/// What a helper returns in r0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ret {
    /// A number.
    Scalar,
    /// A number in `0..=max`.
    Bounded(u64),
    /// A map value pointer or NULL.
    MapValueOrNull,
    /// A ring buffer record or NULL (a reference the program must release).
    RecordOrNull,
    /// Nothing: r0 is uninitialised after the call.
    Void,
}

/// One helper's prototype and rules.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Proto {
    pub(crate) id: i64,
    pub(crate) name: &'static str,
    pub(crate) args: &'static [Arg],
    pub(crate) ret: Ret,
    /// Map types the map argument may be (`None`: any ordinary map).
    pub(crate) map_types: Option<&'static [u32]>,
    /// Which program types may call it.
    pub(crate) scope: Scope,
    /// Whether it moves packet data, invalidating every packet pointer.
    pub(crate) changes_packet: bool,
    /// Whether its memory arguments may point into the packet (the kernel's `pkt_access`);
    /// the kernel refuses packet pointers to every other helper.
    pub(crate) pkt_access: bool,
}

/// Which program types may call a helper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
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
    /// duet's http programs (userspace only): reads of the exchange.
    HttpRead,
    /// duet's http request and response filters: changes to the exchange.
    HttpChange,
}

/// Why a program type may not call a helper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A kernel helper the program type does not have.
    NotForType,
    /// A duet http helper in a program that is not an http program.
    HttpOnly,
    /// A helper that changes the exchange, in a route program.
    ReadOnlyRoute,
}

/// Map type numbers with special rules.
pub(crate) mod map_type {
    pub(crate) const PROG_ARRAY: u32 = 3;
    pub(crate) const PERF_EVENT_ARRAY: u32 = 4;
    pub(crate) const ARRAY: u32 = 2;
    pub(crate) const PERCPU_ARRAY: u32 = 6;
    pub(crate) const DEVMAP: u32 = 14;
    pub(crate) const CPUMAP: u32 = 16;
    pub(crate) const XSKMAP: u32 = 17;
    pub(crate) const DEVMAP_HASH: u32 = 25;
    pub(crate) const RINGBUF: u32 = 27;
}

use Arg::*;

const REDIRECT_MAPS: &[u32] = &[map_type::DEVMAP, map_type::CPUMAP, map_type::XSKMAP, map_type::DEVMAP_HASH];

static PROTOS: &[Proto] = &[
    Proto {
        id: 1,
        name: "bpf_map_lookup_elem",
        args: &[MapHandle, Key],
        ret: Ret::MapValueOrNull,
        map_types: None,
        scope: Scope::Base,
        changes_packet: false,
        pkt_access: true,
    },
    Proto {
        id: 2,
        name: "bpf_map_update_elem",
        args: &[MapHandle, Key, Value, Scalar],
        ret: Ret::Scalar,
        map_types: None,
        scope: Scope::Base,
        changes_packet: false,
        pkt_access: true,
    },
    Proto {
        id: 3,
        name: "bpf_map_delete_elem",
        args: &[MapHandle, Key],
        ret: Ret::Scalar,
        map_types: None,
        scope: Scope::Base,
        changes_packet: false,
        pkt_access: true,
    },
    Proto {
        id: 5,
        name: "bpf_ktime_get_ns",
        args: &[],
        ret: Ret::Scalar,
        map_types: None,
        scope: Scope::Base,
        changes_packet: false,
        pkt_access: false,
    },
    Proto {
        id: 6,
        name: "bpf_trace_printk",
        // The kernel declares only the format and its size: `bpf_printk("...")` with no
        // values leaves r3-r5 unset, and whatever they hold is only printed.
        args: &[Mem { nullable: false }, Size { zero_ok: false }],
        ret: Ret::Scalar,
        map_types: None,
        scope: Scope::Base,
        changes_packet: false,
        pkt_access: false,
    },
    Proto {
        id: 7,
        name: "bpf_get_prandom_u32",
        args: &[],
        ret: Ret::Bounded(u32::MAX as u64),
        map_types: None,
        scope: Scope::Base,
        changes_packet: false,
        pkt_access: false,
    },
    Proto {
        id: 8,
        name: "bpf_get_smp_processor_id",
        args: &[],
        ret: Ret::Bounded(u32::MAX as u64),
        map_types: None,
        scope: Scope::Base,
        changes_packet: false,
        pkt_access: false,
    },
    Proto {
        id: 9,
        name: "bpf_skb_store_bytes",
        args: &[Ctx, Scalar, Mem { nullable: false }, Size { zero_ok: false }, Scalar],
        ret: Ret::Scalar,
        map_types: None,
        scope: Scope::Tc,
        changes_packet: true,
        pkt_access: false,
    },
    Proto {
        id: 10,
        name: "bpf_l3_csum_replace",
        args: &[Ctx, Scalar, Scalar, Scalar, Scalar],
        ret: Ret::Scalar,
        map_types: None,
        scope: Scope::Tc,
        changes_packet: true,
        pkt_access: false,
    },
    Proto {
        id: 11,
        name: "bpf_l4_csum_replace",
        args: &[Ctx, Scalar, Scalar, Scalar, Scalar],
        ret: Ret::Scalar,
        map_types: None,
        scope: Scope::Tc,
        changes_packet: true,
        pkt_access: false,
    },
    Proto {
        id: 12,
        name: "bpf_tail_call",
        args: &[Ctx, MapHandle, Scalar],
        ret: Ret::Scalar,
        map_types: Some(&[map_type::PROG_ARRAY]),
        scope: Scope::Base,
        changes_packet: false,
        pkt_access: false,
    },
    Proto {
        id: 23,
        name: "bpf_redirect",
        args: &[Scalar, Scalar],
        ret: Ret::Scalar,
        map_types: None,
        scope: Scope::XdpTc,
        changes_packet: false,
        pkt_access: false,
    },
    Proto {
        id: 26,
        name: "bpf_skb_load_bytes",
        args: &[Ctx, Scalar, OutMem { nullable: false }, Size { zero_ok: false }],
        ret: Ret::Scalar,
        map_types: None,
        scope: Scope::Skb,
        changes_packet: false,
        pkt_access: false,
    },
    Proto {
        id: 28,
        name: "bpf_csum_diff",
        args: &[Mem { nullable: true }, Size { zero_ok: true }, Mem { nullable: true }, Size { zero_ok: true }, Scalar],
        ret: Ret::Scalar,
        map_types: None,
        scope: Scope::XdpTc,
        changes_packet: false,
        pkt_access: true,
    },
    Proto {
        id: 44,
        name: "bpf_xdp_adjust_head",
        args: &[Ctx, Scalar],
        ret: Ret::Scalar,
        map_types: None,
        scope: Scope::Xdp,
        changes_packet: true,
        pkt_access: false,
    },
    Proto {
        id: 51,
        name: "bpf_redirect_map",
        args: &[MapHandle, Scalar, Scalar],
        ret: Ret::Scalar,
        map_types: Some(REDIRECT_MAPS),
        scope: Scope::Xdp,
        changes_packet: false,
        pkt_access: false,
    },
    Proto {
        id: 54,
        name: "bpf_xdp_adjust_meta",
        args: &[Ctx, Scalar],
        ret: Ret::Scalar,
        map_types: None,
        scope: Scope::Xdp,
        changes_packet: true,
        pkt_access: false,
    },
    Proto {
        id: 65,
        name: "bpf_xdp_adjust_tail",
        args: &[Ctx, Scalar],
        ret: Ret::Scalar,
        map_types: None,
        scope: Scope::Xdp,
        changes_packet: true,
        pkt_access: false,
    },
    Proto {
        id: 69,
        name: "bpf_fib_lookup",
        args: &[Ctx, InOutMem, Size { zero_ok: false }, Scalar],
        ret: Ret::Scalar,
        map_types: None,
        scope: Scope::XdpTc,
        changes_packet: false,
        pkt_access: false,
    },
    Proto {
        id: 105,
        name: "bpf_strtol",
        args: &[Mem { nullable: false }, Size { zero_ok: false }, Scalar, OutFixed { size: 8 }],
        ret: Ret::Scalar,
        map_types: None,
        scope: Scope::Base,
        changes_packet: false,
        pkt_access: false,
    },
    Proto {
        id: 106,
        name: "bpf_strtoul",
        args: &[Mem { nullable: false }, Size { zero_ok: false }, Scalar, OutFixed { size: 8 }],
        ret: Ret::Scalar,
        map_types: None,
        scope: Scope::Base,
        changes_packet: false,
        pkt_access: false,
    },
    Proto {
        id: 125,
        name: "bpf_ktime_get_boot_ns",
        args: &[],
        ret: Ret::Scalar,
        map_types: None,
        scope: Scope::Base,
        changes_packet: false,
        pkt_access: false,
    },
    Proto {
        id: 130,
        name: "bpf_ringbuf_output",
        args: &[MapHandle, Mem { nullable: false }, Size { zero_ok: true }, Scalar],
        ret: Ret::Scalar,
        map_types: Some(&[map_type::RINGBUF]),
        scope: Scope::Base,
        changes_packet: false,
        pkt_access: false,
    },
    Proto {
        id: 131,
        name: "bpf_ringbuf_reserve",
        args: &[MapHandle, AllocSize, Scalar],
        ret: Ret::RecordOrNull,
        map_types: Some(&[map_type::RINGBUF]),
        scope: Scope::Base,
        changes_packet: false,
        pkt_access: false,
    },
    Proto {
        id: 132,
        name: "bpf_ringbuf_submit",
        args: &[Release, Scalar],
        ret: Ret::Void,
        map_types: None,
        scope: Scope::Base,
        changes_packet: false,
        pkt_access: false,
    },
    Proto {
        id: 133,
        name: "bpf_ringbuf_discard",
        args: &[Release, Scalar],
        ret: Ret::Void,
        map_types: None,
        scope: Scope::Base,
        changes_packet: false,
        pkt_access: false,
    },
    Proto {
        id: 181,
        name: "bpf_loop",
        // bpf_loop(nr_loops, callback_fn, callback_ctx, flags): calls callback_fn(index,
        // callback_ctx) up to nr_loops times while it returns 0.
        args: &[Scalar, Func, StackOrNull, Scalar],
        ret: Ret::Scalar,
        map_types: None,
        scope: Scope::Base,
        changes_packet: false,
        pkt_access: false,
    },
    // duet's http helpers (docs/ABI.md version 2), userspace only.
    Proto {
        id: 10000,
        name: "http_field",
        args: &[Ctx, Scalar, OutMem { nullable: true }, Size { zero_ok: true }],
        ret: Ret::Scalar,
        map_types: None,
        scope: Scope::HttpRead,
        changes_packet: false,
        pkt_access: false,
    },
    Proto {
        id: 10001,
        name: "http_header_get",
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
    },
    Proto {
        id: 10002,
        name: "http_header_set",
        args: &[Ctx, Mem { nullable: false }, Size { zero_ok: true }, Mem { nullable: true }, Size { zero_ok: true }],
        ret: Ret::Scalar,
        map_types: None,
        scope: Scope::HttpChange,
        changes_packet: false,
        pkt_access: false,
    },
    Proto {
        id: 10003,
        name: "http_header_add",
        args: &[Ctx, Mem { nullable: false }, Size { zero_ok: true }, Mem { nullable: true }, Size { zero_ok: true }],
        ret: Ret::Scalar,
        map_types: None,
        scope: Scope::HttpChange,
        changes_packet: false,
        pkt_access: false,
    },
    Proto {
        id: 10004,
        name: "http_header_remove",
        args: &[Ctx, Mem { nullable: false }, Size { zero_ok: true }],
        ret: Ret::Scalar,
        map_types: None,
        scope: Scope::HttpChange,
        changes_packet: false,
        pkt_access: false,
    },
    Proto {
        id: 10005,
        name: "http_respond",
        args: &[Ctx, Scalar, Mem { nullable: true }, Size { zero_ok: true }],
        ret: Ret::Scalar,
        map_types: None,
        scope: Scope::HttpChange,
        changes_packet: false,
        pkt_access: false,
    },
];

/// The prototype of helper `id`, if duet provides it.
pub(crate) fn proto(id: i64) -> Option<&'static Proto> {
    PROTOS.iter().find(|p| p.id == id)
}

/// Whether helper `id` calls a function of the program back (bpf_loop).
pub(crate) fn calls_callback(id: i64) -> bool {
    id == 181
}

/// The ids of the kernel helpers in the table, for messages (`1, 2, 3, 5, ...`).
pub(crate) fn kernel_ids() -> String {
    let ids: Vec<String> = PROTOS.iter().filter(|p| p.id < 10000).map(|p| p.id.to_string()).collect();
    ids.join(", ")
}

impl Proto {
    /// Whether programs of `ty` may call this helper, and why not.
    pub(crate) fn allowed_for(&self, ty: ProgramType) -> Result<(), Refusal> {
        let http = ty.is_http();
        match self.scope {
            Scope::HttpRead | Scope::HttpChange if !http => Err(Refusal::HttpOnly),
            Scope::HttpChange if ty == ProgramType::Route => Err(Refusal::ReadOnlyRoute),
            Scope::HttpRead | Scope::HttpChange => Ok(()),
            // Tail calls would jump into a program that expects another context, and the Wasm
            // side of an http program has no equivalent.
            Scope::Base if http && self.id == 12 => Err(Refusal::NotForType),
            Scope::Base => Ok(()),
            Scope::Xdp if ty == ProgramType::Xdp => Ok(()),
            Scope::XdpTc if matches!(ty, ProgramType::Xdp | ProgramType::SchedCls) => Ok(()),
            Scope::Skb if ty.is_skb() => Ok(()),
            Scope::Tc if ty == ProgramType::SchedCls => Ok(()),
            Scope::Xdp | Scope::XdpTc | Scope::Skb | Scope::Tc => Err(Refusal::NotForType),
        }
    }

    /// Whether a map of type `map_type` may be passed to this helper.
    pub(crate) fn accepts_map(&self, map_type: u32) -> bool {
        if let Some(types) = self.map_types {
            return types.contains(&map_type);
        }
        match map_type {
            map_type::RINGBUF | map_type::PROG_ARRAY | map_type::PERF_EVENT_ARRAY | map_type::CPUMAP => false,
            // The kernel lets programs look up, but not change, device and socket maps.
            map_type::DEVMAP | map_type::DEVMAP_HASH | map_type::XSKMAP => self.id == 1,
            _ => true,
        }
    }
}

/// Which map types the kernel lets `bpf_map_lookup_elem` return a value pointer for that points
/// at a slot that always exists (arrays), so a constant in-range key cannot yield NULL.
pub(crate) fn lookup_never_null(map_type: u32) -> bool {
    matches!(map_type, map_type::ARRAY | map_type::PERCPU_ARRAY)
}
