//! Step 5: weights as the chain reads them (entries of column uids >= n dropped, storage
//! order kept), masked and row-normalised.

use crate::epoch::dense;
use crate::epoch::sparse::Csr;
use crate::fixed::I32F32;
use crate::model::EpochInput;

/// Reads, masks and row-normalises the weights.
///
/// Dropped: rows of uids without a permit; the diagonal except the owner's own
/// self-weight; outdated entries (`last_update_i <= block_at_registration_j`); with
/// commit-reveal, entries registered after the row's earliest unexpired commit.
pub fn masked_weights(input: &EpochInput, permit: &[bool]) -> Csr {
    let n = input.n as usize;
    // Validated to hold n entries; a column uid >= n reads as never registered (dropped).
    let reg = &input.block_at_registration[..n];
    let nnz = input.weights.nnz();
    let mut out = Csr::with_capacity(n, nnz);
    // Branch-free compaction: write every entry, advance past kept ones.
    out.cols.resize(nnz, 0);
    out.vals.resize(nnz, I32F32::ZERO);
    let mut len = 0;
    for (i, &permitted) in permit.iter().enumerate().take(n) {
        if permitted {
            // `last_update > reg && commit >= reg` as one bound: `reg < limit`. No
            // unexpired commit reads as u64::MAX, which masks nothing.
            let commit = match input.commit_block[i] {
                Some(c) if input.commit_reveal => c,
                _ => u64::MAX,
            };
            let limit = input.last_update[i].min(commit.saturating_add(1));
            let self_ok = input.owner_uid == Some(i as u16);
            let start = len;
            // Wrapping row sum, accumulated while reading (`inplace_row_normalize_sparse`).
            let mut sum = I32F32::ZERO;
            let (cols, vals) = input.weights.row(i);
            for (&j, &w) in cols.iter().zip(vals) {
                let ju = j as usize;
                let r = reg.get(ju).copied().unwrap_or(u64::MAX);
                let keep = r < limit && (ju != i || self_ok);
                let v = I32F32::from_u16(w);
                out.cols[len] = j;
                out.vals[len] = v;
                sum = sum.wrapping_add(if keep { v } else { I32F32::ZERO });
                len += keep as usize;
            }
            if sum > I32F32::ZERO {
                dense::div_by(
                    bytemuck::cast_slice_mut(&mut out.vals[start..len]),
                    sum.0 as u64,
                );
            }
        }
        out.offsets.push(len as u32);
    }
    out.cols.truncate(len);
    out.vals.truncate(len);
    out
}
