//! Every epoch of some subnets in a block range, fetched concurrently.
//!
//! The epoch blocks are predicted from each subnet's tempo (`blocks_until_next_epoch`:
//! an epoch runs when `(block + netuid + 1) % (tempo + 1) == tempo`) and confirmed by
//! `LastMechansimStepBlock`, which also names the epoch before each one: an epoch the
//! prediction missed (a tempo change inside the range) is found through its successor and
//! fetched too, so the range is complete whatever the tempo did.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use tokio::task::JoinSet;

use super::error::{ChainError, Result};
use super::fetch::{self, Fetched};
use super::records::{ChainFacts, EpochRecord};
use super::rpc::Node;
use super::storage::{self as st, u16_key};
use crate::model::subnet::CaseKind;

/// Which subnets a range covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Netuids {
    /// Every subnet that exists at the start or the end of the range (not the root, 0).
    All,
    /// These subnets.
    List(Vec<u16>),
}

/// What a range run did.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Epochs fetched and handed on.
    pub fetched: u64,
    /// Epochs skipped because the output already held them.
    pub skipped: u64,
    /// Epochs that failed, with the reason (a rerun retries them).
    pub failed: Vec<(u16, u64, String)>,
}

/// What a range run reports as it goes.
pub trait Progress: Send + Sync {
    /// `more` epochs were added to the plan.
    fn planned(&self, more: u64);
    /// One planned epoch is finished (fetched, skipped, not an epoch, or failed).
    fn finished(&self);
    /// Something a person should read.
    fn note(&self, text: &str);
}

/// Converts a fetched epoch to a history record.
pub fn record(netuid: u16, block: u64, f: Fetched) -> EpochRecord {
    EpochRecord {
        format: 2,
        kind: CaseKind::Subnet,
        name: format!("sn{netuid}-block{block}"),
        input: f.state.input,
        chain: ChainFacts {
            netuid,
            block,
            spec_version: f.state.spec_version,
            emission: f.emission_note,
            stored: f.stored.expect("a past epoch has stored outputs"),
        },
    }
}

/// Whether subnet `netuid` with `tempo` runs its epoch in `block`.
pub fn is_epoch_block(netuid: u16, tempo: u16, block: u64) -> bool {
    tempo != 0 && (block.wrapping_add(netuid as u64 + 1)) % (tempo as u64 + 1) == tempo as u64
}

/// The subnets of `netuids` and, for each, the blocks in `from..=to` predicted to hold
/// an epoch plus the last epoch up to `to`.
async fn plan(node: &Node, netuids: &Netuids, from: u64, to: u64) -> Result<Vec<(u16, Vec<u64>)>> {
    let to_hash = node.block_hash(to).await?;
    let list: Vec<u16> = match netuids {
        Netuids::List(l) => l.clone(),
        Netuids::All => {
            let from_hash = node.block_hash(from).await?;
            let prefix = st::NETWORKS_ADDED.key(&[]);
            let mut all = BTreeSet::new();
            for hash in [&from_hash, &to_hash] {
                let keys = node.keys(&prefix, hash).await?;
                let vals = node.storage_many(&keys, hash).await?;
                for (k, v) in keys.iter().zip(vals) {
                    let added = st::NETWORKS_ADDED.decode(k, v.as_deref(), false)?;
                    let raw = st::NETWORKS_ADDED.last_key(k, &prefix);
                    let netuid = raw
                        .and_then(|b| <[u8; 2]>::try_from(b).ok())
                        .map(u16::from_le_bytes)
                        .ok_or_else(|| ChainError::Decode {
                            item: st::NETWORKS_ADDED.name,
                            key: super::rpc::to_hex(k),
                            ty: "key (NetUid)",
                            reason: "the key does not end in a u16".into(),
                        })?;
                    // The root network (0) runs no Yuma epoch.
                    if added && netuid != 0 {
                        all.insert(netuid);
                    }
                }
            }
            all.into_iter().collect()
        }
    };
    let mut keys = Vec::new();
    for &netuid in &list {
        keys.push(st::TEMPO.key(&[&u16_key(netuid)]));
        keys.push(st::LAST_MECHANISM_STEP_BLOCK.key(&[&u16_key(netuid)]));
    }
    let vals = node.storage_many(&keys, &to_hash).await?;
    let mut out = Vec::with_capacity(list.len());
    for (i, &netuid) in list.iter().enumerate() {
        let tempo: u16 = st::TEMPO.decode(&keys[2 * i], vals[2 * i].as_deref(), 360)?;
        let last: u64 = st::LAST_MECHANISM_STEP_BLOCK.decode(
            &keys[2 * i + 1],
            vals[2 * i + 1].as_deref(),
            0,
        )?;
        let mut blocks: BTreeSet<u64> = BTreeSet::new();
        if tempo != 0 {
            let period = tempo as u64 + 1;
            // The first predicted block at or after `from`.
            let offset = (from.wrapping_add(netuid as u64 + 1)) % period;
            let mut b = from + (tempo as u64 + period - offset) % period;
            while b <= to {
                blocks.insert(b);
                b += period;
            }
        }
        if (from..=to).contains(&last) && last > 0 {
            blocks.insert(last);
        }
        out.push((netuid, blocks.into_iter().collect()));
    }
    Ok(out)
}

