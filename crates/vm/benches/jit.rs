//! duet's JIT against the kernel's JIT (`BPF_PROG_TEST_RUN`), duet's interpreter and the `rbpf`
//! crate's JIT, on one set of XDP programs over a 1500-byte frame, in one process.
//!
//! The programs are C (below), compiled once with `clang -O2 -mcpu=v3 -target bpf` into
//! `target/tmp/jit-bench/*.o`; the same object runs in the kernel and, through duet-object, in
//! duet's engines. rbpf runs the same relocated bytecode, with two rewrites it needs: the
//! `xdp_md.data`/`data_end` loads become 64-bit loads of a `{data, data_end}` pair (rbpf has no
//! context rewriting), and `lddw map_fd N` becomes the constant `N` for an rbpf helper that
//! looks the map up in duet-maps. Before anything is timed, every engine's verdict on a fresh
//! run must equal duet's interpreter's, so all columns measure the same work.
//!
//! Timing: rounds alternate the engines (kernel: `BPF_PROG_TEST_RUN` with a repeat count, the
//! kernel's own ns per run, which leaves out time spent rescheduled; userspace: `Instant` over a
//! batch of runs on the same packet, as the kernel's repeat loop does, in 20 slices of which the
//! median counts, so that slices another process interrupted do not); the table shows the median
//! round per engine, the ratios to the kernel and to rbpf, and geometric means. Compile time is
//! reported per 1,000 eBPF instructions, as the compiling thread's CPU time (other processes on a
//! busy machine stretch the wall time, shown in brackets, not the CPU time).
//! Needs clang; the kernel column needs root (CAP_BPF) and says so when missing.
//!
//! Run with `cargo bench -p duet-vm --bench jit`. For profiling, `DUET_JIT_BENCH_ONLY=a,b` runs
//! only those programs, `DUET_JIT_PROFILE_COMPILE=n` only compiles the large program (of
//! `DUET_JIT_PROFILE_SIZE` instructions, default 8000) five times `n` times, then prints
//! Cranelift's time per pass, and `DUET_JIT_PROFILE_PROGRAM=name` only compiles that program of
//! the set (see `profile_program`; `DUET_JIT_PROFILE_COUNT` times, default 2,000).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use duet_maps::Map;
use duet_object::Object;
use duet_vm::{Env, LoadOptions, Module, XdpPacket};

const HEADER: &str = r#"
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
#define PKT(ctx) void *data = (void *)(long)ctx->data; void *end = (void *)(long)ctx->data_end;
"#;

