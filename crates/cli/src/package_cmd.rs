//! `duet package`: a `.wasm` compiled ahead of time and appended, with a manifest, to
//! `duet-runner` (wasmtime without a compiler), giving one executable. The package format is
//! `duet_runner`'s library; the runtime is its binary.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use duet_app::{App, AppConfig};
use duet_runner::{Artifact, Manifest, Payload};
use duet_wasm::{ProgramKind, WasmModule, WasmOptions};

/// Options of `duet package`.
#[derive(clap::Args, Debug)]
pub struct PackageArgs {
    /// The `.wasm` to package: a duet-ABI module (`duet build`'s output) or a WASI 0.2
    /// `wasi:http/incoming-handler` component.
    input: PathBuf,
    /// The executable to write (mode 0755).
    #[arg(short, long)]
    output: PathBuf,
    /// Packet program: the program the executable runs [default: the module's only packet
    /// program].
    #[arg(long)]
    program: Option<String>,
    /// The runtime to embed [default: $DUET_RUNNER; else, for a packet program,
    /// `duet-runner-packet` next to this `duet` (the runtime without the app host), then
    /// `duet-runner` next to it; else built from this checkout: `cargo build --release -p
    /// duet-runner` (with `--no-default-features` into target/runner-packet for a packet
    /// program)].
    #[arg(long, value_name = "FILE")]
    runner: Option<PathBuf>,
    /// HTTP app: cap on each instance's linear memory in MiB (default 64).
    #[arg(long)]
    max_memory_mb: Option<u32>,
    /// HTTP app: deadline of one request in milliseconds (default 1000).
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// HTTP app: instances alive at once (default 256).
    #[arg(long)]
    max_concurrency: Option<u32>,
    /// HTTP app: an environment variable the app sees, `NAME=VALUE` (repeatable; nothing else is
    /// visible).
    #[arg(long, value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// HTTP app: give it an in-memory `duet:app/kv` store of at most this many entries (of at most
    /// 64 KiB each), living as long as the process.
    #[arg(long, value_name = "ENTRIES")]
    kv: Option<usize>,
}

/// `duet package`.
pub fn run(args: PackageArgs) -> Result<ExitCode> {
    let input = &args.input;
    let bytes = std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
    let source = input.file_name().map_or_else(|| input.display().to_string(), |n| n.to_string_lossy().into_owned());
    let artifact_and_code = match wasm_kind(&bytes) {
        Some(WasmKind::Module) => program(&args, &bytes)?,
        Some(WasmKind::Component) => app(&args, &bytes, &source)?,
        None => bail!(
            "{} is not WebAssembly (no `\\0asm` header): `duet package` takes the `.wasm` that `duet build` writes \
             (a packet program) or a WASI 0.2 wasi:http/incoming-handler component (an HTTP app); a `.bpf.o` runs \
             with `duet run` or in the kernel",
            input.display()
        ),
    };
    let (artifact, code) = artifact_and_code;
    let manifest = Manifest {
        source,
        source_sha256: duet_runner::sha256_hex(&bytes),
        duet_version: env!("CARGO_PKG_VERSION").into(),
        artifact,
    };
    let host = match manifest.artifact {
        Artifact::Program { .. } => Host::Program,
        Artifact::App { .. } => Host::App,
    };
    let runner_path = find_runner(args.runner.as_deref(), host)?;
    let runner = std::fs::read(&runner_path).with_context(|| format!("cannot read {}", runner_path.display()))?;
    // A package given as the runner: embed its runtime, not its payload.
    let runner = match duet_runner::split(&runner) {
        Ok(Some((bare, _))) => bare,
        _ => &runner[..],
    };
    if !runner.starts_with(b"\x7fELF") {
        bail!("{} is not an executable (no ELF header); pass duet-runner with --runner", runner_path.display());
    }
    if let Some(hosts) = duet_runner::runner_hosts(runner)
        && !hosts.iter().any(|h| h == host.name())
    {
        let can: Vec<&str> = hosts
            .iter()
            .map(|h| match h.as_str() {
                "program" => Host::Program.what(),
                "app" => Host::App.what(),
                other => other,
            })
            .collect();
        bail!(
            "{} cannot run {}: it was built for {} only (`cargo build --release -p duet-runner` builds the full runtime)",
            runner_path.display(),
            host.what(),
            can.join(" and ")
        );
    }
    let stripped = strip_debug_info(runner);
    let runner = stripped.as_deref().unwrap_or(runner);
    let code_len = code.len();
    let package = duet_runner::assemble(runner, &Payload { manifest, code })?;
    write_executable(&args.output, &package)?;
    eprintln!(
        "wrote {}: {} bytes (runtime {} from {}, compiled code {code_len}, manifest and trailer {})",
        args.output.display(),
        package.len(),
        runner.len(),
        runner_path.display(),
        package.len() - runner.len() - code_len
    );
    Ok(ExitCode::SUCCESS)
}

