//! `duet-runner`: the runtime `duet package` embeds in every package. It reads the payload at
//! the end of its own executable (see the library, `lib.rs`), checks its SHA-256, lets wasmtime
//! check the code's version and engine settings, and then either replays a capture through the
//! packaged packet program (`--pcap`, output identical to `duet run`) or serves the packaged
//! HTTP app (`--listen`).
//!
//! wasmtime is built without a compiler here: no Cranelift, nothing that turns bytes into code
//! at run time. Without the `app` feature the runtime has no app host (no component model, WASI,
//! hyper or tokio): that build is what `duet package` embeds for packet programs, and it says so
//! in [`HOSTS`]. The capture replay and its output are the cli's own files, compiled into this
//! binary too (the `#[path]` modules below), so the two cannot drift apart.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{CommandFactory, FromArgMatches, Parser};
use duet_helpers::Env;
use duet_runner::{Artifact, Payload};
use duet_wasm::{Precompiled, WasmModule};

// The cli's capture reader, replay loop and report (`duet run`'s output), compiled from the
// same files, unchanged. Parts of them (the eBPF engines, `inspect`) are unused here.
#[allow(dead_code, reason = "shared with the cli; the runner uses the Wasm replay only")]
#[path = "../../cli/src/capture.rs"]
mod capture;
#[allow(dead_code, reason = "shared with the cli; the runner uses the Wasm replay only")]
#[path = "../../cli/src/objects.rs"]
mod objects;
#[allow(dead_code, reason = "shared with the cli; the runner uses the Wasm replay only")]
#[path = "../../cli/src/replay.rs"]
mod replay;
#[allow(dead_code, reason = "shared with the cli; the runner uses the Wasm replay only")]
#[path = "../../cli/src/wasm_run.rs"]
mod wasm_run;

use objects::{RunArgs, possible_cpus};

/// What this runtime can run, as `duet package` reads it from the executable's bytes before
/// embedding it (see `duet_runner::runner_hosts`).
#[cfg(feature = "app")]
#[used]
static HOSTS: [u8; 30] = *b"duet-runner-hosts:program,app\0";
/// What this runtime can run (packet programs only: built without the `app` feature).
#[cfg(not(feature = "app"))]
#[used]
static HOSTS: [u8; 26] = *b"duet-runner-hosts:program\0";

