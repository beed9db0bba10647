//! Past rule sets: the epoch rules each mainnet runtime since dTAO ran, chosen by the
//! input's `spec_version` (conformance ERAS.md). One value names every difference and the
//! spec that brought it; the stages read it, so there is one epoch, not one per era.
//!
//! Inputs an era does not read are neutralised once ([`Rules::effective`]): before 252 the
//! owner uid, before 257 the tempo's mask, before 273 Yuma3 and the stake threshold, before
//! 297 commit-reveal, before 423 the last mechanism step. What remains differs in code and
//! is a flag here, and a bit of the packed header's flags on the GPU backends.

use std::borrow::Cow;

use crate::model::{EpochInput, InputError};

/// The first spec of every era, oldest first; today's era last.
pub const ERAS: [u32; 10] = [233, 252, 257, 273, 283, 297, 320, 365, 397, 423];

/// Spec versions below this (before dTAO) have no rule set here.
pub const FIRST_SPEC: u32 = ERAS[0];

/// How bonds referring to re-registered uids are masked when read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BondMask {
    /// Before 257: entry (i, j) dropped when `last_update[i] <= block_at_registration[j]`.
    Outdated,
    /// From 257: column j dropped when `last_tempo <= block_at_registration[j]`, with
    /// `last_tempo = current_block - tempo` (from 423 `last_mechanism_step_block + 1` when
    /// one is recorded, which [`Rules::effective`] leaves zero before 423).
    Registered,
}

/// The liquid alpha sigmoid's exponent (Yuma3 with liquid alpha, from 273).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sigmoid {
    /// 273: `exp(-s (d - 1/2))`, the exp unclamped (`safe_exp`: overflow gives 0).
    Steepness,
    /// 283: `exp((s / -100) (d - 1/2))`, the exp unclamped.
    Percent,
    /// 365: `exp((s / -100) (d - 1/2))` with the exponent clamped to [-20, 20] (`exp_safe`).
    PercentClamped,
}

/// One era's rule set: every way its epoch differs from today's (spec 423).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// The era: the first spec of the rule set.
    pub era: u32,
    /// Before 273 permits go to the top-k stakes, zeros included (`is_topk`); from 273 only
    /// non-zero stakes hold one (`is_topk_nonzero`).
    pub topk_zero_stake: bool,
    /// From 397 the owner is exempt from the stake threshold and holds both permits.
    pub owner_permit: bool,
    /// Bond mask on read; see [`BondMask`].
    pub bond_mask: BondMask,
    /// Before 273, LiquidAlphaOn switches the original path to liquid alpha v1 (one alpha
    /// per column from a logistic fitted to the consensus quartiles).
    pub liquid_alpha_v1: bool,
    /// The Yuma3 liquid alpha sigmoid (from 273).
    pub sigmoid: Sigmoid,
    /// Before 320, the bond row of a uid with neither an old nor a new permit is left as
    /// stored; from 320 every row is written.
    pub keep_unpermitted_bonds: bool,
    /// Before 365 the epoch writes Rank, Trust and PruningScores.
    pub rank_trust_pruning: bool,
    /// From 397 the epoch returns each uid's total stake.
    pub stake_output: bool,
    /// Before 423 ActivityCutoff is a u16 storage item.
    pub activity_cutoff_u16: bool,
    /// 273-282 store AlphaSigmoidSteepness as a u16.
    pub steepness_u16: bool,
}

impl Rules {
    /// Today's rules (era 423): inputs without `spec_version`.
    pub const TODAY: Rules = Rules::of_era(423);

    /// The rule set of `era`, one of [`ERAS`].
    const fn of_era(era: u32) -> Rules {
        Rules {
            era,
            topk_zero_stake: era < 273,
            owner_permit: era >= 397,
            bond_mask: if era < 257 {
                BondMask::Outdated
            } else {
                BondMask::Registered
            },
            liquid_alpha_v1: era < 273,
            sigmoid: if era < 283 {
                Sigmoid::Steepness
            } else if era < 365 {
                Sigmoid::Percent
            } else {
                Sigmoid::PercentClamped
            },
            keep_unpermitted_bonds: era < 320,
            rank_trust_pruning: era < 365,
            stake_output: era >= 397,
            activity_cutoff_u16: era < 423,
            steepness_u16: era >= 273 && era < 283,
        }
    }

