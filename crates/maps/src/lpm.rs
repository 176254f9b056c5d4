//! `lpm_trie`: longest-prefix match over keys `{ u32 prefixlen (host-endian), data[] }`, with
//! `data` read as big-endian bits (bit 0 is the top bit of `data[0]`), as in Linux.
//!
//! Linux stores a binary Patricia trie. duet stores one hash index keyed by (prefix length,
//! the first `prefixlen` bits of data) and keeps the list of prefix lengths in use: a lookup
//! probes each length in use, longest first, no longer than the key's own `prefixlen`, and
//! returns the first hit. That answers exactly what the trie answers, in at most one probe per
//! distinct length (33 for IPv4, 129 for IPv6), with values in preallocated slots so pointers
//! stay put. Bits past an entry's prefix length are kept as given (a dump shows them, as the
//! kernel's does) and never compared.

use std::hash::Hasher;
use std::ptr::NonNull;
use std::sync::RwLock;

use hashbrown::HashTable;

use crate::hash::{KeyHasher, free_list};
use crate::key::Key;
use crate::sync::{read, write};
use crate::values::{Values, Write, try_vec_with};
use crate::{BPF_EXIST, BPF_NOEXIST, MapError, MapValue, check_update_flags};

pub(crate) struct LpmTrie {
    state: RwLock<State>,
    values: Values,
    hasher: KeyHasher,
    max_prefixlen: u32,
}

struct Entry {
    prefixlen: u32,
    /// The data bytes as last given for this prefix.
    data: Key,
    slot: u32,
}

struct State {
    table: HashTable<Entry>,
    /// Per prefix length `0..=max_prefixlen`: how many entries have it.
    counts: Box<[u32]>,
    /// Prefix lengths with at least one entry, longest first.
    lengths: Vec<u32>,
    free: Vec<u32>,
}

/// Splits a trie key into its prefix length and data.
fn split(key: &[u8]) -> Option<(u32, &[u8])> {
    let (prefixlen, data) = key.split_first_chunk::<4>()?;
    Some((u32::from_ne_bytes(*prefixlen), data))
}

/// Whether the first `bits` bits of `a` and `b` are equal (both at least `bits` long).
fn prefix_eq(a: &[u8], b: &[u8], bits: u32) -> bool {
    let (full, rest) = ((bits / 8) as usize, bits % 8);
    a[..full] == b[..full] && (rest == 0 || (a[full] ^ b[full]) & (0xFF << (8 - rest)) == 0)
}

impl LpmTrie {
    pub(crate) fn new(key_size: usize, value_size: usize, max_entries: u32) -> Result<LpmTrie, MapError> {
        let max_prefixlen = (key_size as u32 - 4) * 8;
        let state = State {
            table: HashTable::new(),
            counts: try_vec_with(max_prefixlen as usize + 1, || 0)?.into_boxed_slice(),
            lengths: Vec::new(),
            free: free_list(max_entries)?,
        };
        Ok(LpmTrie {
            state: RwLock::new(state),
            values: Values::new(value_size, max_entries as usize, 1, false)?,
            hasher: KeyHasher::new(false),
            max_prefixlen,
        })
    }

    /// The hash of the first `bits` bits of `data` at prefix length `bits`.
    fn prefix_hash(&self, data: &[u8], bits: u32) -> u64 {
        let (full, rest) = ((bits / 8) as usize, bits % 8);
        let mut hasher = self.hasher.build();
        hasher.write_u32(bits);
        hasher.write(&data[..full]);
        if rest != 0 {
            hasher.write_u8(data[full] & (0xFF << (8 - rest)));
        }
        hasher.finish()
    }

    /// The slot of the longest stored prefix that matches `data` and is at most `limit` bits.
    fn longest_match(&self, state: &State, limit: u32, data: &[u8]) -> Option<u32> {
        if limit > self.max_prefixlen {
            return None;
        }
        state.lengths.iter().filter(|&&len| len <= limit).find_map(|&len| {
            let hash = self.prefix_hash(data, len);
            state.table.find(hash, |e| e.prefixlen == len && prefix_eq(e.data.as_bytes(), data, len)).map(|e| e.slot)
        })
    }

