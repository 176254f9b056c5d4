//! The sidecar's configuration: one YAML file, parsed strictly (an unknown field is an error) and
//! validated once into plain data. Every error names the file, the line and what was expected.
//!
//! Paths inside the file (filters, certificates) are relative to the file's directory.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The admin endpoint (`/metrics`, `/config`, `/filters`, `/ready`, `/healthz`, `/reload`).
    #[serde(default)]
    pub admin: Option<Admin>,
    /// Worker threads of the proxy [default: the number of CPUs].
    #[serde(default)]
    pub workers: Option<usize>,
    /// How long in-flight requests may take to finish on SIGTERM, in milliseconds.
    #[serde(default = "default_drain_ms")]
    pub drain_timeout_ms: u64,
    /// One JSON line per request, when set.
    #[serde(default)]
    pub access_log: Option<AccessLog>,
    /// Keep compiled filters on disk (`~/.cache/duet/wasm`), so starts and reloads skip
    /// compiling modules seen before [default: true].
    #[serde(default = "default_true")]
    pub compile_cache: bool,
    /// The time and randomness eBPF and duet-ABI programs see [default: host].
    #[serde(default)]
    pub program_clock: ProgramClock,
    /// Listeners, each with its filter chain and routes.
    pub listeners: Vec<Listener>,
    /// Upstream clusters the routes name.
    #[serde(default)]
    pub clusters: Vec<Cluster>,
    /// Transparent capture of a cgroup's outbound connections (privileged; docs/MESH.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<Capture>,
}

/// What `bpf_ktime_get_ns` and `bpf_get_prandom_u32` (and their Wasm imports) give the
/// sidecar's eBPF and duet-ABI programs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProgramClock {
    /// The host's monotonic clock and a random generator.
    #[default]
    Host,
    /// A clock that starts at 1 s and advances 1 µs per read and a fixed pseudo-random
    /// sequence, shared by every program of the configuration: the same requests, sent one at a
    /// time, get the same decisions every run (replaying recorded traffic, comparing builds).
    Deterministic,
}

/// Transparent capture: the connect4 and sock_ops programs of `bpf` (duet's `capture` program,
/// `duet build examples/capture`) are attached to `cgroup`, so the TCP connections its processes
/// open go to `listener` instead, whose routes send them on to their original destinations
/// through an `original_destination` cluster.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Capture {
    /// The cgroup v2 directory whose processes are captured (`/sys/fs/cgroup/app`).
    pub cgroup: PathBuf,
    /// The listener captured connections go to; an IPv4 address, without TLS.
    pub listener: String,
    /// The capture object (`capture.bpf.o`).
    pub bpf: PathBuf,
    /// Only connections to these destination ports [default: every TCP connection].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<u16>,
    /// Where the maps are pinned while the sidecar runs [default:
    /// `/sys/fs/bpf/duet-mesh/<listener address>`]; the next start empties it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_dir: Option<PathBuf>,
    /// Monitor the cgroup's TCP connections (RTT, retransmits, opens and closes, bytes) on
    /// `/metrics` and `GET /events` [default: true].
    #[serde(default = "default_true")]
    pub monitor: bool,
    /// Pass data between the application's captured sockets and the sidecar's socket to socket
    /// (sock_ops + sk_msg over a sockhash) instead of through loopback TCP/IP [default: false;
    /// needs Linux 6.10+]. See docs/MESH.md for what it saves.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub short_circuit: bool,
    /// Inbound capture: TCP connections arriving from other hosts for the application's `ports`
    /// go to `listener` instead (an sk_lookup program on the network namespace; Linux 5.9+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound: Option<InboundCapture>,
}

/// `capture.inbound`: which arriving connections the sidecar takes, and where they go.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InboundCapture {
    /// The listener they go to; an IPv4 address (`0.0.0.0:15006` or `127.0.0.1:15006`: the
    /// connections are handed to the socket, whatever address it is bound to). Its routes send
    /// them on to the application through an `original_destination` cluster; `tls` is allowed
    /// (mutual TLS between sidecars).
    pub listener: String,
    /// The application's ports whose arriving connections are taken (at least one).
    pub ports: Vec<u16>,
    /// The network namespace file the program attaches to [default: the sidecar's own,
    /// `/proc/self/ns/net`, which it shares with the application].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<PathBuf>,
}

