//! The abstract machine state: registers, stack slots, call frames and held references.

use core::fmt;

use crate::helpers::Ref;
use crate::scalar::Scalar;

/// The maximum stack of one frame, in bytes.
pub const MAX_STACK: i64 = 512;
/// The maximum number of call frames (the kernel's `MAX_CALL_FRAMES`).
pub const MAX_CALL_FRAMES: usize = 8;
/// Pointer offsets (constant or variable) must stay below this magnitude (`BPF_MAX_VAR_OFF`).
pub const MAX_VAR_OFF: i64 = 1 << 29;
/// The largest packet offset the kernel tracks (`MAX_PACKET_OFF`).
pub const MAX_PACKET_OFF: u64 = 0xffff;

/// What kind of value a register holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegType {
    /// Never written, or clobbered by a call.
    NotInit,
    /// A number.
    Scalar,
    /// The program context (`struct xdp_md *`, `struct __sk_buff *`).
    Ctx,
    /// A pointer into the stack of call frame `frame` (0 = the program's own frame).
    Stack {
        /// Index of the frame in the call chain.
        frame: u8,
    },
    /// A pointer into packet data (`xdp_md.data` plus offsets); `range` bytes are proven.
    Packet,
    /// A pointer into packet metadata (`xdp_md.data_meta`); `range` bytes are proven.
    PacketMeta,
    /// `xdp_md.data_end`: only for comparisons.
    PacketEnd,
    /// A pointer into a value of map `map`.
    MapValue {
        /// Index into the map table.
        map: u32,
    },
    /// The result of a map lookup before its NULL check.
    MapValueOrNull {
        /// Index into the map table.
        map: u32,
    },
    /// A map handle from `lddw rX, map_fd N`: only for passing to helpers.
    MapHandle {
        /// Index into the map table.
        map: u32,
    },
    /// A ring buffer record of `size` bytes (reference-tracked until submitted or discarded).
    Record {
        /// Record size in bytes.
        size: u32,
    },
    /// The result of `bpf_ringbuf_reserve` before its NULL check.
    RecordOrNull {
        /// Record size in bytes.
        size: u32,
    },
    /// A socket from a lookup, not NULL: `struct bpf_sock *` (`bpf_sk_lookup_tcp/udp`, a sockmap
    /// or sockhash lookup), or `struct bpf_sock_common *` when `common` (`bpf_skc_lookup_tcp`).
    /// Its fields may be read as the kernel's `bpf_sock_is_valid_access` allows; it may not be
    /// written, offset or dereferenced otherwise, and it is reference-tracked until
    /// `bpf_sk_release`.
    Socket {
        /// A `struct bpf_sock_common` (fewer readable fields).
        common: bool,
    },
    /// A socket's TCP state (`struct bpf_tcp_sock *`, from `bpf_tcp_sock`), not NULL: read-only
    /// fields as the kernel's `bpf_tcp_sock_is_valid_access` allows. It shares the reference of
    /// the socket it came from (`ref_id`), and goes when that is released.
    TcpSock,
    /// `bpf_tcp_sock`'s result before its NULL check.
    TcpSockOrNull,
    /// An AF_XDP socket from an xskmap lookup, not NULL (`struct bpf_xdp_sock *`): only its
    /// `queue_id` (4 bytes at offset 0) may be read.
    XdpSock,
    /// A socket lookup's result before its NULL check.
    SocketOrNull {
        /// A `struct bpf_sock_common`.
        common: bool,
    },
    /// A function of the program (`lddw rX, func`, BPF_PSEUDO_FUNC): only for passing to a
    /// helper that calls it back (bpf_loop).
    Func {
        /// Index of the subprogram.
        subprog: u32,
    },
    /// A pointer that a helper call invalidated (packet pointers after `bpf_xdp_adjust_*`, a
    /// record after it was submitted).
    Stale {
        /// The instruction whose call invalidated it.
        at: u32,
        /// What it pointed to.
        was: StaleKind,
    },
}

/// What an invalidated pointer pointed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StaleKind {
    /// Packet data, metadata or end.
    Packet,
    /// A ring buffer record.
    Record,
    /// A socket reference.
    Socket,
}

