//! The opcode table: every per-opcode fact of the eBPF instruction set, in one place.
//!
//! Each row names one instruction: its mnemonic in the conformance-suite dialect, its opcode
//! byte, the field value that tells it apart from other instructions with the same opcode byte
//! (the "discriminator": `off` for `sdiv`/`movsx`, `imm` for byte swaps and atomics, `src` for
//! calls), and its [`Form`], which fixes which fields it uses and how it is printed and parsed.
//! Decoder, encoder, validity checks, disassembler, assembler and the engines' exhaustive
//! matches all derive from this table.

/// The field that distinguishes instructions sharing one opcode byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disc {
    /// The opcode byte alone identifies the instruction.
    None,
    /// The `off` field must have this value (ALU: 0 normally, 1 for signed div/mod, 8/16/32 for movsx).
    Off(i16),
    /// The `imm` field must have this value (byte swaps: width; atomics: operation).
    Imm(i32),
    /// The `src` field must have this value (calls: helper, local, kfunc).
    Src(u8),
}

/// The operand shape of an instruction: which fields it uses, which must be zero, and its syntax.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// `op %dst, %src` — ALU with a register source.
    AluReg,
    /// `op %dst, imm` — ALU with an immediate source.
    AluImm,
    /// `neg %dst`.
    Unary,
    /// `be16 %dst` — byte swap; the width is the discriminator.
    Endian,
    /// `jeq %dst, %src, target`.
    JmpReg,
    /// `jeq %dst, imm, target`.
    JmpImm,
    /// `ja target` — 16-bit offset.
    Ja,
    /// `ja32 target` — 32-bit offset in `imm` (also known as `gotol`).
    Ja32,
    /// `call imm` — helper by static id.
    CallHelper,
    /// `call local target` — bpf-to-bpf call, pc-relative in `imm`.
    CallLocal,
    /// `call kfunc imm` — kernel function by BTF id.
    CallKfunc,
    /// `call %dst` — helper id taken from a register (an extension, not in RFC 9669).
    CallReg,
    /// `exit`.
    Exit,
    /// `lddw %dst, imm64` — two slots; `src` selects a pseudo source kind.
    LdImm64,
    /// `ldabsw imm` — legacy packet load at a constant offset.
    LdAbs,
    /// `ldindw %src, imm` — legacy packet load at a register plus constant offset.
    LdInd,
    /// `ldxw %dst, [%src+off]`.
    Ldx,
    /// `stw [%dst+off], imm`.
    St,
    /// `stxw [%dst+off], %src`.
    Stx,
    /// `lock add [%dst+off], %src` — the operation is the discriminator.
    Atomic,
}

/// Access width of memory instructions and byte swaps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Width {
    /// 1 byte.
    B,
    /// 2 bytes.
    H,
    /// 4 bytes.
    W,
    /// 8 bytes.
    Dw,
}

impl Width {
    /// Size in bytes.
    pub const fn bytes(self) -> usize {
        match self {
            Width::B => 1,
            Width::H => 2,
            Width::W => 4,
            Width::Dw => 8,
        }
    }
}

/// Where an instruction comes from, for tools that target a particular dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Defined by RFC 9669 (any conformance group).
    Rfc9669,
    /// RFC 9669's legacy packet access instructions (`ldabs`/`ldind`).
    Legacy,
    /// Not in RFC 9669 and not accepted by Linux: `callx`. Runs only in duet's userspace VM.
    Extension,
}

/// One row of the opcode table.
#[derive(Clone, Copy, Debug)]
pub struct OpSpec {
    /// The instruction.
    pub op: Op,
    /// Canonical mnemonic (conformance-suite dialect).
    pub name: &'static str,
    /// The opcode byte.
    pub code: u8,
    /// The field value that selects this row among rows with the same opcode byte.
    pub disc: Disc,
    /// Operand shape.
    pub form: Form,
    /// Provenance.
    pub origin: Origin,
}

macro_rules! define_ops {
    ($( $variant:ident $name:literal $code:literal $disc:expr, $form:ident $origin:ident; )*) => {
        /// Every instruction duet knows, one variant per table row.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Op {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        /// The opcode table, ordered by opcode byte so that rows sharing a byte are adjacent.
        pub static OPS: &[OpSpec] = &[
            $( OpSpec { op: Op::$variant, name: $name, code: $code, disc: $disc, form: Form::$form, origin: Origin::$origin }, )*
        ];
    };
}

