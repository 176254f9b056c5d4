//! # duet-build — from a program crate to a `.bpf.o` and a `.wasm`
//!
//! **API boundary that touches the OS** (processes, files). Used by `duet build` / `duet new`
//! and by `cargo xtask` (which builds duet's Rust BPF test corpus with the same toolchain code).
//!
//! [`build`] compiles one program crate (a `no_std` library using the `duet` SDK) twice:
//!
//! - for `bpfel-unknown-none`: `RUSTC_BOOTSTRAP=1 cargo rustc --lib --crate-type cdylib
//!   -Z build-std=core --target bpfel-unknown-none`, linked by bpf-linker with `--btf` (BTF
//!   describes the `.maps` definitions), giving `target/duet/<name>.bpf.o`;
//! - for `wasm32-unknown-unknown`: the same with `--target wasm32-unknown-unknown`, then
//!   [`manifest::finish_module`] turns the map records the SDK's macros left in the module into
//!   the `duet.maps` manifest, giving `target/duet/<name>.wasm`.
//!
//! A crate with kernel-only programs (`#[duet::connect4]`, `connect6`, `sock_ops`, `sk_msg`, `sk_lookup`: hooks with no
//! userspace meaning) gets no `.wasm`: the Wasm build finds their records in the module's
//! `duet.kernel_only` section and writes nothing ([`BuildOutput::kernel_only`] names them), and
//! a Wasm-only build of such a crate is an error.
//!
//! Both builds use the profile `duet-release`, defined on the command line (`--config`), so the
//! program's `Cargo.toml` needs nothing special: optimized (the kernel verifier rejects
//! unoptimized BPF), fat LTO, one codegen unit, `panic = "abort"`, no overflow checks (they
//! would bring panic paths), and full debug info (bpf-linker makes BTF from it; the `.wasm`
//! is stripped of it).
//!
//! Missing pieces are set up first ([`toolchain`]): `rust-src`, the wasm32 target, and
//! bpf-linker built against the active rustc's own LLVM.
//!
//! **Architecture Invariant:** every process this crate starts goes through `process.rs`, which
//! echoes it as a shell line first.

mod error;
pub mod manifest;
mod process;
pub mod scaffold;
pub mod toolchain;

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

pub use error::BuildError;
pub use manifest::MapEntry;
pub use process::{Progress, shell_line};
pub use toolchain::{BPF_TARGET, RustcInfo, WASM_TARGET};

/// The cargo profile both builds use, defined by [`PROFILE_CONFIG`].
pub const PROFILE: &str = "duet-release";

/// The `--config` settings that define [`PROFILE`].
pub const PROFILE_CONFIG: &[&str] = &[
    "profile.duet-release.inherits=\"release\"",
    "profile.duet-release.opt-level=3",
    "profile.duet-release.debug=2",
    "profile.duet-release.lto=true",
    "profile.duet-release.codegen-units=1",
    "profile.duet-release.panic=\"abort\"",
    "profile.duet-release.overflow-checks=false",
    "profile.duet-release.debug-assertions=false",
    "profile.duet-release.incremental=false",
];

/// Which artifacts to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Targets {
    /// The `.bpf.o`.
    pub bpf: bool,
    /// The `.wasm`.
    pub wasm: bool,
}

impl Targets {
    /// Both.
    pub const BOTH: Targets = Targets { bpf: true, wasm: true };
}

/// What to build, and how.
#[derive(Clone, Debug)]
pub struct BuildConfig {
    /// The program crate's directory (holding its `Cargo.toml`).
    pub crate_dir: PathBuf,
    /// Which artifacts.
    pub targets: Targets,
    /// Where bpf-linker lives [default: [`toolchain::default_tools_dir`]].
    pub tools_dir: Option<PathBuf>,
    /// Progress output.
    pub progress: Progress,
}

impl BuildConfig {
    /// Both artifacts of the crate in `crate_dir`, with progress output.
    pub fn new(crate_dir: impl Into<PathBuf>) -> Self {
        BuildConfig {
            crate_dir: crate_dir.into(),
            targets: Targets::BOTH,
            tools_dir: None,
            progress: Progress::default(),
        }
    }
}

