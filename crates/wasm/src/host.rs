//! The `duet` import module: the host side of every import in docs/ABI.md, with kernel semantics
//! from duet-maps, and bounds checks on every guest pointer.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use duet_helpers::Env;
use duet_helpers::http::{change_result, fill_buffer};
use duet_helpers::semantics::{NO_VALUES, map_errno};
use duet_maps::{Map, MapType};
use wasmtime::{Caller, Linker, Memory, StoreLimits};

use crate::exchange::ExchangeSlot;
use crate::value::ValueRef;

/// The import module name.
pub(crate) const IMPORT_MODULE: &str = "duet";

/// Every import the host provides, by name, in docs/ABI.md's order (the linker checks their
/// signatures): the helper table's `wasm_import`s (`duet_helpers::table::HELPERS`) and
/// `map_add_u64`, which has no helper (eBPF programs add to a value in place with an atomic
/// instruction on the value pointer).
pub(crate) const IMPORTS: [&str; 18] = [
    "map_lookup",
    "map_update",
    "map_delete",
    "map_add_u64",
    "ktime_get_ns",
    "get_prandom_u32",
    "get_smp_processor_id",
    "trace",
    "ringbuf_output",
    "tail_call",
    "xdp_adjust_head",
    "xdp_adjust_tail",
    "http_field",
    "http_header_get",
    "http_header_set",
    "http_header_add",
    "http_header_remove",
    "http_respond",
];

/// Whether `name` is one of the imports of ABI version 2 (http programs only): the Wasm imports
/// of duet's own helpers in the helper table.
pub(crate) fn is_http_import(name: &str) -> bool {
    duet_helpers::HELPERS.iter().any(|h| h.is_duet() && h.wasm_import == Some(name))
}

const ENOENT: i64 = -2;
const EINVAL: i64 = -22;
/// `BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP`: the only flags `bpf_ringbuf_output` accepts.
const RINGBUF_OUTPUT_FLAGS: i64 = 1 | 2;

/// Most `trace` lines one call keeps; later ones in the same call are dropped (and counted).
pub const MAX_TRACE_LINES_PER_CALL: u32 = 64;
/// Most `trace` lines the module holds until [`crate::WasmModule::take_trace`] drains them; later
/// ones are dropped (and counted).
pub const MAX_TRACE_LINES: usize = 4096;
/// Longest `trace` line kept, in bytes (the kernel's `bpf_trace_printk` buffer); longer
/// messages are cut there.
pub const MAX_TRACE_LINE_BYTES: usize = 1024;

/// What every instance of one module shares: the maps (by manifest id), the environment and the
/// trace log.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) maps: Vec<Arc<Map>>,
    /// The module's programs (export, kind) in the order of `WasmModule::programs`: what a prog
    /// array slot's number names.
    pub(crate) programs: Vec<(String, crate::ProgramKind)>,
    pub(crate) env: Env,
    pub(crate) log: Mutex<TraceLog>,
}

/// `trace` lines not yet taken, and how many were dropped since the last take.
#[derive(Debug, Default)]
pub struct TraceLog {
    /// The lines, oldest first.
    pub lines: Vec<String>,
    /// Lines dropped because a call or the log was over its limit.
    pub dropped: u64,
}

/// The data of one store (one instance).
pub(crate) struct Host {
    pub(crate) shared: Arc<Shared>,
    pub(crate) limits: StoreLimits,
    /// The instance's exported memory; `None` until instantiation has finished.
    pub(crate) memory: Option<Memory>,
    /// `trace` calls in the current call into the guest.
    pub(crate) traced: u32,
    /// The CPU the instance runs as: per-CPU map slot and `get_smp_processor_id`.
    pub(crate) cpu: usize,
    /// The exchange of the http run in progress; `None` in every other run, where the `http_*`
    /// imports answer `-EPERM`.
    pub(crate) http: Option<ExchangeSlot>,
    /// The XDP run in progress (its packet, and how many tail calls deep it is); `None` in every
    /// other run, where `tail_call` answers `-EINVAL`.
    pub(crate) xdp: Option<XdpRun>,
}

/// An XDP run's buffer in guest memory (laid out as `BPF_PROG_TEST_RUN` lays it out:
/// `duet_helpers::xdp`), where its packet lies in it now, and its depth of tail calls.
#[derive(Clone, Copy, Debug)]
pub(crate) struct XdpRun {
    /// The guest address of the buffer's start.
    pub(crate) base: u32,
    /// The packet's bounds in the buffer.
    pub(crate) bounds: duet_helpers::xdp::Bounds,
    pub(crate) depth: u32,
}

