//! `hello`: a small JSON API served as a WASI 0.2 `wasi:http/incoming-handler` component.
//!
//! | request | answer |
//! |---|---|
//! | `GET /` | `{"hello":"duet","app":"hello"}` |
//! | `GET /kv/<key>` | the value stored in the host's key-value store (`duet:app/kv`), or 404 (501 when built without the default `kv` feature) |
//! | `PUT /kv/<key>` | stores the request body under `<key>` |
//! | `DELETE /kv/<key>` | removes `<key>` |
//! | `GET /env/<name>` | the environment variable the host configured, or 404 |
//! | `GET /file/<name>` | the file `/data/<name>` (a directory the host must grant), or 404 when it does not exist, 403 for any other error (nothing granted, no permission) |
//! | `PUT /file/<name>` | writes the request body to `/data/<name>` (403 unless the host granted `/data` writable) |
//! | `GET /fetch?url=http://host:port/path` | makes that outbound request (`wasi:http/outgoing-handler`) and reports status and body, or the error code the host gave |
//! | `POST /echo` | the request body |
//! | `GET /fresh` | `{"counts":[1,8]}` from a fresh instance: two static counters, one zero-initialised and one starting at 7, each incremented once |
//! | `GET /stderr?kb=N` | writes `N` KiB to stderr |
//! | `GET /panic`, `GET /loop`, `GET /alloc?mb=N`, `GET /silent` | misbehaviour on purpose: a trap, an endless loop, `N` MiB of memory, no response at all (tests of the host's limits) |
//! | `GET /bad/short`, `GET /bad/short-big`, `GET /bad/long`, `GET /bad/unfinished` | malformed responses on purpose: `content-length: 100` (or 1000000) with 3 bytes written (and `finish` called), 100 bytes written under `content-length: 3` (and the body dropped unfinished), 3 bytes without a length and the body dropped unfinished |
//! | `GET /bad/headers` | tries forbidden headers, an invalid name, an invalid value, a non-numeric and a second `content-length`, and status 1000, and answers 200 with what the host said to each |
//!
//! Built without the default `kv` feature the component imports nothing but WASI 0.2, so any
//! `wasi:http/proxy` host (`wasmtime serve`) runs it.
//!
//! Every instance serves one request, so the app keeps no state of its own: what must outlive
//! a request lives in the host's store.

use std::sync::atomic::{AtomicU64, Ordering};

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingRequest, OutgoingResponse,
    ResponseOutparam, Scheme,
};
use wasip2::io::streams::{InputStream, StreamError};

#[cfg(feature = "kv")]
mod kv {
    wit_bindgen::generate!({
        path: "../../../crates/app/wit/kv.wit",
        world: "host",
    });
    pub use self::duet::app::kv::*;
}

/// Counters in zero-initialised and in initialised static memory, for `GET /fresh`.
static ZEROED: AtomicU64 = AtomicU64::new(0);
static INITIALISED: AtomicU64 = AtomicU64::new(7);

/// Bytes the app accepts in a request body (`PUT /kv`, `POST /echo`).
const MAX_BODY: usize = 1 << 20;

struct Hello;

impl wasip2::exports::http::incoming_handler::Guest for Hello {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let method = request.method();
        let path_with_query = request.path_with_query().unwrap_or_else(|| "/".into());
        let (path, query) = match path_with_query.split_once('?') {
            Some((path, query)) => (path.to_string(), query.to_string()),
            None => (path_with_query.clone(), String::new()),
        };
        if path == "/silent" {
            // Returns without setting the response outparam: the host must answer for the app.
            drop(out);
            return;
        }
        if let Some(how) = path.strip_prefix("/bad/") {
            malformed(how, out);
            return;
        }
        let (status, body) = route(&method, &path, &query, request);
        respond(out, status, &body);
    }
}

wasip2::http::proxy::export!(Hello);

