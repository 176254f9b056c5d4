//! The reference interpreter.
//!
//! Instructions are decoded once, at construction, into a slot-indexed array; the run loop is a
//! single `match` over [`Op`], which the compiler turns into a jump table. Every `Op` variant is
//! matched explicitly, so adding a row to the opcode table without giving it semantics here is a
//! compile error. Per run there is no allocation: the stack buffer belongs to the interpreter and
//! the region table and call frames live on the Rust stack.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use std::sync::{Arc, OnceLock};

use duet_isa::{Insn, Op, Program, PseudoSrc};

use crate::helpers::{HelperContext, HelperOutcome, Helpers};
use crate::http::{HttpExchange, HttpMd, HttpProgram, HttpRun, HttpRunState};
use crate::memory::{Context, MemoryMap, PACKET_REGION, Region, RegionKind, SharedRegions, XdpState};
use crate::skb::{SkbHook, SkbState};
use crate::{Trap, TrapKind};

/// Bytes of stack per call frame, as in Linux.
pub const STACK_SIZE: usize = 512;
/// Maximum number of frames (the entry function plus nested local calls), as in Linux.
pub const MAX_CALL_DEPTH: usize = 8;

const STACK_TOTAL: usize = STACK_SIZE * MAX_CALL_DEPTH;
const STACK_REGION: usize = 0;

/// Most tail calls one run may chain, as in Linux (`MAX_TAIL_CALL_CNT`).
pub const MAX_TAIL_CALLS: u32 = duet_helpers::MAX_TAIL_CALLS;

/// Options of an interpreter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Stop with [`TrapKind::BudgetExhausted`] after this many instructions; `None` for no limit.
    /// Only for programs run without duet's verifier: a verified program terminates, and
    /// neither engine counts its instructions.
    pub max_insns: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Config { max_insns: Some(1_000_000) }
    }
}

/// Why a program cannot be loaded into the interpreter.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// A `call` names a helper that is not registered.
    #[error("instruction {pc}: call to unknown helper {id}{}", helper_name_suffix(*.id))]
    UnknownHelper {
        /// Slot index of the call.
        pc: usize,
        /// The helper id.
        id: i64,
    },
    /// An `lddw` refers to something the loader could not resolve.
    #[error("instruction {pc}: {what}")]
    Unresolved {
        /// Slot index of the `lddw`.
        pc: usize,
        /// What could not be resolved.
        what: String,
    },
}

fn helper_name_suffix(id: i64) -> String {
    crate::helpers::kernel_helper_name(id)
        .map(|n| format!(" ({n}), which duet's userspace VM does not provide"))
        .unwrap_or_default()
}

/// The decoded programs of one interpreter (more than one when tail calls can reach others),
/// its helpers and its long-lived memory regions. Shared by clones.
#[derive(Debug)]
pub(crate) struct Code {
    pub(crate) programs: Vec<Box<[Insn]>>,
    pub(crate) helpers: Helpers,
    pub(crate) regions: SharedRegions,
    pub(crate) config: Config,
    /// Per program, once verified: the `bpf_loop` calls the kernel inlines (see
    /// [`duet_verifier::Callback::At`]), ascending. Unverified code has none.
    pub(crate) inline_loops: Vec<OnceLock<Box<[usize]>>>,
}

impl Code {
    pub(crate) fn new(programs: Vec<Box<[Insn]>>, helpers: Helpers, regions: SharedRegions, config: Config) -> Self {
        let inline_loops = programs.iter().map(|_| OnceLock::new()).collect();
        Code { programs, helpers, regions, config, inline_loops }
    }

    /// Records what the verifier proved about program `index`'s `bpf_loop` calls.
    pub(crate) fn set_verified(&self, index: usize, verified: &duet_verifier::VerifiedProgram) {
        if let Some(slot) = self.inline_loops.get(index) {
            let sites = verified
                .program()
                .insns()
                .iter()
                .map(|&(pc, _)| pc)
                .filter(|&pc| {
                    matches!(verified.facts(pc).callback, Some(duet_verifier::Callback::At { inline: true, .. }))
                })
                .collect();
            let _ = slot.set(sites);
        }
    }

    /// Whether the call at `pc` of program `index` is a `bpf_loop` the kernel inlines.
    fn inline_loop(&self, index: usize, pc: usize) -> bool {
        self.inline_loops.get(index).and_then(OnceLock::get).is_some_and(|sites| sites.binary_search(&pc).is_ok())
    }
}

/// `bpf_loop`'s helper id, its most calls (`BPF_MAX_LOOPS`), and its errors, for every engine.
pub(crate) const BPF_LOOP: i64 = 181;
pub(crate) const BPF_MAX_LOOPS: u32 = 1 << 23;
pub(crate) const E2BIG: i64 = -7;
pub(crate) const EINVAL: i64 = -22;

/// The checked reference interpreter. One instance runs one program; clone it to run the same
/// program on several threads (clones share the decoded code, helpers and maps, not the stack).
#[derive(Clone, Debug)]
pub struct Interpreter {
    code: Arc<Code>,
    entry: usize,
    stack: Box<[u8]>,
    /// The entry program's http type, when it is an http program (decides what `run_http`
    /// allows it); `None` for other and unknown program types.
    http_program: Option<HttpProgram>,
    /// Whether duet's verifier proved the program: then it terminates, and, as in the JIT,
    /// `config.max_insns` does not apply (a `bpf_loop` may run its callback 8 million times).
    verified: bool,
}

struct Frame {
    return_pc: usize,
    saved: [u64; 4],
}

/// A `bpf_loop` in progress: the callback and the index of the call that runs now.
#[derive(Clone, Copy)]
struct Looping {
    callback: usize,
    ctx: u64,
    index: u32,
    count: u32,
}

impl Looping {
    const IDLE: Looping = Looping { callback: 0, ctx: 0, index: 0, count: 0 };
}

/// Marks the path that calls it as rarely taken, so that the run loop's common instructions keep
/// their code (`bpf_loop` and its callbacks' returns are rare next to them).
#[cold]
#[inline(never)]
fn rare() {}

