//! Adds a request header and a response header whose value is the plugin configuration, and
//! exercises the other header-map calls: pairs, replace and remove.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| Box::new(Root { tag: String::new() }));
}}

struct Root {
    tag: String,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        // An empty configuration is refused, so the host's "configure returned false" path is
        // testable.
        match self.get_plugin_configuration() {
            Some(bytes) if !bytes.is_empty() => {
                self.tag = String::from_utf8_lossy(&bytes).into_owned();
                proxy_wasm::hostcalls::log(LogLevel::Info, &format!("configured with {}", self.tag)).ok();
                true
            }
            _ => false,
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Headers { tag: self.tag.clone() }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Headers {
    tag: String,
}

impl Context for Headers {}

impl HttpContext for Headers {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let count = self.get_http_request_headers().len();
        self.add_http_request_header("x-request-tag", &self.tag);
        self.add_http_request_header("x-request-header-count", &count.to_string());
        self.set_http_request_header("x-replace-me", Some("replaced"));
        self.set_http_request_header("x-remove-me", None);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.add_http_response_header("x-response-tag", &self.tag);
        let status = self.get_http_response_header(":status").unwrap_or_default();
        self.add_http_response_header("x-seen-status", &status);
        self.set_http_response_header("server", None);
        Action::Continue
    }
}