impl XdpRun {
    /// The guest address and length of the packet, as the program's export takes them.
    pub(crate) fn packet(&self) -> (i32, i32) {
        ((self.base as usize + self.bounds.data) as i32, (self.bounds.data_end - self.bounds.data) as i32)
    }
}

/// `-E2BIG`: what `tail_call` answers past `duet_helpers::MAX_TAIL_CALLS`.
const E2BIG: i64 = -7;

/// A fault the host found in a call from the guest: the call traps with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuestFault {
    /// A prog array slot names a program the module does not export.
    #[error("`{import}`: the module has no program `{export}`")]
    NoSuchProgram {
        /// The import.
        import: &'static str,
        /// The export looked for.
        export: String,
    },
    /// A guest pointer and length do not lie inside linear memory.
    #[error("`{import}`: {what} at {ptr:#x}..+{len} is outside linear memory ({memory_size} bytes)")]
    OutOfBounds {
        /// The import (or export, for `duet_buffer`) that received the pointer.
        import: &'static str,
        /// Which argument.
        what: &'static str,
        /// The guest address.
        ptr: u32,
        /// The length it needed.
        len: u64,
        /// The size of linear memory at the time.
        memory_size: usize,
    },
    /// A map id the manifest does not have.
    #[error("`{import}`: map id {id} does not exist (the module has {n_maps} maps)")]
    NoSuchMap {
        /// The import.
        import: &'static str,
        /// The id passed.
        id: i32,
        /// How many maps the manifest declares.
        n_maps: usize,
    },
    /// A map of a type the import does not work on (the kernel's verifier rejects these calls).
    #[error("`{import}` does not work on {map_type} maps (map `{map}`)")]
    WrongMapType {
        /// The import.
        import: &'static str,
        /// The map's name.
        map: String,
        /// Its type.
        map_type: MapType,
    },
    /// An import was called while the instance was still being created (from a start function).
    #[error("`{import}` was called before instantiation finished")]
    NoMemory {
        /// The import.
        import: &'static str,
    },
}

impl GuestFault {
    fn trap(self) -> wasmtime::Error {
        wasmtime::Error::new(self)
    }
}

/// Checks that `ptr..ptr + len` lies inside a memory of `memory_size` bytes.
pub(crate) fn guest_range(
    memory_size: usize,
    ptr: i32,
    len: usize,
    import: &'static str,
    what: &'static str,
) -> Result<Range<usize>, GuestFault> {
    let start = ptr as u32 as usize;
    match start.checked_add(len) {
        Some(end) if end <= memory_size => Ok(start..end),
        _ => Err(GuestFault::OutOfBounds { import, what, ptr: ptr as u32, len: len as u64, memory_size }),
    }
}

/// [`guest_range`] for a buffer that may be empty: a zero length needs no valid pointer (a NULL
/// buffer of length 0 asks only for a length), as in the eBPF VM.
fn buffer_range(
    memory_size: usize,
    ptr: i32,
    len: i32,
    import: &'static str,
    what: &'static str,
) -> Result<Range<usize>, GuestFault> {
    if len == 0 { Ok(0..0) } else { guest_range(memory_size, ptr, len as u32 as usize, import, what) }
}

type HostResult<T> = wasmtime::Result<T>;

/// Splits the caller into its linear memory and its host data.
fn split<'a>(caller: &'a mut Caller<'_, Host>, import: &'static str) -> HostResult<(&'a mut [u8], &'a mut Host)> {
    let memory = caller.data().memory.ok_or_else(|| GuestFault::NoMemory { import }.trap())?;
    Ok(memory.data_and_store_mut(caller))
}

fn map<'h>(host: &'h Host, id: i32, import: &'static str, refuse: &[MapType]) -> HostResult<&'h Arc<Map>> {
    let n_maps = host.shared.maps.len();
    let map = usize::try_from(id)
        .ok()
        .and_then(|i| host.shared.maps.get(i))
        .ok_or_else(|| GuestFault::NoSuchMap { import, id, n_maps }.trap())?;
    if refuse.contains(&map.map_type()) {
        let fault = GuestFault::WrongMapType { import, map: map.spec().name.clone(), map_type: map.map_type() };
        return Err(fault.trap());
    }
    Ok(map)
}

