//! HTTP programs (docs/ABI.md version 2) through the whole userspace path: an ELF object with
//! `duet/http_request`, `duet/http_response` and `duet/route` sections, `Module::load`, the
//! verifier, and `Module::http_runner` on the interpreter and the JIT. Every program runs on
//! every exchange in both engines (and in the checked engines), which must agree on the return
//! value, `http_respond`, the exchange's changes and the maps.

use std::sync::Arc;

use duet_isa::{Insn, Op, PseudoSrc, assemble};
use duet_object::Object;
use duet_vm::http::{
    FilterVerdict, HttpExchange, HttpField, HttpMd, HttpOutcome, MemoryExchange, RouteChoice, register_helpers,
};
use duet_vm::{Config, Engine, Env, Helpers, Interpreter, Jit, LoadOptions, Module, TrapKind};
use object::write::{Object as ElfWriter, Relocation, Symbol, SymbolSection};
use object::{
    Architecture, BinaryFormat, Endianness, RelocationFlags, SectionKind, SymbolFlags, SymbolKind, SymbolScope,
};

// === Building programs ===

/// A little assembler on top of duet's: strings on the stack, helper calls, results kept in a
/// stack array that the program can send back as its response body.
struct Asm {
    text: String,
    /// The lowest stack offset used so far by strings and buffers, which grow down from the
    /// frame pointer towards the results array at the bottom of the frame.
    next: i32,
    results: usize,
    labels: usize,
}

/// The results array: 8 bytes per result at fp-RESULTS + 8 * i.
const RESULTS: i32 = 512;
const MAX_RESULTS: usize = 24;

impl Asm {
    fn new() -> Self {
        Asm { text: "    mov %r6, %r1\n".into(), next: 0, results: 0, labels: 0 }
    }

    fn line(&mut self, line: &str) -> &mut Self {
        self.text.push_str("    ");
        self.text.push_str(line);
        self.text.push('\n');
        self
    }

    /// Reserves `len` bytes (rounded up to 8) on the stack; returns their fp offset.
    fn alloc(&mut self, len: usize) -> i32 {
        self.next -= (len.div_ceil(8).max(1) * 8) as i32;
        assert!(self.next >= -(RESULTS - MAX_RESULTS as i32 * 8), "the strings reach the results array");
        self.next
    }

    /// `bytes` on the stack, zero-padded to 8; returns (fp offset, len).
    fn bytes(&mut self, bytes: &[u8]) -> (i32, usize) {
        let at = self.alloc(bytes.len());
        for (i, chunk) in bytes.chunks(8).enumerate() {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.line(&format!("lddw %r1, {:#x}", u64::from_le_bytes(word)));
            self.line(&format!("stxdw [%r10{}], %r1", at + 8 * i as i32));
        }
        (at, bytes.len())
    }

    /// A buffer of `len` bytes filled with 0xff.
    fn buffer(&mut self, len: usize) -> i32 {
        let at = self.alloc(len);
        for i in 0..len.div_ceil(8) {
            self.line(&format!("stdw [%r10{}], -1", at + 8 * i as i32));
        }
        at
    }

    fn ptr(&mut self, reg: u8, at: Option<i32>) {
        match at {
            Some(at) => {
                self.line(&format!("mov %r{reg}, %r10"));
                self.line(&format!("add %r{reg}, {at}"));
            }
            None => {
                self.line(&format!("mov %r{reg}, 0"));
            }
        }
    }

    /// `call id` with r1 = ctx and the given arguments (a pointer is `Ok(Some(fp offset))`, NULL
    /// `Ok(None)`, a number `Err(n)`).
    fn call(&mut self, id: u32, args: &[Result<Option<i32>, i64>]) -> &mut Self {
        for (i, arg) in args.iter().enumerate() {
            let reg = i as u8 + 2;
            match arg {
                Ok(at) => self.ptr(reg, *at),
                Err(n) => {
                    self.line(&format!("mov %r{reg}, {n}"));
                }
            }
        }
        self.line("mov %r1, %r6");
        self.line(&format!("call {id}"))
    }

