//! `yuma loadtest`: concurrent clients against a running daemon on the built-in realistic
//! subnets, every answer checked against the in-process result, then the in-process
//! throughput on the same backend.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use prost::Message;
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::codegen::Bytes;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use yuma::backend::{self, BackendKind};
use yuma::example::{Variant, realistic};
use yuma::model::{EpochInput, EpochOutput};
use yuma::server::codec::{WireDecoder, YumaCodec};
use yuma::server::pb::yuma_client::YumaClient;
use yuma::server::{pb, proto};

/// Options of `yuma loadtest`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Daemon address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub addr: String,
    /// Concurrent clients, each on its own connection.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Epochs per RunEpochs call.
    #[arg(long, default_value_t = 1)]
    pub epochs_per_request: usize,
    /// Calls per client.
    #[arg(long, default_value_t = 100)]
    pub requests: usize,
    /// Open loop: calls per second offered by all clients together, evenly spaced and
    /// taken in turn by the clients. Latency counts from each call's scheduled start, so a
    /// client held up by a slow answer is charged for the wait it causes [default: closed
    /// loop, each client calling again as soon as it is answered].
    #[arg(long)]
    pub rate: Option<f64>,
    /// Subnet size of the synthetic epochs.
    #[arg(long, default_value_t = 256)]
    pub n: u16,
    /// Validators in the synthetic subnet.
    #[arg(long, default_value_t = 64)]
    pub validators: u16,
    /// Epoch flavour.
    #[arg(long, value_parser = super::variant(), default_value = "y3-la")]
    pub variant: Variant,
    /// Backend of the in-process baseline (use the daemon's).
    #[arg(long, value_parser = super::backend_kind(), default_value = "cpu")]
    pub backend: BackendKind,
    /// Epochs per in-process baseline batch [default: the largest batch the load can form:
    /// clients x epochs per request, capped by the server's max batch, at least one request].
    #[arg(long)]
    pub baseline_batch: Option<usize>,
    /// Skip the in-process baseline.
    #[arg(long)]
    pub no_baseline: bool,
    /// File holding the daemon's bearer token.
    #[arg(long)]
    pub token_file: Option<std::path::PathBuf>,
    /// Stream instead: each client sends its calls x epochs-per-request epochs on one
    /// StreamEpochs call and reads the answers as they come; latency is per epoch, from
    /// when the transport took it.
    #[arg(long, conflicts_with = "rate")]
    pub stream: bool,
    /// Send the weight and bond matrices as fixed-width little-endian bytes instead of
    /// packed varints (answers then carry their bonds the same way).
    #[arg(long)]
    pub fixed_width: bool,
}

/// Distinct synthetic epochs cycled through by the clients.
const DISTINCT: usize = 16;

/// Which of the DISTINCT request shapes client `c` sends as its call `r`.
fn request_shape(c: usize, r: usize) -> usize {
    (c * 7 + r) % DISTINCT
}

/// The value at quantile `q` (0..=100) of sorted `v`.
fn percentile(v: &[Duration], q: usize) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v[((v.len() - 1) * q).div_ceil(100)]
}

/// Sends a `RunEpochsRequest` encoded before the clock starts, so the client's own encoding
/// does not compete with the daemon for this machine's cores; decodes the answer as the
/// generated client does.
#[derive(Default)]
struct PreEncoded(YumaCodec<pb::RunEpochsRequest, pb::RunEpochsResponse>);

impl Codec for PreEncoded {
    type Encode = Bytes;
    type Decode = pb::RunEpochsResponse;
    type Encoder = PutBytes;
    type Decoder = WireDecoder<pb::RunEpochsResponse>;

    fn encoder(&mut self) -> PutBytes {
        PutBytes
    }

    fn decoder(&mut self) -> Self::Decoder {
        self.0.decoder()
    }
}

/// Writes already-encoded message bytes.
struct PutBytes;

impl Encoder for PutBytes {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, buf: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        use prost::bytes::BufMut;
        buf.put_slice(&item);
        Ok(())
    }
}

/// Sends `(id, encoded EpochInput)` as an `EpochRequest` (id = field 1, input = field 2),
/// so a stream's epochs are encoded once before the clock starts.
#[derive(Default)]
struct PreEncodedStream(YumaCodec<pb::EpochRequest, pb::EpochResult>);

