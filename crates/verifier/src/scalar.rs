//! Scalars: the abstract value of a register that holds a number.
//!
//! A [`Scalar`] combines a [`Tnum`] (known bits) with unsigned and signed bounds of the full
//! 64-bit value and of its low 32 bits, as the Linux verifier's `bpf_reg_state` does. The
//! components refine each other in [`Scalar::sync`] (the kernel's `reg_bounds_sync`). Transfer
//! functions for ALU operations and branch conditions over-approximate: every concrete result of
//! an operation on members is a member of the abstract result (the property tests check this).

use core::fmt;

use crate::tnum::Tnum;

/// The abstract value of a scalar register.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scalar {
    /// Known bits.
    pub var: Tnum,
    /// Unsigned 64-bit bounds.
    pub umin: u64,
    /// Unsigned 64-bit upper bound.
    pub umax: u64,
    /// Signed 64-bit lower bound.
    pub smin: i64,
    /// Signed 64-bit upper bound.
    pub smax: i64,
    /// Unsigned bounds of the low 32 bits.
    pub u32min: u32,
    /// Unsigned upper bound of the low 32 bits.
    pub u32max: u32,
    /// Signed lower bound of the low 32 bits.
    pub s32min: i32,
    /// Signed upper bound of the low 32 bits.
    pub s32max: i32,
}

/// A binary ALU operation on scalars.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AluOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// Unsigned `/` (division by zero yields zero).
    Div,
    /// Signed `/`.
    SDiv,
    /// Unsigned `%` (modulo zero yields the dividend).
    Mod,
    /// Signed `%`.
    SMod,
    /// `|`
    Or,
    /// `&`
    And,
    /// `^`
    Xor,
    /// `<<`
    Lsh,
    /// Logical `>>`.
    Rsh,
    /// Arithmetic `>>`.
    Arsh,
}

/// A branch condition `a <op> b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// Unsigned `>`.
    Gt,
    /// Unsigned `>=`.
    Ge,
    /// Unsigned `<`.
    Lt,
    /// Unsigned `<=`.
    Le,
    /// Signed `>`.
    Sgt,
    /// Signed `>=`.
    Sge,
    /// Signed `<`.
    Slt,
    /// Signed `<=`.
    Sle,
    /// `a & b != 0`.
    Set,
    /// `a & b == 0` (the negation of [`Cmp::Set`]).
    NotSet,
}

impl Cmp {
    /// The condition that holds when this one does not.
    pub fn negate(self) -> Cmp {
        match self {
            Cmp::Eq => Cmp::Ne,
            Cmp::Ne => Cmp::Eq,
            Cmp::Gt => Cmp::Le,
            Cmp::Ge => Cmp::Lt,
            Cmp::Lt => Cmp::Ge,
            Cmp::Le => Cmp::Gt,
            Cmp::Sgt => Cmp::Sle,
            Cmp::Sge => Cmp::Slt,
            Cmp::Slt => Cmp::Sge,
            Cmp::Sle => Cmp::Sgt,
            Cmp::Set => Cmp::NotSet,
            Cmp::NotSet => Cmp::Set,
        }
    }

    /// The same condition with its operands swapped (`a < b` is `b > a`).
    pub fn swap(self) -> Cmp {
        match self {
            Cmp::Gt => Cmp::Lt,
            Cmp::Ge => Cmp::Le,
            Cmp::Lt => Cmp::Gt,
            Cmp::Le => Cmp::Ge,
            Cmp::Sgt => Cmp::Slt,
            Cmp::Sge => Cmp::Sle,
            Cmp::Slt => Cmp::Sgt,
            Cmp::Sle => Cmp::Sge,
            other => other,
        }
    }

    /// Evaluates the condition on concrete values of `bits` (32 or 64) width.
    pub fn eval(self, a: u64, b: u64, bits: u32) -> bool {
        let (a, b, sa, sb) = if bits == 32 {
            (a & 0xffff_ffff, b & 0xffff_ffff, i64::from(a as u32 as i32), i64::from(b as u32 as i32))
        } else {
            (a, b, a as i64, b as i64)
        };
        match self {
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Sgt => sa > sb,
            Cmp::Sge => sa >= sb,
            Cmp::Slt => sa < sb,
            Cmp::Sle => sa <= sb,
            Cmp::Set => a & b != 0,
            Cmp::NotSet => a & b == 0,
        }
    }

    /// The C operator, for messages.
    pub fn symbol(self) -> &'static str {
        match self {
            Cmp::Eq => "==",
            Cmp::Ne => "!=",
            Cmp::Gt | Cmp::Sgt => ">",
            Cmp::Ge | Cmp::Sge => ">=",
            Cmp::Lt | Cmp::Slt => "<",
            Cmp::Le | Cmp::Sle => "<=",
            Cmp::Set => "&",
            Cmp::NotSet => "!&",
        }
    }
}

