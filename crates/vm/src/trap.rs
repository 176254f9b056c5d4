//! Guest faults as values.

/// What went wrong while a program ran.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TrapKind {
    /// A load touched memory outside every readable region.
    #[error("out-of-bounds read of {size} bytes at {addr:#x}")]
    OutOfBoundsRead {
        /// Guest address of the access.
        addr: u64,
        /// Access size in bytes.
        size: u64,
    },
    /// A store touched memory outside every writable region.
    #[error("out-of-bounds write of {size} bytes at {addr:#x}")]
    OutOfBoundsWrite {
        /// Guest address of the access.
        addr: u64,
        /// Access size in bytes.
        size: u64,
    },
    /// An atomic access was not aligned to its size.
    #[error("misaligned atomic access of {size} bytes at {addr:#x}")]
    MisalignedAtomic {
        /// Guest address of the access.
        addr: u64,
        /// Access size in bytes.
        size: u64,
    },
    /// A local call would exceed the maximum number of frames.
    #[error("call depth exceeds {max} frames")]
    CallDepthExceeded {
        /// The limit.
        max: usize,
    },
    /// A call named a helper id that is not registered (only `callx` can reach this at run time).
    #[error("unknown helper {0}")]
    UnknownHelper(u64),
    /// A helper reported an error.
    #[error("helper {id} failed: {error}")]
    HelperFailed {
        /// The helper id.
        id: u32,
        /// The helper's error (in the message only, so chains print it once).
        error: Box<crate::HelperError>,
    },
    /// A load or store of the program context that the program type does not allow.
    #[error("invalid {} of {size} bytes at context offset {offset}", if *write { "write" } else { "read" })]
    ContextAccess {
        /// Offset into the context structure.
        offset: u64,
        /// Access size in bytes.
        size: u64,
        /// Whether it was a store.
        write: bool,
    },
    /// Something valid eBPF that duet's userspace VM does not support (yet).
    #[error("not supported in duet's userspace VM: {0}")]
    Unsupported(&'static str),
    /// The configured instruction budget ran out.
    #[error("instruction budget of {0} instructions exhausted")]
    BudgetExhausted(u64),
    /// A call to a kernel function by BTF id; only the kernel can run these.
    #[error("kfunc calls (BTF id {0}) run only in the kernel")]
    Kfunc(i64),
    /// An `lddw` referring to a map, BTF object or function that no loader has resolved.
    #[error("lddw with source kind {0:?} needs a loader to resolve it")]
    UnresolvedPseudo(duet_isa::PseudoSrc),
}

/// A fault, with the slot index of the instruction that caused it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("instruction {pc}: {kind}")]
pub struct Trap {
    /// Slot index of the faulting instruction.
    pub pc: usize,
    /// What went wrong.
    #[source]
    pub kind: TrapKind,
}
