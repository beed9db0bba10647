//! Fixed-point arithmetic on raw integers, bit-identical to `substrate-fixed` 0.6.0.
//!
//! Each type is a `#[repr(transparent)]` newtype over its raw bits, so epochs pack into
//! flat GPU buffers as they are. Every operation mirrors the upstream one of the same
//! name: products are exact and floored (arithmetic shift), quotients truncate toward
//! zero, `saturating_*` clamps to the type's range, `checked_*` returns `None` on
//! overflow, and `safe_div` returns zero on overflow or a zero divisor. Plain sums
//! (`Iterator::sum` upstream) wrap, as the chain's release build does.
//! The WGSL (`kernels/fixed.wgsl`) and CUDA (`kernels/fixed.cuh`) helpers mirror these
//! functions name for name.

use bytemuck::{Pod, Zeroable};

mod exp_many;
pub use exp_many::exp_safe_many;

/// Signed fixed point with 32 integer and 32 fraction bits (`I32F32`), raw bits in an `i64`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Pod, Zeroable)]
#[repr(transparent)]
pub struct I32F32(pub i64);

/// Signed fixed point with 64 integer and 64 fraction bits (`I64F64`), raw bits in an `i128`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Pod, Zeroable)]
#[repr(transparent)]
pub struct I64F64(pub i128);

/// Signed fixed point with 96 integer and 32 fraction bits (`I96F32`), raw bits in an `i128`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Pod, Zeroable)]
#[repr(transparent)]
pub struct I96F32(pub i128);

/// Unsigned fixed point with 96 integer and 32 fraction bits (`U96F32`), raw bits in a `u128`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Pod, Zeroable)]
#[repr(transparent)]
pub struct U96F32(pub u128);

/// `e` as the upstream `transcendental::E` constant (I9F23) widened to I32F32.
const E_I32F32: i64 = 22_802_600 << 9;

impl I32F32 {
    /// 0.
    pub const ZERO: Self = Self(0);
    /// 1.
    pub const ONE: Self = Self(1 << 32);
    /// 0.5.
    pub const HALF: Self = Self(1 << 31);
    /// Largest value.
    pub const MAX: Self = Self(i64::MAX);
    /// Smallest value.
    pub const MIN: Self = Self(i64::MIN);

    /// `from_num(u16)`: exact.
    pub const fn from_u16(x: u16) -> Self {
        Self((x as i64) << 32)
    }

    /// `saturating_from_num` of an integer: saturates outside the 32 integer bits.
    pub const fn saturating_from_int(x: i64) -> Self {
        if x > i32::MAX as i64 {
            Self::MAX
        } else if x < i32::MIN as i64 {
            Self::MIN
        } else {
            Self(x << 32)
        }
    }

    /// `saturating_from_num(I64F64)`: drops 32 fraction bits (floor), saturates.
    pub const fn saturating_from_i64f64(x: I64F64) -> Self {
        Self(clamp_i128_to_i64(x.0 >> 32))
    }

    /// Saturating addition.
    pub const fn saturating_add(self, rhs: Self) -> Self {
        Self(self.0.saturating_add(rhs.0))
    }

    /// Saturating subtraction.
    pub const fn saturating_sub(self, rhs: Self) -> Self {
        Self(self.0.saturating_sub(rhs.0))
    }

    /// Wrapping addition: upstream `Add`/`Sum` in a release build.
    pub const fn wrapping_add(self, rhs: Self) -> Self {
        Self(self.0.wrapping_add(rhs.0))
    }

    /// Checked addition.
    pub const fn checked_add(self, rhs: Self) -> Option<Self> {
        match self.0.checked_add(rhs.0) {
            Some(v) => Some(Self(v)),
            None => None,
        }
    }

    /// Checked negation.
    pub const fn checked_neg(self) -> Option<Self> {
        match self.0.checked_neg() {
            Some(v) => Some(Self(v)),
            None => None,
        }
    }

    /// Checked multiplication: the exact product, floored to 32 fraction bits.
    pub const fn checked_mul(self, rhs: Self) -> Option<Self> {
        let p = (self.0 as i128 * rhs.0 as i128) >> 32;
        if p > i64::MAX as i128 || p < i64::MIN as i128 {
            None
        } else {
            Some(Self(p as i64))
        }
    }

