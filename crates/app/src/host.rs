//! The state of one request's store: WASI contexts without capabilities, the `wasi:http`
//! hooks, the memory limiter, the deadline flag and the capped stderr log.

use std::sync::{Arc, Mutex};
use std::task::Poll;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::kv::KvStore;
use crate::outbound::OutboundHooks;

/// The `T` of every `Store<T>` duet-app creates: one request's host state.
pub(crate) struct AppState {
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    pub(crate) hooks: OutboundHooks,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) kv: Option<Arc<dyn KvStore>>,
    /// Set by the epoch callback when the deadline passed, so the trap it raises is counted as
    /// a timeout.
    pub(crate) deadline_hit: bool,
}

impl WasiView for AppState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for AppState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// Builds a WASI context that grants only `env`, the directories of `dirs` and a capped stderr:
/// no arguments, no other files, no network (TCP, UDP and name lookup refused), stdin closed,
/// stdout discarded. A granted directory that cannot be opened now (removed since the app was
/// loaded) is left out and logged; the app sees no such directory.
pub(crate) fn wasi_ctx(env: &[(String, String)], dirs: &[crate::config::DirGrant], stderr: LogSink) -> WasiCtx {
    let mut builder = WasiCtx::builder();
    builder.envs(env).stderr(stderr).allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
    for dir in dirs {
        let perms = if dir.writable { wasmtime_wasi::FsPerms::ReadWrite } else { wasmtime_wasi::FsPerms::ReadOnly };
        if let Err(e) = builder.preopened_dir(&dir.host, &dir.guest, perms) {
            tracing::warn!(host = %dir.host.display(), guest = %dir.guest, error = %e, "app: a granted directory cannot be opened");
        }
    }
    builder.build()
}

// === impl MemoryLimiter ===

/// Refuses linear memory beyond the app's cap, and remembers that it did.
pub(crate) struct MemoryLimiter {
    pub(crate) max_bytes: usize,
    pub(crate) hit: bool,
}

/// The error a refused memory grow raises; the instance traps with it.
#[derive(Debug, thiserror::Error)]
#[error("memory limit: the app tried to grow its memory to {desired} bytes, past max_memory_mb ({max} bytes)")]
pub(crate) struct MemoryLimitExceeded {
    desired: usize,
    max: usize,
}

/// Table elements one table may hold; far above what compiled Rust or C needs.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit = true;
            // Trapping (rather than letting `memory.grow` return -1) makes the overrun a clear
            // fault of this request; a Rust guest would abort on the failed allocation anyway.
            return Err(MemoryLimitExceeded { desired, max: self.max_bytes }.into());
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

// === impl LogSink ===

/// The app's stderr: complete lines go to `tracing` (target `duet_app::stderr`) until
/// `limit` bytes were logged for this request; the rest is dropped with one note. Writes
/// always succeed, so a chatty app never traps on a full log.
#[derive(Clone)]
pub(crate) struct LogSink(Arc<Mutex<LogState>>);

struct LogState {
    app: Arc<str>,
    line: Vec<u8>,
    left: usize,
    truncated: bool,
}

impl LogSink {
    pub(crate) fn new(app: Arc<str>, limit: usize) -> LogSink {
        LogSink(Arc::new(Mutex::new(LogState { app, line: Vec::new(), left: limit, truncated: false })))
    }

    fn write(&self, bytes: &[u8]) {
        let mut state = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for &b in bytes {
            if state.left == 0 {
                if !state.truncated {
                    state.truncated = true;
                    tracing::warn!(target: "duet_app::stderr", app = %state.app, "stderr limit reached; dropping the rest of this request's stderr");
                }
                return;
            }
            state.left -= 1;
            if b == b'\n' {
                state.flush_line();
            } else {
                state.line.push(b);
            }
        }
    }
}

impl LogState {
    fn flush_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        tracing::info!(target: "duet_app::stderr", app = %self.app, "{}", String::from_utf8_lossy(&line));
    }
}

impl Drop for LogState {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.flush_line();
        }
    }
}

impl IsTerminal for LogSink {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogSink {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for LogSink {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: std::pin::Pin<&mut Self>, _cx: &mut std::task::Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: std::pin::Pin<&mut Self>, _cx: &mut std::task::Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
