//! Drives each test filter of `tests/proxy-wasm` (built with the public `proxy-wasm` SDK for
//! both `wasm32-wasip1` and `wasm32-unknown-unknown`) through the public API, as duet-mesh does,
//! and checks what the filter did.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use duet_proxywasm::{
    Action, Error, HttpCallResponse, MetricKind, MetricValue, Plugin, PluginConfig, ROOT_CONTEXT, SharedState, Stream,
    StreamDirection, StreamProperties,
};
use duet_testdata::proxy_filters::{TARGETS, proxy_filter};

type Headers = Vec<(String, Vec<u8>)>;

fn headers(pairs: &[(&str, &str)]) -> Headers {
    pairs.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect()
}

fn get(map: &Headers, name: &str) -> Option<String> {
    map.iter().find(|(k, _)| k == name).map(|(_, v)| String::from_utf8_lossy(v).into_owned())
}

fn request(path: &str) -> Stream {
    Stream {
        request_headers: headers(&[
            (":method", "GET"),
            (":path", path),
            (":authority", "example.com"),
            (":scheme", "http"),
            ("user-agent", "test/1.0"),
            ("x-replace-me", "old"),
            ("x-remove-me", "gone"),
        ]),
        ..Stream::default()
    }
}

fn response(s: &mut Stream, status: &str) {
    s.response_headers = headers(&[(":status", status), ("server", "upstream"), ("content-length", "11")]);
}

fn config(target: &str, filter: &str, configuration: &str) -> PluginConfig {
    PluginConfig {
        name: format!("{filter}-plugin"),
        root_id: format!("{filter}-root"),
        vm_id: format!("{filter}-{target}"),
        configuration: configuration.as_bytes().to_vec(),
        // Compiled modules survive between test runs (a debug-build compile takes seconds).
        cache_dir: Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("proxywasm-cache")),
        ..PluginConfig::default()
    }
}

fn load_with(target: &str, filter: &str, config: PluginConfig, shared: &Arc<SharedState>) -> Result<Plugin, Error> {
    let wasm = proxy_filter(target, filter).unwrap_or_else(|e| panic!("{e}"));
    Plugin::load(&wasm, config, Arc::clone(shared))
}

fn load(target: &str, filter: &str, configuration: &str) -> Plugin {
    load_with(target, filter, config(target, filter, configuration), &SharedState::new())
        .unwrap_or_else(|e| panic!("{target}: {e}"))
}

#[test]
fn http_headers_adds_replaces_and_removes() {
    for target in TARGETS {
        let plugin = load(target, "http_headers", "tag-1");
        assert_eq!(plugin.name(), "http_headers-plugin");
        let mut vm = plugin.new_vm().unwrap();
        let ctx = vm.create_http_context().unwrap();
        let mut s = request("/hello");
        assert_eq!(vm.on_request_headers(ctx, &mut s, true).unwrap(), Action::Continue, "{target}");
        assert_eq!(get(&s.request_headers, "x-request-tag").as_deref(), Some("tag-1"), "{target}");
        assert_eq!(get(&s.request_headers, "x-request-header-count").as_deref(), Some("7"), "{target}");
        assert_eq!(get(&s.request_headers, "x-replace-me").as_deref(), Some("replaced"), "{target}");
        assert_eq!(get(&s.request_headers, "x-remove-me"), None, "{target}");
        // Pseudo headers stay first.
        assert_eq!(s.request_headers[0].0, ":method");

        response(&mut s, "200");
        assert_eq!(vm.on_response_headers(ctx, &mut s, false).unwrap(), Action::Continue);
        assert_eq!(get(&s.response_headers, "x-response-tag").as_deref(), Some("tag-1"));
        assert_eq!(get(&s.response_headers, "x-seen-status").as_deref(), Some("200"));
        assert_eq!(get(&s.response_headers, "server"), None);
        // Callbacks the filter does not override continue.
        assert_eq!(vm.on_response_body(ctx, &mut s, true).unwrap(), Action::Continue);
        vm.on_log(ctx, &mut s).unwrap();
        vm.finish(ctx, &mut s).unwrap();
        assert!(
            matches!(vm.on_request_headers(ctx, &mut s, true), Err(Error::UnknownContext { context, .. }) if context == ctx)
        );
        assert!(!vm.is_poisoned());
    }
}

