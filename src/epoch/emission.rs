//! Step 11: server, validator and combined emission in rao.

use crate::epoch::sparse::{normalize, normalize_using_sum, wrapping_sum};
use crate::epoch::stake::is_zero;
use crate::fixed::{I32F32, I96F32};

/// Emission per uid in rao.
pub struct Emission {
    /// Combined (incentive + dividend) emission.
    pub combined: Vec<u64>,
    /// Server share.
    pub server: Vec<u64>,
    /// Validator share.
    pub validator: Vec<u64>,
}

/// Splits `rao` by incentive and dividend, falling back to active stake (or stake) for
/// validators when both are all zero.
pub fn compute(
    incentive: &[I32F32],
    dividends: &[I32F32],
    active_stake: &[I32F32],
    stake: &[I32F32],
    rao: u64,
) -> Emission {
    let combined: Vec<I32F32> = incentive
        .iter()
        .zip(dividends)
        .map(|(&i, &d)| i.saturating_add(d))
        .collect();
    let sum = wrapping_sum(&combined);
    let mut server = incentive.to_vec();
    let mut validator = dividends.to_vec();
    let mut combined_norm = combined;
    normalize_using_sum(&mut server, sum);
    normalize_using_sum(&mut validator, sum);
    normalize(&mut combined_norm);
    if sum == I32F32::ZERO {
        let fallback = if is_zero(active_stake) {
            stake
        } else {
            active_stake
        };
        validator.copy_from_slice(fallback);
        combined_norm.copy_from_slice(fallback);
    }
    let rao = I96F32::from_u64(rao);
    let to_rao = |x: &[I32F32]| -> Vec<u64> {
        x.iter()
            .map(|&v| {
                I96F32::from_i32f32(v)
                    .saturating_mul(rao)
                    .saturating_to_u64()
            })
            .collect()
    };
    Emission {
        combined: to_rao(&combined_norm),
        server: to_rao(&server),
        validator: to_rao(&validator),
    }
}
