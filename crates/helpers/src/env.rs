//! The injectable parts of the world a program sees, the same for every engine.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The injectable parts of the world a program sees: time, randomness and the CPU it runs on.
#[derive(Clone)]
pub struct Env {
    /// `bpf_ktime_get_ns` / `bpf_ktime_get_boot_ns`.
    pub clock: Arc<dyn Fn() -> u64 + Send + Sync>,
    /// `bpf_get_prandom_u32`.
    pub random: Arc<dyn Fn() -> u32 + Send + Sync>,
    /// `bpf_get_smp_processor_id`, and the slot of per-CPU maps the program uses.
    pub cpu: u32,
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env").field("cpu", &self.cpu).finish_non_exhaustive()
    }
}

impl Env {
    /// Real time (monotonic nanoseconds) and non-repeating randomness, on CPU 0.
    pub fn system() -> Self {
        let start = std::time::Instant::now();
        let seed =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
        let state = Arc::new(AtomicU64::new(seed | 1));
        Env {
            clock: Arc::new(move || start.elapsed().as_nanos() as u64 + 1_000_000_000),
            random: Arc::new(move || xorshift(&state)),
            cpu: 0,
        }
    }

    /// Deterministic time and randomness for tests: the clock starts at 1 s and advances 1 µs per
    /// read; the generator is a fixed-seed xorshift.
    pub fn deterministic() -> Self {
        let now = Arc::new(AtomicU64::new(1_000_000_000));
        let state = Arc::new(AtomicU64::new(0x2545_f491_4f6c_dd1d));
        Env {
            clock: Arc::new(move || now.fetch_add(1_000, Ordering::Relaxed)),
            random: Arc::new(move || xorshift(&state)),
            cpu: 0,
        }
    }
}

fn xorshift(state: &AtomicU64) -> u32 {
    let mut x = state.load(Ordering::Relaxed);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    state.store(x, Ordering::Relaxed);
    (x >> 32) as u32
}

/// The default limit on the bytes all of a module's maps may preallocate together (keys and
/// values, every CPU's copy), in the VM and the Wasm host alike: 1 GiB. duet preallocates map
/// storage as the kernel does for most map types; the limit keeps a corrupt or hostile object
/// from asking for gigabytes.
pub const DEFAULT_MAX_MAP_MEMORY: u64 = 1 << 30;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deterministic_env_repeats() {
        let (a, b) = (Env::deterministic(), Env::deterministic());
        assert_eq!((a.clock)(), 1_000_000_000);
        assert_eq!((a.clock)(), 1_000_001_000);
        let xs: Vec<u32> = (0..4).map(|_| (a.random)()).collect();
        let ys: Vec<u32> = (0..4).map(|_| (b.random)()).collect();
        assert_eq!(xs, ys);
    }
}
