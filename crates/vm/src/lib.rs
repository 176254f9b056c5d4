//! # duet-vm — duet's userspace eBPF engines
//!
//! **API boundary.** The [`Interpreter`] is the reference engine: it executes a decoded
//! [`duet_isa::Program`] with kernel-exact semantics (RFC 9669 and Linux are the authority) and
//! checks every memory access against the region it falls in — the current call frame's stack
//! (and its callers'), the input memory, and regions helpers expose. A fault is a [`Trap`] value
//! with the instruction index and the reason; it is never a panic and never undefined behaviour.
//!
//! The [`Jit`] compiles a `VerifiedProgram` to native code with Cranelift: accesses the
//! verifier proved in bounds become plain loads and stores, everything else goes through the same
//! region table, and results, traps, helpers and `Env` are the interpreter's. Engines accept a
//! `VerifiedProgram`; only the checked engines (`Interpreter::new_unverified`,
//! [`Jit::new_checked`], which checks every access and counts the budget) take unverified code.
//! No I/O happens here.
//!
//! What the engines share with duet-wasm lives below both, in duet-helpers: the helper table
//! (the VM registers exactly its rows marked `vm` and names the others when it refuses a
//! program), [`Env`], the map budget [`DEFAULT_MAX_MAP_MEMORY`], [`SkbHook`] and the helpers'
//! semantics over duet-maps; duet-vm re-exports the names its users import.
//!
//! Packet programs run on a frame as the kernel's `BPF_PROG_TEST_RUN` runs them: XDP
//! ([`Interpreter::run_xdp`]) and the `struct __sk_buff` hooks — socket filters, TC classifiers
//! and cgroup skb programs ([`Interpreter::run_skb`] with a [`SkbHook`]).
//!
//! [`http`] runs duet's userspace-only HTTP programs (docs/ABI.md version 2): it re-exports
//! duet-helpers' context, [`http::HttpExchange`] (which a sidecar implements) and the one
//! implementation of the http helpers' rules, shared with duet-wasm, and registers the helpers
//! that apply them to guest memory. A sidecar loads an object once ([`Module::load`], `Send + Sync`,
//! share it in an `Arc`) and makes one [`HttpRunner`] per worker thread
//! ([`Module::http_runner`], interpreter or JIT); maps are the module's ([`Module::map`]).
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(target_endian = "big")]
compile_error!("duet-vm assumes a little-endian host, as eBPF's byte-order instructions are defined relative to it");

mod helpers;
pub mod http;
mod interp;
mod jit;
mod memory;
mod module;
mod skb;
mod trap;

pub use helpers::{Helper, HelperContext, HelperError, HelperOutcome, Helpers, kernel_helper_name, unwind_helper};
pub use interp::{
    Config, Interpreter, LoadError, MAX_CALL_DEPTH, MAX_TAIL_CALLS, STACK_SIZE, XDP_FRAME_SIZE, XDP_HEADROOM,
    XDP_TAILROOM, XdpPacket,
};
pub use jit::{CompileStats, Jit, JitError};
pub use memory::{MAX_REGIONS, Region, RegionKind};
// What the engines share lives in duet-helpers; these keep the paths duet-vm's users know.
pub use duet_helpers::semantics::csum_diff;
pub use duet_helpers::{DEFAULT_MAX_MAP_MEMORY, Env, SkbHook};
pub use module::{Engine, HttpRunner, LoadOptions, Module, ModuleError};
pub use trap::{Trap, TrapKind};
