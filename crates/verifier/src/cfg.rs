//! Static checks over the control-flow graph, before any state is explored: subprogram
//! boundaries, jumps, reachability, recursion, where states are worth storing (prune points),
//! and which registers are live at each instruction.

use duet_isa::{Form, Insn, Op, Program, PseudoSrc};

use crate::diag::{Code, Diagnostic};
use crate::helpers;

/// One subprogram: the entry function or a bpf-to-bpf call target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Subprog {
    /// First slot.
    pub(crate) start: usize,
    /// One past the last slot.
    pub(crate) end: usize,
}

/// What the static pass learned.
#[derive(Debug)]
pub(crate) struct Cfg {
    /// The instruction at each slot (`None` for the second slot of an `lddw`).
    pub(crate) insn_at: Vec<Option<Insn>>,
    pub(crate) subprogs: Vec<Subprog>,
    /// Whether states are stored and compared at this slot.
    pub(crate) prune_point: Vec<bool>,
    /// Whether a backward jump targets this slot (a loop head, where loops are detected).
    pub(crate) loop_head: Vec<bool>,
    /// Registers (bit i = ri, r0..=r9) whose value may still be read at each slot.
    pub(crate) live_in: Vec<u16>,
    /// Stack slots of the running frame (bit i = `fp-8*(i+1)..fp-8*i`) that may still be read.
    pub(crate) live_slots: Vec<u64>,
    /// Registers (bit i = ri) whose number at each slot may still decide something the
    /// verifier checks ([`precise_liveness`]); the others are the kernel's imprecise scalars.
    pub(crate) precise_in: Vec<u16>,
    /// For each subprogram, the subprograms it calls, with the call's slot.
    pub(crate) calls: Vec<Vec<(usize, usize)>>,
    /// Whether the program has bpf-to-bpf calls.
    pub(crate) has_local_calls: bool,
}

impl Cfg {
    /// The subprogram whose entry is `pc`.
    pub(crate) fn subprog_at(&self, pc: usize) -> Option<usize> {
        self.subprogs.iter().position(|s| s.start == pc)
    }
}

/// The slot an `lddw rX, func` names (relative to the instruction after it, as a call's).
pub(crate) fn func_target(pc: usize, insn: &Insn) -> i64 {
    pc as i64 + 1 + i64::from(insn.imm as i32)
}

/// Whether `insn` calls a helper that calls a function of the program back (bpf_loop).
pub(crate) fn is_callback_call(insn: &Insn) -> bool {
    insn.op.form() == Form::CallHelper && helpers::calls_callback(insn.imm)
}

fn is_cond_jump(insn: &Insn) -> bool {
    matches!(insn.op.form(), Form::JmpReg | Form::JmpImm)
}

/// Successor slots of the instruction at `pc` within its subprogram (calls fall through).
fn successors(pc: usize, insn: &Insn) -> ([Option<usize>; 2], bool) {
    let next = pc + insn.slots();
    match insn.op.form() {
        Form::Exit => ([None, None], false),
        Form::Ja | Form::Ja32 => ([insn.branch_target(pc).and_then(|t| usize::try_from(t).ok()), None], false),
        Form::JmpReg | Form::JmpImm => {
            ([Some(next), insn.branch_target(pc).and_then(|t| usize::try_from(t).ok())], true)
        }
        _ => ([Some(next), None], false),
    }
}

