//! The JIT: verified eBPF compiled to native code with Cranelift.
//!
//! [`Jit`] mirrors [`crate::Interpreter`]: the same constructors' shapes, the same `run`,
//! `run_xdp` and `run_socket_filter`, the same helpers and `Env` (through the same
//! [`Helpers`]), the same results and the same [`Trap`] values. A [`crate::Module`] hands out
//! both (`Module::interpreter`, `Module::jit`), sharing maps.
//!
//! Memory safety comes from the verifier: [`Jit::new`] takes a [`VerifiedProgram`], and every
//! access its facts prove in bounds is a plain native load or store. Accesses without such a proof
//! go through the same region table as the interpreter. [`Jit::new_checked`] compiles an
//! unverified program with every access checked and the instruction budget counted, so it can
//! run the conformance suite; it is not offered for `--no-verify` runs of objects.

pub(crate) mod compile;
mod runtime;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use duet_isa::Program;
use duet_verifier::{ProgramType, VerifiedProgram};

use crate::helpers::Helpers;
use crate::http::{HttpExchange, HttpMd, HttpProgram, HttpRun, HttpRunState};
use crate::interp::{Code, MAX_CALL_DEPTH, STACK_SIZE, prepare};
use crate::memory::{Context, MemoryMap, PACKET_REGION, Region, RegionKind, SharedRegions, XdpState};
use crate::{Config, LoadError, SkbHook, Trap, TrapKind, XdpPacket};
use compile::Compiled;
use runtime::RunCtx;

const STACK_TOTAL: usize = STACK_SIZE * MAX_CALL_DEPTH;

/// Why a program could not be compiled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JitError {
    /// The program cannot be prepared (unknown helper, unresolvable reference).
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Cranelift failed; a bug in duet's JIT, reported rather than panicking.
    #[error("JIT code generation failed: {0}")]
    Codegen(String),
    /// The program uses something the JIT does not compile (the interpreter runs it).
    #[error("not compiled by duet's JIT: {0}")]
    Unsupported(String),
}

/// What compiling one program took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompileStats {
    /// eBPF instructions compiled (an `lddw` counts once).
    pub n_insns: usize,
    /// Bytes of native code.
    pub code_size: usize,
    /// Wall time of translation, code generation and mapping: until the code can run (for a
    /// tiered program, the first tier's).
    pub time: Duration,
    /// Whether every access is checked (an unverified program).
    pub checked: bool,
    /// Loads, stores and atomics compiled as calls into the region table because no proof
    /// covered them (every access, for checked code).
    pub checked_accesses: usize,
    /// `bpf_map_lookup_elem` calls on array maps compiled inline.
    pub inline_lookups: usize,
    /// Map lookups, updates, deletes and ring-buffer outputs compiled as direct calls into the
    /// map.
    pub direct_map_calls: usize,
    /// Clock, random and CPU helpers compiled as direct calls into the module's environment (or
    /// a constant).
    pub direct_env_calls: usize,
    /// Call sites into duet's runtime other than traps (helpers, checked accesses). An XDP
    /// program with none runs without a region table (the fastest path).
    pub runtime_calls: usize,
    /// Whether the program compiles in two tiers (a verified program of 1,024 instructions or
    /// more): `time` is the first tier's, whose code runs until the optimized code, compiled on a
    /// background thread, replaces it.
    pub tiered: bool,
    /// For a tiered program, the wall time of the optimized compile, once it is done.
    pub optimized_time: Option<Duration>,
}

/// A map that `lddw rX, map_fd N` loads as `handle` and that compiled code may reach without the
/// helper path: `bpf_map_lookup_elem`, `bpf_map_update_elem` and `bpf_map_delete_elem` on it (or
/// `bpf_ringbuf_output` on a ring buffer) are direct calls into the map (as the kernel's JIT
/// calls `map->ops`), and on an array whose values sit at a fixed stride the lookup is computed
/// inline (the kernel's `map_gen_lookup`).
#[derive(Clone, Debug)]
pub(crate) struct KnownMap {
    pub(crate) handle: u64,
    pub(crate) map: Arc<duet_maps::Map>,
    /// The CPU whose slot per-CPU maps use.
    pub(crate) cpu: u32,
    pub(crate) inline: Option<InlineArray>,
}