/// `(name, map setup, C source of the program named `name`)`.
const PROGRAMS: &[(&str, &str)] = &[
    (
        "alu_loop",
        r#"
SEC("xdp") int alu_loop(struct xdp_md *ctx) {
    PKT(ctx)
    if (data + 8 > end) return XDP_ABORTED;
    __u64 x = *(__u64 *)data, acc = 0x1234;
    for (int i = 0; i < 1000; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        acc ^= x >> 17;
        acc += (x << 3) | (acc >> 5);
    }
    return (acc & 1) + 1;
}"#,
    ),
    (
        "sieve",
        r#"
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __type(key, __u32); __type(value, __u8[64]); __uint(max_entries, 1); } bits SEC(".maps");
SEC("xdp") int sieve(struct xdp_md *ctx) {
    __u32 k = 0;
    __u8 *b = bpf_map_lookup_elem(&bits, &k);
    if (!b) return XDP_ABORTED;
    for (int i = 0; i < 64; i++) b[i] = 0;
    /* Every i marks its multiples (no data-dependent skip, so verifiers follow one path). */
    for (__u32 i = 2; i < 512; i++)
        for (__u32 j = 2 * i; j < 512; j += i) b[(j >> 3) & 63] |= 1 << (j & 7);
    __u32 primes = 0;
    for (__u32 i = 2; i < 512; i++) primes += !(b[(i >> 3) & 63] & (1 << (i & 7)));
    return primes == 97 ? XDP_PASS : XDP_DROP;
}"#,
    ),
    (
        "checksum",
        r#"
SEC("xdp") int checksum(struct xdp_md *ctx) {
    PKT(ctx)
    __u64 sum = 0;
    __u16 *p = data;
    for (int i = 0; i < 750; i++) {
        if ((void *)(p + 1) > end) break;
        sum += *p++;
    }
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return (sum & 1) + 1;
}"#,
    ),
    (
        "loop_callback",
        r#"
struct words { void *data, *end; __u64 sum; };
static long add_word(__u32 i, void *arg) {
    struct words *w = arg;
    __u16 *p = w->data + ((i * 2) & 2047);
    if ((void *)(p + 1) > w->end) return 1;
    w->sum += *p;
    return 0;
}
/* The checksum's sum, one 16-bit word per bpf_loop callback call. (No branch on the sum after
   the loop: the kernel would then track it precisely through every call, and give up.) */
SEC("xdp") int loop_callback(struct xdp_md *ctx) {
    PKT(ctx)
    struct words w = { data, end, 0 };
    bpf_loop(750, add_word, &w, 0);
    return (w.sum & 1) + 1;
}"#,
    ),
    (
        "memcpy",
        r#"
SEC("xdp") int memcpy(struct xdp_md *ctx) {
    PKT(ctx)
    if (data + 1024 > end) return XDP_ABORTED;
    __u64 *src = data, *dst = data + 512;
    for (int i = 0; i < 64; i++) dst[i] = src[i];
    return XDP_TX;
}"#,
    ),
    (
        "strcmp",
        r#"
SEC("xdp") int strcmp(struct xdp_md *ctx) {
    PKT(ctx)
    if (data + 512 > end) return XDP_ABORTED;
    __u8 *a = data, *b = data + 256;
    int i;
    for (i = 0; i < 255; i++) {
        if (a[i] != b[i] || a[i] == 0) break;
    }
    return a[i] == b[i] ? XDP_PASS : XDP_DROP;
}"#,
    ),
    (
        "switch",
        r#"
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __type(key, __u32); __type(value, __u64); __uint(max_entries, 1); } scratch SEC(".maps");
SEC("xdp") int switch_table(struct xdp_md *ctx) {
    PKT(ctx)
    if (data + 256 > end) return XDP_ABORTED;
    __u32 k = 0;
    /* The accumulator lives in a map value: the 16 paths through the switch then join in the
       same verifier state at the loop head (duet's verifier has no precision tracking). */
    volatile __u64 *a = bpf_map_lookup_elem(&scratch, &k);
    if (!a) return XDP_ABORTED;
    __u8 *p = data;
    *a = 7;
    for (int i = 0; i < 256; i++) {
        __u64 acc = *a;
        switch (p[i] & 15) {
        case 0: acc += 1; break;
        case 1: acc ^= 0x55; break;
        case 2: acc *= 3; break;
        case 3: acc -= 7; break;
        case 4: acc <<= 1; break;
        case 5: acc >>= 1; break;
        case 6: acc |= 0x100; break;
        case 7: acc &= 0xfffff; break;
        case 8: acc += p[i]; break;
        case 9: acc ^= acc >> 3; break;
        case 10: acc += 0x1234; break;
        case 11: acc = ~acc; break;
        case 12: acc *= 5; break;
        case 13: acc -= p[i]; break;
        case 14: acc ^= 0xabcdef; break;
        default: acc += acc >> 7; break;
        }
        *a = acc;
    }
    __u64 acc = *a;
    return (acc & 1) + 1;
}"#,
    ),
    (
        "calls",
        r#"
static __attribute__((noinline)) __u64 mix(__u64 a, __u64 b) {
    return (a ^ (b * 0x9e3779b97f4a7c15ULL)) + (a >> 7);
}
SEC("xdp") int calls(struct xdp_md *ctx) {
    PKT(ctx)
    if (data + 8 > end) return XDP_ABORTED;
    __u64 acc = *(__u64 *)data;
    for (int i = 0; i < 100; i++) acc = mix(acc, i);
    return (acc & 1) + 1;
}"#,
    ),
    (
        "bswap",
        r#"
SEC("xdp") int bswap(struct xdp_md *ctx) {
    PKT(ctx)
    if (data + 512 > end) return XDP_ABORTED;
    __u64 *w = data;
    __u64 acc = 0;
    for (int i = 0; i < 64; i++) {
        acc += __builtin_bswap64(w[i]);
        acc ^= __builtin_bswap32((__u32)w[i]);
        acc += __builtin_bswap16((__u16)(w[i] >> 16));
    }
    return (acc & 1) + 1;
}"#,
    ),
    (
        "hash_lookup",
        r#"
struct { __uint(type, BPF_MAP_TYPE_HASH); __type(key, __u32); __type(value, __u64); __uint(max_entries, 64); } table SEC(".maps");
SEC("xdp") int hash_lookup(struct xdp_md *ctx) {
    PKT(ctx)
    if (data + 32 > end) return XDP_ABORTED;
    __u8 *p = data;
    __u64 sum = 0;
    for (int i = 0; i < 32; i++) {
        __u32 key = p[i] & 63;
        __u64 *v = bpf_map_lookup_elem(&table, &key);
        if (v) sum += *v;
    }
    return (sum & 1) + 1;
}"#,
    ),
    (
        "array_counters",
        r#"
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __type(key, __u32); __type(value, __u64); __uint(max_entries, 64); } counters SEC(".maps");
SEC("xdp") int array_counters(struct xdp_md *ctx) {
    PKT(ctx)
    if (data + 16 > end) return XDP_ABORTED;
    __u8 *p = data;
    for (int i = 0; i < 16; i++) {
        __u32 key = p[i] & 63;
        __u64 *v = bpf_map_lookup_elem(&counters, &key);
        if (v) __sync_fetch_and_add(v, 1);
    }
    return XDP_PASS;
}"#,
    ),
    (
        "parser",
        r#"
struct eth { __u8 dst[6], src[6]; __u16 proto; };
struct ip4 { __u8 vhl, tos; __u16 len, id, frag; __u8 ttl, proto; __u16 csum; __u32 saddr, daddr; };
struct tcp { __u16 sport, dport; __u32 seq, ack; __u16 flags, win, csum, urg; };
SEC("xdp") int parser(struct xdp_md *ctx) {
    PKT(ctx)
    struct eth *e = data;
    if ((void *)(e + 1) > end) return XDP_ABORTED;
    if (e->proto != __builtin_bswap16(0x0800)) return XDP_PASS;
    struct ip4 *ip = (void *)(e + 1);
    if ((void *)(ip + 1) > end) return XDP_ABORTED;
    __u32 ihl = (ip->vhl & 15) * 4;
    if (ihl < 20) return XDP_DROP;
    struct tcp *t = (void *)ip + ihl;
    if ((void *)(t + 1) > end) return XDP_ABORTED;
    if (ip->proto != 6) return XDP_PASS;
    if (t->dport == __builtin_bswap16(22)) return XDP_DROP;
    if (ip->ttl <= 1) return XDP_DROP;
    for (int i = 0; i < 6; i++) { __u8 x = e->dst[i]; e->dst[i] = e->src[i]; e->src[i] = x; }
    return XDP_TX;
}"#,
    ),
];

