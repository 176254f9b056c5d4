//! The `env` import module: the host side of every Proxy-Wasm 0.2.1 hostcall, with Envoy's
//! semantics, and the guest-memory helpers every hostcall uses.
//!
//! Each hostcall returns an ABI status. A pointer outside linear memory returns
//! `InvalidMemoryAccess`; only a trap inside the guest's allocator (called to return data to
//! the guest) makes a hostcall trap.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmtime::{Caller, ExternType, IntoFunc, Linker, Memory, Module, ResourceLimiter, TypedFunc, Val, ValType};

use crate::pairs::{self, Pairs};
use crate::shared::SharedError;
use crate::{
    ContextId, HttpCall, HttpCallResponse, LocalResponse, LogLevel, PluginInner, ROOT_CONTEXT, Stream, StreamDirection,
    properties, wasi,
};

// === ABI status codes ===

pub(crate) const OK: u32 = 0;
pub(crate) const NOT_FOUND: u32 = 1;
pub(crate) const BAD_ARGUMENT: u32 = 2;
pub(crate) const INVALID_MEMORY_ACCESS: u32 = 6;
pub(crate) const EMPTY: u32 = 7;
pub(crate) const CAS_MISMATCH: u32 = 8;
pub(crate) const INTERNAL_FAILURE: u32 = 10;
pub(crate) const UNIMPLEMENTED: u32 = 12;

/// Most HTTP calls one VM may have dispatched and not yet had answered; more get
/// `InternalFailure`.
pub(crate) const MAX_OUTSTANDING_CALLS: usize = 1024;

/// The import module of the Proxy-Wasm hostcalls.
pub(crate) const ENV: &str = "env";

/// Hostcalls of ABI 0.2.1 this host does not support: they are defined (for any signature the
/// module declares) and return `Unimplemented`. gRPC needs an HTTP/2 client in the proxy that
/// duet-mesh does not have yet.
pub const UNIMPLEMENTED_HOSTCALLS: [&str; 6] = [
    "proxy_grpc_call",
    "proxy_grpc_stream",
    "proxy_grpc_send",
    "proxy_grpc_cancel",
    "proxy_grpc_close",
    "proxy_get_status",
];

// === Store data ===

/// Caps linear memory (and tables) and remembers whether the cap was hit, so the trap that
/// follows a failed allocation is reported as [`crate::Error::MemoryLimit`].
pub(crate) struct Limiter {
    memory_limit: usize,
    pub(crate) hit: bool,
}

/// Most table elements one instance may have.
const TABLE_LIMIT: usize = 1 << 20;

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_LIMIT)
    }

    // One instance with one memory per store: the memory limit then bounds the whole VM.
    fn instances(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }
}

/// The caller's stream, lent to the host for one callback (see [`Host::begin`]): a pointer
/// rather than the stream moved into the store and back, which cost every callback two copies
/// of the whole `Stream` and two fresh ones.
struct Lent(Option<NonNull<Stream>>);

// SAFETY: the pointer is set only while `Vm::run` has a guest call in progress on the thread
// that holds the `Vm` (and the stream) exclusively, and is cleared before `run` returns or
// unwinds; between calls it is `None`, so moving the store to another thread moves no live
// pointer.
#[allow(unsafe_code)]
unsafe impl Send for Lent {}

/// Hashes context ids and call tokens, small integers the host picks itself, with one
/// multiplication: std's SipHash cost more than the rest of a callback's context check.
#[derive(Clone, Copy, Default)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 ^ u64::from(n)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// The data of one store: one VM.
pub(crate) struct Host {
    pub(crate) plugin: Arc<PluginInner>,
    pub(crate) limiter: Limiter,
    /// The exported memory; `None` until instantiation has finished.
    pub(crate) memory: Option<Memory>,
    /// `proxy_on_memory_allocate` (or `malloc`).
    pub(crate) alloc: Option<TypedFunc<u32, u32>>,
    /// The stream lent for the current callback, if it has one.
    stream: Lent,
    /// The context the current callback is for.
    current: ContextId,
    /// The context `proxy_set_effective_context` chose (starts as `current`).
    effective: ContextId,
    /// The live HTTP contexts.
    pub(crate) contexts: HashSet<ContextId, BuildHasherDefault<IdHasher>>,
    /// The response of the HTTP call being delivered.
    pub(crate) call_response: Option<HttpCallResponse>,
    /// Calls dispatched and not yet taken by the proxy.
    pub(crate) calls: Vec<HttpCall>,
    /// Tokens dispatched and not yet answered, with their context.
    pub(crate) outstanding: HashMap<u32, ContextId, BuildHasherDefault<IdHasher>>,
    last_token: u32,
    pub(crate) tick_period: Option<Duration>,
    /// Queues this VM registered.
    pub(crate) queues: Vec<u32>,
    /// Properties set while no stream was lent (root context callbacks).
    root_properties: HashMap<String, Vec<u8>>,
    /// The last critical log line (a Rust SDK panic message) or stderr line of this callback.
    pub(crate) last_critical: Option<String>,
    /// Partial lines written to stdout and stderr.
    pub(crate) stdio: [Vec<u8>; 2],
}

