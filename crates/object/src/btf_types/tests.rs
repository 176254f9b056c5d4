use serde_json::json;

use super::*;

/// Assembles `.BTF` sections by hand: types are added in id order (the first is id 1).
#[derive(Default)]
pub(crate) struct BtfBuilder {
    types: Vec<u8>,
    strings: Vec<u8>,
    n_types: u32,
}

impl BtfBuilder {
    pub(crate) fn new() -> Self {
        BtfBuilder { strings: vec![0], ..BtfBuilder::default() }
    }

    pub(crate) fn str(&mut self, s: &str) -> u32 {
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        off
    }

    /// A raw record: the common part and the words that follow; returns its id.
    pub(crate) fn raw(
        &mut self,
        name: &str,
        kind: u32,
        vlen: u32,
        kind_flag: bool,
        size_or_type: u32,
        extra: &[u32],
    ) -> u32 {
        let name_off = if name.is_empty() { 0 } else { self.str(name) };
        let info = (u32::from(kind_flag) << 31) | (kind << 24) | vlen;
        for w in [name_off, info, size_or_type].iter().chain(extra) {
            self.types.extend_from_slice(&w.to_le_bytes());
        }
        self.n_types += 1;
        self.n_types
    }

    pub(crate) fn int(&mut self, name: &str, size: u32, signed: bool) -> u32 {
        self.raw(name, KIND_INT, 0, false, size, &[(u32::from(signed) << 24) | (size * 8)])
    }

    pub(crate) fn ptr(&mut self, to: u32) -> u32 {
        self.raw("", KIND_PTR, 0, false, to, &[])
    }

    pub(crate) fn array(&mut self, elem: u32, index: u32, len: u32) -> u32 {
        self.raw("", KIND_ARRAY, 0, false, 0, &[elem, index, len])
    }

    /// A struct of `(name, type, bit offset, bitfield bits)` members.
    pub(crate) fn strukt(&mut self, name: &str, size: u32, members: &[(&str, u32, u32, u32)]) -> u32 {
        let kind_flag = members.iter().any(|m| m.3 != 0);
        let mut extra = Vec::new();
        for (n, ty, bit_off, bits) in members {
            let name_off = if n.is_empty() { 0 } else { self.str(n) };
            let offset = if kind_flag { (bits << 24) | bit_off } else { *bit_off };
            extra.extend([name_off, *ty, offset]);
        }
        self.raw(name, KIND_STRUCT, members.len() as u32, kind_flag, size, &extra)
    }

    pub(crate) fn var(&mut self, name: &str, ty: u32) -> u32 {
        self.raw(name, KIND_VAR, 0, false, ty, &[1])
    }

    pub(crate) fn datasec(&mut self, name: &str, vars: &[u32]) -> u32 {
        let extra: Vec<u32> = vars.iter().flat_map(|v| [*v, 0, 0]).collect();
        self.raw(name, KIND_DATASEC, vars.len() as u32, false, 0, &extra)
    }

    /// A map definition struct (`type`, `key`, `value`) and its `.maps` variable `name`.
    pub(crate) fn map(&mut self, name: &str, key: u32, value: u32) -> u32 {
        let int = self.int("int", 4, true);
        let one = self.array(int, int, 1);
        let type_ptr = self.ptr(one);
        let key_ptr = self.ptr(key);
        let value_ptr = self.ptr(value);
        let def =
            self.strukt("", 24, &[("type", type_ptr, 0, 0), ("key", key_ptr, 64, 0), ("value", value_ptr, 128, 0)]);
        self.var(name, def)
    }

    pub(crate) fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&[0x9f, 0xeb, 1, 0]);
        for w in [24u32, 0, self.types.len() as u32, self.types.len() as u32, self.strings.len() as u32] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings);
        out
    }
}

/// The apikey example's `Client` (64 bytes) and `ApiKey` newtype, as a `.maps` section with a
/// `KEYS` map.
fn apikey_btf() -> Vec<u8> {
    let mut b = BtfBuilder::new();
    let u8_ = b.int("u8", 1, false);
    let u32_ = b.int("u32", 4, false);
    let u64_ = b.int("u64", 8, false);
    let idx = b.int("usize", 8, false);
    let bytes32 = b.array(u8_, idx, 32);
    let key = b.strukt("ApiKey", 32, &[("__0", bytes32, 0, 0)]);
    let client = b.strukt(
        "Client",
        64,
        &[
            ("requests", u64_, 0, 0),
            ("limited", u64_, 64, 0),
            ("rate", u32_, 128, 0),
            ("burst", u32_, 160, 0),
            ("id_len", u32_, 192, 0),
            ("_pad", u32_, 224, 0),
            ("id", bytes32, 256, 0),
        ],
    );
    let keys = b.map("KEYS", key, client);
    b.datasec(".maps", &[keys]);
    b.build()
}

