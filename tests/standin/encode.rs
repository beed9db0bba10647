//! Writes a subnet epoch (input and the chain's output) into the stand-in chain in the
//! subtensor storage layout of the input's runtime (`spec_version`, today's without one):
//! inputs at block B − 1, outputs and epoch counters at B. The era boundaries are written
//! out here from the upstream pallet, not taken from the library's layout, so that the
//! reader is checked against an independent encoding.

use parity_scale_codec::Encode;
use yuma::chain::storage::{self as st, Item, storage_index};
use yuma::model::subnet::{SubnetInput, SubnetOutput};

use super::{Block, Chain};

/// Runtime spec the stand-in reports for inputs without `spec_version`.
pub const SPEC: u32 = 425;
/// `SubnetEpochIndex` at B (one more than at B − 1), from spec 423.
pub const EPOCH_INDEX: u64 = 11;

/// The hotkey of `uid`: distinct 32 bytes.
pub fn hotkey(netuid: u16, uid: u16) -> [u8; 32] {
    let mut k = [0xA5u8; 32];
    k[..2].copy_from_slice(&uid.to_le_bytes());
    k[2..4].copy_from_slice(&netuid.to_le_bytes());
    k
}

fn put(b: &mut Block, item: &Item, parts: &[&[u8]], value: impl Encode) {
    b.storage.insert(item.key(parts), Some(value.encode()));
}

/// `ActivityCutoffFactorMilli` giving `cutoff` at `tempo`, when one exists.
fn cutoff_factor(cutoff: u64, tempo: u16) -> Option<u32> {
    if tempo == 0 {
        return (cutoff == 1).then_some(0);
    }
    let f = (cutoff * 1000).div_ceil(tempo as u64);
    let f = u32::try_from(f).ok()?;
    (yuma::chain::snapshot::activity_cutoff(f, tempo) == cutoff).then_some(f)
}

/// The pallet's epoch index of a block before spec 423: `(block + netuid + 1) / (tempo + 1)`.
pub fn block_epoch(netuid: u16, tempo: u16, block: u64) -> u64 {
    (block + netuid as u64 + 1) / (tempo as u64 + 1)
}

/// Whether the storage of `spec` can express `input`: an input its epoch does not read
/// must hold the neutral value the reader gives it (conformance ERAS.md).
fn holdable(spec: u32, input: &SubnetInput) -> bool {
    let commits = input
        .mechanisms
        .iter()
        .any(|m| m.commit_block.iter().any(Option::is_some));
    spec >= 233
        && (spec >= 252 || input.owner_uid.is_none())
        && (spec >= 273
            || (!input.yuma3
                && input.stake_threshold == 0
                && input.alpha_sigmoid_steepness == 1000))
        && (!(273..283).contains(&spec) || input.alpha_sigmoid_steepness >= 0)
        && (spec >= 297 || (!input.commit_reveal && !commits))
        && (spec >= 320 || (input.mechanisms.len() == 1 && input.emission_split.is_none()))
        && (spec >= 423
            || (input.last_mechanism_step_block == 0 && input.activity_cutoff <= u16::MAX as u64))
}