use Disc::{Imm, None as NoDisc, Off, Src};

// Opcode byte = class (low 3 bits) | size/source bits | operation (high bits); see RFC 9669 §3.
define_ops! {
    // --- class LD (0x00): wide immediate and legacy packet loads ---
    LdImm64      "lddw"      0x18 NoDisc, LdImm64 Rfc9669;
    LdAbsW       "ldabsw"    0x20 NoDisc, LdAbs Legacy;
    LdAbsH       "ldabsh"    0x28 NoDisc, LdAbs Legacy;
    LdAbsB       "ldabsb"    0x30 NoDisc, LdAbs Legacy;
    LdIndW       "ldindw"    0x40 NoDisc, LdInd Legacy;
    LdIndH       "ldindh"    0x48 NoDisc, LdInd Legacy;
    LdIndB       "ldindb"    0x50 NoDisc, LdInd Legacy;
    // --- class LDX (0x01) ---
    LdxW         "ldxw"      0x61 NoDisc, Ldx Rfc9669;
    LdxH         "ldxh"      0x69 NoDisc, Ldx Rfc9669;
    LdxB         "ldxb"      0x71 NoDisc, Ldx Rfc9669;
    LdxDw        "ldxdw"     0x79 NoDisc, Ldx Rfc9669;
    LdxSW        "ldxsw"     0x81 NoDisc, Ldx Rfc9669;
    LdxSH        "ldxsh"     0x89 NoDisc, Ldx Rfc9669;
    LdxSB        "ldxsb"     0x91 NoDisc, Ldx Rfc9669;
    // --- class ST (0x02) ---
    StW          "stw"       0x62 NoDisc, St Rfc9669;
    StH          "sth"       0x6a NoDisc, St Rfc9669;
    StB          "stb"       0x72 NoDisc, St Rfc9669;
    StDw         "stdw"      0x7a NoDisc, St Rfc9669;
    // --- class STX (0x03) ---
    StxW         "stxw"      0x63 NoDisc, Stx Rfc9669;
    StxH         "stxh"      0x6b NoDisc, Stx Rfc9669;
    StxB         "stxb"      0x73 NoDisc, Stx Rfc9669;
    StxDw        "stxdw"     0x7b NoDisc, Stx Rfc9669;
    AtomicAddW     "lock add32"          0xc3 Imm(0x00), Atomic Rfc9669;
    AtomicFetchAddW "lock fetch add32"   0xc3 Imm(0x01), Atomic Rfc9669;
    AtomicOrW      "lock or32"           0xc3 Imm(0x40), Atomic Rfc9669;
    AtomicFetchOrW "lock fetch or32"     0xc3 Imm(0x41), Atomic Rfc9669;
    AtomicAndW     "lock and32"          0xc3 Imm(0x50), Atomic Rfc9669;
    AtomicFetchAndW "lock fetch and32"   0xc3 Imm(0x51), Atomic Rfc9669;
    AtomicXorW     "lock xor32"          0xc3 Imm(0xa0), Atomic Rfc9669;
    AtomicFetchXorW "lock fetch xor32"   0xc3 Imm(0xa1), Atomic Rfc9669;
    AtomicXchgW    "lock xchg32"         0xc3 Imm(0xe1), Atomic Rfc9669;
    AtomicCmpXchgW "lock cmpxchg32"      0xc3 Imm(0xf1), Atomic Rfc9669;
    AtomicAddDw     "lock add"           0xdb Imm(0x00), Atomic Rfc9669;
    AtomicFetchAddDw "lock fetch add"    0xdb Imm(0x01), Atomic Rfc9669;
    AtomicOrDw      "lock or"            0xdb Imm(0x40), Atomic Rfc9669;
    AtomicFetchOrDw "lock fetch or"      0xdb Imm(0x41), Atomic Rfc9669;
    AtomicAndDw     "lock and"           0xdb Imm(0x50), Atomic Rfc9669;
    AtomicFetchAndDw "lock fetch and"    0xdb Imm(0x51), Atomic Rfc9669;
    AtomicXorDw     "lock xor"           0xdb Imm(0xa0), Atomic Rfc9669;
    AtomicFetchXorDw "lock fetch xor"    0xdb Imm(0xa1), Atomic Rfc9669;
    AtomicXchgDw    "lock xchg"          0xdb Imm(0xe1), Atomic Rfc9669;
    AtomicCmpXchgDw "lock cmpxchg"       0xdb Imm(0xf1), Atomic Rfc9669;
    // --- class ALU (0x04): 32-bit ---
    Add32Imm     "add32"     0x04 Off(0), AluImm Rfc9669;
    Add32Reg     "add32"     0x0c Off(0), AluReg Rfc9669;
    Sub32Imm     "sub32"     0x14 Off(0), AluImm Rfc9669;
    Sub32Reg     "sub32"     0x1c Off(0), AluReg Rfc9669;
    Mul32Imm     "mul32"     0x24 Off(0), AluImm Rfc9669;
    Mul32Reg     "mul32"     0x2c Off(0), AluReg Rfc9669;
    Div32Imm     "div32"     0x34 Off(0), AluImm Rfc9669;
    SDiv32Imm    "sdiv32"    0x34 Off(1), AluImm Rfc9669;
    Div32Reg     "div32"     0x3c Off(0), AluReg Rfc9669;
    SDiv32Reg    "sdiv32"    0x3c Off(1), AluReg Rfc9669;
    Or32Imm      "or32"      0x44 Off(0), AluImm Rfc9669;
    Or32Reg      "or32"      0x4c Off(0), AluReg Rfc9669;
    And32Imm     "and32"     0x54 Off(0), AluImm Rfc9669;
    And32Reg     "and32"     0x5c Off(0), AluReg Rfc9669;
    Lsh32Imm     "lsh32"     0x64 Off(0), AluImm Rfc9669;
    Lsh32Reg     "lsh32"     0x6c Off(0), AluReg Rfc9669;
    Rsh32Imm     "rsh32"     0x74 Off(0), AluImm Rfc9669;
    Rsh32Reg     "rsh32"     0x7c Off(0), AluReg Rfc9669;
    Neg32        "neg32"     0x84 Off(0), Unary Rfc9669;
    Mod32Imm     "mod32"     0x94 Off(0), AluImm Rfc9669;
    SMod32Imm    "smod32"    0x94 Off(1), AluImm Rfc9669;
    Mod32Reg     "mod32"     0x9c Off(0), AluReg Rfc9669;
    SMod32Reg    "smod32"    0x9c Off(1), AluReg Rfc9669;
    Xor32Imm     "xor32"     0xa4 Off(0), AluImm Rfc9669;
    Xor32Reg     "xor32"     0xac Off(0), AluReg Rfc9669;
    Mov32Imm     "mov32"     0xb4 Off(0), AluImm Rfc9669;
    Mov32Reg     "mov32"     0xbc Off(0), AluReg Rfc9669;
    MovSx8To32   "movsx832"  0xbc Off(8), AluReg Rfc9669;
    MovSx16To32  "movsx1632" 0xbc Off(16), AluReg Rfc9669;
    Arsh32Imm    "arsh32"    0xc4 Off(0), AluImm Rfc9669;
    Arsh32Reg    "arsh32"    0xcc Off(0), AluReg Rfc9669;
    Le16         "le16"      0xd4 Imm(16), Endian Rfc9669;
    Le32         "le32"      0xd4 Imm(32), Endian Rfc9669;
    Le64         "le64"      0xd4 Imm(64), Endian Rfc9669;
    Be16         "be16"      0xdc Imm(16), Endian Rfc9669;
    Be32         "be32"      0xdc Imm(32), Endian Rfc9669;
    Be64         "be64"      0xdc Imm(64), Endian Rfc9669;
    // --- class JMP (0x05) ---
    Ja           "ja"        0x05 NoDisc, Ja Rfc9669;
    JeqImm       "jeq"       0x15 NoDisc, JmpImm Rfc9669;
    JeqReg       "jeq"       0x1d NoDisc, JmpReg Rfc9669;
    JgtImm       "jgt"       0x25 NoDisc, JmpImm Rfc9669;
    JgtReg       "jgt"       0x2d NoDisc, JmpReg Rfc9669;
    JgeImm       "jge"       0x35 NoDisc, JmpImm Rfc9669;
    JgeReg       "jge"       0x3d NoDisc, JmpReg Rfc9669;
    JsetImm      "jset"      0x45 NoDisc, JmpImm Rfc9669;
    JsetReg      "jset"      0x4d NoDisc, JmpReg Rfc9669;
    JneImm       "jne"       0x55 NoDisc, JmpImm Rfc9669;
    JneReg       "jne"       0x5d NoDisc, JmpReg Rfc9669;
    JsgtImm      "jsgt"      0x65 NoDisc, JmpImm Rfc9669;
    JsgtReg      "jsgt"      0x6d NoDisc, JmpReg Rfc9669;
    JsgeImm      "jsge"      0x75 NoDisc, JmpImm Rfc9669;
    JsgeReg      "jsge"      0x7d NoDisc, JmpReg Rfc9669;
    Call         "call"      0x85 Src(0), CallHelper Rfc9669;
    CallLocal    "call"      0x85 Src(1), CallLocal Rfc9669;
    CallKfunc    "call"      0x85 Src(2), CallKfunc Rfc9669;
    CallReg      "call"      0x8d NoDisc, CallReg Extension;
    Exit         "exit"      0x95 NoDisc, Exit Rfc9669;
    JltImm       "jlt"       0xa5 NoDisc, JmpImm Rfc9669;
    JltReg       "jlt"       0xad NoDisc, JmpReg Rfc9669;
    JleImm       "jle"       0xb5 NoDisc, JmpImm Rfc9669;
    JleReg       "jle"       0xbd NoDisc, JmpReg Rfc9669;
    JsltImm      "jslt"      0xc5 NoDisc, JmpImm Rfc9669;
    JsltReg      "jslt"      0xcd NoDisc, JmpReg Rfc9669;
    JsleImm      "jsle"      0xd5 NoDisc, JmpImm Rfc9669;
    JsleReg      "jsle"      0xdd NoDisc, JmpReg Rfc9669;
    // --- class JMP32 (0x06) ---
    Ja32         "ja32"      0x06 NoDisc, Ja32 Rfc9669;
    Jeq32Imm     "jeq32"     0x16 NoDisc, JmpImm Rfc9669;
    Jeq32Reg     "jeq32"     0x1e NoDisc, JmpReg Rfc9669;
    Jgt32Imm     "jgt32"     0x26 NoDisc, JmpImm Rfc9669;
    Jgt32Reg     "jgt32"     0x2e NoDisc, JmpReg Rfc9669;
    Jge32Imm     "jge32"     0x36 NoDisc, JmpImm Rfc9669;
    Jge32Reg     "jge32"     0x3e NoDisc, JmpReg Rfc9669;
    Jset32Imm    "jset32"    0x46 NoDisc, JmpImm Rfc9669;
    Jset32Reg    "jset32"    0x4e NoDisc, JmpReg Rfc9669;
    Jne32Imm     "jne32"     0x56 NoDisc, JmpImm Rfc9669;
    Jne32Reg     "jne32"     0x5e NoDisc, JmpReg Rfc9669;
    Jsgt32Imm    "jsgt32"    0x66 NoDisc, JmpImm Rfc9669;
    Jsgt32Reg    "jsgt32"    0x6e NoDisc, JmpReg Rfc9669;
    Jsge32Imm    "jsge32"    0x76 NoDisc, JmpImm Rfc9669;
    Jsge32Reg    "jsge32"    0x7e NoDisc, JmpReg Rfc9669;
    Jlt32Imm     "jlt32"     0xa6 NoDisc, JmpImm Rfc9669;
    Jlt32Reg     "jlt32"     0xae NoDisc, JmpReg Rfc9669;
    Jle32Imm     "jle32"     0xb6 NoDisc, JmpImm Rfc9669;
    Jle32Reg     "jle32"     0xbe NoDisc, JmpReg Rfc9669;
    Jslt32Imm    "jslt32"    0xc6 NoDisc, JmpImm Rfc9669;
    Jslt32Reg    "jslt32"    0xce NoDisc, JmpReg Rfc9669;
    Jsle32Imm    "jsle32"    0xd6 NoDisc, JmpImm Rfc9669;
    Jsle32Reg    "jsle32"    0xde NoDisc, JmpReg Rfc9669;
    // --- class ALU64 (0x07) ---
    AddImm       "add"       0x07 Off(0), AluImm Rfc9669;
    AddReg       "add"       0x0f Off(0), AluReg Rfc9669;
    SubImm       "sub"       0x17 Off(0), AluImm Rfc9669;
    SubReg       "sub"       0x1f Off(0), AluReg Rfc9669;
    MulImm       "mul"       0x27 Off(0), AluImm Rfc9669;
    MulReg       "mul"       0x2f Off(0), AluReg Rfc9669;
    DivImm       "div"       0x37 Off(0), AluImm Rfc9669;
    SDivImm      "sdiv"      0x37 Off(1), AluImm Rfc9669;
    DivReg       "div"       0x3f Off(0), AluReg Rfc9669;
    SDivReg      "sdiv"      0x3f Off(1), AluReg Rfc9669;
    OrImm        "or"        0x47 Off(0), AluImm Rfc9669;
    OrReg        "or"        0x4f Off(0), AluReg Rfc9669;
    AndImm       "and"       0x57 Off(0), AluImm Rfc9669;
    AndReg       "and"       0x5f Off(0), AluReg Rfc9669;
    LshImm       "lsh"       0x67 Off(0), AluImm Rfc9669;
    LshReg       "lsh"       0x6f Off(0), AluReg Rfc9669;
    RshImm       "rsh"       0x77 Off(0), AluImm Rfc9669;
    RshReg       "rsh"       0x7f Off(0), AluReg Rfc9669;
    Neg          "neg"       0x87 Off(0), Unary Rfc9669;
    ModImm       "mod"       0x97 Off(0), AluImm Rfc9669;
    SModImm      "smod"      0x97 Off(1), AluImm Rfc9669;
    ModReg       "mod"       0x9f Off(0), AluReg Rfc9669;
    SModReg      "smod"      0x9f Off(1), AluReg Rfc9669;
    XorImm       "xor"       0xa7 Off(0), AluImm Rfc9669;
    XorReg       "xor"       0xaf Off(0), AluReg Rfc9669;
    MovImm       "mov"       0xb7 Off(0), AluImm Rfc9669;
    MovReg       "mov"       0xbf Off(0), AluReg Rfc9669;
    MovSx8       "movsx864"  0xbf Off(8), AluReg Rfc9669;
    MovSx16      "movsx1664" 0xbf Off(16), AluReg Rfc9669;
    MovSx32      "movsx3264" 0xbf Off(32), AluReg Rfc9669;
    ArshImm      "arsh"      0xc7 Off(0), AluImm Rfc9669;
    ArshReg      "arsh"      0xcf Off(0), AluReg Rfc9669;
    Bswap16      "bswap16"   0xd7 Imm(16), Endian Rfc9669;
    Bswap32      "bswap32"   0xd7 Imm(32), Endian Rfc9669;
    Bswap64      "bswap64"   0xd7 Imm(64), Endian Rfc9669;
}

