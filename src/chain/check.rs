//! Compares a recomputed subnet epoch with what the chain stored, and infers the emission
//! an epoch distributed from the stored `Emission` (the chain does not store the total).

use super::snapshot::StoredOutputs;
use crate::model::SparseMatrix;
use crate::model::subnet::{SubnetInput, SubnetOutput};

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

/// The subnet emission `E` whose epoch reproduces `stored` (the stored `Emission`), found
/// by bisection on the emitted sum near its stored sum and a scan around the hit; `run`
/// recomputes the epoch for a candidate. `None` when no candidate in the bracket matches.
pub fn infer_emission<E>(
    input: &SubnetInput,
    stored: &[u64],
    mut run: impl FnMut(&SubnetInput) -> Result<SubnetOutput, E>,
) -> Result<Option<u64>, E> {
    let target: u128 = stored.iter().map(|&e| e as u128).sum();
    let mut probe = input.clone();
    let mut emitted = |e: u64, probe: &mut SubnetInput| -> Result<(u128, bool), E> {
        probe.emission = e;
        let out = run(probe)?;
        let sum = out.subnet.emission.iter().map(|&x| x as u128).sum();
        Ok((sum, out.subnet.emission == stored))
    };
    // The folded emission is at most E and, with M mechanisms, at least about E / M less
    // a floor per uid and mechanism.
    let m = input.mechanisms.len().max(1) as u128;
    let slack = 2 * (input.n as u128 + 1) * m + 64;
    let lo0 = target.min(u64::MAX as u128) as u64;
    let hi0 = (target * m + slack).min(u64::MAX as u128) as u64;
    let (mut lo, mut hi) = (lo0, hi0);
    // Smallest E whose emitted sum reaches the target.
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if emitted(mid, &mut probe)?.0 >= target {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    // Floors make the sum only nearly monotone: look a little below the hit, then up
    // until the sum passes the target.
    let window = (slack as u64).min(4096);
    for e in lo.saturating_sub(16)..=lo.saturating_add(window).min(hi0) {
        let (sum, same) = emitted(e, &mut probe)?;
        if same {
            return Ok(Some(e));
        }
        if sum > target {
            break;
        }
    }
    Ok(None)
}
