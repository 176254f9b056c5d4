//! The JIT on verified programs: XDP and socket-filter programs written for the verifier run in
//! the interpreter and in the JIT over the packet corpus, with identical verdicts, output
//! packets and maps; plus the API contract (helpers, traps, threads, refusing a context the
//! program was not verified for).

use duet_isa::{Program, assemble};
use duet_maps::MapValue;
use duet_object::{MapDef, MapOrigin, Object, ObjectProgram, ProgramKind};
use duet_verifier::{ProgramType, VerifyContext};
use duet_vm::{Config, Env, HelperOutcome, Helpers, Interpreter, Jit, LoadOptions, Module, TrapKind, XdpPacket};

fn program(src: &str) -> Program {
    Program::from_insns(&assemble(src).unwrap_or_else(|e| panic!("assembles: {e}\n{src}"))).expect("valid")
}

fn map(name: &str, map_type: u32, key_size: u32, value_size: u32, max_entries: u32) -> MapDef {
    MapDef {
        name: name.into(),
        map_type,
        key_size,
        value_size,
        max_entries,
        flags: 0,
        initial_data: None,
        origin: MapOrigin::BtfMaps,
        key_type: None,
        value_type: None,
        inner: None,
    }
}

fn object(kind: ProgramKind, src: &str, maps: Vec<MapDef>) -> Object {
    Object {
        license: "GPL".into(),
        programs: vec![ObjectProgram {
            name: "prog".into(),
            section: "xdp".into(),
            kind,
            program: program(src),
            map_refs: Vec::new(),
            line_info: Vec::new(),
        }],
        maps,
    }
}

type Dump = Vec<(String, Vec<(Vec<u8>, MapValue)>)>;

fn dump(module: &Module) -> Dump {
    module
        .maps()
        .map(|(name, m)| {
            let mut entries = if m.map_type() == duet_maps::MapType::RingBuf {
                m.ringbuf_drain().into_iter().map(|r| (r, MapValue::Single(Vec::new()))).collect()
            } else {
                m.entries()
            };
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            (name.to_owned(), entries)
        })
        .collect()
}

/// Runs program `prog` of `object` over every corpus frame in the interpreter and in the JIT,
/// each with its own module, and asserts identical verdicts, packets and maps.
fn same_in_both(name: &str, object: &Object) {
    same_in_both_seeded(name, object)
}

/// [`same_in_both`], with the corpus's tail-call convention: `jmp_table[0] = tail0`,
/// `jmp_table[1] = tail1`.
fn same_in_both_seeded(name: &str, object: &Object) {
    let load = || {
        let m = Module::load(object, LoadOptions { env: Env::deterministic(), ..LoadOptions::default() }).unwrap();
        if object.map_index("jmp_table").is_some() {
            for (i, target) in ["tail0", "tail1"].iter().enumerate() {
                if object.programs.iter().any(|p| p.name == *target) {
                    m.set_prog_array("jmp_table", i as u32, target).unwrap();
                }
            }
        }
        m
    };
    let (mi, mj) = (load(), load());
    let kind = object.programs[0].kind.clone();
    let mut interp = mi.interpreter("prog").unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut jit = mj.jit("prog").unwrap_or_else(|e| panic!("{name}: {e}"));
    // The verifier's facts cover every access of these programs: no run-time checks.
    assert_eq!(jit.stats().checked_accesses, 0, "{name}: accesses without a proof");
    let frames = duet_testdata::packets::corpus();
    assert!(frames.len() > 10);
    for (label, frame) in &frames {
        // Run each frame twice so that map state carried between runs is compared too.
        for _ in 0..2 {
            match kind {
                ProgramKind::Xdp => {
                    let (mut a, mut b) = (XdpPacket::new(frame), XdpPacket::new(frame));
                    let (ra, rb) = (interp.run_xdp(&mut a), jit.run_xdp(&mut b));
                    assert_eq!(ra, rb, "{name} on {label}");
                    assert_eq!(a.data(), b.data(), "{name} on {label}: packets differ");
                    assert_eq!(a.meta(), b.meta(), "{name} on {label}: metadata differs");
                }
                _ => {
                    let (ra, rb) =
                        (interp.run_socket_filter(&mut frame.clone()), jit.run_socket_filter(&mut frame.clone()));
                    assert_eq!(ra, rb, "{name} on {label}");
                }
            }
        }
    }
    assert_eq!(dump(&mi), dump(&mj), "{name}: maps differ");
}

