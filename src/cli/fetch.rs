//! `yuma fetch`: the inputs of the epoch that ran in a block, read from a node, written
//! as a format 2 subnet case ready for `yuma run`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use yuma::chain::fetch::{self as chain_fetch, Fetched};
use yuma::chain::history::Netuids;
use yuma::chain::{ChainError, Node, Retry};
use yuma::model::subnet::{CaseKind, SubnetCase};

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
    /// Node URL: http(s):// or ws(s)://, an archive node for old blocks.
    #[arg(long)]
    node: String,
    /// Subnet: a netuid, a comma-separated list, or `all` (ranges only).
    #[arg(long, value_parser = netuids)]
    netuid: Netuids,
    /// Block whose epoch to read (the epoch ran in this block's on_initialize).
    #[arg(long, required_unless_present = "from", conflicts_with = "from")]
    block: Option<u64>,
    /// First block of a range: every epoch in --from..=--to is fetched.
    #[arg(long, requires = "to")]
    from: Option<u64>,
    /// Last block of a range.
    #[arg(long, requires = "from")]
    to: Option<u64>,
    /// Emission (rao) the epoch distributed, instead of inferring it (one block only).
    #[arg(long, conflicts_with = "from")]
    emission: Option<u64>,
    /// Output: for one block a case file (default: standard output); for a range a
    /// `.jsonl` or `.jsonl.zst` file, or a directory getting `sn<N>.jsonl.zst` per subnet.
    /// A range run resumes: epochs already in the output are skipped.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Read the state for the coming epoch (after --block), with the emission estimated
    /// from the pending amounts.
    #[arg(long, conflicts_with = "from")]
    next: bool,
    /// Epochs fetched at once in a range.
    #[arg(long, default_value_t = 32)]
    jobs: usize,
}

/// `--netuid`: `all`, or netuids separated by commas.
fn netuids(s: &str) -> Result<Netuids, String> {
    if s.eq_ignore_ascii_case("all") {
        return Ok(Netuids::All);
    }
    s.split(',')
        .map(|p| {
            p.trim()
                .parse::<u16>()
                .map_err(|e| format!("`{p}` is not a netuid (0 to 65535) or `all`: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Netuids::List)
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
    if next {
        chain_fetch::next_epoch(&node, src.netuid, src.block, src.emission).await
    } else {
        chain_fetch::epoch(&node, src.netuid, src.block, src.emission).await
    }
}

/// Runs `yuma fetch`.
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let (Some(from), Some(to)) = (args.from, args.to) else {
        return one(args);
    };
    let Some(output) = args.output.clone() else {
        anyhow::bail!("a range (--from/--to) needs --output FILE.jsonl[.zst] or DIR");
    };
    super::history::fetch_range(&args.node, &args.netuid, from, to, args.jobs, &output)
}

/// `yuma fetch` of one block.
fn one(args: Args) -> anyhow::Result<ExitCode> {
    let netuid = match &args.netuid {
        Netuids::List(l) if l.len() == 1 => l[0],
        _ => anyhow::bail!(
            "--block reads one subnet: give one --netuid (lists and `all` need --from/--to)"
        ),
    };
    let src = &Source {
        node: args.node.clone(),
        netuid,
        block: args.block.expect("clap requires --block without --from"),
        emission: args.emission,
    };
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
    let case = SubnetCase {
        format: 2,
        kind: CaseKind::Subnet,
        name: format!(
            "sn{}-block{}{}",
            src.netuid,
            src.block,
            if args.next { "-next" } else { "" }
        ),
        description: format!(
            "subnet {} {what} block {} from {}, runtime spec {}; emission {}",
            src.netuid, src.block, src.node, s.spec_version, fetched.emission_note
        ),
        input: fetched.state.input,
        output: None,
    };
    let text = serde_json::to_string(&case)? + "\n";
    match &args.output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
