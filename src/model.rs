//! Epoch inputs and outputs (conformance format v1), their JSON form and their validation.
//!
//! Sparse rows are held as CSR ([`SparseMatrix`]): one flat column array and one flat
//! value array, with row offsets, in storage order. JSON carries u64 values that may
//! exceed 2^53 as decimal strings; inputs accept a number or a string for every u64.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

mod json;
pub mod subnet;

pub use json::{FromJson, ToJson};

/// Sparse u16 matrix in CSR form, rows kept in storage order (unsorted rows, explicit
/// zeros and column uids >= n are all preserved).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SparseMatrix {
    /// `offsets[i]..offsets[i + 1]` indexes row i in `cols`/`vals`; length rows + 1.
    pub offsets: Vec<u32>,
    /// Column uid of each entry.
    pub cols: Vec<u16>,
    /// Value of each entry.
    pub vals: Vec<u16>,
}

impl SparseMatrix {
    /// An empty matrix of `rows` empty rows.
    pub fn empty(rows: usize) -> Self {
        Self {
            offsets: vec![0; rows + 1],
            cols: Vec::new(),
            vals: Vec::new(),
        }
    }

    /// Builds a matrix from rows of `(column, value)` pairs.
    pub fn from_rows<R: AsRef<[(u16, u16)]>>(rows: &[R]) -> Self {
        let mut m = Self {
            offsets: Vec::with_capacity(rows.len() + 1),
            cols: Vec::new(),
            vals: Vec::new(),
        };
        m.offsets.push(0);
        for row in rows {
            for &(c, v) in row.as_ref() {
                m.cols.push(c);
                m.vals.push(v);
            }
            m.offsets.push(m.cols.len() as u32);
        }
        m
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.cols.len()
    }

    /// Row `i` as (columns, values).
    pub fn row(&self, i: usize) -> (&[u16], &[u16]) {
        let (a, b) = (self.offsets[i] as usize, self.offsets[i + 1] as usize);
        (&self.cols[a..b], &self.vals[a..b])
    }

    /// Row `i` as `(column, value)` pairs.
    pub fn row_pairs(&self, i: usize) -> impl Iterator<Item = (u16, u16)> + '_ {
        let (c, v) = self.row(i);
        c.iter().copied().zip(v.iter().copied())
    }

    /// The rows as nested `(column, value)` vectors.
    pub fn to_rows(&self) -> Vec<Vec<(u16, u16)>> {
        (0..self.rows())
            .map(|i| self.row_pairs(i).collect())
            .collect()
    }
}

impl Serialize for SparseMatrix {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        // Rows are written straight from the CSR arrays: no nested vectors on the way out.
        struct Row<'a>(&'a [u16], &'a [u16]);
        impl Serialize for Row<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(Some(self.0.len()))?;
                for pair in self.0.iter().zip(self.1) {
                    seq.serialize_element(&pair)?;
                }
                seq.end()
            }
        }
        let mut seq = s.serialize_seq(Some(self.rows()))?;
        for i in 0..self.rows() {
            let (c, v) = self.row(i);
            seq.serialize_element(&Row(c, v))?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for SparseMatrix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{DeserializeSeed, SeqAccess, Visitor};
        // Rows are read straight into the CSR arrays: no vector per row on the way in.
        struct Rows;
        struct RowInto<'a>(&'a mut SparseMatrix);
        impl<'de> Visitor<'de> for Rows {
            type Value = SparseMatrix;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of rows of [uid, value] pairs")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SparseMatrix, A::Error> {
                let mut m = SparseMatrix::empty(0);
                while seq.next_element_seed(RowInto(&mut m))?.is_some() {
                    if m.cols.len() > u32::MAX as usize {
                        return Err(serde::de::Error::custom("more than 2^32 entries"));
                    }
                    m.offsets.push(m.cols.len() as u32);
                }
                Ok(m)
            }
        }
        impl<'de> DeserializeSeed<'de> for RowInto<'_> {
            type Value = ();
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
                d.deserialize_seq(self)
            }
        }
        impl<'de> Visitor<'de> for RowInto<'_> {
            type Value = ();
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a row of [uid, value] pairs")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
                while let Some((c, v)) = seq.next_element::<(u16, u16)>()? {
                    self.0.cols.push(c);
                    self.0.vals.push(v);
                }
                Ok(())
            }
        }
        d.deserialize_seq(Rows)
    }
}

