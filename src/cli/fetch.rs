//! `yuma fetch`: the inputs of the epoch that ran in a block, read from a node, written
//! as a format 2 subnet case ready for `yuma run`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;
use yuma::chain::snapshot::{self, EpochBlock, StoredOutputs, SubnetState};
use yuma::chain::{ChainError, Node, Retry};
use yuma::epoch::mechanisms::run_subnet;

/// Where to read an epoch from (shared by `fetch` and `check`).
#[derive(clap::Args)]
pub struct Source {
    /// Node URL: http(s):// or ws(s)://, an archive node for old blocks.
    #[arg(long)]
    pub node: String,
    /// Subnet.
    #[arg(long)]
    pub netuid: u16,
    /// Block whose epoch to read (the epoch ran in this block's on_initialize).
    #[arg(long)]
    pub block: u64,
    /// Emission (rao) the epoch distributed, instead of inferring it from the stored Emission.
    #[arg(long)]
    pub emission: Option<u64>,
}

/// Arguments of `yuma fetch`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    source: Source,
    /// Write the case here instead of standard output.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Read the state for the coming epoch (after --block), with the emission estimated
    /// from the pending amounts.
    #[arg(long)]
    next: bool,
}

/// An epoch read from a node: its input (emission set) and what the chain stored after it.
pub struct Fetched {
    /// The inputs.
    pub state: SubnetState,
    /// The stored outputs (absent for `--next`).
    pub stored: Option<StoredOutputs>,
    /// How the emission was obtained.
    pub emission_note: String,
}

/// A current-thread runtime for one command's node traffic.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Reads the epoch of `src` (or the coming one with `next`).
pub async fn fetch(src: &Source, next: bool) -> Result<Fetched, ChainError> {
    let node = Node::connect(&src.node, Retry::default()).await?;
    let at: EpochBlock = snapshot::epoch_block(&node, src.block).await?;
    if !next {
        let (now, before) = snapshot::epoch_ran(&node, src.netuid, &at).await?;
        if now != src.block {
            return Err(ChainError::NoEpoch {
                netuid: src.netuid,
                block: src.block,
                nearest: format!(
                    "the last epoch up to block {} ran in block {now}, the one before it in block {before}",
                    src.block
                ),
            });
        }
    }
    let mut state = snapshot::read_inputs(&node, src.netuid, &at, next).await?;
    if next {
        let (emission, note) = match src.emission {
            Some(e) => (e, "given with --emission".to_string()),
            None => (
                state.pending_emission,
                format!(
                    "estimated from the pending emission at block {} (the coming blocks add more)",
                    src.block
                ),
            ),
        };
        state.input.emission = emission;
        return Ok(Fetched {
            state,
            stored: None,
            emission_note: note,
        });
    }
    let stored = snapshot::read_outputs(
        &node,
        src.netuid,
        state.input.n,
        state.input.mechanisms.len(),
        state.spec_version,
        &at,
    )
    .await?;
    let note = match src.emission {
        Some(e) => {
            state.input.emission = e;
            "given with --emission".to_string()
        }
        None => {
            let found =
                yuma::chain::check::infer_emission(&state.input, &stored.emission, run_subnet)
                    .map_err(|e| ChainError::Input(e.to_string()))?;
            let e = found.ok_or(ChainError::Emission {
                netuid: src.netuid,
                block: src.block,
                sum: stored.emission.iter().map(|&x| x as u128).sum(),
            })?;
            state.input.emission = e;
            "inferred: the total that reproduces the stored Emission".to_string()
        }
    };
    Ok(Fetched {
        state,
        stored: Some(stored),
        emission_note: note,
    })
}

/// Runs `yuma fetch`.
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let src = &args.source;
    let fetched = runtime()?.block_on(fetch(src, args.next))?;
    let s = &fetched.state;
    let what = if args.next {
        "coming epoch after"
    } else {
        "epoch of"
    };
    eprintln!(
        "subnet {} {what} block {}: n = {}, {} mechanism(s), spec {}, emission {} rao ({})",
        src.netuid,
        src.block,
        s.input.n,
        s.input.mechanisms.len(),
        s.spec_version,
        s.input.emission,
        fetched.emission_note
    );
    let case = json!({
        "format": 2,
        "kind": "subnet",
        "name": format!("sn{}-block{}{}", src.netuid, src.block, if args.next { "-next" } else { "" }),
        "description": format!(
            "subnet {} {what} block {} from {}, runtime spec {}; emission {}",
            src.netuid, src.block, src.node, s.spec_version, fetched.emission_note
        ),
        "input": s.input,
    });
    let text = serde_json::to_string(&case)? + "\n";
    match &args.output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
