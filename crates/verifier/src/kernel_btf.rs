//! The kernel's own types (vmlinux BTF), for the one kind of access the kernel checks against
//! them that duet verifies: reads of a map's kernel structure through its handle
//! (`((struct bpf_map *)&my_map)->max_entries`, the kernel's `check_ptr_to_map_access`).
//!
//! The kernel checks such a read against the map type's own structure (`struct bpf_array` for
//! arrays, `struct bpf_htab` for hashes, ...; each starts with its `struct bpf_map`) as it walks
//! any BTF-typed pointer (`btf_struct_walk`): nested structs and unions are entered, arrays
//! indexed, a read inside an integer, enum or float member gives a number, a read of a pointer
//! member (exactly the pointer) gives a kernel pointer, anything else is refused. [`KernelBtf`]
//! holds a parsed BTF blob and answers that question, [`FieldRead`].
//!
//! Reading is bounded and never panics: little-endian BTF only, at most [`MAX_TYPES`] types,
//! nesting at most [`MAX_DEPTH`] deep; anything malformed is an error string, never a panic.
//! aya-obj parses BTF too, but keeps its types' members private (as duet-object's
//! `btf_types.rs` found), so this module reads the records itself.
//!
//! Where the BTF comes from is the caller's choice ([`crate::KernelTypes`]); by default it is
//! this machine's `/sys/kernel/btf/vmlinux`, read once, the first time a program needs it
//! ([`running_kernel`]) — the verifier's only I/O.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::helpers::map_type;

/// Where the running kernel publishes its BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";
/// The most types read from one blob (vmlinux has about 150,000).
pub const MAX_TYPES: usize = 1 << 21;
/// The deepest nesting of types (structs within structs, typedefs, qualifiers) walked.
pub const MAX_DEPTH: u32 = 64;

use duet_object::btf_types::kind::*;

/// A parsed BTF blob: its bytes, where each type record starts, and the structs by name.
pub struct KernelBtf {
    data: Arc<[u8]>,
    /// Byte range of the type section and of the string section within `data`.
    types_at: usize,
    strings: (usize, usize),
    /// Offset (within the type section) of type `id`'s record, at index `id - 1`.
    records: Vec<u32>,
    /// Named structs by name (the first of each name).
    structs: HashMap<String, u32>,
}

impl fmt::Debug for KernelBtf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KernelBtf({} types, {} structs, {} bytes)", self.records.len(), self.structs.len(), self.data.len())
    }
}

/// What a read of a kernel structure gives, as the kernel's `btf_struct_access` decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldRead {
    /// A number (an integer, enum or float member, a bitfield, or bytes of an integer array).
    Scalar,
    /// The pointer member of this name, read whole: the kernel gives a BTF-typed pointer.
    Pointer(String),
    /// Not a readable field, in the kernel's words.
    Refused(String),
}

/// One type record's common part.
#[derive(Clone, Copy)]
struct Record {
    name_off: u32,
    kind: u32,
    vlen: u32,
    kind_flag: bool,
    size_or_type: u32,
    /// Offset of the bytes after the 12-byte common part, within `data`.
    extra: usize,
}

fn le32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

// === impl KernelBtf ===

