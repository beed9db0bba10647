//! The gRPC daemon end to end: a real server on a loopback port, real tonic clients.
//! Every conformance case (every era's too) through it, many concurrent clients, malformed
//! input, a full queue, deadlines, cancellation, auth, health and graceful shutdown.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tonic::transport::Channel;
use tonic::{Code, Request};
use yuma::backend::cpu::CpuBackend;
use yuma::backend::{Backend, BackendError, EpochResult};
use yuma::model::subnet::SubnetCase;
use yuma::model::{EpochInput, EpochOutput};
use yuma::server::batcher::BatchConfig;
use yuma::server::metrics::Metrics;
use yuma::server::pb::yuma_client::YumaClient;
use yuma::server::proto::MatrixForm;
use yuma::server::proto::subnet;
use yuma::server::{Limits, ServerConfig, ServerError, pb, proto, serve};

/// Upper bound on any one test's network phase, so a hang fails instead of blocking CI.
const BOUND: Duration = Duration::from_secs(120);

/// Every case with its expected output, named by file.
fn cases() -> Vec<(String, EpochInput, EpochOutput)> {
    common::cases::all_cases()
        .into_iter()
        .map(|(path, case)| {
            let out = case.output.unwrap_or_else(|| panic!("{path}: no output"));
            (path, case.input, out)
        })
        .collect()
}

/// A running daemon and the means to stop it.
struct Daemon {
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServerError>>,
}

fn batch(max_batch: usize, max_wait_ms: u64, queue_capacity: usize) -> BatchConfig {
    BatchConfig {
        max_batch,
        max_wait: Duration::from_millis(max_wait_ms),
        queue_capacity,
        queue_bytes: 1 << 30,
    }
}

fn config(batch: BatchConfig, limits: Limits) -> ServerConfig {
    ServerConfig {
        batch,
        limits,
        token: None,
        drain_timeout: BOUND,
        #[cfg(feature = "tls")]
        tls: None,
    }
}

async fn start(config: ServerConfig, backend: Arc<dyn Backend>) -> Daemon {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = Arc::new(Metrics::new(backend.describe()));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(config, backend, listener, metrics.clone(), async {
        let _ = stopped.await;
    }));
    Daemon {
        addr,
        metrics,
        stop: Some(stop),
        task,
    }
}

impl Daemon {
    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// A plaintext channel, or why it did not connect.
    #[cfg(feature = "tls")]
    async fn channel_result(&self) -> Result<Channel, String> {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .map_err(|e| e.to_string())
    }

    async fn client(&self) -> YumaClient<Channel> {
        YumaClient::new(self.channel().await)
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX)
    }

    /// Signals shutdown and waits (bounded) for the server to return.
    async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(BOUND, self.task)
            .await
            .expect("server did not stop")
            .unwrap()
            .unwrap();
    }
}

/// Checks one result against the expected output.
fn check(what: &str, result: pb::EpochResult, want: &EpochOutput) {
    match result.result {
        Some(pb::epoch_result::Result::Output(o)) => {
            let got = proto::output_from_proto(o, want.active.len())
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            if let Some(m) = want.first_difference(&got) {
                panic!("{what}: {m}");
            }
        }
        other => panic!("{what}: no output: {other:?}"),
    }
}

fn request(inputs: &[&EpochInput]) -> pb::RunEpochsRequest {
    pb::RunEpochsRequest {
        epochs: inputs
            .iter()
            .map(|i| proto::input_to_proto(i, MatrixForm::Packed))
            .collect(),
    }
}

/// A CPU backend that holds every batch until opened, counting the batches and epochs
/// that reached it.
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
    batches: AtomicUsize,
    epochs: AtomicUsize,
}

struct GateBackend(Arc<Gate>);

