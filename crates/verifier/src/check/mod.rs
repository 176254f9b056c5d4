//! The abstract interpreter: explores every path of the program with abstract states, checking
//! each instruction, storing states at prune points and pruning paths whose state a verified
//! state already covers (the design of the Linux verifier's `do_check`).
//!
//! [`Checker`] is one type whose methods are spread over files by concern:
//! - this file: the exploration loop (`run`, `explore`, `step`), diagnostics, and the register
//!   reads every instruction shares;
//! - `prune.rs`: stored states, pruning by subsumption, infinite-loop detection;
//! - `alu.rs`: arithmetic, moves and pointer arithmetic;
//! - `branches.rs`: conditional jumps and what each branch learns (bounds, NULL checks, packet
//!   ranges);
//! - `calls.rs`: helper calls and their arguments, bpf-to-bpf calls, callbacks and exits;
//! - `memory.rs`: loads, stores and atomics (context, packet, stack, map values, ring buffer
//!   records), `lddw` and legacy packet loads.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasherDefault;

use duet_isa::{Form, Insn, Op};

use crate::cfg::Cfg;
use crate::diag::{Code, Diagnostic, SourceLine};
use crate::helpers;
use crate::scalar::Scalar;
use crate::state::{Frame, IdMap, MAX_STACK, Reg, RegType, StaleKind, State};
use crate::{InsnFacts, MapInfo, VerifyContext};

mod alu;
mod branches;
mod calls;
mod memory;
mod prune;

use prune::FastHasher;

/// The kernel's limit on pending branches (`BPF_COMPLEXITY_LIMIT_JMP_SEQ`).
const MAX_PENDING: usize = 8192;
/// The largest log kept with `Config::log`, in bytes.
const MAX_LOG: usize = 16 << 20;

/// Whether an atomic operation writes the old value back to its source register.
pub(crate) fn atomic_fetches(op: Op) -> bool {
    matches!(
        op,
        Op::AtomicFetchAddW
            | Op::AtomicFetchOrW
            | Op::AtomicFetchAndW
            | Op::AtomicFetchXorW
            | Op::AtomicXchgW
            | Op::AtomicFetchAddDw
            | Op::AtomicFetchOrDw
            | Op::AtomicFetchAndDw
            | Op::AtomicFetchXorDw
            | Op::AtomicXchgDw
    )
}

/// A stored state: a node of the tree of explored states.
struct Node {
    /// `None` once evicted (kept for the parent chain).
    state: Option<State>,
    /// The instruction it was stored at.
    pc: u32,
    /// Paths through this node not yet fully explored.
    branches: u32,
    parent: Option<u32>,
    hits: u32,
    misses: u32,
}

struct Pending {
    state: State,
    pc: usize,
    parent: Option<u32>,
}

enum Flow {
    Next(usize),
    Branch {
        fall: Option<State>,
        next: usize,
        taken: Option<State>,
        target: usize,
    },
    /// Go on with `now` at `now_pc`; explore `later` at `later_pc` after: a speculative path,
    /// or what follows a helper call that calls back, explored after the callback (see
    /// `call_with_callback`).
    Both {
        now: State,
        now_pc: usize,
        later: State,
        later_pc: usize,
    },
    Done,
}

enum Visit {
    Continue,
    Prune,
    InfiniteLoop,
}

/// Whether a memory access reads, writes or does both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    Read,
    Write,
    Atomic,
}

impl Access {
    fn verb(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Atomic => "atomic update",
        }
    }
}

/// Results of a run, handed to the public API.
pub(crate) struct Outcome {
    pub(crate) diags: Vec<Diagnostic>,
    pub(crate) processed: u64,
    pub(crate) states: u64,
    pub(crate) peak_states: u64,
    pub(crate) max_states_per_insn: u64,
    pub(crate) pruned: u64,
    pub(crate) facts: Vec<InsnFacts>,
    pub(crate) stack_depths: Vec<(usize, u32)>,
    pub(crate) log: Option<String>,
}