/// The admin endpoint.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// `ip:port` to listen on (plain HTTP/1.1; keep it on loopback).
    pub address: String,
}

/// The access log.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccessLog {
    /// A file to append to, or `-` for stderr.
    pub path: String,
}

/// A listener.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// Its name, used in metrics and logs.
    pub name: String,
    /// `ip:port` to listen on. HTTP/1.1 and HTTP/2 (prior knowledge, or ALPN with TLS) share it.
    pub address: String,
    /// TLS towards downstream clients; with `client_ca`, clients must present a certificate (mTLS).
    #[serde(default)]
    pub tls: Option<ListenerTls>,
    /// Filters applied in order to every request on this listener.
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// Routes, tried in order; the first whose host and prefix match wins.
    pub routes: Vec<Route>,
    /// Largest request body accepted, in bytes (413 beyond) [default: 10 MiB].
    #[serde(default = "default_body_limit")]
    pub max_request_body_bytes: u64,
    /// Largest response body relayed, in bytes (502 or a cut stream beyond) [default: 100 MiB].
    #[serde(default = "default_response_limit")]
    pub max_response_body_bytes: u64,
    /// Largest request head (request line and headers), in bytes (431 beyond) [default: 64 KiB].
    #[serde(default = "default_header_limit")]
    pub max_header_bytes: usize,
}

/// TLS on a listener.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListenerTls {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// PEM CA bundle; when set, clients must present a certificate it signed.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

/// A filter in a listener's chain: a `.wasm` module (Proxy-Wasm or duet ABI, told apart by its
/// exports) or an eBPF object (`bpf:`), exactly one of the two.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Its name (the Proxy-Wasm `plugin_name`), unique in the listener.
    pub name: String,
    /// A Wasm module: a Proxy-Wasm filter, or a duet-ABI module with http programs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wasm: Option<PathBuf>,
    /// An eBPF object (`.bpf.o`) with http programs, verified when loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bpf: Option<PathBuf>,
    /// duet-ABI and eBPF filters: the http programs to run, by name [default: every
    /// `http_request` and `http_response` program of the file].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub programs: Vec<String>,
    /// eBPF filters: the engine [default: jit].
    #[serde(default)]
    pub engine: BpfEngine,
    /// The plugin configuration the filter reads in `on_configure`.
    #[serde(default)]
    pub config: String,
    /// The VM configuration the filter reads in `on_vm_start`.
    #[serde(default)]
    pub vm_config: String,
    /// The Proxy-Wasm root id [default: empty].
    #[serde(default)]
    pub root_id: String,
    /// Filters with the same `vm_id` share data and queues [default: empty].
    #[serde(default)]
    pub vm_id: String,
    /// What a request gets when this filter fails.
    #[serde(default)]
    pub on_error: OnError,
    /// Most linear memory one instance may use, in MiB [default: 64].
    #[serde(default = "default_filter_memory")]
    pub memory_limit_mb: usize,
    /// Longest one callback may run, in milliseconds [default: 100].
    #[serde(default = "default_filter_deadline")]
    pub deadline_ms: u64,
}

/// Which userspace engine runs an eBPF program.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BpfEngine {
    /// Verified eBPF compiled to native code (Cranelift).
    #[default]
    Jit,
    /// duet's checked interpreter.
    Interpreter,
}

/// A route's routing program: picks the cluster (from `clusters`) and endpoint per request.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteProgram {
    /// An eBPF object with the `route` program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bpf: Option<PathBuf>,
    /// A duet-ABI Wasm module with the `route` program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wasm: Option<PathBuf>,
    /// The program's name [default: the file's only route program].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// The clusters the program chooses among, by index (0 first).
    pub clusters: Vec<String>,
    /// eBPF: the engine [default: jit].
    #[serde(default)]
    pub engine: BpfEngine,
}

