//! Wasm HTTP applications in the sidecar, end to end: `examples/apps/hello` (a WASI 0.2
//! `wasi:http/incoming-handler` component) serves a cluster of `duet mesh` in-process; its
//! key-value store is the `KEYS` map of the `apikey` eBPF filter on another listener, so what the
//! app stores decides what the filter admits. Outbound requests go through the sidecar's
//! clusters, only where `allowed_outbound` says; faults give that request a 500 and nothing else.

use std::path::{Path, PathBuf};

mod mesh_support;
use mesh_support::*;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// A `KEYS` value of the apikey example: no counters, no rate limit, client id `id`.
fn client(id: &str) -> Vec<u8> {
    let mut v = vec![0u8; 24];
    v.extend((id.len() as u32).to_le_bytes());
    v.extend(0u32.to_le_bytes());
    v.extend(id.as_bytes());
    v.resize(64, 0);
    v
}

fn send(addr: std::net::SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nhost: svc\r\nconnection: close\r\ncontent-length: {}\r\n", body.len());
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    let text = raw(addr, &bytes).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status_of(head), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasm_app_serves_a_cluster_and_shares_a_map_with_an_ebpf_filter() {
    let app = duet_testdata::wasm_apps::build_hello_app().expect("building examples/apps/hello");
    let dir = root().join("examples/apikey");
    let out = duet().args(["build", "--quiet"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let apikey = dir.join("target/duet/apikey.bpf.o");

    let backend = duet_mesh::backend::spawn(addr(0), "backend").await.unwrap();
    let (admin_port, api, apps) = (free_port(), free_port(), free_port());
    let filters = format!("      - name: apikey\n        bpf: \"{}\"\n", apikey.display());
    let listeners = listener("api", api, &filters, "      - { prefix: \"/\", cluster: backend }\n")
        + &listener("apps", apps, "", "      - { prefix: \"/\", cluster: hello }\n");
    let clusters = format!(
        "  - {{ name: backend, endpoints: [\"{backend}\"] }}\n  - name: hello\n    kv_map: apikey/KEYS\n    app:\n      wasm: \"{}\"\n      timeout_ms: 2000\n      env: {{ GREETING: hi }}\n      allowed_outbound: [backend]\n",
        app.display()
    );
    let tmp = temp_dir("apps");
    let mesh = Mesh::start(&tmp, &mesh_config(admin_port, &listeners, &clusters), admin_port);
    let (api, apps) = (addr(api), addr(apps));

    // The app answers through the sidecar.
    let (status, body) = send(apps, "GET", "/", &[], b"");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"hello\":\"duet\""), "{body}");

    // What the app stores is what the filter admits.
    assert_eq!(send(api, "GET", "/", &[("x-api-key", "app-key")], b"").0, 401);
    let (status, body) = send(apps, "PUT", "/kv/app-key", &[], &client("from-app"));
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(api, "GET", "/headers", &[("x-api-key", "app-key")], b"");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"x-duet-client\":\"from-app\""), "{body}");
    // And the other way round: the filter's counter, seen through the app.
    let (status, body) = send(apps, "GET", "/kv/app-key", &[], b"");
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(apps, "PUT", &format!("/kv/{}", "k".repeat(40)), &[], b"x");
    assert_ne!(status, 200, "a key longer than the map's keys is refused: {body}");
    assert_eq!(send(apps, "DELETE", "/kv/app-key", &[], b"").0, 200);
    assert_eq!(send(api, "GET", "/", &[("x-api-key", "app-key")], b"").0, 401);

    // Capabilities: only the configured environment; outbound only to allowed clusters.
    let (status, body) = send(apps, "GET", "/env/GREETING", &[], b"");
    assert_eq!((status, body.contains("\"hi\"")), (200, true), "{body}");
    assert_eq!(send(apps, "GET", "/env/PATH", &[], b"").0, 404);
    let (status, body) = send(apps, "GET", "/fetch?url=http://backend/hello", &[], b"");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("hello from backend"), "the app reached the backend cluster: {body}");
    let (_, body) = send(apps, "GET", &format!("/fetch?url=http://{backend}/hello"), &[], b"");
    assert!(!body.contains("hello from backend"), "an authority not in allowed_outbound: {body}");

    // A trap is that request's 500; the next request is served.
    assert_eq!(send(apps, "GET", "/panic", &[], b"").0, 500);
    assert_eq!(send(apps, "GET", "/", &[], b"").0, 200);

    let metrics = mesh.admin_get("/metrics");
    for want in
        ["duet_mesh_app_traps_total{cluster=\"hello\"} 1", "duet_mesh_app_outbound_requests_total{cluster=\"hello\"} 1"]
    {
        assert!(metrics.contains(want), "{want} in\n{metrics}");
    }
    assert!(metrics.contains("duet_mesh_app_requests_total{cluster=\"hello\"}"), "{metrics}");
}

