//! [`App`]: one loaded application, and the request path.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use wasmtime::component::{Component, Linker, Resource, ResourceTable};
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::types::{HostIncomingRequest, HostResponseOutparam};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpView};

use crate::cache::{self, CacheStatus};
use crate::engine::{self, EpochTicker};
use crate::host::{self, AppState, LogSink, MemoryLimiter};
use crate::outbound::{Allowlist, OutboundHooks};
use crate::stats::{self, AppStats};
use crate::{AppConfig, AppError, KvStore, Outbound};

/// Boxed error of response bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response [`App::serve`] returns (the same type as duet-mesh's bodies).
pub type AppBody = UnsyncBoxBody<Bytes, BoxError>;

/// The response header that names why duet answered a request itself instead of the app:
/// `trap`, `timeout`, `memory-limit`, `app-error`, `bad-response`, `overloaded`, `bad-request` or
/// `internal`.
pub const ERROR_HEADER: &str = "duet-app-error";

/// A loaded application: the component compiled and pre-linked once, served with a fresh
/// instance per request. Share it as `Arc<App>`; every method takes `&self`.
pub struct App {
    name: Arc<str>,
    config: AppConfig,
    engine: Engine,
    pub(crate) pre: ProxyPre<AppState>,
    env: Arc<[(String, String)]>,
    allow: Arc<Allowlist>,
    outbound: Option<Arc<dyn Outbound>>,
    kv: Option<Arc<dyn KvStore>>,
    permits: Arc<Semaphore>,
    stats: Arc<AppStats>,
    cache_status: CacheStatus,
    _ticker: EpochTicker,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("outbound", &self.outbound.is_some())
            .field("kv", &self.kv.is_some())
            .field("cache_status", &self.cache_status)
            .finish_non_exhaustive()
    }
}

/// The `wasi:http/incoming-handler` versions duet serves (wasmtime links any 0.2.x).
const HANDLER_EXPORT: &str = "wasi:http/incoming-handler@0.2.";

impl App {
    /// Reads, compiles (or loads from `cache_dir`, see [`default_cache_dir`](crate::default_cache_dir))
    /// and pre-links the component `config.wasm`. Fails with a clear [`AppError`] when the file
    /// is a core module, does not export `wasi:http/incoming-handler@0.2.x`, or imports anything
    /// the host does not give apps.
    pub fn load(config: &AppConfig, cache_dir: Option<PathBuf>) -> Result<App, AppError> {
        config.validate()?;
        let bytes =
            std::fs::read(&config.wasm).map_err(|source| AppError::Read { path: config.wasm.clone(), source })?;
        App::from_bytes(config, &bytes, cache_dir)
    }

