//! # duet-wasm — the wasmtime host for duet programs
//!
//! **API boundary.** Loads a `.wasm` built against the duet program ABI (docs/ABI.md, versions 1
//! and 2),
//! creates its maps in duet-maps from the `duet.maps` manifest — or attaches to maps the caller
//! already has, such as a `duet_vm::Module`'s, so an eBPF program and a Wasm program share
//! them — and runs its programs with kernel semantics for every `duet` import.
//!
//! ```text
//! bytes ──► WasmModule::load ──► module.executor("prog") ──► executor.run_xdp(&mut packet)
//!             │ manifest → maps        │ one Store + Instance       │ copy in, call, copy back
//!             │ AOT cache (by hash)    │ memory cap (StoreLimits)   │ epoch deadline per call
//! ```
//!
//! Safety comes from the Wasm sandbox plus limits: every guest pointer an import receives is
//! bounds-checked against linear memory (a bad one traps with [`GuestFault`]), each instance's
//! memory is capped ([`WasmOptions::memory_limit`]), and each invocation has an epoch deadline
//! ([`WasmOptions::deadline`]), so an infinite loop ends with [`WasmError::Deadline`] naming the
//! program while the host goes on. After any error the executor replaces its instance before the
//! next run, so no half-updated guest state leaks into later packets.
//!
//! HTTP programs (ABI version 2: `duet_prog_http_request_*`, `duet_prog_http_response_*`,
//! `duet_prog_route_*`) run with [`Executor::run_http`] on an exchange the caller lends for the
//! call; the `http_*` imports check guest pointers and then apply `duet_helpers::http`'s rules, the
//! same code the eBPF VM's helpers use, so both executors give identical results. Outside
//! `run_http` those imports answer `-EPERM`.
//!
//! Unsafe code is confined to four private modules: reading map values through the pointers
//! duet-maps hands out, loading the AOT cache, loading code compiled ahead of time (`aot.rs`,
//! for executables without a compiler), and lending an exchange to the store for one call
//! (`exchange.rs`). The cache (`cache.rs`) is the only I/O.
#![deny(unsafe_code)]

mod aot;
mod cache;
mod exchange;
mod host;
mod manifest;
mod value;

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use duet_helpers::http::{HttpExchange, HttpMd, HttpOutcome, HttpProgram, HttpRunState};
use duet_helpers::{DEFAULT_MAX_MAP_MEMORY, Env, SkbHook};
use duet_maps::{Map, MapError, MapSpec};
use wasmtime::{
    Config, Engine, ExternType, Instance, InstancePre, Linker, Memory, Module, Store, StoreLimitsBuilder, Trap,
    TypedFunc,
};

pub use aot::Precompiled;
pub use cache::{CacheStatus, default_cache_dir};
pub use host::{GuestFault, MAX_TRACE_LINE_BYTES, MAX_TRACE_LINES, MAX_TRACE_LINES_PER_CALL, TraceLog};
pub use manifest::MAPS_SECTION;

use crate::exchange::Lent;
use crate::host::{Host, Shared};

/// The newest ABI version this host implements; `duet_abi_version` may return it or any earlier
/// version down to [`MIN_ABI_VERSION`].
pub const ABI_VERSION: i32 = 3;
/// The oldest ABI version this host accepts (version 1: no http programs or imports).
pub const MIN_ABI_VERSION: i32 = 1;
/// Export name prefix of XDP programs.
pub const XDP_PREFIX: &str = "duet_prog_xdp_";
/// Export name prefix of event (probe) programs.
pub const PROBE_PREFIX: &str = "duet_prog_probe_";
/// Export name prefix of HTTP request filters (ABI version 2).
pub const HTTP_REQUEST_PREFIX: &str = "duet_prog_http_request_";
/// Export name prefix of HTTP response filters (ABI version 2).
pub const HTTP_RESPONSE_PREFIX: &str = "duet_prog_http_response_";
/// Export name prefix of route programs (ABI version 2).
pub const ROUTE_PREFIX: &str = "duet_prog_route_";
/// Export prefix of TC classifiers (ABI version 2): `(frame, len) -> TC action`.
pub const CLASSIFIER_PREFIX: &str = "duet_prog_classifier_";
/// Export prefix of socket filters (ABI version 2): `(frame, len) -> bytes to keep`.
pub const SOCKET_FILTER_PREFIX: &str = "duet_prog_socket_filter_";
/// Export prefix of cgroup skb programs (ABI version 2): `(frame, len) -> 0 drop | 1 pass`.
pub const CGROUP_SKB_PREFIX: &str = "duet_prog_cgroup_skb_";

/// Wasm page size.
const PAGE: u64 = 64 * 1024;

// === Options and errors ===

