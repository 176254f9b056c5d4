use super::*;

/// A BTF blob built by hand: `types` are (info, size_or_type, extra words), `strings` the
/// string section.
fn blob(types: &[(u32, u32, &[u32])], strings: &[u8]) -> Vec<u8> {
    let mut ty = Vec::new();
    for (info, size, extra) in types {
        ty.extend_from_slice(&0u32.to_le_bytes());
        ty.extend_from_slice(&info.to_le_bytes());
        ty.extend_from_slice(&size.to_le_bytes());
        for w in *extra {
            ty.extend_from_slice(&w.to_le_bytes());
        }
    }
    let mut out = vec![0x9f, 0xeb, 1, 0];
    out.extend_from_slice(&24u32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(ty.len() as u32).to_le_bytes());
    out.extend_from_slice(&(ty.len() as u32).to_le_bytes());
    out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
    out.extend_from_slice(&ty);
    out.extend_from_slice(strings);
    out
}

/// Sets a record's name offset (the first word of record `i`, counting from 0).
fn name_record(mut b: Vec<u8>, offsets: &[(usize, u32)]) -> Vec<u8> {
    // Records here: 1 INT (16 bytes), 2 PTR (12), 3 STRUCT inner (12 + 12), 4 ARRAY (24),
    // 5 STRUCT outer (12 + 5 * 12).
    let starts = [0usize, 16, 28, 52, 76];
    for (i, off) in offsets {
        let at = 24 + starts[*i];
        b[at..at + 4].copy_from_slice(&off.to_le_bytes());
    }
    b
}

/// `struct outer { u32 a; struct inner { u32 x; } in; void *p; u32 arr[2]; u32 bits:3; }` with
/// `outer` and `p` named.
fn sample() -> KernelBtf {
    let strings = b"\0outer\0p\0a\0";
    let types: &[(u32, u32, &[u32])] = &[
        (KIND_INT << 24, 4, &[32]),
        (KIND_PTR << 24, 0, &[]),
        (KIND_STRUCT << 24 | 1, 4, &[0, 1, 0]),
        (KIND_ARRAY << 24, 0, &[1, 1, 2]),
        (KIND_STRUCT << 24 | 1 << 31 | 5, 32, &[9, 1, 0, 0, 3, 32, 7, 2, 64, 0, 4, 128, 0, 1, 3 << 24 | 192]),
    ];
    let b = name_record(blob(types, strings), &[(4, 1)]);
    KernelBtf::parse(b).expect("sample BTF parses")
}

#[test]
fn number_fields_read_as_numbers_and_pointers_are_named() {
    let btf = sample();
    let id = btf.struct_id("outer").expect("outer");
    assert_eq!(btf.read_field(id, 0, 4), FieldRead::Scalar);
    assert_eq!(btf.read_field(id, 0, 2), FieldRead::Scalar);
    assert_eq!(btf.read_field(id, 4, 4), FieldRead::Scalar, "a member of the nested struct");
    assert_eq!(btf.read_field(id, 8, 8), FieldRead::Pointer("p".to_owned()));
    assert_eq!(btf.read_field(id, 16, 8), FieldRead::Scalar, "an int array read as scratch space");
    assert_eq!(btf.read_field(id, 20, 4), FieldRead::Scalar);
    assert_eq!(btf.read_field(id, 24, 1), FieldRead::Scalar, "a bitfield read whole");
}

#[test]
fn reads_the_kernel_would_refuse_are_refused() {
    let btf = sample();
    let id = btf.struct_id("outer").expect("outer");
    for (off, size) in [(8, 4), (12, 4), (2, 4), (28, 8), (32, 1), (u32::MAX, 8)] {
        assert!(
            matches!(btf.read_field(id, off, size), FieldRead::Refused(_)),
            "{size} bytes at {off}: {:?}",
            btf.read_field(id, off, size)
        );
    }
}

#[test]
fn malformed_blobs_are_errors_not_panics() {
    let good = blob(&[(KIND_INT << 24, 4, &[32])], b"\0");
    for cut in 0..good.len() {
        let _ = KernelBtf::parse(good[..cut].to_vec());
    }
    assert!(KernelBtf::parse(vec![0u8; 64]).is_err());
    let btf = KernelBtf::parse(good).expect("parses");
    // Not a struct, and an id out of range.
    assert!(matches!(btf.read_field(1, 0, 4), FieldRead::Refused(_)));
    assert!(matches!(btf.read_field(99, 0, 4), FieldRead::Refused(_)));
    // A typedef cycle ends.
    let cyc = KernelBtf::parse(blob(&[(KIND_TYPEDEF << 24, 1, &[])], b"\0")).expect("parses");
    assert!(matches!(cyc.read_field(1, 0, 4), FieldRead::Refused(_)));
}

