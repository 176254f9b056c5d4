//! Loading raw bytecode with `BPF_PROG_LOAD`, to ask the kernel verifier for its decision and
//! log on programs that are not ELF objects (duet's verifier corpus, fuzz cases).
//!
//! Maps are created through aya (a legacy map definition handed to `MapData::create`), so
//! `lddw rX, map_fd N` in the bytecode can refer to map `N` of the request, as in duet-object's
//! numbering; the loader rewrites `N` to the new map's file descriptor. Everything created is
//! closed when [`load_raw`] returns.
//!
//! The load itself, with its verifier log buffer, is `sys::prog_load`, like every `bpf(2)` call
//! of this crate. One system call happens here rather than in `sys.rs`: `capset(2)`, which drops
//! CAP_PERFMON and CAP_SYS_ADMIN on a scratch thread for [`Privileges::BpfOnly`], one small
//! `unsafe` block with its safety argument; folding it into `sys.rs` is the natural next step.
#![allow(unsafe_code, reason = "capset(2); see the module documentation")]

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use aya::maps::MapData;
use aya_obj::EbpfSectionKind;
use aya_obj::maps::{LegacyMap, PinningType, bpf_map_def};

use crate::error::Errno;
use crate::sys;

/// Size of the verifier log buffer; a larger log makes the load fail with `ENOSPC`, and the
/// loader then retries without a log to learn the decision alone.
const LOG_SIZE: usize = 4 << 20;

/// One map a raw program refers to by index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawMap {
    /// Name (at most 15 bytes are kept).
    pub name: String,
    /// `BPF_MAP_TYPE_*`.
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum entries.
    pub max_entries: u32,
    /// `BPF_F_*` flags.
    pub flags: u32,
}

/// Which capabilities the load runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Privileges {
    /// The process's own capabilities (root: all of them).
    Inherit,
    /// CAP_PERFMON and CAP_SYS_ADMIN dropped (on a scratch thread): the kernel verifier then
    /// refuses pointer leaks and reads of uninitialised stack, which it allows CAP_PERFMON
    /// holders.
    BpfOnly,
}

/// A raw program to load.
#[derive(Clone, Copy, Debug)]
pub struct RawProgram<'a> {
    /// `BPF_PROG_TYPE_*` (6 = XDP, 1 = socket filter).
    pub prog_type: u32,
    /// Instructions as little-endian 64-bit words (`duet_isa::RawInsn::to_u64`).
    pub insns: &'a [u64],
    /// Maps, indexed by `lddw rX, map_fd N` (and `map_value N, off`).
    pub maps: &'a [RawMap],
    /// Privileges for the load.
    pub privileges: Privileges,
    /// Ask for the verifier log. Logging slows the kernel verifier down considerably (it formats
    /// every processed instruction), so timing measurements turn it off; the decision is the same.
    pub log: bool,
}

/// Why [`load_raw`] did not load the program.
#[derive(Debug, thiserror::Error)]
pub enum RawLoadError {
    /// The kernel verifier (or the program checks before it) rejected the program.
    #[error("the kernel rejected the program ({errno}):\n{log}")]
    Rejected {
        /// The errno of `BPF_PROG_LOAD`.
        errno: Errno,
        /// The verifier log (may be empty when the kernel refused before verifying).
        log: String,
    },
    /// A map could not be created.
    #[error("cannot create map `{name}`: {message}")]
    Map {
        /// The map.
        name: String,
        /// aya's error.
        message: String,
    },
    /// Capabilities could not be dropped, or the scratch thread failed.
    #[error("cannot drop capabilities for the load: {0}")]
    Privileges(#[source] io::Error),
}

/// Loads `program` with `BPF_PROG_LOAD` (license "GPL") and unloads it again. `Ok` means the
/// kernel verifier accepted it; a rejection carries the verifier log.
pub fn load_raw(program: &RawProgram<'_>) -> Result<(), RawLoadError> {
    let mut maps = Vec::with_capacity(program.maps.len());
    for m in program.maps {
        let def = bpf_map_def {
            map_type: m.map_type,
            key_size: m.key_size,
            value_size: m.value_size,
            max_entries: m.max_entries,
            map_flags: m.flags,
            id: 0,
            pinning: PinningType::None,
        };
        let obj = aya_obj::Map::Legacy(LegacyMap {
            def,
            inner_def: None,
            section_index: 0,
            section_kind: EbpfSectionKind::Maps,
            symbol_index: None,
            data: Vec::new(),
        });
        let name: String = m.name.chars().filter(char::is_ascii_alphanumeric).take(15).collect();
        let data = MapData::create(obj, &name, None)
            .map_err(|e| RawLoadError::Map { name: m.name.clone(), message: error_chain(&e) })?;
        maps.push(data);
    }
    let fds: Vec<i32> = maps.iter().map(|m| m.fd().as_fd().as_raw_fd()).collect();
    let insns = rewrite_map_refs(program.insns, &fds);
    let prog_type = program.prog_type;
    let log = program.log;
    let result = match program.privileges {
        Privileges::Inherit => prog_load_with_log(prog_type, &insns, log),
        Privileges::BpfOnly => std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    drop_perfmon().map_err(RawLoadError::Privileges)?;
                    prog_load_with_log(prog_type, &insns, log)
                })
                .join()
                .unwrap_or_else(|_| Err(RawLoadError::Privileges(io::Error::other("the load thread panicked"))))
        }),
    };
    drop(maps);
    result.map(drop)
}

