//! `apikey`: an HTTP request filter for duet's sidecar that admits only requests with a known
//! API key, tells the upstream who the client is, and rate-limits each key, written once with
//! the duet SDK (a `.bpf.o` for duet's eBPF VM and a `.wasm` for its Wasm host).
//!
//! For each request:
//! - no `x-api-key` header, or a key that is not in `KEYS` (keys longer than [`KEY_LEN`] bytes
//!   never are): answer `401` with the body `missing or unknown api key`;
//! - a known key whose token bucket is empty: answer `429` with the body `rate limit exceeded`,
//!   and count it in the key's [`Client::limited`];
//! - otherwise forward the request with `x-duet-client: <the key's client id>` (replacing any
//!   value the client sent itself) and without `x-api-key` (the secret stays at the edge), and
//!   count it in the key's [`Client::requests`]. If the header cannot be set (an id with CR, LF
//!   or NUL) the filter fails closed with `500`.
//!
//! On each response, a second program ([`apikey_errors`], `#[duet::http_response]`) replaces an
//! upstream's `5xx` answer with `502` and the body `upstream error`, so that backends' error pages
//! (stack traces, internal names) never reach API clients, and removes the upstream's `server`
//! header from every other response. Local answers (the `401`, `429` and `500` above) are the
//! sidecar's own and do not pass through it.
//!
//! Maps:
//! - `KEYS`: hash, key [`ApiKey`] (the key's bytes, zero-padded to 32), value [`Client`] (64
//!   bytes: counters, limits, id), 1024 entries. Seed it with `--maps-in` or the sidecar's map
//!   API; [`Client::new`] shows the layout.
//! - `BUCKETS`: LRU hash, key [`ApiKey`], value [`Bucket`], 1024 entries: each key's token
//!   bucket, refilled from `ktime_get_ns` at the key's [`Client::rate`] up to [`Client::burst`].
//! - `STATS`: array of 3 `u64`: requests forwarded, answered 401, answered 429.
//! - `DECISIONS`: ring buffer, one [`Decision`] per request (`duet mesh events` streams them).
//!
//! Tokens are counted in billionths, as in the `ratelimit` example, so refilling is exact integer
//! arithmetic. Verdicts depend on time only through `ktime_get_ns`.
#![no_std]

use core::mem::offset_of;

use duet::{Array, BPF_ANY, HashMap, HttpAction, HttpContext, LruHashMap, RingBuf, ktime_get_ns};

/// The longest API key, in bytes.
pub const KEY_LEN: usize = 32;
/// The longest client id, in bytes.
pub const CLIENT_ID_LEN: usize = 32;
/// The largest burst honoured (so `burst * NANOS` fits in a `u64`).
pub const MAX_BURST: u64 = 1_000_000;
/// Units per token.
pub const NANOS: u64 = 1_000_000_000;

/// Index of the forwarded-requests counter in `STATS`.
pub const STAT_FORWARDED: u32 = 0;
/// Index of the 401 counter in `STATS`.
pub const STAT_UNAUTHORIZED: u32 = 1;
/// Index of the 429 counter in `STATS`.
pub const STAT_LIMITED: u32 = 2;

/// The body of a 401 answer.
pub const UNAUTHORIZED_BODY: &[u8] = b"missing or unknown api key";
/// The body of a 429 answer.
pub const LIMITED_BODY: &[u8] = b"rate limit exceeded";

/// The body of the `502` that replaces an upstream's `5xx` answer.
pub const UPSTREAM_ERROR_BODY: &[u8] = b"upstream error";

/// An API key as a map key: its bytes, then zeros up to [`KEY_LEN`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, duet::Pod)]
#[repr(C, align(8))]
pub struct ApiKey(pub [u8; KEY_LEN]);

impl ApiKey {
    /// The map key of `key`; `None` if it is longer than [`KEY_LEN`] (no such key is known).
    pub fn new(key: &[u8]) -> Option<ApiKey> {
        let mut out = ApiKey::default();
        out.0.get_mut(..key.len())?.copy_from_slice(key);
        Some(out)
    }
}