/// The running kernel's BTF, where it is readable (CI=true makes it mandatory): every map
/// structure duet names exists, starts with its `struct bpf_map`, and `max_entries` reads as a
/// number while `ops` is a pointer.
#[test]
fn the_running_kernels_map_structures() {
    let btf = match running_kernel() {
        Ok(btf) => btf,
        Err(why) => {
            assert!(std::env::var("CI").ok().as_deref() != Some("true"), "{why} (CI=true makes this a failure)");
            eprintln!("\n!!! SKIPPED: {why} !!!\n");
            return;
        }
    };
    let map = btf.struct_id("bpf_map").expect("struct bpf_map");
    let ops = btf.member_offset(map, "ops").expect("bpf_map.ops");
    let max_entries = btf.member_offset(map, "max_entries").expect("bpf_map.max_entries");
    eprintln!("struct bpf_map: ops at {ops}, max_entries at {max_entries}, {:?} bytes", btf.struct_size(map));
    for ty in 1..=32 {
        let Some(name) = map_struct_name(ty) else { continue };
        let id = btf.struct_id(name).unwrap_or_else(|| panic!("no struct {name}"));
        assert_eq!(btf.member_offset(id, "map"), Some(0), "{name} starts with its struct bpf_map");
        eprintln!("struct {name}: {:?} bytes", btf.struct_size(id));
        assert_eq!(btf.read_field(id, ops, 8), FieldRead::Pointer("ops".to_owned()), "{name}");
        assert_eq!(btf.read_field(id, max_entries, 4), FieldRead::Scalar, "{name}");
        assert!(matches!(btf.read_field(id, max_entries, 8), FieldRead::Refused(_)), "{name}: 8 bytes of a u32");
        // Every offset an instruction can name, every size: an answer, never a panic.
        for off in 0..=u32::from(i16::MAX as u16) {
            for size in [1, 2, 4, 8] {
                let _ = btf.read_field(id, off, size);
            }
        }
    }
}

/// A program reading `max_entries` (offset 76) through an array's handle, verified with the
/// given kernel types.
fn verify_max_entries_read(types: crate::KernelTypes, unprivileged: bool) -> Result<(), String> {
    let insns = duet_isa::assemble("    lddw %r1, map_fd 0\n    ldxw %r0, [%r1+76]\n    exit\n").expect("assembles");
    let program = duet_isa::Program::from_insns(&insns).expect("valid");
    let mut ctx = crate::VerifyContext::new(crate::ProgramType::Xdp);
    ctx.maps.push(crate::MapInfo::new("m", map_type::ARRAY, 4, 8, 4));
    ctx.config.kernel_types = types;
    ctx.config.unprivileged = unprivileged;
    crate::verify(&program, &ctx).map(drop).map_err(|r| r.to_string())
}

#[test]
fn map_field_reads_follow_the_given_kernel_types() {
    // `struct bpf_array { u32 max_entries at 76; }`, 80 bytes.
    let strings = b"\0bpf_array\0max_entries\0";
    let types: &[(u32, u32, &[u32])] = &[(KIND_INT << 24, 4, &[32]), (KIND_STRUCT << 24 | 1, 80, &[11, 1, 76 * 8])];
    let mut b = blob(types, strings);
    // The struct's name: record 2 starts after the 16-byte INT record.
    b[24 + 16..24 + 20].copy_from_slice(&1u32.to_le_bytes());
    let btf = Arc::new(KernelBtf::parse(b).expect("parses"));
    assert_eq!(verify_max_entries_read(crate::KernelTypes::Btf(btf.clone()), false), Ok(()));
    let unpriv = verify_max_entries_read(crate::KernelTypes::Btf(btf), true).expect_err("unprivileged");
    assert!(unpriv.contains("allowed only to CAP_PERFMON"), "{unpriv}");
    let none = verify_max_entries_read(crate::KernelTypes::Unavailable, false).expect_err("no BTF");
    assert!(none.contains("needs the kernel's BTF, which is not readable"), "{none}");
}
