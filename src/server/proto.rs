//! Protobuf <-> model conversion for `yuma.v1`, checking every length, range and CSR
//! invariant on the way in and naming the field and uid of the first problem.

use thiserror::Error;

pub mod subnet;

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

/// How a matrix travels (see `SparseMatrix` in epoch.proto).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MatrixForm {
    /// Packed varint fields `row_offsets`, `cols`, `values`.
    #[default]
    Packed,
    /// Little-endian bytes `row_offsets_le` (u32), `cols_le` and `values_le` (u16).
    FixedWidth,
}

impl MatrixForm {
    /// The form `m` is in: fixed-width when `row_offsets_le` is set.
    pub fn of(m: Option<&pb::SparseMatrix>) -> Self {
        match m {
            Some(m) if !m.row_offsets_le.is_empty() => Self::FixedWidth,
            _ => Self::Packed,
        }
    }

    /// The form of an epoch's weights, which its output's bonds come back in.
    pub fn of_input(p: &pb::EpochInput) -> Self {
        Self::of(p.weights.as_ref())
    }
}

/// About how many values converting `p` touches: its matrix entries and per-uid stakes.
/// Sizes the work before deciding whether it is worth handing to other threads.
pub fn input_size(p: &pb::EpochInput) -> usize {
    let entries =
        |m: &Option<pb::SparseMatrix>| m.as_ref().map_or(0, |m| m.cols.len() + m.cols_le.len() / 2);
    entries(&p.weights) + entries(&p.bonds) + p.alpha_stake.len()
}

/// Field names of one matrix, so errors say `weights.cols` rather than `cols`.
struct CsrFields {
    offsets: &'static str,
    cols: &'static str,
    values: &'static str,
    offsets_le: &'static str,
    cols_le: &'static str,
    values_le: &'static str,
}

const WEIGHTS: CsrFields = CsrFields {
    offsets: "weights.row_offsets",
    cols: "weights.cols",
    values: "weights.values",
    offsets_le: "weights.row_offsets_le",
    cols_le: "weights.cols_le",
    values_le: "weights.values_le",
};
const BONDS: CsrFields = CsrFields {
    offsets: "bonds.row_offsets",
    cols: "bonds.cols",
    values: "bonds.values",
    offsets_le: "bonds.row_offsets_le",
    cols_le: "bonds.cols_le",
    values_le: "bonds.values_le",
};

/// Checks and converts one CSR matrix of `n` rows, in either form.
fn matrix_from_proto(
    f: &CsrFields,
    m: Option<pb::SparseMatrix>,
    n: usize,
) -> Result<SparseMatrix, ProtoError> {
    let m = m.unwrap_or_default();
    if MatrixForm::of(Some(&m)) == MatrixForm::FixedWidth {
        return fixed_width_from_proto(f, m, n);
    }
    if !m.cols_le.is_empty() || !m.values_le.is_empty() {
        return Err(ProtoError::Csr {
            field: f.offsets_le,
            uid: None,
            reason: format!("is empty while `{}` or `{}` is set", f.cols_le, f.values_le),
        });
    }
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
    check_offsets(f.offsets, &m.row_offsets, m.cols.len())?;
    let nnz = m.cols.len();
    let mut cols = Vec::with_capacity(nnz);
    let mut vals = Vec::with_capacity(nnz);
    for uid in 0..n {
        let (a, b) = (m.row_offsets[uid] as usize, m.row_offsets[uid + 1] as usize);
        for k in a..b {
            cols.push(u16_of(f.cols, Some(uid), m.cols[k])?);
            vals.push(u16_of(f.values, Some(uid), m.values[k])?);
        }
    }
    Ok(SparseMatrix {
        offsets: m.row_offsets,
        cols,
        vals,
    })
}

/// The fixed-width form: byte lengths first, then the same CSR checks as the packed form.
fn fixed_width_from_proto(
    f: &CsrFields,
    m: pb::SparseMatrix,
    n: usize,
) -> Result<SparseMatrix, ProtoError> {
    if !m.row_offsets.is_empty() || !m.cols.is_empty() || !m.values.is_empty() {
        return Err(ProtoError::Csr {
            field: f.offsets_le,
            uid: None,
            reason: format!(
                "is set together with `{}`, `{}` or `{}`: a matrix takes one form",
                f.offsets, f.cols, f.values
            ),
        });
    }
    if m.row_offsets_le.len() != 4 * (n + 1) {
        return Err(ProtoError::Length {
            field: f.offsets_le,
            got: m.row_offsets_le.len(),
            expected: 4 * (n + 1),
        });
    }
    if !m.cols_le.len().is_multiple_of(2) {
        return Err(ProtoError::Csr {
            field: f.cols_le,
            uid: None,
            reason: format!("holds {} bytes, not a whole number of u16", m.cols_le.len()),
        });
    }
    if m.values_le.len() != m.cols_le.len() {
        return Err(ProtoError::Length {
            field: f.values_le,
            got: m.values_le.len(),
            expected: m.cols_le.len(),
        });
    }
    let offsets: Vec<u32> = from_le(&m.row_offsets_le);
    let cols: Vec<u16> = from_le(&m.cols_le);
    check_offsets(f.offsets_le, &offsets, cols.len())?;
    Ok(SparseMatrix {
        offsets,
        vals: from_le(&m.values_le),
        cols,
    })
}

/// Integers that travel as fixed-width little-endian bytes.
trait LittleEndian: bytemuck::Pod {
    /// The value with its bytes swapped when this machine is big-endian.
    fn to_from_le(self) -> Self;
}

impl LittleEndian for u16 {
    fn to_from_le(self) -> Self {
        self.to_le()
    }
}