/// Ethernet + IPv4 parsing with bounds checks, MAC swap, per-protocol counters in a hash map and
/// an atomic byte counter in an array map.
const PARSER: &str = "
    ldxw %r2, [%r1+0]
    ldxw %r3, [%r1+4]
    mov %r4, %r2
    add %r4, 34
    jgt %r4, %r3, pass
    ldxh %r5, [%r2+12]
    be16 %r5
    jne %r5, 0x0800, pass
    ldxb %r6, [%r2+23]
    ldxw %r7, [%r2+26]
    be32 %r7
    # swap the MAC addresses
    ldxw %r8, [%r2+0]
    ldxh %r9, [%r2+4]
    ldxw %r0, [%r2+6]
    stxw [%r2+0], %r0
    ldxh %r0, [%r2+10]
    stxh [%r2+4], %r0
    stxw [%r2+6], %r8
    stxh [%r2+10], %r9
    # counts[proto] += 1
    stxw [%r10-4], %r6
    mov %r8, %r3
    sub %r8, %r2
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, new
    mov %r1, 1
    lock add [%r0+0], %r1
    ja bytes
new:
    stdw [%r10-16], 1
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    mov %r3, %r10
    add %r3, -16
    mov %r4, 0
    call 2
bytes:
    stw [%r10-20], 0
    lddw %r1, map_fd 1
    mov %r2, %r10
    add %r2, -20
    call 1
    jeq %r0, 0, tx
    lock fetch add [%r0+0], %r8
    stxdw [%r0+8], %r8
    lock add32 [%r0+16], %r7
tx:
    mov %r0, 3
    exit
pass:
    mov %r0, 2
    exit
";

#[test]
fn parser_with_maps_and_atomics() {
    let maps = vec![map("counts", 1, 4, 8, 64), map("bytes", 2, 4, 24, 1)];
    same_in_both("parser", &object(ProgramKind::Xdp, PARSER, maps));
}

/// Arithmetic on packet-derived values: division and modulo by values that may be zero,
/// signed forms, shifts by variable amounts, byte swaps and sign extensions, 32-bit jumps.
const ARITH: &str = "
    ldxw %r2, [%r1+0]
    ldxw %r3, [%r1+4]
    mov %r4, %r2
    add %r4, 16
    jgt %r4, %r3, out
    ldxdw %r5, [%r2+0]
    ldxdw %r6, [%r2+8]
    ldxb %r7, [%r2+14]
    ldxsb %r8, [%r2+15]
    mov %r0, %r5
    div %r0, %r7
    mov %r1, %r6
    mod %r1, %r7
    xor %r0, %r1
    mov %r1, %r5
    sdiv %r1, %r8
    add %r0, %r1
    mov %r1, %r6
    smod %r1, %r8
    add %r0, %r1
    mov32 %r1, %r5
    div32 %r1, %r7
    add %r0, %r1
    mov32 %r1, %r6
    mod32 %r1, %r8
    add %r0, %r1
    mov32 %r1, %r6
    sdiv32 %r1, %r8
    add %r0, %r1
    mov32 %r1, %r5
    smod32 %r1, %r8
    add %r0, %r1
    mov %r1, %r5
    lsh %r1, %r7
    xor %r0, %r1
    mov %r1, %r6
    arsh %r1, %r8
    xor %r0, %r1
    mov32 %r1, %r6
    rsh32 %r1, %r7
    xor %r0, %r1
    mov32 %r1, %r5
    arsh32 %r1, %r8
    xor %r0, %r1
    mov %r1, %r5
    bswap64 %r1
    add %r0, %r1
    mov %r1, %r6
    be32 %r1
    add %r0, %r1
    mov %r1, %r6
    bswap16 %r1
    add %r0, %r1
    movsx1664 %r1, %r5
    add %r0, %r1
    movsx832 %r1, %r6
    add %r0, %r1
    movsx3264 %r1, %r6
    mul %r0, %r1
    neg32 %r1
    sub %r0, %r1
    jslt32 %r0, %r8, neg
    mod %r0, 5
    exit
