// Fixed-point helpers mirroring src/fixed.rs name for name, on u32 limbs only (no
// SHADER_INT64): an I32F32 is its i64 raw bits as vec2<u32>(low, high); 128-bit
// intermediates are vec4<u32>, lowest limb first. Products are exact then floored,
// quotients truncate toward zero, exactly as substrate-fixed 0.6.0.

// A checked result: `ok` false stands for upstream's `None`.
struct Checked {
    ok: bool,
    v: vec2<u32>,
}

const I32F32_ZERO: vec2<u32> = vec2<u32>(0u, 0u);
const I32F32_ONE: vec2<u32> = vec2<u32>(0u, 1u);
const I32F32_HALF: vec2<u32> = vec2<u32>(0x80000000u, 0u);
const I32F32_MAX: vec2<u32> = vec2<u32>(0xffffffffu, 0x7fffffffu);
const I32F32_MIN: vec2<u32> = vec2<u32>(0u, 0x80000000u);
// `e` as upstream's I9F23 constant widened to I32F32 (22_802_600 << 9).
const E_I32F32: vec2<u32> = vec2<u32>(0xb7e15000u, 2u);

fn is_neg(a: vec2<u32>) -> bool {
    return (a.y & 0x80000000u) != 0u;
}

fn is_zero64(a: vec2<u32>) -> bool {
    return a.x == 0u && a.y == 0u;
}

// Signed i64 comparison a < b.
fn lt_i64(a: vec2<u32>, b: vec2<u32>) -> bool {
    let ah = bitcast<i32>(a.y);
    let bh = bitcast<i32>(b.y);
    return ah < bh || (ah == bh && a.x < b.x);
}

// Unsigned u64 comparison a < b.
fn lt_u64(a: vec2<u32>, b: vec2<u32>) -> bool {
    return a.y < b.y || (a.y == b.y && a.x < b.x);
}

fn wrapping_add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let lo = a.x + b.x;
    return vec2<u32>(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}

fn wrapping_neg64(a: vec2<u32>) -> vec2<u32> {
    return wrapping_add64(~a, vec2<u32>(1u, 0u));
}

fn wrapping_sub64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    return wrapping_add64(a, wrapping_neg64(b));
}

// |a| as an unsigned u64 (|i64::MIN| = 2^63 fits).
fn unsigned_abs64(a: vec2<u32>) -> vec2<u32> {
    if is_neg(a) {
        return wrapping_neg64(a);
    }
    return a;
}

fn i32f32_from_u16(x: u32) -> vec2<u32> {
    return vec2<u32>(0u, x);
}

// `saturating_from_num` of an i32-range integer (the only inputs on the GPU).
fn i32f32_from_int(x: i32) -> vec2<u32> {
    return vec2<u32>(0u, bitcast<u32>(x));
}

fn i32f32_checked_add(a: vec2<u32>, b: vec2<u32>) -> Checked {
    let s = wrapping_add64(a, b);
    // Overflow when both operands share a sign the sum does not.
    let ovf = is_neg(a) == is_neg(b) && is_neg(s) != is_neg(a);
    return Checked(!ovf, s);
}

fn i32f32_saturating_add(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let c = i32f32_checked_add(a, b);
    if c.ok {
        return c.v;
    }
    return select(I32F32_MAX, I32F32_MIN, is_neg(a));
}

fn i32f32_saturating_sub(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let s = wrapping_sub64(a, b);
    let ovf = is_neg(a) != is_neg(b) && is_neg(s) != is_neg(a);
    if ovf {
        return select(I32F32_MAX, I32F32_MIN, is_neg(a));
    }
    return s;
}

fn i32f32_wrapping_add(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    return wrapping_add64(a, b);
}

fn i32f32_checked_neg(a: vec2<u32>) -> Checked {
    return Checked(!(a.x == I32F32_MIN.x && a.y == I32F32_MIN.y), wrapping_neg64(a));
}

fn i32f32_max_of(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    return select(b, a, !lt_i64(a, b));
}

fn i32f32_min_of(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    return select(b, a, !lt_i64(b, a));
}

// 32 x 32 -> 64 bits through 16-bit halves.
fn mul_wide32(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
    return vec2<u32>((p00 & 0xffffu) | (mid << 16u), p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u));
}

