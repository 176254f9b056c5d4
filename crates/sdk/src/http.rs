//! HTTP programs: request filters, response filters and route programs, run by duet's sidecar
//! (`duet mesh`) on one HTTP exchange. They are userspace only (the kernel never runs them), but
//! are written and built exactly like packet programs: one source, a `.bpf.o` for duet's eBPF VM
//! and a `.wasm` for the Wasm host (docs/ABI.md, "HTTP programs").
//!
//! ```
//! use duet::{HttpAction, HttpContext, Route, RouteContext};
//!
//! #[duet::http_request]
//! fn require_token(req: HttpContext) -> HttpAction {
//!     match req.header("authorization") {
//!         Some(value) if value.starts_with(b"Bearer ") => {
//!             let _ = req.set_header("x-authenticated", b"1");
//!             HttpAction::Continue
//!         }
//!         _ => req.respond(401, b"no token"),
//!     }
//! }
//!
//! #[duet::route]
//! fn pick(req: RouteContext) -> Route {
//!     if req.path().starts_with(b"/v2/") { Route::cluster(1) } else { Route::Decline }
//! }
//!
//! use duet::testing::{HttpExchange, run_http_request, run_route};
//! let mut ex = HttpExchange::get("/").with_header("authorization", "Bearer x");
//! assert_eq!(run_http_request(require_token, &mut ex), HttpAction::Continue);
//! assert_eq!(ex.request_header("x-authenticated"), Some(&b"1"[..]));
//! assert_eq!(run_route(pick, &HttpExchange::get("/v2/users")), Route::cluster(1));
//! ```
//!
//! # Reading without allocating
//!
//! Fields and header values are copied out of the exchange by the executor, into memory the
//! program owns: a [`Text`] (a small fixed-capacity value, on the stack) or a buffer the caller
//! passes (`header_into`, `field_into`). Nothing allocates or panics, and every loop over the
//! bytes is bounded by a compile-time capacity, so the eBPF side passes the verifier. Compare
//! with [`Text`]'s methods (`==`, [`Text::starts_with`], [`Text::eq_ignore_ascii_case`]) rather
//! than slice equality, which compiles to a `memcmp` call the BPF target does not have.
//!
//! # What the executors refuse
//!
//! Header names are 1..=128 token characters (stored lower-case); values at most 4096 bytes
//! without CR, LF or NUL ([`Errno::EINVAL`]); pseudo-headers and hop-by-hop headers cannot be
//! mutated ([`Errno::EPERM`]); a run makes at most 32 header mutations ([`Errno::E2BIG`]); a
//! local response has a status in 200..=599 and a body of at most 1024 bytes. `duet::testing`
//! applies the same rules, so `cargo test` finds what the sidecar would refuse.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::{Errno, sys};

/// Header names are at most this many bytes.
pub const MAX_HEADER_NAME_LEN: usize = 128;
/// Header values are at most this many bytes.
pub const MAX_HEADER_VALUE_LEN: usize = 4096;
/// A run makes at most this many header mutations (set, add, remove).
pub const MAX_HEADER_MUTATIONS: usize = 32;
/// A local response's body is at most this many bytes.
pub const MAX_RESPONSE_BODY_LEN: usize = 1024;

/// What the proxy does after a request or response filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum HttpAction {
    /// Go on: the next filter, then the upstream (request) or the client (response).
    Continue = 0,
    /// Answer the client with the local response recorded by [`HttpContext::respond`] (`403`
    /// with an empty body if there is none) instead of going on.
    Respond = 1,
}

impl HttpAction {
    /// The action for a raw return value (`None` for anything but 0 and 1, which the proxy
    /// treats as a fault of the filter).
    pub const fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            0 => Some(HttpAction::Continue),
            1 => Some(HttpAction::Respond),
            _ => None,
        }
    }
}

/// A request field, as `http_field` numbers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum HttpField {
    /// The method (`GET`, ...).
    Method = 0,
    /// The path with the query (`/a/b?c=d`).
    Path = 1,
    /// The authority (`:authority`, or `Host` in HTTP/1); absent in an HTTP/1.0 request without
    /// `Host`.
    Authority = 2,
    /// The scheme (`http`, `https`).
    Scheme = 3,
    /// The client's address: 4 or 16 raw bytes.
    ClientIp = 4,
    /// The name of the listener that accepted the connection.
    Listener = 5,
    /// The name of the route the request matched; absent before routing.
    Route = 6,
}

