//! The immutable runtime snapshot: a validated config compiled into routes, clusters and loaded
//! filters. Hot reload builds a new snapshot beside the running one and swaps an `Arc`; the
//! request path loads the current one without taking a lock, and in-flight requests keep the
//! snapshot they started with.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use duet_proxywasm::SharedState;

use crate::MeshError;
use crate::config::{self, Config, ProgramClock};
use crate::filter::HttpFilter;
use crate::maps_api::NamedMap;
use crate::metrics::Metrics;
use crate::programs::{DuetFilter, FileKind, Limits, RouteProgramRt};
use crate::proxy::Record;
use crate::upstream::{Cluster, Clusters};
use crate::wasm_filter::WasmFilter;

/// A compiled route.
#[derive(Debug)]
pub struct RouteRt {
    /// Its name in metrics and logs.
    pub name: String,
    host: Option<String>,
    prefix: String,
    /// Where it sends requests.
    pub cluster: Arc<Cluster>,
    /// Its own timeout, if set.
    pub timeout: Option<Duration>,
    /// Its request counters.
    pub stats: crate::metrics::RouteStats,
    /// Its routing program, when configured.
    pub program: Option<Arc<crate::programs::RouteProgramRt>>,
    /// The request counters of each cluster the routing program may choose (in its order), so
    /// that a request is counted under the cluster that served it.
    program_stats: Vec<crate::metrics::RouteStats>,
}

impl RouteRt {
    /// The counters of requests this route sent to `cluster`.
    pub fn stats_for(&self, cluster: &Arc<Cluster>) -> &crate::metrics::RouteStats {
        if !Arc::ptr_eq(cluster, &self.cluster)
            && let Some(program) = &self.program
            && let Some(i) = program.clusters.iter().position(|c| Arc::ptr_eq(c, cluster))
            && let Some(stats) = self.program_stats.get(i)
        {
            return stats;
        }
        &self.stats
    }

    fn matches(&self, host: &str, path: &str) -> bool {
        if !path.starts_with(&self.prefix) {
            return false;
        }
        let Some(want) = &self.host else { return true };
        let host = strip_port(host);
        match want.strip_prefix("*.") {
            Some(suffix) => {
                host.len() > suffix.len() + 1
                    && host.ends_with(suffix)
                    && host[..host.len() - suffix.len()].ends_with('.')
            }
            None => host.eq_ignore_ascii_case(want),
        }
    }
}

/// `host` without its `:port` (`[v6]:port` gives `v6`).
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// A compiled listener.
pub struct ListenerRt {
    /// Its name.
    pub name: String,
    /// Its configuration.
    pub config: config::Listener,
    routes: Vec<RouteRt>,
    /// Its filter chain.
    pub filters: Vec<Arc<dyn HttpFilter>>,
    /// Whether any filter of the chain has body phases (else bodies stream straight through).
    pub filters_read_bodies: bool,
    /// Whether any filter of the chain has a response phase (else the response head passes
    /// untouched, without converting it for the chain).
    pub filters_read_responses: bool,
    /// TLS, when configured.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl std::fmt::Debug for ListenerRt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerRt").field("name", &self.name).field("routes", &self.routes).finish_non_exhaustive()
    }
}

impl ListenerRt {
    /// The first route matching `host` and `path`.
    pub fn route(&self, host: &str, path: &str) -> Option<&RouteRt> {
        self.routes.iter().find(|r| r.matches(host, path))
    }
}

/// Where access-log lines go.
pub struct AccessLog {
    out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog").finish_non_exhaustive()
    }
}

impl AccessLog {
    fn open(cfg: &config::AccessLog) -> Result<AccessLog, MeshError> {
        let out: Box<dyn Write + Send> = if cfg.path == "-" {
            Box::new(std::io::stderr())
        } else {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&cfg.path)
                .map_err(|e| MeshError::Invalid(format!("access_log.path `{}`: {e}", cfg.path)))?;
            Box::new(std::io::LineWriter::new(f))
        };
        Ok(AccessLog { out: Mutex::new(out) })
    }

    /// Writes one record as a JSON line.
    pub fn write(&self, record: &Record) {
        let Ok(mut line) = serde_json::to_vec(record) else { return };
        line.push(b'\n');
        let mut out = self.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = out.write_all(&line);
    }
}

