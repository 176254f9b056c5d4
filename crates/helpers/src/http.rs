//! HTTP programs (docs/ABI.md, "HTTP programs (ABI version 2)"): the context, the exchange a
//! program works on, and the single implementation of the http helpers' rules.
//!
//! Every executor goes through this module, so they agree by construction: duet-vm's helpers
//! 10000..=10005 (interpreter and JIT) and duet-wasm's `http_*` imports map guest memory to
//! slices, then call [`HttpRunState`]'s methods, which validate the arguments, count mutations,
//! call the [`HttpExchange`] and return the value or errno the program sees.
//!
//! The sidecar implements [`HttpExchange`] over one request (or response) and runs a program with
//! `duet_vm::Module::http_runner` (eBPF, interpreter or JIT) or duet-wasm's `Executor::run_http`;
//! both return an [`HttpOutcome`], which [`HttpOutcome::filter_verdict`] and
//! [`HttpOutcome::route_choice`] decode as the ABI says.
//!
//! Order of the checks, identical everywhere: guest pointers first (an out-of-bounds pointer is a
//! trap, before anything else), then, for helpers that change the exchange, the program type
//! (`-EPERM` in route programs), then the arguments (`-EINVAL`), forbidden headers (`-EPERM`),
//! the mutation budget (`-E2BIG`), and last the exchange itself.
//!
//! Buffers the helpers fill (`http_field`, `http_header_get`) are written whole: the value's first
//! `min(len, buf_len)` bytes, then zeros up to `buf_len`, and all zeros when the helper fails, so
//! a program never reads stale bytes from its buffer (the verifier counts the buffer as
//! initialised after the call, as the kernel does for helpers that fill memory).
//!
//! The helpers' ids are below; their names and prototypes are rows of [`crate::table::HELPERS`].

use std::borrow::Cow;
use std::fmt;

/// Helper id of `http_field(ctx, field, buf, buf_len)`.
pub const HTTP_FIELD: u32 = 10000;
/// Helper id of `http_header_get(ctx, name, name_len, buf, buf_len)`.
pub const HTTP_HEADER_GET: u32 = 10001;
/// Helper id of `http_header_set(ctx, name, name_len, value, value_len)`.
pub const HTTP_HEADER_SET: u32 = 10002;
/// Helper id of `http_header_add(ctx, name, name_len, value, value_len)`.
pub const HTTP_HEADER_ADD: u32 = 10003;
/// Helper id of `http_header_remove(ctx, name, name_len)`.
pub const HTTP_HEADER_REMOVE: u32 = 10004;
/// Helper id of `http_respond(ctx, status, body, body_len)`.
pub const HTTP_RESPOND: u32 = 10005;

/// Longest header name, in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// Longest header value, in bytes.
pub const MAX_VALUE_LEN: usize = 4096;
/// Most header mutations (set, add, remove) one run may make.
pub const MAX_MUTATIONS: u32 = 32;
/// Longest body of a local response, in bytes.
pub const MAX_BODY_LEN: usize = 1024;
/// Size of [`HttpMd`], the context.
pub const HTTP_MD_SIZE: usize = 24;

/// Headers that belong to one connection (RFC 9110 §7.6.1, and the ones the sidecar strips):
/// programs cannot set, add or remove them.
pub const HOP_BY_HOP: [&str; 9] = [
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

// === The context ===

/// `struct duet_http_md`, the context of every http program: 24 read-only bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HttpMd {
    /// [`HttpMd::PHASE_REQUEST`] or [`HttpMd::PHASE_RESPONSE`].
    pub phase: u32,
    /// The upstream response status (response programs); `0` otherwise.
    pub status: u32,
    /// The client's IPv4 address in network byte order (as it sits in memory: the first octet is
    /// the lowest byte of the little-endian `u32`); `0` for IPv6.
    pub remote_ip4: u32,
    /// The client's port.
    pub remote_port: u32,
    /// The listener's port.
    pub local_port: u32,
    /// `10`, `11` or `20`.
    pub http_version: u32,
}

impl HttpMd {
    /// `phase` of request-header programs (request filters, route programs).
    pub const PHASE_REQUEST: u32 = 0;
    /// `phase` of response-header programs.
    pub const PHASE_RESPONSE: u32 = 1;

