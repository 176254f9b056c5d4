//! Defines a counter, a gauge and a histogram at start, and per request increments the counter,
//! sets the gauge to the request count times ten and records the path length in the histogram.

use std::cell::Cell;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, MetricType};

thread_local! {
    static IDS: Cell<(u32, u32, u32)> = const { Cell::new((0, 0, 0)) };
}

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| Box::new(Root));
}}

struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        let counter = hostcalls::define_metric(MetricType::Counter, "duet_requests_total");
        let gauge = hostcalls::define_metric(MetricType::Gauge, "duet_last_requests");
        let histogram = hostcalls::define_metric(MetricType::Histogram, "duet_path_length");
        match (counter, gauge, histogram) {
            (Ok(c), Ok(g), Ok(h)) => {
                IDS.with(|ids| ids.set((c, g, h)));
                true
            }
            _ => false,
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Count))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Count;

impl Context for Count {}

impl HttpContext for Count {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let (counter, gauge, histogram) = IDS.with(Cell::get);
        hostcalls::increment_metric(counter, 1).ok();
        let total = hostcalls::get_metric(counter).unwrap_or(0);
        hostcalls::record_metric(gauge, total * 10).ok();
        hostcalls::increment_metric(gauge, -1).ok();
        let path = self.get_http_request_header(":path").unwrap_or_default();
        hostcalls::record_metric(histogram, path.len() as u64).ok();
        self.add_http_request_header("x-requests-total", &total.to_string());
        Action::Continue
    }
}
