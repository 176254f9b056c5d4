//! `duet mesh bench-capture`: what transparent capture costs and what the sk_msg short circuit
//! saves, on loopback, in one run. wrk asks the same backend three ways, in interleaved rounds:
//! directly; from a cgroup that a `duet mesh` sidecar captures (connect4 + sock_ops, the request
//! crossing loopback TCP to the sidecar and again to the backend); and from a second cgroup whose
//! sidecar has `short_circuit: true` (the hop between wrk's sockets and the sidecar's passed socket
//! to socket by the sk_msg program). Needs root: it creates two cgroups of its own and attaches
//! the capture programs to them; both go when it ends.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use super::{
    KeepAlive, RemoveDir, Wrk, cpu_seconds, ensure_tool, free_port, median, paired_latency_with, run_wrk_in, start_mesh,
};

/// Options of `duet mesh bench-capture`.
#[derive(clap::Args, Debug)]
pub struct CaptureBenchArgs {
    #[command(flatten)]
    load: super::WrkLoad,
    /// The capture object [default: `duet build examples/capture`, done first].
    #[arg(long)]
    bpf: Option<PathBuf>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// One target's medians.
#[derive(Clone, Debug, Default)]
struct Row {
    name: &'static str,
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    /// The paired probe's p50: one request at a time on one keep-alive connection, the targets
    /// in turn in blocks.
    p50_1conn_us: f64,
    /// The sidecar's CPU time (user + system) per request under load; 0 for direct.
    sidecar_cpu_us: f64,
    errors: u64,
    /// Sends the short circuit passed socket to socket (its sidecar's counter at the end).
    short_circuited: f64,
}

/// A cgroup v2 directory of the benchmark, removed (after moving its processes out) on drop.
struct Cgroup {
    path: PathBuf,
    root: PathBuf,
}

impl Cgroup {
    fn create(root: &Path, name: &str) -> Result<Cgroup> {
        let path = root.join(name);
        let _ = std::fs::remove_dir(&path);
        std::fs::create_dir(&path).with_context(|| format!("cannot create cgroup {}", path.display()))?;
        Ok(Cgroup { path, root: root.to_owned() })
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if let Ok(pids) = std::fs::read_to_string(self.path.join("cgroup.procs")) {
            for pid in pids.lines() {
                let _ = std::fs::write(self.root.join("cgroup.procs"), pid);
            }
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// The sidecar's config: capture `cgroup`'s connections to `backend_port` into its listener, which
/// forwards each to where it was going.
fn config(cgroup: &Path, object: &Path, pins: &Path, backend_port: u16, port: u16, admin: u16, short: bool) -> String {
    format!(
        "admin: {{ address: \"127.0.0.1:{admin}\" }}\nworkers: 1\n\
         capture:\n  cgroup: {}\n  listener: outbound\n  bpf: \"{}\"\n  ports: [{backend_port}]\n  pin_dir: {}\n  \
         short_circuit: {short}\n\
         listeners:\n  - name: outbound\n    address: \"127.0.0.1:{port}\"\n    routes:\n      - {{ prefix: \"/\", cluster: passthrough }}\n\
         clusters:\n  - name: passthrough\n    original_destination: true\n",
        cgroup.display(),
        object.display(),
        pins.display(),
    )
}

/// Requests per target in the latency probe.
const PROBE_REQUESTS: usize = 6000;

/// The cgroup this process is in (`/proc/self/cgroup`'s v2 line), under `root`.
fn own_cgroup(root: &Path) -> Result<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").context("cannot read /proc/self/cgroup")?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::")).context("no cgroup v2 line in /proc/self/cgroup")?;
    Ok(root.join(path.trim_start_matches('/')))
}

/// Opens a keep-alive connection to the backend as a process of `cgroup` (so that its sidecar
/// captures it), then puts this process back in `home`.
fn connect_in(cgroup: Option<&Path>, home: &Path, port: u16) -> Result<KeepAlive> {
    let pid = std::process::id().to_string();
    if let Some(cgroup) = cgroup {
        std::fs::write(cgroup.join("cgroup.procs"), &pid)
            .with_context(|| format!("cannot join {}", cgroup.display()))?;
    }
    let conn = KeepAlive::connect(port);
    if cgroup.is_some() {
        std::fs::write(home.join("cgroup.procs"), &pid)
            .with_context(|| format!("cannot return to {}", home.display()))?;
    }
    conn
}

/// A value of the sidecar's /metrics (0 when absent).
fn metric(admin: SocketAddr, name: &str) -> f64 {
    let Ok((_, _, text)) = super::http_get(admin, "GET", "/metrics", &[]) else { return 0.0 };
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// `duet mesh bench-capture`.
pub fn run(args: CaptureBenchArgs) -> Result<ExitCode> {
    let rounds = args.load.rounds.max(1);
    duet_kernel::check_access().context("bench-capture attaches BPF programs to cgroups: run it as root")?;
    let Some(cgroup_root) = duet_kernel::cgroup2_root() else {
        bail!("bench-capture needs cgroup v2 (no cgroup2 in /proc/self/mounts)")
    };
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
    let object = match args.bpf.clone() {
        Some(path) => path,
        None => {
            eprintln!("==> duet build examples/capture (eBPF only: its programs are kernel hooks)");
            let dir = crate::showcase::examples_dir()?.join("capture");
            let out = duet_build::build(&duet_build::BuildConfig {
                crate_dir: dir.clone(),
                targets: duet_build::Targets { bpf: true, wasm: false },
                tools_dir: None,
                progress: duet_build::Progress { quiet: true },
            })
            .with_context(|| format!("cannot build {}", dir.display()))?;
            out.bpf.context("duet build examples/capture produced no .bpf.o")?
        }
    };
    let object = std::path::absolute(object)?;

    let tag = format!("duet-bench-capture-{}", std::process::id());
    let dir = std::env::temp_dir().join(&tag);
    std::fs::create_dir_all(&dir)?;
    let _cleanup = RemoveDir(dir.clone());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let backend = rt.block_on(duet_mesh::backend::spawn("127.0.0.1:0".parse()?, "bench"))?;
    let backend_port = backend.port();

    // Two sidecars, each capturing its own cgroup; wrk runs in one or the other (or neither).
    let mut sidecars = Vec::new();
    for (i, short) in [false, true].into_iter().enumerate() {
        let cgroup = Cgroup::create(&cgroup_root, &format!("{tag}-{i}"))?;
        let pins = RemoveDir(PathBuf::from("/sys/fs/bpf").join(format!("{tag}-{i}")));
        let (port, admin) = (free_port()?, free_port()?);
        let file = dir.join(format!("mesh-{i}.yaml"));
        std::fs::write(&file, config(&cgroup.path, &object, &pins.0, backend_port, port, admin, short))?;
        let admin = SocketAddr::from(([127, 0, 0, 1], admin));
        let child = start_mesh(&file, admin, &dir.join(format!("mesh-{i}.log")))?;
        // Field order of the tuple is drop order: the sidecar first (detaching its programs), then
        // its pins and its cgroup.
        sidecars.push((child, admin, pins, cgroup));
    }
    let targets: [(&'static str, Option<usize>); 3] =
        [("direct", None), ("captured", Some(0)), ("captured + short circuit", Some(1))];

    let load_secs = args.load.duration.max(1);
    let mut samples: Vec<Vec<(Wrk, f64)>> = vec![Vec::new(); targets.len()];
    for round in 0..rounds {
        for k in 0..targets.len() {
            let i = (round + k) % targets.len();
            let (name, sidecar) = targets[i];
            eprintln!("==> round {}/{rounds}: {name}", round + 1);
            let cgroup = sidecar.map(|s| sidecars[s].3.path.as_path());
            let pid = sidecar.map(|s| sidecars[s].0.0.id());
            let cpu_before = pid.and_then(cpu_seconds);
            let loaded = run_wrk_in(cgroup, backend_port, "/", load_secs, args.load.connections, &[])?;
            let cpu = match (pid.and_then(cpu_seconds), cpu_before) {
                (Some(after), Some(before)) => (after - before) / (loaded.rps * load_secs as f64) * 1e6,
                _ => 0.0,
            };
            samples[i].push((loaded, cpu));
        }
    }
    // The latency probe runs in this process, which joins each target's cgroup to open that
    // target's connection (capture happens at connect(2); the socket stays captured after).
    let home = own_cgroup(&cgroup_root)?;
    eprintln!("==> paired latency probe: {PROBE_REQUESTS} requests per target, one at a time, the targets in turn");
    let probe = paired_latency_with(targets.len(), PROBE_REQUESTS, |i| {
        let cgroup = targets[i].1.map(|s| sidecars[s].3.path.as_path());
        connect_in(cgroup, &home, backend_port)
    })?;
    let rows: Vec<Row> = targets
        .iter()
        .zip(&samples)
        .enumerate()
        .map(|(i, (&(name, sidecar), s))| Row {
            name,
            rps: median(s.iter().map(|x| x.0.rps).collect()),
            p50_us: median(s.iter().map(|x| x.0.p50_us).collect()),
            p99_us: median(s.iter().map(|x| x.0.p99_us).collect()),
            p50_1conn_us: probe[i],
            sidecar_cpu_us: median(s.iter().map(|x| x.1).collect()),
            errors: s.iter().map(|x| x.0.errors).sum(),
            short_circuited: sidecar
                .map_or(0.0, |i| metric(sidecars[i].1, "duet_mesh_tcp_short_circuit_messages_total")),
        })
        .collect();
    if rows.iter().any(|r| r.errors > 0) {
        for i in 0..sidecars.len() {
            let log = std::fs::read_to_string(dir.join(format!("mesh-{i}.log"))).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            if !tail.is_empty() {
                eprintln!("the last lines of sidecar {i}'s log:");
                for line in tail.iter().rev() {
                    eprintln!("  {line}");
                }
            }
        }
    }
    drop(sidecars);
    report(&rows, &args, rounds)
}

fn report(rows: &[Row], args: &CaptureBenchArgs, rounds: usize) -> Result<ExitCode> {
    let (direct, captured, short) = (&rows[0], &rows[1], &rows[2]);
    let saved_us = captured.p50_1conn_us - short.p50_1conn_us;
    let saved_cpu = captured.sidecar_cpu_us - short.sidecar_cpu_us;
    let rps_gain = short.rps / captured.rps - 1.0;
    if args.json {
        let row = |r: &Row| {
            serde_json::json!({
                "target": r.name, "rps": r.rps, "p50_us": r.p50_us, "p99_us": r.p99_us,
                "p50_1conn_us": r.p50_1conn_us, "sidecar_cpu_us_per_request": r.sidecar_cpu_us,
                "errors": r.errors, "rps_vs_direct": r.rps / direct.rps,
                "short_circuited_sends": r.short_circuited,
            })
        };
        let doc = serde_json::json!({
            "duration_s": args.load.duration, "rounds": rounds, "connections": args.load.connections,
            "targets": rows.iter().map(row).collect::<Vec<_>>(),
            "short_circuit": { "p50_1conn_saved_us": saved_us, "sidecar_cpu_saved_us": saved_cpu, "rps_gain": rps_gain },
        });
        println!("{doc}");
    } else {
        println!(
            "loopback, wrk -t1 -c{} -d{}s, median of {rounds} interleaved rounds; p50 (1 conn): the paired probe, {PROBE_REQUESTS} requests each; sidecars: 1 worker, monitor on",
            args.load.connections, args.load.duration
        );
        println!(
            "  {:<26} {:>9} {:>9} {:>9} {:>15} {:>17} {:>7} {:>10} {:>14}",
            "target",
            "rps",
            "p50 µs",
            "p99 µs",
            "p50 µs (1 conn)",
            "sidecar CPU µs/req",
            "errors",
            "rps/direct",
            "sends passed"
        );
        for r in rows {
            println!(
                "  {:<26} {:>9.0} {:>9.1} {:>9.1} {:>15.1} {:>17} {:>7} {:>9.2}x {:>14}",
                r.name,
                r.rps,
                r.p50_us,
                r.p99_us,
                r.p50_1conn_us,
                if r.sidecar_cpu_us > 0.0 { format!("{:.1}", r.sidecar_cpu_us) } else { "-".into() },
                r.errors,
                r.rps / direct.rps,
                if r.name == "direct" { "-".into() } else { format!("{:.0}", r.short_circuited) },
            );
        }
        println!(
            "  the short circuit: {saved_us:+.1} µs p50 saved at 1 connection, {saved_cpu:+.1} µs of sidecar CPU per \
             request saved, rps {:+.1}% under load",
            rps_gain * 100.0
        );
    }
    if rows.iter().any(|r| r.errors > 0) {
        eprintln!("warning: some requests failed (errors column)");
    }
    if short.short_circuited == 0.0 {
        eprintln!(
            "warning: the short-circuit sidecar passed nothing socket to socket: its row measured the usual path"
        );
    }
    Ok(ExitCode::SUCCESS)
}
