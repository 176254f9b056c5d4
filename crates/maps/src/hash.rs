//! `hash` and `percpu_hash`: an index from key to slot, sharded by hash into read-write locked
//! SwissTables, over preallocated value slots handed out from a free list.
//!
//! Lookups take one shard's read lock, hash the key once and compare against the stored key
//! bytes: no allocation. Updates of an existing key write the value in place under the read
//! lock (the lock keeps the slot from being freed meanwhile); only inserting and deleting a key
//! take the shard's write lock, and then the free list's mutex (always in that order).

use std::hash::{BuildHasher, Hasher};
use std::ptr::NonNull;
use std::sync::{Mutex, RwLock};

use foldhash::fast::SeedableRandomState;
use hashbrown::HashTable;

use crate::key::Key;
use crate::sync::{lock, read, write};
use crate::values::{Values, Write, try_vec_with};
use crate::{BPF_EXIST, BPF_NOEXIST, MapError, MapValue, check_update_flags};

/// Number of index shards (a power of two). Enough that a few threads updating different keys
/// rarely meet on one lock, few enough that a small map stays small.
const SHARDS: usize = 16;

/// Hashes keys with a per-map random seed, or the fixed seed for `BPF_F_ZERO_SEED`.
pub(crate) struct KeyHasher(SeedableRandomState);

impl KeyHasher {
    pub(crate) fn new(zero_seed: bool) -> KeyHasher {
        KeyHasher(if zero_seed { SeedableRandomState::fixed() } else { SeedableRandomState::random() })
    }

    #[inline]
    pub(crate) fn hash(&self, key: &[u8]) -> u64 {
        let mut hasher = self.0.build_hasher();
        hasher.write(key);
        hasher.finish()
    }

    /// A hasher to feed piecewise (the LPM trie hashes a masked prefix).
    #[inline]
    pub(crate) fn build(&self) -> impl Hasher {
        self.0.build_hasher()
    }
}

/// One index entry: the key and its value slot.
pub(crate) struct Entry {
    pub(crate) key: Key,
    pub(crate) slot: u32,
}

/// A shard on its own cache line, so readers of different shards do not contend.
#[repr(align(64))]
struct Shard(RwLock<HashTable<Entry>>);

/// Slots `0..n`, ordered so that `pop` hands out slot 0 first.
pub(crate) fn free_list(n: u32) -> Result<Vec<u32>, MapError> {
    let mut next = n;
    try_vec_with(n as usize, || {
        next -= 1;
        next
    })
}

pub(crate) struct HashMap {
    shards: Box<[Shard]>,
    free: Mutex<Vec<u32>>,
    values: Values,
    hasher: KeyHasher,
}

impl HashMap {
    pub(crate) fn new(
        value_size: usize,
        max_entries: u32,
        n_cpus: usize,
        per_cpu: bool,
        zero_seed: bool,
    ) -> Result<HashMap, MapError> {
        Ok(HashMap {
            shards: (0..SHARDS).map(|_| Shard(RwLock::new(HashTable::new()))).collect(),
            free: Mutex::new(free_list(max_entries)?),
            values: Values::new(value_size, max_entries as usize, n_cpus, per_cpu)?,
            hasher: KeyHasher::new(zero_seed),
        })
    }

    /// The shard of `hash`. Bits 32.. pick it: hashbrown uses the low bits for the bucket and the
    /// top seven as the tag, so these leave both fully random within a shard.
    #[inline]
    fn shard(&self, hash: u64) -> &RwLock<HashTable<Entry>> {
        &self.shards[(hash >> 32) as usize & (SHARDS - 1)].0
    }

    #[inline]
    pub(crate) fn lookup_ptr(&self, key: &[u8], cpu: usize) -> Option<NonNull<u8>> {
        let hash = self.hasher.hash(key);
        let slot = read(self.shard(hash)).find(hash, |e| e.key.as_bytes() == key)?.slot;
        self.values.ptr(slot, cpu)
    }

    /// As the kernel's `htab_map_update_elem`: bad flags, then `EEXIST` / `ENOENT` by flag,
    /// then `E2BIG` when a new key finds no free slot.
    pub(crate) fn update(&self, key: &[u8], value: Write<'_>, flags: u64) -> Result<(), MapError> {
        check_update_flags(flags)?;
        let hash = self.hasher.hash(key);
        let shard = self.shard(hash);
        {
            let table = read(shard);
            if let Some(entry) = table.find(hash, |e| e.key.as_bytes() == key) {
                return self.overwrite(entry.slot, value, flags);
            }
        }
        // The key was absent under the read lock, so `NotFound` is a correct answer as of then.
        if flags == BPF_EXIST {
            return Err(MapError::NotFound);
        }
        let mut table = write(shard);
        // Another thread may have inserted the key between the two locks.
        if let Some(entry) = table.find(hash, |e| e.key.as_bytes() == key) {
            return self.overwrite(entry.slot, value, flags);
        }
        let slot = lock(&self.free).pop().ok_or(MapError::Full)?;
        self.values.store(slot, value, true);
        table.insert_unique(hash, Entry { key: Key::new(key), slot }, |e| self.hasher.hash(e.key.as_bytes()));
        Ok(())
    }

    fn overwrite(&self, slot: u32, value: Write<'_>, flags: u64) -> Result<(), MapError> {
        if flags == BPF_NOEXIST {
            return Err(MapError::Exists);
        }
        self.values.store(slot, value, false);
        Ok(())
    }

    pub(crate) fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        let hash = self.hasher.hash(key);
        let mut table = write(self.shard(hash));
        let Ok(entry) = table.find_entry(hash, |e| e.key.as_bytes() == key) else {
            return Err(MapError::NotFound);
        };
        let (entry, _) = entry.remove();
        lock(&self.free).push(entry.slot);
        Ok(())
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<MapValue> {
        let hash = self.hasher.hash(key);
        let table = read(self.shard(hash));
        table.find(hash, |e| e.key.as_bytes() == key).map(|e| self.values.load(e.slot))
    }

    /// Every entry, shard by shard (not one atomic snapshot, like the kernel's iteration).
    pub(crate) fn entries(&self) -> Vec<(Vec<u8>, MapValue)> {
        let mut entries = Vec::new();
        for shard in &self.shards {
            let table = read(&shard.0);
            entries.extend(table.iter().map(|e| (e.key.as_bytes().to_vec(), self.values.load(e.slot))));
        }
        entries
    }

    pub(crate) fn region(&self) -> (NonNull<u8>, usize) {
        self.values.region()
    }
}
