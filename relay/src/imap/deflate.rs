//! COMPRESS=DEFLATE (RFC 4978): a stream that is plain until the session turns compression
//! on, then raw DEFLATE (RFC 1951, no zlib header) in both directions.
//!
//! Written on flate2's `Compress`/`Decompress` (already used by the classifier): every
//! `flush` ends with a sync flush (`Z_SYNC_FLUSH`), so the client can decode each burst of
//! responses as soon as it arrives. The driver flushes after each burst.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Compressed bytes read from the peer at most at once.
const READ_CHUNK: usize = 8 * 1024;
/// The most compressed output kept before it must be written (then `poll_write` waits).
const WRITE_HIGH_WATER: usize = 64 * 1024;

/// A session's stream: plain, or compressed after `COMPRESS DEFLATE`.
pub enum Link<S> {
    /// As accepted (TCP or TLS).
    Plain(S),
    /// Raw DEFLATE over the stream.
    Deflate(Box<Deflate<S>>),
    /// Only while switching.
    Switching,
}

impl<S> Link<S> {
    /// Turns compression on; the next byte written or read is compressed.
    pub fn start_deflate(&mut self) {
        if let Self::Plain(s) = std::mem::replace(self, Self::Switching) {
            *self = Self::Deflate(Box::new(Deflate::new(s)));
        }
    }

    /// Whether compression is on.
    #[must_use]
    pub fn is_compressed(&self) -> bool {
        matches!(self, Self::Deflate(_))
    }

    /// The plain stream (for STARTTLS), unless compression is on.
    #[must_use]
    pub fn into_plain(self) -> Option<S> {
        match self {
            Self::Plain(s) => Some(s),
            _ => None,
        }
    }
}

fn switching() -> io::Error {
    io::Error::other("stream is being switched")
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Link<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Deflate(d) => Pin::new(d.as_mut()).poll_read(cx, buf),
            Self::Switching => Poll::Ready(Err(switching())),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Link<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Deflate(d) => Pin::new(d.as_mut()).poll_write(cx, buf),
            Self::Switching => Poll::Ready(Err(switching())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Deflate(d) => Pin::new(d.as_mut()).poll_flush(cx),
            Self::Switching => Poll::Ready(Err(switching())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Deflate(d) => Pin::new(d.as_mut()).poll_shutdown(cx),
            Self::Switching => Poll::Ready(Err(switching())),
        }
    }
}

/// Raw DEFLATE in both directions over `S`.
pub struct Deflate<S> {
    inner: S,
    compress: Compress,
    decompress: Decompress,
    /// Compressed input read and not yet inflated: `input[start..]`.
    input: Vec<u8>,
    start: usize,
    /// Compressed output not yet written: `output[sent..]`.
    output: Vec<u8>,
    sent: usize,
    /// Data went into the compressor since the last sync flush.
    unsynced: bool,
    /// The peer's compressed stream ended (final block).
    ended: bool,
}

