//! [`exp_safe`](super::exp_safe) of many inputs: three vectors of eight lanes side by side on
//! AVX-512, four lanes of the lockstep scalar series elsewhere.
//!
//! `exp_safe` clamps its input to [-20, 20], and there the upstream series never overflows
//! (its largest term, 20^20 / 20!, is below 2^26, and the sum below e^20 < 2^29), so every
//! checked step is exact and a lane whose term reaches zero just keeps adding zeros. Each
//! step `term = (term * x >> 32) / i` is built from 32-bit multiplies, and the division by
//! the constant `i` is a multiply by its Granlund–Montgomery reciprocal.

use super::{I32F32, exp_safe_lanes};

/// `exp_safe` of each input into the same position of `out` (pairs up to the shorter).
pub fn exp_safe_many(inputs: &[I32F32], out: &mut [I32F32]) {
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        // SAFETY: the CPU has AVX-512 F, the only feature the function is compiled for.
        return unsafe { avx512::exp_safe(inputs, out) };
    }
    portable(inputs, out);
}

/// Whether the AVX-512 path runs (tests may turn it off on their thread).
#[cfg(target_arch = "x86_64")]
fn avx512() -> bool {
    #[cfg(test)]
    if tests::PORTABLE.with(|p| p.get()) {
        return false;
    }
    std::arch::is_x86_feature_detected!("avx512f")
}

/// Four lanes at a time through the lockstep series.
fn portable(inputs: &[I32F32], out: &mut [I32F32]) {
    for (xs, os) in inputs.chunks(4).zip(out.chunks_mut(4)) {
        let lanes: [I32F32; 4] = std::array::from_fn(|l| xs.get(l).copied().unwrap_or_default());
        let e = exp_safe_lanes(lanes);
        let n = os.len().min(xs.len());
        os[..n].copy_from_slice(&e[..n]);
    }
}