/// One immutable configuration, ready to serve.
pub struct Snapshot {
    /// The config it was built from.
    pub config: Config,
    /// Listeners by name.
    pub listeners: Vec<Arc<ListenerRt>>,
    /// Clusters (also the filters' `http_call` targets).
    pub clusters: Arc<Clusters>,
    /// The access log, when on.
    pub access_log: Option<Arc<AccessLog>>,
    /// Counts snapshots: 1 for the first.
    pub generation: u64,
    /// When it was built.
    pub loaded_at: SystemTime,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").field("generation", &self.generation).finish_non_exhaustive()
    }
}

impl Snapshot {
    /// Builds a snapshot: reads TLS files, compiles and configures every filter.
    pub fn build(
        config: Config,
        metrics: &Arc<Metrics>,
        wasm_shared: &Arc<SharedState>,
        generation: u64,
    ) -> Result<Snapshot, MeshError> {
        let workers = config.workers.unwrap_or_else(default_workers);
        let cache_dir = if config.compile_cache { duet_wasm::default_cache_dir() } else { None };
        let app_cache = if config.compile_cache { duet_app::default_cache_dir() } else { None };
        let env = match config.program_clock {
            ProgramClock::Host => duet_helpers::Env::system(),
            ProgramClock::Deterministic => duet_helpers::Env::deterministic(),
        };
        let clusters: Vec<Arc<Cluster>> = config
            .clusters
            .iter()
            .map(|c| Cluster::new(c, metrics, app_cache.clone()).map(Arc::new))
            .collect::<Result<_, _>>()?;
        let clusters = Arc::new(Clusters(clusters));
        for c in &clusters.0 {
            if let Some((_, links)) = c.app() {
                links.bind_clusters(&clusters);
            }
        }
        let upstreams = config.cluster_names();
        let mut listeners = Vec::new();
        for l in &config.listeners {
            let mut routes = Vec::new();
            for r in &l.routes {
                let cluster = clusters
                    .get(&r.cluster)
                    .cloned()
                    .ok_or_else(|| MeshError::Invalid(format!("route to undefined cluster `{}`", r.cluster)))?;
                let name = r.name.clone().unwrap_or_else(|| r.prefix.clone());
                let program = match &r.route {
                    Some(p) => {
                        let choices = p
                            .clusters
                            .iter()
                            .map(|c| {
                                clusters.get(c).cloned().ok_or_else(|| {
                                    MeshError::Invalid(format!("route program names undefined cluster `{c}`"))
                                })
                            })
                            .collect::<Result<Vec<_>, _>>()?;
                        let limits = Limits {
                            memory_limit: 64 << 20,
                            deadline: Duration::from_millis(100),
                            cache_dir: cache_dir.clone(),
                            env: env.clone(),
                        };
                        Some(Arc::new(RouteProgramRt::load(p, &l.name, &name, choices, &limits, metrics, workers)?))
                    }
                    None => None,
                };
                let program_stats = program
                    .iter()
                    .flat_map(|p| p.clusters.iter())
                    .map(|c| metrics.route_stats(&l.name, &name, &c.name))
                    .collect();
                routes.push(RouteRt {
                    program,
                    program_stats,
                    stats: metrics.route_stats(&l.name, &name, &cluster.name),
                    name,
                    host: r.host.clone(),
                    prefix: r.prefix.clone(),
                    cluster,
                    timeout: r.timeout_ms.map(Duration::from_millis),
                });
            }
            let mut filters: Vec<Arc<dyn HttpFilter>> = Vec::new();
            for f in &l.filters {
                let filter: Arc<dyn HttpFilter> = match (&f.bpf, &f.wasm) {
                    (Some(_), _) => Arc::new(DuetFilter::load(
                        f,
                        &l.name,
                        FileKind::Bpf(f.engine),
                        &Limits::of_filter(f, cache_dir.clone(), &env),
                        metrics,
                        workers,
                    )?),
                    (None, Some(path)) => {
                        let wasm = std::fs::read(path).map_err(|e| MeshError::Filter {
                            name: f.name.clone(),
                            message: format!("cannot read {}: {e}", path.display()),
                        })?;
                        if crate::programs::is_duet_abi(&wasm) {
                            let limits = Limits::of_filter(f, cache_dir.clone(), &env);
                            Arc::new(DuetFilter::load(f, &l.name, FileKind::Wasm, &limits, metrics, workers)?)
                        } else {
                            Arc::new(WasmFilter::load(
                                f,
                                (path, &wasm),
                                upstreams.clone(),
                                wasm_shared,
                                metrics,
                                workers,
                                cache_dir.clone(),
                            )?)
                        }
                    }
                    (None, None) => {
                        return Err(MeshError::Filter {
                            name: f.name.clone(),
                            message: "needs `wasm:` or `bpf:`".into(),
                        });
                    }
                };
                filters.push(filter);
            }
            let tls = l.tls.as_ref().map(crate::tls::server_config).transpose()?;
            let filters_read_bodies = filters.iter().any(|f| f.reads_bodies());
            let filters_read_responses = filters_read_bodies || filters.iter().any(|f| f.reads_response_headers());
            listeners.push(Arc::new(ListenerRt {
                name: l.name.clone(),
                config: l.clone(),
                routes,
                filters,
                filters_read_bodies,
                filters_read_responses,
                tls,
            }));
        }
        let access_log = config.access_log.as_ref().map(AccessLog::open).transpose()?.map(Arc::new);
        let snapshot = Snapshot { config, listeners, clusters, access_log, generation, loaded_at: SystemTime::now() };
        // Apps whose key-value store is a filter's map.
        let maps = snapshot.maps();
        for c in &snapshot.config.clusters {
            let Some(kv) = &c.kv_map else { continue };
            let (owner, name) = kv.rsplit_once('/').unwrap_or((kv, ""));
            let map = maps.iter().find(|m| m.owner == owner && m.name == name).ok_or_else(|| {
                let known: Vec<String> = maps.iter().map(|m| format!("{}/{}", m.owner, m.name)).collect();
                MeshError::Invalid(format!(
                    "cluster `{}`: kv_map `{kv}` is not a map of this sidecar's filters (maps: {})",
                    c.name,
                    if known.is_empty() { "none".into() } else { known.join(", ") }
                ))
            })?;
            if map.map.map_type().is_per_cpu() || map.map.map_type() == duet_maps::MapType::RingBuf {
                return Err(MeshError::Invalid(format!(
                    "cluster `{}`: kv_map `{kv}` is a {} map; an app's store needs a map with one value per key",
                    c.name,
                    map.map.map_type()
                )));
            }
            if let Some((_, links)) = snapshot.clusters.get(&c.name).and_then(|c| c.app()) {
                links.bind_kv(Arc::clone(&map.map));
            }
        }
        Ok(snapshot)
    }

