//! `duet demo` and `duet bench`: one program, built once with the SDK, in every executor.
//!
//! Both build an example crate with `duet build`, run the generated packet corpus through the
//! kernel (`BPF_PROG_TEST_RUN`, when privileged), duet's userspace eBPF interpreter and JIT, and the Wasm
//! host, and compare. Each executor first runs the capture once on freshly loaded maps (for
//! verdicts and final maps), then again, on separately loaded maps, for timing.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use duet_build::{BuildConfig, Progress, Targets};
use duet_kernel::TestRunInput;
use duet_maps::Map;
use duet_vm::{Env, LoadOptions, Module, XdpPacket};
use duet_wasm::{WasmModule, WasmOptions};
use serde_json::{Map as JsonMap, Value as Json};

use crate::objects;

/// An example crate and how to drive it.
struct Example {
    name: String,
    program: String,
    /// Entries to write before running: (map, key, value).
    seed: Vec<(&'static str, Vec<u8>, Vec<u8>)>,
    /// Maps whose values depend on the clock, excluded from the kernel comparison.
    time_dependent: &'static [&'static str],
}

fn examples() -> Vec<Example> {
    // Block every 10.0.0.0/24 source and TCP port 23 (telnet), so the corpus sees drops.
    let mut seed: Vec<(&'static str, Vec<u8>, Vec<u8>)> =
        (0..=255u8).map(|last| ("BLOCKED", vec![10, 0, 0, last], vec![1])).collect();
    seed.push(("PORT_RULES", vec![6, 0, 0, 23], vec![1]));
    vec![
        Example { name: "firewall".into(), program: "firewall".into(), seed, time_dependent: &[] },
        Example {
            name: "ratelimit".into(),
            program: "ratelimit".into(),
            seed: Vec::new(),
            time_dependent: &["BUCKETS"],
        },
        Example { name: "flowstats".into(), program: "flowstats".into(), seed: Vec::new(), time_dependent: &[] },
    ]
}

/// One executor's outcome.
struct Row {
    executor: &'static str,
    results: Vec<Option<u64>>,
    maps: JsonMap<String, Json>,
    ns_per_packet: f64,
}

/// Finds `examples/` of the checkout: the current directory's, else the one duet was built from.
pub(crate) fn examples_dir() -> Result<PathBuf> {
    let here = Path::new("examples");
    if here.join("firewall/Cargo.toml").is_file() {
        return Ok(here.to_path_buf());
    }
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    if built_from.join("firewall/Cargo.toml").is_file() {
        return Ok(built_from);
    }
    bail!("cannot find the examples; run this from a duet checkout (the directory with examples/)")
}

pub(crate) fn build_example(dir: &Path, quiet: bool) -> Result<(PathBuf, PathBuf)> {
    let config = BuildConfig {
        crate_dir: dir.to_path_buf(),
        targets: Targets { bpf: true, wasm: true },
        tools_dir: None,
        progress: Progress { quiet },
    };
    let out = duet_build::build(&config).with_context(|| format!("cannot build {}", dir.display()))?;
    match (out.bpf, out.wasm) {
        (Some(bpf), Some(wasm)) => Ok((bpf, wasm)),
        _ => bail!("duet build of {} did not produce both artifacts", dir.display()),
    }
}

/// Frames the kernel can test-run (it refuses frames shorter than an Ethernet header).
fn capture() -> Vec<Vec<u8>> {
    duet_testdata::packets::corpus().into_iter().map(|(_, f)| f).filter(|f| f.len() >= 14).collect()
}

/// Runs `pass` repeatedly for about `budget`; returns ns per packet.
fn time_per_packet(n_packets: usize, budget: Duration, mut pass: impl FnMut() -> Result<()>) -> Result<f64> {
    pass()?; // warm-up
    let started = Instant::now();
    let mut rounds = 0u64;
    while started.elapsed() < budget || rounds < 3 {
        pass()?;
        rounds += 1;
    }
    Ok(started.elapsed().as_nanos() as f64 / (rounds as f64 * n_packets as f64))
}

fn seed_map(map: &Map, key: &[u8], value: &[u8]) -> Result<()> {
    map.update(key, value, 0, None).map_err(|e| anyhow::anyhow!("cannot seed map `{}`: {e}", map.spec().name))
}

/// The userspace engine a row runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum VmEngine {
    Interpreter,
    Jit,
}

