//! duet's userspace-only http program types (docs/ABI.md version 2): their context, the http
//! helpers 10000..=10005 (only in http programs, only the reading ones in route programs), the
//! buffers helpers fill, and the filters' return values.

use duet_object::ProgramKind;
use duet_verifier::testfile::TestFile;
use duet_verifier::{MapInfo, MemRegion, ProgramType, VerifyContext};

/// A request filter: reads header `x-user` into a 32-byte stack buffer; without it, responds
/// 401 "who?" and returns 1; with it, copies it to `x-seen`, adds `x-h2: 1` on HTTP/2, returns 0.
const GATE: &str = "
    mov %r6, %r1
    lddw %r1, 0x726573752d78        # \"x-user\"
    stxdw [%r10-8], %r1
    mov %r1, %r6
    mov %r2, %r10
    add %r2, -8
    mov %r3, 6
    mov %r4, %r10
    add %r4, -40
    mov %r5, 32
    call 10001                      # http_header_get
    jsge %r0, 0, present
    mov %r1, 0x3f6f6877             # \"who?\"
    stxw [%r10-48], %r1
    mov %r1, %r6
    mov %r2, 401
    mov %r3, %r10
    add %r3, -48
    mov %r4, 4
    call 10005                      # http_respond
    mov %r0, 1
    exit
present:
    mov %r7, %r0
    jle %r7, 32, short
    mov %r7, 32
short:
    lddw %r1, 0x6e6565732d78        # \"x-seen\"
    stxdw [%r10-56], %r1
    mov %r1, %r6
    mov %r2, %r10
    add %r2, -56
    mov %r3, 6
    mov %r4, %r10
    add %r4, -40
    mov %r5, %r7
    call 10002                      # http_header_set
    ldxw %r1, [%r6+20]              # http_version
    jne %r1, 20, done
    lddw %r1, 0x32682d78            # \"x-h2\"
    stxdw [%r10-56], %r1
    mov %r1, 0x31                   # \"1\"
    stxb [%r10-64], %r1
    mov %r1, %r6
    mov %r2, %r10
    add %r2, -56
    mov %r3, 4
    mov %r4, %r10
    add %r4, -64
    mov %r5, 1
    call 10003                      # http_header_add
done:
    mov %r0, 0
    exit
";

/// A route program: the method's first byte decides the cluster; endpoint left to the balancer.
const ROUTE: &str = "
    mov %r2, 0                      # field 0: method
    mov %r3, %r10
    add %r3, -8
    mov %r4, 8
    call 10000                      # http_field
    jslt %r0, 0, decline
    ldxb %r1, [%r10-8]
    lddw %r0, 0xffffffff
    jne %r1, 0x50, get              # 'P'
    lddw %r0, 0x1ffffffff
get:
    exit
decline:
    mov %r0, -1
    exit
";

fn verify(ty: ProgramType, src: &str) -> Result<duet_verifier::VerifiedProgram, String> {
    verify_with(VerifyContext::new(ty), src)
}

fn verify_with(ctx: VerifyContext, src: &str) -> Result<duet_verifier::VerifiedProgram, String> {
    let file = TestFile::parse(src).expect("assembles");
    let program = duet_isa::Program::from_insns(&file.insns).expect("valid bytecode");
    duet_verifier::verify(&program, &ctx).map_err(|r| r.to_string())
}

fn rejected(ty: ProgramType, src: &str, expect: &str) {
    let msg = verify(ty, src).map(drop).expect_err("the program must be rejected");
    assert!(msg.contains(expect), "expected `{expect}` in:\n{msg}");
}

#[test]
fn http_filters_and_route_programs_verify() {
    for ty in [ProgramType::HttpRequest, ProgramType::HttpResponse] {
        let proof = verify(ty, GATE).unwrap_or_else(|e| panic!("{ty:?}: {e}"));
        assert_eq!(proof.program_type(), ty);
        // The context load is a field translation, as for xdp_md.
        let ldxw = proof.program().insns().iter().find(|(_, i)| i.op == duet_isa::Op::LdxW).unwrap().0;
        assert_eq!(proof.facts(ldxw).mem, Some(MemRegion::Context));
    }
    verify(ProgramType::Route, ROUTE).expect("route program");
}

