//! `duet inspect` and `duet run`: object files in the userspace VM.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use duet_maps::{Map, MapType, MapValue};
use duet_object::{Object, Parsed, ProgramKind, RefusedProgram, TypeLayout};
use duet_vm::{Env, LoadOptions, Module, ModuleError, SkbHook, XdpPacket};
use serde_json::{Map as JsonMap, Value as Json, json};

use crate::replay::StepError;

/// Reads and parses an object file.
pub fn load_object(path: &Path) -> Result<Object> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Object::parse(&bytes).with_context(|| format!("cannot load {}", path.display()))
}

/// Reads an object file and prepares its programs one by one: a program that cannot be prepared
/// (unknown section name, bad code, failed relocation) is listed in [`Parsed::refused`] and the
/// others stay usable.
pub fn load_parsed(path: &Path) -> Result<Parsed> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Object::parse_each(&bytes).with_context(|| format!("cannot load {}", path.display()))
}

/// A refused program as JSON (`duet inspect --json` and `duet verify --json`).
pub(crate) fn refused_json(r: &RefusedProgram) -> Json {
    json!({
        "name": r.name, "section": r.section, "kind": r.kind.as_ref().map(kind_name), "status": "refused",
        "reason": r.reason,
    })
}

/// Refuses ring buffers whose size the kernel would refuse (a power of two multiple of the page
/// size), with duet-maps' words, so `duet build`, `verify`, `load`, `test-run` and `run` refuse
/// the same object the same way (loaders such as aya round the size up instead, and the program
/// would then behave differently in the kernel and in userspace).
pub fn check_ring_buffers(object: &Object) -> Result<()> {
    for m in object.maps.iter().filter(|m| m.map_type == MapType::RingBuf.raw()) {
        let spec = duet_maps::MapSpec {
            name: m.name.clone(),
            map_type: MapType::RingBuf,
            key_size: m.key_size,
            value_size: m.value_size,
            max_entries: m.max_entries,
            flags: m.flags,
        };
        spec.validate().with_context(|| format!("map `{}`", m.name))?;
    }
    Ok(())
}

/// `duet inspect`.
/// `duet inspect --json`: the object as one JSON document (programs with their section, kind,
/// size, map references and, with `disassemble`, instructions with source lines; maps).
pub fn inspect_json(path: &Path, program: Option<&str>, disassemble: bool) -> Result<()> {
    let parsed = load_parsed(path)?;
    let object = &parsed.object;
    let programs: Vec<Json> = object
        .programs
        .iter()
        .map(|p| {
            let refs: Vec<Json> = p
                .map_refs
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "insn": r.insn,
                        "map": object.maps.get(r.map).map(|m| m.name.as_str()),
                        "offset": r.offset,
                        "unbound_fd": r.unbound_fd,
                    })
                })
                .collect();
            let mut v = serde_json::json!({
                "name": p.name, "section": p.section, "kind": kind_name(&p.kind),
                "instructions": p.program.insns().len(), "map_refs": refs,
            });
            if disassemble && program.is_none_or(|n| n == p.name) {
                let insns: Vec<Json> = p
                    .program
                    .insns()
                    .iter()
                    .map(|(pc, insn)| {
                        let line = p.line_for(*pc).filter(|l| l.line != 0);
                        serde_json::json!({
                            "pc": pc,
                            "text": duet_isa::disassemble_insn(insn),
                            "source": line.map(|l| serde_json::json!({ "file": l.file, "line": l.line, "text": l.source.trim() })),
                        })
                    })
                    .collect();
                v["disassembly"] = Json::from(insns);
            }
            v
        })
        .collect();
    let maps: Vec<Json> = object
        .maps
        .iter()
        .map(|m| {
            let mut v = serde_json::json!({
                "name": m.name, "type": duet_object::map_type_name(m.map_type), "key_size": m.key_size,
                "value_size": m.value_size, "max_entries": m.max_entries, "flags": m.flags,
            });
            for (what, layout) in [("key", &m.key_type), ("value", &m.value_type)] {
                if let Some(layout) = layout {
                    v[format!("{what}_type")] = Json::from(layout.type_name());
                    v[format!("{what}_layout")] = serde_json::to_value(&**layout).unwrap_or(Json::Null);
                }
            }
            v
        })
        .collect();
    let doc = serde_json::json!({
        "object": path.display().to_string(), "license": object.license, "programs": programs, "maps": maps,
        "refused": parsed.refused.iter().map(refused_json).collect::<Vec<_>>(),
    });
    println!("{doc}");
    Ok(())
}

