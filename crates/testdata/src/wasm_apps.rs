//! The example WASI HTTP app (`examples/apps/hello`), built for `wasm32-wasip2` once per process
//! for the tests of duet-app and of the sidecar. Like [`crate::proxy_filters`], this does I/O:
//! it runs cargo (and rustup, when the target is missing), echoing each command.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Builds `examples/apps/hello` (once per process) and returns the component's path.
pub fn build_hello_app() -> Result<PathBuf, String> {
    static BUILT: Mutex<Option<Result<PathBuf, String>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    built.get_or_insert_with(|| build(Variant::WithKv)).clone()
}

/// Builds `examples/apps/hello` without its default `kv` feature (once per process): the `/kv`
/// routes answer 501 and the component imports only WASI 0.2, so `wasmtime serve` runs it too.
/// Its own target directory, so both builds exist side by side.
pub fn build_hello_app_without_kv() -> Result<PathBuf, String> {
    static BUILT: Mutex<Option<Result<PathBuf, String>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    built.get_or_insert_with(|| build(Variant::WithoutKv)).clone()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    WithKv,
    WithoutKv,
}

fn build(variant: Variant) -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    ensure_wasip2_target()?;
    let target_dir = root.join(match variant {
        Variant::WithKv => "target/wasm-apps",
        Variant::WithoutKv => "target/wasm-apps-no-kv",
    });
    let manifest = root.join("examples/apps/hello/Cargo.toml");
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(["build", "--release", "--locked", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir);
    if variant == Variant::WithoutKv {
        cmd.arg("--no-default-features");
    }
    // The outer `cargo test` sets variables meant for the host build.
    for var in
        ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "CARGO_TARGET_DIR", "CARGO_BUILD_TARGET"]
    {
        cmd.env_remove(var);
    }
    eprintln!("$ {cmd:?}");
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        let features = if variant == Variant::WithoutKv { " without the kv feature" } else { "" };
        return Err(format!("building examples/apps/hello{features} for wasm32-wasip2 failed ({status})"));
    }
    Ok(target_dir.join("wasm32-wasip2/release/hello_app.wasm"))
}

/// Installs the `wasm32-wasip2` target when the active toolchain lacks it (as `cargo xtask
/// setup` does).
fn ensure_wasip2_target() -> Result<(), String> {
    let out = Command::new("rustc").args(["--print", "target-libdir", "--target", "wasm32-wasip2"]).output();
    let installed =
        out.is_ok_and(|o| o.status.success() && Path::new(String::from_utf8_lossy(&o.stdout).trim()).exists());
    if !installed {
        eprintln!("$ rustup target add wasm32-wasip2");
        let ok = Command::new("rustup").args(["target", "add", "wasm32-wasip2"]).status().is_ok_and(|s| s.success());
        if !ok {
            return Err("rustup target add wasm32-wasip2 failed".into());
        }
    }
    Ok(())
}
