//! `yuma fetch --from --to`: every epoch of some subnets in a block range, into history
//! files, concurrently, resumable, with a progress bar.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use yuma::chain::history::{self, Netuids, Progress, Range};
use yuma::chain::records::{EpochRecord, RecordWriter};
use yuma::chain::{ChainError, Node, Retry};

use super::progress::Bar;

/// Records waiting for the writer: enough to keep it busy, few enough to keep memory
/// small (a 256-uid record is about 1 MiB in memory).
const WRITE_QUEUE: usize = 8;

/// Where the records go: one file, or a directory with one file per subnet.
enum Output {
    File(RecordWriter),
    Dir(PathBuf, HashMap<u16, RecordWriter>),
}

/// Whether `path` names a history file rather than a directory.
fn is_file(path: &Path) -> bool {
    let name = path.to_string_lossy();
    name.ends_with(".jsonl") || name.ends_with(".zst")
}

impl Output {
    /// Opens the output and returns the epochs it already holds.
    fn open(path: &Path) -> anyhow::Result<(Self, HashSet<(u16, u64)>)> {
        if is_file(path) {
            let (w, done) = RecordWriter::open(path)?;
            return Ok((Output::File(w), done));
        }
        std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
        let mut writers = HashMap::new();
        let mut done = HashSet::new();
        for entry in std::fs::read_dir(path)? {
            let p = entry?.path();
            let Some(netuid) = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("sn")?.strip_suffix(".jsonl.zst"))
                .and_then(|n| n.parse::<u16>().ok())
            else {
                continue;
            };
            let (w, d) = RecordWriter::open(&p)?;
            done.extend(d);
            writers.insert(netuid, w);
        }
        Ok((Output::Dir(path.to_path_buf(), writers), done))
    }

    fn write(&mut self, r: &EpochRecord) -> anyhow::Result<()> {
        match self {
            Output::File(w) => w.write(r)?,
            Output::Dir(dir, ws) => {
                let netuid = r.chain.netuid;
                let w = match ws.entry(netuid) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(RecordWriter::open(&dir.join(format!("sn{netuid}.jsonl.zst")))?.0)
                    }
                };
                w.write(r)?
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        match self {
            Output::File(w) => w.flush()?,
            Output::Dir(_, ws) => ws.values_mut().try_for_each(RecordWriter::flush)?,
        }
        Ok(())
    }
}

/// The bar as the library's progress reporter.
struct Reporter(indicatif::ProgressBar);

impl Progress for Reporter {
    fn planned(&self, more: u64) {
        self.0.inc_length(more);
    }
    fn finished(&self) {
        self.0.inc(1);
    }
    fn note(&self, text: &str) {
        self.0.suspend(|| eprintln!("{text}"));
    }
}

/// Runs a range fetch: `jobs` epochs at once, records written by a thread of their own.
pub fn fetch_range(
    url: &str,
    netuids: &Netuids,
    from: u64,
    to: u64,
    jobs: usize,
    output: &Path,
) -> anyhow::Result<ExitCode> {
    let (mut out, done) = Output::open(output)?;
    if !done.is_empty() {
        eprintln!(
            "{}: {} epochs already fetched; resuming",
            output.display(),
            done.len()
        );
    }
    let bar = Bar::new(0, "epochs");
    let reporter = Reporter(bar.bar().clone());
    // Serialising and compressing run beside the fetches; the bounded channel holds them
    // back when the disk is slower.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<EpochRecord>(WRITE_QUEUE);
    let writer = std::thread::spawn(move || -> anyhow::Result<()> {
        while let Some(r) = rx.blocking_recv() {
            out.write(&r)?;
        }
        out.flush()
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let summary = runtime.block_on(async {
        let node = Arc::new(Node::connect(url, Retry::default()).await?);
        let range = Range {
            netuids: netuids.clone(),
            from,
            to,
            jobs,
        };
        history::fetch_range(node, &range, &done, &reporter, |r| {
            let tx = tx.clone();
            async move {
                tx.send(r)
                    .await
                    .map_err(|_| ChainError::Input("the record writer stopped".into()))
            }
        })
        .await
    });
    drop(tx);
    let written = writer.join().expect("the writer thread does not panic");
    bar.finish();
    // A writer failure shows as a closed channel to the fetches: report its own error.
    written?;
    let summary = summary?;
    eprintln!(
        "{} epochs fetched, {} already there, {} failed → {}",
        summary.fetched,
        summary.skipped,
        summary.failed.len(),
        output.display()
    );
    if summary.failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for (netuid, block, why) in summary.failed.iter().take(20) {
        eprintln!("  subnet {netuid} block {block}: {why}");
    }
    eprintln!("rerun the same command to retry the failed epochs");
    Ok(ExitCode::FAILURE)
}
