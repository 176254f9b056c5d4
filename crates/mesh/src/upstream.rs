//! Upstream clusters: endpoint choice (round robin, least request), a connection pool per
//! endpoint (idle HTTP/1.1 keep-alive connections; one multiplexed HTTP/2 connection), connect
//! and request timeouts, bounded retries of failed connects on other endpoints, and outlier
//! ejection of endpoints that keep failing to connect.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::config::{self, LbPolicy};
use crate::filter::{BoxFuture, CallRequest, HttpCallResponse, Upstreams};
use crate::metrics::Metrics;
use crate::{BoxError, MeshError};

/// Request bodies sent upstream.
pub type UpBody = UnsyncBoxBody<Bytes, BoxError>;

/// Why an upstream exchange failed; each maps to a status for the downstream client.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No endpoint could be connected to (after retries).
    #[error("upstream connect error: {0}")]
    Connect(String),
    /// The response head did not arrive in time.
    #[error("upstream request timeout after {0:?}")]
    Timeout(Duration),
    /// The endpoint reset the connection or sent something that is not HTTP.
    #[error("upstream protocol error: {0}")]
    Protocol(String),
}

impl UpstreamError {
    /// The status the downstream client gets.
    pub fn status(&self) -> u16 {
        match self {
            UpstreamError::Connect(_) => 503,
            UpstreamError::Timeout(_) => 504,
            UpstreamError::Protocol(_) => 502,
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

struct Endpoint {
    address: String,
    host: String,
    port: u16,
    in_flight: AtomicUsize,
    failures: AtomicU32,
    /// Milliseconds since [`BASE`] until which the endpoint is ejected (0: not ejected).
    ejected_until: AtomicU64,
    idle: Mutex<Vec<(Instant, http1::SendRequest<UpBody>)>>,
    h2: Mutex<Option<http2::SendRequest<UpBody>>>,
}

/// The origin of ejection times, so they fit in an atomic.
static BASE: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_ms() -> u64 {
    BASE.elapsed().as_millis() as u64
}

impl Endpoint {
    /// An endpoint at `address` (`host:port`, already checked).
    fn new(address: String) -> Endpoint {
        let (host, port) = config::split_host_port(&address).unwrap_or_default();
        Endpoint {
            address,
            host,
            port,
            in_flight: AtomicUsize::new(0),
            failures: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            idle: Mutex::new(Vec::new()),
            h2: Mutex::new(None),
        }
    }

    fn is_ejected(&self, now_ms: u64) -> bool {
        self.ejected_until.load(Ordering::Relaxed) > now_ms
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a pool lock leaves plain data behind; keep using it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Held while a request is in flight on an endpoint (least-request balancing counts these).
/// An HTTP/1.1 exchange also holds its connection here: when the response is over the
/// connection goes back to the endpoint's pool.
#[derive(Debug)]
pub struct InFlight {
    endpoint: Option<Arc<Endpoint>>,
    reuse: Option<Reuse>,
}

/// An HTTP/1.1 connection to return to its endpoint's idle pool once its exchange is complete.
struct Reuse {
    sender: http1::SendRequest<UpBody>,
    max_idle: usize,
}

impl std::fmt::Debug for Reuse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reuse").finish_non_exhaustive()
    }
}

impl InFlight {
    /// Held by a request that has no endpoint (an in-process app).
    fn none() -> InFlight {
        InFlight { endpoint: None, reuse: None }
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").field("address", &self.address).finish_non_exhaustive()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let Some(ep) = &self.endpoint else { return };
        ep.in_flight.fetch_sub(1, Ordering::Relaxed);
        let Some(Reuse { mut sender, max_idle }) = self.reuse.take() else { return };
        // By the time a response body has been read to its end the connection is usually
        // ready for the next request already: back to the pool now, without a task. When it
        // is not (the body was dropped early, or the connection task has not caught up yet), a
        // task waits for it, as long as that takes.
        if sender.is_ready() {
            idle_push(ep, sender, max_idle);
            return;
        }
        if sender.is_closed() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let pool = Arc::clone(ep);
        runtime.spawn(async move {
            if sender.ready().await.is_ok() {
                idle_push(&pool, sender, max_idle);
            }
        });
    }
}

fn idle_push(ep: &Endpoint, sender: http1::SendRequest<UpBody>, max_idle: usize) {
    let mut idle = lock(&ep.idle);
    if idle.len() < max_idle {
        idle.push((Instant::now(), sender));
    }
}

/// How one try on an endpoint ended.
enum Attempt {
    /// A response, or a failure after the connection was made.
    Done(Result<(Response<RespBody>, InFlight), UpstreamError>),
    /// No connection could be made; the request comes back for another endpoint.
    ConnectFailed(String, Request<UpBody>),
}

/// Most original destinations an `original_destination` cluster keeps pools for.
pub const MAX_DESTINATIONS: usize = 1024;

/// An upstream response body: an endpoint's, or an in-process app's.
pub type RespBody = UnsyncBoxBody<Bytes, crate::BoxError>;

/// A cluster, ready to send requests.
pub struct Cluster {
    /// Its name.
    pub name: String,
    config: config::Cluster,
    endpoints: Vec<Arc<Endpoint>>,
    next: AtomicUsize,
    tls: Option<(TlsConnector, Option<String>)>,
    metrics: Arc<Metrics>,
    /// A Wasm HTTP application serving this cluster in-process, instead of endpoints.
    app: Option<(duet_app::App, Arc<crate::apps::AppLinks>)>,
    /// An `original_destination` cluster's endpoints, made on first use per destination.
    destinations: Mutex<std::collections::HashMap<std::net::SocketAddr, Arc<Endpoint>>>,
    /// This cluster's upstream response time histogram, looked up on first use.
    upstream_seconds: std::sync::OnceLock<prometheus_client::metrics::histogram::Histogram>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("name", &self.name).field("endpoints", &self.endpoints).finish_non_exhaustive()
    }
}

impl Cluster {
    /// Builds the cluster (reads its TLS files; compiles its app, using `cache_dir`).
    pub fn new(
        config: &config::Cluster,
        metrics: &Arc<Metrics>,
        cache_dir: Option<std::path::PathBuf>,
    ) -> Result<Cluster, MeshError> {
        let app = match &config.app {
            Some(app_config) => {
                let links = Arc::new(crate::apps::AppLinks::default());
                let app = duet_app::App::load(app_config, cache_dir)
                    .map_err(|e| {
                        MeshError::Invalid(format!("cluster `{}`: app: {}", config.name, crate::error_chain(&e)))
                    })?
                    .with_outbound(Arc::new(crate::apps::ClusterOutbound(Arc::clone(&links))));
                let app = match config.kv_map {
                    Some(_) => app.with_kv(Arc::new(crate::apps::MapKv(Arc::clone(&links)))),
                    None => app.with_kv(Arc::new(duet_app::MemoryKv::new(10_000, 64 << 10))),
                };
                Some((app, links))
            }
            None => None,
        };
        let mut endpoints = Vec::new();
        for e in &config.endpoints {
            config::split_host_port(e).map_err(|m| MeshError::Invalid(format!("endpoint `{e}`: {m}")))?;
            endpoints.push(Arc::new(Endpoint::new(e.clone())));
        }
        let tls = match &config.tls {
            Some(t) => Some((TlsConnector::from(crate::tls::client_config(t, config.http2)?), t.server_name.clone())),
            None => None,
        };
        Ok(Cluster {
            name: config.name.clone(),
            config: config.clone(),
            endpoints,
            next: AtomicUsize::new(0),
            tls,
            metrics: Arc::clone(metrics),
            app,
            destinations: Mutex::new(std::collections::HashMap::new()),
            upstream_seconds: std::sync::OnceLock::new(),
        })
    }

    /// The app serving this cluster, with what it links to.
    pub fn app(&self) -> Option<(&duet_app::App, &Arc<crate::apps::AppLinks>)> {
        self.app.as_ref().map(|(a, l)| (a, l))
    }

    /// Records how long an upstream response head took.
    pub fn observe_upstream(&self, elapsed: Duration) {
        self.upstream_seconds
            .get_or_init(|| self.metrics.upstream_histogram(&self.name))
            .observe(elapsed.as_secs_f64());
    }

    /// The configured request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.config.request_timeout_ms)
    }

    /// Whether requests go out as HTTP/2.
    pub fn is_http2(&self) -> bool {
        self.config.http2
    }

    /// Whether requests go out over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    fn pick(&self, tried: &[usize]) -> Option<usize> {
        let now = now_ms();
        let n = self.endpoints.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        // Healthy endpoints first; when every untried one is ejected, try them anyway (panic
        // mode) rather than fail the request.
        for healthy_only in [true, false] {
            let usable = |i: usize| {
                let ejected = healthy_only && self.endpoints[i].is_ejected(now);
                !tried.contains(&i) && !ejected
            };
            let Some(a) = (0..n).map(|k| (start + k) % n).find(|&i| usable(i)) else { continue };
            return Some(match self.config.lb {
                LbPolicy::RoundRobin => a,
                LbPolicy::LeastRequest => {
                    // Power of two choices: the next usable endpoint in turn, if less loaded.
                    let b = (1..n).map(|k| (a + k) % n).find(|&i| usable(i)).unwrap_or(a);
                    let load = |i: usize| self.endpoints[i].in_flight.load(Ordering::Relaxed);
                    if load(b) < load(a) { b } else { a }
                }
            });
        }
        None
    }

