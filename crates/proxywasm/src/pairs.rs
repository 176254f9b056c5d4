//! The ABI's serialization of header maps ("pairs"): a little-endian `u32` count, then a
//! `(u32 name length, u32 value length)` per pair, then each name and value followed by a NUL.

/// Header pairs as the host keeps them.
pub(crate) type Pairs = Vec<(String, Vec<u8>)>;

/// Serializes `pairs`.
pub(crate) fn serialize<'a>(pairs: impl ExactSizeIterator<Item = (&'a str, &'a [u8])> + Clone) -> Vec<u8> {
    let n = pairs.len();
    let size = 4 + n * 8 + pairs.clone().map(|(k, v)| k.len() + v.len() + 2).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&len32(n).to_le_bytes());
    for (k, v) in pairs.clone() {
        out.extend_from_slice(&len32(k.len()).to_le_bytes());
        out.extend_from_slice(&len32(v.len()).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

/// Serializes a host header map.
pub(crate) fn serialize_map(map: &[(String, Vec<u8>)]) -> Vec<u8> {
    serialize(map.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The length of `map` serialized.
pub(crate) fn serialized_size(map: &[(String, Vec<u8>)]) -> usize {
    4 + map.iter().map(|(k, v)| 8 + k.len() + v.len() + 2).sum::<usize>()
}

/// Parses serialized pairs; `None` if they are malformed (lengths past the end, missing NULs,
/// a name that is not UTF-8). An empty input or a single NUL byte is an empty map, as the spec
/// allows.
pub(crate) fn deserialize(bytes: &[u8]) -> Option<Pairs> {
    if bytes.is_empty() || bytes == [0] {
        return Some(Vec::new());
    }
    let word = |at: usize| -> Option<usize> {
        let b = bytes.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let n = word(0)?;
    let mut data = 4usize.checked_add(n.checked_mul(8)?)?;
    if data > bytes.len() {
        return None;
    }
    let mut pairs = Vec::with_capacity(n);
    for i in 0..n {
        let (klen, vlen) = (word(4 + i * 8)?, word(8 + i * 8)?);
        let mut take = |len: usize| -> Option<&[u8]> {
            let end = data.checked_add(len)?;
            let field = bytes.get(data..end)?;
            // Each field is followed by a NUL.
            if bytes.get(end) != Some(&0) {
                return None;
            }
            data = end + 1;
            Some(field)
        };
        let key = std::str::from_utf8(take(klen)?).ok()?.to_owned();
        let value = take(vlen)?.to_vec();
        pairs.push((key, value));
    }
    Some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let map: Pairs = vec![(":method".into(), b"GET".to_vec()), ("x".into(), Vec::new())];
        let bytes = serialize_map(&map);
        assert_eq!(&bytes[..4], &[2, 0, 0, 0]);
        assert_eq!(bytes.len(), 4 + 16 + (7 + 1 + 3 + 1) + (1 + 1 + 1));
        assert_eq!(deserialize(&bytes).as_ref(), Some(&map));
        assert_eq!(deserialize(&[]), Some(Vec::new()));
        assert_eq!(deserialize(&[0, 0, 0, 0]), Some(Vec::new()));
        assert_eq!(deserialize(&[0]), Some(Vec::new()));
        assert_eq!(serialized_size(&map), bytes.len());
    }

    #[test]
    fn malformed() {
        assert_eq!(deserialize(&[1, 0, 0]), None);
        assert_eq!(deserialize(&[1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, b'a', 0]), None);
        assert_eq!(deserialize(&[255, 255, 255, 255]), None);
        // A missing NUL after the name.
        assert_eq!(deserialize(&[1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, b'a', b'b', 0]), None);
    }
}
