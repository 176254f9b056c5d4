//! duet's own http programs in the sidecar: eBPF objects (verified, run by duet's JIT or
//! interpreter) and duet-ABI Wasm modules (run by duet-wasm), written once with the SDK's
//! `#[duet::http_request]`, `#[duet::http_response]` and `#[duet::route]` (docs/ABI.md).
//!
//! A [`ProgramFile`] is loaded once per snapshot; its maps are duet-maps maps shared by every
//! worker (and visible to the admin API); each worker slot has its own runner (an interpreter,
//! a JIT-compiled program's run state or a Wasm instance), borrowed for one program run at a
//! time. [`DuetFilter`] puts request and response programs in the filter chain; [`RouteProgramRt`]
//! lets a route program choose the cluster and endpoint.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use duet_helpers::http::{FilterVerdict, HttpError, HttpExchange, HttpField, HttpMd, HttpOutcome, RouteChoice};
use duet_maps::Map;

use crate::MeshError;
use crate::config::{self, BpfEngine, OnError};
use crate::filter::{BoxFuture, Exchange, FilterError, FilterStream, HttpFilter, LocalResponse, Upstreams, Verdict};
use crate::maps_api::{MapTypes, NamedMap};
use crate::metrics::{DecisionStats, FilterStats, Metrics, VerdictStats};

/// The kind of an http program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgramKind {
    /// Runs on the request head.
    Request,
    /// Runs on the response head.
    Response,
    /// Chooses the upstream.
    Route,
}

/// Limits of a Wasm program file (eBPF programs are verified to terminate and to stay in
/// bounds).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Most linear memory per instance, in bytes.
    pub memory_limit: usize,
    /// Longest one program run.
    pub deadline: std::time::Duration,
    /// The compile cache, when on.
    pub cache_dir: Option<PathBuf>,
    /// The time and randomness the programs see (eBPF objects too).
    pub env: duet_helpers::Env,
}

impl Limits {
    /// A filter's limits.
    pub fn of_filter(cfg: &config::Filter, cache_dir: Option<PathBuf>, env: &duet_helpers::Env) -> Limits {
        Limits {
            memory_limit: cfg.memory_limit_mb << 20,
            deadline: std::time::Duration::from_millis(cfg.deadline_ms),
            cache_dir,
            env: env.clone(),
        }
    }
}

/// What a program file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// An eBPF object.
    Bpf(BpfEngine),
    /// A duet-ABI Wasm module.
    Wasm,
}

/// One worker's way of running the file's programs.
pub(crate) trait Runner: Send {
    /// Runs program `name` on `ex`.
    fn run(&mut self, name: &str, md: &HttpMd, ex: &mut dyn HttpExchange) -> Result<HttpOutcome, String>;
}

/// Makes runners.
pub(crate) type RunnerFactory = Box<dyn Fn() -> Result<Box<dyn Runner>, String> + Send + Sync>;