impl Codec for PreEncodedStream {
    type Encode = (u64, Bytes);
    type Decode = pb::EpochResult;
    type Encoder = PutTagged;
    type Decoder = WireDecoder<pb::EpochResult>;

    fn encoder(&mut self) -> PutTagged {
        PutTagged
    }

    fn decoder(&mut self) -> Self::Decoder {
        self.0.decoder()
    }
}

/// Writes an `EpochRequest` around an already-encoded input.
struct PutTagged;

impl Encoder for PutTagged {
    type Item = (u64, Bytes);
    type Error = tonic::Status;

    fn encode(
        &mut self,
        (id, input): (u64, Bytes),
        buf: &mut EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use prost::bytes::BufMut;
        use prost::encoding::{WireType, encode_key, encode_varint};
        encode_key(1, WireType::Varint, buf);
        encode_varint(id, buf);
        encode_key(2, WireType::LengthDelimited, buf);
        encode_varint(input.len() as u64, buf);
        buf.put_slice(&input);
        Ok(())
    }
}

/// The synthetic epochs, their in-process outputs and those outputs as protobuf.
struct Expected {
    outputs: Vec<EpochOutput>,
    pb: Vec<pb::EpochOutput>,
}

impl Expected {
    /// Checks the answer for shape `k`; `what` names the epoch in the error.
    fn check(
        &self,
        k: usize,
        result: Option<pb::epoch_result::Result>,
        what: &str,
    ) -> anyhow::Result<()> {
        // Compared as protobuf; only a mismatch is converted to name the field.
        match result {
            Some(pb::epoch_result::Result::Output(o)) if o == self.pb[k] => Ok(()),
            Some(pb::epoch_result::Result::Output(o)) => {
                let want = &self.outputs[k];
                let got = proto::output_from_proto(o, want.active.len())?;
                match want.first_difference(&got) {
                    Some(m) => bail!("{what}: {m}"),
                    None => Ok(()),
                }
            }
            other => bail!("{what}: no output: {other:?}"),
        }
    }
}

/// Adds the bearer token to every call.
#[derive(Clone)]
struct Bearer(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            request.metadata_mut().insert("authorization", v.clone());
        }
        Ok(request)
    }
}

