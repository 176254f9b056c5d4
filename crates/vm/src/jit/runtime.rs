//! What compiled code sees at run time: the [`RunCtx`] it gets a pointer to, and the `extern "C"`
//! functions it calls for everything that is not straight-line arithmetic or a proven access —
//! helpers, checked loads and stores, and traps. These functions give results identical to the
//! interpreter's because they use the same region table ([`MemoryMap`]) and the same helpers.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use duet_isa::{Insn, Op};
use duet_maps::Map;

use crate::helpers::{Helper, HelperContext, HelperOutcome};
use crate::http::HttpRun;
use crate::interp::{MAX_CALL_DEPTH, MAX_TAIL_CALLS, STACK_SIZE};
use crate::memory::{Context, MemoryMap, Region};
use crate::{Trap, TrapKind};

/// `RunCtx::status` after a runtime call: carry on with the returned value.
pub(super) const STATUS_OK: u64 = 0;
/// A helper asked to leave `r0` unchanged (a tail call that could not happen).
pub(super) const STATUS_FALLTHROUGH: u64 = 1;
/// The run is over: `RunCtx::outcome` holds the result or the trap.
pub(super) const STATUS_STOP: u64 = 2;
/// Continue at the start of program `RunCtx::tail_target`, with the registers saved in
/// `RunCtx::regs`.
pub(super) const STATUS_TAIL_CALL: u64 = 3;

/// Slots of [`RunCtx::ctx_fields`]: a power of two (compiled code masks the index with
/// `CTX_FIELDS - 1`) covering `__sk_buff` up to `data_end` (offset 80).
pub(super) const CTX_FIELDS: usize = 32;

/// Index of the stack in a run's region table.
const STACK_REGION: usize = 0;

/// The per-run state shared between the driver and compiled code. Compiled code reads and writes
/// the fields before `outcome` at fixed offsets (`offset_of!`), so the layout is `repr(C)`.
#[repr(C)]
pub(super) struct RunCtx {
    /// r0..=r10 when a program starts (the run's arguments, or the registers a tail call left).
    pub(super) regs: [u64; 11],
    /// Context fields by `offset / 4` (`xdp_md` or `__sk_buff`), as 64-bit values: `xdp_md.data`
    /// is the full packet pointer, as the kernel rewrites the load.
    pub(super) ctx_fields: [u64; CTX_FIELDS],
    /// Guest address of the context.
    pub(super) ctx_addr: u64,
    /// Start and length of what legacy packet loads read.
    pub(super) legacy_ptr: u64,
    pub(super) legacy_len: u64,
    /// The current frame pointer (for the stack region helpers and checked accesses see).
    pub(super) r10: u64,
    /// Instructions left (checked code only).
    pub(super) budget: u64,
    /// Set by every runtime call; see the `STATUS_*` constants.
    pub(super) status: u64,
    /// Program index of a pending tail call.
    pub(super) tail_target: u64,

    // --- Rust-only fields ---
    /// The run's region table; lives on the driver's stack for the whole run.
    pub(super) memory: *mut MemoryMap<'static>,
    /// The whole stack buffer.
    pub(super) stack: Region,
    /// The run's result when compiled code stopped early (helper exit, trap).
    pub(super) outcome: Option<Result<u64, Trap>>,
    /// Tail calls made so far.
    pub(super) tail_calls: u32,
    /// Index of the running program, and how many programs exist / which are compiled.
    pub(super) current: usize,
    /// The module's programs, helpers and compiled code; outlives the run.
    pub(super) shared: *const super::Shared,
    /// The budget a run starts with, for the trap's message.
    pub(super) max_insns: u64,
    /// The exchange and state of an http program's run (`run_http`); null in every other run.
    /// Points at the driver's stack for the whole run.
    pub(super) http: *mut HttpRun<'static>,
}