/// What a build produced.
#[derive(Clone, Debug)]
pub struct BuildOutput {
    /// The program crate's package name; the artifacts are named after it.
    pub name: String,
    /// `<crate>/target/duet/<name>.bpf.o`, when built.
    pub bpf: Option<PathBuf>,
    /// `<crate>/target/duet/<name>.wasm`, when built.
    pub wasm: Option<PathBuf>,
    /// The maps of the `.wasm`'s manifest (empty when the `.wasm` was not built).
    pub wasm_maps: Vec<MapEntry>,
    /// The `.wasm`'s program exports (`duet_prog_xdp_firewall`, ...).
    pub wasm_programs: Vec<String>,
    /// `name (section)` of the crate's kernel-only programs (`#[duet::connect4]`,
    /// `connect6`, `sock_ops`, `sk_msg`, `sk_lookup`, `tracepoint`), and `map name (type)` of its kernel-only
    /// maps (`PerfEventArray`). When there are any, no `.wasm` is written: a module without them
    /// would not be the same program.
    pub kernel_only: Vec<String>,
}

/// Builds the program crate as [`BuildConfig`] says; see the crate documentation.
pub fn build(config: &BuildConfig) -> Result<BuildOutput, BuildError> {
    let krate = CrateInfo::query(&config.crate_dir)?;
    let out_dir = config.crate_dir.join("target/duet");
    fs::create_dir_all(&out_dir).map_err(BuildError::io("cannot create", &out_dir))?;
    let result = build_into(config, &krate, &out_dir);
    if result.is_err() {
        // A failed build leaves no artifact of an earlier build behind, to be run by mistake as
        // if it were this build's. (They are not removed up front: another build or a program
        // may be reading them, and new ones replace them atomically.)
        for (wanted, ext) in [(config.targets.bpf, "bpf.o"), (config.targets.wasm, "wasm")] {
            if wanted {
                let _ = fs::remove_file(out_dir.join(format!("{}.{ext}", krate.name)));
            }
        }
    }
    result
}

/// Writes `bytes` to `dest` through a temporary file in the same directory and a rename, so
/// that a reader (a concurrent build's user, a running `duet run`) sees the old file or the new
/// one, never a half-written or missing one.
fn replace_file(dest: &Path, bytes: &[u8]) -> Result<(), BuildError> {
    let mut tmp = dest.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, bytes).map_err(BuildError::io("cannot write", &tmp))?;
    fs::rename(&tmp, dest).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        BuildError::Io { action: "cannot write", path: dest.to_path_buf(), source: e }
    })
}

fn build_into(config: &BuildConfig, krate: &CrateInfo, out_dir: &Path) -> Result<BuildOutput, BuildError> {
    let progress = config.progress;
    let rustc = RustcInfo::query()?;
    let mut output = BuildOutput {
        name: krate.name.clone(),
        bpf: None,
        wasm: None,
        wasm_maps: Vec::new(),
        wasm_programs: Vec::new(),
        kernel_only: Vec::new(),
    };

    if config.targets.bpf {
        toolchain::ensure_rust_src(&rustc, progress)?;
        let tools = config.tools_dir.clone().unwrap_or_else(toolchain::default_tools_dir);
        let linker = toolchain::ensure_bpf_linker(&rustc, &tools, progress)?;
        progress.step(&format!("build {} for {BPF_TARGET}", krate.name));
        let built = cargo_build(krate, BPF_TARGET, &[], linker.parent(), progress)?;
        let bytes = fs::read(&built).map_err(BuildError::io("cannot read", &built))?;
        check_bpf_object(&bytes, &built)?;
        let dest = out_dir.join(format!("{}.bpf.o", krate.name));
        replace_file(&dest, &bytes)?;
        output.bpf = Some(dest);
    }

    if config.targets.wasm {
        toolchain::ensure_wasm_target(&rustc, progress)?;
        progress.step(&format!("build {} for {WASM_TARGET}", krate.name));
        let built = cargo_build(krate, WASM_TARGET, &["-C", "strip=debuginfo"], None, progress)?;
        let bytes = fs::read(&built).map_err(BuildError::io("cannot read", &built))?;
        let (module, maps) =
            manifest::finish_module(&bytes).map_err(|message| BuildError::Wasm { path: built.clone(), message })?;
        let exports =
            manifest::export_names(&module).map_err(|message| BuildError::Wasm { path: built.clone(), message })?;
        if !exports.iter().any(|e| e == "duet_abi_version") {
            return Err(BuildError::Wasm {
                path: built,
                message: "the module does not export `duet_abi_version`; does the crate use the `duet` SDK \
                          (`use duet::...`) in its library?"
                    .into(),
            });
        }
        let dest = out_dir.join(format!("{}.wasm", krate.name));
        let kernel_only = manifest::kernel_only_programs(&bytes)
            .map_err(|message| BuildError::Wasm { path: built.clone(), message })?;
        if !kernel_only.is_empty() {
            // Programs are `<section> <name>`, kernel-only maps `map:<type> <name>`.
            let programs: Vec<String> = kernel_only
                .iter()
                .map(|(section, name)| match section.strip_prefix("map:") {
                    Some(kind) => format!("map {name} ({kind})"),
                    None => format!("{name} ({section})"),
                })
                .collect();
            if !config.targets.bpf {
                return Err(BuildError::KernelOnly { krate: krate.name.clone(), programs });
            }
            // No `.wasm`, and none of an earlier build left to be taken for this one.
            let _ = fs::remove_file(&dest);
            output.kernel_only = programs;
            return Ok(output);
        }
        replace_file(&dest, &module)?;
        output.wasm = Some(dest);
        output.wasm_maps = maps;
        output.wasm_programs = exports.into_iter().filter(|e| e.starts_with("duet_prog_")).collect();
    }
    Ok(output)
}