pub(crate) struct Checker<'a> {
    cfg: &'a Cfg,
    ctx: &'a VerifyContext,
    /// The map table map pointers index: the program's maps (`lddw rX, map_fd N`), then the
    /// inner map template of each map of maps, in order (a placeholder where it is unknown).
    maps: Cow<'a, [MapInfo]>,
    /// How many of [`Checker::maps`] are the program's own (the rest are inner templates).
    program_maps: usize,
    /// For each of the program's maps that is a map of maps: its inner template's index in
    /// [`Checker::maps`], and whether the template is known.
    inner_of: Vec<Option<(u32, bool)>>,
    nodes: Vec<Node>,
    /// Stored states with their contents, per instruction.
    at_pc: Vec<Vec<u32>>,
    /// States still being explored, by instruction and hash (for loop detection).
    open: HashMap<(u32, u64), Vec<u32>, BuildHasherDefault<FastHasher>>,
    /// How many stored states at each instruction are still being explored (loop iterations).
    open_at: Vec<u32>,
    jumps: u64,
    last_add_insns: u64,
    last_add_jumps: u64,
    pending: Vec<Pending>,
    ids: IdMap,
    id_gen: u32,
    processed: u64,
    states: u64,
    live_states: u64,
    peak_states: u64,
    max_states_per_insn: u64,
    pruned: u64,
    backedges: BTreeMap<usize, u64>,
    diags: Vec<Diagnostic>,
    seen: HashSet<(usize, Code)>,
    facts: Vec<InsnFacts>,
    stack_depth: Vec<u32>,
    log: Option<String>,
    stop: bool,
    /// The key of the map argument of the helper call being checked, when it is a constant.
    last_const_key: Option<u64>,
    /// Per instruction, for `ptr += reg` without CAP_PERFMON: the masking state and limit the
    /// first path gave it (the kernel's `alu_state`/`alu_limit`), which every path must share.
    alu_sanitation: Vec<Option<(u8, u32)>>,
    /// Whether an unprivileged `ptr += reg` with an unknown offset was checked: pruning then
    /// compares numbers exactly (the kernel's `explore_alu_limits`).
    explore_alu_limits: bool,
    /// Set when an instruction failed on a speculative path, which then ends there.
    spec_abort: bool,
    /// Set when an instruction on a speculative path needs a speculation barrier after it (the
    /// kernel's `nospec_result`: a stack store the kernel sanitizes against Spectre v4), which
    /// ends the path once the instruction is done.
    spec_end_after: bool,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(cfg: &'a Cfg, ctx: &'a VerifyContext, diags: Vec<Diagnostic>) -> Self {
        let n = cfg.insn_at.len();
        let program_maps = ctx.maps.len();
        let mut inner_of = vec![None; program_maps];
        let maps = if ctx.maps.iter().any(MapInfo::is_map_of_maps) {
            let mut maps = ctx.maps.clone();
            for (i, outer) in ctx.maps.iter().enumerate().filter(|(_, m)| m.is_map_of_maps()) {
                let index = u32::try_from(maps.len()).unwrap_or(u32::MAX);
                let template = match &outer.inner {
                    Some(inner) => (**inner).clone(),
                    None => MapInfo::new(format!("{}'s inner map", outer.name), 0, 0, 0, 0),
                };
                inner_of[i] = Some((index, outer.inner.is_some()));
                maps.push(MapInfo { inner: None, ..template });
            }
            Cow::Owned(maps)
        } else {
            Cow::Borrowed(ctx.maps.as_slice())
        };
        Checker {
            cfg,
            ctx,
            maps,
            program_maps,
            inner_of,
            nodes: Vec::new(),
            at_pc: vec![Vec::new(); n],
            open: HashMap::default(),
            open_at: vec![0; n],
            jumps: 0,
            last_add_insns: 0,
            last_add_jumps: 0,
            pending: Vec::new(),
            ids: IdMap::default(),
            id_gen: 0,
            processed: 0,
            states: 0,
            live_states: 0,
            peak_states: 0,
            max_states_per_insn: 0,
            pruned: 0,
            backedges: BTreeMap::new(),
            seen: diags.iter().filter_map(|d| d.pc.map(|pc| (pc, d.code))).collect(),
            diags,
            facts: vec![InsnFacts::default(); n],
            stack_depth: vec![0; cfg.subprogs.len()],
            log: ctx.config.log.then(String::new),
            stop: false,
            last_const_key: None,
            alu_sanitation: vec![None; n],
            explore_alu_limits: false,
            spec_abort: false,
            spec_end_after: false,
        }
    }

    /// Explores every path from the entry and returns what was found.
    pub(crate) fn run(mut self) -> Outcome {
        let mut init = State {
            frames: vec![Frame::new(0, usize::MAX, 0)],
            refs: Vec::new(),
            speculative: false,
            barriers: Vec::new(),
        };
        init.frames[0].regs[1] = Reg::pointer(RegType::Ctx);
        self.pending.push(Pending { state: init, pc: 0, parent: None });
        while let Some(Pending { state, pc, parent }) = self.pending.pop() {
            if self.stop {
                break;
            }
            self.explore(state, pc, parent);
        }
        if !self.stop {
            self.check_stack_chains();
        }
        let stack_depths =
            self.cfg.subprogs.iter().zip(&self.stack_depth).map(|(s, d)| (s.start, *d)).collect::<Vec<_>>();
        Outcome {
            diags: self.diags,
            processed: self.processed,
            states: self.states,
            peak_states: self.peak_states,
            max_states_per_insn: self.max_states_per_insn,
            pruned: self.pruned,
            facts: self.facts,
            stack_depths,
            log: self.log,
        }
    }

    fn explore(&mut self, mut st: State, mut pc: usize, mut parent: Option<u32>) {
        loop {
            if self.processed >= self.ctx.config.max_insns {
                self.too_complex(pc);
                return;
            }
            self.processed += 1;
            if self.cfg.insn_at[pc].is_some_and(|i| crate::cfg::is_callback_call(&i))
                && self.callback_revisit(&mut st, pc, parent)
            {
                self.pruned += 1;
                self.logln(|| format!("{pc}: safe (an earlier call on this path covers this one)"));
                self.complete(parent);
                return;
            }
            if self.cfg.prune_point[pc] {
                match self.visit(pc, &st, &mut parent) {
                    Visit::Continue => {}
                    Visit::Prune => {
                        self.pruned += 1;
                        self.logln(|| format!("{pc}: safe (a verified state covers this one)"));
                        self.complete(parent);
                        return;
                    }
                    Visit::InfiniteLoop => {
                        self.infinite_loop(pc, &st);
                        self.complete(parent);
                        return;
                    }
                }
            }
            let Some(insn) = self.cfg.insn_at.get(pc).copied().flatten() else {
                // Unreachable: the static pass validated every target.
                self.complete(parent);
                return;
            };
            if self.log.is_some() {
                let text = duet_isa::disassemble_insn(&insn);
                let regs = st.regs_string();
                self.logln(|| format!("{pc}: {text:<32} ; {regs}"));
            }
            let flow = self.step(&mut st, pc, &insn);
            if matches!(insn.op.form(), Form::JmpReg | Form::JmpImm | Form::Ja | Form::Ja32) {
                self.jumps += 1;
            }
            if self.stop {
                return;
            }
            let end_after = std::mem::take(&mut self.spec_end_after);
            if std::mem::take(&mut self.spec_abort) {
                // A speculative path that would do something unsafe: the kernel stops it with a
                // barrier before the instruction.
                self.logln(|| format!("{pc}: speculative path ends (a barrier)"));
                self.complete(parent);
                return;
            }
            if end_after {
                // The kernel puts a barrier after this store: speculation goes no further.
                self.logln(|| format!("{pc}: speculative path ends (a barrier after the store)"));
                self.complete(parent);
                return;
            }
            match flow {
                Flow::Next(next) => {
                    self.edge(pc, next);
                    pc = next;
                }
                Flow::Both { now, now_pc, later, later_pc } => {
                    if self.too_many_pending(pc) {
                        return;
                    }
                    if let Some(p) = parent {
                        self.nodes[p as usize].branches += 1;
                    }
                    self.edge(pc, later_pc);
                    self.pending.push(Pending { state: later, pc: later_pc, parent });
                    self.edge(pc, now_pc);
                    st = now;
                    pc = now_pc;
                }
                Flow::Branch { fall, next, taken, target } => match (fall, taken) {
                    (Some(f), Some(t)) => {
                        if self.too_many_pending(pc) {
                            return;
                        }
                        if let Some(p) = parent {
                            self.nodes[p as usize].branches += 1;
                        }
                        self.edge(pc, target);
                        self.pending.push(Pending { state: t, pc: target, parent });
                        st = f;
                        pc = next;
                    }
                    (Some(f), None) => {
                        st = f;
                        pc = next;
                    }
                    (None, Some(t)) => {
                        self.edge(pc, target);
                        st = t;
                        pc = target;
                    }
                    (None, None) => {
                        self.complete(parent);
                        return;
                    }
                },
                Flow::Done => {
                    self.complete(parent);
                    return;
                }
            }
        }
    }

    fn edge(&mut self, from: usize, to: usize) {
        if to <= from {
            *self.backedges.entry(from).or_insert(0) += 1;
        }
    }

    fn logln(&mut self, line: impl FnOnce() -> String) {
        if let Some(log) = &mut self.log
            && log.len() < MAX_LOG
        {
            log.push_str(&line());
            log.push('\n');
            if log.len() >= MAX_LOG {
                log.push_str("... (log truncated)\n");
            }
        }
    }

    // === diagnostics ===

    fn source(&self, pc: usize) -> Option<SourceLine> {
        let li = &self.ctx.line_info;
        let i = li.partition_point(|l| l.insn <= pc).checked_sub(1)?;
        let l = &li[i];
        Some(SourceLine { file: l.file.clone(), line: l.line, column: l.column, text: l.source.clone() })
    }

    fn where_(&self, pc: usize) -> String {
        match self.source(pc) {
            Some(src) => format!("insn {pc} ({src})"),
            None => format!("insn {pc}"),
        }
    }

    /// Records a diagnostic (once per instruction and kind) with the instruction, its source
    /// line and the registers `regs` of `st`.
    fn fail(&mut self, st: &State, pc: usize, regs: &[u8], mut d: Diagnostic) {
        if st.speculative && !matches!(d.code, Code::Loop | Code::TooComplex) {
            // Recoverable on a speculative path (the kernel's `error_recoverable_with_nospec`):
            // the path ends here instead.
            self.spec_abort = true;
            return;
        }
        if !self.seen.insert((pc, d.code)) {
            return;
        }
        if d.state.is_none() && !regs.is_empty() {
            let mut parts = Vec::new();
            let mut shown = Vec::new();
            for &r in regs {
                if r <= 10 && !shown.contains(&r) {
                    shown.push(r);
                    parts.push(format!("R{r}={}", st.reg(r)));
                }
            }
            if st.frames.len() > 1 {
                parts.push(format!("(in the function called at insn {})", st.cur().callsite));
            }
            d.state = Some(parts.join(" "));
        }
        self.fail_at(pc, d);
    }

    /// Whether another branch to explore would pass `MAX_PENDING`; if so, the program is
    /// refused as too complex at `pc` and the walk stops.
    fn too_many_pending(&mut self, pc: usize) -> bool {
        if self.pending.len() < MAX_PENDING {
            return false;
        }
        self.fail_at(
            pc,
            Diagnostic::new(
                Code::TooComplex,
                Some(pc),
                format!("more than {MAX_PENDING} branches are pending exploration"),
            )
            .help("the program has too many independent conditions in a row; split it into functions or tail calls, or reduce branching"),
        );
        self.stop = true;
        true
    }

    fn fail_at(&mut self, pc: usize, mut d: Diagnostic) {
        self.seen.insert((pc, d.code));
        if d.pc.is_none() {
            d.pc = Some(pc);
        }
        if d.insn.is_none()
            && let Some(insn) = self.cfg.insn_at.get(pc).copied().flatten()
        {
            d.insn = Some(duet_isa::disassemble_insn(&insn));
        }
        if d.source.is_none() {
            d.source = self.source(pc);
        }
        self.logln(|| format!("{pc}: error: {}", d.message));
        self.diags.push(d);
        if self.diags.len() >= self.ctx.config.max_diagnostics {
            self.stop = true;
        }
    }

    /// Reports `d` (as [`Self::fail`], with the registers `regs` as they were), then makes
    /// register `dst` an unknown number, so that the path goes on without the refused value.
    fn fail_unknown(&mut self, st: &mut State, pc: usize, regs: &[u8], dst: u8, d: Diagnostic) {
        self.fail(st, pc, regs, d);
        *st.reg_mut(dst) = Reg::scalar(Scalar::UNKNOWN);
    }

    /// Reports `d` about a call that cannot be checked, then ends the call as any call ends:
    /// r1-r5 clobbered and r0 an unknown number.
    fn fail_call(&mut self, st: &mut State, pc: usize, d: Diagnostic) {
        self.fail(st, pc, &[], d);
        self.clobber_call(st, pc);
        *st.reg_mut(0) = Reg::scalar(Scalar::UNKNOWN);
    }

    /// Reports `d` about a memory access through register `r`, which then yields no value (a
    /// load gives an unknown number of its size instead).
    fn fail_access<T>(&mut self, st: &State, pc: usize, r: u8, d: Diagnostic) -> Option<T> {
        self.fail(st, pc, &[r], d);
        None
    }

    fn too_complex(&mut self, pc: usize) {
        self.stop = true;
        let hottest = self.backedges.iter().max_by_key(|(_, n)| **n).map(|(pc, n)| (*pc, *n));
        let budget = self.ctx.config.max_insns;
        let mut d = Diagnostic::new(
            Code::TooComplex,
            Some(pc),
            format!("the verifier processed {budget} instructions without finishing (the kernel's limit is 1000000)"),
        );
        if let Some((jump, count)) = hottest {
            let target = self.cfg.insn_at[jump].and_then(|i| i.branch_target(jump)).unwrap_or(0);
            d.code = Code::Loop;
            d.message = format!(
                "the loop closed by the jump at {} back to insn {target} could not be proven to terminate: {count} iterations explored within the budget of {budget} instructions",
                self.where_(jump)
            );
            d = d.help("give the loop a constant upper bound the verifier can see (`for (i = 0; i < MAX && i < n; i++)`), make sure the counter is not reset inside the loop, or use fewer, simpler iterations");
            d.pc = Some(jump);
            d.insn = self.cfg.insn_at[jump].map(|i| duet_isa::disassemble_insn(&i));
            d.source = self.source(jump);
            self.seen.insert((jump, d.code));
            self.diags.push(d);
            return;
        }
        d = d.help("split the program into smaller functions or tail calls, or reduce the number of branches");
        self.fail_at(pc, d);
    }

    fn infinite_loop(&mut self, pc: usize, st: &State) {
        // The loop's back edge: a jump at or after the loop head that targets it.
        let jump = self
            .backedges
            .iter()
            .filter(|(j, _)| **j >= pc && self.cfg.insn_at[**j].and_then(|i| i.branch_target(**j)) == Some(pc as i64))
            .max_by_key(|(_, n)| **n)
            .map(|(j, _)| *j);
        let closing = jump.map(|j| format!(" by the jump at {}", self.where_(j))).unwrap_or_default();
        let d = Diagnostic::new(
            Code::Loop,
            Some(pc),
            format!("infinite loop: the loop starting at insn {pc} (closed{closing}) comes back to exactly the same state, so it never ends"),
        )
        .help("nothing that the loop condition depends on changes between iterations; update the loop counter (or pointer) on every path through the loop body");
        self.fail(st, pc, &[], d);
    }

    // === registers ===

    /// The kernel's `allow_ptr_leaks`: a privileged loader may turn pointers into numbers
    /// (return, store, compare or pass them), which then can never be dereferenced again.
    fn allow_ptr_leaks(&self) -> bool {
        !self.ctx.config.unprivileged
    }

    /// The kernel's `allow_uninit_stack`: a privileged loader may read stack bytes that were
    /// never written, which read as an unknown number (never a pointer).
    fn allow_uninit_stack(&self) -> bool {
        !self.ctx.config.unprivileged
    }

    /// What a map lookup's result becomes once it is known not to be NULL: a pointer into the
    /// value, or, for a map of maps, a handle of the inner map (the kernel's `CONST_PTR_TO_MAP`
    /// with the outer map's `inner_map_meta`).
    fn non_null_lookup(&self, map: u32) -> RegType {
        match self.inner_of.get(map as usize).copied().flatten() {
            Some((inner, _)) => RegType::MapHandle { map: inner },
            // An xskmap's value is the AF_XDP socket itself (the kernel's PTR_TO_XDP_SOCK).
            None if self.maps.get(map as usize).is_some_and(|m| m.map_type == helpers::map_type::XSKMAP) => {
                RegType::XdpSock
            }
            None => RegType::MapValue { map },
        }
    }

    /// Whether map `map` is the placeholder of a map of maps' unknown inner template.
    fn unknown_inner_map(&self, map: u32) -> bool {
        self.inner_of.iter().flatten().any(|&(inner, known)| inner == map && !known)
    }

    fn new_id(&mut self) -> u32 {
        self.id_gen = self.id_gen.wrapping_add(1).max(1);
        self.id_gen
    }

    /// Reads register `r` as a number operand (ALU, comparisons): as [`Self::read`], except that
    /// for a privileged loader an invalidated pointer is an unknown number, as the kernel's
    /// `mark_reg_invalid` makes it when `allow_ptr_leaks` (only dereferencing it is an error).
    fn read_operand(&mut self, st: &mut State, pc: usize, r: u8) -> Reg {
        if matches!(st.reg(r).ty, RegType::Stale { .. }) && self.allow_ptr_leaks() {
            *st.reg_mut(r) = Reg::scalar(Scalar::UNKNOWN);
            return *st.reg(r);
        }
        self.read(st, pc, r)
    }

    /// Reads register `r` as an operand, reporting (and repairing) uninitialised and stale ones.
    fn read(&mut self, st: &mut State, pc: usize, r: u8) -> Reg {
        let reg = *st.reg(r);
        match reg.ty {
            RegType::NotInit => {
                let d = match reg.clobbered_by() {
                    Some(call) if r == 0 && self.cfg.insn_at[call].is_some_and(|i| i.op == Op::CallLocal) => {
                        Diagnostic::new(
                            Code::UninitRegister,
                            Some(pc),
                            format!("R0 is read, but the function called at insn {call} returned without setting it"),
                        )
                        .help("set r0 in the called function on every path to its exit (`return` a value), or set r0 after the call before reading it")
                    }
                    Some(call) => Diagnostic::new(
                        Code::UninitRegister,
                        Some(pc),
                        format!("R{r} is read, but the call at insn {call} clobbered it"),
                    )
                    .help("calls overwrite r0-r5 (r0 holds the result); keep values needed after a call in r6-r9 or on the stack"),
                    None if r == 0 && self.cfg.insn_at[pc].is_some_and(|i| i.op == Op::Exit) => Diagnostic::new(
                        Code::UninitRegister,
                        Some(pc),
                        "the function exits without setting R0, its return value",
                    )
                    .help("set r0 on every path before `exit`"),
                    None if (1..=5).contains(&r) && st.frames.len() > 1 => Diagnostic::new(
                        Code::UninitRegister,
                        Some(pc),
                        format!("R{r} is read before it is written: the caller did not pass argument {r}"),
                    )
                    .help("pass every argument the function reads in r1-r5 before the call"),
                    None => Diagnostic::new(Code::UninitRegister, Some(pc), format!("R{r} is read before it is written"))
                        .help("every register must be written before it is read; only r1 (the context) and r10 (the frame pointer) are set when the program starts"),
                };
                self.fail_unknown(st, pc, &[], r, d);
                *st.reg(r)
            }
            RegType::Stale { at, was } => {
                let d = match was {
                    StaleKind::Packet => Diagnostic::new(
                        Code::StalePointer,
                        Some(pc),
                        format!("R{r} is a packet pointer from before the packet-changing call at {}", self.where_(at as usize)),
                    )
                    .help("bpf_xdp_adjust_head/tail/meta move the packet: reload ctx->data and ctx->data_end after the call and check the bounds again"),
                    StaleKind::Socket => Diagnostic::new(
                        Code::StalePointer,
                        Some(pc),
                        format!("R{r} is a socket that was already released at {}", self.where_(at as usize)),
                    )
                    .help("read what you need from the socket before bpf_sk_release, and release it once"),
                    StaleKind::Record => Diagnostic::new(
                        Code::StalePointer,
                        Some(pc),
                        format!("R{r} is a ring buffer record that was already submitted or discarded at {}", self.where_(at as usize)),
                    )
                    .help("a record belongs to the ring buffer once submitted or discarded; fill it completely before submitting"),
                };
                self.fail_unknown(st, pc, &[], r, d);
                *st.reg(r)
            }
            _ => reg,
        }
    }

    // === the instructions ===

    fn step(&mut self, st: &mut State, pc: usize, insn: &Insn) -> Flow {
        let next = pc + insn.slots();
        match insn.op.form() {
            Form::AluReg | Form::AluImm | Form::Unary | Form::Endian => {
                self.alu(st, pc, insn);
                Flow::Next(next)
            }
            Form::JmpReg | Form::JmpImm => self.cond_jump(st, pc, insn),
            Form::Ja | Form::Ja32 => {
                Flow::Next(insn.branch_target(pc).and_then(|t| usize::try_from(t).ok()).unwrap_or(next))
            }
            Form::CallHelper if helpers::calls_callback(insn.imm) => self.call_with_callback(st, pc, insn),
            Form::CallHelper => {
                self.call_helper(st, pc, insn);
                Flow::Next(next)
            }
            Form::CallLocal => self.call_local(st, pc, insn),
            Form::CallKfunc | Form::CallReg => {
                let what = if insn.op == Op::CallKfunc {
                    "calls to kernel functions (kfuncs) are not supported by duet"
                } else {
                    "`callx` (helper id in a register) cannot be verified: the kernel rejects it and duet's verifier cannot tell which helper runs"
                };
                self.fail_call(st, pc, Diagnostic::new(Code::Unsupported, Some(pc), what));
                Flow::Next(next)
            }
            Form::Exit => self.exit(st, pc),
            Form::LdImm64 => {
                self.ld_imm64(st, pc, insn);
                Flow::Next(next)
            }
            Form::LdAbs | Form::LdInd => {
                self.ld_abs(st, pc, insn);
                Flow::Next(next)
            }
            Form::Ldx => {
                self.load(st, pc, insn);
                Flow::Next(next)
            }
            Form::St | Form::Stx => {
                self.store(st, pc, insn);
                Flow::Next(next)
            }
            Form::Atomic => {
                self.atomic(st, pc, insn);
                Flow::Next(next)
            }
        }
    }

    fn clobber_call(&self, st: &mut State, pc: usize) {
        for r in 1..=5 {
            *st.reg_mut(r) = Reg::clobbered(pc);
        }
    }

    // === after exploration ===

    /// The kernel's `check_max_stack_depth`: frames of one call chain share 512 bytes.
    fn check_stack_chains(&mut self) {
        let rounded: Vec<u64> = self.stack_depth.iter().map(|d| u64::from(*d).div_ceil(16) * 16).collect();
        fn worst(s: usize, calls: &[Vec<(usize, usize)>], rounded: &[u64], depth: usize) -> (u64, Vec<usize>) {
            let mut best = (0u64, Vec::new());
            if depth > 16 {
                return best;
            }
            for &(_, callee) in &calls[s] {
                let (d, chain) = worst(callee, calls, rounded, depth + 1);
                if d > best.0 {
                    best = (d, chain);
                }
            }
            let mut chain = vec![s];
            chain.extend(best.1);
            (rounded[s] + best.0, chain)
        }
        let (total, chain) = worst(0, &self.cfg.calls, &rounded, 0);
        if total > MAX_STACK as u64 && chain.len() > 1 {
            let parts: Vec<String> =
                chain.iter().map(|s| format!("insn {} ({} bytes)", self.cfg.subprogs[*s].start, rounded[*s])).collect();
            let start = self.cfg.subprogs[chain[chain.len() - 1]].start;
            let d = Diagnostic::new(
                Code::StackLimit,
                Some(start),
                format!(
                    "the call chain {} uses {total} bytes of stack; the limit for a whole chain is 512",
                    parts.join(" -> ")
                ),
            )
            .help("reduce the stack use of the functions in this chain, or keep large buffers in a per-CPU array map");
            self.fail_at(start, d);
        }
    }
}