/// The chain state one `epoch_mechanism` call reads (FORMAT.md `input`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochInput {
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
    /// Per uid: earliest unexpired commit block, or none.
    pub commit_block: Vec<Option<u64>>,
    /// Rao to distribute this epoch.
    #[serde(with = "u64_str")]
    pub emission: u64,
    /// Per uid inherited alpha stake.
    #[serde(with = "u64_vec")]
    pub alpha_stake: Vec<u64>,
    /// Per uid inherited tao stake.
    #[serde(with = "u64_vec")]
    pub tao_stake: Vec<u64>,
    /// Per uid block of the last weight update.
    pub last_update: Vec<u64>,
    /// Per uid registration block.
    pub block_at_registration: Vec<u64>,
    /// Per uid validator permit held before this epoch.
    pub validator_permit: Vec<bool>,
    /// Weight rows in storage order.
    pub weights: SparseMatrix,
    /// Bond rows in storage order.
    pub bonds: SparseMatrix,
    /// Runtime spec version whose rules to run (ERAS.md): the era at or below it.
    /// Absent: today's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_version: Option<u32>,
}

/// Everything one epoch writes back (FORMAT.md `output`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochOutput {
    /// Per uid: updated within the activity cutoff.
    pub active: Vec<bool>,
    /// Per uid total stake (alpha + tao * tao_weight), rao; absent before spec 397.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_u64_vec")]
    pub stake: Option<Vec<u64>>,
    /// Per uid normalised stake as a u16 proportion.
    pub stake_weight: Vec<u16>,
    /// Per uid rank (Rank storage, u16); only before spec 365.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<Vec<u16>>,
    /// Per uid trust, clipped over unclipped rank (Trust storage, u16); only before spec 365.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<Vec<u16>>,
    /// Per uid consensus.
    pub consensus: Vec<u16>,
    /// Per uid incentive.
    pub incentive: Vec<u16>,
    /// Per uid dividend.
    pub dividend: Vec<u16>,
    /// Per uid validator trust.
    pub validator_trust: Vec<u16>,
    /// Per uid permit after this epoch.
    pub new_validator_permit: Vec<bool>,
    /// Per uid combined emission, rao.
    #[serde(with = "u64_vec")]
    pub emission: Vec<u64>,
    /// Per uid server (incentive) emission, rao.
    #[serde(with = "u64_vec")]
    pub server_emission: Vec<u64>,
    /// Per uid validator (dividend) emission, rao.
    #[serde(with = "u64_vec")]
    pub validator_emission: Vec<u64>,
    /// Per uid pruning score (PruningScores storage, u16); only before spec 365.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruning_score: Option<Vec<u16>>,
    /// Per uid stored bond row (empty for uids without a new permit; before spec 320,
    /// the input row for uids with neither an old nor a new permit).
    pub bonds: SparseMatrix,
}

/// A conformance case: an input and, optionally, the chain's output for it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Case {
    /// Format version; must be 1.
    pub format: u32,
    /// Case name.
    #[serde(default)]
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// The epoch's input.
    pub input: EpochInput,
    /// The expected output, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<EpochOutput>,
}

/// Why an input was rejected: names the field, the uid where there is one, and the reason.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum InputError {
    /// JSON that does not decode into the format.
    #[error("invalid JSON at `{path}`: {reason}")]
    Json {
        /// Path of the offending field.
        path: String,
        /// What the decoder said.
        reason: String,
    },
    /// A per-uid array whose length is not n.
    #[error("field `{field}` has length {got}, expected n = {n}")]
    Length {
        /// Field name.
        field: &'static str,
        /// Its length.
        got: usize,
        /// n.
        n: usize,
    },
    /// CSR offsets, columns and values that do not describe one matrix.
    #[error("field `{field}`: inconsistent sparse rows (offsets, columns and values disagree)")]
    Csr {
        /// `weights` or `bonds`.
        field: &'static str,
    },
    /// `owner_uid` outside `0..n`.
    #[error("field `owner_uid` is {owner}, not below n = {n}")]
    Owner {
        /// The owner uid.
        owner: u16,
        /// n.
        n: u16,
    },
    /// A column uid stored twice in one row (the chain rejects such rows).
    #[error("field `{field}` row of uid {uid} holds column uid {col} twice")]
    DuplicateUid {
        /// `weights` or `bonds`.
        field: &'static str,
        /// Row uid.
        uid: usize,
        /// Column uid.
        col: u16,
    },
    /// `bonds_moving_average` above 1,000,000 parts per million.
    #[error(
        "field `bonds_moving_average` is {0}, above 1000000 (a proportion in parts per million)"
    )]
    BondsMovingAverage(u64),
    /// A format version other than 1 (one mechanism) or 2 (a subnet).
    #[error("field `format` is {0}, only formats 1 and 2 are supported")]
    Format(u32),
    /// A `spec_version` before dTAO, whose rules are not known here.
    #[error("field `spec_version` is {0}, below 233 (dTAO): no rule set before it is known")]
    SpecVersion(u32),
    /// A value the era's storage could not hold or its epoch could not read.
    #[error("field `{field}` {reason} (spec_version {spec})")]
    Era {
        /// Field name.
        field: &'static str,
        /// The input's spec version.
        spec: u32,
        /// What is wrong with it in that era.
        reason: String,
    },
    /// The sum of total stakes overflows I64F64 (the chain's sum would wrap).
    #[error("fields `alpha_stake`/`tao_stake`: the total stake sum overflows I64F64 at uid {uid}")]
    StakeOverflow {
        /// First uid at which the running sum overflows.
        uid: usize,
    },
}

