//! Proxy-Wasm modules as chain filters: the adapter between the chain's phases and
//! duet-proxywasm's VMs.
//!
//! The module is compiled once per load; each filter keeps one VM per worker thread (a slot), and
//! a request borrows its slot's VM for each callback only (a short, uncontended lock), so
//! requests of one worker share the VM as they would share Envoy's per-worker VM. A VM that
//! traps, overruns its deadline or its memory is discarded; the next request on that slot makes
//! a new one, with exponential backoff while creation keeps failing, so a broken filter costs its
//! own requests a fast 503 (or a skip, with `fail_open`) and nothing else.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use duet_proxywasm::{
    Action, ContextId, HttpCall, MetricKind, MetricValue, Plugin, PluginConfig, ROOT_CONTEXT, SharedState,
    StreamDirection, Vm,
};

use crate::config::{self, OnError};
use crate::filter::{
    BoxFuture, CallRequest, Exchange, FilterError, FilterMetric, FilterMetricKind, FilterStream, HttpFilter, Upstreams,
    Verdict,
};
use crate::metrics::Metrics;
use crate::proxy::ConnInfo;
use crate::runtime::RouteRt;
use crate::{MeshError, proxy};

/// Longest pause between VM re-creation attempts of a failing filter.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// First pause after a VM could not be created.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// How often timers and queues are looked at.
const BACKGROUND_TICK: Duration = Duration::from_millis(10);

/// A loaded Proxy-Wasm filter.
pub struct WasmFilter {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    path: PathBuf,
    on_error: OnError,
    plugin: Plugin,
    slots: Vec<Slot>,
    next: AtomicUsize,
    metrics: Arc<Metrics>,
    stats: crate::metrics::FilterStats,
    restarts: AtomicU64,
    failures: AtomicU64,
    /// HTTP calls made from a slot's root context, with the slot and its VM generation, for the
    /// background task.
    root_calls: Mutex<Vec<(usize, u64, HttpCall)>>,
}

struct Slot {
    state: Mutex<SlotState>,
}

struct SlotState {
    vm: Option<Vm>,
    /// Bumped whenever the VM is discarded: contexts of an older generation are gone.
    generation: u64,
    failures_in_row: u32,
    retry_at: Option<Instant>,
    last_error: Option<String>,
    last_tick: Instant,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl std::fmt::Debug for WasmFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmFilter").field("name", &self.inner.name).finish_non_exhaustive()
    }
}

impl WasmFilter {
    /// Compiles and configures the module (`(path, bytes)`; one VM proves it starts), with
    /// `workers` VM slots.
    pub fn load(
        cfg: &config::Filter,
        (path, wasm): (&std::path::Path, &[u8]),
        upstreams: Vec<String>,
        shared: &Arc<SharedState>,
        metrics: &Arc<Metrics>,
        workers: usize,
        cache_dir: Option<PathBuf>,
    ) -> Result<WasmFilter, MeshError> {
        let config = PluginConfig {
            name: cfg.name.clone(),
            root_id: cfg.root_id.clone(),
            vm_id: cfg.vm_id.clone(),
            configuration: cfg.config.as_bytes().to_vec(),
            vm_configuration: cfg.vm_config.as_bytes().to_vec(),
            memory_limit: cfg.memory_limit_mb << 20,
            deadline: Duration::from_millis(cfg.deadline_ms),
            upstreams,
            cache_dir,
            ..PluginConfig::default()
        };
        let plugin = Plugin::load(wasm, config, Arc::clone(shared))
            .map_err(|e| MeshError::Filter { name: cfg.name.clone(), message: format!("{}: {e}", path.display()) })?;
        let slots = (0..workers.max(1))
            .map(|_| Slot {
                state: Mutex::new(SlotState {
                    vm: None,
                    generation: 0,
                    failures_in_row: 0,
                    retry_at: None,
                    last_error: None,
                    last_tick: Instant::now(),
                }),
            })
            .collect();
        Ok(WasmFilter {
            inner: Arc::new(Inner {
                name: cfg.name.clone(),
                path: path.to_owned(),
                on_error: cfg.on_error,
                plugin,
                slots,
                next: AtomicUsize::new(0),
                metrics: Arc::clone(metrics),
                stats: metrics.filter_stats(&cfg.name),
                restarts: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                root_calls: Mutex::new(Vec::new()),
            }),
        })
    }
}

