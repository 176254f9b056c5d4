//! Skipping kernel tests loudly (a failure under `CI=true`) and naming their kernel objects,
//! shared by the CLI's kernel test crates.
#![allow(dead_code, reason = "shared by several test crates, each using a part")]

use std::sync::atomic::{AtomicUsize, Ordering};

/// Whether this run must not skip (`CI=true` or `CI=1`).
pub fn mandatory() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Says why the test cannot run, or fails it under CI.
pub fn skip(reason: &str) {
    assert!(!mandatory(), "CI=true makes this test mandatory, but: {reason}");
    eprintln!("SKIPPED (set CI=true to make this a failure): {reason}");
}

/// A name no other test (of this or a parallel process) uses: interfaces, namespaces, cgroups.
pub fn unique(tag: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("duet{tag}{}x{}", std::process::id() % 100_000, NEXT.fetch_add(1, Ordering::Relaxed))
}