#[test]
fn http_headers_refuses_empty_configuration() {
    for target in TARGETS {
        let err =
            load_with(target, "http_headers", config(target, "http_headers", ""), &SharedState::new()).unwrap_err();
        assert!(matches!(err, Error::Configure { callback: "proxy_on_configure", .. }), "{target}: {err}");
    }
}

#[test]
fn body_rewrite_buffers_until_end_of_stream() {
    for target in TARGETS {
        let plugin = load(target, "body_rewrite", "");
        let mut vm = plugin.new_vm().unwrap();
        let ctx = vm.create_http_context().unwrap();
        let mut s = request("/");
        assert_eq!(vm.on_request_headers(ctx, &mut s, true).unwrap(), Action::Continue);
        response(&mut s, "200");
        assert_eq!(vm.on_response_headers(ctx, &mut s, false).unwrap(), Action::Continue);
        assert_eq!(get(&s.response_headers, "content-length"), None, "{target}");

        s.response_body = b"hello world".to_vec();
        assert_eq!(vm.on_response_body(ctx, &mut s, false).unwrap(), Action::Pause, "{target}");
        assert_eq!(s.response_body, b"hello world");
        s.response_body.extend_from_slice(b", and the world again");
        assert_eq!(vm.on_response_body(ctx, &mut s, true).unwrap(), Action::Continue);
        assert_eq!(String::from_utf8_lossy(&s.response_body), "hello wasm, and the wasm again", "{target}");
        vm.finish(ctx, &mut s).unwrap();
    }
}

#[test]
fn local_response_for_configured_prefix() {
    for target in TARGETS {
        let plugin = load(target, "local_response", "/admin");
        let mut vm = plugin.new_vm().unwrap();

        let ctx = vm.create_http_context().unwrap();
        let mut s = request("/admin/users");
        assert_eq!(vm.on_request_headers(ctx, &mut s, true).unwrap(), Action::Pause, "{target}");
        let local = s.local_response.clone().expect("a local response");
        assert_eq!(local.status, 403);
        assert_eq!(local.body, b"forbidden\n");
        assert_eq!(local.headers, headers(&[("x-denied-by", "local_response")]));
        assert_eq!(local.grpc_status, None);
        vm.finish(ctx, &mut s).unwrap();

        let ctx = vm.create_http_context().unwrap();
        let mut s = request("/public");
        assert_eq!(vm.on_request_headers(ctx, &mut s, true).unwrap(), Action::Continue);
        assert!(s.local_response.is_none());
        vm.finish(ctx, &mut s).unwrap();
    }
}

