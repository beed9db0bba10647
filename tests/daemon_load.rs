//! The `yuma serve` binary under hostile load, as an operator runs it: maximum-size requests
//! from many clients at once (resident memory bounded, the excess refused, a small client
//! still answered), SIGTERM while saturated with the cores busy elsewhere (exit within the
//! drain timeout), and logs without colour codes when stderr is a pipe.
//!
//! `YUMA_STRESS_RUNS=N` repeats the SIGTERM test N times (default 2); docs/daemon.md
//! records a 50-run figure.

#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tonic::Code;
use tonic::transport::Channel;
use yuma::example::{Variant, realistic};
use yuma::model::EpochInput;
use yuma::server::pb::yuma_client::YumaClient;
use yuma::server::proto::{self, MatrixForm};
use yuma::server::{message_limit, pb};

/// Upper bound on any one phase, so a hang fails instead of blocking CI.
const BOUND: Duration = Duration::from_secs(120);

/// A `yuma serve` child process, its stderr collected by a thread.
struct Served {
    child: Child,
    addr: SocketAddr,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl Served {
    /// Starts `yuma serve` on a free loopback port with `args`.
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_yuma"))
            .args(["serve", "--listen", "127.0.0.1:0", "--backend", "cpu"])
            .args(args)
            // Colour would be tempting here: the logs must still carry none.
            .env("TERM", "xterm-256color")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn yuma serve");
        let mut err = child.stderr.take().unwrap();
        // Drained all along, so the daemon never blocks on a full pipe.
        let stderr = std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = err.read_to_end(&mut all);
            all
        });
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("yuma serve: listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        Self {
            child,
            addr,
            stderr: Some(stderr),
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Resident memory now, from /proc.
    fn rss_bytes(&self) -> Option<u64> {
        rss_of(self.pid())
    }

    async fn client(&self) -> YumaClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        YumaClient::new(channel)
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX)
    }

    /// Sends SIGTERM and waits up to `limit` for the exit: how long it took, and the
    /// daemon's stderr. Past `limit` it dumps every thread's stack (gdb, when installed)
    /// and fails.
    fn terminate(mut self, limit: Duration) -> (Duration, String) {
        let started = Instant::now();
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.pid(), libc::SIGTERM) }, 0);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > limit {
                let stacks = Command::new("gdb")
                    .args(["-p", &self.pid().to_string(), "-batch", "-ex"])
                    .arg("thread apply all bt")
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_else(|e| format!("(no gdb: {e})"));
                let _ = self.child.kill();
                let _ = self.child.wait();
                let log = self.log();
                panic!(
                    "yuma serve still running {limit:?} after SIGTERM\n--- log ---\n{log}\n--- stacks ---\n{stacks}"
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let took = started.elapsed();
        let log = self.log();
        assert!(status.success(), "yuma serve exited with {status}\n{log}");
        (took, log)
    }

    /// Everything the daemon wrote to stderr (once it has exited).
    fn log(&mut self) -> String {
        let bytes = self
            .stderr
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default();
        assert!(
            !bytes.contains(&0x1b),
            "ANSI escape in a log written to a pipe:\n{}",
            String::from_utf8_lossy(&bytes)
        );
        let log = String::from_utf8(bytes).expect("UTF-8 log");
        assert!(!log.contains("panicked"), "a panic in the log:\n{log}");
        log
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// VmRSS of `pid` in bytes.
fn rss_of(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kb << 10)
}

/// Records the peak resident memory of `pid` every 2 ms until stopped.
struct RssWatch {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl RssWatch {
    fn start(pid: i32) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (peak, stop) = (peak.clone(), stop.clone());
            move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(rss) = rss_of(pid) {
                        peak.fetch_max(rss, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        });
        Self { peak, stop, thread }
    }

    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        self.peak.load(Ordering::Relaxed)
    }
}

/// Processes spinning on the CPU until dropped, so the daemon competes for its cores.
struct Burners(Vec<Child>);

impl Burners {
    fn start(count: usize) -> Self {
        Self(
            (0..count)
                .map(|_| {
                    Command::new("sh")
                        .args(["-c", "while :; do :; done"])
                        .spawn()
                        .expect("spawn a CPU burner")
                })
                .collect(),
        )
    }
}