impl fmt::Debug for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(v) = self.as_const() {
            return if (v as i64) < 0 && (v as i64) > -65536 { write!(f, "{}", v as i64) } else { write!(f, "{v:#x}") };
        }
        let mut sep = "";
        let mut part = |f: &mut fmt::Formatter<'_>, s: String| -> fmt::Result {
            let r = write!(f, "{sep}{s}");
            sep = ",";
            r
        };
        f.write_str("(")?;
        if self.umin != 0 {
            part(f, format!("umin={}", self.umin))?;
        }
        if self.umax != u64::MAX {
            part(f, format!("umax={}", self.umax))?;
        }
        if self.smin != i64::MIN && self.smin as u64 != self.umin {
            part(f, format!("smin={}", self.smin))?;
        }
        if self.smax != i64::MAX && self.smax as u64 != self.umax {
            part(f, format!("smax={}", self.smax))?;
        }
        if self.umax > u64::from(u32::MAX) {
            if self.u32min != 0 {
                part(f, format!("u32min={}", self.u32min))?;
            }
            if self.u32max != u32::MAX {
                part(f, format!("u32max={}", self.u32max))?;
            }
        }
        // Known bits beyond what the range implies are worth showing.
        if self.var.mask != u64::MAX && Tnum::range(self.umin, self.umax) != self.var {
            part(f, format!("var_off={:?}", self.var))?;
        }
        if sep.is_empty() {
            f.write_str("any")?;
        }
        f.write_str(")")
    }
}

/// Width-generic bounds used by the ALU transfer functions: the low `bits` bits of a value.
#[derive(Clone, Copy, Debug)]
struct Half {
    t: Tnum,
    umin: u64,
    umax: u64,
    smin: i64,
    smax: i64,
}

const fn umask(bits: u32) -> u64 {
    if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 }
}

const fn smin_of(bits: u32) -> i64 {
    if bits == 64 { i64::MIN } else { -(1i64 << (bits - 1)) }
}

const fn smax_of(bits: u32) -> i64 {
    if bits == 64 { i64::MAX } else { (1i64 << (bits - 1)) - 1 }
}

impl Half {
    fn full(bits: u32) -> Half {
        Half { t: Tnum::UNKNOWN.cast(bits / 8), umin: 0, umax: umask(bits), smin: smin_of(bits), smax: smax_of(bits) }
    }

    fn with_u(self, umin: u64, umax: u64) -> Half {
        Half { umin, umax, ..self }
    }

    fn with_s(self, smin: i64, smax: i64) -> Half {
        Half { smin, smax, ..self }
    }

    fn s_unknown(self, bits: u32) -> Half {
        self.with_s(smin_of(bits), smax_of(bits))
    }

    /// Signed bounds equal to the unsigned ones when both operands were non-negative.
    fn s_from_u_if(self, nonneg: bool, bits: u32) -> Half {
        if nonneg && self.umax <= smax_of(bits) as u64 {
            self.with_s(self.umin as i64, self.umax as i64)
        } else {
            self.s_unknown(bits)
        }
    }
}

fn s_range(lo: i128, hi: i128, bits: u32) -> Option<(i64, i64)> {
    if lo < i128::from(smin_of(bits)) || hi > i128::from(smax_of(bits)) { None } else { Some((lo as i64, hi as i64)) }
}