/// Alternative spellings the assembler accepts, mapped to canonical mnemonics.
pub static ALIASES: &[(&str, &str)] = &[
    ("swap16", "bswap16"),
    ("swap32", "bswap32"),
    ("swap64", "bswap64"),
    ("gotol", "ja32"),
    ("add64", "add"),
    ("sub64", "sub"),
    ("mul64", "mul"),
    ("div64", "div"),
    ("sdiv64", "sdiv"),
    ("or64", "or"),
    ("and64", "and"),
    ("lsh64", "lsh"),
    ("rsh64", "rsh"),
    ("neg64", "neg"),
    ("mod64", "mod"),
    ("smod64", "smod"),
    ("xor64", "xor"),
    ("mov64", "mov"),
    ("arsh64", "arsh"),
    ("lock add64", "lock add"),
    ("lock fetch add64", "lock fetch add"),
    ("lock or64", "lock or"),
    ("lock fetch or64", "lock fetch or"),
    ("lock and64", "lock and"),
    ("lock fetch and64", "lock fetch and"),
    ("lock xor64", "lock xor"),
    ("lock fetch xor64", "lock fetch xor"),
    ("lock xchg64", "lock xchg"),
    ("lock cmpxchg64", "lock cmpxchg"),
];

/// First table index of each opcode byte (`u16::MAX` when the byte is not an opcode).
static FIRST_ROW: [u16; 256] = {
    let mut first = [u16::MAX; 256];
    let mut i = OPS.len();
    while i > 0 {
        i -= 1;
        first[OPS[i].code as usize] = i as u16;
    }
    first
};