impl Drop for Burners {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A RunEpochs request of copies of `epoch` (matrices in `form`) as large as fits in
/// `bytes`.
fn request_near(epoch: &EpochInput, form: MatrixForm, bytes: usize) -> pb::RunEpochsRequest {
    let one = proto::input_to_proto(epoch, form);
    let each = prost::Message::encoded_len(&one) + 4;
    pb::RunEpochsRequest {
        epochs: vec![one; bytes / each],
    }
}

/// The n = 16 conformance case and its expected output.
fn small_case() -> (EpochInput, yuma::model::EpochOutput) {
    common::cases::conformance_cases()
        .into_iter()
        .find(|(_, c)| c.input.n == 16)
        .map(|(_, c)| (c.input, c.output.unwrap()))
        .unwrap()
}

/// Resident memory bound of `yuma serve` for given limits, as docs/daemon.md states it:
/// 64 MiB for the process itself, six times the in-flight request budget (a packed message
/// of one-byte varints decodes to four times its size, and converts to twice it), and the
/// queue's bytes.
fn documented_rss_bound(inflight_mib: u64, queue_mib: u64) -> u64 {
    (64 + 6 * inflight_mib + queue_mib) << 20
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_size_requests_from_many_clients_hold_memory_and_spare_a_small_client() {
    const MAX_MESSAGE_MIB: usize = 16;
    const INFLIGHT_MIB: u64 = 64;
    const QUEUE_MIB: u64 = 128;
    const CLIENTS: usize = 16;
    const ROUNDS: usize = 2;
    const SMALL_CALLS: usize = 20;
    let served = Served::start(&[
        "--max-message-mib",
        &MAX_MESSAGE_MIB.to_string(),
        "--max-inflight-mib",
        &INFLIGHT_MIB.to_string(),
        "--queue-mib",
        &QUEUE_MIB.to_string(),
    ]);
    let idle_rss = served.rss_bytes().unwrap();
    // Just under the message limit, 2048-uid epochs with 64 full validator rows, packed and
    // fixed-width.
    let epoch = realistic(2048, 64, Variant::Yuma3Liquid, 7);
    let bigs = Arc::new(
        [MatrixForm::Packed, MatrixForm::FixedWidth]
            .map(|form| request_near(&epoch, form, (MAX_MESSAGE_MIB << 20) - 4096)),
    );
    for big in &*bigs {
        let len = prost::Message::encoded_len(big);
        assert!(len > (MAX_MESSAGE_MIB << 20) * 9 / 10, "{len} bytes");
        assert!(len > message_limit::SMALL_MESSAGE);
    }
    let (small_input, small_want) = small_case();

    let watch = RssWatch::start(served.pid());
    let (ok, exhausted) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut set = JoinSet::new();
    for c in 0..CLIENTS {
        let (mut client, bigs) = (served.client().await, bigs.clone());
        let (ok, exhausted) = (ok.clone(), exhausted.clone());
        set.spawn(async move {
            let big = &bigs[c % 2];
            for _ in 0..ROUNDS {
                match client.run_epochs(big.clone()).await {
                    Ok(r) => {
                        let results = r.into_inner().results;
                        assert_eq!(results.len(), big.epochs.len());
                        assert!(results.iter().all(|r| matches!(
                            r.result,
                            Some(pb::epoch_result::Result::Output(_))
                        )));
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(s) if s.code() == Code::ResourceExhausted => {
                        exhausted.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(s) => panic!("a large call failed otherwise: {s:?}"),
                }
            }
        });
    }
    // The small client calls while the large ones arrive, and is answered every time.
    let mut small = served.client().await;
    let small_request = pb::RunEpochsRequest {
        epochs: vec![proto::input_to_proto(&small_input, MatrixForm::Packed)],
    };
    let small_calls = async {
        for k in 0..SMALL_CALLS {
            let mut r = small
                .run_epochs(small_request.clone())
                .await
                .unwrap_or_else(|s| panic!("small call {k} refused under load: {s:?}"))
                .into_inner();
            let Some(pb::epoch_result::Result::Output(o)) = r.results.remove(0).result else {
                panic!("small call {k}: no output");
            };
            let got = proto::output_from_proto(o, 16).unwrap();
            assert_eq!(small_want.first_difference(&got), None, "small call {k}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(BOUND, async {
        small_calls.await;
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
    })
    .await
    .expect("the load did not finish");
    let peak = watch.finish();
    let (ok, exhausted) = (
        ok.load(Ordering::Relaxed),
        exhausted.load(Ordering::Relaxed),
    );
    let bound = documented_rss_bound(INFLIGHT_MIB, QUEUE_MIB);
    eprintln!(
        "daemon_load: {CLIENTS} clients x {ROUNDS} calls of {MAX_MESSAGE_MIB} MiB (half packed, \
         half fixed-width): {ok} answered, {exhausted} RESOURCE_EXHAUSTED; {SMALL_CALLS} small \
         calls answered; RSS idle {} MiB, peak {} MiB (bound {} MiB)",
        idle_rss >> 20,
        peak >> 20,
        bound >> 20
    );
    assert!(ok >= 1, "no large call was answered");
    assert!(exhausted >= 1, "no large call was refused");
    assert_eq!(ok + exhausted, CLIENTS * ROUNDS);
    assert!(
        peak < bound,
        "peak RSS {} MiB above the documented bound {} MiB",
        peak >> 20,
        bound >> 20
    );
    served.terminate(BOUND);
}

/// Stress runs of the SIGTERM test: `YUMA_STRESS_RUNS`, default 2.
fn stress_runs() -> usize {
    std::env::var("YUMA_STRESS_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

/// One saturated daemon stopped by SIGTERM: a full queue, batches running, every call
/// large enough for the parallel decode and encode; returns how long the exit took and
/// whether every accepted call finished (rather than being abandoned at the timeout).
async fn sigterm_while_saturated(drain: Duration, run: usize) -> (Duration, bool) {
    let served = Served::start(&[
        "--max-batch",
        "16",
        "--queue-capacity",
        "64",
        "--max-epochs-per-request",
        "16",
        "--drain-timeout-s",
        &drain.as_secs_f64().to_string(),
    ]);
    // 16 epochs of about 0.5 MiB: decoded (over 1 MiB) and encoded (over 8 results) on the
    // rayon pool, the path that was suspected of hanging shutdown.
    let epoch = realistic(1024, 64, Variant::Yuma3Liquid, run as u64);
    let request = Arc::new(pb::RunEpochsRequest {
        epochs: vec![proto::input_to_proto(&epoch, MatrixForm::FixedWidth); 16],
    });
    assert!(prost::Message::encoded_len(&*request) > 1 << 20);
    let stop = Arc::new(AtomicBool::new(false));
    let (answered, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut set = JoinSet::new();
    for _ in 0..8 {
        let (mut client, request) = (served.client().await, request.clone());
        let (stop, answered, refused) = (stop.clone(), answered.clone(), refused.clone());
        set.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match client.run_epochs((*request).clone()).await {
                    Ok(r) => {
                        assert_eq!(r.into_inner().results.len(), 16);
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(s) if s.code() == Code::ResourceExhausted => {
                        refused.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    // Shutdown: refused, or the connection closed under the call.
                    Err(_) if stop.load(Ordering::Relaxed) => break,
                    Err(s) => panic!("call failed before SIGTERM: {s:?}"),
                }
            }
        });
    }
    // Saturated: the queue has refused calls, and batches have run.
    let started = Instant::now();
    while answered.load(Ordering::Relaxed) == 0 || refused.load(Ordering::Relaxed) == 0 {
        assert!(started.elapsed() < BOUND, "the daemon never saturated");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let (took, log) = tokio::task::spawn_blocking(move || served.terminate(drain + BOUND))
        .await
        .unwrap();
    assert!(log.contains("stopped"), "{log}");
    if std::env::var_os("YUMA_SHOW_LOG").is_some() {
        eprintln!("--- run {run}: exit after {took:?} ---\n{log}");
    }
    tokio::time::timeout(BOUND, async {
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
    })
    .await
    .expect("a client hung after the daemon exited");
    (took, !log.contains("drain timeout"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_saturated_exits_within_the_drain_timeout() {
    const DRAIN: Duration = Duration::from_secs(3);
    // Scheduling slack past the drain timeout: the exit itself on cores other processes
    // are also using.
    const SLACK: Duration = Duration::from_secs(2);
    let runs = stress_runs();
    let _burners = Burners::start(2);
    let mut times = Vec::new();
    let mut drained = 0;
    for run in 0..runs {
        let (took, finished) = sigterm_while_saturated(DRAIN, run).await;
        drained += usize::from(finished);
        assert!(
            took <= DRAIN + SLACK,
            "run {run}: exit took {took:?}, drain timeout {DRAIN:?}"
        );
        times.push(took);
    }
    times.sort();
    eprintln!(
        "daemon_load: {runs} SIGTERMs under saturation beside 2 CPU burners: exit median {:?}, \
         max {:?} (drain timeout {DRAIN:?}); {drained} drained every call, the rest abandoned \
         calls at the timeout",
        times[times.len() / 2],
        times[times.len() - 1]
    );
}

#[test]
fn logs_carry_no_colour_codes_into_a_pipe() {
    let served = Served::start(&[]);
    // `terminate` checks the log for ESC bytes (and panics).
    let (_, log) = served.terminate(BOUND);
    assert!(log.contains("serving yuma.v1.Yuma"), "{log}");
    assert!(log.contains("stopped"), "{log}");
}
