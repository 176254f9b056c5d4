//! The running sidecar: listeners (plain or TLS, HTTP/1.1 and HTTP/2 on one port), the admin
//! endpoint, signals, hot reload and graceful shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::MeshError;
use crate::config::{self, Config};
use crate::metrics::Metrics;
use crate::proxy::{self, ConnInfo};
use crate::runtime::{Shared, Snapshot};

/// How long a client has to finish its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

struct Bound {
    name: String,
    address: String,
    local: SocketAddr,
    stop: watch::Sender<bool>,
    /// A duplicate of the listening socket, until the capture programs are attached at start
    /// (inbound capture files the inbound listener's socket); `None` afterwards.
    socket: Option<std::os::fd::OwnedFd>,
}

/// A running sidecar.
pub struct Server {
    shared: Arc<Shared>,
    bound: tokio::sync::Mutex<Vec<Bound>>,
    graceful: std::sync::Mutex<Option<GracefulShutdown>>,
    admin: Option<(SocketAddr, watch::Sender<bool>)>,
    /// The capture programs, when `capture:` is set (read at start; a reload keeps them).
    capture: std::sync::OnceLock<Arc<crate::capture::Capture>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("shared", &self.shared).finish_non_exhaustive()
    }
}

/// What `duet mesh check` found.
#[derive(Debug, serde::Serialize)]
pub struct CheckReport {
    /// Listeners with their filters.
    pub listeners: Vec<serde_json::Value>,
    /// Clusters.
    pub clusters: Vec<String>,
}