/// The same allocator as `duet`, so packaged and unpackaged runs compare like for like.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A WebAssembly program or app compiled ahead of time by `duet package`, with its runtime.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Packet program: replay this capture (pcap or pcapng, Ethernet) through it and report
    /// verdict counts, as `duet run` does.
    #[arg(long, value_name = "FILE", conflicts_with = "listen")]
    pcap: Option<PathBuf>,
    /// Packet program: print `duet run --json`'s document (results, packets, ring buffers, maps).
    #[arg(long, requires = "pcap")]
    json: bool,
    /// Packet program: write the packets as the program left them to this pcapng file.
    #[arg(long, value_name = "FILE", requires = "pcap")]
    pcap_out: Option<PathBuf>,
    /// Packet program: seed maps from a JSON file of `--json`'s shape first.
    #[arg(long, value_name = "FILE", requires = "pcap")]
    maps_in: Option<PathBuf>,
    /// Packet program: run this program of the module instead of the packaged one.
    #[arg(long, requires = "pcap")]
    program: Option<String>,
    /// Packet program: CPUs per-CPU maps hold [default: the machine's possible CPUs].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=4096), requires = "pcap")]
    cpus: Option<u16>,
    /// Packet program: deterministic time and randomness (as `duet run --deterministic`).
    #[arg(long, requires = "pcap")]
    deterministic: bool,
    /// Packet program: fill a prog array slot for tail calls, as MAP:SLOT=PROGRAM (as `duet run
    /// --tail-call`); repeat for more slots.
    #[arg(long = "tail-call", value_name = "MAP:SLOT=PROGRAM", requires = "pcap", value_parser = objects::parse_tail_call)]
    tail_calls: Vec<objects::TailCall>,
    /// HTTP app: serve it on this address (HTTP/1.1 and h2c); port 0 picks one. Prints
    /// `listening on http://ADDR` when ready.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// HTTP app: instances alive at once [default: as packaged].
    #[arg(long, requires = "listen")]
    max_concurrency: Option<u32>,
    /// HTTP app: deadline of one request in milliseconds [default: as packaged].
    #[arg(long, requires = "listen")]
    timeout_ms: Option<u64>,
    /// HTTP app: cap on each instance's memory in MiB [default: as packaged].
    #[arg(long, requires = "listen")]
    max_memory_mb: Option<u32>,
    /// Print what this executable holds (JSON) and exit.
    #[arg(long, conflicts_with_all = ["pcap", "listen"])]
    info: bool,
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode> {
    let started = Instant::now();
    let exe = own_executable();
    let payload = load_payload(&exe)?;
    let name = exe.file_name().map_or_else(|| "package".into(), |n| n.to_string_lossy().into_owned());
    let matches = Args::command()
        .bin_name(name.clone())
        .about(about(&payload))
        .after_help(examples(&payload, &name))
        .get_matches();
    let args = Args::from_arg_matches(&matches)?;
    if args.info {
        println!("{}", info(&payload)?);
        return Ok(ExitCode::SUCCESS);
    }
    match &payload.manifest.artifact {
        Artifact::Program { .. } if args.listen.is_some() => {
            bail!("{name} holds a packet program, not an HTTP app: run it with --pcap FILE (see --help)")
        }
        Artifact::Program { program, .. } => {
            let Some(pcap) = args.pcap.clone() else {
                bail!("{name} holds a packet program: run it with --pcap FILE [--json] (see --help)")
            };
            run_program(&payload, program, &exe, pcap, &args)
        }
        Artifact::App { .. } if args.pcap.is_some() => {
            bail!("{name} holds an HTTP app, not a packet program: serve it with --listen ADDR (see --help)")
        }
        #[cfg(not(feature = "app"))]
        Artifact::App { .. } => {
            let _ = started;
            bail!(
                "{name} holds an HTTP app, but its runtime was built without the app host (duet-runner \
                 --no-default-features, for packet programs): package the app again with a full duet-runner"
            )
        }
        #[cfg(feature = "app")]
        Artifact::App { config, kv_entries } => {
            let Some(addr) = args.listen else {
                bail!(
                    "{name} holds an HTTP app: serve it with --listen ADDR, e.g. --listen 127.0.0.1:8080 (see --help)"
                )
            };
            let mut config = config.clone();
            config.max_concurrency = args.max_concurrency.unwrap_or(config.max_concurrency);
            config.timeout_ms = args.timeout_ms.unwrap_or(config.timeout_ms);
            config.max_memory_mb = args.max_memory_mb.unwrap_or(config.max_memory_mb);
            serve_app(&payload, &config, *kv_entries, addr, started)
        }
    }
}

/// This process's executable: `/proc/self/exe` on Linux (the file that was started, even when
/// renamed since), else what std reports.
fn own_executable() -> PathBuf {
    let proc = PathBuf::from("/proc/self/exe");
    if proc.exists() { proc } else { std::env::current_exe().unwrap_or(proc) }
}

fn load_payload(exe: &std::path::Path) -> Result<Payload> {
    let mut file =
        std::fs::File::open(exe).with_context(|| format!("cannot open its own executable {}", exe.display()))?;
    match duet_runner::read(&mut file).context("cannot load the packaged program")? {
        Some(payload) => Ok(payload),
        None => bail!(
            "this is duet-runner without a payload: it runs what `duet package` appends to it; \
             make a package with `duet package program.wasm -o program` (or an app: `duet package app.wasm -o app`)"
        ),
    }
}

// === Packet programs ===

fn run_program(
    payload: &Payload,
    packaged: &str,
    exe: &std::path::Path,
    pcap: PathBuf,
    args: &Args,
) -> Result<ExitCode> {
    let Artifact::Program { maps_manifest, .. } = &payload.manifest.artifact else { bail!("not a packet program") };
    let run_args = RunArgs {
        object: exe.to_path_buf(),
        pcap,
        program: args.program.clone(),
        engine: Some("wasm".into()),
        json: args.json,
        pcap_out: args.pcap_out.clone(),
        maps_in: args.maps_in.clone(),
        cpus: args.cpus.map(usize::from),
        deterministic: args.deterministic,
        no_verify: false,
        typed: false,
        tail_calls: args.tail_calls.clone(),
    };
    let env = if run_args.deterministic { Env::deterministic() } else { Env::system() };
    let options = duet_wasm::WasmOptions {
        n_cpus: run_args.cpus.unwrap_or_else(possible_cpus),
        env,
        cache_dir: None,
        ..duet_wasm::WasmOptions::default()
    };
    let precompiled = Precompiled {
        code: payload.code.clone(),
        maps_manifest: maps_manifest.as_ref().map(|m| m.as_bytes().to_vec()),
    };
    // SAFETY: `duet_runner::read` compared the SHA-256 of these bytes with the one `duet package`
    // recorded when it wrote them from `WasmModule::precompile`, so they are that output,
    // unaltered (whoever could forge both could already change this executable's own code).
    let module = unsafe { WasmModule::load_precompiled(&precompiled, &options) }
        .with_context(|| format!("cannot load the packaged {}", payload.manifest.source))?;
    let name = run_args.program.clone().unwrap_or_else(|| packaged.to_owned());
    wasm_run::replay_program(&module, &name, &run_args, "wasm (packaged)")
}

