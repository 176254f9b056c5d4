//! Map key and value types from the object's `.BTF` section, and typed JSON for their bytes.
//!
//! A BTF-defined map is a variable in the `.maps` data section whose type is a struct with
//! members such as `type`, `key`, `value` and `max_entries`; `key` and `value` are pointers to
//! the key and value types (docs/ABI.md, the kernel's Documentation/bpf/btf.rst). This module
//! reads the section itself (aya-obj keeps its BTF type API private), resolves those two
//! pointee types into a [`TypeLayout`], and renders bytes of that layout as JSON and back, as
//! bpftool shows map contents.
//!
//! Reading is bounded and never fails the object: little-endian BTF only, at most
//! [`MAX_TYPES`] types, nesting at most [`MAX_DEPTH`] deep (which also ends cycles through
//! typedefs), at most [`MAX_NODES`] nodes per layout. Anything corrupt, truncated, out of range
//! or inconsistent (a member outside its struct, a bitfield wider than its type) gives no layout
//! for that map, never an error or a panic.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The most types read from one `.BTF` section; a larger section gives no types.
pub const MAX_TYPES: usize = 1 << 20;
/// The deepest nesting of types (members, elements, typedefs and qualifiers) a layout may have.
pub const MAX_DEPTH: u32 = 32;
/// The most nodes (types, members, variants) one layout may hold.
pub const MAX_NODES: usize = 1 << 16;
/// The largest layout size, in bytes (a map value is at most a few MiB).
const MAX_SIZE: u64 = 1 << 26;

/// The shape of a map's key or value, resolved from BTF (typedefs, `const`, `volatile`,
/// `restrict` and type tags resolved through).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TypeLayout {
    /// An integer of `size` bytes (1, 2, 4, 8 or 16), little-endian.
    Int {
        /// Bytes.
        size: u32,
        /// Two's complement.
        signed: bool,
    },
    /// A one-byte boolean (`_Bool`, Rust's `bool`).
    Bool,
    /// An IEEE 754 float of 4 or 8 bytes.
    Float {
        /// Bytes.
        size: u32,
    },
    /// An enumeration stored as an integer of `size` bytes.
    Enum {
        /// The enum's name (empty when anonymous).
        name: String,
        /// Bytes: 1, 2, 4 or 8.
        size: u32,
        /// Whether the stored integer is signed.
        signed: bool,
        /// The named values.
        variants: Vec<EnumVariant>,
    },
    /// A struct: members at byte offsets (bitfields at bit offsets).
    Struct {
        /// The struct's name (empty when anonymous).
        name: String,
        /// Bytes, padding included.
        size: u32,
        /// Members, in declaration order.
        members: Vec<Member>,
    },
    /// A union: every member at offset 0 (or its bit offset).
    Union {
        /// The union's name (empty when anonymous).
        name: String,
        /// Bytes.
        size: u32,
        /// Members, in declaration order.
        members: Vec<Member>,
    },
    /// `len` elements of `elem`, back to back.
    Array {
        /// The element type.
        elem: Box<TypeLayout>,
        /// How many.
        len: u32,
    },
    /// A pointer (8 bytes on BPF); shown as its address.
    Pointer,
    /// Bytes of a type duet does not show typed (a half float, a zero-sized array); hex.
    Opaque {
        /// Bytes.
        size: u32,
    },
}

/// One named value of an [`TypeLayout::Enum`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnumVariant {
    /// Its name.
    pub name: String,
    /// Its value's 64 bits (two's complement, sign-extended, when the enum is signed).
    pub value: u64,
}

/// One member of a struct or union.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its name; an anonymous member is called `__anon<index>`.
    pub name: String,
    /// Byte offset from the start of the struct (for a bitfield, the byte holding its first bit).
    pub offset: u32,
    /// For a bitfield: where its bits are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitfield: Option<Bitfield>,
    /// Its type (an integer, bool or enum for a bitfield).
    pub ty: TypeLayout,
}

/// Where a bitfield's bits are: `bits` bits starting at bit `bit_offset` of the struct, counted
/// from the least significant bit of its first byte (little-endian).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bitfield {
    /// Bit offset from the start of the struct.
    pub bit_offset: u32,
    /// Width in bits, 1..=64.
    pub bits: u32,
}

/// The key and value layouts of one BTF-defined map, as its BTF declares them (before any check
/// against the map's sizes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct MapTypes {
    pub key: Option<TypeLayout>,
    pub value: Option<TypeLayout>,
}

// === impl TypeLayout ===

