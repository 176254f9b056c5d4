//! Sets a tick period (milliseconds, from the plugin configuration; 10 by default) and counts
//! ticks in the shared-data key `ticks`; responses carry the count in `x-ticks`.

use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, Status};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| Box::new(Ticker));
}}

struct Ticker;

impl Context for Ticker {}

impl RootContext for Ticker {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        true
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        let ms = String::from_utf8_lossy(&config).trim().parse().unwrap_or(10);
        self.set_tick_period(Duration::from_millis(ms));
        true
    }

    fn on_tick(&mut self) {
        loop {
            let (value, cas) = self.get_shared_data("ticks");
            let n = value.map(|v| u64::from_le_bytes(v.try_into().unwrap_or_default())).unwrap_or(0);
            match self.set_shared_data("ticks", Some(&(n + 1).to_le_bytes()), cas) {
                Err(Status::CasMismatch) => continue,
                _ => break,
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Report))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Report;

impl Context for Report {}

impl HttpContext for Report {
    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let (value, _) = self.get_shared_data("ticks");
        let n = value.map(|v| u64::from_le_bytes(v.try_into().unwrap_or_default())).unwrap_or(0);
        self.add_http_response_header("x-ticks", &n.to_string());
        Action::Continue
    }
}
