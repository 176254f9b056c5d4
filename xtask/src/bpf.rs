//! The C test programs under `tests/bpf/c`: the clang toolchain they need and their build.
//!
//! The differential test runs each object in the kernel and in duet's VM, so the objects are
//! built by the system's clang exactly as a C developer would build them
//! (`clang -O2 -g -target bpf -c`). Every command is printed before it runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use crate::{sh, step};
use anyhow::{Context, Result, bail};

/// The Debian packages that provide clang with the BPF target and libbpf's `bpf_helpers.h`.
/// (curl: the sidecar capture test runs it inside a cgroup.)
const PACKAGES: [&str; 3] = ["clang", "libbpf-dev", "curl"];

/// The header every C test program includes through `common.h`; its absence means libbpf-dev is missing.
const LIBBPF_HEADER: &str = "/usr/include/bpf/bpf_helpers.h";

/// Makes sure `clang` and libbpf's headers are installed.
///
/// When they are missing and this runs as root on Debian (the CI machines), they are installed
/// with `apt-get`, visibly; otherwise the error names the command to run.
pub fn ensure_clang() -> Result<()> {
    let has_clang = Command::new("clang").arg("--version").output().is_ok_and(|o| o.status.success());
    let has_libbpf = Path::new(LIBBPF_HEADER).exists();
    let has_curl = Command::new("curl").arg("--version").output().is_ok_and(|o| o.status.success());
    if has_clang && has_libbpf && has_curl {
        return Ok(());
    }
    let install = format!("apt-get install -y {}", PACKAGES.join(" "));
    if !is_root() || !Path::new("/etc/debian_version").exists() {
        let missing = if !has_clang {
            "clang"
        } else if !has_libbpf {
            LIBBPF_HEADER
        } else {
            "curl"
        };
        bail!("{missing} is missing; the tests need clang, libbpf's headers and curl: run `sudo {install}`");
    }
    step("install clang and libbpf headers (for tests/bpf/c) and curl (for the capture test)");
    let mut args = vec!["install", "-y"];
    args.extend(PACKAGES);
    if apt_get(&args).is_err() {
        // A stale package index makes downloads fail with 404; refresh it once and retry.
        apt_get(&["update"])?;
        apt_get(&args)?;
    }
    let works = Command::new("clang").arg("--version").output().is_ok_and(|o| o.status.success());
    if !works || !Path::new(LIBBPF_HEADER).exists() {
        bail!("`{install}` ran but clang or {LIBBPF_HEADER} is still missing");
    }
    Ok(())
}

/// Compiles every `tests/bpf/c/*.c` under `root` to `target/bpf/<name>.o` and returns the object
/// paths, sorted by name.
///
/// An object newer than its source and every header in `tests/bpf/c` is reused as it is.
pub fn build_c_corpus(root: &Path) -> Result<Vec<PathBuf>> {
    let src_dir = root.join("tests/bpf/c");
    let out_dir = root.join("target/bpf");
    let mut sources = Vec::new();
    let mut newest_header = SystemTime::UNIX_EPOCH;
    let entries = std::fs::read_dir(&src_dir).with_context(|| format!("cannot list {}", src_dir.display()))?;
    for entry in entries {
        let path = entry.with_context(|| format!("cannot list {}", src_dir.display()))?.path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("c") => sources.push(path),
            Some("h") => newest_header = newest_header.max(modified(&path)?),
            _ => {}
        }
    }
    if sources.is_empty() {
        bail!("no C test programs in {}", src_dir.display());
    }
    sources.sort();
    std::fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;

    // asm/types.h lives in the multiarch include directory, which clang does not search for the
    // BPF target.
    let multiarch = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let mut objects = Vec::with_capacity(sources.len());
    for source in sources {
        let stem = source.file_stem().context("a source file without a name")?;
        let object = out_dir.join(stem).with_extension("o");
        let fresh = object.exists() && modified(&object)? > modified(&source)?.max(newest_header);
        if fresh {
            println!("up to date: {}", object.display());
        } else {
            let (source_arg, object_arg) = (path_str(&source)?, path_str(&object)?);
            sh("clang", &["-O2", "-g", "-Wall", "-target", "bpf", &multiarch, "-c", source_arg, "-o", object_arg])
                .with_context(|| format!("cannot compile {}", source.display()))?;
        }
        objects.push(object);
    }
    Ok(objects)
}

fn modified(path: &Path) -> Result<SystemTime> {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .with_context(|| format!("cannot read the modification time of {}", path.display()))
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str().with_context(|| format!("non-UTF-8 path {}", path.display()))
}

/// Whether this process runs as root, read from `/proc/self/status` so no FFI is needed.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .is_some_and(|effective| effective == "0")
    })
}

fn apt_get(args: &[&str]) -> Result<()> {
    println!("$ DEBIAN_FRONTEND=noninteractive apt-get {}", args.join(" "));
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("cannot start `apt-get`")?;
    if !status.success() {
        bail!("`apt-get {}` failed ({status})", args.join(" "));
    }
    Ok(())
}