/// An array map's lookup computed inline: the value of index `i < max_entries` is at
/// `base + i * stride`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InlineArray {
    pub(crate) base: u64,
    pub(crate) stride: u64,
    pub(crate) max_entries: u32,
}

/// The programs one JIT instance can run (several when tail calls reach others): the
/// interpreter's prepared code, and native code for each program that was compiled.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) code: Arc<Code>,
    compiled: Vec<Option<Arc<Compiled>>>,
    /// Program type each compiled program was verified for (`None`: checked code).
    types: Vec<Option<ProgramType>>,
}

impl Shared {
    /// Whether program `index` exists, and whether it is compiled.
    fn tail_target(&self, index: usize) -> Option<bool> {
        self.code.programs.get(index).map(|_| self.compiled.get(index).is_some_and(Option::is_some))
    }
}

/// A compiled program, ready to run. Clone it to run on several threads (clones share the code,
/// helpers and maps, not the stack).
#[derive(Clone, Debug)]
pub struct Jit {
    shared: Arc<Shared>,
    entry: usize,
    stack: Box<[u8]>,
    /// The run context and region table, kept between runs (see [`Parked`]).
    parked: Box<Parked>,
    /// The entry program's code when it is XDP code that calls the runtime only to trap (no
    /// helpers, every access proven): `run_xdp` then needs no region table at all.
    direct: Option<unsafe extern "C" fn(*mut RunCtx) -> u64>,
}

/// What a run hands compiled code, kept between runs so that a run writes only what changes (the
/// packet, the context, the registers) instead of building a [`RunCtx`] and a region table each
/// time: small programs then pay a few nanoseconds per run.
struct Parked {
    rt: RunCtx,
    /// The region table; `rt.memory` points here during a run.
    memory: MemoryMap<'static>,
}

impl Parked {
    fn new(shared: &Arc<Shared>) -> Box<Self> {
        // SAFETY: the shared regions live in `shared.code`, behind the `Arc` that every `Jit`
        // holding this context also holds, and are never changed after the code is prepared;
        // the `'static` table never outlives them (it is dropped with the `Jit`).
        let regions: &'static [Region] = unsafe { &*std::ptr::from_ref(shared.code.regions.0.as_slice()) };
        let max_insns = shared.code.config.max_insns.unwrap_or(u64::MAX);
        Box::new(Parked { rt: RunCtx::new(Arc::as_ptr(shared), max_insns), memory: MemoryMap::new(regions) })
    }
}

impl Clone for Parked {
    fn clone(&self) -> Self {
        // A fresh context over the same shared regions: nothing of a run outlives it.
        Parked { rt: RunCtx::new(self.rt.shared, self.rt.max_insns), memory: self.memory.fresh() }
    }
}

impl std::fmt::Debug for Parked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parked").finish_non_exhaustive()
    }
}

// SAFETY: the context's raw pointers are `shared` (the `Arc<Shared>` the same `Jit` holds, valid
// on any thread) and pointers into the run's memory that each run rewrites before compiled code
// uses them and that are used only during that run, on the thread holding `&mut Jit`.
unsafe impl Send for Parked {}

/// The entry program's code when `run_xdp` can take the direct path.
fn direct_entry(shared: &Shared, entry: usize) -> Option<unsafe extern "C" fn(*mut RunCtx) -> u64> {
    let compiled = shared.compiled.get(entry)?.as_ref()?;
    // A tiered program's code changes; it always goes through `execute`, which looks it up.
    let stats = compiled.stats();
    (stats.runtime_calls == 0
        && !compiled.tiered()
        && shared.types.get(entry).copied().flatten() == Some(ProgramType::Xdp))
    .then(|| compiled.entry())
}

// Compile-time proof of what the doc comments promise: a runner per thread.
const _: () = {
    const fn send<T: Send>() {}
    send::<Jit>();
    send::<crate::Interpreter>();
};

/// How a run sets up the program's context.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RunKind {
    Memory,
    Xdp,
    Skb(SkbHook),
    Http,
}

