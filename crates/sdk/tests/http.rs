//! HTTP programs on the host: `#[duet::http_request]`, `#[duet::http_response]` and
//! `#[duet::route]` run through `duet::testing`, whose helpers apply docs/ABI.md's rules, so these
//! tests pin down what a program sees and which calls the sidecar's executors refuse.

use std::net::{IpAddr, Ipv6Addr};

use duet::testing::{HttpExchange, LocalResponse, run_http_request, run_http_response, run_route};
use duet::{Array, Errno, HttpAction, HttpContext, HttpField, Route, RouteContext, Text, ktime_get_ns, trace};

/// Runs `f` as the body of a request filter on `ex` and returns what it returned.
fn with_request<T>(ex: &mut HttpExchange, f: impl FnOnce(HttpContext<'_>) -> T) -> T {
    let mut out = None;
    run_http_request(
        |req| {
            out = Some(f(req));
            HttpAction::Continue
        },
        ex,
    );
    out.unwrap()
}

#[test]
fn the_request_fields_read_as_the_exchange_says() {
    let mut ex = HttpExchange::new("POST", "/api/v1/items?limit=5")
        .with_header("X-Request-Id", "abc")
        .with_client([192, 168, 1, 7], 51000)
        .with_route("api");
    with_request(&mut ex, |req| {
        assert_eq!(req.method(), "POST");
        assert_eq!(req.path(), "/api/v1/items?limit=5");
        assert!(req.path().starts_with(b"/api/"));
        assert_eq!(req.scheme(), "http");
        assert_eq!(req.authority().unwrap(), "example.com");
        assert_eq!(req.listener().unwrap(), "main");
        assert_eq!(req.route().unwrap(), "api");
        assert_eq!(req.client_ip4(), Some([192, 168, 1, 7]));
        assert_eq!(req.client_ip(), Some(IpAddr::from([192, 168, 1, 7])));
        assert_eq!(req.client_port(), 51000);
        assert_eq!(req.local_port(), 8080);
        assert_eq!(req.http_version(), 11);
        assert_eq!(req.status(), None, "no status in a request filter");
        let mut raw = [0u8; 16];
        assert_eq!(req.field_into(HttpField::ClientIp, &mut raw), Ok(4));
        assert_eq!(raw[..4], [192, 168, 1, 7]);
    });

    let mut bare = HttpExchange::get("/").with_authority(None).with_client(Ipv6Addr::LOCALHOST, 1);
    bare.listener = None;
    with_request(&mut bare, |req| {
        assert!(req.authority().is_none());
        assert!(req.listener().is_none());
        assert!(req.route().is_none());
        assert_eq!(req.field_into(HttpField::Route, &mut [0; 8]), Err(Errno::ENOENT));
        assert_eq!(req.client_ip4(), None, "IPv6 clients have no remote_ip4");
        assert_eq!(req.client_ip(), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    });
}

#[test]
fn headers_read_case_insensitively_into_bounded_buffers() {
    let long = "k".repeat(100);
    let mut ex = HttpExchange::get("/")
        .with_header("X-Api-Key", "secret")
        .with_header("x-api-key", "second")
        .with_header("x-long", &long)
        .with_header("x-num", "1234")
        .with_header("x-empty", "");
    with_request(&mut ex, |req| {
        let key = req.header("x-API-key").unwrap();
        assert_eq!(key, "secret", "the first value");
        assert_eq!(key, b"secret");
        assert!(key.eq_ignore_ascii_case(b"SECRET"));
        assert!(!key.is_truncated());
        assert_eq!(format!("{key:?}"), "\"secret\"");
        assert!(req.header("x-missing").is_none());
        assert!(req.has_header("x-empty") && !req.has_header("x-missing"));
        assert!(req.header("x-empty").unwrap().is_empty());
        assert_eq!(req.header("x-num").unwrap().parse_u64(), Some(1234));
        assert_eq!(req.header("x-api-key").unwrap().parse_u64(), None);

        let truncated = req.header("x-long").unwrap();
        assert!(truncated.is_truncated());
        assert_eq!(truncated.len(), 100);
        assert_eq!(truncated.as_bytes(), &long.as_bytes()[..64]);
        assert_ne!(truncated, long.as_str(), "a truncated value equals nothing");
        assert!(truncated.starts_with(b"kkk"));

        let mut buf = [0u8; 4];
        assert_eq!(req.header_into("x-api-key", &mut buf), Ok(6), "the full length");
        assert_eq!(&buf, b"secr");
        // Executors write the whole buffer: the value, then zeros; all zeros on an error.
        let mut buf = [0xffu8; 8];
        assert_eq!(req.header_into("x-num", &mut buf), Ok(4));
        assert_eq!(&buf, b"1234\0\0\0\0");
        let mut buf = [0xffu8; 8];
        assert_eq!(req.header_into("x-missing", &mut buf), Err(Errno::ENOENT));
        assert_eq!(buf, [0; 8]);
        assert_eq!(req.header_into("bad name", &mut buf), Err(Errno::EINVAL));
        assert_eq!(req.header_into(":path", &mut buf), Err(Errno::EINVAL));
        assert_eq!(req.header_into("", &mut buf), Err(Errno::EINVAL));
    });
}

#[test]
fn an_empty_text_equals_only_the_empty_string() {
    let t: Text<8> = Text::empty();
    assert!(t.is_empty() && t.eq_bytes(b"") && t != "a");
    assert_eq!(Text::<4>::default().as_bytes(), b"");
}

#[test]
fn request_filters_change_request_headers() {
    let mut ex = HttpExchange::get("/")
        .with_header("X-Client", "spoofed")
        .with_header("x-client", "again")
        .with_header("accept", "*/*")
        .with_header("x-drop", "1")
        .with_header("X-Drop", "2");
    let action = run_http_request(
        |req| {
            req.set_header("X-Client", b"acme").unwrap();
            req.add_header("x-tag", b"a").unwrap();
            req.add_header("x-tag", b"b").unwrap();
            req.remove_header("x-drop").unwrap();
            req.remove_header("x-never-there").unwrap();
            req.set_header("x-new", b"").unwrap();
            HttpAction::Continue
        },
        &mut ex,
    );
    assert_eq!(action, HttpAction::Continue);
    assert_eq!(ex.request_header_all("x-client"), [b"acme"], "set replaces every value");
    assert_eq!(ex.request_header_all("x-tag"), [b"a", b"b"]);
    assert!(ex.request_header("x-drop").is_none());
    assert_eq!(ex.request_header("x-new"), Some(&b""[..]));
    assert_eq!(ex.request_header("accept"), Some(&b"*/*"[..]));
    assert!(ex.request_headers.iter().all(|(n, _)| n != "X-Client"), "names are stored lower-case");
    assert_eq!(ex.mutations(), 6);
    assert_eq!(ex.local_response(), None);
}

#[test]
fn response_filters_see_the_status_and_change_response_headers() {
    let mut ex = HttpExchange::get("/").with_header("x-req", "1").with_status(503).with_response_header("Server", "up");
    let action = run_http_response(
        |resp| {
            assert_eq!(resp.status(), Some(503));
            assert_eq!(resp.header("server").unwrap(), "up");
            assert!(resp.header("x-req").is_none(), "the response's headers, not the request's");
            assert_eq!(resp.path(), "/", "request fields stay readable");
            resp.remove_header("server").unwrap();
            resp.set_header("retry-after", b"5").unwrap();
            HttpAction::Continue
        },
        &mut ex,
    );
    assert_eq!(action, HttpAction::Continue);
    assert!(ex.response_header("server").is_none());
    assert_eq!(ex.response_header("Retry-After"), Some(&b"5"[..]));
    assert_eq!(ex.request_header("x-req"), Some(&b"1"[..]), "request headers untouched");
}

#[test]
fn names_values_and_forbidden_headers_follow_the_abi() {
    let mut ex = HttpExchange::get("/");
    with_request(&mut ex, |req| {
        assert_eq!(req.set_header("", b"v"), Err(Errno::EINVAL));
        assert_eq!(req.set_header("has space", b"v"), Err(Errno::EINVAL));
        assert_eq!(req.set_header("x-ü", b"v"), Err(Errno::EINVAL));
        assert_eq!(req.set_header(&"n".repeat(129), b"v"), Err(Errno::EINVAL));
        assert_eq!(req.set_header(&"n".repeat(128), b"v"), Ok(()));
        assert_eq!(req.set_header(&format!(":{}", "p".repeat(128)), b"v"), Err(Errno::EINVAL), "too long first");
        assert_eq!(req.set_header("x-v", b"a\r\nb: c"), Err(Errno::EINVAL));
        assert_eq!(req.add_header("x-v", b"nul\0"), Err(Errno::EINVAL));
        assert_eq!(req.add_header("x-v", &[b'v'; 4097]), Err(Errno::EINVAL));
        assert_eq!(req.add_header("x-v", &[b'v'; 4096]), Ok(()));
        for name in [":path", ":authority", "Connection", "transfer-encoding", "upgrade", "te", "keep-alive"] {
            assert_eq!(req.set_header(name, b"x"), Err(Errno::EPERM), "{name}");
            assert_eq!(req.add_header(name, b"x"), Err(Errno::EPERM), "{name}");
            assert_eq!(req.remove_header(name), Err(Errno::EPERM), "{name}");
        }
    });
    assert_eq!(ex.mutations(), 2, "refused calls are not mutations");
}

#[test]
fn a_run_makes_at_most_32_mutations() {
    let mut ex = HttpExchange::get("/");
    let results = with_request(&mut ex, |req| {
        (0..34)
            .map(|i| if i % 2 == 0 { req.add_header("x-n", b"1") } else { req.remove_header("x-m") })
            .collect::<Vec<_>>()
    });
    assert!(results[..32].iter().all(Result::is_ok));
    assert_eq!(results[32..], [Err(Errno::E2BIG), Err(Errno::E2BIG)]);
    assert_eq!(ex.request_header_all("x-n").len(), 16);
    // The budget is per run.
    with_request(&mut ex, |req| assert_eq!(req.add_header("x-n", b"1"), Ok(())));
}

#[test]
fn local_responses() {
    let mut ex = HttpExchange::get("/");
    assert_eq!(run_http_request(|req| req.respond(401, b"who are you"), &mut ex), HttpAction::Respond);
    assert_eq!(ex.local_response(), Some(&LocalResponse { status: 401, body: b"who are you".to_vec() }));

    // Without a valid `respond`, returning Respond answers 403 with an empty body.
    let forbidden = Some(LocalResponse { status: 403, body: Vec::new() });
    for (status, body_len) in [(199, 0), (600, 0), (200, 1025)] {
        let body = vec![b'b'; body_len];
        assert_eq!(run_http_request(|req| req.respond(status, &body), &mut ex), HttpAction::Respond);
        assert_eq!(ex.local_response().cloned(), forbidden, "status {status}, body {body_len}");
    }
    assert_eq!(run_http_request(|_| HttpAction::Respond, &mut ex), HttpAction::Respond);
    assert_eq!(ex.local_response().cloned(), forbidden);
    let max = vec![b'b'; 1024];
    run_http_request(|req| req.respond(599, &max), &mut ex);
    assert_eq!(ex.local_response().map(|r| (r.status, r.body.len())), Some((599, 1024)));

    // A recorded response is only sent when the filter returns Respond.
    assert_eq!(
        run_http_request(
            |req| {
                let _ = req.respond(500, b"");
                HttpAction::Continue
            },
            &mut ex
        ),
        HttpAction::Continue
    );
    assert_eq!(ex.local_response(), None);

    // Response filters may answer too.
    let mut ex = HttpExchange::get("/").with_status(500);
    run_http_response(|resp| resp.respond(502, b"upstream failed"), &mut ex);
    assert_eq!(ex.local_response().map(|r| r.status), Some(502));
}

#[test]
fn routes_encode_as_the_abi_says() {
    assert_eq!(Route::Decline.to_raw(), -1);
    assert_eq!(Route::cluster(1).to_raw(), 0x1_ffff_ffff);
    assert_eq!(Route::to(2, 3).to_raw(), 0x2_0000_0003);
    assert_eq!(Route::to(0, 0).to_raw(), 0);
    assert_eq!(Route::to(4, u32::MAX), Route::cluster(4));
    assert_eq!(Route::cluster(1 << 31).to_raw(), Route::Decline.to_raw(), "too large to encode");
    for route in [Route::Decline, Route::cluster(0), Route::cluster(7), Route::to(1, 2), Route::to(0x7fff_ffff, 9)] {
        assert_eq!(Route::from_raw(route.to_raw()), route);
    }
    assert_eq!(Route::from_raw(-5), Route::Decline);
    assert_eq!(HttpAction::from_raw(1), Some(HttpAction::Respond));
    assert_eq!(HttpAction::from_raw(2), None);
}

#[duet::route]
fn by_header(req: RouteContext) -> Route {
    match req.header("x-shard").and_then(|v| v.parse_u64()) {
        Some(shard) => Route::to(0, shard as u32),
        None if req.method() == "POST" => Route::cluster(1),
        None => Route::Decline,
    }
}

#[test]
fn route_programs_read_the_request() {
    assert_eq!(run_route(by_header, &HttpExchange::get("/").with_header("x-shard", "3")), Route::to(0, 3));
    assert_eq!(run_route(by_header, &HttpExchange::new("POST", "/")), Route::cluster(1));
    assert_eq!(run_route(by_header, &HttpExchange::get("/")), Route::Decline);
}

#[duet::map]
static SEEN: Array<u64> = Array::with_max_entries(2, 0);

#[duet::http_request]
fn count(req: HttpContext) -> HttpAction {
    let _ = SEEN.add_u64(0, 1);
    let _ = SEEN.set(1, &ktime_get_ns());
    trace!("counted");
    let _ = req.add_header("x-counted", b"1");
    HttpAction::Continue
}

#[duet::http_response]
fn stamp(resp: HttpContext) -> HttpAction {
    if resp.status() == Some(404) {
        return resp.respond(404, b"nothing here");
    }
    let _ = resp.set_header("x-stamped", b"1");
    HttpAction::Continue
}

#[test]
fn maps_time_and_trace_work_in_http_programs() {
    duet::testing::set_clock(7_000, 0);
    let mut ex = HttpExchange::get("/");
    assert_eq!(run_http_request(count, &mut ex), HttpAction::Continue);
    assert_eq!(run_http_request(count, &mut ex), HttpAction::Continue);
    assert_eq!(SEEN.get(0), Some(2));
    assert_eq!(SEEN.get(1), Some(7_000));
    assert_eq!(duet::testing::take_trace(), ["counted", "counted"]);
    assert_eq!(ex.request_header_all("x-counted").len(), 2);

    let mut ok = HttpExchange::get("/");
    assert_eq!(run_http_response(stamp, &mut ok), HttpAction::Continue);
    assert_eq!(ok.response_header("x-stamped"), Some(&b"1"[..]));
    let mut missing = HttpExchange::get("/").with_status(404);
    assert_eq!(run_http_response(stamp, &mut missing), HttpAction::Respond);
    assert_eq!(missing.local_response().map(|r| r.body.as_slice()), Some(&b"nothing here"[..]));
}

#[test]
fn zeroed_values_are_all_zero() {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, duet::Pod)]
    #[repr(C)]
    struct Key {
        a: [u8; 13],
        b: [u8; 3],
        c: u64,
    }
    assert_eq!(duet::zeroed::<Key>(), Key { a: [0; 13], b: [0; 3], c: 0 });
    assert_eq!(duet::zeroed::<[u8; 37]>(), [0; 37]);
    assert!(Text::<64>::empty().is_empty());
}
