//! The archive written entry by entry into any async writer: the zip
//! crate's streaming writer (no seeking: data descriptors) writes into a
//! small shared buffer that is handed to the output after each piece, so
//! memory holds one piece (a message, a document) and the compressor's
//! window, whatever the size of the space. Entries have a fixed time and
//! mode, so the same state gives the same bytes; the output can skip a
//! prefix and stop after a length (HTTP ranges) or only count.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncWrite, AsyncWriteExt};
use zip::write::{SimpleFileOptions, StreamWriter};
use zip::{CompressionMethod, DateTime, ZipWriter};

/// Where the bytes go: `skip` first octets dropped, at most `limit` kept,
/// `written` counts every octet produced (for the length of a range).
pub struct Output<W> {
    inner: Option<W>,
    skip: u64,
    limit: Option<u64>,
    produced: u64,
}

impl<W: AsyncWrite + Unpin> Output<W> {
    /// Everything into `w`.
    pub fn new(w: W) -> Self {
        Output {
            inner: Some(w),
            skip: 0,
            limit: None,
            produced: 0,
        }
    }

    /// Octets `first ..= last` (or to the end) into `w`.
    pub fn range(w: W, first: u64, last: Option<u64>) -> Self {
        Output {
            inner: Some(w),
            skip: first,
            limit: last.map(|l| l.saturating_sub(first).saturating_add(1)),
            produced: 0,
        }
    }

    async fn put(&mut self, mut bytes: &[u8]) -> std::io::Result<()> {
        self.produced += bytes.len() as u64;
        let dropped = usize::try_from(self.skip)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        self.skip -= dropped as u64;
        bytes = &bytes[dropped..];
        if let Some(limit) = &mut self.limit {
            let kept = usize::try_from(*limit)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            *limit -= kept as u64;
            bytes = &bytes[..kept];
        }
        match &mut self.inner {
            Some(w) if !bytes.is_empty() => w.write_all(bytes).await,
            _ => Ok(()),
        }
    }

    /// The writer, flushed.
    pub async fn finish(mut self) -> std::io::Result<Option<W>> {
        if let Some(w) = &mut self.inner {
            w.flush().await?;
        }
        Ok(self.inner)
    }

    /// Octets produced so far (skipped ones included).
    pub fn produced(&self) -> u64 {
        self.produced
    }
}

impl Output<tokio::io::Sink> {
    /// Counts only (the length of the archive).
    pub fn counter() -> Self {
        Output {
            inner: None,
            skip: 0,
            limit: None,
            produced: 0,
        }
    }
}

/// The buffer the zip writer fills between two hand-overs.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Shared {
    fn take(&self) -> Vec<u8> {
        self.0
            .lock()
            .map(|mut b| std::mem::take(&mut *b))
            .unwrap_or_default()
    }
}

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("export buffer poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A zip archive being streamed into an [`Output`].
pub struct ZipStream<W> {
    zip: ZipWriter<StreamWriter<Shared>>,
    buffer: Shared,
    out: Output<W>,
}

/// Why writing the archive failed.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The zip writer refused.
    #[error("zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    /// The output failed (the client went away, the disk is full).
    #[error("output: {0}")]
    Io(#[from] std::io::Error),
}

impl<W: AsyncWrite + Unpin> ZipStream<W> {
    /// A new archive into `out`.
    pub fn new(out: Output<W>) -> Self {
        let buffer = Shared::default();
        ZipStream {
            zip: ZipWriter::new_stream(buffer.clone()),
            buffer,
            out,
        }
    }

    /// Starts entry `name`: deflated, fixed time (1980-01-01) and mode;
    /// `large` entries (mbox) may pass 4 GiB (zip64).
    pub async fn start(&mut self, name: &str, large: bool) -> Result<(), StreamError> {
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .last_modified_time(DateTime::default())
            .unix_permissions(0o644)
            .large_file(large);
        self.zip.start_file(name, options)?;
        self.drain().await
    }

    /// Appends to the current entry.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        self.zip.write_all(bytes)?;
        self.drain().await
    }

    /// A whole small entry.
    pub async fn entry(&mut self, name: &str, bytes: &[u8]) -> Result<(), StreamError> {
        self.start(name, false).await?;
        self.write(bytes).await
    }

    async fn drain(&mut self) -> Result<(), StreamError> {
        let bytes = self.buffer.take();
        if !bytes.is_empty() {
            self.out.put(&bytes).await?;
        }
        Ok(())
    }

    /// Writes the central directory; returns the output.
    pub async fn finish(mut self) -> Result<Output<W>, StreamError> {
        self.zip.finish()?;
        let bytes = self.buffer.take();
        self.out.put(&bytes).await?;
        Ok(self.out)
    }
}
