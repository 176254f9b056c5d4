//! Kernel semantics, data-driven: each file in `tests/scripts/` is a script of map operations,
//! each line with its expected outcome, run by one `check` function.
//!
//! ```text
//! # comment
//! create hash key=4 value=8 max=2 flags=no_prealloc cpus=2 -> ok     (or an errno name)
//! update KEY VALUE [any|noexist|exist|flags=N] [cpu=N]        -> ok | ENOENT | ...
//! delete KEY                                                   -> ok | ENOENT | ...
//! lookup KEY [cpu=N]      -> BYTES | none     (through lookup_ptr, as a program does)
//! write KEY BYTES [cpu=N] -> ok | none        (store through lookup_ptr, as a program does)
//! get KEY                 -> BYTES | BYTES,BYTES,... (per CPU) | none     (user side)
//! entries                 -> KEY=VALUE ...    (sorted; empty when none)
//! prog INDEX              -> N | none         (prog_at)
//! output BYTES            -> ok | EAGAIN      (ringbuf_output)
//! drain                   -> BYTES ...        (ringbuf_drain; empty when none)
//! ```
//!
//! BYTES are parts joined by `+`: hex (`0a0b`), `u8:N` / `u16:N` / `u32:N` / `u64:N`
//! (host-endian integers), or `zeros:N`; `empty` is no bytes. Expected outcomes are compared after both sides are
//! put in canonical form (lowercase hex), so `u32:1` and `01000000` are the same. Every line is
//! checked and every mismatch reported, with its line number.

use std::ptr::NonNull;

use duet_maps::{BPF_ANY, BPF_EXIST, BPF_NOEXIST, Map, MapError, MapSpec, MapType, MapValue};

/// One test per script, named after its file, in module `scripts`.
macro_rules! script_tests {
    ($($name:ident),* $(,)?) => {
        mod scripts {$(
            #[test]
            fn $name() {
                let path = concat!("tests/scripts/", stringify!($name), ".maps");
                let failures = super::check(include_str!(concat!("scripts/", stringify!($name), ".maps")));
                assert!(failures.is_empty(), "{path}:\n{}", failures.join("\n"));
            }
        )*}
    };
}

script_tests!(create, array, percpu_array, hash, percpu_hash, lru_hash, lru_percpu_hash, prog_array, lpm_trie, ringbuf);

/// Runs `script`; returns one message per line whose outcome differs from the expected one.
fn check(script: &str) -> Vec<String> {
    let mut map: Option<Map> = None;
    let mut failures = Vec::new();
    for (i, line) in script.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let Some((command, expected)) = line.split_once("->") else {
            failures.push(format!("line {}: no `->` in {line:?}", i + 1));
            continue;
        };
        let actual = match run(&mut map, command.trim()) {
            Ok(actual) => actual,
            Err(why) => format!("<harness error: {why}>"),
        };
        let expected = canonical(expected.trim());
        if actual != expected {
            failures.push(format!(
                "line {}: {}\n    expected: {expected}\n    actual:   {actual}",
                i + 1,
                command.trim()
            ));
        }
    }
    failures
}

