//! `duet mesh`: run, check and benchmark the sidecar, and a small backend to put behind it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Subcommand;

mod app_bench;
mod capture_bench;

/// The sidecar's commands.
#[derive(Subcommand, Debug)]
pub enum MeshCommand {
    /// Run the sidecar in the foreground: logs go to stderr, SIGHUP reloads the config (as does
    /// `POST /reload` on the admin address), SIGTERM drains in-flight requests and exits.
    ///
    /// Example: `duet mesh run --config examples/mesh/mesh.yaml`
    Run {
        /// The YAML config file (listeners, filters, routes, clusters, admin).
        #[arg(long, short)]
        config: PathBuf,
        /// Log filter, e.g. `info`, `debug`, `duet_mesh=debug,duet::filter=trace` [default: $RUST_LOG or info].
        #[arg(long)]
        log: Option<String>,
        /// Log as JSON lines instead of text.
        #[arg(long)]
        log_json: bool,
    },
    /// Validate a config and load every filter (each starts one VM and is configured), without
    /// serving. The exit code says whether `run` would start.
    ///
    /// Example: `duet mesh check --config examples/mesh/mesh.yaml --json`
    Check {
        /// The YAML config file.
        #[arg(long, short)]
        config: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stream a running sidecar's events as JSON lines: ring-buffer records its eBPF and Wasm
    /// filters emit (`{"type":"ringbuf","owner":...,"map":...,"data":"<hex>"}`) and one access
    /// event per finished request (`{"type":"access",...}`), until interrupted.
    ///
    /// Example: `duet mesh events --admin 127.0.0.1:9901 --type access --count 10`
    Events {
        /// The sidecar's admin address.
        #[arg(long, default_value = "127.0.0.1:9901")]
        admin: SocketAddr,
        /// Only events of this type (`access`, `ringbuf`, `tcp`).
        #[arg(long = "type")]
        kind: Option<String>,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Read and edit the maps of a running sidecar's eBPF and duet-ABI filters and routing
    /// programs, live (no reload): list them, dump one, set or delete an entry.
    ///
    /// Keys and values are hex (`0a000001`), unsigned integers (little-endian, `42`) or text
    /// (`utf8:secret`), zero-padded to the map's sizes.
    ///
    /// Examples:
    ///   `duet mesh maps` (list);
    ///   `duet mesh maps apikey KEYS` (dump);
    ///   `duet mesh maps apikey KEYS --set utf8:secret-key=0100000000000000`;
    ///   `duet mesh maps route:main/api CONFIG --set 0=25`;
    ///   `duet mesh maps apikey KEYS --delete utf8:secret-key`
    #[command(verbatim_doc_comment)]
    Maps {
        /// The sidecar's admin address.
        #[arg(long, default_value = "127.0.0.1:9901")]
        admin: SocketAddr,
        /// The filter (or `route:<listener>/<route>`) that owns the map.
        owner: Option<String>,
        /// The map's name.
        map: Option<String>,
        /// Set `KEY=VALUE` (repeatable).
        #[arg(long, value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Delete `KEY` (repeatable).
        #[arg(long, value_name = "KEY")]
        delete: Vec<String>,
    },
    /// A small HTTP/1.1 + HTTP/2 backend to put behind the sidecar: `/headers` echoes the request
    /// head as JSON, `/echo` the body, `/status/<code>`, `/slow/<ms>`, `/bytes/<n>`; anything else
    /// answers `hello from <name>`.
    ///
    /// Example: `duet mesh backend --address 127.0.0.1:18080`
    Backend {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:18080")]
        address: SocketAddr,
        /// The name it answers with (and sends as `x-backend`).
        #[arg(long, default_value = "backend")]
        name: String,
    },
    /// Benchmark on loopback with wrk, interleaved in one run: the backend directly, nginx as a
    /// reverse proxy (1 worker, keep-alive upstream), duet mesh (1 worker) with 0, 1 and 3
    /// Proxy-Wasm header filters, and with one API-key filter written three ways: duet's
    /// `examples/apikey` as eBPF (JIT and interpreter) and as duet-ABI Wasm, and its Proxy-Wasm
    /// counterpart. Prints rps, p50/p99 and the ratios, and the p50 of a paired latency probe
    /// (one request at a time, the targets in turn in blocks of 100, so that the machine's drift
    /// weighs on all alike: the added µs of a filter come from it); installs wrk and nginx with
    /// apt-get when missing (as root).
    ///
    /// Example: `duet mesh bench --duration 5 --rounds 3`
    Bench {
        #[command(flatten)]
        load: WrkLoad,
        /// The Proxy-Wasm header filter [default: duet's test filter `http_headers`, built for wasm32-wasip1].
        #[arg(long)]
        filter: Option<PathBuf>,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Benchmark a Wasm HTTP application on loopback with wrk, in one run: `examples/apps/hello`
    /// served by `duet mesh` and packaged by `duet package`, against a native Rust/hyper server
    /// doing the same work and, when it can be installed, `wasmtime serve`.
    ///
    /// Example: `duet mesh bench-app --duration 5 --rounds 3`
    BenchApp(app_bench::AppBenchArgs),
    /// Benchmark transparent capture on loopback with wrk, interleaved in one run (as root): the
    /// backend directly, from a cgroup a sidecar captures, and from a cgroup whose sidecar has
    /// `short_circuit: true` (sk_msg passes the application <-> sidecar hop socket to socket).
    /// Prints rps, p50/p99, the 1-connection p50, the sidecars' CPU per request, and what the
    /// short circuit saves. Builds examples/capture first unless --bpf is given; creates and
    /// removes its own cgroups.
    ///
    /// Example: `sudo duet mesh bench-capture --duration 4 --rounds 3`
    BenchCapture(capture_bench::CaptureBenchArgs),
}

/// Runs a `duet mesh` command.
pub fn run(command: MeshCommand) -> Result<ExitCode> {
    match command {
        MeshCommand::Run { config, log, log_json } => {
            init_logging(log.as_deref(), log_json);
            let config = duet_mesh::server::absolute(&config);
            duet_mesh::run(&config)?;
            Ok(ExitCode::SUCCESS)
        }
        MeshCommand::Check { config, json } => check(&config, json),
        MeshCommand::Backend { address, name } => {
            init_logging(None, false);
            let rt = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
            rt.block_on(async {
                let local = duet_mesh::backend::spawn(address, &name)
                    .await
                    .with_context(|| format!("cannot listen on {address}"))?;
                eprintln!("backend `{name}` listening on http://{local}/ (Ctrl-C stops it)");
                tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        MeshCommand::Events { admin, kind, count } => events(admin, kind.as_deref(), count),
        MeshCommand::Maps { admin, owner, map, set, delete } => maps(admin, owner, map, &set, &delete),
        MeshCommand::Bench { load, filter, json } => bench(&BenchOptions {
            duration: load.duration,
            rounds: load.rounds.max(1),
            connections: load.connections,
            filter,
            json,
        }),
        MeshCommand::BenchApp(args) => app_bench::run(args),
        MeshCommand::BenchCapture(args) => capture_bench::run(args),
    }
}

fn init_logging(filter: Option<&str>, json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = match filter {
        Some(f) => EnvFilter::new(f),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

fn check(config: &Path, json: bool) -> Result<ExitCode> {
    match duet_mesh::check(config) {
        Ok(report) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "ok": true, "listeners": report.listeners, "clusters": report.clusters })
                );
            } else {
                println!("{}: ok", config.display());
                for l in &report.listeners {
                    let filters: Vec<String> = l["filters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|f| f["name"].as_str().unwrap_or("?").to_owned())
                        .collect();
                    println!(
                        "  listener {} on {}{}: filters [{}]",
                        l["name"].as_str().unwrap_or("?"),
                        l["address"].as_str().unwrap_or("?"),
                        if l["tls"].as_bool() == Some(true) { " (TLS)" } else { "" },
                        filters.join(", ")
                    );
                }
                println!("  clusters: {}", report.clusters.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if json {
                println!("{}", serde_json::json!({ "ok": false, "error": e.to_string() }));
            } else {
                eprintln!("error: {e}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

fn events(admin: SocketAddr, kind: Option<&str>, count: Option<u64>) -> Result<ExitCode> {
    let mut s = TcpStream::connect_timeout(&admin, Duration::from_secs(2))
        .with_context(|| format!("cannot reach the sidecar's admin endpoint at {admin}"))?;
    write!(s, "GET /events HTTP/1.1\r\nhost: {admin}\r\n\r\n")?;
    let mut reader = std::io::BufReader::new(s);
    let mut line = String::new();
    // The response head.
    loop {
        line.clear();
        if std::io::BufRead::read_line(&mut reader, &mut line)? == 0 {
            bail!("the admin endpoint closed the connection");
        }
        if line.starts_with("HTTP/1.1 ") && !line.starts_with("HTTP/1.1 200") {
            bail!("GET /events: {}", line.trim());
        }
        if line == "\r\n" {
            break;
        }
    }
    // Chunked JSON lines: a size line, the data, an empty line.
    let mut seen = 0u64;
    let stdout = std::io::stdout();
    loop {
        line.clear();
        if std::io::BufRead::read_line(&mut reader, &mut line)? == 0 {
            return Ok(ExitCode::SUCCESS);
        }
        let Ok(n) = usize::from_str_radix(line.trim(), 16) else { continue };
        if n == 0 {
            return Ok(ExitCode::SUCCESS);
        }
        let mut data = vec![0; n + 2];
        reader.read_exact(&mut data)?;
        let text = String::from_utf8_lossy(&data[..n]);
        for event in text.lines() {
            let v: serde_json::Value = serde_json::from_str(event).unwrap_or_default();
            if v["type"] == "subscribed" {
                // On stderr, so that stdout stays JSON lines: from here on no event is missed.
                eprintln!("subscribed to {admin}'s events");
                continue;
            }
            if kind.is_some_and(|k| v["type"] != k) {
                continue;
            }
            let mut out = stdout.lock();
            writeln!(out, "{event}")?;
            out.flush()?;
            seen += 1;
            if count.is_some_and(|c| seen >= c) {
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
}

/// A key or value as the admin API takes it: `utf8:text`, an integer, or hex.
fn map_arg(s: &str) -> serde_json::Value {
    if let Some(text) = s.strip_prefix("utf8:") {
        return serde_json::json!({ "utf8": text });
    }
    if !s.starts_with("0x")
        && s.len() < 20
        && s.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = s.parse::<u64>()
    {
        return serde_json::Value::from(n);
    }
    serde_json::Value::from(s)
}

fn maps(
    admin: SocketAddr,
    owner: Option<String>,
    map: Option<String>,
    set: &[String],
    delete: &[String],
) -> Result<ExitCode> {
    let request = |method: &str, path: &str, body: Option<serde_json::Value>| -> Result<serde_json::Value> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let (status, _, text) = http_request(admin, method, path, body.as_bytes())
            .with_context(|| format!("cannot reach the sidecar's admin endpoint at {admin}"))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|_| serde_json::json!({ "error": text.trim() }));
        if status != 200 {
            bail!("{method} {path}: {status}: {}", v["error"].as_str().unwrap_or(text.trim()));
        }
        Ok(v)
    };
    let (Some(owner), Some(map)) = (owner, map) else {
        let v = request("GET", "/maps", None)?;
        println!("{}", serde_json::to_string_pretty(&v["maps"])?);
        return Ok(ExitCode::SUCCESS);
    };
    let path = format!("/maps/{owner}/{map}");
    if set.is_empty() && delete.is_empty() {
        let v = request("GET", &path, None)?;
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    if !set.is_empty() {
        let items = set
            .iter()
            .map(|kv| {
                let (k, v) = kv.split_once('=').with_context(|| format!("--set {kv}: expected KEY=VALUE"))?;
                Ok(serde_json::json!({ "key": map_arg(k), "value": map_arg(v) }))
            })
            .collect::<Result<Vec<_>>>()?;
        let v = request("PUT", &path, Some(serde_json::Value::from(items)))?;
        println!("updated {} entr{} of {owner}/{map}", v["updated"], if v["updated"] == 1 { "y" } else { "ies" });
    }
    if !delete.is_empty() {
        let items: Vec<serde_json::Value> = delete.iter().map(|k| serde_json::json!({ "key": map_arg(k) })).collect();
        let v = request("DELETE", &path, Some(serde_json::Value::from(items)))?;
        println!("deleted {} entr{} of {owner}/{map}", v["deleted"], if v["deleted"] == 1 { "y" } else { "ies" });
    }
    Ok(ExitCode::SUCCESS)
}

// === Small blocking HTTP helpers (demo and bench) ===

/// One HTTP/1.1 request with a JSON body over a fresh connection; returns the status, head and body.
pub fn http_request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Result<(u16, String, String)> {
    exchange(addr, method, path, &[("content-type", "application/json")], body)
}

/// One HTTP/1.1 request over a fresh connection; returns the status, head and body.
pub fn http_get(addr: SocketAddr, method: &str, path: &str, extra: &[(&str, &str)]) -> Result<(u16, String, String)> {
    exchange(addr, method, path, extra, b"")
}

fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, String, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).with_context(|| format!("connect {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n", body.len());
    for (n, v) in extra {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).context("no HTTP status line")?;
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_owned() };
    Ok((status, head.to_owned(), body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Waits until `GET path` on `addr` answers 200.
pub fn wait_ready(addr: SocketAddr, path: &str, child: Option<&mut Child>, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    let mut child = child;
    while start.elapsed() < timeout {
        if let Ok((200, _, _)) = http_get(addr, "GET", path, &[]) {
            return Ok(());
        }
        if let Some(c) = child.as_deref_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            bail!("the process exited ({status}) before {addr}{path} was ready");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{addr}{path} was not ready within {timeout:?}")
}

/// A free loopback port.
pub fn free_port() -> Result<u16> {
    Ok(duet_mesh::backend::free_loopback_port()?)
}

/// A child process killed (and reaped) on drop.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        // SIGTERM first so a sidecar drains; then make sure.
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `duet mesh run` on `config` and waits for its admin `/ready`.
pub fn start_mesh(config: &Path, admin: SocketAddr, log: &Path) -> Result<Reaped> {
    let exe = std::env::current_exe().context("cannot find the duet binary")?;
    let log_file = std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let child = Command::new(exe)
        .args(["mesh", "run", "--config"])
        .arg(config)
        .args(["--log", "warn"])
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .context("cannot start `duet mesh run`")?;
    let mut child = Reaped(child);
    wait_ready(admin, "/ready", Some(&mut child.0), Duration::from_secs(60))
        .with_context(|| format!("duet mesh did not start; its log: {}", log.display()))?;
    Ok(child)
}

// === Bench ===

/// The load every `duet mesh bench*` command puts on its targets with wrk.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct WrkLoad {
    /// Seconds per wrk run.
    #[arg(long, default_value_t = 5)]
    pub duration: u64,
    /// Interleaved rounds; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
}

struct BenchOptions {
    duration: u64,
    rounds: usize,
    connections: usize,
    filter: Option<PathBuf>,
    json: bool,
}

#[derive(Clone, Debug, Default)]
struct Sample {
    /// CPU time (user + system) of the proxy process per request, when known.
    cpu_us: f64,
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    errors: u64,
}

fn ensure_tool(tool: &str, package: &str) -> Result<()> {
    let found =
        Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success());
    if found {
        return Ok(());
    }
    eprintln!("==> installing {package} (apt-get install -y {package})");
    let ok = Command::new("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "-q", package])
        .status()
        .is_ok_and(|s| s.success())
        || (Command::new("apt-get").args(["update", "-q"]).status().is_ok_and(|s| s.success())
            && Command::new("apt-get").args(["install", "-y", "-q", package]).status().is_ok_and(|s| s.success()));
    if !ok {
        bail!(
            "`{tool}` is missing and could not be installed; install Debian's `{package}` (apt-get install {package}) and rerun"
        );
    }
    Ok(())
}

fn parse_latency_us(text: &str) -> Option<f64> {
    let text = text.trim();
    let (num, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => n,
        "ms" => n * 1e3,
        "s" => n * 1e6,
        _ => return None,
    })
}

/// The API key every benchmark request carries (the apikey filters know it; others ignore it).
const BENCH_KEY: &str = "bench-key";

fn wrk(port: u16, o: &BenchOptions, connections: usize) -> Result<Sample> {
    let w = run_wrk(port, "/", o.duration, connections, &[("x-api-key", BENCH_KEY)])?;
    Ok(Sample { cpu_us: 0.0, rps: w.rps, p50_us: w.p50_us, p99_us: w.p99_us, errors: w.errors })
}

/// What one wrk run measured.
#[derive(Clone, Debug, Default)]
struct Wrk {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    /// Non-2xx/3xx responses plus socket errors.
    errors: u64,
}

/// One `wrk -t1 --latency` run against `http://127.0.0.1:<port><path>` with extra headers.
fn run_wrk(port: u16, path: &str, duration: u64, connections: usize, headers: &[(&str, &str)]) -> Result<Wrk> {
    run_wrk_in(None, port, path, duration, connections, headers)
}

/// [`run_wrk`], with wrk as a process of `cgroup` when one is given (it writes its own pid into
/// the cgroup's `cgroup.procs`, then becomes wrk).
fn run_wrk_in(
    cgroup: Option<&Path>,
    port: u16,
    path: &str,
    duration: u64,
    connections: usize,
    headers: &[(&str, &str)],
) -> Result<Wrk> {
    let mut cmd = match cgroup {
        Some(cgroup) => {
            let mut sh = Command::new("sh");
            let procs = cgroup.join("cgroup.procs");
            sh.args(["-c", "echo $$ > \"$0\" && exec wrk \"$@\""]).arg(procs);
            sh
        }
        None => Command::new("wrk"),
    };
    cmd.args(["-t1", &format!("-c{connections}"), &format!("-d{duration}s"), "--latency"]);
    for (name, value) in headers {
        cmd.args(["-H", &format!("{name}: {value}")]);
    }
    let out = cmd.arg(format!("http://127.0.0.1:{port}{path}")).output().context("cannot run wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk failed: {}{}", text, String::from_utf8_lossy(&out.stderr));
    }
    let mut s = Wrk::default();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", v] => s.rps = v.parse().unwrap_or(0.0),
            ["50%", v] => s.p50_us = parse_latency_us(v).unwrap_or(0.0),
            ["99%", v] => s.p99_us = parse_latency_us(v).unwrap_or(0.0),
            ["Non-2xx", "or", "3xx", "responses:", n] => s.errors += n.parse().unwrap_or(0),
            ["Socket", "errors:", ..] => {
                s.errors += line
                    .split(',')
                    .filter_map(|p| p.split_whitespace().last().and_then(|n| n.parse::<u64>().ok()))
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    if s.rps == 0.0 {
        bail!("could not read wrk's output:\n{text}");
    }
    Ok(s)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

/// User + system CPU time of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // Linux reports clock ticks; USER_HZ is 100 on every architecture duet runs on.
    Some(ticks / 100.0)
}

fn rss_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

/// The filters of one benchmarked sidecar.
enum BenchFilters<'a> {
    /// `n` copies of the Proxy-Wasm header filter.
    Headers(usize, &'a Path),
    /// One apikey filter: the YAML lines after `- name: apikey`.
    ApiKey(String),
}

fn mesh_config(port: u16, admin: u16, backend: SocketAddr, filters: &BenchFilters<'_>) -> String {
    let mut s = format!(
        "admin: {{ address: \"127.0.0.1:{admin}\" }}\nworkers: 1\nlisteners:\n  - name: main\n    address: \"127.0.0.1:{port}\"\n"
    );
    match filters {
        BenchFilters::Headers(0, _) => {}
        BenchFilters::Headers(n, wasm) => {
            s.push_str("    filters:\n");
            for i in 0..*n {
                s.push_str(&format!(
                    "      - name: headers{i}\n        wasm: \"{}\"\n        config: \"bench-{i}\"\n",
                    wasm.display()
                ));
            }
        }
        BenchFilters::ApiKey(lines) => s.push_str(&format!("    filters:\n      - name: apikey\n{lines}")),
    }
    s.push_str(&format!(
        "    routes:\n      - {{ prefix: \"/\", cluster: backend }}\nclusters:\n  - name: backend\n    endpoints: [\"{backend}\"]\n"
    ));
    s
}

fn nginx_config(dir: &Path, port: u16, backend: SocketAddr) -> String {
    let d = dir.display();
    format!(
        "worker_processes 1;\nmaster_process off;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log warn;\nevents {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  keepalive_requests 1000000;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
         uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  upstream backend {{ server {backend}; keepalive 64; }}\n  \
         server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://backend;\n      proxy_http_version 1.1;\n      \
         proxy_set_header Connection \"\";\n    }}\n  }}\n}}\n"
    )
}

fn bench(o: &BenchOptions) -> Result<ExitCode> {
    // wrk, the backend and the proxies share the machine's cores: say so when something else
    // is using them, since that moves the numbers far more than any change to the proxy.
    if let Some(load) = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()))
        && load > 0.5
    {
        eprintln!(
            "warning: the 1-minute load average is {load:.2}: other work is running and the numbers will be noisy"
        );
    }
    ensure_tool("wrk", "wrk")?;
    ensure_tool("nginx", "nginx")?;
    eprintln!("==> building the Proxy-Wasm filters (tests/proxy-wasm, wasm32-wasip1)");
    let proxy_filters =
        duet_testdata::proxy_filters::build_proxy_filters("wasm32-wasip1").map_err(|e| anyhow::anyhow!("{e}"))?;
    let wasm = o.filter.clone().unwrap_or_else(|| proxy_filters.join("http_headers.wasm"));
    eprintln!("==> building examples/apikey (duet build: eBPF and Wasm)");
    let (apikey_bpf, apikey_wasm) =
        crate::showcase::build_example(&crate::showcase::examples_dir()?.join("apikey"), true)?;
    // The configs live in a temporary directory: the artifacts' paths must be absolute.
    let (apikey_bpf, apikey_wasm) = (std::path::absolute(apikey_bpf)?, std::path::absolute(apikey_wasm)?);
    let dir = std::env::temp_dir().join(format!("duet-mesh-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let _cleanup = RemoveDir(dir.clone());

    // The backend runs in this process on its own runtime.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let backend = rt.block_on(duet_mesh::backend::spawn("127.0.0.1:0".parse()?, "bench"))?;

    let nginx_port = free_port()?;
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, nginx_config(&dir, nginx_port, backend))?;
    let nginx = Command::new("nginx")
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start nginx")?;
    let mut nginx = Reaped(nginx);
    wait_ready(SocketAddr::from(([127, 0, 0, 1], nginx_port)), "/", Some(&mut nginx.0), Duration::from_secs(10))
        .with_context(|| format!("nginx did not start; see {}", dir.join("nginx-error.log").display()))?;

    let mut targets: Vec<(String, u16, Option<Reaped>)> =
        vec![("direct".into(), backend.port(), None), ("nginx".into(), nginx_port, None)];
    // Only the request program: the Proxy-Wasm filter it is compared with has no response part.
    let apikey = |lines: String| BenchFilters::ApiKey(format!("{lines}        programs: [apikey]\n"));
    let setups: Vec<(String, BenchFilters<'_>)> = vec![
        ("duet mesh, 0 filters".into(), BenchFilters::Headers(0, &wasm)),
        ("duet mesh, 1 filter".into(), BenchFilters::Headers(1, &wasm)),
        ("duet mesh, 3 filters".into(), BenchFilters::Headers(3, &wasm)),
        (
            "apikey eBPF (JIT)".into(),
            apikey(format!("        bpf: \"{}\"\n        engine: jit\n", apikey_bpf.display())),
        ),
        (
            "apikey eBPF (interp)".into(),
            apikey(format!("        bpf: \"{}\"\n        engine: interpreter\n", apikey_bpf.display())),
        ),
        ("apikey duet-ABI Wasm".into(), apikey(format!("        wasm: \"{}\"\n", apikey_wasm.display()))),
        (
            "apikey Proxy-Wasm".into(),
            apikey(format!(
                "        wasm: \"{}\"\n        config: \"{BENCH_KEY}=bench\"\n",
                proxy_filters.join("apikey.wasm").display()
            )),
        ),
    ];
    for (i, (name, filters)) in setups.iter().enumerate() {
        let (port, admin) = (free_port()?, free_port()?);
        let config = dir.join(format!("mesh-{i}.yaml"));
        std::fs::write(&config, mesh_config(port, admin, backend, filters))?;
        let admin = SocketAddr::from(([127, 0, 0, 1], admin));
        let child = start_mesh(&config, admin, &dir.join(format!("mesh-{i}.log")))?;
        if matches!(filters, BenchFilters::ApiKey(_)) && !name.contains("Proxy-Wasm") {
            // The duet filters' key: client `bench`, no rate limit (the `Client` layout of
            // examples/apikey: counters, rate, burst, id length, 0, id).
            let hex = duet_mesh::maps_api::hex(&apikey_client("bench"));
            let body = serde_json::json!({ "key": { "utf8": BENCH_KEY }, "value": hex }).to_string();
            let (status, _, text) = http_request(admin, "PUT", "/maps/apikey/KEYS", body.as_bytes())?;
            if status != 200 {
                bail!("cannot seed the apikey filter's KEYS map: {status} {text}");
            }
        }
        targets.push((name.clone(), port, Some(child)));
    }
    // A request through every apikey sidecar is answered 200 (the key is known).
    for (name, port, _) in &targets[5..] {
        let (status, _, body) =
            http_get(SocketAddr::from(([127, 0, 0, 1], *port)), "GET", "/", &[("x-api-key", BENCH_KEY)])?;
        if status != 200 {
            bail!("{name}: the benchmark request got {status}: {body}");
        }
    }
    let idle_rss = targets.get(4).and_then(|t| t.2.as_ref()).and_then(|c| rss_kib(c.0.id(), "VmRSS:"));

    // The filters' own cost per request, in process (no network, no wrk): what each adds to a
    // request's CPU time, without the loopback noise of the HTTP runs.
    eprintln!("==> the apikey filters in process (request-headers phase, 20,000 requests each)");
    let in_process: Vec<(String, f64)> = setups
        .iter()
        .filter(|(_, f)| matches!(f, BenchFilters::ApiKey(_)))
        .map(|(name, f)| Ok((name.clone(), filter_cost(&dir, backend, f)?)))
        .collect::<Result<_>>()?;
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); targets.len()];
    let mut single: Vec<Vec<Sample>> = vec![Vec::new(); targets.len()];
    for round in 0..o.rounds {
        for (i, (name, port, _)) in targets.iter().enumerate() {
            eprintln!("==> round {}/{}: {name} ({} s, {} connections)", round + 1, o.rounds, o.duration, o.connections);
            let pid = match (&targets[i].2, i) {
                (Some(child), _) => Some(child.0.id()),
                (None, 1) => Some(nginx.0.id()),
                _ => None,
            };
            let before = pid.and_then(cpu_seconds);
            let mut sample = wrk(*port, o, o.connections)?;
            if let (Some(pid), Some(before)) = (pid, before)
                && let Some(after) = cpu_seconds(pid)
            {
                sample.cpu_us = (after - before) * 1e6 / (sample.rps * o.duration as f64);
            }
            samples[i].push(sample);
            // One connection: latency without queueing, what one request pays per hop and filter.
            eprintln!("==> round {}/{}: {name} ({} s, 1 connection)", round + 1, o.rounds, o.duration);
            single[i].push(wrk(*port, o, 1)?);
        }
    }
    let single_p50: Vec<f64> = single.iter().map(|s| median(s.iter().map(|x| x.p50_us).collect())).collect();
    eprintln!(
        "==> paired latency probe: {PROBE_REQUESTS} requests to each target, one at a time, the targets in turn in blocks of {PROBE_BLOCK}"
    );
    let ports: Vec<u16> = targets.iter().map(|t| t.1).collect();
    let probe_p50 = paired_latency(&ports, PROBE_REQUESTS)?;
    // The same probe with every process of the run on one CPU: a request's hops then never wait
    // for another (idle) CPU to wake up, which on a VM costs tens of µs and lands on whichever
    // targets the scheduler happened to spread out, so the added µs of a filter show.
    let mut pids: Vec<u32> = targets.iter().filter_map(|t| t.2.as_ref().map(|c| c.0.id())).collect();
    pids.push(nginx.0.id());
    pids.push(std::process::id());
    eprintln!("==> the same probe with every process on one CPU (taskset)");
    let one_cpu_p50 = on_one_cpu(&pids, || paired_latency(&ports, PROBE_REQUESTS))?;
    let loaded_rss = targets.get(4).and_then(|t| t.2.as_ref()).and_then(|c| rss_kib(c.0.id(), "VmHWM:"));

    let med: Vec<Sample> = samples
        .iter()
        .map(|s| Sample {
            rps: median(s.iter().map(|x| x.rps).collect()),
            p50_us: median(s.iter().map(|x| x.p50_us).collect()),
            p99_us: median(s.iter().map(|x| x.p99_us).collect()),
            errors: s.iter().map(|x| x.errors).sum(),
            cpu_us: median(s.iter().map(|x| x.cpu_us).collect()),
        })
        .collect();
    let (nginx_s, d0, d1, d3) = (&med[1], &med[2], &med[3], &med[4]);
    // Per-filter latency from the paired probe (under load, p50 is mostly queueing).
    let per_filter_p50_1 = probe_p50[3] - probe_p50[2];
    let per_filter_p50_3 = (probe_p50[4] - probe_p50[2]) / 3.0;
    let loaded_p50_1 = d1.p50_us - d0.p50_us;
    let cpu_per_filter_1 = d1.cpu_us - d0.cpu_us;
    let cpu_per_filter_3 = (d3.cpu_us - d0.cpu_us) / 3.0;
    let rps_cost_1 = 1.0 - d1.rps / d0.rps;
    let rps_cost_3 = 1.0 - (d3.rps / d0.rps).powf(1.0 / 3.0);
    // The apikey filter four ways, against no filter.
    let apikey_rows: Vec<(String, f64, f64)> = (5..targets.len())
        .map(|i| (targets[i].0.clone(), probe_p50[i] - probe_p50[2], 1.0 - med[i].rps / d0.rps))
        .collect();
    let one_cpu = one_cpu_p50.as_ref().map(|p| {
        let apikey: Vec<(String, f64)> = (5..targets.len()).map(|i| (targets[i].0.clone(), p[i] - p[2])).collect();
        (p[3] - p[2], (p[4] - p[2]) / 3.0, apikey)
    });
    let added = |label: &str| apikey_rows.iter().find(|r| r.0.contains(label)).map_or(f64::MAX, |r| r.1);
    let proxy_wasm_p50 = added("Proxy-Wasm");
    let cost = |label: &str| in_process.iter().find(|r| r.0.contains(label)).map_or(f64::MAX, |r| r.1);
    let goals = [
        ("duet (0 filters) rps >= nginx rps", d0.rps >= nginx_s.rps),
        ("duet (0 filters) p99 <= nginx p99", d0.p99_us <= nginx_s.p99_us),
        ("each filter adds <= 10 us to p50 (paired probe)", per_filter_p50_1 <= 10.0 && per_filter_p50_3 <= 10.0),
        ("each filter costs <= 5% rps", rps_cost_1 <= 0.05 && rps_cost_3 <= 0.05),
        (
            "apikey as eBPF (JIT) and duet-ABI Wasm each add <= 3 us p50, below the Proxy-Wasm filter",
            ["(JIT)", "duet-ABI"].iter().all(|l| added(l) <= 3.0 && added(l) < proxy_wasm_p50),
        ),
        (
            "apikey as eBPF (JIT) and duet-ABI Wasm each cost <= 3 us per request in process, below Proxy-Wasm",
            ["(JIT)", "duet-ABI"].iter().all(|l| cost(l) <= 3.0 && cost(l) < cost("Proxy-Wasm")),
        ),
    ];
    if o.json {
        let rows: Vec<serde_json::Value> = targets
            .iter()
            .zip(&med)
            .zip(single_p50.iter().zip(&probe_p50))
            .enumerate()
            .map(|(i, (((name, _, _), s), (p50_1, probe)))| serde_json::json!({ "target": name, "rps": s.rps, "p50_us": s.p50_us, "p99_us": s.p99_us, "errors": s.errors, "p50_us_1_connection": p50_1, "p50_us_paired_probe": probe, "p50_us_paired_probe_one_cpu": one_cpu_p50.as_ref().map(|p| p[i]), "proxy_cpu_us_per_request": (s.cpu_us > 0.0).then_some(s.cpu_us) }))
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "rounds": o.rounds, "duration_s": o.duration, "connections": o.connections,
                "results": rows,
                "ratios": {
                    "duet0_rps_over_nginx": d0.rps / nginx_s.rps,
                    "duet0_p99_over_nginx": d0.p99_us / nginx_s.p99_us,
                    "p50_added_per_filter_us_1": per_filter_p50_1,
                    "p50_added_per_filter_us_3": per_filter_p50_3,
                    "p50_added_per_filter_us_1_one_cpu": one_cpu.as_ref().map(|o| o.0),
                    "p50_added_per_filter_us_3_one_cpu": one_cpu.as_ref().map(|o| o.1),
                    "p50_added_by_1_filter_under_load_us": loaded_p50_1,
                    "cpu_us_per_request_per_filter_1": cpu_per_filter_1,
                    "cpu_us_per_request_per_filter_3": cpu_per_filter_3,
                    "rps_cost_per_filter_1": rps_cost_1,
                    "rps_cost_per_filter_3": rps_cost_3,
                },
                "rss_kib": { "idle_3_filters": idle_rss, "peak_under_load_3_filters": loaded_rss },
                "apikey_filter": apikey_rows.iter().zip(&in_process).enumerate().map(|(i, ((name, p50, rps), (_, us)))| serde_json::json!({ "target": name, "p50_added_us_paired_probe": p50, "p50_added_us_paired_probe_one_cpu": one_cpu.as_ref().map(|o| o.2[i].1), "rps_cost": rps, "in_process_us_per_request": us })).collect::<Vec<_>>(),
                "goals": goals.iter().map(|(g, ok)| serde_json::json!({ "goal": g, "met": ok })).collect::<Vec<_>>(),
            })
        );
    } else {
        println!(
            "\nloopback, wrk -t1 -c{} -d{}s, median of {} interleaved rounds (1 worker each)\n",
            o.connections, o.duration, o.rounds
        );
        println!(
            "  {:<24} {:>10} {:>10} {:>10} {:>8} {:>11} {:>16} {:>12} {:>12} {:>16}",
            "target",
            "rps",
            "p50 µs",
            "p99 µs",
            "errors",
            "rps/nginx",
            "p50 µs (1 conn)",
            "p50 µs probe",
            "probe 1 CPU",
            "proxy CPU µs/req"
        );
        for (i, (((name, _, _), s), (p50_1, probe))) in
            targets.iter().zip(&med).zip(single_p50.iter().zip(&probe_p50)).enumerate()
        {
            let cpu = if s.cpu_us > 0.0 { format!("{:.1}", s.cpu_us) } else { "-".into() };
            let pinned = one_cpu_p50.as_ref().map_or("-".into(), |p| format!("{:.1}", p[i]));
            println!(
                "  {:<24} {:>10.0} {:>10.1} {:>10.1} {:>8} {:>10.2}x {:>16.1} {:>12.1} {:>12} {:>16}",
                name,
                s.rps,
                s.p50_us,
                s.p99_us,
                s.errors,
                s.rps / nginx_s.rps,
                p50_1,
                probe,
                pinned,
                cpu
            );
        }
        println!(
            "\n  (p50 µs probe: median of {PROBE_REQUESTS} requests on one keep-alive connection per target, the targets visited in turn in blocks of {PROBE_BLOCK}, each block's first {PROBE_BLOCK_WARM_UP} left out;\n   probe 1 CPU: the same with the backend, the proxies and the client all on one CPU, so no hop waits for an idle CPU to wake up)"
        );
        println!(
            "\n  per Proxy-Wasm header filter (probe): +{per_filter_p50_1:.1} µs p50 (1 filter), +{per_filter_p50_3:.1} µs p50 each (3 filters)"
        );
        if let Some((one, three, _)) = &one_cpu {
            println!(
                "  per Proxy-Wasm header filter (probe, 1 CPU): +{one:.1} µs p50 (1 filter), +{three:.1} µs p50 each (3 filters)"
            );
        }
        println!("  under load ({} connections) one filter moves p50 by {loaded_p50_1:+.1} µs", o.connections);
        println!(
            "  proxy CPU per request per filter: {cpu_per_filter_1:+.1} µs (1 filter), {cpu_per_filter_3:+.1} µs each (3 filters)"
        );
        println!(
            "  per Proxy-Wasm header filter: {:.1}% rps (1 filter), {:.1}% rps each (3 filters)",
            rps_cost_1 * 100.0,
            rps_cost_3 * 100.0
        );
        let mib = |k: Option<u64>| k.map_or("?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
        println!("  duet mesh RSS with 3 filters: {} idle, {} peak under load", mib(idle_rss), mib(loaded_rss));
        println!(
            "\n  the apikey filter, against no filter (p50 from the paired probe; rps at {} connections):",
            o.connections
        );
        for (i, ((name, p50, rps), (_, us))) in apikey_rows.iter().zip(&in_process).enumerate() {
            let pinned = one_cpu.as_ref().map_or(String::new(), |o| format!("   {:+5.1} µs p50 on 1 CPU", o.2[i].1));
            println!(
                "    {name:<24} {p50:+7.1} µs p50   {:5.1}% rps   {us:6.2} µs/request in process{pinned}",
                rps * 100.0
            );
        }
        println!();
        for (g, ok) in goals {
            println!("  goal {}: {g}", if ok { "met   " } else { "missed" });
        }
    }
    drop(targets);
    drop(nginx);
    Ok(ExitCode::SUCCESS)
}

/// Runs `f` with every thread of the processes `pids` on the machine's last CPU, then lets them
/// run on every CPU again. `None` (and `f` not run) when there is one CPU or `taskset` fails.
fn on_one_cpu<T>(pids: &[u32], f: impl FnOnce() -> Result<T>) -> Result<Option<T>> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    if cpus < 2 {
        return Ok(None);
    }
    let set = |list: &str| {
        pids.iter().all(|pid| {
            Command::new("taskset")
                .args(["-a", "-p", "-c", list, &pid.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    };
    let all = format!("0-{}", cpus - 1);
    if !set(&(cpus - 1).to_string()) {
        set(&all);
        eprintln!("warning: taskset failed; no probe on one CPU");
        return Ok(None);
    }
    let res = f();
    set(&all);
    res.map(Some)
}

/// A `KEYS` value of examples/apikey (its `Client`): no counters, no rate limit, client id `id`
/// (at most 32 bytes).
fn apikey_client(id: &str) -> Vec<u8> {
    let mut value = vec![0u8; 24]; // requests, limited (u64), rate, burst (u32)
    value.extend((id.len() as u32).to_le_bytes());
    value.extend(0u32.to_le_bytes());
    value.extend(id.as_bytes());
    value.resize(64, 0);
    value
}

/// Microseconds one request spends in a filter's chain (start, request headers, finish), in
/// process, over 20,000 requests after a warm-up.
fn filter_cost(dir: &Path, backend: SocketAddr, filters: &BenchFilters<'_>) -> Result<f64> {
    use duet_mesh::filter::{ChainRun, ChainVerdict, Exchange, Phase};
    let yaml = mesh_config(free_port()?, free_port()?, backend, filters);
    let config = duet_mesh::Config::parse(&yaml, &dir.join("in-process.yaml"))?;
    let metrics = std::sync::Arc::new(duet_mesh::metrics::Metrics::new());
    let snapshot = duet_mesh::runtime::Snapshot::build(config, &metrics, &duet_mesh::SharedState::new(), 1)?;
    if let Some(keys) = snapshot.maps().into_iter().find(|m| m.name == "KEYS") {
        let mut key = BENCH_KEY.as_bytes().to_vec();
        key.resize(32, 0);
        keys.map.update(&key, &apikey_client("bench"), 0, None).map_err(|e| anyhow::anyhow!("seeding KEYS: {e}"))?;
    }
    let filters = snapshot.listeners[0].filters.clone();
    let template = Exchange {
        request_headers: [
            (":method", "GET"),
            (":path", "/"),
            (":authority", "127.0.0.1:10000"),
            (":scheme", "http"),
            ("user-agent", "wrk"),
            ("x-api-key", BENCH_KEY),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect(),
        ..Exchange::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let clusters = std::sync::Arc::clone(&snapshot.clusters);
    rt.block_on(async {
        let once = async || -> Result<()> {
            let mut ex = template.clone();
            ex.properties.source = Some(SocketAddr::from(([127, 0, 0, 1], 40000)));
            let mut chain = ChainRun::start(&filters, &metrics).map_err(|r| anyhow::anyhow!("start: {}", r.status))?;
            match chain.run(Phase::RequestHeaders, &mut ex, true, &*clusters).await {
                ChainVerdict::Continue => {}
                ChainVerdict::Respond(r) => bail!("the filter answered {} instead of continuing", r.status),
                ChainVerdict::Buffer => bail!("the filter asked for the body"),
            }
            chain.finish(&mut ex);
            Ok(())
        };
        for _ in 0..2000 {
            once().await?;
        }
        const N: u32 = 20_000;
        let start = Instant::now();
        for _ in 0..N {
            once().await?;
        }
        Ok(start.elapsed().as_secs_f64() * 1e6 / f64::from(N))
    })
}

struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// === Demo ===

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// The demo's sidecar part: the bundled `examples/mesh/mesh.yaml` with a Proxy-Wasm filter in
/// front of the bundled backend, a few requests, and what `/metrics` says.
pub fn demo() -> Result<bool> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let example = root.join("examples/mesh");
    println!();
    println!("4. The sidecar: `duet mesh run --config examples/mesh/mesh.yaml`. Listener `main` runs a Proxy-Wasm");
    println!("   filter (written with the public proxy-wasm SDK); listener `api` runs duet's own programs, one Rust");
    println!("   source each: the `apikey` filter as eBPF (verified, JIT) and the `canary` routing program as Wasm");
    println!(
        "   building the filters: cargo build --release --manifest-path tests/proxy-wasm/Cargo.toml --target wasm32-wasip1"
    );
    let built =
        duet_testdata::proxy_filters::build_proxy_filters("wasm32-wasip1").map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::create_dir_all(example.join("filters"))?;
    std::fs::copy(built.join("http_headers.wasm"), example.join("filters/http_headers.wasm"))
        .context("copying the filter next to the bundled config")?;
    println!("                         duet build examples/apikey && duet build examples/canary");
    let examples = crate::showcase::examples_dir()?;
    let (apikey_bpf, _) = crate::showcase::build_example(&examples.join("apikey"), true)?;
    let (_, canary_wasm) = crate::showcase::build_example(&examples.join("canary"), true)?;
    std::fs::copy(&apikey_bpf, example.join("filters/apikey.bpf.o")).context("copying apikey.bpf.o")?;
    std::fs::copy(&canary_wasm, example.join("filters/canary.wasm")).context("copying canary.wasm")?;

    // The bundled ports, unless something here already uses them.
    let mut config = example.join("mesh.yaml");
    let bundled = [10000u16, 10001, 9901, 18080, 18081];
    let mut ports = bundled;
    let tmp = std::env::temp_dir().join(format!("duet-demo-mesh-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let _cleanup = RemoveDir(tmp.clone());
    if !bundled.iter().all(|&p| port_free(p)) {
        let mut text = std::fs::read_to_string(&config)?;
        for (i, port) in ports.iter_mut().enumerate() {
            *port = free_port()?;
            text = text.replace(&format!("127.0.0.1:{}", bundled[i]), &format!("127.0.0.1:{port}"));
        }
        text = text.replace(": filters/", &format!(": {}/filters/", example.display()));
        config = tmp.join("mesh.yaml");
        std::fs::write(&config, text)?;
        println!("   (the bundled ports are in use here: using {ports:?} instead of {bundled:?})");
    }
    let [listen, api, admin, backend, canary] = ports;
    let local = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    for (port, name) in [(backend, "backend"), (canary, "canary")] {
        rt.block_on(duet_mesh::backend::spawn(local(port), name))
            .with_context(|| format!("cannot start the demo backend on 127.0.0.1:{port}"))?;
    }
    let _mesh = start_mesh(&config, local(admin), &tmp.join("mesh.log"))?;
    let proxy = local(listen);
    println!();

    let mut ok = true;
    let (status, head, body) = http_get(proxy, "GET", "/headers", &[])?;
    let response_tag = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("x-response-tag: ").map(str::to_owned))
        .unwrap_or_default();
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let h = &seen["headers"];
    println!(
        "   main: GET /headers          -> {status}; the backend saw x-request-tag: {}, x-forwarded-for: {},",
        h["x-request-tag"], h["x-forwarded-for"]
    );
    println!(
        "                                  x-request-id: {}; the client got x-response-tag: {response_tag}",
        h["x-request-id"]
    );
    ok &= status == 200 && h["x-request-tag"] == "hello-from-duet" && response_tag == "hello-from-duet";
    for (path, want) in [("/hello", 200), ("/status/503", 503)] {
        let (status, _, body) = http_get(proxy, "GET", path, &[])?;
        println!("   main: GET {path:<17} -> {status} {}", body.trim());
        ok &= status == want;
    }

    // duet's own programs on `api`.
    println!();
    let (status, _, body) = http_get(local(api), "GET", "/headers", &[("x-api-key", "demo-key")])?;
    println!("   api:  GET /headers (x-api-key: demo-key)  -> {status} {}", body.trim());
    ok &= status == 401;
    // The key's `Client` value (examples/apikey): counters, no rate limit, client id `demo`.
    let hex = duet_mesh::maps_api::hex(&apikey_client("demo"));
    let body = serde_json::json!({ "key": { "utf8": "demo-key" }, "value": hex }).to_string();
    let (status, _, _) = http_request(local(admin), "PUT", "/maps/apikey/KEYS", body.as_bytes())?;
    println!("   admin: PUT /maps/apikey/KEYS (duet mesh maps apikey KEYS --set utf8:demo-key=...) -> {status}");
    ok &= status == 200;
    for (extra, want_backend) in [(None, "backend"), (Some(("x-canary", "1")), "canary")] {
        let mut headers = vec![("x-api-key", "demo-key")];
        headers.extend(extra);
        let (status, head, body) = http_get(local(api), "GET", "/headers", &headers)?;
        let seen: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let answered = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("x-backend: ").map(str::to_owned))
            .unwrap_or_default();
        println!(
            "   api:  GET /headers (x-api-key: demo-key{}) -> {status} from `{answered}`; upstream saw x-duet-client: {}, x-api-key: {}",
            extra.map(|(n, v)| format!(", {n}: {v}")).unwrap_or_default(),
            seen["headers"]["x-duet-client"],
            seen["headers"]["x-api-key"],
        );
        ok &= status == 200 && answered == want_backend && seen["headers"]["x-duet-client"] == "demo";
    }
    let (_, _, metrics) = http_get(local(admin), "GET", "/metrics", &[])?;
    println!();
    println!("   what /metrics says (http://127.0.0.1:{admin}/metrics, excerpt):");
    for line in metrics.lines().filter(|l| !l.ends_with(" 0")).filter(|l| {
        l.starts_with("duet_mesh_requests_total")
            || l.starts_with("duet_mesh_filter_calls_total")
            || l.starts_with("duet_mesh_filter_verdicts_total")
            || l.starts_with("duet_mesh_route_decisions_total")
            || l.starts_with("duet_mesh_active_connections")
    }) {
        println!("     {line}");
    }
    println!();
    println!(
        "   The filters ran on every request, the key was added live, the canary route chose: {}",
        if ok { "yes" } else { "NO" }
    );
    println!("   Try it yourself: the commands at the top of examples/mesh/mesh.yaml");
    Ok(ok)
}

/// Requests each target gets in the paired latency probe.
const PROBE_REQUESTS: usize = 20_000;
/// The probe visits the targets in blocks of this many requests, ...
const PROBE_BLOCK: usize = 100;
/// ... of which the first few are not recorded: they bring the target's caches back.
const PROBE_BLOCK_WARM_UP: usize = 20;

/// The paired latency probe: one keep-alive connection per target, one request at a time, the
/// targets visited in turn in blocks of [`PROBE_BLOCK`] requests (the starting target rotating
/// every round), so that whatever the machine is doing at a moment weighs on all targets alike.
/// The first requests of each block are left out: a target that sat idle while the others ran
/// has cold caches, and a request-by-request interleaving would measure that (a filter's bigger
/// working set made it look ~15 µs dearer than it is warm). Returns each target's median
/// request latency in µs. On a shared 2-core machine wrk's 1-connection p50 of separate runs
/// moves by ±10 µs from run to run; blocks of a few milliseconds cancel that drift.
fn paired_latency(ports: &[u16], requests: usize) -> Result<Vec<f64>> {
    paired_latency_with(ports.len(), requests, |i| KeepAlive::connect(ports[i]))
}

/// [`paired_latency`] over `n` targets whose keep-alive connections `connect(i)` opens (again
/// after a server closed one).
fn paired_latency_with(n: usize, requests: usize, connect: impl Fn(usize) -> Result<KeepAlive>) -> Result<Vec<f64>> {
    let mut conns: Vec<KeepAlive> = (0..n).map(&connect).collect::<Result<_>>()?;
    let recorded_per_block = PROBE_BLOCK - PROBE_BLOCK_WARM_UP;
    let rounds = requests.div_ceil(recorded_per_block);
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds * recorded_per_block); n];
    for round in 0..rounds {
        for k in 0..conns.len() {
            let i = (round + k) % conns.len();
            for n in 0..PROBE_BLOCK {
                let start = Instant::now();
                if conns[i].get().is_err() {
                    // A server may close a keep-alive connection after some number of
                    // requests: reconnect and repeat, leaving this request out of the samples.
                    conns[i] = connect(i)?;
                    conns[i].get().with_context(|| format!("latency probe, target {i}"))?;
                    continue;
                }
                if n >= PROBE_BLOCK_WARM_UP {
                    times[i].push(start.elapsed().as_secs_f64() * 1e6);
                }
            }
        }
    }
    Ok(times.into_iter().map(median).collect())
}

/// A keep-alive HTTP/1.1 connection that sends the benchmark's `GET /` and reads whole
/// responses (content-length or chunked), for the latency probe.
struct KeepAlive {
    stream: TcpStream,
    buf: Vec<u8>,
    request: Vec<u8>,
}

impl KeepAlive {
    fn connect(port: u16) -> Result<Self> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let stream =
            TcpStream::connect_timeout(&addr, Duration::from_secs(2)).with_context(|| format!("connect {addr}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let request = format!("GET / HTTP/1.1\r\nhost: {addr}\r\nx-api-key: {BENCH_KEY}\r\n\r\n").into_bytes();
        Ok(Self { stream, buf: Vec::with_capacity(4096), request })
    }

    /// One request; fails on a non-200 answer or a closed connection.
    fn get(&mut self) -> Result<()> {
        self.stream.write_all(&self.request)?;
        self.buf.clear();
        let head_end = loop {
            if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).to_ascii_lowercase();
        if !head.starts_with("http/1.1 200") {
            bail!("answered {}", head.lines().next().unwrap_or(""));
        }
        let length =
            head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse::<usize>().ok());
        match length {
            Some(n) => {
                while self.buf.len() < head_end + n {
                    self.fill()?;
                }
            }
            None if head.contains("transfer-encoding: chunked") => {
                while !self.buf[head_end..].ends_with(b"0\r\n\r\n") {
                    self.fill()?;
                }
            }
            None => bail!("a response without a length on a keep-alive connection"),
        }
        Ok(())
    }

    fn fill(&mut self) -> Result<()> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            bail!("the connection was closed");
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}
