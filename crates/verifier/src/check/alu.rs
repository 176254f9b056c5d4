//! ALU instructions: arithmetic on numbers (known bits and bounds), moves (with the ids that
//! keep copies of one number in step), byte swaps, and the pointer arithmetic the kernel allows.

use duet_isa::{Form, Insn, Op};

use super::Checker;
use crate::diag::{Code, Diagnostic};
use crate::scalar::{AluOp, Scalar};
use crate::state::{MAX_STACK, MAX_VAR_OFF, Reg, RegType, State};

impl Checker<'_> {
    pub(super) fn alu(&mut self, st: &mut State, pc: usize, insn: &Insn) {
        let class = insn.op.spec().code & 0x07;
        let alu32 = class == 0x04;
        let dst = insn.dst;
        match insn.op {
            Op::Le16
            | Op::Le32
            | Op::Le64
            | Op::Be16
            | Op::Be32
            | Op::Be64
            | Op::Bswap16
            | Op::Bswap32
            | Op::Bswap64 => {
                let reg = self.read_operand(st, pc, dst);
                if reg.ty.is_pointer() && !self.allow_ptr_leaks() {
                    self.fail(
                        st,
                        pc,
                        &[dst],
                        Diagnostic::new(
                            Code::PointerArithmetic,
                            Some(pc),
                            format!("byte swap of R{dst}, which is {}", reg.ty.describe()),
                        )
                        .help("byte order applies to numbers read from memory, not to pointers"),
                    );
                }
                let val = match insn.op {
                    Op::Le16 => reg.val.truncate(2),
                    Op::Le32 => reg.val.truncate(4),
                    Op::Le64 => reg.val,
                    Op::Be16 | Op::Bswap16 => reg.val.bswap(2),
                    Op::Be32 | Op::Bswap32 => reg.val.bswap(4),
                    _ => reg.val.bswap(8),
                };
                *st.reg_mut(dst) = Reg::scalar(if reg.ty.is_pointer() { Scalar::UNKNOWN } else { val });
            }
            Op::Neg | Op::Neg32 => {
                let reg = self.read_operand(st, pc, dst);
                if reg.ty.is_pointer() {
                    // Privileged, the kernel lets the address become a number.
                    if !self.allow_ptr_leaks() {
                        self.fail(st, pc, &[dst], Self::pointer_op_diag(pc, dst, &reg, "negation"));
                    }
                    *st.reg_mut(dst) = Reg::scalar(Scalar::UNKNOWN);
                    return;
                }
                *st.reg_mut(dst) = Reg::scalar(reg.val.neg(alu32));
            }
            Op::MovImm => *st.reg_mut(dst) = Reg::scalar(Scalar::constant(insn.imm as u64)),
            Op::Mov32Imm => *st.reg_mut(dst) = Reg::scalar(Scalar::constant(u64::from(insn.imm as u32))),
            Op::MovReg => {
                let mut src = self.read_operand(st, pc, insn.src);
                if src.is_scalar() && src.val.as_const().is_none() && src.id == 0 {
                    src.id = self.new_id();
                    st.reg_mut(insn.src).id = src.id;
                }
                *st.reg_mut(dst) = src;
            }
            Op::Mov32Reg | Op::MovSx8 | Op::MovSx16 | Op::MovSx32 | Op::MovSx8To32 | Op::MovSx16To32 => {
                let src = self.read_operand(st, pc, insn.src);
                if src.ty.is_pointer() && self.allow_ptr_leaks() {
                    // A privileged loader may copy part of an address: it becomes a number.
                    *st.reg_mut(dst) = Reg::scalar(Scalar::UNKNOWN);
                    return;
                }
                if src.ty.is_pointer() {
                    self.fail_unknown(
                        st,
                        pc,
                        &[insn.src],
                        dst,
                        Diagnostic::new(
                            Code::PointerLeak,
                            Some(pc),
                            format!(
                                "R{} is {}; copying part of it would turn an address into a number",
                                insn.src,
                                src.ty.describe()
                            ),
                        )
                        .help("use a 64-bit move (`r1 = r2`) for pointers"),
                    );
                    return;
                }
                let (val, width) = match insn.op {
                    Op::Mov32Reg => (src.val.zext32(), 32),
                    Op::MovSx8 => (src.val.sign_extend(1, false), 8),
                    Op::MovSx16 => (src.val.sign_extend(2, false), 16),
                    Op::MovSx32 => (src.val.sign_extend(4, false), 32),
                    Op::MovSx8To32 => (src.val.sign_extend(1, true), 8),
                    _ => (src.val.sign_extend(2, true), 16),
                };
                let mut copy = Reg::scalar(val);
                // As the kernel's scalar ids: when the source surely fits the copy's width (32
                // bits for `w3 = w2`, below the sign bit for a sign-extending move), the copy is
                // the same number, and a bound learned on either applies to both.
                let limit = if insn.op == Op::Mov32Reg { u64::from(u32::MAX) } else { (1u64 << (width - 1)) - 1 };
                if src.is_scalar() && src.val.umax <= limit && src.val.as_const().is_none() {
                    let id = if src.id == 0 { self.new_id() } else { src.id };
                    st.reg_mut(insn.src).id = id;
                    copy.id = id;
                }
                *st.reg_mut(dst) = copy;
            }
            op => {
                let Some(aop) = alu_op(op) else { return };
                let src = if insn.op.form() == Form::AluImm {
                    let v = if alu32 { u64::from(insn.imm as u32) } else { insn.imm as u64 };
                    Reg::scalar(Scalar::constant(v))
                } else {
                    self.read_operand(st, pc, insn.src)
                };
                let d = self.read_operand(st, pc, dst);
                if insn.op.form() == Form::AluImm
                    && matches!(aop, AluOp::Div | AluOp::Mod | AluOp::SDiv | AluOp::SMod)
                    && insn.imm == 0
                {
                    self.fail(
                        st,
                        pc,
                        &[],
                        Diagnostic::new(Code::DivisionByZero, Some(pc), "division by the constant zero")
                            .help("eBPF defines x / 0 as 0 and x % 0 as x at run time, but the kernel rejects a constant zero divisor as a certain bug"),
                    );
                }
                if insn.op.form() == Form::AluImm && matches!(aop, AluOp::Lsh | AluOp::Rsh | AluOp::Arsh) {
                    let bits = if alu32 { 32 } else { 64 };
                    if insn.imm < 0 || insn.imm >= bits {
                        self.fail(
                            st,
                            pc,
                            &[],
                            Diagnostic::new(
                                Code::BadShift,
                                Some(pc),
                                format!("shift by {} on a {bits}-bit value", insn.imm),
                            )
                            .help(format!(
                                "shift amounts must be in 0..{bits}; the kernel rejects larger constant shifts"
                            )),
                        );
                    }
                }
                match (d.ty.is_pointer(), src.ty.is_pointer()) {
                    (false, false) => {
                        let val = if kernel_tracks(aop, &src.val, alu32) {
                            d.val.alu(aop, &src.val, alu32)
                        } else {
                            Scalar::UNKNOWN
                        };
                        *st.reg_mut(dst) = Reg::scalar(val);
                    }
                    (true, false) if !alu32 && matches!(aop, AluOp::Add | AluOp::Sub) => {
                        self.ptr_arith(st, pc, insn, dst, d, src, aop == AluOp::Sub);
                    }
                    (false, true) if !alu32 && aop == AluOp::Add => {
                        self.ptr_arith(st, pc, insn, insn.src, src, d, false);
                    }
                    (true, true) if !alu32 && aop == AluOp::Sub => self.ptr_diff(st, pc, insn, d, src),
                    // The kernel lets a privileged loader subtract with 32-bit instructions
                    // whatever the operands are: the result is a meaningless number.
                    _ if alu32 && aop == AluOp::Sub && self.allow_ptr_leaks() => {
                        *st.reg_mut(dst) = Reg::scalar(Scalar::UNKNOWN);
                    }
                    _ => {
                        let (r, reg) = if d.ty.is_pointer() { (dst, d) } else { (insn.src, src) };
                        if alu32 {
                            self.fail_unknown(
                                st,
                                pc,
                                &[dst, insn.src],
                                dst,
                                Diagnostic::new(
                                    Code::PointerArithmetic,
                                    Some(pc),
                                    format!("32-bit arithmetic on R{r}, which is {}", reg.ty.describe()),
                                )
                                .help("pointer arithmetic must use 64-bit instructions; a 32-bit result would cut the address"),
                            );
                        } else {
                            self.fail_unknown(st, pc, &[r], dst, Self::pointer_op_diag(pc, r, &reg, op_name(aop)));
                        }
                    }
                }
            }
        }
    }

    /// The diagnostic for an operation `what` that pointers do not allow, on register `r`.
    fn pointer_op_diag(pc: usize, r: u8, reg: &Reg, what: &str) -> Diagnostic {
        if matches!(reg.ty, RegType::MapHandle { .. }) {
            Diagnostic::new(
                Code::PointerArithmetic,
                Some(pc),
                format!("{what} on R{r}, a map handle: map handles are not memory and cannot be changed"),
            )
            .help("pass the handle unchanged to a helper; to reach a value, call bpf_map_lookup_elem and check the result for NULL")
        } else {
            Diagnostic::new(Code::PointerArithmetic, Some(pc), format!("{what} on R{r}, which is {}", reg.ty.describe()))
                .help("pointers allow only adding or subtracting a number (and subtracting two pointers into the same memory)")
        }
    }

    #[allow(clippy::too_many_arguments, reason = "one call site per operand order")]
    fn ptr_arith(&mut self, st: &mut State, pc: usize, insn: &Insn, ptr_r: u8, ptr: Reg, s: Reg, sub: bool) {
        let dst = insn.dst;
        if sub && matches!(ptr.ty, RegType::Stack { .. }) {
            // The kernel refuses every subtraction from a stack pointer, constant or not
            // (`r1 -= 8`), because JITs may not handle it; adding a negative number is the
            // accepted spelling.
            let d = Diagnostic::new(
                Code::PointerArithmetic,
                Some(pc),
                format!(
                    "subtraction from R{ptr_r}, a stack pointer: the kernel prohibits subtracting from stack pointers"
                ),
            )
            .help("add a negative offset instead: `r1 = r10; r1 += -8` (what compilers emit), not `r1 -= 8`");
            self.fail_unknown(st, pc, &[ptr_r], dst, d);
            return;
        }
        let forbidden = match ptr.ty {
            RegType::MapHandle { .. } | RegType::Func { .. } => !s.val.is_const(0) || sub,
            ty if ty.is_nullable() => {
                self.fail_unknown(
                    st,
                    pc,
                    &[ptr_r],
                    dst,
                    Diagnostic::new(
                        Code::NullCheck,
                        Some(pc),
                        format!("arithmetic on R{ptr_r}, which may be NULL ({})", ptr.ty.name()),
                    )
                    .help("check the lookup result against NULL (`if (!value) return ...;`) before offsetting it"),
                );
                return;
            }
            // The kernel prohibits any arithmetic on a socket pointer, even adding zero.
            RegType::PacketEnd | RegType::Socket { .. } | RegType::TcpSock | RegType::XdpSock => true,
            _ => false,
        };
        if forbidden {
            let d = Self::pointer_op_diag(pc, ptr_r, &ptr, if sub { "subtraction" } else { "addition" });
            self.fail_unknown(st, pc, &[ptr_r], dst, d);
            return;
        }
        if s.val.as_const().is_none() && (s.val.smin <= -MAX_VAR_OFF || s.val.smin == i64::MIN) {
            self.fail_unknown(
                st,
                pc,
                &[dst, insn.src],
                dst,
                Diagnostic::new(
                    Code::PointerArithmetic,
                    Some(pc),
                    format!("adding a number with no lower bound to {}", ptr.ty.describe()),
                )
                .help(
                    "bound the offset first, e.g. `if (off > MAX) return ...;` with an unsigned type, or `off &= MASK`",
                ),
            );
            return;
        }
        if !self.allow_ptr_leaks() && insn.op.form() == Form::AluReg {
            let off_r = if ptr_r == dst { insn.src } else { dst };
            if let Some(d) = Self::unprivileged_offset_register(pc, ptr_r, &ptr, off_r, &s) {
                self.fail_unknown(st, pc, &[ptr_r, off_r], dst, d);
                return;
            }
        }
        let mut out = ptr;
        if let Some(c) = s.val.as_const() {
            let c = c as i64;
            let new_off = if sub { i64::from(ptr.off).checked_sub(c) } else { i64::from(ptr.off).checked_add(c) };
            match new_off {
                Some(off) if c.unsigned_abs() < MAX_VAR_OFF as u64 && off.unsigned_abs() < MAX_VAR_OFF as u64 => {
                    out.off = off as i32;
                }
                _ => {
                    self.fail_unknown(
                        st,
                        pc,
                        &[dst, insn.src],
                        dst,
                        Diagnostic::new(
                            Code::PointerArithmetic,
                            Some(pc),
                            format!("adding {c} moves {} far out of any memory", ptr.ty.describe()),
                        )
                        .help("pointer offsets must stay within 2^29 of the pointer's base"),
                    );
                    return;
                }
            }
        } else {
            out.val = ptr.val.alu(if sub { AluOp::Sub } else { AluOp::Add }, &s.val, false);
            if ptr.ty.is_packet() {
                out.id = self.new_id();
                out.range = 0;
                out.range_pc = u32::MAX;
            }
        }
        if !self.allow_ptr_leaks()
            && let Some(d) = self.unprivileged_result(pc, dst, &out)
        {
            self.fail_unknown(st, pc, &[dst], dst, d);
            return;
        }
        if !self.allow_ptr_leaks() && insn.op.form() == Form::AluReg {
            let off_r = if ptr_r == dst { insn.src } else { dst };
            if let Some(d) = self.sanitation_paths(pc, sub, (ptr_r, &ptr), (off_r, &s.val), dst, &out) {
                self.fail_unknown(st, pc, &[ptr_r, off_r], dst, d);
                return;
            }
        }
        *st.reg_mut(dst) = out;
    }

    /// The kernel's masking of `ptr += reg` against speculation, without CAP_PERFMON
    /// (`sanitize_ptr_alu`): the instruction is patched once, with one masking state (the
    /// offset's sign, whether it is a known number, which operand is the pointer) and one limit
    /// (how far the pointer moves toward the masked side), so every path reaching it must agree
    /// on both. A path that disagrees with an earlier one is refused ("from different maps,
    /// paths or scalars").
    fn sanitation_paths(
        &mut self,
        pc: usize,
        sub: bool,
        (ptr_r, ptr): (u8, &Reg),
        (off_r, off): (u8, &Scalar),
        dst: u8,
        out: &Reg,
    ) -> Option<Diagnostic> {
        let negative = off.smin < 0;
        let mask_to_left = if sub { !negative } else { negative };
        // How far below (masking to the left) or above the pointer may go, as the kernel's
        // `retrieve_ptr_limit` measures it (u32 arithmetic).
        let limit = |r: &Reg| -> u32 {
            match r.ty {
                RegType::Stack { .. } => (r.val.var.value as i64).wrapping_add(i64::from(r.off)).wrapping_neg() as u32,
                _ => {
                    let base = if mask_to_left { r.val.smin } else { r.val.umax as i64 };
                    base.wrapping_add(i64::from(r.off)) as u32
                }
            }
        };
        let moved = (i64::from(limit(ptr)) - i64::from(limit(out))).unsigned_abs() as u32;
        let state = u8::from(negative) | u8::from(off.as_const().is_some()) << 1 | u8::from(ptr_r == dst) << 2;
        if off.as_const().is_none() {
            self.explore_alu_limits = true;
        }
        let slot = self.alu_sanitation.get_mut(pc)?;
        match *slot {
            None => {
                *slot = Some((state, moved));
                None
            }
            Some(seen) if seen == (state, moved) => None,
            Some(_) => Some(
                Diagnostic::new(
                    Code::PointerArithmetic,
                    Some(pc),
                    format!(
                        "R{dst} tried to {} from different maps, paths or scalars: another path reached this instruction with R{ptr_r} ({}) and R{off_r} ({off}) masking differently, which the kernel prohibits for an unprivileged loader",
                        if sub { "sub" } else { "add" },
                        ptr.ty.describe()
                    ),
                )
                .help("give the offset the same sign and bounds (and the pointer the same offset) on every path to this instruction, e.g. by doing the arithmetic in each branch; or load with CAP_PERFMON (duet's default rules)"),
            ),
        }
    }

    /// The kernel's rule, without CAP_PERFMON, for adding a register `off_r` (holding `off`) to
    /// pointer `ptr` in `ptr_r`: it must mask the offset against speculative execution, which it
    /// can only do for stack and map value pointers and for offsets of one sign. Other pointers
    /// (packet, context, records) may only move by constants in the instruction, even when the
    /// register holds a known constant.
    fn unprivileged_offset_register(pc: usize, ptr_r: u8, ptr: &Reg, off_r: u8, off: &Reg) -> Option<Diagnostic> {
        if off.val.as_const().is_none() && (off.val.smin < 0) != (off.val.smax < 0) {
            return Some(
                Diagnostic::new(
                    Code::PointerArithmetic,
                    Some(pc),
                    format!(
                        "R{off_r} may be negative or positive ({}..={}): adding it to {} is prohibited for an unprivileged loader",
                        off.val.smin,
                        off.val.smax,
                        ptr.ty.describe()
                    ),
                )
                .help("bound the offset to one sign first, e.g. with an unsigned type and `if (off > MAX) return ...;`, or `off &= MASK`"),
            );
        }
        if matches!(ptr.ty, RegType::Stack { .. } | RegType::MapValue { .. }) {
            return None;
        }
        Some(
            Diagnostic::new(
                Code::PointerArithmetic,
                Some(pc),
                format!(
                    "adding register R{off_r} to R{ptr_r}, which is {}: an unprivileged loader may add registers only to stack and map value pointers",
                    ptr.ty.describe()
                ),
            )
            .help("without CAP_PERFMON the kernel refuses `ptr += reg` on packet and context pointers, even when the register holds a known number; use constant offsets (`r2 += 14`), or load with CAP_PERFMON (duet's default rules)"),
        )
    }

    /// The kernel's rule, without CAP_PERFMON, for the result `out` of pointer arithmetic: a
    /// stack pointer stays at a constant offset inside the frame, and a map value pointer
    /// inside the value, so that every later access can be masked.
    fn unprivileged_result(&self, pc: usize, dst: u8, out: &Reg) -> Option<Diagnostic> {
        match out.ty {
            RegType::Stack { .. } => {
                let Some(var) = out.val.as_const() else {
                    return Some(
                        Diagnostic::new(
                            Code::PointerArithmetic,
                            Some(pc),
                            format!(
                                "R{dst} would be a stack pointer with a variable offset ({}..={}), which the kernel prohibits for an unprivileged loader",
                                i64::from(out.off).saturating_add(out.val.smin),
                                i64::from(out.off).saturating_add(out.val.smax)
                            ),
                        )
                        .help("index a map value (bpf_map_lookup_elem on an array) instead of the stack, or load with CAP_PERFMON (duet's default rules)"),
                    );
                };
                let off = i64::from(out.off).wrapping_add(var as i64);
                (!(-MAX_STACK..0).contains(&off)).then(|| {
                    Diagnostic::new(
                        Code::PointerArithmetic,
                        Some(pc),
                        format!(
                            "R{dst} would point at stack offset {off}, outside the frame ({}..=-1), which the kernel prohibits for an unprivileged loader",
                            -MAX_STACK
                        ),
                    )
                    .help("keep stack pointers inside the frame: r10 plus an offset in -512..=-1")
                })
            }
            RegType::MapValue { map } => {
                let info = self.maps.get(map as usize)?;
                let lo = i64::from(out.off).saturating_add(out.val.smin);
                let hi = if out.val.umax >= MAX_VAR_OFF as u64 {
                    i64::MAX
                } else {
                    i64::from(out.off).saturating_add(out.val.umax as i64)
                };
                (lo < 0 || hi >= i64::from(info.value_size)).then(|| {
                    let range = if hi == i64::MAX { format!("from {lo}, unbounded") } else { format!("{lo}..={hi}") };
                    Diagnostic::new(
                        Code::PointerArithmetic,
                        Some(pc),
                        format!(
                            "R{dst} would point outside the map `{}` value ({range} of {} bytes), which the kernel prohibits for an unprivileged loader",
                            info.name, info.value_size
                        ),
                    )
                    .help("bound the index so that the pointer stays inside the value (`idx &= SIZE - 1`, or `if (idx >= SIZE) return ...;`) before adding it")
                })
            }
            _ => None,
        }
    }

    fn ptr_diff(&mut self, st: &mut State, pc: usize, insn: &Insn, a: Reg, b: Reg) {
        let same_region = match (a.ty, b.ty) {
            (x, y) if x == y => true,
            (x, y) => {
                let pkt = |t: RegType| matches!(t, RegType::Packet | RegType::PacketEnd | RegType::PacketMeta);
                pkt(x) && pkt(y)
            }
        };
        let ok = same_region
            && !matches!(
                a.ty,
                RegType::MapHandle { .. }
                    | RegType::MapValueOrNull { .. }
                    | RegType::RecordOrNull { .. }
                    | RegType::SocketOrNull { .. }
                    | RegType::Ctx
            );
        if !ok && self.allow_ptr_leaks() {
            // Privileged, any two pointers may be subtracted; the difference is a number.
            *st.reg_mut(insn.dst) = Reg::scalar(Scalar::UNKNOWN);
            return;
        }
        if !self.allow_ptr_leaks() {
            // Without CAP_PERFMON the kernel refuses every pointer subtraction, even of two
            // pointers into the same packet ("pointer -= pointer prohibited").
            let d = if ok {
                Diagnostic::new(
                    Code::PointerLeak,
                    Some(pc),
                    format!(
                        "subtracting {} from {}: pointer -= pointer is prohibited for an unprivileged loader",
                        b.ty.describe(),
                        a.ty.describe()
                    ),
                )
                .help("keep offsets as numbers and compare pointers instead, or load with CAP_PERFMON (duet's default rules)")
            } else {
                Diagnostic::new(
                    Code::PointerLeak,
                    Some(pc),
                    format!(
                        "subtracting {} from {} gives a number that reveals addresses",
                        b.ty.describe(),
                        a.ty.describe()
                    ),
                )
                .help("subtract only pointers into the same memory (two packet pointers, two stack pointers), and only as a privileged loader")
            };
            self.fail_unknown(st, pc, &[insn.dst, insn.src], insn.dst, d);
            return;
        }
        let exact = a.ty == b.ty
            && a.val.as_const().is_some()
            && b.val.as_const().is_some()
            && (matches!(a.ty, RegType::Stack { .. }) || (a.ty.is_packet() && a.id == b.id));
        let val = if exact {
            let d = (i64::from(a.off) + a.val.var.value as i64) - (i64::from(b.off) + b.val.var.value as i64);
            Scalar::constant(d as u64)
        } else {
            Scalar::UNKNOWN
        };
        *st.reg_mut(insn.dst) = Reg::scalar(val);
    }
}

