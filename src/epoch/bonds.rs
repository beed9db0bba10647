//! Steps 9-10: weights for bonds, the bonds EMA (Yuma3 with fixed or liquid alpha, and
//! original Yuma) and dividends.

use std::borrow::Cow;

use crate::epoch::rules::{BondMask, Sigmoid};
use crate::epoch::sparse::{Csr, Scratch, normalize};
use crate::fixed::{I32F32, I64F64, exp_safe_many, safe_exp, safe_ln, u16_proportion_to_fixed};
use crate::model::EpochInput;

/// `interpolate_sparse(weights, clipped, n, ratio)`: ratio 0 and 1 return one side as it
/// is; otherwise `w + ratio * (c - w)` per column, ascending, positive results only.
pub fn weights_for_bonds<'a>(weights: &'a Csr, clipped: &'a Csr, ratio: I32F32) -> Cow<'a, Csr> {
    if ratio == I32F32::ZERO {
        return Cow::Borrowed(weights);
    }
    if ratio == I32F32::ONE {
        return Cow::Borrowed(clipped);
    }
    let mut out = Csr::with_capacity(weights.rows(), weights.cols.len());
    let mut row: Vec<(u16, I32F32)> = Vec::new();
    for i in 0..weights.rows() {
        let (wc, wv) = weights.row(i);
        let (cc, cv) = clipped.row(i);
        // Clipped rows are weight rows with some entries dropped, in the same order.
        let mut ci = 0;
        row.clear();
        for (&c, &w) in wc.iter().zip(wv) {
            let clip = if ci < cc.len() && cc[ci] == c {
                ci += 1;
                cv[ci - 1]
            } else {
                I32F32::ZERO
            };
            let v = w.saturating_add(ratio.saturating_mul(clip.saturating_sub(w)));
            if v > I32F32::ZERO {
                row.push((c, v));
            }
        }
        row.sort_unstable_by_key(|&(c, _)| c);
        for &(c, v) in &row {
            out.push(c, v);
        }
        out.end_row();
    }
    Cow::Owned(out)
}

/// The block bonds are read against: a column registered at or after it holds no bond
/// (the last mechanism step + 1, or `tempo` blocks back when none is recorded).
pub fn last_tempo(input: &EpochInput) -> u64 {
    match input.last_mechanism_step_block {
        0 => input.current_block.saturating_sub(input.tempo as u64),
        lms => lms.saturating_add(1),
    }
}

/// Which stored bonds the epoch reads: the era's mask of bonds to re-registered uids.
pub struct BondKeep<'a> {
    mask: BondMask,
    last_tempo: u64,
    last_update: &'a [u64],
    reg: &'a [u64],
}

impl<'a> BondKeep<'a> {
    /// The mask `input` is read with under `mask`.
    pub fn new(input: &'a EpochInput, mask: BondMask) -> Self {
        Self {
            mask,
            last_tempo: last_tempo(input),
            last_update: &input.last_update,
            reg: &input.block_at_registration,
        }
    }

    /// Whether bond `(i, j)` survives the mask.
    #[inline]
    pub fn keeps(&self, i: usize, j: u16) -> bool {
        // A column uid >= n has no registration block: the chain reads it as 0 (before
        // 320 no such entry reaches the epoch: `Rules::of` refuses it).
        let registered = self.reg.get(j as usize).copied().unwrap_or(0);
        match self.mask {
            BondMask::Registered => self.last_tempo > registered,
            BondMask::Outdated => self.last_update[i] > registered,
        }
    }
}

/// Bonds as read for the epoch: every stored entry (column uid >= n included), values
/// as u16 proportions (Yuma3) or raw u16 (original), minus what the era's mask drops.
pub fn read_bonds(input: &EpochInput, proportion: bool, mask: BondMask) -> Csr {
    let n = input.n as usize;
    let keep = BondKeep::new(input, mask);
    let mut out = Csr::with_capacity(n, input.bonds.nnz());
    for i in 0..n {
        for (j, b) in input.bonds.row_pairs(i) {
            if keep.keeps(i, j) {
                out.push(
                    j,
                    if proportion {
                        u16_proportion_to_fixed(b)
                    } else {
                        I32F32::from_u16(b)
                    },
                );
            }
        }
        out.end_row();
    }
    out
}