fn route(method: &Method, path: &str, query: &str, request: IncomingRequest) -> (u16, Vec<u8>) {
    let segments: Vec<&str> = path.trim_start_matches('/').splitn(2, '/').collect();
    match (method, segments.as_slice()) {
        (Method::Get, [""]) => json(200, serde_json::json!({"hello": "duet", "app": "hello"})),
        #[cfg(not(feature = "kv"))]
        (_, ["kv", _]) => json(501, serde_json::json!({"error": "built without the kv feature"})),
        #[cfg(feature = "kv")]
        (Method::Get, ["kv", key]) => match kv::get(key) {
            Ok(Some(value)) => json(200, serde_json::json!({"key": key, "value": String::from_utf8_lossy(&value)})),
            Ok(None) => json(404, serde_json::json!({"error": "no such key", "key": key})),
            Err(e) => kv_error(e),
        },
        #[cfg(feature = "kv")]
        (Method::Put, ["kv", key]) => {
            let value = match read_body(request) {
                Ok(value) => value,
                Err(e) => return json(400, serde_json::json!({"error": e})),
            };
            match kv::set(key, &value) {
                Ok(()) => json(200, serde_json::json!({"stored": key, "bytes": value.len()})),
                Err(e) => kv_error(e),
            }
        }
        #[cfg(feature = "kv")]
        (Method::Delete, ["kv", key]) => match kv::delete(key) {
            Ok(true) => json(200, serde_json::json!({"deleted": key})),
            Ok(false) => json(404, serde_json::json!({"error": "no such key", "key": key})),
            Err(e) => kv_error(e),
        },
        (Method::Get, ["env", name]) => match std::env::var(name) {
            Ok(value) => json(200, serde_json::json!({"name": name, "value": value})),
            Err(_) => json(404, serde_json::json!({"error": "not set", "name": name})),
        },
        (Method::Get, ["file", name]) => match std::fs::read(format!("/data/{name}")) {
            Ok(bytes) => (200, bytes),
            Err(e) => file_error(&e, name),
        },
        (Method::Put, ["file", name]) => match read_body(request) {
            Ok(body) => match std::fs::write(format!("/data/{name}"), &body) {
                Ok(()) => json(200, serde_json::json!({"written": name, "bytes": body.len()})),
                Err(e) => file_error(&e, name),
            },
            Err(e) => json(400, serde_json::json!({"error": e})),
        },
        (Method::Get, ["fetch"]) => match query.strip_prefix("url=") {
            Some(url) => fetch(url),
            None => json(400, serde_json::json!({"error": "want ?url=http://host:port/path"})),
        },
        (Method::Post, ["echo"]) => match read_body(request) {
            Ok(body) => (200, body),
            Err(e) => json(400, serde_json::json!({"error": e})),
        },
        (Method::Get, ["fresh"]) => {
            // Memory a previous request wrote, if instances were reused or their memory not reset:
            // a fresh instance always answers `[1, 8]`.
            let zeroed = ZEROED.fetch_add(1, Ordering::Relaxed) + 1;
            let initialised = INITIALISED.fetch_add(1, Ordering::Relaxed) + 1;
            json(200, serde_json::json!({"counts": [zeroed, initialised]}))
        }
        (Method::Get, ["stderr"]) => {
            // Logging is a capability with a cap: the host keeps the first bytes, drops the
            // rest, and never fails the write.
            let kb: usize = query.strip_prefix("kb=").and_then(|n| n.parse().ok()).unwrap_or(1);
            for i in 0..kb * 16 {
                eprintln!("line {i:5} of the hello app's stderr, 64 bytes with newline.....");
            }
            json(200, serde_json::json!({"logged_kb": kb}))
        }
        (Method::Get, ["panic"]) => panic!("the app panicked on purpose"),
        (Method::Get, ["loop"]) => {
            // An endless loop the optimiser cannot remove: only the host's deadline ends it.
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        (Method::Get, ["alloc"]) => {
            let mb: usize = query.strip_prefix("mb=").and_then(|n| n.parse().ok()).unwrap_or(1);
            // Touch every page, so the memory is really taken, and keep it alive.
            let hoard: Vec<Vec<u8>> = (0..mb).map(|i| vec![i as u8 | 1; 1 << 20]).collect();
            let sum: u64 = hoard.iter().map(|block| block[block.len() - 1] as u64).sum();
            json(200, serde_json::json!({"allocated_mb": mb, "check": sum}))
        }
        _ => json(404, serde_json::json!({"error": "no such route", "path": path})),
    }
}

/// A filesystem error: 404 for a missing file, 403 for everything else (the host granted no
/// such directory, or not for writing).
fn file_error(e: &std::io::Error, name: &str) -> (u16, Vec<u8>) {
    let status = if e.kind() == std::io::ErrorKind::NotFound { 404 } else { 403 };
    json(status, serde_json::json!({"error": e.to_string(), "file": name}))
}

/// `GET url` through the host's outgoing handler: the host decides whether the app may reach it.
fn fetch(url: &str) -> (u16, Vec<u8>) {
    let Some(rest) = url.strip_prefix("http://") else {
        return json(400, serde_json::json!({"error": "only http:// URLs", "url": url}));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    match get(authority, path) {
        Ok((status, body)) => json(200, serde_json::json!({"status": status, "body": String::from_utf8_lossy(&body)})),
        Err(code) => json(502, serde_json::json!({"error": format!("{code:?}"), "url": url})),
    }
}

fn get(authority: &str, path: &str) -> Result<(u16, Vec<u8>), ErrorCode> {
    let request = OutgoingRequest::new(Fields::new());
    let set = [
        request.set_method(&Method::Get),
        request.set_scheme(Some(&Scheme::Http)),
        request.set_authority(Some(authority)),
        request.set_path_with_query(Some(path)),
    ];
    if set.iter().any(Result::is_err) {
        return Err(ErrorCode::HttpRequestUriInvalid);
    }
    let pending = outgoing_handler::handle(request, None)?;
    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(response)) => response?,
        Some(Err(())) | None => return Err(ErrorCode::InternalError(Some("response lost".into()))),
    };
    let status = response.status();
    let body = response.consume().map_err(|()| ErrorCode::HttpResponseIncomplete)?;
    let stream = body.stream().map_err(|()| ErrorCode::HttpResponseIncomplete)?;
    let bytes = read_all(&stream).map_err(|_| ErrorCode::HttpResponseIncomplete)?;
    drop(stream);
    drop(body);
    Ok((status, bytes))
}

