// Fixed-point arithmetic on raw integers, bit-identical to substrate-fixed 0.6.0: the CUDA
// twin of src/fixed.rs, type for type and function for function, same names.
//
// Every function is YUMA_HD (host and device) and uses only fixed-width integers, so the
// same source compiles under NVRTC for the GPU and under a host C++ compiler for the
// differential test (tests/cuda_host.rs). Products are exact and floored, quotients
// truncate toward zero, saturating_* clamps, checked_* returns an empty Option, safe_div
// returns zero on overflow or a zero divisor, plain sums wrap.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define YUMA_HD __host__ __device__ __forceinline__
#define YUMA_DEVICE 1
#else
#define YUMA_HD inline
#endif

typedef unsigned int u32;
typedef int i32;
typedef unsigned long long u64;
typedef long long i64;
typedef __int128 i128;
typedef unsigned __int128 u128;

static_assert(sizeof(u32) == 4 && sizeof(u64) == 8 && sizeof(i128) == 16, "fixed-width integers");

#define YUMA_I64_MAX ((i64)0x7fffffffffffffffLL)
#define YUMA_I64_MIN (-YUMA_I64_MAX - 1)
#define YUMA_U64_MAX ((u64)0xffffffffffffffffULL)
#define YUMA_I128_MAX ((i128)(((u128)1 << 127) - 1))
#define YUMA_I128_MIN (-YUMA_I128_MAX - 1)
#define YUMA_U128_M64 ((u128)YUMA_U64_MAX)

// Rust's Option: `some` says whether `value` holds a result.
template <class T> struct Option {
    bool some;
    T value;
};

template <class T> YUMA_HD Option<T> Some(T v) { return Option<T>{true, v}; }
template <class T> YUMA_HD Option<T> None() { return Option<T>{false, T{}}; }

// The two's complement value of `x` read as i128 (Rust's `as i128`).
YUMA_HD i128 as_i128(u128 x) { return (i128)x; }

// `i128::unsigned_abs`.
YUMA_HD u128 unsigned_abs(i128 x) { return x < 0 ? (u128)0 - (u128)x : (u128)x; }

// `u128::leading_zeros`, by halving (no intrinsics, same on host and device).
YUMA_HD u32 leading_zeros(u128 x) {
    if (x == 0) return 128;
    u32 n = 0;
    for (u32 s = 64; s > 0; s >>= 1) {
        if ((x >> (128 - s)) == 0) {
            n += s;
            x <<= s;
        }
    }
    return n;
}

// `u64::leading_zeros`.
YUMA_HD u32 leading_zeros_u64(u64 x) { return leading_zeros((u128)x) - 64; }

// `(hi:lo) / d` for `hi < d`, so the quotient fits a u64.
YUMA_HD u64 div_u128_by_u64(u64 hi, u64 lo, u64 d) { return (u64)((((u128)hi << 64) | (u128)lo) / (u128)d); }

// Two 128-bit halves of a 256-bit value.
struct U256 {
    u128 hi;
    u128 lo;
};

// Full 256-bit product of two u128, as (high, low).
YUMA_HD U256 mul_u128_wide(u128 a, u128 b) {
    const u128 M = YUMA_U128_M64;
    u128 a1 = a >> 64, a0 = a & M;
    u128 b1 = b >> 64, b0 = b & M;
    u128 p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    // Middle column: carries fit since each term is below 2^64.
    u128 mid = (p00 >> 64) + (p01 & M) + (p10 & M);
    U256 r;
    r.lo = (p00 & M) | (mid << 64);
    r.hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    return r;
}

// One quotient digit and the remainder of a normalised long division step.
struct DivDigit {
    u64 digit;
    u128 rem;
};

// One quotient digit of `(top:next) / d` with `top < d` and `d` normalised.
YUMA_HD DivDigit div_digit(u128 top, u64 next, u128 d) {
    u128 d1 = d >> 64;
    u128 qhat = top / d1;
    if (qhat > YUMA_U128_M64) qhat = YUMA_U128_M64;
    // Numerator as 256 bits: (top >> 64 : (top << 64) | next).
    u128 nh = top >> 64, nl = (top << 64) | (u128)next;
    U256 p = mul_u128_wide(qhat, d);
    u128 ph = p.hi, pl = p.lo;
    while (ph > nh || (ph == nh && pl > nl)) {
        qhat -= 1;
        bool borrow = pl < d;
        pl = pl - d;
        if (borrow) ph -= 1;
    }
    return DivDigit{(u64)qhat, nl - pl};
}

