//! Random XDP programs shared by the differential targets (`jit_diff`, `verify_kernel`): a
//! packet-bounds prologue and an array map value in r6, then random ALU, memory, atomic,
//! forward-jump instructions and well-formed helper calls from the opcode table; optionally a
//! `bpf_loop` call whose callback is a random subprogram appended after the main program.

use arbitrary::Arbitrary;
use duet_isa::{Form, Insn, Op};
use duet_object::{MapDef, MapOrigin};

/// The maps the programs use: `hash` (map 0) and `array` (map 1), 4-byte keys, 8-byte values.
pub fn maps() -> Vec<MapDef> {
    let def = |name: &str, map_type, key_size, value_size, max_entries| MapDef {
        name: name.into(),
        map_type,
        key_size,
        value_size,
        max_entries,
        flags: 0,
        initial_data: None,
        origin: MapOrigin::BtfMaps,
        key_type: None,
        value_type: None,
        inner: None,
    };
    vec![def("hash", 1, 4, 8, 16), def("array", 2, 4, 8, 4)]
}

/// A well-formed helper call the JIT may compile directly (map lookup, update and delete on the
/// hash or the array map with a key on the stack, the clock, the generator, the CPU), chosen by
/// `sel`; it leaves a number in r0 and clobbers r1..r5 as every call does.
pub fn helper_call(sel: i16) -> Vec<Insn> {
    let insn = |op, dst, src, off, imm| Insn { op, dst, src, off, imm };
    let (kind, map, key) = (sel & 7, i64::from((sel >> 3) & 1), i64::from((sel >> 4) & 7));
    let key_setup = [
        insn(Op::StW, 10, 0, -8, key),
        insn(Op::LdImm64, 1, 1, 0, map),
        insn(Op::MovReg, 2, 10, 0, 0),
        insn(Op::AddImm, 2, 0, 0, -8),
    ];
    match kind {
        0 | 1 => {
            // r0 = lookup(map, &key); r0 = r0 ? *(u64 *)r0 : 0
            let mut v = key_setup.to_vec();
            v.extend([insn(Op::Call, 0, 0, 0, 1), insn(Op::JeqImm, 0, 0, 1, 0), insn(Op::LdxDw, 0, 0, 0, 0)]);
            v
        }
        2 | 3 => {
            // update(map, &key, &value, flags 0..=2)
            let mut v = vec![insn(Op::StDw, 10, 0, -16, i64::from(sel >> 7))];
            v.extend(key_setup);
            v.extend([
                insn(Op::MovReg, 3, 10, 0, 0),
                insn(Op::AddImm, 3, 0, 0, -16),
                insn(Op::MovImm, 4, 0, 0, i64::from(sel.rem_euclid(3))),
                insn(Op::Call, 0, 0, 0, 2),
            ]);
            v
        }
        4 => {
            let mut v = key_setup.to_vec();
            v.push(insn(Op::Call, 0, 0, 0, 3));
            v
        }
        5 => vec![insn(Op::Call, 0, 0, 0, 5)],
        6 => vec![insn(Op::Call, 0, 0, 0, 7)],
        _ => vec![insn(Op::Call, 0, 0, 0, 8)],
    }
}

/// `insn` with the discriminating field of `spec` set and the fields its form does not use
/// zeroed, as `Program::from_insns` requires.
pub fn canonical(spec: &duet_isa::OpSpec, mut i: Insn) -> Insn {
    let (dst, src, off, imm) = match spec.form {
        Form::AluReg => (true, true, false, false),
        Form::AluImm => (true, false, false, true),
        Form::Unary | Form::Endian => (true, false, false, false),
        Form::JmpReg => (true, true, true, false),
        Form::JmpImm => (true, false, true, true),
        Form::Ja => (false, false, true, false),
        Form::Ja32 | Form::CallHelper | Form::CallLocal | Form::CallKfunc | Form::LdAbs => (false, false, false, true),
        Form::CallReg => (true, false, false, false),
        Form::Exit => (false, false, false, false),
        Form::LdImm64 => (true, true, false, true),
        Form::Ldx => (true, true, true, false),
        Form::LdInd => (false, true, false, true),
        Form::St => (true, false, true, true),
        Form::Stx | Form::Atomic => (true, true, true, false),
    };
    if !dst {
        i.dst = 0;
    }
    if !src {
        i.src = 0;
    }
    if !off {
        i.off = 0;
    }
    if !imm {
        i.imm = 0;
    }
    match spec.disc {
        duet_isa::table::Disc::Off(o) => i.off = o,
        duet_isa::table::Disc::Imm(v) => i.imm = i64::from(v),
        duet_isa::table::Disc::Src(s) => i.src = s,
        duet_isa::table::Disc::None => {}
    }
    i
}

