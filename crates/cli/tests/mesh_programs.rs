//! duet's own http programs in the sidecar, end to end: the `apikey` filter and the `canary`
//! route program (examples/, built with `duet build`) run in `duet mesh` as eBPF (JIT and
//! interpreter) and as duet-ABI Wasm, against real backends on loopback, with their maps edited
//! live through the admin API.
//!
//! The spine is differential: one recorded sequence of requests and map edits goes through the
//! sidecar once per build of the programs, and every build must give the same statuses, the same
//! upstream choices, the same headers upstream and the same final maps.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod mesh_support;
use mesh_support::*;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Builds an example with `duet build`; its `.bpf.o` and `.wasm`.
fn build(example: &str) -> (PathBuf, PathBuf) {
    let dir = root().join("examples").join(example);
    let out = duet().args(["build", "--quiet"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "duet build {example}:\n{}", String::from_utf8_lossy(&out.stderr));
    (dir.join(format!("target/duet/{example}.bpf.o")), dir.join(format!("target/duet/{example}.wasm")))
}

/// A `KEYS` value of the apikey example (`Client`: requests, limited, rate, burst, id_len, 0, id[32]).
fn client(id: &str, rate: u32, burst: u32) -> String {
    let mut v = Vec::new();
    v.extend(0u64.to_le_bytes());
    v.extend(0u64.to_le_bytes());
    v.extend(rate.to_le_bytes());
    v.extend(burst.to_le_bytes());
    v.extend((id.len() as u32).to_le_bytes());
    v.extend(0u32.to_le_bytes());
    let mut name = id.as_bytes().to_vec();
    name.resize(32, 0);
    v.extend(name);
    v.iter().map(|b| format!("{b:02x}")).collect()
}

fn admin(mesh: &Mesh, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: admin\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let text = raw(mesh.admin, req.as_bytes()).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status_of(head), serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
}

/// What one request got: status, the backend that answered, and the headers the backend saw.
#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    backend: String,
    body: String,
    upstream_client: Option<String>,
    upstream_api_key: Option<String>,
}

async fn request(proxy: SocketAddr, headers: &[(&str, &str)]) -> Seen {
    request_to(proxy, "/headers", headers).await
}

async fn request_to(proxy: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Seen {
    let mut req = http::Request::get(format!("http://{proxy}{path}")).header("host", "svc.local");
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let got = one(proxy, req.body(body("")).unwrap()).await;
    let upstream: serde_json::Value = serde_json::from_str(&got.body).unwrap_or_default();
    let h = |n: &str| upstream["headers"][n].as_str().map(str::to_owned);
    Seen {
        status: got.status,
        backend: got.header("x-backend").to_owned(),
        body: if got.status == 200 { String::new() } else { got.body.clone() },
        upstream_client: h("x-duet-client"),
        upstream_api_key: h("x-api-key"),
    }
}

/// A subscription to the sidecar's `GET /events`, read by a thread.
struct Events(std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>);

/// Subscribes and returns once the sidecar confirmed the subscription.
fn subscribe(admin: SocketAddr) -> Events {
    use std::io::{BufRead, Write};
    let mut tcp = std::net::TcpStream::connect(admin).unwrap();
    tcp.write_all(b"GET /events HTTP/1.1\r\nhost: admin\r\n\r\n").unwrap();
    let mut reader = std::io::BufReader::new(tcp);
    let mut line = String::new();
    loop {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the event stream closed before it started");
        if line.contains("\"subscribed\"") {
            break;
        }
    }
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&got);
    std::thread::spawn(move || {
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            // Chunk-size lines and blank lines are not JSON.
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line.trim()) {
                sink.lock().unwrap().push(v);
            }
            line.clear();
        }
    });
    Events(got)
}