/// At a `bpf_loop` call the kernel inlines (per the verifier's fact for the running program, the
/// one `code` is): what its own loop does in place of the helper, where flags are 0, the count
/// is all of r1, and -E2BIG a 32-bit value. `None` elsewhere: the helper runs.
#[cold]
#[inline(never)]
fn inlined_loop(shared: &Code, code: &[Insn], pc: usize, regs: &[u64; 16]) -> Option<HelperOutcome> {
    let program = shared.programs.iter().position(|p| std::ptr::eq(&**p, code))?;
    if !shared.inline_loop(program, pc) {
        return None;
    }
    Some(if regs[1] > u64::from(BPF_MAX_LOOPS) {
        HelperOutcome::Return(u64::from(E2BIG as u32))
    } else {
        // A value that is no function makes the loop trap (outside the program).
        let callback = func_target(regs[2]).unwrap_or(usize::MAX);
        HelperOutcome::Loop { callback, ctx: regs[3], count: regs[1] as u32 }
    })
}

/// The value of `lddw rX, func` (`src = 4`) in duet's engines: this base plus the function's
/// first instruction. Only `bpf_loop` accepts it; it is no address of memory.
pub(crate) const FUNC_HANDLE_BASE: u64 = 0xffff_f0c0_0000_0000;

/// The first instruction of the function a `bpf_loop` callback argument names, if it is a
/// function value (the interpreter checks it is one of the running program's).
pub(crate) fn func_target(value: u64) -> Option<usize> {
    let pc = value.checked_sub(FUNC_HANDLE_BASE)?;
    usize::try_from(pc).ok().filter(|_| pc < 1 << 32)
}

/// Lays `program` out by slot, rewriting each `lddw` with a pseudo source through `resolve`
/// (`None` leaves it, so running it traps) and checking that every helper it calls exists.
pub(crate) fn prepare(
    program: &Program,
    helpers: &Helpers,
    mut resolve: impl FnMut(usize, &Insn) -> Result<Option<u64>, LoadError>,
) -> Result<Box<[Insn]>, LoadError> {
    let mut code = vec![Insn::new(Op::Exit); program.n_slots()];
    for &(pc, insn) in program.insns() {
        let mut insn = insn;
        if insn.op == Op::Call && (insn.imm < 0 || helpers.get(insn.imm as u32).is_none()) {
            return Err(LoadError::UnknownHelper { pc, id: insn.imm });
        }
        if insn.op == Op::LdImm64 && insn.pseudo_src() == Some(duet_isa::PseudoSrc::Func) {
            // A function of this program (a bpf_loop callback): its first instruction, relative
            // to the next one in the low 32 bits.
            let target = (pc as i64).checked_add(i64::from(insn.imm as i32)).and_then(|t| t.checked_add(1));
            match target
                .and_then(|t| usize::try_from(t).ok())
                .filter(|&t| program.insns().binary_search_by_key(&t, |&(at, _)| at).is_ok())
            {
                Some(target) => {
                    insn.src = 0;
                    insn.imm = (FUNC_HANDLE_BASE + target as u64) as i64;
                }
                None => {
                    return Err(LoadError::Unresolved {
                        pc,
                        what: format!("function reference {:+} is not an instruction of the program", insn.imm as i32),
                    });
                }
            }
        } else if insn.op == Op::LdImm64
            && insn.src != 0
            && let Some(value) = resolve(pc, &insn)?
        {
            insn.src = 0;
            insn.imm = value as i64;
        }
        code[pc] = insn;
        // The second slot of an lddw is never executed (jumps into it were rejected when the
        // program was decoded, and lddw advances by two); keep the copy harmless anyway.
        if insn.op == Op::LdImm64 {
            code[pc + 1] = insn;
        }
    }
    Ok(code.into_boxed_slice())
}

impl Interpreter {
    /// Prepares a program duet's verifier proved safe, for execution with `helpers`. `lddw`s of
    /// maps or other objects stay unresolved (running one traps); load objects with a
    /// [`crate::Module`] instead.
    pub fn new(program: &duet_verifier::VerifiedProgram, helpers: Helpers, config: Config) -> Result<Self, LoadError> {
        let mut interp = Self::new_unverified(program.program(), helpers, config)?;
        interp.code.set_verified(0, program);
        interp.verified = true;
        interp.http_program = HttpProgram::from_type(program.program_type());
        Ok(interp)
    }

    /// Prepares a program that has not been verified. Only the interpreter offers this: it checks
    /// every memory access, jump and call at run time, so an unsafe program ends in a [`Trap`]
    /// instead of misbehaving. Used for test suites whose programs are not meant to pass a
    /// kernel-style verifier (the conformance suite) and for `duet run --no-verify`.
    pub fn new_unverified(program: &Program, helpers: Helpers, config: Config) -> Result<Self, LoadError> {
        let code = prepare(program, &helpers, |_, _| Ok(None))?;
        Ok(Self::from_code(Arc::new(Code::new(vec![code], helpers, SharedRegions::default(), config)), 0, false))
    }

    pub(crate) fn from_code(code: Arc<Code>, entry: usize, verified: bool) -> Self {
        Interpreter { code, entry, stack: vec![0; STACK_TOTAL].into_boxed_slice(), http_program: None, verified }
    }

    /// Sets the http program type `run_http` enforces.
    pub(crate) fn with_http_program(mut self, program: Option<HttpProgram>) -> Self {
        self.http_program = program;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.code.config
    }

    /// Runs the program with `r1` pointing at `mem` and `r2 = mem.len()`, as the conformance
    /// suite and socket-filter style programs expect. Legacy packet loads read from `mem`.
    pub fn run(&mut self, mem: &mut [u8]) -> Result<u64, Trap> {
        // Borrow the fields separately: the stack is only ever touched through the region table.
        let Interpreter { code, entry, stack, verified, .. } = self;
        let mut memory = MemoryMap::new(&code.regions.0);
        memory.push(Region::writable(stack, RegionKind::Stack));
        let input = Region::writable(mem, RegionKind::Input);
        memory.push(input);
        // No memory: r1 = 0, as ubpf and rbpf pass it (an empty slice's address means nothing).
        let r1 = if mem.is_empty() { 0 } else { input.start() };
        execute(code, *entry, *verified, &mut memory, [r1, input.len(), 0, 0, 0], input, None)
    }

