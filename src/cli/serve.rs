//! `yuma serve`: the gRPC daemon with cross-request batching.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use yuma::backend::{self, BackendKind};
use yuma::server::batcher::BatchConfig;
use yuma::server::metrics::{Metrics, serve_metrics};
use yuma::server::{Limits, ServerConfig, serve};

/// Options of `yuma serve`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on (port 0 picks a free one; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// Backend running the epochs.
    #[arg(long, value_parser = super::backend_kind(), default_value = "auto")]
    pub backend: BackendKind,
    /// Rerun a batch on the CPU when the GPU device fails, instead of failing its callers.
    #[arg(long)]
    pub cpu_fallback: bool,
    /// Epochs per backend batch at most.
    #[arg(long, default_value_t = 1024)]
    pub max_batch: usize,
    /// Milliseconds the oldest queued request waits for its batch to fill [default: 0 on
    /// the CPU backend, whose cost grows with every epoch, 2 on GPU backends]. Epochs that
    /// arrive while a batch runs form the next batch either way.
    #[arg(long)]
    pub max_wait_ms: Option<u64>,
    /// No cross-request batching: each request runs as its own batch (max batch 1, no wait).
    #[arg(long)]
    pub no_batching: bool,
    /// Epochs queued at most; requests beyond it get RESOURCE_EXHAUSTED at once.
    #[arg(long, default_value_t = 65536)]
    pub queue_capacity: usize,
    /// Largest n accepted.
    #[arg(long, default_value_t = 65535)]
    pub max_n: u32,
    /// Most epochs in one RunEpochs call.
    #[arg(long, default_value_t = 4096)]
    pub max_epochs_per_request: usize,
    /// Largest request message, MiB.
    #[arg(long, default_value_t = 256)]
    pub max_message_mib: usize,
    /// Epochs one StreamEpochs call keeps in flight.
    #[arg(long, default_value_t = 256)]
    pub stream_in_flight: usize,
    /// File holding the bearer token clients must send (`authorization: Bearer <token>`).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// PEM certificate chain for TLS (needs the `tls` cargo feature).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Allow a non-loopback listen address without a token.
    #[arg(long)]
    pub insecure: bool,
    /// Address of the Prometheus metrics endpoint (`GET /metrics`), e.g. 127.0.0.1:9090.
    #[arg(long)]
    pub metrics: Option<SocketAddr>,
}

/// Reads the token file, trimmed; an empty token is refused.
fn read_token(path: &PathBuf) -> anyhow::Result<String> {
    let token = std::fs::read_to_string(path)
        .with_context(|| format!("reading --token-file {}", path.display()))?;
    let token = token.trim().to_string();
    if token.is_empty() {
        bail!("--token-file {} is empty", path.display());
    }
    Ok(token)
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

#[cfg(feature = "tls")]
fn tls_config(args: &Args) -> anyhow::Result<Option<tonic::transport::ServerTlsConfig>> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let cert =
        std::fs::read(cert).with_context(|| format!("reading --tls-cert {}", cert.display()))?;
    let key = std::fs::read(key).with_context(|| format!("reading --tls-key {}", key.display()))?;
    Ok(Some(
        tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(cert, key)),
    ))
}

/// Runs the daemon until Ctrl-C or SIGTERM, then drains accepted work and exits.
pub fn main(args: Args) -> anyhow::Result<()> {
    let token = args.token_file.as_ref().map(read_token).transpose()?;
    if !args.listen.ip().is_loopback() && token.is_none() && !args.insecure {
        bail!(
            "refusing to listen on non-loopback {} without --token-file (pass --insecure to allow it)",
            args.listen
        );
    }
    #[cfg(not(feature = "tls"))]
    if args.tls_cert.is_some() {
        bail!("--tls-cert/--tls-key need a yuma built with the `tls` cargo feature");
    }
    if !args.listen.ip().is_loopback() && args.tls_cert.is_none() && token.is_some() {
        tracing::warn!("the bearer token travels in clear text without --tls-cert/--tls-key");
    }
    let backend: Arc<dyn backend::Backend> =
        Arc::from(backend::open_with(args.backend, args.cpu_fallback)?);
    let batch = if args.no_batching {
        BatchConfig {
            max_batch: 1,
            max_wait: Duration::ZERO,
            queue_capacity: args.queue_capacity,
        }
    } else {
        BatchConfig {
            max_batch: args.max_batch,
            max_wait: args
                .max_wait_ms
                .map_or_else(|| backend.default_max_wait(), Duration::from_millis),
            queue_capacity: args.queue_capacity,
        }
    };
    let limits = Limits {
        max_n: args.max_n,
        max_epochs_per_request: args.max_epochs_per_request,
        max_message_bytes: args.max_message_mib << 20,
        stream_in_flight: args.stream_in_flight,
    };
    let config = ServerConfig {
        batch,
        limits,
        token,
        #[cfg(feature = "tls")]
        tls: tls_config(&args)?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let metrics = Arc::new(Metrics::new(backend.describe()));
        if let Some(addr) = args.metrics {
            let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding --metrics {addr}"))?;
            tracing::info!(addr = %listener.local_addr()?, "metrics on /metrics");
            tokio::spawn(serve_metrics(listener, metrics.clone()));
        }
        let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding --listen {}", args.listen))?;
        let bound = listener.local_addr()?;
        tracing::info!(addr = %bound, backend = %backend.describe(), max_batch = batch.max_batch, max_wait_ms = batch.max_wait.as_millis() as u64, "serving yuma.v1.Yuma");
        // Scripts read the bound address from this line (port 0 picks a free one).
        println!("yuma serve: listening on {bound}");
        serve(config, backend, listener, metrics, shutdown_signal()).await?;
        anyhow::Ok(())
    })
}
