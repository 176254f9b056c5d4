//! [`AppConfig`]: what the sidecar config's `app:` block says about one application.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::AppError;

/// One application's settings. Deserialisable (strictly: unknown fields are errors) so the
/// sidecar can embed it in its YAML as `app: { wasm: ..., max_memory_mb: 64, ... }`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// The component file.
    pub wasm: PathBuf,
    /// Cap on each instance's linear memory, in MiB (default 64). Growing past it traps the
    /// instance and gives that request a 500.
    #[serde(default = "defaults::max_memory_mb")]
    pub max_memory_mb: u32,
    /// Deadline for one request, in milliseconds, from instantiation to the end of the response
    /// body (default 1000). Past it the instance is dropped: a 500 if no response head was sent
    /// yet, a cut body otherwise.
    #[serde(default = "defaults::timeout_ms")]
    pub timeout_ms: u64,
    /// Instances alive at once (default 256); the pool is sized for exactly this many.
    #[serde(default = "defaults::max_concurrency")]
    pub max_concurrency: u32,
    /// How long a request may wait for a free instance slot when `max_concurrency` are busy, in
    /// milliseconds (default 0: answer 503 with `retry-after: 1` at once). The wait is bounded in
    /// time, so the queue is too.
    #[serde(default)]
    pub queue_timeout_ms: u64,
    /// The environment the app sees: these variables and nothing else.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Authorities the app may send HTTP requests to through `wasi:http/outgoing-handler`:
    /// `host:port` matches exactly, `host` matches that host on any port, `*` matches all.
    /// Hosts compare case-insensitively. Anything else is refused with the `HTTP-request-denied`
    /// error code.
    #[serde(default)]
    pub allowed_outbound: Vec<String>,
    /// Bytes of stderr logged per request (default 4096); the rest is dropped, with one note.
    #[serde(default = "defaults::stderr_limit_bytes")]
    pub stderr_limit_bytes: usize,
    /// Host directories the app sees (WASI preopens), read-only unless `writable`; nothing else
    /// of the filesystem. Default: none.
    #[serde(default)]
    pub dirs: Vec<DirGrant>,
}

/// One host directory granted to an app.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// The directory on the host (relative paths are relative to the sidecar's config file).
    pub host: PathBuf,
    /// Where the app sees it: an absolute path such as `/data`.
    pub guest: String,
    /// Whether the app may create, write and remove files there (default false: read-only).
    #[serde(default)]
    pub writable: bool,
}

mod defaults {
    pub(super) fn max_memory_mb() -> u32 {
        64
    }
    pub(super) fn timeout_ms() -> u64 {
        1000
    }
    pub(super) fn max_concurrency() -> u32 {
        256
    }
    pub(super) fn stderr_limit_bytes() -> usize {
        4096
    }
}

impl AppConfig {
    /// A config for `wasm` with every other setting at its default.
    pub fn new(wasm: impl Into<PathBuf>) -> AppConfig {
        AppConfig {
            wasm: wasm.into(),
            max_memory_mb: defaults::max_memory_mb(),
            timeout_ms: defaults::timeout_ms(),
            max_concurrency: defaults::max_concurrency(),
            queue_timeout_ms: 0,
            env: BTreeMap::new(),
            allowed_outbound: Vec::new(),
            stderr_limit_bytes: defaults::stderr_limit_bytes(),
            dirs: Vec::new(),
        }
    }

    /// Checks every value's range; [`App::load`](crate::App::load) calls it.
    pub fn validate(&self) -> Result<(), AppError> {
        let bad = |msg: String| Err(AppError::Config(msg));
        if !(1..=4096).contains(&self.max_memory_mb) {
            return bad(format!("max_memory_mb must be 1..=4096, not {}", self.max_memory_mb));
        }
        if !(1..=3_600_000).contains(&self.timeout_ms) {
            return bad(format!("timeout_ms must be 1..=3600000, not {}", self.timeout_ms));
        }
        if !(1..=10_000).contains(&self.max_concurrency) {
            return bad(format!("max_concurrency must be 1..=10000, not {}", self.max_concurrency));
        }
        if self.queue_timeout_ms > 60_000 {
            return bad(format!("queue_timeout_ms must be at most 60000, not {}", self.queue_timeout_ms));
        }
        for name in self.env.keys() {
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                return bad(format!("env name {name:?} is empty or holds '=' or NUL"));
            }
        }
        for entry in &self.allowed_outbound {
            if entry != "*" && entry.parse::<http::uri::Authority>().is_err() {
                return bad(format!("allowed_outbound entry {entry:?} is not `host`, `host:port` or `*`"));
            }
        }
        for (i, dir) in self.dirs.iter().enumerate() {
            let guest = dir.guest.as_str();
            if !guest.starts_with('/') || guest.contains('\0') || guest.split('/').any(|c| c == "..") {
                return bad(format!("dirs[{i}].guest {guest:?} must be an absolute path without `..`"));
            }
            if self.dirs[..i].iter().any(|d| d.guest == dir.guest) {
                return bad(format!("dirs[{i}].guest {guest:?} is granted twice"));
            }
            if !dir.host.is_dir() {
                return bad(format!("dirs[{i}].host {} is not a directory", dir.host.display()));
            }
        }
        Ok(())
    }
}