/// Fixed EMA alpha `1 - bonds_moving_average / 1e6` (I64F64 quotient narrowed to I32F32).
pub fn fixed_alpha(bonds_moving_average: u64) -> I32F32 {
    let bma = I64F64::saturating_from_u64(bonds_moving_average)
        .safe_div(I64F64::saturating_from_u64(1_000_000));
    I32F32::ONE.saturating_sub(I32F32::saturating_from_i64f64(bma))
}

/// `mat_ema_sparse`: `alpha * new + (1 - alpha) * old` per column `< n`, rows ascending,
/// positive results only.
pub fn ema_fixed(new: &Csr, old: &Csr, alpha: I32F32, n: usize) -> Csr {
    let one_minus = I32F32::ONE.saturating_sub(alpha);
    let mut out = Csr::with_capacity(n, new.cols.len().max(old.cols.len()));
    let mut acc = Scratch::new(n);
    let ascending =
        |c: &[u16]| c.windows(2).all(|w| w[0] < w[1]) && c.last().is_none_or(|&l| (l as usize) < n);
    for i in 0..n {
        let (nc, nv) = new.row(i);
        let (oc, ov) = old.row(i);
        if nc == oc && ascending(nc) {
            // Same sorted columns on both sides (warm bonds): a plain zipped pass.
            for ((&c, &w), &b) in nc.iter().zip(nv).zip(ov) {
                let v = alpha
                    .saturating_mul(w)
                    .saturating_add(one_minus.saturating_mul(b));
                if v > I32F32::ZERO {
                    out.push(c, v);
                }
            }
            out.end_row();
            continue;
        }
        if ascending(nc) && ascending(oc) {
            // Both rows sorted within 0..n: merge them directly, no scratch row or sort.
            let (mut a, mut b) = (0, 0);
            while a < nc.len() || b < oc.len() {
                let take_new = b == oc.len() || (a < nc.len() && nc[a] <= oc[b]);
                let take_old = a == nc.len() || (b < oc.len() && oc[b] <= nc[a]);
                let c = if take_new { nc[a] } else { oc[b] };
                let mut v = I32F32::ZERO;
                if take_new {
                    v = v.saturating_add(alpha.saturating_mul(nv[a]));
                    a += 1;
                }
                if take_old {
                    v = v.saturating_add(one_minus.saturating_mul(ov[b]));
                    b += 1;
                }
                if v > I32F32::ZERO {
                    out.push(c, v);
                }
            }
            out.end_row();
            continue;
        }
        for (&c, &v) in nc.iter().zip(nv) {
            if (c as usize) < n {
                let cell = acc.cell(c);
                *cell = cell.saturating_add(alpha.saturating_mul(v));
            }
        }
        for (&c, &v) in oc.iter().zip(ov) {
            if (c as usize) < n {
                let cell = acc.cell(c);
                *cell = cell.saturating_add(one_minus.saturating_mul(v));
            }
        }
        acc.touched.sort_unstable();
        for &c in &acc.touched {
            let v = acc.vals[c as usize];
            if v > I32F32::ZERO {
                out.push(c, v);
            }
        }
        acc.clear();
        out.end_row();
    }
    out
}

/// Slots of the liquid alpha memo (a power of two).
const MEMO_SLOTS: usize = 4096;

/// Liquid alpha parameters and a memo of `alpha_sigmoid` by its only varying input.
pub struct LiquidAlpha {
    low: I32F32,
    high: I32F32,
    /// The exponent's factor: `steepness / -100` (from 283) or `-steepness` (273).
    slope: I32F32,
    /// Whether the exp clamps its input (from 365) or runs unclamped.
    clamped: bool,
    /// Direct-mapped cache of (combined difference, alpha): repeated differences (zero
    /// above all) skip the 30-term exp; a miss just overwrites its slot.
    memo: Vec<(i64, I32F32)>,
    /// Scratch reused across rows: the misses' positions, exp inputs and exp results.
    misses: Vec<usize>,
    exp_in: Vec<I32F32>,
    exp_out: Vec<I32F32>,
}

