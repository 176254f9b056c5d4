//! HTTP programs of ABI version 2 in the Wasm host (tests/wat/http.wat), against their eBPF
//! twins in the interpreter and the JIT: the same exchanges must end the same way (return value,
//! `http_respond`, every header change), and the errno rules must be those of `duet_vm::http`.

use duet_verifier::{ProgramType, VerifyContext};
use duet_vm::http::{
    FilterVerdict, HttpExchange, HttpField, HttpMd, HttpOutcome, HttpProgram, HttpRunState, MemoryExchange,
    RouteChoice, register_helpers,
};
use duet_vm::{Config, Env, Helpers, Interpreter, Jit};
use duet_wasm::{ProgramKind, WasmError, WasmModule, WasmOptions};

const HTTP: &str = include_str!("wat/http.wat");

fn load(wat: &str) -> Result<WasmModule, WasmError> {
    let bytes = wat::parse_str(wat).expect("test WAT parses");
    WasmModule::load(&bytes, &WasmOptions { env: Env::deterministic(), ..WasmOptions::default() })
}

/// `gate` of tests/wat/http.wat in eBPF.
const GATE: &str = "
    mov %r6, %r1
    lddw %r1, 0x726573752d78        # \"x-user\"
    stxdw [%r10-16], %r1
    mov %r1, %r6
    mov %r2, %r10
    add %r2, -16
    mov %r3, 6
    mov %r4, %r10
    add %r4, -48
    mov %r5, 32
    call 10001
    jsge %r0, 0, present
    mov %r1, 0x3f6f6877             # \"who?\"
    stxw [%r10-56], %r1
    mov %r1, %r6
    mov %r2, 401
    mov %r3, %r10
    add %r3, -56
    mov %r4, 4
    call 10005
    mov %r0, 1
    exit
present:
    mov %r7, %r0
    jle %r7, 32, short
    mov %r7, 32
short:
    lddw %r1, 0x6e6565732d78        # \"x-seen\"
    stxdw [%r10-64], %r1
    mov %r1, %r6
    mov %r2, %r10
    add %r2, -64
    mov %r3, 6
    mov %r4, %r10
    add %r4, -48
    mov %r5, %r7
    call 10002
    ldxw %r1, [%r6+20]
    jne %r1, 20, notwo
    lddw %r1, 0x32682d78            # \"x-h2\"
    stxdw [%r10-64], %r1
    mov %r1, 0x31
    stxb [%r10-72], %r1
    mov %r1, %r6
    mov %r2, %r10
    add %r2, -64
    mov %r3, 4
    mov %r4, %r10
    add %r4, -72
    mov %r5, 1
    call 10003
notwo:
    lddw %r1, 0x67756265642d78      # \"x-debug\"
    stxdw [%r10-64], %r1
    mov %r1, %r6
    mov %r2, %r10
    add %r2, -64
    mov %r3, 7
    call 10004
    mov %r0, 0
    exit
";

/// `stamp` of tests/wat/http.wat in eBPF.
const STAMP: &str = "
    mov %r6, %r1
    ldxw %r7, [%r6+4]
    jne %r7, 418, not_teapot
    mov %r0, 1
    exit
not_teapot:
    ldxw %r1, [%r6+0]
    stxw [%r10-24], %r1
    ldxw %r1, [%r6+4]
    stxw [%r10-20], %r1
    ldxw %r1, [%r6+8]
    stxw [%r10-16], %r1
    ldxw %r1, [%r6+12]
    stxw [%r10-12], %r1
    ldxw %r1, [%r6+16]
    stxw [%r10-8], %r1
    ldxw %r1, [%r6+20]
    stxw [%r10-4], %r1
    mov %r1, %r6
    mov %r2, 299
    mov %r3, %r10
    add %r3, -24
    mov %r4, 24
    call 10005
    jlt %r7, 500, done
    lddw %r1, 0x66612d7972746572    # \"retry-af\"
    stxdw [%r10-48], %r1
    lddw %r1, 0x726574              # \"ter\"
    stxdw [%r10-40], %r1
    mov %r1, 0x31
    stxb [%r10-56], %r1
    mov %r1, %r6
    mov %r2, %r10
    add %r2, -48
    mov %r3, 11
    mov %r4, %r10
    add %r4, -56
    mov %r5, 1
    call 10002
