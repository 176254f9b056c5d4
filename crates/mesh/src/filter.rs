//! The filter chain: one abstraction for every kind of http filter, with named phases in request
//! order and an explicit verdict per phase. Proxy-Wasm modules are the first implementation
//! (`wasm_filter.rs`); duet-ABI Wasm and eBPF filters plug in behind the same two traits, and the
//! chain never learns which kind a filter is.
//!
//! A request sees the phases in this order, each filter in configuration order:
//! `request_headers` → `request_body`* → `request_trailers`? → (upstream) → `response_headers` →
//! `response_body`* → `response_trailers`? → `log`. The exchange record they read and edit is the
//! plain-data [`Exchange`]: pseudo headers (`:method`, `:path`, `:authority`, `:scheme`,
//! `:status`) followed by the real ones, lower-case, plus bodies and properties.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::OnError;
use crate::metrics::Metrics;

pub use duet_proxywasm::Stream as Exchange;
pub use duet_proxywasm::{HttpCallResponse, LocalResponse};

/// A boxed future, as filters return from [`FilterStream::resume`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a filter decided in one phase.
#[derive(Debug)]
pub enum Verdict {
    /// Go on to the next filter (or the upstream).
    Continue,
    /// Stop here for now. In a headers phase the filter waits for something it started (an
    /// `http_call`): the chain calls [`FilterStream::resume`]. In a body phase it asks for more of
    /// the body: the chain buffers and calls it again with everything so far.
    Pause,
    /// Answer the request now with this response; the upstream is not (or no longer) asked.
    Respond(LocalResponse),
}

/// Why a filter could not run. The filter's `on_error` policy decides what the request gets.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct FilterError {
    /// What happened (a trap, a deadline, memory, ...).
    pub message: String,
    /// The filter's VM had to be discarded (a trap); counted as a trap in metrics.
    pub trapped: bool,
}

/// An outgoing request a filter asked for (Proxy-Wasm `http_call`), performed by the proxy.
#[derive(Debug)]
pub struct CallRequest {
    /// The cluster.
    pub upstream: String,
    /// Pseudo headers and headers.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
    /// Trailers.
    pub trailers: Vec<(String, Vec<u8>)>,
    /// Timeout.
    pub timeout: Duration,
}

/// One of a filter's own metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct FilterMetric {
    /// The name the filter gave it.
    pub name: String,
    /// Its kind.
    pub kind: FilterMetricKind,
    /// Counter or gauge value; a histogram's sum.
    pub value: f64,
    /// A histogram's number of observations.
    pub count: u64,
}

/// The kind of a [`FilterMetric`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterMetricKind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations: exported as a count and a sum.
    Histogram,
}

/// The proxy's side of filter I/O: the one thing filters may not do themselves.
pub trait Upstreams: Send + Sync {
    /// Performs `call`; `None` when it failed or timed out (Proxy-Wasm then sees no headers).
    fn call(&self, call: CallRequest) -> BoxFuture<'_, Option<HttpCallResponse>>;
}

/// A loaded filter, shared by every request of a listener (and across reloads while referenced).
pub trait HttpFilter: Send + Sync {
    /// The configured name.
    fn name(&self) -> &str;
    /// What a request gets when this filter fails.
    fn on_error(&self) -> OnError;
    /// Its call counters.
    fn stats(&self) -> &crate::metrics::FilterStats;
    /// Starts the filter for one request.
    fn start(&self) -> Result<Box<dyn FilterStream>, FilterError>;
    /// Health for the admin API.
    fn status(&self) -> serde_json::Value;
    /// The filter's own metrics (Proxy-Wasm `proxy_define_metric`), exported on /metrics.
    fn metrics(&self) -> Vec<FilterMetric> {
        Vec::new()
    }
    /// The maps of an eBPF or duet-ABI filter, for the admin API and the event stream.
    fn maps(&self) -> Vec<crate::maps_api::NamedMap> {
        Vec::new()
    }
    /// The `trace` lines an eBPF or duet-ABI filter wrote since the last call.
    fn take_trace(&self) -> Vec<String> {
        Vec::new()
    }
    /// Starts the filter's background work (timers, queues, calls from its root context) on the
    /// current tokio runtime; it ends by itself once the filter is dropped.
    fn start_background(&self, _io: Arc<dyn Upstreams>) {}
    /// Whether the filter has body or trailer phases. When no filter of a chain has them, the
    /// proxy streams both bodies straight through (no body task, no re-framing, the upstream's
    /// `content-length` kept) and runs only the header phases.
    fn reads_bodies(&self) -> bool {
        true
    }
    /// Whether the filter has a response-headers phase. When no filter of a chain has one (and
    /// none reads bodies), the proxy passes the upstream's response head through untouched.
    fn reads_response_headers(&self) -> bool {
        true
    }
}