    fn connect_failed(&self, ep: &Endpoint) {
        self.metrics.connect_failure(&self.name, &ep.address);
        let failures = ep.failures.fetch_add(1, Ordering::Relaxed) + 1;
        let now = now_ms();
        if failures >= self.config.outlier.consecutive_failures && !ep.is_ejected(now) {
            let until = now + self.config.outlier.ejection_ms.max(1);
            let current = ep.ejected_until.load(Ordering::Relaxed);
            // One thread ejects (and counts it) even when several see the failure.
            if ep.ejected_until.compare_exchange(current, until, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
                self.metrics.ejection(&self.name, &ep.address);
                tracing::warn!(cluster = %self.name, endpoint = %ep.address, failures, "endpoint ejected");
            }
        }
    }

    async fn connect_io(&self, ep: &Endpoint) -> Result<Box<dyn Io>, String> {
        let timeout = Duration::from_millis(self.config.connect_timeout_ms);
        let tcp = match tokio::time::timeout(timeout, TcpStream::connect((ep.host.as_str(), ep.port))).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(format!("{}: {e}", ep.address)),
            Err(_) => return Err(format!("{}: connect timeout after {timeout:?}", ep.address)),
        };
        let _ = tcp.set_nodelay(true);
        let Some((connector, server_name)) = &self.tls else { return Ok(Box::new(tcp)) };
        let name = server_name.clone().unwrap_or_else(|| ep.host.clone());
        let name = rustls::pki_types::ServerName::try_from(name.clone())
            .map_err(|_| format!("{}: `{name}` is not a valid TLS server name", ep.address))?;
        match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
            Ok(Ok(s)) => Ok(Box::new(s)),
            Ok(Err(e)) => Err(format!("{}: TLS handshake: {e}", ep.address)),
            Err(_) => Err(format!("{}: TLS handshake timeout", ep.address)),
        }
    }

    async fn connect_h1(&self, ep: &Endpoint) -> Result<http1::SendRequest<UpBody>, String> {
        let io = self.connect_io(ep).await?;
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(io))
            .await
            .map_err(|e| format!("{}: HTTP/1.1 handshake: {e}", ep.address))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    async fn h2_sender(&self, ep: &Endpoint) -> Result<http2::SendRequest<UpBody>, String> {
        if let Some(s) = lock(&ep.h2).as_ref().filter(|s| !s.is_closed()) {
            return Ok(s.clone());
        }
        let io = self.connect_io(ep).await?;
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(io))
            .await
            .map_err(|e| format!("{}: HTTP/2 handshake: {e}", ep.address))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        *lock(&ep.h2) = Some(sender.clone());
        Ok(sender)
    }

    fn idle_h1(&self, ep: &Endpoint) -> Option<http1::SendRequest<UpBody>> {
        let max_age = Duration::from_millis(self.config.idle_timeout_ms);
        let mut idle = lock(&ep.idle);
        while let Some((since, sender)) = idle.pop() {
            if since.elapsed() < max_age && sender.is_ready() {
                return Some(sender);
            }
        }
        None
    }

    /// The number of endpoints.
    pub fn endpoint_count(&self) -> usize {
        self.endpoints.len()
    }

    /// Sends `req` (origin-form URI and `host` header already set) to an endpoint, retrying
    /// failed connects on others; waits for the response head at most `timeout`. `preferred`
    /// (a routing program's choice, in range) is tried first, even when ejected; retries go
    /// through the balancer.
    pub async fn send(
        self: &Arc<Self>,
        mut req: Request<UpBody>,
        timeout: Duration,
        preferred: Option<usize>,
    ) -> Result<(Response<RespBody>, InFlight), UpstreamError> {
        if let Some((app, _)) = &self.app {
            return match tokio::time::timeout(timeout, app.serve(req)).await {
                Ok(resp) => Ok((resp, InFlight::none())),
                Err(_) => Err(UpstreamError::Timeout(timeout)),
            };
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut tried = Vec::new();
        let mut last = None;
        let attempts = 1 + self.config.connect_retries as usize;
        let mut preferred = preferred.filter(|&i| i < self.endpoints.len());
        while tried.len() < attempts {
            let Some(i) = preferred.take().or_else(|| self.pick(&tried)) else { break };
            let ep = Arc::clone(&self.endpoints[i]);
            match self.attempt(&ep, req, deadline, timeout).await {
                Attempt::Done(res) => return res,
                Attempt::ConnectFailed(e, back) => {
                    self.connect_failed(&ep);
                    tried.push(i);
                    last = Some(e);
                    req = back;
                }
            }
        }
        Err(UpstreamError::Connect(last.unwrap_or_else(|| "no endpoints".into())))
    }

    /// Whether the cluster sends each request to its connection's original destination
    /// ([`Cluster::send_to`]) rather than to endpoints.
    pub fn is_original_destination(&self) -> bool {
        self.config.original_destination
    }

    /// Sends `req` to `destination`, the original destination of a captured connection, over a
    /// pool of its own (one per destination, at most [`MAX_DESTINATIONS`] kept). No retries: there
    /// is no other place the request was meant for.
    pub async fn send_to(
        self: &Arc<Self>,
        req: Request<UpBody>,
        timeout: Duration,
        destination: std::net::SocketAddr,
    ) -> Result<(Response<RespBody>, InFlight), UpstreamError> {
        let ep = {
            let mut dynamic = lock(&self.destinations);
            if dynamic.len() >= MAX_DESTINATIONS && !dynamic.contains_key(&destination) {
                // Idle connections to destinations no longer used go with their pools.
                dynamic.retain(|_, ep| ep.in_flight.load(Ordering::Relaxed) > 0);
            }
            Arc::clone(dynamic.entry(destination).or_insert_with(|| Arc::new(Endpoint::new(destination.to_string()))))
        };
        let deadline = tokio::time::Instant::now() + timeout;
        match self.attempt(&ep, req, deadline, timeout).await {
            Attempt::Done(res) => res,
            Attempt::ConnectFailed(e, _) => {
                self.metrics.connect_failure(&self.name, &ep.address);
                Err(UpstreamError::Connect(e))
            }
        }
    }

    /// One try of `req` on `ep`: the result, or the connect error with the request back.
    async fn attempt(
        &self,
        ep: &Arc<Endpoint>,
        mut req: Request<UpBody>,
        deadline: tokio::time::Instant,
        timeout: Duration,
    ) -> Attempt {
        let boxed =
            |resp: Response<Incoming>| resp.map(|b| b.map_err(|e| -> crate::BoxError { Box::new(e) }).boxed_unsync());
        // HTTP/2 needs an absolute URI; HTTP/1.1 sends the origin form with a host header.
        if self.config.http2 {
            let scheme = if self.tls.is_some() { "https" } else { "http" };
            let pq = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
            if let Ok(uri) = format!("{scheme}://{}{pq}", ep.address).parse() {
                *req.uri_mut() = uri;
            }
            req.headers_mut().remove(http::header::HOST);
            let mut sender = match self.h2_sender(ep).await {
                Ok(s) => s,
                Err(e) => return Attempt::ConnectFailed(e, req),
            };
            ep.failures.store(0, Ordering::Relaxed);
            let guard = self.in_flight(ep);
            let res = tokio::time::timeout_at(deadline, async {
                sender.ready().await.map_err(|e| UpstreamError::Protocol(format!("{}: {e}", ep.address)))?;
                sender.send_request(req).await.map_err(|e| UpstreamError::Protocol(format!("{}: {e}", ep.address)))
            })
            .await;
            return Attempt::Done(match res {
                Ok(Ok(resp)) => Ok((boxed(resp), guard)),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(UpstreamError::Timeout(timeout)),
            });
        }
        // HTTP/1.1: a pooled connection first; if it turns out closed before the request
        // went out, the request comes back and a fresh connection takes it.
        let mut pooled = self.idle_h1(ep);
        loop {
            let (mut sender, fresh) = match pooled.take() {
                Some(s) => (s, false),
                None => match tokio::time::timeout_at(deadline, self.connect_h1(ep)).await {
                    Ok(Ok(s)) => (s, true),
                    Ok(Err(e)) => return Attempt::ConnectFailed(e, req),
                    Err(_) => return Attempt::Done(Err(UpstreamError::Timeout(timeout))),
                },
            };
            ep.failures.store(0, Ordering::Relaxed);
            let guard = self.in_flight(ep);
            let res = tokio::time::timeout_at(deadline, sender.try_send_request(req)).await;
            match res {
                Ok(Ok(resp)) => {
                    // Ready again once this exchange is complete: back to the pool when the
                    // response is over (see `InFlight`'s drop).
                    let mut guard = guard;
                    guard.reuse = Some(Reuse { sender, max_idle: self.config.max_idle_per_endpoint });
                    return Attempt::Done(Ok((boxed(resp), guard)));
                }
                Ok(Err(mut e)) => match e.take_message() {
                    Some(back) if !fresh => {
                        req = back;
                        continue;
                    }
                    _ => {
                        return Attempt::Done(Err(UpstreamError::Protocol(format!(
                            "{}: {}",
                            ep.address,
                            e.into_error()
                        ))));
                    }
                },
                Err(_) => return Attempt::Done(Err(UpstreamError::Timeout(timeout))),
            }
        }
    }

    fn in_flight(&self, ep: &Arc<Endpoint>) -> InFlight {
        ep.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight { endpoint: Some(Arc::clone(ep)), reuse: None }
    }
}