#[test]
fn http_program_types_come_from_duet_sections_and_have_no_kernel_type() {
    for (kind, ty) in [
        (ProgramKind::HttpRequest, ProgramType::HttpRequest),
        (ProgramKind::HttpResponse, ProgramType::HttpResponse),
        (ProgramKind::Route, ProgramType::Route),
    ] {
        assert_eq!(ProgramType::from_kind(&kind), Some(ty));
        assert_eq!(ty.kernel_prog_type(), None);
        assert!(ty.is_http());
        assert_eq!(ty.context_name(), "struct duet_http_md");
    }
    assert_eq!(ProgramType::Xdp.kernel_prog_type(), Some(6));
    assert!(!ProgramType::Xdp.is_http());
    assert_eq!(duet_verifier::helper_name(10002), Some("http_header_set"));
}

#[test]
fn http_helpers_are_refused_outside_http_programs() {
    let set = "
        mov %r6, %r1
        stdw [%r10-8], 0x61
        mov %r2, %r10
        add %r2, -8
        mov %r3, 1
        mov %r4, %r10
        add %r4, -8
        mov %r5, 1
        call 10002
        mov %r0, 2
        exit";
    for ty in [ProgramType::Xdp, ProgramType::SocketFilter, ProgramType::KProbe] {
        rejected(ty, set, "helper 10002 (http_header_set) is a duet userspace helper, only for http programs");
    }
    rejected(
        ProgramType::Xdp,
        "mov %r2, 0\nmov %r3, 0\nmov %r4, 0\ncall 10000\nmov %r0, 2\nexit",
        "helper 10000 (http_field)",
    );
}

#[test]
fn route_programs_may_only_read_the_exchange() {
    let set = "
        stdw [%r10-8], 0x61
        mov %r2, %r10
        add %r2, -8
        mov %r3, 1
        mov %r4, %r10
        add %r4, -8
        mov %r5, 1
        call 10002
        mov %r0, 0
        exit";
    rejected(
        ProgramType::Route,
        set,
        "helper 10002 (http_header_set) changes the exchange, which route programs may only read",
    );
    verify(ProgramType::HttpRequest, set).expect("a request filter may set headers");
    let respond = "mov %r2, 403\nmov %r3, 0\nmov %r4, 0\ncall 10005\nmov %r0, -1\nexit";
    rejected(ProgramType::Route, respond, "helper 10005 (http_respond) changes the exchange");
    let remove = "stdw [%r10-8], 0x61\nmov %r2, %r10\nadd %r2, -8\nmov %r3, 1\ncall 10004\nmov %r0, 0\nexit";
    rejected(ProgramType::Route, remove, "helper 10004 (http_header_remove)");
}

#[test]
fn the_context_is_24_read_only_bytes_of_4_byte_fields() {
    let ty = ProgramType::HttpRequest;
    for off in (0..24).step_by(4) {
        verify(ty, &format!("ldxw %r0, [%r1+{off}]\nand %r0, 1\nexit")).unwrap_or_else(|e| panic!("offset {off}: {e}"));
    }
    rejected(ty, "stw [%r1+0], 1\nmov %r0, 0\nexit", "the context is read-only");
    rejected(ty, "mov %r2, 1\nstxw [%r1+4], %r2\nmov %r0, 0\nexit", "the context is read-only");
    rejected(ty, "ldxw %r0, [%r1+24]\nmov %r0, 0\nexit", "struct duet_http_md has no field at offset 24");
    rejected(ty, "ldxw %r0, [%r1+2]\nmov %r0, 0\nexit", "no field at offset 2");
    rejected(ty, "ldxdw %r0, [%r1+0]\nmov %r0, 0\nexit", "8-byte read of struct duet_http_md.phase, a 4-byte field");
    rejected(ProgramType::Route, "ldxh %r0, [%r1+12]\nexit", "2-byte read of struct duet_http_md.remote_port");
}

#[test]
fn filters_return_0_or_1_and_route_programs_any_number() {
    rejected(ProgramType::HttpRequest, "mov %r0, 2\nexit", "the http_request program may return 2");
    rejected(ProgramType::HttpResponse, "mov %r0, -1\nexit", "http filters return 0 (continue) or 1 (respond)");
    // A helper's result may be anything: returning it from a filter is refused, from a route
    // program fine; masking it makes a filter's return valid.
    let field = "mov %r2, 0\nmov %r3, 0\nmov %r4, 0\ncall 10000\n";
    rejected(ProgramType::HttpRequest, &format!("{field}exit"), "may return a value in");
    verify(ProgramType::HttpRequest, &format!("{field}and %r0, 1\nexit")).expect("masked");
    verify(ProgramType::Route, &format!("{field}exit")).expect("route programs return any number");
    verify(ProgramType::HttpRequest, "mov %r0, 1\nexit").expect("1");
}

