//! rustls configurations shared by every listener and client: TLS 1.2 and 1.3
//! only, AEAD suites only (ring's suites are all AEAD), client certificates
//! verified against the configured trust anchors and the revocation lists
//! (`tls.crl_files`, see [`revocation`]).

pub mod revocation;

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsSettings;
use crate::pki::dn::DistinguishedName;
use revocation::{CrlClientVerifier, CrlServerVerifier, Revocation};

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file is missing or holds nothing usable.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the material.
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
    /// A certificate verifier could not be built.
    #[error("certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// Whether a server asks for client certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Never asked.
    None,
    /// Asked and verified when given (SASL EXTERNAL on submission and IMAP).
    Optional,
    /// The handshake fails without a valid one (MX: mutual TLS).
    Required,
}

/// What the server knows about a TLS peer after the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: String,
    /// The negotiated suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// Subject DN of the verified client certificate, if one was presented,
    /// rendered for people and logs ([`crate::pki::subject_dn_of_der`]'s form:
    /// RFC 4514 escapes where needed, so it parses back to [`TlsInfo::peer_dn`]).
    pub peer_subject: Option<String>,
    /// The same subject as parsed RDNs: what comparisons use (the DN rule,
    /// [`crate::pki::dn`]).
    pub peer_dn: Option<DistinguishedName>,
}

/// The crypto provider with only the protocol versions and suites we allow.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Reads every certificate of a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.display().to_string(),
            message: "no certificate in file".into(),
        });
    }
    Ok(certs)
}

/// Reads the private key of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error(path, e))
}

fn pem_error(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Pem {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// The trust anchors (IGC-Santé in production) as a root store.
pub fn root_store(anchors: &[impl AsRef<Path>]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for path in anchors {
        for cert in load_certs(path.as_ref())? {
            roots.add(cert).map_err(|e| TlsError::Pem {
                path: path.as_ref().display().to_string(),
                message: e.to_string(),
            })?;
        }
    }
    Ok(roots)
}

/// A server configuration for our listeners; client certificates are checked
/// against `revocation`'s lists in force at each handshake.
pub fn server_config(
    settings: &TlsSettings,
    client_auth: ClientAuth,
    revocation: &Arc<Revocation>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs = load_certs(&settings.certificate)?;
    let key = load_key(&settings.private_key)?;
    let builder =
        rustls::ServerConfig::builder_with_provider(provider()).with_protocol_versions(VERSIONS)?;
    let builder = match client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Optional | ClientAuth::Required => {
            let roots = Arc::new(root_store(&settings.trust_anchors)?);
            let verifier = CrlClientVerifier::new(
                roots,
                client_auth == ClientAuth::Optional,
                revocation.clone(),
            )?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key)?;
    config.alpn_protocols = Vec::new();
    Ok(Arc::new(config))
}

/// A client configuration for public HTTPS servers (the Web PKI roots of
/// webpki-roots), no client certificate: the whitelist refresh.
pub fn web_client_config() -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A client configuration that verifies servers against `anchors` and, when
/// given, presents `client` (certificate chain file, key file) — our operator
/// certificate. Revocation is not checked (tools, tests); the relay uses
/// [`client_config_with_crls`].
pub fn client_config(
    anchors: &[impl AsRef<Path>],
    client: Option<(&Path, &Path)>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    client_config_with_crls(anchors, client, &Revocation::none())
}

/// Like [`client_config`], and server certificates are checked against
/// `revocation`'s lists in force at each handshake (the relay).
pub fn client_config_with_crls(
    anchors: &[impl AsRef<Path>],
    client: Option<(&Path, &Path)>,
    revocation: &Arc<Revocation>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let roots = Arc::new(root_store(anchors)?);
    let verifier = CrlServerVerifier::new(roots, revocation.clone())?;
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match client {
        Some((cert, key)) => builder.with_client_auth_cert(load_certs(cert)?, load_key(key)?)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Reads version, suite and verified peer subject from a finished server handshake.
pub fn session_info(conn: &rustls::ServerConnection) -> TlsInfo {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(other) => format!("{other:?}"),
        None => "unknown".to_string(),
    };
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()))
        .unwrap_or_else(|| "unknown".into());
    let peer_dn = conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| DistinguishedName::from_der_certificate(leaf.as_ref()).ok());
    TlsInfo {
        version,
        cipher,
        peer_subject: peer_dn.as_ref().map(ToString::to_string),
        peer_dn,
    }
}
