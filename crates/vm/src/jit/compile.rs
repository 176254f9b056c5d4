//! eBPF to Cranelift IR, one function per program.
//!
//! The eBPF registers are Cranelift variables, so they live in machine registers; every jump
//! target, call return site and instruction after a branch starts a block, sealed as soon as its
//! last predecessor is emitted (a loop head after its last back edge). Within a block, a load of
//! an `r10` stack slot the block stored or loaded at the same offset and size takes that value
//! instead. Cranelift runs without its egraph pass (see `isa`).
//!
//! Local calls do not become native calls: each call translates the callee's code again at the
//! call site (inlined, with its own blocks), r10 moves down one frame, the caller's r6..r9 and r10
//! stay SSA values across it, and the callee's `exit` jumps back — the interpreter's exact frame
//! rules, with neither a native call nor a return dispatch. When the copies would grow too large
//! (a callee called from many places, recursion in unverified code), a call instead pushes the
//! return site and r6..r9 onto a frame array in the native stack frame, and `exit` pops them and
//! dispatches through a jump table.
//!
//! Two modes:
//! - verified: the verifier's per-instruction facts decide each access. A proven access to the
//!   stack, packet, metadata, a map value or a ring buffer record is a plain load or store; a
//!   context load is a table lookup in the [`RunCtx`]; anything else (regions mixed with the
//!   context, missing facts) goes through the checked runtime call. No budget is counted: a
//!   verified program terminates.
//! - checked (unverified programs: the conformance suite): every access goes through the region
//!   table, and the instruction budget is counted per straight-line segment, with the trap on
//!   the same instruction as the interpreter's.

use std::collections::HashMap;
use std::mem::offset_of;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use cranelift_codegen::entity::SecondaryMap;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I8, I16, I32, I64};
use cranelift_codegen::ir::{
    AbiParam, AtomicRmwOp, Block, BlockArg, Function, InstBuilder, JumpTableData, MemFlagsData, SigRef, Signature,
    StackSlot, StackSlotData, StackSlotKind, TrapCode, Type, Value,
};
use cranelift_codegen::isa::{CallConv, OwnedTargetIsa};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Linkage, Module, ModuleReloc, ModuleRelocTarget};
use duet_isa::{Insn, Op};
use duet_verifier::{MemRegion, ProgramType, VerifiedProgram};

use super::JitError;
use super::runtime::{self, RunCtx};
use crate::helpers::Helpers;
use crate::interp::{BPF_LOOP, BPF_MAX_LOOPS, E2BIG, EINVAL, MAX_CALL_DEPTH, STACK_SIZE};

/// A compiled program: its executable code, owned, and the entry point.
pub(crate) struct Compiled {
    /// Keeps the code mapped; frees it on drop.
    _code: ExecCode,
    entry: unsafe extern "C" fn(*mut RunCtx) -> u64,
    /// A tiered program's optimized code, once the background compile has made it.
    upgrade: Option<Arc<OnceLock<Compiled>>>,
    stats: super::CompileStats,
    /// The maps compiled code calls directly, kept alive with it.
    _maps: Vec<Arc<duet_maps::Map>>,
    /// The environment compiled code calls directly (its address is in the code).
    _env: Option<Arc<crate::Env>>,
}

impl Compiled {
    /// The code to run: the optimized tier's once it is ready, else this one. The code a run
    /// started stays mapped while `self` lives, so a run never sees the switch.
    pub(super) fn entry(&self) -> unsafe extern "C" fn(*mut RunCtx) -> u64 {
        match self.upgrade.as_deref().and_then(OnceLock::get) {
            Some(optimized) => optimized.entry,
            None => self.entry,
        }
    }

    /// Whether the code may still change (see [`Compiled::entry`]).
    pub(super) fn tiered(&self) -> bool {
        self.upgrade.is_some()
    }

    pub(super) fn stats(&self) -> super::CompileStats {
        let optimized = self.upgrade.as_deref().and_then(OnceLock::get);
        super::CompileStats { optimized_time: optimized.map(|c| c.stats.time), ..self.stats }
    }
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled").field("stats", &self.stats).finish_non_exhaustive()
    }
}

/// Executable memory from Cranelift's JIT module: written while compiling, then mapped
/// read+execute (never writable and executable at once); unmapped on drop.
struct ExecCode(Option<JITModule>);

impl Drop for ExecCode {
    fn drop(&mut self) {
        if let Some(module) = self.0.take() {
            // SAFETY: an `ExecCode` is dropped only with the `Compiled` that owns it, which is
            // dropped only when no `Jit` shares it any more, so no compiled code is running and
            // no function pointer into it remains.
            unsafe { module.free_memory() };
        }
    }
}

// SAFETY: after compilation the module is never used again except to free it in `drop`, which
// has exclusive access; the code it maps is immutable and may run on any thread.
unsafe impl Send for ExecCode {}
// SAFETY: as above: no method takes `&ExecCode`, so shared references allow nothing.
unsafe impl Sync for ExecCode {}

/// What to compile.
pub(super) struct Input<'a> {
    /// Slot-indexed instructions with map references resolved (see `interp::prepare`).
    pub(super) insns: &'a [Insn],
    /// The verifier's facts; `None` compiles every check (unverified programs).
    pub(super) verified: Option<&'a VerifiedProgram>,
    pub(super) helpers: &'a Helpers,
    /// Maps whose helpers may be direct calls or inline (verified code only).
    pub(super) maps: &'a [super::KnownMap],
    /// The environment of the module whose helpers these are: its clock, random and CPU helpers
    /// become direct calls (or a constant).
    pub(super) env: Option<&'a crate::Env>,
}

/// Programs of at least this many instructions (verified ones) compile in two tiers: first with
/// Cranelift's single-pass register allocator, which takes about half the time and makes code
/// that runs up to twice as slow, ready to run at once; then, on a background thread, as every
/// other program is, and the optimized code replaces the first for every run that starts after.
pub(crate) const TIER_MIN_INSNS: usize = 1024;

fn isa(first_tier: bool) -> Result<OwnedTargetIsa, JitError> {
    static ISA: [OnceLock<Result<OwnedTargetIsa, String>>; 2] = [OnceLock::new(), OnceLock::new()];
    ISA[usize::from(first_tier)]
        .get_or_init(|| {
            let mut flags = settings::builder();
            let set = |flags: &mut settings::Builder, k: &str, v: &str| flags.set(k, v).map_err(|e| e.to_string());
            // No egraph pass: it took a fifth of the compile time, and the JIT benchmark's programs
            // ran as fast without it (interleaved A/B): clang has already done the folding, GVN and
            // hoisting it would do, and the translation forwards stack stores to loads, drops unused
            // entry loads and keeps `RunCtx::r10` stores out of inlined calls itself. Instruction
            // selection and register allocation are the same.
            set(&mut flags, "opt_level", "none")?;
            set(&mut flags, "is_pic", "false")?;
            // Block offsets and edges of the machine code, to place loops (`loop_shift`).
            set(&mut flags, "machine_code_cfg_info", "true")?;
            set(&mut flags, "enable_verifier", if cfg!(debug_assertions) { "true" } else { "false" })?;
            if first_tier {
                set(&mut flags, "regalloc_algorithm", "single_pass")?;
            }
            let builder = cranelift_native::builder().map_err(str::to_owned)?;
            builder.finish(settings::Flags::new(flags)).map_err(|e| e.to_string())
        })
        .clone()
        .map_err(JitError::Codegen)
}

/// Compiles one program; a verified one of [`TIER_MIN_INSNS`] instructions or more in two tiers:
/// the IR is translated once, compiled for the first tier here, and a copy of it compiled with
/// the optimized settings on the background thread.
pub(super) fn compile(input: &Input<'_>) -> Result<Compiled, JitError> {
    if input.verified.is_none() || count_insns(input.insns) < TIER_MIN_INSNS {
        return compile_tier(input, false, false).map(|(compiled, _)| compiled);
    }
    let (mut first, ir) = compile_tier(input, true, true)?;
    let Some(ir) = ir else { return Ok(first) };
    let upgrade = Arc::new(OnceLock::new());
    let slot = Arc::clone(&upgrade);
    let queued = in_background(Box::new(move || {
        if Arc::strong_count(&slot) == 1 {
            // The program was dropped before its turn.
            return;
        }
        // A failure leaves the first tier's code in place (it compiled the same IR).
        if let Ok(optimized) = compile_ir(ir) {
            let _ = slot.set(optimized);
        }
    }));
    if queued.is_err() {
        // No background thread: the optimized code now, as for any other program.
        return compile_tier(input, false, false).map(|(compiled, _)| compiled);
    }
    first.upgrade = Some(upgrade);
    first.stats.tiered = true;
    Ok(first)
}

/// Runs `job` on the process's one background compile thread (started on first use, so its
/// Cranelift contexts stay warm between programs); gives it back if there is no such thread.
fn in_background(job: Box<dyn FnOnce() + Send>) -> Result<(), Box<dyn FnOnce() + Send>> {
    type Job = Box<dyn FnOnce() + Send>;
    static WORKER: OnceLock<Option<std::sync::mpsc::Sender<Job>>> = OnceLock::new();
    let worker = WORKER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let thread = std::thread::Builder::new().name("duet-jit-tier2".into()).spawn(move || {
            for job in rx {
                job();
            }
        });
        thread.ok().map(|_| tx)
    });
    match worker {
        Some(tx) => tx.send(job).map_err(|e| e.0),
        None => Err(job),
    }
}

/// A translated program, for the optimized tier: its IR (the first tier's, before Cranelift's
/// passes changed it) and what code generation needs besides. Translating again on the
/// background thread would cost that thread a tenth of its time for the same IR.
struct Ir {
    func: Function,
    info: CodeInfo,
}

/// What a compiled program records and keeps alive besides its code.
#[derive(Clone)]
struct CodeInfo {
    counts: Counts,
    n_insns: usize,
    checked: bool,
    /// The maps whose addresses the code holds.
    maps: Vec<Arc<duet_maps::Map>>,
    /// The environment whose address the code holds (shared by both tiers' code).
    env: Option<Arc<crate::Env>>,
}

/// Cranelift's per-function state, reused by every compile on this thread (cleared after each)
/// instead of allocated afresh.
fn with_contexts<T>(f: impl FnOnce(&mut cranelift_codegen::Context, &mut FunctionBuilderContext) -> T) -> T {
    thread_local! {
        static CONTEXTS: std::cell::RefCell<Option<(cranelift_codegen::Context, FunctionBuilderContext)>> =
            const { std::cell::RefCell::new(None) };
    }
    let (mut ctx, mut fb_ctx) = CONTEXTS
        .with(|c| c.borrow_mut().take())
        .unwrap_or_else(|| (cranelift_codegen::Context::new(), FunctionBuilderContext::new()));
    let out = f(&mut ctx, &mut fb_ctx);
    ctx.clear();
    CONTEXTS.with(|c| *c.borrow_mut() = Some((ctx, fb_ctx)));
    out
}