impl KernelBtf {
    /// Parses a BTF blob (`/sys/kernel/btf/vmlinux`'s contents).
    pub fn parse(data: impl Into<Arc<[u8]>>) -> Result<KernelBtf, String> {
        let data: Arc<[u8]> = data.into();
        let bad = |what: &str| format!("malformed BTF: {what}");
        if data.get(..2) != Some(&[0x9f, 0xeb][..]) {
            return Err(bad("no little-endian BTF magic"));
        }
        let word = |at| le32(&data, at).ok_or_else(|| bad("truncated header"));
        let hdr_len = word(4)? as usize;
        if hdr_len < 24 {
            return Err(bad("header too short"));
        }
        let section = |off: u32, len: u32| -> Result<(usize, usize), String> {
            let start = hdr_len.checked_add(off as usize).ok_or_else(|| bad("section offset"))?;
            let end = start.checked_add(len as usize).filter(|e| *e <= data.len()).ok_or_else(|| bad("section"))?;
            Ok((start, end))
        };
        let (types_at, types_end) = section(word(8)?, word(12)?)?;
        let strings = section(word(16)?, word(20)?)?;
        let mut btf = KernelBtf { data: data.clone(), types_at, strings, records: Vec::new(), structs: HashMap::new() };
        let mut at = types_at;
        while at < types_end {
            if btf.records.len() >= MAX_TYPES {
                return Err(bad("too many types"));
            }
            let rec = btf.record_at(at).ok_or_else(|| bad("truncated type record"))?;
            let extra_len = match rec.kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_FUNC
                | KIND_FLOAT | KIND_TYPE_TAG => 0,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * rec.vlen as usize,
                KIND_ENUM | KIND_FUNC_PROTO => 8 * rec.vlen as usize,
                other => return Err(bad(&format!("unknown type kind {other}"))),
            };
            let next =
                rec.extra.checked_add(extra_len).filter(|n| *n <= types_end).ok_or_else(|| bad("type record"))?;
            btf.records.push(u32::try_from(at - types_at).map_err(|_| bad("type section too large"))?);
            if rec.kind == KIND_STRUCT && rec.name_off != 0 {
                let id = btf.records.len() as u32;
                let name = btf.name(rec.name_off).to_owned();
                btf.structs.entry(name).or_insert(id);
            }
            at = next;
        }
        Ok(btf)
    }

    /// The id of the struct called `name`.
    pub fn struct_id(&self, name: &str) -> Option<u32> {
        self.structs.get(name).copied()
    }

    /// The byte offset of the member called `name` of struct `id` (not inside nested members).
    pub fn member_offset(&self, id: u32, name: &str) -> Option<u32> {
        let (_, t) = self.skip_modifiers(id)?;
        (0..t.vlen).find_map(|i| {
            let (mname, _, bit_off, _) = self.member(&t, i)?;
            (self.name(mname) == name).then_some(bit_off / 8)
        })
    }

    /// The size in bytes of struct `id`.
    pub fn struct_size(&self, id: u32) -> Option<u32> {
        self.skip_modifiers(id).map(|(_, t)| t.size_or_type)
    }

    /// What a `size`-byte read at byte `off` of struct `id` gives, as the kernel's
    /// `btf_struct_walk` decides (without its relaxations for untrusted pointers, which only
    /// ever accept more: duet may refuse what the kernel accepts there, never the reverse).
    pub fn read_field(&self, id: u32, off: u32, size: u32) -> FieldRead {
        self.walk(id, off, size).unwrap_or_else(FieldRead::Refused)
    }

    fn walk(&self, mut id: u32, mut off: u32, size: u32) -> Result<FieldRead, String> {
        let corrupt = || "vmlinux BTF is malformed here".to_owned();
        for _ in 0..MAX_DEPTH {
            let (_, t) = self.skip_modifiers(id).ok_or_else(corrupt)?;
            let tname = self.name(t.name_off);
            if !matches!(t.kind, KIND_STRUCT | KIND_UNION) {
                return Err(format!("type '{tname}' is not a struct"));
            }
            let end = u64::from(off) + u64::from(size);
            if end > u64::from(t.size_or_type) {
                // Past the end: only into a trailing flexible array (of integers, or of
                // structs, whose element the offset then falls in).
                let beyond = || format!("access beyond struct {tname} at off {off} size {size}");
                let Some(last) = t.vlen.checked_sub(1) else { return Err(beyond()) };
                let (_, mty, bit_off, _) = self.member(&t, last).ok_or_else(corrupt)?;
                let (_, arr) = self.skip_modifiers(mty).ok_or_else(corrupt)?;
                if arr.kind != KIND_ARRAY || self.word(&arr, 2).ok_or_else(corrupt)? != 0 || off < bit_off / 8 {
                    return Err(beyond());
                }
                let (elem_id, elem) =
                    self.skip_modifiers(self.word(&arr, 0).ok_or_else(corrupt)?).ok_or_else(corrupt)?;
                if elem.kind == KIND_INT {
                    return Ok(FieldRead::Scalar);
                }
                if elem.kind != KIND_STRUCT && elem.kind != KIND_UNION || elem.size_or_type == 0 {
                    return Err(beyond());
                }
                off = (off - bit_off / 8) % elem.size_or_type;
                id = elem_id;
                continue;
            }
            let mut descend = None;
            for i in 0..t.vlen {
                let (mname, mty, bit_off, bitfield) = self.member(&t, i).ok_or_else(corrupt)?;
                let mut moff = bit_off / 8;
                if end <= u64::from(moff) {
                    break;
                }
                if bitfield != 0 {
                    // The whole bitfield, read from its first byte or before, is a number; a
                    // part of one is not a field the kernel finds.
                    let end_byte = (u64::from(bit_off) + u64::from(bitfield)).div_ceil(8);
                    if off <= moff && end_byte <= end {
                        return Ok(FieldRead::Scalar);
                    }
                    continue;
                }
                if off < moff {
                    break;
                }
                let (msize, mut elem_id, nelems) =
                    self.resolve_size(mty).ok_or_else(|| format!("field {} doesn't have size", self.name(mname)))?;
                let true_end = u64::from(moff) + msize;
                if u64::from(off) >= true_end {
                    continue;
                }
                let mut msize = msize;
                if nelems.is_some() {
                    let n = u64::from(nelems.unwrap_or(1));
                    if msize == 0 || n == 0 {
                        continue;
                    }
                    msize /= n;
                    let idx = (u64::from(off - moff)) / msize;
                    moff = u32::try_from(u64::from(moff) + idx * msize).map_err(|_| corrupt())?;
                } else {
                    elem_id = mty;
                }
                let (mid, mtype) = self.skip_modifiers(elem_id).ok_or_else(corrupt)?;
                match mtype.kind {
                    KIND_STRUCT | KIND_UNION => {
                        descend = Some((mid, off - moff));
                        break;
                    }
                    KIND_PTR => {
                        let name = self.name(mname).to_owned();
                        if msize != u64::from(size) || off != moff {
                            return Err(format!(
                                "cannot access ptr member {name} with moff {moff} in struct {tname} with off {off} size {size}"
                            ));
                        }
                        return Ok(FieldRead::Pointer(name));
                    }
                    KIND_INT | KIND_ENUM | KIND_ENUM64 | KIND_FLOAT => {
                        if end > true_end {
                            return Err(format!(
                                "access beyond the end of member {} (mend:{true_end}) in struct {tname} with off {off} size {size}",
                                self.name(mname)
                            ));
                        }
                        return Ok(FieldRead::Scalar);
                    }
                    _ => return Err(format!("field {} is not data", self.name(mname))),
                }
            }
            match descend {
                Some((next, next_off)) => {
                    id = next;
                    off = next_off;
                }
                None => return Err(format!("struct {tname} doesn't have field at offset {off}")),
            }
        }
        Err("vmlinux BTF nests too deep here".to_owned())
    }

    /// The size of type `id` in bytes, with, for an array (arrays of arrays flattened), the
    /// innermost element's type id and the number of elements.
    fn resolve_size(&self, id: u32) -> Option<(u64, u32, Option<u32>)> {
        let mut id = id;
        let mut nelems: Option<u64> = None;
        for _ in 0..MAX_DEPTH {
            let (tid, t) = self.skip_modifiers(id)?;
            let size = match t.kind {
                KIND_ARRAY => {
                    let n = u64::from(self.word(&t, 2)?);
                    nelems = Some(nelems.unwrap_or(1).checked_mul(n)?);
                    id = self.word(&t, 0)?;
                    continue;
                }
                KIND_PTR => 8,
                KIND_INT | KIND_ENUM | KIND_ENUM64 | KIND_FLOAT | KIND_STRUCT | KIND_UNION => u64::from(t.size_or_type),
                _ => return None,
            };
            let total = size.checked_mul(nelems.unwrap_or(1))?;
            let n = match nelems {
                None => None,
                Some(n) => Some(u32::try_from(n).ok()?),
            };
            return Some((total, tid, n));
        }
        None
    }

    /// Member `i` of struct or union `t`: name offset, type id, bit offset, bitfield size.
    fn member(&self, t: &Record, i: u32) -> Option<(u32, u32, u32, u32)> {
        let i = i as usize;
        let name = self.word(t, i * 3)?;
        let ty = self.word(t, i * 3 + 1)?;
        let offset = self.word(t, i * 3 + 2)?;
        Some(if t.kind_flag { (name, ty, offset & 0xff_ffff, offset >> 24) } else { (name, ty, offset, 0) })
    }

    fn word(&self, t: &Record, i: usize) -> Option<u32> {
        le32(&self.data, t.extra.checked_add(i.checked_mul(4)?)?)
    }

    fn record_at(&self, at: usize) -> Option<Record> {
        let info = le32(&self.data, at.checked_add(4)?)?;
        Some(Record {
            name_off: le32(&self.data, at)?,
            kind: (info >> 24) & 0x1f,
            vlen: info & 0xffff,
            kind_flag: info >> 31 == 1,
            size_or_type: le32(&self.data, at.checked_add(8)?)?,
            extra: at.checked_add(12)?,
        })
    }

    fn get(&self, id: u32) -> Option<Record> {
        let rel = *self.records.get((id as usize).checked_sub(1)?)?;
        self.record_at(self.types_at.checked_add(rel as usize)?)
    }

    fn skip_modifiers(&self, mut id: u32) -> Option<(u32, Record)> {
        for _ in 0..MAX_DEPTH {
            let t = self.get(id)?;
            match t.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => id = t.size_or_type,
                _ => return Some((id, t)),
            }
        }
        None
    }

    fn name(&self, off: u32) -> &str {
        let (start, end) = self.strings;
        let Some(tail) = self.data.get(start..end).and_then(|s| s.get(off as usize..)) else { return "" };
        let len = tail.iter().position(|b| *b == 0).unwrap_or(tail.len());
        std::str::from_utf8(&tail[..len]).unwrap_or("")
    }
}

