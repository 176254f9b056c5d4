//! The toolchain a build needs, set up when missing: the `rust-src` component (for
//! `-Z build-std=core`), the `wasm32-unknown-unknown` target, and bpf-linker built against the
//! very LLVM the active rustc ships.
//!
//! bpf-linker reads the LLVM bitcode rustc emits, so it must be linked against rustc's own LLVM:
//! Debian's LLVM is older, and a mismatched one fails with obscure bitcode errors. rustup's
//! toolchains ship `lib/libLLVM.so.*` in the sysroot; [`ensure_bpf_linker`] links that file as
//! `libLLVM.so` into a prefix and builds bpf-linker with `LLVM_PREFIX` pointing there, into a
//! tools directory shared by every build (and by `cargo xtask`), stamped with the rustc it was
//! built for.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::BuildError;
use crate::process::{self, Progress};

/// The bpf-linker release we install. It must support the LLVM major version of our rustc.
pub const BPF_LINKER_VERSION: &str = "0.13.0";

/// The LLVM major versions bpf-linker 0.13 has a cargo feature for (`llvm-21`, ...).
const BPF_LINKER_LLVM_MAJORS: &[u32] = &[21, 22, 23];

/// The BPF target programs are compiled for.
pub const BPF_TARGET: &str = "bpfel-unknown-none";

/// The Wasm target programs are compiled for.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// What we need to know about the rustc that builds the programs.
#[derive(Clone, Debug)]
pub struct RustcInfo {
    /// `rustc 1.95.0 (59807616e 2026-04-14)`: identifies the toolchain in the stamp.
    pub version_line: String,
    /// The major version of the LLVM rustc is built on (`LLVM version: 22.1.2` gives 22).
    pub llvm_major: u32,
    /// `rustc --print sysroot`, where `lib/libLLVM.so.*`, `rust-src` and targets live.
    pub sysroot: PathBuf,
}

impl RustcInfo {
    /// Asks `rustc` (the one on PATH, which is what cargo runs).
    pub fn query() -> Result<Self, BuildError> {
        let verbose = process::query("rustc", &["-vV"])?;
        let version_line = verbose.lines().next().unwrap_or_default().trim().to_owned();
        let llvm = verbose.lines().find_map(|line| line.strip_prefix("LLVM version: ")).ok_or_else(|| {
            BuildError::Toolchain(format!(
                "`rustc -vV` ({version_line}) names no LLVM version; duet needs an official rustup toolchain \
                 (https://rustup.rs)"
            ))
        })?;
        let llvm_major = llvm
            .split('.')
            .next()
            .and_then(|major| major.trim().parse().ok())
            .ok_or_else(|| BuildError::Toolchain(format!("cannot read the LLVM major version from `{llvm}`")))?;
        let sysroot = PathBuf::from(process::query("rustc", &["--print", "sysroot"])?.trim());
        Ok(Self { version_line, llvm_major, sysroot })
    }
}

/// Installs the `rust-src` component unless the sysroot has it.
pub fn ensure_rust_src(rustc: &RustcInfo, progress: Progress) -> Result<(), BuildError> {
    let core = rustc.sysroot.join("lib/rustlib/src/rust/library/core/Cargo.toml");
    if core.exists() {
        return Ok(());
    }
    let _lock = rustup_lock()?;
    if core.exists() {
        return Ok(());
    }
    progress.step("install rust-src (BPF programs compile `core` from source)");
    process::run(
        progress,
        Command::new("rustup").args(["component", "add", "rust-src"]),
        "install it by hand with `rustup component add rust-src` (it needs network access)",
    )
}

/// Installs the `wasm32-unknown-unknown` target unless the sysroot has it.
pub fn ensure_wasm_target(rustc: &RustcInfo, progress: Progress) -> Result<(), BuildError> {
    let installed = || rustc.sysroot.join("lib/rustlib").join(WASM_TARGET).join("lib").exists();
    if installed() {
        return Ok(());
    }
    let _lock = rustup_lock()?;
    if installed() {
        return Ok(());
    }
    progress.step(&format!("install the {WASM_TARGET} target"));
    process::run(
        progress,
        Command::new("rustup").args(["target", "add", WASM_TARGET]),
        &format!("install it by hand with `rustup target add {WASM_TARGET}` (it needs network access)"),
    )
}

/// Serializes duet's `rustup` installs on this machine (parallel builds would race to install
/// the same component); the lock is released when the file is dropped.
fn rustup_lock() -> Result<fs::File, BuildError> {
    let path = std::env::temp_dir().join("duet-rustup.lock");
    let file = fs::File::create(&path).map_err(BuildError::io("cannot create", &path))?;
    file.lock().map_err(BuildError::io("cannot lock", &path))?;
    Ok(file)
}

/// Where bpf-linker is installed when the caller does not say: `$DUET_TOOLS_DIR`, else the
/// `.tools` directory of the duet checkout this crate was built from (shared with
/// `cargo xtask`), else `$XDG_CACHE_HOME/duet/tools` or `~/.cache/duet/tools`.
pub fn default_tools_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DUET_TOOLS_DIR") {
        return PathBuf::from(dir);
    }
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if checkout.join("crates/build/Cargo.toml").exists() {
        return checkout.canonicalize().unwrap_or(checkout).join(".tools");
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("duet/tools")
}

