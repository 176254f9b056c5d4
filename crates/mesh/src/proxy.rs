//! One request through the sidecar: route, filter chain, upstream, response, accounting.
//!
//! Bodies stream both ways. Only when a filter is in the chain do body frames pass through it
//! (in a task that feeds a bounded channel, so a slow side applies backpressure); a filter that
//! wants the whole body says so by pausing in its body phase, and only then is the body buffered.

use std::convert::Infallible;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use tokio::sync::{mpsc, oneshot};

use crate::BoxError;
use crate::filter::{ChainRun, ChainVerdict, Exchange, LocalResponse, Phase};
use crate::runtime::{ListenerRt, RouteRt, Shared};
use crate::upstream::{Clusters, UpstreamError};

/// Response bodies sent downstream.
pub type DownBody = UnsyncBoxBody<Bytes, BoxError>;

/// An empty body.
pub fn empty_body() -> UnsyncBoxBody<Bytes, BoxError> {
    http_body_util::Empty::new().map_err(|e| match e {}).boxed_unsync()
}

/// A body of `bytes`, in one frame.
pub fn full_body(bytes: impl Into<Bytes>) -> UnsyncBoxBody<Bytes, BoxError> {
    http_body_util::Full::new(bytes.into()).map_err(|e| match e {}).boxed_unsync()
}

/// What the proxy knows of a downstream connection.
#[derive(Clone, Copy, Debug)]
pub struct ConnInfo {
    /// The client.
    pub peer: SocketAddr,
    /// The listener's address the client reached.
    pub local: SocketAddr,
    /// TLS was used.
    pub tls: bool,
    /// The client presented a certificate the listener verified.
    pub mtls: bool,
    /// Where the client was connecting before the capture programs sent it to this listener
    /// (`capture:`); an `original_destination` cluster forwards there.
    pub original_dst: Option<SocketAddr>,
}

/// The chain and the exchange record of one request, shared by the request-body task and the
/// response path.
type Flow = Arc<tokio::sync::Mutex<(ChainRun, Exchange)>>;