impl RunCtx {
    fn shared(&self) -> &super::Shared {
        // SAFETY: the driver points `shared` at the compiled code it is running, which outlives
        // the run.
        unsafe { &*self.shared }
    }

    /// The region the current frame may touch: its own 512 bytes and its callers' frames.
    fn frame_region(&self) -> Region {
        let top = self.stack.start + self.stack.len;
        let lo = self.r10.wrapping_sub(STACK_SIZE as u64).clamp(self.stack.start, top);
        let offset = lo - self.stack.start;
        Region { start: lo, len: top - lo, ptr: self.stack.ptr.wrapping_add(offset as usize), ..self.stack }
    }

    fn depth(&self) -> u64 {
        (self.stack.start + self.stack.len - self.r10) / STACK_SIZE as u64
    }

    fn memory(&mut self) -> &mut MemoryMap<'static> {
        // SAFETY: `memory` points at the region table on the driver's stack, which outlives the
        // run; compiled code is single-threaded and the driver does not touch the table while
        // compiled code runs, so this is the only reference.
        let memory = unsafe { &mut *self.memory };
        memory.set(STACK_REGION, self.frame_region());
        memory
    }

    fn stop(&mut self, outcome: Result<u64, Trap>) -> u64 {
        self.outcome = Some(outcome);
        self.status = STATUS_STOP;
        0
    }

    fn trap(&mut self, pc: usize, kind: TrapKind) -> u64 {
        self.stop(Err(Trap { pc, kind }))
    }

    /// A context for runs of the programs in `shared`, every per-run field still to be set.
    pub(super) fn new(shared: *const super::Shared, max_insns: u64) -> Self {
        RunCtx {
            regs: [0; 11],
            ctx_fields: [0; CTX_FIELDS],
            ctx_addr: 0,
            legacy_ptr: 0,
            legacy_len: 0,
            r10: 0,
            budget: max_insns,
            status: STATUS_OK,
            tail_target: 0,
            memory: std::ptr::null_mut(),
            stack: Region::EMPTY,
            outcome: None,
            tail_calls: 0,
            current: 0,
            shared,
            max_insns,
            http: std::ptr::null_mut(),
        }
    }

    /// `xdp_md`'s fields as compiled code reads them: `data`, `data_end` and `data_meta` (offsets
    /// into the buffer at guest address `buf`) as full pointers, as the kernel rewrites the loads.
    #[inline(always)]
    pub(super) fn set_xdp_fields(&mut self, buf: u64, [data, data_end, data_meta]: [u64; 3], ifindex: u32, rxq: u32) {
        self.ctx_fields[0] = buf + data;
        self.ctx_fields[1] = buf + data_end;
        self.ctx_fields[2] = buf + data_meta;
        self.ctx_fields[3] = u64::from(ifindex);
        self.ctx_fields[4] = u64::from(rxq);
    }

    /// Copies the context fields compiled code reads from the region table (helpers such as
    /// `bpf_xdp_adjust_head` move the packet).
    pub(super) fn refresh_context(&mut self) {
        // SAFETY: as in `memory`.
        let memory = unsafe { &*self.memory };
        match memory.context {
            Context::None => {}
            Context::Xdp { addr, ingress_ifindex, rx_queue_index } => {
                if let Some(x) = memory.xdp {
                    self.set_xdp_fields(
                        x.buf.start,
                        [x.data, x.data_end, x.data_meta],
                        ingress_ifindex,
                        rx_queue_index,
                    );
                }
                self.ctx_addr = addr;
            }
            Context::Skb { addr, fields } => {
                for (slot, v) in self.ctx_fields.iter_mut().zip(fields) {
                    *slot = u64::from(v);
                }
                if let Some(skb) = memory.skb {
                    self.ctx_fields[crate::skb::SKB_DATA as usize / 4] = skb.packet.start;
                    self.ctx_fields[crate::skb::SKB_DATA_END as usize / 4] = skb.packet.start + skb.packet.len;
                }
                self.ctx_addr = addr;
            }
            Context::Http { addr, fields } => {
                for (slot, v) in self.ctx_fields.iter_mut().zip(fields) {
                    *slot = u64::from(v);
                }
                self.ctx_addr = addr;
            }
        }
    }

    fn call(&mut self, helper: &Helper, id: u64, pc: usize, args: &[u64; 5]) -> u64 {
        // SAFETY: `http` is null or points at the driver's `HttpRun`, which outlives the run and
        // is reached only from here while compiled code runs (one helper call at a time).
        let http = unsafe { self.http.as_mut() }.map(HttpRun::access);
        let memory = self.memory();
        let res = helper(&mut HelperContext { memory, http }, args);
        self.refresh_context();
        match res {
            Ok(HelperOutcome::Return(v)) => {
                self.status = STATUS_OK;
                v
            }
            Ok(HelperOutcome::Exit(v)) => self.stop(Ok(v)),
            Ok(HelperOutcome::Fallthrough) => {
                self.status = STATUS_FALLTHROUGH;
                0
            }
            Ok(HelperOutcome::TailCall(target)) => match self.shared().tail_target(target as usize) {
                Some(compiled) if self.tail_calls < MAX_TAIL_CALLS => {
                    if self.depth() != 0 {
                        return self.trap(pc, TrapKind::Unsupported("tail calls from bpf-to-bpf subprograms"));
                    }
                    if !compiled {
                        return self
                            .trap(pc, TrapKind::Unsupported("tail calls into programs the JIT did not compile"));
                    }
                    self.tail_calls += 1;
                    self.tail_target = u64::from(target);
                    self.status = STATUS_TAIL_CALL;
                    0
                }
                _ => {
                    self.status = STATUS_FALLTHROUGH;
                    0
                }
            },
            // Compiled code calls bpf_loop inline (see `Translator::inline_loop`), never here.
            Ok(HelperOutcome::Loop { .. }) => {
                self.trap(pc, TrapKind::Unsupported("bpf_loop through a dynamic helper call"))
            }
            Err(error) => self.trap(pc, TrapKind::HelperFailed { id: id as u32, error: Box::new(error) }),
        }
    }
}