/// Translates and compiles one program with the first tier's settings or the optimized ones;
/// with `keep_ir`, also returns a copy of the IR for [`compile_ir`].
fn compile_tier(input: &Input<'_>, first_tier: bool, keep_ir: bool) -> Result<(Compiled, Option<Ir>), JitError> {
    let start = Instant::now();
    let isa = isa(first_tier)?;
    let env = input.env.map(|e| Arc::new(e.clone()));
    with_contexts(|ctx, fb_ctx| {
        // Called as `extern "C"` (a cleared context's signature says `Fast`).
        ctx.func.signature.call_conv = isa.default_call_conv();
        ctx.func.signature.params.push(AbiParam::new(I64));
        ctx.func.signature.returns.push(AbiParam::new(I64));
        let builder = FunctionBuilder::new(&mut ctx.func, fb_ctx);
        let (counts, loads) = Translator::new(builder, input, env.as_deref(), &isa).translate()?;
        drop_unused_loads(&mut ctx.func, &loads);
        let info = CodeInfo {
            counts,
            n_insns: count_insns(input.insns),
            checked: input.verified.is_none(),
            maps: input.maps.iter().map(|m| Arc::clone(&m.map)).collect(),
            env,
        };
        let ir = keep_ir.then(|| Ir { func: ctx.func.clone(), info: info.clone() });
        Ok((generate(ctx, &isa, info, start)?, ir))
    })
}

/// Compiles a first tier's IR with the optimized settings.
fn compile_ir(ir: Ir) -> Result<Compiled, JitError> {
    let start = Instant::now();
    let isa = isa(false)?;
    with_contexts(|ctx, _| {
        ctx.func = ir.func;
        generate(ctx, &isa, ir.info, start)
    })
}

/// Generates the code of the function in `ctx` and maps it executable.
fn generate(
    ctx: &mut cranelift_codegen::Context,
    isa: &OwnedTargetIsa,
    info: CodeInfo,
    start: Instant,
) -> Result<Compiled, JitError> {
    let mut module = JITModule::new(JITBuilder::with_isa(Arc::clone(isa), cranelift_module::default_libcall_names()));
    let id = module
        .declare_function("bpf", Linkage::Local, &ctx.func.signature)
        .map_err(|e| JitError::Codegen(e.to_string()))?;
    ctx.compile(&**isa, &mut cranelift_codegen::control::ControlPlane::default())
        .map_err(|e| JitError::Codegen(format!("{:?}", e.inner)))?;
    let code = ctx.compiled_code().ok_or_else(|| JitError::Codegen("no code".into()))?;
    // The code goes `shift` bytes into a 64-byte aligned allocation, so that its loops cross
    // as few 64-byte lines as possible; the bytes before the entry are never executed.
    let shift = loop_shift(code);
    let mut bytes = vec![0xcc; shift as usize];
    bytes.extend_from_slice(code.code_buffer());
    let relocs: Vec<ModuleReloc> = code
        .buffer
        .relocs()
        .iter()
        .map(|r| {
            let mut reloc = ModuleReloc::from_mach_reloc(r, &ctx.func, id);
            reloc.offset += shift;
            if let ModuleRelocTarget::FunctionOffset(_, offset) = &mut reloc.name {
                *offset += shift;
            }
            reloc
        })
        .collect();
    module.define_function_bytes(id, u64::from(LINE), &bytes, &relocs).map_err(|e| JitError::Codegen(e.to_string()))?;
    let code_size = code.code_buffer().len();
    module.finalize_definitions().map_err(|e| JitError::Codegen(e.to_string()))?;
    let ptr = module.get_finalized_function(id).wrapping_add(shift as usize);
    let code = ExecCode(Some(module));
    // SAFETY: `ptr` is the entry of the function just compiled with the signature
    // `(i64) -> i64` in the platform's default calling convention, which is `extern "C"`; the
    // code stays mapped as long as `code`, which the returned value owns.
    let entry = unsafe { std::mem::transmute::<*const u8, unsafe extern "C" fn(*mut RunCtx) -> u64>(ptr) };
    let CodeInfo { counts, n_insns, checked, maps, env } = info;
    Ok(Compiled {
        _code: code,
        entry,
        upgrade: None,
        _maps: maps,
        _env: env,
        stats: super::CompileStats {
            n_insns,
            code_size,
            time: start.elapsed(),
            checked,
            checked_accesses: counts.checked_accesses,
            inline_lookups: counts.inline_lookups,
            direct_map_calls: counts.direct_map_calls,
            direct_env_calls: counts.direct_env_calls,
            runtime_calls: counts.runtime_calls,
            tiered: false,
            optimized_time: None,
        },
    })
}

/// The fetch and decode line of x86-64 cores (and of the micro-op caches behind them).
const LINE: u32 = 64;

/// How far into a 64-byte line to place the code: the offset that minimises, over its loops (a
/// back edge to a block at or before the edge's block), the lines each loop's code spans divided
/// by its length, so that small (inner) loops fit one line when they can. A loop that straddles
/// a line boundary can cost an extra fetch per iteration (the JIT benchmark's 32-byte `memcpy`
/// loop, moved through the line by padding: 38 ns straddling, 21-26 ns inside one line on an
/// AMD EPYC). Offsets stay multiples of the code's own alignment (constants in it).
fn loop_shift(code: &cranelift_codegen::CompiledCode) -> u32 {
    let len = code.code_buffer().len() as u32;
    let starts = &code.bb_starts;
    // `bb_starts` ascends: a block ends where the next one starts.
    let end_of = |block: u32| starts.get(starts.partition_point(|&s| s <= block)).copied().unwrap_or(len);
    let loops: Vec<(u32, u32)> = code
        .bb_edges
        .iter()
        .filter(|&&(from, to)| to <= from)
        .map(|&(from, to)| (to, end_of(from)))
        .filter(|&(start, end)| end > start)
        .collect();
    if loops.is_empty() {
        return 0;
    }
    let step = code.buffer.alignment.clamp(1, LINE);
    let cost = |shift: u32| -> f64 {
        loops
            .iter()
            .map(|&(start, end)| {
                let lines = (end - 1 + shift) / LINE - (start + shift) / LINE + 1;
                f64::from(lines) / f64::from(end - start)
            })
            .sum()
    };
    (0..LINE / step).map(|i| i * step).min_by(|&a, &b| cost(a).total_cmp(&cost(b))).unwrap_or(0)
}

fn count_insns(insns: &[Insn]) -> usize {
    let (mut pc, mut n) = (0, 0);
    while pc < insns.len() {
        n += 1;
        pc += insns[pc].slots();
    }
    n
}

/// How an access is compiled.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Proven in bounds: a plain native access.
    Plain,
    /// A proven context field load (`ldxw` of `xdp_md` / `__sk_buff`).
    Context,
    /// Through the region table.
    Checked,
}

/// What [`Translator::translate`] counted.
#[derive(Clone, Copy)]
struct Counts {
    checked_accesses: usize,
    inline_lookups: usize,
    direct_map_calls: usize,
    direct_env_calls: usize,
    /// Runtime calls other than `raise` and direct map calls (helpers, checked accesses).
    runtime_calls: usize,
}

struct Translator<'a, 'b> {
    b: FunctionBuilder<'b>,
    input: &'a Input<'a>,
    insns: &'a [Insn],
    checked: bool,
    ctx_fast: bool,
    regs: [Variable; 11],
    rt: Variable,
    depth: Variable,
    budget: Variable,
    blocks: Vec<Option<Block>>,
    seg_len: Vec<u32>,
    ret_sites: Vec<usize>,
    stop_block: Block,
    pop_block: Option<Block>,
    frames: Option<StackSlot>,
    /// The runtime-call signatures imported so far, by argument count (every argument and the
    /// result an `i64`): only those the code uses, as Cranelift computes the ABI of each one.
    sigs: [Option<SigRef>; 9],
    call_conv: CallConv,
    terminated: bool,
    counts: Counts,
    /// The module's environment (shared by `compile`, alive as long as the code) and its CPU.
    env: Option<(i64, u32)>,
    /// Registers known to hold the unmodified context pointer: r1 from the entry until the first
    /// block boundary (none when a branch can reach pc 0, or after that boundary). A context load
    /// through one reads its field's slot directly, as the kernel rewrites `ctx->field`.
    ctx_regs: u16,
    frontend: cranelift_codegen::isa::TargetFrontendConfig,
    /// Whether local calls are inlined (see [`Translator::plan_inlining`]); else they go through
    /// the frame array and the return jump table.
    inline: bool,
    /// The inlined call being translated: its call depth, and the block its `exit` jumps to
    /// (`None`: the program's own frame, whose `exit` returns).
    inst_depth: usize,
    inst_ret: Option<Block>,
    /// Inlined calls still to translate.
    pending: Vec<Instance>,
    /// Block starts some later instruction of the frame being translated branches back to:
    /// sealed only once that instruction is translated.
    late: Vec<bool>,
    /// The last instruction branching back to each block start in `late`.
    late_until: Vec<usize>,
    /// `(source pc, target pc)` of the back edges of the frame being translated, ascending by
    /// source.
    seals: Vec<(usize, usize)>,
    /// What the current block knows of the stack: `(offset from r10, size, value, whether the
    /// value is already the zero-extended load)`.
    stack_vals: Vec<(i32, u8, Value, bool)>,
    /// For a 64-bit value made by zero-extending a 32-bit one (a 32-bit ALU result), that 32-bit
    /// value: the low half of the register without an `ireduce`, and a `mov32` of it is the value
    /// itself. Valid wherever the 64-bit value is (the 32-bit one is defined just before it).
    narrow: SecondaryMap<Value, Option<Value>>,
    /// The low halves (`ireduce`) the current block made, reused within it: 32-bit code
    /// (`-mcpu=v3`) reads the same halves again and again, and each IR value costs Cranelift time
    /// in lowering and register allocation. (Constants are not shared: a shared constant lives
    /// in a register across its uses, which made the JIT benchmark's `bswap` loop slower.)
    block_lo32: Vec<(Value, Value)>,
    /// [`Translator::reach`]'s answers, by entry.
    reached: HashMap<usize, Rc<[usize]>>,
    /// Whether `RunCtx::r10` is stored before each runtime call rather than at each call and
    /// return of an inlined frame (which then costs nothing when the callee calls no runtime).
    r10_lazy: bool,
    /// The entry block's loads of the run context (dropped after translation if unused).
    entry_loads: Vec<cranelift_codegen::ir::Inst>,
}

/// One inlined local call: the callee's code reachable from `entry`, translated with its own
/// blocks, starting in `block`, at call depth `depth`; its `exit` jumps to `ret`.
struct Instance {
    entry: usize,
    depth: usize,
    block: Block,
    ret: Option<Block>,
}

/// At most this many eBPF instructions are translated in all (counting each inlined copy of a
/// callee) beyond twice the program's size before calls fall back to the frame array.
const INLINE_EXTRA: usize = 4096;
/// At most this many inlined calls.
const INLINE_CALLS: usize = 512;

/// Slots of the run's context field table, as an `i32` for offset arithmetic.
const CTX_SLOTS: i32 = runtime::CTX_FIELDS as i32;

/// At most this many low halves are remembered per block (a linear search).
const BLOCK_REUSE: usize = 16;

/// Bytes per saved frame: the return site id and r6..r9.
const FRAME_BYTES: i64 = 40;

fn trusted() -> MemFlagsData {
    MemFlagsData::trusted()
}

fn guest() -> MemFlagsData {
    MemFlagsData::new()
}