fn client_bytes() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&7u64.to_le_bytes());
    v.extend_from_slice(&1u64.to_le_bytes());
    v.extend_from_slice(&100u32.to_le_bytes());
    v.extend_from_slice(&20u32.to_le_bytes());
    v.extend_from_slice(&8u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(b"client-a");
    v.extend_from_slice(&id);
    v
}

#[test]
fn a_struct_value_renders_and_parses_back() {
    let types = map_types_from_btf(&apikey_btf());
    let keys = &types["KEYS"];
    let value = keys.value.as_ref().unwrap();
    assert_eq!(value.size(), 64);
    assert_eq!(value.type_name(), "struct Client");
    let bytes = client_bytes();
    let shown = value.to_json(&bytes);
    assert_eq!(
        shown,
        json!({"requests": 7, "limited": 1, "rate": 100, "burst": 20, "id_len": 8, "_pad": 0, "id": "client-a"})
    );
    assert_eq!(value.from_json(&shown, "value").unwrap(), bytes);

    // Missing members are zero.
    let partial = value.from_json(&json!({"rate": 100, "id": "client-a"}), "value").unwrap();
    assert_eq!(&partial[16..20], &100u32.to_le_bytes());
    assert_eq!(&partial[..16], &[0; 16]);

    // The newtype key is shown as its member.
    let key = keys.key.as_ref().unwrap();
    let mut k = [0u8; 32];
    k[..6].copy_from_slice(b"secret");
    assert_eq!(key.to_json(&k), json!("secret"));
    assert_eq!(key.from_json(&json!("secret"), "key").unwrap(), k);
}

#[test]
fn json_errors_name_the_field() {
    let types = map_types_from_btf(&apikey_btf());
    let value = types["KEYS"].value.clone().unwrap();
    let err = value.from_json(&json!({"rate": 1, "colour": 2, "size": 3}), "value").unwrap_err();
    assert!(err.contains("no member `colour`, `size`"), "{err}");
    assert!(err.contains("requests, limited, rate"), "{err}");
    let err = value.from_json(&json!({"rate": -1}), "value").unwrap_err();
    assert_eq!(err, "value.rate: -1 does not fit in u32");
    let err = value.from_json(&json!({"id": [1, 2, 300]}), "value").unwrap_err();
    assert_eq!(err, "value.id[2]: 300 does not fit in u8");
    let err = value.from_json(&json!({"id": "x".repeat(33)}), "value").unwrap_err();
    assert!(err.contains("value.id: the text is 33 bytes; the array holds 32"), "{err}");
    let err = value.from_json(&json!({"rate": 1.5}), "value").unwrap_err();
    assert!(err.contains("value.rate: 1.5 is not an integer"), "{err}");
    let err = value.from_json(&json!([1, 2]), "value").unwrap_err();
    assert!(err.contains("expected an object"), "{err}");
}

#[test]
fn byte_arrays_are_text_only_when_printable_and_zero_padded() {
    let layout = TypeLayout::Array { elem: Box::new(TypeLayout::Int { size: 1, signed: false }), len: 4 };
    assert_eq!(layout.to_json(b"ab\0\0"), json!("ab"));
    assert_eq!(layout.to_json(b"abcd"), json!("abcd"));
    assert_eq!(layout.to_json(b"\0\0\0\0"), json!(""));
    assert_eq!(layout.to_json(b"a\0b\0"), json!([97, 0, 98, 0]));
    assert_eq!(layout.to_json(b"a\nb\0"), json!([97, 10, 98, 0]));
    assert_eq!(layout.to_json(&[0xff, 0, 0, 0]), json!([255, 0, 0, 0]));
    assert_eq!(layout.from_json(&json!([255, 0]), "v").unwrap(), [255, 0, 0, 0]);
    // Bytes of the wrong length are hex, never a panic.
    assert_eq!(layout.to_json(b"abc"), json!("616263"));
}