    /// Saturating multiplication.
    pub const fn saturating_mul(self, rhs: Self) -> Self {
        match self.checked_mul(rhs) {
            Some(v) => v,
            None if (self.0 < 0) != (rhs.0 < 0) => Self::MIN,
            None => Self::MAX,
        }
    }

    /// Checked division: `(a << 32) / b` truncated toward zero; `None` on overflow or `b == 0`.
    pub fn checked_div(self, rhs: Self) -> Option<Self> {
        if rhs.0 == 0 {
            return None;
        }
        if self.0 >= 0 && rhs.0 > 0 {
            // Non-negative operands (every hot division of the epoch): the quotient fits a
            // u64 exactly when the numerator's high word is below the divisor.
            let (hi, lo) = ((self.0 as u64) >> 32, (self.0 as u64) << 32);
            if hi >= rhs.0 as u64 {
                return None;
            }
            let q = div_u128_by_u64(hi, lo, rhs.0 as u64);
            return if q > i64::MAX as u64 {
                None
            } else {
                Some(Self(q as i64))
            };
        }
        let q = ((self.0 as i128) << 32) / rhs.0 as i128;
        if q > i64::MAX as i128 || q < i64::MIN as i128 {
            None
        } else {
            Some(Self(q as i64))
        }
    }

    /// Saturating division (upstream panics on a zero divisor; here it saturates by sign).
    pub fn saturating_div(self, rhs: Self) -> Self {
        match self.checked_div(rhs) {
            Some(v) => v,
            None if (self.0 < 0) != (rhs.0 < 0) => Self::MIN,
            None => Self::MAX,
        }
    }

    /// `safe_div`: the quotient, or 0 on overflow or a zero divisor.
    pub fn safe_div(self, rhs: Self) -> Self {
        match self.checked_div(rhs) {
            Some(v) => v,
            None => Self::ZERO,
        }
    }

    /// `saturating_to_num::<u16>()`: floor, clamped to `0..=u16::MAX`.
    pub const fn saturating_to_u16(self) -> u16 {
        let i = self.0 >> 32;
        if i < 0 {
            0
        } else if i > u16::MAX as i64 {
            u16::MAX
        } else {
            i as u16
        }
    }

    /// `saturating_to_num::<u64>()`: floor, clamped at 0.
    pub const fn saturating_to_u64(self) -> u64 {
        let i = self.0 >> 32;
        if i < 0 { 0 } else { i as u64 }
    }

    /// `round()`: to the nearest integer, ties away from zero (saturating at the top).
    pub const fn round(self) -> Self {
        const HALF: i64 = 1 << 31;
        const INT: i64 = !((1 << 32) - 1);
        if self.0 >= 0 {
            Self(self.0.saturating_add(HALF) & INT)
        } else {
            // -round(|x|) on the magnitude as a u64: |MIN| and |x| + 1/2 fit there, and the
            // rounded magnitude is at most 2^63, whose negation is MIN.
            let mag = (self.0.unsigned_abs() + HALF as u64) & INT as u64;
            Self((mag as i64).wrapping_neg())
        }
    }

    /// `max` as `Ord::max`.
    pub const fn max_of(self, rhs: Self) -> Self {
        if self.0 >= rhs.0 { self } else { rhs }
    }

    /// `min` as `Ord::min`.
    pub const fn min_of(self, rhs: Self) -> Self {
        if self.0 <= rhs.0 { self } else { rhs }
    }
}

/// An I32F32 divisor prepared once for many `checked_div`/`safe_div` by it: with a
/// non-negative numerator and a positive divisor the quotient comes from precomputed
/// reciprocals, a few multiplies instead of a hardware division. Results equal
/// `I32F32::checked_div` for every numerator.
#[derive(Clone, Copy, Debug)]
pub struct I32F32Divisor {
    d: I32F32,
    /// Divisor shifted so its top bit is set.
    norm: u64,
    shift: u32,
    /// `floor((2^128 - 1) / norm) - 2^64`.
    inv: u64,
    /// Granlund–Montgomery multiplier for 64-bit numerators: `floor(2^64 (2^l - d) / d) + 1`
    /// with `l = ceil(log2 d)`, where `d` is the raw divisor, or its integer part when
    /// `integral`.
    magic: u64,
    /// `min(l, 1)` and `max(l - 1, 0)`.
    sh1: u32,
    sh2: u32,
    /// The divisor is a whole number `w`: then `(a << 32) / (w << 32)` is just `a / w`.
    integral: bool,
}