/// Handles one downstream request.
pub async fn handle(
    shared: Arc<Shared>,
    listener: Arc<str>,
    conn: ConnInfo,
    req: Request<Incoming>,
) -> Result<Response<DownBody>, Infallible> {
    let start = Instant::now();
    let snapshot = shared.snapshot();
    let Some(l) = snapshot.listener(&listener) else {
        return Ok(plain(503, "listener is being removed\n"));
    };
    let records = shared.access_log().is_some() || shared.events.has_subscribers();
    let mut log = Log(records.then(|| Box::new(Record::new(&listener, &req, conn))));
    let (mut parts, body) = req.into_parts();

    // Request smuggling guard: a message with both framings is refused, not guessed at.
    if parts.headers.contains_key(header::TRANSFER_ENCODING) && parts.headers.contains_key(header::CONTENT_LENGTH) {
        tracing::warn!(listener = %listener, client = %conn.peer, "request with both content-length and transfer-encoding refused");
        return Ok(finish_local(
            &shared,
            l,
            None,
            &mut log,
            start,
            plain(400, "both content-length and transfer-encoding\n"),
        ));
    }
    let host = authority(&parts).unwrap_or_default();
    let Some(route) = l.route(&host, parts.uri.path()) else {
        return Ok(finish_local(&shared, l, None, &mut log, start, plain(404, "no route matches this request\n")));
    };
    log.set(|r| r.route = route.name.clone());
    log.set(|r| r.cluster = route.cluster.name.clone());
    if content_length(&parts.headers).is_some_and(|n| n > l.config.max_request_body_bytes) {
        return Ok(finish_local(&shared, l, Some(route), &mut log, start, plain(413, "request body too large\n")));
    }
    let request_id = match parts.headers.get(X_REQUEST_ID).and_then(|v| v.to_str().ok()) {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => new_request_id(),
    };
    log.set(|r| r.request_id = request_id.clone());
    let body_empty = body.is_end_stream();

    // === Request filters ===
    let clusters = Arc::clone(&snapshot.clusters);
    let mut flow: Option<Flow> = None;
    if !l.filters.is_empty() {
        let mut ex = Exchange { request_headers: request_pairs(&parts, &host, conn.tls), ..Exchange::default() };
        crate::wasm_filter::fill_properties(&mut ex, conn, &request_id, &parts, route);
        let mut chain = match ChainRun::start(&l.filters, &shared.metrics) {
            Ok(c) => c,
            Err(r) => return Ok(finish_local(&shared, l, Some(route), &mut log, start, local(r))),
        };
        match chain.run(Phase::RequestHeaders, &mut ex, body_empty, &*clusters).await {
            ChainVerdict::Respond(r) => {
                chain.finish(&mut ex);
                return Ok(finish_local(&shared, l, Some(route), &mut log, start, local(r)));
            }
            ChainVerdict::Continue | ChainVerdict::Buffer => {}
        }
        apply_request_pairs(&mut parts, &ex.request_headers);
        flow = Some(Arc::new(tokio::sync::Mutex::new((chain, ex))));
    }

    // === Routing program ===
    let (cluster, endpoint) = match route.program.as_deref() {
        None => (&route.cluster, None),
        Some(program) => {
            let decision = match &flow {
                Some(flow) => program.decide(&mut flow.lock().await.1),
                None => {
                    let mut ex =
                        Exchange { request_headers: request_pairs(&parts, &host, conn.tls), ..Exchange::default() };
                    crate::wasm_filter::fill_properties(&mut ex, conn, &request_id, &parts, route);
                    program.decide(&mut ex)
                }
            };
            match decision {
                Some(d) => (&program.clusters[d.cluster], d.endpoint),
                None => (&route.cluster, None),
            }
        }
    };
    if !Arc::ptr_eq(cluster, &route.cluster) {
        log.set(|r| r.cluster = cluster.name.clone());
    }

    // === Upstream request ===
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(header::EXPECT);
    append_forwarded_for(&mut parts.headers, conn.peer);
    // The client's own id usually is there already, once, as it is sent on.
    if !is_only_value(&parts.headers, &X_REQUEST_ID, request_id.as_bytes())
        && let Ok(v) = HeaderValue::from_str(&request_id)
    {
        parts.headers.insert(X_REQUEST_ID, v);
    }
    if !parts.headers.contains_key(header::HOST)
        && let Ok(v) = HeaderValue::from_str(&host)
    {
        parts.headers.insert(header::HOST, v);
    }
    // An origin-form target (what HTTP/1.1 clients send) is already what goes upstream.
    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
        let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        parts.uri = pq.parse().unwrap_or_default();
    }
    parts.version = Version::HTTP_11;

    let limit = l.config.max_request_body_bytes;
    // Set when the request body exceeds the limit; only a body can.
    let too_large = (!body_empty).then(|| Arc::new(std::sync::atomic::AtomicBool::new(false)));
    // A local response from a request body filter, which can come while the upstream is asked.
    let mut local_rx: Option<oneshot::Receiver<LocalResponse>> = None;
    // Header-only chains (duet's eBPF and duet-ABI filters) leave the bodies alone.
    let body_flow = flow.as_ref().filter(|_| l.filters_read_bodies);
    let up_body: crate::upstream::UpBody = match (body_flow, body_empty) {
        (_, true) => empty_body(),
        (None, false) => Limit { inner: body, left: limit, flag: too_large.clone() }.boxed_unsync(),
        (Some(flow), false) => {
            let (tx, rx) = mpsc::channel(4);
            let (local_tx, rx_local) = oneshot::channel::<LocalResponse>();
            local_rx = Some(rx_local);
            tokio::spawn(filter_body(
                Arc::clone(flow),
                Side::Request,
                body.map_err(|e| -> BoxError { Box::new(e) }).boxed_unsync(),
                tx,
                limit,
                too_large.clone().unwrap_or_default(),
                Some(local_tx),
                Arc::clone(&clusters),
            ));
            ChannelBody { rx }.boxed_unsync()
        }
    };
    let upstream_req = Request::from_parts(parts, up_body);
    let sent = Instant::now();
    let timeout = route.timeout.unwrap_or_else(|| cluster.request_timeout());
    let send = async {
        match (cluster.is_original_destination(), conn.original_dst) {
            (false, _) => cluster.send(upstream_req, timeout, endpoint).await,
            (true, Some(dst)) => cluster.send_to(upstream_req, timeout, dst).await,
            (true, None) => Err(crate::upstream::UpstreamError::Connect(
                "no original destination: the connection was not redirected by capture".into(),
            )),
        }
    };
    let result = match local_rx.as_mut() {
        None => send.await,
        Some(local) => tokio::select! {
            res = send => res,
            Ok(r) = local => {
                return Ok(finish_flow_local(&shared, l, route, &mut log, start, flow, r).await);
            }
        },
    };
    let (resp, in_flight) = match result {
        Ok(r) => r,
        Err(e) => {
            if too_large.as_ref().is_some_and(|f| f.load(Ordering::Relaxed)) {
                return Ok(finish_flow_local(
                    &shared,
                    l,
                    route,
                    &mut log,
                    start,
                    flow,
                    local_plain(413, "request body too large\n"),
                )
                .await);
            }
            // A local response from the request body phase wins over the broken upstream send.
            if let Some(Ok(r)) = local_rx.as_mut().map(oneshot::Receiver::try_recv) {
                return Ok(finish_flow_local(&shared, l, route, &mut log, start, flow, r).await);
            }
            tracing::warn!(listener = %listener, route = %route.name, cluster = %cluster.name, error = %e, "upstream failed");
            log.set(|r| r.upstream_error = Some(e.to_string()));
            let status = e.status();
            let body = match &e {
                UpstreamError::Connect(_) => "upstream connect error\n",
                UpstreamError::Timeout(_) => "upstream request timeout\n",
                UpstreamError::Protocol(_) => "upstream sent an invalid response or reset the connection\n",
            };
            return Ok(finish_flow_local(&shared, l, route, &mut log, start, flow, local_plain(status, body)).await);
        }
    };
    let upstream_time = sent.elapsed();
    cluster.observe_upstream(upstream_time);
    log.set(|r| r.upstream_ms = Some(upstream_time.as_secs_f64() * 1e3));

    // === Response ===
    let (mut rparts, rbody) = resp.into_parts();
    strip_hop_by_hop(&mut rparts.headers);
    let rbody_empty = rbody.is_end_stream();
    let response_limit = l.config.max_response_body_bytes;
    let mut out_body: DownBody = match flow.as_ref().filter(|_| l.filters_read_responses) {
        None => Limit { inner: rbody, left: response_limit, flag: None }.boxed_unsync(),
        Some(flow) => {
            {
                let mut guard = flow.lock().await;
                let (chain, ex) = &mut *guard;
                ex.response_headers = response_pairs(&rparts);
                crate::wasm_filter::set_response_code(ex, rparts.status.as_u16());
                match chain.run(Phase::ResponseHeaders, ex, rbody_empty, &*clusters).await {
                    ChainVerdict::Respond(r) => {
                        drop(guard);
                        return Ok(
                            finish_flow_local(&shared, l, route, &mut log, start, Some(Arc::clone(flow)), r).await
                        );
                    }
                    ChainVerdict::Continue | ChainVerdict::Buffer => {}
                }
                apply_response_pairs(&mut rparts, &ex.response_headers);
            }
            if rbody_empty {
                empty_body()
            } else if body_flow.is_none() {
                Limit { inner: rbody, left: response_limit, flag: None }.boxed_unsync()
            } else {
                // Filters may change the body's length.
                rparts.headers.remove(header::CONTENT_LENGTH);
                let mut rbody = rbody;
                let (frames, complete) = ready_frames(&mut rbody);
                let (complete, error) = match complete {
                    Ok(c) => (c, None),
                    Err(e) => (false, Some(e)),
                };
                let whole = complete && frames.iter().all(Frame::is_data);
                let size: usize = frames.iter().filter_map(Frame::data_ref).map(Bytes::len).sum();
                if whole && size as u64 <= response_limit {
                    // The whole body has already arrived (small responses do): one body phase,
                    // inline, and an exact length instead of a chunked stream.
                    let mut guard = flow.lock().await;
                    let (chain, ex) = &mut *guard;
                    ex.response_body = Vec::with_capacity(size);
                    for f in frames {
                        if let Some(d) = f.data_ref() {
                            ex.response_body.extend_from_slice(d);
                        }
                    }
                    match chain.run(Phase::ResponseBody, ex, true, &*clusters).await {
                        ChainVerdict::Continue => {
                            let data = std::mem::take(&mut ex.response_body);
                            rparts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(data.len()));
                            full_body(data)
                        }
                        ChainVerdict::Respond(r) => {
                            drop(guard);
                            let flow = Some(Arc::clone(flow));
                            return Ok(finish_flow_local(&shared, l, route, &mut log, start, flow, r).await);
                        }
                        ChainVerdict::Buffer => {
                            drop(guard);
                            let flow = Some(Arc::clone(flow));
                            let r = local_plain(502, "a filter paused the response body at its end\n");
                            return Ok(finish_flow_local(&shared, l, route, &mut log, start, flow, r).await);
                        }
                    }
                } else {
                    let (tx, rx) = mpsc::channel(4);
                    let body = Prefixed { frames, error, rest: rbody }.boxed_unsync();
                    tokio::spawn(filter_body(
                        Arc::clone(flow),
                        Side::Response,
                        body,
                        tx,
                        response_limit,
                        Arc::default(),
                        None,
                        Arc::clone(&clusters),
                    ));
                    ChannelBody { rx }.boxed_unsync()
                }
            }
        }
    };
    log.set(|r| r.status = rparts.status.as_u16());
    let access = shared.access_log();
    let events = shared.events.has_subscribers().then(|| Arc::clone(&shared));
    let stats = route.stats_for(cluster).clone();
    let status = rparts.status.as_u16();
    out_body = OnEnd {
        inner: out_body,
        done: Some(Box::new(move |complete: bool| {
            drop(in_flight);
            stats.request(status, start.elapsed());
            log.set(|r| r.duration_ms = start.elapsed().as_secs_f64() * 1e3);
            log.set(|r| r.complete = complete);
            if let Some(record) = &log.0 {
                emit(access.as_deref(), events.as_deref(), record);
            }
            if let Some(flow) = flow {
                // The response is over: the filters log and release their contexts. Nobody else
                // holds the flow by now, except a request body task still ending.
                let finished = match flow.try_lock() {
                    Ok(mut guard) => {
                        let (chain, ex) = &mut *guard;
                        chain.finish(ex);
                        true
                    }
                    Err(_) => false,
                };
                if !finished {
                    tokio::spawn(async move {
                        let mut guard = flow.lock().await;
                        let (chain, ex) = &mut *guard;
                        chain.finish(ex);
                    });
                }
            }
        })),
    }
    .boxed_unsync();
    Ok(Response::from_parts(rparts, out_body))
}

