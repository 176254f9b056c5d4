//! `lru_hash` and `lru_percpu_hash`: a hash index plus a doubly linked recency list over the
//! slots, all under one mutex. When a new key finds the map full, the least recently used
//! entry is evicted and its slot reused.
//!
//! This is a true LRU: every program lookup and every update moves the entry to the front.
//! Linux's LRU is approximate (per-CPU free lists, a reference bit set on lookup, lists rotated
//! lazily), so it may evict a different entry, or evict before the map is full; programs must
//! not depend on which entry goes, and tests here pin down the exact order only for duet.
//! User-side reads ([`LruMap::get`], [`LruMap::entries`]) do not count as use, as in Linux.

use std::ptr::NonNull;
use std::sync::Mutex;

use hashbrown::HashTable;

use crate::hash::{Entry, KeyHasher, free_list};
use crate::key::Key;
use crate::sync::lock;
use crate::values::{Values, Write, try_vec_with};
use crate::{BPF_EXIST, BPF_NOEXIST, MapError, MapValue, check_update_flags};

/// End of the recency list.
const NIL: u32 = u32::MAX;

pub(crate) struct LruMap {
    state: Mutex<State>,
    values: Values,
    hasher: KeyHasher,
}

struct State {
    table: HashTable<Entry>,
    /// Per slot: the hash of its key, to find its index entry when it is evicted.
    hashes: Box<[u64]>,
    /// Per slot: the more recently used neighbour.
    prev: Box<[u32]>,
    /// Per slot: the less recently used neighbour.
    next: Box<[u32]>,
    /// Most recently used slot.
    head: u32,
    /// Least recently used slot: the next to evict.
    tail: u32,
    free: Vec<u32>,
}

impl State {
    fn unlink(&mut self, slot: u32) {
        let (prev, next) = (self.prev[slot as usize], self.next[slot as usize]);
        if prev == NIL {
            self.head = next
        } else {
            self.next[prev as usize] = next
        }
        if next == NIL { self.tail = prev } else { self.prev[next as usize] = prev }
    }

    fn push_front(&mut self, slot: u32) {
        self.prev[slot as usize] = NIL;
        self.next[slot as usize] = self.head;
        if self.head == NIL {
            self.tail = slot
        } else {
            self.prev[self.head as usize] = slot
        }
        self.head = slot;
    }

    /// Marks `slot` as the most recently used.
    #[inline]
    fn touch(&mut self, slot: u32) {
        if self.head != slot {
            self.unlink(slot);
            self.push_front(slot);
        }
    }

    /// A slot for a new entry: a free one, or the least recently used one, evicted.
    fn take_slot(&mut self) -> Option<u32> {
        if let Some(slot) = self.free.pop() {
            return Some(slot);
        }
        let victim = self.tail;
        if victim == NIL {
            return None;
        }
        let hash = self.hashes[victim as usize];
        if let Ok(entry) = self.table.find_entry(hash, |e| e.slot == victim) {
            entry.remove();
        }
        self.unlink(victim);
        Some(victim)
    }
}

impl LruMap {
    pub(crate) fn new(
        value_size: usize,
        max_entries: u32,
        n_cpus: usize,
        per_cpu: bool,
        zero_seed: bool,
    ) -> Result<LruMap, MapError> {
        let n = max_entries as usize;
        let state = State {
            table: HashTable::new(),
            hashes: try_vec_with(n, || 0)?.into_boxed_slice(),
            prev: try_vec_with(n, || NIL)?.into_boxed_slice(),
            next: try_vec_with(n, || NIL)?.into_boxed_slice(),
            head: NIL,
            tail: NIL,
            free: free_list(max_entries)?,
        };
        Ok(LruMap {
            state: Mutex::new(state),
            values: Values::new(value_size, n, n_cpus, per_cpu)?,
            hasher: KeyHasher::new(zero_seed),
        })
    }

    #[inline]
    pub(crate) fn lookup_ptr(&self, key: &[u8], cpu: usize) -> Option<NonNull<u8>> {
        let hash = self.hasher.hash(key);
        let mut state = lock(&self.state);
        let slot = state.table.find(hash, |e| e.key.as_bytes() == key)?.slot;
        state.touch(slot);
        drop(state);
        self.values.ptr(slot, cpu)
    }

    /// As the kernel's `htab_lru_map_update_elem`, but evicting only when a new key needs a
    /// slot (Linux may evict even when the update then fails its flag check).
    pub(crate) fn update(&self, key: &[u8], value: Write<'_>, flags: u64) -> Result<(), MapError> {
        check_update_flags(flags)?;
        let hash = self.hasher.hash(key);
        let mut state = lock(&self.state);
        if let Some(entry) = state.table.find(hash, |e| e.key.as_bytes() == key) {
            if flags == BPF_NOEXIST {
                return Err(MapError::Exists);
            }
            let slot = entry.slot;
            self.values.store(slot, value, false);
            state.touch(slot);
            return Ok(());
        }
        if flags == BPF_EXIST {
            return Err(MapError::NotFound);
        }
        // `max_entries > 0`, so a full map always has a tail to evict.
        let slot = state.take_slot().ok_or(MapError::Full)?;
        self.values.store(slot, value, true);
        state.hashes[slot as usize] = hash;
        state.table.insert_unique(hash, Entry { key: Key::new(key), slot }, |e| self.hasher.hash(e.key.as_bytes()));
        state.push_front(slot);
        Ok(())
    }

    pub(crate) fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        let hash = self.hasher.hash(key);
        let mut state = lock(&self.state);
        let Ok(entry) = state.table.find_entry(hash, |e| e.key.as_bytes() == key) else {
            return Err(MapError::NotFound);
        };
        let (entry, _) = entry.remove();
        state.unlink(entry.slot);
        state.free.push(entry.slot);
        Ok(())
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<MapValue> {
        let hash = self.hasher.hash(key);
        let state = lock(&self.state);
        state.table.find(hash, |e| e.key.as_bytes() == key).map(|e| self.values.load(e.slot))
    }

    /// Every entry, in no particular order.
    pub(crate) fn entries(&self) -> Vec<(Vec<u8>, MapValue)> {
        let state = lock(&self.state);
        let mut entries = Vec::with_capacity(state.table.len());
        entries.extend(state.table.iter().map(|e| (e.key.as_bytes().to_vec(), self.values.load(e.slot))));
        entries
    }

    pub(crate) fn region(&self) -> (NonNull<u8>, usize) {
        self.values.region()
    }
}