// `(hi:lo) / d` for `hi < d` (so the quotient fits a u128), by 64-bit digits.
YUMA_HD u128 div_u256_by_u128(u128 hi, u128 lo, u128 d) {
    const u128 M = YUMA_U128_M64;
    if ((d >> 64) == 0) {
        // Remainders stay below d < 2^64, so every partial numerator fits a u128.
        u128 n1 = (hi << 64) | (lo >> 64);
        u128 q1 = n1 / d;
        u128 n0 = ((n1 % d) << 64) | (lo & M);
        return (q1 << 64) | (n0 / d);
    }
    // Normalise so the divisor's top bit is set (Knuth D: estimates are off by at most 2).
    u32 s = leading_zeros(d);
    d <<= s;
    if (s != 0) {
        hi = (hi << s) | (lo >> (128 - s));
        lo <<= s;
    }
    DivDigit a = div_digit(hi, (u64)(lo >> 64), d);
    DivDigit b = div_digit(a.rem, (u64)lo, d);
    return ((u128)a.digit << 64) | (u128)b.digit;
}

// `(a * b) >> shift` (arithmetic, i.e. floored) in 256 bits; empty when it does not fit i128.
YUMA_HD Option<i128> mul_shr_i128(i128 a, i128 b, u32 shift) {
    U256 p = mul_u128_wide(unsigned_abs(a), unsigned_abs(b));
    u128 hi = p.hi, lo = p.lo;
    if ((a < 0) != (b < 0) && (hi | lo) != 0) {
        // Two's complement negation of the 256-bit magnitude.
        lo = ~lo + 1;
        hi = lo == 0 ? ~hi + 1 : ~hi;
    }
    u128 res_lo = (lo >> shift) | (hi << (128 - shift));
    i128 res_hi = as_i128(hi) >> shift;
    i128 sign_ext = as_i128(res_lo) < 0 ? -1 : 0;
    if (res_hi == sign_ext) return Some(as_i128(res_lo));
    return None<i128>();
}

// `(a << shift) / b` truncated toward zero in 256 bits; empty on overflow or `b == 0`.
YUMA_HD Option<i128> div_shl_i128(i128 a, i128 b, u32 shift) {
    if (b == 0) return None<i128>();
    u128 ua = unsigned_abs(a), ub = unsigned_abs(b);
    u128 hi = ua >> (128 - shift), lo = ua << shift;
    if (hi >= ub) return None<i128>();
    u128 q = div_u256_by_u128(hi, lo, ub);
    if ((a < 0) != (b < 0)) {
        if (q > ((u128)1 << 127)) return None<i128>();
        return Some(as_i128((u128)0 - q));
    }
    if (q > (u128)YUMA_I128_MAX) return None<i128>();
    return Some(as_i128(q));
}

YUMA_HD i64 clamp_i128_to_i64(i128 x) {
    if (x > (i128)YUMA_I64_MAX) return YUMA_I64_MAX;
    if (x < (i128)YUMA_I64_MIN) return YUMA_I64_MIN;
    return (i64)x;
}

struct I64F64;

// Signed fixed point with 32 integer and 32 fraction bits, raw bits in an i64.
struct I32F32 {
    i64 bits;

    static YUMA_HD I32F32 of(i64 b) { return I32F32{b}; }
    static YUMA_HD I32F32 ZERO() { return of(0); }
    static YUMA_HD I32F32 ONE() { return of((i64)1 << 32); }
    static YUMA_HD I32F32 HALF() { return of((i64)1 << 31); }
    static YUMA_HD I32F32 MAX() { return of(YUMA_I64_MAX); }
    static YUMA_HD I32F32 MIN() { return of(YUMA_I64_MIN); }

    // `from_num(u16)`: exact.
    static YUMA_HD I32F32 from_u16(u32 x) { return of((i64)(x & 0xffff) << 32); }

