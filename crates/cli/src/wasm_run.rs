//! `duet run` for `.wasm` modules: the same capture replay and the same output as for objects
//! in the eBPF VM (see `objects.rs` and `replay.rs`), through the wasmtime host of duet-wasm.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use duet_helpers::Env;
use duet_wasm::{
    CacheStatus, MAX_TRACE_LINE_BYTES, MAX_TRACE_LINES_PER_CALL, ProgramKind, WasmError, WasmModule, WasmOptions,
};

use crate::objects::{MapTypes, RunArgs, possible_cpus, seed_maps, verdict_name};
use crate::replay::StepError;

/// `duet run` on a `.wasm` module.
pub fn run(args: &RunArgs) -> Result<ExitCode> {
    let path = &args.object;
    if args.no_verify {
        bail!(
            "--no-verify applies to eBPF in the interpreter; a Wasm module is not verified by duet \
             (wasmtime validates it and the host checks every guest pointer), so drop --no-verify"
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !bytes.starts_with(b"\0asm") {
        bail!(
            "{} is not a WebAssembly module; `--engine wasm` runs the `.wasm` that `duet build` writes \
             (run a `.bpf.o` with `--engine interp`)",
            path.display()
        );
    }
    let env = if args.deterministic { Env::deterministic() } else { Env::system() };
    let options = WasmOptions {
        n_cpus: args.cpus.unwrap_or_else(possible_cpus),
        env,
        cache_dir: duet_wasm::default_cache_dir(),
        ..WasmOptions::default()
    };
    let module = WasmModule::load(&bytes, &options).with_context(|| format!("cannot load {}", path.display()))?;
    if let CacheStatus::Failed(why) = module.cache_status() {
        eprintln!("note: compiled module cache not used: {why}");
    }
    let name = match (&args.program, module.programs()) {
        (Some(name), _) => name.clone(),
        (None, [only]) => only.name.clone(),
        (None, programs) => {
            let names: Vec<String> = programs.iter().map(|p| format!("{} ({})", p.name, p.kind)).collect();
            bail!("{} has several programs; choose one with --program: {}", path.display(), names.join(", "));
        }
    };
    replay_program(&module, &name, args, "wasm")
}

/// Seeds the maps from `--maps-in`, replays the capture through program `name` of `module` and
/// reports as `duet run` does; `engine` names the executor in the report. Shared by `duet run`
/// and packaged executables (duet-runner).
pub(crate) fn replay_program(module: &WasmModule, name: &str, args: &RunArgs, engine: &str) -> Result<ExitCode> {
    let kind = module.program(name)?.kind;
    let skb = kind.skb_hook();
    if kind != ProgramKind::Xdp && skb.is_none() {
        bail!(
            "program `{name}` is a {kind} program; --pcap runs xdp, classifier, socket_filter and cgroup_skb programs"
        );
    }
    if let Some(maps_in) = &args.maps_in {
        // A Wasm module's maps have no types: only the hex encodings.
        seed_maps(|n| module.map(n).ok().map(|m| &**m), &MapTypes::default(), maps_in)?;
    }
    for t in &args.tail_calls {
        module
            .set_prog_array(&t.map, t.slot, &t.program)
            .with_context(|| format!("--tail-call {}:{}={}", t.map, t.slot, t.program))?;
    }
    let mut executor = module.executor(name)?;

    let label = |v: u64| verdict_name(skb, v);
    let replayed = crate::replay::replay(
        args,
        |frame, packet| {
            packet.extend_from_slice(frame);
            let verdict = if skb.is_some() { executor.run_skb(packet) } else { executor.run_xdp(packet) };
            verdict.map(u64::from).map_err(|err| StepError {
                deadline: matches!(err, WasmError::Deadline { .. }),
                message: format!("{:#}", anyhow::Error::from(err)),
            })
        },
        || {
            let mut trace = module.take_trace();
            if trace.dropped > 0 {
                trace.lines.push(format!(
                    "({} lines dropped: a call keeps {MAX_TRACE_LINES_PER_CALL} lines of {MAX_TRACE_LINE_BYTES} bytes at most)",
                    trace.dropped
                ));
            }
            trace.lines
        },
        &label,
    )?;
    let maps: Vec<(&str, &duet_maps::Map)> = module.maps().map(|(n, m)| (n, &**m)).collect();
    crate::replay::report(args, replayed, &format!("{name} ({kind})"), engine, &maps, &MapTypes::default(), &label)
}
