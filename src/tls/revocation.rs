//! Certificate revocation lists (CRLs).
//!
//! - [`load_crl_file`] (in `pki::crl`, so the configuration can check the
//!   files) reads one `tls.crl_files` entry: PEM (one or more `X509 CRL`
//!   blocks) or DER, each list parsed before it is used.
//! - [`Revocation`] is the set of lists in force, shared by every verifier of
//!   the process and replaced whole by [`Revocation::reload`] (SIGHUP and every
//!   `tls.crl_reload_secs`); a list that fails to load keeps the previous set.
//! - [`CrlClientVerifier`] and [`CrlServerVerifier`] are the rustls verifiers
//!   the configs of `tls.rs` use: each delegates to a webpki verifier built with
//!   the current lists, rebuilt when the set changes, so listeners and the relay
//!   keep their `Arc<ServerConfig>`/`Arc<ClientConfig>` across reloads. A revoked
//!   certificate fails the handshake; its subject and serial are logged.
//! - [`empty_crl`] and [`revoke`] make the development CA's list (`mes init`,
//!   `mes pki revoke`).
//!
//! With at least one list configured, every certificate of a chain (but the
//! trust anchor) must be covered by a list of its issuer: a certificate whose
//! issuer has no list is refused (fail closed). Lists past their `nextUpdate`
//! are still used, with a warning when loaded.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rcgen::{
    CertificateRevocationListParams, KeyIdMethod, RevocationReason, RevokedCertParams, SerialNumber,
};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, ServerName, UnixTime};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::pki::Ca;

/// How long a list made by [`empty_crl`] or [`revoke`] is announced valid (`nextUpdate`).
const DEV_CRL_VALIDITY: time::Duration = time::Duration::days(365);

use crate::pki::crl::io_error;
pub use crate::pki::crl::{RevocationError, load_crl_file, parse_crls};

/// The lists in force at one moment.
#[derive(Debug)]
struct CrlSet {
    /// Increases with every change, so verifiers know when to rebuild.
    generation: u64,
    crls: Vec<CertificateRevocationListDer<'static>>,
}

/// The revocation lists of `tls.crl_files`, shared by every verifier of the process.
#[derive(Debug)]
pub struct Revocation {
    files: Vec<PathBuf>,
    roots: Option<Arc<RootCertStore>>,
    current: RwLock<Arc<CrlSet>>,
}

impl Revocation {
    /// No lists: certificates are not checked for revocation (tools, load tests).
    pub fn none() -> Arc<Revocation> {
        Arc::new(Revocation {
            files: Vec::new(),
            roots: None,
            current: RwLock::new(Arc::new(CrlSet {
                generation: 0,
                crls: Vec::new(),
            })),
        })
    }

    /// Loads `files`; every list must parse and be accepted by webpki (checked
    /// with the trust anchors `anchors`), or nothing is loaded.
    pub fn load(
        files: &[PathBuf],
        anchors: &[impl AsRef<Path>],
    ) -> Result<Arc<Revocation>, RevocationError> {
        let roots = Arc::new(
            super::root_store(anchors).map_err(|e| RevocationError::Anchors(Box::new(e)))?,
        );
        let revocation = Revocation {
            files: files.to_vec(),
            roots: Some(roots),
            current: RwLock::new(Arc::new(CrlSet {
                generation: 0,
                crls: Vec::new(),
            })),
        };
        let crls = revocation.read_files()?;
        revocation.install(crls);
        Ok(Arc::new(revocation))
    }

    /// Reads the files again. On success the new lists are in force for every
    /// later handshake and `Ok(true)` says they changed; on error the previous
    /// lists stay in force.
    pub fn reload(&self) -> Result<bool, RevocationError> {
        let crls = self.read_files()?;
        if crls == self.current().crls {
            return Ok(false);
        }
        self.install(crls);
        Ok(true)
    }

    /// How many lists are in force.
    pub fn len(&self) -> usize {
        self.current().crls.len()
    }

    /// Whether no list is in force (revocation is not checked).
    pub fn is_empty(&self) -> bool {
        self.current().crls.is_empty()
    }