impl LiquidAlpha {
    /// Parameters from the input's u16 bounds and i16 steepness, for the era's sigmoid.
    pub fn new(input: &EpochInput, sigmoid: Sigmoid) -> Self {
        let s = input.alpha_sigmoid_steepness as i64;
        Self {
            low: u16_proportion_to_fixed(input.alpha_low),
            high: u16_proportion_to_fixed(input.alpha_high),
            slope: match sigmoid {
                // `-1 * (s * x)`: both products are exact for |s| < 2^16 and |x| <= 1/2,
                // so this equals `(-s) * x`.
                Sigmoid::Steepness => I32F32::saturating_from_int(-s),
                Sigmoid::Percent | Sigmoid::PercentClamped => {
                    I32F32::saturating_from_int(s).saturating_div(I32F32::saturating_from_int(-100))
                }
            },
            clamped: sigmoid == Sigmoid::PercentClamped,
            // Key -1 never occurs: differences are clamped to [0, 1].
            memo: vec![(-1, I32F32::ZERO); MEMO_SLOTS],
            misses: Vec::new(),
            exp_in: Vec::new(),
            exp_out: Vec::new(),
        }
    }

    /// The combined difference `alpha_sigmoid(consensus, weight, bond)` depends on: buying
    /// (weight above consensus) when the weight is at least the bond, else selling.
    pub fn diff(consensus: I32F32, weight: I32F32, bond: I32F32) -> I32F32 {
        let d = if weight >= bond {
            weight.saturating_sub(consensus)
        } else {
            bond.saturating_sub(weight)
        };
        d.min_of(I32F32::ONE).max_of(I32F32::ZERO)
    }

    fn slot(diff: I32F32) -> usize {
        (diff.0 as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) as usize >> 52
    }

    /// `alpha_sigmoid` for each difference in `diffs`, into `out`: memo hits first, then all
    /// the misses' exps together ([`exp_safe_many`] runs them eight lanes at a time).
    pub fn alphas(&mut self, diffs: &[I32F32], out: &mut Vec<I32F32>) {
        out.clear();
        self.misses.clear();
        for (k, &d) in diffs.iter().enumerate() {
            let (key, alpha) = self.memo[Self::slot(d)];
            out.push(alpha);
            if key != d.0 {
                self.misses.push(k);
            }
        }
        self.exp_in.clear();
        self.exp_in.extend(self.misses.iter().map(|&k| {
            self.slope
                .saturating_mul(diffs[k].saturating_sub(I32F32::HALF))
        }));
        self.exp_out.resize(self.exp_in.len(), I32F32::ZERO);
        if self.clamped {
            exp_safe_many(&self.exp_in, &mut self.exp_out);
        } else {
            for (o, &x) in self.exp_out.iter_mut().zip(&self.exp_in) {
                *o = safe_exp(x);
            }
        }
        for (&k, &e) in self.misses.iter().zip(&self.exp_out) {
            let sigmoid = I32F32::ONE.saturating_div(I32F32::ONE.saturating_add(e));
            let alpha = self
                .low
                .saturating_add(sigmoid.saturating_mul(self.high.saturating_sub(self.low)));
            let alpha = alpha.min_of(self.high).max_of(self.low);
            out[k] = alpha;
            self.memo[Self::slot(diffs[k])] = (diffs[k].0, alpha);
        }
    }
}

