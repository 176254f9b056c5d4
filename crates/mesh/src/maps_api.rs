//! The admin API over the maps of eBPF and duet-ABI Wasm filters and route programs: an
//! operator reads, adds and removes entries while the sidecar serves (block a key, shift
//! traffic), without a reload.
//!
//! - `GET /maps`: every map with its owner, type and sizes, and its key and value types when
//!   the object's BTF declares them (`key_type`/`value_type`: a short name such as
//!   `struct Client`; `key_layout`/`value_layout`: the full [`TypeLayout`]);
//! - `GET /maps/<owner>/<map>`: its entries, keys and values in hex (per-CPU maps: one value per
//!   CPU), and, for a map with types, `key_typed` and `value_typed` (`values_typed` per CPU) as
//!   [`TypeLayout::to_json`] shows them;
//! - `PUT /maps/<owner>/<map>` with `{"key": K, "value": V, "flags": "any"|"noexist"|"exist"}`
//!   (or an array of such objects);
//! - `DELETE /maps/<owner>/<map>` with `{"key": K}` (or an array).
//!
//! `K` and `V` are hex strings (`"0a000001"`, whitespace and a `0x` prefix allowed), unsigned
//! integers (written little-endian into the key or value size), `{"utf8": "text"}` (zero-padded
//! to the size) or arrays of byte values. When the map has types (eBPF objects with BTF; Wasm
//! modules never have them), a typed value is accepted too, as [`TypeLayout::reads_as_typed`]
//! tells them apart: any object other than `{"utf8": ...}`, an array when the type is an array
//! of wider elements, a number or bool when the type is a scalar (so negative and float values
//! work), and a string unless it is made only of hex digits (those are raw bytes, so a hex key
//! of the wrong length is a size error, not text; hex-looking text goes in `{"utf8": ...}`). A
//! size mismatch or a bad encoding is a 400 naming the expected size or the field
//! (`value.id[3]`); the map is unchanged.

use std::sync::Arc;

use duet_maps::{Map, MapValue};
use duet_object::TypeLayout;
use serde_json::{Value, json};

/// One map as the admin API names it: `<owner>/<name>`, the owner being the filter (or
/// `route:<listener>/<route>`) whose file declared it.
#[derive(Clone, Debug)]
pub struct NamedMap {
    /// The filter or route program that owns it.
    pub owner: String,
    /// The map's name in the object or module.
    pub name: String,
    /// The map.
    pub map: Arc<Map>,
    /// Its key and value types, when the object's BTF declares them.
    pub types: MapTypes,
}

/// A map's key and value types from BTF (eBPF objects only; Wasm modules carry none).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapTypes {
    /// The key's type.
    pub key: Option<Arc<TypeLayout>>,
    /// The value's type.
    pub value: Option<Arc<TypeLayout>>,
}