neg:
    and %r0, 3
    exit
out:
    mov %r0, 1
    exit
";

#[test]
fn arithmetic_on_packet_values() {
    same_in_both("arith", &object(ProgramKind::Xdp, ARITH, Vec::new()));
}

/// bpf-to-bpf calls: a callee writes through a pointer into its caller's frame, uses its own
/// stack, calls another function; r6..r9 survive calls.
const CALLS: &str = "
    ldxw %r2, [%r1+0]
    ldxw %r3, [%r1+4]
    mov %r6, %r2
    add %r6, 8
    jgt %r6, %r3, out
    ldxdw %r6, [%r2+0]
    mov %r7, 7
    stdw [%r10-8], 0
    mov %r1, %r10
    add %r1, -8
    mov %r2, %r6
    call local outer
    ldxdw %r1, [%r10-8]
    add %r0, %r1
    add %r0, %r7
    add %r0, %r6
    and %r0, 3
    exit
out:
    mov %r0, 2
    exit
outer:
    mov %r6, %r1
    mov %r7, %r2
    stdw [%r10-8], 5
    mov %r1, %r10
    add %r1, -8
    mov %r2, %r7
    call local inner
    ldxdw %r1, [%r10-8]
    add %r0, %r1
    stxdw [%r6+0], %r0
    exit
inner:
    ldxdw %r0, [%r1+0]
    add %r0, %r2
    rsh %r2, 3
    stxdw [%r1+0], %r2
    exit
";

#[test]
fn local_calls() {
    same_in_both("calls", &object(ProgramKind::Xdp, CALLS, Vec::new()));
}

/// bpf_xdp_adjust_head / adjust_meta: the JIT must see the moved packet pointers.
const ADJUST: &str = "
    mov %r6, %r1
    mov %r2, -8
    call 54
    jne %r0, 0, skip_meta
    ldxw %r2, [%r6+8]
    ldxw %r3, [%r6+0]
    mov %r4, %r2
    add %r4, 8
    jgt %r4, %r3, skip_meta
    stdw [%r2+0], 0x1234
skip_meta:
    mov %r1, %r6
    mov %r2, 14
    call 44
    jne %r0, 0, out
    ldxw %r2, [%r6+0]
    ldxw %r3, [%r6+4]
    mov %r4, %r2
    add %r4, 4
    jgt %r4, %r3, out
    ldxw %r0, [%r2+0]
    stw [%r2+0], 0x0bad
    and %r0, 3
    exit
out:
    mov %r0, 1
    exit
";

#[test]
fn helpers_that_move_the_packet() {
    same_in_both("adjust", &object(ProgramKind::Xdp, ADJUST, Vec::new()));
}

/// A socket filter: `__sk_buff` fields and legacy packet loads.
const SOCKET: &str = "
    mov %r6, %r1
    ldxw %r7, [%r6+0]
    ldxw %r8, [%r6+16]
    ldabsb 9
    mov %r9, %r0
    ldabsh 2
    add %r0, %r9
    mov %r2, 0
    ldindw %r2, 12
    add %r0, %r7
    add %r0, %r8
    exit
";

#[test]
fn socket_filter_context_and_legacy_loads() {
    same_in_both("socket", &object(ProgramKind::SocketFilter, SOCKET, Vec::new()));
}