/// Kinds of [`raise`].
pub(super) const RAISE_MISALIGNED: u64 = 0;
pub(super) const RAISE_CALL_DEPTH: u64 = 1;
pub(super) const RAISE_BUDGET: u64 = 2;
pub(super) const RAISE_KFUNC: u64 = 3;
pub(super) const RAISE_UNRESOLVED: u64 = 4;

/// Flag of `size` in [`load`]: a 32-bit load that may read the context (`ldxw`).
pub(super) const LOAD_CONTEXT: u64 = 1 << 8;

// === runtime calls made by compiled code ===
//
// Each takes the `RunCtx` pointer the driver passed to the compiled function, which is live and
// not otherwise borrowed for the duration of the call.

/// A static helper call. `site` is `pc << 32 | id`.
///
/// # Safety
/// `rt` must be the run's live context and `helper` a helper of the running module.
pub(super) unsafe extern "C" fn call_helper(
    rt: *mut RunCtx,
    helper: *const Helper,
    site: u64,
    a1: u64,
    a2: u64,
    a3: u64,
    a4: u64,
    a5: u64,
) -> u64 {
    // SAFETY: the caller's contract; `helper` points into the `Helpers` the compiled code keeps
    // alive, which are never mutated after compilation.
    let (rt, helper) = unsafe { (&mut *rt, &*helper) };
    rt.call(helper, site & 0xffff_ffff, (site >> 32) as usize, &[a1, a2, a3, a4, a5])
}

