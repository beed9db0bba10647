//! Differential property test of every public operation in `yuma::fixed`, and of the
//! dense-block kernels in `yuma::epoch::dense`, against `substrate-fixed` 0.6.0 (and
//! subtensor's definitions on top of it) as the oracle, comparing raw bits.
//!
//! Each operation runs an explicit edge list (all pairs for binary operations, every
//! value for `u16` inputs) plus `YUMA_PROP_CASES` (default 20 000) random cases from a
//! seeded splitmix64 generator that mixes uniform bits, random bit-lengths, small
//! values, whole numbers and halves, edge neighbours and inputs placed right at the
//! operation's overflow boundary. Inputs on which upstream panics are excluded (and
//! counted), never compared. Run the full sweep with
//! `YUMA_PROP_CASES=1000000 cargo test --release --test fixed_props -- --nocapture`.

use std::fmt::Debug;

use substrate_fixed::transcendental;
use substrate_fixed::types::{
    I32F32 as UI32F32, I64F64 as UI64F64, I96F32 as UI96F32, U96F32 as UU96F32,
};
use yuma::fixed::{self, I32F32, I32F32Divisor, I64F64, I96F32, U96F32};

// ---------------------------------------------------------------------------------------
// Harness

/// Random cases per operation: `YUMA_PROP_CASES`, default 20 000.
fn cases() -> u64 {
    match std::env::var("YUMA_PROP_CASES") {
        Ok(s) => s
            .trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|e| panic!("YUMA_PROP_CASES={s:?}: {e}")),
        Err(_) => 20_000,
    }
}

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn new(name: &str) -> Self {
        // FNV-1a of the operation name: each operation gets its own fixed stream.
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for b in name.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        Rng(h)
    }

    fn u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn u128(&mut self) -> u128 {
        ((self.u64() as u128) << 64) | self.u64() as u128
    }

    fn below(&mut self, n: u64) -> u64 {
        self.u64() % n
    }

    fn coin(&mut self) -> bool {
        self.u64() & 1 == 1
    }

    /// Small signed offset in [-16, 16].
    fn delta(&mut self) -> i64 {
        self.below(33) as i64 - 16
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }

    /// Magnitude with a random bit-length in 0..=64.
    fn bits_u64(&mut self) -> u64 {
        let k = self.below(65) as u32;
        if k == 0 { 0 } else { self.u64() >> (64 - k) }
    }

    /// Magnitude with a random bit-length in 0..=128.
    fn bits_u128(&mut self) -> u128 {
        let k = self.below(129) as u32;
        if k == 0 { 0 } else { self.u128() >> (128 - k) }
    }

    fn bits_i64(&mut self) -> i64 {
        let v = self.bits_u64() as i64;
        if self.coin() { v.wrapping_neg() } else { v }
    }

    fn bits_i128(&mut self) -> i128 {
        let v = self.bits_u128() as i128;
        if self.coin() { v.wrapping_neg() } else { v }
    }
}

/// Panics with the operation, its inputs (raw bits) and both results when they differ.
#[track_caller]
fn same<T: PartialEq + Debug>(op: &str, inputs: impl FnOnce() -> String, ours: T, upstream: T) {
    if ours != upstream {
        let inputs = inputs();
        panic!(
            "{op}: mismatch for inputs {inputs}\n    ours     = {ours:x?} ({ours:?})\n    upstream = {upstream:x?} ({upstream:?})"
        );
    }
}

fn report(op: &str, edge: u64, random: u64, excluded: u64) {
    let excl = if excluded > 0 {
        format!(", {excluded} excluded (upstream panics)")
    } else {
        String::new()
    };
    println!(
        "{op:<34} {:>9} cases = {edge} edge + {random} random{excl}",
        edge + random
    );
}

/// Every edge value, then `n` admitted random values.
fn run1<A: Copy>(
    op: &str,
    edges: &[A],
    n: u64,
    mut generate: impl FnMut(&mut Rng) -> A,
    mut admit: impl FnMut(A) -> bool,
    mut check: impl FnMut(A),
) {
    let (mut edge, mut excluded) = (0, 0);
    for &a in edges {
        if admit(a) {
            check(a);
            edge += 1;
        } else {
            excluded += 1;
        }
    }
    let mut rng = Rng::new(op);
    let mut random = 0;
    while random < n {
        let a = generate(&mut rng);
        if admit(a) {
            check(a);
            random += 1;
        } else {
            excluded += 1;
        }
    }
    report(op, edge, random, excluded);
}

/// Every pair of edge values, then `n` admitted random pairs.
fn run2<A: Copy, B: Copy>(
    op: &str,
    edges_a: &[A],
    edges_b: &[B],
    n: u64,
    mut generate: impl FnMut(&mut Rng) -> (A, B),
    mut admit: impl FnMut(A, B) -> bool,
    mut check: impl FnMut(A, B),
) {
    let (mut edge, mut excluded) = (0, 0);
    for &a in edges_a {
        for &b in edges_b {
            if admit(a, b) {
                check(a, b);
                edge += 1;
            } else {
                excluded += 1;
            }
        }
    }
    let mut rng = Rng::new(op);
    let mut random = 0;
    while random < n {
        let (a, b) = generate(&mut rng);
        if admit(a, b) {
            check(a, b);
            random += 1;
        } else {
            excluded += 1;
        }
    }
    report(op, edge, random, excluded);
}

fn all1<A>(_: A) -> bool {
    true
}

fn all2<A, B>(_: A, _: B) -> bool {
    true
}

// ---------------------------------------------------------------------------------------
// Edge lists and generic generators

fn dedup<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v.dedup();
    v
}

/// Raw I32F32 edges: 0, ±1 raw, MIN/MAX and neighbours, ±2^k and neighbours, whole
/// numbers and halves.
fn edges_i64() -> Vec<i64> {
    let mut v = vec![
        0,
        1,
        -1,
        2,
        -2,
        3,
        -3,
        i64::MIN,
        i64::MIN + 1,
        i64::MAX,
        i64::MAX - 1,
    ];
    for k in 0..63 {
        let p = 1i64 << k;
        v.extend([p, p - 1, p + 1, -p, -p + 1, -p - 1]);
    }
    for w in [1i64, 2, 3, 20, 21, 22, 40, 65_535, 65_536, i32::MAX as i64] {
        v.extend([
            w << 32,
            -(w << 32),
            (w << 32) | (1 << 31),
            -((w << 32) | (1 << 31)),
        ]);
    }
    v.extend([
        (i32::MIN as i64) << 32,
        1 << 31,
        -(1 << 31),
        65_535,
        -65_535,
    ]);
    dedup(v)
}