/// Registers read (`uses`) and written (`defs`) by an instruction, as bit masks over r0..=r9.
fn uses_defs(insn: &Insn) -> (u16, u16) {
    let bit = |r: u8| if r < 10 { 1u16 << r } else { 0 };
    const ARGS: u16 = 0b11_1110;
    const CALLER_SAVED: u16 = 0b11_1111;
    match insn.op.form() {
        Form::AluReg => {
            let dst_use = if matches!(
                insn.op,
                Op::MovReg | Op::Mov32Reg | Op::MovSx8 | Op::MovSx16 | Op::MovSx32 | Op::MovSx8To32 | Op::MovSx16To32
            ) {
                0
            } else {
                bit(insn.dst)
            };
            (dst_use | bit(insn.src), bit(insn.dst))
        }
        Form::AluImm => {
            let dst_use = if matches!(insn.op, Op::MovImm | Op::Mov32Imm) { 0 } else { bit(insn.dst) };
            (dst_use, bit(insn.dst))
        }
        Form::Unary | Form::Endian => (bit(insn.dst), bit(insn.dst)),
        Form::JmpReg => (bit(insn.dst) | bit(insn.src), 0),
        Form::JmpImm => (bit(insn.dst), 0),
        Form::Ja | Form::Ja32 => (0, 0),
        Form::CallHelper => {
            let n = helpers::proto(insn.imm).map_or(5, |p| p.args.len());
            let uses = (1u16 << (n + 1)) - 2;
            (uses & ARGS, CALLER_SAVED)
        }
        Form::CallLocal => (ARGS, CALLER_SAVED),
        Form::CallKfunc | Form::CallReg => (ARGS | bit(insn.dst), CALLER_SAVED),
        Form::Exit => (1, 0),
        Form::LdImm64 => (0, bit(insn.dst)),
        Form::LdAbs => (bit(6), CALLER_SAVED),
        Form::LdInd => (bit(6) | bit(insn.src), CALLER_SAVED),
        Form::Ldx => (bit(insn.src), bit(insn.dst)),
        Form::St => (bit(insn.dst), 0),
        Form::Stx => (bit(insn.dst) | bit(insn.src), 0),
        Form::Atomic => {
            let cmpxchg = matches!(insn.op, Op::AtomicCmpXchgW | Op::AtomicCmpXchgDw);
            let fetch = crate::check::atomic_fetches(insn.op);
            let uses = bit(insn.dst) | bit(insn.src) | if cmpxchg { 1 } else { 0 };
            let defs = if cmpxchg {
                1
            } else if fetch {
                bit(insn.src)
            } else {
                0
            };
            (uses, defs)
        }
    }
}