/// A loaded eBPF object or duet-ABI Wasm module with http programs.
pub struct ProgramFile {
    path: PathBuf,
    kind: FileKind,
    programs: Vec<(String, ProgramKind)>,
    maps: Vec<(String, Arc<Map>)>,
    /// Key and value types of the maps that have them (BTF-defined maps of eBPF objects).
    map_types: std::collections::HashMap<String, MapTypes>,
    factory: RunnerFactory,
    take_log: Box<dyn Fn() -> Vec<String> + Send + Sync>,
    slots: Vec<Mutex<Option<Box<dyn Runner>>>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for ProgramFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgramFile")
            .field("path", &self.path)
            .field("programs", &self.programs)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether `wasm` is a duet-ABI module (it exports `duet_abi_version`) rather than a Proxy-Wasm
/// filter.
pub fn is_duet_abi(wasm: &[u8]) -> bool {
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(wasmparser::Payload::ExportSection(exports)) => {
                return exports.into_iter().any(|e| e.is_ok_and(|e| e.name == "duet_abi_version"));
            }
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

impl ProgramFile {
    /// Loads `path` (its bytes already read): an eBPF object is parsed, every http program in
    /// it verified (an unsafe program is refused with the verifier's explanation); a Wasm
    /// module is compiled and checked for the duet ABI. `workers` runner slots.
    pub fn load(
        path: &Path,
        bytes: &[u8],
        kind: FileKind,
        limits: &Limits,
        workers: usize,
    ) -> Result<ProgramFile, String> {
        let loaded = match kind {
            FileKind::Bpf(engine) => crate::engines::load_bpf(bytes, engine, limits)?,
            FileKind::Wasm => crate::engines::load_wasm(bytes, limits)?,
        };
        Ok(ProgramFile {
            path: path.to_owned(),
            kind,
            programs: loaded.programs,
            maps: loaded.maps,
            map_types: loaded.map_types,
            factory: loaded.factory,
            take_log: loaded.take_log,
            slots: (0..workers.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        })
    }

    /// The programs, in file order.
    pub fn programs(&self) -> &[(String, ProgramKind)] {
        &self.programs
    }

    /// The maps.
    pub fn maps(&self) -> &[(String, Arc<Map>)] {
        &self.maps
    }

    /// Takes the `trace` lines its programs wrote since the last call.
    pub fn take_log(&self) -> Vec<String> {
        (self.take_log)()
    }

    /// The path it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn kind_name(&self) -> &'static str {
        match self.kind {
            FileKind::Bpf(BpfEngine::Jit) => "ebpf (jit)",
            FileKind::Bpf(BpfEngine::Interpreter) => "ebpf (interpreter)",
            FileKind::Wasm => "duet-wasm",
        }
    }

    /// A runner slot for one request (in turn).
    fn slot(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()
    }

    /// Runs `name` on slot `slot`'s runner (made when missing; dropped after a failure, so the
    /// next run starts from a fresh one).
    fn run(&self, slot: usize, name: &str, md: &HttpMd, ex: &mut dyn HttpExchange) -> Result<HttpOutcome, FilterError> {
        let mut guard = lock(&self.slots[slot]);
        let runner = match guard.as_mut() {
            Some(r) => r,
            None => guard.insert((self.factory)().map_err(|message| FilterError { message, trapped: true })?),
        };
        runner.run(name, md, ex).map_err(|message| {
            *guard = None;
            FilterError { message: format!("program `{name}`: {message}"), trapped: true }
        })
    }

    /// The programs to run for a filter: those named in `wanted` (each must exist and be a
    /// request or response program), or every request and response program.
    fn select(&self, wanted: &[String]) -> Result<Vec<(String, ProgramKind)>, String> {
        let http = |k: ProgramKind| matches!(k, ProgramKind::Request | ProgramKind::Response);
        if wanted.is_empty() {
            let all: Vec<_> = self.programs.iter().filter(|(_, k)| http(*k)).cloned().collect();
            if all.is_empty() {
                return Err(format!(
                    "{} has no http_request or http_response program{}",
                    self.path.display(),
                    self.listing()
                ));
            }
            return Ok(all);
        }
        wanted
            .iter()
            .map(|w| match self.programs.iter().find(|(n, _)| n == w) {
                Some((n, k)) if http(*k) => Ok((n.clone(), *k)),
                Some(_) => Err(format!("program `{w}` is a route program; name it in a route's `route:` instead")),
                None => Err(format!("{} has no program `{w}`{}", self.path.display(), self.listing())),
            })
            .collect()
    }

    fn listing(&self) -> String {
        if self.programs.is_empty() {
            return " (it has no http programs)".into();
        }
        let names: Vec<String> = self.programs.iter().map(|(n, k)| format!("{n} ({k:?})")).collect();
        format!(" (programs: {})", names.join(", "))
    }

    fn named_maps(&self, owner: &str) -> Vec<NamedMap> {
        self.maps
            .iter()
            .map(|(name, map)| NamedMap {
                owner: owner.to_owned(),
                name: name.clone(),
                map: Arc::clone(map),
                types: self.map_types.get(name).cloned().unwrap_or_default(),
            })
            .collect()
    }
}

/// Reads `path` and loads it as `kind`, naming the owner in errors.
pub fn load_file(
    owner: &str,
    path: &Path,
    kind: Option<FileKind>,
    limits: &Limits,
    workers: usize,
) -> Result<ProgramFile, MeshError> {
    let err = |message: String| MeshError::Filter { name: owner.to_owned(), message };
    let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
    let kind = match kind {
        Some(k) => k,
        None if is_duet_abi(&bytes) => FileKind::Wasm,
        None => {
            return Err(err(format!(
                "{} is not a duet-ABI module (it does not export `duet_abi_version`)",
                path.display()
            )));
        }
    };
    ProgramFile::load(path, &bytes, kind, limits, workers).map_err(|m| err(format!("{}: {m}", path.display())))
}

// === The exchange as programs see it ===

/// The request (or response) a program runs on, over the chain's exchange record.
pub(crate) struct View<'a> {
    ex: &'a mut Exchange,
    response: bool,
    listener: &'a str,
    /// Set by `http_respond`.
    pub(crate) local: Option<(u16, Vec<u8>)>,
}

impl<'a> View<'a> {
    pub(crate) fn new(ex: &'a mut Exchange, response: bool, listener: &'a str) -> View<'a> {
        View { ex, response, listener, local: None }
    }

