//! `BPF_PROG_LOAD` with BTF `func_info`, for programs with a callback subprogram (`lddw rX, func`,
//! which the kernel refuses without it: "missing btf func_info"). `duet_kernel::load_raw` passes
//! no BTF, so `verify_kernel` loads such programs here: one BTF object (`int prog(void *ctx)`,
//! global, and `static int cb(int idx, void *ctx)`) and the two maps of `programs::maps`, made
//! once and kept for the process; a `func_info` record for the main program at slot 0 and one
//! for each subprogram start. Privileges as `load_raw`'s: all, or CAP_PERFMON and CAP_SYS_ADMIN
//! dropped on a scratch thread.
#![allow(unsafe_code, reason = "bpf(2) and capset(2) calls, each with its safety argument")]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_BTF_LOAD: libc::c_long = 18;
const LOG_SIZE: usize = 4 << 20;

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<OwnedFd> {
    // SAFETY: `attr` is a live `#[repr(C)]` prefix of `union bpf_attr` for `cmd`, passed with its
    // exact size; the pointers in it refer to buffers that outlive the call, with the sizes given.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_mut(attr).cast::<libc::c_void>(),
            size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a successful MAP_CREATE, BTF_LOAD or PROG_LOAD returns a new fd nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) })
}

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct BtfLoadAttr {
    btf: u64,
    btf_log_buf: u64,
    btf_size: u32,
    btf_log_size: u32,
    btf_log_level: u32,
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    prog_btf_fd: u32,
    func_info_rec_size: u32,
    func_info: u64,
    func_info_cnt: u32,
    line_info_rec_size: u32,
    line_info: u64,
    line_info_cnt: u32,
    attach_btf_id: u32,
}

/// Type ids of the BTF below.
const MAIN_FUNC: u32 = 4;
const CALLBACK_FUNC: u32 = 6;

/// `[1] int; [2] void *; [3] int (void *ctx); [4] global prog: 3; [5] int (int idx, void *ctx);
/// [6] static cb: 5`.
fn btf_blob() -> Vec<u8> {
    // Strings: 0 "", 1 "int", 5 "ctx", 9 "idx", 13 "prog", 18 "cb".
    let strings = b"\0int\0ctx\0idx\0prog\0cb\0";
    let kind = |k: u32, vlen: u32| (k << 24) | vlen;
    let types: [&[u32]; 6] = [
        // [1] INT "int": 4 bytes, signed, 32 bits.
        &[1, kind(1, 0), 4, 0x0100_0020],
        // [2] PTR to void.
        &[0, kind(2, 0), 0],
        // [3] FUNC_PROTO int (void *ctx).
        &[0, kind(13, 1), 1, 5, 2],
        // [4] FUNC prog, global.
        &[13, kind(12, 1), 3],
        // [5] FUNC_PROTO int (int idx, void *ctx).
        &[0, kind(13, 2), 1, 9, 1, 5, 2],
        // [6] FUNC cb, static.
        &[18, kind(12, 0), 5],
    ];
    let types: Vec<u32> = types.concat();
    let type_len = (types.len() * 4) as u32;
    let mut out = Vec::new();
    out.extend(0xeb9fu16.to_le_bytes());
    out.extend([1u8, 0]);
    for v in [24u32, 0, type_len, type_len, strings.len() as u32] {
        out.extend(v.to_le_bytes());
    }
    for t in types {
        out.extend(t.to_le_bytes());
    }
    out.extend(strings);
    out
}

struct Shared {
    btf: OwnedFd,
    maps: Vec<OwnedFd>,
}

fn shared() -> Result<&'static Shared, String> {
    static SHARED: OnceLock<Result<Shared, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let blob = btf_blob();
            let mut log = vec![0u8; 1 << 16];
            let mut attr = BtfLoadAttr {
                btf: blob.as_ptr() as u64,
                btf_size: blob.len() as u32,
                btf_log_buf: log.as_mut_ptr() as u64,
                btf_log_size: log.len() as u32,
                btf_log_level: 1,
            };
            let btf = bpf(BPF_BTF_LOAD, &mut attr).map_err(|e| {
                let end = log.iter().position(|b| *b == 0).unwrap_or(0);
                format!("BPF_BTF_LOAD: {e}: {}", String::from_utf8_lossy(&log[..end]))
            })?;
            let mut maps = Vec::new();
            for m in crate::programs::maps() {
                let mut attr = MapCreateAttr {
                    map_type: m.map_type,
                    key_size: m.key_size,
                    value_size: m.value_size,
                    max_entries: m.max_entries,
                    map_flags: m.flags,
                };
                maps.push(bpf(BPF_MAP_CREATE, &mut attr).map_err(|e| format!("BPF_MAP_CREATE {}: {e}", m.name))?);
            }
            Ok(Shared { btf, maps })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// `lddw rX, map_fd N` / `map_value N` (and the by-index forms) rewritten to the maps' fds.
