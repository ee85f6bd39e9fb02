//! What `[server] mode = "production"` demands of the files the
//! configuration names, checked by `mes config check` and before `mes serve`
//! starts: no certificate, trust anchor or revocation list of the
//! development PKI (`mes init`: issuer or subject organisation
//! [`crate::pki::DEV_CA_ORGANISATION`]), no self-signed server certificate,
//! a private key that belongs to the certificate, a revocation list for
//! every trust anchor, metrics on no public address, and the public base
//! URL of the web listener (`clients.web_url`, the OAuth issuer).

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;
use x509_parser::x509::X509Name;

use super::Config;

/// One reason the configuration is not fit for production.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The dotted key at fault.
    pub key: &'static str,
    /// What is wrong, naming the file.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.key, self.message)
    }
}

/// Every problem of `config` for production (empty: fit).
pub fn check(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut problem = |key: &'static str, message: String| problems.push(Problem { key, message });
    let tls = &config.tls;

    match read_certificates(&tls.certificate) {
        Err(e) => problem("tls.certificate", e),
        Ok(chain) => match chain.first() {
            None => problem(
                "tls.certificate",
                format!("{}: no certificate", tls.certificate.display()),
            ),
            Some(der) => match X509Certificate::from_der(der) {
                Err(e) => problem(
                    "tls.certificate",
                    format!("{}: {e}", tls.certificate.display()),
                ),
                Ok((_, leaf)) => {
                    if is_development(leaf.subject()) || is_development(leaf.issuer()) {
                        problem(
                            "tls.certificate",
                            format!(
                                "{} is a development certificate (issued by the `mes init` CA)",
                                tls.certificate.display()
                            ),
                        );
                    } else if leaf.subject().as_raw() == leaf.issuer().as_raw() {
                        problem(
                            "tls.certificate",
                            format!(
                                "{} is self-signed: use the operator certificate issued by IGC-Santé",
                                tls.certificate.display()
                            ),
                        );
                    }
                    if let Some(m) =
                        key_mismatch(&tls.private_key, &leaf.public_key().subject_public_key.data)
                    {
                        problem("tls.private_key", m);
                    }
                }
            },
        },
    }

    let mut anchors = Vec::new();
    for file in &tls.trust_anchors {
        match read_certificates(file) {
            Err(e) => problem("tls.trust_anchors", e),
            Ok(certs) => {
                for der in certs {
                    match X509Certificate::from_der(&der) {
                        Ok((_, ca)) if is_development(ca.subject()) => problem(
                            "tls.trust_anchors",
                            format!("{} is the development CA of `mes init`", file.display()),
                        ),
                        Ok((_, ca)) => anchors.push((file.clone(), ca.subject().as_raw().to_vec())),
                        Err(e) => problem("tls.trust_anchors", format!("{}: {e}", file.display())),
                    }
                }
            }
        }
    }

    let mut crl_issuers = Vec::new();
    for file in &tls.crl_files {
        match crate::pki::crl::load_crl_file(file) {
            Err(e) => problem("tls.crl_files", e.to_string()),
            Ok(lists) => {
                for der in lists {
                    if let Ok((_, crl)) = CertificateRevocationList::from_der(der.as_ref()) {
                        if is_development(crl.issuer()) {
                            problem(
                                "tls.crl_files",
                                format!(
                                    "{} is a list of the development CA of `mes init`",
                                    file.display()
                                ),
                            );
                        }
                        crl_issuers.push(crl.issuer().as_raw().to_vec());
                    }
                }
            }
        }
    }
    for (file, subject) in &anchors {
        if !crl_issuers.contains(subject) {
            problem(
                "tls.crl_files",
                format!(
                    "no revocation list for the trust anchor in {}",
                    file.display()
                ),
            );
        }
    }

    if config.listen.https.is_some() && config.clients.web_url.is_none() {
        problem(
            "clients.web_url",
            "missing: the OAuth issuer of connected services must be the public URL, \
             never the Host a client sends"
                .into(),
        );
    }
    if let Some(addr) = config.listen.metrics
        && is_public(addr.ip())
    {
        problem(
            "listen.metrics",
            format!(
                "`{addr}` is a public address: serve the metrics on loopback or a private network"
            ),
        );
    }
    problems
}

/// Whether a name carries the development PKI's organisation.
fn is_development(name: &X509Name<'_>) -> bool {
    name.iter_organization().any(|o| {
        o.as_str()
            .is_ok_and(|o| o == crate::pki::DEV_CA_ORGANISATION)
    })
}

/// Whether metrics on `ip` would be reachable from anywhere: not loopback,
/// not a private or link-local network (the unspecified address is every one).
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_loopback() || v4.is_private() || v4.is_link_local()),
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            // fc00::/7 unique local, fe80::/10 link-local.
            !(v6.is_loopback() || first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80)
        }
    }
}

/// The DER certificates of a PEM file.
fn read_certificates(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .map(|c| {
            c.map(|c| c.to_vec())
                .map_err(|e| format!("{}: {e}", path.display()))
        })
        .collect()
}

/// Why `key_file` is not the key of a certificate whose public key (the
/// bits of its SubjectPublicKeyInfo) is `spki`.
fn key_mismatch(key_file: &Path, spki: &[u8]) -> Option<String> {
    let pem = match std::fs::read_to_string(key_file) {
        Ok(p) => p,
        Err(e) => return Some(format!("{}: {e}", key_file.display())),
    };
    match rcgen::KeyPair::from_pem(&pem) {
        Ok(key) if key.public_key_raw() == spki => None,
        Ok(_) => Some(format!(
            "{} is not the key of `tls.certificate`",
            key_file.display()
        )),
        Err(e) => Some(format!("{}: {e}", key_file.display())),
    }
}
