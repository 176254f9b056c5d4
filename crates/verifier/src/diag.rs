//! Diagnostics: what is wrong, where, why, and how to fix it.

use core::fmt;

/// The kind of problem a [`Diagnostic`] reports (stable names, for tools and tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Code {
    /// The bytes are not a valid eBPF program.
    Decode,
    /// An instruction no path reaches.
    Unreachable,
    /// A jump leaves its subprogram, or a subprogram can run past its end.
    BadControlFlow,
    /// Subprograms call each other recursively.
    Recursion,
    /// An instruction duet does not verify (kfuncs, `callx`, BTF-typed loads).
    Unsupported,
    /// Division or modulo by a constant zero.
    DivisionByZero,
    /// A shift by a constant at least as wide as the operand.
    BadShift,
    /// A register read before it was written.
    UninitRegister,
    /// Stack bytes read before they were written.
    UninitStack,
    /// A stack access outside the frame, misaligned, or corrupting a spilled pointer.
    StackAccess,
    /// The call chain uses too much stack, or is too deep.
    StackLimit,
    /// A packet access not proven to lie before `data_end`.
    PacketBounds,
    /// A map value access outside the value.
    MapValueBounds,
    /// A ring buffer record access outside the record.
    RecordBounds,
    /// Dereferencing a pointer that may be NULL.
    NullCheck,
    /// Memory accessed through something that is not a pointer to memory.
    InvalidPointer,
    /// A context field the program type does not allow, or a write to a read-only one.
    ContextAccess,
    /// A socket field programs may not read (the kernel's `bpf_sock_is_valid_access`), or a
    /// write through a socket pointer.
    SocketAccess,
    /// A write to read-only memory (read-only global data).
    ReadOnly,
    /// A read of memory programs may only write (a map created with `BPF_F_WRONLY_PROG`).
    WriteOnly,
    /// Arithmetic a pointer may not take part in.
    PointerArithmetic,
    /// A comparison involving a pointer that cannot be allowed.
    PointerComparison,
    /// A pointer stored where it would leak (map, packet, helper argument, return value).
    PointerLeak,
    /// A helper call with arguments that do not fit its prototype.
    HelperArgs,
    /// A helper that does not exist, or is not available to this program type.
    UnknownHelper,
    /// A reference (ring buffer record) not released on some path.
    ReferenceLeak,
    /// A released or invalidated pointer used again.
    StalePointer,
    /// A return value outside the range the program type allows.
    ReturnValue,
    /// A loop the verifier cannot prove to terminate.
    Loop,
    /// The program is too complex to verify within the budget.
    TooComplex,
    /// A map reference that does not exist or cannot be used this way.
    BadMap,
}

impl Code {
    /// The stable name (`packet-bounds`, `null-check`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Code::Decode => "decode",
            Code::Unreachable => "unreachable",
            Code::BadControlFlow => "control-flow",
            Code::Recursion => "recursion",
            Code::Unsupported => "unsupported",
            Code::DivisionByZero => "division-by-zero",
            Code::BadShift => "bad-shift",
            Code::UninitRegister => "uninit-register",
            Code::UninitStack => "uninit-stack",
            Code::StackAccess => "stack-access",
            Code::StackLimit => "stack-limit",
            Code::PacketBounds => "packet-bounds",
            Code::MapValueBounds => "map-value-bounds",
            Code::RecordBounds => "record-bounds",
            Code::NullCheck => "null-check",
            Code::InvalidPointer => "invalid-pointer",
            Code::ContextAccess => "context-access",
            Code::SocketAccess => "socket-access",
            Code::ReadOnly => "read-only",
            Code::WriteOnly => "write-only",
            Code::PointerArithmetic => "pointer-arithmetic",
            Code::PointerComparison => "pointer-comparison",
            Code::PointerLeak => "pointer-leak",
            Code::HelperArgs => "helper-args",
            Code::UnknownHelper => "unknown-helper",
            Code::ReferenceLeak => "reference-leak",
            Code::StalePointer => "stale-pointer",
            Code::ReturnValue => "return-value",
            Code::Loop => "loop",
            Code::TooComplex => "too-complex",
            Code::BadMap => "bad-map",
        }
    }
}

/// A source location from BTF line info.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceLine {
    /// Source file.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// Column (0 when unknown).
    pub column: u32,
    /// The line's text as the compiler recorded it.
    pub text: String,
}

impl fmt::Display for SourceLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.rsplit('/').next().unwrap_or(&self.file);
        if self.column > 0 {
            write!(f, "{file}:{}:{}", self.line, self.column)
        } else {
            write!(f, "{file}:{}", self.line)
        }
    }
}

/// One problem the verifier found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// What kind of problem.
    pub code: Code,
    /// The instruction (slot index), when the problem has one.
    pub pc: Option<usize>,
    /// The instruction, disassembled.
    pub insn: Option<String>,
    /// What is wrong, in one sentence.
    pub message: String,
    /// The registers involved, as the verifier saw them on the failing path.
    pub state: Option<String>,
    /// The source line of the instruction.
    pub source: Option<SourceLine>,
    /// Related facts (where a bound was checked, where a record was reserved, ...).
    pub notes: Vec<String>,
    /// Why this is unsafe and the usual fix.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with only a code and a message.
    pub fn new(code: Code, pc: Option<usize>, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            pc,
            insn: None,
            message: message.into(),
            state: None,
            source: None,
            notes: Vec::new(),
            help: None,
        }
    }

    /// Adds the explanation and fix.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a related fact.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Adds the register state.
    pub fn state(mut self, state: impl Into<String>) -> Self {
        self.state = Some(state.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error[{}]: {}", self.code.name(), self.message)?;
        if let Some(src) = &self.source {
            write!(f, "\n  --> {src}")?;
            let text = src.text.trim();
            if !text.is_empty() {
                write!(f, "\n   |     {text}")?;
            }
        }
        if let (Some(pc), Some(insn)) = (self.pc, &self.insn) {
            write!(f, "\n   = insn {pc}: {insn}")?;
        } else if let Some(pc) = self.pc {
            write!(f, "\n   = insn {pc}")?;
        }
        if let Some(state) = &self.state {
            write!(f, "\n   = state: {state}")?;
        }
        for note in &self.notes {
            write!(f, "\n   = note: {note}")?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n   = help: {help}")?;
        }
        Ok(())
    }
}