done:
    mov %r0, 0
    exit
";

/// `route` of tests/wat/http.wat in eBPF.
const ROUTE: &str = "
    mov %r2, 0
    mov %r3, %r10
    add %r3, -8
    mov %r4, 8
    call 10000
    jslt %r0, 0, decline
    ldxb %r1, [%r10-8]
    lddw %r0, 0xffffffff
    jeq %r1, 0x47, out              # 'G'
    lddw %r0, 0x100000000
    jeq %r1, 0x50, out              # 'P'
decline:
    mov %r0, -1
out:
    exit
";

/// The eBPF twin of a Wasm program, verified, in both engines.
struct Ebpf {
    interp: Interpreter,
    jit: Jit,
    program: HttpProgram,
}

impl Ebpf {
    fn new(src: &str, ty: ProgramType) -> Self {
        let program = duet_isa::Program::from_insns(&duet_isa::assemble(src).expect("assembles")).expect("valid");
        let verified = duet_verifier::verify(&program, &VerifyContext::new(ty)).unwrap_or_else(|r| panic!("{r}"));
        let mut helpers = Helpers::new();
        register_helpers(&mut helpers);
        Ebpf {
            interp: Interpreter::new(&verified, helpers.clone(), Config::default()).unwrap(),
            jit: Jit::new(&verified, helpers, Config::default()).unwrap(),
            program: HttpProgram::from_type(ty).unwrap(),
        }
    }

    fn run(&mut self, md: &HttpMd, ex: &mut dyn HttpExchange, jit: bool) -> HttpOutcome {
        let mut state = HttpRunState::new(self.program);
        let r0 = if jit {
            self.jit.run_http_with(md, &mut state, ex)
        } else {
            self.interp.run_http_with(md, &mut state, ex)
        }
        .expect("the eBPF program runs");
        HttpOutcome { ret: r0 as i64, responded: state.responded(), mutations: state.mutations() }
    }
}

fn exchange(method: &str, headers: &[(&str, &str)]) -> MemoryExchange {
    MemoryExchange::new(
        [(HttpField::Method, method.as_bytes()), (HttpField::Path, &b"/a?b=c"[..])],
        headers.iter().map(|(n, v)| (*n, v.as_bytes())),
    )
}

fn md(phase: u32, status: u32, http_version: u32) -> HttpMd {
    HttpMd {
        phase,
        status,
        remote_ip4: HttpMd::ip4([192, 0, 2, 7]),
        remote_port: 40001,
        local_port: 8080,
        http_version,
    }
}

fn cases() -> Vec<(HttpMd, MemoryExchange)> {
    vec![
        (md(0, 0, 11), exchange("GET", &[])),
        (md(0, 0, 11), exchange("GET", &[("x-user", "ada"), ("x-debug", "1"), ("x-long", "0123456789")])),
        (md(0, 0, 20), exchange("POST", &[("x-user", &"z".repeat(40)), ("x-seen", "old"), ("x-seen", "older")])),
        (md(0, 0, 10), exchange("DELETE", &[("x-user", ""), ("x-long", "0123456789")])),
        (md(1, 503, 11), exchange("GET", &[("server", "up")])),
        (md(1, 418, 20), exchange("PUT", &[])),
        (md(1, 200, 11), MemoryExchange::default()),
    ]
}

/// Runs the Wasm program `name` and its eBPF twin on every case; all three must agree.
fn differential(name: &str, src: &str, ty: ProgramType) -> Vec<(HttpOutcome, MemoryExchange)> {
    let module = load(HTTP).expect("loads");
    let mut wasm = module.executor(name).expect("executor");
    let mut ebpf = Ebpf::new(src, ty);
    let mut out = Vec::new();
    for (i, (md, ex)) in cases().into_iter().enumerate() {
        let mut w = ex.clone();
        let ow = wasm.run_http(&md, &mut w).unwrap_or_else(|e| panic!("{name} case {i}: {e}"));
        for jit in [false, true] {
            let mut e = ex.clone();
            let oe = ebpf.run(&md, &mut e, jit);
            assert_eq!(ow, oe, "{name} case {i} (jit: {jit}): outcome");
            assert_eq!(w, e, "{name} case {i} (jit: {jit}): exchange");
        }
        out.push((ow, w));
    }
    out
}