    fn headers(&self) -> &Vec<(String, Vec<u8>)> {
        if self.response { &self.ex.response_headers } else { &self.ex.request_headers }
    }

    fn headers_mut(&mut self) -> &mut Vec<(String, Vec<u8>)> {
        if self.response { &mut self.ex.response_headers } else { &mut self.ex.request_headers }
    }

    fn pseudo(&self, name: &str) -> Option<&[u8]> {
        self.ex.request_headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }

    /// The context record.
    pub(crate) fn md(&self) -> HttpMd {
        let p = &self.ex.properties;
        let (ip4, port) = match p.source {
            Some(std::net::SocketAddr::V4(a)) => (HttpMd::ip4(a.ip().octets()), u32::from(a.port())),
            Some(std::net::SocketAddr::V6(a)) => (0, u32::from(a.port())),
            None => (0, 0),
        };
        let version = match p.protocol.as_str() {
            "HTTP/1.0" => 10,
            "HTTP/2" => 20,
            _ => 11,
        };
        HttpMd {
            phase: u32::from(self.response),
            status: if self.response { p.response_code.map_or(0, u32::from) } else { 0 },
            remote_ip4: ip4,
            remote_port: port,
            local_port: p.destination.map_or(0, |d| u32::from(d.port())),
            http_version: version,
        }
    }
}