impl Host {
    pub(crate) fn new(plugin: Arc<PluginInner>) -> Host {
        let memory_limit = plugin.config.memory_limit;
        Host {
            plugin,
            limiter: Limiter { memory_limit, hit: false },
            memory: None,
            alloc: None,
            stream: Lent(None),
            current: ROOT_CONTEXT,
            effective: ROOT_CONTEXT,
            contexts: HashSet::default(),
            call_response: None,
            calls: Vec::new(),
            outstanding: HashMap::default(),
            last_token: 0,
            tick_period: None,
            queues: Vec::new(),
            root_properties: HashMap::new(),
            last_critical: None,
            stdio: [Vec::new(), Vec::new()],
        }
    }

    /// Prepares for a callback on `ctx`, lending it `stream`: a pointer to the caller's stream,
    /// which the caller ([`crate::Vm`]'s `run`) keeps borrowed, and does not touch, until
    /// [`Host::end`] has taken the pointer back.
    pub(crate) fn begin(&mut self, ctx: ContextId, stream: Option<NonNull<Stream>>) {
        self.current = ctx;
        self.effective = ctx;
        self.stream = Lent(stream);
        self.limiter.hit = false;
        self.last_critical = None;
    }

    /// Cleans up after a callback.
    pub(crate) fn end(&mut self) {
        self.stream = Lent(None);
        self.current = ROOT_CONTEXT;
        self.effective = ROOT_CONTEXT;
        for fd in 0..2 {
            self.flush_stdio(fd);
        }
    }

    pub(crate) fn forget_context(&mut self, ctx: ContextId) {
        self.contexts.remove(&ctx);
        self.outstanding.retain(|_, c| *c != ctx);
    }

    /// The stream of the effective context, if the current callback has one.
    #[allow(unsafe_code)]
    pub(crate) fn stream(&self) -> Option<&Stream> {
        let lent = self.stream.0.filter(|_| self.effective == self.current)?;
        // SAFETY: a lent pointer is the `&mut Stream` that `Vm::run` holds borrowed, unused,
        // from `begin` until `end` (which runs when the guest call returns or unwinds); host
        // functions run only inside that call, so the stream is alive and no other reference to
        // it is in use. The shared borrow of `self` keeps `stream_mut` from running meanwhile.
        Some(unsafe { lent.as_ref() })
    }

    #[allow(unsafe_code)]
    fn stream_mut(&mut self) -> Result<&mut Stream, u32> {
        match self.stream.0.filter(|_| self.effective == self.current) {
            // SAFETY: as in `stream`; the exclusive borrow of `self` makes this the only
            // reference to the stream while it lives.
            Some(mut lent) => Ok(unsafe { lent.as_mut() }),
            None => Err(BAD_ARGUMENT),
        }
    }

    pub(crate) fn custom_properties(&self) -> &HashMap<String, Vec<u8>> {
        match self.stream() {
            Some(s) => &s.properties.custom,
            None => &self.root_properties,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.plugin.config.name
    }

    /// Logs at `level` if the plugin's log level lets it through.
    pub(crate) fn log(&mut self, level: LogLevel, message: &str) {
        if level == LogLevel::Critical {
            self.last_critical = Some(message.to_owned());
        }
        if level < self.plugin.config.log_level {
            return;
        }
        let plugin = self.name();
        match level {
            LogLevel::Trace => tracing::trace!(target: "duet::filter", plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "duet::filter", plugin, "{message}"),
            LogLevel::Info => tracing::info!(target: "duet::filter", plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "duet::filter", plugin, "{message}"),
            LogLevel::Error | LogLevel::Critical => tracing::error!(target: "duet::filter", plugin, "{message}"),
        }
    }

    /// Logs the complete lines written to stdout (`fd` 0) or stderr (1), keeping a partial one.
    pub(crate) fn write_stdio(&mut self, fd: usize, bytes: &[u8]) {
        self.stdio[fd].extend_from_slice(bytes);
        while let Some(nl) = self.stdio[fd].iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.stdio[fd].drain(..=nl).collect();
            self.log_stdio(fd, &line[..nl]);
        }
    }

    fn flush_stdio(&mut self, fd: usize) {
        if !self.stdio[fd].is_empty() {
            let line = std::mem::take(&mut self.stdio[fd]);
            self.log_stdio(fd, &line);
        }
    }

