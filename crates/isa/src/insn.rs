//! Raw instruction slots, decoded instructions, and the decoder/encoder built on the opcode table.

use alloc::vec::Vec;
use core::fmt;

use crate::table::{Disc, Form, OPS, Op, rows_for_code};

/// Number of general-purpose registers, `r0`..=`r10`.
pub const NUM_REGS: u8 = 11;
/// The read-only frame pointer.
pub const FRAME_POINTER: u8 = 10;

/// Pseudo source kinds of `lddw` (the `src` field), as defined by RFC 9669 §5.4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PseudoSrc {
    /// `src = 0`: a plain 64-bit immediate.
    Imm64,
    /// `src = 1`: a map, by file descriptor.
    MapFd,
    /// `src = 2`: a map value address: map fd in `imm`, offset in the next `imm`.
    MapValue,
    /// `src = 3`: a kernel variable by BTF id.
    BtfId,
    /// `src = 4`: a program-local function, pc-relative in `imm`.
    Func,
    /// `src = 5`: a map, by index into the program's map table.
    MapIdx,
    /// `src = 6`: a map value address: map index in `imm`, offset in the next `imm`.
    MapIdxValue,
}

impl PseudoSrc {
    /// All kinds, indexed by their `src` value.
    pub const ALL: [PseudoSrc; 7] = [
        PseudoSrc::Imm64,
        PseudoSrc::MapFd,
        PseudoSrc::MapValue,
        PseudoSrc::BtfId,
        PseudoSrc::Func,
        PseudoSrc::MapIdx,
        PseudoSrc::MapIdxValue,
    ];

    /// The kind for a `src` field value.
    pub fn from_src(src: u8) -> Option<Self> {
        Self::ALL.get(src as usize).copied()
    }

    /// Assembler keyword (`map_fd`, ...); empty for [`PseudoSrc::Imm64`].
    pub fn keyword(self) -> &'static str {
        match self {
            PseudoSrc::Imm64 => "",
            PseudoSrc::MapFd => "map_fd",
            PseudoSrc::MapValue => "map_value",
            PseudoSrc::BtfId => "btf_id",
            PseudoSrc::Func => "func",
            PseudoSrc::MapIdx => "map_idx",
            PseudoSrc::MapIdxValue => "map_idx_value",
        }
    }
}

/// One 8-byte instruction slot exactly as stored: opcode, registers, offset, immediate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RawInsn {
    /// Opcode byte.
    pub code: u8,
    /// Destination register field (4 bits).
    pub dst: u8,
    /// Source register field (4 bits).
    pub src: u8,
    /// Signed 16-bit offset.
    pub off: i16,
    /// Signed 32-bit immediate.
    pub imm: i32,
}

impl RawInsn {
    /// Parses one little-endian slot.
    pub fn from_bytes(b: [u8; 8]) -> Self {
        RawInsn {
            code: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// The slot as little-endian bytes.
    pub fn to_bytes(self) -> [u8; 8] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        [self.code, (self.dst & 0x0f) | (self.src << 4), off[0], off[1], imm[0], imm[1], imm[2], imm[3]]
    }

    /// The slot as one 64-bit word with the opcode in the low byte (the suite's `-- raw` form).
    pub fn from_u64(word: u64) -> Self {
        Self::from_bytes(word.to_le_bytes())
    }

    /// The inverse of [`RawInsn::from_u64`].
    pub fn to_u64(self) -> u64 {
        u64::from_le_bytes(self.to_bytes())
    }
}

/// A decoded, validated instruction.
///
/// `imm` holds the sign-extended 32-bit immediate, except for `lddw`, where it holds the full
/// 64-bit value (`imm` of the first slot in the low half, `imm` of the second in the high half).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Insn {
    /// The instruction.
    pub op: Op,
    /// Destination register (`0..=10`; for `callx` the register holding the helper id).
    pub dst: u8,
    /// Source register (`0..=10`), or the pseudo source kind of `lddw`.
    pub src: u8,
    /// Offset: memory displacement or jump distance in slots.
    pub off: i16,
    /// Immediate (see the type's documentation).
    pub imm: i64,
}

