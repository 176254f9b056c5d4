//! Rules the kernel enforces that duet once missed (issue 13), checked without a kernel: the
//! negative corpus (`tests/verifier/*.s`, `tests/verifier/c/*.c`) checks the same programs
//! against the kernel itself. These tests cover what that corpus cannot express: `.rodata`
//! contents and maps reached through an object's relocations.

use duet_isa::{Program, assemble};
use duet_object::{MapDef, MapOrigin};
use duet_verifier::{MapInfo, ProgramType, VerifyContext};

fn rodata(contents: &[u8], value_size: u32) -> MapInfo {
    MapInfo::from(&MapDef {
        name: ".rodata".into(),
        map_type: 2,
        key_size: 4,
        value_size,
        max_entries: 1,
        flags: 0x80,
        initial_data: Some(contents.to_vec()),
        origin: MapOrigin::Rodata,
        key_type: None,
        value_type: None,
        inner: None,
    })
}

fn verify(src: &str, ctx: &VerifyContext) -> Result<(), String> {
    let program = Program::from_insns(&assemble(src).expect("assembles")).expect("valid");
    duet_verifier::verify(&program, ctx).map(drop).map_err(|r| r.to_string())
}

/// `bpf_printk("...")` passes a `.rodata` format string longer than 8 bytes to
/// bpf_trace_printk; the verifier once panicked folding it into a constant.
#[test]
fn printk_format_strings_of_every_length_verify_without_panicking() {
    let format = b"packet of %d bytes from %pI4 on queue %u\n\0";
    let mut ctx = VerifyContext::new(ProgramType::Xdp);
    ctx.maps = vec![rodata(format, format.len() as u32)];
    for off in 0..format.len() {
        for len in 1..=format.len() + 4 {
            let src = format!(
                "lddw %r1, map_value 0, {off}\nmov %r2, {len}\nmov %r3, 7\nmov %r4, 0\nmov %r5, 0\ncall 6\nmov %r0, 2\nexit"
            );
            let verdict = verify(&src, &ctx);
            if off + len <= format.len() {
                assert!(verdict.is_ok(), "offset {off}, {len} bytes: {}", verdict.unwrap_err());
            } else {
                // Past the end of the value: a clear rejection, never a panic.
                let msg = verdict.expect_err("reads past the value");
                assert!(msg.contains("map `.rodata` value"), "offset {off}, {len} bytes: {msg}");
            }
        }
    }
}

/// `bpf_printk("...")` with no values leaves r3-r5 unset; the kernel declares only the first two
/// arguments of bpf_trace_printk, so that verifies.
#[test]
fn printk_without_values_verifies() {
    let format = b"hello from XDP\n\0";
    let mut ctx = VerifyContext::new(ProgramType::Xdp);
    ctx.maps = vec![rodata(format, format.len() as u32)];
    let src = format!("lddw %r1, map_value 0, 0\nmov %r2, {}\ncall 6\nmov %r0, 2\nexit", format.len());
    assert_eq!(verify(&src, &ctx), Ok(()));
}

/// Loads from `.rodata` still become constants (the kernel does the same): a branch on a
/// loaded constant is decided, so the invalid access behind it is never reached.
#[test]
fn rodata_loads_are_still_known_constants() {
    let mut ctx = VerifyContext::new(ProgramType::Xdp);
    ctx.maps = vec![rodata(&[3, 0, 0, 0, 0, 0, 0, 0, 9], 16)];
    let src = |off: u32| {
        format!("lddw %r1, map_value 0, {off}\nldxdw %r0, [%r1+0]\njeq %r0, 3, ok\nldxb %r0, [%r0+0]\nok:\nexit")
    };
    // r0 = 3: the dereference of a number is dead code.
    assert_eq!(verify(&src(0), &ctx), Ok(()));
    // r0 = 9 << 56: it is not.
    let msg = verify(&src(1), &ctx).expect_err("r0 = 9 << 56");
    assert!(msg.contains("not a pointer"), "{msg}");
}