impl RegType {
    /// Whether this is some kind of pointer.
    pub fn is_pointer(self) -> bool {
        !matches!(self, RegType::NotInit | RegType::Scalar)
    }

    /// Whether this is a pointer that may be NULL (a lookup's or a reservation's result before
    /// its NULL check).
    pub fn is_nullable(self) -> bool {
        matches!(
            self,
            RegType::MapValueOrNull { .. }
                | RegType::RecordOrNull { .. }
                | RegType::SocketOrNull { .. }
                | RegType::TcpSockOrNull
        )
    }

    /// Whether the kernel knows a pointer of this kind is not NULL (its `reg_not_null`: map
    /// values, map handles, ring buffer records, sockets), so that `ptr == 0` is decided and a
    /// pointer that may be NULL found equal to it is not NULL. Stack, context and packet
    /// pointers are not among them.
    pub fn known_not_null(self) -> bool {
        matches!(
            self,
            RegType::MapValue { .. }
                | RegType::MapHandle { .. }
                | RegType::Record { .. }
                | RegType::Socket { .. }
                | RegType::TcpSock
        )
    }

    /// Whether this is packet data or metadata.
    pub fn is_packet(self) -> bool {
        matches!(self, RegType::Packet | RegType::PacketMeta)
    }

    /// A short name, as in messages: `ctx`, `pkt`, `map_value`, ...
    pub fn name(self) -> &'static str {
        match self {
            RegType::NotInit => "uninitialised",
            RegType::Scalar => "scalar",
            RegType::Ctx => "ctx",
            RegType::Stack { .. } => "fp",
            RegType::Packet => "pkt",
            RegType::PacketMeta => "pkt_meta",
            RegType::PacketEnd => "pkt_end",
            RegType::MapValue { .. } => "map_value",
            RegType::MapValueOrNull { .. } => "map_value_or_null",
            RegType::MapHandle { .. } => "map_ptr",
            RegType::Record { .. } => "ringbuf_record",
            RegType::RecordOrNull { .. } => "ringbuf_record_or_null",
            RegType::Socket { common: false } => "sock",
            RegType::Socket { common: true } => "sock_common",
            RegType::SocketOrNull { common: false } => "sock_or_null",
            RegType::SocketOrNull { common: true } => "sock_common_or_null",
            RegType::XdpSock => "xdp_sock",
            RegType::TcpSock => "tcp_sock",
            RegType::TcpSockOrNull => "tcp_sock_or_null",
            RegType::Func { .. } => "func",
            RegType::Stale { .. } => "invalidated",
        }
    }

    /// A phrase for messages: "a packet pointer", "a map handle", ...
    pub fn describe(self) -> &'static str {
        match self {
            RegType::NotInit => "uninitialised",
            RegType::Scalar => "a number",
            RegType::Ctx => "the context pointer",
            RegType::Stack { .. } => "a stack pointer",
            RegType::Packet => "a packet pointer",
            RegType::PacketMeta => "a packet metadata pointer",
            RegType::PacketEnd => "the packet end pointer (data_end)",
            RegType::MapValue { .. } => "a map value pointer",
            RegType::MapValueOrNull { .. } => "a map value pointer that may be NULL",
            RegType::MapHandle { .. } => "a map handle",
            RegType::Record { .. } => "a ring buffer record",
            RegType::RecordOrNull { .. } => "a ring buffer record that may be NULL",
            RegType::Socket { common: false } => "a socket (struct bpf_sock)",
            RegType::Socket { common: true } => "a socket (struct bpf_sock_common)",
            RegType::SocketOrNull { .. } => "a socket that may be NULL",
            RegType::XdpSock => "an AF_XDP socket (struct bpf_xdp_sock)",
            RegType::TcpSock => "a TCP socket's state (struct bpf_tcp_sock)",
            RegType::TcpSockOrNull => "a TCP socket's state that may be NULL",
            RegType::Func { .. } => "a function pointer (a callback)",
            RegType::Stale { .. } => "an invalidated pointer",
        }
    }
}