/// `r9 = ctx; r2 = data; r3 = data_end; if r2 + 14 > r3 goto out; r6 = array value or out`
/// (and the packet pointers reloaded), then the body (forward jumps only), then `r0 = 2; exit`.
///
/// With `loop_count`, the body is in a bounded loop of 1 to 4 iterations: `r8 = count; body;
/// r8 -= 1; if r8 != 0 goto body`. The body's uses of r8 become r7, so only the loop control
/// writes the counter (as a counter kept in a callee-saved register is), and every program still
/// terminates; the verifier has to follow the loop, with its states, spills and Spectre rules,
/// to its bound.
///
/// With `callback`, the program also calls `bpf_loop` (see [`LoopCall`]) with a callback
/// subprogram appended after the main program's `exit`.
pub fn structured_with(
    body: &[(u8, u8, u8, i8, i16)],
    loop_count: Option<u8>,
    callback: Option<&LoopCall>,
) -> Vec<Insn> {
    let insn = |op, dst, src, off, imm| Insn { op, dst, src, off, imm };
    let mut body_insns = Vec::new();
    let n = body.len().min(48);
    for (k, &(row, dst, src, off, imm)) in body.iter().take(n).enumerate() {
        let spec = &duet_isa::OPS[row as usize % duet_isa::OPS.len()];
        let mut i = canonical(spec, insn(spec.op, dst % 10, src % 11, i16::from(off), i64::from(imm)));
        if i.op == Op::Call {
            body_insns.extend(helper_call(imm));
            continue;
        }
        if matches!(i.op, Op::Exit | Op::LdImm64 | Op::CallReg | Op::CallKfunc | Op::CallLocal | Op::Ja32) {
            continue;
        }
        if i.op.is_branch() {
            // Forward, inside the body (to its end at most).
            let left = (n - k) as i16;
            i.off = (i.off.rem_euclid(left.max(1))).max(0);
        }
        body_insns.push(i);
    }
    // Jumps were computed against the unfiltered body; clamp them to the filtered one.
    let len = body_insns.len();
    for (k, i) in body_insns.iter_mut().enumerate() {
        if i.op.is_branch() {
            i.off = i.off.min((len - k - 1) as i16);
        }
        if loop_count.is_some() {
            if i.dst == 8 {
                i.dst = 7;
            }
            if i.src == 8 {
                i.src = 7;
            }
        }
    }
    let mut out = vec![
        insn(Op::MovReg, 9, 1, 0, 0),
        insn(Op::LdxW, 2, 9, 0, 0),
        insn(Op::LdxW, 3, 9, 4, 0),
        insn(Op::MovReg, 4, 2, 0, 0),
        insn(Op::AddImm, 4, 0, 0, 14),
        insn(Op::JgtReg, 4, 3, 0, 0), // 5: patched below
        // r6 = lookup(array, &0): a map value pointer for the body to use.
        insn(Op::StW, 10, 0, -4, 0),
        insn(Op::LdImm64, 1, 1, 0, 1),
        insn(Op::MovReg, 2, 10, 0, 0),
        insn(Op::AddImm, 2, 0, 0, -4),
        insn(Op::Call, 0, 0, 0, 1),
        insn(Op::JeqImm, 0, 0, 0, 0), // 11: patched below
        insn(Op::MovReg, 6, 0, 0, 0),
        // The call clobbered r1..r5: reload the packet pointers.
        insn(Op::LdxW, 2, 9, 0, 0),
        insn(Op::LdxW, 3, 9, 4, 0),
        insn(Op::MovReg, 4, 2, 0, 0),
        insn(Op::AddImm, 4, 0, 0, 14),
        insn(Op::JgtReg, 4, 3, 0, 0), // 17: patched below
    ];
    // The prologue's exits (patched to `r0 = 2` below).
    let mut exits = vec![5, 11, 17];
    let mut lddw_func = None;
    let before = callback.filter(|c| c.place & 1 == 0);
    if let Some(c) = before {
        lddw_func = Some(out.len() + c.call_prefix_len());
        out.extend(c.call_site());
        // bpf_loop clobbered r1..r5: reload and check the packet pointers again.
        out.extend([
            insn(Op::LdxW, 2, 9, 0, 0),
            insn(Op::LdxW, 3, 9, 4, 0),
            insn(Op::MovReg, 4, 2, 0, 0),
            insn(Op::AddImm, 4, 0, 0, 14),
        ]);
        exits.push(out.len());
        out.push(insn(Op::JgtReg, 4, 3, 0, 0));
    }
    let loop_start = out.len() + usize::from(loop_count.is_some());
    if let Some(count) = loop_count {
        out.push(insn(Op::MovImm, 8, 0, 0, i64::from(count % 4) + 1));
    }
    out.extend(body_insns);
    let mut back = None;
    if loop_count.is_some() {
        out.push(insn(Op::AddImm, 8, 0, 0, -1));
        back = Some(out.len());
        out.push(insn(Op::JneImm, 8, 0, 0, 0)); // patched below
    }
    if let Some(c) = callback.filter(|c| c.place & 1 != 0) {
        lddw_func = Some(out.len() + c.call_prefix_len());
        out.extend(c.call_site());
    }
    out.push(insn(Op::MovImm, 0, 0, 0, 2));
    out.push(insn(Op::Exit, 0, 0, 0, 0));
    // Every prologue exit lands on `r0 = 2`. Slots: the lddw takes two.
    let slot_of = |idx: usize, out: &[Insn]| out[..idx].iter().map(Insn::slots).sum::<usize>();
    let target = slot_of(out.len() - 2, &out);
    for idx in exits {
        let at = slot_of(idx, &out);
        out[idx].off = (target - at - 1) as i16;
    }
    if let Some(back) = back {
        // The back edge: from the `if r8 != 0` to the body's first slot.
        let (from, to) = (slot_of(back, &out), slot_of(loop_start, &out));
        out[back].off = to as i16 - from as i16 - 1;
    }
    if let (Some(c), Some(at)) = (callback, lddw_func) {
        // `lddw r2, func`: the callback's first slot, relative to the slot after the lddw's first.
        let start = slot_of(out.len(), &out);
        out[at].imm = (start - slot_of(at, &out) - 1) as i64;
        out.extend(c.callback());
    }
    out
}

