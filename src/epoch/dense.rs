//! Exact kernels over dense row blocks: `rows * n` cells, row-major, one per column of
//! every row that has entries. When a matrix is dense anyway (validators weighting every
//! miner, warm bonds), a block lets per-column work read its column's parameters with
//! plain loads instead of gathers, and every kernel here compiles to SIMD: each is built
//! for AVX-512, AVX2 and the baseline, and the CPU picks one at run time.
//!
//! Cells hold non-negative I32F32 raw values (`0..=i64::MAX`) as `u64`; a missing entry is
//! 0, which every kernel treats as the sparse operation treats an absent entry. Products
//! are formed from 32-bit halves because 64-bit lanes have no high multiply.

use crate::fixed::{I32F32, I32F32Divisor};

/// Low 32 bits.
const LO: u64 = 0xFFFF_FFFF;

/// Largest cell value, `I32F32::MAX`.
const MAX: u64 = i64::MAX as u64;

/// `(a * b) >> 64` and the middle word that `(a * b) >> 32` needs, from four 32-bit
/// products: returns `(hi, mid)` with `a * b = hi * 2^64 + (mid mod 2^32) * 2^32 + low`.
#[inline(always)]
fn mul_parts(a: u64, b: u64) -> (u64, u64) {
    let (a0, a1, b0, b1) = (a & LO, a >> 32, b & LO, b >> 32);
    let lo = a0 * b0;
    let m1 = a1 * b0;
    let m2 = a0 * b1;
    let mid = (lo >> 32) + (m1 & LO) + (m2 & LO);
    (a1 * b1 + (m1 >> 32) + (m2 >> 32) + (mid >> 32), mid)
}

/// `I32F32::saturating_mul` for cells: the floored product, clamped to `MAX`.
#[inline(always)]
pub fn mul(a: u64, b: u64) -> u64 {
    let (hi, mid) = mul_parts(a, b);
    if hi >> 31 != 0 {
        MAX
    } else {
        (hi << 32) | (mid & LO)
    }
}

/// `I32F32::saturating_add` for cells (two cells never wrap a `u64`).
#[inline(always)]
fn add(a: u64, b: u64) -> u64 {
    (a + b).min(MAX)
}

/// One divisor per column, prepared for [`div_cols`]. A zero divisor leaves its column as
/// it is, as the sparse column operations do.
pub struct ColDivisors {
    magic: Vec<u64>,
    sh1: Vec<u64>,
    sh2: Vec<u64>,
    /// 32 where the numerator is `a << 32`; 0 for whole-number divisors (numerator `a`)
    /// and for columns left as they are.
    pre: Vec<u64>,
    /// Numerator bits the vector path cannot take: a row holding one goes the exact way.
    bad: Vec<u64>,
    exact: Vec<I32F32Divisor>,
}

impl ColDivisors {
    /// Prepares one divisor per column.
    pub fn new(divisors: &[u64]) -> Self {
        let len = divisors.len();
        let mut t = Self {
            magic: Vec::with_capacity(len),
            sh1: Vec::with_capacity(len),
            sh2: Vec::with_capacity(len),
            pre: Vec::with_capacity(len),
            bad: Vec::with_capacity(len),
            exact: Vec::with_capacity(len),
        };
        for &d in divisors {
            let exact = I32F32Divisor::new(I32F32(d as i64));
            // Zero (or no GM form): magic 0 and no shifts make the quotient the numerator.
            let (magic, sh1, sh2, integral) = exact.gm_params().unwrap_or((0, 0, 0, true));
            t.magic.push(magic);
            t.sh1.push(sh1 as u64);
            t.sh2.push(sh2 as u64);
            t.pre.push(if integral { 0 } else { 32 });
            // Numerators of 1 or more over a fractional divisor need the 128-bit quotient.
            t.bad.push(if integral { 1 << 63 } else { !LO });
            t.exact.push(exact);
        }
        t
    }