// Full 128-bit product of two u64.
fn mul_u64_wide(a: vec2<u32>, b: vec2<u32>) -> vec4<u32> {
    let p00 = mul_wide32(a.x, b.x);
    let p01 = mul_wide32(a.x, b.y);
    let p10 = mul_wide32(a.y, b.x);
    let p11 = mul_wide32(a.y, b.y);
    let s1 = p00.y + p01.x;
    var c1 = select(0u, 1u, s1 < p00.y);
    let r1 = s1 + p10.x;
    c1 += select(0u, 1u, r1 < s1);
    let s2 = p01.y + p10.y;
    var c2 = select(0u, 1u, s2 < p01.y);
    let s3 = s2 + p11.x;
    c2 += select(0u, 1u, s3 < s2);
    let r2 = s3 + c1;
    c2 += select(0u, 1u, r2 < s3);
    return vec4<u32>(p00.x, r1, r2, p11.y + c2);
}

fn neg128(a: vec4<u32>) -> vec4<u32> {
    let n = ~a;
    let x = n.x + 1u;
    var c = select(0u, 1u, x == 0u);
    let y = n.y + c;
    c = select(0u, 1u, c == 1u && y == 0u);
    let z = n.z + c;
    c = select(0u, 1u, c == 1u && z == 0u);
    return vec4<u32>(x, y, z, n.w + c);
}

// Exact signed product floored to 32 fraction bits; `None` when it leaves i64.
fn i32f32_checked_mul(a: vec2<u32>, b: vec2<u32>) -> Checked {
    var p = mul_u64_wide(unsigned_abs64(a), unsigned_abs64(b));
    if is_neg(a) != is_neg(b) && any(p != vec4<u32>(0u)) {
        p = neg128(p);
    }
    // Bits 32..127 (arithmetic shift): fits i64 when limb 3 sign-extends limb 2.
    let sign_ext = select(0u, 0xffffffffu, (p.z & 0x80000000u) != 0u);
    return Checked(p.w == sign_ext, vec2<u32>(p.y, p.z));
}

fn i32f32_saturating_mul(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let c = i32f32_checked_mul(a, b);
    if c.ok {
        return c.v;
    }
    return select(I32F32_MAX, I32F32_MIN, is_neg(a) != is_neg(b));
}

// Unsigned (n3:n2:n1:n0) / d, bit by bit from the dividend's top set bit; quotient in
// 128 bits. The remainder stays below 2^65, so three limbs hold it.
fn div_u128_by_u64(n: vec4<u32>, d: vec2<u32>) -> vec4<u32> {
    var top = -1;
    var l = 3;
    while top < 0 && l >= 0 {
        if n[l] != 0u {
            top = l * 32 + i32(firstLeadingBit(n[l]));
        }
        l--;
    }
    var q = vec4<u32>(0u);
    var r = vec3<u32>(0u);
    for (var i = top; i >= 0; i--) {
        let bit = (n[i >> 5u] >> (u32(i) & 31u)) & 1u;
        r = vec3<u32>((r.x << 1u) | bit, (r.y << 1u) | (r.x >> 31u), (r.z << 1u) | (r.y >> 31u));
        if r.z != 0u || r.y > d.y || (r.y == d.y && r.x >= d.x) {
            let lo = r.x - d.x;
            let b0 = select(0u, 1u, r.x < d.x);
            let mid = r.y - d.y - b0;
            let b1 = select(0u, 1u, r.y < d.y || (r.y == d.y && b0 == 1u));
            r = vec3<u32>(lo, mid, r.z - b1);
            q[i >> 5u] |= 1u << (u32(i) & 31u);
        }
    }
    return q;
}

// `(a << 32) / b` truncated toward zero; `None` on overflow or `b == 0`.
fn i32f32_checked_div(a: vec2<u32>, b: vec2<u32>) -> Checked {
    if is_zero64(b) {
        return Checked(false, I32F32_ZERO);
    }
    let ua = unsigned_abs64(a);
    let q = div_u128_by_u64(vec4<u32>(0u, ua.x, ua.y, 0u), unsigned_abs64(b));
    if q.z != 0u || q.w != 0u {
        return Checked(false, I32F32_ZERO);
    }
    let qv = vec2<u32>(q.x, q.y);
    if is_neg(a) != is_neg(b) {
        // Up to 2^63 negates into range.
        let fits = q.y < 0x80000000u || (q.y == 0x80000000u && q.x == 0u);
        return Checked(fits, wrapping_neg64(qv));
    }
    return Checked(q.y < 0x80000000u, qv);
}