/// What `KEYS` knows about a key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, duet::Pod)]
#[repr(C)]
pub struct Client {
    /// Requests forwarded with this key (counted by the filter).
    pub requests: u64,
    /// Requests with this key answered 429 (counted by the filter).
    pub limited: u64,
    /// Tokens per second; 0 means no limit.
    pub rate: u32,
    /// The bucket's size in tokens; 0 means `rate` (and at most [`MAX_BURST`]).
    pub burst: u32,
    /// How many bytes of `id` are the id.
    pub id_len: u32,
    /// Always zero (explicit, so there is no padding).
    pub zero: u32,
    /// The client's id, sent upstream in `x-duet-client`.
    pub id: [u8; CLIENT_ID_LEN],
}

impl Client {
    /// A client named `id` (its first [`CLIENT_ID_LEN`] bytes) allowed `rate` requests per
    /// second with bursts of `burst`, counters at zero.
    pub fn new(id: &str, rate: u32, burst: u32) -> Client {
        let mut client = Client { rate, burst, ..Client::default() };
        let len = id.len().min(CLIENT_ID_LEN);
        client.id[..len].copy_from_slice(&id.as_bytes()[..len]);
        client.id_len = len as u32;
        client
    }
}

/// A key's token bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, duet::Pod)]
#[repr(C)]
pub struct Bucket {
    /// Tokens left, in billionths of a token.
    pub tokens: u64,
    /// When the bucket was last refilled (`ktime_get_ns`).
    pub last_ns: u64,
}

/// One record per request in `DECISIONS`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, duet::Pod)]
#[repr(C)]
pub struct Decision {
    /// The status the filter answered with, or 0 when it forwarded the request.
    pub status: u32,
    /// The length of the `x-api-key` value (0 when absent).
    pub key_len: u32,
}

/// Every decision, for monitoring.
#[duet::map]
static DECISIONS: RingBuf = RingBuf::with_byte_size(64 * 1024, 0);

/// The known keys.
#[duet::map]
static KEYS: HashMap<ApiKey, Client> = HashMap::with_max_entries(1024, 0);

/// Each key's token bucket.
#[duet::map]
static BUCKETS: LruHashMap<ApiKey, Bucket> = LruHashMap::with_max_entries(1024, 0);

/// Requests forwarded, answered 401, answered 429.
#[duet::map]
static STATS: Array<u64> = Array::with_max_entries(3, 0);

#[duet::http_request]
fn apikey(req: HttpContext) -> HttpAction {
    // The helper copies at most `KEY_LEN` bytes into the zeroed key and returns the full length,
    // so a short key is already zero-padded and a long one is recognised by its length.
    // `zeroed`, not `default`: zeroing 32 bytes otherwise becomes a `memset` call in BPF.
    let mut key: ApiKey = duet::zeroed();
    let (client, key_len) = match req.header_into("x-api-key", &mut key.0) {
        Ok(len) if len > 0 && len <= KEY_LEN => (KEYS.get(&key), len as u32),
        Ok(len) => (None, len.min(u32::MAX as usize) as u32),
        Err(_) => (None, 0),
    };
    let Some(client) = client else {
        let _ = STATS.add_u64(STAT_UNAUTHORIZED, 1);
        let _ = DECISIONS.output(&Decision { status: 401, key_len });
        return req.respond(401, UNAUTHORIZED_BODY);
    };

    if !take_token(&key, &client) {
        let _ = KEYS.add_u64_at(&key, offset_of!(Client, limited), 1);
        let _ = STATS.add_u64(STAT_LIMITED, 1);
        let _ = DECISIONS.output(&Decision { status: 429, key_len });
        return req.respond(429, LIMITED_BODY);
    }

    let id_len = (client.id_len as usize).min(CLIENT_ID_LEN);
    let id = client.id.get(..id_len).unwrap_or(&[]);
    // `set_header` replaces every value, so a client cannot pose as another one.
    if req.set_header("x-duet-client", id).is_err() {
        return req.respond(500, b"");
    }
    let _ = req.remove_header("x-api-key");
    let _ = KEYS.add_u64_at(&key, offset_of!(Client, requests), 1);
    let _ = STATS.add_u64(STAT_FORWARDED, 1);
    let _ = DECISIONS.output(&Decision { status: 0, key_len });
    HttpAction::Continue
}