/// An interpreter or a JIT-compiled program, run the same way.
enum Runner {
    Interpreter(duet_vm::Interpreter),
    Jit(duet_vm::Jit),
}

impl Runner {
    fn new(module: &Module, program: &str, engine: VmEngine) -> Result<Runner> {
        Ok(match engine {
            VmEngine::Interpreter => Runner::Interpreter(module.interpreter(program)?),
            VmEngine::Jit => Runner::Jit(module.jit(program)?),
        })
    }

    fn run_xdp(&mut self, packet: &mut XdpPacket) -> Result<u64, duet_vm::Trap> {
        match self {
            Runner::Interpreter(vm) => vm.run_xdp(packet),
            Runner::Jit(jit) => jit.run_xdp(packet),
        }
    }
}

fn run_vm(bpf: &Path, example: &Example, frames: &[Vec<u8>], budget: Duration, engine: VmEngine) -> Result<Row> {
    let object = objects::load_object(bpf)?;
    let load = || -> Result<Module> {
        let options = LoadOptions { n_cpus: 1, env: Env::deterministic(), ..LoadOptions::default() };
        let module = Module::load(&object, options)?;
        for (name, key, value) in &example.seed {
            seed_map(module.map(name)?, key, value)?;
        }
        Ok(module)
    };
    let module = load()?;
    let mut vm = Runner::new(&module, &example.program, engine)?;
    let mut packet = XdpPacket::new(&[]);
    let mut results = Vec::with_capacity(frames.len());
    for frame in frames {
        packet.reset(frame);
        results.push(vm.run_xdp(&mut packet).ok());
    }
    let maps = as_object(objects::dump_maps(module.maps().map(|(n, m)| (n, &**m))));
    let timing = load()?;
    let mut vm = Runner::new(&timing, &example.program, engine)?;
    let ns = time_per_packet(frames.len(), budget, || {
        for frame in frames {
            packet.reset(frame);
            vm.run_xdp(&mut packet).map_err(|t| anyhow::anyhow!("{t}"))?;
        }
        Ok(())
    })?;
    let executor = match engine {
        VmEngine::Interpreter => "userspace eBPF (interp)",
        VmEngine::Jit => "userspace eBPF (JIT)",
    };
    Ok(Row { executor, results, maps, ns_per_packet: ns })
}

