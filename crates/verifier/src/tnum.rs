//! Tristate numbers: which bits of a 64-bit value are known, and their values.
//!
//! The same abstract domain as the Linux verifier's `tnum` (Edward Cree's design): a value `v`
//! belongs to `Tnum { value, mask }` when `v & !mask == value`. Bits set in `mask` are unknown;
//! bits clear in `mask` are known to equal the corresponding bit of `value`. `value & mask` is
//! always zero. Every operation here over-approximates: if `a ∈ x` and `b ∈ y` then
//! `a op b ∈ x.op(y)` (the property tests check this).

use core::fmt;

/// A tristate number: known bits (`value`) and unknown bits (`mask`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tnum {
    /// Values of the known bits (zero where unknown).
    pub value: u64,
    /// Unknown bits.
    pub mask: u64,
}

impl fmt::Debug for Tnum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({:#x}; {:#x})", self.value, self.mask)
    }
}

#[allow(
    clippy::should_implement_trait,
    reason = "wrapping abstract operations, named as the kernel's tnum_* functions"
)]
impl Tnum {
    /// Every 64-bit value.
    pub const UNKNOWN: Tnum = Tnum { value: 0, mask: u64::MAX };

    /// Exactly `v`.
    pub const fn constant(v: u64) -> Tnum {
        Tnum { value: v, mask: 0 }
    }

    /// A tnum from parts, normalised so that unknown bits have value zero.
    pub const fn new(value: u64, mask: u64) -> Tnum {
        Tnum { value: value & !mask, mask }
    }

    /// The smallest tnum holding every value of `min..=max` (unsigned).
    pub fn range(min: u64, max: u64) -> Tnum {
        let chi = min ^ max;
        let bits = 64 - chi.leading_zeros();
        if bits > 63 {
            return Tnum::UNKNOWN;
        }
        let delta = (1u64 << bits) - 1;
        Tnum::new(min & !delta, delta)
    }

    /// Whether every bit is known.
    pub const fn is_const(self) -> bool {
        self.mask == 0
    }

    /// Whether `v` is one of the values this tnum describes.
    pub const fn contains(self, v: u64) -> bool {
        v & !self.mask == self.value
    }

    /// Whether every value of `other` is also a value of `self`.
    pub const fn includes(self, other: Tnum) -> bool {
        if other.mask & !self.mask != 0 {
            return false;
        }
        other.value & !self.mask == self.value
    }

    /// The smallest unsigned value.
    pub const fn umin(self) -> u64 {
        self.value
    }

    /// The largest unsigned value.
    pub const fn umax(self) -> u64 {
        self.value | self.mask
    }

    /// Shifts left by a known amount (`shift < 64`).
    pub const fn lshift(self, shift: u32) -> Tnum {
        Tnum { value: self.value << (shift & 63), mask: self.mask << (shift & 63) }
    }

    /// Logical right shift by a known amount (`shift < 64`).
    pub const fn rshift(self, shift: u32) -> Tnum {
        Tnum { value: self.value >> (shift & 63), mask: self.mask >> (shift & 63) }
    }

    /// Arithmetic right shift of the low `bits` (32 or 64) bits by a known amount.
    pub fn arshift(self, shift: u32, bits: u32) -> Tnum {
        if bits == 32 {
            let value = ((self.value as u32 as i32) >> (shift & 31)) as u32 as u64;
            let mask = ((self.mask as u32 as i32) >> (shift & 31)) as u32 as u64;
            Tnum { value, mask }
        } else {
            Tnum {
                value: ((self.value as i64) >> (shift & 63)) as u64,
                mask: ((self.mask as i64) >> (shift & 63)) as u64,
            }
        }
    }

    /// Wrapping addition.
    pub const fn add(self, other: Tnum) -> Tnum {
        let sm = self.mask.wrapping_add(other.mask);
        let sv = self.value.wrapping_add(other.value);
        let sigma = sm.wrapping_add(sv);
        let chi = sigma ^ sv;
        let mu = chi | self.mask | other.mask;
        Tnum { value: sv & !mu, mask: mu }
    }

    /// Wrapping subtraction.
    pub const fn sub(self, other: Tnum) -> Tnum {
        let dv = self.value.wrapping_sub(other.value);
        let alpha = dv.wrapping_add(self.mask);
        let beta = dv.wrapping_sub(other.mask);
        let chi = alpha ^ beta;
        let mu = chi | self.mask | other.mask;
        Tnum { value: dv & !mu, mask: mu }
    }

    /// Wrapping negation.
    pub const fn neg(self) -> Tnum {
        Tnum::constant(0).sub(self)
    }

    /// Bitwise and.
    pub const fn and(self, other: Tnum) -> Tnum {
        let alpha = self.value | self.mask;
        let beta = other.value | other.mask;
        let v = self.value & other.value;
        Tnum { value: v, mask: alpha & beta & !v }
    }

    /// Bitwise or.
    pub const fn or(self, other: Tnum) -> Tnum {
        let v = self.value | other.value;
        let mu = self.mask | other.mask;
        Tnum { value: v, mask: mu & !v }
    }

    /// Bitwise exclusive or.
    pub const fn xor(self, other: Tnum) -> Tnum {
        let v = self.value ^ other.value;
        let mu = self.mask | other.mask;
        Tnum { value: v & !mu, mask: mu }
    }