impl I32F32Divisor {
    /// Prepares `d` (any value; non-positive divisors use the plain path).
    pub fn new(d: I32F32) -> Self {
        if d.0 <= 0 {
            return Self {
                d,
                norm: 0,
                shift: 0,
                inv: 0,
                magic: 0,
                sh1: 0,
                sh2: 0,
                integral: false,
            };
        }
        let du = d.0 as u64;
        let shift = du.leading_zeros();
        let norm = du << shift;
        let inv = ((((!norm) as u128) << 64) | u64::MAX as u128) / norm as u128;
        let (magic, sh1, sh2, integral) = gm_params(du);
        Self {
            d,
            norm,
            shift,
            inv: inv as u64,
            magic,
            sh1,
            sh2,
            integral,
        }
    }

    /// `floor(n / g)` for the 64-bit divisor `g` the multiplier was made for.
    #[inline(always)]
    fn gm_quotient(&self, n: u64) -> u64 {
        let t = ((self.magic as u128 * n as u128) >> 64) as u64;
        (t + ((n - t) >> self.sh1)) >> self.sh2
    }

    /// `a.checked_div(d)`.
    #[inline(always)]
    pub fn checked_div(&self, a: I32F32) -> Option<I32F32> {
        if a.0 < 0 || self.norm == 0 {
            return self.general_div(a);
        }
        let a = a.0 as u64;
        let q = if self.integral {
            // Below 2^63 and no larger than `a`: never overflows.
            self.gm_quotient(a)
        } else if a >> 32 == 0 {
            // Values below 1 (the normalised weights and bonds): the numerator `a << 32`
            // fits 64 bits, where one high multiply and two shifts divide exactly.
            self.gm_quotient(a << 32)
        } else {
            self.wide_quotient(a)?
        };
        if q > i64::MAX as u64 {
            None
        } else {
            Some(I32F32(q as i64))
        }
    }

    /// `floor((a << 32) / d)` for `a >= 2^32` by the 2-by-1 reciprocal (Möller–Granlund);
    /// `None` when it does not fit 64 bits.
    #[inline]
    fn wide_quotient(&self, a: u64) -> Option<u64> {
        if a >> 32 >= self.d.0 as u64 {
            return None;
        }
        // Numerator `a << 32` normalised with the divisor: below `norm << 64`, so it fits.
        let num = (a as u128) << (32 + self.shift);
        let (u1, u0) = ((num >> 64) as u64, num as u64);
        let p = self.inv as u128 * u1 as u128 + num;
        let (mut q1, q0) = (((p >> 64) as u64).wrapping_add(1), p as u64);
        let mut r = u0.wrapping_sub(q1.wrapping_mul(self.norm));
        if r > q0 {
            q1 = q1.wrapping_sub(1);
            r = r.wrapping_add(self.norm);
        }
        if r >= self.norm {
            q1 += 1;
        }
        Some(q1)
    }

    /// Negative numerators and non-positive divisors: the plain division, kept off the hot path.
    #[cold]
    #[inline(never)]
    fn general_div(&self, a: I32F32) -> Option<I32F32> {
        a.checked_div(self.d)
    }

    /// The divisor.
    pub fn divisor(&self) -> I32F32 {
        self.d
    }

    /// `a.safe_div(d)`.
    #[inline(always)]
    pub fn safe_div(&self, a: I32F32) -> I32F32 {
        self.checked_div(a).unwrap_or(I32F32::ZERO)
    }
}

/// Granlund–Montgomery parameters `(magic, sh1, sh2, integral)` for dividing I32F32 values
/// by the positive raw divisor `d`: when `integral` (`d` a whole number `g`) the raw
/// quotient is `gm(a)`, else `gm(a << 32)` for `a < 2^32` (and `g = d`), where
/// `gm(x) = (t + ((x - t) >> sh1)) >> sh2` and `t` is the high word of `magic * x`.
pub fn gm_params(d: u64) -> (u64, u32, u32, bool) {
    // Sums of u16 weights and raw bonds are whole numbers.
    let integral = d & 0xFFFF_FFFF == 0;
    let g = if integral { d >> 32 } else { d };
    let l = u64::BITS - (g - 1).leading_zeros();
    // `floor(2^64 (2^l - g) / g) + 1`; `2^l - g < g`, so the quotient fits 64 bits.
    let magic = div_u128_by_u64(((1u128 << l) - g as u128) as u64, 0, g).wrapping_add(1);
    (magic, l.min(1), l.saturating_sub(1), integral)
}