/// An `lddw` map load no relocation bound names a file descriptor, not one of the object's
/// maps: rejected, even though map 0 exists.
#[test]
fn unbound_map_loads_are_rejected_not_bound_to_the_first_map() {
    let mut ctx = VerifyContext::new(ProgramType::Xdp);
    ctx.maps = vec![MapInfo::new("counts", 2, 4, 8, 1)];
    let src =
        "mov %r1, 0\nstxw [%r10-4], %r1\nmov %r2, %r10\nadd %r2, -4\nlddw %r1, map_fd 0\ncall 1\nmov %r0, 2\nexit";
    assert_eq!(verify(src, &ctx), Ok(()), "a bound reference verifies");
    ctx.unbound_map_loads = vec![(4, 0)];
    let msg = verify(src, &ctx).expect_err("an unbound reference is rejected");
    assert!(msg.contains("fd 0 is not pointing to valid bpf_map"), "{msg}");
    // duet-object gives unbound loads an index no map has; without the context's note the
    // reference is still refused.
    let mut insns = assemble(src).expect("assembles");
    insns[4].imm = i64::from(duet_object::UNBOUND_MAP);
    let program = Program::from_insns(&insns).expect("valid");
    ctx.unbound_map_loads.clear();
    let msg = duet_verifier::verify(&program, &ctx).map(drop).expect_err("no map has the unbound index").to_string();
    assert!(msg.contains("but the program has 1 map(s)"), "{msg}");
}

/// A map of maps: the outer lookup, once checked, is a handle of the inner map; its template
/// decides the key and value sizes. Without the template (duet-object does not read it from an
/// object yet) duet refuses the inner map's use rather than guess sizes, and a lookup in an
/// inner map of an object's map of maps says why. The kernel's verdicts on the same shapes are
/// in `tests/verifier/agree/c/mim_*.c`.
#[test]
fn map_of_maps_lookups_yield_the_inner_map_by_its_template() {
    let src = "stw [%r10-4], 0\nlddw %r1, map_fd 0\nmov %r2, %r10\nadd %r2, -4\ncall 1\njeq %r0, 0, out\n\
               mov %r1, %r0\nmov %r2, %r10\nadd %r2, -4\ncall 1\njeq %r0, 0, out\nldxdw %r0, [%r0+OFF]\nexit\n\
               out:\nmov %r0, 2\nexit";
    for (outer_type, name) in [(12, "array of maps"), (13, "hash of maps")] {
        let mut ctx = VerifyContext::new(ProgramType::Xdp);
        let mut outer = MapInfo::new("outer", outer_type, 4, 4, 2);
        ctx.maps = vec![outer.clone()];
        let unknown = verify(&src.replace("OFF", "0"), &ctx).expect_err("no template");
        assert!(unknown.contains("whose definition (the inner map template) duet does not know"), "{name}: {unknown}");

        outer.inner = Some(Box::new(MapInfo::new("inner", 2, 4, 16, 4)));
        ctx.maps = vec![outer.clone()];
        for (off, ok) in [(0, true), (8, true), (12, false)] {
            let verdict = verify(&src.replace("OFF", &off.to_string()), &ctx);
            assert_eq!(verdict.is_ok(), ok, "{name}, 8 bytes at {off} of a 16-byte inner value: {verdict:?}");
        }
        // The inner handle is not the outer map: its type rules apply (a hash key of 8 bytes
        // read from a 4-byte stack slot at fp-4 runs past the frame).
        outer.inner = Some(Box::new(MapInfo::new("inner", 1, 8, 8, 4)));
        ctx.maps = vec![outer];
        let msg = verify(&src.replace("OFF", "0"), &ctx).expect_err("8-byte key at fp-4");
        assert!(msg.contains("8-byte stack read at fp-4"), "{name}: {msg}");
    }
}
