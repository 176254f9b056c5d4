//! The Proxy-Wasm counterpart of duet's `examples/apikey` filter, for the sidecar benchmark's
//! comparison (the same work, through the Proxy-Wasm ABI): a request whose `x-api-key` is not a
//! known key gets 401 `missing or unknown api key`; a known one goes on with
//! `x-duet-client: <client id>` and without `x-api-key`, counted in a filter metric.
//!
//! Keys live in shared data (`apikey:<key>` → client id), seeded from the plugin configuration
//! `key=client,key=client`, the nearest Proxy-Wasm has to a map. No rate limit (the benchmark
//! runs the duet filter with unlimited keys too).

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, MetricType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| Box::new(Root { forwarded: 0 }));
}}

struct Root {
    forwarded: u32,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        for pair in String::from_utf8_lossy(&config).split(',') {
            if let Some((key, client)) = pair.split_once('=') {
                let _ = self.set_shared_data(&format!("apikey:{key}"), Some(client.as_bytes()), None);
            }
        }
        self.forwarded =
            proxy_wasm::hostcalls::define_metric(MetricType::Counter, "apikey_forwarded").unwrap_or_default();
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(ApiKey { forwarded: self.forwarded }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct ApiKey {
    forwarded: u32,
}

impl Context for ApiKey {}

impl HttpContext for ApiKey {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let client = self
            .get_http_request_header("x-api-key")
            .filter(|k| !k.is_empty() && k.len() <= 32)
            .and_then(|k| self.get_shared_data(&format!("apikey:{k}")).0);
        let Some(client) = client else {
            self.send_http_response(401, vec![], Some(b"missing or unknown api key"));
            return Action::Pause;
        };
        self.set_http_request_header("x-duet-client", Some(&String::from_utf8_lossy(&client)));
        self.set_http_request_header("x-api-key", None);
        let _ = proxy_wasm::hostcalls::increment_metric(self.forwarded, 1);
        Action::Continue
    }
}
