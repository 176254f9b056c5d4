//! The abstract interpreter: explores every path of the program with abstract states, checking
//! each instruction, storing states at prune points and pruning paths whose state a verified
//! state already covers (the design of the Linux verifier's `do_check`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};

use duet_isa::{Form, Insn, Op, PseudoSrc};

use crate::cfg::Cfg;
use crate::diag::{Code, Diagnostic, SourceLine};
use crate::helpers::{self, Arg, Proto, Refusal, Ret};
use crate::scalar::{AluOp, Cmp, Scalar};
use crate::state::{
    ByteKind, Compare, Frame, HeldRef, IdMap, MAX_CALL_FRAMES, MAX_PACKET_OFF, MAX_STACK, MAX_VAR_OFF, Reg, RegType,
    Slot, StaleKind, State,
};
use crate::{HTTP_MD_FIELDS, InsnFacts, MemRegion, ProgramType, VerifyContext};

/// The kernel's limit on pending branches (`BPF_COMPLEXITY_LIMIT_JMP_SEQ`).
const MAX_PENDING: usize = 8192;
/// Size of `struct pt_regs` on x86-64, the kprobe context.
const PT_REGS_SIZE: i64 = 168;
/// Most states with contents kept per instruction.
const MAX_STATES_PER_INSN: usize = 64;
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
    Branch { fall: Option<State>, next: usize, taken: Option<State>, target: usize },
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
}

impl<'a> Checker<'a> {
    pub(crate) fn new(cfg: &'a Cfg, ctx: &'a VerifyContext, diags: Vec<Diagnostic>) -> Self {
        let n = cfg.insn_at.len();
        Checker {
            cfg,
            ctx,
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
        }
    }

