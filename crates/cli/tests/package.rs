//! `duet package`, end to end: the firewall example and the hello app packaged into single
//! executables (with the real `duet-runner`, built in release once by this test), run, and
//! compared with `duet run` and the sidecar; damaged and foreign payloads refused; and a printed
//! measurement of size, start-up time and speed (`package_size_startup_and_speed`; set
//! `DUET_BENCH_BIN=target/release/duet` to compare against a release `duet`).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

mod mesh_support;
use mesh_support::{Client, free_port, get, listener, mesh_config};

const DUET: &str = env!("CARGO_BIN_EXE_duet");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let dir = root().join("target/tmp/package-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Runs a command; returns its output whatever the status.
fn output(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs a command that must succeed; returns stdout.
fn ok(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail; returns stderr.
fn fails(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(!out.status.success(), "{cmd:?} succeeded:\n{}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8(out.stderr).unwrap()
}

/// `duet-runner` in release, built once per test process (the command is echoed).
fn runner() -> PathBuf {
    static BUILT: Mutex<Option<PathBuf>> = Mutex::new(None);
    build_runner(&BUILT, false)
}

/// `duet-runner` without the app host (`--no-default-features`), as `duet package` builds it for
/// packet programs: in release, into target/runner-packet, once per test process.
fn packet_runner() -> PathBuf {
    static BUILT: Mutex<Option<PathBuf>> = Mutex::new(None);
    build_runner(&BUILT, true)
}

fn build_runner(built: &Mutex<Option<PathBuf>>, packet_only: bool) -> PathBuf {
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    built
        .get_or_insert_with(|| {
            let mut target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
            if packet_only {
                target = target.join("runner-packet");
            }
            let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            cmd.args(["build", "--release", "-p", "duet-runner", "--manifest-path"])
                .arg(root().join("Cargo.toml"))
                .arg("--target-dir")
                .arg(&target);
            if packet_only {
                cmd.arg("--no-default-features");
            }
            eprintln!("$ {cmd:?}");
            assert!(cmd.status().unwrap().success(), "building duet-runner failed");
            target.join("release/duet-runner")
        })
        .clone()
}

/// `duet package INPUT -o OUTPUT EXTRA...` with the release runner; returns the output path.
fn package(input: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = tmp(name);
    let runner = runner();
    ok(Command::new(DUET).arg("package").arg(input).arg("-o").arg(&out).arg("--runner").arg(&runner).args(extra));
    out
}

/// The firewall example's `.wasm` (`duet build`, once per process).
fn firewall_wasm() -> PathBuf {
    static BUILT: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    built
        .get_or_insert_with(|| {
            let dir = root().join("examples/firewall");
            ok(Command::new(DUET).args(["build", "--quiet", "--wasm-only"]).arg(&dir));
            dir.join("target/duet/firewall.wasm")
        })
        .clone()
}

/// The packet corpus as a capture, repeated `times`.
fn corpus_pcap(name: &str, times: usize) -> PathBuf {
    let frames: Vec<Vec<u8>> =
        duet_testdata::packets::corpus().into_iter().map(|(_, f)| f).filter(|f| f.len() >= 14).collect();
    let frames: Vec<Vec<u8>> = frames.iter().cycle().take(frames.len() * times).cloned().collect();
    let path = tmp(&format!("{name}.pcap"));
    duet_testdata::packets::write_pcap(std::fs::File::create(&path).unwrap(), &frames).unwrap();
    path
}

/// Blocks 10.0.0.0/24 and TCP port 23, so the corpus sees drops.
fn firewall_maps() -> PathBuf {
    let mut blocked = serde_json::Map::new();
    for last in 0..=255u8 {
        blocked.insert(format!("0a0000{last:02x}"), json!("01"));
    }
    let path = tmp("firewall-maps.json");
    let doc = json!({ "maps": { "BLOCKED": blocked, "PORT_RULES": { "06000017": "01" } } });
    std::fs::write(&path, doc.to_string()).unwrap();
    path
}

// === Packet programs ===

#[test]
fn a_packaged_firewall_prints_what_duet_run_prints() {
    let wasm = firewall_wasm();
    let exe = package(&wasm, "firewall", &[]);
    let pcap = corpus_pcap("corpus", 1);
    let maps = firewall_maps();
    let args = ["--json", "--deterministic", "--cpus", "2", "--maps-in", maps.to_str().unwrap()];
    let packaged = ok(Command::new(&exe).arg("--pcap").arg(&pcap).args(args));
    let unpackaged = ok(Command::new(DUET).arg("run").arg(&wasm).arg("--pcap").arg(&pcap).args(args));
    assert_eq!(packaged, unpackaged, "the package and `duet run` disagree");
    let doc: Json = serde_json::from_str(&packaged).unwrap();
    let results = doc["results"].as_array().unwrap();
    assert!(results.contains(&json!(1)) && results.contains(&json!(2)), "the corpus should see drops and passes");

    // Without --json: the same verdict counts as `duet run`.
    let counts = |text: &str| text.lines().filter(|l| l.contains("XDP_")).map(str::to_owned).collect::<Vec<_>>();
    let packaged = ok(Command::new(&exe).arg("--pcap").arg(&pcap).args(&args[1..]));
    let unpackaged = ok(Command::new(DUET).arg("run").arg(&wasm).arg("--pcap").arg(&pcap).args(&args[1..]));
    assert_eq!(counts(&packaged), counts(&unpackaged));
    assert!(packaged.contains("ns/packet in wasm (packaged)"), "{packaged}");

    let help = ok(Command::new(&exe).arg("--help"));
    assert!(help.contains("xdp program `firewall` of firewall.wasm") && help.contains("--pcap traffic.pcap"), "{help}");
    let info: Json = serde_json::from_str(&ok(Command::new(&exe).arg("--info"))).unwrap();
    assert_eq!(info["artifact"]["kind"], "program");
    assert_eq!(info["artifact"]["program"], "firewall");
    let err = fails(Command::new(&exe).args(["--listen", "127.0.0.1:0"]));
    assert!(err.contains("holds a packet program, not an HTTP app"), "{err}");
    let err = fails(&mut Command::new(&exe));
    assert!(err.contains("run it with --pcap FILE"), "{err}");
}

/// A packaged program with tail calls takes its prog array slots as `duet run` does.
#[test]
fn a_packaged_program_takes_tail_call_slots() {
    let dir = root().join("examples/dispatch");
    ok(Command::new(DUET).args(["build", "--quiet", "--wasm-only"]).arg(&dir));
    let wasm = dir.join("target/duet/dispatch.wasm");
    let exe = package(&wasm, "dispatch", &["--program", "dispatch"]);
    let pcap = corpus_pcap("dispatch-corpus", 1);
    let slots = ["--tail-call", "BY_PROTOCOL:0=tcp", "--tail-call", "BY_PROTOCOL:1=udp"];
    let packaged = ok(Command::new(&exe).arg("--pcap").arg(&pcap).args(["--json", "--cpus", "1"]).args(slots));
    let run = ok(Command::new(DUET)
        .arg("run")
        .arg(&wasm)
        .args(["--program", "dispatch", "--pcap"])
        .arg(&pcap)
        .args(["--json", "--cpus", "1"])
        .args(slots));
    assert_eq!(packaged, run, "the package and `duet run` disagree");
    let doc: Json = serde_json::from_str(&packaged).unwrap();
    let tcp = &doc["maps"]["SEEN"]["01000000"];
    assert_ne!(tcp, &json!("0000000000000000"), "the tcp program ran through its slot: {}", doc["maps"]);
}

#[test]
fn damaged_foreign_and_missing_payloads_are_clear_errors() {
    let exe = package(&firewall_wasm(), "firewall-damaged-src", &[]);
    let pcap = corpus_pcap("corpus-small", 1);
    let bytes = std::fs::read(&exe).unwrap();
    let (runner_part, payload) = duet_runner::split(&bytes).unwrap().expect("a payload");
    let runner_len = runner_part.len();
    let write = |name: &str, bytes: &[u8]| {
        let path = tmp(name);
        std::fs::write(&path, bytes).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        path
    };
    let run = |exe: &Path| fails(Command::new(exe).arg("--pcap").arg(&pcap));

    // One flipped bit in the compiled code.
    let mut flipped = bytes.clone();
    let at = bytes.len() - duet_runner::TRAILER_LEN - payload.code.len() / 2;
    flipped[at] ^= 0x10;
    let err = run(&write("firewall-flipped", &flipped));
    assert!(err.contains("the payload is corrupted"), "{err}");

    // Cut in the middle of the payload, trailer kept.
    let cut = [&bytes[..runner_len + 100], &bytes[bytes.len() - duet_runner::TRAILER_LEN..]].concat();
    let err = run(&write("firewall-cut", &cut));
    assert!(err.contains("the payload is corrupted") || err.contains("truncated"), "{err}");

    // Code compiled by wasmtime with other engine settings (no epoch interruption), with a
    // valid digest: wasmtime's own check must refuse it.
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(false);
    let foreign = wasmtime::Engine::new(&config).unwrap();
    let code = foreign.precompile_module(&std::fs::read(firewall_wasm()).unwrap()).unwrap();
    let repacked = duet_runner::assemble(runner_part, &duet_runner::Payload { code, ..payload.clone() }).unwrap();
    let err = run(&write("firewall-foreign", &repacked));
    assert!(err.contains("cannot be loaded by this runtime") && err.contains("epoch"), "{err}");

    // Not wasmtime's code at all, with a valid digest.
    let junk = duet_runner::assemble(runner_part, &duet_runner::Payload { code: vec![0x42; 4096], ..payload }).unwrap();
    let err = run(&write("firewall-junk", &junk));
    assert!(err.contains("cannot be loaded by this runtime"), "{err}");

    // The bare runtime.
    let err = fails(Command::new(runner()).arg("--pcap").arg(&pcap));
    assert!(err.contains("duet-runner without a payload") && err.contains("duet package"), "{err}");
}

#[test]
fn non_wasm_input_is_a_clear_error() {
    let text = tmp("not-wasm.txt");
    std::fs::write(&text, "hello").unwrap();
    let out = tmp("never-written");
    let err = fails(Command::new(DUET).arg("package").arg(&text).arg("-o").arg(&out).arg("--runner").arg(runner()));
    assert!(err.contains("is not WebAssembly") && err.contains("duet build"), "{err}");
    assert!(!out.exists());
    // A core module that is not a duet program.
    let wat = tmp("not-duet.wasm");
    std::fs::write(&wat, wat::parse_str("(module (func (export \"f\")))").unwrap()).unwrap();
    let err = fails(Command::new(DUET).arg("package").arg(&wat).arg("-o").arg(&out).arg("--runner").arg(runner()));
    assert!(err.contains("cannot load") && err.contains("duet ABI"), "{err}");
    // Packet-program flags on an app, app flags on a program.
    let err = fails(
        Command::new(DUET)
            .arg("package")
            .arg(firewall_wasm())
            .arg("-o")
            .arg(&out)
            .args(["--max-concurrency", "4", "--runner"])
            .arg(runner()),
    );
    assert!(err.contains("apply to HTTP apps"), "{err}");
    assert!(!out.exists());
}

// === HTTP apps ===

/// A packaged app started with `--listen 127.0.0.1:0`, and the address it printed.
struct Served {
    child: Child,
    addr: SocketAddr,
    /// From spawn to the "listening" line.
    ready: Duration,
}

impl Served {
    fn start(exe: &Path, extra: &[&str]) -> Served {
        let started = Instant::now();
        let mut child = Command::new(exe)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let ready = started.elapsed();
        let addr = line
            .strip_prefix("listening on http://")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        Served { child, addr, ready }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The runtime without the app host: a packet program packaged with it prints what the full
/// runtime's package prints, in a smaller executable; an app is refused when packaged with it,
/// and a package that holds one says why it cannot run it.
#[test]
fn the_runtime_without_the_app_host_runs_packet_programs_in_a_smaller_executable() {
    let wasm = firewall_wasm();
    let full = package(&wasm, "firewall-full", &[]);
    let small = tmp("firewall-packet-runner");
    let runner = packet_runner();
    ok(Command::new(DUET).arg("package").arg(&wasm).arg("-o").arg(&small).arg("--runner").arg(&runner));
    let pcap = corpus_pcap("corpus-packet-runner", 1);
    let maps = firewall_maps();
    let args = ["--json", "--deterministic", "--cpus", "2", "--maps-in", maps.to_str().unwrap()];
    let from_small = ok(Command::new(&small).arg("--pcap").arg(&pcap).args(args));
    assert_eq!(from_small, ok(Command::new(&full).arg("--pcap").arg(&pcap).args(args)), "the two runtimes disagree");
    let (small_len, full_len) = (std::fs::metadata(&small).unwrap().len(), std::fs::metadata(&full).unwrap().len());
    eprintln!("firewall packaged: {small_len} bytes without the app host, {full_len} bytes with it");
    assert!(small_len * 10 < full_len * 7, "not smaller by 30%: {small_len} against {full_len}");

    let app = duet_testdata::wasm_apps::build_hello_app().expect("building examples/apps/hello");
    let err = fails(
        Command::new(DUET)
            .arg("package")
            .arg(&app)
            .arg("-o")
            .arg(tmp("hello-packet-runner"))
            .arg("--runner")
            .arg(&runner),
    );
    assert!(err.contains("cannot run HTTP apps") && err.contains("packet programs only"), "{err}");
    // A package of an app whose runtime was swapped for the packet-only one (as by hand).
    let (_, payload) = duet_runner::split(&std::fs::read(hello_package("hello-for-swap")).unwrap()).unwrap().unwrap();
    let bare = std::fs::read(&runner).unwrap();
    let swapped = tmp("hello-swapped");
    std::fs::write(&swapped, duet_runner::assemble(&bare, &payload).unwrap()).unwrap();
    std::fs::set_permissions(&swapped, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let err = fails(Command::new(&swapped).args(["--listen", "127.0.0.1:0"]));
    assert!(err.contains("built without the app host"), "{err}");
}

fn hello_package(name: &str) -> PathBuf {
    let app = duet_testdata::wasm_apps::build_hello_app().expect("building examples/apps/hello");
    package(&app, name, &["--env", "GREETING=hi", "--kv", "100", "--timeout-ms", "2000"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packaged_app_serves_on_loopback() {
    let exe = hello_package("hello");
    // A limit overridden at start must not change what the code was compiled for.
    let served = Served::start(&exe, &["--max-concurrency", "8", "--max-memory-mb", "32"]);
    let mut client = Client::connect(served.addr, false).await;
    let got = client.send(get(served.addr, "/")).await.unwrap();
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(serde_json::from_str::<Json>(&got.body).unwrap(), json!({"hello": "duet", "app": "hello"}));
    let got = client.send(get(served.addr, "/env/GREETING")).await.unwrap();
    assert!(got.status == 200 && got.body.contains("hi"), "{} {}", got.status, got.body);
    let put = http::Request::put(format!("http://{}/kv/colour", served.addr))
        .header("host", served.addr.to_string())
        .body(mesh_support::body("blue"))
        .unwrap();
    assert_eq!(client.send(put).await.unwrap().status, 200);
    let got = client.send(get(served.addr, "/kv/colour")).await.unwrap();
    assert!(got.status == 200 && got.body.contains("blue"), "{} {}", got.status, got.body);
    // A trap is that request's 500; the next request is served.
    let got = client.send(get(served.addr, "/panic")).await.unwrap();
    assert_eq!((got.status, got.header("duet-app-error")), (500, "trap"));
    let got = Client::connect(served.addr, false).await.send(get(served.addr, "/")).await.unwrap();
    assert_eq!(got.status, 200);

    let info: Json = serde_json::from_str(&ok(Command::new(&exe).arg("--info"))).unwrap();
    assert_eq!(info["artifact"]["kind"], "app");
    assert_eq!(info["artifact"]["config"]["env"]["GREETING"], "hi");
    let err = fails(Command::new(&exe).args(["--pcap", "x.pcap"]));
    assert!(err.contains("holds an HTTP app"), "{err}");
    let help = ok(Command::new(&exe).arg("--help"));
    assert!(help.contains("--listen 127.0.0.1:8080"), "{help}");

    // An app's code in a program package: refused by wasmtime's check, not run.
    let fw = std::fs::read(package(&firewall_wasm(), "firewall-for-app", &[])).unwrap();
    let app_code = duet_runner::split(&std::fs::read(&exe).unwrap()).unwrap().unwrap().1.code;
    let (runner_part, payload) = duet_runner::split(&fw).unwrap().unwrap();
    let mixed = duet_runner::assemble(runner_part, &duet_runner::Payload { code: app_code, ..payload }).unwrap();
    let path = tmp("firewall-with-app-code");
    std::fs::write(&path, mixed).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let err = fails(Command::new(&path).arg("--pcap").arg(corpus_pcap("corpus-mixed", 1)));
    assert!(err.contains("cannot be loaded by this runtime"), "{err}");
}

// === The measurement ===

/// Median of `n` runs of `f`.
fn median(n: usize, mut f: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..n).map(|_| f()).collect();
    times.sort();
    times[n / 2]
}

fn ns_per_packet(stdout: &str) -> f64 {
    stdout
        .lines()
        .find_map(|l| l.trim().split_once(" ns/packet").and_then(|(n, _)| n.parse().ok()))
        .unwrap_or_else(|| panic!("no ns/packet in {stdout}"))
}

/// Mean time of `n` sequential GETs of `/` on one keep-alive connection.
async fn per_request(addr: SocketAddr, n: usize) -> Duration {
    let mut client = Client::connect(addr, false).await;
    for _ in 0..50 {
        assert_eq!(client.send(get(addr, "/")).await.unwrap().status, 200);
    }
    let t0 = Instant::now();
    for _ in 0..n {
        assert_eq!(client.send(get(addr, "/")).await.unwrap().status, 200);
    }
    t0.elapsed() / n as u32
}

/// Prints (does not assert) the package's size, its start-up time to the first packet or
/// answered request, and its per-packet / per-request time against `duet run` and `duet mesh`
/// serving the same `.wasm` (the binary in `DUET_BENCH_BIN`, else this test's `duet`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn package_size_startup_and_speed() {
    // A relative path is taken from the workspace root (the test runs in crates/cli).
    let reference = std::env::var("DUET_BENCH_BIN").map_or_else(|_| PathBuf::from(DUET), |p| root().join(p));
    let wasm = firewall_wasm();
    let exe = package(&wasm, "firewall-bench", &[]);
    let one = tmp("one.pcap");
    let frame = duet_testdata::packets::corpus().into_iter().map(|(_, f)| f).find(|f| f.len() >= 54).unwrap();
    duet_testdata::packets::write_pcap(std::fs::File::create(&one).unwrap(), &[frame]).unwrap();
    let big = corpus_pcap("corpus-x200", 200);
    let built_size = std::fs::metadata(runner()).unwrap().len();
    // The runtime as embedded (`duet package` strips its debug info when binutils is there).
    let runner_size = duet_runner::split(&std::fs::read(&exe).unwrap()).unwrap().unwrap().0.len() as u64;
    let size = std::fs::metadata(&exe).unwrap().len();
    let timed = |cmd: &mut Command| {
        let t0 = Instant::now();
        ok(cmd);
        t0.elapsed()
    };
    // Warm `duet run`'s compile cache first: its start-up is then a cache hit, its best case.
    ok(Command::new(&reference).arg("run").arg(&wasm).arg("--pcap").arg(&one));
    let start_pkg = median(9, || timed(Command::new(&exe).arg("--pcap").arg(&one)));
    let start_run = median(9, || timed(Command::new(&reference).arg("run").arg(&wasm).arg("--pcap").arg(&one)));
    let speed = |cmd: &mut Command| ns_per_packet(&ok(cmd));
    let pkt_pkg = (0..3).map(|_| speed(Command::new(&exe).arg("--pcap").arg(&big))).fold(f64::MAX, f64::min);
    let pkt_run = (0..3)
        .map(|_| speed(Command::new(&reference).arg("run").arg(&wasm).arg("--pcap").arg(&big)))
        .fold(f64::MAX, f64::min);

    let hello = hello_package("hello-bench");
    let app_size = std::fs::metadata(&hello).unwrap().len();
    let mut first_pkg = Vec::new();
    for _ in 0..5 {
        let t0 = Instant::now();
        let served = Served::start(&hello, &[]);
        let got = Client::connect(served.addr, false).await.send(get(served.addr, "/")).await.unwrap();
        assert_eq!(got.status, 200);
        first_pkg.push((t0.elapsed(), served.ready));
    }
    first_pkg.sort();
    let (first_pkg, ready_pkg) = first_pkg[first_pkg.len() / 2];
    let served = Served::start(&hello, &[]);
    let req_pkg = per_request(served.addr, 2000).await;
    drop(served);

    // The same component as a cluster of `duet mesh`.
    let app = duet_testdata::wasm_apps::build_hello_app().unwrap();
    let (admin, port) = (free_port(), free_port());
    let yaml = mesh_config(
        admin,
        &listener("apps", port, "", "      - { prefix: \"/\", cluster: hello }\n"),
        &format!("  - name: hello\n    app:\n      wasm: \"{}\"\n      timeout_ms: 2000\n", app.display()),
    );
    let config = tmp("mesh-bench.yaml");
    std::fs::write(&config, yaml).unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // An older `duet` may predate app clusters: then this test's own `duet` serves them.
    let mesh_bin = if output(Command::new(&reference).args(["mesh", "check", "--config"]).arg(&config)).status.success()
    {
        reference.clone()
    } else {
        PathBuf::from(DUET)
    };
    let t0 = Instant::now();
    let mut mesh = Command::new(&mesh_bin)
        .args(["mesh", "run", "--config"])
        .arg(&config)
        .env("XDG_CACHE_HOME", tmp("mesh-cache"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first_mesh = loop {
        if let Ok(tcp) = tokio::net::TcpStream::connect(addr).await {
            drop(tcp);
            let got = Client::connect(addr, false).await.send(get(addr, "/")).await.unwrap();
            if got.status == 200 {
                break t0.elapsed();
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "duet mesh did not answer");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let req_mesh = per_request(addr, 2000).await;
    let _ = mesh.kill();
    let _ = mesh.wait();

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    eprintln!("\n=== duet package: size, start-up, speed (reference: {}) ===", reference.display());
    eprintln!(
        "duet-runner: {:.1} MiB as built, {:.1} MiB as embedded",
        built_size as f64 / 1048576.0,
        runner_size as f64 / 1048576.0
    );
    eprintln!("firewall package: {:.1} MiB ({} bytes over the runner)", size as f64 / 1048576.0, size - runner_size);
    eprintln!(
        "hello package:    {:.1} MiB ({} bytes over the runner)",
        app_size as f64 / 1048576.0,
        app_size - runner_size
    );
    eprintln!(
        "firewall, process start to exit over 1 packet (median of 9): package {:.1} ms, duet run (cache hit) {:.1} ms",
        ms(start_pkg),
        ms(start_run)
    );
    eprintln!(
        "firewall, per packet over {} frames (best of 3): package {pkt_pkg:.0} ns, duet run {pkt_run:.0} ns ({:.2}x)",
        big.metadata().map(|_| "the corpus x200").unwrap_or(""),
        pkt_pkg / pkt_run
    );
    eprintln!("duet mesh: {}", mesh_bin.display());
    eprintln!(
        "hello, spawn to first 200 (median of 5): package {:.1} ms (listening after {:.1} ms), duet mesh {:.1} ms",
        ms(first_pkg),
        ms(ready_pkg),
        ms(first_mesh)
    );
    eprintln!(
        "hello, per request (2000 sequential GET / on one HTTP/1.1 connection): package {:.0} us, duet mesh {:.0} us ({:.2}x)",
        us(req_pkg),
        us(req_mesh),
        req_pkg.as_secs_f64() / req_mesh.as_secs_f64()
    );
}