    /// Stores r0 as the next result.
    fn keep(&mut self) -> &mut Self {
        let at = -RESULTS + 8 * self.results as i32;
        self.results += 1;
        assert!(self.results <= MAX_RESULTS);
        self.line(&format!("stxdw [%r10{at}], %r0"))
    }

    /// Keeps the 8 bytes at `at` as the next result.
    fn keep_bytes(&mut self, at: i32) -> &mut Self {
        self.line(&format!("ldxdw %r0, [%r10{at}]"));
        self.keep()
    }

    fn label(&mut self) -> String {
        self.labels += 1;
        format!("l{}", self.labels)
    }

    fn finish(&mut self, ret: i64) -> String {
        self.line(&format!("mov %r0, {ret}"));
        self.line("exit");
        self.text.clone()
    }
}

fn name(asm: &mut Asm, s: &str) -> (Result<Option<i32>, i64>, Result<Option<i32>, i64>) {
    let (at, len) = asm.bytes(s.as_bytes());
    (Ok(Some(at)), Err(len as i64))
}

const FIELD: u32 = duet_vm::http::HTTP_FIELD;
const GET: u32 = duet_vm::http::HTTP_HEADER_GET;
const SET: u32 = duet_vm::http::HTTP_HEADER_SET;
const ADD: u32 = duet_vm::http::HTTP_HEADER_ADD;
const REMOVE: u32 = duet_vm::http::HTTP_HEADER_REMOVE;
const RESPOND: u32 = duet_vm::http::HTTP_RESPOND;

/// A request filter that calls every helper with good and bad arguments and answers 201 with
/// every result (16 little-endian i64s) as the body.
fn errnos() -> String {
    let mut a = Asm::new();
    let set = |a: &mut Asm, id, n: &str, v: &[u8]| {
        let (np, nl) = name(a, n);
        let (vat, vlen) = a.bytes(v);
        a.call(id, &[np, nl, Ok(Some(vat)), Err(vlen as i64)]).keep();
    };
    set(&mut a, SET, "X-Up", b"v"); // 0: lower-cased
    set(&mut a, SET, "bad name", b"v"); // -EINVAL
    set(&mut a, SET, ":path", b"/x"); // -EPERM
    set(&mut a, ADD, "Connection", b"close"); // -EPERM
    set(&mut a, SET, "x-a", b"a\r\nb"); // -EINVAL
    let buf = a.buffer(8);
    let (np, nl) = name(&mut a, "x-up");
    a.call(GET, &[np, nl, Ok(Some(buf)), Err(8)]).keep().keep_bytes(buf); // 1, "v" + zeros
    let buf = a.buffer(8);
    let (np, nl) = name(&mut a, "X-LONG");
    a.call(GET, &[np, nl, Ok(Some(buf)), Err(4)]).keep().keep_bytes(buf); // 10, "0123" + untouched
    let buf = a.buffer(8);
    a.call(FIELD, &[Err(99), Ok(Some(buf)), Err(8)]).keep().keep_bytes(buf); // -EINVAL, zeros
    a.call(FIELD, &[Err(HttpField::Route as i64), Ok(None), Err(0)]).keep(); // -ENOENT
    a.call(FIELD, &[Err(HttpField::Method as i64), Ok(None), Err(0)]).keep(); // 3 (GET): length only
    let (np, nl) = name(&mut a, "x-gone");
    a.call(REMOVE, &[np, nl]).keep(); // 0
    a.call(RESPOND, &[Err(700), Ok(None), Err(0)]).keep(); // -EINVAL
    // 40 more changes: 2 were made, so 30 succeed and 10 get -E2BIG; keep how many did.
    let (np, nl) = name(&mut a, "x-n");
    let (vat, vlen) = a.bytes(b"1");
    let lp = a.label();
    a.line("mov %r8, 0");
    a.line("mov %r9, 0");
    a.text.push_str(&format!("{lp}:\n"));
    a.call(ADD, &[np, nl, Ok(Some(vat)), Err(vlen as i64)]);
    // Count failures without a branch (0 or -E2BIG: the sign bit), so the verifier explores
    // one path per iteration.
    a.line("rsh %r0, 63");
    a.line("add %r9, %r0");
    a.line("add %r8, 1");
    a.line(&format!("jlt %r8, 40, {lp}"));
    a.line("mov %r0, %r9");
    a.keep();
    assert_eq!(a.results, 16);
    a.call(RESPOND, &[Err(201), Ok(Some(-RESULTS)), Err(16 * 8)]);
    a.finish(1)
}