fn i32f32_saturating_div(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let c = i32f32_checked_div(a, b);
    if c.ok {
        return c.v;
    }
    return select(I32F32_MAX, I32F32_MIN, is_neg(a) != is_neg(b));
}

fn i32f32_safe_div(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let c = i32f32_checked_div(a, b);
    return select(I32F32_ZERO, c.v, c.ok);
}

// `saturating_to_num::<u16>()`: floor, clamped to 0..=65535.
fn i32f32_saturating_to_u16(a: vec2<u32>) -> u32 {
    if is_neg(a) {
        return 0u;
    }
    return min(a.y, 65535u);
}

// `round()`: to the nearest integer, ties away from zero (saturating at the top).
fn i32f32_round(a: vec2<u32>) -> vec2<u32> {
    if !is_neg(a) {
        return vec2<u32>(0u, i32f32_saturating_add(a, I32F32_HALF).y);
    }
    // -round(|x|) on the magnitude as a u64: |MIN| and |x| + 1/2 fit there, and the
    // rounded magnitude is at most 2^63, whose negation is MIN.
    let mag = wrapping_add64(wrapping_neg64(a), I32F32_HALF);
    return wrapping_neg64(vec2<u32>(0u, mag.y));
}

fn u16_proportion_to_fixed(x: u32) -> vec2<u32> {
    return i32f32_safe_div(i32f32_from_u16(x), i32f32_from_u16(65535u));
}

fn fixed_proportion_to_u16(x: vec2<u32>) -> u32 {
    return i32f32_saturating_to_u16(i32f32_saturating_mul(x, i32f32_from_u16(65535u)));
}

// Truncating signed i64 / small positive integer (the Taylor term's `/ i`).
fn div_i64_by_small(a: vec2<u32>, i: u32) -> vec2<u32> {
    let q = div_u128_by_u64(vec4<u32>(unsigned_abs64(a), 0u, 0u), vec2<u32>(i, 0u));
    let qv = vec2<u32>(q.x, q.y);
    return select(qv, wrapping_neg64(qv), is_neg(a));
}

// substrate-fixed `exp`: 30-term Taylor series with checked operations, inverted for
// negative input. Early exits leave the loop through its condition, never by `return`
// inside it (Mesa 22 lavapipe mis-compiles a return from a loop in an inlined call).
fn exp(operand: vec2<u32>) -> Checked {
    if is_zero64(operand) {
        return Checked(true, I32F32_ONE);
    }
    if all(operand == I32F32_ONE) {
        return Checked(true, E_I32F32);
    }
    let neg = is_neg(operand);
    let x = select(operand, wrapping_neg64(operand), neg);
    // Only i64::MIN fails the checked negation.
    var ok = !(neg && all(operand == I32F32_MIN));
    var result = i32f32_checked_add(x, I32F32_ONE);
    ok = ok && result.ok;
    var term = x;
    var i = 2u;
    var done = false;
    while ok && !done && i < 32u {
        let m = i32f32_checked_mul(term, x);
        ok = m.ok;
        // (t << 32) / (i << 32) truncates exactly like t / i.
        term = div_i64_by_small(m.v, i);
        result = i32f32_checked_add(result.v, term);
        ok = ok && result.ok;
        // Every later term is 0 * x / i = 0: the sum is final.
        done = is_zero64(term);
        i++;
    }
    if !ok {
        return Checked(false, I32F32_ZERO);
    }
    if neg {
        return i32f32_checked_div(I32F32_ONE, result.v);
    }
    return result;
}

// `safe_exp` of the runtimes before spec 365: `exp` unclamped, 0 where it overflows.
fn safe_exp(input: vec2<u32>) -> vec2<u32> {
    let e = exp(input);
    return select(I32F32_ZERO, e.v, e.ok);
}

// `rs` of `log2_inner`: a non-negative value halved, rounding half up.
fn halve_round_up(v: vec2<u32>) -> vec2<u32> {
    let h = vec2<u32>((v.x >> 1u) | (v.y << 31u), v.y >> 1u);
    return wrapping_add64(h, vec2<u32>(v.x & 1u, 0u));
}