impl EpochInput {
    /// Checks shapes and ranges, naming the field and uid of the first problem.
    ///
    /// Everything the chain can hold is accepted: unsorted rows, explicit zeros and column
    /// uids >= n. What the stake step can overflow is checked where it is computed.
    pub fn validate(&self) -> Result<(), InputError> {
        let n = self.n as usize;
        let lens: [(&'static str, usize); 8] = [
            ("commit_block", self.commit_block.len()),
            ("alpha_stake", self.alpha_stake.len()),
            ("tao_stake", self.tao_stake.len()),
            ("last_update", self.last_update.len()),
            ("block_at_registration", self.block_at_registration.len()),
            ("validator_permit", self.validator_permit.len()),
            ("weights", self.weights.rows()),
            ("bonds", self.bonds.rows()),
        ];
        for (field, got) in lens {
            if got != n {
                return Err(InputError::Length { field, got, n });
            }
        }
        if let Some(owner) = self.owner_uid
            && owner >= self.n
        {
            return Err(InputError::Owner { owner, n: self.n });
        }
        if self.bonds_moving_average > 1_000_000 {
            return Err(InputError::BondsMovingAverage(self.bonds_moving_average));
        }
        check_matrix("weights", &self.weights)?;
        check_matrix("bonds", &self.bonds)
    }
}

/// CSR consistency and no duplicate column within a row.
fn check_matrix(field: &'static str, m: &SparseMatrix) -> Result<(), InputError> {
    let nnz = m.cols.len();
    if m.vals.len() != nnz
        || m.offsets.first().is_some_and(|&o| o != 0)
        || !ascending(&m.offsets, |a, b| a <= b)
        || m.offsets.last().is_some_and(|&o| o as usize != nnz)
    {
        return Err(InputError::Csr { field });
    }
    // One bit per possible column uid, cleared after each row: O(nnz) overall.
    let mut seen = vec![0u64; 1024];
    for i in 0..m.rows() {
        let (cols, _) = m.row(i);
        if ascending(cols, |a, b| a < b) {
            // Strictly ascending rows (the common case) cannot hold a duplicate.
            continue;
        }
        let mut dup = None;
        for &c in cols {
            let (w, b) = (c as usize / 64, 1u64 << (c % 64));
            if seen[w] & b != 0 {
                dup = Some(c);
                break;
            }
            seen[w] |= b;
        }
        for &c in cols {
            seen[c as usize / 64] = 0;
        }
        if let Some(col) = dup {
            return Err(InputError::DuplicateUid { field, uid: i, col });
        }
    }
    Ok(())
}

/// Whether `ok` holds for every adjacent pair: no early exit, so it vectorises.
fn ascending<T: Copy>(x: &[T], ok: impl Fn(T, T) -> bool) -> bool {
    x.windows(2).fold(true, |all, w| all & ok(w[0], w[1]))
}

/// Decodes any serde type from JSON with the failing path in the error.
pub fn decode<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, InputError> {
    // Tracking the path costs about half the read; only a failed read needs it.
    if let Ok(v) = serde_json::from_str(text) {
        return Ok(v);
    }
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| InputError::Json {
        path: e.path().to_string(),
        reason: e.inner().to_string(),
    })
}

/// u64 written as a decimal string, read from a string or a number.
mod u64_str {
    use serde::de::{Error, Visitor};
    use serde::{Deserializer, Serializer};

    /// Accepts a JSON number or a string of decimal digits, without buffering either.
    pub(super) struct U64Visitor;

    impl Visitor<'_> for U64Visitor {
        type Value = u64;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a u64 as a number or a decimal string")
        }

        fn visit_u64<E: Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }

        fn visit_i64<E: Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom(format!("{v} is negative, expected a u64")))
        }

        fn visit_f64<E: Error>(self, v: f64) -> Result<u64, E> {
            Err(E::custom(format!("{v} is not an integer, expected a u64")))
        }

        fn visit_str<E: Error>(self, s: &str) -> Result<u64, E> {
            // Digits only: `u64::from_str` would also take a leading `+`.
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(E::custom(format!("`{s}` is not a u64 in decimal digits")));
            }
            s.parse()
                .map_err(|_| E::custom(format!("`{s}` is not a u64 in decimal digits")))
        }
    }

    /// Writes `v` as a JSON string through a stack buffer (no allocation).
    pub(super) fn write<S: Serializer>(v: u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(itoa::Buffer::new().format(v))
    }

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        write(*v, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(U64Visitor)
    }
}

