//! The ahead-of-time cache: compiled modules on disk, keyed by a content hash.
//!
//! The key is SHA-256 over a format tag, the Wasm bytes and wasmtime's own compatibility hash
//! of the engine (its version, target and every compilation setting), so a file is only ever
//! read back by an engine that would have produced the same code. The cache is an optimisation:
//! any failure to read or write it falls back to compiling, and says why in [`CacheStatus`].
//! This is the crate's only I/O.
#![cfg_attr(feature = "compiler", allow(unsafe_code, reason = "Module::deserialize is unsafe; one block, documented"))]

use std::path::PathBuf;
#[cfg(feature = "compiler")]
use {
    crate::WasmError,
    sha2::{Digest, Sha256},
    std::hash::{Hash, Hasher},
    std::path::Path,
    wasmtime::{Engine, Module},
};

/// Bumped when what duet stores in a cache file changes.
#[cfg(feature = "compiler")]
const FORMAT: &[u8] = b"duet-wasm aot cache v1\0";

/// What the cache did for one load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheStatus {
    /// No cache directory was configured: compiled.
    Disabled,
    /// Loaded compiled code from this file.
    Hit(PathBuf),
    /// Not in the cache: compiled, and stored in this file.
    Stored(PathBuf),
    /// Compiled; the cache could not be used, for this reason.
    Failed(String),
    /// Loaded code compiled ahead of time ([`WasmModule::load_precompiled`](crate::WasmModule::load_precompiled)):
    /// no compiler and no cache involved.
    Precompiled,
}

/// Compiles `wasm`, or loads it from `dir` when an earlier run compiled it with the same engine.
#[cfg(feature = "compiler")]
pub(crate) fn load_or_compile(
    engine: &Engine,
    wasm: &[u8],
    dir: Option<&Path>,
) -> Result<(Module, CacheStatus), WasmError> {
    let compile = || Module::from_binary(engine, wasm).map_err(|e| WasmError::Compile { source: e.into() });
    let Some(dir) = dir else { return Ok((compile()?, CacheStatus::Disabled)) };
    let path = dir.join(format!("{}.cwasm", key(engine, wasm)));
    let mut failure = None;
    if let Ok(bytes) = std::fs::read(&path) {
        // SAFETY: the file's name is the SHA-256 of the Wasm bytes and of this engine's
        // compatibility hash, and only `store` below writes such names, from `Module::serialize`
        // of exactly these bytes compiled by an engine with that hash (to a temporary file then
        // renamed, so it is never seen half-written). The cache directory is trusted like the
        // binary itself: whoever can write it can already run native code as this user. The bytes
        // are read into memory first (not `deserialize_file`, which maps the file), so a file
        // changed later cannot change code already loaded; wasmtime still checks the header,
        // version and engine settings.
        match unsafe { Module::deserialize(engine, &bytes) } {
            Ok(module) => return Ok((module, CacheStatus::Hit(path))),
            Err(e) => failure = Some(format!("cannot load {}: {e}", path.display())),
        }
    }
    let module = compile()?;
    let status = match store(&module, dir, &path) {
        Ok(()) if failure.is_none() => CacheStatus::Stored(path),
        Ok(()) => CacheStatus::Failed(failure.unwrap_or_default() + " (recompiled and replaced it)"),
        Err(e) => CacheStatus::Failed(format!("cannot write {}: {e}", path.display())),
    };
    Ok((module, status))
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
fn store(module: &Module, dir: &Path, path: &Path) -> Result<(), String> {
    let bytes = module.serialize().map_err(|e| e.to_string())?;
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

/// The default cache directory: `$XDG_CACHE_HOME/duet/wasm`, else `$HOME/.cache/duet/wasm`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("duet").join("wasm"))
}