// === the program crate ===

/// What `cargo metadata` says about the program crate.
#[derive(Clone, Debug)]
struct CrateInfo {
    /// The package name.
    name: String,
    /// Its `Cargo.toml`.
    manifest: PathBuf,
    /// The library target's name (`my_prog` for package `my-prog`).
    lib_name: String,
}

impl CrateInfo {
    fn query(dir: &Path) -> Result<Self, BuildError> {
        let manifest = dir.join("Cargo.toml");
        if !manifest.exists() {
            return Err(BuildError::Crate(format!(
                "{} has no Cargo.toml; pass the directory of a program crate, or create one with `duet new <name>`",
                dir.display()
            )));
        }
        let manifest = manifest.canonicalize().map_err(BuildError::io("cannot resolve", &manifest))?;
        let json = process::query_cmd(
            Command::new(process::cargo_program())
                .args(["metadata", "--no-deps", "--format-version", "1", "--manifest-path"])
                .arg(&manifest),
        )?;
        let meta: serde_json::Value = serde_json::from_str(&json)
            .map_err(|e| BuildError::Output(format!("cargo metadata printed invalid JSON: {e}")))?;
        let package = meta["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["manifest_path"].as_str().is_some_and(|m| Path::new(m) == manifest))
            .ok_or_else(|| {
                BuildError::Crate(format!(
                    "{} is a workspace, not a package; pass a program crate's directory",
                    manifest.display()
                ))
            })?;
        let name = package["name"].as_str().unwrap_or_default().to_owned();
        let lib_name = package["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| {
                t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "lib" || k == "rlib" || k == "cdylib"))
            })
            .and_then(|t| t["name"].as_str())
            .ok_or_else(|| {
                BuildError::Crate(format!(
                    "package `{name}` has no library target; a duet program is a library crate (src/lib.rs, \
                     `#![no_std]`)"
                ))
            })?
            .to_owned();
        Ok(CrateInfo { name, manifest, lib_name })
    }
}

/// Runs `cargo rustc` for `target` and returns the path of the linked artifact.
fn cargo_build(
    krate: &CrateInfo,
    target: &str,
    rustc_args: &[&str],
    tools_bin: Option<&Path>,
    progress: Progress,
) -> Result<PathBuf, BuildError> {
    // Shown only when the linker failed: the compiler's own errors, cargo's and the network's
    // have their own messages.
    let linker_hint = if target == BPF_TARGET {
        "linking failed: see bpf-linker's messages above (`function ... not found while relocating` names a \
         call the BPF target cannot make, e.g. `memset`: zero with `duet::zeroed`); if bpf-linker itself \
         crashed, delete it from the tools directory and build again"
    } else {
        "linking failed: see the messages above; a program must be `#![no_std]` and depend on the `duet` SDK"
    };
    let build = |offline: bool| {
        let mut cmd = cargo_rustc(krate, target, rustc_args, tools_bin, offline);
        process::run_cargo_build(progress, &mut cmd, &krate.lib_name, target, linker_hint)
    };
    // Online first, so a new crate's lock gets the versions cargo would pick; when cargo cannot
    // reach the network (a new crate's lock needs the index), once more from its local cache,
    // which has what the SDK needs once any duet crate was built on this machine.
    let stdout = match build(false) {
        Err(BuildError::Network { cause, offline: None }) => {
            progress.note(&format!(
                "cargo could not reach the network ({cause}); building offline from its local cache (--offline)"
            ));
            match build(true) {
                Ok(stdout) => stdout,
                Err(err @ BuildError::Compile { .. }) => return Err(err),
                Err(err) => {
                    // The command line was shown above; what went wrong is enough here.
                    let why = match err {
                        BuildError::Command { hint, .. } => hint.trim_start_matches("; ").to_owned(),
                        other => other.to_string(),
                    };
                    return Err(BuildError::Network { cause, offline: Some(why) });
                }
            }
        }
        other => other?,
    };
    artifact(&stdout, &krate.lib_name, target)
}