/// The frame every program runs on: Ethernet + IPv4 + TCP to port 80, a payload whose first and
/// second 256-byte halves are equal strings (for `strcmp`).
fn frame() -> Vec<u8> {
    let mut f = vec![0u8; 1500];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[22] = 64;
    f[23] = 6;
    f[36..38].copy_from_slice(&80u16.to_be_bytes());
    for (i, b) in f.iter_mut().enumerate().skip(54) {
        *b = if i < 250 { b'a' + (i % 26) as u8 } else { (i as u8).wrapping_mul(31).wrapping_add(7) };
    }
    let first: Vec<u8> = f[0..256].to_vec();
    f[256..512].copy_from_slice(&first);
    f
}

/// Seeds `table` (hash_lookup) with keys 0..64, as every engine's map.
fn seed(name: &str, map: &Map) {
    if name == "table" {
        for k in 0u32..64 {
            map.update(&k.to_le_bytes(), &u64::from(k * 3 + 1).to_le_bytes(), 0, None).unwrap();
        }
    }
}

fn seed_kernel(object: &Object) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    if object.map_index("table").is_none() {
        return Vec::new();
    }
    (0u32..64)
        .map(|k| ("table".to_owned(), k.to_le_bytes().to_vec(), u64::from(k * 3 + 1).to_le_bytes().to_vec()))
        .collect()
}