#[test]
fn app_clusters_are_checked_when_the_config_loads() {
    let tmp = temp_dir("apps-bad");
    let config = tmp.join("mesh.yaml");
    let check = |yaml: &str| {
        std::fs::write(&config, yaml).unwrap();
        let out = duet().args(["mesh", "check", "--config"]).arg(&config).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let base = "listeners:\n  - name: l\n    address: \"127.0.0.1:1\"\n    routes: [{ prefix: \"/\", cluster: app }]\nclusters:\n";
    let (ok, err) =
        check(&format!("{base}  - {{ name: app, endpoints: [\"127.0.0.1:2\"], app: {{ wasm: a.wasm }} }}\n"));
    assert!(!ok && err.contains("`endpoints` or an `app`, not both"), "{err}");
    let (ok, err) = check(&format!("{base}  - {{ name: app, app: {{ wasm: missing.wasm }} }}\n"));
    assert!(!ok && err.contains("missing.wasm"), "{err}");
    let not_a_component = tmp.join("core.wasm");
    std::fs::write(&not_a_component, wat::parse_str("(module)").unwrap()).unwrap();
    let (ok, err) = check(&format!("{base}  - {{ name: app, app: {{ wasm: \"{}\" }} }}\n", not_a_component.display()));
    assert!(!ok && err.contains("app:"), "{err}");
    let (ok, err) = check(&format!("{base}  - {{ name: app, app: {{ wasm: a.wasm, max_memory_mb: 0 }} }}\n"));
    assert!(!ok && err.contains("max_memory_mb"), "{err}");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Sum of the `/metrics` samples of `family` whose labels contain every one of `labels`.
fn metric(metrics: &str, family: &str, labels: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{family}{{")) && labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A request over a fresh connection, read until the server closes it: the status, the head,
/// the body bytes that came, and the value of `content-length` if the head has one.
fn get_raw(addr: std::net::SocketAddr, path: &str) -> (u16, String, Vec<u8>, Option<usize>) {
    get_raw_or_nothing(addr, path)
        .unwrap_or_else(|| panic!("GET {path}: the connection closed without a response head"))
}

/// [`get_raw`], or `None` when the server closed the connection before a whole response head.
fn get_raw_or_nothing(addr: std::net::SocketAddr, path: &str) -> Option<(u16, String, Vec<u8>, Option<usize>)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n").as_bytes()).unwrap();
    let mut raw = Vec::new();
    // An error here is the server cutting the connection; what came before it is the answer.
    let _ = s.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let length = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
    });
    Some((status_of(&head), head, raw[split + 4..].to_vec(), length))
}

#[test]
fn malformed_app_responses_are_refused_and_the_sidecar_keeps_serving() {
    let app = duet_testdata::wasm_apps::build_hello_app().expect("building examples/apps/hello");
    let (admin_port, port) = (free_port(), free_port());
    let listeners = listener("apps", port, "", "      - { prefix: \"/\", cluster: hello }\n");
    let clusters = format!("  - name: hello\n    app:\n      wasm: \"{}\"\n      timeout_ms: 2000\n", app.display());
    let tmp = temp_dir("apps-malformed");
    let mesh = Mesh::start(&tmp, &mesh_config(admin_port, &listeners, &clusters), admin_port);
    let apps = addr(port);
    let errors_5xx = |metrics: &str| metric(metrics, "duet_mesh_requests_total", &["cluster=\"hello\"", "5xx"]);
    let before = errors_5xx(&mesh.admin_get("/metrics"));

    // A body that does not match its declared length (short and finished, or long and
    // abandoned): a complete 500 naming the cause, never a head that claims bytes that do not
    // follow.
    for path in ["/bad/short", "/bad/long"] {
        let (status, head, body, length) = get_raw(apps, path);
        assert_eq!(status, 500, "{path}: {head}");
        assert!(head.to_ascii_lowercase().contains("duet-app-error: bad-response"), "{path}: {head}");
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("malformed"), "{path}: {text}");
        assert_eq!(length, Some(body.len()), "{path}: the 500 itself is whole");
        // The sidecar keeps serving.
        let (status, body) = send(apps, "GET", "/", &[], b"");
        assert_eq!(status, 200, "after {path}: {body}");
    }
    let mid = mesh.admin_get("/metrics");
    assert_eq!(errors_5xx(&mid) - before, 2.0, "two 500s counted:\n{mid}");
    assert_eq!(metric(&mid, "duet_mesh_app_traps_total", &["cluster=\"hello\""]), 0.0, "neither is a trap");
    assert_eq!(metric(&mid, "duet_mesh_app_errors_total", &["cluster=\"hello\""]), 2.0, "both are app errors:\n{mid}");

    // Too long to read first: the head went out, so the connection is cut before the declared
    // length, which the client sees as a truncated response.
    let (status, head, body, length) = get_raw(apps, "/bad/short-big");
    assert_eq!((status, length, body.len()), (200, Some(1_000_000), 3), "{head}");
    assert_eq!(send(apps, "GET", "/", &[], b"").0, 200);

    // No declared length and the body abandoned: the connection is cut before the chunked
    // body's last chunk (or before anything was sent), so no client takes it as complete.
    let (status, head, body) = match get_raw_or_nothing(apps, "/bad/unfinished") {
        Some((status, head, body, _)) => (status, head, body),
        None => (0, String::new(), Vec::new()),
    };
    if status != 0 {
        assert!(head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "{head}");
        assert!(!body.ends_with(b"0\r\n\r\n"), "no last chunk: {:?}", String::from_utf8_lossy(&body));
    }
    assert_eq!(send(apps, "GET", "/", &[], b"").0, 200);

    // Forbidden and invalid headers, framing included, are refused to the app when it sets
    // them, so they never reach a response; the app can still answer.
    let (status, body) = send(apps, "GET", "/bad/headers", &[], b"");
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        report,
        serde_json::json!({
            "connection": "forbidden",
            "transfer-encoding": "forbidden",
            "invalid-name": "invalid-syntax",
            "invalid-value": "invalid-syntax",
            "content-length-abc": "invalid-syntax",
            "content-length-twice": "invalid-syntax",
            "from-list": "forbidden",
            "status-1000": "refused",
        })
    );
    let log = mesh.log_text();
    assert!(log.contains("malformed response refused"), "the sidecar logs why:\n{log}");
}
