//! `duet:app/kv`: the key-value store an app may be given ([`KvStore`]), and the in-memory one.

use std::collections::HashMap;
use std::sync::Mutex;

wasmtime::component::bindgen!({
    path: "wit/kv.wit",
    world: "host",
});

use self::duet::app::kv as wit;

/// Why a store operation failed (the guest sees the matching `duet:app/kv.error`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// The key or value is too large, or the store is full.
    #[error("too large: {0}")]
    TooLarge(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// A key-value store the sidecar gives an app ([`App::with_kv`](crate::App::with_kv)); later a
/// duet map shared with filters. Called synchronously from the guest, so it must not block long.
pub trait KvStore: Send + Sync {
    /// The value under `key`.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    /// Stores `value` under `key`.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError>;
    /// Removes `key`; true when it was there.
    fn delete(&self, key: &str) -> Result<bool, KvError>;
}

/// A bounded in-memory [`KvStore`].
#[derive(Debug)]
pub struct MemoryKv {
    entries: Mutex<HashMap<String, Vec<u8>>>,
    max_entries: usize,
    max_value_bytes: usize,
}

impl MemoryKv {
    /// Longest key accepted, in bytes.
    pub const MAX_KEY_BYTES: usize = 256;

    /// A store of at most `max_entries` keys with values of at most `max_value_bytes`.
    pub fn new(max_entries: usize, max_value_bytes: usize) -> MemoryKv {
        MemoryKv { entries: Mutex::new(HashMap::new()), max_entries, max_value_bytes }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<u8>>> {
        // A panic while holding the lock cannot leave the map half-updated (every update is
        // one `insert` or `remove`), so a poisoned lock is still a consistent map.
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl KvStore for MemoryKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.lock().get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        if key.len() > Self::MAX_KEY_BYTES {
            return Err(KvError::TooLarge(format!("key longer than {} bytes", Self::MAX_KEY_BYTES)));
        }
        if value.len() > self.max_value_bytes {
            return Err(KvError::TooLarge(format!("value larger than {} bytes", self.max_value_bytes)));
        }
        let mut entries = self.lock();
        if !entries.contains_key(key) && entries.len() >= self.max_entries {
            return Err(KvError::TooLarge(format!("store full ({} keys)", self.max_entries)));
        }
        entries.insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<bool, KvError> {
        Ok(self.lock().remove(key).is_some())
    }
}

fn to_wit(e: KvError) -> wit::Error {
    match e {
        KvError::TooLarge(why) => wit::Error::TooLarge(why),
        KvError::Other(why) => wit::Error::Other(why),
    }
}

impl wit::Host for crate::host::AppState {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, wit::Error> {
        let store = self.kv.as_ref().ok_or(wit::Error::NoStore)?;
        store.get(&key).map_err(to_wit)
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), wit::Error> {
        let store = self.kv.as_ref().ok_or(wit::Error::NoStore)?;
        store.set(&key, &value).map_err(to_wit)
    }

    fn delete(&mut self, key: String) -> Result<bool, wit::Error> {
        let store = self.kv.as_ref().ok_or(wit::Error::NoStore)?;
        store.delete(&key).map_err(to_wit)
    }
}

pub(crate) fn add_to_linker(linker: &mut wasmtime::component::Linker<crate::host::AppState>) -> wasmtime::Result<()> {
    wit::add_to_linker::<_, wasmtime::component::HasSelf<_>>(linker, |state| state)
}
