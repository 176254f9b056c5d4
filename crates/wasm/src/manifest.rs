//! Reading a `.wasm` file before wasmtime sees it: the custom sections, and the `duet.maps`
//! manifest in them (docs/ABI.md, "Maps").

use duet_maps::{MapSpec, MapType};
use serde::Deserialize;

use crate::WasmError;

/// The name of the custom section holding the map manifest.
pub const MAPS_SECTION: &str = "duet.maps";

/// One entry of the manifest, exactly as docs/ABI.md spells it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    #[serde(rename = "type")]
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    #[serde(default)]
    flags: u32,
}

/// The map specs of a module, in manifest order (a map's id is its index). A module without a
/// `duet.maps` section has no maps.
pub(crate) fn map_specs(wasm: &[u8]) -> Result<Vec<MapSpec>, WasmError> {
    match maps_section(wasm)? {
        Some(payload) => parse(payload),
        None => Ok(Vec::new()),
    }
}

/// The payload of the module's `duet.maps` section, if it has one.
pub(crate) fn maps_section(wasm: &[u8]) -> Result<Option<&[u8]>, WasmError> {
    let mut manifest = None;
    for (name, payload) in custom_sections(wasm)? {
        if name == MAPS_SECTION {
            if manifest.is_some() {
                return Err(manifest_error(format!("more than one `{MAPS_SECTION}` section")));
            }
            manifest = Some(payload);
        }
    }
    Ok(manifest)
}

/// The map specs of a `duet.maps` section's payload (the JSON of docs/ABI.md).
pub(crate) fn parse(payload: &[u8]) -> Result<Vec<MapSpec>, WasmError> {
    let entries: Vec<Entry> = serde_json::from_slice(payload).map_err(|e| manifest_error(e.to_string()))?;
    let mut specs: Vec<MapSpec> = Vec::with_capacity(entries.len());
    for (id, e) in entries.into_iter().enumerate() {
        if specs.iter().any(|s| s.name == e.name) {
            return Err(manifest_error(format!("map `{}` is declared twice", e.name)));
        }
        let map_type = MapType::from_raw(e.map_type).ok_or_else(|| {
            manifest_error(format!("map {id} `{}` has type {}, which duet-maps does not implement", e.name, e.map_type))
        })?;
        specs.push(MapSpec {
            name: e.name,
            map_type,
            key_size: e.key_size,
            value_size: e.value_size,
            max_entries: e.max_entries,
            flags: e.flags,
        });
    }
    Ok(specs)
}

fn manifest_error(reason: String) -> WasmError {
    WasmError::Manifest { reason }
}

/// Every custom section of a core Wasm module, as `(name, payload)`, in file order. Only the
/// section framing is read; wasmtime validates everything else.
fn custom_sections(wasm: &[u8]) -> Result<Vec<(&str, &[u8])>, WasmError> {
    const MAGIC: &[u8; 4] = b"\0asm";
    const CORE_VERSION: [u8; 4] = [1, 0, 0, 0];
    let invalid = |reason: &str| WasmError::Invalid { reason: reason.to_owned() };
    if wasm.len() < 8 || &wasm[..4] != MAGIC {
        return Err(invalid("not a WebAssembly module (no `\\0asm` magic)"));
    }
    if wasm[4..8] != CORE_VERSION {
        return Err(invalid("not a core WebAssembly module (a component, or an unknown binary version)"));
    }
    let mut sections = Vec::new();
    let mut rest = &wasm[8..];
    while let Some((&id, after_id)) = rest.split_first() {
        let (size, after_size) = read_u32(after_id).ok_or_else(|| invalid("truncated section header"))?;
        let size = size as usize;
        if size > after_size.len() {
            return Err(invalid("a section runs past the end of the file"));
        }
        let (body, next) = after_size.split_at(size);
        if id == 0 {
            let (name_len, after_len) = read_u32(body).ok_or_else(|| invalid("truncated custom section name"))?;
            let name_len = name_len as usize;
            if name_len > after_len.len() {
                return Err(invalid("a custom section's name runs past the section"));
            }
            let (name, payload) = after_len.split_at(name_len);
            let name = std::str::from_utf8(name).map_err(|_| invalid("a custom section's name is not UTF-8"))?;
            sections.push((name, payload));
        }
        rest = next;
    }
    Ok(sections)
}

/// Reads an unsigned LEB128 `u32`; `None` if truncated or too long.
fn read_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let mut value: u32 = 0;
    for (i, &b) in bytes.iter().enumerate().take(5) {
        let bits = u32::from(b & 0x7f);
        if i == 4 && bits > 0x0f {
            return None;
        }
        value |= bits << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    fn module_with(sections: &[(&str, &[u8])]) -> Vec<u8> {
        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        for (name, payload) in sections {
            let mut body = Vec::new();
            leb(name.len(), &mut body);
            body.extend_from_slice(name.as_bytes());
            body.extend_from_slice(payload);
            wasm.push(0);
            leb(body.len(), &mut wasm);
            wasm.extend_from_slice(&body);
        }
        wasm
    }

    #[test]
    fn reads_the_manifest() {
        let json = br#"[{"name":"BLOCKED","type":1,"key_size":4,"value_size":1,"max_entries":1024,"flags":0}]"#;
        let wasm = module_with(&[("other", b"x"), (MAPS_SECTION, json)]);
        let specs = map_specs(&wasm).expect("valid manifest");
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].name, "BLOCKED");
        assert_eq!(specs[0].map_type, MapType::Hash);
        assert_eq!((specs[0].key_size, specs[0].value_size, specs[0].max_entries), (4, 1, 1024));
    }

    #[test]
    fn no_section_means_no_maps() {
        assert!(map_specs(&module_with(&[])).expect("empty module").is_empty());
    }

    #[test]
    fn rejects_bad_manifests() {
        let cases: [(&[u8], &str); 4] = [
            (br#"[{"name":"A","type":4,"key_size":4,"value_size":4,"max_entries":1}]"#, "type 4"),
            (br#"[{"name":"A","type":1,"key_size":4,"value_size":4,"max_entries":1,"pin":1}]"#, "unknown field"),
            (
                br#"[{"name":"A","type":2,"key_size":4,"value_size":4,"max_entries":1},
                 {"name":"A","type":2,"key_size":4,"value_size":4,"max_entries":1}]"#,
                "declared twice",
            ),
            (b"[", "EOF"),
        ];
        for (json, want) in cases {
            let err = map_specs(&module_with(&[(MAPS_SECTION, json)])).expect_err("bad manifest").to_string();
            assert!(err.contains(want), "{err:?} should mention {want:?}");
        }
    }

    #[test]
    fn rejects_non_modules() {
        assert!(map_specs(b"\x7fELF....").is_err());
        assert!(map_specs(b"\0asm\x0d\0\x01\0").is_err(), "a component");
        assert!(map_specs(b"\0asm\x01\0\0\0\0\x7f").is_err(), "section past the end");
    }
}
