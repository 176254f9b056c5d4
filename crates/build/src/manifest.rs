//! The map manifest of a `.wasm` program.
//!
//! `#[duet::map]` gives every map a record in the custom section `duet.maps.v1` of the module
//! rustc links: the magic `DMAP`, then little-endian `u32`s — record length, id, type, key size,
//! value size, max_entries, flags — then the map's name. Records are fixed-size byte arrays
//! computed by `const fn`s (map sizes come from `size_of`, which a macro cannot see), and the
//! linker concatenates them in whatever order it likes; the id in each record is what the
//! program's code passes to the `duet` imports.
//!
//! [`finish_module`] turns them into the ABI's `duet.maps` section (docs/ABI.md): a JSON array
//! sorted by id, so a map's id is its index, and drops the records. It is pure: bytes in,
//! bytes out.

use serde::{Deserialize, Serialize};

/// The section `#[duet::map]` writes records to.
pub const RECORDS_SECTION: &str = "duet.maps.v1";
/// The section of the finished module (docs/ABI.md).
pub const MANIFEST_SECTION: &str = "duet.maps";
/// The section where kernel-only programs (`#[duet::connect4]`, `connect6`, `sock_ops`, `sk_msg`, `sk_lookup`) leave a line
/// `<section> <program>\n` per program: hooks only the kernel has.
pub const KERNEL_ONLY_SECTION: &str = "duet.kernel_only";

const RECORD_MAGIC: &[u8; 4] = b"DMAP";
const RECORD_HEADER: usize = 32;
const WASM_HEADER: &[u8; 8] = b"\0asm\x01\0\0\0";
const CUSTOM_SECTION: u8 = 0;
const EXPORT_SECTION: u8 = 7;

/// One map as the manifest lists it; its id is its index in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapEntry {
    /// The map's name: the static's name.
    pub name: String,
    /// The kernel map type number (`BPF_MAP_TYPE_*`).
    #[serde(rename = "type")]
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries (bytes for a ring buffer).
    pub max_entries: u32,
    /// `BPF_F_*` flags.
    pub flags: u32,
}

/// A section of a module: its id and the byte range of its contents.
#[derive(Clone, Copy, Debug)]
struct Section {
    id: u8,
    /// The whole section, id byte included.
    whole: (usize, usize),
    /// Its contents.
    body: (usize, usize),
}

/// The kernel-only programs a module's `duet.kernel_only` records name, as
/// `(section, program)` pairs.
pub fn kernel_only_programs(module: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for s in sections(module)? {
        if s.id != CUSTOM_SECTION {
            continue;
        }
        let (name, payload) = custom(&module[s.body.0..s.body.1])?;
        if name != KERNEL_ONLY_SECTION {
            continue;
        }
        let text = std::str::from_utf8(payload).map_err(|_| format!("`{KERNEL_ONLY_SECTION}` is not UTF-8"))?;
        for line in text.lines().filter(|l| !l.is_empty()) {
            let (section, program) =
                line.split_once(' ').ok_or_else(|| format!("`{KERNEL_ONLY_SECTION}`: malformed record `{line}`"))?;
            out.push((section.to_owned(), program.to_owned()));
        }
    }
    Ok(out)
}

/// Splits a module into its sections.
fn sections(module: &[u8]) -> Result<Vec<Section>, String> {
    if module.get(..8) != Some(WASM_HEADER) {
        return Err("not a WebAssembly module (bad magic or version)".into());
    }
    let mut sections = Vec::new();
    let mut pos = 8;
    while pos < module.len() {
        let start = pos;
        let id = module[pos];
        let (size, body_start) = leb_u32(module, pos + 1)?;
        let body_end = body_start.checked_add(size as usize).filter(|&end| end <= module.len());
        let body_end = body_end.ok_or_else(|| format!("section at byte {start} runs past the end of the module"))?;
        sections.push(Section { id, whole: (start, body_end), body: (body_start, body_end) });
        pos = body_end;
    }
    Ok(sections)
}

/// The name and payload of a custom section's body.
fn custom(body: &[u8]) -> Result<(&str, &[u8]), String> {
    let (len, start) = leb_u32(body, 0)?;
    let end = start.checked_add(len as usize).filter(|&end| end <= body.len()).ok_or("custom section name too long")?;
    let name = std::str::from_utf8(&body[start..end]).map_err(|_| "custom section name is not UTF-8")?;
    Ok((name, &body[end..]))
}

