//! The engine of one app: pooling allocator sized for `max_concurrency` instances of at most
//! `max_memory_mb`, epoch interruption, and the thread that ticks the epoch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::{AppConfig, AppError};

/// How often the epoch advances: the granularity of deadlines, and how often a running guest
/// yields to the async executor so one busy app cannot hold a worker thread.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Core instances one component instance may hold. A Rust `wasm32-wasip2` app has one main
/// module and a few adapter shims; this leaves room for composed components.
const CORE_INSTANCES_PER_COMPONENT: u32 = 32;
/// Linear memories one component instance may hold.
const MEMORIES_PER_COMPONENT: u32 = 4;
/// Tables one component instance may hold.
const TABLES_PER_COMPONENT: u32 = 16;

pub(crate) fn new_engine(config: &AppConfig) -> Result<Engine, AppError> {
    let slots = config.max_concurrency;
    let max_memory = config.max_memory_mb as usize * 1024 * 1024;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(slots)
        .total_core_instances(slots * CORE_INSTANCES_PER_COMPONENT)
        .total_memories(slots * MEMORIES_PER_COMPONENT)
        .total_tables(slots * TABLES_PER_COMPONENT)
        .total_stacks(slots)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .max_memory_size(max_memory)
        // Keep up to this much of a reused slot mapped instead of returning it to the kernel
        // each time, so the next instance does not fault its pages in again.
        .linear_memory_keep_resident(1 << 20)
        .table_keep_resident(64 << 10)
        // Reset only the pages the instance wrote, found with Linux's PAGEMAP_SCAN ioctl (6.7+),
        // instead of `memset`ting all of the resident part: a request dirties a few pages of
        // its stack and heap, and zeroing 1 MiB was the largest single cost of a request
        // (`benches/serve.rs`: 65 µs per GET / before, 22 µs after). Without the ioctl (older
        // kernels, other systems) wasmtime falls back to `memset` and `madvise`.
        .pagemap_scan(Enabled::Auto);
    let mut cfg = Config::new();
    cfg.wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&cfg).map_err(|e| AppError::Engine(format!("{e:#}")))
}

/// Advances an engine's epoch every [`EPOCH_TICK`] until dropped.
#[derive(Debug)]
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub(crate) fn start(engine: &Engine) -> EpochTicker {
        let stop = Arc::new(AtomicBool::new(false));
        let engine = engine.clone();
        let flag = Arc::clone(&stop);
        // A plain thread, not a tokio task: it must tick even when every runtime worker is
        // running guest code.
        let spawned = std::thread::Builder::new().name("duet-app-epoch".into()).spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        });
        if let Err(e) = spawned {
            tracing::error!(
                "cannot start the epoch thread, app deadlines only hold while the guest waits on the host: {e}"
            );
        }
        EpochTicker { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