    // `saturating_from_num` of an integer: saturates outside the 32 integer bits.
    static YUMA_HD I32F32 saturating_from_int(i64 x) {
        if (x > (i64)0x7fffffff) return MAX();
        if (x < -(i64)0x80000000LL) return MIN();
        return of((i64)((u64)x << 32));
    }

    // `saturating_from_num(I64F64)`: drops 32 fraction bits (floor), saturates.
    static YUMA_HD I32F32 saturating_from_i64f64(I64F64 x);

    YUMA_HD I32F32 saturating_add(I32F32 r) const { return of(clamp_i128_to_i64((i128)bits + (i128)r.bits)); }
    YUMA_HD I32F32 saturating_sub(I32F32 r) const { return of(clamp_i128_to_i64((i128)bits - (i128)r.bits)); }
    // Wrapping addition: upstream `Add`/`Sum` in a release build.
    YUMA_HD I32F32 wrapping_add(I32F32 r) const { return of((i64)((u64)bits + (u64)r.bits)); }

    YUMA_HD Option<I32F32> checked_add(I32F32 r) const {
        i128 s = (i128)bits + (i128)r.bits;
        if (s > (i128)YUMA_I64_MAX || s < (i128)YUMA_I64_MIN) return None<I32F32>();
        return Some(of((i64)s));
    }

    YUMA_HD Option<I32F32> checked_neg() const {
        if (bits == YUMA_I64_MIN) return None<I32F32>();
        return Some(of(-bits));
    }

    // The exact product, floored to 32 fraction bits.
    YUMA_HD Option<I32F32> checked_mul(I32F32 r) const {
        i128 p = ((i128)bits * (i128)r.bits) >> 32;
        if (p > (i128)YUMA_I64_MAX || p < (i128)YUMA_I64_MIN) return None<I32F32>();
        return Some(of((i64)p));
    }

    YUMA_HD I32F32 saturating_mul(I32F32 r) const {
        Option<I32F32> p = checked_mul(r);
        if (p.some) return p.value;
        return (bits < 0) != (r.bits < 0) ? MIN() : MAX();
    }

    // `(a << 32) / b` truncated toward zero; empty on overflow or `b == 0`.
    YUMA_HD Option<I32F32> checked_div(I32F32 r) const {
        if (r.bits == 0) return None<I32F32>();
        if (bits >= 0 && r.bits > 0) {
            // Non-negative operands: the quotient fits a u64 exactly when the numerator's
            // high word is below the divisor.
            u64 hi = (u64)bits >> 32, lo = (u64)bits << 32;
            if (hi >= (u64)r.bits) return None<I32F32>();
            u64 q = div_u128_by_u64(hi, lo, (u64)r.bits);
            if (q > (u64)YUMA_I64_MAX) return None<I32F32>();
            return Some(of((i64)q));
        }
        i128 q = ((i128)bits * ((i128)1 << 32)) / (i128)r.bits;
        if (q > (i128)YUMA_I64_MAX || q < (i128)YUMA_I64_MIN) return None<I32F32>();
        return Some(of((i64)q));
    }

    YUMA_HD I32F32 saturating_div(I32F32 r) const {
        Option<I32F32> q = checked_div(r);
        if (q.some) return q.value;
        return (bits < 0) != (r.bits < 0) ? MIN() : MAX();
    }

    YUMA_HD I32F32 safe_div(I32F32 r) const {
        Option<I32F32> q = checked_div(r);
        return q.some ? q.value : ZERO();
    }

    // `saturating_to_num::<u16>()`: floor, clamped to 0..=u16::MAX.
    YUMA_HD u32 saturating_to_u16() const {
        i64 i = bits >> 32;
        if (i < 0) return 0;
        if (i > 0xffff) return 0xffff;
        return (u32)i;
    }

    // `saturating_to_num::<u64>()`: floor, clamped at 0.
    YUMA_HD u64 saturating_to_u64() const {
        i64 i = bits >> 32;
        return i < 0 ? 0 : (u64)i;
    }