fn expected_errnos() -> Vec<i64> {
    let untouched = u64::from_le_bytes([b'0', b'1', b'2', b'3', 0xff, 0xff, 0xff, 0xff]) as i64;
    vec![0, -22, -1, -1, -22, 1, i64::from(b'v'), 10, untouched, -22, 0, -2, 3, 0, -22, 10]
}

/// A request filter: counts requests in map 0, reads `x-user`; without it answers 401 "who?";
/// with it copies it to `x-seen`, adds `x-h2: 1` on HTTP/2 and removes `x-debug`.
const GATE: &str = "
    mov %r6, %r1
    stw [%r10-4], 0
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    jeq %r0, 0, counted
    mov %r1, 1
    lock add [%r0+0], %r1
counted:
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

/// A response filter: a 418 is answered with 1 and no response (so 403); otherwise it records
/// a 299 response whose body is the whole context (and returns 0, so the response is not used),
/// and on a 5xx status sets `retry-after: 1`.
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

/// A route program: `POST`s go to cluster 1 endpoint 0, `GET`s to cluster 0 (balancer's choice),
/// anything else (or no method) declines.
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

/// Assembles `src`, turning each `lddw rX, map_fd N` into a plain `lddw rX, 0` with a
/// relocation against map symbol `N`, as a compiler emits it. Returns the code and relocations
/// as (byte offset, map index).
fn code_and_relocs(src: &str) -> (Vec<u8>, Vec<(u64, usize)>) {
    let insns: Vec<Insn> = assemble(src).expect("test program assembles");
    let mut bytes = Vec::new();
    let mut relocs = Vec::new();
    for insn in insns {
        let mut insn = insn;
        if insn.op == Op::LdImm64 && insn.pseudo_src() == Some(PseudoSrc::MapFd) {
            relocs.push((bytes.len() as u64, insn.imm as usize));
            insn.src = 0;
            insn.imm = 0;
        }
        let (a, b) = insn.encode();
        bytes.extend_from_slice(&a.to_u64().to_le_bytes());
        if let Some(b) = b {
            bytes.extend_from_slice(&b.to_u64().to_le_bytes());
        }
    }
    (bytes, relocs)
}