fn read_body(request: IncomingRequest) -> Result<Vec<u8>, String> {
    let body = request.consume().map_err(|()| "body already taken".to_string())?;
    let stream = body.stream().map_err(|()| "body stream already taken".to_string())?;
    let bytes = read_all(&stream)?;
    drop(stream);
    IncomingBody::finish(body);
    Ok(bytes)
}

fn read_all(stream: &InputStream) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > MAX_BODY {
                    return Err(format!("body larger than {MAX_BODY} bytes"));
                }
            }
            Err(StreamError::Closed) => return Ok(bytes),
            Err(StreamError::LastOperationFailed(e)) => return Err(e.to_debug_string()),
        }
    }
}

#[cfg(feature = "kv")]
fn kv_error(e: kv::Error) -> (u16, Vec<u8>) {
    let (status, text) = match e {
        kv::Error::NoStore => (503, "no key-value store configured".to_string()),
        kv::Error::TooLarge(why) => (413, why),
        kv::Error::Other(why) => (500, why),
    };
    json(status, serde_json::json!({"error": text}))
}

fn json(status: u16, value: serde_json::Value) -> (u16, Vec<u8>) {
    (status, value.to_string().into_bytes())
}

fn respond(out: ResponseOutparam, status: u16, body: &[u8]) {
    let headers = Fields::new();
    let content_type: &[u8] =
        if body.first() == Some(&b'{') { b"application/json" } else { b"application/octet-stream" };
    // Both names are valid and not forbidden, so these cannot fail.
    let _ = headers.append("content-type", content_type);
    let _ = headers.append("content-length", body.len().to_string().as_bytes());
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let Ok(outgoing) = response.body() else { return };
    ResponseOutparam::set(out, Ok(response));
    let Ok(stream) = outgoing.write() else { return };
    // `blocking_write_and_flush` takes at most 4096 bytes a call.
    for chunk in body.chunks(4096) {
        if stream.blocking_write_and_flush(chunk).is_err() {
            return;
        }
    }
    drop(stream);
    let _ = OutgoingBody::finish(outgoing, None);
}