/// Runs the static checks. Returns `None` when the control flow is too broken to explore.
pub(crate) fn analyze(program: &Program, diags: &mut Vec<Diagnostic>) -> Option<Cfg> {
    let n = program.n_slots();
    let mut insn_at = vec![None; n];
    for (pc, insn) in program.insns() {
        insn_at[*pc] = Some(*insn);
    }

    // Subprograms start at the program's entry and at every bpf-to-bpf call or function target.
    let mut starts = vec![0usize];
    let mut has_local_calls = false;
    for (pc, insn) in program.insns() {
        let target = match (insn.op.form(), insn.pseudo_src()) {
            (Form::CallLocal, _) => {
                has_local_calls = true;
                insn.branch_target(*pc)
            }
            (Form::LdImm64, Some(PseudoSrc::Func)) => Some(func_target(*pc, insn)),
            _ => None,
        };
        if let Some(t) = target.and_then(|t| usize::try_from(t).ok()).filter(|t| *t < n) {
            starts.push(t);
        }
    }
    starts.sort_unstable();
    starts.dedup();
    let subprogs: Vec<Subprog> = starts
        .iter()
        .enumerate()
        .map(|(i, &start)| Subprog { start, end: starts.get(i + 1).copied().unwrap_or(n) })
        .collect();
    let mut subprog_of = vec![0u32; n];
    for (i, s) in subprogs.iter().enumerate() {
        for slot in &mut subprog_of[s.start..s.end] {
            *slot = i as u32;
        }
    }

    let mut broken = false;
    let before = diags.len();
    // Each subprogram must end in an exit or unconditional jump, and jumps stay inside it.
    for (i, s) in subprogs.iter().enumerate() {
        let last = program.insns().iter().rfind(|(pc, _)| *pc >= s.start && *pc < s.end);
        if let Some((pc, insn)) = last
            && !matches!(insn.op, Op::Exit | Op::Ja | Op::Ja32)
        {
            broken = true;
            let what = if i + 1 == subprogs.len() { "the end of the program" } else { "the next function" };
            diags.push(
                Diagnostic::new(
                    Code::BadControlFlow,
                    Some(*pc),
                    format!("the last instruction of a function is not an exit or jump, so execution can fall into {what}"),
                )
                .help("every function must end with `exit` or an unconditional `ja`; a compiler emits this for functions that end in a call to a `noreturn` function (a panic path): make the panic path return instead"),
            );
        }
    }
    for (pc, insn) in program.insns() {
        let Some(target) = insn.branch_target(*pc) else { continue };
        if insn.op == Op::CallLocal {
            continue;
        }
        let own = subprog_of[*pc];
        let inside = usize::try_from(target).ok().filter(|t| *t < n).is_some_and(|t| subprog_of[t] == own);
        if !inside {
            broken = true;
            diags.push(
                Diagnostic::new(
                    Code::BadControlFlow,
                    Some(*pc),
                    format!("jump from insn {pc} to insn {target} leaves its function"),
                )
                .help("jumps must stay inside the function (subprogram) they belong to; only `call` enters another function"),
            );
        }
    }
    // A function loaded for a callback must start at an instruction of the program.
    for (pc, insn) in program.insns() {
        if insn.op != Op::LdImm64 || insn.pseudo_src() != Some(PseudoSrc::Func) {
            continue;
        }
        let target = func_target(*pc, insn);
        let valid = usize::try_from(target).ok().is_some_and(|t| insn_at.get(t).is_some_and(Option::is_some));
        if !valid {
            broken = true;
            diags.push(
                Diagnostic::new(
                    Code::BadControlFlow,
                    Some(*pc),
                    format!("the function loaded at insn {pc} would start at insn {target}, which is not an instruction of the program"),
                )
                .help("`lddw rX, func N` names the function starting N instructions after the lddw's second slot"),
            );
        }
    }
    if broken {
        return None;
    }

    // Reachability from the entry, following calls into subprograms.
    let mut reached = vec![false; n];
    let mut work = vec![0usize];
    let mut calls: Vec<Vec<(usize, usize)>> = vec![Vec::new(); subprogs.len()];
    while let Some(pc) = work.pop() {
        if pc >= n || reached[pc] {
            continue;
        }
        reached[pc] = true;
        let Some(insn) = insn_at[pc] else { continue };
        let (succ, _) = successors(pc, &insn);
        work.extend(succ.into_iter().flatten());
        // A bpf-to-bpf call, or a function loaded for a helper to call back (bpf_loop): both
        // run the target as a subprogram on top of this one's frame.
        let callee = match insn.pseudo_src() {
            Some(PseudoSrc::Func) if insn.op == Op::LdImm64 => usize::try_from(func_target(pc, &insn)).ok(),
            _ if insn.op == Op::CallLocal => insn.branch_target(pc).and_then(|t| usize::try_from(t).ok()),
            _ => None,
        };
        if let Some(t) = callee {
            work.push(t);
            if let Some(callee) = subprogs.iter().position(|s| s.start == t) {
                calls[subprog_of[pc] as usize].push((pc, callee));
            }
        }
    }
    let mut pc = 0;
    while pc < n {
        if insn_at[pc].is_some() && !reached[pc] {
            let start = pc;
            while pc < n && (insn_at[pc].is_none() || !reached[pc]) {
                pc += 1;
            }
            diags.push(
                Diagnostic::new(Code::Unreachable, Some(start), format!("instructions {start}..{} can never run", pc - 1))
                    .help("the kernel rejects programs with unreachable code; remove it (it is often left behind by a hand-written jump or a function nothing calls)"),
            );
        } else {
            pc += 1;
        }
    }

    // Recursion: a cycle in the call graph.
    let mut color = vec![0u8; subprogs.len()];
    fn dfs(s: usize, calls: &[Vec<(usize, usize)>], color: &mut [u8]) -> Option<(usize, usize)> {
        color[s] = 1;
        for &(pc, callee) in &calls[s] {
            if color[callee] == 1 {
                return Some((pc, callee));
            }
            if color[callee] == 0
                && let Some(found) = dfs(callee, calls, color)
            {
                return Some(found);
            }
        }
        color[s] = 2;
        None
    }
    if let Some((pc, callee)) = dfs(0, &calls, &mut color) {
        diags.push(
            Diagnostic::new(
                Code::Recursion,
                Some(pc),
                format!("recursive call: the function at insn {} calls itself (directly or through others)", subprogs[callee].start),
            )
            .help("eBPF has no recursion: the verifier must bound the call depth and the stack; turn the recursion into a bounded loop"),
        );
        return None;
    }

    // Prune points: jump targets, fall-through of conditional jumps, function entries and
    // return sites.
    let mut prune_point = vec![false; n];
    let mut loop_head = vec![false; n];
    for s in &subprogs {
        prune_point[s.start] = true;
    }
    for (pc, insn) in program.insns() {
        if let Some(t) = insn.branch_target(*pc).and_then(|t| usize::try_from(t).ok()).filter(|t| *t < n) {
            prune_point[t] = true;
            if t <= *pc && insn.op != Op::CallLocal {
                loop_head[t] = true;
            }
        }
        let next = pc + insn.slots();
        if (is_cond_jump(insn) || insn.op == Op::CallLocal) && next < n {
            prune_point[next] = true;
        }
        // A helper that calls back returns to its own call after each callback.
        if is_callback_call(insn) {
            prune_point[*pc] = true;
            if next < n {
                prune_point[next] = true;
            }
        }
    }

    let live_in = liveness(&insn_at, &subprogs);
    let facts = fp_facts(&insn_at, &subprogs);
    let live_slots = stack_liveness(&insn_at, &subprogs, &facts);
    let precise_in = precise_liveness(&insn_at, &subprogs, &facts);
    if diags.len() > before {
        return None;
    }
    Some(Cfg { insn_at, subprogs, prune_point, loop_head, live_in, live_slots, precise_in, calls, has_local_calls })
}