#[test]
fn the_modules_http_programs_are_listed_with_their_kinds() {
    let module = load(HTTP).unwrap();
    let mut kinds: Vec<(&str, ProgramKind)> = module.programs().iter().map(|p| (p.name.as_str(), p.kind)).collect();
    kinds.sort_by_key(|(name, _)| *name);
    assert_eq!(
        kinds,
        [
            ("errnos", ProgramKind::HttpRequest),
            ("gate", ProgramKind::HttpRequest),
            ("outside", ProgramKind::Xdp),
            ("route", ProgramKind::Route),
            ("stamp", ProgramKind::HttpResponse),
            ("wild", ProgramKind::HttpRequest),
        ]
    );
}

#[test]
fn a_request_filter_has_the_same_effects_in_wasm_and_ebpf() {
    let results = differential("gate", GATE, ProgramType::HttpRequest);
    assert_eq!(results[0].0.filter_verdict(), Ok(FilterVerdict::Respond));
    assert_eq!(results[0].1.response, Some((401, b"who?".to_vec())));
    assert_eq!(results[1].1.log, ["set x-seen=ada", "remove x-debug"]);
    assert_eq!(results[2].1.values("x-seen"), ["z".repeat(32).as_bytes()]);
    assert_eq!(results[2].1.values("x-h2"), [b"1"]);
}

#[test]
fn a_response_filter_has_the_same_effects_in_wasm_and_ebpf() {
    let results = differential("stamp", STAMP, ProgramType::HttpResponse);
    for ((o, ex), (md, _)) in results.iter().zip(cases()) {
        if md.status == 418 {
            assert_eq!(o.filter_verdict(), Ok(FilterVerdict::Forbidden));
        } else {
            assert_eq!(o.filter_verdict(), Ok(FilterVerdict::Continue));
            assert_eq!(ex.response, Some((299, md.to_bytes().to_vec())), "the context the program saw");
        }
    }
}

#[test]
fn a_route_program_chooses_the_same_in_wasm_and_ebpf() {
    let choices: Vec<RouteChoice> =
        differential("route", ROUTE, ProgramType::Route).iter().map(|(o, _)| o.route_choice()).collect();
    let get = RouteChoice::Pick { cluster: 0, endpoint: None };
    let post = RouteChoice::Pick { cluster: 1, endpoint: Some(0) };
    assert_eq!(choices, [get, get, post, RouteChoice::Decline, get, post, RouteChoice::Decline]);
}

