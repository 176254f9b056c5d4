//! # duet-proxywasm — a Proxy-Wasm ABI 0.2.1 host on wasmtime
//!
//! **API boundary.** Runs unmodified Proxy-Wasm filters (built with the public `proxy-wasm` Rust
//! SDK, or any other SDK that speaks ABI 0.2.0/0.2.1) the way Envoy runs them: the same
//! callbacks in the same order, the same header-map, buffer and property encodings, the same
//! status codes. duet-mesh drives it; nothing in here knows about sockets.
//!
//! ```text
//! wasm ──► Plugin::load ──► plugin.new_vm() ──► vm.create_http_context()
//!            │ ABI check         │ instance, _initialize      │
//!            │ compile once      │ on_context_create(root)    ▼
//!            │ (memory + disk    │ on_vm_start, on_configure  vm.on_request_headers(ctx, &mut stream, eos)
//!            │  cache)           │                            vm.take_http_calls() ─► the proxy does the I/O
//!            │ linker: env.*,    ▼                            vm.on_http_call_response(ctx, .., response)
//!            │ wasi preview1 one Store per worker             vm.on_log / vm.finish(ctx, &mut stream)
//!            ▼
//!        SharedState (shared data with CAS, shared queues; per vm_id, outlives plugins)
//! ```
//!
//! A request's [`Stream`] belongs to the proxy; for each callback the host moves it into the
//! store and back (a few pointer copies), so hostcalls read and edit the proxy's own header
//! vectors and bodies without copying them. Modules are compiled once per process (and, with
//! [`PluginConfig::cache_dir`], once per machine); one process-wide engine serves every plugin,
//! with one thread advancing its epoch for the deadlines. The hostcalls live in `host.rs`
//! (Envoy's semantics, one function per ABI name), WASI in `wasi.rs`, attributes in
//! `properties.rs`, and the state shared across VMs in `shared.rs` and `metrics.rs`.
//!
//! What it does not do: no networking, no timers, no threads of its own apart from one process-wide
//! epoch ticker. `proxy_http_call` only records the call ([`Vm::take_http_calls`]); the tick
//! period is only reported ([`Vm::tick_period`]); queue readiness is only reported
//! ([`Vm::ready_queues`]). The proxy does the I/O and the scheduling and calls back in.
//!
//! Invariants:
//! - A guest fault is an [`Error`] value, never a panic: traps ([`Error::Trap`]), deadline
//!   overruns ([`Error::Deadline`], epoch-based, per callback) and growing memory past
//!   [`PluginConfig::memory_limit`] ([`Error::MemoryLimit`]). After any of them the [`Vm`] is
//!   poisoned ([`Vm::is_poisoned`]) and refuses further calls: the guest may have stopped halfway
//!   through updating its own state, so the proxy makes a fresh one with [`Plugin::new_vm`].
//! - Every guest pointer a host call receives is bounds-checked against linear memory; a bad one
//!   makes the call return `InvalidMemoryAccess` (status 6).
//! - Every `env.proxy_*` import resolves: those this host does not support return
//!   `Unimplemented` (status 12), whatever their signature. Every `wasi_snapshot_preview1` import
//!   resolves: the few a Rust or TinyGo filter really uses are implemented (stdout/stderr go to the
//!   log, clocks, randomness, empty args and environment, `proc_exit` traps), the others return
//!   `ENOSYS`. An import from any other module is a load error that names it.
//! - No unsafe code, except one block in the on-disk compilation cache (`cache.rs`, the crate's
//!   only I/O) that loads compiled code this crate wrote itself, and the stream a callback is
//!   lent (`host.rs`, `Lent`): hostcalls reach the caller's `Stream` through a pointer that is
//!   set only while `Vm::run` has that stream borrowed for a guest call, instead of the stream
//!   being moved into the store and back for every callback.
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod cache;
mod engine;
mod host;
mod metrics;
mod pairs;
mod properties;
mod shared;
mod wasi;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use wasmtime::{Instance, InstancePre, Linker, Module, Store, TypedFunc};

pub use host::UNIMPLEMENTED_HOSTCALLS;
pub use metrics::{HistogramSnapshot, MetricKind, MetricSnapshot, MetricValue};
pub use shared::{SharedError, SharedState};

use crate::host::Host;
use crate::metrics::Metrics;

/// A context id, as the ABI passes it to the guest. The root context of every [`Vm`] is
/// [`ROOT_CONTEXT`]; HTTP contexts get fresh ids from [`Vm::create_http_context`].
pub type ContextId = u32;

/// The id of every VM's root (plugin) context.
pub const ROOT_CONTEXT: ContextId = 1;

// === Configuration ===