    /// The fields in offset order (field `i` at byte offset `4 * i`).
    pub fn fields(&self) -> [u32; 6] {
        [self.phase, self.status, self.remote_ip4, self.remote_port, self.local_port, self.http_version]
    }

    /// The 24 bytes a program reads (little-endian, as the eBPF and Wasm targets are).
    pub fn to_bytes(&self) -> [u8; HTTP_MD_SIZE] {
        let mut out = [0u8; HTTP_MD_SIZE];
        for (chunk, v) in out.chunks_exact_mut(4).zip(self.fields()) {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// `remote_ip4` for an IPv4 address: its octets in network order.
    pub fn ip4(octets: [u8; 4]) -> u32 {
        u32::from_le_bytes(octets)
    }
}

/// A request field `http_field` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum HttpField {
    /// `0`: the method (`GET`).
    Method = 0,
    /// `1`: the path with its query (`/a?b=c`).
    Path = 1,
    /// `2`: the authority (`example.com:8080`).
    Authority = 2,
    /// `3`: the scheme (`http`, `https`).
    Scheme = 3,
    /// `4`: the client's IP address as 4 or 16 raw bytes.
    ClientIp = 4,
    /// `5`: the name of the listener the request came in on.
    Listener = 5,
    /// `6`: the name of the route chosen for the request.
    Route = 6,
}

impl HttpField {
    /// The field numbered `n`, if it exists.
    pub fn from_raw(n: u64) -> Option<Self> {
        Some(match n {
            0 => HttpField::Method,
            1 => HttpField::Path,
            2 => HttpField::Authority,
            3 => HttpField::Scheme,
            4 => HttpField::ClientIp,
            5 => HttpField::Listener,
            6 => HttpField::Route,
            _ => return None,
        })
    }
}

/// The three http program types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HttpProgram {
    /// `duet/http_request`: runs on request headers; returns 0 (continue) or 1 (respond).
    Request,
    /// `duet/http_response`: runs on response headers; returns 0 or 1.
    Response,
    /// `duet/route`: chooses a cluster and endpoint; may only read the exchange.
    Route,
}

impl HttpProgram {
    /// The http program type of a verified program's type (duet-verifier's `ProgramType`).
    pub fn from_type(ty: impl HttpProgramType) -> Option<Self> {
        ty.http_program()
    }

    /// Whether the program may change the exchange (headers, local response).
    pub fn may_mutate(self) -> bool {
        self != HttpProgram::Route
    }
}

/// A program type that may be one of the http program types. duet-verifier's `ProgramType`
/// implements it, so [`HttpProgram::from_type`] takes a verified program's type while this crate
/// stays below the verifier.
pub trait HttpProgramType {
    /// The http program type, if this is one.
    fn http_program(self) -> Option<HttpProgram>;
}

impl fmt::Display for HttpProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HttpProgram::Request => "http_request",
            HttpProgram::Response => "http_response",
            HttpProgram::Route => "route",
        })
    }
}

// === The exchange ===

/// Why an http helper failed: the program sees [`HttpError::errno`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum HttpError {
    /// No such field or header (`-ENOENT`).
    #[error("no such field or header")]
    NotFound,
    /// A malformed argument: a bad header name or value, an unknown field, a status outside
    /// 200..=599, a body over 1024 bytes (`-EINVAL`).
    #[error("invalid argument")]
    Invalid,
    /// Not allowed: a pseudo or hop-by-hop header, a change from a route program, or no exchange
    /// at all (a program run outside an http exchange) (`-EPERM`).
    #[error("operation not permitted")]
    NotPermitted,
    /// More than [`MAX_MUTATIONS`] header changes in one run (`-E2BIG`).
    #[error("too many header changes in one run")]
    TooManyMutations,
}

impl HttpError {
    /// The negative errno the program sees.
    pub fn errno(self) -> i64 {
        match self {
            HttpError::NotFound => -2,
            HttpError::Invalid => -22,
            HttpError::NotPermitted => -1,
            HttpError::TooManyMutations => -7,
        }
    }
}

