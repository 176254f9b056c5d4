//! The process-wide wasmtime engine and the thread that advances its epoch.
//!
//! One engine serves every plugin: modules compiled by it can be instantiated anywhere, and one
//! ticker thread makes every store's deadline fire. Deadlines are counted in ticks of [`TICK`],
//! so a callback is stopped at most one tick after its deadline.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use wasmtime::{Config, Engine, Module, OptLevel};

/// How often the epoch advances.
pub(crate) const TICK: Duration = Duration::from_millis(5);

static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();

/// The engine, created (with its ticker thread) on first use.
pub(crate) fn engine() -> Result<&'static Engine, String> {
    ENGINE.get_or_init(create).as_ref().map_err(Clone::clone)
}

fn create() -> Result<Engine, String> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.cranelift_opt_level(OptLevel::Speed);
    let engine = Engine::new(&config).map_err(|e| format!("{e:#}"))?;
    let ticker = engine.clone();
    // The thread lives as long as the process: the engine is process-wide.
    std::thread::Builder::new()
        .name("duet-proxywasm-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(TICK);
                ticker.increment_epoch();
            }
        })
        .map_err(|e| format!("cannot start the epoch thread: {e}"))?;
    Ok(engine)
}

/// The epoch deadline, in ticks beyond the current epoch, for a callback deadline. One tick is
/// added because the current tick may be nearly over.
pub(crate) fn deadline_ticks(deadline: Duration) -> u64 {
    let ticks = deadline.as_nanos().div_ceil(TICK.as_nanos());
    u64::try_from(ticks).unwrap_or(u64::MAX / 2).saturating_add(1)
}

/// Most compiled modules kept in memory.
const MODULE_CACHE_SIZE: usize = 32;

/// Compiled modules by their exact bytes, most recent last, so loading the same filter again (a
/// hot reload, the same filter in two chains, or a test) does not compile it again.
static MODULES: Mutex<Vec<(Arc<[u8]>, Module)>> = Mutex::new(Vec::new());

/// Compiles `wasm`, or returns the module compiled from the same bytes earlier in this process
/// or, with a cache directory, by an earlier process.
pub(crate) fn compile(engine: &Engine, wasm: &[u8], cache_dir: Option<&Path>) -> wasmtime::Result<Module> {
    {
        let mut modules = MODULES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = modules.iter().position(|(bytes, _)| **bytes == *wasm) {
            let entry = modules.remove(i);
            let module = entry.1.clone();
            modules.push(entry);
            return Ok(module);
        }
    }
    // Compile without holding the lock: other plugins may load meanwhile.
    let module = match cache_dir {
        Some(dir) => crate::cache::load_or_compile(engine, wasm, dir, || Module::from_binary(engine, wasm))?,
        None => Module::from_binary(engine, wasm)?,
    };
    let mut modules = MODULES.lock().unwrap_or_else(|e| e.into_inner());
    if modules.len() >= MODULE_CACHE_SIZE {
        modules.remove(0);
    }
    modules.push((Arc::from(wasm), module.clone()));
    Ok(module)
}
