//! HTTP programs (docs/ABI.md, "HTTP programs (ABI version 2)") in the VM: duet-helpers' http
//! rules, re-exported, and the helpers 10000..=10005 that apply them to guest memory.
//!
//! The rules themselves (the context, [`HttpExchange`], [`HttpRunState`] and its checks and
//! errnos) live in `duet_helpers::http`, where duet-wasm's `http_*` imports call the same code,
//! so both executors agree by construction. This module maps guest pointers to slices through the
//! region table (an out-of-bounds pointer traps before anything else) and calls them.

pub use duet_helpers::http::*;

use crate::helpers::{HelperContext, HelperError, HelperOutcome, Helpers};
use crate::memory::MemoryMap;

// === The VM's side ===

/// The exchange of the run in progress, as the helpers reach it (through [`HelperContext`]).
pub(crate) struct HttpAccess<'a> {
    pub(crate) state: &'a mut HttpRunState,
    pub(crate) exchange: &'a mut dyn HttpExchange,
}

/// One run's exchange and state, held by the driver of the run (`run_http`).
pub(crate) struct HttpRun<'e> {
    pub(crate) state: &'e mut HttpRunState,
    pub(crate) exchange: &'e mut dyn HttpExchange,
}

impl HttpRun<'_> {
    /// Reborrows both for one helper call.
    pub(crate) fn access(&mut self) -> HttpAccess<'_> {
        HttpAccess { state: &mut *self.state, exchange: &mut *self.exchange }
    }
}

fn ret(v: i64) -> Result<HelperOutcome, HelperError> {
    Ok(HelperOutcome::Return(v as u64))
}

fn errno(res: Result<(), HttpError>) -> Result<HelperOutcome, HelperError> {
    ret(change_result(res))
}

/// Guest bytes `addr..addr + len` for argument `arg`, or a trap; empty for `len == 0`, whatever
/// the pointer (a NULL buffer of length 0 asks only for the length).
fn guest<'m>(memory: &'m MemoryMap<'_>, arg: u8, addr: u64, len: u64) -> Result<&'m [u8], HelperError> {
    if len == 0 {
        return Ok(&[]);
    }
    memory.slice(addr, len).map_err(|trap| HelperError::BadPointer { arg, trap })
}

/// Checks that the buffer argument `arg` is writable guest memory.
fn check_buffer(memory: &MemoryMap<'_>, arg: u8, addr: u64, len: u64) -> Result<(), HelperError> {
    if len == 0 {
        return Ok(());
    }
    memory.translate_write(addr, len).map(drop).map_err(|trap| HelperError::BadPointer { arg, trap })
}

/// Writes a helper's result into the buffer argument `arg` (see [`buffer_result`]).
fn fill_guest(
    memory: &MemoryMap<'_>,
    arg: u8,
    addr: u64,
    len: u64,
    result: Result<&[u8], HttpError>,
) -> Result<HelperOutcome, HelperError> {
    let (bytes, value) = buffer_result(result, usize::try_from(len).unwrap_or(usize::MAX));
    if len > 0 {
        memory.fill(addr, len, bytes).map_err(|trap| HelperError::BadPointer { arg, trap })?;
    }
    ret(value)
}

/// Registers the http helpers (10000..=10005) in `h`, for interpreters and JITs built from
/// [`Helpers`] directly ([`crate::Module`] registers them itself). Without an exchange (a program
/// run any other way than `run_http`) each returns `-EPERM` after checking its pointers.
pub fn register_helpers(h: &mut Helpers) {
    let no_exchange = || ret(HttpError::NotPermitted.errno());
    // http_field(ctx, field, buf, buf_len)
    h.register(HTTP_FIELD, move |cx, a| {
        let HelperContext { memory, http } = cx;
        check_buffer(memory, 3, a[2], a[3])?;
        let Some(http) = http else { return no_exchange() };
        let value = http.state.field(&*http.exchange, a[1]);
        fill_guest(memory, 3, a[2], a[3], value.as_deref().map_err(|e| *e))
    });
    // http_header_get(ctx, name, name_len, buf, buf_len)
    h.register(HTTP_HEADER_GET, move |cx, a| {
        let HelperContext { memory, http } = cx;
        let name = guest(memory, 2, a[1], a[2])?;
        check_buffer(memory, 4, a[3], a[4])?;
        let Some(http) = http else { return no_exchange() };
        let value = http.state.header_get(&*http.exchange, name);
        fill_guest(memory, 4, a[3], a[4], value)
    });
    for (id, add) in [(HTTP_HEADER_SET, false), (HTTP_HEADER_ADD, true)] {
        // http_header_set / http_header_add(ctx, name, name_len, value, value_len)
        h.register(id, move |cx, a| {
            let HelperContext { memory, http } = cx;
            let name = guest(memory, 2, a[1], a[2])?;
            let value = guest(memory, 4, a[3], a[4])?;
            let Some(http) = http else { return no_exchange() };
            errno(if add {
                http.state.header_add(http.exchange, name, value)
            } else {
                http.state.header_set(http.exchange, name, value)
            })
        });
    }
    // http_header_remove(ctx, name, name_len)
    h.register(HTTP_HEADER_REMOVE, move |cx, a| {
        let HelperContext { memory, http } = cx;
        let name = guest(memory, 2, a[1], a[2])?;
        let Some(http) = http else { return no_exchange() };
        errno(http.state.header_remove(http.exchange, name))
    });
    // http_respond(ctx, status, body, body_len)
    h.register(HTTP_RESPOND, move |cx, a| {
        let HelperContext { memory, http } = cx;
        let body = guest(memory, 3, a[2], a[3])?;
        let Some(http) = http else { return no_exchange() };
        errno(http.state.respond(http.exchange, a[1], body))
    });
}
