//! `yuma recompute`: streams history files through a backend, compares each epoch with what
//! the chain stored, and writes the recomputed outputs as JSON lines.
//!
//! Three stages overlap: a reader thread decompresses and splits lines, the main thread
//! decodes a batch (in parallel), runs it on the backend and encodes the results (in
//! parallel), and a writer thread compresses and writes. Channels between them hold two
//! batches at most, so memory stays flat however long the history is.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::sync_channel;

use anyhow::Context;
use rayon::prelude::*;
use serde::Serialize;
use yuma::backend::{self, BackendKind};
use yuma::chain::check::{Difference, compare};
use yuma::chain::records::{ChainFacts, EpochRecord, RecordReader, decode_record};
use yuma::model::subnet::{AnyInput, AnyOutput, SubnetOutput};

use super::progress::Bar;

/// Arguments of `yuma recompute`.
#[derive(clap::Args)]
pub struct Args {
    /// A history file (`.jsonl` or `.jsonl.zst`, from `yuma fetch --from --to`) or a
    /// directory of them.
    #[arg(long)]
    input: PathBuf,
    /// Where to write one JSON line per epoch (`.zst` compresses).
    #[arg(long)]
    output: PathBuf,
    /// Backend to recompute on.
    #[arg(long, value_parser = super::backend_kind(), default_value = "cpu")]
    backend: BackendKind,
    /// Rerun a batch on the CPU when the GPU device fails or cannot run its rule set.
    #[arg(long)]
    cpu_fallback: bool,
    /// Epochs per backend batch.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Leave the recomputed outputs out of the output lines (keys and verdicts only).
    #[arg(long)]
    no_outputs: bool,
}

/// One output line.
#[derive(Serialize)]
struct Line<'a> {
    netuid: u16,
    block: u64,
    spec_version: u32,
    /// Every stored value reproduced.
    matches: bool,
    /// The first difference of each stored item, as text.
    differences: Vec<String>,
    /// Why the input was rejected, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<&'a SubnetOutput>,
}