    /// Runs an XDP program on `packet`; returns the verdict (`r0`). The program sees
    /// `struct xdp_md` in `r1`; `bpf_xdp_adjust_head/tail/meta` move the packet's bounds.
    pub fn run_xdp(&mut self, packet: &mut XdpPacket) -> Result<u64, Trap> {
        let Interpreter { code, entry, stack, verified, .. } = self;
        let mut memory = MemoryMap::new(&code.regions.0);
        memory.push(Region::writable(stack, RegionKind::Stack));
        let buf = Region::writable(&mut packet.buf, RegionKind::Packet);
        memory.xdp = Some(XdpState {
            buf,
            data_meta: packet.data_meta as u64,
            data: packet.data as u64,
            data_end: packet.data_end as u64,
        });
        memory.push(Region::EMPTY);
        memory.push(Region::EMPTY);
        memory.refresh_packet();
        // The context is not memory; any unique address will do. Use the packet struct's own.
        let ctx = packet as *const XdpPacket as u64;
        memory.context =
            Context::Xdp { addr: ctx, ingress_ifindex: packet.ingress_ifindex, rx_queue_index: packet.rx_queue_index };
        let legacy = memory.get(PACKET_REGION);
        let result = execute(code, *entry, *verified, &mut memory, [ctx, 0, 0, 0, 0], legacy, None);
        if let Some(x) = memory.xdp {
            packet.data_meta = x.data_meta as usize;
            packet.data = x.data as usize;
            packet.data_end = x.data_end as usize;
        }
        result
    }

    /// Runs a socket filter on an Ethernet frame, as the kernel's `BPF_PROG_TEST_RUN` does: the
    /// program sees `struct __sk_buff` in `r1`, and legacy packet loads start at the network
    /// header (the kernel has pulled the Ethernet header). Returns `r0`. The same as
    /// [`Interpreter::run_skb`] with [`SkbHook::SocketFilter`].
    pub fn run_socket_filter(&mut self, frame: &mut [u8]) -> Result<u64, Trap> {
        self.run_skb(SkbHook::SocketFilter, frame)
    }

    /// Runs an skb program (socket filter, TC classifier, cgroup skb) on an Ethernet frame, as
    /// the kernel's `BPF_PROG_TEST_RUN` does: `r1` is a `struct __sk_buff` whose `data` starts
    /// where `hook` puts it ([`SkbHook::data_offset`]); legacy packet loads and the skb helpers
    /// read from there. A classifier may change the frame in place. Returns `r0`.
    pub fn run_skb(&mut self, hook: SkbHook, frame: &mut [u8]) -> Result<u64, Trap> {
        let Interpreter { code, entry, stack, verified, .. } = self;
        let mut memory = MemoryMap::new(&code.regions.0);
        memory.push(Region::writable(stack, RegionKind::Stack));
        let (ctx, packet) = setup_skb(&mut memory, hook, frame);
        execute(code, *entry, *verified, &mut memory, [ctx, 0, 0, 0, 0], packet, None)
    }

    /// Runs an http program (docs/ABI.md, version 2) on one exchange: `r1` points at `md`
    /// (`struct duet_http_md`, read-only), and helpers 10000..=10005 work on `ex` with the rules
    /// of [`crate::http`]. Returns `r0`. A route program may only read the exchange; an
    /// interpreter whose program type is unknown ([`Interpreter::new_unverified`]) runs as a
    /// request filter. See [`Interpreter::run_http_with`] for the run's state.
    pub fn run_http(&mut self, md: &HttpMd, ex: &mut dyn HttpExchange) -> Result<u64, Trap> {
        let mut state = HttpRunState::new(self.http_program.unwrap_or(HttpProgram::Request));
        self.run_http_with(md, &mut state, ex)
    }

    /// [`Interpreter::run_http`] with the caller's run state, which afterwards says whether
    /// `http_respond` succeeded and how many header changes were made.
    pub fn run_http_with(
        &mut self,
        md: &HttpMd,
        state: &mut HttpRunState,
        ex: &mut dyn HttpExchange,
    ) -> Result<u64, Trap> {
        let Interpreter { code, entry, stack, verified, .. } = self;
        let mut memory = MemoryMap::new(&code.regions.0);
        memory.push(Region::writable(stack, RegionKind::Stack));
        // The context is not memory; any unique address will do. Use `md`'s own.
        let ctx = md as *const HttpMd as u64;
        memory.context = Context::Http { addr: ctx, fields: md.fields() };
        let mut run = HttpRun { state, exchange: ex };
        execute(code, *entry, *verified, &mut memory, [ctx, 0, 0, 0, 0], Region::EMPTY, Some(&mut run))
    }
}

/// Maps the packet of an skb run (the frame from where `hook` puts `data`) at [`PACKET_REGION`]
/// and sets the `__sk_buff` context; returns the context's address and the packet region.
pub(crate) fn setup_skb(memory: &mut MemoryMap<'_>, hook: SkbHook, frame: &mut [u8]) -> (u64, Region) {
    let fields = crate::skb::skb_fields(hook, frame);
    let start = hook.data_offset(frame.len());
    let bytes = &mut frame[start..];
    let packet = if hook.packet_writable() {
        Region::writable(bytes, RegionKind::Packet)
    } else {
        Region::read_only(bytes, RegionKind::Packet)
    };
    let index = memory.push(packet);
    debug_assert_eq!(index, Some(PACKET_REGION));
    memory.skb = Some(SkbState { hook, packet });
    // The context is not memory; any unique address will do: one outside every host mapping.
    let ctx = frame.as_ptr() as u64 ^ 0x8000_0000_0000;
    memory.context = Context::Skb { addr: ctx, fields };
    (ctx, packet)
}

/// A packet buffer laid out as the kernel's `xdp_buff` in `BPF_PROG_TEST_RUN`: 256 bytes of
/// headroom, the frame, and room to grow the tail up to the end of a 4 KiB frame minus the
/// kernel's `skb_shared_info` tailroom.
#[derive(Clone, Debug)]
pub struct XdpPacket {
    pub(crate) buf: Vec<u8>,
    pub(crate) data_meta: usize,
    pub(crate) data: usize,
    pub(crate) data_end: usize,
    /// `xdp_md.ingress_ifindex`.
    pub ingress_ifindex: u32,
    /// `xdp_md.rx_queue_index`.
    pub rx_queue_index: u32,
}

/// Headroom before the frame (`XDP_PACKET_HEADROOM`).
pub const XDP_HEADROOM: usize = duet_helpers::xdp::HEADROOM;
/// Total buffer size of one XDP frame in `BPF_PROG_TEST_RUN`.
pub const XDP_FRAME_SIZE: usize = duet_helpers::xdp::FRAME_SIZE;
/// Tailroom the kernel reserves for `struct skb_shared_info` on x86_64.
pub const XDP_TAILROOM: usize = duet_helpers::xdp::TAILROOM;

