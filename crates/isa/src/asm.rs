//! Assembler and disassembler for the conformance-suite dialect.
//!
//! ```text
//! mov %r0, 1              ALU: `%rN` registers, decimal or 0x-hex immediates
//! ldxw %r2, [%r1+4]       memory operands `[%rN+off]` / `[%rN-off]`
//! jne %r0, 0x2a, fail     jump targets: labels or `+N`/`-N` slot offsets
//! call local func         bpf-to-bpf call; `call 5` helper; `call %r2` helper id in a register
//! lock fetch add [%r10-8], %r1
//! lddw %r1, map_value 3, 16   pseudo sources: map_fd, map_value, btf_id, func, map_idx, map_idx_value
//! fail:                   label definitions end with `:`; `#` starts a comment
//! ```
//!
//! Both directions are driven by the opcode table: a mnemonic selects table rows, and the row's
//! [`Form`] fixes the operands. `assemble(disassemble(p)) == p` for every instruction.

use alloc::borrow::ToOwned;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write as _};

use crate::insn::{Insn, PseudoSrc};
use crate::table::{ALIASES, Disc, Form, OPS, Op, OpSpec};

/// An assembly error, with the 1-based source line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsmError {
    /// 1-based line number in the source.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for AsmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl core::error::Error for AsmError {}

// === disassembler ===

/// Disassembles one instruction; jump targets are printed as `+N`/`-N` slot offsets.
pub fn disassemble_insn(insn: &Insn) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = write_insn(&mut out, insn);
    out
}

/// Disassembles a sequence of instructions, one per line, in a form [`assemble`] accepts.
pub fn disassemble(insns: &[Insn]) -> String {
    let mut out = String::new();
    for insn in insns {
        let _ = write_insn(&mut out, insn);
        out.push('\n');
    }
    out
}

fn write_imm32(out: &mut String, imm: i64) -> fmt::Result {
    let imm = imm as i32;
    if (-9999..=9999).contains(&imm) { write!(out, "{imm}") } else { write!(out, "{:#x}", imm as u32) }
}

fn write_mem(out: &mut String, reg: u8, off: i16) -> fmt::Result {
    if off < 0 { write!(out, "[%r{reg}-{}]", -i32::from(off)) } else { write!(out, "[%r{reg}+{off}]") }
}

fn write_target(out: &mut String, rel: i64) -> fmt::Result {
    if rel < 0 { write!(out, "{rel}") } else { write!(out, "+{rel}") }
}

fn write_insn(out: &mut String, insn: &Insn) -> fmt::Result {
    let spec = insn.op.spec();
    out.push_str(spec.name);
    match spec.form {
        Form::AluReg => write!(out, " %r{}, %r{}", insn.dst, insn.src),
        Form::AluImm => {
            write!(out, " %r{}, ", insn.dst)?;
            write_imm32(out, insn.imm)
        }
        Form::Unary | Form::Endian | Form::CallReg => write!(out, " %r{}", insn.dst),
        Form::JmpReg => {
            write!(out, " %r{}, %r{}, ", insn.dst, insn.src)?;
            write_target(out, i64::from(insn.off))
        }
        Form::JmpImm => {
            write!(out, " %r{}, ", insn.dst)?;
            write_imm32(out, insn.imm)?;
            out.push_str(", ");
            write_target(out, i64::from(insn.off))
        }
        Form::Ja => {
            out.push(' ');
            write_target(out, i64::from(insn.off))
        }
        Form::Ja32 => {
            out.push(' ');
            write_target(out, insn.imm)
        }
        Form::CallHelper => write!(out, " {}", insn.imm),
        Form::CallLocal => {
            out.push_str(" local ");
            write_target(out, insn.imm)
        }
        Form::CallKfunc => write!(out, " kfunc {}", insn.imm),
        Form::Exit => Ok(()),
        Form::LdImm64 => {
            write!(out, " %r{}, ", insn.dst)?;
            match insn.pseudo_src() {
                Some(PseudoSrc::Imm64) | None => write!(out, "{:#x}", insn.imm as u64),
                Some(kind) => {
                    let lo = insn.imm as u32 as i32;
                    let hi = (insn.imm as u64 >> 32) as u32 as i32;
                    write!(out, "{} {lo}", kind.keyword())?;
                    if hi != 0 {
                        write!(out, ", {hi}")?;
                    }
                    Ok(())
                }
            }
        }
        Form::LdAbs => {
            out.push(' ');
            write_imm32(out, insn.imm)
        }
        Form::LdInd => {
            write!(out, " %r{}, ", insn.src)?;
            write_imm32(out, insn.imm)
        }
        Form::Ldx => {
            write!(out, " %r{}, ", insn.dst)?;
            write_mem(out, insn.src, insn.off)
        }
        Form::St => {
            out.push(' ');
            write_mem(out, insn.dst, insn.off)?;
            out.push_str(", ");
            write_imm32(out, insn.imm)
        }
        Form::Stx | Form::Atomic => {
            out.push(' ');
            write_mem(out, insn.dst, insn.off)?;
            write!(out, ", %r{}", insn.src)
        }
    }
}