impl LittleEndian for u32 {
    fn to_from_le(self) -> Self {
        self.to_le()
    }
}

/// Little-endian bytes to values: one copy (callers have checked the length is a whole
/// number of `T`).
fn from_le<T: LittleEndian>(bytes: &[u8]) -> Vec<T> {
    let mut out = vec![T::zeroed(); bytes.len() / size_of::<T>()];
    bytemuck::cast_slice_mut::<T, u8>(&mut out).copy_from_slice(bytes);
    if cfg!(target_endian = "big") {
        out.iter_mut().for_each(|v| *v = v.to_from_le());
    }
    out
}

/// Values to little-endian bytes: one copy.
fn to_le<T: LittleEndian>(values: &[T]) -> Vec<u8> {
    if cfg!(target_endian = "big") {
        let swapped: Vec<T> = values.iter().map(|v| v.to_from_le()).collect();
        return bytemuck::cast_slice(&swapped).to_vec();
    }
    bytemuck::cast_slice(values).to_vec()
}

/// `offsets` (n + 1 entries) start at 0, never decrease and end at `nnz`.
fn check_offsets(field: &'static str, offsets: &[u32], nnz: usize) -> Result<(), ProtoError> {
    if offsets[0] != 0 {
        return Err(ProtoError::Csr {
            field,
            uid: None,
            reason: format!("starts at {}, not 0", offsets[0]),
        });
    }
    for (uid, w) in offsets.windows(2).enumerate() {
        let (a, b) = (w[0] as usize, w[1] as usize);
        if b < a {
            return Err(ProtoError::Csr {
                field,
                uid: Some(uid),
                reason: format!("row ends at {b}, before its start {a}"),
            });
        }
        if b > nnz {
            return Err(ProtoError::Csr {
                field,
                uid: Some(uid),
                reason: format!("row ends at {b}, past the {nnz} entries"),
            });
        }
    }
    let last = offsets[offsets.len() - 1];
    if last as usize != nnz {
        return Err(ProtoError::Csr {
            field,
            uid: None,
            reason: format!("ends at {last}, not at the {nnz} entries"),
        });
    }
    Ok(())
}

/// CSR matrix to protobuf in `form`.
fn matrix_to_proto(m: &SparseMatrix, form: MatrixForm) -> pb::SparseMatrix {
    match form {
        MatrixForm::Packed => pb::SparseMatrix {
            row_offsets: m.offsets.clone(),
            cols: m.cols.iter().map(|&c| c.into()).collect(),
            values: m.vals.iter().map(|&v| v.into()).collect(),
            ..Default::default()
        },
        MatrixForm::FixedWidth => pb::SparseMatrix {
            row_offsets_le: to_le(&m.offsets).into(),
            cols_le: to_le(&m.cols).into(),
            values_le: to_le(&m.vals).into(),
            ..Default::default()
        },
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

/// `n` as a uid count, refused above u16 uids or the server's `max_n`.
fn check_n(n: u32, max_n: u32) -> Result<usize, ProtoError> {
    if n > u16::MAX.into() {
        return Err(ProtoError::TooManyUids {
            n,
            limit: u16::MAX.into(),
            which: "uids are u16",
        });
    }
    if n > max_n {
        return Err(ProtoError::TooManyUids {
            n,
            limit: max_n,
            which: "the server's --max-n",
        });
    }
    Ok(n as usize)
}

/// Converts and validates one protobuf epoch; `max_n` is the server's limit on n.
pub fn input_from_proto(p: pb::EpochInput, max_n: u32) -> Result<EpochInput, ProtoError> {
    let n = check_n(p.n, max_n)?;
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

/// Converts one epoch input to protobuf with its matrices in `form` (the client side).
pub fn input_to_proto(i: &EpochInput, form: MatrixForm) -> pb::EpochInput {
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
        commit_block_present: commit_block_present.into(),
        emission: i.emission,
        alpha_stake: i.alpha_stake.clone(),
        tao_stake: i.tao_stake.clone(),
        last_update: i.last_update.clone(),
        block_at_registration: i.block_at_registration.clone(),
        validator_permit: i.validator_permit.clone(),
        weights: Some(matrix_to_proto(&i.weights, form)),
        bonds: Some(matrix_to_proto(&i.bonds, form)),
    }
}

/// Converts one epoch output to protobuf, its bonds in `form` (the server side).
pub fn output_to_proto(o: EpochOutput, form: MatrixForm) -> pb::EpochOutput {
    let widen = |v: Vec<u16>| v.into_iter().map(u32::from).collect();
    pb::EpochOutput {
        bonds: Some(matrix_to_proto(&o.bonds, form)),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Both forms carry a matrix exactly, unsorted rows, explicit zeros and uids >= n
    /// included, and the fixed-width bytes are little-endian.
    #[test]
    fn matrices_round_trip_in_both_forms() {
        let m = SparseMatrix::from_rows(&[
            vec![(3, 0), (1, 65_535), (9, 7)],
            vec![],
            vec![(0, 1), (2, 300)],
        ]);
        for form in [MatrixForm::Packed, MatrixForm::FixedWidth] {
            let p = matrix_to_proto(&m, form);
            assert_eq!(MatrixForm::of(Some(&p)), form);
            assert_eq!(matrix_from_proto(&WEIGHTS, Some(p), 3), Ok(m.clone()));
        }
        let p = matrix_to_proto(&m, MatrixForm::FixedWidth);
        assert_eq!(p.row_offsets_le[..8], [0, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(p.values_le[2..4], [0xFF, 0xFF]);
        assert_eq!(p.cols_le[8..10], [2, 0]);
    }
}
