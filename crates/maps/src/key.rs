//! Owned copies of keys in the hash indexes: short keys inline (no allocation per insert),
//! longer ones boxed.

/// Keys up to this many bytes are stored inline: integers, IPv4 flow tuples, IPv6 addresses.
const INLINE: usize = 16;

/// An owned key.
#[derive(Clone, Debug)]
pub(crate) enum Key {
    /// A short key.
    Inline {
        /// Bytes used in `bytes`.
        len: u8,
        /// The key, zero-padded.
        bytes: [u8; INLINE],
    },
    /// A long key.
    Boxed(Box<[u8]>),
}

impl Key {
    /// Copies `key`.
    pub(crate) fn new(key: &[u8]) -> Key {
        if key.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..key.len()].copy_from_slice(key);
            Key::Inline { len: key.len() as u8, bytes }
        } else {
            Key::Boxed(key.into())
        }
    }

    /// The key's bytes.
    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..*len as usize],
            Key::Boxed(bytes) => bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_inline_and_boxed() {
        for len in [0, 1, 4, 16, 17, 40, 512] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let key = Key::new(&bytes);
            assert_eq!(key.as_bytes(), &bytes[..]);
            assert_eq!(matches!(key, Key::Inline { .. }), len <= INLINE);
        }
    }
}