// === assembler ===

/// A jump target before label resolution.
enum Target {
    Rel(i64),
    Label(String),
}

struct Pending {
    insn: Insn,
    target: Option<Target>,
    line: usize,
}

/// Assembles source text into instructions (not yet validated; see [`crate::Program::from_insns`]).
pub fn assemble(source: &str) -> Result<Vec<Insn>, AsmError> {
    let mut labels: BTreeMap<String, usize> = BTreeMap::new();
    let mut pending: Vec<Pending> = Vec::new();
    let mut pc = 0usize;
    for (idx, raw_line) in source.lines().enumerate() {
        let line_no = idx + 1;
        let err = |message: String| AsmError { line: line_no, message };
        let mut line = raw_line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        // A label definition, optionally followed by an instruction on the same line.
        if let Some((name, rest)) = line.split_once(':') {
            let name = name.trim();
            if is_ident(name) {
                if labels.insert(name.to_owned(), pc).is_some() {
                    return Err(err(format!("label `{name}` is defined twice")));
                }
                line = rest.trim();
                if line.is_empty() {
                    continue;
                }
            }
        }
        let (insn, target) = parse_line(line).map_err(err)?;
        pc += insn.slots();
        pending.push(Pending { insn, target, line: line_no });
    }
    // Resolve labels now that every definition is known.
    let last_exit = pending.last().filter(|p| p.insn.op == Op::Exit).map(|_| pc - 1);
    let mut out = Vec::with_capacity(pending.len());
    let mut pc = 0usize;
    for p in pending {
        let mut insn = p.insn;
        if let Some(target) = p.target {
            let err = |message: String| AsmError { line: p.line, message };
            let rel = match target {
                Target::Rel(rel) => rel,
                Target::Label(name) => {
                    // The suite's dialect lets `exit` name the program's final exit instruction.
                    let dest = labels
                        .get(&name)
                        .copied()
                        .or(if name == "exit" { last_exit } else { None })
                        .ok_or_else(|| err(format!("undefined label `{name}`")))?;
                    dest as i64 - (pc as i64 + 1)
                }
            };
            match insn.op.form() {
                Form::Ja32 | Form::CallLocal => {
                    insn.imm = i64::from(
                        i32::try_from(rel).map_err(|_| err(format!("jump distance {rel} does not fit in 32 bits")))?,
                    );
                }
                _ => {
                    insn.off = i16::try_from(rel)
                        .map_err(|_| err(format!("jump distance {rel} does not fit in 16 bits; use ja32")))?;
                }
            }
        }
        pc += insn.slots();
        out.push(insn);
    }
    Ok(out)
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '.')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

