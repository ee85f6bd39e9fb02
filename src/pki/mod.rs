//! The development PKI of MES: a stand-in for the French IGC-Santé.
//!
//! A real operator of the trust space holds certificates issued by the
//! IGC-Santé. For development, tests and demonstrations MES makes its own:
//! a certificate authority ([`Ca`]) and the leaf certificates an operator
//! needs ([`init_dev_pki`], used by `mes init DIR [--ca OTHER_DIR]`), plus any
//! extra leaf a test wants ([`LeafSpec`], [`Ca::issue`]): expired ones, ones
//! for another operator, ones from another CA.
//!
//! Subject DNs are read by [`dn::DistinguishedName`], the one DN rule of MES
//! (see [`dn`]): comparisons with the whitelist's `DNCertificatOperateur` and
//! certificate-to-account mappings go through its parsed RDNs, never through a
//! rendered string. [`subject_dn_of_der`] renders it for people and logs: the
//! attributes in the order they appear in the certificate (not reversed as
//! RFC 4514 would), short names (`CN`, `O`, `OU`, `C`, `L`, `ST`…), `", "`
//! between RDNs, `" + "` inside a multi-valued RDN, RFC 4514 escapes only where
//! a value needs them, e.g. `CN=mx.hopital-b.mes.test, O=Hopital B, C=FR`.
//! Certificates made here put CN first, then O, then C.
//!
//! All keys are ECDSA P-256 with SHA-256 (rcgen's default). Private keys are
//! PKCS#8 PEM files written with mode 0600.

use std::path::PathBuf;

use time::Duration;

pub mod crl;
mod dev;
pub mod dn;
mod files;
mod issue;
mod subject;

pub use dev::{DevPki, init_dev_pki};
pub use issue::{Ca, IssuedCert, LeafSpec, Usage};
pub use subject::{
    subject_dn_of_der, subject_dn_of_file, subject_dn_of_pem, subject_of_der, subject_of_file,
};

/// Organisation (O) of the development CA, so that no one mistakes it for the IGC-Santé.
pub const DEV_CA_ORGANISATION: &str = "MES Development PKI";

/// Common name of the CA that [`init_dev_pki`] creates when it is not given one.
pub const DEV_CA_COMMON_NAME: &str = "MES Development CA";

/// Organisation of the second operator of the development trust space, so tests have a peer.
pub const OPERATOR2_ORGANISATION: &str = "Operateur Deux";

/// Host name (and CN) of the second operator of the development trust space.
pub const OPERATOR2_HOSTNAME: &str = "mx.operateur2.mes.test";

/// CN of the development client certificate of a hospital information system (DPI).
pub const CLIENT_COMMON_NAME: &str = "dpi.hopital.mes.test";

/// Country (C) put in every subject made here: the trust space is French.
const COUNTRY: &str = "FR";

/// PEM label of a certificate.
const CERTIFICATE_LABEL: &str = "CERTIFICATE";

/// Mode of private key files: readable by their owner only.
const KEY_FILE_MODE: u32 = 0o600;

/// How long a development CA lives: long enough never to expire under a developer.
const CA_LIFETIME: Duration = Duration::days(3650);

/// How long a default leaf certificate lives.
const LEAF_LIFETIME: Duration = Duration::days(730);

/// Backdating of `not_before`, so that clocks a little behind still accept new certificates.
const BACKDATE: Duration = Duration::days(1);

/// Why the development PKI could not do what was asked; each names the file or item concerned.
#[derive(thiserror::Error, Debug)]
pub enum PkiError {
    /// A file or directory could not be read, written or created.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done ("cannot read", "cannot write"…).
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// rcgen refused to make a key or certificate (bad name, bad key…).
    #[error("cannot generate {what}: {source}")]
    Generate {
        /// The key or certificate being made, e.g. `certificate CN=…` or `CA key`.
        what: String,
        /// The underlying error.
        source: rcgen::Error,
    },
    /// A DER certificate could not be parsed, or its subject could not be rendered.
    #[error("cannot parse certificate {origin}: {reason}")]
    Parse {
        /// Where the certificate came from (a file name, or a description).
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A PEM text held no usable certificate or key.
    #[error("bad PEM in {origin}: {reason}")]
    BadPem {
        /// Where the PEM text came from (a file name, or a description).
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A certificate loaded as a CA is not one (no basicConstraints CA=true).
    #[error("{origin} is not a CA certificate (basicConstraints CA is not set)")]
    NotCa {
        /// Where the certificate came from.
        origin: String,
    },
    /// A CA key does not belong to the CA certificate it was loaded with.
    #[error("key {key_origin} does not match certificate {cert_origin}")]
    KeyMismatch {
        /// Where the certificate came from.
        cert_origin: String,
        /// Where the key came from.
        key_origin: String,
    },
    /// A request for a certificate is inconsistent (no host name, validity ending before it starts…).
    #[error("invalid certificate request for {subject}: {reason}")]
    InvalidSpec {
        /// The subject asked for.
        subject: String,
        /// What is wrong with the request.
        reason: String,
    },
}

#[cfg(test)]
mod tests;