/// What a register may hold, relative to the running function's own stack frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FpVal {
    /// Nothing reached here yet.
    Bottom,
    /// Certainly not a pointer into this frame.
    NotStack,
    /// Exactly `r10 + k`.
    Fp(i64),
    /// Possibly a pointer into this frame, at an unknown offset.
    Any,
}

impl FpVal {
    fn join(self, other: FpVal) -> FpVal {
        match (self, other) {
            (FpVal::Bottom, x) | (x, FpVal::Bottom) => x,
            (a, b) if a == b => a,
            (FpVal::NotStack, FpVal::NotStack) => FpVal::NotStack,
            _ => FpVal::Any,
        }
    }

    fn may_be_stack(self) -> bool {
        matches!(self, FpVal::Fp(_) | FpVal::Any)
    }
}

/// Forward facts at one instruction: each register's relation to the frame pointer, and which
/// slots may hold a spilled stack pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FpFacts {
    regs: [FpVal; 11],
    ptr_slots: u64,
}

impl FpFacts {
    const BOTTOM: FpFacts = FpFacts { regs: [FpVal::Bottom; 11], ptr_slots: 0 };

    fn join(&self, other: &FpFacts) -> FpFacts {
        let mut regs = self.regs;
        for (r, o) in regs.iter_mut().zip(other.regs) {
            *r = r.join(o);
        }
        FpFacts { regs, ptr_slots: self.ptr_slots | other.ptr_slots }
    }
}

/// The slots (bit i = bytes `fp-8*(i+1) .. fp-8*i`) covering `[lo, hi)`.
fn slot_mask(lo: i64, hi: i64) -> u64 {
    let mut mask = 0u64;
    let lo = lo.max(-512);
    let hi = hi.min(0);
    let mut addr = lo;
    while addr < hi {
        let slot = ((-addr - 1) / 8) as u32;
        if slot < 64 {
            mask |= 1 << slot;
        }
        addr += 1;
    }
    mask
}

