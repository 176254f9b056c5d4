//! `examples/apps/hello` served by `duet_app::App` on loopback, with real hyper clients: its
//! answers, capabilities (env, outbound, kv), faults per request (trap, deadline, memory cap),
//! concurrency, load errors, the compile cache, and a measurement of instance creation.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use duet_app::{App, AppConfig, AppError, CacheStatus, MemoryKv};
use support::{DirectOutbound, get, hello_wasm, request, serve};

fn config() -> AppConfig {
    AppConfig::new(hello_wasm())
}

async fn serve_app(app: App) -> (Arc<App>, std::net::SocketAddr) {
    let app = Arc::new(app);
    let addr = serve(Arc::clone(&app)).await;
    (app, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_answers_json_and_kv_persists_across_instances() {
    let kv = Arc::new(MemoryKv::new(100, 1024));
    let (app, addr) = serve_app(App::load(&config(), None).unwrap().with_kv(kv.clone())).await;

    let hello = get(addr, "/").await;
    assert_eq!(hello.status, 200);
    assert_eq!(hello.headers["content-type"], "application/json");
    assert_eq!(hello.json(), serde_json::json!({"hello": "duet", "app": "hello"}));

    assert_eq!(get(addr, "/no/such/route").await.status, 404);

    let echo = request(addr, "POST", "/echo", b"some bytes \x00\xff").await;
    assert_eq!((echo.status, &echo.body[..]), (200, &b"some bytes \x00\xff"[..]));

    // Each request is a new instance: the value lives in the host's store, not in the app.
    assert_eq!(get(addr, "/kv/colour").await.status, 404);
    let put = request(addr, "PUT", "/kv/colour", b"teal").await;
    assert_eq!(put.status, 200, "{:?}", put.body);
    let got = get(addr, "/kv/colour").await;
    assert_eq!(got.json(), serde_json::json!({"key": "colour", "value": "teal"}));
    assert_eq!(duet_app::KvStore::get(&*kv, "colour").unwrap(), Some(b"teal".to_vec()));
    assert_eq!(request(addr, "DELETE", "/kv/colour", b"").await.status, 200);
    assert_eq!(get(addr, "/kv/colour").await.status, 404);
    // The store's limits reach the app as its error.
    assert_eq!(request(addr, "PUT", "/kv/big", &[b'x'; 2000]).await.status, 413);

    // The serving task ends (and leaves `in_flight`) just after the client has the last byte.
    let mut stats = app.stats().snapshot();
    for _ in 0..100 {
        if stats.in_flight == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        stats = app.stats().snapshot();
    }
    assert_eq!(stats.requests, 9);
    assert_eq!(stats.instances_created, 9);
    assert_eq!((stats.traps, stats.timeouts, stats.memory_limits, stats.in_flight), (0, 0, 0, 0));
    assert!(stats.latency_us_sum > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_is_a_capability() {
    let (_app, addr) = serve_app(App::load(&config(), None).unwrap()).await;
    let answer = request(addr, "PUT", "/kv/a", b"1").await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.json()["error"], "no key-value store configured");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_is_only_what_is_configured() {
    let mut config = config();
    config.env.insert("GREETING".into(), "hi from the host".into());
    let (_app, addr) = serve_app(App::load(&config, None).unwrap()).await;
    let answer = get(addr, "/env/GREETING").await;
    assert_eq!(answer.json(), serde_json::json!({"name": "GREETING", "value": "hi from the host"}));
    // The host process has these; the app must not see them.
    assert!(std::env::var_os("PATH").is_some());
    for name in ["PATH", "HOME", "CARGO_MANIFEST_DIR"] {
        assert_eq!(get(addr, &format!("/env/{name}")).await.status, 404, "{name} leaked into the app");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_sees_fresh_memory() {
    // Two slots, so the pool reuses them (and resets only the pages an instance wrote): static
    // counters in zero-initialised and in initialised memory must start over every time, also
    // after an instance trapped or was answered concurrently.
    let mut config = config();
    config.max_concurrency = 2;
    config.queue_timeout_ms = 5000;
    let (_app, addr) = serve_app(App::load(&config, None).unwrap()).await;
    for round in 0..3 {
        let answers = futures_join(addr, 4).await;
        for answer in answers {
            assert_eq!(answer.json(), serde_json::json!({"counts": [1, 8]}), "round {round}");
        }
        assert_eq!(get(addr, "/panic").await.status, 500);
    }
}

/// `n` concurrent `GET /fresh`.
async fn futures_join(addr: std::net::SocketAddr, n: usize) -> Vec<support::Answer> {
    let tasks: Vec<_> = (0..n).map(|_| tokio::spawn(async move { get(addr, "/fresh").await })).collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filesystem_is_only_the_directories_granted() {
    let host = std::env::temp_dir().join(format!("duet-app-dirs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&host);
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("greeting.txt"), "hello from the host").unwrap();
    let cleanup = support::RemoveDir(host.clone());

    // Nothing granted: no file at all, not even ones that exist on the host.
    let (_app, addr) = serve_app(App::load(&config(), None).unwrap()).await;
    let denied = get(addr, "/file/greeting.txt").await;
    assert_ne!(denied.status, 200, "{:?}", String::from_utf8_lossy(&denied.body));
    assert_ne!(request(addr, "PUT", "/file/new.txt", b"x").await.status, 200);

    // Read-only: files can be read, not written; nothing outside the directory.
    let mut read_only = config();
    read_only.dirs = vec![duet_app::DirGrant { host: host.clone(), guest: "/data".into(), writable: false }];
    let (_app, addr) = serve_app(App::load(&read_only, None).unwrap()).await;
    let got = get(addr, "/file/greeting.txt").await;
    assert_eq!((got.status, &got.body[..]), (200, &b"hello from the host"[..]));
    assert_eq!(get(addr, "/file/missing.txt").await.status, 404);
    assert_eq!(get(addr, "/file/..%2F..%2Fetc%2Fpasswd").await.status, 404, "no such name under /data");
    let refused = request(addr, "PUT", "/file/new.txt", b"x").await;
    assert_eq!(refused.status, 403, "{:?}", String::from_utf8_lossy(&refused.body));
    assert!(!host.join("new.txt").exists());

    // Writable: the app's writes land in the host directory.
    let mut writable = read_only.clone();
    writable.dirs[0].writable = true;
    let (_app, addr) = serve_app(App::load(&writable, None).unwrap()).await;
    let put = request(addr, "PUT", "/file/new.txt", b"written by the app").await;
    assert_eq!(put.status, 200, "{:?}", String::from_utf8_lossy(&put.body));
    assert_eq!(std::fs::read_to_string(host.join("new.txt")).unwrap(), "written by the app");

    // Grants are checked when the app loads.
    for (guest, host_dir, want) in [
        ("data", host.clone(), "must be an absolute path"),
        ("/data/../etc", host.clone(), "must be an absolute path"),
        ("/data", host.join("greeting.txt"), "is not a directory"),
    ] {
        let mut bad = config();
        bad.dirs = vec![duet_app::DirGrant { host: host_dir, guest: guest.into(), writable: false }];
        let err = App::load(&bad, None).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(want), "{guest}: {err}");
    }
    drop(cleanup);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_only_to_allowed_authorities() {
    let allowed = support::backend().await;
    let other = support::backend().await;
    let mut config = config();
    config.allowed_outbound = vec![allowed.to_string()];
    let (app, addr) = serve_app(App::load(&config, None).unwrap().with_outbound(Arc::new(DirectOutbound))).await;

    let ok = get(addr, &format!("/fetch?url=http://{allowed}/greeting")).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(ok.json(), serde_json::json!({"status": 200, "body": "backend saw GET /greeting"}));

    let refused = get(addr, &format!("/fetch?url=http://{other}/greeting")).await;
    assert_eq!(refused.status, 502);
    assert_eq!(refused.json()["error"], "ErrorCode::HttpRequestDenied");

    let stats = app.stats().snapshot();
    assert_eq!((stats.outbound_requests, stats.outbound_denied), (1, 1));

    // Allowed by the list but no Outbound given: still refused.
    let (_app, addr) = serve_app(App::load(&config, None).unwrap()).await;
    let refused = get(addr, &format!("/fetch?url=http://{allowed}/greeting")).await;
    assert_eq!(refused.json()["error"], "ErrorCode::HttpRequestDenied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_is_a_500_for_that_request_only() {
    let (app, addr) = serve_app(App::load(&config(), None).unwrap()).await;
    let trapped = get(addr, "/panic").await;
    assert_eq!((trapped.status, trapped.error_kind()), (500, Some("trap")));
    assert_eq!(get(addr, "/").await.status, 200);
    let stats = app.stats().snapshot();
    assert_eq!((stats.traps, stats.requests), (1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stderr_is_capped_and_never_fails_the_app() {
    let mut config = config();
    config.stderr_limit_bytes = 1000;
    let (_app, addr) = serve_app(App::load(&config, None).unwrap()).await;
    let logged = get(addr, "/stderr?kb=64").await;
    assert_eq!((logged.status, logged.json()["logged_kb"].as_u64()), (200, Some(64)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_that_never_responds_gets_a_500() {
    let (app, addr) = serve_app(App::load(&config(), None).unwrap()).await;
    let silent = get(addr, "/silent").await;
    assert_eq!((silent.status, silent.error_kind()), (500, Some("app-error")));
    assert_eq!(app.stats().snapshot().app_errors, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_loop_is_a_500_after_timeout_ms() {
    let mut config = config();
    config.timeout_ms = 200;
    let (app, addr) = serve_app(App::load(&config, None).unwrap()).await;
    let start = Instant::now();
    let looped = get(addr, "/loop").await;
    let took = start.elapsed();
    assert_eq!((looped.status, looped.error_kind()), (500, Some("timeout")));
    assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(get(addr, "/").await.status, 200);
    assert_eq!(app.stats().snapshot().timeouts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_is_a_500_under_max_memory_mb() {
    let mut config = config();
    config.max_memory_mb = 16;
    let (app, addr) = serve_app(App::load(&config, None).unwrap()).await;
    let bomb = get(addr, "/alloc?mb=64").await;
    assert_eq!((bomb.status, bomb.error_kind()), (500, Some("memory-limit")));
    let small = get(addr, "/alloc?mb=4").await;
    assert_eq!(small.status, 200, "{:?}", small.body);
    assert_eq!(small.json()["allocated_mb"], 4);
    let stats = app.stats().snapshot();
    assert_eq!((stats.memory_limits, stats.traps), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrency_answers_503_when_saturated() {
    let mut config = config();
    config.max_concurrency = 1;
    config.timeout_ms = 500;
    let (app, addr) = serve_app(App::load(&config, None).unwrap()).await;
    let busy = tokio::spawn(get(addr, "/loop"));
    let start = Instant::now();
    while app.stats().snapshot().in_flight == 0 {
        assert!(start.elapsed() < Duration::from_secs(5), "the looping request never started");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let refused = get(addr, "/").await;
    assert_eq!((refused.status, refused.error_kind()), (503, Some("overloaded")));
    assert_eq!(refused.headers["retry-after"], "1");
    assert_eq!(busy.await.unwrap().status, 500);
    assert_eq!(get(addr, "/").await.status, 200);
    assert_eq!(app.stats().snapshot().rejected, 1);

    // With a queue, the same request waits for the slot instead.
    config.queue_timeout_ms = 2000;
    let (app, addr) = serve_app(App::load(&config, None).unwrap()).await;
    let busy = tokio::spawn(get(addr, "/loop"));
    while app.stats().snapshot().in_flight == 0 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(get(addr, "/").await.status, 200);
    assert_eq!(busy.await.unwrap().status, 500);
}

#[test]
fn load_errors_are_clear() {
    /// Removed on drop, also when an assertion fails.
    struct Dir(std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let guard = Dir(std::env::temp_dir().join(format!("duet-app-load-{}", std::process::id())));
    let dir = &guard.0;
    std::fs::create_dir_all(dir).unwrap();
    let load = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        App::load(&AppConfig::new(&path), None).map(|_| ()).unwrap_err()
    };

    let core = wat::parse_str("(module (func (export \"_start\")))").unwrap();
    let err = load("core.wasm", &core);
    assert!(matches!(err, AppError::CoreModule { .. }), "{err}");
    assert!(err.to_string().contains("core WebAssembly module, not a component"), "{err}");

    let cli = wat::parse_str(r#"(component (core module $m (func (export "run"))) (core instance (instantiate $m)))"#)
        .unwrap();
    let err = load("empty.wasm", &cli);
    assert!(matches!(err, AppError::NotHandler { .. }), "{err}");
    assert!(err.to_string().contains("does not export wasi:http/incoming-handler"), "{err}");

    let imports = wat::parse_str(
        r#"(component
             (import "duet:missing/thing@1.0.0" (instance (export "f" (func))))
             (instance $h)
             (export "wasi:http/incoming-handler@0.2.0" (instance $h)))"#,
    )
    .unwrap();
    let err = load("imports.wasm", &imports);
    assert!(matches!(err, AppError::Link { .. }), "{err}");
    assert!(err.to_string().contains("duet:missing/thing@1.0.0"), "{err}");

    let wrong_shape =
        wat::parse_str(r#"(component (instance $h) (export "wasi:http/incoming-handler@0.2.0" (instance $h)))"#)
            .unwrap();
    let err = load("shape.wasm", &wrong_shape);
    assert!(matches!(err, AppError::BadHandler { .. }), "{err}");
    assert!(err.to_string().contains("does not have export `handle`"), "{err}");

    let err = load("garbage.wasm", b"this is not wasm");
    assert!(matches!(err, AppError::Compile { .. }), "{err}");

    let err = App::load(&AppConfig::new(dir.join("absent.wasm")), None).unwrap_err();
    assert!(matches!(err, AppError::Read { .. }), "{err}");

    let mut bad = AppConfig::new(hello_wasm());
    bad.allowed_outbound = vec!["http://not an authority".into()];
    assert!(matches!(App::load(&bad, None), Err(AppError::Config(_))));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_compile_cache_is_used_the_second_time() {
    let dir = std::env::temp_dir().join(format!("duet-app-cache-{}", std::process::id()));
    let first = App::load(&config(), Some(dir.clone())).unwrap();
    assert!(matches!(first.cache_status(), CacheStatus::Stored(_)), "{:?}", first.cache_status());
    let second = App::load(&config(), Some(dir.clone())).unwrap();
    assert!(matches!(second.cache_status(), CacheStatus::Hit(_)), "{:?}", second.cache_status());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Not an assertion: the cost of a fresh pooled instance per request, printed with
/// `cargo test -p duet-app --release --test app -- --nocapture instance_creation`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_creation_cost() {
    let app = App::load(&config(), None).unwrap();
    let request = || {
        http::Request::builder().uri("http://app.local/").body(http_body_util::Empty::<bytes::Bytes>::new()).unwrap()
    };
    for _ in 0..50 {
        let _ = app.serve(request()).await;
    }
    let before = app.stats().snapshot();
    let n = 2000u64;
    let start = Instant::now();
    for _ in 0..n {
        let response = app.serve(request()).await;
        assert_eq!(response.status(), 200);
        let _ = http_body_util::BodyExt::collect(response.into_body()).await;
    }
    let wall = start.elapsed();
    let after = app.stats().snapshot();
    let instances = after.instances_created - before.instances_created;
    let instantiate_ns = (after.instantiate_ns_sum - before.instantiate_ns_sum) / instances.max(1);
    println!(
        "duet-app instance creation ({} build): {instances} instances, mean {:.1} µs to instantiate; \
         GET / served in-process in {:.1} µs per request (instance + handler + body)",
        if cfg!(debug_assertions) { "debug" } else { "release" },
        instantiate_ns as f64 / 1000.0,
        wall.as_secs_f64() * 1e6 / n as f64,
    );
}