/// What a request gets when a filter traps, overruns its deadline or its memory.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// 503 with a body naming the filter.
    #[default]
    FailClosed,
    /// The request goes on without the filter.
    FailOpen,
}

/// A route.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Its name in metrics [default: the prefix].
    #[serde(default)]
    pub name: Option<String>,
    /// The host (`:authority` / `Host` without port) it matches: exact, `*.suffix`, or any when absent.
    #[serde(default)]
    pub host: Option<String>,
    /// The path prefix it matches.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// The cluster requests go to.
    pub cluster: String,
    /// The whole exchange with the upstream must finish within this many ms [default: the cluster's].
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// A program that picks the cluster and endpoint per request; when it declines (or fails),
    /// `cluster` and its balancer are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteProgram>,
}

/// An upstream cluster.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// Its name.
    pub name: String,
    /// `host:port` endpoints (or `app:` instead).
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// Send each request to the original destination of its downstream connection (a connection
    /// the `capture:` programs redirected to the listener) instead of to endpoints.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub original_destination: bool,
    /// A Wasm HTTP application (a `wasi:http/incoming-handler` component) that serves the
    /// cluster's requests in-process instead of endpoints: `{ wasm, max_memory_mb, timeout_ms,
    /// max_concurrency, queue_timeout_ms, env, allowed_outbound, stderr_limit_bytes }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<duet_app::AppConfig>,
    /// The app's key-value store (`duet:app/kv`): a map of one of this sidecar's eBPF or
    /// duet-ABI filters, `<filter>/<map>`, shared with it (keys and values zero-padded to the
    /// map's sizes) [default: a private in-memory store].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_map: Option<String>,
    /// How an endpoint is chosen.
    #[serde(default)]
    pub lb: LbPolicy,
    /// Speak HTTP/2 to the endpoints (prior knowledge, or ALPN with TLS), multiplexing requests.
    #[serde(default)]
    pub http2: bool,
    /// Connect timeout in ms [default: 1000].
    #[serde(default = "default_connect_ms")]
    pub connect_timeout_ms: u64,
    /// Request timeout in ms, until the response head arrives [default: 15000].
    #[serde(default = "default_request_ms")]
    pub request_timeout_ms: u64,
    /// Idle pooled connections are closed after this many ms [default: 60000].
    #[serde(default = "default_idle_ms")]
    pub idle_timeout_ms: u64,
    /// Most idle HTTP/1.1 connections kept per endpoint [default: 64].
    #[serde(default = "default_max_idle")]
    pub max_idle_per_endpoint: usize,
    /// Further endpoints tried when connecting fails [default: 2].
    #[serde(default = "default_retries")]
    pub connect_retries: u32,
    /// Outlier ejection of endpoints that fail to connect.
    #[serde(default)]
    pub outlier: Outlier,
    /// TLS towards the endpoints.
    #[serde(default)]
    pub tls: Option<ClusterTls>,
}

/// Load balancing.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LbPolicy {
    /// Each endpoint in turn.
    #[default]
    RoundRobin,
    /// The endpoint with the fewest requests in flight (of two picked in turn).
    LeastRequest,
}

/// Outlier ejection.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Outlier {
    /// Consecutive connect failures that eject an endpoint [default: 3].
    #[serde(default = "default_outlier_failures")]
    pub consecutive_failures: u32,
    /// How long an ejected endpoint is skipped, in ms [default: 5000].
    #[serde(default = "default_ejection_ms")]
    pub ejection_ms: u64,
}

impl Default for Outlier {
    fn default() -> Self {
        Outlier { consecutive_failures: default_outlier_failures(), ejection_ms: default_ejection_ms() }
    }
}

/// TLS towards a cluster.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterTls {
    /// PEM CA bundle the endpoints' certificates must chain to.
    pub ca: PathBuf,
    /// The name checked against the endpoints' certificates [default: the endpoint's host].
    #[serde(default)]
    pub server_name: Option<String>,
    /// PEM client certificate chain, for mutual TLS.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// PEM client key, for mutual TLS.
    #[serde(default)]
    pub key: Option<PathBuf>,
}