/// One HTTP exchange as a program sees it, implemented by the sidecar over its request or
/// response. duet validates every argument before calling a method: names are lower-case RFC
/// 9110 tokens of at most 128 bytes that are neither pseudo nor hop-by-hop headers (for the
/// mutating methods), values are at most 4096 bytes without CR, LF or NUL, statuses are in
/// 200..=599 and bodies at most 1024 bytes. A method may still refuse (e.g. a value its header
/// type cannot hold); the program then sees the error's errno.
pub trait HttpExchange {
    /// A request field's bytes (the client IP as 4 or 16 raw bytes), `None` when absent.
    fn field(&self, field: HttpField) -> Option<Cow<'_, [u8]>>;
    /// The first value of header `name` among the current phase's headers (request headers in
    /// phase 0, response headers in phase 1), `None` when absent.
    fn header(&self, name: &str) -> Option<&[u8]>;
    /// Replaces every value of `name` with `value` (adds it when absent).
    fn set_header(&mut self, name: &str, value: &[u8]) -> Result<(), HttpError>;
    /// Appends one more value of `name`.
    fn add_header(&mut self, name: &str, value: &[u8]) -> Result<(), HttpError>;
    /// Removes every value of `name` (nothing to do when absent is success).
    fn remove_header(&mut self, name: &str) -> Result<(), HttpError>;
    /// Records the local response to send if the program returns `1` (a later call replaces an
    /// earlier one). The sidecar uses it only when the run's verdict is
    /// [`FilterVerdict::Respond`].
    fn respond(&mut self, status: u16, body: &[u8]) -> Result<(), HttpError>;
}

// === One run ===

/// What one run of an http program has done so far: the program type (which decides what it may
/// do), the header changes made and whether `http_respond` succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRunState {
    program: HttpProgram,
    mutations: u32,
    responded: bool,
}

/// A lower-cased, validated header name, on the stack.
struct Name {
    buf: [u8; MAX_NAME_LEN],
    len: usize,
}

impl Name {
    fn as_str(&self) -> &str {
        // Tokens are ASCII (checked in `header_name`), so this cannot fail.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Validates and lower-cases a header name.
fn header_name(name: &[u8]) -> Result<Name, HttpError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN || !name.iter().all(|b| is_tchar(*b)) {
        return Err(HttpError::Invalid);
    }
    let mut buf = [0u8; MAX_NAME_LEN];
    for (d, s) in buf.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    Ok(Name { buf, len: name.len() })
}

/// Validates the name of a header a program wants to change.
fn mutable_header_name(name: &[u8]) -> Result<Name, HttpError> {
    // Pseudo-headers (`:path`) are not tokens, but say what they are: not allowed, not malformed.
    if name.first() == Some(&b':') && name.len() <= MAX_NAME_LEN {
        return Err(HttpError::NotPermitted);
    }
    let name = header_name(name)?;
    if HOP_BY_HOP.contains(&name.as_str()) {
        return Err(HttpError::NotPermitted);
    }
    Ok(name)
}

fn header_value(value: &[u8]) -> Result<&[u8], HttpError> {
    if value.len() > MAX_VALUE_LEN || value.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(HttpError::Invalid);
    }
    Ok(value)
}

impl HttpRunState {
    /// The state at the start of a run of a `program`.
    pub fn new(program: HttpProgram) -> Self {
        HttpRunState { program, mutations: 0, responded: false }
    }

    /// The program type the run enforces.
    pub fn program(&self) -> HttpProgram {
        self.program
    }

    /// Header changes made so far.
    pub fn mutations(&self) -> u32 {
        self.mutations
    }

    /// Whether `http_respond` succeeded during the run.
    pub fn responded(&self) -> bool {
        self.responded
    }