// `log2_inner` for x >= 1: whole halvings, then one fraction bit per squaring (32).
fn log2_inner(x0: vec2<u32>) -> vec2<u32> {
    let two = vec2<u32>(0u, 2u);
    var x = x0;
    var whole = 0u;
    while !lt_u64(x, two) {
        whole++;
        x = halve_round_up(x);
    }
    if all(x == I32F32_ONE) {
        return vec2<u32>(0u, whole);
    }
    var frac = 0u;
    for (var i = 0u; i < 32u; i++) {
        // x < 2, so the square stays below 4: exact product, floored.
        let sq = mul_u64_wide(x, x);
        x = vec2<u32>(sq.y, sq.z);
        frac = frac << 1u;
        if !lt_u64(x, two) {
            frac |= 1u;
            x = halve_round_up(x);
        }
    }
    // The whole halvings shifted up by the 32 fraction bits.
    return vec2<u32>(frac, whole);
}

// `transcendental::log2`: `-log2(1 / x)` below 1; `None` for x <= 0.
fn log2(x: vec2<u32>) -> Checked {
    if is_neg(x) || is_zero64(x) {
        return Checked(false, I32F32_ZERO);
    }
    if lt_i64(x, I32F32_ONE) {
        let inverse = i32f32_checked_div(I32F32_ONE, x);
        if !inverse.ok {
            return Checked(false, I32F32_ZERO);
        }
        return Checked(true, wrapping_neg64(log2_inner(inverse.v)));
    }
    return Checked(true, log2_inner(x));
}

// `transcendental::ln`: `log2(x) / LOG2_E`, LOG2_E the upstream I9F23 constant
// (0xB8AA3B << 9 as I32F32); `None` for x <= 0.
fn ln(x: vec2<u32>) -> Checked {
    let l = log2(x);
    if !l.ok {
        return l;
    }
    return i32f32_checked_div(l.v, vec2<u32>(0x71547600u, 1u));
}

// `safe_ln`: `ln`, or 0 where it fails.
fn safe_ln(x: vec2<u32>) -> vec2<u32> {
    let l = ln(x);
    return select(I32F32_ZERO, l.v, l.ok);
}

// `exp_safe`: clamps to [-20, 20]; an overflowing `exp` gives 0 or MAX.
fn exp_safe(input: vec2<u32>) -> vec2<u32> {
    let lo = i32f32_from_int(-20);
    let hi = i32f32_from_int(20);
    var x = input;
    if lt_i64(input, lo) {
        x = lo;
    } else if lt_i64(hi, input) {
        x = hi;
    }
    let e = exp(x);
    if e.ok {
        return e.v;
    }
    return select(I32F32_MAX, I32F32_ZERO, !lt_i64(I32F32_ZERO, x));
}

// I96F32(x) * I96F32(rao) narrowed to u64 for a non-negative I32F32 `x`: the exact
// product x * rao shifted right 32, clamped at u64::MAX.
fn i96f32_mul_to_u64(x: vec2<u32>, rao: vec2<u32>) -> vec2<u32> {
    if is_neg(x) {
        return vec2<u32>(0u, 0u);
    }
    let p = mul_u64_wide(x, rao);
    if p.w != 0u {
        return vec2<u32>(0xffffffffu, 0xffffffffu);
    }
    return vec2<u32>(p.y, p.z);
}

// I64F64 and U96F32: 128-bit raw bits as vec4<u32>, lowest limb first (I64F64 two's
// complement with 64 fraction bits, U96F32 unsigned with 32). 256-bit intermediates are
// array<u32, 8>, lowest limb first.

// A checked 128-bit result: `ok` false stands for upstream's `None`.
struct Checked128 {
    ok: bool,
    v: vec4<u32>,
}

const I64F64_ZERO: vec4<u32> = vec4<u32>(0u, 0u, 0u, 0u);
const I64F64_MAX: vec4<u32> = vec4<u32>(0xffffffffu, 0xffffffffu, 0xffffffffu, 0x7fffffffu);
const I64F64_MIN: vec4<u32> = vec4<u32>(0u, 0u, 0u, 0x80000000u);

fn is_neg128(a: vec4<u32>) -> bool {
    return (a.w & 0x80000000u) != 0u;
}

fn is_zero128(a: vec4<u32>) -> bool {
    return all(a == vec4<u32>(0u));
}

