//! Bearer-token check in front of the `yuma.v1.Yuma` service; refused calls are counted in
//! the metrics under their method, like every other finished call.

use std::sync::Arc;
use std::time::Duration;

use tonic::codegen::http;
use tonic::codegen::{BoxFuture, Context, Poll, Service};
use tonic::server::NamedService;
use tonic::{Code, Status};

use super::metrics::Metrics;

/// Wraps a gRPC service, answering UNAUTHENTICATED unless the call presents
/// `authorization: Bearer <token>` (when a token is configured).
#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    token: Option<Arc<[u8]>>,
    metrics: Arc<Metrics>,
}

impl<S> Auth<S> {
    /// Wraps `inner`; `None` lets every call through.
    pub fn new(inner: S, token: Option<String>, metrics: Arc<Metrics>) -> Self {
        let token = token.map(|t| Arc::from(t.into_bytes()));
        Self {
            inner,
            token,
            metrics,
        }
    }
}

impl<S: NamedService> NamedService for Auth<S> {
    const NAME: &'static str = S::NAME;
}

/// Compares without an early exit, so timing does not reveal the matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The refusal for `headers`, or `None` when they carry the right token.
fn refusal(headers: &http::HeaderMap, token: &[u8]) -> Option<Status> {
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if constant_time_eq(g.as_bytes(), token) => None,
        Some(_) => Some(Status::unauthenticated("invalid bearer token")),
        None => Some(Status::unauthenticated(
            "missing `authorization: Bearer <token>` metadata",
        )),
    }
}

/// The metrics label of a `yuma.v1.Yuma` request path (labels must be static).
fn method_of(path: &str) -> &'static str {
    match path.rsplit('/').next() {
        Some("RunEpochs") => "RunEpochs",
        Some("StreamEpochs") => "StreamEpochs",
        Some("RunSubnetEpochs") => "RunSubnetEpochs",
        Some("GetBackends") => "GetBackends",
        _ => "unknown",
    }
}

impl<S, B> Service<http::Request<B>> for Auth<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let refused = self
            .token
            .as_deref()
            .and_then(|token| refusal(request.headers(), token));
        match refused {
            Some(status) => {
                let method = method_of(request.uri().path());
                self.metrics
                    .observe_request(method, Code::Unauthenticated, Duration::ZERO);
                tracing::debug!(method, message = status.message(), "call refused");
                Box::pin(async move { Ok(status.into_http()) })
            }
            None => Box::pin(self.inner.call(request)),
        }
    }
}