/// Runs the load test and prints its report.
pub fn main(args: Args) -> anyhow::Result<()> {
    if args.clients == 0 || args.requests == 0 || args.epochs_per_request == 0 {
        bail!("--clients, --requests and --epochs-per-request must be at least 1");
    }
    if args.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        bail!("--rate must be a positive number of calls per second");
    }
    let bearer = Bearer(match &args.token_file {
        Some(p) => {
            let token = std::fs::read_to_string(p)
                .with_context(|| format!("reading --token-file {}", p.display()))?;
            Some(
                format!("Bearer {}", token.trim())
                    .parse()
                    .context("token is not valid metadata")?,
            )
        }
        None => None,
    });
    let inputs: Arc<Vec<EpochInput>> = Arc::new(
        (0..DISTINCT)
            .map(|s| realistic(args.n, args.validators, args.variant, s as u64))
            .collect(),
    );
    let outputs: Vec<EpochOutput> = yuma::epoch::run_batch(&inputs)
        .into_iter()
        .collect::<Result<_, _>>()
        .context("a synthetic epoch was rejected")?;
    let form = if args.fixed_width {
        proto::MatrixForm::FixedWidth
    } else {
        proto::MatrixForm::Packed
    };
    let expected = Arc::new(Expected {
        pb: outputs
            .iter()
            .map(|o| proto::output_to_proto(o.clone(), form))
            .collect(),
        outputs,
    });
    // A stream sends each shape as one pre-encoded input.
    let singles: Arc<Vec<Bytes>> = Arc::new(if args.stream {
        inputs
            .iter()
            .map(|i| proto::input_to_proto(i, form).encode_to_vec().into())
            .collect()
    } else {
        Vec::new()
    });
    // Only the request shapes some call will send are encoded: at 1,024 epochs each of the
    // DISTINCT shapes is about 150 MB.
    let mut used = [false; DISTINCT];
    for c in (0..args.clients).filter(|_| !args.stream) {
        for r in 0..args.requests.min(DISTINCT) {
            used[request_shape(c, r)] = true;
        }
    }
    let requests: Arc<Vec<Bytes>> = Arc::new(
        (0..DISTINCT)
            .map(|k| {
                if !used[k] {
                    return Bytes::new();
                }
                pb::RunEpochsRequest {
                    epochs: (0..args.epochs_per_request)
                        .map(|j| proto::input_to_proto(&inputs[(k + j) % DISTINCT], form))
                        .collect(),
                }
                .encode_to_vec()
                .into()
            })
            .collect(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (wall, mut latencies, server) = runtime.block_on(async {
        // The daemon's HTTP/2 windows, so large answers stream without stalling.
        let endpoint = Channel::from_shared(args.addr.clone())
            .context("--addr is not a URI")?
            .initial_stream_window_size(yuma::server::STREAM_WINDOW)
            .initial_connection_window_size(yuma::server::CONNECTION_WINDOW)
            .max_frame_size(yuma::server::MAX_FRAME);
        let mut clients = Vec::with_capacity(args.clients);
        for _ in 0..args.clients {
            let channel = endpoint
                .connect()
                .await
                .with_context(|| format!("connecting to {}", args.addr))?;
            clients.push(tonic::client::Grpc::new(channel).max_decoding_message_size(usize::MAX));
        }
        let server = YumaClient::with_interceptor(endpoint.connect().await?, bearer.clone())
            .get_backends(pb::GetBackendsRequest {})
            .await?
            .into_inner();
        let path = PathAndQuery::from_static("/yuma.v1.Yuma/RunEpochs");
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(args.clients);
        for (c, mut client) in clients.into_iter().enumerate() {
            let (requests, expected, per_request) =
                (requests.clone(), expected.clone(), args.epochs_per_request);
            let (bearer, path) = (bearer.clone(), path.clone());
            let (count, clients, rate) = (args.requests, args.clients, args.rate);
            if args.stream {
                let epochs = count * per_request;
                let (singles, bearer) = (singles.clone(), bearer.clone());
                tasks.push(tokio::spawn(async move {
                    stream_client(client, c, epochs, singles, expected, bearer).await
                }));
                continue;
            }
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(count);
                for r in 0..count {
                    let k = request_shape(c, r);
                    let t = match rate {
                        // Open loop: call r of client c is due (r * clients + c) / rate
                        // seconds in. A call held up by the previous answer is timed from
                        // when it was due; one woken late by the timer (1 ms ticks) from
                        // when it left.
                        Some(rate) => {
                            let due =
                                started + Duration::from_secs_f64((r * clients + c) as f64 / rate);
                            if Instant::now() < due {
                                tokio::time::sleep_until(due.into()).await;
                                Instant::now()
                            } else {
                                due
                            }
                        }
                        None => Instant::now(),
                    };
                    let mut request = tonic::Request::new(requests[k].clone());
                    if let Some(v) = &bearer.0 {
                        request.metadata_mut().insert("authorization", v.clone());
                    }
                    client.ready().await?;
                    let response = client
                        .unary(request, path.clone(), PreEncoded::default())
                        .await?
                        .into_inner();
                    latencies.push(t.elapsed());
                    if response.results.len() != per_request {
                        bail!(
                            "client {c} call {r}: {} results for {per_request} epochs",
                            response.results.len()
                        );
                    }
                    for (j, result) in response.results.into_iter().enumerate() {
                        let what = format!("client {c} call {r} epoch {j}");
                        expected.check((k + j) % DISTINCT, result.result, &what)?;
                    }
                }
                anyhow::Ok(latencies)
            }));
        }
        let mut latencies = Vec::new();
        for t in tasks {
            latencies.extend(t.await??);
        }
        anyhow::Ok((started.elapsed(), latencies, server))
    })?;
    latencies.sort();
    let calls = args.clients * args.requests;
    let epochs = calls * args.epochs_per_request;
    let secs = wall.as_secs_f64();
    println!(
        "server: {} (max batch {}, max wait {} us)",
        server.backend, server.max_batch, server.max_wait_us
    );
    let pacing = match args.rate {
        _ if args.stream => "one StreamEpochs call per client".into(),
        Some(r) => format!("open loop, {r} calls/s offered"),
        None => "closed loop".into(),
    };
    println!(
        "load: {} clients x {} calls x {} epochs of n = {} ({:?}), {pacing}; all {epochs} answers match the in-process results",
        args.clients, args.requests, args.epochs_per_request, args.n, args.variant
    );
    let (rate, per) = match args.stream {
        true => (String::new(), "epoch"),
        false => (format!(", {:.1} calls/s", calls as f64 / secs), "call"),
    };
    println!(
        "daemon: {epochs} epochs in {secs:.3} s = {:.0} epochs/s{rate}",
        epochs as f64 / secs
    );
    println!(
        "latency per {per}: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(percentile(&latencies, 50)),
        ms(percentile(&latencies, 90)),
        ms(percentile(&latencies, 99)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO))
    );
    if !args.no_baseline {
        let backend = backend::open(args.backend)?;
        // The largest batch this load lets the daemon form; requests are never split, and
        // streamed epochs may all be queued at once.
        let at_once = match args.stream {
            true => epochs,
            false => args.clients * args.epochs_per_request,
        };
        let formed = at_once
            .min(server.max_batch as usize)
            .max(args.epochs_per_request);
        let batch: Vec<EpochInput> = (0..args.baseline_batch.unwrap_or(formed).max(1))
            .map(|k| inputs[k % DISTINCT].clone())
            .collect();
        // Run batches until the baseline has covered as many epochs as the daemon did (at least one batch).
        let rounds = epochs.div_ceil(batch.len()).max(1);
        let started = Instant::now();
        for _ in 0..rounds {
            backend.run_batch(&batch)?;
        }
        let base_secs = started.elapsed().as_secs_f64();
        let base_rate = (rounds * batch.len()) as f64 / base_secs;
        println!(
            "in-process {} at batch {}: {} epochs in {base_secs:.3} s = {base_rate:.0} epochs/s, {:.2} ms per batch; daemon overhead ratio {:.2}x",
            backend.describe(),
            batch.len(),
            rounds * batch.len(),
            base_secs * 1000.0 / rounds as f64,
            base_rate / (epochs as f64 / secs)
        );
    }
    Ok(())
}

