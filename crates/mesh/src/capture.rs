//! Transparent capture (`capture:` in docs/MESH.md): duet's capture programs (`examples/capture`)
//! attached to the application's cgroup for as long as the sidecar runs.
//!
//! The `connect4` program sends the cgroup's outbound TCP connections to the capture listener and
//! records each original destination (the `connect6` program does the same for IPv4 addresses
//! dialled through IPv6 sockets, `::ffff:a.b.c.d`); the `sock_ops` program files it under the client's local
//! port in `BY_PORT`. On accepting a connection on the capture listener, the sidecar looks the
//! peer's port up there ([`Capture::accepted`]): the connection is on loopback to a
//! fixed listener address, so the peer's port alone names it. The entry is removed when the
//! connection closes ([`Capture::closed`]).
//!
//! With `short_circuit` on, the `sock_ops` program also files each captured connection's
//! application socket in the `SOCKETS` sockhash, the sidecar files its accepted socket there
//! (in [`Capture::accepted`]), and the `sk_msg` program `short_circuit`, linked to that map, hands
//! each side's sends straight to the other socket's receive queue: the loopback hop between the
//! application and the sidecar skips TCP/IP.
//!
//! With `inbound`, the `inbound` (sk_lookup) program, attached to the network namespace the
//! application and the sidecar share, gives TCP connections arriving from other hosts for the
//! listed application ports to the sidecar's inbound listener, which the sidecar files in the
//! `INBOUND` sockmap. The packets are not rewritten, so an accepted connection's local address is
//! its original destination ([`Capture::accepted`]), where the sidecar forwards its requests; the
//! sidecar's own connection there comes from that address and is left alone.
//!
//! With `monitor` on (the default), the same `sock_ops` program watches every IPv4 TCP connection
//! of the cgroup (RTT samples, retransmits, state changes) and a thread of the sidecar
//! ([`Capture::start`]'s monitor) turns its `TCP_STATS` totals and `TCP_EVENTS` records into
//! `duet_mesh_tcp_*` metrics and `{"type":"tcp",...}` events.
//!
//! The programs are attached through links only this process holds (duet-kernel's
//! `ScopedAttachment`): when the sidecar stops, or dies, the kernel detaches them, so a dead
//! sidecar never leaves the cgroup's connections pointed at a closed listener. The maps are pinned
//! under a directory of this sidecar's for inspection, which the next start empties.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use duet_kernel::{Hook, PinnedMaps, ScopedAttachment, ScopedRequest};

use crate::MeshError;
use crate::config;
use crate::runtime::Shared;

/// The capture programs of one sidecar, attached.
#[derive(Debug)]
pub struct Capture {
    /// The capture listener's name.
    pub listener: String,
    /// With `short_circuit`, the capture listener's address: the local end of every captured
    /// connection the sidecar accepts (connect4 sends them exactly there).
    short_circuit: Option<SocketAddrV4>,
    /// With `inbound`, the inbound listener's name and port.
    inbound: Option<(String, u16)>,
    attachment: Arc<Mutex<Option<ScopedAttachment>>>,
    monitor: Mutex<Option<std::thread::JoinHandle<()>>>,
    stopping: Arc<AtomicBool>,
}

/// The inbound listener, bound, for [`Capture::start`]: its address and a duplicate of its
/// socket, which is filed in the `INBOUND` sockmap (the map holds the socket, not the
/// descriptor, which the caller may close afterwards).
#[derive(Debug)]
pub struct InboundListener {
    /// The bound address.
    pub address: SocketAddrV4,
    /// The listening socket.
    pub socket: OwnedFd,
}

/// The network namespace the `inbound` program attaches to when the config does not say: the
/// sidecar's own, which it shares with the application (a pod).
const OWN_NETNS: &str = "/proc/self/ns/net";

/// Where the maps are pinned when the config does not say.
const PIN_BASE: &str = "/sys/fs/bpf/duet-mesh";

