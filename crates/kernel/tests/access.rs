//! `check_access` answers truthfully for this process, and its refusals say what to do.

mod common;

use duet_kernel::{Errno, KernelError, check_access};

/// Whether this process has CAP_BPF (or CAP_SYS_ADMIN) and CAP_NET_ADMIN.
fn has_bpf_capabilities() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:")).unwrap();
    let caps = u64::from_str_radix(hex.trim(), 16).unwrap();
    let has = |bit: u32| caps & (1 << bit) != 0;
    (has(39) || has(21)) && (has(12) || has(21))
}

#[test]
fn check_access_matches_the_capabilities() {
    let res = check_access();
    if common::mandatory() {
        res.as_ref().expect("CI runs as root, so BPF programs must load");
    }
    match res {
        Ok(()) => {}
        Err(err @ KernelError::NoPermission { .. }) => {
            assert!(!has_bpf_capabilities(), "refused although the capabilities are there: {err}");
            common::skip(&format!("not root: {err}"));
        }
        Err(err) => {
            // With the capabilities, a refusal must be the seccomp/lockdown one or name the kernel.
            let text = err.to_string();
            assert!(!text.contains("os error"), "raw errno in: {text}");
            common::skip(&format!("BPF is unavailable here: {text}"));
        }
    }
}

#[test]
fn refusal_messages_say_what_to_do() {
    let err = KernelError::NoPermission { missing: "CAP_BPF and CAP_NET_ADMIN".to_owned() };
    assert_eq!(
        err.to_string(),
        "loading BPF programs needs root or CAP_BPF+CAP_NET_ADMIN, and this process lacks CAP_BPF and \
         CAP_NET_ADMIN; run as root (e.g. with sudo)"
    );
    let err = KernelError::Blocked { errno: Errno(libc::EPERM) };
    assert!(err.to_string().starts_with("the kernel refused the bpf() syscall (EPERM: Operation not permitted)"));
    assert!(KernelError::NoBpfSyscall.to_string().contains("CONFIG_BPF_SYSCALL"));
}

#[test]
fn errnos_are_shown_by_name() {
    assert_eq!(Errno(libc::EINVAL).to_string(), "EINVAL: Invalid argument");
    assert_eq!(Errno(libc::EACCES).to_string(), "EACCES: Permission denied");
    assert!(Errno(524).to_string().starts_with("ENOTSUPP: "));
    assert!(Errno(4095).to_string().starts_with("errno 4095: "));
}
