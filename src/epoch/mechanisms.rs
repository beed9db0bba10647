//! A subnet epoch over its mechanisms (`epoch_with_mechanisms`, MECHANISMS.md): the
//! emission split, one ordinary epoch per mechanism, and the U64F64 fold of their terms.
//!
//! The split and the fold are small host-side steps written once here; the mechanism
//! epochs are plain epochs, so any backend runs them as more epochs of its batch
//! ([`run_any`] takes the batch runner as a closure).

use crate::model::subnet::{
    AnyInput, AnyOutput, MechanismOutput, SPLIT_TOTAL, SubnetError, SubnetInput, SubnetOutput,
    SubnetTerms,
};
use crate::model::{EpochInput, EpochOutput, InputError};

use super::Layout;

/// One result of a mixed batch: the output of either format, or why it was rejected.
pub type AnyResult = Result<AnyOutput, SubnetError>;

/// 1.0 as raw U64F64 bits (64 integer bits, 64 fractional bits).
pub const U64F64_ONE: u128 = 1 << 64;

/// Each mechanism's share of `total` (`split_emissions`): `floor(total * split[k] / 65535)`
/// for the stored split (cut or padded with 0 to `count`), else `floor(total / count)`;
/// what the flooring lost goes to mechanism 0, so the shares add up to `total` whenever
/// the split sums to at most 65535 (which validation guarantees).
pub fn split_emission(total: u64, split: Option<&[u16]>, count: usize) -> Vec<u64> {
    let mut shares: Vec<u64> = match split {
        Some(split) => split
            .iter()
            .map(|&s| (total as u128 * s as u128 / SPLIT_TOTAL as u128) as u64)
            .collect(),
        None => vec![total.checked_div(count as u64).unwrap_or(0); count],
    };
    shares.resize(count, 0);
    let given = shares.iter().fold(0u64, |a, &s| a.saturating_add(s));
    if let Some(first) = shares.first_mut() {
        *first = first.saturating_add(total.saturating_sub(given));
    }
    shares
}

/// Mechanism `k`'s aggregation weight as raw U64F64 bits: `U64F64(share) / U64F64(total)`,
/// truncated; when that division fails (total 0) mechanism 0 weighs 1 and the others 0.
pub fn mechanism_weight(k: usize, share: u64, total: u64) -> u128 {
    let fallback = if k == 0 { U64F64_ONE } else { 0 };
    if total == 0 {
        return fallback;
    }
    // (share << 64) / total is the quotient's raw bits; it fits unless share > total,
    // where the chain's checked division overflows and takes the fallback too.
    let q = ((share as u128) << 64) / total as u128;
    if share > total { fallback } else { q }
}

/// One fold step in U64F64: `acc + x * w`, each operation saturating and truncating, the
/// result's integer part (saturating at `max`).
fn weighted_acc(acc: u64, x: u64, w: u128, max: u64) -> u64 {
    // x is an integer, so U64F64(x) * w is exactly x * w's bits: no fraction is lost.
    let sum = ((acc as u128) << 64).saturating_add((x as u128).saturating_mul(w));
    ((sum >> 64) as u64).min(max)
}

fn acc_u16(acc: u16, x: u16, w: u128) -> u16 {
    weighted_acc(acc as u64, x as u64, w, u16::MAX as u64) as u16
}

/// One fold step of a u64 term (emission): `acc + x * w` in U64F64, integer part.
pub fn acc_u64(acc: u64, x: u64, w: u128) -> u64 {
    weighted_acc(acc, x, w, u64::MAX)
}