/// Client `c`'s StreamEpochs call: sends `epochs` epochs (ids 0..epochs, shape
/// `request_shape(c, id)`), checks every answer and returns each epoch's latency.
async fn stream_client(
    mut client: tonic::client::Grpc<Channel>,
    c: usize,
    epochs: usize,
    singles: Arc<Vec<Bytes>>,
    expected: Arc<Expected>,
    bearer: Bearer,
) -> anyhow::Result<Vec<Duration>> {
    // When the transport took each epoch, by id.
    let sent = Arc::new(std::sync::Mutex::new(Vec::with_capacity(epochs)));
    let taken = sent.clone();
    // The iterator runs lazily, as the transport polls the stream for the next epoch.
    let outbound = tokio_stream::iter((0..epochs).map(move |id| {
        taken
            .lock()
            .expect("no panics while held")
            .push(Instant::now());
        (id as u64, singles[request_shape(c, id)].clone())
    }));
    let mut request = tonic::Request::new(outbound);
    if let Some(v) = &bearer.0 {
        request.metadata_mut().insert("authorization", v.clone());
    }
    client.ready().await?;
    let path = PathAndQuery::from_static("/yuma.v1.Yuma/StreamEpochs");
    let mut inbound = client
        .streaming(request, path, PreEncodedStream::default())
        .await?
        .into_inner();
    let mut latencies = vec![Duration::ZERO; epochs];
    let mut answered = vec![false; epochs];
    while let Some(result) = inbound.message().await? {
        let now = Instant::now();
        let id = usize::try_from(result.id).ok().filter(|&i| i < epochs);
        let Some(id) = id.filter(|&i| !answered[i]) else {
            bail!(
                "client {c}: an answer for id {} that was not asked or already answered",
                result.id
            );
        };
        answered[id] = true;
        latencies[id] = now - sent.lock().expect("no panics while held")[id];
        let what = format!("client {c} stream id {id}");
        expected.check(request_shape(c, id), result.result, &what)?;
    }
    if let Some(missing) = answered.iter().position(|a| !a) {
        bail!("client {c}: the stream ended without an answer for id {missing}");
    }
    Ok(latencies)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