impl Gate {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            open: Mutex::new(false),
            opened: Condvar::new(),
            batches: AtomicUsize::new(0),
            epochs: AtomicUsize::new(0),
        })
    }

    fn release(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

impl Backend for GateBackend {
    fn describe(&self) -> String {
        "gated cpu".into()
    }

    fn run_batch(&self, inputs: &[EpochInput]) -> Result<Vec<EpochResult>, BackendError> {
        self.0.batches.fetch_add(1, Ordering::SeqCst);
        self.0.epochs.fetch_add(inputs.len(), Ordering::SeqCst);
        // Bounded, so a test that fails before releasing the gate fails instead of hanging
        // in the runtime's drop, which waits for this blocking thread.
        let (open, _) = self
            .0
            .opened
            .wait_timeout_while(self.0.open.lock().unwrap(), BOUND, |open| !*open)
            .unwrap();
        if !*open {
            return Err(BackendError::Device {
                backend: "gated cpu",
                reason: "the test never opened the gate".into(),
            });
        }
        drop(open);
        CpuBackend::new().run_batch(inputs)
    }
}

/// A daemon whose backend holds every batch until the test opens the gate, with at most
/// `max_epochs_per_request` per call, and the n = 16 conformance case the gated tests send:
/// (daemon, gate, case name, input, expected output).
async fn start_gated(
    batch: BatchConfig,
    max_epochs_per_request: usize,
) -> (Daemon, Arc<Gate>, String, Arc<EpochInput>, EpochOutput) {
    let gate = Gate::new();
    let limits = Limits {
        max_epochs_per_request,
        ..Limits::default()
    };
    let daemon = start(config(batch, limits), Arc::new(GateBackend(gate.clone()))).await;
    let (name, input, want) = cases().into_iter().find(|(_, i, _)| i.n == 16).unwrap();
    (daemon, gate, name, Arc::new(input), want)
}

/// One daemon test at a time: each starts servers, clients and CPU batches on the same two
/// cores and the same rayon pool, and under that contention their timing-dependent steps
/// (queued calls, deadlines, shutdown) interfered.
/// An async lock: each test's runtime waits on it without blocking a worker.
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

/// Polls `cond` every 5 ms until it holds (bounded by [`BOUND`]).
async fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let started = tokio::time::Instant::now();
    while !cond() {
        assert!(started.elapsed() < BOUND, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_conformance_case_through_the_daemon() {
    let _serial = serial().await;
    let all = Arc::new(cases());
    // A small stream window, so the stream below runs into the in-flight bound many times.
    let limits = Limits {
        stream_in_flight: 8,
        ..Limits::default()
    };
    let daemon = start(
        config(batch(1024, 2, 65536), limits),
        Arc::new(CpuBackend::new()),
    )
    .await;
    let client = daemon.client().await;
    let run = async {
        // One call per case, all at once: the batcher coalesces them.
        let mut set = JoinSet::new();
        for k in 0..all.len() {
            let (mut client, all) = (client.clone(), all.clone());
            set.spawn(async move {
                let (name, input, want) = &all[k];
                let mut response = client
                    .run_epochs(request(&[input]))
                    .await
                    .unwrap_or_else(|s| panic!("{name}: {s}"))
                    .into_inner();
                assert_eq!(response.results.len(), 1, "{name}");
                check(name, response.results.remove(0), want);
            });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
        // Every case in one call: results in request order. The call is big enough for the
        // server's parallel decode, conversion and encode (past 1 MiB and 2^17 values).
        let inputs: Vec<&EpochInput> = all.iter().map(|(_, i, _)| i).collect();
        let big = request(&inputs);
        assert!(
            prost::Message::encoded_len(&big) > 1 << 20,
            "{} bytes",
            prost::Message::encoded_len(&big)
        );
        let response = client.clone().run_epochs(big).await.unwrap().into_inner();
        assert_eq!(response.results.len(), all.len());
        for (k, result) in response.results.into_iter().enumerate() {
            assert_eq!(result.id, k as u64);
            check(&all[k].0, result, &all[k].2);
        }
        // Every case over one stream, ids echoed, matrices as fixed-width bytes both ways.
        let requests: Vec<pb::EpochRequest> = all
            .iter()
            .enumerate()
            .map(|(k, (_, input, _))| pb::EpochRequest {
                id: 1000 + k as u64,
                input: Some(proto::input_to_proto(input, MatrixForm::FixedWidth)),
            })
            .collect();
        let mut stream = client
            .clone()
            .stream_epochs(tokio_stream::iter(requests))
            .await
            .unwrap()
            .into_inner();
        let mut seen = vec![false; all.len()];
        while let Some(result) = stream.message().await.unwrap() {
            let k = (result.id - 1000) as usize;
            assert!(!seen[k], "id {} answered twice", result.id);
            seen[k] = true;
            if let Some(pb::epoch_result::Result::Output(o)) = &result.result {
                assert_eq!(
                    MatrixForm::of(o.bonds.as_ref()),
                    MatrixForm::FixedWidth,
                    "{}: bonds did not come back fixed-width",
                    all[k].0
                );
            }
            check(&all[k].0, result, &all[k].2);
        }
        assert!(
            seen.iter().all(|&s| s),
            "stream lost {} results",
            seen.iter().filter(|&&s| !s).count()
        );
    };
    tokio::time::timeout(BOUND, run)
        .await
        .expect("conformance through the daemon timed out");
    eprintln!(
        "daemon: {} cases checked three ways (single calls, one batch call, one stream)",
        all.len()
    );
    daemon.shutdown().await;
}

/// Every format 2 case through RunSubnetEpochs: one call holding them all (in both matrix
/// forms) and one call per case at once, each exact; a malformed subnet refuses its call
/// naming the subnet, mechanism and field, and RunEpochs keeps working beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subnet_case_through_the_daemon() {
    let _serial = serial().await;
    let all = Arc::new(common::cases::subnet_cases());
    let daemon = start(
        config(batch(1024, 2, 65536), Limits::default()),
        Arc::new(CpuBackend::new()),
    )
    .await;
    let client = daemon.client().await;
    let check_subnet = |what: &str, r: pb::SubnetResult, case: &SubnetCase| {
        let want = case.output.as_ref().unwrap();
        match r.result {
            Some(pb::subnet_result::Result::Output(o)) => {
                let got = subnet::subnet_output_from_proto(o, case.input.n as usize)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                if let Some(m) = want.first_difference(&got) {
                    panic!("{what}: {m}");
                }
            }
            other => panic!("{what}: no output: {other:?}"),
        }
    };
    let run = async {
        for form in [MatrixForm::Packed, MatrixForm::FixedWidth] {
            let req = pb::RunSubnetEpochsRequest {
                subnets: all
                    .iter()
                    .map(|(_, c)| subnet::subnet_to_proto(&c.input, form))
                    .collect(),
            };
            let response = client
                .clone()
                .run_subnet_epochs(req)
                .await
                .unwrap()
                .into_inner();
            assert_eq!(response.results.len(), all.len());
            for (k, r) in response.results.into_iter().enumerate() {
                assert_eq!(r.id, k as u64);
                check_subnet(&format!("{} ({form:?})", all[k].0), r, &all[k].1);
            }
        }
        let mut set = JoinSet::new();
        for k in 0..all.len() {
            let (mut client, all) = (client.clone(), all.clone());
            set.spawn(async move {
                let (name, case) = &all[k];
                let req = pb::RunSubnetEpochsRequest {
                    subnets: vec![subnet::subnet_to_proto(&case.input, MatrixForm::Packed)],
                };
                let mut response = client
                    .run_subnet_epochs(req)
                    .await
                    .unwrap_or_else(|s| panic!("{name}: {s}"))
                    .into_inner();
                assert_eq!(response.results.len(), 1, "{name}");
                check_subnet(name, response.results.remove(0), case);
            });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }

        // Malformed subnets: each refuses its call with a message naming where.
        let good = subnet::subnet_to_proto(&all[0].1.input, MatrixForm::Packed);
        let n = all[0].1.input.n as usize;
        let mut bad_weights = good.clone();
        if let Some(m) = bad_weights.mechanisms.last_mut() {
            m.weights.as_mut().unwrap().row_offsets.pop();
        }
        let mut bad_shared = good.clone();
        bad_shared.shared.as_mut().unwrap().last_update = vec![0; n];
        let mut bad_split = good.clone();
        bad_split.emission_split = Some(pb::EmissionSplit {
            shares: vec![65_534],
        });
        let mut too_many = good.clone();
        too_many.mechanisms = vec![good.mechanisms[0].clone(); 17];
        let last = good.mechanisms.len() - 1;
        for (sub, want) in [
            (
                bad_weights,
                format!("subnets[1]: mechanism {last}: field `weights.row_offsets`"),
            ),
            (
                bad_shared,
                "subnets[1]: field `shared.last_update` must be empty".to_string(),
            ),
            (
                bad_split,
                "subnets[1]: field `emission_split`: entries sum to 65534".to_string(),
            ),
            (
                too_many,
                "subnets[1]: field `mechanisms` has 17 entries".to_string(),
            ),
        ] {
            let req = pb::RunSubnetEpochsRequest {
                subnets: vec![good.clone(), sub],
            };
            let status = client.clone().run_subnet_epochs(req).await.unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
            assert!(status.message().starts_with(&want), "{}", status.message());
        }
        let epochs = cases();
        let (name, input, want) = &epochs[0];
        let mut response = client
            .clone()
            .run_epochs(request(&[input]))
            .await
            .unwrap()
            .into_inner();
        check(name, response.results.remove(0), want);
    };
    tokio::time::timeout(BOUND, run).await.expect("bounded");
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_get_exactly_their_own_answers() {
    let _serial = serial().await;
    const CLIENTS: usize = 64;
    const CALLS: usize = 100;
    let small: Arc<Vec<_>> = Arc::new(cases().into_iter().filter(|(_, i, _)| i.n <= 64).collect());
    assert!(small.len() >= 8, "too few small cases");
    let daemon = start(
        config(batch(256, 2, 65536), Limits::default()),
        Arc::new(CpuBackend::new()),
    )
    .await;
    let mut set = JoinSet::new();
    for c in 0..CLIENTS {
        let mut client = daemon.client().await;
        let small = small.clone();
        set.spawn(async move {
            let mut epochs = 0;
            for r in 0..CALLS {
                // Mixed sizes: 1 to 4 epochs per call, drawn from differently sized cases.
                let count = 1 + (c * 31 + r * 17) % 4;
                let picks: Vec<usize> = (0..count)
                    .map(|j| (c * 101 + r * 13 + j * 7) % small.len())
                    .collect();
                let inputs: Vec<&EpochInput> = picks.iter().map(|&k| &small[k].1).collect();
                let response = client
                    .run_epochs(request(&inputs))
                    .await
                    .unwrap_or_else(|s| panic!("client {c} call {r}: {s}"));
                let results = response.into_inner().results;
                assert_eq!(results.len(), count, "client {c} call {r}");
                for (j, (result, &k)) in results.into_iter().zip(&picks).enumerate() {
                    assert_eq!(result.id, j as u64);
                    check(
                        &format!("client {c} call {r} epoch {j} ({})", small[k].0),
                        result,
                        &small[k].2,
                    );
                }
                epochs += count;
            }
            epochs
        });
    }
    let total = tokio::time::timeout(BOUND, async {
        let mut total = 0;
        while let Some(r) = set.join_next().await {
            total += r.unwrap();
        }
        total
    })
    .await
    .expect("load timed out");
    let calls = daemon.metrics.requests("RunEpochs", Code::Ok);
    eprintln!("daemon: {CLIENTS} clients x {CALLS} calls, {total} epochs, all answers exact");
    assert_eq!(
        calls,
        (CLIENTS * CALLS) as u64,
        "server counted {calls} successful calls"
    );
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epochs_from_concurrent_calls_share_a_batch() {
    let _serial = serial().await;
    // With no fill wait (the CPU backend's default) as with one.
    for wait_ms in [0, 1] {
        share_a_batch(wait_ms).await;
    }
}

/// The first call runs alone; three calls that arrive while it runs form the next batch.
async fn share_a_batch(wait_ms: u64) {
    let (daemon, gate, name, input, want) = start_gated(batch(64, wait_ms, 64), 64).await;
    let input = Arc::new((name, input, want));
    let mut set = JoinSet::new();
    let spawn = |set: &mut JoinSet<()>, client: YumaClient<Channel>| {
        let (mut client, input) = (client, input.clone());
        set.spawn(async move {
            let mut r = client
                .run_epochs(request(&[&*input.1]))
                .await
                .unwrap()
                .into_inner();
            check(&input.0, r.results.remove(0), &input.2);
        });
    };
    spawn(&mut set, daemon.client().await);
    wait_for("the first batch to start", || {
        gate.batches.load(Ordering::SeqCst) == 1
    })
    .await;
    for _ in 0..3 {
        spawn(&mut set, daemon.client().await);
    }
    wait_for("three queued epochs", || daemon.metrics.queue_depth() == 3).await;
    gate.release();
    tokio::time::timeout(BOUND, async {
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
    })
    .await
    .unwrap();
    // Three single-epoch calls from three connections ran as one batch of three.
    assert_eq!(
        gate.batches.load(Ordering::SeqCst),
        2,
        "max wait {wait_ms} ms"
    );
    assert_eq!(
        gate.epochs.load(Ordering::SeqCst),
        4,
        "max wait {wait_ms} ms"
    );
    daemon.shutdown().await;
}

/// A valid small epoch in protobuf form, to be broken in one place.
fn base_epoch(all: &[(String, EpochInput, EpochOutput)], form: MatrixForm) -> pb::EpochInput {
    proto::input_to_proto(
        &all.iter()
            .find(|(_, i, _)| i.n == 16 && i.weights.nnz() > 0)
            .unwrap()
            .1,
        form,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_refused_while_good_ones_succeed() {
    let _serial = serial().await;
    let all = Arc::new(cases());
    let limits = Limits {
        max_n: 4096,
        max_epochs_per_request: 8,
        max_message_bytes: 1 << 20,
        stream_in_flight: 16,
        ..Limits::default()
    };
    let daemon = start(
        config(batch(64, 2, 1024), limits),
        Arc::new(CpuBackend::new()),
    )
    .await;

    // Good traffic alongside: 8 clients x 20 calls, all must succeed exactly.
    let mut good = JoinSet::new();
    for c in 0..8 {
        let (mut client, all) = (daemon.client().await, all.clone());
        good.spawn(async move {
            for r in 0..20 {
                let (name, input, want) = &all[(c * 20 + r) % all.len()];
                if input.n > 1024 {
                    continue;
                }
                let mut response = client
                    .run_epochs(request(&[input]))
                    .await
                    .unwrap_or_else(|s| panic!("{name}: {s}"))
                    .into_inner();
                check(name, response.results.remove(0), want);
            }
        });
    }

    let base = base_epoch(&all, MatrixForm::Packed);
    let n = base.n as usize;
    let mut bad: Vec<(&str, pb::EpochInput, Code, Vec<&str>)> = Vec::new();
    let mut e = base.clone();
    e.alpha_stake.pop();
    bad.push((
        "short alpha_stake",
        e,
        Code::InvalidArgument,
        vec!["epochs[1]", "alpha_stake", "length 15", "expected 16"],
    ));
    let mut e = base.clone();
    let w = e.weights.as_mut().unwrap();
    let last = w.cols.len() - 1;
    w.cols[last] = 70000;
    bad.push((
        "column uid above u16",
        e,
        Code::InvalidArgument,
        vec!["weights.cols", "at uid", "70000"],
    ));
    let mut e = base.clone();
    let w = e.weights.as_mut().unwrap();
    let at = w.row_offsets.iter().position(|&o| o > 0).unwrap();
    w.row_offsets[at] = w.row_offsets[at + 1] + 1;
    bad.push((
        "row offsets decrease",
        e,
        Code::InvalidArgument,
        vec!["weights.row_offsets", "at uid"],
    ));
    let mut e = base.clone();
    e.bonds.as_mut().unwrap().values.push(1);
    bad.push((
        "bond values longer than cols",
        e,
        Code::InvalidArgument,
        vec!["bonds.values", "length"],
    ));
    let mut e = base.clone();
    e.kappa = 65536;
    bad.push((
        "kappa above u16",
        e,
        Code::InvalidArgument,
        vec!["kappa", "65536"],
    ));
    let mut e = base.clone();
    e.n = 70000;
    bad.push((
        "n above u16",
        e,
        Code::InvalidArgument,
        vec!["field `n`", "70000", "65535"],
    ));
    let mut e = base.clone();
    e.n = 5000;
    bad.push((
        "n above --max-n",
        e,
        Code::InvalidArgument,
        vec!["field `n`", "5000", "--max-n"],
    ));
    let mut e = base.clone();
    e.commit_block = vec![1; n];
    e.commit_block_present.clear();
    bad.push((
        "commit blocks without a bitmap",
        e,
        Code::InvalidArgument,
        vec!["commit_block_present"],
    ));
    let mut e = base.clone();
    let w = e.weights.as_mut().unwrap();
    let (c0, start) = (
        w.cols[0],
        w.row_offsets.iter().position(|&o| o > 0).unwrap() - 1,
    );
    let end = w.row_offsets[start + 1] as usize;
    if end - w.row_offsets[start] as usize >= 2 {
        w.cols[end - 1] = c0;
        bad.push((
            "duplicate column uid",
            e,
            Code::InvalidArgument,
            vec!["weights", "twice"],
        ));
    }

    // The fixed-width form: byte lengths, mixed forms, and the same CSR checks.
    let fixed = base_epoch(&all, MatrixForm::FixedWidth);
    let mut e = fixed.clone();
    let cols = &mut e.weights.as_mut().unwrap().cols_le;
    cols.truncate(cols.len() - 1);
    bad.push((
        "odd byte count in cols_le",
        e,
        Code::InvalidArgument,
        vec!["weights.cols_le", "not a whole number of u16"],
    ));
    let mut e = fixed.clone();
    e.bonds.as_mut().unwrap().row_offsets_le.truncate(4 * n);
    bad.push((
        "row_offsets_le one row short",
        e,
        Code::InvalidArgument,
        vec!["bonds.row_offsets_le", "expected"],
    ));
    let mut e = fixed.clone();
    e.weights.as_mut().unwrap().values.push(1);
    bad.push((
        "both forms in one matrix",
        e,
        Code::InvalidArgument,
        vec!["weights.row_offsets_le", "one form"],
    ));
    let mut e = fixed.clone();
    let offsets = &mut e.weights.as_mut().unwrap().row_offsets_le;
    let mut flipped = offsets.to_vec();
    flipped[4 * n] ^= 1;
    *offsets = flipped.into();
    bad.push((
        "fixed-width offsets that miss the end",
        e,
        Code::InvalidArgument,
        vec!["weights.row_offsets_le", "entries"],
    ));
    let mut e = base.clone();
    e.bonds.as_mut().unwrap().cols_le = vec![0, 0].into();
    bad.push((
        "fixed-width cols without offsets",
        e,
        Code::InvalidArgument,
        vec!["bonds.row_offsets_le", "is empty"],
    ));

    let mut client = daemon.client().await;
    for (what, epoch, code, needles) in bad {
        let status = client
            .run_epochs(pb::RunEpochsRequest {
                epochs: vec![base.clone(), epoch],
            })
            .await
            .expect_err(what);
        assert_eq!(status.code(), code, "{what}: {status:?}");
        for needle in needles {
            assert!(
                status.message().contains(needle),
                "{what}: `{}` lacks `{needle}`",
                status.message()
            );
        }
    }
    let status = client
        .run_epochs(pb::RunEpochsRequest {
            epochs: vec![base.clone(); 9],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("--max-epochs-per-request = 8"),
        "{}",
        status.message()
    );
    let mut huge = base.clone();
    huge.alpha_stake = vec![u64::MAX; 200_000];
    let status = client
        .run_epochs(pb::RunEpochsRequest { epochs: vec![huge] })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("--max-message-mib"),
        "{}",
        status.message()
    );

    // On a stream a malformed epoch gets an error result; the others are answered.
    let mut broken = base.clone();
    broken.tao_stake.clear();
    let requests = vec![
        pb::EpochRequest {
            id: 1,
            input: Some(base.clone()),
        },
        pb::EpochRequest {
            id: 2,
            input: Some(broken),
        },
        pb::EpochRequest { id: 3, input: None },
        pb::EpochRequest {
            id: 4,
            input: Some(base.clone()),
        },
    ];
    let mut stream = client
        .stream_epochs(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let mut answers = std::collections::BTreeMap::new();
    while let Some(r) = stream.message().await.unwrap() {
        answers.insert(r.id, r.result.unwrap());
    }
    assert_eq!(answers.len(), 4);
    for id in [1, 4] {
        assert!(
            matches!(answers[&id], pb::epoch_result::Result::Output(_)),
            "id {id}"
        );
    }
    for (id, needle) in [(2, "tao_stake"), (3, "input")] {
        match &answers[&id] {
            pb::epoch_result::Result::Error(e) => {
                assert_eq!(e.code, Code::InvalidArgument as i32);
                assert!(
                    e.message.contains(needle) && e.message.contains(&format!("request id {id}")),
                    "{}",
                    e.message
                );
            }
            other => panic!("id {id}: expected an error, got {other:?}"),
        }
    }

    tokio::time::timeout(BOUND, async {
        while let Some(r) = good.join_next().await {
            r.unwrap();
        }
    })
    .await
    .expect("good traffic timed out");
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_is_refused_at_once() {
    let _serial = serial().await;
    let (daemon, gate, name, input, want) = start_gated(batch(1, 0, 4), 4).await;
    let mut set = JoinSet::new();
    for (k, epochs) in [1usize, 2, 2].into_iter().enumerate() {
        let (mut client, input) = (daemon.client().await, input.clone());
        set.spawn(async move { client.run_epochs(request(&vec![&*input; epochs])).await });
        if k == 0 {
            wait_for("the first batch to start", || {
                gate.batches.load(Ordering::SeqCst) == 1
            })
            .await;
        }
    }
    wait_for("a full queue", || daemon.metrics.queue_depth() == 4).await;
    // The backend is still held: this answer cannot have waited for it.
    let status = daemon
        .client()
        .await
        .run_epochs(request(&[&input]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("--queue-capacity = 4"),
        "{}",
        status.message()
    );
    assert_eq!(gate.epochs.load(Ordering::SeqCst), 1);
    gate.release();
    tokio::time::timeout(BOUND, async {
        while let Some(r) = set.join_next().await {
            for result in r.unwrap().unwrap().into_inner().results {
                check(&name, result, &want);
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(gate.epochs.load(Ordering::SeqCst), 5);
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_bytes_and_calls_per_connection_are_bounded() {
    let _serial = serial().await;
    let gate = Gate::new();
    let (name, input, want) = cases().into_iter().find(|(_, i, _)| i.n == 16).unwrap();
    let input = Arc::new(input);
    let each = yuma::server::batcher::epoch_bytes(&input);
    let limits = Limits {
        max_epochs_per_request: 64,
        max_calls_per_connection: 2,
        ..Limits::default()
    };
    let mut cfg = config(batch(1, 0, 64), limits);
    cfg.batch.queue_bytes = 2 * each;
    let daemon = start(cfg, Arc::new(GateBackend(gate.clone()))).await;

    // Four calls on one connection allowed two at a time: two reach the server. One call
    // first, so the client holds the server's SETTINGS (its stream limit) before the four
    // start; otherwise a stream opened before they arrive is refused (REFUSED_STREAM).
    let mut shared = daemon.client().await;
    shared
        .get_backends(pb::GetBackendsRequest {})
        .await
        .unwrap();
    let mut set = JoinSet::new();
    for _ in 0..4 {
        let (mut client, input) = (shared.clone(), input.clone());
        set.spawn(async move { client.run_epochs(request(&[&*input])).await });
    }
    wait_for("two calls in", || {
        gate.epochs.load(Ordering::SeqCst) + daemon.metrics.queue_depth() as usize == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        gate.epochs.load(Ordering::SeqCst) + daemon.metrics.queue_depth() as usize,
        2,
        "more calls than --max-calls-per-connection reached the server"
    );
    // One epoch queued holds `each` bytes: two more do not fit in 2 x `each`.
    let status = daemon
        .client()
        .await
        .run_epochs(request(&[&*input, &*input]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("--queue-mib"),
        "{}",
        status.message()
    );
    gate.release();
    tokio::time::timeout(BOUND, async {
        while let Some(r) = set.join_next().await {
            for result in r.unwrap().unwrap().into_inner().results {
                check(&name, result, &want);
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(gate.epochs.load(Ordering::SeqCst), 4);
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_cancelled_calls_are_dropped_before_dispatch() {
    let _serial = serial().await;
    let (daemon, gate, name, input, want) = start_gated(batch(1, 0, 64), 64).await;
    let holder = {
        let (mut client, input) = (daemon.client().await, input.clone());
        tokio::spawn(async move { client.run_epochs(request(&[&*input])).await })
    };
    wait_for("the first batch to start", || {
        gate.batches.load(Ordering::SeqCst) == 1
    })
    .await;

    // Cancelled: the client gives up while its call is queued.
    let cancelled = {
        let (mut client, input) = (daemon.client().await, input.clone());
        tokio::spawn(async move { client.run_epochs(request(&[&*input; 3])).await })
    };
    wait_for("the cancelled call to queue", || {
        daemon.metrics.queue_depth() == 3
    })
    .await;
    // Deadline: 2 s while the backend is held, long enough for the call to reach the queue
    // on a loaded machine (checked), so the server itself sees it expire.
    let timed = {
        let (mut client, input) = (daemon.client().await, input.clone());
        tokio::spawn(async move {
            let mut timed = Request::new(request(&[&*input; 2]));
            timed.set_timeout(Duration::from_secs(2));
            client.run_epochs(timed).await
        })
    };
    wait_for("the timed call to queue", || {
        daemon.metrics.queue_depth() == 5
    })
    .await;
    cancelled.abort();
    let status = timed.await.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    // Both handlers have ended (client cancel or the server's deadline) before the backend
    // frees up, so neither call's epochs may reach it.
    wait_for("the server to drop both calls", || {
        daemon.metrics.requests("RunEpochs", Code::Cancelled)
            + daemon.metrics.requests("RunEpochs", Code::DeadlineExceeded)
            == 2
    })
    .await;
    gate.release();
    let mut r = tokio::time::timeout(BOUND, holder)
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .into_inner();
    check(&name, r.results.remove(0), &want);
    // A later call runs; neither the cancelled nor the expired epochs ever did.
    let mut r = daemon
        .client()
        .await
        .run_epochs(request(&[&*input]))
        .await
        .unwrap()
        .into_inner();
    check(&name, r.results.remove(0), &want);
    assert_eq!(
        gate.epochs.load(Ordering::SeqCst),
        2,
        "dropped epochs reached the backend"
    );
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_under_load_finishes_every_accepted_call() {
    let _serial = serial().await;
    const CALLS: usize = 16;
    let (daemon, gate, name, input, want) = start_gated(batch(4, 1, 1024), 64).await;
    let mut set = JoinSet::new();
    for _ in 0..CALLS {
        let (mut client, input) = (daemon.client().await, input.clone());
        set.spawn(async move { client.run_epochs(request(&[&*input])).await });
    }
    // All accepted: one batch held in the backend, the rest queued.
    wait_for("every call to be accepted", || {
        gate.batches.load(Ordering::SeqCst) == 1
            && gate.epochs.load(Ordering::SeqCst) + daemon.metrics.queue_depth() as usize == CALLS
    })
    .await;
    let late_client = daemon.client().await;
    let Daemon {
        addr,
        metrics,
        stop,
        task,
    } = daemon;
    let _ = stop.unwrap().send(());
    // New connections are refused once the server stops accepting.
    let refused = async {
        loop {
            match Channel::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect()
                .await
            {
                Err(_) => break,
                Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    };
    tokio::time::timeout(BOUND, refused)
        .await
        .expect("the listener stayed open after shutdown");
    // A call on an old connection after shutdown is either refused or, if the server took
    // it before seeing the signal, answered exactly: never lost.
    let late = {
        let (mut client, input) = (late_client.clone(), input.clone());
        tokio::spawn(async move { client.run_epochs(request(&[&*input])).await })
    };
    gate.release();
    let mut answered = 0;
    tokio::time::timeout(BOUND, async {
        while let Some(r) = set.join_next().await {
            let mut r = r
                .unwrap()
                .unwrap_or_else(|s| panic!("accepted call lost at shutdown: {s:?}"))
                .into_inner();
            check(&name, r.results.remove(0), &want);
            answered += 1;
        }
    })
    .await
    .unwrap();
    let late_ok = match tokio::time::timeout(BOUND, late).await.unwrap().unwrap() {
        Ok(r) => {
            check(&name, r.into_inner().results.remove(0), &want);
            1
        }
        Err(status) => {
            // tonic reports a stream refused by the server's GOAWAY (never accepted) as
            // INTERNAL "h2 protocol error"; anything else would be a lost call.
            let refused_by_goaway =
                status.code() == Code::Internal && format!("{status:?}").contains("GoAway");
            assert!(
                refused_by_goaway
                    || matches!(
                        status.code(),
                        Code::Unavailable | Code::Unknown | Code::Cancelled
                    ),
                "{status:?}"
            );
            0
        }
    };
    assert_eq!(answered, CALLS);
    tokio::time::timeout(BOUND, task)
        .await
        .expect("server did not stop")
        .unwrap()
        .unwrap();
    assert_eq!(
        metrics.requests("RunEpochs", Code::Ok),
        (CALLS + late_ok) as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_gives_up_at_the_drain_timeout() {
    let _serial = serial().await;
    const DRAIN: Duration = Duration::from_millis(500);
    let gate = Gate::new();
    let limits = Limits {
        max_epochs_per_request: 64,
        ..Limits::default()
    };
    let mut cfg = config(batch(1, 0, 64), limits);
    cfg.drain_timeout = DRAIN;
    let daemon = start(cfg, Arc::new(GateBackend(gate.clone()))).await;
    let (_, input, _) = cases().into_iter().find(|(_, i, _)| i.n == 16).unwrap();
    let input = Arc::new(input);
    let mut set = JoinSet::new();
    for _ in 0..3 {
        let (mut client, input) = (daemon.client().await, input.clone());
        set.spawn(async move { client.run_epochs(request(&[&*input])).await });
    }
    // A batch the backend never finishes, two calls queued behind it.
    wait_for("a held batch and two queued calls", || {
        gate.batches.load(Ordering::SeqCst) == 1 && daemon.metrics.queue_depth() == 2
    })
    .await;
    let Daemon { stop, task, .. } = daemon;
    let started = tokio::time::Instant::now();
    let _ = stop.unwrap().send(());
    tokio::time::timeout(BOUND, task)
        .await
        .expect("shutdown waited for the held batch")
        .unwrap()
        .unwrap();
    let took = started.elapsed();
    assert!(
        took >= DRAIN,
        "returned after {took:?}, before the drain timeout"
    );
    // Each abandoned call is answered UNAVAILABLE, or loses its connection: never left hanging.
    tokio::time::timeout(BOUND, async {
        while let Some(r) = set.join_next().await {
            let status = r.unwrap().expect_err("an abandoned call succeeded");
            assert!(
                matches!(
                    status.code(),
                    Code::Unavailable | Code::Unknown | Code::Cancelled | Code::Internal
                ),
                "{status:?}"
            );
        }
    })
    .await
    .expect("an abandoned call was never answered");
    eprintln!("daemon: shutdown gave up on a held batch after {took:?} (drain timeout {DRAIN:?})");
    gate.release();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_health_reflection_and_backends() {
    let _serial = serial().await;
    let all = cases();
    let mut cfg = config(
        batch(16, 1, 64),
        Limits {
            max_epochs_per_request: 64,
            ..Limits::default()
        },
    );
    cfg.token = Some("s3cret".into());
    let daemon = start(cfg, Arc::new(CpuBackend::new())).await;
    let (name, input, want) = all.iter().find(|(_, i, _)| i.n == 16).unwrap().clone();

    let mut health = tonic_health::pb::health_client::HealthClient::new(daemon.channel().await);
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "yuma.v1.Yuma".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        serving.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    // Reflection lists the service, so grpcurl needs no proto file.
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    };
    use tonic_reflection::pb::v1::{
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let ask = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut reflection = ServerReflectionClient::new(daemon.channel().await);
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([ask]))
        .await
        .unwrap()
        .into_inner();
    match answers
        .message()
        .await
        .unwrap()
        .and_then(|r| r.message_response)
    {
        Some(MessageResponse::ListServicesResponse(list)) => {
            assert!(
                list.service.iter().any(|s| s.name == "yuma.v1.Yuma"),
                "{list:?}"
            );
        }
        other => panic!("reflection answered {other:?}"),
    }

    let mut client = daemon.client().await;
    let status = client.run_epochs(request(&[&input])).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let mut wrong = Request::new(request(&[&input]));
    wrong
        .metadata_mut()
        .insert("authorization", "Bearer s3creT".parse().unwrap());
    assert_eq!(
        client.run_epochs(wrong).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    // Refused calls count under their method, so a scrape shows who is knocking.
    assert_eq!(
        daemon.metrics.requests("RunEpochs", Code::Unauthenticated),
        2
    );
    assert!(
        daemon
            .metrics
            .render()
            .contains("yuma_requests_total{method=\"RunEpochs\",code=\"UNAUTHENTICATED\"} 2\n"),
        "{}",
        daemon.metrics.render()
    );
    let mut right = Request::new(request(&[&input]));
    right
        .metadata_mut()
        .insert("authorization", "Bearer s3cret".parse().unwrap());
    let mut r = client.run_epochs(right).await.unwrap().into_inner();
    check(&name, r.results.remove(0), &want);

    let mut get = Request::new(pb::GetBackendsRequest {});
    get.metadata_mut()
        .insert("authorization", "Bearer s3cret".parse().unwrap());
    let info = client.get_backends(get).await.unwrap().into_inner();
    assert!(info.backend.starts_with("cpu"), "{}", info.backend);
    assert_eq!(
        (
            info.max_batch,
            info.queue_capacity,
            info.max_epochs_per_request
        ),
        (16, 64, 64)
    );
    daemon.shutdown().await;
}

/// `GET path` against the metrics endpoint at `addr`: status line and body.
async fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// One sample of a text exposition: metric name, labels in order, value.
type Sample = (String, Vec<(String, String)>, f64);

/// Parses a Prometheus text exposition (format 0.0.4) strictly: every line is a `# HELP`,
/// a `# TYPE` naming a known type before that family's samples, or a sample
/// `name{label="value",...} value` with a valid name, escaped label values and a number.
/// Returns the samples; panics naming the first bad line.
fn parse_exposition(body: &str) -> Vec<Sample> {
    fn name_ok(s: &str) -> bool {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    let mut typed: std::collections::HashMap<String, String> = Default::default();
    let mut samples = Vec::new();
    for line in body.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut words = rest.splitn(3, ' ');
            let (kind, name) = (words.next().unwrap(), words.next().unwrap_or(""));
            assert!(name_ok(name), "bad metric name in `{line}`");
            match kind {
                "HELP" => {}
                "TYPE" => {
                    let t = words.next().unwrap_or("");
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&t),
                        "bad type in `{line}`"
                    );
                    typed.insert(name.to_string(), t.to_string());
                }
                _ => panic!("unknown comment `{line}`"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("`{line}`"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in `{line}`")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, Vec::new()),
            Some((name, rest)) => {
                let mut rest = rest.strip_suffix('}').unwrap_or_else(|| panic!("`{line}`"));
                let mut labels = Vec::new();
                while !rest.is_empty() {
                    let (label, after) =
                        rest.split_once("=\"").unwrap_or_else(|| panic!("`{line}`"));
                    assert!(name_ok(label), "bad label name in `{line}`");
                    let mut value = String::new();
                    let mut chars = after.char_indices();
                    let end = loop {
                        match chars.next() {
                            Some((_, '\\')) => match chars.next() {
                                Some((_, 'n')) => value.push('\n'),
                                Some((_, c @ ('\\' | '"'))) => value.push(c),
                                _ => panic!("bad escape in `{line}`"),
                            },
                            Some((i, '"')) => break i,
                            Some((_, c)) => value.push(c),
                            None => panic!("unterminated label value in `{line}`"),
                        }
                    };
                    labels.push((label.to_string(), value));
                    rest = &after[end + 1..];
                    rest = rest.strip_prefix(',').unwrap_or(rest);
                }
                (name, labels)
            }
        };
        assert!(name_ok(name), "bad metric name in `{line}`");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| typed.get(*f).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        assert!(typed.contains_key(family), "`{line}` before its # TYPE");
        samples.push((name.to_string(), labels, value));
    }
    samples
}

/// The value of the sample `name` with exactly `labels` among `samples`.
fn sample(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples.iter().find_map(|(n, l, v)| {
        let same = n == name
            && l.len() == labels.len()
            && labels
                .iter()
                .all(|(k, want)| l.iter().any(|(lk, lv)| lk == k && lv == want));
        same.then_some(*v)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_counts_calls_epochs_and_batches() {
    let _serial = serial().await;
    let all = cases();
    let limits = Limits {
        max_epochs_per_request: 64,
        ..Limits::default()
    };
    let daemon = start(
        config(batch(16, 1, 64), limits),
        Arc::new(CpuBackend::new()),
    )
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = listener.local_addr().unwrap();
    let endpoint = tokio::spawn(yuma::server::metrics::serve_metrics(
        listener,
        daemon.metrics.clone(),
    ));

    let (status, body) = http_get(metrics_addr, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let before = parse_exposition(&body);
    let backend = before
        .iter()
        .find(|(n, _, _)| n == "yuma_backend_info")
        .unwrap_or_else(|| panic!("no yuma_backend_info in\n{body}"));
    assert!(backend.1[0].1.starts_with("cpu"), "{body}");
    assert_eq!(backend.2, 1.0);
    assert_eq!(
        sample(&before, "yuma_epochs_total", &[]),
        Some(0.0),
        "{body}"
    );
    assert_eq!(
        sample(
            &before,
            "yuma_requests_total",
            &[("method", "RunEpochs"), ("code", "OK")]
        ),
        None,
        "{body}"
    );

    let small: Vec<_> = all.iter().filter(|(_, i, _)| i.n <= 16).take(3).collect();
    assert_eq!(small.len(), 3, "three small conformance cases");
    let mut client = daemon.client().await;
    for (name, input, want) in &small {
        let mut r = client
            .run_epochs(request(&[input, input]))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.results.len(), 2);
        check(name, r.results.remove(0), want);
        check(name, r.results.remove(0), want);
    }
    client
        .get_backends(pb::GetBackendsRequest {})
        .await
        .unwrap();

    let (status, body) = http_get(metrics_addr, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let after = parse_exposition(&body);
    let get = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels).unwrap_or_else(|| panic!("no `{name}` {labels:?} in\n{body}"))
    };
    let run_epochs = [("method", "RunEpochs")];
    assert_eq!(
        get(
            "yuma_requests_total",
            &[("method", "RunEpochs"), ("code", "OK")]
        ),
        3.0
    );
    assert_eq!(
        get(
            "yuma_requests_total",
            &[("method", "GetBackends"), ("code", "OK")]
        ),
        1.0
    );
    assert_eq!(get("yuma_epochs_total", &[]), 6.0);
    assert_eq!(get("yuma_epoch_errors_total", &[]), 0.0);
    assert_eq!(get("yuma_queue_depth_epochs", &[]), 0.0);
    assert_eq!(get("yuma_queue_bytes", &[]), 0.0);
    // Histograms: every call in +Inf, cumulative buckets, a positive latency sum.
    assert!(
        body.contains("# TYPE yuma_request_duration_seconds histogram"),
        "{body}"
    );
    assert_eq!(
        get(
            "yuma_request_duration_seconds_bucket",
            &[("method", "RunEpochs"), ("le", "+Inf")]
        ),
        3.0
    );
    assert_eq!(get("yuma_request_duration_seconds_count", &run_epochs), 3.0);
    assert!(get("yuma_request_duration_seconds_sum", &run_epochs) > 0.0);
    let buckets: Vec<f64> = after
        .iter()
        .filter(|(n, l, _)| {
            n == "yuma_request_duration_seconds_bucket"
                && l[0] == ("method".into(), "RunEpochs".into())
        })
        .map(|s| s.2)
        .collect();
    assert_eq!(buckets.len(), 17, "16 bounds and +Inf");
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    let batches = get("yuma_batch_epochs_count", &[]);
    assert!(
        (1.0..=3.0).contains(&batches),
        "{batches} batches for 3 sequential calls"
    );
    assert_eq!(get("yuma_batch_epochs_sum", &[]), 6.0);
    assert_eq!(get("yuma_batch_epochs_bucket", &[("le", "2")]), batches);
    assert_eq!(
        get("yuma_batch_duration_seconds_bucket", &[("le", "+Inf")]),
        batches
    );

    let (status, _) = http_get(metrics_addr, "/nothing").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    endpoint.abort();
    daemon.shutdown().await;
}

/// A throwaway CA and a `localhost` / 127.0.0.1 certificate it signed, made with `rcgen`,
/// as PEM (CA cert, server cert, server key). (rustls refuses a self-signed CA certificate
/// used as the server's own.)
#[cfg(feature = "tls")]
fn test_pki() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "yuma test CA");
    let ca_cert = ca.self_signed(&ca_key).expect("CA cert");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("server key");
    let server = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("server params");
    let cert = server.signed_by(&key, &issuer).expect("server cert");
    (
        ca_cert.pem().into_bytes(),
        cert.pem().into_bytes(),
        key.serialize_pem().into_bytes(),
    )
}

#[cfg(feature = "tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_trusting_clients_and_refuses_plaintext() {
    let _serial = serial().await;
    use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};
    let (ca, cert, key) = test_pki();
    let all = cases();
    let (name, input, want) = all.iter().find(|(_, i, _)| i.n == 16).unwrap().clone();
    let limits = Limits {
        max_epochs_per_request: 64,
        ..Limits::default()
    };
    let mut cfg = config(batch(16, 1, 64), limits);
    cfg.tls = Some(ServerTlsConfig::new().identity(Identity::from_pem(&cert, &key)));
    let daemon = start(cfg, Arc::new(CpuBackend::new())).await;

    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://localhost:{}", daemon.addr.port()))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .expect("a client trusting the certificate connects over TLS");
    let mut client = YumaClient::new(channel);
    let mut r = client
        .run_epochs(request(&[&input]))
        .await
        .unwrap()
        .into_inner();
    check(&name, r.results.remove(0), &want);

    // A plaintext client gets no answer from the TLS port.
    let plain = tokio::time::timeout(BOUND, async {
        let channel = daemon.channel_result().await?;
        YumaClient::new(channel)
            .get_backends(pb::GetBackendsRequest {})
            .await
            .map_err(|e| e.to_string())
    })
    .await
    .expect("plaintext attempt finished");
    assert!(
        plain.is_err(),
        "plaintext call answered over a TLS port: {plain:?}"
    );

    // A client that does not trust the certificate cannot connect.
    let untrusting = Channel::from_shared(format!("https://localhost:{}", daemon.addr.port()))
        .unwrap()
        .tls_config(ClientTlsConfig::new().domain_name("localhost"))
        .unwrap()
        .connect()
        .await;
    let refused = match untrusting {
        Err(_) => true,
        Ok(ch) => YumaClient::new(ch)
            .get_backends(pb::GetBackendsRequest {})
            .await
            .is_err(),
    };
    assert!(refused, "a client without the CA was served");
    daemon.shutdown().await;
}

/// A metrics client that connects and never sends its request is dropped after the header
/// read timeout, and other scrapes are answered meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_drops_a_silent_client() {
    use tokio::io::AsyncReadExt;
    let metrics = Arc::new(Metrics::new("cpu".into()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let endpoint = tokio::spawn(yuma::server::metrics::serve_metrics(listener, metrics));
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (status, _) = http_get(addr, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    // The server answers 408 or just closes; either way the read ends, well before 25 s.
    tokio::time::timeout(Duration::from_secs(25), silent.read_to_end(&mut buf))
        .await
        .expect("the silent connection is closed by the server")
        .expect("read");
    eprintln!(
        "silent metrics client dropped after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    endpoint.abort();
}