/// Validates the config and loads every filter (each configures one VM), without serving.
pub fn check(config_path: &Path) -> Result<CheckReport, MeshError> {
    let config = Config::load(config_path)?;
    let clusters = config.cluster_names();
    let snapshot = Snapshot::build(config, &Arc::new(Metrics::new()), &duet_proxywasm::SharedState::new(), 1)?;
    let listeners = snapshot
        .listeners
        .iter()
        .map(|l| {
            serde_json::json!({
                "name": l.name,
                "address": l.config.address,
                "tls": l.tls.is_some(),
                "filters": l.filters.iter().map(|f| f.status()).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(CheckReport { listeners, clusters })
}

/// Runs the sidecar in the foreground until SIGTERM or SIGINT; SIGHUP reloads.
pub fn run(config_path: &Path) -> Result<(), MeshError> {
    let config = Config::load(config_path)?;
    let workers = config.workers.unwrap_or_else(crate::runtime::default_workers);
    // One worker: a current-thread runtime, so a request's tasks (downstream connection, upstream
    // connection, pool return) hand over without cross-thread wakeups.
    let mut builder = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    let rt = builder
        .enable_all()
        .thread_name("duet-mesh")
        .build()
        .map_err(|e| MeshError::Invalid(format!("cannot start the runtime: {e}")))?;
    rt.block_on(async {
        let server = Server::start(config_path, config).await?;
        server.wait_for_signals().await;
        server.shutdown().await;
        Ok(())
    })
}

impl Server {
    /// Builds the first snapshot, binds every listener and the admin endpoint, and serves.
    pub async fn start(config_path: &Path, config: Config) -> Result<Arc<Server>, MeshError> {
        let metrics = Arc::new(Metrics::new());
        let wasm_shared = duet_proxywasm::SharedState::new();
        let admin_address = config.admin.as_ref().map(|a| a.address.clone());
        let snapshot = {
            let (metrics, wasm_shared) = (Arc::clone(&metrics), Arc::clone(&wasm_shared));
            tokio::task::spawn_blocking(move || Snapshot::build(config, &metrics, &wasm_shared, 1))
                .await
                .map_err(|e| MeshError::Invalid(format!("loading the config failed: {e}")))??
        };
        let shared = Arc::new(Shared::new(snapshot, metrics, wasm_shared, config_path));
        let admin = match admin_address {
            Some(a) => {
                let addr = config::parse_addr(&a).map_err(MeshError::Invalid)?;
                let listener =
                    TcpListener::bind(addr).await.map_err(|source| MeshError::Bind { address: a.clone(), source })?;
                let local = listener.local_addr().map_err(|source| MeshError::Bind { address: a, source })?;
                let (tx, rx) = watch::channel(false);
                Some((local, tx, listener, rx))
            }
            None => None,
        };
        let server = Arc::new(Server {
            shared: Arc::clone(&shared),
            bound: tokio::sync::Mutex::new(Vec::new()),
            graceful: std::sync::Mutex::new(Some(GracefulShutdown::new())),
            admin: admin.as_ref().map(|(local, tx, _, _)| (*local, tx.clone())),
            capture: std::sync::OnceLock::new(),
        });
        let snapshot = shared.snapshot();
        let mut bound = Vec::new();
        for l in &snapshot.config.listeners {
            bound.push(server.bind(l).await?);
        }
        if let Some(c) = &snapshot.config.capture {
            let local = bound.iter().find(|b| b.name == c.listener).map(|b| b.local);
            let Some(SocketAddr::V4(local)) = local else {
                return Err(MeshError::Invalid(format!("capture.listener `{}` is not bound to IPv4", c.listener)));
            };
            let inbound = match &c.inbound {
                Some(i) => {
                    let b = bound.iter_mut().find(|b| b.name == i.listener);
                    match b.and_then(|b| Some((b.local, b.socket.take()?))) {
                        Some((SocketAddr::V4(address), socket)) => {
                            Some(crate::capture::InboundListener { address, socket })
                        }
                        _ => {
                            return Err(MeshError::Invalid(format!(
                                "capture.inbound.listener `{}` is not bound to IPv4",
                                i.listener
                            )));
                        }
                    }
                }
                None => None,
            };
            let c = c.clone();
            let weak = Arc::downgrade(&shared);
            let capture = tokio::task::spawn_blocking(move || crate::capture::Capture::start(&c, local, inbound, weak))
                .await
                .map_err(|e| MeshError::Invalid(format!("capture: attaching failed: {e}")))??;
            let _ = server.capture.set(Arc::new(capture));
        }
        for b in &mut bound {
            b.socket = None;
        }
        *server.bound.lock().await = bound;
        start_background(&snapshot);
        tokio::spawn(crate::events::drain_ring_buffers(Arc::downgrade(&shared)));
        if let Some((_, _, listener, rx)) = admin {
            tokio::spawn(admin_loop(Arc::clone(&server), listener, rx));
        }
        shared.ready.store(true, Ordering::Relaxed);
        tracing::info!(
            listeners = %snapshot.listeners.iter().map(|l| format!("{}={}", l.name, l.config.address)).collect::<Vec<_>>().join(","),
            admin = ?server.admin.as_ref().map(|a| a.0),
            "duet mesh serving"
        );
        Ok(server)
    }

    /// The bound addresses of the listeners (useful with port 0).
    pub async fn listener_addresses(&self) -> Vec<(String, SocketAddr)> {
        self.bound.lock().await.iter().map(|b| (b.name.clone(), b.local)).collect()
    }

    /// The admin endpoint's bound address.
    pub fn admin_address(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|a| a.0)
    }

    async fn bind(self: &Arc<Self>, l: &config::Listener) -> Result<Bound, MeshError> {
        let addr = config::parse_addr(&l.address).map_err(MeshError::Invalid)?;
        let listener =
            TcpListener::bind(addr).await.map_err(|source| MeshError::Bind { address: l.address.clone(), source })?;
        let local = listener.local_addr().map_err(|source| MeshError::Bind { address: l.address.clone(), source })?;
        let socket = std::os::fd::AsFd::as_fd(&listener).try_clone_to_owned().ok();
        let (stop, rx) = watch::channel(false);
        tokio::spawn(accept_loop(Arc::clone(self), Arc::from(l.name.as_str()), listener, rx));
        Ok(Bound { name: l.name.clone(), address: l.address.clone(), local, stop, socket })
    }

    /// Waits for SIGTERM or SIGINT, reloading on every SIGHUP meanwhile.
    pub async fn wait_for_signals(self: &Arc<Self>) {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut hup), Ok(mut term), Ok(mut int)) =
            (signal(SignalKind::hangup()), signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        else {
            tracing::error!("cannot install signal handlers; serving until killed");
            std::future::pending::<()>().await;
            return;
        };
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading {}", self.shared.config_path.display());
                    let _ = self.reload().await;
                }
                _ = term.recv() => { tracing::info!("SIGTERM: draining"); return; }
                _ = int.recv() => { tracing::info!("SIGINT: draining"); return; }
            }
        }
    }

    /// Loads the config file again. The new snapshot is used only when everything in it loaded
    /// (filters, certificates, new listener addresses); otherwise the running one stays.
    pub async fn reload(self: &Arc<Self>) -> Result<u64, String> {
        let shared = &self.shared;
        let _serial = shared.reload_lock.lock().await;
        let res = self.reload_locked().await;
        shared.metrics.reload(res.is_ok());
        match &res {
            Ok(generation) => {
                tracing::info!(generation, "config reloaded");
                *shared.last_reload_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
            }
            Err(e) => {
                tracing::error!(error = %e, "reload failed; the running config stays");
                *shared.last_reload_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e.clone());
            }
        }
        res
    }

    async fn reload_locked(self: &Arc<Self>) -> Result<u64, String> {
        let shared = &self.shared;
        let config = Config::load(&shared.config_path).map_err(|e| e.to_string())?;
        if let Some(e) = capture_reload_error(&shared.snapshot().config, &config) {
            return Err(e);
        }
        let generation = shared.next_generation();
        let snapshot = {
            let (metrics, wasm_shared) = (Arc::clone(&shared.metrics), Arc::clone(&shared.wasm_shared));
            tokio::task::spawn_blocking(move || Snapshot::build(config, &metrics, &wasm_shared, generation))
                .await
                .map_err(|e| format!("loading the config failed: {e}"))?
                .map_err(|e| crate::error_chain(&e))?
        };
        // Bind what is new before switching, so a taken port keeps the old config running.
        let mut bound = self.bound.lock().await;
        let mut next = Vec::new();
        let mut fresh = Vec::new();
        for l in &snapshot.config.listeners {
            match bound.iter().position(|b| b.name == l.name && b.address == l.address) {
                Some(i) => next.push(bound.swap_remove(i)),
                None => match self.bind(l).await {
                    Ok(b) => fresh.push(Bound { socket: None, ..b }),
                    Err(e) => {
                        for b in fresh {
                            let _ = b.stop.send(true);
                        }
                        bound.extend(next);
                        return Err(crate::error_chain(&e));
                    }
                },
            }
        }
        // Maps the operator edited live survive the reload (same owner, name and shape).
        let carried = crate::maps_api::carry_over(&shared.snapshot().maps(), &snapshot.maps());
        if carried > 0 {
            tracing::info!(maps = carried, "map contents carried over to the new config");
        }
        start_background(&snapshot);
        shared.swap(snapshot);
        // Listeners gone from the config stop accepting; their open connections finish.
        for old in bound.drain(..) {
            let _ = old.stop.send(true);
        }
        next.extend(fresh);
        *bound = next;
        Ok(generation)
    }

    /// Stops accepting, lets in-flight requests finish up to the drain timeout, then returns.
    pub async fn shutdown(&self) {
        self.shared.ready.store(false, Ordering::Relaxed);
        for b in self.bound.lock().await.iter() {
            let _ = b.stop.send(true);
        }
        let drain = Duration::from_millis(self.shared.snapshot().config.drain_timeout_ms);
        let graceful = self.graceful.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(g) = graceful {
            match tokio::time::timeout(drain, g.shutdown()).await {
                Ok(()) => tracing::info!("drained"),
                Err(_) => tracing::warn!(?drain, "drain timeout: closing the remaining connections"),
            }
        }
        if let Some((_, stop)) = &self.admin {
            let _ = stop.send(true);
        }
        if let Some(capture) = self.capture.get() {
            capture.stop();
        }
    }
}