    /// `http_field`: the field's bytes.
    pub fn field<'x>(&mut self, ex: &'x dyn HttpExchange, field: u64) -> Result<Cow<'x, [u8]>, HttpError> {
        let field = HttpField::from_raw(field).ok_or(HttpError::Invalid)?;
        ex.field(field).ok_or(HttpError::NotFound)
    }

    /// `http_header_get`: the first value of `name` in the current phase's headers.
    pub fn header_get<'x>(&mut self, ex: &'x dyn HttpExchange, name: &[u8]) -> Result<&'x [u8], HttpError> {
        let name = header_name(name)?;
        ex.header(name.as_str()).ok_or(HttpError::NotFound)
    }

    /// `http_header_set`.
    pub fn header_set(&mut self, ex: &mut dyn HttpExchange, name: &[u8], value: &[u8]) -> Result<(), HttpError> {
        let (name, value) = self.check_change(name, Some(value))?;
        ex.set_header(name.as_str(), value)?;
        self.mutations += 1;
        Ok(())
    }

    /// `http_header_add`.
    pub fn header_add(&mut self, ex: &mut dyn HttpExchange, name: &[u8], value: &[u8]) -> Result<(), HttpError> {
        let (name, value) = self.check_change(name, Some(value))?;
        ex.add_header(name.as_str(), value)?;
        self.mutations += 1;
        Ok(())
    }

    /// `http_header_remove`.
    pub fn header_remove(&mut self, ex: &mut dyn HttpExchange, name: &[u8]) -> Result<(), HttpError> {
        let (name, _) = self.check_change(name, None)?;
        ex.remove_header(name.as_str())?;
        self.mutations += 1;
        Ok(())
    }

    /// `http_respond`: records the local response.
    pub fn respond(&mut self, ex: &mut dyn HttpExchange, status: u64, body: &[u8]) -> Result<(), HttpError> {
        if !self.program.may_mutate() {
            return Err(HttpError::NotPermitted);
        }
        if !(200..=599).contains(&status) || body.len() > MAX_BODY_LEN {
            return Err(HttpError::Invalid);
        }
        ex.respond(status as u16, body)?;
        self.responded = true;
        Ok(())
    }

    fn check_change<'v>(&self, name: &[u8], value: Option<&'v [u8]>) -> Result<(Name, &'v [u8]), HttpError> {
        if !self.program.may_mutate() {
            return Err(HttpError::NotPermitted);
        }
        let name = mutable_header_name(name)?;
        let value = header_value(value.unwrap_or(&[]))?;
        if self.mutations >= MAX_MUTATIONS {
            return Err(HttpError::TooManyMutations);
        }
        Ok((name, value))
    }
}

/// What a helper that changes the exchange (`http_header_set`, `_add`, `_remove`,
/// `http_respond`) returns: `0`, or the error's negative errno.
pub fn change_result(res: Result<(), HttpError>) -> i64 {
    res.map_or_else(HttpError::errno, |()| 0)
}

/// What `http_field` and `http_header_get` put in a program's buffer of `buf_len` bytes, and
/// return: the first `min(len, buf_len)` bytes of the value (the rest of the buffer is zeroed)
/// and the value's full length; on error, nothing (the whole buffer is zeroed) and the errno.
pub fn buffer_result(result: Result<&[u8], HttpError>, buf_len: usize) -> (&[u8], i64) {
    match result {
        Ok(value) => (&value[..value.len().min(buf_len)], value.len() as i64),
        Err(e) => (&[], e.errno()),
    }
}

/// [`buffer_result`] applied to a host slice: fills `buf` and returns what the helper returns.
pub fn fill_buffer(result: Result<&[u8], HttpError>, buf: &mut [u8]) -> i64 {
    let (bytes, ret) = buffer_result(result, buf.len());
    buf[..bytes.len()].copy_from_slice(bytes);
    buf[bytes.len()..].fill(0);
    ret
}

/// What a run of an http program returned, with what it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpOutcome {
    /// The return value: `r0` as a signed 64-bit integer (eBPF), the export's result (Wasm;
    /// filters' `i32` sign-extended).
    pub ret: i64,
    /// Whether `http_respond` succeeded.
    pub responded: bool,
    /// Header changes made.
    pub mutations: u32,
}

/// What a request or response filter decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterVerdict {
    /// `0`: go on (header changes stay).
    Continue,
    /// `1` after a successful `http_respond`: send the response the exchange recorded.
    Respond,
    /// `1` without a successful `http_respond`: answer `403` with an empty body.
    Forbidden,
}

/// What a route program chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteChoice {
    /// A negative return: use the route's own cluster and balancer.
    Decline,
    /// An index into the route's `clusters` list, and an endpoint index in that cluster (`None`:
    /// the cluster's balancer chooses). The sidecar checks that both exist.
    Pick {
        /// Bits 32..63 of the return value.
        cluster: u32,
        /// Bits 0..31; `0xffff_ffff` is `None`.
        endpoint: Option<u32>,
    },
}

/// A filter returned something other than `0` or `1`: a fault of the filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the filter returned {0}; http filters return 0 (continue) or 1 (respond)")]
pub struct BadReturn(pub i64);

