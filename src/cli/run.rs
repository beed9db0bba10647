//! `yuma run`: epochs from a file, or the built-in example, on any backend.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::Value;
use yuma::backend::{self, BackendKind};
use yuma::example::default_example;
use yuma::model::{EpochInput, EpochOutput, decode};

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

/// Reads inputs: one input, one case, or an array of inputs and cases.
fn read_inputs(text: &str) -> anyhow::Result<(Vec<EpochInput>, bool)> {
    let value: Value = serde_json::from_str(text).context("input is not valid JSON")?;
    let one = |v: &Value, at: &str| -> anyhow::Result<EpochInput> {
        let v = v
            .get("input")
            .filter(|_| v.get("format").is_some())
            .unwrap_or(v);
        decode(&v.to_string()).with_context(|| format!("in {at}"))
    };
    match &value {
        Value::Array(items) => {
            let inputs = items
                .iter()
                .enumerate()
                .map(|(i, v)| one(v, &format!("element {i}")))
                .collect::<Result<_, _>>()?;
            Ok((inputs, true))
        }
        Value::Object(_) => Ok((vec![one(&value, "the document")?], false)),
        _ => bail!("input must be a JSON object (an input or a case) or an array of them"),
    }
}

/// Runs `yuma run`.
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let (inputs, many) = match &args.input {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            read_inputs(&text).with_context(|| format!("reading {}", path.display()))?
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