fn parse_line(line: &str) -> Result<(Insn, Option<Target>), String> {
    let (mut mnemonic, mut rest) = split_word(line);
    let owned;
    if mnemonic == "lock" {
        let (op, r) = split_word(rest);
        if op.is_empty() {
            return Err("Invalid number of operands for lock".into());
        }
        let (op, r) = if op == "fetch" {
            let (op2, r2) = split_word(r);
            if op2.is_empty() {
                return Err("Invalid number of operands for lock".into());
            }
            (format!("fetch {op2}"), r2)
        } else {
            (op.to_owned(), r)
        };
        owned = format!("lock {op}");
        mnemonic = &owned;
        rest = r;
        // `lock` forms take a memory operand and a register.
        if rest.split(',').filter(|s| !s.trim().is_empty()).count() != 2 {
            return Err("Invalid number of operands for lock".into());
        }
    }
    let canonical = ALIASES.iter().find(|(a, _)| *a == mnemonic).map_or(mnemonic, |(_, c)| c);
    let rows: Vec<&OpSpec> = OPS.iter().filter(|r| r.name == canonical).collect();
    if rows.is_empty() {
        return Err(format!("unknown mnemonic `{mnemonic}`"));
    }
    let operands: Vec<&str> =
        if rest.trim().is_empty() { Vec::new() } else { rest.split(',').map(str::trim).collect() };
    let row = rows.iter().find(|r| shape_matches(r.form, &operands)).unwrap_or(&rows[0]);
    parse_operands(row, &operands)
}

fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

fn is_reg(s: &str) -> bool {
    s.starts_with('%') || (s.starts_with('r') && s.len() > 1 && s[1..].bytes().all(|b| b.is_ascii_digit()))
}

fn shape_matches(form: Form, ops: &[&str]) -> bool {
    match form {
        Form::AluReg | Form::JmpReg => ops.len() >= 2 && is_reg(ops[1]),
        Form::AluImm | Form::JmpImm => ops.len() >= 2 && !is_reg(ops[1]),
        Form::CallLocal => ops.first().is_some_and(|o| o.starts_with("local")),
        Form::CallKfunc => ops.first().is_some_and(|o| o.starts_with("kfunc")),
        Form::CallReg => ops.first().is_some_and(|o| is_reg(o)),
        Form::CallHelper => {
            ops.first().is_some_and(|o| !is_reg(o) && !o.starts_with("local") && !o.starts_with("kfunc"))
        }
        _ => true,
    }
}

fn expect_count(name: &str, ops: &[&str], n: usize) -> Result<(), String> {
    if ops.len() != n {
        return Err(format!("`{name}` takes {n} operand(s), found {}", ops.len()));
    }
    Ok(())
}

fn parse_reg(s: &str) -> Result<u8, String> {
    let digits = s
        .strip_prefix("%r")
        .or_else(|| s.strip_prefix('r'))
        .ok_or_else(|| format!("expected a register like %r1, found `{s}`"))?;
    match digits.parse::<u8>() {
        Ok(n) if n <= 10 => Ok(n),
        _ => Err(format!("Invalid register `{s}` (registers are %r0..%r10)")),
    }
}

/// Parses a decimal or `0x` hexadecimal integer with an optional sign.
pub fn parse_int(s: &str) -> Result<i128, String> {
    let t = s.trim();
    let bad = || format!("expected a number, found `{s}`");
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (digits, radix) = match body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (body, 10),
    };
    // `from_str_radix` accepts a sign of its own; the dialect allows one only before the number.
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let value = i128::from_str_radix(digits, radix).map_err(|_| bad())?;
    if neg { value.checked_neg().ok_or_else(bad) } else { Ok(value) }
}