impl Inner {
    /// The slot's VM, created if missing (unless backing off).
    fn vm<'a>(&self, st: &'a mut SlotState) -> Result<&'a mut Vm, FilterError> {
        if st.vm.is_none() {
            if let Some(at) = st.retry_at
                && Instant::now() < at
            {
                return Err(FilterError {
                    message: format!(
                        "the filter's VM is being restarted after repeated failures (last: {})",
                        st.last_error.as_deref().unwrap_or("unknown")
                    ),
                    trapped: false,
                });
            }
            let restart = st.generation > 0 || st.failures_in_row > 0;
            match self.plugin.new_vm() {
                Ok(vm) => {
                    if restart {
                        self.restarts.fetch_add(1, Ordering::Relaxed);
                        self.metrics.filter_restart(&self.name);
                    }
                    st.vm = Some(vm);
                    st.retry_at = None;
                    st.last_tick = Instant::now();
                }
                Err(e) => {
                    self.failed(st, e.to_string());
                    return Err(FilterError { message: e.to_string(), trapped: true });
                }
            }
        }
        st.vm.as_mut().ok_or_else(|| FilterError { message: "no VM".into(), trapped: false })
    }

    fn failed(&self, st: &mut SlotState, message: String) {
        st.vm = None;
        st.generation += 1;
        st.failures_in_row += 1;
        let backoff = FIRST_BACKOFF.saturating_mul(1 << st.failures_in_row.min(8).saturating_sub(1)).min(MAX_BACKOFF);
        // The first failure gets an immediate fresh VM; repeated ones wait.
        st.retry_at = (st.failures_in_row > 1).then(|| Instant::now() + backoff);
        st.last_error = Some(message);
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes the VM's new HTTP calls: `ctx`'s go to `pending`, the root's to the background.
    fn route_calls(&self, vm: &mut Vm, slot: usize, generation: u64, ctx: ContextId, pending: &mut Vec<HttpCall>) {
        for call in vm.take_http_calls() {
            if call.context == ctx {
                pending.push(call);
            } else {
                lock(&self.root_calls).push((slot, generation, call));
            }
        }
    }
}

impl HttpFilter for WasmFilter {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn on_error(&self) -> OnError {
        self.inner.on_error
    }

    fn stats(&self) -> &crate::metrics::FilterStats {
        &self.inner.stats
    }

    fn start(&self) -> Result<Box<dyn FilterStream>, FilterError> {
        let inner = &self.inner;
        let slot = inner.next.fetch_add(1, Ordering::Relaxed) % inner.slots.len();
        let mut st = lock(&inner.slots[slot].state);
        let created = inner.vm(&mut st)?.create_http_context();
        match created {
            Ok(ctx) => Ok(Box::new(WasmStream {
                inner: Arc::clone(inner),
                slot,
                generation: st.generation,
                ctx,
                pending: Vec::new(),
                paused: StreamDirection::Request,
                done: false,
            })),
            Err(e) => {
                let message = e.to_string();
                inner.failed(&mut st, message.clone());
                Err(FilterError { message, trapped: true })
            }
        }
    }

    fn status(&self) -> serde_json::Value {
        let inner = &self.inner;
        let slots: Vec<serde_json::Value> = inner
            .slots
            .iter()
            .map(|s| {
                let st = lock(&s.state);
                let state = match (&st.vm, st.retry_at) {
                    (Some(_), _) => "running",
                    (None, Some(at)) if at > Instant::now() => "backing_off",
                    (None, _) if st.failures_in_row > 0 => "failed",
                    (None, _) => "idle",
                };
                serde_json::json!({ "state": state, "failures_in_row": st.failures_in_row, "last_error": st.last_error })
            })
            .collect();
        let healthy = slots.iter().all(|s| s["state"] == "running" || s["state"] == "idle");
        serde_json::json!({
            "name": inner.name,
            "kind": "proxy-wasm",
            "module": inner.path.display().to_string(),
            "on_error": match inner.on_error { OnError::FailClosed => "fail_closed", OnError::FailOpen => "fail_open" },
            "state": if healthy { "ok" } else { "degraded" },
            "restarts": inner.restarts.load(Ordering::Relaxed),
            "failures": inner.failures.load(Ordering::Relaxed),
            "vms": slots,
        })
    }

    fn metrics(&self) -> Vec<FilterMetric> {
        self.inner
            .plugin
            .metrics()
            .into_iter()
            .map(|m| {
                let kind = match m.kind {
                    MetricKind::Counter => FilterMetricKind::Counter,
                    MetricKind::Gauge => FilterMetricKind::Gauge,
                    MetricKind::Histogram => FilterMetricKind::Histogram,
                };
                let (value, count) = match &m.value {
                    MetricValue::Counter(v) => (*v as f64, 0),
                    MetricValue::Gauge(v) => (*v as f64, 0),
                    MetricValue::Histogram(h) => (h.sum as f64, h.count),
                };
                FilterMetric { name: m.name.clone(), kind, value, count }
            })
            .collect()
    }