/// The response program: an upstream's `5xx` becomes `502 upstream error`; every other response
/// loses its `server` header.
#[duet::http_response]
fn apikey_errors(resp: HttpContext) -> HttpAction {
    match resp.status() {
        Some(status) if status >= 500 => resp.respond(502, UPSTREAM_ERROR_BODY),
        _ => {
            let _ = resp.remove_header("server");
            HttpAction::Continue
        }
    }
}

/// Refills `key`'s bucket and takes a token; whether there was one.
#[inline(always)]
fn take_token(key: &ApiKey, client: &Client) -> bool {
    if client.rate == 0 {
        return true;
    }
    let rate = u64::from(client.rate);
    let burst = if client.burst == 0 { rate } else { u64::from(client.burst) };
    let capacity = burst.min(MAX_BURST) * NANOS;

    let now = ktime_get_ns();
    let mut bucket = BUCKETS.get(key).unwrap_or(Bucket { tokens: capacity, last_ns: now });
    // Past the time the bucket takes to fill, waiting adds nothing; capping the elapsed time
    // keeps `elapsed * rate` at most `capacity`, so nothing overflows.
    let fill_ns = capacity.checked_div(rate).unwrap_or(0);
    let elapsed = now.saturating_sub(bucket.last_ns).min(fill_ns);
    bucket.tokens = (bucket.tokens.min(capacity) + elapsed * rate).min(capacity);
    bucket.last_ns = now;
    let allowed = bucket.tokens >= NANOS;
    if allowed {
        bucket.tokens -= NANOS;
    }
    // An LRU map makes room by evicting, so this does not fail for lack of space.
    let _ = BUCKETS.insert(key, &bucket, BPF_ANY);
    allowed
}

#[cfg(test)]
mod tests {
    use duet::testing::{HttpExchange, LocalResponse, run_http_request, run_http_response, set_clock};

    use super::*;

    fn add_key(key: &str, client: Client) {
        KEYS.insert(&ApiKey::new(key.as_bytes()).unwrap(), &client, BPF_ANY).unwrap();
    }

    fn client(key: &str) -> Client {
        KEYS.get(&ApiKey::new(key.as_bytes()).unwrap()).unwrap()
    }

    fn request(key: &str) -> HttpExchange {
        let mut ex = HttpExchange::get("/orders").with_header("x-api-key", key);
        run_http_request(apikey, &mut ex);
        ex
    }

    fn status(ex: &HttpExchange) -> Option<u16> {
        ex.local_response().map(|r| r.status)
    }

    #[test]
    fn requests_without_a_known_key_get_401() {
        add_key("k-acme", Client::new("acme", 0, 0));
        let unauthorized = Some(LocalResponse { status: 401, body: UNAUTHORIZED_BODY.to_vec() });

        let mut no_key = HttpExchange::get("/");
        assert_eq!(run_http_request(apikey, &mut no_key), HttpAction::Respond);
        assert_eq!(no_key.local_response().cloned(), unauthorized);
        assert_eq!(request("k-other").local_response().cloned(), unauthorized);
        assert_eq!(request("").local_response().cloned(), unauthorized);
        // A key that shares the first 32 bytes with a known one is still unknown.
        add_key(&"x".repeat(32), Client::new("long", 0, 0));
        assert_eq!(status(&request(&"x".repeat(33))), Some(401));
        assert_eq!(status(&request(&"x".repeat(32))), None);
        assert_eq!(STATS.get(STAT_UNAUTHORIZED), Some(4));
        let decisions = duet::testing::drain(&DECISIONS);
        let decision =
            |r: &[u8]| (u32::from_le_bytes([r[0], r[1], r[2], r[3]]), u32::from_le_bytes([r[4], r[5], r[6], r[7]]));
        let got: [(u32, u32); 5] = core::array::from_fn(|i| decisions.get(i).map_or((9, 9), |r| decision(r)));
        assert_eq!(decisions.len(), 5);
        assert_eq!(got, [(401, 0), (401, 7), (401, 0), (401, 33), (0, 32)]);
    }