// === HTTP apps ===

#[cfg(feature = "app")]
fn serve_app(
    payload: &Payload,
    config: &duet_app::AppConfig,
    kv_entries: Option<usize>,
    addr: SocketAddr,
    started: Instant,
) -> Result<ExitCode> {
    use std::convert::Infallible;
    use std::io::IsTerminal;
    use std::sync::Arc;
    use std::time::Duration;

    use duet_app::{App, MemoryKv};

    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    // SAFETY: as for packet programs: `duet_runner::read` checked these bytes against the
    // SHA-256 `duet package` recorded when it wrote them from `App::precompile`.
    let app = unsafe { App::from_precompiled(config, &payload.code) }
        .with_context(|| format!("cannot load the packaged {}", payload.manifest.source))?;
    let app = match kv_entries {
        Some(n) => app.with_kv(Arc::new(MemoryKv::new(n, 64 << 10))),
        None => app,
    };
    let app = Arc::new(app);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start tokio")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        println!("listening on http://{local} (ready {:.1} ms after start)", started.elapsed().as_secs_f64() * 1e3);
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = shutdown() => return Ok(ExitCode::SUCCESS),
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors and the like: wait a little rather than spin.
                    eprintln!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let app = Arc::clone(&app);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let app = Arc::clone(&app);
                    async move { Ok::<_, Infallible>(app.serve(req).await) }
                });
                let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
                let _ = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
            });
        }
    })
}

/// Resolves on Ctrl-C or SIGTERM.
#[cfg(feature = "app")]
async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}

// === --help and --info ===

fn about(payload: &Payload) -> String {
    let m = &payload.manifest;
    match &m.artifact {
        Artifact::Program { program, hook, .. } => format!(
            "The {hook} program `{program}` of {}, compiled ahead of time by `duet package` (duet {}), with a \
             WebAssembly runtime that has no compiler.",
            m.source, m.duet_version
        ),
        Artifact::App { .. } => format!(
            "The HTTP app {} (a wasi:http/incoming-handler component), compiled ahead of time by `duet package` \
             (duet {}), with a WebAssembly runtime that has no compiler.",
            m.source, m.duet_version
        ),
    }
}

fn examples(payload: &Payload, name: &str) -> String {
    match &payload.manifest.artifact {
        Artifact::Program { .. } => format!(
            "Run it over a capture, as `duet run {src} --pcap` would:\n  \
             ./{name} --pcap traffic.pcap             verdict counts and ns/packet\n  \
             ./{name} --pcap traffic.pcap --json      every result, packet and map (`duet run --json`'s document)\n  \
             ./{name} --pcap in.pcap --pcap-out out.pcapng --maps-in blocklist.json",
            src = payload.manifest.source
        ),
        Artifact::App { config, kv_entries } => format!(
            "Serve it:\n  \
             ./{name} --listen 127.0.0.1:8080\n  \
             curl http://127.0.0.1:8080/\n\
             Packaged limits: max_concurrency {}, timeout_ms {}, max_memory_mb {}; key-value store: {}; outbound \
             HTTP: refused (a package has no clusters to send it to).",
            config.max_concurrency,
            config.timeout_ms,
            config.max_memory_mb,
            kv_entries.map_or_else(|| "none".to_owned(), |n| format!("in memory, {n} entries"))
        ),
    }
}

fn info(payload: &Payload) -> Result<String> {
    let mut doc = serde_json::to_value(&payload.manifest)?;
    doc["code_bytes"] = payload.code.len().into();
    Ok(serde_json::to_string_pretty(&doc)?)
}