/// A 32-bit immediate: decimal values must fit a signed 32-bit integer; hexadecimal values may
/// also be written as their unsigned 32-bit pattern (`0xffffff80` is -128).
fn parse_imm32(s: &str) -> Result<i64, String> {
    let v = parse_int(s)?;
    let is_hex = s.trim().trim_start_matches(['-', '+']).starts_with("0x");
    let max = if is_hex { i128::from(u32::MAX) } else { i128::from(i32::MAX) };
    if v < i128::from(i32::MIN) || v > max {
        return Err(format!("immediate {s} does not fit in 32 bits"));
    }
    Ok(i64::from(v as i64 as u32 as i32))
}

fn parse_mem(s: &str) -> Result<(u8, i16), String> {
    let inner = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| format!("expected a memory operand like [%r1+8], found `{s}`"))?
        .trim();
    let split = inner.find(['+', '-']);
    let (reg, off) = match split {
        Some(i) => (inner[..i].trim(), parse_int(&inner[i..])?),
        None => (inner, 0),
    };
    let off = i16::try_from(off).map_err(|_| format!("offset {off} does not fit in 16 bits"))?;
    Ok((parse_reg(reg)?, off))
}

fn parse_target(s: &str) -> Result<Target, String> {
    if is_ident(s) {
        Ok(Target::Label(s.to_owned()))
    } else {
        Ok(Target::Rel(i64::try_from(parse_int(s)?).map_err(|_| format!("jump distance {s} is too large"))?))
    }
}