impl TypeLayout {
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        match self {
            TypeLayout::Int { size, .. }
            | TypeLayout::Float { size }
            | TypeLayout::Enum { size, .. }
            | TypeLayout::Struct { size, .. }
            | TypeLayout::Union { size, .. }
            | TypeLayout::Opaque { size } => u64::from(*size),
            TypeLayout::Bool => 1,
            TypeLayout::Array { elem, len } => elem.size().saturating_mul(u64::from(*len)),
            TypeLayout::Pointer => 8,
        }
    }

    /// Checks that the layout is one [`TypeLayout`]s read from BTF can be: integer, float and
    /// enum sizes the kernel allows, members and bitfields inside their struct, bitfields of
    /// 1..=64 bits on integers, bools and enums, arrays of sized elements, at most
    /// [`MAX_DEPTH`] deep, [`MAX_NODES`] nodes and 64 MiB. Layouts that come from elsewhere
    /// than this module's BTF reader (a deserialised record, e.g. what `duet attach` stored
    /// beside pinned maps) are checked before [`to_json`](Self::to_json) or
    /// [`from_json`](Self::from_json) meet them, which assume these rules.
    pub fn check(&self) -> Result<(), String> {
        let mut nodes = 0;
        self.check_at(0, &mut nodes)
    }

    fn check_at(&self, depth: u32, nodes: &mut usize) -> Result<(), String> {
        *nodes += 1;
        if depth > MAX_DEPTH || *nodes > MAX_NODES {
            return Err("the type is nested too deeply or has too many parts".into());
        }
        if self.size() > MAX_SIZE {
            return Err(format!("{} is larger than {MAX_SIZE} bytes", self.type_name()));
        }
        match self {
            TypeLayout::Int { size, .. } if !matches!(size, 1 | 2 | 4 | 8 | 16) => {
                Err(format!("an integer of {size} bytes"))
            }
            TypeLayout::Float { size } if !matches!(size, 4 | 8) => Err(format!("a float of {size} bytes")),
            TypeLayout::Enum { size, variants, .. } => {
                if !matches!(size, 1 | 2 | 4 | 8) {
                    return Err(format!("an enum of {size} bytes"));
                }
                *nodes += variants.len();
                if *nodes > MAX_NODES { Err("the type has too many parts".into()) } else { Ok(()) }
            }
            TypeLayout::Struct { size, members, .. } | TypeLayout::Union { size, members, .. } => {
                for m in members {
                    m.ty.check_at(depth + 1, nodes)?;
                    let fits = match m.bitfield {
                        Some(bf) => {
                            let scalar =
                                matches!(m.ty, TypeLayout::Int { .. } | TypeLayout::Bool | TypeLayout::Enum { .. });
                            scalar
                                && (1..=64).contains(&bf.bits)
                                && u64::from(bf.bits) <= m.ty.size() * 8
                                && u64::from(bf.bit_offset) + u64::from(bf.bits) <= u64::from(*size) * 8
                        }
                        None => u64::from(m.offset) + m.ty.size() <= u64::from(*size),
                    };
                    if !fits {
                        return Err(format!("member `{}` of {} lies outside it", m.name, self.type_name()));
                    }
                }
                Ok(())
            }
            TypeLayout::Array { elem, .. } => {
                elem.check_at(depth + 1, nodes)?;
                if elem.size() == 0 { Err("an array of zero-sized elements".into()) } else { Ok(()) }
            }
            _ => Ok(()),
        }
    }

    /// A short name of the type for listings: `u32`, `i64`, `bool`, `f64`, `struct Client`,
    /// `enum Verdict`, `[u8; 32]`, `pointer`, `opaque(3)`.
    pub fn type_name(&self) -> String {
        match self {
            TypeLayout::Int { size, signed } => format!("{}{}", if *signed { "i" } else { "u" }, size * 8),
            TypeLayout::Bool => "bool".into(),
            TypeLayout::Float { size } => format!("f{}", size * 8),
            TypeLayout::Enum { name, .. } => named("enum", name),
            TypeLayout::Struct { name, .. } => named("struct", name),
            TypeLayout::Union { name, .. } => named("union", name),
            TypeLayout::Array { elem, len } => format!("[{}; {len}]", elem.type_name()),
            TypeLayout::Pointer => "pointer".into(),
            TypeLayout::Opaque { size } => format!("opaque({size})"),
        }
    }

    /// `bytes` as JSON: integers as numbers (wider than 64 bits as decimal strings), bools,
    /// floats (non-finite ones as `"NaN"`, `"inf"`, `"-inf"`), enums as the name of the variant
    /// with that value (else the number), structs and unions as objects of their members (a
    /// Rust newtype, a struct whose only member is `__0`, as that member), arrays as arrays,
    /// byte arrays holding printable UTF-8 followed only by zero bytes as a string, pointers as
    /// numbers, opaque bytes as hex. Bytes of the wrong length are shown as hex.
    pub fn to_json(&self, bytes: &[u8]) -> Value {
        if bytes.len() as u64 != self.size() {
            return Value::String(hex(bytes));
        }
        self.render(bytes)
    }

    /// The bytes a JSON value describes, the inverse of [`to_json`](Self::to_json): padding and
    /// missing struct members are zero, a shorter array or string is zero-padded; an unknown
    /// member, a too-long array or string, an integer out of its field's range or a value of the
    /// wrong kind is an error naming its path from `root` (`value.id[3]`). Integers are also
    /// accepted as decimal strings, bools as 0 and 1, opaque bytes as hex or byte arrays.
    pub fn from_json(&self, v: &Value, root: &str) -> Result<Vec<u8>, String> {
        let size = usize::try_from(self.size()).map_err(|_| format!("{root}: the type is too large"))?;
        let mut out = vec![0u8; size];
        self.write(v, &mut out, root)?;
        Ok(out)
    }

    /// Whether `v` is meant as a typed value of this layout rather than as one of the untyped
    /// encodings duet also accepts for keys and values (hex strings, unsigned integers,
    /// `{"utf8": "..."}`, byte arrays). The rule, for every caller:
    ///
    /// - an object is typed, except exactly `{"utf8": <string>}`;
    /// - an array is typed when the type (through a newtype) is an array of elements other than
    ///   single bytes; otherwise it is a byte array;
    /// - a number is typed when the type is an integer, bool, enum, float or pointer;
    /// - `true`/`false` are typed;
    /// - a string is typed unless it is made only of hex digits (whitespace and a `0x` prefix
    ///   allowed): those are raw bytes, whatever their number, so a hex key of the wrong length
    ///   is a size error rather than text. Text made only of hex digits (`"cafe"`) is given as
    ///   `{"utf8": "cafe"}`, or typed inside an object.
    pub fn reads_as_typed(&self, v: &Value) -> bool {
        let inner = self.unwrap_newtype();
        match v {
            Value::Object(o) => !(o.len() == 1 && o.get("utf8").is_some_and(Value::is_string)),
            Value::Array(_) => matches!(inner, TypeLayout::Array { elem, .. } if !elem.is_byte()),
            Value::Number(_) => matches!(
                inner,
                TypeLayout::Int { .. }
                    | TypeLayout::Bool
                    | TypeLayout::Enum { .. }
                    | TypeLayout::Float { .. }
                    | TypeLayout::Pointer
            ),
            Value::Bool(_) => true,
            Value::String(s) => !looks_like_hex(s),
            Value::Null => false,
        }
    }

    /// A newtype (a struct whose only member is `__0`, at offset 0, of the struct's size) is
    /// shown and read as its member.
    fn unwrap_newtype(&self) -> &TypeLayout {
        let mut t = self;
        for _ in 0..MAX_DEPTH {
            match t {
                TypeLayout::Struct { members, size, .. }
                    if members.len() == 1
                        && members[0].name == "__0"
                        && members[0].offset == 0
                        && members[0].bitfield.is_none()
                        && members[0].ty.size() == u64::from(*size) =>
                {
                    t = &members[0].ty;
                }
                _ => break,
            }
        }
        t
    }

    fn is_byte(&self) -> bool {
        matches!(self, TypeLayout::Int { size: 1, .. })
    }

    /// Renders `bytes`, which are `self.size()` long.
    fn render(&self, bytes: &[u8]) -> Value {
        match self {
            // A 16-byte unsigned value may exceed `i128::MAX`: printed from its unsigned bits.
            TypeLayout::Int { size: 16, signed: false } => {
                Value::String((read_int(bytes, 16, false) as u128).to_string())
            }
            TypeLayout::Int { size, signed } => int_json(read_int(bytes, *size as usize, *signed), *size <= 8),
            TypeLayout::Bool => match bytes.first() {
                Some(0) => Value::Bool(false),
                Some(1) => Value::Bool(true),
                Some(other) => Value::from(*other),
                None => Value::Null,
            },
            TypeLayout::Float { size } => float_json(bytes, *size),
            TypeLayout::Enum { size, signed, variants, .. } => {
                let v = read_int(bytes, *size as usize, *signed);
                enum_json(v, variants)
            }
            TypeLayout::Struct { .. } if !std::ptr::eq(self.unwrap_newtype(), self) => {
                self.unwrap_newtype().render(bytes)
            }
            TypeLayout::Struct { members, .. } | TypeLayout::Union { members, .. } => {
                let mut out = serde_json::Map::new();
                for m in members {
                    out.insert(m.name.clone(), m.render(bytes));
                }
                Value::Object(out)
            }
            TypeLayout::Array { elem, len } => {
                if elem.is_byte()
                    && let Some(text) = printable_text(bytes)
                {
                    return Value::String(text.to_owned());
                }
                let step = elem.size() as usize;
                if step == 0 {
                    return Value::Array(Vec::new());
                }
                bytes.chunks_exact(step).take(*len as usize).map(|chunk| elem.render(chunk)).collect()
            }
            TypeLayout::Pointer => Value::from(read_int(bytes, 8, false) as u64),
            TypeLayout::Opaque { .. } => Value::String(hex(bytes)),
        }
    }

    /// Writes `v` into `out`, which is `self.size()` long and zeroed.
    fn write(&self, v: &Value, out: &mut [u8], path: &str) -> Result<(), String> {
        match self {
            TypeLayout::Int { size, signed } => {
                let n = parse_int(v, path)?;
                let bits = size * 8;
                let raw = fit(n, bits, *signed).ok_or_else(|| out_of_range(v, path, &self.type_name()))?;
                out.copy_from_slice(&raw.to_le_bytes()[..*size as usize]);
                Ok(())
            }
            TypeLayout::Bool => {
                let b = match v {
                    Value::Bool(b) => *b,
                    Value::Number(n) if n.as_u64() == Some(0) => false,
                    Value::Number(n) if n.as_u64() == Some(1) => true,
                    _ => return Err(format!("{path}: expected true or false, not {v}")),
                };
                out[0] = u8::from(b);
                Ok(())
            }
            TypeLayout::Float { size } => {
                let f = match v {
                    Value::Number(n) => n.as_f64().ok_or_else(|| format!("{path}: {n} is not a number"))?,
                    Value::String(s) if s == "NaN" => f64::NAN,
                    Value::String(s) if s == "inf" => f64::INFINITY,
                    Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
                    _ => return Err(format!("{path}: expected a number (or \"NaN\", \"inf\", \"-inf\"), not {v}")),
                };
                if *size == 4 {
                    if f.is_finite() && f.abs() > f64::from(f32::MAX) {
                        return Err(format!("{path}: {f} does not fit in f32"));
                    }
                    out.copy_from_slice(&(f as f32).to_le_bytes());
                } else {
                    out.copy_from_slice(&f.to_le_bytes());
                }
                Ok(())
            }
            TypeLayout::Enum { size, signed, variants, name } => {
                let raw = match v {
                    Value::String(s) if !s.is_empty() && !s.starts_with(|c: char| c == '-' || c.is_ascii_digit()) => {
                        let variant = variants.iter().find(|e| e.name == *s).ok_or_else(|| {
                            let names: Vec<&str> = variants.iter().map(|e| e.name.as_str()).collect();
                            format!(
                                "{path}: {s:?} is not a variant of {}; it has: {}",
                                named("enum", name),
                                names.join(", ")
                            )
                        })?;
                        u128::from(variant.value)
                    }
                    _ => {
                        let n = parse_int(v, path)?;
                        fit(n, size * 8, *signed).ok_or_else(|| out_of_range(v, path, &self.type_name()))?
                    }
                };
                out.copy_from_slice(&raw.to_le_bytes()[..*size as usize]);
                Ok(())
            }
            TypeLayout::Struct { .. } if !std::ptr::eq(self.unwrap_newtype(), self) => {
                self.unwrap_newtype().write(v, out, path)
            }
            TypeLayout::Struct { members, name, .. } | TypeLayout::Union { members, name, .. } => {
                let is_union = matches!(self, TypeLayout::Union { .. });
                let what = if is_union { named("union", name) } else { named("struct", name) };
                let Value::Object(fields) = v else {
                    return Err(format!("{path}: expected an object of the members of {what}, not {v}"));
                };
                let unknown: Vec<&str> =
                    fields.keys().filter(|k| !members.iter().any(|m| m.name == **k)).map(String::as_str).collect();
                if !unknown.is_empty() {
                    let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
                    return Err(format!(
                        "{path}: {what} has no member {}; its members are: {}",
                        unknown.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "),
                        names.join(", ")
                    ));
                }
                if is_union && fields.len() > 1 {
                    return Err(format!("{path}: give one member of {what}, not {}", fields.len()));
                }
                for m in members {
                    if let Some(field) = fields.get(&m.name) {
                        m.write(field, out, &format!("{path}.{}", m.name))?;
                    }
                }
                Ok(())
            }
            TypeLayout::Array { elem, len } => {
                match v {
                    Value::String(s) if elem.is_byte() => {
                        if s.len() > *len as usize {
                            return Err(format!("{path}: the text is {} bytes; the array holds {len}", s.len()));
                        }
                        out[..s.len()].copy_from_slice(s.as_bytes());
                    }
                    Value::Array(items) => {
                        if items.len() > *len as usize {
                            return Err(format!("{path}: {} elements; the array holds {len}", items.len()));
                        }
                        let step = elem.size() as usize;
                        for (i, item) in items.iter().enumerate() {
                            let slot = out
                                .get_mut(i * step..(i + 1) * step)
                                .ok_or_else(|| format!("{path}[{i}]: outside the array"))?;
                            elem.write(item, slot, &format!("{path}[{i}]"))?;
                        }
                    }
                    _ if elem.is_byte() => return Err(format!("{path}: expected a string or an array, not {v}")),
                    _ => return Err(format!("{path}: expected an array, not {v}")),
                }
                Ok(())
            }
            TypeLayout::Pointer => {
                let n = parse_int(v, path)?;
                let raw = fit(n, 64, false).ok_or_else(|| out_of_range(v, path, "a pointer"))?;
                out.copy_from_slice(&raw.to_le_bytes()[..8]);
                Ok(())
            }
            TypeLayout::Opaque { size } => {
                let bytes = match v {
                    Value::String(s) => unhex(s).ok_or_else(|| format!("{path}: {s:?} is not hex"))?,
                    Value::Array(items) => items
                        .iter()
                        .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                        .collect::<Option<Vec<u8>>>()
                        .ok_or_else(|| format!("{path}: an array must hold byte values 0..=255"))?,
                    _ => return Err(format!("{path}: expected {size} bytes as hex, not {v}")),
                };
                if bytes.len() != out.len() {
                    return Err(format!("{path}: {} bytes; the field is {size}", bytes.len()));
                }
                out.copy_from_slice(&bytes);
                Ok(())
            }
        }
    }
}