impl Insn {
    /// An instruction with all operand fields zero.
    pub const fn new(op: Op) -> Self {
        Insn { op, dst: 0, src: 0, off: 0, imm: 0 }
    }

    /// Number of 8-byte slots this instruction occupies (2 for `lddw`).
    pub fn slots(&self) -> usize {
        if self.op == Op::LdImm64 { 2 } else { 1 }
    }

    /// For jumps and local calls at slot `pc`: the target slot index (may be out of range).
    pub fn branch_target(&self, pc: usize) -> Option<i64> {
        let rel = match self.op.form() {
            Form::JmpReg | Form::JmpImm | Form::Ja => i64::from(self.off),
            Form::Ja32 | Form::CallLocal => self.imm,
            _ => return None,
        };
        Some(pc as i64 + 1 + rel)
    }

    /// The `lddw` pseudo source kind, if this is an `lddw`.
    pub fn pseudo_src(&self) -> Option<PseudoSrc> {
        if self.op == Op::LdImm64 { PseudoSrc::from_src(self.src) } else { None }
    }

    /// Encodes into one or two raw slots (the second is `None` unless this is `lddw`).
    pub fn encode(&self) -> (RawInsn, Option<RawInsn>) {
        let spec = self.op.spec();
        let mut raw = RawInsn { code: spec.code, dst: self.dst, src: self.src, off: self.off, imm: self.imm as i32 };
        match spec.disc {
            Disc::None => {}
            Disc::Off(off) => raw.off = off,
            Disc::Imm(imm) => raw.imm = imm,
            Disc::Src(src) => raw.src = src,
        }
        if self.op == Op::LdImm64 {
            let hi = RawInsn { imm: (self.imm as u64 >> 32) as u32 as i32, ..RawInsn::default() };
            raw.imm = self.imm as u32 as i32;
            (raw, Some(hi))
        } else {
            (raw, None)
        }
    }
}

/// Why a program's bytes were rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The byte length is not a multiple of 8.
    BadLength(usize),
    /// The program has no instructions.
    Empty,
    /// No instruction has this opcode byte.
    UnknownOpcode(u8),
    /// The opcode byte exists but the discriminating field has no meaning for it.
    UnknownVariant {
        /// The opcode byte.
        code: u8,
        /// The field's name (`off`, `imm`, `src`).
        field: &'static str,
        /// The value found.
        value: i64,
        /// The valid values, with the instruction each selects.
        expected: Vec<(i64, &'static str)>,
    },
    /// A register field names a register that does not exist.
    BadRegister {
        /// `dst` or `src`.
        field: &'static str,
        /// The register number found.
        reg: u8,
    },
    /// The instruction writes the read-only frame pointer `r10`.
    WritesFramePointer,
    /// A field this instruction does not use is not zero.
    ReservedField {
        /// The field's name.
        field: &'static str,
        /// The value found.
        value: i64,
    },
    /// An `lddw` is the last slot of the program.
    TruncatedLddw,
    /// The second slot of an `lddw` has non-zero fields other than `imm`.
    BadLddwSecondSlot,
    /// An `lddw` uses an unknown pseudo source kind.
    BadPseudoSrc(u8),
    /// A jump or call target lies outside the program.
    JumpOutOfRange {
        /// The target slot.
        target: i64,
        /// The program's slot count.
        len: usize,
    },
    /// A jump or call target is the second slot of an `lddw`.
    JumpIntoLddw {
        /// The target slot.
        target: i64,
    },
    /// A byte swap width other than 16, 32 or 64.
    BadSwapWidth(i64),
    /// The last instruction can fall through past the end of the program.
    FallsOffEnd,
}