    // `round()`: to the nearest integer, ties away from zero (saturating at the top).
    YUMA_HD I32F32 round() const {
        const i64 int_mask = ~(((i64)1 << 32) - 1);
        if (bits >= 0) return of(saturating_add(HALF()).bits & int_mask);
        // -round(|x|) on the magnitude as a u64: |MIN| and |x| + 1/2 fit there, and the
        // rounded magnitude is at most 2^63, whose negation is MIN.
        u64 mag = ((u64)0 - (u64)bits + ((u64)1 << 31)) & (u64)int_mask;
        return of((i64)((u64)0 - mag));
    }
    YUMA_HD I32F32 max_of(I32F32 r) const { return bits >= r.bits ? *this : r; }
    YUMA_HD I32F32 min_of(I32F32 r) const { return bits <= r.bits ? *this : r; }
};

// An I32F32 divisor prepared once for many divisions by it: with a non-negative numerator
// and a positive divisor the quotient comes from a precomputed reciprocal (Moller-Granlund
// 2-by-1 division), a few multiplies instead of a 128-bit division. Results equal
// `I32F32::checked_div` for every numerator.
struct I32F32Divisor {
    I32F32 d;
    // Divisor shifted so its top bit is set; 0 for a non-positive divisor (plain path).
    u64 norm;
    u32 shift;
    // floor((2^128 - 1) / norm) - 2^64.
    u64 inv;

    static YUMA_HD I32F32Divisor of(I32F32 d) {
        if (d.bits <= 0) return I32F32Divisor{d, 0, 0, 0};
        u32 shift = leading_zeros_u64((u64)d.bits);
        u64 norm = (u64)d.bits << shift;
        u64 inv = (u64)((((u128)~norm) << 64 | (u128)YUMA_U64_MAX) / (u128)norm);
        return I32F32Divisor{d, norm, shift, inv};
    }

    YUMA_HD Option<I32F32> checked_div(I32F32 a) const {
        if (a.bits < 0 || norm == 0) return a.checked_div(d);
        u64 hi = (u64)a.bits >> 32, lo = (u64)a.bits << 32;
        if (hi >= (u64)d.bits) return None<I32F32>();
        u64 u1 = shift == 0 ? hi : (hi << shift) | (lo >> (64 - shift));
        u64 u0 = shift == 0 ? lo : lo << shift;
        u128 p = (u128)inv * (u128)u1 + (((u128)u1 << 64) | (u128)u0);
        u64 q1 = (u64)(p >> 64) + 1, q0 = (u64)p;
        u64 r = u0 - q1 * norm;
        if (r > q0) {
            q1 -= 1;
            r += norm;
        }
        if (r >= norm) q1 += 1;
        if (q1 > (u64)YUMA_I64_MAX) return None<I32F32>();
        return Some(I32F32::of((i64)q1));
    }

    YUMA_HD I32F32 divisor() const { return d; }

    YUMA_HD I32F32 safe_div(I32F32 a) const {
        Option<I32F32> q = checked_div(a);
        return q.some ? q.value : I32F32::ZERO();
    }
};

// Signed fixed point with 64 integer and 64 fraction bits, raw bits in an i128.
struct I64F64 {
    i128 bits;

    static YUMA_HD I64F64 of(i128 b) { return I64F64{b}; }
    static YUMA_HD I64F64 ZERO() { return of(0); }
    static YUMA_HD I64F64 MAX() { return of(YUMA_I128_MAX); }
    static YUMA_HD I64F64 MIN() { return of(YUMA_I128_MIN); }

    // `saturating_from_num(u64)`: values of 2^63 and above saturate to MAX.
    static YUMA_HD I64F64 saturating_from_u64(u64 x) {
        if (x > (u64)YUMA_I64_MAX) return MAX();
        return of((i128)x << 64);
    }

    // `saturating_from_num(U96F32)`, defined after U96F32.
    static YUMA_HD I64F64 saturating_from_u96f32(struct U96F32 x);

    YUMA_HD Option<I64F64> checked_add(I64F64 r) const {
        i128 s = as_i128((u128)bits + (u128)r.bits);
        // Overflow exactly when both operands share a sign the wrapped sum lacks.
        if ((bits < 0) == (r.bits < 0) && (s < 0) != (bits < 0)) return None<I64F64>();
        return Some(of(s));
    }

    YUMA_HD I64F64 saturating_add(I64F64 r) const {
        Option<I64F64> s = checked_add(r);
        if (s.some) return s.value;
        return bits < 0 ? MIN() : MAX();
    }