/// `mat_ema_alpha_sparse` with `compute_liquid_alpha_values_sparse`: only entries of the
/// new row are emitted, in its order. The alpha of an entry reads the weight and bond
/// found by upstream's ascending merge-walk, which sees a row entry only when its uid
/// exceeds every uid before it in the row; the EMA itself uses the true values.
pub fn ema_liquid(
    new: &Csr,
    old: &Csr,
    consensus: &[I32F32],
    la: &mut LiquidAlpha,
    n: usize,
) -> Csr {
    let mut out = Csr::with_capacity(n, new.cols.len());
    let mut bond = Scratch::new(n);
    // Bond values the merge-walk sees; zero elsewhere.
    let mut walk_bond = vec![I32F32::ZERO; n];
    let (mut diffs, mut alphas) = (Vec::new(), Vec::new());
    for i in 0..n {
        let (oc, ov) = old.row(i);
        let mut max_seen: i32 = -1;
        for (&c, &v) in oc.iter().zip(ov) {
            if (c as usize) < n {
                *bond.cell(c) = v;
                if c as i32 > max_seen {
                    walk_bond[c as usize] = v;
                }
            }
            max_seen = max_seen.max(c as i32);
        }
        let (nc, nv) = new.row(i);
        let mut max_seen: i32 = -1;
        diffs.clear();
        for (&c, &w) in nc.iter().zip(nv) {
            let walk_w = if c as i32 > max_seen { w } else { I32F32::ZERO };
            max_seen = max_seen.max(c as i32);
            diffs.push(LiquidAlpha::diff(
                consensus[c as usize],
                walk_w,
                walk_bond[c as usize],
            ));
        }
        la.alphas(&diffs, &mut alphas);
        for ((&c, &w), &alpha) in nc.iter().zip(nv).zip(&alphas) {
            let ci = c as usize;
            let decayed = if bond.set[ci] {
                I32F32::ONE
                    .saturating_sub(alpha)
                    .saturating_mul(bond.vals[ci])
            } else {
                I32F32::ZERO
            };
            let inc = alpha.saturating_mul(w).max_of(I32F32::ZERO);
            let v = decayed.saturating_add(inc).min_of(I32F32::ONE);
            if v > I32F32::ZERO {
                out.push(c, v);
            }
        }
        for &c in &bond.touched {
            walk_bond[c as usize] = I32F32::ZERO;
        }
        bond.clear();
        out.end_row();
    }
    out
}

/// Liquid alpha v1 (before spec 273, original Yuma with LiquidAlphaOn): one alpha per
/// column, `1 / (1 + exp(b - a * consensus_j))` clamped to [low, high], with the logistic
/// `a`, `b` fitted through (consensus quartile, alpha bound) pairs. `None` where upstream
/// falls back to the fixed alpha (liquid alpha off, or no non-zero consensus).
pub fn liquid_alpha_v1(input: &EpochInput, consensus: &[I32F32]) -> Option<Vec<I32F32>> {
    if !input.liquid_alpha || !consensus.iter().any(|&c| c != I32F32::ZERO) {
        return None;
    }
    let high_q = quantile(consensus, 3);
    let low_q = quantile(consensus, 1);
    // Upstream's guard; with a non-zero consensus the high quartile is rarely 0.
    if !(high_q > low_q || high_q != I32F32::ZERO || low_q < I32F32::ZERO) {
        return None;
    }
    let u16_max = I32F32::from_u16(u16::MAX);
    let alpha_low = I32F32::from_u16(input.alpha_low).safe_div(u16_max);
    let alpha_high = I32F32::from_u16(input.alpha_high).safe_div(u16_max);
    let (a, b) = if high_q <= low_q || alpha_low == I32F32::ZERO || alpha_high == I32F32::ZERO {
        (I32F32::ZERO, I32F32::ZERO)
    } else {
        let ln_odds =
            |alpha: I32F32| safe_ln(I32F32::ONE.safe_div(alpha).saturating_sub(I32F32::ONE));
        let a = ln_odds(alpha_high)
            .saturating_sub(ln_odds(alpha_low))
            .safe_div(low_q.saturating_sub(high_q));
        let b = ln_odds(alpha_low).saturating_add(a.saturating_mul(low_q));
        (a, b)
    };
    Some(
        consensus
            .iter()
            .map(|&c| {
                let e = safe_exp(b.saturating_sub(a.saturating_mul(c)));
                let alpha = I32F32::ONE.safe_div(I32F32::ONE.saturating_add(e));
                alpha.min_of(alpha_high).max_of(alpha_low)
            })
            .collect(),
    )
}