    /// [`App::load`] for bytes already in memory; `config.wasm` only names the app in errors
    /// and logs.
    pub fn from_bytes(config: &AppConfig, bytes: &[u8], cache_dir: Option<PathBuf>) -> Result<App, AppError> {
        config.validate()?;
        let path = config.wasm.clone();
        if bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0] {
            return Err(AppError::CoreModule { path });
        }
        let engine = engine::new_engine(config)?;
        let (component, cache_status) = cache::load_or_compile(&engine, bytes, cache_dir.as_deref())
            .map_err(|e| AppError::Compile { path: path.clone(), detail: format!("{e:#}") })?;
        if let CacheStatus::Failed(why) = &cache_status {
            tracing::warn!(app = %path.display(), "compile cache not used: {why}");
        }
        App::from_component(config, engine, &component, cache_status)
    }

    /// The rest of [`App::from_bytes`] once the component is compiled (or deserialized).
    pub(crate) fn from_component(
        config: &AppConfig,
        engine: Engine,
        component: &Component,
        cache_status: CacheStatus,
    ) -> Result<App, AppError> {
        let path = config.wasm.clone();
        let pre = link(&engine, component, &path)?;
        let name: Arc<str> = app_name(&path).into();
        Ok(App {
            name,
            config: config.clone(),
            _ticker: EpochTicker::start(&engine),
            engine,
            pre,
            env: config.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            allow: Arc::new(Allowlist::new(&config.allowed_outbound)),
            outbound: None,
            kv: None,
            permits: Arc::new(Semaphore::new(config.max_concurrency as usize)),
            stats: Arc::new(AppStats::default()),
            cache_status,
        })
    }

    /// Gives the app outbound HTTP: requests to authorities in `allowed_outbound` go to
    /// `outbound`. Without it every outbound request is refused (`HTTP-request-denied`).
    pub fn with_outbound(mut self, outbound: Arc<dyn Outbound>) -> App {
        self.outbound = Some(outbound);
        self
    }

    /// Gives the app a key-value store (`duet:app/kv`). Without it every call fails with
    /// `no-store`.
    pub fn with_kv(mut self, kv: Arc<dyn KvStore>) -> App {
        self.kv = Some(kv);
        self
    }

    /// The app's name in logs: the file stem of `config.wasm`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The configuration it was loaded with.
    pub fn config(&self) -> &AppConfig {
        &self.config
    }

    /// The app's counters, to read for metrics.
    pub fn stats(&self) -> &Arc<AppStats> {
        &self.stats
    }

    /// What the compile cache did at load.
    pub fn cache_status(&self) -> &CacheStatus {
        &self.cache_status
    }

    /// Answers one request with a fresh instance. Never fails: a trap, the deadline or the
    /// memory cap gives 500, a full instance pool 503, a request without authority 400, each
    /// with the [`ERROR_HEADER`] header naming why. The permit and the instance are held until
    /// the app's code has finished, body included.
    ///
    /// The app's response is checked before anyone sees it claim something: a `content-length`
    /// that is not one decimal number gives 500 `bad-response`; a body under a declared length
    /// of at most [`BUFFERED_BODY_LIMIT`] bytes is read whole first, and one that is not exactly
    /// that long, or that the app aborted, gives 500 `bad-response` (or `trap`, `timeout`,
    /// `memory-limit` when the instance ended so). Longer or undeclared bodies stream; a
    /// mismatch with the declared length, an aborted body, or a fault of the instance before
    /// the handler returned then ends the body with an error frame, so the connection is cut
    /// instead of a response looking complete.
    pub async fn serve<B>(&self, req: http::Request<B>) -> http::Response<AppBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let start = Instant::now();
        stats::bump(&self.stats.requests);
        let head_request = req.method() == http::Method::HEAD;
        let response = self.serve_inner(req, head_request).await;
        stats::add(&self.stats.latency_us_sum, start.elapsed().as_micros() as u64);
        response
    }

    async fn serve_inner<B>(&self, req: http::Request<B>, head_request: bool) -> http::Response<AppBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let Some(permit) = self.permit().await else {
            stats::bump(&self.stats.rejected);
            let mut response = error_response(503, "overloaded", "the app is at max_concurrency");
            response.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"));
            return response;
        };
        let timeout = Duration::from_millis(self.config.timeout_ms);
        let mut store = self.new_store(Instant::now() + timeout);
        let scheme = if req.uri().scheme() == Some(&http::uri::Scheme::HTTPS) { Scheme::Https } else { Scheme::Http };
        let req = req.map(|body| {
            body.map_err(|e| wasmtime_wasi_http::Error::InternalError(Some(format!("request body: {}", e.into()))))
        });
        let incoming = match store.data_mut().http().new_incoming_request(scheme, req) {
            Ok(incoming) => incoming,
            Err(e) => return error_response(400, "bad-request", &format!("{e}")),
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let out = match store.data_mut().http().new_response_outparam(tx) {
            Ok(out) => out,
            Err(e) => return error_response(500, "internal", &format!("{e}")),
        };
        let run = Run {
            pre: self.pre.clone(),
            stats: Arc::clone(&self.stats),
            name: Arc::clone(&self.name),
            deadline: tokio::time::Instant::now() + timeout,
        };
        let task = tokio::spawn(run.run(store, incoming, out, permit));
        match rx.await {
            Ok(Ok(response)) => {
                let response = response.map(|body| body.map_err(|e| Box::new(e) as BoxError).boxed_unsync());
                self.checked(response, task, head_request).await
            }
            Ok(Err(code)) => {
                stats::bump(&self.stats.app_errors);
                error_response(500, "app-error", &format!("the app answered with error code {code:?}"))
            }
            // The app dropped the response outparam without setting it: the run's outcome says why.
            Err(_) => match task.await {
                Ok(Outcome::Trap) => error_response(500, "trap", "the app trapped"),
                Ok(Outcome::Timeout) => error_response(500, "timeout", "the app ran past timeout_ms"),
                Ok(Outcome::MemoryLimit) => error_response(500, "memory-limit", "the app ran past max_memory_mb"),
                Ok(Outcome::Done) => {
                    stats::bump(&self.stats.app_errors);
                    error_response(500, "app-error", "the app returned without setting a response")
                }
                Err(e) => error_response(500, "internal", &format!("the app's task failed: {e}")),
            },
        }
    }

    /// The app's response as the client may see it (see [`App::serve`]).
    async fn checked(
        &self,
        response: http::Response<AppBody>,
        task: JoinHandle<Outcome>,
        head_request: bool,
    ) -> http::Response<AppBody> {
        let declared = match declared_length(response.headers()) {
            Ok(declared) => declared,
            Err(why) => return self.bad_response(why, task).await,
        };
        let status = response.status();
        // These responses have no body whatever their content-length says (RFC 9110 §6.4.1).
        if head_request
            || status.is_informational()
            || status == http::StatusCode::NO_CONTENT
            || status == http::StatusCode::NOT_MODIFIED
        {
            return response;
        }
        let Some(length) = declared.filter(|&n| n <= BUFFERED_BODY_LIMIT) else {
            return response.map(|inner| CheckedBody { inner, declared, seen: 0, run: Some(task) }.boxed_unsync());
        };
        let (parts, body) = response.into_parts();
        let why = match body.collect().await {
            Ok(collected) => {
                let trailers = collected.trailers().cloned();
                let bytes = collected.to_bytes();
                if bytes.len() as u64 == length {
                    let body = Full::new(bytes).map_err(|never| match never {});
                    let body = match trailers {
                        Some(trailers) => body.with_trailers(async move { Some(Ok(trailers)) }).boxed_unsync(),
                        None => body.boxed_unsync(),
                    };
                    return http::Response::from_parts(parts, body);
                }
                format!("the app declared content-length {length} and wrote {} bytes", bytes.len())
            }
            Err(e) => format!("the app's response body failed: {e}"),
        };
        self.bad_response(why, task).await
    }

    /// The 500 for a response the app got wrong, named after how the instance ended.
    async fn bad_response(&self, why: String, task: JoinHandle<Outcome>) -> http::Response<AppBody> {
        match task.await {
            Ok(Outcome::Trap) => error_response(500, "trap", "the app trapped"),
            Ok(Outcome::Timeout) => error_response(500, "timeout", "the app ran past timeout_ms"),
            Ok(Outcome::MemoryLimit) => error_response(500, "memory-limit", "the app ran past max_memory_mb"),
            Ok(Outcome::Done) | Err(_) => {
                tracing::warn!(app = %self.name, "malformed response refused: {why}");
                stats::bump(&self.stats.app_errors);
                error_response(500, "bad-response", &format!("the app's response was malformed: {why}"))
            }
        }
    }

    /// A permit for one instance: at once, or within `queue_timeout_ms`, or none.
    async fn permit(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() {
            return Some(permit);
        }
        if self.config.queue_timeout_ms == 0 {
            return None;
        }
        let wait = Duration::from_millis(self.config.queue_timeout_ms);
        tokio::time::timeout(wait, Arc::clone(&self.permits).acquire_owned()).await.ok()?.ok()
    }

    fn new_store(&self, deadline: Instant) -> Store<AppState> {
        let state = AppState {
            wasi: host::wasi_ctx(
                &self.env,
                &self.config.dirs,
                LogSink::new(Arc::clone(&self.name), self.config.stderr_limit_bytes),
            ),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: OutboundHooks {
                outbound: self.outbound.clone(),
                allow: Arc::clone(&self.allow),
                stats: Arc::clone(&self.stats),
                app: Arc::clone(&self.name),
            },
            limiter: MemoryLimiter { max_bytes: self.config.max_memory_mb as usize * 1024 * 1024, hit: false },
            kv: self.kv.clone(),
            deadline_hit: false,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        // Every epoch tick the guest yields to the executor (so a busy app shares its worker
        // thread) and the deadline is checked; past it the instance traps.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut ctx| {
            if Instant::now() >= deadline {
                ctx.data_mut().deadline_hit = true;
                return Err(DeadlineExceeded.into());
            }
            Ok(UpdateDeadline::Yield(1))
        });
        store
    }
}

