//! The event stream: ring-buffer records that filters emit and the built-in access events, as
//! JSON lines, to every subscriber of the admin API's `GET /events` (and so `duet mesh events`).
//!
//! A bounded broadcast channel sits between the publishers (the request path, the ring-buffer
//! drainer) and the subscribers: a slow subscriber loses the oldest lines and is told how many
//! (`{"type":"lagged","missed":N}`), and nobody waits for it. Access events are built only while
//! someone subscribes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use tokio::sync::{broadcast, mpsc};

use crate::runtime::Shared;

/// Lines kept for each subscriber before the oldest are dropped.
const CAPACITY: usize = 4096;
/// How often filters' ring buffers are drained.
pub const DRAIN_PERIOD: Duration = Duration::from_millis(20);

/// The hub.
#[derive(Debug)]
pub struct Events {
    tx: broadcast::Sender<Arc<str>>,
    published: AtomicU64,
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}

impl Events {
    /// An empty hub.
    pub fn new() -> Events {
        Events { tx: broadcast::channel(CAPACITY).0, published: AtomicU64::new(0) }
    }

    /// Whether anyone listens (events are not built otherwise).
    pub fn has_subscribers(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Sends one JSON line (without its newline) to every subscriber.
    pub fn publish(&self, line: String) {
        self.published.fetch_add(1, Ordering::Relaxed);
        let _ = self.tx.send(Arc::from(line));
    }

    /// Sends `value` as one line.
    pub fn publish_json(&self, value: &impl serde::Serialize) {
        if let Ok(line) = serde_json::to_string(value) {
            self.publish(line);
        }
    }

    /// A new subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.tx.subscribe()
    }

    /// Lines published since the start.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }
}

/// The next line for a subscriber (`None` once the hub is gone), with its newline.
pub async fn next_line(rx: &mut broadcast::Receiver<Arc<str>>) -> Option<String> {
    match rx.recv().await {
        Ok(line) => Some(format!("{line}\n")),
        Err(broadcast::error::RecvError::Lagged(n)) => Some(format!("{{\"type\":\"lagged\",\"missed\":{n}}}\n")),
        Err(broadcast::error::RecvError::Closed) => None,
    }
}

/// The body of `GET /events`: one JSON line per frame, until the client goes away.
#[derive(Debug)]
pub struct EventBody {
    rx: mpsc::Receiver<Bytes>,
}

impl EventBody {
    /// Subscribes, and forwards lines from a task that ends when the client is gone.
    pub fn subscribe(events: &Events) -> EventBody {
        let mut sub = events.subscribe();
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            // A first line right away, so that clients know the stream is open.
            if tx.send(Bytes::from_static(b"{\"type\":\"subscribed\"}\n")).await.is_err() {
                return;
            }
            while let Some(line) = next_line(&mut sub).await {
                if tx.send(Bytes::from(line)).await.is_err() {
                    return;
                }
            }
        });
        EventBody { rx }
    }
}

impl Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|line| line.map(|l| Ok(Frame::data(l))))
    }
}

/// Drains every ring-buffer map of the current snapshot's filters and route programs into the
/// hub, until `shared` is dropped. Records are consumed even without subscribers, so a ring
/// never fills up because nobody watches.
pub async fn drain_ring_buffers(shared: std::sync::Weak<Shared>) {
    let mut tick = tokio::time::interval(DRAIN_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else { return };
        let snapshot = shared.snapshot();
        // `trace` lines: logged at debug and streamed; taken either way, so they never pile up.
        let mut traces: Vec<(String, Vec<String>)> =
            snapshot.filters().iter().map(|f| (f.name().to_owned(), f.take_trace())).collect();
        traces.extend(snapshot.route_programs().iter().map(|p| (p.owner.clone(), p.take_trace())));
        for (owner, lines) in traces {
            for line in lines {
                tracing::debug!(owner = %owner, "trace: {line}");
                if shared.events.has_subscribers() {
                    shared
                        .events
                        .publish_json(&serde_json::json!({ "type": "trace", "owner": owner, "message": line }));
                }
            }
        }
        for m in snapshot.maps() {
            if m.map.map_type() != duet_maps::MapType::RingBuf {
                continue;
            }
            for record in m.map.ringbuf_drain() {
                if shared.events.has_subscribers() {
                    shared.events.publish_json(&serde_json::json!({
                        "type": "ringbuf",
                        "owner": m.owner,
                        "map": m.name,
                        "len": record.len(),
                        "data": crate::maps_api::hex(&record),
                    }));
                }
            }
        }
    }
}
