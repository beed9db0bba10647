//! Refuses requests that are not gRPC. tonic decodes any body whatever its content-type;
//! the gRPC spec has a server answer a content-type that does not begin with
//! `application/grpc` with HTTP 415, and like grpc-go this one also carries
//! INVALID_ARGUMENT, so gRPC clients and plain HTTP/2 clients both see a refusal.

use tonic::Status;
use tonic::codegen::http;
use tonic::codegen::{BoxFuture, Context, Poll, Service};
use tonic::server::NamedService;

/// Wraps a gRPC service, refusing requests whose content-type is not gRPC's.
#[derive(Clone)]
pub struct GrpcOnly<S> {
    inner: S,
}

impl<S> GrpcOnly<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S: NamedService> NamedService for GrpcOnly<S> {
    const NAME: &'static str = S::NAME;
}

/// Whether `content_type` is `application/grpc`, alone or with a `+subtype` or parameters.
pub fn is_grpc(content_type: Option<&[u8]>) -> bool {
    content_type
        .and_then(|c| c.strip_prefix(b"application/grpc"))
        .is_some_and(|rest| matches!(rest.first(), None | Some(b'+' | b';')))
}

impl<S, B> Service<http::Request<B>> for GrpcOnly<S>
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
        let content_type = request.headers().get(http::header::CONTENT_TYPE);
        if is_grpc(content_type.map(|c| c.as_bytes())) {
            return Box::pin(self.inner.call(request));
        }
        let shown = content_type.map_or("none".into(), |c| {
            format!("{:?}", String::from_utf8_lossy(c.as_bytes()))
        });
        let status = Status::invalid_argument(format!(
            "content-type {shown} is not application/grpc: this is a gRPC service"
        ));
        tracing::debug!(message = status.message(), "request refused");
        let mut response = status.into_http();
        *response.status_mut() = http::StatusCode::UNSUPPORTED_MEDIA_TYPE;
        Box::pin(async move { Ok(response) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_grpc_content_types_pass() {
        for ok in [
            &b"application/grpc"[..],
            b"application/grpc+proto",
            b"application/grpc;charset=utf-8",
        ] {
            assert!(is_grpc(Some(ok)), "{ok:?}");
        }
        for bad in [
            &b"application/grpcx"[..],
            b"application/json",
            b"text/plain",
            b"",
            b"APPLICATION/GRPC",
            b"application/grp",
        ] {
            assert!(!is_grpc(Some(bad)), "{bad:?}");
        }
        assert!(!is_grpc(None));
    }
}
