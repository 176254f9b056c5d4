//! HTTP programs in unit tests: [`HttpExchange`] is the request (and, for response filters, the
//! upstream's response) a test hands to [`run_http_request`], [`run_http_response`] or
//! [`run_route`]; afterwards it holds the program's header changes and local response.
//!
//! The helpers follow docs/ABI.md's rules exactly (names, lengths, forbidden headers, the
//! mutation budget, respond limits, errno values), so a test sees the errors the sidecar's
//! executors would return.

use core::cell::RefCell;
use std::borrow::ToOwned;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::string::String;
use std::vec::Vec;

use crate::http::{MAX_HEADER_MUTATIONS, MAX_HEADER_NAME_LEN, MAX_HEADER_VALUE_LEN, MAX_RESPONSE_BODY_LEN};
use crate::{HttpAction, HttpContext, Route, RouteContext, sys};

/// An HTTP exchange as the sidecar shows it to a program, built by a test.
///
/// Header lists keep their order and their names as given; lookups ignore case, and names a
/// program sets or adds are stored lower-case (as the executors do).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpExchange {
    /// The method [default: `GET`].
    pub method: String,
    /// The path with the query.
    pub path: String,
    /// The scheme [default: `http`].
    pub scheme: String,
    /// The authority [default: `example.com`].
    pub authority: Option<String>,
    /// The client's address [default: `10.0.0.1:40000`].
    pub client: SocketAddr,
    /// The listener's port [default: 8080].
    pub local_port: u16,
    /// `10`, `11` or `20` [default: 11].
    pub http_version: u32,
    /// The listener's name [default: `main`].
    pub listener: Option<String>,
    /// The matched route's name [default: none].
    pub route: Option<String>,
    /// The request headers.
    pub request_headers: Vec<(String, Vec<u8>)>,
    /// The upstream's status, for response filters [default: 200].
    pub status: u16,
    /// The upstream's response headers, for response filters.
    pub response_headers: Vec<(String, Vec<u8>)>,
    /// What the last run produced.
    outcome: Outcome,
}

/// What a filter run left besides header changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Outcome {
    /// Successful `respond` calls' last response.
    recorded: Option<LocalResponse>,
    /// What the proxy answers, when the filter returned [`HttpAction::Respond`].
    local_response: Option<LocalResponse>,
    /// Header mutations the run made (successful set/add/remove calls).
    mutations: usize,
}

/// A local response: what the proxy answers instead of going on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalResponse {
    /// The status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

impl Default for HttpExchange {
    fn default() -> Self {
        HttpExchange {
            method: "GET".into(),
            path: "/".into(),
            scheme: "http".into(),
            authority: Some("example.com".into()),
            client: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 40000),
            local_port: 8080,
            http_version: 11,
            listener: Some("main".into()),
            route: None,
            request_headers: Vec::new(),
            status: 200,
            response_headers: Vec::new(),
            outcome: Outcome::default(),
        }
    }
}

impl HttpExchange {
    /// A request `method path`, with the defaults of the fields' documentation.
    pub fn new(method: &str, path: &str) -> Self {
        HttpExchange { method: method.into(), path: path.into(), ..HttpExchange::default() }
    }

    /// A `GET path`.
    pub fn get(path: &str) -> Self {
        HttpExchange::new("GET", path)
    }

    /// Adds a request header.
    pub fn with_header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.request_headers.push((name.into(), value.as_ref().to_vec()));
        self
    }

    /// Sets the client's address.
    pub fn with_client(mut self, ip: impl Into<IpAddr>, port: u16) -> Self {
        self.client = SocketAddr::new(ip.into(), port);
        self
    }

    /// Sets the authority (`None`: the request has none).
    pub fn with_authority(mut self, authority: Option<&str>) -> Self {
        self.authority = authority.map(ToOwned::to_owned);
        self
    }

    /// Sets the listener's name.
    pub fn with_listener(mut self, name: &str) -> Self {
        self.listener = Some(name.into());
        self
    }

    /// Sets the matched route's name.
    pub fn with_route(mut self, name: &str) -> Self {
        self.route = Some(name.into());
        self
    }

    /// Sets the upstream's response status (for response filters).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Adds a response header (for response filters).
    pub fn with_response_header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.response_headers.push((name.into(), value.as_ref().to_vec()));
        self
    }

    /// The first value of request header `name` (any case).
    pub fn request_header(&self, name: &str) -> Option<&[u8]> {
        first(&self.request_headers, name.as_bytes())
    }

    /// Every value of request header `name` (any case), in order.
    pub fn request_header_all(&self, name: &str) -> Vec<&[u8]> {
        all(&self.request_headers, name.as_bytes())
    }

    /// The first value of response header `name` (any case).
    pub fn response_header(&self, name: &str) -> Option<&[u8]> {
        first(&self.response_headers, name.as_bytes())
    }

    /// Every value of response header `name` (any case), in order.
    pub fn response_header_all(&self, name: &str) -> Vec<&[u8]> {
        all(&self.response_headers, name.as_bytes())
    }

    /// What the proxy answers after the last filter run: the recorded local response if the
    /// filter returned [`HttpAction::Respond`] (`403` with an empty body if it recorded none);
    /// `None` if it returned [`HttpAction::Continue`].
    pub fn local_response(&self) -> Option<&LocalResponse> {
        self.outcome.local_response.as_ref()
    }

    /// How many header mutations the last run made.
    pub fn mutations(&self) -> usize {
        self.outcome.mutations
    }
}