    /// Explores every path from the entry and returns what was found.
    pub(crate) fn run(mut self) -> Outcome {
        let mut init = State { frames: vec![Frame::new(0, usize::MAX, 0)], refs: Vec::new() };
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
            match flow {
                Flow::Next(next) => {
                    self.edge(pc, next);
                    pc = next;
                }
                Flow::Branch { fall, next, taken, target } => match (fall, taken) {
                    (Some(f), Some(t)) => {
                        if self.pending.len() >= MAX_PENDING {
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

    // === pruning ===

    fn visit(&mut self, pc: usize, st: &State, parent: &mut Option<u32>) -> Visit {
        // Prune against states whose every path was verified.
        let mut i = 0;
        while i < self.at_pc[pc].len() {
            let idx = self.at_pc[pc][i] as usize;
            let node = &self.nodes[idx];
            let Some(old) = &node.state else {
                self.at_pc[pc].swap_remove(i);
                continue;
            };
            if node.branches == 0 {
                if old.covers(st, &mut self.ids, Compare::Subsumes) {
                    self.nodes[idx].hits += 1;
                    return Visit::Prune;
                }
                let node = &mut self.nodes[idx];
                node.misses += 1;
                if node.misses > node.hits * 3 + 3 {
                    // A state that keeps failing to prune costs more to compare than it saves.
                    node.state = None;
                    self.live_states -= 1;
                    self.at_pc[pc].swap_remove(i);
                    continue;
                }
            }
            i += 1;
        }
        // An ancestor on this path with exactly this state: the loop between them never ends.
        // Every loop passes through the target of its backward jump, so checking there suffices.
        let hash = if self.cfg.loop_head[pc] { Some(self.live_hash(st, pc)) } else { None };
        if let Some(candidates) = hash.and_then(|h| self.open.get(&(pc as u32, h))) {
            for &c in candidates {
                if self.nodes[c as usize].branches > 0 && self.is_ancestor(c, *parent) {
                    return Visit::InfiniteLoop;
                }
            }
        }
        // Store this state, except in long loops where a state every few instructions suffices
        // (the kernel's heuristic), so memory and comparisons stay bounded.
        if self.open_at[pc] > 16 && (self.processed - self.last_add_insns < 8 || self.jumps - self.last_add_jumps < 2) {
            return Visit::Continue;
        }
        self.last_add_insns = self.processed;
        self.last_add_jumps = self.jumps;
        let mut stored = st.clone();
        self.clean_dead(&mut stored, pc);
        let idx = self.nodes.len() as u32;
        self.nodes.push(Node { state: Some(stored), pc: pc as u32, branches: 1, parent: *parent, hits: 0, misses: 0 });
        self.open_at[pc] += 1;
        if self.at_pc[pc].len() >= MAX_STATES_PER_INSN {
            // Keep the most useful states: drop the one that pruned least (oldest on ties).
            if let Some((pos, _)) = self.at_pc[pc].iter().enumerate().min_by_key(|(_, n)| self.nodes[**n as usize].hits)
            {
                let victim = self.at_pc[pc].swap_remove(pos);
                self.nodes[victim as usize].state = None;
                self.live_states -= 1;
            }
        }
        self.at_pc[pc].push(idx);
        self.max_states_per_insn = self.max_states_per_insn.max(self.at_pc[pc].len() as u64);
        if let Some(hash) = hash {
            self.open.entry((pc as u32, hash)).or_default().push(idx);
        }
        *parent = Some(idx);
        self.states += 1;
        self.live_states += 1;
        self.peak_states = self.peak_states.max(self.live_states);
        Visit::Continue
    }

    /// At a helper call that calls back (bpf_loop), which the path reaches again after each
    /// callback: whether a state stored earlier on this path, at this call, covers `st`. That
    /// ends the path, as in the kernel: the earlier state's exploration covers everything that
    /// follows, and the helper's own bound ends the loop at run time. From the third time round,
    /// numbers that changed since the previous time are widened to unknown, so that callbacks
    /// that count converge (the kernel ignores such imprecise numbers when it compares).
    fn callback_revisit(&mut self, st: &mut State, pc: usize, parent: Option<u32>) -> bool {
        let ancestors: Vec<u32> = self.at_pc[pc]
            .iter()
            .copied()
            .filter(|&idx| {
                let node = &self.nodes[idx as usize];
                node.branches > 0 && node.state.is_some() && self.is_ancestor(idx, parent)
            })
            .collect();
        for &idx in &ancestors {
            if let Some(old) = &self.nodes[idx as usize].state
                && old.covers(st, &mut self.ids, Compare::Subsumes)
            {
                self.nodes[idx as usize].hits += 1;
                return true;
            }
        }
        if ancestors.len() >= 2
            && let Some(old) = ancestors.iter().max().and_then(|&idx| self.nodes[idx as usize].state.as_ref())
        {
            widen_changed_scalars(old, st);
        }
        false
    }

    /// A hash of the parts of `st` that matter at `pc` (live registers and stack slots), equal
    /// for states that compare equal after dead parts are forgotten.
    fn live_hash(&self, st: &State, pc: usize) -> u64 {
        let mut h = FastHasher::default();
        let n = st.frames.len();
        for (i, frame) in st.frames.iter().enumerate() {
            let live = if i + 1 == n { self.cfg.live_in[pc] } else { self.caller_live(&st.frames[i + 1]) };
            frame.callsite.hash(&mut h);
            for r in 0..10 {
                if live & (1 << r) != 0 {
                    frame.regs[r].hash(&mut h);
                }
            }
            let slots = if i + 1 == n { self.cfg.live_slots[pc] } else { u64::MAX };
            for (si, slot) in frame.stack.iter().enumerate() {
                if si < 64 && slots & (1 << si) != 0 && !slot.is_invalid() {
                    si.hash(&mut h);
                    slot.hash(&mut h);
                }
            }
        }
        st.refs.len().hash(&mut h);
        h.finish()
    }

    fn is_ancestor(&self, node: u32, mut cur: Option<u32>) -> bool {
        while let Some(c) = cur {
            if c == node {
                return true;
            }
            cur = self.nodes[c as usize].parent;
        }
        false
    }

    fn complete(&mut self, mut node: Option<u32>) {
        while let Some(n) = node {
            let nd = &mut self.nodes[n as usize];
            nd.branches = nd.branches.saturating_sub(1);
            if nd.branches > 0 {
                break;
            }
            let pc = nd.pc as usize;
            node = nd.parent;
            self.open_at[pc] = self.open_at[pc].saturating_sub(1);
        }
    }

    /// The registers of a caller that may still be read while `callee` runs.
    fn caller_live(&self, callee: &Frame) -> u16 {
        if callee.callback {
            // A callback returns to the helper call itself, which reads its arguments again.
            self.cfg.live_in.get(callee.callsite).copied().unwrap_or(u16::MAX)
        } else {
            // A caller's r0..r5 are overwritten or clobbered when the callee returns.
            self.cfg.live_in.get(callee.callsite + 1).copied().unwrap_or(u16::MAX) & 0b11_1100_0000
        }
    }

    /// Forgets registers no later instruction reads, so that states differing only in dead
    /// registers compare equal.
    fn clean_dead(&self, st: &mut State, pc: usize) {
        let n = st.frames.len();
        for i in 0..n {
            let live = if i + 1 == n { self.cfg.live_in[pc] } else { self.caller_live(&st.frames[i + 1]) };
            for r in 0..10 {
                if live & (1 << r) == 0 {
                    st.frames[i].regs[r] = Reg::NOT_INIT;
                }
            }
        }
        // Dead slots of the running frame (callers' slots may be read through pointers the
        // callee holds, so they stay).
        let slots = self.cfg.live_slots[pc];
        let frame = st.cur_mut();
        for (i, slot) in frame.stack.iter_mut().enumerate() {
            if i >= 64 || slots & (1 << i) == 0 {
                *slot = Slot::INVALID;
            }
        }
        while frame.stack.last().is_some_and(Slot::is_invalid) {
            frame.stack.pop();
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

    fn new_id(&mut self) -> u32 {
        self.id_gen = self.id_gen.wrapping_add(1).max(1);
        self.id_gen
    }

    /// Reads register `r` as an operand, reporting (and repairing) uninitialised and stale ones.
    fn read(&mut self, st: &mut State, pc: usize, r: u8) -> Reg {
        let reg = *st.reg(r);
        match reg.ty {
            RegType::NotInit => {
                let d = match reg.clobbered_by() {
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

    /// Gives every scalar with `id` the value `val` (copies of one value stay in step).
    fn sync_linked(st: &mut State, id: u32, val: Scalar) {
        if id == 0 {
            return;
        }
        st.for_each_reg(|r| {
            if r.ty == RegType::Scalar && r.id == id {
                r.val = val;
            }
        });
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

    // --- ALU ---

    fn alu(&mut self, st: &mut State, pc: usize, insn: &Insn) {
        let class = insn.op.spec().code & 0x07;
        let alu32 = class == 0x04;
        let dst = insn.dst;
        match insn.op {
            Op::Le16
            | Op::Le32
            | Op::Le64
            | Op::Be16
            | Op::Be32
            | Op::Be64
            | Op::Bswap16
            | Op::Bswap32
            | Op::Bswap64 => {
                let reg = self.read(st, pc, dst);
                if reg.ty.is_pointer() && !self.allow_ptr_leaks() {
                    self.fail(
                        st,
                        pc,
                        &[dst],
                        Diagnostic::new(
                            Code::PointerArithmetic,
                            Some(pc),
                            format!("byte swap of R{dst}, which is {}", reg.ty.describe()),
                        )
                        .help("byte order applies to numbers read from memory, not to pointers"),
                    );
                }
                let val = match insn.op {
                    Op::Le16 => reg.val.truncate(2),
                    Op::Le32 => reg.val.truncate(4),
                    Op::Le64 => reg.val,
                    Op::Be16 | Op::Bswap16 => reg.val.bswap(2),
                    Op::Be32 | Op::Bswap32 => reg.val.bswap(4),
                    _ => reg.val.bswap(8),
                };
                *st.reg_mut(dst) = Reg::scalar(if reg.ty.is_pointer() { Scalar::UNKNOWN } else { val });
            }
            Op::Neg | Op::Neg32 => {
                let reg = self.read(st, pc, dst);
                if reg.ty.is_pointer() {
                    // Privileged, the kernel lets the address become a number.
                    if !self.allow_ptr_leaks() {
                        self.fail(st, pc, &[dst], Self::pointer_op_diag(pc, dst, &reg, "negation"));
                    }
                    *st.reg_mut(dst) = Reg::scalar(Scalar::UNKNOWN);
                    return;
                }
                *st.reg_mut(dst) = Reg::scalar(reg.val.neg(alu32));
            }
            Op::MovImm => *st.reg_mut(dst) = Reg::scalar(Scalar::constant(insn.imm as u64)),
            Op::Mov32Imm => *st.reg_mut(dst) = Reg::scalar(Scalar::constant(u64::from(insn.imm as u32))),
            Op::MovReg => {
                let mut src = self.read(st, pc, insn.src);
                if src.is_scalar() && src.val.as_const().is_none() && src.id == 0 {
                    src.id = self.new_id();
                    st.reg_mut(insn.src).id = src.id;
                }
                *st.reg_mut(dst) = src;
            }
            Op::Mov32Reg | Op::MovSx8 | Op::MovSx16 | Op::MovSx32 | Op::MovSx8To32 | Op::MovSx16To32 => {
                let src = self.read(st, pc, insn.src);
                if src.ty.is_pointer() && self.allow_ptr_leaks() {
                    // A privileged loader may copy part of an address: it becomes a number.
                    *st.reg_mut(dst) = Reg::scalar(Scalar::UNKNOWN);
                    return;
                }
                if src.ty.is_pointer() {
                    self.fail_unknown(
                        st,
                        pc,
                        &[insn.src],
                        dst,
                        Diagnostic::new(
                            Code::PointerLeak,
                            Some(pc),
                            format!(
                                "R{} is {}; copying part of it would turn an address into a number",
                                insn.src,
                                src.ty.describe()
                            ),
                        )
                        .help("use a 64-bit move (`r1 = r2`) for pointers"),
                    );
                    return;
                }
                let (val, width) = match insn.op {
                    Op::Mov32Reg => (src.val.zext32(), 32),
                    Op::MovSx8 => (src.val.sign_extend(1, false), 8),
                    Op::MovSx16 => (src.val.sign_extend(2, false), 16),
                    Op::MovSx32 => (src.val.sign_extend(4, false), 32),
                    Op::MovSx8To32 => (src.val.sign_extend(1, true), 8),
                    _ => (src.val.sign_extend(2, true), 16),
                };
                let mut copy = Reg::scalar(val);
                // As the kernel's scalar ids: when the source surely fits the copy's width (32
                // bits for `w3 = w2`, below the sign bit for a sign-extending move), the copy is
                // the same number, and a bound learned on either applies to both.
                let limit = if insn.op == Op::Mov32Reg { u64::from(u32::MAX) } else { (1u64 << (width - 1)) - 1 };
                if src.is_scalar() && src.val.umax <= limit && src.val.as_const().is_none() {
                    let id = if src.id == 0 { self.new_id() } else { src.id };
                    st.reg_mut(insn.src).id = id;
                    copy.id = id;
                }
                *st.reg_mut(dst) = copy;
            }
            op => {
                let Some(aop) = alu_op(op) else { return };
                let src = if insn.op.form() == Form::AluImm {
                    let v = if alu32 { u64::from(insn.imm as u32) } else { insn.imm as u64 };
                    Reg::scalar(Scalar::constant(v))
                } else {
                    self.read(st, pc, insn.src)
                };
                let d = self.read(st, pc, dst);
                if insn.op.form() == Form::AluImm
                    && matches!(aop, AluOp::Div | AluOp::Mod | AluOp::SDiv | AluOp::SMod)
                    && insn.imm == 0
                {
                    self.fail(
                        st,
                        pc,
                        &[],
                        Diagnostic::new(Code::DivisionByZero, Some(pc), "division by the constant zero")
                            .help("eBPF defines x / 0 as 0 and x % 0 as x at run time, but the kernel rejects a constant zero divisor as a certain bug"),
                    );
                }
                if insn.op.form() == Form::AluImm && matches!(aop, AluOp::Lsh | AluOp::Rsh | AluOp::Arsh) {
                    let bits = if alu32 { 32 } else { 64 };
                    if insn.imm < 0 || insn.imm >= bits {
                        self.fail(
                            st,
                            pc,
                            &[],
                            Diagnostic::new(
                                Code::BadShift,
                                Some(pc),
                                format!("shift by {} on a {bits}-bit value", insn.imm),
                            )
                            .help(format!(
                                "shift amounts must be in 0..{bits}; the kernel rejects larger constant shifts"
                            )),
                        );
                    }
                }
                match (d.ty.is_pointer(), src.ty.is_pointer()) {
                    (false, false) => {
                        *st.reg_mut(dst) = Reg::scalar(d.val.alu(aop, &src.val, alu32));
                    }
                    (true, false) if !alu32 && matches!(aop, AluOp::Add | AluOp::Sub) => {
                        self.ptr_arith(st, pc, insn, dst, d, src, aop == AluOp::Sub);
                    }
                    (false, true) if !alu32 && aop == AluOp::Add => {
                        self.ptr_arith(st, pc, insn, insn.src, src, d, false);
                    }
                    (true, true) if !alu32 && aop == AluOp::Sub => self.ptr_diff(st, pc, insn, d, src),
                    // The kernel lets a privileged loader subtract with 32-bit instructions
                    // whatever the operands are: the result is a meaningless number.
                    _ if alu32 && aop == AluOp::Sub && self.allow_ptr_leaks() => {
                        *st.reg_mut(dst) = Reg::scalar(Scalar::UNKNOWN);
                    }
                    _ => {
                        let (r, reg) = if d.ty.is_pointer() { (dst, d) } else { (insn.src, src) };
                        if alu32 {
                            self.fail_unknown(
                                st,
                                pc,
                                &[dst, insn.src],
                                dst,
                                Diagnostic::new(
                                    Code::PointerArithmetic,
                                    Some(pc),
                                    format!("32-bit arithmetic on R{r}, which is {}", reg.ty.describe()),
                                )
                                .help("pointer arithmetic must use 64-bit instructions; a 32-bit result would cut the address"),
                            );
                        } else {
                            self.fail_unknown(st, pc, &[r], dst, Self::pointer_op_diag(pc, r, &reg, op_name(aop)));
                        }
                    }
                }
            }
        }
    }

    /// The diagnostic for an operation `what` that pointers do not allow, on register `r`.
    fn pointer_op_diag(pc: usize, r: u8, reg: &Reg, what: &str) -> Diagnostic {
        if matches!(reg.ty, RegType::MapHandle { .. }) {
            Diagnostic::new(
                Code::PointerArithmetic,
                Some(pc),
                format!("{what} on R{r}, a map handle: map handles are not memory and cannot be changed"),
            )
            .help("pass the handle unchanged to a helper; to reach a value, call bpf_map_lookup_elem and check the result for NULL")
        } else {
            Diagnostic::new(Code::PointerArithmetic, Some(pc), format!("{what} on R{r}, which is {}", reg.ty.describe()))
                .help("pointers allow only adding or subtracting a number (and subtracting two pointers into the same memory)")
        }
    }

    #[allow(clippy::too_many_arguments, reason = "one call site per operand order")]
    fn ptr_arith(&mut self, st: &mut State, pc: usize, insn: &Insn, ptr_r: u8, ptr: Reg, s: Reg, sub: bool) {
        let dst = insn.dst;
        if sub && matches!(ptr.ty, RegType::Stack { .. }) {
            // The kernel refuses every subtraction from a stack pointer, constant or not
            // (`r1 -= 8`), because JITs may not handle it; adding a negative number is the
            // accepted spelling.
            let d = Diagnostic::new(
                Code::PointerArithmetic,
                Some(pc),
                format!(
                    "subtraction from R{ptr_r}, a stack pointer: the kernel prohibits subtracting from stack pointers"
                ),
            )
            .help("add a negative offset instead: `r1 = r10; r1 += -8` (what compilers emit), not `r1 -= 8`");
            self.fail_unknown(st, pc, &[ptr_r], dst, d);
            return;
        }
        let forbidden = match ptr.ty {
            RegType::MapHandle { .. } | RegType::Func { .. } => !s.val.is_const(0) || sub,
            RegType::MapValueOrNull { .. } | RegType::RecordOrNull { .. } => {
                self.fail_unknown(
                    st,
                    pc,
                    &[ptr_r],
                    dst,
                    Diagnostic::new(
                        Code::NullCheck,
                        Some(pc),
                        format!("arithmetic on R{ptr_r}, which may be NULL ({})", ptr.ty.name()),
                    )
                    .help("check the lookup result against NULL (`if (!value) return ...;`) before offsetting it"),
                );
                return;
            }
            RegType::PacketEnd => true,
            _ => false,
        };
        if forbidden {
            let d = Self::pointer_op_diag(pc, ptr_r, &ptr, if sub { "subtraction" } else { "addition" });
            self.fail_unknown(st, pc, &[ptr_r], dst, d);
            return;
        }
        let mut out = ptr;
        if let Some(c) = s.val.as_const() {
            let c = c as i64;
            let new_off = if sub { i64::from(ptr.off).checked_sub(c) } else { i64::from(ptr.off).checked_add(c) };
            match new_off {
                Some(off) if c.unsigned_abs() < MAX_VAR_OFF as u64 && off.unsigned_abs() < MAX_VAR_OFF as u64 => {
                    out.off = off as i32;
                }
                _ => {
                    self.fail_unknown(
                        st,
                        pc,
                        &[dst, insn.src],
                        dst,
                        Diagnostic::new(
                            Code::PointerArithmetic,
                            Some(pc),
                            format!("adding {c} moves {} far out of any memory", ptr.ty.describe()),
                        )
                        .help("pointer offsets must stay within 2^29 of the pointer's base"),
                    );
                    return;
                }
            }
        } else {
            if s.val.smin <= -MAX_VAR_OFF || s.val.smin == i64::MIN {
                self.fail_unknown(
                    st,
                    pc,
                    &[dst, insn.src],
                    dst,
                    Diagnostic::new(
                        Code::PointerArithmetic,
                        Some(pc),
                        format!("adding a number with no lower bound to {}", ptr.ty.describe()),
                    )
                    .help("bound the offset first, e.g. `if (off > MAX) return ...;` with an unsigned type, or `off &= MASK`"),
                );
                return;
            }
            out.val = ptr.val.alu(if sub { AluOp::Sub } else { AluOp::Add }, &s.val, false);
            if ptr.ty.is_packet() {
                out.id = self.new_id();
                out.range = 0;
                out.range_pc = u32::MAX;
            }
        }
        *st.reg_mut(dst) = out;
    }

    fn ptr_diff(&mut self, st: &mut State, pc: usize, insn: &Insn, a: Reg, b: Reg) {
        let same_region = match (a.ty, b.ty) {
            (x, y) if x == y => true,
            (x, y) => {
                let pkt = |t: RegType| matches!(t, RegType::Packet | RegType::PacketEnd | RegType::PacketMeta);
                pkt(x) && pkt(y)
            }
        };
        let ok = same_region
            && !matches!(
                a.ty,
                RegType::MapHandle { .. }
                    | RegType::MapValueOrNull { .. }
                    | RegType::RecordOrNull { .. }
                    | RegType::Ctx
            );
        if !ok && self.allow_ptr_leaks() {
            // Privileged, any two pointers may be subtracted; the difference is a number.
            *st.reg_mut(insn.dst) = Reg::scalar(Scalar::UNKNOWN);
            return;
        }
        if !self.allow_ptr_leaks() {
            // Without CAP_PERFMON the kernel refuses every pointer subtraction, even of two
            // pointers into the same packet ("pointer -= pointer prohibited").
            let d = if ok {
                Diagnostic::new(
                    Code::PointerLeak,
                    Some(pc),
                    format!(
                        "subtracting {} from {}: pointer -= pointer is prohibited for an unprivileged loader",
                        b.ty.describe(),
                        a.ty.describe()
                    ),
                )
                .help("keep offsets as numbers and compare pointers instead, or load with CAP_PERFMON (duet's default rules)")
            } else {
                Diagnostic::new(
                    Code::PointerLeak,
                    Some(pc),
                    format!(
                        "subtracting {} from {} gives a number that reveals addresses",
                        b.ty.describe(),
                        a.ty.describe()
                    ),
                )
                .help("subtract only pointers into the same memory (two packet pointers, two stack pointers), and only as a privileged loader")
            };
            self.fail_unknown(st, pc, &[insn.dst, insn.src], insn.dst, d);
            return;
        }
        let exact = a.ty == b.ty
            && a.val.as_const().is_some()
            && b.val.as_const().is_some()
            && (matches!(a.ty, RegType::Stack { .. }) || (a.ty.is_packet() && a.id == b.id));
        let val = if exact {
            let d = (i64::from(a.off) + a.val.var.value as i64) - (i64::from(b.off) + b.val.var.value as i64);
            Scalar::constant(d as u64)
        } else {
            Scalar::UNKNOWN
        };
        *st.reg_mut(insn.dst) = Reg::scalar(val);
    }

    // --- jumps ---

    fn cond_jump(&mut self, st: &mut State, pc: usize, insn: &Insn) -> Flow {
        let class = insn.op.spec().code & 0x07;
        let is32 = class == 0x06;
        let next = pc + 1;
        let target = insn.branch_target(pc).and_then(|t| usize::try_from(t).ok()).unwrap_or(next);
        let Some(cmp) = jump_cmp(insn.op) else { return Flow::Next(next) };
        let dst = self.read(st, pc, insn.dst);
        let src_is_reg = insn.op.form() == Form::JmpReg;
        let src = if src_is_reg {
            self.read(st, pc, insn.src)
        } else {
            let v = if is32 { u64::from(insn.imm as u32) } else { insn.imm as u64 };
            Reg::scalar(Scalar::constant(v))
        };
        let both = |st: &State| Flow::Branch { fall: Some(st.clone()), next, taken: Some(st.clone()), target };

        if !dst.ty.is_pointer() && !src.ty.is_pointer() {
            let mut taken = None;
            let mut fall = None;
            for (want, slot) in [(cmp, &mut taken), (cmp.negate(), &mut fall)] {
                let (mut a, mut b) = (dst.val, src.val);
                if Scalar::refine(&mut a, &mut b, want, is32) {
                    let mut s = st.clone();
                    s.reg_mut(insn.dst).val = a;
                    Self::sync_linked(&mut s, dst.id, a);
                    if src_is_reg {
                        s.reg_mut(insn.src).val = b;
                        Self::sync_linked(&mut s, src.id, b);
                    }
                    *slot = Some(s);
                }
            }
            return Flow::Branch { fall, next, taken, target };
        }

        if is32 {
            // Privileged, the kernel allows it and learns nothing from it.
            if !self.allow_ptr_leaks() {
                self.fail(
                    st,
                    pc,
                    &[insn.dst, insn.src],
                    Diagnostic::new(Code::PointerComparison, Some(pc), "32-bit comparison involving a pointer")
                        .help("compare pointers with 64-bit jumps"),
                );
            }
            return both(st);
        }

        // A pointer against zero: a NULL check, or a comparison decided by the pointer's kind.
        if matches!(cmp, Cmp::Eq | Cmp::Ne) {
            let (ptr, other) = if dst.ty.is_pointer() { (dst, src) } else { (src, dst) };
            if other.is_scalar() && other.val.is_const(0) {
                let eq_branch_is_taken = cmp == Cmp::Eq;
                return match ptr.ty {
                    RegType::MapValueOrNull { .. } | RegType::RecordOrNull { .. } => {
                        let mut is_null = st.clone();
                        self.mark_null(&mut is_null, &ptr, true);
                        let mut not_null = st.clone();
                        self.mark_null(&mut not_null, &ptr, false);
                        if eq_branch_is_taken {
                            Flow::Branch { fall: Some(not_null), next, taken: Some(is_null), target }
                        } else {
                            Flow::Branch { fall: Some(is_null), next, taken: Some(not_null), target }
                        }
                    }
                    _ => {
                        // Every other pointer kind is never NULL.
                        if eq_branch_is_taken {
                            Flow::Branch { fall: Some(st.clone()), next, taken: None, target }
                        } else {
                            Flow::Branch { fall: None, next, taken: Some(st.clone()), target }
                        }
                    }
                };
            }
        }

        // Packet pointers against the end of the packet (or metadata against the packet start).
        let is_end_for = |p: &Reg, e: &Reg| match p.ty {
            RegType::Packet => e.ty == RegType::PacketEnd,
            RegType::PacketMeta => e.ty == RegType::Packet && e.off == 0 && e.id == 0 && e.val.is_const(0),
            _ => false,
        };
        let pkt_pair = if is_end_for(&dst, &src) {
            Some((dst, cmp))
        } else if is_end_for(&src, &dst) {
            Some((src, cmp.swap()))
        } else {
            None
        };
        if let Some((pkt, cmp)) = pkt_pair {
            return self.packet_compare(st, pc, pkt, cmp, next, target);
        }

        // Two pointers into the same memory may be compared; the outcome is not tracked.
        let same_kind = dst.ty == src.ty
            || (dst.ty.is_packet() || dst.ty == RegType::PacketEnd)
                && (src.ty.is_packet() || src.ty == RegType::PacketEnd);
        if dst.ty.is_pointer()
            && src.ty.is_pointer()
            && same_kind
            && !matches!(dst.ty, RegType::MapValueOrNull { .. } | RegType::RecordOrNull { .. })
        {
            return both(st);
        }
        if self.allow_ptr_leaks() {
            // A privileged loader may compare any pointer with anything: both branches are
            // possible. A pointer that may be NULL found equal to one that never is (`if (v ==
            // other_v)` on two lookups, one checked) is not NULL in the equal branch, as the
            // kernel infers; it stays unchecked otherwise.
            let nullable = |r: &Reg| matches!(r.ty, RegType::MapValueOrNull { .. } | RegType::RecordOrNull { .. });
            let never_null = |r: &Reg| r.ty.is_pointer() && !nullable(r) && !matches!(r.ty, RegType::Stale { .. });
            let maybe = if nullable(&dst) && never_null(&src) {
                Some(insn.dst)
            } else if nullable(&src) && never_null(&dst) {
                Some(insn.src)
            } else {
                None
            };
            if let Some(r) = maybe
                && matches!(cmp, Cmp::Eq | Cmp::Ne)
            {
                let mut equal = st.clone();
                let reg = equal.reg_mut(r);
                reg.ty = match reg.ty {
                    RegType::MapValueOrNull { map } => RegType::MapValue { map },
                    RegType::RecordOrNull { size } => RegType::Record { size },
                    other => other,
                };
                reg.id = 0;
                return if cmp == Cmp::Eq {
                    Flow::Branch { fall: Some(st.clone()), next, taken: Some(equal), target }
                } else {
                    Flow::Branch { fall: Some(equal), next, taken: Some(st.clone()), target }
                };
            }
            return both(st);
        }
        let (p, pr) = if dst.ty.is_pointer() { (dst, insn.dst) } else { (src, insn.src) };
        let d = if matches!(p.ty, RegType::MapValueOrNull { .. } | RegType::RecordOrNull { .. }) {
            Diagnostic::new(
                Code::PointerComparison,
                Some(pc),
                format!("R{pr} ({}) may be NULL and is compared with something other than zero", p.ty.name()),
            )
            .help("check the pointer against NULL (`== 0` / `!= 0`) first")
        } else {
            Diagnostic::new(
                Code::PointerComparison,
                Some(pc),
                format!("comparing {} with {} would reveal an address", dst.ty.describe(), src.ty.describe()),
            )
            .help(
                "compare pointers only with NULL or with pointers into the same memory (packet pointers with data_end)",
            )
        };
        self.fail(st, pc, &[insn.dst, insn.src], d);
        both(st)
    }

    /// `pkt cmp end` (already normalised so the packet pointer is on the left).
    fn packet_compare(&mut self, st: &State, pc: usize, pkt: Reg, cmp: Cmp, next: usize, target: usize) -> Flow {
        // Which branch learns `pkt <= end` (range = off) or `pkt < end` (range = off + 1). As in
        // the kernel (`try_match_pkt_pointers`), only the four ordering comparisons teach a
        // range; `==`/`!=` with data_end teach nothing.
        let (taken_range, fall_range) = match cmp {
            Cmp::Gt => (None, Some(0)),
            Cmp::Ge => (None, Some(1)),
            Cmp::Lt => (Some(1), None),
            Cmp::Le => (Some(0), None),
            _ => (None, None),
        };
        let off = i64::from(pkt.off);
        let usable = off >= 0 && pkt.val.umax.saturating_add(off as u64) <= MAX_PACKET_OFF && pkt.val.smin >= 0;
        // Both branches are explored even when an earlier check already decides this one: the
        // kernel does so too, so code behind a redundant check must be safe on its own.
        let make = |extra: Option<i64>| -> State {
            let mut s = st.clone();
            // As the kernel (`find_good_pkt_pointers`): `pkt < end` with no constant offset
            // (`if (p >= end) break; c = *p;`) proves nothing, not even one byte.
            if let Some(extra) = extra
                && usable
                && !(extra == 1 && off == 0)
            {
                let new_range = (off + extra) as u32;
                let (ty, id) = (pkt.ty, pkt.id);
                s.for_each_reg(|r| {
                    if r.ty == ty && r.id == id && r.range < new_range {
                        r.range = new_range;
                        r.range_pc = pc as u32;
                    }
                });
            }
            s
        };
        Flow::Branch { fall: Some(make(fall_range)), next, taken: Some(make(taken_range)), target }
    }

    /// Resolves a NULL check of `ptr` on one branch: every copy becomes NULL or a valid pointer.
    fn mark_null(&self, st: &mut State, ptr: &Reg, is_null: bool) {
        let id = ptr.id;
        if id == 0 {
            return;
        }
        let ref_id = ptr.ref_id;
        st.for_each_reg(|r| {
            if r.id == id && matches!(r.ty, RegType::MapValueOrNull { .. } | RegType::RecordOrNull { .. }) {
                if is_null {
                    *r = Reg::scalar(Scalar::constant(0));
                } else {
                    r.ty = match r.ty {
                        RegType::MapValueOrNull { map } => RegType::MapValue { map },
                        RegType::RecordOrNull { size } => RegType::Record { size },
                        other => other,
                    };
                    r.id = 0;
                }
            }
        });
        if is_null && ref_id != 0 {
            st.refs.retain(|h| h.id != ref_id);
        }
    }

    // --- calls and exit ---

    fn call_local(&mut self, st: &mut State, pc: usize, insn: &Insn) -> Flow {
        let next = pc + 1;
        let target = insn.branch_target(pc).and_then(|t| usize::try_from(t).ok()).unwrap_or(next);
        if st.frames.len() >= MAX_CALL_FRAMES {
            self.fail_call(
                st,
                pc,
                Diagnostic::new(
                    Code::StackLimit,
                    Some(pc),
                    format!(
                        "this call would make the call chain {} frames deep; the limit is {MAX_CALL_FRAMES}",
                        st.frames.len() + 1
                    ),
                )
                .help("mark small helpers `static __always_inline` (or `#[inline(always)]`) to flatten the call chain"),
            );
            return Flow::Next(next);
        }
        let subprog = self.cfg.subprog_at(target).unwrap_or(0);
        let index = st.frames.len() as u8;
        let mut frame = Frame::new(index, pc, subprog);
        let caller = st.cur();
        frame.regs[1..=5].copy_from_slice(&caller.regs[1..=5]);
        st.frames.push(frame);
        Flow::Next(target)
    }

    fn exit(&mut self, st: &mut State, pc: usize) -> Flow {
        let r0 = self.read(st, pc, 0);
        if st.frames.len() > 1 && st.cur().callback {
            return self.callback_exit(st, pc, r0);
        }
        if st.frames.len() > 1 {
            let depth = st.frames.len() - 1;
            if r0.ty == (RegType::Stack { frame: depth as u8 }) {
                self.fail(
                    st,
                    pc,
                    &[0],
                    Diagnostic::new(
                        Code::StackAccess,
                        Some(pc),
                        "the function returns a pointer to its own stack, which ends when it returns",
                    )
                    .help("return values, or write into memory the caller passed in"),
                );
            }
            let Some(callee) = st.frames.pop() else { return Flow::Done };
            let caller = st.cur_mut();
            caller.regs[0] = r0;
            for r in 1..=5 {
                caller.regs[r] = Reg::clobbered(callee.callsite);
            }
            return Flow::Next(callee.callsite + 1);
        }
        // Program types whose return value the kernel range-checks need a number; for the
        // others a privileged loader may return an address as a number.
        let ranged = self.ctx.program_type.is_http() || self.ctx.program_type == ProgramType::CgroupSkb;
        if r0.ty.is_pointer() && ranged {
            self.fail(
                st,
                pc,
                &[0],
                Diagnostic::new(
                    Code::ReturnValue,
                    Some(pc),
                    format!(
                        "the {} program returns R0, which is {}: R0 is not a known value",
                        self.ctx.program_type.name(),
                        r0.ty.describe()
                    ),
                )
                .help("return a number (a verdict) in the range the program type allows"),
            );
        } else if r0.ty.is_pointer() && !self.allow_ptr_leaks() {
            self.fail(
                st,
                pc,
                &[0],
                Diagnostic::new(
                    Code::PointerLeak,
                    Some(pc),
                    format!("the program returns R0, which is {}", r0.ty.describe()),
                )
                .help("return a number (a verdict); a pointer would reveal an address"),
            );
        } else if r0.ty.is_pointer() {
            // A privileged loader's program may return an address.
        } else if matches!(self.ctx.program_type, ProgramType::HttpRequest | ProgramType::HttpResponse)
            && r0.val.umax > 1
        {
            let value = r0
                .val
                .as_const()
                .map_or_else(|| format!("a value in {}..={}", r0.val.umin, r0.val.umax), |v| v.to_string());
            self.fail(
                st,
                pc,
                &[0],
                Diagnostic::new(
                    Code::ReturnValue,
                    Some(pc),
                    format!(
                        "the {} program may return {value}; http filters return 0 (continue) or 1 (respond)",
                        self.ctx.program_type.name()
                    ),
                )
                .help("return 0 to let the exchange go on, or 1 to answer with the response set by http_respond (403 without one); bound computed values (`ret & 1`, `ret != 0`) on every path"),
            );
        } else if self.ctx.program_type == ProgramType::CgroupSkb && r0.val.umax > 1 {
            let value = r0
                .val
                .as_const()
                .map_or_else(|| format!("a value in {}..={}", r0.val.umin, r0.val.umax), |v| v.to_string());
            self.fail(
                st,
                pc,
                &[0],
                Diagnostic::new(
                    Code::ReturnValue,
                    Some(pc),
                    format!("the cgroup_skb program may return {value}; it must return 0 (drop) or 1 (pass)"),
                )
                .help("return 0 to drop the packet or 1 to let it pass, on every path"),
            );
        }
        for held in st.refs.clone() {
            self.fail(
                st,
                pc,
                &[],
                Diagnostic::new(
                    Code::ReferenceLeak,
                    Some(pc),
                    format!("the program can exit here still holding the ring buffer record reserved at {}", self.where_(held.pc as usize)),
                )
                .help("every reserved record must be passed to bpf_ringbuf_submit or bpf_ringbuf_discard on every path, including early returns"),
            );
        }
        Flow::Done
    }

    /// A helper that calls a function of the program back (bpf_loop), verified as the kernel
    /// does: the call may return without running the callback, or run it on a new frame (r1 the
    /// index, r2 the helper's context argument), after which the same call is checked again,
    /// so the callback is verified for any number of calls.
    fn call_with_callback(&mut self, st: &mut State, pc: usize, insn: &Insn) -> Flow {
        let next = pc + 1;
        let before = st.clone();
        self.call_helper(st, pc, insn);
        let RegType::Func { subprog } = before.reg(2).ty else { return Flow::Next(next) };
        let Some(start) = self.cfg.subprogs.get(subprog as usize).map(|s| s.start) else { return Flow::Next(next) };
        if before.frames.len() >= MAX_CALL_FRAMES {
            let d = Diagnostic::new(
                Code::StackLimit,
                Some(pc),
                format!(
                    "the callback would make the call chain {} frames deep; the limit is {MAX_CALL_FRAMES}",
                    before.frames.len() + 1
                ),
            )
            .help("call bpf_loop from a shallower function, or inline the functions around it");
            self.fail(&before, pc, &[], d);
            return Flow::Next(next);
        }
        let mut callback = before;
        let mut frame = Frame::new(callback.frames.len() as u8, pc, subprog as usize);
        frame.callback = true;
        frame.entry_refs = callback.refs.len();
        // The index is below the helper's limit of 1 << 23 calls.
        frame.regs[1] = Reg::scalar(Scalar::unknown_of_size(4));
        frame.regs[2] = *callback.reg(3);
        callback.frames.push(frame);
        Flow::Branch { fall: Some(st.clone()), next, taken: Some(callback), target: start }
    }

    /// The end of a callback: it returns 0 (go on) or 1 (stop), keeps no reference it took,
    /// and control goes back to the helper call, which may call it again.
    fn callback_exit(&mut self, st: &mut State, pc: usize, r0: Reg) -> Flow {
        if r0.ty.is_pointer() || r0.val.smin < 0 || r0.val.smax > 1 {
            let value = if r0.ty.is_pointer() {
                r0.ty.describe().to_owned()
            } else {
                r0.val
                    .as_const()
                    .map_or_else(|| format!("a value in {}..={}", r0.val.smin, r0.val.smax), |v| (v as i64).to_string())
            };
            let d = Diagnostic::new(
                Code::ReturnValue,
                Some(pc),
                format!("the callback may return {value}; at callback return R0 should have been in [0, 1]"),
            )
            .help("a bpf_loop callback returns 0 to go on with the next index or 1 to stop the loop, on every path");
            self.fail(st, pc, &[0], d);
        }
        let entry_refs = st.cur().entry_refs;
        for held in st.refs.clone().iter().skip(entry_refs) {
            let d = Diagnostic::new(
                Code::ReferenceLeak,
                Some(pc),
                format!(
                    "the callback can return still holding the ring buffer record reserved at {}",
                    self.where_(held.pc as usize)
                ),
            )
            .help("submit or discard a record the callback reserved before it returns");
            self.fail(st, pc, &[], d);
        }
        let Some(callee) = st.frames.pop() else { return Flow::Done };
        // The caller's registers are as they were at the call, which runs again.
        Flow::Next(callee.callsite)
    }

    fn call_helper(&mut self, st: &mut State, pc: usize, insn: &Insn) {
        let id = insn.imm;
        let Some(proto) = helpers::proto(id) else {
            self.fail_call(
                st,
                pc,
                Diagnostic::new(Code::UnknownHelper, Some(pc), format!("call to unknown helper #{id}")).help(format!(
                    "duet verifies the kernel helpers {} and, in http programs, duet's 10000-10005",
                    helpers::kernel_ids()
                )),
            );
            return;
        };
        let proto = &proto;
        if let Err(refusal) = proto.allowed_for(self.ctx.program_type) {
            let ty = self.ctx.program_type.name();
            let d = match refusal {
                Refusal::NotForType => Diagnostic::new(
                    Code::UnknownHelper,
                    Some(pc),
                    format!("{} is not available to {ty} programs", proto.name),
                ),
                Refusal::HttpOnly => Diagnostic::new(
                    Code::UnknownHelper,
                    Some(pc),
                    format!("helper {id} ({}) is a duet userspace helper, only for http programs", proto.name),
                )
                .help(format!(
                    "http helpers work on an HTTP exchange in duet's sidecar; put the program in a duet/http_request, duet/http_response or duet/route section (this is a {ty} program)"
                )),
                Refusal::ReadOnlyRoute => Diagnostic::new(
                    Code::UnknownHelper,
                    Some(pc),
                    format!("helper {id} ({}) changes the exchange, which route programs may only read", proto.name),
                )
                .help("route programs may call http_field and http_header_get; change headers or respond in a duet/http_request or duet/http_response filter"),
            };
            self.fail(st, pc, &[], d);
        }
        self.last_const_key = None;
        let mut map: Option<u32> = None;
        let mut sizes = [None::<Scalar>; 6];
        // Sizes first: a memory argument is checked against the size that follows it.
        for (i, arg) in proto.args.iter().enumerate() {
            let r = (i + 1) as u8;
            if let Arg::Size { zero_ok } = arg {
                let reg = self.read(st, pc, r);
                sizes[usize::from(r)] = Some(self.size_arg(st, pc, proto, r, &reg, *zero_ok));
            }
        }
        let mut alloc = None;
        let mut released = None;
        for (i, arg) in proto.args.iter().enumerate() {
            let r = (i + 1) as u8;
            match arg {
                Arg::Size { .. } => {}
                Arg::MapHandle => {
                    let reg = self.read(st, pc, r);
                    match reg.ty {
                        RegType::MapHandle { map: m } if reg.off == 0 => {
                            map = Some(m);
                            if let Some(info) = self.ctx.maps.get(m as usize)
                                && !proto.accepts_map(info.map_type)
                            {
                                let d = Diagnostic::new(
                                    Code::BadMap,
                                    Some(pc),
                                    format!(
                                        "{} cannot be used with map `{}` of type {}",
                                        proto.name,
                                        info.name,
                                        duet_object::map_type_name(info.map_type)
                                    ),
                                )
                                .help(map_help(proto, info.map_type));
                                self.fail(st, pc, &[r], d);
                            }
                        }
                        _ => {
                            let d = Diagnostic::new(
                                Code::HelperArgs,
                                Some(pc),
                                format!("{} expects a map handle in R{r}, found {}", proto.name, reg.ty.describe()),
                            )
                            .help(
                                "load the map with `lddw rX, map_fd N` (in C, pass `&my_map`) directly before the call",
                            );
                            self.fail(st, pc, &[r], d);
                        }
                    }
                }
                Arg::Key | Arg::Value => {
                    let reg = self.read(st, pc, r);
                    let Some(info) = map.and_then(|m| self.ctx.maps.get(m as usize)) else { continue };
                    let (size, what) =
                        if *arg == Arg::Key { (info.key_size, "key") } else { (info.value_size, "value") };
                    self.mem_arg(st, pc, proto, r, &reg, u64::from(size), what, true);
                }
                Arg::Ctx => {
                    let reg = self.read(st, pc, r);
                    if reg.ty != RegType::Ctx || reg.off != 0 || !reg.val.is_const(0) {
                        let d = Diagnostic::new(
                            Code::HelperArgs,
                            Some(pc),
                            format!("{} expects the unmodified context pointer in R{r}, found {reg}", proto.name),
                        )
                        .help("pass the program's context argument (r1 at entry, `ctx` in C) unchanged; save it in r6-r9 if other calls come first");
                        self.fail(st, pc, &[r], d);
                    }
                }
                Arg::Scalar => {
                    let reg = self.read(st, pc, r);
                    if reg.ty.is_pointer() && !self.allow_ptr_leaks() {
                        let d = Diagnostic::new(
                            Code::PointerLeak,
                            Some(pc),
                            format!("{} argument {r} must be a number, but R{r} is {}", proto.name, reg.ty.describe()),
                        )
                        .help("passing a pointer where the helper expects a number would reveal its address");
                        self.fail(st, pc, &[r], d);
                    }
                }
                Arg::Mem { nullable } | Arg::OutMem { nullable } => {
                    let reg = self.read(st, pc, r);
                    let size = sizes.get(usize::from(r) + 1).copied().flatten().unwrap_or(Scalar::constant(0));
                    if reg.is_scalar() && reg.val.is_const(0) && *nullable && size.is_const(0) {
                        continue;
                    }
                    if size.umax == 0 && reg.is_scalar() && *nullable {
                        continue;
                    }
                    if matches!(arg, Arg::OutMem { .. }) {
                        self.out_mem_arg(st, pc, proto, r, &reg, size);
                    } else {
                        self.mem_arg(st, pc, proto, r, &reg, size.umax, "memory", false);
                    }
                }
                Arg::Func => {
                    let reg = self.read(st, pc, r);
                    if !matches!(reg.ty, RegType::Func { .. }) || reg.off != 0 || !reg.val.is_const(0) {
                        let d = Diagnostic::new(
                            Code::HelperArgs,
                            Some(pc),
                            format!("{} expects a function of the program in R{r}, found {reg}", proto.name),
                        )
                        .help("load the callback with `lddw rX, func` (in C, pass the static function's name) directly before the call");
                        self.fail(st, pc, &[r], d);
                    }
                }
                Arg::StackOrNull => {
                    let reg = self.read(st, pc, r);
                    let ok = matches!(reg.ty, RegType::Stack { .. }) || (reg.is_scalar() && reg.val.is_const(0));
                    if !ok {
                        let d = Diagnostic::new(
                            Code::HelperArgs,
                            Some(pc),
                            format!(
                                "{} expects a stack pointer or NULL in R{r}, found {}",
                                proto.name,
                                reg.ty.describe()
                            ),
                        )
                        .help("pass the callback's context as a pointer to a stack variable (`&ctx` in C), or NULL");
                        self.fail(st, pc, &[r], d);
                    }
                }
                Arg::InOutMem => {
                    let reg = self.read(st, pc, r);
                    let size = sizes.get(usize::from(r) + 1).copied().flatten().unwrap_or(Scalar::constant(0));
                    self.mem_arg(st, pc, proto, r, &reg, size.umax, "memory", false);
                    self.clobber_mem_arg(st, pc, r, &reg, size.umax);
                }
                Arg::OutFixed { size } => {
                    let reg = self.read(st, pc, r);
                    let total = i64::from(reg.off);
                    let aligned = total.rem_euclid(i64::from(*size)) == 0 && reg.val.var.is_aligned(u64::from(*size));
                    if reg.ty.is_pointer() && !aligned {
                        let d = Diagnostic::new(
                            Code::HelperArgs,
                            Some(pc),
                            format!("{} needs an {size}-byte aligned pointer in R{r}, found {reg}", proto.name),
                        )
                        .help(format!(
                            "pass the address of a naturally aligned {size}-byte variable (`long res;` on the stack)"
                        ));
                        self.fail(st, pc, &[r], d);
                    }
                    self.out_mem_arg(st, pc, proto, r, &reg, Scalar::constant(u64::from(*size)));
                }
                Arg::AllocSize => {
                    let reg = self.read(st, pc, r);
                    match reg.as_const() {
                        Some(v) if v <= u64::from(u32::MAX) => alloc = Some(v as u32),
                        _ => {
                            let d = Diagnostic::new(
                                Code::HelperArgs,
                                Some(pc),
                                format!("{} needs a constant size in R{r}, found {reg}", proto.name),
                            )
                            .help("reserve a fixed-size record (`sizeof(struct event)`); use bpf_ringbuf_output for variable sizes");
                            self.fail(st, pc, &[r], d);
                        }
                    }
                }
                Arg::Release => {
                    let reg = self.read(st, pc, r);
                    match reg.ty {
                        RegType::Record { .. } if reg.ref_id != 0 && reg.off == 0 && reg.val.is_const(0) => {
                            released = Some(reg.ref_id);
                        }
                        RegType::Record { .. } => {
                            let d = Diagnostic::new(
                                Code::HelperArgs,
                                Some(pc),
                                format!(
                                    "{} needs the record pointer exactly as reserved, but R{r} is offset ({reg})",
                                    proto.name
                                ),
                            )
                            .help("pass the pointer bpf_ringbuf_reserve returned, not a pointer into the record");
                            self.fail(st, pc, &[r], d);
                        }
                        RegType::RecordOrNull { .. } => {
                            let d = Diagnostic::new(
                                Code::NullCheck,
                                Some(pc),
                                format!("{} is passed R{r}, a record that may be NULL", proto.name),
                            )
                            .help("bpf_ringbuf_reserve returns NULL when the ring buffer is full: check `if (!rec) return ...;` first");
                            self.fail(st, pc, &[r], d);
                        }
                        _ => {
                            let d = Diagnostic::new(
                                Code::HelperArgs,
                                Some(pc),
                                format!(
                                    "{} expects a record from bpf_ringbuf_reserve in R{r}, found {}",
                                    proto.name,
                                    reg.ty.describe()
                                ),
                            );
                            self.fail(st, pc, &[r], d);
                        }
                    }
                }
            }
        }

        if proto.id == 12 && !st.refs.is_empty() {
            let d = Diagnostic::new(
                Code::ReferenceLeak,
                Some(pc),
                "a tail call while holding a ring buffer record: the record would never be released",
            )
            .help("submit or discard the record before bpf_tail_call");
            self.fail(st, pc, &[], d);
        }
        if let Some(ref_id) = released {
            st.refs.retain(|h| h.id != ref_id);
            st.for_each_reg(|r| {
                if r.ref_id == ref_id {
                    *r = Reg { ty: RegType::Stale { at: pc as u32, was: StaleKind::Record }, ..Reg::NOT_INIT };
                }
            });
        }
        if proto.changes_packet {
            st.for_each_reg(|r| {
                if matches!(r.ty, RegType::Packet | RegType::PacketMeta | RegType::PacketEnd) {
                    *r = Reg { ty: RegType::Stale { at: pc as u32, was: StaleKind::Packet }, ..Reg::NOT_INIT };
                }
            });
        }
        self.clobber_call(st, pc);
        let r0 = match proto.ret {
            Ret::Scalar => Reg::scalar(Scalar::UNKNOWN),
            Ret::Bounded(max) => Reg::scalar(Scalar::urange(0, max)),
            Ret::Void => Reg::clobbered(pc),
            Ret::MapValueOrNull => match map {
                Some(m) => {
                    if self.lookup_never_null(m) {
                        Reg::pointer(RegType::MapValue { map: m })
                    } else {
                        Reg { id: self.new_id(), ..Reg::pointer(RegType::MapValueOrNull { map: m }) }
                    }
                }
                None => Reg::scalar(Scalar::UNKNOWN),
            },
            Ret::RecordOrNull => match alloc {
                Some(size) => {
                    let id = self.new_id();
                    st.refs.push(HeldRef { id, pc: pc as u32 });
                    Reg { id, ref_id: id, ..Reg::pointer(RegType::RecordOrNull { size }) }
                }
                None => Reg::scalar(Scalar::UNKNOWN),
            },
        };
        *st.reg_mut(0) = r0;
    }

    /// Whether the lookup in the call at hand cannot fail: an array and a constant key in range
    /// on the stack (the kernel elides the NULL check in the same case).
    fn lookup_never_null(&self, map: u32) -> bool {
        let Some(info) = self.ctx.maps.get(map as usize) else { return false };
        if !helpers::lookup_never_null(info.map_type) || info.key_size != 4 {
            return false;
        }
        // r2 is clobbered by now; `mem_arg` recorded the key while checking it.
        matches!(self.last_const_key, Some(k) if k < u64::from(info.max_entries))
    }

    fn size_arg(&mut self, st: &State, pc: usize, proto: &Proto, r: u8, reg: &Reg, zero_ok: bool) -> Scalar {
        if reg.ty.is_pointer() {
            let d = Diagnostic::new(
                Code::HelperArgs,
                Some(pc),
                format!("{} expects a size in R{r}, found {}", proto.name, reg.ty.describe()),
            );
            self.fail(st, pc, &[r], d);
            return Scalar::constant(0);
        }
        let v = reg.val;
        if v.smin < 0 {
            let d = Diagnostic::new(Code::HelperArgs, Some(pc), format!("the size in R{r} may be negative ({v})"))
                .help("use an unsigned type for sizes, or check `if (size < 0) return ...;`");
            self.fail(st, pc, &[r], d);
            return Scalar::constant(0);
        }
        if v.umax >= MAX_VAR_OFF as u64 {
            let d = Diagnostic::new(Code::HelperArgs, Some(pc), format!("the size in R{r} has no upper bound ({v})"))
                .help("bound the size first (`if (len > MAX) return ...;` or `len &= MASK`)");
            self.fail(st, pc, &[r], d);
            return Scalar::constant(0);
        }
        if !zero_ok && v.umin == 0 {
            let d = Diagnostic::new(Code::HelperArgs, Some(pc), format!("the size in R{r} may be zero ({v})"))
                .help(format!("{} needs at least one byte", proto.name));
            self.fail(st, pc, &[r], d);
        }
        v
    }

    /// Checks that `reg` points to `size` readable (and, for the stack, initialised) bytes.
    #[allow(clippy::too_many_arguments, reason = "the argument's description is part of the message")]
    fn mem_arg(
        &mut self,
        st: &mut State,
        pc: usize,
        proto: &Proto,
        r: u8,
        reg: &Reg,
        size: u64,
        what: &str,
        key_like: bool,
    ) {
        self.last_const_key = None;
        // The kernel checks this first, whatever the size (`check_func_arg`).
        if reg.ty.is_packet() && !proto.pkt_access {
            let d = Diagnostic::new(
                Code::HelperArgs,
                Some(pc),
                format!(
                    "{} is passed R{r}, a packet pointer, as its {what}: helper access to the packet is not allowed",
                    proto.name
                ),
            )
            .help(format!(
                "the kernel lets only some helpers (map lookup/update/delete, bpf_csum_diff) read the packet; copy the bytes to the stack or a map value first and pass that to {}",
                proto.name
            ));
            self.fail(st, pc, &[r], d);
            return;
        }
        if size == 0 {
            return;
        }
        let size32 = u32::try_from(size).unwrap_or(u32::MAX);
        match reg.ty {
            RegType::Stack { frame } => {
                let Some((lo, hi)) = self.stack_range(st, pc, r, reg, 0, size32, Access::Read, false) else { return };
                let f = &st.frames[usize::from(frame)];
                let mut uninit = None;
                let mut has_ptr = false;
                let mut key = [0u8; 8];
                let mut key_known = hi - lo <= 8;
                for addr in lo..hi {
                    let (slot_i, b) = slot_of(addr);
                    let slot = f.slot(slot_i);
                    let spill = slot.spill_size();
                    match slot.bytes[b] {
                        ByteKind::Invalid => {
                            uninit.get_or_insert(addr);
                            key_known = false;
                        }
                        ByteKind::Spill if b < spill => {
                            if slot.has_pointer() {
                                has_ptr = true;
                            }
                            match slot.spill.and_then(|s| s.as_const()) {
                                Some(c) if (addr - lo) < 8 => key[(addr - lo) as usize] = (c >> (8 * b)) as u8,
                                _ => key_known = false,
                            }
                        }
                        ByteKind::Zero => {}
                        _ => key_known = false,
                    }
                }
                if let Some(addr) = uninit
                    && !self.allow_uninit_stack()
                {
                    let d = Diagnostic::new(
                        Code::UninitStack,
                        Some(pc),
                        format!("{} reads {size} bytes of {what} at fp{lo}, but the byte at fp{addr} was never written", proto.name),
                    )
                    .help(format!("initialise the whole {what} before the call (e.g. `= {{}}` or memset), including padding between fields"));
                    self.fail(st, pc, &[r], d);
                } else if has_ptr && !self.allow_ptr_leaks() {
                    let d = Diagnostic::new(
                        Code::PointerLeak,
                        Some(pc),
                        format!("the {what} passed to {} contains a pointer spilled to the stack", proto.name),
                    )
                    .help(
                        "store numbers, not pointers, in maps and helper buffers: a pointer there reveals an address",
                    );
                    self.fail(st, pc, &[r], d);
                }
                if key_like && key_known && size == 4 {
                    self.last_const_key = Some(u64::from(u32::from_le_bytes([key[0], key[1], key[2], key[3]])));
                }
                self.facts[pc].mem = merge_region(self.facts[pc].mem, MemRegion::Stack);
            }
            RegType::Packet | RegType::PacketMeta => {
                self.packet_access(st, pc, r, reg, 0, size32, Access::Read);
            }
            RegType::MapValue { map } => {
                self.bounded_access(st, pc, r, reg, 0, size32, Access::Read, Bounds::Map(map));
            }
            RegType::Record { size: rsize } => {
                self.bounded_access(st, pc, r, reg, 0, size32, Access::Read, Bounds::Record(rsize));
            }
            RegType::MapValueOrNull { .. } | RegType::RecordOrNull { .. } => {
                let d = Diagnostic::new(
                    Code::NullCheck,
                    Some(pc),
                    format!("{} is passed R{r} as its {what}, but R{r} may be NULL", proto.name),
                )
                .help("check the pointer against NULL before passing it");
                self.fail(st, pc, &[r], d);
            }
            _ => {
                let d = Diagnostic::new(
                    Code::HelperArgs,
                    Some(pc),
                    format!(
                        "{} expects a pointer to {size} bytes of {what} in R{r}, found {}",
                        proto.name,
                        reg.ty.describe()
                    ),
                )
                .help(format!(
                    "pass a pointer to the {what}: a stack buffer (`&key` in C), a map value or packet bytes"
                ));
                self.fail(st, pc, &[r], d);
            }
        }
    }

    /// After a helper that may write through `reg` (`size` bytes, already checked readable):
    /// the memory must be writable, and stack bytes there are no longer tracked.
    fn clobber_mem_arg(&mut self, st: &mut State, pc: usize, r: u8, reg: &Reg, size: u64) {
        if size == 0 {
            return;
        }
        let size32 = u32::try_from(size).unwrap_or(u32::MAX);
        match reg.ty {
            RegType::Stack { frame } => {
                let Some((lo, hi)) = self.stack_range(st, pc, r, reg, 0, size32, Access::Write, false) else { return };
                let frame = usize::from(frame);
                if frame >= st.frames.len() {
                    return;
                }
                for addr in lo..hi {
                    let (si, b) = slot_of(addr);
                    let slot = st.frames[frame].slot_mut(si);
                    scrub_spill(slot);
                    slot.bytes[b] = ByteKind::Misc;
                }
            }
            RegType::MapValue { map } => {
                self.bounded_access(st, pc, r, reg, 0, size32, Access::Write, Bounds::Map(map));
            }
            _ => {}
        }
    }

    /// Checks that `reg` points to writable memory of `size` bytes for a helper to fill (the
    /// kernel's raw-mode memory arguments), and records the stack bytes it certainly writes as
    /// initialised. The helpers write the whole buffer (their value, then zeros).
    fn out_mem_arg(&mut self, st: &mut State, pc: usize, proto: &Proto, r: u8, reg: &Reg, size: Scalar) {
        if size.umax == 0 {
            return;
        }
        let size32 = u32::try_from(size.umax).unwrap_or(u32::MAX);
        match reg.ty {
            RegType::Stack { frame } => {
                let Some((lo, hi)) = self.stack_range(st, pc, r, reg, 0, size32, Access::Write, false) else { return };
                self.facts[pc].mem = merge_region(self.facts[pc].mem, MemRegion::Stack);
                let frame = usize::from(frame);
                if frame >= st.frames.len() {
                    return;
                }
                let exact = reg.val.as_const().is_some();
                // Bytes the helper surely writes: all of them from a constant offset up to the
                // smallest size; with a variable offset, none for sure.
                let sure_end = if exact { lo + size.umin.min(size.umax) as i64 } else { lo };
                for addr in lo..hi {
                    let (si, b) = slot_of(addr);
                    let slot = st.frames[frame].slot(si);
                    if addr >= sure_end && slot.bytes[b] == ByteKind::Invalid {
                        if exact || self.allow_uninit_stack() {
                            // Maybe written, maybe not: it stays uninitialised (which a
                            // privileged program may read as an unknown number).
                            continue;
                        }
                        let d = Diagnostic::new(
                            Code::UninitStack,
                            Some(pc),
                            format!(
                                "{} may fill fp{lo}..fp{hi} through R{r}, a variable offset, which may leave fp{addr} unwritten",
                                proto.name
                            ),
                        )
                        .help("pass a buffer at a constant stack offset, or initialise the whole range first");
                        self.fail(st, pc, &[r], d);
                        return;
                    }
                    let slot = st.frames[frame].slot_mut(si);
                    scrub_spill(slot);
                    slot.bytes[b] = ByteKind::Misc;
                }
            }
            RegType::MapValue { map } => {
                self.bounded_access(st, pc, r, reg, 0, size32, Access::Write, Bounds::Map(map));
            }
            RegType::Record { size: rsize } => {
                self.bounded_access(st, pc, r, reg, 0, size32, Access::Write, Bounds::Record(rsize));
            }
            RegType::MapValueOrNull { .. } | RegType::RecordOrNull { .. } => {
                let d = Diagnostic::new(
                    Code::NullCheck,
                    Some(pc),
                    format!("{} is passed R{r} as its buffer, but R{r} may be NULL", proto.name),
                )
                .help("check the pointer against NULL before passing it");
                self.fail(st, pc, &[r], d);
            }
            _ => {
                let d = Diagnostic::new(
                    Code::HelperArgs,
                    Some(pc),
                    format!(
                        "{} expects a pointer to {} writable bytes in R{r}, found {}",
                        proto.name,
                        size.umax,
                        reg.ty.describe()
                    ),
                )
                .help(format!(
                    "pass a buffer {} can fill: a stack buffer (`char buf[64]` in C) or a writable map value",
                    proto.name
                ));
                self.fail(st, pc, &[r], d);
            }
        }
    }

    fn ld_imm64(&mut self, st: &mut State, pc: usize, insn: &Insn) {
        let dst = insn.dst;
        let index = insn.imm as u32;
        let unbound = self.ctx.unbound_map_loads.iter().find(|(slot, _)| *slot == pc).map(|(_, fd)| *fd);
        let loaded = match insn.pseudo_src() {
            Some(PseudoSrc::Imm64) | None => Ok(Reg::scalar(Scalar::constant(insn.imm as u64))),
            Some(_) if let Some(fd) = unbound => {
                let d = Diagnostic::new(
                    Code::BadMap,
                    Some(pc),
                    format!(
                        "the lddw names map fd {fd} directly, with no relocation to a map of the object: fd {fd} is not pointing to valid bpf_map"
                    ),
                )
                .help("refer to the map by its symbol (`&my_map` in C) so that the compiler emits a relocation and the loader binds the load to that map; a file descriptor written into the bytecode names no map of the object");
                Err(d)
            }
            Some(PseudoSrc::MapFd | PseudoSrc::MapIdx) => {
                if (index as usize) < self.ctx.maps.len() {
                    Ok(Reg::pointer(RegType::MapHandle { map: index }))
                } else {
                    Err(self.bad_map_ref(pc, index))
                }
            }
            Some(PseudoSrc::MapValue | PseudoSrc::MapIdxValue) => {
                let off = (insn.imm as u64 >> 32) as u32;
                match self.ctx.maps.get(index as usize) {
                    None => Err(self.bad_map_ref(pc, index)),
                    Some(info)
                        if info.max_entries != 1
                            || info.map_type != helpers::map_type::ARRAY
                            || off >= info.value_size =>
                    {
                        let d = Diagnostic::new(
                            Code::BadMap,
                            Some(pc),
                            format!("direct value address of map `{}` at offset {off} is not available", info.name),
                        )
                        .help(
                            "only single-entry array maps (global data) can be addressed directly, within their value",
                        );
                        Err(d)
                    }
                    Some(_) => Ok(Reg { off: off as i32, ..Reg::pointer(RegType::MapValue { map: index }) }),
                }
            }
            Some(PseudoSrc::Func) => {
                let target = usize::try_from(crate::cfg::func_target(pc, insn)).ok();
                match target.and_then(|t| self.cfg.subprog_at(t)) {
                    Some(subprog) => Ok(Reg::pointer(RegType::Func { subprog: subprog as u32 })),
                    // The static pass made every function target a subprogram entry.
                    None => {
                        let d = Diagnostic::new(
                            Code::BadControlFlow,
                            Some(pc),
                            "the loaded function is not a function of the program",
                        );
                        Err(d)
                    }
                }
            }
            Some(other) => {
                let d = Diagnostic::new(
                    Code::Unsupported,
                    Some(pc),
                    format!("lddw of a {other:?} reference is not supported by duet"),
                )
                .help("duet supports map references (map_fd, map_value), functions for bpf_loop and 64-bit constants; BTF ids are not available");
                Err(d)
            }
        };
        match loaded {
            Ok(reg) => *st.reg_mut(dst) = reg,
            Err(d) => self.fail_unknown(st, pc, &[], dst, d),
        }
    }

    /// The diagnostic for a reference to map `index`, which the program does not have.
    fn bad_map_ref(&self, pc: usize, index: u32) -> Diagnostic {
        let n = self.ctx.maps.len();
        Diagnostic::new(
            Code::BadMap,
            Some(pc),
            format!("the instruction refers to map {index}, but the program has {n} map(s)"),
        )
        .help("map references must come from the object's relocations (duet-object resolves them); check that the map is defined in the same object")
    }

    fn ld_abs(&mut self, st: &mut State, pc: usize, insn: &Insn) {
        if !matches!(self.ctx.program_type, ProgramType::SocketFilter | ProgramType::SchedCls) {
            let d = Diagnostic::new(
                Code::Unsupported,
                Some(pc),
                format!(
                    "legacy packet loads (ldabs/ldind) are not allowed in {} programs",
                    self.ctx.program_type.name()
                ),
            )
            .help("read the packet through ctx->data after checking the bounds against ctx->data_end");
            self.fail(st, pc, &[], d);
        } else if self.cfg.has_local_calls {
            let d = Diagnostic::new(
                Code::Unsupported,
                Some(pc),
                "legacy packet loads (ldabs/ldind) cannot be mixed with bpf-to-bpf calls",
            )
            .help("inline the functions (`static __always_inline`) or use bpf_skb_load_bytes");
            self.fail(st, pc, &[], d);
        }
        let r6 = self.read(st, pc, 6);
        if r6.ty != RegType::Ctx || r6.off != 0 {
            let d = Diagnostic::new(
                Code::HelperArgs,
                Some(pc),
                format!("legacy packet loads need the context pointer in R6, found {r6}"),
            )
            .help("copy r1 to r6 at the start of the program (`r6 = r1`) and keep it there");
            self.fail(st, pc, &[6], d);
        }
        if insn.op.form() == Form::LdInd {
            let src = self.read(st, pc, insn.src);
            if src.ty.is_pointer() {
                let d = Diagnostic::new(
                    Code::PointerLeak,
                    Some(pc),
                    format!("the offset register R{} of a legacy packet load is {}", insn.src, src.ty.describe()),
                );
                self.fail(st, pc, &[insn.src], d);
            }
        }
        if !st.refs.is_empty() {
            let d = Diagnostic::new(
                Code::ReferenceLeak,
                Some(pc),
                "a legacy packet load can end the program while a ring buffer record is held",
            )
            .help("release the record before ldabs/ldind");
            self.fail(st, pc, &[], d);
        }
        let bytes = match insn.op {
            Op::LdAbsB | Op::LdIndB => 1,
            Op::LdAbsH | Op::LdIndH => 2,
            _ => 4,
        };
        self.clobber_call(st, pc);
        *st.reg_mut(0) = Reg::scalar(Scalar::unknown_of_size(bytes));
    }

    // --- memory ---

    fn load(&mut self, st: &mut State, pc: usize, insn: &Insn) {
        let (size, signed) = match insn.op {
            Op::LdxB => (1, false),
            Op::LdxH => (2, false),
            Op::LdxW => (4, false),
            Op::LdxDw => (8, false),
            Op::LdxSB => (1, true),
            Op::LdxSH => (2, true),
            _ => (4, true),
        };
        let ptr = self.read(st, pc, insn.src);
        let val = self.access(st, pc, insn.src, &ptr, insn.off, size, Access::Read, None);
        let mut out = val.unwrap_or(Reg::scalar(Scalar::unknown_of_size(size)));
        if signed && out.is_scalar() {
            out.val = out.val.sign_extend(size, false);
            out.id = 0;
        }
        *st.reg_mut(insn.dst) = out;
    }

    fn store(&mut self, st: &mut State, pc: usize, insn: &Insn) {
        let size = match insn.op {
            Op::StB | Op::StxB => 1,
            Op::StH | Op::StxH => 2,
            Op::StW | Op::StxW => 4,
            _ => 8,
        };
        let value = if insn.op.form() == Form::St {
            Reg::scalar(Scalar::constant(insn.imm as u64))
        } else {
            self.read(st, pc, insn.src)
        };
        let ptr = self.read(st, pc, insn.dst);
        self.access(st, pc, insn.dst, &ptr, insn.off, size, Access::Write, Some(value));
    }

    fn atomic(&mut self, st: &mut State, pc: usize, insn: &Insn) {
        let size = if insn.op.spec().code == 0xc3 { 4 } else { 8 };
        let src = self.read(st, pc, insn.src);
        if src.ty.is_pointer() && !self.allow_ptr_leaks() {
            let d = Diagnostic::new(
                Code::PointerLeak,
                Some(pc),
                format!("atomic operation with R{}, which is {}", insn.src, src.ty.describe()),
            )
            .help("atomic operations work on numbers; storing a pointer would reveal its address");
            self.fail(st, pc, &[insn.src], d);
        }
        let cmpxchg = matches!(insn.op, Op::AtomicCmpXchgW | Op::AtomicCmpXchgDw);
        if cmpxchg {
            let r0 = self.read(st, pc, 0);
            if r0.ty.is_pointer() && !self.allow_ptr_leaks() {
                let d = Diagnostic::new(Code::PointerLeak, Some(pc), "compare-and-exchange expects a number in R0");
                self.fail(st, pc, &[0], d);
            }
        }
        let ptr = self.read(st, pc, insn.dst);
        let total = i64::from(ptr.off) + i64::from(insn.off);
        if total.rem_euclid(i64::from(size)) != 0 || !ptr.val.var.is_aligned(u64::from(size)) {
            let d = Diagnostic::new(
                Code::InvalidPointer,
                Some(pc),
                format!("misaligned {size}-byte atomic operation at offset {total} of R{}", insn.dst),
            )
            .help(format!("atomic operations need {size}-byte aligned addresses"));
            self.fail(st, pc, &[insn.dst], d);
        }
        match ptr.ty {
            RegType::Stack { .. } | RegType::MapValue { .. } | RegType::Record { .. } => {
                self.access(
                    st,
                    pc,
                    insn.dst,
                    &ptr,
                    insn.off,
                    size,
                    Access::Atomic,
                    Some(Reg::scalar(Scalar::unknown_of_size(size))),
                );
            }
            RegType::NotInit | RegType::Stale { .. } => {}
            RegType::MapValueOrNull { .. } | RegType::RecordOrNull { .. } | RegType::Scalar => {
                self.access(st, pc, insn.dst, &ptr, insn.off, size, Access::Atomic, None);
            }
            other => {
                let d = Diagnostic::new(
                    Code::InvalidPointer,
                    Some(pc),
                    format!("atomic operations are not allowed on {}", other.describe()),
                )
                .help("atomic operations work on the stack, map values and ring buffer records");
                self.fail(st, pc, &[insn.dst], d);
            }
        }
        let result = Reg::scalar(Scalar::unknown_of_size(size));
        if cmpxchg {
            *st.reg_mut(0) = result;
        } else if atomic_fetches(insn.op) {
            *st.reg_mut(insn.src) = result;
        }
    }

    /// Checks a load, store or atomic through `ptr` (register `r`) at `insn_off` of `size`
    /// bytes; returns the loaded value for reads.
    #[allow(clippy::too_many_arguments, reason = "mirrors the instruction's fields")]
    fn access(
        &mut self,
        st: &mut State,
        pc: usize,
        r: u8,
        ptr: &Reg,
        insn_off: i16,
        size: u32,
        kind: Access,
        value: Option<Reg>,
    ) -> Option<Reg> {
        if kind != Access::Read
            && let Some(v) = value
            && v.ty.is_pointer()
            && !matches!(ptr.ty, RegType::Stack { .. })
            && !self.allow_ptr_leaks()
        {
            let d = Diagnostic::new(
                Code::PointerLeak,
                Some(pc),
                format!("storing {} into {} would leak its address", v.ty.describe(), ptr.ty.describe()),
            )
            .help("only the stack may hold pointers; store numbers (or indices) in maps, packets and records");
            self.fail(st, pc, &[r], d);
        }
        match ptr.ty {
            RegType::Stack { .. } => self.stack_access(st, pc, r, ptr, insn_off, size, kind, value),
            RegType::Ctx => self.ctx_access(st, pc, r, ptr, insn_off, size, kind),
            RegType::Packet | RegType::PacketMeta => self.packet_access(st, pc, r, ptr, insn_off, size, kind),
            RegType::MapValue { map } => self.bounded_access(st, pc, r, ptr, insn_off, size, kind, Bounds::Map(map)),
            RegType::Record { size: rsize } => {
                self.bounded_access(st, pc, r, ptr, insn_off, size, kind, Bounds::Record(rsize))
            }
            RegType::MapValueOrNull { .. } | RegType::RecordOrNull { .. } => {
                let what = if matches!(ptr.ty, RegType::MapValueOrNull { .. }) {
                    "bpf_map_lookup_elem returns NULL when the key is absent"
                } else {
                    "bpf_ringbuf_reserve returns NULL when the ring buffer is full"
                };
                let d = Diagnostic::new(
                    Code::NullCheck,
                    Some(pc),
                    format!("{} through R{r}, which may be NULL ({})", kind.verb(), ptr.ty.name()),
                )
                .help(format!("{what}: check `if (!ptr) return ...;` before using the pointer"));
                self.fail(st, pc, &[r], d);
                None
            }
            RegType::PacketEnd => {
                let d = Diagnostic::new(
                    Code::InvalidPointer,
                    Some(pc),
                    format!("{} through R{r}, which is data_end", kind.verb()),
                )
                .help("data_end marks the first byte after the packet; it may only be compared with packet pointers");
                self.fail(st, pc, &[r], d);
                None
            }
            RegType::MapHandle { .. } => {
                let d = Diagnostic::new(
                    Code::InvalidPointer,
                    Some(pc),
                    format!("{} through R{r}, which is a map handle, not a map value", kind.verb()),
                )
                .help("call bpf_map_lookup_elem(map, &key) and check the result for NULL to get a value pointer");
                self.fail(st, pc, &[r], d);
                None
            }
            RegType::Scalar => {
                let extra = if ptr.val.is_const(0) { ", here NULL" } else { "" };
                let d = Diagnostic::new(
                    Code::InvalidPointer,
                    Some(pc),
                    format!("{} through R{r}, which is a number{extra} ({}), not a pointer", kind.verb(), ptr.val),
                )
                .help("memory can be accessed only through pointers the verifier knows: the context, the stack, packet data after a bounds check, map values and ring buffer records");
                self.fail(st, pc, &[r], d);
                None
            }
            RegType::Func { .. } => {
                let d = Diagnostic::new(
                    Code::InvalidPointer,
                    Some(pc),
                    format!("{} through R{r}, which is a function pointer", kind.verb()),
                )
                .help("a function loaded with `lddw rX, func` may only be passed to a helper that calls it (bpf_loop)");
                self.fail(st, pc, &[r], d);
                None
            }
            RegType::NotInit | RegType::Stale { .. } => None,
        }
    }

    #[allow(clippy::too_many_arguments, reason = "mirrors the instruction's fields")]
    fn ctx_access(
        &mut self,
        st: &State,
        pc: usize,
        r: u8,
        ptr: &Reg,
        insn_off: i16,
        size: u32,
        kind: Access,
    ) -> Option<Reg> {
        self.facts[pc].mem = merge_region(self.facts[pc].mem, MemRegion::Context);
        let ty = self.ctx.program_type;
        if !ptr.val.is_const(0) {
            let d = Diagnostic::new(
                Code::ContextAccess,
                Some(pc),
                format!("context access through R{r} with a variable offset ({})", ptr.val),
            )
            .help("context fields must be read at constant offsets (`ctx->field`)");
            return self.fail_access(st, pc, r, d);
        }
        let off = i64::from(ptr.off) + i64::from(insn_off);
        let ctx_name = ty.context_name();
        if kind != Access::Read {
            let d = Diagnostic::new(
                Code::ContextAccess,
                Some(pc),
                format!(
                    "{} to {ctx_name} at offset {off}: the context is read-only for {} programs",
                    kind.verb(),
                    ty.name()
                ),
            )
            .help("copy the field into a local variable and change that instead");
            return self.fail_access(st, pc, r, d);
        }
        let field = match ty {
            ProgramType::Xdp => match off {
                0 => Some(("data", Reg::pointer(RegType::Packet))),
                4 => Some(("data_end", Reg::pointer(RegType::PacketEnd))),
                8 => Some(("data_meta", Reg::pointer(RegType::PacketMeta))),
                12 => Some(("ingress_ifindex", Reg::scalar(Scalar::unknown_of_size(4)))),
                16 => Some(("rx_queue_index", Reg::scalar(Scalar::unknown_of_size(4)))),
                _ => None,
            },
            ProgramType::SocketFilter | ProgramType::SchedCls | ProgramType::CgroupSkb => crate::skb_field(ty, off)
                .map(|(name, value)| {
                    let reg = match value {
                        crate::SkbValue::Data => Reg::pointer(RegType::Packet),
                        crate::SkbValue::DataEnd => Reg::pointer(RegType::PacketEnd),
                        crate::SkbValue::Scalar(bytes) => Reg::scalar(Scalar::unknown_of_size(bytes)),
                    };
                    (name, reg)
                }),
            ProgramType::HttpRequest | ProgramType::HttpResponse | ProgramType::Route => {
                let name = usize::try_from(off).ok().filter(|o| o % 4 == 0).and_then(|o| HTTP_MD_FIELDS.get(o / 4));
                name.map(|n| (*n, Reg::scalar(Scalar::unknown_of_size(4))))
            }
            ProgramType::KProbe => {
                // The kernel's kprobe_prog_is_valid_access: any aligned read inside pt_regs.
                let size = i64::from(size);
                if off >= 0 && off % size == 0 && off + size <= PT_REGS_SIZE {
                    return Some(Reg::scalar(Scalar::unknown_of_size(size as u32)));
                }
                None
            }
        };
        match field {
            Some((_, reg)) if size == 4 => Some(reg),
            Some((name, _)) => {
                let d = Diagnostic::new(
                    Code::ContextAccess,
                    Some(pc),
                    format!("{size}-byte read of {ctx_name}.{name}, a 4-byte field"),
                )
                .help(format!("read {ctx_name} fields with 32-bit loads (`__u32 v = ctx->{name};`)"));
                self.fail(st, pc, &[r], d);
                None
            }
            None => {
                let why = match (ty, off) {
                    (ProgramType::Xdp, 20) => {
                        "egress_ifindex is only readable by programs attached to a devmap".to_owned()
                    }
                    (ProgramType::SocketFilter | ProgramType::SchedCls | ProgramType::CgroupSkb, 0..192) => {
                        crate::skb_refusal(ty, off)
                    }
                    (ProgramType::KProbe, _) => format!(
                        "a {size}-byte read at offset {off} is misaligned or runs past the end of struct pt_regs ({PT_REGS_SIZE} bytes)"
                    ),
                    _ => format!("{ctx_name} has no field at offset {off}"),
                };
                let d = Diagnostic::new(
                    Code::ContextAccess,
                    Some(pc),
                    format!("invalid context read at offset {off}: {why}"),
                )
                .help(format!("{} programs may read: {}", ty.name(), ty.context_fields()));
                self.fail(st, pc, &[r], d);
                None
            }
        }
    }

    #[allow(clippy::too_many_arguments, reason = "mirrors the instruction's fields")]
    fn packet_access(
        &mut self,
        st: &State,
        pc: usize,
        r: u8,
        ptr: &Reg,
        insn_off: i16,
        size: u32,
        kind: Access,
    ) -> Option<Reg> {
        let region = if ptr.ty == RegType::Packet { MemRegion::Packet } else { MemRegion::PacketMeta };
        self.facts[pc].mem = merge_region(self.facts[pc].mem, region);
        if kind == Access::Atomic {
            let d = Diagnostic::new(Code::InvalidPointer, Some(pc), "atomic operations are not allowed on packet data")
                .help("keep counters in map values");
            return self.fail_access(st, pc, r, d);
        }
        if kind != Access::Read && self.ctx.program_type == ProgramType::CgroupSkb {
            let d = Diagnostic::new(
                Code::ReadOnly,
                Some(pc),
                format!("{} of packet data in a cgroup_skb program, which may only read the packet", kind.verb()),
            )
            .help("cgroup_skb programs pass (1) or drop (0) packets; change packets in a TC classifier");
            return self.fail_access(st, pc, r, d);
        }
        let off = i64::from(ptr.off) + i64::from(insn_off);
        let end = off + i64::from(size);
        let what = if ptr.ty == RegType::Packet { "packet" } else { "packet metadata" };
        let base = if ptr.ty == RegType::Packet { "data" } else { "data_meta" };
        let limit = if ptr.ty == RegType::Packet { "data_end" } else { "data" };
        if ptr.val.smin < 0 {
            let d = Diagnostic::new(
                Code::PacketBounds,
                Some(pc),
                format!("{what} {} through R{r}, whose variable offset may be negative ({})", kind.verb(), ptr.val),
            )
            .help("use an unsigned offset, or check `if (off < 0) return ...;` before adding it to the pointer");
            return self.fail_access(st, pc, r, d);
        }
        if off < 0 || end > i64::from(ptr.range) {
            let variable = !ptr.val.is_const(0);
            let mut d = Diagnostic::new(
                Code::PacketBounds,
                Some(pc),
                format!(
                    "{size}-byte {what} {} at offset {off} of R{r} is not proven to lie before {limit}",
                    kind.verb()
                ),
            );
            let at =
                if variable { format!("R{r} (which includes a variable offset {})", ptr.val) } else { base.to_owned() };
            let help = if off < 0 {
                format!(
                    "the access starts {} bytes before the pointer's base; the verifier only allows accesses at or after it",
                    -off
                )
            } else if ptr.range == 0 {
                format!(
                    "no bounds check covers this pointer: check `if ({at} + {end} > {limit}) return ...;` before the {}",
                    kind.verb()
                )
            } else {
                let checked = if ptr.range_pc == u32::MAX {
                    String::new()
                } else {
                    format!(" at {}", self.where_(ptr.range_pc as usize))
                };
                format!(
                    "the bound checked{checked} covers {} bytes from {at}, but this {size}-byte {} at offset {off} needs {end}: check `{at} + {end} > {limit}` first",
                    ptr.range,
                    kind.verb()
                )
            };
            if variable && ptr.range == 0 {
                d = d.note("adding a variable to a packet pointer forgets earlier checks; compare the new pointer with data_end again");
            }
            return self.fail_access(st, pc, r, d.help(help));
        }
        Some(Reg::scalar(Scalar::unknown_of_size(size)))
    }

    #[allow(clippy::too_many_arguments, reason = "mirrors the instruction's fields")]
    fn bounded_access(
        &mut self,
        st: &State,
        pc: usize,
        r: u8,
        ptr: &Reg,
        insn_off: i16,
        size: u32,
        kind: Access,
        bounds: Bounds,
    ) -> Option<Reg> {
        let (limit, name, region) = match bounds {
            Bounds::Map(m) => {
                let info = self.ctx.maps.get(m as usize)?;
                (info.value_size, format!("map `{}` value", info.name), MemRegion::MapValue { map: m })
            }
            Bounds::Record(s) => (s, "ring buffer record".to_owned(), MemRegion::Record),
        };
        self.facts[pc].mem = merge_region(self.facts[pc].mem, region);
        let code = if matches!(bounds, Bounds::Map(_)) { Code::MapValueBounds } else { Code::RecordBounds };
        let off = i64::from(ptr.off) + i64::from(insn_off);
        if ptr.val.umax >= MAX_VAR_OFF as u64 || ptr.val.smin <= -MAX_VAR_OFF {
            let d = Diagnostic::new(
                code,
                Some(pc),
                format!("{} of the {name} through R{r} with an unbounded offset ({})", kind.verb(), ptr.val),
            )
            .help(format!("bound the index first: `if (i >= N) return ...;` with an unsigned type, so that every offset lies within the {limit}-byte value"));
            return self.fail_access(st, pc, r, d);
        }
        let lo = off + ptr.val.smin.min(ptr.val.umax as i64);
        let hi = off + ptr.val.umax as i64 + i64::from(size);
        if lo < 0 || hi > i64::from(limit) {
            let range = if ptr.val.as_const().is_some() {
                format!("bytes {}..{}", lo, hi)
            } else {
                format!("bytes from {lo} up to {hi}")
            };
            let d = Diagnostic::new(
                code,
                Some(pc),
                format!("{size}-byte {} of the {name} ({limit} bytes) may touch {range}", kind.verb()),
            )
            .help(if ptr.val.as_const().is_some() {
                format!("the value is {limit} bytes long; check the offset and the field's size")
            } else {
                format!(
                    "bound the variable offset so that offset + {size} <= {limit} (e.g. `if (i >= {}) return ...;`)",
                    (i64::from(limit) - off - i64::from(size) + 1).max(0)
                )
            });
            return self.fail_access(st, pc, r, d);
        }
        if let Bounds::Map(m) = bounds
            && let Some(info) = self.ctx.maps.get(m as usize)
        {
            if kind != Access::Read && !info.prog_can_write() {
                let d = Diagnostic::new(
                    Code::ReadOnly,
                    Some(pc),
                    format!("{} to map `{}`, which is read-only for programs", kind.verb(), info.name),
                )
                .help("`const` globals (.rodata) and maps created with BPF_F_RDONLY_PROG cannot be written by the program; drop `const` or the flag");
                return self.fail_access(st, pc, r, d);
            }
            if kind != Access::Write && !info.prog_can_read() {
                // An atomic update reads the old value too, so it is refused as well.
                let d = Diagnostic::new(
                    Code::WriteOnly,
                    Some(pc),
                    format!(
                        "{} of map `{}`, which is write-only for programs (BPF_F_WRONLY_PROG): read from map forbidden",
                        kind.verb(),
                        info.name
                    ),
                )
                .help("a map created with BPF_F_WRONLY_PROG can only be written by the program (plain stores); drop the flag to read it");
                return self.fail_access(st, pc, r, d);
            }
            if kind == Access::Read
                && size <= 8
                && let (Some(data), Some(v)) = (&info.frozen_data, ptr.val.as_const())
            {
                // Frozen read-only data is known at load time, as the kernel knows `.rodata`.
                // Only loads (at most 8 bytes) become constants; a helper reading a longer
                // buffer (a `bpf_printk` format string) just needs the bounds proven above.
                let start = usize::try_from(off.saturating_add(v as i64)).ok();
                if let Some(bytes) = start.and_then(|s| data.get(s..s.checked_add(size as usize)?)) {
                    let mut buf = [0u8; 8];
                    buf[..bytes.len()].copy_from_slice(bytes);
                    return Some(Reg::scalar(Scalar::constant(u64::from_le_bytes(buf))));
                }
            }
        }
        Some(Reg::scalar(Scalar::unknown_of_size(size)))
    }

    /// The absolute stack byte range `[lo, hi)` (relative to the frame pointer) an access covers,
    /// after checking bounds and alignment.
    #[allow(clippy::too_many_arguments, reason = "mirrors the instruction's fields")]
    fn stack_range(
        &mut self,
        st: &State,
        pc: usize,
        r: u8,
        ptr: &Reg,
        insn_off: i16,
        size: u32,
        kind: Access,
        aligned: bool,
    ) -> Option<(i64, i64)> {
        let off = i64::from(ptr.off) + i64::from(insn_off);
        let (vlo, vhi) = (ptr.val.smin, ptr.val.smax);
        if vlo <= -MAX_VAR_OFF || vhi >= MAX_VAR_OFF {
            let d = Diagnostic::new(
                Code::StackAccess,
                Some(pc),
                format!("stack {} through R{r} with an unbounded offset ({})", kind.verb(), ptr.val),
            )
            .help("bound the index before adding it to a stack pointer");
            return self.fail_access(st, pc, r, d);
        }
        let lo = off + vlo;
        let hi = off + vhi + i64::from(size);
        if lo < -MAX_STACK || hi > 0 {
            let d = Diagnostic::new(
                if lo < -MAX_STACK { Code::StackLimit } else { Code::StackAccess },
                Some(pc),
                format!("{size}-byte stack {} at fp{lo:+} is outside the 512-byte frame (fp-512 .. fp)", kind.verb()),
            )
            .help(if lo < -MAX_STACK {
                "eBPF gives each function 512 bytes of stack: move large buffers into a per-CPU array map"
            } else {
                "the stack lies below the frame pointer: use negative offsets from r10"
            });
            return self.fail_access(st, pc, r, d);
        }
        if aligned && ptr.val.as_const().is_some() && lo.rem_euclid(i64::from(size)) != 0 {
            let d = Diagnostic::new(
                Code::StackAccess,
                Some(pc),
                format!("misaligned {size}-byte stack {} at fp{lo}", kind.verb()),
            )
            .help(format!("stack accesses must be aligned to their size ({size} bytes)"));
            return self.fail_access(st, pc, r, d);
        }
        if let RegType::Stack { frame } = ptr.ty
            && let Some(f) = st.frames.get(usize::from(frame))
        {
            let depth = (-lo) as u32;
            let sp = f.subprog;
            if let Some(d) = self.stack_depth.get_mut(sp) {
                *d = (*d).max(depth);
            }
        }
        Some((lo, hi))
    }

    #[allow(clippy::too_many_arguments, reason = "mirrors the instruction's fields")]
    fn stack_access(
        &mut self,
        st: &mut State,
        pc: usize,
        r: u8,
        ptr: &Reg,
        insn_off: i16,
        size: u32,
        kind: Access,
        value: Option<Reg>,
    ) -> Option<Reg> {
        self.facts[pc].mem = merge_region(self.facts[pc].mem, MemRegion::Stack);
        let RegType::Stack { frame } = ptr.ty else { return None };
        let frame = usize::from(frame);
        let (lo, hi) = self.stack_range(st, pc, r, ptr, insn_off, size, kind, true)?;
        if frame >= st.frames.len() {
            return None;
        }
        let exact = ptr.val.as_const().is_some();
        if kind != Access::Write {
            // Read (or the read half of an atomic).
            let mut known: u64 = 0;
            let mut all_known = true;
            let mut uninit = None;
            if exact {
                let (si, b) = slot_of(lo);
                let slot = st.frames[frame].slot(si).clone();
                let spill = slot.spill_size();
                if spill > 0 && b < spill {
                    let sreg = slot.spill.unwrap_or(Reg::NOT_INIT);
                    if b == 0 && size as usize == spill && kind == Access::Read {
                        return Some(sreg);
                    }
                    if sreg.ty.is_pointer() {
                        let d = Diagnostic::new(
                            Code::StackAccess,
                            Some(pc),
                            format!("{size}-byte {} of part of a pointer spilled at fp{}", kind.verb(), lo - b as i64),
                        )
                        .help("a spilled pointer must be read back whole, with an 8-byte load");
                        self.fail(st, pc, &[r], d);
                        return Some(Reg::scalar(Scalar::unknown_of_size(size)));
                    }
                }
                for i in 0..size as usize {
                    let bi = b + i;
                    match slot.bytes[bi] {
                        ByteKind::Invalid => {
                            uninit.get_or_insert(lo + i as i64);
                        }
                        ByteKind::Zero => {}
                        ByteKind::Misc => all_known = false,
                        ByteKind::Spill => match slot.spill.and_then(|s| s.as_const()) {
                            Some(c) if bi < 8 => known |= ((c >> (8 * bi)) & 0xff) << (8 * i),
                            _ => all_known = false,
                        },
                    }
                }
            } else {
                all_known = false;
                for addr in lo..hi {
                    let (si, b) = slot_of(addr);
                    let slot = st.frames[frame].slot(si);
                    if slot.bytes[b] == ByteKind::Invalid {
                        uninit.get_or_insert(addr);
                    }
                    if slot.bytes[b] == ByteKind::Spill && slot.has_pointer() && !self.allow_ptr_leaks() {
                        let d = Diagnostic::new(
                            Code::StackAccess,
                            Some(pc),
                            format!("variable-offset stack {} may read part of a spilled pointer", kind.verb()),
                        )
                        .help("keep pointers and indexed buffers in different stack slots");
                        self.fail(st, pc, &[r], d);
                        return Some(Reg::scalar(Scalar::unknown_of_size(size)));
                    }
                }
            }
            if let Some(addr) = uninit
                && !self.allow_uninit_stack()
            {
                let d = Diagnostic::new(
                    Code::UninitStack,
                    Some(pc),
                    format!("{size}-byte stack {} at fp{lo} reads fp{addr}, which was never written", kind.verb()),
                )
                .help("initialise stack variables before reading them (e.g. `struct key k = {};`)");
                self.fail(st, pc, &[r], d);
            }
            if kind == Access::Read {
                return Some(Reg::scalar(if all_known && uninit.is_none() {
                    Scalar::constant(known)
                } else {
                    Scalar::unknown_of_size(size)
                }));
            }
        }
        // Write (or the write half of an atomic).
        let value = value.unwrap_or(Reg::scalar(Scalar::unknown_of_size(size)));
        if let RegType::Stack { frame: pf } = value.ty
            && usize::from(pf) > frame
        {
            let d = Diagnostic::new(
                Code::StackAccess,
                Some(pc),
                "storing a pointer to a called function's stack into its caller's stack",
            )
            .help("the callee's stack ends when it returns; the pointer would dangle");
            self.fail(st, pc, &[r], d);
        }
        if !exact {
            // Privileged, the kernel lets a variable-offset write cover unwritten bytes (they
            // count as written: a privileged read of them is an unknown number either way) and
            // spilled pointers (which become plain bytes).
            let privileged = self.allow_uninit_stack() && self.allow_ptr_leaks();
            for addr in lo..hi {
                let (si, b) = slot_of(addr);
                let slot = st.frames[frame].slot_mut(si);
                if slot.bytes[b] == ByteKind::Invalid && !privileged {
                    let d = Diagnostic::new(
                        Code::UninitStack,
                        Some(pc),
                        format!("variable-offset stack write over fp{lo}..fp{hi} may leave fp{addr} unwritten"),
                    )
                    .help("initialise the whole buffer with constant offsets before writing at variable offsets");
                    return self.fail_access(st, pc, r, d);
                }
            }
            for addr in lo..hi {
                let (si, b) = slot_of(addr);
                let slot = st.frames[frame].slot_mut(si);
                if slot.spill.is_some() && slot.has_pointer() && !privileged {
                    let d = Diagnostic::new(
                        Code::StackAccess,
                        Some(pc),
                        "variable-offset stack write may overwrite part of a spilled pointer",
                    );
                    return self.fail_access(st, pc, r, d);
                }
                scrub_spill(slot);
                slot.bytes[b] = ByteKind::Misc;
            }
            return None;
        }
        let (si, b) = slot_of(lo);
        let size_u = size as usize;
        {
            let slot = st.frames[frame].slot(si);
            let spill = slot.spill_size();
            let overlaps = spill > 0 && b < spill;
            let replaces = b == 0 && size_u >= spill;
            if overlaps && !replaces && slot.has_pointer() && !self.allow_ptr_leaks() {
                let d = Diagnostic::new(
                    Code::StackAccess,
                    Some(pc),
                    format!("{size}-byte {} overwrites part of a pointer spilled at fp{}", kind.verb(), lo - b as i64),
                )
                .help("overwrite a spilled pointer whole (8 bytes), or use another stack slot");
                self.fail(st, pc, &[r], d);
            }
        }
        let slot = st.frames[frame].slot_mut(si);
        if slot.spill.is_some() && (b < slot.spill_size()) {
            scrub_spill(slot);
        }
        if kind == Access::Atomic {
            for byte in &mut slot.bytes[b..b + size_u] {
                *byte = ByteKind::Misc;
            }
            return None;
        }
        if b == 0 && size_u == 8 {
            *slot = Slot { bytes: [ByteKind::Spill; 8], spill: Some(value) };
        } else if value.ty.is_pointer() {
            for byte in &mut slot.bytes[b..b + size_u] {
                *byte = ByteKind::Misc;
            }
            let d = Diagnostic::new(
                Code::PointerLeak,
                Some(pc),
                format!("{size}-byte store of a pointer to the stack: only whole 8-byte spills keep pointers intact"),
            )
            .help("spill pointers with 8-byte aligned stores");
            self.fail(st, pc, &[r], d);
        } else if b == 0 && slot.spill.is_none() {
            let mut v = value;
            v.val = v.val.truncate(size);
            // The spilled bytes are no longer a copy of the register: break the link.
            v.id = 0;
            for byte in &mut slot.bytes[..size_u] {
                *byte = ByteKind::Spill;
            }
            slot.spill = Some(v);
        } else {
            let kind = if value.as_const() == Some(0) { ByteKind::Zero } else { ByteKind::Misc };
            for byte in &mut slot.bytes[b..b + size_u] {
                *byte = kind;
            }
        }
        None
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

/// A small, fast, non-cryptographic hasher for state hashes (FxHash's multiply-rotate).
#[derive(Default)]
struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(buf));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }

    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }

    fn write_i32(&mut self, v: i32) {
        self.write_u64(u64::from(v as u32));
    }

    fn write_i64(&mut self, v: i64) {
        self.write_u64(v as u64);
    }

    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

/// Which bounded region an access is checked against.
#[derive(Clone, Copy)]
enum Bounds {
    Map(u32),
    Record(u32),
}

/// Forgets the value of every number in `cur` that differs from the same one in `old` (registers
/// and spilled numbers of every frame), so that the next state at the same place is covered.
fn widen_changed_scalars(old: &State, cur: &mut State) {
    for (of, cf) in old.frames.iter().zip(cur.frames.iter_mut()) {
        for (o, c) in of.regs.iter().zip(cf.regs.iter_mut()) {
            if o.is_scalar() && c.is_scalar() && o.val != c.val {
                *c = Reg::scalar(Scalar::UNKNOWN);
            }
        }
        for (i, slot) in cf.stack.iter_mut().enumerate() {
            let size = slot.spill_size() as u32;
            if let (Some(o), Some(c)) = (of.stack.get(i).and_then(|s| s.spill), slot.spill.as_mut())
                && size > 0
                && o.is_scalar()
                && c.is_scalar()
                && o.val != c.val
            {
                *c = Reg::scalar(Scalar::unknown_of_size(size));
            }
        }
    }
}

/// Slot index and byte within the slot of the stack byte at `addr` (negative, fp-relative).
fn slot_of(addr: i64) -> (usize, usize) {
    let below = (-addr - 1) as usize;
    let slot = below / 8;
    let b = (addr + 8 * (slot as i64 + 1)) as usize;
    (slot, b)
}

/// Turns a spilled scalar into untracked bytes.
fn scrub_spill(slot: &mut Slot) {
    if slot.spill.is_some() {
        for byte in &mut slot.bytes {
            if *byte == ByteKind::Spill {
                *byte = ByteKind::Misc;
            }
        }
        slot.spill = None;
    }
}

fn merge_region(old: Option<MemRegion>, new: MemRegion) -> Option<MemRegion> {
    match old {
        None => Some(new),
        Some(o) if o == new => Some(o),
        Some(_) => Some(MemRegion::Mixed),
    }
}

fn map_help(proto: &Proto, map_type: u32) -> String {
    match proto.id {
        12 => "bpf_tail_call needs a prog_array map".to_owned(),
        51 => "bpf_redirect_map needs a devmap, devmap_hash, cpumap or xskmap".to_owned(),
        130 | 131 => "ring buffer helpers need a ringbuf map".to_owned(),
        _ if map_type == helpers::map_type::RINGBUF => {
            "ring buffers have no keys: use bpf_ringbuf_reserve/submit or bpf_ringbuf_output".to_owned()
        }
        _ if map_type == helpers::map_type::PROG_ARRAY => "prog_array maps are only for bpf_tail_call".to_owned(),
        _ => "this map type does not support the helper from a program".to_owned(),
    }
}

fn alu_op(op: Op) -> Option<AluOp> {
    Some(match op {
        Op::AddImm | Op::AddReg | Op::Add32Imm | Op::Add32Reg => AluOp::Add,
        Op::SubImm | Op::SubReg | Op::Sub32Imm | Op::Sub32Reg => AluOp::Sub,
        Op::MulImm | Op::MulReg | Op::Mul32Imm | Op::Mul32Reg => AluOp::Mul,
        Op::DivImm | Op::DivReg | Op::Div32Imm | Op::Div32Reg => AluOp::Div,
        Op::SDivImm | Op::SDivReg | Op::SDiv32Imm | Op::SDiv32Reg => AluOp::SDiv,
        Op::ModImm | Op::ModReg | Op::Mod32Imm | Op::Mod32Reg => AluOp::Mod,
        Op::SModImm | Op::SModReg | Op::SMod32Imm | Op::SMod32Reg => AluOp::SMod,
        Op::OrImm | Op::OrReg | Op::Or32Imm | Op::Or32Reg => AluOp::Or,
        Op::AndImm | Op::AndReg | Op::And32Imm | Op::And32Reg => AluOp::And,
        Op::XorImm | Op::XorReg | Op::Xor32Imm | Op::Xor32Reg => AluOp::Xor,
        Op::LshImm | Op::LshReg | Op::Lsh32Imm | Op::Lsh32Reg => AluOp::Lsh,
        Op::RshImm | Op::RshReg | Op::Rsh32Imm | Op::Rsh32Reg => AluOp::Rsh,
        Op::ArshImm | Op::ArshReg | Op::Arsh32Imm | Op::Arsh32Reg => AluOp::Arsh,
        _ => return None,
    })
}

fn op_name(op: AluOp) -> &'static str {
    match op {
        AluOp::Add => "addition",
        AluOp::Sub => "subtraction",
        AluOp::Mul => "multiplication",
        AluOp::Div | AluOp::SDiv => "division",
        AluOp::Mod | AluOp::SMod => "modulo",
        AluOp::Or => "bitwise or",
        AluOp::And => "bitwise and",
        AluOp::Xor => "bitwise xor",
        AluOp::Lsh => "left shift",
        AluOp::Rsh => "right shift",
        AluOp::Arsh => "arithmetic right shift",
    }
}

fn jump_cmp(op: Op) -> Option<Cmp> {
    Some(match op {
        Op::JeqImm | Op::JeqReg | Op::Jeq32Imm | Op::Jeq32Reg => Cmp::Eq,
        Op::JneImm | Op::JneReg | Op::Jne32Imm | Op::Jne32Reg => Cmp::Ne,
        Op::JgtImm | Op::JgtReg | Op::Jgt32Imm | Op::Jgt32Reg => Cmp::Gt,
        Op::JgeImm | Op::JgeReg | Op::Jge32Imm | Op::Jge32Reg => Cmp::Ge,
        Op::JltImm | Op::JltReg | Op::Jlt32Imm | Op::Jlt32Reg => Cmp::Lt,
        Op::JleImm | Op::JleReg | Op::Jle32Imm | Op::Jle32Reg => Cmp::Le,
        Op::JsgtImm | Op::JsgtReg | Op::Jsgt32Imm | Op::Jsgt32Reg => Cmp::Sgt,
        Op::JsgeImm | Op::JsgeReg | Op::Jsge32Imm | Op::Jsge32Reg => Cmp::Sge,
        Op::JsltImm | Op::JsltReg | Op::Jslt32Imm | Op::Jslt32Reg => Cmp::Slt,
        Op::JsleImm | Op::JsleReg | Op::Jsle32Imm | Op::Jsle32Reg => Cmp::Sle,
        Op::JsetImm | Op::JsetReg | Op::Jset32Imm | Op::Jset32Reg => Cmp::Set,
        _ => return None,
    })
}