pub fn inspect(path: &Path, program: Option<&str>, disassemble: bool) -> Result<()> {
    let parsed = load_parsed(path)?;
    let object = &parsed.object;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}: license {:?}", path.display(), object.license)?;
    writeln!(out, "\nprograms:")?;
    writeln!(out, "  {:<24} {:<24} {:<16} {:>6}", "name", "section", "kind", "insns")?;
    for p in &object.programs {
        writeln!(out, "  {:<24} {:<24} {:<16} {:>6}", p.name, p.section, kind_name(&p.kind), p.program.insns().len())?;
    }
    if !parsed.refused.is_empty() {
        writeln!(out, "\nrefused programs (the others are unaffected):")?;
        for r in &parsed.refused {
            writeln!(out, "  {} ({}): {}", r.name, r.section, r.reason)?;
        }
    }
    writeln!(out, "\nmaps:")?;
    writeln!(out, "  {:<24} {:<16} {:>5} {:>7} {:>11} {:>7}", "name", "type", "key", "value", "max_entries", "flags")?;
    for m in &object.maps {
        writeln!(
            out,
            "  {:<24} {:<16} {:>5} {:>7} {:>11} {:>#7x}",
            m.name,
            duet_object::map_type_name(m.map_type),
            m.key_size,
            m.value_size,
            m.max_entries,
            m.flags
        )?;
    }
    writeln!(out, "\nrelocations:")?;
    for p in &object.programs {
        for r in &p.map_refs {
            let map = object.maps.get(r.map).map_or("?", |m| m.name.as_str());
            match r.offset {
                Some(off) => writeln!(out, "  {} insn {:>5}: address of `{map}` + {off}", p.name, r.insn)?,
                None => writeln!(out, "  {} insn {:>5}: map `{map}`", p.name, r.insn)?,
            }
        }
    }
    if disassemble {
        for p in object.programs.iter().filter(|p| program.is_none_or(|n| n == p.name)) {
            writeln!(out, "\ndisassembly of {} ({}):", p.name, p.section)?;
            let mut last_line = None;
            for (pc, insn) in p.program.insns() {
                if let Some(l) = p.line_for(*pc).filter(|l| l.line != 0)
                    && last_line != Some((l.file.as_str(), l.line))
                {
                    let file = Path::new(&l.file).file_name().map_or(l.file.as_str(), |f| f.to_str().unwrap_or(""));
                    writeln!(out, "  ; {}:{}: {}", file, l.line, l.source.trim())?;
                    last_line = Some((l.file.as_str(), l.line));
                }
                writeln!(out, "  {pc:>5}: {}", duet_isa::disassemble_insn(insn))?;
            }
        }
    }
    Ok(())
}

pub(crate) fn kind_name(kind: &ProgramKind) -> String {
    match kind {
        ProgramKind::Xdp => "xdp".into(),
        ProgramKind::SocketFilter => "socket_filter".into(),
        ProgramKind::CgroupSkb => "cgroup_skb".into(),
        ProgramKind::SchedClassifier => "tc".into(),
        ProgramKind::KProbe => "kprobe".into(),
        ProgramKind::KRetProbe => "kretprobe".into(),
        ProgramKind::TracePoint => "tracepoint".into(),
        ProgramKind::SockOps => "sock_ops".into(),
        ProgramKind::SkMsg => "sk_msg".into(),
        ProgramKind::SkLookup => "sk_lookup".into(),
        ProgramKind::CgroupSockAddr => "cgroup_sock_addr".into(),
        ProgramKind::HttpRequest => "http_request".into(),
        ProgramKind::HttpResponse => "http_response".into(),
        ProgramKind::Route => "route".into(),
        ProgramKind::Other(s) => s.to_lowercase(),
    }
}

/// Options of `duet run`.
#[derive(Debug)]
pub struct RunArgs {
    pub object: PathBuf,
    pub pcap: PathBuf,
    pub program: Option<String>,
    /// `interp`, `jit` or `wasm`; `None`: `wasm` for a `.wasm` module, else `interp`.
    pub engine: Option<String>,
    pub json: bool,
    pub pcap_out: Option<PathBuf>,
    pub maps_in: Option<PathBuf>,
    pub cpus: Option<usize>,
    pub deterministic: bool,
    pub no_verify: bool,
    /// With `json`: add `maps_typed`, the maps as typed JSON from the object's BTF.
    pub typed: bool,
    /// Prog array slots to fill before the run (`--tail-call MAP:SLOT=PROGRAM`).
    pub tail_calls: Vec<TailCall>,
}