// === Body filtering ===

fn buf(ex: &mut Exchange, side: Side) -> &mut Vec<u8> {
    match side {
        Side::Request => &mut ex.request_body,
        Side::Response => &mut ex.response_body,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Request,
    Response,
}

/// Feeds `body` through the chain's body (and trailers) phase for `side`, sending what the
/// filters let through to `tx`. A local response from a request body filter goes to `local`.
#[allow(clippy::too_many_arguments, reason = "one task, its inputs spelled out")]
async fn filter_body(
    flow: Flow,
    side: Side,
    mut body: UnsyncBoxBody<Bytes, BoxError>,
    tx: mpsc::Sender<Result<Frame<Bytes>, BoxError>>,
    limit: u64,
    too_large: Arc<std::sync::atomic::AtomicBool>,
    mut local: Option<oneshot::Sender<LocalResponse>>,
    clusters: Arc<Clusters>,
) {
    let (phase, trailers_phase) = match side {
        Side::Request => (Phase::RequestBody, Phase::RequestTrailers),
        Side::Response => (Phase::ResponseBody, Phase::ResponseTrailers),
    };
    let mut seen: u64 = 0;
    let mut ended = false;
    loop {
        let frame = body.frame().await;
        let mut guard = flow.lock().await;
        let (chain, ex) = &mut *guard;
        let (eos, trailers) = match frame {
            None => (true, None),
            Some(Err(e)) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    seen += data.len() as u64;
                    if seen > limit {
                        too_large.store(true, Ordering::Relaxed);
                        let _ = tx.send(Err("body larger than the configured limit".into())).await;
                        return;
                    }
                    buf(ex, side).extend_from_slice(&data);
                    (body.is_end_stream(), None)
                }
                Err(frame) => match frame.into_trailers() {
                    Ok(t) => (true, Some(t)),
                    Err(_) => continue,
                },
            },
        };
        if !ended {
            match chain.run(phase, ex, eos, &*clusters).await {
                ChainVerdict::Continue => {
                    let data = std::mem::take(buf(ex, side));
                    if !data.is_empty() && tx.send(Ok(Frame::data(Bytes::from(data)))).await.is_err() {
                        return;
                    }
                }
                ChainVerdict::Buffer => {
                    if eos {
                        // A filter still wants more at the very end: nothing more will come.
                        let _ = tx.send(Err("a filter paused the body at its end".into())).await;
                        return;
                    }
                }
                ChainVerdict::Respond(r) => {
                    if let Some(local) = local.take() {
                        let _ = local.send(r);
                    }
                    let _ = tx.send(Err("a filter answered the request".into())).await;
                    return;
                }
            }
            ended = eos;
        }
        if let Some(t) = trailers {
            let pairs = header_pairs(&t);
            match side {
                Side::Request => ex.request_trailers = pairs,
                Side::Response => ex.response_trailers = pairs,
            }
            match chain.run(trailers_phase, ex, true, &*clusters).await {
                ChainVerdict::Respond(r) => {
                    if let Some(local) = local.take() {
                        let _ = local.send(r);
                    }
                    let _ = tx.send(Err("a filter answered the request".into())).await;
                    return;
                }
                ChainVerdict::Continue | ChainVerdict::Buffer => {}
            }
            let pairs = match side {
                Side::Request => &ex.request_trailers,
                Side::Response => &ex.response_trailers,
            };
            let _ = tx.send(Ok(Frame::trailers(pairs_to_headers(pairs)))).await;
            return;
        }
        if eos {
            return;
        }
    }
}