enum WasmKind {
    Module,
    Component,
}

/// A core module (version 1) or a component (the component layer), by the header.
fn wasm_kind(bytes: &[u8]) -> Option<WasmKind> {
    if bytes.len() < 8 || bytes[..4] != *b"\0asm" {
        return None;
    }
    Some(if bytes[4..8] == [1, 0, 0, 0] { WasmKind::Module } else { WasmKind::Component })
}

/// A duet-ABI module: loaded as `duet run` loads it (so it is checked the same way), its packet
/// program chosen, and compiled.
fn program(args: &PackageArgs, bytes: &[u8]) -> Result<(Artifact, Vec<u8>)> {
    let input = &args.input;
    let app_flags = args.max_memory_mb.is_some()
        || args.timeout_ms.is_some()
        || args.max_concurrency.is_some()
        || !args.env.is_empty()
        || args.kv.is_some();
    if app_flags {
        bail!(
            "{} is a duet-ABI module (a packet program); --max-memory-mb, --timeout-ms, --max-concurrency, --env and \
             --kv apply to HTTP apps (components)",
            input.display()
        );
    }
    let options = WasmOptions { cache_dir: duet_wasm::default_cache_dir(), ..WasmOptions::default() };
    let module = WasmModule::load(bytes, &options).with_context(|| format!("cannot load {}", input.display()))?;
    let runnable = |kind: ProgramKind| kind == ProgramKind::Xdp || kind.skb_hook().is_some();
    let program = match &args.program {
        Some(name) => module.program(name)?.clone(),
        None => {
            let packet: Vec<_> = module.programs().iter().filter(|p| runnable(p.kind)).collect();
            match packet.as_slice() {
                [only] => (*only).clone(),
                _ => {
                    let all: Vec<String> =
                        module.programs().iter().map(|p| format!("{} ({})", p.name, p.kind)).collect();
                    bail!(
                        "{} has {} packet programs; choose one with --program (it has: {})",
                        input.display(),
                        if packet.is_empty() { "no" } else { "several" },
                        if all.is_empty() { "none".to_owned() } else { all.join(", ") }
                    )
                }
            }
        }
    };
    if !runnable(program.kind) {
        bail!(
            "program `{}` is a {} program; a package runs xdp, classifier, socket_filter and cgroup_skb programs over \
             captures (serve HTTP filters in `duet mesh`)",
            program.name,
            program.kind
        );
    }
    let precompiled =
        WasmModule::precompile(bytes, &options).with_context(|| format!("cannot compile {}", input.display()))?;
    let maps_manifest = precompiled
        .maps_manifest
        .map(String::from_utf8)
        .transpose()
        .with_context(|| format!("{}: the `duet.maps` manifest is not UTF-8", input.display()))?;
    let artifact = Artifact::Program { program: program.name, hook: program.kind.to_string(), maps_manifest };
    Ok((artifact, precompiled.code))
}

/// A component: linked and checked as the sidecar checks an app, and compiled.
fn app(args: &PackageArgs, bytes: &[u8], source: &str) -> Result<(Artifact, Vec<u8>)> {
    if let Some(name) = &args.program {
        bail!("{} is a component (an HTTP app); --program `{name}` applies to packet programs", args.input.display());
    }
    let mut config = AppConfig::new(source);
    config.max_memory_mb = args.max_memory_mb.unwrap_or(config.max_memory_mb);
    config.timeout_ms = args.timeout_ms.unwrap_or(config.timeout_ms);
    config.max_concurrency = args.max_concurrency.unwrap_or(config.max_concurrency);
    for pair in &args.env {
        let Some((name, value)) = pair.split_once('=') else { bail!("--env {pair:?} is not NAME=VALUE") };
        config.env.insert(name.to_owned(), value.to_owned());
    }
    let code = App::precompile(&config, bytes).with_context(|| format!("cannot package {}", args.input.display()))?;
    Ok((Artifact::App { config, kv_entries: args.kv }, code))
}