/// A tail call through a prog_array, with the target compiled too.
#[test]
fn tail_calls() {
    let mut object = object(
        ProgramKind::Xdp,
        "mov %r6, 40\nlddw %r2, map_fd 0\nmov %r3, 0\ncall 12\nmov %r0, 1\nexit",
        vec![map("jmp", 3, 4, 4, 2)],
    );
    let target = ObjectProgram {
        name: "target".into(),
        section: "xdp".into(),
        kind: ProgramKind::Xdp,
        program: program("mov %r0, 3\nexit"),
        map_refs: Vec::new(),
        line_info: Vec::new(),
    };
    object.programs.push(target);
    let module = Module::load(&object, LoadOptions::default()).unwrap();
    let mut jit = module.jit("prog").unwrap();
    let mut interp = module.interpreter("prog").unwrap();
    let mut packet = XdpPacket::new(&[0; 64]);
    assert_eq!(jit.run_xdp(&mut packet), Ok(1), "empty slot: falls through");
    module.set_prog_array("jmp", 0, "target").unwrap();
    assert_eq!(jit.run_xdp(&mut packet), Ok(3));
    assert_eq!(interp.run_xdp(&mut packet), Ok(3));
}

fn verified(src: &str, ty: ProgramType) -> duet_verifier::VerifiedProgram {
    duet_verifier::verify(&program(src), &VerifyContext::new(ty)).unwrap_or_else(|r| panic!("{r}"))
}

#[test]
fn helpers_are_called_with_the_same_env() {
    let mut helpers = Helpers::new();
    helpers.register(5, |_, _| Ok(HelperOutcome::Return(1_000_000_123)));
    let p = verified("call 5\nmov %r0, 2\nexit", ProgramType::Xdp);
    let mut jit = Jit::new(&p, helpers.clone(), Config::default()).unwrap();
    assert_eq!(jit.run_xdp(&mut XdpPacket::new(&[0; 60])), Ok(2));
    let mut interp = Interpreter::new(&p, helpers, Config::default()).unwrap();
    assert_eq!(interp.run_xdp(&mut XdpPacket::new(&[0; 60])), Ok(2));
}

#[test]
fn verified_code_runs_only_with_its_context() {
    let p = verified("ldxw %r2, [%r1+0]\nmov %r0, 2\nexit", ProgramType::Xdp);
    let mut jit = Jit::new(&p, Helpers::new(), Config::default()).unwrap();
    let trap = jit.run(&mut [0; 8]).unwrap_err();
    assert!(matches!(trap.kind, TrapKind::Unsupported(_)), "{trap}");
    let trap = jit.run_socket_filter(&mut [0; 60]).unwrap_err();
    assert!(matches!(trap.kind, TrapKind::Unsupported(_)), "{trap}");
    assert_eq!(jit.run_xdp(&mut XdpPacket::new(&[0; 60])), Ok(2));
}

#[test]
fn clones_run_on_several_threads() {
    let p = verified(
        "mov %r0, 0\nmov %r1, 0\nloop:\nadd %r0, %r1\nadd %r1, 1\njlt %r1, 1000, loop\nmod %r0, 5\nexit",
        ProgramType::Xdp,
    );
    let jit = Jit::new(&p, Helpers::new(), Config::default()).unwrap();
    assert!(jit.stats().n_insns == 7 && jit.stats().code_size > 0 && !jit.stats().checked);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let mut jit = jit.clone();
            std::thread::spawn(move || jit.run_xdp(&mut XdpPacket::new(&[0; 60])))
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), Ok(499_500 % 5));
    }
}

#[test]
fn checked_code_counts_the_budget_like_the_interpreter() {
    let looping = program("mov %r0, 0\nloop:\nadd %r0, 1\nlddw %r2, 5\njne %r0, 100000, loop\nexit");
    for budget in [0, 1, 2, 3, 4, 5, 999, 1000, 1001] {
        let config = Config { max_insns: Some(budget) };
        let a = Interpreter::new_unverified(&looping, Helpers::new(), config.clone()).unwrap().run(&mut []);
        let b = Jit::new_checked(&looping, Helpers::new(), config).unwrap().run(&mut []);
        assert_eq!(a, b, "budget {budget}");
    }
}

