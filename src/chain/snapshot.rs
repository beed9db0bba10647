//! Storage at a block → the inputs of the epoch that ran in it, and what the chain stored
//! after it, in the storage layout of the runtime that ran it ([`Layout`]).
//!
//! The epoch of block B runs in B's `on_initialize`, so its inputs are the post-state of
//! block B−1 with `current_block = B`, plus what B's `on_initialize` changes before the
//! epoch: timelocked weight reveals and the epoch counter `drain_pending` advances. Both
//! are read back from B. Its outputs are read at B.

use std::collections::{BTreeSet, HashMap};

use futures_util::future::try_join;

use super::error::{ChainError, Result};
use super::rpc::{BlockHash, Node};
use super::storage::{self as st, AccountId, Item, Layout, storage_index, u16_key};
use crate::fixed::U96F32;
use crate::model::SparseMatrix;
use crate::model::subnet::{MechanismInput, SubnetInput};

/// The inputs of one subnet epoch, read from a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubnetState {
    /// Netuid.
    pub netuid: u16,
    /// Runtime specVersion whose rules ran (at B − 1, the code B ran).
    pub spec_version: u32,
    /// The format 2 input, with `emission` 0 until it is inferred or given; `spec_version`
    /// is set before today's era (423).
    pub input: SubnetInput,
    /// Pending alpha at the read block (server + validator + root from spec 365, pending
    /// emission + alpha swapped before): the next epoch's emission so far.
    pub pending_emission: u64,
}

/// What the chain stored after the epoch, read at B.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredOutputs {
    /// `Active`.
    pub active: Vec<bool>,
    /// `Emission`.
    pub emission: Vec<u64>,
    /// `Consensus`.
    pub consensus: Vec<u16>,
    /// `Dividends`.
    pub dividends: Vec<u16>,
    /// `ValidatorTrust`.
    pub validator_trust: Vec<u16>,
    /// `ValidatorPermit` (the new permits).
    pub validator_permit: Vec<bool>,
    /// `StakeWeight`; `None` for specs 320-322, which did not store it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stake_weight: Option<Vec<u16>>,
    /// `Rank`; stored before spec 365 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<Vec<u16>>,
    /// `Trust`; stored before spec 365 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<Vec<u16>>,
    /// `PruningScores`; stored before spec 365 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruning_scores: Option<Vec<u16>>,
    /// `Incentive` per mechanism.
    pub incentive: Vec<Vec<u16>>,
    /// `Bonds` rows per mechanism.
    pub bonds: Vec<SparseMatrix>,
}

/// Hashes of block B and its parent.
#[derive(Clone, Debug)]
pub struct EpochBlock {
    /// B.
    pub number: u64,
    /// Hash of B.
    pub hash: BlockHash,
    /// Hash of B − 1.
    pub parent: BlockHash,
}

/// A batch of keys to read at one block, each decoded later by its item.
#[derive(Default)]
struct Batch {
    keys: Vec<Vec<u8>>,
}

impl Batch {
    fn add(&mut self, key: Vec<u8>) -> usize {
        self.keys.push(key);
        self.keys.len() - 1
    }
}

/// Values read for a [`Batch`].
struct Read {
    keys: Vec<Vec<u8>>,
    vals: Vec<Option<Vec<u8>>>,
}

impl Read {
    async fn at(node: &Node, batch: Batch, hash: &str) -> Result<Self> {
        let vals = node.storage_many(&batch.keys, hash).await?;
        Ok(Self {
            keys: batch.keys,
            vals,
        })
    }

    fn raw(&self, i: usize) -> Option<&[u8]> {
        self.vals[i].as_deref()
    }

    fn get<T: parity_scale_codec::Decode>(&self, item: &Item, i: usize, default: T) -> Result<T> {
        item.decode(&self.keys[i], self.raw(i), default)
    }

    fn opt<T: parity_scale_codec::Decode>(&self, item: &Item, i: usize) -> Result<Option<T>> {
        self.raw(i)
            .map(|b| item.decode_some(&self.keys[i], b))
            .transpose()
    }
}

/// Resolves block B and its parent.
pub async fn epoch_block(node: &Node, number: u64) -> Result<EpochBlock> {
    if number == 0 {
        return Err(ChainError::NoBlock(0));
    }
    let (hash, parent) = try_join(node.block_hash(number), node.block_hash(number - 1)).await?;
    Ok(EpochBlock {
        number,
        hash,
        parent,
    })
}