fn default_true() -> bool {
    true
}
fn default_drain_ms() -> u64 {
    5000
}
fn default_body_limit() -> u64 {
    10 << 20
}
fn default_response_limit() -> u64 {
    100 << 20
}
fn default_header_limit() -> usize {
    64 << 10
}
fn default_filter_memory() -> usize {
    64
}
fn default_filter_deadline() -> u64 {
    100
}
fn default_prefix() -> String {
    "/".into()
}
fn default_connect_ms() -> u64 {
    1000
}
fn default_request_ms() -> u64 {
    15000
}
fn default_idle_ms() -> u64 {
    60000
}
fn default_max_idle() -> usize {
    64
}
fn default_retries() -> u32 {
    2
}
fn default_outlier_failures() -> u32 {
    3
}
fn default_ejection_ms() -> u64 {
    5000
}

/// A config error: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong and what is expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_owned(),
            line: None,
            message: format!("cannot read the config file: {e}"),
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates `text`, naming `file` in errors and resolving relative paths
    /// against its directory.
    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = serde_norway::from_str(text).map_err(|e| {
            let line = e.location().map(|l| l.line());
            // serde_norway appends " at line L column C"; the location is printed in front instead.
            let mut message = e.to_string();
            if let Some(i) = message.find(" at line ") {
                message.truncate(i);
            }
            ConfigError { file: file.to_owned(), line, message }
        })?;
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        config.resolve_paths(&base);
        config.validate(text, file)?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        for l in &mut self.listeners {
            for f in &mut l.filters {
                for p in [&mut f.wasm, &mut f.bpf].into_iter().flatten() {
                    fix(p);
                }
            }
            for r in &mut l.routes {
                if let Some(p) = &mut r.route {
                    for p in [&mut p.wasm, &mut p.bpf].into_iter().flatten() {
                        fix(p);
                    }
                }
            }
            if let Some(t) = &mut l.tls {
                fix(&mut t.cert);
                fix(&mut t.key);
                if let Some(ca) = &mut t.client_ca {
                    fix(ca);
                }
            }
        }
        if let Some(c) = &mut self.capture {
            fix(&mut c.bpf);
        }
        for c in &mut self.clusters {
            if let Some(app) = &mut c.app {
                fix(&mut app.wasm);
                for dir in &mut app.dirs {
                    fix(&mut dir.host);
                }
            }
            if let Some(t) = &mut c.tls {
                fix(&mut t.ca);
                for p in [&mut t.cert, &mut t.key].into_iter().flatten() {
                    fix(p);
                }
            }
        }
    }

    fn validate(&self, text: &str, file: &Path) -> Result<(), ConfigError> {
        let err =
            |needle: &str, message: String| ConfigError { file: file.to_owned(), line: line_of(text, needle), message };
        if self.listeners.is_empty() {
            return Err(err("listeners", "`listeners` is empty; at least one listener is expected".into()));
        }
        if self.workers == Some(0) {
            return Err(err("workers", "`workers` must be at least 1".into()));
        }
        let mut addresses = HashSet::new();
        if let Some(admin) = &self.admin {
            parse_addr(&admin.address)
                .map_err(|m| err(&admin.address, format!("admin.address `{}`: {m}", admin.address)))?;
            addresses.insert(admin.address.clone());
        }
        let mut cluster_names = HashSet::new();
        for (i, c) in self.clusters.iter().enumerate() {
            let at = format!("clusters[{i}] (`{}`)", c.name);
            if !cluster_names.insert(c.name.as_str()) {
                return Err(err(&c.name, format!("{at}: a second cluster named `{}`; names must be unique", c.name)));
            }
            if c.original_destination {
                if !c.endpoints.is_empty() || c.app.is_some() || c.tls.is_some() || c.http2 {
                    return Err(err(
                        &c.name,
                        format!(
                            "{at}: an `original_destination` cluster has no `endpoints`, `app`, `tls` or `http2`: it \
                             forwards plain HTTP/1.1 to where each captured connection was going"
                        ),
                    ));
                }
            } else {
                match (&c.app, c.endpoints.is_empty()) {
                    (None, true) => {
                        return Err(err(
                            &c.name,
                            format!(
                                "{at}: `endpoints` is empty; expected `host:port` entries (or `app:` for a Wasm app)"
                            ),
                        ));
                    }
                    (Some(_), false) => {
                        return Err(err(&c.name, format!("{at}: a cluster has `endpoints` or an `app`, not both")));
                    }
                    (Some(app), true) => {
                        app.validate().map_err(|e| err(&c.name, format!("{at}: app: {e}")))?;
                    }
                    (None, false) => {}
                }
            }
            if c.kv_map.is_some() && c.app.is_none() {
                return Err(err(&c.name, format!("{at}: `kv_map` is for `app:` clusters")));
            }
            if let Some(kv) = &c.kv_map
                && !kv.contains('/')
            {
                return Err(err(kv, format!("{at}: kv_map `{kv}`: expected `<filter>/<map>`")));
            }
            for e in &c.endpoints {
                split_host_port(e).map_err(|m| err(e, format!("{at}: endpoint `{e}`: {m}")))?;
            }
            if c.connect_timeout_ms == 0 || c.request_timeout_ms == 0 {
                return Err(err(&c.name, format!("{at}: timeouts must be positive")));
            }
            if let Some(t) = &c.tls
                && t.cert.is_some() != t.key.is_some()
            {
                return Err(err(&c.name, format!("{at}: tls needs both `cert` and `key` for mutual TLS, or neither")));
            }
        }
        let mut listener_names = HashSet::new();
        for (i, l) in self.listeners.iter().enumerate() {
            let at = format!("listeners[{i}] (`{}`)", l.name);
            if !listener_names.insert(l.name.as_str()) {
                return Err(err(&l.name, format!("{at}: a second listener named `{}`", l.name)));
            }
            parse_addr(&l.address).map_err(|m| err(&l.address, format!("{at}: address `{}`: {m}", l.address)))?;
            if !addresses.insert(l.address.clone()) {
                return Err(err(&l.address, format!("{at}: address `{}` is used twice", l.address)));
            }
            if l.routes.is_empty() {
                return Err(err(
                    &l.name,
                    format!("{at}: `routes` is empty; expected at least `- {{ prefix: \"/\", cluster: <name> }}`"),
                ));
            }
            let mut filter_names = HashSet::new();
            for f in &l.filters {
                if !filter_names.insert(f.name.as_str()) {
                    return Err(err(&f.name, format!("{at}: a second filter named `{}`", f.name)));
                }
                if f.wasm.is_some() == f.bpf.is_some() {
                    return Err(err(
                        &f.name,
                        format!(
                            "{at}: filter `{}` needs exactly one of `wasm:` (a .wasm module) and `bpf:` (a .bpf.o object)",
                            f.name
                        ),
                    ));
                }
                if f.memory_limit_mb == 0 || f.deadline_ms == 0 {
                    return Err(err(&f.name, format!("{at}: filter `{}`: limits must be positive", f.name)));
                }
            }
            for (j, r) in l.routes.iter().enumerate() {
                if !r.prefix.starts_with('/') {
                    return Err(err(
                        &r.prefix,
                        format!("{at}: routes[{j}]: prefix `{}` must start with `/`", r.prefix),
                    ));
                }
                let known = || {
                    let known: Vec<&str> = self.clusters.iter().map(|c| c.name.as_str()).collect();
                    if known.is_empty() { "none".into() } else { known.join(", ") }
                };
                if !cluster_names.contains(r.cluster.as_str()) {
                    return Err(err(
                        &format!("cluster: {}", r.cluster),
                        format!("{at}: routes[{j}]: cluster `{}` is not defined (clusters: {})", r.cluster, known()),
                    ));
                }
                if let Some(p) = &r.route {
                    if p.wasm.is_some() == p.bpf.is_some() {
                        return Err(err(
                            "route:",
                            format!("{at}: routes[{j}]: `route` needs exactly one of `bpf:` and `wasm:`"),
                        ));
                    }
                    if p.clusters.is_empty() {
                        return Err(err(
                            "route:",
                            format!(
                                "{at}: routes[{j}]: `route.clusters` is empty; list the clusters the program picks by index"
                            ),
                        ));
                    }
                    for c in &p.clusters {
                        if !cluster_names.contains(c.as_str()) {
                            return Err(err(
                                c,
                                format!(
                                    "{at}: routes[{j}]: route.clusters names `{c}`, which is not defined (clusters: {})",
                                    known()
                                ),
                            ));
                        }
                    }
                }
            }
        }
        if let Some(c) = &self.capture {
            let Some(l) = self.listeners.iter().find(|l| l.name == c.listener) else {
                return Err(err(
                    "capture:",
                    format!("capture.listener `{}` is not a listener (listeners: {})", c.listener, {
                        let names: Vec<&str> = self.listeners.iter().map(|l| l.name.as_str()).collect();
                        names.join(", ")
                    }),
                ));
            };
            let ipv4 = parse_addr(&l.address).is_ok_and(|a| a.is_ipv4());
            if !ipv4 || l.tls.is_some() {
                return Err(err(
                    "capture:",
                    format!(
                        "capture.listener `{}` must have an IPv4 address and no `tls`: captured connections are the \
                         application's own plain ones",
                        c.listener
                    ),
                ));
            }
            if c.ports.contains(&0) {
                return Err(err("ports", "capture.ports: 0 is not a port".into()));
            }
            if let Some(inbound) = &c.inbound {
                self.validate_inbound(inbound, &c.listener, &err)?;
            }
        }
        Ok(())
    }

    fn validate_inbound(
        &self,
        inbound: &InboundCapture,
        outbound: &str,
        err: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        let Some(l) = self.listeners.iter().find(|l| l.name == inbound.listener) else {
            let names: Vec<&str> = self.listeners.iter().map(|l| l.name.as_str()).collect();
            return Err(err(
                "inbound:",
                format!(
                    "capture.inbound.listener `{}` is not a listener (listeners: {})",
                    inbound.listener,
                    names.join(", ")
                ),
            ));
        };
        if l.name == outbound {
            return Err(err(
                "inbound:",
                format!(
                    "capture.inbound.listener `{}` is also capture.listener: arriving and outgoing connections need \
                     listeners of their own",
                    l.name
                ),
            ));
        }
        let Ok(std::net::SocketAddr::V4(address)) = parse_addr(&l.address) else {
            return Err(err("inbound:", format!("capture.inbound.listener `{}` must have an IPv4 address", l.name)));
        };
        if inbound.ports.is_empty() {
            return Err(err("inbound:", "capture.inbound.ports is empty; list the application's ports".into()));
        }
        if inbound.ports.contains(&0) {
            return Err(err("inbound:", "capture.inbound.ports: 0 is not a port".into()));
        }
        if inbound.ports.contains(&address.port()) {
            return Err(err(
                "inbound:",
                format!("capture.inbound.ports holds {}, the port of the inbound listener itself", address.port()),
            ));
        }
        Ok(())
    }

    /// The upstream names a filter's `http_call` may use.
    pub fn cluster_names(&self) -> Vec<String> {
        self.clusters.iter().map(|c| c.name.clone()).collect()
    }
}

