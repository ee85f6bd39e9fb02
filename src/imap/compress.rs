//! COMPRESS=DEFLATE (RFC 4978): raw DEFLATE (RFC 1951) both ways once a
//! session's `COMPRESS DEFLATE` was answered OK. Sans-IO: the listener keeps
//! one [`Deflate`] per connection between TLS and the session's line reader,
//! hands it the bytes it read ([`Deflate::push`]), takes the inflated bytes
//! chunk by chunk ([`Deflate::inflate`]) and deflates each response burst
//! ([`Deflate::compress`], ending in a sync flush so the client can decode
//! everything it was sent).
//!
//! Memory stays bounded whatever the client sends: the listener reads from
//! the socket only when the pending input inflates to nothing more (at most
//! [`MAX_PENDING`] compressed octets wait), and inflating writes into the
//! caller's fixed buffer, so a decompression bomb only yields more chunks,
//! each going through the same line and literal limits as uncompressed input.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// Compressed input held before it is inflated: the leftover of the read
/// that carried the COMPRESS command plus one read, with room to spare.
pub const MAX_PENDING: usize = 64 * 1024;

/// Why the compressed stream cannot go on: the session ends.
#[derive(Debug, thiserror::Error)]
pub enum CompressError {
    /// The client's data is not a valid DEFLATE stream.
    #[error("invalid DEFLATE data from the client: {0}")]
    Inflate(#[from] flate2::DecompressError),
    /// The compressor failed (never expected).
    #[error("DEFLATE compression failed: {0}")]
    Deflate(#[from] flate2::CompressError),
    /// The client ended its DEFLATE stream: RFC 4978 has no way back to
    /// uncompressed data, so the connection is over.
    #[error("the client ended its DEFLATE stream")]
    Ended,
    /// More compressed input is waiting than [`MAX_PENDING`] (input that
    /// inflates to nothing while growing).
    #[error("too much compressed input pending")]
    TooMuchPending,
}

impl From<CompressError> for std::io::Error {
    fn from(e: CompressError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }
}

/// Both directions of one compressed connection.
pub struct Deflate {
    deflate: Compress,
    inflate: Decompress,
    /// Compressed input not inflated yet, from `pos`.
    pending: Vec<u8>,
    pos: usize,
    /// The client's stream ended (after the data before its end was given out).
    ended: bool,
}

impl std::fmt::Debug for Deflate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflate")
            .field("pending", &(self.pending.len() - self.pos))
            .finish_non_exhaustive()
    }
}

impl Default for Deflate {
    fn default() -> Self {
        Self::new()
    }
}

impl Deflate {
    /// Raw DEFLATE (no zlib header, RFC 4978 §3), level 6 as Dovecot and zlib default to.
    pub fn new() -> Self {
        Deflate {
            deflate: Compress::new(Compression::new(6), false),
            inflate: Decompress::new(false),
            pending: Vec::new(),
            pos: 0,
            ended: false,
        }
    }

    /// Adds compressed octets from the client.
    pub fn push(&mut self, compressed: &[u8]) -> Result<(), CompressError> {
        if self.pos >= self.pending.len() {
            self.pending.clear();
            self.pos = 0;
        }
        if self.pending.len() - self.pos + compressed.len() > MAX_PENDING {
            return Err(CompressError::TooMuchPending);
        }
        if self.pos > 0 {
            self.pending.drain(..self.pos);
            self.pos = 0;
        }
        self.pending.extend_from_slice(compressed);
        Ok(())
    }

    /// Inflates pending input into `out`; `Ok(0)` when more input is needed.
    pub fn inflate(&mut self, out: &mut [u8]) -> Result<usize, CompressError> {
        if self.ended {
            return Err(CompressError::Ended);
        }
        let mut produced = 0;
        while produced < out.len() && self.pos < self.pending.len() {
            let (in0, out0) = (self.inflate.total_in(), self.inflate.total_out());
            let status = self.inflate.decompress(
                &self.pending[self.pos..],
                &mut out[produced..],
                FlushDecompress::None,
            )?;
            let used = usize::try_from(self.inflate.total_in() - in0).unwrap_or(usize::MAX);
            let made = usize::try_from(self.inflate.total_out() - out0).unwrap_or(usize::MAX);
            self.pos = self.pos.saturating_add(used).min(self.pending.len());
            produced += made;
            if status == Status::StreamEnd {
                self.ended = true;
                if produced > 0 {
                    break;
                }
                return Err(CompressError::Ended);
            }
            if used == 0 && made == 0 {
                // The decoder holds a partial symbol: it needs more input.
                break;
            }
        }
        Ok(produced)
    }