fn wrapping_add128(a: vec4<u32>, b: vec4<u32>) -> vec4<u32> {
    var r = vec4<u32>(0u);
    var c = 0u;
    for (var l = 0u; l < 4u; l++) {
        let s = a[l] + b[l];
        let t = s + c;
        c = select(0u, 1u, s < a[l]) + select(0u, 1u, t < s);
        r[l] = t;
    }
    return r;
}

// Unsigned a < b.
fn lt_u128(a: vec4<u32>, b: vec4<u32>) -> bool {
    var lt = false;
    var decided = false;
    for (var l = 3; l >= 0; l--) {
        if !decided && a[l] != b[l] {
            lt = a[l] < b[l];
            decided = true;
        }
    }
    return lt;
}

// |a| as an unsigned u128 (|i128::MIN| = 2^127 fits).
fn unsigned_abs128(a: vec4<u32>) -> vec4<u32> {
    if is_neg128(a) {
        return neg128(a);
    }
    return a;
}

// Full 256-bit product of two u128, schoolbook on 32-bit limbs (every column fits 64 bits).
fn mul_u128_wide(a: vec4<u32>, b: vec4<u32>) -> array<u32, 8> {
    var r: array<u32, 8>;
    for (var i = 0u; i < 4u; i++) {
        var carry = 0u;
        for (var j = 0u; j < 4u; j++) {
            let p = mul_wide32(a[i], b[j]);
            let s0 = r[i + j] + p.x;
            let s1 = s0 + carry;
            r[i + j] = s1;
            carry = p.y + select(0u, 1u, s0 < p.x) + select(0u, 1u, s1 < s0);
        }
        r[i + 4u] = carry;
    }
    return r;
}

// `(a * b) >> 64` (arithmetic, i.e. floored) in 256 bits; `None` when it leaves i128.
fn mul_shr64_i128(a: vec4<u32>, b: vec4<u32>) -> Checked128 {
    var p = mul_u128_wide(unsigned_abs128(a), unsigned_abs128(b));
    var nonzero = false;
    for (var l = 0u; l < 8u; l++) {
        nonzero = nonzero || p[l] != 0u;
    }
    if is_neg128(a) != is_neg128(b) && nonzero {
        // Two's complement negation of the 256-bit magnitude.
        var c = 1u;
        for (var l = 0u; l < 8u; l++) {
            let x = ~p[l] + c;
            c = select(0u, 1u, c == 1u && x == 0u);
            p[l] = x;
        }
    }
    let v = vec4<u32>(p[2], p[3], p[4], p[5]);
    // Bits 192..255 must sign-extend the result.
    let sign_ext = select(0u, 0xffffffffu, is_neg128(v));
    return Checked128(p[6] == sign_ext && p[7] == sign_ext, v);
}

// `n / d` for a 256-bit `n` whose top 128 bits are below `d` (so the quotient fits
// 128 bits), bit by bit from the numerator's top set bit. The remainder stays below
// 2^129, so five limbs hold it.
fn div_u256_by_u128(num: array<u32, 8>, d: vec4<u32>) -> vec4<u32> {
    // A variable: dynamic indexing of an array value is not portable.
    var n = num;
    var top = -1;
    for (var l = 7; l >= 0; l--) {
        if top < 0 && n[l] != 0u {
            top = l * 32 + i32(firstLeadingBit(n[l]));
        }
    }
    var q = vec4<u32>(0u);
    var r = vec4<u32>(0u);
    var r4 = 0u;
    for (var i = top; i >= 0; i--) {
        let bit = (n[u32(i) >> 5u] >> (u32(i) & 31u)) & 1u;
        r4 = (r4 << 1u) | (r.w >> 31u);
        r = vec4<u32>((r.x << 1u) | bit, (r.y << 1u) | (r.x >> 31u), (r.z << 1u) | (r.y >> 31u), (r.w << 1u) | (r.z >> 31u));
        if r4 != 0u || !lt_u128(r, d) {
            // r - d: the borrow out of limb 3 cancels r4.
            r = wrapping_add128(r, neg128(d));
            r4 = 0u;
            if i < 128 {
                q[u32(i) >> 5u] |= 1u << (u32(i) & 31u);
            }
        }
    }
    return q;
}

// `saturating_from_num(u64)`: values of 2^63 and above saturate to MAX.
fn i64f64_saturating_from_u64(x: vec2<u32>) -> vec4<u32> {
    if (x.y & 0x80000000u) != 0u {
        return I64F64_MAX;
    }
    return vec4<u32>(0u, 0u, x.x, x.y);
}

