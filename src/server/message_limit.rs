//! Limits on request messages: each one's size, and the bytes all calls may hold at once.
//!
//! tonic refuses a message above `max_decoding_message_size` with OUT_OF_RANGE; gRPC's
//! convention (and this daemon's contract) is RESOURCE_EXHAUSTED, so the status in the
//! response headers is rewritten on the way out.
//!
//! tonic buffers a whole message before decoding it, so many clients sending large messages
//! at once would hold many times the per-message limit. Each message therefore reserves its
//! declared length (the gRPC frame header, read before the payload arrives) from one
//! [`Budget`] shared by every call; a message that does not fit is refused with
//! RESOURCE_EXHAUSTED before its payload is buffered. A unary call keeps its reservation
//! until its answer has been sent (the decoded request, its queued epochs and the encoded
//! answer live that long, the last as long as the client takes to read it); a stream's
//! reservation passes from each message to the next.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use http_body::Frame;
use tonic::body::Body;
use tonic::codegen::http::{self, HeaderMap};
use tonic::codegen::{BoxFuture, Bytes, Context, Poll, Service};
use tonic::server::NamedService;
use tonic::{Code, Status};

/// Messages at most this large may use the whole budget; larger ones leave
/// `Budget::reserve` free, so small calls are still answered while large ones saturate it.
pub const SMALL_MESSAGE: usize = 1 << 20;

/// Request bytes all calls may hold at once.
#[derive(Debug)]
pub struct Budget {
    total: usize,
    reserve: usize,
    used: Mutex<usize>,
}

impl Budget {
    /// A budget of `total` bytes, an eighth of it kept for messages up to [`SMALL_MESSAGE`].
    pub fn new(total: usize) -> Arc<Self> {
        Arc::new(Self {
            total,
            reserve: total / 8,
            used: Mutex::new(0),
        })
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        *self.used.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserves `bytes`, or says why not.
    fn take(self: &Arc<Self>, bytes: usize) -> Result<Reservation, Status> {
        let limit = if bytes <= SMALL_MESSAGE {
            self.total
        } else {
            self.total - self.reserve
        };
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        if *used + bytes > limit {
            return Err(Status::resource_exhausted(format!(
                "server busy: a {bytes}-byte request message does not fit beside the {} bytes \
                 other calls hold, within the limit --max-inflight-mib = {} MiB",
                *used,
                self.total >> 20
            )));
        }
        *used += bytes;
        Ok(Reservation {
            budget: self.clone(),
            bytes,
        })
    }
}

/// Bytes held from a [`Budget`] until dropped.
#[derive(Debug)]
struct Reservation {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        *self
            .budget
            .used
            .lock()
            .unwrap_or_else(PoisonError::into_inner) -= self.bytes;
    }
}

/// Where a request body is in the gRPC framing.
#[derive(Debug)]
enum Framing {
    /// Reading a 5-byte message header, `have` bytes of it so far.
    Header { buf: [u8; 5], have: usize },
    /// Passing `left` payload bytes of the current message.
    Payload { left: usize },
}

/// A request body that reserves each message's declared length from the budget as its
/// header passes, and fails the call with RESOURCE_EXHAUSTED when it does not fit.
struct Metered {
    inner: Body,
    budget: Arc<Budget>,
    max_bytes: usize,
    framing: Framing,
    held: Arc<Mutex<Option<Reservation>>>,
}

