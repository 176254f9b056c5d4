//! Conditional jumps: each branch's state refined by what its condition proves (number
//! bounds, NULL checks, packet ranges), or both explored when it proves nothing.

use duet_isa::{Form, Insn, Op};

use super::{Checker, Flow};
use crate::diag::{Code, Diagnostic};
use crate::scalar::{Cmp, Scalar};
use crate::state::{MAX_PACKET_OFF, Reg, RegType, State};

impl Checker<'_> {
    /// A conditional jump. For a loader without CAP_PERFMON (no Spectre v1 bypass), a branch
    /// the comparison rules out is still explored, speculatively, with the compared registers
    /// unknown (the kernel's `sanitize_speculative_path`): a loop with a known bound, for one,
    /// speculatively never ends.
    pub(super) fn cond_jump(&mut self, st: &mut State, pc: usize, insn: &Insn) -> Flow {
        let flow = self.cond_jump_arch(st, pc, insn);
        if self.allow_ptr_leaks() {
            return flow;
        }
        match flow {
            Flow::Branch { fall: Some(now), next, taken: None, target } => {
                let later = self.speculative_copy(st, insn);
                Flow::Both { now, now_pc: next, later, later_pc: target }
            }
            Flow::Branch { fall: None, next, taken: Some(now), target } => {
                let later = self.speculative_copy(st, insn);
                Flow::Both { now, now_pc: target, later, later_pc: next }
            }
            other => other,
        }
    }

    /// The state of the speculative path past a decided jump: the compared registers unknown.
    fn speculative_copy(&self, st: &State, insn: &Insn) -> State {
        let mut spec = st.clone();
        spec.speculative = true;
        let mut regs = vec![insn.dst];
        if insn.op.form() == Form::JmpReg {
            regs.push(insn.src);
        }
        for r in regs.into_iter().filter(|r| *r < 10) {
            *spec.reg_mut(r) = Reg::scalar(Scalar::UNKNOWN);
        }
        spec
    }

    fn cond_jump_arch(&mut self, st: &mut State, pc: usize, insn: &Insn) -> Flow {
        let class = insn.op.spec().code & 0x07;
        let is32 = class == 0x06;
        let next = pc + 1;
        let target = insn.branch_target(pc).and_then(|t| usize::try_from(t).ok()).unwrap_or(next);
        let Some(cmp) = jump_cmp(insn.op) else { return Flow::Next(next) };
        let dst = self.read_operand(st, pc, insn.dst);
        let src_is_reg = insn.op.form() == Form::JmpReg;
        let src = if src_is_reg {
            self.read_operand(st, pc, insn.src)
        } else {
            let v = if is32 { u64::from(insn.imm as u32) } else { insn.imm as u64 };
            Reg::scalar(Scalar::constant(v))
        };
        let both = |st: &State| Flow::Branch { fall: Some(st.clone()), next, taken: Some(st.clone()), target };

        if !dst.ty.is_pointer() && !src.ty.is_pointer() {
            let mut taken = None;
            let mut fall = None;
            for (want, slot) in [(cmp, &mut taken), (cmp.negate(), &mut fall)] {
                let (mut a, mut b) = (dst.val, src.val);
                if Scalar::refine(&mut a, &mut b, want, is32) {
                    let mut s = st.clone();
                    s.reg_mut(insn.dst).val = a;
                    Self::sync_linked(&mut s, dst.id, a);
                    if src_is_reg {
                        s.reg_mut(insn.src).val = b;
                        Self::sync_linked(&mut s, src.id, b);
                    }
                    *slot = Some(s);
                }
            }
            return Flow::Branch { fall, next, taken, target };
        }

        if is32 {
            // Privileged, the kernel allows it and learns nothing from it.
            if !self.allow_ptr_leaks() {
                self.fail(
                    st,
                    pc,
                    &[insn.dst, insn.src],
                    Diagnostic::new(Code::PointerComparison, Some(pc), "32-bit comparison involving a pointer")
                        .help("compare pointers with 64-bit jumps"),
                );
            }
            return both(st);
        }

        // A pointer against zero: a NULL check, or a comparison decided by the pointer's kind.
        if matches!(cmp, Cmp::Eq | Cmp::Ne) {
            let (ptr, other) = if dst.ty.is_pointer() { (dst, src) } else { (src, dst) };
            if other.is_scalar() && other.val.is_const(0) {
                let eq_branch_is_taken = cmp == Cmp::Eq;
                return match ptr.ty {
                    ty if ty.is_nullable() => {
                        let mut is_null = st.clone();
                        self.mark_null(&mut is_null, &ptr, true);
                        let mut not_null = st.clone();
                        self.mark_null(&mut not_null, &ptr, false);
                        if eq_branch_is_taken {
                            Flow::Branch { fall: Some(not_null), next, taken: Some(is_null), target }
                        } else {
                            Flow::Branch { fall: Some(is_null), next, taken: Some(not_null), target }
                        }
                    }
                    ty if !ty.known_not_null() => {
                        // The kernel decides `ptr == 0` only for the kinds its `reg_not_null`
                        // lists; for the stack, the context and packet pointers it explores both
                        // branches (a privileged loader), or refuses the comparison.
                        if !self.allow_ptr_leaks() {
                            let d = Diagnostic::new(
                                Code::PointerComparison,
                                Some(pc),
                                format!("comparing {} with zero would reveal an address", ty.describe()),
                            )
                            .help("the kernel does not treat this pointer as known non-NULL, so the comparison is refused without CAP_PERFMON; drop it, it cannot be NULL");
                            self.fail(st, pc, &[insn.dst], d);
                        }
                        both(st)
                    }
                    _ => {
                        // Map values, map handles, records and sockets are never NULL.
                        if eq_branch_is_taken {
                            Flow::Branch { fall: Some(st.clone()), next, taken: None, target }
                        } else {
                            Flow::Branch { fall: None, next, taken: Some(st.clone()), target }
                        }
                    }
                };
            }
        }

        // Packet pointers against the end of the packet (or metadata against the packet start).
        let is_end_for = |p: &Reg, e: &Reg| match p.ty {
            RegType::Packet => e.ty == RegType::PacketEnd,
            RegType::PacketMeta => e.ty == RegType::Packet && e.off == 0 && e.id == 0 && e.val.is_const(0),
            _ => false,
        };
        let pkt_pair = if is_end_for(&dst, &src) {
            Some((dst, cmp))
        } else if is_end_for(&src, &dst) {
            Some((src, cmp.swap()))
        } else {
            None
        };
        if let Some((pkt, cmp)) = pkt_pair {
            if !self.allow_ptr_leaks() && !matches!(cmp, Cmp::Gt | Cmp::Ge | Cmp::Lt | Cmp::Le) {
                // The kernel (`try_match_pkt_pointers`) learns from, and so allows an unprivileged
                // loader, only the four unsigned orderings of a packet pointer and its end.
                let d = Diagnostic::new(
                    Code::PointerComparison,
                    Some(pc),
                    "a packet pointer compared with its end other than by <, <=, > or >= would reveal an address",
                )
                .help("check packet bounds with `if (ptr + len > data_end)` (an unsigned ordering); or load with CAP_PERFMON (duet's default rules)");
                self.fail(st, pc, &[insn.dst, insn.src], d);
                return both(st);
            }
            return self.packet_compare(st, pc, pkt, cmp, next, target);
        }

        // Two pointers into the same memory may be compared by a privileged loader; the outcome
        // is not tracked. An unprivileged loader may compare no two pointers but a packet
        // pointer with its end (the kernel: "pointer comparison prohibited").
        let same_kind = dst.ty == src.ty
            || (dst.ty.is_packet() || dst.ty == RegType::PacketEnd)
                && (src.ty.is_packet() || src.ty == RegType::PacketEnd);
        if self.allow_ptr_leaks() && dst.ty.is_pointer() && src.ty.is_pointer() && same_kind && !dst.ty.is_nullable() {
            return both(st);
        }
        if self.allow_ptr_leaks() {
            // A privileged loader may compare any pointer with anything: both branches are
            // possible. A pointer that may be NULL found equal to one that never is (`if (v ==
            // other_v)` on two lookups, one checked) is not NULL in the equal branch, as the
            // kernel infers; it stays unchecked otherwise.
            let nullable = |r: &Reg| r.ty.is_nullable();
            // As the kernel (`reg_not_null`): only map values, map handles, records and sockets
            // count as not NULL here, not stack, context or packet pointers.
            let never_null = |r: &Reg| r.ty.known_not_null();
            let maybe = if nullable(&dst) && never_null(&src) {
                Some(insn.dst)
            } else if nullable(&src) && never_null(&dst) {
                Some(insn.src)
            } else {
                None
            };
            if let Some(r) = maybe
                && matches!(cmp, Cmp::Eq | Cmp::Ne)
            {
                let mut equal = st.clone();
                let reg = equal.reg_mut(r);
                reg.ty = self.non_null(reg.ty);
                reg.id = 0;
                return if cmp == Cmp::Eq {
                    Flow::Branch { fall: Some(st.clone()), next, taken: Some(equal), target }
                } else {
                    Flow::Branch { fall: Some(equal), next, taken: Some(st.clone()), target }
                };
            }
            return both(st);
        }
        let (p, pr) = if dst.ty.is_pointer() { (dst, insn.dst) } else { (src, insn.src) };
        let d = if p.ty.is_nullable() {
            Diagnostic::new(
                Code::PointerComparison,
                Some(pc),
                format!("R{pr} ({}) may be NULL and is compared with something other than zero", p.ty.name()),
            )
            .help("check the pointer against NULL (`== 0` / `!= 0`) first")
        } else {
            Diagnostic::new(
                Code::PointerComparison,
                Some(pc),
                format!("comparing {} with {} would reveal an address", dst.ty.describe(), src.ty.describe()),
            )
            .help(
                "compare pointers only with NULL or with pointers into the same memory (packet pointers with data_end)",
            )
        };
        self.fail(st, pc, &[insn.dst, insn.src], d);
        both(st)
    }

    /// `pkt cmp end` (already normalised so the packet pointer is on the left).
    fn packet_compare(&mut self, st: &State, pc: usize, pkt: Reg, cmp: Cmp, next: usize, target: usize) -> Flow {
        // Which branch learns `pkt <= end` (range = off) or `pkt < end` (range = off + 1). As in
        // the kernel (`try_match_pkt_pointers`), only the four ordering comparisons teach a
        // range; `==`/`!=` with data_end teach nothing.
        let (taken_range, fall_range) = match cmp {
            Cmp::Gt => (None, Some(0)),
            Cmp::Ge => (None, Some(1)),
            Cmp::Lt => (Some(1), None),
            Cmp::Le => (Some(0), None),
            _ => (None, None),
        };
        let off = i64::from(pkt.off);
        let usable = off >= 0 && pkt.val.umax.saturating_add(off as u64) <= MAX_PACKET_OFF && pkt.val.smin >= 0;
        // Both branches are explored even when an earlier check already decides this one: the
        // kernel does so too, so code behind a redundant check must be safe on its own.
        let make = |extra: Option<i64>| -> State {
            let mut s = st.clone();
            // As the kernel (`find_good_pkt_pointers`): `pkt < end` with no constant offset
            // (`if (p >= end) break; c = *p;`) proves nothing, not even one byte.
            if let Some(extra) = extra
                && usable
                && !(extra == 1 && off == 0)
            {
                let new_range = (off + extra) as u32;
                let (ty, id) = (pkt.ty, pkt.id);
                s.for_each_reg(|r| {
                    if r.ty == ty && r.id == id && r.range < new_range {
                        r.range = new_range;
                        r.range_pc = pc as u32;
                    }
                });
            }
            s
        };
        Flow::Branch { fall: Some(make(fall_range)), next, taken: Some(make(taken_range)), target }
    }

    /// Resolves a NULL check of `ptr` on one branch: every copy becomes NULL or a valid pointer.
    fn mark_null(&self, st: &mut State, ptr: &Reg, is_null: bool) {
        let id = ptr.id;
        if id == 0 {
            return;
        }
        let ref_id = ptr.ref_id;
        st.for_each_reg(|r| {
            if r.id == id && r.ty.is_nullable() {
                if is_null {
                    *r = Reg::scalar(Scalar::constant(0));
                } else {
                    r.ty = self.non_null(r.ty);
                    r.id = 0;
                }
            }
        });
        // Only the acquiring call's own result (id and reference the same) gives its reference
        // back when NULL: a pointer cast's NULL says nothing about the socket it came from.
        if is_null && ref_id != 0 && ref_id == id {
            st.refs.retain(|h| h.id != ref_id);
        }
    }

    /// What a pointer that may be NULL is once known not to be: a map value (or, for a map of
    /// maps, the inner map's handle), a record, a socket.
    fn non_null(&self, ty: RegType) -> RegType {
        match ty {
            RegType::MapValueOrNull { map } => self.non_null_lookup(map),
            RegType::RecordOrNull { size } => RegType::Record { size },
            RegType::SocketOrNull { common } => RegType::Socket { common },
            RegType::TcpSockOrNull => RegType::TcpSock,
            other => other,
        }
    }

    /// Gives every scalar with `id` the value `val` (copies of one value stay in step).
    fn sync_linked(st: &mut State, id: u32, val: Scalar) {
        if id == 0 {
            return;
        }
        st.for_each_reg(|r| {
            if r.ty == RegType::Scalar && r.id == id {
                r.val = val;
            }
        });
    }
}