fn netuid_key(item: &Item, netuid: u16) -> Vec<u8> {
    item.key(&[&u16_key(netuid)])
}

/// Whether an epoch of `netuid` ran in block B: `LastMechansimStepBlock` read at B is B.
/// Returns the value at B and at B − 1 (the previous epoch).
pub async fn epoch_ran(node: &Node, netuid: u16, at: &EpochBlock) -> Result<(u64, u64)> {
    let key = netuid_key(&st::LAST_MECHANISM_STEP_BLOCK, netuid);
    let (now, before) =
        try_join(node.storage(&key, &at.hash), node.storage(&key, &at.parent)).await?;
    let item = &st::LAST_MECHANISM_STEP_BLOCK;
    Ok((
        item.decode(&key, now.as_deref(), 0u64)?,
        item.decode(&key, before.as_deref(), 0u64)?,
    ))
}

/// Reads the inputs of the epoch of `netuid` that ran in block `at.number`.
///
/// `next` reads the state for the coming epoch instead: the post-state of `at.number`
/// itself with `current_block = at.number + 1` and no overlays.
pub async fn read_inputs(
    node: &Node,
    netuid: u16,
    at: &EpochBlock,
    next: bool,
) -> Result<SubnetState> {
    let (state_hash, overlay_hash, current_block) = if next {
        (at.hash.as_str(), None, at.number + 1)
    } else {
        (at.parent.as_str(), Some(at.hash.as_str()), at.number)
    };
    let state_block = current_block - 1;

    // Round 1: the runtime, and every per-subnet value any supported layout reads (the
    // spec arrives with them, so the items of other layouts are read and left unused).
    let spec_fut = node.spec_version(state_hash);
    let nk = |item: &Item| netuid_key(item, netuid);
    let mut b = Batch::default();
    let i_added = b.add(nk(&st::NETWORKS_ADDED));
    let i_n = b.add(nk(&st::SUBNETWORK_N));
    let i_tempo = b.add(nk(&st::TEMPO));
    let i_factor = b.add(nk(&st::ACTIVITY_CUTOFF_FACTOR_MILLI));
    let i_cutoff = b.add(nk(&st::ACTIVITY_CUTOFF));
    let i_lms = b.add(nk(&st::LAST_MECHANISM_STEP_BLOCK));
    let i_epoch = b.add(nk(&st::SUBNET_EPOCH_INDEX));
    let i_reveal = b.add(nk(&st::REVEAL_PERIOD_EPOCHS));
    let i_kappa = b.add(nk(&st::KAPPA));
    let i_penalty = b.add(nk(&st::BONDS_PENALTY));
    let i_bma = b.add(nk(&st::BONDS_MOVING_AVERAGE));
    let i_mav = b.add(nk(&st::MAX_ALLOWED_VALIDATORS));
    let i_threshold = b.add(st::STAKE_THRESHOLD.key(&[]));
    let i_tao_weight = b.add(st::TAO_WEIGHT.key(&[]));
    let i_y3 = b.add(nk(&st::YUMA3_ON));
    let i_la = b.add(nk(&st::LIQUID_ALPHA_ON));
    let i_alpha = b.add(nk(&st::ALPHA_VALUES));
    let i_steep = b.add(nk(&st::ALPHA_SIGMOID_STEEPNESS));
    let i_cr = b.add(nk(&st::COMMIT_REVEAL_WEIGHTS_ENABLED));
    let i_mechs = b.add(nk(&st::MECHANISM_COUNT_CURRENT));
    let i_split = b.add(nk(&st::MECHANISM_EMISSION_SPLIT));
    let i_owner = b.add(nk(&st::SUBNET_OWNER_HOTKEY));
    let i_permit = b.add(nk(&st::VALIDATOR_PERMIT));
    let pending_items = [
        st::PENDING_SERVER_EMISSION,
        st::PENDING_VALIDATOR_EMISSION,
        st::PENDING_ROOT_ALPHA_DIVS,
        st::PENDING_EMISSION,
        st::PENDING_ALPHA_SWAPPED,
    ];
    let i_pending: Vec<usize> = pending_items.iter().map(|it| b.add(nk(it))).collect();
    let mut ob = Batch::default();
    let o_epoch = ob.add(nk(&st::SUBNET_EPOCH_INDEX));
    let (spec, r, o) =
        futures_util::future::try_join3(spec_fut, Read::at(node, b, state_hash), async {
            match overlay_hash {
                Some(h) => Read::at(node, ob, h).await.map(Some),
                None => Ok(None),
            }
        })
        .await?;
    let layout = Layout::of_spec(spec).ok_or(ChainError::UnsupportedSpec {
        block: current_block,
        spec,
        supported: Layout::SUPPORTED,
    })?;
    if !r.get(&st::NETWORKS_ADDED, i_added, false)? {
        return Err(ChainError::NoSubnet {
            netuid,
            block: state_block,
        });
    }
    let n: u16 = r.get(&st::SUBNETWORK_N, i_n, 0)?;
    let tempo: u16 = r.get(&st::TEMPO, i_tempo, layout.default_tempo())?;
    let activity_cutoff = if layout.today() {
        let factor: u32 = r.get(&st::ACTIVITY_CUTOFF_FACTOR_MILLI, i_factor, 13_889)?;
        activity_cutoff(factor, tempo)
    } else {
        r.get::<u16>(&st::ACTIVITY_CUTOFF, i_cutoff, 5000)? as u64
    };
    let last_step: u64 = r.get(&st::LAST_MECHANISM_STEP_BLOCK, i_lms, 0)?;
    let epoch_index: u64 = if !layout.today() {
        st::block_epoch(netuid, tempo, current_block)
    } else {
        // drain_pending advances the epoch index before the epoch runs: read it at B.
        match &o {
            Some(o) => o.get(&st::SUBNET_EPOCH_INDEX, o_epoch, 0)?,
            None => r
                .get(&st::SUBNET_EPOCH_INDEX, i_epoch, 0u64)?
                .saturating_add(1),
        }
    };
    let reveal_period: u64 = r.get(&st::REVEAL_PERIOD_EPOCHS, i_reveal, 1)?;
    let mechanism_count: u8 = if layout.mechanisms() {
        r.get(&st::MECHANISM_COUNT_CURRENT, i_mechs, 1)?
    } else {
        1
    };
    if mechanism_count == 0 || mechanism_count > 16 {
        return Err(ChainError::Contradiction {
            block: state_block,
            item: st::MECHANISM_COUNT_CURRENT.name,
            detail: format!("{mechanism_count} mechanisms, expected 1 to 16"),
        });
    }
    let owner_hotkey: Option<AccountId> = if layout.reads_owner() {
        r.opt(&st::SUBNET_OWNER_HOTKEY, i_owner)?
    } else {
        None
    };
    let validator_permit: Vec<bool> = r.get(&st::VALIDATOR_PERMIT, i_permit, Vec::new())?;
    // Read in every era: a reveal stamps LastUpdate only with commit-reveal off.
    let commit_reveal: bool = r.get(
        &st::COMMIT_REVEAL_WEIGHTS_ENABLED,
        i_cr,
        layout.default_commit_reveal(),
    )?;
    let (alpha_low, alpha_high): (u16, u16) =
        r.get(&st::ALPHA_VALUES, i_alpha, (45_875, 58_982))?;
    let (yuma3, stake_threshold, steepness) = if layout.reads_yuma3() {
        let steepness: i16 = r.get(&st::ALPHA_SIGMOID_STEEPNESS, i_steep, 1000)?;
        // The same two bytes: a negative i16 is a u16 above 32767, which no i16 holds.
        if layout.steepness_u16() && steepness < 0 {
            return Err(ChainError::Unrepresentable {
                block: state_block,
                item: st::ALPHA_SIGMOID_STEEPNESS.name,
                detail: format!(
                    "the u16 {} (spec {spec}), above the input's i16 range",
                    steepness as u16
                ),
            });
        }
        (
            r.get(&st::YUMA3_ON, i_y3, false)?,
            r.get(&st::STAKE_THRESHOLD, i_threshold, 0)?,
            steepness,
        )
    } else {
        (false, 0, 1000)
    };
    let mut pending = 0u64;
    for (item, &i) in pending_items.iter().zip(&i_pending) {
        if layout.pending().contains(item) {
            pending = pending.saturating_add(r.get(item, i, 0u64)?);
        }
    }
    let contradiction = |item: &Item, what: &str, got: usize| ChainError::Contradiction {
        block: state_block,
        item: item.name,
        detail: format!("{what} has length {got}, but SubnetworkN is {n}"),
    };
    if validator_permit.len() != n as usize {
        return Err(contradiction(
            &st::VALIDATOR_PERMIT,
            "ValidatorPermit",
            validator_permit.len(),
        ));
    }

    // Round 2: everything keyed by uid or mechanism.
    let nu = n as usize;
    let uids: Vec<[u8; 2]> = (0..n).map(u16_key).collect();
    let idx: Vec<u16> = (0..mechanism_count)
        .map(|m| storage_index(netuid, m))
        .collect();
    let mut b = Batch::default();
    let i_keys: Vec<usize> = uids
        .iter()
        .map(|u| b.add(st::KEYS.key(&[&u16_key(netuid), u])))
        .collect();
    let i_reg: Vec<usize> = uids
        .iter()
        .map(|u| b.add(st::BLOCK_AT_REGISTRATION.key(&[&u16_key(netuid), u])))
        .collect();
    let i_owner_uid = owner_hotkey.map(|hk| b.add(st::UIDS.key(&[&u16_key(netuid), &hk])));
    let mut i_last = Vec::new();
    let mut i_w = Vec::new();
    let mut i_b = Vec::new();
    for &ix in &idx {
        i_last.push(b.add(st::LAST_UPDATE.key(&[&u16_key(ix)])));
        i_w.push(
            uids.iter()
                .map(|u| b.add(st::WEIGHTS.key(&[&u16_key(ix), u])))
                .collect::<Vec<_>>(),
        );
        i_b.push(
            uids.iter()
                .map(|u| b.add(st::BONDS.key(&[&u16_key(ix), u])))
                .collect::<Vec<_>>(),
        );
    }
    // Timelocked commits: the keys under each mechanism, at B−1 and (overlay) at B.
    let tl_item = layout.timelocked();
    let tl_prefixes: Vec<Vec<u8>> = idx.iter().map(|&ix| tl_item.key(&[&u16_key(ix)])).collect();
    let tl_hash = overlay_hash.unwrap_or(state_hash);
    let tl_keys_fut =
        futures_util::future::try_join_all(tl_prefixes.iter().map(|p| node.keys(p, tl_hash)));
    let tl_prev_fut = async {
        match overlay_hash {
            Some(_) => futures_util::future::try_join_all(
                tl_prefixes.iter().map(|p| node.keys(p, state_hash)),
            )
            .await
            .map(Some),
            None => Ok(None),
        }
    };
    let (r2, tl_keys, tl_prev_keys) =
        futures_util::future::try_join3(Read::at(node, b, state_hash), tl_keys_fut, tl_prev_fut)
            .await?;

    let mut hotkeys: Vec<Option<AccountId>> = Vec::with_capacity(nu);
    for &i in &i_keys {
        hotkeys.push(r2.opt(&st::KEYS, i)?);
    }
    // get_block_at_registration reads 0 for a uid without a Keys entry.
    let block_at_registration = i_reg
        .iter()
        .zip(&hotkeys)
        .map(|(&i, hk)| match hk {
            Some(_) => r2.get(&st::BLOCK_AT_REGISTRATION, i, 0u64),
            None => Ok(0),
        })
        .collect::<Result<Vec<_>>>()?;
    let owner_uid: Option<u16> = match i_owner_uid {
        Some(i) => r2.opt(&st::UIDS, i)?,
        None => None,
    };
    let mut mechanisms = Vec::with_capacity(idx.len());
    for k in 0..idx.len() {
        let last_update: Vec<u64> = r2.get(&st::LAST_UPDATE, i_last[k], Vec::new())?;
        if last_update.len() != nu {
            return Err(ChainError::Contradiction {
                block: state_block,
                item: st::LAST_UPDATE.name,
                detail: format!(
                    "mechanism {k}: LastUpdate has length {}, but SubnetworkN is {n}",
                    last_update.len()
                ),
            });
        }
        let rows = |item: &Item, is: &[usize]| -> Result<SparseMatrix> {
            let rows = is
                .iter()
                .map(|&i| r2.get::<Vec<(u16, u16)>>(item, i, Vec::new()))
                .collect::<Result<Vec<_>>>()?;
            Ok(SparseMatrix::from_rows(&rows))
        };
        mechanisms.push(MechanismInput {
            last_update,
            commit_block: vec![None; nu],
            weights: rows(&st::WEIGHTS, &i_w[k])?,
            bonds: rows(&st::BONDS, &i_b[k])?,
        });
    }

    // Round 3: stake, child and parent keys, commits.
    let uid_of: HashMap<AccountId, usize> = hotkeys
        .iter()
        .enumerate()
        .filter_map(|(u, h)| h.map(|h| (h, u)))
        .collect();
    let mut b = Batch::default();
    let mut i_stake = Vec::with_capacity(nu);
    for hk in &hotkeys {
        i_stake.push(hk.map(|hk| {
            (
                b.add(st::TOTAL_HOTKEY_ALPHA.key(&[&hk, &u16_key(netuid)])),
                b.add(st::TOTAL_HOTKEY_ALPHA.key(&[&hk, &u16_key(0)])),
                b.add(st::CHILD_KEYS.key(&[&hk, &u16_key(netuid)])),
                b.add(st::PARENT_KEYS.key(&[&hk, &u16_key(netuid)])),
            )
        }));
    }
    let i_commits: Vec<Vec<Option<usize>>> = idx
        .iter()
        .map(|&ix| {
            hotkeys
                .iter()
                .map(|hk| {
                    hk.filter(|_| layout.commit_mask())
                        .map(|hk| b.add(st::WEIGHT_COMMITS.key(&[&u16_key(ix), &hk])))
                })
                .collect()
        })
        .collect();
    let mut tb = Batch::default();
    let tl_all: Vec<Vec<usize>> = tl_keys
        .iter()
        .map(|keys| keys.iter().map(|k| tb.add(k.clone())).collect())
        .collect();
    let mut pb = Batch::default();
    let tl_prev_all: Option<Vec<Vec<usize>>> = tl_prev_keys.as_ref().map(|sets| {
        sets.iter()
            .map(|keys| keys.iter().map(|k| pb.add(k.clone())).collect())
            .collect()
    });
    let (r3, tl, tl_prev) = futures_util::future::try_join3(
        Read::at(node, b, state_hash),
        Read::at(node, tb, tl_hash),
        Read::at(node, pb, state_hash),
    )
    .await?;

    // Commit blocks (from 297, the epoch's commit-reveal mask): the first unexpired
    // WeightCommits entry per hotkey, then every unexpired timelocked entry; the earliest
    // wins. From 423 commits expire by the epoch they were made in, before by the epoch of
    // their block.
    let expired = |commit_epoch: u64| epoch_index > commit_epoch.saturating_add(reveal_period);
    let block_expired = |block: u64| expired(st::block_epoch(netuid, tempo, block));
    type Commit = ([u8; 32], u64, u64, u64);
    for (k, mech) in mechanisms.iter_mut().enumerate() {
        let mut earliest = |u: usize, block: u64| {
            let cell = &mut mech.commit_block[u];
            *cell = Some(cell.map_or(block, |c| c.min(block)));
        };
        for (u, slot) in i_commits[k].iter().enumerate() {
            let Some(i) = *slot else { continue };
            let queue: Vec<Commit> = r3.get(&st::WEIGHT_COMMITS, i, Vec::new())?;
            // (hash, commit_epoch, commit_block, _) from 423; (hash, commit_block, ..) before.
            let first = if layout.today() {
                queue.iter().find(|c| !expired(c.1)).map(|c| c.2)
            } else {
                queue.iter().find(|c| !block_expired(c.1)).map(|c| c.1)
            };
            if let Some(block) = first {
                earliest(u, block);
            }
        }
        if !layout.commit_mask() {
            continue;
        }
        for &i in &tl_all[k] {
            // From 423 a queue expires by its key's epoch; before, each entry by its block.
            if layout.today() && expired(epoch_of(&tl_item, &tl.keys[i], &tl_prefixes[k])?) {
                continue;
            }
            for (who, block) in timelocked_queue(&tl, &tl_item, i)? {
                let Some(block) = block else { continue };
                // Commits made by block B's extrinsics came after its epoch.
                if block >= current_block || (!layout.today() && block_expired(block)) {
                    continue;
                }
                if let Some(&u) = uid_of.get(&who) {
                    earliest(u, block);
                }
            }
        }
    }

    // Overlay: weights revealed by block B's on_initialize before its epoch. A reveal takes
    // the commits of epoch `index - reveal_period` (`+ 1` before 320) out of the timelocked
    // queue.
    if let (Some(prev_sets), Some(oh)) = (&tl_prev_all, overlay_hash) {
        let reveal_epoch = epoch_index.saturating_sub(layout.reveal_lag(reveal_period));
        let count =
            |read: &Read, is: &[usize], prefix: &[u8]| -> Result<HashMap<AccountId, usize>> {
                let mut c = HashMap::new();
                for &i in is {
                    if epoch_of(&tl_item, &read.keys[i], prefix)? != reveal_epoch {
                        continue;
                    }
                    for (who, _) in timelocked_queue(read, &tl_item, i)? {
                        *c.entry(who).or_insert(0) += 1;
                    }
                }
                Ok(c)
            };
        let mut revealed: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); idx.len()];
        for k in 0..idx.len() {
            let before = count(&tl_prev, &prev_sets[k], &tl_prefixes[k])?;
            let after = count(&tl, &tl_all[k], &tl_prefixes[k])?;
            for (who, c) in before {
                if after.get(&who).copied().unwrap_or(0) < c
                    && let Some(&u) = uid_of.get(&who)
                {
                    revealed[k].insert(u);
                }
            }
        }
        if revealed.iter().any(|s| !s.is_empty()) {
            let mut b = Batch::default();
            let mut at = Vec::new();
            for (k, set) in revealed.iter().enumerate() {
                let li = b.add(st::LAST_UPDATE.key(&[&u16_key(idx[k])]));
                let rows: Vec<(usize, usize)> = set
                    .iter()
                    .map(|&u| (u, b.add(st::WEIGHTS.key(&[&u16_key(idx[k]), &uids[u]]))))
                    .collect();
                at.push((li, rows));
            }
            let ro = Read::at(node, b, oh).await?;
            for (k, (li, rows)) in at.into_iter().enumerate() {
                let last_b: Vec<u64> = ro.get(&st::LAST_UPDATE, li, Vec::new())?;
                let mut all = mechanisms[k].weights.to_rows();
                for (u, i) in rows {
                    all[u] = ro.get(&st::WEIGHTS, i, Vec::new())?;
                    // With commit-reveal off, a reveal stamps LastUpdate with B.
                    if !commit_reveal && last_b.get(u) == Some(&current_block) {
                        mechanisms[k].last_update[u] = current_block;
                    }
                }
                mechanisms[k].weights = SparseMatrix::from_rows(&all);
            }
        }
    }

    // Round 4: the stake of parents that are not in the subnet.
    struct Links {
        alpha: u64,
        tao: u64,
        children: Vec<(u64, AccountId)>,
        parents: Vec<(u64, AccountId)>,
    }
    let mut links: Vec<Option<Links>> = Vec::with_capacity(nu);
    for s in &i_stake {
        links.push(match *s {
            None => None,
            Some((a, t, c, p)) => Some(Links {
                alpha: r3.get(&st::TOTAL_HOTKEY_ALPHA, a, 0u64)?,
                tao: r3.get(&st::TOTAL_HOTKEY_ALPHA, t, 0u64)?,
                children: r3.get(&st::CHILD_KEYS, c, Vec::new())?,
                parents: r3.get(&st::PARENT_KEYS, p, Vec::new())?,
            }),
        });
    }
    let mut own: HashMap<AccountId, (u64, u64)> = HashMap::new();
    for (hk, l) in hotkeys.iter().zip(&links) {
        if let (Some(hk), Some(l)) = (hk, l) {
            own.insert(*hk, (l.alpha, l.tao));
        }
    }
    let outside: BTreeSet<AccountId> = links
        .iter()
        .flatten()
        .flat_map(|l| l.parents.iter().map(|p| p.1))
        .filter(|p| !own.contains_key(p))
        .collect();
    if !outside.is_empty() {
        let mut b = Batch::default();
        let is: Vec<(AccountId, usize, usize)> = outside
            .iter()
            .map(|p| {
                (
                    *p,
                    b.add(st::TOTAL_HOTKEY_ALPHA.key(&[p, &u16_key(netuid)])),
                    b.add(st::TOTAL_HOTKEY_ALPHA.key(&[p, &u16_key(0)])),
                )
            })
            .collect();
        let r4 = Read::at(node, b, state_hash).await?;
        for (p, a, t) in is {
            own.insert(
                p,
                (
                    r4.get(&st::TOTAL_HOTKEY_ALPHA, a, 0u64)?,
                    r4.get(&st::TOTAL_HOTKEY_ALPHA, t, 0u64)?,
                ),
            );
        }
    }
    let mut alpha_stake = vec![0u64; nu];
    let mut tao_stake = vec![0u64; nu];
    for (u, l) in links.iter().enumerate() {
        if let Some(l) = l {
            let parent = |p: &AccountId| own.get(p).copied().unwrap_or((0, 0));
            alpha_stake[u] = inherited(l.alpha, &l.children, &l.parents, |p| parent(p).0);
            tao_stake[u] = inherited(l.tao, &l.children, &l.parents, |p| parent(p).1);
        }
    }

    // An input the era's epoch does not read holds ERAS.md's neutral value.
    let input = SubnetInput {
        spec_version: layout.spec_version(),
        n,
        current_block,
        tempo,
        activity_cutoff,
        last_mechanism_step_block: if layout.today() { last_step } else { 0 },
        kappa: r.get(&st::KAPPA, i_kappa, 32_767)?,
        bonds_penalty: r.get(
            &st::BONDS_PENALTY,
            i_penalty,
            layout.default_bonds_penalty(),
        )?,
        bonds_moving_average: r.get(&st::BONDS_MOVING_AVERAGE, i_bma, 900_000)?,
        max_allowed_validators: r.get(&st::MAX_ALLOWED_VALIDATORS, i_mav, 128)?,
        stake_threshold,
        tao_weight: r.get(&st::TAO_WEIGHT, i_tao_weight, 971_718_665_099_567_868)?,
        owner_uid,
        yuma3,
        liquid_alpha: r.get(&st::LIQUID_ALPHA_ON, i_la, false)?,
        alpha_low,
        alpha_high,
        alpha_sigmoid_steepness: steepness,
        commit_reveal: commit_reveal && layout.commit_mask(),
        emission: 0,
        alpha_stake,
        tao_stake,
        block_at_registration,
        validator_permit,
        emission_split: if layout.mechanisms() {
            r.opt(&st::MECHANISM_EMISSION_SPLIT, i_split)?
        } else {
            None
        },
        mechanisms,
    };
    Ok(SubnetState {
        netuid,
        spec_version: spec,
        input,
        pending_emission: pending,
    })
}

