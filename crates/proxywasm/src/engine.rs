//! The process-wide wasmtime engine and the thread that advances its epoch.
//!
//! One engine serves every plugin: modules compiled by it can be instantiated anywhere, and one
//! ticker thread makes every store's deadline fire. Deadlines are counted in ticks of [`TICK`],
//! so a callback is stopped at most one tick after its deadline.

use std::sync::OnceLock;
use std::time::Duration;

use wasmtime::{Config, Engine, OptLevel};

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