/// The `u32` fields of `struct duet_http_md`, by index.
mod md {
    pub(super) const PHASE: usize = 0;
    pub(super) const STATUS: usize = 1;
    pub(super) const REMOTE_IP4: usize = 2;
    pub(super) const REMOTE_PORT: usize = 3;
    pub(super) const LOCAL_PORT: usize = 4;
    pub(super) const HTTP_VERSION: usize = 5;
    /// `phase` of a response filter.
    pub(super) const PHASE_RESPONSE: u32 = 1;
}

// === Text ===

/// Up to `N` bytes of a field or header value copied out of the exchange, with the value's full
/// length: a value longer than `N` is truncated ([`Text::is_truncated`]) and then equals
/// nothing. Lives on the stack; keep `N` small in BPF programs (the stack is 512 bytes).
#[derive(Clone, Copy)]
#[repr(C, align(8))]
pub struct Text<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Text<N> {
    /// An empty text (all bytes zero, written without a `memset`; see [`crate::zeroed`]).
    #[inline(always)]
    pub fn empty() -> Self {
        let mut slot = core::mem::MaybeUninit::<Self>::uninit();
        Self::zero_in(&mut slot);
        crate::pod::hide_contents(&mut slot);
        // SAFETY: `zero_in` initialized it.
        unsafe { slot.assume_init() }
    }

    /// Zeroes the text in `slot` where it is, with stores LLVM cannot turn into a `memset`
    /// call (absent in BPF), and returns it. Filling it there (rather than copying a zeroed
    /// text in) also spares a copy LLVM would turn into a `memset` again.
    #[inline(always)]
    fn zero_in(slot: &mut core::mem::MaybeUninit<Self>) -> &mut Self {
        // SAFETY: the slot is `size_of::<Self>()` writable bytes aligned to 8; all zero, it is
        // a valid (empty) text.
        unsafe {
            crate::pod::write_zeros(slot.as_mut_ptr().cast(), size_of::<Self>(), align_of::<Self>());
            slot.assume_init_mut()
        }
    }

    /// The bytes that were copied: the whole value, or its first `N` bytes if it is longer.
    #[inline(always)]
    pub fn as_bytes(&self) -> &[u8] {
        let n = if self.len < N { self.len } else { N };
        self.bytes.get(..n).unwrap_or(&[])
    }

    /// The value's full length (which may exceed `N`).
    #[inline(always)]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the value is empty.
    #[inline(always)]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the value is longer than `N` bytes, so [`Text::as_bytes`] holds only its start.
    #[inline(always)]
    pub const fn is_truncated(&self) -> bool {
        self.len > N
    }

    /// Whether the value is exactly `other` (never, if it was truncated).
    #[inline(always)]
    pub fn eq_bytes(&self, other: &[u8]) -> bool {
        if self.len != other.len() || self.is_truncated() {
            return false;
        }
        // A byte loop, not slice equality, which would call `memcmp` (absent in BPF).
        self.as_bytes().iter().zip(other).all(|(a, b)| a == b)
    }

    /// Whether the value is `other`, ignoring ASCII case (never, if it was truncated).
    #[inline(always)]
    pub fn eq_ignore_ascii_case(&self, other: &[u8]) -> bool {
        if self.len != other.len() || self.is_truncated() {
            return false;
        }
        self.as_bytes().iter().zip(other).all(|(a, b)| a.eq_ignore_ascii_case(b))
    }

    /// Whether the value starts with `prefix` (which must fit in the copied bytes).
    #[inline(always)]
    pub fn starts_with(&self, prefix: &[u8]) -> bool {
        let bytes = self.as_bytes();
        bytes.len() >= prefix.len() && bytes.iter().zip(prefix).all(|(a, b)| a == b)
    }

    /// The value as a decimal number of at most 19 digits, without sign or spaces; `None` if it
    /// is anything else.
    #[inline(always)]
    pub fn parse_u64(&self) -> Option<u64> {
        // 19 digits always fit in a `u64`, so plain arithmetic cannot overflow (checked `u64`
        // multiplication needs a 128-bit multiply, which the BPF target lacks).
        if self.is_empty() || self.len > 19 {
            return None;
        }
        let mut n: u64 = 0;
        for &b in self.as_bytes() {
            if !b.is_ascii_digit() {
                return None;
            }
            n = n * 10 + u64::from(b - b'0');
        }
        Some(n)
    }

    /// The buffer a helper writes the value into.
    #[inline(always)]
    fn buf_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }
}

impl<const N: usize> Default for Text<N> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<const N: usize> core::fmt::Debug for Text<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("\"")?;
        for chunk in self.as_bytes().utf8_chunks() {
            for c in chunk.valid().chars() {
                core::fmt::Display::fmt(&c.escape_debug(), f)?;
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        f.write_str("\"")?;
        if self.is_truncated() {
            write!(f, "... ({} bytes)", self.len)?;
        }
        Ok(())
    }
}