#[test]
fn http_call_round_trip() {
    for target in TARGETS {
        let mut cfg = config(target, "http_call", "auth");
        cfg.upstreams = vec!["auth".into(), "other".into()];
        let plugin = load_with(target, "http_call", cfg, &SharedState::new()).unwrap();
        let mut vm = plugin.new_vm().unwrap();

        // Allowed: the call's body goes into a request header and the request resumes.
        let ctx = vm.create_http_context().unwrap();
        let mut s = request("/orders");
        assert_eq!(vm.on_request_headers(ctx, &mut s, true).unwrap(), Action::Pause, "{target}");
        let calls = vm.take_http_calls();
        assert_eq!(calls.len(), 1);
        let call = &calls[0];
        assert_eq!((call.context, call.upstream.as_str()), (ctx, "auth"));
        assert_eq!(get(&call.headers, ":method").as_deref(), Some("GET"));
        assert_eq!(get(&call.headers, ":path").as_deref(), Some("/check"));
        assert_eq!(get(&call.headers, ":authority").as_deref(), Some("auth.local"));
        assert_eq!(get(&call.headers, "x-original-path").as_deref(), Some("/orders"));
        assert_eq!(call.body, b"ping");
        assert_eq!(call.timeout, Duration::from_secs(2));
        assert!(vm.take_http_calls().is_empty());
        let ok =
            HttpCallResponse { headers: headers(&[(":status", "200")]), body: b"user-7".to_vec(), trailers: vec![] };
        vm.on_http_call_response(ctx, Some(&mut s), call.token, Some(ok)).unwrap();
        assert_eq!(s.continued, Some(StreamDirection::Request), "{target}");
        assert_eq!(get(&s.request_headers, "x-auth").as_deref(), Some("user-7"));
        assert!(s.local_response.is_none());
        // The token is spent (and tokens belong to the context that dispatched them).
        let other = vm.create_http_context().unwrap();
        vm.on_request_headers(other, &mut request("/x"), true).unwrap();
        let other_token = vm.take_http_calls()[0].token;
        let wrong = vm.on_http_call_response(ctx, Some(&mut s), other_token, None);
        assert!(matches!(wrong, Err(Error::UnknownToken { .. })), "{wrong:?}");
        let again = vm.on_http_call_response(ctx, Some(&mut s), call.token, None);
        assert!(matches!(again, Err(Error::UnknownToken { .. })), "{again:?}");
        vm.finish(ctx, &mut s).unwrap();

        // Denied by status.
        let ctx = vm.create_http_context().unwrap();
        let mut s = request("/orders");
        assert_eq!(vm.on_request_headers(ctx, &mut s, true).unwrap(), Action::Pause);
        let call = vm.take_http_calls().pop().unwrap();
        let denied = HttpCallResponse { headers: headers(&[(":status", "401")]), body: vec![], trailers: vec![] };
        vm.on_http_call_response(ctx, Some(&mut s), call.token, Some(denied)).unwrap();
        let local = s.local_response.clone().unwrap();
        assert_eq!((local.status, local.body.as_slice()), (403, &b"denied\n"[..]));
        assert_eq!(get(&local.headers, "x-auth-status").as_deref(), Some("401"));
        assert_eq!(s.continued, None);
        vm.finish(ctx, &mut s).unwrap();

        // Failed call: no headers at all.
        let ctx = vm.create_http_context().unwrap();
        let mut s = request("/orders");
        vm.on_request_headers(ctx, &mut s, true).unwrap();
        let call = vm.take_http_calls().pop().unwrap();
        vm.on_http_call_response(ctx, Some(&mut s), call.token, None).unwrap();
        assert_eq!(s.local_response.as_ref().map(|l| l.status), Some(503), "{target}");
        vm.finish(ctx, &mut s).unwrap();

        // An upstream the configuration does not list: BadArgument, which the filter reports.
        let plugin = load(target, "http_call", "nowhere");
        let mut vm = plugin.new_vm().unwrap();
        let ctx = vm.create_http_context().unwrap();
        let mut s = request("/");
        assert_eq!(vm.on_request_headers(ctx, &mut s, true).unwrap(), Action::Pause);
        assert!(vm.take_http_calls().is_empty());
        let local = s.local_response.clone().unwrap();
        assert_eq!(local.status, 500);
        assert_eq!(get(&local.headers, "x-dispatch-error").as_deref(), Some("BadArgument"), "{target}");
    }
}

#[test]
fn tick_counts_in_shared_data() {
    for target in TARGETS {
        let shared = SharedState::new();
        let plugin = load_with(target, "tick", config(target, "tick", "25"), &shared).unwrap();
        let mut vm = plugin.new_vm().unwrap();
        assert_eq!(vm.tick_period(), Some(Duration::from_millis(25)), "{target}");
        for _ in 0..3 {
            vm.on_tick().unwrap();
        }
        let vm_id = format!("tick-{target}");
        let (value, cas) = shared.get(&vm_id, "ticks").expect("ticks");
        assert_eq!(value, 3u64.to_le_bytes());
        assert_ne!(cas, 0);

        let ctx = vm.create_http_context().unwrap();
        let mut s = request("/");
        response(&mut s, "200");
        vm.on_response_headers(ctx, &mut s, true).unwrap();
        assert_eq!(get(&s.response_headers, "x-ticks").as_deref(), Some("3"));
    }
}

