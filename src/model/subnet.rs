//! Subnet epochs over several mechanisms (conformance format 2, MECHANISMS.md): their
//! inputs, outputs, JSON form and validation, and the documents that mix both formats.
//!
//! A mechanism holds its own `last_update`, `commit_block`, `weights` and `bonds`; every
//! other field is shared by all mechanisms of the subnet.

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use thiserror::Error;

use super::json::sealed::Read;
use super::json::{Bail, Reader, read_whole};
use super::{
    Case, EpochInput, EpochOutput, InputError, Mismatch, SparseMatrix, check_matrix, decode,
    first_diff, opt_diff, opt_u64_vec, u64_str, u64_vec,
};

/// The most mechanisms a subnet may run (`MAX_MECHANISM_COUNT_PER_SUBNET`).
pub const MAX_MECHANISMS: usize = 16;

/// What a stored `MechanismEmissionSplit` must add up to.
pub const SPLIT_TOTAL: u64 = u16::MAX as u64;

/// The storage one mechanism keeps for itself (MECHANISMS.md `input.mechanisms[k]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MechanismInput {
    /// Per uid block of the last weight update in this mechanism.
    pub last_update: Vec<u64>,
    /// Per uid earliest unexpired commit block in this mechanism, or none.
    pub commit_block: Vec<Option<u64>>,
    /// This mechanism's weight rows in storage order.
    pub weights: SparseMatrix,
    /// This mechanism's bond rows in storage order.
    pub bonds: SparseMatrix,
}

/// The chain state one `epoch_with_mechanisms` call reads (MECHANISMS.md `input`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetInput {
    /// Subnetwork size: uids `0..n`.
    pub n: u16,
    /// Block number the epoch runs at.
    pub current_block: u64,
    /// Tempo in blocks.
    pub tempo: u16,
    /// Blocks after the last weight update at which a uid counts as inactive.
    pub activity_cutoff: u64,
    /// Block of the last successful epoch; 0 when none is recorded.
    pub last_mechanism_step_block: u64,
    /// Consensus majority as a u16 proportion.
    pub kappa: u16,
    /// Bonds penalty as a u16 proportion.
    pub bonds_penalty: u16,
    /// Bonds moving average in parts per million (at most 1,000,000).
    pub bonds_moving_average: u64,
    /// Number of validator permits.
    pub max_allowed_validators: u16,
    /// Minimum total stake (rao) to keep a stake weight.
    #[serde(with = "u64_str")]
    pub stake_threshold: u64,
    /// Raw TaoWeight: a proportion of u64::MAX.
    #[serde(with = "u64_str")]
    pub tao_weight: u64,
    /// Subnet owner's uid, if registered.
    pub owner_uid: Option<u16>,
    /// Yuma3 bonds.
    pub yuma3: bool,
    /// Liquid alpha (read on the Yuma3 path only).
    pub liquid_alpha: bool,
    /// Liquid alpha lower bound, u16 proportion.
    pub alpha_low: u16,
    /// Liquid alpha upper bound, u16 proportion.
    pub alpha_high: u16,
    /// Liquid alpha sigmoid steepness.
    pub alpha_sigmoid_steepness: i16,
    /// Commit-reveal weights enabled.
    pub commit_reveal: bool,
    /// The subnet's total emission this epoch, split between the mechanisms.
    #[serde(with = "u64_str")]
    pub emission: u64,
    /// Per uid inherited alpha stake.
    #[serde(with = "u64_vec")]
    pub alpha_stake: Vec<u64>,
    /// Per uid inherited tao stake.
    #[serde(with = "u64_vec")]
    pub tao_stake: Vec<u64>,
    /// Per uid registration block.
    pub block_at_registration: Vec<u64>,
    /// Per uid validator permit held before this epoch (read by every mechanism).
    pub validator_permit: Vec<bool>,
    /// The stored `MechanismEmissionSplit`, or none for an even split.
    pub emission_split: Option<Vec<u16>>,
    /// Each mechanism's own storage, mechanism 0 first.
    pub mechanisms: Vec<MechanismInput>,
    /// Runtime spec version whose rules every mechanism runs (docs/eras.md); absent:
    /// today's. Before 320 a subnet has one mechanism only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_version: Option<u32>,
}

