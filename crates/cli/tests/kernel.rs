//! The kernel commands with real traffic: `duet attach` programs to XDP, TC, cgroup and tracing
//! hooks, send UDP and TCP between network namespaces joined by a veth pair (or over loopback
//! from inside a cgroup), and check verdicts, map counters, map edits on a running program,
//! ring-buffer events, `ps` and `detach`.
//!
//! Needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN for namespaces and cgroups), iproute2,
//! clang (for the fixture crates/kernel/tests/fixtures/hooks.bpf.c) and bash (its /dev/tcp is
//! the client that runs inside a cgroup). Elsewhere each test says why it skipped; with
//! `CI=true` a missing requirement is a failure.
//!
//! Every test pins under its own root (`DUET_PIN_ROOT=/sys/fs/bpf/duetpins<pid>x<n>`) and owns
//! RAII guards for its namespaces, cgroups, child processes and pins, so everything is removed
//! also when an assertion fails.

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use duet_kernel::NetnsGuard;
use serde_json::Value as Json;

mod gate;
use gate::{skip, unique};
mod netns;
use netns::{Netns, veth_pair};

const A_ADDR: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const B_ADDR: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
/// 10.99.0.1 as the firewall's BLOCKLIST key (network byte order).
const A_KEY: &str = "0a630001";

/// Root with BPF access, and iproute2. Otherwise skips and returns false.
fn privileged() -> bool {
    if let Err(err) = duet_kernel::check_access() {
        skip(&format!("the kernel tests need BPF access: {err}"));
        return false;
    }
    if Command::new("ip").arg("-V").output().is_err() {
        skip("iproute2 (`ip`) is needed to create network namespaces; apt-get install iproute2");
        return false;
    }
    true
}

fn firewall_object() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bpf/xdp_rust_firewall.o");
    if path.exists() {
        Some(path)
    } else {
        skip(&format!("{} is missing; run `cargo xtask build-bpf`", path.display()));
        None
    }
}

/// Compiles crates/kernel/tests/fixtures/hooks.bpf.c into `dir`; `None` after a skip without clang.
fn hooks_object(dir: &Path, defines: &[&str]) -> Option<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kernel/tests/fixtures/hooks.bpf.c");
    let out = dir.join(format!("hooks{}.o", defines.join("_")));
    let multiarch = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let mut cmd = Command::new("clang");
    cmd.args(["-O2", "-g", "-target", "bpf", &multiarch]);
    for define in defines {
        cmd.arg(format!("-D{define}"));
    }
    cmd.arg("-c").arg(&src).arg("-o").arg(&out);
    match cmd.output() {
        Ok(output) => {
            assert!(output.status.success(), "clang failed:\n{}", String::from_utf8_lossy(&output.stderr));
            Some(out)
        }
        Err(err) => {
            skip(&format!("clang is needed to build {} ({err}); apt-get install clang libbpf-dev", src.display()));
            None
        }
    }
}

// === guards ===

/// A private pin root and a scratch directory; on drop, `duet detach all` and both removed.
struct Duet {
    root: PathBuf,
    scratch: PathBuf,
}

impl Duet {
    fn new() -> Self {
        let name = unique("pins");
        let scratch = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&scratch).unwrap();
        Self { root: PathBuf::from("/sys/fs/bpf").join(name), scratch }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_duet"));
        cmd.args(args).env("DUET_PIN_ROOT", &self.root);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run duet")
    }

    /// Runs duet and returns its stdout; panics with its stderr on failure.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "duet {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs duet, expects failure, returns its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "duet {args:?} succeeded:\n{}", String::from_utf8_lossy(&out.stdout));
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(!stderr.contains("os error"), "a raw errno leaked: {stderr}");
        stderr
    }

    fn json(&self, args: &[&str]) -> Json {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    /// `duet attach ...` and the id it prints.
    fn attach(&self, args: &[&str]) -> String {
        let mut full = vec!["attach"];
        full.extend_from_slice(args);
        self.ok(&full).trim().to_owned()
    }

    /// One map of `duet maps <id> --json`.
    fn map(&self, id: &str, map: &str) -> Json {
        self.json(&["maps", id, "--json"])[map].clone()
    }
}

impl Drop for Duet {
    fn drop(&mut self) {
        let _ = self.run(&["detach", "all"]);
        let _ = std::fs::remove_dir_all(&self.root);
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// A cgroup v2 directory, removed on drop (after its processes exited).
struct Cgroup(PathBuf);

impl Cgroup {
    fn new() -> Option<Self> {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        let Some(root) = mounts.lines().find_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            (fields.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(fields[1]))
        }) else {
            skip("no cgroup v2 hierarchy is mounted (mount -t cgroup2 none /sys/fs/cgroup)");
            return None;
        };
        let dir = root.join(unique("cg"));
        std::fs::create_dir(&dir).unwrap();
        Some(Self(dir))
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // A process that just exited may still be counted for a moment.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A child process, killed on drop.
struct ChildGuard(Child);

impl ChildGuard {
    /// Waits up to `timeout` for the exit; returns the stdout.
    fn wait_output(mut self, timeout: Duration) -> (bool, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                let mut out = String::new();
                if let Some(stdout) = self.0.stdout.as_mut() {
                    stdout.read_to_string(&mut out).unwrap();
                }
                return (status.success(), out);
            }
            assert!(Instant::now() < deadline, "child did not finish within {timeout:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `f` on a thread inside network namespace `ns`: sockets it creates live there.
fn in_netns<T: Send>(ns: &Netns, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let _guard = NetnsGuard::enter(&ns.0).expect("enter the test namespace");
            f()
        })
        .join()
        .unwrap()
    })
}

// === traffic ===

/// A UDP receiver in B and a sender in A.
struct Udp {
    rx: UdpSocket,
    tx: UdpSocket,
    port: u16,
}

impl Udp {
    fn new(a: &Netns, b: &Netns, port: u16) -> Self {
        let rx = in_netns(b, || UdpSocket::bind((B_ADDR, port)).unwrap());
        let tx = in_netns(a, || UdpSocket::bind((A_ADDR, 0)).unwrap());
        Self { rx, tx, port }
    }