/// How an instruction uses the frame's stack, given the facts before it: slots it may read (or
/// partially write, which the checker treats like a read), and slots it certainly overwrites.
fn stack_use(insn: &Insn, f: &FpFacts) -> (u64, u64) {
    let reg = |r: u8| f.regs.get(usize::from(r)).copied().unwrap_or(FpVal::Any);
    let access = |base: FpVal, off: i16, size: i64| -> u64 {
        match base {
            FpVal::Fp(k) => {
                let lo = k + i64::from(off);
                slot_mask(lo, lo + size)
            }
            FpVal::Any => u64::MAX,
            FpVal::NotStack | FpVal::Bottom => 0,
        }
    };
    let size = |op: Op| -> i64 {
        match op {
            Op::LdxB | Op::LdxSB | Op::StB | Op::StxB => 1,
            Op::LdxH | Op::LdxSH | Op::StH | Op::StxH => 2,
            Op::LdxW | Op::LdxSW | Op::StW | Op::StxW => 4,
            _ => 8,
        }
    };
    match insn.op.form() {
        Form::Ldx => (access(reg(insn.src), insn.off, size(insn.op)), 0),
        Form::St | Form::Stx => {
            let n = size(insn.op);
            match reg(insn.dst) {
                FpVal::Fp(k) => {
                    let lo = k + i64::from(insn.off);
                    if n == 8 && lo.rem_euclid(8) == 0 {
                        (0, slot_mask(lo, lo + 8))
                    } else {
                        (slot_mask(lo, lo + n), 0)
                    }
                }
                other => (access(other, insn.off, n), 0),
            }
        }
        Form::Atomic => {
            let n = if insn.op.spec().code == 0xc3 { 4 } else { 8 };
            (access(reg(insn.dst), insn.off, n), 0)
        }
        Form::CallLocal | Form::CallKfunc | Form::CallReg if (1..=5).any(|r| reg(r).may_be_stack()) => {
            // A callee may follow pointers spilled in the slots it was given to any other slot.
            (u64::MAX, 0)
        }
        Form::CallHelper if is_callback_call(insn) && (1..=5).any(|r| reg(r).may_be_stack()) => {
            // So may a callback, through the context pointer the helper hands it.
            (u64::MAX, 0)
        }
        Form::CallHelper => {
            let mut used = 0;
            for r in 1..=5 {
                used |= match reg(r) {
                    // A helper or callee may read anything from the pointer up to the frame top.
                    FpVal::Fp(k) => slot_mask(k, 0),
                    FpVal::Any => u64::MAX,
                    _ => 0,
                };
            }
            (used, 0)
        }
        _ => (0, 0),
    }
}

fn fp_transfer(insn: &Insn, f: &FpFacts) -> FpFacts {
    let mut out = *f;
    let reg = |r: u8| f.regs.get(usize::from(r)).copied().unwrap_or(FpVal::Any);
    let set = |out: &mut FpFacts, r: u8, v: FpVal| {
        if let Some(slot) = out.regs.get_mut(usize::from(r)) {
            *slot = v;
        }
    };
    match insn.op {
        Op::MovReg => set(&mut out, insn.dst, reg(insn.src)),
        Op::AddImm | Op::SubImm => {
            let v = match reg(insn.dst) {
                FpVal::Fp(k) => {
                    let d = if insn.op == Op::AddImm { insn.imm } else { insn.imm.wrapping_neg() };
                    FpVal::Fp(k.saturating_add(d))
                }
                other => other,
            };
            set(&mut out, insn.dst, v);
        }
        Op::AddReg => {
            let v =
                if reg(insn.dst).may_be_stack() || reg(insn.src).may_be_stack() { FpVal::Any } else { FpVal::NotStack };
            set(&mut out, insn.dst, v);
        }
        Op::SubReg => {
            let v = match (reg(insn.dst).may_be_stack(), reg(insn.src).may_be_stack()) {
                (true, false) => FpVal::Any,
                _ => FpVal::NotStack,
            };
            set(&mut out, insn.dst, v);
        }
        _ => match insn.op.form() {
            Form::AluReg | Form::AluImm | Form::Unary | Form::Endian | Form::LdImm64 => {
                set(&mut out, insn.dst, FpVal::NotStack);
            }
            Form::Ldx => {
                let (read, _) = stack_use(insn, f);
                let v = if read & f.ptr_slots != 0 { FpVal::Any } else { FpVal::NotStack };
                set(&mut out, insn.dst, v);
            }
            Form::Stx if reg(insn.src).may_be_stack() => {
                out.ptr_slots |= match reg(insn.dst) {
                    FpVal::Fp(k) => {
                        let lo = k + i64::from(insn.off);
                        slot_mask(lo, lo + 8)
                    }
                    FpVal::Any => u64::MAX,
                    _ => 0,
                };
            }
            Form::Atomic => {
                if crate::check::atomic_fetches(insn.op) {
                    set(&mut out, insn.src, FpVal::NotStack);
                }
                if matches!(insn.op, Op::AtomicCmpXchgW | Op::AtomicCmpXchgDw) {
                    set(&mut out, 0, FpVal::NotStack);
                }
            }
            Form::CallLocal | Form::CallReg | Form::CallKfunc => {
                // A callee may hand back a pointer into this frame that it was given.
                let passed = (1..=5).any(|r| reg(r).may_be_stack());
                set(&mut out, 0, if passed { FpVal::Any } else { FpVal::NotStack });
                for r in 1..=5 {
                    set(&mut out, r, FpVal::NotStack);
                }
                if passed {
                    // It may also have stored such pointers into this frame.
                    out.ptr_slots = u64::MAX;
                }
            }
            Form::CallHelper | Form::LdAbs | Form::LdInd => {
                if is_callback_call(insn) && (1..=5).any(|r| reg(r).may_be_stack()) {
                    // The callback may have stored pointers into this frame through the
                    // context it was given.
                    out.ptr_slots = u64::MAX;
                }
                for r in 0..=5 {
                    set(&mut out, r, FpVal::NotStack);
                }
            }
            _ => {}
        },
    }
    out
}