#[test]
fn integers_of_every_width_and_sign_round_trip() {
    let cases: &[(u32, bool, Value)] = &[
        (1, true, json!(-128)),
        (1, false, json!(255)),
        (2, true, json!(-2)),
        (4, true, json!(i32::MIN)),
        (8, false, json!(u64::MAX)),
        (8, true, json!(i64::MIN)),
        (16, false, json!(u128::MAX.to_string())),
        (16, true, json!(i128::MIN.to_string())),
    ];
    for (size, signed, v) in cases {
        let layout = TypeLayout::Int { size: *size, signed: *signed };
        let bytes = layout.from_json(v, "key").unwrap();
        assert_eq!(bytes.len() as u32, *size);
        assert_eq!(&layout.to_json(&bytes), v, "{size} {signed}");
    }
    let u8_ = TypeLayout::Int { size: 1, signed: false };
    assert_eq!(u8_.from_json(&json!(256), "key").unwrap_err(), "key: 256 does not fit in u8");
    assert_eq!(u8_.from_json(&json!("17"), "key").unwrap(), [17]);
    let i8_ = TypeLayout::Int { size: 1, signed: true };
    assert_eq!(i8_.from_json(&json!(-129), "key").unwrap_err(), "key: -129 does not fit in i8");
    assert_eq!(TypeLayout::Bool.to_json(&[1]), json!(true));
    assert_eq!(TypeLayout::Bool.from_json(&json!(false), "v").unwrap(), [0]);
    let f = TypeLayout::Float { size: 8 };
    assert_eq!(f.to_json(&1.5f64.to_le_bytes()), json!(1.5));
    assert_eq!(f.to_json(&f64::NAN.to_le_bytes()), json!("NaN"));
    assert_eq!(f.from_json(&json!("-inf"), "v").unwrap(), f64::NEG_INFINITY.to_le_bytes());
    assert!(TypeLayout::Float { size: 4 }.from_json(&json!(1e300), "v").is_err());
}

#[test]
fn enums_show_variant_names_and_accept_names_or_numbers() {
    let mut b = BtfBuilder::new();
    let a = b.str("PASS");
    let d = b.str("DROP");
    let verdict = b.raw("Verdict", KIND_ENUM, 2, false, 4, &[a, 0, d, 7]);
    let n = b.str("NEG");
    let signed = b.raw("Sign", KIND_ENUM, 1, true, 1, &[n, (-1i32) as u32]);
    let big = b.str("BIG");
    let wide = b.raw("Wide", KIND_ENUM64, 1, false, 8, &[big, 1, 2]);
    let u32_ = b.int("u32", 4, false);
    let m1 = b.map("VERDICTS", u32_, verdict);
    let m2 = b.map("SIGNS", signed, wide);
    b.datasec(".maps", &[m1, m2]);
    let types = map_types_from_btf(&b.build());
    let v = types["VERDICTS"].value.clone().unwrap();
    assert_eq!(v.to_json(&7u32.to_le_bytes()), json!("DROP"));
    assert_eq!(v.to_json(&9u32.to_le_bytes()), json!(9));
    assert_eq!(v.from_json(&json!("PASS"), "value").unwrap(), 0u32.to_le_bytes());
    assert_eq!(v.from_json(&json!(3), "value").unwrap(), 3u32.to_le_bytes());
    let err = v.from_json(&json!("ABORT"), "value").unwrap_err();
    assert!(err.contains("\"ABORT\" is not a variant of enum Verdict; it has: PASS, DROP"), "{err}");
    let s = types["SIGNS"].key.clone().unwrap();
    assert_eq!(s.to_json(&[0xff]), json!("NEG"));
    assert_eq!(s.from_json(&json!("NEG"), "key").unwrap(), [0xff]);
    assert_eq!(s.to_json(&[0xfe]), json!(-2));
    let w = types["SIGNS"].value.clone().unwrap();
    assert_eq!(w.to_json(&(1u64 | 2 << 32).to_le_bytes()), json!("BIG"));
}

