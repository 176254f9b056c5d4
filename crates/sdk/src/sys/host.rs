//! The host backend, for unit tests: programs run in-process, on this thread's own maps (so
//! tests running in parallel do not see each other), created on first use in `duet-maps` — the
//! implementation the userspace VM and the Wasm host use — with one CPU. Time and randomness
//! are deterministic and match the VM's `Env::deterministic()`: the clock starts at 1 s and
//! advances 1 µs per read; randomness is the same xorshift with the same seed.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::string::String;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::vec::Vec;

use duet_maps::{Map, MapSpec, MapType};

/// A map: the address of its static (its identity on this thread) and what to create it as.
#[derive(Clone, Copy)]
pub(crate) struct Handle {
    pub(crate) addr: usize,
    pub(crate) name: &'static str,
    pub(crate) spec: RawSpec,
}

/// The `BPF_MAP_CREATE` attributes of a map, from its type.
#[derive(Clone, Copy)]
pub(crate) struct RawSpec {
    pub(crate) map_type: u32,
    pub(crate) key_size: u32,
    pub(crate) value_size: u32,
    pub(crate) max_entries: u32,
    pub(crate) flags: u32,
}

/// Where the deterministic clock starts, as in the VM's `Env::deterministic()`.
pub(crate) const CLOCK_START_NS: u64 = 1_000_000_000;
/// How far the clock advances per read.
pub(crate) const CLOCK_STEP_NS: u64 = 1_000;
/// The xorshift seed of the VM's `Env::deterministic()`.
pub(crate) const RANDOM_SEED: u64 = 0x2545_f491_4f6c_dd1d;

pub(crate) struct State {
    pub(crate) maps: BTreeMap<usize, Arc<Map>>,
    pub(crate) now_ns: u64,
    pub(crate) step_ns: u64,
    pub(crate) random: u64,
    pub(crate) log: Vec<String>,
}

impl State {
    const fn new() -> Self {
        State {
            maps: BTreeMap::new(),
            now_ns: CLOCK_START_NS,
            step_ns: CLOCK_STEP_NS,
            random: RANDOM_SEED,
            log: Vec::new(),
        }
    }
}

std::thread_local! {
    pub(crate) static STATE: RefCell<State> = const { RefCell::new(State::new()) };
}

/// This thread's instance of the map, created on first use.
pub(crate) fn map(handle: Handle) -> Arc<Map> {
    STATE.with_borrow_mut(|state| Arc::clone(state.maps.entry(handle.addr).or_insert_with(|| Arc::new(create(handle)))))
}

fn create(handle: Handle) -> Map {
    let RawSpec { map_type, key_size, value_size, max_entries, flags } = handle.spec;
    let name = handle.name;
    let Some(map_type) = MapType::from_raw(map_type) else {
        panic!("map `{name}`: duet-maps has no map type {map_type}");
    };
    let spec = MapSpec { name: name.into(), map_type, key_size, value_size, max_entries, flags };
    Map::new(spec, 1)
        .unwrap_or_else(|err| panic!("map `{name}` cannot be created: {err} (is it declared with #[duet::map]?)"))
}

/// # Safety
///
/// `key` points at `key_size` readable bytes.
unsafe fn key_slice<'a>(handle: Handle, key: *const u8) -> &'a [u8] {
    // SAFETY: forwarded contract.
    unsafe { std::slice::from_raw_parts(key, handle.spec.key_size as usize) }
}

/// # Safety
///
/// `key` points at the map's key type, and `V` is the map's value type.
pub(crate) unsafe fn map_get<V: Copy>(handle: Handle, key: *const u8) -> Option<V> {
    let map = map(handle);
    // SAFETY: forwarded contract.
    let ptr = map.lookup_ptr(unsafe { key_slice(handle, key) }, 0)?;
    // SAFETY: the value is `value_size` bytes of type `V`, 8-byte aligned, inside the map's
    // arena, and only this thread uses this map.
    Some(unsafe { ptr.as_ptr().cast::<V>().read() })
}

/// # Safety
///
/// `key` points at the map's key type.
#[allow(clippy::extra_unused_type_parameters, reason = "one signature for all backends; Wasm needs V's size")]
pub(crate) unsafe fn map_contains<V: Copy>(handle: Handle, key: *const u8) -> bool {
    // SAFETY: forwarded contract.
    map(handle).lookup_ptr(unsafe { key_slice(handle, key) }, 0).is_some()
}

