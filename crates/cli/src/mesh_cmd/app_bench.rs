//! `duet mesh bench-app`: one Wasm HTTP app (`examples/apps/hello`) served four ways on loopback,
//! measured with wrk in interleaved rounds: by `duet mesh` (an `app:` cluster), as the executable
//! `duet package` writes, by `wasmtime serve` (when wasmtime 48 is installed), and — the anchor —
//! by a native Rust hyper server doing the same work. Every server gets one worker thread.
//!
//! The same artifact serves `GET /` everywhere: the app built without its `kv` feature, which
//! imports only WASI 0.2 (`wasmtime serve` does not provide duet's `duet:app/kv`). One more row
//! serves `GET /kv/<key>` from the default build, whose store is an eBPF filter's map.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

// `mesh_cmd`'s helpers: the public ones and, this being its child module, the private ones the
// sidecar benchmark uses too (wrk's latency format, tool installation, medians, the apikey value).
use super::{
    Reaped, RemoveDir, apikey_client, ensure_tool, free_port, http_get, http_request, median, run_wrk, start_mesh,
    wait_ready,
};

/// Options of `duet mesh bench-app`.
#[derive(clap::Args, Debug)]
pub struct AppBenchArgs {
    #[command(flatten)]
    load: super::WrkLoad,
    /// When no wasmtime 48 is on PATH or in target/tools/bin, install it first with `cargo
    /// install wasmtime-cli --version ^48 --locked --root target/tools` (compiles wasmtime:
    /// 15 to 30 minutes on two cores). Without it, the `wasmtime serve` row is skipped.
    #[arg(long)]
    install_wasmtime: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// `duet mesh bench-app`.
pub fn run(args: AppBenchArgs) -> Result<ExitCode> {
    let rounds = args.load.rounds.max(1);
    if let Some(load) = load_average()
        && load > 0.5
    {
        eprintln!(
            "warning: the 1-minute load average is {load:.2}: other work is running and the numbers will be noisy"
        );
    }
    ensure_tool("wrk", "wrk")?;
    let wasmtime = find_wasmtime(args.install_wasmtime)?;

    eprintln!("==> building examples/apps/hello for wasm32-wasip2, with and without its kv feature");
    let plain = duet_testdata::wasm_apps::build_hello_app_without_kv().map_err(|e| anyhow::anyhow!("{e}"))?;
    let with_kv = duet_testdata::wasm_apps::build_hello_app().map_err(|e| anyhow::anyhow!("{e}"))?;
    let (plain, with_kv) = (std::path::absolute(plain)?, std::path::absolute(with_kv)?);
    eprintln!("==> building examples/apikey (duet build), whose KEYS map is the kv row's store");
    let (apikey_bpf, _) = crate::showcase::build_example(&crate::showcase::examples_dir()?.join("apikey"), true)?;
    let apikey_bpf = std::path::absolute(apikey_bpf)?;

    let dir = std::env::temp_dir().join(format!("duet-bench-app-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let _cleanup = RemoveDir(dir.clone());

    // The anchor: hyper in this process, on a runtime with one worker thread of its own.
    let native_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let native = native_rt.block_on(native::spawn())?;

    eprintln!("==> duet package {} (the app without kv)", plain.display());
    let exe = std::env::current_exe().context("cannot find the duet binary")?;
    let package = dir.join("hello");
    let out = Command::new(&exe)
        .arg("package")
        .arg(&plain)
        .arg("-o")
        .arg(&package)
        .stdout(Stdio::null())
        .output()
        .context("cannot run `duet package`")?;
    if !out.status.success() {
        bail!("duet package failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let package_bytes = std::fs::metadata(&package)?.len();
    eprintln!("==> the package's start-up to its first answered GET / (median of 5)");
    let mut starts = (0..5).map(|_| package_first_answer(&package)).collect::<Result<Vec<f64>>>()?;
    starts.sort_by(f64::total_cmp);
    let package_start_ms = starts[starts.len() / 2];

    // The servers under test, each with one worker.
    let (mesh_port, kv_port, api_port, admin_port) = (free_port()?, free_port()?, free_port()?, free_port()?);
    let config = dir.join("mesh.yaml");
    std::fs::write(&config, mesh_config(mesh_port, kv_port, api_port, admin_port, &plain, &with_kv, &apikey_bpf))?;
    let admin = SocketAddr::from(([127, 0, 0, 1], admin_port));
    let t0 = Instant::now();
    let mesh = start_mesh(&config, admin, &dir.join("mesh.log"))?;
    wait_ready(loopback(mesh_port), "/", None, Duration::from_secs(60))?;
    let mesh_start_ms = t0.elapsed().as_secs_f64() * 1e3;
    // The kv row's key, stored through the sidecar: a `KEYS` value of examples/apikey.
    let (status, _, body) = http_request(loopback(kv_port), "PUT", "/kv/bench-key", &apikey_client("bench"))?;
    if status != 200 {
        bail!("cannot store the kv row's key through the app: {status} {body}");
    }

    let package_port = free_port()?;
    let package_child = Command::new(&package)
        .args(["--listen", &format!("127.0.0.1:{package_port}")])
        .env("TOKIO_WORKER_THREADS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start the package")?;
    let mut package_child = Reaped(package_child);
    wait_ready(loopback(package_port), "/", Some(&mut package_child.0), Duration::from_secs(30))?;

    let mut wasmtime_serve = None;
    let mut wasmtime_start_ms = None;
    if let Some(wasmtime) = &wasmtime {
        let port = free_port()?;
        let t0 = Instant::now();
        let child = Command::new(wasmtime)
            .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "-S", "cli"])
            .arg(&plain)
            .env("TOKIO_WORKER_THREADS", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("wasmtime.log"))?)
            .spawn()
            .context("cannot start `wasmtime serve`")?;
        let mut child = Reaped(child);
        wait_ready(loopback(port), "/", Some(&mut child.0), Duration::from_secs(60)).with_context(|| {
            format!("wasmtime serve did not answer; its log: {}", dir.join("wasmtime.log").display())
        })?;
        wasmtime_start_ms = Some(t0.elapsed().as_secs_f64() * 1e3);
        wasmtime_serve = Some((port, child));
    }

    let mut targets = vec![
        Target { name: "native hyper (in process)", port: native.port(), path: "/", cluster: None },
        Target { name: "duet mesh", port: mesh_port, path: "/", cluster: Some("hello") },
        Target { name: "duet package", port: package_port, path: "/", cluster: None },
    ];
    if let Some((port, _)) = &wasmtime_serve {
        targets.push(Target { name: "wasmtime serve", port: *port, path: "/", cluster: None });
    }
    targets.push(Target {
        name: "duet mesh, GET /kv/<key>",
        port: kv_port,
        path: "/kv/bench-key",
        cluster: Some("hello-kv"),
    });
    // Every server answers the same thing before it is measured.
    let reference = http_get(loopback(native.port()), "GET", "/", &[])?;
    for t in &targets {
        let (status, head, body) = http_get(loopback(t.port), "GET", t.path, &[])?;
        if status != 200 {
            bail!("{}: GET {} answered {status}: {body}", t.name, t.path);
        }
        if t.path == "/"
            && (body != reference.2 || !head.to_ascii_lowercase().contains("content-type: application/json"))
        {
            bail!(
                "{}: GET / answered {body:?} ({head}), not what the native server answers: {:?}",
                t.name,
                reference.2
            );
        }
    }

    eprintln!("==> in process: duet_app::App serving GET / (2,000 requests after a warm-up)");
    let in_process = in_process_cost(&plain)?;

    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); targets.len()];
    for round in 0..rounds {
        for (i, t) in targets.iter().enumerate() {
            eprintln!(
                "==> round {}/{rounds}: {} GET {} ({} s, {} connections)",
                round + 1,
                t.name,
                t.path,
                args.load.duration,
                args.load.connections
            );
            let before = t.cluster.map(|c| app_counters(admin, c)).transpose()?;
            let mut sample = wrk(t.port, t.path, args.load.duration, args.load.connections)?;
            if let (Some(cluster), Some(before)) = (t.cluster, before) {
                let after = app_counters(admin, cluster)?;
                let instances = after.instances - before.instances;
                if instances > 0.0 {
                    sample.instantiate_us = Some((after.instantiate_s - before.instantiate_s) * 1e6 / instances);
                }
                let requests = after.requests - before.requests;
                if requests > 0.0 {
                    sample.in_app_us = Some((after.request_s - before.request_s) * 1e6 / requests);
                }
            }
            samples[i].push(sample);
        }
    }
    drop(wasmtime_serve);
    drop(package_child);
    drop(mesh);
    drop(native_rt);

