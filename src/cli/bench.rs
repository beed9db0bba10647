//! `yuma bench`: epochs per second on the chosen backend and on the CPU path, measured
//! side by side in one run on the same generated batch.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use yuma::backend::{self, Backend, BackendKind, cpu::CpuBackend};
use yuma::example::{Variant, realistic};
use yuma::model::EpochInput;

/// Arguments of `yuma bench`.
#[derive(clap::Args)]
pub struct Args {
    /// Backend to measure against the CPU path.
    #[arg(long, value_parser = super::backend_kind(), default_value = "auto")]
    backend: BackendKind,
    /// Rerun a batch on the CPU when the GPU device fails, instead of failing.
    #[arg(long)]
    cpu_fallback: bool,
    /// Subnets (epochs) per batch.
    #[arg(long, default_value_t = 128)]
    subnets: usize,
    /// Uids per subnet.
    #[arg(long, default_value_t = 256)]
    n: u16,
    /// Validators per subnet (full weight rows).
    #[arg(long, default_value_t = 64)]
    validators: u16,
    /// Epoch variant.
    #[arg(long, value_parser = super::variant(), default_value = "y3-la")]
    variant: Variant,
    /// Timed repetitions of the whole batch per path (the best is reported).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
}

/// Best wall time of `repeats` runs of the batch (after one warm-up run).
fn time_batch(b: &dyn Backend, inputs: &[EpochInput], repeats: usize) -> anyhow::Result<Duration> {
    let check = |r: Vec<backend::EpochResult>| -> anyhow::Result<()> {
        for (i, x) in r.into_iter().enumerate() {
            x.with_context(|| format!("epoch {i}"))?;
        }
        Ok(())
    };
    check(b.run_batch(inputs)?)?;
    let mut best = Duration::MAX;
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        let r = b.run_batch(inputs)?;
        best = best.min(t.elapsed());
        check(r)?;
    }
    Ok(best)
}

/// Runs `yuma bench`.
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let inputs: Vec<EpochInput> = (0..args.subnets as u64)
        .map(|s| realistic(args.n, args.validators, args.variant, s))
        .collect();
    let chosen = backend::open_with(args.backend, args.cpu_fallback)?;
    let cpu = CpuBackend::new();
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;

    println!(
        "batch: {} subnets x n = {} ({} validators, {:?}), best of {}",
        args.subnets, args.n, args.validators, args.variant, args.repeats
    );
    let rate = |d: Duration| args.subnets as f64 / d.as_secs_f64();
    let t_chosen = time_batch(chosen.as_ref(), &inputs, args.repeats)?;
    let t_all = time_batch(&cpu, &inputs, args.repeats)?;
    let t_one = one_thread.install(|| time_batch(&cpu, &inputs, args.repeats))?;
    println!(
        "{:<44} {:>12.0} epochs/s  ({:.3} ms per batch)",
        chosen.describe(),
        rate(t_chosen),
        t_chosen.as_secs_f64() * 1e3
    );
    println!(
        "{:<44} {:>12.0} epochs/s  ({:.3} ms per batch)",
        cpu.describe(),
        rate(t_all),
        t_all.as_secs_f64() * 1e3
    );
    println!(
        "{:<44} {:>12.0} epochs/s  ({:.3} ms per batch)",
        "cpu (1 thread)",
        rate(t_one),
        t_one.as_secs_f64() * 1e3
    );
    println!(
        "ratio {} / cpu (all threads): {:.2}x",
        chosen.describe(),
        t_all.as_secs_f64() / t_chosen.as_secs_f64()
    );
    println!(
        "ratio {} / cpu (1 thread):    {:.2}x",
        chosen.describe(),
        t_one.as_secs_f64() / t_chosen.as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
