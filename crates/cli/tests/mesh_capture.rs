//! Transparent capture end to end (`capture:` in docs/MESH.md; needs root, BPF and cgroup v2):
//! a client process placed in a test-owned cgroup connects to a backend on loopback; with
//! `duet mesh run` capturing that cgroup the request goes through the sidecar (the backend sees
//! the `x-request-id` the sidecar adds), without it the request goes direct. The sidecar's TCP
//! monitoring shows the client's connection on /metrics (opened, closed, bytes, RTT) and as
//! `duet mesh events`. A sidecar killed with SIGKILL leaves the cgroup uncaptured, and the next
//! one starts over its pins. A second test runs the same in network namespaces (application and
//! sidecar in one, the backend in another behind a veth pair), with a Proxy-Wasm filter on the
//! captured path, and a third captures inbound: a client in another namespace connecting to the
//! application's port reaches it through the sidecar's inbound listener. Afterwards nothing is
//! left: no pins, no programs on the cgroup or namespace, no cgroup, no namespace.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod mesh_support;
use mesh_support::*;

mod gate;
use gate::skip;
mod netns;
use netns::{Netns, veth_pair};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// A cgroup v2 directory of the test, removed (after moving its processes out) on drop.
struct Cgroup(PathBuf, PathBuf);

impl Cgroup {
    fn create(root: &Path, name: &str) -> Cgroup {
        let path = root.join(name);
        let _ = std::fs::remove_dir(&path);
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        Cgroup(path, root.to_owned())
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // A cgroup with processes cannot be removed: move any stragglers to the root first.
        if let Ok(pids) = std::fs::read_to_string(self.0.join("cgroup.procs")) {
            for pid in pids.lines() {
                let _ = std::fs::write(self.1.join("cgroup.procs"), pid);
            }
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// A directory removed on drop (the sidecar's pin directory, should it be left behind).
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed on drop.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `curl` as a process of `cgroup` (it writes its own pid into `cgroup.procs` first) and
/// returns the body it got.
fn curl_in(cgroup: &Path, url: &str) -> String {
    let script = format!("echo $$ > {}/cgroup.procs && exec curl -sS --max-time 10 {url}", cgroup.display());
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "curl {url}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The headers the backend's `/headers` saw.
fn seen_headers(body: &str) -> serde_json::Value {
    let doc: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    doc["headers"].clone()
}

fn wait_for_port(port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect(addr(port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The cgroup v2 root when this process may attach BPF programs to cgroups and run curl;
/// `None` after saying why not (a failure under `CI=true`).
fn preconditions() -> Option<PathBuf> {
    if let Err(err) = duet_kernel::check_access() {
        skip(&format!("capture needs BPF access: {err}"));
        return None;
    }
    let Some(cgroup_root) = duet_kernel::cgroup2_root() else {
        skip("capture needs cgroup v2 mounted (no cgroup2 in /proc/self/mounts)");
        return None;
    };
    if Command::new("curl").arg("--version").output().is_err() {
        skip("the client is curl; apt-get install curl");
        return None;
    }
    Some(cgroup_root)
}

/// The capture programs, built as the user builds them.
fn capture_object() -> PathBuf {
    let dir = root().join("examples/capture");
    let out = duet().args(["build", "--quiet"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "duet build capture:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(!dir.join("target/duet/capture.wasm").exists(), "a kernel-only crate gets no .wasm");
    dir.join("target/duet/capture.bpf.o")
}

/// A sidecar config capturing `cgroup`'s connections to `backend_port` into listener `outbound`
/// (with `filters`, YAML lines of its filter list, possibly none), which forwards each to its
/// original destination.
fn capture_config(
    cgroup: &Path,
    object: &Path,
    pins: &Path,
    backend_port: u16,
    capture_port: u16,
    admin: u16,
    filters: &str,
) -> String {
    capture_config_with(cgroup, object, pins, backend_port, capture_port, admin, filters, None)
}

/// Listener `inbound` on port `.0` (with the filter lines `.2`) taking the connections arriving
/// for application port `.1`.
type Inbound<'a> = (u16, u16, &'a str);

/// [`capture_config`], with inbound capture when `inbound` is given.
#[allow(clippy::too_many_arguments, reason = "a test's config, spelled out at the call")]
fn capture_config_with(
    cgroup: &Path,
    object: &Path,
    pins: &Path,
    backend_port: u16,
    capture_port: u16,
    admin: u16,
    filters: &str,
    inbound: Option<Inbound<'_>>,
) -> String {
    const PASSTHROUGH: &str = "      - { prefix: \"/\", cluster: passthrough }\n";
    let (inbound_capture, inbound_listener) = match inbound {
        Some((port, app_port, filters)) => (
            format!("  inbound: {{ listener: inbound, ports: [{app_port}] }}\n"),
            listener("inbound", port, filters, PASSTHROUGH),
        ),
        None => (String::new(), String::new()),
    };
    format!(
        "admin: {{ address: \"127.0.0.1:{admin}\" }}\nworkers: 1\n\
         capture:\n  cgroup: {}\n  listener: outbound\n  bpf: {}\n  ports: [{backend_port}]\n  pin_dir: {}\n\
         {inbound_capture}listeners:\n{}{inbound_listener}clusters:\n  - name: passthrough\n    original_destination: true\n",
        cgroup.display(),
        object.display(),
        pins.display(),
        listener("outbound", capture_port, filters, PASSTHROUGH),
    )
}

/// A value of `/metrics` text (`-1` when absent).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(-1.0)
}

/// A loopback capture test's parts: the capture object, a cgroup and a pin directory of the
/// test's own, and a backend.
struct Loopback {
    object: PathBuf,
    cgroup: Cgroup,
    pins: RemoveDir,
    backend: Reap,
    backend_port: u16,
}

/// Sets up a loopback capture test called `name`; `None` (after saying why) when capture cannot
/// run here.
fn loopback(name: &str) -> Option<Loopback> {
    let cgroup_root = preconditions()?;
    let object = capture_object();
    let tag = format!("duet-test-{name}-{}", std::process::id());
    let cgroup = Cgroup::create(&cgroup_root, &tag);
    let pins = RemoveDir(PathBuf::from("/sys/fs/bpf").join(&tag));
    let backend_port = free_port();
    let backend = Reap(
        duet()
            .args(["mesh", "backend", "--address", &format!("127.0.0.1:{backend_port}"), "--name", "b1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(backend_port);
    Some(Loopback { object, cgroup, pins, backend, backend_port })
}

/// Stops the sidecar with SIGTERM and checks that it detached its programs and removed its pins
/// (the cgroup's requests to `url` go direct again), then that the cgroup goes.
fn stop_and_check_cleanup(mut mesh: Mesh, pins: RemoveDir, cgroup: Cgroup, backend: Reap, url: &str) {
    mesh.signal("-TERM");
    let child = mesh.child.as_mut().unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < Duration::from_secs(20), "duet mesh did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    mesh.child = None;
    let log = mesh.log_text();
    assert!(log.contains("capture detached"), "{log}");
    assert!(!pins.0.exists(), "pins left behind: {}", pins.0.display());
    let after = seen_headers(&curl_in(&cgroup.0, url));
    assert!(after.get("x-request-id").is_none(), "still captured after the sidecar stopped: {after}");
    drop(mesh);
    drop(backend);
    let path = cgroup.0.clone();
    drop(cgroup);
    assert!(!path.exists(), "cgroup {} left behind", path.display());
}

#[test]
fn a_captured_cgroup_goes_through_the_sidecar_and_nothing_is_left_after_it() {
    let Some(Loopback { object, cgroup, pins, backend, backend_port }) = loopback("capture") else { return };
    let url = format!("http://127.0.0.1:{backend_port}/headers");

    // Without the sidecar: straight to the backend.
    let direct = seen_headers(&curl_in(&cgroup.0, &url));
    assert!(direct.get("x-request-id").is_none(), "went through a proxy: {direct}");

    let config = |capture_port: u16, admin: u16| {
        capture_config(&cgroup.0, &object, &pins.0, backend_port, capture_port, admin, "")
    };

    // A sidecar killed with SIGKILL: its links die with it, so the cgroup goes direct again; the
    // map pins stay until the next sidecar with that directory starts.
    let (port, admin) = (free_port(), free_port());
    let killed_dir = temp_dir("capture-killed");
    let mut killed = Mesh::start(&killed_dir, &config(port, admin), admin);
    let via = seen_headers(&curl_in(&cgroup.0, &url));
    assert!(via.get("x-request-id").is_some(), "captured: {via}");
    killed.signal("-KILL");
    let _ = killed.child.take().unwrap().wait();
    let after_kill = seen_headers(&curl_in(&cgroup.0, &url));
    assert!(after_kill.get("x-request-id").is_none(), "still captured after SIGKILL: {after_kill}");
    assert!(pins.0.join("maps/BY_PORT").exists(), "a killed sidecar cannot remove its pins");
    drop(killed);

    let (capture_port, admin) = (free_port(), free_port());
    let mesh_dir = temp_dir("capture");
    let mesh = Mesh::start(&mesh_dir, &config(capture_port, admin), admin);
    assert!(pins.0.join("maps/BY_PORT").exists(), "maps pinned under the sidecar's directory");
    assert!(pins.0.join("maps/TCP_EVENTS").exists(), "the monitoring maps too");
    let events = events_cli(mesh.admin, "tcp", 2); // one connection opened and closed

    // Through the sidecar: it answers for the backend, which sees the sidecar's headers.
    let via = seen_headers(&curl_in(&cgroup.0, &url));
    assert!(via.get("x-request-id").is_some_and(|v| v.as_str().is_some_and(|s| !s.is_empty())), "{via}");
    assert_eq!(via["x-forwarded-for"], "127.0.0.1", "{via}");

    // TCP monitoring: curl's connection (to the capture listener, where connect4 sent it) was
    // opened and closed, with its RTT and bytes, on /metrics and as events.
    let out = events.wait_with_output().unwrap();
    assert!(out.status.success(), "duet mesh events: {}", String::from_utf8_lossy(&out.stderr));
    let events: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.iter().map(|e| e["event"].as_str().unwrap_or("")).collect::<Vec<_>>(), ["opened", "closed"]);
    let closed = &events[1];
    assert_eq!(closed["remote"], format!("127.0.0.1:{capture_port}"), "{closed}");
    assert_eq!(closed["local"], events[0]["local"]);
    assert!(closed["srtt_us"].as_u64().is_some_and(|us| us > 0), "{closed}");
    assert!(closed["rtt_samples"].as_u64().is_some_and(|n| n > 0), "{closed}");
    let (received, acked) = (closed["bytes_received"].as_u64().unwrap(), closed["bytes_acked"].as_u64().unwrap());
    assert!(received > 100 && acked > 50, "a request out and a JSON answer in: {closed}");
    let start = Instant::now();
    let metrics = loop {
        let text = mesh.admin_get("/metrics");
        if metric(&text, "duet_mesh_tcp_connections_closed_total") >= 1.0 || start.elapsed() > Duration::from_secs(5) {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(metric(&metrics, "duet_mesh_tcp_connections_opened_total"), 1.0, "{metrics}");
    assert_eq!(metric(&metrics, "duet_mesh_tcp_connections_closed_total"), 1.0, "{metrics}");
    assert_eq!(metric(&metrics, "duet_mesh_tcp_received_bytes_total"), received as f64, "{metrics}");
    assert_eq!(metric(&metrics, "duet_mesh_tcp_acked_bytes_total"), acked as f64, "{metrics}");
    assert!(metric(&metrics, "duet_mesh_tcp_rtt_samples_total") >= 1.0, "{metrics}");
    assert_eq!(metric(&metrics, "duet_mesh_tcp_srtt_seconds_count"), 1.0, "{metrics}");
    // A process outside the cgroup (this test) still goes direct.
    let (_, _, outside) = raw_get(addr(backend_port), "/headers").unwrap();
    assert!(seen_headers(&outside).get("x-request-id").is_none(), "{outside}");
    // Connecting to the capture listener directly is no captured connection: 503.
    let (status, _, _) = raw_get(addr(capture_port), "/headers").unwrap();
    assert_eq!(status, 503, "{}", mesh.log_text());

    // Stopping the sidecar detaches the programs and removes the pins.
    stop_and_check_cleanup(mesh, pins, cgroup, backend, &url);
}

/// With `short_circuit: true` the sidecar links the `sk_msg` program to the capture's sockhash:
/// the client's requests on one kept-alive connection still go through the sidecar (the backend
/// sees its header on every one), and the sends between the client's socket and the sidecar's
/// are passed socket to socket, counted on /metrics. An IPv6 client socket dialling a mapped
/// IPv4 address is captured as well (connect6).
#[test]
fn with_short_circuit_the_local_hop_is_passed_socket_to_socket() {
    let Some(Loopback { object, cgroup, pins, backend, backend_port }) = loopback("shortcut") else { return };

    let (capture_port, admin) = (free_port(), free_port());
    let config = capture_config(&cgroup.0, &object, &pins.0, backend_port, capture_port, admin, "")
        .replace("  pin_dir:", "  short_circuit: true\n  pin_dir:");
    let mesh_dir = temp_dir("capture-shortcut");
    let mesh = Mesh::start(&mesh_dir, &config, admin);

    // Three requests on one connection (curl reuses it), each answered through the sidecar.
    let url = format!("http://127.0.0.1:{backend_port}/headers");
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec curl -sS --max-time 10 {url} -o /dev/stdout {url} -o /dev/stdout {url}",
        cgroup.0.display()
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    let bodies = String::from_utf8(out.stdout).unwrap();
    let docs: Vec<serde_json::Value> =
        serde_json::Deserializer::from_str(&bodies).into_iter().map(|d| d.unwrap()).collect();
    assert_eq!(docs.len(), 3, "{bodies}");
    for doc in &docs {
        assert!(doc["headers"].get("x-request-id").is_some(), "not through the sidecar: {doc}");
    }

    let start = Instant::now();
    let metrics = loop {
        let text = mesh.admin_get("/metrics");
        if metric(&text, "duet_mesh_tcp_connections_closed_total") >= 1.0 || start.elapsed() > Duration::from_secs(5) {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // At least the three answers went from the sidecar's socket straight to curl's.
    let messages = metric(&metrics, "duet_mesh_tcp_short_circuit_messages_total");
    assert!(messages >= 3.0, "{metrics}\n{}", mesh.log_text());
    let bytes = metric(&metrics, "duet_mesh_tcp_short_circuit_bytes_total");
    assert!(bytes > 3.0 * 100.0, "three JSON answers: {metrics}");
    assert!(pins.0.join("maps/SOCKETS").exists(), "the sockhash is pinned with the other maps");

    // An IPv6 socket dialling the backend's IPv4 address (mapped, as dual-stack runtimes do) is
    // captured too, by the connect6 program.
    let mapped = format!("http://[::ffff:127.0.0.1]:{backend_port}/headers");
    let script = format!("echo $$ > {}/cgroup.procs && exec curl -gsS --max-time 10 {mapped}", cgroup.0.display());
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "curl {mapped}: {}", String::from_utf8_lossy(&out.stderr));
    let via6 = seen_headers(&String::from_utf8_lossy(&out.stdout));
    assert!(via6.get("x-request-id").is_some(), "an IPv6 socket to a mapped address went direct: {via6}");

    stop_and_check_cleanup(mesh, pins, cgroup, backend, &url);
}

/// `curl -sS` inside network namespace `ns`, as a process of `cgroup` when one is given; the body
/// (`None` when curl failed).
fn curl_ns(ns: &Netns, cgroup: Option<&Path>, url: &str) -> Option<String> {
    let join = cgroup.map(|c| format!("echo $$ > {}/cgroup.procs && ", c.display())).unwrap_or_default();
    let script = format!("{join}exec curl -sS --max-time 10 {url}");
    let out = ns.command("sh").args(["-c", &script]).output().unwrap();
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A namespace capture test's parts: the capture object, the tagging Proxy-Wasm filter,
/// namespaces A and B joined by a veth pair, and a cgroup and pin directory of the test's own.
struct Namespaces {
    object: PathBuf,
    filter: PathBuf,
    a: Netns,
    b: Netns,
    cgroup: Cgroup,
    pins: RemoveDir,
}

/// Sets up a namespace capture test called `name`; `None` (after saying why) when capture cannot
/// run here.
fn namespaces(name: &str) -> Option<Namespaces> {
    let cgroup_root = preconditions()?;
    let object = capture_object();
    let filter = filters("wasm32-wasip1").join("http_headers.wasm");
    let (a, b) = veth_pair();
    let tag = format!("duet-test-{name}-{}", std::process::id());
    let cgroup = Cgroup::create(&cgroup_root, &tag);
    let pins = RemoveDir(PathBuf::from("/sys/fs/bpf").join(&tag));
    Some(Namespaces { object, filter, a, b, cgroup, pins })
}

/// `duet mesh backend` inside `ns` on `address`, killed on drop.
fn backend_in(ns: &Netns, address: &str, name: &str) -> Reap {
    Reap(
        ns.command(DUET)
            .args(["mesh", "backend", "--address", address, "--name", name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// The headers the backend at `url` saw in the first request from `ns` (in `cgroup`) it answers,
/// waiting up to 30 s for it to start.
fn first_answer(ns: &Netns, cgroup: Option<&Path>, url: &str) -> serde_json::Value {
    let start = Instant::now();
    loop {
        if let Some(body) = curl_ns(ns, cgroup, url) {
            return seen_headers(&body);
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{url} never answered in {}", ns.0);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The setup: the application (a curl in a test cgroup) and its sidecar in network
/// namespace A, the backend in namespace B behind a veth pair. Captured, the request crosses the
/// sidecar, whose Proxy-Wasm filter's header the backend sees, and the sidecar's /metrics show
/// the application's connection (opened, closed, RTT, bytes); after SIGTERM the application goes
/// direct again, and the namespaces, cgroup and pins are gone at the end.
#[test]
fn in_network_namespaces_the_captured_path_crosses_the_sidecars_filter_and_shows_on_metrics() {
    let Some(Namespaces { object, filter, a, b, cgroup, pins }) = namespaces("capture-ns") else { return };

    let backend_port = free_port();
    let _backend = backend_in(&b, &format!("10.99.0.2:{backend_port}"), "b1");
    let url = format!("http://10.99.0.2:{backend_port}/headers");
    let direct = first_answer(&a, Some(&cgroup.0), &url);
    assert!(direct.get("x-request-tag").is_none(), "went through a proxy: {direct}");

    let dir = temp_dir("capture-ns");
    let (capture_port, admin_port) = (free_port(), free_port());
    let config = dir.join("mesh.yaml");
    let tagger =
        format!("      - name: tagger\n        wasm: \"{}\"\n        config: through-the-sidecar\n", filter.display());
    let yaml = capture_config(&cgroup.0, &object, &pins.0, backend_port, capture_port, admin_port, &tagger);
    std::fs::write(&config, yaml).unwrap();
    let log = dir.join("mesh.log");
    let mut sidecar = sidecar_in(&a, &config, &log, admin_port);
    let admin = |path: &str| curl_ns(&a, None, &format!("http://127.0.0.1:{admin_port}{path}"));

    // Captured: through the sidecar's filter, to the backend across the veth.
    let via = seen_headers(&curl_ns(&a, Some(&cgroup.0), &url).expect("the captured request"));
    assert_eq!(via["x-request-tag"], "through-the-sidecar", "{via}");
    assert!(via.get("x-request-id").is_some(), "{via}");
    let start = Instant::now();
    let metrics = loop {
        let text = admin("/metrics").unwrap_or_default();
        if metric(&text, "duet_mesh_tcp_connections_closed_total") >= 1.0 || start.elapsed() > Duration::from_secs(5) {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(metric(&metrics, "duet_mesh_tcp_connections_opened_total"), 1.0, "{metrics}");
    assert_eq!(metric(&metrics, "duet_mesh_tcp_connections_closed_total"), 1.0, "{metrics}");
    assert!(metric(&metrics, "duet_mesh_tcp_received_bytes_total") > 100.0, "{metrics}");
    assert!(metric(&metrics, "duet_mesh_tcp_acked_bytes_total") > 50.0, "{metrics}");
    assert_eq!(metric(&metrics, "duet_mesh_tcp_srtt_seconds_count"), 1.0, "{metrics}");
    assert!(metric(&metrics, "duet_mesh_tcp_srtt_seconds_sum") > 0.0, "an RTT was measured: {metrics}");

    // SIGTERM: the programs go with the sidecar, and the application goes direct again.
    stop_sidecar(&mut sidecar);
    assert!(!pins.0.exists(), "pins left behind: {}", pins.0.display());
    let after = seen_headers(&curl_ns(&a, Some(&cgroup.0), &url).expect("the direct request"));
    assert!(after.get("x-request-tag").is_none(), "still captured after the sidecar stopped: {after}");

    drop(sidecar);
    drop(_backend);
    check_gone(cgroup, (a, b));
}

/// `duet mesh run --config <config>` inside `ns`, logging to `log`, once its admin endpoint (on
/// `admin_port`) says it is ready.
fn sidecar_in(ns: &Netns, config: &Path, log: &Path, admin_port: u16) -> Reap {
    let mut sidecar = Reap(
        ns.command(DUET)
            .env("XDG_CACHE_HOME", Path::new(env!("CARGO_TARGET_TMPDIR")).join("xdg-cache"))
            .args(["mesh", "run", "--config"])
            .arg(config)
            .args(["--log", "info"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while curl_ns(ns, None, &format!("http://127.0.0.1:{admin_port}/ready")).is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(60) && sidecar.0.try_wait().unwrap().is_none(),
            "duet mesh not ready in {}:\n{}",
            ns.0,
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    sidecar
}

/// Stops the sidecar with SIGTERM and waits for it to exit.
fn stop_sidecar(sidecar: &mut Reap) {
    assert!(Command::new("kill").args(["-TERM", &sidecar.0.id().to_string()]).status().unwrap().success());
    let start = Instant::now();
    while sidecar.0.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < Duration::from_secs(20), "duet mesh did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes the test's cgroup and namespaces and checks that they are gone.
fn check_gone(cgroup: Cgroup, namespaces: (Netns, Netns)) {
    let names = (namespaces.0.0.clone(), namespaces.1.0.clone());
    let path = cgroup.0.clone();
    drop(cgroup);
    drop(namespaces);
    assert!(!path.exists(), "cgroup {} left behind", path.display());
    let left =
        String::from_utf8_lossy(&Command::new("ip").args(["netns", "list"]).output().unwrap().stdout).into_owned();
    assert!(!left.contains(&names.0) && !left.contains(&names.1), "namespaces left behind: {left}");
}

/// Inbound capture: the application (a backend listening on every address of namespace A) and
/// its sidecar in A, a client in namespace B. The client's connection to the application's
/// address and port is given to the sidecar's inbound listener (bound to loopback) by the
/// `inbound` sk_lookup program, and reaches the application through the sidecar's Proxy-Wasm
/// filter; a connection to the same port from A's loopback goes direct; after SIGTERM the
/// client goes direct again, and nothing is left.
#[test]
fn in_network_namespaces_arriving_connections_go_through_the_sidecars_inbound_listener() {
    let Some(Namespaces { object, filter, a, b, cgroup, pins }) = namespaces("inbound") else { return };

    let app_port = free_port();
    let app = backend_in(&a, &format!("0.0.0.0:{app_port}"), "app");
    let url = format!("http://10.99.0.1:{app_port}/headers");
    let direct = first_answer(&b, None, &url);
    assert!(direct.get("x-request-tag").is_none(), "went through a proxy: {direct}");

    let dir = temp_dir("capture-inbound");
    let (capture_port, inbound_port, admin_port, unused) = (free_port(), free_port(), free_port(), free_port());
    let tagger = format!(
        "      - name: tagger\n        wasm: \"{}\"\n        config: arrived-through-the-sidecar\n",
        filter.display()
    );
    let inbound = Some((inbound_port, app_port, tagger.as_str()));
    let yaml = capture_config_with(&cgroup.0, &object, &pins.0, unused, capture_port, admin_port, "", inbound);
    let config = dir.join("mesh.yaml");
    std::fs::write(&config, yaml).unwrap();
    let log = dir.join("mesh.log");
    let mut sidecar = sidecar_in(&a, &config, &log, admin_port);

    // From B: given to the sidecar, whose filter's header the application sees.
    let via = seen_headers(&curl_ns(&b, None, &url).expect("the arriving request"));
    assert_eq!(via["x-request-tag"], "arrived-through-the-sidecar", "{via}");
    assert!(via.get("x-request-id").is_some(), "{via}");
    assert_eq!(via["x-forwarded-for"], "10.99.0.2", "the client's address: {via}");
    // From A's loopback: direct.
    let local = seen_headers(&curl_ns(&a, None, &format!("http://127.0.0.1:{app_port}/headers")).unwrap());
    assert!(local.get("x-request-tag").is_none(), "loopback was taken: {local}");
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(log_text.contains("inbound capture attached"), "{log_text}");
    // The monitor reads the program's count into /metrics (every 200 ms).
    let metrics = || curl_ns(&a, None, &format!("http://127.0.0.1:{admin_port}/metrics")).unwrap_or_default();
    let start = Instant::now();
    let mut text = metrics();
    while metric(&text, "duet_mesh_tcp_inbound_captured_total") < 1.0 && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
        text = metrics();
    }
    assert_eq!(metric(&text, "duet_mesh_tcp_inbound_captured_total"), 1.0, "one connection taken: {text}");

    // A reload that would move the inbound listener is refused: the socket filed for the
    // `inbound` program would close, and arriving connections would no longer be taken.
    let moved = Some((free_port(), app_port, tagger.as_str()));
    let yaml = capture_config_with(&cgroup.0, &object, &pins.0, unused, capture_port, admin_port, "", moved);
    std::fs::write(&config, yaml).unwrap();
    let reload = curl_ns(&a, None, &format!("-X POST http://127.0.0.1:{admin_port}/reload")).unwrap_or_default();
    assert!(reload.contains("listener `inbound` is captured"), "the reload was not refused: {reload}");
    let still = seen_headers(&curl_ns(&b, None, &url).expect("the arriving request after the refused reload"));
    assert_eq!(still["x-request-tag"], "arrived-through-the-sidecar", "{still}");

    stop_sidecar(&mut sidecar);
    assert!(!pins.0.exists(), "pins left behind: {}", pins.0.display());
    let after = seen_headers(&curl_ns(&b, None, &url).expect("the direct request after the sidecar"));
    assert!(after.get("x-request-tag").is_none(), "still taken after the sidecar stopped: {after}");

    drop(sidecar);
    drop(app);
    check_gone(cgroup, (a, b));
}