/// Every cluster of a snapshot by name: also what filters' `http_call`s go through.
#[derive(Debug, Default)]
pub struct Clusters(pub Vec<Arc<Cluster>>);

impl Clusters {
    /// The cluster called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Cluster>> {
        self.0.iter().find(|c| c.name == name)
    }
}

/// Most bytes of an `http_call` response body a filter is handed.
const MAX_CALL_BODY: usize = 4 << 20;

/// A response body, whole, with its trailers; `None` if it failed or exceeded `max` bytes.
async fn collect_limited(mut body: RespBody, max: usize) -> Option<(Vec<u8>, Option<http::HeaderMap>)> {
    let mut data = Vec::new();
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        match frame.ok()?.into_data() {
            Ok(d) if data.len() + d.len() <= max => data.extend_from_slice(&d),
            Ok(_) => return None,
            Err(frame) => trailers = frame.into_trailers().ok(),
        }
    }
    Some((data, trailers))
}

impl Upstreams for Clusters {
    fn call(&self, call: CallRequest) -> BoxFuture<'_, Option<HttpCallResponse>> {
        Box::pin(async move {
            let cluster = Arc::clone(self.get(&call.upstream)?);
            let mut builder = Request::builder();
            let mut path = "/".to_string();
            let mut authority = String::new();
            for (name, value) in &call.headers {
                let value_str = String::from_utf8_lossy(value);
                match name.as_str() {
                    ":method" => builder = builder.method(value.as_slice()),
                    ":path" => path = value_str.into_owned(),
                    ":authority" => authority = value_str.into_owned(),
                    n if n.starts_with(':') => {}
                    n => builder = builder.header(n, value.as_slice()),
                }
            }
            builder = builder.uri(path).header(http::header::HOST, authority);
            let body = crate::proxy::full_body(call.body);
            let req = builder.body(body).ok()?;
            let fut = async {
                let (resp, _guard) = cluster.send(req, call.timeout, None).await.ok()?;
                let (parts, body) = resp.into_parts();
                let (body, trailers) = collect_limited(body, MAX_CALL_BODY).await?;
                let trailers = trailers.as_ref().map(crate::proxy::header_pairs).unwrap_or_default();
                let mut headers = vec![(":status".to_string(), parts.status.as_str().as_bytes().to_vec())];
                headers.extend(crate::proxy::header_pairs(&parts.headers));
                Some(HttpCallResponse { headers, body, trailers })
            };
            tokio::time::timeout(call.timeout, fut).await.ok().flatten()
        })
    }
}
