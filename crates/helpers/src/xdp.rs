//! The XDP buffer as `BPF_PROG_TEST_RUN` lays it out, and the kernel's rules for
//! `bpf_xdp_adjust_head` and `bpf_xdp_adjust_tail` over it: duet-vm's helpers and duet-wasm's
//! imports move a packet's bounds with these, so a program grows and shrinks its packet, and is
//! refused, identically in both.

use crate::ETH_HLEN;

/// Headroom before the frame (`XDP_PACKET_HEADROOM`).
pub const HEADROOM: usize = 256;
/// Smallest buffer of one frame in `BPF_PROG_TEST_RUN` (a page).
pub const FRAME_SIZE: usize = 4096;
/// Tailroom the kernel reserves for `struct skb_shared_info` on x86_64.
pub const TAILROOM: usize = 320;
/// Size of the kernel's `struct xdp_frame`, which sits at the start of the headroom.
pub const FRAME_STRUCT: usize = 40;

/// The buffer length for a frame of `len` bytes: headroom, the frame, tailroom, at least a page.
pub const fn buffer_len(len: usize) -> usize {
    let n = HEADROOM + len + TAILROOM;
    if n > FRAME_SIZE { n } else { FRAME_SIZE }
}

/// A packet's bounds in its buffer, as offsets from the buffer's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Start of the metadata (equal to `data` when there is none).
    pub data_meta: usize,
    /// Start of the packet.
    pub data: usize,
    /// End of the packet.
    pub data_end: usize,
    /// The buffer's length.
    pub buf_len: usize,
}

impl Bounds {
    /// A fresh frame of `len` bytes at [`HEADROOM`] in a buffer of [`buffer_len`].
    pub const fn new(len: usize) -> Bounds {
        Bounds { data_meta: HEADROOM, data: HEADROOM, data_end: HEADROOM + len, buf_len: buffer_len(len) }
    }

    /// `bpf_xdp_adjust_head(delta)`: `data` (and the metadata in front of it) moves by `delta`;
    /// `None` (the helper's -EINVAL) when that leaves the room after `struct xdp_frame` or
    /// leaves fewer than 14 bytes.
    pub fn adjust_head(self, delta: i64) -> Option<Bounds> {
        let metalen = self.data - self.data_meta;
        let data = i64::try_from(self.data).ok()?.checked_add(delta)?;
        let low = (FRAME_STRUCT + metalen) as i64;
        let high = self.data_end as i64 - ETH_HLEN as i64;
        if data < low || data > high {
            return None;
        }
        let data = data as usize;
        Some(Bounds { data_meta: data - metalen, data, ..self })
    }

    /// `bpf_xdp_adjust_tail(delta)`: `data_end` moves by `delta` (grown bytes read as zero);
    /// `None` (-EINVAL) past the buffer's end minus [`TAILROOM`] or under 14 bytes.
    pub fn adjust_tail(self, delta: i64) -> Option<Bounds> {
        let data_end = i64::try_from(self.data_end).ok()?.checked_add(delta)?;
        let high = self.buf_len as i64 - TAILROOM as i64;
        if data_end > high || data_end < (self.data + ETH_HLEN) as i64 {
            return None;
        }
        Some(Bounds { data_end: data_end as usize, ..self })
    }

    /// `bpf_xdp_adjust_meta(delta)`: `data_meta` moves by `delta`; `None` (-EINVAL) when it
    /// would pass `data` or enter `struct xdp_frame`.
    pub fn adjust_meta(self, delta: i64) -> Option<Bounds> {
        let meta = i64::try_from(self.data_meta).ok()?.checked_add(delta)?;
        if meta < FRAME_STRUCT as i64 || meta > self.data as i64 {
            return None;
        }
        Some(Bounds { data_meta: meta as usize, ..self })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_limits() {
        let b = Bounds::new(60);
        assert_eq!(b.buf_len, FRAME_SIZE);
        let pushed = b.adjust_head(-20).unwrap();
        assert_eq!((pushed.data, pushed.data_end), (HEADROOM - 20, HEADROOM + 60));
        assert_eq!(b.adjust_head(-(HEADROOM as i64 - FRAME_STRUCT as i64)).map(|b| b.data), Some(FRAME_STRUCT));
        assert_eq!(b.adjust_head(-(HEADROOM as i64 - FRAME_STRUCT as i64) - 1), None, "into struct xdp_frame");
        assert_eq!(b.adjust_head(46).map(|b| b.data_end - b.data), Some(14));
        assert_eq!(b.adjust_head(47), None, "under 14 bytes");
        assert_eq!(b.adjust_tail(-46).map(|b| b.data_end - b.data), Some(14));
        assert_eq!(b.adjust_tail(-47), None);
        let room = (FRAME_SIZE - TAILROOM - (HEADROOM + 60)) as i64;
        assert!(b.adjust_tail(room).is_some());
        assert_eq!(b.adjust_tail(room + 1), None, "into the tailroom");
        let with_meta = b.adjust_meta(-8).unwrap();
        assert_eq!(with_meta.adjust_head(4).map(|b| b.data - b.data_meta), Some(8), "the metadata moves along");
        assert_eq!(b.adjust_meta(1), None, "past data");
    }
}
