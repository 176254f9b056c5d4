//! Helpers shared by the kernel tests: skipping loudly, and failing instead under CI.

#![allow(dead_code, reason = "each test file uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Whether tests that need root, a kernel or clang are mandatory (`CI=true`, as `.ci/run` sets).
pub fn mandatory() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Skips the calling test with a loud reason, or fails it under CI.
pub fn skip(reason: &str) {
    assert!(!mandatory(), "CI=true makes this test mandatory, but: {reason}");
    eprintln!("SKIPPED (set CI=true to make this a failure): {reason}");
}

/// `Ok` if this process may load BPF programs; otherwise skips (or fails under CI) and says why.
pub fn kernel_access() -> bool {
    match duet_kernel::check_access() {
        Ok(()) => true,
        Err(err) => {
            skip(&format!("the kernel tests need BPF access: {err}"));
            false
        }
    }
}

/// Compiles `tests/fixtures/<name>.bpf.c` with clang into a temporary directory and returns
/// the object's bytes; `None` (after a loud skip) if clang is not installed.
pub fn compile_fixture(name: &str, defines: &[&str]) -> Option<Vec<u8>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(format!("{name}.bpf.c"));
    // Tests run in parallel threads and may compile the same fixture; each call gets its own
    // temporary directory, removed once the object is read.
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("duet-kernel-test-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    let out: PathBuf = dir.join(format!("{name}.o"));
    // Debian keeps asm/types.h under the multiarch include directory, which `-target bpf`
    // does not search by itself.
    let multiarch = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let mut cmd = Command::new("clang");
    cmd.args(["-O2", "-g", "-target", "bpf", &multiarch]);
    for define in defines {
        cmd.arg(format!("-D{define}"));
    }
    cmd.arg("-c").arg(&src).arg("-o").arg(&out);
    let output = match cmd.output() {
        Ok(output) => output,
        Err(err) => {
            skip(&format!("clang is needed to build {} ({err}); apt-get install clang libbpf-dev", src.display()));
            return None;
        }
    };
    assert!(output.status.success(), "clang failed on {}:\n{}", src.display(), String::from_utf8_lossy(&output.stderr));
    let bytes = std::fs::read(&out).expect("read the compiled object");
    let _ = std::fs::remove_dir_all(&dir);
    Some(bytes)
}

/// The CPUs the calling thread may run on, as the kernel lists them.
pub fn allowed_cpus() -> String {
    let status = std::fs::read_to_string("/proc/thread-self/status").expect("read /proc/thread-self/status");
    status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).expect("Cpus_allowed_list").trim().to_owned()
}

/// An Ethernet frame of `len` bytes whose first byte is `first`.
pub fn frame(len: usize, first: u8) -> Vec<u8> {
    let mut frame: Vec<u8> = (0..len).map(|i| i as u8).collect();
    if let Some(b) = frame.first_mut() {
        *b = first;
    }
    frame
}

/// The number of possible CPUs (`/sys/devices/system/cpu/possible`, e.g. `0-3` or `0,2-3`):
/// the length of every per-CPU value list.
pub fn possible_cpus() -> usize {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible").expect("read possible CPUs");
    text.trim()
        .split(',')
        .map(|range| match range.split_once('-') {
            Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
            None => 1,
        })
        .sum()
}
