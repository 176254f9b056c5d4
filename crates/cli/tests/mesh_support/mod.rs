//! The harness the sidecar's end-to-end tests share: `duet mesh run` as a child process, raw
//! and hyper clients, config builders. Each test crate uses part of it.
#![allow(dead_code, reason = "shared by several test crates, each using a part")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};

pub const DUET: &str = env!("CARGO_BIN_EXE_duet");

/// `duet mesh`'s compile cache for the tests, under target/ rather than the user's home.
pub fn duet() -> Command {
    let mut c = Command::new(DUET);
    c.env("XDG_CACHE_HOME", Path::new(env!("CARGO_TARGET_TMPDIR")).join("xdg-cache"));
    c
}

// === Harness ===

pub fn filters(target: &str) -> PathBuf {
    duet_testdata::proxy_filters::build_proxy_filters(target).expect("building the Proxy-Wasm test filters")
}

/// A test's temporary directory, removed on drop (also when the test fails).
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn temp_dir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("duet-mesh-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

pub fn free_port() -> u16 {
    duet_mesh::backend::free_loopback_port().expect("a free loopback port")
}

pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A running `duet mesh run`, stopped (SIGTERM, then SIGKILL) and its temp dir removed on drop.
pub struct Mesh {
    pub child: Option<Child>,
    pub admin: SocketAddr,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
}

impl Mesh {
    pub fn start(dir: &Path, yaml: &str, admin: u16) -> Mesh {
        let config = dir.join("mesh.yaml");
        std::fs::write(&config, yaml).unwrap();
        let log = dir.join("mesh.log");
        let child = duet()
            .args(["mesh", "run", "--config"])
            .arg(&config)
            .args(["--log", "info"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn duet mesh run");
        let mut mesh = Mesh { child: Some(child), admin: addr(admin), dir: dir.to_owned(), config, log };
        let start = Instant::now();
        loop {
            if let Ok((200, _, _)) = raw_get(mesh.admin, "/ready") {
                return mesh;
            }
            if let Some(Ok(Some(status))) = mesh.child.as_mut().map(|c| c.try_wait()) {
                panic!("duet mesh exited ({status}):\n{}", mesh.log_text());
            }
            assert!(start.elapsed() < Duration::from_secs(120), "duet mesh not ready:\n{}", mesh.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn admin_get(&self, path: &str) -> String {
        let (status, _, body) = raw_get(self.admin, path).unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id();
        assert!(Command::new("kill").args([sig, &pid.to_string()]).status().unwrap().success());
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One request over a fresh HTTP/1.1 connection, written by hand (so malformed ones can be sent).
pub fn raw(addr: SocketAddr, request: &[u8]) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(request)?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    Ok(String::from_utf8_lossy(&out).into_owned())
}

pub fn status_of(response: &str) -> u16 {
    response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

pub fn raw_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String, String)> {
    let text = raw(addr, format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n").as_bytes())?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Ok((status_of(head), head.to_owned(), body.to_owned()))
}

/// A response with its body read.
pub struct Got {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
    pub trailers: Option<http::HeaderMap>,
}

impl Got {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

pub async fn collect(resp: Response<hyper::body::Incoming>) -> Got {
    let (parts, body) = resp.into_parts();
    let collected = body.collect().await.expect("response body");
    let trailers = collected.trailers().cloned();
    Got {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
        trailers,
    }
}

pub type Body = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

pub fn body(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

/// A persistent HTTP/1.1 or HTTP/2 (prior knowledge) client connection.
pub enum Client {
    H1(hyper::client::conn::http1::SendRequest<Body>),
    H2(hyper::client::conn::http2::SendRequest<Body>),
}

impl Client {
    pub async fn connect(addr: SocketAddr, h2: bool) -> Client {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        if h2 {
            let (s, c) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await.unwrap();
            tokio::spawn(c);
            Client::H2(s)
        } else {
            let (s, c) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
            tokio::spawn(c);
            Client::H1(s)
        }
    }

    pub async fn send(&mut self, req: Request<Body>) -> Result<Got, hyper::Error> {
        let resp = match self {
            Client::H1(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
            Client::H2(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
        };
        Ok(collect(resp).await)
    }
}

pub fn get(authority: SocketAddr, path: &str) -> Request<Body> {
    Request::get(format!("http://{authority}{path}")).header("host", authority.to_string()).body(body("")).unwrap()
}

pub async fn one(addr: SocketAddr, req: Request<Body>) -> Got {
    Client::connect(addr, false).await.send(req).await.unwrap()
}

/// A TCP server that answers every connection with `reply` (then closes), or closes at once.
pub fn junk_server(reply: &'static [u8]) -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
            let _ = s.read(&mut buf);
            let _ = s.write_all(reply);
        }
    });
    a
}

pub fn mesh_config(admin: u16, listeners: &str, clusters: &str) -> String {
    format!("admin: {{ address: \"127.0.0.1:{admin}\" }}\nworkers: 2\nlisteners:\n{listeners}\nclusters:\n{clusters}\n")
}

pub fn listener(name: &str, port: u16, filters: &str, routes: &str) -> String {
    let mut s = format!("  - name: {name}\n    address: \"127.0.0.1:{port}\"\n");
    if !filters.is_empty() {
        s.push_str("    filters:\n");
        s.push_str(filters);
    }
    s.push_str("    routes:\n");
    s.push_str(routes);
    s
}

pub fn filter(name: &str, wasm: &Path, extra: &str) -> String {
    format!("      - name: {name}\n        wasm: \"{}\"\n{extra}", wasm.display())
}

pub const TO_BACKEND: &str = "      - { prefix: \"/\", cluster: backend }\n";

/// `duet mesh events --type <kind> --count <n>` against the sidecar at `admin`, returned once it
/// said on stderr that it is subscribed (so no later event is missed); its stdout is piped.
pub fn events_cli(admin: SocketAddr, kind: &str, n: usize) -> Child {
    use std::io::BufRead;
    let mut child = duet()
        .args(["mesh", "events", "--admin", &admin.to_string(), "--type", kind, "--count", &n.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stderr.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("subscribed"), "duet mesh events said: {line}");
    child
}