fn named(what: &str, name: &str) -> String {
    if name.is_empty() { format!("{what} (anonymous)") } else { format!("{what} {name}") }
}

// === impl Member ===

impl Member {
    /// The member's value within the whole struct's `bytes`.
    fn render(&self, bytes: &[u8]) -> Value {
        match self.bitfield {
            Some(bf) => {
                let raw = read_bits(bytes, bf.bit_offset, bf.bits);
                let signed =
                    matches!(self.ty, TypeLayout::Int { signed: true, .. } | TypeLayout::Enum { signed: true, .. });
                let v = if signed && bf.bits < 64 && raw >> (bf.bits - 1) & 1 == 1 {
                    i128::from((raw | (u64::MAX << bf.bits)) as i64)
                } else if signed {
                    i128::from(raw as i64)
                } else {
                    i128::from(raw)
                };
                match &self.ty {
                    TypeLayout::Enum { variants, .. } => enum_json(v, variants),
                    TypeLayout::Bool if raw <= 1 => Value::Bool(raw == 1),
                    _ => int_json(v, true),
                }
            }
            None => {
                let start = self.offset as usize;
                let end = start.saturating_add(self.ty.size() as usize);
                match bytes.get(start..end) {
                    Some(b) => self.ty.render(b),
                    None => Value::Null,
                }
            }
        }
    }

