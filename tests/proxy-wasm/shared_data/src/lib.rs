//! Counts requests in the shared-data key `requests` with compare-and-swap (retrying on a CAS
//! mismatch) and puts the count in `x-shared-count`. Before each count it tries a write with a
//! stale CAS and reports what the host said in `x-stale-cas` (`mismatch` is right).

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, Status};

proxy_wasm::main! {{
    proxy_wasm::set_http_context(|_, _| Box::new(Counter { count: 0, stale: "none" }));
}}

struct Counter {
    count: u64,
    stale: &'static str,
}

impl Context for Counter {}

impl HttpContext for Counter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if let (_, Some(cas)) = self.get_shared_data("requests") {
            self.stale = match self.set_shared_data("requests", Some(b"bogus"), Some(cas.wrapping_add(1000))) {
                Err(Status::CasMismatch) => "mismatch",
                Ok(()) => "accepted",
                Err(_) => "error",
            };
        }
        loop {
            let (value, cas) = self.get_shared_data("requests");
            let n = value.and_then(|v| String::from_utf8(v).ok()).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
            match self.set_shared_data("requests", Some((n + 1).to_string().as_bytes()), cas) {
                Ok(()) => {
                    self.count = n + 1;
                    break;
                }
                Err(Status::CasMismatch) => continue,
                Err(_) => break,
            }
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.add_http_response_header("x-shared-count", &self.count.to_string());
        self.add_http_response_header("x-stale-cas", self.stale);
        Action::Continue
    }
}