/// The `cargo rustc` command that builds `krate` for `target` (`offline`: from cargo's local
/// cache only, `--offline`).
fn cargo_rustc(
    krate: &CrateInfo,
    target: &str,
    rustc_args: &[&str],
    tools_bin: Option<&Path>,
    offline: bool,
) -> Command {
    let mut cmd = Command::new(process::cargo_program());
    // `-Z build-std` needs it on stable; set for both targets so the host-side proc macros of
    // the two builds are the same compilation.
    cmd.env("RUSTC_BOOTSTRAP", "1");
    if let Some(bin) = tools_bin {
        // rustc finds bpf-linker by name on PATH, so ours goes first.
        let mut path = OsString::from(bin);
        if let Some(old) = std::env::var_os("PATH") {
            path.push(":");
            path.push(old);
        }
        cmd.env("PATH", path);
    }
    cmd.arg("rustc").arg("--manifest-path").arg(&krate.manifest);
    if offline {
        cmd.arg("--offline");
    }
    cmd.args(["--lib", "--crate-type", "cdylib", "--target", target, "--profile", PROFILE]);
    if target == BPF_TARGET {
        cmd.args(["-Z", "build-std=core"]);
    }
    for setting in PROFILE_CONFIG {
        cmd.args(["--config", setting]);
    }
    // Human diagnostics go to stderr; stdout carries the JSON list of artifacts.
    cmd.arg("--message-format=json-render-diagnostics");
    cmd.arg("--");
    if target == BPF_TARGET {
        // BTF-defined maps (`.maps`) are described by BTF; without it no loader can create them.
        cmd.args(["-C", "link-arg=--btf"]);
    }
    cmd.args(rustc_args);
    cmd
}

/// The linked library of `lib_name` in cargo's JSON messages.
fn artifact(cargo_json: &str, lib_name: &str, target: &str) -> Result<PathBuf, BuildError> {
    let wanted = if target == WASM_TARGET { ".wasm" } else { ".so" };
    for line in cargo_json.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if msg["reason"] != "compiler-artifact" || msg["target"]["name"] != lib_name {
            continue;
        }
        let files = msg["filenames"].as_array().into_iter().flatten().filter_map(|f| f.as_str());
        if let Some(file) =
            files.into_iter().find(|f| f.ends_with(wanted) || (target == BPF_TARGET && f.ends_with(".o")))
        {
            return Ok(PathBuf::from(file));
        }
    }
    Err(BuildError::Output(format!("cargo reported no linked {target} library for `{lib_name}`")))
}

/// Checks that the BPF build produced an eBPF ELF object.
fn check_bpf_object(bytes: &[u8], path: &Path) -> Result<(), BuildError> {
    const EM_BPF: u16 = 247;
    let is_elf = bytes.get(..4) == Some(b"\x7fELF");
    let machine = bytes.get(18..20).map(|m| u16::from_le_bytes([m[0], m[1]]));
    if !is_elf || machine != Some(EM_BPF) {
        return Err(BuildError::Output(format!(
            "{} is not an eBPF ELF object; was it linked by bpf-linker?",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_artifact_is_the_linked_library_of_the_program() {
        let json = concat!(
            r#"{"reason":"compiler-artifact","target":{"name":"duet"},"filenames":["/t/libduet.rlib"]}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"name":"fw"},"filenames":["/t/fw.wasm"]}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
        );
        assert_eq!(artifact(json, "fw", WASM_TARGET).unwrap(), PathBuf::from("/t/fw.wasm"));
        assert!(artifact(json, "duet", WASM_TARGET).is_err());
        assert!(artifact(json, "fw", BPF_TARGET).is_err());
    }

    #[test]
    fn only_bpf_elf_objects_pass() {
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[18..20].copy_from_slice(&247u16.to_le_bytes());
        assert!(check_bpf_object(&elf, Path::new("x")).is_ok());
        elf[18] = 62;
        assert!(check_bpf_object(&elf, Path::new("x")).is_err());
        assert!(check_bpf_object(b"\0asm", Path::new("x")).is_err());
    }
}