/// Reads an unsigned LEB128 `u32` at `pos`; returns it and the position after it.
fn leb_u32(bytes: &[u8], mut pos: usize) -> Result<(u32, usize), String> {
    let mut value: u64 = 0;
    for shift in (0..35).step_by(7) {
        let byte = *bytes.get(pos).ok_or("truncated LEB128 number")?;
        pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return u32::try_from(value).map(|v| (v, pos)).map_err(|_| "LEB128 number too large".into());
        }
    }
    Err("LEB128 number too long".into())
}

fn push_leb_u32(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Parses the records of a `duet.maps.v1` payload.
fn parse_records(mut payload: &[u8]) -> Result<Vec<(u32, MapEntry)>, String> {
    let mut records = Vec::new();
    while !payload.is_empty() {
        if payload.len() < RECORD_HEADER || &payload[..4] != RECORD_MAGIC {
            return Err(format!("corrupt {RECORDS_SECTION} section (a record does not start with DMAP)"));
        }
        let word = |i: usize| {
            u32::from_le_bytes([payload[4 + i * 4], payload[5 + i * 4], payload[6 + i * 4], payload[7 + i * 4]])
        };
        let len = word(0) as usize;
        if len < RECORD_HEADER || len > payload.len() {
            return Err(format!("corrupt {RECORDS_SECTION} section (record length {len})"));
        }
        let name = std::str::from_utf8(&payload[RECORD_HEADER..len])
            .map_err(|_| format!("corrupt {RECORDS_SECTION} section (a map name is not UTF-8)"))?;
        let entry = MapEntry {
            name: name.to_owned(),
            map_type: word(2),
            key_size: word(3),
            value_size: word(4),
            max_entries: word(5),
            flags: word(6),
        };
        records.push((word(1), entry));
        payload = &payload[len..];
    }
    Ok(records)
}

/// Turns the map records of a freshly linked module into the `duet.maps` manifest section.
///
/// Returns the finished module and its maps in id order. Fails if the ids are not exactly
/// `0..n` (maps declared in a library crate of the program get ids of their own crate, which
/// collide) or two maps share a name. A module without records gets an empty manifest; a module
/// that already has a `duet.maps` section (finished before) is returned unchanged.
pub fn finish_module(module: &[u8]) -> Result<(Vec<u8>, Vec<MapEntry>), String> {
    let sections = sections(module)?;
    let mut records = Vec::new();
    for s in &sections {
        if s.id == CUSTOM_SECTION {
            let (name, payload) = custom(&module[s.body.0..s.body.1])?;
            if name == MANIFEST_SECTION && !sections.iter().any(|s| is_custom(module, s, RECORDS_SECTION)) {
                let maps = serde_json::from_slice(payload)
                    .map_err(|e| format!("the {MANIFEST_SECTION} section is not a valid manifest: {e}"))?;
                return Ok((module.to_vec(), maps));
            }
            if name == RECORDS_SECTION {
                records.extend(parse_records(payload)?);
            }
        }
    }
    records.sort_by_key(|(id, _)| *id);
    for (index, (id, entry)) in records.iter().enumerate() {
        if *id as usize != index {
            return Err(format!(
                "map ids are not 0..{n}: `{}` has id {id}; declare every #[duet::map] in the program crate \
                 itself (maps in library crates get ids that collide)",
                entry.name,
                n = records.len()
            ));
        }
        if records[..index].iter().any(|(_, other)| other.name == entry.name) {
            return Err(format!("two maps are named `{}`", entry.name));
        }
    }
    let maps: Vec<MapEntry> = records.into_iter().map(|(_, entry)| entry).collect();
    let json = serde_json::to_vec(&maps).map_err(|e| format!("cannot write the manifest: {e}"))?;

    let mut out = Vec::with_capacity(module.len() + json.len() + 16);
    out.extend_from_slice(WASM_HEADER);
    for s in &sections {
        if !is_custom(module, s, RECORDS_SECTION) {
            out.extend_from_slice(&module[s.whole.0..s.whole.1]);
        }
    }
    let mut body = Vec::with_capacity(json.len() + 16);
    push_leb_u32(&mut body, MANIFEST_SECTION.len() as u32);
    body.extend_from_slice(MANIFEST_SECTION.as_bytes());
    body.extend_from_slice(&json);
    out.push(CUSTOM_SECTION);
    push_leb_u32(&mut out, body.len() as u32);
    out.extend_from_slice(&body);
    Ok((out, maps))
}

fn is_custom(module: &[u8], s: &Section, wanted: &str) -> bool {
    s.id == CUSTOM_SECTION && custom(&module[s.body.0..s.body.1]).is_ok_and(|(name, _)| name == wanted)
}

/// The manifest of a finished module; `None` when it has no `duet.maps` section.
pub fn read_manifest(module: &[u8]) -> Result<Option<Vec<MapEntry>>, String> {
    for s in sections(module)? {
        if s.id == CUSTOM_SECTION {
            let (name, payload) = custom(&module[s.body.0..s.body.1])?;
            if name == MANIFEST_SECTION {
                let maps = serde_json::from_slice(payload)
                    .map_err(|e| format!("the {MANIFEST_SECTION} section is not a valid manifest: {e}"))?;
                return Ok(Some(maps));
            }
        }
    }
    Ok(None)
}

/// The names of a module's exports, in order.
pub fn export_names(module: &[u8]) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for s in sections(module)?.into_iter().filter(|s| s.id == EXPORT_SECTION) {
        let body = &module[s.body.0..s.body.1];
        let (count, mut pos) = leb_u32(body, 0)?;
        for _ in 0..count {
            let (len, start) = leb_u32(body, pos)?;
            let end =
                start.checked_add(len as usize).filter(|&end| end <= body.len()).ok_or("truncated export name")?;
            names.push(String::from_utf8_lossy(&body[start..end]).into_owned());
            // The kind byte, then the index.
            body.get(end).ok_or("truncated export")?;
            let (_, next) = leb_u32(body, end + 1)?;
            pos = next;
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u32, name: &str, map_type: u32) -> Vec<u8> {
        let mut r = b"DMAP".to_vec();
        for word in [(RECORD_HEADER + name.len()) as u32, id, map_type, 4, 8, 16, 0] {
            r.extend_from_slice(&word.to_le_bytes());
        }
        r.extend_from_slice(name.as_bytes());
        r
    }

    fn custom_section(name: &str, payload: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        push_leb_u32(&mut body, name.len() as u32);
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(payload);
        let mut s = vec![CUSTOM_SECTION];
        push_leb_u32(&mut s, body.len() as u32);
        s.extend(body);
        s
    }

    fn module(sections: &[Vec<u8>]) -> Vec<u8> {
        let mut m = WASM_HEADER.to_vec();
        for s in sections {
            m.extend_from_slice(s);
        }
        m
    }

    #[test]
    fn records_become_a_manifest_in_id_order() {
        let payload = [record(1, "B", 2), record(0, "A", 1)].concat();
        let input = module(&[custom_section("other", b"x"), custom_section(RECORDS_SECTION, &payload)]);
        let (out, maps) = finish_module(&input).unwrap();
        assert_eq!(maps.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["A", "B"]);
        let manifest = read_manifest(&out).unwrap().unwrap();
        assert_eq!(manifest, maps);
        let text = serde_json::to_string(&manifest).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"[{"name":"A","type":1,"key_size":4,"value_size":8,"max_entries":16,"flags":0},"#,
                r#"{"name":"B","type":2,"key_size":4,"value_size":8,"max_entries":16,"flags":0}]"#
            )
        );
        // The records are gone, the other section stayed, and finishing again changes nothing.
        assert!(!out.windows(RECORDS_SECTION.len()).any(|w| w == RECORDS_SECTION.as_bytes()));
        assert!(out.windows(5).any(|w| w == b"other"));
        assert_eq!(finish_module(&out).unwrap().0, out);
    }

    #[test]
    fn colliding_ids_and_names_are_errors() {
        let dup_id = module(&[custom_section(RECORDS_SECTION, &[record(0, "A", 1), record(0, "B", 1)].concat())]);
        assert!(finish_module(&dup_id).unwrap_err().contains("ids are not 0..2"));
        let dup_name = module(&[custom_section(RECORDS_SECTION, &[record(0, "A", 1), record(1, "A", 1)].concat())]);
        assert!(finish_module(&dup_name).unwrap_err().contains("two maps are named `A`"));
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        assert!(finish_module(b"nope").is_err());
        let mut truncated = module(&[custom_section(RECORDS_SECTION, &record(0, "A", 1))]);
        truncated.truncate(truncated.len() - 3);
        assert!(finish_module(&truncated).is_err());
        let bad = module(&[custom_section(RECORDS_SECTION, b"DMAPxxxx")]);
        assert!(finish_module(&bad).is_err());
        assert!(export_names(&module(&[vec![EXPORT_SECTION, 2, 5, 1]])).is_err());
    }

    #[test]
    fn no_records_give_an_empty_manifest() {
        let (out, maps) = finish_module(&module(&[])).unwrap();
        assert!(maps.is_empty());
        assert_eq!(read_manifest(&out).unwrap(), Some(vec![]));
    }
}