/// The epoch key (u64) of a timelocked commit queue's storage key.
fn epoch_of(item: &Item, key: &[u8], prefix: &[u8]) -> Result<u64> {
    let raw = item.last_key(key, prefix);
    raw.and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes)
        .ok_or_else(|| ChainError::Decode {
            item: item.name,
            key: super::rpc::to_hex(key),
            ty: "key (NetUidStorageIndex, u64)",
            reason: "the key does not end in a Twox64Concat u64".into(),
        })
}

/// Each entry of a timelocked commit queue: the committer and, from spec 297, the commit
/// block (CRV3WeightCommits held none).
fn timelocked_queue(read: &Read, item: &Item, i: usize) -> Result<Vec<(AccountId, Option<u64>)>> {
    if *item == st::CRV3_WEIGHT_COMMITS {
        let q: Vec<(AccountId, Vec<u8>, u64)> = read.get(item, i, Vec::new())?;
        Ok(q.into_iter().map(|(who, ..)| (who, None)).collect())
    } else {
        let q: Vec<(AccountId, u64, Vec<u8>, u64)> = read.get(item, i, Vec::new())?;
        Ok(q.into_iter().map(|(who, b, ..)| (who, Some(b))).collect())
    }
}

/// `max(1, factor_milli * tempo / 1000)` (`get_activity_cutoff_blocks`).
pub fn activity_cutoff(factor_milli: u32, tempo: u16) -> u64 {
    ((factor_milli as u64).saturating_mul(tempo as u64) / 1000).max(1)
}