/// `quantile(data, q / 4)`: the sorted values interpolated at `q / 4 * (len - 1)`, a
/// position whose fraction is a whole number of quarters (exact in f64 as upstream has it).
pub fn quantile(data: &[I32F32], quarters: usize) -> I32F32 {
    let mut sorted = data.to_vec();
    sorted.sort_unstable();
    let Some(last) = sorted.len().checked_sub(1) else {
        return I32F32::ZERO;
    };
    let pos = quarters * last;
    let (low, frac) = (pos / 4, pos % 4);
    if frac == 0 {
        return sorted[low];
    }
    let weight = I32F32((frac as i64) << 30);
    let (lo, hi) = (sorted[low], sorted[low + 1]);
    lo.saturating_add(hi.saturating_sub(lo).saturating_mul(weight))
}

/// `mat_ema_alpha_vec_sparse`: `alpha_j * new + (1 - alpha_j) * old` per column `j < n`,
/// rows ascending, positive results only.
pub fn ema_columns(new: &Csr, old: &Csr, alpha: &[I32F32], n: usize) -> Csr {
    let mut out = Csr::with_capacity(n, new.cols.len().max(old.cols.len()));
    let mut acc = Scratch::new(n);
    for i in 0..n {
        let (nc, nv) = new.row(i);
        for (&c, &v) in nc.iter().zip(nv) {
            if let Some(&a) = alpha.get(c as usize) {
                *acc.cell(c) = a.saturating_mul(v);
            }
        }
        let (oc, ov) = old.row(i);
        for (&c, &v) in oc.iter().zip(ov) {
            if let Some(&a) = alpha.get(c as usize) {
                let cell = acc.cell(c);
                *cell = cell.saturating_add(I32F32::ONE.saturating_sub(a).saturating_mul(v));
            }
        }
        acc.touched.sort_unstable();
        for &c in &acc.touched {
            let v = acc.vals[c as usize];
            if v > I32F32::ZERO {
                out.push(c, v);
            }
        }
        acc.clear();
        out.end_row();
    }
    out
}

/// Yuma3 dividends: `active_stake_i * sum_j norm_b_ij * incentive_j` (column-normalised
/// bonds, zero products dropped, checked product with the stake), normalised.
pub fn dividends_yuma3(
    ema: &Csr,
    incentive: &[I32F32],
    active_stake: &[I32F32],
    n: usize,
) -> Vec<I32F32> {
    let mut norm = ema.clone();
    norm.col_normalize(n);
    let mut div: Vec<I32F32> = (0..n)
        .map(|i| {
            let (cols, vals) = norm.row(i);
            let total = cols
                .iter()
                .zip(vals)
                .filter_map(|(&c, &v)| incentive.get(c as usize).map(|&x| v.saturating_mul(x)))
                .fold(I32F32::ZERO, |s, p| s.wrapping_add(p));
            total.checked_mul(active_stake[i]).unwrap_or(I32F32::ZERO)
        })
        .collect();
    normalize(&mut div);
    div
}

/// Original Yuma dividends: `sum_j b_ij * incentive_j` (saturating), normalised.
pub fn dividends_original(ema: &Csr, incentive: &[I32F32], n: usize) -> Vec<I32F32> {
    let mut div: Vec<I32F32> = (0..n)
        .map(|i| {
            let (cols, vals) = ema.row(i);
            cols.iter().zip(vals).fold(I32F32::ZERO, |acc, (&c, &v)| {
                let x = incentive.get(c as usize).copied().unwrap_or(I32F32::ZERO);
                acc.saturating_add(x.saturating_mul(v))
            })
        })
        .collect();
    normalize(&mut div);
    div
}

/// `row_hadamard_sparse`: each row scaled by its uid's active stake.
pub fn row_scale(m: Cow<'_, Csr>, scale: &[I32F32]) -> Csr {
    let mut out = m.into_owned();
    for (i, &s) in scale.iter().enumerate() {
        let (a, b) = (out.offsets[i] as usize, out.offsets[i + 1] as usize);
        out.vals[a..b]
            .iter_mut()
            .for_each(|v| *v = v.saturating_mul(s));
    }
    out
}
