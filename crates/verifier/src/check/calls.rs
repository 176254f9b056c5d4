//! Calls and exits: helper calls checked against their prototypes (argument by argument),
//! bpf-to-bpf calls, bpf_loop callbacks, and what an exit must leave (return value, no held
//! references).

use duet_isa::Insn;

use super::memory::{Bounds, merge_region, scrub_spill, slot_of};
use super::{Access, Checker, Flow};
use crate::diag::{Code, Diagnostic};
use crate::helpers::{self, Arg, Proto, Ref, Refusal, Ret};
use crate::scalar::Scalar;
use crate::state::{ByteKind, Frame, HeldRef, MAX_CALL_FRAMES, MAX_VAR_OFF, Reg, RegType, StaleKind, State};
use crate::{Callback, MemRegion, ProgramType};

impl Checker<'_> {
    pub(super) fn call_local(&mut self, st: &mut State, pc: usize, insn: &Insn) -> Flow {
        let next = pc + 1;
        let target = insn.branch_target(pc).and_then(|t| usize::try_from(t).ok()).unwrap_or(next);
        if st.frames.len() >= MAX_CALL_FRAMES {
            self.fail_call(
                st,
                pc,
                Diagnostic::new(
                    Code::StackLimit,
                    Some(pc),
                    format!(
                        "this call would make the call chain {} frames deep; the limit is {MAX_CALL_FRAMES}",
                        st.frames.len() + 1
                    ),
                )
                .help("mark small helpers `static __always_inline` (or `#[inline(always)]`) to flatten the call chain"),
            );
            return Flow::Next(next);
        }
        let subprog = self.cfg.subprog_at(target).unwrap_or(0);
        let index = st.frames.len() as u8;
        let mut frame = Frame::new(index, pc, subprog);
        let caller = st.cur();
        frame.regs[1..=5].copy_from_slice(&caller.regs[1..=5]);
        st.frames.push(frame);
        Flow::Next(target)
    }

    pub(super) fn exit(&mut self, st: &mut State, pc: usize) -> Flow {
        if st.frames.len() > 1 && !st.cur().callback {
            // As the kernel, a bpf-to-bpf call returns whatever R0 holds, set or not (clang
            // leaves it unset when every path returns the same constant and the caller sets
            // r0 itself): an unset R0 stays unreadable in the caller until it is written.
            let r0 = *st.reg(0);
            let depth = st.frames.len() - 1;
            if r0.ty == (RegType::Stack { frame: depth as u8 }) {
                self.fail(
                    st,
                    pc,
                    &[0],
                    Diagnostic::new(
                        Code::StackAccess,
                        Some(pc),
                        "the function returns a pointer to its own stack, which ends when it returns",
                    )
                    .help("return values, or write into memory the caller passed in"),
                );
            }
            let Some(callee) = st.frames.pop() else { return Flow::Done };
            let caller = st.cur_mut();
            caller.regs[0] = if r0.ty == RegType::NotInit { Reg::clobbered(callee.callsite) } else { r0 };
            for r in 1..=5 {
                caller.regs[r] = Reg::clobbered(callee.callsite);
            }
            return Flow::Next(callee.callsite + 1);
        }
        let r0 = self.read(st, pc, 0);
        if st.frames.len() > 1 {
            return self.callback_exit(st, pc, r0);
        }
        // Program types whose return value the kernel range-checks need a number; for the
        // others a privileged loader may return an address as a number.
        let ranged = self.ctx.program_type.is_http() || self.ctx.program_type == ProgramType::CgroupSkb;
        if r0.ty.is_pointer() && ranged {
            self.fail(
                st,
                pc,
                &[0],
                Diagnostic::new(
                    Code::ReturnValue,
                    Some(pc),
                    format!(
                        "the {} program returns R0, which is {}: R0 is not a known value",
                        self.ctx.program_type.name(),
                        r0.ty.describe()
                    ),
                )
                .help("return a number (a verdict) in the range the program type allows"),
            );
        } else if r0.ty.is_pointer() && !self.allow_ptr_leaks() {
            self.fail(
                st,
                pc,
                &[0],
                Diagnostic::new(
                    Code::PointerLeak,
                    Some(pc),
                    format!("the program returns R0, which is {}", r0.ty.describe()),
                )
                .help("return a number (a verdict); a pointer would reveal an address"),
            );
        } else if r0.ty.is_pointer() {
            // A privileged loader's program may return an address.
        } else if matches!(self.ctx.program_type, ProgramType::HttpRequest | ProgramType::HttpResponse)
            && r0.val.umax > 1
        {
            let value = r0
                .val
                .as_const()
                .map_or_else(|| format!("a value in {}..={}", r0.val.umin, r0.val.umax), |v| v.to_string());
            self.fail(
                st,
                pc,
                &[0],
                Diagnostic::new(
                    Code::ReturnValue,
                    Some(pc),
                    format!(
                        "the {} program may return {value}; http filters return 0 (continue) or 1 (respond)",
                        self.ctx.program_type.name()
                    ),
                )
                .help("return 0 to let the exchange go on, or 1 to answer with the response set by http_respond (403 without one); bound computed values (`ret & 1`, `ret != 0`) on every path"),
            );
        } else if self.ctx.program_type == ProgramType::CgroupSkb && r0.val.umax > 1 {
            let value = r0
                .val
                .as_const()
                .map_or_else(|| format!("a value in {}..={}", r0.val.umin, r0.val.umax), |v| v.to_string());
            self.fail(
                st,
                pc,
                &[0],
                Diagnostic::new(
                    Code::ReturnValue,
                    Some(pc),
                    format!("the cgroup_skb program may return {value}; it must return 0 (drop) or 1 (pass)"),
                )
                .help("return 0 to drop the packet or 1 to let it pass, on every path"),
            );
        }
        for held in st.refs.clone() {
            let d = Diagnostic::new(
                Code::ReferenceLeak,
                Some(pc),
                format!("the program can exit here still holding {} (an unreleased reference)", self.held_ref(&held)),
            )
            .help(match held.kind {
                Ref::Record => "every reserved record must be passed to bpf_ringbuf_submit or bpf_ringbuf_discard on every path, including early returns",
                Ref::Socket => "every socket a lookup returned (checked not NULL) must be passed to bpf_sk_release on every path, including early returns",
            });
            self.fail(st, pc, &[], d);
        }
        Flow::Done
    }

    /// A helper that calls a function of the program back (bpf_loop), verified as the kernel
    /// does: the call may return without running the callback, or run it on a new frame (r1 the
    /// index, r2 the helper's context argument), after which the same call is checked again,
    /// so the callback is verified for any number of calls.
    pub(super) fn call_with_callback(&mut self, st: &mut State, pc: usize, insn: &Insn) -> Flow {
        let next = pc + 1;
        let before = st.clone();
        self.call_helper(st, pc, insn);
        let RegType::Func { subprog } = before.reg(2).ty else { return Flow::Next(next) };
        let Some(start) = self.cfg.subprogs.get(subprog as usize).map(|s| s.start) else { return Flow::Next(next) };
        // As the kernel's `update_loop_inline_state`: inlined when every path passes this
        // callback and flags known to be 0.
        let flags_zero = before.reg(4).ty == RegType::Scalar && before.reg(4).val.as_const() == Some(0);
        self.facts[pc].callback = match self.facts[pc].callback {
            None => Some(Callback::At { start, inline: flags_zero }),
            Some(Callback::At { start: s, inline }) if s == start => {
                Some(Callback::At { start, inline: inline && flags_zero })
            }
            Some(_) => Some(Callback::Mixed),
        };
        // As the kernel: along a path, the callback runs at most as many times as the count
        // (r1) can be large; once it has, the call is passed (`callback_depth`).
        let count_max = if before.reg(1).ty == RegType::Scalar { before.reg(1).val.umax } else { u64::MAX };
        if before.cur().callback_depth >= count_max {
            st.cur_mut().callback_depth = 0;
            return Flow::Next(next);
        }
        if before.frames.len() >= MAX_CALL_FRAMES {
            let d = Diagnostic::new(
                Code::StackLimit,
                Some(pc),
                format!(
                    "the callback would make the call chain {} frames deep; the limit is {MAX_CALL_FRAMES}",
                    before.frames.len() + 1
                ),
            )
            .help("call bpf_loop from a shallower function, or inline the functions around it");
            self.fail(&before, pc, &[], d);
            return Flow::Next(next);
        }
        let mut callback = before;
        callback.cur_mut().callback_depth += 1;
        st.cur_mut().callback_depth = 0;
        let mut frame = Frame::new(callback.frames.len() as u8, pc, subprog as usize);
        frame.callback = true;
        frame.entry_refs = callback.refs.len();
        // The index: below the helper's limit of 1 << 23 calls at run time, but to the kernel's
        // verifier (`set_loop_callback_state`) any 64-bit number, and duet judges as it does.
        frame.regs[1] = Reg::scalar(Scalar::UNKNOWN);
        frame.regs[2] = *callback.reg(3);
        callback.frames.push(frame);
        // The callback first, the path after the call later: each time round pushes the state
        // after the call, so the last pushed, explored first, is the one after the most calls,
        // whose numbers are the widest, and the earlier ones are then covered by it where they
        // meet (explored in the other order, each of them goes its own way to the end, and so
        // on for every loop that follows: the paths multiply).
        Flow::Both { now: callback, now_pc: start, later: st.clone(), later_pc: next }
    }

    /// The end of a callback: it returns 0 (go on) or 1 (stop), keeps no reference it took,
    /// and control goes back to the helper call, which may call it again.
    fn callback_exit(&mut self, st: &mut State, pc: usize, r0: Reg) -> Flow {
        if r0.ty.is_pointer() || r0.val.smin < 0 || r0.val.smax > 1 {
            let value = if r0.ty.is_pointer() {
                r0.ty.describe().to_owned()
            } else {
                r0.val
                    .as_const()
                    .map_or_else(|| format!("a value in {}..={}", r0.val.smin, r0.val.smax), |v| (v as i64).to_string())
            };
            let d = Diagnostic::new(
                Code::ReturnValue,
                Some(pc),
                format!("the callback may return {value}; at callback return R0 should have been in [0, 1]"),
            )
            .help("a bpf_loop callback returns 0 to go on with the next index or 1 to stop the loop, on every path");
            self.fail(st, pc, &[0], d);
        }
        let entry_refs = st.cur().entry_refs;
        for held in st.refs.clone().iter().skip(entry_refs) {
            let d = Diagnostic::new(
                Code::ReferenceLeak,
                Some(pc),
                format!("the callback can return still holding {} (an unreleased reference)", self.held_ref(held)),
            )
            .help("release what the callback acquired (submit or discard a record, bpf_sk_release a socket) before it returns");
            self.fail(st, pc, &[], d);
        }
        let Some(callee) = st.frames.pop() else { return Flow::Done };
        // The caller's registers are as they were at the call, which runs again.
        Flow::Next(callee.callsite)
    }

    pub(super) fn call_helper(&mut self, st: &mut State, pc: usize, insn: &Insn) {
        let id = insn.imm;
        let Some(proto) = helpers::proto(id) else {
            self.fail_call(
                st,
                pc,
                Diagnostic::new(Code::UnknownHelper, Some(pc), format!("call to unknown helper #{id}")).help(format!(
                    "duet verifies the kernel helpers {} and, in http programs, duet's 10000-10005",
                    helpers::kernel_ids()
                )),
            );
            return;
        };
        let proto = &proto;
        if let Err(refusal) = proto.allowed_for(self.ctx.program_type) {
            let ty = self.ctx.program_type.name();
            let d = match refusal {
                Refusal::NotForType => Diagnostic::new(
                    Code::UnknownHelper,
                    Some(pc),
                    format!("{} is not available to {ty} programs", proto.name),
                ),
                Refusal::HttpOnly => Diagnostic::new(
                    Code::UnknownHelper,
                    Some(pc),
                    format!("helper {id} ({}) is a duet userspace helper, only for http programs", proto.name),
                )
                .help(format!(
                    "http helpers work on an HTTP exchange in duet's sidecar; put the program in a duet/http_request, duet/http_response or duet/route section (this is a {ty} program)"
                )),
                Refusal::ReadOnlyRoute => Diagnostic::new(
                    Code::UnknownHelper,
                    Some(pc),
                    format!("helper {id} ({}) changes the exchange, which route programs may only read", proto.name),
                )
                .help("route programs may call http_field and http_header_get; change headers or respond in a duet/http_request or duet/http_response filter"),
            };
            self.fail(st, pc, &[], d);
        } else if proto.needs_perfmon() && self.ctx.config.unprivileged {
            let d = Diagnostic::new(
                Code::UnknownHelper,
                Some(pc),
                format!(
                    "{} needs CAP_PERFMON: the kernel does not give it to a loader with CAP_BPF alone",
                    proto.name
                ),
            )
            .help("load the program as root (or with CAP_PERFMON), duet's default rules; or remove the call (e.g. debug printing)");
            self.fail(st, pc, &[], d);
        }
        self.last_const_key = None;
        let mut map: Option<u32> = None;
        let mut sizes = [None::<Scalar>; 6];
        // Sizes first: a memory argument is checked against the size that follows it.
        for (i, arg) in proto.args.iter().enumerate() {
            let r = (i + 1) as u8;
            if let Arg::Size { zero_ok } = arg {
                let reg = self.read(st, pc, r);
                sizes[usize::from(r)] = Some(self.size_arg(st, pc, proto, r, &reg, *zero_ok));
            }
        }
        let mut alloc = None;
        let mut released = None;
        // The reference of the socket argument, which a pointer cast's result shares.
        let mut sock_ref = 0;
        for (i, arg) in proto.args.iter().enumerate() {
            let r = (i + 1) as u8;
            match arg {
                Arg::Size { .. } => {}
                Arg::MapHandle => {
                    let reg = self.read(st, pc, r);
                    match reg.ty {
                        RegType::MapHandle { map: m } if reg.off == 0 && self.unknown_inner_map(m) => {
                            let name = self.maps.get(m as usize).map_or("", |i| i.name.as_str()).to_owned();
                            let d = Diagnostic::new(
                                Code::Unsupported,
                                Some(pc),
                                format!(
                                    "{} is passed R{r}, {name}, whose definition (the inner map template) duet does not know",
                                    proto.name
                                ),
                            )
                            .help("duet-object does not read a map of maps' inner map definition from the object yet, so the key and value sizes the kernel checks are unknown here; the kernel's verifier checks this program at load (`duet load`)");
                            self.fail(st, pc, &[r], d);
                        }
                        RegType::MapHandle { map: m } if reg.off == 0 => {
                            map = Some(m);
                            if let Some(info) = self.maps.get(m as usize)
                                && !proto.accepts_map(info.map_type)
                                && !helpers::may_change_sock_map(proto.id, info.map_type, self.ctx.program_type)
                            {
                                let d = Diagnostic::new(
                                    Code::BadMap,
                                    Some(pc),
                                    format!(
                                        "{} cannot be used with map `{}` of type {}",
                                        proto.name,
                                        info.name,
                                        duet_object::map_type_name(info.map_type)
                                    ),
                                )
                                .help(map_help(proto, info.map_type));
                                self.fail(st, pc, &[r], d);
                            } else if let Some(info) = self.maps.get(m as usize)
                                && matches!(proto.id, 2 | 3)
                                && !info.prog_can_write()
                            {
                                // As the kernel's record_func_map: a map programs may only read
                                // (BPF_F_RDONLY_PROG, `.rodata`) is not updated or deleted from.
                                let d = Diagnostic::new(
                                    Code::ReadOnly,
                                    Some(pc),
                                    format!(
                                        "{} on map `{}`, which programs may only read: write into map forbidden",
                                        proto.name, info.name
                                    ),
                                )
                                .help("the map was created with BPF_F_RDONLY_PROG (or is `.rodata`); change it from userspace, or drop the flag");
                                self.fail(st, pc, &[r], d);
                            }
                        }
                        _ => {
                            let d = Diagnostic::new(
                                Code::HelperArgs,
                                Some(pc),
                                format!("{} expects a map handle in R{r}, found {}", proto.name, reg.ty.describe()),
                            )
                            .help(
                                "load the map with `lddw rX, map_fd N` (in C, pass `&my_map`) directly before the call",
                            );
                            self.fail(st, pc, &[r], d);
                        }
                    }
                }
                Arg::Value
                    if proto.id == 2
                        && map
                            .and_then(|m| self.maps.get(m as usize))
                            .is_some_and(|i| helpers::is_sock_map(i.map_type)) =>
                {
                    // A sockmap's or sockhash's value is a socket (the kernel's
                    // ARG_PTR_TO_BTF_ID_SOCK_COMMON for it): the map takes its own reference, so
                    // the program's, if any, is still to be released.
                    let reg = self.read(st, pc, r);
                    self.sock_arg(st, pc, proto, r, &reg);
                }
                Arg::Key | Arg::Value => {
                    let reg = self.read(st, pc, r);
                    let Some(info) = map.and_then(|m| self.maps.get(m as usize)) else { continue };
                    let (size, what) =
                        if *arg == Arg::Key { (info.key_size, "key") } else { (info.value_size, "value") };
                    self.mem_arg(st, pc, proto, r, &reg, u64::from(size), what, true);
                }
                Arg::OutValue => {
                    let reg = self.read(st, pc, r);
                    let Some(info) = map.and_then(|m| self.maps.get(m as usize)) else { continue };
                    let size = Scalar::constant(u64::from(info.value_size));
                    self.out_mem_arg(st, pc, proto, r, &reg, size);
                }
                Arg::Ctx => {
                    let reg = self.read(st, pc, r);
                    if reg.ty != RegType::Ctx || reg.off != 0 || !reg.val.is_const(0) {
                        let d = Diagnostic::new(
                            Code::HelperArgs,
                            Some(pc),
                            format!("{} expects the unmodified context pointer in R{r}, found {reg}", proto.name),
                        )
                        .help("pass the program's context argument (r1 at entry, `ctx` in C) unchanged; save it in r6-r9 if other calls come first");
                        self.fail(st, pc, &[r], d);
                    }
                }
                Arg::Scalar => {
                    let reg = self.read(st, pc, r);
                    if reg.ty.is_pointer() && !self.allow_ptr_leaks() {
                        let d = Diagnostic::new(
                            Code::PointerLeak,
                            Some(pc),
                            format!("{} argument {r} must be a number, but R{r} is {}", proto.name, reg.ty.describe()),
                        )
                        .help("passing a pointer where the helper expects a number would reveal its address");
                        self.fail(st, pc, &[r], d);
                    }
                }
                Arg::Mem { nullable } | Arg::OutMem { nullable } => {
                    let reg = self.read(st, pc, r);
                    let size = sizes.get(usize::from(r) + 1).copied().flatten().unwrap_or(Scalar::constant(0));
                    // NULL only where the prototype allows it, and then only for nothing (the
                    // kernel: any other number is not memory, whatever the size).
                    if reg.is_scalar() && reg.val.is_const(0) && *nullable && size.is_const(0) {
                        continue;
                    }
                    if matches!(arg, Arg::OutMem { .. }) {
                        self.out_mem_arg(st, pc, proto, r, &reg, size);
                    } else {
                        self.mem_arg(st, pc, proto, r, &reg, size.umax, "memory", false);
                    }
                }
                Arg::Func => {
                    let reg = self.read(st, pc, r);
                    if !matches!(reg.ty, RegType::Func { .. }) || reg.off != 0 || !reg.val.is_const(0) {
                        let d = Diagnostic::new(
                            Code::HelperArgs,
                            Some(pc),
                            format!("{} expects a function of the program in R{r}, found {reg}", proto.name),
                        )
                        .help("load the callback with `lddw rX, func` (in C, pass the static function's name) directly before the call");
                        self.fail(st, pc, &[r], d);
                    }
                }
                Arg::StackOrNull => {
                    let reg = self.read(st, pc, r);
                    let ok = matches!(reg.ty, RegType::Stack { .. }) || (reg.is_scalar() && reg.val.is_const(0));
                    if !ok {
                        let d = Diagnostic::new(
                            Code::HelperArgs,
                            Some(pc),
                            format!(
                                "{} expects a stack pointer or NULL in R{r}, found {}",
                                proto.name,
                                reg.ty.describe()
                            ),
                        )
                        .help("pass the callback's context as a pointer to a stack variable (`&ctx` in C), or NULL");
                        self.fail(st, pc, &[r], d);
                    }
                }
                Arg::InOutMem => {
                    let reg = self.read(st, pc, r);
                    let size = sizes.get(usize::from(r) + 1).copied().flatten().unwrap_or(Scalar::constant(0));
                    self.mem_arg(st, pc, proto, r, &reg, size.umax, "memory", false);
                    self.clobber_mem_arg(st, pc, r, &reg, size.umax);
                }
                Arg::OutFixed { size } => {
                    let reg = self.read(st, pc, r);
                    let total = i64::from(reg.off);
                    let aligned = total.rem_euclid(i64::from(*size)) == 0 && reg.val.var.is_aligned(u64::from(*size));
                    if reg.ty.is_pointer() && !aligned {
                        let d = Diagnostic::new(
                            Code::HelperArgs,
                            Some(pc),
                            format!("{} needs an {size}-byte aligned pointer in R{r}, found {reg}", proto.name),
                        )
                        .help(format!(
                            "pass the address of a naturally aligned {size}-byte variable (`long res;` on the stack)"
                        ));
                        self.fail(st, pc, &[r], d);
                    }
                    self.out_mem_arg(st, pc, proto, r, &reg, Scalar::constant(u64::from(*size)));
                }
                Arg::AllocSize => {
                    let reg = self.read(st, pc, r);
                    match reg.as_const() {
                        Some(v) if v <= u64::from(u32::MAX) => alloc = Some(v as u32),
                        _ => {
                            let d = Diagnostic::new(
                                Code::HelperArgs,
                                Some(pc),
                                format!("{} needs a constant size in R{r}, found {reg}", proto.name),
                            )
                            .help("reserve a fixed-size record (`sizeof(struct event)`); use bpf_ringbuf_output for variable sizes");
                            self.fail(st, pc, &[r], d);
                        }
                    }
                }
                Arg::Socket => {
                    let reg = self.read(st, pc, r);
                    sock_ref = reg.ref_id;
                    self.sock_arg(st, pc, proto, r, &reg);
                }
                Arg::Release(Ref::Socket) => {
                    let reg = self.read(st, pc, r);
                    match reg.ty {
                        RegType::Socket { .. } | RegType::TcpSock if reg.ref_id != 0 => {
                            released = Some((reg.ref_id, StaleKind::Socket))
                        }
                        RegType::SocketOrNull { .. } => {
                            let d = Diagnostic::new(
                                Code::NullCheck,
                                Some(pc),
                                format!("{} is passed R{r}, a socket that may be NULL ({})", proto.name, reg.ty.name()),
                            )
                            .help("release only a socket found: `if (sk) bpf_sk_release(sk);`");
                            self.fail(st, pc, &[r], d);
                        }
                        _ => {
                            let d = Diagnostic::new(
                                Code::HelperArgs,
                                Some(pc),
                                format!(
                                    "{} expects a socket reference from a lookup in R{r}, found {}",
                                    proto.name,
                                    reg.ty.describe()
                                ),
                            )
                            .help("release each socket once, the pointer the lookup returned; after bpf_sk_release it is gone");
                            self.fail(st, pc, &[r], d);
                        }
                    }
                }
                Arg::Release(Ref::Record) => {
                    let reg = self.read(st, pc, r);
                    match reg.ty {
                        RegType::Record { .. } if reg.ref_id != 0 && reg.off == 0 && reg.val.is_const(0) => {
                            released = Some((reg.ref_id, StaleKind::Record));
                        }
                        RegType::Record { .. } => {
                            let d = Diagnostic::new(
                                Code::HelperArgs,
                                Some(pc),
                                format!(
                                    "{} needs the record pointer exactly as reserved, but R{r} is offset ({reg})",
                                    proto.name
                                ),
                            )
                            .help("pass the pointer bpf_ringbuf_reserve returned, not a pointer into the record");
                            self.fail(st, pc, &[r], d);
                        }
                        RegType::RecordOrNull { .. } => {
                            let d = Diagnostic::new(
                                Code::NullCheck,
                                Some(pc),
                                format!("{} is passed R{r}, a record that may be NULL", proto.name),
                            )
                            .help("bpf_ringbuf_reserve returns NULL when the ring buffer is full: check `if (!rec) return ...;` first");
                            self.fail(st, pc, &[r], d);
                        }
                        _ => {
                            let d = Diagnostic::new(
                                Code::HelperArgs,
                                Some(pc),
                                format!(
                                    "{} expects a record from bpf_ringbuf_reserve in R{r}, found {}",
                                    proto.name,
                                    reg.ty.describe()
                                ),
                            );
                            self.fail(st, pc, &[r], d);
                        }
                    }
                }
            }
        }

        if proto.id == 12
            && let Some(held) = st.refs.first().copied()
        {
            let d = Diagnostic::new(
                Code::ReferenceLeak,
                Some(pc),
                format!(
                    "a tail call while holding {} ({}): it would never be released",
                    match held.kind {
                        Ref::Record => "a ring buffer record",
                        Ref::Socket => "a socket reference",
                    },
                    self.held_ref(&held)
                ),
            )
            .help("release every reference (submit or discard records, bpf_sk_release sockets) before bpf_tail_call");
            self.fail(st, pc, &[], d);
        }
        if let Some((ref_id, was)) = released {
            st.refs.retain(|h| h.id != ref_id);
            st.for_each_reg(|r| {
                if r.ref_id == ref_id {
                    *r = Reg { ty: RegType::Stale { at: pc as u32, was }, ..Reg::NOT_INIT };
                }
            });
        }
        if proto.changes_packet {
            st.for_each_reg(|r| {
                if matches!(r.ty, RegType::Packet | RegType::PacketMeta | RegType::PacketEnd) {
                    *r = Reg { ty: RegType::Stale { at: pc as u32, was: StaleKind::Packet }, ..Reg::NOT_INIT };
                }
            });
        }
        self.clobber_call(st, pc);
        let r0 = match proto.ret {
            Ret::Scalar => Reg::scalar(Scalar::UNKNOWN),
            Ret::Bounded(max) => Reg::scalar(Scalar::urange(0, max)),
            Ret::Void => Reg::clobbered(pc),
            Ret::MapValueOrNull => match map {
                // A sockmap or sockhash lookup yields a socket reference (the kernel's
                // `is_acquire_function`), a `struct bpf_sock` once checked not NULL.
                Some(m) if self.maps.get(m as usize).is_some_and(|i| helpers::is_sock_map(i.map_type)) => {
                    self.acquire(st, pc, Ref::Socket, RegType::SocketOrNull { common: false })
                }
                Some(m) => {
                    if self.lookup_never_null(m) {
                        Reg::pointer(RegType::MapValue { map: m })
                    } else {
                        Reg { id: self.new_id(), ..Reg::pointer(RegType::MapValueOrNull { map: m }) }
                    }
                }
                None => Reg::scalar(Scalar::UNKNOWN),
            },
            Ret::RecordOrNull => match alloc {
                Some(size) => self.acquire(st, pc, Ref::Record, RegType::RecordOrNull { size }),
                None => Reg::scalar(Scalar::UNKNOWN),
            },
            Ret::SocketOrNull => self.acquire(st, pc, Ref::Socket, RegType::SocketOrNull { common: false }),
            Ret::SockCommonOrNull => self.acquire(st, pc, Ref::Socket, RegType::SocketOrNull { common: true }),
            // Pointer casts (the kernel's `is_ptr_cast_function`): a new pointer to NULL-check
            // (its own id) that shares the argument's reference, so that releasing either
            // releases both, and whose NULL branch releases nothing.
            Ret::FullSockOrNull => {
                Reg { id: self.new_id(), ref_id: sock_ref, ..Reg::pointer(RegType::SocketOrNull { common: false }) }
            }
            Ret::TcpSockOrNull => Reg { id: self.new_id(), ref_id: sock_ref, ..Reg::pointer(RegType::TcpSockOrNull) },
            Ret::UnreferencedSockOrNull => {
                Reg { id: self.new_id(), ..Reg::pointer(RegType::SocketOrNull { common: false }) }
            }
        };
        *st.reg_mut(0) = r0;
    }

    /// Checks that `reg` (argument `r` of `proto`) is a socket of the kernel's sock_common types
    /// (`struct bpf_sock`, `struct bpf_sock_common`, `struct bpf_tcp_sock`, an AF_XDP socket),
    /// checked not NULL.
    fn sock_arg(&mut self, st: &mut State, pc: usize, proto: &Proto, r: u8, reg: &Reg) {
        if matches!(reg.ty, RegType::Socket { .. } | RegType::TcpSock | RegType::XdpSock) {
            return;
        }
        let d = if reg.ty.is_nullable() {
            Diagnostic::new(
                Code::NullCheck,
                Some(pc),
                format!("{} is passed R{r}, which may be NULL ({})", proto.name, reg.ty.name()),
            )
            .help("the socket lookups (and __sk_buff.sk) give NULL when there is no socket: check `if (!sk) return ...;` first")
        } else {
            Diagnostic::new(
                Code::HelperArgs,
                Some(pc),
                format!("{} expects a socket in R{r}, found {}", proto.name, reg.ty.describe()),
            )
            .help("pass a socket from bpf_sk_lookup_tcp/udp, bpf_skc_lookup_tcp, a sockmap lookup or __sk_buff.sk, checked not NULL")
        };
        self.fail(st, pc, &[r], d);
    }

    /// A new reference of `kind` acquired by the call at `pc`: the program holds it until it
    /// releases it, and the returned pointer (of type `ty`, which may be NULL) carries its id.
    fn acquire(&mut self, st: &mut State, pc: usize, kind: Ref, ty: RegType) -> Reg {
        let id = self.new_id();
        st.refs.push(HeldRef { id, pc: pc as u32, kind });
        Reg { id, ref_id: id, ..Reg::pointer(ty) }
    }

    /// A held reference in words: "the ring buffer record reserved at insn 4".
    pub(super) fn held_ref(&self, held: &HeldRef) -> String {
        let at = self.where_(held.pc as usize);
        let helper = self.cfg.insn_at.get(held.pc as usize).copied().flatten().and_then(|i| helpers::proto(i.imm));
        match held.kind {
            Ref::Record => format!("the ring buffer record reserved at {at}"),
            Ref::Socket => format!("the socket returned by {} at {at}", helper.map_or("a socket lookup", |p| p.name)),
        }
    }

    /// Whether the lookup in the call at hand cannot fail: an array and a constant key in range
    /// on the stack (the kernel elides the NULL check in the same case).
    fn lookup_never_null(&self, map: u32) -> bool {
        let Some(info) = self.maps.get(map as usize) else { return false };
        if !helpers::lookup_never_null(info.map_type) || info.key_size != 4 {
            return false;
        }
        // r2 is clobbered by now; `mem_arg` recorded the key while checking it.
        matches!(self.last_const_key, Some(k) if k < u64::from(info.max_entries))
    }

    fn size_arg(&mut self, st: &State, pc: usize, proto: &Proto, r: u8, reg: &Reg, zero_ok: bool) -> Scalar {
        if reg.ty.is_pointer() {
            let d = Diagnostic::new(
                Code::HelperArgs,
                Some(pc),
                format!("{} expects a size in R{r}, found {}", proto.name, reg.ty.describe()),
            );
            self.fail(st, pc, &[r], d);
            return Scalar::constant(0);
        }
        let v = reg.val;
        if v.smin < 0 {
            let d = Diagnostic::new(Code::HelperArgs, Some(pc), format!("the size in R{r} may be negative ({v})"))
                .help("use an unsigned type for sizes, or check `if (size < 0) return ...;`");
            self.fail(st, pc, &[r], d);
            return Scalar::constant(0);
        }
        if v.umax >= MAX_VAR_OFF as u64 {
            let d = Diagnostic::new(Code::HelperArgs, Some(pc), format!("the size in R{r} has no upper bound ({v})"))
                .help("bound the size first (`if (len > MAX) return ...;` or `len &= MASK`)");
            self.fail(st, pc, &[r], d);
            return Scalar::constant(0);
        }
        if !zero_ok && v.umin == 0 {
            let d = Diagnostic::new(Code::HelperArgs, Some(pc), format!("the size in R{r} may be zero ({v})"))
                .help(format!("{} needs at least one byte", proto.name));
            self.fail(st, pc, &[r], d);
        }
        v
    }

    /// Checks that `reg` points to `size` readable (and, for the stack, initialised) bytes.
    #[allow(clippy::too_many_arguments, reason = "the argument's description is part of the message")]
    fn mem_arg(
        &mut self,
        st: &mut State,
        pc: usize,
        proto: &Proto,
        r: u8,
        reg: &Reg,
        size: u64,
        what: &str,
        key_like: bool,
    ) {
        self.last_const_key = None;
        // The kernel checks this first, whatever the size (`check_func_arg`).
        if reg.ty.is_packet() && !proto.pkt_access {
            let d = Diagnostic::new(
                Code::HelperArgs,
                Some(pc),
                format!(
                    "{} is passed R{r}, a packet pointer, as its {what}: helper access to the packet is not allowed",
                    proto.name
                ),
            )
            .help(format!(
                "the kernel lets only some helpers (map lookup/update/delete, bpf_csum_diff) read the packet; copy the bytes to the stack or a map value first and pass that to {}",
                proto.name
            ));
            self.fail(st, pc, &[r], d);
            return;
        }
        // The pointer's kind is checked whatever the size: a zero size excuses the bytes, not a
        // number or a context pointer where memory is expected.
        if size == 0 && points_to_memory(reg) {
            return;
        }
        let size32 = u32::try_from(size).unwrap_or(u32::MAX);
        match reg.ty {
            RegType::Stack { frame } => {
                let Some((lo, hi)) = self.stack_range(st, pc, r, reg, 0, size32, Access::Read, false) else { return };
                let f = &st.frames[usize::from(frame)];
                let mut uninit = None;
                let mut has_ptr = false;
                let mut key = [0u8; 8];
                let mut key_known = hi - lo <= 8;
                for addr in lo..hi {
                    let (slot_i, b) = slot_of(addr);
                    let slot = f.slot(slot_i);
                    let spill = slot.spill_size();
                    match slot.bytes[b] {
                        ByteKind::Invalid => {
                            uninit.get_or_insert(addr);
                            key_known = false;
                        }
                        ByteKind::Spill if b < spill => {
                            if slot.has_pointer() {
                                has_ptr = true;
                            }
                            match slot.spill.and_then(|s| s.as_const()) {
                                Some(c) if (addr - lo) < 8 => key[(addr - lo) as usize] = (c >> (8 * b)) as u8,
                                _ => key_known = false,
                            }
                        }
                        ByteKind::Zero => {}
                        _ => key_known = false,
                    }
                }
                if let Some(addr) = uninit
                    && !self.allow_uninit_stack()
                {
                    let d = Diagnostic::new(
                        Code::UninitStack,
                        Some(pc),
                        format!("{} reads {size} bytes of {what} at fp{lo}, but the byte at fp{addr} was never written", proto.name),
                    )
                    .help(format!("initialise the whole {what} before the call (e.g. `= {{}}` or memset), including padding between fields"));
                    self.fail(st, pc, &[r], d);
                } else if has_ptr && !self.allow_ptr_leaks() {
                    let d = Diagnostic::new(
                        Code::PointerLeak,
                        Some(pc),
                        format!("the {what} passed to {} contains a pointer spilled to the stack", proto.name),
                    )
                    .help(
                        "store numbers, not pointers, in maps and helper buffers: a pointer there reveals an address",
                    );
                    self.fail(st, pc, &[r], d);
                }
                if key_like && key_known && size == 4 {
                    self.last_const_key = Some(u64::from(u32::from_le_bytes([key[0], key[1], key[2], key[3]])));
                }
                self.facts[pc].mem = merge_region(self.facts[pc].mem, MemRegion::Stack);
            }
            RegType::Packet | RegType::PacketMeta => {
                self.packet_access(st, pc, r, reg, 0, size32, Access::Read);
            }
            RegType::MapValue { map } => {
                self.bounded_access(st, pc, r, reg, 0, size32, Access::Read, Bounds::Map(map));
            }
            RegType::Record { size: rsize } => {
                self.bounded_access(st, pc, r, reg, 0, size32, Access::Read, Bounds::Record(rsize));
            }
            ty if ty.is_nullable() => {
                let d = Diagnostic::new(
                    Code::NullCheck,
                    Some(pc),
                    format!("{} is passed R{r} as its {what}, but R{r} may be NULL", proto.name),
                )
                .help("check the pointer against NULL before passing it");
                self.fail(st, pc, &[r], d);
            }
            _ => {
                let d = Diagnostic::new(
                    Code::HelperArgs,
                    Some(pc),
                    format!(
                        "{} expects a pointer to {size} bytes of {what} in R{r}, found {}",
                        proto.name,
                        reg.ty.describe()
                    ),
                )
                .help(format!(
                    "pass a pointer to the {what}: a stack buffer (`&key` in C), a map value or packet bytes"
                ));
                self.fail(st, pc, &[r], d);
            }
        }
    }

    /// After a helper that may write through `reg` (`size` bytes, already checked readable):
    /// the memory must be writable, and stack bytes there are no longer tracked.
    fn clobber_mem_arg(&mut self, st: &mut State, pc: usize, r: u8, reg: &Reg, size: u64) {
        if size == 0 {
            return;
        }
        let size32 = u32::try_from(size).unwrap_or(u32::MAX);
        match reg.ty {
            RegType::Stack { frame } => {
                let Some((lo, hi)) = self.stack_range(st, pc, r, reg, 0, size32, Access::Write, false) else { return };
                let frame = usize::from(frame);
                if frame >= st.frames.len() {
                    return;
                }
                for addr in lo..hi {
                    let (si, b) = slot_of(addr);
                    let slot = st.frames[frame].slot_mut(si);
                    scrub_spill(slot);
                    slot.bytes[b] = ByteKind::Misc;
                }
            }
            RegType::MapValue { map } => {
                self.bounded_access(st, pc, r, reg, 0, size32, Access::Write, Bounds::Map(map));
            }
            _ => {}
        }
    }

    /// Checks that `reg` points to writable memory of `size` bytes for a helper to fill (the
    /// kernel's raw-mode memory arguments), and records the stack bytes it certainly writes as
    /// initialised. The helpers write the whole buffer (their value, then zeros).
    fn out_mem_arg(&mut self, st: &mut State, pc: usize, proto: &Proto, r: u8, reg: &Reg, size: Scalar) {
        if size.umax == 0 && points_to_memory(reg) {
            return;
        }
        let size32 = u32::try_from(size.umax).unwrap_or(u32::MAX);
        match reg.ty {
            RegType::Stack { frame } => {
                let Some((lo, hi)) = self.stack_range(st, pc, r, reg, 0, size32, Access::Write, false) else { return };
                self.facts[pc].mem = merge_region(self.facts[pc].mem, MemRegion::Stack);
                let frame = usize::from(frame);
                if frame >= st.frames.len() {
                    return;
                }
                let exact = reg.val.as_const().is_some();
                // Bytes the helper surely writes: all of them from a constant offset up to the
                // smallest size; with a variable offset, none for sure.
                let sure_end = if exact { lo + size.umin.min(size.umax) as i64 } else { lo };
                for addr in lo..hi {
                    let (si, b) = slot_of(addr);
                    let slot = st.frames[frame].slot(si);
                    if addr >= sure_end && slot.bytes[b] == ByteKind::Invalid {
                        if exact || self.allow_uninit_stack() {
                            // Maybe written, maybe not: it stays uninitialised (which a
                            // privileged program may read as an unknown number).
                            continue;
                        }
                        let d = Diagnostic::new(
                            Code::UninitStack,
                            Some(pc),
                            format!(
                                "{} may fill fp{lo}..fp{hi} through R{r}, a variable offset, which may leave fp{addr} unwritten",
                                proto.name
                            ),
                        )
                        .help("pass a buffer at a constant stack offset, or initialise the whole range first");
                        self.fail(st, pc, &[r], d);
                        return;
                    }
                    let slot = st.frames[frame].slot_mut(si);
                    scrub_spill(slot);
                    slot.bytes[b] = ByteKind::Misc;
                }
            }
            RegType::MapValue { map } => {
                self.bounded_access(st, pc, r, reg, 0, size32, Access::Write, Bounds::Map(map));
            }
            RegType::Record { size: rsize } => {
                self.bounded_access(st, pc, r, reg, 0, size32, Access::Write, Bounds::Record(rsize));
            }
            ty if ty.is_nullable() => {
                let d = Diagnostic::new(
                    Code::NullCheck,
                    Some(pc),
                    format!("{} is passed R{r} as its buffer, but R{r} may be NULL", proto.name),
                )
                .help("check the pointer against NULL before passing it");
                self.fail(st, pc, &[r], d);
            }
            _ => {
                let d = Diagnostic::new(
                    Code::HelperArgs,
                    Some(pc),
                    format!(
                        "{} expects a pointer to {} writable bytes in R{r}, found {}",
                        proto.name,
                        size.umax,
                        reg.ty.describe()
                    ),
                )
                .help(format!(
                    "pass a buffer {} can fill: a stack buffer (`char buf[64]` in C) or a writable map value",
                    proto.name
                ));
                self.fail(st, pc, &[r], d);
            }
        }
    }
}