impl<'a, 'b> Translator<'a, 'b> {
    fn new(mut b: FunctionBuilder<'b>, input: &'a Input<'a>, env: Option<&crate::Env>, isa: &OwnedTargetIsa) -> Self {
        let regs = std::array::from_fn(|_| b.declare_var(I64));
        let rt = b.declare_var(I64);
        let depth = b.declare_var(I64);
        let budget = b.declare_var(I64);
        let stop_block = b.create_block();
        let ctx_fast = matches!(
            input.verified.map(VerifiedProgram::program_type),
            Some(
                ProgramType::Xdp
                    | ProgramType::SocketFilter
                    | ProgramType::HttpRequest
                    | ProgramType::HttpResponse
                    | ProgramType::Route
            )
        );
        Translator {
            b,
            input,
            insns: input.insns,
            checked: input.verified.is_none(),
            ctx_fast,
            regs,
            rt,
            depth,
            budget,
            blocks: Vec::new(),
            seg_len: Vec::new(),
            ret_sites: Vec::new(),
            stop_block,
            pop_block: None,
            frames: None,
            sigs: [None; 9],
            call_conv: isa.default_call_conv(),
            terminated: false,
            counts: Counts {
                checked_accesses: 0,
                inline_lookups: 0,
                direct_map_calls: 0,
                direct_env_calls: 0,
                runtime_calls: 0,
            },
            ctx_regs: 0,
            env: env.filter(|_| input.verified.is_some()).map(|e| (std::ptr::from_ref(e) as i64, e.cpu)),
            frontend: isa.frontend_config(),
            inline: false,
            inst_depth: 0,
            inst_ret: None,
            pending: Vec::new(),
            late: Vec::new(),
            late_until: Vec::new(),
            seals: Vec::new(),
            stack_vals: Vec::new(),
            narrow: SecondaryMap::new(),
            block_lo32: Vec::new(),
            reached: HashMap::new(),
            r10_lazy: false,
            entry_loads: Vec::new(),
        }
    }

    /// Whether, in checked mode, an instruction may end the run (so a budget segment ends after
    /// it).
    fn may_end(insn: &Insn) -> bool {
        use Op::*;
        matches!(
            insn.op,
            LdxB | LdxH
                | LdxW
                | LdxDw
                | LdxSB
                | LdxSH
                | LdxSW
                | StB
                | StH
                | StW
                | StDw
                | StxB
                | StxH
                | StxW
                | StxDw
                | LdAbsB
                | LdAbsH
                | LdAbsW
                | LdIndB
                | LdIndH
                | LdIndW
                | CallKfunc
        ) || (insn.op == LdImm64 && insn.src != 0)
            || runtime::atomic_index(insn.op) != usize::MAX as u64
    }

    /// Finds the blocks among `pcs` (ascending instruction starts; `entry` is the pc control
    /// enters at and, when it exists already, its block): the entry, jump and call targets, and
    /// whatever follows a branch, call or exit (and, in checked mode, anything that may end the
    /// run); and the budget's segment lengths.
    fn find_blocks(&mut self, pcs: &[usize], (entry_pc, entry): (usize, Option<Block>)) {
        let n = self.insns.len();
        let mut starts = vec![false; n + 1];
        starts[entry_pc] = true;
        if let Some(&first) = pcs.first() {
            starts[first] = true;
        }
        for &pc in pcs {
            let insn = self.insns[pc];
            let next = pc + insn.slots();
            if let Some(target) = insn.branch_target(pc) {
                if let Some(s) = usize::try_from(target).ok().and_then(|t| starts.get_mut(t)) {
                    *s = true;
                }
                if let Ok(t) = usize::try_from(target)
                    && t <= pc
                {
                    self.late[t] = true;
                    self.late_until[t] = self.late_until[t].max(pc);
                    self.seals.push((pc, t));
                }
                starts[next.min(n)] = true;
                if insn.op == Op::CallLocal && next < n && !self.inline {
                    self.ret_sites.push(next);
                    // `emit_pop` jumps here, at the end: sealed with every other block then.
                    self.late[next] = true;
                    self.late_until[next] = usize::MAX;
                }
            }
            if matches!(insn.op, Op::Call | Op::CallReg | Op::CallKfunc | Op::Exit)
                || (self.checked && Self::may_end(&insn))
            {
                starts[next.min(n)] = true;
            }
        }
        let mut current = 0;
        for &pc in pcs {
            if starts[pc] {
                self.blocks[pc] = Some(match entry {
                    Some(block) if pc == entry_pc => block,
                    _ => self.b.create_block(),
                });
                // Segment lengths for the budget: instructions from each block start to the next.
                current = pc;
                self.seg_len[pc] = 0;
            }
            self.seg_len[current] += 1;
        }
    }

    /// The instruction starts reachable from `entry` without entering a local call (a call
    /// continues after itself), ascending: the code of one frame. Found once per entry.
    fn reach(&mut self, entry: usize) -> Rc<[usize]> {
        if let Some(pcs) = self.reached.get(&entry) {
            return Rc::clone(pcs);
        }
        let n = self.insns.len();
        let mut seen = vec![false; n];
        let mut todo = vec![entry];
        let mut out = Vec::new();
        while let Some(pc) = todo.pop() {
            if pc >= n || seen[pc] {
                continue;
            }
            seen[pc] = true;
            out.push(pc);
            let insn = self.insns[pc];
            let next = pc + insn.slots();
            let target = insn.branch_target(pc).and_then(|t| usize::try_from(t).ok());
            match insn.op {
                Op::Exit | Op::CallKfunc => {}
                Op::LdImm64 if insn.src != 0 => {}
                Op::Ja | Op::Ja32 => todo.extend(target),
                Op::CallLocal => todo.push(next),
                _ => {
                    todo.push(next);
                    todo.extend(target);
                }
            }
        }
        out.sort_unstable();
        let out: Rc<[usize]> = out.into();
        self.reached.insert(entry, Rc::clone(&out));
        out
    }

    /// Whether every local call can be inlined: each call translates the callee's code again,
    /// with its own blocks, so `exit` becomes a jump back to the call site and the caller's r6..r9
    /// and r10 are SSA values kept across the callee (the interpreter's frame rules, with no
    /// frame array and no return dispatch). Calls nested deeper than the interpreter allows
    /// compile to its trap. Refused when the copies would exceed the size limits (recursion in
    /// unverified code, a callee called from many places).
    fn plan_inlining(&mut self) -> bool {
        let limit = 2 * self.insns.len() + INLINE_EXTRA;
        let (mut total, mut calls) = (0, 0);
        let mut todo = vec![(0usize, 0usize)];
        while let Some((entry, depth)) = todo.pop() {
            let pcs = self.reach(entry);
            total += pcs.len();
            calls += 1;
            if total > limit || calls > INLINE_CALLS {
                return false;
            }
            for &pc in pcs.iter() {
                let insn = self.insns[pc];
                if insn.op == Op::CallLocal && depth + 1 < MAX_CALL_DEPTH {
                    match insn.branch_target(pc).and_then(|t| usize::try_from(t).ok()) {
                        Some(target) if target < self.insns.len() => todo.push((target, depth + 1)),
                        _ => return false,
                    }
                }
                // A bpf_loop's callback is one more inlined frame (see `inline_loop`).
                if is_loop_call(&insn)
                    && depth + 1 < MAX_CALL_DEPTH
                    && let Some((target, _)) = self.callback_at(pc)
                {
                    todo.push((target, depth + 1));
                }
            }
        }
        true
    }

    fn block_at(&self, pc: usize) -> Result<Block, JitError> {
        self.blocks
            .get(pc)
            .copied()
            .flatten()
            .ok_or_else(|| JitError::Codegen(format!("instruction {pc}: no block at a branch target")))
    }

    /// Emits the function; returns what it counted and the entry's loads.
    fn translate(mut self) -> Result<(Counts, Vec<cranelift_codegen::ir::Inst>), JitError> {
        let n = self.insns.len();
        self.blocks = vec![None; n];
        self.seg_len = vec![0; n];
        self.late = vec![false; n + 1];
        self.late_until = vec![0; n + 1];
        self.inline = self.plan_inlining();
        self.r10_lazy = self.inline && self.insns.iter().any(|i| i.op == Op::CallLocal || is_loop_call(i));
        let entry_is_target = self.insns.iter().enumerate().any(|(pc, insn)| insn.branch_target(pc) == Some(0));
        self.ctx_regs = if entry_is_target { 0 } else { 1 << 1 };
        let all: Vec<usize> = if self.inline {
            Vec::new()
        } else {
            let mut all = Vec::with_capacity(n);
            let mut pc = 0;
            while pc < n {
                all.push(pc);
                pc += self.insns[pc].slots();
            }
            self.find_blocks(&all, (0, None));
            all
        };
        let entry = self.b.create_block();
        self.b.append_block_params_for_function_params(entry);
        self.switch_sealed(entry);
        let rt = self.b.block_params(entry)[0];
        self.b.def_var(self.rt, rt);
        // Entry loads are movable: each slot is read here once, and the only later write to it (a
        // tail call) stores the register it was loaded into.
        let entry_flags = trusted().with_readonly().with_can_move();
        let zero = self.b.ins().iconst(I64, 0);
        for r in 0..11 {
            // Verified code reads only r1 (the context) and r10 before writing a register (the
            // verifier refuses reads of uninitialised ones), also after a tail call; checked code
            // may read any.
            let v = if self.checked || r == 1 || r == 10 {
                let v = self.b.ins().load(I64, entry_flags, rt, regs_offset(r));
                self.entry_loads.push(self.b.func.dfg.value_def(v).unwrap_inst());
                v
            } else {
                zero
            };
            self.b.def_var(self.regs[r], v);
        }
        self.b.def_var(self.depth, zero);
        // Only checked code counts the budget.
        let budget = if self.checked {
            let v = self.b.ins().load(I64, entry_flags, rt, off(offset_of!(RunCtx, budget)));
            self.entry_loads.push(self.b.func.dfg.value_def(v).unwrap_inst());
            v
        } else {
            self.b.ins().iconst(I64, -1)
        };
        self.b.def_var(self.budget, budget);
        if !self.ret_sites.is_empty() {
            self.frames = Some(self.b.create_sized_stack_slot(StackSlotData::new(
                StackSlotKind::ExplicitSlot,
                (FRAME_BYTES as u32) * MAX_CALL_DEPTH as u32,
                3,
            )));
            self.pop_block = Some(self.b.create_block());
        }
        if self.inline {
            let first = self.b.create_block();
            self.b.ins().jump(first, &[]);
            self.pending.push(Instance { entry: 0, depth: 0, block: first, ret: None });
            while let Some(inst) = self.pending.pop() {
                self.inst_depth = inst.depth;
                self.inst_ret = inst.ret;
                if inst.depth > 0 {
                    self.ctx_regs = 0;
                }
                let pcs = self.reach(inst.entry);
                self.find_blocks(&pcs, (inst.entry, Some(inst.block)));
                self.translate_pcs(&pcs)?;
                for &pc in pcs.iter() {
                    self.blocks[pc] = None;
                    self.late[pc] = false;
                    self.late_until[pc] = 0;
                }
            }
        } else {
            let first = self.block_at(0)?;
            self.b.ins().jump(first, &[]);
            self.translate_pcs(&all)?;
        }

        self.switch(self.stop_block);
        let zero = self.b.ins().iconst(I64, 0);
        self.b.ins().return_(&[zero]);
        if let Some(pop) = self.pop_block {
            self.emit_pop(pop)?;
        }
        self.b.seal_all_blocks();
        self.b.finalize(self.frontend);
        Ok((self.counts, self.entry_loads))
    }

