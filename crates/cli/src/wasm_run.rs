//! `duet run` for `.wasm` modules: the same capture replay and the same output as for objects
//! in the eBPF VM (see `objects.rs`), through the wasmtime host of duet-wasm.

use anyhow::{Context, Result, bail};
use duet_vm::Env;
use duet_wasm::{CacheStatus, ProgramKind, WasmModule, WasmOptions};

use crate::objects::{RunArgs, possible_cpus, read_capture, seed_maps, xdp_action_name};

/// `duet run` on a `.wasm` module.
pub fn run(args: &RunArgs) -> Result<()> {
    let path = &args.object;
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
            let names: Vec<&str> = programs.iter().map(|p| p.name.as_str()).collect();
            bail!("{} has several programs ({}); choose one with --program", path.display(), names.join(", "));
        }
    };
    let kind = module.program(&name)?.kind;
    if kind != ProgramKind::Xdp {
        bail!("program `{name}` is a {kind} program; `duet run --pcap` runs xdp programs");
    }
    let frames = read_capture(&args.pcap)?;
    if let Some(maps_in) = &args.maps_in {
        seed_maps(|n| module.map(n).ok().map(|m| &**m), maps_in)?;
    }
    let mut executor = module.executor(&name)?;

    let mut packet = Vec::new();
    let (results, elapsed) = crate::objects::run_frames(&frames, |frame| {
        packet.clear();
        packet.extend_from_slice(frame);
        executor.run_xdp(&mut packet).map(u64::from).map_err(|err| err.to_string())
    });
    for line in module.take_log() {
        eprintln!("trace: {line}");
    }

    let maps: Vec<(&str, &duet_maps::Map)> = module.maps().map(|(n, m)| (n, &**m)).collect();
    crate::objects::report(args, &format!("{name} ({kind})"), "wasm", &results, elapsed, &maps, xdp_action_name)
}
