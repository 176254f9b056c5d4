//! A small HTTP/1.1 + HTTP/2 backend, the upstream of the demo, the benchmark and the tests.
//!
//! - `GET /headers`: the request's method, path and headers as JSON;
//! - `/echo`: the request body streamed back (with the request's trailers as response trailers);
//! - `/status/<code>`: an empty response with that status;
//! - `/slow/<ms>`: answers after that many milliseconds;
//! - `/bytes/<n>`: `n` bytes of `x`;
//! - `/check`: an authorization check for filters' `http_call`s: 403 when the `x-original-path`
//!   header starts with `/private`, else 200 with body `user-<name>`;
//! - anything else: `hello from <name>\n`, with `x-backend: <name>`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::proxy::DownBody;

/// A loopback port that is free now, for a listener the caller is about to configure and start.
///
/// Ports come from below the kernel's ephemeral range (`net.ipv4.ip_local_port_range`, 32768 and
/// up by default), so the outgoing connections of other tests and programs cannot take the port
/// between this call and the bind, as they could with a port the kernel picked for `:0`. A
/// process-wide counter keeps concurrent callers in one process on different ports.
pub fn free_loopback_port() -> std::io::Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 10_000;
    const SPAN: u32 = 22_000; // 10000..32000
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let seed = std::process::id().wrapping_mul(7_919) % SPAN;
    let _ = NEXT.compare_exchange(u32::MAX, seed, Ordering::Relaxed, Ordering::Relaxed);
    for _ in 0..SPAN {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::Relaxed) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(std::io::Error::new(std::io::ErrorKind::AddrInUse, "no free loopback port in 10000-31999"))
}

/// Serves on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, name: &str) {
    let name: Arc<str> = Arc::from(name);
    loop {
        let Ok((tcp, _)) = listener.accept().await else { continue };
        let _ = tcp.set_nodelay(true);
        let name = Arc::clone(&name);
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(Arc::clone(&name), req));
            let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(tcp), service).await;
        });
    }
}

/// Binds `addr` and serves in a new task; returns the bound address.
pub async fn spawn(addr: SocketAddr, name: &str) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let name = name.to_owned();
    tokio::spawn(async move { serve(listener, &name).await });
    Ok(local)
}

use crate::proxy::full_body as full;

async fn handle(name: Arc<str>, req: Request<Incoming>) -> Result<Response<DownBody>, Infallible> {
    let path = req.uri().path().to_owned();
    let mut resp = if path == "/headers" {
        let headers: serde_json::Map<String, serde_json::Value> = req
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect();
        let body = serde_json::json!({
            "method": req.method().as_str(),
            "path": req.uri().path_and_query().map_or("/", |p| p.as_str()),
            "version": format!("{:?}", req.version()),
            "headers": headers,
        });
        let mut r = Response::new(full(body.to_string()));
        r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        r
    } else if path == "/echo" {
        Response::new(req.into_body().map_err(|e| -> crate::BoxError { Box::new(e) }).boxed_unsync())
    } else if path == "/check" {
        let private = req.headers().get("x-original-path").is_some_and(|p| p.as_bytes().starts_with(b"/private"));
        let mut r = Response::new(full(if private { String::new() } else { format!("user-{name}") }));
        if private {
            *r.status_mut() = StatusCode::FORBIDDEN;
        }
        r
    } else if let Some(code) = path.strip_prefix("/status/") {
        let mut r = Response::new(full(Bytes::new()));
        *r.status_mut() =
            code.parse().ok().and_then(|c| StatusCode::from_u16(c).ok()).unwrap_or(StatusCode::BAD_REQUEST);
        r
    } else if let Some(ms) = path.strip_prefix("/slow/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
        Response::new(full(format!("slow hello from {name}\n")))
    } else if let Some(n) = path.strip_prefix("/bytes/") {
        Response::new(full(vec![b'x'; n.parse::<usize>().unwrap_or(0).min(64 << 20)]))
    } else {
        Response::new(full(format!("hello from {name}\n")))
    };
    if let Ok(v) = http::HeaderValue::from_str(&name) {
        resp.headers_mut().insert("x-backend", v);
    }
    Ok(resp)
}
