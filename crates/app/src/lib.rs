//! duet's Wasm HTTP applications (API boundary).
//!
//! An application is a WASI 0.2 component that exports `wasi:http/incoming-handler` (the world
//! `wasmtime serve`, Spin and wasmCloud run). [`App::load`] compiles it once (optionally through
//! an on-disk cache), checks what it exports and imports, and pre-links it; [`App::serve`] then
//! answers one `http::Request` with a **fresh instance per request**, taken from wasmtime's
//! pooling allocator so that an instance costs microseconds, and dropped when the request ends.
//!
//! ```text
//! http::Request ─► App::serve ─► permit (max_concurrency) ─► Store + pooled instance ─► incoming-handler.handle
//!                      ▲                                          │ wasi:http/outgoing-handler ─► Outbound (the sidecar)
//!                      └── http::Response<AppBody> ◄──────────────┘ duet:app/kv ─► KvStore (the sidecar)
//! ```
//!
//! Capabilities are granted, never inherited: no filesystem, no sockets, no arguments, stdin
//! closed, stdout discarded, stderr logged through `tracing` up to a cap per request, only the
//! configured environment variables, outbound HTTP only to the authorities `allowed_outbound`
//! lists and only through the host's [`Outbound`], a key-value store only when the host gives
//! one ([`KvStore`]).
//!
//! Faults are per request: a trap, the deadline or the memory cap ends that request's instance
//! and gives a 500 (or cuts a response body already under way); the next request gets a new
//! instance. A malformed response — a body that does not match its `content-length`, or one the
//! app abandoned — is refused the same way: a 500 (`bad-response`) when the body is short enough
//! to read before answering ([`BUFFERED_BODY_LIMIT`]), else a cut body, never a response that
//! claims bytes it does not send. [`AppStats`] counts what happened, as plain atomics.
//!
//! The crate does no listening: the sidecar owns listeners and calls [`App::serve`].

#![deny(unsafe_code)]

#[cfg(feature = "host")]
mod aot;
#[cfg(feature = "host")]
mod app;
#[cfg(feature = "host")]
mod cache;
mod config;
#[cfg(feature = "host")]
mod engine;
#[cfg(feature = "host")]
mod host;
#[cfg(feature = "host")]
mod kv;
#[cfg(feature = "host")]
mod outbound;
#[cfg(feature = "host")]
mod stats;

#[cfg(feature = "host")]
pub use app::{App, AppBody, BUFFERED_BODY_LIMIT, BoxError, ERROR_HEADER};
#[cfg(feature = "host")]
pub use cache::{CacheStatus, default_cache_dir};
pub use config::{AppConfig, DirGrant};
#[cfg(feature = "host")]
pub use kv::{KvError, KvStore, MemoryKv};
#[cfg(feature = "host")]
pub use outbound::{BoxFuture, Outbound, OutboundError};
#[cfg(feature = "host")]
pub use stats::{AppStats, AppStatsSnapshot};

use std::path::PathBuf;

/// Why an application could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// A configuration value is out of range.
    #[error("app config: {0}")]
    Config(String),
    /// The `.wasm` file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is a core Wasm module, not a component.
    #[error(
        "{path} is a core WebAssembly module, not a component: a duet app is a WASI 0.2 component \
         exporting wasi:http/incoming-handler (build it for wasm32-wasip2, or wrap a module with \
         `wasm-tools component new`)"
    )]
    CoreModule {
        /// The file.
        path: PathBuf,
    },
    /// Code compiled ahead of time cannot be loaded by this runtime (another wasmtime version,
    /// other engine settings, another CPU, or not wasmtime's format).
    #[error("{path}: the precompiled component cannot be loaded by this runtime: {detail}")]
    Precompiled {
        /// The file it was compiled from.
        path: PathBuf,
        /// wasmtime's explanation.
        detail: String,
    },
    /// The bytes are not a valid component for this engine.
    #[error("{path} is not a valid WebAssembly component: {detail}")]
    Compile {
        /// The file.
        path: PathBuf,
        /// wasmtime's explanation.
        detail: String,
    },
    /// The component does not export `wasi:http/incoming-handler@0.2.x`.
    #[error(
        "{path} does not export wasi:http/incoming-handler@0.2.x, so it is not an HTTP app (it \
         exports: {})",
        if exports.is_empty() { "nothing".to_string() } else { exports.join(", ") }
    )]
    NotHandler {
        /// The file.
        path: PathBuf,
        /// What it exports instead.
        exports: Vec<String>,
    },
    /// The component exports `wasi:http/incoming-handler@0.2.x` with the wrong shape.
    #[error("{path} exports wasi:http/incoming-handler, but not the 0.2 interface duet calls: {detail}")]
    BadHandler {
        /// The file.
        path: PathBuf,
        /// wasmtime's explanation.
        detail: String,
    },
    /// The component imports something the host does not provide.
    #[error(
        "{path} imports what duet does not give apps: {detail} (apps get wasi:cli, wasi:clocks, \
         wasi:random, wasi:io, wasi:http 0.2, capability-less wasi:filesystem and wasi:sockets, \
         and duet:app/kv@0.1.0)"
    )]
    Link {
        /// The file.
        path: PathBuf,
        /// The first missing or mismatched import, as wasmtime names it.
        detail: String,
    },
    /// The engine could not be created (for example the pooling allocator could not reserve
    /// its memory).
    #[error("cannot create the wasm engine: {0}")]
    Engine(String),
}