/// What a package's runtime must run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Host {
    /// A packet program: the runtime without the app host will do.
    Program,
    /// An HTTP app: the full runtime.
    App,
}

impl Host {
    /// Its name in a runner's `duet-runner-hosts:` marker.
    fn name(self) -> &'static str {
        match self {
            Host::Program => "program",
            Host::App => "app",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Host::Program => "packet programs",
            Host::App => "HTTP apps",
        }
    }
}

/// The runtime to embed for `host`; see [`PackageArgs::runner`].
fn find_runner(explicit: Option<&Path>, host: Host) -> Result<PathBuf> {
    if let Some(path) = explicit {
        if !path.is_file() {
            bail!("--runner {}: no such file", path.display());
        }
        return Ok(path.to_owned());
    }
    if let Some(path) = std::env::var_os("DUET_RUNNER").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("DUET_RUNNER={}: no such file", path.display());
        }
        return Ok(path);
    }
    if let Ok(exe) = std::env::current_exe() {
        let names: &[&str] =
            if host == Host::Program { &["duet-runner-packet", "duet-runner"] } else { &["duet-runner"] };
        if let Some(beside) = names.iter().map(|n| exe.with_file_name(n)).find(|p| p.is_file()) {
            return Ok(beside);
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if !root.join("crates/runner/Cargo.toml").is_file() {
        bail!(
            "cannot find duet-runner, the runtime a package embeds: put it next to this `duet` (`cargo build --release \
             -p duet-runner` in duet's checkout writes target/release/duet-runner), set DUET_RUNNER, or pass --runner"
        );
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    // The packet-only runtime has other features than the full one: its own target directory
    // keeps the two builds from replacing each other's binary.
    let target_dir = if host == Host::Program { target.join("runner-packet") } else { target };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.args(["build", "--release", "-p", "duet-runner", "--manifest-path"])
        .arg(root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    if host == Host::Program {
        cmd.arg("--no-default-features");
    }
    eprintln!("$ {cmd:?}");
    let status = cmd.status().with_context(|| format!("cannot run {}", cargo.to_string_lossy()))?;
    if !status.success() {
        bail!("building duet-runner failed ({status}); pass a built one with --runner or DUET_RUNNER");
    }
    let built = target_dir.join("release/duet-runner");
    if !built.is_file() {
        bail!("cargo built duet-runner but {} is missing; pass it with --runner", built.display());
    }
    Ok(built)
}

/// The runner without its DWARF sections (a release build keeps line tables, about nine tenths
/// of the file), through binutils' `strip --strip-debug` when it is installed (echoed); symbols
/// stay, so the runtime's own backtraces keep their names. `None`: embed the runner as it is.
fn strip_debug_info(runner: &[u8]) -> Option<Vec<u8>> {
    let dir = std::env::temp_dir();
    let input = dir.join(format!("duet-package-runner-{}", std::process::id()));
    let output = dir.join(format!("duet-package-runner-{}.stripped", std::process::id()));
    std::fs::write(&input, runner).ok()?;
    let mut cmd = Command::new("strip");
    cmd.arg("--strip-debug").arg("-o").arg(&output).arg(&input);
    let status = cmd.stderr(std::process::Stdio::null()).status();
    let stripped = match status {
        Ok(s) if s.success() => {
            eprintln!("$ {cmd:?}");
            std::fs::read(&output).ok()
        }
        _ => {
            eprintln!("note: `strip` (binutils) is not available: the runtime is embedded with its debug info");
            None
        }
    };
    let _ = std::fs::remove_file(&input);
    let _ = std::fs::remove_file(&output);
    stripped
}

/// Writes `bytes` to `path` with mode 0755, through a temporary file in the same directory and a
/// rename, so a reader never sees half a package.
fn write_executable(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().with_context(|| format!("{} names no file", path.display()))?;
    let tmp = dir.join(format!(".{}.tmp.{}", name.to_string_lossy(), std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o755))?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}
