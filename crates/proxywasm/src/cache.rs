//! The on-disk compilation cache ([`crate::PluginConfig::cache_dir`]): compiled modules keyed by
//! a content hash, so a restarted proxy does not compile its filters again.
//!
//! The key is SHA-256 over a format tag, wasmtime's compatibility hash of the engine (its
//! version, target and compilation settings) and the Wasm bytes, so a file is only read back by
//! an engine that would have produced the same code. The cache is an optimisation: any failure
//! to read or write it falls back to compiling (and is logged at debug level). This is the
//! crate's only I/O, and its only unsafe code.

use std::hash::{Hash, Hasher};
use std::path::Path;

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

/// Bumped when what is stored in a cache file changes.
const FORMAT: &[u8] = b"duet-proxywasm aot cache v1\0";

/// Loads the module compiled from `wasm` from `dir`, or compiles it and stores it there.
pub(crate) fn load_or_compile(
    engine: &Engine,
    wasm: &[u8],
    dir: &Path,
    compile: impl FnOnce() -> wasmtime::Result<Module>,
) -> wasmtime::Result<Module> {
    let path = dir.join(format!("{}.cwasm", key(engine, wasm)));
    if let Ok(bytes) = std::fs::read(&path) {
        match deserialize(engine, &bytes) {
            Ok(module) => return Ok(module),
            Err(e) => tracing::debug!("cannot load {}: {e:#}; recompiling", path.display()),
        }
    }
    let module = compile()?;
    if let Err(e) = store(&module, dir, &path) {
        tracing::debug!("cannot write {}: {e}", path.display());
    }
    Ok(module)
}

#[allow(unsafe_code, reason = "Module::deserialize is unsafe; the one block is justified below")]
fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Module> {
    // SAFETY: `Module::deserialize` requires bytes that `Module::serialize` produced (it runs
    // them as native code). The file's name is the SHA-256 of the Wasm bytes and of this
    // engine's compatibility hash, and only `store` below writes such names, from
    // `Module::serialize` of exactly those bytes compiled by an engine with that hash, to a
    // temporary file renamed into place, so it is never seen half-written. The cache directory
    // is trusted like the binary itself: whoever can write it can already run code as this
    // user. The bytes were read into memory first, so a later change to the file cannot change
    // code already loaded; wasmtime still checks the header, version and engine settings.
    unsafe { Module::deserialize(engine, bytes) }
}

fn key(engine: &Engine, wasm: &[u8]) -> String {
    let mut hasher = ShaHasher(Sha256::new());
    hasher.0.update(FORMAT);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.update((wasm.len() as u64).to_le_bytes());
    hasher.0.update(wasm);
    hasher.0.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn store(module: &Module, dir: &Path, path: &Path) -> Result<(), String> {
    let bytes = module.serialize().map_err(|e| format!("{e:#}"))?;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, &bytes).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        e.to_string()
    })
}

/// Feeds [`Hash`] output into SHA-256 (wasmtime's compatibility hash is only `Hash`).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().unwrap_or_default())
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}