/// How to load a module.
#[derive(Clone, Debug)]
pub struct WasmOptions {
    /// Number of CPUs per-CPU maps hold values for.
    pub n_cpus: usize,
    /// Time, randomness and the CPU programs run on (the same [`Env`] the eBPF VM takes).
    pub env: Env,
    /// Most bytes of linear memory one instance may have.
    pub memory_limit: usize,
    /// Longest one invocation may run (approximate: checked at epoch ticks, a tenth of this apart).
    pub deadline: Duration,
    /// Where compiled modules are cached; `None` compiles every time. See [`default_cache_dir`].
    pub cache_dir: Option<PathBuf>,
    /// Most bytes all of the manifest's maps may preallocate together, counted as
    /// [`MapSpec::storage_bytes`] counts them: the same budget as
    /// `duet_vm::LoadOptions::max_map_memory` for the same maps in a `.bpf.o`. Default:
    /// [`DEFAULT_MAX_MAP_MEMORY`].
    pub max_map_memory: u64,
}

impl Default for WasmOptions {
    fn default() -> Self {
        WasmOptions {
            n_cpus: 1,
            env: Env::system(),
            memory_limit: 64 << 20,
            deadline: Duration::from_millis(100),
            cache_dir: None,
            max_map_memory: DEFAULT_MAX_MAP_MEMORY,
        }
    }
}

/// Why a module could not be loaded or a program could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WasmError {
    /// The bytes are not a core Wasm module.
    #[error("invalid module: {reason}")]
    Invalid {
        /// What is wrong.
        reason: String,
    },
    /// The `duet.maps` manifest is malformed.
    #[error("invalid `duet.maps` manifest: {reason}")]
    Manifest {
        /// What is wrong.
        reason: String,
    },
    /// wasmtime rejected or could not compile the module.
    #[error("cannot compile the module")]
    Compile {
        /// wasmtime's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Code compiled ahead of time cannot be loaded by this runtime (another wasmtime version,
    /// other engine settings, another CPU, or not wasmtime's format).
    #[error("the precompiled module cannot be loaded by this runtime: {reason}")]
    Precompiled {
        /// wasmtime's explanation.
        reason: String,
    },
    /// The module does not follow the duet ABI (exports, imports or version).
    #[error("not a duet ABI v{MIN_ABI_VERSION}..v{ABI_VERSION} module: {reason}")]
    Abi {
        /// What is missing or wrong.
        reason: String,
    },
    /// The options are inconsistent.
    #[error("invalid options: {reason}")]
    Options {
        /// What is wrong.
        reason: String,
    },
    /// A map from the manifest could not be created.
    #[error("map `{name}`")]
    Map {
        /// The map.
        name: String,
        /// Why.
        #[source]
        source: MapError,
    },
    /// A map handed in for sharing does not match the manifest's declaration.
    #[error("shared map `{name}` does not match the module's manifest: {reason}")]
    SharedMap {
        /// The map.
        name: String,
        /// The difference.
        reason: String,
    },
    /// No program (or map) of that name.
    #[error("no {what} named `{name}` (the module has: {available})")]
    NotFound {
        /// `program` or `map`.
        what: &'static str,
        /// The name asked for.
        name: String,
        /// What there is.
        available: String,
    },
    /// The program is of another kind than the call needs.
    #[error("program `{program}` is a {kind} program, not {expected}")]
    WrongKind {
        /// The program.
        program: String,
        /// Its kind.
        kind: ProgramKind,
        /// The kind the call runs.
        expected: ProgramKind,
    },
    /// [`Executor::run_http`] was called for a program that is not an http program.
    #[error("program `{program}` is a {kind} program, not an http program")]
    NotHttp {
        /// The program.
        program: String,
        /// Its kind.
        kind: ProgramKind,
    },
    /// Creating an instance failed (the memory limit, or a trap in a start function).
    #[error("cannot instantiate the module for program `{program}`")]
    Instantiate {
        /// The program.
        program: String,
        /// wasmtime's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The program ran past its deadline and was stopped.
    #[error("program `{program}` ran past its deadline of {deadline:?} and was stopped")]
    Deadline {
        /// The program.
        program: String,
        /// The deadline.
        deadline: Duration,
    },
    /// A host call from the program was given a bad argument (a pointer outside memory, ...).
    #[error("program `{program}` trapped in a host call")]
    Fault {
        /// The program.
        program: String,
        /// What the host found.
        #[source]
        source: GuestFault,
    },
    /// The program trapped (`unreachable`, an out-of-bounds access, stack overflow, ...).
    #[error("program `{program}` trapped: {reason}")]
    Trap {
        /// The program.
        program: String,
        /// wasmtime's description.
        reason: String,
    },
    /// The thread that enforces deadlines could not be started.
    #[error("cannot start the deadline thread")]
    Thread {
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The input does not fit the ABI (longer than `i32::MAX` bytes).
    #[error("program `{program}`: input of {len} bytes is too large")]
    InputTooLarge {
        /// The program.
        program: String,
        /// The input length.
        len: usize,
    },
}

// === Programs ===

/// The hook a program attaches to, from its export name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProgramKind {
    /// `duet_prog_xdp_<name>`: packet in, XDP action out.
    Xdp,
    /// `duet_prog_probe_<name>`: event record in, `0` out.
    Probe,
    /// `duet_prog_http_request_<name>`: an HTTP request filter (`duet_http_md` in, 0 or 1 out).
    HttpRequest,
    /// `duet_prog_http_response_<name>`: an HTTP response filter.
    HttpResponse,
    /// `duet_prog_route_<name>`: a route program (`duet_http_md` in, an `i64` choice out).
    Route,
    /// `duet_prog_classifier_<name>`: a TC classifier (Ethernet frame in, TC action out).
    Classifier,
    /// `duet_prog_socket_filter_<name>`: a socket filter (Ethernet frame in, bytes to keep out).
    SocketFilter,
    /// `duet_prog_cgroup_skb_<name>`: a cgroup skb program (Ethernet frame in, 0 or 1 out).
    CgroupSkb,
}

impl ProgramKind {
    /// The http program type, for http programs.
    pub fn http_program(self) -> Option<HttpProgram> {
        match self {
            ProgramKind::HttpRequest => Some(HttpProgram::Request),
            ProgramKind::HttpResponse => Some(HttpProgram::Response),
            ProgramKind::Route => Some(HttpProgram::Route),
            _ => None,
        }
    }

    /// The skb hook, for skb programs (run them with [`Executor::run_skb`]).
    pub fn skb_hook(self) -> Option<SkbHook> {
        match self {
            ProgramKind::Classifier => Some(SkbHook::Classifier),
            ProgramKind::SocketFilter => Some(SkbHook::SocketFilter),
            ProgramKind::CgroupSkb => Some(SkbHook::CgroupSkb),
            _ => None,
        }
    }
}

impl fmt::Display for ProgramKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProgramKind::Xdp => "xdp",
            ProgramKind::Probe => "probe",
            ProgramKind::HttpRequest => "http_request",
            ProgramKind::HttpResponse => "http_response",
            ProgramKind::Route => "route",
            ProgramKind::Classifier => "classifier",
            ProgramKind::SocketFilter => "socket_filter",
            ProgramKind::CgroupSkb => "cgroup_skb",
        })
    }
}