/// One mechanism's share and epoch (MECHANISMS.md `output.mechanisms[k]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MechanismOutput {
    /// The mechanism's share of the subnet emission, rao.
    #[serde(with = "u64_str")]
    pub emission: u64,
    /// The mechanism's epoch, run on that share.
    pub output: EpochOutput,
}

/// The per-uid terms folded over the mechanisms (MECHANISMS.md `output.subnet`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetTerms {
    /// Active in any mechanism.
    pub active: Vec<bool>,
    /// Weighted fold of the mechanisms' combined emissions, rao.
    #[serde(with = "u64_vec")]
    pub emission: Vec<u64>,
    /// Weighted fold of consensus.
    pub consensus: Vec<u16>,
    /// Weighted fold of dividends.
    pub dividend: Vec<u16>,
    /// Weighted fold of validator trust.
    pub validator_trust: Vec<u16>,
    /// Permit in any mechanism (the `ValidatorPermit` the next epoch reads).
    pub new_validator_permit: Vec<bool>,
    /// Weighted fold of stake weights.
    pub stake_weight: Vec<u16>,
    /// Sum of the mechanisms' server emissions, rao.
    #[serde(with = "u64_vec")]
    pub server_emission: Vec<u64>,
    /// Sum of the mechanisms' validator emissions, rao.
    #[serde(with = "u64_vec")]
    pub validator_emission: Vec<u64>,
    /// Sum of the mechanisms' stakes, rao; from spec 397 (absent before).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_u64_vec")]
    pub stake: Option<Vec<u64>>,
    /// Weighted fold of rank; before spec 365 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<Vec<u16>>,
    /// Weighted fold of trust; before spec 365 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<Vec<u16>>,
    /// Weighted fold of pruning scores; before spec 365 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruning_score: Option<Vec<u16>>,
    /// Mechanism 0's incentive weighted by its share (the chain never updates it later).
    pub incentive: Vec<u16>,
}

/// Everything one subnet epoch produces (MECHANISMS.md `output`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetOutput {
    /// Each mechanism's share and epoch, mechanism 0 first.
    pub mechanisms: Vec<MechanismOutput>,
    /// The folded per-uid terms.
    pub subnet: SubnetTerms,
}

/// The only `kind` of a format 2 case.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseKind {
    /// A whole-subnet epoch over its mechanisms.
    #[default]
    Subnet,
}

/// A format 2 case: a subnet input and, optionally, the chain's output for it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetCase {
    /// Format version; must be 2.
    pub format: u32,
    /// Case kind.
    #[serde(default)]
    pub kind: CaseKind,
    /// Case name.
    #[serde(default)]
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// The subnet epoch's input.
    pub input: SubnetInput,
    /// The expected output, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<SubnetOutput>,
}

/// Why a subnet input was rejected: names the mechanism, the field and the uid.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SubnetError {
    /// A shared field (or a format 1 input) is bad.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A mechanism count outside 1..=16.
    #[error("field `mechanisms` has {0} entries, expected 1 to {MAX_MECHANISMS}")]
    MechanismCount(usize),
    /// An emission split the chain would not have stored.
    #[error("field `emission_split`: {0}")]
    Split(String),
    /// More than one mechanism before spec 320, which had none.
    #[error(
        "field `mechanisms` has {count} entries, but spec_version {spec} is before 320: one mechanism only"
    )]
    EraMechanisms {
        /// Mechanisms given.
        count: usize,
        /// The input's spec version.
        spec: u32,
    },
    /// A field of one mechanism is bad.
    #[error("mechanism {mechanism}: {source}")]
    Mechanism {
        /// Mechanism index.
        mechanism: usize,
        /// What is wrong with its field.
        source: InputError,
    },
}

