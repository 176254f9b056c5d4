//! Renaming program sections inside BTF.ext, for [`super::kernel_object`].
//!
//! `.BTF.ext` groups its function, line and CO-RE records by the section they belong to, named
//! by an offset into `.BTF`'s string table (`struct btf_ext_info_sec`: `sec_name_off`,
//! `num_info`, then the records; kernel `Documentation/bpf/btf.rst`, "BTF Ext Section"). When a
//! program section is renamed for aya, its groups must name the new section, or aya finds no
//! function record for the program itself. The new names are appended to `.BTF`'s string table
//! (copied to the end of the file, as the section-name table is), and every group naming an
//! old name is pointed at the new one. Anything unexpected leaves the object as it was.

use super::HeaderTable;

/// The magic number `.BTF.ext`'s header starts with (as `.BTF`'s does).
const BTF_MAGIC: u16 = 0xeb9f;

/// Points the BTF.ext record groups of each renamed section (`(old, new)`) at its new name.
pub(super) fn rename_sections(
    copy: &mut Vec<u8>,
    table: &HeaderTable,
    btf: usize,
    ext: usize,
    renames: &[(&str, &str)],
) {
    if renames.is_empty() {
        return;
    }
    let _ = try_rename(copy, table, btf, ext, renames);
}

fn try_rename(copy: &mut Vec<u8>, table: &HeaderTable, btf: usize, ext: usize, renames: &[(&str, &str)]) -> Option<()> {
    let little = matches!(table.endian, object::Endianness::Little);
    let u16_at = |b: &[u8], at: usize| -> Option<u16> {
        let w: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if little { u16::from_le_bytes(w) } else { u16::from_be_bytes(w) })
    };
    let u32_at = |b: &[u8], at: usize| -> Option<u32> {
        let w: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if little { u32::from_le_bytes(w) } else { u32::from_be_bytes(w) })
    };
    let put_u32 = |b: &mut [u8], at: usize, v: u32| -> Option<()> {
        let dst = b.get_mut(at..at.checked_add(4)?)?;
        dst.copy_from_slice(&if little { v.to_le_bytes() } else { v.to_be_bytes() });
        Some(())
    };
    let range = |index: usize| -> Option<std::ops::Range<usize>> {
        let start = usize::try_from(table.read(copy, index, 24, 8)?).ok()?;
        let len = usize::try_from(table.read(copy, index, 32, 8)?).ok()?;
        Some(start..start.checked_add(len)?)
    };

    // The string table, which must end the BTF blob so that names can be appended to it.
    let blob = copy.get(range(btf)?)?.to_vec();
    let strings = crate::btf_string_range(&blob)?;
    let (strings_start, strings_end) = (strings.start, strings.end);
    if strings_end != blob.len() {
        return None;
    }
    let string_at = |off: u32| -> Option<&[u8]> {
        let rest = blob.get(strings_start.checked_add(usize::try_from(off).ok()?)?..strings_end)?;
        rest.get(..rest.iter().position(|&b| b == 0)?)
    };

    // The groups to repoint, found before anything is changed.
    let ext_range = range(ext)?;
    let ext_bytes = copy.get(ext_range.clone())?;
    if u16_at(ext_bytes, 0)? != BTF_MAGIC {
        return None;
    }
    let ext_hdr = usize::try_from(u32_at(ext_bytes, 4)?).ok()?;
    // func_info, line_info and (with a 32-byte header) CO-RE relocation records.
    let mut subsections =
        vec![(u32_at(ext_bytes, 8)?, u32_at(ext_bytes, 12)?), (u32_at(ext_bytes, 16)?, u32_at(ext_bytes, 20)?)];
    if ext_hdr >= 32 {
        subsections.push((u32_at(ext_bytes, 24)?, u32_at(ext_bytes, 28)?));
    }
    let mut patches: Vec<(usize, usize)> = Vec::new(); // (offset of sec_name_off in .BTF.ext, rename index)
    for (off, len) in subsections {
        if len == 0 {
            continue;
        }
        let start = ext_hdr.checked_add(usize::try_from(off).ok()?)?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        if end > ext_bytes.len() {
            return None;
        }
        let record_size = usize::try_from(u32_at(ext_bytes, start)?).ok()?;
        let mut at = start.checked_add(4)?;
        while at < end {
            let name = string_at(u32_at(ext_bytes, at)?)?;
            let count = usize::try_from(u32_at(ext_bytes, at + 4)?).ok()?;
            if let Some(k) = renames.iter().position(|(old, _)| old.as_bytes() == name) {
                patches.push((at, k));
            }
            at = at.checked_add(8)?.checked_add(count.checked_mul(record_size)?)?;
        }
        if at != end {
            return None;
        }
    }
    if patches.is_empty() {
        return Some(());
    }

    // The new names at the end of the string table, the blob copied to the end of the file.
    let mut new_blob = blob.clone();
    let mut new_offsets = Vec::with_capacity(renames.len());
    for (_, new) in renames {
        new_offsets.push(u32::try_from(new_blob.len() - strings_start).ok()?);
        new_blob.extend_from_slice(new.as_bytes());
        new_blob.push(0);
    }
    let new_str_len = u32::try_from(new_blob.len() - strings_start).ok()?;
    put_u32(&mut new_blob, 20, new_str_len)?;
    for (at, k) in patches {
        put_u32(copy, ext_range.start + at, new_offsets[k])?;
    }
    while !copy.len().is_multiple_of(8) {
        copy.push(0);
    }
    let at = copy.len() as u64;
    copy.extend_from_slice(&new_blob);
    table.write(copy, btf, 24, 8, at);
    table.write(copy, btf, 32, 8, new_blob.len() as u64);
    Some(())
}
