//! Rust eBPF programs: the toolchain they need and their build.
//!
//! The Rust test programs under `tests/bpf/rust` are built with the machine's stable rustc (via
//! `RUSTC_BOOTSTRAP=1` for `-Z build-std=core`) and linked by bpf-linker. bpf-linker reads the
//! LLVM bitcode rustc emits, so it must be linked against the very LLVM that rustc ships; this
//! module builds it against `$(rustc --print sysroot)/lib/libLLVM.so.*` into the project-local
//! `.tools` directory, so CI and every developer get the same linker.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The bpf-linker release we install. It must support the LLVM major version of our rustc.
const BPF_LINKER_VERSION: &str = "0.13.0";

/// The LLVM major versions bpf-linker 0.13 has a cargo feature for (`llvm-21`, ...).
const BPF_LINKER_LLVM_MAJORS: &[u32] = &[21, 22, 23];

/// The cargo workspace holding the Rust test programs, relative to the project root.
const PROGRAMS_DIR: &str = "tests/bpf/rust";

/// The BPF target the programs are compiled for.
const BPF_TARGET: &str = "bpfel-unknown-none";

/// Makes sure `rust-src` is installed and bpf-linker is built against the current rustc's LLVM;
/// returns the path of the bpf-linker executable.
///
/// Every step that is already done (same rustc, same bpf-linker version) is skipped, so calling
/// this on every build is cheap.
pub fn ensure_bpf_toolchain(root: &Path) -> Result<PathBuf> {
    step("rust bpf toolchain: rust-src");
    let rustc = RustcInfo::query()?;
    let rust_src = rustc.sysroot.join("lib/rustlib/src/rust/library/core/Cargo.toml");
    if rust_src.exists() {
        println!("rust-src already installed in {}", rustc.sysroot.display());
    } else {
        // `-Z build-std=core` compiles `core` for the BPF target from these sources.
        sh("rustup", &["component", "add", "rust-src"])?;
    }

    step(&format!("rust bpf toolchain: bpf-linker {BPF_LINKER_VERSION} (LLVM {})", rustc.llvm_major));
    let tools = root.join(".tools");
    let linker = tools.join("bin/bpf-linker");
    let stamp_path = tools.join("bpf-linker.stamp");
    // The stamp records what the installed linker was built for; a new rustc (and so possibly a
    // new libLLVM) or a new pinned bpf-linker version means a rebuild.
    let stamp = format!("bpf-linker {BPF_LINKER_VERSION}\n{}\n", rustc.version_line);
    // It must also still start: its rpath names `.tools/rustc-llvm/lib` by absolute path, which
    // breaks when the checkout moves.
    let starts = || Command::new(&linker).arg("--version").output().is_ok_and(|out| out.status.success());
    if fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp) && starts() {
        println!("{} is up to date ({})", linker.display(), rustc.version_line);
        return Ok(linker);
    }

    if !BPF_LINKER_LLVM_MAJORS.contains(&rustc.llvm_major) {
        bail!(
            "rustc `{}` uses LLVM {}, but bpf-linker {BPF_LINKER_VERSION} supports only LLVM {:?}; \
             use a rustc whose LLVM bpf-linker supports (see `rustc -vV`), or raise \
             BPF_LINKER_VERSION in xtask/src/rust_bpf.rs",
            rustc.version_line,
            rustc.llvm_major,
            BPF_LINKER_LLVM_MAJORS
        );
    }
    let llvm_prefix = link_rustc_llvm(&rustc, &tools)?;

    let tools_str = path_str(&tools)?;
    let feature = format!("llvm-{}", rustc.llvm_major);
    let version = format!("={BPF_LINKER_VERSION}");
    let mut install = Command::new(cargo_program());
    install.env("LLVM_PREFIX", &llvm_prefix).args([
        "install",
        "bpf-linker",
        "--version",
        &version,
        "--locked",
        "--force",
        "--no-default-features",
        "--features",
        &feature,
        "--root",
        tools_str,
    ]);
    run(&mut install).context(
        "building bpf-linker failed; it needs a C toolchain and linker (`apt-get install build-essential`) \
         and network access to crates.io",
    )?;

    // The linker must actually start: a broken libLLVM link shows up here rather than as an
    // obscure rustc linker error later.
    let linker_str = path_str(&linker)?;
    sh(linker_str, &["--version"]).with_context(|| {
        format!("the freshly built {linker_str} does not run; delete {tools_str} and run this task again")
    })?;
    fs::write(&stamp_path, stamp).with_context(|| format!("cannot write {}", stamp_path.display()))?;
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

// === impl RustcInfo ===

/// What we need to know about the rustc that builds the programs.
struct RustcInfo {
    /// `rustc 1.95.0 (59807616e 2026-04-14)`: identifies the toolchain in the stamp.
    version_line: String,
    /// The major version of the LLVM rustc is built on (`LLVM version: 22.1.2` gives 22).
    llvm_major: u32,
    /// `rustc --print sysroot`, where `lib/libLLVM.so.*` and `rust-src` live.
    sysroot: PathBuf,
}

