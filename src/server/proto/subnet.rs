//! Protobuf <-> model conversion of subnet epochs (`SubnetInput`, `SubnetOutput`), with the
//! same checks as one epoch's and errors that name the mechanism.

use thiserror::Error;

use super::{
    BONDS, MatrixForm, ProtoError, WEIGHTS, check_n, commit_from_proto, commit_to_proto,
    input_from_proto, input_to_proto, matrix_from_proto, matrix_to_proto, output_from_proto,
    output_to_proto, per_uid, u16_of,
};
use crate::model::SparseMatrix;
use crate::model::subnet::{
    MAX_MECHANISMS, MechanismInput, MechanismOutput, SubnetError, SubnetInput, SubnetOutput,
    SubnetTerms,
};
use crate::server::pb;

/// Why a protobuf subnet does not convert.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SubnetProtoError {
    /// A required message field is absent.
    #[error("field `{0}` is missing")]
    Missing(&'static str),
    /// `shared` sets a field that each mechanism carries for itself.
    #[error("field `shared.{0}` must be empty: each mechanism carries its own")]
    SharedHolds(&'static str),
    /// A shared field is malformed.
    #[error("shared: {0}")]
    Shared(ProtoError),
    /// One mechanism's field is malformed.
    #[error("mechanism {mechanism}: {source}")]
    Mechanism {
        /// Mechanism index.
        mechanism: usize,
        /// What is wrong with its field.
        source: ProtoError,
    },
    /// An emission split entry above u16.
    #[error("field `emission_split.shares` entry {index} is {value}, above 65535")]
    SplitRange {
        /// Entry index.
        index: usize,
        /// Its value.
        value: u32,
    },
    /// A folded subnet term is malformed (the client side).
    #[error("subnet terms: {0}")]
    Terms(ProtoError),
    /// The model's own validation (mechanism count, split) refused the subnet.
    #[error(transparent)]
    Subnet(#[from] SubnetError),
}

/// The form of mechanism 0's weights, which every returned bonds matrix comes back in.
pub fn form_of(p: &pb::SubnetInput) -> MatrixForm {
    p.mechanisms
        .first()
        .map_or(MatrixForm::Packed, |m| MatrixForm::of(m.weights.as_ref()))
}

/// About how many values converting `p` touches (see [`super::input_size`]).
pub fn subnet_size(p: &pb::SubnetInput) -> usize {
    let entries =
        |m: &Option<pb::SparseMatrix>| m.as_ref().map_or(0, |m| m.cols.len() + m.cols_le.len() / 2);
    p.shared.as_ref().map_or(0, super::input_size)
        + p.mechanisms
            .iter()
            .map(|m| entries(&m.weights) + entries(&m.bonds))
            .sum::<usize>()
}

/// Whether a matrix field is unset or holds nothing.
fn matrix_is_empty(m: &Option<pb::SparseMatrix>) -> bool {
    m.as_ref().is_none_or(|m| {
        m.row_offsets.is_empty()
            && m.cols.is_empty()
            && m.values.is_empty()
            && m.row_offsets_le.is_empty()
            && m.cols_le.is_empty()
            && m.values_le.is_empty()
    })
}

/// Converts one mechanism's storage for a subnet of `n` uids.
fn mechanism_from_proto(m: pb::MechanismInput, n: usize) -> Result<MechanismInput, ProtoError> {
    Ok(MechanismInput {
        last_update: per_uid("last_update", m.last_update, n)?,
        commit_block: commit_from_proto(m.commit_block, &m.commit_block_present, n)?,
        weights: matrix_from_proto(&WEIGHTS, m.weights, n)?,
        bonds: matrix_from_proto(&BONDS, m.bonds, n)?,
    })
}

/// Converts and validates one protobuf subnet; `max_n` is the server's limit on n.
pub fn subnet_from_proto(p: pb::SubnetInput, max_n: u32) -> Result<SubnetInput, SubnetProtoError> {
    let count = p.mechanisms.len();
    if !(1..=MAX_MECHANISMS).contains(&count) {
        return Err(SubnetError::MechanismCount(count).into());
    }
    let mut shared = p.shared.ok_or(SubnetProtoError::Missing("shared"))?;
    let n = check_n(shared.n, max_n).map_err(SubnetProtoError::Shared)?;
    let own: [(&'static str, bool); 5] = [
        ("last_update", shared.last_update.is_empty()),
        ("commit_block", shared.commit_block.is_empty()),
        (
            "commit_block_present",
            shared.commit_block_present.is_empty(),
        ),
        ("weights", matrix_is_empty(&shared.weights)),
        ("bonds", matrix_is_empty(&shared.bonds)),
    ];
    if let Some((field, _)) = own.iter().find(|(_, empty)| !empty) {
        return Err(SubnetProtoError::SharedHolds(field));
    }
    // The shared fields convert as one epoch whose own storage is empty; each mechanism's
    // storage then replaces it.
    let empty = matrix_to_proto(&SparseMatrix::empty(n), MatrixForm::Packed);
    shared.last_update = vec![0; n];
    shared.weights = Some(empty.clone());
    shared.bonds = Some(empty);
    let epoch = input_from_proto(shared, max_n).map_err(SubnetProtoError::Shared)?;
    let mut subnet = SubnetInput::from_epoch(epoch);
    subnet.mechanisms = p
        .mechanisms
        .into_iter()
        .enumerate()
        .map(|(mechanism, m)| {
            mechanism_from_proto(m, n)
                .map_err(|source| SubnetProtoError::Mechanism { mechanism, source })
        })
        .collect::<Result<_, _>>()?;
    subnet.emission_split = p
        .emission_split
        .map(|s| {
            s.shares
                .into_iter()
                .enumerate()
                .map(|(index, value)| {
                    u16::try_from(value).map_err(|_| SubnetProtoError::SplitRange { index, value })
                })
                .collect::<Result<Vec<u16>, _>>()
        })
        .transpose()?;
    subnet.validate()?;
    Ok(subnet)
}

/// Converts one subnet to protobuf with its matrices in `form` (the client side).
pub fn subnet_to_proto(s: &SubnetInput, form: MatrixForm) -> pb::SubnetInput {
    let mut shared = input_to_proto(&s.mechanism_epoch(0, s.emission), form);
    shared.last_update = Vec::new();
    shared.commit_block = Vec::new();
    shared.commit_block_present = Default::default();
    shared.weights = None;
    shared.bonds = None;
    pb::SubnetInput {
        shared: Some(shared),
        mechanisms: s
            .mechanisms
            .iter()
            .map(|m| {
                let (commit_block, present) = commit_to_proto(&m.commit_block);
                pb::MechanismInput {
                    last_update: m.last_update.clone(),
                    commit_block,
                    commit_block_present: present.into(),
                    weights: Some(matrix_to_proto(&m.weights, form)),
                    bonds: Some(matrix_to_proto(&m.bonds, form)),
                }
            })
            .collect(),
        emission_split: s.emission_split.as_ref().map(|v| pb::EmissionSplit {
            shares: v.iter().map(|&x| x.into()).collect(),
        }),
    }
}

/// Converts one subnet output to protobuf, its bonds in `form` (the server side).
pub fn subnet_output_to_proto(o: SubnetOutput, form: MatrixForm) -> pb::SubnetOutput {
    let widen = |v: Vec<u16>| v.into_iter().map(u32::from).collect();
    let t = o.subnet;
    pb::SubnetOutput {
        mechanisms: o
            .mechanisms
            .into_iter()
            .map(|m| pb::MechanismOutput {
                emission: m.emission,
                output: Some(output_to_proto(m.output, form)),
            })
            .collect(),
        subnet: Some(pb::SubnetTerms {
            active: t.active,
            emission: t.emission,
            consensus: widen(t.consensus),
            dividend: widen(t.dividend),
            validator_trust: widen(t.validator_trust),
            new_validator_permit: t.new_validator_permit,
            stake_weight: widen(t.stake_weight),
            server_emission: t.server_emission,
            validator_emission: t.validator_emission,
            stake: t.stake,
            incentive: widen(t.incentive),
        }),
    }
}

/// Converts one protobuf subnet output back (the client side); `n` is the subnet's n.
pub fn subnet_output_from_proto(
    p: pb::SubnetOutput,
    n: usize,
) -> Result<SubnetOutput, SubnetProtoError> {
    let mechanisms = p
        .mechanisms
        .into_iter()
        .enumerate()
        .map(|(mechanism, m)| {
            let output = m.output.ok_or(SubnetProtoError::Missing("output"))?;
            Ok(MechanismOutput {
                emission: m.emission,
                output: output_from_proto(output, n)
                    .map_err(|source| SubnetProtoError::Mechanism { mechanism, source })?,
            })
        })
        .collect::<Result<_, SubnetProtoError>>()?;
    let t = p.subnet.ok_or(SubnetProtoError::Missing("subnet"))?;
    let narrow = |field: &'static str, v: Vec<u32>| -> Result<Vec<u16>, SubnetProtoError> {
        v.into_iter()
            .enumerate()
            .map(|(uid, x)| u16_of(field, Some(uid), x))
            .collect::<Result<_, _>>()
            .map_err(SubnetProtoError::Terms)
    };
    Ok(SubnetOutput {
        mechanisms,
        subnet: SubnetTerms {
            consensus: narrow("consensus", t.consensus)?,
            dividend: narrow("dividend", t.dividend)?,
            validator_trust: narrow("validator_trust", t.validator_trust)?,
            stake_weight: narrow("stake_weight", t.stake_weight)?,
            incentive: narrow("incentive", t.incentive)?,
            active: t.active,
            emission: t.emission,
            new_validator_permit: t.new_validator_permit,
            server_emission: t.server_emission,
            validator_emission: t.validator_emission,
            stake: t.stake,
        },
    })
}