#[test]
fn shared_data_cas_across_vms_and_reloads() {
    for target in TARGETS {
        let shared = SharedState::new();
        let plugin = load_with(target, "shared_data", config(target, "shared_data", ""), &shared).unwrap();
        let mut vms = [plugin.new_vm().unwrap(), plugin.new_vm().unwrap()];
        let run = |vm: &mut duet_proxywasm::Vm| {
            let ctx = vm.create_http_context().unwrap();
            let mut s = request("/");
            vm.on_request_headers(ctx, &mut s, true).unwrap();
            response(&mut s, "200");
            vm.on_response_headers(ctx, &mut s, true).unwrap();
            vm.finish(ctx, &mut s).unwrap();
            (get(&s.response_headers, "x-shared-count").unwrap(), get(&s.response_headers, "x-stale-cas").unwrap())
        };
        assert_eq!(run(&mut vms[0]), ("1".into(), "none".into()), "{target}");
        assert_eq!(run(&mut vms[1]), ("2".into(), "mismatch".into()), "{target}");
        assert_eq!(run(&mut vms[0]), ("3".into(), "mismatch".into()));
        // A reloaded plugin with the same VM id sees the same data.
        let reloaded = load_with(target, "shared_data", config(target, "shared_data", ""), &shared).unwrap();
        assert_eq!(run(&mut reloaded.new_vm().unwrap()).0, "4");
        assert_eq!(shared.get(&format!("shared_data-{target}"), "requests").unwrap().0, b"4");
    }
}

#[test]
fn metrics_shared_by_vms() {
    for target in TARGETS {
        let plugin = load(target, "metrics", "");
        let mut vms = [plugin.new_vm().unwrap(), plugin.new_vm().unwrap()];
        for (i, path) in ["/a", "/abc", "/abcdefgh"].into_iter().enumerate() {
            let vm = &mut vms[i % 2];
            let ctx = vm.create_http_context().unwrap();
            let mut s = request(path);
            vm.on_request_headers(ctx, &mut s, true).unwrap();
            assert_eq!(get(&s.request_headers, "x-requests-total"), Some((i + 1).to_string()), "{target}");
            vm.finish(ctx, &mut s).unwrap();
        }
        let metrics = plugin.metrics();
        assert_eq!(metrics.len(), 3, "{metrics:?}");
        assert_eq!(metrics[0].name, "duet_requests_total");
        assert_eq!((metrics[0].kind, &metrics[0].value), (MetricKind::Counter, &MetricValue::Counter(3)));
        assert_eq!(metrics[1].name, "duet_last_requests");
        assert_eq!((metrics[1].kind, &metrics[1].value), (MetricKind::Gauge, &MetricValue::Gauge(29)));
        assert_eq!(metrics[2].name, "duet_path_length");
        let MetricValue::Histogram(h) = &metrics[2].value else { panic!("{:?}", metrics[2]) };
        assert_eq!((h.count, h.sum), (3, 2 + 4 + 9));
        let count_at = |bound: u64| h.buckets.iter().find(|(b, _)| *b == bound).unwrap().1;
        assert_eq!((count_at(2), count_at(4), count_at(16)), (1, 1, 1));
        assert_eq!(h.buckets.iter().map(|(_, n)| n).sum::<u64>(), 3);
    }
}

#[test]
fn properties_with_envoy_encodings() {
    for target in TARGETS {
        let plugin = load(target, "properties", "");
        let mut vm = plugin.new_vm().unwrap();
        let ctx = vm.create_http_context().unwrap();
        let mut s = request("/items?page=2");
        s.request_headers.push(("x-request-id".into(), b"from-header".to_vec()));
        s.properties = StreamProperties {
            source: Some("10.0.0.1:5555".parse::<SocketAddr>().unwrap()),
            destination: Some("10.0.0.2:8080".parse::<SocketAddr>().unwrap()),
            request_id: "req-1".into(),
            protocol: "HTTP/1.1".into(),
            route_name: "route-a".into(),
            cluster_name: "cluster-b".into(),
            mtls: true,
            response_code: None,
            start_time: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            ..StreamProperties::default()
        };
        vm.on_request_headers(ctx, &mut s, true).unwrap();
        assert_eq!(s.properties.custom.get("duet\0custom").map(Vec::as_slice), Some(&b"custom-value"[..]));
        s.response_headers = headers(&[(":status", "201"), ("content-type", "text/plain")]);
        vm.on_response_headers(ctx, &mut s, true).unwrap();
        let expect = [
            ("request-path", "/items?page=2"),
            ("request-url-path", "/items"),
            ("request-host", "example.com"),
            ("request-scheme", "http"),
            ("request-method", "GET"),
            ("request-id", "req-1"),
            ("request-protocol", "HTTP/1.1"),
            ("request-time", "1700000000000000000"),
            ("request-headers", "8::method"),
            ("request-user-agent", "test/1.0"),
            ("source-address", "10.0.0.1:5555"),
            ("source-port", "5555"),
            ("destination-address", "10.0.0.2:8080"),
            ("destination-port", "8080"),
            ("connection-mtls", "true"),
            ("plugin-name", "properties-plugin"),
            ("plugin-root-id", "properties-root"),
            ("plugin-vm-id", &format!("properties-{target}")),
            ("route-name", "route-a"),
            ("cluster-name", "cluster-b"),
            ("missing", "<none>"),
            ("response-code", "201"),
            ("response-headers", "2::status"),
            ("custom", "custom-value"),
        ];
        for (name, value) in expect {
            assert_eq!(get(&s.response_headers, &format!("x-prop-{name}")).as_deref(), Some(value), "{target}: {name}");
        }
    }
}