impl RustcInfo {
    fn query() -> Result<Self> {
        let verbose = output("rustc", &["-vV"])?;
        let version_line = verbose.lines().next().unwrap_or_default().trim().to_owned();
        let llvm = verbose
            .lines()
            .find_map(|line| line.strip_prefix("LLVM version: "))
            .context("`rustc -vV` names no LLVM version; is this an official rustup toolchain?")?;
        let llvm_major = llvm
            .split('.')
            .next()
            .and_then(|major| major.trim().parse().ok())
            .with_context(|| format!("cannot read the LLVM major version from `{llvm}`"))?;
        let sysroot = PathBuf::from(output("rustc", &["--print", "sysroot"])?.trim());
        Ok(Self { version_line, llvm_major, sysroot })
    }
}

// === helpers ===

/// Links rustc's own `libLLVM.so.*` into `<tools>/rustc-llvm/lib` under the names the bpf-linker
/// build looks for; returns the prefix to pass as `LLVM_PREFIX`.
fn link_rustc_llvm(rustc: &RustcInfo, tools: &Path) -> Result<PathBuf> {
    let sysroot_lib = rustc.sysroot.join("lib");
    let entries = fs::read_dir(&sysroot_lib).with_context(|| format!("cannot list {}", sysroot_lib.display()))?;
    let mut libllvm = None;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", sysroot_lib.display()))?;
        if entry.file_name().to_str().is_some_and(|name| name.starts_with("libLLVM.so.")) {
            libllvm = Some(entry.path());
        }
    }
    let libllvm = libllvm.with_context(|| {
        format!(
            "no libLLVM.so.* in {}; bpf-linker needs the toolchain's shared LLVM (rustup's \
             official toolchains ship it)",
            sysroot_lib.display()
        )
    })?;

    let prefix = tools.join("rustc-llvm");
    let lib = prefix.join("lib");
    step(&format!("link {} into {}", libllvm.display(), lib.display()));
    if lib.exists() {
        fs::remove_dir_all(&lib).with_context(|| format!("cannot clear {}", lib.display()))?;
    }
    fs::create_dir_all(&lib).with_context(|| format!("cannot create {}", lib.display()))?;
    // bpf-linker links `-lLLVM`, which needs `libLLVM.so`. At run time the dynamic loader looks
    // for the library's soname (the file's own name) in bpf-linker's rpath, which is this
    // directory, so that name is linked too: bpf-linker then starts without LD_LIBRARY_PATH.
    let soname = libllvm.file_name().context("libLLVM path without a file name")?;
    for name in [Path::new("libLLVM.so"), Path::new(soname)] {
        let link = lib.join(name);
        println!("$ ln -s {} {}", libllvm.display(), link.display());
        std::os::unix::fs::symlink(&libllvm, &link)
            .with_context(|| format!("cannot link {} to {}", link.display(), libllvm.display()))?;
    }
    Ok(prefix)
}

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

fn path_str(path: &Path) -> Result<&str> {
    path.to_str().with_context(|| format!("non-UTF-8 path {}", path.display()))
}

fn step(title: &str) {
    println!("\n==> {title}");
}

/// Runs a command, echoing it first; fails with the command line when it fails.
fn sh(program: &str, args: &[&str]) -> Result<()> {
    run(Command::new(program).args(args))
}

/// Runs a prepared command, echoing it (with its directory and environment) first.
fn run(cmd: &mut Command) -> Result<()> {
    let line = echo(cmd);
    let status = cmd.status().with_context(|| format!("cannot start `{line}`; is it installed and on PATH?"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Like [`run`], but returns the command's stdout instead of passing it through.
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

/// Runs a command quietly for its stdout (queries such as `rustc -vV`).
fn output(program: &str, args: &[&str]) -> Result<String> {
    let line = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot start `{line}`; is it installed and on PATH?"))?;
    if !out.status.success() {
        bail!("`{line}` failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    String::from_utf8(out.stdout).with_context(|| format!("`{line}` printed non-UTF-8 output"))
}

/// Prints a command as a shell line and returns that line for error messages.
fn echo(cmd: &Command) -> String {
    let mut line = String::new();
    if let Some(dir) = cmd.get_current_dir() {
        line.push_str(&format!("cd {} && ", dir.display()));
    }
    for (key, value) in cmd.get_envs() {
        let key = key.to_string_lossy();
        let value = value.map(|v| v.to_string_lossy()).unwrap_or_default();
        // PATH is long and only changed at its front; show the change, not the whole value.
        if key == "PATH" {
            let front = value.split(':').next().unwrap_or_default();
            line.push_str(&format!("PATH={front}:$PATH "));
        } else {
            line.push_str(&format!("{key}={value} "));
        }
    }
    line.push_str(&cmd.get_program().to_string_lossy());
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
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
