//! Asks bpf-linker to emit BTF.
//!
//! BTF-defined maps (the `.maps` section) are described by BTF, so an object without it has maps
//! no loader can create. This is a link argument rather than a `rustflags` entry in
//! `.cargo/config.toml`, because a `RUSTFLAGS` variable in the environment (common in CI)
//! silently replaces configured rustflags.

fn main() {
    println!("cargo:rustc-link-arg=--btf");
}