    /// Writes the member's value into the whole struct's `out`.
    fn write(&self, v: &Value, out: &mut [u8], path: &str) -> Result<(), String> {
        match self.bitfield {
            Some(bf) => {
                let signed =
                    matches!(self.ty, TypeLayout::Int { signed: true, .. } | TypeLayout::Enum { signed: true, .. });
                let raw = match (&self.ty, v) {
                    (TypeLayout::Bool, Value::Bool(b)) => u128::from(*b),
                    (TypeLayout::Enum { variants, .. }, Value::String(s)) if variants.iter().any(|e| e.name == *s) => {
                        let value = variants.iter().find(|e| e.name == *s).map_or(0, |e| e.value);
                        let raw = if signed { value as i64 as i128 } else { i128::from(value) };
                        fit(raw, bf.bits, signed)
                            .ok_or_else(|| format!("{path}: variant {s} does not fit in {} bits", bf.bits))?
                    }
                    _ => {
                        let n = parse_int(v, path)?;
                        let kind = if signed { "signed" } else { "unsigned" };
                        fit(n, bf.bits, signed)
                            .ok_or_else(|| out_of_range(v, path, &format!("a {}-bit {kind} bitfield", bf.bits)))?
                    }
                };
                write_bits(out, bf.bit_offset, bf.bits, raw as u64);
                Ok(())
            }
            None => {
                let start = self.offset as usize;
                let end = start.saturating_add(self.ty.size() as usize);
                let slot = out.get_mut(start..end).ok_or_else(|| format!("{path}: outside its struct"))?;
                self.ty.write(v, slot, path)
            }
        }
    }
}

