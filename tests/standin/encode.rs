//! Writes a subnet epoch (input and the chain's output) into the stand-in chain in the
//! subtensor storage layout: inputs at block B − 1, outputs and epoch counters at B.

use parity_scale_codec::Encode;
use yuma::chain::storage::{self as st, Item, storage_index};
use yuma::model::subnet::{SubnetInput, SubnetOutput};

use super::{Block, Chain};

/// Runtime spec the stand-in reports.
pub const SPEC: u32 = 425;
/// `SubnetEpochIndex` at B (one more than at B − 1).
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

/// Writes `input` (inputs, at B − 1) and `output` (at B) for `netuid`; B is
/// `input.current_block`. `None` when the chain cannot hold the input.
pub fn write(
    chain: &mut Chain,
    netuid: u16,
    input: &SubnetInput,
    output: &SubnetOutput,
) -> Option<()> {
    let b_num = input.current_block;
    if b_num == 0 || input.mechanisms.is_empty() || input.mechanisms.len() > 16 {
        return None;
    }
    let factor = cutoff_factor(input.activity_cutoff, input.tempo)?;
    let nk = netuid.to_le_bytes();
    let n = input.n;
    {
        let prev = chain.block(b_num - 1, SPEC);
        put(prev, &st::NETWORKS_ADDED, &[&nk], true);
        put(prev, &st::SUBNETWORK_N, &[&nk], n);
        put(prev, &st::TEMPO, &[&nk], input.tempo);
        put(prev, &st::ACTIVITY_CUTOFF_FACTOR_MILLI, &[&nk], factor);
        put(
            prev,
            &st::LAST_MECHANISM_STEP_BLOCK,
            &[&nk],
            input.last_mechanism_step_block,
        );
        put(prev, &st::SUBNET_EPOCH_INDEX, &[&nk], EPOCH_INDEX - 1);
        put(prev, &st::REVEAL_PERIOD_EPOCHS, &[&nk], 1u64);
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
        put(prev, &st::STAKE_THRESHOLD, &[], input.stake_threshold);
        put(prev, &st::TAO_WEIGHT, &[], input.tao_weight);
        put(prev, &st::YUMA3_ON, &[&nk], input.yuma3);
        put(prev, &st::LIQUID_ALPHA_ON, &[&nk], input.liquid_alpha);
        put(
            prev,
            &st::ALPHA_VALUES,
            &[&nk],
            (input.alpha_low, input.alpha_high),
        );
        put(
            prev,
            &st::ALPHA_SIGMOID_STEEPNESS,
            &[&nk],
            input.alpha_sigmoid_steepness,
        );
        put(
            prev,
            &st::COMMIT_REVEAL_WEIGHTS_ENABLED,
            &[&nk],
            input.commit_reveal,
        );
        put(
            prev,
            &st::MECHANISM_COUNT_CURRENT,
            &[&nk],
            input.mechanisms.len() as u8,
        );
        if let Some(split) = &input.emission_split {
            put(prev, &st::MECHANISM_EMISSION_SPLIT, &[&nk], split.clone());
        }
        if let Some(owner) = input.owner_uid {
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
            let ix = storage_index(netuid, k as u8).to_le_bytes();
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
                    let queue: Vec<([u8; 32], u64, u64, u64)> = vec![([0; 32], EPOCH_INDEX, c, 0)];
                    put(prev, &st::WEIGHT_COMMITS, &[&ix, &hk], queue);
                }
            }
        }
    }
    let at = chain.block(b_num, SPEC);
    put(at, &st::SUBNET_EPOCH_INDEX, &[&nk], EPOCH_INDEX);
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
    put(at, &st::STAKE_WEIGHT, &[&nk], t.stake_weight.clone());
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
