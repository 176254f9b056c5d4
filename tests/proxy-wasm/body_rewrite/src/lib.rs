//! Buffers the whole response body (pausing until the end of the stream) and replaces every
//! "world" with "wasm".

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

proxy_wasm::main! {{
    proxy_wasm::set_http_context(|_, _| Box::new(Rewrite));
}}

struct Rewrite;

impl Context for Rewrite {}

impl HttpContext for Rewrite {
    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // The length changes, so the original one must go.
        self.set_http_response_header("content-length", None);
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Pause;
        }
        if let Some(body) = self.get_http_response_body(0, body_size) {
            let text = String::from_utf8_lossy(&body).replace("world", "wasm");
            self.set_http_response_body(0, body_size, text.as_bytes());
        }
        Action::Continue
    }
}