/// The abstract result of `a op b` at `bits` width, or `None` when only "unknown" is known.
fn half_alu(op: AluOp, a: Half, b: Half, bits: u32) -> Half {
    let bytes = bits / 8;
    let full = Half::full(bits);
    let b_const = if b.t.is_const() { Some(b.t.value) } else { None };
    match op {
        AluOp::Add => {
            let t = a.t.add(b.t).cast(bytes);
            let mut r = Half { t, ..full };
            let hi = u128::from(a.umax) + u128::from(b.umax);
            if hi <= u128::from(umask(bits)) {
                r = r.with_u(a.umin + b.umin, hi as u64);
            }
            if let Some((lo, hi)) =
                s_range(i128::from(a.smin) + i128::from(b.smin), i128::from(a.smax) + i128::from(b.smax), bits)
            {
                r = r.with_s(lo, hi);
            }
            r
        }
        AluOp::Sub => {
            let t = a.t.sub(b.t).cast(bytes);
            let mut r = Half { t, ..full };
            if a.umin >= b.umax {
                r = r.with_u(a.umin - b.umax, a.umax - b.umin);
            }
            if let Some((lo, hi)) =
                s_range(i128::from(a.smin) - i128::from(b.smax), i128::from(a.smax) - i128::from(b.smin), bits)
            {
                r = r.with_s(lo, hi);
            }
            r
        }
        AluOp::Mul => {
            let t = a.t.mul(b.t).cast(bytes);
            let mut r = Half { t, ..full };
            let hi = u128::from(a.umax) * u128::from(b.umax);
            if hi <= u128::from(umask(bits)) {
                r = r.with_u(a.umin.wrapping_mul(b.umin), hi as u64);
            }
            let corners = [
                i128::from(a.smin) * i128::from(b.smin),
                i128::from(a.smin) * i128::from(b.smax),
                i128::from(a.smax) * i128::from(b.smin),
                i128::from(a.smax) * i128::from(b.smax),
            ];
            let lo = corners.iter().copied().min().unwrap_or(0);
            let hi = corners.iter().copied().max().unwrap_or(0);
            if let Some((lo, hi)) = s_range(lo, hi, bits) {
                r = r.with_s(lo, hi);
            }
            r
        }
        AluOp::And => {
            let t = a.t.and(b.t);
            let r = Half { t, ..full }.with_u(t.umin(), a.umax.min(b.umax));
            r.s_from_u_if(a.smin >= 0 && b.smin >= 0, bits)
        }
        AluOp::Or => {
            let t = a.t.or(b.t);
            let r = Half { t, ..full }.with_u(a.umin.max(b.umin), t.umax());
            r.s_from_u_if(a.smin >= 0 && b.smin >= 0, bits)
        }
        AluOp::Xor => {
            let t = a.t.xor(b.t);
            let r = Half { t, ..full }.with_u(t.umin(), t.umax());
            r.s_from_u_if(a.smin >= 0 && b.smin >= 0, bits)
        }
        AluOp::Lsh => match b_const {
            Some(k) => {
                let k = (k & u64::from(bits - 1)) as u32;
                let t = a.t.lshift(k).cast(bytes);
                let r = Half { t, ..full };
                if a.umax <= umask(bits) >> k { r.with_u(a.umin << k, a.umax << k) } else { r }
            }
            None => full,
        },
        AluOp::Rsh => {
            if let Some(k) = b_const {
                let k = (k & u64::from(bits - 1)) as u32;
                let t = a.t.rshift(k);
                Half { t, ..full }.with_u(a.umin >> k, a.umax >> k)
            } else if b.umax < u64::from(bits) {
                // Any amount in range only makes the value smaller.
                let r = Half { t: Tnum::range(0, a.umax >> b.umin), ..full };
                r.with_u(a.umin >> b.umax, a.umax >> b.umin)
            } else {
                full.with_u(0, a.umax)
            }
        }
        AluOp::Arsh => match b_const {
            Some(k) => {
                let k = (k & u64::from(bits - 1)) as u32;
                let t = a.t.arshift(k, bits).cast(bytes);
                Half { t, ..full }.with_s(a.smin >> k, a.smax >> k)
            }
            None => full,
        },
        AluOp::Div => match b_const {
            Some(0) => Half { t: Tnum::constant(0), umin: 0, umax: 0, smin: 0, smax: 0 },
            Some(c) => {
                let (lo, hi) = (a.umin / c, a.umax / c);
                Half { t: Tnum::range(lo, hi), ..full }.with_u(lo, hi)
            }
            None => {
                // A zero divisor gives zero; any other leaves at most the dividend.
                let (lo, hi) = match (a.umin.checked_div(b.umax), a.umax.checked_div(b.umin)) {
                    (Some(lo), Some(hi)) => (lo, hi),
                    _ => (0, a.umax),
                };
                Half { t: Tnum::range(lo, hi), ..full }.with_u(lo, hi)
            }
        },
        AluOp::Mod => {
            // `x % 0 == x` in eBPF, and `x % y < y`, `x % y <= x` otherwise.
            if b.umin == 0 || a.umax < b.umin {
                let hi = a.umax;
                Half { t: Tnum::range(0, hi), ..full }.with_u(0, hi)
            } else {
                let hi = a.umax.min(b.umax - 1);
                Half { t: Tnum::range(0, hi), ..full }.with_u(0, hi)
            }
        }
        AluOp::SDiv | AluOp::SMod => full,
    }
}

impl Scalar {
    /// Any 64-bit value.
    pub const UNKNOWN: Scalar = Scalar {
        var: Tnum::UNKNOWN,
        umin: 0,
        umax: u64::MAX,
        smin: i64::MIN,
        smax: i64::MAX,
        u32min: 0,
        u32max: u32::MAX,
        s32min: i32::MIN,
        s32max: i32::MAX,
    };

    /// Exactly `v`.
    pub const fn constant(v: u64) -> Scalar {
        Scalar {
            var: Tnum::constant(v),
            umin: v,
            umax: v,
            smin: v as i64,
            smax: v as i64,
            u32min: v as u32,
            u32max: v as u32,
            s32min: v as u32 as i32,
            s32max: v as u32 as i32,
        }
    }

    /// Any value in `min..=max` (unsigned).
    pub fn urange(min: u64, max: u64) -> Scalar {
        let mut s = Scalar { umin: min, umax: max, var: Tnum::range(min, max), ..Scalar::UNKNOWN };
        s.sync();
        s
    }

    /// Any value in `min..=max` (signed).
    pub fn srange(min: i64, max: i64) -> Scalar {
        let mut s = Scalar { smin: min, smax: max, ..Scalar::UNKNOWN };
        s.sync();
        s
    }

    /// A value whose low `bytes` bytes are unknown and the rest zero (a zero-extending load).
    pub fn unknown_of_size(bytes: u32) -> Scalar {
        if bytes >= 8 { Scalar::UNKNOWN } else { Scalar::urange(0, umask(bytes * 8)) }
    }

    /// A sign-extended value of `bytes` bytes.
    pub fn unknown_signed_of_size(bytes: u32) -> Scalar {
        if bytes >= 8 { Scalar::UNKNOWN } else { Scalar::srange(smin_of(bytes * 8), smax_of(bytes * 8)) }
    }

    /// The value, when it is known exactly.
    pub fn as_const(&self) -> Option<u64> {
        if self.var.is_const() { Some(self.var.value) } else { None }
    }

    /// The low 32 bits, when they are known exactly.
    pub fn as_const32(&self) -> Option<u32> {
        let t = self.var.subreg();
        if t.is_const() { Some(t.value as u32) } else { None }
    }

    /// Whether the value is exactly `v`.
    pub fn is_const(&self, v: u64) -> bool {
        self.as_const() == Some(v)
    }