/// # Safety
///
/// `key` and `value` point at the map's key and value types.
pub(crate) unsafe fn map_update(handle: Handle, key: *const u8, value: *const u8, flags: u64) -> i64 {
    // SAFETY: forwarded contract.
    let value = unsafe { std::slice::from_raw_parts(value, handle.spec.value_size as usize) };
    // SAFETY: forwarded contract.
    map(handle).update(unsafe { key_slice(handle, key) }, value, flags, Some(0)).map_or_else(|e| e.errno(), |()| 0)
}

/// # Safety
///
/// `key` points at the map's key type.
pub(crate) unsafe fn map_delete(handle: Handle, key: *const u8) -> i64 {
    // SAFETY: forwarded contract.
    map(handle).delete(unsafe { key_slice(handle, key) }).map_or_else(|e| e.errno(), |()| 0)
}

/// # Safety
///
/// `key` points at the map's key type; `offset + 8` is within the value and `offset` is a
/// multiple of 8.
pub(crate) unsafe fn map_add_u64(handle: Handle, key: *const u8, offset: usize, delta: u64) -> i64 {
    let map = map(handle);
    // SAFETY: forwarded contract.
    let Some(ptr) = map.lookup_ptr(unsafe { key_slice(handle, key) }, 0) else { return -2 };
    // SAFETY: an 8-byte aligned u64 inside the value (values are 8-byte aligned, the offset is
    // checked by the caller), valid for the map's lifetime.
    let counter = unsafe { AtomicU64::from_ptr(ptr.as_ptr().add(offset).cast()) };
    counter.fetch_add(delta, Ordering::Relaxed);
    0
}

/// # Safety
///
/// `data` points at `len` readable bytes.
pub(crate) unsafe fn ringbuf_output(handle: Handle, data: *const u8, len: usize, _flags: u64) -> i64 {
    // SAFETY: forwarded contract.
    let data = unsafe { std::slice::from_raw_parts(data, len) };
    map(handle).ringbuf_output(data).map_or_else(|e| e.errno(), |()| 0)
}

pub(crate) fn ktime_get_ns() -> u64 {
    STATE.with_borrow_mut(|state| {
        let now = state.now_ns;
        state.now_ns = now.wrapping_add(state.step_ns);
        now
    })
}

pub(crate) fn get_prandom_u32() -> u32 {
    STATE.with_borrow_mut(|state| {
        let mut x = state.random;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.random = x;
        (x >> 32) as u32
    })
}

pub(crate) fn get_smp_processor_id() -> u32 {
    0
}

pub(crate) fn trace(msg: &'static [u8]) {
    let text = msg.strip_suffix(b"\0").unwrap_or(msg);
    STATE.with_borrow_mut(|state| state.log.push(String::from_utf8_lossy(text).into_owned()));
}

// === HTTP programs ===

/// The context of an HTTP program in a unit test: the run `duet::testing` set up, which holds
/// the exchange and applies docs/ABI.md's rules to every helper call.
#[derive(Clone, Copy)]
pub(crate) struct HttpCtx<'a> {
    pub(crate) run: &'a crate::testing::http::HostRun,
}

impl HttpCtx<'_> {
    pub(crate) fn md(&self, index: usize) -> u32 {
        self.run.md().get(index).copied().unwrap_or(0)
    }

    pub(crate) fn field(&self, field: u32, buf: &mut [u8]) -> i64 {
        self.run.field(field, buf)
    }

    pub(crate) fn header_get(&self, name: &[u8], buf: &mut [u8]) -> i64 {
        self.run.header_get(name, buf)
    }

    pub(crate) fn header_set(&self, name: &[u8], value: &[u8]) -> i64 {
        self.run.header_set(name, value)
    }

    pub(crate) fn header_add(&self, name: &[u8], value: &[u8]) -> i64 {
        self.run.header_add(name, value)
    }

    pub(crate) fn header_remove(&self, name: &[u8]) -> i64 {
        self.run.header_remove(name)
    }

    pub(crate) fn respond(&self, status: u32, body: &[u8]) -> i64 {
        self.run.respond(status, body)
    }
}
