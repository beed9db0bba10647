//! Steps 1-4: activity, total stake, stake threshold, normalised stake, validator
//! permits and active stake.

use crate::epoch::rules::Rules;
use crate::epoch::sparse::{normalize, wrapping_sum};
use crate::fixed::{I32F32, I64F64, U96F32};
use crate::model::{EpochInput, InputError};

/// What the stake steps produce.
pub struct Stake {
    /// Per uid: updated within the activity cutoff.
    pub active: Vec<bool>,
    /// Per uid total stake before the threshold (the `stake` output).
    pub total: Vec<I64F64>,
    /// Normalised stake after the threshold, narrowed to I32F32.
    pub stake: Vec<I32F32>,
    /// Permits held before this epoch, the owner's forced on.
    pub permit: Vec<bool>,
    /// Permits after this epoch.
    pub new_permit: Vec<bool>,
    /// Stake of active, permitted uids, normalised.
    pub active_stake: Vec<I32F32>,
}

/// `get_tao_weight` widened to I64F64: `raw / u64::MAX` in U96F32.
fn tao_weight(raw: u64) -> I64F64 {
    I64F64::saturating_from_u96f32(U96F32::from_u64(raw).safe_div(U96F32::from_u64(u64::MAX)))
}

/// Runs steps 1-4 under `rules`. Fails only when the stake sum would overflow I64F64.
pub fn compute(input: &EpochInput, rules: &Rules) -> Result<Stake, InputError> {
    let n = input.n as usize;
    // The owner's permits and threshold exemption come with spec 397.
    let owner = input
        .owner_uid
        .map(usize::from)
        .filter(|_| rules.owner_permit);

    let active: Vec<bool> = input
        .last_update
        .iter()
        .map(|&u| u.saturating_add(input.activity_cutoff) >= input.current_block)
        .collect();

    let tw = tao_weight(input.tao_weight);
    let total: Vec<I64F64> = input
        .alpha_stake
        .iter()
        .zip(&input.tao_stake)
        .map(|(&a, &t)| {
            I64F64::saturating_from_u64(a)
                .saturating_add(I64F64::saturating_from_u64(t).saturating_mul(tw))
        })
        .collect();

    let mut filtered: Vec<I64F64> = total
        .iter()
        .enumerate()
        .map(|(uid, &s)| {
            if owner != Some(uid) && s.saturating_to_u64() < input.stake_threshold {
                I64F64::ZERO
            } else {
                s
            }
        })
        .collect();

    // Upstream sums with a plain (wrapping) add: reject what would wrap instead of guessing.
    let mut sum = I64F64::ZERO;
    for (uid, &s) in filtered.iter().enumerate() {
        sum = sum
            .checked_add(s)
            .ok_or(InputError::StakeOverflow { uid })?;
    }
    if sum != I64F64::ZERO {
        filtered.iter_mut().for_each(|s| *s = s.safe_div(sum));
    }
    let stake: Vec<I32F32> = filtered
        .into_iter()
        .map(I32F32::saturating_from_i64f64)
        .collect();

    let mut permit = input.validator_permit.clone();
    let k = input.max_allowed_validators as usize;
    let mut new_permit = if rules.topk_zero_stake {
        is_topk(&stake, k)
    } else {
        is_topk_nonzero(&stake, k)
    };
    if let Some(o) = owner {
        permit[o] = true;
        new_permit[o] = true;
    }

    let mut active_stake: Vec<I32F32> = (0..n)
        .map(|i| {
            if active[i] && permit[i] {
                stake[i]
            } else {
                I32F32::ZERO
            }
        })
        .collect();
    normalize(&mut active_stake);

    Ok(Stake {
        active,
        total,
        stake,
        permit,
        new_permit,
        active_stake,
    })
}

/// `is_topk` (before spec 273): every entry, minus the `n - k` smallest under a stable
/// ascending sort, zero stakes included.
pub fn is_topk(x: &[I32F32], k: usize) -> Vec<bool> {
    let mut out = vec![true; x.len()];
    drop_smallest(x, k, &mut out);
    out
}

/// Clears the `n - k` smallest entries of `x` (stable ascending sort) in `out`.
fn drop_smallest(x: &[I32F32], k: usize, out: &mut [bool]) {
    let n = x.len();
    if n < k {
        return;
    }
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by_key(|&i| x[i]);
    for &i in idx.iter().take(n - k) {
        out[i] = false;
    }
}

/// `is_topk_nonzero`: non-zero entries, minus the `n - k` smallest under a stable ascending
/// sort (ties go against the lower uid).
pub fn is_topk_nonzero(x: &[I32F32], k: usize) -> Vec<bool> {
    let mut out: Vec<bool> = x.iter().map(|&v| v != I32F32::ZERO).collect();
    drop_smallest(x, k, &mut out);
    out
}

/// `is_zero`: the wrapping sum is zero.
pub fn is_zero(x: &[I32F32]) -> bool {
    wrapping_sum(x) == I32F32::ZERO
}