/// The abstract value of one register.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reg {
    /// Kind of value.
    pub ty: RegType,
    /// Constant offset of a pointer from its base.
    pub off: i32,
    /// The value of a scalar, or the variable part of a pointer's offset.
    pub val: Scalar,
    /// Identity: scalars copied from one another, packet pointers with the same variable part,
    /// lookup results before their NULL check. Zero means none. For `NotInit`, one plus the
    /// instruction of the call that clobbered the register (zero if never written).
    pub id: u32,
    /// Packet pointers: bytes after the pointer's base proven to lie before `data_end`.
    pub range: u32,
    /// Packet pointers: the instruction whose comparison proved `range` (`u32::MAX` if none).
    pub range_pc: u32,
    /// Reference-tracked pointers: the reference this pointer belongs to (zero if none).
    pub ref_id: u32,
}

impl fmt::Debug for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Reg {
    /// An uninitialised register.
    pub const NOT_INIT: Reg =
        Reg { ty: RegType::NotInit, off: 0, val: Scalar::UNKNOWN, id: 0, range: 0, range_pc: u32::MAX, ref_id: 0 };

    /// A register clobbered by the call at `pc`.
    pub fn clobbered(pc: usize) -> Reg {
        Reg { id: u32::try_from(pc).map_or(0, |p| p.saturating_add(1)), ..Reg::NOT_INIT }
    }

    /// A scalar.
    pub fn scalar(val: Scalar) -> Reg {
        Reg { ty: RegType::Scalar, val, ..Reg::NOT_INIT }
    }

    /// A pointer of kind `ty` at constant offset 0.
    pub fn pointer(ty: RegType) -> Reg {
        Reg { ty, val: Scalar::constant(0), ..Reg::NOT_INIT }
    }

    /// Whether the register was written.
    pub fn is_init(&self) -> bool {
        self.ty != RegType::NotInit
    }

    /// Whether this is a scalar.
    pub fn is_scalar(&self) -> bool {
        self.ty == RegType::Scalar
    }

    /// The scalar's value when known exactly.
    pub fn as_const(&self) -> Option<u64> {
        if self.is_scalar() { self.val.as_const() } else { None }
    }

    /// The instruction of the call that clobbered this register, if that is why it is uninitialised.
    pub fn clobbered_by(&self) -> Option<usize> {
        (self.ty == RegType::NotInit && self.id > 0).then(|| self.id as usize - 1)
    }
}

impl fmt::Display for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ty {
            RegType::NotInit => f.write_str("uninit"),
            RegType::Scalar => {
                if self.id != 0 && self.val.as_const().is_none() {
                    write!(f, "scalar{}#{}", self.val, self.id)
                } else if self.val.as_const().is_some() {
                    write!(f, "{}", self.val)
                } else {
                    write!(f, "scalar{}", self.val)
                }
            }
            RegType::Stale { at, .. } => write!(f, "invalidated(by insn {at})"),
            ty => {
                f.write_str(ty.name())?;
                match ty {
                    RegType::Stack { frame } if frame > 0 => write!(f, "[frame {frame}]")?,
                    RegType::Func { subprog } => write!(f, "[subprog {subprog}]")?,
                    RegType::MapValue { map } | RegType::MapValueOrNull { map } | RegType::MapHandle { map } => {
                        write!(f, "[map {map}]")?
                    }
                    RegType::Record { size } | RegType::RecordOrNull { size } => write!(f, "[{size} bytes]")?,
                    _ => {}
                }
                let mut parts: Vec<String> = Vec::new();
                if self.off != 0 {
                    parts.push(format!("off={}", self.off));
                }
                if !self.val.is_const(0) {
                    parts.push(format!("var={}", self.val));
                }
                if ty.is_packet() {
                    parts.push(format!("r={}", self.range));
                }
                if self.id != 0 && ty.is_nullable() {
                    parts.push(format!("id={}", self.id));
                }
                if self.ref_id != 0 {
                    parts.push(format!("ref={}", self.ref_id));
                }
                if !parts.is_empty() {
                    write!(f, "({})", parts.join(","))?;
                }
                Ok(())
            }
        }
    }
}