/// Raw i128 edges (I64F64 and I96F32): as `edges_i64` over 128 bits, with whole numbers
/// and halves at both 64 and 32 fraction bits.
fn edges_i128() -> Vec<i128> {
    let mut v = vec![
        0,
        1,
        -1,
        2,
        -2,
        3,
        -3,
        i128::MIN,
        i128::MIN + 1,
        i128::MAX,
        i128::MAX - 1,
    ];
    for k in 0..127 {
        let p = 1i128 << k;
        v.extend([p, p - 1, p + 1, -p, -p + 1, -p - 1]);
    }
    for frac in [32, 64] {
        for w in [
            1i128,
            2,
            3,
            20,
            65_535,
            65_536,
            i64::MAX as i128,
            u64::MAX as i128,
        ] {
            let x = w << frac;
            let h = x | (1 << (frac - 1));
            v.extend([x, -x, h, -h]);
        }
    }
    v.extend([
        i64::MIN as i128,
        i64::MAX as i128,
        (i64::MIN as i128) << 32,
        (i64::MAX as i128) << 32,
    ]);
    dedup(v)
}

/// Raw U96F32 edges.
fn edges_u128() -> Vec<u128> {
    let mut v = vec![0, 1, 2, 3, u128::MAX, u128::MAX - 1];
    for k in 0..128 {
        let p = 1u128 << k;
        v.extend([p, p - 1, p.wrapping_add(1)]);
    }
    for w in [1u128, 2, 3, 20, 65_535, u64::MAX as u128, u32::MAX as u128] {
        v.extend([w << 32, (w << 32) | (1 << 31), w << 64]);
    }
    dedup(v)
}

fn edges_u64() -> Vec<u64> {
    let mut v = vec![
        0,
        1,
        2,
        3,
        u64::MAX,
        u64::MAX - 1,
        i64::MAX as u64,
        u32::MAX as u64,
        65_535,
    ];
    for k in 0..64 {
        let p = 1u64 << k;
        v.extend([p, p - 1, p.wrapping_add(1)]);
    }
    dedup(v)
}

/// A mixed random raw i64.
fn any_i64(r: &mut Rng, edges: &[i64]) -> i64 {
    match r.below(8) {
        0 | 1 => r.u64() as i64,
        2 | 3 => r.bits_i64(),
        // Whole numbers and halves (random bit-length integer part), ±1 raw.
        4 => {
            let int = r.bits_i64() >> 32;
            (int << 32) | ((r.below(2) as i64) << 31) | r.below(2) as i64
        }
        5 => r.pick(edges),
        6 => r.pick(edges).wrapping_add(r.delta()),
        _ => {
            let p = 1i64 << r.below(63);
            (if r.coin() { -p } else { p }).wrapping_add(r.delta())
        }
    }
}

/// A mixed random raw i128; `frac` places whole numbers.
fn any_i128(r: &mut Rng, edges: &[i128], frac: u32) -> i128 {
    match r.below(8) {
        0 | 1 => r.u128() as i128,
        2 | 3 => r.bits_i128(),
        4 => {
            let int = r.bits_i128() >> frac;
            (int << frac) | ((r.below(2) as i128) << (frac - 1)) | r.below(2) as i128
        }
        5 => r.pick(edges),
        6 => r.pick(edges).wrapping_add(r.delta() as i128),
        _ => {
            let p = 1i128 << r.below(127);
            (if r.coin() { -p } else { p }).wrapping_add(r.delta() as i128)
        }
    }
}

fn any_u128(r: &mut Rng, edges: &[u128]) -> u128 {
    match r.below(8) {
        0 | 1 => r.u128(),
        2 | 3 => r.bits_u128(),
        4 => {
            let int = r.bits_u128() >> 32;
            (int << 32) | ((r.below(2) as u128) << 31) | r.below(2) as u128
        }
        5 => r.pick(edges),
        6 => r.pick(edges).wrapping_add(r.delta() as u128),
        _ => (1u128 << r.below(128)).wrapping_add(r.delta() as u128),
    }
}

fn any_u64(r: &mut Rng, edges: &[u64]) -> u64 {
    match r.below(6) {
        0 | 1 => r.u64(),
        2 | 3 => r.bits_u64(),
        4 => r.pick(edges),
        _ => r.pick(edges).wrapping_add(r.delta() as u64),
    }
}

fn signed(r: &mut Rng, m: u128) -> i128 {
    let v = m.min(i128::MAX as u128) as i128;
    if r.coin() { -v } else { v }
}

/// `floor(2^t / d)` for `0 < d <= 2^127`, or `None` when it does not fit a u128.
fn pow2_div(t: u32, d: u128) -> Option<u128> {
    let (mut q, mut r) = (0u128, 0u128);
    for i in (0..=t).rev() {
        r = (r << 1) | (i == t) as u128;
        if q >> 127 != 0 {
            return None;
        }
        q <<= 1;
        if r >= d {
            r -= d;
            q |= 1;
        }
    }
    Some(q)
}