/// `u16_proportion_to_fixed` / `fixed_to_fixed_u16_proportion` of a u16: `x / 65535`.
pub fn u16_proportion_to_fixed(x: u16) -> I32F32 {
    // floor(x * 2^32 / 65535) without a division: 2^32 = 65535 * 65537 + 1.
    I32F32(x as i64 * 65_537 + (x == u16::MAX) as i64)
}

/// `fixed_proportion_to_u16`: `x * 65535`, floored and clamped to u16.
pub fn fixed_proportion_to_u16(x: I32F32) -> u16 {
    x.saturating_mul(I32F32::from_u16(u16::MAX))
        .saturating_to_u16()
}

/// `substrate_fixed::transcendental::exp` for I32F32 in and out: a 30-term Taylor
/// series with checked operations, inverted for negative input.
pub fn exp(operand: I32F32) -> Option<I32F32> {
    exp_lanes([operand])[0]
}

/// [`exp`] of `L` independent inputs evaluated in lockstep: each lane runs exactly the
/// upstream series, but interleaving independent lanes keeps the multiplier busy instead of
/// waiting on one long dependency chain.
pub fn exp_lanes<const L: usize>(operands: [I32F32; L]) -> [Option<I32F32>; L] {
    let mut out = [None; L];
    let (mut x, mut result, mut term) = ([0i64; L], [0i64; L], [0i64; L]);
    let mut neg = [false; L];
    // `summing`: lane still adding terms; `series`: lane went through the series at all.
    let (mut summing, mut series) = ([false; L], [false; L]);
    for l in 0..L {
        let op = operands[l];
        if op.0 == 0 {
            out[l] = Some(I32F32::ONE);
        } else if op.0 == I32F32::ONE.0 {
            out[l] = Some(I32F32(E_I32F32));
        } else {
            neg[l] = op.0 < 0;
            let v = if neg[l] { op.checked_neg() } else { Some(op) };
            if let Some((v, r)) = v.and_then(|v| v.checked_add(I32F32::ONE).map(|r| (v, r))) {
                (x[l], result[l], term[l]) = (v.0, r.0, v.0);
                (summing[l], series[l]) = (true, true);
            }
        }
    }
    // Terms i = 2..=31 with constant divisors, so each `/ i` compiles to a multiply.
    macro_rules! terms {
        ($($i:literal)*) => {'done: {$(
            let mut any = false;
            for l in 0..L {
                if summing[l] {
                    // (t << 32) / (i << 32) truncates exactly like t / i.
                    let next = I32F32(term[l]).checked_mul(I32F32(x[l])).map(|t| t.0 / $i);
                    match next.and_then(|t| result[l].checked_add(t).map(|r| (t, r))) {
                        Some((t, r)) => {
                            (term[l], result[l]) = (t, r);
                            // A zero term stays zero: the sum is final.
                            summing[l] = t != 0;
                            any |= t != 0;
                        }
                        None => (summing[l], series[l]) = (false, false),
                    }
                }
            }
            if !any {
                break 'done;
            }
        )*}};
    }
    terms!(2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31);
    for l in 0..L {
        if series[l] {
            out[l] = if neg[l] {
                I32F32::ONE.checked_div(I32F32(result[l]))
            } else {
                Some(I32F32(result[l]))
            };
        }
    }
    out
}

/// `safe_exp` of the runtimes before spec 365: [`exp`] unclamped, 0 where it overflows.
pub fn safe_exp(input: I32F32) -> I32F32 {
    exp(input).unwrap_or(I32F32::ZERO)
}

/// `transcendental::ln` for I32F32 in and out: `log2(x) / LOG2_E`; `None` for `x <= 0`.
pub fn ln(x: I32F32) -> Option<I32F32> {
    // LOG2_E as the upstream I9F23 constant (bits 0xB8AA3B), widened to I32F32.
    const LOG2_E: I32F32 = I32F32(0xB8_AA3B << 9);
    log2(x)?.checked_div(LOG2_E)
}