/// Rewrites `lddw rX, map_fd N` / `map_value N, off` (and their by-index forms) to the fds.
fn rewrite_map_refs(insns: &[u64], fds: &[i32]) -> Vec<u64> {
    let mut out = insns.to_vec();
    let mut i = 0;
    while i < out.len() {
        let word = out[i];
        let code = word as u8;
        if code == 0x18 {
            let src = ((word >> 12) & 0xf) as u8;
            let imm = (word >> 32) as u32 as usize;
            // map_fd (1), map_value (2), map_idx (5), map_idx_value (6).
            let new_src = match src {
                1 | 5 => Some(1u64),
                2 | 6 => Some(2u64),
                _ => None,
            };
            if let Some(new_src) = new_src {
                // A reference past the request's maps becomes fd -1, which no map has, so the
                // kernel sees a reference to a map that does not exist.
                let fd = fds.get(imm).copied().unwrap_or(-1);
                let low = word & 0x0000_0000_ffff_0fff;
                out[i] = low | (new_src << 12) | (u64::from(fd as u32) << 32);
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    out
}

fn prog_load_with_log(prog_type: u32, insns: &[u64], want_log: bool) -> Result<OwnedFd, RawLoadError> {
    let license = c"GPL";
    // More instructions than `insn_cnt` can count is refused as the kernel would, before any load.
    u32::try_from(insns.len())
        .map_err(|_| RawLoadError::Rejected { errno: Errno(libc::E2BIG), log: "too many instructions".into() })?;
    let mut log = vec![0u8; if want_log { LOG_SIZE } else { 0 }];
    match sys::prog_load(prog_type, insns, license, &mut log) {
        Ok(fd) => Ok(fd),
        Err(err) if err.raw_os_error() == Some(libc::ENOSPC) => {
            // The log did not fit: ask again for the decision alone.
            sys::prog_load(prog_type, insns, license, &mut []).map_err(|err| RawLoadError::Rejected {
                errno: Errno::of(&err),
                log: "(the verifier log was larger than 4 MiB)".into(),
            })
        }
        Err(err) => {
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            Err(RawLoadError::Rejected {
                errno: Errno::of(&err),
                log: String::from_utf8_lossy(&log[..end]).into_owned(),
            })
        }
    }
}

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

/// `struct __user_cap_data_struct`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `_LINUX_CAPABILITY_VERSION_3`: two `CapData` words, capabilities 0..=63.
const CAP_VERSION_3: u32 = 0x2008_0522;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;

/// Drops CAP_PERFMON and CAP_SYS_ADMIN from the calling thread's effective set (Linux keeps
/// capabilities per thread, so the rest of the process is unaffected).
fn drop_perfmon() -> io::Result<()> {
    let mut header = CapHeader { version: CAP_VERSION_3, pid: 0 };
    let mut data = [CapData::default(); 2];
    // SAFETY: `header` is a valid version-3 header for the calling thread and `data` holds the
    // two words version 3 reads and writes.
    if unsafe { libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    for cap in [CAP_SYS_ADMIN, CAP_PERFMON] {
        let word = (cap / 32) as usize;
        data[word].effective &= !(1 << (cap % 32));
    }
    // SAFETY: as above; capset only reads `header` and `data`.
    if unsafe { libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut msg = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_references_become_fds() {
        // lddw r1, map_fd 1 ; second slot ; exit
        let lddw = 0x18u64 | (1 << 8) | (1 << 12) | (1u64 << 32);
        let out = rewrite_map_refs(&[lddw, 0, 0x95], &[7, 42]);
        assert_eq!(out[0] >> 32, 42);
        assert_eq!((out[0] >> 12) & 0xf, 1);
        assert_eq!((out[0] >> 8) & 0xf, 1, "dst register is kept");
        assert_eq!(&out[1..], &[0, 0x95]);
        // A plain 64-bit constant is untouched.
        let imm = 0x18u64 | (5u64 << 32);
        assert_eq!(rewrite_map_refs(&[imm, 0, 0x95], &[7]), vec![imm, 0, 0x95]);
        // A map index past the request's maps refers to no map at all.
        let missing = 0x18u64 | (1 << 12) | (3u64 << 32);
        assert_eq!(rewrite_map_refs(&[missing, 0, 0x95], &[7])[0] >> 32, u64::from(u32::MAX));
    }
}
