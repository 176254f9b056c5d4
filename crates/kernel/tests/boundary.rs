//! What duet-kernel refuses before aya sees an object, through every public entry point that
//! hands one to aya (`load_check`, `list_programs`, `test_run`, `bench`, `attach`):
//!
//! - BTF strings that are not UTF-8, on which aya 0.14 panics (it unwraps the kernel's BTF log
//!   as UTF-8, and the kernel quotes the bad name in it), become `BtfStringNotUtf8`;
//! - duet's userspace-only program types (`duet/http_request`) become `UserspaceOnlyProgram`.
//!
//! Needs BPF access and clang; skips loudly without them (fails under `CI=true`).

mod common;

use std::path::PathBuf;

use duet_kernel::{AttachRequest, Hook, KernelError, TestRunInput, XdpMode};

/// A pin root of this test's own; nothing is ever pinned there (every call fails first), and it
/// is removed on drop all the same.
struct PinRoot(PathBuf);

impl PinRoot {
    fn new() -> Self {
        Self(PathBuf::from(format!("/sys/fs/bpf/duet-kernel-boundary-{}", std::process::id())))
    }
}

impl Drop for PinRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `object` with the first byte of the BTF string `name` replaced by 0x80: not UTF-8, and (unlike
/// 0xff, `ÿ` in the kernel's Latin-1 ctype table) not an identifier character either, so the
/// kernel rejects the BTF of a struct of that name and quotes the name in its log.
fn corrupt_btf_string(object: &[u8], name: &str) -> Vec<u8> {
    let u32_at = |at: usize| u32_at(object, at);
    let btf = u64_at(object, section_header(object, ".BTF") + 24);
    // BTF header: hdr_len at 4, str_off at 16, str_len at 20.
    let strings = btf + u32_at(btf + 4) + u32_at(btf + 16);
    let table = &object[strings..strings + u32_at(btf + 20)];
    let needle = format!("\0{name}\0");
    let at = table.windows(needle.len()).position(|w| w == needle.as_bytes()).expect("the BTF string exists");
    let mut out = object.to_vec();
    out[strings + at + 1] = 0x80;
    out
}

fn assert_btf_refused<T: std::fmt::Debug>(what: &str, res: Result<T, KernelError>) {
    match res {
        Err(KernelError::BtfStringNotUtf8 { offset, text }) => {
            assert!(offset > 0 && text == "\\x80dp_md", "{what}: {offset} {text}");
        }
        other => panic!("{what}: expected BtfStringNotUtf8, got {other:?}"),
    }
}

#[test]
fn non_utf8_btf_strings_are_refused_by_every_entry_point() {
    if !common::kernel_access() {
        return;
    }
    let Some(object) = common::compile_fixture("hooks", &[]) else { return };
    let bad = corrupt_btf_string(&object, "xdp_md");
    // duet's own parser reads the object (BTF is the kernel's business), so this is the case of
    // an object that `duet inspect` shows and the kernel commands used to crash on.
    assert!(duet_object::Object::parse(&bad).is_ok());

    assert_btf_refused("load_check", duet_kernel::load_check(&bad));
    assert_btf_refused("list_programs", duet_kernel::list_programs(&bad));
    let packets = [common::frame(64, 0)];
    let input = TestRunInput {
        object: &bad,
        program: "xdp_events",
        packets: &packets,
        maps_in: &[],
        prog_arrays: &[],
        repeat: 1,
    };
    assert_btf_refused("test_run", duet_kernel::test_run(&input));
    assert_btf_refused("bench", duet_kernel::bench(&TestRunInput { repeat: 10, ..input }));
    let root = PinRoot::new();
    let req = AttachRequest {
        object: &bad,
        object_path: None,
        program: Some("xdp_events"),
        // No such interface: even if the check let the object through, nothing would attach.
        hook: Hook::Xdp { interface: "duetnone0".to_owned(), mode: XdpMode::Skb },
        netns: None,
        pin_root: &root.0,
    };
    assert_btf_refused("attach", duet_kernel::attach(&req));
    assert_eq!(std::fs::read_dir(&root.0).map(|d| d.count()).unwrap_or(0), 0, "nothing pinned");

    // The intact object loads.
    assert!(duet_kernel::load_check(&object).is_ok());
}

#[test]
fn duet_userspace_only_programs_are_refused_by_name() {
    if !common::kernel_access() {
        return;
    }
    let Some(object) = common::compile_fixture("userspace", &[]) else { return };
    let refused = |what: &str, res: Result<(), KernelError>, program: &str| {
        let err = res.expect_err(what);
        assert!(matches!(&err, KernelError::UserspaceOnlyProgram { kernel_programs: true, .. }), "{what}: {err:?}");
        let text = err.to_string();
        let expected = format!(
            "program {program} is a duet userspace-only program type (duet/http_request): it runs in \
             `duet mesh`, not in the kernel"
        );
        assert!(text.starts_with(&expected), "{what}: {text}");
    };
    refused("load_check", duet_kernel::load_check(&object).map(drop), "on_request");
    refused("list_programs", duet_kernel::list_programs(&object).map(drop), "on_request");
    let packets = [common::frame(64, 0)];
    let input = TestRunInput {
        object: &object,
        program: "on_request",
        packets: &packets,
        maps_in: &[],
        prog_arrays: &[],
        repeat: 1,
    };
    refused("test_run", duet_kernel::test_run(&input).map(drop), "on_request");
    // The XDP program beside it cannot go into the kernel either: aya loads whole objects.
    refused("test_run xdp", duet_kernel::test_run(&TestRunInput { program: "pass", ..input }).map(drop), "on_request");
    let root = PinRoot::new();
    let req = AttachRequest {
        object: &object,
        object_path: None,
        program: Some("on_request"),
        hook: Hook::Xdp { interface: "duetnone0".to_owned(), mode: XdpMode::Skb },
        netns: None,
        pin_root: &root.0,
    };
    refused("attach", duet_kernel::attach(&req).map(drop), "on_request");
}

fn u32_at(object: &[u8], at: usize) -> usize {
    u32::from_le_bytes(object[at..at + 4].try_into().unwrap()) as usize
}

fn u64_at(object: &[u8], at: usize) -> usize {
    u64::from_le_bytes(object[at..at + 8].try_into().unwrap()) as usize
}

/// The file offset of section `name`'s header (ELF64 little endian).
fn section_header(object: &[u8], name: &str) -> usize {
    let u16_at = |at: usize| usize::from(u16::from_le_bytes(object[at..at + 2].try_into().unwrap()));
    let (shoff, shentsize, shnum, shstrndx) = (u64_at(object, 0x28), u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let header = |i: usize| shoff + i * shentsize;
    let names = u64_at(object, header(shstrndx) + 24);
    let needle = format!("{name}\0");
    (0..shnum)
        .map(header)
        .find(|&h| object[names + u32_at(object, h)..].starts_with(needle.as_bytes()))
        .unwrap_or_else(|| panic!("the object has a {name} section"))
}

/// `object` with the size in section `name`'s header replaced by `size`.
fn claim_section_size(object: &[u8], name: &str, size: u64) -> Vec<u8> {
    let h = section_header(object, name);
    let mut out = object.to_vec();
    out[h + 32..h + 40].copy_from_slice(&size.to_le_bytes());
    out
}

/// A `.bss` that claims 2^60 bytes made `duet load` abort ("memory allocation of ... failed"):
/// aya-obj allocates a global data section whole. Found by the `kernel_prepare` fuzz target.
#[test]
fn a_global_data_section_larger_than_a_map_value_is_refused_before_aya() {
    if !common::kernel_access() {
        return;
    }
    let Some(object) = common::compile_fixture("smoke", &[]) else { return };
    let bad = claim_section_size(&object, ".bss", 1 << 60);
    let refused = |what: &str, res: Result<(), KernelError>| match res {
        Err(KernelError::GlobalDataTooLarge { section, size, max }) => {
            assert_eq!((section.as_str(), size, max), (".bss", 1 << 60, duet_object::MAX_GLOBAL_DATA), "{what}");
        }
        other => panic!("{what}: expected GlobalDataTooLarge, got {other:?}"),
    };
    refused("load_check", duet_kernel::load_check(&bad).map(drop));
    refused("list_programs", duet_kernel::list_programs(&bad).map(drop));
    // At the limit the object still reaches aya (which then loads or refuses it as usual).
    let at_limit = claim_section_size(&object, ".bss", duet_object::MAX_GLOBAL_DATA);
    assert!(!matches!(duet_kernel::list_programs(&at_limit), Err(KernelError::GlobalDataTooLarge { .. })));
}
