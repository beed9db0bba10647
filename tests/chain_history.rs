//! History for indexers: `yuma fetch --from --to` over a 1,000-epoch stretch of a node
//! stand-in (stopped midway and resumed, a torn end cut off), `yuma recompute` reproducing
//! every stored value, and a plan that misses epochs still finding all of them.

mod common;
mod standin;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use standin::{Chain, Periodic, StandIn};
use yuma::chain::history::{self, Netuids, Progress, Range, is_epoch_block};
use yuma::chain::records::{EpochRecord, RecordReader};
use yuma::chain::storage as st;
use yuma::chain::{Node, Retry};

const NETUID: u16 = 7;
const TEMPO: u16 = 9;
const EPOCHS: u64 = 1_000;

/// A stretch of `EPOCHS` epochs of one subnet (n = 48, Yuma3 + liquid alpha).
fn stretch() -> Periodic {
    standin::stretch::periodic(NETUID, TEMPO, 20_000, EPOCHS, 48, 12)
}

fn yuma() -> Command {
    Command::new(env!("CARGO_BIN_EXE_yuma"))
}

fn keys_in(path: &Path) -> Vec<(u16, u64)> {
    let mut r = RecordReader::open(path).expect("opens");
    let mut keys = Vec::new();
    while let Some((no, line)) = r.next_line().expect("reads") {
        let rec: EpochRecord = r.decode(no, &line).expect("decodes");
        keys.push(rec.key());
    }
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_is_fetched_resumed_and_recomputed() {
    let per = stretch();
    let (first, last) = (per.first, per.last);
    let chain = Chain {
        periodic: Some(Arc::new(per)),
        ..Chain::default()
    };
    let standin = StandIn::start(chain, Duration::from_millis(2)).await;
    let dir = common::tmp_dir("history");
    let file = dir.join("sn7.jsonl.zst");
    let (from, to) = (first - 4, last + 3);
    let fetch = || {
        let mut c = yuma();
        c.args([
            "fetch",
            "--node",
            &standin.http,
            "--netuid",
            "7",
            "--jobs",
            "16",
        ])
        .args(["--from", &from.to_string(), "--to", &to.to_string()])
        .arg("--output")
        .arg(&file);
        c
    };

    // Stopped once the first records are on disk.
    let mut child = fetch()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let started = Instant::now();
    while std::fs::metadata(&file).map_or(0, |m| m.len()) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "nothing written"
        );
        assert!(child.try_wait().expect("waits").is_none(), "ended early");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().expect("kills");
    child.wait().expect("reaped");
    let partial = keys_in(&file).len() as u64;
    assert!(
        partial > 0 && partial < EPOCHS,
        "{partial} epochs before the stop"
    );

    // A torn end (a half-written frame) is cut off on resume.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .expect("opens");
        f.write_all(&[0x28, 0xB5, 0x2F, 0xFD, 1, 2, 3])
            .expect("writes");
    }
    let out = fetch().output().expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("resuming"), "{err}");
    assert!(err.contains("epochs/s"), "no rate printed: {err}");
    let keys = keys_in(&file);
    let distinct: HashSet<_> = keys.iter().copied().collect();
    assert_eq!(distinct.len(), keys.len(), "an epoch was written twice");
    let expected: HashSet<(u16, u64)> = (from..=to)
        .filter(|&b| is_epoch_block(NETUID, TEMPO, b))
        .map(|b| (NETUID, b))
        .collect();
    assert_eq!(expected.len() as u64, EPOCHS);
    assert_eq!(distinct, expected);
    assert!(
        err.contains(&format!(
            "{} epochs fetched, {partial} already there, 0 failed",
            EPOCHS - partial
        )),
        "{err}"
    );

    // A rerun of a finished range fetches nothing.
    let out = fetch().output().expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("0 epochs fetched, {EPOCHS} already there")),
        "{err}"
    );

    // Every stored value is reproduced.
    let result = dir.join("recomputed.jsonl");
    let out = yuma()
        .args(["recompute", "--input"])
        .arg(&file)
        .arg("--output")
        .arg(&result)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!(
            "{EPOCHS} epochs recomputed: {EPOCHS} reproduce every stored value"
        )),
        "{text}"
    );
    let lines = std::fs::read_to_string(&result).expect("written");
    assert_eq!(lines.lines().count() as u64, EPOCHS);
    assert!(lines.lines().all(|l| l.contains("\"matches\":true")));

    // One stored value off by one: recompute says which and fails.
    let mut r = RecordReader::open(&file).expect("opens");
    let (no, line) = r.next_line().expect("reads").expect("a record");
    let mut rec = r.decode(no, &line).expect("decodes");
    rec.chain.stored.dividends[1] = rec.chain.stored.dividends[1].wrapping_add(1);
    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, serde_json::to_string(&rec).expect("encodes") + "\n").expect("writes");
    let out = yuma()
        .args(["recompute", "--no-outputs", "--input"])
        .arg(&bad)
        .arg("--output")
        .arg(dir.join("bad-out.jsonl"))
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("Dividends uid 1"), "{text}");

    // A record that does not decode is named by file, record and field.
    let mut v: serde_json::Value = serde_json::from_slice(&line).expect("JSON");
    v["input"]["tempo"] = serde_json::json!("fast");
    std::fs::write(&bad, format!("\n{v}\n")).expect("writes");
    let out = yuma()
        .args(["recompute", "--input"])
        .arg(&bad)
        .arg("--output")
        .arg(dir.join("bad-out.jsonl"))
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("bad.jsonl: record 2: in `input`") && err.contains("`tempo`"),
        "{err}"
    );
}