/// What one stack byte holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ByteKind {
    /// Never written.
    Invalid,
    /// Written with data the verifier does not track.
    Misc,
    /// Known to be zero.
    Zero,
    /// Part of a spilled register (see [`Slot::spill`]).
    Spill,
}

/// One 8-byte stack slot.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Slot {
    /// Byte kinds, in address order (byte 0 is at the slot's lowest address).
    pub bytes: [ByteKind; 8],
    /// The spilled register, when `bytes` has `Spill` entries: they start at byte 0.
    pub spill: Option<Reg>,
}

impl Slot {
    /// A slot never written.
    pub const INVALID: Slot = Slot { bytes: [ByteKind::Invalid; 8], spill: None };

    /// Number of leading bytes that hold the spilled register.
    pub fn spill_size(&self) -> usize {
        if self.spill.is_none() {
            return 0;
        }
        self.bytes.iter().take_while(|b| **b == ByteKind::Spill).count()
    }

    /// Whether the slot holds a spilled pointer.
    pub fn has_pointer(&self) -> bool {
        self.spill.is_some_and(|r| r.ty.is_pointer())
    }

    /// Whether the slot is entirely unwritten.
    pub fn is_invalid(&self) -> bool {
        self.spill.is_none() && self.bytes.iter().all(|b| *b == ByteKind::Invalid)
    }
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(spill) = self.spill {
            let n = self.spill_size();
            if n == 8 {
                return write!(f, "{spill}");
            }
            write!(f, "{spill}/{n}b ")?;
        }
        for b in self.bytes.iter().rev() {
            f.write_str(match b {
                ByteKind::Invalid => "?",
                ByteKind::Misc => "m",
                ByteKind::Zero => "0",
                ByteKind::Spill => "r",
            })?;
        }
        Ok(())
    }
}

/// One call frame: its registers and its stack.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Frame {
    /// r0..=r10.
    pub regs: [Reg; 11],
    /// Slot `i` covers bytes `fp - 8*(i+1) .. fp - 8*i`; grows as the frame touches deeper slots.
    pub stack: Vec<Slot>,
    /// The instruction that called this frame (`usize::MAX` for the program's own frame).
    pub callsite: usize,
    /// Index of the subprogram this frame runs.
    pub subprog: usize,
    /// Whether a helper runs this frame as a callback (bpf_loop): it returns to the helper call
    /// itself, which may call it again, and must return 0 or 1.
    pub callback: bool,
    /// References held when the frame was entered (a callback must not keep new ones).
    pub entry_refs: usize,
    /// How many times, on this path, the frame's current bpf_loop call has run its callback
    /// without the call being passed (the kernel's `callback_depth`): the callback is explored
    /// at most as many times as the count argument can be large. Not compared between states.
    pub callback_depth: u64,
}

impl Frame {
    /// A frame entered at `callsite` running `subprog`; r10 points at its own stack.
    pub fn new(index: u8, callsite: usize, subprog: usize) -> Frame {
        let mut regs = [Reg::NOT_INIT; 11];
        regs[10] = Reg::pointer(RegType::Stack { frame: index });
        Frame { regs, stack: Vec::new(), callsite, subprog, callback: false, entry_refs: 0, callback_depth: 0 }
    }

    /// The slot at `index`, or an unwritten one.
    pub fn slot(&self, index: usize) -> &Slot {
        self.stack.get(index).unwrap_or(&Slot::INVALID)
    }

    /// The slot at `index`, growing the stack if needed.
    pub fn slot_mut(&mut self, index: usize) -> &mut Slot {
        if self.stack.len() <= index {
            self.stack.resize(index + 1, Slot::INVALID);
        }
        &mut self.stack[index]
    }
}

/// A reference the program holds and must release (a reserved ring buffer record, a socket).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HeldRef {
    /// The reference id (as in [`Reg::ref_id`]).
    pub id: u32,
    /// The instruction that acquired it.
    pub pc: u32,
    /// What it is.
    pub kind: Ref,
}