#[test]
fn bitfields_read_and_write_their_bits_only() {
    let mut b = BtfBuilder::new();
    let u32_ = b.int("u32", 4, false);
    let i32_ = b.int("i32", 4, true);
    let u8_ = b.int("u8", 1, false);
    // struct { u32 lo:3; i32 mid:5; u8 tail; } with tail at byte 2 (bit 16); size 4.
    let s = b.strukt("Flags", 4, &[("lo", u32_, 0, 3), ("mid", i32_, 3, 5), ("tail", u8_, 16, 8)]);
    let m = b.map("FLAGS", u32_, s);
    b.datasec(".maps", &[m]);
    let types = map_types_from_btf(&b.build());
    let v = types["FLAGS"].value.clone().unwrap();
    let TypeLayout::Struct { members, .. } = &v else { panic!("{v:?}") };
    assert_eq!(members[1].bitfield, Some(Bitfield { bit_offset: 3, bits: 5 }));
    let bytes = v.from_json(&json!({"lo": 5, "mid": -3, "tail": 200}), "value").unwrap();
    // lo = 0b101, mid = -3 = 0b11101 in 5 bits: byte 0 = 0b11101_101.
    assert_eq!(bytes, [0b1110_1101, 0, 200, 0]);
    assert_eq!(v.to_json(&bytes), json!({"lo": 5, "mid": -3, "tail": 200}));
    let err = v.from_json(&json!({"lo": 8}), "value").unwrap_err();
    assert_eq!(err, "value.lo: 8 does not fit in a 3-bit unsigned bitfield");
    let err = v.from_json(&json!({"mid": 16}), "value").unwrap_err();
    assert_eq!(err, "value.mid: 16 does not fit in a 5-bit signed bitfield");

    // The old encoding: the member's INT carries bit offset and width.
    let mut b = BtfBuilder::new();
    let u32_ = b.int("u32", 4, false);
    let old = b.raw("u32", KIND_INT, 0, false, 4, &[(4 << 16) | 2]);
    let s = b.strukt("Old", 4, &[("two", old, 0, 0)]);
    let m = b.map("OLD", u32_, s);
    b.datasec(".maps", &[m]);
    let v = map_types_from_btf(&b.build())["OLD"].value.clone().unwrap();
    assert_eq!(v.from_json(&json!({"two": 3}), "value").unwrap(), [0b11_0000, 0, 0, 0]);
}

#[test]
fn typed_input_is_told_apart_from_the_untyped_encodings() {
    let types = map_types_from_btf(&apikey_btf());
    let (key, value) = (types["KEYS"].key.clone().unwrap(), types["KEYS"].value.clone().unwrap());
    assert!(value.reads_as_typed(&json!({"rate": 1})));
    assert!(!value.reads_as_typed(&json!({"utf8": "x"})));
    assert!(!value.reads_as_typed(&json!("00".repeat(64))));
    assert!(!value.reads_as_typed(&json!("0x 00 01")), "hex of any length is raw bytes");
    assert!(value.reads_as_typed(&json!("client-a")));
    assert!(key.reads_as_typed(&json!("")));
    assert!(!value.reads_as_typed(&json!(5)));
    assert!(!value.reads_as_typed(&json!([1, 2])));
    assert!(key.reads_as_typed(&json!("secret")));
    assert!(!key.reads_as_typed(&json!([1, 2])));
    let u64s = TypeLayout::Array { elem: Box::new(TypeLayout::Int { size: 8, signed: false }), len: 3 };
    assert!(u64s.reads_as_typed(&json!([1, 2, 3])));
    assert!(TypeLayout::Int { size: 4, signed: true }.reads_as_typed(&json!(-1)));
}

#[test]
fn layouts_serialise_with_their_kind() {
    let types = map_types_from_btf(&apikey_btf());
    let v = serde_json::to_value(types["KEYS"].value.as_ref().unwrap()).unwrap();
    assert_eq!(v["kind"], "struct");
    assert_eq!(v["members"][6]["name"], "id");
    assert_eq!(v["members"][6]["offset"], 32);
    assert_eq!(
        v["members"][6]["ty"],
        json!({"kind": "array", "elem": {"kind": "int", "size": 1, "signed": false}, "len": 32})
    );
    let back: TypeLayout = serde_json::from_value(v).unwrap();
    assert_eq!(&back, types["KEYS"].value.as_ref().unwrap());
}

