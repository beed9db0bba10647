//! `yuma check`: fetch an epoch from a node, recompute it, and compare every value the
//! chain stored after it. Exits 0 only on a full match.

use std::process::ExitCode;

use yuma::backend::{self, BackendKind};
use yuma::chain::check::compare;
use yuma::model::subnet::{AnyInput, AnyOutput};

use super::fetch::{Source, fetch, runtime};

/// Arguments of `yuma check`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    source: Source,
    /// Backend to recompute on.
    #[arg(long, value_parser = super::backend_kind(), default_value = "cpu")]
    backend: BackendKind,
    /// Differences to print at most.
    #[arg(long, default_value_t = 20)]
    max_differences: usize,
}

/// Runs `yuma check`.
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let src = &args.source;
    let fetched = runtime()?.block_on(fetch(src, false))?;
    let stored = fetched.stored.expect("a past epoch has stored outputs");
    let input = fetched.state.input;
    let backend = backend::open_with(args.backend, false)?;
    let mut results = backend.run_any(vec![AnyInput::Subnet(input.clone())])?;
    let computed = match results.pop().expect("one result")? {
        AnyOutput::Subnet(out) => out,
        AnyOutput::Epoch(_) => anyhow::bail!("a subnet input came back as a format 1 output"),
    };
    let diffs = compare(&stored, &computed);
    let head = format!(
        "subnet {} block {} (n = {}, {} mechanism(s), spec {}, emission {} rao, {}) on {}",
        src.netuid,
        src.block,
        input.n,
        input.mechanisms.len(),
        fetched.state.spec_version,
        input.emission,
        fetched.emission_note,
        backend.describe()
    );
    if diffs.is_empty() {
        println!("PASS {head}: every stored value matches");
        return Ok(ExitCode::SUCCESS);
    }
    println!("FAIL {head}: {} stored item(s) differ", diffs.len());
    for d in diffs.iter().take(args.max_differences) {
        println!("  {d}");
    }
    Ok(ExitCode::FAILURE)
}