impl<const N: usize> PartialEq<[u8]> for Text<N> {
    #[inline(always)]
    fn eq(&self, other: &[u8]) -> bool {
        self.eq_bytes(other)
    }
}

impl<const N: usize> PartialEq<&[u8]> for Text<N> {
    #[inline(always)]
    fn eq(&self, other: &&[u8]) -> bool {
        self.eq_bytes(other)
    }
}

impl<const N: usize, const M: usize> PartialEq<[u8; M]> for Text<N> {
    #[inline(always)]
    fn eq(&self, other: &[u8; M]) -> bool {
        self.eq_bytes(other)
    }
}

impl<const N: usize, const M: usize> PartialEq<&[u8; M]> for Text<N> {
    #[inline(always)]
    fn eq(&self, other: &&[u8; M]) -> bool {
        self.eq_bytes(*other)
    }
}

impl<const N: usize> PartialEq<str> for Text<N> {
    #[inline(always)]
    fn eq(&self, other: &str) -> bool {
        self.eq_bytes(other.as_bytes())
    }
}

impl<const N: usize> PartialEq<&str> for Text<N> {
    #[inline(always)]
    fn eq(&self, other: &&str) -> bool {
        self.eq_bytes(other.as_bytes())
    }
}

// === the contexts ===

/// The exchange a request or response filter (`#[duet::http_request]`,
/// `#[duet::http_response]`) sees: the request's fields, the current phase's headers (the
/// request's in a request filter, the response's in a response filter), which it may change, and
/// a local response it may answer with instead.
#[derive(Clone, Copy)]
pub struct HttpContext<'a> {
    raw: sys::HttpCtx<'a>,
}

/// The request a route program (`#[duet::route]`) sees: read-only, before any request filter ran.
#[derive(Clone, Copy)]
pub struct RouteContext<'a> {
    raw: sys::HttpCtx<'a>,
}