/// Local calls in checked code, inlined or through the frame array: recursion until the call
/// depth traps, a callee whose loop starts before its entry, a callee called from two sites and
/// one whose r1..r5 the caller reads after the return, nested calls from several sites, under budgets that end the run in
/// many places; and a doubly recursive function too large to inline (the frame array). The same
/// results and traps as the interpreter.
#[test]
fn checked_local_calls_agree_with_the_interpreter() {
    let programs = [
        // Recursion: each level adds 1 until the depth limit traps.
        "mov %r0, 0\ncall local f\nexit\nf:\nadd %r0, 1\ncall local f\nexit",
        // A callee entered in the middle of its loop, called from two sites; r6 survives, r1 leaks.
        "mov %r6, 3\nmov %r1, 4\ncall local g\nmov %r7, %r1\nmov %r1, 6\ncall local g\nadd %r0, %r7\nadd %r0, %r6\nexit\n\
         back:\nadd %r0, %r1\nsub %r1, 1\njeq %r1, 0, done\ng:\nmov %r6, 100\njne %r1, 0, back\ndone:\nmov %r1, 77\nexit",
        // A chain of functions each calling the next twice, the inner ones with their stacks.
        "mov %r0, 1\ncall local f\nexit\nf:\ncall local g\nmul %r0, 3\ncall local g\nexit\n\
         g:\nstxdw [%r10-8], %r0\ncall local k\nldxdw %r1, [%r10-8]\nadd %r0, %r1\ncall local k\nexit\n\
         k:\nadd %r0, 5\nstxdw [%r10-16], %r0\nldxdw %r0, [%r10-16]\nexit",
        // Three per level: 3^7 copies, more than inlining takes.
        "mov %r0, 0\nmov %r1, 0\ncall local h\nexit\nh:\njge %r1, 6, leaf\nadd %r1, 1\nstxdw [%r10-8], %r1\n\
         call local h\nldxdw %r1, [%r10-8]\ncall local h\nldxdw %r1, [%r10-8]\ncall local h\nmul %r0, 3\nexit\n\
         leaf:\nadd %r0, %r1\nexit",
    ];
    for src in programs {
        let p = program(src);
        let full = Interpreter::new_unverified(&p, Helpers::new(), Config::default()).unwrap().run(&mut []);
        let b = Jit::new_checked(&p, Helpers::new(), Config::default()).unwrap().run(&mut []);
        assert_eq!(full, b, "{src}");
        for budget in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 17, 23, 31, 100, 1000, 2000] {
            let config = Config { max_insns: Some(budget) };
            let a = Interpreter::new_unverified(&p, Helpers::new(), config.clone()).unwrap().run(&mut []);
            let b = Jit::new_checked(&p, Helpers::new(), config).unwrap().run(&mut []);
            assert_eq!(a, b, "budget {budget}: {src}");
        }
    }
}

/// Every program of the BPF corpus (`target/bpf/*.o`, from `cargo xtask build-bpf`) over the
/// packet corpus: interpreter and JIT agree on verdicts, packets and every map (the `nondet` map
/// too: both modules get the same deterministic clock and generator).
#[test]
fn bpf_corpus_objects_agree_with_the_interpreter() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bpf");
    let mut objects: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "o")).collect()
        })
        .unwrap_or_default();
    objects.sort();
    if objects.is_empty() {
        let msg = "no BPF objects in target/bpf; run `cargo xtask build-bpf` first";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg} (CI=true makes this a failure)");
        eprintln!("\n!!! SKIPPED: {msg} !!!\n");
        return;
    }
    let mut compared = 0;
    for path in &objects {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let object = Object::parse(&std::fs::read(path).unwrap()).unwrap_or_else(|e| panic!("{file}: {e}"));
        for program in &object.programs {
            if !matches!(program.kind, ProgramKind::Xdp | ProgramKind::SocketFilter) {
                continue;
            }
            let mut single = object.clone();
            // Keep every program (tail calls reach them), with the one under test first.
            let at = single.programs.iter().position(|p| p.name == program.name).unwrap();
            single.programs.swap(0, at);
            let name = program.name.clone();
            for p in &mut single.programs {
                if p.name == name {
                    p.name = "prog".into();
                }
            }
            same_in_both_seeded(&format!("{file}:{name}"), &single);
            compared += 1;
        }
    }
    eprintln!("{compared} corpus programs agree in the interpreter and the JIT");
    assert!(compared >= 10, "only {compared} programs compared");
}