/// The kernel structure behind a map of `map_type` (its `map_btf_id`), by name; `None` for map
/// types duet does not know the structure of.
pub fn map_struct_name(map_type: u32) -> Option<&'static str> {
    use map_type::*;
    /// `BPF_MAP_TYPE_BLOOM_FILTER`.
    const BLOOM_FILTER: u32 = 30;
    Some(match map_type {
        HASH | PERCPU_HASH | LRU_HASH | LRU_PERCPU_HASH | HASH_OF_MAPS => "bpf_htab",
        ARRAY | PERCPU_ARRAY | PROG_ARRAY | PERF_EVENT_ARRAY | CGROUP_ARRAY | ARRAY_OF_MAPS => "bpf_array",
        STACK_TRACE => "bpf_stack_map",
        LPM_TRIE => "lpm_trie",
        DEVMAP | DEVMAP_HASH => "bpf_dtab",
        SOCKMAP => "bpf_stab",
        SOCKHASH => "bpf_shtab",
        CPUMAP => "bpf_cpu_map",
        XSKMAP => "xsk_map",
        QUEUE | STACK => "bpf_queue_stack",
        RINGBUF => "bpf_ringbuf_map",
        BLOOM_FILTER => "bpf_bloom_filter",
        _ => return None,
    })
}

/// The running kernel's BTF, read from [`VMLINUX_BTF`] and parsed the first time it is asked
/// for, then kept for the life of the process; the error says why it could not be read.
pub fn running_kernel() -> Result<Arc<KernelBtf>, String> {
    static VMLINUX: OnceLock<Result<Arc<KernelBtf>, String>> = OnceLock::new();
    VMLINUX
        .get_or_init(|| {
            let bytes = std::fs::read(VMLINUX_BTF).map_err(|e| format!("cannot read {VMLINUX_BTF}: {e}"))?;
            KernelBtf::parse(bytes).map(Arc::new).map_err(|e| format!("{VMLINUX_BTF}: {e}"))
        })
        .clone()
}

#[cfg(test)]
mod tests;