/// `safe_ln`: [`ln`], or 0 where it fails.
pub fn safe_ln(x: I32F32) -> I32F32 {
    ln(x).unwrap_or(I32F32::ZERO)
}

/// `transcendental::log2`: `-log2(1 / x)` below 1; `None` for `x <= 0`.
fn log2(x: I32F32) -> Option<I32F32> {
    if x.0 <= 0 {
        return None;
    }
    if x < I32F32::ONE {
        let inverse = I32F32::ONE.checked_div(x)?;
        return Some(I32F32(-log2_inner(inverse).0));
    }
    Some(log2_inner(x))
}

/// `log2_inner` for `x >= 1`: whole halvings, then one bit per squaring (32 of them).
fn log2_inner(x: I32F32) -> I32F32 {
    // `rs`: halve, rounding half up.
    let rs = |v: i64| (v >> 1) + (v & 1);
    let two = 2i64 << 32;
    let (mut x, mut result) = (x.0, 0i64);
    while x >= two {
        result += 1;
        x = rs(x);
    }
    if x == I32F32::ONE.0 {
        // `from_num` of the bits as an integer: whole halvings only.
        return I32F32(result << 32);
    }
    for _ in 0..32 {
        // x < 2, so the square stays below 4: exact product, floored.
        x = ((x as i128 * x as i128) >> 32) as i64;
        result <<= 1;
        if x >= two {
            result |= 1;
            x = rs(x);
        }
    }
    I32F32(result)
}

/// `exp_safe`: clamps the input to [-20, 20]; an overflowing `exp` gives 0 or `MAX`.
pub fn exp_safe(input: I32F32) -> I32F32 {
    exp_safe_lanes([input])[0]
}

/// [`exp_safe`] of `L` independent inputs, evaluated in lockstep by [`exp_lanes`].
pub fn exp_safe_lanes<const L: usize>(inputs: [I32F32; L]) -> [I32F32; L] {
    let (lo, hi) = (
        I32F32::saturating_from_int(-20),
        I32F32::saturating_from_int(20),
    );
    let x = inputs.map(|v| v.max_of(lo).min_of(hi));
    let e = exp_lanes(x);
    std::array::from_fn(|l| match e[l] {
        Some(v) => v,
        None if x[l].0 <= 0 => I32F32::ZERO,
        None => I32F32::MAX,
    })
}

impl I64F64 {
    /// 0.
    pub const ZERO: Self = Self(0);
    /// Largest value.
    pub const MAX: Self = Self(i128::MAX);
    /// Smallest value.
    pub const MIN: Self = Self(i128::MIN);

    /// `saturating_from_num(u64)`: values of 2^63 and above saturate to `MAX`.
    pub const fn saturating_from_u64(x: u64) -> Self {
        if x > i64::MAX as u64 {
            Self::MAX
        } else {
            Self((x as i128) << 64)
        }
    }

    /// `saturating_from_num(U96F32)`: saturates at `MAX`.
    pub const fn saturating_from_u96f32(x: U96F32) -> Self {
        if x.0 >> 95 != 0 {
            Self::MAX
        } else {
            Self((x.0 as i128) << 32)
        }
    }

    /// Saturating addition.
    pub const fn saturating_add(self, rhs: Self) -> Self {
        Self(self.0.saturating_add(rhs.0))
    }

    /// Checked addition (detects the wrap of an upstream release-build `Sum`).
    pub const fn checked_add(self, rhs: Self) -> Option<Self> {
        match self.0.checked_add(rhs.0) {
            Some(v) => Some(Self(v)),
            None => None,
        }
    }

    /// Saturating multiplication: the exact 256-bit product, floored to 64 fraction bits.
    pub const fn saturating_mul(self, rhs: Self) -> Self {
        match mul_shr_i128(self.0, rhs.0, 64) {
            Some(v) => Self(v),
            None if (self.0 < 0) != (rhs.0 < 0) => Self::MIN,
            None => Self::MAX,
        }
    }

    /// Checked division: `(a << 64) / b` truncated toward zero.
    pub const fn checked_div(self, rhs: Self) -> Option<Self> {
        match div_shl_i128(self.0, rhs.0, 64) {
            Some(v) => Some(Self(v)),
            None => None,
        }
    }