impl HttpOutcome {
    /// The verdict of a request or response filter.
    pub fn filter_verdict(&self) -> Result<FilterVerdict, BadReturn> {
        match self.ret {
            0 => Ok(FilterVerdict::Continue),
            1 if self.responded => Ok(FilterVerdict::Respond),
            1 => Ok(FilterVerdict::Forbidden),
            other => Err(BadReturn(other)),
        }
    }

    /// The choice of a route program.
    pub fn route_choice(&self) -> RouteChoice {
        if self.ret < 0 {
            return RouteChoice::Decline;
        }
        let endpoint = self.ret as u32;
        RouteChoice::Pick { cluster: (self.ret >> 32) as u32, endpoint: (endpoint != u32::MAX).then_some(endpoint) }
    }
}

// === An exchange in memory ===

/// An exchange held in memory: request fields, the current phase's headers in order, the local
/// response and a log of every change, for tests, tools (`duet run`) and differential checks
/// between executors. Header names are stored as given (duet passes them lower-cased).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryExchange {
    /// Request fields by number ([`HttpField`] as `u32`).
    pub fields: Vec<(u32, Vec<u8>)>,
    /// The current phase's headers, in order; a name may repeat.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The local response the program recorded.
    pub response: Option<(u16, Vec<u8>)>,
    /// Every change, in order: `set name=value`, `add name=value`, `remove name`, `respond N`.
    pub log: Vec<String>,
}

impl MemoryExchange {
    /// An exchange with these fields and headers.
    pub fn new<'a>(
        fields: impl IntoIterator<Item = (HttpField, &'a [u8])>,
        headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Self {
        MemoryExchange {
            fields: fields.into_iter().map(|(f, v)| (f as u32, v.to_vec())).collect(),
            headers: headers.into_iter().map(|(n, v)| (n.to_owned(), v.to_vec())).collect(),
            ..MemoryExchange::default()
        }
    }

    /// Every value of header `name`, in order.
    pub fn values(&self, name: &str) -> Vec<&[u8]> {
        self.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_slice()).collect()
    }
}