/// An ELF object with one program per `(section, name, asm)` and one legacy array map `hits`
/// (4-byte keys, 8-byte values, 1 entry).
fn object(programs: &[(&str, &str, &str)]) -> Vec<u8> {
    let mut elf = ElfWriter::new(BinaryFormat::Elf, Architecture::Bpf, Endianness::Little);
    let maps = elf.add_section(Vec::new(), b"maps".to_vec(), SectionKind::Data);
    let def: Vec<u8> = [2u32, 4, 8, 1, 0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let offset = elf.append_section_data(maps, &def, 4);
    let hits = elf.add_symbol(Symbol {
        name: b"hits".to_vec(),
        value: offset,
        size: def.len() as u64,
        kind: SymbolKind::Data,
        scope: SymbolScope::Linkage,
        weak: false,
        section: SymbolSection::Section(maps),
        flags: SymbolFlags::None,
    });
    for (section, function, src) in programs {
        let (code, relocs) = code_and_relocs(src);
        let id = elf.add_section(Vec::new(), section.as_bytes().to_vec(), SectionKind::Text);
        let offset = elf.append_section_data(id, &code, 8);
        elf.add_symbol(Symbol {
            name: function.as_bytes().to_vec(),
            value: offset,
            size: code.len() as u64,
            kind: SymbolKind::Text,
            scope: SymbolScope::Linkage,
            weak: false,
            section: SymbolSection::Section(id),
            flags: SymbolFlags::None,
        });
        for (at, _) in relocs {
            elf.add_relocation(
                id,
                Relocation {
                    offset: offset + at,
                    symbol: hits,
                    addend: 0,
                    flags: RelocationFlags::Elf { r_type: object::elf::R_BPF_64_64 },
                },
            )
            .expect("relocation");
        }
    }
    let license = elf.add_section(Vec::new(), b"license".to_vec(), SectionKind::Data);
    elf.append_section_data(license, b"GPL\0", 1);
    elf.write().expect("the test object serializes")
}

fn module() -> Module {
    let bytes = object(&[
        ("duet/http_request", "errnos", &errnos()),
        ("duet/http_request", "gate", GATE),
        ("duet/http_response", "stamp", STAMP),
        ("duet/route", "route", ROUTE),
    ]);
    let object = Object::parse(&bytes).expect("the test object parses");
    Module::load(&object, LoadOptions { env: Env::deterministic(), ..LoadOptions::default() }).expect("loads")
}

// === The exchanges ===

fn exchange(method: &str, headers: &[(&str, &str)]) -> MemoryExchange {
    MemoryExchange::new(
        [
            (HttpField::Method, method.as_bytes()),
            (HttpField::Path, &b"/a?b=c"[..]),
            (HttpField::ClientIp, &[192, 0, 2, 7][..]),
        ],
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

/// Runs `program` on every case in every engine; they must agree. Returns the interpreter's
/// results.
fn run_everywhere(module: &Module, program: &str) -> Vec<(HttpOutcome, MemoryExchange)> {
    let mut interp = module.http_runner(program, Engine::Interpreter).expect("interpreter");
    let mut jit = module.http_runner(program, Engine::Jit).expect("jit");
    let mut out = Vec::new();
    for (i, (md, ex)) in cases().into_iter().enumerate() {
        let before = hits(module);
        let mut a = ex.clone();
        let ra = interp.run(&md, &mut a).unwrap_or_else(|t| panic!("{program} case {i}: interpreter: {t}"));
        let counted_a = hits(module) - before;
        let mut b = ex.clone();
        let rb = jit.run(&md, &mut b).unwrap_or_else(|t| panic!("{program} case {i}: jit: {t}"));
        let counted_b = hits(module) - before - counted_a;
        assert_eq!(ra, rb, "{program} case {i}: outcome");
        assert_eq!(a, b, "{program} case {i}: exchange");
        assert_eq!(counted_a, counted_b, "{program} case {i}: map");
        out.push((ra, a));
    }
    out
}

/// The `hits` counter.
fn hits(module: &Module) -> u64 {
    let value = module.map("hits").unwrap().get(&0u32.to_le_bytes()).expect("an array slot");
    u64::from_le_bytes(value.as_single().expect("not per-CPU").try_into().expect("8 bytes"))
}

// === Tests ===

#[test]
fn errno_rules_are_the_same_in_the_interpreter_and_the_jit() {
    let module = module();
    for (i, (outcome, ex)) in run_everywhere(&module, "errnos").into_iter().enumerate() {
        assert_eq!(outcome.filter_verdict(), Ok(FilterVerdict::Respond), "case {i}");
        assert_eq!(outcome.mutations, 32, "case {i}");
        let (status, body) = ex.response.clone().expect("responded");
        assert_eq!(status, 201);
        let results: Vec<i64> = body.chunks(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect();
        let mut expected = expected_errnos();
        expected[12] = ex.field(HttpField::Method).map_or(-2, |m| m.len() as i64);
        if ex.values("x-long").is_empty() {
            // No `x-long`: -ENOENT and a zeroed buffer.
            expected[7] = -2;
            expected[8] = u64::from_le_bytes([0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]) as i64;
        }
        assert_eq!(results, expected, "case {i}");
        assert_eq!(ex.values("x-up"), [b"v"]);
        assert_eq!(ex.values("x-n").len(), 30);
        assert!(ex.log.iter().all(|l| !l.contains("connection") && !l.contains(":path")), "{:?}", ex.log);
    }
}

#[test]
fn a_request_filter_reads_changes_and_responds_identically_in_both_engines() {
    let module = module();
    let results = run_everywhere(&module, "gate");
    // No x-user: 401 "who?".
    let (o, ex) = &results[0];
    assert_eq!(o.filter_verdict(), Ok(FilterVerdict::Respond));
    assert_eq!(ex.response, Some((401, b"who?".to_vec())));
    assert_eq!(ex.log, ["respond 401"]);
    // x-user copied to x-seen, x-debug removed, HTTP/1.1: no x-h2.
    let (o, ex) = &results[1];
    assert_eq!((o.filter_verdict(), o.mutations), (Ok(FilterVerdict::Continue), 2));
    assert_eq!(ex.log, ["set x-seen=ada", "remove x-debug"]);
    assert_eq!(ex.values("x-seen"), [b"ada"]);
    assert!(ex.values("x-debug").is_empty());
    // A 40-byte value is truncated to the 32-byte buffer; earlier x-seen values are replaced;
    // HTTP/2 adds x-h2.
    let (_, ex) = &results[2];
    assert_eq!(ex.values("x-seen"), ["z".repeat(32).as_bytes()]);
    assert_eq!(ex.values("x-h2"), [b"1"]);
    // An empty x-user is present (length 0).
    assert_eq!(results[3].1.values("x-seen"), [b""]);
    // Every run counted once, in each engine.
    assert_eq!(hits(&module), 2 * cases().len() as u64);
}

#[test]
fn a_response_filter_sees_the_context_and_returning_1_without_a_response_is_403() {
    let module = module();
    let results = run_everywhere(&module, "stamp");
    for (i, ((o, ex), (md, _))) in results.iter().zip(cases()).enumerate() {
        if md.status == 418 {
            assert_eq!(o.filter_verdict(), Ok(FilterVerdict::Forbidden), "case {i}");
            assert_eq!(ex.response, None);
            continue;
        }
        // A response recorded but 0 returned: the exchange goes on.
        assert_eq!(o.filter_verdict(), Ok(FilterVerdict::Continue), "case {i}");
        assert!(o.responded);
        assert_eq!(ex.response, Some((299, md.to_bytes().to_vec())), "case {i}: the context as the program read it");
        assert_eq!(!ex.values("retry-after").is_empty(), md.status >= 500, "case {i}: {:?}", ex.log);
    }
}

#[test]
fn a_route_program_picks_clusters_in_both_engines() {
    let module = module();
    let choices: Vec<RouteChoice> = run_everywhere(&module, "route").iter().map(|(o, _)| o.route_choice()).collect();
    let get = RouteChoice::Pick { cluster: 0, endpoint: None };
    let post = RouteChoice::Pick { cluster: 1, endpoint: Some(0) };
    assert_eq!(choices, [get, get, post, RouteChoice::Decline, get, post, RouteChoice::Decline]);
}

#[test]
fn checked_engines_agree_with_the_verified_ones() {
    let module = module();
    let program = module.programs().iter().find(|p| p.name == "errnos").unwrap().program.clone();
    let mut helpers = Helpers::new();
    register_helpers(&mut helpers);
    let mut interp = Interpreter::new_unverified(&program, helpers.clone(), Config::default()).unwrap();
    let mut jit = Jit::new_checked(&program, helpers, Config::default()).unwrap();
    let mut verified = module.http_runner("errnos", Engine::Jit).unwrap();
    for (md, ex) in cases() {
        let (mut a, mut b, mut c) = (ex.clone(), ex.clone(), ex);
        let ra = interp.run_http(&md, &mut a).unwrap();
        let rb = jit.run_http(&md, &mut b).unwrap();
        let rc = verified.run(&md, &mut c).unwrap();
        assert_eq!((ra, rb), (1, 1));
        assert_eq!(rc.ret, 1);
        assert_eq!((&a, &b), (&c, &c));
    }
}

#[test]
fn without_an_exchange_the_helpers_return_eperm_and_bad_pointers_trap() {
    let mut helpers = Helpers::new();
    register_helpers(&mut helpers);
    let prog = |src: &str| duet_isa::Program::from_insns(&assemble(src).unwrap()).unwrap();
    // Run as plain memory (not an http run): every http helper answers -EPERM.
    for id in [FIELD, GET, SET, ADD, REMOVE, RESPOND] {
        let src = format!("mov %r2, 0\nmov %r3, 0\nmov %r4, 0\nmov %r5, 0\ncall {id}\nexit");
        let mut vm = Interpreter::new_unverified(&prog(&src), helpers.clone(), Config::default()).unwrap();
        assert_eq!(vm.run(&mut []), Ok(-1i64 as u64), "helper {id}");
        let mut jit = Jit::new_checked(&prog(&src), helpers.clone(), Config::default()).unwrap();
        assert_eq!(jit.run(&mut []), Ok(-1i64 as u64), "helper {id}");
    }
    // A buffer outside guest memory traps, before anything else.
    let src = "mov %r2, 0\nmov %r3, 4096\nmov %r4, 8\ncall 10000\nexit";
    let mut vm = Interpreter::new_unverified(&prog(src), helpers.clone(), Config::default()).unwrap();
    let trap = vm.run_http(&md(0, 0, 11), &mut exchange("GET", &[])).unwrap_err();
    assert!(matches!(trap.kind, TrapKind::HelperFailed { id: FIELD, .. }), "{trap}");
    let mut jit = Jit::new_checked(&prog(src), helpers, Config::default()).unwrap();
    assert_eq!(jit.run_http(&md(0, 0, 11), &mut exchange("GET", &[])).unwrap_err(), trap);
}

#[test]
fn http_runners_refuse_other_programs_and_engines_refuse_other_contexts() {
    let bytes = object(&[("xdp", "pass", "mov %r0, 2\nexit"), ("duet/route", "route", ROUTE)]);
    let module = Module::load(&Object::parse(&bytes).unwrap(), LoadOptions::default()).unwrap();
    let err = module.http_runner("pass", Engine::Jit).unwrap_err().to_string();
    assert!(err.contains("not an http program"), "{err}");
    // Verified route code run with an XDP context: refused, not misread.
    let mut jit = module.jit("route").unwrap();
    let trap = jit.run_xdp(&mut duet_vm::XdpPacket::new(&[0; 60])).unwrap_err();
    assert!(matches!(trap.kind, TrapKind::Unsupported(_)), "{trap}");
    assert_eq!(jit.http_program(), Some(duet_vm::http::HttpProgram::Route));
}

#[test]
fn one_module_serves_runners_on_many_threads() {
    let module = Arc::new(module());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let module = Arc::clone(&module);
            std::thread::spawn(move || {
                let engine = if t % 2 == 0 { Engine::Interpreter } else { Engine::Jit };
                let mut runner = module.http_runner("gate", engine).unwrap();
                for _ in 0..100 {
                    let mut ex = exchange("GET", &[("x-user", "ada")]);
                    let out = runner.run(&md(0, 0, 11), &mut ex).unwrap();
                    assert_eq!(out.filter_verdict(), Ok(FilterVerdict::Continue));
                    assert_eq!(ex.values("x-seen"), [b"ada"]);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(hits(&module), 400);
}

/// The exchange trait is object-safe (the sidecar passes `&mut dyn HttpExchange`).
#[test]
fn exchanges_are_used_as_trait_objects() {
    let mut ex = exchange("GET", &[]);
    let dynamic: &mut dyn HttpExchange = &mut ex;
    assert_eq!(dynamic.field(HttpField::Method).as_deref(), Some(&b"GET"[..]));
}