/// A filter's log level, as the ABI numbers them (`proxy_log`, `proxy_get_log_level`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// 0.
    Trace,
    /// 1.
    Debug,
    /// 2.
    #[default]
    Info,
    /// 3.
    Warn,
    /// 4.
    Error,
    /// 5.
    Critical,
}

impl LogLevel {
    /// The level with this ABI number, if any.
    pub fn from_abi(n: u32) -> Option<LogLevel> {
        Some(match n {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            5 => LogLevel::Critical,
            _ => return None,
        })
    }

    /// The ABI number of this level.
    pub fn to_abi(self) -> u32 {
        self as u32
    }
}

/// How to load one plugin (one filter in the chain).
#[derive(Clone, Debug)]
pub struct PluginConfig {
    /// The plugin's name (`plugin_name` property; named in logs and errors).
    pub name: String,
    /// The root id (`plugin_root_id` property).
    pub root_id: String,
    /// The VM id (`plugin_vm_id` property): shared data and queues are keyed by it.
    pub vm_id: String,
    /// The plugin configuration (buffer type 7, read in `on_configure`).
    pub configuration: Vec<u8>,
    /// The VM configuration (buffer type 6, read in `on_vm_start`).
    pub vm_configuration: Vec<u8>,
    /// Most bytes of linear memory one VM may have (default 64 MiB).
    pub memory_limit: usize,
    /// Longest one callback may run (default 100 ms). Enforced with epoch interruption, so
    /// approximate: a few milliseconds late at most.
    pub deadline: Duration,
    /// Where compiled modules are cached on disk (keyed by the SHA-256 of the bytes and the
    /// engine settings); `None` compiles in every process. Within a process, modules compiled
    /// from the same bytes are always reused.
    pub cache_dir: Option<PathBuf>,
    /// The cluster names `proxy_http_call` may name; any other gets `BadArgument`.
    pub upstreams: Vec<String>,
    /// Messages below this level are dropped (and `proxy_get_log_level` reports it).
    pub log_level: LogLevel,
}

impl Default for PluginConfig {
    fn default() -> Self {
        PluginConfig {
            name: String::new(),
            root_id: String::new(),
            vm_id: String::new(),
            configuration: Vec::new(),
            vm_configuration: Vec::new(),
            memory_limit: 64 << 20,
            deadline: Duration::from_millis(100),
            cache_dir: None,
            upstreams: Vec::new(),
            log_level: LogLevel::Info,
        }
    }
}

// === Errors ===

/// Why a plugin could not be loaded or a callback failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a Wasm module, or the configuration is inconsistent.
    #[error("plugin `{plugin}`: invalid input: {reason}")]
    Invalid {
        /// The plugin.
        plugin: String,
        /// What is wrong.
        reason: String,
    },
    /// wasmtime could not compile the module.
    #[error("plugin `{plugin}`: cannot compile the module")]
    Compile {
        /// The plugin.
        plugin: String,
        /// wasmtime's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The module does not follow the Proxy-Wasm ABI: no `proxy_abi_version_0_2_x` export, an
    /// export of the wrong type, no memory, or an import this host cannot provide.
    #[error("plugin `{plugin}`: not a Proxy-Wasm 0.2.x module: {reason}")]
    Abi {
        /// The plugin.
        plugin: String,
        /// What is missing or wrong.
        reason: String,
    },
    /// Creating an instance failed (for a reason other than a trap, deadline or memory limit).
    #[error("plugin `{plugin}`: cannot instantiate the module: {reason}")]
    Instantiate {
        /// The plugin.
        plugin: String,
        /// wasmtime's description.
        reason: String,
    },
    /// `proxy_on_vm_start` or `proxy_on_configure` returned false.
    #[error("plugin `{plugin}`: `{callback}` returned false (the filter refused its configuration)")]
    Configure {
        /// The plugin.
        plugin: String,
        /// The callback.
        callback: &'static str,
    },
    /// The guest trapped (a panic, `unreachable`, an out-of-bounds access, `proc_exit`, ...).
    #[error("plugin `{plugin}`: `{callback}` trapped: {message}")]
    Trap {
        /// The plugin.
        plugin: String,
        /// The callback that was running.
        callback: &'static str,
        /// What happened, with the filter's last critical log line (its panic message) if any.
        message: String,
    },
    /// The callback ran past [`PluginConfig::deadline`] and was stopped.
    #[error("plugin `{plugin}`: `{callback}` ran past its deadline and was stopped")]
    Deadline {
        /// The plugin.
        plugin: String,
        /// The callback.
        callback: &'static str,
    },
    /// The guest tried to grow its memory past [`PluginConfig::memory_limit`] (and then trapped).
    #[error("plugin `{plugin}`: `{callback}` exceeded the memory limit of {limit} bytes")]
    MemoryLimit {
        /// The plugin.
        plugin: String,
        /// The callback.
        callback: &'static str,
        /// The limit.
        limit: usize,
    },
    /// An earlier error poisoned this VM; make a new one with [`Plugin::new_vm`].
    #[error("plugin `{plugin}`: this VM failed earlier and must be replaced")]
    Poisoned {
        /// The plugin.
        plugin: String,
    },
    /// The proxy passed a context id this VM did not create (or already finished).
    #[error("plugin `{plugin}`: no live HTTP context {context}")]
    UnknownContext {
        /// The plugin.
        plugin: String,
        /// The id.
        context: ContextId,
    },
    /// The proxy answered an HTTP call this VM did not dispatch, already answered, or that
    /// another context dispatched.
    #[error("plugin `{plugin}`: no outstanding HTTP call with token {token} for that context")]
    UnknownToken {
        /// The plugin.
        plugin: String,
        /// The token.
        token: u32,
    },
    /// The engine (or its epoch thread) could not be set up.
    #[error("cannot set up the wasmtime engine: {reason}")]
    Engine {
        /// Why.
        reason: String,
    },
}