    /// Sends `n` datagrams of `payload` bytes from A to B and counts how many B receives.
    fn round(&self, n: usize, payload: usize) -> usize {
        for _ in 0..n {
            self.tx.send_to(&vec![0x5a; payload], (B_ADDR, self.port)).unwrap();
        }
        let mut got = 0;
        let mut buf = [0u8; 2048];
        // Arrivals are quick on a veth pair; 300 ms of silence means the rest were dropped.
        self.rx.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        while got < n {
            match self.rx.recv_from(&mut buf) {
                Ok(_) => got += 1,
                Err(_) => break,
            }
        }
        got
    }
}

/// Whether a TCP connection from A to a listener in B gets through (and carries bytes).
fn tcp_connects(a: &Netns, listener: &TcpListener, port: u16) -> bool {
    let connected =
        in_netns(a, || TcpStream::connect_timeout(&SocketAddr::from((B_ADDR, port)), Duration::from_millis(700)));
    let Ok(mut stream) = connected else { return false };
    std::io::Write::write_all(&mut stream, b"ping").unwrap();
    let (mut peer, _) = accept_within(listener, Duration::from_secs(2)).expect("the connection was accepted");
    let mut buf = [0u8; 4];
    peer.read_exact(&mut buf).unwrap();
    &buf == b"ping"
}

