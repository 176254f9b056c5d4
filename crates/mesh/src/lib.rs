//! # duet-mesh — the sidecar
//!
//! **API boundary** (used by the `duet` binary; touches the network). An HTTP/1.1 and HTTP/2
//! proxy on tokio + hyper whose request path runs a filter chain of Proxy-Wasm modules (and, in
//! later steps, duet-ABI Wasm and eBPF filters), routes by host and path prefix to clusters, and
//! exports Prometheus metrics and an admin API.
//!
//! ```text
//! YAML ─► Config (strict, located errors) ─► Snapshot (routes, clusters, loaded filters) ─► ArcSwap
//! client ─► listener (TLS?, h1/h2c) ─► proxy::handle ─► ChainRun (filter phases) ─► Cluster::send ─► endpoint
//!                                               ▲ http_call, timers: the proxy performs the filters' I/O
//! ```
//!
//! Invariants: the request path takes no lock on configuration (one `ArcSwap` load per request);
//! a filter fault never takes the proxy down (it is a value, handled by the filter's `on_error`);
//! the Wasm host (duet-proxywasm) does no networking: its HTTP calls and timers are performed
//! here; every queue between tasks is bounded.
#![forbid(unsafe_code)]

pub mod apps;
pub mod backend;
pub mod capture;
pub mod config;
mod engines;
pub mod events;
pub mod filter;
pub mod maps_api;
pub mod metrics;
pub mod programs;
pub mod proxy;
pub mod runtime;
pub mod server;
pub mod tls;
pub mod upstream;
pub mod wasm_filter;

pub use config::{Config, ConfigError};
/// Proxy-Wasm shared data and queues, which [`runtime::Snapshot::build`] takes.
pub use duet_proxywasm::SharedState;
pub use server::{CheckReport, Server, check, run};

/// Errors of body streams.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why the sidecar could not start or load a configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeshError {
    /// The config file is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A filter could not be loaded or configured.
    #[error("filter `{name}`: {message}")]
    Filter {
        /// The filter.
        name: String,
        /// Why.
        message: String,
    },
    /// A certificate or key could not be used.
    #[error("TLS file {}: {message}", path.display())]
    Tls {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        message: String,
    },
    /// A listener address could not be bound.
    #[error("cannot listen on {address}")]
    Bind {
        /// The address.
        address: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Something else in the configuration cannot work.
    #[error("{0}")]
    Invalid(String),
}

/// An error with its causes, `a: b: c`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
