//! Steps 9-10 for original Yuma on dense row blocks: the same bonds EMA, dividends and
//! stored bonds as the sparse path in `bonds.rs`, for matrices dense enough that
//! every row with an entry is worth holding whole.
//!
//! Before the EMA an absent entry and a zero one behave alike (they add nothing to a
//! column sum and divide to zero), so the blocks hold absent entries as zeros. The EMA
//! keeps exactly its positive results; those entries stay present through the later
//! normalisations even where they floor to zero, so a presence mask is kept from there.

use crate::epoch::bonds;
use crate::epoch::dense::{self, ColDivisors, Layout};
use crate::epoch::rules::BondMask;
use crate::epoch::sparse::{Csr, normalize};
use crate::fixed::I32F32;
use crate::model::{EpochInput, SparseMatrix};

/// What original Yuma's bond steps produce.
pub struct OriginalBonds {
    /// Dividends per uid, normalised.
    pub dividends: Vec<I32F32>,
    /// The bond rows persisted (empty for uids without a new permit).
    pub stored: SparseMatrix,
}

/// Original Yuma's bonds on dense blocks, or `None` when `layout` and the shape call for
/// the sparse path. `wfb` are the weights for bonds, `alpha` the fixed EMA alpha, `mask`
/// the era's bond read mask.
#[allow(clippy::too_many_arguments)]
pub fn original(
    input: &EpochInput,
    mask: BondMask,
    wfb: &Csr,
    active_stake: &[I32F32],
    incentive: &[I32F32],
    new_permit: &[bool],
    alpha: I32F32,
    layout: Layout,
) -> Option<OriginalBonds> {
    let n = input.n as usize;
    let keep = I32F32::ONE.saturating_sub(alpha);
    let negative = |x: &[I32F32]| x.iter().any(|&v| v < I32F32::ZERO);
    if n == 0
        || alpha < I32F32::ZERO
        || keep < I32F32::ZERO
        || negative(active_stake)
        || negative(incentive)
    {
        return None;
    }
    // Rows with an entry on either side, numbered in uid order.
    let mut slot = vec![u32::MAX; n];
    let mut uids: Vec<usize> = Vec::new();
    for (i, s) in slot.iter_mut().enumerate() {
        let new_len = wfb.offsets[i + 1] - wfb.offsets[i];
        let old_len = input.bonds.offsets[i + 1] - input.bonds.offsets[i];
        if new_len + old_len > 0 {
            *s = uids.len() as u32;
            uids.push(i);
        }
    }
    let cells = uids.len() * n;
    if !layout.dense(wfb.vals.len() + input.bonds.vals.len(), cells) {
        return None;
    }

    // Old bonds (raw u16 as I32F32, minus what the era's mask drops), column-normalised.
    let mask = bonds::BondKeep::new(input, mask);
    let mut old = dense::Block::zeroed(cells);
    for (r, &i) in uids.iter().enumerate() {
        let row = &mut old[r * n..(r + 1) * n];
        for (j, b) in input.bonds.row_pairs(i) {
            // Columns >= n leave the sparse EMA untouched, so they are simply not held.
            if let Some(cell) = row.get_mut(j as usize)
                && mask.keeps(i, j)
            {
                *cell = (b as u64) << 32;
            }
        }
    }
    normalize_cols(&mut old, n);

    // Weights for bonds scaled by each row's active stake, column-normalised.
    let mut new = dense::Block::zeroed(cells);
    for (r, &i) in uids.iter().enumerate() {
        let row = &mut new[r * n..(r + 1) * n];
        let (cols, vals) = wfb.row(i);
        for (&c, &v) in cols.iter().zip(vals) {
            // Cells are non-negative; anything else stays with the sparse path.
            if v < I32F32::ZERO || c as usize >= n {
                return None;
            }
            row[c as usize] = v.0 as u64;
        }
    }
    let scale: Vec<u64> = uids.iter().map(|&i| active_stake[i].0 as u64).collect();
    dense::scale_rows(&mut new, &scale);
    normalize_cols(&mut new, n);

    // The EMA, its column normalisation, dividends, then the max-upscale.
    let mut present = vec![false; cells];
    dense::ema(&mut new, &old, alpha.0 as u64, keep.0 as u64, &mut present);
    let ema = &mut *new;
    normalize_cols(ema, n);
    let inc: Vec<u64> = incentive.iter().map(|x| x.0 as u64).collect();
    let mut dividends = vec![I32F32::ZERO; n];
    for (&i, d) in uids.iter().zip(dense::dot_rows(ema, &inc)) {
        dividends[i] = I32F32(d as i64);
    }
    normalize(&mut dividends);
    let maxes = dense::col_maxes(ema, n);
    dense::div_cols(ema, &ColDivisors::new(&maxes));

    Some(OriginalBonds {
        dividends,
        stored: stored(ema, &present, &slot, new_permit, n),
    })
}

/// `inplace_col_normalize_sparse` on a block.
fn normalize_cols(vals: &mut [u64], n: usize) {
    let sums = dense::col_sums(vals, n);
    dense::div_cols(vals, &ColDivisors::new(&sums));
}

/// The stored bond rows: present EMA entries as u16 proportions, for uids with a new
/// permit.
fn stored(
    ema: &[u64],
    present: &[bool],
    slot: &[u32],
    new_permit: &[bool],
    n: usize,
) -> SparseMatrix {
    let mut out = SparseMatrix {
        offsets: Vec::with_capacity(n + 1),
        cols: Vec::with_capacity(ema.len()),
        vals: Vec::with_capacity(ema.len()),
    };
    out.offsets.push(0);
    let mut row_u16 = vec![0u16; n];
    for (i, &permit) in new_permit.iter().enumerate().take(n) {
        let r = slot[i];
        if permit && r != u32::MAX {
            let cells = r as usize * n..(r as usize + 1) * n;
            dense::to_u16(&ema[cells.clone()], &mut row_u16);
            // Branch-free compaction: write every cell, advance past present ones.
            let start = out.cols.len();
            out.cols.resize(start + n, 0);
            out.vals.resize(start + n, 0);
            let mut len = start;
            for (j, (&p, &v)) in present[cells].iter().zip(&row_u16).enumerate() {
                out.cols[len] = j as u16;
                out.vals[len] = v;
                len += p as usize;
            }
            out.cols.truncate(len);
            out.vals.truncate(len);
        }
        out.offsets.push(out.cols.len() as u32);
    }
    out
}
