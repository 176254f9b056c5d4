//! Can this process load BPF programs? Find out by loading the smallest one, and explain a refusal.

use crate::error::{Errno, KernelError};
use crate::sys;

/// `BPF_PROG_TYPE_XDP`: the probe uses the program type test runs need most, which also needs
/// the strictest capabilities (CAP_BPF and CAP_NET_ADMIN).
const BPF_PROG_TYPE_XDP: u32 = 6;

/// `r0 = XDP_PASS; exit`, as raw little-endian instructions.
const PASS_PROGRAM: [u64; 2] = [
    // mov64 r0, 2: opcode 0xb7, dst 0, imm 2 in the upper 32 bits.
    0x0000_0002_0000_00b7,
    // exit: opcode 0x95.
    0x0000_0000_0000_0095,
];

/// Capability bit numbers from `linux/capability.h`.
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

/// Whether this process can load BPF programs: `Ok`, or an error naming what is missing
/// (root/CAP_BPF+CAP_NET_ADMIN, the bpf syscall itself, ...) — never a raw errno.
///
/// It loads a two-instruction XDP program and closes it at once.
pub fn check_access() -> Result<(), KernelError> {
    match sys::prog_load(BPF_PROG_TYPE_XDP, &PASS_PROGRAM, c"GPL", &mut []) {
        Ok(fd) => {
            drop(fd);
            Ok(())
        }
        Err(err) => Err(classify(Errno::of(&err), effective_capabilities())),
    }
}

/// Turns the errno of the probe load into an error that says what is missing.
///
/// `caps` is the effective capability mask (`CapEff` of `/proc/self/status`), if it could be read.
pub(crate) fn classify(errno: Errno, caps: Option<u64>) -> KernelError {
    match errno.0 {
        libc::EPERM | libc::EACCES => {
            let Some(caps) = caps else {
                return KernelError::NoPermission {
                    missing: "CAP_BPF and CAP_NET_ADMIN (its capabilities could not be read from \
                              /proc/self/status)"
                        .to_owned(),
                };
            };
            let has = |cap: u32| caps & (1 << cap) != 0;
            // CAP_SYS_ADMIN stands in for both (the kernel's bpf_capable and bpf_net_capable).
            let mut missing = Vec::new();
            if !has(CAP_BPF) && !has(CAP_SYS_ADMIN) {
                missing.push("CAP_BPF");
            }
            if !has(CAP_NET_ADMIN) && !has(CAP_SYS_ADMIN) {
                missing.push("CAP_NET_ADMIN");
            }
            if missing.is_empty() {
                KernelError::Blocked { errno }
            } else {
                KernelError::NoPermission { missing: missing.join(" and ") }
            }
        }
        libc::ENOSYS => KernelError::NoBpfSyscall,
        _ => KernelError::AccessProbe { errno },
    }
}

/// The effective capability mask of this process, from `/proc/self/status`.
fn effective_capabilities() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_cap_eff(&status)
}

fn parse_cap_eff(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|line| line.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;
    use crate::sys::{Cmd, fake};

    #[test]
    fn non_root_gets_the_documented_message() {
        let err = classify(Errno(libc::EPERM), Some(0));
        assert!(matches!(err, KernelError::NoPermission { .. }));
        assert_eq!(
            err.to_string(),
            "loading BPF programs needs root or CAP_BPF+CAP_NET_ADMIN, and this process lacks \
             CAP_BPF and CAP_NET_ADMIN; run as root (e.g. with sudo)"
        );
    }

    #[test]
    fn names_only_the_missing_capability() {
        let err = classify(Errno(libc::EPERM), Some(1 << CAP_BPF));
        assert!(err.to_string().contains("lacks CAP_NET_ADMIN;"), "{err}");
        let err = classify(Errno(libc::EPERM), Some(1 << CAP_SYS_ADMIN));
        assert!(matches!(err, KernelError::Blocked { .. }), "{err}");
    }

    #[test]
    fn refusals_never_show_a_bare_errno() {
        for errno in [libc::EPERM, libc::EACCES, libc::ENOSYS, libc::EINVAL, 4242] {
            for caps in [None, Some(0), Some(u64::MAX)] {
                let text = classify(Errno(errno), caps).to_string();
                assert!(!text.contains("os error"), "{text}");
                assert!(!text.contains(&format!("({errno})")), "{text}");
            }
        }
    }

    #[test]
    fn check_access_goes_through_the_one_syscall_function() {
        fn refuse(cmd: Cmd) -> io::Result<i64> {
            assert_eq!(cmd, Cmd::ProgLoad);
            Err(io::Error::from_raw_os_error(libc::ENOSYS))
        }
        let res = fake::with(refuse, check_access);
        assert!(matches!(res, Err(KernelError::NoBpfSyscall)), "{res:?}");
    }

    #[test]
    fn faked_eperm_names_what_is_missing_or_blocking() {
        fn eperm(_: Cmd) -> io::Result<i64> {
            Err(io::Error::from_raw_os_error(libc::EPERM))
        }
        let err = fake::with(eperm, check_access).unwrap_err();
        // Which message depends on the capabilities of the test process (root or not); both
        // say what to do and neither is a raw errno.
        match &err {
            KernelError::NoPermission { .. } => assert!(err.to_string().contains("run as root")),
            KernelError::Blocked { errno } => {
                assert_eq!(*errno, Errno(libc::EPERM));
                assert!(err.to_string().contains("EPERM: Operation not permitted"), "{err}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn parses_cap_eff() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(parse_cap_eff(status), Some(0x1ff_ffff_ffff));
        assert_eq!(parse_cap_eff("Name:\tx\n"), None);
    }
}