/// The whole abstract machine state at one instruction.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct State {
    /// Call frames; the last is the running one.
    pub frames: Vec<Frame>,
    /// References held.
    pub refs: Vec<HeldRef>,
    /// A path the CPU may take only speculatively (the kernel's Spectre v1 exploration for a
    /// loader without CAP_PERFMON: the branch a known comparison rules out, with the compared
    /// registers unknown). Its instruction errors end it quietly (the kernel places a barrier
    /// there); only a loop it cannot leave, or the budget, rejects the program.
    pub speculative: bool,
    /// Stack stores this path has executed that the kernel follows with a Spectre v4 barrier
    /// for a loader without CAP_PERFMON (its `nospec_result`, which it keeps per instruction
    /// once any path sets it), sorted: a speculative path ends after any of them. Only the
    /// path's own history counts, which the kernel has always seen too. Not compared when
    /// states are: a state with fewer barriers explores at least as much.
    pub barriers: Vec<u32>,
}

impl State {
    /// The running frame.
    pub fn cur(&self) -> &Frame {
        // A state always has at least the program's own frame.
        &self.frames[self.frames.len() - 1]
    }

    /// The running frame, mutably.
    pub fn cur_mut(&mut self) -> &mut Frame {
        let n = self.frames.len() - 1;
        &mut self.frames[n]
    }

    /// Register `r` of the running frame.
    pub fn reg(&self, r: u8) -> &Reg {
        &self.cur().regs[usize::from(r)]
    }

    /// Register `r` of the running frame, mutably.
    pub fn reg_mut(&mut self, r: u8) -> &mut Reg {
        &mut self.cur_mut().regs[usize::from(r)]
    }

    /// Applies `f` to every register and spilled register of every frame.
    pub fn for_each_reg(&mut self, mut f: impl FnMut(&mut Reg)) {
        for frame in &mut self.frames {
            for reg in &mut frame.regs {
                f(reg);
            }
            for slot in &mut frame.stack {
                if let Some(spill) = &mut slot.spill {
                    f(spill);
                }
            }
        }
    }

    /// Renders the initialised registers of the running frame (`R1=ctx R10=fp`).
    pub fn regs_string(&self) -> String {
        let mut out = String::new();
        for (i, reg) in self.cur().regs.iter().enumerate() {
            if reg.is_init() {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(&format!("R{i}={reg}"));
            }
        }
        for (i, slot) in self.cur().stack.iter().enumerate() {
            if !slot.is_invalid() {
                out.push_str(&format!(" fp-{}={slot:?}", (i + 1) * 8));
            }
        }
        if self.frames.len() > 1 {
            out.push_str(&format!(" (frame {})", self.frames.len() - 1));
        }
        out
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.regs_string())
    }
}

// === impl State: pruning ===

/// A partial bijection between the ids of an old state and a new one.
#[derive(Default)]
pub(crate) struct IdMap {
    pairs: Vec<(u32, u32)>,
}

impl IdMap {
    pub(crate) fn clear(&mut self) {
        self.pairs.clear();
    }

    /// Whether `old` may correspond to `cur`, recording the pairing.
    fn check(&mut self, old: u32, cur: u32) -> bool {
        if old == 0 {
            return true;
        }
        if cur == 0 {
            return false;
        }
        for &(o, c) in &self.pairs {
            if o == old {
                return c == cur;
            }
            if c == cur {
                return false;
            }
        }
        self.pairs.push((old, cur));
        true
    }
}

/// How strictly [`State::covers`] compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compare {
    /// `old` describes every concrete state `cur` does (pruning).
    Subsumes,
    /// `old` and `cur` are the same abstract state (loop detection).
    Exact,
    /// As [`Compare::Subsumes`], but numbers must be exactly the old ones: the kernel's
    /// `explore_alu_limits`, once an unprivileged `ptr += reg` with an unknown offset was seen,
    /// so that every path with other bounds reaches the instruction and has its masking checked.
    SubsumesExactScalars,
}