/// `callx`: a helper call through a register.
///
/// # Safety
/// `rt` must be the run's live context.
pub(super) unsafe extern "C" fn call_helper_dyn(
    rt: *mut RunCtx,
    id: u64,
    pc: u64,
    a1: u64,
    a2: u64,
    a3: u64,
    a4: u64,
    a5: u64,
) -> u64 {
    // SAFETY: the caller's contract.
    let rt = unsafe { &mut *rt };
    let helper = u32::try_from(id).ok().and_then(|id| rt.shared().code.helpers.get(id)).cloned();
    match helper {
        Some(helper) => rt.call(&helper, id, pc as usize, &[a1, a2, a3, a4, a5]),
        None => rt.trap(pc as usize, TrapKind::UnknownHelper(id)),
    }
}

/// A checked load of `size & 0xff` bytes, zero-extended; with [`LOAD_CONTEXT`], a 4-byte load that
/// falls in the context is translated as the interpreter's `ldxw` does.
///
/// # Safety
/// `rt` must be the run's live context.
pub(super) unsafe extern "C" fn load(rt: *mut RunCtx, addr: u64, size: u64, pc: u64) -> u64 {
    // SAFETY: the caller's contract.
    let rt = unsafe { &mut *rt };
    let memory = rt.memory();
    let n = size & 0xff;
    match memory.translate_read(addr, n) {
        Ok(p) => {
            rt.status = STATUS_OK;
            // SAFETY: the region table proved `[p, p + n)` lies inside a live region of this run;
            // unaligned reads have no alignment requirement.
            unsafe {
                match n {
                    1 => u64::from(p.read()),
                    2 => u64::from(p.cast::<u16>().read_unaligned()),
                    4 => u64::from(p.cast::<u32>().read_unaligned()),
                    _ => p.cast::<u64>().read_unaligned(),
                }
            }
        }
        Err(kind) => {
            if size & LOAD_CONTEXT != 0 {
                match memory.context_load(addr, 4) {
                    Some(Ok(v)) => {
                        rt.status = STATUS_OK;
                        return v;
                    }
                    Some(Err(kind)) => return rt.trap(pc as usize, kind),
                    None => {}
                }
            }
            rt.trap(pc as usize, kind)
        }
    }
}

/// A checked store of the low `size` bytes of `value`.
///
/// # Safety
/// `rt` must be the run's live context.
pub(super) unsafe extern "C" fn store(rt: *mut RunCtx, addr: u64, value: u64, size: u64, pc: u64) -> u64 {
    // SAFETY: the caller's contract.
    let rt = unsafe { &mut *rt };
    let memory = rt.memory();
    match memory.translate_write(addr, size) {
        Ok(p) => {
            // SAFETY: the region table proved `[p, p + size)` lies inside a live writable region.
            unsafe {
                match size {
                    1 => p.write(value as u8),
                    2 => p.cast::<u16>().write_unaligned(value as u16),
                    4 => p.cast::<u32>().write_unaligned(value as u32),
                    _ => p.cast::<u64>().write_unaligned(value),
                }
            }
            rt.status = STATUS_OK;
            0
        }
        Err(kind) => rt.trap(pc as usize, kind),
    }
}