impl HttpExchange for View<'_> {
    fn field(&self, field: HttpField) -> Option<std::borrow::Cow<'_, [u8]>> {
        use std::borrow::Cow;
        let p = &self.ex.properties;
        match field {
            HttpField::Method => self.pseudo(":method").map(Cow::Borrowed),
            HttpField::Path => self.pseudo(":path").map(Cow::Borrowed),
            HttpField::Authority => self.pseudo(":authority").map(Cow::Borrowed),
            HttpField::Scheme => self.pseudo(":scheme").map(Cow::Borrowed),
            HttpField::ClientIp => p.source.map(|s| match s.ip() {
                std::net::IpAddr::V4(a) => Cow::Owned(a.octets().to_vec()),
                std::net::IpAddr::V6(a) => Cow::Owned(a.octets().to_vec()),
            }),
            HttpField::Listener => Some(Cow::Borrowed(self.listener.as_bytes())),
            HttpField::Route => Some(Cow::Borrowed(p.route_name.as_bytes())),
        }
    }

    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers().iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }

    fn set_header(&mut self, name: &str, value: &[u8]) -> Result<(), HttpError> {
        let headers = self.headers_mut();
        match headers.iter().position(|(n, _)| n == name) {
            Some(first) => {
                headers[first].1 = value.to_vec();
                let mut i = first + 1;
                while i < headers.len() {
                    if headers[i].0 == name {
                        headers.remove(i);
                    } else {
                        i += 1;
                    }
                }
            }
            None => headers.push((name.to_owned(), value.to_vec())),
        }
        Ok(())
    }

    fn add_header(&mut self, name: &str, value: &[u8]) -> Result<(), HttpError> {
        self.headers_mut().push((name.to_owned(), value.to_vec()));
        Ok(())
    }

    fn remove_header(&mut self, name: &str) -> Result<(), HttpError> {
        self.headers_mut().retain(|(n, _)| n != name);
        Ok(())
    }

    fn respond(&mut self, status: u16, body: &[u8]) -> Result<(), HttpError> {
        self.local = Some((status, body.to_vec()));
        Ok(())
    }
}

// === Filters ===

/// An eBPF or duet-ABI Wasm filter in a listener's chain.
pub struct DuetFilter {
    inner: Arc<FilterInner>,
}

impl std::fmt::Debug for DuetFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DuetFilter").field("name", &self.inner.name).finish_non_exhaustive()
    }
}

struct FilterInner {
    name: String,
    listener: String,
    on_error: OnError,
    file: ProgramFile,
    request: Vec<String>,
    response: Vec<String>,
    stats: FilterStats,
    verdicts: VerdictStats,
}

impl DuetFilter {
    /// Loads the filter's file and picks its programs.
    pub fn load(
        cfg: &config::Filter,
        listener: &str,
        kind: FileKind,
        limits: &Limits,
        metrics: &Arc<Metrics>,
        workers: usize,
    ) -> Result<DuetFilter, MeshError> {
        let path = cfg.bpf.as_deref().or(cfg.wasm.as_deref()).unwrap_or(Path::new(""));
        let file = load_file(&cfg.name, path, Some(kind), limits, workers)?;
        let selected =
            file.select(&cfg.programs).map_err(|message| MeshError::Filter { name: cfg.name.clone(), message })?;
        let pick = |want: ProgramKind| selected.iter().filter(|(_, k)| *k == want).map(|(n, _)| n.clone()).collect();
        Ok(DuetFilter {
            inner: Arc::new(FilterInner {
                name: cfg.name.clone(),
                listener: listener.to_owned(),
                on_error: cfg.on_error,
                request: pick(ProgramKind::Request),
                response: pick(ProgramKind::Response),
                file,
                stats: metrics.filter_stats(&cfg.name),
                verdicts: metrics.verdict_stats(&cfg.name),
            }),
        })
    }
}

impl HttpFilter for DuetFilter {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn on_error(&self) -> OnError {
        self.inner.on_error
    }

    fn stats(&self) -> &FilterStats {
        &self.inner.stats
    }

    fn start(&self) -> Result<Box<dyn FilterStream>, FilterError> {
        Ok(Box::new(DuetStream { inner: Arc::clone(&self.inner), slot: self.inner.file.slot() }))
    }

    fn status(&self) -> serde_json::Value {
        let f = &self.inner;
        serde_json::json!({
            "name": f.name,
            "kind": f.file.kind_name(),
            "file": f.file.path.display().to_string(),
            "on_error": match f.on_error { OnError::FailClosed => "fail_closed", OnError::FailOpen => "fail_open" },
            "state": "ok",
            "request_programs": f.request,
            "response_programs": f.response,
            "maps": f.file.maps.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        })
    }

    fn maps(&self) -> Vec<NamedMap> {
        self.inner.file.named_maps(&self.inner.name)
    }