// === Per-request state ===

/// Which half of an HTTP stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamDirection {
    /// The request (ABI stream type 0).
    Request,
    /// The response (ABI stream type 1).
    Response,
}

/// What a filter asked for at the end of a stream callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Go on with the next filter.
    Continue,
    /// Stop iteration (headers) or buffer (body) until the filter resumes the stream.
    Pause,
}

/// A response the filter produced itself (`proxy_send_local_response`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalResponse {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
    /// Extra headers (lower-case names).
    pub headers: Vec<(String, Vec<u8>)>,
    /// Envoy's "response code details" string (may be empty).
    pub details: String,
    /// The gRPC status for a gRPC local reply, `None` for plain HTTP (the ABI's `-1`).
    pub grpc_status: Option<i32>,
}

/// The response to an HTTP call, as the proxy hands it back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpCallResponse {
    /// Headers, `:status` first (lower-case names).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
    /// Trailers.
    pub trailers: Vec<(String, Vec<u8>)>,
}

/// An HTTP call the guest dispatched with `proxy_http_call`; the proxy performs it and answers
/// with [`Vm::on_http_call_response`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpCall {
    /// The context that made the call (may be [`ROOT_CONTEXT`]).
    pub context: ContextId,
    /// The token the guest got back (unique per VM).
    pub token: u32,
    /// The cluster, one of [`PluginConfig::upstreams`].
    pub upstream: String,
    /// Headers including `:method`, `:path` and `:authority` (lower-case names).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
    /// Trailers.
    pub trailers: Vec<(String, Vec<u8>)>,
    /// How long the proxy should wait before answering `None`.
    pub timeout: Duration,
}

/// Connection and route facts the proxy knows about a request, read by `proxy_get_property`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamProperties {
    /// The downstream peer (`source.address`, `source.port`).
    pub source: Option<SocketAddr>,
    /// The local address that accepted the connection (`destination.address`, `.port`).
    pub destination: Option<SocketAddr>,
    /// `request.id`; when empty, the `x-request-id` header is used.
    pub request_id: String,
    /// `request.protocol`: `"HTTP/1.0"`, `"HTTP/1.1"`, `"HTTP/2"`.
    pub protocol: String,
    /// `xds.route_name` (and `route_name`).
    pub route_name: String,
    /// `xds.cluster_name` (and `cluster_name`).
    pub cluster_name: String,
    /// `connection.mtls`: the downstream presented a verified client certificate.
    pub mtls: bool,
    /// `response.code`; when `None`, the response's `:status` header is used.
    pub response_code: Option<u16>,
    /// `request.time`: when the first byte of the request arrived.
    pub start_time: Option<SystemTime>,
    /// Values set with `proxy_set_property` (or by the proxy), by their NUL-separated path.
    pub custom: HashMap<String, Vec<u8>>,
}

/// One request's state, owned by the proxy and lent to the VM for each callback.
#[derive(Clone, Debug, Default)]
pub struct Stream {
    /// Request headers: lower-case names, `:method :path :authority :scheme` first.
    pub request_headers: Vec<(String, Vec<u8>)>,
    /// The request body the filter sees (what has been buffered so far).
    pub request_body: Vec<u8>,
    /// Request trailers.
    pub request_trailers: Vec<(String, Vec<u8>)>,
    /// Response headers, `:status` first.
    pub response_headers: Vec<(String, Vec<u8>)>,
    /// The response body the filter sees.
    pub response_body: Vec<u8>,
    /// Response trailers.
    pub response_trailers: Vec<(String, Vec<u8>)>,
    /// Connection, route and custom properties.
    pub properties: StreamProperties,
    /// Set by `proxy_send_local_response`.
    pub local_response: Option<LocalResponse>,
    /// Set by `proxy_continue_stream` (e.g. inside `on_http_call_response`); the proxy clears it.
    pub continued: Option<StreamDirection>,
    /// Set by `proxy_close_stream`: the filter asked the proxy to reset this half of the stream.
    pub reset: Option<StreamDirection>,
    /// For the host's use while dispatching an HTTP call response (left `None`).
    pub http_call_response: Option<HttpCallResponse>,
}