/// The read accessors, the same on both contexts.
macro_rules! readers {
    ($ty:ident) => {
        impl<'a> $ty<'a> {
            #[inline(always)]
            pub(crate) fn from_sys(raw: sys::HttpCtx<'a>) -> Self {
                $ty { raw }
            }

            /// Copies request field `field` into `buf` (its first `buf.len()` bytes if longer)
            /// and returns the field's full length; [`Errno::ENOENT`] if the request has none.
            #[inline(always)]
            pub fn field_into(&self, field: HttpField, buf: &mut [u8]) -> Result<usize, Errno> {
                let ret = self.raw.field(field as u32, buf);
                Errno::from_ret(ret).map(|()| ret as usize)
            }

            /// Request field `field` as a [`Text`] of capacity `N`; `None` if absent.
            #[inline(always)]
            pub fn field<const N: usize>(&self, field: HttpField) -> Option<Text<N>> {
                let mut slot = core::mem::MaybeUninit::uninit();
                let text = Text::<N>::zero_in(&mut slot);
                text.len = self.field_into(field, text.buf_mut()).ok()?;
                Some(*text)
            }

            /// The method (`GET`, ...).
            #[inline(always)]
            pub fn method(&self) -> Text<16> {
                self.field(HttpField::Method).unwrap_or_default()
            }

            /// The path with the query, its first 64 bytes (see [`Text::is_truncated`]; use
            /// [`field_into`](Self::field_into) with [`HttpField::Path`] for longer ones).
            #[inline(always)]
            pub fn path(&self) -> Text<64> {
                self.field(HttpField::Path).unwrap_or_default()
            }

            /// The scheme (`http`, `https`).
            #[inline(always)]
            pub fn scheme(&self) -> Text<16> {
                self.field(HttpField::Scheme).unwrap_or_default()
            }

            /// The authority (host and optional port), if the request has one.
            #[inline(always)]
            pub fn authority(&self) -> Option<Text<64>> {
                self.field(HttpField::Authority)
            }

            /// The name of the listener that accepted the connection.
            #[inline(always)]
            pub fn listener(&self) -> Option<Text<64>> {
                self.field(HttpField::Listener)
            }

            /// The name of the route the request matched.
            #[inline(always)]
            pub fn route(&self) -> Option<Text<64>> {
                self.field(HttpField::Route)
            }

            /// The client's IPv4 address from the context, without a helper call; `None` for
            /// IPv6 clients.
            #[inline(always)]
            pub fn client_ip4(&self) -> Option<[u8; 4]> {
                let ip = self.raw.md(md::REMOTE_IP4);
                // Network byte order in memory: the bytes in memory order are the octets.
                (ip != 0).then(|| ip.to_ne_bytes())
            }

            /// The client's address (IPv4 from the context, IPv6 through `http_field`).
            #[inline(always)]
            pub fn client_ip(&self) -> Option<IpAddr> {
                if let Some(octets) = self.client_ip4() {
                    return Some(IpAddr::V4(Ipv4Addr::from(octets)));
                }
                let raw = self.field::<16>(HttpField::ClientIp)?;
                match raw.len() {
                    16 => Some(IpAddr::V6(Ipv6Addr::from(raw.bytes))),
                    4 => Some(IpAddr::V4(Ipv4Addr::new(raw.bytes[0], raw.bytes[1], raw.bytes[2], raw.bytes[3]))),
                    _ => None,
                }
            }

            /// The client's port.
            #[inline(always)]
            pub fn client_port(&self) -> u16 {
                self.raw.md(md::REMOTE_PORT) as u16
            }

            /// The listener's port.
            #[inline(always)]
            pub fn local_port(&self) -> u16 {
                self.raw.md(md::LOCAL_PORT) as u16
            }

            /// The HTTP version: `10`, `11` or `20`.
            #[inline(always)]
            pub fn http_version(&self) -> u32 {
                self.raw.md(md::HTTP_VERSION)
            }

            /// Copies the first value of header `name` (any case) into `buf` (its first
            /// `buf.len()` bytes if longer) and returns the value's full length;
            /// [`Errno::ENOENT`] if absent, [`Errno::EINVAL`] if `name` is not a header name.
            #[inline(always)]
            pub fn header_into(&self, name: &str, buf: &mut [u8]) -> Result<usize, Errno> {
                let ret = self.raw.header_get(name.as_bytes(), buf);
                Errno::from_ret(ret).map(|()| ret as usize)
            }

            /// The first value of header `name` (any case), its first 64 bytes (see
            /// [`Text::is_truncated`]); `None` if absent.
            #[inline(always)]
            pub fn header(&self, name: &str) -> Option<Text<64>> {
                let mut slot = core::mem::MaybeUninit::uninit();
                let text = Text::<64>::zero_in(&mut slot);
                text.len = self.header_into(name, text.buf_mut()).ok()?;
                Some(*text)
            }

            /// Whether header `name` is present.
            #[inline(always)]
            pub fn has_header(&self, name: &str) -> bool {
                // A real (stack) buffer even though nothing needs copying: a verifier wants a
                // pointer to memory, not the dangling pointer of an empty slice.
                let mut byte = [0u8; 1];
                self.header_into(name, &mut byte).is_ok()
            }
        }

        impl core::fmt::Debug for $ty<'_> {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.debug_struct(stringify!($ty)).finish_non_exhaustive()
            }
        }
    };
}

readers!(HttpContext);
readers!(RouteContext);

impl HttpContext<'_> {
    /// The upstream's response status in a response filter; `None` in a request filter.
    #[inline(always)]
    pub fn status(&self) -> Option<u16> {
        (self.raw.md(md::PHASE) == md::PHASE_RESPONSE).then(|| self.raw.md(md::STATUS) as u16)
    }

    /// Replaces every value of header `name` with `value` (adds it if absent).
    ///
    /// [`Errno::EINVAL`] for an invalid name or value, [`Errno::EPERM`] for pseudo-headers and
    /// hop-by-hop headers, [`Errno::E2BIG`] after 32 mutations in this run.
    #[inline(always)]
    pub fn set_header(&self, name: &str, value: &[u8]) -> Result<(), Errno> {
        Errno::from_ret(self.raw.header_set(name.as_bytes(), value))
    }

    /// Appends one more value of header `name`; errors as [`set_header`](Self::set_header).
    #[inline(always)]
    pub fn add_header(&self, name: &str, value: &[u8]) -> Result<(), Errno> {
        Errno::from_ret(self.raw.header_add(name.as_bytes(), value))
    }

    /// Removes every value of header `name` (succeeds when there is none); errors as
    /// [`set_header`](Self::set_header).
    #[inline(always)]
    pub fn remove_header(&self, name: &str) -> Result<(), Errno> {
        Errno::from_ret(self.raw.header_remove(name.as_bytes()))
    }

    /// Records the local response `status` with `body` and returns [`HttpAction::Respond`]: the
    /// proxy answers the client with it instead of going on. A status outside 200..=599 or a
    /// body over 1024 bytes is refused, and the proxy then answers `403` with an empty body.
    #[inline(always)]
    pub fn respond(&self, status: u16, body: &[u8]) -> HttpAction {
        let _ = self.raw.respond(u32::from(status), body);
        HttpAction::Respond
    }
}