    /// `safe_div` of one cell by column `j`'s divisor, or the cell when it is zero.
    fn exact_div(&self, j: usize, a: u64) -> u64 {
        let d = &self.exact[j];
        if d.divisor() == I32F32::ZERO {
            a
        } else {
            d.safe_div(I32F32(a as i64)).0 as u64
        }
    }
}

/// Instruction sets the kernels are built for, best last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The target's baseline (SSE2 on x86-64).
    Baseline,
    /// AVX2 with BMI2.
    Avx2,
    /// AVX-512 F, VL, DQ and BW.
    Avx512,
}

/// The best level this CPU runs, detected once.
pub fn detected_level() -> Level {
    static LEVEL: std::sync::OnceLock<Level> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") && has!("avx512vl") && has!("avx512dq") && has!("avx512bw") {
                return Level::Avx512;
            }
            if has!("avx2") && has!("bmi2") {
                return Level::Avx2;
            }
        }
        Level::Baseline
    })
}

#[cfg(test)]
thread_local! {
    /// A lower level the tests force on their own thread, to check every build.
    static FORCED: std::cell::Cell<Option<Level>> = const { std::cell::Cell::new(None) };
}

/// The level the kernels run at on this thread.
fn level() -> Level {
    #[cfg(test)]
    if let Some(l) = FORCED.with(|f| f.get()) {
        return l.min(detected_level());
    }
    detected_level()
}

/// Builds `$name` from the `#[inline(always)]` body `$generic` once per [`Level`] and
/// calls the best one the CPU runs.
macro_rules! multiversion {
    ($(#[$doc:meta])* pub fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? = $generic:ident;) => {
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw")]
                fn v4($($arg: $ty),*) $(-> $ret)? {
                    $generic($($arg),*)
                }
                #[target_feature(enable = "avx2,bmi2")]
                fn v3($($arg: $ty),*) $(-> $ret)? {
                    $generic($($arg),*)
                }
                match level() {
                    // SAFETY: `level` reports only features this CPU has.
                    Level::Avx512 => return unsafe { v4($($arg),*) },
                    // SAFETY: as above.
                    Level::Avx2 => return unsafe { v3($($arg),*) },
                    Level::Baseline => {}
                }
            }
            $generic($($arg),*)
        }
    };
}

multiversion! {
    /// Saturating column sums of the `n`-column block `vals`.
    pub fn col_sums(vals: &[u64], n: usize) -> Vec<u64> = col_sums_generic;
}

#[inline(always)]
fn col_sums_generic(vals: &[u64], n: usize) -> Vec<u64> {
    let mut sums = vec![0u64; n];
    for row in vals.chunks_exact(n) {
        for (s, &v) in sums.iter_mut().zip(row) {
            *s = add(*s, v);
        }
    }
    sums
}

multiversion! {
    /// Column maxima of the `n`-column block `vals` (0 for a column of zeros).
    pub fn col_maxes(vals: &[u64], n: usize) -> Vec<u64> = col_maxes_generic;
}

#[inline(always)]
fn col_maxes_generic(vals: &[u64], n: usize) -> Vec<u64> {
    let mut maxes = vec![0u64; n];
    for row in vals.chunks_exact(n) {
        for (m, &v) in maxes.iter_mut().zip(row) {
            *m = (*m).max(v);
        }
    }
    maxes
}

multiversion! {
    /// `safe_div` of every cell by its column's divisor (columns with a zero divisor stay).
    pub fn div_cols(vals: &mut [u64], d: &ColDivisors) = div_cols_generic;
}

#[inline(always)]
fn div_cols_generic(vals: &mut [u64], d: &ColDivisors) {
    let n = d.magic.len();
    for row in vals.chunks_exact_mut(n) {
        let mut bad = 0;
        for (&a, &m) in row.iter().zip(&d.bad) {
            bad |= a & m;
        }
        if bad != 0 {
            for (j, a) in row.iter_mut().enumerate() {
                *a = d.exact_div(j, *a);
            }
            continue;
        }
        for (j, a) in row.iter_mut().enumerate() {
            let x = *a << d.pre[j];
            let (t, _) = mul_parts(d.magic[j], x);
            let q = (t + ((x - t) >> d.sh1[j])) >> d.sh2[j];
            // A quotient past I32F32::MAX is an overflow, which `safe_div` makes 0.
            *a = if q > MAX { 0 } else { q };
        }
    }
}