/// One filter working on one request.
pub trait FilterStream: Send {
    /// The request head.
    fn request_headers(&mut self, ex: &mut Exchange, end_of_stream: bool) -> Result<Verdict, FilterError>;
    /// The request body so far (`ex.request_body`), editable.
    fn request_body(&mut self, ex: &mut Exchange, end_of_stream: bool) -> Result<Verdict, FilterError>;
    /// The request trailers.
    fn request_trailers(&mut self, ex: &mut Exchange) -> Result<Verdict, FilterError>;
    /// The response head.
    fn response_headers(&mut self, ex: &mut Exchange, end_of_stream: bool) -> Result<Verdict, FilterError>;
    /// The response body so far (`ex.response_body`), editable.
    fn response_body(&mut self, ex: &mut Exchange, end_of_stream: bool) -> Result<Verdict, FilterError>;
    /// The response trailers.
    fn response_trailers(&mut self, ex: &mut Exchange) -> Result<Verdict, FilterError>;
    /// After [`Verdict::Pause`] in a headers phase: drive what the filter waits for, to its
    /// next verdict.
    fn resume<'a>(
        &'a mut self,
        ex: &'a mut Exchange,
        io: &'a dyn Upstreams,
    ) -> BoxFuture<'a, Result<Verdict, FilterError>>;
    /// The exchange is over (completed or not): access logging and cleanup.
    fn finish(&mut self, ex: &mut Exchange);
}

/// Which phase, for running the chain generically.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Request head.
    RequestHeaders,
    /// Request body.
    RequestBody,
    /// Request trailers.
    RequestTrailers,
    /// Response head.
    ResponseHeaders,
    /// Response body.
    ResponseBody,
    /// Response trailers.
    ResponseTrailers,
}

impl Phase {
    fn is_body(self) -> bool {
        matches!(self, Phase::RequestBody | Phase::ResponseBody)
    }
}

/// What the chain decided for a phase.
#[derive(Debug)]
pub enum ChainVerdict {
    /// Every filter continued.
    Continue,
    /// A body phase: some filter wants more body before it decides (buffer and call again).
    Buffer,
    /// Answer with this response.
    Respond(LocalResponse),
}

/// A filter and its part in one request (`None` once it failed open or finished).
type ActiveFilter = (Arc<dyn HttpFilter>, Option<Box<dyn FilterStream>>);

/// The filters of one request, in order. A filter that failed open is dropped from its run.
pub struct ChainRun {
    filters: Vec<ActiveFilter>,
    metrics: Arc<Metrics>,
    /// In a body phase, the filter that asked to buffer: the next call starts there (filters
    /// before it already passed the earlier bytes on).
    paused_at: [usize; 2],
}

impl std::fmt::Debug for ChainRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainRun").field("filters", &self.filters.len()).finish_non_exhaustive()
    }
}

impl ChainRun {
    /// Starts every filter for one request; a start failure is treated like a phase failure.
    pub fn start(filters: &[Arc<dyn HttpFilter>], metrics: &Arc<Metrics>) -> Result<ChainRun, LocalResponse> {
        let mut run = Vec::with_capacity(filters.len());
        for f in filters {
            match f.start() {
                Ok(s) => run.push((Arc::clone(f), Some(s))),
                Err(e) => {
                    metrics.filter_error(f.name(), &e);
                    match f.on_error() {
                        OnError::FailOpen => run.push((Arc::clone(f), None)),
                        OnError::FailClosed => return Err(failed_closed(f.name(), &e)),
                    }
                }
            }
        }
        Ok(ChainRun { filters: run, metrics: Arc::clone(metrics), paused_at: [0, 0] })
    }

