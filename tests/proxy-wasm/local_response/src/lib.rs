//! Answers 403 itself, with a body and a header, for paths under the prefix given in the plugin
//! configuration.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| Box::new(Root { prefix: String::new() }));
}}

struct Root {
    prefix: String,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        self.prefix = String::from_utf8_lossy(&config).into_owned();
        !self.prefix.is_empty()
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Deny { prefix: self.prefix.clone() }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Deny {
    prefix: String,
}

impl Context for Deny {}

impl HttpContext for Deny {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let path = self.get_http_request_header(":path").unwrap_or_default();
        if path.starts_with(&self.prefix) {
            self.send_http_response(403, vec![("x-denied-by", "local_response")], Some(b"forbidden\n"));
            return Action::Pause;
        }
        Action::Continue
    }
}
