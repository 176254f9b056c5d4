//! The sidecar end to end: `duet mesh run` as a child process, real backends and real HTTP/1.1
//! and HTTP/2 clients on loopback, and duet's own Proxy-Wasm test filters (tests/proxy-wasm,
//! built by the test for wasm32-wasip1 and wasm32-unknown-unknown).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::BodyExt;

mod mesh_support;
use mesh_support::*;

// === Tests ===

/// Every ABI area through the sidecar, for both Wasm targets of the filters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_wasm_filters_run_in_the_sidecar() {
    for target in ["wasm32-wasip1", "wasm32-unknown-unknown"] {
        filters_end_to_end(target).await;
    }
}

async fn filters_end_to_end(target: &str) {
    let wasm = filters(target);
    let w = |name: &str| wasm.join(format!("{name}.wasm"));
    let backend = duet_mesh::backend::spawn(addr(0), "b1").await.unwrap();
    let auth = duet_mesh::backend::spawn(addr(0), "auth").await.unwrap();
    let names = [
        "headers",
        "body",
        "deny",
        "auth",
        "props",
        "metrics",
        "shared",
        "tick",
        "queue",
        "panic_closed",
        "panic_open",
        "loop",
        "hog",
        "plain",
    ];
    let ports: Vec<u16> = names.iter().map(|_| free_port()).collect();
    let port = |n: &str| addr(ports[names.iter().position(|x| *x == n).unwrap()]);
    let admin = free_port();
    let mut ls = String::new();
    let specs: [(&str, String); 14] = [
        ("headers", filter("tagger", &w("http_headers"), "        config: \"tag-1\"\n")),
        ("body", filter("rewrite", &w("body_rewrite"), "")),
        ("deny", filter("deny", &w("local_response"), "        config: \"/admin\"\n")),
        ("auth", filter("auth", &w("http_call"), "        config: \"auth\"\n")),
        ("props", filter("props", &w("properties"), "")),
        ("metrics", filter("counter", &w("metrics"), "")),
        ("shared", filter("shared", &w("shared_data"), "        vm_id: shared\n")),
        (
            "tick",
            format!(
                "{}{}",
                filter("ticker", &w("tick"), "        config: \"5\"\n        vm_id: ticks\n"),
                filter("tick_reader", &w("tick"), "        config: \"100000\"\n        vm_id: ticks\n")
            ),
        ),
        ("queue", filter("queue", &w("queue"), "        vm_id: q\n")),
        ("panic_closed", filter("panicky", &w("panic"), "        on_error: fail_closed\n")),
        ("panic_open", filter("panicky_open", &w("panic"), "        on_error: fail_open\n")),
        ("loop", filter("looper", &w("infinite_loop"), "        deadline_ms: 50\n")),
        ("hog", filter("hog", &w("memory_hog"), "        memory_limit_mb: 16\n")),
        ("plain", String::new()),
    ];
    for (name, filters) in &specs {
        ls.push_str(&listener(name, port(name).port(), filters, TO_BACKEND));
    }
    let clusters =
        format!("  - {{ name: backend, endpoints: [\"{backend}\"] }}\n  - {{ name: auth, endpoints: [\"{auth}\"] }}\n");
    let dir = temp_dir(&format!("filters-{target}"));
    let mesh = Mesh::start(&dir, &mesh_config(admin, &ls, &clusters), admin);

    // Headers: added, replaced, removed on the way up; added and removed on the way down.
    let req = Request::get("/headers")
        .header("host", "svc.local")
        .header("x-replace-me", "original")
        .header("x-remove-me", "gone")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "must not pass")
        .body(body(""))
        .unwrap();
    let got = one(port("headers"), req).await;
    assert_eq!(got.status, 200, "{}", got.body);
    let seen: serde_json::Value = serde_json::from_str(&got.body).unwrap();
    let h = &seen["headers"];
    assert_eq!(h["x-request-tag"], "tag-1", "{seen}");
    assert_eq!(h["x-replace-me"], "replaced");
    assert!(h.get("x-remove-me").is_none(), "{seen}");
    assert!(h.get("x-hop").is_none(), "hop-by-hop header named in Connection passed: {seen}");
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-request-id"].as_str().unwrap().len(), 36);
    assert_eq!(h["host"], "svc.local");
    assert_eq!(got.header("x-response-tag"), "tag-1");
    assert_eq!(got.header("x-seen-status"), "200");
    assert_eq!(got.header("x-backend"), "b1");

    // The same port speaks HTTP/2 with prior knowledge.
    let mut h2 = Client::connect(port("headers"), true).await;
    let got = h2.send(get(port("headers"), "/hello")).await.unwrap();
    assert_eq!((got.status, got.body.as_str(), got.header("x-response-tag")), (200, "hello from b1\n", "tag-1"));

    // Body rewrite: the filter buffers the response and replaces a word.
    let req = Request::post("/echo").header("host", "x").body(body("hello world, world")).unwrap();
    let got = one(port("body"), req).await;
    assert_eq!((got.status, got.body.as_str()), (200, "hello wasm, wasm"));

    // Local response for a configured prefix; other paths pass.
    let got = one(port("deny"), get(port("deny"), "/admin/users")).await;
    assert_eq!((got.status, got.body.as_str(), got.header("x-denied-by")), (403, "forbidden\n", "local_response"));
    assert_eq!(one(port("deny"), get(port("deny"), "/public")).await.status, 200);

    // http_call to the `auth` cluster, pause, resume with a header or deny.
    let got = one(port("auth"), get(port("auth"), "/headers")).await;
    assert_eq!(got.status, 200, "{}", got.body);
    let seen: serde_json::Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(seen["headers"]["x-auth"], "user-auth", "{seen}");
    let got = one(port("auth"), get(port("auth"), "/private/x")).await;
    assert_eq!((got.status, got.body.as_str()), (403, "denied\n"));

    // Properties, as Envoy names and encodes them.
    let req = Request::get("/p/q?x=1")
        .header("host", "props.local")
        .header("user-agent", "duet-test")
        .body(body(""))
        .unwrap();
    let got = one(port("props"), req).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("x-prop-request-path"), "/p/q?x=1", "{:?}", got.headers);
    assert_eq!(got.header("x-prop-request-method"), "GET");
    assert_eq!(got.header("x-prop-request-user-agent"), "duet-test");
    assert!(got.header("x-prop-source-address").starts_with("127.0.0.1:"), "{:?}", got.headers);
    assert_eq!(got.header("x-prop-destination-address"), port("props").to_string());
    assert_eq!(got.header("x-prop-plugin-name"), "props");

    // Metrics: the filter's own, exported with the proxy's.
    for _ in 0..3 {
        assert_eq!(one(port("metrics"), get(port("metrics"), "/")).await.status, 200);
    }
    let metrics = mesh.admin_get("/metrics");
    assert!(metrics.contains("duet_mesh_wasm_duet_requests_total_total{filter=\"counter\"} 3"), "{metrics}");
    assert!(metrics.contains("duet_mesh_filter_calls_total{filter=\"counter\"}"), "{metrics}");

    // Shared data with CAS: a counter across requests (and VMs), and a stale CAS is refused.
    let mut counts = Vec::new();
    for i in 0..4 {
        let got = one(port("shared"), get(port("shared"), "/")).await;
        // The first request finds no value to race against; later ones try a stale CAS.
        assert_eq!(got.header("x-stale-cas"), if i == 0 { "none" } else { "mismatch" }, "{:?}", got.headers);
        counts.push(got.header("x-shared-count").parse::<u64>().unwrap());
    }
    assert_eq!(counts, [1, 2, 3, 4]);

    // Timers: a 5 ms tick increments shared data another filter of the same vm_id reads.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = one(port("tick"), get(port("tick"), "/")).await;
    let ticks: u64 = got.header("x-ticks").parse().unwrap_or(0);
    assert!(ticks >= 5, "ticks {ticks}: {:?}", got.headers);

    // Shared queues: requests enqueue, the root context dequeues on on_queue_ready.
    for _ in 0..3 {
        assert_eq!(one(port("queue"), get(port("queue"), "/")).await.status, 200);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Faults: a panicking filter answers 503 naming itself (fail_closed) or is skipped
    // (fail_open); an infinite loop and a memory hog are stopped; other listeners go on.
    let got = one(port("panic_closed"), get(port("panic_closed"), "/")).await;
    assert_eq!(got.status, 503);
    assert!(got.body.contains("panicky"), "{}", got.body);
    let got = one(port("panic_open"), get(port("panic_open"), "/")).await;
    assert_eq!((got.status, got.body.as_str()), (200, "hello from b1\n"));
    let t = Instant::now();
    let got = one(port("loop"), get(port("loop"), "/")).await;
    assert_eq!(got.status, 503);
    assert!(t.elapsed() < Duration::from_secs(5), "the loop was not stopped promptly: {:?}", t.elapsed());
    let got = one(port("hog"), get(port("hog"), "/")).await;
    assert_eq!(got.status, 503, "{}", got.body);
    for _ in 0..20 {
        assert_eq!(one(port("panic_closed"), get(port("panic_closed"), "/")).await.status, 503);
        assert_eq!(one(port("plain"), get(port("plain"), "/")).await.status, 200);
    }
    let filters: serde_json::Value = serde_json::from_str(&mesh.admin_get("/filters")).unwrap();
    let panicky = filters["filters"].as_array().unwrap().iter().find(|f| f["name"] == "panicky").unwrap();
    assert!(panicky["failures"].as_u64().unwrap() >= 2, "{panicky}");
    let metrics = mesh.admin_get("/metrics");
    assert!(metrics.contains("duet_mesh_filter_traps_total{filter=\"looper\"}"), "{metrics}");
    assert!(metrics.contains("duet_mesh_filter_errors_total{filter=\"hog\"}"), "{metrics}");
    assert!(
        metrics.contains("duet_mesh_requests_total{listener=\"plain\",route=\"/\",cluster=\"backend\",class=\"2xx\"}"),
        "{metrics}"
    );
    drop(mesh);
}