/// Export prefixes and the kind each declares.
const PREFIXES: [(&str, ProgramKind); 8] = [
    (XDP_PREFIX, ProgramKind::Xdp),
    (PROBE_PREFIX, ProgramKind::Probe),
    (HTTP_REQUEST_PREFIX, ProgramKind::HttpRequest),
    (HTTP_RESPONSE_PREFIX, ProgramKind::HttpResponse),
    (ROUTE_PREFIX, ProgramKind::Route),
    (CLASSIFIER_PREFIX, ProgramKind::Classifier),
    (SOCKET_FILTER_PREFIX, ProgramKind::SocketFilter),
    (CGROUP_SKB_PREFIX, ProgramKind::CgroupSkb),
];

/// A program the module exports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramInfo {
    /// The Rust function name (the export name without its prefix).
    pub name: String,
    /// The hook.
    pub kind: ProgramKind,
    /// The full export name.
    pub export: String,
}

// === WasmModule ===

/// A compiled, validated duet module with its maps. Cheap to share across threads by reference;
/// each thread makes its own [`Executor`].
pub struct WasmModule {
    inner: Arc<Inner>,
    programs: Vec<ProgramInfo>,
    map_names: Vec<String>,
    cache: CacheStatus,
}

/// What executors need from their module, kept alive as long as any executor is.
struct Inner {
    pre: InstancePre<Host>,
    shared: Arc<Shared>,
    n_cpus: usize,
    memory_limit: usize,
    deadline: Duration,
    deadline_ticks: u64,
    _ticker: Ticker,
}