    #[test]
    fn known_keys_are_forwarded_named_and_counted() {
        add_key("k-acme", Client::new("acme", 0, 0));
        let mut ex = HttpExchange::get("/").with_header("X-Api-Key", "k-acme").with_header("x-duet-client", "admin");
        assert_eq!(run_http_request(apikey, &mut ex), HttpAction::Continue);
        assert_eq!(ex.local_response(), None);
        assert_eq!(ex.request_header_all("x-duet-client"), [b"acme"], "the client's own value is replaced");
        assert_eq!(ex.request_header("x-api-key"), None, "the key is not forwarded");
        request("k-acme");
        assert_eq!(client("k-acme").requests, 2);
        assert_eq!(STATS.get(STAT_FORWARDED), Some(2));
    }

    #[test]
    fn each_key_has_its_own_token_bucket() {
        add_key("k-slow", Client::new("slow", 1, 2));
        add_key("k-other", Client::new("other", 1, 1));
        set_clock(10_000_000_000, 0);
        assert_eq!(status(&request("k-slow")), None);
        assert_eq!(status(&request("k-slow")), None);
        let limited = request("k-slow");
        assert_eq!(limited.local_response().cloned(), Some(LocalResponse { status: 429, body: LIMITED_BODY.to_vec() }));
        assert_eq!(status(&request("k-other")), None, "another key has its own bucket");
        assert_eq!(status(&request("k-other")), Some(429));

        // One token per second: a second later there is exactly one more.
        set_clock(11_000_000_000, 0);
        assert_eq!(status(&request("k-slow")), None);
        assert_eq!(status(&request("k-slow")), Some(429));
        // A long pause refills up to the burst, not beyond.
        set_clock(100_000_000_000, 0);
        let passed = (0..5).filter(|_| status(&request("k-slow")).is_none()).count();
        assert_eq!(passed, 2);

        assert_eq!(client("k-slow").requests, 5);
        assert_eq!(client("k-slow").limited, 5);
        assert_eq!(STATS.get(STAT_LIMITED), Some(6));
    }

    #[test]
    fn the_burst_defaults_to_the_rate_and_rate_zero_is_unlimited() {
        add_key("k-ten", Client::new("ten", 10, 0));
        add_key("k-free", Client::new("free", 0, 0));
        set_clock(1_000_000_000, 0);
        assert_eq!((0..12).filter(|_| status(&request("k-ten")).is_none()).count(), 10);
        assert!((0..100).all(|_| status(&request("k-free")).is_none()));
    }

    #[test]
    fn upstream_errors_are_masked_and_the_server_header_removed() {
        let mut failed = HttpExchange::get("/orders").with_status(503).with_response_header("server", "backend/1.2");
        assert_eq!(run_http_response(apikey_errors, &mut failed), HttpAction::Respond);
        assert_eq!(
            failed.local_response().cloned(),
            Some(LocalResponse { status: 502, body: UPSTREAM_ERROR_BODY.to_vec() })
        );
        for status in [200, 404, 499] {
            let mut ok = HttpExchange::get("/orders")
                .with_status(status)
                .with_response_header("server", "backend/1.2")
                .with_response_header("content-type", "application/json");
            assert_eq!(run_http_response(apikey_errors, &mut ok), HttpAction::Continue, "{status}");
            assert_eq!(ok.local_response(), None);
            assert_eq!(ok.response_header("server"), None, "{status}");
            assert_eq!(ok.response_header("content-type"), Some(&b"application/json"[..]));
        }
    }

    #[test]
    fn an_id_that_cannot_be_a_header_value_fails_closed() {
        add_key("k-bad", Client::new("bad\nid", 0, 0));
        let ex = request("k-bad");
        assert_eq!(status(&ex), Some(500));
        assert_eq!(client("k-bad").requests, 0);
    }
}
