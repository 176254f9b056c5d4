//! # duet-runner — the package format
//!
//! **Internal** (shared by `duet package`, which writes packages, and the `duet-runner` binary,
//! which runs them).
//!
//! A package is one executable: the `duet-runner` binary, unchanged, followed by a payload and a
//! fixed-size trailer at the very end of the file:
//!
//! ```text
//! [ duet-runner (ELF) ][ manifest (JSON) ][ code (wasmtime's precompiled module or component) ][ trailer, 64 bytes ]
//!                                                                                                │
//!   magic "DUETPKG\x01" · format u32 · 0u32 · manifest length u64 · code length u64 · SHA-256 ─────┘
//!   of manifest ‖ code (the lengths and integers little-endian)
//! ```
//!
//! The loader appends nothing to the ELF image the kernel maps (the payload lies past every
//! segment), so the runner finds its payload by reading the end of its own file. The SHA-256 is
//! checked before any byte of the code reaches wasmtime: a truncated or corrupted payload is an
//! error, never code that runs. wasmtime then checks that the code was compiled by the same
//! wasmtime version with the same engine settings for this CPU.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use duet_app::AppConfig;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The first bytes of the trailer.
pub const MAGIC: [u8; 8] = *b"DUETPKG\x01";
/// The version of this layout and of [`Manifest`]'s meaning.
pub const FORMAT: u32 = 1;
/// Bytes of the trailer at the end of a package.
pub const TRAILER_LEN: usize = 64;
/// Largest manifest accepted, so a corrupted length cannot make the runner allocate wildly.
const MAX_MANIFEST: u64 = 1 << 20;

/// What a package holds besides its code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The file the code was compiled from (its name only), for messages.
    pub source: String,
    /// Hex SHA-256 of that file's bytes, to tell which build of it this is.
    pub source_sha256: String,
    /// The duet version that wrote the package.
    pub duet_version: String,
    /// A packet program or an HTTP app.
    pub artifact: Artifact,
}

/// The two things a package can be.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Artifact {
    /// A duet-ABI module: its code is a precompiled core module.
    Program {
        /// The program run by default (`--program` picks another).
        program: String,
        /// Its hook (`xdp`, `classifier`, ...), for `--help` and `--info`.
        hook: String,
        /// The module's `duet.maps` manifest (docs/ABI.md), which compiled code does not keep.
        maps_manifest: Option<String>,
    },
    /// A `wasi:http/incoming-handler` component: its code is a precompiled component.
    App {
        /// Its limits and environment as packaged (`config.wasm` only names it).
        config: AppConfig,
        /// Entries of the in-memory `duet:app/kv` store the app gets; `None`: no store.
        kv_entries: Option<usize>,
    },
}

/// A package's contents.
#[derive(Clone, PartialEq, Eq)]
pub struct Payload {
    /// What it is.
    pub manifest: Manifest,
    /// wasmtime's precompiled bytes.
    pub code: Vec<u8>,
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payload").field("manifest", &self.manifest).field("code_bytes", &self.code.len()).finish()
    }
}

/// Why a package cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackageError {
    /// The file could not be read.
    #[error("cannot read the package")]
    Io(#[from] std::io::Error),
    /// The trailer is there but describes more bytes than the file has.
    #[error("the payload is truncated: the trailer describes {wanted} bytes but the file has {have} before it")]
    Truncated {
        /// Payload bytes the trailer describes.
        wanted: u64,
        /// Bytes before the trailer.
        have: u64,
    },
    /// The payload's digest does not match the trailer's: the file was altered after packaging.
    #[error(
        "the payload is corrupted: its SHA-256 does not match the one recorded when it was packaged \
         (package it again with `duet package`)"
    )]
    Digest,
    /// A newer or older layout.
    #[error("package format {found}, but this runner reads format {FORMAT} (package it again with this duet)")]
    Format {
        /// The format found.
        found: u32,
    },
    /// The manifest is not what this runner understands.
    #[error("the package manifest is invalid: {0}")]
    Manifest(String),
}

/// Writes `runner` followed by `payload` and the trailer: the bytes of a package.
pub fn assemble(runner: &[u8], payload: &Payload) -> Result<Vec<u8>, PackageError> {
    let manifest = serde_json::to_vec(&payload.manifest).map_err(|e| PackageError::Manifest(e.to_string()))?;
    let mut out = Vec::with_capacity(runner.len() + manifest.len() + payload.code.len() + TRAILER_LEN);
    out.extend_from_slice(runner);
    out.extend_from_slice(&manifest);
    out.extend_from_slice(&payload.code);
    out.extend_from_slice(&trailer(&manifest, &payload.code));
    Ok(out)
}

/// What a `duet-runner` executable can run, from the marker its build leaves in its bytes
/// (`duet-runner-hosts:program,app`): `program` (packet programs) and, unless it was built
/// without the `app` feature, `app`. `None` when there is no marker (not a duet-runner, or one
/// older than the marker: assume it runs both).
pub fn runner_hosts(runner: &[u8]) -> Option<Vec<String>> {
    const MARKER: &[u8] = b"duet-runner-hosts:";
    let at = runner.windows(MARKER.len()).position(|w| w == MARKER)? + MARKER.len();
    let rest = &runner[at..];
    let end = rest.iter().take(64).position(|&b| b == 0)?;
    let list = std::str::from_utf8(&rest[..end]).ok()?;
    Some(list.split(',').map(str::to_owned).collect())
}