/// A `bpf_loop(count, callback, &area, flags)` call and its callback, from fuzzer bytes.
///
/// The caller initialises an area of 1 to 4 u64 on its stack (at `r10 - 64`), passes its
/// address as the callback's context, and afterwards folds the result and the area into the
/// array map value (r6), so a difference in calls, results or stores shows in the maps.
/// The callback (r1 = index, r2 = ctx) keeps ctx in r6 and the index in r8, sets r0, r3..r5,
/// then runs random ALU instructions on r0, r1, r3, r4, r5, r7 (r7 = r1 at entry), loads,
/// stores and atomics through r6 inside the area, forward jumps and well-formed helper calls,
/// and returns 0 or 1 (rarely something else, which both verifiers must refuse).
#[derive(Arbitrary, Clone, Debug)]
pub struct LoopCall {
    /// Bit 0: the call is placed after the body (else before it, with the packet pointers
    /// reloaded afterwards); bits 1..: the area's size in u64 (1 to 4).
    pub place: u8,
    /// How r1 (the count) is set; see [`LoopCall::call_site`].
    pub count: u8,
    /// How r4 (the flags) is set: mostly 0.
    pub flags: u8,
    /// The area's initial values.
    pub init: [i32; 4],
    /// How the callback sets r0 before `exit`.
    pub ret: u8,
    /// The callback's random instructions (as the main body's tuples).
    pub body: Vec<(u8, u8, u8, i8, i16)>,
}

/// Whether callbacks start with `w1 = w1` (`DUET_FUZZ_CALLBACK_INDEX32=1`): the kernel gives a
/// bpf_loop callback's index (r1) as a 64-bit unknown, duet's verifier as a 32-bit one, and
/// `verify_kernel` finds that difference at once (README, finding 9); narrowing the index for
/// both verifiers lets a run look past it.
fn narrow_index() -> bool {
    static NARROW: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *NARROW.get_or_init(|| std::env::var("DUET_FUZZ_CALLBACK_INDEX32").is_ok_and(|v| v == "1"))
}

/// The stack area the callback's context points to: `r10 - AREA` in the caller's frame.
const AREA: i16 = 64;