impl SubnetInput {
    /// Checks the mechanism count, the split and every array's length, naming the
    /// mechanism, field and uid of the first problem. What the chain stores (unsorted
    /// rows, explicit zeros, column uids >= n) is accepted.
    pub fn validate(&self) -> Result<(), SubnetError> {
        let count = self.mechanisms.len();
        if !(1..=MAX_MECHANISMS).contains(&count) {
            return Err(SubnetError::MechanismCount(count));
        }
        if let Some(split) = &self.emission_split {
            // The checks `do_set_emission_split` makes before storing a split.
            if split.is_empty() {
                return Err(SubnetError::Split("is empty".into()));
            }
            if split.len() > count {
                return Err(SubnetError::Split(format!(
                    "has {} entries, more than the {count} mechanisms",
                    split.len()
                )));
            }
            let sum: u64 = split.iter().map(|&s| s as u64).sum();
            if sum != SPLIT_TOTAL {
                return Err(SubnetError::Split(format!(
                    "entries sum to {sum}, expected {SPLIT_TOTAL}"
                )));
            }
        }
        let n = self.n as usize;
        let shared: [(&'static str, usize); 4] = [
            ("alpha_stake", self.alpha_stake.len()),
            ("tao_stake", self.tao_stake.len()),
            ("block_at_registration", self.block_at_registration.len()),
            ("validator_permit", self.validator_permit.len()),
        ];
        for (field, got) in shared {
            if got != n {
                return Err(InputError::Length { field, got, n }.into());
            }
        }
        if let Some(owner) = self.owner_uid
            && owner >= self.n
        {
            return Err(InputError::Owner { owner, n: self.n }.into());
        }
        if self.bonds_moving_average > 1_000_000 {
            return Err(InputError::BondsMovingAverage(self.bonds_moving_average).into());
        }
        for (mechanism, m) in self.mechanisms.iter().enumerate() {
            m.validate(n)
                .map_err(|source| SubnetError::Mechanism { mechanism, source })?;
        }
        Ok(())
    }

    /// Mechanism `k`'s epoch input with `emission` as its share.
    ///
    /// # Panics
    /// When `k` is not below the mechanism count.
    pub fn mechanism_epoch(&self, k: usize, emission: u64) -> EpochInput {
        self.epoch_with(self.mechanisms[k].clone(), emission)
    }

    /// Every mechanism's epoch input, mechanism k with `emissions[k]` as its share; the
    /// per-mechanism storage is moved, the shared fields are copied.
    ///
    /// # Panics
    /// When `emissions` does not hold one share per mechanism.
    pub fn into_mechanism_epochs(mut self, emissions: &[u64]) -> Vec<EpochInput> {
        assert_eq!(
            emissions.len(),
            self.mechanisms.len(),
            "one share per mechanism"
        );
        let mechanisms = std::mem::take(&mut self.mechanisms);
        mechanisms
            .into_iter()
            .zip(emissions)
            .map(|(m, &e)| self.epoch_with(m, e))
            .collect()
    }

    fn epoch_with(&self, m: MechanismInput, emission: u64) -> EpochInput {
        EpochInput {
            n: self.n,
            current_block: self.current_block,
            tempo: self.tempo,
            activity_cutoff: self.activity_cutoff,
            last_mechanism_step_block: self.last_mechanism_step_block,
            kappa: self.kappa,
            bonds_penalty: self.bonds_penalty,
            bonds_moving_average: self.bonds_moving_average,
            max_allowed_validators: self.max_allowed_validators,
            stake_threshold: self.stake_threshold,
            tao_weight: self.tao_weight,
            owner_uid: self.owner_uid,
            yuma3: self.yuma3,
            liquid_alpha: self.liquid_alpha,
            alpha_low: self.alpha_low,
            alpha_high: self.alpha_high,
            alpha_sigmoid_steepness: self.alpha_sigmoid_steepness,
            commit_reveal: self.commit_reveal,
            commit_block: m.commit_block,
            emission,
            alpha_stake: self.alpha_stake.clone(),
            tao_stake: self.tao_stake.clone(),
            last_update: m.last_update,
            block_at_registration: self.block_at_registration.clone(),
            validator_permit: self.validator_permit.clone(),
            weights: m.weights,
            bonds: m.bonds,
            spec_version: self.spec_version,
        }
    }

    /// A subnet of one mechanism holding `input`'s own storage, with no stored split.
    pub fn from_epoch(input: EpochInput) -> Self {
        Self {
            n: input.n,
            current_block: input.current_block,
            tempo: input.tempo,
            activity_cutoff: input.activity_cutoff,
            last_mechanism_step_block: input.last_mechanism_step_block,
            kappa: input.kappa,
            bonds_penalty: input.bonds_penalty,
            bonds_moving_average: input.bonds_moving_average,
            max_allowed_validators: input.max_allowed_validators,
            stake_threshold: input.stake_threshold,
            tao_weight: input.tao_weight,
            owner_uid: input.owner_uid,
            yuma3: input.yuma3,
            liquid_alpha: input.liquid_alpha,
            alpha_low: input.alpha_low,
            alpha_high: input.alpha_high,
            alpha_sigmoid_steepness: input.alpha_sigmoid_steepness,
            commit_reveal: input.commit_reveal,
            emission: input.emission,
            alpha_stake: input.alpha_stake,
            tao_stake: input.tao_stake,
            block_at_registration: input.block_at_registration,
            validator_permit: input.validator_permit,
            emission_split: None,
            mechanisms: vec![MechanismInput {
                last_update: input.last_update,
                commit_block: input.commit_block,
                weights: input.weights,
                bonds: input.bonds,
            }],
            spec_version: input.spec_version,
        }
    }
}

impl MechanismInput {
    /// Lengths against `n` and the sparse rows' consistency.
    fn validate(&self, n: usize) -> Result<(), InputError> {
        let lens: [(&'static str, usize); 4] = [
            ("last_update", self.last_update.len()),
            ("commit_block", self.commit_block.len()),
            ("weights", self.weights.rows()),
            ("bonds", self.bonds.rows()),
        ];
        for (field, got) in lens {
            if got != n {
                return Err(InputError::Length { field, got, n });
            }
        }
        check_matrix("weights", &self.weights)?;
        check_matrix("bonds", &self.bonds)
    }
}

/// The first place where two subnet outputs differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubnetMismatch {
    /// Different numbers of mechanisms.
    Count {
        /// Expected count.
        expected: usize,
        /// Computed count.
        got: usize,
    },
    /// A mechanism's emission share differs.
    Share {
        /// Mechanism index.
        mechanism: usize,
        /// Expected share.
        expected: u64,
        /// Computed share.
        got: u64,
    },
    /// A field of one mechanism's epoch output differs.
    Mechanism {
        /// Mechanism index.
        mechanism: usize,
        /// Where.
        mismatch: Mismatch,
    },
    /// A folded subnet term differs.
    Subnet(Mismatch),
}

impl std::fmt::Display for SubnetMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Count { expected, got } => {
                write!(f, "expected {expected} mechanisms, got {got}")
            }
            Self::Share {
                mechanism,
                expected,
                got,
            } => write!(
                f,
                "mechanism {mechanism}: emission share expected {expected}, got {got}"
            ),
            Self::Mechanism {
                mechanism,
                mismatch,
            } => write!(f, "mechanism {mechanism}: {mismatch}"),
            Self::Subnet(m) => write!(f, "subnet: {m}"),
        }
    }
}