    fn take_trace(&self) -> Vec<String> {
        self.inner.file.take_log()
    }

    fn reads_bodies(&self) -> bool {
        // duet's http programs see headers only (docs/ABI.md).
        false
    }

    fn reads_response_headers(&self) -> bool {
        !self.inner.response.is_empty()
    }
}

struct DuetStream {
    inner: Arc<FilterInner>,
    slot: usize,
}

impl DuetStream {
    fn phase(&mut self, ex: &mut Exchange, response: bool) -> Result<Verdict, FilterError> {
        let f = &*self.inner;
        let programs = if response { &f.response } else { &f.request };
        for name in programs {
            let mut view = View::new(ex, response, &f.listener);
            let md = view.md();
            let outcome = f.file.run(self.slot, name, &md, &mut view)?;
            let verdict = outcome
                .filter_verdict()
                .map_err(|e| FilterError { message: format!("program `{name}`: {e}"), trapped: false })?;
            let (status, body) = match verdict {
                FilterVerdict::Continue => continue,
                FilterVerdict::Respond => view.local.take().unwrap_or((403, Vec::new())),
                FilterVerdict::Forbidden => (403, Vec::new()),
            };
            f.verdicts.responded.inc();
            return Ok(Verdict::Respond(LocalResponse {
                status,
                body,
                details: format!("{}_{name}", f.name),
                ..LocalResponse::default()
            }));
        }
        f.verdicts.continued.inc();
        Ok(Verdict::Continue)
    }
}

impl FilterStream for DuetStream {
    fn request_headers(&mut self, ex: &mut Exchange, _end_of_stream: bool) -> Result<Verdict, FilterError> {
        if self.inner.request.is_empty() { Ok(Verdict::Continue) } else { self.phase(ex, false) }
    }
    fn request_body(&mut self, _ex: &mut Exchange, _end_of_stream: bool) -> Result<Verdict, FilterError> {
        Ok(Verdict::Continue)
    }
    fn request_trailers(&mut self, _ex: &mut Exchange) -> Result<Verdict, FilterError> {
        Ok(Verdict::Continue)
    }
    fn response_headers(&mut self, ex: &mut Exchange, _end_of_stream: bool) -> Result<Verdict, FilterError> {
        if self.inner.response.is_empty() { Ok(Verdict::Continue) } else { self.phase(ex, true) }
    }
    fn response_body(&mut self, _ex: &mut Exchange, _end_of_stream: bool) -> Result<Verdict, FilterError> {
        Ok(Verdict::Continue)
    }
    fn response_trailers(&mut self, _ex: &mut Exchange) -> Result<Verdict, FilterError> {
        Ok(Verdict::Continue)
    }
    fn resume<'a>(
        &'a mut self,
        _ex: &'a mut Exchange,
        _io: &'a dyn Upstreams,
    ) -> BoxFuture<'a, Result<Verdict, FilterError>> {
        Box::pin(async { Ok(Verdict::Continue) })
    }
    fn finish(&mut self, _ex: &mut Exchange) {}
}

// === Route programs ===

/// A route's routing program.
pub struct RouteProgramRt {
    /// `route:<listener>/<route>`, its name in the admin API.
    pub owner: String,
    listener: String,
    program: String,
    file: ProgramFile,
    /// The clusters it chooses among.
    pub clusters: Vec<Arc<crate::upstream::Cluster>>,
    stats: DecisionStats,
}

impl std::fmt::Debug for RouteProgramRt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteProgramRt")
            .field("owner", &self.owner)
            .field("program", &self.program)
            .finish_non_exhaustive()
    }
}

/// Where a routing program sends a request.
#[derive(Debug)]
pub struct Decision {
    /// The cluster: an index into [`RouteProgramRt::clusters`], in range.
    pub cluster: usize,
    /// The endpoint, when the program chose one.
    pub endpoint: Option<usize>,
}