impl Jit {
    /// Compiles a program duet's verifier proved safe, with `helpers`. `lddw`s of maps stay
    /// unresolved (running one traps, as in the interpreter); load objects with a
    /// [`crate::Module`] instead. `config.max_insns` does not apply: a verified program
    /// terminates, and compiled code counts no instructions.
    pub fn new(program: &VerifiedProgram, helpers: Helpers, config: Config) -> Result<Self, JitError> {
        let insns = prepare(program.program(), &helpers, |_, _| Ok(None))?;
        let code = Arc::new(Code::new(vec![insns], helpers, SharedRegions::default(), config));
        code.set_verified(0, program);
        let compiled = compile::compile(&compile::Input {
            insns: &code.programs[0],
            verified: Some(program),
            helpers: &code.helpers,
            maps: &[],
            env: None,
        })?;
        Ok(Self::from_parts(code, vec![Some(Arc::new(compiled))], vec![Some(program.program_type())], 0))
    }

    /// Compiles a program that has not been verified, with every memory access checked against
    /// the region table and the instruction budget (`config.max_insns`) counted, exactly as the
    /// interpreter does. For test suites whose programs are not meant to pass a verifier (the
    /// conformance suite); it is slower than [`Jit::new`]'s code.
    pub fn new_checked(program: &Program, helpers: Helpers, config: Config) -> Result<Self, JitError> {
        let insns = prepare(program, &helpers, |_, _| Ok(None))?;
        let code = Arc::new(Code::new(vec![insns], helpers, SharedRegions::default(), config));
        let compiled = compile::compile(&compile::Input {
            insns: &code.programs[0],
            verified: None,
            helpers: &code.helpers,
            maps: &[],
            env: None,
        })?;
        Ok(Self::from_parts(code, vec![Some(Arc::new(compiled))], vec![None], 0))
    }

    /// Compiles program `index` of a module's prepared code with its verification facts; `maps`
    /// and `env` are the module's, which its helpers use (so compiled code may call them
    /// directly).
    pub(crate) fn compile_program(
        code: &Arc<Code>,
        index: usize,
        program: &VerifiedProgram,
        maps: &[KnownMap],
        env: &crate::Env,
    ) -> Result<Arc<Compiled>, JitError> {
        Ok(Arc::new(compile::compile(&compile::Input {
            insns: &code.programs[index],
            verified: Some(program),
            helpers: &code.helpers,
            maps,
            env: Some(env),
        })?))
    }

    pub(crate) fn from_parts(
        code: Arc<Code>,
        compiled: Vec<Option<Arc<Compiled>>>,
        types: Vec<Option<ProgramType>>,
        entry: usize,
    ) -> Self {
        let shared = Arc::new(Shared { code, compiled, types });
        let direct = direct_entry(&shared, entry);
        let parked = Parked::new(&shared);
        Jit { shared, entry, stack: vec![0; STACK_TOTAL].into_boxed_slice(), parked, direct }
    }

    /// What compiling the entry program took.
    pub fn stats(&self) -> CompileStats {
        self.shared.compiled[self.entry].as_ref().map(|c| c.stats()).unwrap_or_default()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.shared.code.config
    }

    /// Runs the program with `r1` pointing at `mem` and `r2 = mem.len()`, as the conformance
    /// suite and socket-filter style programs expect. Legacy packet loads read from `mem`.
    pub fn run(&mut self, mem: &mut [u8]) -> Result<u64, Trap> {
        let Jit { shared, entry, stack, parked, .. } = self;
        let memory = &mut parked.memory;
        memory.reset();
        let stack = Region::writable(stack, RegionKind::Stack);
        memory.push(stack);
        let input = Region::writable(mem, RegionKind::Input);
        memory.push(input);
        // No memory: r1 = 0, as the interpreter (and ubpf and rbpf) pass it.
        let r1 = if mem.is_empty() { 0 } else { input.start() };
        execute(shared, *entry, parked, stack, [r1, input.len(), 0, 0, 0], input, RunKind::Memory, None)
    }

