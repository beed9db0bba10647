//! Compares a recomputed subnet epoch with what the chain stored, and infers the emission
//! an epoch distributed from the stored `Emission` (the chain does not store the total).

use super::snapshot::StoredOutputs;
use crate::epoch::emission::in_rao;
use crate::epoch::mechanisms::{
    acc_u64, mechanism_error, mechanism_weight, split_emission, validate_subnet,
};
use crate::epoch::run_epoch;
use crate::fixed::I32F32;
use crate::model::SparseMatrix;
use crate::model::subnet::{SubnetError, SubnetInput, SubnetOutput};

/// One stored value that the recomputation does not reproduce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// Storage item.
    pub item: &'static str,
    /// Mechanism, for per-mechanism items.
    pub mechanism: Option<usize>,
    /// Uid (row for `Bonds`), or `None` for a length difference.
    pub uid: Option<usize>,
    /// What the chain stored.
    pub stored: String,
    /// What yuma computed.
    pub computed: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.item)?;
        if let Some(m) = self.mechanism {
            write!(f, " (mechanism {m})")?;
        }
        match self.uid {
            Some(u) => write!(f, " uid {u}")?,
            None => write!(f, " length")?,
        }
        write!(
            f,
            ": chain stored {}, yuma computed {}",
            self.stored, self.computed
        )
    }
}

fn first<T: PartialEq + std::fmt::Debug>(
    item: &'static str,
    mechanism: Option<usize>,
    stored: &[T],
    computed: &[T],
    out: &mut Vec<Difference>,
) {
    if stored.len() != computed.len() {
        out.push(Difference {
            item,
            mechanism,
            uid: None,
            stored: stored.len().to_string(),
            computed: computed.len().to_string(),
        });
    } else if let Some(u) = stored.iter().zip(computed).position(|(a, b)| a != b) {
        out.push(Difference {
            item,
            mechanism,
            uid: Some(u),
            stored: format!("{:?}", stored[u]),
            computed: format!("{:?}", computed[u]),
        });
    }
}

/// The first difference of every item the era stored (empty: a full match).
pub fn compare(stored: &StoredOutputs, computed: &SubnetOutput) -> Vec<Difference> {
    let t = &computed.subnet;
    let mut out = Vec::new();
    first("Active", None, &stored.active, &t.active, &mut out);
    first("Emission", None, &stored.emission, &t.emission, &mut out);
    first("Consensus", None, &stored.consensus, &t.consensus, &mut out);
    first("Dividends", None, &stored.dividends, &t.dividend, &mut out);
    first(
        "ValidatorTrust",
        None,
        &stored.validator_trust,
        &t.validator_trust,
        &mut out,
    );
    first(
        "ValidatorPermit",
        None,
        &stored.validator_permit,
        &t.new_validator_permit,
        &mut out,
    );
    // Items the era did not store are not compared.
    if let Some(sw) = &stored.stake_weight {
        first("StakeWeight", None, sw, &t.stake_weight, &mut out);
    }
    let era_terms = [
        ("Rank", &stored.rank, &t.rank),
        ("Trust", &stored.trust, &t.trust),
        ("PruningScores", &stored.pruning_scores, &t.pruning_score),
    ];
    for (item, stored, computed) in era_terms {
        if let Some(s) = stored {
            first(item, None, s, computed.as_deref().unwrap_or(&[]), &mut out);
        }
    }
    if stored.incentive.len() != computed.mechanisms.len() {
        out.push(Difference {
            item: "MechanismCountCurrent",
            mechanism: None,
            uid: None,
            stored: stored.incentive.len().to_string(),
            computed: computed.mechanisms.len().to_string(),
        });
        return out;
    }
    for (k, m) in computed.mechanisms.iter().enumerate() {
        first(
            "Incentive",
            Some(k),
            &stored.incentive[k],
            &m.output.incentive,
            &mut out,
        );
        let rows = |b: &SparseMatrix| b.to_rows();
        first(
            "Bonds",
            Some(k),
            &rows(&stored.bonds[k]),
            &rows(&m.output.bonds),
            &mut out,
        );
    }
    out
}