/// The forward facts before each instruction: each register's relation to its function's frame
/// pointer, and which slots may hold a spilled stack pointer.
fn fp_facts(insn_at: &[Option<Insn>], subprogs: &[Subprog]) -> Vec<FpFacts> {
    let n = insn_at.len();
    let mut facts = vec![FpFacts::BOTTOM; n];
    for s in subprogs {
        let mut entry = FpFacts { regs: [FpVal::NotStack; 11], ptr_slots: 0 };
        entry.regs[10] = FpVal::Fp(0);
        facts[s.start] = entry;
        let mut work = vec![s.start];
        let mut queued = vec![false; n];
        queued[s.start] = true;
        while let Some(pc) = work.pop() {
            queued[pc] = false;
            let Some(insn) = insn_at[pc] else { continue };
            let out = fp_transfer(&insn, &facts[pc]);
            let (succ, _) = successors(pc, &insn);
            for t in succ.into_iter().flatten() {
                if t >= s.end || t >= n {
                    continue;
                }
                let joined = facts[t].join(&out);
                if joined != facts[t] {
                    facts[t] = joined;
                    if !queued[t] {
                        queued[t] = true;
                        work.push(t);
                    }
                }
            }
        }
    }
    facts
}

/// For each slot, the stack slots of the running frame that some later instruction may read
/// before overwriting them whole. Slots outside this set hold nothing that matters.
fn stack_liveness(insn_at: &[Option<Insn>], subprogs: &[Subprog], facts: &[FpFacts]) -> Vec<u64> {
    let n = insn_at.len();
    let mut live = vec![0u64; n];
    for s in subprogs {
        let mut changed = true;
        while changed {
            changed = false;
            for pc in (s.start..s.end).rev() {
                let Some(insn) = insn_at[pc] else { continue };
                let (succ, _) = successors(pc, &insn);
                let mut out = 0u64;
                for t in succ.into_iter().flatten() {
                    if t < n {
                        out |= live[t];
                    }
                }
                let (used, killed) = stack_use(&insn, &facts[pc]);
                let new = used | (out & !killed);
                if new != live[pc] {
                    live[pc] = new;
                    changed = true;
                }
            }
        }
    }
    live
}

/// Backward liveness of r0..=r9 within each subprogram, to a fixed point.
fn liveness(insn_at: &[Option<Insn>], subprogs: &[Subprog]) -> Vec<u16> {
    let n = insn_at.len();
    let mut live_in = vec![0u16; n];
    for s in subprogs {
        let mut changed = true;
        while changed {
            changed = false;
            for pc in (s.start..s.end).rev() {
                let Some(insn) = insn_at[pc] else { continue };
                let (succ, _) = successors(pc, &insn);
                let mut out = 0u16;
                for t in succ.into_iter().flatten() {
                    if t < n {
                        out |= live_in[t];
                    }
                }
                let (uses, defs) = uses_defs(&insn);
                let new = uses | (out & !defs);
                if new != live_in[pc] {
                    live_in[pc] = new;
                    changed = true;
                }
            }
        }
    }
    live_in
}

