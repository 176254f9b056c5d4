//! The one place that knows which target we build for. Each backend has the same items:
//!
//! - `Handle`: how a map is named to the executor (its address in BPF, its manifest id in Wasm,
//!   its address and spec on the host);
//! - map operations on raw key/value pointers (`map_get`, `map_update`, ...), returning the
//!   kernel's negative errno values;
//! - the plain helpers (`ktime_get_ns`, `get_prandom_u32`, `get_smp_processor_id`, `trace`).
//!
//! Everything above `sys` is target-independent.

#[cfg(target_arch = "bpf")]
mod bpf;
#[cfg(target_arch = "bpf")]
pub(crate) use bpf::*;

#[cfg(target_arch = "wasm32")]
mod wasm;
#[cfg(target_arch = "wasm32")]
pub(crate) use wasm::*;

#[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
pub(crate) mod host;
#[cfg(not(any(target_arch = "bpf", target_arch = "wasm32")))]
pub(crate) use host::*;