// === Plugin ===

/// A compiled, validated filter with its configuration. Cheap to clone and share between
/// threads; each worker makes its own [`Vm`].
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

/// What every VM of a plugin shares.
pub(crate) struct PluginInner {
    pub(crate) config: PluginConfig,
    pub(crate) shared: Arc<SharedState>,
    pub(crate) metrics: Metrics,
    pre: InstancePre<Host>,
    deadline_ticks: u64,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

/// The ABI versions this host speaks, by their marker export.
const ABI_EXPORTS: [&str; 2] = ["proxy_abi_version_0_2_1", "proxy_abi_version_0_2_0"];

impl Plugin {
    /// Validates the ABI, compiles `wasm`, and starts one VM to prove the filter configures
    /// (`_initialize`, `on_context_create`, `on_vm_start`, `on_configure`).
    pub fn load(wasm: &[u8], config: PluginConfig, shared: Arc<SharedState>) -> Result<Plugin, Error> {
        let plugin = config.name.clone();
        if config.deadline.is_zero() {
            return Err(Error::Invalid { plugin, reason: "the deadline must be positive".into() });
        }
        let engine = engine::engine().map_err(|reason| Error::Engine { reason })?;
        let module = engine::compile(engine, wasm, config.cache_dir.as_deref()).map_err(|e| {
            if wasm.starts_with(b"\0asm") {
                Error::Compile { plugin: plugin.clone(), source: e.into() }
            } else {
                Error::Invalid { plugin: plugin.clone(), reason: format!("not a Wasm module: {e:#}") }
            }
        })?;
        check_exports(&module).map_err(|reason| Error::Abi { plugin: plugin.clone(), reason })?;
        let mut linker = Linker::new(engine);
        host::define(&mut linker, &module).map_err(|reason| Error::Abi { plugin: plugin.clone(), reason })?;
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| Error::Abi { plugin: plugin.clone(), reason: format!("{e:#}") })?;
        let deadline_ticks = engine::deadline_ticks(config.deadline);
        let plugin = Plugin {
            inner: Arc::new(PluginInner { config, shared, metrics: Metrics::default(), pre, deadline_ticks }),
        };
        plugin.new_vm()?;
        Ok(plugin)
    }

    /// A new VM: an instance of its own, started and configured
    /// (`_initialize` or `_start`, `proxy_on_context_create(root)`, `proxy_on_vm_start`,
    /// `proxy_on_configure`; either returning false is [`Error::Configure`]).
    pub fn new_vm(&self) -> Result<Vm, Error> {
        Vm::new(self)
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.inner.config.name
    }

    /// The configuration the plugin was loaded with.
    pub fn config(&self) -> &PluginConfig {
        &self.inner.config
    }

    /// The shared state the plugin's VMs use.
    pub fn shared(&self) -> &Arc<SharedState> {
        &self.inner.shared
    }

    /// The metrics the filter defined (`proxy_define_metric`), shared by all its VMs, in
    /// definition order.
    pub fn metrics(&self) -> Vec<MetricSnapshot> {
        self.inner.metrics.snapshot()
    }
}

/// Checks the ABI marker and the types of the callbacks the host calls.
fn check_exports(module: &Module) -> Result<(), String> {
    if !ABI_EXPORTS.iter().any(|name| module.get_export(name).is_some()) {
        let found: Vec<_> = module.exports().map(|e| e.name()).filter(|n| n.starts_with("proxy_abi_version")).collect();
        return Err(if found.is_empty() {
            format!("no ABI version export (expected one of {})", ABI_EXPORTS.join(", "))
        } else {
            format!("it exports {}, this host speaks {}", found.join(", "), ABI_EXPORTS.join(", "))
        });
    }
    match module.get_export("memory") {
        Some(wasmtime::ExternType::Memory(_)) => Ok(()),
        _ => Err("no exported `memory`".into()),
    }
}

// === Vm ===

/// `(context, headers or body size, end_of_stream) -> action`.
type StreamFn = TypedFunc<(u32, u32, u32), u32>;
/// `(context, trailers) -> action`.
type TrailersFn = TypedFunc<(u32, u32), u32>;

