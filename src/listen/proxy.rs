//! The PROXY protocol (HAProxy's, v1 text or v2 binary) on listeners behind
//! a load balancer (`listen.proxy_protocol`): the balancer's connection starts
//! with a header naming the client, and the session (throttling, connection
//! limits, logs) uses that address. Only connections from `listen.proxy_from`
//! are read this way, and from those a header is required; anyone else is
//! served as the address they connect from, so no client can claim another
//! address. The header is read exactly (nothing of the session behind it),
//! bounded, within a deadline, and parsed by the `ppp` crate.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// How long a balancer may take to send the header.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest v1 header (spec: 107 bytes with CRLF).
const V1_MAX: usize = 107;
/// The v2 signature (12 bytes) that starts a binary header.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Bound on the v2 addresses and TLVs (the header's 16-bit length).
const V2_MAX_PAYLOAD: usize = 4096;

/// Why a balancer's connection was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The connection failed or ended inside the header.
    #[error("reading the PROXY header: {0}")]
    Io(#[from] std::io::Error),
    /// No header came in time.
    #[error("no PROXY header within {HEADER_TIMEOUT:?}")]
    Timeout,
    /// The bytes are no PROXY header.
    #[error("not a PROXY protocol header")]
    Malformed,
    /// A v2 header longer than this server reads.
    #[error("PROXY v2 header longer than {V2_MAX_PAYLOAD} bytes")]
    TooLong,
}

/// The balancers a listener reads headers from.
#[derive(Debug, Clone)]
pub struct Proxied {
    from: Vec<IpAddr>,
}

impl Proxied {
    /// Headers from the balancers at `from`.
    pub fn new(from: Vec<IpAddr>) -> Proxied {
        Proxied { from }
    }

    /// The client `peer` stands for: a balancer's connection gives its
    /// header's source (itself for a LOCAL or UNKNOWN header, e.g. a health
    /// check); anyone else is themself.
    pub async fn client<S: AsyncRead + Unpin>(
        &self,
        stream: &mut S,
        peer: SocketAddr,
    ) -> Result<SocketAddr, ProxyError> {
        if !self.from.contains(&peer.ip().to_canonical()) && !self.from.contains(&peer.ip()) {
            return Ok(peer);
        }
        let header = tokio::time::timeout(HEADER_TIMEOUT, read_header(stream))
            .await
            .map_err(|_| ProxyError::Timeout)??;
        Ok(source(&header)?.unwrap_or(peer))
    }
}

/// Reads exactly one header's bytes (v1 up to its LF, v2 its fixed part and
/// its announced length).
async fn read_header<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Vec<u8>, ProxyError> {
    let mut buf = vec![0u8; 6];
    stream.read_exact(&mut buf).await?;
    if buf == V2_SIGNATURE[..6] {
        buf.resize(16, 0);
        stream.read_exact(&mut buf[6..]).await?;
        if buf[..12] != V2_SIGNATURE {
            return Err(ProxyError::Malformed);
        }
        let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
        if len > V2_MAX_PAYLOAD {
            return Err(ProxyError::TooLong);
        }
        buf.resize(16 + len, 0);
        stream.read_exact(&mut buf[16..]).await?;
        return Ok(buf);
    }
    if buf != b"PROXY " {
        return Err(ProxyError::Malformed);
    }
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n") {
        if buf.len() >= V1_MAX {
            return Err(ProxyError::Malformed);
        }
        stream.read_exact(&mut byte).await?;
        buf.push(byte[0]);
    }
    Ok(buf)
}

/// The client's address in a whole header; `None` when it names none
/// (v1 UNKNOWN, v2 LOCAL or a non-IP family).
pub fn source(header: &[u8]) -> Result<Option<SocketAddr>, ProxyError> {
    use ppp::{HeaderResult, v1, v2};
    match HeaderResult::parse(header) {
        HeaderResult::V1(Ok(h)) => Ok(match h.addresses {
            v1::Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
            v1::Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
            v1::Addresses::Unknown => None,
        }),
        HeaderResult::V2(Ok(h)) if h.command == v2::Command::Local => Ok(None),
        HeaderResult::V2(Ok(h)) => Ok(match h.addresses {
            v2::Addresses::IPv4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
            v2::Addresses::IPv6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
            v2::Addresses::Unspecified | v2::Addresses::Unix(_) => None,
        }),
        _ => Err(ProxyError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(source: &str, command: u8) -> Vec<u8> {
        let src: SocketAddr = source.parse().unwrap();
        let dst: SocketAddr = if src.is_ipv4() {
            "127.0.0.1:465".parse().unwrap()
        } else {
            "[::1]:465".parse().unwrap()
        };
        ppp::v2::Builder::with_addresses(0x20 | command, ppp::v2::Protocol::Stream, (src, dst))
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn a_balancer_names_the_client_and_nothing_more_is_read() {
        let p = Proxied::new(vec!["10.0.0.2".parse().unwrap()]);
        let lb: SocketAddr = "10.0.0.2:40000".parse().unwrap();
        let mut input: &[u8] = b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 465\r\nEHLO x\r\n";
        let client = p.client(&mut input, lb).await.unwrap();
        assert_eq!(client, "203.0.113.7:5555".parse().unwrap());
        assert_eq!(input, b"EHLO x\r\n", "the session's bytes are left");
        let mut bytes = v2("[2001:db8::9]:6000", 1);
        bytes.extend_from_slice(b"\x16\x03\x01");
        let mut input: &[u8] = &bytes;
        let client = p.client(&mut input, lb).await.unwrap();
        assert_eq!(client, "[2001:db8::9]:6000".parse().unwrap());
        assert_eq!(input, b"\x16\x03\x01");
    }

    #[tokio::test]
    async fn local_and_unknown_headers_keep_the_balancer() {
        let p = Proxied::new(vec!["10.0.0.2".parse().unwrap()]);
        let lb: SocketAddr = "10.0.0.2:40000".parse().unwrap();
        let mut input: &[u8] = b"PROXY UNKNOWN\r\n";
        assert_eq!(p.client(&mut input, lb).await.unwrap(), lb);
        let bytes = v2("192.0.2.1:1", 0);
        let mut input: &[u8] = &bytes;
        assert_eq!(p.client(&mut input, lb).await.unwrap(), lb);
    }

    #[tokio::test]
    async fn others_are_not_read_and_balancers_must_send_a_header() {
        let p = Proxied::new(vec!["10.0.0.2".parse().unwrap()]);
        let other: SocketAddr = "198.51.100.4:1234".parse().unwrap();
        let mut input: &[u8] = b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 465\r\n";
        assert_eq!(p.client(&mut input, other).await.unwrap(), other);
        assert_eq!(input.len(), 42, "nothing read from a non-balancer");
        let lb: SocketAddr = "10.0.0.2:40000".parse().unwrap();
        for bad in [
            &b"EHLO client.example\r\n"[..],
            b"PROXY TCP4 not-an-ip 10.0.0.1 5555 465\r\n",
            b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 465 and much more text that never ends before the limit of the spec\r\n",
            b"PROXY TCP4 203",
        ] {
            let mut input: &[u8] = bad;
            assert!(p.client(&mut input, lb).await.is_err(), "{bad:?}");
        }
        let mut long = V2_SIGNATURE.to_vec();
        long.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        let mut input: &[u8] = &long;
        assert!(matches!(
            p.client(&mut input, lb).await,
            Err(ProxyError::TooLong)
        ));
    }
}
