//! The gRPC daemon: the `yuma.v1.Yuma` service over a cross-request [`batcher`], plus the
//! standard health and reflection services.
//!
//! Malformed epochs are refused at the door with INVALID_ARGUMENT naming the field and uid;
//! only well-formed epochs reach the shared queue, so one client's bad input never
//! disturbs another's work.

pub mod auth;
pub mod batcher;
pub mod codec;
pub mod message_limit;
pub mod metrics;
pub mod proto;
pub mod sparse_matrix;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rayon::prelude::*;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_stream::{Stream, StreamExt};
use tonic::{Code, Request, Response, Status, Streaming};

use crate::backend::{Backend, EpochResult};
use crate::epoch::mechanisms;
use crate::model::subnet::{AnyInput, AnyOutput};
use batcher::{BatchConfig, BatchError, Batcher};
use metrics::Metrics;
use proto::MatrixForm;

/// Code generated from `proto/yuma/v1/epoch.proto`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("yuma.v1");
    pub use super::sparse_matrix::SparseMatrix;

    /// The encoded descriptor set, served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("yuma_v1_descriptor");
}

/// Per-request limits, each refused with a status naming it.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest n accepted (at most 65535).
    pub max_n: u32,
    /// Most epochs in one RunEpochs call.
    pub max_epochs_per_request: usize,
    /// Largest encoded request message in bytes.
    pub max_message_bytes: usize,
    /// Epochs one StreamEpochs call keeps in flight before it stops reading.
    pub stream_in_flight: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_n: u16::MAX.into(),
            max_epochs_per_request: 4096,
            max_message_bytes: 256 << 20,
            stream_in_flight: 256,
        }
    }
}

/// Everything the daemon needs besides its backend and listener.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// How batches form.
    pub batch: BatchConfig,
    /// Per-request limits.
    pub limits: Limits,
    /// Bearer token every `Yuma` call must present, if any.
    pub token: Option<String>,
    /// TLS identity, if the daemon serves TLS.
    #[cfg(feature = "tls")]
    pub tls: Option<tonic::transport::ServerTlsConfig>,
}

/// Why the daemon could not run.
#[derive(Debug, Error)]
pub enum ServerError {
    /// A configuration that cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The transport failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Reflection could not load the descriptor set.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// The `yuma.v1.Yuma` service.
pub struct YumaService {
    batcher: Batcher,
    limits: Limits,
    batch: BatchConfig,
    backend: String,
    metrics: Arc<Metrics>,
}

/// `grpc-timeout` (e.g. `250m`) as a deadline counted from now, answered a little early.
///
/// tonic's transport also enforces the header and answers CANCELLED when it fires first, so
/// the handler's own deadline comes 2% + 1 ms sooner to answer DEADLINE_EXCEEDED.
fn deadline_of(meta: &tonic::metadata::MetadataMap) -> Option<Instant> {
    let raw = meta.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = raw.split_at(raw.len().checked_sub(1)?);
    let v: u64 = digits.parse().ok()?;
    let timeout = match unit {
        "H" => Duration::from_secs(v.checked_mul(3600)?),
        "M" => Duration::from_secs(v.checked_mul(60)?),
        "S" => Duration::from_secs(v),
        "m" => Duration::from_millis(v),
        "u" => Duration::from_micros(v),
        "n" => Duration::from_nanos(v),
        _ => return None,
    };
    let margin = timeout / 50 + Duration::from_millis(1);
    Some(Instant::now() + timeout.saturating_sub(margin))
}

/// The status a batcher failure maps to.
fn batch_status(e: BatchError) -> Status {
    let code = match e {
        BatchError::QueueFull { .. } => Code::ResourceExhausted,
        BatchError::Closed => Code::Unavailable,
        BatchError::DeadlineExceeded => Code::DeadlineExceeded,
        BatchError::Backend(_) => Code::Internal,
    };
    Status::new(code, e.to_string())
}

/// One epoch's result as protobuf, tagged with `id`, its bonds in `form`.
fn result_to_proto(id: u64, r: EpochResult, form: MatrixForm) -> pb::EpochResult {
    let result = match r {
        Ok(out) => pb::epoch_result::Result::Output(proto::output_to_proto(out, form)),
        Err(e) => pb::epoch_result::Result::Error(pb::EpochError {
            code: Code::InvalidArgument as i32,
            message: e.to_string(),
        }),
    };
    pb::EpochResult {
        id,
        result: Some(result),
    }
}

/// An error result for `id` with `status`'s code and message.
fn error_result(id: u64, status: &Status) -> pb::EpochResult {
    let error = pb::EpochError {
        code: status.code() as i32,
        message: status.message().to_string(),
    };
    pb::EpochResult {
        id,
        result: Some(pb::epoch_result::Result::Error(error)),
    }
}

/// Calls converting fewer values than this (one 256-uid epoch holds about 33,000) convert on
/// the runtime thread: a handoff to the blocking pool costs more than the work.
const INLINE_VALUES: usize = 1 << 17;

/// Runs `f` on this thread when `inline`, else on the blocking pool so the runtime keeps
/// serving; `f` is told whether it may spread over the rayon pool.
async fn run_sized<R: Send + 'static>(
    inline: bool,
    f: impl FnOnce(bool) -> R + Send + 'static,
) -> Result<R, Status> {
    if inline {
        return Ok(f(false));
    }
    tokio::task::spawn_blocking(move || f(true))
        .await
        .map_err(|e| Status::internal(format!("conversion task failed: {e}")))
}

