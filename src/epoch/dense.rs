//! Exact kernels over dense row blocks: `rows * n` cells, row-major, one per column of
//! every row that has entries. When a matrix is dense anyway (validators weighting every
//! miner, warm bonds), a block lets per-column work read its column's parameters with
//! plain loads instead of gathers, and every kernel here compiles to SIMD: each is built
//! for AVX-512, AVX2 and the baseline, and the CPU picks one at run time.
//!
//! Cells hold non-negative I32F32 raw values (`0..=i64::MAX`) as `u64`; a missing entry is
//! 0, which every kernel treats as the sparse operation treats an absent entry. Products
//! are formed from 32-bit multiplies because 64-bit lanes have no high multiply, so the
//! vector paths take values below 2 (epochs hold values up to 1); a row holding anything
//! larger goes through the exact scalar operations of `fixed.rs` instead.

use crate::fixed::{I32F32, gm_params};

/// Where the epoch may use dense blocks (the weighted median and original Yuma's bonds);
/// every layout gives the same outputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// Dense where the rows that hold entries are at least half full.
    #[default]
    Auto,
    /// Always sparse.
    Sparse,
    /// Dense wherever the dense path applies and its blocks stay within 2^24 cells (tests
    /// use it to hold both paths to the same answers).
    Dense,
}

impl Layout {
    /// Whether to go dense for `entries` entries over `cells` cells.
    pub fn dense(self, entries: usize, cells: usize) -> bool {
        // Half full or better: the blocks are at most twice the input's entries.
        let half_full = 2 * entries >= cells;
        match self {
            Layout::Auto => half_full,
            Layout::Sparse => false,
            // A forced block of a huge sparse subnet could not be allocated at all.
            Layout::Dense => half_full || cells <= 1 << 24,
        }
    }
}

/// Low 32 bits.
const LO: u64 = 0xFFFF_FFFF;

/// Largest cell value, `I32F32::MAX`.
const MAX: u64 = i64::MAX as u64;

/// Cells below this take the vector paths of the multiplying kernels.
const FAST: u64 = 1 << 33;

/// `I32F32::saturating_mul` for operands below [`FAST`]: high halves are 0 or 1, so the
/// floored product needs one 32-bit multiply (and never saturates).
#[inline(always)]
fn mul_fast(a: u64, b: u64) -> u64 {
    let (al, ah, bl, bh) = (a & LO, a >> 32, b & LO, b >> 32);
    ((al * bl) >> 32) + ah * bl + bh * al + ((ah & bh) << 32)
}

/// `I32F32::saturating_mul` for any two cells.
fn mul_exact(a: u64, b: u64) -> u64 {
    I32F32(a as i64).saturating_mul(I32F32(b as i64)).0 as u64
}

/// Whether every cell of `row` is below [`FAST`].
#[inline(always)]
fn fast(row: &[u64]) -> bool {
    let mut or = 0;
    for &v in row {
        or |= v;
    }
    or < FAST
}

/// `I32F32::saturating_add` for cells (two cells never wrap a `u64`).
#[inline(always)]
fn add(a: u64, b: u64) -> u64 {
    (a + b).min(MAX)
}

/// A zeroed block of cells from a per-thread pool, given back on drop: a fresh block of
/// hundreds of kilobytes would cost a page fault per 4 KiB on every epoch. Cells start on
/// a cache line, so no vector load straddles two.
pub struct Block {
    lines: Vec<Line>,
    len: usize,
}

/// Eight cells on one cache line.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
struct Line([u64; 8]);

/// Blocks kept per thread: the most one epoch holds at once.
const POOL_KEEP: usize = 2;

/// Largest block kept, in lines (8 MiB): a daemon thread that once ran a huge subnet
/// should not hold its blocks forever.
const POOL_MAX_LINES: usize = 1 << 17;

thread_local! {
    static POOL: std::cell::RefCell<Vec<Vec<Line>>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Block {
    /// `len` zero cells.
    pub fn zeroed(len: usize) -> Self {
        let mut lines = POOL
            .try_with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.pop()))
            .ok()
            .flatten()
            .unwrap_or_default();
        lines.clear();
        lines.resize(len.div_ceil(8), Line([0; 8]));
        Self { lines, len }
    }
}

impl std::ops::Deref for Block {
    type Target = [u64];
    fn deref(&self) -> &[u64] {
        &bytemuck::cast_slice(&self.lines)[..self.len]
    }
}

impl std::ops::DerefMut for Block {
    fn deref_mut(&mut self) -> &mut [u64] {
        &mut bytemuck::cast_slice_mut(&mut self.lines)[..self.len]
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        let lines = std::mem::take(&mut self.lines);
        // `try_with`: during thread teardown the pool may be gone; then the block is freed.
        let _ = POOL.try_with(|p| {
            if let Ok(mut p) = p.try_borrow_mut()
                && p.len() < POOL_KEEP
                && lines.capacity() <= POOL_MAX_LINES
            {
                p.push(lines);
            }
        });
    }
}

