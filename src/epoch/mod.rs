//! The epoch on the CPU: `epoch_mechanism` step by step (../shared/design/EPOCH.md),
//! one file per stage, over CSR rows, bit-identical to the chain.

pub mod bonds;
pub mod bonds_dense;
pub mod consensus;
pub mod dense;
pub mod emission;
pub mod mechanisms;
pub mod sort_network;
pub mod sparse;
pub mod stake;
pub mod weights;

use rayon::prelude::*;

use crate::fixed::{I32F32, fixed_proportion_to_u16};
use crate::model::{EpochInput, EpochOutput, InputError, SparseMatrix};
pub use dense::Layout;
use sparse::Csr;

/// Runs one epoch. Validates the input first; never panics on any input.
pub fn run_epoch(input: &EpochInput) -> Result<EpochOutput, InputError> {
    run_epoch_with(input, Layout::Auto)
}

/// [`run_epoch`] with the caller choosing where dense blocks may serve (the median and
/// original Yuma's bonds); every layout gives the same outputs.
pub fn run_epoch_with(input: &EpochInput, layout: Layout) -> Result<EpochOutput, InputError> {
    input.validate()?;
    let n = input.n as usize;

    let st = stake::compute(input)?;
    let w = weights::masked_weights(input, &st.permit);

    let kappa = I32F32::from_u16(input.kappa).safe_div(I32F32::from_u16(u16::MAX));
    let consensus = consensus::weighted_median(&st.active_stake, &w, n, kappa, layout);
    let consensus::Clipped {
        weights: clipped,
        trust,
        incentive,
    } = consensus::clip(&w, &consensus, &st.active_stake, n);

    let penalty = I32F32::from_u16(input.bonds_penalty).safe_div(I32F32::from_u16(u16::MAX));
    let wfb = bonds::weights_for_bonds(&w, &clipped, penalty);

    let (dividends, bonds) = if input.yuma3 {
        let old = bonds::read_bonds(input, true);
        let liquid = input.liquid_alpha && consensus.iter().any(|&c| c != I32F32::ZERO);
        let ema = if liquid {
            let mut la = bonds::LiquidAlpha::new(input);
            bonds::ema_liquid(&wfb, &old, &consensus, &mut la, n)
        } else {
            bonds::ema_fixed(
                &wfb,
                &old,
                bonds::fixed_alpha(input.bonds_moving_average),
                n,
            )
        };
        let div = bonds::dividends_yuma3(&ema, &incentive, &st.active_stake, n);
        (div, stored_bonds(&ema, &st.new_permit))
    } else {
        let alpha = bonds::fixed_alpha(input.bonds_moving_average);
        let dense = bonds_dense::original(
            input,
            &wfb,
            &st.active_stake,
            &incentive,
            &st.new_permit,
            alpha,
            layout,
        );
        match dense {
            Some(b) => (b.dividends, b.stored),
            None => {
                let mut old = bonds::read_bonds(input, false);
                old.col_normalize(n);
                let mut delta = bonds::row_scale(wfb, &st.active_stake);
                delta.col_normalize(n);
                let mut ema = bonds::ema_fixed(&delta, &old, alpha, n);
                ema.col_normalize(n);
                let div = bonds::dividends_original(&ema, &incentive, n);
                ema.col_max_upscale(n);
                (div, stored_bonds(&ema, &st.new_permit))
            }
        }
    };

    let em = emission::compute(
        &incentive,
        &dividends,
        &st.active_stake,
        &st.stake,
        input.emission,
    );

    let to_u16 =
        |x: &[I32F32]| -> Vec<u16> { x.iter().map(|&v| fixed_proportion_to_u16(v)).collect() };
    Ok(EpochOutput {
        active: st.active,
        stake: st.total.iter().map(|s| s.saturating_to_u64()).collect(),
        stake_weight: to_u16(&st.stake),
        consensus: to_u16(&consensus),
        incentive: to_u16(&incentive),
        dividend: to_u16(&dividends),
        validator_trust: to_u16(&trust),
        bonds,
        new_validator_permit: st.new_permit,
        emission: em.combined,
        server_emission: em.server,
        validator_emission: em.validator,
    })
}

/// Runs many epochs in parallel on the rayon pool; results in input order.
pub fn run_batch(inputs: &[EpochInput]) -> Vec<Result<EpochOutput, InputError>> {
    inputs.par_iter().map(run_epoch).collect()
}

/// The bond rows persisted: the EMA row as u16 proportions for uids with a new permit,
/// an empty row for every other uid.
fn stored_bonds(ema: &Csr, new_permit: &[bool]) -> SparseMatrix {
    let mut out = SparseMatrix {
        offsets: Vec::with_capacity(new_permit.len() + 1),
        cols: Vec::new(),
        vals: Vec::new(),
    };
    out.offsets.push(0);
    for (i, &p) in new_permit.iter().enumerate() {
        if p {
            let (cols, vals) = ema.row(i);
            out.cols.extend_from_slice(cols);
            out.vals
                .extend(vals.iter().map(|&v| fixed_proportion_to_u16(v)));
        }
        out.offsets.push(out.cols.len() as u32);
    }
    out
}