multiversion! {
    /// Multiplies row `r` of the block `vals` by `scale[r]` (saturating).
    pub fn scale_rows(vals: &mut [u64], scale: &[u64]) = scale_rows_generic;
}

#[inline(always)]
fn scale_rows_generic(vals: &mut [u64], scale: &[u64]) {
    let n = vals.len() / scale.len().max(1);
    for (row, &s) in vals.chunks_exact_mut(n.max(1)).zip(scale) {
        for v in row.iter_mut() {
            *v = mul(*v, s);
        }
    }
}

multiversion! {
    /// `alpha * new + keep * old` per cell into `new`, saturating; `present` tells which
    /// results are positive (the entries the sparse EMA keeps).
    pub fn ema(new: &mut [u64], old: &[u64], alpha: u64, keep: u64, present: &mut [bool]) = ema_generic;
}

#[inline(always)]
fn ema_generic(new: &mut [u64], old: &[u64], alpha: u64, keep: u64, present: &mut [bool]) {
    for ((w, &b), p) in new.iter_mut().zip(old).zip(present.iter_mut()) {
        *w = add(mul(alpha, *w), mul(keep, b));
        *p = *w > 0;
    }
}

multiversion! {
    /// `sum_j x_j * row_j` per row (saturating products and sums).
    pub fn dot_rows(vals: &[u64], x: &[u64]) -> Vec<u64> = dot_rows_generic;
}

#[inline(always)]
fn dot_rows_generic(vals: &[u64], x: &[u64]) -> Vec<u64> {
    let n = x.len().max(1);
    let mut out = Vec::with_capacity(vals.len() / n);
    // Plain loops, no closures: a closure would not inherit the caller's target features.
    for row in vals.chunks_exact(n) {
        // Products are below 2^63, so split sums of fewer than 2^31 of them are exact.
        let (mut hi, mut lo) = (0u64, 0u64);
        for (&v, &w) in row.iter().zip(x) {
            let p = mul(w, v);
            hi += p >> 32;
            lo += p & LO;
        }
        out.push((((hi as u128) << 32) + lo as u128).min(MAX as u128) as u64);
    }
    out
}

multiversion! {
    /// `fixed_proportion_to_u16` of every cell.
    pub fn to_u16(vals: &[u64], out: &mut [u16]) = to_u16_generic;
}