    let med: Vec<Sample> = samples.iter().map(|s| Sample::median(s)).collect();
    let rps = |name: &str| targets.iter().zip(&med).find(|(t, _)| t.name == name).map(|(_, s)| s.rps);
    let native_rps = rps("native hyper (in process)").unwrap_or(0.0);
    let wasmtime_rps = rps("wasmtime serve");
    let mut goals: Vec<(String, Option<bool>)> = Vec::new();
    for duet in ["duet mesh", "duet package"] {
        let duet_rps = rps(duet).unwrap_or(0.0);
        goals.push((
            format!("{duet} GET / rps >= 50% of the native hyper server's"),
            Some(duet_rps >= 0.5 * native_rps),
        ));
        goals.push((format!("{duet} GET / rps >= wasmtime serve's"), wasmtime_rps.map(|w| duet_rps >= w)));
    }
    let workers_note = "one worker thread each: duet mesh `workers: 1`; the package and wasmtime serve \
                        TOKIO_WORKER_THREADS=1; the native server a 1-worker tokio runtime on its own thread \
                        inside this process; nothing pinned";
    if args.json {
        let rows: Vec<serde_json::Value> = targets
            .iter()
            .zip(&med)
            .map(|(t, s)| {
                serde_json::json!({
                    "target": t.name, "path": t.path, "rps": s.rps, "p50_us": s.p50_us, "p99_us": s.p99_us,
                    "errors": s.errors, "rps_vs_native": s.rps / native_rps,
                    "instantiate_us": s.instantiate_us, "in_app_us_per_request": s.in_app_us,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "rounds": rounds, "duration_s": args.load.duration, "connections": args.load.connections,
                "workers": workers_note,
                "results": rows,
                "wasmtime_serve": wasmtime.as_ref().map(|p| p.display().to_string()),
                "in_process": { "instantiate_us": in_process.instantiate_us, "us_per_request": in_process.request_us },
                "package": { "bytes": package_bytes, "start_to_first_answer_ms": package_start_ms },
                "start_to_first_answer_ms": {
                    "duet_package_median_of_5": package_start_ms, "duet_mesh": mesh_start_ms, "wasmtime_serve": wasmtime_start_ms,
                },
                "goals": goals.iter().map(|(g, ok)| serde_json::json!({ "goal": g, "met": ok })).collect::<Vec<_>>(),
            })
        );
    } else {
        println!(
            "\nloopback, wrk -t1 -c{} -d{}s, median of {rounds} interleaved rounds; {workers_note}\n",
            args.load.connections, args.load.duration
        );
        println!(
            "  {:<28} {:>10} {:>9} {:>9} {:>7} {:>10} {:>14} {:>12}",
            "target", "rps", "p50 µs", "p99 µs", "errors", "rps/native", "instantiate µs", "in app µs"
        );
        let us = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        for (t, s) in targets.iter().zip(&med) {
            println!(
                "  {:<28} {:>10.0} {:>9.1} {:>9.1} {:>7} {:>9.2}x {:>14} {:>12}",
                t.name,
                s.rps,
                s.p50_us,
                s.p99_us,
                s.errors,
                s.rps / native_rps,
                us(s.instantiate_us),
                us(s.in_app_us)
            );
        }
        if wasmtime.is_none() {
            println!(
                "  {:<28} skipped: no wasmtime 48 on PATH or in target/tools/bin (rerun with --install-wasmtime)",
                "wasmtime serve"
            );
        }
        println!(
            "\n  instantiate µs, in app µs: duet mesh's /metrics over each run (app_instantiate_seconds / \
             app_instances_created; app_request_seconds / app_requests, serve to response head); under load they \
             include waiting for the one worker, which the other requests' instances share"
        );
        println!(
            "  instance start cost, in process (duet_app::App, one request at a time, no network): {:.1} µs to \
             instantiate, {:.1} µs per GET / (instance + handler + body)",
            in_process.instantiate_us, in_process.request_us
        );
        println!(
            "  the package: {:.1} MiB; start to first answered GET /: {package_start_ms:.1} ms (median of 5)",
            package_bytes as f64 / 1048576.0
        );
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0} ms"));
        println!(
            "  start to first answered GET / once: duet mesh {mesh_start_ms:.0} ms, wasmtime serve {} (each with its compile cache as found)\n",
            ms(wasmtime_start_ms)
        );
        for (g, ok) in &goals {
            let verdict = match ok {
                Some(true) => "met         ",
                Some(false) => "missed      ",
                None => "not measured",
            };
            println!("  goal {verdict}: {g}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

// === The servers ===

struct Target {
    name: &'static str,
    port: u16,
    path: &'static str,
    /// The mesh cluster whose app counters `/metrics` reports, for the per-instance columns.
    cluster: Option<&'static str>,
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// One sidecar, one worker: `apps` serves the plain build, `kv` the build with kv, whose store is
/// the `KEYS` map of the apikey eBPF filter on the (unmeasured) `api` listener.
fn mesh_config(port: u16, kv: u16, api: u16, admin: u16, plain: &Path, with_kv: &Path, apikey: &Path) -> String {
    format!(
        "admin: {{ address: \"127.0.0.1:{admin}\" }}\nworkers: 1\nlisteners:\n\
         \x20 - name: apps\n    address: \"127.0.0.1:{port}\"\n    routes:\n      - {{ prefix: \"/\", cluster: hello }}\n\
         \x20 - name: kv\n    address: \"127.0.0.1:{kv}\"\n    routes:\n      - {{ prefix: \"/\", cluster: hello-kv }}\n\
         \x20 - name: api\n    address: \"127.0.0.1:{api}\"\n    filters:\n      - name: apikey\n        bpf: \"{}\"\n        engine: jit\n\
         \x20   routes:\n      - {{ prefix: \"/\", cluster: hello }}\n\
         clusters:\n  - name: hello\n    app:\n      wasm: \"{}\"\n\
         \x20 - name: hello-kv\n    kv_map: apikey/KEYS\n    app:\n      wasm: \"{}\"\n",
        apikey.display(),
        plain.display(),
        with_kv.display()
    )
}

/// Milliseconds from starting the package on a free port to its first answered `GET /`.
fn package_first_answer(package: &Path) -> Result<f64> {
    let t0 = Instant::now();
    let child = Command::new(package)
        .args(["--listen", "127.0.0.1:0"])
        .env("TOKIO_WORKER_THREADS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start the package")?;
    let mut child = Reaped(child);
    let mut line = String::new();
    let stdout = child.0.stdout.take().context("no stdout")?;
    BufReader::new(stdout).read_line(&mut line)?;
    let addr: SocketAddr = line
        .strip_prefix("listening on http://")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .with_context(|| format!("the package printed {line:?}, not its address"))?;
    loop {
        if let Ok((200, _, _)) = http_get(addr, "GET", "/", &[]) {
            return Ok(t0.elapsed().as_secs_f64() * 1e3);
        }
        if t0.elapsed() > Duration::from_secs(30) {
            bail!("the package did not answer GET / within 30 s");
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// The native anchor: hyper 1 doing what the app does for `GET /`.
mod native {
    use std::convert::Infallible;
    use std::net::SocketAddr;

    use http_body_util::Full;
    use hyper::body::{Bytes, Incoming};
    use hyper_util::rt::TokioIo;

    /// Binds a loopback port and serves it on the current runtime.
    pub(super) async fn spawn() -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|req: hyper::Request<Incoming>| async move {
                        Ok::<_, Infallible>(answer(&req))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(addr)
    }

    /// The app's routing of `GET /` and its JSON, built and serialised per request as the app does.
    fn answer(req: &hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
        let path = req.uri().path();
        let segments: Vec<&str> = path.trim_start_matches('/').splitn(2, '/').collect();
        // Keys in sorted order: the app's serde_json sorts them, and this one (whose
        // `preserve_order` feature another crate of the workspace may enable) then writes the
        // same bytes either way.
        let (status, value) = match (req.method(), segments.as_slice()) {
            (&hyper::Method::GET, [""]) => (200, serde_json::json!({"app": "hello", "hello": "duet"})),
            _ => (404, serde_json::json!({"error": "no such route", "path": path})),
        };
        let body = value.to_string();
        let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::NOT_FOUND);
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
        response
    }
}

// === wasmtime ===

/// `wasmtime` 48.x from PATH or target/tools/bin; installed there first with `install`.
fn find_wasmtime(install: bool) -> Result<Option<PathBuf>> {
    let tools = tools_root();
    let local = tools.join("bin/wasmtime");
    for candidate in [PathBuf::from("wasmtime"), local.clone()] {
        if let Some(version) = wasmtime_version(&candidate) {
            if version.starts_with("48.") {
                return Ok(Some(candidate));
            }
            eprintln!("note: {} is wasmtime {version}, not 48.x; not used", candidate.display());
        }
    }
    if !install {
        eprintln!(
            "note: no wasmtime 48 on PATH or in {}: the wasmtime serve row is skipped (rerun with --install-wasmtime, \
             or `cargo install wasmtime-cli --version ^48 --locked --root {}`)",
            tools.join("bin").display(),
            tools.display()
        );
        return Ok(None);
    }
    eprintln!(
        "==> installing wasmtime-cli 48 from crates.io: cargo install wasmtime-cli --version ^48 --locked --root {} \
         (compiles wasmtime; 15 to 30 minutes on two cores)",
        tools.display()
    );
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["install", "wasmtime-cli", "--version", "^48", "--locked", "--root"])
        .arg(&tools)
        .stdout(Stdio::null())
        .status()
        .context("cannot run cargo install")?;
    if !status.success() {
        bail!("cargo install wasmtime-cli failed ({status}); rerun without --install-wasmtime to skip its row");
    }
    match wasmtime_version(&local) {
        Some(v) if v.starts_with("48.") => Ok(Some(local)),
        other => bail!("{} reports version {other:?} after installing", local.display()),
    }
}

/// `wasmtime --version`'s number (`wasmtime 48.0.1 (...)` gives `48.0.1`).
fn wasmtime_version(exe: &Path) -> Option<String> {
    let out = Command::new(exe).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    out.status.success().then(|| text.split_whitespace().nth(1).map(str::to_owned))?
}

/// `target/tools` of this checkout when running from one, else of the current directory.
fn tools_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = if root.join("crates/mesh/Cargo.toml").is_file() { root } else { PathBuf::from(".") };
    std::path::absolute(root.join("target/tools")).unwrap_or_else(|_| PathBuf::from("target/tools"))
}

// === Measuring ===

#[derive(Clone, Debug, Default)]
struct Sample {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    errors: u64,
    /// Mean microseconds to create an instance during the run (duet mesh only).
    instantiate_us: Option<f64>,
    /// Mean microseconds from the app's `serve` to its response head (duet mesh only).
    in_app_us: Option<f64>,
}

impl Sample {
    /// Medians of every measure over the rounds; errors summed.
    fn median(rounds: &[Sample]) -> Sample {
        let of = |f: fn(&Sample) -> f64| median(rounds.iter().map(f).collect());
        let opt = |f: fn(&Sample) -> Option<f64>| {
            let v: Vec<f64> = rounds.iter().filter_map(f).collect();
            (!v.is_empty()).then(|| median(v))
        };
        Sample {
            rps: of(|s| s.rps),
            p50_us: of(|s| s.p50_us),
            p99_us: of(|s| s.p99_us),
            errors: rounds.iter().map(|s| s.errors).sum(),
            instantiate_us: opt(|s| s.instantiate_us),
            in_app_us: opt(|s| s.in_app_us),
        }
    }
}

fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// One wrk run against `http://127.0.0.1:port{path}`.
fn wrk(port: u16, path: &str, duration: u64, connections: usize) -> Result<Sample> {
    let w = run_wrk(port, path, duration, connections, &[])?;
    Ok(Sample { rps: w.rps, p50_us: w.p50_us, p99_us: w.p99_us, errors: w.errors, ..Sample::default() })
}

/// An app cluster's counters from the sidecar's `/metrics`.
#[derive(Clone, Copy, Debug)]
struct AppCounters {
    instances: f64,
    instantiate_s: f64,
    requests: f64,
    request_s: f64,
}

fn app_counters(admin: SocketAddr, cluster: &str) -> Result<AppCounters> {
    let (status, _, text) = http_get(admin, "GET", "/metrics", &[])?;
    if status != 200 {
        bail!("GET /metrics answered {status}");
    }
    let labels = format!("{{cluster=\"{cluster}\"}} ");
    let get = |family: &str| -> Result<f64> {
        let prefix = format!("duet_mesh_{family}_total{labels}");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
            .with_context(|| format!("no {prefix} in the sidecar's /metrics"))
    };
    Ok(AppCounters {
        instances: get("app_instances_created")?,
        instantiate_s: get("app_instantiate_seconds")?,
        requests: get("app_requests")?,
        request_s: get("app_request_seconds")?,
    })
}

/// duet-app's own cost, in process and without the network.
#[derive(Clone, Copy, Debug)]
struct InProcess {
    instantiate_us: f64,
    request_us: f64,
}

/// Serves 2,000 `GET /` through `duet_app::App` on a current-thread runtime after 200 to warm up.
fn in_process_cost(wasm: &Path) -> Result<InProcess> {
    use http_body_util::BodyExt;
    let app = duet_app::App::load(&duet_app::AppConfig::new(wasm.to_path_buf()), None)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let once = async || -> Result<()> {
            let req =
                hyper::Request::get("http://app.local/").body(http_body_util::Empty::<hyper::body::Bytes>::new())?;
            let response = app.serve(req).await;
            if response.status() != 200 {
                bail!("in process, GET / answered {}", response.status());
            }
            response.into_body().collect().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(())
        };
        for _ in 0..200 {
            once().await?;
        }
        let before = app.stats().snapshot();
        const N: u32 = 2000;
        let start = Instant::now();
        for _ in 0..N {
            once().await?;
        }
        let wall = start.elapsed();
        let after = app.stats().snapshot();
        let instances = (after.instances_created - before.instances_created).max(1);
        Ok(InProcess {
            instantiate_us: (after.instantiate_ns_sum - before.instantiate_ns_sum) as f64 / instances as f64 / 1e3,
            request_us: wall.as_secs_f64() * 1e6 / f64::from(N),
        })
    })
}
