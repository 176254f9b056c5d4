//! Random XDP programs shared by the differential targets (`jit_diff`, `verify_kernel`): a
//! packet-bounds prologue and an array map value in r6, then random ALU, memory, atomic,
//! forward-jump instructions and well-formed helper calls from the opcode table.

use duet_isa::{Insn, Op};
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

/// `r9 = ctx; r2 = data; r3 = data_end; if r2 + 14 > r3 goto out; r6 = array value or out`
/// (and the packet pointers reloaded), then the body (forward jumps only), then `r0 = 2; exit`.
///
/// With `loop_count`, the body is in a bounded loop of 1 to 4 iterations: `r8 = count; body;
/// r8 -= 1; if r8 != 0 goto body`. The body's uses of r8 become r7, so only the loop control
/// writes the counter (as a counter kept in a callee-saved register is), and every program still
/// terminates; the verifier has to follow the loop, with its states, spills and Spectre rules,
/// to its bound.
pub fn structured_with(body: &[(u8, u8, u8, i8, i16)], loop_count: Option<u8>) -> Vec<Insn> {
    let insn = |op, dst, src, off, imm| Insn { op, dst, src, off, imm };
    let mut body_insns = Vec::new();
    let n = body.len().min(48);
    for (k, &(row, dst, src, off, imm)) in body.iter().take(n).enumerate() {
        let spec = &duet_isa::OPS[row as usize % duet_isa::OPS.len()];
        let mut i = insn(spec.op, dst % 10, src % 11, i16::from(off), i64::from(imm));
        match spec.disc {
            duet_isa::table::Disc::Off(o) => i.off = o,
            duet_isa::table::Disc::Imm(v) => i.imm = i64::from(v),
            duet_isa::table::Disc::Src(s) => i.src = s,
            duet_isa::table::Disc::None => {}
        }
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
    let loop_start = out.len() + 1;
    if let Some(count) = loop_count {
        out.push(insn(Op::MovImm, 8, 0, 0, i64::from(count % 4) + 1));
    }
    out.extend(body_insns);
    if loop_count.is_some() {
        out.push(insn(Op::AddImm, 8, 0, 0, -1));
        out.push(insn(Op::JneImm, 8, 0, 0, 0)); // patched below
    }
    out.push(insn(Op::MovImm, 0, 0, 0, 2));
    out.push(insn(Op::Exit, 0, 0, 0, 0));
    // Every prologue exit lands on `r0 = 2`. Slots: the lddw takes two.
    let slot_of = |idx: usize, out: &[Insn]| out[..idx].iter().map(Insn::slots).sum::<usize>();
    let target = slot_of(out.len() - 2, &out);
    for idx in [5, 11, 17] {
        let at = slot_of(idx, &out);
        out[idx].off = (target - at - 1) as i16;
    }
    if loop_count.is_some() {
        // The back edge: from the `if r8 != 0` (just before `r0 = 2`) to the body's first slot.
        let back = out.len() - 3;
        let (from, to) = (slot_of(back, &out), slot_of(loop_start, &out));
        out[back].off = to as i16 - from as i16 - 1;
    }
    out
}
