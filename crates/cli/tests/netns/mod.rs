//! Network namespaces for the kernel tests: created with iproute2, deleted with their
//! interfaces when dropped (also when a test fails).

use std::process::Command;

use crate::gate::unique;

/// Runs a command that must succeed.
pub fn sh(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A network namespace, deleted (with its interfaces) on drop.
pub struct Netns(pub String);

impl Netns {
    pub fn new(tag: &str) -> Self {
        let name = unique(tag);
        sh("ip", &["netns", "add", &name]);
        let ns = Self(name);
        sh("ip", &["-n", &ns.0, "link", "set", "lo", "up"]);
        ns
    }

    /// A command run inside this namespace (`nsenter --net`: only the network namespace
    /// changes, so bpffs and the cgroup tree stay the host's).
    #[allow(dead_code, reason = "not every test file that shares this module uses it")]
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.0)).arg(program);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// Namespaces A (va, 10.99.0.1) and B (vb, 10.99.0.2) joined by a veth pair.
pub fn veth_pair() -> (Netns, Netns) {
    let (a, b) = (Netns::new("a"), Netns::new("b"));
    sh("ip", &["link", "add", "va", "netns", &a.0, "type", "veth", "peer", "name", "vb", "netns", &b.0]);
    sh("ip", &["-n", &a.0, "addr", "add", "10.99.0.1/24", "dev", "va"]);
    sh("ip", &["-n", &b.0, "addr", "add", "10.99.0.2/24", "dev", "vb"]);
    sh("ip", &["-n", &a.0, "link", "set", "va", "up"]);
    sh("ip", &["-n", &b.0, "link", "set", "vb", "up"]);
    (a, b)
}
