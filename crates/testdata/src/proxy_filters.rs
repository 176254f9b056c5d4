//! The Proxy-Wasm test filters of `tests/proxy-wasm`, built on demand.
//!
//! Tests of duet-proxywasm and duet-mesh call [`build_proxy_filters`] to get `<name>.wasm` for
//! each filter ([`FILTERS`]) for one target. This is the one part of duet-testdata that does I/O:
//! it runs `cargo build --release` on the filters' own workspace (its lock file is committed, so
//! no network is needed once the registry cache has the SDK). Builds are serialised within a
//! process and done once per target; cargo's own lock serialises them across processes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The filters the workspace builds, by crate name (each becomes `<name>.wasm`).
pub const FILTERS: [&str; 13] = [
    "http_headers",
    "body_rewrite",
    "local_response",
    "http_call",
    "tick",
    "shared_data",
    "metrics",
    "properties",
    "queue",
    "panic",
    "infinite_loop",
    "memory_hog",
    "apikey",
];

/// The targets the filters are built for.
pub const TARGETS: [&str; 2] = ["wasm32-wasip1", "wasm32-unknown-unknown"];

/// The filters' workspace, `tests/proxy-wasm` at the repository root.
pub fn proxy_filters_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/proxy-wasm")
}

/// Builds every filter for `target` (once per process) and returns the directory holding the
/// `<name>.wasm` files.
pub fn build_proxy_filters(target: &str) -> Result<PathBuf, String> {
    static BUILT: Mutex<Option<HashMap<String, Result<PathBuf, String>>>> = Mutex::new(None);
    if !TARGETS.contains(&target) {
        return Err(format!("unknown target `{target}` (the filters build for {})", TARGETS.join(", ")));
    }
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(res) = built.get(target) {
        return res.clone();
    }
    let res = build(target);
    built.insert(target.to_owned(), res.clone());
    res
}

/// Reads the built filter `name` for `target`.
pub fn proxy_filter(target: &str, name: &str) -> Result<Vec<u8>, String> {
    let path = build_proxy_filters(target)?.join(format!("{name}.wasm"));
    std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn build(target: &str) -> Result<PathBuf, String> {
    let dir = proxy_filters_dir();
    let manifest = dir.join("Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .arg("build")
        .arg("--release")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target")
        .arg(target)
        // The filters have their own workspace and target directory; settings meant for the
        // crate under test must not leak into their build.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", cargo.to_string_lossy()))?;
    if !output.status.success() {
        return Err(format!(
            "building the Proxy-Wasm test filters failed (cargo build --release --manifest-path {} --target {target}; \
             is the target installed? `rustup target add {target}`):\n{}",
            manifest.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let out = dir.join("target").join(target).join("release");
    for name in FILTERS {
        let wasm = out.join(format!("{name}.wasm"));
        if !wasm.is_file() {
            return Err(format!("the build did not produce {}", wasm.display()));
        }
    }
    Ok(out)
}