/// The longest declared response body [`App::serve`] reads whole before answering, so that a body
/// that does not match its `content-length` becomes a 500 rather than a cut response.
pub const BUFFERED_BODY_LIMIT: u64 = 64 * 1024;

/// The response's declared body length: `None` without `content-length`; an error unless every
/// `content-length` field is the same run of decimal digits (RFC 9110 §8.6).
fn declared_length(headers: &http::HeaderMap) -> Result<Option<u64>, String> {
    let mut declared = None;
    for value in headers.get_all(http::header::CONTENT_LENGTH) {
        let bytes = value.as_bytes();
        let n = std::str::from_utf8(bytes)
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| format!("content-length `{}` is not a number", String::from_utf8_lossy(bytes)))?;
        if declared.is_some_and(|d| d != n) {
            return Err("two different content-length values".into());
        }
        declared = Some(n);
    }
    Ok(declared)
}

/// A streamed response body that errors, instead of ending, when it does not match the declared
/// length or the instance did not end well.
struct CheckedBody {
    inner: AppBody,
    declared: Option<u64>,
    seen: u64,
    /// The instance's task, awaited once the body has ended.
    run: Option<JoinHandle<Outcome>>,
}

impl http_body::Body for CheckedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        use std::task::Poll;
        let this = self.get_mut();
        if this.run.is_none() {
            return Poll::Ready(None);
        }
        match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.seen += data.len() as u64;
                    if let Some(declared) = this.declared.filter(|&d| this.seen > d) {
                        this.run = None;
                        return Poll::Ready(Some(Err(format!(
                            "the app wrote more than its content-length {declared}"
                        )
                        .into())));
                    }
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(Some(Err(e))) => {
                this.run = None;
                return Poll::Ready(Some(Err(e)));
            }
            Poll::Ready(None) => {}
        }
        if let Some(declared) = this.declared.filter(|&d| this.seen != d) {
            this.run = None;
            let message = format!("the app declared content-length {declared} and wrote {} bytes", this.seen);
            return Poll::Ready(Some(Err(message.into())));
        }
        let Some(run) = this.run.as_mut() else { return Poll::Ready(None) };
        let outcome = match std::pin::Pin::new(run).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(outcome) => outcome,
        };
        this.run = None;
        match outcome {
            Ok(Outcome::Done) => Poll::Ready(None),
            Ok(outcome) => Poll::Ready(Some(Err(format!("the app's instance ended with {outcome:?}").into()))),
            Err(e) => Poll::Ready(Some(Err(format!("the app's task failed: {e}").into()))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.run.is_none()
    }
}