/// The outcome of one planned block.
enum Outcome {
    /// The epoch, and the one before it.
    Epoch(Box<EpochRecord>, u64),
    /// No epoch ran there; the last one up to it ran at this block.
    NotAnEpoch(u64),
}

async fn one(node: Arc<Node>, netuid: u16, block: u64) -> Result<Outcome> {
    match fetch::epoch(&node, netuid, block, None).await {
        Ok(f) => {
            let before = f.previous_epoch;
            // Building the record is cheap; the emission inference ran inside `epoch`.
            Ok(Outcome::Epoch(Box::new(record(netuid, block, f)), before))
        }
        Err(ChainError::NoEpoch { last, .. }) => Ok(Outcome::NotAnEpoch(last)),
        Err(e) => Err(e),
    }
}

/// A block range of some subnets, and how many epochs to fetch at once.
#[derive(Clone, Debug)]
pub struct Range {
    /// The subnets.
    pub netuids: Netuids,
    /// First block.
    pub from: u64,
    /// Last block.
    pub to: u64,
    /// Epochs fetched at once (at least 1).
    pub jobs: usize,
}

/// Fetches every epoch of `range`, handing each record to `sink` (which may wait: that
/// holds the fetches back). Epochs in `done` are skipped. An epoch that fails after the
/// client's retries is reported in the summary and the others go on.
pub async fn fetch_range<S, F>(
    node: Arc<Node>,
    range: &Range,
    done: &HashSet<(u16, u64)>,
    progress: &dyn Progress,
    mut sink: S,
) -> Result<Summary>
where
    S: FnMut(EpochRecord) -> F,
    F: std::future::Future<Output = Result<()>>,
{
    let (from, to) = (range.from, range.to);
    if from > to {
        return Err(ChainError::Input(format!(
            "the range {from}..={to} is empty (--from is after --to)"
        )));
    }
    let planned = plan(&node, &range.netuids, from, to).await?;
    let mut seen: HashSet<(u16, u64)> = HashSet::new();
    let mut queue: Vec<(u16, u64)> = Vec::new();
    for (netuid, blocks) in planned {
        for b in blocks {
            seen.insert((netuid, b));
            queue.push((netuid, b));
        }
    }
    // Popped from the end: highest blocks first, whose `before` links reach anything the
    // plan missed.
    queue.sort_by_key(|&(n, b)| (b, n));
    progress.planned(queue.len() as u64);
    let mut summary = Summary::default();
    let mut running: JoinSet<(u16, u64, Result<Outcome>)> = JoinSet::new();
    let jobs = range.jobs.max(1);
    loop {
        while running.len() < jobs {
            let Some((netuid, block)) = queue.pop() else {
                break;
            };
            if done.contains(&(netuid, block)) {
                summary.skipped += 1;
                progress.finished();
                continue;
            }
            let node = node.clone();
            running.spawn(async move { (netuid, block, one(node, netuid, block).await) });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (netuid, block, outcome) = joined.map_err(|e| ChainError::Input(e.to_string()))?;
        let mut discover = |b: u64, queue: &mut Vec<(u16, u64)>| {
            if (from..=to).contains(&b) && b > 0 && seen.insert((netuid, b)) {
                queue.push((netuid, b));
                progress.planned(1);
            }
        };
        match outcome {
            Ok(Outcome::Epoch(rec, before)) => {
                discover(before, &mut queue);
                sink(*rec).await?;
                summary.fetched += 1;
            }
            Ok(Outcome::NotAnEpoch(last)) => discover(last, &mut queue),
            Err(e) => {
                progress.note(&format!("subnet {netuid} block {block}: {e}"));
                summary.failed.push((netuid, block, e.to_string()));
            }
        }
        progress.finished();
    }
    summary.failed.sort();
    Ok(summary)
}
