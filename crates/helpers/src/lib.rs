//! # duet-helpers — what duet's engines share
//!
//! **API boundary.** duet runs a program in three engines — duet-vm's interpreter and JIT, and
//! duet-wasm's wasmtime host — and the kernel. What a program may call and what each call does
//! must be the same in all of them, so it lives here, below the engines, which stay peers:
//!
//! - [`table`]: the helper table, one row per helper id — name, prototype (argument and return
//!   kinds, the program types that may call it), whether duet-vm provides it and which Wasm
//!   import does its work. The verifier checks calls against it, duet-vm registers and names
//!   helpers from it, duet-wasm's imports are its rows. It is to helpers what
//!   `duet_isa::table::OPS` is to instructions.
//! - [`Env`]: time, randomness and the CPU, injected into every engine.
//! - [`http`]: duet's http programs (docs/ABI.md version 2) — the context, the exchange a sidecar
//!   implements, and the one implementation of the http helpers' rules.
//! - [`semantics`]: helper semantics over duet-maps that the VM's helpers and the Wasm imports
//!   both perform (errnos, which maps hold values, `bpf_csum_diff`, `bpf_trace_printk`).
//! - [`SkbHook`]: the `struct __sk_buff` hooks.
//! - [`xdp`]: the XDP buffer's layout and the kernel's rules for moving a packet's bounds.
//!
//! Nothing here touches guest memory: engines map guest pointers to slices (each with its own
//! bounds checks) and then call these functions. The crate does no I/O and has no unsafe code.
#![forbid(unsafe_code)]

mod env;
pub mod http;
pub mod semantics;
mod skb;
pub mod table;
pub mod xdp;

pub use env::{DEFAULT_MAX_MAP_MEMORY, Env};
pub use skb::{ETH_HLEN, SkbHook};
pub use table::{HELPERS, HelperSpec, helper};

/// The longest chain of tail calls (`MAX_TAIL_CALL_CNT`): the next `bpf_tail_call` fails and the
/// program goes on, in the kernel and in every duet engine.
pub const MAX_TAIL_CALLS: u32 = 33;