    fn start_background(&self, io: Arc<dyn Upstreams>) {
        // Root contexts run from the start (timers tick without traffic), as in Envoy.
        for slot in &self.inner.slots {
            let mut st = lock(&slot.state);
            if let Err(e) = self.inner.vm(&mut st) {
                tracing::warn!(filter = %self.inner.name, error = %e, "cannot start the filter's VM");
            }
        }
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(BACKGROUND_TICK).await;
                let Some(inner) = weak.upgrade() else { return };
                for (i, slot) in inner.slots.iter().enumerate() {
                    let mut st = lock(&slot.state);
                    let Some(vm) = st.vm.as_mut() else { continue };
                    let mut res = Ok(());
                    if let Some(period) = vm.tick_period()
                        && st.last_tick.elapsed() >= period
                    {
                        st.last_tick = Instant::now();
                        let Some(vm) = st.vm.as_mut() else { continue };
                        res = vm.on_tick();
                    }
                    if res.is_ok()
                        && let Some(vm) = st.vm.as_mut()
                    {
                        for q in vm.ready_queues() {
                            res = vm.on_queue_ready(q);
                            if res.is_err() {
                                break;
                            }
                        }
                    }
                    let generation = st.generation;
                    if let Some(vm) = st.vm.as_mut() {
                        lock(&inner.root_calls).extend(vm.take_http_calls().into_iter().map(|c| (i, generation, c)));
                    }
                    if let Err(e) = res {
                        tracing::warn!(filter = %inner.name, error = %e, "filter failed in a timer or queue callback");
                        inner.metrics.filter_error(&inner.name, &FilterError { message: e.to_string(), trapped: true });
                        inner.failed(&mut st, e.to_string());
                    }
                }
                let calls = std::mem::take(&mut *lock(&inner.root_calls));
                for (slot, generation, call) in calls {
                    let io = Arc::clone(&io);
                    let weak = Arc::downgrade(&inner);
                    tokio::spawn(async move {
                        let token = call.token;
                        let response = io.call(call_request(call)).await;
                        let Some(inner) = weak.upgrade() else { return };
                        // Only the VM that made the call knows its token; a VM replaced since
                        // then has no use for the answer.
                        let mut st = lock(&inner.slots[slot].state);
                        if st.generation != generation {
                            return;
                        }
                        if let Some(vm) = st.vm.as_mut()
                            && let Err(e) = vm.on_http_call_response(ROOT_CONTEXT, None, token, response)
                        {
                            tracing::warn!(filter = %inner.name, error = %e, "filter failed in an http_call callback");
                            if vm.is_poisoned() {
                                inner
                                    .metrics
                                    .filter_error(&inner.name, &FilterError { message: e.to_string(), trapped: true });
                                inner.failed(&mut st, e.to_string());
                            }
                        }
                    });
                }
            }
        });
    }
}

fn call_request(call: HttpCall) -> CallRequest {
    CallRequest {
        upstream: call.upstream,
        headers: call.headers,
        body: call.body,
        trailers: call.trailers,
        timeout: if call.timeout.is_zero() { proxy::DEFAULT_CALL_TIMEOUT } else { call.timeout },
    }
}

/// One request's context in a filter's VM.
struct WasmStream {
    inner: Arc<Inner>,
    slot: usize,
    generation: u64,
    ctx: ContextId,
    pending: Vec<HttpCall>,
    paused: StreamDirection,
    done: bool,
}

impl WasmStream {
    fn with_vm<T>(
        &mut self,
        ex: &mut Exchange,
        f: impl FnOnce(&mut Vm, ContextId, &mut Exchange) -> Result<T, duet_proxywasm::Error>,
    ) -> Result<T, FilterError> {
        let inner = Arc::clone(&self.inner);
        let mut st = lock(&inner.slots[self.slot].state);
        if st.generation != self.generation {
            self.done = true;
            return Err(FilterError {
                message: "the filter's VM failed during this request and was discarded".into(),
                trapped: false,
            });
        }
        let Some(vm) = st.vm.as_mut() else {
            self.done = true;
            return Err(FilterError { message: "the filter's VM is gone".into(), trapped: false });
        };
        let res = f(vm, self.ctx, ex);
        inner.route_calls(vm, self.slot, self.generation, self.ctx, &mut self.pending);
        match res {
            Ok(v) => {
                st.failures_in_row = 0;
                Ok(v)
            }
            Err(e) => {
                let message = e.to_string();
                let poisoned = vm.is_poisoned();
                if poisoned {
                    inner.failed(&mut st, message.clone());
                    self.done = true;
                }
                Err(FilterError { message, trapped: poisoned })
            }
        }
    }