// === reading and writing scalars ===

/// A little-endian integer of `size` (≤ 16) bytes, sign-extended when `signed`.
fn read_int(bytes: &[u8], size: usize, signed: bool) -> i128 {
    let mut buf = [0u8; 16];
    let n = size.min(16).min(bytes.len());
    buf[..n].copy_from_slice(&bytes[..n]);
    let raw = u128::from_le_bytes(buf);
    if signed && n > 0 && n < 16 {
        let shift = 128 - 8 * n as u32;
        ((raw << shift) as i128) >> shift
    } else {
        raw as i128
    }
}

/// An integer as JSON: a number when it fits in 64 bits and `as_number` (sizes up to 8 bytes),
/// else a decimal string.
fn int_json(v: i128, as_number: bool) -> Value {
    if as_number {
        if let Ok(v) = u64::try_from(v) {
            return Value::from(v);
        }
        if let Ok(v) = i64::try_from(v) {
            return Value::from(v);
        }
    }
    Value::String(v.to_string())
}

fn enum_json(v: i128, variants: &[EnumVariant]) -> Value {
    // Variant values are stored as 64 bits, sign-extended for signed enums.
    let bits = v as u64;
    match variants.iter().find(|e| e.value == bits) {
        Some(e) => Value::String(e.name.clone()),
        None => int_json(v, true),
    }
}

fn float_json(bytes: &[u8], size: u32) -> Value {
    let f = match (size, bytes) {
        (4, [a, b, c, d]) => f64::from(f32::from_le_bytes([*a, *b, *c, *d])),
        (8, b) if b.len() == 8 => {
            let mut buf = [0u8; 8];
            buf.copy_from_slice(b);
            f64::from_le_bytes(buf)
        }
        _ => return Value::String(hex(bytes)),
    };
    if f.is_nan() {
        Value::String("NaN".into())
    } else if f.is_infinite() {
        Value::String(if f > 0.0 { "inf" } else { "-inf" }.into())
    } else {
        Value::from(f)
    }
}