    pub(crate) fn lookup_ptr(&self, key: &[u8]) -> Option<NonNull<u8>> {
        let (prefixlen, data) = split(key)?;
        let slot = self.longest_match(&read(&self.state), prefixlen, data)?;
        self.values.ptr(slot, 0)
    }

    /// As the kernel's `trie_update_elem` (6.14 and later, which honours the flags): bad flags,
    /// a prefix longer than the data, then `EEXIST` / `ENOENT` by flag, then `ENOSPC` when a new
    /// prefix finds the trie full.
    pub(crate) fn update(&self, key: &[u8], value: Write<'_>, flags: u64) -> Result<(), MapError> {
        check_update_flags(flags)?;
        let (prefixlen, data) = self.split_checked(key)?;
        let hash = self.prefix_hash(data, prefixlen);
        let mut state = write(&self.state);
        let eq = |e: &Entry| e.prefixlen == prefixlen && prefix_eq(e.data.as_bytes(), data, prefixlen);
        if let Some(entry) = state.table.find_mut(hash, eq) {
            if flags == BPF_NOEXIST {
                return Err(MapError::Exists);
            }
            entry.data = Key::new(data);
            self.values.store(entry.slot, value, false);
            return Ok(());
        }
        if flags == BPF_EXIST {
            return Err(MapError::NotFound);
        }
        let slot = state.free.pop().ok_or(MapError::NoSpace)?;
        self.values.store(slot, value, true);
        let entry = Entry { prefixlen, data: Key::new(data), slot };
        state.table.insert_unique(hash, entry, |e| self.prefix_hash(e.data.as_bytes(), e.prefixlen));
        state.counts[prefixlen as usize] += 1;
        if state.counts[prefixlen as usize] == 1 {
            let at = state.lengths.partition_point(|&len| len > prefixlen);
            state.lengths.insert(at, prefixlen);
        }
        Ok(())
    }

    /// Deletes the entry with exactly this prefix (length and bits), as `trie_delete_elem`.
    pub(crate) fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        let (prefixlen, data) = self.split_checked(key)?;
        let hash = self.prefix_hash(data, prefixlen);
        let mut state = write(&self.state);
        let eq = |e: &Entry| e.prefixlen == prefixlen && prefix_eq(e.data.as_bytes(), data, prefixlen);
        let Ok(entry) = state.table.find_entry(hash, eq) else {
            return Err(MapError::NotFound);
        };
        let (entry, _) = entry.remove();
        state.free.push(entry.slot);
        state.counts[prefixlen as usize] -= 1;
        if state.counts[prefixlen as usize] == 0 {
            state.lengths.retain(|&len| len != prefixlen);
        }
        Ok(())
    }

    /// The syscall's lookup is a longest-prefix match too.
    pub(crate) fn get(&self, key: &[u8]) -> Option<MapValue> {
        let (prefixlen, data) = split(key)?;
        let state = read(&self.state);
        let slot = self.longest_match(&state, prefixlen, data)?;
        Some(self.values.load(slot))
    }

    pub(crate) fn entries(&self) -> Vec<(Vec<u8>, MapValue)> {
        let state = read(&self.state);
        let key = |e: &Entry| [&e.prefixlen.to_ne_bytes()[..], e.data.as_bytes()].concat();
        state.table.iter().map(|e| (key(e), self.values.load(e.slot))).collect()
    }

    pub(crate) fn region(&self) -> (NonNull<u8>, usize) {
        self.values.region()
    }

    fn split_checked<'k>(&self, key: &'k [u8]) -> Result<(u32, &'k [u8]), MapError> {
        match split(key) {
            Some((prefixlen, data)) if prefixlen <= self.max_prefixlen => Ok((prefixlen, data)),
            _ => Err(MapError::Invalid(format!("lpm_trie key: prefixlen must be <= {}", self.max_prefixlen))),
        }
    }
}
