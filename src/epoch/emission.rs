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
    /// Normalised combined emission (stake where all is zero): the pruning scores' input.
    pub combined_norm: Vec<I32F32>,
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
    let to_rao = |x: &[I32F32]| -> Vec<u64> { x.iter().map(|&v| in_rao(v, rao)).collect() };
    Emission {
        combined: to_rao(&combined_norm),
        server: to_rao(&server),
        validator: to_rao(&validator),
        combined_norm,
    }
}

/// A normalised share of `rao`, truncated: `I96F32(share) * I96F32(rao)` as u64
/// (negative gives 0, overflow saturates). With `rao = 2^32` it returns the share's raw
/// bits, which is how the emission of an epoch that already ran is inferred.
pub fn in_rao(share: I32F32, rao: u64) -> u64 {
    I96F32::from_i32f32(share)
        .saturating_mul(I96F32::from_u64(rao))
        .saturating_to_u64()
}

/// `vec_max_upscale_to_u16` (pruning scores before spec 365): scaled so the maximum reads
/// 65535, rounded; all-zero input as plain u16 proportions.
pub fn max_upscale_to_u16(x: &[I32F32]) -> Vec<u16> {
    let u16_max = I32F32::from_u16(u16::MAX);
    let Some(&max) = x.iter().max() else {
        return Vec::new();
    };
    if max == I32F32::ZERO {
        return x
            .iter()
            .map(|e| e.saturating_mul(u16_max).saturating_to_u16())
            .collect();
    }
    if max > I32F32::from_u16(32768) {
        let scale = u16_max.safe_div(max);
        return x
            .iter()
            .map(|e| e.saturating_mul(scale).round().saturating_to_u16())
            .collect();
    }
    x.iter()
        .map(|e| {
            e.saturating_mul(u16_max)
                .safe_div(max)
                .round()
                .saturating_to_u16()
        })
        .collect()
}