    /// Whether every concrete value of `other` is a value of `self` (used to prune states).
    pub fn includes(&self, other: &Scalar) -> bool {
        self.umin <= other.umin
            && self.umax >= other.umax
            && self.smin <= other.smin
            && self.smax >= other.smax
            && self.u32min <= other.u32min
            && self.u32max >= other.u32max
            && self.s32min <= other.s32min
            && self.s32max >= other.s32max
            && self.var.includes(other.var)
    }

    /// Whether the concrete value `v` is described by this scalar.
    pub fn contains(&self, v: u64) -> bool {
        self.var.contains(v)
            && (self.umin..=self.umax).contains(&v)
            && (self.smin..=self.smax).contains(&(v as i64))
            && (self.u32min..=self.u32max).contains(&(v as u32))
            && (self.s32min..=self.s32max).contains(&(v as u32 as i32))
    }

    /// Whether the bounds are consistent (no contradiction: some value may exist).
    pub fn is_valid(&self) -> bool {
        self.umin <= self.umax
            && self.smin <= self.smax
            && self.u32min <= self.u32max
            && self.s32min <= self.s32max
            && self.var.value & self.var.mask == 0
            && self.var.umin() <= self.umax
            && self.var.umax() >= self.umin
    }

    /// Lets every component refine the others (the kernel's `reg_bounds_sync`). Returns `false`
    /// when the components contradict each other: no concrete value fits, so the state that holds
    /// this scalar cannot occur.
    pub fn sync(&mut self) -> bool {
        if !self.is_valid() {
            return false;
        }
        self.update_from_tnum();
        self.deduce();
        self.deduce();
        if !self.is_valid() {
            return false;
        }
        if !self.tnum_from_bounds() {
            return false;
        }
        self.update_from_tnum();
        self.deduce();
        self.is_valid()
    }

    fn update_from_tnum(&mut self) {
        let t = self.var;
        self.smin = self.smin.max((t.value | (t.mask & (1 << 63))) as i64);
        self.smax = self.smax.min((t.value | (t.mask & (i64::MAX as u64))) as i64);
        self.umin = self.umin.max(t.value);
        self.umax = self.umax.min(t.value | t.mask);
        let t32 = t.subreg();
        self.s32min = self.s32min.max((t32.value | (t32.mask & 0x8000_0000)) as u32 as i32);
        self.s32max = self.s32max.min((t32.value | (t32.mask & 0x7fff_ffff)) as u32 as i32);
        self.u32min = self.u32min.max(t32.value as u32);
        self.u32max = self.u32max.min((t32.value | t32.mask) as u32);
    }

    fn deduce(&mut self) {
        // 64-bit bounds to 32-bit bounds, when the upper halves agree.
        if self.umin >> 32 == self.umax >> 32 {
            self.u32min = self.u32min.max(self.umin as u32);
            self.u32max = self.u32max.min(self.umax as u32);
            if (self.umin as u32 as i32) <= (self.umax as u32 as i32) {
                self.s32min = self.s32min.max(self.umin as u32 as i32);
                self.s32max = self.s32max.min(self.umax as u32 as i32);
            }
        }
        if self.smin >> 32 == self.smax >> 32 {
            self.u32min = self.u32min.max(self.smin as u32);
            self.u32max = self.u32max.min(self.smax as u32);
            if (self.smin as u32 as i32) <= (self.smax as u32 as i32) {
                self.s32min = self.s32min.max(self.smin as u32 as i32);
                self.s32max = self.s32max.min(self.smax as u32 as i32);
            }
        }
        // 32-bit signed and unsigned bounds refine each other when the range does not cross the
        // sign boundary.
        if (self.u32min as i32) <= (self.u32max as i32) {
            self.s32min = self.s32min.max(self.u32min as i32);
            self.s32max = self.s32max.min(self.u32max as i32);
        }
        if (self.s32min as u32) <= (self.s32max as u32) {
            self.u32min = self.u32min.max(self.s32min as u32);
            self.u32max = self.u32max.min(self.s32max as u32);
        }
        // The same for 64 bits.
        if (self.umin as i64) <= (self.umax as i64) {
            self.smin = self.smin.max(self.umin as i64);
            self.smax = self.smax.min(self.umax as i64);
        }
        if (self.smin as u64) <= (self.smax as u64) {
            self.umin = self.umin.max(self.smin as u64);
            self.umax = self.umax.min(self.smax as u64);
        }
        // 32-bit bounds tighten the 64-bit ones: the value's high half stays within the 64-bit
        // bounds' high halves, and its low half within the 32-bit bounds.
        let new_umin = (self.umin & !0xffff_ffff) | u64::from(self.u32min);
        let new_umax = (self.umax & !0xffff_ffff) | u64::from(self.u32max);
        self.umin = self.umin.max(new_umin);
        self.umax = self.umax.min(new_umax);
        let new_smin = ((self.smin as u64 & !0xffff_ffff) | u64::from(self.u32min)) as i64;
        let new_smax = ((self.smax as u64 & !0xffff_ffff) | u64::from(self.u32max)) as i64;
        self.smin = self.smin.max(new_smin);
        self.smax = self.smax.min(new_smax);
    }

    fn tnum_from_bounds(&mut self) -> bool {
        if self.umin > self.umax || self.u32min > self.u32max {
            return false;
        }
        let Some(t64) = self.var.intersect(Tnum::range(self.umin, self.umax)) else { return false };
        let Some(t32) = t64.subreg().intersect(Tnum::range(u64::from(self.u32min), u64::from(self.u32max))) else {
            return false;
        };
        self.var = t64.with_subreg(t32);
        true
    }

