//! Rust eBPF programs: the toolchain they need and their build.
//!
//! The Rust test programs under `tests/bpf/rust` are built with the machine's stable rustc (via
//! `RUSTC_BOOTSTRAP=1` for `-Z build-std=core`) and linked by bpf-linker, which must be linked
//! against the very LLVM that rustc ships. Setting that up is `duet-build`'s job
//! (`duet_build::toolchain`), the same code `duet build` runs, so `cargo xtask` and `duet build`
//! share one bpf-linker in the project-local `.tools` directory.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::step;
use anyhow::{Context, Result, bail};

/// The cargo workspace holding the Rust test programs, relative to the project root.
const PROGRAMS_DIR: &str = "tests/bpf/rust";

/// The BPF target the programs are compiled for.
const BPF_TARGET: &str = "bpfel-unknown-none";

/// Makes sure `rust-src` is installed and bpf-linker is built against the current rustc's LLVM
/// (in `<root>/.tools`); returns the path of the bpf-linker executable.
///
/// Every step that is already done (same rustc, same bpf-linker version) is skipped, so calling
/// this on every build is cheap.
pub fn ensure_bpf_toolchain(root: &Path) -> Result<PathBuf> {
    step("rust bpf toolchain: rust-src and bpf-linker");
    let progress = duet_build::Progress::default();
    let rustc = duet_build::RustcInfo::query()?;
    duet_build::toolchain::ensure_rust_src(&rustc, progress)?;
    let linker = duet_build::toolchain::ensure_bpf_linker(&rustc, &root.join(".tools"), progress)?;
    println!("{} is up to date ({})", linker.display(), rustc.version_line);
    Ok(linker)
}

/// Builds every program in `tests/bpf/rust` for the BPF target and copies each object to
/// `<root>/target/bpf/<name>.o`, next to the C corpus; returns the copied objects' paths.
///
/// Expects the toolchain from [`ensure_bpf_toolchain`].
pub fn build_rust_programs(root: &Path) -> Result<Vec<PathBuf>> {
    step(&format!("build rust bpf programs ({PROGRAMS_DIR})"));
    let tools_bin = root.join(".tools/bin");
    if !tools_bin.join("bpf-linker").exists() {
        bail!("{} has no bpf-linker; run ensure_bpf_toolchain (`cargo xtask setup`) first", tools_bin.display());
    }
    // rustc finds the linker by name on PATH, so the project's own bpf-linker goes first.
    let mut path = OsString::from(&tools_bin);
    if let Some(old) = std::env::var_os("PATH") {
        path.push(":");
        path.push(old);
    }

    let mut build = Command::new(cargo_program());
    build.current_dir(root.join(PROGRAMS_DIR)).env("RUSTC_BOOTSTRAP", "1").env("PATH", path).args([
        "build",
        "-Z",
        "build-std=core",
        "--target",
        BPF_TARGET,
        "--release",
        "--locked",
        // Cargo's human-readable output still goes to stderr; stdout carries the list of
        // artifacts this build produced, which is exactly what gets copied.
        "--message-format=json-render-diagnostics",
    ]);
    let stdout = run_capturing(&mut build).context(
        "building the rust bpf programs failed; if rustc cannot find or run `bpf-linker`, \
         run ensure_bpf_toolchain (`cargo xtask setup`) again",
    )?;

    let out_dir = root.join("target/bpf");
    fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let mut objects = Vec::new();
    for exe in executables(&stdout)? {
        let name = exe.file_name().and_then(|n| n.to_str()).context("artifact without a UTF-8 file name")?;
        let dest = out_dir.join(format!("{name}.o"));
        fs::copy(&exe, &dest).with_context(|| format!("cannot copy {} to {}", exe.display(), dest.display()))?;
        println!("{}", dest.display());
        objects.push(dest);
    }
    if objects.is_empty() {
        bail!("cargo built no programs in {PROGRAMS_DIR}; does its workspace list any member?");
    }
    Ok(objects)
}

// === helpers ===

/// Reads the paths of the executables cargo built from its `--message-format=json` output.
///
/// Cargo writes one JSON object per line; the `compiler-artifact` ones for binaries carry an
/// `"executable"` string. Paths need no JSON unescaping unless they contain `"` or `\`, which
/// is reported rather than guessed at.
fn executables(cargo_json: &str) -> Result<Vec<PathBuf>> {
    const KEY: &str = "\"executable\":\"";
    let mut exes = Vec::new();
    for line in cargo_json.lines().filter(|line| line.contains("\"reason\":\"compiler-artifact\"")) {
        let Some(start) = line.find(KEY) else { continue };
        let rest = &line[start + KEY.len()..];
        let end = rest.find('"').context("unterminated `executable` in cargo's JSON output")?;
        let path = &rest[..end];
        if path.contains('\\') {
            bail!("artifact path `{path}` contains escapes; move the project to a plainer path");
        }
        exes.push(PathBuf::from(path));
    }
    Ok(exes)
}

fn cargo_program() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Runs a prepared command, echoing it first, and returns its stdout; fails with the command
/// line when it fails.
fn run_capturing(cmd: &mut Command) -> Result<String> {
    let line = echo(cmd);
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start `{line}`; is it installed and on PATH?"))?;
    if !out.status.success() {
        bail!("`{line}` failed ({})", out.status);
    }
    String::from_utf8(out.stdout).with_context(|| format!("`{line}` printed non-UTF-8 output"))
}

/// Prints a command as a shell line (the same rendering `duet build` uses) and returns that line
/// for error messages.
fn echo(cmd: &Command) -> String {
    let line = duet_build::shell_line(cmd);
    println!("$ {line}");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executables_come_from_compiler_artifacts_only() {
        let json = concat!(
            r#"{"reason":"compiler-artifact","target":{"name":"core"},"executable":null}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"name":"xdp_rust_firewall"},"executable":"/p/target/bpfel-unknown-none/release/xdp_rust_firewall","fresh":true}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
        );
        let exes = executables(json).unwrap();
        assert_eq!(exes, [PathBuf::from("/p/target/bpfel-unknown-none/release/xdp_rust_firewall")]);
    }
}