/// A decoding error: what is wrong, and at which slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Slot index of the offending instruction.
    pub pc: usize,
    /// What is wrong.
    pub kind: DecodeErrorKind,
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadLength(n) => write!(f, "program length {n} bytes is not a multiple of 8"),
            Self::Empty => write!(f, "program has no instructions"),
            Self::UnknownOpcode(c) => write!(f, "unknown opcode {c:#04x}"),
            Self::UnknownVariant { code, field, value, expected } => {
                write!(f, "opcode {code:#04x} with {field}={value} is not an instruction; expected ")?;
                for (i, (v, name)) in expected.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{field}={v} ({name})")?;
                }
                Ok(())
            }
            Self::BadRegister { field, reg } => {
                write!(f, "invalid register r{reg} in {field} (registers are r0..r10)")
            }
            Self::WritesFramePointer => write!(f, "r10 is the read-only frame pointer"),
            Self::ReservedField { field, value } => {
                write!(f, "unused field {field} must be zero, found {value}")
            }
            Self::TruncatedLddw => write!(f, "lddw needs two slots but the program ends after one"),
            Self::BadLddwSecondSlot => {
                write!(f, "second slot of lddw must have zero opcode, registers and offset")
            }
            Self::BadPseudoSrc(s) => write!(f, "unknown lddw source kind {s}"),
            Self::JumpOutOfRange { target, len } => {
                write!(f, "jump target {target} is outside the program (0..{len})")
            }
            Self::JumpIntoLddw { target } => {
                write!(f, "jump target {target} is the second half of an lddw")
            }
            Self::BadSwapWidth(w) => write!(f, "byte swap width must be 16, 32 or 64, found {w}"),
            Self::FallsOffEnd => {
                write!(f, "last instruction is not an exit or unconditional jump")
            }
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "instruction {}: {}", self.pc, self.kind)
    }
}

impl core::error::Error for DecodeError {}

/// A decoded program: instructions in slot order, with their slot indices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    insns: Vec<(usize, Insn)>,
    n_slots: usize,
}

impl Program {
    /// Decodes and validates little-endian bytecode.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if !bytes.len().is_multiple_of(8) {
            return Err(DecodeError { pc: bytes.len() / 8, kind: DecodeErrorKind::BadLength(bytes.len()) });
        }
        let raw: Vec<RawInsn> = bytes
            .chunks_exact(8)
            .map(|c| RawInsn::from_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        Self::from_raw(&raw)
    }

    /// Decodes and validates raw slots.
    pub fn from_raw(raw: &[RawInsn]) -> Result<Self, DecodeError> {
        if raw.is_empty() {
            return Err(DecodeError { pc: 0, kind: DecodeErrorKind::Empty });
        }
        let mut insns = Vec::with_capacity(raw.len());
        let mut pc = 0;
        while pc < raw.len() {
            let insn = decode_one(raw, pc).map_err(|kind| DecodeError { pc, kind })?;
            insns.push((pc, insn));
            pc += insn.slots();
        }
        let program = Program { insns, n_slots: raw.len() };
        program.check_control_flow()?;
        Ok(program)
    }

    /// Builds a program from decoded instructions, validating it as [`Program::from_raw`] does.
    pub fn from_insns(insns: &[Insn]) -> Result<Self, DecodeError> {
        Self::from_raw(&encode_all(insns))
    }

    /// Instructions with their slot indices, in order.
    pub fn insns(&self) -> &[(usize, Insn)] {
        &self.insns
    }

    /// Number of 8-byte slots (an `lddw` counts two).
    pub fn n_slots(&self) -> usize {
        self.n_slots
    }

    /// Encodes back to raw slots.
    pub fn to_raw(&self) -> Vec<RawInsn> {
        let plain: Vec<Insn> = self.insns.iter().map(|(_, i)| *i).collect();
        encode_all(&plain)
    }

    /// Encodes back to little-endian bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_raw().iter().flat_map(|r| r.to_bytes()).collect()
    }

    fn check_control_flow(&self) -> Result<(), DecodeError> {
        let mut second_half = alloc::vec![false; self.n_slots];
        for (pc, insn) in &self.insns {
            if insn.op == Op::LdImm64 {
                second_half[pc + 1] = true;
            }
        }
        let check_target = |pc: usize, target: i64| -> Result<(), DecodeError> {
            if target < 0 || target >= self.n_slots as i64 {
                return Err(DecodeError { pc, kind: DecodeErrorKind::JumpOutOfRange { target, len: self.n_slots } });
            }
            if second_half[target as usize] {
                return Err(DecodeError { pc, kind: DecodeErrorKind::JumpIntoLddw { target } });
            }
            Ok(())
        };
        for (pc, insn) in &self.insns {
            if let Some(target) = insn.branch_target(*pc) {
                check_target(*pc, target)?;
            }
            if insn.pseudo_src() == Some(PseudoSrc::Func) {
                check_target(*pc, *pc as i64 + 1 + (insn.imm as i32) as i64)?;
            }
        }
        // `insns` is non-empty: `from_raw` rejects empty input.
        let (last_pc, last) = self.insns[self.insns.len() - 1];
        if !matches!(last.op, Op::Exit | Op::Ja | Op::Ja32) {
            return Err(DecodeError { pc: last_pc, kind: DecodeErrorKind::FallsOffEnd });
        }
        Ok(())
    }
}