fn compile_c(dir: &Path, name: &str, src: &str) -> Option<PathBuf> {
    let c = dir.join(format!("{name}.c"));
    let o = dir.join(format!("{name}.o"));
    std::fs::write(&c, format!("{HEADER}\n{src}\n")).ok()?;
    let multiarch = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let out = std::process::Command::new("clang")
        .args(["-O2", "-g", "-mcpu=v3", "-target", "bpf", &multiarch, "-c"])
        .arg(&c)
        .arg("-o")
        .arg(&o)
        .output()
        .ok()?;
    if !out.status.success() {
        panic!("clang failed on {name}:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    Some(o)
}

// === rbpf ===

thread_local! {
    /// The maps of the program rbpf runs (its helpers are plain functions, not closures).
    static RBPF_MAPS: std::cell::RefCell<Vec<Arc<Map>>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn rbpf_lookup(map: u64, key: u64, _: u64, _: u64, _: u64) -> u64 {
    RBPF_MAPS.with(|maps| {
        let maps = maps.borrow();
        let Some(map) = maps.get(map as usize) else { return 0 };
        // SAFETY: rbpf passes the pointer the program computed, a stack slot of the key's size
        // (the same program passed duet's verifier and the kernel's).
        let key = unsafe { std::slice::from_raw_parts(key as *const u8, map.spec().key_size as usize) };
        map.lookup_ptr(key, 0).map_or(0, |p| p.as_ptr() as u64)
    })
}

/// The program's bytecode for rbpf: context loads of `data`/`data_end` at its start become
/// 64-bit loads from a `{data, data_end}` pair, map references become map indices.
fn rbpf_bytes(object: &Object, name: &str) -> Vec<u8> {
    let program = &object.program(Some(name)).unwrap().program;
    let mut bytes = program.to_bytes();
    // The context stays in r1 until r1 is written or control flow starts.
    let mut ctx_in_r1 = true;
    for slot in 0..bytes.len() / 8 {
        let insn = &mut bytes[slot * 8..slot * 8 + 8];
        let (op, dst, src, off) = (insn[0], insn[1] & 15, insn[1] >> 4, i16::from_le_bytes([insn[2], insn[3]]));
        let class = op & 7;
        if ctx_in_r1 && op == 0x61 && src == 1 && (off == 0 || off == 4) {
            insn[0] = 0x79;
            insn[2..4].copy_from_slice(&(off * 2).to_le_bytes());
        }
        if class == 5 || class == 6 || (dst == 1 && matches!(class, 0 | 1 | 4 | 7)) {
            ctx_in_r1 = false;
        }
        if op == 0x18 && src == 1 {
            insn[1] &= 0x0f;
        }
    }
    bytes
}

// === compile time of one large program ===

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`): what a compile costs, whatever
/// else the machine runs meanwhile.
fn thread_cpu() -> Option<Duration> {
    cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time of the whole process, every thread (`CLOCK_PROCESS_CPUTIME_ID`).
fn process_cpu() -> Option<Duration> {
    cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn cpu_clock(clock: libc::clockid_t) -> Option<Duration> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `clock_gettime` writes one `timespec` into `ts`, which lives for the call.
    let ret = unsafe { libc::clock_gettime(clock, &mut ts) };
    (ret == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// Runs `f`; its result, and the thread CPU time it took (or wall time where there is no CPU
/// clock).
fn cpu_timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let (c0, w0) = (thread_cpu(), Instant::now());
    let v = f();
    let t = match (c0, thread_cpu()) {
        (Some(a), Some(b)) => b - a,
        _ => w0.elapsed(),
    };
    (v, t)
}

const LARGE_INSNS: usize = 8000;

/// Compile times of a large program per 1,000 instructions, in ms (medians of five compiles).
struct LargeCompile {
    /// Until the code runs (a tiered program's first tier): wall and CPU time.
    wall: f64,
    cpu: f64,
    /// A tiered program's optimized tier, compiled on a background thread: the process's CPU
    /// time while it ran (beyond the compiling thread's), and its wall time.
    optimized_cpu: Option<f64>,
    optimized_wall: Option<f64>,
}

/// Compiles an `n`-instruction verified XDP program (blocks of ALU work, stack stores and loads,
/// forward branches) five times, each time waiting for its optimized tier if it has one.
fn large_compile_ms_per_1000(n: usize) -> LargeCompile {
    let mut src = String::from("mov %r0, 0\nmov %r1, 1\nmov %r2, 2\nmov %r3, 3\n");
    let mut count = 4;
    let mut label = 0;
    while count + 12 < n {
        src.push_str(&format!(
            "add %r0, %r1\nmul %r2, 7\nxor %r3, %r2\nrsh %r3, 3\nstxdw [%r10-{o}], %r3\nldxdw %r4, [%r10-{o}]\nadd32 %r1, %r4\njgt %r4, {label}, l{label}\nadd %r0, 1\nl{label}:\nsub %r2, %r0\nlsh %r1, 1\n",
            o = 8 * (label % 60 + 1)
        ));
        label += 1;
        count += 11;
    }
    src.push_str("and %r0, 3\nexit\n");
    let program = duet_isa::Program::from_insns(&duet_isa::assemble(&src).unwrap()).unwrap();
    let verified =
        duet_verifier::verify(&program, &duet_verifier::VerifyContext::new(duet_verifier::ProgramType::Xdp)).unwrap();
    let (mut wall, mut cpu, mut opt_cpu, mut opt_wall) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        let process0 = process_cpu();
        let (jit, thread) =
            cpu_timed(|| duet_vm::Jit::new(&verified, duet_vm::Helpers::new(), duet_vm::Config::default()).unwrap());
        let per = |t: Duration| t.as_nanos() as f64 / 1e6 / jit.stats().n_insns as f64 * 1000.0;
        wall.push(per(jit.stats().time));
        cpu.push(per(thread));
        if jit.stats().tiered {
            let deadline = Instant::now() + Duration::from_secs(10);
            while jit.stats().optimized_time.is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_micros(200));
            }
            if let (Some(t), Some(a), Some(b)) = (jit.stats().optimized_time, process0, process_cpu()) {
                opt_wall.push(per(t));
                opt_cpu.push(per((b - a).saturating_sub(thread)));
            }
        }
    }
    let med = |v: &mut Vec<f64>| (!v.is_empty()).then(|| median(v));
    LargeCompile {
        wall: median(&mut wall),
        cpu: median(&mut cpu),
        optimized_cpu: med(&mut opt_cpu),
        optimized_wall: med(&mut opt_wall),
    }
}

/// The median time to compile `mov r0, 2; exit`: what every program pays whatever its size, in
/// µs: `(wall, CPU)`.
fn fixed_compile_us() -> (f64, f64) {
    let program = duet_isa::Program::from_insns(&duet_isa::assemble("mov %r0, 2\nexit").unwrap()).unwrap();
    let verified =
        duet_verifier::verify(&program, &duet_verifier::VerifyContext::new(duet_verifier::ProgramType::Xdp)).unwrap();
    let (mut wall, mut cpu): (Vec<f64>, Vec<f64>) = (0..51)
        .map(|_| {
            let (jit, cpu) = cpu_timed(|| {
                duet_vm::Jit::new(&verified, duet_vm::Helpers::new(), duet_vm::Config::default()).unwrap()
            });
            (jit.stats().time.as_nanos() as f64 / 1e3, cpu.as_nanos() as f64 / 1e3)
        })
        .unzip();
    (median(&mut wall), median(&mut cpu))
}

/// Profiling aid (`DUET_JIT_PROFILE_PROGRAM=name`): the median CPU time of `Module::jit` on
/// program `name` right after verifying it (as the set's compile time is measured) and in modules
/// verified beforehand (the difference is what running the verifier just before costs the
/// compile: caches it evicted); then `Jit::new` on the same proof `DUET_JIT_PROFILE_COUNT` times
/// (default 2,000) with no verification in between (stand-in helpers, map loads left
/// unresolved), so that `perf record` sees the compile and little else.
fn profile_program(name: &str, object: &Object, prog_name: &str, load: &dyn Fn() -> Module) {
    let mut after_verify: Vec<f64> = (0..50)
        .map(|_| {
            let m = load();
            m.interpreter(prog_name).unwrap();
            cpu_timed(|| m.jit(prog_name).unwrap()).1.as_nanos() as f64 / 1e3
        })
        .collect();
    let modules: Vec<Module> = (0..50)
        .map(|_| {
            let m = load();
            m.interpreter(prog_name).unwrap();
            m
        })
        .collect();
    let mut verified_before: Vec<f64> =
        modules.iter().map(|m| cpu_timed(|| m.jit(prog_name).unwrap()).1.as_nanos() as f64 / 1e3).collect();
    let program = object.program(Some(prog_name)).unwrap();
    let ctx = duet_verifier::VerifyContext::for_object_program(object, program).unwrap();
    let verified = duet_verifier::verify(&program.program, &ctx).unwrap();
    let mut helpers = duet_vm::Helpers::new();
    for id in 1..256 {
        helpers.register(id, |_, _| Ok(duet_vm::HelperOutcome::Return(0)));
    }
    let n: usize = std::env::var("DUET_JIT_PROFILE_COUNT").ok().and_then(|n| n.parse().ok()).unwrap_or(2000);
    let mut repeated: Vec<f64> = (0..n)
        .map(|_| {
            let helpers = helpers.clone();
            let (jit, t) = cpu_timed(|| duet_vm::Jit::new(&verified, helpers, duet_vm::Config::default()));
            black_box(jit.unwrap());
            t.as_nanos() as f64 / 1e3
        })
        .collect();
    println!(
        "{name}: µs CPU per Module::jit right after verifying {:.1}, verified beforehand {:.1} (medians of 50); per Jit::new repeated {:.1} (median of {n})",
        median(&mut after_verify),
        median(&mut verified_before),
        median(&mut repeated)
    );
}

// === timing ===

/// Slices a userspace batch is timed in.
const SLICES: u32 = 20;

/// Runs `f` `n` times in [`SLICES`] equal slices; ns per run in the median slice. The kernel's
/// `BPF_PROG_TEST_RUN` timer leaves out the time its repeat loop spends rescheduled
/// (`bpf_test_timer_continue`); the median slice likewise leaves out the slices another process
/// interrupted, so that on a busy machine the userspace columns are not charged for other
/// processes' time slices the kernel column is never charged for.
fn time(n: u32, mut f: impl FnMut()) -> f64 {
    let slices = SLICES.min(n).max(1);
    let per = n / slices;
    let mut times: Vec<f64> = (0..slices)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..per {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(per)
        })
        .collect();
    median(&mut times)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn geomean(v: &[f64]) -> f64 {
    (v.iter().map(|x| x.ln()).sum::<f64>() / v.len() as f64).exp()
}

struct Row {
    name: &'static str,
    kernel: Option<f64>,
    jit: f64,
    interp: f64,
    rbpf: Option<f64>,
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    if let Some(n) = std::env::var("DUET_JIT_PROFILE_COMPILE").ok().and_then(|n| n.parse::<usize>().ok()) {
        // Profiling aid (`perf record`): only the large compile, `n` times five.
        let size = std::env::var("DUET_JIT_PROFILE_SIZE").ok().and_then(|n| n.parse().ok()).unwrap_or(LARGE_INSNS);
        for _ in 0..n {
            let c = large_compile_ms_per_1000(size);
            println!(
                "{:.3} ms per 1,000 (CPU {:.3}); optimized tier {:?} (CPU {:?})",
                c.wall, c.cpu, c.optimized_wall, c.optimized_cpu
            );
        }
        println!("{}", cranelift_codegen::timing::take_current());
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("jit-bench");
    std::fs::create_dir_all(&dir).unwrap();
    if std::process::Command::new("clang").arg("--version").output().is_err() {
        eprintln!("SKIPPED: the JIT benchmark needs clang (`cargo xtask setup` installs it)");
        return;
    }
    let kernel_ok = match duet_kernel::check_access() {
        Ok(()) => true,
        Err(e) => {
            eprintln!("kernel column skipped: {e}");
            false
        }
    };
    let frame = frame();
    let (rounds, batch) = if bench_mode { (7, 20_000u32) } else { (1, 10) };
    let mut rows = Vec::new();
    let mut compile_ns = 0f64;
    let mut compile_cpu_ns = 0f64;
    let mut compile_insns = 0usize;
    let mut criterion =
        Criterion::default().configure_from_args().measurement_time(Duration::from_secs(2)).sample_size(20);
    // Profiling aid: `DUET_JIT_BENCH_ONLY=checksum,calls` runs only those programs.
    let only = std::env::var("DUET_JIT_BENCH_ONLY").ok();
    for (name, src) in PROGRAMS {
        if only.as_deref().is_some_and(|o| !o.split(',').any(|n| n == *name)) {
            continue;
        }
        eprintln!("{name}: compiling and checking");
        let obj_path = compile_c(&dir, name, src).expect("compile the benchmark program");
        let bytes = std::fs::read(&obj_path).unwrap();
        let object = Object::parse(&bytes).unwrap();
        let prog_name = object.programs[0].name.clone();
        let load = || {
            let m = Module::load(&object, LoadOptions { env: Env::deterministic(), ..LoadOptions::default() }).unwrap();
            for (n, map) in m.maps() {
                seed(n, map);
            }
            m
        };
        let (mi, mj, mr) = (load(), load(), load());
        if std::env::var("DUET_JIT_PROFILE_PROGRAM").is_ok_and(|p| p == *name) {
            profile_program(name, &object, &prog_name, &load);
            return;
        }
        let mut interp = mi.interpreter(&prog_name).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut jit = mj.jit(&prog_name).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Compile time: the median of five compiles, each in a fresh module (the first compile
        // of the process also pays for setting Cranelift up), verified before the clock starts.
        let (mut wall, mut cpu): (Vec<f64>, Vec<f64>) = (0..5)
            .map(|_| {
                let m = load();
                m.interpreter(&prog_name).unwrap_or_else(|e| panic!("{name}: {e}"));
                let (j, cpu) = cpu_timed(|| m.jit(&prog_name).unwrap_or_else(|e| panic!("{name}: {e}")));
                (j.stats().time.as_nanos() as f64, cpu.as_nanos() as f64)
            })
            .unzip();
        compile_ns += median(&mut wall);
        compile_cpu_ns += median(&mut cpu);
        compile_insns += jit.stats().n_insns;

        // rbpf, on its own copies of the maps.
        let rbpf_code = rbpf_bytes(&object, &prog_name);
        RBPF_MAPS.with(|m| *m.borrow_mut() = mr.maps().map(|(_, m)| Arc::clone(m)).collect());
        // rbpf 0.4's JIT crashed calling our map helper (SIGSEGV), so programs with maps have no
        // rbpf column.
        let mut rbpf_vm = if object.maps.is_empty() { rbpf::EbpfVmRaw::new(Some(&rbpf_code)).ok() } else { None };
        if let Some(vm) = &mut rbpf_vm
            && (vm.register_helper(1, rbpf_lookup).is_err() || vm.jit_compile().is_err())
        {
            rbpf_vm = None;
        }
        let mut rbpf_packet = frame.clone();
        let mut rbpf_ctx = [0u8; 16];
        let rbpf_run = |packet: &mut Vec<u8>, ctx: &mut [u8; 16]| -> Option<u64> {
            let vm = rbpf_vm.as_ref()?;
            let start = packet.as_mut_ptr() as u64;
            ctx[0..8].copy_from_slice(&start.to_le_bytes());
            ctx[8..16].copy_from_slice(&(start + packet.len() as u64).to_le_bytes());
            // SAFETY: the program passed duet's verifier and the kernel's, so it touches only
            // the packet, its stack and map values; the context pair points at `packet`.
            unsafe { vm.execute_program_jit(ctx).ok() }
        };

        // Agreement on a fresh run before timing.
        let mut p = XdpPacket::new(&frame);
        let want = interp.run_xdp(&mut p).unwrap_or_else(|t| panic!("{name}: {t}"));
        let got = jit.run_xdp(&mut XdpPacket::new(&frame)).unwrap_or_else(|t| panic!("{name}: {t}"));
        assert_eq!(got, want, "{name}: the JIT disagrees with the interpreter");
        eprintln!("{name}: duet agrees; rbpf");
        let rbpf_ok = match rbpf_run(&mut rbpf_packet, &mut rbpf_ctx) {
            Some(r) if r == want => true,
            None if !object.maps.is_empty() => false,
            other => {
                eprintln!("{name}: rbpf {other:?} vs duet {want}: rbpf column skipped");
                false
            }
        };
        let packets = [frame.clone()];
        let maps_in = seed_kernel(&object);
        let input = duet_kernel::TestRunInput {
            object: &bytes,
            program: &prog_name,
            packets: &packets,
            maps_in: &maps_in,
            prog_arrays: &[],
            repeat: 1,
        };
        if kernel_ok {
            let k = duet_kernel::test_run(&input).unwrap_or_else(|e| panic!("{name}: the kernel refused it: {e}"));
            assert_eq!(k.packets[0].result, Ok(want as u32), "{name}: the kernel disagrees");
        }

        // Interleaved rounds.
        let (mut kt, mut jt, mut it, mut rt) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut jp = XdpPacket::new(&frame);
        let mut ip = XdpPacket::new(&frame);
        for _ in 0..rounds {
            if kernel_ok {
                let out =
                    duet_kernel::bench(&duet_kernel::TestRunInput { repeat: if bench_mode { 0 } else { 10 }, ..input })
                        .unwrap();
                kt.push(out.ns_per_packet);
            }
            jt.push(time(batch, || {
                black_box(jit.run_xdp(&mut jp).ok());
            }));
            it.push(time((batch / 20).max(1), || {
                black_box(interp.run_xdp(&mut ip).ok());
            }));
            if rbpf_ok {
                rt.push(time(batch, || {
                    black_box(rbpf_run(&mut rbpf_packet, &mut rbpf_ctx));
                }));
            }
        }
        criterion.bench_function(&format!("jit/{name}"), |b| b.iter(|| black_box(jit.run_xdp(&mut jp).ok())));
        rows.push(Row {
            name,
            kernel: (!kt.is_empty()).then(|| median(&mut kt)),
            jit: median(&mut jt),
            interp: median(&mut it),
            rbpf: (!rt.is_empty()).then(|| median(&mut rt)),
        });
    }

    println!();
    println!(
        "{:<15} {:>10} {:>10} {:>10} {:>10} {:>11} {:>11} {:>12}",
        "program", "kernel ns", "duet JIT", "duet int", "rbpf JIT", "JIT/kernel", "JIT/rbpf", "interp/kern"
    );
    let fmt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
    let ratio = |a: f64, b: Option<f64>| b.map_or("-".to_owned(), |b| format!("{:.2}x", a / b));
    for r in &rows {
        println!(
            "{:<15} {:>10} {:>10.1} {:>10.1} {:>10} {:>11} {:>11} {:>12}",
            r.name,
            fmt(r.kernel),
            r.jit,
            r.interp,
            fmt(r.rbpf),
            ratio(r.jit, r.kernel),
            ratio(r.jit, r.rbpf),
            ratio(r.interp, r.kernel)
        );
    }
    let gm = |f: &dyn Fn(&Row) -> Option<f64>| {
        let v: Vec<f64> = rows.iter().filter_map(f).collect();
        (v.len() == rows.len()).then(|| geomean(&v))
    };
    let with_rbpf: Vec<&Row> = rows.iter().filter(|r| r.rbpf.is_some()).collect();
    println!(
        "geomean ratios: JIT/kernel {}, interpreter/kernel {}, JIT/rbpf {} (over the {} programs rbpf runs)",
        gm(&|r| r.kernel.map(|k| r.jit / k)).map_or("-".into(), |g| format!("{g:.2}x")),
        gm(&|r| r.kernel.map(|k| r.interp / k)).map_or("-".into(), |g| format!("{g:.2}x")),
        if with_rbpf.is_empty() {
            "-".to_owned()
        } else {
            format!("{:.2}x", geomean(&with_rbpf.iter().map(|r| r.jit / r.rbpf.unwrap_or(1.0)).collect::<Vec<_>>()))
        },
        with_rbpf.len()
    );
    let large = large_compile_ms_per_1000(LARGE_INSNS);
    let (fixed_wall, fixed_cpu) = fixed_compile_us();
    println!(
        "compile time (medians of 5, CPU time, wall in brackets): {:.0} µs [{:.0}] per program over the set ({compile_insns} instructions in {} programs: {:.3} ms [{:.3}] per 1,000 with the fixed cost); fixed cost {:.0} µs [{:.0}] per program (a 2-instruction program); {:.3} ms [{:.3}] per 1,000 on a {}-instruction program until its code runs (goal: under 1 ms){}",
        compile_cpu_ns / 1e3 / rows.len().max(1) as f64,
        compile_ns / 1e3 / rows.len().max(1) as f64,
        rows.len(),
        compile_cpu_ns / 1e6 / compile_insns.max(1) as f64 * 1000.0,
        compile_ns / 1e6 / compile_insns.max(1) as f64 * 1000.0,
        fixed_cpu,
        fixed_wall,
        large.cpu,
        large.wall,
        LARGE_INSNS,
        match (large.optimized_cpu, large.optimized_wall) {
            (Some(cpu), Some(wall)) => format!(
                " (its first tier, single-pass register allocation); the optimized tier that replaces it took {cpu:.3} ms [{wall:.3}] per 1,000 on a background thread"
            ),
            _ => String::new(),
        }
    );
    if !kernel_ok {
        println!("(no kernel column: not root or no CAP_BPF)");
    }
    criterion.final_summary();
}