    /// The listener called `name`.
    pub fn listener(&self, name: &str) -> Option<&ListenerRt> {
        self.listeners.iter().find(|l| l.name == name).map(|l| &**l)
    }

    /// Every map of every eBPF and duet-ABI filter and routing program.
    pub fn maps(&self) -> Vec<NamedMap> {
        let mut out = Vec::new();
        for l in &self.listeners {
            for f in &l.filters {
                out.extend(f.maps());
            }
            for r in &l.routes {
                if let Some(p) = &r.program {
                    out.extend(p.maps());
                }
            }
        }
        out
    }

    /// Every app cluster's counters, by cluster name.
    pub fn apps(&self) -> Vec<(String, duet_app::AppStatsSnapshot)> {
        self.clusters
            .0
            .iter()
            .filter_map(|c| c.app().map(|(app, _)| (c.name.clone(), app.stats().snapshot())))
            .collect()
    }

    /// Every routing program.
    pub fn route_programs(&self) -> Vec<Arc<RouteProgramRt>> {
        self.listeners.iter().flat_map(|l| l.routes.iter().filter_map(|r| r.program.clone())).collect()
    }

    /// Every filter of every listener.
    pub fn filters(&self) -> Vec<Arc<dyn HttpFilter>> {
        self.listeners.iter().flat_map(|l| l.filters.iter().cloned()).collect()
    }
}