fn encode_all(insns: &[Insn]) -> Vec<RawInsn> {
    let mut out = Vec::with_capacity(insns.len());
    for insn in insns {
        let (a, b) = insn.encode();
        out.push(a);
        out.extend(b);
    }
    out
}

fn check_reg(field: &'static str, reg: u8) -> Result<(), DecodeErrorKind> {
    if reg >= NUM_REGS { Err(DecodeErrorKind::BadRegister { field, reg }) } else { Ok(()) }
}

fn reserved(field: &'static str, value: i64) -> Result<(), DecodeErrorKind> {
    if value != 0 { Err(DecodeErrorKind::ReservedField { field, value }) } else { Ok(()) }
}

/// Decodes the instruction at slot `pc` of `raw`, checking every field against its table row
/// (but not jump targets or the program's end, which need the whole program; see [`Program`]).
pub fn decode_insn(raw: &[RawInsn], pc: usize) -> Result<Insn, DecodeErrorKind> {
    decode_one(raw, pc)
}

fn decode_one(raw: &[RawInsn], pc: usize) -> Result<Insn, DecodeErrorKind> {
    let r = raw[pc];
    let rows = rows_for_code(r.code);
    if rows.is_empty() {
        return Err(DecodeErrorKind::UnknownOpcode(r.code));
    }
    let spec = rows
        .iter()
        .find(|row| match row.disc {
            Disc::None => true,
            Disc::Off(off) => r.off == off,
            Disc::Imm(imm) => r.imm == imm,
            Disc::Src(src) => r.src == src,
        })
        .ok_or_else(|| variant_error(r, rows))?;
    let mut insn = Insn { op: spec.op, dst: r.dst, src: r.src, off: r.off, imm: i64::from(r.imm) };
    // Which fields the form uses; the rest must be zero. The discriminating field was matched above.
    let (uses_dst, uses_src, uses_off, uses_imm, writes_dst) = match spec.form {
        Form::AluReg => (true, true, false, false, true),
        Form::AluImm => (true, false, false, true, true),
        Form::Unary | Form::Endian => (true, false, false, false, true),
        Form::JmpReg => (true, true, true, false, false),
        Form::JmpImm => (true, false, true, true, false),
        Form::Ja => (false, false, true, false, false),
        Form::Ja32 => (false, false, false, true, false),
        Form::CallHelper | Form::CallLocal | Form::CallKfunc => (false, false, false, true, false),
        Form::CallReg => (true, false, false, false, false),
        Form::Exit => (false, false, false, false, false),
        Form::LdImm64 => (true, true, false, true, true),
        Form::LdAbs => (false, false, false, true, false),
        Form::LdInd => (false, true, false, true, false),
        Form::Ldx => (true, true, true, false, true),
        Form::St => (true, false, true, true, false),
        Form::Stx | Form::Atomic => (true, true, true, false, false),
    };
    let disc_field = match spec.disc {
        Disc::None => "",
        Disc::Off(_) => "off",
        Disc::Imm(_) => "imm",
        Disc::Src(_) => "src",
    };
    if uses_dst {
        check_reg("dst", r.dst)?;
    } else {
        reserved("dst", i64::from(r.dst))?;
    }
    if spec.form == Form::LdImm64 {
        if PseudoSrc::from_src(r.src).is_none() {
            return Err(DecodeErrorKind::BadPseudoSrc(r.src));
        }
    } else if uses_src {
        check_reg("src", r.src)?;
    } else if disc_field != "src" {
        reserved("src", i64::from(r.src))?;
    }
    if !uses_off && disc_field != "off" {
        reserved("off", i64::from(r.off))?;
    }
    if !uses_imm && disc_field != "imm" {
        reserved("imm", i64::from(r.imm))?;
    }
    if writes_dst && r.dst == crate::FRAME_POINTER {
        return Err(DecodeErrorKind::WritesFramePointer);
    }
    match spec.op {
        // Fetching atomics write the old value back to `src`; cmpxchg writes r0.
        op if spec.form == Form::Atomic
            && matches!(spec.disc, Disc::Imm(imm) if imm & 0x01 != 0)
            && op != Op::AtomicCmpXchgW
            && op != Op::AtomicCmpXchgDw
            && r.src == crate::FRAME_POINTER =>
        {
            return Err(DecodeErrorKind::WritesFramePointer);
        }
        _ => {}
    }
    if spec.op == Op::LdImm64 {
        let Some(hi) = raw.get(pc + 1) else {
            return Err(DecodeErrorKind::TruncatedLddw);
        };
        if hi.code != 0 || hi.dst != 0 || hi.src != 0 || hi.off != 0 {
            return Err(DecodeErrorKind::BadLddwSecondSlot);
        }
        insn.imm = ((hi.imm as u32 as u64) << 32 | r.imm as u32 as u64) as i64;
    }
    Ok(insn)
}