    /// Deflates one burst of responses, ending in a sync flush (RFC 4978 §4:
    /// the client must be able to decode everything it was sent).
    pub fn compress(&mut self, plain: &[u8]) -> Result<Vec<u8>, CompressError> {
        let mut out = Vec::with_capacity(plain.len() / 2 + 64);
        let mut used = 0usize;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(1024));
            }
            let in0 = self.deflate.total_in();
            self.deflate
                .compress_vec(&plain[used..], &mut out, FlushCompress::Sync)?;
            used += usize::try_from(self.deflate.total_in() - in0).unwrap_or(usize::MAX);
            // The flush is complete once all input is in and output space is left over.
            if used >= plain.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::DeflateEncoder;

    use super::*;

    /// What a client sends: raw DEFLATE with a sync flush after each write.
    fn client_deflate(parts: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut enc = DeflateEncoder::new(Vec::new(), Compression::default());
        let mut out = Vec::new();
        for p in parts {
            enc.write_all(p).unwrap();
            enc.flush().unwrap();
            out.push(std::mem::take(enc.get_mut()));
        }
        out
    }

    fn inflate_all(d: &mut Deflate, chunk: usize) -> Vec<u8> {
        let mut all = Vec::new();
        let mut buf = vec![0u8; chunk];
        loop {
            let n = d.inflate(&mut buf).unwrap();
            if n == 0 {
                return all;
            }
            all.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn each_burst_decodes_on_its_own() {
        let mut d = Deflate::new();
        let mut sent = Vec::new();
        for burst in [&b"* OK first\r\n"[..], b"a1 OK done\r\n", b""] {
            sent.extend_from_slice(&d.compress(burst).unwrap());
            // A client decoding everything so far sees every burst whole.
            let mut dec = flate2::Decompress::new(false);
            let mut out = vec![0u8; 256];
            dec.decompress(&sent, &mut out, FlushDecompress::Sync)
                .unwrap();
            let text = &out[..dec.total_out() as usize];
            assert!(text.ends_with(burst), "{text:?}");
        }
        // A large burst (bigger than the first capacity guess) round-trips.
        let big: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
        sent.extend_from_slice(&d.compress(&big).unwrap());
        let mut dec = flate2::Decompress::new(false);
        let mut text = vec![0u8; 2 * big.len()];
        dec.decompress(&sent, &mut text, FlushDecompress::Sync)
            .unwrap();
        assert!(text[..dec.total_out() as usize].ends_with(&big));
    }

    #[test]
    fn inflates_client_data_split_anywhere() {
        let parts = client_deflate(&[b"a1 NOOP\r\n", b"a2 SELECT INBOX\r\n"]);
        let joined: Vec<u8> = parts.concat();
        for split in 0..joined.len() {
            let mut d = Deflate::new();
            let mut got = Vec::new();
            d.push(&joined[..split]).unwrap();
            got.extend(inflate_all(&mut d, 7));
            d.push(&joined[split..]).unwrap();
            got.extend(inflate_all(&mut d, 7));
            assert_eq!(got, b"a1 NOOP\r\na2 SELECT INBOX\r\n", "split at {split}");
        }
    }

    #[test]
    fn a_bomb_comes_out_in_bounded_chunks() {
        // 64 MiB of zeros compress to about 64 KiB; each call gives at most the buffer.
        let zeros = vec![0u8; 1024 * 1024];
        let mut enc = DeflateEncoder::new(Vec::new(), Compression::best());
        for _ in 0..64 {
            enc.write_all(&zeros).unwrap();
        }
        enc.flush().unwrap();
        let bomb = std::mem::take(enc.get_mut());
        assert!(bomb.len() < MAX_PENDING, "{}", bomb.len());
        let mut d = Deflate::new();
        d.push(&bomb).unwrap();
        let mut buf = vec![0u8; 8192];
        let mut total = 0usize;
        loop {
            let n = d.inflate(&mut buf).unwrap();
            assert!(n <= buf.len());
            if n == 0 {
                break;
            }
            total += n;
        }
        assert_eq!(total, 64 * 1024 * 1024);
        // Pending input itself is bounded.
        let mut d = Deflate::new();
        assert!(matches!(
            d.push(&vec![0u8; MAX_PENDING + 1]),
            Err(CompressError::TooMuchPending)
        ));
    }

    #[test]
    fn garbage_and_the_end_of_the_stream_are_errors() {
        let mut d = Deflate::new();
        d.push(&[0xff; 16]).unwrap();
        assert!(matches!(
            d.inflate(&mut [0u8; 64]),
            Err(CompressError::Inflate(_))
        ));
        let mut enc = DeflateEncoder::new(Vec::new(), Compression::default());
        enc.write_all(b"x").unwrap();
        let finished = enc.finish().unwrap();
        let mut d = Deflate::new();
        d.push(&finished).unwrap();
        assert_eq!(d.inflate(&mut [0u8; 64]).unwrap(), 1);
        assert!(matches!(
            d.inflate(&mut [0u8; 64]),
            Err(CompressError::Ended)
        ));
    }
}
