//! Asks an authorisation upstream (named in the plugin configuration) about every request:
//! pauses, and on the answer resumes the request with the answer's body in a header (status
//! 200) or denies it (any other status, or no answer).

use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| Box::new(Root { upstream: String::new() }));
}}

struct Root {
    upstream: String,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        self.upstream = String::from_utf8_lossy(&config).into_owned();
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Auth { upstream: self.upstream.clone() }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Auth {
    upstream: String,
}

impl Context for Auth {
    fn on_http_call_response(&mut self, _token: u32, _num_headers: usize, body_size: usize, _num_trailers: usize) {
        let status = self.get_http_call_response_header(":status");
        let body = self.get_http_call_response_body(0, body_size).unwrap_or_default();
        match status.as_deref() {
            Some("200") => {
                self.add_http_request_header("x-auth", &String::from_utf8_lossy(&body));
                self.resume_http_request();
            }
            Some(status) => {
                let status = status.to_owned();
                self.send_http_response(403, vec![("x-auth-status", &status)], Some(b"denied\n"));
            }
            None => self.send_http_response(503, vec![], Some(b"auth unavailable\n")),
        }
    }
}

impl HttpContext for Auth {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let path = self.get_http_request_header(":path").unwrap_or_default();
        let headers =
            vec![(":method", "GET"), (":path", "/check"), (":authority", "auth.local"), ("x-original-path", &path)];
        match self.dispatch_http_call(&self.upstream, headers, Some(b"ping"), vec![], Duration::from_secs(2)) {
            Ok(_token) => Action::Pause,
            Err(status) => {
                let status = format!("{status:?}");
                self.send_http_response(500, vec![("x-dispatch-error", &status)], None);
                Action::Pause
            }
        }
    }
}
