//! Stored states and pruning: a state is stored at each prune point, a path ends when a
//! stored state whose every path was verified covers it, and a path that comes back to a state
//! still being explored is an infinite loop.

use std::hash::{Hash, Hasher};

use super::{Checker, Node, Visit};
use crate::scalar::Scalar;
use crate::state::{Compare, Frame, Reg, Slot, State};

/// Most states with contents kept per instruction.
const MAX_STATES_PER_INSN: usize = 64;

impl Checker<'_> {
    pub(super) fn visit(&mut self, pc: usize, st: &State, parent: &mut Option<u32>) -> Visit {
        // Prune against states whose every path was verified.
        let mode = self.prune_mode();
        // Imprecise numbers are ignored only in the program's own frame (callers' registers
        // matter again after their callee returns) and never once numbers must match exactly.
        let imprecise = if st.frames.len() == 1 && mode == Compare::Subsumes {
            !self.cfg.precise_in.get(pc).copied().unwrap_or(u16::MAX) & 0x3ff
        } else {
            0
        };
        // As the kernel: a failed comparison counts against a stored state only after at least 2
        // jumps and 8 instructions since a state was last added (the kernel's `add_new_state`),
        // so that the many comparisons of a tight loop do not evict its useful states.
        let counts_miss = self.processed - self.last_add_insns >= 8 && self.jumps - self.last_add_jumps >= 2;
        let mut i = 0;
        while i < self.at_pc[pc].len() {
            let idx = self.at_pc[pc][i] as usize;
            let node = &self.nodes[idx];
            let Some(old) = &node.state else {
                self.at_pc[pc].swap_remove(i);
                continue;
            };
            if node.branches == 0 {
                if old.covers(st, &mut self.ids, mode, imprecise) {
                    self.nodes[idx].hits += 1;
                    return Visit::Prune;
                }
                let node = &mut self.nodes[idx];
                if counts_miss {
                    node.misses += 1;
                }
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
    pub(super) fn callback_revisit(&mut self, st: &mut State, pc: usize, parent: Option<u32>) -> bool {
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
                && old.covers(st, &mut self.ids, Compare::Subsumes, 0)
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
    /// How stored states must cover new ones to prune them: numbers compared exactly once an
    /// unprivileged `ptr += reg` with an unknown offset was seen (the kernel's
    /// `explore_alu_limits`), else by inclusion.
    fn prune_mode(&self) -> Compare {
        if self.explore_alu_limits { Compare::SubsumesExactScalars } else { Compare::Subsumes }
    }

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

    pub(super) fn complete(&mut self, mut node: Option<u32>) {
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
}

/// A small, fast, non-cryptographic hasher for state hashes (FxHash's multiply-rotate).
#[derive(Default)]
pub(super) struct FastHasher(u64);

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