fn alu_op(op: Op) -> Option<AluOp> {
    Some(match op {
        Op::AddImm | Op::AddReg | Op::Add32Imm | Op::Add32Reg => AluOp::Add,
        Op::SubImm | Op::SubReg | Op::Sub32Imm | Op::Sub32Reg => AluOp::Sub,
        Op::MulImm | Op::MulReg | Op::Mul32Imm | Op::Mul32Reg => AluOp::Mul,
        Op::DivImm | Op::DivReg | Op::Div32Imm | Op::Div32Reg => AluOp::Div,
        Op::SDivImm | Op::SDivReg | Op::SDiv32Imm | Op::SDiv32Reg => AluOp::SDiv,
        Op::ModImm | Op::ModReg | Op::Mod32Imm | Op::Mod32Reg => AluOp::Mod,
        Op::SModImm | Op::SModReg | Op::SMod32Imm | Op::SMod32Reg => AluOp::SMod,
        Op::OrImm | Op::OrReg | Op::Or32Imm | Op::Or32Reg => AluOp::Or,
        Op::AndImm | Op::AndReg | Op::And32Imm | Op::And32Reg => AluOp::And,
        Op::XorImm | Op::XorReg | Op::Xor32Imm | Op::Xor32Reg => AluOp::Xor,
        Op::LshImm | Op::LshReg | Op::Lsh32Imm | Op::Lsh32Reg => AluOp::Lsh,
        Op::RshImm | Op::RshReg | Op::Rsh32Imm | Op::Rsh32Reg => AluOp::Rsh,
        Op::ArshImm | Op::ArshReg | Op::Arsh32Imm | Op::Arsh32Reg => AluOp::Arsh,
        _ => return None,
    })
}