/// Whether `reg` is a pointer a helper may be given as memory (the kernel's `mem_types`, as far
/// as duet tracks them): stack, packet, map value, ring buffer record.
fn points_to_memory(reg: &Reg) -> bool {
    matches!(
        reg.ty,
        RegType::Stack { .. }
            | RegType::Packet
            | RegType::PacketMeta
            | RegType::MapValue { .. }
            | RegType::Record { .. }
    )
}

fn map_help(proto: &Proto, map_type: u32) -> String {
    match proto.id {
        12 => "bpf_tail_call needs a prog_array map".to_owned(),
        51 => "bpf_redirect_map needs a devmap, devmap_hash, cpumap or xskmap".to_owned(),
        130 | 131 => "ring buffer helpers need a ringbuf map".to_owned(),
        _ if map_type == helpers::map_type::RINGBUF => {
            "ring buffers have no keys: use bpf_ringbuf_reserve/submit or bpf_ringbuf_output".to_owned()
        }
        _ if map_type == helpers::map_type::PROG_ARRAY => "prog_array maps are only for bpf_tail_call".to_owned(),
        _ if helpers::is_sock_map(map_type) => {
            "programs may look sockets up in a sockmap or sockhash (and must bpf_sk_release them); only XDP, TC classifiers and socket filters may update or delete their entries (the kernel: `cannot update sockmap in this context`); sock_ops programs use bpf_sock_map_update, which duet does not verify".to_owned()
        }
        _ => "this map type does not support the helper from a program".to_owned(),
    }
}