impl XdpPacket {
    /// Copies `frame` into a fresh buffer with kernel-like headroom and tailroom.
    pub fn new(frame: &[u8]) -> Self {
        let size = duet_helpers::xdp::buffer_len(frame.len());
        let mut buf = vec![0u8; size];
        buf[XDP_HEADROOM..XDP_HEADROOM + frame.len()].copy_from_slice(frame);
        XdpPacket {
            buf,
            data_meta: XDP_HEADROOM,
            data: XDP_HEADROOM,
            data_end: XDP_HEADROOM + frame.len(),
            ingress_ifindex: 1,
            rx_queue_index: 0,
        }
    }

    /// Reuses this buffer for another frame, as if freshly made by [`XdpPacket::new`] (no
    /// allocation when the frame fits).
    pub fn reset(&mut self, frame: &[u8]) {
        let needed = duet_helpers::xdp::buffer_len(frame.len());
        if needed > self.buf.len() {
            *self = XdpPacket::new(frame);
            return;
        }
        // Only the headroom and the previous packet's extent can be dirty: programs write only
        // inside the packet region, and growth zero-fills.
        let dirty = self.data_end.max(XDP_HEADROOM + frame.len());
        self.buf[..dirty].fill(0);
        self.buf[XDP_HEADROOM..XDP_HEADROOM + frame.len()].copy_from_slice(frame);
        self.data_meta = XDP_HEADROOM;
        self.data = XDP_HEADROOM;
        self.data_end = XDP_HEADROOM + frame.len();
    }

    /// The packet bytes between `data` and `data_end`, as the program left them.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.data..self.data_end]
    }

    /// The metadata bytes between `data_meta` and `data`.
    pub fn meta(&self) -> &[u8] {
        &self.buf[self.data_meta..self.data]
    }
}