struct Count(AtomicU64, AtomicU64);

impl Progress for Count {
    fn planned(&self, more: u64) {
        self.0.fetch_add(more, Ordering::Relaxed);
    }
    fn finished(&self) {
        self.1.fetch_add(1, Ordering::Relaxed);
    }
    fn note(&self, text: &str) {
        panic!("unexpected note: {text}");
    }
}

/// With a stored tempo that does not match how often the epoch ran (it changed inside the
/// range), the prediction misses; every epoch is still found through its successor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epochs_the_plan_misses_are_found() {
    let mut per = standin::stretch::periodic(NETUID, TEMPO, 5_000, 40, 8, 4);
    per.before.insert(
        st::TEMPO.key(&[&NETUID.to_le_bytes()]),
        Some(parity_scale_codec::Encode::encode(&6u16)),
    );
    let (first, last) = (per.first, per.last);
    let chain = Chain {
        periodic: Some(Arc::new(per)),
        ..Chain::default()
    };
    let standin = StandIn::start(chain, Duration::ZERO).await;
    let node = Arc::new(
        Node::connect(&standin.ws, Retry::default())
            .await
            .expect("connects"),
    );
    let got = std::sync::Mutex::new(Vec::new());
    let count = Count(AtomicU64::new(0), AtomicU64::new(0));
    let range = Range {
        netuids: Netuids::All,
        from: first - 2,
        to: last,
        jobs: 4,
    };
    let summary = history::fetch_range(node, &range, &HashSet::new(), &count, |r| {
        got.lock().expect("lock").push(r.key());
        async { Ok(()) }
    })
    .await
    .expect("runs");
    let got: HashSet<_> = got.into_inner().expect("lock").into_iter().collect();
    let expected: HashSet<_> = (0..40).map(|k| (NETUID, first + k * 10)).collect();
    assert_eq!(got, expected);
    assert_eq!(summary.fetched, 40);
    assert!(summary.failed.is_empty());
    assert_eq!(
        count.0.load(Ordering::Relaxed),
        count.1.load(Ordering::Relaxed)
    );
}

/// `yuma fetch --block` and `yuma check` through the command line: the fetched case runs,
/// check passes on the stored outputs and fails naming a changed one, and a block without
/// an epoch names the nearest epochs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_block_is_fetched_and_checked_from_the_command_line() {
    let per = standin::stretch::periodic(NETUID, TEMPO, 9_000, 5, 16, 4);
    let b = per.first + 10;
    let dividends = st::DIVIDENDS.key(&[&NETUID.to_le_bytes()]);
    let mut changed = per.clone();
    {
        use parity_scale_codec::{Decode, Encode};
        let raw = changed.at[&dividends].clone().expect("stored");
        let mut v = Vec::<u16>::decode(&mut &raw[..]).expect("u16s");
        v[3] = v[3].wrapping_add(1);
        changed.at.insert(dividends, Some(v.encode()));
    }
    let serve = |p: Periodic| async {
        let chain = Chain {
            periodic: Some(Arc::new(p)),
            ..Chain::default()
        };
        StandIn::start(chain, Duration::ZERO).await
    };
    let (good, bad) = (serve(per).await, serve(changed).await);
    let dir = common::tmp_dir("one-block");
    let case = dir.join("case.json");
    let args = |url: &str, block: u64| {
        vec![
            "--node".to_string(),
            url.to_string(),
            "--netuid".into(),
            NETUID.to_string(),
            "--block".into(),
            block.to_string(),
        ]
    };

    let out = yuma()
        .arg("fetch")
        .args(args(&good.http, b))
        .arg("--output")
        .arg(&case)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = yuma()
        .args(["run", "--input"])
        .arg(&case)
        .output()
        .expect("runs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let out = yuma()
        .arg("check")
        .args(args(&good.ws, b))
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.starts_with("PASS"), "{text}");

    let out = yuma()
        .arg("check")
        .args(args(&bad.http, b))
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("FAIL") && text.contains("Dividends uid 3"),
        "{text}"
    );

    let out = yuma()
        .arg("check")
        .args(args(&good.http, b + 3))
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!(
            "no epoch of subnet {NETUID} ran in block {}",
            b + 3
        )) && err.contains(&format!("ran in block {b}")),
        "{err}"
    );
}