    fn half64(&self) -> Half {
        Half { t: self.var, umin: self.umin, umax: self.umax, smin: self.smin, smax: self.smax }
    }

    fn half32(&self) -> Half {
        Half {
            t: self.var.subreg(),
            umin: u64::from(self.u32min),
            umax: u64::from(self.u32max),
            smin: i64::from(self.s32min),
            smax: i64::from(self.s32max),
        }
    }

    fn from_half64(h: Half, low: Option<Half>) -> Scalar {
        let mut s = Scalar { var: h.t, umin: h.umin, umax: h.umax, smin: h.smin, smax: h.smax, ..Scalar::UNKNOWN };
        if let Some(l) = low
            && let Some(t) = s.var.subreg().intersect(l.t)
        {
            s.var = s.var.with_subreg(t);
            s.u32min = l.umin as u32;
            s.u32max = l.umax as u32;
            s.s32min = l.smin as i32;
            s.s32max = l.smax as i32;
        }
        if !s.sync() {
            return Scalar::UNKNOWN;
        }
        s
    }

    /// A 32-bit result, zero-extended to 64 bits.
    fn from_half32(h: Half) -> Scalar {
        let mut s = Scalar {
            var: h.t.subreg(),
            umin: h.umin,
            umax: h.umax,
            smin: h.umin as i64,
            smax: h.umax as i64,
            u32min: h.umin as u32,
            u32max: h.umax as u32,
            s32min: h.smin as i32,
            s32max: h.smax as i32,
        };
        if !s.sync() {
            return Scalar::unknown_of_size(4);
        }
        s
    }

    /// `self op other` on 64 bits (`alu32 == false`) or on the low 32 bits, zero-extended.
    pub fn alu(&self, op: AluOp, other: &Scalar, alu32: bool) -> Scalar {
        if let (Some(a), Some(b)) = (self.as_const(), other.as_const()) {
            return Scalar::constant(eval_alu(op, a, b, alu32));
        }
        if alu32 {
            return Scalar::from_half32(half_alu(op, self.half32(), other.half32(), 32));
        }
        let h = half_alu(op, self.half64(), other.half64(), 64);
        // The low 32 bits of these results depend only on the operands' low 32 bits.
        let low = matches!(op, AluOp::Add | AluOp::Sub | AluOp::Mul | AluOp::And | AluOp::Or | AluOp::Xor)
            .then(|| half_alu(op, self.half32(), other.half32(), 32));
        Scalar::from_half64(h, low)
    }

    /// Two's-complement negation.
    pub fn neg(&self, alu32: bool) -> Scalar {
        Scalar::constant(0).alu(AluOp::Sub, self, alu32)
    }

    /// The low 32 bits, zero-extended (`mov32`).
    pub fn zext32(&self) -> Scalar {
        Scalar::from_half32(self.half32())
    }

    /// The low `bytes` bytes, zero-extended.
    pub fn truncate(&self, bytes: u32) -> Scalar {
        match bytes {
            8.. => *self,
            4 => self.zext32(),
            _ => {
                if self.umax <= umask(bytes * 8) {
                    return *self;
                }
                Scalar::from_tnum(self.var.cast(bytes))
            }
        }
    }

    /// Sign-extends the low `bytes` bytes to 64 bits (`movsx`), then keeps 32 bits if `alu32`.
    pub fn sign_extend(&self, bytes: u32, alu32: bool) -> Scalar {
        let bits = bytes * 8;
        let fits = self.smin >= smin_of(bits) && self.smax <= smax_of(bits);
        let r = if fits {
            *self
        } else {
            let shift = 64 - bits;
            let t = self.var.lshift(shift).arshift(shift, 64);
            let mut s = Scalar { var: t, smin: smin_of(bits), smax: smax_of(bits), ..Scalar::UNKNOWN };
            if !s.sync() {
                s = Scalar::unknown_signed_of_size(bytes);
            }
            s
        };
        if alu32 { r.zext32() } else { r }
    }

    /// A scalar described only by known bits.
    pub fn from_tnum(t: Tnum) -> Scalar {
        let mut s = Scalar { var: t, ..Scalar::UNKNOWN };
        if !s.sync() {
            return Scalar::UNKNOWN;
        }
        s
    }

    /// Byte swap of the low `bytes` bytes (`be16`, `bswap32`, ...), zero-extended.
    pub fn bswap(&self, bytes: u32) -> Scalar {
        let t = self.var.cast(bytes);
        let swap = |v: u64| -> u64 {
            match bytes {
                2 => u64::from((v as u16).swap_bytes()),
                4 => u64::from((v as u32).swap_bytes()),
                _ => v.swap_bytes(),
            }
        };
        Scalar::from_tnum(Tnum { value: swap(t.value), mask: swap(t.mask) })
    }

    /// Refines `a` and `b` assuming `a cmp b` holds on 64 bits or on the low 32 bits. Returns
    /// `false` when that is impossible (the branch is dead).
    pub fn refine(a: &mut Scalar, b: &mut Scalar, cmp: Cmp, is32: bool) -> bool {
        if is32 { refine32(a, b, cmp) } else { refine64(a, b, cmp) }
    }

