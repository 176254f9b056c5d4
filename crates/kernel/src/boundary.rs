//! The boundary with aya: objects are checked before aya reads them, and a panic inside aya or
//! aya-obj becomes [`KernelError::LoaderPanic`] instead of a crash.
//!
//! aya is not hardened against corrupt input. aya 0.14 turns every kernel log into a `String`
//! with `unwrap` (`retry_with_verifier_logs`), so an object whose BTF strings are not UTF-8 makes
//! it panic as soon as the kernel quotes one of them in a BTF or verifier log; aya-obj indexes
//! some ELF tables unchecked. [`check_object`] catches the known case first with a message that
//! says what is wrong; [`contain`] catches whatever is left, at every public entry point that
//! hands an object to aya.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use crate::error::KernelError;

/// The longest panic message (first line) an error repeats; aya's can hold a whole log in bytes.
const MAX_MESSAGE: usize = 120;
/// The most bytes of a bad BTF string an error shows.
const MAX_SHOWN: usize = 48;

thread_local! {
    /// How many [`contain`] calls are active on this thread; while non-zero, the panic hook
    /// keeps quiet (the panic becomes an error) and records where the panic happened.
    static CONTAINING: Cell<u32> = const { Cell::new(0) };
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f`; a panic inside it becomes [`KernelError::LoaderPanic`] naming `during` (e.g.
/// `loading the object`), the panic's message and where it happened.
///
/// The default panic hook would print the panic (with aya's message, which can be a kilobyte of
/// log bytes) before the error is reported, so this installs, once per process, a hook that
/// stays quiet for panics inside `contain` on the panicking thread and passes every other panic
/// to the hook that was set before.
pub(crate) fn contain<T>(during: &'static str, f: impl FnOnce() -> Result<T, KernelError>) -> Result<T, KernelError> {
    static QUIET_HOOK: Once = Once::new();
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CONTAINING.with(Cell::get) > 0 {
                let location = info.location().map(|l| format!("{}:{}", short_path(l.file()), l.line()));
                LOCATION.with(|slot| *slot.borrow_mut() = location);
            } else {
                previous(info);
            }
        }));
    });
    CONTAINING.with(|n| n.set(n.get() + 1));
    // Everything `f` touches is its own or dropped during unwinding (fds close, pins and
    // namespaces are restored by their guards), so nothing is observed in a broken state.
    let res = catch_unwind(AssertUnwindSafe(f));
    CONTAINING.with(|n| n.set(n.get() - 1));
    res.unwrap_or_else(|payload| {
        let text = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("no message");
        let mut message: String = text.lines().next().unwrap_or_default().chars().take(MAX_MESSAGE).collect();
        if message.len() < text.len() {
            message.push_str(" ...");
        }
        let location = LOCATION.with(|slot| slot.borrow_mut().take());
        Err(KernelError::LoaderPanic { during, message, location: location.unwrap_or_else(|| "unknown".to_owned()) })
    })
}

/// Checks what aya cannot survive before it sees the object: that no global data section claims
/// more than a map value may hold (aya allocates all of it, and a failed allocation aborts), and
/// that every string of the `.BTF` string table is UTF-8. Anything else wrong with the ELF or BTF
/// is left to aya, which reports it as an error.
pub(crate) fn check_object(object: &[u8]) -> Result<(), KernelError> {
    use object::{Object as _, ObjectSection as _};
    let Ok(file) = object::File::parse(object) else { return Ok(()) };
    if let Some((name, size)) = duet_object::oversized_global_data(&file) {
        return Err(KernelError::GlobalDataTooLarge {
            section: name.to_owned(),
            size,
            max: duet_object::MAX_GLOBAL_DATA,
        });
    }
    let Some(btf) = file.section_by_name(".BTF") else { return Ok(()) };
    let Ok(data) = btf.data() else { return Ok(()) };
    match btf_strings(data) {
        Some(strings) => check_strings(strings),
        None => Ok(()),
    }
}

/// Refuses an object holding one of duet's userspace-only program types (`duet/http_request`,
/// `duet/http_response`, `duet/route`): no kernel hook runs them, and aya would only call their
/// sections unknown. Names `wanted` if it is one of them, else the first. duet-object says which
/// programs they are; objects it cannot parse are left to aya.
pub(crate) fn refuse_userspace_only(object: &[u8], wanted: Option<&str>) -> Result<(), KernelError> {
    use object::{Object as _, ObjectSection as _};
    let Ok(file) = object::File::parse(object) else { return Ok(()) };
    // Only duet's own sections can hold them; other objects are not parsed twice.
    if !file.sections().any(|s| s.name().is_ok_and(|n| n.starts_with("duet/"))) {
        return Ok(());
    }
    let Ok(obj) = duet_object::Object::parse(object) else { return Ok(()) };
    let userspace: Vec<_> = obj.programs.iter().filter(|p| p.kind.is_userspace_only()).collect();
    let named = wanted.and_then(|w| userspace.iter().find(|p| p.name == w));
    let Some(program) = named.or(userspace.first()) else { return Ok(()) };
    Err(KernelError::UserspaceOnlyProgram {
        program: program.name.clone(),
        section: program.section.clone(),
        kernel_programs: userspace.len() < obj.programs.len(),
    })
}

/// The string section of raw BTF (header, types, strings), or `None` if the header is not
/// BTF's or points outside the data.
fn btf_strings(data: &[u8]) -> Option<&[u8]> {
    let magic = data.get(..2)?;
    let read = |at: usize| -> Option<usize> {
        let bytes: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
        let n = match magic {
            [0x9f, 0xeb] => u32::from_le_bytes(bytes),
            [0xeb, 0x9f] => u32::from_be_bytes(bytes),
            _ => return None,
        };
        usize::try_from(n).ok()
    };
    let (hdr_len, str_off, str_len) = (read(4)?, read(16)?, read(20)?);
    let start = hdr_len.checked_add(str_off)?;
    data.get(start..start.checked_add(str_len)?)
}

fn check_strings(strings: &[u8]) -> Result<(), KernelError> {
    let mut offset = 0;
    for string in strings.split(|&b| b == 0) {
        if std::str::from_utf8(string).is_err() {
            let shown = &string[..string.len().min(MAX_SHOWN)];
            let mut text = shown.escape_ascii().to_string();
            if shown.len() < string.len() {
                text.push_str("...");
            }
            return Err(KernelError::BtfStringNotUtf8 { offset, text });
        }
        offset += string.len() + 1;
    }
    Ok(())
}

/// `.../aya-0.14.0/src/sys/bpf.rs` as `aya-0.14.0/src/sys/bpf.rs`: the crate and file, without
/// the registry path of the machine that built duet.
fn short_path(file: &str) -> &str {
    match file.rfind("/src/") {
        Some(src) => file[..src].rfind('/').map_or(file, |slash| &file[slash + 1..]),
        None => file,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn btf(strings: &[u8]) -> Vec<u8> {
        let mut data = vec![0x9f, 0xeb, 1, 0];
        for n in [24u32, 0, 0, 0, strings.len() as u32] {
            data.extend_from_slice(&n.to_le_bytes());
        }
        data.extend_from_slice(strings);
        data
    }

    #[test]
    fn a_panic_inside_becomes_an_error_with_its_first_line_and_place() {
        let err = contain("loading the object", || -> Result<(), KernelError> {
            panic!("called `Result::unwrap()` on an `Err` value\nmore detail")
        })
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("while loading the object"), "{text}");
        assert!(text.contains("called `Result::unwrap()` on an `Err` value ..."), "{text}");
        assert!(text.contains("kernel/src/boundary.rs:"), "{text}");
        assert!(!text.contains('\n'), "one line: {text}");
        // Nested calls and later calls still work.
        assert_eq!(contain("x", || contain("y", || Ok(7))).unwrap(), 7);
    }

    #[test]
    fn a_non_utf8_btf_string_is_named_by_offset() {
        let data = btf(b"\0int\0\x80dp_md\0ok\0");
        let err = check_strings(btf_strings(&data).unwrap()).unwrap_err();
        assert!(matches!(&err, KernelError::BtfStringNotUtf8 { offset: 5, text } if text == "\\x80dp_md"), "{err:?}");
        assert!(check_strings(btf_strings(&btf(b"\0int\0caf\xc3\xa9\0")).unwrap()).is_ok());
        // A header that points outside the data is left for aya to report.
        let mut bad = btf(b"\0a\0");
        bad[20] = 200;
        assert!(btf_strings(&bad).is_none());
    }

    #[test]
    fn registry_paths_are_shortened() {
        assert_eq!(short_path("/root/.cargo/registry/src/x/aya-0.14.0/src/sys/bpf.rs"), "aya-0.14.0/src/sys/bpf.rs");
        assert_eq!(short_path("crates/kernel/src/run.rs"), "kernel/src/run.rs");
        assert_eq!(short_path("lib.rs"), "lib.rs");
    }
}