/// Folds the mechanisms' per-uid terms into the subnet's, in mechanism order, with
/// `weights[k]` the U64F64 bits of mechanism k's weight (see [`mechanism_weight`]).
pub fn fold(mechanisms: &[&EpochOutput], weights: &[u128]) -> SubnetTerms {
    let Some((first, rest)) = mechanisms.split_first() else {
        return SubnetTerms::default();
    };
    let w0 = weights[0];
    let weigh16 =
        |x: &[u16], w: u128| -> Vec<u16> { x.iter().map(|&v| acc_u16(0, v, w)).collect() };
    let mut t = SubnetTerms {
        active: first.active.clone(),
        emission: first.emission.iter().map(|&v| acc_u64(0, v, w0)).collect(),
        consensus: weigh16(&first.consensus, w0),
        dividend: weigh16(&first.dividend, w0),
        validator_trust: weigh16(&first.validator_trust, w0),
        new_validator_permit: first.new_validator_permit.clone(),
        stake_weight: weigh16(&first.stake_weight, w0),
        server_emission: first.server_emission.clone(),
        validator_emission: first.validator_emission.clone(),
        stake: first.stake.clone(),
        rank: first.rank.as_deref().map(|x| weigh16(x, w0)),
        trust: first.trust.as_deref().map(|x| weigh16(x, w0)),
        pruning_score: first.pruning_score.as_deref().map(|x| weigh16(x, w0)),
        incentive: weigh16(&first.incentive, w0),
    };
    for (m, &w) in rest.iter().zip(&weights[1..]) {
        let or = |acc: &mut [bool], x: &[bool]| acc.iter_mut().zip(x).for_each(|(a, &b)| *a |= b);
        let fold16 = |acc: &mut [u16], x: &[u16]| {
            acc.iter_mut()
                .zip(x)
                .for_each(|(a, &b)| *a = acc_u16(*a, b, w))
        };
        let add = |acc: &mut [u64], x: &[u64]| {
            acc.iter_mut()
                .zip(x)
                .for_each(|(a, &b)| *a = a.saturating_add(b))
        };
        or(&mut t.active, &m.active);
        or(&mut t.new_validator_permit, &m.new_validator_permit);
        t.emission
            .iter_mut()
            .zip(&m.emission)
            .for_each(|(a, &b)| *a = acc_u64(*a, b, w));
        fold16(&mut t.consensus, &m.consensus);
        fold16(&mut t.dividend, &m.dividend);
        fold16(&mut t.validator_trust, &m.validator_trust);
        fold16(&mut t.stake_weight, &m.stake_weight);
        add(&mut t.server_emission, &m.server_emission);
        add(&mut t.validator_emission, &m.validator_emission);
        // The era's optional terms: present in every mechanism or in none.
        let pairs = [
            (&mut t.rank, &m.rank),
            (&mut t.trust, &m.trust),
            (&mut t.pruning_score, &m.pruning_score),
        ];
        for (acc, x) in pairs {
            if let (Some(acc), Some(x)) = (acc, x) {
                fold16(acc, x);
            }
        }
        if let (Some(acc), Some(x)) = (&mut t.stake, &m.stake) {
            add(acc, x);
        }
    }
    t
}

/// Checks a subnet input, its era included: a spec before dTAO is refused, and so is more
/// than one mechanism before spec 320 (which had none).
pub fn validate_subnet(s: &SubnetInput) -> Result<(), SubnetError> {
    s.validate()?;
    let rules = super::rules::Rules::for_spec(s.spec_version)?;
    if rules.era < 320 && s.mechanisms.len() > 1 {
        return Err(SubnetError::EraMechanisms {
            count: s.mechanisms.len(),
            spec: s.spec_version.unwrap_or(rules.era),
        });
    }
    Ok(())
}

/// The subnet output from each mechanism's share and epoch output.
pub fn combine(total: u64, shares: &[u64], outputs: Vec<EpochOutput>) -> SubnetOutput {
    let weights: Vec<u128> = shares
        .iter()
        .enumerate()
        .map(|(k, &s)| mechanism_weight(k, s, total))
        .collect();
    let subnet = fold(&outputs.iter().collect::<Vec<_>>(), &weights);
    SubnetOutput {
        mechanisms: shares
            .iter()
            .zip(outputs)
            .map(|(&emission, output)| MechanismOutput { emission, output })
            .collect(),
        subnet,
    }
}

/// Where each input's results sit in the flat epoch batch.
enum Slot {
    /// A format 1 epoch: one batch entry.
    Epoch,
    /// A subnet: one batch entry per share.
    Subnet { total: u64, shares: Vec<u64> },
    /// A subnet rejected before running: no batch entry.
    Rejected(SubnetError),
}

/// How to turn a flat batch of epoch results back into one result per input.
pub struct Plan(Vec<Slot>);

