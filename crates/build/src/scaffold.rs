//! `duet new`: a program crate from a template that builds with `duet build` and passes
//! `cargo test` as created.

use std::fs;
use std::path::{Path, PathBuf};

use crate::BuildError;

/// The SDK of the duet checkout this crate was built from, if it is still there.
pub fn default_sdk_path() -> Option<PathBuf> {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
    sdk.join("Cargo.toml").exists().then(|| sdk.canonicalize().unwrap_or(sdk))
}

/// Creates the crate `name` in `dir` (which must not exist, or be empty), depending on the SDK
/// at `sdk`; returns the files written.
pub fn new_crate(dir: &Path, name: &str, sdk: &Path) -> Result<Vec<PathBuf>, BuildError> {
    check_name(name)?;
    if dir.exists() && fs::read_dir(dir).map_err(BuildError::io("cannot list", dir))?.next().is_some() {
        return Err(BuildError::Crate(format!("{} already exists and is not empty; pick another name", dir.display())));
    }
    let sdk_str =
        sdk.to_str().ok_or_else(|| BuildError::Crate(format!("the SDK path {} is not UTF-8", sdk.display())))?;
    if !sdk.join("Cargo.toml").exists() {
        return Err(BuildError::Crate(format!(
            "no duet SDK at {sdk_str} (expected its Cargo.toml); pass the SDK's directory (crates/sdk of a duet \
             checkout) with --sdk"
        )));
    }
    let lib_name = name.replace('-', "_");
    let files = [
        ("Cargo.toml", CARGO_TOML.replace("{name}", name).replace("{sdk}", &sdk_str.replace('\\', "\\\\"))),
        ("src/lib.rs", LIB_RS.replace("{name}", name).replace("{lib_name}", &lib_name)),
        (".gitignore", "/target\n".to_owned()),
    ];
    let mut written = Vec::new();
    for (file, text) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(BuildError::io("cannot create", parent))?;
        }
        fs::write(&path, text).map_err(BuildError::io("cannot write", &path))?;
        written.push(path);
    }
    Ok(written)
}

/// A crate name that is also a usable program (function) name once `-` becomes `_`.
fn check_name(name: &str) -> Result<(), BuildError> {
    const RESERVED: &[&str] = &[
        "duet", "core", "std", "alloc", "test", "self", "super", "crate", "fn", "static", "mod", "struct", "enum",
        "type", "match", "loop", "while", "for", "if", "else", "let", "use", "impl", "trait", "pub", "return",
    ];
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid || RESERVED.contains(&name) {
        return Err(BuildError::Crate(format!(
            "`{name}` cannot name a program: use letters, digits, `_` and `-`, starting with a letter, and not a \
             Rust keyword or `duet`/`core`/`std`"
        )));
    }
    Ok(())
}

const CARGO_TOML: &str = r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
rust-version = "1.95"
publish = false

[dependencies]
duet = { path = "{sdk}" }

# A crate of its own, not a member of a workspace it may sit in.
[workspace]
"#;

const LIB_RS: &str = r#"//! `{name}`: a duet program.
//!
//! - `duet build` compiles it to `target/duet/{name}.bpf.o` (kernel, userspace eBPF VM) and
//!   `target/duet/{name}.wasm` (WebAssembly).
//! - `cargo test` runs the tests below on the host, against the same map implementation the
//!   userspace executors use.
//! - `duet run target/duet/{name}.bpf.o --pcap <capture>` runs it over a capture.
//!
//! The program drops IPv4 packets from the sources in `BLOCKED` and counts packets per IP
//! protocol in `PROTOCOLS`.
#![no_std]

use duet::{Array, HashMap, XdpAction, XdpContext};

/// IPv4 source addresses to drop, in packet order (`0a000001` is 10.0.0.1). Seed it with
/// `duet run --maps-in`.
#[duet::map]
static BLOCKED: HashMap<[u8; 4], u8> = HashMap::with_max_entries(1024, 0);

/// Packets per IP protocol number.
#[duet::map]
static PROTOCOLS: Array<u64> = Array::with_max_entries(256, 0);

#[duet::xdp]
fn {lib_name}(ctx: XdpContext) -> XdpAction {
    let Some(ip) = ctx.ipv4() else { return XdpAction::Pass };
    // Every protocol number has an element, so this cannot fail.
    let _ = PROTOCOLS.add_u64(u32::from(ip.protocol), 1);
    if BLOCKED.contains_key(&ip.src) { XdpAction::Drop } else { XdpAction::Pass }
}

#[cfg(test)]
mod tests {
    use duet::testing::{run_xdp, tcp_frame, udp_frame};
    use duet::{BPF_ANY, XdpAction};

    use super::*;

    #[test]
    fn passes_and_counts_by_protocol() {
        let mut frame = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1234, 53, 0);
        assert_eq!(run_xdp({lib_name}, &mut frame), XdpAction::Pass);
        assert_eq!(PROTOCOLS.get(17), Some(1));
    }

    #[test]
    fn drops_blocked_sources() {
        BLOCKED.insert(&[10, 0, 0, 9], &1, BPF_ANY).unwrap();
        let mut frame = tcp_frame([10, 0, 0, 9], [10, 0, 0, 2], 1234, 80, 0);
        assert_eq!(run_xdp({lib_name}, &mut frame), XdpAction::Drop);
    }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_identifiers() {
        for ok in ["fw", "my-prog", "rate_limit2"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1x", "a b", "duet", "fn", "x/y"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