fn jump_cmp(op: Op) -> Option<Cmp> {
    Some(match op {
        Op::JeqImm | Op::JeqReg | Op::Jeq32Imm | Op::Jeq32Reg => Cmp::Eq,
        Op::JneImm | Op::JneReg | Op::Jne32Imm | Op::Jne32Reg => Cmp::Ne,
        Op::JgtImm | Op::JgtReg | Op::Jgt32Imm | Op::Jgt32Reg => Cmp::Gt,
        Op::JgeImm | Op::JgeReg | Op::Jge32Imm | Op::Jge32Reg => Cmp::Ge,
        Op::JltImm | Op::JltReg | Op::Jlt32Imm | Op::Jlt32Reg => Cmp::Lt,
        Op::JleImm | Op::JleReg | Op::Jle32Imm | Op::Jle32Reg => Cmp::Le,
        Op::JsgtImm | Op::JsgtReg | Op::Jsgt32Imm | Op::Jsgt32Reg => Cmp::Sgt,
        Op::JsgeImm | Op::JsgeReg | Op::Jsge32Imm | Op::Jsge32Reg => Cmp::Sge,
        Op::JsltImm | Op::JsltReg | Op::Jslt32Imm | Op::Jslt32Reg => Cmp::Slt,
        Op::JsleImm | Op::JsleReg | Op::Jsle32Imm | Op::Jsle32Reg => Cmp::Sle,
        Op::JsetImm | Op::JsetReg | Op::Jset32Imm | Op::Jset32Reg => Cmp::Set,
        _ => return None,
    })
}