    /// Translates the instructions at `pcs` (ascending; an instruction that does not end its
    /// block is followed by the next one), whose blocks [`Translator::find_blocks`] made.
    fn translate_pcs(&mut self, pcs: &[usize]) -> Result<(), JitError> {
        self.terminated = true;
        self.seals.sort_unstable();
        let seals = std::mem::take(&mut self.seals);
        let mut next_seal = 0;
        for &pc in pcs {
            let insn = self.insns[pc];
            if let Some(block) = self.blocks[pc] {
                if pc != 0 {
                    self.ctx_regs = 0;
                }
                if !self.terminated {
                    self.b.ins().jump(block, &[]);
                }
                self.switch(block);
                if !self.late[pc] {
                    self.b.seal_block(block);
                    // Every instruction of an inlined frame is reachable (but what follows a
                    // call that traps for depth), so a block sealed without predecessors would
                    // read its registers as zeros: a missed edge.
                    debug_assert!(
                        !self.inline || self.inst_depth + 1 >= MAX_CALL_DEPTH || !self.b.is_unreachable(),
                        "instruction {pc}: sealed too early"
                    );
                }
                self.terminated = false;
                if self.checked {
                    self.budget_check(pc);
                }
            }
            if !self.terminated {
                self.insn(pc, &insn)?;
            }
            if self.ctx_regs != 0 {
                self.track_ctx(&insn);
            }
            while let Some(&(source, target)) = seals.get(next_seal) {
                if source > pc {
                    break;
                }
                next_seal += 1;
                // Sealed after the last of its back edges.
                if self.late_until[target] == source
                    && let Some(block) = self.blocks[target]
                {
                    self.b.seal_block(block);
                }
            }
        }
        if !self.terminated {
            // The decoder rejects programs that fall off the end; keep the IR well-formed anyway.
            self.b.ins().jump(self.stop_block, &[]);
        }
        Ok(())
    }

    // === helpers for emitting code ===

    /// Continues in `block`; what the last block knew of the stack is forgotten.
    fn switch(&mut self, block: Block) {
        self.stack_vals.clear();
        self.block_lo32.clear();
        self.b.switch_to_block(block);
    }

    /// [`Translator::switch`] to a block whose predecessors are all emitted.
    fn switch_sealed(&mut self, block: Block) {
        self.switch(block);
        self.b.seal_block(block);
    }

    fn rt(&mut self) -> Value {
        self.b.use_var(self.rt)
    }

    fn reg(&mut self, r: u8) -> Value {
        self.b.use_var(self.regs[(r & 15).min(10) as usize])
    }

    fn set(&mut self, r: u8, v: Value) {
        self.b.def_var(self.regs[(r & 15).min(10) as usize], v);
    }

    fn set32(&mut self, r: u8, v: Value) {
        let wide = self.b.ins().uextend(I64, v);
        self.narrow[wide] = Some(v);
        self.set(r, wide);
    }

    /// The low 32 bits of `v`.
    fn lo32(&mut self, v: Value) -> Value {
        let v = self.b.func.dfg.resolve_aliases(v);
        if let Some(low) = self.narrow[v] {
            return low;
        }
        if let Some(&(_, low)) = self.block_lo32.iter().find(|&&(wide, _)| wide == v) {
            return low;
        }
        let low = self.b.ins().ireduce(I32, v);
        if self.block_lo32.len() == BLOCK_REUSE {
            self.block_lo32.clear();
        }
        self.block_lo32.push((v, low));
        low
    }

    fn c64(&mut self, v: i64) -> Value {
        self.b.ins().iconst(I64, v)
    }

    fn c32(&mut self, v: i64) -> Value {
        self.b.ins().iconst(I32, v as i32 as u32 as i64)
    }

    fn load_rt(&mut self, field: usize) -> Value {
        let rt = self.rt();
        self.b.ins().load(I64, trusted(), rt, off(field))
    }

    fn store_rt(&mut self, field: usize, v: Value) {
        let rt = self.rt();
        self.b.ins().store(trusted(), v, rt, off(field));
    }

    /// The signature of a runtime function taking `n` arguments, imported on first use.
    fn sig(&mut self, n: usize) -> SigRef {
        if let Some(sig) = self.sigs[n] {
            return sig;
        }
        let mut s = Signature::new(self.call_conv);
        s.params.extend(std::iter::repeat_n(AbiParam::new(I64), n));
        s.returns.push(AbiParam::new(I64));
        let sig = self.b.import_signature(s);
        self.sigs[n] = Some(sig);
        sig
    }

    fn call(&mut self, f: usize, args: &[Value]) -> Value {
        let pure = [
            runtime::raise as *const () as usize,
            runtime::map_lookup as *const () as usize,
            runtime::map_update as *const () as usize,
            runtime::map_delete as *const () as usize,
            runtime::ringbuf_output as *const () as usize,
            runtime::env_clock as *const () as usize,
            runtime::env_random as *const () as usize,
        ];
        if !pure.contains(&f) {
            self.counts.runtime_calls += 1;
        }
        if self.r10_lazy {
            // The runtime finds the current frame through `RunCtx::r10`.
            let r10 = self.reg(10);
            self.store_rt(offset_of!(RunCtx, r10), r10);
        }
        let sig = self.sig(args.len());
        let callee = self.b.ins().iconst(I64, f as i64);
        let inst = self.b.ins().call_indirect(sig, callee, args);
        self.b.inst_results(inst)[0]
    }

    /// After a runtime call: stop when it says so, else continue in a fresh block.
    fn check_stop(&mut self) {
        let status = self.load_rt(offset_of!(RunCtx, status));
        let cont = self.b.create_block();
        self.b.ins().brif(status, self.stop_block, &[], cont, &[]);
        self.switch_sealed(cont);
    }

    /// Branches to a cold block that raises a trap when `cond` holds.
    fn raise_if(&mut self, cond: Value, kind: u64, pc: usize, a: Value, b: Value) {
        let cold = self.b.create_block();
        let cont = self.b.create_block();
        self.b.ins().brif(cond, cold, &[], cont, &[]);
        self.b.set_cold_block(cold);
        self.switch_sealed(cold);
        self.emit_raise(kind, pc, a, b);
        self.switch_sealed(cont);
    }

    fn emit_raise(&mut self, kind: u64, pc: usize, a: Value, b: Value) {
        let rt = self.rt();
        let kind = self.c64(kind as i64);
        let pc = self.c64(pc as i64);
        self.call(runtime::raise as *const () as usize, &[rt, kind, pc, a, b]);
        self.b.ins().jump(self.stop_block, &[]);
    }

    /// Updates [`Translator::ctx_regs`] after `insn`: a 64-bit `mov` copies the context pointer,
    /// anything else that writes a register clears it.
    fn track_ctx(&mut self, insn: &Insn) {
        use duet_isa::Form;
        let bit = |r: u8| 1u16 << (r & 15);
        match insn.op.form() {
            _ if insn.op == Op::MovReg => {
                if self.ctx_regs & bit(insn.src) != 0 {
                    self.ctx_regs |= bit(insn.dst);
                } else {
                    self.ctx_regs &= !bit(insn.dst);
                }
            }
            Form::St | Form::Stx | Form::JmpReg | Form::JmpImm | Form::Ja | Form::Ja32 => {}
            Form::Atomic => self.ctx_regs &= !(bit(insn.src) | bit(0)),
            Form::CallHelper | Form::CallLocal | Form::CallKfunc | Form::CallReg | Form::LdAbs | Form::LdInd => {
                self.ctx_regs &= !0b11_1111
            }
            Form::Exit => self.ctx_regs = 0,
            _ => self.ctx_regs &= !bit(insn.dst),
        }
    }

    fn budget_check(&mut self, pc: usize) {
        let n = i64::from(self.seg_len[pc]);
        let budget = self.b.use_var(self.budget);
        let short = self.b.ins().icmp_imm_s(IntCC::UnsignedLessThan, budget, n);
        let zero = self.c64(0);
        self.raise_if(short, runtime::RAISE_BUDGET, pc, budget, zero);
        let left = self.b.ins().iadd_imm_s(budget, -n);
        self.b.def_var(self.budget, left);
    }

    fn access(&mut self, pc: usize, op: Op) -> Access {
        let access = self.proven_access(pc, op);
        if access == Access::Checked {
            self.counts.checked_accesses += 1;
        }
        access
    }

    fn proven_access(&self, pc: usize, op: Op) -> Access {
        let Some(verified) = self.input.verified else { return Access::Checked };
        match verified.facts(pc).mem {
            Some(MemRegion::Stack | MemRegion::Packet | MemRegion::PacketMeta | MemRegion::MapValue { .. })
            | Some(MemRegion::Record) => Access::Plain,
            Some(MemRegion::Context) if self.ctx_fast && op == Op::LdxW => Access::Context,
            _ => Access::Checked,
        }
    }

    // === instructions ===