/// Makes sure `<tools>/bin/bpf-linker` exists, starts, and was built for this rustc (building
/// it when not); returns its path. Every step already done is skipped, so this is cheap to call
/// on every build.
pub fn ensure_bpf_linker(rustc: &RustcInfo, tools: &Path, progress: Progress) -> Result<PathBuf, BuildError> {
    let linker = tools.join("bin/bpf-linker");
    let stamp_path = tools.join("bpf-linker.stamp");
    // The stamp records what the installed linker was built for; a new rustc (and so possibly a
    // new libLLVM) or a new pinned bpf-linker version means a rebuild.
    let stamp = format!("bpf-linker {BPF_LINKER_VERSION}\n{}\n", rustc.version_line);
    // It must also still start: its rpath names `<tools>/rustc-llvm/lib` by absolute path, which
    // breaks when the directory moves.
    let starts = || Command::new(&linker).arg("--version").output().is_ok_and(|out| out.status.success());
    let up_to_date = || fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp) && starts();
    if up_to_date() {
        return Ok(linker);
    }
    // Several builds may start at once (parallel tests, two terminals): one builds the linker,
    // the others wait for it and then find it up to date.
    fs::create_dir_all(tools).map_err(BuildError::io("cannot create", tools))?;
    let lock_path = tools.join("bpf-linker.lock");
    let lock = fs::File::create(&lock_path).map_err(BuildError::io("cannot create", &lock_path))?;
    lock.lock().map_err(BuildError::io("cannot lock", &lock_path))?;
    if up_to_date() {
        return Ok(linker);
    }

    progress.step(&format!(
        "build bpf-linker {BPF_LINKER_VERSION} against rustc's LLVM {} into {} (once per toolchain, about a minute)",
        rustc.llvm_major,
        tools.display()
    ));
    if !BPF_LINKER_LLVM_MAJORS.contains(&rustc.llvm_major) {
        return Err(BuildError::Toolchain(format!(
            "rustc `{}` uses LLVM {}, but bpf-linker {BPF_LINKER_VERSION} supports only LLVM {:?}; use a \
             rustc whose LLVM bpf-linker supports (see `rustc -vV`)",
            rustc.version_line, rustc.llvm_major, BPF_LINKER_LLVM_MAJORS
        )));
    }
    let llvm_prefix = link_rustc_llvm(rustc, tools, progress)?;
    let feature = format!("llvm-{}", rustc.llvm_major);
    let version = format!("={BPF_LINKER_VERSION}");
    let mut install = Command::new(process::cargo_program());
    install.env("LLVM_PREFIX", &llvm_prefix).args(["install", "bpf-linker", "--version", &version]).args([
        "--locked",
        "--force",
        "--no-default-features",
        "--features",
        &feature,
        "--root",
    ]);
    install.arg(tools);
    process::run(
        progress,
        &mut install,
        "building bpf-linker needs a C toolchain and linker (`apt-get install build-essential`) and network \
         access to crates.io",
    )?;

    // The linker must actually start: a broken libLLVM link shows up here rather than as an
    // obscure rustc linker error later.
    if !starts() {
        return Err(BuildError::Toolchain(format!(
            "the freshly built {} does not run; delete {} and build again",
            linker.display(),
            tools.display()
        )));
    }
    fs::write(&stamp_path, stamp).map_err(BuildError::io("cannot write", &stamp_path))?;
    Ok(linker)
}

/// Links rustc's own `libLLVM.so.*` into `<tools>/rustc-llvm/lib` under the names the bpf-linker
/// build looks for; returns the prefix to pass as `LLVM_PREFIX`.
fn link_rustc_llvm(rustc: &RustcInfo, tools: &Path, progress: Progress) -> Result<PathBuf, BuildError> {
    let sysroot_lib = rustc.sysroot.join("lib");
    let entries = fs::read_dir(&sysroot_lib).map_err(BuildError::io("cannot list", &sysroot_lib))?;
    let libllvm = entries
        .filter_map(Result::ok)
        .find(|entry| entry.file_name().to_str().is_some_and(|name| name.starts_with("libLLVM.so.")))
        .map(|entry| entry.path())
        .ok_or_else(|| {
            BuildError::Toolchain(format!(
                "no libLLVM.so.* in {}; bpf-linker needs the toolchain's shared LLVM (rustup's official \
                 toolchains ship it)",
                sysroot_lib.display()
            ))
        })?;

    let prefix = tools.join("rustc-llvm");
    let lib = prefix.join("lib");
    if lib.exists() {
        fs::remove_dir_all(&lib).map_err(BuildError::io("cannot clear", &lib))?;
    }
    fs::create_dir_all(&lib).map_err(BuildError::io("cannot create", &lib))?;
    // bpf-linker links `-lLLVM`, which needs `libLLVM.so`. At run time the dynamic loader looks
    // for the library's soname (the file's own name) in bpf-linker's rpath, which is this
    // directory, so that name is linked too: bpf-linker then starts without LD_LIBRARY_PATH.
    let soname = libllvm.file_name().map(PathBuf::from).unwrap_or_default();
    for name in [PathBuf::from("libLLVM.so"), soname] {
        let link = lib.join(name);
        progress.note(&format!("ln -s {} {}", libllvm.display(), link.display()));
        std::os::unix::fs::symlink(&libllvm, &link).map_err(BuildError::io("cannot create the link", &link))?;
    }
    Ok(prefix)
}
