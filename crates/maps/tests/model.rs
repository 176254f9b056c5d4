//! Model-based tests: random operation sequences against a plain reference model of the
//! kernel's semantics (hash, LRU hash, LPM trie), compared after every operation.

use duet_maps::{BPF_EXIST, BPF_F_NO_PREALLOC, BPF_NOEXIST, Map, MapError, MapSpec, MapType};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Update {
        key: u8,
        value: u64,
        flags: u64,
    },
    Delete {
        key: u8,
    },
    /// A program lookup (through the pointer; marks LRU entries as used).
    Lookup {
        key: u8,
    },
    /// A user-side read.
    Get {
        key: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..12;
    prop_oneof![
        4 => (key.clone(), any::<u64>(), 0u64..4).prop_map(|(key, value, flags)| Op::Update { key, value, flags }),
        2 => key.clone().prop_map(|key| Op::Delete { key }),
        3 => key.clone().prop_map(|key| Op::Lookup { key }),
        1 => key.prop_map(|key| Op::Get { key }),
    ]
}

/// The reference: entries oldest-used first; `lru` says whether a full map evicts the front.
struct Model {
    entries: Vec<(u8, u64)>,
    max: usize,
    lru: bool,
}

impl Model {
    fn position(&self, key: u8) -> Option<usize> {
        self.entries.iter().position(|&(k, _)| k == key)
    }

    fn touch(&mut self, at: usize) {
        let entry = self.entries.remove(at);
        self.entries.push(entry);
    }

    fn update(&mut self, key: u8, value: u64, flags: u64) -> Result<(), MapError> {
        if flags > BPF_EXIST {
            return Err(MapError::Invalid(String::new()));
        }
        match self.position(key) {
            Some(_) if flags == BPF_NOEXIST => Err(MapError::Exists),
            Some(at) => {
                self.entries[at].1 = value;
                if self.lru {
                    self.touch(at);
                }
                Ok(())
            }
            None if flags == BPF_EXIST => Err(MapError::NotFound),
            None if self.entries.len() == self.max && !self.lru => Err(MapError::Full),
            None => {
                if self.entries.len() == self.max {
                    self.entries.remove(0);
                }
                self.entries.push((key, value));
                Ok(())
            }
        }
    }

    fn delete(&mut self, key: u8) -> Result<(), MapError> {
        let at = self.position(key).ok_or(MapError::NotFound)?;
        self.entries.remove(at);
        Ok(())
    }

    fn lookup(&mut self, key: u8) -> Option<u64> {
        let at = self.position(key)?;
        let value = self.entries[at].1;
        if self.lru {
            self.touch(at);
        }
        Some(value)
    }

    fn get(&self, key: u8) -> Option<u64> {
        Some(self.entries[self.position(key)?].1)
    }
}

/// Compares results by errno (the reason texts of `Invalid` are not part of the contract).
fn same(a: &Result<(), MapError>, b: &Result<(), MapError>) -> bool {
    a.as_ref().map_err(MapError::errno) == b.as_ref().map_err(MapError::errno)
}

fn run_hash_model(map_type: MapType, max: u32, ops: &[Op]) -> Result<(), TestCaseError> {
    let spec = MapSpec { name: "model".into(), map_type, key_size: 1, value_size: 8, max_entries: max, flags: 0 };
    let map = Map::new(spec, 1).unwrap();
    let mut model = Model { entries: Vec::new(), max: max as usize, lru: map_type == MapType::LruHash };
    for (i, op) in ops.iter().enumerate() {
        match *op {
            Op::Update { key, value, flags } => {
                let (got, want) =
                    (map.update(&[key], &value.to_ne_bytes(), flags, None), model.update(key, value, flags));
                prop_assert!(same(&got, &want), "op {i} {op:?}: got {got:?}, want {want:?}");
            }
            Op::Delete { key } => {
                let (got, want) = (map.delete(&[key]), model.delete(key));
                prop_assert!(same(&got, &want), "op {i} {op:?}: got {got:?}, want {want:?}");
            }
            Op::Lookup { key } => {
                let got = map.lookup_ptr(&[key], 0).map(|p| {
                    // SAFETY: a live map's 8-byte, 8-aligned value; single-threaded test.
                    unsafe { p.cast::<u64>().read() }
                });
                prop_assert_eq!(got, model.lookup(key), "op {} {:?}", i, op);
            }
            Op::Get { key } => {
                let got = map.get(&[key]).map(|v| u64::from_ne_bytes(v.as_single().unwrap().try_into().unwrap()));
                prop_assert_eq!(got, model.get(key), "op {} {:?}", i, op);
            }
        }
        let mut entries: Vec<(u8, u64)> = map
            .entries()
            .into_iter()
            .map(|(k, v)| (k[0], u64::from_ne_bytes(v.as_single().unwrap().try_into().unwrap())))
            .collect();
        entries.sort();
        let mut want = model.entries.clone();
        want.sort();
        prop_assert_eq!(entries, want, "after op {} {:?}", i, op);
    }
    Ok(())
}