    /// `safe_div`: the quotient, or 0 on overflow or a zero divisor.
    pub const fn safe_div(self, rhs: Self) -> Self {
        match self.checked_div(rhs) {
            Some(v) => v,
            None => Self::ZERO,
        }
    }

    /// `saturating_to_num::<u64>()`: floor, clamped to `0..=u64::MAX`.
    pub const fn saturating_to_u64(self) -> u64 {
        let i = self.0 >> 64;
        if i < 0 {
            0
        } else if i > u64::MAX as i128 {
            u64::MAX
        } else {
            i as u64
        }
    }
}

impl I96F32 {
    /// `saturating_from_num(I32F32)`: exact (same fraction bits).
    pub const fn from_i32f32(x: I32F32) -> Self {
        Self(x.0 as i128)
    }

    /// `saturating_from_num(u64)`: exact.
    pub const fn from_u64(x: u64) -> Self {
        Self((x as i128) << 32)
    }

    /// Saturating multiplication: the exact 256-bit product, floored to 32 fraction bits.
    pub const fn saturating_mul(self, rhs: Self) -> Self {
        match mul_shr_i128(self.0, rhs.0, 32) {
            Some(v) => Self(v),
            None if (self.0 < 0) != (rhs.0 < 0) => Self(i128::MIN),
            None => Self(i128::MAX),
        }
    }

    /// `saturating_to_num::<u64>()`: floor, clamped to `0..=u64::MAX`.
    pub const fn saturating_to_u64(self) -> u64 {
        let i = self.0 >> 32;
        if i < 0 {
            0
        } else if i > u64::MAX as i128 {
            u64::MAX
        } else {
            i as u64
        }
    }
}

impl U96F32 {
    /// `saturating_from_num(u64)`: exact.
    pub const fn from_u64(x: u64) -> Self {
        Self((x as u128) << 32)
    }

    /// Checked division: `(a << 32) / b` truncated.
    pub const fn checked_div(self, rhs: Self) -> Option<Self> {
        if rhs.0 == 0 {
            return None;
        }
        let (hi, lo) = (self.0 >> 96, self.0 << 32);
        if hi >= rhs.0 {
            return None;
        }
        Some(Self(div_u256_by_u128(hi, lo, rhs.0)))
    }

    /// `safe_div`: the quotient, or 0 on overflow or a zero divisor.
    pub const fn safe_div(self, rhs: Self) -> Self {
        match self.checked_div(rhs) {
            Some(v) => v,
            None => Self(0),
        }
    }

    /// `saturating_add`.
    pub const fn saturating_add(self, rhs: Self) -> Self {
        Self(self.0.saturating_add(rhs.0))
    }

    /// `saturating_sub`: 0 below zero.
    pub const fn saturating_sub(self, rhs: Self) -> Self {
        Self(self.0.saturating_sub(rhs.0))
    }

    /// `saturating_mul`: the 256-bit product shifted down 32 bits (truncated), saturating.
    pub const fn saturating_mul(self, rhs: Self) -> Self {
        let (hi, lo) = mul_u128_wide(self.0, rhs.0);
        if hi >> 32 != 0 {
            return Self(u128::MAX);
        }
        Self((hi << 96) | (lo >> 32))
    }

    /// `saturating_to_num::<u64>()`: the integer part, saturating.
    pub const fn saturating_to_u64(self) -> u64 {
        let i = self.0 >> 32;
        if i > u64::MAX as u128 {
            u64::MAX
        } else {
            i as u64
        }
    }
}

const fn clamp_i128_to_i64(x: i128) -> i64 {
    if x > i64::MAX as i128 {
        i64::MAX
    } else if x < i64::MIN as i128 {
        i64::MIN
    } else {
        x as i64
    }
}

/// `(hi:lo) / d` for `hi < d`, so the quotient fits a u64.
#[inline]
fn div_u128_by_u64(hi: u64, lo: u64, d: u64) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let q: u64;
        // SAFETY: `div` faults only on a zero divisor or a quotient above 64 bits; `hi < d`
        // rules out both. The compiler would call a 128-bit library routine instead.
        unsafe {
            core::arch::asm!("div {d}", d = in(reg) d, inout("rax") lo => q, inout("rdx") hi => _, options(pure, nomem, nostack));
        }
        q
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        ((((hi as u128) << 64) | lo as u128) / d as u128) as u64
    }
}