/// Streaming, limits, trailers, timeouts, retries and hostile input.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxying_is_correct_and_survives_bad_input() {
    let backend = duet_mesh::backend::spawn(addr(0), "b1").await.unwrap();
    let dead = free_port(); // nothing listens here
    let garbage = junk_server(b"this is not http\r\n\r\n");
    let reset = junk_server(b"");
    let (main, h2up, flaky, junk, closing, admin) =
        (free_port(), free_port(), free_port(), free_port(), free_port(), free_port());
    let mut ls = listener(
        "main",
        main,
        "",
        "      - { prefix: \"/slow\", cluster: backend, timeout_ms: 300 }\n      - { prefix: \"/\", cluster: backend }\n",
    );
    ls.push_str("    max_request_body_bytes: 1000000\n    max_header_bytes: 8192\n");
    ls.push_str(&listener("h2up", h2up, "", "      - { prefix: \"/\", cluster: backend_h2 }\n"));
    ls.push_str(&listener("flaky", flaky, "", "      - { prefix: \"/\", cluster: flaky }\n"));
    ls.push_str(&listener("junk", junk, "", "      - { prefix: \"/\", cluster: garbage }\n"));
    ls.push_str(&listener("closing", closing, "", "      - { prefix: \"/\", cluster: reset }\n"));
    let clusters = format!(
        "  - {{ name: backend, endpoints: [\"{backend}\"] }}\n\
         \x20 - {{ name: backend_h2, endpoints: [\"{backend}\"], http2: true }}\n\
         \x20 - {{ name: flaky, endpoints: [\"127.0.0.1:{dead}\", \"{backend}\"], lb: least_request, connect_retries: 1, outlier: {{ consecutive_failures: 2, ejection_ms: 60000 }} }}\n\
         \x20 - {{ name: garbage, endpoints: [\"{garbage}\"] }}\n\
         \x20 - {{ name: reset, endpoints: [\"{reset}\"], connect_retries: 0 }}\n"
    );
    let dir = temp_dir("proxying");
    let access_log = dir.join("access.log");
    let yaml = format!("{}access_log: {{ path: \"{}\" }}\n", mesh_config(admin, &ls, &clusters), access_log.display());
    let mesh = Mesh::start(&dir, &yaml, admin);
    let main = addr(main);

    // A streamed request body comes back whole; chunked framing is the proxy's business.
    let big = "x".repeat(600_000);
    let req = Request::post("/echo").header("host", "x").body(body(big.clone())).unwrap();
    let got = one(main, req).await;
    assert_eq!((got.status, got.body.len()), (200, big.len()));
    let text = raw(main, b"POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n").unwrap();
    assert_eq!(status_of(&text), 200, "{text}");
    assert!(text.contains("hello") && text.contains(" world"), "{text}");

    // Limits: a declared or streamed body over the limit is refused with 413.
    let got = one(main, Request::post("/echo").header("host", "x").body(body("y".repeat(1_000_001))).unwrap()).await;
    assert_eq!(got.status, 413);
    let text =
        raw(main, b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5000000\r\nconnection: close\r\n\r\n").unwrap();
    assert_eq!(status_of(&text), 413, "{text}");

    // 100-continue: the proxy answers the interim response itself, then relays the body.
    let mut s = TcpStream::connect(main).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"POST /echo HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 4\r\nconnection: close\r\n\r\n",
    )
    .unwrap();
    let mut buf = [0u8; 25];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"ping").unwrap();
    let mut rest = String::new();
    let _ = s.read_to_string(&mut rest);
    // (The echo backend may send its response head before the body arrives.)
    assert!(rest.starts_with("HTTP/1.1 200") && rest.ends_with("ping"), "{rest}");

    // Trailers both ways over HTTP/2 (client and upstream).
    let mut c = Client::connect(addr(h2up), true).await;
    let mut trailers = http::HeaderMap::new();
    trailers.insert("x-checksum", "42".parse().unwrap());
    let req_body = Frames(
        vec![http_body::Frame::data(Bytes::from_static(b"with trailers")), http_body::Frame::trailers(trailers)].into(),
    );
    let req = Request::post(format!("http://{}/echo", addr(h2up))).body(req_body.boxed()).unwrap();
    let got = c.send(req).await.unwrap();
    assert_eq!((got.status, got.body.as_str()), (200, "with trailers"));
    assert_eq!(got.trailers.as_ref().and_then(|t| t.get("x-checksum")).map(|v| v.as_bytes()), Some(&b"42"[..]));

    // Smuggling attempts: with both framings the message is framed by transfer-encoding alone
    // (RFC 9112 §6.3), so the upstream sees an empty chunked body, never the 4 bytes the
    // content-length claims; the bytes after the last chunk are not a request the upstream sees.
    let text = raw(main, b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    assert_eq!(status_of(&text), 200, "{text}");
    assert!(text.ends_with("\r\n\r\n") || text.ends_with("0\r\n\r\n"), "the echoed body must be empty: {text}");
    assert!(!text.contains("smuggled"), "{text}");
    // Malformed heads: refused with a clear status, never a crash.
    let text = raw(main, b"GET / HTTP/1.1\r\nhost: x\r\nbad header: \x01\x02\r\n\r\n").unwrap();
    assert_eq!(status_of(&text), 400, "{text}");
    let long = format!("GET / HTTP/1.1\r\nhost: x\r\nx-long: {}\r\n\r\n", "a".repeat(20_000));
    let text = raw(main, long.as_bytes()).unwrap();
    assert_eq!(status_of(&text), 431, "{text}");

    // Upstreams that hang, send garbage or reset.
    let t = Instant::now();
    let got = one(main, get(main, "/slow/5000")).await;
    assert_eq!(got.status, 504);
    assert!(t.elapsed() < Duration::from_secs(3));
    let got = one(addr(junk), get(addr(junk), "/")).await;
    assert_eq!(got.status, 502, "{}", got.body);
    let got = one(addr(closing), get(addr(closing), "/")).await;
    assert_eq!(got.status, 502, "{}", got.body);

    // A dead endpoint: connects are retried on the live one, then it is ejected.
    for _ in 0..10 {
        let got = one(addr(flaky), get(addr(flaky), "/")).await;
        assert_eq!((got.status, got.body.as_str()), (200, "hello from b1\n"));
    }
    let metrics = mesh.admin_get("/metrics");
    let dead_endpoint = format!("endpoint=\"127.0.0.1:{dead}\"");
    assert!(
        metrics.lines().any(|l| l.starts_with("duet_mesh_upstream_ejections_total") && l.contains(&dead_endpoint)),
        "{metrics}"
    );
    let failures: u64 = metrics
        .lines()
        .find(|l| l.starts_with("duet_mesh_upstream_connect_failures_total") && l.contains(&dead_endpoint))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap();
    assert_eq!(failures, 2, "after ejection the dead endpoint is not tried again");

    // The proxy is still healthy, and said what went wrong in its log.
    assert_eq!(one(main, get(main, "/")).await.status, 200);
    let log = mesh.log_text();
    assert!(log.contains("upstream failed"), "{log}");
    // One JSON line per request in the access log.
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&access_log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let timeout = lines.iter().find(|l| l["path"] == "/slow/5000").expect("the timed-out request is logged");
    assert_eq!(timeout["status"], 504, "{timeout}");
    assert_eq!(timeout["route"], "/slow");
    assert!(timeout["upstream_error"].as_str().unwrap().contains("timeout"), "{timeout}");
    assert!(lines.iter().any(|l| l["status"] == 200 && l["listener"] == "flaky" && l["complete"] == true));
    drop(mesh);
}