/// The frames of `body` that are already here (polled without waiting), and whether that is all.
fn ready_frames<B: Body<Data = Bytes> + Unpin>(
    body: &mut B,
) -> (std::collections::VecDeque<Frame<Bytes>>, Result<bool, B::Error>) {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let mut frames = std::collections::VecDeque::new();
    // A few frames at most: this is a fast path for small bodies, not a buffer.
    while frames.len() < 8 {
        match Pin::new(&mut *body).poll_frame(&mut cx) {
            Poll::Ready(None) => return (frames, Ok(true)),
            Poll::Ready(Some(Ok(frame))) => {
                frames.push_back(frame);
                if body.is_end_stream() {
                    return (frames, Ok(true));
                }
            }
            // The streaming path reports the error after the frames before it.
            Poll::Ready(Some(Err(e))) => return (frames, Err(e)),
            Poll::Pending => break,
        }
    }
    (frames, Ok(false))
}

/// Frames already taken from a body (and the error that ended them, if one did), then the rest.
struct Prefixed<B: Body> {
    frames: std::collections::VecDeque<Frame<Bytes>>,
    error: Option<B::Error>,
    rest: B,
}

impl<B: Body<Data = Bytes> + Unpin> Body for Prefixed<B>
where
    B::Error: Unpin,
{
    type Data = Bytes;
    type Error = B::Error;
    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        if let Some(f) = self.frames.pop_front() {
            return Poll::Ready(Some(Ok(f)));
        }
        if let Some(e) = self.error.take() {
            return Poll::Ready(Some(Err(e)));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }
}