/// A pair whose exact product lies within a few units of ±2^t (the overflow boundary of
/// a product floored by `t - 127` fraction bits), or a random-bit-length pair around it.
fn near_product_i128(r: &mut Rng, t: u32) -> (i128, i128) {
    let a = r.bits_i128();
    if a == 0 || r.below(4) == 0 {
        // Bit-lengths that sum to about t.
        let la = 1 + r.below(127) as u32;
        let lb = (t as i64 - la as i64 + r.delta() / 4).clamp(0, 127) as u32;
        let x = (r.u128() >> (128 - la)) | (1 << (la - 1));
        let y = if lb == 0 {
            0
        } else {
            (r.u128() >> (128 - lb)) | (1 << (lb - 1))
        };
        return (signed(r, x), signed(r, y));
    }
    match pow2_div(t, a.unsigned_abs()) {
        Some(q) => {
            let b = (q as i128).max(0).saturating_add(r.delta() as i128);
            (a, if r.coin() { -b } else { b })
        }
        None => {
            let m = r.bits_u128();
            (a, signed(r, m))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Upstream helpers

fn u32f(x: i64) -> UI32F32 {
    UI32F32::from_bits(x)
}

fn u64f(x: i128) -> UI64F64 {
    UI64F64::from_bits(x)
}

fn u96f(x: i128) -> UI96F32 {
    UI96F32::from_bits(x)
}

fn uu96f(x: u128) -> UU96F32 {
    UU96F32::from_bits(x)
}

/// subtensor's safe-math `safe_div`: `checked_div(..).unwrap_or_default()`.
macro_rules! up_safe_div {
    ($a:expr, $b:expr) => {
        $a.checked_div($b).unwrap_or_default().to_bits()
    };
}

/// subtensor's `exp_safe`, on top of upstream `exp`.
fn upstream_exp_safe(input: UI32F32) -> UI32F32 {
    let min_input = UI32F32::saturating_from_num(-20);
    let max_input = UI32F32::saturating_from_num(20);
    let mut safe_input = input;
    if input < min_input {
        safe_input = min_input;
    } else if max_input < input {
        safe_input = max_input;
    }
    match transcendental::exp::<UI32F32, UI32F32>(safe_input) {
        Ok(v) => v,
        Err(()) => {
            if safe_input <= UI32F32::from_num(0) {
                UI32F32::saturating_from_num(0)
            } else {
                UI32F32::max_value()
            }
        }
    }
}

/// Whether upstream's 128-bit `mul_overflow` trips its own `debug_assert!` (a negative
/// carry into `shift_lo_up`) for these raw inputs. Only debug builds panic there, so
/// only debug builds exclude these inputs; release builds (as the chain's runtime)
/// compare them all.
fn upstream_mul128_debug_panics(a: i128, b: i128) -> bool {
    if !cfg!(debug_assertions) {
        return false;
    }
    const M: i128 = u64::MAX as i128;
    let (lh, ll) = (a >> 64, a & M);
    let (rh, rl) = (b >> 64, b & M);
    let col01_hi = ((ll as u128).wrapping_mul(rl as u128) >> 64) as i128;
    let partial = lh * rl + col01_hi;
    let (sum, overflow) = partial.overflowing_add(ll * rh);
    overflow && sum >= 0
}

// ---------------------------------------------------------------------------------------
// I32F32

#[test]
fn constants() {
    let c = "constants";
    let table: [(&str, i128, i128); 12] = [
        (
            "ZERO",
            I32F32::ZERO.0.into(),
            UI32F32::from_num(0).to_bits().into(),
        ),
        (
            "ONE",
            I32F32::ONE.0.into(),
            UI32F32::from_num(1).to_bits().into(),
        ),
        (
            "HALF",
            I32F32::HALF.0.into(),
            UI32F32::from_num(0.5).to_bits().into(),
        ),
        (
            "MAX",
            I32F32::MAX.0.into(),
            UI32F32::max_value().to_bits().into(),
        ),
        (
            "MIN",
            I32F32::MIN.0.into(),
            UI32F32::min_value().to_bits().into(),
        ),
        (
            "I32F32 default",
            I32F32::default().0.into(),
            UI32F32::default().to_bits().into(),
        ),
        (
            "I64F64::ZERO",
            I64F64::ZERO.0,
            UI64F64::from_num(0).to_bits(),
        ),
        ("I64F64::MAX", I64F64::MAX.0, UI64F64::max_value().to_bits()),
        ("I64F64::MIN", I64F64::MIN.0, UI64F64::min_value().to_bits()),
        (
            "I64F64 default",
            I64F64::default().0,
            UI64F64::default().to_bits(),
        ),
        (
            "I96F32 default",
            I96F32::default().0,
            UI96F32::default().to_bits(),
        ),
        (
            "U96F32 default",
            U96F32::default().0 as i128,
            UU96F32::default().to_bits() as i128,
        ),
    ];
    for (name, ours, upstream) in table {
        same(c, || name.to_string(), ours, upstream);
    }
    println!("{c:<34} {:>9} cases", table.len());
}

#[test]
fn i32f32_conversions() {
    let n = cases();
    let e = edges_i64();
    let e128 = edges_i128();
    let all_u16: Vec<u16> = (0..=u16::MAX).collect();

    run1(
        "I32F32::from_u16",
        &all_u16,
        n,
        |r| r.u64() as u16,
        all1,
        |x| {
            same(
                "I32F32::from_u16",
                || format!("x={x:#x}"),
                I32F32::from_u16(x).0,
                UI32F32::from_num(x).to_bits(),
            );
        },
    );

    let op = "I32F32::saturating_from_int";
    run1(
        op,
        &e,
        n,
        |r| match r.below(3) {
            0 => r
                .pick(&[i32::MAX as i64 + 1, i32::MIN as i64])
                .wrapping_add(r.delta()),
            _ => any_i64(r, &e),
        },
        all1,
        |x| {
            same(
                op,
                || format!("x={x:#x}"),
                I32F32::saturating_from_int(x).0,
                UI32F32::saturating_from_num(x).to_bits(),
            )
        },
    );

    let op = "I32F32::saturating_from_i64f64";
    run1(
        op,
        &e128,
        n,
        |r| match r.below(3) {
            0 => r
                .pick(&[1i128 << 95, -(1i128 << 95)])
                .wrapping_add(r.delta() as i128 * (1 + r.below(1 << 34) as i128)),
            _ => any_i128(r, &e128, 64),
        },
        all1,
        |x| {
            same(
                op,
                || format!("x={x:#x}"),
                I32F32::saturating_from_i64f64(I64F64(x)).0,
                UI32F32::saturating_from_num(u64f(x)).to_bits(),
            )
        },
    );

    let op = "I32F32::saturating_to_u16";
    run1(
        op,
        &e,
        n,
        |r| match r.below(3) {
            0 => r
                .pick(&[0i64, 65_535 << 32, 65_536 << 32])
                .wrapping_add(r.delta() * r.below(1 << 30) as i64),
            _ => any_i64(r, &e),
        },
        all1,
        |x| {
            same(
                op,
                || format!("x={x:#x}"),
                I32F32(x).saturating_to_u16(),
                u32f(x).saturating_to_num::<u16>(),
            )
        },
    );

    let op = "I32F32::saturating_to_u64";
    run1(
        op,
        &e,
        n,
        |r| match r.below(3) {
            0 => r.delta() * r.below(1 << 34) as i64,
            _ => any_i64(r, &e),
        },
        all1,
        |x| {
            same(
                op,
                || format!("x={x:#x}"),
                I32F32(x).saturating_to_u64(),
                u32f(x).saturating_to_num::<u64>(),
            )
        },
    );
}

/// Near the sum's overflow boundary: `b ≈ MAX - a` or `MIN - a`.
fn near_sum_i64(r: &mut Rng, e: &[i64]) -> (i64, i64) {
    let a = any_i64(r, e);
    let b = match r.below(3) {
        0 => i64::MAX.wrapping_sub(a).wrapping_add(r.delta()),
        1 => i64::MIN.wrapping_sub(a).wrapping_add(r.delta()),
        _ => any_i64(r, e),
    };
    if r.coin() { (a, b) } else { (b, a) }
}

/// Near the product's overflow boundary: `a * b ≈ ±2^95`.
fn near_product_i64(r: &mut Rng, e: &[i64]) -> (i64, i64) {
    if r.coin() {
        return (any_i64(r, e), any_i64(r, e));
    }
    let a = r.bits_i64();
    if a == 0 {
        return (a, any_i64(r, e));
    }
    let target = if r.coin() {
        1i128 << 95
    } else {
        -(1i128 << 95)
    };
    let b = (target + r.delta() as i128 * (1 + r.below(1 << 33) as i128)) / a as i128;
    (a, b.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
}

/// Near the quotient's overflow boundary: `(a << 32) / b ≈ ±2^63`.
fn near_quotient_i64(r: &mut Rng, e: &[i64]) -> (i64, i64) {
    if r.coin() {
        return (any_i64(r, e), any_i64(r, e));
    }
    let a = any_i64(r, e);
    let b = (a >> 31).wrapping_add(r.delta());
    (a, if r.coin() { b.wrapping_neg() } else { b })
}

#[test]
fn i32f32_arithmetic() {
    let n = cases();
    let e = edges_i64();
    let f = |a: i64, b: i64| format!("a={a:#x} b={b:#x}");

    let op = "I32F32Divisor::checked_div";
    run2(
        op,
        &e,
        &e,
        n,
        |r| {
            let (a, b) = near_quotient_i64(r, &e);
            match r.u64() % 4 {
                // The epoch's case: non-negative numerators over positive divisors.
                0 => (a.wrapping_abs().max(0), b.wrapping_abs().max(1)),
                // Numerators below 1 (the 64-bit fast path) over divisors of every size.
                1 => (
                    (r.u64() >> 32) as i64,
                    ((r.u64() >> (1 + r.u64() % 63)) as i64).max(1),
                ),
                // Whole-number divisors (sums of u16 weights or raw bonds).
                2 => (
                    if r.coin() { a } else { a.wrapping_abs().max(0) },
                    (((r.u64() >> (1 + r.u64() % 63)) as i64) << 32).max(1 << 32),
                ),
                _ => (a, b),
            }
        },
        all2,
        |a, b| {
            same(
                op,
                || f(a, b),
                I32F32Divisor::new(I32F32(b))
                    .checked_div(I32F32(a))
                    .map(|q| q.0),
                u32f(a).checked_div(u32f(b)).map(|q| q.to_bits()),
            )
        },
    );

    let op = "I32F32::saturating_add";
    run2(
        op,
        &e,
        &e,
        n,
        |r| near_sum_i64(r, &e),
        all2,
        |a, b| {
            same(
                op,
                || f(a, b),
                I32F32(a).saturating_add(I32F32(b)).0,
                u32f(a).saturating_add(u32f(b)).to_bits(),
            )
        },
    );

    let op = "I32F32::saturating_sub";
    run2(
        op,
        &e,
        &e,
        n,
        |r| {
            let (a, b) = near_sum_i64(r, &e);
            (a, if r.coin() { b.wrapping_neg() } else { b })
        },
        all2,
        |a, b| {
            same(
                op,
                || f(a, b),
                I32F32(a).saturating_sub(I32F32(b)).0,
                u32f(a).saturating_sub(u32f(b)).to_bits(),
            )
        },
    );

    let op = "I32F32::wrapping_add";
    run2(
        op,
        &e,
        &e,
        n,
        |r| near_sum_i64(r, &e),
        all2,
        |a, b| {
            same(
                op,
                || f(a, b),
                I32F32(a).wrapping_add(I32F32(b)).0,
                u32f(a).wrapping_add(u32f(b)).to_bits(),
            )
        },
    );

    let op = "I32F32::checked_add";
    run2(
        op,
        &e,
        &e,
        n,
        |r| near_sum_i64(r, &e),
        all2,
        |a, b| {
            same(
                op,
                || f(a, b),
                I32F32(a).checked_add(I32F32(b)).map(|v| v.0),
                u32f(a).checked_add(u32f(b)).map(UI32F32::to_bits),
            )
        },
    );

    let op = "I32F32::checked_neg";
    run1(
        op,
        &e,
        n,
        |r| any_i64(r, &e),
        all1,
        |a| {
            same(
                op,
                || format!("a={a:#x}"),
                I32F32(a).checked_neg().map(|v| v.0),
                u32f(a).checked_neg().map(UI32F32::to_bits),
            )
        },
    );

    let op = "I32F32::checked_mul";
    run2(
        op,
        &e,
        &e,
        n,
        |r| near_product_i64(r, &e),
        all2,
        |a, b| {
            same(
                op,
                || f(a, b),
                I32F32(a).checked_mul(I32F32(b)).map(|v| v.0),
                u32f(a).checked_mul(u32f(b)).map(UI32F32::to_bits),
            )
        },
    );

    let op = "I32F32::saturating_mul";
    run2(
        op,
        &e,
        &e,
        n,
        |r| near_product_i64(r, &e),
        all2,
        |a, b| {
            same(
                op,
                || f(a, b),
                I32F32(a).saturating_mul(I32F32(b)).0,
                u32f(a).saturating_mul(u32f(b)).to_bits(),
            )
        },
    );

    let op = "I32F32::checked_div";
    run2(
        op,
        &e,
        &e,
        n,
        |r| near_quotient_i64(r, &e),
        all2,
        |a, b| {
            same(
                op,
                || f(a, b),
                I32F32(a).checked_div(I32F32(b)).map(|v| v.0),
                u32f(a).checked_div(u32f(b)).map(UI32F32::to_bits),
            )
        },
    );

    // Upstream `saturating_div` panics on a zero divisor: those inputs are excluded.
    let op = "I32F32::saturating_div";
    run2(
        op,
        &e,
        &e,
        n,
        |r| near_quotient_i64(r, &e),
        |_, b| b != 0,
        |a, b| {
            same(
                op,
                || f(a, b),
                I32F32(a).saturating_div(I32F32(b)).0,
                u32f(a).saturating_div(u32f(b)).to_bits(),
            )
        },
    );

    let op = "I32F32::safe_div";
    run2(
        op,
        &e,
        &e,
        n,
        |r| near_quotient_i64(r, &e),
        all2,
        |a, b| {
            same(
                op,
                || f(a, b),
                I32F32(a).safe_div(I32F32(b)).0,
                up_safe_div!(u32f(a), u32f(b)),
            )
        },
    );

    let near_equal = |r: &mut Rng| {
        let a = any_i64(r, &e);
        (
            a,
            if r.coin() {
                a.wrapping_add(r.delta())
            } else {
                any_i64(r, &e)
            },
        )
    };
    let op = "I32F32::max_of";
    run2(op, &e, &e, n, near_equal, all2, |a, b| {
        same(
            op,
            || f(a, b),
            I32F32(a).max_of(I32F32(b)).0,
            Ord::max(u32f(a), u32f(b)).to_bits(),
        )
    });
    let op = "I32F32::min_of";
    run2(op, &e, &e, n, near_equal, all2, |a, b| {
        same(
            op,
            || f(a, b),
            I32F32(a).min_of(I32F32(b)).0,
            Ord::min(u32f(a), u32f(b)).to_bits(),
        )
    });
    let op = "I32F32::cmp";
    run2(op, &e, &e, n, near_equal, all2, |a, b| {
        same(
            op,
            || f(a, b),
            I32F32(a).cmp(&I32F32(b)),
            u32f(a).cmp(&u32f(b)),
        )
    });
}

#[test]
fn u16_proportions() {
    let n = cases();
    let e = edges_i64();
    let all_u16: Vec<u16> = (0..=u16::MAX).collect();
    let m = UI32F32::saturating_from_num(u16::MAX);

    let op = "u16_proportion_to_fixed";
    run1(
        op,
        &all_u16,
        n,
        |r| r.u64() as u16,
        all1,
        |x| {
            same(
                op,
                || format!("x={x:#x}"),
                fixed::u16_proportion_to_fixed(x).0,
                up_safe_div!(UI32F32::saturating_from_num(x), m),
            )
        },
    );

    let op = "fixed_proportion_to_u16";
    let overflow_at = (1i64 << 63) / 65_535;
    run1(
        op,
        &e,
        n,
        |r| match r.below(4) {
            0 => r
                .pick(&[0i64, 1 << 32, overflow_at, -overflow_at])
                .wrapping_add(r.delta() * r.below(1 << 20) as i64),
            1 => r.below((1 << 32) + 1) as i64,
            _ => any_i64(r, &e),
        },
        all1,
        |x| {
            same(
                op,
                || format!("x={x:#x}"),
                fixed::fixed_proportion_to_u16(I32F32(x)),
                u32f(x).saturating_mul(m).saturating_to_num::<u16>(),
            )
        },
    );
}

/// Inputs concentrated in [-40, 40]: uniform, whole and half numbers, the overflow
/// threshold (about ±21.49), small magnitudes, plus random bits.
fn exp_input(r: &mut Rng, e: &[i64]) -> i64 {
    match r.below(8) {
        0 | 1 => r.below((80 << 32) + 1) as i64 - (40 << 32),
        2 => ((r.below(161) as i64 - 80) << 31).wrapping_add(r.delta() * r.below(1 << 8) as i64),
        3 => {
            let x = (21 << 32) + r.below(1 << 32) as i64;
            if r.coin() { -x } else { x }
        }
        4 => {
            let k = r.below(35) as u32;
            let x = if k == 0 {
                0
            } else {
                (r.u64() >> (64 - k)) as i64
            };
            if r.coin() { -x } else { x }
        }
        5 => r
            .pick(&[0i64, 1 << 32, -(1 << 32), 20 << 32, -20 << 32])
            .wrapping_add(r.delta()),
        _ => any_i64(r, e),
    }
}

#[test]
fn exp() {
    let n = cases();
    let e = edges_i64();
    let op = "exp";
    run1(
        op,
        &e,
        n,
        |r| exp_input(r, &e),
        all1,
        |x| {
            same(
                op,
                || format!("x={x:#x}"),
                fixed::exp(I32F32(x)).map(|v| v.0),
                transcendental::exp::<UI32F32, UI32F32>(u32f(x))
                    .ok()
                    .map(UI32F32::to_bits),
            )
        },
    );
}

#[test]
fn exp_safe() {
    let n = cases();
    let e = edges_i64();
    let op = "exp_safe";
    run1(
        op,
        &e,
        n,
        |r| exp_input(r, &e),
        all1,
        |x| {
            same(
                op,
                || format!("x={x:#x}"),
                fixed::exp_safe(I32F32(x)).0,
                upstream_exp_safe(u32f(x)).to_bits(),
            )
        },
    );
}

/// The runtimes before spec 365: `safe_exp` is upstream `exp` unclamped, 0 on overflow.
#[test]
fn safe_exp() {
    let n = cases();
    let e = edges_i64();
    let op = "safe_exp";
    run1(
        op,
        &e,
        n,
        |r| exp_input(r, &e),
        all1,
        |x| {
            let want: UI32F32 = transcendental::exp(u32f(x)).unwrap_or(UI32F32::from_num(0));
            same(
                op,
                || format!("x={x:#x}"),
                fixed::safe_exp(I32F32(x)).0,
                want.to_bits(),
            )
        },
    );
}

/// Liquid alpha v1 (before spec 273): `safe_ln` is upstream `ln`, 0 where it fails.
#[test]
fn safe_ln() {
    let n = cases();
    let e = edges_i64();
    let op = "safe_ln";
    run1(
        op,
        &e,
        n,
        |r| any_i64(r, &e),
        all1,
        |x| {
            let want: UI32F32 = transcendental::ln(u32f(x)).unwrap_or(UI32F32::from_num(0));
            same(
                op,
                || format!("x={x:#x}"),
                fixed::safe_ln(I32F32(x)).0,
                want.to_bits(),
            )
        },
    );
}

/// Pruning scores (before spec 365) round: ties away from zero.
#[test]
fn round() {
    let n = cases();
    let e = edges_i64();
    let op = "round";
    // Upstream panics (debug) or wraps where the rounded value leaves the range.
    let fits = |x: i64| (i64::MIN + (1 << 31)..i64::MAX - (1 << 31)).contains(&x);
    run1(
        op,
        &e,
        n,
        |r| any_i64(r, &e),
        fits,
        |x| {
            same(
                op,
                || format!("x={x:#x}"),
                I32F32(x).round().0,
                u32f(x).round().to_bits(),
            )
        },
    );
}

/// Many inputs at once, four lanes in lockstep (`exp_safe_lanes`) and a batch of ten
/// (`exp_safe_many`, the AVX-512 path where the CPU has it): each output must equal
/// upstream `exp_safe` of its own input, whatever its neighbours do (early finish,
/// overflow, the special inputs 0 and 1).
#[test]
fn exp_safe_lanes_and_many() {
    let n = cases();
    let e = edges_i64();
    let op = "exp_safe_lanes::<4> and exp_safe_many";
    run2(
        op,
        &e,
        &e,
        n,
        |r| (exp_input(r, &e), exp_input(r, &e)),
        all2,
        |a, b| {
            let inputs: Vec<I32F32> = (0..10i64)
                .map(|k| match k % 4 {
                    0 => a,
                    1 => b,
                    2 => b.wrapping_neg(),
                    _ => a ^ k,
                })
                .map(I32F32)
                .collect();
            let lanes: [I32F32; 4] = std::array::from_fn(|l| inputs[l]);
            let lockstep = fixed::exp_safe_lanes(lanes);
            let mut many = vec![I32F32::ZERO; inputs.len()];
            fixed::exp_safe_many(&inputs, &mut many);
            for (l, x) in inputs.iter().enumerate() {
                let want = upstream_exp_safe(u32f(x.0)).to_bits();
                let at = || format!("inputs={inputs:x?} lane {l}");
                same(op, at, many[l].0, want);
                if l < 4 {
                    same(op, at, lockstep[l].0, want);
                }
            }
        },
    );
}

// ---------------------------------------------------------------------------------------
// Dense-block kernels (`yuma::epoch::dense`)

/// Every dense-block kernel against upstream I32F32 arithmetic, cell by cell: blocks of
/// non-negative cells drawn mostly below 2 (the vector paths) with whole numbers, edge
/// values and random bits mixed in (rows holding those take the exact paths), over
/// divisors that are zero, whole, fractional or tiny.
#[test]
fn dense_kernels() {
    use yuma::epoch::dense::{self, ColDivisors};
    let n = cases();
    let op = "dense kernels";
    let mut r = Rng::new(op);
    let e: Vec<i64> = edges_i64().into_iter().filter(|&v| v >= 0).collect();
    let cell = |r: &mut Rng| -> u64 {
        match r.below(8) {
            0..=3 => r.below(1 << 33),
            4 => r.below(1 << 32),
            5 => r.below(65_536) << 32,
            6 => r.pick(&e) as u64,
            _ => any_i64(r, &e).unsigned_abs().min(i64::MAX as u64),
        }
    };
    let up = |v: u64| u32f(v as i64);
    let bits = |v: UI32F32| v.to_bits() as u64;
    let (cols, mut done) = (24, 0);
    while done < n {
        // Most blocks stay below 2 throughout, so whole blocks take the vector paths.
        let small = r.below(3) != 0;
        let draw = |r: &mut Rng| if small { r.below(1 << 33) } else { cell(r) };
        let rows = 1 + r.below(6) as usize;
        let vals: Vec<u64> = (0..rows * cols).map(|_| draw(&mut r)).collect();
        let at = |i: usize| format!("cell {i} of {vals:x?}");

        let divs: Vec<u64> = (0..cols)
            .map(|_| match r.below(5) {
                0 => 0,
                1 => r.below(65_536) << 32,
                2 => 1 + r.below(1 << 33),
                _ => cell(&mut r),
            })
            .collect();
        let mut got = vals.clone();
        dense::div_cols(&mut got, &ColDivisors::new(&divs));
        for (i, &v) in vals.iter().enumerate() {
            let d = divs[i % cols];
            let want = if d == 0 {
                v
            } else {
                up_safe_div!(up(v), up(d)) as u64
            };
            same("dense::div_cols", || at(i), got[i], want);
        }
        let d = divs[r.below(cols as u64) as usize];
        let mut got = vals.clone();
        dense::div_by(&mut got, d);
        for (i, &v) in vals.iter().enumerate() {
            let want = if d == 0 {
                v
            } else {
                up_safe_div!(up(v), up(d)) as u64
            };
            same(
                "dense::div_by",
                || format!("/ {d:#x}: {}", at(i)),
                got[i],
                want,
            );
        }

        let (sums, maxes) = (dense::col_sums(&vals, cols), dense::col_maxes(&vals, cols));
        for j in 0..cols {
            let col = (0..rows).map(|k| up(vals[k * cols + j]));
            let sum = col.clone().fold(up(0), |a, v| a.saturating_add(v));
            same(
                "dense::col_sums",
                || format!("column {j} of {vals:x?}"),
                sums[j],
                bits(sum),
            );
            let max = col.max().unwrap_or(up(0));
            same(
                "dense::col_maxes",
                || format!("column {j} of {vals:x?}"),
                maxes[j],
                bits(max),
            );
        }

        let scale: Vec<u64> = (0..rows).map(|_| draw(&mut r)).collect();
        let mut got = vals.clone();
        dense::scale_rows(&mut got, &scale);
        for (i, &v) in vals.iter().enumerate() {
            let want = bits(up(v).saturating_mul(up(scale[i / cols])));
            same("dense::scale_rows", || at(i), got[i], want);
        }

        let x: Vec<u64> = (0..cols).map(|_| draw(&mut r)).collect();
        let dots = dense::dot_rows(&vals, &x);
        for (k, &got) in dots.iter().enumerate() {
            let want = (0..cols).fold(up(0), |a, j| {
                a.saturating_add(up(x[j]).saturating_mul(up(vals[k * cols + j])))
            });
            same(
                "dense::dot_rows",
                || format!("row {k} of {vals:x?} by {x:x?}"),
                got,
                bits(want),
            );
        }

        let alpha = if small {
            r.below((1 << 32) + 1)
        } else {
            cell(&mut r)
        };
        let keep = if small {
            (1 << 32) - alpha.min(1 << 32)
        } else {
            cell(&mut r)
        };
        let old: Vec<u64> = (0..rows * cols).map(|_| draw(&mut r)).collect();
        let mut got = vals.clone();
        let mut present = vec![false; got.len()];
        dense::ema(&mut got, &old, alpha, keep, &mut present);
        for i in 0..vals.len() {
            let want = up(alpha)
                .saturating_mul(up(vals[i]))
                .saturating_add(up(keep).saturating_mul(up(old[i])));
            let what = || {
                format!(
                    "alpha {alpha:#x} keep {keep:#x} old {:#x}: {}",
                    old[i],
                    at(i)
                )
            };
            same("dense::ema", what, got[i], bits(want));
            same("dense::ema presence", what, present[i], want > up(0));
        }

        let mut got = vec![0u16; vals.len()];
        dense::to_u16(&vals, &mut got);
        let m = UI32F32::from_num(u16::MAX);
        for (i, &v) in vals.iter().enumerate() {
            let want = up(v).saturating_mul(m).saturating_to_num::<u16>();
            same("dense::to_u16", || at(i), got[i], want);
        }
        done += vals.len() as u64;
    }
    report(op, 0, done, 0);
}

// ---------------------------------------------------------------------------------------
// I64F64

#[test]
fn i64f64() {
    let n = cases();
    let e = edges_i128();
    let eu = edges_u128();
    let e64 = edges_u64();
    let f = |a: i128, b: i128| format!("a={a:#x} b={b:#x}");

    let op = "I64F64::saturating_from_u64";
    run1(
        op,
        &e64,
        n,
        |r| {
            if r.coin() {
                (1u64 << 63).wrapping_add(r.delta() as u64)
            } else {
                any_u64(r, &e64)
            }
        },
        all1,
        |x| {
            same(
                op,
                || format!("x={x:#x}"),
                I64F64::saturating_from_u64(x).0,
                UI64F64::saturating_from_num(x).to_bits(),
            )
        },
    );

    let op = "I64F64::saturating_from_u96f32";
    run1(
        op,
        &eu,
        n,
        |r| {
            if r.coin() {
                (1u128 << 95).wrapping_add(r.delta() as u128)
            } else {
                any_u128(r, &eu)
            }
        },
        all1,
        |x| {
            same(
                op,
                || format!("x={x:#x}"),
                I64F64::saturating_from_u96f32(U96F32(x)).0,
                UI64F64::saturating_from_num(uu96f(x)).to_bits(),
            )
        },
    );

    let op = "I64F64::saturating_to_u64";
    run1(
        op,
        &e,
        n,
        |r| {
            if r.below(3) == 0 {
                r.delta() as i128 * r.below(1 << 40) as i128
            } else {
                any_i128(r, &e, 64)
            }
        },
        all1,
        |x| {
            same(
                op,
                || format!("x={x:#x}"),
                I64F64(x).saturating_to_u64(),
                u64f(x).saturating_to_num::<u64>(),
            )
        },
    );

    let near_sum = |r: &mut Rng| {
        let a = any_i128(r, &e, 64);
        let b = match r.below(3) {
            0 => i128::MAX.wrapping_sub(a).wrapping_add(r.delta() as i128),
            1 => i128::MIN.wrapping_sub(a).wrapping_add(r.delta() as i128),
            _ => any_i128(r, &e, 64),
        };
        if r.coin() { (a, b) } else { (b, a) }
    };
    let op = "I64F64::saturating_add";
    run2(op, &e, &e, n, near_sum, all2, |a, b| {
        same(
            op,
            || f(a, b),
            I64F64(a).saturating_add(I64F64(b)).0,
            u64f(a).saturating_add(u64f(b)).to_bits(),
        )
    });
    let op = "I64F64::checked_add";
    run2(op, &e, &e, n, near_sum, all2, |a, b| {
        same(
            op,
            || f(a, b),
            I64F64(a).checked_add(I64F64(b)).map(|v| v.0),
            u64f(a).checked_add(u64f(b)).map(UI64F64::to_bits),
        )
    });

    // Product boundary: |a * b| ≈ 2^191.
    let op = "I64F64::saturating_mul";
    run2(
        op,
        &e,
        &e,
        n,
        |r| {
            if r.coin() {
                near_product_i128(r, 191)
            } else {
                (any_i128(r, &e, 64), any_i128(r, &e, 64))
            }
        },
        |a, b| !upstream_mul128_debug_panics(a, b),
        |a, b| {
            same(
                op,
                || f(a, b),
                I64F64(a).saturating_mul(I64F64(b)).0,
                u64f(a).saturating_mul(u64f(b)).to_bits(),
            )
        },
    );

    // Quotient boundary: (a << 64) / b ≈ ±2^127.
    let near_quot = |r: &mut Rng| {
        let a = any_i128(r, &e, 64);
        if r.coin() {
            return (a, any_i128(r, &e, 64));
        }
        let b = (a >> 63).wrapping_add(r.delta() as i128);
        (a, if r.coin() { b.wrapping_neg() } else { b })
    };
    let op = "I64F64::checked_div";
    run2(op, &e, &e, n, near_quot, all2, |a, b| {
        same(
            op,
            || f(a, b),
            I64F64(a).checked_div(I64F64(b)).map(|v| v.0),
            u64f(a).checked_div(u64f(b)).map(UI64F64::to_bits),
        )
    });
    let op = "I64F64::safe_div";
    run2(op, &e, &e, n, near_quot, all2, |a, b| {
        same(
            op,
            || f(a, b),
            I64F64(a).safe_div(I64F64(b)).0,
            up_safe_div!(u64f(a), u64f(b)),
        )
    });

    let op = "I64F64::cmp";
    run2(
        op,
        &e,
        &e,
        n,
        |r| {
            let a = any_i128(r, &e, 64);
            (
                a,
                if r.coin() {
                    a.wrapping_add(r.delta() as i128)
                } else {
                    any_i128(r, &e, 64)
                },
            )
        },
        all2,
        |a, b| {
            same(
                op,
                || f(a, b),
                I64F64(a).cmp(&I64F64(b)),
                u64f(a).cmp(&u64f(b)),
            )
        },
    );
}

// ---------------------------------------------------------------------------------------
// I96F32 and U96F32

#[test]
fn i96f32() {
    let n = cases();
    let e = edges_i128();
    let e_i64 = edges_i64();
    let e64 = edges_u64();
    let f = |a: i128, b: i128| format!("a={a:#x} b={b:#x}");

    let op = "I96F32::from_i32f32";
    run1(
        op,
        &e_i64,
        n,
        |r| any_i64(r, &e_i64),
        all1,
        |x| {
            same(
                op,
                || format!("x={x:#x}"),
                I96F32::from_i32f32(I32F32(x)).0,
                UI96F32::saturating_from_num(u32f(x)).to_bits(),
            )
        },
    );

    let op = "I96F32::from_u64";
    run1(
        op,
        &e64,
        n,
        |r| any_u64(r, &e64),
        all1,
        |x| {
            same(
                op,
                || format!("x={x:#x}"),
                I96F32::from_u64(x).0,
                UI96F32::saturating_from_num(x).to_bits(),
            )
        },
    );

    let op = "I96F32::saturating_to_u64";
    run1(
        op,
        &e,
        n,
        |r| match r.below(4) {
            0 => r.delta() as i128 * r.below(1 << 40) as i128,
            1 => (1i128 << 96).wrapping_add(r.delta() as i128 * r.below(1 << 40) as i128),
            _ => any_i128(r, &e, 32),
        },
        all1,
        |x| {
            same(
                op,
                || format!("x={x:#x}"),
                I96F32(x).saturating_to_u64(),
                u96f(x).saturating_to_num::<u64>(),
            )
        },
    );

    // Product boundary: |a * b| ≈ 2^159.
    let op = "I96F32::saturating_mul";
    run2(
        op,
        &e,
        &e,
        n,
        |r| {
            if r.coin() {
                near_product_i128(r, 159)
            } else {
                (any_i128(r, &e, 32), any_i128(r, &e, 32))
            }
        },
        |a, b| !upstream_mul128_debug_panics(a, b),
        |a, b| {
            same(
                op,
                || f(a, b),
                I96F32(a).saturating_mul(I96F32(b)).0,
                u96f(a).saturating_mul(u96f(b)).to_bits(),
            )
        },
    );

    let op = "I96F32::cmp";
    run2(
        op,
        &e,
        &e,
        n,
        |r| {
            let a = any_i128(r, &e, 32);
            (
                a,
                if r.coin() {
                    a.wrapping_add(r.delta() as i128)
                } else {
                    any_i128(r, &e, 32)
                },
            )
        },
        all2,
        |a, b| {
            same(
                op,
                || f(a, b),
                I96F32(a).cmp(&I96F32(b)),
                u96f(a).cmp(&u96f(b)),
            )
        },
    );
}

#[test]
fn u96f32() {
    let n = cases();
    let e = edges_u128();
    let e64 = edges_u64();
    let f = |a: u128, b: u128| format!("a={a:#x} b={b:#x}");

    let op = "U96F32::from_u64";
    run1(
        op,
        &e64,
        n,
        |r| any_u64(r, &e64),
        all1,
        |x| {
            same(
                op,
                || format!("x={x:#x}"),
                U96F32::from_u64(x).0,
                UU96F32::saturating_from_num(x).to_bits(),
            )
        },
    );

    // Quotient boundary: (a << 32) / b ≈ 2^128, plus divisors of every bit-length.
    let near_quot = |r: &mut Rng| {
        let a = any_u128(r, &e);
        match r.below(3) {
            0 => (a, (a >> 96).wrapping_add(r.delta() as u128)),
            1 => (a, r.bits_u128() | 1),
            _ => (a, any_u128(r, &e)),
        }
    };
    let op = "U96F32::checked_div";
    run2(op, &e, &e, n, near_quot, all2, |a, b| {
        same(
            op,
            || f(a, b),
            U96F32(a).checked_div(U96F32(b)).map(|v| v.0),
            uu96f(a).checked_div(uu96f(b)).map(UU96F32::to_bits),
        )
    });
    let op = "U96F32::safe_div";
    run2(op, &e, &e, n, near_quot, all2, |a, b| {
        same(
            op,
            || f(a, b),
            U96F32(a).safe_div(U96F32(b)).0,
            up_safe_div!(uu96f(a), uu96f(b)),
        )
    });

    let op = "U96F32::cmp";
    run2(
        op,
        &e,
        &e,
        n,
        |r| {
            let a = any_u128(r, &e);
            (
                a,
                if r.coin() {
                    a.wrapping_add(r.delta() as u128)
                } else {
                    any_u128(r, &e)
                },
            )
        },
        all2,
        |a, b| {
            same(
                op,
                || f(a, b),
                U96F32(a).cmp(&U96F32(b)),
                uu96f(a).cmp(&uu96f(b)),
            )
        },
    );
}