/// A checked atomic `op` (an [`Op`] as `u8`) at `addr`; returns the old value (for
/// `cmpxchg`, the value `r0` gets).
///
/// # Safety
/// `rt` must be the run's live context.
pub(super) unsafe extern "C" fn atomic(rt: *mut RunCtx, op: u64, addr: u64, src: u64, r0: u64, pc: u64) -> u64 {
    // SAFETY: the caller's contract.
    let rt = unsafe { &mut *rt };
    let Some(op) = atomic_op(op) else { return rt.trap(pc as usize, TrapKind::Unsupported("unknown atomic")) };
    let size = atomic_size(op);
    if !addr.is_multiple_of(size) {
        return rt.trap(pc as usize, TrapKind::MisalignedAtomic { addr, size });
    }
    let memory = rt.memory();
    let p = match memory.translate_write(addr, size) {
        Ok(p) => p,
        Err(kind) => return rt.trap(pc as usize, kind),
    };
    rt.status = STATUS_OK;
    let sc = Ordering::SeqCst;
    if size == 4 {
        // SAFETY: in bounds of a live writable region and aligned (checked above); concurrent
        // access to guest memory is atomic or the guest's own racy plain access, as in the kernel.
        let cell = unsafe { AtomicU32::from_ptr(p.cast()) };
        let v = src as u32;
        u64::from(match op {
            Op::AtomicAddW | Op::AtomicFetchAddW => cell.fetch_add(v, sc),
            Op::AtomicOrW | Op::AtomicFetchOrW => cell.fetch_or(v, sc),
            Op::AtomicAndW | Op::AtomicFetchAndW => cell.fetch_and(v, sc),
            Op::AtomicXorW | Op::AtomicFetchXorW => cell.fetch_xor(v, sc),
            Op::AtomicXchgW => cell.swap(v, sc),
            _ => match cell.compare_exchange(r0 as u32, v, sc, sc) {
                Ok(v) | Err(v) => v,
            },
        })
    } else {
        // SAFETY: as above.
        let cell = unsafe { AtomicU64::from_ptr(p.cast()) };
        match op {
            Op::AtomicAddDw | Op::AtomicFetchAddDw => cell.fetch_add(src, sc),
            Op::AtomicOrDw | Op::AtomicFetchOrDw => cell.fetch_or(src, sc),
            Op::AtomicAndDw | Op::AtomicFetchAndDw => cell.fetch_and(src, sc),
            Op::AtomicXorDw | Op::AtomicFetchXorDw => cell.fetch_xor(src, sc),
            Op::AtomicXchgDw => cell.swap(src, sc),
            _ => match cell.compare_exchange(r0, src, sc, sc) {
                Ok(v) | Err(v) => v,
            },
        }
    }
}

/// The atomic instructions, indexed by the `u8` compiled code passes.
const ATOMICS: [Op; 20] = [
    Op::AtomicAddW,
    Op::AtomicOrW,
    Op::AtomicAndW,
    Op::AtomicXorW,
    Op::AtomicFetchAddW,
    Op::AtomicFetchOrW,
    Op::AtomicFetchAndW,
    Op::AtomicFetchXorW,
    Op::AtomicXchgW,
    Op::AtomicCmpXchgW,
    Op::AtomicAddDw,
    Op::AtomicOrDw,
    Op::AtomicAndDw,
    Op::AtomicXorDw,
    Op::AtomicFetchAddDw,
    Op::AtomicFetchOrDw,
    Op::AtomicFetchAndDw,
    Op::AtomicFetchXorDw,
    Op::AtomicXchgDw,
    Op::AtomicCmpXchgDw,
];

pub(super) fn atomic_index(op: Op) -> u64 {
    ATOMICS.iter().position(|o| *o == op).unwrap_or(usize::MAX) as u64
}

fn atomic_op(index: u64) -> Option<Op> {
    ATOMICS.get(index as usize).copied()
}

pub(super) fn atomic_size(op: Op) -> u64 {
    if ATOMICS.iter().position(|o| *o == op).is_some_and(|i| i < 10) { 4 } else { 8 }
}

/// `bpf_map_lookup_elem` on a known map: the value's address, or 0.
///
/// # Safety
/// `map` must point at a live map and `key` at `key_size` readable bytes (the verifier's proof
/// for the helper's key argument).
pub(super) unsafe extern "C" fn map_lookup(map: *const Map, key: u64, cpu: u64) -> u64 {
    // SAFETY: the caller's contract.
    let (map, key) = unsafe { (&*map, map_bytes(key, (*map).spec().key_size as usize)) };
    map.lookup_ptr(key, cpu as usize).map_or(0, |p| p.as_ptr() as u64)
}