/// Defines every import of module `duet` in `linker`.
pub(crate) fn define(linker: &mut Linker<Host>) -> HostResult<()> {
    linker.func_wrap(IMPORT_MODULE, "map_lookup", |mut caller: Caller<'_, Host>, id: i32, key: i32, out: i32| {
        const IMPORT: &str = "map_lookup";
        let (mem, host) = split(&mut caller, IMPORT)?;
        let map = map(host, id, IMPORT, &NO_VALUES)?;
        let spec = map.spec();
        let key = guest_range(mem.len(), key, spec.key_size as usize, IMPORT, "key")?;
        let out = guest_range(mem.len(), out, spec.value_size as usize, IMPORT, "value_out")?;
        match ValueRef::lookup(map, &mem[key], host.cpu) {
            Some(value) => {
                value.read_into(&mut mem[out]);
                Ok(1i32)
            }
            None => Ok(0),
        }
    })?;
    linker.func_wrap(
        IMPORT_MODULE,
        "map_update",
        |mut caller: Caller<'_, Host>, id: i32, key: i32, value: i32, flags: i64| {
            const IMPORT: &str = "map_update";
            let (mem, host) = split(&mut caller, IMPORT)?;
            let map = map(host, id, IMPORT, &NO_VALUES)?;
            let spec = map.spec();
            let key = guest_range(mem.len(), key, spec.key_size as usize, IMPORT, "key")?;
            let value = guest_range(mem.len(), value, spec.value_size as usize, IMPORT, "value")?;
            Ok(map_errno(map.update(&mem[key], &mem[value], flags as u64, Some(host.cpu))))
        },
    )?;
    linker.func_wrap(IMPORT_MODULE, "map_delete", |mut caller: Caller<'_, Host>, id: i32, key: i32| {
        const IMPORT: &str = "map_delete";
        let (mem, host) = split(&mut caller, IMPORT)?;
        let map = map(host, id, IMPORT, &[MapType::RingBuf])?;
        let key = guest_range(mem.len(), key, map.spec().key_size as usize, IMPORT, "key")?;
        Ok(map_errno(map.delete(&mem[key])))
    })?;
    linker.func_wrap(
        IMPORT_MODULE,
        "map_add_u64",
        |mut caller: Caller<'_, Host>, id: i32, key: i32, offset: i32, delta: i64| {
            const IMPORT: &str = "map_add_u64";
            let (mem, host) = split(&mut caller, IMPORT)?;
            let map = map(host, id, IMPORT, &NO_VALUES)?;
            let spec = map.spec();
            let key = guest_range(mem.len(), key, spec.key_size as usize, IMPORT, "key")?;
            // Argument errors come first, as the kernel checks arguments before touching the map.
            let Ok(offset) = usize::try_from(offset) else { return Ok(EINVAL) };
            if !offset.is_multiple_of(8) || offset + 8 > spec.value_size as usize {
                return Ok(EINVAL);
            }
            Ok(match ValueRef::lookup(map, &mem[key], host.cpu) {
                Some(value) if value.fetch_add_u64(offset, delta as u64) => 0,
                Some(_) => EINVAL,
                None => ENOENT,
            })
        },
    )?;
    linker.func_wrap(IMPORT_MODULE, "tail_call", |mut caller: Caller<'_, Host>, id: i32, index: i32| {
        const IMPORT: &str = "tail_call";
        let Some(run) = caller.data().xdp else { return Ok(EINVAL) };
        let target = {
            let host = caller.data();
            let map = map(host, id, IMPORT, &[])?;
            if map.map_type() != MapType::ProgArray {
                let fault =
                    GuestFault::WrongMapType { import: IMPORT, map: map.spec().name.clone(), map_type: map.map_type() };
                return Err(fault.trap());
            }
            let slot = map.prog_at(index as u32).and_then(|p| host.shared.programs.get(p as usize));
            match slot {
                None => return Ok(ENOENT),
                Some((_, kind)) if *kind != crate::ProgramKind::Xdp => return Ok(EINVAL),
                Some(_) if run.depth >= duet_helpers::MAX_TAIL_CALLS => return Ok(E2BIG),
                Some((export, _)) => export.clone(),
            }
        };
        let func = caller
            .get_export(&target)
            .and_then(wasmtime::Extern::into_func)
            .ok_or_else(|| GuestFault::NoSuchProgram { import: IMPORT, export: target.clone() }.trap())?
            .typed::<(i32, i32), i32>(&caller)?;
        // The program in the slot runs on the same packet, one tail call deeper; its verdict is
        // the caller's (the SDK returns it at once), and so are the bounds it left.
        caller.data_mut().xdp = Some(XdpRun { depth: run.depth + 1, ..run });
        let verdict = func.call(&mut caller, run.packet());
        let after = caller.data().xdp.unwrap_or(run);
        caller.data_mut().xdp = Some(XdpRun { depth: run.depth, ..after });
        Ok(i64::from(verdict?))
    })?;
    linker.func_wrap(IMPORT_MODULE, "xdp_adjust_head", |mut caller: Caller<'_, Host>, delta: i32| {
        let Some(run) = caller.data().xdp else { return Ok(EINVAL) };
        let Some(bounds) = run.bounds.adjust_head(i64::from(delta)) else { return Ok(EINVAL) };
        // No metadata in Wasm runs (no `xdp_adjust_meta`): only `data` moves.
        caller.data_mut().xdp = Some(XdpRun { bounds, ..run });
        Ok(0i64)
    })?;
    linker.func_wrap(IMPORT_MODULE, "xdp_adjust_tail", |mut caller: Caller<'_, Host>, delta: i32| {
        const IMPORT: &str = "xdp_adjust_tail";
        let Some(run) = caller.data().xdp else { return Ok(EINVAL) };
        let Some(bounds) = run.bounds.adjust_tail(i64::from(delta)) else { return Ok(EINVAL) };
        if bounds.data_end > run.bounds.data_end {
            // Grown bytes read as zero, as in the kernel and duet-vm.
            let (mem, _) = split(&mut caller, IMPORT)?;
            let grown = (run.base as usize + run.bounds.data_end)..(run.base as usize + bounds.data_end);
            let Some(bytes) = mem.get_mut(grown.clone()) else {
                let fault = GuestFault::OutOfBounds {
                    import: IMPORT,
                    what: "packet buffer",
                    ptr: grown.start as u32,
                    len: grown.len() as u64,
                    memory_size: mem.len(),
                };
                return Err(fault.trap());
            };
            bytes.fill(0);
        }
        caller.data_mut().xdp = Some(XdpRun { bounds, ..run });
        Ok(0i64)
    })?;
    linker.func_wrap(IMPORT_MODULE, "ktime_get_ns", |caller: Caller<'_, Host>| {
        (caller.data().shared.env.clock)() as i64
    })?;
    linker.func_wrap(IMPORT_MODULE, "get_prandom_u32", |caller: Caller<'_, Host>| {
        (caller.data().shared.env.random)() as i32
    })?;
    linker.func_wrap(IMPORT_MODULE, "get_smp_processor_id", |caller: Caller<'_, Host>| caller.data().cpu as i32)?;
    linker.func_wrap(IMPORT_MODULE, "trace", |mut caller: Caller<'_, Host>, msg: i32, len: i32| {
        const IMPORT: &str = "trace";
        let (mem, host) = split(&mut caller, IMPORT)?;
        let msg = guest_range(mem.len(), msg, len as u32 as usize, IMPORT, "msg")?;
        let this_call = host.traced;
        host.traced = host.traced.saturating_add(1);
        if let Ok(mut log) = host.shared.log.lock() {
            if this_call >= MAX_TRACE_LINES_PER_CALL || log.lines.len() >= MAX_TRACE_LINES {
                log.dropped += 1;
            } else {
                let bytes = &mem[msg];
                let line = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_TRACE_LINE_BYTES)]);
                log.lines.push(line.trim_end_matches('\n').to_owned());
            }
        }
        Ok(())
    })?;
    linker.func_wrap(
        IMPORT_MODULE,
        "ringbuf_output",
        |mut caller: Caller<'_, Host>, id: i32, data: i32, len: i32, flags: i64| {
            const IMPORT: &str = "ringbuf_output";
            let (mem, host) = split(&mut caller, IMPORT)?;
            let map = map(host, id, IMPORT, &[])?;
            if map.map_type() != MapType::RingBuf {
                let fault =
                    GuestFault::WrongMapType { import: IMPORT, map: map.spec().name.clone(), map_type: map.map_type() };
                return Err(fault.trap());
            }
            let data = guest_range(mem.len(), data, len as u32 as usize, IMPORT, "data")?;
            if flags & !RINGBUF_OUTPUT_FLAGS != 0 {
                return Ok(EINVAL);
            }
            Ok(map_errno(map.ringbuf_output(&mem[data])))
        },
    )?;
    define_http(linker)
}

