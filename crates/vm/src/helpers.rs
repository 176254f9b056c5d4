//! Helper functions, registered by id, as the kernel numbers them. Which ids exist, their names
//! and prototypes are rows of duet-helpers' table; [`crate::Module`] registers the rows marked
//! `vm`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use duet_helpers::xdp;

use crate::TrapKind;
use crate::http::HttpAccess;
use crate::memory::{MemoryMap, XdpState};
use crate::skb::{CsumLayer, SkbHook, SkbState};

/// What a helper asks the engine to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelperOutcome {
    /// Continue with this value in `r0`.
    Return(u64),
    /// End the program now with this value in `r0` (the conformance suite's "unwind").
    Exit(u64),
    /// Continue at the start of program `n` of the interpreter's module (`bpf_tail_call`); if
    /// there is no such program, or too many tail calls were made, continue after the call
    /// with `r0` unchanged, as Linux does.
    TailCall(u32),
    /// Continue with `r0` unchanged.
    Fallthrough,
    /// Call the program's function at instruction `callback` with `r1` = the index and
    /// `r2` = `ctx`, for indexes `0..count` while it returns 0; then continue with `r0` = the
    /// number of calls made (`bpf_loop`). The engine runs the calls, each on a new stack frame.
    Loop {
        /// The callback's first instruction.
        callback: usize,
        /// `r2` of every call.
        ctx: u64,
        /// At most this many calls.
        count: u32,
    },
}

/// An error a helper reports; the run ends with [`TrapKind::HelperFailed`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HelperError {
    /// A pointer argument does not point into readable or writable guest memory.
    #[error("argument {arg}: {trap}")]
    BadPointer {
        /// Argument number, 1-based (r1..r5).
        arg: u8,
        /// The failed access (in the message only, so chains print it once).
        trap: TrapKind,
    },
    /// Any other failure, in words.
    #[error("{0}")]
    Failed(String),
}

/// What a helper sees of the running program: checked access to guest memory and the packet.
pub struct HelperContext<'a, 'm> {
    pub(crate) memory: &'a mut MemoryMap<'m>,
    /// The exchange of an http program's run (`run_http`); `None` in every other run.
    pub(crate) http: Option<HttpAccess<'a>>,
}

impl fmt::Debug for HelperContext<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HelperContext").finish_non_exhaustive()
    }
}

impl HelperContext<'_, '_> {
    /// Copies `buf.len()` guest bytes at `addr` into `buf`.
    pub fn read(&self, arg: u8, addr: u64, buf: &mut [u8]) -> Result<(), HelperError> {
        let p =
            self.memory.translate_read(addr, buf.len() as u64).map_err(|trap| HelperError::BadPointer { arg, trap })?;
        // SAFETY: `translate_read` proved `[p, p + len)` lies inside one live region that the
        // current run borrows; `buf` is a distinct Rust buffer, so the ranges cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Borrows `len` guest bytes at `addr` (for keys, values and buffers helpers only read).
    pub fn slice(&self, arg: u8, addr: u64, len: usize) -> Result<&[u8], HelperError> {
        let p = self.memory.translate_read(addr, len as u64).map_err(|trap| HelperError::BadPointer { arg, trap })?;
        // SAFETY: `translate_read` proved `[p, p + len)` lies inside one region that stays live
        // for the whole run, which outlives this borrow of the context.
        Ok(unsafe { std::slice::from_raw_parts(p, len) })
    }

    /// Copies `data` into guest memory at `addr`.
    pub fn write(&mut self, arg: u8, addr: u64, data: &[u8]) -> Result<(), HelperError> {
        let p = self
            .memory
            .translate_write(addr, data.len() as u64)
            .map_err(|trap| HelperError::BadPointer { arg, trap })?;
        // SAFETY: `translate_write` proved `[p, p + len)` lies inside one live writable region;
        // `data` is a Rust slice that does not alias guest memory handed out mutably elsewhere.
        unsafe { std::ptr::copy(data.as_ptr(), p, data.len()) };
        Ok(())
    }
}

impl HelperContext<'_, '_> {
    /// Whether the running program has an XDP packet.
    pub fn has_xdp_packet(&self) -> bool {
        self.memory.xdp.is_some()
    }

    /// The packet's bounds as offsets into its buffer (duet-helpers' rules work on these).
    fn xdp_bounds(x: &XdpState) -> xdp::Bounds {
        xdp::Bounds {
            data_meta: x.data_meta as usize,
            data: x.data as usize,
            data_end: x.data_end as usize,
            buf_len: x.buf.len as usize,
        }
    }