/// Converts a call's epochs (in parallel when `parallel`), refusing the call for its first
/// malformed epoch.
fn convert_all(
    epochs: Vec<pb::EpochInput>,
    max_n: u32,
    parallel: bool,
) -> Result<Vec<crate::model::EpochInput>, Status> {
    let convert = |e| proto::input_from_proto(e, max_n);
    let converted: Vec<_> = if parallel {
        epochs.into_par_iter().map(convert).collect()
    } else {
        epochs.into_iter().map(convert).collect()
    };
    converted
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.map_err(|e| Status::invalid_argument(format!("epochs[{i}]: {e}"))))
        .collect()
}

/// A call's results as protobuf (in parallel when `parallel`), each bonds in its epoch's form.
fn results_to_proto(
    results: Vec<EpochResult>,
    forms: &[MatrixForm],
    parallel: bool,
) -> Vec<pb::EpochResult> {
    let convert = |(i, r): (usize, EpochResult)| result_to_proto(i as u64, r, forms[i]);
    if parallel {
        results.into_par_iter().enumerate().map(convert).collect()
    } else {
        results.into_iter().enumerate().map(convert).collect()
    }
}

impl YumaService {
    /// Converts a protobuf epoch, refusing it with INVALID_ARGUMENT naming `at` and the field.
    fn convert(
        &self,
        at: &str,
        input: Option<pb::EpochInput>,
    ) -> Result<crate::model::EpochInput, Status> {
        let input = input
            .ok_or_else(|| Status::invalid_argument(format!("{at}: field `input` is missing")))?;
        proto::input_from_proto(input, self.limits.max_n)
            .map_err(|e| Status::invalid_argument(format!("{at}: {e}")))
    }

    async fn run_subnet_epochs_inner(
        &self,
        request: Request<pb::RunSubnetEpochsRequest>,
    ) -> Result<pb::RunSubnetEpochsResponse, Status> {
        let deadline = deadline_of(request.metadata());
        let subnets = request.into_inner().subnets;
        // Every mechanism is one epoch of the batch, so the limit counts mechanisms.
        let epochs: usize = subnets.iter().map(|s| s.mechanisms.len()).sum();
        let limit = self.limits.max_epochs_per_request;
        if epochs > limit {
            return Err(Status::invalid_argument(format!(
                "field `subnets` holds {epochs} mechanism epochs, above the limit --max-epochs-per-request = {limit}"
            )));
        }
        let forms: Vec<MatrixForm> = subnets.iter().map(proto::subnet::form_of).collect();
        let inline = subnets
            .iter()
            .map(proto::subnet::subnet_size)
            .sum::<usize>()
            < INLINE_VALUES;
        let max_n = self.limits.max_n;
        let inputs = run_sized(inline, move |_| {
            subnets
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    proto::subnet::subnet_from_proto(s, max_n)
                        .map(AnyInput::Subnet)
                        .map_err(|e| Status::invalid_argument(format!("subnets[{i}]: {e}")))
                })
                .collect::<Result<Vec<_>, Status>>()
        })
        .await??;
        // Split on the host, every mechanism's epoch through the shared batcher, fold back.
        let (epochs, plan) = mechanisms::expand(inputs);
        let results = self
            .batcher
            .run(epochs, deadline)
            .await
            .map_err(batch_status)?;
        let errors = results.iter().filter(|r| r.is_err()).count();
        self.metrics.observe_epochs(results.len(), errors);
        let results = plan
            .assemble(results)
            .into_iter()
            .zip(forms)
            .enumerate()
            .map(|(i, (r, form))| {
                let result = match r {
                    Ok(AnyOutput::Subnet(out)) => pb::subnet_result::Result::Output(
                        proto::subnet::subnet_output_to_proto(out, form),
                    ),
                    Ok(AnyOutput::Epoch(_)) => unreachable!("a subnet input gives a subnet output"),
                    Err(e) => pb::subnet_result::Result::Error(pb::EpochError {
                        code: Code::InvalidArgument as i32,
                        message: e.to_string(),
                    }),
                };
                pb::SubnetResult {
                    id: i as u64,
                    result: Some(result),
                }
            })
            .collect();
        Ok(pb::RunSubnetEpochsResponse { results })
    }

    async fn run_epochs_inner(
        &self,
        request: Request<pb::RunEpochsRequest>,
    ) -> Result<pb::RunEpochsResponse, Status> {
        let deadline = deadline_of(request.metadata());
        let epochs = request.into_inner().epochs;
        let limit = self.limits.max_epochs_per_request;
        if epochs.len() > limit {
            return Err(Status::invalid_argument(format!(
                "field `epochs` holds {} epochs, above the limit --max-epochs-per-request = {limit}",
                epochs.len()
            )));
        }
        // Each epoch's bonds come back in the form its weights came in.
        let forms: Vec<MatrixForm> = epochs.iter().map(MatrixForm::of_input).collect();
        let inline = epochs.iter().map(proto::input_size).sum::<usize>() < INLINE_VALUES;
        let max_n = self.limits.max_n;
        let inputs = run_sized(inline, move |par| convert_all(epochs, max_n, par)).await??;
        let results = self
            .batcher
            .run(inputs, deadline)
            .await
            .map_err(batch_status)?;
        let errors = results.iter().filter(|r| r.is_err()).count();
        self.metrics.observe_epochs(results.len(), errors);
        let results = run_sized(inline, move |par| results_to_proto(results, &forms, par)).await?;
        Ok(pb::RunEpochsResponse { results })
    }
}