/// Why `new` cannot replace the running `old` config in a reload, if it cannot. Transparent
/// capture is attached once, at start, to the addresses its listeners had then: the programs
/// redirect connections to the capture listener's address, and the inbound listener's socket is
/// filed in a sockmap. A reload that moved either listener would leave capture pointing at a
/// closed socket (captured connections refused, or inbound capture silently gone), so such a
/// reload is refused and the running config stays.
fn capture_reload_error(old: &Config, new: &Config) -> Option<String> {
    if old.capture != new.capture {
        return Some(
            "`capture` cannot change in a reload: it is attached when the sidecar starts; restart the sidecar to change it"
                .into(),
        );
    }
    let capture = old.capture.as_ref()?;
    let captured = std::iter::once(&capture.listener).chain(capture.inbound.as_ref().map(|i| &i.listener));
    for name in captured {
        let address = |c: &Config| c.listeners.iter().find(|l| &l.name == name).map(|l| l.address.clone());
        if address(old) != address(new) {
            return Some(format!(
                "listener `{name}` is captured (`capture`): a reload cannot move or remove it, as capture stays \
                 attached to its address; restart the sidecar to change it"
            ));
        }
    }
    None
}

fn start_background(snapshot: &Snapshot) {
    let io: Arc<dyn crate::filter::Upstreams> = snapshot.clusters.clone();
    for f in snapshot.filters() {
        f.start_background(Arc::clone(&io));
    }
}

