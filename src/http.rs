//! The hardened HTTP server, for the web app and the metrics listener alike: the
//! router on each accepted connection, with deadlines no client can stretch, so
//! slow or idle connections cannot pile up and exhaust file handles.
//!
//! - A request's header block must arrive within `HTTP_HEADER_TIMEOUT` of its
//!   first byte ([`HeadDeadline`], on the connection).
//! - Its body must arrive within `HTTP_BODY_TIMEOUT` of the handler asking for it
//!   ([`body_deadline`], on the request); a `Content-Length` over the route's
//!   limit is refused with 413 before a byte of it is read (the router's limits).
//! - A connection idle between requests is closed after `HTTP_IDLE_TIMEOUT`.
//!
//! Each connection runs in a task of its own: a slow one delays nobody else.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt as _;

use crate::config::HttpTimeouts as Timeouts;

/// Serves `router` on `listener` until `shutdown` resolves, then lets the
/// requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let router = router.layer(axum::middleware::from_fn(move |request, next| {
        body_deadline(timeouts.body, request, next)
    }));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Hyper's header timer runs from the moment a connection waits for a request:
    // the idle limit. A header block begun and not finished is the shorter one.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.idle);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(timeouts.idle);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file handles, say: wait rather than spin.
                    tracing::warn!(error = %err, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: Request<_>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request.map(Body::new))
        });
        let io = TokioIo::new(HeadDeadline::new(stream, timeouts.header));
        let connection = builder.serve_connection_with_upgrades(io, service);
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            // A client that hangs up or is cut off is no error of ours.
            let _ = connection.await;
        });
    }
    graceful.shutdown().await;
    Ok(())
}

/// Gives the request's body until `limit` after the handler starts reading it;
/// past that, reading fails (the extractor answers) and the connection closes.
async fn body_deadline(limit: Duration, request: Request, next: Next) -> Response {
    let request = request.map(|body| {
        Body::new(DeadlineBody {
            inner: body,
            deadline: Box::pin(tokio::time::sleep(limit)),
        })
    });
    next.run(request).await
}

struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimedOut;

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimedOut.into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Where a connection is in its current request, as far as the bytes tell.
enum Phase {
    /// Between requests: waiting for the first byte of the next one.
    Idle,
    /// A header block has begun and must end (a blank line) by the deadline.
    Head {
        deadline: Pin<Box<Sleep>>,
        /// The last bytes read, to find a blank line split over two reads.
        tail: [u8; 3],
    },
    /// The header block is complete; the request is the handler's.
    Busy,
}

/// A connection that fails its read once a header block has taken longer than
/// `limit`, which makes hyper close it.
pub struct HeadDeadline {
    stream: TcpStream,
    limit: Duration,
    phase: Phase,
}

impl HeadDeadline {
    fn new(stream: TcpStream, limit: Duration) -> Self {
        HeadDeadline {
            stream,
            limit,
            phase: Phase::Idle,
        }
    }

    /// Follows the bytes just read through the header block.
    fn saw(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if matches!(self.phase, Phase::Idle) {
            self.phase = Phase::Head {
                deadline: Box::pin(tokio::time::sleep_until(Instant::now() + self.limit)),
                tail: [0; 3],
            };
        }
        if let Phase::Head { tail, .. } = &mut self.phase {
            // The blank line may start in the bytes of an earlier read.
            let mut seam = tail.to_vec();
            seam.extend(bytes.iter().take(3));
            let ends = |window: &[u8]| window == b"\r\n\r\n";
            if seam.windows(4).any(ends) || bytes.windows(4).any(ends) {
                self.phase = Phase::Busy;
                return;
            }
            let keep = bytes.len().min(3);
            tail.rotate_left(keep);
            tail[3 - keep..].copy_from_slice(&bytes[bytes.len() - keep..]);
        }
    }
}

impl AsyncRead for HeadDeadline {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if !matches!(this.phase, Phase::Busy) {
                    this.saw(&buf.filled()[before..]);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => {
                let Phase::Head { deadline, .. } = &mut this.phase else {
                    return Poll::Pending;
                };
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "request header not received in time",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl AsyncWrite for HeadDeadline {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        // A response (not an interim `100 Continue`) ends the request: the next
        // bytes begin another header block.
        if !buf.is_empty() && !buf.starts_with(b"HTTP/1.1 1") {
            this.phase = Phase::Idle;
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let first = bufs.iter().find(|b| !b.is_empty());
        if first.is_some_and(|b| !b.starts_with(b"HTTP/1.1 1")) {
            this.phase = Phase::Idle;
        }
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn connection(limit: Duration) -> HeadDeadline {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (_client, accepted) = tokio::join!(TcpStream::connect(address), listener.accept());
        HeadDeadline::new(accepted.unwrap().0, limit)
    }

    #[tokio::test]
    async fn a_blank_line_split_over_reads_ends_the_header_block() {
        let mut conn = connection(Duration::from_secs(10)).await;
        for piece in [&b"GET / HTTP/1.1\r\nHost: x\r"[..], b"\n\r", b"\n"] {
            assert!(!matches!(conn.phase, Phase::Busy));
            conn.saw(piece);
        }
        assert!(matches!(conn.phase, Phase::Busy));
    }

    #[tokio::test]
    async fn bytes_without_a_blank_line_keep_the_header_block_open() {
        let mut conn = connection(Duration::from_secs(10)).await;
        for byte in b"GET / HTTP/1.1\r\nHost: x\r\n".iter() {
            conn.saw(std::slice::from_ref(byte));
        }
        assert!(matches!(conn.phase, Phase::Head { .. }));
    }
}