/// Flattens inputs of either format into one batch of epochs: a format 1 input is one
/// epoch, a valid subnet one epoch per mechanism on its share. Subnets are validated here;
/// a rejected one adds nothing to the batch.
pub fn expand(inputs: Vec<AnyInput>) -> (Vec<EpochInput>, Plan) {
    let mut epochs = Vec::with_capacity(inputs.len());
    let mut slots = Vec::with_capacity(inputs.len());
    for input in inputs {
        match input {
            AnyInput::Epoch(e) => {
                epochs.push(e);
                slots.push(Slot::Epoch);
            }
            AnyInput::Subnet(s) => slots.push(match validate_subnet(&s) {
                Err(e) => Slot::Rejected(e),
                Ok(()) => {
                    let (total, shares) = shares_of(&s);
                    epochs.extend(s.into_mechanism_epochs(&shares));
                    Slot::Subnet { total, shares }
                }
            }),
        }
    }
    (epochs, Plan(slots))
}

/// The subnet's total emission and each mechanism's share.
fn shares_of(s: &SubnetInput) -> (u64, Vec<u64>) {
    let shares = split_emission(s.emission, s.emission_split.as_deref(), s.mechanisms.len());
    (s.emission, shares)
}

impl Plan {
    /// The number of epochs the batch must return.
    pub fn epochs(&self) -> usize {
        self.0
            .iter()
            .map(|s| match s {
                Slot::Epoch => 1,
                Slot::Subnet { shares, .. } => shares.len(),
                Slot::Rejected(_) => 0,
            })
            .sum()
    }

    /// One result per input, from the batch's results in batch order. A mechanism's
    /// rejection rejects its subnet (the error names the mechanism).
    ///
    /// # Panics
    /// When `results` holds fewer than [`Plan::epochs`] entries.
    pub fn assemble(self, results: Vec<Result<EpochOutput, InputError>>) -> Vec<AnyResult> {
        let mut results = results.into_iter();
        let mut next = || results.next().expect("one result per planned epoch");
        self.0
            .into_iter()
            .map(|slot| match slot {
                Slot::Epoch => next().map(AnyOutput::Epoch).map_err(SubnetError::from),
                Slot::Rejected(e) => Err(e),
                Slot::Subnet { total, shares } => {
                    // Take every mechanism's result first to keep the batch aligned.
                    let mine: Vec<_> = shares.iter().map(|_| next()).collect();
                    let outputs = mine
                        .into_iter()
                        .enumerate()
                        .map(|(k, r)| r.map_err(|e| mechanism_error(k, e)))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(AnyOutput::Subnet(combine(total, &shares, outputs)))
                }
            })
            .collect()
    }
}

/// Mechanism `k`'s rejection as its subnet's: stake overflow names the shared stake fields
/// (every mechanism reads them), anything else the mechanism.
pub(crate) fn mechanism_error(k: usize, e: InputError) -> SubnetError {
    match e {
        InputError::StakeOverflow { .. } => e.into(),
        source => SubnetError::Mechanism {
            mechanism: k,
            source,
        },
    }
}

/// Runs inputs of either format through one batch of `run` (a backend's batch runner),
/// splitting subnets into their mechanisms' epochs and folding them back; results in
/// input order. `run` must return one result per epoch it is given.
pub fn run_any<E>(
    inputs: Vec<AnyInput>,
    run: impl FnOnce(&[EpochInput]) -> Result<Vec<Result<EpochOutput, InputError>>, E>,
) -> Result<Vec<AnyResult>, E> {
    let (epochs, plan) = expand(inputs);
    let results = run(&epochs)?;
    Ok(plan.assemble(results))
}

/// One subnet epoch on the CPU, each mechanism's epoch in `layout`.
pub fn run_subnet_with(input: &SubnetInput, layout: Layout) -> Result<SubnetOutput, SubnetError> {
    validate_subnet(input)?;
    let (total, shares) = shares_of(input);
    let mut outputs = Vec::with_capacity(shares.len());
    for (k, &share) in shares.iter().enumerate() {
        let epoch = input.mechanism_epoch(k, share);
        outputs.push(super::run_epoch_with(&epoch, layout).map_err(|e| mechanism_error(k, e))?);
    }
    Ok(combine(total, &shares, outputs))
}

/// One subnet epoch on the CPU.
pub fn run_subnet(input: &SubnetInput) -> Result<SubnetOutput, SubnetError> {
    run_subnet_with(input, Layout::Auto)
}