/// The guest's exports the host calls, looked up once per instance. `None`: the module does not
/// export it, and the callback is skipped (stream callbacks then continue).
struct Exports {
    on_context_create: Option<TypedFunc<(u32, u32), ()>>,
    on_vm_start: Option<TypedFunc<(u32, u32), u32>>,
    on_configure: Option<TypedFunc<(u32, u32), u32>>,
    on_request_headers: Option<TypedFunc<(u32, u32, u32), u32>>,
    on_request_body: Option<TypedFunc<(u32, u32, u32), u32>>,
    on_request_trailers: Option<TypedFunc<(u32, u32), u32>>,
    on_response_headers: Option<TypedFunc<(u32, u32, u32), u32>>,
    on_response_body: Option<TypedFunc<(u32, u32, u32), u32>>,
    on_response_trailers: Option<TypedFunc<(u32, u32), u32>>,
    on_log: Option<TypedFunc<u32, ()>>,
    on_done: Option<TypedFunc<u32, u32>>,
    on_delete: Option<TypedFunc<u32, ()>>,
    on_tick: Option<TypedFunc<u32, ()>>,
    on_queue_ready: Option<TypedFunc<(u32, u32), ()>>,
    #[expect(clippy::type_complexity, reason = "the ABI's five arguments, named once here")]
    on_http_call_response: Option<TypedFunc<(u32, u32, u32, u32, u32), ()>>,
}

impl Exports {
    fn new(store: &mut Store<Host>, instance: &Instance) -> Result<Exports, String> {
        fn get<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
            store: &mut Store<Host>,
            instance: &Instance,
            name: &str,
        ) -> Result<Option<TypedFunc<P, R>>, String> {
            match instance.get_func(&mut *store, name) {
                None => Ok(None),
                Some(func) => {
                    let ty = func.ty(&*store);
                    func.typed::<P, R>(&*store)
                        .map(Some)
                        .map_err(|_| format!("export `{name}` has the wrong type {ty}"))
                }
            }
        }
        Ok(Exports {
            on_context_create: get(store, instance, "proxy_on_context_create")?,
            on_vm_start: get(store, instance, "proxy_on_vm_start")?,
            on_configure: get(store, instance, "proxy_on_configure")?,
            on_request_headers: get(store, instance, "proxy_on_request_headers")?,
            on_request_body: get(store, instance, "proxy_on_request_body")?,
            on_request_trailers: get(store, instance, "proxy_on_request_trailers")?,
            on_response_headers: get(store, instance, "proxy_on_response_headers")?,
            on_response_body: get(store, instance, "proxy_on_response_body")?,
            on_response_trailers: get(store, instance, "proxy_on_response_trailers")?,
            on_log: get(store, instance, "proxy_on_log")?,
            on_done: get(store, instance, "proxy_on_done")?,
            on_delete: get(store, instance, "proxy_on_delete")?,
            on_tick: get(store, instance, "proxy_on_tick")?,
            on_queue_ready: get(store, instance, "proxy_on_queue_ready")?,
            on_http_call_response: get(store, instance, "proxy_on_http_call_response")?,
        })
    }
}

/// One instance of a plugin, with its root context and the HTTP contexts the proxy created.
/// `Send`, not `Sync`: one per worker (the proxy wraps it in a `Mutex`).
pub struct Vm {
    plugin: Plugin,
    store: Store<Host>,
    /// Shared with each callback, which borrows its export from it (a `TypedFunc` clone costs
    /// more than the `Arc`'s).
    exports: Arc<Exports>,
    next_context: ContextId,
    poisoned: bool,
}

impl fmt::Debug for Vm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vm")
            .field("plugin", &self.plugin.name())
            .field("contexts", &self.store.data().contexts)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