#[test]
fn queue_enqueue_and_ready() {
    for target in TARGETS {
        let shared = SharedState::new();
        let plugin = load_with(target, "queue", config(target, "queue", ""), &shared).unwrap();
        let mut vm = plugin.new_vm().unwrap();
        let vm_id = format!("queue-{target}");
        let queue = shared.resolve_queue(&vm_id, "duet_queue").expect("registered at start");
        assert!(vm.ready_queues().is_empty());
        for path in ["/first", "/second"] {
            let ctx = vm.create_http_context().unwrap();
            let mut s = request(path);
            vm.on_request_headers(ctx, &mut s, true).unwrap();
            assert_eq!(get(&s.request_headers, "x-enqueued").as_deref(), Some("ok"), "{target}");
            assert_eq!(get(&s.request_headers, "x-queue-id"), Some(queue.to_string()));
            vm.finish(ctx, &mut s).unwrap();
        }
        assert_eq!(vm.ready_queues(), vec![queue]);
        assert!(vm.ready_queues().is_empty());
        vm.on_queue_ready(queue).unwrap();
        assert_eq!(shared.get(&vm_id, "dequeued").unwrap().0, b"2", "{target}");
        assert_eq!(shared.get(&vm_id, "last_item").unwrap().0, b"/second");
        assert_eq!(shared.dequeue(queue), Err(duet_proxywasm::SharedError::Empty));
    }
}

#[test]
fn panic_is_a_trap_and_poisons() {
    for target in TARGETS {
        let err = load_with(target, "panic", config(target, "panic", "configure"), &SharedState::new()).unwrap_err();
        match &err {
            Error::Trap { plugin, callback, message } => {
                assert_eq!((plugin.as_str(), *callback), ("panic-plugin", "proxy_on_configure"));
                assert!(message.contains("panic filter: on_configure"), "{target}: {message}");
            }
            other => panic!("{target}: {other}"),
        }

        let plugin = load(target, "panic", "");
        let mut vm = plugin.new_vm().unwrap();
        let ctx = vm.create_http_context().unwrap();
        let mut s = request("/");
        let err = vm.on_request_headers(ctx, &mut s, true).unwrap_err();
        match &err {
            Error::Trap { callback, message, .. } => {
                assert_eq!(*callback, "proxy_on_request_headers");
                assert!(message.contains("panic filter: on_http_request_headers"), "{target}: {message}");
            }
            other => panic!("{target}: {other}"),
        }
        // The stream came back intact.
        assert_eq!(get(&s.request_headers, ":path").as_deref(), Some("/"));
        assert!(vm.is_poisoned());
        assert!(matches!(vm.on_response_headers(ctx, &mut s, true), Err(Error::Poisoned { .. })));

        let mut vm = plugin.new_vm().unwrap();
        assert_eq!(vm.tick_period(), Some(Duration::from_millis(5)));
        assert!(matches!(vm.on_tick(), Err(Error::Trap { callback: "proxy_on_tick", .. })));
        assert!(vm.is_poisoned());
    }
}