    /// Wrapping multiplication (the kernel's shift-and-add algorithm).
    pub fn mul(self, other: Tnum) -> Tnum {
        let acc_v = self.value.wrapping_mul(other.value);
        let mut acc_m = Tnum::constant(0);
        let (mut a, mut b) = (self, other);
        while a.value != 0 || a.mask != 0 {
            if a.value & 1 != 0 {
                acc_m = acc_m.add(Tnum { value: 0, mask: b.mask });
            } else if a.mask & 1 != 0 {
                acc_m = acc_m.add(Tnum { value: 0, mask: b.value | b.mask });
            }
            a = a.rshift(1);
            b = b.lshift(1);
        }
        Tnum::constant(acc_v).add(acc_m)
    }

    /// Values described by both (`None` when they contradict each other).
    pub const fn intersect(self, other: Tnum) -> Option<Tnum> {
        if (self.value ^ other.value) & !self.mask & !other.mask != 0 {
            return None;
        }
        let v = self.value | other.value;
        let mu = self.mask & other.mask;
        Some(Tnum { value: v & !mu, mask: mu })
    }

    /// The smallest tnum describing the values of both.
    pub const fn union(self, other: Tnum) -> Tnum {
        let mu = self.mask | other.mask | (self.value ^ other.value);
        Tnum { value: self.value & !mu, mask: mu }
    }

    /// Truncates to the low `bytes` bytes (zero-extended).
    pub const fn cast(self, bytes: u32) -> Tnum {
        if bytes >= 8 {
            return self;
        }
        let keep = (1u64 << (bytes * 8)) - 1;
        Tnum { value: self.value & keep, mask: self.mask & keep }
    }

    /// The low 32 bits, zero-extended.
    pub const fn subreg(self) -> Tnum {
        self.cast(4)
    }

    /// The high 32 bits only (low 32 bits known zero).
    pub const fn clear_subreg(self) -> Tnum {
        Tnum { value: self.value & !0xffff_ffff, mask: self.mask & !0xffff_ffff }
    }

    /// High 32 bits of `self` with the low 32 bits of `low`.
    pub const fn with_subreg(self, low: Tnum) -> Tnum {
        let low = low.subreg();
        let high = self.clear_subreg();
        Tnum { value: high.value | low.value, mask: high.mask | low.mask }
    }

    /// Whether the value is certainly a multiple of `size` (a power of two).
    pub const fn is_aligned(self, size: u64) -> bool {
        if size == 0 {
            return true;
        }
        (self.value | self.mask) & (size - 1) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A tnum together with a concrete member.
    fn member() -> impl Strategy<Value = (Tnum, u64)> {
        (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(value, mask, pick)| {
            let t = Tnum::new(value, mask);
            (t, t.value | (pick & t.mask))
        })
    }

    #[test]
    fn basics() {
        assert_eq!(Tnum::range(0, 255), Tnum::new(0, 0xff));
        assert_eq!(Tnum::range(16, 31), Tnum::new(16, 0xf));
        assert_eq!(Tnum::range(0, u64::MAX), Tnum::UNKNOWN);
        assert!(Tnum::constant(4).is_const());
        assert!(!Tnum::new(8, 7).is_aligned(8));
        assert!(Tnum::new(8, 0).is_aligned(8));
        assert_eq!(Tnum::constant(5).intersect(Tnum::constant(6)), None);
        assert!(Tnum::UNKNOWN.includes(Tnum::constant(3)));
        assert!(!Tnum::constant(3).includes(Tnum::UNKNOWN));
    }

    proptest! {
        #[test]
        fn binary_ops_are_sound((a, x) in member(), (b, y) in member()) {
            prop_assert!(a.add(b).contains(x.wrapping_add(y)));
            prop_assert!(a.sub(b).contains(x.wrapping_sub(y)));
            prop_assert!(a.mul(b).contains(x.wrapping_mul(y)));
            prop_assert!(a.and(b).contains(x & y));
            prop_assert!(a.or(b).contains(x | y));
            prop_assert!(a.xor(b).contains(x ^ y));
            prop_assert!(a.union(b).contains(x) && a.union(b).contains(y));
            if let Some(i) = a.intersect(b) {
                if a.contains(y) {
                    prop_assert!(i.contains(y));
                }
            } else {
                prop_assert!(!a.contains(y) || !b.contains(y));
            }
        }

        #[test]
        fn unary_ops_are_sound((a, x) in member(), shift in 0u32..64) {
            prop_assert!(a.neg().contains(x.wrapping_neg()));
            prop_assert!(a.lshift(shift).contains(x << shift));
            prop_assert!(a.rshift(shift).contains(x >> shift));
            prop_assert!(a.arshift(shift, 64).contains(((x as i64) >> shift) as u64));
            prop_assert!(a.arshift(shift & 31, 32).contains(((x as u32 as i32) >> (shift & 31)) as u32 as u64));
            prop_assert!(a.cast(2).contains(x & 0xffff));
            prop_assert!(a.subreg().contains(x & 0xffff_ffff));
            prop_assert!(a.umin() <= x && x <= a.umax());
        }

        #[test]
        fn range_is_sound(lo in any::<u64>(), hi in any::<u64>(), pick in any::<u64>()) {
            let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
            let v = if hi == lo { lo } else { lo + pick % (hi - lo) };
            prop_assert!(Tnum::range(lo, hi).contains(v));
        }

        #[test]
        fn includes_matches_membership((a, _x) in member(), (b, y) in member()) {
            if a.includes(b) {
                prop_assert!(a.contains(y));
            }
        }
    }
}