impl SubnetTerms {
    /// Compares every field exactly against `got`, returning the first difference.
    pub fn first_difference(&self, got: &SubnetTerms) -> Option<Mismatch> {
        first_diff("active", &self.active, &got.active)
            .or_else(|| first_diff("emission", &self.emission, &got.emission))
            .or_else(|| first_diff("consensus", &self.consensus, &got.consensus))
            .or_else(|| first_diff("dividend", &self.dividend, &got.dividend))
            .or_else(|| {
                first_diff(
                    "validator_trust",
                    &self.validator_trust,
                    &got.validator_trust,
                )
            })
            .or_else(|| {
                first_diff(
                    "new_validator_permit",
                    &self.new_validator_permit,
                    &got.new_validator_permit,
                )
            })
            .or_else(|| first_diff("stake_weight", &self.stake_weight, &got.stake_weight))
            .or_else(|| {
                first_diff(
                    "server_emission",
                    &self.server_emission,
                    &got.server_emission,
                )
            })
            .or_else(|| {
                first_diff(
                    "validator_emission",
                    &self.validator_emission,
                    &got.validator_emission,
                )
            })
            .or_else(|| opt_diff("stake", &self.stake, &got.stake))
            .or_else(|| opt_diff("rank", &self.rank, &got.rank))
            .or_else(|| opt_diff("trust", &self.trust, &got.trust))
            .or_else(|| opt_diff("pruning_score", &self.pruning_score, &got.pruning_score))
            .or_else(|| first_diff("incentive", &self.incentive, &got.incentive))
    }
}

