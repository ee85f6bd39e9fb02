//! Reading certificate revocation list files (PEM or DER), below TLS so the
//! configuration can check `tls.crl_files`; `tls::revocation` uses the lists.

use std::fs;
use std::path::{Path, PathBuf};

use rustls_pki_types::CertificateRevocationListDer;
use rustls_pki_types::pem::PemObject;
use time::OffsetDateTime;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

/// Why a revocation list could not be read, used or made.
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    /// A file could not be read or written.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are not a revocation list (or not one webpki can use).
    #[error("{origin}: not a usable certificate revocation list: {reason}")]
    BadCrl {
        /// The file (or a description).
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// The bytes are not a certificate.
    #[error("{origin}: not a certificate: {reason}")]
    BadCertificate {
        /// The file (or a description).
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// The certificate was not issued by the CA whose list is being changed.
    #[error("{certificate} was issued by `{issuer}`, not by the CA `{ca}`")]
    WrongIssuer {
        /// The certificate's subject.
        certificate: String,
        /// Its issuer.
        issuer: String,
        /// The CA's subject.
        ca: String,
    },
    /// rcgen could not sign the list.
    #[error("cannot sign the revocation list: {0}")]
    Sign(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The trust anchors could not be read.
    #[error("trust anchors: {0}")]
    Anchors(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub(crate) fn io_error(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> RevocationError {
    let path = path.to_path_buf();
    move |source| RevocationError::Io {
        action,
        path,
        source,
    }
}

/// Reads the revocation lists of one file, PEM (`-----BEGIN X509 CRL-----`,
/// several blocks allowed) or DER; every list is parsed before it is returned.
pub fn load_crl_file(
    path: &Path,
) -> Result<Vec<CertificateRevocationListDer<'static>>, RevocationError> {
    let bytes = fs::read(path).map_err(io_error("cannot read", path))?;
    parse_crls(&bytes, &path.display().to_string())
}

/// The revocation lists in `bytes` (PEM or DER), from `origin` (named in errors).
pub fn parse_crls(
    bytes: &[u8],
    origin: &str,
) -> Result<Vec<CertificateRevocationListDer<'static>>, RevocationError> {
    let bad = |reason: String| RevocationError::BadCrl {
        origin: origin.to_string(),
        reason,
    };
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let crls: Vec<CertificateRevocationListDer<'static>> =
        if bytes[start..].starts_with(b"-----BEGIN") {
            CertificateRevocationListDer::pem_slice_iter(bytes)
                .collect::<Result<_, _>>()
                .map_err(|e| bad(format!("PEM: {e}")))?
        } else {
            vec![CertificateRevocationListDer::from(bytes.to_vec())]
        };
    if crls.is_empty() {
        return Err(bad("no `X509 CRL` PEM block".into()));
    }
    for der in &crls {
        let (rest, crl) = CertificateRevocationList::from_der(der.as_ref())
            .map_err(|e| bad(format!("DER: {e}")))?;
        if !rest.is_empty() {
            return Err(bad("trailing bytes after the list".into()));
        }
        if let Some(next) = crl.next_update()
            && next.timestamp() < OffsetDateTime::now_utc().unix_timestamp()
        {
            tracing::warn!(
                file = origin,
                issuer = %crl.issuer(),
                next_update = %next,
                "certificate revocation list is past its nextUpdate; still used"
            );
        }
    }
    Ok(crls)
}