/// How a subnet epoch's stored `Emission` depends on the total emission `E` it
/// distributed: everything else in the epoch is independent of `E`, so each mechanism runs
/// once and every candidate `E` costs only the split, the `in_rao` products and the fold.
pub struct EmissionModel {
    /// Per mechanism, each uid's normalised combined emission as raw I32F32 bits
    /// (the mechanism's emission output for a share of 2^32 rao).
    bits: Vec<Vec<u64>>,
    /// The stored split, as the epoch reads it.
    split: Option<Vec<u16>>,
}

impl EmissionModel {
    /// Runs each mechanism of `input` once on the CPU (its emission field is ignored).
    pub fn new(input: &SubnetInput) -> Result<Self, SubnetError> {
        validate_subnet(input)?;
        let bits = (0..input.mechanisms.len())
            .map(|k| {
                run_epoch(&input.mechanism_epoch(k, 1 << 32))
                    .map(|o| o.emission)
                    .map_err(|e| mechanism_error(k, e))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            bits,
            split: input.emission_split.clone(),
        })
    }

    /// The shares and fold weights of total `e`.
    fn weights(&self, e: u64) -> (Vec<u64>, Vec<u128>) {
        let shares = split_emission(e, self.split.as_deref(), self.bits.len());
        let weights = shares
            .iter()
            .enumerate()
            .map(|(k, &s)| mechanism_weight(k, s, e))
            .collect();
        (shares, weights)
    }

    /// Uid `u`'s folded emission for the given shares and weights.
    fn uid(&self, u: usize, shares: &[u64], weights: &[u128]) -> u64 {
        self.bits
            .iter()
            .zip(shares.iter().zip(weights))
            .fold(0, |acc, (b, (&s, &w))| {
                acc_u64(acc, in_rao(I32F32(b[u] as i64), s), w)
            })
    }

    /// The subnet's `Emission` for total `e`.
    pub fn emission(&self, e: u64) -> Vec<u64> {
        let (shares, weights) = self.weights(e);
        let n = self.bits.first().map_or(0, Vec::len);
        (0..n).map(|u| self.uid(u, &shares, &weights)).collect()
    }

    fn sum(&self, e: u64) -> u128 {
        self.emission(e).iter().map(|&x| x as u128).sum()
    }

    /// Whether total `e` gives exactly `stored` (stops at the first differing uid).
    fn gives(&self, e: u64, stored: &[u64]) -> bool {
        let (shares, weights) = self.weights(e);
        let n = self.bits.first().map_or(0, Vec::len);
        n == stored.len() && (0..n).all(|u| self.uid(u, &shares, &weights) == stored[u])
    }
}

/// The smallest subnet emission `E` whose epoch reproduces `stored` (the stored
/// `Emission`), or `None` when no `E` does.
///
/// The emitted sum grows with `E` (exactly so for one mechanism, where the first `E` whose
/// sum reaches the stored sum is the answer); with several mechanisms the floors of the
/// split and the fold move it by at most a few rao per uid and mechanism, so candidates
/// are scanned in a window of that size around the bisection's hit.
pub fn infer_emission(input: &SubnetInput, stored: &[u64]) -> Result<Option<u64>, SubnetError> {
    let model = EmissionModel::new(input)?;
    let target: u128 = stored.iter().map(|&e| e as u128).sum();
    let (mut lo, mut hi) = (0u64, u64::MAX);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if model.sum(mid) >= target {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let m = input.mechanisms.len() as u64;
    let window = 2 * (input.n as u64 + 1) * m + 64;
    let found =
        (lo.saturating_sub(window)..=lo.saturating_add(window)).find(|&e| model.gives(e, stored));
    Ok(found)
}
