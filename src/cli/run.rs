//! `yuma run`: epochs from a file, or the built-in example, on any backend.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use yuma::backend::{self, BackendKind};
use yuma::example::{default_example, example_subnet};
use yuma::model::subnet::{
    AnyInput, AnyOutput, MAX_MECHANISMS, SubnetInput, SubnetOutput, decode_documents,
};
use yuma::model::{EpochInput, EpochOutput, ToJson};

/// Arguments of `yuma run`.
#[derive(clap::Args)]
pub struct Args {
    /// A format 1 or format 2 input, a whole case (its `input` is used), or a JSON array
    /// mixing any of these.
    #[arg(long, required_unless_present = "example", conflicts_with = "example")]
    input: Option<PathBuf>,
    /// Run the built-in 256-uid example subnet (64 validators, Yuma3 + liquid alpha).
    #[arg(long)]
    example: bool,
    /// With --example: run the example as a subnet of this many mechanisms (1 to 16,
    /// even split), each with its own weights and bonds.
    #[arg(long, requires = "example", value_parser = clap::value_parser!(u8).range(1..=MAX_MECHANISMS as i64))]
    mechanisms: Option<u8>,
    /// Write the outputs as JSON here instead of standard output.
    #[arg(long)]
    output: Option<PathBuf>,
    /// With --example: print the JSON output instead of a summary.
    #[arg(long)]
    json: bool,
    /// Backend to run on.
    #[arg(long, value_parser = super::backend_kind(), default_value = "cpu")]
    backend: BackendKind,
    /// Rerun a batch on the CPU when the GPU device fails or cannot run its rule set, instead of failing.
    #[arg(long)]
    cpu_fallback: bool,
}

/// Runs `yuma run`.
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let t_read = Instant::now();
    let mut t_decode = t_read;
    let (inputs, many): (Vec<AnyInput>, bool) = match &args.input {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            t_decode = Instant::now();
            let (cases, many) =
                decode_documents(&text).with_context(|| format!("reading {}", path.display()))?;
            (cases.into_iter().map(|c| c.into_parts().0).collect(), many)
        }
        None => match args.mechanisms {
            Some(m) => (vec![AnyInput::Subnet(example_subnet(m as usize))], false),
            None => (vec![AnyInput::Epoch(default_example())], false),
        },
    };
    let t_decoded = Instant::now();
    let summary_of =
        (args.example && !args.json && args.output.is_none()).then(|| inputs[0].clone());
    let backend = backend::open_with(args.backend, args.cpu_fallback)?;
    let start = Instant::now();
    let results = backend.run_any(inputs)?;
    let elapsed = start.elapsed();
    let mut outputs: Vec<AnyOutput> = Vec::with_capacity(results.len());
    for (i, r) in results.into_iter().enumerate() {
        outputs.push(r.with_context(|| format!("epoch {i} rejected"))?);
    }

    if let Some(input) = summary_of {
        let described = backend.describe();
        match (&input, &outputs[0]) {
            (AnyInput::Epoch(i), AnyOutput::Epoch(o)) => print_summary(i, o, elapsed, &described),
            (AnyInput::Subnet(i), AnyOutput::Subnet(o)) => {
                print_subnet_summary(i, o, elapsed, &described)
            }
            _ => unreachable!("an output has its input's format"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let t_encode = Instant::now();
    let json = if many {
        outputs.to_json(true)
    } else {
        outputs[0].to_json(true)
    };
    let t_write = Instant::now();
    match &args.output {
        Some(path) => std::fs::write(path, json + "\n")
            .with_context(|| format!("writing {}", path.display()))?,
        None => println!("{json}"),
    }
    // Where the time goes (RUST_LOG=yuma::cli::run=debug): JSON against the epoch itself.
    let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
    tracing::debug!(
        read_ms = ms(t_read, t_decode),
        decode_ms = ms(t_decode, t_decoded),
        epoch_ms = elapsed.as_secs_f64() * 1e3,
        encode_ms = ms(t_encode, t_write),
        write_ms = ms(t_write, Instant::now()),
        "yuma run timings"
    );
    Ok(ExitCode::SUCCESS)
}

/// A short human summary of one subnet epoch: each mechanism's share, then the terms
/// folded over the mechanisms.
fn print_subnet_summary(
    input: &SubnetInput,
    out: &SubnetOutput,
    elapsed: std::time::Duration,
    backend: &str,
) {
    let s = &out.subnet;
    let validators = s.new_validator_permit.iter().filter(|&&p| p).count();
    println!(
        "Built-in example subnet: n = {}, {validators} validator permits, {} mechanisms (even split of {} rao)",
        input.n,
        out.mechanisms.len(),
        input.emission
    );
    for (k, m) in out.mechanisms.iter().enumerate() {
        println!(
            "  mechanism {k}: {} weights, share {} rao",
            input.mechanisms[k].weights.nnz(),
            m.emission
        );
    }
    println!("  subnet terms, folded over the mechanisms:");
    print_top(
        &s.consensus,
        &s.server_emission,
        "consensus (miners)",
        "server emission",
    );
    print_top(
        &s.dividend,
        &s.validator_emission,
        "dividends (validators)",
        "validator emission",
    );
    let paid: u128 = s
        .server_emission
        .iter()
        .chain(&s.validator_emission)
        .map(|&e| e as u128)
        .sum();
    println!("  total emission distributed: {paid} rao");
    println!(
        "  computed on {backend} in {:.3} ms",
        elapsed.as_secs_f64() * 1e3
    );
}

/// The five uids with the largest `v`, with their `emission` (called `label`).
fn print_top(v: &[u16], emission: &[u64], what: &str, label: &str) {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by_key(|&i| (std::cmp::Reverse(v[i]), i));
    println!("  top {what}:");
    for &i in idx.iter().take(5) {
        println!(
            "    uid {i:>5}  {:>5}/65535  {label} {} rao",
            v[i], emission[i]
        );
    }
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
    print_top(
        &out.incentive,
        &out.emission,
        "incentive (miners)",
        "emission",
    );
    print_top(
        &out.dividend,
        &out.emission,
        "dividends (validators)",
        "emission",
    );
    let total: u128 = out.emission.iter().map(|&e| e as u128).sum();
    println!("  total emission distributed: {total} rao");
    println!(
        "  computed on {backend} in {:.3} ms",
        elapsed.as_secs_f64() * 1e3
    );
}