    /// The condition's outcome when it is the same for every pair of values: `Some(true)` when
    /// the branch is always taken, `Some(false)` when never.
    pub fn decide(a: &Scalar, b: &Scalar, cmp: Cmp, is32: bool) -> Option<bool> {
        let (mut a1, mut b1) = (*a, *b);
        let can_true = Scalar::refine(&mut a1, &mut b1, cmp, is32);
        let (mut a2, mut b2) = (*a, *b);
        let can_false = Scalar::refine(&mut a2, &mut b2, cmp.negate(), is32);
        match (can_true, can_false) {
            (true, false) => Some(true),
            (false, true) => Some(false),
            _ => None,
        }
    }
}

/// Concrete eBPF ALU semantics (RFC 9669), for constant folding and tests.
pub fn eval_alu(op: AluOp, a: u64, b: u64, alu32: bool) -> u64 {
    if alu32 {
        let (x, y) = (a as u32, b as u32);
        let r = match op {
            AluOp::Add => x.wrapping_add(y),
            AluOp::Sub => x.wrapping_sub(y),
            AluOp::Mul => x.wrapping_mul(y),
            AluOp::Div => x.checked_div(y).unwrap_or(0),
            AluOp::Mod => x.checked_rem(y).unwrap_or(x),
            AluOp::SDiv => {
                if y == 0 {
                    0
                } else {
                    (x as i32).wrapping_div(y as i32) as u32
                }
            }
            AluOp::SMod => {
                if y == 0 {
                    x
                } else {
                    (x as i32).wrapping_rem(y as i32) as u32
                }
            }
            AluOp::Or => x | y,
            AluOp::And => x & y,
            AluOp::Xor => x ^ y,
            AluOp::Lsh => x.wrapping_shl(y & 31),
            AluOp::Rsh => x.wrapping_shr(y & 31),
            AluOp::Arsh => ((x as i32) >> (y & 31)) as u32,
        };
        u64::from(r)
    } else {
        match op {
            AluOp::Add => a.wrapping_add(b),
            AluOp::Sub => a.wrapping_sub(b),
            AluOp::Mul => a.wrapping_mul(b),
            AluOp::Div => a.checked_div(b).unwrap_or(0),
            AluOp::Mod => a.checked_rem(b).unwrap_or(a),
            AluOp::SDiv => {
                if b == 0 {
                    0
                } else {
                    (a as i64).wrapping_div(b as i64) as u64
                }
            }
            AluOp::SMod => {
                if b == 0 {
                    a
                } else {
                    (a as i64).wrapping_rem(b as i64) as u64
                }
            }
            AluOp::Or => a | b,
            AluOp::And => a & b,
            AluOp::Xor => a ^ b,
            AluOp::Lsh => a.wrapping_shl((b & 63) as u32),
            AluOp::Rsh => a.wrapping_shr((b & 63) as u32),
            AluOp::Arsh => ((a as i64) >> (b & 63)) as u64,
        }
    }
}

fn refine64(a: &mut Scalar, b: &mut Scalar, cmp: Cmp) -> bool {
    match cmp {
        Cmp::Eq => {
            let Some(t) = a.var.intersect(b.var) else { return false };
            let m = Scalar {
                var: t,
                umin: a.umin.max(b.umin),
                umax: a.umax.min(b.umax),
                smin: a.smin.max(b.smin),
                smax: a.smax.min(b.smax),
                u32min: a.u32min.max(b.u32min),
                u32max: a.u32max.min(b.u32max),
                s32min: a.s32min.max(b.s32min),
                s32max: a.s32max.min(b.s32max),
            };
            *a = m;
            *b = m;
        }
        Cmp::Ne => {
            if let (Some(x), Some(y)) = (a.as_const(), b.as_const()) {
                return x != y;
            }
            let (ca, cb) = (a.as_const(), b.as_const());
            for (x, c) in [(&mut *a, cb), (&mut *b, ca)] {
                let Some(c) = c else { continue };
                if x.umin == c {
                    x.umin = x.umin.saturating_add(1);
                }
                if x.umax == c {
                    x.umax = x.umax.saturating_sub(1);
                }
                if x.smin == c as i64 {
                    x.smin = x.smin.saturating_add(1);
                }
                if x.smax == c as i64 {
                    x.smax = x.smax.saturating_sub(1);
                }
            }
        }
        Cmp::Lt | Cmp::Le => {
            let strict = u64::from(cmp == Cmp::Lt);
            let Some(amax) = b.umax.checked_sub(strict) else { return false };
            let Some(bmin) = a.umin.checked_add(strict) else { return false };
            a.umax = a.umax.min(amax);
            b.umin = b.umin.max(bmin);
        }
        Cmp::Slt | Cmp::Sle => {
            let strict = i64::from(cmp == Cmp::Slt);
            let Some(amax) = b.smax.checked_sub(strict) else { return false };
            let Some(bmin) = a.smin.checked_add(strict) else { return false };
            a.smax = a.smax.min(amax);
            b.smin = b.smin.max(bmin);
        }
        Cmp::Gt | Cmp::Ge | Cmp::Sgt | Cmp::Sge => return refine64(b, a, cmp.swap()),
        Cmp::Set => {
            if let Some(c) = b.as_const() {
                if a.var.value & c != 0 {
                    // Already certainly set.
                } else if (a.var.value | a.var.mask) & c == 0 {
                    return false;
                } else if c.is_power_of_two() {
                    a.var = Tnum::new(a.var.value | c, a.var.mask & !c);
                }
            } else if let Some(c) = a.as_const() {
                let mut x = *b;
                let mut y = Scalar::constant(c);
                if !refine64(&mut x, &mut y, Cmp::Set) {
                    return false;
                }
                *b = x;
            }
        }
        Cmp::NotSet => {
            if let Some(c) = b.as_const() {
                if a.var.value & c != 0 {
                    return false;
                }
                a.var = Tnum::new(a.var.value, a.var.mask & !c);
            } else if let Some(c) = a.as_const() {
                if b.var.value & c != 0 {
                    return false;
                }
                b.var = Tnum::new(b.var.value, b.var.mask & !c);
            }
        }
    }
    a.sync() && b.sync()
}