async fn accept_loop(server: Arc<Server>, name: Arc<str>, listener: TcpListener, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            res = listener.accept() => match res {
                Ok((tcp, peer)) => {
                    let watcher = server.graceful.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref().map(|g| g.watcher());
                    let Some(watcher) = watcher else { return };
                    let capture = server.capture.get().filter(|c| c.serves(&name)).cloned();
                    let (shared, name) = (Arc::clone(&server.shared), Arc::clone(&name));
                    tokio::spawn(async move {
                        let original_dst = capture.as_ref().and_then(|c| c.accepted(&name, &tcp, peer));
                        serve_conn(shared, Arc::clone(&name), tcp, peer, original_dst, watcher).await;
                        if let (Some(c), Some(_)) = (capture, original_dst) {
                            c.closed(&name, peer);
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(listener = %name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
}

struct ConnGuard(Arc<Shared>, Arc<str>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.metrics.connection(&self.1, -1);
    }
}

async fn serve_conn(
    shared: Arc<Shared>,
    name: Arc<str>,
    tcp: TcpStream,
    peer: SocketAddr,
    original_dst: Option<SocketAddr>,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let Ok(local) = tcp.local_addr() else { return };
    let _ = tcp.set_nodelay(true);
    shared.metrics.connection(&name, 1);
    let _guard = ConnGuard(Arc::clone(&shared), Arc::clone(&name));
    let snapshot = shared.snapshot();
    let Some(l) = snapshot.listener(&name) else { return };
    let max_header = l.config.max_header_bytes;
    match l.tls.clone() {
        None => {
            let conn = ConnInfo { peer, local, tls: false, mtls: false, original_dst };
            serve_io(shared, name, tcp, conn, max_header, watcher).await;
        }
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls);
            let stream = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::info!(listener = %name, client = %peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::info!(listener = %name, client = %peer, "TLS handshake timeout");
                    return;
                }
            };
            let mtls = stream.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty());
            let conn = ConnInfo { peer, local, tls: true, mtls, original_dst };
            serve_io(shared, name, stream, conn, max_header, watcher).await;
        }
    }
}

async fn serve_io<I>(
    shared: Arc<Shared>,
    name: Arc<str>,
    io: I,
    conn: ConnInfo,
    max_header: usize,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .max_buf_size(max_header.max(8192))
        .header_read_timeout(Duration::from_secs(30));
    builder.http2().timer(TokioTimer::new()).max_header_list_size(max_header as u32);
    let service =
        service_fn(move |req: Request<Incoming>| proxy::handle(Arc::clone(&shared), Arc::clone(&name), conn, req));
    let connection = builder.serve_connection(TokioIo::new(io), service).into_owned();
    if let Err(e) = watcher.watch(connection).await {
        tracing::debug!(client = %conn.peer, error = %e, "connection ended with an error");
    }
}

// === Admin ===

async fn admin_loop(server: Arc<Server>, listener: TcpListener, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            res = listener.accept() => {
                let Ok((tcp, _)) = res else { continue };
                let server = Arc::clone(&server);
                tokio::spawn(async move {
                    let service = service_fn(move |req| admin(Arc::clone(&server), req));
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
                });
            }
        }
    }
}

