//! ABI rules checked with hand-written WAT modules: every `env.proxy_*` and
//! `wasi_snapshot_preview1` import resolves (unsupported ones return `Unimplemented` / `ENOSYS`),
//! imports from other modules are load errors naming them, bad pointers are
//! `InvalidMemoryAccess`, and `proxy_set_buffer_bytes` has Envoy's replace semantics.

use std::sync::Arc;

use duet_proxywasm::{Action, Error, Plugin, PluginConfig, SharedState, Stream};

fn load(wat: &str) -> Result<Plugin, Error> {
    let wasm = wat::parse_str(wat).expect("valid WAT");
    let config = PluginConfig { name: "wat".into(), vm_id: "wat".into(), ..PluginConfig::default() };
    Plugin::load(&wasm, config, Arc::clone(&SharedState::new()))
}

/// The exports every module below needs, with a bump allocator from 4096.
const COMMON: &str = r#"
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 4096))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $size)))
    (local.get $p))
  (func (export "proxy_on_context_create") (param i32 i32))
"#;

fn module(imports: &str, body: &str) -> String {
    format!("(module {imports} {COMMON} {body})")
}

/// Reads the little-endian `i32`s the module stored in header `x-results`.
fn results(s: &Stream) -> Vec<i32> {
    let (_, value) = s.request_headers.iter().find(|(k, _)| k == "x-results").expect("x-results");
    value.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

#[test]
fn every_import_resolves() {
    let imports = r#"
      (import "env" "proxy_made_up_call" (func $made_up (param i32) (result i32)))
      (import "env" "proxy_grpc_call" (func $grpc_call
        (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
      (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
      (import "env" "proxy_get_header_map_value" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
      (import "env" "proxy_add_header_map_value" (func $add_header (param i32 i32 i32 i32 i32) (result i32)))
      (import "env" "proxy_set_effective_context" (func $set_effective (param i32) (result i32)))
      (import "env" "proxy_set_buffer_bytes" (func $set_buffer (param i32 i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_readdir" (func $readdir (param i32 i32 i32 i64 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "sock_accept" (func $sock_accept (param i32 i32 i32) (result i32)))
      (import "env" "emscripten_notify_memory_growth" (func (param i32)))
    "#;
    let body = r#"
      (data (i32.const 16) "x-missing")
      (data (i32.const 32) "x-results")
      (data (i32.const 48) "hello from wat\n")
      (data (i32.const 64) "\30\00\00\00\0f\00\00\00")
      (data (i32.const 80) "<>XY")
      (data (i32.const 96) ":path")
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (i32.store (i32.const 300) (call $made_up (i32.const 7)))
        (i32.store (i32.const 304) (call $grpc_call (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
          (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
          (i32.const 0)))
        (i32.store (i32.const 308) (call $readdir (i32.const 3) (i32.const 0) (i32.const 0) (i64.const 0) (i32.const 0)))
        ;; A message far outside memory.
        (i32.store (i32.const 312) (call $log (i32.const 2) (i32.const 0xffffff00) (i32.const 1000)))
        (i32.store (i32.const 316) (call $get_header (i32.const 0) (i32.const 16) (i32.const 9) (i32.const 200) (i32.const 204)))
        ;; HTTP call response headers outside an HTTP call response.
        (i32.store (i32.const 320) (call $get_header (i32.const 6) (i32.const 16) (i32.const 9) (i32.const 200) (i32.const 204)))
        ;; A return slot outside memory.
        (i32.store (i32.const 324) (call $get_header (i32.const 0) (i32.const 96) (i32.const 5) (i32.const 0xfffffffe) (i32.const 204)))
        (i32.store (i32.const 328) (call $fd_write (i32.const 1) (i32.const 64) (i32.const 1) (i32.const 72)))
        (i32.store (i32.const 332) (i32.load (i32.const 72)))
        (i32.store (i32.const 336) (call $set_effective (i32.const 999)))
        (i32.store (i32.const 340) (call $sock_accept (i32.const 0) (i32.const 0) (i32.const 0)))
        ;; An unknown header-map type.
        (i32.store (i32.const 344) (call $add_header (i32.const 9) (i32.const 16) (i32.const 9) (i32.const 16) (i32.const 1)))
        (drop (call $add_header (i32.const 0) (i32.const 32) (i32.const 9) (i32.const 300) (i32.const 48)))
        (i32.const 0))
      (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
        ;; Prepend "<", append ">", then replace 3 bytes at 2 with "XY".
        (drop (call $set_buffer (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 80) (i32.const 1)))
        (drop (call $set_buffer (i32.const 0) (i32.const 1000) (i32.const 0) (i32.const 81) (i32.const 1)))
        (drop (call $set_buffer (i32.const 0) (i32.const 2) (i32.const 3) (i32.const 82) (i32.const 2)))
        (i32.const 1))
    "#;
    let plugin = load(&module(imports, body)).unwrap();
    let mut vm = plugin.new_vm().unwrap();
    let ctx = vm.create_http_context().unwrap();
    let mut s = Stream { request_headers: vec![(":path".into(), b"/".to_vec())], ..Stream::default() };
    assert_eq!(vm.on_request_headers(ctx, &mut s, false).unwrap(), Action::Continue);
    let expect = [
        12, // Unimplemented: an unknown proxy_* name
        12, // Unimplemented: gRPC
        52, // ENOSYS: an unsupported WASI function
        6,  // InvalidMemoryAccess
        1,  // NotFound
        2,  // BadArgument: no HTTP call response
        6,  // InvalidMemoryAccess: bad return slot
        0,  // fd_write succeeded...
        15, // ...writing 15 bytes
        2,  // BadArgument: no such context
        52, // ENOSYS
        2,  // BadArgument: no such map type
    ];
    assert_eq!(results(&s), expect);

    s.request_body = b"abcdef".to_vec();
    assert_eq!(vm.on_request_body(ctx, &mut s, true).unwrap(), Action::Pause);
    assert_eq!(String::from_utf8_lossy(&s.request_body), "<aXYef>");
    assert!(!vm.is_poisoned());
}

#[test]
fn foreign_imports_are_named() {
    let err = load(&module(r#"(import "other" "thing" (func (param i32)))"#, "")).unwrap_err();
    assert!(matches!(&err, Error::Abi { reason, .. } if reason.contains("`other.thing`")), "{err}");
    let err = load(&module(r#"(import "env" "not_a_hostcall" (func))"#, "")).unwrap_err();
    assert!(matches!(&err, Error::Abi { reason, .. } if reason.contains("`env.not_a_hostcall`")), "{err}");
    let err = load(&module(r#"(import "env" "table" (table 1 funcref))"#, "")).unwrap_err();
    assert!(matches!(&err, Error::Abi { reason, .. } if reason.contains("`env.table`")), "{err}");
}

#[test]
fn known_hostcall_with_wrong_signature_is_an_abi_error() {
    let err = load(&module(r#"(import "env" "proxy_log" (func (param i32) (result i32)))"#, "")).unwrap_err();
    assert!(matches!(&err, Error::Abi { reason, .. } if reason.contains("proxy_log")), "{err}");
}

#[test]
fn abi_version_is_required() {
    let wat = r#"(module (memory (export "memory") 1) (func (export "proxy_abi_version_0_1_0"))
        (func (export "malloc") (param i32) (result i32) (i32.const 0)))"#;
    let err = load(wat).unwrap_err();
    assert!(matches!(&err, Error::Abi { reason, .. } if reason.contains("proxy_abi_version_0_1_0")), "{err}");
    let err = Plugin::load(b"not wasm", PluginConfig::default(), SharedState::new()).unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
}

#[test]
fn vm_start_returning_false_is_a_configure_error() {
    let body = r#"(func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 0))"#;
    let err = load(&module("", body)).unwrap_err();
    assert!(matches!(err, Error::Configure { callback: "proxy_on_vm_start", .. }), "{err}");
}

#[test]
fn proc_exit_traps_naming_the_plugin() {
    let imports = r#"(import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))"#;
    let body = r#"(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (call $exit (i32.const 3)) (i32.const 0))"#;
    let plugin = load(&module(imports, body)).unwrap();
    let mut vm = plugin.new_vm().unwrap();
    let ctx = vm.create_http_context().unwrap();
    let err = vm.on_request_headers(ctx, &mut Stream::default(), true).unwrap_err();
    match &err {
        Error::Trap { plugin, message, .. } => {
            assert_eq!(plugin, "wat");
            assert!(message.contains("proc_exit(3)"), "{message}");
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("plugin `wat`"), "{err}");
    assert!(vm.is_poisoned());
}

#[test]
fn initial_memory_over_the_limit() {
    let wat = r#"(module (memory (export "memory") 2048) (func (export "proxy_abi_version_0_2_1"))
        (func (export "malloc") (param i32) (result i32) (i32.const 0)))"#;
    let err = load(wat).unwrap_err();
    assert!(matches!(err, Error::MemoryLimit { callback: "instantiate", .. }), "{err}");
}

#[test]
fn http_call_from_the_root_context() {
    let imports = r#"
      (import "env" "proxy_http_call" (func $http_call
        (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
      (import "env" "proxy_get_buffer_bytes" (func $get_buffer (param i32 i32 i32 i32 i32) (result i32)))
      (import "env" "proxy_get_header_map_value" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
      (import "env" "proxy_set_shared_data" (func $set_shared (param i32 i32 i32 i32 i32) (result i32)))
      (import "env" "proxy_set_tick_period_milliseconds" (func $set_tick (param i32) (result i32)))
    "#;
    // Headers `:method: GET`, `:path: /`, `:authority: a` in the pairs format.
    let body = r#"
      (data (i32.const 16) "\03\00\00\00\07\00\00\00\03\00\00\00\05\00\00\00\01\00\00\00\0a\00\00\00\01\00\00\00:method\00GET\00:path\00/\00:authority\00a\00")
      (data (i32.const 128) "auth")
      (data (i32.const 136) "body:status:ctx")
      (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
        (drop (call $set_tick (i32.const 1000)))
        (i32.const 1))
      (func (export "proxy_on_tick") (param i32)
        ;; Headers are 4 + 3 * 8 + 12 + 8 + 14 = 62 bytes.
        (i32.store (i32.const 400) (call $http_call (i32.const 128) (i32.const 4) (i32.const 16) (i32.const 62)
          (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 500) (i32.const 404)))
        (drop (call $set_shared (i32.const 148) (i32.const 3) (i32.const 400) (i32.const 4) (i32.const 0))))
      (func (export "proxy_on_http_call_response") (param $ctx i32) (param $token i32) (param $headers i32)
          (param $body i32) (param $trailers i32)
        (i32.store (i32.const 300) (local.get $ctx))
        (drop (call $set_shared (i32.const 148) (i32.const 3) (i32.const 300) (i32.const 4) (i32.const 0)))
        (drop (call $get_buffer (i32.const 4) (i32.const 0) (local.get $body) (i32.const 200) (i32.const 204)))
        (drop (call $set_shared (i32.const 136) (i32.const 4) (i32.load (i32.const 200)) (i32.load (i32.const 204)) (i32.const 0)))
        (drop (call $get_header (i32.const 6) (i32.const 140) (i32.const 7) (i32.const 200) (i32.const 204)))
        (drop (call $set_shared (i32.const 141) (i32.const 6) (i32.load (i32.const 200)) (i32.load (i32.const 204)) (i32.const 0))))
    "#;
    let wasm = wat::parse_str(module(imports, body)).unwrap();
    let shared = SharedState::new();
    let config = PluginConfig {
        name: "root-call".into(),
        vm_id: "rc".into(),
        upstreams: vec!["auth".into()],
        ..PluginConfig::default()
    };
    let plugin = Plugin::load(&wasm, config, Arc::clone(&shared)).unwrap();
    let mut vm = plugin.new_vm().unwrap();
    assert_eq!(vm.tick_period(), Some(std::time::Duration::from_secs(1)));
    vm.on_tick().unwrap();
    // `ctx` holds the status of proxy_http_call: Ok.
    assert_eq!(shared.get("rc", "ctx").unwrap().0, 0u32.to_le_bytes());
    let calls = vm.take_http_calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.context, duet_proxywasm::ROOT_CONTEXT);
    assert_eq!(call.upstream, "auth");
    assert_eq!(call.timeout, std::time::Duration::from_millis(500));
    let names: Vec<_> = call.headers.iter().map(|(k, v)| format!("{k}={}", String::from_utf8_lossy(v))).collect();
    assert_eq!(names, [":method=GET", ":path=/", ":authority=a"]);
    let response = duet_proxywasm::HttpCallResponse {
        headers: vec![(":status".into(), b"204".to_vec())],
        body: b"pong".to_vec(),
        trailers: vec![],
    };
    vm.on_http_call_response(duet_proxywasm::ROOT_CONTEXT, None, call.token, Some(response)).unwrap();
    assert_eq!(shared.get("rc", "ctx").unwrap().0, 1u32.to_le_bytes());
    assert_eq!(shared.get("rc", "body").unwrap().0, b"pong");
    assert_eq!(shared.get("rc", "status").unwrap().0, b"204");
}

#[test]
fn a_second_memory_is_refused() {
    let wat = r#"(module (memory (export "memory") 1) (memory 1) (func (export "proxy_abi_version_0_2_1"))
        (func (export "malloc") (param i32) (result i32) (i32.const 0)))"#;
    let err = load(wat).unwrap_err();
    assert!(matches!(err, Error::Instantiate { .. }), "{err}");
}

#[test]
fn outstanding_http_calls_are_bounded() {
    let imports = r#"(import "env" "proxy_http_call" (func $http_call
        (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))"#;
    let body = r#"
      (data (i32.const 16) "\03\00\00\00\07\00\00\00\03\00\00\00\05\00\00\00\01\00\00\00\0a\00\00\00\01\00\00\00:method\00GET\00:path\00/\00:authority\00a\00")
      (data (i32.const 128) "auth")
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (local $i i32) (local $status i32)
        (loop $again
          (local.set $status (call $http_call (i32.const 128) (i32.const 4) (i32.const 16) (i32.const 62)
            (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 100) (i32.const 404)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $again (i32.and (i32.eqz (local.get $status)) (i32.lt_u (local.get $i) (i32.const 5000)))))
        ;; The refusing status (InternalFailure): non-zero, so a pause.
        (local.get $status))
    "#;
    let wasm = wat::parse_str(module(imports, body)).unwrap();
    let config = PluginConfig { name: "calls".into(), upstreams: vec!["auth".into()], ..PluginConfig::default() };
    let plugin = Plugin::load(&wasm, config, SharedState::new()).unwrap();
    let mut vm = plugin.new_vm().unwrap();
    let ctx = vm.create_http_context().unwrap();
    assert_eq!(vm.on_request_headers(ctx, &mut Stream::default(), true).unwrap(), Action::Pause);
    assert_eq!(vm.take_http_calls().len(), 1024);
}
