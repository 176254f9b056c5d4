//! Test support: builds `examples/apps/hello` for `wasm32-wasip2`, serves an `App` on a
//! loopback port with hyper, a loopback backend, a hyper client, and an `Outbound` that
//! connects straight to the authority (loopback only in these tests).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use duet_app::{App, AppBody, BoxError, BoxFuture, Outbound, OutboundError};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// Builds the hello app once per test binary and returns the `.wasm` path.
pub fn hello_wasm() -> PathBuf {
    duet_testdata::wasm_apps::build_hello_app().expect("building examples/apps/hello")
}

/// Serves `app` on a fresh loopback port, one hyper HTTP/1.1 connection task per client.
pub async fn serve(app: Arc<App>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let app = Arc::clone(&app);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    let app = Arc::clone(&app);
                    async move { Ok::<_, Infallible>(app.serve(req).await) }
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    addr
}

/// A loopback backend answering every request with `backend saw <method> <path>`.
pub async fn backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|req: http::Request<Incoming>| async move {
                    let text = format!("backend saw {} {}", req.method(), req.uri().path());
                    Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(text))))
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    addr
}

/// A response read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn error_kind(&self) -> Option<&str> {
        self.headers.get(duet_app::ERROR_HEADER).and_then(|v| v.to_str().ok())
    }
}

/// One request on a new HTTP/1.1 connection.
pub async fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Answer {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, addr.to_string())
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("request");
    let response = sender.send_request(req).await.expect("send");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    Answer { status: parts.status.as_u16(), headers: parts.headers, body }
}

pub async fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, "GET", path, b"").await
}

/// The sidecar's part, played directly: connect to the request's authority and send it.
#[derive(Debug)]
pub struct DirectOutbound;

impl Outbound for DirectOutbound {
    fn send(&self, req: http::Request<AppBody>) -> BoxFuture<'static, Result<http::Response<AppBody>, OutboundError>> {
        Box::pin(async move {
            let authority = req.uri().authority().ok_or(OutboundError::NotFound)?.to_string();
            let stream = TcpStream::connect(&authority).await.map_err(|_| OutboundError::ConnectionRefused)?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| OutboundError::Other(e.to_string()))?;
            tokio::spawn(conn);
            let (mut parts, body) = req.into_parts();
            // Origin form on the wire; the host header carries the authority.
            parts.uri = parts.uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/").parse().expect("path");
            let response = sender
                .send_request(http::Request::from_parts(parts, body))
                .await
                .map_err(|e| OutboundError::Other(e.to_string()))?;
            Ok(response.map(|body| body.map_err(|e| Box::new(e) as BoxError).boxed_unsync()))
        })
    }
}

/// A directory removed when dropped, also when a test fails.
pub struct RemoveDir(pub std::path::PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