/// An admin response body: whole, or streamed (`/events`).
type AdminBody = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<AdminBody> {
    let mut r = Response::new(Full::new(body.into()).boxed_unsync());
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    r
}

fn json(status: StatusCode, v: &serde_json::Value) -> Response<AdminBody> {
    let mut body = serde_json::to_vec_pretty(v).unwrap_or_default();
    body.push(b'\n');
    respond(status, "application/json", body)
}

/// Largest admin request body (map updates).
const ADMIN_BODY_LIMIT: usize = 1 << 20;

async fn admin(server: Arc<Server>, req: Request<Incoming>) -> Result<Response<AdminBody>, Infallible> {
    let shared = &server.shared;
    let snapshot = shared.snapshot();
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let body = match http_body_util::Limited::new(req.into_body(), ADMIN_BODY_LIMIT).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Ok(respond(
                StatusCode::PAYLOAD_TOO_LARGE,
                "text/plain",
                "admin request bodies are at most 1 MiB\n",
            ));
        }
    };
    if let Some(rest) = path.strip_prefix("/maps") {
        return Ok(admin_maps(&snapshot, &method, rest, &body));
    }
    Ok(match (method, path.as_str()) {
        (Method::GET, "/events") => {
            let body = crate::events::EventBody::subscribe(&shared.events);
            let mut r = Response::new(body.boxed_unsync());
            r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/x-ndjson"));
            r
        }
        (Method::GET, "/metrics") => respond(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            shared.metrics.encode(&snapshot.filters(), &snapshot.apps()),
        ),
        (Method::GET, "/config") => json(
            StatusCode::OK,
            &serde_json::json!({
                "generation": snapshot.generation,
                "file": shared.config_path.display().to_string(),
                "config": snapshot.config,
            }),
        ),
        (Method::GET, "/filters") => {
            let filters: Vec<serde_json::Value> = snapshot
                .listeners
                .iter()
                .flat_map(|l| {
                    l.filters.iter().map(|f| {
                        let mut s = f.status();
                        s["listener"] = serde_json::Value::from(l.name.clone());
                        s
                    })
                })
                .collect();
            let routes: Vec<serde_json::Value> = snapshot.route_programs().iter().map(|p| p.status()).collect();
            json(
                StatusCode::OK,
                &serde_json::json!({ "generation": snapshot.generation, "filters": filters, "route_programs": routes }),
            )
        }
        (Method::GET, "/ready") => {
            if shared.ready.load(Ordering::Relaxed) {
                respond(StatusCode::OK, "text/plain", "ready\n")
            } else {
                respond(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "not ready\n")
            }
        }
        (Method::GET, "/healthz") => respond(StatusCode::OK, "text/plain", "ok\n"),
        (Method::POST, "/reload") => match server.reload().await {
            Ok(generation) => json(StatusCode::OK, &serde_json::json!({ "ok": true, "generation": generation })),
            Err(e) => json(
                StatusCode::BAD_REQUEST,
                &serde_json::json!({ "ok": false, "error": e, "generation": shared.snapshot().generation }),
            ),
        },
        (_, "/reload") => respond(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "use POST /reload\n"),
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            "endpoints: GET /metrics /config /filters /ready /healthz /events /maps /maps/<owner>/<map>, \
             PUT|DELETE /maps/<owner>/<map>, POST /reload\n",
        ),
    })
}