/// A prog array slot to fill: `MAP:SLOT=PROGRAM`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TailCall {
    /// The prog array map.
    pub map: String,
    /// The slot.
    pub slot: u32,
    /// The program to put there.
    pub program: String,
}

/// Parses `MAP:SLOT=PROGRAM` (`--tail-call`).
pub fn parse_tail_call(s: &str) -> Result<TailCall, String> {
    let usage = || format!("`{s}`: expected MAP:SLOT=PROGRAM, e.g. BY_PROTOCOL:0=count_tcp");
    let (map, rest) = s.split_once(':').ok_or_else(usage)?;
    let (slot, program) = rest.split_once('=').ok_or_else(usage)?;
    let slot = slot.trim().parse::<u32>().map_err(|_| format!("`{s}`: the slot `{slot}` is not a number"))?;
    if map.is_empty() || program.is_empty() {
        return Err(usage());
    }
    Ok(TailCall { map: map.to_owned(), slot, program: program.to_owned() })
}

/// Reads every frame of a pcap or pcapng file with an Ethernet link type.
pub fn read_capture(path: &Path) -> Result<Vec<Vec<u8>>> {
    crate::capture::read_all(path)
}

/// Number of possible CPUs, as the kernel sizes per-CPU maps; the machine's parallelism when
/// sysfs cannot be read.
pub fn possible_cpus() -> usize {
    duet_kernel::possible_cpus().unwrap_or_else(|_| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The skb hook of a program kind `duet run` runs on an skb (socket filter, TC classifier,
/// cgroup skb).
fn skb_hook(kind: &ProgramKind) -> Option<SkbHook> {
    match kind {
        ProgramKind::SocketFilter => Some(SkbHook::SocketFilter),
        ProgramKind::SchedClassifier => Some(SkbHook::Classifier),
        ProgramKind::CgroupSkb => Some(SkbHook::CgroupSkb),
        _ => None,
    }
}

/// Whether `duet run --pcap` runs programs of this kind.
fn runnable(kind: &ProgramKind) -> bool {
    *kind == ProgramKind::Xdp || skb_hook(kind).is_some()
}

/// The name of a packet program's result: an XDP action, a TC action, a socket filter's bytes
/// to keep, a cgroup skb program's pass or drop.
pub(crate) fn verdict_name(skb: Option<SkbHook>, v: u64) -> String {
    match skb {
        None => xdp_action_name(v),
        Some(SkbHook::SocketFilter) => format!("keep {v} bytes"),
        Some(SkbHook::CgroupSkb) => match v {
            0 => "drop".into(),
            1 => "pass".into(),
            other => format!("verdict {other}"),
        },
        Some(SkbHook::Classifier) => match v {
            0 => "TC_ACT_OK".into(),
            1 => "TC_ACT_RECLASSIFY".into(),
            2 => "TC_ACT_SHOT".into(),
            3 => "TC_ACT_PIPE".into(),
            4 => "TC_ACT_STOLEN".into(),
            5 => "TC_ACT_QUEUED".into(),
            6 => "TC_ACT_REPEAT".into(),
            7 => "TC_ACT_REDIRECT".into(),
            0xffff_ffff => "TC_ACT_UNSPEC".into(),
            other => format!("verdict {other}"),
        },
    }
}

/// The program `duet run` runs: the one named, else the object's only program `duet run` can
/// run (xdp, TC classifier, socket filter or cgroup skb).
fn pick_program<'a>(parsed: &'a Parsed, path: &Path, name: Option<&str>) -> Result<&'a duet_object::ObjectProgram> {
    if let Some(name) = name {
        return Ok(parsed.program(Some(name))?);
    }
    let object = &parsed.object;
    let runnable: Vec<_> = object.programs.iter().filter(|p| runnable(&p.kind)).collect();
    match runnable.as_slice() {
        [only] => Ok(only),
        [] => {
            let all: Vec<String> =
                object.programs.iter().map(|p| format!("{} ({})", p.name, kind_name(&p.kind))).collect();
            let kernel_only = if object.programs.iter().any(|p| p.kind.is_kernel_only()) {
                "; socket programs (cgroup_sock_addr, sock_ops, sk_msg) run only in the kernel and are verified by \
                 the kernel only: check them with `duet load`, attach them with `duet attach --cgroup`"
            } else {
                ""
            };
            let refused: String =
                parsed.refused.iter().map(|r| format!("; `{}` was refused: {}", r.name, r.reason)).collect();
            bail!(
                "{} has no program `duet run --pcap` can run (xdp, classifier, socket filter, cgroup_skb); it has: {}{kernel_only}{refused}",
                path.display(),
                if all.is_empty() { "none".to_owned() } else { all.join(", ") }
            )
        }
        many => bail!(
            "{} has several programs `duet run` can run; choose one with --program: {}",
            path.display(),
            many.iter().map(|p| format!("{} ({})", p.name, kind_name(&p.kind))).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// `duet run`.
pub fn run(args: &RunArgs) -> Result<ExitCode> {
    let wasm = crate::replay::is_wasm(&args.object)?;
    match (args.engine.as_deref(), wasm) {
        (None | Some("wasm"), true) => return crate::wasm_run::run(args),
        (Some(engine), true) => bail!(
            "{} is a WebAssembly module, which runs only in `--engine wasm`; `--engine {engine}` runs the `.bpf.o` \
             that `duet build` writes next to it",
            args.object.display()
        ),
        (Some("wasm"), false) => return crate::wasm_run::run(args),
        _ => {}
    }
    // Verified programs run native code by default; `--no-verify` needs the checked interpreter.
    let engine = args.engine.as_deref().unwrap_or(if args.no_verify { "interp" } else { "jit" });
    let parsed = load_parsed(&args.object)?;
    let object = &parsed.object;
    check_ring_buffers(object).with_context(|| format!("cannot load {}", args.object.display()))?;
    let program = pick_program(&parsed, &args.object, args.program.as_deref())?;
    let name = program.name.clone();
    let kind = program.kind.clone();
    if !runnable(&kind) {
        bail!(
            "program `{name}` is a {} program; `duet run --pcap` runs xdp, classifier (tc), socket filter and cgroup_skb programs",
            kind_name(&kind)
        );
    }
    let skb = skb_hook(&kind);
    if engine == "jit" && args.no_verify {
        bail!(
            "the JIT runs only programs duet's verifier proved safe; drop --no-verify, or use `--engine interp` to run `{name}` unverified in the checked interpreter"
        );
    }
    let env = if args.deterministic { Env::deterministic() } else { Env::system() };
    let options = LoadOptions { n_cpus: args.cpus.unwrap_or_else(possible_cpus), env, ..LoadOptions::default() };
    let module =
        Module::load(object, options).with_context(|| format!("cannot load {} into the VM", args.object.display()))?;
    let types = MapTypes::of(object);
    if let Some(path) = &args.maps_in {
        seed_maps(|n| module.map(n).ok().map(|m| &**m), &types, path)?;
    }
    for t in &args.tail_calls {
        module
            .set_prog_array(&t.map, t.slot, &t.program)
            .with_context(|| format!("--tail-call {}:{}={}", t.map, t.slot, t.program))?;
    }
    let mut vm = if engine == "jit" {
        match module.jit(&name) {
            Ok(jit) => Engine::Jit(jit),
            // Not asked for by name: what the JIT does not compile runs in the interpreter,
            // which gives the same results.
            Err(ModuleError::Jit { error: error @ duet_vm::JitError::Unsupported(_), .. }) if args.engine.is_none() => {
                eprintln!("note: `{name}` runs in the interpreter: {error}");
                Engine::Interp(module.interpreter(&name)?)
            }
            Err(e) => return Err(e.into()),
        }
    } else if args.no_verify {
        eprintln!(
            "warning: running `{name}` without duet's verifier (--no-verify); the interpreter still checks every memory access, so an unsafe program traps instead of misbehaving"
        );
        Engine::Interp(module.interpreter_unverified(&name)?)
    } else {
        Engine::Interp(module.interpreter(&name)?)
    };

    let label = |v: u64| verdict_name(skb, v);
    let mut xdp = XdpPacket::new(&[]);
    let replayed = crate::replay::replay(
        args,
        |frame, packet| {
            let outcome = match (&mut vm, skb) {
                (Engine::Interp(vm), None) => {
                    xdp.reset(frame);
                    vm.run_xdp(&mut xdp)
                }
                (Engine::Jit(vm), None) => {
                    xdp.reset(frame);
                    vm.run_xdp(&mut xdp)
                }
                // The frame as the program left it (only a classifier changes it).
                (Engine::Interp(vm), Some(hook)) => {
                    packet.extend_from_slice(frame);
                    vm.run_skb(hook, packet)
                }
                (Engine::Jit(vm), Some(hook)) => {
                    packet.extend_from_slice(frame);
                    vm.run_skb(hook, packet)
                }
            };
            if skb.is_none() {
                packet.extend_from_slice(xdp.data());
            }
            outcome.map_err(StepError::trap)
        },
        || module.take_log(),
        &label,
    )?;
    let maps: Vec<(&str, &Map)> = module.maps().map(|(n, m)| (n, &**m)).collect();
    let title = format!("{name} ({})", kind_name(&kind));
    let engine = if matches!(vm, Engine::Jit(_)) { "the JIT" } else { "the interpreter" };
    crate::replay::report(args, replayed, &title, engine, &maps, &types, &label)
}

/// The userspace VM engine `duet run` uses.
enum Engine {
    Interp(duet_vm::Interpreter),
    Jit(duet_vm::Jit),
}

/// The kernel's name for an XDP verdict.
pub fn xdp_action_name(v: u64) -> String {
    match v {
        0 => "XDP_ABORTED".into(),
        1 => "XDP_DROP".into(),
        2 => "XDP_PASS".into(),
        3 => "XDP_TX".into(),
        4 => "XDP_REDIRECT".into(),
        other => format!("verdict {other}"),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every map's contents in the JSON shape of `duet run --json` (prog_array and ring buffers
/// excluded: they hold no key/value data). Serves the interpreter's and the Wasm host's maps.
pub(crate) fn dump_maps<'a>(maps: impl IntoIterator<Item = (&'a str, &'a Map)>) -> Json {
    let mut out = JsonMap::new();
    for (name, map) in maps {
        if !matches!(map.map_type(), MapType::ProgArray | MapType::RingBuf) {
            out.insert(name.to_owned(), Json::Object(dump_map(map)));
        }
    }
    Json::Object(out)
}

pub(crate) fn dump_map(map: &Map) -> JsonMap<String, Json> {
    let mut entries = map.entries();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
        .into_iter()
        .map(|(k, v)| {
            let value = match v {
                MapValue::Single(v) => json!(hex(&v)),
                MapValue::PerCpu(vs) => json!(vs.iter().map(|v| hex(v)).collect::<Vec<_>>()),
            };
            (hex(&k), value)
        })
        .collect()
}

fn unhex(s: &str) -> Result<Vec<u8>> {
    duet_testdata::parse_hex_bytes(s).map_err(anyhow::Error::msg)
}

/// The key and value types of an object's maps, by name, from its BTF (none for a Wasm module,
/// whose `duet.maps` manifest records sizes only), or as `duet attach` recorded them for pinned
/// maps.
#[derive(Default)]
pub(crate) struct MapTypes(BTreeMap<String, KeyValueTypes>);

/// A map's key type and value type, each when known.
type KeyValueTypes = (Option<Arc<TypeLayout>>, Option<Arc<TypeLayout>>);

impl MapTypes {
    pub(crate) fn of(object: &Object) -> MapTypes {
        MapTypes::from_layouts(object.maps.iter().map(|m| (m.name.clone(), m.key_type.clone(), m.value_type.clone())))
    }

    /// From `(map, key type, value type)`; maps with neither type are left out.
    pub(crate) fn from_layouts(
        layouts: impl IntoIterator<Item = (String, Option<Arc<TypeLayout>>, Option<Arc<TypeLayout>>)>,
    ) -> MapTypes {
        MapTypes(
            layouts
                .into_iter()
                .filter(|(_, k, v)| k.is_some() || v.is_some())
                .map(|(name, k, v)| (name, (k, v)))
                .collect(),
        )
    }

    fn has(&self, map: &str) -> bool {
        self.0.contains_key(map)
    }

    pub(crate) fn key(&self, map: &str) -> Option<&TypeLayout> {
        self.0.get(map).and_then(|(k, _)| k.as_deref())
    }

    pub(crate) fn value(&self, map: &str) -> Option<&TypeLayout> {
        self.0.get(map).and_then(|(_, v)| v.as_deref())
    }
}

/// `duet run --json`'s `maps_typed`: for every map with BTF types, its entries as
/// `{"key": K, "value": V}` (per-CPU maps: `"values": [V, ...]`) in typed JSON, sorted by key
/// bytes; a side without a type is hex. Maps without types (and every map of a Wasm module) are
/// absent; `maps` keeps the hex of every map.
pub(crate) fn dump_maps_typed<'a>(maps: impl IntoIterator<Item = (&'a str, &'a Map)>, types: &MapTypes) -> Json {
    let maps = maps
        .into_iter()
        .filter(|(_, map)| !matches!(map.map_type(), MapType::ProgArray | MapType::RingBuf))
        .map(|(name, map)| (name, map.entries()));
    typed_view(maps, types)
}

/// The typed view of maps given by their entries (`maps_typed` of `duet run`, `test-run` and
/// `duet maps`): see [`dump_maps_typed`].
pub(crate) fn typed_view<'a>(
    maps: impl IntoIterator<Item = (&'a str, Vec<(Vec<u8>, MapValue)>)>,
    types: &MapTypes,
) -> Json {
    let mut out = JsonMap::new();
    for (name, mut entries) in maps {
        if !types.has(name) {
            continue;
        }
        let show =
            |layout: Option<&TypeLayout>, bytes: &[u8]| layout.map_or_else(|| json!(hex(bytes)), |l| l.to_json(bytes));
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let entries: Vec<Json> = entries
            .into_iter()
            .map(|(k, v)| {
                let key = show(types.key(name), &k);
                match v {
                    MapValue::Single(v) => json!({ "key": key, "value": show(types.value(name), &v) }),
                    MapValue::PerCpu(vs) => {
                        let values: Vec<Json> = vs.iter().map(|v| show(types.value(name), v)).collect();
                        json!({ "key": key, "values": values })
                    }
                }
            })
            .collect();
        out.insert(name.to_owned(), Json::Array(entries));
    }
    Json::Object(out)
}

/// A key or value from a `--maps-in` file (or `duet maps set --typed`): typed JSON when the
/// map's BTF declares the type and the JSON reads as typed (the sidecar's rule,
/// [`TypeLayout::reads_as_typed`]), else hex, or for a typed map also a byte array.
pub(crate) fn seed_bytes(v: &Json, layout: Option<&TypeLayout>, what: &str) -> Result<Vec<u8>> {
    match (v, layout) {
        (v, Some(layout)) if layout.reads_as_typed(v) => layout.from_json(v, what).map_err(anyhow::Error::msg),
        (Json::String(s), _) => unhex(s),
        // A byte array, as `maps_typed` shows a byte array that is not text (`[10, 0, 0, 1]`).
        (Json::Array(items), Some(_)) if items.iter().all(|b| b.as_u64().is_some_and(|b| b <= 0xff)) => {
            Ok(items.iter().filter_map(Json::as_u64).map(|b| b as u8).collect())
        }
        (_, None) => bail!(
            "{what} must be a hex string; typed JSON needs the map's types, which only an eBPF object's BTF \
             declares (a Wasm module has none)"
        ),
        (_, Some(layout)) => bail!("{what} must be a hex string or typed JSON of {}", layout.type_name()),
    }
}

/// What seeding needs to know of a map: whether it is per-CPU (and its type, to say so), and
/// how many CPUs it holds.
pub(crate) struct SeedShape {
    /// The map type's name, for messages.
    pub map_type: String,
    pub per_cpu: bool,
    pub n_cpus: usize,
}

/// One entry of a `--maps-in` file, as bytes.
pub(crate) struct Seed {
    pub map: String,
    pub key: Vec<u8>,
    /// One value (every CPU's, for a per-CPU map), or one per CPU.
    pub values: Vec<Vec<u8>>,
    /// How errors name the entry: "`<key>`" or "of entry <i>".
    pub at: String,
}

/// Reads a `--maps-in` file in the `duet run --json` shape (the `maps` object, or a document
/// containing one): `{"<map>": {"<key hex>": "<value hex>"}}`, per-CPU values a list of one hex
/// value per CPU, or one value for all. For a map whose types the object's BTF declares, keys
/// and values may be typed JSON as in `maps_typed` (a key string that is not hex is typed, e.g.
/// text for a byte array), and a map may also be a list `[{"key": K, "value": V}, ...]`, which
/// is how a struct key is given. `shape` describes a map by name (`None`: no such map). Used by
/// `duet run` (every engine) and `duet test-run`.
pub(crate) fn read_seeds(
    path: &Path,
    types: &MapTypes,
    shape: impl Fn(&str) -> Option<SeedShape>,
) -> Result<Vec<Seed>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let doc: Json = serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))?;
    let maps = doc.get("maps").unwrap_or(&doc).as_object().with_context(|| {
        format!("{}: expected {{\"maps\": {{\"<map>\": {{\"<key hex>\": \"<value hex>\"}}}}}}", path.display())
    })?;
    let mut seeds = Vec::new();
    for (name, entries) in maps {
        let map = shape(name).with_context(|| format!("{}: no map `{name}` in the object", path.display()))?;
        // (key as JSON, value as JSON, how to name the key in errors)
        let items: Vec<(Json, &Json, String)> = match entries {
            Json::Object(entries) => {
                entries.iter().map(|(k, v)| (Json::String(k.clone()), v, format!("`{k}`"))).collect()
            }
            Json::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let key = item.get("key").with_context(|| format!("map `{name}`: entry {i} has no \"key\""))?;
                    let value = item
                        .get("value")
                        .or_else(|| item.get("values"))
                        .with_context(|| format!("map `{name}`: entry {i} has no \"value\""))?;
                    Ok((key.clone(), value, format!("of entry {i}")))
                })
                .collect::<Result<_>>()?,
            _ => bail!(
                "{}: map `{name}` must be an object of hex keys to hex values (or a list of {{\"key\", \"value\"}})",
                path.display()
            ),
        };
        let (key_type, value_type) = (types.key(name), types.value(name));
        for (key, value, at) in items {
            let key_bytes = seed_bytes(&key, key_type, "key").with_context(|| format!("map `{name}`: key {at}"))?;
            let per_cpu_list = matches!(value, Json::Array(_)) && !value_type.is_some_and(|t| t.reads_as_typed(value));
            let values: Vec<Vec<u8>> = match value {
                Json::Array(_) if per_cpu_list && !map.per_cpu => bail!(
                    "map `{name}`: value of {at} is a list, but `{name}` is not a per-CPU map ({}): give one value",
                    map.map_type
                ),
                Json::Array(items) if per_cpu_list && items.len() > map.n_cpus => bail!(
                    "map `{name}`: value of {at} lists {} per-CPU values, but the map holds {} CPUs (--cpus)",
                    items.len(),
                    map.n_cpus
                ),
                Json::Array(items) if per_cpu_list => items
                    .iter()
                    .map(|v| seed_bytes(v, value_type, "value"))
                    .collect::<Result<_>>()
                    .with_context(|| format!("map `{name}`: value of {at}"))?,
                v => vec![seed_bytes(v, value_type, "value").with_context(|| format!("map `{name}`: value of {at}"))?],
            };
            seeds.push(Seed { map: name.clone(), key: key_bytes, values, at });
        }
    }
    Ok(seeds)
}