impl HttpExchange for MemoryExchange {
    fn field(&self, field: HttpField) -> Option<Cow<'_, [u8]>> {
        self.fields.iter().find(|(f, _)| *f == field as u32).map(|(_, v)| Cow::Borrowed(v.as_slice()))
    }

    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }

    fn set_header(&mut self, name: &str, value: &[u8]) -> Result<(), HttpError> {
        self.log.push(format!("set {name}={}", String::from_utf8_lossy(value)));
        self.headers.retain(|(n, _)| n != name);
        self.headers.push((name.to_owned(), value.to_vec()));
        Ok(())
    }

    fn add_header(&mut self, name: &str, value: &[u8]) -> Result<(), HttpError> {
        self.log.push(format!("add {name}={}", String::from_utf8_lossy(value)));
        self.headers.push((name.to_owned(), value.to_vec()));
        Ok(())
    }

    fn remove_header(&mut self, name: &str) -> Result<(), HttpError> {
        self.log.push(format!("remove {name}"));
        self.headers.retain(|(n, _)| n != name);
        Ok(())
    }

    fn respond(&mut self, status: u16, body: &[u8]) -> Result<(), HttpError> {
        self.log.push(format!("respond {status}"));
        self.response = Some((status, body.to_vec()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENOENT: i64 = -2;
    const EINVAL: i64 = -22;
    const EPERM: i64 = -1;
    const E2BIG: i64 = -7;

    fn code(res: Result<(), HttpError>) -> i64 {
        res.map_or_else(HttpError::errno, |()| 0)
    }

    fn exchange() -> MemoryExchange {
        MemoryExchange::new(
            [(HttpField::Method, &b"GET"[..]), (HttpField::ClientIp, &[10, 0, 0, 1][..])],
            [("x-user", &b"ada"[..]), ("accept", &b"*/*"[..]), ("x-user", &b"bob"[..])],
        )
    }

    #[test]
    fn fields_and_headers_read_with_kernel_errnos() {
        let ex = exchange();
        let mut run = HttpRunState::new(HttpProgram::Route);
        assert_eq!(run.field(&ex, 0).as_deref(), Ok(&b"GET"[..]));
        assert_eq!(run.field(&ex, 4).as_deref(), Ok(&[10, 0, 0, 1][..]));
        assert_eq!(run.field(&ex, 6).map(drop), Err(HttpError::NotFound));
        assert_eq!(run.field(&ex, 7).map(drop), Err(HttpError::Invalid));
        assert_eq!(run.field(&ex, 1 << 32).map(drop), Err(HttpError::Invalid), "the whole 64-bit field number counts");
        // Case-insensitive names, first value.
        assert_eq!(run.header_get(&ex, b"X-User"), Ok(&b"ada"[..]));
        assert_eq!(run.header_get(&ex, b"x-absent"), Err(HttpError::NotFound));
        for bad in [&b""[..], b"a b", b"x:y", b":path", b"caf\xc3\xa9", &[b'a'; 129]] {
            assert_eq!(run.header_get(&ex, bad), Err(HttpError::Invalid), "{bad:?}");
        }
        assert!(
            run.header_get(&ex, &[b'a'; 128]).is_err_and(|e| e == HttpError::NotFound),
            "128 bytes is a valid name"
        );
        assert_eq!(HttpError::NotFound.errno(), ENOENT);
    }

    #[test]
    fn changes_are_validated_lower_cased_and_counted() {
        let mut ex = exchange();
        let mut run = HttpRunState::new(HttpProgram::Request);
        assert_eq!(code(run.header_set(&mut ex, b"X-User", b"eve")), 0);
        assert_eq!(ex.values("x-user"), [b"eve"]);
        assert_eq!(code(run.header_add(&mut ex, b"X-Tag", b"")), 0, "empty values are values");
        assert_eq!(code(run.header_remove(&mut ex, b"accept")), 0);
        assert_eq!(code(run.header_remove(&mut ex, b"never-there")), 0, "removing an absent header succeeds");
        assert_eq!(run.mutations(), 4);
        // Malformed names and values: -EINVAL, not counted, exchange untouched.
        let log = ex.log.clone();
        for (name, value) in [
            (&b"bad name"[..], &b"v"[..]),
            (b"", b"v"),
            (&[b'n'; 129], b"v"),
            (b"x-ok", b"a\r\nb"),
            (b"x-ok", b"a\nb"),
            (b"x-ok", b"a\0b"),
            (b"x-ok", &[b'v'; MAX_VALUE_LEN + 1]),
        ] {
            assert_eq!(code(run.header_set(&mut ex, name, value)), EINVAL, "{name:?}={value:?}");
            assert_eq!(code(run.header_add(&mut ex, name, value)), EINVAL, "{name:?}={value:?}");
        }
        assert_eq!(code(run.header_set(&mut ex, b"x-ok", &[b'v'; MAX_VALUE_LEN])), 0, "4096 bytes is a valid value");
        assert_eq!(code(run.header_add(&mut ex, b"x-ok", b"tab\tand \x01 are allowed")), 0);
        // Pseudo and hop-by-hop headers: -EPERM, whatever the case.
        for name in
            [&b":path"[..], b":authority", b"Connection", b"TRANSFER-ENCODING", b"keep-alive", b"te", b"upgrade"]
        {
            assert_eq!(code(run.header_set(&mut ex, name, b"x")), EPERM, "{name:?}");
            assert_eq!(code(run.header_remove(&mut ex, name)), EPERM, "{name:?}");
        }
        assert_eq!(ex.log.len(), log.len() + 2);
        assert_eq!(run.mutations(), 6);
    }

    #[test]
    fn at_most_32_changes_per_run() {
        let mut ex = MemoryExchange::default();
        let mut run = HttpRunState::new(HttpProgram::Response);
        let results: Vec<i64> = (0..40).map(|_| code(run.header_add(&mut ex, b"x-n", b"1"))).collect();
        assert_eq!(results[..32], [0; 32]);
        assert_eq!(results[32..], [E2BIG; 8]);
        assert_eq!(ex.values("x-n").len(), 32);
        assert_eq!(code(run.header_remove(&mut ex, b"x-n")), E2BIG, "removal counts too");
        // Argument errors are reported before the budget.
        assert_eq!(code(run.header_set(&mut ex, b"bad name", b"v")), EINVAL);
        // A fresh run has a fresh budget.
        assert_eq!(code(HttpRunState::new(HttpProgram::Response).header_remove(&mut ex, b"x-n")), 0);
    }

    #[test]
    fn respond_checks_status_and_body_and_is_remembered() {
        let mut ex = MemoryExchange::default();
        let mut run = HttpRunState::new(HttpProgram::Request);
        for status in [0, 199, 600, 1 << 32 | 200] {
            assert_eq!(code(run.respond(&mut ex, status, b"")), EINVAL, "{status}");
        }
        assert_eq!(code(run.respond(&mut ex, 200, &[0; MAX_BODY_LEN + 1])), EINVAL);
        assert!(!run.responded());
        assert_eq!(code(run.respond(&mut ex, 429, b"slow down")), 0);
        assert_eq!(code(run.respond(&mut ex, 599, &[7; MAX_BODY_LEN])), 0);
        assert!(run.responded());
        assert_eq!(ex.response, Some((599, vec![7; MAX_BODY_LEN])), "the last response wins");
        assert_eq!(run.mutations(), 0, "responding is not a header change");
    }

    #[test]
    fn route_programs_may_only_read() {
        let mut ex = exchange();
        let mut run = HttpRunState::new(HttpProgram::Route);
        assert_eq!(code(run.header_set(&mut ex, b"x-a", b"b")), EPERM);
        assert_eq!(code(run.header_add(&mut ex, b"bad name", b"b")), EPERM, "the program type is checked first");
        assert_eq!(code(run.header_remove(&mut ex, b"x-user")), EPERM);
        assert_eq!(code(run.respond(&mut ex, 200, b"")), EPERM);
        assert_eq!(ex, exchange(), "nothing changed");
        assert!(!run.responded());
    }

    #[test]
    fn buffers_get_the_value_then_zeros() {
        let mut buf = [0xaa; 6];
        assert_eq!(fill_buffer(Ok(b"abc"), &mut buf), 3);
        assert_eq!(buf, *b"abc\0\0\0");
        let mut buf = [0xaa; 2];
        assert_eq!(fill_buffer(Ok(b"abc"), &mut buf), 3, "the full length, truncated copy");
        assert_eq!(buf, *b"ab");
        let mut buf = [0xaa; 4];
        assert_eq!(fill_buffer(Err(HttpError::NotFound), &mut buf), ENOENT);
        assert_eq!(buf, [0; 4]);
        assert_eq!(fill_buffer(Ok(b"abc"), &mut []), 3, "a zero-length buffer asks for the length");
    }

    #[test]
    fn outcomes_decode_as_the_abi_says() {
        let out = |ret, responded| HttpOutcome { ret, responded, mutations: 0 };
        assert_eq!(out(0, true).filter_verdict(), Ok(FilterVerdict::Continue));
        assert_eq!(out(1, true).filter_verdict(), Ok(FilterVerdict::Respond));
        assert_eq!(out(1, false).filter_verdict(), Ok(FilterVerdict::Forbidden));
        assert_eq!(out(2, false).filter_verdict(), Err(BadReturn(2)));
        assert_eq!(out(-1, false).filter_verdict(), Err(BadReturn(-1)));
        assert_eq!(out(-1, false).route_choice(), RouteChoice::Decline);
        assert_eq!(out(i64::MIN, false).route_choice(), RouteChoice::Decline);
        assert_eq!(out(0, false).route_choice(), RouteChoice::Pick { cluster: 0, endpoint: Some(0) });
        assert_eq!(out(0x2_0000_0003, false).route_choice(), RouteChoice::Pick { cluster: 2, endpoint: Some(3) });
        assert_eq!(out(0x1_ffff_ffff, false).route_choice(), RouteChoice::Pick { cluster: 1, endpoint: None });
    }

    #[test]
    fn the_context_is_24_little_endian_bytes() {
        assert_eq!(std::mem::size_of::<HttpMd>(), HTTP_MD_SIZE);
        let md = HttpMd {
            phase: 1,
            status: 503,
            remote_ip4: HttpMd::ip4([10, 0, 0, 1]),
            remote_port: 40000,
            local_port: 8080,
            http_version: 20,
        };
        let bytes = md.to_bytes();
        assert_eq!(bytes[8..12], [10, 0, 0, 1], "network byte order in memory");
        assert_eq!(u32::from_le_bytes(bytes[4..8].try_into().unwrap()), 503);
        assert_eq!(u32::from_le_bytes(bytes[20..24].try_into().unwrap()), 20);
    }
}