impl fmt::Debug for WasmModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WasmModule")
            .field("programs", &self.programs)
            .field("maps", &self.map_names)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl WasmModule {
    /// Compiles (or loads from the cache) and validates `wasm`, and creates its maps.
    pub fn load(wasm: &[u8], options: &WasmOptions) -> Result<Self, WasmError> {
        Self::load_with_maps(wasm, options, std::iter::empty::<(String, Arc<Map>)>())
    }

    /// As [`WasmModule::load`], but a manifest map whose name is in `shared` uses that map instead
    /// of a new one (it must have the same type, sizes, capacity and flags, and `n_cpus`). Pass a
    /// `duet_vm::Module`'s maps, `vm.maps().map(|(n, m)| (n, Arc::clone(m)))`, to share them
    /// with its eBPF programs.
    pub fn load_with_maps<N: Into<String>>(
        wasm: &[u8],
        options: &WasmOptions,
        shared: impl IntoIterator<Item = (N, Arc<Map>)>,
    ) -> Result<Self, WasmError> {
        Self::load_code(aot::Code::Wasm(wasm), options, shared)
    }

    /// The loader behind [`WasmModule::load_with_maps`] and [`WasmModule::load_precompiled`].
    fn load_code<N: Into<String>>(
        code: aot::Code<'_>,
        options: &WasmOptions,
        shared: impl IntoIterator<Item = (N, Arc<Map>)>,
    ) -> Result<Self, WasmError> {
        let n_cpus = options.n_cpus;
        if n_cpus == 0 || options.env.cpu as usize >= n_cpus {
            return Err(WasmError::Options {
                reason: format!("env.cpu {} must be below n_cpus {n_cpus}", options.env.cpu),
            });
        }
        if options.deadline.is_zero() {
            return Err(WasmError::Options { reason: "the deadline must be positive".into() });
        }
        let engine = engine()?;
        let (specs, module, cache) = code.load(&engine, options.cache_dir.as_deref())?;
        check_imports(&module)?;
        let programs = check_exports(&module, options.memory_limit)?;

        let mut shared: Vec<(String, Arc<Map>)> = shared.into_iter().map(|(n, m)| (n.into(), m)).collect();
        // Every map is checked, and the new ones counted against the budget, before any is
        // created: a hostile manifest must not allocate first and fail later.
        let mut budget = options.max_map_memory;
        for spec in &specs {
            let map_err = |source| WasmError::Map { name: spec.name.clone(), source };
            spec.validate().map_err(map_err)?;
            if shared.iter().any(|(n, _)| *n == spec.name) {
                continue;
            }
            let bytes = spec.storage_bytes(n_cpus);
            budget = budget.checked_sub(bytes).ok_or_else(|| {
                map_err(MapError::TooBig(format!(
                    "{} entries would need about {bytes} bytes, past the module's limit of {} bytes \
                     (WasmOptions::max_map_memory)",
                    spec.max_entries, options.max_map_memory
                )))
            })?;
        }
        let mut maps = Vec::with_capacity(specs.len());
        for spec in specs {
            let map = match shared.iter().position(|(n, _)| *n == spec.name) {
                Some(i) => {
                    let (_, map) = shared.swap_remove(i);
                    check_shared(&spec, &map, n_cpus)?;
                    map
                }
                None => {
                    let name = spec.name.clone();
                    Arc::new(Map::new(spec, n_cpus).map_err(|source| WasmError::Map { name, source })?)
                }
            };
            maps.push(map);
        }
        let map_names = maps.iter().map(|m| m.spec().name.clone()).collect();

        let mut linker = Linker::new(&engine);
        host::define(&mut linker).map_err(|e| WasmError::Compile { source: e.into() })?;
        let pre = linker.instantiate_pre(&module).map_err(|e| WasmError::Abi { reason: format!("{e:#}") })?;
        let tick = (options.deadline / 10).clamp(Duration::from_millis(1), Duration::from_millis(100));
        let deadline_ticks = options.deadline.as_nanos().div_ceil(tick.as_nanos()) as u64 + 1;
        let inner = Arc::new(Inner {
            pre,
            shared: Arc::new(Shared {
                maps,
                programs: programs.iter().map(|p| (p.export.clone(), p.kind)).collect(),
                env: options.env.clone(),
                log: Mutex::new(TraceLog::default()),
            }),
            n_cpus,
            memory_limit: options.memory_limit,
            deadline: options.deadline,
            deadline_ticks,
            _ticker: Ticker::start(engine, tick)?,
        });
        // One instance proves the module instantiates within the limits and speaks ABI v1 or v2.
        let mut probe = Live::new(&inner, "duet_abi_version", None, options.env.cpu as usize)?;
        let version = probe
            .instance
            .get_typed_func::<(), i32>(&mut probe.store, "duet_abi_version")
            .and_then(|f| f.call(&mut probe.store, ()))
            .map_err(|e| call_error("duet_abi_version", inner.deadline, e))?;
        if !(MIN_ABI_VERSION..=ABI_VERSION).contains(&version) {
            return Err(WasmError::Abi {
                reason: format!(
                    "`duet_abi_version` returned {version}; this host implements versions {MIN_ABI_VERSION} to {ABI_VERSION}"
                ),
            });
        }
        if version < 3
            && let Some(import) = module.imports().find(|i| {
                i.module() == "duet" && ["tail_call", "xdp_adjust_head", "xdp_adjust_tail"].contains(&i.name())
            })
        {
            return Err(WasmError::Abi {
                reason: format!(
                    "`duet_abi_version` returned {version} but the module imports `{}`, which needs version 3",
                    import.name()
                ),
            });
        }
        if version < 2 {
            // Version 1 is version 2 without http and skb programs and http imports.
            let http_import = module.imports().find(|i| host::is_http_import(i.name())).map(|i| i.name());
            let http_program = programs.iter().find(|p| p.kind.http_program().is_some() || p.kind.skb_hook().is_some());
            if let Some(what) = http_import
                .map(|i| format!("imports `{i}`"))
                .or_else(|| http_program.map(|p| format!("exports `{}`", p.export)))
            {
                return Err(WasmError::Abi {
                    reason: format!(
                        "`duet_abi_version` returned {version} but the module {what}, which needs version 2"
                    ),
                });
            }
        }
        Ok(WasmModule { inner, programs, map_names, cache })
    }

    /// The programs, in export order.
    pub fn programs(&self) -> &[ProgramInfo] {
        &self.programs
    }

    /// The program called `name`.
    pub fn program(&self, name: &str) -> Result<&ProgramInfo, WasmError> {
        self.programs.iter().find(|p| p.name == name).ok_or_else(|| WasmError::NotFound {
            what: "program",
            name: name.to_owned(),
            available: list(self.programs.iter().map(|p| p.name.as_str())),
        })
    }

    /// The maps with their names, in manifest order (a map's id is its position).
    pub fn maps(&self) -> impl Iterator<Item = (&str, &Arc<Map>)> {
        self.map_names.iter().map(String::as_str).zip(self.inner.shared.maps.iter())
    }

    /// The map called `name`.
    pub fn map(&self, name: &str) -> Result<&Arc<Map>, WasmError> {
        self.maps().find(|(n, _)| *n == name).map(|(_, m)| m).ok_or_else(|| WasmError::NotFound {
            what: "map",
            name: name.to_owned(),
            available: list(self.map_names.iter().map(String::as_str)),
        })
    }

    /// Points slot `index` of prog array `map` at XDP program `program`, for the `tail_call`
    /// import (`duet run --tail-call MAP:SLOT=PROGRAM`).
    pub fn set_prog_array(&self, map: &str, index: u32, program: &str) -> Result<(), WasmError> {
        let target = self.programs.iter().position(|p| p.name == program).ok_or_else(|| WasmError::NotFound {
            what: "program",
            name: program.to_owned(),
            available: list(self.programs.iter().map(|p| p.name.as_str())),
        })?;
        let prog_array = self.map(map)?;
        prog_array.update(&index.to_le_bytes(), &(target as u32).to_le_bytes(), 0, None).map_err(|error| {
            WasmError::Abi { reason: format!("cannot put program `{program}` in slot {index} of `{map}`: {error}") }
        })
    }

    /// What the AOT cache did when this module was loaded.
    pub fn cache_status(&self) -> &CacheStatus {
        &self.cache
    }

    /// An executor for program `name`, on the CPU of the options' [`Env`].
    pub fn executor(&self, name: &str) -> Result<Executor, WasmError> {
        self.executor_on_cpu(name, self.inner.shared.env.cpu as usize)
    }

    /// An executor for program `name` that runs as CPU `cpu` (its per-CPU map slots and
    /// `get_smp_processor_id`), e.g. one per thread.
    pub fn executor_on_cpu(&self, name: &str, cpu: usize) -> Result<Executor, WasmError> {
        let program = self.program(name)?.clone();
        let n_cpus = self.inner.n_cpus;
        if cpu >= n_cpus {
            return Err(WasmError::Options { reason: format!("cpu {cpu} must be below n_cpus {n_cpus}") });
        }
        let live = Live::new(&self.inner, &program.name, Some((&program.export, program.kind)), cpu)?;
        Ok(Executor { inner: Arc::clone(&self.inner), program, cpu, live: Some(live) })
    }

    /// Takes the `trace` lines written so far by every executor of this module (see
    /// [`take_trace`](Self::take_trace) for how many were dropped).
    pub fn take_log(&self) -> Vec<String> {
        self.take_trace().lines
    }

    /// Takes the `trace` lines written so far by every executor of this module, with the number
    /// of lines dropped since the last take: a call keeps at most [`MAX_TRACE_LINES_PER_CALL`]
    /// lines of at most [`MAX_TRACE_LINE_BYTES`], and the module holds at most
    /// [`MAX_TRACE_LINES`] until they are taken, so a guest cannot grow the host's memory
    /// through `trace`. Take them after every call to lose none below those limits.
    pub fn take_trace(&self) -> TraceLog {
        self.inner.shared.log.lock().map(|mut l| std::mem::take(&mut *l)).unwrap_or_default()
    }
}

fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<_> = names.map(|n| format!("`{n}`")).collect();
    if names.is_empty() { "none".into() } else { names.join(", ") }
}

/// The engine configuration every module uses (part of the AOT cache key through wasmtime's
/// compatibility hash).
fn engine() -> Result<Engine, WasmError> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    #[cfg(feature = "compiler")]
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    Engine::new(&config).map_err(|e| WasmError::Compile { source: e.into() })
}

fn check_imports(module: &Module) -> Result<(), WasmError> {
    for import in module.imports() {
        if import.module() != host::IMPORT_MODULE || !host::IMPORTS.contains(&import.name()) {
            return Err(WasmError::Abi {
                reason: format!(
                    "imports `{}.{}`, which the duet host does not provide (it provides module `{}`: {})",
                    import.module(),
                    import.name(),
                    host::IMPORT_MODULE,
                    host::IMPORTS.join(", ")
                ),
            });
        }
    }
    Ok(())
}

/// Checks the ABI's exports and lists the programs.
fn check_exports(module: &Module, memory_limit: usize) -> Result<Vec<ProgramInfo>, WasmError> {
    let abi = |reason: String| WasmError::Abi { reason };
    // Every ABI function takes only `i32`s, `n_params` of them, and returns one `i32` (route
    // programs: one `i64`).
    let func_sig = |name: &str, n_params: usize, result_i64: bool| -> Result<(), WasmError> {
        match module.get_export(name) {
            None => Err(abi(format!("no `{name}` export"))),
            Some(ExternType::Func(f))
                if f.params().len() == n_params
                    && f.results().len() == 1
                    && f.params().all(|t| t.is_i32())
                    && f.results().all(|t| if result_i64 { t.is_i64() } else { t.is_i32() }) =>
            {
                Ok(())
            }
            Some(ExternType::Func(f)) => {
                let want = vec!["i32"; n_params].join(" ");
                let result = if result_i64 { "i64" } else { "i32" };
                Err(abi(format!("`{name}` must be (func (param {want}) (result {result})), found {f}")))
            }
            Some(other) => Err(abi(format!("`{name}` must be a function, found {other:?}"))),
        }
    };
    match module.get_export("memory") {
        Some(ExternType::Memory(mem)) => {
            let min_bytes = mem.minimum().saturating_mul(PAGE);
            if min_bytes > memory_limit as u64 {
                return Err(abi(format!(
                    "its memory starts at {min_bytes} bytes, over the memory limit of {memory_limit} bytes"
                )));
            }
        }
        Some(other) => return Err(abi(format!("`memory` must be a memory, found {other:?}"))),
        None => return Err(abi("no `memory` export".into())),
    }
    func_sig("duet_abi_version", 0, false)?;
    func_sig("duet_buffer", 1, false)?;
    let mut programs = Vec::new();
    for export in module.exports() {
        let Some((kind, name)) =
            PREFIXES.iter().find_map(|(prefix, kind)| Some((*kind, export.name().strip_prefix(prefix)?)))
        else {
            continue;
        };
        if name.is_empty() {
            return Err(abi(format!("export `{}` has no program name", export.name())));
        }
        func_sig(export.name(), 2, kind == ProgramKind::Route)?;
        programs.push(ProgramInfo { name: name.to_owned(), kind, export: export.name().to_owned() });
    }
    if programs.is_empty() {
        let prefixes: Vec<String> = PREFIXES.iter().map(|(p, _)| format!("`{p}<name>`")).collect();
        return Err(abi(format!("no programs (exports named {})", prefixes.join(", "))));
    }
    Ok(programs)
}