    fn insn(&mut self, pc: usize, insn: &Insn) -> Result<(), JitError> {
        let (dst, src) = (insn.dst, insn.src);
        let imm = insn.imm;
        macro_rules! alu64 {
            ($f:ident, imm) => {{
                let a = self.reg(dst);
                let c = self.c64(imm);
                let v = self.b.ins().$f(a, c);
                self.set(dst, v);
            }};
            ($f:ident, reg) => {{
                let a = self.reg(dst);
                let c = self.reg(src);
                let v = self.b.ins().$f(a, c);
                self.set(dst, v);
            }};
        }
        macro_rules! alu32 {
            ($f:ident, imm) => {{
                let a = self.reg(dst);
                let a = self.lo32(a);
                let c = self.c32(imm);
                let v = self.b.ins().$f(a, c);
                self.set32(dst, v);
            }};
            ($f:ident, reg) => {{
                let a = self.reg(dst);
                let a = self.lo32(a);
                let c = self.reg(src);
                let c = self.lo32(c);
                let v = self.b.ins().$f(a, c);
                self.set32(dst, v);
            }};
        }
        macro_rules! shift32 {
            ($f:ident, $amount:expr) => {{
                let a = self.reg(dst);
                let a = self.lo32(a);
                let amount: Value = $amount;
                let v = self.b.ins().$f(a, amount);
                self.set32(dst, v);
            }};
        }
        macro_rules! jump {
            ($cc:expr, imm) => {{
                let a = self.reg(dst);
                let c = self.b.ins().icmp_imm_s($cc, a, imm);
                self.branch(pc, insn, c)?;
            }};
            ($cc:expr, reg) => {{
                let a = self.reg(dst);
                let b = self.reg(src);
                let c = self.b.ins().icmp($cc, a, b);
                self.branch(pc, insn, c)?;
            }};
            ($cc:expr, imm32) => {{
                let a = self.reg(dst);
                let a = self.lo32(a);
                let c = self.b.ins().icmp_imm_s($cc, a, imm as i32 as i64);
                self.branch(pc, insn, c)?;
            }};
            ($cc:expr, reg32) => {{
                let a = self.reg(dst);
                let a = self.lo32(a);
                let b = self.reg(src);
                let b = self.lo32(b);
                let c = self.b.ins().icmp($cc, a, b);
                self.branch(pc, insn, c)?;
            }};
        }
        macro_rules! jset {
            ($bits:ident, $rhs:expr) => {{
                let a = self.reg(dst);
                let rhs: Value = $rhs;
                let v = self.b.ins().band(a, rhs);
                let v = if $bits == 32 { self.lo32(v) } else { v };
                let c = self.b.ins().icmp_imm_s(IntCC::NotEqual, v, 0);
                self.branch(pc, insn, c)?;
            }};
        }
        const B64: u32 = 64;
        const B32: u32 = 32;
        use IntCC::*;
        match insn.op {
            // --- 64-bit ALU ---
            Op::AddImm => alu64!(iadd, imm),
            Op::AddReg => alu64!(iadd, reg),
            Op::SubImm => alu64!(isub, imm),
            Op::SubReg => alu64!(isub, reg),
            Op::MulImm => alu64!(imul, imm),
            Op::MulReg => alu64!(imul, reg),
            Op::DivImm
            | Op::DivReg
            | Op::SDivImm
            | Op::SDivReg
            | Op::ModImm
            | Op::ModReg
            | Op::SModImm
            | Op::SModReg => self.div(insn, false),
            Op::OrImm => alu64!(bor, imm),
            Op::OrReg => alu64!(bor, reg),
            Op::AndImm => alu64!(band, imm),
            Op::AndReg => alu64!(band, reg),
            Op::XorImm => alu64!(bxor, imm),
            Op::XorReg => alu64!(bxor, reg),
            // Cranelift masks shift amounts to the operand's width, as eBPF does.
            Op::LshImm => alu64!(ishl, imm),
            Op::LshReg => alu64!(ishl, reg),
            Op::RshImm => alu64!(ushr, imm),
            Op::RshReg => alu64!(ushr, reg),
            Op::ArshImm => alu64!(sshr, imm),
            Op::ArshReg => alu64!(sshr, reg),
            Op::Neg => {
                let a = self.reg(dst);
                let v = self.b.ins().ineg(a);
                self.set(dst, v);
            }
            Op::MovImm => {
                let v = self.c64(imm);
                self.set(dst, v);
            }
            Op::MovReg => {
                let v = self.reg(src);
                self.set(dst, v);
            }
            Op::MovSx8 | Op::MovSx16 | Op::MovSx32 => {
                let ty = match insn.op {
                    Op::MovSx8 => I8,
                    Op::MovSx16 => I16,
                    _ => I32,
                };
                let a = self.reg(src);
                let a = self.b.ins().ireduce(ty, a);
                let v = self.b.ins().sextend(I64, a);
                self.set(dst, v);
            }
            Op::Bswap16 | Op::Be16 => self.swap(dst, I16),
            Op::Bswap32 | Op::Be32 => self.swap(dst, I32),
            Op::Bswap64 | Op::Be64 => self.swap(dst, I64),

            // --- 32-bit ALU ---
            Op::Add32Imm => alu32!(iadd, imm),
            Op::Add32Reg => alu32!(iadd, reg),
            Op::Sub32Imm => alu32!(isub, imm),
            Op::Sub32Reg => alu32!(isub, reg),
            Op::Mul32Imm => alu32!(imul, imm),
            Op::Mul32Reg => alu32!(imul, reg),
            Op::Div32Imm
            | Op::Div32Reg
            | Op::SDiv32Imm
            | Op::SDiv32Reg
            | Op::Mod32Imm
            | Op::Mod32Reg
            | Op::SMod32Imm
            | Op::SMod32Reg => self.div(insn, true),
            Op::Or32Imm => alu32!(bor, imm),
            Op::Or32Reg => alu32!(bor, reg),
            Op::And32Imm => alu32!(band, imm),
            Op::And32Reg => alu32!(band, reg),
            Op::Xor32Imm => alu32!(bxor, imm),
            Op::Xor32Reg => alu32!(bxor, reg),
            Op::Lsh32Imm => shift32!(ishl, self.c32(imm & 31)),
            Op::Lsh32Reg => shift32!(ishl, self.reg(src)),
            Op::Rsh32Imm => shift32!(ushr, self.c32(imm & 31)),
            Op::Rsh32Reg => shift32!(ushr, self.reg(src)),
            Op::Arsh32Imm => shift32!(sshr, self.c32(imm & 31)),
            Op::Arsh32Reg => shift32!(sshr, self.reg(src)),
            Op::Neg32 => {
                let a = self.reg(dst);
                let a = self.lo32(a);
                let v = self.b.ins().ineg(a);
                self.set32(dst, v);
            }
            Op::Mov32Imm => {
                let v = self.c64(i64::from(imm as u32));
                self.set(dst, v);
            }
            Op::Mov32Reg => {
                let a = self.reg(src);
                if self.narrow[self.b.func.dfg.resolve_aliases(a)].is_some() {
                    // Already zero-extended: the same value.
                    self.set(dst, a);
                } else {
                    let a = self.lo32(a);
                    self.set32(dst, a);
                }
            }
            Op::MovSx8To32 | Op::MovSx16To32 => {
                let ty = if insn.op == Op::MovSx8To32 { I8 } else { I16 };
                let a = self.reg(src);
                let a = self.b.ins().ireduce(ty, a);
                let v = self.b.ins().sextend(I32, a);
                self.set32(dst, v);
            }
            Op::Le16 | Op::Le32 => {
                let ty = if insn.op == Op::Le16 { I16 } else { I32 };
                let a = self.reg(dst);
                let a = self.b.ins().ireduce(ty, a);
                let v = self.b.ins().uextend(I64, a);
                self.set(dst, v);
            }
            Op::Le64 => {}

            // --- jumps ---
            Op::Ja | Op::Ja32 => {
                let target = self.target(pc, insn)?;
                self.b.ins().jump(target, &[]);
                self.terminated = true;
            }
            Op::JeqImm => jump!(Equal, imm),
            Op::JeqReg => jump!(Equal, reg),
            Op::JneImm => jump!(NotEqual, imm),
            Op::JneReg => jump!(NotEqual, reg),
            Op::JgtImm => jump!(UnsignedGreaterThan, imm),
            Op::JgtReg => jump!(UnsignedGreaterThan, reg),
            Op::JgeImm => jump!(UnsignedGreaterThanOrEqual, imm),
            Op::JgeReg => jump!(UnsignedGreaterThanOrEqual, reg),
            Op::JltImm => jump!(UnsignedLessThan, imm),
            Op::JltReg => jump!(UnsignedLessThan, reg),
            Op::JleImm => jump!(UnsignedLessThanOrEqual, imm),
            Op::JleReg => jump!(UnsignedLessThanOrEqual, reg),
            Op::JsetImm => jset!(B64, self.c64(imm)),
            Op::JsetReg => jset!(B64, self.reg(src)),
            Op::JsgtImm => jump!(SignedGreaterThan, imm),
            Op::JsgtReg => jump!(SignedGreaterThan, reg),
            Op::JsgeImm => jump!(SignedGreaterThanOrEqual, imm),
            Op::JsgeReg => jump!(SignedGreaterThanOrEqual, reg),
            Op::JsltImm => jump!(SignedLessThan, imm),
            Op::JsltReg => jump!(SignedLessThan, reg),
            Op::JsleImm => jump!(SignedLessThanOrEqual, imm),
            Op::JsleReg => jump!(SignedLessThanOrEqual, reg),
            Op::Jeq32Imm => jump!(Equal, imm32),
            Op::Jeq32Reg => jump!(Equal, reg32),
            Op::Jne32Imm => jump!(NotEqual, imm32),
            Op::Jne32Reg => jump!(NotEqual, reg32),
            Op::Jgt32Imm => jump!(UnsignedGreaterThan, imm32),
            Op::Jgt32Reg => jump!(UnsignedGreaterThan, reg32),
            Op::Jge32Imm => jump!(UnsignedGreaterThanOrEqual, imm32),
            Op::Jge32Reg => jump!(UnsignedGreaterThanOrEqual, reg32),
            Op::Jlt32Imm => jump!(UnsignedLessThan, imm32),
            Op::Jlt32Reg => jump!(UnsignedLessThan, reg32),
            Op::Jle32Imm => jump!(UnsignedLessThanOrEqual, imm32),
            Op::Jle32Reg => jump!(UnsignedLessThanOrEqual, reg32),
            Op::Jset32Imm => jset!(B32, self.c64(imm)),
            Op::Jset32Reg => jset!(B32, self.reg(src)),
            Op::Jsgt32Imm => jump!(SignedGreaterThan, imm32),
            Op::Jsgt32Reg => jump!(SignedGreaterThan, reg32),
            Op::Jsge32Imm => jump!(SignedGreaterThanOrEqual, imm32),
            Op::Jsge32Reg => jump!(SignedGreaterThanOrEqual, reg32),
            Op::Jslt32Imm => jump!(SignedLessThan, imm32),
            Op::Jslt32Reg => jump!(SignedLessThan, reg32),
            Op::Jsle32Imm => jump!(SignedLessThanOrEqual, imm32),
            Op::Jsle32Reg => jump!(SignedLessThanOrEqual, reg32),

            // --- loads and stores ---
            Op::LdxB => self.load(pc, insn, 1, false),
            Op::LdxH => self.load(pc, insn, 2, false),
            Op::LdxW => self.load(pc, insn, 4, false),
            Op::LdxDw => self.load(pc, insn, 8, false),
            Op::LdxSB => self.load(pc, insn, 1, true),
            Op::LdxSH => self.load(pc, insn, 2, true),
            Op::LdxSW => self.load(pc, insn, 4, true),
            Op::StB => self.store(pc, insn, 1, true),
            Op::StH => self.store(pc, insn, 2, true),
            Op::StW => self.store(pc, insn, 4, true),
            Op::StDw => self.store(pc, insn, 8, true),
            Op::StxB => self.store(pc, insn, 1, false),
            Op::StxH => self.store(pc, insn, 2, false),
            Op::StxW => self.store(pc, insn, 4, false),
            Op::StxDw => self.store(pc, insn, 8, false),
            Op::LdImm64 => {
                if src != 0 {
                    let a = self.c64(i64::from(src));
                    let zero = self.c64(0);
                    self.emit_raise(runtime::RAISE_UNRESOLVED, pc, a, zero);
                    self.terminated = true;
                } else {
                    let v = self.c64(imm);
                    self.set(dst, v);
                }
            }
            Op::LdAbsB => self.packet_load(insn, 1, false),
            Op::LdAbsH => self.packet_load(insn, 2, false),
            Op::LdAbsW => self.packet_load(insn, 4, false),
            Op::LdIndB => self.packet_load(insn, 1, true),
            Op::LdIndH => self.packet_load(insn, 2, true),
            Op::LdIndW => self.packet_load(insn, 4, true),

            // --- atomics ---
            Op::AtomicAddW
            | Op::AtomicOrW
            | Op::AtomicAndW
            | Op::AtomicXorW
            | Op::AtomicFetchAddW
            | Op::AtomicFetchOrW
            | Op::AtomicFetchAndW
            | Op::AtomicFetchXorW
            | Op::AtomicXchgW
            | Op::AtomicCmpXchgW
            | Op::AtomicAddDw
            | Op::AtomicOrDw
            | Op::AtomicAndDw
            | Op::AtomicXorDw
            | Op::AtomicFetchAddDw
            | Op::AtomicFetchOrDw
            | Op::AtomicFetchAndDw
            | Op::AtomicFetchXorDw
            | Op::AtomicXchgDw
            | Op::AtomicCmpXchgDw => self.atomic(pc, insn),

            // --- calls and exit ---
            Op::Call | Op::CallReg => self.helper_call(pc, insn)?,
            Op::CallKfunc => {
                let a = self.c64(imm);
                let zero = self.c64(0);
                self.emit_raise(runtime::RAISE_KFUNC, pc, a, zero);
                self.terminated = true;
            }
            Op::CallLocal if self.inline => self.inline_call(pc, insn)?,
            Op::CallLocal => self.local_call(pc, insn)?,
            Op::Exit => self.exit(),
        }
        Ok(())
    }

