//! Step 5: weights as the chain reads them (entries of column uids >= n dropped, storage
//! order kept), masked and row-normalised.

use crate::epoch::sparse::Csr;
use crate::fixed::{I32F32, I32F32Divisor};
use crate::model::EpochInput;

/// Reads, masks and row-normalises the weights.
///
/// Dropped: rows of uids without a permit; the diagonal except the owner's own
/// self-weight; outdated entries (`last_update_i <= block_at_registration_j`); with
/// commit-reveal, entries registered after the row's earliest unexpired commit.
pub fn masked_weights(input: &EpochInput, permit: &[bool]) -> Csr {
    let n = input.n as usize;
    // Validated to hold n entries; `get` on it also drops column uids >= n.
    let reg = &input.block_at_registration[..n];
    let mut out = Csr::with_capacity(n, input.weights.nnz());
    for (i, &permitted) in permit.iter().enumerate().take(n) {
        if permitted {
            let updated = input.last_update[i];
            // No unexpired commit reads as u64::MAX: it masks nothing.
            let commit = if input.commit_reveal {
                input.commit_block[i].unwrap_or(u64::MAX)
            } else {
                u64::MAX
            };
            let start = out.vals.len();
            // Wrapping row sum, accumulated while reading (`inplace_row_normalize_sparse`).
            let mut sum = I32F32::ZERO;
            for (j, w) in input.weights.row_pairs(i) {
                let ju = j as usize;
                let Some(&r) = reg.get(ju) else { continue };
                if updated > r && commit >= r && (ju != i || input.owner_uid == Some(j)) {
                    let v = I32F32::from_u16(w);
                    sum = sum.wrapping_add(v);
                    out.push(j, v);
                }
            }
            if sum > I32F32::ZERO {
                let d = I32F32Divisor::new(sum);
                out.vals[start..]
                    .iter_mut()
                    .for_each(|v| *v = d.safe_div(*v));
            }
        }
        out.end_row();
    }
    out
}
