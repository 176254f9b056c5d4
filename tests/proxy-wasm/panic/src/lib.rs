//! Panics in every HTTP callback and in `on_tick`; panics in `on_configure` too when the plugin
//! configuration is `configure` (otherwise it starts, so the HTTP callbacks can be reached).

use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    // Installs the SDK's panic hook, which logs the panic message at level critical.
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| Box::new(Root));
}}

struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        if self.get_plugin_configuration().as_deref() == Some(b"configure") {
            panic!("panic filter: on_configure");
        }
        self.set_tick_period(Duration::from_millis(5));
        true
    }

    fn on_tick(&mut self) {
        panic!("panic filter: on_tick");
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Boom))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Boom;

impl Context for Boom {}

impl HttpContext for Boom {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        panic!("panic filter: on_http_request_headers");
    }

    fn on_http_request_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        panic!("panic filter: on_http_request_body");
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        panic!("panic filter: on_http_response_headers");
    }

    fn on_http_response_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        panic!("panic filter: on_http_response_body");
    }

    fn on_log(&mut self) {
        panic!("panic filter: on_log");
    }
}