/// A trie entry in the model: prefix length, data bits (2 bytes), value.
type Prefix = (u32, [u8; 2], u64);

fn bits_match(a: [u8; 2], b: [u8; 2], len: u32) -> bool {
    let (a, b) = (u16::from_be_bytes(a), u16::from_be_bytes(b));
    len == 0 || (a ^ b) >> (16 - len) == 0
}

fn lpm_key(len: u32, data: [u8; 2]) -> Vec<u8> {
    [&len.to_ne_bytes()[..], &data].concat()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn hash_matches_model(max in 1u32..8, ops in proptest::collection::vec(op(), 1..120)) {
        run_hash_model(MapType::Hash, max, &ops)?;
    }

    #[test]
    fn lru_hash_matches_model(max in 1u32..8, ops in proptest::collection::vec(op(), 1..120)) {
        run_hash_model(MapType::LruHash, max, &ops)?;
    }

    #[test]
    fn lpm_trie_matches_brute_force(
        ops in proptest::collection::vec((0u8..3, 0u32..18, any::<[u8; 2]>(), any::<u64>(), 0u64..3), 1..150),
    ) {
        let spec = MapSpec {
            name: "model".into(),
            map_type: MapType::LpmTrie,
            key_size: 6,
            value_size: 8,
            max_entries: 8,
            flags: BPF_F_NO_PREALLOC,
        };
        let map = Map::new(spec, 1).unwrap();
        let mut model: Vec<Prefix> = Vec::new();
        for (i, &(kind, len, data, value, flags)) in ops.iter().enumerate() {
            // Keep the data's bit patterns few, so prefixes overlap often.
            let data = [data[0] & 0xC3, data[1] & 0x81];
            let key = lpm_key(len, data);
            let exact = model.iter().position(|&(l, d, _)| l == len && bits_match(d, data, len));
            match kind {
                0 => {
                    let got = map.update(&key, &value.to_ne_bytes(), flags, None);
                    let want = if len > 16 {
                        Err(MapError::Invalid(String::new()))
                    } else {
                        match exact {
                            Some(_) if flags == BPF_NOEXIST => Err(MapError::Exists),
                            Some(at) => {
                                model[at] = (len, data, value);
                                Ok(())
                            }
                            None if flags == BPF_EXIST => Err(MapError::NotFound),
                            None if model.len() == 8 => Err(MapError::NoSpace),
                            None => {
                                model.push((len, data, value));
                                Ok(())
                            }
                        }
                    };
                    prop_assert!(same(&got, &want), "op {i}: update {len} {data:?}: got {got:?}, want {want:?}");
                }
                1 => {
                    let got = map.delete(&key);
                    let want = match exact {
                        _ if len > 16 => Err(MapError::Invalid(String::new())),
                        Some(at) => {
                            model.remove(at);
                            Ok(())
                        }
                        None => Err(MapError::NotFound),
                    };
                    prop_assert!(same(&got, &want), "op {i}: delete {len} {data:?}: got {got:?}, want {want:?}");
                }
                _ => {
                    let got = map.lookup_ptr(&key, 0).map(|p| {
                        // SAFETY: a live map's 8-byte, 8-aligned value; single-threaded test.
                        unsafe { p.cast::<u64>().read() }
                    });
                    let want = if len > 16 {
                        None
                    } else {
                        model
                            .iter()
                            .filter(|&&(l, d, _)| l <= len && bits_match(d, data, l))
                            .max_by_key(|&&(l, _, _)| l)
                            .map(|&(_, _, v)| v)
                    };
                    prop_assert_eq!(got, want, "op {}: lookup {} {:?}", i, len, data);
                }
            }
        }
        prop_assert_eq!(map.entries().len(), model.len());
    }
}