    fn target(&self, pc: usize, insn: &Insn) -> Result<Block, JitError> {
        let target = insn.branch_target(pc).and_then(|t| usize::try_from(t).ok()).unwrap_or(usize::MAX);
        self.block_at(target)
    }

    fn branch(&mut self, pc: usize, insn: &Insn, cond: Value) -> Result<(), JitError> {
        let taken = self.target(pc, insn)?;
        let next = self.block_at(pc + 1)?;
        self.b.ins().brif(cond, taken, &[], next, &[]);
        self.terminated = true;
        Ok(())
    }

    fn swap(&mut self, dst: u8, ty: Type) {
        let a = self.reg(dst);
        let a = if ty == I64 { a } else { self.b.ins().ireduce(ty, a) };
        let v = self.b.ins().bswap(a);
        let v = if ty == I64 { v } else { self.b.ins().uextend(I64, v) };
        self.set(dst, v);
    }

    /// Division and modulo with eBPF's rules: `x / 0 = 0`, `x % 0 = x` (32-bit: zero-extended),
    /// `INT_MIN / -1 = INT_MIN`, `INT_MIN % -1 = 0`; Cranelift's own division would trap.
    fn div(&mut self, insn: &Insn, is32: bool) {
        use Op::*;
        let signed =
            matches!(insn.op, SDivImm | SDivReg | SModImm | SModReg | SDiv32Imm | SDiv32Reg | SMod32Imm | SMod32Reg);
        let is_mod =
            matches!(insn.op, ModImm | ModReg | SModImm | SModReg | Mod32Imm | Mod32Reg | SMod32Imm | SMod32Reg);
        let by_reg =
            matches!(insn.op, DivReg | SDivReg | ModReg | SModReg | Div32Reg | SDiv32Reg | Mod32Reg | SMod32Reg);
        let ty = if is32 { I32 } else { I64 };
        let a = self.reg(insn.dst);
        let a = if is32 { self.lo32(a) } else { a };
        let b = if by_reg {
            let b = self.reg(insn.src);
            if is32 { self.lo32(b) } else { b }
        } else {
            self.b.ins().iconst(ty, if is32 { i64::from(insn.imm as i32 as u32) } else { insn.imm })
        };
        let zero = self.b.ins().iconst(ty, 0);
        let one = self.b.ins().iconst(ty, 1);
        let is_zero = self.b.ins().icmp_imm_s(IntCC::Equal, b, 0);
        let v = if signed {
            let is_m1 = self.b.ins().icmp_imm_s(IntCC::Equal, b, -1);
            let unsafe_b = self.b.ins().bor(is_zero, is_m1);
            let safe_b = self.b.ins().select(unsafe_b, one, b);
            if is_mod {
                // x % 1 == 0 is also the answer for x % -1.
                let r = self.b.ins().srem(a, safe_b);
                self.b.ins().select(is_zero, a, r)
            } else {
                let q = self.b.ins().sdiv(a, safe_b);
                let neg = self.b.ins().ineg(a);
                let q = self.b.ins().select(is_zero, zero, q);
                self.b.ins().select(is_m1, neg, q)
            }
        } else {
            let safe_b = self.b.ins().select(is_zero, one, b);
            if is_mod {
                let r = self.b.ins().urem(a, safe_b);
                self.b.ins().select(is_zero, a, r)
            } else {
                let q = self.b.ins().udiv(a, safe_b);
                self.b.ins().select(is_zero, zero, q)
            }
        };
        if is32 {
            self.set32(insn.dst, v);
        } else {
            self.set(insn.dst, v);
        }
    }

    fn load(&mut self, pc: usize, insn: &Insn, size: u8, sign: bool) {
        let base = self.reg(insn.src);
        let off = i32::from(insn.off);
        let v = match self.access(pc, insn.op) {
            Access::Plain if insn.src == 10 && !sign => {
                // A stack slot this block stored or loaded: its value, without the load.
                let known = self.stack_vals.iter().find(|&&(o, s, _, _)| o == off && s == size).copied();
                match known {
                    Some((_, _, v, true)) => v,
                    Some((_, _, v, false)) => {
                        let ty = match size {
                            1 => I8,
                            2 => I16,
                            _ => I32,
                        };
                        let v = self.b.ins().ireduce(ty, v);
                        self.b.ins().uextend(I64, v)
                    }
                    None => {
                        let ins = self.b.ins();
                        let v = match size {
                            1 => ins.uload8(I64, guest(), base, off),
                            2 => ins.uload16(I64, guest(), base, off),
                            4 => ins.uload32(guest(), base, off),
                            _ => ins.load(I64, guest(), base, off),
                        };
                        self.stack_vals.push((off, size, v, true));
                        v
                    }
                }
            }
            Access::Plain => {
                let ins = self.b.ins();
                match (size, sign) {
                    (1, false) => ins.uload8(I64, guest(), base, off),
                    (2, false) => ins.uload16(I64, guest(), base, off),
                    (4, false) => ins.uload32(guest(), base, off),
                    (1, true) => ins.sload8(I64, guest(), base, off),
                    (2, true) => ins.sload16(I64, guest(), base, off),
                    (4, true) => ins.sload32(guest(), base, off),
                    _ => ins.load(I64, guest(), base, off),
                }
            }
            Access::Context
                if self.ctx_regs & (1 << (insn.src & 15)) != 0 && (0..4 * CTX_SLOTS).contains(&off) && off % 4 == 0 =>
            {
                // Through the unmodified context pointer: the field's slot is known now.
                let rt = self.rt();
                let slot = offset_of!(RunCtx, ctx_fields) as i32 + 2 * off;
                self.b.ins().load(I64, trusted(), rt, slot)
            }
            Access::Context => {
                // The verifier proved a 4-byte read of a field at a constant offset; compiled
                // code looks the field up by offset in the run's table (masked, so even a wrong
                // proof could not read outside the table).
                let addr = self.b.ins().iadd_imm_s(base, i64::from(off));
                let ctx = self.load_rt(offset_of!(RunCtx, ctx_addr));
                let rel = self.b.ins().isub(addr, ctx);
                let index = self.b.ins().ushr_imm_u(rel, 2);
                let index = self.b.ins().band_imm_u(index, runtime::CTX_FIELDS as i64 - 1);
                let byte = self.b.ins().ishl_imm_u(index, 3);
                let rt = self.rt();
                let p = self.b.ins().iadd(rt, byte);
                self.b.ins().load(I64, trusted(), p, off32(offset_of!(RunCtx, ctx_fields)))
            }
            Access::Checked => {
                let addr = self.b.ins().iadd_imm_s(base, i64::from(off));
                let rt = self.rt();
                let flags = u64::from(size) | if insn.op == Op::LdxW { runtime::LOAD_CONTEXT } else { 0 };
                let flags = self.c64(flags as i64);
                let pc = self.c64(pc as i64);
                let v = self.call(runtime::load as *const () as usize, &[rt, addr, flags, pc]);
                self.check_stop();
                if sign {
                    let ty = match size {
                        1 => I8,
                        2 => I16,
                        _ => I32,
                    };
                    let v = self.b.ins().ireduce(ty, v);
                    self.b.ins().sextend(I64, v)
                } else {
                    v
                }
            }
        };
        self.set(insn.dst, v);
    }

    fn store(&mut self, pc: usize, insn: &Insn, size: u8, from_imm: bool) {
        let base = self.reg(insn.dst);
        let off = i32::from(insn.off);
        let value = if from_imm { self.c64(insn.imm) } else { self.reg(insn.src) };
        let access = self.access(pc, insn.op);
        if access == Access::Plain && insn.dst == 10 {
            let end = off + i32::from(size);
            self.stack_vals.retain(|&(o, s, _, _)| o + i32::from(s) <= off || o >= end);
            self.stack_vals.push((off, size, value, size == 8));
        } else {
            // Through another pointer, which may point into the stack.
            self.stack_vals.clear();
        }
        match access {
            Access::Plain => {
                let ins = self.b.ins();
                match size {
                    1 => ins.istore8(guest(), value, base, off),
                    2 => ins.istore16(guest(), value, base, off),
                    4 => ins.istore32(guest(), value, base, off),
                    _ => ins.store(guest(), value, base, off),
                };
            }
            Access::Context | Access::Checked => {
                let addr = self.b.ins().iadd_imm_s(base, i64::from(off));
                let rt = self.rt();
                let size = self.c64(i64::from(size));
                let pc = self.c64(pc as i64);
                self.call(runtime::store as *const () as usize, &[rt, addr, value, size, pc]);
                self.check_stop();
            }
        }
    }