fn check_shared(spec: &MapSpec, map: &Map, n_cpus: usize) -> Result<(), WasmError> {
    let have = map.spec();
    let mut diffs = Vec::new();
    if have.map_type != spec.map_type {
        diffs.push(format!("type {} vs {}", have.map_type, spec.map_type));
    }
    for (what, a, b) in [
        ("key_size", have.key_size, spec.key_size),
        ("value_size", have.value_size, spec.value_size),
        ("max_entries", have.max_entries, spec.max_entries),
        ("flags", have.flags, spec.flags),
    ] {
        if a != b {
            diffs.push(format!("{what} {a} vs {b}"));
        }
    }
    if spec.map_type.is_per_cpu() && map.n_cpus() != n_cpus {
        diffs.push(format!("n_cpus {} vs {n_cpus}", map.n_cpus()));
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(WasmError::SharedMap {
            name: spec.name.clone(),
            reason: format!("{} (shared vs manifest)", diffs.join(", ")),
        })
    }
}

/// Turns an error from a call into the guest into a [`WasmError`] naming the program.
fn call_error(program: &str, deadline: Duration, err: wasmtime::Error) -> WasmError {
    let program = program.to_owned();
    if let Some(fault) = err.downcast_ref::<GuestFault>() {
        return WasmError::Fault { program, source: fault.clone() };
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => WasmError::Deadline { program, deadline },
        _ => WasmError::Trap { program, reason: format!("{err:#}") },
    }
}

// === Executor ===

/// Runs one program, on one instance that lives as long as the executor (so a call costs a copy
/// in, the call and a copy out). Not shared between threads: make one per thread.
pub struct Executor {
    inner: Arc<Inner>,
    program: ProgramInfo,
    cpu: usize,
    /// `None` after an error: the next run makes a fresh instance.
    live: Option<Live>,
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor").field("program", &self.program).field("cpu", &self.cpu).finish_non_exhaustive()
    }
}

/// A program's export: every kind returns `i32` except route programs (`i64`).
enum Entry {
    I32(TypedFunc<(i32, i32), i32>),
    I64(TypedFunc<(i32, i32), i64>),
}

/// One store with its instance and the exports a run calls.
struct Live {
    store: Store<Host>,
    instance: Instance,
    memory: Memory,
    buffer: TypedFunc<i32, i32>,
    entry: Option<Entry>,
    /// The last pointer `duet_buffer` returned and the length asked for. The ABI says the buffer
    /// is reused between calls, so it also serves every shorter input, and `duet_buffer` is
    /// called again only for a longer one: one guest call per packet instead of two.
    input: Option<(i32, usize)>,
}