/// Array lookups compiled inline (the kernel's `map_gen_lookup`): in-range and out-of-range
/// keys, a per-CPU array, values written through the returned pointers.
const ARRAYS: &str = "
    ldxw %r2, [%r1+0]
    ldxw %r3, [%r1+4]
    mov %r4, %r2
    add %r4, 16
    jgt %r4, %r3, out
    ldxb %r6, [%r2+14]
    and %r6, 7
    stxw [%r10-4], %r6
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, miss
    ldxdw %r1, [%r0+0]
    add %r1, %r6
    stxdw [%r0+0], %r1
    lddw %r1, map_fd 1
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, miss
    ldxw %r1, [%r0+4]
    add %r1, 1
    stxw [%r0+4], %r1
    mov %r0, 2
    exit
miss:
    mov %r0, 1
    exit
out:
    mov %r0, 0
    exit
";

#[test]
fn inline_array_lookups() {
    let maps = vec![map("small", 2, 4, 8, 5), map("percpu", 6, 4, 12, 8)];
    let object = object(ProgramKind::Xdp, ARRAYS, maps);
    let module = Module::load(&object, LoadOptions::default()).unwrap();
    assert_eq!(module.jit("prog").unwrap().stats().inline_lookups, 2);
    same_in_both("arrays", &object);
}

/// An XDP program that needs no helper and no checked access runs without the region table
/// (`run_xdp`'s direct path, one context kept between runs): each run must still see its own
/// packet's pointers and fields, clones their own context, and a trap must end only that run.
#[test]
fn the_direct_xdp_path_sees_each_packet_and_traps_like_the_interpreter() {
    // r0 = data_end - data + ingress_ifindex * 10000 + first byte (when there is one).
    let src = "
        ldxw %r2, [%r1+0]
        ldxw %r3, [%r1+4]
        ldxw %r4, [%r1+12]
        mov %r0, %r3
        sub %r0, %r2
        mul %r4, 10000
        add %r0, %r4
        mov %r5, %r2
        add %r5, 1
        jgt %r5, %r3, out
        ldxb %r6, [%r2+0]
        add %r0, %r6
    out:
        exit";
    let p = verified(src, ProgramType::Xdp);
    let mut jit = Jit::new(&p, Helpers::new(), Config::default()).unwrap();
    assert_eq!(jit.stats().runtime_calls, 0, "the direct path needs code without runtime calls");
    let mut interp = Interpreter::new(&p, Helpers::new(), Config::default()).unwrap();
    let mut clone = jit.clone();
    for (len, first, ifindex) in [(60usize, 7u8, 1u32), (1500, 200, 3), (0, 0, 0), (14, 1, 9)] {
        let mut frame = vec![0u8; len];
        if let Some(b) = frame.first_mut() {
            *b = first;
        }
        let packet = || {
            let mut p = XdpPacket::new(&frame);
            p.ingress_ifindex = ifindex;
            p
        };
        let want = interp.run_xdp(&mut packet());
        assert_eq!(want, Ok(len as u64 + u64::from(ifindex) * 10000 + u64::from(first)));
        assert_eq!(jit.run_xdp(&mut packet()), want);
        let on_thread = std::thread::scope(|s| s.spawn(|| clone.run_xdp(&mut packet())).join().unwrap());
        assert_eq!(on_thread, want);
    }

    // A map load left unresolved (no module) traps in compiled code; the next run is clean.
    let mut ctx = VerifyContext::new(ProgramType::Xdp);
    ctx.maps.push(duet_verifier::MapInfo::from(&map("m", 2, 4, 8, 1)));
    let src = "ldxw %r2, [%r1+0]\nldxw %r3, [%r1+4]\nmov %r0, 2\njeq %r2, %r3, empty\nexit\nempty:\nlddw %r1, map_fd 0\nmov %r0, 1\nexit";
    let p = duet_verifier::verify(&program(src), &ctx).unwrap_or_else(|r| panic!("{r}"));
    let mut jit = Jit::new(&p, Helpers::new(), Config::default()).unwrap();
    assert_eq!(jit.stats().runtime_calls, 0, "a trap is not a runtime call");
    let mut interp = Interpreter::new(&p, Helpers::new(), Config::default()).unwrap();
    for len in [60usize, 0, 60] {
        let frame = vec![0u8; len];
        let (a, b) = (interp.run_xdp(&mut XdpPacket::new(&frame)), jit.run_xdp(&mut XdpPacket::new(&frame)));
        assert_eq!(a, b, "{len}-byte frame");
        assert_eq!(a.is_err(), len == 0, "{a:?}");
    }
}