fn refine32(a: &mut Scalar, b: &mut Scalar, cmp: Cmp) -> bool {
    match cmp {
        Cmp::Eq => {
            let Some(t) = a.var.subreg().intersect(b.var.subreg()) else { return false };
            let (umin, umax) = (a.u32min.max(b.u32min), a.u32max.min(b.u32max));
            let (smin, smax) = (a.s32min.max(b.s32min), a.s32max.min(b.s32max));
            for x in [&mut *a, &mut *b] {
                x.var = x.var.with_subreg(t);
                x.u32min = umin;
                x.u32max = umax;
                x.s32min = smin;
                x.s32max = smax;
            }
        }
        Cmp::Ne => {
            if let (Some(x), Some(y)) = (a.as_const32(), b.as_const32()) {
                return x != y;
            }
            let (ca, cb) = (a.as_const32(), b.as_const32());
            for (x, c) in [(&mut *a, cb), (&mut *b, ca)] {
                let Some(c) = c else { continue };
                if x.u32min == c {
                    x.u32min = x.u32min.saturating_add(1);
                }
                if x.u32max == c {
                    x.u32max = x.u32max.saturating_sub(1);
                }
                if x.s32min == c as i32 {
                    x.s32min = x.s32min.saturating_add(1);
                }
                if x.s32max == c as i32 {
                    x.s32max = x.s32max.saturating_sub(1);
                }
            }
        }
        Cmp::Lt | Cmp::Le => {
            let strict = u32::from(cmp == Cmp::Lt);
            let Some(amax) = b.u32max.checked_sub(strict) else { return false };
            let Some(bmin) = a.u32min.checked_add(strict) else { return false };
            a.u32max = a.u32max.min(amax);
            b.u32min = b.u32min.max(bmin);
        }
        Cmp::Slt | Cmp::Sle => {
            let strict = i32::from(cmp == Cmp::Slt);
            let Some(amax) = b.s32max.checked_sub(strict) else { return false };
            let Some(bmin) = a.s32min.checked_add(strict) else { return false };
            a.s32max = a.s32max.min(amax);
            b.s32min = b.s32min.max(bmin);
        }
        Cmp::Gt | Cmp::Ge | Cmp::Sgt | Cmp::Sge => return refine32(b, a, cmp.swap()),
        Cmp::Set | Cmp::NotSet => {
            // Only the low 32 bits of the constant take part.
            let (x, c) = match (a.as_const32(), b.as_const32()) {
                (_, Some(c)) => (&mut *a, c),
                (Some(c), None) => (&mut *b, c),
                (None, None) => return a.sync() && b.sync(),
            };
            let c = u64::from(c);
            let t = x.var;
            if cmp == Cmp::Set {
                if t.value & c != 0 {
                } else if (t.value | t.mask) & c == 0 {
                    return false;
                } else if c.is_power_of_two() {
                    x.var = Tnum::new(t.value | c, t.mask & !c);
                }
            } else {
                if t.value & c != 0 {
                    return false;
                }
                x.var = Tnum::new(t.value, t.mask & !c);
            }
        }
    }
    a.sync() && b.sync()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A scalar built from a random range and random known bits, with a concrete member.
    fn member() -> impl Strategy<Value = (Scalar, u64)> {
        (any::<u64>(), any::<u64>(), 0u32..5, any::<u64>()).prop_map(|(x, spread, kind, junk)| {
            let s = match kind {
                0 => Scalar::constant(x),
                1 => {
                    let width = spread % 4096;
                    let lo = x.saturating_sub(width / 2);
                    Scalar::urange(lo, lo.saturating_add(width))
                }
                2 => {
                    let width = (spread % 100_000) as i64;
                    let lo = (x as i64).saturating_sub(width / 2);
                    Scalar::srange(lo, lo.saturating_add(width))
                }
                3 => Scalar::from_tnum(Tnum::new(x, spread)),
                _ => Scalar::unknown_of_size((spread % 4 + 1) as u32 * 2),
            };
            // Pick a member: start from x when it fits, else from the tnum.
            let v = if s.contains(x) {
                x
            } else if s.contains(s.umin) {
                s.umin
            } else {
                let cand = s.var.value | (junk & s.var.mask);
                if s.contains(cand) { cand } else { s.umax }
            };
            (s, v)
        })
    }

    const OPS: [AluOp; 13] = [
        AluOp::Add,
        AluOp::Sub,
        AluOp::Mul,
        AluOp::Div,
        AluOp::SDiv,
        AluOp::Mod,
        AluOp::SMod,
        AluOp::Or,
        AluOp::And,
        AluOp::Xor,
        AluOp::Lsh,
        AluOp::Rsh,
        AluOp::Arsh,
    ];

    const CMPS: [Cmp; 12] = [
        Cmp::Eq,
        Cmp::Ne,
        Cmp::Gt,
        Cmp::Ge,
        Cmp::Lt,
        Cmp::Le,
        Cmp::Sgt,
        Cmp::Sge,
        Cmp::Slt,
        Cmp::Sle,
        Cmp::Set,
        Cmp::NotSet,
    ];

    #[test]
    fn constants_and_ranges() {
        let c = Scalar::constant(7);
        assert!(c.contains(7) && !c.contains(8));
        let r = Scalar::urange(10, 20);
        assert_eq!((r.umin, r.umax, r.smin, r.smax, r.u32min, r.u32max), (10, 20, 10, 20, 10, 20));
        let s = Scalar::srange(-5, 5);
        assert!(s.contains((-3i64) as u64) && s.contains(4) && !s.contains(6));
        let b = Scalar::unknown_of_size(1);
        assert_eq!((b.umin, b.umax, b.var), (0, 255, Tnum::new(0, 255)));
        // A 32-bit add of two bytes stays small; a mask bounds anything.
        let sum = b.alu(AluOp::Add, &b, true);
        assert_eq!((sum.umin, sum.umax), (0, 510));
        let masked = Scalar::UNKNOWN.alu(AluOp::And, &Scalar::constant(0xff), false);
        assert_eq!((masked.umin, masked.umax), (0, 255));
        assert!(Scalar::UNKNOWN.includes(&masked) && !masked.includes(&Scalar::UNKNOWN));
    }

    #[test]
    fn branches_refine() {
        let mut a = Scalar::unknown_of_size(2);
        let mut b = Scalar::constant(100);
        assert!(Scalar::refine(&mut a, &mut b, Cmp::Lt, false));
        assert_eq!((a.umin, a.umax), (0, 99));
        let mut c = Scalar::constant(5);
        let mut d = Scalar::constant(3);
        assert!(!Scalar::refine(&mut c, &mut d, Cmp::Lt, false));
        assert_eq!(Scalar::decide(&Scalar::constant(5), &Scalar::constant(5), Cmp::Eq, false), Some(true));
        assert_eq!(Scalar::decide(&Scalar::urange(0, 9), &Scalar::constant(10), Cmp::Lt, false), Some(true));
        assert_eq!(Scalar::decide(&Scalar::urange(0, 10), &Scalar::constant(10), Cmp::Lt, false), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn members_are_valid((s, v) in member()) {
            prop_assert!(s.is_valid());
            prop_assert!(s.contains(v), "{s:?} does not contain {v:#x}");
        }

        #[test]
        fn alu_is_sound((a, x) in member(), (b, y) in member(), op in 0usize..13, alu32: bool) {
            let op = OPS[op];
            let r = a.alu(op, &b, alu32);
            let v = eval_alu(op, x, y, alu32);
            prop_assert!(r.contains(v), "{a:?} {op:?} {b:?} (32={alu32}) = {r:?} misses {x:#x} op {y:#x} = {v:#x}");
        }

        #[test]
        fn unary_is_sound((a, x) in member(), bytes in prop::sample::select(vec![1u32, 2, 4]), alu32: bool) {
            let negated = if alu32 { u64::from((x as u32).wrapping_neg()) } else { x.wrapping_neg() };
            prop_assert!(a.neg(alu32).contains(negated));
            prop_assert!(a.zext32().contains(x & 0xffff_ffff));
            prop_assert!(a.truncate(bytes).contains(x & umask(bytes * 8)));
            let shift = 64 - bytes * 8;
            let sx = ((x << shift) as i64 >> shift) as u64;
            let want = if alu32 { sx & 0xffff_ffff } else { sx };
            prop_assert!(a.sign_extend(bytes, alu32).contains(want));
            let swapped = match bytes {
                2 => u64::from((x as u16).swap_bytes()),
                4 => u64::from((x as u32).swap_bytes()),
                _ => u64::from(x as u8),
            };
            if bytes != 1 {
                prop_assert!(a.bswap(bytes).contains(swapped));
            }
            prop_assert!(a.bswap(8).contains(x.swap_bytes()));
        }

        #[test]
        fn refine_is_sound((a, x) in member(), (b, y) in member(), cmp in 0usize..12, is32: bool) {
            let cmp = CMPS[cmp];
            let holds = cmp.eval(x, y, if is32 { 32 } else { 64 });
            let (mut ra, mut rb) = (a, b);
            let feasible = Scalar::refine(&mut ra, &mut rb, cmp, is32);
            if holds {
                prop_assert!(feasible, "{a:?} {cmp:?} {b:?} judged impossible for {x:#x}, {y:#x}");
                prop_assert!(ra.contains(x) && rb.contains(y), "{a:?} {cmp:?} {b:?} -> {ra:?}, {rb:?} lost {x:#x}, {y:#x}");
            }
            if let Some(d) = Scalar::decide(&a, &b, cmp, is32) {
                prop_assert_eq!(d, holds);
            }
        }

        #[test]
        fn includes_is_sound((a, _x) in member(), (b, y) in member()) {
            if a.includes(&b) {
                prop_assert!(a.contains(y));
            }
        }
    }
}