    /// Legacy packet loads: big-endian; out of bounds ends the program with `r0 = 0`.
    fn packet_load(&mut self, insn: &Insn, size: u8, indirect: bool) {
        let offset = if indirect {
            let r = self.reg(insn.src);
            let r = self.lo32(r);
            let r = self.b.ins().iadd_imm_s(r, i64::from(insn.imm as i32));
            self.b.ins().uextend(I64, r)
        } else {
            self.c64(i64::from(insn.imm as u32))
        };
        let len = self.load_rt(offset_of!(RunCtx, legacy_len));
        // `offset < 2^32`, so the sum cannot wrap.
        let end = self.b.ins().iadd_imm_s(offset, i64::from(size));
        let inside = self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, end, len);
        let ok = self.b.create_block();
        let out = self.b.create_block();
        self.b.ins().brif(inside, ok, &[], out, &[]);
        self.switch_sealed(out);
        let zero = self.c64(0);
        self.b.ins().return_(&[zero]);
        self.switch_sealed(ok);
        let start = self.load_rt(offset_of!(RunCtx, legacy_ptr));
        let p = self.b.ins().iadd(start, offset);
        let v = match size {
            1 => self.b.ins().uload8(I64, guest(), p, 0),
            2 => {
                let v = self.b.ins().load(I16, guest(), p, 0);
                let v = self.b.ins().bswap(v);
                self.b.ins().uextend(I64, v)
            }
            _ => {
                let v = self.b.ins().load(I32, guest(), p, 0);
                let v = self.b.ins().bswap(v);
                self.b.ins().uextend(I64, v)
            }
        };
        self.set(0, v);
    }

    fn atomic(&mut self, pc: usize, insn: &Insn) {
        use Op::*;
        self.stack_vals.clear();
        let size = runtime::atomic_size(insn.op);
        let base = self.reg(insn.dst);
        let addr = self.b.ins().iadd_imm_s(base, i64::from(insn.off));
        let src = self.reg(insn.src);
        let fetch = !matches!(insn.op, AtomicAddW | AtomicOrW | AtomicAndW | AtomicXorW)
            && !matches!(insn.op, AtomicAddDw | AtomicOrDw | AtomicAndDw | AtomicXorDw);
        let cmpxchg = matches!(insn.op, AtomicCmpXchgW | AtomicCmpXchgDw);
        let old = if self.access(pc, insn.op) == Access::Plain {
            let misaligned = self.b.ins().band_imm_u(addr, size as i64 - 1);
            let size_v = self.c64(size as i64);
            self.raise_if(misaligned, runtime::RAISE_MISALIGNED, pc, addr, size_v);
            let ty = if size == 4 { I32 } else { I64 };
            let x = if size == 4 { self.lo32(src) } else { src };
            let old = if cmpxchg {
                let r0 = self.reg(0);
                let expected = if size == 4 { self.lo32(r0) } else { r0 };
                self.b.ins().atomic_cas(guest(), addr, expected, x)
            } else {
                let op = match insn.op {
                    AtomicAddW | AtomicFetchAddW | AtomicAddDw | AtomicFetchAddDw => AtomicRmwOp::Add,
                    AtomicOrW | AtomicFetchOrW | AtomicOrDw | AtomicFetchOrDw => AtomicRmwOp::Or,
                    AtomicAndW | AtomicFetchAndW | AtomicAndDw | AtomicFetchAndDw => AtomicRmwOp::And,
                    AtomicXorW | AtomicFetchXorW | AtomicXorDw | AtomicFetchXorDw => AtomicRmwOp::Xor,
                    _ => AtomicRmwOp::Xchg,
                };
                self.b.ins().atomic_rmw(ty, guest(), op, addr, x)
            };
            if size == 4 { self.b.ins().uextend(I64, old) } else { old }
        } else {
            let rt = self.rt();
            let op = self.c64(runtime::atomic_index(insn.op) as i64);
            let r0 = self.reg(0);
            let pc = self.c64(pc as i64);
            let old = self.call(runtime::atomic as *const () as usize, &[rt, op, addr, src, r0, pc]);
            self.check_stop();
            old
        };
        if cmpxchg {
            self.set(0, old);
        } else if fetch {
            self.set(insn.src, old);
        }
    }

    /// The known map `r1` holds at the call at `pc`, when an `lddw` of its handle in the same
    /// block is the last write of `r1` before the call.
    fn map_at_call(&self, pc: usize) -> Option<&'a super::KnownMap> {
        // Only verified code: the verifier proved what r2 (and r3) point at.
        self.input.verified?;
        let maps = self.input.maps;
        let mut at = pc;
        while at > 0 && self.blocks[at].is_none() {
            at -= 1;
            // The second slot of an lddw repeats the first (see `interp::prepare`).
            let insn = if at > 0 && self.insns[at - 1].op == Op::LdImm64 && self.insns[at] == self.insns[at - 1] {
                at -= 1;
                self.insns[at]
            } else {
                self.insns[at]
            };
            if insn.op == Op::LdImm64 && insn.dst == 1 {
                return (insn.src == 0).then(|| maps.iter().find(|m| m.handle == insn.imm as u64)).flatten();
            }
            let writes_r1 = (insn.dst == 1 && !Self::is_store(insn.op))
                || (insn.src == 1 && runtime::atomic_index(insn.op) != usize::MAX as u64);
            if writes_r1 || insn.branch_target(at).is_some() || matches!(insn.op, Op::Call | Op::CallReg | Op::Exit) {
                return None;
            }
        }
        None
    }

    fn is_store(op: Op) -> bool {
        use Op::*;
        matches!(op, StB | StH | StW | StDw | StxB | StxH | StxW | StxDw)
            || runtime::atomic_index(op) != usize::MAX as u64
    }

    /// Ends a helper call compiled without the runtime: `r0 = v`, then on to the next
    /// instruction (a call always ends its block).
    fn return_from_call(&mut self, pc: usize, v: Value) -> Result<(), JitError> {
        self.set(0, v);
        let next = self.block_at(pc + 1)?;
        self.b.ins().jump(next, &[]);
        self.terminated = true;
        Ok(())
    }

    /// `bpf_map_lookup_elem` on an array, inline: the verifier proved `r2` points at the 4-byte
    /// key; an index in range gives `base + index * stride`, as the helper would, else NULL.
    fn inline_array_lookup(&mut self, pc: usize, array: super::InlineArray) -> Result<(), JitError> {
        self.counts.inline_lookups += 1;
        let key_ptr = self.reg(2);
        let key = self.b.ins().uload32(guest(), key_ptr, 0);
        let inside = self.b.ins().icmp_imm_s(IntCC::UnsignedLessThan, key, i64::from(array.max_entries));
        let offset = self.b.ins().imul_imm_s(key, array.stride as i64);
        let value = self.b.ins().iadd_imm_s(offset, array.base as i64);
        let null = self.c64(0);
        let r0 = self.b.ins().select(inside, value, null);
        self.return_from_call(pc, r0)
    }

    /// `bpf_map_lookup_elem`, `bpf_map_update_elem` or `bpf_map_delete_elem` on a known map, or
    /// `bpf_ringbuf_output` on a known ring buffer: a direct call into the map with the pointers
    /// the verifier proved (key or data in `r2`, value in `r3`), giving what the helper gives.
    fn direct_map_call(&mut self, pc: usize, id: i64, map: &super::KnownMap) -> Result<(), JitError> {
        self.counts.direct_map_calls += 1;
        let handle = self.c64(Arc::as_ptr(&map.map) as i64);
        let key = self.reg(2);
        let cpu = self.c64(i64::from(map.cpu));
        let v = match id {
            1 => self.call(runtime::map_lookup as *const () as usize, &[handle, key, cpu]),
            2 => {
                let (value, flags) = (self.reg(3), self.reg(4));
                self.call(runtime::map_update as *const () as usize, &[handle, key, value, flags, cpu])
            }
            130 => {
                // bpf_ringbuf_output(ringbuf, data, size, flags): `key` is the data.
                let size = self.reg(3);
                self.call(runtime::ringbuf_output as *const () as usize, &[handle, key, size])
            }
            _ => self.call(runtime::map_delete as *const () as usize, &[handle, key]),
        };
        self.return_from_call(pc, v)
    }

    /// A helper of the module's environment, called directly: the clock (`bpf_ktime_get_ns`,
    /// `bpf_ktime_get_boot_ns`), the generator (`bpf_get_prandom_u32`), or the CPU
    /// (`bpf_get_smp_processor_id`, a constant).
    fn direct_env_call(&mut self, pc: usize, id: i64, (env, cpu): (i64, u32)) -> Result<(), JitError> {
        self.counts.direct_env_calls += 1;
        let v = if id == 8 {
            self.c64(i64::from(cpu))
        } else {
            let env = self.c64(env);
            let f = if id == 7 { runtime::env_random as *const () } else { runtime::env_clock as *const () };
            self.call(f as usize, &[env])
        };
        self.return_from_call(pc, v)
    }

    fn helper_call(&mut self, pc: usize, insn: &Insn) -> Result<(), JitError> {
        if is_loop_call(insn) {
            return match self.callback_at(pc) {
                Some(callback) if self.inline => self.inline_loop(pc, callback),
                Some(_) => Err(JitError::Unsupported(format!(
                    "instruction {pc}: bpf_loop in a program whose calls are too many to inline"
                ))),
                None => Err(JitError::Unsupported(format!(
                    "instruction {pc}: bpf_loop whose callback the verifier did not prove to be one function"
                ))),
            };
        }
        if insn.op == Op::Call {
            let map = if matches!(insn.imm, 1..=3 | 130) { self.map_at_call(pc) } else { None };
            let ring = map.is_some_and(|m| m.map.map_type() == duet_maps::MapType::RingBuf);
            match (insn.imm, map, self.env) {
                (1..=3, Some(map), _) if !ring => {
                    return match map.inline {
                        Some(array) if insn.imm == 1 => self.inline_array_lookup(pc, array),
                        _ => self.direct_map_call(pc, insn.imm, map),
                    };
                }
                (130, Some(map), _) if ring => return self.direct_map_call(pc, insn.imm, map),
                (5 | 7 | 8 | 125, _, Some(env)) => return self.direct_env_call(pc, insn.imm, env),
                _ => {}
            }
        }
        let rt = self.rt();
        let mut args = vec![rt];
        let f = if insn.op == Op::Call {
            let id = insn.imm as u32;
            let helper = self
                .input
                .helpers
                .get(id)
                .ok_or(JitError::Load(crate::LoadError::UnknownHelper { pc, id: insn.imm }))?;
            args.push(self.c64(helper as *const crate::Helper as i64));
            args.push(self.c64(((pc as i64) << 32) | i64::from(id)));
            runtime::call_helper as *const () as usize
        } else {
            args.push(self.reg(insn.dst));
            args.push(self.c64(pc as i64));
            runtime::call_helper_dyn as *const () as usize
        };
        for r in 1..=5 {
            args.push(self.reg(r));
        }
        let v = self.call(f, &args);
        let status = self.load_rt(offset_of!(RunCtx, status));
        let next = self.block_at(pc + 1)?;
        let ok = self.b.create_block();
        let slow = self.b.create_block();
        self.b.ins().brif(status, slow, &[], ok, &[]);
        self.switch_sealed(ok);
        self.set(0, v);
        self.b.ins().jump(next, &[]);

        self.switch_sealed(slow);
        let fallthrough = self.b.ins().icmp_imm_s(IntCC::Equal, status, runtime::STATUS_FALLTHROUGH as i64);
        let other = self.b.create_block();
        self.b.ins().brif(fallthrough, next, &[], other, &[]);
        self.switch_sealed(other);
        let stop = self.b.ins().icmp_imm_s(IntCC::Equal, status, runtime::STATUS_STOP as i64);
        let tail = self.b.create_block();
        self.b.ins().brif(stop, self.stop_block, &[], tail, &[]);
        self.b.set_cold_block(tail);
        self.switch_sealed(tail);
        // A tail call: hand the registers and the budget to the driver, which starts the target.
        for r in 0..10u8 {
            let v = self.reg(r);
            self.store_rt(regs_offset_usize(r as usize), v);
        }
        let budget = self.b.use_var(self.budget);
        self.store_rt(offset_of!(RunCtx, budget), budget);
        let zero = self.c64(0);
        self.b.ins().return_(&[zero]);
        self.terminated = true;
        Ok(())
    }

    fn local_call(&mut self, pc: usize, insn: &Insn) -> Result<(), JitError> {
        let target = self.target(pc, insn)?;
        let site = self.ret_sites.iter().position(|&s| s == pc + 1).unwrap_or(0);
        let frames = self.frames.ok_or_else(|| JitError::Codegen("local call without frames".into()))?;
        let depth = self.b.use_var(self.depth);
        let full = self.b.ins().icmp_imm_s(IntCC::UnsignedGreaterThanOrEqual, depth, MAX_CALL_DEPTH as i64 - 1);
        let zero = self.c64(0);
        self.raise_if(full, runtime::RAISE_CALL_DEPTH, pc, zero, zero);
        let base = self.b.ins().stack_addr(I64, frames, 0);
        let at = self.b.ins().imul_imm_s(depth, FRAME_BYTES);
        let frame = self.b.ins().iadd(base, at);
        let id = self.c64(site as i64);
        self.b.ins().store(trusted(), id, frame, 0);
        for (i, r) in (6..=9u8).enumerate() {
            let v = self.reg(r);
            self.b.ins().store(trusted(), v, frame, 8 * (i as i32 + 1));
        }
        let depth = self.b.ins().iadd_imm_s(depth, 1);
        self.b.def_var(self.depth, depth);
        let r10 = self.reg(10);
        let r10 = self.b.ins().iadd_imm_s(r10, -(STACK_SIZE as i64));
        self.set(10, r10);
        self.store_rt(offset_of!(RunCtx, r10), r10);
        self.b.ins().jump(target, &[]);
        self.terminated = true;
        Ok(())
    }

    /// A local call, inlined: the callee's frame is translated later (an [`Instance`]), entered
    /// here with r10 moved down one frame; its `exit` jumps to a block that restores r6..r9 and
    /// r10 and continues after the call.
    fn inline_call(&mut self, pc: usize, insn: &Insn) -> Result<(), JitError> {
        let target = insn
            .branch_target(pc)
            .and_then(|t| usize::try_from(t).ok())
            .filter(|&t| t < self.insns.len())
            .ok_or_else(|| JitError::Codegen(format!("instruction {pc}: call target out of range")))?;
        let next = self.block_at(pc + 1)?;
        self.terminated = true;
        if self.inst_depth + 1 >= MAX_CALL_DEPTH {
            let zero = self.c64(0);
            self.emit_raise(runtime::RAISE_CALL_DEPTH, pc, zero, zero);
            return Ok(());
        }
        let saved: [Value; 4] = std::array::from_fn(|i| self.reg(6 + i as u8));
        let r10 = self.reg(10);
        self.enter_frame(target, saved, r10);
        self.b.ins().jump(next, &[]);
        Ok(())
    }

    /// Enters an inlined frame running the function at `target` (translated later, with its
    /// own blocks) with r10 one frame below `r10`, and continues where its `exit`s return, with
    /// the caller's r6..r9 (`saved`) and r10 back.
    fn enter_frame(&mut self, target: usize, saved: [Value; 4], r10: Value) {
        let callee_r10 = self.b.ins().iadd_imm_s(r10, -(STACK_SIZE as i64));
        self.set(10, callee_r10);
        let entry = self.b.create_block();
        let ret = self.b.create_block();
        self.b.ins().jump(entry, &[]);
        self.pending.push(Instance { entry: target, depth: self.inst_depth + 1, block: entry, ret: Some(ret) });
        self.switch(ret);
        for (i, v) in saved.into_iter().enumerate() {
            self.set(6 + i as u8, v);
        }
        self.set(10, r10);
    }

    /// The function the verifier proved a bpf_loop call at `pc` calls back, on every path, and
    /// whether the kernel inlines the call (see [`duet_verifier::Callback::At`]).
    fn callback_at(&self, pc: usize) -> Option<(usize, bool)> {
        match self.input.verified?.facts(pc).callback {
            Some(duet_verifier::Callback::At { start, inline }) if start < self.insns.len() => Some((start, inline)),
            _ => None,
        }
    }

    /// `bpf_loop(nr_loops, callback, ctx, flags)` as a native loop around an inlined copy of the
    /// callback (each call on a new frame, r1 the index and r2 `ctx`), with the results of the
    /// kernel's code for the call: the number of calls made (the callback returns 0 to go on,
    /// anything else to stop), or for more than 1 << 23 calls `-E2BIG`. When the kernel inlines
    /// the call (`inline`: flags are 0) the count is all of r1 and `-E2BIG` a 32-bit value; else,
    /// as the helper, the count is the low 32 bits, `-E2BIG` 64-bit, and flags give `-EINVAL`.
    fn inline_loop(&mut self, pc: usize, (callback, inline): (usize, bool)) -> Result<(), JitError> {
        let next = self.block_at(pc + 1)?;
        self.terminated = true;
        let r1 = self.reg(1);
        let ctx = self.reg(3);
        let done = self.b.create_block();
        self.b.append_block_param(done, I64);
        let (count, e2big) = if inline {
            (r1, self.c64(i64::from(E2BIG as u32)))
        } else {
            let count = self.lo32(r1);
            let count = self.b.ins().uextend(I64, count);
            let flags = self.reg(4);
            let einval = self.c64(EINVAL);
            let checked = self.b.create_block();
            self.b.ins().brif(flags, done, &[BlockArg::Value(einval)], checked, &[]);
            self.switch_sealed(checked);
            (count, self.c64(E2BIG))
        };
        let too_many = self.b.ins().icmp_imm_s(IntCC::UnsignedGreaterThan, count, i64::from(BPF_MAX_LOOPS));
        let start = self.b.create_block();
        self.b.ins().brif(too_many, done, &[BlockArg::Value(e2big)], start, &[]);
        self.switch_sealed(start);
        if self.inst_depth + 1 >= MAX_CALL_DEPTH {
            // As the interpreter: the first call would be one frame too deep (none is made for
            // a count of 0).
            let zero = self.c64(0);
            let deep = self.b.create_block();
            self.b.ins().brif(count, deep, &[], done, &[BlockArg::Value(zero)]);
            self.switch_sealed(deep);
            self.emit_raise(runtime::RAISE_CALL_DEPTH, pc, zero, zero);
        } else {
            self.loop_around(callback, count, ctx, done);
        }
        self.switch(done);
        // r6..r9 and r10 are the caller's on every way here (the latch restores them).
        let calls = self.b.block_params(done)[0];
        self.set(0, calls);
        self.b.ins().jump(next, &[]);
        Ok(())
    }

    /// The loop of [`Translator::inline_loop`]: calls the callback for indexes `0..count` while
    /// it returns 0, then jumps to `done` with the number of calls made.
    fn loop_around(&mut self, callback: usize, count: Value, ctx: Value, done: Block) {
        let saved: [Value; 4] = std::array::from_fn(|i| self.reg(6 + i as u8));
        let r10 = self.reg(10);
        let index = self.b.declare_var(I64);
        let zero = self.c64(0);
        self.b.def_var(index, zero);
        let head = self.b.create_block();
        self.b.ins().jump(head, &[]);
        // The loop head: sealed with every other block at the end, after its back edge.
        self.switch(head);
        let i = self.b.use_var(index);
        let more = self.b.ins().icmp(IntCC::UnsignedLessThan, i, count);
        let body = self.b.create_block();
        self.b.ins().brif(more, body, &[], done, &[BlockArg::Value(i)]);
        self.switch_sealed(body);
        self.set(1, i);
        self.set(2, ctx);
        // The latch: the callback's `exit`s come here.
        self.enter_frame(callback, saved, r10);
        let r0 = self.reg(0);
        let i = self.b.use_var(index);
        let calls = self.b.ins().iadd_imm_s(i, 1);
        self.b.def_var(index, calls);
        let go_on = self.b.ins().icmp_imm_s(IntCC::Equal, r0, 0);
        self.b.ins().brif(go_on, head, &[], done, &[BlockArg::Value(calls)]);
    }

    fn exit(&mut self) {
        let r0 = self.reg(0);
        if self.inline {
            match self.inst_ret {
                Some(ret) => self.b.ins().jump(ret, &[]),
                None => self.b.ins().return_(&[r0]),
            };
            self.terminated = true;
            return;
        }
        match self.pop_block {
            None => {
                self.b.ins().return_(&[r0]);
            }
            Some(pop) => {
                let depth = self.b.use_var(self.depth);
                let ret = self.b.create_block();
                self.b.ins().brif(depth, pop, &[], ret, &[]);
                self.switch_sealed(ret);
                self.b.ins().return_(&[r0]);
            }
        }
        self.terminated = true;
    }

    /// The shared return path of local calls: pop the frame, restore r6..r9 and r10, and
    /// dispatch to the return site.
    fn emit_pop(&mut self, pop: Block) -> Result<(), JitError> {
        self.switch(pop);
        let frames = self.frames.ok_or_else(|| JitError::Codegen("return without frames".into()))?;
        let depth = self.b.use_var(self.depth);
        let depth = self.b.ins().iadd_imm_s(depth, -1);
        self.b.def_var(self.depth, depth);
        let base = self.b.ins().stack_addr(I64, frames, 0);
        let at = self.b.ins().imul_imm_s(depth, FRAME_BYTES);
        let frame = self.b.ins().iadd(base, at);
        let id = self.b.ins().load(I64, trusted(), frame, 0);
        for (i, r) in (6..=9u8).enumerate() {
            let v = self.b.ins().load(I64, trusted(), frame, 8 * (i as i32 + 1));
            self.set(r, v);
        }
        let r10 = self.reg(10);
        let r10 = self.b.ins().iadd_imm_s(r10, STACK_SIZE as i64);
        self.set(10, r10);
        self.store_rt(offset_of!(RunCtx, r10), r10);
        let id = self.b.ins().ireduce(I32, id);
        let bad = self.b.create_block();
        let mut targets = Vec::with_capacity(self.ret_sites.len());
        for &site in &self.ret_sites.clone() {
            let block = self.block_at(site)?;
            targets.push(self.b.func.dfg.block_call(block, &[] as &[BlockArg]));
        }
        let default = self.b.func.dfg.block_call(bad, &[] as &[BlockArg]);
        let table = self.b.create_jump_table(JumpTableData::new(default, &targets));
        self.b.ins().br_table(id, table);
        self.switch_sealed(bad);
        self.b.ins().trap(TrapCode::unwrap_user(1));
        Ok(())
    }
}

