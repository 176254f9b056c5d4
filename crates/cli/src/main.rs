//! The `duet` command-line tool.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use duet_isa::Program;
use duet_testdata::{TestCase, Verdict};
use duet_vm::{Config, Helpers, Interpreter, Jit};

/// Every command prints through this `println!`, which shadows std's (it is defined before the
/// modules, so they all use it): std's panics when stdout is a closed pipe (`duet maps 1 | head`);
/// this one ends the process quietly and successfully, as the reader asked for no more.
macro_rules! println {
    () => {
        $crate::print_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::print_line(format_args!($($arg)*))
    };
}

mod build_cmd;
mod capture;
mod kernel;
mod mesh_cmd;
mod objects;
mod package_cmd;
mod replay;
mod showcase;
mod verify;
mod wasm_run;

/// mimalloc instead of the system allocator: the sidecar's request path allocates small,
/// short-lived buffers across threads, where glibc's malloc spends its time consolidating.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Where the external conformance suite sits relative to the project root.
const DEFAULT_CONFORMANCE_DIR: &str = "../shared/conformance/bpf_conformance/tests";

/// duet: write an eBPF/Wasm program once in Rust, run it in the kernel, in duet's userspace
/// eBPF VM, or in WebAssembly.
#[derive(Parser, Debug)]
#[command(name = "duet", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a set of `.data` test files (the bpf_conformance format) through the interpreter (or the
    /// JIT).
    ///
    /// Each file's `-- asm` and `-- raw` programs are run with its `-- mem` bytes (r1 = pointer,
    /// r2 = length) and helper 5 as the suite's "unwind" helper; the result must equal
    /// `-- result`, or the failure must contain the `-- error` text. Ends with the line
    /// `N passed, M failed`; exits non-zero if anything failed.
    Conformance {
        /// Directory of `.data` files [default: $DUET_CONFORMANCE_DIR, else ../shared/conformance/bpf_conformance/tests].
        dir: Option<PathBuf>,
        /// Print every test, not only failures.
        #[arg(short, long)]
        verbose: bool,
        /// Instruction budget per run.
        #[arg(long, default_value_t = 1_000_000)]
        budget: u64,
        /// Engine: `interp` (the checked interpreter) or `jit` (compiled with every access checked
        /// and the budget counted, as the suite's programs are not verified).
        #[arg(long, default_value = "interp", value_parser = ["interp", "jit"])]
        engine: String,
    },
    /// Act as a bpf_conformance plugin: read hex bytecode on stdin, run it, print r0 in hex.
    ///
    /// Errors go to stderr with a non-zero exit, as the suite's runner expects.
    ConformancePlugin {
        /// Input memory as hex bytes (passed as r1/r2).
        memory: Option<String>,
        /// Extra options some runners pass; accepted and ignored.
        #[arg(trailing_var_arg = true, hide = true)]
        rest: Vec<String>,
    },
    /// Assemble a program (conformance dialect) into raw little-endian bytecode.
    Asm {
        /// Assembly source file (`-` for stdin).
        input: PathBuf,
        /// Output file for the bytecode [default: stdout as hex, one instruction per line].
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Disassemble raw bytecode (a binary file of 8-byte instructions).
    Disasm {
        /// Bytecode file.
        input: PathBuf,
    },
    /// Run a program (assembly `.s`/`.asm` or raw bytecode) in the interpreter (or the JIT) and
    /// print r0.
    Exec {
        /// Program file.
        input: PathBuf,
        /// Input memory as hex bytes (passed as r1/r2).
        #[arg(long)]
        mem: Option<String>,
        /// Instruction budget.
        #[arg(long, default_value_t = 1_000_000)]
        budget: u64,
        /// Engine: `interp` or `jit` (compiled with every access checked and the budget counted).
        #[arg(long, default_value = "interp", value_parser = ["interp", "jit"])]
        engine: String,
    },
    /// Show an object file's programs, maps, relocations and disassembly (with source lines
    /// when the object has BTF line info).
    Inspect {
        /// The `.bpf.o` file.
        object: PathBuf,
        /// Disassemble only this program.
        #[arg(long)]
        program: Option<String>,
        /// Skip the disassembly.
        #[arg(long)]
        no_disasm: bool,
        /// Print one JSON object (programs, map references, maps, disassembly with source lines).
        #[arg(long)]
        json: bool,
    },
    /// Run an XDP or socket-filter program over every frame of a pcap/pcapng capture in the
    /// userspace VM, and report verdict counts (or JSON with every result and the final maps).
    Run {
        /// The `.bpf.o` or `.wasm` file.
        object: PathBuf,
        /// The capture (pcap or pcapng, Ethernet link type).
        #[arg(long)]
        pcap: PathBuf,
        /// Program to run (needed when the object has several).
        #[arg(long)]
        program: Option<String>,
        /// Engine: `interp` (the checked interpreter), `jit` (verified programs compiled to native
        /// code) or `wasm` (wasmtime) [default: `wasm` for a WebAssembly module, else `jit`, or
        /// `interp` with `--no-verify`]. The JIT and the interpreter give the same results; the
        /// interpreter checks every access at run time.
        /// A `.wasm` runs only in `wasm`, a `.bpf.o` only in `interp` or `jit`.
        #[arg(long, value_parser = ["interp", "jit", "wasm"])]
        engine: Option<String>,
        /// Print one JSON object: {"results": [r0 per packet, null if it trapped], "packets": ["<the
        /// packet as the program left it, hex>", ...], "ringbufs": {"<map>": ["<record hex>", ...]},
        /// "maps": {"<map>": {"<key hex>": "<value hex>" or ["<per-CPU hex>", ...]}}}; the shape of
        /// `duet test-run --json`, so the two diff. For a `.bpf.o` whose BTF declares map types
        /// (every SDK program), also "maps_typed": {"<map>": [{"key": K, "value": V}, ...]} with
        /// keys and values as typed JSON, as bpftool shows them (structs as objects, text byte
        /// arrays as strings, enums by name); a `.wasm` has no types. Maps are listed in the
        /// order the program declared them, for a `.bpf.o` built by `duet build` as for its
        /// `.wasm` (and so are the ring-buffer lines of the text report); maps the object has
        /// no declaration order for (global data, objects from clang) follow by name.
        #[arg(long)]
        json: bool,
        /// Write the packets as the program left them to this pcapng file, each with its verdict
        /// as the packet comment (a trapped packet is written as it came, with "trap").
        #[arg(long, value_name = "FILE")]
        pcap_out: Option<PathBuf>,
        /// Seed maps before the run from a JSON file of the same shape (e.g. a blocklist). For a
        /// map with BTF types, values (and keys that are not hex) may be typed JSON, and a map may
        /// be a list [{"key": K, "value": V}, ...] (e.g. {"CONFIG": [{"key": 0, "value": {"rate":
        /// 1, "burst": 2}}]}); the rule that tells typed from hex is the sidecar's (docs/MESH.md).
        #[arg(long)]
        maps_in: Option<PathBuf>,
        /// Number of CPUs per-CPU maps hold, at least 1 [default: the machine's possible CPUs, as
        /// the kernel].
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=4096))]
        cpus: Option<u16>,
        /// Deterministic time (starts at 1 s, +1 µs per read) and randomness, for reproducible output.
        #[arg(long)]
        deterministic: bool,
        /// Skip duet's verifier (eBPF in the interpreter only; refused with the JIT and with Wasm).
        /// The interpreter checks every memory access at run time, so an unsafe program traps
        /// rather than misbehaves; the JIT and the kernel never run unverified code.
        #[arg(long)]
        no_verify: bool,
        /// With --json: add `maps_typed`, every map whose key and value types the object's BTF
        /// declares, as typed JSON (structs as objects, byte strings as text), beside the hex
        /// `maps`. Off by default so that the JSON of a .bpf.o, its .wasm and `test-run` compare
        /// equal.
        #[arg(long, requires = "json")]
        typed: bool,
        /// Fill a prog array slot for tail calls, as MAP:SLOT=PROGRAM (e.g.
        /// `--tail-call BY_PROTOCOL:0=count_tcp`); repeat for more slots. The program named must
        /// be one of the same object's (or module's) XDP programs.
        #[arg(long = "tail-call", value_name = "MAP:SLOT=PROGRAM", value_parser = objects::parse_tail_call)]
        tail_calls: Vec<objects::TailCall>,
    },
    /// Build a program crate (written with the duet SDK) into target/duet/<name>.bpf.o and
    /// target/duet/<name>.wasm, setting up the toolchain it needs (rust-src, the wasm32 target,
    /// bpf-linker) when missing. Prints the artifacts' paths.
    Build {
        /// The program crate's directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Build only the .bpf.o.
        #[arg(long, conflicts_with = "wasm_only")]
        bpf_only: bool,
        /// Build only the .wasm.
        #[arg(long)]
        wasm_only: bool,
        /// Print only errors and the artifacts' paths.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Create a program crate `<name>` in the current directory from a template that builds
    /// with `duet build` and passes `cargo test`.
    New {
        /// The crate's name (also its directory and its XDP program's name).
        name: String,
        /// The duet SDK to depend on [default: crates/sdk of the checkout duet was built from].
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Prove an object's programs safe with duet's verifier (as the userspace VM requires), or
    /// explain every problem; also accepts a verifier test file (`.s` with `# type:`/`# map:`
    /// headers, as in tests/verifier/).
    Verify {
        /// The `.bpf.o` file (or a `.s` verifier test file).
        object: PathBuf,
        /// Verify only this program [default: every program in the object].
        #[arg(long)]
        program: Option<String>,
        /// Print the verifier's state trace (every processed instruction with its registers).
        #[arg(long)]
        log: bool,
        /// Print one JSON object: {"input", "ok", "programs": [...]}, one entry per program with
        /// "name" and "status": "verified" (with "instructions" and "stack_depth", the bytes of
        /// stack each function uses), "rejected" (with "diagnostics": code, pc, insn, message,
        /// state, notes, help, source line), "skipped" (a type duet does not verify: "reason")
        /// or "refused" (the program could not be prepared: "section", "reason"). Verified and
        /// rejected programs have "stats", as in the kernel's log level 2 summary:
        /// "insns_processed" (over all paths; "insn_limit" is the budget), "total_states"
        /// (states stored at prune points), "peak_states" (most stored at once),
        /// "max_states_per_insn", "pruned" (paths cut short by a stored state) and "time_us".
        #[arg(long)]
        json: bool,
        /// Verify as the kernel does for a loader without CAP_PERFMON: pointers may not be
        /// returned, stored, compared or subtracted, and stack must be written before it is read.
        /// By default duet follows the kernel's rules for root, where such values become plain
        /// numbers (memory safety is the same either way).
        #[arg(long)]
        unprivileged: bool,
    },
    /// The demo: build the firewall example once with the SDK into a .bpf.o and a .wasm, run a
    /// generated capture in the kernel (when root), the userspace eBPF VM and Wasm, and compare
    /// verdicts, maps and speed. `--basics` shows the instruction set and the interpreter instead.
    Demo {
        /// Show the assembler, the interpreter's traps and the conformance suite instead.
        #[arg(long)]
        basics: bool,
    },
    /// Benchmark every example in every executor (ns/packet), with the kernel's
    /// BPF_PROG_TEST_RUN time measured in the same run as the anchor; or, given an object and a
    /// capture, one XDP program of yours in every executor that can run it (the kernel when
    /// root, duet's interpreter and JIT, and Wasm with `--wasm`), results compared.
    ///
    /// Examples: `duet bench`; `duet bench prog.bpf.o --pcap traffic.pcap --program xdp_main
    /// --wasm prog.wasm --json`
    Bench {
        /// An eBPF object to time instead of the examples.
        object: Option<PathBuf>,
        /// The capture to run it over (pcap or pcapng, Ethernet); needed with an object.
        #[arg(long, requires = "object")]
        pcap: Option<PathBuf>,
        /// The XDP program [default: the object's only XDP program].
        #[arg(long, requires = "object")]
        program: Option<String>,
        /// The same program built as Wasm (`duet build`), for a Wasm row.
        #[arg(long, requires = "object")]
        wasm: Option<PathBuf>,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Compile a `.wasm` ahead of time into one executable with a runtime that has no compiler:
    /// a packet program runs as `./FILE --pcap in.pcap [--json]` (the output of `duet run`), an
    /// HTTP app (a wasi:http/incoming-handler component) as `./FILE --listen 127.0.0.1:8080`.
    ///
    /// Examples: `duet package examples/firewall/target/duet/firewall.wasm -o firewall`;
    /// `duet package hello_app.wasm -o hello --max-concurrency 64 --env GREETING=hi --kv 1000`.
    /// The runtime is duet-runner: `--runner`, else $DUET_RUNNER, else next to `duet`, else built
    /// from duet's checkout (`cargo build --release -p duet-runner`, echoed).
    Package(package_cmd::PackageArgs),
    /// The sidecar: an HTTP/1.1 and HTTP/2 proxy whose filters are Proxy-Wasm modules, with
    /// Prometheus metrics, an admin API and hot reload (`duet mesh run --config mesh.yaml`).
    #[command(subcommand)]
    Mesh(mesh_cmd::MeshCommand),
    #[command(flatten)]
    Kernel(kernel::KernelCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        // The reader of stdout went away (`| head`): what it read is all it wanted.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether an error comes from writing to a closed pipe.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
}

/// One line on stdout for [`println!`]: on a closed pipe the process ends with success; on any
/// other write error (a full disk) with an error.
fn print_line(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(err) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {err}");
        std::process::exit(1);
    }
}

fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Conformance { dir, verbose, budget, engine } => {
            let dir = conformance_dir(dir);
            let summary = run_conformance(&dir, verbose, budget, &engine)?;
            println!("{} passed, {} failed", summary.passed, summary.failed);
            Ok(if summary.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::ConformancePlugin { memory, rest: _ } => plugin(memory.as_deref()),
        Command::Asm { input, output } => {
            let source = read_text(&input)?;
            let insns = duet_isa::assemble(&source).with_context(|| format!("cannot assemble {}", input.display()))?;
            let program =
                Program::from_insns(&insns).with_context(|| format!("{} is not a valid program", input.display()))?;
            match output {
                Some(path) => std::fs::write(&path, program.to_bytes())
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => {
                    for raw in program.to_raw() {
                        println!("{:#018x}", raw.to_u64());
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Disasm { input } => {
            let bytes = std::fs::read(&input).with_context(|| format!("cannot read {}", input.display()))?;
            let program =
                Program::decode(&bytes).with_context(|| format!("{} is not valid eBPF bytecode", input.display()))?;
            for (pc, insn) in program.insns() {
                println!("{pc:>5}: {}", duet_isa::disassemble_insn(insn));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Exec { input, mem, budget, engine } => {
            let program = load_program_file(&input)?;
            let mut mem = parse_mem_arg(mem.as_deref())?;
            let r0 = execute(&program, &mut mem, budget, &engine).map_err(anyhow::Error::msg)?;
            println!("r0 = {r0:#x} ({r0})");
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect { object, program, no_disasm, json } => {
            if json {
                objects::inspect_json(&object, program.as_deref(), !no_disasm)?;
            } else {
                objects::inspect(&object, program.as_deref(), !no_disasm)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            object,
            pcap,
            program,
            engine,
            json,
            pcap_out,
            maps_in,
            cpus,
            deterministic,
            no_verify,
            typed,
            tail_calls,
        } => objects::run(&objects::RunArgs {
            object,
            pcap,
            program,
            engine,
            json,
            pcap_out,
            maps_in,
            cpus: cpus.map(usize::from),
            deterministic,
            no_verify,
            typed,
            tail_calls,
        }),
        Command::Build { dir, bpf_only, wasm_only, quiet } => {
            build_cmd::build(&build_cmd::BuildArgs { dir, bpf_only, wasm_only, quiet })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::New { name, sdk } => {
            build_cmd::new(&name, sdk)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { object, program, log, json, unprivileged } => {
            verify::run(&verify::VerifyArgs { input: &object, program: program.as_deref(), log, json, unprivileged })
        }
        Command::Demo { basics: true } => demo(),
        Command::Demo { basics: false } => {
            let packets = showcase::demo()?;
            let sidecar = mesh_cmd::demo()?;
            Ok(if packets && sidecar { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Bench { object: None, json, .. } => {
            Ok(if showcase::bench(json)? { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Bench { object: Some(object), pcap, program, wasm, json } => {
            let pcap = pcap.context("give the capture to run the object over: --pcap <file>")?;
            let ok = showcase::bench_object(&object, &pcap, program.as_deref(), wasm.as_deref(), json)?;
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Package(args) => package_cmd::run(args),
        Command::Mesh(command) => mesh_cmd::run(command),
        Command::Kernel(command) => kernel::run(command),
    }
}

struct Summary {
    passed: usize,
    failed: usize,
}

fn conformance_dir(arg: Option<PathBuf>) -> PathBuf {
    arg.or_else(|| std::env::var_os("DUET_CONFORMANCE_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFORMANCE_DIR))
}

fn run_conformance(dir: &Path, verbose: bool, budget: u64, engine: &str) -> Result<Summary> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the conformance directory {}; pass the directory of .data files or set DUET_CONFORMANCE_DIR", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "data"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no .data files in {}", dir.display());
    }
    let mut summary = Summary { passed: 0, failed: 0 };
    for path in &files {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let verdict = match std::fs::read_to_string(path) {
            Err(e) => Verdict::Fail(format!("cannot read: {e}")),
            Ok(text) => match TestCase::parse(&text) {
                Err(e) => Verdict::Fail(format!("cannot parse: {e}")),
                Ok(case) => case.check(|program, mem| execute(program, mem, budget, engine)),
            },
        };
        match verdict {
            Verdict::Pass => {
                summary.passed += 1;
                if verbose {
                    println!("PASS {name}");
                }
            }
            Verdict::Fail(why) => {
                summary.failed += 1;
                println!("FAIL {name}: {why}");
            }
        }
    }
    Ok(summary)
}

/// The interpreter as the conformance suite sees it: helper 5 is "unwind".
fn interpret(program: &Program, mem: &mut [u8], budget: u64) -> Result<u64, String> {
    let mut helpers = Helpers::new();
    helpers.register(5, duet_vm::unwind_helper);
    let mut vm =
        Interpreter::new_unverified(program, helpers, Config { max_insns: Some(budget) }).map_err(|e| e.to_string())?;
    let input = input_range(mem);
    vm.run(mem).map_err(|trap| describe_trap(&trap, input))
}

/// Where the input memory lies, to name faulting addresses by their offset in it.
fn input_range(mem: &[u8]) -> std::ops::Range<u64> {
    let start = mem.as_ptr() as u64;
    start..start + mem.len() as u64
}

/// A trap with its address as an offset from the input memory rather than a host address,
/// which changes from run to run (ASLR).
fn describe_trap(trap: &duet_vm::Trap, input: std::ops::Range<u64>) -> String {
    use duet_vm::TrapKind;
    let (what, addr, size) = match trap.kind {
        TrapKind::OutOfBoundsRead { addr, size } => ("out-of-bounds read", addr, size),
        TrapKind::OutOfBoundsWrite { addr, size } => ("out-of-bounds write", addr, size),
        TrapKind::MisalignedAtomic { addr, size } => ("misaligned atomic access", addr, size),
        _ => return trap.to_string(),
    };
    let len = input.end - input.start;
    // Within a page of the input, an address is an offset from it; anything else is outside
    // every region the program may touch (r10's stack frames are named by the program's code).
    let place = if addr.abs_diff(input.start) <= 4096 || addr.abs_diff(input.end) <= 4096 {
        format!("input{:+} (the input memory is {len} bytes)", addr.wrapping_sub(input.start) as i64)
    } else if addr < 4096 {
        format!("address {addr:#x} (near NULL)")
    } else {
        format!("an address outside the input memory ({len} bytes) and every other region")
    };
    format!("instruction {}: {what} of {size} bytes at {place}", trap.pc)
}

/// `interpret`, or the JIT: unverified programs compile as checked code (every access through
/// the region table, the budget counted), so results and traps are the interpreter's.
fn execute(program: &Program, mem: &mut [u8], budget: u64, engine: &str) -> Result<u64, String> {
    if engine != "jit" {
        return interpret(program, mem, budget);
    }
    let mut helpers = Helpers::new();
    helpers.register(5, duet_vm::unwind_helper);
    let mut jit = Jit::new_checked(program, helpers, Config { max_insns: Some(budget) }).map_err(|e| e.to_string())?;
    let input = input_range(mem);
    jit.run(mem).map_err(|trap| describe_trap(&trap, input))
}

fn plugin(memory: Option<&str>) -> Result<ExitCode> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).context("cannot read bytecode from stdin")?;
    let bytes =
        duet_testdata::parse_hex_bytes(&input).map_err(anyhow::Error::msg).context("stdin is not hex bytecode")?;
    let mut mem = parse_mem_arg(memory)?;
    let program = Program::decode(&bytes).context("invalid bytecode")?;
    let r0 = interpret(&program, &mut mem, 1_000_000).map_err(anyhow::Error::msg)?;
    println!("{r0:x}");
    Ok(ExitCode::SUCCESS)
}

fn parse_mem_arg(mem: Option<&str>) -> Result<Vec<u8>> {
    match mem {
        None => Ok(Vec::new()),
        Some(hex) => {
            duet_testdata::parse_hex_bytes(hex).map_err(anyhow::Error::msg).context("memory argument is not hex bytes")
        }
    }
}

fn read_text(path: &Path) -> Result<String> {
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("cannot read stdin")?;
        Ok(s)
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
    }
}

/// Loads assembly (by extension `.s`/`.asm`, or when the file is valid UTF-8 text) or raw bytecode.
fn load_program_file(path: &Path) -> Result<Program> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let is_asm = path.extension().is_some_and(|e| e == "s" || e == "asm");
    if is_asm {
        let text = String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", path.display()))?;
        let insns = duet_isa::assemble(&text).with_context(|| format!("cannot assemble {}", path.display()))?;
        Program::from_insns(&insns).with_context(|| format!("{} is not a valid program", path.display()))
    } else {
        Program::decode(&bytes)
            .with_context(|| format!("{} is not valid eBPF bytecode (use .s for assembly)", path.display()))
    }
}

const DEMO_PROGRAM: &str = "\
# Is this IPv4 packet's destination inside 192.168.1.0/24?
# r1 = packet, r2 = length. Returns 1 (inside), 0 (outside or not IPv4).
    mov %r0, 0
    jlt %r2, 34, out            # Ethernet (14) + IPv4 header (20)
    ldxh %r3, [%r1+12]          # EtherType, network byte order
    be16 %r3
    jne %r3, 0x0800, out
    ldxw %r4, [%r1+30]          # destination address
    be32 %r4
    and %r4, 0xffffff00
    jne32 %r4, 0xc0a80100, out  # 32-bit compare: a 64-bit one would sign-extend the immediate
    mov %r0, 1
out:
    exit
";

fn demo_packet(dst: [u8; 4], ethertype: u16) -> Vec<u8> {
    let mut p = vec![0u8; 34];
    p[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    p[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    p[12..14].copy_from_slice(&ethertype.to_be_bytes());
    p[14] = 0x45;
    p[22] = 64;
    p[23] = 17;
    p[26..30].copy_from_slice(&[10, 0, 0, 1]);
    p[30..34].copy_from_slice(&dst);
    p
}

fn demo() -> Result<ExitCode> {
    let color = std::io::stdout().is_terminal();
    let bold = |s: &str| if color { format!("\x1b[1m{s}\x1b[0m") } else { s.to_owned() };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", bold("duet demo — the userspace eBPF interpreter"))?;
    writeln!(out)?;

    writeln!(out, "{}", bold("1. A sample program, assembled and disassembled from one opcode table"))?;
    let insns = duet_isa::assemble(DEMO_PROGRAM).context("the bundled demo program does not assemble")?;
    let program = Program::from_insns(&insns).context("the bundled demo program is invalid")?;
    for (pc, insn) in program.insns() {
        writeln!(out, "  {pc:>3}: {}", duet_isa::disassemble_insn(insn))?;
    }
    writeln!(out)?;
    let packets = [
        ("IPv4 to 192.168.1.7", demo_packet([192, 168, 1, 7], 0x0800)),
        ("IPv4 to 192.168.2.7", demo_packet([192, 168, 2, 7], 0x0800)),
        ("IPv6 EtherType", demo_packet([192, 168, 1, 7], 0x86dd)),
        ("truncated frame", demo_packet([192, 168, 1, 7], 0x0800)[..20].to_vec()),
    ];
    writeln!(out, "  {:<24} {:>4}", "packet", "r0")?;
    for (name, mut packet) in packets {
        let r0 = interpret(&program, &mut packet, 1_000_000).map_err(anyhow::Error::msg)?;
        writeln!(out, "  {name:<24} {r0:>4}")?;
    }
    writeln!(out)?;

    writeln!(out, "{}", bold("2. A fault is a value, not a crash"))?;
    let bad = Program::from_insns(&duet_isa::assemble("ldxdw %r0, [%r1+4096]\nexit").context("demo fault program")?)?;
    match interpret(&bad, &mut [0u8; 16], 1_000_000) {
        Ok(r0) => writeln!(out, "  unexpectedly returned {r0:#x}")?,
        Err(trap) => writeln!(out, "  reading past a 16-byte input traps: {trap}")?,
    }
    writeln!(out)?;

    writeln!(out, "{}", bold("3. The external bpf_conformance suite"))?;
    let dir = conformance_dir(None);
    out.flush()?;
    drop(out);
    if dir.is_dir() {
        println!("  running {}", dir.display());
        let summary = run_conformance(&dir, false, 1_000_000, "interp")?;
        println!("{} passed, {} failed", summary.passed, summary.failed);
        Ok(if summary.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    } else {
        println!("  skipped: {} not found (set DUET_CONFORMANCE_DIR to the suite's tests directory)", dir.display());
        Ok(ExitCode::SUCCESS)
    }
}