/// A body fed by a bounded channel.
struct ChannelBody {
    rx: mpsc::Receiver<Result<Frame<Bytes>, BoxError>>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.rx.poll_recv(cx)
    }
}

/// A body that errors once more than `left` bytes went through, and says so in `flag`.
struct Limit<B> {
    inner: B,
    left: u64,
    flag: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl<B> Body for Limit<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let n = data.len() as u64;
                    if n > self.left {
                        if let Some(flag) = &self.flag {
                            flag.store(true, Ordering::Relaxed);
                        }
                        return Poll::Ready(Some(Err("body larger than the configured limit".into())));
                    }
                    self.left -= n;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

type Done = Box<dyn FnOnce(bool) + Send>;

/// Runs `done` once, when the body ends (`true`) or is dropped early (`false`).
struct OnEnd {
    inner: DownBody,
    done: Option<Done>,
}

impl Body for OnEnd {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let res = Pin::new(&mut self.inner).poll_frame(cx);
        match &res {
            Poll::Ready(None) => {
                if let Some(done) = self.done.take() {
                    done(true);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(done) = self.done.take() {
                    done(false);
                }
            }
            _ => {}
        }
        res
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for OnEnd {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            done(self.inner.is_end_stream());
        }
    }
}

// === Local responses and accounting ===

fn plain(status: u16, body: &'static str) -> Response<DownBody> {
    let mut r = Response::new(full_body(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

fn local_plain(status: u16, body: &str) -> LocalResponse {
    LocalResponse {
        status,
        body: body.as_bytes().to_vec(),
        headers: vec![("content-type".into(), b"text/plain".to_vec())],
        ..LocalResponse::default()
    }
}

/// A filter's local response as an HTTP response.
pub fn local(r: LocalResponse) -> Response<DownBody> {
    let mut resp = Response::new(full_body(r.body));
    *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in &r.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value)) {
            resp.headers_mut().append(n, v);
        }
    }
    resp
}

fn finish_local(
    shared: &Shared,
    l: &ListenerRt,
    route: Option<&RouteRt>,
    log: &mut Log,
    start: Instant,
    resp: Response<DownBody>,
) -> Response<DownBody> {
    let status = resp.status().as_u16();
    match route {
        Some(r) => r.stats.request(status, start.elapsed()),
        None => shared.metrics.request(&l.name, "", "", status, start.elapsed()),
    }
    log.set(|r| r.status = status);
    log.set(|r| r.local = true);
    log.set(|r| r.duration_ms = start.elapsed().as_secs_f64() * 1e3);
    log.set(|r| r.complete = true);
    if let Some(record) = &log.0 {
        emit(shared.access_log().as_deref(), Some(shared), record);
    }
    resp
}

/// Writes a finished request's record to the access log and the event stream.
fn emit(access: Option<&crate::runtime::AccessLog>, events: Option<&Shared>, record: &Record) {
    if let Some(access) = access {
        access.write(record);
    }
    if let Some(shared) = events.filter(|s| s.events.has_subscribers()) {
        #[derive(serde::Serialize)]
        struct AccessEvent<'a> {
            r#type: &'static str,
            #[serde(flatten)]
            record: &'a Record,
        }
        shared.events.publish_json(&AccessEvent { r#type: "access", record });
    }
}

async fn finish_flow_local(
    shared: &Shared,
    l: &ListenerRt,
    route: &RouteRt,
    log: &mut Log,
    start: Instant,
    flow: Option<Flow>,
    r: LocalResponse,
) -> Response<DownBody> {
    if let Some(flow) = flow {
        let mut guard = flow.lock().await;
        let (chain, ex) = &mut *guard;
        chain.finish(ex);
    }
    finish_local(shared, l, Some(route), log, start, local(r))
}

/// The access-log record of a request, built only when the access log is on.
struct Log(Option<Box<Record>>);

impl Log {
    fn set(&mut self, f: impl FnOnce(&mut Record)) {
        if let Some(r) = &mut self.0 {
            f(r);
        }
    }
}

/// One access-log record.
#[derive(Debug, serde::Serialize)]
pub struct Record {
    time: String,
    listener: String,
    route: String,
    cluster: String,
    method: String,
    path: String,
    authority: String,
    protocol: &'static str,
    client: String,
    request_id: String,
    status: u16,
    local: bool,
    complete: bool,
    duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream_error: Option<String>,
}

impl Record {
    fn new(listener: &str, req: &Request<Incoming>, conn: ConnInfo) -> Record {
        let secs = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs_f64();
        Record {
            time: format!("{secs:.6}"),
            listener: listener.to_owned(),
            route: String::new(),
            cluster: String::new(),
            method: req.method().as_str().to_owned(),
            path: req.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned(),
            authority: req.uri().authority().map(|a| a.to_string()).unwrap_or_else(|| {
                req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default().to_owned()
            }),
            protocol: protocol(req.version()),
            client: conn.peer.to_string(),
            request_id: String::new(),
            status: 0,
            local: false,
            complete: false,
            duration_ms: 0.0,
            upstream_ms: None,
            upstream_error: None,
        }
    }
}

// === Headers ===

/// The HTTP version as Proxy-Wasm's `request.protocol` names it.
pub fn protocol(v: Version) -> &'static str {
    match v {
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

fn authority(parts: &http::request::Parts) -> Option<String> {
    parts
        .uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_owned))
}

fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// Every header as (lower-case name, value bytes).
pub fn header_pairs(h: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    h.iter().map(owned_pair).collect()
}

/// One header as a (lower-case name, value bytes) pair of its own.
fn owned_pair((n, v): (&HeaderName, &HeaderValue)) -> (String, Vec<u8>) {
    (n.as_str().to_owned(), v.as_bytes().to_vec())
}

fn request_pairs(parts: &http::request::Parts, authority: &str, tls: bool) -> Vec<(String, Vec<u8>)> {
    let mut pairs = Vec::with_capacity(parts.headers.len() + 4);
    pairs.push((":method".into(), parts.method.as_str().as_bytes().to_vec()));
    pairs.push((":path".into(), parts.uri.path_and_query().map_or("/", |p| p.as_str()).as_bytes().to_vec()));
    pairs.push((":authority".into(), authority.as_bytes().to_vec()));
    pairs.push((":scheme".into(), if tls { b"https".to_vec() } else { b"http".to_vec() }));
    for (n, v) in &parts.headers {
        if n != header::HOST {
            pairs.push(owned_pair((n, v)));
        }
    }
    pairs
}

fn response_pairs(parts: &http::response::Parts) -> Vec<(String, Vec<u8>)> {
    let mut pairs = Vec::with_capacity(parts.headers.len() + 1);
    pairs.push((":status".into(), parts.status.as_str().as_bytes().to_vec()));
    pairs.extend(parts.headers.iter().map(owned_pair));
    pairs
}

/// Headers from pairs, pseudo headers and invalid names or values left out.
pub fn pairs_to_headers(pairs: &[(String, Vec<u8>)]) -> HeaderMap {
    rebuild_headers(&HeaderMap::new(), pairs)
}

/// [`pairs_to_headers`], taking each header a filter left as it was from `old` (the map the
/// pairs were made from): its name and value are already parsed and its bytes shared, so only
/// the headers a filter added or changed are parsed and copied again.
fn rebuild_headers(old: &HeaderMap, pairs: &[(String, Vec<u8>)]) -> HeaderMap {
    let old_entries: Vec<(&HeaderName, &HeaderValue)> = old.iter().collect();
    // The pairs follow `old`'s order, so the next old entry is the first one to look at.
    let mut next = 0;
    let mut h = HeaderMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        if name.starts_with(':') {
            continue;
        }
        let n = old_entries.len();
        let same = (0..n)
            .map(|k| (next + k) % n)
            .find(|&i| old_entries[i].0.as_str() == name.as_str() && old_entries[i].1.as_bytes() == value.as_slice());
        if let Some(i) = same {
            next = i + 1;
            h.append(old_entries[i].0.clone(), old_entries[i].1.clone());
            continue;
        }
        match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value)) {
            (Ok(n), Ok(v)) => {
                h.append(n, v);
            }
            _ => tracing::warn!(header = %name, "a filter set an invalid header; dropped"),
        }
    }
    h
}