impl LoopCall {
    fn area_words(&self) -> usize {
        usize::from((self.place >> 1) % 4) + 1
    }

    /// How many instructions of [`LoopCall::call_site`] come before its `lddw r2, func`.
    fn call_prefix_len(&self) -> usize {
        self.area_words() + self.count_insns().len()
    }

    fn count_insns(&self) -> Vec<Insn> {
        let insn = |op, dst, src, off, imm| Insn { op, dst, src, off, imm };
        let small = i64::from((self.count >> 3) % 8);
        match self.count % 10 {
            // A small constant.
            0..=3 => vec![insn(Op::MovImm, 1, 0, 0, small)],
            // From the map value, masked: the verifier does not know it.
            4 => vec![insn(Op::LdxDw, 1, 6, 0, 0), insn(Op::AndImm, 1, 0, 0, 7)],
            5 => vec![insn(Op::LdxW, 1, 6, 0, 0), insn(Op::AndImm, 1, 0, 0, 0x3f)],
            // High bits set: the helper counts the low 32 bits, the kernel's inlined loop all 64
            // (and answers a 32-bit -E2BIG).
            6 => vec![insn(Op::LdImm64, 1, 0, 0, (1 << 32) | small)],
            // Over BPF_MAX_LOOPS: -E2BIG and no call.
            7 => vec![insn(Op::MovImm, 1, 0, 0, (1 << 23) + 1)],
            8 => vec![insn(Op::MovImm, 1, 0, 0, -1)],
            // A 32-bit move: the upper half zero.
            _ => vec![insn(Op::Mov32Imm, 1, 0, 0, small)],
        }
    }

    fn flags_insns(&self) -> Vec<Insn> {
        let insn = |op, dst, src, off, imm| Insn { op, dst, src, off, imm };
        match self.flags % 12 {
            // Unknown to the verifier (the helper's path), 0 or 1 at run time.
            8 => vec![insn(Op::LdxDw, 4, 6, 0, 0), insn(Op::AndImm, 4, 0, 0, 1)],
            // Unknown to the verifier, 0 at run time unless the body wrote the value.
            9 => vec![insn(Op::LdxDw, 4, 6, 0, 0), insn(Op::AndImm, 4, 0, 0, 0x100)],
            // Known to be 0 only through the bits the verifier tracks.
            10 => vec![insn(Op::LdxW, 4, 6, 0, 0), insn(Op::RshImm, 4, 0, 0, 40)],
            // Nonzero: -EINVAL.
            11 => vec![insn(Op::MovImm, 4, 0, 0, i64::from(self.flags >> 4) + 1)],
            _ => vec![insn(Op::MovImm, 4, 0, 0, 0)],
        }
    }

    /// The caller's side: initialise the area, set r1..r4 (r2 patched later), call bpf_loop,
    /// then `*(u64 *)(r6 + 0) = fold(r0, area)`. Leaves r1..r5 clobbered and r0 a number.
    fn call_site(&self) -> Vec<Insn> {
        let insn = |op, dst, src, off, imm| Insn { op, dst, src, off, imm };
        let words = self.area_words();
        let mut v = Vec::new();
        for (j, &value) in self.init.iter().take(words).enumerate() {
            v.push(insn(Op::StDw, 10, 0, -AREA + 8 * j as i16, i64::from(value)));
        }
        v.extend(self.count_insns());
        v.push(insn(Op::LdImm64, 2, 4, 0, 0)); // lddw r2, func: imm patched
        v.push(insn(Op::MovReg, 3, 10, 0, 0));
        v.push(insn(Op::AddImm, 3, 0, 0, -i64::from(AREA)));
        v.extend(self.flags_insns());
        v.push(insn(Op::Call, 0, 0, 0, 181));
        v.push(insn(Op::MovReg, 1, 0, 0, 0));
        for j in 0..words {
            v.push(insn(Op::MulImm, 1, 0, 0, 33));
            v.push(insn(Op::LdxDw, 2, 10, -AREA + 8 * j as i16, 0));
            v.push(insn(Op::XorReg, 1, 2, 0, 0));
        }
        v.push(insn(Op::StxDw, 6, 1, 0, 0));
        v
    }