#[test]
fn buffers_helpers_fill_must_be_writable_and_count_as_initialised_only_where_surely_written() {
    let ty = ProgramType::HttpRequest;
    // A buffer never written before the call is fine, and readable after it.
    let fill =
        "mov %r2, 1\nmov %r3, %r10\nadd %r3, -16\nmov %r4, 16\ncall 10000\nldxdw %r0, [%r10-16]\nand %r0, 1\nexit";
    verify(ty, fill).expect("uninitialised output buffer");
    // With a size that may be 0, no byte is surely written: reading it is reading uninit stack.
    let maybe = "
        call 7
        and %r0, 15
        mov %r4, %r0
        mov %r1, %r6
        mov %r2, 1
        mov %r3, %r10
        add %r3, -16
        call 10000
        ldxb %r0, [%r10-16]
        and %r0, 1
        exit";
    let maybe = format!("mov %r6, %r1\n{maybe}");
    let unprivileged = || {
        let mut ctx = VerifyContext::new(ty);
        ctx.config.unprivileged = true;
        ctx
    };
    let msg = verify_with(unprivileged(), &maybe).map(drop).expect_err("uninitialised stack read");
    assert!(msg.contains("never written"), "{msg}");
    // A privileged loader (duet's default rules) may read it: an unknown number.
    verify(ty, &maybe).expect("privileged: uninitialised stack reads as a number");
    // Read-only memory cannot be filled.
    let mut ctx = VerifyContext::new(ty);
    let mut rodata = MapInfo::new(".rodata", 2, 4, 16, 1);
    rodata.read_only = true;
    ctx.maps = vec![rodata];
    let into_rodata =
        "mov %r6, %r1\nlddw %r3, map_value 0, 0\nmov %r1, %r6\nmov %r2, 1\nmov %r4, 16\ncall 10000\nmov %r0, 0\nexit";
    let msg = verify_with(ctx, into_rodata).map(drop).expect_err("read-only");
    assert!(msg.contains("read-only"), "{msg}");
    // Past the end of the stack frame.
    rejected(
        ty,
        "mov %r2, 1\nmov %r3, %r10\nadd %r3, -8\nmov %r4, 16\ncall 10000\nmov %r0, 0\nexit",
        "outside the 512-byte frame",
    );
    // Not a pointer at all.
    rejected(
        ty,
        "mov %r2, 1\nmov %r3, 64\nmov %r4, 16\ncall 10000\nmov %r0, 0\nexit",
        "http_field expects a pointer to 16 writable bytes in R3",
    );
    // The name is read: it must be initialised (for an unprivileged loader).
    let name = "mov %r2, %r10\nadd %r2, -8\nmov %r3, 8\nmov %r4, 0\nmov %r5, 0\ncall 10001\nmov %r0, 0\nexit";
    let msg = verify_with(unprivileged(), name).map(drop).expect_err("uninitialised name");
    assert!(msg.contains("http_header_get reads 8 bytes of memory at fp-8"), "{msg}");
    verify(ty, name).expect("privileged: an uninitialised name is unknown bytes");
    // An unbounded length.
    rejected(
        ty,
        "mov %r6, %r1\ncall 7\nmov %r4, %r0\nmov %r1, %r6\nmov %r2, 1\nmov %r3, %r10\nadd %r3, -16\ncall 10000\nmov %r0, 0\nexit",
        "the size in R4 has no upper bound",
    );
}

#[test]
fn http_programs_cannot_tail_call_or_use_xdp_helpers() {
    let tail = "mov %r2, 0\nmov %r3, 0\ncall 12\nmov %r0, 0\nexit";
    rejected(ProgramType::HttpRequest, tail, "is not available to http_request programs");
    rejected(
        ProgramType::Route,
        "mov %r1, 1\nmov %r2, 0\ncall 23\nexit",
        "bpf_redirect is not available to route programs",
    );
    // Base helpers (time, randomness, maps) are fine.
    verify(ProgramType::Route, "call 5\nexit").expect("ktime");
}
