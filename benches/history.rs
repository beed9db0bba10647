//! History at scale (issue 12): a range fetch against the node stand-in with latency on
//! every call, its memory as the range grows, and `yuma recompute` against the in-process
//! batch rate on the same epochs, side by side in one run.
//!
//! `cargo bench --bench history [-- EPOCHS LATENCY_MS JOBS]` (defaults 1000, 10, 64).
//! Figures go to standard output; docs/benchmarks.md records them.

#[path = "../tests/standin/mod.rs"]
mod standin;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use standin::{Chain, StandIn};
use yuma::backend::{self, BackendKind};
use yuma::chain::history::{self, Netuids, Progress, Range};
use yuma::chain::records::{EpochRecord, RecordReader, RecordWriter};
use yuma::chain::{Node, Retry};
use yuma::model::subnet::AnyInput;

const NETUID: u16 = 7;

struct Quiet;
impl Progress for Quiet {
    fn planned(&self, _: u64) {}
    fn finished(&self) {}
    fn note(&self, text: &str) {
        eprintln!("{text}");
    }
}

/// This process's resident set, in MiB (Linux).
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Fetches `epochs` epochs of a 256-uid Yuma3 + liquid alpha subnet with `latency` on
/// every stand-in call into `file`; returns (seconds, peak RSS MiB while running).
fn fetch(epochs: u64, latency: Duration, jobs: usize, file: &Path) -> (f64, f64) {
    let _ = std::fs::remove_file(file);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let per = standin::stretch::periodic(NETUID, 360, 4_000_000, epochs, 256, 64);
        let (from, to) = (per.first, per.last);
        let chain = Chain {
            periodic: Some(Arc::new(per)),
            ..Chain::default()
        };
        let standin = StandIn::start(chain, latency).await;
        let node = Arc::new(
            Node::connect(&standin.ws, Retry::default())
                .await
                .expect("connects"),
        );
        let (mut writer, _) = RecordWriter::open(file).expect("opens");
        let (tx, mut rx) = tokio::sync::mpsc::channel::<EpochRecord>(8);
        let write = std::thread::spawn(move || {
            while let Some(r) = rx.blocking_recv() {
                writer.write(&r).expect("writes");
            }
            writer.flush().expect("flushes");
        });
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, stop) = (peak.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_mib() as u64, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        let t = Instant::now();
        let range = Range {
            netuids: Netuids::List(vec![NETUID]),
            from,
            to,
            jobs,
        };
        let summary = history::fetch_range(node, &range, &HashSet::new(), &Quiet, |r| {
            let tx = tx.clone();
            async move {
                tx.send(r).await.expect("writer runs");
                Ok(())
            }
        })
        .await
        .expect("fetches");
        drop(tx);
        write.join().expect("writer");
        let secs = t.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        sampler.join().expect("sampler");
        assert_eq!(summary.fetched, epochs, "{:?}", summary.failed);
        (secs, peak.load(Ordering::Relaxed) as f64)
    })
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let arg = |i: usize, d: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (epochs, latency_ms, jobs) = (arg(0, 1000), arg(1, 10), arg(2, 64) as usize);
    let latency = Duration::from_millis(latency_ms);
    let dir = std::env::temp_dir().join(format!("yuma-bench-history-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("range.jsonl.zst");
    println!(
        "machine: {} cores; stand-in latency {latency_ms} ms per call; {jobs} epochs at once",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // Memory as the range grows: the peak resident set while each range runs.
    for n in [epochs / 4, epochs / 2, epochs, epochs * 2] {
        let (secs, peak) = fetch(n.max(1), latency, jobs, &file);
        println!(
            "fetch {n:>5} epochs (n = 256, Yuma3 + LA): {secs:7.2} s, {:7.1} epochs/s, peak RSS {peak:.0} MiB, file {:.1} MiB",
            n as f64 / secs,
            std::fs::metadata(&file).map_or(0, |m| m.len()) as f64 / (1 << 20) as f64
        );
    }

    // Recompute against the in-process batch, on the last range's records.
    let mut reader = RecordReader::open(&file).expect("opens");
    let mut inputs = Vec::new();
    while let Some((no, line)) = reader.next_line().expect("reads") {
        inputs.push(AnyInput::Subnet(
            reader.decode(no, &line).expect("decodes").input,
        ));
    }
    let count = inputs.len();
    let cpu = backend::open_with(BackendKind::Cpu, false).expect("cpu");
    let t = Instant::now();
    for chunk in inputs.chunks(256) {
        let out = cpu.run_any(chunk.to_vec()).expect("runs");
        assert!(out.iter().all(Result::is_ok));
    }
    let in_process = count as f64 / t.elapsed().as_secs_f64();
    println!(
        "in-process batch (cpu backend, 256 per batch): {in_process:8.1} epochs/s over {count}"
    );
    for extra in [&[][..], &["--no-outputs"][..]] {
        let out_file = dir.join("recomputed.jsonl.zst");
        let t = Instant::now();
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_yuma"))
            .args(["recompute", "--input"])
            .arg(&file)
            .arg("--output")
            .arg(&out_file)
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("runs yuma");
        assert!(status.success(), "recompute failed");
        let rate = count as f64 / t.elapsed().as_secs_f64();
        println!(
            "yuma recompute {:<14} {rate:8.1} epochs/s = {:.0} % of in-process",
            extra.first().copied().unwrap_or("(outputs)"),
            100.0 * rate / in_process
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