/// The same results the eBPF VM's test (crates/vm/tests/http.rs) expects of its `errnos`.
#[test]
fn the_imports_follow_duet_vm_http_rules() {
    let module = load(HTTP).unwrap();
    let mut wasm = module.executor("errnos").unwrap();
    for (md, ex) in cases() {
        let mut ex = ex;
        let out = wasm.run_http(&md, &mut ex).unwrap();
        assert_eq!(out.filter_verdict(), Ok(FilterVerdict::Respond));
        assert_eq!(out.mutations, 32);
        let (status, body) = ex.response.clone().unwrap();
        assert_eq!(status, 201);
        let results: Vec<i64> = body.chunks(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect();
        let long = !ex.values("x-long").is_empty();
        let untouched = |b: [u8; 4]| u64::from_le_bytes([b[0], b[1], b[2], b[3], 0xff, 0xff, 0xff, 0xff]) as i64;
        let method = ex.field(HttpField::Method).map_or(-2, |m| m.len() as i64);
        let expected = [
            0,
            -22,
            -1,
            -1,
            -22,
            1,
            i64::from(b'v'),
            if long { 10 } else { -2 },
            if long { untouched(*b"0123") } else { untouched([0; 4]) },
            -22,
            0,
            -2,
            method,
            0,
            -22,
            10,
        ];
        assert_eq!(results, expected);
        assert_eq!(ex.values("x-n").len(), 30);
    }
}

#[test]
fn outside_an_http_run_the_imports_answer_eperm() {
    let module = load(HTTP).unwrap();
    let mut xdp = module.executor("outside").unwrap();
    assert_eq!(xdp.run_xdp(&mut vec![0u8; 60]).unwrap(), 2);
    // And http programs need run_http; run_http needs an http program.
    let err = xdp.run_http(&md(0, 0, 11), &mut MemoryExchange::default()).unwrap_err();
    assert!(matches!(err, WasmError::NotHttp { kind: ProgramKind::Xdp, .. }), "{err}");
    let mut gate = module.executor("gate").unwrap();
    assert!(matches!(gate.run_xdp(&mut vec![0u8; 60]), Err(WasmError::WrongKind { .. })));
}

#[test]
fn a_wild_pointer_is_a_fault_and_the_next_run_starts_clean() {
    let module = load(HTTP).unwrap();
    let mut wild = module.executor("wild").unwrap();
    let mut ex = exchange("GET", &[]);
    let err = wild.run_http(&md(0, 0, 11), &mut ex).unwrap_err();
    assert!(matches!(err, WasmError::Fault { .. }), "{err}");
    assert_eq!(ex, exchange("GET", &[]), "the exchange was not touched");
    let err = wild.run_http(&md(0, 0, 11), &mut ex).unwrap_err();
    assert!(matches!(err, WasmError::Fault { .. }), "a fresh instance faults the same way: {err}");
}

#[test]
fn abi_versions_and_signatures_are_checked() {
    let module = |version: i32, body: &str| {
        format!(
            "(module (memory (export \"memory\") 1)
               (func (export \"duet_abi_version\") (result i32) (i32.const {version}))
               (func (export \"duet_buffer\") (param i32) (result i32) (i32.const 1024))
               {body})"
        )
    };
    let xdp = "(func (export \"duet_prog_xdp_p\") (param i32 i32) (result i32) (i32.const 2))";
    let request = "(func (export \"duet_prog_http_request_r\") (param i32 i32) (result i32) (i32.const 0))";
    let import = "(import \"duet\" \"http_field\" (func (param i32 i32 i32) (result i64)))";
    load(&module(1, xdp)).expect("version 1 still loads");
    load(&module(2, xdp)).expect("version 2 without http programs");
    load(&module(2, request)).expect("version 2 with one");
    for (wat, want) in [
        (module(1, request), "exports `duet_prog_http_request_r`, which needs version 2"),
        (
            format!(
                "(module {import} (memory (export \"memory\") 1)
                   (func (export \"duet_abi_version\") (result i32) (i32.const 1))
                   (func (export \"duet_buffer\") (param i32) (result i32) (i32.const 1024)) {xdp})"
            ),
            "imports `http_field`, which needs version 2",
        ),
        (module(4, xdp), "implements versions 1 to 3"),
        (
            module(2, "(func (export \"duet_prog_route_x\") (param i32 i32) (result i32) (i32.const 0))"),
            "`duet_prog_route_x` must be (func (param i32 i32) (result i64))",
        ),
        (
            module(2, "(func (export \"duet_prog_http_response_x\") (param i32 i32) (result i64) (i64.const 0))"),
            "(result i32)",
        ),
    ] {
        let err = load(&wat).expect_err(want).to_string();
        assert!(err.contains(want), "expected `{want}` in: {err}");
    }
    let wrong_import = "(module (import \"duet\" \"http_respond\" (func (param i32 i32) (result i64)))
        (memory (export \"memory\") 1)
        (func (export \"duet_abi_version\") (result i32) (i32.const 2))
        (func (export \"duet_buffer\") (param i32) (result i32) (i32.const 1024))
        (func (export \"duet_prog_http_request_r\") (param i32 i32) (result i32) (i32.const 0)))";
    assert!(matches!(load(wrong_import), Err(WasmError::Abi { .. })), "an import with the wrong signature");
}