    fn log_stdio(&mut self, fd: usize, line: &[u8]) {
        let line = String::from_utf8_lossy(line).into_owned();
        if fd == 1 {
            // stderr (logged at error level, as the spec says): where a panic message goes when
            // the SDK installed no panic hook.
            self.log(LogLevel::Error, &line);
            self.last_critical = Some(line);
        } else {
            self.log(LogLevel::Info, &line);
        }
    }
}

// === Guest memory ===

/// Why a hostcall ends early: a status for the guest, or a trap (from the guest's allocator).
pub(crate) enum Fail {
    Status(u32),
    Trap(wasmtime::Error),
}

impl From<wasmtime::Error> for Fail {
    fn from(e: wasmtime::Error) -> Fail {
        Fail::Trap(e)
    }
}

impl From<u32> for Fail {
    fn from(status: u32) -> Fail {
        Fail::Status(status)
    }
}

pub(crate) type HostResult<T> = Result<T, Fail>;

pub(crate) type Cx<'a> = Caller<'a, Host>;

/// Turns a hostcall's outcome into its return value.
pub(crate) fn status(res: HostResult<()>) -> wasmtime::Result<u32> {
    match res {
        Ok(()) => Ok(OK),
        Err(Fail::Status(s)) => Ok(s),
        Err(Fail::Trap(e)) => Err(e),
    }
}

fn memory(cx: &Cx<'_>) -> HostResult<Memory> {
    cx.data().memory.ok_or(Fail::Status(INTERNAL_FAILURE))
}

/// The guest range `ptr..ptr + len`, checked against linear memory.
fn range(mem_len: usize, ptr: u32, len: u32) -> HostResult<std::ops::Range<usize>> {
    let start = ptr as usize;
    let end = start.checked_add(len as usize).ok_or(Fail::Status(INVALID_MEMORY_ACCESS))?;
    if end > mem_len {
        return Err(Fail::Status(INVALID_MEMORY_ACCESS));
    }
    Ok(start..end)
}

/// Copies `len` bytes at `ptr` out of the guest.
pub(crate) fn read(cx: &Cx<'_>, ptr: u32, len: u32) -> HostResult<Vec<u8>> {
    let mem = memory(cx)?;
    let data = mem.data(cx);
    Ok(data[range(data.len(), ptr, len)?].to_vec())
}

/// Reads a UTF-8 string (a key, a name); invalid UTF-8 is `BadArgument`.
fn read_str(cx: &Cx<'_>, ptr: u32, len: u32) -> HostResult<String> {
    String::from_utf8(read(cx, ptr, len)?).map_err(|_| Fail::Status(BAD_ARGUMENT))
}

/// Writes `bytes` at `ptr`.
pub(crate) fn write(cx: &mut Cx<'_>, ptr: u32, bytes: &[u8]) -> HostResult<()> {
    let mem = memory(cx)?;
    let data = mem.data_mut(cx);
    let r = range(data.len(), ptr, bytes.len() as u32)?;
    data[r].copy_from_slice(bytes);
    Ok(())
}

pub(crate) fn write_u32(cx: &mut Cx<'_>, ptr: u32, value: u32) -> HostResult<()> {
    write(cx, ptr, &value.to_le_bytes())
}

pub(crate) fn write_u64(cx: &mut Cx<'_>, ptr: u32, value: u64) -> HostResult<()> {
    write(cx, ptr, &value.to_le_bytes())
}

/// Returns `bytes` to the guest: allocates with the guest's allocator, copies, and stores the
/// pointer and size at `ptr_ptr` and `size_ptr`. Empty data is a null pointer and size 0, as in
/// Envoy (the SDKs read that as "empty" or "none" as the call implies).
fn copy_out(cx: &mut Cx<'_>, bytes: &[u8], ptr_ptr: u32, size_ptr: u32) -> HostResult<()> {
    let len = u32::try_from(bytes.len()).map_err(|_| Fail::Status(INTERNAL_FAILURE))?;
    // Check the return slots first, so a bad one does not leak a guest allocation.
    let mem_len = memory(cx)?.data_size(&*cx);
    range(mem_len, ptr_ptr, 4)?;
    range(mem_len, size_ptr, 4)?;
    let addr = if bytes.is_empty() {
        0
    } else {
        let alloc = cx.data().alloc.clone().ok_or(Fail::Status(INTERNAL_FAILURE))?;
        let addr = alloc.call(&mut *cx, len)?;
        if addr == 0 {
            return Err(Fail::Status(INTERNAL_FAILURE));
        }
        write(cx, addr, bytes)?;
        addr
    };
    write_u32(cx, ptr_ptr, addr)?;
    write_u32(cx, size_ptr, len)
}

// === Linking ===

/// Defines hostcalls in a linker and remembers their names.
pub(crate) struct Defs<'a> {
    linker: &'a mut Linker<Host>,
    names: HashSet<(&'static str, &'static str)>,
}