/// For each slot, the registers (r0..=r9) that may hold a pointer there: a forward may-analysis
/// per function (r1 and r10 at the program's entry, every argument at another function's).
fn may_pointer(insn_at: &[Option<Insn>], subprogs: &[Subprog]) -> Vec<u16> {
    const CALLER_SAVED: u16 = 0b11_1111;
    let n = insn_at.len();
    let bit = |r: u8| if r < 10 { 1u16 << r } else { 0 };
    let transfer = |insn: &Insn, m: u16| -> u16 {
        let has = |r: u8| r == 10 || m & bit(r) != 0;
        let set = |m: u16, r: u8, v: bool| if v { m | bit(r) } else { m & !bit(r) };
        match insn.op {
            Op::MovReg => set(m, insn.dst, has(insn.src)),
            Op::AddReg | Op::SubReg => set(m, insn.dst, has(insn.dst) || has(insn.src)),
            Op::AddImm | Op::SubImm => m,
            _ => match insn.op.form() {
                Form::AluReg | Form::AluImm | Form::Unary | Form::Endian => set(m, insn.dst, false),
                Form::LdImm64 => set(m, insn.dst, insn.pseudo_src().is_some()),
                // Context fields load pointers as 4 bytes (data, data_end), spills as 8.
                Form::Ldx => set(m, insn.dst, !matches!(insn.op, Op::LdxB | Op::LdxH | Op::LdxSB | Op::LdxSH)),
                Form::CallHelper | Form::CallLocal | Form::CallKfunc | Form::CallReg => (m & !CALLER_SAVED) | 1,
                Form::LdAbs | Form::LdInd => m & !CALLER_SAVED,
                Form::Atomic => {
                    let mut m = m;
                    if crate::check::atomic_fetches(insn.op) {
                        m = set(m, insn.src, true);
                    }
                    if matches!(insn.op, Op::AtomicCmpXchgW | Op::AtomicCmpXchgDw) {
                        m |= 1;
                    }
                    m
                }
                _ => m,
            },
        }
    };
    let mut facts = vec![0u16; n];
    let mut seen = vec![false; n];
    for (i, s) in subprogs.iter().enumerate() {
        if s.start >= n {
            continue;
        }
        facts[s.start] = if i == 0 { bit(1) } else { 0b11_1110 };
        seen[s.start] = true;
        let mut work = vec![s.start];
        while let Some(pc) = work.pop() {
            let Some(insn) = insn_at[pc] else { continue };
            let out = transfer(&insn, facts[pc]);
            let (succ, _) = successors(pc, &insn);
            for t in succ.into_iter().flatten() {
                if t >= s.end || t >= n {
                    continue;
                }
                let joined = facts[t] | out;
                if !seen[t] || joined != facts[t] {
                    seen[t] = true;
                    facts[t] = joined;
                    work.push(t);
                }
            }
        }
    }
    facts
}