    // The exact 256-bit product, floored to 64 fraction bits.
    YUMA_HD I64F64 saturating_mul(I64F64 r) const {
        Option<i128> p = mul_shr_i128(bits, r.bits, 64);
        if (p.some) return of(p.value);
        return (bits < 0) != (r.bits < 0) ? MIN() : MAX();
    }

    // `(a << 64) / b` truncated toward zero.
    YUMA_HD Option<I64F64> checked_div(I64F64 r) const {
        Option<i128> q = div_shl_i128(bits, r.bits, 64);
        if (q.some) return Some(of(q.value));
        return None<I64F64>();
    }

    YUMA_HD I64F64 safe_div(I64F64 r) const {
        Option<I64F64> q = checked_div(r);
        return q.some ? q.value : ZERO();
    }

    // `saturating_to_num::<u64>()`: floor, clamped to 0..=u64::MAX.
    YUMA_HD u64 saturating_to_u64() const {
        i128 i = bits >> 64;
        if (i < 0) return 0;
        if (i > (i128)YUMA_U64_MAX) return YUMA_U64_MAX;
        return (u64)i;
    }
};

YUMA_HD I32F32 I32F32::saturating_from_i64f64(I64F64 x) { return of(clamp_i128_to_i64(x.bits >> 32)); }

// Signed fixed point with 96 integer and 32 fraction bits, raw bits in an i128.
struct I96F32 {
    i128 bits;

    static YUMA_HD I96F32 of(i128 b) { return I96F32{b}; }
    // `saturating_from_num(I32F32)`: exact (same fraction bits).
    static YUMA_HD I96F32 from_i32f32(I32F32 x) { return of((i128)x.bits); }
    // `saturating_from_num(u64)`: exact.
    static YUMA_HD I96F32 from_u64(u64 x) { return of((i128)x << 32); }

    // The exact 256-bit product, floored to 32 fraction bits.
    YUMA_HD I96F32 saturating_mul(I96F32 r) const {
        Option<i128> p = mul_shr_i128(bits, r.bits, 32);
        if (p.some) return of(p.value);
        return (bits < 0) != (r.bits < 0) ? of(YUMA_I128_MIN) : of(YUMA_I128_MAX);
    }

    // `saturating_to_num::<u64>()`: floor, clamped to 0..=u64::MAX.
    YUMA_HD u64 saturating_to_u64() const {
        i128 i = bits >> 32;
        if (i < 0) return 0;
        if (i > (i128)YUMA_U64_MAX) return YUMA_U64_MAX;
        return (u64)i;
    }
};

// Unsigned fixed point with 96 integer and 32 fraction bits, raw bits in a u128.
struct U96F32 {
    u128 bits;

    static YUMA_HD U96F32 of(u128 b) { return U96F32{b}; }
    // `saturating_from_num(u64)`: exact.
    static YUMA_HD U96F32 from_u64(u64 x) { return of((u128)x << 32); }

    // `(a << 32) / b` truncated.
    YUMA_HD Option<U96F32> checked_div(U96F32 r) const {
        if (r.bits == 0) return None<U96F32>();
        u128 hi = bits >> 96, lo = bits << 32;
        if (hi >= r.bits) return None<U96F32>();
        return Some(of(div_u256_by_u128(hi, lo, r.bits)));
    }

    YUMA_HD U96F32 safe_div(U96F32 r) const {
        Option<U96F32> q = checked_div(r);
        return q.some ? q.value : of(0);
    }
};

YUMA_HD I64F64 I64F64::saturating_from_u96f32(U96F32 x) {
    if ((x.bits >> 95) != 0) return MAX();
    return of((i128)x.bits << 32);
}

// `e` as the upstream `transcendental::E` constant (I9F23) widened to I32F32.
#define YUMA_E_I32F32 ((i64)22802600 << 9)

// `u16_proportion_to_fixed`: `x / 65535`.
YUMA_HD I32F32 u16_proportion_to_fixed(u32 x) { return I32F32::from_u16(x).safe_div(I32F32::from_u16(0xffff)); }

// `fixed_proportion_to_u16`: `x * 65535`, floored and clamped to u16.
YUMA_HD u32 fixed_proportion_to_u16(I32F32 x) { return x.saturating_mul(I32F32::from_u16(0xffff)).saturating_to_u16(); }