impl Defs<'_> {
    pub(crate) fn wrap<P, R>(
        &mut self,
        module: &'static str,
        name: &'static str,
        f: impl IntoFunc<Host, P, R>,
    ) -> Result<(), String> {
        self.linker.func_wrap(module, name, f).map_err(|e| format!("cannot define `{module}.{name}`: {e:#}"))?;
        self.names.insert((module, name));
        Ok(())
    }
}

/// Defines every hostcall, plus an `Unimplemented` (env) or `ENOSYS` (WASI) stub for each
/// `env.proxy_*` or `wasi_snapshot_preview1.*` function the module imports that has no
/// definition. Any other import is an error naming it.
pub(crate) fn define(linker: &mut Linker<Host>, module: &Module) -> Result<(), String> {
    let mut defs = Defs { linker, names: HashSet::new() };
    define_env(&mut defs)?;
    wasi::define(&mut defs)?;
    let mut unknown = Vec::new();
    for import in module.imports() {
        let (m, name) = (import.module(), import.name());
        let known = defs.names.iter().any(|&(dm, dn)| dm == m && dn == name);
        let stub = match (m, import.ty()) {
            _ if known => None,
            (ENV, ExternType::Func(ty)) if name.starts_with("proxy_") => Some((ty, UNIMPLEMENTED as i32)),
            (wasi::MODULE, ExternType::Func(ty)) => Some((ty, wasi::ENOSYS)),
            _ => {
                unknown.push(format!("`{m}.{name}`"));
                None
            }
        };
        if let Some((ty, code)) = stub {
            let (m2, name2) = (m.to_owned(), name.to_owned());
            // The status (or errno) in the first result if it is an i32, zeros elsewhere.
            let values: Vec<Val> = ty
                .results()
                .enumerate()
                .map(|(i, t)| match t {
                    ValType::I32 if i == 0 => Val::I32(code),
                    t => Val::default_for_ty(&t).unwrap_or(Val::I32(0)),
                })
                .collect();
            defs.linker
                .func_new(m, name, ty, move |cx, _params, results| {
                    tracing::debug!(target: "duet::filter", plugin = cx.data().name(), "unsupported import `{m2}.{name2}` called");
                    results.copy_from_slice(&values);
                    Ok(())
                })
                .map_err(|e| format!("cannot define `{m}.{name}`: {e:#}"))?;
        }
    }
    if !unknown.is_empty() {
        return Err(format!(
            "it imports {}, which this host does not provide (it provides `env.proxy_*` and `{}.*`)",
            unknown.join(", "),
            wasi::MODULE
        ));
    }
    Ok(())
}

/// Maps a header-map type to the map, checking it is available in this callback.
fn header_map(host: &mut Host, ty: u32) -> Result<&mut Pairs, u32> {
    match ty {
        0 => Ok(&mut host.stream_mut()?.request_headers),
        1 => Ok(&mut host.stream_mut()?.request_trailers),
        2 => Ok(&mut host.stream_mut()?.response_headers),
        3 => Ok(&mut host.stream_mut()?.response_trailers),
        6 => host.call_response.as_mut().map(|r| &mut r.headers).ok_or(BAD_ARGUMENT),
        7 => host.call_response.as_mut().map(|r| &mut r.trailers).ok_or(BAD_ARGUMENT),
        // 4 and 5 are gRPC metadata, never available here.
        _ => Err(BAD_ARGUMENT),
    }
}

/// Buffer types, as the ABI numbers them.
const REQUEST_BODY: u32 = 0;
const RESPONSE_BODY: u32 = 1;
const HTTP_CALL_RESPONSE_BODY: u32 = 4;
const VM_CONFIGURATION: u32 = 6;
const PLUGIN_CONFIGURATION: u32 = 7;

/// A copy of (part of) a buffer.
fn buffer(host: &Host, ty: u32) -> Result<&[u8], u32> {
    let stream = || host.stream().ok_or(NOT_FOUND);
    match ty {
        REQUEST_BODY => Ok(&stream()?.request_body),
        RESPONSE_BODY => Ok(&stream()?.response_body),
        HTTP_CALL_RESPONSE_BODY => host.call_response.as_ref().map(|r| r.body.as_slice()).ok_or(NOT_FOUND),
        VM_CONFIGURATION => Ok(&host.plugin.config.vm_configuration),
        PLUGIN_CONFIGURATION => Ok(&host.plugin.config.configuration),
        // 2 and 3 (TCP data), 5 (gRPC), 8 (foreign call data): never available here.
        2..=8 => Err(NOT_FOUND),
        _ => Err(BAD_ARGUMENT),
    }
}

