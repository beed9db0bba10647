//! One epoch from a node: checks that the subnet's epoch ran in block B, reads its inputs
//! and what the chain stored after it, and sets the emission (inferred from the stored
//! `Emission`, or given).

use super::check::infer_emission;
use super::error::{ChainError, Result};
use super::rpc::Node;
use super::snapshot::{self, StoredOutputs, SubnetState};

/// An epoch read from a node: its input (emission set) and what the chain stored after it.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The inputs.
    pub state: SubnetState,
    /// The stored outputs (absent for the coming epoch).
    pub stored: Option<StoredOutputs>,
    /// How the emission was obtained, for people.
    pub emission_note: String,
    /// The block of the subnet's epoch before this one (`LastMechansimStepBlock` at B − 1).
    pub previous_epoch: u64,
}

/// Reads the epoch of `netuid` that ran in block `block`; `emission` overrides the inferred
/// total. No epoch in that block is [`ChainError::NoEpoch`], naming the nearest ones.
pub async fn epoch(node: &Node, netuid: u16, block: u64, emission: Option<u64>) -> Result<Fetched> {
    let at = snapshot::epoch_block(node, block).await?;
    let (now, before) = snapshot::epoch_ran(node, netuid, &at).await?;
    if now != block {
        return Err(ChainError::NoEpoch {
            netuid,
            block,
            last: now,
            nearest: format!(
                "the last epoch up to block {block} ran in block {now}, the one before it in block {before}"
            ),
        });
    }
    let mut state = snapshot::read_inputs(node, netuid, &at, false).await?;
    let stored = snapshot::read_outputs(
        node,
        netuid,
        state.input.n,
        state.input.mechanisms.len(),
        state.spec_version,
        &at,
    )
    .await?;
    let note = match emission {
        Some(e) => {
            state.input.emission = e;
            "given with --emission".to_string()
        }
        None => {
            // A whole epoch per mechanism: off the async workers.
            let (input, emitted) = (state.input.clone(), stored.emission.clone());
            let found = tokio::task::spawn_blocking(move || infer_emission(&input, &emitted))
                .await
                .map_err(|e| ChainError::Input(e.to_string()))?
                .map_err(|e| ChainError::Input(e.to_string()))?;
            state.input.emission = found.ok_or(ChainError::Emission {
                netuid,
                block,
                sum: stored.emission.iter().map(|&x| x as u128).sum(),
            })?;
            "inferred: the smallest total that reproduces the stored Emission".to_string()
        }
    };
    Ok(Fetched {
        state,
        stored: Some(stored),
        emission_note: note,
        previous_epoch: before,
    })
}

/// Reads the state for the coming epoch of `netuid` after block `block`, with the emission
/// estimated from the pending amounts unless `emission` gives it.
pub async fn next_epoch(
    node: &Node,
    netuid: u16,
    block: u64,
    emission: Option<u64>,
) -> Result<Fetched> {
    let at = snapshot::epoch_block(node, block).await?;
    let (last, _) = snapshot::epoch_ran(node, netuid, &at).await?;
    let mut state = snapshot::read_inputs(node, netuid, &at, true).await?;
    let note = match emission {
        Some(e) => {
            state.input.emission = e;
            "given with --emission".to_string()
        }
        None => {
            state.input.emission = state.pending_emission;
            format!(
                "estimated from the pending emission at block {block} (the coming blocks add more)"
            )
        }
    };
    Ok(Fetched {
        state,
        stored: None,
        emission_note: note,
        previous_epoch: last,
    })
}