/// The trap the epoch callback raises past the deadline.
#[derive(Debug, thiserror::Error)]
#[error("the app ran past its deadline (timeout_ms)")]
struct DeadlineExceeded;

/// How one instance's run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    Trap,
    Timeout,
    MemoryLimit,
}

/// What a request's task needs besides its store.
struct Run {
    pre: ProxyPre<AppState>,
    stats: Arc<AppStats>,
    name: Arc<str>,
    deadline: tokio::time::Instant,
}

impl Run {
    /// Instantiates and calls `handle`, within the deadline, and counts how it ended. The
    /// deadline also covers time the guest spends waiting on the host (outbound requests,
    /// request body), which the epoch callback does not see.
    async fn run(
        self,
        mut store: Store<AppState>,
        incoming: Resource<HostIncomingRequest>,
        out: Resource<HostResponseOutparam>,
        permit: OwnedSemaphorePermit,
    ) -> Outcome {
        let stats = &self.stats;
        stats::bump(&stats.in_flight);
        let call = async {
            let t0 = Instant::now();
            let proxy = self.pre.instantiate_async(&mut store).await?;
            stats::bump(&stats.instances_created);
            stats::add(&stats.instantiate_ns_sum, t0.elapsed().as_nanos() as u64);
            proxy.wasi_http_incoming_handler().call_handle(&mut store, incoming, out).await
        };
        let result = tokio::time::timeout_at(self.deadline, call).await;
        let outcome = match result {
            Ok(Ok(())) => Outcome::Done,
            Err(_elapsed) => Outcome::Timeout,
            Ok(Err(_)) if store.data().deadline_hit => Outcome::Timeout,
            Ok(Err(_)) if store.data().limiter.hit => Outcome::MemoryLimit,
            Ok(Err(e)) => {
                tracing::warn!(app = %self.name, "app trapped: {e:?}");
                Outcome::Trap
            }
        };
        match outcome {
            Outcome::Done => {}
            Outcome::Trap => stats::bump(&stats.traps),
            Outcome::Timeout => {
                tracing::warn!(app = %self.name, "app ran past timeout_ms; instance dropped");
                stats::bump(&stats.timeouts);
            }
            Outcome::MemoryLimit => {
                tracing::warn!(app = %self.name, "app ran past max_memory_mb; instance dropped");
                stats::bump(&stats.memory_limits);
            }
        }
        // The instance goes back to the pool before the permit is released, so a waiting
        // request always finds a free slot.
        drop(store);
        stats.in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        drop(permit);
        outcome
    }
}