fn first<'h>(headers: &'h [(String, Vec<u8>)], name: &[u8]) -> Option<&'h [u8]> {
    headers.iter().find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
}

fn all<'h>(headers: &'h [(String, Vec<u8>)], name: &[u8]) -> Vec<&'h [u8]> {
    headers.iter().filter(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice()).collect()
}

/// Runs a request filter on `exchange`: it reads the request's fields and headers and may change
/// the request headers or answer with a local response ([`HttpExchange::local_response`]).
pub fn run_http_request(prog: impl FnOnce(HttpContext<'_>) -> HttpAction, exchange: &mut HttpExchange) -> HttpAction {
    run_filter(prog, exchange, Phase::Request)
}

/// Runs a response filter on `exchange`: it reads the request's fields, the upstream's status
/// and the response headers, and may change the response headers or answer with a local response
/// instead.
pub fn run_http_response(prog: impl FnOnce(HttpContext<'_>) -> HttpAction, exchange: &mut HttpExchange) -> HttpAction {
    run_filter(prog, exchange, Phase::Response)
}

/// Runs a route program on `exchange` (read-only) and returns its choice.
pub fn run_route(prog: impl FnOnce(RouteContext<'_>) -> Route, exchange: &HttpExchange) -> Route {
    let run = HostRun::new(exchange.clone(), Phase::Route);
    prog(RouteContext::from_sys(sys::HttpCtx { run: &run }))
}

fn run_filter(
    prog: impl FnOnce(HttpContext<'_>) -> HttpAction,
    exchange: &mut HttpExchange,
    phase: Phase,
) -> HttpAction {
    exchange.outcome = Outcome::default();
    let run = HostRun::new(std::mem::take(exchange), phase);
    let action = prog(HttpContext::from_sys(sys::HttpCtx { run: &run }));
    *exchange = run.exchange.into_inner();
    if action == HttpAction::Respond {
        let recorded = exchange.outcome.recorded.clone();
        exchange.outcome.local_response = Some(recorded.unwrap_or(LocalResponse { status: 403, body: Vec::new() }));
    }
    action
}

// === the helpers, on the host ===

/// Which program runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Request,
    Response,
    Route,
}

/// One program run: the exchange it may change, and the context it reads.
pub(crate) struct HostRun {
    exchange: RefCell<HttpExchange>,
    phase: Phase,
    md: [u32; 6],
}

const EPERM: i64 = -1;
const ENOENT: i64 = -2;
const E2BIG: i64 = -7;
const EINVAL: i64 = -22;

/// Hop-by-hop headers (RFC 9110 §7.6.1, and those RFC 2616 listed), which only the proxy manages.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

impl HostRun {
    fn new(exchange: HttpExchange, phase: Phase) -> Self {
        let remote_ip4 = match exchange.client.ip() {
            // Network byte order in memory.
            IpAddr::V4(ip) => u32::from_ne_bytes(ip.octets()),
            IpAddr::V6(_) => 0,
        };
        let (phase_raw, status) = match phase {
            Phase::Response => (1, u32::from(exchange.status)),
            Phase::Request | Phase::Route => (0, 0),
        };
        let md = [
            phase_raw,
            status,
            remote_ip4,
            u32::from(exchange.client.port()),
            u32::from(exchange.local_port),
            exchange.http_version,
        ];
        HostRun { exchange: RefCell::new(exchange), phase, md }
    }

    /// The `struct duet_http_md` of this run.
    pub(crate) fn md(&self) -> [u32; 6] {
        self.md
    }

    /// `http_field`.
    pub(crate) fn field(&self, field: u32, buf: &mut [u8]) -> i64 {
        let ex = self.exchange.borrow();
        let ip_bytes;
        let value: Option<&[u8]> = match field {
            0 => Some(ex.method.as_bytes()),
            1 => Some(ex.path.as_bytes()),
            2 => ex.authority.as_deref().map(str::as_bytes),
            3 => Some(ex.scheme.as_bytes()),
            4 => {
                ip_bytes = match ex.client.ip() {
                    IpAddr::V4(ip) => ip.octets().to_vec(),
                    IpAddr::V6(ip) => ip.octets().to_vec(),
                };
                Some(&ip_bytes)
            }
            5 => ex.listener.as_deref().map(str::as_bytes),
            6 => ex.route.as_deref().map(str::as_bytes),
            _ => return fill(Err(EINVAL), buf),
        };
        fill(value.ok_or(ENOENT), buf)
    }

    /// `http_header_get`.
    pub(crate) fn header_get(&self, name: &[u8], buf: &mut [u8]) -> i64 {
        if !valid_name(name) {
            return fill(Err(EINVAL), buf);
        }
        let ex = self.exchange.borrow();
        let headers = if self.phase == Phase::Response { &ex.response_headers } else { &ex.request_headers };
        fill(first(headers, name).ok_or(ENOENT), buf)
    }

    /// `http_header_set`.
    pub(crate) fn header_set(&self, name: &[u8], value: &[u8]) -> i64 {
        self.mutate(name, Some(value), |headers, name, value| {
            let mut value = Some(value.to_vec());
            headers.retain_mut(|(n, v)| {
                if !n.as_bytes().eq_ignore_ascii_case(name.as_bytes()) {
                    return true;
                }
                // The first value is replaced in place (keeping its position), the rest go.
                match value.take() {
                    Some(new) => {
                        n.clone_from(&name);
                        *v = new;
                        true
                    }
                    None => false,
                }
            });
            if let Some(new) = value {
                headers.push((name, new));
            }
        })
    }

    /// `http_header_add`.
    pub(crate) fn header_add(&self, name: &[u8], value: &[u8]) -> i64 {
        self.mutate(name, Some(value), |headers, name, value| headers.push((name, value.to_vec())))
    }

    /// `http_header_remove`.
    pub(crate) fn header_remove(&self, name: &[u8]) -> i64 {
        self.mutate(name, None, |headers, name, _| {
            headers.retain(|(n, _)| !n.as_bytes().eq_ignore_ascii_case(name.as_bytes()));
        })
    }

    /// `http_respond`.
    pub(crate) fn respond(&self, status: u32, body: &[u8]) -> i64 {
        if self.phase == Phase::Route {
            return EPERM;
        }
        if !(200..=599).contains(&status) || body.len() > MAX_RESPONSE_BODY_LEN {
            return EINVAL;
        }
        self.exchange.borrow_mut().outcome.recorded =
            Some(LocalResponse { status: status as u16, body: body.to_vec() });
        0
    }

    /// The checks every mutation makes, in order, then `apply` to the current phase's headers
    /// with the lower-cased name.
    fn mutate(
        &self,
        name: &[u8],
        value: Option<&[u8]>,
        apply: impl FnOnce(&mut Vec<(String, Vec<u8>)>, String, &[u8]),
    ) -> i64 {
        // Pseudo-headers are not tokens, but are refused as not allowed rather than malformed.
        if self.phase == Phase::Route || (name.first() == Some(&b':') && name.len() <= MAX_HEADER_NAME_LEN) {
            return EPERM;
        }
        if !valid_name(name) {
            return EINVAL;
        }
        let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
        if HOP_BY_HOP.contains(&lower.as_str()) {
            return EPERM;
        }
        if let Some(value) = value
            && !valid_value(value)
        {
            return EINVAL;
        }
        let mut ex = self.exchange.borrow_mut();
        if ex.outcome.mutations >= MAX_HEADER_MUTATIONS {
            return E2BIG;
        }
        ex.outcome.mutations += 1;
        let headers = if self.phase == Phase::Response { &mut ex.response_headers } else { &mut ex.request_headers };
        apply(headers, lower, value.unwrap_or_default());
        0
    }
}

/// What the reading helpers leave in `buf` and return, as every executor does: the first
/// `min(len, buf.len())` bytes of the value, zeros after them, and the value's full length; on an
/// error, all zeros and the errno.
fn fill(value: Result<&[u8], i64>, buf: &mut [u8]) -> i64 {
    let (bytes, ret) = match value {
        Ok(value) => (&value[..value.len().min(buf.len())], value.len() as i64),
        Err(errno) => (&[][..], errno),
    };
    buf[..bytes.len()].copy_from_slice(bytes);
    buf[bytes.len()..].fill(0);
    ret
}

/// A header name: 1..=128 bytes of RFC 9110 token characters.
fn valid_name(name: &[u8]) -> bool {
    let tchar = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    (1..=MAX_HEADER_NAME_LEN).contains(&name.len()) && name.iter().all(tchar)
}

/// A header value: at most 4096 bytes, no CR, LF or NUL.
fn valid_value(value: &[u8]) -> bool {
    value.len() <= MAX_HEADER_VALUE_LEN && !value.iter().any(|b| matches!(b, b'\r' | b'\n' | 0))
}