    fn read_files(&self) -> Result<Vec<CertificateRevocationListDer<'static>>, RevocationError> {
        let mut all = Vec::new();
        for file in &self.files {
            all.extend(load_crl_file(file)?);
        }
        if let Some(roots) = &self.roots
            && !all.is_empty()
        {
            // webpki parses the lists when a verifier is built: try once here, so
            // that a list it refuses is an error now and not at a handshake.
            WebPkiServerVerifier::builder_with_provider(roots.clone(), super::provider())
                .with_crls(all.clone())
                .build()
                .map_err(|e| RevocationError::BadCrl {
                    origin: self
                        .files
                        .iter()
                        .map(|f| f.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    reason: e.to_string(),
                })?;
        }
        Ok(all)
    }

    fn install(&self, crls: Vec<CertificateRevocationListDer<'static>>) {
        let mut slot = match self.current.write() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        let generation = slot.generation + 1;
        *slot = Arc::new(CrlSet { generation, crls });
    }

    fn current(&self) -> Arc<CrlSet> {
        match self.current.read() {
            Ok(set) => set.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// Logs why a peer certificate was refused when the reason is revocation: its
/// subject and serial (nothing secret), and which side it was.
fn log_refusal(side: &str, end_entity: &CertificateDer<'_>, error: &rustls::Error) {
    let rustls::Error::InvalidCertificate(reason) = error else {
        return;
    };
    let (subject, serial) = match X509Certificate::from_der(end_entity.as_ref()) {
        // Printable only: a subject is peer-supplied text going into a log line.
        Ok((_, cert)) => (
            cert.subject()
                .to_string()
                .chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect(),
            cert.raw_serial_as_string(),
        ),
        Err(_) => ("(unparsable)".to_string(), String::new()),
    };
    match reason {
        CertificateError::Revoked => tracing::warn!(
            peer = side,
            subject = %subject,
            serial = %serial,
            "certificate refused: revoked (listed in a configured CRL)"
        ),
        CertificateError::UnknownRevocationStatus => tracing::warn!(
            peer = side,
            subject = %subject,
            serial = %serial,
            "certificate refused: no configured CRL covers its issuer"
        ),
        _ => {}
    }
}

/// Client certificate verification with the current revocation lists: webpki's,
/// rebuilt when the lists change.
#[derive(Debug)]
pub struct CrlClientVerifier {
    revocation: Arc<Revocation>,
    roots: Arc<RootCertStore>,
    optional: bool,
    hints: Vec<DistinguishedName>,
    inner: RwLock<(u64, Arc<dyn ClientCertVerifier>)>,
}

impl CrlClientVerifier {
    /// A verifier of client certificates against `roots`; with `optional`, a
    /// client may also present none.
    pub fn new(
        roots: Arc<RootCertStore>,
        optional: bool,
        revocation: Arc<Revocation>,
    ) -> Result<Arc<CrlClientVerifier>, rustls::server::VerifierBuilderError> {
        let set = revocation.current();
        let inner = build_client(&roots, optional, &set.crls)?;
        Ok(Arc::new(CrlClientVerifier {
            hints: inner.root_hint_subjects().to_vec(),
            revocation,
            roots,
            optional,
            inner: RwLock::new((set.generation, inner)),
        }))
    }

    fn inner(&self) -> Arc<dyn ClientCertVerifier> {
        let set = self.revocation.current();
        let held = match self.inner.read() {
            Ok(slot) => slot.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        if held.0 == set.generation {
            return held.1;
        }
        match build_client(&self.roots, self.optional, &set.crls) {
            Ok(fresh) => {
                if let Ok(mut slot) = self.inner.write() {
                    *slot = (set.generation, fresh.clone());
                }
                fresh
            }
            Err(e) => {
                tracing::error!(error = %e, "revocation lists refused by webpki; previous lists kept");
                held.1
            }
        }
    }
}

fn build_client(
    roots: &Arc<RootCertStore>,
    optional: bool,
    crls: &[CertificateRevocationListDer<'static>],
) -> Result<Arc<dyn ClientCertVerifier>, rustls::server::VerifierBuilderError> {
    let mut builder = WebPkiClientVerifier::builder_with_provider(roots.clone(), super::provider());
    if optional {
        builder = builder.allow_unauthenticated();
    }
    if !crls.is_empty() {
        builder = builder.with_crls(crls.iter().cloned());
    }
    builder.build()
}

impl ClientCertVerifier for CrlClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        !self.optional
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verdict = self
            .inner()
            .verify_client_cert(end_entity, intermediates, now);
        if let Err(e) = &verdict {
            log_refusal("client", end_entity, e);
        }
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner().supported_verify_schemes()
    }
}

/// Server certificate verification (the relay's peers) with the current
/// revocation lists: webpki's, rebuilt when the lists change.
#[derive(Debug)]
pub struct CrlServerVerifier {
    revocation: Arc<Revocation>,
    roots: Arc<RootCertStore>,
    inner: RwLock<(u64, Arc<WebPkiServerVerifier>)>,
}

impl CrlServerVerifier {
    /// A verifier of server certificates against `roots` (and the server name).
    pub fn new(
        roots: Arc<RootCertStore>,
        revocation: Arc<Revocation>,
    ) -> Result<Arc<CrlServerVerifier>, rustls::server::VerifierBuilderError> {
        let set = revocation.current();
        let inner = build_server(&roots, &set.crls)?;
        Ok(Arc::new(CrlServerVerifier {
            revocation,
            roots,
            inner: RwLock::new((set.generation, inner)),
        }))
    }

    fn inner(&self) -> Arc<WebPkiServerVerifier> {
        let set = self.revocation.current();
        let held = match self.inner.read() {
            Ok(slot) => slot.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        if held.0 == set.generation {
            return held.1;
        }
        match build_server(&self.roots, &set.crls) {
            Ok(fresh) => {
                if let Ok(mut slot) = self.inner.write() {
                    *slot = (set.generation, fresh.clone());
                }
                fresh
            }
            Err(e) => {
                tracing::error!(error = %e, "revocation lists refused by webpki; previous lists kept");
                held.1
            }
        }
    }
}

fn build_server(
    roots: &Arc<RootCertStore>,
    crls: &[CertificateRevocationListDer<'static>],
) -> Result<Arc<WebPkiServerVerifier>, rustls::server::VerifierBuilderError> {
    let mut builder = WebPkiServerVerifier::builder_with_provider(roots.clone(), super::provider());
    if !crls.is_empty() {
        builder = builder.with_crls(crls.iter().cloned());
    }
    builder.build()
}

impl ServerCertVerifier for CrlServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.inner().verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        if let Err(e) = &verdict {
            log_refusal("server", end_entity, e);
        }
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner().supported_verify_schemes()
    }
}

/// A new, empty list of the development CA `ca` (CRL number 1), in PEM.
pub fn empty_crl(ca: &Ca) -> Result<String, RevocationError> {
    let now = OffsetDateTime::now_utc();
    let params = CertificateRevocationListParams {
        this_update: now,
        next_update: now + DEV_CRL_VALIDITY,
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: Vec::new(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    ca.sign_crl(&params)
        .map_err(|e| RevocationError::Sign(Box::new(e)))?
        .pem()
        .map_err(|e| RevocationError::Sign(Box::new(e)))
}

/// Whether the list `crl_der` was issued by `ca` (same issuer name).
pub fn is_list_of(ca: &Ca, crl_der: &[u8]) -> bool {
    let Ok(ca_der) = CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()) else {
        return false;
    };
    match (
        X509Certificate::from_der(ca_der.as_ref()),
        CertificateRevocationList::from_der(crl_der),
    ) {
        (Ok((_, cert)), Ok((_, crl))) => cert.subject().as_raw() == crl.issuer().as_raw(),
        _ => false,
    }
}

/// What [`revoke`] did.
#[derive(Debug, Clone)]
pub struct Revoked {
    /// The new list, DER (unchanged when the certificate was already listed).
    pub crl_der: Vec<u8>,
    /// The new list, PEM.
    pub crl_pem: String,
    /// The new list's CRL number (hex).
    pub crl_number: String,
    /// The certificate's subject.
    pub subject: String,
    /// The certificate's serial, hex with colons.
    pub serial: String,
    /// The certificate was already listed; nothing changed.
    pub already: bool,
}

/// Adds the certificate `cert_der` to `crl_der`, a list of the development CA
/// `ca`: the entries kept, the CRL number incremented, signed again.
pub fn revoke(
    ca: &Ca,
    crl_der: &[u8],
    cert_der: &[u8],
    reason: Option<RevocationReason>,
) -> Result<Revoked, RevocationError> {
    let (_, cert) =
        X509Certificate::from_der(cert_der).map_err(|e| RevocationError::BadCertificate {
            origin: "certificate".into(),
            reason: e.to_string(),
        })?;
    let ca_der = CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).map_err(|e| {
        RevocationError::BadCertificate {
            origin: "CA certificate".into(),
            reason: e.to_string(),
        }
    })?;
    let (_, ca_cert) = X509Certificate::from_der(ca_der.as_ref()).map_err(|e| {
        RevocationError::BadCertificate {
            origin: "CA certificate".into(),
            reason: e.to_string(),
        }
    })?;
    let subject = cert.subject().to_string();
    if cert.issuer().as_raw() != ca_cert.subject().as_raw() {
        return Err(RevocationError::WrongIssuer {
            certificate: subject,
            issuer: cert.issuer().to_string(),
            ca: ca_cert.subject().to_string(),
        });
    }
    let bad = |reason: String| RevocationError::BadCrl {
        origin: "revocation list".into(),
        reason,
    };
    let (_, crl) = CertificateRevocationList::from_der(crl_der).map_err(|e| bad(e.to_string()))?;
    if crl.issuer().as_raw() != ca_cert.subject().as_raw() {
        return Err(bad(format!(
            "issued by `{}`, not by the CA `{}`",
            crl.issuer(),
            ca_cert.subject()
        )));
    }
    let serial = cert.raw_serial_as_string();
    let number_bytes = crl
        .crl_number()
        .map(|n| n.to_bytes_be())
        .unwrap_or_default();
    if crl
        .iter_revoked_certificates()
        .any(|r| r.raw_serial() == cert.raw_serial())
    {
        let pem = pem_of(crl_der);
        return Ok(Revoked {
            crl_der: crl_der.to_vec(),
            crl_pem: pem,
            crl_number: hex::encode(&number_bytes),
            subject,
            serial,
            already: true,
        });
    }
    let mut revoked_certs = Vec::new();
    for entry in crl.iter_revoked_certificates() {
        revoked_certs.push(RevokedCertParams {
            serial_number: SerialNumber::from_slice(entry.raw_serial()),
            revocation_time: entry.revocation_date.to_datetime(),
            reason_code: entry
                .reason_code()
                .and_then(|(_, code)| reason_of_code(code.0)),
            invalidity_date: entry.invalidity_date().map(|(_, t)| t.to_datetime()),
        });
    }
    let now = OffsetDateTime::now_utc();
    revoked_certs.push(RevokedCertParams {
        serial_number: SerialNumber::from_slice(cert.raw_serial()),
        revocation_time: now,
        reason_code: reason,
        invalidity_date: None,
    });
    let next_number = increment(&number_bytes);
    let params = CertificateRevocationListParams {
        this_update: now,
        next_update: now + DEV_CRL_VALIDITY,
        crl_number: SerialNumber::from_slice(&next_number),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let signed = ca
        .sign_crl(&params)
        .map_err(|e| RevocationError::Sign(Box::new(e)))?;
    Ok(Revoked {
        crl_der: signed.der().to_vec(),
        crl_pem: signed
            .pem()
            .map_err(|e| RevocationError::Sign(Box::new(e)))?,
        crl_number: hex::encode(&next_number),
        subject,
        serial,
        already: false,
    })
}

/// A DER list as PEM (`X509 CRL`), 64 characters a line.
fn pem_of(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN X509 CRL-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END X509 CRL-----\n");
    out
}

/// A big-endian unsigned number plus one.
fn increment(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for byte in out.iter_mut().rev() {
        if *byte == 0xff {
            *byte = 0;
        } else {
            *byte += 1;
            return out;
        }
    }
    out.insert(0, 1);
    out
}

fn reason_of_code(code: u8) -> Option<RevocationReason> {
    Some(match code {
        0 => RevocationReason::Unspecified,
        1 => RevocationReason::KeyCompromise,
        2 => RevocationReason::CaCompromise,
        3 => RevocationReason::AffiliationChanged,
        4 => RevocationReason::Superseded,
        5 => RevocationReason::CessationOfOperation,
        6 => RevocationReason::CertificateHold,
        8 => RevocationReason::RemoveFromCrl,
        9 => RevocationReason::PrivilegeWithdrawn,
        10 => RevocationReason::AaCompromise,
        _ => return None,
    })
}

/// Writes `contents` to `path` through a temporary file and a rename, so that
/// a server reloading at that moment reads the old list or the new one, never half.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), RevocationError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "crl".into());
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = fs::File::create(&tmp).map_err(io_error("cannot write", &tmp))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(io_error("cannot write", &tmp))?;
    fs::rename(&tmp, path).map_err(io_error("cannot replace", path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{LeafSpec, Usage};

    fn der_of(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    fn crl_der_of(pem: &str) -> Vec<u8> {
        let crls = parse_crls(pem.as_bytes(), "test").unwrap();
        assert_eq!(crls.len(), 1);
        crls[0].to_vec()
    }

    fn parsed(der: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
        let (_, crl) = CertificateRevocationList::from_der(der).unwrap();
        let number = crl.crl_number().unwrap().to_bytes_be();
        let serials = crl
            .iter_revoked_certificates()
            .map(|r| r.raw_serial().to_vec())
            .collect();
        (number, serials)
    }

    fn serial_of(pem: &str) -> Vec<u8> {
        let der = der_of(pem);
        let (_, cert) = X509Certificate::from_der(der.as_ref()).unwrap();
        cert.raw_serial().to_vec()
    }

    #[test]
    fn loads_pem_with_several_lists_and_der() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::generate("CA One").unwrap();
        let other = Ca::generate("CA Two").unwrap();
        let one = empty_crl(&ca).unwrap();
        let two = empty_crl(&other).unwrap();

        let pem = dir.path().join("one.pem");
        fs::write(&pem, &one).unwrap();
        let loaded = load_crl_file(&pem).unwrap();
        assert_eq!(loaded.len(), 1);
        assert!(is_list_of(&ca, loaded[0].as_ref()));
        assert!(!is_list_of(&other, loaded[0].as_ref()));

        let both = dir.path().join("both.pem");
        fs::write(&both, format!("{one}\n{two}")).unwrap();
        assert_eq!(load_crl_file(&both).unwrap().len(), 2);

        let der = dir.path().join("one.crl");
        fs::write(&der, loaded[0].as_ref()).unwrap();
        assert_eq!(load_crl_file(&der).unwrap(), loaded);

        // Not a list: garbage, a certificate, a missing file.
        let junk = dir.path().join("junk.crl");
        fs::write(&junk, b"\x30\x03\x02\x01\x01").unwrap();
        let err = load_crl_file(&junk).unwrap_err().to_string();
        assert!(err.contains("junk.crl"), "{err}");
        let cert = dir.path().join("cert.pem");
        fs::write(&cert, ca.cert_pem()).unwrap();
        let err = load_crl_file(&cert).unwrap_err().to_string();
        assert!(err.contains("X509 CRL"), "{err}");
        assert!(load_crl_file(&dir.path().join("absent.pem")).is_err());
    }

    #[test]
    fn revoke_adds_the_serial_and_increments_the_number() {
        let ca = Ca::generate("CA One").unwrap();
        let first = ca.issue(&LeafSpec::new("a.mes.test", "A")).unwrap();
        let second = ca.issue(&LeafSpec::new("b.mes.test", "B")).unwrap();
        let crl = crl_der_of(&empty_crl(&ca).unwrap());
        assert_eq!(parsed(&crl), (vec![1], vec![]));

        let done = revoke(
            &ca,
            &crl,
            der_of(&first.cert_pem).as_ref(),
            Some(RevocationReason::KeyCompromise),
        )
        .unwrap();
        assert!(!done.already);
        assert_eq!(done.crl_number, "02");
        assert!(done.subject.contains("CN=a.mes.test"), "{}", done.subject);
        assert_eq!(crl_der_of(&done.crl_pem), done.crl_der);
        assert_eq!(
            parsed(&done.crl_der),
            (vec![2], vec![serial_of(&first.cert_pem)])
        );
        let (_, list) = CertificateRevocationList::from_der(&done.crl_der).unwrap();
        let entry = list.iter_revoked_certificates().next().unwrap();
        assert_eq!(entry.reason_code().map(|(_, c)| c.0), Some(1));

        // Again: nothing changes.
        let again = revoke(&ca, &done.crl_der, der_of(&first.cert_pem).as_ref(), None).unwrap();
        assert!(again.already);
        assert_eq!(again.crl_der, done.crl_der);

        // A second one: both listed, number 3, the first entry's reason kept.
        let more = revoke(&ca, &done.crl_der, der_of(&second.cert_pem).as_ref(), None).unwrap();
        assert_eq!(
            parsed(&more.crl_der),
            (
                vec![3],
                vec![serial_of(&first.cert_pem), serial_of(&second.cert_pem)]
            )
        );
        let (_, list) = CertificateRevocationList::from_der(&more.crl_der).unwrap();
        let entry = list.iter_revoked_certificates().next().unwrap();
        assert_eq!(entry.reason_code().map(|(_, c)| c.0), Some(1));

        // A certificate of another CA, or another CA's list: refused.
        let other = Ca::generate("CA Two").unwrap();
        let foreign = other.issue(&LeafSpec::new("c.mes.test", "C")).unwrap();
        let err = revoke(&ca, &crl, der_of(&foreign.cert_pem).as_ref(), None).unwrap_err();
        assert!(matches!(err, RevocationError::WrongIssuer { .. }), "{err}");
        let other_crl = crl_der_of(&empty_crl(&other).unwrap());
        assert!(revoke(&ca, &other_crl, der_of(&first.cert_pem).as_ref(), None).is_err());
    }

    #[test]
    fn increment_carries() {
        assert_eq!(increment(&[]), vec![1]);
        assert_eq!(increment(&[0x01, 0xff]), vec![0x02, 0x00]);
        assert_eq!(increment(&[0xff]), vec![0x01, 0x00]);
    }

    fn now() -> UnixTime {
        UnixTime::now()
    }

    #[test]
    fn verifiers_follow_reloads_and_keep_the_lists_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::generate("CA One").unwrap();
        let anchor = dir.path().join("ca.pem");
        fs::write(&anchor, ca.cert_pem()).unwrap();
        let crl_file = dir.path().join("crl.pem");
        fs::write(&crl_file, empty_crl(&ca).unwrap()).unwrap();
        let mut spec = LeafSpec::new("client.mes.test", "Client").with_loopback();
        spec.usage = Usage::ServerAndClient;
        let leaf = ca.issue(&spec).unwrap();
        let leaf_der = der_of(&leaf.cert_pem);

        let revocation = Revocation::load(std::slice::from_ref(&crl_file), &[&anchor]).unwrap();
        assert_eq!(revocation.len(), 1);
        let roots = Arc::new(crate::tls::root_store(&[&anchor]).unwrap());
        let client = CrlClientVerifier::new(roots.clone(), false, revocation.clone()).unwrap();
        let server = CrlServerVerifier::new(roots, revocation.clone()).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        assert!(client.verify_client_cert(&leaf_der, &[], now()).is_ok());
        assert!(
            server
                .verify_server_cert(&leaf_der, &[], &name, &[], now())
                .is_ok()
        );
        assert!(!revocation.reload().unwrap(), "unchanged");

        let crl = crl_der_of(&fs::read_to_string(&crl_file).unwrap());
        let done = revoke(&ca, &crl, leaf_der.as_ref(), None).unwrap();
        write_atomically(&crl_file, done.crl_pem.as_bytes()).unwrap();
        assert!(revocation.reload().unwrap(), "changed");
        let revoked = rustls::Error::InvalidCertificate(CertificateError::Revoked);
        assert_eq!(
            client
                .verify_client_cert(&leaf_der, &[], now())
                .unwrap_err(),
            revoked
        );
        assert_eq!(
            server
                .verify_server_cert(&leaf_der, &[], &name, &[], now())
                .unwrap_err(),
            revoked
        );

        // A broken file on reload: error, the lists in force stay.
        fs::write(
            &crl_file,
            "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
        )
        .unwrap();
        assert!(revocation.reload().is_err());
        assert_eq!(
            client
                .verify_client_cert(&leaf_der, &[], now())
                .unwrap_err(),
            revoked
        );

        // Only another CA's list: the issuer is not covered, refused (fail closed).
        let other = Ca::generate("CA Two").unwrap();
        fs::write(&crl_file, empty_crl(&other).unwrap()).unwrap();
        assert!(revocation.reload().unwrap());
        assert_eq!(
            client
                .verify_client_cert(&leaf_der, &[], now())
                .unwrap_err(),
            rustls::Error::InvalidCertificate(CertificateError::UnknownRevocationStatus)
        );

        // No lists at all: no check.
        let none = CrlClientVerifier::new(
            Arc::new(crate::tls::root_store(&[&anchor]).unwrap()),
            true,
            Revocation::none(),
        )
        .unwrap();
        assert!(none.verify_client_cert(&leaf_der, &[], now()).is_ok());
        assert!(!none.client_auth_mandatory());
        assert!(client.client_auth_mandatory());
    }
}
