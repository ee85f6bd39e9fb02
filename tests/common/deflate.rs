//! The client side of IMAP COMPRESS=DEFLATE (RFC 4978) for the tests: raw
//! DEFLATE over any stream, each write sync-flushed, counting the compressed
//! octets read so a test can tell the server really compressed.
#![allow(dead_code)]

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// `inner` with both directions compressed.
pub struct Deflated<S> {
    inner: S,
    deflate: Compress,
    inflate: Decompress,
    /// Compressed input not inflated yet.
    input: Vec<u8>,
    /// Compressed output not written yet.
    output: Vec<u8>,
    /// Compressed octets read so far.
    pub compressed_in: u64,
    /// Octets inflated so far.
    pub plain_in: u64,
}

impl<S> Deflated<S> {
    pub fn new(inner: S) -> Self {
        Deflated {
            inner,
            deflate: Compress::new(Compression::default(), false),
            inflate: Decompress::new(false),
            input: Vec::new(),
            output: Vec::new(),
            compressed_in: 0,
            plain_in: 0,
        }
    }

    /// Compresses `plain` as one sync-flushed block (what a client sends),
    /// without writing it: for tests that write the octets themselves.
    pub fn compress(&mut self, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plain.len() / 2 + 64);
        let mut used = 0;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(1024));
            }
            let before = self.deflate.total_in();
            self.deflate
                .compress_vec(&plain[used..], &mut out, FlushCompress::Sync)
                .expect("deflate");
            used += (self.deflate.total_in() - before) as usize;
            if used >= plain.len() && out.len() < out.capacity() {
                return out;
            }
        }
    }

    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Deflated<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.input.is_empty() {
                let (in0, out0) = (this.inflate.total_in(), this.inflate.total_out());
                let dst = buf.initialize_unfilled();
                this.inflate
                    .decompress(&this.input, dst, FlushDecompress::None)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                let used = (this.inflate.total_in() - in0) as usize;
                let made = (this.inflate.total_out() - out0) as usize;
                this.input.drain(..used);
                buf.advance(made);
                this.plain_in += made as u64;
                if made > 0 {
                    return Poll::Ready(Ok(()));
                }
            }
            let mut raw = [0u8; 8192];
            let mut rb = ReadBuf::new(&mut raw);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            if rb.filled().is_empty() {
                return Poll::Ready(Ok(()));
            }
            this.compressed_in += rb.filled().len() as u64;
            this.input.extend_from_slice(rb.filled());
        }
    }
}

impl<S: AsyncWrite + Unpin> Deflated<S> {
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.output.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.output))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.output.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deflated<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        let z = this.compress(buf);
        this.output = z;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