impl Capture {
    /// Loads `config.bpf` and attaches its `redirect` (connect4), `redirect6` (connect6) and
    /// `record` (sock_ops) programs to `config.cgroup`, sending captured connections to `listener` (the bound
    /// address of the capture listener); with `config.inbound`, attaches `inbound` (sk_lookup) to
    /// the network namespace and files `inbound`'s socket for it; with `config.monitor`, starts
    /// the thread that reads the TCP monitoring maps into `shared`'s metrics and events.
    /// Blocking: the kernel verifies the programs.
    pub fn start(
        config: &config::Capture,
        listener: SocketAddrV4,
        inbound: Option<InboundListener>,
        shared: Weak<Shared>,
    ) -> Result<Capture, MeshError> {
        let fail = |what: &str, e: &dyn std::error::Error| {
            MeshError::Invalid(format!("capture: {what}: {}", crate::error_chain(e)))
        };
        let object =
            std::fs::read(&config.bpf).map_err(|e| fail(&format!("cannot read {}", config.bpf.display()), &e))?;
        let pin_dir = config
            .pin_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(PIN_BASE).join(format!("{}_{}", listener.ip(), listener.port())));
        let mut settings = Vec::with_capacity(16);
        settings.extend_from_slice(&listener.ip().octets());
        settings.extend_from_slice(&listener.port().to_le_bytes());
        settings.push(u8::from(!config.ports.is_empty()));
        settings.push(1);
        settings.extend_from_slice(&std::process::id().to_le_bytes());
        settings.extend_from_slice(&u32::from(config.monitor).to_le_bytes());
        settings.extend_from_slice(&u32::from(config.short_circuit).to_le_bytes());
        let inbound_config = config.inbound.as_ref().zip(inbound.as_ref());
        settings.extend_from_slice(&u32::from(inbound_config.is_some()).to_le_bytes());
        let mut seed = vec![("CONFIG", 0u32.to_le_bytes().to_vec(), settings)];
        for port in &config.ports {
            seed.push(("PORTS", port.to_le_bytes().to_vec(), vec![1]));
        }
        let mut programs = vec![
            ("redirect", Hook::CgroupConnect4 { cgroup: config.cgroup.clone() }),
            ("redirect6", Hook::CgroupConnect6 { cgroup: config.cgroup.clone() }),
            ("record", Hook::SockOps { cgroup: config.cgroup.clone() }),
        ];
        if let Some((c, _)) = inbound_config {
            for port in &c.ports {
                seed.push(("INBOUND_PORTS", port.to_le_bytes().to_vec(), vec![1]));
            }
            let netns = c.netns.clone().unwrap_or_else(|| PathBuf::from(OWN_NETNS));
            programs.push(("inbound", Hook::SkLookup { netns }));
        }
        let req = ScopedRequest {
            object: &object,
            programs,
            sk_msg: if config.short_circuit { vec![("short_circuit", "SOCKETS")] } else { Vec::new() },
            pin_dir: &pin_dir,
            seed,
        };
        let attachment = ScopedAttachment::attach(&req)
            .map_err(|e| fail(&format!("cannot attach {} to {}", config.bpf.display(), config.cgroup.display()), &e))?;
        if let Some((c, l)) = inbound_config {
            // Until this, arriving connections go to the application as usual.
            attachment
                .update("INBOUND", &0u32.to_le_bytes(), &l.socket.as_raw_fd().to_ne_bytes())
                .map_err(|e| fail(&format!("cannot file the inbound listener `{}` in INBOUND", c.listener), &e))?;
            tracing::info!(listener = %l.address, ports = ?c.ports, "inbound capture attached");
        }
        tracing::info!(
            cgroup = %config.cgroup.display(), listener = %listener, pins = %pin_dir.display(),
            "capture attached"
        );
        let attachment = Arc::new(Mutex::new(Some(attachment)));
        let stopping = Arc::new(AtomicBool::new(false));
        let monitor = if config.monitor {
            let reader = PinnedMaps::open(&pin_dir, &pin_dir.join("maps").to_string_lossy())
                .and_then(|maps| maps.ring_buf(Some("TCP_EVENTS")))
                .map_err(|e| fail(&format!("{} has no TCP monitoring ring (TCP_EVENTS)", config.bpf.display()), &e))?;
            let (attachment, stopping) = (Arc::clone(&attachment), Arc::clone(&stopping));
            let thread = std::thread::Builder::new()
                .name("duet-tcp-monitor".into())
                .spawn(move || monitor(reader, &attachment, &stopping, &shared))
                .map_err(|e| fail("cannot start the TCP monitor", &e))?;
            Some(thread)
        } else {
            None
        };
        Ok(Capture {
            listener: config.listener.clone(),
            short_circuit: config.short_circuit.then_some(listener),
            inbound: inbound_config.map(|(c, l)| (c.listener.clone(), l.address.port())),
            attachment,
            monitor: Mutex::new(monitor),
            stopping,
        })
    }

    /// Whether connections accepted on listener `name` are captured ones (the capture listener,
    /// or the inbound one).
    pub fn serves(&self, name: &str) -> bool {
        *self.listener == *name || self.inbound.as_ref().is_some_and(|(inbound, _)| inbound == name)
    }

    /// A connection from `peer` was accepted on listener `name`: its original destination (where
    /// the sidecar forwards it), if capture gave it to the listener. For the capture listener
    /// that is the destination `redirect` recorded (and with `short_circuit` the socket is filed);
    /// for the inbound listener it is the connection's own local address, unless the connection
    /// was made to the listener itself.
    pub fn accepted(&self, name: &str, socket: &tokio::net::TcpStream, peer: SocketAddr) -> Option<SocketAddr> {
        if *self.listener == *name {
            let destination = self.original_destination(peer)?;
            self.file_socket(socket.as_fd(), peer);
            return Some(destination);
        }
        let (_, port) = self.inbound.as_ref().filter(|(inbound, _)| inbound == name)?;
        // `inbound` gives the listener only ports in `INBOUND_PORTS`, which never hold its own.
        socket.local_addr().ok().filter(|local| local.port() != *port)
    }

    /// The connection from `peer` that [`Capture::accepted`] gave a destination on listener
    /// `name` closed.
    pub fn closed(&self, name: &str, peer: SocketAddr) {
        if *self.listener == *name {
            self.forget(peer);
        }
    }

    /// With `short_circuit`, files the sidecar's accepted socket of a captured connection
    /// (`peer` is the application's end; the local end is the capture listener) in `SOCKETS`,
    /// where the application's socket already is: from then on the `short_circuit` program
    /// passes each side's sends straight onto the other's receive queue. Data the application
    /// sent before this stays in the socket's TCP receive queue and is read first. A failure
    /// only means the connection takes the usual path.
    fn file_socket(&self, socket: BorrowedFd<'_>, peer: SocketAddr) {
        let (Some(local), SocketAddr::V4(peer)) = (self.short_circuit, peer) else { return };
        // `SockKey`: this socket's address, the peer's, this socket's port, the peer's.
        let mut key = Vec::with_capacity(12);
        key.extend_from_slice(&local.ip().octets());
        key.extend_from_slice(&peer.ip().octets());
        key.extend_from_slice(&local.port().to_le_bytes());
        key.extend_from_slice(&peer.port().to_le_bytes());
        let guard = self.attachment.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(a) = guard.as_ref()
            && let Err(e) = a.update("SOCKETS", &key, &socket.as_raw_fd().to_ne_bytes())
        {
            tracing::debug!(%peer, error = %crate::error_chain(&e), "capture: short circuit not set up for a connection");
        }
    }

    /// The original destination of the connection from `peer`, if capture redirected it.
    fn original_destination(&self, peer: SocketAddr) -> Option<SocketAddr> {
        let guard = self.attachment.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let value = guard.as_ref()?.lookup("BY_PORT", &peer.port().to_le_bytes()).ok()??;
        // `OrigDst`: the address in network order, the port, two bytes of padding.
        let (ip, port) = (value.get(..4)?, value.get(4..6)?);
        let ip = Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]);
        Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_le_bytes([port[0], port[1]]))))
    }

    /// Drops the record of the connection from `peer` (it closed).
    fn forget(&self, peer: SocketAddr) {
        let guard = self.attachment.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(a) = guard.as_ref() {
            let _ = a.remove("BY_PORT", &peer.port().to_le_bytes());
        }
    }

    /// Stops the monitor, detaches the programs and removes the pins.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        let thread = self.monitor.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        let taken = self.attachment.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(a) = taken {
            match a.detach() {
                Ok(()) => tracing::info!("capture detached"),
                Err(e) => tracing::warn!(error = %crate::error_chain(&e), "capture: detaching left pins behind"),
            }
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        // The monitor thread holds the attachment too: stop it, so the links go with the value.
        self.stop();
    }
}