#[test]
fn infinite_loop_hits_the_deadline() {
    for target in TARGETS {
        let plugin = load(target, "infinite_loop", "");
        let mut vm = plugin.new_vm().unwrap();
        let ctx = vm.create_http_context().unwrap();
        let mut s = request("/");
        let start = Instant::now();
        let err = vm.on_request_headers(ctx, &mut s, true).unwrap_err();
        let took = start.elapsed();
        assert!(
            matches!(&err, Error::Deadline { plugin, callback: "proxy_on_request_headers" } if plugin == "infinite_loop-plugin"),
            "{target}: {err}"
        );
        assert!(took >= Duration::from_millis(100) && took < Duration::from_secs(1), "{target}: took {took:?}");
        assert!(vm.is_poisoned());
        // A fresh VM works (its filter just never returns from this callback).
        assert!(plugin.new_vm().is_ok());
    }
}

#[test]
fn memory_hog_hits_the_memory_limit() {
    for target in TARGETS {
        let mut cfg = config(target, "memory_hog", "");
        cfg.memory_limit = 16 << 20;
        let plugin = load_with(target, "memory_hog", cfg, &SharedState::new()).unwrap();
        let mut vm = plugin.new_vm().unwrap();
        let before = vm.memory_size();
        assert!(before > 0 && before < 16 << 20, "{before}");
        let ctx = vm.create_http_context().unwrap();
        let mut s = request("/");
        let err = vm.on_request_headers(ctx, &mut s, true).unwrap_err();
        assert!(vm.memory_size() <= 16 << 20 && vm.memory_size() > 8 << 20, "{}", vm.memory_size());
        assert!(
            matches!(err, Error::MemoryLimit { callback: "proxy_on_request_headers", limit, .. } if limit == 16 << 20),
            "{target}: {err}"
        );
        assert!(vm.is_poisoned());
    }
}

#[test]
fn root_context_is_not_an_http_context() {
    let target = TARGETS[0];
    let plugin = load(target, "http_headers", "x");
    let mut vm = plugin.new_vm().unwrap();
    let mut s = request("/");
    assert!(matches!(vm.on_request_headers(ROOT_CONTEXT, &mut s, true), Err(Error::UnknownContext { .. })));
    assert!(!vm.is_poisoned());
}

#[test]
fn compiled_modules_are_cached_on_disk() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("proxywasm-cache-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let wat = r#"(module (memory (export "memory") 1) (func (export "proxy_abi_version_0_2_1"))
        (func (export "malloc") (param i32) (result i32) (i32.const 0)) (func (export "cache_test_marker")))"#;
    let wasm = wat::parse_str(wat).unwrap();
    let config = PluginConfig { cache_dir: Some(dir.clone()), ..PluginConfig::default() };
    Plugin::load(&wasm, config, SharedState::new()).unwrap();
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].to_string_lossy().ends_with(".cwasm"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn vms_on_many_threads_share_data() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<Plugin>();
    assert_send_sync::<SharedState>();
    assert_send::<duet_proxywasm::Vm>();

    let target = TARGETS[0];
    let shared = SharedState::new();
    let plugin = load_with(target, "shared_data", config(target, "shared_data", ""), &shared).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let plugin = plugin.clone();
            std::thread::spawn(move || {
                let mut vm = plugin.new_vm().unwrap();
                for _ in 0..50 {
                    let ctx = vm.create_http_context().unwrap();
                    let mut s = request("/");
                    vm.on_request_headers(ctx, &mut s, true).unwrap();
                    vm.finish(ctx, &mut s).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Every increment was a successful compare-and-swap: none was lost.
    assert_eq!(shared.get(&format!("shared_data-{target}"), "requests").unwrap().0, b"200");
}

/// A `tracing` writer that keeps what it is given.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn filter_logs_go_to_tracing() {
    use duet_proxywasm::LogLevel;
    for target in TARGETS {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            load(target, "http_headers", "logged-tag");
            let mut quiet = config(target, "http_headers", "quiet-tag");
            quiet.log_level = LogLevel::Warn;
            load_with(target, "http_headers", quiet, &SharedState::new()).unwrap();
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line = text.lines().find(|l| l.contains("configured with logged-tag")).unwrap_or_else(|| panic!("{text}"));
        assert!(
            line.contains("INFO") && line.contains("duet::filter") && line.contains("plugin=\"http_headers-plugin\""),
            "{line}"
        );
        // Below the plugin's log level: dropped.
        assert!(!text.contains("quiet-tag"), "{target}: {text}");
    }
}
