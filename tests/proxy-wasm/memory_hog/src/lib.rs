//! Allocates (and touches) memory without bound in `on_http_request_headers`: the host's
//! memory limit must stop it.

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

proxy_wasm::main! {{
    proxy_wasm::set_http_context(|_, _| Box::new(Hog { kept: Vec::new() }));
}}

struct Hog {
    kept: Vec<Vec<u8>>,
}

impl Context for Hog {}

impl HttpContext for Hog {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        loop {
            let chunk = vec![0x5a_u8; 1 << 20];
            self.kept.push(std::hint::black_box(chunk));
        }
    }
}