/// An integer from JSON: a number without fraction, or a decimal string (for 128-bit fields).
fn parse_int(v: &Value, path: &str) -> Result<i128, String> {
    match v {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Ok(i128::from(u))
            } else if let Some(i) = n.as_i64() {
                Ok(i128::from(i))
            } else {
                Err(format!("{path}: {n} is not an integer"))
            }
        }
        Value::String(s) => {
            let t = s.trim();
            t.parse::<i128>()
                .or_else(|_| t.parse::<u128>().map(|u| u as i128))
                .map_err(|_| format!("{path}: {s:?} is not an integer"))
        }
        _ => Err(format!("{path}: expected an integer, not {v}")),
    }
}

/// `n` as the two's complement bits of a `bits`-bit field, if it is in the field's range. A
/// 128-bit unsigned value above `i128::MAX` arrives as a negative `i128` from [`parse_int`],
/// which only a decimal string can produce; it is accepted as its bits.
fn fit(n: i128, bits: u32, signed: bool) -> Option<u128> {
    if bits == 0 || bits > 128 {
        return None;
    }
    if bits == 128 {
        return Some(n as u128);
    }
    let ok = if signed {
        let half = 1i128 << (bits - 1);
        (-half..half).contains(&n)
    } else {
        n >= 0 && (n as u128) < (1u128 << bits)
    };
    ok.then(|| (n as u128) & ((1u128 << bits) - 1))
}

fn out_of_range(v: &Value, path: &str, ty: &str) -> String {
    format!("{path}: {v} does not fit in {ty}")
}

fn read_bits(bytes: &[u8], bit_offset: u32, bits: u32) -> u64 {
    let mut v = 0u64;
    for i in 0..bits.min(64) {
        let at = (bit_offset + i) as usize;
        let bit = bytes.get(at / 8).map_or(0, |b| (b >> (at % 8)) & 1);
        v |= u64::from(bit) << i;
    }
    v
}

fn write_bits(out: &mut [u8], bit_offset: u32, bits: u32, v: u64) {
    for i in 0..bits.min(64) {
        let at = (bit_offset + i) as usize;
        if let Some(b) = out.get_mut(at / 8) {
            let mask = 1u8 << (at % 8);
            if (v >> i) & 1 == 1 {
                *b |= mask;
            } else {
                *b &= !mask;
            }
        }
    }
}

/// The text of a byte array that holds printable UTF-8 followed only by zero bytes.
fn printable_text(bytes: &[u8]) -> Option<&str> {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    if bytes[end..].iter().any(|b| *b != 0) {
        return None;
    }
    let text = std::str::from_utf8(&bytes[..end]).ok()?;
    (!text.chars().any(char::is_control)).then_some(text)
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Hex digits to bytes (whitespace and a `0x` prefix allowed).
fn unhex(s: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = s.trim().trim_start_matches("0x").bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks_exact(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(text, 16).ok()
        })
        .collect()
}

/// Whether `s` is made only of hex digits (at least one; whitespace and a `0x` prefix allowed).
fn looks_like_hex(s: &str) -> bool {
    let mut digits = s.trim().trim_start_matches("0x").bytes().filter(|b| !b.is_ascii_whitespace()).peekable();
    digits.peek().is_some() && digits.all(|b| b.is_ascii_hexdigit())
}

// === BTF ===

/// BTF type kinds (`BTF_KIND_*`, kernel `Documentation/bpf/btf.rst`), shared with other BTF
/// readers in the workspace.
pub mod kind {
    pub const KIND_INT: u32 = 1;
    pub const KIND_PTR: u32 = 2;
    pub const KIND_ARRAY: u32 = 3;
    pub const KIND_STRUCT: u32 = 4;
    pub const KIND_UNION: u32 = 5;
    pub const KIND_ENUM: u32 = 6;
    pub const KIND_FWD: u32 = 7;
    pub const KIND_TYPEDEF: u32 = 8;
    pub const KIND_VOLATILE: u32 = 9;
    pub const KIND_CONST: u32 = 10;
    pub const KIND_RESTRICT: u32 = 11;
    pub const KIND_FUNC: u32 = 12;
    pub const KIND_FUNC_PROTO: u32 = 13;
    pub const KIND_VAR: u32 = 14;
    pub const KIND_DATASEC: u32 = 15;
    pub const KIND_FLOAT: u32 = 16;
    pub const KIND_DECL_TAG: u32 = 17;
    pub const KIND_TYPE_TAG: u32 = 18;
    pub const KIND_ENUM64: u32 = 19;
}
use kind::*;

/// `BTF_INT_SIGNED` and `BTF_INT_BOOL` in an INT's encoding.
const INT_SIGNED: u32 = 1;
const INT_BOOL: u32 = 4;

/// One type record: the 12-byte common part and the bytes that follow it.
#[derive(Clone, Copy)]
struct RawType<'a> {
    name_off: u32,
    kind: u32,
    vlen: u32,
    kind_flag: bool,
    /// `size` or `type`, depending on the kind.
    size_or_type: u32,
    extra: &'a [u8],
}