fn pseudo<'a>(pairs: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
}

/// Whether the pairs' headers (pseudo headers aside) are exactly `old`'s, in `old`'s order
/// (`host` left out of `old` when `skip_host`, as [`request_pairs`] leaves it out): then a filter
/// only read them, and there is nothing to rebuild. One pass, no allocation; any difference,
/// even in case or order, gives `false` and the map is rebuilt.
fn same_headers(old: &HeaderMap, pairs: &[(String, Vec<u8>)], skip_host: bool) -> bool {
    let mut olds = old.iter().filter(|(n, _)| !(skip_host && *n == header::HOST));
    let mut news = pairs.iter().filter(|(n, _)| !n.starts_with(':'));
    loop {
        match (olds.next(), news.next()) {
            (None, None) => return true,
            (Some((on, ov)), Some((nn, nv))) if on.as_str() == nn && ov.as_bytes() == nv.as_slice() => {}
            _ => return false,
        }
    }
}

fn apply_request_pairs(parts: &mut http::request::Parts, pairs: &[(String, Vec<u8>)]) {
    // `None`: the headers stay as they are (`same_headers`).
    let mut headers = (!same_headers(&parts.headers, pairs, true)).then(|| rebuild_headers(&parts.headers, pairs));
    if let Some(m) = pseudo(pairs, ":method").filter(|m| *m != parts.method.as_str().as_bytes())
        && let Ok(m) = http::Method::from_bytes(m)
    {
        parts.method = m;
    }
    let origin_form = parts.uri.scheme().is_none() && parts.uri.authority().is_none();
    if let Some(p) = pseudo(pairs, ":path")
        && !(origin_form && parts.uri.path_and_query().is_some_and(|pq| pq.as_str().as_bytes() == p))
        && let Ok(p) = http::uri::PathAndQuery::try_from(p)
    {
        parts.uri = http::Uri::from(p);
    }
    if let Some(a) = pseudo(pairs, ":authority") {
        // The host header the request came with, when the filter left the authority alone.
        let same = parts.headers.get(header::HOST).filter(|h| h.as_bytes() == a).cloned();
        if let Some(v) = same.or_else(|| HeaderValue::from_bytes(a).ok()) {
            headers.as_mut().unwrap_or(&mut parts.headers).insert(header::HOST, v);
        }
    }
    if let Some(headers) = headers {
        parts.headers = headers;
    }
}