/// One divisor per column, prepared for [`div_cols`]: each column's `Params` as one
/// array per field, so a row loads eight columns' parameters at once. A zero divisor
/// leaves its column as it is, as the sparse column operations do.
pub struct ColDivisors {
    magic: Vec<u64>,
    sh1: Vec<u64>,
    sh2: Vec<u64>,
    pre: Vec<u64>,
    bad: Vec<u64>,
    divisor: Vec<u64>,
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
            divisor: divisors.to_vec(),
        };
        for &d in divisors {
            let p = Params::new(d);
            t.magic.push(p.magic);
            t.sh1.push(p.sh1);
            t.sh2.push(p.sh2);
            t.pre.push(p.pre);
            t.bad.push(p.bad);
        }
        t
    }
}

/// One divisor prepared for the vector path (see [`quotient`]).
#[derive(Clone, Copy)]
struct Params {
    magic: u64,
    sh1: u64,
    sh2: u64,
    /// 32 where the numerator is `a << 32`; 0 for whole-number divisors (numerator `a`)
    /// and for divisors that leave the cell as it is.
    pre: u64,
    /// Numerator bits the vector path cannot take.
    bad: u64,
}

impl Params {
    fn new(d: u64) -> Self {
        // The vector path needs the numerator `a << pre` to have a zero low word: a
        // fraction over a whole number, or 1 or more over a fraction, goes the exact
        // way, as does any numerator (or divisor) past I32F32::MAX.
        const TOP: u64 = 1 << 63;
        let (magic, sh1, sh2, pre, bad) = match d {
            // Zero and 1 leave the numerator as it is: magic 0 and no shifts do that.
            0 | 0x1_0000_0000 => (0, 0, 0, 0, TOP),
            d if d > MAX => (0, 0, 0, 0, u64::MAX),
            d => match gm_params(d) {
                (m, s1, s2, true) => (m, s1, s2, 0, LO | TOP),
                (m, s1, s2, false) => (m, s1, s2, 32, !LO),
            },
        };
        Self {
            magic,
            sh1: sh1 as u64,
            sh2: sh2 as u64,
            pre,
            bad,
        }
    }
}

/// The quotient of a cell with none of its divisor's `bad` bits: the numerator `x` is
/// `h << 32`, so the high word of `magic * x` is that of `magic * h` shifted by 32, two
/// 32-bit multiplies. A quotient past I32F32::MAX is an overflow, which `safe_div` makes 0.
#[inline(always)]
fn quotient(a: u64, magic: u64, sh1: u64, sh2: u64, pre: u64) -> u64 {
    let x = a << pre;
    let h = x >> 32;
    let t = (magic >> 32) * h + (((magic & LO) * h) >> 32);
    let q = (t + ((x - t) >> sh1)) >> sh2;
    if q > MAX { 0 } else { q }
}

/// `safe_div` of a cell by `d`, or the cell when `d` is zero: the exact path.
fn exact_div(a: u64, d: u64) -> u64 {
    match d {
        0 => a,
        d => I32F32(a as i64).safe_div(I32F32(d as i64)).0 as u64,
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
    col_fold(vals, n, add)
}

multiversion! {
    /// Column maxima of the `n`-column block `vals` (0 for a column of zeros).
    pub fn col_maxes(vals: &[u64], n: usize) -> Vec<u64> = col_maxes_generic;
}

#[inline(always)]
fn col_maxes_generic(vals: &[u64], n: usize) -> Vec<u64> {
    col_fold(vals, n, u64::max)
}

/// Folds every column of the block with `f`, starting from 0.
#[inline(always)]
fn col_fold(vals: &[u64], n: usize, f: fn(u64, u64) -> u64) -> Vec<u64> {
    let mut acc = vec![0u64; n];
    for row in vals.chunks_exact(n) {
        for (a, &v) in acc.iter_mut().zip(row) {
            *a = f(*a, v);
        }
    }
    acc
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
            for (a, &dv) in row.iter_mut().zip(&d.divisor) {
                *a = exact_div(*a, dv);
            }
            continue;
        }
        for (j, a) in row.iter_mut().enumerate() {
            *a = quotient(*a, d.magic[j], d.sh1[j], d.sh2[j], d.pre[j]);
        }
    }
}

multiversion! {
    /// `safe_div` of every cell by one divisor `d` (cells stay when `d` is zero).
    pub fn div_by(vals: &mut [u64], d: u64) = div_by_generic;
}

