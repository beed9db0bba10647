//! Steps 6-8: stake-weighted median consensus per column, clipping, validator trust and
//! incentive.

use crate::epoch::dense::Layout;
use crate::epoch::sort_network;
use crate::epoch::sparse::{Csr, normalize, wrapping_sum};
use crate::fixed::I32F32;

/// `weighted_median_col_sparse` over `n` columns.
///
/// Upstream runs a mid-pivot partition search; it returns the smallest score `v` whose
/// cumulative stake over scores `<= v` exceeds `minority`, or the largest score when none
/// does. All partial sums are of normalised stake, so they are exact, and a sort per
/// column gives the same answer. Rows without an entry in a column score 0 there.
pub fn weighted_median(
    active_stake: &[I32F32],
    weights: &Csr,
    n: usize,
    kappa: I32F32,
    layout: Layout,
) -> Vec<I32F32> {
    // Positive-stake rows only, re-normalised.
    let rows: Vec<usize> = (0..active_stake.len())
        .filter(|&i| active_stake[i] > I32F32::ZERO)
        .collect();
    let mut use_stake: Vec<I32F32> = rows.iter().map(|&i| active_stake[i]).collect();
    normalize(&mut use_stake);
    let stake_sum = wrapping_sum(&use_stake);
    let minority = stake_sum.saturating_sub(kappa);
    let k = rows.len();
    if k == 0 {
        return vec![I32F32::ZERO; n];
    }

    let staked = Staked {
        rows: &rows,
        stake: &use_stake,
        stake_sum,
        minority,
    };
    // Normalised weights fit 33 bits; only raw rows whose wrapped sum was not positive
    // can exceed 47 and need the wide cells.
    if weights.vals.iter().all(|v| v.0 < 1 << 47) {
        let entries: usize = rows.iter().map(|&i| weights.row(i).0.len()).sum();
        if k <= sort_network::MAX_LEN && layout.dense(entries, k * n) {
            return medians_dense(weights, &staked, n);
        }
        medians::<u64>(weights, &staked, n)
    } else {
        medians::<u128>(weights, &staked, n)
    }
}

/// A (score, staked-row rank) pair packed as `score << 16 | rank`, so that sorting plain
/// integers orders by score. Scores are never negative (u16 weights over a positive sum).
trait Cell: Copy + Ord + Default {
    fn pack(score: I32F32, rank: usize) -> Self;
    fn score(self) -> I32F32;
    fn rank(self) -> usize;

    /// Sorts each column `cells[starts[j]..starts[j + 1]]`.
    fn sort_columns(cells: &mut [Self], starts: &[u32]) {
        for w in starts.windows(2) {
            cells[w[0] as usize..w[1] as usize].sort_unstable();
        }
    }
}

impl Cell for u64 {
    fn pack(score: I32F32, rank: usize) -> Self {
        ((score.0 as u64) << 16) | rank as u64
    }
    fn score(self) -> I32F32 {
        I32F32((self >> 16) as i64)
    }
    fn rank(self) -> usize {
        (self & 0xFFFF) as usize
    }

    fn sort_columns(cells: &mut [Self], starts: &[u32]) {
        // Scores below 2^47 keep cells below i64::MAX, as the networks need.
        sort_network::sort_columns(cells, starts);
    }
}

impl Cell for u128 {
    fn pack(score: I32F32, rank: usize) -> Self {
        ((score.0 as u128) << 16) | rank as u128
    }
    fn score(self) -> I32F32 {
        I32F32((self >> 16) as i64)
    }
    fn rank(self) -> usize {
        (self & 0xFFFF) as usize
    }
}

/// What every column's median reads besides its cells.
struct Staked<'a> {
    /// The staked rows, in uid order; a cell's rank indexes them.
    rows: &'a [usize],
    /// Their stake, re-normalised.
    stake: &'a [I32F32],
    /// The wrapping sum of `stake`.
    stake_sum: I32F32,
    /// The stake a median's lower part must exceed.
    minority: I32F32,
}

/// Transposes the staked rows into per-column cells, sorts the columns, takes medians.
fn medians<C: Cell>(weights: &Csr, staked: &Staked<'_>, n: usize) -> Vec<I32F32> {
    let rows = staked.rows;
    let mut count = vec![0u32; n + 1];
    for &i in rows {
        for &c in weights.row(i).0 {
            count[c as usize + 1] += 1;
        }
    }
    for j in 0..n {
        count[j + 1] += count[j];
    }
    let mut fill = count.clone();
    let mut cells = vec![C::default(); count[n] as usize];
    for (r, &i) in rows.iter().enumerate() {
        let (cols, vals) = weights.row(i);
        for (&c, &v) in cols.iter().zip(vals) {
            let slot = &mut fill[c as usize];
            cells[*slot as usize] = C::pack(v, r);
            *slot += 1;
        }
    }
    C::sort_columns(&mut cells, &count);
    (0..n)
        .map(|j| {
            let col = &cells[count[j] as usize..count[j + 1] as usize];
            column_median(col, staked)
        })
        .collect()
}

