//! Answers an oversized request message with RESOURCE_EXHAUSTED naming the server's limit.
//!
//! tonic refuses a message above `max_decoding_message_size` with OUT_OF_RANGE; gRPC's
//! convention (and this daemon's contract) is RESOURCE_EXHAUSTED, so the status in the
//! response headers is rewritten on the way out.

use tonic::codegen::http::{self, HeaderMap};
use tonic::codegen::{BoxFuture, Context, Poll, Service};
use tonic::server::NamedService;
use tonic::{Code, Status};

/// Wraps a gRPC service whose decoder is limited to `max_bytes`.
#[derive(Clone)]
pub struct MessageLimit<S> {
    inner: S,
    max_bytes: usize,
}

impl<S> MessageLimit<S> {
    /// Wraps `inner`, whose decoder refuses messages above `max_bytes`.
    pub fn new(inner: S, max_bytes: usize) -> Self {
        Self { inner, max_bytes }
    }
}

impl<S: NamedService> NamedService for MessageLimit<S> {
    const NAME: &'static str = S::NAME;
}

/// RESOURCE_EXHAUSTED naming the limit when `status` is tonic's message-too-large refusal.
fn remap(status: &Status, max_bytes: usize) -> Option<Status> {
    (status.code() == Code::OutOfRange && status.message().contains("message length too large"))
        .then(|| {
            Status::resource_exhausted(format!(
                "request message too large for the limit --max-message-mib = {} MiB ({})",
                max_bytes >> 20,
                status.message()
            ))
        })
}

/// The replacement status when `headers` carry tonic's message-too-large refusal.
fn too_large(headers: &HeaderMap, max_bytes: usize) -> Option<Status> {
    remap(&Status::from_header_map(headers)?, max_bytes)
}

impl<S, B> Service<http::Request<B>> for MessageLimit<S>
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
        let response = self.inner.call(request);
        let max_bytes = self.max_bytes;
        Box::pin(async move {
            let response = response.await?;
            Ok(match too_large(response.headers(), max_bytes) {
                Some(status) => status.into_http(),
                None => response,
            })
        })
    }
}

/// The same mapping for a status met while reading a request stream.
pub fn map_stream_status(status: Status, max_bytes: usize) -> Status {
    remap(&status, max_bytes).unwrap_or(status)
}