    fn verdict(&mut self, ex: &mut Exchange, action: Action, direction: StreamDirection) -> Verdict {
        if let Some(r) = ex.local_response.take() {
            return Verdict::Respond(r);
        }
        match action {
            Action::Continue => Verdict::Continue,
            Action::Pause => {
                self.paused = direction;
                ex.continued = None;
                Verdict::Pause
            }
        }
    }
}

impl FilterStream for WasmStream {
    fn request_headers(&mut self, ex: &mut Exchange, end_of_stream: bool) -> Result<Verdict, FilterError> {
        let a = self.with_vm(ex, |vm, ctx, s| vm.on_request_headers(ctx, s, end_of_stream))?;
        Ok(self.verdict(ex, a, StreamDirection::Request))
    }

    fn request_body(&mut self, ex: &mut Exchange, end_of_stream: bool) -> Result<Verdict, FilterError> {
        let a = self.with_vm(ex, |vm, ctx, s| vm.on_request_body(ctx, s, end_of_stream))?;
        Ok(self.verdict(ex, a, StreamDirection::Request))
    }

    fn request_trailers(&mut self, ex: &mut Exchange) -> Result<Verdict, FilterError> {
        let a = self.with_vm(ex, |vm, ctx, s| vm.on_request_trailers(ctx, s))?;
        Ok(self.verdict(ex, a, StreamDirection::Request))
    }

    fn response_headers(&mut self, ex: &mut Exchange, end_of_stream: bool) -> Result<Verdict, FilterError> {
        let a = self.with_vm(ex, |vm, ctx, s| vm.on_response_headers(ctx, s, end_of_stream))?;
        Ok(self.verdict(ex, a, StreamDirection::Response))
    }

    fn response_body(&mut self, ex: &mut Exchange, end_of_stream: bool) -> Result<Verdict, FilterError> {
        let a = self.with_vm(ex, |vm, ctx, s| vm.on_response_body(ctx, s, end_of_stream))?;
        Ok(self.verdict(ex, a, StreamDirection::Response))
    }

    fn response_trailers(&mut self, ex: &mut Exchange) -> Result<Verdict, FilterError> {
        let a = self.with_vm(ex, |vm, ctx, s| vm.on_response_trailers(ctx, s))?;
        Ok(self.verdict(ex, a, StreamDirection::Response))
    }

    fn resume<'a>(
        &'a mut self,
        ex: &'a mut Exchange,
        io: &'a dyn Upstreams,
    ) -> BoxFuture<'a, Result<Verdict, FilterError>> {
        Box::pin(async move {
            loop {
                if let Some(r) = ex.local_response.take() {
                    return Ok(Verdict::Respond(r));
                }
                if ex.continued.take() == Some(self.paused) {
                    return Ok(Verdict::Continue);
                }
                let Some(call) = self.pending.pop() else {
                    return Err(FilterError {
                        message: "the filter paused the request with nothing outstanding to resume it".into(),
                        trapped: false,
                    });
                };
                let token = call.token;
                let response = io.call(call_request(call)).await;
                self.with_vm(ex, |vm, ctx, s| vm.on_http_call_response(ctx, Some(s), token, response))?;
            }
        })
    }

    fn finish(&mut self, ex: &mut Exchange) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let _ = self.with_vm(ex, |vm, ctx, s| {
            vm.on_log(ctx, s)?;
            vm.finish(ctx, s)
        });
    }
}

/// Fills the properties Proxy-Wasm filters read (`source.address`, `request.id`, ...).
pub fn fill_properties(
    ex: &mut Exchange,
    conn: ConnInfo,
    request_id: &str,
    parts: &http::request::Parts,
    route: &RouteRt,
) {
    let p = &mut ex.properties;
    p.source = Some(conn.peer);
    p.destination = Some(conn.local);
    p.request_id = request_id.to_owned();
    p.protocol = proxy::protocol(parts.version).to_owned();
    p.route_name = route.name.clone();
    p.cluster_name = route.cluster.name.clone();
    p.mtls = conn.mtls;
    p.start_time = Some(std::time::SystemTime::now());
}

/// Records the upstream's status for `response.code`.
pub fn set_response_code(ex: &mut Exchange, status: u16) {
    ex.properties.response_code = Some(status);
}