/// The runner part and the payload of a package in memory; `None` when `bytes` has no trailer
/// (a bare `duet-runner`).
pub fn split(bytes: &[u8]) -> Result<Option<(&[u8], Payload)>, PackageError> {
    let Some(trailer) = bytes.len().checked_sub(TRAILER_LEN).map(|at| &bytes[at..]) else { return Ok(None) };
    let Some(t) = Trailer::parse(trailer)? else { return Ok(None) };
    let before = (bytes.len() - TRAILER_LEN) as u64;
    let start = t.payload_start(before)?;
    let payload = &bytes[start as usize..bytes.len() - TRAILER_LEN];
    Ok(Some((&bytes[..start as usize], t.check(payload)?)))
}

/// Reads the payload of the package `file` (its end only); `None` when it has no trailer.
pub fn read(file: &mut File) -> Result<Option<Payload>, PackageError> {
    let len = file.seek(SeekFrom::End(0))?;
    if len < TRAILER_LEN as u64 {
        return Ok(None);
    }
    let mut trailer = [0u8; TRAILER_LEN];
    file.seek(SeekFrom::Start(len - TRAILER_LEN as u64))?;
    file.read_exact(&mut trailer)?;
    let Some(t) = Trailer::parse(&trailer)? else { return Ok(None) };
    let before = len - TRAILER_LEN as u64;
    let start = t.payload_start(before)?;
    let mut payload = vec![0u8; (before - start) as usize];
    file.seek(SeekFrom::Start(start))?;
    file.read_exact(&mut payload)?;
    t.check(&payload).map(Some)
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

// === The trailer ===

fn trailer(manifest: &[u8], code: &[u8]) -> [u8; TRAILER_LEN] {
    let mut t = [0u8; TRAILER_LEN];
    t[..8].copy_from_slice(&MAGIC);
    t[8..12].copy_from_slice(&FORMAT.to_le_bytes());
    t[16..24].copy_from_slice(&(manifest.len() as u64).to_le_bytes());
    t[24..32].copy_from_slice(&(code.len() as u64).to_le_bytes());
    t[32..].copy_from_slice(&digest(manifest, code));
    t
}

fn digest(manifest: &[u8], code: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(manifest);
    hasher.update(code);
    hasher.finalize().into()
}

struct Trailer {
    manifest_len: u64,
    code_len: u64,
    sha256: [u8; 32],
}

impl Trailer {
    /// `None` without the magic; an error for a trailer this runner cannot read.
    fn parse(t: &[u8]) -> Result<Option<Trailer>, PackageError> {
        if t.len() != TRAILER_LEN || t[..8] != MAGIC {
            return Ok(None);
        }
        let u64_at = |at: usize| u64::from_le_bytes(t[at..at + 8].try_into().unwrap_or_default());
        let format = u32::from_le_bytes(t[8..12].try_into().unwrap_or_default());
        if format != FORMAT {
            return Err(PackageError::Format { found: format });
        }
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&t[32..]);
        Ok(Some(Trailer { manifest_len: u64_at(16), code_len: u64_at(24), sha256 }))
    }

    /// Where the payload starts in a file with `before` bytes before the trailer.
    fn payload_start(&self, before: u64) -> Result<u64, PackageError> {
        let wanted = self.manifest_len.saturating_add(self.code_len);
        if self.manifest_len > MAX_MANIFEST || wanted > before {
            return Err(PackageError::Truncated { wanted, have: before });
        }
        Ok(before - wanted)
    }

    fn check(&self, payload: &[u8]) -> Result<Payload, PackageError> {
        let (manifest, code) = payload.split_at(self.manifest_len as usize);
        if digest(manifest, code) != self.sha256 {
            return Err(PackageError::Digest);
        }
        let manifest = serde_json::from_slice(manifest).map_err(|e| PackageError::Manifest(e.to_string()))?;
        Ok(Payload { manifest, code: code.to_vec() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> Payload {
        Payload {
            manifest: Manifest {
                source: "fw.wasm".into(),
                source_sha256: sha256_hex(b"fw"),
                duet_version: "0.1.0".into(),
                artifact: Artifact::Program { program: "fw".into(), hook: "xdp".into(), maps_manifest: None },
            },
            code: vec![7; 1000],
        }
    }

    #[test]
    fn a_package_splits_into_what_was_assembled() {
        let bytes = assemble(b"\x7fELF runner", &payload()).unwrap();
        let (runner, read) = split(&bytes).unwrap().unwrap();
        assert_eq!(runner, b"\x7fELF runner");
        assert_eq!(read, payload());
        assert!(split(b"\x7fELF runner").unwrap().is_none());
        assert!(split(b"").unwrap().is_none());
    }

    #[test]
    fn any_flipped_payload_byte_or_truncation_is_an_error() {
        let bytes = assemble(b"runner", &payload()).unwrap();
        for at in 6..bytes.len() - TRAILER_LEN {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            assert!(matches!(split(&bad), Err(PackageError::Digest)), "byte {at}");
        }
        let cut = [&bytes[..3], &bytes[bytes.len() - TRAILER_LEN..]].concat();
        assert!(matches!(split(&cut), Err(PackageError::Truncated { .. })));
        let mut future = bytes.clone();
        let at = bytes.len() - TRAILER_LEN + 8;
        future[at] = 2;
        assert!(matches!(split(&future), Err(PackageError::Format { found: 2 })));
    }
}