impl RawType<'_> {
    /// The `i`-th 32-bit word after the common part.
    fn word(&self, i: usize) -> Option<u32> {
        le32(self.extra, i * 4)
    }
}

/// A parsed `.BTF` section: every type record by id (id 0, `void`, has none).
struct Btf<'a> {
    types: Vec<RawType<'a>>,
    strings: &'a [u8],
}

fn le32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

impl<'a> Btf<'a> {
    /// Parses the header and walks the type records; `None` for anything but well-formed
    /// little-endian BTF of at most [`MAX_TYPES`] types.
    fn parse(btf: &'a [u8]) -> Option<Btf<'a>> {
        if btf.get(..2)? != [0x9f, 0xeb] {
            return None;
        }
        let hdr_len = le32(btf, 4)? as usize;
        if hdr_len < 24 {
            return None;
        }
        let body = btf.get(hdr_len..)?;
        let section = |off: u32, len: u32| -> Option<&'a [u8]> {
            let start = off as usize;
            body.get(start..start.checked_add(len as usize)?)
        };
        let types_bytes = section(le32(btf, 8)?, le32(btf, 12)?)?;
        let strings = section(le32(btf, 16)?, le32(btf, 20)?)?;
        let mut types = Vec::new();
        let mut at = 0usize;
        while at < types_bytes.len() {
            if types.len() >= MAX_TYPES {
                return None;
            }
            let name_off = le32(types_bytes, at)?;
            let info = le32(types_bytes, at + 4)?;
            let size_or_type = le32(types_bytes, at + 8)?;
            let kind = (info >> 24) & 0x1f;
            let vlen = info & 0xffff;
            let extra_len = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_FUNC
                | KIND_FLOAT | KIND_TYPE_TAG => 0,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen as usize,
                KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen as usize,
                _ => return None,
            };
            let start = at + 12;
            let extra = types_bytes.get(start..start.checked_add(extra_len)?)?;
            types.push(RawType { name_off, kind, vlen, kind_flag: info >> 31 == 1, size_or_type, extra });
            at = start + extra_len;
        }
        Some(Btf { types, strings })
    }

    fn get(&self, id: u32) -> Option<&RawType<'a>> {
        self.types.get((id as usize).checked_sub(1)?)
    }

    fn name(&self, off: u32) -> String {
        let Some(tail) = self.strings.get(off as usize..) else { return String::new() };
        let end = tail.iter().position(|b| *b == 0).unwrap_or(tail.len());
        String::from_utf8_lossy(&tail[..end]).into_owned()
    }

    /// Follows typedefs, qualifiers and type tags from `id` to the type they name.
    fn skip_modifiers(&self, mut id: u32) -> Option<(u32, &RawType<'a>)> {
        for _ in 0..=MAX_DEPTH {
            let t = self.get(id)?;
            match t.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => id = t.size_or_type,
                _ => return Some((id, t)),
            }
        }
        None
    }

    /// The key and value types of every map declared in `.maps`, by variable name.
    fn map_types(&self) -> HashMap<String, MapTypes> {
        let mut out = HashMap::new();
        let Some(datasec) = self.types.iter().find(|t| t.kind == KIND_DATASEC && self.name(t.name_off) == ".maps")
        else {
            return out;
        };
        for i in 0..datasec.vlen as usize {
            let Some(var_id) = le32(datasec.extra, i * 12) else { break };
            let Some(var) = self.get(var_id).filter(|v| v.kind == KIND_VAR) else { continue };
            let Some((_, def)) = self.skip_modifiers(var.size_or_type) else { continue };
            if def.kind != KIND_STRUCT {
                continue;
            }
            let mut types = MapTypes::default();
            for m in 0..def.vlen as usize {
                let (Some(name_off), Some(ty)) = (def.word(m * 3), def.word(m * 3 + 1)) else { break };
                let slot = match self.name(name_off).as_str() {
                    "key" => &mut types.key,
                    "value" => &mut types.value,
                    _ => continue,
                };
                let Some((_, ptr)) = self.skip_modifiers(ty) else { continue };
                if ptr.kind != KIND_PTR {
                    continue;
                }
                *slot = Resolver { btf: self, nodes: 0 }.layout(ptr.size_or_type, 0);
            }
            out.insert(self.name(var.name_off), types);
        }
        out
    }
}

/// Resolves type ids into layouts, counting nodes against [`MAX_NODES`].
struct Resolver<'b, 'a> {
    btf: &'b Btf<'a>,
    nodes: usize,
}