/// Writes `input` (inputs, at B − 1) and `output` (at B) for `netuid`; B is
/// `input.current_block`. `None` when the chain cannot hold the input.
pub fn write(
    chain: &mut Chain,
    netuid: u16,
    input: &SubnetInput,
    output: &SubnetOutput,
) -> Option<()> {
    let spec = input.spec_version.unwrap_or(SPEC);
    let b_num = input.current_block;
    if b_num == 0
        || input.mechanisms.is_empty()
        || input.mechanisms.len() > 16
        || !holdable(spec, input)
    {
        return None;
    }
    let factor = match spec {
        423.. => Some(cutoff_factor(input.activity_cutoff, input.tempo)?),
        _ => None,
    };
    let nk = netuid.to_le_bytes();
    let n = input.n;
    {
        let prev = chain.block(b_num - 1, spec);
        put(prev, &st::NETWORKS_ADDED, &[&nk], true);
        put(prev, &st::SUBNETWORK_N, &[&nk], n);
        put(prev, &st::TEMPO, &[&nk], input.tempo);
        if let Some(factor) = factor {
            put(prev, &st::ACTIVITY_CUTOFF_FACTOR_MILLI, &[&nk], factor);
            put(
                prev,
                &st::LAST_MECHANISM_STEP_BLOCK,
                &[&nk],
                input.last_mechanism_step_block,
            );
            put(prev, &st::SUBNET_EPOCH_INDEX, &[&nk], EPOCH_INDEX - 1);
            put(prev, &st::REVEAL_PERIOD_EPOCHS, &[&nk], 1u64);
        } else {
            put(
                prev,
                &st::ACTIVITY_CUTOFF,
                &[&nk],
                input.activity_cutoff as u16,
            );
            // The previous epoch's block: stored, but not read by these epochs.
            let before = b_num.saturating_sub(input.tempo as u64 + 1);
            put(prev, &st::LAST_MECHANISM_STEP_BLOCK, &[&nk], before);
            // Commits expire by the epoch of their block: keep every one in its period.
            let now = block_epoch(netuid, input.tempo, b_num);
            let period = input
                .mechanisms
                .iter()
                .flat_map(|m| m.commit_block.iter().flatten())
                .map(|&c| now.saturating_sub(block_epoch(netuid, input.tempo, c)))
                .fold(1u64, u64::max);
            put(prev, &st::REVEAL_PERIOD_EPOCHS, &[&nk], period);
        }
        put(prev, &st::KAPPA, &[&nk], input.kappa);
        put(prev, &st::BONDS_PENALTY, &[&nk], input.bonds_penalty);
        put(
            prev,
            &st::BONDS_MOVING_AVERAGE,
            &[&nk],
            input.bonds_moving_average,
        );
        put(
            prev,
            &st::MAX_ALLOWED_VALIDATORS,
            &[&nk],
            input.max_allowed_validators,
        );
        put(prev, &st::TAO_WEIGHT, &[], input.tao_weight);
        if spec >= 273 {
            put(prev, &st::STAKE_THRESHOLD, &[], input.stake_threshold);
            put(prev, &st::YUMA3_ON, &[&nk], input.yuma3);
            if spec < 283 {
                // A u16 in 273-282.
                put(
                    prev,
                    &st::ALPHA_SIGMOID_STEEPNESS,
                    &[&nk],
                    input.alpha_sigmoid_steepness as u16,
                );
            } else {
                put(
                    prev,
                    &st::ALPHA_SIGMOID_STEEPNESS,
                    &[&nk],
                    input.alpha_sigmoid_steepness,
                );
            }
        } else {
            // StakeThreshold existed before 273 but the epoch did not read it.
            put(prev, &st::STAKE_THRESHOLD, &[], u64::MAX);
        }
        put(prev, &st::LIQUID_ALPHA_ON, &[&nk], input.liquid_alpha);
        put(
            prev,
            &st::ALPHA_VALUES,
            &[&nk],
            (input.alpha_low, input.alpha_high),
        );
        // Before 297 the epoch has no commit mask, whatever the switch says.
        let commit_reveal = if spec >= 297 {
            input.commit_reveal
        } else {
            true
        };
        put(
            prev,
            &st::COMMIT_REVEAL_WEIGHTS_ENABLED,
            &[&nk],
            commit_reveal,
        );
        if spec >= 320 {
            put(
                prev,
                &st::MECHANISM_COUNT_CURRENT,
                &[&nk],
                input.mechanisms.len() as u8,
            );
            if let Some(split) = &input.emission_split {
                put(prev, &st::MECHANISM_EMISSION_SPLIT, &[&nk], split.clone());
            }
        }
        // Before 252 the epoch does not read the owner: store one it must ignore.
        let owner = if spec >= 252 {
            input.owner_uid
        } else {
            (n > 0).then_some(0)
        };
        if let Some(owner) = owner {
            let hk = hotkey(netuid, owner);
            put(prev, &st::SUBNET_OWNER_HOTKEY, &[&nk], hk);
            put(prev, &st::UIDS, &[&nk, &hk], owner);
        }
        put(
            prev,
            &st::VALIDATOR_PERMIT,
            &[&nk],
            input.validator_permit.clone(),
        );
        for uid in 0..n {
            let u = uid.to_le_bytes();
            let hk = hotkey(netuid, uid);
            put(prev, &st::KEYS, &[&nk, &u], hk);
            put(
                prev,
                &st::BLOCK_AT_REGISTRATION,
                &[&nk, &u],
                input.block_at_registration[uid as usize],
            );
            put(
                prev,
                &st::TOTAL_HOTKEY_ALPHA,
                &[&hk, &nk],
                input.alpha_stake[uid as usize],
            );
            put(
                prev,
                &st::TOTAL_HOTKEY_ALPHA,
                &[&hk, &0u16.to_le_bytes()],
                input.tao_stake[uid as usize],
            );
        }
        for (k, m) in input.mechanisms.iter().enumerate() {
            // Before 320 every item is keyed by the netuid itself.
            let ix = if spec >= 320 {
                storage_index(netuid, k as u8)
            } else {
                netuid
            }
            .to_le_bytes();
            put(prev, &st::LAST_UPDATE, &[&ix], m.last_update.clone());
            for uid in 0..n {
                let u = uid.to_le_bytes();
                put(
                    prev,
                    &st::WEIGHTS,
                    &[&ix, &u],
                    m.weights.row_pairs(uid as usize).collect::<Vec<_>>(),
                );
                put(
                    prev,
                    &st::BONDS,
                    &[&ix, &u],
                    m.bonds.row_pairs(uid as usize).collect::<Vec<_>>(),
                );
                if let Some(c) = m.commit_block[uid as usize] {
                    let hk = hotkey(netuid, uid);
                    // (hash, commit_epoch, commit_block, _) from 423; (hash, commit_block,
                    // first_reveal_block, last_reveal_block) before.
                    let entry: ([u8; 32], u64, u64, u64) = if spec >= 423 {
                        ([0; 32], EPOCH_INDEX, c, 0)
                    } else {
                        ([0; 32], c, c + 1, c + 2)
                    };
                    put(prev, &st::WEIGHT_COMMITS, &[&ix, &hk], vec![entry]);
                }
            }
        }
    }
    let at = chain.block(b_num, spec);
    if spec >= 423 {
        put(at, &st::SUBNET_EPOCH_INDEX, &[&nk], EPOCH_INDEX);
    }
    put(at, &st::LAST_MECHANISM_STEP_BLOCK, &[&nk], b_num);
    let t = &output.subnet;
    put(at, &st::ACTIVE, &[&nk], t.active.clone());
    put(at, &st::EMISSION, &[&nk], t.emission.clone());
    put(at, &st::CONSENSUS, &[&nk], t.consensus.clone());
    put(at, &st::DIVIDENDS, &[&nk], t.dividend.clone());
    put(at, &st::VALIDATOR_TRUST, &[&nk], t.validator_trust.clone());
    put(
        at,
        &st::VALIDATOR_PERMIT,
        &[&nk],
        t.new_validator_permit.clone(),
    );
    // Specs 320-322 did not store StakeWeight: B keeps an older value.
    let stake_weight = if (320..323).contains(&spec) {
        vec![7u16; n as usize]
    } else {
        t.stake_weight.clone()
    };
    put(at, &st::STAKE_WEIGHT, &[&nk], stake_weight);
    let era_terms = [
        (st::RANK, &t.rank),
        (st::TRUST, &t.trust),
        (st::PRUNING_SCORES, &t.pruning_score),
    ];
    for (item, term) in era_terms {
        match spec {
            ..365 => put(at, &item, &[&nk], term.clone()?),
            // Still declared but no longer written: B keeps an older value.
            365..397 => put(at, &item, &[&nk], vec![9u16; n as usize]),
            _ => {}
        }
    }
    for (k, m) in output.mechanisms.iter().enumerate() {
        let ix = storage_index(netuid, k as u8).to_le_bytes();
        put(at, &st::INCENTIVE, &[&ix], m.output.incentive.clone());
        for uid in 0..n {
            let row: Vec<(u16, u16)> = if (uid as usize) < m.output.bonds.rows() {
                m.output.bonds.row_pairs(uid as usize).collect()
            } else {
                Vec::new()
            };
            put(at, &st::BONDS, &[&ix, &uid.to_le_bytes()], row);
        }
    }
    Some(())
}