#[test]
fn corrupt_btf_gives_no_types_and_never_panics() {
    let good = apikey_btf();
    assert!(map_types_from_btf(&good).contains_key("KEYS"));
    // Every truncation, and every single-byte corruption, of a valid section.
    for len in 0..good.len() {
        let _ = map_types_from_btf(&good[..len]);
    }
    for at in 0..good.len() {
        for byte in [0x00, 0xff, 0x80, 0x13] {
            let mut bad = good.clone();
            bad[at] = byte;
            let _ = map_types_from_btf(&bad);
        }
    }
    // Big-endian BTF (magic eb9f) is not read.
    let mut be = good.clone();
    be[..2].copy_from_slice(&[0xeb, 0x9f]);
    assert!(map_types_from_btf(&be).is_empty());
    // A header that claims more than the section holds.
    let mut long = good.clone();
    long[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(map_types_from_btf(&long).is_empty());
}

#[test]
fn type_ids_out_of_range_cycles_and_huge_vlen_give_no_layout() {
    // The key points at a type id that does not exist; the value at a typedef cycle.
    let mut b = BtfBuilder::new();
    let t1 = b.raw("a", KIND_TYPEDEF, 0, false, 0, &[]); // patched below to point at t2
    let t2 = b.raw("b", KIND_TYPEDEF, 0, false, t1, &[]);
    let m = b.map("CYCLE", 999, t2);
    b.datasec(".maps", &[m]);
    let mut bytes = b.build();
    // The first record's size_or_type (bytes 8..12 of the type section, after the 24-byte header).
    bytes[24 + 8..24 + 12].copy_from_slice(&t2.to_le_bytes());
    let types = map_types_from_btf(&bytes);
    assert_eq!(types["CYCLE"], MapTypes::default());

    // A struct claiming 65535 members with none present: the section is truncated.
    let mut b = BtfBuilder::new();
    let u32_ = b.int("u32", 4, false);
    let s = b.raw("Huge", KIND_STRUCT, 0xffff, false, 4, &[]);
    let m = b.map("HUGE", u32_, s);
    b.datasec(".maps", &[m]);
    assert!(map_types_from_btf(&b.build()).is_empty());

    // Deep nesting beyond MAX_DEPTH: arrays of arrays.
    let mut b = BtfBuilder::new();
    let u8_ = b.int("u8", 1, false);
    let mut t = u8_;
    for _ in 0..MAX_DEPTH + 2 {
        t = b.array(t, u8_, 1);
    }
    let m = b.map("DEEP", u8_, t);
    b.datasec(".maps", &[m]);
    assert_eq!(map_types_from_btf(&b.build())["DEEP"].value, None);

    // A member outside its struct.
    let mut b = BtfBuilder::new();
    let u64_ = b.int("u64", 8, false);
    let s = b.strukt("Short", 4, &[("x", u64_, 0, 0)]);
    let m = b.map("SHORT", u64_, s);
    b.datasec(".maps", &[m]);
    let types = map_types_from_btf(&b.build());
    assert_eq!(types["SHORT"].value, None);
    assert_eq!(types["SHORT"].key, Some(TypeLayout::Int { size: 8, signed: false }));

    // An array whose size overflows.
    let mut b = BtfBuilder::new();
    let u64_ = b.int("u64", 8, false);
    let big = b.array(u64_, u64_, u32::MAX);
    let bigger = b.array(big, u64_, u32::MAX);
    let m = b.map("BIG", u64_, bigger);
    b.datasec(".maps", &[m]);
    assert_eq!(map_types_from_btf(&b.build())["BIG"].value, None);
}

#[test]
fn check_accepts_what_btf_gives_and_refuses_what_it_never_does() {
    for layout in map_types_from_btf(&apikey_btf()).into_values().flat_map(|t| [t.key, t.value]).flatten() {
        assert_eq!(layout.check(), Ok(()), "{layout:?}");
    }
    let int = |size| TypeLayout::Int { size, signed: false };
    let member = |name: &str, offset, bitfield, ty| Member { name: name.into(), offset, bitfield, ty };
    let strukt = |size, members| TypeLayout::Struct { name: "S".into(), size, members };
    let bad = [
        int(3),
        int(0),
        TypeLayout::Float { size: 2 },
        TypeLayout::Enum { name: String::new(), size: 20, signed: false, variants: vec![] },
        strukt(4, vec![member("a", 2, None, int(4))]),
        strukt(4, vec![member("a", 0, Some(Bitfield { bit_offset: 30, bits: 4 }), int(4))]),
        strukt(4, vec![member("a", 0, Some(Bitfield { bit_offset: 0, bits: 0 }), int(4))]),
        strukt(8, vec![member("a", 0, Some(Bitfield { bit_offset: 0, bits: 8 }), TypeLayout::Float { size: 8 })]),
        TypeLayout::Array { elem: Box::new(TypeLayout::Opaque { size: 0 }), len: 4 },
        TypeLayout::Array { elem: Box::new(int(8)), len: u32::MAX },
    ];
    for layout in bad {
        let err = layout.check().expect_err(&format!("{layout:?}"));
        assert!(!err.is_empty());
    }
    let mut deep = int(4);
    for _ in 0..=MAX_DEPTH {
        deep = strukt(4, vec![member("x", 0, None, deep)]);
    }
    assert!(deep.check().is_err());
}
