//! # duet-isa — the eBPF instruction set, defined once
//!
//! **API boundary.** Every other duet crate learns what an eBPF instruction is from here.
//!
//! The [`table`] module holds one row per instruction of RFC 9669 (v4 ISA, including signed
//! division, `movsx`, sign-extending loads, unconditional byte swaps, `ja32`/`gotol`, atomics),
//! the legacy packet loads (`ldabs`/`ldind`), and `callx`. The decoder ([`Program::decode`]),
//! encoder ([`Insn::encode`]), validity checks, [disassembler](asm::disassemble) and
//! [assembler](asm::assemble) are all driven by that table, so they cannot drift apart.
//!
//! `no_std` (with `alloc`); no I/O, no unsafe code.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod asm;
pub mod insn;
pub mod table;

pub use asm::{AsmError, assemble, disassemble, disassemble_insn};
pub use insn::{DecodeError, DecodeErrorKind, FRAME_POINTER, Insn, NUM_REGS, Program, PseudoSrc, RawInsn, decode_insn};
pub use table::{Form, OPS, Op, OpSpec, Origin, Width};