    /// Runs an XDP program on `packet`; returns the verdict (`r0`).
    ///
    /// Inlined into callers: the direct path (code that calls the runtime only to trap) is a
    /// few stores and the call; every other run goes through the region table, out of line, so
    /// the direct path saves no registers for it.
    #[inline]
    pub fn run_xdp(&mut self, packet: &mut XdpPacket) -> Result<u64, Trap> {
        if let Some(entry) = self.direct {
            let top = self.stack.as_mut_ptr() as u64 + self.stack.len() as u64;
            let rt = &mut self.parked.rt;
            let ctx = packet as *const XdpPacket as u64;
            let (data, data_end, data_meta) = (packet.data as u64, packet.data_end as u64, packet.data_meta as u64);
            rt.set_xdp_fields(
                packet.buf.as_mut_ptr() as u64,
                [data, data_end, data_meta],
                packet.ingress_ifindex,
                packet.rx_queue_index,
            );
            rt.ctx_addr = ctx;
            rt.regs[1] = ctx;
            rt.regs[10] = top;
            rt.r10 = top;
            rt.status = runtime::STATUS_OK;
            // SAFETY: `entry` is the entry program's native code, kept mapped by `self.shared`;
            // it was verified as XDP and calls no runtime function but `raise` (`direct_entry`),
            // so it reads and writes only `rt`, the stack buffer below `top`, the packet buffer
            // (borrowed mutably for the call) and map values, each access proven in bounds by
            // the verifier.
            let r0 = unsafe { entry(rt) };
            // Only a trap (`raise`) stops the run early here, and it sets the status.
            return if rt.status == runtime::STATUS_OK { Ok(r0) } else { rt.outcome.take().unwrap_or(Ok(r0)) };
        }
        self.run_xdp_with_regions(packet)
    }

    /// [`Jit::run_xdp`] with the region table, for code that calls the runtime.
    #[inline(never)]
    fn run_xdp_with_regions(&mut self, packet: &mut XdpPacket) -> Result<u64, Trap> {
        let Jit { shared, entry, stack, parked, .. } = self;
        let memory = &mut parked.memory;
        memory.reset();
        let stack = Region::writable(stack, RegionKind::Stack);
        memory.push(stack);
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
        let ctx = packet as *const XdpPacket as u64;
        memory.context =
            Context::Xdp { addr: ctx, ingress_ifindex: packet.ingress_ifindex, rx_queue_index: packet.rx_queue_index };
        let legacy = memory.get(PACKET_REGION);
        let result = execute(shared, *entry, parked, stack, [ctx, 0, 0, 0, 0], legacy, RunKind::Xdp, None);
        if let Some(x) = parked.memory.xdp {
            packet.data_meta = x.data_meta as usize;
            packet.data = x.data as usize;
            packet.data_end = x.data_end as usize;
        }
        result
    }

    /// Runs a socket filter on an Ethernet frame, as the kernel's `BPF_PROG_TEST_RUN` does.
    pub fn run_socket_filter(&mut self, frame: &mut [u8]) -> Result<u64, Trap> {
        self.run_skb(SkbHook::SocketFilter, frame)
    }

    /// Runs an skb program (socket filter, TC classifier, cgroup skb) on an Ethernet frame, as
    /// [`crate::Interpreter::run_skb`] does.
    pub fn run_skb(&mut self, hook: SkbHook, frame: &mut [u8]) -> Result<u64, Trap> {
        let Jit { shared, entry, stack, parked, .. } = self;
        let memory = &mut parked.memory;
        memory.reset();
        let stack = Region::writable(stack, RegionKind::Stack);
        memory.push(stack);
        let (ctx, packet) = crate::interp::setup_skb(memory, hook, frame);
        execute(shared, *entry, parked, stack, [ctx, 0, 0, 0, 0], packet, RunKind::Skb(hook), None)
    }

    /// The http program type of the entry program (`None`: not an http program, or checked code
    /// whose type is unknown).
    pub fn http_program(&self) -> Option<HttpProgram> {
        self.shared.types.get(self.entry).copied().flatten().and_then(HttpProgram::from_type)
    }

    /// Runs an http program on one exchange, as [`crate::Interpreter::run_http`] does; the
    /// program must have been verified as an http program (checked code runs as a request
    /// filter).
    pub fn run_http(&mut self, md: &HttpMd, ex: &mut dyn HttpExchange) -> Result<u64, Trap> {
        let mut state = HttpRunState::new(self.http_program().unwrap_or(HttpProgram::Request));
        self.run_http_with(md, &mut state, ex)
    }