/// `-EPERM`: an `http_*` import called outside an http run.
const NO_EXCHANGE: i64 = -1;

/// The `http_*` imports (ABI version 2): guest pointers checked first, then `duet_helpers::http`'s
/// rules, exactly as the eBPF VM's helpers 10000..=10005.
fn define_http(linker: &mut Linker<Host>) -> HostResult<()> {
    linker.func_wrap(IMPORT_MODULE, "http_field", |mut caller: Caller<'_, Host>, field: i32, buf: i32, len: i32| {
        const IMPORT: &str = "http_field";
        let (mem, host) = split(&mut caller, IMPORT)?;
        let buf = buffer_range(mem.len(), buf, len, IMPORT, "buf")?;
        let Some(slot) = host.http.as_mut() else { return Ok(NO_EXCHANGE) };
        let (state, ex) = slot.parts();
        let value = state.field(ex, u64::from(field as u32));
        Ok(fill_buffer(value.as_deref().map_err(|e| *e), &mut mem[buf]))
    })?;
    linker.func_wrap(
        IMPORT_MODULE,
        "http_header_get",
        |mut caller: Caller<'_, Host>, name: i32, name_len: i32, buf: i32, buf_len: i32| {
            const IMPORT: &str = "http_header_get";
            let (mem, host) = split(&mut caller, IMPORT)?;
            let name = buffer_range(mem.len(), name, name_len, IMPORT, "name")?;
            let buf = buffer_range(mem.len(), buf, buf_len, IMPORT, "buf")?;
            let Some(slot) = host.http.as_mut() else { return Ok(NO_EXCHANGE) };
            let (state, ex) = slot.parts();
            // The value borrows the exchange, not guest memory, so the buffer can be written
            // after the name's borrow ends (name and buffer may overlap).
            let value = state.header_get(ex, &mem[name]);
            Ok(fill_buffer(value, &mut mem[buf]))
        },
    )?;
    for (import, add) in [("http_header_set", false), ("http_header_add", true)] {
        linker.func_wrap(
            IMPORT_MODULE,
            import,
            move |mut caller: Caller<'_, Host>, name: i32, name_len: i32, value: i32, value_len: i32| {
                let (mem, host) = split(&mut caller, import_name(add))?;
                let name = buffer_range(mem.len(), name, name_len, import_name(add), "name")?;
                let value = buffer_range(mem.len(), value, value_len, import_name(add), "value")?;
                let Some(slot) = host.http.as_mut() else { return Ok(NO_EXCHANGE) };
                let (state, ex) = slot.parts();
                let (name, value) = (&mem[name], &mem[value]);
                Ok(change_result(if add {
                    state.header_add(ex, name, value)
                } else {
                    state.header_set(ex, name, value)
                }))
            },
        )?;
    }
    linker.func_wrap(IMPORT_MODULE, "http_header_remove", |mut caller: Caller<'_, Host>, name: i32, len: i32| {
        const IMPORT: &str = "http_header_remove";
        let (mem, host) = split(&mut caller, IMPORT)?;
        let name = buffer_range(mem.len(), name, len, IMPORT, "name")?;
        let Some(slot) = host.http.as_mut() else { return Ok(NO_EXCHANGE) };
        let (state, ex) = slot.parts();
        Ok(change_result(state.header_remove(ex, &mem[name])))
    })?;
    linker.func_wrap(
        IMPORT_MODULE,
        "http_respond",
        |mut caller: Caller<'_, Host>, status: i32, body: i32, len: i32| {
            const IMPORT: &str = "http_respond";
            let (mem, host) = split(&mut caller, IMPORT)?;
            let body = buffer_range(mem.len(), body, len, IMPORT, "body")?;
            let Some(slot) = host.http.as_mut() else { return Ok(NO_EXCHANGE) };
            let (state, ex) = slot.parts();
            Ok(change_result(state.respond(ex, u64::from(status as u32), &mem[body])))
        },
    )?;
    Ok(())
}

fn import_name(add: bool) -> &'static str {
    if add { "http_header_add" } else { "http_header_set" }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Imports without an eBPF helper.
    const WASM_ONLY_IMPORTS: [&str; 1] = ["map_add_u64"];

    /// The host's imports are the helper table's, so a helper's Wasm counterpart is stated once.
    #[test]
    fn imports_are_the_helper_tables() {
        let from_table: BTreeSet<&str> = duet_helpers::HELPERS.iter().filter_map(|h| h.wasm_import).collect();
        let defined: BTreeSet<&str> = IMPORTS.into_iter().filter(|i| !WASM_ONLY_IMPORTS.contains(i)).collect();
        assert_eq!(defined, from_table);
        assert_eq!(IMPORTS.len(), defined.len() + WASM_ONLY_IMPORTS.len(), "no import twice");
        let http: Vec<&str> = IMPORTS.into_iter().filter(|i| is_http_import(i)).collect();
        assert_eq!(
            http,
            [
                "http_field",
                "http_header_get",
                "http_header_set",
                "http_header_add",
                "http_header_remove",
                "http_respond"
            ]
        );
    }
}