/// `bpf_map_update_elem` on a known map: 0 or a negative errno.
///
/// # Safety
/// As [`map_lookup`], and `value` must point at `value_size` readable bytes.
pub(super) unsafe extern "C" fn map_update(map: *const Map, key: u64, value: u64, flags: u64, cpu: u64) -> u64 {
    // SAFETY: the caller's contract.
    let (map, key, value) = unsafe {
        (&*map, map_bytes(key, (*map).spec().key_size as usize), map_bytes(value, (*map).spec().value_size as usize))
    };
    map.update(key, value, flags, Some(cpu as usize)).map_or_else(|e| e.errno(), |()| 0) as u64
}

/// `bpf_map_delete_elem` on a known map: 0 or a negative errno.
///
/// # Safety
/// As [`map_lookup`].
pub(super) unsafe extern "C" fn map_delete(map: *const Map, key: u64) -> u64 {
    // SAFETY: the caller's contract.
    let (map, key) = unsafe { (&*map, map_bytes(key, (*map).spec().key_size as usize)) };
    map.delete(key).map_or_else(|e| e.errno(), |()| 0) as u64
}

/// `bpf_ringbuf_output` on a known ring buffer: 0, or `-EAGAIN` when the record does not fit.
///
/// # Safety
/// `map` must point at a live map and `[data, data + size)` be readable (the verifier's proof for
/// the helper's memory argument).
pub(super) unsafe extern "C" fn ringbuf_output(map: *const Map, data: u64, size: u64) -> u64 {
    // SAFETY: the caller's contract; the verifier bounds `size` to what `data` points at.
    let (map, data) = unsafe { (&*map, map_bytes(data, size as usize)) };
    map.ringbuf_output(data).map_or(crate::module::EAGAIN, |()| 0) as u64
}

/// `bpf_ktime_get_ns` / `bpf_ktime_get_boot_ns`: the module's clock.
///
/// # Safety
/// `env` must point at a live environment.
pub(super) unsafe extern "C" fn env_clock(env: *const crate::Env) -> u64 {
    // SAFETY: the caller's contract.
    let env = unsafe { &*env };
    (env.clock)()
}

/// `bpf_get_prandom_u32`: the module's generator.
///
/// # Safety
/// `env` must point at a live environment.
pub(super) unsafe extern "C" fn env_random(env: *const crate::Env) -> u64 {
    // SAFETY: the caller's contract.
    let env = unsafe { &*env };
    u64::from((env.random)())
}

/// `len` bytes at guest address `addr`, which compiled code proved readable.
///
/// # Safety
/// `[addr, addr + len)` must be readable for the call's duration.
unsafe fn map_bytes<'a>(addr: u64, len: usize) -> &'a [u8] {
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts(addr as *const u8, len) }
}

/// Ends the run with a trap compiled code detected itself.
///
/// # Safety
/// `rt` must be the run's live context.
pub(super) unsafe extern "C" fn raise(rt: *mut RunCtx, kind: u64, pc: u64, a: u64, b: u64) -> u64 {
    // SAFETY: the caller's contract.
    let rt = unsafe { &mut *rt };
    let pc = pc as usize;
    let kind = match kind {
        RAISE_MISALIGNED => TrapKind::MisalignedAtomic { addr: a, size: b },
        RAISE_CALL_DEPTH => TrapKind::CallDepthExceeded { max: MAX_CALL_DEPTH },
        RAISE_BUDGET => {
            // The segment starting at `pc` had `a` instructions of budget left: the trap falls on
            // the `a`-th instruction after it (an lddw takes two slots).
            let insns = &rt.shared().code.programs[rt.current];
            let mut at = pc;
            for _ in 0..a {
                at += insns.get(at).map_or(1, Insn::slots);
            }
            return rt.trap(at, TrapKind::BudgetExhausted(rt.max_insns));
        }
        RAISE_KFUNC => TrapKind::Kfunc(a as i64),
        _ => TrapKind::UnresolvedPseudo(duet_isa::PseudoSrc::from_src(a as u8).unwrap_or(duet_isa::PseudoSrc::MapFd)),
    };
    rt.trap(pc, kind)
}