/// The number of CPUs, the default worker count.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// What every task of the running sidecar shares.
pub struct Shared {
    snapshot: ArcSwap<Snapshot>,
    /// Metrics, for the process's lifetime.
    pub metrics: Arc<Metrics>,
    /// Proxy-Wasm shared data and queues, for the process's lifetime (they survive reloads).
    pub wasm_shared: Arc<SharedState>,
    /// The config file reloads read.
    pub config_path: PathBuf,
    /// Set once every listener is bound.
    pub ready: AtomicBool,
    generation: AtomicU64,
    /// Serializes reloads.
    pub reload_lock: tokio::sync::Mutex<()>,
    /// The last reload's error, for the admin API.
    pub last_reload_error: Mutex<Option<String>>,
    /// Ring-buffer records and access events for `GET /events`.
    pub events: crate::events::Events,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("config_path", &self.config_path).finish_non_exhaustive()
    }
}

impl Shared {
    /// Starts from a first snapshot.
    pub fn new(first: Snapshot, metrics: Arc<Metrics>, wasm_shared: Arc<SharedState>, config_path: &Path) -> Shared {
        let generation = first.generation;
        Shared {
            snapshot: ArcSwap::from_pointee(first),
            metrics,
            wasm_shared,
            config_path: config_path.to_owned(),
            ready: AtomicBool::new(false),
            generation: AtomicU64::new(generation),
            reload_lock: tokio::sync::Mutex::new(()),
            last_reload_error: Mutex::new(None),
            events: crate::events::Events::new(),
        }
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// The access log of the current snapshot.
    pub fn access_log(&self) -> Option<Arc<AccessLog>> {
        self.snapshot.load().access_log.clone()
    }

    /// The next snapshot's generation.
    pub fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Makes `next` current.
    pub fn swap(&self, next: Snapshot) -> Arc<Snapshot> {
        self.snapshot.swap(Arc::new(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(host: Option<&str>, prefix: &str) -> RouteRt {
        let metrics = Arc::new(Metrics::new());
        let cfg: config::Cluster = serde_norway::from_str("{ name: c, endpoints: [\"127.0.0.1:1\"] }").unwrap();
        RouteRt {
            stats: metrics.route_stats("l", "r", "c"),
            name: "r".into(),
            host: host.map(str::to_owned),
            prefix: prefix.into(),
            cluster: Arc::new(Cluster::new(&cfg, &metrics, None).unwrap()),
            timeout: None,
            program: None,
            program_stats: Vec::new(),
        }
    }

    #[test]
    fn routes_match_host_and_prefix() {
        assert!(route(None, "/api").matches("x", "/api/v1"));
        assert!(!route(None, "/api").matches("x", "/web"));
        let exact = route(Some("example.com"), "/");
        assert!(exact.matches("example.com:8080", "/"));
        assert!(exact.matches("EXAMPLE.com", "/a"));
        assert!(!exact.matches("other.com", "/"));
        let wild = route(Some("*.example.com"), "/");
        assert!(wild.matches("a.example.com", "/"));
        assert!(wild.matches("a.b.example.com:1", "/"));
        assert!(!wild.matches("example.com", "/"));
        assert!(!wild.matches("badexample.com", "/"));
    }
}
