//! Prometheus metrics: a `prometheus-client` registry, served in the text exposition format
//! (0.0.4) by `axum` on `GET /metrics`.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

/// Latency bucket bounds in seconds (100 µs .. 10 s).
const LATENCY_S: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Batch size bucket bounds in epochs.
const BATCH_EPOCHS: [f64; 14] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0,
];

/// Labels of a finished call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    method: &'static str,
    code: &'static str,
}

/// Labels of a latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: &'static str,
}

/// Labels of the backend info gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    backend: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_S)
}

/// The daemon's metrics, shared by the service, the batcher and the exposition endpoint.
pub struct Metrics {
    registry: Registry,
    requests: Family<CallLabels, Counter>,
    latency: Family<MethodLabels, Histogram, fn() -> Histogram>,
    epochs: Counter,
    epoch_errors: Counter,
    queue_depth: Gauge,
    queue_bytes: Gauge,
    batch_epochs: Histogram,
    batch_seconds: Histogram,
}

impl Metrics {
    /// Empty metrics for a server running `backend`.
    pub fn new(backend: String) -> Self {
        let mut registry = Registry::default();
        let info = Family::<BackendLabels, Gauge>::default();
        info.get_or_create(&BackendLabels { backend }).set(1);
        registry.register("yuma_backend_info", "The backend serving epochs", info);
        let requests = Family::<CallLabels, Counter>::default();
        registry.register(
            "yuma_requests",
            "Finished calls by method and gRPC status code",
            requests.clone(),
        );
        let latency = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "yuma_request_duration_seconds",
            "Call latency by method",
            latency.clone(),
        );
        let epochs = Counter::default();
        registry.register("yuma_epochs", "Epochs answered", epochs.clone());
        let epoch_errors = Counter::default();
        registry.register(
            "yuma_epoch_errors",
            "Epochs answered with a per-epoch error",
            epoch_errors.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "yuma_queue_depth_epochs",
            "Epochs waiting for a batch",
            queue_depth.clone(),
        );
        let queue_bytes = Gauge::default();
        registry.register(
            "yuma_queue_bytes",
            "Estimated memory held by the epochs waiting for a batch",
            queue_bytes.clone(),
        );
        let batch_epochs = Histogram::new(BATCH_EPOCHS);
        registry.register(
            "yuma_batch_epochs",
            "Epochs per backend batch",
            batch_epochs.clone(),
        );
        let batch_seconds = latency_histogram();
        registry.register(
            "yuma_batch_duration_seconds",
            "Backend time per batch",
            batch_seconds.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            epochs,
            epoch_errors,
            queue_depth,
            queue_bytes,
            batch_epochs,
            batch_seconds,
        }
    }

    /// Counts one finished call of `method` with status `code` and its latency.
    pub fn observe_request(&self, method: &'static str, code: tonic::Code, latency: Duration) {
        let code = code_name(code);
        self.requests
            .get_or_create(&CallLabels { method, code })
            .inc();
        self.latency
            .get_or_create(&MethodLabels { method })
            .observe(latency.as_secs_f64());
    }

    /// Counts epochs answered, and how many of them with a per-epoch error.
    pub fn observe_epochs(&self, answered: usize, errors: usize) {
        self.epochs.inc_by(answered as u64);
        self.epoch_errors.inc_by(errors as u64);
    }

    /// Records one backend batch.
    pub fn observe_batch(&self, epochs: usize, took: Duration) {
        self.batch_epochs.observe(epochs as f64);
        self.batch_seconds.observe(took.as_secs_f64());
    }

    /// Sets the number of epochs waiting in the queue and the bytes they hold.
    pub fn set_queue(&self, epochs: usize, bytes: usize) {
        self.queue_depth.set(epochs as i64);
        self.queue_bytes.set(bytes as i64);
    }

    /// Epochs waiting in the queue, as last recorded.
    pub fn queue_depth(&self) -> u64 {
        self.queue_depth.get() as u64
    }

    /// Calls finished with `method` and `code` so far.
    pub fn requests(&self, method: &'static str, code: tonic::Code) -> u64 {
        let labels = CallLabels {
            method,
            code: code_name(code),
        };
        self.requests.get(&labels).map_or(0, |c| c.get())
    }

    /// The text exposition format (0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// The status code's canonical name, as gRPC spells it.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Serves `GET /metrics` (and `GET /`) on `listener` with axum until the task is dropped;
/// any other path is 404.
pub async fn serve_metrics(listener: TcpListener, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let exposition = move || {
        let body = metrics.render();
        async move {
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)],
                body,
            )
        }
    };
    let app = axum::Router::new()
        .route("/metrics", get(exposition.clone()))
        .route("/", get(exposition));
    axum::serve(listener, app).await
}