/// `Option<Vec<u64>>` as decimal strings, for fields some eras do not write.
mod opt_u64_vec {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u64>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => super::u64_vec::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u64>>, D::Error> {
        super::u64_vec::deserialize(d).map(Some)
    }
}

/// `Vec<u64>` written as decimal strings, read from numbers or strings element by element.
mod u64_vec {
    use super::u64_str::{U64Visitor, write};
    use serde::de::{DeserializeSeed, SeqAccess, Visitor};
    use serde::ser::SerializeSeq;
    use serde::{Deserializer, Serialize, Serializer};

    struct Str(u64);

    impl Serialize for Str {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            write(self.0, s)
        }
    }

    pub fn serialize<S: Serializer>(v: &[u64], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for &x in v {
            seq.serialize_element(&Str(x))?;
        }
        seq.end()
    }

    struct Element;

    impl<'de> DeserializeSeed<'de> for Element {
        type Value = u64;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
            d.deserialize_any(U64Visitor)
        }
    }

    struct Elements;

    impl<'de> Visitor<'de> for Elements {
        type Value = Vec<u64>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of u64 (numbers or decimal strings)")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u64>, A::Error> {
            // The element index is in the error's path (serde_path_to_error).
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
            while let Some(v) = seq.next_element_seed(Element)? {
                out.push(v);
            }
            Ok(out)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
        d.deserialize_seq(Elements)
    }
}

/// The first field where two outputs differ: field name, uid and both values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Output field.
    pub field: &'static str,
    /// First differing uid (row for `bonds`), or `None` for a length difference.
    pub uid: Option<usize>,
    /// Expected value, as text.
    pub expected: String,
    /// Computed value, as text.
    pub got: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.uid {
            Some(uid) => write!(
                f,
                "`{}` differs at uid {}: expected {}, got {}",
                self.field, uid, self.expected, self.got
            ),
            None => write!(
                f,
                "`{}` differs in length: expected {}, got {}",
                self.field, self.expected, self.got
            ),
        }
    }
}

fn first_diff<T: PartialEq + std::fmt::Debug>(
    field: &'static str,
    e: &[T],
    g: &[T],
) -> Option<Mismatch> {
    if e.len() != g.len() {
        return Some(Mismatch {
            field,
            uid: None,
            expected: e.len().to_string(),
            got: g.len().to_string(),
        });
    }
    let uid = e.iter().zip(g).position(|(a, b)| a != b)?;
    Some(Mismatch {
        field,
        uid: Some(uid),
        expected: format!("{:?}", e[uid]),
        got: format!("{:?}", g[uid]),
    })
}

/// [`first_diff`] of a field some eras do not write: present on one side only differs.
fn opt_diff<T: PartialEq + std::fmt::Debug>(
    field: &'static str,
    e: &Option<Vec<T>>,
    g: &Option<Vec<T>>,
) -> Option<Mismatch> {
    match (e, g) {
        (Some(e), Some(g)) => first_diff(field, e, g),
        (None, None) => None,
        (e, g) => Some(Mismatch {
            field,
            uid: None,
            expected: if e.is_some() { "present" } else { "absent" }.into(),
            got: if g.is_some() { "present" } else { "absent" }.into(),
        }),
    }
}

impl EpochOutput {
    /// Compares every field exactly against `got`, returning the first difference.
    pub fn first_difference(&self, got: &EpochOutput) -> Option<Mismatch> {
        first_diff("active", &self.active, &got.active)
            .or_else(|| opt_diff("stake", &self.stake, &got.stake))
            .or_else(|| first_diff("stake_weight", &self.stake_weight, &got.stake_weight))
            .or_else(|| opt_diff("rank", &self.rank, &got.rank))
            .or_else(|| opt_diff("trust", &self.trust, &got.trust))
            .or_else(|| first_diff("consensus", &self.consensus, &got.consensus))
            .or_else(|| first_diff("incentive", &self.incentive, &got.incentive))
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
            .or_else(|| first_diff("emission", &self.emission, &got.emission))
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
            .or_else(|| opt_diff("pruning_score", &self.pruning_score, &got.pruning_score))
            .or_else(|| first_diff("bonds", &self.bonds.to_rows(), &got.bonds.to_rows()))
    }
}

/// The `*.json` case files directly in `dir`, sorted by name.
pub fn case_files(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    Ok(files)
}