/// An API error: an HTTP status and a message.
#[derive(Debug, PartialEq, Eq)]
pub struct ApiError {
    /// 400, 404, 405, 409.
    pub status: u16,
    /// In words.
    pub message: String,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError { status: 400, message: message.into() }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A map's description for `GET /maps`.
pub fn describe(m: &NamedMap) -> Value {
    let spec = m.map.spec();
    let mut v = json!({
        "owner": m.owner,
        "name": m.name,
        "type": m.map.map_type().name(),
        "key_size": spec.key_size,
        "value_size": spec.value_size,
        "max_entries": spec.max_entries,
    });
    if m.map.map_type() != duet_maps::MapType::RingBuf {
        v["entries"] = Value::from(m.map.entries().len());
    }
    for (what, layout) in [("key", &m.types.key), ("value", &m.types.value)] {
        if let Some(layout) = layout {
            v[format!("{what}_type")] = Value::from(layout.type_name());
            v[format!("{what}_layout")] = serde_json::to_value(&**layout).unwrap_or(Value::Null);
        }
    }
    v
}

/// `GET /maps/<owner>/<map>`.
pub fn entries(m: &NamedMap) -> Value {
    let entries: Vec<Value> = m
        .map
        .entries()
        .into_iter()
        .map(|(k, v)| {
            let mut e = match &v {
                MapValue::Single(v) => json!({ "key": hex(&k), "value": hex(v) }),
                MapValue::PerCpu(vs) => {
                    json!({ "key": hex(&k), "values": vs.iter().map(|v| hex(v)).collect::<Vec<_>>() })
                }
            };
            if let Some(layout) = &m.types.key {
                e["key_typed"] = layout.to_json(&k);
            }
            if let Some(layout) = &m.types.value {
                match &v {
                    MapValue::Single(v) => e["value_typed"] = layout.to_json(v),
                    MapValue::PerCpu(vs) => {
                        e["values_typed"] = vs.iter().map(|v| layout.to_json(v)).collect();
                    }
                }
            }
            e
        })
        .collect();
    let mut v = describe(m);
    v["entries"] = Value::from(entries);
    v
}

/// `PUT /maps/<owner>/<map>`: applies every update of `body`, stopping at the first failure
/// (earlier ones stay applied and are counted in the error).
pub fn put(m: &NamedMap, body: &[u8]) -> Result<Value, ApiError> {
    let items = items(body)?;
    let spec = m.map.spec();
    let mut done = 0;
    for (i, item) in items.iter().enumerate() {
        let at =
            |e: ApiError| ApiError { message: format!("update {i} ({done} applied before it): {}", e.message), ..e };
        let key = item.get("key").ok_or_else(|| at(bad("`key` is missing")))?;
        let key = decode(key, spec.key_size as usize, m.types.key.as_deref(), "key").map_err(at)?;
        let value = item.get("value").ok_or_else(|| at(bad("`value` is missing")))?;
        let mut value = decode(value, spec.value_size as usize, m.types.value.as_deref(), "value").map_err(at)?;
        if m.map.map_type().is_per_cpu() {
            // One value for every CPU, each slot rounded up to 8 bytes as the bpf syscall lays
            // them out.
            let slot = m.map.user_value_len() / m.map.n_cpus().max(1);
            value.resize(slot, 0);
            value = value.repeat(m.map.n_cpus());
        }
        let flags = match item.get("flags").and_then(Value::as_str).unwrap_or("any") {
            "any" => 0,
            "noexist" => 1,
            "exist" => 2,
            other => return Err(at(bad(format!("`flags` is {other:?}; expected \"any\", \"noexist\" or \"exist\"")))),
        };
        m.map.update(&key, &value, flags, None).map_err(|e| at(ApiError { status: 409, message: e.to_string() }))?;
        done += 1;
    }
    Ok(json!({ "ok": true, "updated": done }))
}

/// `DELETE /maps/<owner>/<map>`.
pub fn delete(m: &NamedMap, body: &[u8]) -> Result<Value, ApiError> {
    let items = items(body)?;
    let mut done = 0;
    for (i, item) in items.iter().enumerate() {
        let at =
            |e: ApiError| ApiError { message: format!("delete {i} ({done} applied before it): {}", e.message), ..e };
        let key = item.get("key").ok_or_else(|| at(bad("`key` is missing")))?;
        let key = decode(key, m.map.spec().key_size as usize, m.types.key.as_deref(), "key").map_err(at)?;
        m.map.delete(&key).map_err(|e| at(ApiError { status: 404, message: e.to_string() }))?;
        done += 1;
    }
    Ok(json!({ "ok": true, "deleted": done }))
}

/// Copies every entry of each map in `old` into the map of `new` with the same owner, name and
/// shape (type, key and value sizes, capacity, flags), so a reload keeps what operators and
/// programs stored; ring buffers and maps whose shape changed start empty. Returns how many maps
/// were carried over. Updates the old snapshot's requests make while this runs may be missed.
pub fn carry_over(old: &[NamedMap], new: &[NamedMap]) -> usize {
    let mut carried = 0;
    for n in new {
        let Some(o) = old.iter().find(|o| o.owner == n.owner && o.name == n.name) else { continue };
        let (os, ns) = (o.map.spec(), n.map.spec());
        let same = os.map_type == ns.map_type
            && os.key_size == ns.key_size
            && os.value_size == ns.value_size
            && os.max_entries == ns.max_entries
            && os.flags == ns.flags
            && o.map.n_cpus() == n.map.n_cpus();
        if !same || ns.map_type == duet_maps::MapType::RingBuf || Arc::ptr_eq(&o.map, &n.map) {
            continue;
        }
        for (key, value) in o.map.entries() {
            let bytes = match value {
                MapValue::Single(v) => v,
                MapValue::PerCpu(vs) => {
                    let slot = n.map.user_value_len() / n.map.n_cpus().max(1);
                    vs.into_iter()
                        .flat_map(|mut v| {
                            v.resize(slot, 0);
                            v
                        })
                        .collect()
                }
            };
            if let Err(e) = n.map.update(&key, &bytes, 0, None) {
                tracing::warn!(owner = %n.owner, map = %n.name, error = %e, "an entry could not be carried over");
            }
        }
        carried += 1;
    }
    carried
}

fn items(body: &[u8]) -> Result<Vec<Value>, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| bad(format!("the body is not JSON: {e}")))?;
    let items = match v {
        Value::Array(items) => items,
        v @ Value::Object(_) => vec![v],
        _ => return Err(bad("expected an object {\"key\": ..., \"value\": ...} or an array of them")),
    };
    if items.iter().any(|i| !i.is_object()) {
        return Err(bad("every update is an object {\"key\": ..., \"value\": ...}"));
    }
    Ok(items)
}