impl SubnetOutput {
    /// Compares every mechanism's share and output, then the folded terms, exactly.
    pub fn first_difference(&self, got: &SubnetOutput) -> Option<SubnetMismatch> {
        if self.mechanisms.len() != got.mechanisms.len() {
            return Some(SubnetMismatch::Count {
                expected: self.mechanisms.len(),
                got: got.mechanisms.len(),
            });
        }
        for (mechanism, (e, g)) in self.mechanisms.iter().zip(&got.mechanisms).enumerate() {
            if e.emission != g.emission {
                return Some(SubnetMismatch::Share {
                    mechanism,
                    expected: e.emission,
                    got: g.emission,
                });
            }
            if let Some(mismatch) = e.output.first_difference(&g.output) {
                return Some(SubnetMismatch::Mechanism {
                    mechanism,
                    mismatch,
                });
            }
        }
        self.subnet
            .first_difference(&got.subnet)
            .map(SubnetMismatch::Subnet)
    }
}

/// An epoch input of either format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnyInput {
    /// Format 1: one mechanism's epoch.
    Epoch(EpochInput),
    /// Format 2: a subnet epoch over its mechanisms.
    Subnet(SubnetInput),
}

/// An epoch output of either format; serialised as the bare output object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AnyOutput {
    /// Format 1 output.
    Epoch(EpochOutput),
    /// Format 2 output.
    Subnet(SubnetOutput),
}

/// A case of either format.
#[derive(Clone, Debug)]
pub enum AnyCase {
    /// Format 1.
    Epoch(Case),
    /// Format 2.
    Subnet(SubnetCase),
}

/// The first place where two outputs of either format differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyMismatch {
    /// A format 1 field.
    Epoch(Mismatch),
    /// A format 2 share, mechanism field or folded term.
    Subnet(SubnetMismatch),
    /// One output is format 1 and the other format 2.
    Format,
}

impl std::fmt::Display for AnyMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Epoch(m) => m.fmt(f),
            Self::Subnet(m) => m.fmt(f),
            Self::Format => f.write_str("outputs of different formats"),
        }
    }
}

impl AnyOutput {
    /// Compares exactly against `got`, returning the first difference.
    pub fn first_difference(&self, got: &AnyOutput) -> Option<AnyMismatch> {
        match (self, got) {
            (Self::Epoch(e), Self::Epoch(g)) => e.first_difference(g).map(AnyMismatch::Epoch),
            (Self::Subnet(e), Self::Subnet(g)) => e.first_difference(g).map(AnyMismatch::Subnet),
            _ => Some(AnyMismatch::Format),
        }
    }
}

impl AnyInput {
    /// Checks the input as its format requires.
    pub fn validate(&self) -> Result<(), SubnetError> {
        match self {
            Self::Epoch(i) => Ok(i.validate()?),
            Self::Subnet(s) => s.validate(),
        }
    }
}

impl AnyCase {
    /// The case's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Epoch(c) => &c.name,
            Self::Subnet(c) => &c.name,
        }
    }

    /// Splits the case into its input and its expected output, if any.
    pub fn into_parts(self) -> (AnyInput, Option<AnyOutput>) {
        match self {
            Self::Epoch(c) => (AnyInput::Epoch(c.input), c.output.map(AnyOutput::Epoch)),
            Self::Subnet(c) => (AnyInput::Subnet(c.input), c.output.map(AnyOutput::Subnet)),
        }
    }
}

/// The keys that tell the documents apart; everything else is skipped unread.
#[derive(Deserialize)]
struct Probe {
    format: Option<IgnoredAny>,
    mechanisms: Option<IgnoredAny>,
}