fn accept_within(listener: &TcpListener, timeout: Duration) -> Option<(TcpStream, SocketAddr)> {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match listener.accept() {
            Ok((stream, addr)) => {
                stream.set_nonblocking(false).unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                return Some((stream, addr));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    None
}

/// A u64 little-endian map value as hex.
fn u64_hex(v: u64) -> String {
    v.to_le_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn u64_of(value: &Json) -> u64 {
    let hex = value.as_str().unwrap_or_else(|| panic!("not a hex value: {value}"));
    let bytes: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    u64::from_le_bytes(bytes.try_into().unwrap())
}

fn port_key(port: u16) -> String {
    port.to_le_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

// === XDP ===

/// The firewall from the corpus on B's veth: UDP and TCP pass, then a blocklist entry added with
/// `duet maps set` on the running program drops them, deleting it lets them pass again, and
/// `duet detach` removes the program and every pin.
fn firewall_scenario(skb: bool) {
    if !privileged() {
        return;
    }
    let Some(object) = firewall_object() else { return };
    let object = object.to_str().unwrap();
    let (a, b) = veth_pair();
    let duet = Duet::new();
    let mut args = vec![object, "--program", "xdp_rust_firewall", "--xdp", "vb", "--netns", &b.0];
    if skb {
        args.push("--skb");
    }
    let id = duet.attach(&args);

    let ps = duet.json(&["ps", "--json"]);
    let row = ps.as_array().unwrap().iter().find(|r| r["id"] == id.as_str()).expect("ps lists the attachment");
    assert_eq!(row["program"], "xdp_rust_firewall");
    assert_eq!(row["hook"], if skb { "xdp (skb)" } else { "xdp" });
    assert_eq!(row["target"], "vb");
    assert_eq!(row["netns"], b.0.as_str());
    assert_eq!(row["attached"], true);
    let link = Command::new("ip").args(["-n", &b.0, "link", "show", "vb"]).output().unwrap();
    let link = String::from_utf8_lossy(&link.stdout);
    assert!(link.contains(if skb { "xdpgeneric" } else { "prog/xdp" }), "{link}");

    let udp = Udp::new(&a, &b, 9000);
    let listener = in_netns(&b, || TcpListener::bind((B_ADDR, 9001)).unwrap());

    // 1. Everything passes; the per-port byte counter sees exactly our five 52-byte frames
    //    (14 Ethernet + 20 IPv4 + 8 UDP + 10 payload).
    assert_eq!(udp.round(5, 10), 5, "UDP passes before any blocklist entry");
    let port_9000 = "2328";
    assert_eq!(duet.map(&id, "PORT_BYTES")[port_9000], u64_hex(5 * 52));
    assert!(tcp_connects(&a, &listener, 9001), "TCP passes before any blocklist entry");
    let counters = duet.map(&id, "COUNTERS");
    assert_eq!(u64_of(&counters["01000000"]), 0, "nothing dropped yet");
    assert!(u64_of(&counters["02000000"]) >= 5 + 3, "passes counted: {counters}");

    // 2. Block A while the program runs.
    duet.ok(&["maps", "set", &id, "BLOCKLIST", A_KEY, "01"]);
    assert_eq!(duet.map(&id, "BLOCKLIST")[A_KEY], "01");
    assert_eq!(udp.round(5, 10), 0, "UDP from a blocklisted source is dropped");
    assert!(!tcp_connects(&a, &listener, 9001), "TCP from a blocklisted source is dropped");
    let counters = duet.map(&id, "COUNTERS");
    let dropped = u64_of(&counters["01000000"]);
    assert!(dropped > 5, "5 datagrams and at least one SYN dropped, got {dropped}");
    assert_eq!(duet.map(&id, "PORT_BYTES")[port_9000], u64_hex(5 * 52), "drops are not counted per port");

    // 3. Unblock.
    duet.ok(&["maps", "delete", &id, "BLOCKLIST", A_KEY]);
    assert_eq!(duet.map(&id, "BLOCKLIST"), serde_json::json!({}));
    assert_eq!(udp.round(3, 10), 3, "UDP passes again");
    assert!(tcp_connects(&a, &listener, 9001), "TCP passes again");
    assert_eq!(duet.map(&id, "PORT_BYTES")[port_9000], u64_hex(8 * 52));

    // 4. Block again, then detach: the program is gone, so traffic passes, and no pin is left.
    duet.ok(&["maps", "set", &id, "BLOCKLIST", A_KEY, "01"]);
    assert_eq!(udp.round(2, 10), 0);
    let program_id = row["kernel_program_id"].as_u64().unwrap();
    duet.ok(&["detach", &id]);
    assert_eq!(udp.round(4, 10), 4, "after detach nothing filters");
    assert_eq!(duet.json(&["ps", "--json"]), serde_json::json!([]));
    let left: Vec<_> = std::fs::read_dir(&duet.root).unwrap().collect();
    assert!(left.is_empty(), "pins left behind: {left:?}");
    let link = Command::new("ip").args(["-n", &b.0, "link", "show", "vb"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&link.stdout).contains("xdp"), "XDP still attached");
    if let Ok(out) = Command::new("bpftool").args(["prog", "show", "id", &program_id.to_string()]).output() {
        assert!(!out.status.success(), "program {program_id} is still loaded");
    }
    let err = duet.fails(&["maps", &id]);
    assert!(err.contains(&format!("no duet attachment `{id}`")), "{err}");
}

#[test]
fn xdp_native_firewall_with_real_traffic() {
    firewall_scenario(false);
}

#[test]
fn xdp_generic_firewall_with_real_traffic() {
    firewall_scenario(true);
}

#[test]
fn ring_buffer_events_stream_as_json_lines() {
    if !privileged() {
        return;
    }
    let duet = Duet::new();
    let Some(object) = hooks_object(&duet.scratch, &[]) else { return };
    let (a, b) = veth_pair();
    let id = duet.attach(&[object.to_str().unwrap(), "--program", "xdp_events", "--xdp", "vb", "--netns", &b.0]);

    let mut child =
        duet.command(&["events", &id, "--count", "3"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // Wait until the reader is streaming, so the records are read live, not from the backlog.
    let mut ready = String::new();
    BufReader::new(child.stderr.take().unwrap()).read_line(&mut ready).unwrap();
    assert!(ready.contains("streaming ring buffer `events`"), "{ready}");
    let child = ChildGuard(child);

    let udp = Udp::new(&a, &b, 9100);
    assert_eq!(udp.round(3, 5), 3);
    let (ok, out) = child.wait_output(Duration::from_secs(10));
    assert!(ok);
    let lines: Vec<Json> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3, "{out}");
    for line in &lines {
        assert_eq!(line["map"], "events");
        assert_eq!(line["len"], 12);
        // saddr 10.99.0.1, daddr 10.99.0.2, port 9100 (0x238c), UDP length 8 + 5.
        assert_eq!(line["data"], "0a6300010a630002238c000d");
        assert!(line["ts_ns"].as_u64().unwrap() > 1_600_000_000_000_000_000);
    }
    // Global data is pinned too (bpffs refuses the dot in `.bss`; duet maps it back).
    assert_eq!(duet.map(&id, ".bss")["00000000"], u64_hex(3));
    let err = duet.fails(&["events", &id, "--map", "ports"]);
    assert!(err.contains("no ring buffer or perf event array map `ports`"), "{err}");
}

// === TC ===

#[test]
fn tc_clsact_filters_egress_and_ingress() {
    if !privileged() {
        return;
    }
    let duet = Duet::new();
    let Some(object) = hooks_object(&duet.scratch, &[]) else { return };
    let object = object.to_str().unwrap();
    let (a, b) = veth_pair();
    let open = Udp::new(&a, &b, 9000);
    let filtered = Udp::new(&a, &b, 9999);

    for (ns, iface, direction) in [(&a, "va", "egress"), (&b, "vb", "ingress")] {
        let id = duet.attach(&[object, "--tc", iface, "--direction", direction, "--netns", &ns.0]);
        let ps = duet.json(&["ps", "--json"]);
        assert_eq!(ps[0]["hook"], format!("tc {direction}"));
        assert_eq!(ps[0]["program"], "tc_filter");
        assert_eq!(filtered.round(4, 8), 0, "UDP to 9999 is shot on {iface} {direction}");
        assert_eq!(open.round(3, 8), 3, "UDP to 9000 passes on {iface} {direction}");
        let counts = duet.map(&id, "tc_counts");
        assert_eq!(u64_of(&counts["01000000"]), 4, "{direction}: {counts}");
        assert!(u64_of(&counts["00000000"]) >= 7, "{direction}: {counts}");
        duet.ok(&["detach", &id]);
        assert_eq!(filtered.round(2, 8), 2, "after detach nothing is filtered");
    }
}

// === cgroup ===

/// Connects from a bash child inside the cgroup to 127.0.0.1:`port` and sends a line.
fn connect_from_cgroup(cgroup: &Cgroup, port: u16) -> Option<ChildGuard> {
    let script = r#"echo $$ > "$1/cgroup.procs" && exec 3<>/dev/tcp/127.0.0.1/$2 && echo from-cgroup >&3"#;
    match Command::new("bash").args(["-c", script, "bash", cgroup.path(), &port.to_string()]).spawn() {
        Ok(child) => Some(ChildGuard(child)),
        Err(err) => {
            skip(&format!("bash is needed as the client inside the cgroup ({err})"));
            None
        }
    }
}

#[test]
fn cgroup_connect4_redirects_a_connection_to_another_port() {
    if !privileged() {
        return;
    }
    let duet = Duet::new();
    let Some(object) = hooks_object(&duet.scratch, &[]) else { return };
    let Some(cgroup) = Cgroup::new() else { return };
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let to = listener.local_addr().unwrap().port();
    // A port nobody listens on: without the redirect, connecting to it is refused.
    let from = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();

    let id = duet.attach(&[object.to_str().unwrap(), "--cgroup", cgroup.path(), "--connect4"]);
    assert_eq!(duet.json(&["ps", "--json"])[0]["hook"], "cgroup/connect4");
    duet.ok(&["maps", "set", &id, "ports", &port_key(from), &port_key(to)]);

    let child = connect_from_cgroup(&cgroup, from);
    let Some(child) = child else { return };
    let (stream, _) = accept_within(&listener, Duration::from_secs(5)).expect("the connection arrived on the new port");
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    assert_eq!(line, "from-cgroup\n");
    let (ok, _) = child.wait_output(Duration::from_secs(5));
    assert!(ok);
    assert_eq!(u64_of(&duet.map(&id, "redirects")["00000000"]), 1);

    // Outside the cgroup nothing is rewritten.
    assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, from)).is_err(), "only the cgroup is redirected");
    duet.ok(&["detach", &id]);
    // After detach the cgroup's connections are no longer redirected either.
    let Some(child) = connect_from_cgroup(&cgroup, from) else { return };
    let (ok, _) = child.wait_output(Duration::from_secs(5));
    assert!(!ok, "the connection to the unused port is refused once the program is detached");
}

#[test]
fn sock_ops_counts_the_callbacks_of_a_connection() {
    if !privileged() {
        return;
    }
    let duet = Duet::new();
    let Some(object) = hooks_object(&duet.scratch, &[]) else { return };
    let Some(cgroup) = Cgroup::new() else { return };
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let id = duet.attach(&[object.to_str().unwrap(), "--cgroup", cgroup.path(), "--sock-ops"]);
    assert_eq!(duet.json(&["ps", "--json"])[0]["hook"], "sockops");

    let Some(child) = connect_from_cgroup(&cgroup, port) else { return };
    let (_stream, _) = accept_within(&listener, Duration::from_secs(5)).expect("connection");
    let (ok, _) = child.wait_output(Duration::from_secs(5));
    assert!(ok);
    let counts = duet.map(&id, "sockops_counts");
    // BPF_SOCK_OPS_TCP_CONNECT_CB (3) and BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB (4), once each: the
    // client is the only socket in the cgroup; the listener is outside it (no PASSIVE, 5).
    assert_eq!(u64_of(&counts["03000000"]), 1, "{counts}");
    assert_eq!(u64_of(&counts["04000000"]), 1, "{counts}");
    assert_eq!(u64_of(&counts["05000000"]), 0, "{counts}");
}

// === tracing ===

#[test]
fn tracepoint_counts_tcp_state_changes_and_kprobes_work_or_say_why_not() {
    if !privileged() {
        return;
    }
    let duet = Duet::new();
    let Some(object) = hooks_object(&duet.scratch, &[]) else { return };
    let object = object.to_str().unwrap();
    let tp = duet.attach(&[object, "--tracepoint", "sock/inet_sock_set_state"]);
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let connect = || {
        let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        let _ = accept_within(&listener, Duration::from_secs(2)).expect("connection");
        drop(stream);
    };
    connect();
    // CLOSE -> SYN_SENT -> ESTABLISHED on the client alone.
    assert!(u64_of(&duet.map(&tp, "probe_counts")["02000000"]) >= 2);
    assert_eq!(duet.json(&["ps", "--json"])[0]["target"], "sock/inet_sock_set_state");

    let kprobes = Path::new("/sys/bus/event_source/devices/kprobe/type").exists()
        || Path::new("/sys/kernel/tracing/kprobe_events").exists();
    if kprobes {
        let entry = duet.attach(&[object, "--program", "kprobe_connect", "--kprobe", "tcp_v4_connect"]);
        let exit = duet.attach(&[object, "--program", "kretprobe_connect", "--kprobe", "tcp_v4_connect"]);
        connect();
        assert!(u64_of(&duet.map(&entry, "probe_counts")["00000000"]) >= 1);
        assert!(u64_of(&duet.map(&exit, "probe_counts")["01000000"]) >= 1);
    } else {
        // This kernel has no kprobes: the error says so instead of showing an errno.
        let err = duet.fails(&["attach", object, "--program", "kprobe_connect", "--kprobe", "tcp_v4_connect"]);
        assert!(err.contains("CONFIG_KPROBES"), "{err}");
        eprintln!("note: this kernel has no kprobes (CONFIG_KPROBES unset); checked the error instead");
    }
    duet.ok(&["detach", "all"]);
    assert_eq!(duet.json(&["ps", "--json"]), serde_json::json!([]));
}

/// `examples/tcpstates`, an SDK crate of two `#[duet::tracepoint]` programs: attached to the
/// kernel's tracepoints, its `states` program counts a loopback connection's state changes on a
/// watched port (the kernel verified its typed record reads) and sends each to a perf event
/// array that `duet events` streams, and `retransmits` attaches to
/// `tcp/tcp_retransmit_skb` (loopback does not retransmit: its counting is unit-tested).
#[test]
fn sdk_tracepoint_programs_count_a_connections_state_changes() {
    if !privileged() {
        return;
    }
    let duet = Duet::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/tcpstates");
    duet.ok(&["build", "--quiet", dir.to_str().unwrap()]);
    assert!(!dir.join("target/duet/tcpstates.wasm").exists(), "tracepoint crates are kernel only");
    let object = dir.join("target/duet/tcpstates.bpf.o");
    let object = object.to_str().unwrap();
    let states = duet.attach(&[object, "--program", "states", "--tracepoint", "sock/inet_sock_set_state"]);
    let retransmits = duet.attach(&[object, "--program", "retransmits", "--tracepoint", "tcp/tcp_retransmit_skb"]);
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    duet.ok(&["maps", "set", &states, "PORTS", &port_key(port), "01"]);
    // `duet events` opens a perf buffer per CPU on the EVENTS perf event array, then streams.
    let mut events = duet
        .command(&["events", &states, "--count", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    // Kept open until duet events ends: it may still write to stderr.
    let mut stderr = BufReader::new(events.stderr.take().unwrap());
    stderr.read_line(&mut banner).unwrap();
    assert!(banner.contains("perf event array `EVENTS`"), "{banner}");
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    let (accepted, _) = accept_within(&listener, Duration::from_secs(2)).expect("connection");
    drop(stream);
    drop(accepted);
    let events = ChildGuard(events).wait_output(Duration::from_secs(10));
    drop(stderr);
    assert!(events.0, "duet events: {}", events.1);
    let lines: Vec<Json> = events.1.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3, "{}", events.1);
    for line in &lines {
        // A `Transition` (24 bytes) and the kernel's 4 bytes of padding.
        assert_eq!(line["len"], 28, "{line}");
        let data = line["data"].as_str().unwrap();
        let bytes: Vec<u8> =
            (0..data.len()).step_by(2).map(|i| u8::from_str_radix(&data[i..i + 2], 16).unwrap()).collect();
        let (sport, dport) = (u16::from_le_bytes([bytes[16], bytes[17]]), u16::from_le_bytes([bytes[18], bytes[19]]));
        assert!(sport == port || dport == port, "{line}");
        assert_eq!(u32::from_le_bytes(bytes[20..24].try_into().unwrap()), 2, "AF_INET: {line}");
    }
    let counts = duet.map(&states, "STATES");
    let state = |n: u32| u64_of(&counts[u64_hex(u64::from(n))[..8].to_owned()]);
    // The client's socket: CLOSE -> SYN_SENT -> ESTABLISHED; the accepted one: SYN_RECV ->
    // ESTABLISHED. Both then start closing.
    assert_eq!(state(2), 1, "SYN_SENT: {counts}");
    assert_eq!(state(1), 2, "ESTABLISHED, both ends: {counts}");
    assert!(state(4) >= 1, "FIN_WAIT1: {counts}");
    // Each attachment loads the object on its own; the kernel accepted the retransmit program.
    let ps = duet.json(&["ps", "--json"]);
    let retransmit_row = ps.as_array().unwrap().iter().find(|a| a["id"].as_str() == Some(retransmits.as_str()));
    assert_eq!(retransmit_row.map(|a| a["target"].clone()), Some("tcp/tcp_retransmit_skb".into()), "{ps}");
    duet.ok(&["detach", "all"]);
    assert_eq!(duet.json(&["ps", "--json"]), serde_json::json!([]));
}

// === test-run, bench, load ===

fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut bytes = Vec::new();
    bytes.extend(0xa1b2_c3d4u32.to_le_bytes());
    bytes.extend(2u16.to_le_bytes());
    bytes.extend(4u16.to_le_bytes());
    bytes.extend([0u8; 8]);
    bytes.extend(65_535u32.to_le_bytes());
    bytes.extend(1u32.to_le_bytes());
    for frame in frames {
        bytes.extend([0u8; 8]);
        let len = u32::try_from(frame.len()).unwrap();
        bytes.extend(len.to_le_bytes());
        bytes.extend(len.to_le_bytes());
        bytes.extend(frame);
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn test_run_json_equals_duet_run_json() {
    if !privileged() {
        return;
    }
    let Some(object) = firewall_object() else { return };
    let duet = Duet::new();
    // The kernel refuses frames shorter than an Ethernet header, which duet's VM runs; the
    // comparison leaves them out.
    let frames: Vec<Vec<u8>> =
        duet_testdata::packets::corpus().into_iter().map(|(_, p)| p).filter(|p| p.len() >= 14).collect();
    let pcap = duet.scratch.join("corpus.pcap");
    write_pcap(&pcap, &frames);
    let (object, pcap) = (object.to_str().unwrap(), pcap.to_str().unwrap());
    let kernel = duet.json(&["test-run", object, "--pcap", pcap, "--json"]);
    let vm = duet.json(&["run", object, "--pcap", pcap, "--json", "--deterministic"]);
    assert_eq!(kernel["results"].as_array().unwrap().len(), frames.len());
    assert_eq!(kernel, vm, "duet test-run (kernel) and duet run (interpreter) disagree");

    // Seeding a blocklist turns the blocked sources' verdicts into XDP_DROP in the kernel too.
    let maps_in = duet.scratch.join("maps.json");
    std::fs::write(&maps_in, r#"{"maps": {"BLOCKLIST": {"0a000001": "01"}}}"#).unwrap();
    let blocked = duet.json(&["test-run", object, "--pcap", pcap, "--json", "--maps-in", maps_in.to_str().unwrap()]);
    let vm_blocked = duet.json(&["run", object, "--pcap", pcap, "--json", "--maps-in", maps_in.to_str().unwrap()]);
    assert_eq!(blocked, vm_blocked);

    let text = duet.ok(&["test-run", object, "--pcap", pcap]);
    assert!(text.contains("XDP_PASS"), "{text}");
}

#[test]
fn bench_kernel_measures_ns_per_packet() {
    if !privileged() {
        return;
    }
    let Some(object) = firewall_object() else { return };
    let duet = Duet::new();
    let frames: Vec<Vec<u8>> =
        duet_testdata::packets::corpus().into_iter().map(|(_, p)| p).filter(|p| p.len() >= 60).take(4).collect();
    let pcap = duet.scratch.join("bench.pcap");
    write_pcap(&pcap, &frames);
    let out = duet.json(&["bench-kernel", object.to_str().unwrap(), "--pcap", pcap.to_str().unwrap(), "--json"]);
    let ns = out["ns_per_packet"].as_f64().unwrap();
    assert!(ns > 0.0 && ns < 100_000.0, "{out}");
    assert_eq!(out["packets"], frames.len());
    // Calibrated so that each packet runs for at least about a millisecond in total.
    let repeat = out["repeat"].as_u64().unwrap();
    assert!(repeat >= 1000 && repeat as f64 * ns >= 500_000.0, "{out}");
}

#[test]
fn load_shows_the_kernel_verifier_log() {
    if !privileged() {
        return;
    }
    let duet = Duet::new();
    let Some(good) = hooks_object(&duet.scratch, &[]) else { return };
    let Some(bad) = hooks_object(&duet.scratch, &["REJECT"]) else { return };
    let out = duet.ok(&["load", good.to_str().unwrap()]);
    assert!(out.contains("accepted every program") && out.contains("tc_filter"), "{out}");
    let out = duet.run(&["load", bad.to_str().unwrap()]);
    assert!(!out.status.success(), "a rejection fails the command");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the kernel verifier rejected program `unchecked`"), "{err}");
    assert!(err.contains("invalid access to packet"), "{err}");
    // Program by program: the rejected one is reported, the others still load and are listed.
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains("rejected 1 of") && listed.contains("rejected (below)"), "{listed}");
    let tc_filter = listed.lines().find(|l| l.trim_start().starts_with("tc_filter")).unwrap_or_default();
    assert!(!tc_filter.is_empty() && !tc_filter.contains("rejected") && !tc_filter.contains("skipped"), "{listed}");
    // Attaching the rejected program shows the same log.
    let (a, _b) = veth_pair();
    let err = duet.fails(&["attach", bad.to_str().unwrap(), "--program", "unchecked", "--xdp", "va", "--netns", &a.0]);
    assert!(err.contains("invalid access to packet"), "{err}");
    assert_eq!(std::fs::read_dir(&duet.root).map(|d| d.count()).unwrap_or(0), 0, "a failed attach leaves no pins");
}

// === errors ===

#[test]
fn attach_errors_name_what_is_missing() {
    if !privileged() {
        return;
    }
    let duet = Duet::new();
    let Some(object) = hooks_object(&duet.scratch, &[]) else { return };
    let object = object.to_str().unwrap();
    let (a, _b) = veth_pair();

    let err = duet.fails(&["attach", object, "--program", "xdp_events", "--xdp", "nosuch0", "--netns", &a.0]);
    assert!(err.contains("network interface `nosuch0` not found in network namespace"), "{err}");
    let err = duet.fails(&["attach", object, "--program", "xdp_events", "--xdp", "va", "--netns", "duet-no-such-ns"]);
    assert!(err.contains("could not enter network namespace `duet-no-such-ns` (ENOENT"), "{err}");
    // Loopback has no native XDP.
    let err = duet.fails(&["attach", object, "--program", "xdp_events", "--xdp", "lo", "--netns", &a.0]);
    assert!(err.contains("(EOPNOTSUPP: Operation not supported)") && err.contains("use --skb"), "{err}");
    let err = duet.fails(&["attach", object, "--program", "tc_filter", "--xdp", "va", "--netns", &a.0]);
    assert!(err.contains("is a tc classifier program, so it cannot attach to xdp") && err.contains("--tc"), "{err}");
    let err = duet.fails(&["attach", object, "--xdp", "va", "--netns", &a.0, "--program", "nope"]);
    assert!(err.contains("the object has no program `nope`"), "{err}");
    let err = duet.fails(&["attach", object, "--cgroup", "/tmp", "--connect4"]);
    assert!(err.contains("is not a cgroup v2 directory"), "{err}");
    let err = duet.fails(&["attach", object, "--tracepoint", "nosuch/event"]);
    assert!(err.contains("tracepoint nosuch/event"), "{err}");

    // A pin root outside bpffs is refused up front.
    let out = Command::new(env!("CARGO_BIN_EXE_duet"))
        .args(["attach", object, "--program", "xdp_events", "--xdp", "va", "--netns", &a.0])
        .env("DUET_PIN_ROOT", duet.scratch.join("not-bpffs"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("mount -t bpf bpf /sys/fs/bpf"), "{err}");
    assert_eq!(std::fs::read_dir(&duet.root).map(|d| d.count()).unwrap_or(0), 0, "failed attaches leave no pins");
}

#[test]
fn without_privileges_commands_say_which_capabilities_are_missing() {
    let is_root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    let duet = Duet::new();
    for args in [&["ps"][..], &["attach", "x.o", "--xdp", "lo"], &["maps", "1"]] {
        let mut cmd = if is_root {
            // Drop to nobody with no capabilities.
            let mut cmd = Command::new("setpriv");
            cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]);
            cmd.arg(env!("CARGO_BIN_EXE_duet"));
            cmd
        } else {
            Command::new(env!("CARGO_BIN_EXE_duet"))
        };
        cmd.args(args).env("DUET_PIN_ROOT", &duet.root);
        let out = match cmd.output() {
            Ok(out) => out,
            Err(err) => return skip(&format!("setpriv (util-linux) is needed to drop privileges ({err})")),
        };
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded without privileges");
        assert!(err.contains("CAP_BPF") && err.contains("run as root"), "{args:?}: {err}");
        assert!(!err.contains("os error"), "{err}");
    }
}

#[test]
fn ps_marks_attachments_whose_namespace_is_gone_and_detach_still_cleans_up() {
    if !privileged() {
        return;
    }
    let duet = Duet::new();
    let Some(object) = hooks_object(&duet.scratch, &[]) else { return };
    let ns = Netns::new("gone");
    let id =
        duet.attach(&[object.to_str().unwrap(), "--program", "xdp_events", "--xdp", "lo", "--skb", "--netns", &ns.0]);
    assert_eq!(duet.json(&["ps", "--json"])[0]["defunct"], Json::Null);
    drop(ns);
    let ps = duet.json(&["ps", "--json"]);
    assert!(ps[0]["defunct"].as_str().unwrap().contains("is gone"), "{ps}");
    duet.ok(&["detach", &id]);
    assert_eq!(duet.json(&["ps", "--json"]), serde_json::json!([]));
}

// === hostile objects, namespaces and pin roots (issue 14) ===

/// `object` with the first byte of the BTF string `name` replaced by 0x80: not UTF-8, and (unlike
/// 0xff, `ÿ` in the kernel's Latin-1 ctype table) not an identifier character either, so the
/// kernel rejects the BTF of a struct of that name and quotes the name in its log, which aya
/// 0.14 unwraps as UTF-8.
fn corrupt_btf_string(object: &[u8], name: &str) -> Vec<u8> {
    let u16_at = |at: usize| usize::from(u16::from_le_bytes(object[at..at + 2].try_into().unwrap()));
    let u32_at = |at: usize| u32::from_le_bytes(object[at..at + 4].try_into().unwrap()) as usize;
    let u64_at = |at: usize| u64::from_le_bytes(object[at..at + 8].try_into().unwrap()) as usize;
    // ELF64 little endian: section headers, and the table of their names.
    let (shoff, shentsize, shnum, shstrndx) = (u64_at(0x28), u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let header = |i: usize| shoff + i * shentsize;
    let names = u64_at(header(shstrndx) + 24);
    let btf = (0..shnum)
        .map(header)
        .find(|&h| object[names + u32_at(h)..].starts_with(b".BTF\0"))
        .map(|h| u64_at(h + 24))
        .expect("the object has a .BTF section");
    // BTF header: hdr_len at 4, str_off at 16, str_len at 20.
    let strings = btf + u32_at(btf + 4) + u32_at(btf + 16);
    let table = &object[strings..strings + u32_at(btf + 20)];
    let needle = format!("\0{name}\0");
    let at = table.windows(needle.len()).position(|w| w == needle.as_bytes()).expect("the BTF string exists");
    let mut out = object.to_vec();
    out[strings + at + 1] = 0x80;
    out
}

/// Asserts a clean failure: exit code 1, one line on stderr starting with `error: `, no panic.
fn one_line_error(args: &[&str], out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "duet {args:?}: {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "duet {args:?} panicked: {stderr}");
    assert!(stderr.starts_with("error: ") && stderr.trim_end().lines().count() == 1, "duet {args:?}: {stderr}");
    stderr
}

#[test]
fn a_non_utf8_btf_string_is_a_one_line_error_in_every_kernel_command() {
    if !privileged() {
        return;
    }
    let duet = Duet::new();
    let Some(object) = hooks_object(&duet.scratch, &[]) else { return };
    let bad = duet.scratch.join("bad-btf.o");
    std::fs::write(&bad, corrupt_btf_string(&std::fs::read(&object).unwrap(), "xdp_md")).unwrap();
    let bad = bad.to_str().unwrap();
    let pcap = duet.scratch.join("one.pcap");
    write_pcap(&pcap, &[vec![0u8; 64]]);
    let pcap = pcap.to_str().unwrap();
    let ns = Netns::new("btf");
    let commands: [&[&str]; 5] = [
        &["load", bad],
        &["test-run", bad, "--pcap", pcap],
        &["test-run", bad, "--pcap", pcap, "--program", "xdp_events"],
        &["bench-kernel", bad, "--pcap", pcap, "--program", "xdp_events", "--repeat", "10"],
        &["attach", bad, "--program", "xdp_events", "--xdp", "lo", "--skb", "--netns", &ns.0],
    ];
    for args in commands {
        let err = one_line_error(args, &duet.run(args));
        assert!(err.contains("BTF string at offset") && err.contains("is not UTF-8 (`\\x80dp_md`)"), "{err}");
    }
    // `duet inspect` reads the same object (its BTF is the kernel's business).
    duet.ok(&["inspect", bad, "--no-disasm"]);
    assert_eq!(std::fs::read_dir(&duet.root).map(|d| d.count()).unwrap_or(0), 0, "nothing pinned");
}

#[test]
fn duet_userspace_only_programs_are_refused_by_the_kernel_commands() {
    if !privileged() {
        return;
    }
    let duet = Duet::new();
    let src = duet.scratch.join("http.bpf.c");
    std::fs::write(
        &src,
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n\
         SEC(\"duet/http_request\") int on_request(void *ctx) { return 0; }\n\
         char LICENSE[] SEC(\"license\") = \"GPL\";\n",
    )
    .unwrap();
    let object = duet.scratch.join("http.bpf.o");
    let multiarch = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    match Command::new("clang")
        .args(["-O2", "-g", "-target", "bpf", &multiarch, "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&object)
        .output()
    {
        Ok(out) => assert!(out.status.success(), "clang: {}", String::from_utf8_lossy(&out.stderr)),
        Err(err) => return skip(&format!("clang is needed to build a duet/http_request object ({err})")),
    }
    let object = object.to_str().unwrap();
    let pcap = duet.scratch.join("one.pcap");
    write_pcap(&pcap, &[vec![0u8; 64]]);
    let pcap = pcap.to_str().unwrap();
    let ns = Netns::new("http");
    let commands: [&[&str]; 5] = [
        &["load", object],
        &["test-run", object, "--pcap", pcap],
        &["test-run", object, "--pcap", pcap, "--program", "on_request"],
        &["bench-kernel", object, "--pcap", pcap, "--program", "on_request"],
        &["attach", object, "--xdp", "lo", "--skb", "--netns", &ns.0],
    ];
    for args in commands {
        let err = one_line_error(args, &duet.run(args));
        assert!(
            err.contains(
                "program on_request is a duet userspace-only program type (duet/http_request): it runs in \
                 `duet mesh`, not in the kernel"
            ),
            "duet {args:?}: {err}"
        );
    }
}

/// Runs duet under `ip netns exec <ns>` (a mount namespace of its own, with a fresh /sys), with
/// `shell` as a `sh -c` prefix when given.
fn netns_exec(duet: &Duet, ns: &Netns, shell: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.0]);
    if let Some(prefix) = shell {
        cmd.args(["sh", "-c", &format!("{prefix} && exec \"$0\" \"$@\"")]);
    }
    cmd.arg(env!("CARGO_BIN_EXE_duet")).args(args).env("DUET_PIN_ROOT", &duet.root);
    cmd.output().expect("run ip netns exec")
}

#[test]
fn under_ip_netns_exec_attach_refuses_and_ps_says_bpffs_is_not_mounted() {
    if !privileged() {
        return;
    }
    let duet = Duet::new();
    let Some(object) = hooks_object(&duet.scratch, &[]) else { return };
    let object = object.to_str().unwrap();
    let ns = Netns::new("exec");
    let attach = ["attach", object, "--program", "xdp_events", "--xdp", "lo", "--skb"];

    let err = one_line_error(&attach, &netns_exec(&duet, &ns, None, &attach));
    assert!(err.contains("not the host's (e.g. under `ip netns exec`)") && err.contains("--netns <name>"), "{err}");
    let err = one_line_error(&["ps"], &netns_exec(&duet, &ns, None, &["ps"]));
    assert!(err.contains("bpffs is not mounted at /sys/fs/bpf in this process's mount namespace"), "{err}");
    // A bpffs mounted inside that namespace is private to it: pins there would vanish with it.
    let out = netns_exec(&duet, &ns, Some("mount -t bpf bpf /sys/fs/bpf"), &attach);
    let err = one_line_error(&attach, &out);
    assert!(err.contains("on a bpffs mounted only in this process's mount namespace"), "{err}");

    // Nothing was attached anywhere, and from the host the way that works does.
    assert_eq!(duet.json(&["ps", "--json"]), serde_json::json!([]));
    let id = duet.attach(&[object, "--program", "xdp_events", "--xdp", "lo", "--skb", "--netns", &ns.0]);
    assert_eq!(duet.json(&["ps", "--json"])[0]["id"], id.as_str());
}

#[test]
fn ids_are_never_reused_and_detach_all_keeps_to_its_root() {
    if !privileged() {
        return;
    }
    let (ours, theirs) = (Duet::new(), Duet::new());
    let Some(object) = hooks_object(&ours.scratch, &[]) else { return };
    let object = object.to_str().unwrap();
    let (ns, other_ns) = (Netns::new("ids"), Netns::new("idt"));
    let args = [object, "--program", "xdp_events", "--xdp", "lo", "--skb", "--netns", &ns.0];

    let first = ours.attach(&args);
    ours.ok(&["detach", &first]);
    let second = ours.attach(&args);
    assert_ne!(first, second, "an id named another attachment after a detach");
    // The id is the kernel's link id, which the kernel does not hand out again.
    let row = &ours.json(&["ps", "--json"])[0];
    assert_eq!(row["id"], row["kernel_link_id"].to_string().as_str(), "{row}");

    // Another root, named with --root (which wins over $DUET_PIN_ROOT).
    let root = theirs.root.to_str().unwrap();
    let other = ours.ok(&[
        "attach",
        "--root",
        root,
        object,
        "--program",
        "xdp_events",
        "--xdp",
        "lo",
        "--skb",
        "--netns",
        &other_ns.0,
    ]);
    let listed = ours.json(&["ps", "--json", "--root", root]);
    assert_eq!(listed[0]["id"], other.trim(), "{listed}");
    let out = ours.ok(&["detach", "all"]);
    assert!(out.contains(&format!("detached {second}")) && !out.contains(other.trim()), "{out}");
    assert_eq!(ours.json(&["ps", "--json"]), serde_json::json!([]));
    let theirs_now = theirs.json(&["ps", "--json"]);
    assert_eq!(theirs_now.as_array().map(Vec::len), Some(1), "{theirs_now}");
    assert_eq!(theirs_now[0]["attached"], true);
}

#[test]
fn every_kernel_command_documents_its_pin_root() {
    for command in ["load", "attach", "ps", "detach", "maps", "events", "test-run", "bench-kernel"] {
        let out = Command::new(env!("CARGO_BIN_EXE_duet")).args([command, "--help"]).output().unwrap();
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(out.status.success() && help.contains("DUET_PIN_ROOT"), "duet {command} --help:\n{help}");
        if !["load", "test-run", "bench-kernel"].contains(&command) {
            assert!(help.contains("--root <DIR>"), "duet {command} --help:\n{help}");
        }
    }
}

/// Sets a directory's modification time `ago` into the past.
fn age(dir: &Path, ago: Duration) {
    let file = std::fs::File::open(dir).unwrap();
    file.set_modified(std::time::SystemTime::now() - ago).unwrap();
}

/// What killed attaches leave, as `duet attach` names it and as older versions did, plus an attach
/// in progress in another PID namespace: `(left over, in progress)` paths.
fn half_made_attachments(root: &Path) -> (Vec<PathBuf>, PathBuf) {
    let link = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let pid_ns = link.to_str().unwrap().trim_start_matches("pid:[").trim_end_matches(']').to_owned();
    // Our pid with another start time: a dead process whose pid was reused.
    let dead = root.join(format!("attaching-{pid_ns}-{}-1-0", std::process::id()));
    // An older duet, killed between `mkdir <id>/maps` and its first pin.
    let shell = root.join("7");
    // Another PID namespace's attach: its process cannot be asked, so age decides.
    let (foreign_old, foreign_new) = (root.join("attaching-1-2-3-0"), root.join("attaching-1-2-3-1"));
    for dir in [&dead, &shell, &foreign_old, &foreign_new] {
        std::fs::create_dir_all(dir.join("maps")).unwrap();
    }
    age(&shell, Duration::from_secs(120));
    age(&foreign_old, Duration::from_secs(120));
    (vec![dead, shell, foreign_old], foreign_new)
}

fn entries(root: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(root).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn half_made_attachments_are_ignored_by_ps_and_cleaned_by_detach_and_attach() {
    if !privileged() {
        return;
    }
    let duet = Duet::new();
    let Some(object) = hooks_object(&duet.scratch, &[]) else { return };
    let object = object.to_str().unwrap();
    let ns = Netns::new("half");
    std::fs::create_dir_all(&duet.root).unwrap();

    let (_, in_progress) = half_made_attachments(&duet.root);
    assert_eq!(duet.json(&["ps", "--json"]), serde_json::json!([]));
    assert!(duet.ok(&["ps"]).contains("nothing attached"));
    let out = duet.ok(&["detach", "all"]);
    assert!(out.contains("removed 3 unfinished attachment(s)"), "{out}");
    let name = in_progress.file_name().unwrap().to_str().unwrap();
    assert_eq!(entries(&duet.root), [name]);

    // An attach cleans them too, and its id is not one a leftover took.
    half_made_attachments(&duet.root);
    let id = duet.attach(&[object, "--program", "xdp_events", "--xdp", "lo", "--skb", "--netns", &ns.0]);
    assert_ne!(id, "7");
    let mut expected = vec![id.clone(), name.to_owned()];
    expected.sort();
    assert_eq!(entries(&duet.root), expected);
    let ps = duet.json(&["ps", "--json"]);
    assert_eq!(ps.as_array().map(Vec::len), Some(1), "{ps}");
    duet.ok(&["detach", &id]);
    assert_eq!(entries(&duet.root), [name]);
}
