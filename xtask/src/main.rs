//! Developer tasks: `cargo xtask <setup|test|demo|bench|fuzz>`.
//!
//! Every task prints the commands it runs, so what happens on a fresh machine is visible.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

mod bpf;
mod rust_bpf;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  setup          install what duet's build and tests need: rustup components, clang and
                 libbpf headers (apt, as root), bpf-linker built against rustc's own LLVM
  build-bpf      compile the BPF test corpus (tests/bpf/c with clang, tests/bpf/rust with
                 rustc + bpf-linker) into target/bpf/*.o
  test           the whole test suite: setup, build-bpf, rustfmt, clippy, every test
                 (incl. conformance and, as root, the kernel differential tests)
  demo           build duet in release mode and run `duet demo`
  bench          the benchmarks: interpreter vs rbpf, map helpers, `duet bench`, `duet mesh bench`
  fuzz <target> [seconds]
                 run a cargo-fuzz target on the nightly toolchain (default 60 s)";

fn main() {
    if let Err(err) = run() {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    std::env::set_current_dir(&root).with_context(|| format!("cannot enter {}", root.display()))?;
    match args.first().map(String::as_str) {
        Some("setup") => setup(&root),
        Some("build-bpf") => build_bpf(&root),
        Some("test") => test(),
        Some("demo") => demo(),
        Some("bench") => bench(),
        Some("fuzz") => fuzz(args.get(1).map(String::as_str), args.get(2).map(String::as_str)),
        Some("-h" | "--help" | "help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown task `{other}`\n\n{USAGE}"),
    }
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

pub(crate) fn step(title: &str) {
    println!("\n==> {title}");
}

/// Runs a command, echoing it first; fails with the command line when it fails.
pub(crate) fn sh(program: &str, args: &[&str]) -> Result<()> {
    println!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("cannot start `{program}`; is it installed and on PATH?"))?;
    if !status.success() {
        bail!("`{program} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

fn cargo(args: &[&str]) -> Result<()> {
    sh(&std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()), args)
}

fn setup(root: &Path) -> Result<()> {
    step("setup: toolchain components");
    sh("rustup", &["component", "add", "rustfmt", "clippy", "rust-src"])?;
    step("setup: Wasm targets (SDK examples, Proxy-Wasm test filters, WASI HTTP apps)");
    sh("rustup", &["target", "add", "wasm32-unknown-unknown", "wasm32-wasip1", "wasm32-wasip2"])?;
    step("setup: clang and libbpf headers for the C test programs");
    bpf::ensure_clang()?;
    step("setup: bpf-linker for the Rust test programs");
    rust_bpf::ensure_bpf_toolchain(root)?;
    Ok(())
}

fn build_bpf(root: &Path) -> Result<()> {
    step("build the BPF corpus (C)");
    let c = bpf::build_c_corpus(root)?;
    step("build the BPF corpus (Rust)");
    let rust = rust_bpf::build_rust_programs(root)?;
    println!("{} objects in target/bpf", c.len() + rust.len());
    Ok(())
}

fn test() -> Result<()> {
    let root = project_root();
    setup(&root)?;
    build_bpf(&root)?;
    step("format check (workspace, examples, Rust BPF corpus, fuzz targets)");
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&["fmt", "--all", "--check", "--manifest-path", "examples/Cargo.toml"])?;
    cargo(&["fmt", "--all", "--check", "--manifest-path", "tests/bpf/rust/Cargo.toml"])?;
    cargo(&["fmt", "--all", "--check", "--manifest-path", "examples/apps/hello/Cargo.toml"])?;
    cargo(&["fmt", "--all", "--check", "--manifest-path", "tests/proxy-wasm/Cargo.toml"])?;
    cargo(&["fmt", "--all", "--check", "--manifest-path", "fuzz/Cargo.toml"])?;
    step("clippy (warnings are errors)");
    cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
    cargo(&[
        "clippy",
        "--manifest-path",
        "examples/Cargo.toml",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    cargo(&[
        "clippy",
        "--manifest-path",
        "tests/proxy-wasm/Cargo.toml",
        "--workspace",
        "--target",
        "wasm32-wasip1",
        "--",
        "-D",
        "warnings",
    ])?;
    cargo(&[
        "clippy",
        "--manifest-path",
        "examples/apps/hello/Cargo.toml",
        "--target",
        "wasm32-wasip2",
        "--",
        "-D",
        "warnings",
    ])?;
    // The fuzz crate is a workspace of its own that only `cargo +nightly fuzz` builds; linting
    // it here (on stable, every target) keeps it building as the crates it fuzzes change.
    cargo(&["clippy", "--manifest-path", "fuzz/Cargo.toml", "--bins", "--features", "wasm", "--", "-D", "warnings"])?;
    step("build the Proxy-Wasm test filters (tests/proxy-wasm) for wasm32-wasip1 and wasm32-unknown-unknown");
    cargo(&[
        "build",
        "--release",
        "--manifest-path",
        "tests/proxy-wasm/Cargo.toml",
        "--target",
        "wasm32-wasip1",
        "--target",
        "wasm32-unknown-unknown",
    ])?;
    step(
        "tests (unit, property, data-driven corpus, bpf_conformance suite, kernel differential; benches run once in test mode)",
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        println!("CI=true: tests that need the conformance suite, root or the kernel fail instead of skipping");
    }
    // Every test binary runs even when one fails, so that one run shows every failure.
    cargo(&["test", "--workspace", "--all-targets", "--no-fail-fast"])?;
    step("example programs' unit tests (the SDK's host backend)");
    cargo(&["test", "--manifest-path", "examples/Cargo.toml", "--workspace"])?;
    println!("\nall checks passed");
    Ok(())
}

fn bench() -> Result<()> {
    step("duet's interpreter vs rbpf's (same bytecode, same run)");
    cargo(&["bench", "-p", "duet-vm", "--bench", "interp"])?;
    step("map helpers called from eBPF in the interpreter");
    cargo(&["bench", "-p", "duet-vm", "--bench", "maps_vm"])?;
    step("duet-maps operations");
    cargo(&["bench", "-p", "duet-maps", "--bench", "maps"])?;
    step("every example in every executor, against the kernel (duet bench)");
    cargo(&["run", "--release", "-p", "duet-cli", "--", "bench"])?;
    step("the sidecar against nginx on loopback with wrk (duet mesh bench)");
    cargo(&["run", "--release", "-p", "duet-cli", "--", "mesh", "bench"])?;
    step("a Wasm HTTP app in duet mesh and packaged, against native hyper and wasmtime serve (duet mesh bench-app)");
    cargo(&["run", "--release", "-p", "duet-cli", "--", "mesh", "bench-app"])
}

fn demo() -> Result<()> {
    step("setup: the wasm32-wasip1 target (the sidecar's Proxy-Wasm filter)");
    sh("rustup", &["target", "add", "wasm32-wasip1"])?;
    step("build duet (release)");
    cargo(&["build", "--release", "-p", "duet-cli"])?;
    step("duet demo");
    let exe = project_root().join("target/release/duet");
    sh(exe.to_str().context("non-UTF-8 project path")?, &["demo"])
}

fn fuzz(target: Option<&str>, seconds: Option<&str>) -> Result<()> {
    let Some(target) = target else { bail!("which target? see fuzz/README.md (decode, assemble, interpret)") };
    let seconds = seconds.unwrap_or("60");
    seconds.parse::<u64>().with_context(|| format!("`{seconds}` is not a number of seconds"))?;
    let has_fuzz =
        Command::new("cargo").args(["+nightly", "fuzz", "--version"]).output().is_ok_and(|o| o.status.success());
    if !has_fuzz {
        step("install cargo-fuzz");
        sh("cargo", &["install", "cargo-fuzz", "--locked"])?;
    }
    step(&format!("fuzz {target} for {seconds} s"));
    std::env::set_current_dir("fuzz").context("no fuzz/ directory")?;
    sh("cargo", &["+nightly", "fuzz", "run", target, "--", &format!("-max_total_time={seconds}")])
}