/// Lookups, updates and deletes on hash, per-CPU hash, LRU hash and array maps compile to direct
/// calls into the map (the array's lookup inline), with the helpers' results: errnos for
/// `BPF_NOEXIST` on a present key and for deleting from an array, NULL for a missing key.
#[test]
fn map_helpers_are_direct_calls_with_the_helpers_results() {
    let mut src = String::from(
        "ldxw %r2, [%r1+0]\nldxw %r3, [%r1+4]\nmov %r9, 0\nmov %r4, %r2\nadd %r4, 1\njgt %r4, %r3, out\n\
         ldxb %r6, [%r2+0]\nand %r6, 7\nstxw [%r10-4], %r6\nmov %r7, %r3\nsub %r7, %r2\nstxdw [%r10-16], %r7\n",
    );
    for i in 0..4 {
        src.push_str(&format!(
            "lddw %r1, map_fd {i}\nmov %r2, %r10\nadd %r2, -4\nmov %r3, %r10\nadd %r3, -16\nmov %r4, 1\ncall 2\nadd %r9, %r0\n\
             lddw %r1, map_fd {i}\nmov %r2, %r10\nadd %r2, -4\ncall 1\njeq %r0, 0, miss{i}\nldxdw %r5, [%r0+0]\nadd %r9, %r5\n\
             miss{i}:\njne %r6, 5, keep{i}\nlddw %r1, map_fd {i}\nmov %r2, %r10\nadd %r2, -4\ncall 3\nadd %r9, %r0\nkeep{i}:\n"
        ));
    }
    src.push_str("out:\nmov %r0, %r9\nexit\n");
    let maps =
        vec![map("hash", 1, 4, 8, 64), map("percpu", 5, 4, 8, 64), map("lru", 9, 4, 8, 4), map("array", 2, 4, 8, 8)];
    let object = object(ProgramKind::Xdp, &src, maps);
    let module = Module::load(&object, LoadOptions::default()).unwrap();
    let stats = module.jit("prog").unwrap().stats();
    assert_eq!((stats.direct_map_calls, stats.inline_lookups, stats.runtime_calls), (11, 1, 0), "{stats:?}");
    same_in_both("map helpers", &object);
}

