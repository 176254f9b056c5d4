//! The order of an object's maps: the order the program declared them in, where the object
//! records it.
//!
//! A `.bpf.o` built by rustc and bpf-linker does not keep declaration order: bpf-linker lays out
//! `.maps`, BTF and debug info by name. The duet SDK (`#[duet::map]`) therefore records each
//! map's id — the same id its `.wasm` gives the map, in declaration order — in a section of
//! duet's own: `duet.map_order.<id>` holds the line `<id> <name>\n` (docs/ABI.md). One section
//! per map, because each record gets a section and a BTF DATASEC of its own, which the kernel
//! accepts only when the record is all of its section.
//!
//! [`Object::maps`](crate::Object::maps) lists the maps with a record by id, then every other
//! map by name: the global data of an SDK object (`.bss`, `.rodata`, ...), and all maps of an
//! object without records (C objects, objects from other SDKs), which keep the name order duet
//! always used. Malformed records are ignored (such maps fall back to name order).

use std::collections::BTreeMap;

use object::{Object as _, ObjectSection as _};

/// The prefix of the sections holding the records; the id follows it.
pub const MAP_ORDER_SECTION_PREFIX: &str = "duet.map_order.";

/// Sorts map `names` into the object's order: maps with a record by id, then the others by name.
pub(crate) fn sort(names: &mut [String], bytes: &[u8]) {
    let ids = declared_ids(bytes);
    names.sort_by_cached_key(|name| (ids.get(name).copied().unwrap_or(u32::MAX), name.clone()));
}

/// The id each map's record gives it, by map name (a name recorded twice keeps its lowest id).
pub fn declared_ids(bytes: &[u8]) -> BTreeMap<String, u32> {
    let mut ids = BTreeMap::new();
    let Ok(file) = object::File::parse(bytes) else { return ids };
    for section in file.sections() {
        let Ok(name) = section.name() else { continue };
        if !name.starts_with(MAP_ORDER_SECTION_PREFIX) {
            continue;
        }
        let Ok(data) = section.data() else { continue };
        let Ok(text) = std::str::from_utf8(data) else { continue };
        for line in text.lines() {
            let Some((id, map)) = line.split_once(' ') else { continue };
            let Ok(id) = id.parse::<u32>() else { continue };
            if id == u32::MAX || map.is_empty() {
                continue;
            }
            let slot = ids.entry(map.to_owned()).or_insert(id);
            *slot = (*slot).min(id);
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use object::write::Object as Writer;
    use object::{Architecture, BinaryFormat, Endianness, SectionKind};

    use super::*;

    fn elf(records: &[(&str, &[u8])]) -> Vec<u8> {
        let mut obj = Writer::new(BinaryFormat::Elf, Architecture::Bpf, Endianness::Little);
        for (name, data) in records {
            let id = obj.add_section(Vec::new(), name.as_bytes().to_vec(), SectionKind::ReadOnlyData);
            obj.append_section_data(id, data, 1);
        }
        obj.write().unwrap()
    }

    fn sorted(names: &[&str], bytes: &[u8]) -> Vec<String> {
        let mut names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        sort(&mut names, bytes);
        names
    }

    #[test]
    fn recorded_maps_come_by_id_the_others_after_them_by_name() {
        let bytes = elf(&[
            ("duet.map_order.1", b"1 NEW_FLOWS\n"),
            ("duet.map_order.0", b"0 FLOWS\n"),
            ("duet.map_order.2", b"2 ENDED_FLOWS\n"),
        ]);
        let all = ["ENDED_FLOWS", "FLOWS", "NEW_FLOWS", ".bss", ".rodata"];
        assert_eq!(sorted(&all, &bytes), ["FLOWS", "NEW_FLOWS", "ENDED_FLOWS", ".bss", ".rodata"]);
    }

    #[test]
    fn without_records_or_with_malformed_ones_maps_keep_name_order() {
        let all = ["B", "C", "A"];
        assert_eq!(sorted(&all, &elf(&[])), ["A", "B", "C"]);
        assert_eq!(sorted(&all, b"not an ELF file"), ["A", "B", "C"]);
        let bad = elf(&[
            ("duet.map_order.0", b"\xff C\n"),
            ("duet.map_order.1", b"x C\n"),
            ("duet.map_order.2", b"4294967295 C\nB\n3 \n"),
            ("duet.map_order.3", b"\xff\xfe"),
            ("other.section", b"0 C\n"),
        ]);
        assert_eq!(sorted(&all, &bad), ["A", "B", "C"]);
    }

    #[test]
    fn a_name_recorded_twice_keeps_its_lowest_id() {
        let bytes = elf(&[("duet.map_order.0", b"5 A\n1 B\n"), ("duet.map_order.1", b"2 A\n")]);
        assert_eq!(declared_ids(&bytes), BTreeMap::from([("A".to_owned(), 2), ("B".to_owned(), 1)]));
        assert_eq!(sorted(&["A", "B"], &bytes), ["B", "A"]);
    }
}