fn reg_covers(old: &Reg, cur: &Reg, ids: &mut IdMap, mode: Compare) -> bool {
    match old.ty {
        // The old path never read it, or failed when it did (and was reported).
        RegType::NotInit => return true,
        RegType::Stale { .. } => return mode != Compare::Exact || old == cur,
        _ => {}
    }
    if old.ty != cur.ty {
        return false;
    }
    let vals = match mode {
        Compare::SubsumesExactScalars if old.ty == RegType::Scalar => old.val == cur.val,
        Compare::Subsumes | Compare::SubsumesExactScalars => old.val.includes(&cur.val),
        Compare::Exact => old.val == cur.val,
    };
    if !vals {
        return false;
    }
    match old.ty {
        RegType::Scalar => ids.check(old.id, cur.id),
        _ => {
            old.off == cur.off
                && match mode {
                    Compare::Subsumes | Compare::SubsumesExactScalars => cur.range >= old.range,
                    Compare::Exact => cur.range == old.range,
                }
                && ids.check(old.id, cur.id)
                && ids.check(old.ref_id, cur.ref_id)
        }
    }
}

fn slot_covers(old: &Slot, cur: &Slot, ids: &mut IdMap, mode: Compare) -> bool {
    if mode == Compare::Exact {
        if old.bytes != cur.bytes {
            return false;
        }
        return match (&old.spill, &cur.spill) {
            (Some(a), Some(b)) => reg_covers(a, b, ids, mode),
            (None, None) => true,
            _ => false,
        };
    }
    let old_spill = old.spill_size();
    if old_spill > 0 {
        let Some(old_reg) = &old.spill else { return false };
        if cur.spill_size() == old_spill
            && let Some(cur_reg) = &cur.spill
        {
            if !reg_covers(old_reg, cur_reg, ids, mode) {
                return false;
            }
        } else if !(old_reg.is_scalar()
            && old_reg.val == Scalar::unknown_of_size(old_spill as u32)
            && cur.bytes[..old_spill].iter().all(|b| matches!(b, ByteKind::Misc | ByteKind::Zero)))
        {
            // An unknown spilled scalar is as good as untracked bytes; anything else must match.
            return false;
        }
    }
    for i in old_spill..8 {
        let ok = match old.bytes[i] {
            ByteKind::Invalid => true,
            ByteKind::Misc => match cur.bytes[i] {
                ByteKind::Misc | ByteKind::Zero => true,
                ByteKind::Spill => cur.spill.is_some_and(|r| r.is_scalar()),
                ByteKind::Invalid => false,
            },
            ByteKind::Zero => cur.bytes[i] == ByteKind::Zero,
            ByteKind::Spill => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

impl State {
    /// Whether `self` (a state already proven safe, or an ancestor for `Exact`) covers `cur`.
    /// Numbers in the registers of the program's own frame named by `imprecise` (bit i = ri)
    /// cover any number: nothing the verifier checks depends on them any more (the kernel's
    /// imprecise scalars, see `cfg::precise_liveness`).
    pub(crate) fn covers(&self, cur: &State, ids: &mut IdMap, mode: Compare, imprecise: u16) -> bool {
        ids.clear();
        // As the kernel: a speculative state never stands for an architectural one.
        if self.speculative && !cur.speculative {
            return false;
        }
        if self.frames.len() != cur.frames.len() || self.refs.len() != cur.refs.len() {
            return false;
        }
        for (old, new) in self.frames.iter().zip(&cur.frames) {
            if old.callsite != new.callsite {
                return false;
            }
        }
        for (f, (old, new)) in self.frames.iter().zip(&cur.frames).enumerate() {
            for (r, (a, b)) in old.regs.iter().zip(&new.regs).enumerate() {
                if f == 0 && imprecise & (1 << r) != 0 && a.ty == RegType::Scalar && b.ty == RegType::Scalar {
                    continue;
                }
                if !reg_covers(a, b, ids, mode) {
                    return false;
                }
            }
            // An unwritten slot in `old` is one no later instruction reads (or one that was
            // never written): its contents in `cur` do not matter.
            for (i, slot) in old.stack.iter().enumerate() {
                if slot.is_invalid() {
                    continue;
                }
                if !slot_covers(slot, new.slot(i), ids, mode) {
                    return false;
                }
            }
        }
        for (a, b) in self.refs.iter().zip(&cur.refs) {
            if a.kind != b.kind || !ids.check(a.id, b.id) {
                return false;
            }
        }
        true
    }
}
