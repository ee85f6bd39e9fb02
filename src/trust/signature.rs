//! The whitelist's detached signature (our extension: the published XML
//! carries none). When `trust.whitelist_signing_cert` is set, the list's
//! bytes must come with the raw signature `openssl dgst -sha256 -sign
//! key.pem -out list.sig list.xml` makes (RSA PKCS#1 v1.5 or ECDSA P-256,
//! both over SHA-256), checked with that certificate's public key by
//! rustls-webpki. The certificate is only a carrier of the key: its chain
//! and dates are not judged, since the operator chose it by configuration.

use std::path::{Path, PathBuf};

use rustls_pki_types::CertificateDer;

/// Why a signature was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// The signer certificate could not be read.
    #[error("whitelist signing certificate {path}: {reason}")]
    Certificate {
        /// The configured file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The signature could not be fetched.
    #[error("whitelist signature missing: {0}")]
    Missing(String),
    /// The signature does not match the list and the signer's key.
    #[error("whitelist signature does not verify with the signing certificate")]
    Invalid,
}

/// The signer of the whitelist: its certificate (DER).
#[derive(Debug, Clone)]
pub struct Signer {
    cert: CertificateDer<'static>,
}

impl Signer {
    /// Reads the first certificate of the PEM file at `path`, checking that
    /// webpki can take its key.
    pub fn load(path: &Path) -> Result<Signer, SignatureError> {
        let fail = |reason: String| SignatureError::Certificate {
            path: path.to_path_buf(),
            reason,
        };
        use rustls_pki_types::pem::PemObject;
        let cert = CertificateDer::pem_file_iter(path)
            .map_err(|e| fail(e.to_string()))?
            .next()
            .ok_or_else(|| fail("no certificate".into()))?
            .map_err(|e| fail(e.to_string()))?;
        webpki::EndEntityCert::try_from(&cert).map_err(|e| fail(format!("{e:?}")))?;
        Ok(Signer { cert })
    }

    /// A signer from a DER certificate.
    pub fn from_der(cert: CertificateDer<'static>) -> Result<Signer, SignatureError> {
        webpki::EndEntityCert::try_from(&cert).map_err(|e| SignatureError::Certificate {
            path: PathBuf::new(),
            reason: format!("{e:?}"),
        })?;
        Ok(Signer { cert })
    }

    /// Checks `signature` over `data`: RSA PKCS#1 v1.5 or ECDSA P-256
    /// (ASN.1 DER, as OpenSSL writes it), SHA-256, whichever the key is.
    pub fn verify(&self, data: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        let cert =
            webpki::EndEntityCert::try_from(&self.cert).map_err(|_| SignatureError::Invalid)?;
        let algorithms: [&dyn rustls_pki_types::SignatureVerificationAlgorithm; 2] = [
            webpki::ring::RSA_PKCS1_2048_8192_SHA256,
            webpki::ring::ECDSA_P256_SHA256,
        ];
        if algorithms
            .iter()
            .any(|alg| cert.verify_signature(*alg, data, signature).is_ok())
        {
            Ok(())
        } else {
            Err(SignatureError::Invalid)
        }
    }
}

/// Where the signature of the list at `source` is read: `configured`, else
/// the source with `.sig` appended.
pub fn signature_source(source: &str, configured: Option<&str>) -> String {
    configured.map_or_else(|| format!("{source}.sig"), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ECDSA P-256 signer (rcgen) and a signature over `data` (ring).
    fn signed(data: &[u8]) -> (Signer, Vec<u8>) {
        use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let params = rcgen::CertificateParams::new(vec!["signer.test".into()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let rng = ring::rand::SystemRandom::new();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &key.serialize_der(), &rng)
                .unwrap();
        let sig = pair.sign(&rng, data).unwrap().as_ref().to_vec();
        (Signer::from_der(cert.der().clone()).unwrap(), sig)
    }

    #[test]
    fn a_good_signature_verifies() {
        let (signer, sig) = signed(b"<ListeBlanche/>");
        assert!(signer.verify(b"<ListeBlanche/>", &sig).is_ok());
    }

    #[test]
    fn a_changed_list_or_signature_is_refused() {
        let (signer, mut sig) = signed(b"<ListeBlanche/>");
        assert!(matches!(
            signer.verify(b"<ListeBlanche />", &sig),
            Err(SignatureError::Invalid)
        ));
        let last = sig.len() - 1;
        sig[last] ^= 1;
        assert!(signer.verify(b"<ListeBlanche/>", &sig).is_err());
        assert!(signer.verify(b"<ListeBlanche/>", b"").is_err());
    }

    #[test]
    fn another_signer_is_refused() {
        let (_, sig) = signed(b"<ListeBlanche/>");
        let (other, _) = signed(b"<ListeBlanche/>");
        assert!(other.verify(b"<ListeBlanche/>", &sig).is_err());
    }

    #[test]
    fn the_signature_sits_beside_the_list_by_default() {
        assert_eq!(
            signature_source("https://a.test/liste.xml", None),
            "https://a.test/liste.xml.sig"
        );
        assert_eq!(
            signature_source("/etc/mes/liste.xml", Some("/etc/mes/sig")),
            "/etc/mes/sig"
        );
    }
}