// Rows sharing an opcode byte must be adjacent, or `rows_for_code` would miss some.
const _: () = {
    let mut i = 1;
    while i < OPS.len() {
        let code = OPS[i].code;
        let mut j = 0;
        while j + 1 < i {
            assert!(
                OPS[j].code != code || OPS[j + 1].code == code,
                "opcode table rows with one opcode byte must be adjacent"
            );
            j += 1;
        }
        i += 1;
    }
};

/// All rows with this opcode byte (empty when the byte is not an opcode).
pub fn rows_for_code(code: u8) -> &'static [OpSpec] {
    let first = FIRST_ROW[code as usize];
    if first == u16::MAX {
        return &[];
    }
    let first = first as usize;
    let mut end = first;
    while end < OPS.len() && OPS[end].code == code {
        end += 1;
    }
    &OPS[first..end]
}

impl Op {
    /// This instruction's table row.
    pub fn spec(self) -> &'static OpSpec {
        &OPS[self as usize]
    }

    /// Canonical mnemonic.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// Operand shape.
    pub fn form(self) -> Form {
        self.spec().form
    }

    /// Memory access width of loads, stores and atomics; `None` for other instructions.
    pub fn mem_width(self) -> Option<Width> {
        let code = self.spec().code;
        match self.form() {
            Form::Ldx | Form::St | Form::Stx | Form::Atomic | Form::LdAbs | Form::LdInd => Some(match code & 0x18 {
                0x00 => Width::W,
                0x08 => Width::H,
                0x10 => Width::B,
                _ => Width::Dw,
            }),
            _ => None,
        }
    }

    /// Whether this is a 32-bit ALU or JMP32 instruction (operates on the low 32 bits).
    pub fn is_32bit(self) -> bool {
        let class = self.spec().code & 0x07;
        class == 0x04 || class == 0x06
    }

    /// Whether the instruction can transfer control to `pc + 1 + offset` (jumps and local calls).
    pub fn is_branch(self) -> bool {
        matches!(self.form(), Form::JmpReg | Form::JmpImm | Form::Ja | Form::Ja32 | Form::CallLocal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_discriminants_index_the_table() {
        for (i, row) in OPS.iter().enumerate() {
            assert_eq!(row.op as usize, i, "row {} ({}) is out of place", i, row.name);
        }
    }

    #[test]
    fn rows_are_unique_by_code_and_discriminator() {
        for (i, a) in OPS.iter().enumerate() {
            for b in &OPS[i + 1..] {
                assert!(
                    !(a.code == b.code && a.disc == b.disc),
                    "{} and {} share opcode {:#04x} and discriminator",
                    a.name,
                    b.name,
                    a.code
                );
            }
        }
    }

    #[test]
    fn aliases_point_at_real_mnemonics() {
        for (alias, canonical) in ALIASES {
            assert!(OPS.iter().any(|row| row.name == *canonical), "{alias} -> {canonical}");
            assert!(OPS.iter().all(|row| row.name != *alias), "{alias} shadows a row");
        }
    }

    #[test]
    fn widths_follow_size_bits() {
        assert_eq!(Op::LdxB.mem_width(), Some(Width::B));
        assert_eq!(Op::StxDw.mem_width(), Some(Width::Dw));
        assert_eq!(Op::AtomicAddW.mem_width(), Some(Width::W));
        assert_eq!(Op::LdAbsH.mem_width(), Some(Width::H));
        assert_eq!(Op::AddImm.mem_width(), None);
    }
}