/// Converts the ABI's `usize` lengths (32-bit in wasm32) saturating.
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Vm {
    fn new(plugin: &Plugin) -> Result<Vm, Error> {
        let inner = &plugin.inner;
        let name = || inner.config.name.clone();
        let mut store = Store::new(inner.pre.module().engine(), Host::new(Arc::clone(inner)));
        store.limiter(|host| &mut host.limiter);
        store.set_epoch_deadline(inner.deadline_ticks);
        let instance = match inner.pre.instantiate(&mut store) {
            Ok(instance) => instance,
            Err(e) => {
                return Err(match classify(inner, &store, "instantiate", e) {
                    Error::Trap { plugin, message, .. } => Error::Instantiate { plugin, reason: message },
                    other => other,
                });
            }
        };
        let abi = |reason: String| Error::Abi { plugin: name(), reason };
        let memory = instance.get_memory(&mut store, "memory").ok_or_else(|| abi("no exported `memory`".into()))?;
        let alloc = ["proxy_on_memory_allocate", "malloc"]
            .iter()
            .find_map(|n| instance.get_func(&mut store, n))
            .ok_or_else(|| abi("no `proxy_on_memory_allocate` (or `malloc`) export".into()))?
            .typed::<u32, u32>(&store)
            .map_err(|e| abi(format!("the allocator export has the wrong type: {e:#}")))?;
        store.data_mut().memory = Some(memory);
        store.data_mut().alloc = Some(alloc);
        let exports = Arc::new(Exports::new(&mut store, &instance).map_err(abi)?);
        let mut vm = Vm { plugin: plugin.clone(), store, exports, next_context: ROOT_CONTEXT + 1, poisoned: false };

        // A reactor: `_initialize`, then `main(0, 0)` if exported; else, for modules built as
        // commands, `_start`.
        if let Some(func) = instance.get_func(&mut vm.store, "_initialize") {
            let func = func.typed::<(), ()>(&vm.store).map_err(|e| abi(format!("`_initialize`: {e:#}")))?;
            vm.run("_initialize", ROOT_CONTEXT, None, |store| func.call(store, ()))?;
            if let Some(func) = instance.get_func(&mut vm.store, "main") {
                let func = func.typed::<(u32, u32), u32>(&vm.store).map_err(|e| abi(format!("`main`: {e:#}")))?;
                vm.run("main", ROOT_CONTEXT, None, |store| func.call(store, (0, 0)))?;
            }
        } else if let Some(func) = instance.get_func(&mut vm.store, "_start") {
            let func = func.typed::<(), ()>(&vm.store).map_err(|e| abi(format!("`_start`: {e:#}")))?;
            vm.run("_start", ROOT_CONTEXT, None, |store| func.call(store, ()))?;
        }
        if let Some(f) = vm.exports.on_context_create.clone() {
            vm.run("proxy_on_context_create", ROOT_CONTEXT, None, |store| f.call(store, (ROOT_CONTEXT, 0)))?;
        }
        let vm_config_len = len32(inner.config.vm_configuration.len());
        if let Some(f) = vm.exports.on_vm_start.clone() {
            let ok =
                vm.run("proxy_on_vm_start", ROOT_CONTEXT, None, |store| f.call(store, (ROOT_CONTEXT, vm_config_len)))?;
            if ok == 0 {
                return Err(Error::Configure { plugin: name(), callback: "proxy_on_vm_start" });
            }
        }
        let config_len = len32(inner.config.configuration.len());
        if let Some(f) = vm.exports.on_configure.clone() {
            let ok =
                vm.run("proxy_on_configure", ROOT_CONTEXT, None, |store| f.call(store, (ROOT_CONTEXT, config_len)))?;
            if ok == 0 {
                return Err(Error::Configure { plugin: name(), callback: "proxy_on_configure" });
            }
        }
        Ok(vm)
    }

    /// The plugin this VM runs.
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// Creates an HTTP context (`proxy_on_context_create(id, root)`) for a new request.
    pub fn create_http_context(&mut self) -> Result<ContextId, Error> {
        let id = self.next_context;
        self.next_context = self.next_context.checked_add(1).unwrap_or(ROOT_CONTEXT + 1);
        let exports = Arc::clone(&self.exports);
        if let Some(f) = &exports.on_context_create {
            self.run("proxy_on_context_create", id, None, |store| f.call(store, (id, ROOT_CONTEXT)))?;
        }
        self.store.data_mut().contexts.insert(id);
        Ok(id)
    }

    /// `proxy_on_request_headers`: the filter sees and may change `s.request_headers`.
    pub fn on_request_headers(&mut self, ctx: ContextId, s: &mut Stream, end_of_stream: bool) -> Result<Action, Error> {
        let n = len32(s.request_headers.len());
        self.stream_callback(
            "proxy_on_request_headers",
            ctx,
            s,
            |e| e.on_request_headers.as_ref(),
            (n, end_of_stream as u32),
        )
    }

    /// `proxy_on_request_body`: the filter sees `s.request_body` (all of it that is buffered;
    /// `body_size` is its length).
    pub fn on_request_body(&mut self, ctx: ContextId, s: &mut Stream, end_of_stream: bool) -> Result<Action, Error> {
        let n = len32(s.request_body.len());
        self.stream_callback("proxy_on_request_body", ctx, s, |e| e.on_request_body.as_ref(), (n, end_of_stream as u32))
    }

    /// `proxy_on_request_trailers`.
    pub fn on_request_trailers(&mut self, ctx: ContextId, s: &mut Stream) -> Result<Action, Error> {
        let n = len32(s.request_trailers.len());
        self.trailers_callback("proxy_on_request_trailers", ctx, s, |e| e.on_request_trailers.as_ref(), n)
    }

    /// `proxy_on_response_headers`: the filter sees and may change `s.response_headers`.
    pub fn on_response_headers(
        &mut self,
        ctx: ContextId,
        s: &mut Stream,
        end_of_stream: bool,
    ) -> Result<Action, Error> {
        let n = len32(s.response_headers.len());
        self.stream_callback(
            "proxy_on_response_headers",
            ctx,
            s,
            |e| e.on_response_headers.as_ref(),
            (n, end_of_stream as u32),
        )
    }

    /// `proxy_on_response_body`: the filter sees `s.response_body`.
    pub fn on_response_body(&mut self, ctx: ContextId, s: &mut Stream, end_of_stream: bool) -> Result<Action, Error> {
        let n = len32(s.response_body.len());
        self.stream_callback(
            "proxy_on_response_body",
            ctx,
            s,
            |e| e.on_response_body.as_ref(),
            (n, end_of_stream as u32),
        )
    }

    /// `proxy_on_response_trailers`.
    pub fn on_response_trailers(&mut self, ctx: ContextId, s: &mut Stream) -> Result<Action, Error> {
        let n = len32(s.response_trailers.len());
        self.trailers_callback("proxy_on_response_trailers", ctx, s, |e| e.on_response_trailers.as_ref(), n)
    }

    /// `proxy_on_log`: the request is complete (every map and property is readable).
    pub fn on_log(&mut self, ctx: ContextId, s: &mut Stream) -> Result<(), Error> {
        self.check_context(ctx)?;
        let exports = Arc::clone(&self.exports);
        if let Some(f) = &exports.on_log {
            self.run("proxy_on_log", ctx, Some(s), |store| f.call(store, ctx))?;
        }
        Ok(())
    }

    /// `proxy_on_done` then `proxy_on_delete`: the context is gone afterwards.
    pub fn finish(&mut self, ctx: ContextId, s: &mut Stream) -> Result<(), Error> {
        self.check_context(ctx)?;
        let exports = Arc::clone(&self.exports);
        let res = (|| {
            if let Some(f) = &exports.on_done {
                self.run("proxy_on_done", ctx, Some(&mut *s), |store| f.call(store, ctx))?;
            }
            if let Some(f) = &exports.on_delete {
                self.run("proxy_on_delete", ctx, Some(&mut *s), |store| f.call(store, ctx))?;
            }
            Ok(())
        })();
        self.store.data_mut().forget_context(ctx);
        res
    }

    /// The HTTP calls the guest dispatched since the last take, in order.
    pub fn take_http_calls(&mut self) -> Vec<HttpCall> {
        std::mem::take(&mut self.store.data_mut().calls)
    }

    /// Answers an HTTP call: `proxy_on_http_call_response(context, token, headers, body, trailers)`.
    /// `s` is the caller's stream (`None` when the root context made the call); `response` is
    /// `None` when the call failed or timed out, which the filter sees as zero headers, as in
    /// Envoy. A local response or `proxy_continue_stream` lands in `s`.
    pub fn on_http_call_response(
        &mut self,
        context: ContextId,
        s: Option<&mut Stream>,
        token: u32,
        response: Option<HttpCallResponse>,
    ) -> Result<(), Error> {
        if context != ROOT_CONTEXT {
            self.check_context(context)?;
        }
        self.check_poisoned()?;
        // The token must be outstanding, and answered on the context that dispatched it.
        let outstanding = &mut self.store.data_mut().outstanding;
        if outstanding.get(&token) != Some(&context) {
            return Err(Error::UnknownToken { plugin: self.plugin.name().to_owned(), token });
        }
        outstanding.remove(&token);
        let response = response.unwrap_or_default();
        let (h, b, t) = (len32(response.headers.len()), len32(response.body.len()), len32(response.trailers.len()));
        self.store.data_mut().call_response = Some(response);
        let exports = Arc::clone(&self.exports);
        let res = match &exports.on_http_call_response {
            Some(f) => {
                self.run("proxy_on_http_call_response", context, s, |store| f.call(store, (context, token, h, b, t)))
            }
            None => Ok(()),
        };
        self.store.data_mut().call_response = None;
        res
    }

    /// The tick period the root context asked for (`proxy_set_tick_period_milliseconds`), if any.
    pub fn tick_period(&self) -> Option<Duration> {
        self.store.data().tick_period
    }

    /// `proxy_on_tick` on the root context.
    pub fn on_tick(&mut self) -> Result<(), Error> {
        let exports = Arc::clone(&self.exports);
        if let Some(f) = &exports.on_tick {
            self.run("proxy_on_tick", ROOT_CONTEXT, None, |store| f.call(store, ROOT_CONTEXT))?;
        }
        Ok(())
    }

    /// The queues this VM registered that received items since the last ask (each is reported
    /// to one VM only).
    pub fn ready_queues(&mut self) -> Vec<u32> {
        let host = self.store.data();
        host.plugin.shared.take_ready(&host.queues)
    }

    /// `proxy_on_queue_ready` on the root context.
    pub fn on_queue_ready(&mut self, queue_id: u32) -> Result<(), Error> {
        let exports = Arc::clone(&self.exports);
        if let Some(f) = &exports.on_queue_ready {
            self.run("proxy_on_queue_ready", ROOT_CONTEXT, None, |store| f.call(store, (ROOT_CONTEXT, queue_id)))?;
        }
        Ok(())
    }

    /// The size of the VM's linear memory in bytes (it only grows).
    pub fn memory_size(&self) -> usize {
        self.store.data().memory.map_or(0, |m| m.data_size(&self.store))
    }

    /// Whether an earlier error poisoned this VM (it then refuses every call).
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// The live HTTP contexts.
    pub fn contexts(&self) -> impl Iterator<Item = ContextId> + '_ {
        self.store.data().contexts.iter().copied()
    }

    fn check_poisoned(&self) -> Result<(), Error> {
        if self.poisoned {
            return Err(Error::Poisoned { plugin: self.plugin.name().to_owned() });
        }
        Ok(())
    }

    fn check_context(&self, ctx: ContextId) -> Result<(), Error> {
        if !self.store.data().contexts.contains(&ctx) {
            return Err(Error::UnknownContext { plugin: self.plugin.name().to_owned(), context: ctx });
        }
        Ok(())
    }

    fn stream_callback(
        &mut self,
        callback: &'static str,
        ctx: ContextId,
        s: &mut Stream,
        export: fn(&Exports) -> Option<&StreamFn>,
        (n, eos): (u32, u32),
    ) -> Result<Action, Error> {
        self.check_context(ctx)?;
        let exports = Arc::clone(&self.exports);
        let Some(f) = export(&exports) else { return Ok(Action::Continue) };
        let action = self.run(callback, ctx, Some(s), |store| f.call(store, (ctx, n, eos)))?;
        Ok(to_action(action))
    }

    fn trailers_callback(
        &mut self,
        callback: &'static str,
        ctx: ContextId,
        s: &mut Stream,
        export: fn(&Exports) -> Option<&TrailersFn>,
        n: u32,
    ) -> Result<Action, Error> {
        self.check_context(ctx)?;
        let exports = Arc::clone(&self.exports);
        let Some(f) = export(&exports) else { return Ok(Action::Continue) };
        let action = self.run(callback, ctx, Some(s), |store| f.call(store, (ctx, n)))?;
        Ok(to_action(action))
    }

    /// Runs one callback: lends the stream to the store, arms the deadline, and turns a failure
    /// into an [`Error`] that poisons the VM.
    fn run<R>(
        &mut self,
        callback: &'static str,
        ctx: ContextId,
        stream: Option<&mut Stream>,
        call: impl FnOnce(&mut Store<Host>) -> wasmtime::Result<R>,
    ) -> Result<R, Error> {
        self.check_poisoned()?;
        let inner = &self.plugin.inner;
        self.store.set_epoch_deadline(inner.deadline_ticks);
        // The stream stays where it is; the host reaches it through the pointer until `end`.
        self.store.data_mut().begin(ctx, stream.map(std::ptr::NonNull::from));
        let res = {
            let lent = EndsCallback(&mut self.store);
            call(&mut *lent.0)
        };
        res.map_err(|e| {
            self.poisoned = true;
            classify(inner, &self.store, callback, e)
        })
    }
}

/// Ends the callback in progress ([`host::Host::end`]) when dropped, so the stream lent to the
/// host is taken back also when the call unwinds.
struct EndsCallback<'s>(&'s mut Store<Host>);

impl Drop for EndsCallback<'_> {
    fn drop(&mut self) {
        self.0.data_mut().end();
    }
}

fn to_action(n: u32) -> Action {
    // Envoy treats anything but Continue as stopping iteration.
    if n == 0 { Action::Continue } else { Action::Pause }
}

/// Names a failed call into the guest.
fn classify(inner: &PluginInner, store: &Store<Host>, callback: &'static str, err: wasmtime::Error) -> Error {
    let plugin = inner.config.name.clone();
    let host = store.data();
    if host.limiter.hit {
        return Error::MemoryLimit { plugin, callback, limit: inner.config.memory_limit };
    }
    if let Some(wasmtime::Trap::Interrupt) = err.downcast_ref::<wasmtime::Trap>() {
        return Error::Deadline { plugin, callback };
    }
    let mut message = format!("{err:#}");
    if let Some(last) = &host.last_critical {
        message = format!("{message} (the filter logged: {last})");
    }
    Error::Trap { plugin, callback, message }
}