impl Live {
    fn new(inner: &Inner, program: &str, export: Option<(&str, ProgramKind)>, cpu: usize) -> Result<Live, WasmError> {
        let host = Host {
            shared: Arc::clone(&inner.shared),
            limits: StoreLimitsBuilder::new().memory_size(inner.memory_limit).instances(1).memories(1).build(),
            memory: None,
            traced: 0,
            cpu,
            http: None,
            xdp: None,
        };
        let mut store = Store::new(inner.pre.module().engine(), host);
        store.limiter(|host| &mut host.limits);
        store.set_epoch_deadline(inner.deadline_ticks);
        let instantiate_error = |e: wasmtime::Error| match call_error(program, inner.deadline, e) {
            WasmError::Trap { program, reason } => WasmError::Instantiate { program, source: reason.into() },
            other => other,
        };
        let instance = inner.pre.instantiate(&mut store).map_err(instantiate_error)?;
        // `check_exports` proved these exist with these types.
        let abi = |e: wasmtime::Error| WasmError::Abi { reason: format!("{e:#}") };
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| WasmError::Abi { reason: "no `memory` export".into() })?;
        store.data_mut().memory = Some(memory);
        let buffer = instance.get_typed_func::<i32, i32>(&mut store, "duet_buffer").map_err(abi)?;
        let entry = match export {
            Some((export, ProgramKind::Route)) => {
                Some(Entry::I64(instance.get_typed_func::<(i32, i32), i64>(&mut store, export).map_err(abi)?))
            }
            Some((export, _)) => {
                Some(Entry::I32(instance.get_typed_func::<(i32, i32), i32>(&mut store, export).map_err(abi)?))
            }
            None => None,
        };
        Ok(Live { store, instance, memory, buffer, entry, input: None })
    }
}

impl Executor {
    /// The program this executor runs.
    pub fn program(&self) -> &ProgramInfo {
        &self.program
    }

    /// Runs an XDP program over `packet` and returns its action (`0` aborted .. `4` redirect).
    /// Bytes the program rewrote are copied back into `packet`; a program that moved the
    /// packet's bounds (`xdp_adjust_head`/`tail`) changes its length, so `packet` is the packet
    /// as the program left it.
    pub fn run_xdp(&mut self, packet: &mut Vec<u8>) -> Result<u32, WasmError> {
        self.expect(ProgramKind::Xdp)?;
        let (verdict, range, _) = self.call(packet, None)?;
        if let Some(live) = &self.live {
            packet.clear();
            packet.extend_from_slice(&live.memory.data(&live.store)[range]);
        }
        Ok(verdict as u32)
    }

    /// Runs an skb program (classifier, socket filter, cgroup skb) over an Ethernet `frame` and
    /// returns its result as a `u32` (a classifier's `TC_ACT_UNSPEC` is `0xffff_ffff`, as the
    /// kernel reports it). The program gets the whole frame; the SDK starts a socket filter's
    /// and a cgroup skb program's packet at the network header, as the kernel does. Bytes a
    /// classifier rewrote are copied back into `frame`.
    pub fn run_skb(&mut self, frame: &mut [u8]) -> Result<u32, WasmError> {
        if self.program.kind.skb_hook().is_none() {
            return Err(WasmError::WrongKind {
                program: self.program.name.clone(),
                kind: self.program.kind,
                expected: ProgramKind::Classifier,
            });
        }
        let (verdict, range, _) = self.call(frame, None)?;
        if self.program.kind == ProgramKind::Classifier
            && let Some(live) = &self.live
        {
            frame.copy_from_slice(&live.memory.data(&live.store)[range]);
        }
        Ok(verdict as u32)
    }

    /// Runs an event program over `record` and returns what it returned (`0` by the ABI).
    pub fn run_probe(&mut self, record: &[u8]) -> Result<u32, WasmError> {
        self.expect(ProgramKind::Probe)?;
        self.call(record, None).map(|(ret, _, _)| ret as u32)
    }

    /// Runs an http program (ABI version 2) on one exchange: `md` is copied to `duet_buffer`
    /// and passed as `(ctx, 24)`; the `http_*` imports work on `ex` with `duet_helpers::http`'s rules,
    /// as the eBPF VM's helpers do. Decode the outcome with [`HttpOutcome::filter_verdict`] or
    /// [`HttpOutcome::route_choice`]. Filters' `i32` results are sign-extended into
    /// [`HttpOutcome::ret`].
    pub fn run_http(&mut self, md: &HttpMd, ex: &mut dyn HttpExchange) -> Result<HttpOutcome, WasmError> {
        let Some(program) = self.program.kind.http_program() else {
            return Err(WasmError::NotHttp { program: self.program.name.clone(), kind: self.program.kind });
        };
        let (ret, _, state) = self.call(&md.to_bytes(), Some((HttpRunState::new(program), ex)))?;
        let state = state.unwrap_or_else(|| HttpRunState::new(program));
        Ok(HttpOutcome { ret, responded: state.responded(), mutations: state.mutations() })
    }