fn run_wasm(wasm: &Path, example: &Example, frames: &[Vec<u8>], budget: Duration) -> Result<Row> {
    let bytes = std::fs::read(wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
    let load = || -> Result<WasmModule> {
        let options = WasmOptions {
            n_cpus: 1,
            env: Env::deterministic(),
            cache_dir: duet_wasm::default_cache_dir(),
            ..WasmOptions::default()
        };
        let module = WasmModule::load(&bytes, &options)?;
        for (name, key, value) in &example.seed {
            let map = module.map(name).with_context(|| format!("no map `{name}` in {}", wasm.display()))?;
            seed_map(map, key, value)?;
        }
        Ok(module)
    };
    let module = load()?;
    let mut exec = module.executor(&example.program)?;
    let mut buf = Vec::new();
    let mut results = Vec::with_capacity(frames.len());
    for frame in frames {
        buf.clear();
        buf.extend_from_slice(frame);
        results.push(exec.run_xdp(&mut buf).ok().map(u64::from));
    }
    let maps = as_object(objects::dump_maps(module.maps().map(|(n, m)| (n, &**m))));
    let timing = load()?;
    let mut exec = timing.executor(&example.program)?;
    let ns = time_per_packet(frames.len(), budget, || {
        for frame in frames {
            buf.clear();
            buf.extend_from_slice(frame);
            exec.run_xdp(&mut buf)?;
        }
        Ok(())
    })?;
    Ok(Row { executor: "Wasm (wasmtime)", results, maps, ns_per_packet: ns })
}

fn run_kernel(bpf: &Path, example: &Example, frames: &[Vec<u8>]) -> Result<Row> {
    let object = std::fs::read(bpf).with_context(|| format!("cannot read {}", bpf.display()))?;
    let maps_in: Vec<(String, Vec<u8>, Vec<u8>)> =
        example.seed.iter().map(|(n, k, v)| ((*n).to_owned(), k.clone(), v.clone())).collect();
    let input = TestRunInput {
        object: &object,
        program: &example.program,
        packets: frames,
        maps_in: &maps_in,
        prog_arrays: &[],
        repeat: 1,
    };
    let out = duet_kernel::test_run(&input)?;
    let results = out.packets.iter().map(|p| p.result.as_ref().ok().map(|v| u64::from(*v))).collect();
    let maps = as_object(crate::kernel::maps_json(&crate::kernel::in_map_order(&out.maps, &[])));
    let bench = duet_kernel::bench(&input)?;
    Ok(Row { executor: "Linux kernel", results, maps, ns_per_packet: bench.ns_per_packet })
}

fn as_object(v: Json) -> JsonMap<String, Json> {
    match v {
        Json::Object(m) => m,
        _ => JsonMap::new(),
    }
}

/// Maps that every executor must agree on: no global data (`.rodata*` exists only in the
/// `.bpf.o`) and, against the kernel, no clock-dependent maps.
fn comparable(maps: &JsonMap<String, Json>, skip: &[&str]) -> JsonMap<String, Json> {
    maps.iter()
        .filter(|(n, _)| !n.starts_with('.') && !skip.contains(&n.as_str()))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect()
}

/// Runs one example everywhere it can run.
fn run_everywhere(
    example: &Example,
    dir: &Path,
    budget: Duration,
    quiet: bool,
) -> Result<(Vec<Row>, Option<String>, usize)> {
    let (bpf, wasm) = build_example(&dir.join(&example.name), quiet)?;
    let frames = capture();
    let (rows, kernel_note) = run_rows(example, &bpf, Some(&wasm), &frames, budget)?;
    Ok((rows, kernel_note, frames.len()))
}

/// The kernel row (when it can run), the interpreter, the JIT and Wasm (when given).
fn run_rows(
    example: &Example,
    bpf: &Path,
    wasm: Option<&Path>,
    frames: &[Vec<u8>],
    budget: Duration,
) -> Result<(Vec<Row>, Option<String>)> {
    let mut rows = Vec::new();
    let kernel_note = match duet_kernel::check_access() {
        Ok(()) => {
            rows.push(run_kernel(bpf, example, frames)?);
            None
        }
        Err(e) => Some(format!("no kernel row: {e}")),
    };
    rows.push(run_vm(bpf, example, frames, budget, VmEngine::Interpreter)?);
    rows.push(run_vm(bpf, example, frames, budget, VmEngine::Jit)?);
    if let Some(wasm) = wasm {
        rows.push(run_wasm(wasm, example, frames, budget)?);
    }
    Ok((rows, kernel_note))
}

/// Whether `row` agrees with the reference (the interpreter): same verdicts and same maps.
fn agrees(row: &Row, reference: &Row, example: &Example) -> bool {
    let skip: &[&str] = if row.executor == "Linux kernel" { example.time_dependent } else { &[] };
    row.results == reference.results && comparable(&row.maps, skip) == comparable(&reference.maps, skip)
}

/// `duet demo`.
pub fn demo() -> Result<bool> {
    let color = std::io::stdout().is_terminal();
    let bold = |s: &str| if color { format!("\x1b[1m{s}\x1b[0m") } else { s.to_owned() };
    let dir = examples_dir()?;
    let examples = examples();
    let example = &examples[0];
    println!("{}", bold("duet demo — one Rust firewall, three sandboxes"));
    println!();
    println!(
        "1. `duet build {}`: one source (examples/firewall/src/lib.rs) becomes a .bpf.o and a .wasm",
        dir.join(&example.name).display()
    );
    let (rows, kernel_note, n_packets) = run_everywhere(example, &dir, Duration::from_millis(400), false)?;
    println!();
    println!(
        "2. {n_packets} generated frames (TCP/UDP/ICMP over IPv4/IPv6, VLAN, fragments, malformed headers); blocklist 10.0.0.0/24 and TCP port 23"
    );
    println!();
    println!(
        "{}",
        bold(&format!(
            "  {:<26} {:>8} {:>6} {:>6} {:>11} {:>12}",
            "executor", "packets", "pass", "drop", "ns/packet", "maps agree"
        ))
    );
    let reference = rows.iter().find(|r| r.executor.starts_with("userspace")).context("no interpreter row")?;
    let mut all_agree = true;
    for row in &rows {
        let count = |v: u64| row.results.iter().filter(|r| **r == Some(v)).count();
        let agree = agrees(row, reference, example);
        all_agree &= agree;
        println!(
            "  {:<26} {:>8} {:>6} {:>6} {:>11.0} {:>12}",
            row.executor,
            row.results.len(),
            count(2),
            count(1),
            row.ns_per_packet,
            if std::ptr::eq(row, reference) {
                "reference"
            } else if agree {
                "yes"
            } else {
                "NO"
            }
        );
    }
    if let Some(note) = kernel_note {
        println!("  ({note}; run as root for the kernel row)");
    }
    println!();
    println!(
        "3. Same verdicts for every packet and the same final maps in every executor: {}",
        if all_agree { "yes" } else { "NO" }
    );
    println!(
        "   Try it yourself: duet run {}/firewall/target/duet/firewall.wasm --pcap <capture> --json",
        dir.display()
    );
    Ok(all_agree)
}

/// `duet bench <object.bpf.o> --pcap <file>`: one XDP program of the user's, over the user's
/// capture, in every executor that can run it, ns/packet and the ratio to the kernel; results
/// and maps are compared with the interpreter's (a disagreement fails the command).
pub fn bench_object(bpf: &Path, pcap: &Path, program: Option<&str>, wasm: Option<&Path>, json: bool) -> Result<bool> {
    let object = objects::load_object(bpf)?;
    let xdp: Vec<&str> =
        object.programs.iter().filter(|p| p.kind == duet_object::ProgramKind::Xdp).map(|p| p.name.as_str()).collect();
    let program = match (program, xdp.as_slice()) {
        (Some(p), _) => {
            let found = object.programs.iter().find(|x| x.name == p).with_context(|| {
                format!("{} has no program `{p}` (XDP programs: {})", bpf.display(), xdp.join(", "))
            })?;
            if found.kind != duet_object::ProgramKind::Xdp {
                bail!("`{p}` is a {:?} program; duet bench times XDP programs over a capture", found.kind);
            }
            p.to_owned()
        }
        (None, [one]) => (*one).to_owned(),
        (None, []) => bail!("{} has no XDP program; duet bench times XDP programs over a capture", bpf.display()),
        (None, many) => {
            bail!("{} has {} XDP programs; choose one with --program ({})", bpf.display(), many.len(), many.join(", "))
        }
    };
    let all = objects::read_capture(pcap)?;
    // The kernel refuses frames shorter than an Ethernet header; every executor gets the same set.
    let frames: Vec<Vec<u8>> = all.iter().filter(|f| f.len() >= 14).cloned().collect();
    if frames.is_empty() {
        bail!("{} has no frame of 14 bytes or more", pcap.display());
    }
    let skipped = all.len() - frames.len();
    let name = bpf.file_name().map_or_else(|| "object".into(), |n| n.to_string_lossy().into_owned());
    let example = Example { name, program, seed: Vec::new(), time_dependent: &[] };
    let (rows, kernel_note) = run_rows(&example, bpf, wasm, &frames, Duration::from_secs(2))?;
    let kernel_ns = rows.iter().find(|r| r.executor == "Linux kernel").map(|r| r.ns_per_packet);
    let reference = rows.iter().find(|r| r.executor.starts_with("userspace")).context("no interpreter row")?;
    let mut ok = true;
    let mut entries = JsonMap::new();
    if !json {
        println!("{} `{}` over {} frames of {}", example.name, example.program, frames.len(), pcap.display());
        if skipped > 0 {
            println!("({skipped} frames shorter than 14 bytes skipped: the kernel refuses them)");
        }
        println!("{:<26} {:>11} {:>11} {:>8}", "executor", "ns/packet", "vs kernel", "agrees");
    }
    for row in &rows {
        // Against the kernel, maps may differ only by the clock; there is no way to know which
        // maps those are, so maps are compared between userspace executors only.
        let agree = row.results == reference.results
            && (row.executor == "Linux kernel" || comparable(&row.maps, &[]) == comparable(&reference.maps, &[]));
        ok &= agree;
        let ratio = kernel_ns.map(|k| row.ns_per_packet / k);
        entries.insert(
            row.executor.to_owned(),
            serde_json::json!({ "ns_per_packet": row.ns_per_packet, "vs_kernel": ratio, "agrees": agree }),
        );
        if !json {
            let ratio = ratio.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x"));
            println!(
                "{:<26} {:>11.1} {:>11} {:>8}",
                row.executor,
                row.ns_per_packet,
                ratio,
                if agree { "yes" } else { "NO" }
            );
        }
    }
    if json {
        let doc = serde_json::json!({
            "object": bpf.display().to_string(), "program": example.program, "frames": frames.len(),
            "skipped_short_frames": skipped, "executors": entries, "kernel": kernel_note.is_none(),
        });
        println!("{doc}");
    } else if let Some(note) = kernel_note {
        println!("({note})");
    }
    Ok(ok)
}

/// `duet bench`: ns/packet of every example in every executor, with the kernel as the anchor.
pub fn bench(json: bool) -> Result<bool> {
    let dir = examples_dir()?;
    let mut report = BTreeMap::new();
    let mut ok = true;
    if !json {
        println!("{:<10} {:<26} {:>11} {:>14}", "example", "executor", "ns/packet", "vs kernel");
    }
    for example in examples() {
        let (rows, kernel_note, _) = run_everywhere(&example, &dir, Duration::from_secs(2), true)?;
        let kernel_ns = rows.iter().find(|r| r.executor == "Linux kernel").map(|r| r.ns_per_packet);
        let reference = rows.iter().find(|r| r.executor.starts_with("userspace")).context("no interpreter row")?;
        let mut entries = JsonMap::new();
        for row in &rows {
            ok &= agrees(row, reference, &example);
            let ratio = kernel_ns.map(|k| row.ns_per_packet / k);
            entries.insert(
                row.executor.to_owned(),
                serde_json::json!({ "ns_per_packet": row.ns_per_packet, "vs_kernel": ratio }),
            );
            if !json {
                let ratio = ratio.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x"));
                println!("{:<10} {:<26} {:>11.1} {:>14}", example.name, row.executor, row.ns_per_packet, ratio);
            }
        }
        if let Some(note) = kernel_note
            && !json
        {
            println!("{:<10} ({note})", example.name);
        }
        report.insert(example.name.clone(), Json::Object(entries));
    }
    if json {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(ok)
}
