//! A connection whose writes give up once the client has taken nothing for a while.
//!
//! hyper bounds how long a client may take to send headers, and the body extractor how long to
//! send a body, but nothing bounds how long an answer may wait for the client to read it: a
//! client that asks for a large answer (`/state` with many shoppers inside) and never reads would
//! hold its connection, and its place under `max_connections`, forever once the socket's send
//! buffer is full. [`WriteDeadline`] fails such a write, which closes the connection.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// `inner`, with writes and flushes that fail with [`io::ErrorKind::TimedOut`] when they have
/// made no progress for `limit`.
pub struct WriteDeadline<S> {
    inner: S,
    limit: Duration,
    /// Running while the peer takes nothing: set when a write first waits, cleared by progress.
    stalled_since: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteDeadline<S> {
    pub fn new(inner: S, limit: Duration) -> WriteDeadline<S> {
        WriteDeadline {
            inner,
            limit,
            stalled_since: None,
        }
    }

    /// After a write returned `Pending`: an error once the stall has lasted `limit`.
    fn waiting<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let limit = self.limit;
        let timer = self
            .stalled_since
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing of the answer for {limit:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progressed<T>(&mut self, result: io::Result<T>) -> Poll<io::Result<T>> {
        self.stalled_since = None;
        Poll::Ready(result)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(result) => this.progressed(result),
            Poll::Pending => this.waiting(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => this.progressed(result),
            Poll::Pending => this.waiting(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(result) => this.progressed(result),
            Poll::Pending => this.waiting(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_write_the_peer_never_takes_fails_and_one_it_takes_succeeds() {
        // The other end stays open and never reads.
        let (ours, _theirs) = tokio::io::duplex(1024);
        let mut ours = WriteDeadline::new(ours, Duration::from_millis(100));
        let answer = vec![b'x'; 64 * 1024];
        let error = ours.write_all(&answer).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);

        // A peer that reads, however slowly in pieces, gets everything.
        let (ours, mut slow) = tokio::io::duplex(1024);
        let mut ours = WriteDeadline::new(ours, Duration::from_millis(500));
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut piece = [0u8; 512];
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
                match slow.read(&mut piece).await.unwrap() {
                    0 => return got,
                    n => got.extend_from_slice(&piece[..n]),
                }
            }
        });
        ours.write_all(&answer).await.unwrap();
        ours.shutdown().await.unwrap();
        drop(ours);
        assert_eq!(reader.await.unwrap(), answer);
    }
}