/// Runs one command and formats its outcome canonically.
fn run(map: &mut Option<Map>, command: &str) -> Result<String, String> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let (&verb, args) = words.split_first().ok_or("empty command")?;
    if verb == "create" {
        return create(map, args);
    }
    let map = map.as_ref().ok_or("no map created yet")?;
    let positional: Vec<&str> = args.iter().copied().filter(|a| !a.contains('=')).collect();
    let option = |name: &str| args.iter().find_map(|a| a.strip_prefix(name)?.strip_prefix('='));
    let cpu = option("cpu").map(|c| c.parse::<usize>().map_err(|e| e.to_string())).transpose()?;
    let arg = |i: usize| positional.get(i).copied().ok_or(format!("{verb}: missing argument {}", i + 1));
    Ok(match verb {
        "update" => {
            let flags = match (positional.get(2).copied(), option("flags")) {
                (None | Some("any"), None) => BPF_ANY,
                (Some("noexist"), None) => BPF_NOEXIST,
                (Some("exist"), None) => BPF_EXIST,
                (None, Some(n)) => parse_int(n)?,
                (other, _) => return Err(format!("update: bad flags {other:?}")),
            };
            outcome(map.update(&bytes(arg(0)?)?, &bytes(arg(1)?)?, flags, cpu))
        }
        "delete" => outcome(map.delete(&bytes(arg(0)?)?)),
        "lookup" => match lookup(map, &bytes(arg(0)?)?, cpu.unwrap_or(0))? {
            // SAFETY: `lookup` checked the pointer lies in the map's storage with `value_size`
            // bytes after it; this test is the only thread touching the map.
            Some(p) => hex(unsafe { std::slice::from_raw_parts(p.as_ptr(), map.spec().value_size as usize) }),
            None => "none".into(),
        },
        "write" => {
            let value = bytes(arg(1)?)?;
            if value.len() != map.spec().value_size as usize {
                return Err("write: value must be value_size bytes".into());
            }
            match lookup(map, &bytes(arg(0)?)?, cpu.unwrap_or(0))? {
                Some(p) => {
                    // SAFETY: as for `lookup`; the pointer is valid for `value_size` bytes of
                    // writes, and `value` is a separate buffer.
                    unsafe { std::ptr::copy_nonoverlapping(value.as_ptr(), p.as_ptr(), value.len()) };
                    "ok".into()
                }
                None => "none".into(),
            }
        }
        "get" => map.get(&bytes(arg(0)?)?).map_or("none".into(), |v| value(&v)),
        "entries" => {
            let mut entries: Vec<String> =
                map.entries().iter().map(|(k, v)| format!("{}={}", hex(k), value(v))).collect();
            entries.sort();
            entries.join(" ")
        }
        "prog" => map.prog_at(parse_int(arg(0)?)? as u32).map_or("none".into(), |p| p.to_string()),
        "output" => outcome(map.ringbuf_output(&bytes(arg(0)?)?)),
        "drain" => map.ringbuf_drain().iter().map(|r| hex(r)).collect::<Vec<_>>().join(" "),
        _ => return Err(format!("unknown command {verb:?}")),
    })
}

/// `create TYPE key=N value=N max=N [flags=...] [cpus=N]`.
fn create(map: &mut Option<Map>, args: &[&str]) -> Result<String, String> {
    let (&name, options) = args.split_first().ok_or("create: missing type")?;
    let map_type = MapType::from_name(name).ok_or(format!("create: unknown type {name:?}"))?;
    let mut spec = MapSpec { name: "test".into(), map_type, key_size: 0, value_size: 0, max_entries: 0, flags: 0 };
    let mut n_cpus = 1;
    for option in options {
        let (key, value) = option.split_once('=').ok_or(format!("create: bad option {option:?}"))?;
        match key {
            "key" => spec.key_size = parse_int(value)? as u32,
            "value" => spec.value_size = parse_int(value)? as u32,
            "max" => spec.max_entries = parse_int(value)? as u32,
            "flags" => spec.flags = map_flags(value)?,
            "cpus" => n_cpus = parse_int(value)? as usize,
            _ => return Err(format!("create: unknown option {key:?}")),
        }
    }
    let created = Map::new(spec, n_cpus);
    let result = outcome(created.as_ref().map(|_| ()).map_err(Clone::clone));
    *map = created.ok();
    Ok(result)
}

/// `lookup_ptr`, checking the pointer lies inside one of the map's storage regions.
fn lookup(map: &Map, key: &[u8], cpu: usize) -> Result<Option<NonNull<u8>>, String> {
    let Some(p) = map.lookup_ptr(key, cpu) else { return Ok(None) };
    let (start, len) = (p.as_ptr() as usize, map.spec().value_size as usize);
    let inside = map.storage_regions().iter().any(|&(region, region_len)| {
        let region = region.as_ptr() as usize;
        start >= region && start + len <= region + region_len
    });
    if !inside {
        return Err("lookup_ptr returned a pointer outside storage_regions".into());
    }
    if !start.is_multiple_of(8) {
        return Err("lookup_ptr returned a pointer that is not 8-byte aligned".into());
    }
    Ok(Some(p))
}