    /// Whether any filter is active (an empty chain lets bodies stream untouched).
    pub fn is_empty(&self) -> bool {
        self.filters.iter().all(|(_, s)| s.is_none())
    }

    /// Runs `phase` through the filters. Body phases take the bytes in `ex.request_body` /
    /// `ex.response_body` (new bytes appended by the caller) and, on `Continue`, leave there
    /// what is to be forwarded.
    pub async fn run(
        &mut self,
        phase: Phase,
        ex: &mut Exchange,
        end_of_stream: bool,
        io: &dyn Upstreams,
    ) -> ChainVerdict {
        let side = usize::from(matches!(phase, Phase::ResponseBody));
        let first = if phase.is_body() { self.paused_at[side] } else { 0 };
        for i in first..self.filters.len() {
            let (filter, stream) = &mut self.filters[i];
            let Some(s) = stream.as_mut() else { continue };
            let t = Instant::now();
            let mut res = match phase {
                Phase::RequestHeaders => s.request_headers(ex, end_of_stream),
                Phase::RequestBody => s.request_body(ex, end_of_stream),
                Phase::RequestTrailers => s.request_trailers(ex),
                Phase::ResponseHeaders => s.response_headers(ex, end_of_stream),
                Phase::ResponseBody => s.response_body(ex, end_of_stream),
                Phase::ResponseTrailers => s.response_trailers(ex),
            };
            filter.stats().call(t.elapsed());
            // A paused head (or a body paused at its very end) waits for what the filter started.
            if matches!(res, Ok(Verdict::Pause)) && (!phase.is_body() || end_of_stream) {
                res = s.resume(ex, io).await;
            }
            match res {
                Ok(Verdict::Continue) => {}
                Ok(Verdict::Pause) => {
                    self.paused_at[side] = i;
                    return ChainVerdict::Buffer;
                }
                Ok(Verdict::Respond(r)) => return ChainVerdict::Respond(r),
                Err(e) => {
                    self.metrics.filter_error(filter.name(), &e);
                    match filter.on_error() {
                        OnError::FailOpen => {
                            tracing::warn!(filter = filter.name(), error = %e, "filter failed; fail_open: the request goes on without it");
                            if let Some(mut s) = stream.take() {
                                s.finish(ex);
                            }
                        }
                        OnError::FailClosed => {
                            tracing::warn!(filter = filter.name(), error = %e, "filter failed; fail_closed: 503");
                            return ChainVerdict::Respond(failed_closed(filter.name(), &e));
                        }
                    }
                }
            }
        }
        if phase.is_body() {
            self.paused_at[side] = 0;
        }
        ChainVerdict::Continue
    }

    /// Ends every filter's part in the request.
    pub fn finish(&mut self, ex: &mut Exchange) {
        for (_, s) in &mut self.filters {
            if let Some(mut s) = s.take() {
                s.finish(ex);
            }
        }
    }
}

impl Drop for ChainRun {
    fn drop(&mut self) {
        // A request that ended without `finish` (a client gone mid-way) still releases its
        // filter contexts (after `finish` there are none, and no exchange to make).
        if self.filters.iter().any(|(_, s)| s.is_some()) {
            let mut ex = Exchange::default();
            self.finish(&mut ex);
        }
    }
}

/// The 503 a failed `fail_closed` filter gives.
pub fn failed_closed(name: &str, e: &FilterError) -> LocalResponse {
    LocalResponse {
        status: 503,
        body: format!("filter `{name}` failed: {e}\n").into_bytes(),
        headers: vec![("content-type".into(), b"text/plain".to_vec())],
        details: "filter_failed_closed".into(),
        ..LocalResponse::default()
    }
}