impl Metered {
    /// Follows the framing through `data`, reserving at each complete message header.
    fn scan(&mut self, mut data: &[u8]) -> Result<(), Status> {
        while !data.is_empty() {
            match &mut self.framing {
                Framing::Payload { left } => {
                    let k = (*left).min(data.len());
                    *left -= k;
                    data = &data[k..];
                    if *left == 0 {
                        self.framing = Framing::Header {
                            buf: [0; 5],
                            have: 0,
                        };
                    }
                }
                Framing::Header { buf, have } => {
                    let k = (5 - *have).min(data.len());
                    buf[*have..*have + k].copy_from_slice(&data[..k]);
                    *have += k;
                    data = &data[k..];
                    if *have == 5 {
                        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
                        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
                        // The previous message is decoded by now: its bytes are the queue's.
                        held.take();
                        // Above the per-message limit tonic refuses it unread (see `remap`).
                        if len <= self.max_bytes {
                            *held = Some(self.budget.take(len)?);
                        }
                        self.framing = Framing::Payload { left: len };
                        if len == 0 {
                            self.framing = Framing::Header {
                                buf: [0; 5],
                                have: 0,
                            };
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl http_body::Body for Metered {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let data = data.clone();
            if let Err(status) = self.scan(&data) {
                return Poll::Ready(Some(Err(status)));
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that holds its call's reservation until it is sent or dropped.
struct Holding {
    inner: Body,
    _held: Arc<Mutex<Option<Reservation>>>,
}

impl http_body::Body for Holding {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Wraps a gRPC service whose decoder is limited to `max_bytes` per message, holding all
/// request messages in flight to `budget`.
#[derive(Clone)]
pub struct MessageLimit<S> {
    inner: S,
    max_bytes: usize,
    budget: Arc<Budget>,
}

impl<S> MessageLimit<S> {
    /// Wraps `inner`, whose decoder refuses messages above `max_bytes`.
    pub fn new(inner: S, max_bytes: usize, budget: Arc<Budget>) -> Self {
        Self {
            inner,
            max_bytes,
            budget,
        }
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

impl<S> Service<http::Request<Body>> for MessageLimit<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let held = Arc::new(Mutex::new(None));
        let request = request.map(|inner| {
            Body::new(Metered {
                inner,
                budget: self.budget.clone(),
                max_bytes: self.max_bytes,
                framing: Framing::Header {
                    buf: [0; 5],
                    have: 0,
                },
                held: held.clone(),
            })
        });
        let response = self.inner.call(request);
        let max_bytes = self.max_bytes;
        Box::pin(async move {
            let response = response.await?;
            Ok(match too_large(response.headers(), max_bytes) {
                Some(status) => status.into_http(),
                None => response.map(|inner| Body::new(Holding { inner, _held: held })),
            })
        })
    }
}

/// The same mapping for a status met while reading a request stream.
pub fn map_stream_status(status: Status, max_bytes: usize) -> Status {
    remap(&status, max_bytes).unwrap_or(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metered(budget: &Arc<Budget>, max_bytes: usize) -> Metered {
        Metered {
            inner: Body::empty(),
            budget: budget.clone(),
            max_bytes,
            framing: Framing::Header {
                buf: [0; 5],
                have: 0,
            },
            held: Arc::new(Mutex::new(None)),
        }
    }

    fn header(len: u32) -> Vec<u8> {
        let mut h = vec![0];
        h.extend(len.to_be_bytes());
        h
    }

    #[test]
    fn reserves_each_message_across_split_headers() {
        let budget = Budget::new(64 << 20);
        let mut m = metered(&budget, 16 << 20);
        let first = header(3 << 20);
        m.scan(&first[..2]).unwrap();
        assert_eq!(budget.used(), 0);
        m.scan(&first[2..]).unwrap();
        assert_eq!(budget.used(), 3 << 20);
        // The payload, then the next message's header in the same chunk.
        let mut chunk = vec![7; 3 << 20];
        chunk.extend(header(10));
        m.scan(&chunk).unwrap();
        assert_eq!(budget.used(), 10, "the first message's bytes pass on");
        drop(m);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn large_messages_leave_the_reserve_to_small_ones() {
        let budget = Budget::new(64 << 20);
        let mut held = Vec::new();
        // 56 MiB of large messages fit, the 8 MiB reserve does not go to a ninth.
        for _ in 0..7 {
            let mut m = metered(&budget, 16 << 20);
            m.scan(&header(8 << 20)).unwrap();
            held.push(m);
        }
        let status = metered(&budget, 16 << 20)
            .scan(&header(8 << 20))
            .unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(
            status.message().contains("--max-inflight-mib = 64"),
            "{status:?}"
        );
        let mut small = metered(&budget, 16 << 20);
        small.scan(&header(SMALL_MESSAGE as u32)).unwrap();
        // Above the per-message limit: left to tonic's own refusal, nothing reserved.
        let mut huge = metered(&budget, 16 << 20);
        huge.scan(&header(u32::MAX)).unwrap();
        assert_eq!(budget.used(), (56 << 20) + SMALL_MESSAGE);
        drop((held, small, huge));
        assert_eq!(budget.used(), 0);
    }
}