/// Counts one unary call in the metrics when it ends: with its status, or as CANCELLED when
/// the client goes away and tonic drops the handler before it answers.
struct CallRecord<'a> {
    metrics: &'a Metrics,
    method: &'static str,
    started: Instant,
    code: Code,
}

impl<'a> CallRecord<'a> {
    fn new(metrics: &'a Metrics, method: &'static str) -> Self {
        Self {
            metrics,
            method,
            started: Instant::now(),
            code: Code::Cancelled,
        }
    }

    fn finish(mut self, code: Code) {
        self.code = code;
    }
}

impl Drop for CallRecord<'_> {
    fn drop(&mut self) {
        self.metrics
            .observe_request(self.method, self.code, self.started.elapsed());
    }
}

type ResultStream = Pin<Box<dyn Stream<Item = Result<pb::EpochResult, Status>> + Send>>;

#[tonic::async_trait]
impl pb::yuma_server::Yuma for Arc<YumaService> {
    async fn run_epochs(
        &self,
        request: Request<pb::RunEpochsRequest>,
    ) -> Result<Response<pb::RunEpochsResponse>, Status> {
        let call = CallRecord::new(&self.metrics, "RunEpochs");
        let outcome = self.run_epochs_inner(request).await;
        call.finish(outcome.as_ref().err().map_or(Code::Ok, Status::code));
        if let Err(status) = &outcome {
            tracing::debug!(code = ?status.code(), message = status.message(), "RunEpochs refused");
        }
        outcome.map(Response::new)
    }

    async fn run_subnet_epochs(
        &self,
        request: Request<pb::RunSubnetEpochsRequest>,
    ) -> Result<Response<pb::RunSubnetEpochsResponse>, Status> {
        let call = CallRecord::new(&self.metrics, "RunSubnetEpochs");
        let outcome = self.run_subnet_epochs_inner(request).await;
        call.finish(outcome.as_ref().err().map_or(Code::Ok, Status::code));
        if let Err(status) = &outcome {
            tracing::debug!(code = ?status.code(), message = status.message(), "RunSubnetEpochs refused");
        }
        outcome.map(Response::new)
    }

    type StreamEpochsStream = ResultStream;