/// The run loop. `memory` holds the whole stack buffer at index 0; `packet` is what legacy
/// packet loads read.
fn execute(
    shared: &Code,
    entry: usize,
    verified: bool,
    memory: &mut MemoryMap<'_>,
    args: [u64; 5],
    packet: Region,
    mut http: Option<&mut HttpRun<'_>>,
) -> Result<u64, Trap> {
    let helpers = &shared.helpers;
    let config = &shared.config;
    let mut code: &[Insn] = &shared.programs[entry];
    let mut tail_calls = 0u32;
    // Sixteen slots so that `reg & 15` indexes without a bounds check; r11..r15 are never used
    // (the decoder rejects register numbers above 10).
    let mut regs = [0u64; 16];
    regs[1..6].copy_from_slice(&args);
    // The full stack region, and the part the current frame may touch: its own 512 bytes
    // and its callers' frames above it (a callee may use pointers into its caller's stack).
    let full_stack = memory.get(STACK_REGION);
    regs[10] = full_stack.start() + full_stack.len();
    let frame_region = |depth: usize| {
        let lo = (MAX_CALL_DEPTH - 1 - depth) * STACK_SIZE;
        Region {
            start: full_stack.start + lo as u64,
            len: (STACK_TOTAL - lo) as u64,
            ptr: full_stack.ptr.wrapping_add(lo),
            ..full_stack
        }
    };
    memory.set(STACK_REGION, frame_region(0));

    let mut frames: [Frame; MAX_CALL_DEPTH] = std::array::from_fn(|_| Frame { return_pc: 0, saved: [0; 4] });
    // The `bpf_loop`s in progress: bit `d` of `looping` says `loops[d]` is the loop whose callback
    // runs in the frame above `frames[d]`.
    let mut loops = [Looping::IDLE; MAX_CALL_DEPTH];
    let mut looping = 0u8;
    let mut depth = 0usize;
    let mut budget = if verified { u64::MAX } else { config.max_insns.unwrap_or(u64::MAX) };
    let mut pc = 0usize;

    macro_rules! trap {
        ($kind:expr) => {
            return Err(Trap { pc, kind: $kind })
        };
    }
    // A call: the caller's return site and r6..r9 saved, r10 one frame down.
    macro_rules! push_frame {
        () => {{
            if depth + 1 >= MAX_CALL_DEPTH {
                trap!(TrapKind::CallDepthExceeded { max: MAX_CALL_DEPTH });
            }
            frames[depth] = Frame { return_pc: pc, saved: [regs[6], regs[7], regs[8], regs[9]] };
            depth += 1;
            regs[10] -= STACK_SIZE as u64;
            memory.set(STACK_REGION, frame_region(depth));
        }};
    }
    macro_rules! load {
        ($ty:ty, $addr:expr) => {{
            let addr: u64 = $addr;
            match memory.translate_read(addr, size_of::<$ty>() as u64) {
                // SAFETY: the region table proved the whole access lies inside a live region
                // borrowed by this run; `read_unaligned` has no alignment requirement.
                Ok(p) => unsafe { p.cast::<$ty>().read_unaligned() },
                Err(kind) => trap!(kind),
            }
        }};
    }
    // 32-bit loads may read the program context, whose fields are translated rather than read
    // (see `MemoryMap::context_load`): `xdp_md.data` yields a full 64-bit pointer.
    macro_rules! load_w {
        ($addr:expr) => {{
            let addr: u64 = $addr;
            match memory.translate_read(addr, 4) {
                // SAFETY: as for `load!`.
                Ok(p) => u64::from(unsafe { p.cast::<u32>().read_unaligned() }),
                Err(kind) => match memory.context_load(addr, 4) {
                    Some(Ok(v)) => v,
                    Some(Err(kind)) => trap!(kind),
                    None => trap!(kind),
                },
            }
        }};
    }
    macro_rules! store {
        ($ty:ty, $addr:expr, $value:expr) => {{
            let addr: u64 = $addr;
            match memory.translate_write(addr, size_of::<$ty>() as u64) {
                // SAFETY: as for loads, and the region is writable.
                Ok(p) => unsafe { p.cast::<$ty>().write_unaligned($value as $ty) },
                Err(kind) => trap!(kind),
            }
        }};
    }
    macro_rules! atomic_ptr {
        ($ty:ty, $addr:expr) => {{
            let addr: u64 = $addr;
            let size = size_of::<$ty>() as u64;
            if addr % size != 0 {
                trap!(TrapKind::MisalignedAtomic { addr, size });
            }
            match memory.translate_write(addr, size) {
                // SAFETY: the access is in bounds of a live writable region, aligned to the
                // atomic's size (checked above, and regions' host and guest addresses are the
                // same), and all concurrent access to guest memory goes through atomics or
                // the program's own racy plain accesses, as in the kernel.
                Ok(p) => unsafe { <$ty>::from_ptr(p.cast()) },
                Err(kind) => trap!(kind),
            }
        }};
    }
    macro_rules! jump_if {
        ($cond:expr, $insn:expr) => {
            if $cond {
                pc = (pc as i64 + i64::from($insn.off)) as usize;
            }
        };
    }
    // Legacy packet load: big-endian, and an out-of-bounds offset ends the program with 0.
    macro_rules! packet_load {
        ($ty:ty, $offset:expr) => {{
            let offset: u64 = $offset;
            let size = size_of::<$ty>() as u64;
            if offset > packet.len || packet.len - offset < size {
                return Ok(0);
            }
            // SAFETY: `offset + size <= packet.len`, checked just above; the packet region is
            // live for the whole run.
            let v = unsafe { packet.ptr.add(offset as usize).cast::<$ty>().read_unaligned() };
            regs[0] = <$ty>::from_be(v) as u64;
        }};
    }

    loop {
        if budget == 0 {
            trap!(TrapKind::BudgetExhausted(config.max_insns.unwrap_or(u64::MAX)));
        }
        budget -= 1;
        let insn = code[pc];
        let dst = (insn.dst & 15) as usize;
        let src = (insn.src & 15) as usize;
        let imm = insn.imm as u64;
        match insn.op {
            // --- 64-bit ALU ---
            Op::AddImm => regs[dst] = regs[dst].wrapping_add(imm),
            Op::AddReg => regs[dst] = regs[dst].wrapping_add(regs[src]),
            Op::SubImm => regs[dst] = regs[dst].wrapping_sub(imm),
            Op::SubReg => regs[dst] = regs[dst].wrapping_sub(regs[src]),
            Op::MulImm => regs[dst] = regs[dst].wrapping_mul(imm),
            Op::MulReg => regs[dst] = regs[dst].wrapping_mul(regs[src]),
            Op::DivImm => regs[dst] = regs[dst].checked_div(imm).unwrap_or(0),
            Op::DivReg => regs[dst] = regs[dst].checked_div(regs[src]).unwrap_or(0),
            Op::SDivImm => regs[dst] = sdiv64(regs[dst], imm),
            Op::SDivReg => regs[dst] = sdiv64(regs[dst], regs[src]),
            Op::ModImm => regs[dst] = regs[dst].checked_rem(imm).unwrap_or(regs[dst]),
            Op::ModReg => regs[dst] = regs[dst].checked_rem(regs[src]).unwrap_or(regs[dst]),
            Op::SModImm => regs[dst] = smod64(regs[dst], imm),
            Op::SModReg => regs[dst] = smod64(regs[dst], regs[src]),
            Op::OrImm => regs[dst] |= imm,
            Op::OrReg => regs[dst] |= regs[src],
            Op::AndImm => regs[dst] &= imm,
            Op::AndReg => regs[dst] &= regs[src],
            Op::XorImm => regs[dst] ^= imm,
            Op::XorReg => regs[dst] ^= regs[src],
            Op::LshImm => regs[dst] <<= imm & 63,
            Op::LshReg => regs[dst] <<= regs[src] & 63,
            Op::RshImm => regs[dst] >>= imm & 63,
            Op::RshReg => regs[dst] >>= regs[src] & 63,
            Op::ArshImm => regs[dst] = ((regs[dst] as i64) >> (imm & 63)) as u64,
            Op::ArshReg => regs[dst] = ((regs[dst] as i64) >> (regs[src] & 63)) as u64,
            Op::Neg => regs[dst] = regs[dst].wrapping_neg(),
            Op::MovImm => regs[dst] = imm,
            Op::MovReg => regs[dst] = regs[src],
            Op::MovSx8 => regs[dst] = regs[src] as i8 as i64 as u64,
            Op::MovSx16 => regs[dst] = regs[src] as i16 as i64 as u64,
            Op::MovSx32 => regs[dst] = regs[src] as i32 as i64 as u64,
            Op::Bswap16 => regs[dst] = u64::from((regs[dst] as u16).swap_bytes()),
            Op::Bswap32 => regs[dst] = u64::from((regs[dst] as u32).swap_bytes()),
            Op::Bswap64 => regs[dst] = regs[dst].swap_bytes(),

            // --- 32-bit ALU: operate on the low halves, zero-extend the result ---
            Op::Add32Imm => regs[dst] = u64::from((regs[dst] as u32).wrapping_add(imm as u32)),
            Op::Add32Reg => regs[dst] = u64::from((regs[dst] as u32).wrapping_add(regs[src] as u32)),
            Op::Sub32Imm => regs[dst] = u64::from((regs[dst] as u32).wrapping_sub(imm as u32)),
            Op::Sub32Reg => regs[dst] = u64::from((regs[dst] as u32).wrapping_sub(regs[src] as u32)),
            Op::Mul32Imm => regs[dst] = u64::from((regs[dst] as u32).wrapping_mul(imm as u32)),
            Op::Mul32Reg => regs[dst] = u64::from((regs[dst] as u32).wrapping_mul(regs[src] as u32)),
            Op::Div32Imm => regs[dst] = u64::from((regs[dst] as u32).checked_div(imm as u32).unwrap_or(0)),
            Op::Div32Reg => regs[dst] = u64::from((regs[dst] as u32).checked_div(regs[src] as u32).unwrap_or(0)),
            Op::SDiv32Imm => regs[dst] = sdiv32(regs[dst], imm),
            Op::SDiv32Reg => regs[dst] = sdiv32(regs[dst], regs[src]),
            Op::Mod32Imm => regs[dst] = mod32(regs[dst], imm),
            Op::Mod32Reg => regs[dst] = mod32(regs[dst], regs[src]),
            Op::SMod32Imm => regs[dst] = smod32(regs[dst], imm),
            Op::SMod32Reg => regs[dst] = smod32(regs[dst], regs[src]),
            Op::Or32Imm => regs[dst] = u64::from(regs[dst] as u32 | imm as u32),
            Op::Or32Reg => regs[dst] = u64::from(regs[dst] as u32 | regs[src] as u32),
            Op::And32Imm => regs[dst] = u64::from(regs[dst] as u32 & imm as u32),
            Op::And32Reg => regs[dst] = u64::from(regs[dst] as u32 & regs[src] as u32),
            Op::Xor32Imm => regs[dst] = u64::from(regs[dst] as u32 ^ imm as u32),
            Op::Xor32Reg => regs[dst] = u64::from(regs[dst] as u32 ^ regs[src] as u32),
            Op::Lsh32Imm => regs[dst] = u64::from((regs[dst] as u32) << (imm & 31)),
            Op::Lsh32Reg => regs[dst] = u64::from((regs[dst] as u32) << (regs[src] & 31)),
            Op::Rsh32Imm => regs[dst] = u64::from((regs[dst] as u32) >> (imm & 31)),
            Op::Rsh32Reg => regs[dst] = u64::from((regs[dst] as u32) >> (regs[src] & 31)),
            Op::Arsh32Imm => regs[dst] = u64::from(((regs[dst] as i32) >> (imm & 31)) as u32),
            Op::Arsh32Reg => regs[dst] = u64::from(((regs[dst] as i32) >> (regs[src] & 31)) as u32),
            Op::Neg32 => regs[dst] = u64::from((regs[dst] as u32).wrapping_neg()),
            Op::Mov32Imm => regs[dst] = u64::from(imm as u32),
            Op::Mov32Reg => regs[dst] = u64::from(regs[src] as u32),
            Op::MovSx8To32 => regs[dst] = u64::from(regs[src] as i8 as i32 as u32),
            Op::MovSx16To32 => regs[dst] = u64::from(regs[src] as i16 as i32 as u32),
            Op::Le16 => regs[dst] = u64::from(regs[dst] as u16),
            Op::Le32 => regs[dst] = u64::from(regs[dst] as u32),
            Op::Le64 => {}
            Op::Be16 => regs[dst] = u64::from((regs[dst] as u16).swap_bytes()),
            Op::Be32 => regs[dst] = u64::from((regs[dst] as u32).swap_bytes()),
            Op::Be64 => regs[dst] = regs[dst].swap_bytes(),

            // --- 64-bit jumps ---
            Op::Ja => pc = (pc as i64 + i64::from(insn.off)) as usize,
            Op::Ja32 => pc = (pc as i64 + insn.imm) as usize,
            Op::JeqImm => jump_if!(regs[dst] == imm, insn),
            Op::JeqReg => jump_if!(regs[dst] == regs[src], insn),
            Op::JneImm => jump_if!(regs[dst] != imm, insn),
            Op::JneReg => jump_if!(regs[dst] != regs[src], insn),
            Op::JgtImm => jump_if!(regs[dst] > imm, insn),
            Op::JgtReg => jump_if!(regs[dst] > regs[src], insn),
            Op::JgeImm => jump_if!(regs[dst] >= imm, insn),
            Op::JgeReg => jump_if!(regs[dst] >= regs[src], insn),
            Op::JltImm => jump_if!(regs[dst] < imm, insn),
            Op::JltReg => jump_if!(regs[dst] < regs[src], insn),
            Op::JleImm => jump_if!(regs[dst] <= imm, insn),
            Op::JleReg => jump_if!(regs[dst] <= regs[src], insn),
            Op::JsetImm => jump_if!(regs[dst] & imm != 0, insn),
            Op::JsetReg => jump_if!(regs[dst] & regs[src] != 0, insn),
            Op::JsgtImm => jump_if!((regs[dst] as i64) > insn.imm, insn),
            Op::JsgtReg => jump_if!((regs[dst] as i64) > regs[src] as i64, insn),
            Op::JsgeImm => jump_if!((regs[dst] as i64) >= insn.imm, insn),
            Op::JsgeReg => jump_if!((regs[dst] as i64) >= regs[src] as i64, insn),
            Op::JsltImm => jump_if!((regs[dst] as i64) < insn.imm, insn),
            Op::JsltReg => jump_if!((regs[dst] as i64) < regs[src] as i64, insn),
            Op::JsleImm => jump_if!((regs[dst] as i64) <= insn.imm, insn),
            Op::JsleReg => jump_if!((regs[dst] as i64) <= regs[src] as i64, insn),

            // --- 32-bit jumps: compare the low halves ---
            Op::Jeq32Imm => jump_if!(regs[dst] as u32 == imm as u32, insn),
            Op::Jeq32Reg => jump_if!(regs[dst] as u32 == regs[src] as u32, insn),
            Op::Jne32Imm => jump_if!(regs[dst] as u32 != imm as u32, insn),
            Op::Jne32Reg => jump_if!(regs[dst] as u32 != regs[src] as u32, insn),
            Op::Jgt32Imm => jump_if!(regs[dst] as u32 > imm as u32, insn),
            Op::Jgt32Reg => jump_if!(regs[dst] as u32 > regs[src] as u32, insn),
            Op::Jge32Imm => jump_if!(regs[dst] as u32 >= imm as u32, insn),
            Op::Jge32Reg => jump_if!(regs[dst] as u32 >= regs[src] as u32, insn),
            Op::Jlt32Imm => jump_if!((regs[dst] as u32) < imm as u32, insn),
            Op::Jlt32Reg => jump_if!((regs[dst] as u32) < regs[src] as u32, insn),
            Op::Jle32Imm => jump_if!(regs[dst] as u32 <= imm as u32, insn),
            Op::Jle32Reg => jump_if!(regs[dst] as u32 <= regs[src] as u32, insn),
            Op::Jset32Imm => jump_if!(regs[dst] as u32 & imm as u32 != 0, insn),
            Op::Jset32Reg => jump_if!(regs[dst] as u32 & regs[src] as u32 != 0, insn),
            Op::Jsgt32Imm => jump_if!(regs[dst] as i32 > imm as i32, insn),
            Op::Jsgt32Reg => jump_if!(regs[dst] as i32 > regs[src] as i32, insn),
            Op::Jsge32Imm => jump_if!(regs[dst] as i32 >= imm as i32, insn),
            Op::Jsge32Reg => jump_if!(regs[dst] as i32 >= regs[src] as i32, insn),
            Op::Jslt32Imm => jump_if!((regs[dst] as i32) < imm as i32, insn),
            Op::Jslt32Reg => jump_if!((regs[dst] as i32) < regs[src] as i32, insn),
            Op::Jsle32Imm => jump_if!(regs[dst] as i32 <= imm as i32, insn),
            Op::Jsle32Reg => jump_if!(regs[dst] as i32 <= regs[src] as i32, insn),

            // --- loads and stores ---
            Op::LdxB => regs[dst] = u64::from(load!(u8, regs[src].wrapping_add(insn.off as u64))),
            Op::LdxH => regs[dst] = u64::from(load!(u16, regs[src].wrapping_add(insn.off as u64))),
            Op::LdxW => regs[dst] = load_w!(regs[src].wrapping_add(insn.off as u64)),
            Op::LdxDw => regs[dst] = load!(u64, regs[src].wrapping_add(insn.off as u64)),
            Op::LdxSB => regs[dst] = load!(i8, regs[src].wrapping_add(insn.off as u64)) as i64 as u64,
            Op::LdxSH => regs[dst] = load!(i16, regs[src].wrapping_add(insn.off as u64)) as i64 as u64,
            Op::LdxSW => regs[dst] = load!(i32, regs[src].wrapping_add(insn.off as u64)) as i64 as u64,
            Op::StB => store!(u8, regs[dst].wrapping_add(insn.off as u64), imm),
            Op::StH => store!(u16, regs[dst].wrapping_add(insn.off as u64), imm),
            Op::StW => store!(u32, regs[dst].wrapping_add(insn.off as u64), imm),
            Op::StDw => store!(u64, regs[dst].wrapping_add(insn.off as u64), imm),
            Op::StxB => store!(u8, regs[dst].wrapping_add(insn.off as u64), regs[src]),
            Op::StxH => store!(u16, regs[dst].wrapping_add(insn.off as u64), regs[src]),
            Op::StxW => store!(u32, regs[dst].wrapping_add(insn.off as u64), regs[src]),
            Op::StxDw => store!(u64, regs[dst].wrapping_add(insn.off as u64), regs[src]),
            Op::LdImm64 => {
                if insn.src != 0 {
                    // `from_src` cannot fail: the decoder accepted the source kind.
                    let kind = PseudoSrc::from_src(insn.src).unwrap_or(PseudoSrc::MapFd);
                    trap!(TrapKind::UnresolvedPseudo(kind));
                }
                regs[dst] = imm;
                pc += 1;
            }
            Op::LdAbsB => packet_load!(u8, imm as u32 as u64),
            Op::LdAbsH => packet_load!(u16, imm as u32 as u64),
            Op::LdAbsW => packet_load!(u32, imm as u32 as u64),
            Op::LdIndB => packet_load!(u8, u64::from((regs[src] as u32).wrapping_add(imm as u32))),
            Op::LdIndH => packet_load!(u16, u64::from((regs[src] as u32).wrapping_add(imm as u32))),
            Op::LdIndW => packet_load!(u32, u64::from((regs[src] as u32).wrapping_add(imm as u32))),

            // --- atomics ---
            Op::AtomicAddW => {
                _ = atomic_ptr!(AtomicU32, regs[dst].wrapping_add(insn.off as u64))
                    .fetch_add(regs[src] as u32, Ordering::SeqCst)
            }
            Op::AtomicOrW => {
                _ = atomic_ptr!(AtomicU32, regs[dst].wrapping_add(insn.off as u64))
                    .fetch_or(regs[src] as u32, Ordering::SeqCst)
            }
            Op::AtomicAndW => {
                _ = atomic_ptr!(AtomicU32, regs[dst].wrapping_add(insn.off as u64))
                    .fetch_and(regs[src] as u32, Ordering::SeqCst)
            }
            Op::AtomicXorW => {
                _ = atomic_ptr!(AtomicU32, regs[dst].wrapping_add(insn.off as u64))
                    .fetch_xor(regs[src] as u32, Ordering::SeqCst)
            }
            Op::AtomicFetchAddW => {
                regs[src] = u64::from(
                    atomic_ptr!(AtomicU32, regs[dst].wrapping_add(insn.off as u64))
                        .fetch_add(regs[src] as u32, Ordering::SeqCst),
                )
            }
            Op::AtomicFetchOrW => {
                regs[src] = u64::from(
                    atomic_ptr!(AtomicU32, regs[dst].wrapping_add(insn.off as u64))
                        .fetch_or(regs[src] as u32, Ordering::SeqCst),
                )
            }
            Op::AtomicFetchAndW => {
                regs[src] = u64::from(
                    atomic_ptr!(AtomicU32, regs[dst].wrapping_add(insn.off as u64))
                        .fetch_and(regs[src] as u32, Ordering::SeqCst),
                )
            }
            Op::AtomicFetchXorW => {
                regs[src] = u64::from(
                    atomic_ptr!(AtomicU32, regs[dst].wrapping_add(insn.off as u64))
                        .fetch_xor(regs[src] as u32, Ordering::SeqCst),
                )
            }
            Op::AtomicXchgW => {
                regs[src] = u64::from(
                    atomic_ptr!(AtomicU32, regs[dst].wrapping_add(insn.off as u64))
                        .swap(regs[src] as u32, Ordering::SeqCst),
                )
            }
            Op::AtomicCmpXchgW => {
                let cell = atomic_ptr!(AtomicU32, regs[dst].wrapping_add(insn.off as u64));
                let old =
                    match cell.compare_exchange(regs[0] as u32, regs[src] as u32, Ordering::SeqCst, Ordering::SeqCst) {
                        Ok(v) | Err(v) => v,
                    };
                regs[0] = u64::from(old);
            }
            Op::AtomicAddDw => {
                _ = atomic_ptr!(AtomicU64, regs[dst].wrapping_add(insn.off as u64))
                    .fetch_add(regs[src], Ordering::SeqCst)
            }
            Op::AtomicOrDw => {
                _ = atomic_ptr!(AtomicU64, regs[dst].wrapping_add(insn.off as u64))
                    .fetch_or(regs[src], Ordering::SeqCst)
            }
            Op::AtomicAndDw => {
                _ = atomic_ptr!(AtomicU64, regs[dst].wrapping_add(insn.off as u64))
                    .fetch_and(regs[src], Ordering::SeqCst)
            }
            Op::AtomicXorDw => {
                _ = atomic_ptr!(AtomicU64, regs[dst].wrapping_add(insn.off as u64))
                    .fetch_xor(regs[src], Ordering::SeqCst)
            }
            Op::AtomicFetchAddDw => {
                regs[src] = atomic_ptr!(AtomicU64, regs[dst].wrapping_add(insn.off as u64))
                    .fetch_add(regs[src], Ordering::SeqCst)
            }
            Op::AtomicFetchOrDw => {
                regs[src] = atomic_ptr!(AtomicU64, regs[dst].wrapping_add(insn.off as u64))
                    .fetch_or(regs[src], Ordering::SeqCst)
            }
            Op::AtomicFetchAndDw => {
                regs[src] = atomic_ptr!(AtomicU64, regs[dst].wrapping_add(insn.off as u64))
                    .fetch_and(regs[src], Ordering::SeqCst)
            }
            Op::AtomicFetchXorDw => {
                regs[src] = atomic_ptr!(AtomicU64, regs[dst].wrapping_add(insn.off as u64))
                    .fetch_xor(regs[src], Ordering::SeqCst)
            }
            Op::AtomicXchgDw => {
                regs[src] =
                    atomic_ptr!(AtomicU64, regs[dst].wrapping_add(insn.off as u64)).swap(regs[src], Ordering::SeqCst)
            }
            Op::AtomicCmpXchgDw => {
                let cell = atomic_ptr!(AtomicU64, regs[dst].wrapping_add(insn.off as u64));
                regs[0] = match cell.compare_exchange(regs[0], regs[src], Ordering::SeqCst, Ordering::SeqCst) {
                    Ok(v) | Err(v) => v,
                };
            }

            // --- calls and exit ---
            Op::Call | Op::CallReg => {
                let id = if insn.op == Op::Call { imm } else { regs[dst] };
                let inlined = if insn.op == Op::Call && insn.imm == BPF_LOOP {
                    inlined_loop(shared, code, pc, &regs)
                } else {
                    None
                };
                let outcome = if let Some(outcome) = inlined {
                    Ok(outcome)
                } else {
                    let helper = match u32::try_from(id).ok().and_then(|id| helpers.get(id)) {
                        Some(h) => h,
                        None => trap!(TrapKind::UnknownHelper(id)),
                    };
                    // Borrow r1..=r5 in place: copying them right after the program wrote them
                    // stalls store-to-load forwarding.
                    let args: &[u64; 5] = match regs[1..6].try_into() {
                        Ok(a) => a,
                        Err(_) => unreachable!("regs[1..6] has five elements"),
                    };
                    let http = http.as_deref_mut().map(HttpRun::access);
                    helper(&mut HelperContext { memory: &mut *memory, http }, args)
                };
                match outcome {
                    Ok(HelperOutcome::Return(v)) => regs[0] = v,
                    Ok(HelperOutcome::Exit(v)) => return Ok(v),
                    Ok(HelperOutcome::Fallthrough) => {}
                    Ok(HelperOutcome::TailCall(target)) => {
                        // As in Linux: a tail call that cannot happen falls through.
                        if let Some(next) = shared.programs.get(target as usize)
                            && tail_calls < MAX_TAIL_CALLS
                        {
                            if depth != 0 {
                                trap!(TrapKind::Unsupported("tail calls from bpf-to-bpf subprograms"));
                            }
                            tail_calls += 1;
                            code = next;
                            pc = 0;
                            continue;
                        }
                    }
                    Ok(HelperOutcome::Loop { count: 0, .. }) => regs[0] = 0,
                    Ok(HelperOutcome::Loop { callback, ctx, count }) => {
                        // The first call; `exit` makes the others.
                        rare();
                        if callback >= code.len() {
                            trap!(TrapKind::Unsupported("a bpf_loop callback outside the program"));
                        }
                        loops[depth] = Looping { callback, ctx, index: 0, count };
                        looping |= 1 << depth;
                        push_frame!();
                        regs[1] = 0;
                        regs[2] = ctx;
                        pc = callback.wrapping_sub(1);
                    }
                    Err(error) => trap!(TrapKind::HelperFailed { id: id as u32, error: Box::new(error) }),
                }
            }
            Op::CallKfunc => trap!(TrapKind::Kfunc(insn.imm)),
            Op::CallLocal => {
                push_frame!();
                pc = (pc as i64 + insn.imm) as usize;
            }
            Op::Exit => {
                if depth == 0 {
                    return Ok(regs[0]);
                }
                depth -= 1;
                if looping & (1 << depth) != 0 {
                    // A bpf_loop callback returned: 0 goes on with the next index, anything else
                    // stops; r0 is then the number of calls made.
                    rare();
                    let l = &mut loops[depth];
                    l.index += 1;
                    if regs[0] == 0 && l.index < l.count {
                        depth += 1;
                        regs[1] = u64::from(l.index);
                        regs[2] = l.ctx;
                        pc = l.callback;
                        continue;
                    }
                    regs[0] = u64::from(l.index);
                    looping &= !(1 << depth);
                }
                let frame = &frames[depth];
                regs[6..10].copy_from_slice(&frame.saved);
                regs[10] += STACK_SIZE as u64;
                memory.set(STACK_REGION, frame_region(depth));
                pc = frame.return_pc;
            }
        }
        // Jumps and calls leave `pc` one before their target; a target of slot 0 wraps to
        // `usize::MAX` here and back to 0 now.
        pc = pc.wrapping_add(1);
    }
}

fn sdiv64(a: u64, b: u64) -> u64 {
    if b == 0 { 0 } else { (a as i64).wrapping_div(b as i64) as u64 }
}

fn smod64(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { (a as i64).wrapping_rem(b as i64) as u64 }
}

fn sdiv32(a: u64, b: u64) -> u64 {
    let (a, b) = (a as i32, b as i32);
    u64::from(if b == 0 { 0 } else { a.wrapping_div(b) as u32 })
}

fn smod32(a: u64, b: u64) -> u64 {
    let (a, b) = (a as i32, b as i32);
    u64::from(if b == 0 { a as u32 } else { a.wrapping_rem(b) as u32 })
}

fn mod32(a: u64, b: u64) -> u64 {
    let (a, b) = (a as u32, b as u32);
    u64::from(if b == 0 { a } else { a % b })
}