fn buffer_mut(host: &mut Host, ty: u32) -> Result<&mut Vec<u8>, u32> {
    match ty {
        REQUEST_BODY => Ok(&mut host.stream_mut()?.request_body),
        RESPONSE_BODY => Ok(&mut host.stream_mut()?.response_body),
        HTTP_CALL_RESPONSE_BODY => host.call_response.as_mut().map(|r| &mut r.body).ok_or(NOT_FOUND),
        VM_CONFIGURATION | PLUGIN_CONFIGURATION => Err(BAD_ARGUMENT),
        2..=8 => Err(NOT_FOUND),
        _ => Err(BAD_ARGUMENT),
    }
}

fn shared_status(e: SharedError) -> Fail {
    Fail::Status(match e {
        SharedError::NotFound => NOT_FOUND,
        SharedError::CasMismatch => CAS_MISMATCH,
        SharedError::Empty => EMPTY,
    })
}

fn metric_status(e: crate::metrics::MetricError) -> Fail {
    Fail::Status(match e {
        crate::metrics::MetricError::NotFound => NOT_FOUND,
        crate::metrics::MetricError::BadArgument => BAD_ARGUMENT,
    })
}

fn find(map: &Pairs, key: &str) -> Option<usize> {
    map.iter().position(|(k, _)| k.eq_ignore_ascii_case(key))
}