/// The history files under `input`, in name order.
fn files(input: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !input.is_dir() {
        return Ok(vec![input.to_path_buf()]);
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(input)
        .with_context(|| format!("reading {}", input.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    v.retain(|p| {
        let n = p.to_string_lossy();
        n.ends_with(".jsonl") || n.ends_with(".jsonl.zst")
    });
    v.sort();
    Ok(v)
}

/// A batch's encoded lines as one chunk of the output: as they are, or as zstd frames
/// compressed on every thread (one compressing writer thread would cap the rate).
fn join(lines: Vec<Vec<u8>>, zst: bool) -> anyhow::Result<Vec<u8>> {
    if !zst {
        return Ok(lines.concat());
    }
    let per = lines.len().div_ceil(rayon::current_num_threads()).max(1);
    let frames = lines
        .par_chunks(per)
        .map(|group| zstd::bulk::compress(&group.concat(), 3))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(frames.concat())
}

/// Counts of a run.
#[derive(Default)]
struct Tally {
    epochs: u64,
    mismatched: u64,
    rejected: u64,
    first: Vec<String>,
}

/// Runs `yuma recompute`.
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let files = files(&args.input)?;
    anyhow::ensure!(
        !files.is_empty(),
        "{}: no .jsonl or .jsonl.zst files",
        args.input.display()
    );
    let backend = backend::open_with(args.backend, args.cpu_fallback)?;
    let batch = args.batch.max(1);
    eprintln!(
        "recomputing {} file(s) on {}",
        files.len(),
        backend.describe()
    );

    // Reader: raw lines, a batch at a time.
    type Lines = Vec<(PathBuf, u64, Vec<u8>)>;
    let (line_tx, line_rx) = sync_channel::<anyhow::Result<Lines>>(2);
    let reader = std::thread::spawn(move || {
        let mut pending: Lines = Vec::with_capacity(batch);
        for f in files {
            let mut r = match RecordReader::open(&f) {
                Ok(r) => r,
                Err(e) => return line_tx.send(Err(e.into())).ok(),
            };
            loop {
                match r.next_line() {
                    Ok(Some((no, bytes))) => {
                        pending.push((f.clone(), no, bytes));
                        if pending.len() == batch
                            && line_tx.send(Ok(std::mem::take(&mut pending))).is_err()
                        {
                            return None;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return line_tx.send(Err(e.into())).ok(),
                }
            }
        }
        if !pending.is_empty() {
            line_tx.send(Ok(pending)).ok()?;
        }
        Some(())
    });

    // Writer: encoded lines, compressed when the name says so.
    let (out_tx, out_rx) = sync_channel::<Vec<u8>>(2);
    let path = args.output.clone();
    let writer = std::thread::spawn(move || -> anyhow::Result<()> {
        let file =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        // Chunks come compressed already (complete zstd frames) when the name says so.
        let mut sink = std::io::BufWriter::with_capacity(1 << 20, file);
        for chunk in out_rx {
            sink.write_all(&chunk)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        sink.flush()?;
        Ok(())
    });

    let zst = args.output.extension().is_some_and(|e| e == "zst");
    let bar = Bar::new(0, "epochs");
    let mut tally = Tally::default();
    let result = (|| -> anyhow::Result<()> {
        for lines in line_rx {
            let lines = lines?;
            bar.bar().inc_length(lines.len() as u64);
            let records: Vec<EpochRecord> = lines
                .par_iter()
                .map(|(f, no, bytes)| decode_record(f, *no, bytes))
                .collect::<Result<_, _>>()?;
            let (inputs, records): (Vec<AnyInput>, Vec<ChainFacts>) = records
                .into_iter()
                .map(|r| (AnyInput::Subnet(r.input), r.chain))
                .unzip();
            let results = backend.run_any(inputs)?;
            let encoded: Vec<(Vec<u8>, bool, bool, Vec<Difference>)> = records
                .par_iter()
                .zip(results)
                .map(|(r, res)| -> anyhow::Result<_> {
                    let (out, error) = match res {
                        Ok(AnyOutput::Subnet(o)) => (Some(o), None),
                        Ok(AnyOutput::Epoch(_)) => {
                            anyhow::bail!("a subnet input came back as a format 1 output")
                        }
                        Err(e) => (None, Some(e.to_string())),
                    };
                    let diffs = out
                        .as_ref()
                        .map(|o| compare(&r.stored, o))
                        .unwrap_or_default();
                    let line = Line {
                        netuid: r.netuid,
                        block: r.block,
                        spec_version: r.spec_version,
                        matches: error.is_none() && diffs.is_empty(),
                        differences: diffs.iter().map(ToString::to_string).collect(),
                        error: error.clone(),
                        output: if args.no_outputs { None } else { out.as_ref() },
                    };
                    let mut bytes = serde_json::to_vec(&line)?;
                    bytes.push(b'\n');
                    Ok((bytes, error.is_some(), line.matches, diffs))
                })
                .collect::<anyhow::Result<_>>()?;
            let mut lines = Vec::with_capacity(encoded.len());
            for ((bytes, rejected, matches, diffs), r) in encoded.into_iter().zip(&records) {
                lines.push(bytes);
                tally.epochs += 1;
                tally.rejected += rejected as u64;
                if !matches {
                    tally.mismatched += 1;
                    if tally.first.len() < 10 {
                        let why = diffs
                            .first()
                            .map_or("input rejected".to_string(), ToString::to_string);
                        tally
                            .first
                            .push(format!("subnet {} block {}: {why}", r.netuid, r.block));
                    }
                }
            }
            bar.bar().inc(records.len() as u64);
            out_tx
                .send(join(lines, zst)?)
                .context("the output writer stopped")?;
        }
        Ok(())
    })();
    drop(out_tx);
    let written = writer.join().expect("the writer thread does not panic");
    reader.join().expect("the reader thread does not panic");
    bar.finish();
    written?;
    result?;
    println!(
        "{} epochs recomputed: {} reproduce every stored value, {} differ, {} rejected → {}",
        tally.epochs,
        tally.epochs - tally.mismatched,
        tally.mismatched - tally.rejected,
        tally.rejected,
        args.output.display()
    );
    for f in &tally.first {
        println!("  {f}");
    }
    Ok(if tally.mismatched == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