fn variant_error(r: RawInsn, rows: &[crate::table::OpSpec]) -> DecodeErrorKind {
    let (field, value) = match rows[0].disc {
        Disc::Off(_) => ("off", i64::from(r.off)),
        Disc::Imm(_) => ("imm", i64::from(r.imm)),
        Disc::Src(_) => ("src", i64::from(r.src)),
        Disc::None => ("", 0),
    };
    if rows.iter().all(|row| row.form == Form::Endian) {
        return DecodeErrorKind::BadSwapWidth(value);
    }
    if rows.len() == 1 && rows[0].disc == Disc::Off(0) {
        return DecodeErrorKind::ReservedField { field: "off", value };
    }
    let expected = rows
        .iter()
        .map(|row| {
            let v = match row.disc {
                Disc::Off(o) => i64::from(o),
                Disc::Imm(i) => i64::from(i),
                Disc::Src(s) => i64::from(s),
                Disc::None => 0,
            };
            (v, row.name)
        })
        .collect();
    DecodeErrorKind::UnknownVariant { code: r.code, field, value, expected }
}

/// Every table row as an instruction with representative operands (used by tests and fuzzers).
pub fn sample_insns() -> impl Iterator<Item = Insn> {
    OPS.iter().map(|row| {
        let mut insn = Insn::new(row.op);
        match row.form {
            Form::AluReg | Form::JmpReg | Form::Ldx | Form::Stx | Form::Atomic => {
                insn.dst = 1;
                insn.src = 2;
            }
            Form::AluImm | Form::JmpImm | Form::St => {
                insn.dst = 3;
                insn.imm = -7;
            }
            Form::Unary | Form::Endian | Form::CallReg => insn.dst = 4,
            Form::LdImm64 => {
                insn.dst = 5;
                insn.imm = 0x1122_3344_5566_7788;
            }
            Form::LdAbs | Form::CallHelper | Form::CallKfunc => insn.imm = 12,
            Form::LdInd => {
                insn.src = 6;
                insn.imm = 2;
            }
            Form::Ja | Form::Ja32 | Form::CallLocal | Form::Exit => {}
        }
        if matches!(row.form, Form::JmpReg | Form::JmpImm | Form::Ldx | Form::St | Form::Stx | Form::Atomic) {
            insn.off = -3;
        }
        if let Disc::Off(off) = row.disc {
            insn.off = off;
        }
        if let Disc::Imm(imm) = row.disc {
            insn.imm = i64::from(imm);
        }
        if let Disc::Src(src) = row.disc {
            insn.src = src;
        }
        insn
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Result<Program, DecodeError> {
        let raw = [RawInsn { code, dst, src, off, imm }, RawInsn { code: 0x95, ..Default::default() }];
        Program::from_raw(&raw)
    }

    #[test]
    fn raw_round_trip() {
        let r = RawInsn { code: 0x61, dst: 3, src: 10, off: -8, imm: 0x1234_5678 };
        assert_eq!(RawInsn::from_bytes(r.to_bytes()), r);
        assert_eq!(RawInsn::from_u64(r.to_u64()), r);
        assert_eq!(RawInsn::from_u64(0x0000_0000_0000_0095).code, 0x95);
    }

    #[test]
    fn every_row_encodes_and_decodes() {
        for insn in sample_insns() {
            let (a, b) = insn.encode();
            let mut raw = alloc::vec![a];
            raw.extend(b);
            let decoded = decode_one(&raw, 0).unwrap_or_else(|e| panic!("{:?}: {e}", insn.op));
            assert_eq!(decoded, insn);
        }
    }

    #[test]
    fn rejects_with_precise_errors() {
        assert_eq!(one(0xff, 0, 0, 0, 0).unwrap_err().kind, DecodeErrorKind::UnknownOpcode(0xff));
        assert_eq!(one(0x07, 0, 0, 1, 1).unwrap_err().kind, DecodeErrorKind::ReservedField { field: "off", value: 1 });
        assert_eq!(one(0x07, 0, 1, 0, 1).unwrap_err().kind, DecodeErrorKind::ReservedField { field: "src", value: 1 });
        assert_eq!(one(0x0f, 0, 11, 0, 0).unwrap_err().kind, DecodeErrorKind::BadRegister { field: "src", reg: 11 });
        assert_eq!(one(0xb7, 10, 0, 0, 0).unwrap_err().kind, DecodeErrorKind::WritesFramePointer);
        assert_eq!(one(0xd4, 1, 0, 0, 8).unwrap_err().kind, DecodeErrorKind::BadSwapWidth(8));
        assert!(matches!(
            one(0x3f, 0, 1, 2, 0).unwrap_err().kind,
            DecodeErrorKind::UnknownVariant { field: "off", value: 2, .. }
        ));
        assert_eq!(one(0x05, 0, 0, 5, 0).unwrap_err().kind, DecodeErrorKind::JumpOutOfRange { target: 6, len: 2 });
        assert_eq!(Program::decode(&[0; 7]).unwrap_err().kind, DecodeErrorKind::BadLength(7));
        assert_eq!(Program::decode(&[]).unwrap_err().kind, DecodeErrorKind::Empty);
        let truncated = [RawInsn { code: 0x18, ..Default::default() }];
        assert_eq!(Program::from_raw(&truncated).unwrap_err().kind, DecodeErrorKind::TruncatedLddw);
        let no_exit = [RawInsn { code: 0xb7, ..Default::default() }];
        assert_eq!(Program::from_raw(&no_exit).unwrap_err().kind, DecodeErrorKind::FallsOffEnd);
    }

    #[test]
    fn rejects_jump_into_lddw() {
        let raw = [
            RawInsn { code: 0x05, off: 2, ..Default::default() },
            RawInsn { code: 0x18, imm: 1, ..Default::default() },
            RawInsn::default(),
            RawInsn { code: 0x95, ..Default::default() },
        ];
        assert!(Program::from_raw(&raw).is_ok());
        let mut bad = raw;
        bad[0].off = 1;
        assert_eq!(Program::from_raw(&bad).unwrap_err().kind, DecodeErrorKind::JumpIntoLddw { target: 2 });
    }
}