fn map_flags(text: &str) -> Result<u32, String> {
    text.split('|')
        .map(|name| {
            Ok(match name {
                "no_prealloc" => duet_maps::BPF_F_NO_PREALLOC,
                "no_common_lru" => duet_maps::BPF_F_NO_COMMON_LRU,
                "numa_node" => duet_maps::BPF_F_NUMA_NODE,
                "rdonly" => duet_maps::BPF_F_RDONLY,
                "wronly" => duet_maps::BPF_F_WRONLY,
                "zero_seed" => duet_maps::BPF_F_ZERO_SEED,
                "rdonly_prog" => duet_maps::BPF_F_RDONLY_PROG,
                "wronly_prog" => duet_maps::BPF_F_WRONLY_PROG,
                "mmapable" => duet_maps::BPF_F_MMAPABLE,
                "inner_map" => duet_maps::BPF_F_INNER_MAP,
                _ => parse_int(name)? as u32,
            })
        })
        .try_fold(0, |acc, flag: Result<u32, String>| Ok(acc | flag?))
}

fn parse_int(text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|e| format!("bad number {text:?}: {e}"))
}

/// Parses BYTES: parts joined by `+`.
fn bytes(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    if text == "empty" {
        return Ok(out);
    }
    for part in text.split('+') {
        match part.split_once(':') {
            Some(("u8", n)) => out.push(parse_int(n)? as u8),
            Some(("u16", n)) => out.extend((parse_int(n)? as u16).to_ne_bytes()),
            Some(("u32", n)) => out.extend((parse_int(n)? as u32).to_ne_bytes()),
            Some(("u64", n)) => out.extend(parse_int(n)?.to_ne_bytes()),
            Some(("zeros", n)) => out.resize(out.len() + parse_int(n)? as usize, 0),
            Some((kind, _)) => return Err(format!("unknown byte part {kind:?}")),
            None => {
                let digits: Vec<char> = part.chars().filter(|&c| c != '_').collect();
                if !digits.len().is_multiple_of(2) {
                    return Err(format!("odd number of hex digits in {part:?}"));
                }
                for pair in digits.chunks(2) {
                    let pair: String = pair.iter().collect();
                    out.push(u8::from_str_radix(&pair, 16).map_err(|e| format!("bad hex {pair:?}: {e}"))?);
                }
            }
        }
    }
    Ok(out)
}

/// The canonical form of an expected outcome: words kept, BYTES turned into hex.
fn canonical(expected: &str) -> String {
    let canon_bytes =
        |text: &str| text.split(',').map(|b| bytes(b).map_or(b.to_string(), |b| hex(&b))).collect::<Vec<_>>().join(",");
    let mut words: Vec<String> = expected
        .split_whitespace()
        .map(|word| {
            if word == "ok" || word == "none" || word.starts_with('E') || word.chars().all(|c| c.is_ascii_digit()) {
                word.to_string()
            } else if let Some((key, value)) = word.split_once('=') {
                format!("{}={}", canon_bytes(key), canon_bytes(value))
            } else {
                canon_bytes(word)
            }
        })
        .collect();
    if words.iter().all(|w| w.contains('=')) {
        words.sort();
    }
    words.join(" ")
}

fn outcome(result: Result<(), MapError>) -> String {
    match result {
        Ok(()) => "ok".into(),
        Err(err) => errno_name(err.errno()),
    }
}

fn errno_name(errno: i64) -> String {
    match -errno {
        2 => "ENOENT".into(),
        7 => "E2BIG".into(),
        11 => "EAGAIN".into(),
        12 => "ENOMEM".into(),
        17 => "EEXIST".into(),
        22 => "EINVAL".into(),
        28 => "ENOSPC".into(),
        524 => "ENOTSUPP".into(),
        n => format!("errno{n}"),
    }
}

fn value(value: &MapValue) -> String {
    match value {
        MapValue::Single(bytes) => hex(bytes),
        MapValue::PerCpu(values) => values.iter().map(|v| hex(v)).collect::<Vec<_>>().join(","),
    }
}

fn hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "empty".into();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
