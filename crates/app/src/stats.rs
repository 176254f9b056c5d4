//! [`AppStats`]: per-application counters, plain atomics the sidecar reads for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one [`App`](crate::App), updated with relaxed atomics on the request path.
/// Every field only grows, except `in_flight`.
#[derive(Debug, Default)]
pub struct AppStats {
    /// Requests given to [`App::serve`](crate::App::serve).
    pub requests: AtomicU64,
    /// Requests refused with 503 because `max_concurrency` instances were busy.
    pub rejected: AtomicU64,
    /// Instances alive now (a gauge).
    pub in_flight: AtomicU64,
    /// Instances created (one per request that got a permit).
    pub instances_created: AtomicU64,
    /// Nanoseconds spent creating instances, summed (divide by `instances_created`).
    pub instantiate_ns_sum: AtomicU64,
    /// Requests whose instance trapped (a panic, `unreachable`, a host error).
    pub traps: AtomicU64,
    /// Requests whose instance ran past `timeout_ms`.
    pub timeouts: AtomicU64,
    /// Requests whose instance tried to grow memory past `max_memory_mb`.
    pub memory_limits: AtomicU64,
    /// Requests answered 500 because the app set an error code or no response at all.
    pub app_errors: AtomicU64,
    /// Microseconds from `serve` to the response head, summed over every request (divide by
    /// `requests`).
    pub latency_us_sum: AtomicU64,
    /// Outbound requests the app sent through [`Outbound`](crate::Outbound).
    pub outbound_requests: AtomicU64,
    /// Outbound requests refused because their authority is not in `allowed_outbound`.
    pub outbound_denied: AtomicU64,
}

/// A copy of [`AppStats`] at one moment, as plain numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[expect(missing_docs, reason = "the fields are AppStats' fields")]
pub struct AppStatsSnapshot {
    pub requests: u64,
    pub rejected: u64,
    pub in_flight: u64,
    pub instances_created: u64,
    pub instantiate_ns_sum: u64,
    pub traps: u64,
    pub timeouts: u64,
    pub memory_limits: u64,
    pub app_errors: u64,
    pub latency_us_sum: u64,
    pub outbound_requests: u64,
    pub outbound_denied: u64,
}

impl AppStats {
    /// Reads every counter (each atomically, not all at one instant).
    pub fn snapshot(&self) -> AppStatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        AppStatsSnapshot {
            requests: get(&self.requests),
            rejected: get(&self.rejected),
            in_flight: get(&self.in_flight),
            instances_created: get(&self.instances_created),
            instantiate_ns_sum: get(&self.instantiate_ns_sum),
            traps: get(&self.traps),
            timeouts: get(&self.timeouts),
            memory_limits: get(&self.memory_limits),
            app_errors: get(&self.app_errors),
            latency_us_sum: get(&self.latency_us_sum),
            outbound_requests: get(&self.outbound_requests),
            outbound_denied: get(&self.outbound_denied),
        }
    }
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}