    fn expect(&self, kind: ProgramKind) -> Result<(), WasmError> {
        if self.program.kind != kind {
            return Err(WasmError::WrongKind {
                program: self.program.name.clone(),
                kind: self.program.kind,
                expected: kind,
            });
        }
        Ok(())
    }

    /// Copies the input in, calls the program (with `http`'s exchange lent to the imports), and
    /// returns its result, where the input lies, and the http run's final state.
    fn call(
        &mut self,
        input: &[u8],
        http: Option<(HttpRunState, &mut dyn HttpExchange)>,
    ) -> Result<(i64, Range<usize>, Option<HttpRunState>), WasmError> {
        let name = &self.program.name;
        let len = input.len();
        let len32 = i32::try_from(len).map_err(|_| WasmError::InputTooLarge { program: name.clone(), len })?;
        let live = match &mut self.live {
            Some(live) => live,
            None => self.live.insert(Live::new(
                &self.inner,
                name,
                Some((&self.program.export, self.program.kind)),
                self.cpu,
            )?),
        };
        let deadline = self.inner.deadline;
        // An XDP packet gets the kernel's headroom and tailroom around it (duet_helpers::xdp), so
        // `xdp_adjust_head`/`tail` can move its bounds; other inputs are copied as they are.
        let xdp = self.program.kind == ProgramKind::Xdp;
        let buffer_len = if xdp { duet_helpers::xdp::buffer_len(len) } else { len };
        let buffer_len32 =
            i32::try_from(buffer_len).map_err(|_| WasmError::InputTooLarge { program: name.clone(), len })?;
        let res = (|| {
            live.store.set_epoch_deadline(self.inner.deadline_ticks);
            live.store.data_mut().traced = 0;
            let base = match live.input {
                Some((ptr, capacity)) if buffer_len <= capacity => ptr,
                _ => {
                    let ptr =
                        live.buffer.call(&mut live.store, buffer_len32).map_err(|e| call_error(name, deadline, e))?;
                    live.input = Some((ptr, buffer_len));
                    ptr
                }
            };
            let mem = live.memory.data_mut(&mut live.store);
            let buffer = host::guest_range(mem.len(), base, buffer_len, "duet_buffer", "returned buffer")
                .map_err(|source| WasmError::Fault { program: name.clone(), source })?;
            let run = xdp.then(|| host::XdpRun {
                base: buffer.start as u32,
                bounds: duet_helpers::xdp::Bounds::new(len),
                depth: 0,
            });
            let (ptr, range) = match run {
                Some(run) => {
                    // A fresh buffer each run, as the kernel's: zeroed headroom, the frame.
                    let start = buffer.start + run.bounds.data;
                    mem[buffer.start..start].fill(0);
                    (run.packet().0, start..start + len)
                }
                None => (base, buffer.clone()),
            };
            mem[range.clone()].copy_from_slice(input);
            let entry = live.entry.as_ref().ok_or_else(|| WasmError::Abi { reason: "no entry point".into() })?;
            live.store.data_mut().xdp = run;
            let call = |store: &mut Store<Host>| match entry {
                Entry::I32(f) => f.call(store, (ptr, len32)).map(i64::from),
                Entry::I64(f) => f.call(store, (ptr, len32)),
            };
            let (ret, state) = match http {
                Some((state, ex)) => {
                    // The exchange is reachable from the imports only while `lent` lives.
                    let mut lent = Lent::new(&mut live.store, state, ex);
                    let ret = call(&mut lent);
                    (ret, lent.state().cloned())
                }
                None => (call(&mut live.store), None),
            };
            let ret = ret.map_err(|e| call_error(name, deadline, e))?;
            // Where the packet lies now, if the program moved its bounds.
            let range = match live.store.data_mut().xdp.take() {
                Some(run) => {
                    let (ptr, len) = run.packet();
                    ptr as u32 as usize..ptr as u32 as usize + len as usize
                }
                None => range,
            };
            Ok((ret, range, state))
        })();
        if res.is_err() {
            // The guest may have stopped halfway through updating its own state.
            self.live = None;
        }
        res
    }
}

// Compile-time proof of the threading model: one module shared by every worker, one executor
// per worker.
const _: () = {
    const fn send<T: Send>() {}
    const fn sync<T: Send + Sync>() {}
    send::<Executor>();
    sync::<WasmModule>();
};

// === Ticker ===

/// The thread that advances the engine's epoch, which is what makes deadlines fire. Stops when
/// the module and all its executors are gone.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: Engine, tick: Duration) -> Result<Ticker, WasmError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("duet-wasm-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::park_timeout(tick);
                    engine.increment_epoch();
                }
            })
            .map_err(|source| WasmError::Thread { source })?;
        Ok(Ticker { stop, thread: Some(thread) })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