/// A hotkey's stake less what it gives its children plus what its parents give it, in
/// U96F32 with saturation (`get_inherited_for_hotkey_on_subnet`). Before spec 273 the
/// pallet used I96F32: the same numbers, as set_children keeps a hotkey's child proportions
/// within u64::MAX, so no term goes negative or near either type's limit.
pub fn inherited(
    initial: u64,
    children: &[(u64, AccountId)],
    parents: &[(u64, AccountId)],
    parent_stake: impl Fn(&AccountId) -> u64,
) -> u64 {
    let max = U96F32::from_u64(u64::MAX);
    let initial = U96F32::from_u64(initial);
    let to_children = children.iter().fold(U96F32(0), |acc, &(p, _)| {
        acc.saturating_add(initial.saturating_mul(U96F32::from_u64(p).safe_div(max)))
    });
    let from_parents = parents.iter().fold(U96F32(0), |acc, (p, who)| {
        let share = U96F32::from_u64(*p).safe_div(max);
        acc.saturating_add(U96F32::from_u64(parent_stake(who)).saturating_mul(share))
    });
    initial
        .saturating_sub(to_children)
        .saturating_add(from_parents)
        .saturating_to_u64()
}

/// Reads what the epoch of block `at` stored, for `mechanisms` mechanisms of `netuid`,
/// under runtime `spec` (the one that ran it, [`SubnetState::spec_version`]).
pub async fn read_outputs(
    node: &Node,
    netuid: u16,
    n: u16,
    mechanisms: usize,
    spec: u32,
    at: &EpochBlock,
) -> Result<StoredOutputs> {
    let layout = Layout::of_spec(spec).ok_or(ChainError::UnsupportedSpec {
        block: at.number,
        spec,
        supported: Layout::SUPPORTED,
    })?;
    let nk = |item: &Item| netuid_key(item, netuid);
    let mut b = Batch::default();
    let i_active = b.add(nk(&st::ACTIVE));
    let i_emission = b.add(nk(&st::EMISSION));
    let i_cons = b.add(nk(&st::CONSENSUS));
    let i_div = b.add(nk(&st::DIVIDENDS));
    let i_vt = b.add(nk(&st::VALIDATOR_TRUST));
    let i_vp = b.add(nk(&st::VALIDATOR_PERMIT));
    let i_sw = layout
        .stake_weight_stored()
        .then(|| b.add(nk(&st::STAKE_WEIGHT)));
    let i_rtp = layout
        .rank_trust_pruning()
        .then(|| [st::RANK, st::TRUST, st::PRUNING_SCORES].map(|item| (item, b.add(nk(&item)))));
    let mut i_inc = Vec::new();
    let mut i_bonds = Vec::new();
    for m in 0..mechanisms as u8 {
        let ix = u16_key(storage_index(netuid, m));
        i_inc.push(b.add(st::INCENTIVE.key(&[&ix])));
        i_bonds.push(
            (0..n)
                .map(|u| b.add(st::BONDS.key(&[&ix, &u16_key(u)])))
                .collect::<Vec<_>>(),
        );
    }
    let r = Read::at(node, b, &at.hash).await?;
    let nu = n as usize;
    let check = |item: &Item, got: usize| -> Result<()> {
        if got == nu {
            Ok(())
        } else {
            Err(ChainError::Contradiction {
                block: at.number,
                item: item.name,
                detail: format!("length {got} after the epoch, but SubnetworkN is {n}"),
            })
        }
    };
    macro_rules! vec_of {
        ($item:expr, $i:expr) => {{
            let v: Vec<_> = r.get(&$item, $i, Vec::new())?;
            check(&$item, v.len())?;
            v
        }};
    }
    let mut incentive = Vec::new();
    let mut bonds = Vec::new();
    for m in 0..mechanisms {
        incentive.push(vec_of!(st::INCENTIVE, i_inc[m]));
        let rows = i_bonds[m]
            .iter()
            .map(|&i| r.get::<Vec<(u16, u16)>>(&st::BONDS, i, Vec::new()))
            .collect::<Result<Vec<_>>>()?;
        bonds.push(SparseMatrix::from_rows(&rows));
    }
    let optional = |item: &Item, i: usize| -> Result<Vec<u16>> {
        let v: Vec<u16> = r.get(item, i, Vec::new())?;
        check(item, v.len())?;
        Ok(v)
    };
    let [rank, trust, pruning_scores] = match i_rtp {
        Some(items) => items.map(|(item, i)| optional(&item, i).map(Some)),
        None => [Ok(None), Ok(None), Ok(None)],
    };
    Ok(StoredOutputs {
        stake_weight: i_sw.map(|i| optional(&st::STAKE_WEIGHT, i)).transpose()?,
        rank: rank?,
        trust: trust?,
        pruning_scores: pruning_scores?,
        active: vec_of!(st::ACTIVE, i_active),
        emission: vec_of!(st::EMISSION, i_emission),
        consensus: vec_of!(st::CONSENSUS, i_cons),
        dividends: vec_of!(st::DIVIDENDS, i_div),
        validator_trust: vec_of!(st::VALIDATOR_TRUST, i_vt),
        validator_permit: vec_of!(st::VALIDATOR_PERMIT, i_vp),
        incentive,
        bonds,
    })
}