    /// [`Jit::run_http`] with the caller's run state (see
    /// [`crate::Interpreter::run_http_with`]).
    pub fn run_http_with(
        &mut self,
        md: &HttpMd,
        state: &mut HttpRunState,
        ex: &mut dyn HttpExchange,
    ) -> Result<u64, Trap> {
        let Jit { shared, entry, stack, parked, .. } = self;
        let memory = &mut parked.memory;
        memory.reset();
        let stack = Region::writable(stack, RegionKind::Stack);
        memory.push(stack);
        let ctx = md as *const HttpMd as u64;
        memory.context = Context::Http { addr: ctx, fields: md.fields() };
        let mut run = HttpRun { state, exchange: ex };
        execute(shared, *entry, parked, stack, [ctx, 0, 0, 0, 0], Region::EMPTY, RunKind::Http, Some(&mut run))
    }
}

/// Verified code relies on the context its program type promises; running it with another
/// would let it dereference numbers it takes for pointers.
fn kind_matches(ty: Option<ProgramType>, kind: RunKind) -> bool {
    match ty {
        None => true,
        Some(ProgramType::Xdp) => kind == RunKind::Xdp,
        Some(ProgramType::SocketFilter) => kind == RunKind::Skb(SkbHook::SocketFilter),
        Some(ProgramType::SchedCls) => kind == RunKind::Skb(SkbHook::Classifier),
        Some(ProgramType::CgroupSkb) => kind == RunKind::Skb(SkbHook::CgroupSkb),
        Some(ProgramType::HttpRequest | ProgramType::HttpResponse | ProgramType::Route) => kind == RunKind::Http,
        Some(_) => false,
    }
}

/// Runs compiled code until it returns, following tail calls, with `parked.memory` set up for
/// the run by the caller. Inlined into each `run_*` so the values just written there reach the
/// run context in registers: copying them back out of memory with wider loads than the stores
/// that wrote them stalls store-to-load forwarding.
#[inline(always)]
#[allow(clippy::too_many_arguments, reason = "the run's parts, passed in registers to the inlined driver")]
fn execute(
    shared: &Arc<Shared>,
    entry: usize,
    parked: &mut Parked,
    stack: Region,
    args: [u64; 5],
    legacy: Region,
    kind: RunKind,
    http: Option<&mut HttpRun<'_>>,
) -> Result<u64, Trap> {
    let top = stack.start() + stack.len();
    let [a1, a2, a3, a4, a5] = args;
    // `rt.shared` and `rt.max_insns` were set when the context was made (`Parked::new`) and do
    // not change; `rt.current`, `rt.r10` and `rt.regs[10]` are set per program below.
    let Parked { rt, memory } = parked;
    debug_assert!(std::ptr::eq(rt.shared, Arc::as_ptr(shared)));
    rt.regs = [0, a1, a2, a3, a4, a5, 0, 0, 0, 0, top];
    rt.legacy_ptr = legacy.ptr as u64;
    rt.legacy_len = legacy.len();
    rt.budget = rt.max_insns;
    rt.status = runtime::STATUS_OK;
    rt.tail_target = 0;
    // The region table outlives the run; compiled code reaches it only during `execute`.
    rt.memory = std::ptr::from_mut(memory);
    rt.stack = stack;
    rt.outcome = None;
    rt.tail_calls = 0;
    // The run outlives compiled code's use of it; `RunCtx::call` reborrows it per helper call.
    rt.http = http.map_or(std::ptr::null_mut(), |run| (run as *mut HttpRun<'_>).cast());
    rt.refresh_context();
    let mut current = entry;
    loop {
        let Some(Some(compiled)) = shared.compiled.get(current) else {
            return Err(Trap { pc: 0, kind: TrapKind::Unsupported("a program the JIT did not compile") });
        };
        if !kind_matches(shared.types[current], kind) {
            return Err(Trap {
                pc: 0,
                kind: TrapKind::Unsupported("running verified code with a context its program type does not have"),
            });
        }
        rt.current = current;
        rt.status = runtime::STATUS_OK;
        rt.r10 = top;
        rt.regs[10] = top;
        // SAFETY: `compiled.entry()` is native code generated for this program by `compile` (of
        // either tier), which keeps it mapped while `compiled` (held by `shared`) lives. It reads
        // and writes only `rt`, the stack buffer, and guest memory the verifier proved in bounds
        // or the region table checked; `rt` points at live state for the whole call.
        let r0 = unsafe { (compiled.entry())(rt) };
        if let Some(outcome) = rt.outcome.take() {
            return outcome;
        }
        if rt.status == runtime::STATUS_TAIL_CALL {
            current = rt.tail_target as usize;
            continue;
        }
        return Ok(r0);
    }
}