/// For each series step `i = 2..=31`: `(m_lo, m_hi, shift)` with
/// `floor(p / i) = (high word of m * p) >> shift` for every `p < 2^62`.
const DIVISORS: [(u64, u64, u64); 30] = {
    let mut t = [(0, 0, 0); 30];
    let mut i = 2u64;
    while i <= 31 {
        let (m, shift) = if i.is_power_of_two() {
            // 2^(64 - k): the high word is p >> k.
            (1u64 << (64 - i.trailing_zeros()), 0)
        } else {
            // GM: with l = ceil(log2 i), m = ceil(2^(62 + l) / i) < 2^63 is exact below 2^62.
            let l = 64 - (i - 1).leading_zeros() as u64;
            (((1u128 << (62 + l)).div_ceil(i as u128)) as u64, l - 2)
        };
        t[(i - 2) as usize] = (m & 0xFFFF_FFFF, m >> 32, shift);
        i += 1;
    }
    t
};

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{DIVISORS, portable};
    use crate::fixed::{E_I32F32, I32F32};

    /// The high word of `a * b` for `a, b < 2^63`, per lane, from four 32-bit multiplies.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn mul_hi(a_lo: __m512i, a_hi: __m512i, b: __m512i) -> __m512i {
        let lo32 = _mm512_set1_epi64(0xFFFF_FFFF);
        let b_hi = _mm512_srli_epi64::<32>(b);
        let low = _mm512_mul_epu32(a_lo, b);
        let cross1 = _mm512_mul_epu32(a_hi, b);
        let cross2 = _mm512_mul_epu32(a_lo, b_hi);
        let high = _mm512_mul_epu32(a_hi, b_hi);
        let mid = _mm512_add_epi64(
            _mm512_srli_epi64::<32>(low),
            _mm512_add_epi64(
                _mm512_and_si512(cross1, lo32),
                _mm512_and_si512(cross2, lo32),
            ),
        );
        _mm512_add_epi64(
            _mm512_add_epi64(high, _mm512_srli_epi64::<32>(mid)),
            _mm512_add_epi64(
                _mm512_srli_epi64::<32>(cross1),
                _mm512_srli_epi64::<32>(cross2),
            ),
        )
    }

    /// Vectors run side by side: one series step is a chain of dependent multiplies, so
    /// independent vectors in flight keep the multiplier busy.
    const GROUPS: usize = 3;

    /// Inputs per pass.
    const PASS: usize = 8 * GROUPS;

    /// `exp_safe` `PASS` inputs at a time; a pass that leaves the proven range (never, by
    /// the bounds above) is redone by the portable path.
    #[target_feature(enable = "avx512f")]
    pub fn exp_safe(inputs: &[I32F32], out: &mut [I32F32]) {
        let lo32 = _mm512_set1_epi64(0xFFFF_FFFF);
        let one = _mm512_set1_epi64(1 << 32);
        let (min, max) = (_mm512_set1_epi64(-20 << 32), _mm512_set1_epi64(20 << 32));
        for (xs, os) in inputs.chunks(PASS).zip(out.chunks_mut(PASS)) {
            let mut lanes = [0i64; PASS];
            for (l, x) in lanes.iter_mut().zip(xs) {
                *l = x.0;
            }
            let mut x = [_mm512_setzero_si512(); GROUPS];
            let (mut v_lo, mut v_hi) = (x, x);
            let (mut term, mut sum, mut wide) = (x, x, x);
            for g in 0..GROUPS {
                // SAFETY: `lanes` holds GROUPS vectors of 64 bytes.
                let raw = unsafe { _mm512_loadu_si512(lanes.as_ptr().add(8 * g).cast()) };
                x[g] = _mm512_min_epi64(_mm512_max_epi64(raw, min), max);
                // The series runs on |x|; negative inputs are inverted at the end.
                let v = _mm512_abs_epi64(x[g]);
                (v_lo[g], v_hi[g]) = (_mm512_and_si512(v, lo32), _mm512_srli_epi64::<32>(v));
                (term[g], sum[g]) = (v, _mm512_add_epi64(v, one));
            }
            for &(m_lo, m_hi, shift) in &DIVISORS {
                let (m_lo, m_hi) = (
                    _mm512_set1_epi64(m_lo as i64),
                    _mm512_set1_epi64(m_hi as i64),
                );
                let shift = _mm_cvtsi64_si128(shift as i64);
                let mut live = 0;
                for g in 0..GROUPS {
                    // (term * v) >> 32, exact: term < 2^62 and v < 2^37.
                    let t_hi = _mm512_srli_epi64::<32>(term[g]);
                    let p = _mm512_add_epi64(
                        _mm512_add_epi64(
                            _mm512_slli_epi64::<32>(_mm512_mul_epu32(t_hi, v_hi[g])),
                            _mm512_mul_epu32(t_hi, v_lo[g]),
                        ),
                        _mm512_add_epi64(
                            _mm512_mul_epu32(term[g], v_hi[g]),
                            _mm512_srli_epi64::<32>(_mm512_mul_epu32(term[g], v_lo[g])),
                        ),
                    );
                    // Bits at 2^62 and above: outside the proven range.
                    wide[g] = _mm512_or_si512(wide[g], _mm512_srli_epi64::<62>(p));
                    term[g] = _mm512_srl_epi64(mul_hi(m_lo, m_hi, p), shift);
                    sum[g] = _mm512_add_epi64(sum[g], term[g]);
                    live |= _mm512_test_epi64_mask(term[g], term[g]);
                }
                if live == 0 {
                    break;
                }
            }
            let wide = wide
                .iter()
                .fold(_mm512_setzero_si512(), |a, &w| _mm512_or_si512(a, w));
            if _mm512_test_epi64_mask(wide, wide) != 0 {
                portable(xs, os);
                continue;
            }
            let (mut clamped, mut sums) = ([0i64; PASS], [0i64; PASS]);
            for g in 0..GROUPS {
                // SAFETY: both arrays hold GROUPS vectors of 64 bytes.
                unsafe {
                    _mm512_storeu_si512(clamped.as_mut_ptr().add(8 * g).cast(), x[g]);
                    _mm512_storeu_si512(sums.as_mut_ptr().add(8 * g).cast(), sum[g]);
                }
            }
            for (l, o) in os.iter_mut().enumerate().take(xs.len()) {
                *o = match clamped[l] {
                    // Upstream returns its E constant for exactly 1, not the series.
                    x if x == I32F32::ONE.0 => I32F32(E_I32F32),
                    // Sums are at least 1, so the quotient always exists.
                    x if x < 0 => I32F32::ONE
                        .checked_div(I32F32(sums[l]))
                        .unwrap_or(I32F32::ZERO),
                    _ => I32F32(sums[l]),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixed::exp_safe;

    thread_local! {
        /// Forces the portable path on this thread.
        pub static PORTABLE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    #[test]
    fn divisor_reciprocals_are_exact_below_2_62() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for (k, &(m_lo, m_hi, shift)) in DIVISORS.iter().enumerate() {
            let i = k as u64 + 2;
            let m = m_hi << 32 | m_lo;
            let edges = [
                0,
                1,
                i - 1,
                i,
                i + 1,
                (1 << 62) - 1,
                (1 << 62) - i,
                (1 << 61) + 7,
            ];
            for p in edges.into_iter().chain((0..20_000).map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x >> 2
            })) {
                let q = ((m as u128 * p as u128) >> 64) as u64 >> shift;
                assert_eq!(q, p / i, "{p} / {i}");
            }
        }
    }

    /// Both paths equal `exp_safe` input by input, across the clamp, at the special inputs
    /// and for every group length (the property tests hold `exp_safe` to upstream).
    #[test]
    fn exp_safe_many_matches_exp_safe() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut inputs: Vec<I32F32> = [0i64, 1, -1, 1 << 32, -(1 << 32), 20 << 32, -20 << 32]
            .into_iter()
            .chain([
                (20 << 32) + 1,
                -(20 << 32) - 1,
                21 << 32,
                i64::MAX,
                i64::MIN,
                1 << 31,
            ])
            .map(I32F32)
            .collect();
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Mostly within the clamp, some beyond it.
            inputs.push(I32F32((x % (50 << 32)) as i64 - (25 << 32)));
        }
        let want: Vec<I32F32> = inputs.iter().map(|&v| exp_safe(v)).collect();
        for portable in [false, true] {
            PORTABLE.with(|p| p.set(portable));
            for len in [inputs.len(), 1, 3, 7, 8, 9, 17, 23, 24, 25, 48, 49] {
                let mut got = vec![I32F32(-7); len];
                exp_safe_many(&inputs[..len], &mut got);
                assert_eq!(got, want[..len], "portable {portable}, length {len}");
            }
        }
        PORTABLE.with(|p| p.set(false));
    }
}