fn apply_response_pairs(parts: &mut http::response::Parts, pairs: &[(String, Vec<u8>)]) {
    if let Some(s) = pseudo(pairs, ":status").and_then(|s| StatusCode::from_bytes(s).ok()) {
        parts.status = s;
    }
    if !same_headers(&parts.headers, pairs, false) {
        parts.headers = rebuild_headers(&parts.headers, pairs);
    }
}

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// The connection-specific headers a proxy never forwards (besides those `connection` names).
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    KEEP_ALIVE,
    PROXY_CONNECTION,
];

/// Whether `name` has exactly one value in `h`, and it is `value`.
fn is_only_value(h: &HeaderMap, name: &HeaderName, value: &[u8]) -> bool {
    let mut all = h.get_all(name).iter();
    matches!((all.next(), all.next()), (Some(v), None) if v.as_bytes() == value)
}

/// Removes connection-specific headers (RFC 9110 §7.6.1), keeping `te: trailers`.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    // Most messages have none of them: one look at the names settles it.
    if !h.keys().any(|n| HOP_BY_HOP.contains(n)) {
        return;
    }
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        h.remove(n);
    }
    let te_trailers = h.get_all(header::TE).iter().any(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
    for n in &HOP_BY_HOP {
        h.remove(n);
    }
    if te_trailers {
        h.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

fn append_forwarded_for(h: &mut HeaderMap, peer: SocketAddr) {
    let prev = h.get(X_FORWARDED_FOR).and_then(|v| v.to_str().ok()).filter(|p| !p.is_empty());
    let mut value = Vec::with_capacity(prev.map_or(0, |p| p.len() + 2) + 15);
    if let Some(prev) = prev {
        value.extend_from_slice(prev.as_bytes());
        value.extend_from_slice(b", ");
    }
    write_ip(&mut value, peer.ip());
    if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(value)) {
        h.insert(X_FORWARDED_FOR, v);
    }
}

/// Appends `ip` as text, as its `Display` writes it (IPv4 without the formatting machinery).
fn write_ip(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(a) => {
            for (i, octet) in a.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        std::net::IpAddr::V6(a) => {
            use std::io::Write as _;
            let _ = write!(out, "{a}");
        }
    }
}

/// A random, UUID-shaped request id.
fn new_request_id() -> String {
    static SEED: LazyLock<std::collections::hash_map::RandomState> = LazyLock::new(Default::default);
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut a = SEED.build_hasher();
    a.write_u64(n);
    let mut b = SEED.build_hasher();
    b.write_u64(!n);
    format_request_id(a.finish(), b.finish())
}

/// `{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}` of `x` and `y`, written out: this runs for most
/// requests, and the formatting machinery costs more than the hashing.
fn format_request_id(x: u64, y: u64) -> String {
    let mut id = String::with_capacity(36);
    for (i, (v, digits)) in [
        (x >> 32, 8),
        ((x >> 16) & 0xffff, 4),
        (0x4000 | (x & 0xfff), 4),
        ((y >> 48) & 0x3fff | 0x8000, 4),
        (y & 0xffff_ffff_ffff, 12),
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            id.push('-');
        }
        for shift in (0..digits).rev() {
            id.push(char::from(b"0123456789abcdef"[((v >> (shift * 4)) & 0xf) as usize]));
        }
    }
    id
}