/// Full 256-bit product of two u128, as (high, low).
const fn mul_u128_wide(a: u128, b: u128) -> (u128, u128) {
    const M: u128 = u64::MAX as u128;
    let (a1, a0) = (a >> 64, a & M);
    let (b1, b0) = (b >> 64, b & M);
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    // Middle column: carries fit since each term is below 2^64.
    let mid = (p00 >> 64) + (p01 & M) + (p10 & M);
    let lo = (p00 & M) | (mid << 64);
    let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    (hi, lo)
}

/// `(a * b) >> shift` (arithmetic, i.e. floored) in 256 bits; `None` when it does not fit i128.
const fn mul_shr_i128(a: i128, b: i128, shift: u32) -> Option<i128> {
    let (mut hi, mut lo) = mul_u128_wide(a.unsigned_abs(), b.unsigned_abs());
    if (a < 0) != (b < 0) && (hi | lo) != 0 {
        // Two's complement negation of the 256-bit magnitude.
        lo = (!lo).wrapping_add(1);
        hi = if lo == 0 { (!hi).wrapping_add(1) } else { !hi };
    }
    let res_lo = (lo >> shift) | (hi << (128 - shift));
    let res_hi = (hi as i128) >> shift;
    let sign_ext = if (res_lo as i128) < 0 { -1 } else { 0 };
    if res_hi == sign_ext {
        Some(res_lo as i128)
    } else {
        None
    }
}

/// `(a << shift) / b` truncated toward zero in 256 bits; `None` on overflow or `b == 0`.
const fn div_shl_i128(a: i128, b: i128, shift: u32) -> Option<i128> {
    if b == 0 {
        return None;
    }
    let ua = a.unsigned_abs();
    let ub = b.unsigned_abs();
    let (hi, lo) = (ua >> (128 - shift), ua << shift);
    if hi >= ub {
        return None;
    }
    let q = div_u256_by_u128(hi, lo, ub);
    if (a < 0) != (b < 0) {
        if q > 1u128 << 127 {
            None
        } else {
            Some((q as i128).wrapping_neg())
        }
    } else if q > i128::MAX as u128 {
        None
    } else {
        Some(q as i128)
    }
}

/// `(hi:lo) / d` for `hi < d` (so the quotient fits a u128), by 64-bit digits.
const fn div_u256_by_u128(hi: u128, lo: u128, d: u128) -> u128 {
    const M: u128 = u64::MAX as u128;
    if d >> 64 == 0 {
        // Remainders stay below d < 2^64, so every partial numerator fits a u128.
        let n1 = (hi << 64) | (lo >> 64);
        let q1 = n1 / d;
        let n0 = ((n1 % d) << 64) | (lo & M);
        return (q1 << 64) | (n0 / d);
    }
    // Normalise so the divisor's top bit is set (Knuth D: estimates are off by at most 2).
    let s = d.leading_zeros();
    let d = d << s;
    let (hi, lo) = if s == 0 {
        (hi, lo)
    } else {
        ((hi << s) | (lo >> (128 - s)), lo << s)
    };
    let (q1, r1) = div_digit(hi, (lo >> 64) as u64, d);
    let (q0, _) = div_digit(r1, lo as u64, d);
    ((q1 as u128) << 64) | q0 as u128
}

/// One quotient digit of `(top:next) / d` with `top < d` and `d` normalised: (digit, remainder).
const fn div_digit(top: u128, next: u64, d: u128) -> (u64, u128) {
    let d1 = d >> 64;
    let mut qhat = top / d1;
    if qhat > u64::MAX as u128 {
        qhat = u64::MAX as u128;
    }
    // Numerator as 256 bits: (top >> 64 : (top << 64) | next).
    let (nh, nl) = (top >> 64, (top << 64) | next as u128);
    let (mut ph, mut pl) = mul_u128_wide(qhat, d);
    while ph > nh || (ph == nh && pl > nl) {
        qhat -= 1;
        let (npl, borrow) = pl.overflowing_sub(d);
        pl = npl;
        if borrow {
            ph -= 1;
        }
    }
    (qhat as u64, nl.wrapping_sub(pl))
}