    /// `bpf_xdp_adjust_head`: moves `data` by `delta` bytes, keeping any metadata in front of it.
    /// Returns `false` (the helper returns -EINVAL) when the move leaves the buffer's bounds, with
    /// the kernel's limits ([`xdp::Bounds::adjust_head`]).
    pub fn xdp_adjust_head(&mut self, delta: i64) -> bool {
        let Some(x) = self.memory.xdp else { return false };
        let Some(b) = Self::xdp_bounds(&x).adjust_head(delta) else { return false };
        let metalen = b.data - b.data_meta;
        if metalen > 0 {
            // SAFETY: both ranges lie inside the packet buffer region (`adjust_head` keeps the
            // new metadata after the frame header and before the new `data`); `copy` allows
            // overlap.
            unsafe { std::ptr::copy(x.buf.ptr.add(x.data_meta as usize), x.buf.ptr.add(b.data_meta), metalen) };
        }
        self.memory.xdp = Some(XdpState { data_meta: b.data_meta as u64, data: b.data as u64, ..x });
        self.memory.refresh_packet();
        true
    }

    /// `bpf_xdp_adjust_tail`: moves `data_end` by `delta`; grown bytes are zeroed. `false` when it
    /// would pass the end of the frame (minus the kernel's tailroom) or leave under 14 bytes.
    pub fn xdp_adjust_tail(&mut self, delta: i64) -> bool {
        let Some(x) = self.memory.xdp else { return false };
        let Some(b) = Self::xdp_bounds(&x).adjust_tail(delta) else { return false };
        let data_end = b.data_end as u64;
        if data_end > x.data_end {
            // SAFETY: `x.data_end..data_end` lies inside the buffer (`adjust_tail` keeps it
            // before the tailroom).
            unsafe { std::ptr::write_bytes(x.buf.ptr.add(x.data_end as usize), 0, (data_end - x.data_end) as usize) };
        }
        self.memory.xdp = Some(XdpState { data_end, ..x });
        self.memory.refresh_packet();
        true
    }

    /// `bpf_xdp_adjust_meta`: moves `data_meta` by `delta`. `Err(errno)` as the kernel returns:
    /// -EINVAL out of bounds, -EACCES when the metadata length is not a multiple of 4 up to 32.
    pub fn xdp_adjust_meta(&mut self, delta: i64) -> Result<(), i64> {
        let Some(x) = self.memory.xdp else { return Err(-22) };
        let Some(b) = Self::xdp_bounds(&x).adjust_meta(delta) else { return Err(-22) };
        let metalen = b.data - b.data_meta;
        if metalen % 4 != 0 || metalen > 32 {
            return Err(-13);
        }
        self.memory.xdp = Some(XdpState { data_meta: b.data_meta as u64, ..x });
        self.memory.refresh_packet();
        Ok(())
    }
}

impl HelperContext<'_, '_> {
    /// The skb hook of the running program, when it runs on an skb ([`crate::Interpreter::run_skb`]).
    pub fn skb_hook(&self) -> Option<SkbHook> {
        self.memory.skb.map(|s| s.hook)
    }

    /// The packet of an skb run whose program may change it (a TC classifier).
    fn writable_skb(&self, helper: &str) -> Result<SkbState, HelperError> {
        self.memory
            .skb
            .filter(|s| s.hook.packet_writable())
            .ok_or_else(|| HelperError::Failed(format!("{helper} changes the packet, which only TC classifiers may")))
    }

    /// `bpf_skb_load_bytes(skb, offset, to, len)`: copies packet bytes to `to`; on -EFAULT (the
    /// bytes are not all in the packet) fills `to` with zeros, as the kernel does.
    pub(crate) fn skb_load_bytes(&mut self, offset: u64, to: u64, len: u64) -> Result<i64, HelperError> {
        let Some(skb) = self.memory.skb else {
            return Err(HelperError::Failed(
                "skb_load_bytes needs an skb program (socket filter, TC, cgroup skb)".into(),
            ));
        };
        let len = u64::from(len as u32);
        let fill =
            |bytes: &[u8]| self.memory.fill(to, len, bytes).map_err(|trap| HelperError::BadPointer { arg: 3, trap });
        match crate::skb::load_range(skb.packet.len as usize, offset, len) {
            Some(start) => {
                // SAFETY: `start..start + len` lies inside the packet region (checked by
                // `load_range`), which stays live for the whole run; `fill` copies with overlap
                // allowed.
                let bytes = unsafe { std::slice::from_raw_parts(skb.packet.ptr.add(start), len as usize) };
                fill(bytes)?;
                Ok(0)
            }
            None => {
                fill(&[])?;
                Ok(crate::skb::LOAD_FAILED)
            }
        }
    }