impl Events {
    /// Waits (at most 5 s) for `n` events of type `kind`; returns them in order.
    fn wait_for(&self, n: usize, kind: &str) -> Vec<serde_json::Value> {
        let start = std::time::Instant::now();
        loop {
            let got: Vec<serde_json::Value> =
                self.0.lock().unwrap().iter().filter(|e| e["type"] == kind).cloned().collect();
            if got.len() >= n || start.elapsed() > Duration::from_secs(5) {
                assert_eq!(got.len(), n, "{kind} events: {got:#?}");
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn config(admin: u16, proxy: u16, stable: SocketAddr, canary: SocketAddr, filter: &str, route: &str) -> String {
    let filters = format!("      - name: apikey\n{filter}");
    let routes = format!(
        "      - name: api\n        prefix: /\n        cluster: stable\n        route: {{ {route}, clusters: [stable, canary] }}\n"
    );
    let clusters = format!(
        "  - {{ name: stable, endpoints: [\"{stable}\"] }}\n  - {{ name: canary, endpoints: [\"{canary}\"] }}\n"
    );
    // The programs' clock and generator are deterministic, so that every build of the apikey
    // filter fills its token buckets (BUCKETS) alike.
    let config = mesh_config(admin, &listener("main", proxy, &filters, &routes), &clusters);
    format!("program_clock: deterministic\n{config}")
}

/// One build's run of the recorded sequence: what every request saw, and the final maps.
async fn scenario(name: &str, filter: &str, route: &str) -> (Vec<Seen>, serde_json::Value) {
    let stable = duet_mesh::backend::spawn(addr(0), "stable").await.unwrap();
    let canary = duet_mesh::backend::spawn(addr(0), "canary").await.unwrap();
    let (admin_port, proxy_port) = (free_port(), free_port());
    let dir = temp_dir(&format!("programs-{name}"));
    let mesh = Mesh::start(&dir, &config(admin_port, proxy_port, stable, canary, filter, route), admin_port);
    let proxy = addr(proxy_port);

    // The filters' maps are listed with their owners.
    let (status, maps) = admin(&mesh, "GET", "/maps", "");
    assert_eq!(status, 200);
    let names: Vec<String> =
        maps["maps"].as_array().unwrap().iter().map(|m| format!("{}/{}", m["owner"], m["name"])).collect();
    for want in ["\"apikey\"/\"KEYS\"", "\"apikey\"/\"STATS\"", "\"route:main/api\"/\"CONFIG\""] {
        assert!(names.iter().any(|n| n.contains(want)), "{want} in {names:?}");
    }

    // Keys are added live; a wrong size is refused and changes nothing. An eBPF object's maps
    // have BTF types, so bob's entry is given typed there (the same bytes as the hex a Wasm
    // module's untyped map takes).
    let bpf = filter.contains("bpf:");
    let bob = if bpf {
        r#"{"key": "bob-key", "value": {"rate": 1, "burst": 2, "id_len": 3, "id": "bob"}}"#.to_owned()
    } else {
        format!("{{\"key\": {{\"utf8\": \"bob-key\"}}, \"value\": \"{}\"}}", client("bob", 1, 2))
    };
    let keys = format!("[{{\"key\": {{\"utf8\": \"alice-key\"}}, \"value\": \"{}\"}}, {bob}]", client("alice", 0, 0));
    let (status, put) = admin(&mesh, "PUT", "/maps/apikey/KEYS", &keys);
    assert_eq!(status, 200, "{name}: {put}");
    let listed =
        maps["maps"].as_array().unwrap().iter().find(|m| m["owner"] == "apikey" && m["name"] == "KEYS").unwrap();
    let (_, keys_map) = admin(&mesh, "GET", "/maps/apikey/KEYS", "");
    let alice = keys_map["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"].as_str().unwrap().starts_with("616c696365"))
        .unwrap();
    if bpf {
        assert_eq!(
            (listed["key_type"].as_str(), listed["value_type"].as_str()),
            (Some("struct ApiKey"), Some("struct Client"))
        );
        assert_eq!(alice["key_typed"], "alice-key", "{name}: {alice}");
        assert_eq!(
            alice["value_typed"],
            serde_json::json!({"requests": 0, "limited": 0, "rate": 0, "burst": 0, "id_len": 5, "zero": 0, "id": "alice"}),
            "{name}"
        );
        assert_eq!(alice["value"], client("alice", 0, 0), "the hex stays beside the typed value");
        let (status, err) =
            admin(&mesh, "PUT", "/maps/apikey/KEYS", r#"{"key": "x", "value": {"rate": 1, "colour": 2}}"#);
        assert_eq!(status, 400);
        assert!(err["error"].as_str().unwrap().contains("struct Client has no member `colour`"), "{err}");
    } else {
        assert!(
            listed.get("value_type").is_none() && alice.get("value_typed").is_none(),
            "{name}: Wasm maps have no types"
        );
        let (status, err) = admin(&mesh, "PUT", "/maps/apikey/KEYS", r#"{"key": {"utf8": "x"}, "value": {"rate": 1}}"#);
        assert_eq!(status, 400);
        assert!(err["error"].as_str().unwrap().contains("no BTF types"), "{err}");
    }
    let (status, err) = admin(&mesh, "PUT", "/maps/apikey/KEYS", "{\"key\": \"0102\", \"value\": \"00\"}");
    assert_eq!(status, 400);
    assert!(err["error"].as_str().unwrap().contains("the map's keys are 32 bytes"), "{err}");
    assert_eq!(admin(&mesh, "GET", "/maps/apikey/KEYS", "").1["entries"].as_array().unwrap().len(), 2);

    let events = subscribe(mesh.admin);
    let cli = events_cli(mesh.admin, "access", 13);
    let mut seen = Vec::new();
    seen.push(request(proxy, &[]).await);
    seen.push(request(proxy, &[("x-api-key", "nobody")]).await);
    seen.push(request(proxy, &[("x-api-key", &"k".repeat(40))]).await);
    seen.push(request(proxy, &[("x-api-key", "alice-key")]).await);
    seen.push(request(proxy, &[("x-api-key", "alice-key"), ("x-duet-client", "mallory")]).await);
    seen.push(request(proxy, &[("x-api-key", "alice-key"), ("x-canary", "1")]).await);
    // The response program: an upstream's 5xx is masked, other statuses pass.
    seen.push(request_to(proxy, "/status/503", &[("x-api-key", "alice-key")]).await);
    seen.push(request_to(proxy, "/status/404", &[("x-api-key", "alice-key")]).await);
    for _ in 0..3 {
        seen.push(request(proxy, &[("x-api-key", "bob-key")]).await);
    }
    // The canary share goes to 100%, live: every client now lands on the canary.
    assert_eq!(admin(&mesh, "PUT", "/maps/route:main/api/CONFIG", "{\"key\": 0, \"value\": 100}").0, 200);
    seen.push(request(proxy, &[("x-api-key", "alice-key")]).await);
    // A revoked key is refused at once.
    assert_eq!(admin(&mesh, "DELETE", "/maps/apikey/KEYS", "{\"key\": {\"utf8\": \"alice-key\"}}").0, 200);
    seen.push(request(proxy, &[("x-api-key", "alice-key")]).await);

    // Every request was an access event on the stream, with its status and upstream cluster.
    assert_eq!(seen.len(), 13, "the `duet mesh events` child waits for 13");
    let access = events.wait_for(seen.len(), "access");
    let statuses: Vec<u64> = access.iter().map(|e| e["status"].as_u64().unwrap_or(0)).collect();
    assert_eq!(statuses, seen.iter().map(|s| u64::from(s.status)).collect::<Vec<_>>(), "{name}: {access:#?}");
    assert_eq!(access[5]["cluster"], "canary", "{name}: {:#}", access[5]);
    assert_eq!(access[3]["cluster"], "stable");
    // `duet mesh events` printed the same access events, one JSON line each, and exited.
    let out = cli.wait_with_output().unwrap();
    assert!(out.status.success());
    let printed: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(printed, access, "{name}");

    // And the filter's own ring-buffer record of every decision (status, 0 when forwarded).
    let records = events.wait_for(seen.len(), "ringbuf");
    let decided: Vec<u64> = records
        .iter()
        .map(|r| {
            assert_eq!((r["owner"].as_str(), r["map"].as_str()), (Some("apikey"), Some("DECISIONS")));
            let hex = r["data"].as_str().unwrap_or_default();
            u64::from(u32::from_le_bytes(std::array::from_fn(|i| {
                u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()
            })))
        })
        .collect();
    // The request filter's own answers; 0 for what it forwarded, whatever the upstream said.
    let expected: Vec<u64> =
        seen.iter().map(|s| if matches!(s.status, 401 | 429) { u64::from(s.status) } else { 0 }).collect();
    assert_eq!(decided, expected, "{name}");

    // `duet mesh maps` reads the same maps.
    let out = duet().args(["mesh", "maps", "--admin", &mesh.admin.to_string(), "apikey", "STATS"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"entries\""));

    // Verdicts are counted per filter, decisions per route.
    let metrics = mesh.admin_get("/metrics");
    for want in [
        // Requests: 5 answered, 8 forwarded; their responses: 1 masked, 7 passed (local
        // answers do not go through the response program).
        "duet_mesh_filter_verdicts_total{filter=\"apikey\",verdict=\"respond\"} 6",
        "duet_mesh_filter_verdicts_total{filter=\"apikey\",verdict=\"continue\"} 15",
        "duet_mesh_route_decisions_total{listener=\"main\",route=\"api\",decision=\"chosen\"} 8",
    ] {
        assert!(metrics.contains(want), "{name}: {want} in\n{metrics}");
    }
    // Requests are counted under the cluster that served them, the program's choice.
    for cluster in ["stable", "canary"] {
        let served = seen.iter().filter(|s| s.status == 200 && s.backend == cluster).count();
        let want = format!(
            "duet_mesh_requests_total{{listener=\"main\",route=\"api\",cluster=\"{cluster}\",class=\"2xx\"}} {served}"
        );
        assert!(served > 0 && metrics.contains(&want), "{name}: {want} in\n{metrics}");
    }
    let mut maps = serde_json::Map::new();
    for m in ["apikey/KEYS", "apikey/STATS", "apikey/BUCKETS", "route:main/api/STATS", "route:main/api/CONFIG"] {
        let (status, mut v) = admin(&mesh, "GET", &format!("/maps/{m}"), "");
        assert_eq!(status, 200, "{m}");
        let mut entries = v["entries"].as_array().cloned().unwrap_or_default();
        entries.sort_by_key(|e| e["key"].as_str().unwrap_or_default().to_owned());
        // Only eBPF objects have typed views; the bytes are what every build must agree on.
        for e in &mut entries {
            if let Some(e) = e.as_object_mut() {
                e.retain(|k, _| !k.ends_with("_typed"));
            }
        }
        v["entries"] = entries.into();
        maps.insert(m.to_owned(), v["entries"].clone());
    }
    (seen, serde_json::Value::Object(maps))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_as_ebpf_and_wasm_gives_the_same_decisions_in_the_sidecar() {
    let (apikey_bpf, apikey_wasm) = build("apikey");
    let (canary_bpf, canary_wasm) = build("canary");
    let builds = [
        (
            "jit",
            format!("        bpf: \"{}\"\n        engine: jit\n", apikey_bpf.display()),
            format!("bpf: \"{}\", engine: jit", canary_bpf.display()),
        ),
        (
            "interpreter",
            format!("        bpf: \"{}\"\n        engine: interpreter\n", apikey_bpf.display()),
            format!("bpf: \"{}\", engine: interpreter", canary_bpf.display()),
        ),
        (
            "wasm",
            format!("        wasm: \"{}\"\n", apikey_wasm.display()),
            format!("wasm: \"{}\"", canary_wasm.display()),
        ),
    ];
    let mut results = Vec::new();
    for (name, filter, route) in &builds {
        results.push((name, scenario(name, filter, route).await));
    }

    // What the recorded sequence must give (the reference is the ABI, not any one executor).
    let (seen, _) = &results[0].1;
    let unauthorized = |s: &Seen| s.status == 401 && s.body == "missing or unknown api key";
    assert!(unauthorized(&seen[0]) && unauthorized(&seen[1]) && unauthorized(&seen[2]), "{seen:#?}");
    assert_eq!((seen[3].status, seen[3].backend.as_str()), (200, "stable"));
    assert_eq!(seen[3].upstream_client.as_deref(), Some("alice"));
    assert_eq!(seen[3].upstream_api_key, None, "the key stays at the edge");
    assert_eq!(seen[4].upstream_client.as_deref(), Some("alice"), "a client cannot pose as another");
    assert_eq!((seen[5].status, seen[5].backend.as_str()), (200, "canary"));
    assert_eq!((seen[6].status, seen[6].body.as_str()), (502, "upstream error"), "the upstream said 503");
    assert_eq!((seen[7].status, seen[7].body.as_str()), (404, ""), "a 404 passes");
    assert_eq!([seen[8].status, seen[9].status, seen[10].status], [200, 200, 429]);
    assert_eq!(seen[10].body, "rate limit exceeded");
    assert_eq!((seen[11].status, seen[11].backend.as_str()), (200, "canary"));
    assert!(unauthorized(&seen[12]));

    for (name, r) in &results[1..] {
        assert_eq!(r.0, results[0].1.0, "requests: {name} differs from {}", results[0].0);
        assert_eq!(r.1, results[0].1.1, "maps: {name} differs from {}", results[0].0);
    }
}

/// A filter that fails verification, a module without the exports, a route program choosing a
/// cluster that does not exist: clear errors, and the sidecar keeps serving with what it had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_programs_are_refused_and_the_sidecar_keeps_serving() {
    let (apikey_bpf, _) = build("apikey");
    let (canary_bpf, _) = build("canary");
    let dir = temp_dir("programs-bad");
    // An http program that reads past its 24-byte context, built with clang.
    let bad_c = dir.join("bad.c");
    std::fs::write(
        &bad_c,
        "__attribute__((section(\"duet/http_request\"), used)) int bad(void *ctx) { return *(int *)((char *)ctx + 64); }\n\
         char _license[] __attribute__((section(\"license\"), used)) = \"GPL\";\n",
    )
    .unwrap();
    let bad_o = dir.join("bad.o");
    let status = Command::new("clang").args(["-O2", "-target", "bpf", "-c"]).arg(&bad_c).arg("-o").arg(&bad_o).status();
    assert!(status.is_ok_and(|s| s.success()), "clang -target bpf (installed by `cargo xtask setup`)");

    let stable = duet_mesh::backend::spawn(addr(0), "stable").await.unwrap();
    let (admin_port, proxy_port) = (free_port(), free_port());
    // The route lists only `stable`, so canary's choice of index 1 does not exist.
    let good = mesh_config(
        admin_port,
        &listener(
            "main",
            proxy_port,
            &format!("      - name: apikey\n        bpf: \"{}\"\n", apikey_bpf.display()),
            &format!(
                "      - name: api\n        prefix: /\n        cluster: stable\n        route: {{ bpf: \"{}\", clusters: [stable] }}\n",
                canary_bpf.display()
            ),
        ),
        &format!("  - {{ name: stable, endpoints: [\"{stable}\"] }}\n"),
    );
    let mesh = Mesh::start(&dir, &good, admin_port);
    let proxy = addr(proxy_port);
    let key = format!("{{\"key\": {{\"utf8\": \"k\"}}, \"value\": \"{}\"}}", client("c", 0, 0));
    assert_eq!(admin(&mesh, "PUT", "/maps/apikey/KEYS", &key).0, 200);
    let ok = request(proxy, &[("x-api-key", "k"), ("x-canary", "1")]).await;
    assert_eq!((ok.status, ok.backend.as_str()), (200, "stable"), "a bad choice falls back to the route's cluster");
    let metrics = mesh.admin_get("/metrics");
    assert!(
        metrics.contains("duet_mesh_route_decisions_total{listener=\"main\",route=\"api\",decision=\"failed\"} 1"),
        "{metrics}"
    );

    let reload_with = |filter: String| {
        std::fs::write(&mesh.config, good.replace(&format!("        bpf: \"{}\"\n", apikey_bpf.display()), &filter))
            .unwrap();
        admin(&mesh, "POST", "/reload", "")
    };
    // Unsafe: refused with the verifier's explanation.
    let (status, v) = reload_with(format!("        bpf: \"{}\"\n", bad_o.display()));
    assert_eq!(status, 400);
    let error = v["error"].as_str().unwrap_or_default();
    assert!(error.contains("bad") && error.contains("context"), "{error}");
    // Not an http program file.
    let wasm = root().join("examples/apikey/target/duet/apikey.wasm");
    let not_http = dir.join("plain.wasm");
    std::fs::write(
        &not_http,
        wat::parse_str(
            "(module (func (export \"duet_abi_version\") (result i32) i32.const 2) (memory (export \"memory\") 1))",
        )
        .unwrap(),
    )
    .unwrap();
    let (status, v) = reload_with(format!("        wasm: \"{}\"\n", not_http.display()));
    assert_eq!(status, 400, "{v}");
    assert!(wasm.is_file());
    // The old snapshot still serves, with its maps.
    let still = request(proxy, &[("x-api-key", "k")]).await;
    assert_eq!(still.status, 200);
    assert_eq!(request(proxy, &[("x-api-key", "other")]).await.status, 401);
    // A good reload keeps the key the operator added (maps of the same shape carry over).
    std::fs::write(&mesh.config, &good).unwrap();
    let (status, v) = admin(&mesh, "POST", "/reload", "");
    assert_eq!(status, 200, "{v}");
    assert_eq!(request(proxy, &[("x-api-key", "k")]).await.status, 200);
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// A routing program that names the endpoint (ABI: cluster index in bits 32..63, endpoint index
/// in bits 0..31, `0xffff_ffff` for "the balancer chooses", negative to decline), written in C
/// for clang: the `x-ep` header's first byte picks endpoint 0-9 of cluster 0, `c` cluster 1 with
/// its balancer; no header declines.
const PICK_C: &str = r#"
static long (*http_header_get)(void *ctx, const char *name, unsigned name_len, char *buf, unsigned buf_len) = (void *)10001;
__attribute__((section("duet/route"), used)) long pick(void *ctx) {
    char name[4] = {'x', '-', 'e', 'p'};
    char v[1] = {0};
    if (http_header_get(ctx, name, 4, v, 1) < 1)
        return -1;
    if (v[0] == 'c')
        return (1L << 32) | 0xffffffffL;
    if (v[0] >= '0' && v[0] <= '9')
        return v[0] - '0';
    return -1;
}
char _license[] __attribute__((section("license"), used)) = "GPL";
"#;

/// A route program's choice of endpoint is honoured (the balancer would alternate); a choice
/// of "the balancer chooses" picks the cluster only; an endpoint that does not exist is counted
/// as failed and the route's own cluster serves, as does a declined request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_programs_pick_endpoints_and_bad_choices_fall_back() {
    let dir = temp_dir("programs-endpoints");
    let (src, obj) = (dir.join("pick.c"), dir.join("pick.o"));
    std::fs::write(&src, PICK_C).unwrap();
    let status = Command::new("clang").args(["-O2", "-target", "bpf", "-c"]).arg(&src).arg("-o").arg(&obj).status();
    assert!(status.is_ok_and(|s| s.success()), "clang -target bpf (installed by `cargo xtask setup`)");

    let a = duet_mesh::backend::spawn(addr(0), "a").await.unwrap();
    let b = duet_mesh::backend::spawn(addr(0), "b").await.unwrap();
    let other = duet_mesh::backend::spawn(addr(0), "other").await.unwrap();
    let fallback = duet_mesh::backend::spawn(addr(0), "fallback").await.unwrap();
    for engine in ["jit", "interpreter"] {
        let (admin_port, proxy_port) = (free_port(), free_port());
        let config = mesh_config(
            admin_port,
            &listener(
                "main",
                proxy_port,
                "",
                &format!(
                    "      - name: api\n        prefix: /\n        cluster: fallback\n        route: {{ bpf: \"{}\", engine: {engine}, clusters: [pair, other] }}\n",
                    obj.display()
                ),
            ),
            &format!(
                "  - {{ name: pair, endpoints: [\"{a}\", \"{b}\"] }}\n  - {{ name: other, endpoints: [\"{other}\"] }}\n  - {{ name: fallback, endpoints: [\"{fallback}\"] }}\n"
            ),
        );
        // Its own directory: dropping the sidecar removes it.
        let mesh_dir = dir.join(engine);
        std::fs::create_dir_all(&mesh_dir).unwrap();
        let mesh = Mesh::start(&mesh_dir, &config, admin_port);
        let proxy = addr(proxy_port);
        let backends = |ep: Option<&'static str>, n: usize| async move {
            let mut got = Vec::new();
            for _ in 0..n {
                let headers: Vec<(&str, &str)> = ep.map(|v| ("x-ep", v)).into_iter().collect();
                let seen = request(proxy, &headers).await;
                assert_eq!(seen.status, 200, "{engine}: {seen:?}");
                got.push(seen.backend);
            }
            got
        };
        assert_eq!(backends(Some("1"), 4).await, ["b"; 4], "{engine}: endpoint 1, every time");
        assert_eq!(backends(Some("0"), 4).await, ["a"; 4], "{engine}: endpoint 0, every time");
        assert_eq!(backends(Some("c"), 2).await, ["other"; 2], "{engine}: cluster 1, its balancer");
        assert_eq!(backends(Some("9"), 1).await, ["fallback"], "{engine}: endpoint 9 does not exist");
        assert_eq!(backends(None, 1).await, ["fallback"], "{engine}: declined");
        let metrics = mesh.admin_get("/metrics");
        for (decision, n) in [("chosen", 10), ("failed", 1), ("declined", 1)] {
            let want = format!(
                "duet_mesh_route_decisions_total{{listener=\"main\",route=\"api\",decision=\"{decision}\"}} {n}"
            );
            assert!(metrics.contains(&want), "{engine}: {want} in\n{metrics}");
        }
        drop(mesh);
    }
}

/// `programs:` picks a file's programs: with only apikey's request program the chain has no
/// response phase, so the proxy passes the upstream's response head untouched (a 503 stays a
/// 503), while the request program still decides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_without_response_programs_leaves_responses_alone() {
    let (apikey_bpf, _) = build("apikey");
    let dir = temp_dir("programs-request-only");
    let stable = duet_mesh::backend::spawn(addr(0), "stable").await.unwrap();
    let (admin_port, proxy_port) = (free_port(), free_port());
    let config = mesh_config(
        admin_port,
        &listener(
            "main",
            proxy_port,
            &format!("      - name: apikey\n        bpf: \"{}\"\n        programs: [apikey]\n", apikey_bpf.display()),
            "      - { prefix: /, cluster: stable }\n",
        ),
        &format!("  - {{ name: stable, endpoints: [\"{stable}\"] }}\n"),
    );
    let mesh = Mesh::start(&dir, &config, admin_port);
    let proxy = addr(proxy_port);
    let key = format!("{{\"key\": {{\"utf8\": \"k\"}}, \"value\": \"{}\"}}", client("c", 0, 0));
    assert_eq!(admin(&mesh, "PUT", "/maps/apikey/KEYS", &key).0, 200);
    assert_eq!(request(proxy, &[]).await.status, 401, "the request program decides");
    let ok = request(proxy, &[("x-api-key", "k")]).await;
    assert_eq!((ok.status, ok.backend.as_str(), ok.upstream_client.as_deref()), (200, "stable", Some("c")));
    let failed = request_to(proxy, "/status/503", &[("x-api-key", "k")]).await;
    assert_eq!(failed.status, 503, "no response program was picked: {failed:?}");
    let (_, filters) = admin(&mesh, "GET", "/filters", "");
    assert!(filters.to_string().contains("\"response_programs\":[]"), "{filters}");
}