impl Resolver<'_, '_> {
    fn layout(&mut self, id: u32, depth: u32) -> Option<TypeLayout> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return None;
        }
        let t = *self.btf.get(id)?;
        let layout = match t.kind {
            KIND_INT => {
                let size = t.size_or_type;
                let encoding = t.word(0)? >> 24 & 0xf;
                if !matches!(size, 1 | 2 | 4 | 8 | 16) {
                    return None;
                }
                if encoding & INT_BOOL != 0 && size == 1 {
                    TypeLayout::Bool
                } else {
                    TypeLayout::Int { size, signed: encoding & INT_SIGNED != 0 }
                }
            }
            KIND_PTR => TypeLayout::Pointer,
            KIND_ARRAY => {
                let elem = self.layout(t.word(0)?, depth + 1)?;
                let len = t.word(2)?;
                if elem.size() == 0 {
                    TypeLayout::Opaque { size: 0 }
                } else {
                    TypeLayout::Array { elem: Box::new(elem), len }
                }
            }
            KIND_STRUCT | KIND_UNION => self.aggregate(&t, depth)?,
            KIND_ENUM | KIND_ENUM64 => {
                let size = t.size_or_type;
                if !matches!(size, 1 | 2 | 4 | 8) {
                    return None;
                }
                let signed = t.kind_flag;
                let mut variants = Vec::with_capacity(t.vlen as usize);
                for i in 0..t.vlen as usize {
                    self.nodes += 1;
                    if self.nodes > MAX_NODES {
                        return None;
                    }
                    let value = if t.kind == KIND_ENUM {
                        let v = t.word(i * 2 + 1)?;
                        if signed { v as i32 as i64 as u64 } else { u64::from(v) }
                    } else {
                        u64::from(t.word(i * 3 + 1)?) | u64::from(t.word(i * 3 + 2)?) << 32
                    };
                    let name_off = if t.kind == KIND_ENUM { t.word(i * 2)? } else { t.word(i * 3)? };
                    variants.push(EnumVariant { name: self.btf.name(name_off), value });
                }
                TypeLayout::Enum { name: self.btf.name(t.name_off), size, signed, variants }
            }
            KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                self.layout(t.size_or_type, depth + 1)?
            }
            KIND_FLOAT => match t.size_or_type {
                4 | 8 => TypeLayout::Float { size: t.size_or_type },
                size @ (2 | 12 | 16) => TypeLayout::Opaque { size },
                _ => return None,
            },
            _ => return None,
        };
        (layout.size() <= MAX_SIZE).then_some(layout)
    }

    fn aggregate(&mut self, t: &RawType<'_>, depth: u32) -> Option<TypeLayout> {
        let size = t.size_or_type;
        let mut members = Vec::with_capacity(t.vlen as usize);
        for i in 0..t.vlen as usize {
            let (name_off, ty, offset) = (t.word(i * 3)?, t.word(i * 3 + 1)?, t.word(i * 3 + 2)?);
            let (bit_offset, mut bits) = if t.kind_flag { (offset & 0xff_ffff, offset >> 24) } else { (offset, 0) };
            let mut bit_offset = bit_offset;
            // A bitfield in the old encoding: the member's INT type carries its own bit offset and
            // width.
            if bits == 0
                && let Some((_, int)) = self.btf.skip_modifiers(ty)
                && int.kind == KIND_INT
            {
                let encoding = int.word(0)?;
                let (int_offset, int_bits) = (encoding >> 16 & 0xff, encoding & 0xff);
                if int_offset != 0 || int_bits != int.size_or_type.saturating_mul(8) {
                    bit_offset = bit_offset.checked_add(int_offset)?;
                    bits = int_bits;
                }
            }
            let layout = self.layout(ty, depth + 1)?;
            let name = match self.btf.name(name_off) {
                n if n.is_empty() => format!("__anon{i}"),
                n => n,
            };
            let bitfield = if bits > 0 {
                let scalar = matches!(layout, TypeLayout::Int { .. } | TypeLayout::Bool | TypeLayout::Enum { .. });
                let end = u64::from(bit_offset) + u64::from(bits);
                if !scalar || bits > 64 || u64::from(bits) > layout.size() * 8 || end > u64::from(size) * 8 {
                    return None;
                }
                Some(Bitfield { bit_offset, bits })
            } else {
                if bit_offset % 8 != 0 || u64::from(bit_offset / 8) + layout.size() > u64::from(size) {
                    return None;
                }
                None
            };
            members.push(Member { name, offset: bit_offset / 8, bitfield, ty: layout });
        }
        let name = self.btf.name(t.name_off);
        Some(if t.kind == KIND_STRUCT {
            TypeLayout::Struct { name, size, members }
        } else {
            TypeLayout::Union { name, size, members }
        })
    }
}

/// The key and value types of every BTF-defined map of an ELF object, by map name; empty when the
/// object has no `.BTF` section or it cannot be read.
pub(crate) fn map_types(elf: &[u8]) -> HashMap<String, MapTypes> {
    use object::{Object as _, ObjectSection as _};
    let Ok(file) = object::File::parse(elf) else { return HashMap::new() };
    let Some(data) = file.section_by_name(".BTF").and_then(|s| s.data().ok()) else { return HashMap::new() };
    map_types_from_btf(data)
}

/// [`map_types`] from the bytes of a `.BTF` section.
pub(crate) fn map_types_from_btf(btf: &[u8]) -> HashMap<String, MapTypes> {
    Btf::parse(btf).map(|b| b.map_types()).unwrap_or_default()
}

#[cfg(test)]
mod tests;