/// How long the monitor waits for ring records before it reads the totals again.
const MONITOR_PERIOD: Duration = Duration::from_millis(200);

/// `TCP_STATS` indices (`examples/capture`): opened, closed, retransmits, bytes received, bytes
/// acknowledged, RTT samples, short-circuited sends and their bytes, inbound connections taken.
const TCP_STATS: usize = 9;

/// The monitor thread: until `stopping`, publishes `TCP_EVENTS` records as events (and closed
/// connections' RTT in the histogram) and moves the metrics' counters up to `TCP_STATS`' totals.
fn monitor(
    mut reader: duet_kernel::RingBufReader,
    attachment: &Mutex<Option<ScopedAttachment>>,
    stopping: &AtomicBool,
    shared: &Weak<Shared>,
) {
    let mut seen = [0u64; TCP_STATS];
    while !stopping.load(Ordering::Relaxed) {
        let records = match reader.next_batch(MONITOR_PERIOD) {
            Ok(records) => records,
            Err(e) => {
                tracing::warn!(error = %crate::error_chain(&e), "TCP monitor: reading TCP_EVENTS failed; monitoring stops");
                return;
            }
        };
        let Some(shared) = shared.upgrade() else { return };
        let tcp = &shared.metrics.tcp;
        for record in &records {
            let Some(event) = ConnEvent::parse(record) else {
                tracing::warn!(len = record.len(), "TCP monitor: a TCP_EVENTS record of an unknown size");
                continue;
            };
            if event.closed {
                tcp.srtt_seconds.observe(f64::from(event.srtt_us) / 1e6);
            }
            if shared.events.has_subscribers() {
                shared.events.publish(event.json().to_string());
            }
        }
        let totals = {
            let guard = attachment.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let Some(a) = guard.as_ref() else { return };
            let mut totals = seen;
            for (i, total) in totals.iter_mut().enumerate() {
                if let Ok(Some(v)) = a.lookup("TCP_STATS", &(i as u32).to_le_bytes())
                    && let Ok(bytes) = <[u8; 8]>::try_from(v.as_slice())
                {
                    *total = u64::from_le_bytes(bytes);
                }
            }
            totals
        };
        let counters = [
            &tcp.opened,
            &tcp.closed,
            &tcp.retransmits,
            &tcp.received_bytes,
            &tcp.acked_bytes,
            &tcp.rtt_samples,
            &tcp.short_circuit_messages,
            &tcp.short_circuit_bytes,
            &tcp.inbound_captured,
        ];
        for ((counter, total), seen) in counters.iter().zip(totals).zip(seen.iter_mut()) {
            counter.inc_by(total.saturating_sub(*seen));
            *seen = total.max(*seen);
        }
    }
}