impl RouteProgramRt {
    /// Loads the program of `cfg` for route `route` of `listener`.
    pub fn load(
        cfg: &config::RouteProgram,
        listener: &str,
        route: &str,
        clusters: Vec<Arc<crate::upstream::Cluster>>,
        limits: &Limits,
        metrics: &Arc<Metrics>,
        workers: usize,
    ) -> Result<RouteProgramRt, MeshError> {
        let owner = format!("route:{listener}/{route}");
        let (path, kind) = match (&cfg.bpf, &cfg.wasm) {
            (Some(p), _) => (p, Some(FileKind::Bpf(cfg.engine))),
            (None, Some(p)) => (p, None),
            (None, None) => return Err(MeshError::Invalid(format!("{owner}: `route` needs `bpf:` or `wasm:`"))),
        };
        let file = load_file(&owner, path, kind, limits, workers)?;
        let routes: Vec<&String> =
            file.programs.iter().filter(|(_, k)| *k == ProgramKind::Route).map(|(n, _)| n).collect();
        let program = match (&cfg.program, routes.as_slice()) {
            (Some(p), _) if routes.contains(&p) => p.clone(),
            (Some(p), _) => {
                return Err(MeshError::Filter {
                    name: owner,
                    message: format!("{} has no route program `{p}`{}", path.display(), file.listing()),
                });
            }
            (None, [only]) => (*only).clone(),
            (None, _) => {
                return Err(MeshError::Filter {
                    name: owner,
                    message: format!(
                        "{} has {} route programs; name one with `program:`{}",
                        path.display(),
                        routes.len(),
                        file.listing()
                    ),
                });
            }
        };
        Ok(RouteProgramRt {
            stats: metrics.decision_stats(listener, route),
            owner,
            listener: listener.to_owned(),
            program,
            file,
            clusters,
        })
    }

    /// Runs the program on the request; `None` when it declined or failed (counted; failures
    /// logged), so the route's own cluster serves.
    pub fn decide(&self, ex: &mut Exchange) -> Option<Decision> {
        let mut view = View::new(ex, false, &self.listener);
        let md = view.md();
        let slot = self.file.slot();
        let outcome = match self.file.run(slot, &self.program, &md, &mut view) {
            Ok(r) => r,
            Err(e) => {
                self.stats.failed.inc();
                tracing::warn!(route = %self.owner, error = %e, "routing program failed; the route's cluster serves");
                return None;
            }
        };
        let RouteChoice::Pick { cluster: c, endpoint } = outcome.route_choice() else {
            self.stats.declined.inc();
            return None;
        };
        let c = c as usize;
        let Some(cluster) = self.clusters.get(c) else {
            self.stats.failed.inc();
            tracing::warn!(route = %self.owner, cluster = c, clusters = self.clusters.len(), "routing program chose a cluster index that does not exist");
            return None;
        };
        let endpoint = endpoint.map(|e| e as usize);
        if let Some(e) = endpoint.filter(|&e| e >= cluster.endpoint_count()) {
            self.stats.failed.inc();
            tracing::warn!(route = %self.owner, cluster = %cluster.name, endpoint = e, "routing program chose an endpoint that does not exist");
            return None;
        }
        self.stats.chosen.inc();
        Some(Decision { cluster: c, endpoint })
    }

    /// The `trace` lines it wrote since the last call.
    pub fn take_trace(&self) -> Vec<String> {
        self.file.take_log()
    }

    /// Its maps, for the admin API.
    pub fn maps(&self) -> Vec<NamedMap> {
        self.file.named_maps(&self.owner)
    }

    /// Health for the admin API.
    pub fn status(&self) -> serde_json::Value {
        serde_json::json!({
            "owner": self.owner,
            "kind": self.file.kind_name(),
            "file": self.file.path.display().to_string(),
            "program": self.program,
            "clusters": self.clusters.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
        })
    }
}