/// Just the format number of a case.
#[derive(Deserialize)]
struct FormatOnly {
    format: u32,
}

/// Decodes one document: a case of format 1 or 2, or a bare input of either format (a
/// bare input has no `format`; it is format 2 when it has `mechanisms`). A bare input
/// becomes a case without expected output.
pub fn decode_case(text: &str) -> Result<AnyCase, SubnetError> {
    read_whole(text).or_else(|Bail| decode_case_by_serde(text))
}

impl Read for AnyCase {
    /// What [`decode_case`] decodes, by the fast reader: a case whose first key is
    /// `format`, else a bare format 1 input, else a bare format 2 input. Whatever it reads
    /// is what serde's reader would (the formats' keys tell them apart); the rest gives up.
    fn read(r: &mut Reader<'_>) -> Result<Self, Bail> {
        let start = r.pos();
        let format = match r.first_key() {
            Ok("format") => Some(read_format(r)?),
            _ => None,
        };
        r.seek(start);
        match format {
            Some(1) => Ok(AnyCase::Epoch(Case::read(r)?)),
            Some(2) => Ok(AnyCase::Subnet(SubnetCase::read(r)?)),
            Some(_) => Err(Bail),
            None => match EpochInput::read(r) {
                Ok(input) => Ok(AnyCase::Epoch(Case {
                    format: 1,
                    name: String::new(),
                    description: String::new(),
                    input,
                    output: None,
                })),
                Err(Bail) => {
                    r.seek(start);
                    Ok(AnyCase::Subnet(SubnetCase {
                        format: 2,
                        kind: CaseKind::Subnet,
                        name: String::new(),
                        description: String::new(),
                        input: SubnetInput::read(r)?,
                        output: None,
                    }))
                }
            },
        }
    }
}

/// The value of a `format` key just read.
fn read_format(r: &mut Reader<'_>) -> Result<u32, Bail> {
    r.eat(b':')?;
    u32::read(r)
}

/// [`decode_case`] by serde's reader alone: slower, and names the failing field.
fn decode_case_by_serde(text: &str) -> Result<AnyCase, SubnetError> {
    let probe: Probe = decode(text)?;
    if probe.format.is_none() {
        return Ok(if probe.mechanisms.is_some() {
            AnyCase::Subnet(SubnetCase {
                format: 2,
                kind: CaseKind::Subnet,
                name: String::new(),
                description: String::new(),
                input: decode(text)?,
                output: None,
            })
        } else {
            AnyCase::Epoch(Case {
                format: 1,
                name: String::new(),
                description: String::new(),
                input: decode(text)?,
                output: None,
            })
        });
    }
    let FormatOnly { format } = decode(text)?;
    match format {
        1 => Ok(AnyCase::Epoch(decode(text)?)),
        2 => Ok(AnyCase::Subnet(decode(text)?)),
        f => Err(InputError::Format(f).into()),
    }
}

/// A document position and why it was rejected.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{at}: {source}")]
pub struct DocumentError {
    /// `the document` or `element i`.
    pub at: String,
    /// What is wrong there.
    pub source: SubnetError,
}