/// Context loads through the entry's unmodified `r1` (and copies of it) read their field's slot
/// directly; through a moved pointer (`r6 = r1 + 4`) or after the first block they take the
/// general path: all give the interpreter's values. The verifier refuses the moved pointer (as
/// the kernel does), so that program runs as checked code, against the unverified interpreter.
#[test]
fn context_loads_through_copies_and_moved_pointers_agree() {
    let src = "
        mov %r7, %r1
        mov %r6, %r1
        add %r6, 4
        ldxw %r2, [%r7+0]
        ldxw %r3, [%r6+0]
        ldxw %r4, [%r1+12]
        mov %r0, %r3
        sub %r0, %r2
        add %r0, %r4
        jeq %r0, 0, done
        ldxw %r5, [%r1+16]
        add %r0, %r5
        ldxw %r5, [%r6-4]
        ldxw %r8, [%r7+4]
        sub %r8, %r5
        add %r0, %r8
    done:
        exit";
    let refused = duet_verifier::verify(&program(src), &VerifyContext::new(ProgramType::Xdp)).err().unwrap();
    assert!(refused.to_string().contains("dereference of modified ctx ptr R6 off=4"), "{refused}");
    let mut jit = Jit::new_checked(&program(src), Helpers::new(), Config::default()).unwrap();
    let mut interp = Interpreter::new_unverified(&program(src), Helpers::new(), Config::default()).unwrap();
    for len in [0usize, 1, 60, 1500] {
        let frame = vec![3u8; len];
        let packet = || {
            let mut p = XdpPacket::new(&frame);
            p.ingress_ifindex = 7;
            p.rx_queue_index = 2;
            p
        };
        let want = interp.run_xdp(&mut packet());
        // (data_end - data) + ifindex + rx_queue_index + (data_end - data)
        assert_eq!(want, Ok(2 * len as u64 + 7 + 2), "{len}");
        assert_eq!(jit.run_xdp(&mut packet()), want, "{len}-byte frame");
    }

    // Verified: loads through a copy of `r1` and through `r1` itself.
    let copies = "
        mov %r7, %r1
        ldxw %r2, [%r7+0]
        ldxw %r3, [%r1+4]
        ldxw %r4, [%r7+12]
        mov %r0, %r3
        sub %r0, %r2
        add %r0, %r4
        exit";
    let p = verified(copies, ProgramType::Xdp);
    let mut jit = Jit::new(&p, Helpers::new(), Config::default()).unwrap();
    let mut interp = Interpreter::new(&p, Helpers::new(), Config::default()).unwrap();
    for len in [0usize, 60] {
        let frame = vec![3u8; len];
        let packet = || {
            let mut p = XdpPacket::new(&frame);
            p.ingress_ifindex = 7;
            p
        };
        let want = interp.run_xdp(&mut packet());
        assert_eq!(want, Ok(len as u64 + 7), "{len}");
        assert_eq!(jit.run_xdp(&mut packet()), want, "{len}-byte frame, verified");
    }
}

/// The clock, random and CPU helpers call the module's environment directly (the CPU is a
/// constant), and `bpf_ringbuf_output` writes into the ring buffer directly: the same results and
/// records as the helper path, and no runtime call left (the program runs without a region table).
#[test]
fn environment_and_ring_buffer_helpers_are_direct_calls() {
    let src = "
        call 5
        mov %r6, %r0
        call 125
        sub %r6, %r0
        stxdw [%r10-8], %r6
        call 7
        stxdw [%r10-16], %r0
        call 8
        stxdw [%r10-24], %r0
        lddw %r1, map_fd 0
        mov %r2, %r10
        add %r2, -24
        mov %r3, 24
        mov %r4, 0
        call 130
        mov %r7, %r0
        ldxdw %r0, [%r10-16]
        and %r0, 3
        add %r0, %r7
        exit";
    let object = object(ProgramKind::Xdp, src, vec![map("events", 27, 0, 0, 4096)]);
    let module = Module::load(&object, LoadOptions { env: Env::deterministic(), ..LoadOptions::default() }).unwrap();
    let stats = module.jit("prog").unwrap().stats();
    assert_eq!((stats.direct_env_calls, stats.direct_map_calls, stats.runtime_calls), (4, 1, 0), "{stats:?}");
    same_in_both("environment helpers", &object);
}
