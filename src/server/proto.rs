//! Protobuf <-> model conversion for `yuma.v1`, checking every length, range and CSR
//! invariant on the way in and naming the field and uid of the first problem.

use thiserror::Error;

use super::pb;
use crate::model::{EpochInput, EpochOutput, InputError, SparseMatrix};

/// Why a protobuf epoch does not convert into an [`EpochInput`].
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProtoError {
    /// `n` above what a u16 uid can address, or above the server's limit.
    #[error("field `n` is {n}, above the limit {limit} ({which})")]
    TooManyUids {
        /// The requested n.
        n: u32,
        /// The limit it exceeds.
        limit: u32,
        /// Which limit: u16 uids or the server's `--max-n`.
        which: &'static str,
    },
    /// A per-uid vector whose length is not the one required.
    #[error("field `{field}` has length {got}, expected {expected}")]
    Length {
        /// Field name.
        field: &'static str,
        /// Its length.
        got: usize,
        /// The required length.
        expected: usize,
    },
    /// A value above its type's maximum.
    #[error("field `{field}`{} is {value}, above {max}", at_uid(*.uid))]
    Range {
        /// Field name.
        field: &'static str,
        /// The uid (row uid for matrices), when the field is per uid.
        uid: Option<usize>,
        /// The value.
        value: i64,
        /// Its maximum.
        max: i64,
    },
    /// CSR arrays that do not describe one matrix.
    #[error("field `{field}`{}: {reason}", at_uid(*.uid))]
    Csr {
        /// `weights.row_offsets`, `bonds.cols`...
        field: &'static str,
        /// The row uid, when one row is at fault.
        uid: Option<usize>,
        /// What is inconsistent.
        reason: String,
    },
    /// The converted input fails the model's own validation.
    #[error(transparent)]
    Input(#[from] InputError),
}

/// ` at uid N` or nothing.
fn at_uid(uid: Option<usize>) -> String {
    uid.map(|u| format!(" at uid {u}")).unwrap_or_default()
}

/// A u32 that must fit a u16.
fn u16_of(field: &'static str, uid: Option<usize>, v: u32) -> Result<u16, ProtoError> {
    u16::try_from(v).map_err(|_| ProtoError::Range {
        field,
        uid,
        value: v.into(),
        max: u16::MAX.into(),
    })
}

/// A per-uid vector that must hold exactly n entries.
fn per_uid<T>(field: &'static str, v: Vec<T>, n: usize) -> Result<Vec<T>, ProtoError> {
    if v.len() != n {
        return Err(ProtoError::Length {
            field,
            got: v.len(),
            expected: n,
        });
    }
    Ok(v)
}

/// Field names of one matrix, so errors say `weights.cols` rather than `cols`.
struct CsrFields {
    offsets: &'static str,
    cols: &'static str,
    values: &'static str,
}

const WEIGHTS: CsrFields = CsrFields {
    offsets: "weights.row_offsets",
    cols: "weights.cols",
    values: "weights.values",
};
const BONDS: CsrFields = CsrFields {
    offsets: "bonds.row_offsets",
    cols: "bonds.cols",
    values: "bonds.values",
};

/// Checks and converts one CSR matrix of `n` rows.
fn matrix_from_proto(
    f: &CsrFields,
    m: Option<pb::SparseMatrix>,
    n: usize,
) -> Result<SparseMatrix, ProtoError> {
    let m = m.unwrap_or_default();
    if m.row_offsets.len() != n + 1 {
        return Err(ProtoError::Length {
            field: f.offsets,
            got: m.row_offsets.len(),
            expected: n + 1,
        });
    }
    if m.values.len() != m.cols.len() {
        return Err(ProtoError::Length {
            field: f.values,
            got: m.values.len(),
            expected: m.cols.len(),
        });
    }
    if m.row_offsets[0] != 0 {
        return Err(ProtoError::Csr {
            field: f.offsets,
            uid: None,
            reason: format!("starts at {}, not 0", m.row_offsets[0]),
        });
    }
    let nnz = m.cols.len();
    let mut cols = Vec::with_capacity(nnz);
    let mut vals = Vec::with_capacity(nnz);
    for uid in 0..n {
        let (a, b) = (m.row_offsets[uid] as usize, m.row_offsets[uid + 1] as usize);
        if b < a {
            return Err(ProtoError::Csr {
                field: f.offsets,
                uid: Some(uid),
                reason: format!("row ends at {b}, before its start {a}"),
            });
        }
        if b > nnz {
            return Err(ProtoError::Csr {
                field: f.offsets,
                uid: Some(uid),
                reason: format!("row ends at {b}, past the {nnz} entries"),
            });
        }
        for k in a..b {
            cols.push(u16_of(f.cols, Some(uid), m.cols[k])?);
            vals.push(u16_of(f.values, Some(uid), m.values[k])?);
        }
    }
    if m.row_offsets[n] as usize != nnz {
        return Err(ProtoError::Csr {
            field: f.offsets,
            uid: None,
            reason: format!("ends at {}, not at the {nnz} entries", m.row_offsets[n]),
        });
    }
    Ok(SparseMatrix {
        offsets: m.row_offsets,
        cols,
        vals,
    })
}

/// CSR matrix to protobuf.
fn matrix_to_proto(m: &SparseMatrix) -> pb::SparseMatrix {
    pb::SparseMatrix {
        row_offsets: m.offsets.clone(),
        cols: m.cols.iter().map(|&c| c.into()).collect(),
        values: m.vals.iter().map(|&v| v.into()).collect(),
    }
}

/// Decodes `commit_block` + `commit_block_present` (both empty = no commit blocks).
fn commit_from_proto(
    blocks: Vec<u64>,
    present: &[u8],
    n: usize,
) -> Result<Vec<Option<u64>>, ProtoError> {
    if blocks.is_empty() && present.is_empty() {
        return Ok(vec![None; n]);
    }
    let blocks = per_uid("commit_block", blocks, n)?;
    if present.len() != n.div_ceil(8) {
        return Err(ProtoError::Length {
            field: "commit_block_present",
            got: present.len(),
            expected: n.div_ceil(8),
        });
    }
    Ok(blocks
        .into_iter()
        .enumerate()
        .map(|(i, b)| (present[i / 8] >> (i % 8) & 1 == 1).then_some(b))
        .collect())
}

/// Encodes per-uid commit blocks as values + presence bitmap (both empty when none is set).
fn commit_to_proto(commit: &[Option<u64>]) -> (Vec<u64>, Vec<u8>) {
    if commit.iter().all(Option::is_none) {
        return (Vec::new(), Vec::new());
    }
    let mut present = vec![0u8; commit.len().div_ceil(8)];
    for (i, c) in commit.iter().enumerate() {
        if c.is_some() {
            present[i / 8] |= 1 << (i % 8);
        }
    }
    (commit.iter().map(|c| c.unwrap_or(0)).collect(), present)
}

/// Converts and validates one protobuf epoch; `max_n` is the server's limit on n.
pub fn input_from_proto(p: pb::EpochInput, max_n: u32) -> Result<EpochInput, ProtoError> {
    if p.n > u16::MAX.into() {
        return Err(ProtoError::TooManyUids {
            n: p.n,
            limit: u16::MAX.into(),
            which: "uids are u16",
        });
    }
    if p.n > max_n {
        return Err(ProtoError::TooManyUids {
            n: p.n,
            limit: max_n,
            which: "the server's --max-n",
        });
    }
    let n = p.n as usize;
    let steepness = i16::try_from(p.alpha_sigmoid_steepness).map_err(|_| ProtoError::Range {
        field: "alpha_sigmoid_steepness",
        uid: None,
        value: p.alpha_sigmoid_steepness.into(),
        max: i16::MAX.into(),
    })?;
    let input = EpochInput {
        n: p.n as u16,
        current_block: p.current_block,
        tempo: u16_of("tempo", None, p.tempo)?,
        activity_cutoff: p.activity_cutoff,
        last_mechanism_step_block: p.last_mechanism_step_block,
        kappa: u16_of("kappa", None, p.kappa)?,
        bonds_penalty: u16_of("bonds_penalty", None, p.bonds_penalty)?,
        bonds_moving_average: p.bonds_moving_average,
        max_allowed_validators: u16_of("max_allowed_validators", None, p.max_allowed_validators)?,
        stake_threshold: p.stake_threshold,
        tao_weight: p.tao_weight,
        owner_uid: p
            .owner_uid
            .map(|o| u16_of("owner_uid", None, o))
            .transpose()?,
        yuma3: p.yuma3,
        liquid_alpha: p.liquid_alpha,
        alpha_low: u16_of("alpha_low", None, p.alpha_low)?,
        alpha_high: u16_of("alpha_high", None, p.alpha_high)?,
        alpha_sigmoid_steepness: steepness,
        commit_reveal: p.commit_reveal,
        commit_block: commit_from_proto(p.commit_block, &p.commit_block_present, n)?,
        emission: p.emission,
        alpha_stake: per_uid("alpha_stake", p.alpha_stake, n)?,
        tao_stake: per_uid("tao_stake", p.tao_stake, n)?,
        last_update: per_uid("last_update", p.last_update, n)?,
        block_at_registration: per_uid("block_at_registration", p.block_at_registration, n)?,
        validator_permit: per_uid("validator_permit", p.validator_permit, n)?,
        weights: matrix_from_proto(&WEIGHTS, p.weights, n)?,
        bonds: matrix_from_proto(&BONDS, p.bonds, n)?,
    };
    input.validate()?;
    Ok(input)
}

/// Converts one epoch input to protobuf (the client side).
pub fn input_to_proto(i: &EpochInput) -> pb::EpochInput {
    let (commit_block, commit_block_present) = commit_to_proto(&i.commit_block);
    pb::EpochInput {
        n: i.n.into(),
        current_block: i.current_block,
        tempo: i.tempo.into(),
        activity_cutoff: i.activity_cutoff,
        last_mechanism_step_block: i.last_mechanism_step_block,
        kappa: i.kappa.into(),
        bonds_penalty: i.bonds_penalty.into(),
        bonds_moving_average: i.bonds_moving_average,
        max_allowed_validators: i.max_allowed_validators.into(),
        stake_threshold: i.stake_threshold,
        tao_weight: i.tao_weight,
        owner_uid: i.owner_uid.map(Into::into),
        yuma3: i.yuma3,
        liquid_alpha: i.liquid_alpha,
        alpha_low: i.alpha_low.into(),
        alpha_high: i.alpha_high.into(),
        alpha_sigmoid_steepness: i.alpha_sigmoid_steepness.into(),
        commit_reveal: i.commit_reveal,
        commit_block,
        commit_block_present,
        emission: i.emission,
        alpha_stake: i.alpha_stake.clone(),
        tao_stake: i.tao_stake.clone(),
        last_update: i.last_update.clone(),
        block_at_registration: i.block_at_registration.clone(),
        validator_permit: i.validator_permit.clone(),
        weights: Some(matrix_to_proto(&i.weights)),
        bonds: Some(matrix_to_proto(&i.bonds)),
    }
}

/// Converts one epoch output to protobuf (the server side).
pub fn output_to_proto(o: EpochOutput) -> pb::EpochOutput {
    let widen = |v: Vec<u16>| v.into_iter().map(u32::from).collect();
    pb::EpochOutput {
        bonds: Some(matrix_to_proto(&o.bonds)),
        active: o.active,
        stake: o.stake,
        stake_weight: widen(o.stake_weight),
        consensus: widen(o.consensus),
        incentive: widen(o.incentive),
        dividend: widen(o.dividend),
        validator_trust: widen(o.validator_trust),
        new_validator_permit: o.new_validator_permit,
        emission: o.emission,
        server_emission: o.server_emission,
        validator_emission: o.validator_emission,
    }
}

/// Converts one protobuf output back (the client side); `n` is the epoch's n.
pub fn output_from_proto(p: pb::EpochOutput, n: usize) -> Result<EpochOutput, ProtoError> {
    let narrow = |field: &'static str, v: Vec<u32>| -> Result<Vec<u16>, ProtoError> {
        v.into_iter()
            .enumerate()
            .map(|(uid, x)| u16_of(field, Some(uid), x))
            .collect()
    };
    Ok(EpochOutput {
        stake_weight: narrow("stake_weight", p.stake_weight)?,
        consensus: narrow("consensus", p.consensus)?,
        incentive: narrow("incentive", p.incentive)?,
        dividend: narrow("dividend", p.dividend)?,
        validator_trust: narrow("validator_trust", p.validator_trust)?,
        bonds: matrix_from_proto(&BONDS, p.bonds, n)?,
        active: p.active,
        stake: p.stake,
        new_validator_permit: p.new_validator_permit,
        emission: p.emission,
        server_emission: p.server_emission,
        validator_emission: p.validator_emission,
    })
}
