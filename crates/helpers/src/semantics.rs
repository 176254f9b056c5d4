//! Helper semantics every engine performs alike: what a map operation returns to the program,
//! which maps hold values a program may reach, `bpf_csum_diff` and `bpf_trace_printk`'s format.
//! duet-vm's helpers and duet-wasm's imports call these after mapping guest memory to slices.

use duet_maps::{MapError, MapType};

/// Map types whose values a program cannot look up or update (`bpf_map_lookup_elem`,
/// `bpf_map_update_elem`, the Wasm `map_lookup`, `map_update` and `map_add_u64`): a prog_array
/// holds programs, a ring buffer records.
pub const NO_VALUES: [MapType; 2] = [MapType::ProgArray, MapType::RingBuf];

/// What a map update or delete returns to the program: `0`, or the kernel's negative errno.
pub fn map_errno(res: Result<(), MapError>) -> i64 {
    res.map_or_else(|e| e.errno(), |()| 0)
}

/// `bpf_csum_diff`: the 32-bit one's-complement sum of the negated `from` words, the `to` words
/// and `seed`, as the kernel's `csum_partial` computes it.
pub fn csum_diff(from: &[u8], to: &[u8], seed: u32) -> u64 {
    let mut sum = u64::from(seed);
    for w in from.chunks_exact(4) {
        sum += u64::from(!u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
    }
    for w in to.chunks_exact(4) {
        sum += u64::from(u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
    }
    while sum >> 32 != 0 {
        sum = (sum & 0xffff_ffff) + (sum >> 32);
    }
    sum
}

/// Formats a `bpf_trace_printk` line: `%d %i %u %x %X %p %c %%` with `l`/`ll` modifiers; the
/// format ends at its first NUL, and trailing newlines are dropped.
pub fn format_printk(fmt: &[u8], args: &[u64; 3]) -> String {
    let fmt = fmt.split(|b| *b == 0).next().unwrap_or(&[]);
    let fmt = String::from_utf8_lossy(fmt);
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut long = 0;
        while chars.peek() == Some(&'l') {
            chars.next();
            long += 1;
        }
        let Some(conv) = chars.next() else { break };
        let raw = if conv == '%' { 0 } else { *args.next().unwrap_or(&0) };
        let v = if long == 0 { raw & 0xffff_ffff } else { raw };
        match conv {
            '%' => out.push('%'),
            'd' | 'i' => out.push_str(&if long == 0 { (v as u32 as i32).to_string() } else { (v as i64).to_string() }),
            'u' => out.push_str(&v.to_string()),
            'x' => out.push_str(&format!("{v:x}")),
            'X' => out.push_str(&format!("{v:X}")),
            'p' => out.push_str(&format!("{raw:#x}")),
            'c' => out.push(char::from(v as u8)),
            other => {
                out.push('%');
                out.push(other);
            }
        }
    }
    out.trim_end_matches('\n').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csum_diff_of_identical_words_cancels() {
        let words = [0x45u8, 0, 0, 0x54, 0x12, 0x34, 0x40, 0x00];
        assert_eq!(csum_diff(&words, &words, 0), 0xffff_ffff);
        assert_eq!(csum_diff(&[], &[1, 0, 0, 0], 2), 3);
    }

    #[test]
    fn printk_formats() {
        assert_eq!(format_printk(b"n=%d u=%u x=%x %%\n\0", &[u64::MAX, 7, 255]), "n=-1 u=7 x=ff %");
        assert_eq!(format_printk(b"%lld\0", &[u64::MAX, 0, 0]), "-1");
    }

    #[test]
    fn map_results_are_kernel_errnos() {
        assert_eq!(map_errno(Ok(())), 0);
        assert_eq!(map_errno(Err(MapError::NotFound)), -2);
        assert_eq!(map_errno(Err(MapError::Exists)), -17);
    }
}