fn op_name(op: AluOp) -> &'static str {
    match op {
        AluOp::Add => "addition",
        AluOp::Sub => "subtraction",
        AluOp::Mul => "multiplication",
        AluOp::Div | AluOp::SDiv => "division",
        AluOp::Mod | AluOp::SMod => "modulo",
        AluOp::Or => "bitwise or",
        AluOp::And => "bitwise and",
        AluOp::Xor => "bitwise xor",
        AluOp::Lsh => "left shift",
        AluOp::Rsh => "right shift",
        AluOp::Arsh => "arithmetic right shift",
    }
}

/// Whether the kernel computes the range of a number operation's result (its
/// `is_safe_to_compute_dst_reg_range`): for add, sub, mul, and, or and xor, and for shifts by a
/// constant below the width. Any other result (a division, a modulo, a shift by a register) is
/// an unknown 64-bit number to the kernel, even of constants and even of a 32-bit instruction.
/// duet keeps the same imprecision, so that it explores the paths the kernel explores (and
/// refuses what it finds there, as the kernel does).
fn kernel_tracks(op: AluOp, src: &Scalar, alu32: bool) -> bool {
    match op {
        AluOp::Add | AluOp::Sub | AluOp::Mul | AluOp::And | AluOp::Or | AluOp::Xor => true,
        AluOp::Lsh | AluOp::Rsh | AluOp::Arsh => {
            let bits = if alu32 { 32 } else { 64 };
            src.as_const().is_some_and(|c| c < bits)
        }
        AluOp::Div | AluOp::SDiv | AluOp::Mod | AluOp::SMod => false,
    }
}