/// `/maps...`: list, read, update and delete the maps of eBPF and duet-ABI filters and routing
/// programs.
fn admin_maps(snapshot: &Snapshot, method: &Method, rest: &str, body: &[u8]) -> Response<AdminBody> {
    let maps = snapshot.maps();
    if rest.is_empty() || rest == "/" {
        if *method != Method::GET {
            return respond(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "use GET /maps\n");
        }
        let list: Vec<serde_json::Value> = maps.iter().map(crate::maps_api::describe).collect();
        return json(StatusCode::OK, &serde_json::json!({ "generation": snapshot.generation, "maps": list }));
    }
    let target = rest.trim_start_matches('/');
    let Some((owner, name)) = target.rsplit_once('/') else {
        return respond(StatusCode::NOT_FOUND, "text/plain", "expected /maps/<owner>/<map>\n");
    };
    let Some(map) = maps.iter().find(|m| m.owner == owner && m.name == name) else {
        let known: Vec<String> = maps.iter().map(|m| format!("{}/{}", m.owner, m.name)).collect();
        let msg = format!(
            "no map `{name}` of `{owner}`; maps: {}\n",
            if known.is_empty() { "none".into() } else { known.join(", ") }
        );
        return respond(StatusCode::NOT_FOUND, "text/plain", msg);
    };
    let result = match *method {
        Method::GET => Ok(crate::maps_api::entries(map)),
        Method::PUT => crate::maps_api::put(map, body),
        Method::DELETE => crate::maps_api::delete(map, body),
        _ => return respond(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "use GET, PUT or DELETE\n"),
    };
    match result {
        Ok(v) => json(StatusCode::OK, &v),
        Err(e) => json(
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
            &serde_json::json!({ "ok": false, "error": e.message }),
        ),
    }
}

/// The config file path, made absolute.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(capture_listener: &str, inbound_address: &str, ports: &str) -> Config {
        let text = format!(
            r#"
listeners:
  - name: out
    address: "127.0.0.1:15001"
    routes: [{{ prefix: "/", cluster: dst }}]
  - name: in
    address: "{inbound_address}"
    routes: [{{ prefix: "/", cluster: dst }}]
  - name: other
    address: "127.0.0.1:15009"
    routes: [{{ prefix: "/", cluster: dst }}]
clusters:
  - name: dst
    original_destination: true
capture:
  cgroup: /sys/fs/cgroup/app
  listener: {capture_listener}
  bpf: capture.bpf.o
  inbound: {{ listener: in, ports: [{ports}] }}
"#
        );
        Config::parse(&text, Path::new("/etc/duet/mesh.yaml")).unwrap()
    }

    #[test]
    fn a_reload_may_not_move_captured_listeners_or_change_capture() {
        let running = config("out", "127.0.0.1:15006", "8080");
        assert_eq!(capture_reload_error(&running, &running.clone()), None);

        // Listeners capture does not use may change.
        let mut other_moved = running.clone();
        other_moved.listeners[2].address = "127.0.0.1:15010".into();
        assert_eq!(capture_reload_error(&running, &other_moved), None);

        let moved = config("out", "127.0.0.1:15007", "8080");
        let e = capture_reload_error(&running, &moved).expect("moving the inbound listener is refused");
        assert!(e.contains("listener `in` is captured"), "{e}");

        let mut out_moved = running.clone();
        out_moved.listeners[0].address = "127.0.0.1:15002".into();
        let e = capture_reload_error(&running, &out_moved).expect("moving the capture listener is refused");
        assert!(e.contains("listener `out` is captured"), "{e}");

        let ports = config("out", "127.0.0.1:15006", "8080, 9090");
        let e = capture_reload_error(&running, &ports).expect("changing capture is refused");
        assert!(e.contains("`capture` cannot change in a reload"), "{e}");

        let mut without = running.clone();
        without.capture = None;
        assert!(capture_reload_error(&running, &without).is_some());
        assert!(capture_reload_error(&without, &running).is_some());
        assert_eq!(capture_reload_error(&without, &without.clone()), None);
    }
}
