//! Process-wide metrics, registered once (prometheus-client) and updated with atomics on the
//! request path. They live outside the config snapshot, so counters survive hot reloads.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::filter::{FilterError, FilterMetric, FilterMetricKind, HttpFilter};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    listener: String,
    route: String,
    cluster: String,
    class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    listener: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabels {
    listener: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterLabels {
    cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    cluster: String,
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FilterLabels {
    filter: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabels {
    filter: String,
    verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    listener: String,
    route: String,
    decision: String,
}

/// The verdict counters of a duet-ABI or eBPF filter.
#[derive(Clone, Debug)]
pub struct VerdictStats {
    /// The request went on.
    pub continued: Counter,
    /// The filter answered the request itself.
    pub responded: Counter,
}

/// The decisions of a route's routing program.
#[derive(Clone, Debug)]
pub struct DecisionStats {
    /// The program chose a cluster (and maybe an endpoint).
    pub chosen: Counter,
    /// It declined: the route's own cluster was used.
    pub declined: Counter,
    /// It failed or chose something that does not exist: the route's own cluster was used.
    pub failed: Counter,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 50 µs to about 26 s.
    Histogram::new(exponential_buckets(0.00005, 2.0, 20))
}

/// A route's request counters (by status class) and latency histogram, looked up once per
/// snapshot so the request path only touches atomics. Shared: a request holds it until its
/// response body ends, and cloning it is one reference count, not six.
#[derive(Clone, Debug)]
pub struct RouteStats(Arc<RouteStatsInner>);

#[derive(Debug)]
struct RouteStatsInner {
    classes: [Counter; 5],
    latency: Histogram,
}

impl RouteStats {
    /// One finished request on this route.
    pub fn request(&self, status: u16, elapsed: Duration) {
        self.0.classes[class_index(status)].inc();
        self.0.latency.observe(elapsed.as_secs_f64());
    }
}

fn class_index(status: u16) -> usize {
    match status {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}

/// A filter's call counters, looked up once when the filter loads.
#[derive(Clone, Debug)]
pub struct FilterStats {
    calls: Counter,
    seconds: Counter<f64, AtomicU64>,
}

impl FilterStats {
    /// One phase call.
    pub fn call(&self, elapsed: Duration) {
        self.calls.inc();
        self.seconds.inc_by(elapsed.as_secs_f64());
    }
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Every metric the sidecar exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: HistogramFamily<RouteLabels>,
    upstream_seconds: HistogramFamily<ClusterLabels>,
    active_connections: Family<ListenerLabels, Gauge>,
    connections: Family<ListenerLabels, Counter>,
    connect_failures: Family<EndpointLabels, Counter>,
    ejections: Family<EndpointLabels, Counter>,
    filter_calls: Family<FilterLabels, Counter>,
    filter_seconds: Family<FilterLabels, Counter<f64, AtomicU64>>,
    filter_errors: Family<FilterLabels, Counter>,
    filter_traps: Family<FilterLabels, Counter>,
    filter_restarts: Family<FilterLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
    filter_verdicts: Family<VerdictLabels, Counter>,
    route_decisions: Family<DecisionLabels, Counter>,
    /// TCP monitoring of the captured cgroup (`capture:`).
    pub tcp: TcpMetrics,
}

/// TCP monitoring of the captured cgroup: totals from the capture programs' `TCP_STATS` map and
/// the smoothed RTT of every connection that closed, from their `TCP_EVENTS` ring.
#[derive(Clone, Debug)]
pub struct TcpMetrics {
    /// Connections established.
    pub opened: Counter,
    /// Connections closed.
    pub closed: Counter,
    /// Segments retransmitted.
    pub retransmits: Counter,
    /// Bytes received by closed connections.
    pub received_bytes: Counter,
    /// Bytes sent and acknowledged by closed connections.
    pub acked_bytes: Counter,
    /// RTT samples taken.
    pub rtt_samples: Counter,
    /// `sendmsg(2)` calls the `short_circuit` program passed straight to the peer socket.
    pub short_circuit_messages: Counter,
    /// Their bytes.
    pub short_circuit_bytes: Counter,
    /// Connections from other hosts the `inbound` program gave the inbound listener.
    pub inbound_captured: Counter,
    /// Smoothed RTT of each connection when it closed.
    pub srtt_seconds: Histogram,
}

impl TcpMetrics {
    fn register(r: &mut Registry) -> TcpMetrics {
        let mut counter = |name: &str, help: &str| {
            let c = Counter::default();
            r.register(name, help, c.clone());
            c
        };
        let tcp = TcpMetrics {
            opened: counter("tcp_connections_opened", "TCP connections of the captured cgroup established"),
            closed: counter("tcp_connections_closed", "TCP connections of the captured cgroup closed"),
            retransmits: counter("tcp_retransmits", "TCP segments the captured cgroup retransmitted"),
            received_bytes: counter(
                "tcp_received_bytes",
                "Bytes received by closed TCP connections of the captured cgroup",
            ),
            acked_bytes: counter(
                "tcp_acked_bytes",
                "Bytes sent and acknowledged on closed TCP connections of the captured cgroup",
            ),
            rtt_samples: counter("tcp_rtt_samples", "RTT samples the kernel took on the captured cgroup's connections"),
            short_circuit_messages: counter(
                "tcp_short_circuit_messages",
                "Sends between captured sockets and the sidecar's passed socket to socket (capture.short_circuit)",
            ),
            short_circuit_bytes: counter(
                "tcp_short_circuit_bytes",
                "Bytes passed socket to socket between captured sockets and the sidecar (capture.short_circuit)",
            ),
            inbound_captured: counter(
                "tcp_inbound_captured",
                "Connections from other hosts given to the sidecar's inbound listener (capture.inbound)",
            ),
            // 10 µs to about 5 s.
            srtt_seconds: Histogram::new(exponential_buckets(0.00001, 2.0, 20)),
        };
        r.register(
            "tcp_srtt_seconds",
            "Smoothed RTT of the captured cgroup's TCP connections when they closed",
            tcp.srtt_seconds.clone(),
        );
        tcp
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("duet_mesh");
        let requests = Family::default();
        registry.register("requests", "Requests by listener, route, cluster and status class", requests.clone());
        let request_seconds: HistogramFamily<RouteLabels> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "request_duration_seconds",
            "Downstream request time, from the request head to the last response byte",
            request_seconds.clone(),
        );
        let upstream_seconds: HistogramFamily<ClusterLabels> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "upstream_duration_seconds",
            "Upstream time, from sending the request to the response head",
            upstream_seconds.clone(),
        );
        let r = &mut registry;
        Metrics {
            active_connections: registered(r, "active_connections", "Open downstream connections"),
            connections: registered(r, "connections", "Accepted downstream connections"),
            connect_failures: registered(r, "upstream_connect_failures", "Failed upstream connects"),
            ejections: registered(r, "upstream_ejections", "Outlier ejections of upstream endpoints"),
            filter_calls: registered(r, "filter_calls", "Filter phase calls"),
            filter_seconds: registered(r, "filter_seconds", "Time spent in filter phase calls"),
            filter_errors: registered(r, "filter_errors", "Filter failures (traps, deadlines, memory)"),
            filter_traps: registered(r, "filter_traps", "Filter failures that discarded the filter's VM"),
            filter_restarts: registered(r, "filter_vm_restarts", "Filter VMs created again after a failure"),
            reloads: registered(r, "reloads", "Configuration reloads by result"),
            filter_verdicts: registered(r, "filter_verdicts", "Verdicts of eBPF and duet-ABI Wasm filters"),
            route_decisions: registered(r, "route_decisions", "Decisions of routing programs"),
            tcp: TcpMetrics::register(r),
            registry,
            requests,
            request_seconds,
            upstream_seconds,
        }
    }

    /// The counters of one route.
    pub fn route_stats(&self, listener: &str, route: &str, cluster: &str) -> RouteStats {
        let counter = |class: &str| {
            self.requests
                .get_or_create(&RequestLabels {
                    listener: listener.into(),
                    route: route.into(),
                    cluster: cluster.into(),
                    class: class.into(),
                })
                .clone()
        };
        RouteStats(Arc::new(RouteStatsInner {
            classes: CLASSES.map(counter),
            latency: self
                .request_seconds
                .get_or_create(&RouteLabels { listener: listener.into(), route: route.into() })
                .clone(),
        }))
    }

    /// One finished request (on no route, or where no [`RouteStats`] is at hand).
    pub fn request(&self, listener: &str, route: &str, cluster: &str, status: u16, elapsed: Duration) {
        let class = CLASSES[class_index(status)];
        self.requests
            .get_or_create(&RequestLabels {
                listener: listener.into(),
                route: route.into(),
                cluster: cluster.into(),
                class: class.into(),
            })
            .inc();
        self.request_seconds
            .get_or_create(&RouteLabels { listener: listener.into(), route: route.into() })
            .observe(elapsed.as_secs_f64());
    }

    /// One upstream response head received.
    pub fn upstream(&self, cluster: &str, elapsed: Duration) {
        self.upstream_histogram(cluster).observe(elapsed.as_secs_f64());
    }

    /// The histogram of `cluster`'s upstream response times, for a cluster to keep at hand.
    pub fn upstream_histogram(&self, cluster: &str) -> Histogram {
        self.upstream_seconds.get_or_create(&ClusterLabels { cluster: cluster.into() }).clone()
    }

    /// A downstream connection opened (`+1`) or closed (`-1`).
    pub fn connection(&self, listener: &str, delta: i64) {
        let labels = ListenerLabels { listener: listener.into() };
        self.active_connections.get_or_create(&labels).inc_by(delta);
        if delta > 0 {
            self.connections.get_or_create(&labels).inc();
        }
    }

    /// A failed upstream connect.
    pub fn connect_failure(&self, cluster: &str, endpoint: &str) {
        self.connect_failures
            .get_or_create(&EndpointLabels { cluster: cluster.into(), endpoint: endpoint.into() })
            .inc();
    }

    /// An endpoint ejected.
    pub fn ejection(&self, cluster: &str, endpoint: &str) {
        self.ejections.get_or_create(&EndpointLabels { cluster: cluster.into(), endpoint: endpoint.into() }).inc();
    }

    /// The call counters of a filter.
    pub fn filter_stats(&self, filter: &str) -> FilterStats {
        let labels = FilterLabels { filter: filter.into() };
        FilterStats {
            calls: self.filter_calls.get_or_create(&labels).clone(),
            seconds: self.filter_seconds.get_or_create(&labels).clone(),
        }
    }

    /// The verdict counters of a duet-ABI or eBPF filter.
    pub fn verdict_stats(&self, filter: &str) -> VerdictStats {
        let c = |verdict: &str| {
            self.filter_verdicts
                .get_or_create(&VerdictLabels { filter: filter.into(), verdict: verdict.into() })
                .clone()
        };
        VerdictStats { continued: c("continue"), responded: c("respond") }
    }

    /// The decision counters of a route's routing program.
    pub fn decision_stats(&self, listener: &str, route: &str) -> DecisionStats {
        let c = |decision: &str| {
            self.route_decisions
                .get_or_create(&DecisionLabels {
                    listener: listener.into(),
                    route: route.into(),
                    decision: decision.into(),
                })
                .clone()
        };
        DecisionStats { chosen: c("chosen"), declined: c("declined"), failed: c("failed") }
    }

    /// One filter failure.
    pub fn filter_error(&self, filter: &str, e: &FilterError) {
        let labels = FilterLabels { filter: filter.into() };
        self.filter_errors.get_or_create(&labels).inc();
        if e.trapped {
            self.filter_traps.get_or_create(&labels).inc();
        }
    }

    /// A filter VM created again after a failure.
    pub fn filter_restart(&self, filter: &str) {
        self.filter_restarts.get_or_create(&FilterLabels { filter: filter.into() }).inc();
    }

    /// A reload attempt.
    pub fn reload(&self, ok: bool) {
        self.reloads.get_or_create(&ResultLabels { result: if ok { "ok" } else { "failed" }.into() }).inc();
    }

    /// The text exposition (OpenMetrics), with the filters' own metrics as
    /// `duet_mesh_wasm_<name>{filter="..."}`.
    pub fn encode(&self, filters: &[Arc<dyn HttpFilter>], apps: &[(String, duet_app::AppStatsSnapshot)]) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        if let Some(stripped) = out.strip_suffix("# EOF\n") {
            out.truncate(stripped.len());
        }
        let mut own: BTreeMap<String, (FilterMetricKind, Vec<(String, FilterMetric)>)> = BTreeMap::new();
        for f in filters {
            for m in f.metrics() {
                let name = format!("duet_mesh_wasm_{}", sanitize(&m.name));
                let entry = own.entry(name).or_insert_with(|| (m.kind, Vec::new()));
                if entry.0 == m.kind {
                    entry.1.push((f.name().to_owned(), m));
                }
            }
        }
        for (name, (kind, samples)) in own {
            let ty = match kind {
                FilterMetricKind::Counter => "counter",
                FilterMetricKind::Gauge => "gauge",
                FilterMetricKind::Histogram => "summary",
            };
            let _ = writeln!(out, "# HELP {name} A filter's own metric.\n# TYPE {name} {ty}");
            for (filter, m) in samples {
                let filter = escape_label(&filter);
                match kind {
                    FilterMetricKind::Counter => {
                        let _ = writeln!(out, "{name}_total{{filter=\"{filter}\"}} {}", m.value);
                    }
                    FilterMetricKind::Gauge => {
                        let _ = writeln!(out, "{name}{{filter=\"{filter}\"}} {}", m.value);
                    }
                    FilterMetricKind::Histogram => {
                        let _ = writeln!(out, "{name}_sum{{filter=\"{filter}\"}} {}", m.value);
                        let _ = writeln!(out, "{name}_count{{filter=\"{filter}\"}} {}", m.count);
                    }
                }
            }
        }
        encode_apps(&mut out, apps);
        out.push_str("# EOF\n");
        out
    }
}

/// The Wasm apps' counters, `duet_mesh_app_*{cluster="..."}`.
fn encode_apps(out: &mut String, apps: &[(String, duet_app::AppStatsSnapshot)]) {
    if apps.is_empty() {
        return;
    }
    type Field = fn(&duet_app::AppStatsSnapshot) -> f64;
    let families: [(&str, &str, &str, Field); 11] = [
        ("app_requests", "counter", "Requests an app served", |s| s.requests as f64),
        ("app_rejected", "counter", "Requests refused with 503 because the app was at max_concurrency", |s| {
            s.rejected as f64
        }),
        ("app_in_flight", "gauge", "Requests an app is serving now", |s| s.in_flight as f64),
        ("app_instances_created", "counter", "App instances created (one per request)", |s| s.instances_created as f64),
        ("app_instantiate_seconds", "counter", "Time spent creating app instances", |s| {
            s.instantiate_ns_sum as f64 / 1e9
        }),
        ("app_traps", "counter", "Requests that ended in a trap of the app (500)", |s| s.traps as f64),
        ("app_timeouts", "counter", "Requests that overran the app's timeout_ms (500)", |s| s.timeouts as f64),
        ("app_memory_limits", "counter", "Requests that hit the app's max_memory_mb (500)", |s| s.memory_limits as f64),
        (
            "app_errors",
            "counter",
            "Requests the app failed without a trap: no response, a malformed one, a body that broke off (500 or a cut stream)",
            |s| s.app_errors as f64,
        ),
        ("app_request_seconds", "counter", "Time apps spent on requests", |s| s.latency_us_sum as f64 / 1e6),
        ("app_outbound_requests", "counter", "Outbound requests apps made through the sidecar", |s| {
            s.outbound_requests as f64
        }),
    ];
    for (name, ty, help, field) in families {
        let _ = writeln!(out, "# HELP duet_mesh_{name} {help}.\n# TYPE duet_mesh_{name} {ty}");
        let suffix = if ty == "counter" { "_total" } else { "" };
        for (cluster, s) in apps {
            let _ = writeln!(out, "duet_mesh_{name}{suffix}{{cluster=\"{}\"}} {}", escape_label(cluster), field(s));
        }
    }
}

/// A new metric family, registered under `name`.
fn registered<F: Default + Clone + prometheus_client::registry::Metric>(
    registry: &mut Registry,
    name: &str,
    help: &str,
) -> F {
    let family = F::default();
    registry.register(name, help, family.clone());
    family
}

/// A metric name as Prometheus accepts it.
fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