// === route programs ===

/// Where a route program sends a request.
///
/// Cluster indices count the route's `clusters` list in the sidecar's config, from 0; endpoint
/// indices the endpoints of that cluster. An index that does not exist is an error the proxy
/// counts and logs, falling back to the route's own cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    /// No opinion: the route's own cluster and balancer.
    Decline,
    /// Cluster `index`; its balancer picks the endpoint.
    Cluster(u32),
    /// A given endpoint of a cluster.
    Endpoint {
        /// The index in the route's `clusters`.
        cluster: u32,
        /// The endpoint's index within the cluster.
        endpoint: u32,
    },
}

/// The endpoint index meaning "the cluster's balancer chooses".
const ANY_ENDPOINT: u32 = u32::MAX;

impl Route {
    /// Endpoint `endpoint` of cluster `cluster` (`u32::MAX` as the endpoint means
    /// [`Route::Cluster`]).
    #[inline(always)]
    pub const fn to(cluster: u32, endpoint: u32) -> Route {
        if endpoint == ANY_ENDPOINT { Route::Cluster(cluster) } else { Route::Endpoint { cluster, endpoint } }
    }

    /// Cluster `cluster`, whose balancer picks the endpoint.
    #[inline(always)]
    pub const fn cluster(cluster: u32) -> Route {
        Route::Cluster(cluster)
    }

    /// The return value of docs/ABI.md: negative to decline, else the cluster index in bits
    /// 32..63 and the endpoint index (`0xffff_ffff` for any) in bits 0..31. A cluster index of
    /// 2^31 or more cannot be encoded and declines.
    #[inline(always)]
    pub const fn to_raw(self) -> i64 {
        let (cluster, endpoint) = match self {
            Route::Decline => return -1,
            Route::Cluster(cluster) => (cluster, ANY_ENDPOINT),
            Route::Endpoint { cluster, endpoint } => (cluster, endpoint),
        };
        if cluster > i32::MAX as u32 {
            return -1;
        }
        (((cluster as u64) << 32) | endpoint as u64) as i64
    }

    /// The route a raw return value means.
    pub const fn from_raw(raw: i64) -> Route {
        if raw < 0 {
            return Route::Decline;
        }
        Route::to((raw as u64 >> 32) as u32, raw as u32)
    }
}

// === entry points the macros call ===

/// Runs a request or response filter on the context the executor passed.
///
/// # Safety
///
/// `ctx` is the program's `struct duet_http_md *`.
#[doc(hidden)]
#[cfg(target_arch = "bpf")]
#[inline(always)]
pub unsafe fn http_entry(ctx: *mut core::ffi::c_void, prog: impl FnOnce(HttpContext<'_>) -> HttpAction) -> u32 {
    // SAFETY: forwarded contract.
    prog(HttpContext::from_sys(unsafe { sys::HttpCtx::from_raw(ctx) })) as u32
}

/// Runs a route program on the context the executor passed.
///
/// # Safety
///
/// `ctx` is the program's `struct duet_http_md *`.
#[doc(hidden)]
#[cfg(target_arch = "bpf")]
#[inline(always)]
pub unsafe fn route_entry(ctx: *mut core::ffi::c_void, prog: impl FnOnce(RouteContext<'_>) -> Route) -> i64 {
    // SAFETY: forwarded contract.
    prog(RouteContext::from_sys(unsafe { sys::HttpCtx::from_raw(ctx) })).to_raw()
}

/// Runs a request or response filter on the context the Wasm host copied to `ctx..ctx + len`.
#[doc(hidden)]
#[cfg(target_arch = "wasm32")]
#[inline(always)]
pub fn http_entry_wasm(ctx: i32, len: i32, prog: impl FnOnce(HttpContext<'_>) -> HttpAction) -> i32 {
    // SAFETY: the host passes a readable `ctx..ctx + len` (inside `duet_buffer`).
    prog(HttpContext::from_sys(unsafe { sys::HttpCtx::from_wasm(ctx, len) })) as i32
}

/// Runs a route program on the context the Wasm host copied to `ctx..ctx + len`.
#[doc(hidden)]
#[cfg(target_arch = "wasm32")]
#[inline(always)]
pub fn route_entry_wasm(ctx: i32, len: i32, prog: impl FnOnce(RouteContext<'_>) -> Route) -> i64 {
    // SAFETY: the host passes a readable `ctx..ctx + len` (inside `duet_buffer`).
    prog(RouteContext::from_sys(unsafe { sys::HttpCtx::from_wasm(ctx, len) })).to_raw()
}