/// Medians of weights that fill at least half of their staked rows: every staked row
/// holds a cell in every column (score 0 where it has no entry), placed straight into the
/// sorting network's lane blocks, eight columns to a block.
fn medians_dense(weights: &Csr, staked: &Staked<'_>, n: usize) -> Vec<I32F32> {
    const L: usize = sort_network::LANES;
    let rows = staked.rows;
    let k = rows.len();
    let height = k.next_power_of_two();
    let groups = n.div_ceil(L);
    // Row r of every block starts as (0, r); rows past k pad with the largest value.
    let mut rows_mem = vec![AlignedRow([i64::MAX; L]); groups * height];
    let blocks: &mut [[i64; L]] = bytemuck::cast_slice_mut(&mut rows_mem);
    for block in blocks.chunks_exact_mut(height) {
        for (r, row) in block.iter_mut().enumerate().take(k) {
            *row = [r as i64; L];
        }
    }
    for (r, &i) in rows.iter().enumerate() {
        let (cols, vals) = weights.row(i);
        for (&c, &v) in cols.iter().zip(vals) {
            let c = c as usize;
            if c < n {
                blocks[(c / L) * height + r][c % L] = u64::pack(v, r) as i64;
            }
        }
    }
    sort_network::sort_blocks(blocks, height);
    (0..n)
        .map(|j| {
            let block = &blocks[(j / L) * height..][..k];
            let cell = |t: usize| block[t][j % L] as u64;
            lane_median(cell, staked)
        })
        .collect()
}

/// One block row on a cache line of its own, so each vector load touches one line.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
struct AlignedRow([i64; sort_network::LANES]);

/// [`column_median`] for a column of all `k` staked rows, sorted: walks down from the
/// top score while the stake at or below each score still exceeds `minority`, so it
/// stops near the median instead of summing the whole column first.
fn lane_median(cell: impl Fn(usize) -> u64, staked: &Staked<'_>) -> I32F32 {
    let (stake, stake_sum, minority) = (staked.stake, staked.stake_sum, staked.minority);
    let k = staked.rows.len();
    // Stake of cells above the current score; the stake at or below it is the rest.
    let mut above = I32F32::ZERO;
    let mut answer = cell(k - 1).score();
    let mut t = k;
    while t > 0 {
        let v = cell(t - 1).score();
        if stake_sum.saturating_sub(above) <= minority {
            break;
        }
        answer = v;
        if v <= I32F32::ZERO {
            break;
        }
        while t > 0 && cell(t - 1).score() == v {
            above = above.saturating_add(stake[cell(t - 1).rank()]);
            t -= 1;
        }
    }
    answer
}

/// Median of one column given its cells sorted by score; the other `k - len` staked rows
/// score 0.
fn column_median<C: Cell>(col: &[C], staked: &Staked<'_>) -> I32F32 {
    let (stake, stake_sum, minority) = (staked.stake, staked.stake_sum, staked.minority);
    let k = staked.rows.len();
    // Stake of rows scoring exactly 0 or nothing: everything but the positive entries.
    let first_pos = col.partition_point(|&c| c.score() <= I32F32::ZERO);
    let pos = &col[first_pos..];
    let pos_stake = pos
        .iter()
        .fold(I32F32::ZERO, |s, &c| s.saturating_add(stake[c.rank()]));
    let mut cum = stake_sum.saturating_sub(pos_stake);
    if k > pos.len() && cum > minority {
        return I32F32::ZERO;
    }
    let mut idx = 0;
    while idx < pos.len() {
        let v = pos[idx].score();
        while idx < pos.len() && pos[idx].score() == v {
            cum = cum.saturating_add(stake[pos[idx].rank()]);
            idx += 1;
        }
        if cum > minority {
            return v;
        }
    }
    pos.last().map_or(I32F32::ZERO, |&c| c.score())
}

/// The clipped weights with what is read off them.
pub struct Clipped {
    /// `col_clip_sparse` of the weights.
    pub weights: Csr,
    /// `row_sum_sparse` of the clipped weights: validator trust.
    pub trust: Vec<I32F32>,
    /// `matmul_sparse` of the clipped weights by active stake, normalised: incentive.
    pub incentive: Vec<I32F32>,
    /// The same before normalising: the ranks trust divides (before spec 365).
    pub ranks: Vec<I32F32>,
}