#[inline(always)]
fn div_by_generic(vals: &mut [u64], d: u64) {
    let p = Params::new(d);
    let mut bad = 0;
    for &a in vals.iter() {
        bad |= a & p.bad;
    }
    if bad != 0 {
        for a in vals.iter_mut() {
            *a = exact_div(*a, d);
        }
        return;
    }
    for a in vals.iter_mut() {
        *a = quotient(*a, p.magic, p.sh1, p.sh2, p.pre);
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
        if s < FAST && fast(row) {
            for v in row.iter_mut() {
                *v = mul_fast(*v, s);
            }
        } else {
            for v in row.iter_mut() {
                *v = mul_exact(*v, s);
            }
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
    // Row-sized pieces, so that one large value sends only its piece the exact way.
    const PIECE: usize = 256;
    let pieces = new.chunks_mut(PIECE).zip(old.chunks(PIECE));
    for ((new, old), present) in pieces.zip(present.chunks_mut(PIECE)) {
        if alpha < FAST && keep < FAST && fast(new) && fast(old) {
            for ((w, &b), p) in new.iter_mut().zip(old).zip(present.iter_mut()) {
                *w = mul_fast(alpha, *w) + mul_fast(keep, b);
                *p = *w > 0;
            }
        } else {
            for ((w, &b), p) in new.iter_mut().zip(old).zip(present.iter_mut()) {
                *w = add(mul_exact(alpha, *w), mul_exact(keep, b));
                *p = *w > 0;
            }
        }
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
    let x_fast = fast(x);
    for row in vals.chunks_exact(n) {
        if x_fast && fast(row) {
            // Products are below 2^34: fewer than 2^30 of them sum exactly in a u64.
            let mut sum = 0u64;
            for (&v, &w) in row.iter().zip(x) {
                sum += mul_fast(w, v);
            }
            out.push(sum.min(MAX));
        } else {
            let mut sum = 0u64;
            for (&v, &w) in row.iter().zip(x) {
                sum = add(sum, mul_exact(w, v));
            }
            out.push(sum);
        }
    }
    out
}

multiversion! {
    /// `fixed_proportion_to_u16` of every cell.
    pub fn to_u16(vals: &[u64], out: &mut [u16]) = to_u16_generic;
}

#[inline(always)]
fn to_u16_generic(vals: &[u64], out: &mut [u16]) {
    const M: u64 = u16::MAX as u64;
    for (o, &v) in out.iter_mut().zip(vals) {
        // `v * 65535` is exact below 2^47; from there on the result clamps to 65535.
        *o = if v >= 1 << 47 {
            M
        } else {
            ((v * M) >> 32).min(M)
        } as u16;
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
    fn layouts_choose_as_documented() {
        // Auto: half full or better; Sparse: never; Dense: also when the block is small.
        assert!(Layout::Auto.dense(50, 100));
        assert!(!Layout::Auto.dense(49, 100));
        assert!(!Layout::Sparse.dense(100, 100));
        assert!(Layout::Dense.dense(1, 1 << 24));
        assert!(!Layout::Dense.dense(1, (1 << 24) + 1));
        assert!(Layout::Dense.dense(1 << 30, 1 << 31));
    }

    #[test]
    fn mul_and_add_match_i32f32() {
        let s = samples();
        for &a in &s {
            for &b in &s {
                let (fa, fb) = (I32F32(a as i64), I32F32(b as i64));
                let want = fa.saturating_mul(fb).0 as u64;
                assert_eq!(mul_exact(a, b), want, "{a} * {b}");
                if a < FAST && b < FAST {
                    assert_eq!(mul_fast(a, b), want, "{a} * {b} (fast)");
                }
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
        let unit: Vec<u64> = s.iter().map(|&v| v & LO).collect();
        let whole: Vec<u64> = s.iter().map(|&v| v & !LO & MAX).collect();
        // Zero, 1, 1.0, whole-number, fractional and tiny divisors over every sample: most
        // rows hold a numerator the vector path cannot take.
        let mut mixed: Vec<u64> = vec![0, 1, 3, 1 << 32, 7 << 32, (1 << 32) + 1, 12_345];
        mixed.extend(s.iter().step_by(7));
        check_div(&mixed, &s);
        // Fractional divisors over values below 1, and whole-number divisors over whole
        // numbers: every row takes the vector path.
        let fractional: Vec<u64> = s.iter().filter(|&&d| d & LO != 0).copied().collect();
        check_div(&fractional, &unit);
        let whole_divs: Vec<u64> = whole.iter().filter(|&&d| d != 0).copied().collect();
        check_div(&whole_divs, &whole);
        // One divisor over a whole slice, on both paths.
        for &d in mixed.iter().chain(&fractional).chain(&whole_divs) {
            for nums in [&s, &unit, &whole] {
                let mut got = nums.clone();
                div_by(&mut got, d);
                for (&a, &g) in nums.iter().zip(&got) {
                    let want = match d {
                        0 => a,
                        d => I32F32(a as i64).safe_div(I32F32(d as i64)).0 as u64,
                    };
                    assert_eq!(g, want, "{a} / {d}");
                }
            }
        }
    }

    /// `div_cols` by `divs` over rows of every value in `nums` (and one mixed row per
    /// column offset) against `safe_div`.
    fn check_div(divs: &[u64], nums: &[u64]) {
        let n = divs.len();
        let d = ColDivisors::new(divs);
        let mut vals: Vec<u64> = Vec::new();
        for &a in nums {
            vals.extend(std::iter::repeat_n(a, n));
        }
        for k in 0..n {
            vals.extend((0..n).map(|j| nums[(j * 31 + k) % nums.len()]));
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
        // Values below 2 (the vector paths), then every sample (mostly the exact paths).
        row_kernels_on(&s.iter().map(|&v| v % FAST).collect::<Vec<_>>());
        row_kernels_on(&s);
    }

    fn row_kernels_on(s: &[u64]) {
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
