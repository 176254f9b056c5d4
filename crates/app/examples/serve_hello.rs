//! `examples/apps/hello` (without `kv`) or a native handler doing the same work, behind the same
//! hyper HTTP/1.1 server on a one-worker tokio runtime: to load with wrk and compare the CPU time
//! per request of the two, everything else equal.
//!
//! `cargo run --release -p duet-app --example serve_hello -- app 127.0.0.1:18081` (or `native`).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use duet_app::{App, AppBody, AppConfig};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

fn native(req: &http::Request<Incoming>) -> http::Response<AppBody> {
    let (status, value) = match (req.method(), req.uri().path()) {
        (&http::Method::GET, "/") => (200, serde_json::json!({"app": "hello", "hello": "duet"})),
        (_, path) => (404, serde_json::json!({"error": "no such route", "path": path})),
    };
    let body = Full::new(Bytes::from(value.to_string())).map_err(|never| match never {}).boxed_unsync();
    let mut response = http::Response::new(body);
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::NOT_FOUND);
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "app".into());
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18081".into());
    let app = (mode == "app").then(|| {
        let wasm = duet_testdata::wasm_apps::build_hello_app_without_kv().expect("building examples/apps/hello");
        Arc::new(App::load(&AppConfig::new(wasm), None).expect("loading the hello app"))
    });
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
        println!("{mode} listening on http://{addr}");
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            let app = app.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    let app = app.clone();
                    async move {
                        Ok::<_, Infallible>(match app {
                            Some(app) => app.serve(req).await,
                            None => native(&req),
                        })
                    }
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
}