    /// The callback subprogram.
    fn callback(&self) -> Vec<Insn> {
        let insn = |op, dst, src, off, imm| Insn { op, dst, src, off, imm };
        // Registers the random instructions use: all initialised at entry and after calls.
        const REGS: [u8; 6] = [0, 1, 3, 4, 5, 7];
        let area = self.area_words() * 8;
        let mut v = Vec::new();
        if narrow_index() {
            v.push(insn(Op::Mov32Reg, 1, 1, 0, 0));
        }
        v.extend([
            insn(Op::MovReg, 6, 2, 0, 0),
            insn(Op::MovReg, 8, 1, 0, 0),
            insn(Op::MovReg, 7, 1, 0, 0),
            insn(Op::MovImm, 0, 0, 0, 0),
            insn(Op::LdxDw, 3, 6, 0, 0),
            insn(Op::MovImm, 4, 0, 0, i64::from(self.init[0] >> 8)),
            insn(Op::MovReg, 5, 8, 0, 0),
        ]);
        let n = self.body.len().min(24);
        // Branches: (index of the branch, index of its target), fixed to slots at the end.
        let mut branches = Vec::new();
        // Where each tuple's instructions start (branch targets are tuple indices).
        let mut starts = Vec::with_capacity(n);
        for (k, &(row, a, b, off, imm)) in self.body.iter().take(n).enumerate() {
            starts.push(v.len());
            let spec = &duet_isa::OPS[row as usize % duet_isa::OPS.len()];
            let (dst, src) = (REGS[a as usize % REGS.len()], REGS[b as usize % REGS.len()]);
            let mut i = canonical(spec, insn(spec.op, dst, src, i16::from(off), i64::from(imm)));
            // A memory offset inside the area, aligned to the access, except rarely.
            let in_area = |w: usize| {
                if a & 0xf0 == 0xf0 { i16::from(off) } else { ((off as u8 as usize % (area / w)) * w) as i16 }
            };
            match spec.form {
                Form::AluReg | Form::AluImm | Form::Unary | Form::Endian => v.push(i),
                Form::Ldx => {
                    i.src = 6;
                    i.off = in_area(i.op.mem_width().map_or(8, |w| w.bytes()));
                    v.push(i);
                }
                Form::St | Form::Stx | Form::Atomic => {
                    i.dst = 6;
                    i.off = in_area(i.op.mem_width().map_or(8, |w| w.bytes()));
                    v.push(i);
                }
                Form::JmpReg | Form::JmpImm | Form::Ja => {
                    let left = n - k;
                    branches.push((v.len(), k + 1 + off as u8 as usize % left));
                    v.push(i);
                }
                Form::CallHelper => {
                    v.extend(helper_call(imm));
                    // The call clobbered r1..r5.
                    v.extend([
                        insn(Op::MovReg, 1, 8, 0, 0),
                        insn(Op::MovReg, 3, 0, 0, 0),
                        insn(Op::MovImm, 4, 0, 0, i64::from(imm)),
                        insn(Op::MovReg, 5, 7, 0, 0),
                    ]);
                }
                _ => {}
            }
        }
        let end = v.len();
        let ret = self.ret >> 3;
        match self.ret % 8 {
            0..=2 => v.push(insn(Op::MovImm, 0, 0, 0, 0)),
            3 => v.push(insn(Op::MovImm, 0, 0, 0, 1)),
            // Stop at an index.
            4 => v.extend([
                insn(Op::MovImm, 0, 0, 0, 0),
                insn(Op::JltImm, 8, 0, 1, i64::from(ret % 8)),
                insn(Op::MovImm, 0, 0, 0, 1),
            ]),
            5 => v.push(insn(Op::AndImm, 0, 0, 0, 1)),
            6 => v.extend([insn(Op::MovReg, 0, 7, 0, 0), insn(Op::AndImm, 0, 0, 0, 1)]),
            // Rarely a value outside 0..=1, or unknown: both verifiers refuse it.
            _ if ret & 3 == 0 => v.push(insn(Op::AndImm, 0, 0, 0, 3)),
            _ if ret & 3 == 1 => v.push(insn(Op::MovImm, 0, 0, 0, 2)),
            _ => v.push(insn(Op::MovImm, 0, 0, 0, 0)),
        }
        v.push(insn(Op::Exit, 0, 0, 0, 0));
        let slot_of = |idx: usize, v: &[Insn]| v[..idx].iter().map(Insn::slots).sum::<usize>();
        for (at, tuple) in branches {
            let target = starts.get(tuple).copied().unwrap_or(end);
            v[at].off = (slot_of(target, &v) - slot_of(at, &v) - 1) as i16;
        }
        v
    }
}