fn parse_operands(row: &OpSpec, ops: &[&str]) -> Result<(Insn, Option<Target>), String> {
    let mut insn = Insn::new(row.op);
    match row.disc {
        Disc::Off(off) => insn.off = off,
        Disc::Imm(imm) => insn.imm = i64::from(imm),
        Disc::Src(src) => insn.src = src,
        Disc::None => {}
    }
    let name = row.name;
    let mut target = None;
    match row.form {
        Form::AluReg => {
            expect_count(name, ops, 2)?;
            insn.dst = parse_reg(ops[0])?;
            insn.src = parse_reg(ops[1])?;
        }
        Form::AluImm => {
            expect_count(name, ops, 2)?;
            insn.dst = parse_reg(ops[0])?;
            insn.imm = parse_imm32(ops[1])?;
        }
        Form::Unary | Form::Endian | Form::CallReg => {
            expect_count(name, ops, 1)?;
            insn.dst = parse_reg(ops[0])?;
        }
        Form::JmpReg => {
            expect_count(name, ops, 3)?;
            insn.dst = parse_reg(ops[0])?;
            insn.src = parse_reg(ops[1])?;
            target = Some(parse_target(ops[2])?);
        }
        Form::JmpImm => {
            expect_count(name, ops, 3)?;
            insn.dst = parse_reg(ops[0])?;
            insn.imm = parse_imm32(ops[1])?;
            target = Some(parse_target(ops[2])?);
        }
        Form::Ja | Form::Ja32 => {
            expect_count(name, ops, 1)?;
            target = Some(parse_target(ops[0])?);
        }
        Form::CallHelper => {
            expect_count(name, ops, 1)?;
            insn.imm = parse_imm32(ops[0])?;
        }
        Form::CallLocal => {
            expect_count(name, ops, 1)?;
            target = Some(parse_target(ops[0].trim_start_matches("local").trim())?);
        }
        Form::CallKfunc => {
            expect_count(name, ops, 1)?;
            insn.imm = parse_imm32(ops[0].trim_start_matches("kfunc").trim())?;
        }
        Form::Exit => expect_count(name, ops, 0)?,
        Form::LdImm64 => {
            if !(2..=3).contains(&ops.len()) {
                return Err(format!("`lddw` takes 2 operands, found {}", ops.len()));
            }
            insn.dst = parse_reg(ops[0])?;
            let (word, value) = split_word(ops[1]);
            let kind = PseudoSrc::ALL.iter().skip(1).find(|k| k.keyword() == word);
            match kind {
                Some(kind) => {
                    insn.src = *kind as u8;
                    let lo = parse_imm32(value)?;
                    let hi = if ops.len() == 3 { parse_imm32(ops[2])? } else { 0 };
                    insn.imm = ((hi as u32 as u64) << 32 | lo as u32 as u64) as i64;
                }
                None => {
                    expect_count(name, ops, 2)?;
                    let v = parse_int(ops[1])?;
                    if v < i64::MIN as i128 || v > u64::MAX as i128 {
                        return Err(format!("immediate {} does not fit in 64 bits", ops[1]));
                    }
                    insn.imm = v as u64 as i64;
                }
            }
        }
        Form::LdAbs => {
            expect_count(name, ops, 1)?;
            insn.imm = parse_imm32(ops[0])?;
        }
        Form::LdInd => {
            expect_count(name, ops, 2)?;
            insn.src = parse_reg(ops[0])?;
            insn.imm = parse_imm32(ops[1])?;
        }
        Form::Ldx => {
            expect_count(name, ops, 2)?;
            insn.dst = parse_reg(ops[0])?;
            (insn.src, insn.off) = parse_mem(ops[1])?;
        }
        Form::St => {
            expect_count(name, ops, 2)?;
            (insn.dst, insn.off) = parse_mem(ops[0])?;
            insn.imm = parse_imm32(ops[1])?;
        }
        Form::Stx | Form::Atomic => {
            expect_count(name, ops, 2)?;
            (insn.dst, insn.off) = parse_mem(ops[0])?;
            insn.src = parse_reg(ops[1])?;
        }
    }
    Ok((insn, target))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insn::sample_insns;

    #[test]
    fn every_table_row_round_trips_through_text() {
        for insn in sample_insns() {
            let text = disassemble_insn(&insn);
            let back = assemble(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(back, [insn], "{text}");
        }
    }

    #[test]
    fn labels_and_exit_target() {
        let insns = assemble("mov %r0, 1\njeq %r0, 1, done\nja exit\ndone:\nexit").unwrap();
        assert_eq!(insns[1].off, 1);
        assert_eq!(insns[2].off, 0);
        assert!(assemble("ja nowhere\nexit").unwrap_err().message.contains("nowhere"));
    }

    #[test]
    fn dialect_details() {
        let i = assemble("jne32 %r2, 0xffffff80, +0").unwrap()[0];
        assert_eq!(i.imm, -128);
        assert!(assemble("mov32 %r0, 0x100000000").is_err());
        assert!(assemble("mov32 %r0, 2147483648").is_err(), "decimal immediates are signed");
        assert_eq!(assemble("mov32 %r0, 0x80000000").unwrap()[0].imm, i64::from(i32::MIN));
        assert!(assemble("ldxb %r0, [%r1+0x10000]").is_err());
        assert!(assemble("ldxb %r0, %r1").is_err());
        assert!(assemble("or %r0, %r50").unwrap_err().message.contains("Invalid register"));
        assert!(assemble("lock").unwrap_err().message.contains("Invalid number of operands for lock"));
        assert!(assemble("lock or [%r10-8]").is_err());
        assert!(assemble("ldxq %r0, %r1").is_err());
        // Found by fuzzing: a sign after `0x` used to reach `i128::MIN` and overflow on negation.
        assert!(assemble("mov %r0, -0x-80000000000000000000000000000000").is_err());
        assert!(assemble("mov %r0, 0x-5").is_err());
        assert!(assemble("mov %r0, 0x+5").is_err());
        assert_eq!(parse_int("-0x10"), Ok(-16));
        assert!(assemble("lddw %r0").is_err());
        let i = assemble("lddw %r0, 0xFFFFFFFFFFFFFFFF").unwrap()[0];
        assert_eq!(i.imm, -1);
        let i = assemble("swap16 %r3").unwrap()[0];
        assert_eq!(i.op, Op::Bswap16);
        let i = assemble("call %r2").unwrap()[0];
        assert_eq!((i.op, i.dst), (Op::CallReg, 2));
    }
}
