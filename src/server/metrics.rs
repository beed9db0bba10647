//! Prometheus metrics: counters and histograms on atomics, rendered in the text
//! exposition format and served over plain HTTP on a tokio listener.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// Latency bucket bounds in microseconds (100 µs .. 10 s).
const LATENCY_US: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];
/// Batch size bucket bounds in epochs.
const BATCH_EPOCHS: [u64; 14] = [
    1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192,
];

/// A cumulative histogram over integer observations.
struct Histogram {
    bounds: &'static [u64],
    counts: Vec<AtomicU64>,
    count: AtomicU64,
    sum: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [u64]) -> Self {
        Self {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
        }
    }

    fn observe(&self, v: u64) {
        if let Some(i) = self.bounds.iter().position(|&b| v <= b) {
            self.counts[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum.fetch_add(v, Relaxed);
    }

    /// Renders buckets; `scale` turns the integer unit into the exposed one (1e6: µs -> s).
    fn render(&self, out: &mut String, name: &str, labels: &str, scale: u64) {
        let fmt = |v: u64| {
            if scale == 1 {
                v.to_string()
            } else {
                format!("{}.{:06}", v / scale, v % scale)
            }
        };
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            cumulative += c.load(Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{}\"}} {cumulative}",
                fmt(*b)
            );
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let braced = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braced} {}", fmt(self.sum.load(Relaxed)));
        let _ = writeln!(out, "{name}_count{braced} {count}");
    }
}

/// The daemon's metrics, shared by the service, the batcher and the exposition endpoint.
pub struct Metrics {
    backend: String,
    requests: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    latency: Mutex<BTreeMap<&'static str, Histogram>>,
    epochs: AtomicU64,
    epoch_errors: AtomicU64,
    queue_depth: AtomicU64,
    batch_epochs: Histogram,
    batch_seconds: Histogram,
}

impl Metrics {
    /// Empty metrics for a server running `backend`.
    pub fn new(backend: String) -> Self {
        Self {
            backend,
            requests: Mutex::default(),
            latency: Mutex::default(),
            epochs: AtomicU64::new(0),
            epoch_errors: AtomicU64::new(0),
            queue_depth: AtomicU64::new(0),
            batch_epochs: Histogram::new(&BATCH_EPOCHS),
            batch_seconds: Histogram::new(&LATENCY_US),
        }
    }

    /// Counts one finished call of `method` with status `code` and its latency.
    pub fn observe_request(&self, method: &'static str, code: tonic::Code, latency: Duration) {
        let code = code_name(code);
        *self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((method, code))
            .or_default() += 1;
        self.latency
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(method)
            .or_insert_with(|| Histogram::new(&LATENCY_US))
            .observe(latency.as_micros() as u64);
    }

    /// Counts epochs answered, and how many of them with a per-epoch error.
    pub fn observe_epochs(&self, answered: usize, errors: usize) {
        self.epochs.fetch_add(answered as u64, Relaxed);
        self.epoch_errors.fetch_add(errors as u64, Relaxed);
    }

    /// Records one backend batch.
    pub fn observe_batch(&self, epochs: usize, took: Duration) {
        self.batch_epochs.observe(epochs as u64);
        self.batch_seconds.observe(took.as_micros() as u64);
    }

    /// Sets the number of epochs waiting in the queue.
    pub fn set_queue_depth(&self, epochs: usize) {
        self.queue_depth.store(epochs as u64, Relaxed);
    }

    /// Epochs waiting in the queue, as last recorded.
    pub fn queue_depth(&self) -> u64 {
        self.queue_depth.load(Relaxed)
    }

    /// Calls finished with `method` and `code` so far.
    pub fn requests(&self, method: &'static str, code: tonic::Code) -> u64 {
        let requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        requests
            .get(&(method, code_name(code)))
            .copied()
            .unwrap_or(0)
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let backend = self.backend.replace('\\', "\\\\").replace('"', "\\\"");
        out += "# HELP yuma_backend_info The backend serving epochs.\n# TYPE yuma_backend_info gauge\n";
        let _ = writeln!(out, "yuma_backend_info{{backend=\"{backend}\"}} 1");
        out += "# HELP yuma_requests_total Finished calls by method and gRPC status code.\n# TYPE yuma_requests_total counter\n";
        for ((method, code), n) in self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "yuma_requests_total{{method=\"{method}\",code=\"{code}\"}} {n}"
            );
        }
        out += "# HELP yuma_request_duration_seconds Call latency by method.\n# TYPE yuma_request_duration_seconds histogram\n";
        for (method, h) in self
            .latency
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            h.render(
                &mut out,
                "yuma_request_duration_seconds",
                &format!("method=\"{method}\""),
                1_000_000,
            );
        }
        out += "# HELP yuma_epochs_total Epochs answered.\n# TYPE yuma_epochs_total counter\n";
        let _ = writeln!(out, "yuma_epochs_total {}", self.epochs.load(Relaxed));
        out += "# HELP yuma_epoch_errors_total Epochs answered with a per-epoch error.\n# TYPE yuma_epoch_errors_total counter\n";
        let _ = writeln!(
            out,
            "yuma_epoch_errors_total {}",
            self.epoch_errors.load(Relaxed)
        );
        out += "# HELP yuma_queue_depth_epochs Epochs waiting for a batch.\n# TYPE yuma_queue_depth_epochs gauge\n";
        let _ = writeln!(out, "yuma_queue_depth_epochs {}", self.queue_depth());
        out += "# HELP yuma_batch_epochs Epochs per backend batch.\n# TYPE yuma_batch_epochs histogram\n";
        self.batch_epochs
            .render(&mut out, "yuma_batch_epochs", "", 1);
        out += "# HELP yuma_batch_duration_seconds Backend time per batch.\n# TYPE yuma_batch_duration_seconds histogram\n";
        self.batch_seconds
            .render(&mut out, "yuma_batch_duration_seconds", "", 1_000_000);
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

/// Serves `GET /metrics` on `listener` until the task is dropped.
pub async fn serve_metrics(listener: TcpListener, metrics: std::sync::Arc<Metrics>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    if let Err(e) = answer(stream, &metrics).await {
                        tracing::debug!(error = %e, "metrics request failed");
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "metrics accept failed"),
        }
    }
}

/// Reads one HTTP request head and answers it, closing the connection.
async fn answer(stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    // A request head fits well within 8 KiB; a client that sends more gets no answer.
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        stream.readable().await?;
        match stream.try_read(&mut buf) {
            Ok(0) => break,
            Ok(k) => head.extend_from_slice(&buf[..k]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    let ok = head.starts_with(b"GET /metrics ") || head.starts_with(b"GET / ");
    let (status, body) = if ok {
        ("200 OK", metrics.render())
    } else {
        ("404 Not Found", "try GET /metrics\n".to_string())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut rest = response.as_bytes();
    while !rest.is_empty() {
        stream.writable().await?;
        match stream.try_write(rest) {
            Ok(k) => rest = &rest[k..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
