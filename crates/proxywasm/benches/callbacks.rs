//! What a Proxy-Wasm callback costs: `cargo bench -p duet-proxywasm --bench callbacks`.
//!
//! - `empty_callback`: `proxy_on_request_body` on a filter that does not handle bodies (the
//!   host's lending of the stream, the call into the guest and the SDK's dispatch);
//! - `request`: a whole request through `http_headers` (context creation, request and response
//!   headers with eight hostcalls between them, `proxy_on_done` and `proxy_on_delete`).

use criterion::{Criterion, criterion_group, criterion_main};
use duet_proxywasm::{Plugin, PluginConfig, SharedState, Stream};
use duet_testdata::proxy_filters::proxy_filter;

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect()
}

fn callbacks(c: &mut Criterion) {
    for target in ["wasm32-wasip1", "wasm32-unknown-unknown"] {
        let wasm = proxy_filter(target, "http_headers").unwrap_or_else(|e| panic!("{e}"));
        let config = PluginConfig { name: "bench".into(), configuration: b"tag".to_vec(), ..PluginConfig::default() };
        let plugin = Plugin::load(&wasm, config, SharedState::new()).unwrap();
        let mut vm = plugin.new_vm().unwrap();
        let request = Stream {
            request_headers: headers(&[(":method", "GET"), (":path", "/"), (":authority", "a"), (":scheme", "http")]),
            response_headers: headers(&[(":status", "200"), ("server", "x")]),
            ..Stream::default()
        };

        let ctx = vm.create_http_context().unwrap();
        let mut s = request.clone();
        c.bench_function(&format!("empty_callback/{target}"), |b| {
            b.iter(|| vm.on_request_body(ctx, &mut s, false).unwrap());
        });
        vm.finish(ctx, &mut s).unwrap();

        c.bench_function(&format!("request/{target}"), |b| {
            b.iter(|| {
                let mut s = request.clone();
                let ctx = vm.create_http_context().unwrap();
                vm.on_request_headers(ctx, &mut s, true).unwrap();
                vm.on_response_headers(ctx, &mut s, true).unwrap();
                vm.finish(ctx, &mut s).unwrap();
                s
            });
        });
    }
}

criterion_group!(benches, callbacks);
criterion_main!(benches);