/// Parses an `ip:port` listen address.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| "expected `ip:port`, e.g. `127.0.0.1:10000`".to_string())
}

/// Splits `host:port` (`[v6]:port` too).
pub fn split_host_port(s: &str) -> Result<(String, u16), String> {
    let expected = || "expected `host:port`, e.g. `127.0.0.1:8080`".to_string();
    let (host, port) = s.rsplit_once(':').ok_or_else(expected)?;
    let port: u16 = port.parse().map_err(|_| expected())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || port == 0 {
        return Err(expected());
    }
    Ok((host.to_owned(), port))
}

/// The first line of `text` containing `needle`, 1-based.
fn line_of(text: &str, needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
admin: { address: "127.0.0.1:9901" }
listeners:
  - name: main
    address: "127.0.0.1:10000"
    filters:
      - name: headers
        wasm: filters/http_headers.wasm
        config: "any string"
        vm_config: "..."
        on_error: fail_closed
    routes:
      - { prefix: "/", cluster: backend }
clusters:
  - name: backend
    endpoints: ["127.0.0.1:18080"]
"#;

    #[test]
    fn the_issue_shape_parses_with_paths_resolved() {
        let c = Config::parse(GOOD, Path::new("/etc/duet/mesh.yaml")).unwrap();
        assert_eq!(c.listeners[0].filters[0].wasm, Some(PathBuf::from("/etc/duet/filters/http_headers.wasm")));
        assert_eq!(c.listeners[0].filters[0].on_error, OnError::FailClosed);
        assert_eq!(c.clusters[0].lb, LbPolicy::RoundRobin);
        assert_eq!(c.listeners[0].routes[0].prefix, "/");
    }

    #[test]
    fn an_apps_granted_directories_are_relative_to_the_file_and_must_exist() {
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let with_app = |host: &str| {
            GOOD.replace(
                "    endpoints: [\"127.0.0.1:18080\"]\n",
                &format!("    app: {{ wasm: hello.wasm, dirs: [{{ host: {host}, guest: /data }}] }}\n"),
            )
        };
        let c = Config::parse(&with_app("src"), &crate_dir.join("mesh.yaml")).unwrap();
        let dirs = &c.clusters[0].app.as_ref().unwrap().dirs;
        assert_eq!(
            (dirs[0].host.clone(), dirs[0].guest.as_str(), dirs[0].writable),
            (crate_dir.join("src"), "/data", false)
        );
        let e = Config::parse(&with_app("no-such-dir"), &crate_dir.join("mesh.yaml")).unwrap_err();
        assert!(e.message.contains("dirs[0].host") && e.message.contains("is not a directory"), "{e}");
    }

    #[test]
    fn unknown_fields_are_errors_with_a_line() {
        let bad = GOOD.replace("        on_error: fail_closed", "        on_eror: fail_closed");
        let e = Config::parse(&bad, Path::new("m.yaml")).unwrap_err();
        assert_eq!(e.line, Some(11), "{e}");
        assert!(e.message.contains("unknown field `on_eror`"), "{e}");
        assert!(e.to_string().starts_with("m.yaml:11: "), "{e}");
    }

    #[test]
    fn wrong_values_name_what_is_expected() {
        let bad = GOOD.replace("on_error: fail_closed", "on_error: maybe");
        let e = Config::parse(&bad, Path::new("m.yaml")).unwrap_err();
        assert_eq!(e.line, Some(11));
        assert!(e.message.contains("fail_closed") && e.message.contains("fail_open"), "{e}");
    }

    #[test]
    fn undefined_clusters_and_bad_addresses_are_located() {
        let bad = GOOD.replace("cluster: backend }", "cluster: nowhere }");
        let e = Config::parse(&bad, Path::new("m.yaml")).unwrap_err();
        assert_eq!(e.line, Some(13), "{e}");
        assert!(e.message.contains("cluster `nowhere` is not defined (clusters: backend)"), "{e}");

        let bad = GOOD.replace("127.0.0.1:10000", "localhost");
        let e = Config::parse(&bad, Path::new("m.yaml")).unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        assert!(e.message.contains("expected `ip:port`"), "{e}");

        let bad = GOOD.replace("[\"127.0.0.1:18080\"]", "[\"127.0.0.1\"]");
        let e = Config::parse(&bad, Path::new("m.yaml")).unwrap_err();
        assert!(e.message.contains("expected `host:port`"), "{e}");
    }

    #[test]
    fn bpf_filters_and_route_programs_parse_and_are_checked() {
        let text = GOOD.replace(
            "        wasm: filters/http_headers.wasm\n",
            "        bpf: filters/apikey.bpf.o\n        programs: [apikey]\n        engine: interpreter\n",
        );
        let text = text.replace(
            "      - { prefix: \"/\", cluster: backend }",
            "      - prefix: /\n        cluster: backend\n        route: { bpf: canary.bpf.o, clusters: [backend, backend] }",
        );
        let c = Config::parse(&text, Path::new("/m/mesh.yaml")).unwrap();
        let f = &c.listeners[0].filters[0];
        assert_eq!((f.bpf.as_deref(), f.wasm.as_deref()), (Some(Path::new("/m/filters/apikey.bpf.o")), None));
        assert_eq!((f.programs.as_slice(), f.engine), (&["apikey".to_string()][..], BpfEngine::Interpreter));
        let r = c.listeners[0].routes[0].route.as_ref().unwrap();
        assert_eq!((r.bpf.as_deref(), r.engine), (Some(Path::new("/m/canary.bpf.o")), BpfEngine::Jit));

        let both = GOOD.replace("        config: \"any string\"\n", "        bpf: x.bpf.o\n");
        let e = Config::parse(&both, Path::new("m.yaml")).unwrap_err();
        assert!(e.message.contains("exactly one of `wasm:`"), "{e}");
        let bad = text.replace("clusters: [backend, backend]", "clusters: [backend, nowhere]");
        let e = Config::parse(&bad, Path::new("m.yaml")).unwrap_err();
        assert!(e.message.contains("route.clusters names `nowhere`"), "{e}");
    }

    #[test]
    fn the_program_clock_is_host_unless_asked() {
        assert_eq!(Config::parse(GOOD, Path::new("m.yaml")).unwrap().program_clock, ProgramClock::Host);
        let det = format!("program_clock: deterministic\n{GOOD}");
        assert_eq!(Config::parse(&det, Path::new("m.yaml")).unwrap().program_clock, ProgramClock::Deterministic);
        let e = Config::parse(&format!("program_clock: fake\n{GOOD}"), Path::new("m.yaml")).unwrap_err();
        assert!(e.to_string().contains("m.yaml:1") && e.message.contains("expected `host` or `deterministic`"), "{e}");
    }

    #[test]
    fn missing_required_fields_are_named() {
        let e = Config::parse("listeners: []\n", Path::new("m.yaml")).unwrap_err();
        assert!(e.message.contains("at least one listener"), "{e}");
        let e = Config::parse("admin: { address: \"127.0.0.1:1\" }\n", Path::new("m.yaml")).unwrap_err();
        assert!(e.message.contains("missing field `listeners`"), "{e}");
    }

    #[test]
    fn inbound_capture_is_checked_against_the_listeners() {
        let parse = |inbound: &str, inbound_address: &str| {
            let text = format!(
                "capture:\n  cgroup: /sys/fs/cgroup/app\n  listener: out\n  bpf: capture.bpf.o\n  inbound: {inbound}\n\
                 listeners:\n\
                 \x20 - {{ name: out, address: \"127.0.0.1:15001\", routes: [{{ prefix: /, cluster: pass }}] }}\n\
                 \x20 - {{ name: in, address: \"{inbound_address}\", routes: [{{ prefix: /, cluster: pass }}] }}\n\
                 clusters:\n  - {{ name: pass, original_destination: true }}\n"
            );
            Config::parse(&text, Path::new("m.yaml"))
        };
        let ok = parse("{ listener: in, ports: [8080, 9090] }", "0.0.0.0:15006").unwrap();
        let inbound = ok.capture.unwrap().inbound.unwrap();
        assert_eq!((inbound.listener.as_str(), inbound.ports, inbound.netns), ("in", vec![8080, 9090], None));
        for (inbound, address, expected) in [
            ("{ listener: nope, ports: [8080] }", "0.0.0.0:15006", "`nope` is not a listener (listeners: out, in)"),
            ("{ listener: out, ports: [8080] }", "0.0.0.0:15006", "is also capture.listener"),
            ("{ listener: in, ports: [8080] }", "[::1]:15006", "must have an IPv4 address"),
            ("{ listener: in, ports: [] }", "0.0.0.0:15006", "capture.inbound.ports is empty"),
            ("{ listener: in, ports: [0] }", "0.0.0.0:15006", "0 is not a port"),
            ("{ listener: in, ports: [15006] }", "0.0.0.0:15006", "the port of the inbound listener itself"),
            ("{ listener: in, ports: [1], netnss: /x }", "0.0.0.0:15006", "unknown field `netnss`"),
        ] {
            let e = parse(inbound, address).unwrap_err();
            assert!(e.message.contains(expected) && e.line == Some(5), "{inbound}: {e}");
        }
    }
}