    /// The rules of the latest era at or below `spec`; today's without one. A spec before
    /// dTAO (233) is refused.
    pub fn for_spec(spec: Option<u32>) -> Result<Rules, InputError> {
        let Some(spec) = spec else {
            return Ok(Rules::TODAY);
        };
        match ERAS.iter().rev().find(|&&e| e <= spec) {
            Some(&era) => Ok(Rules::of_era(era)),
            None => Err(InputError::SpecVersion(spec)),
        }
    }

    /// The rules `input` asks for, after checking what only its era restricts.
    pub fn of(input: &EpochInput) -> Result<Rules, InputError> {
        let rules = Rules::for_spec(input.spec_version)?;
        rules.check(input)?;
        Ok(rules)
    }

    /// Input the era's storage could not hold or its epoch could not read.
    fn check(&self, input: &EpochInput) -> Result<(), InputError> {
        let spec = input.spec_version.unwrap_or(self.era);
        let era_err = |field: &'static str, reason: String| InputError::Era {
            field,
            spec,
            reason,
        };
        if self.activity_cutoff_u16 && input.activity_cutoff > u16::MAX as u64 {
            return Err(era_err(
                "activity_cutoff",
                format!(
                    "is {}, above 65535: before spec 423 it is the u16 storage item ActivityCutoff",
                    input.activity_cutoff
                ),
            ));
        }
        if self.steepness_u16
            && input.yuma3
            && input.liquid_alpha
            && input.alpha_sigmoid_steepness < 0
        {
            return Err(era_err(
                "alpha_sigmoid_steepness",
                format!(
                    "is {}, negative: specs 273-282 store it as a u16",
                    input.alpha_sigmoid_steepness
                ),
            ));
        }
        if self.keep_unpermitted_bonds {
            // Before 320 reading a bond column uid >= n indexes past the registration
            // blocks: the chain's epoch would panic, so no such state was ever run.
            let n = input.n;
            for i in 0..input.bonds.rows() {
                if let Some(&col) = input.bonds.row(i).0.iter().find(|&&c| c >= n) {
                    return Err(era_err(
                        "bonds",
                        format!(
                            "row of uid {i} holds column uid {col}, not below n = {n}: \
                             the epoch before spec 320 cannot read it"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `input` with every field this era does not read set to the value that reads as
    /// absent, so that the stages need no flag for it.
    pub fn effective<'a>(&self, input: &'a EpochInput) -> Cow<'a, EpochInput> {
        let era = self.era;
        let neutral = (era < 252 && input.owner_uid.is_some())
            || (era < 273 && (input.yuma3 || input.stake_threshold != 0))
            || (era < 297 && input.commit_reveal)
            || (era < 423 && input.last_mechanism_step_block != 0);
        if !neutral {
            return Cow::Borrowed(input);
        }
        let mut x = input.clone();
        if era < 252 {
            // The owner's self-weight is kept from 252; before, the owner is not read.
            x.owner_uid = None;
        }
        if era < 273 {
            x.yuma3 = false;
            x.stake_threshold = 0;
        }
        if era < 297 {
            x.commit_reveal = false;
        }
        if era < 423 {
            x.last_mechanism_step_block = 0;
        }
        Cow::Owned(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_selects_the_latest_era_at_or_below_it() {
        assert_eq!(Rules::for_spec(None).unwrap(), Rules::TODAY);
        assert_eq!(Rules::for_spec(Some(233)).unwrap().era, 233);
        assert_eq!(Rules::for_spec(Some(251)).unwrap().era, 233);
        assert_eq!(Rules::for_spec(Some(320)).unwrap().era, 320);
        assert_eq!(Rules::for_spec(Some(364)).unwrap().era, 320);
        assert_eq!(Rules::for_spec(Some(425)).unwrap(), Rules::TODAY);
        assert_eq!(Rules::for_spec(Some(9999)).unwrap(), Rules::TODAY);
        assert_eq!(
            Rules::for_spec(Some(232)),
            Err(InputError::SpecVersion(232))
        );
    }

    #[test]
    fn today_differs_from_no_past_rule() {
        let t = Rules::TODAY;
        assert!(!t.topk_zero_stake && t.owner_permit && !t.liquid_alpha_v1);
        assert!(!t.keep_unpermitted_bonds && !t.rank_trust_pruning && t.stake_output);
        assert!(!t.activity_cutoff_u16 && !t.steepness_u16);
        assert_eq!(t.bond_mask, BondMask::Registered);
        assert_eq!(t.sigmoid, Sigmoid::PercentClamped);
    }
}