/// Seeds maps of the userspace engines from a `--maps-in` file (see [`read_seeds`]).
pub(crate) fn seed_maps<'a>(find: impl Fn(&str) -> Option<&'a Map>, types: &MapTypes, path: &Path) -> Result<()> {
    let shape = |name: &str| {
        find(name).map(|m| SeedShape {
            map_type: m.map_type().to_string(),
            per_cpu: m.map_type().is_per_cpu(),
            n_cpus: m.n_cpus(),
        })
    };
    for Seed { map: name, key, values, at } in read_seeds(path, types, shape)? {
        let map = find(&name).with_context(|| format!("{}: no map `{name}` in the object", path.display()))?;
        let raw = if map.map_type().is_per_cpu() {
            let n = map.n_cpus();
            let stride = (map.spec().value_size as usize).div_ceil(8) * 8;
            let mut buf = vec![0u8; stride * n];
            for cpu in 0..n {
                let v = values.get(cpu).or(values.first()).map_or(&[][..], Vec::as_slice);
                buf[cpu * stride..cpu * stride + v.len().min(stride)].copy_from_slice(&v[..v.len().min(stride)]);
            }
            buf
        } else {
            values.into_iter().next().unwrap_or_default()
        };
        map.update(&key, &raw, 0, None).with_context(|| format!("map `{name}`: cannot set key {at}"))?;
    }
    Ok(())
}
