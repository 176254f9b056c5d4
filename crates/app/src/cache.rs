//! The ahead-of-time cache: compiled components on disk, keyed by a content hash.
//!
//! The key is SHA-256 over a format tag, wasmtime's compatibility hash of the engine (its
//! version, target and every compilation setting) and the Wasm bytes, so a file is only ever
//! read back by an engine that would have produced the same code. Any failure to read or write
//! the cache falls back to compiling and says why in [`CacheStatus`]. The same scheme as
//! duet-wasm's module cache, for components.
#![cfg_attr(
    feature = "compiler",
    allow(unsafe_code, reason = "Component::deserialize is unsafe; one block, documented")
)]

use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;
#[cfg(feature = "compiler")]
use {
    sha2::{Digest, Sha256},
    std::hash::{Hash, Hasher},
};

/// Bumped when what duet stores in a cache file changes.
#[cfg(feature = "compiler")]
const FORMAT: &[u8] = b"duet-app aot cache v1\0";

/// What the cache did for one load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheStatus {
    /// No cache directory was given: compiled.
    Disabled,
    /// Loaded compiled code from this file.
    Hit(PathBuf),
    /// Not in the cache: compiled, and stored in this file.
    Stored(PathBuf),
    /// Compiled; the cache could not be used, for this reason.
    Failed(String),
    /// Loaded code compiled ahead of time ([`App::from_precompiled`](crate::App::from_precompiled)):
    /// no compiler and no cache involved.
    Precompiled,
}

/// Compiles `wasm`, or loads it from `dir` when an earlier run compiled it with the same engine.
#[cfg(feature = "compiler")]
pub(crate) fn load_or_compile(
    engine: &Engine,
    wasm: &[u8],
    dir: Option<&Path>,
) -> wasmtime::Result<(Component, CacheStatus)> {
    let compile = || Component::from_binary(engine, wasm);
    let Some(dir) = dir else { return Ok((compile()?, CacheStatus::Disabled)) };
    let path = dir.join(format!("{}.cwasm", key(engine, wasm)));
    let mut failure = None;
    if let Ok(bytes) = std::fs::read(&path) {
        // SAFETY: the file's name is the SHA-256 of these Wasm bytes and of this engine's
        // compatibility hash, and only `store` below writes such names, from
        // `Component::serialize` of exactly these bytes compiled by an engine with that hash
        // (to a temporary file then renamed, so it is never seen half-written). The cache
        // directory is trusted like the binary itself: whoever can write it can already run
        // native code as this user. The bytes are read into memory first, so a file changed
        // later cannot change code already loaded; wasmtime still checks the header, version
        // and engine settings.
        match unsafe { Component::deserialize(engine, &bytes) } {
            Ok(component) => return Ok((component, CacheStatus::Hit(path))),
            Err(e) => failure = Some(format!("cannot load {}: {e}", path.display())),
        }
    }
    let component = compile()?;
    let status = match store(&component, dir, &path) {
        Ok(()) => match failure {
            None => CacheStatus::Stored(path),
            Some(why) => CacheStatus::Failed(why + " (recompiled and replaced it)"),
        },
        Err(e) => CacheStatus::Failed(format!("cannot write {}: {e}", path.display())),
    };
    Ok((component, status))
}

/// Without a compiler there is nothing to compile with: only precompiled components load.
#[cfg(not(feature = "compiler"))]
pub(crate) fn load_or_compile(_: &Engine, _: &[u8], _: Option<&Path>) -> wasmtime::Result<(Component, CacheStatus)> {
    Err(wasmtime::Error::msg(
        "this build of duet-app has no compiler (its `compiler` feature is off): it runs only components \
         compiled ahead of time (App::from_precompiled)",
    ))
}

/// The cache key: hex SHA-256 of the format tag, the engine's compatibility hash and the bytes.
#[cfg(feature = "compiler")]
fn key(engine: &Engine, wasm: &[u8]) -> String {
    let mut hasher = ShaHasher(Sha256::new());
    hasher.0.update(FORMAT);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.update((wasm.len() as u64).to_le_bytes());
    hasher.0.update(wasm);
    hasher.0.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(feature = "compiler")]
fn store(component: &Component, dir: &Path, path: &Path) -> Result<(), String> {
    let bytes = component.serialize().map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, &bytes).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        e.to_string()
    })
}

/// Feeds [`Hash`] output into SHA-256, so wasmtime's compatibility hash (which is only `Hash`)
/// becomes part of a stable, collision-resistant key.
#[cfg(feature = "compiler")]
struct ShaHasher(Sha256);

#[cfg(feature = "compiler")]
impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().unwrap_or_default())
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The default cache directory: `$XDG_CACHE_HOME/duet/apps`, else `$HOME/.cache/duet/apps`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("duet").join("apps"))
}