    /// `bpf_skb_store_bytes(skb, offset, from, len, flags)`.
    pub(crate) fn skb_store_bytes(&mut self, offset: u64, from: u64, len: u64, flags: u64) -> Result<i64, HelperError> {
        let skb = self.writable_skb("skb_store_bytes")?;
        let len = u64::from(len as u32);
        let start = match crate::skb::store_range(skb.packet.len as usize, offset, len, flags) {
            Ok(start) => start,
            Err(errno) => return Ok(errno),
        };
        let src = self.memory.translate_read(from, len).map_err(|trap| HelperError::BadPointer { arg: 3, trap })?;
        // SAFETY: `src..src + len` is readable guest memory (just checked) and
        // `start..start + len` lies inside the writable packet region (`store_range`); both stay
        // live for the run, and `copy` allows them to overlap.
        unsafe { std::ptr::copy(src, skb.packet.ptr.add(start), len as usize) };
        Ok(0)
    }

    /// `bpf_l3_csum_replace` / `bpf_l4_csum_replace(skb, offset, from, to, flags)`.
    pub(crate) fn skb_csum_replace(
        &mut self,
        layer: CsumLayer,
        offset: u64,
        from: u64,
        to: u64,
        flags: u64,
    ) -> Result<i64, HelperError> {
        let name = if layer == CsumLayer::L3 { "l3_csum_replace" } else { "l4_csum_replace" };
        let skb = self.writable_skb(name)?;
        // SAFETY: the packet region is writable, live for the whole run, and no other reference
        // to it exists while the helper runs.
        let packet = unsafe { std::slice::from_raw_parts_mut(skb.packet.ptr, skb.packet.len as usize) };
        Ok(crate::skb::csum_replace(layer, packet, offset, from, to, flags))
    }
}

/// The kernel's name for helper `id` (`map_lookup_elem`), if duet's helper table has it, for
/// messages about helpers duet does not provide.
pub fn kernel_helper_name(id: i64) -> Option<&'static str> {
    duet_helpers::helper(id).filter(|h| !h.is_duet()).map(|h| h.kernel_name())
}

/// A helper: takes `r1..=r5`, returns what to do next.
pub type Helper =
    Arc<dyn Fn(&mut HelperContext<'_, '_>, &[u64; 5]) -> Result<HelperOutcome, HelperError> + Send + Sync>;

/// Ids below this are looked up in a flat table (kernel helper ids are small).
const DENSE_IDS: u32 = 1024;

/// The helpers available to a program, by id.
#[derive(Clone, Default)]
pub struct Helpers {
    dense: Vec<Option<Helper>>,
    sparse: BTreeMap<u32, Helper>,
}

impl fmt::Debug for Helpers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<u32> = self.ids().collect();
        f.debug_struct("Helpers").field("ids", &ids).finish()
    }
}

impl Helpers {
    /// No helpers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers (or replaces) helper `id`.
    pub fn register(
        &mut self,
        id: u32,
        f: impl Fn(&mut HelperContext<'_, '_>, &[u64; 5]) -> Result<HelperOutcome, HelperError> + Send + Sync + 'static,
    ) -> &mut Self {
        let helper: Helper = Arc::new(f);
        if id < DENSE_IDS {
            let i = id as usize;
            if self.dense.len() <= i {
                self.dense.resize(i + 1, None);
            }
            self.dense[i] = Some(helper);
        } else {
            self.sparse.insert(id, helper);
        }
        self
    }

    /// The helper registered as `id`.
    #[inline]
    pub fn get(&self, id: u32) -> Option<&Helper> {
        if id < DENSE_IDS { self.dense.get(id as usize).and_then(Option::as_ref) } else { self.sparse.get(&id) }
    }

    /// Registered ids, ascending.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.dense
            .iter()
            .enumerate()
            .filter(|(_, h)| h.is_some())
            .map(|(i, _)| i as u32)
            .chain(self.sparse.keys().copied())
    }
}

/// The conformance suite's helper 5: returns its argument; a zero argument ends the program
/// with `r0 = 0`.
pub fn unwind_helper(_: &mut HelperContext<'_, '_>, args: &[u64; 5]) -> Result<HelperOutcome, HelperError> {
    Ok(if args[0] == 0 { HelperOutcome::Exit(0) } else { HelperOutcome::Return(args[0]) })
}
