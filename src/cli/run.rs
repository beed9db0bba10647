//! `yuma run`: epochs from a file, or the built-in example, on any backend.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use yuma::backend::{self, BackendKind};
use yuma::example::default_example;
use yuma::model::{EpochInput, EpochOutput, inputs_from_json};

/// Arguments of `yuma run`.
#[derive(clap::Args)]
pub struct Args {
    /// A FORMAT v1 input, a whole case (its `input` is used), or a JSON array of either.
    #[arg(long, required_unless_present = "example", conflicts_with = "example")]
    input: Option<PathBuf>,
    /// Run the built-in 256-uid example subnet (64 validators, Yuma3 + liquid alpha).
    #[arg(long)]
    example: bool,
    /// Write the outputs as JSON here instead of standard output.
    #[arg(long)]
    output: Option<PathBuf>,
    /// With --example: print the JSON output instead of a summary.
    #[arg(long)]
    json: bool,
    /// Backend to run on.
    #[arg(long, value_parser = super::backend_kind(), default_value = "cpu")]
    backend: BackendKind,
    /// Rerun a batch on the CPU when the GPU device fails, instead of failing.
    #[arg(long)]
    cpu_fallback: bool,
}

/// Runs `yuma run`.
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let (inputs, many) = match &args.input {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            inputs_from_json(&text).with_context(|| format!("reading {}", path.display()))?
        }
        None => (vec![default_example()], false),
    };
    let backend = backend::open_with(args.backend, args.cpu_fallback)?;
    let start = Instant::now();
    let results = backend.run_batch(&inputs)?;
    let elapsed = start.elapsed();
    let mut outputs: Vec<EpochOutput> = Vec::with_capacity(results.len());
    for (i, r) in results.into_iter().enumerate() {
        outputs.push(r.with_context(|| format!("epoch {i} rejected"))?);
    }

    if args.example && !args.json && args.output.is_none() {
        print_summary(&inputs[0], &outputs[0], elapsed, &backend.describe());
        return Ok(ExitCode::SUCCESS);
    }
    let json = if many {
        serde_json::to_string_pretty(&outputs)?
    } else {
        serde_json::to_string_pretty(&outputs[0])?
    };
    match &args.output {
        Some(path) => std::fs::write(path, json + "\n")
            .with_context(|| format!("writing {}", path.display()))?,
        None => println!("{json}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// A short human summary of one epoch.
fn print_summary(
    input: &EpochInput,
    out: &EpochOutput,
    elapsed: std::time::Duration,
    backend: &str,
) {
    let validators = out.new_validator_permit.iter().filter(|&&p| p).count();
    let nnz = input.weights.nnz();
    println!(
        "Built-in example subnet: n = {}, {validators} validator permits, {nnz} weights",
        input.n
    );
    println!(
        "  variant: {}{}, kappa {}, bonds_penalty {}, emission {} rao",
        if input.yuma3 {
            "Yuma3"
        } else {
            "original Yuma"
        },
        if input.yuma3 && input.liquid_alpha {
            " + liquid alpha"
        } else {
            ""
        },
        input.kappa,
        input.bonds_penalty,
        input.emission
    );
    let top = |v: &[u16], what: &str| {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by_key(|&i| (std::cmp::Reverse(v[i]), i));
        println!("  top {what}:");
        for &i in idx.iter().take(5) {
            println!(
                "    uid {i:>5}  {:>5}/65535  emission {} rao",
                v[i], out.emission[i]
            );
        }
    };
    top(&out.incentive, "incentive (miners)");
    top(&out.dividend, "dividends (validators)");
    let total: u128 = out.emission.iter().map(|&e| e as u128).sum();
    println!("  total emission distributed: {total} rao");
    println!(
        "  computed on {backend} in {:.3} ms",
        elapsed.as_secs_f64() * 1e3
    );
}