/// Clips the weights and reads trust and incentive off them in the same pass.
///
/// `col_clip_sparse`: entries above their column's consensus take it, or vanish when it is
/// not positive; the rest (zeros included) stay. Trust is each clipped row's wrapping sum;
/// incentive `rank_j = sum_i w_ij * s_i` (saturating), then `inplace_normalize`.
pub fn clip(weights: &Csr, consensus: &[I32F32], active_stake: &[I32F32], n: usize) -> Clipped {
    let nnz = weights.cols.len();
    let mut out = Csr::with_capacity(weights.rows(), nnz);
    // Branch-free compaction: write every entry, advance only over kept ones (whether an
    // entry sits above its column's consensus is a coin flip the predictor cannot learn).
    out.cols.resize(nnz, 0);
    out.vals.resize(nnz, I32F32::ZERO);
    let mut trust = Vec::with_capacity(weights.rows());
    let mut ranks = vec![I32F32::ZERO; n];
    let mut len = 0;
    for i in 0..weights.rows() {
        let s = active_stake.get(i).copied().unwrap_or(I32F32::ZERO);
        let (cols, vals) = weights.row(i);
        let mut sum = I32F32::ZERO;
        for (&c, &v) in cols.iter().zip(vals) {
            let th = consensus[c as usize];
            let above = th < v;
            let clipped = if above { th } else { v };
            let keep = !above || th > I32F32::ZERO;
            out.cols[len] = c;
            out.vals[len] = clipped;
            let kept = if keep { clipped } else { I32F32::ZERO };
            sum = sum.wrapping_add(kept);
            let r = &mut ranks[c as usize];
            *r = r.saturating_add(s.saturating_mul(kept));
            len += keep as usize;
        }
        trust.push(sum);
        out.offsets.push(len as u32);
    }
    out.cols.truncate(len);
    out.vals.truncate(len);
    let raw = ranks.clone();
    normalize(&mut ranks);
    Clipped {
        weights: out,
        trust,
        incentive: ranks,
        ranks: raw,
    }
}

/// Trust (before spec 365): `vecdiv` of the clipped ranks by the unclipped ones
/// (`matmul_sparse` of the masked weights by active stake), 0 where that is 0.
pub fn trust(weights: &Csr, active_stake: &[I32F32], ranks: &[I32F32], n: usize) -> Vec<I32F32> {
    let mut pre = vec![I32F32::ZERO; n];
    for (i, &s) in active_stake.iter().enumerate().take(weights.rows()) {
        let (cols, vals) = weights.row(i);
        for (&c, &v) in cols.iter().zip(vals) {
            let p = &mut pre[c as usize];
            *p = p.saturating_add(s.saturating_mul(v));
        }
    }
    ranks
        .iter()
        .zip(&pre)
        .map(|(&r, &p)| r.safe_div(p))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dense walk-down and the sparse column scan agree on small exact columns, where
    /// partial stake sums hit `minority` exactly (the `>` against `>=` boundary) and
    /// scores tie.
    #[test]
    fn lane_median_matches_column_median_at_exact_boundaries() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for _ in 0..20_000 {
            let k = 1 + next(12) as usize;
            let stake: Vec<I32F32> = (0..k).map(|_| I32F32(next(4) as i64)).collect();
            let stake_sum = stake.iter().fold(I32F32::ZERO, |s, &v| s.wrapping_add(v));
            let minority = I32F32(next(stake_sum.0 as u64 + 3) as i64 - 1);
            // Score 0 means no entry half the time and an explicit zero otherwise.
            let scores: Vec<(i64, bool)> = (0..k).map(|_| (next(4) as i64, next(2) == 0)).collect();
            let mut sparse: Vec<u64> = (0..k)
                .filter(|&r| scores[r].0 > 0 || scores[r].1)
                .map(|r| u64::pack(I32F32(scores[r].0), r))
                .collect();
            let mut dense: Vec<u64> = (0..k).map(|r| u64::pack(I32F32(scores[r].0), r)).collect();
            sparse.sort_unstable();
            dense.sort_unstable();
            let rows: Vec<usize> = (0..k).collect();
            let staked = Staked {
                rows: &rows,
                stake: &stake,
                stake_sum,
                minority,
            };
            let want = column_median(&sparse, &staked);
            let got = lane_median(|t| dense[t], &staked);
            assert_eq!(
                got, want,
                "stake {stake:?} scores {scores:?} minority {minority:?}"
            );
        }
    }
}