/// Links the component against everything apps get, and checks its export.
fn link(engine: &Engine, component: &Component, path: &Path) -> Result<ProxyPre<AppState>, AppError> {
    let exports: Vec<String> = component.component_type().exports(engine).map(|(name, _)| name.to_string()).collect();
    if !exports.iter().any(|name| name.starts_with(HANDLER_EXPORT)) {
        return Err(AppError::NotHandler { path: path.to_path_buf(), exports });
    }
    let mut linker = Linker::<AppState>::new(engine);
    let linked = wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))
        .and_then(|()| crate::kv::add_to_linker(&mut linker));
    linked.map_err(|e| AppError::Engine(format!("cannot build the linker: {e:#}")))?;
    let instance_pre = linker
        .instantiate_pre(component)
        .map_err(|e| AppError::Link { path: path.to_path_buf(), detail: format!("{e:#}") })?;
    ProxyPre::new(instance_pre).map_err(|e| AppError::BadHandler { path: path.to_path_buf(), detail: format!("{e:#}") })
}

fn app_name(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

fn error_response(status: u16, kind: &'static str, message: &str) -> http::Response<AppBody> {
    let mut response = http::Response::new(
        Full::new(Bytes::from(format!("{message}\n"))).map_err(|never| match never {}).boxed_unsync(),
    );
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(ERROR_HEADER, http::HeaderValue::from_static(kind));
    response
}

#[cfg(test)]
mod tests {
    use super::declared_length;

    fn headers(values: &[&'static str]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for v in values {
            map.append(http::header::CONTENT_LENGTH, http::HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn a_declared_length_is_one_run_of_digits() {
        assert_eq!(declared_length(&headers(&[])), Ok(None));
        assert_eq!(declared_length(&headers(&["0"])), Ok(Some(0)));
        assert_eq!(declared_length(&headers(&["31", "31"])), Ok(Some(31)));
        for bad in [&["abc"][..], &["+5"], &[""], &[" 5"], &["3", "5"], &["99999999999999999999999"]] {
            assert!(declared_length(&headers(bad)).is_err(), "{bad:?}");
        }
    }
}