/// A body of given frames (data, then trailers).
struct Frames(std::collections::VecDeque<http_body::Frame<Bytes>>);

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.pop_front().map(Ok))
    }
}

/// Config and filter replaced under load: zero failed requests; a bad config keeps the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_drops_nothing() {
    let wasm = filters("wasm32-wasip1");
    let wasm_other = filters("wasm32-unknown-unknown");
    let backend = duet_mesh::backend::spawn(addr(0), "b1").await.unwrap();
    let (port, admin) = (free_port(), free_port());
    let dir = temp_dir("reload");
    let filter_path = dir.join("tagger.wasm");
    std::fs::copy(wasm.join("http_headers.wasm"), &filter_path).unwrap();
    let config = |tag: &str| {
        mesh_config(
            admin,
            &listener(
                "main",
                port,
                &filter("tagger", &filter_path, &format!("        config: \"{tag}\"\n")),
                TO_BACKEND,
            ),
            &format!("  - {{ name: backend, endpoints: [\"{backend}\"] }}\n"),
        )
    };
    let mesh = Mesh::start(&dir, &config("v1"), admin);
    let target = addr(port);

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (stop, ok, failed) = (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&failed));
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(target, i % 2 == 1).await;
            let mut tags = std::collections::BTreeSet::new();
            while !stop.load(Ordering::Relaxed) {
                match c.send(get(target, "/")).await {
                    Ok(g) if g.status == 200 => {
                        tags.insert(g.header("x-response-tag").to_owned());
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        c = Client::connect(target, i % 2 == 1).await;
                    }
                }
            }
            tags
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // New config and a new filter file (the other target's build), through POST /reload.
    std::fs::copy(wasm_other.join("http_headers.wasm"), &filter_path).unwrap();
    std::fs::write(&mesh.config, config("v2")).unwrap();
    let text =
        raw(mesh.admin, b"POST /reload HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").unwrap();
    assert_eq!(status_of(&text), 200, "{text}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A broken config is refused; the running one stays.
    std::fs::write(&mesh.config, config("v3").replace("cluster: backend", "cluster: nowhere")).unwrap();
    let text =
        raw(mesh.admin, b"POST /reload HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").unwrap();
    assert_eq!(status_of(&text), 400, "{text}");
    assert!(text.contains("cluster `nowhere` is not defined"), "{text}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    // SIGHUP reloads too.
    std::fs::write(&mesh.config, config("v4")).unwrap();
    mesh.signal("-HUP");
    let t = Instant::now();
    loop {
        let config: serde_json::Value = serde_json::from_str(&mesh.admin_get("/config")).unwrap();
        if config["generation"] == 3 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "SIGHUP did not reload: {config}\n{}", mesh.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut tags = std::collections::BTreeSet::new();
    for t in tasks {
        tags.extend(t.await.unwrap());
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert_eq!(failed, 0, "{failed} failed requests of {}", ok + failed);
    assert!(ok > 100, "only {ok} requests");
    assert!(tags.contains("v1") && tags.contains("v2") && tags.contains("v4") && !tags.contains("v3"), "{tags:?}");
    let config: serde_json::Value = serde_json::from_str(&mesh.admin_get("/config")).unwrap();
    assert_eq!(config["generation"], 3, "{config}");
    drop(mesh);
}

/// Sidecar to sidecar over mutual TLS: a plain listener forwards to a TLS cluster, which is
/// another sidecar's TLS listener requiring client certificates from the mesh CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_between_sidecars() {
    let dir = temp_dir("mtls");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "duet mesh test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf = |name: &str| {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![name.to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    for who in ["server", "client"] {
        let (cert, key) = leaf(&format!("{who}.mesh.local"));
        std::fs::write(dir.join(format!("{who}.pem")), cert).unwrap();
        std::fs::write(dir.join(format!("{who}.key")), key).unwrap();
    }
    let backend = duet_mesh::backend::spawn(addr(0), "b1").await.unwrap();

    let (inbound, inbound_admin) = (free_port(), free_port());
    let inbound_dir = dir.join("inbound");
    std::fs::create_dir_all(&inbound_dir).unwrap();
    let mut ls = listener("inbound", inbound, "", TO_BACKEND);
    ls.push_str(&format!(
        "    tls: {{ cert: \"{0}/server.pem\", key: \"{0}/server.key\", client_ca: \"{0}/ca.pem\" }}\n",
        dir.display()
    ));
    let inbound_mesh = Mesh::start(
        &inbound_dir,
        &mesh_config(inbound_admin, &ls, &format!("  - {{ name: backend, endpoints: [\"{backend}\"] }}\n")),
        inbound_admin,
    );

    let (outbound, outbound_admin) = (free_port(), free_port());
    let outbound_dir = dir.join("outbound");
    std::fs::create_dir_all(&outbound_dir).unwrap();
    let cluster = |name: &str, http2: bool, cert: bool| {
        let client = if cert {
            format!(", cert: \"{0}/client.pem\", key: \"{0}/client.key\"", dir.display())
        } else {
            String::new()
        };
        format!(
            "  - name: {name}\n    endpoints: [\"127.0.0.1:{inbound}\"]\n    http2: {http2}\n    connect_retries: 0\n    tls: {{ ca: \"{}/ca.pem\", server_name: server.mesh.local{client} }}\n",
            dir.display()
        )
    };
    let mut ls = listener(
        "h1",
        outbound,
        "",
        "      - { prefix: \"/h2\", cluster: peer_h2 }\n      - { prefix: \"/nocert\", cluster: peer_nocert }\n      - { prefix: \"/\", cluster: peer }\n",
    );
    ls.push_str("");
    let clusters = format!(
        "{}{}{}",
        cluster("peer", false, true),
        cluster("peer_h2", true, true),
        cluster("peer_nocert", false, false)
    );
    let outbound_mesh = Mesh::start(&outbound_dir, &mesh_config(outbound_admin, &ls, &clusters), outbound_admin);

    let out = addr(outbound);
    let got = one(out, get(out, "/headers")).await;
    assert_eq!(got.status, 200, "{}\n{}", got.body, inbound_mesh.log_text());
    let seen: serde_json::Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(seen["headers"]["x-forwarded-for"], "127.0.0.1, 127.0.0.1", "both sidecars appended: {seen}");
    let got = one(out, get(out, "/h2/x")).await;
    assert_eq!((got.status, got.body.as_str()), (200, "hello from b1\n"));
    // Without a client certificate the inbound sidecar refuses the handshake.
    // (With TLS 1.3 the refusal arrives after the client's handshake, on the first read: 502.)
    let got = one(out, get(out, "/nocert")).await;
    assert!(matches!(got.status, 502 | 503), "{} {}", got.status, got.body);
    assert!(!got.body.contains("hello from"), "{}", got.body);
    // A plain-text client on the TLS port gets nothing served.
    let text = raw(addr(inbound), b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").unwrap_or_default();
    assert!(!text.contains("hello from"), "{text}");
    drop(outbound_mesh);
    drop(inbound_mesh);
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIGTERM: new connections are refused, in-flight requests finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests() {
    let backend = duet_mesh::backend::spawn(addr(0), "b1").await.unwrap();
    let (port, admin) = (free_port(), free_port());
    let dir = temp_dir("drain");
    // One worker: the current-thread runtime.
    let yaml = mesh_config(
        admin,
        &listener("main", port, "", TO_BACKEND),
        &format!("  - {{ name: backend, endpoints: [\"{backend}\"] }}\n"),
    )
    .replace("workers: 2", "workers: 1");
    let mut mesh = Mesh::start(&dir, &yaml, admin);
    let target = addr(port);
    let slow = tokio::spawn(async move { one(target, get(target, "/slow/800")).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    mesh.signal("-TERM");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(TcpStream::connect_timeout(&target, Duration::from_millis(500)).is_err(), "still accepting after SIGTERM");
    let got = slow.await.unwrap();
    assert_eq!((got.status, got.body.as_str()), (200, "slow hello from b1\n"));
    let mut child = mesh.child.take().unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "did not exit after draining");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}

/// `duet mesh check`: located config errors and filter load errors, exit code 1; a good config 0.
#[test]
fn check_reports_errors_with_file_and_line() {
    let dir = temp_dir("check");
    let wasm = filters("wasm32-wasip1");
    let good = format!(
        "listeners:\n  - name: main\n    address: \"127.0.0.1:1\"\n    filters:\n      - name: headers\n        config: tag\n        wasm: \"{}\"\n    routes:\n      - {{ prefix: \"/\", cluster: backend }}\nclusters:\n  - name: backend\n    endpoints: [\"127.0.0.1:2\"]\n",
        wasm.join("http_headers.wasm").display()
    );
    let cases = [
        (good.clone(), true, String::new()),
        (good.replace("    routes:", "    routez:"), false, "unknown field `routez`".to_string()),
        (good.replace("http_headers.wasm", "missing.wasm"), false, "filter `headers`: cannot read".to_string()),
        (good.replace("endpoints: [\"127.0.0.1:2\"]", "endpoints: [\"nohost\"]"), false, "mesh.yaml:12:".to_string()),
        (
            good.replace("http_headers.wasm", "panic.wasm").replace("config: tag", "config: configure"),
            false,
            "filter `headers`".to_string(),
        ),
    ];
    for (yaml, ok, expected) in cases {
        let path = dir.join("mesh.yaml");
        std::fs::write(&path, &yaml).unwrap();
        let out = duet().args(["mesh", "check", "--config"]).arg(&path).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.success(), ok, "{yaml}\n{stderr}");
        assert!(stderr.contains(&expected), "expected `{expected}` in:\n{stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