// `saturating_from_num(U96F32)`: saturates at MAX.
fn i64f64_saturating_from_u96f32(x: vec4<u32>) -> vec4<u32> {
    if x.w != 0u || (x.z & 0x80000000u) != 0u {
        return I64F64_MAX;
    }
    return vec4<u32>(0u, x.x, x.y, x.z);
}

fn i64f64_checked_add(a: vec4<u32>, b: vec4<u32>) -> Checked128 {
    let s = wrapping_add128(a, b);
    // Overflow when both operands share a sign the sum does not.
    let ovf = is_neg128(a) == is_neg128(b) && is_neg128(s) != is_neg128(a);
    return Checked128(!ovf, s);
}

fn i64f64_saturating_add(a: vec4<u32>, b: vec4<u32>) -> vec4<u32> {
    let c = i64f64_checked_add(a, b);
    if c.ok {
        return c.v;
    }
    return select(I64F64_MAX, I64F64_MIN, is_neg128(a));
}

// The exact 256-bit product floored to 64 fraction bits, saturating.
fn i64f64_saturating_mul(a: vec4<u32>, b: vec4<u32>) -> vec4<u32> {
    let c = mul_shr64_i128(a, b);
    if c.ok {
        return c.v;
    }
    return select(I64F64_MAX, I64F64_MIN, is_neg128(a) != is_neg128(b));
}

// `(a << 64) / b` truncated toward zero; `None` on overflow or `b == 0`.
fn i64f64_checked_div(a: vec4<u32>, b: vec4<u32>) -> Checked128 {
    let ub = unsigned_abs128(b);
    let ua = unsigned_abs128(a);
    if is_zero128(b) || !lt_u128(vec4<u32>(ua.z, ua.w, 0u, 0u), ub) {
        return Checked128(false, I64F64_ZERO);
    }
    let q = div_u256_by_u128(array<u32, 8>(0u, 0u, ua.x, ua.y, ua.z, ua.w, 0u, 0u), ub);
    if is_neg128(a) != is_neg128(b) {
        // Up to 2^127 negates into range.
        let fits = !is_neg128(q) || all(q == I64F64_MIN);
        return Checked128(fits, neg128(q));
    }
    return Checked128(!is_neg128(q), q);
}

fn i64f64_safe_div(a: vec4<u32>, b: vec4<u32>) -> vec4<u32> {
    let c = i64f64_checked_div(a, b);
    return select(I64F64_ZERO, c.v, c.ok);
}

// `saturating_to_num::<u64>()`: floor, clamped at 0 (the integer part is an i64).
fn i64f64_saturating_to_u64(a: vec4<u32>) -> vec2<u32> {
    if is_neg128(a) {
        return vec2<u32>(0u, 0u);
    }
    return vec2<u32>(a.z, a.w);
}

// `saturating_from_num(I64F64)`: drops 32 fraction bits (floor), saturates.
fn i32f32_saturating_from_i64f64(x: vec4<u32>) -> vec2<u32> {
    // Bits 32..127 (arithmetic shift): fits i64 when limb 3 sign-extends limb 2.
    let sign_ext = select(0u, 0xffffffffu, (x.z & 0x80000000u) != 0u);
    if x.w != sign_ext {
        return select(I32F32_MAX, I32F32_MIN, is_neg128(x));
    }
    return vec2<u32>(x.y, x.z);
}

fn u96f32_from_u64(x: vec2<u32>) -> vec4<u32> {
    return vec4<u32>(0u, x.x, x.y, 0u);
}

// `(a << 32) / b` truncated; `None` on overflow or `b == 0`.
fn u96f32_checked_div(a: vec4<u32>, b: vec4<u32>) -> Checked128 {
    if is_zero128(b) || !lt_u128(vec4<u32>(a.w, 0u, 0u, 0u), b) {
        return Checked128(false, vec4<u32>(0u));
    }
    return Checked128(true, div_u256_by_u128(array<u32, 8>(0u, a.x, a.y, a.z, a.w, 0u, 0u, 0u), b));
}

fn u96f32_safe_div(a: vec4<u32>, b: vec4<u32>) -> vec4<u32> {
    let c = u96f32_checked_div(a, b);
    return select(vec4<u32>(0u), c.v, c.ok);
}
