//! Helper prototypes, as the verifier reads them from duet-helpers' table (ids, names, argument
//! and return kinds, map types, which program types may call each), and the rules that need the
//! verifier's [`ProgramType`].
//!
//! The table describes what the kernel allows, so that duet's verdict is the kernel's (its
//! scopes were checked against Linux 6.18 by `tests/verifier/agree/helper_*`). duet-vm
//! provides most of these helpers; a program calling one it does not (bpf_fib_lookup,
//! bpf_strtol, bpf_strtoul, bpf_loop, the tracing helpers) verifies, loads into the kernel, and
//! is refused by the VM when it is loaded there (`duet_vm::LoadError::UnknownHelper`, which
//! names the helper).

use duet_helpers::table::{self, HELPERS, HelperSpec, Scope};

pub(crate) use duet_helpers::table::map_type;
pub(crate) use duet_helpers::table::{Arg, Ref, Ret};

use crate::ProgramType;

/// One helper duet verifies: its row of the table with the prototype unpacked.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Proto {
    pub(crate) id: u32,
    pub(crate) name: &'static str,
    pub(crate) args: &'static [Arg],
    pub(crate) ret: Ret,
    /// Which program types may call it.
    scope: Scope,
    /// Whether it moves packet data, invalidating every packet pointer.
    pub(crate) changes_packet: bool,
    /// Whether its memory arguments may point into the packet (the kernel's `pkt_access`);
    /// the kernel refuses packet pointers to every other helper.
    pub(crate) pkt_access: bool,
    spec: &'static HelperSpec,
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

/// The prototype of helper `id`, if duet verifies it.
pub(crate) fn proto(id: i64) -> Option<Proto> {
    let spec = table::helper(id)?;
    let p = spec.proto?;
    Some(Proto {
        id: spec.id,
        name: spec.name,
        args: p.args,
        ret: p.ret,
        scope: p.scope,
        changes_packet: p.changes_packet,
        pkt_access: p.pkt_access,
        spec,
    })
}

/// The kernel helpers it gives only to a loader with CAP_PERFMON (or CAP_SYS_ADMIN), whatever
/// the program type: they print to the trace pipe or read kernel and user memory and tasks.
/// For a CAP_BPF-only loader the kernel has no prototype for them ("program of this type cannot
/// use helper"). By id: bpf_probe_read (4), bpf_trace_printk (6), bpf_get_current_comm (16),
/// bpf_perf_event_read (22), bpf_get_current_task (35), bpf_probe_read_str (45),
/// bpf_perf_event_read_value (55), bpf_send_signal (109), bpf_probe_read_user/_kernel/
/// _user_str/_kernel_str (112..=115), bpf_send_signal_thread (117), bpf_snprintf_btf (149),
/// bpf_get_current_task_btf (158), bpf_snprintf (165), bpf_task_pt_regs (175),
/// bpf_get_branch_snapshot (176) and bpf_trace_vprintk (177) (checked against Linux 6.18 by
/// `tests/verifier/agree/helper_*`). Only those with a prototype in duet's table are reachable
/// here; the others are unknown helpers to duet in every mode.
const PERFMON_ONLY: &[u32] = &[4, 6, 16, 22, 35, 45, 55, 109, 112, 113, 114, 115, 117, 149, 158, 165, 175, 176, 177];

/// Whether helper `id` calls a function of the program back (bpf_loop).
pub(crate) fn calls_callback(id: i64) -> bool {
    id == 181
}

/// The ids of the kernel helpers with prototypes, for messages (`1, 2, 3, 5, ...`).
pub(crate) fn kernel_ids() -> String {
    let ids: Vec<String> =
        HELPERS.iter().filter(|h| h.proto.is_some() && !h.is_duet()).map(|h| h.id.to_string()).collect();
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
            Scope::Kernel if !http => Ok(()),
            Scope::Tracing if ty.is_tracing() => Ok(()),
            Scope::Xdp if ty == ProgramType::Xdp => Ok(()),
            Scope::XdpTc if matches!(ty, ProgramType::Xdp | ProgramType::SchedCls) => Ok(()),
            Scope::Skb if ty.is_skb() => Ok(()),
            Scope::Tc if ty == ProgramType::SchedCls => Ok(()),
            Scope::SkLookup if matches!(ty, ProgramType::Xdp | ProgramType::SchedCls | ProgramType::CgroupSkb) => {
                Ok(())
            }
            Scope::Network if !http && !ty.is_tracing() => Ok(()),
            Scope::SkbSock if matches!(ty, ProgramType::SchedCls | ProgramType::CgroupSkb) => Ok(()),
            Scope::KProbe if ty == ProgramType::KProbe => Ok(()),
            Scope::PerfEvent if ty == ProgramType::PerfEvent => Ok(()),
            Scope::Xdp
            | Scope::XdpTc
            | Scope::Skb
            | Scope::Tc
            | Scope::Kernel
            | Scope::Tracing
            | Scope::SkLookup
            | Scope::SkbSock
            | Scope::Network
            | Scope::KProbe
            | Scope::PerfEvent => Err(Refusal::NotForType),
        }
    }

    /// Whether the kernel gives this helper only to a loader with CAP_PERFMON.
    pub(crate) fn needs_perfmon(&self) -> bool {
        PERFMON_ONLY.contains(&self.id)
    }

    /// Whether a map of type `map_type` may be passed to this helper.
    pub(crate) fn accepts_map(&self, map_type: u32) -> bool {
        self.spec.accepts_map(map_type)
    }
}

/// Which map types the kernel lets `bpf_map_lookup_elem` return a value pointer for that points
/// at a slot that always exists (arrays), so a constant in-range key cannot yield NULL.
pub(crate) fn lookup_never_null(map_type: u32) -> bool {
    matches!(map_type, map_type::ARRAY | map_type::PERCPU_ARRAY)
}

/// Whether a lookup in a map of this type yields a socket reference (sockmap, sockhash): the
/// kernel's `is_acquire_function` for `bpf_map_lookup_elem`.
pub(crate) fn is_sock_map(map_type: u32) -> bool {
    matches!(map_type, map_type::SOCKMAP | map_type::SOCKHASH)
}

/// Whether programs of `ty` may update or delete the entries of a map of `map_type` with helper
/// `id`, beyond what the helper's table row allows: `bpf_map_update_elem` (2) and
/// `bpf_map_delete_elem` (3) on a sockmap or sockhash in the program types the kernel's
/// `may_update_sockmap` names (among duet's: XDP, TC classifiers and socket filters, where no
/// locked socket can be reached), checked against Linux 6.18 by
/// `tests/verifier/agree/sockmap_update_*` and `sockmap_delete_*`.
pub(crate) fn may_change_sock_map(id: u32, map_type: u32, ty: ProgramType) -> bool {
    matches!(id, 2 | 3)
        && is_sock_map(map_type)
        && matches!(ty, ProgramType::Xdp | ProgramType::SchedCls | ProgramType::SocketFilter)
}
