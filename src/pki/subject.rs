//! Subject DNs read from certificates (PEM, DER, files).

use std::path::Path;

use x509_parser::certificate::X509Certificate;
use x509_parser::x509::X509Name;

use super::files::read_to_string;
use super::{CERTIFICATE_LABEL, PkiError, dn};

/// Subject DN of the first certificate in a PEM text, in MES's format (see the module documentation).
pub fn subject_dn_of_pem(cert_pem: &str) -> Result<String, PkiError> {
    let der = certificate_der_of_pem(cert_pem, "certificate PEM")?;
    subject_dn_of_der_named(&der, "certificate PEM")
}

/// Subject DN of a DER certificate (e.g. a TLS peer's), rendered for people and logs
/// (see the module documentation); the rendering parses back to the same DN.
pub fn subject_dn_of_der(der: &[u8]) -> Result<String, PkiError> {
    subject_dn_of_der_named(der, "DER certificate")
}

/// Subject DN of the first certificate in a PEM file, with errors naming the file.
pub fn subject_dn_of_file(path: &Path) -> Result<String, PkiError> {
    let origin = path.display().to_string();
    let der = certificate_der_of_pem(&read_to_string(path)?, &origin)?;
    subject_dn_of_der_named(&der, &origin)
}

fn subject_dn_of_der_named(der: &[u8], origin: &str) -> Result<String, PkiError> {
    let cert = parse_der(der, origin)?;
    name_to_string(cert.subject(), origin)
}

/// Renders a name for people and logs (see the module documentation), from its
/// parsed RDNs; a name that cannot be read is an error, not a placeholder.
pub(super) fn name_to_string(name: &X509Name<'_>, origin: &str) -> Result<String, PkiError> {
    name_to_dn(name, origin).map(|dn| dn.to_string())
}

fn name_to_dn(name: &X509Name<'_>, origin: &str) -> Result<dn::DistinguishedName, PkiError> {
    dn::DistinguishedName::from_x509_name(name).map_err(|e| PkiError::Parse {
        origin: origin.to_owned(),
        reason: format!("subject cannot be read: {e}"),
    })
}

/// Subject of the first certificate in a PEM file, parsed (the DN rule), with
/// errors naming the file.
pub fn subject_of_file(path: &Path) -> Result<dn::DistinguishedName, PkiError> {
    let origin = path.display().to_string();
    let der = certificate_der_of_pem(&read_to_string(path)?, &origin)?;
    let cert = parse_der(&der, &origin)?;
    name_to_dn(cert.subject(), &origin)
}

/// Subject of a DER certificate (e.g. a TLS peer's), parsed (the DN rule).
pub fn subject_of_der(der: &[u8]) -> Result<dn::DistinguishedName, PkiError> {
    let cert = parse_der(der, "DER certificate")?;
    name_to_dn(cert.subject(), "DER certificate")
}

pub(super) fn parse_der<'a>(der: &'a [u8], origin: &str) -> Result<X509Certificate<'a>, PkiError> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, cert)| cert)
        .map_err(|e| PkiError::Parse {
            origin: origin.to_owned(),
            reason: e.to_string(),
        })
}

/// DER of the first `CERTIFICATE` block of a PEM text.
pub(super) fn certificate_der_of_pem(pem_text: &str, origin: &str) -> Result<Vec<u8>, PkiError> {
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(pem_text.as_bytes()).map_err(|e| PkiError::BadPem {
            origin: origin.to_owned(),
            reason: format!("no PEM block found: {e}"),
        })?;
    if pem.label != CERTIFICATE_LABEL {
        return Err(PkiError::BadPem {
            origin: origin.to_owned(),
            reason: format!(
                "first block is {:?}, expected {CERTIFICATE_LABEL:?}",
                pem.label
            ),
        });
    }
    Ok(pem.contents)
}