    async fn stream_epochs(
        &self,
        request: Request<Streaming<pb::EpochRequest>>,
    ) -> Result<Response<ResultStream>, Status> {
        let deadline = deadline_of(request.metadata());
        let mut inbound = request.into_inner();
        let in_flight = self.limits.stream_in_flight;
        let (tx, rx) = mpsc::channel(in_flight);
        let permits = Arc::new(Semaphore::new(in_flight));
        let svc = self.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut code = Code::Ok;
            loop {
                // Waiting for a permit before reading is what bounds the epochs in flight.
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                let msg = match inbound.message().await {
                    Ok(Some(msg)) => msg,
                    Ok(None) => break,
                    Err(status) => {
                        let status =
                            message_limit::map_stream_status(status, svc.limits.max_message_bytes);
                        code = status.code();
                        let _ = tx.send(Err(status)).await;
                        break;
                    }
                };
                let id = msg.id;
                let form = msg
                    .input
                    .as_ref()
                    .map_or(MatrixForm::Packed, MatrixForm::of_input);
                let input = match svc.convert(&format!("request id {id}"), msg.input) {
                    Ok(input) => input,
                    Err(status) => {
                        svc.metrics.observe_epochs(1, 1);
                        if tx.send(Ok(error_result(id, &status))).await.is_err() {
                            break;
                        }
                        continue;
                    }
                };
                let (svc, tx) = (svc.clone(), tx.clone());
                tokio::spawn(async move {
                    let result = tokio::select! {
                        // The client went away: withdraw the epoch from the queue.
                        _ = tx.closed() => return,
                        r = svc.batcher.run(vec![input], deadline) => r,
                    };
                    let answer = match result {
                        Ok(mut results) => {
                            let r = results
                                .pop()
                                .expect("the batcher answers one result per epoch");
                            svc.metrics.observe_epochs(1, usize::from(r.is_err()));
                            result_to_proto(id, r, form)
                        }
                        Err(e) => {
                            svc.metrics.observe_epochs(1, 1);
                            error_result(id, &batch_status(e))
                        }
                    };
                    let _ = tx.send(Ok(answer)).await;
                    drop(permit);
                });
            }
            svc.metrics
                .observe_request("StreamEpochs", code, started.elapsed());
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_backends(
        &self,
        _: Request<pb::GetBackendsRequest>,
    ) -> Result<Response<pb::GetBackendsResponse>, Status> {
        self.metrics
            .observe_request("GetBackends", Code::Ok, Duration::ZERO);
        Ok(Response::new(pb::GetBackendsResponse {
            backend: self.backend.clone(),
            max_batch: self.batch.max_batch as u32,
            max_wait_us: self.batch.max_wait.as_micros() as u64,
            queue_capacity: self.batch.queue_capacity as u32,
            max_n: self.limits.max_n,
            max_epochs_per_request: self.limits.max_epochs_per_request as u32,
            max_message_bytes: self.limits.max_message_bytes as u64,
        }))
    }
}

/// HTTP/2 flow-control window per call: h2's 64 KiB default turns a 100 MiB batch into
/// thousands of window-update round trips, which cost more than the epochs themselves.
pub const STREAM_WINDOW: u32 = 16 << 20;
/// HTTP/2 flow-control window per connection (several calls share it).
pub const CONNECTION_WINDOW: u32 = 64 << 20;
/// Largest HTTP/2 frame accepted, so a large message arrives in few frames.
pub const MAX_FRAME: u32 = 1 << 20;

/// Serves on `listener` until `shutdown` resolves, then stops accepting calls, finishes
/// every accepted one (queued epochs included) and returns.
pub async fn serve(
    config: ServerConfig,
    backend: Arc<dyn Backend>,
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    let ServerConfig {
        batch,
        limits,
        token,
        ..
    } = config.clone();
    if batch.max_batch == 0 || batch.queue_capacity == 0 || limits.stream_in_flight == 0 {
        return Err(ServerError::Config(
            "max batch, queue capacity and stream in-flight must be at least 1".into(),
        ));
    }
    if limits.max_epochs_per_request > batch.queue_capacity {
        return Err(ServerError::Config(format!(
            "--max-epochs-per-request ({}) above --queue-capacity ({}) could never be queued",
            limits.max_epochs_per_request, batch.queue_capacity
        )));
    }
    let description = backend.describe();
    let (batcher, dispatcher) = Batcher::start(backend, batch, metrics.clone());
    let service = Arc::new(YumaService {
        batcher: batcher.clone(),
        limits,
        batch,
        backend: description,
        metrics: metrics.clone(),
    });
    let yuma = pb::yuma_server::YumaServer::new(service)
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(usize::MAX);
    let yuma = message_limit::MessageLimit::new(yuma, limits.max_message_bytes);
    let yuma = auth::Auth::new(yuma, token, metrics.clone());
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("yuma.v1.Yuma", tonic_health::ServingStatus::Serving)
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;

    #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
    let mut builder = tonic::transport::Server::builder()
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME);
    #[cfg(feature = "tls")]
    if let Some(tls) = config.tls.clone() {
        builder = builder.tls_config(tls)?;
    }
    // Nagle would hold each small answer for the peer's delayed ACK (~40 ms a call).
    let incoming = TcpListenerStream::new(listener).map(|conn| {
        let conn = conn?;
        conn.set_nodelay(true)?;
        std::io::Result::Ok(conn)
    });
    let health_on_shutdown = health.clone();
    let result = builder
        .add_service(health_service)
        .add_service(reflection)
        .add_service(yuma)
        .serve_with_incoming_shutdown(incoming, async move {
            shutdown.await;
            tracing::info!("shutting down: no new calls, finishing accepted ones");
            health_on_shutdown
                .set_service_status("yuma.v1.Yuma", tonic_health::ServingStatus::NotServing)
                .await;
        })
        .await;
    batcher.close();
    if let Err(e) = dispatcher.await {
        tracing::error!(error = %e, "batch dispatcher failed");
    }
    tracing::info!("stopped");
    Ok(result?)
}