fn rewrite_map_refs(insns: &[u64], fds: &[i32]) -> Vec<u64> {
    let mut out = insns.to_vec();
    let mut i = 0;
    while i < out.len() {
        let word = out[i];
        if word as u8 == 0x18 {
            let src = (word >> 12) & 0xf;
            let new_src = match src {
                1 | 5 => Some(1u64),
                2 | 6 => Some(2u64),
                _ => None,
            };
            if let Some(new_src) = new_src {
                let fd = fds.get((word >> 32) as u32 as usize).copied().unwrap_or(-1);
                out[i] = (word & 0x0000_0000_ffff_0fff) | (new_src << 12) | (u64::from(fd as u32) << 32);
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    out
}

/// The subprograms' first slots: slot 0 and the targets of `lddw rX, func` and `call local`.
fn subprog_starts(insns: &[u64]) -> Vec<u32> {
    let mut starts = vec![0u32];
    let mut i = 0;
    while i < insns.len() {
        let word = insns[i];
        let (code, src, imm) = (word as u8, (word >> 12) & 0xf, (word >> 32) as i32);
        if (code == 0x18 && src == 4) || (code == 0x85 && src == 1) {
            let target = i as i64 + i64::from(imm) + 1;
            if let Ok(t) = u32::try_from(target) {
                starts.push(t);
            }
        }
        i += if code == 0x18 { 2 } else { 1 };
    }
    starts.sort_unstable();
    starts.dedup();
    starts
}

/// The kernel's verdict on an XDP program: `Ok((true, _))` accepted, `Ok((false, log))` rejected,
/// `Err` when the load could not be tried.
pub fn load(insns: &[u64], bpf_only: bool, want_log: bool) -> Result<(bool, String), String> {
    let shared = shared()?;
    let fds: Vec<i32> = shared.maps.iter().map(AsRawFd::as_raw_fd).collect();
    let insns = rewrite_map_refs(insns, &fds);
    // func_info: [insn_off, type_id] per subprogram.
    let records: Vec<[u32; 2]> =
        subprog_starts(&insns).into_iter().map(|s| [s, if s == 0 { MAIN_FUNC } else { CALLBACK_FUNC }]).collect();
    let btf_fd = shared.btf.as_raw_fd() as u32;
    let run = || {
        let license = c"GPL";
        let mut log = vec![0u8; if want_log { LOG_SIZE } else { 0 }];
        let mut attr = ProgLoadAttr {
            prog_type: 6,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level: u32::from(want_log),
            log_size: log.len() as u32,
            log_buf: if want_log { log.as_mut_ptr() as u64 } else { 0 },
            prog_btf_fd: btf_fd,
            func_info_rec_size: 8,
            func_info: records.as_ptr() as u64,
            func_info_cnt: records.len() as u32,
            ..ProgLoadAttr::default()
        };
        match bpf(BPF_PROG_LOAD, &mut attr) {
            Ok(_fd) => Ok((true, String::new())),
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && want_log => Ok((false, "(log too large)".into())),
            Err(e) => {
                let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
                Ok((false, format!("{e}\n{}", String::from_utf8_lossy(&log[..end]))))
            }
        }
    };
    if !bpf_only {
        return run();
    }
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                drop_perfmon().map_err(|e| format!("capset: {e}"))?;
                run()
            })
            .join()
            .unwrap_or_else(|_| Err("the load thread panicked".into()))
    })
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Drops CAP_PERFMON (38) and CAP_SYS_ADMIN (21) from the calling thread's effective set.
fn drop_perfmon() -> io::Result<()> {
    let mut header = CapHeader { version: 0x2008_0522, pid: 0 };
    let mut data = [CapData::default(); 2];
    // SAFETY: a valid version-3 header for the calling thread; `data` holds the two words
    // version 3 reads and writes.
    if unsafe { libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    for cap in [21u32, 38] {
        data[(cap / 32) as usize].effective &= !(1 << (cap % 32));
    }
    // SAFETY: as above; capset only reads `header` and `data`.
    if unsafe { libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