fn define_env(d: &mut Defs<'_>) -> Result<(), String> {
    // --- Logging, time, ticks ---
    d.wrap(ENV, "proxy_log", |mut cx: Cx<'_>, level: u32, ptr: u32, len: u32| {
        status((|| {
            let level = LogLevel::from_abi(level).ok_or(Fail::Status(BAD_ARGUMENT))?;
            let message = read(&cx, ptr, len)?;
            cx.data_mut().log(level, &String::from_utf8_lossy(&message));
            Ok(())
        })())
    })?;
    d.wrap(ENV, "proxy_get_log_level", |mut cx: Cx<'_>, ptr: u32| {
        let level = cx.data().plugin.config.log_level.to_abi();
        status(write_u32(&mut cx, ptr, level))
    })?;
    d.wrap(ENV, "proxy_get_current_time_nanoseconds", |mut cx: Cx<'_>, ptr: u32| {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        status(write_u64(&mut cx, ptr, u64::try_from(now.as_nanos()).unwrap_or(u64::MAX)))
    })?;
    d.wrap(ENV, "proxy_set_tick_period_milliseconds", |mut cx: Cx<'_>, ms: u32| {
        cx.data_mut().tick_period = (ms != 0).then(|| Duration::from_millis(ms.into()));
        Ok(OK)
    })?;

    // --- Configuration (ABI 0.1.0's name, still imported by old SDKs) ---
    d.wrap(ENV, "proxy_get_configuration", |mut cx: Cx<'_>, ptr_ptr: u32, size_ptr: u32| {
        let config = cx.data().plugin.config.configuration.clone();
        status(copy_out(&mut cx, &config, ptr_ptr, size_ptr))
    })?;

    // --- Properties ---
    d.wrap(ENV, "proxy_get_property", |mut cx: Cx<'_>, path_ptr: u32, path_len: u32, ptr_ptr: u32, size_ptr: u32| {
        status((|| {
            let path = read(&cx, path_ptr, path_len)?;
            let value = properties::get(cx.data(), &path).ok_or(Fail::Status(NOT_FOUND))?;
            copy_out(&mut cx, &value, ptr_ptr, size_ptr)
        })())
    })?;
    d.wrap(ENV, "proxy_set_property", |mut cx: Cx<'_>, path_ptr: u32, path_len: u32, ptr: u32, len: u32| {
        status((|| {
            let path = read_str(&cx, path_ptr, path_len)?;
            let value = read(&cx, ptr, len)?;
            let host = cx.data_mut();
            match host.stream_mut() {
                Ok(stream) => stream.properties.custom.insert(path, value),
                Err(_) => host.root_properties.insert(path, value),
            };
            Ok(())
        })())
    })?;

    // --- Stream control ---
    fn direction(ty: u32) -> HostResult<StreamDirection> {
        match ty {
            0 => Ok(StreamDirection::Request),
            1 => Ok(StreamDirection::Response),
            // TCP streams.
            2 | 3 => Err(Fail::Status(UNIMPLEMENTED)),
            _ => Err(Fail::Status(BAD_ARGUMENT)),
        }
    }
    d.wrap(ENV, "proxy_continue_stream", |mut cx: Cx<'_>, ty: u32| {
        status((|| {
            let dir = direction(ty)?;
            cx.data_mut().stream_mut()?.continued = Some(dir);
            Ok(())
        })())
    })?;
    d.wrap(ENV, "proxy_close_stream", |mut cx: Cx<'_>, ty: u32| {
        status((|| {
            let dir = direction(ty)?;
            cx.data_mut().stream_mut()?.reset = Some(dir);
            Ok(())
        })())
    })?;
    // ABI 0.1.0's names.
    d.wrap(ENV, "proxy_continue_request", |mut cx: Cx<'_>| {
        status(cx.data_mut().stream_mut().map(|s| s.continued = Some(StreamDirection::Request)).map_err(Fail::Status))
    })?;
    d.wrap(ENV, "proxy_continue_response", |mut cx: Cx<'_>| {
        status(cx.data_mut().stream_mut().map(|s| s.continued = Some(StreamDirection::Response)).map_err(Fail::Status))
    })?;
    d.wrap(
        ENV,
        "proxy_send_local_response",
        |mut cx: Cx<'_>,
         code: u32,
         details_ptr: u32,
         details_len: u32,
         body_ptr: u32,
         body_len: u32,
         headers_ptr: u32,
         headers_len: u32,
         grpc_status: i32| {
            status((|| {
                let status =
                    u16::try_from(code).ok().filter(|c| (100..=999).contains(c)).ok_or(Fail::Status(BAD_ARGUMENT))?;
                let details = String::from_utf8_lossy(&read(&cx, details_ptr, details_len)?).into_owned();
                let body = read(&cx, body_ptr, body_len)?;
                let headers =
                    pairs::deserialize(&read(&cx, headers_ptr, headers_len)?).ok_or(Fail::Status(BAD_ARGUMENT))?;
                let headers = headers.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
                let grpc_status = (grpc_status >= 0).then_some(grpc_status);
                cx.data_mut().stream_mut()?.local_response =
                    Some(LocalResponse { status, body, headers, details, grpc_status });
                Ok(())
            })())
        },
    )?;
    d.wrap(ENV, "proxy_clear_route_cache", |_cx: Cx<'_>| Ok(OK))?;

    // --- Header maps ---
    d.wrap(
        ENV,
        "proxy_get_header_map_value",
        |mut cx: Cx<'_>, ty: u32, key_ptr: u32, key_len: u32, ptr_ptr: u32, size_ptr: u32| {
            status((|| {
                let key = read_str(&cx, key_ptr, key_len)?;
                let map = header_map(cx.data_mut(), ty)?;
                let i = find(map, &key).ok_or(Fail::Status(NOT_FOUND))?;
                let value = map[i].1.clone();
                copy_out(&mut cx, &value, ptr_ptr, size_ptr)
            })())
        },
    )?;
    d.wrap(
        ENV,
        "proxy_add_header_map_value",
        |mut cx: Cx<'_>, ty: u32, key_ptr: u32, key_len: u32, ptr: u32, len: u32| {
            status((|| {
                let key = read_str(&cx, key_ptr, key_len)?.to_ascii_lowercase();
                let value = read(&cx, ptr, len)?;
                header_map(cx.data_mut(), ty)?.push((key, value));
                Ok(())
            })())
        },
    )?;
    d.wrap(
        ENV,
        "proxy_replace_header_map_value",
        |mut cx: Cx<'_>, ty: u32, key_ptr: u32, key_len: u32, ptr: u32, len: u32| {
            status((|| {
                let key = read_str(&cx, key_ptr, key_len)?.to_ascii_lowercase();
                let value = read(&cx, ptr, len)?;
                let map = header_map(cx.data_mut(), ty)?;
                // Envoy's setCopy: the first entry takes the value, later duplicates go.
                match find(map, &key) {
                    Some(i) => {
                        map[i].1 = value;
                        let mut n = 0;
                        map.retain(|(k, _)| {
                            n += 1;
                            n - 1 <= i || !k.eq_ignore_ascii_case(&key)
                        });
                    }
                    None => map.push((key, value)),
                }
                Ok(())
            })())
        },
    )?;
    d.wrap(ENV, "proxy_remove_header_map_value", |mut cx: Cx<'_>, ty: u32, key_ptr: u32, key_len: u32| {
        status((|| {
            let key = read_str(&cx, key_ptr, key_len)?;
            header_map(cx.data_mut(), ty)?.retain(|(k, _)| !k.eq_ignore_ascii_case(&key));
            Ok(())
        })())
    })?;
    d.wrap(ENV, "proxy_get_header_map_pairs", |mut cx: Cx<'_>, ty: u32, ptr_ptr: u32, size_ptr: u32| {
        status((|| {
            let bytes = pairs::serialize_map(header_map(cx.data_mut(), ty)?);
            copy_out(&mut cx, &bytes, ptr_ptr, size_ptr)
        })())
    })?;
    d.wrap(ENV, "proxy_set_header_map_pairs", |mut cx: Cx<'_>, ty: u32, ptr: u32, len: u32| {
        status((|| {
            let new = pairs::deserialize(&read(&cx, ptr, len)?).ok_or(Fail::Status(BAD_ARGUMENT))?;
            let map = header_map(cx.data_mut(), ty)?;
            *map = new.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
            Ok(())
        })())
    })?;
    d.wrap(ENV, "proxy_get_header_map_size", |mut cx: Cx<'_>, ty: u32, size_ptr: u32| {
        status((|| {
            let size = pairs::serialized_size(header_map(cx.data_mut(), ty)?);
            write_u32(&mut cx, size_ptr, u32::try_from(size).unwrap_or(u32::MAX))
        })())
    })?;

    // --- Buffers ---
    d.wrap(
        ENV,
        "proxy_get_buffer_bytes",
        |mut cx: Cx<'_>, ty: u32, start: u32, max: u32, ptr_ptr: u32, size_ptr: u32| {
            status((|| {
                let buf = buffer(cx.data(), ty)?;
                // As Envoy: reading past the end returns what there is (possibly nothing).
                let start = (start as usize).min(buf.len());
                let end = start.saturating_add(max as usize).min(buf.len());
                let bytes = buf[start..end].to_vec();
                copy_out(&mut cx, &bytes, ptr_ptr, size_ptr)
            })())
        },
    )?;
    d.wrap(ENV, "proxy_get_buffer_status", |mut cx: Cx<'_>, ty: u32, len_ptr: u32, flags_ptr: u32| {
        status((|| {
            let len = buffer(cx.data(), ty)?.len();
            write_u32(&mut cx, len_ptr, u32::try_from(len).unwrap_or(u32::MAX))?;
            write_u32(&mut cx, flags_ptr, 0)
        })())
    })?;
    d.wrap(ENV, "proxy_set_buffer_bytes", |mut cx: Cx<'_>, ty: u32, start: u32, size: u32, ptr: u32, len: u32| {
        status((|| {
            let data = read(&cx, ptr, len)?;
            let buf = buffer_mut(cx.data_mut(), ty)?;
            // Replaces `start..start + size` (clamped to the buffer): `(0, 0)` prepends,
            // `(0, len)` replaces everything, `(len, _)` appends, which are the three cases
            // Envoy accepts; a range inside the buffer is replaced too.
            let start = (start as usize).min(buf.len());
            let end = start.saturating_add(size as usize).min(buf.len());
            buf.splice(start..end, data);
            Ok(())
        })())
    })?;

    // --- HTTP calls ---
    d.wrap(
        ENV,
        "proxy_http_call",
        |mut cx: Cx<'_>,
         upstream_ptr: u32,
         upstream_len: u32,
         headers_ptr: u32,
         headers_len: u32,
         body_ptr: u32,
         body_len: u32,
         trailers_ptr: u32,
         trailers_len: u32,
         timeout_ms: u32,
         token_ptr: u32| {
            status((|| {
                let upstream = read_str(&cx, upstream_ptr, upstream_len)?;
                let bad = Fail::Status(BAD_ARGUMENT);
                let headers = pairs::deserialize(&read(&cx, headers_ptr, headers_len)?).ok_or(bad)?;
                let headers: Pairs = headers.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
                let body = read(&cx, body_ptr, body_len)?;
                let trailers =
                    pairs::deserialize(&read(&cx, trailers_ptr, trailers_len)?).ok_or(Fail::Status(BAD_ARGUMENT))?;
                let host = cx.data();
                if !host.plugin.config.upstreams.contains(&upstream) {
                    return Err(Fail::Status(BAD_ARGUMENT));
                }
                // Calls wait in the host until the proxy answers them: bounded, like every queue.
                if host.outstanding.len() >= MAX_OUTSTANDING_CALLS {
                    return Err(Fail::Status(INTERNAL_FAILURE));
                }
                // Envoy refuses a call without these.
                for required in [":method", ":path", ":authority"] {
                    if !headers.iter().any(|(k, v)| k == required && !v.is_empty()) {
                        return Err(Fail::Status(BAD_ARGUMENT));
                    }
                }
                let mut token = host.last_token.wrapping_add(1).max(1);
                while host.outstanding.contains_key(&token) {
                    token = token.wrapping_add(1).max(1);
                }
                write_u32(&mut cx, token_ptr, token)?;
                let host = cx.data_mut();
                host.last_token = token;
                let context = host.effective;
                host.outstanding.insert(token, context);
                let timeout = Duration::from_millis(timeout_ms.into());
                host.calls.push(HttpCall { context, token, upstream, headers, body, trailers, timeout });
                Ok(())
            })())
        },
    )?;

    // --- Shared data ---
    d.wrap(
        ENV,
        "proxy_get_shared_data",
        |mut cx: Cx<'_>, key_ptr: u32, key_len: u32, ptr_ptr: u32, size_ptr: u32, cas_ptr: u32| {
            status((|| {
                let key = read_str(&cx, key_ptr, key_len)?;
                let host = cx.data();
                let (value, cas) =
                    host.plugin.shared.get(&host.plugin.config.vm_id, &key).ok_or(Fail::Status(NOT_FOUND))?;
                range(memory(&cx)?.data_size(&cx), cas_ptr, 4)?;
                copy_out(&mut cx, &value, ptr_ptr, size_ptr)?;
                write_u32(&mut cx, cas_ptr, cas)
            })())
        },
    )?;
    d.wrap(ENV, "proxy_set_shared_data", |cx: Cx<'_>, key_ptr: u32, key_len: u32, ptr: u32, len: u32, cas: u32| {
        status((|| {
            let key = read_str(&cx, key_ptr, key_len)?;
            let value = read(&cx, ptr, len)?;
            let host = cx.data();
            host.plugin.shared.set(&host.plugin.config.vm_id, &key, value, cas).map_err(shared_status)?;
            Ok(())
        })())
    })?;

    // --- Shared queues ---
    d.wrap(ENV, "proxy_register_shared_queue", |mut cx: Cx<'_>, name_ptr: u32, name_len: u32, id_ptr: u32| {
        status((|| {
            let name = read_str(&cx, name_ptr, name_len)?;
            let host = cx.data_mut();
            let id = host.plugin.shared.register_queue(&host.plugin.config.vm_id, &name);
            if !host.queues.contains(&id) {
                host.queues.push(id);
            }
            write_u32(&mut cx, id_ptr, id)
        })())
    })?;
    d.wrap(
        ENV,
        "proxy_resolve_shared_queue",
        |mut cx: Cx<'_>, vm_ptr: u32, vm_len: u32, name_ptr: u32, name_len: u32, id_ptr: u32| {
            status((|| {
                let vm_id = read_str(&cx, vm_ptr, vm_len)?;
                let name = read_str(&cx, name_ptr, name_len)?;
                let id = cx.data().plugin.shared.resolve_queue(&vm_id, &name).ok_or(Fail::Status(NOT_FOUND))?;
                write_u32(&mut cx, id_ptr, id)
            })())
        },
    )?;
    d.wrap(ENV, "proxy_dequeue_shared_queue", |mut cx: Cx<'_>, id: u32, ptr_ptr: u32, size_ptr: u32| {
        status((|| {
            let item = cx.data().plugin.shared.dequeue(id).map_err(shared_status)?;
            copy_out(&mut cx, &item, ptr_ptr, size_ptr)
        })())
    })?;
    d.wrap(ENV, "proxy_enqueue_shared_queue", |cx: Cx<'_>, id: u32, ptr: u32, len: u32| {
        status((|| {
            let item = read(&cx, ptr, len)?;
            cx.data().plugin.shared.enqueue(id, item).map_err(shared_status)
        })())
    })?;

    // --- Metrics ---
    d.wrap(ENV, "proxy_define_metric", |mut cx: Cx<'_>, kind: u32, name_ptr: u32, name_len: u32, id_ptr: u32| {
        status((|| {
            let name = read_str(&cx, name_ptr, name_len)?;
            range(memory(&cx)?.data_size(&cx), id_ptr, 4)?;
            let id = cx.data().plugin.metrics.define(kind, &name).map_err(metric_status)?;
            write_u32(&mut cx, id_ptr, id)
        })())
    })?;
    d.wrap(ENV, "proxy_increment_metric", |cx: Cx<'_>, id: u32, offset: i64| {
        status(cx.data().plugin.metrics.increment(id, offset).map_err(metric_status))
    })?;
    d.wrap(ENV, "proxy_record_metric", |cx: Cx<'_>, id: u32, value: u64| {
        status(cx.data().plugin.metrics.record(id, value).map_err(metric_status))
    })?;
    d.wrap(ENV, "proxy_get_metric", |mut cx: Cx<'_>, id: u32, ptr: u32| {
        status((|| {
            let value = cx.data().plugin.metrics.value(id).map_err(metric_status)?;
            write_u64(&mut cx, ptr, value)
        })())
    })?;

    // --- Contexts ---
    d.wrap(ENV, "proxy_set_effective_context", |mut cx: Cx<'_>, ctx: u32| {
        let host = cx.data_mut();
        if ctx == ROOT_CONTEXT || host.contexts.contains(&ctx) {
            host.effective = ctx;
            Ok(OK)
        } else {
            Ok(BAD_ARGUMENT)
        }
    })?;
    // The host never waits for `proxy_on_done` to return true, so there is nothing to finish.
    d.wrap(ENV, "proxy_done", |_cx: Cx<'_>| Ok(OK))?;
    // Emscripten-built filters (the C++ SDK) import this; linear memory needs no host-side view
    // refresh here, since every access goes through `Memory::data`.
    d.wrap(ENV, "emscripten_notify_memory_growth", |_cx: Cx<'_>, _memory_index: u32| {})?;
    // No foreign functions are registered: every name is unknown, as in an Envoy without any.
    d.wrap(ENV, "proxy_call_foreign_function", |_cx: Cx<'_>, _: u32, _: u32, _: u32, _: u32, _: u32, _: u32| {
        Ok(NOT_FOUND)
    })?;
    Ok(())
}