/// Whether `insn` calls `bpf_loop`, which the JIT compiles as a loop around its callback.
fn is_loop_call(insn: &Insn) -> bool {
    insn.op == Op::Call && insn.imm == BPF_LOOP
}

/// Removes those of `loads` whose value nothing uses: without the egraph pass, Cranelift keeps
/// every load (the entry's load of `r1` or `r10` cost a program that reads neither ~0.2 ns a run).
fn drop_unused_loads(func: &mut cranelift_codegen::ir::Function, loads: &[cranelift_codegen::ir::Inst]) {
    let mut unused: Vec<Value> = loads.iter().map(|&inst| func.dfg.first_result(inst)).collect();
    for block in func.layout.blocks() {
        for inst in func.layout.block_insts(block) {
            if unused.is_empty() {
                return;
            }
            for v in func.dfg.inst_values(inst) {
                let v = func.dfg.resolve_aliases(v);
                unused.retain(|&u| u != v);
            }
        }
    }
    let dead: Vec<_> = loads.iter().copied().filter(|&inst| unused.contains(&func.dfg.first_result(inst))).collect();
    for inst in dead {
        func.layout.remove_inst(inst);
    }
}

fn off(field: usize) -> i32 {
    field as i32
}

fn off32(field: usize) -> i32 {
    field as i32
}

fn regs_offset(r: usize) -> i32 {
    regs_offset_usize(r) as i32
}

fn regs_offset_usize(r: usize) -> usize {
    offset_of!(RunCtx, regs) + 8 * r
}