/// The kernel's precision tracking, as a static over-approximation: for each slot, the
/// registers (bit i = ri, r0..=r9) whose number there may flow, along some path, into a use
/// where the verifier's decision depends on the value: a conditional jump's operands, a memory
/// access's base, a helper's or function's arguments, the return value, legacy packet loads, an
/// atomic operation's operands, and a number added to or subtracted from what may be a pointer.
/// Values flow through moves and arithmetic, and through stack slots at known offsets from the
/// frame pointer (anywhere in the frame when the address is unknown).
///
/// Every other register at a slot holds what the kernel calls an imprecise scalar: its value
/// decides nothing on any path from there, so two states that differ only in such numbers
/// verify alike, and a verified state prunes the other whatever they hold (as the kernel's
/// `regsafe` ignores imprecise scalars). The kernel marks precision lazily, by backtracking from
/// the uses it meets; this analysis marks, ahead of time, everything that could reach any of
/// them, so it never calls imprecise what the kernel would need precise.
fn precise_liveness(insn_at: &[Option<Insn>], subprogs: &[Subprog], facts: &[FpFacts]) -> Vec<u16> {
    const CALLER_SAVED: u16 = 0b11_1111;
    const ARGS: u16 = 0b11_1110;
    let n = insn_at.len();
    let bit = |r: u8| if r < 10 { 1u16 << r } else { 0 };
    let ptrs = may_pointer(insn_at, subprogs);
    let transfer = |pc: usize, insn: &Insn, (mut regs, mut slots): (u16, u64)| -> (u16, u64) {
        let fp = facts.get(pc).copied().unwrap_or(FpFacts::BOTTOM);
        let live = |regs: u16, r: u8| regs & bit(r) != 0;
        let is_mov = matches!(
            insn.op,
            Op::MovReg | Op::Mov32Reg | Op::MovSx8 | Op::MovSx16 | Op::MovSx32 | Op::MovSx8To32 | Op::MovSx16To32
        );
        match insn.op.form() {
            Form::JmpReg => regs |= bit(insn.dst) | bit(insn.src),
            Form::JmpImm => regs |= bit(insn.dst),
            Form::Ja | Form::Ja32 | Form::Unary | Form::Endian => {}
            Form::AluImm => {
                if matches!(insn.op, Op::MovImm | Op::Mov32Imm) {
                    regs &= !bit(insn.dst);
                }
            }
            Form::AluReg if is_mov => {
                let d = live(regs, insn.dst);
                regs &= !bit(insn.dst);
                if d {
                    regs |= bit(insn.src);
                }
            }
            Form::AluReg => {
                if live(regs, insn.dst) {
                    regs |= bit(insn.src);
                }
                if matches!(insn.op, Op::AddReg | Op::SubReg) {
                    let may_ptr = |r: u8| r == 10 || ptrs.get(pc).is_some_and(|m| m & bit(r) != 0);
                    if may_ptr(insn.dst) {
                        regs |= bit(insn.src);
                    }
                    if may_ptr(insn.src) {
                        regs |= bit(insn.dst);
                    }
                }
            }
            Form::LdImm64 => regs &= !bit(insn.dst),
            Form::Ldx => {
                let d = live(regs, insn.dst);
                regs &= !bit(insn.dst);
                regs |= bit(insn.src);
                if d {
                    slots |= stack_use(insn, &fp).0;
                }
            }
            Form::St | Form::Stx => {
                let (partial, whole) = stack_use(insn, &fp);
                regs |= bit(insn.dst);
                if insn.op.form() == Form::Stx && slots & (partial | whole) != 0 {
                    regs |= bit(insn.src);
                }
                slots &= !whole;
            }
            Form::Atomic => {
                regs |= bit(insn.dst) | bit(insn.src);
                if matches!(insn.op, Op::AtomicCmpXchgW | Op::AtomicCmpXchgDw) {
                    regs |= 1;
                }
                slots |= stack_use(insn, &fp).0;
            }
            Form::CallHelper | Form::CallLocal | Form::CallKfunc | Form::CallReg => {
                regs = (regs & !CALLER_SAVED) | ARGS;
                if insn.op.form() == Form::CallReg {
                    regs |= bit(insn.dst);
                }
                slots |= stack_use(insn, &fp).0;
            }
            Form::Exit => {
                regs = 1;
                slots = 0;
            }
            Form::LdAbs | Form::LdInd => {
                regs = (regs & !CALLER_SAVED) | bit(6);
                if insn.op.form() == Form::LdInd {
                    regs |= bit(insn.src);
                }
            }
        }
        (regs, slots)
    };
    let mut state = vec![(0u16, 0u64); n];
    for s in subprogs {
        let mut changed = true;
        while changed {
            changed = false;
            for pc in (s.start..s.end.min(n)).rev() {
                let Some(insn) = insn_at[pc] else { continue };
                let (succ, _) = successors(pc, &insn);
                let mut out = (0u16, 0u64);
                for t in succ.into_iter().flatten() {
                    if let Some(&(r, sl)) = state.get(t) {
                        out = (out.0 | r, out.1 | sl);
                    }
                }
                let new = transfer(pc, &insn, out);
                if new != state[pc] {
                    state[pc] = new;
                    changed = true;
                }
            }
        }
    }
    state.into_iter().map(|(r, _)| r).collect()
}