/// How long a filter's `http_call` may take when the filter gave no timeout.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go_and_te_trailers_stays() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("close, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-kept", HeaderValue::from_static("yes"));
        strip_hop_by_hop(&mut h);
        let mut names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["te", "x-kept"]);
    }

    #[test]
    fn forwarded_for_appends() {
        let mut h = HeaderMap::new();
        append_forwarded_for(&mut h, "10.0.0.1:5".parse().unwrap());
        append_forwarded_for(&mut h, "127.0.0.1:6".parse().unwrap());
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
    }

    #[test]
    fn request_ids_and_addresses_read_as_their_formatted_forms() {
        for (x, y) in [(0, 0), (u64::MAX, u64::MAX), (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210)] {
            let expected = format!(
                "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
                x >> 32,
                (x >> 16) & 0xffff,
                x & 0xfff,
                (y >> 48) & 0x3fff | 0x8000,
                y & 0xffff_ffff_ffff
            );
            assert_eq!(format_request_id(x, y), expected);
        }
        for ip in ["0.0.0.0", "1.2.3.4", "10.100.255.9", "255.255.255.255", "::1", "fe80::1:2", "::ffff:1.2.3.4"] {
            let mut out = Vec::new();
            write_ip(&mut out, ip.parse().unwrap());
            assert_eq!(String::from_utf8(out).unwrap(), ip);
        }
    }

    #[test]
    fn request_ids_are_unique_and_uuid_shaped() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
    }

    #[test]
    fn rebuilt_headers_keep_unchanged_ones_and_take_every_change() {
        let mut old = HeaderMap::new();
        old.append("a", HeaderValue::from_static("1"));
        old.append("b", HeaderValue::from_static("2"));
        old.append("a", HeaderValue::from_static("3"));
        old.append("c", HeaderValue::from_static("4"));
        let pairs: Vec<(String, Vec<u8>)> =
            [(":status", "200"), ("a", "1"), ("a", "3"), ("b", "changed"), ("new", "5"), ("bad name", "x"), ("a", "1")]
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect();
        let h = rebuild_headers(&old, &pairs);
        assert_eq!(h, pairs_to_headers(&pairs));
        let got: Vec<(&str, &[u8])> = h.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
        assert_eq!(got, [("a", &b"1"[..]), ("a", b"3"), ("a", b"1"), ("b", b"changed"), ("new", b"5")]);
        // Nothing changed: the same map.
        let same: Vec<(String, Vec<u8>)> = header_pairs(&old);
        assert_eq!(rebuild_headers(&old, &same), old);
    }

    #[test]
    fn pairs_round_trip_and_pseudo_headers_apply() {
        let req =
            Request::builder().method("GET").uri("/a?b=1").header("host", "h:1").header("x-y", "z").body(()).unwrap();
        let (mut parts, ()) = req.into_parts();
        let mut pairs = request_pairs(&parts, "h:1", false);
        assert_eq!(pairs[0], (":method".into(), b"GET".to_vec()));
        assert_eq!(pairs[1], (":path".into(), b"/a?b=1".to_vec()));
        pairs[1].1 = b"/rewritten".to_vec();
        pairs.push(("x-added".into(), b"1".to_vec()));
        apply_request_pairs(&mut parts, &pairs);
        assert_eq!(parts.uri.path(), "/rewritten");
        assert_eq!(parts.headers["host"], "h:1");
        assert_eq!(parts.headers["x-added"], "1");
        assert_eq!(parts.headers["x-y"], "z");
    }

    #[test]
    fn headers_a_filter_only_read_stay_as_they_were() {
        let req = Request::builder()
            .uri("/p")
            .header("x-a", "1")
            .header("host", "h:1")
            .header("x-b", "2")
            .header("x-a", "3")
            .body(())
            .unwrap();
        let (mut parts, ()) = req.into_parts();
        let before: Vec<(String, Vec<u8>)> = header_pairs(&parts.headers);
        let pairs = request_pairs(&parts, "h:1", false);
        assert!(same_headers(&parts.headers, &pairs, true));
        apply_request_pairs(&mut parts, &pairs);
        assert_eq!(header_pairs(&parts.headers), before, "same headers, same order, host where it was");
        // A new authority still replaces the host header.
        let mut moved = request_pairs(&parts, "h:1", false);
        moved[2].1 = b"other:2".to_vec();
        apply_request_pairs(&mut parts, &moved);
        assert_eq!(parts.headers.get_all("host").iter().collect::<Vec<_>>(), ["other:2"]);
        // Any change to a header, its case or its order is a change.
        let base = request_pairs(&parts, "other:2", false);
        for edit in 0..4 {
            let mut p = base.clone();
            match edit {
                0 => p[4].1 = b"changed".to_vec(),
                1 => p[4].0 = "X-A".into(),
                2 => p.swap(4, 5),
                _ => p.push(("x-new".into(), b"v".to_vec())),
            }
            assert!(!same_headers(&parts.headers, &p, true), "edit {edit}");
        }
        assert!(!same_headers(&parts.headers, &base[..base.len() - 1], true), "a removed header");
        // Responses: unchanged pairs keep the map; a new status applies either way.
        let resp = http::Response::builder().status(200).header("a", "1").header("b", "2").body(()).unwrap();
        let (mut rparts, ()) = resp.into_parts();
        let mut rpairs = response_pairs(&rparts);
        assert!(same_headers(&rparts.headers, &rpairs, false));
        rpairs[0].1 = b"503".to_vec();
        apply_response_pairs(&mut rparts, &rpairs);
        assert_eq!(rparts.status, 503);
        assert_eq!(header_pairs(&rparts.headers), [("a".to_string(), b"1".to_vec()), ("b".to_string(), b"2".to_vec())]);
    }
}