// `substrate_fixed::transcendental::exp` for I32F32: a 30-term Taylor series with checked
// operations, inverted for negative input.
YUMA_HD Option<I32F32> exp(I32F32 operand) {
    if (operand.bits == 0) return Some(I32F32::ONE());
    if (operand.bits == I32F32::ONE().bits) return Some(I32F32::of(YUMA_E_I32F32));
    bool neg = operand.bits < 0;
    I32F32 x = operand;
    if (neg) {
        Option<I32F32> m = operand.checked_neg();
        if (!m.some) return None<I32F32>();
        x = m.value;
    }
    Option<I32F32> r = x.checked_add(I32F32::ONE());
    if (!r.some) return None<I32F32>();
    I32F32 result = r.value;
    I32F32 term = x;
    for (i64 i = 2; i < 32; i++) {
        Option<I32F32> t = term.checked_mul(x);
        if (!t.some) return None<I32F32>();
        // (t << 32) / (i << 32) truncates exactly like t / i.
        term = I32F32::of(t.value.bits / i);
        Option<I32F32> s = result.checked_add(term);
        if (!s.some) return None<I32F32>();
        result = s.value;
        // Every later term is 0 * x / i = 0: the sum is final.
        if (term.bits == 0) break;
    }
    if (neg) return I32F32::ONE().checked_div(result);
    return Some(result);
}

// `safe_exp` of the runtimes before spec 365: `exp` unclamped, 0 where it overflows.
YUMA_HD I32F32 safe_exp(I32F32 input) {
    Option<I32F32> e = exp(input);
    return e.some ? e.value : I32F32::ZERO();
}

// `log2_inner` for x >= 1: whole halvings (rounding half up), then one fraction bit per
// squaring (32 of them).
YUMA_HD I32F32 log2_inner(I32F32 x) {
    const i64 two = (i64)2 << 32;
    i64 v = x.bits, result = 0;
    while (v >= two) {
        result++;
        v = (v >> 1) + (v & 1);
    }
    // `from_num` of the bits as an integer: whole halvings only.
    if (v == I32F32::ONE().bits) return I32F32::of(result << 32);
    for (int i = 0; i < 32; i++) {
        // v < 2, so the square stays below 4: exact product, floored.
        v = (i64)(((i128)v * (i128)v) >> 32);
        result <<= 1;
        if (v >= two) {
            result |= 1;
            v = (v >> 1) + (v & 1);
        }
    }
    return I32F32::of(result);
}

// `transcendental::log2`: `-log2(1 / x)` below 1; empty for x <= 0.
YUMA_HD Option<I32F32> log2(I32F32 x) {
    if (x.bits <= 0) return None<I32F32>();
    if (x.bits < I32F32::ONE().bits) {
        Option<I32F32> inverse = I32F32::ONE().checked_div(x);
        if (!inverse.some) return None<I32F32>();
        return Some(I32F32::of(-log2_inner(inverse.value).bits));
    }
    return Some(log2_inner(x));
}

// `transcendental::ln`: `log2(x) / LOG2_E`, LOG2_E the upstream I9F23 constant (0xB8AA3B)
// widened to I32F32; empty for x <= 0.
YUMA_HD Option<I32F32> ln(I32F32 x) {
    Option<I32F32> l = log2(x);
    if (!l.some) return l;
    return l.value.checked_div(I32F32::of((i64)0xB8AA3B << 9));
}

// `safe_ln`: `ln`, or 0 where it fails.
YUMA_HD I32F32 safe_ln(I32F32 x) {
    Option<I32F32> l = ln(x);
    return l.some ? l.value : I32F32::ZERO();
}

// `exp_safe`: clamps the input to [-20, 20]; an overflowing `exp` gives 0 or MAX.
YUMA_HD I32F32 exp_safe(I32F32 input) {
    I32F32 lo = I32F32::saturating_from_int(-20), hi = I32F32::saturating_from_int(20);
    I32F32 x = input.bits < lo.bits ? lo : (input.bits > hi.bits ? hi : input);
    Option<I32F32> e = exp(x);
    if (e.some) return e.value;
    return x.bits <= 0 ? I32F32::ZERO() : I32F32::MAX();
}