#[inline(always)]
fn to_u16_generic(vals: &[u64], out: &mut [u16]) {
    for (o, &v) in out.iter_mut().zip(vals) {
        *o = (mul(v, (u16::MAX as u64) << 32) >> 32).min(u16::MAX as u64) as u16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixed::fixed_proportion_to_u16;

    /// Values that stress carries, the 32-bit split, the saturation points and 1.0.
    fn samples() -> Vec<u64> {
        let mut v = vec![
            0,
            1,
            2,
            LO - 1,
            LO,
            1 << 32,
            (1 << 32) + 1,
            (1 << 33) - 1,
            65_535 << 32,
            1 << 47,
            (1 << 62) + 12_345,
            MAX - 1,
            MAX,
        ];
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Mostly below 1.0 and 2^48, as epochs hold, plus full-range values.
            v.push(x >> (1 + x % 32));
        }
        v
    }

    #[test]
    fn mul_and_add_match_i32f32() {
        let s = samples();
        for &a in &s {
            for &b in &s {
                let (fa, fb) = (I32F32(a as i64), I32F32(b as i64));
                assert_eq!(mul(a, b), fa.saturating_mul(fb).0 as u64, "{a} * {b}");
                assert_eq!(add(a, b), fa.saturating_add(fb).0 as u64, "{a} + {b}");
            }
        }
    }

    /// Runs `check` once at every level this CPU has.
    fn at_every_level(check: impl Fn()) {
        for l in [Level::Baseline, Level::Avx2, Level::Avx512] {
            if l <= detected_level() {
                FORCED.with(|f| f.set(Some(l)));
                check();
            }
        }
        FORCED.with(|f| f.set(None));
    }

    #[test]
    fn div_cols_matches_safe_div_on_every_path() {
        at_every_level(div_cols_case);
    }

    fn div_cols_case() {
        let s = samples();
        // Whole-number, fractional, zero, 1 raw and tiny divisors, each over every sample.
        let mut divs: Vec<u64> = vec![0, 1, 3, 1 << 32, 7 << 32, (1 << 32) + 1, 12_345];
        divs.extend(s.iter().step_by(7));
        let n = divs.len();
        let d = ColDivisors::new(&divs);
        // Rows mix numerators that take the vector path with ones that force the exact path.
        let mut vals: Vec<u64> = Vec::new();
        for &a in &s {
            vals.extend(std::iter::repeat_n(a, n));
        }
        for k in 0..n {
            vals.extend((0..n).map(|j| s[(j * 31 + k) % s.len()] & LO));
        }
        let want: Vec<u64> = vals
            .iter()
            .enumerate()
            .map(|(i, &a)| {
                let dv = I32F32(divs[i % n] as i64);
                if dv == I32F32::ZERO {
                    a
                } else {
                    I32F32(a as i64).safe_div(dv).0 as u64
                }
            })
            .collect();
        div_cols(&mut vals, &d);
        assert_eq!(vals, want);
    }

    #[test]
    fn reductions_and_row_kernels_match_i32f32() {
        at_every_level(row_kernels_case);
    }

    fn row_kernels_case() {
        let s = samples();
        let n = 16;
        let vals: Vec<u64> = s.iter().take(n * 12).copied().collect();
        let rows = vals.len() / n;
        let fx = |v: u64| I32F32(v as i64);

        let sums = col_sums(&vals, n);
        let maxes = col_maxes(&vals, n);
        for j in 0..n {
            let col = (0..rows).map(|r| fx(vals[r * n + j]));
            let want = col.clone().fold(I32F32::ZERO, |a, v| a.saturating_add(v));
            assert_eq!(sums[j], want.0 as u64, "sum of column {j}");
            assert_eq!(maxes[j], col.max().unwrap().0 as u64, "max of column {j}");
        }

        let x: Vec<u64> = s.iter().rev().take(n).copied().collect();
        let dots = dot_rows(&vals, &x);
        for (r, &got) in dots.iter().enumerate() {
            let want = (0..n).fold(I32F32::ZERO, |a, j| {
                a.saturating_add(fx(x[j]).saturating_mul(fx(vals[r * n + j])))
            });
            assert_eq!(got, want.0 as u64, "dot of row {r}");
        }

        let scale: Vec<u64> = s.iter().skip(3).take(rows).copied().collect();
        let mut scaled = vals.clone();
        scale_rows(&mut scaled, &scale);
        for (i, &got) in scaled.iter().enumerate() {
            let want = fx(vals[i]).saturating_mul(fx(scale[i / n]));
            assert_eq!(got, want.0 as u64, "scaled cell {i}");
        }

        let (alpha, keep) = (s[20], s[21]);
        let mut new = vals.clone();
        let old: Vec<u64> = vals.iter().rev().copied().collect();
        let mut present = vec![false; new.len()];
        ema(&mut new, &old, alpha, keep, &mut present);
        for i in 0..new.len() {
            let want = fx(alpha)
                .saturating_mul(fx(vals[i]))
                .saturating_add(fx(keep).saturating_mul(fx(old[i])));
            assert_eq!(new[i], want.0 as u64, "ema cell {i}");
            assert_eq!(present[i], want > I32F32::ZERO);
        }

        let mut out = vec![0u16; vals.len()];
        to_u16(&vals, &mut out);
        for (i, &got) in out.iter().enumerate() {
            assert_eq!(got, fixed_proportion_to_u16(fx(vals[i])), "u16 of cell {i}");
        }
    }
}