impl<S> Deflate<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            // Level 6 is zlib's default; `false`: raw DEFLATE, no zlib header (RFC 4978 §3).
            compress: Compress::new(Compression::new(6), false),
            decompress: Decompress::new(false),
            input: Vec::with_capacity(READ_CHUNK),
            start: 0,
            output: Vec::new(),
            sent: 0,
            unsynced: false,
            ended: false,
        }
    }

    /// Runs `data` through the compressor with `flush`, appending to `output`.
    fn deflate(&mut self, mut data: &[u8], flush: FlushCompress) -> io::Result<()> {
        loop {
            self.output.reserve(data.len() / 2 + 1024);
            let before_in = self.compress.total_in();
            let before_out = self.compress.total_out();
            self.compress
                .compress_vec(data, &mut self.output, flush)
                .map_err(io::Error::other)?;
            let used = usize::try_from(self.compress.total_in() - before_in).unwrap_or(data.len());
            data = &data[used..];
            let produced = self.compress.total_out() - before_out;
            // Done when all input is taken and the compressor did not fill the space it had
            // (for a sync flush that means the flush marker is out too).
            if data.is_empty() && self.output.len() < self.output.capacity() {
                return Ok(());
            }
            if used == 0 && produced == 0 && data.is_empty() {
                return Ok(());
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> Deflate<S> {
    /// Writes out what is compressed and waiting.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.output.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.output[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.output.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Deflate<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.start < this.input.len() && !this.ended {
                let before_in = this.decompress.total_in();
                let before_out = this.decompress.total_out();
                let status = this
                    .decompress
                    .decompress(
                        &this.input[this.start..],
                        buf.initialize_unfilled(),
                        FlushDecompress::Sync,
                    )
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                let used = usize::try_from(this.decompress.total_in() - before_in).unwrap_or(0);
                let produced =
                    usize::try_from(this.decompress.total_out() - before_out).unwrap_or(0);
                this.start += used;
                if matches!(status, Status::StreamEnd) {
                    this.ended = true;
                }
                if produced > 0 {
                    buf.advance(produced);
                    return Poll::Ready(Ok(()));
                }
                if used > 0 {
                    continue;
                }
            }
            if this.ended {
                return Poll::Ready(Ok(()));
            }
            // All input inflated (or it needs more to go on): read more.
            this.input.drain(..this.start);
            this.start = 0;
            let have = this.input.len();
            this.input.resize(have + READ_CHUNK, 0);
            let mut read = ReadBuf::new(&mut this.input[have..]);
            let polled = Pin::new(&mut this.inner).poll_read(cx, &mut read);
            let n = match polled {
                Poll::Ready(Ok(())) => read.filled().len(),
                Poll::Ready(Err(e)) => {
                    this.input.truncate(have);
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => {
                    this.input.truncate(have);
                    return Poll::Pending;
                }
            };
            this.input.truncate(have + n);
            if n == 0 {
                // End of the stream: what is left cannot be inflated any further.
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deflate<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.output.len() - this.sent >= WRITE_HIGH_WATER {
            ready!(this.poll_drain(cx))?;
        }
        // At most WRITE_HIGH_WATER at a time, so a large FETCH never sits compressed in
        // memory as a whole.
        let take = &buf[..buf.len().min(WRITE_HIGH_WATER)];
        this.deflate(take, FlushCompress::None)?;
        this.unsynced |= !take.is_empty();
        Poll::Ready(Ok(take.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.unsynced {
            this.deflate(&[], FlushCompress::Sync)?;
            this.unsynced = false;
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// What the server writes and flushes, a raw-DEFLATE client can inflate at once; what the
    /// client deflates with sync flushes, the server reads back.
    #[tokio::test]
    async fn both_directions_are_raw_deflate_with_sync_flush() {
        let (server, mut client) = tokio::io::duplex(1 << 16);
        let mut link = Link::Plain(server);
        link.write_all(b"* OK plain\r\n").await.unwrap();
        link.flush().await.unwrap();
        let mut plain = [0u8; 12];
        client.read_exact(&mut plain).await.unwrap();
        assert_eq!(&plain, b"* OK plain\r\n");

        link.start_deflate();
        assert!(link.is_compressed());
        let big = "x".repeat(100_000);
        link.write_all(big.as_bytes()).await.unwrap();
        link.write_all(b"\r\na OK done\r\n").await.unwrap();
        link.flush().await.unwrap();
        // Inflate what arrived, without waiting for any end of stream.
        let mut inflate = Decompress::new(false);
        let mut got = Vec::with_capacity(200_000);
        let mut chunk = vec![0u8; 4096];
        while !got.ends_with(b"a OK done\r\n") {
            let n = client.read(&mut chunk).await.unwrap();
            assert!(n > 0, "stream ended early");
            let mut data = &chunk[..n];
            while !data.is_empty() {
                got.reserve(65_536);
                let before = inflate.total_in();
                inflate
                    .decompress_vec(data, &mut got, FlushDecompress::Sync)
                    .unwrap();
                data = &data[usize::try_from(inflate.total_in() - before).unwrap()..];
            }
        }
        assert_eq!(got.len(), 100_000 + 13);

        let mut deflate = Compress::new(Compression::fast(), false);
        let mut wire = Vec::with_capacity(1024);
        deflate
            .compress_vec(b"b NOOP\r\n", &mut wire, FlushCompress::Sync)
            .unwrap();
        client.write_all(&wire).await.unwrap();
        let mut line = [0u8; 8];
        link.read_exact(&mut line).await.unwrap();
        assert_eq!(&line, b"b NOOP\r\n");
        assert!(link.into_plain().is_none());
    }
}
