//! Steps 6-8: stake-weighted median consensus per column, clipping, validator trust and
//! incentive.

use crate::epoch::sparse::{Csr, normalize, wrapping_sum};
use crate::fixed::I32F32;

/// `weighted_median_col_sparse` over `n` columns.
///
/// Upstream runs a mid-pivot partition search; it returns the smallest score `v` whose
/// cumulative stake over scores `<= v` exceeds `minority`, or the largest score when none
/// does. All partial sums are of normalised stake, so they are exact, and a sort per
/// column gives the same answer. Rows without an entry in a column score 0 there.
pub fn weighted_median(active_stake: &[I32F32], weights: &Csr, n: usize, kappa: I32F32) -> Vec<I32F32> {
    // Positive-stake rows only, re-normalised.
    let rows: Vec<usize> = (0..active_stake.len()).filter(|&i| active_stake[i] > I32F32::ZERO).collect();
    let mut use_stake: Vec<I32F32> = rows.iter().map(|&i| active_stake[i]).collect();
    normalize(&mut use_stake);
    let stake_sum = wrapping_sum(&use_stake);
    let minority = stake_sum.saturating_sub(kappa);
    let k = rows.len();
    if k == 0 {
        return vec![I32F32::ZERO; n];
    }

    // Transpose the staked rows' entries into per-column (score, stake) lists.
    let mut count = vec![0u32; n + 1];
    for &i in &rows {
        for &c in weights.row(i).0 {
            count[c as usize + 1] += 1;
        }
    }
    for j in 0..n {
        count[j + 1] += count[j];
    }
    let mut fill = count.clone();
    let mut cells = vec![(I32F32::ZERO, I32F32::ZERO); count[n] as usize];
    for (r, &i) in rows.iter().enumerate() {
        let (cols, vals) = weights.row(i);
        for (&c, &v) in cols.iter().zip(vals) {
            let slot = &mut fill[c as usize];
            cells[*slot as usize] = (v, use_stake[r]);
            *slot += 1;
        }
    }

    let mut median = Vec::with_capacity(n);
    for j in 0..n {
        let col = &mut cells[count[j] as usize..count[j + 1] as usize];
        col.sort_unstable_by_key(|&(v, _)| v);
        median.push(column_median(col, k, stake_sum, minority));
    }
    median
}

/// Median of one column given its explicit entries sorted by score; the other `k - len`
/// staked rows score 0.
fn column_median(col: &[(I32F32, I32F32)], k: usize, stake_sum: I32F32, minority: I32F32) -> I32F32 {
    // Stake of rows scoring exactly 0 or nothing: everything but the positive entries.
    let first_pos = col.partition_point(|&(v, _)| v <= I32F32::ZERO);
    let pos_stake = col[first_pos..].iter().fold(I32F32::ZERO, |s, &(_, w)| s.saturating_add(w));
    let mut cum = stake_sum.saturating_sub(pos_stake);
    let zero_rows = k - (col.len() - first_pos);
    if zero_rows > 0 && cum > minority {
        return I32F32::ZERO;
    }
    let pos = &col[first_pos..];
    let mut idx = 0;
    while idx < pos.len() {
        let v = pos[idx].0;
        while idx < pos.len() && pos[idx].0 == v {
            cum = cum.saturating_add(pos[idx].1);
            idx += 1;
        }
        if cum > minority {
            return v;
        }
    }
    pos.last().map_or(I32F32::ZERO, |&(v, _)| v)
}

/// `col_clip_sparse`: entries above their column's consensus take it, or vanish when it
/// is not positive; the rest (zeros included) stay.
pub fn clip(weights: &Csr, consensus: &[I32F32]) -> Csr {
    let mut out = Csr::with_capacity(weights.rows(), weights.cols.len());
    for i in 0..weights.rows() {
        let (cols, vals) = weights.row(i);
        for (&c, &v) in cols.iter().zip(vals) {
            let th = consensus[c as usize];
            if th < v {
                if th > I32F32::ZERO {
                    out.push(c, th);
                }
            } else {
                out.push(c, v);
            }
        }
        out.end_row();
    }
    out
}

/// `matmul_sparse` then `inplace_normalize`: `rank_j = sum_i w_ij * s_i`, normalised.
pub fn incentive(clipped: &Csr, active_stake: &[I32F32], n: usize) -> Vec<I32F32> {
    let mut ranks = vec![I32F32::ZERO; n];
    for (i, &s) in active_stake.iter().enumerate() {
        let (cols, vals) = clipped.row(i);
        for (&c, &v) in cols.iter().zip(vals) {
            let r = &mut ranks[c as usize];
            *r = r.saturating_add(s.saturating_mul(v));
        }
    }
    normalize(&mut ranks);
    ranks
}
