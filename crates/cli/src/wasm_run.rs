//! `duet run` for `.wasm` modules: the same capture replay and the same output as for objects
//! in the eBPF VM (see `objects.rs`), through the wasmtime host of duet-wasm.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use duet_maps::MapType;
use duet_vm::Env;
use duet_wasm::{CacheStatus, ProgramKind, WasmModule, WasmOptions};
use serde_json::{Map as JsonMap, Value as Json, json};

use crate::objects::{RunArgs, dump_map, possible_cpus, read_capture, seed_maps, xdp_action_name};

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

    if args.json {
        let results: Vec<Json> = results.iter().map(|r| r.map_or(Json::Null, |v| json!(v))).collect();
        let doc = json!({ "results": results, "maps": dump_maps(&module) });
        println!("{}", serde_json::to_string(&doc)?);
        return Ok(());
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in &results {
        let label = r.map_or_else(|| "trap".to_owned(), xdp_action_name);
        *counts.entry(label).or_default() += 1;
    }
    println!("{name} ({kind}) over {} packets from {}:", frames.len(), args.pcap.display());
    for (label, n) in &counts {
        println!("  {label:<16} {n:>8}");
    }
    if !frames.is_empty() {
        println!("  {:.0} ns/packet in wasm", elapsed.as_nanos() as f64 / frames.len() as f64);
    }
    for (map_name, map) in module.maps() {
        if map.map_type() == MapType::RingBuf {
            let records = map.ringbuf_drain();
            println!("  ring buffer `{map_name}`: {} records", records.len());
        }
    }
    Ok(())
}

/// Every map's contents in the shape of `duet run --json`, as `objects::dump_maps` does for the
/// eBPF VM (prog_array and ring buffers excluded).
fn dump_maps(module: &WasmModule) -> Json {
    let mut maps = JsonMap::new();
    for (name, map) in module.maps() {
        if matches!(map.map_type(), MapType::ProgArray | MapType::RingBuf) {
            continue;
        }
        maps.insert(name.to_owned(), Json::Object(dump_map(map)));
    }
    Json::Object(maps)
}