/// Decodes a key or value of exactly `size` bytes: typed when `layout` is known and `v` reads as
/// typed ([`TypeLayout::reads_as_typed`]), else in one of the untyped encodings ([`bytes`]).
pub fn decode(v: &Value, size: usize, layout: Option<&TypeLayout>, what: &str) -> Result<Vec<u8>, ApiError> {
    match layout {
        Some(layout) if layout.reads_as_typed(v) => layout.from_json(v, what).map_err(bad),
        None if matches!(v, Value::Object(o) if !(o.len() == 1 && o.get("utf8").is_some_and(Value::is_string))) => {
            Err(bad(format!(
                "{what}: the map has no BTF types (Wasm modules never do), so a typed object is not accepted; \
                 give a hex string, an integer, {{\"utf8\": ...}} or a byte array"
            )))
        }
        _ => bytes(v, size, what),
    }
}

/// Decodes a key or value of exactly `size` bytes in the untyped encodings.
pub fn bytes(v: &Value, size: usize, what: &str) -> Result<Vec<u8>, ApiError> {
    let out = match v {
        Value::String(s) => {
            let digits: String = s.trim().trim_start_matches("0x").chars().filter(|c| !c.is_whitespace()).collect();
            if !digits.len().is_multiple_of(2) || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(format!("{what} {s:?} is not hex (expected {} hex digits)", size * 2)));
            }
            (0..digits.len()).step_by(2).map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap_or(0)).collect()
        }
        Value::Number(n) => {
            let n = n.as_u64().ok_or_else(|| bad(format!("{what} {n} is not an unsigned integer")))?;
            let le = n.to_le_bytes();
            if size < 8 && n >> (8 * size) != 0 {
                return Err(bad(format!("{what} {n} does not fit in {size} bytes")));
            }
            let mut out = vec![0; size];
            let k = size.min(8);
            out[..k].copy_from_slice(&le[..k]);
            out
        }
        Value::Object(o) if o.len() == 1 && o.get("utf8").is_some_and(Value::is_string) => {
            let text = o["utf8"].as_str().unwrap_or_default().as_bytes();
            if text.len() > size {
                return Err(bad(format!("{what} text is {} bytes; the map's {what}s are {size}", text.len())));
            }
            let mut out = text.to_vec();
            out.resize(size, 0);
            out
        }
        Value::Array(a) => a
            .iter()
            .map(|b| b.as_u64().filter(|&b| b <= 255).map(|b| b as u8))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| bad(format!("{what}: an array must hold byte values 0..=255")))?,
        _ => return Err(bad(format!("{what}: expected a hex string, an integer, {{\"utf8\": ...}} or a byte array"))),
    };
    if out.len() != size {
        return Err(bad(format!("{what} is {} bytes; the map's {what}s are {size} bytes", out.len())));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet_maps::{MapSpec, MapType};

    fn map(map_type: MapType, key_size: u32, value_size: u32) -> NamedMap {
        let spec = MapSpec { name: "KEYS".into(), map_type, key_size, value_size, max_entries: 8, flags: 0 };
        NamedMap {
            owner: "apikey".into(),
            name: "KEYS".into(),
            map: Arc::new(Map::new(spec, 2).unwrap()),
            types: MapTypes::default(),
        }
    }

    #[test]
    fn keys_and_values_decode_in_every_encoding() {
        assert_eq!(bytes(&json!("0a 00 00 01"), 4, "key").unwrap(), [10, 0, 0, 1]);
        assert_eq!(bytes(&json!("0x0a000001"), 4, "key").unwrap(), [10, 0, 0, 1]);
        assert_eq!(bytes(&json!(258), 4, "key").unwrap(), [2, 1, 0, 0]);
        assert_eq!(bytes(&json!(7), 12, "key").unwrap(), [7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes(&json!({"utf8": "ab"}), 4, "key").unwrap(), b"ab\0\0");
        assert_eq!(bytes(&json!([1, 2]), 2, "key").unwrap(), [1, 2]);
        assert!(bytes(&json!("0a0000"), 4, "key").unwrap_err().message.contains("the map's keys are 4 bytes"));
        assert!(bytes(&json!("zz"), 1, "key").unwrap_err().message.contains("not hex"));
        assert!(bytes(&json!(256), 1, "key").unwrap_err().message.contains("does not fit"));
        assert!(bytes(&json!({"utf8": "toolong"}), 4, "key").unwrap_err().message.contains("7 bytes"));
        assert!(bytes(&json!(true), 4, "key").is_err());
    }

    #[test]
    fn put_get_delete_round_trip_and_errors_leave_the_map_as_it_was() {
        let m = map(MapType::Hash, 4, 8);
        let r = put(&m, br#"[{"key": "0a000001", "value": 5}, {"key": 2, "value": "0100000000000000"}]"#).unwrap();
        assert_eq!(r["updated"], 2);
        let e = entries(&m);
        let mut got: Vec<(String, String)> = e["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["key"].as_str().unwrap().to_owned(), e["value"].as_str().unwrap().to_owned()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [("02000000".into(), "0100000000000000".into()), ("0a000001".into(), "0500000000000000".into())]
        );
        let e = put(&m, br#"{"key": "0a0000", "value": 1}"#).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("update 0 (0 applied before it): key is 3 bytes"), "{}", e.message);
        let e = put(&m, br#"{"key": 2, "value": 1, "flags": "noexist"}"#).unwrap_err();
        assert_eq!(e.status, 409, "{}", e.message);
        assert_eq!(delete(&m, br#"{"key": 2}"#).unwrap()["deleted"], 1);
        assert_eq!(delete(&m, br#"{"key": 2}"#).unwrap_err().status, 404);
        assert_eq!(m.map.entries().len(), 1);
        assert!(put(&m, b"not json").unwrap_err().message.contains("not JSON"));
    }

    #[test]
    fn a_reload_carries_entries_over_to_maps_of_the_same_shape() {
        let old = [map(MapType::Hash, 4, 8), map(MapType::PerCpuArray, 4, 4)];
        put(&old[0], br#"{"key": 1, "value": 7}"#).unwrap();
        put(&old[1], br#"{"key": 0, "value": 3}"#).unwrap();
        let mut new = [map(MapType::Hash, 4, 8), map(MapType::PerCpuArray, 4, 4)];
        new[1].name = "OTHER".into();
        assert_eq!(carry_over(&old, &new), 1, "only the map with the same owner and name");
        assert_eq!(entries(&new[0]), entries(&old[0]));
        let resized = [map(MapType::Hash, 4, 16)];
        assert_eq!(carry_over(&old, &resized), 0, "a map whose value grew starts empty");
        assert!(resized[0].map.entries().is_empty());
        let per_cpu = [map(MapType::PerCpuArray, 4, 4)];
        assert_eq!(carry_over(&old[1..], &per_cpu), 1);
        assert_eq!(entries(&per_cpu[0]), entries(&old[1]));
    }

    /// The apikey example's `KEYS`: key `ApiKey([u8; 32])`, value `Client` (64 bytes).
    fn typed_keys() -> NamedMap {
        use duet_object::Member;
        let int = |size, signed| TypeLayout::Int { size, signed };
        let bytes32 = TypeLayout::Array { elem: Box::new(int(1, false)), len: 32 };
        let member = |name: &str, offset, ty| Member { name: name.into(), offset, bitfield: None, ty };
        let key =
            TypeLayout::Struct { name: "ApiKey".into(), size: 32, members: vec![member("__0", 0, bytes32.clone())] };
        let value = TypeLayout::Struct {
            name: "Client".into(),
            size: 64,
            members: vec![
                member("requests", 0, int(8, false)),
                member("limited", 8, int(8, false)),
                member("rate", 16, int(4, false)),
                member("burst", 20, int(4, false)),
                member("id_len", 24, int(4, false)),
                member("zero", 28, int(4, false)),
                member("id", 32, bytes32),
            ],
        };
        let mut m = map(MapType::Hash, 32, 64);
        m.types = MapTypes { key: Some(Arc::new(key)), value: Some(Arc::new(value)) };
        m
    }

    #[test]
    fn maps_with_btf_types_show_and_take_typed_keys_and_values() {
        let m = typed_keys();
        let listed = describe(&m);
        assert_eq!(listed["key_type"], "struct ApiKey");
        assert_eq!(listed["value_type"], "struct Client");
        assert_eq!(listed["value_layout"]["members"][2]["name"], "rate");

        let body = json!({"key": "secret", "value": {"rate": 10, "burst": 5, "id_len": 8, "id": "client-a"}});
        assert_eq!(put(&m, body.to_string().as_bytes()).unwrap()["updated"], 1);
        // The untyped encodings keep working beside the typed ones.
        let hex_value = "00".repeat(64);
        put(&m, json!({"key": {"utf8": "other"}, "value": hex_value}).to_string().as_bytes()).unwrap();

        let e = entries(&m);
        let got = e["entries"].as_array().unwrap().iter().find(|e| e["key_typed"] == "secret").unwrap().clone();
        assert_eq!(
            got["value_typed"],
            json!({"requests": 0, "limited": 0, "rate": 10, "burst": 5, "id_len": 8, "zero": 0, "id": "client-a"})
        );
        assert!(got["key"].as_str().unwrap().starts_with(&hex(b"secret")), "hex stays: {got}");
        assert!(got["value"].as_str().unwrap().len() == 128);

        let err =
            put(&m, json!({"key": "secret", "value": {"rate": 1, "colour": 2}}).to_string().as_bytes()).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(
            err.message.contains("update 0 (0 applied before it): value: struct Client has no member `colour`"),
            "{}",
            err.message
        );
        let err = put(&m, json!({"key": "secret", "value": {"id": [1, 256]}}).to_string().as_bytes()).unwrap_err();
        assert!(err.message.contains("value.id[1]: 256 does not fit in u8"), "{}", err.message);
        let err = put(&m, json!({"key": "x".repeat(33), "value": {}}).to_string().as_bytes()).unwrap_err();
        assert!(err.message.contains("key: the text is 33 bytes"), "{}", err.message);

        assert_eq!(delete(&m, json!({"key": "secret"}).to_string().as_bytes()).unwrap()["deleted"], 1);
        assert_eq!(m.map.entries().len(), 1);
    }

    #[test]
    fn typed_scalars_take_negative_numbers_and_per_cpu_values_show_typed() {
        let mut m = map(MapType::PerCpuArray, 4, 8);
        m.types = MapTypes {
            key: Some(Arc::new(TypeLayout::Int { size: 4, signed: false })),
            value: Some(Arc::new(TypeLayout::Int { size: 8, signed: true })),
        };
        put(&m, br#"{"key": 1, "value": -5}"#).unwrap();
        let e = entries(&m);
        let one = e["entries"].as_array().unwrap().iter().find(|e| e["key_typed"] == 1).unwrap().clone();
        assert_eq!(one["values_typed"], json!([-5, -5]));
        assert_eq!(one["values"], json!(["fbffffffffffffff", "fbffffffffffffff"]));
    }

    #[test]
    fn maps_without_types_refuse_typed_objects_with_a_clear_error() {
        let m = map(MapType::Hash, 4, 8);
        let err = put(&m, br#"{"key": 1, "value": {"rate": 1}}"#).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.message.contains("value: the map has no BTF types (Wasm modules never do)"), "{}", err.message);
        let listed = describe(&m);
        assert!(listed.get("key_type").is_none() && listed.get("value_layout").is_none());
        put(&m, br#"{"key": 1, "value": 1}"#).unwrap();
        assert!(entries(&m)["entries"][0].get("value_typed").is_none());
    }

    #[test]
    fn per_cpu_values_are_written_to_every_cpu() {
        let m = map(MapType::PerCpuArray, 4, 4);
        put(&m, br#"{"key": 1, "value": 9}"#).unwrap();
        let e = entries(&m);
        let one = e["entries"].as_array().unwrap().iter().find(|e| e["key"] == "01000000").unwrap().clone();
        assert_eq!(one["values"], json!(["09000000", "09000000"]));
    }
}