/// Decodes a file of cases or inputs: one document, or a JSON array of documents of
/// either format (see [`decode_case`]). Returns them in order, and whether the file was
/// an array.
pub fn decode_documents(text: &str) -> Result<(Vec<AnyCase>, bool), DocumentError> {
    let at_document = |source| DocumentError {
        at: "the document".into(),
        source,
    };
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        if let Ok(cases) = read_whole(text) {
            return Ok((cases, true));
        }
        let items: Vec<Box<RawValue>> = decode(text).map_err(|e| at_document(e.into()))?;
        let cases = items
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                decode_case(raw.get()).map_err(|source| DocumentError {
                    at: format!("element {i}"),
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok((cases, true))
    } else {
        Ok((vec![decode_case(text).map_err(at_document)?], false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet_case() -> SubnetCase {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/conformance/mechanisms/m2-even-e7-identical-n3-y3.json"
        );
        match decode_case(&std::fs::read_to_string(path).unwrap()).unwrap() {
            AnyCase::Subnet(c) => c,
            AnyCase::Epoch(_) => panic!("format 2 case decoded as format 1"),
        }
    }

    #[test]
    fn every_repository_case_decodes_and_validates() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/mechanisms");
        let files = crate::model::case_files(&dir).unwrap();
        assert!(files.len() >= 27, "{} cases", files.len());
        for f in files {
            let case = decode_case(&std::fs::read_to_string(&f).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let AnyCase::Subnet(c) = case else {
                panic!("{}: not format 2", f.display())
            };
            c.input
                .validate()
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let out = c.output.expect("expected output");
            assert_eq!(out.mechanisms.len(), c.input.mechanisms.len());
        }
    }

    #[test]
    fn errors_name_mechanism_field_and_uid() {
        let base = subnet_case().input;

        let mut s = base.clone();
        s.mechanisms.clear();
        assert_eq!(s.validate(), Err(SubnetError::MechanismCount(0)));
        let mut s = base.clone();
        s.mechanisms = vec![base.mechanisms[0].clone(); 17];
        assert_eq!(s.validate(), Err(SubnetError::MechanismCount(17)));

        let mut s = base.clone();
        s.emission_split = Some(vec![]);
        assert!(s.validate().unwrap_err().to_string().contains("empty"));
        s.emission_split = Some(vec![1, 1, 65533]);
        let e = s.validate().unwrap_err().to_string();
        assert!(
            e.contains("emission_split") && e.contains("3 entries"),
            "{e}"
        );
        s.emission_split = Some(vec![1, 65533]);
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("sum to 65534"), "{e}");
        s.emission_split = Some(vec![65535]);
        assert_eq!(s.validate(), Ok(()));

        let mut s = base.clone();
        s.mechanisms[1].last_update.pop();
        let e = s.validate().unwrap_err();
        assert_eq!(
            e,
            SubnetError::Mechanism {
                mechanism: 1,
                source: InputError::Length {
                    field: "last_update",
                    got: 2,
                    n: 3
                }
            }
        );
        assert!(
            e.to_string()
                .starts_with("mechanism 1: field `last_update`")
        );

        let mut s = base.clone();
        s.mechanisms[1].weights =
            SparseMatrix::from_rows(&[vec![(1, 5), (2, 5), (1, 7)], vec![], vec![]]);
        let e = s.validate().unwrap_err().to_string();
        assert_eq!(
            e,
            "mechanism 1: field `weights` row of uid 0 holds column uid 1 twice"
        );

        let mut s = base.clone();
        s.tao_stake.push(1);
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("`tao_stake` has length 4"), "{e}");
    }

    #[test]
    fn documents_mix_both_formats() {
        let sub = subnet_case();
        let epoch = sub.input.mechanism_epoch(0, 4);
        let text = format!(
            "[{}, {}, {}, {}]",
            serde_json::to_string(&sub).unwrap(),
            serde_json::to_string(&sub.input).unwrap(),
            serde_json::to_string(&epoch).unwrap(),
            serde_json::to_string(&Case {
                format: 1,
                name: "one".into(),
                description: String::new(),
                input: epoch.clone(),
                output: None,
            })
            .unwrap(),
        );
        let (docs, many) = decode_documents(&text).unwrap();
        assert!(many);
        let kinds: Vec<bool> = docs
            .iter()
            .map(|d| matches!(d, AnyCase::Subnet(_)))
            .collect();
        assert_eq!(kinds, [true, true, false, false]);
        let (one, many) = decode_documents(&serde_json::to_string(&sub.input).unwrap()).unwrap();
        assert!(!many);
        assert!(matches!(&one[0], AnyCase::Subnet(c) if c.input == sub.input));

        let e = decode_documents("[{\"format\": 3, \"input\": {}}]").unwrap_err();
        assert_eq!(e.at, "element 0");
        assert!(e.to_string().contains("format"), "{e}");
        let e = decode_documents("[{\"format\": 2, \"input\": {\"n\": \"x\"}}]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("element 0") && e.contains("input.n"), "{e}");
    }
}
