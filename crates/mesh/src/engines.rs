//! Loading http programs into duet's engines: eBPF objects into duet-vm (verified; JIT or
//! interpreter), duet-ABI modules into duet-wasm. The rest of the sidecar sees only
//! [`crate::programs::ProgramFile`].

use std::collections::HashMap;
use std::sync::Arc;

use duet_helpers::http::{HttpExchange, HttpMd, HttpOutcome};
use duet_maps::Map;

use crate::config::BpfEngine;
use crate::error_chain;
use crate::maps_api::MapTypes;
use crate::programs::{ProgramKind, Runner, RunnerFactory};

/// What a loaded file offers: its http programs, its maps, how to make runners, and a drain for
/// its `trace` lines.
pub(crate) struct Loaded {
    pub programs: Vec<(String, ProgramKind)>,
    pub maps: Vec<(String, Arc<Map>)>,
    /// Key and value types from the object's BTF; a Wasm module has none.
    pub map_types: HashMap<String, MapTypes>,
    pub factory: RunnerFactory,
    pub take_log: Box<dyn Fn() -> Vec<String> + Send + Sync>,
}

/// Loads an eBPF object and verifies every http program in it now, so an unsafe program is
/// refused when the sidecar loads it (with the verifier's explanation), not on a request.
pub(crate) fn load_bpf(bytes: &[u8], engine: BpfEngine, limits: &crate::programs::Limits) -> Result<Loaded, String> {
    let object = duet_object::Object::parse(bytes).map_err(|e| error_chain(&e))?;
    let map_types = object
        .maps
        .iter()
        .map(|m| (m.name.clone(), MapTypes { key: m.key_type.clone(), value: m.value_type.clone() }))
        .collect();
    let module = duet_vm::Module::load(&object, duet_vm::LoadOptions { env: limits.env.clone(), ..Default::default() })
        .map_err(|e| error_chain(&e))?;
    let module = Arc::new(module);
    let mut programs = Vec::new();
    for p in module.programs() {
        let kind = match p.kind {
            duet_object::ProgramKind::HttpRequest => ProgramKind::Request,
            duet_object::ProgramKind::HttpResponse => ProgramKind::Response,
            duet_object::ProgramKind::Route => ProgramKind::Route,
            _ => continue,
        };
        // Verification (and compilation, for the JIT) happens here, once.
        module.http_runner(&p.name, vm_engine(engine)).map_err(|e| error_chain(&e))?;
        programs.push((p.name.clone(), kind));
    }
    let maps = module.maps().map(|(n, m)| (n.to_owned(), Arc::clone(m))).collect();
    let names: Vec<String> = programs.iter().map(|(n, _)| n.clone()).collect();
    let m = Arc::clone(&module);
    let factory: RunnerFactory = Box::new(move || {
        let mut runners = Vec::with_capacity(names.len());
        for name in &names {
            runners.push((name.clone(), m.http_runner(name, vm_engine(engine)).map_err(|e| error_chain(&e))?));
        }
        Ok(Box::new(BpfRunners(runners)) as Box<dyn Runner>)
    });
    let take_log = Box::new(move || module.take_log());
    Ok(Loaded { programs, maps, map_types, factory, take_log })
}

fn vm_engine(engine: BpfEngine) -> duet_vm::Engine {
    match engine {
        BpfEngine::Jit => duet_vm::Engine::Jit,
        BpfEngine::Interpreter => duet_vm::Engine::Interpreter,
    }
}

/// A file's programs by name: a few at most, so a list (no hashing per call).
struct BpfRunners(Vec<(String, duet_vm::HttpRunner)>);

impl Runner for BpfRunners {
    fn run(&mut self, name: &str, md: &HttpMd, ex: &mut dyn HttpExchange) -> Result<HttpOutcome, String> {
        let Some((_, runner)) = self.0.iter_mut().find(|(n, _)| n == name) else {
            return Err(format!("no program `{name}`"));
        };
        runner.run(md, ex).map_err(|trap| trap.to_string())
    }
}

/// Loads a duet-ABI Wasm module (compiled once; one instance per program per worker) with the
/// filter's memory cap and deadline.
pub(crate) fn load_wasm(bytes: &[u8], limits: &crate::programs::Limits) -> Result<Loaded, String> {
    let options = duet_wasm::WasmOptions {
        cache_dir: limits.cache_dir.clone(),
        memory_limit: limits.memory_limit,
        deadline: limits.deadline,
        env: limits.env.clone(),
        ..Default::default()
    };
    let module = Arc::new(duet_wasm::WasmModule::load(bytes, &options).map_err(|e| error_chain(&e))?);
    let programs: Vec<(String, ProgramKind)> = module
        .programs()
        .iter()
        .filter_map(|p| {
            let kind = match p.kind {
                duet_wasm::ProgramKind::HttpRequest => ProgramKind::Request,
                duet_wasm::ProgramKind::HttpResponse => ProgramKind::Response,
                duet_wasm::ProgramKind::Route => ProgramKind::Route,
                _ => return None,
            };
            Some((p.name.clone(), kind))
        })
        .collect();
    let maps = module.maps().map(|(n, m)| (n.to_owned(), Arc::clone(m))).collect();
    let names: Vec<String> = programs.iter().map(|(n, _)| n.clone()).collect();
    // One executor per program proves that the module instantiates.
    for name in &names {
        module.executor(name).map_err(|e| error_chain(&e))?;
    }
    let m = Arc::clone(&module);
    let factory: RunnerFactory = Box::new(move || {
        let mut runners = Vec::with_capacity(names.len());
        for name in &names {
            runners.push((name.clone(), m.executor(name).map_err(|e| error_chain(&e))?));
        }
        Ok(Box::new(WasmRunners(runners)) as Box<dyn Runner>)
    });
    let take_log = Box::new(move || module.take_log());
    // The duet.maps manifest records sizes only: Wasm maps have no types.
    Ok(Loaded { programs, maps, map_types: HashMap::new(), factory, take_log })
}

/// A file's programs by name, as [`BpfRunners`].
struct WasmRunners(Vec<(String, duet_wasm::Executor)>);

impl Runner for WasmRunners {
    fn run(&mut self, name: &str, md: &HttpMd, ex: &mut dyn HttpExchange) -> Result<HttpOutcome, String> {
        let Some((_, exec)) = self.0.iter_mut().find(|(n, _)| n == name) else {
            return Err(format!("no program `{name}`"));
        };
        exec.run_http(md, ex).map_err(|e| error_chain(&e))
    }
}
