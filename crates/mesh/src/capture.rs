//! Transparent capture (`capture:` in docs/MESH.md): duet's capture programs (`examples/capture`)
//! attached to the application's cgroup for as long as the sidecar runs.
//!
//! The `connect4` program sends the cgroup's outbound TCP connections to the capture listener and
//! records each original destination; the `sock_ops` program files it under the client's local
//! port in `BY_PORT`. On accepting a connection on the capture listener, the sidecar looks the
//! peer's port up there ([`Capture::original_destination`]): the connection is on loopback to a
//! fixed listener address, so the peer's port alone names it. The entry is removed when the
//! connection closes ([`Capture::forget`]).
//!
//! The programs are attached through links only this process holds (duet-kernel's
//! `ScopedAttachment`): when the sidecar stops, or dies, the kernel detaches them, so a dead
//! sidecar never leaves the cgroup's connections pointed at a closed listener. The maps are pinned
//! under a directory of this sidecar's for inspection, which the next start empties.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::Mutex;

use duet_kernel::{Hook, ScopedAttachment, ScopedRequest};

use crate::MeshError;
use crate::config;

/// The capture programs of one sidecar, attached.
#[derive(Debug)]
pub struct Capture {
    /// The capture listener's name.
    pub listener: String,
    attachment: Mutex<Option<ScopedAttachment>>,
}

/// Where the maps are pinned when the config does not say.
const PIN_BASE: &str = "/sys/fs/bpf/duet-mesh";

impl Capture {
    /// Loads `config.bpf` and attaches its `redirect` (connect4) and `record` (sock_ops)
    /// programs to `config.cgroup`, sending captured connections to `listener` (the bound
    /// address of the capture listener). Blocking: the kernel verifies the programs.
    pub fn start(config: &config::Capture, listener: SocketAddrV4) -> Result<Capture, MeshError> {
        let fail = |what: &str, e: &dyn std::error::Error| {
            MeshError::Invalid(format!("capture: {what}: {}", crate::error_chain(e)))
        };
        let object =
            std::fs::read(&config.bpf).map_err(|e| fail(&format!("cannot read {}", config.bpf.display()), &e))?;
        let pin_dir = config
            .pin_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(PIN_BASE).join(format!("{}_{}", listener.ip(), listener.port())));
        let mut settings = Vec::with_capacity(12);
        settings.extend_from_slice(&listener.ip().octets());
        settings.extend_from_slice(&listener.port().to_le_bytes());
        settings.push(u8::from(!config.ports.is_empty()));
        settings.push(1);
        settings.extend_from_slice(&std::process::id().to_le_bytes());
        let mut seed = vec![("CONFIG", 0u32.to_le_bytes().to_vec(), settings)];
        for port in &config.ports {
            seed.push(("PORTS", port.to_le_bytes().to_vec(), vec![1]));
        }
        let req = ScopedRequest {
            object: &object,
            programs: vec![
                ("redirect", Hook::CgroupConnect4 { cgroup: config.cgroup.clone() }),
                ("record", Hook::SockOps { cgroup: config.cgroup.clone() }),
            ],
            pin_dir: &pin_dir,
            seed,
        };
        let attachment = ScopedAttachment::attach(&req)
            .map_err(|e| fail(&format!("cannot attach {} to {}", config.bpf.display(), config.cgroup.display()), &e))?;
        tracing::info!(
            cgroup = %config.cgroup.display(), listener = %listener, pins = %pin_dir.display(),
            "capture attached"
        );
        Ok(Capture { listener: config.listener.clone(), attachment: Mutex::new(Some(attachment)) })
    }

    /// The original destination of the connection from `peer`, if capture redirected it.
    pub fn original_destination(&self, peer: SocketAddr) -> Option<SocketAddr> {
        let guard = self.attachment.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let value = guard.as_ref()?.lookup("BY_PORT", &peer.port().to_le_bytes()).ok()??;
        // `OrigDst`: the address in network order, the port, two bytes of padding.
        let (ip, port) = (value.get(..4)?, value.get(4..6)?);
        let ip = Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]);
        Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_le_bytes([port[0], port[1]]))))
    }

    /// Drops the record of the connection from `peer` (it closed).
    pub fn forget(&self, peer: SocketAddr) {
        let guard = self.attachment.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(a) = guard.as_ref() {
            let _ = a.remove("BY_PORT", &peer.port().to_le_bytes());
        }
    }

    /// Detaches the programs and removes the pins.
    pub fn stop(&self) {
        let taken = self.attachment.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(a) = taken {
            match a.detach() {
                Ok(()) => tracing::info!("capture detached"),
                Err(e) => tracing::warn!(error = %crate::error_chain(&e), "capture: detaching left pins behind"),
            }
        }
    }
}