/// Responses that break the rules of `wasi:http` or HTTP, for the host's checks: it must answer
/// 5xx (or end the connection) rather than pass on a response that claims what it does not send.
fn malformed(how: &str, out: ResponseOutparam) {
    match how {
        // Declares 100 bytes, writes 3, and calls `finish`, which the host refuses.
        "short" => send_with_length(out, "100", &[b'x'; 3], true),
        // The same with a declared length too long for the host to read the body first.
        "short-big" => send_with_length(out, "1000000", &[b'x'; 3], true),
        // Declares 3 bytes, writes 100 (the host takes them and reports the excess), and drops
        // the body without `finish`.
        "long" => send_with_length(out, "3", &[b'x'; 100], false),
        // No content-length, 3 bytes written, and the body dropped without `finish`: a body
        // the app abandoned, which `wasi:http` says is corrupt.
        "unfinished" => {
            let response = OutgoingResponse::new(Fields::new());
            let Ok(outgoing) = response.body() else { return };
            ResponseOutparam::set(out, Ok(response));
            let Ok(stream) = outgoing.write() else { return };
            let _ = stream.blocking_write_and_flush(b"xxx");
            drop(stream);
            drop(outgoing);
        }
        "headers" => {
            let headers = Fields::new();
            let report = serde_json::json!({
                "connection": header_result(headers.set("connection", &[b"close".to_vec()])),
                "transfer-encoding": header_result(headers.append("transfer-encoding", b"chunked")),
                "invalid-name": header_result(headers.set("bad header", &[b"x".to_vec()])),
                "invalid-value": header_result(headers.set("x-bad", &[b"line\nbreak".to_vec()])),
                "content-length-abc": header_result(headers.set("content-length", &[b"abc".to_vec()])),
                "content-length-twice": header_result(
                    headers.append("content-length", b"3").and_then(|()| headers.append("content-length", b"5"))
                ),
                "from-list": match Fields::from_list(&[("upgrade".to_string(), b"h2c".to_vec())]) {
                    Ok(_) => "accepted".to_string(),
                    Err(e) => header_error(e),
                },
                "status-1000": match OutgoingResponse::new(Fields::new()).set_status_code(1000) {
                    Ok(()) => "accepted",
                    Err(()) => "refused",
                },
            });
            drop(headers);
            let (status, body) = json(200, report);
            respond(out, status, &body);
        }
        _ => {
            let (status, body) = json(404, serde_json::json!({"error": "no such misbehaviour", "how": how}));
            respond(out, status, &body);
        }
    }
}

/// Sends `body` under `content-length: length`, ignoring every error the host reports, and
/// calls `finish` only when `finish` is true.
fn send_with_length(out: ResponseOutparam, length: &str, body: &[u8], finish: bool) {
    let headers = Fields::new();
    let _ = headers.set("content-type", &[b"text/plain".to_vec()]);
    let _ = headers.set("content-length", &[length.as_bytes().to_vec()]);
    let response = OutgoingResponse::new(headers);
    let Ok(outgoing) = response.body() else { return };
    ResponseOutparam::set(out, Ok(response));
    let Ok(stream) = outgoing.write() else { return };
    let written = stream.blocking_write_and_flush(body);
    eprintln!("writing {} bytes under content-length {length}: {written:?}", body.len());
    drop(stream);
    if finish {
        let finished = OutgoingBody::finish(outgoing, None);
        eprintln!("finish: {finished:?}");
    } else {
        drop(outgoing);
    }
}

fn header_result(result: Result<(), wasip2::http::types::HeaderError>) -> String {
    match result {
        Ok(()) => "accepted".to_string(),
        Err(e) => header_error(e),
    }
}

fn header_error(e: wasip2::http::types::HeaderError) -> String {
    match e {
        wasip2::http::types::HeaderError::Forbidden => "forbidden".to_string(),
        wasip2::http::types::HeaderError::InvalidSyntax => "invalid-syntax".to_string(),
        wasip2::http::types::HeaderError::Immutable => "immutable".to_string(),
    }
}