/// A `ConnEvent` of `examples/capture` (56 bytes, little-endian).
#[derive(Debug, PartialEq)]
struct ConnEvent {
    closed: bool,
    srtt_us: u32,
    local: SocketAddrV4,
    remote: SocketAddrV4,
    retransmits: u32,
    duration_ns: u64,
    bytes_received: u64,
    bytes_acked: u64,
    rtt_samples: u64,
}

impl ConnEvent {
    fn parse(r: &[u8]) -> Option<ConnEvent> {
        if r.len() != 56 {
            return None;
        }
        let u32_at = |at: usize| u32::from_le_bytes([r[at], r[at + 1], r[at + 2], r[at + 3]]);
        let u16_at = |at: usize| u16::from_le_bytes([r[at], r[at + 1]]);
        let u64_at = |at: usize| u64::from_le_bytes(std::array::from_fn(|i| r[at + i]));
        let ip = |at: usize| Ipv4Addr::new(r[at], r[at + 1], r[at + 2], r[at + 3]);
        Some(ConnEvent {
            closed: u32_at(0) == 2,
            srtt_us: u32_at(4),
            local: SocketAddrV4::new(ip(8), u16_at(16)),
            remote: SocketAddrV4::new(ip(12), u16_at(18)),
            retransmits: u32_at(20),
            duration_ns: u64_at(24),
            bytes_received: u64_at(32),
            bytes_acked: u64_at(40),
            rtt_samples: u64_at(48),
        })
    }

    fn json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "type": "tcp",
            "event": if self.closed { "closed" } else { "opened" },
            "local": self.local.to_string(),
            "remote": self.remote.to_string(),
            "srtt_us": self.srtt_us,
        });
        if self.closed {
            v["retransmits"] = self.retransmits.into();
            v["bytes_received"] = self.bytes_received.into();
            v["bytes_acked"] = self.bytes_acked.into();
            v["duration_ms"] = (self.duration_ns as f64 / 1e6).into();
            v["rtt_samples"] = self.rtt_samples.into();
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_events_parse_as_the_capture_program_writes_them() {
        let mut r = Vec::new();
        r.extend(2u32.to_le_bytes());
        r.extend(250u32.to_le_bytes());
        r.extend([127, 0, 0, 1, 10, 0, 0, 9]);
        r.extend(40000u16.to_le_bytes());
        r.extend(443u16.to_le_bytes());
        r.extend(3u32.to_le_bytes());
        for v in [1_500_000u64, 5000, 120, 4] {
            r.extend(v.to_le_bytes());
        }
        let e = ConnEvent::parse(&r).unwrap();
        assert_eq!(
            e,
            ConnEvent {
                closed: true,
                srtt_us: 250,
                local: "127.0.0.1:40000".parse().unwrap(),
                remote: "10.0.0.9:443".parse().unwrap(),
                retransmits: 3,
                duration_ns: 1_500_000,
                bytes_received: 5000,
                bytes_acked: 120,
                rtt_samples: 4,
            }
        );
        assert_eq!(e.json()["duration_ms"], 1.5);
        assert_eq!(e.json()["event"], "closed");
        assert!(ConnEvent::parse(&r[..55]).is_none());
    }
}
